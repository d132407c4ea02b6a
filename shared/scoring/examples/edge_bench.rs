//! Loads a recommendation model and answers top-10 requests for a given
//! time, then prints the timings as one JSON line.
//!
//! `knowedge edge bench` runs this same program natively and, built for
//! `wasm32-wasip2` with SIMD (`simd128`), inside wasmtime with the edge host's
//! engine settings, so the two figures compare exactly the same code.
//!
//! ```text
//! edge_bench MODEL.kwm PUBLIC_KEY_HEX SECONDS USERS
//! ```
//!
//! Model load is what every guest instance does before its first answer:
//! the signature check, the tensors, the user index. The item index is
//! built by the first request that names an item and reported on its own.
//!
//! Users are looked up as `u0`, `u1`, … `u{USERS-1}` (the bench models use
//! these ids directly as pseudonyms).

use std::process::ExitCode;
use std::time::Instant;

use knowedge_format::artifact::PublicKey;
use knowedge_scoring::model::{Filters, Model};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: edge_bench MODEL.kwm PUBLIC_KEY_HEX SECONDS USERS");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edge_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<String, String> {
    let key = PublicKey::from_hex(&args[2]).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&args[1]).map_err(|e| format!("{}: {e}", args[1]))?;
    let seconds: f64 = args[3].parse().map_err(|e| format!("SECONDS: {e}"))?;
    let users: usize = args[4].parse().map_err(|e| format!("USERS: {e}"))?;

    // Model load: verify the signature, read every tensor, build the indexes.
    let mut loads = Vec::new();
    let start = Instant::now();
    let mut model = None;
    while loads.len() < 3 || (start.elapsed().as_secs_f64() < seconds / 4.0 && loads.len() < 200) {
        let t = Instant::now();
        let m = Model::from_artifact(&bytes, &key).map_err(|e| e.to_string())?;
        loads.push(t.elapsed().as_secs_f64() * 1e6);
        model = Some(m);
    }
    let model = model.ok_or("no model")?;
    // Of which the signature check (BLAKE3 over the whole artifact, ed25519 over the digest).
    let mut verifies = Vec::new();
    for _ in 0..loads.len().min(20) {
        let t = Instant::now();
        knowedge_format::artifact::verify(&bytes, &key).map_err(|e| e.to_string())?;
        verifies.push(t.elapsed().as_secs_f64() * 1e6);
    }

    // Top-10 requests, users round robin; every call timed.
    let ids: Vec<String> = (0..users.max(1)).map(|u| format!("u{u}")).collect();

    // The item id index is built by the first request that names an item
    // (here one excluded item), not at load: that request's extra time over
    // the same request again, on freshly loaded models.
    let naming = Filters { exclude: vec![model.items()[0].to_owned()], ..Filters::default() };
    let mut indexing = Vec::new();
    for _ in 0..loads.len().min(20) {
        let fresh = Model::from_artifact(&bytes, &key).map_err(|e| e.to_string())?;
        let t = Instant::now();
        std::hint::black_box(fresh.recommend(Some(&ids[0]), 10, &naming));
        let first = t.elapsed().as_secs_f64() * 1e6;
        let t = Instant::now();
        std::hint::black_box(fresh.recommend(Some(&ids[0]), 10, &naming));
        indexing.push(first - t.elapsed().as_secs_f64() * 1e6);
    }
    let filters = Filters::default();
    let mut calls = Vec::new();
    let start = Instant::now();
    'outer: loop {
        for id in &ids {
            let t = Instant::now();
            let top = model.recommend(Some(id), 10, &filters);
            calls.push(t.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(top);
            if start.elapsed().as_secs_f64() >= seconds {
                break 'outer;
            }
        }
    }
    let first_pass = checksum_of_first_pass(&model, &ids, &filters);
    Ok(format!(
        "{{\"items\":{},\"dims\":{},\"load_us_median\":{},\"verify_us_median\":{},\"item_index_us_median\":{},\"calls\":{},\"top10_us_mean\":{},\"top10_us_p50\":{},\"top10_us_p99\":{},\"answers_checksum\":{first_pass}}}",
        model.info().items,
        model.info().dims,
        percentile(&mut loads, 0.5),
        percentile(&mut verifies, 0.5),
        percentile(&mut indexing, 0.5),
        calls.len(),
        calls.iter().sum::<f64>() / calls.len().max(1) as f64,
        percentile(&mut calls, 0.5),
        percentile(&mut calls, 0.99),
    ))
}

/// A digest of the top-10 answers for every user once, in order.
fn checksum_of_first_pass(model: &Model, ids: &[String], filters: &Filters) -> u64 {
    let mut h: u64 = 1469598103934665603;
    for id in ids {
        for s in model.recommend(Some(id), 10, filters) {
            for b in s.item.bytes().chain(s.score.to_bits().to_le_bytes()) {
                h = (h ^ u64::from(b)).wrapping_mul(1099511628211);
            }
        }
    }
    h
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}
