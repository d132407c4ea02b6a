//! `knowedge edge bench`: the edge's speed and size figures, side by side in
//! one run.
//!
//! * top-10 requests over synthetic factor models of 10k × 64 and 100k × 64
//!   items, natively and in wasmtime (the same `edge_bench` program, built
//!   for the host and for `wasm32-wasip2` with `simd128`);
//! * model load (signature check, tensors, the user index) of the same models,
//!   and the item index that the first request naming an item builds;
//! * instantiation of the pre-compiled Spin component with the host's engine
//!   settings (pooling allocator, epoch deadline);
//! * sizes of the edge `.wasm` files;
//! * optionally (`--wrk SECONDS`), HTTP load with `wrk` against the local
//!   edge host serving the Spin component (`--wrk-items`, default 10k).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use knowedge_edge_host::{EdgeHost, HostConfig};
use knowedge_format::artifact::{ArtifactBuilder, ModelKind, SigningKey};
use knowedge_format::pseudonym::Pseudonymizer;
use serde_json::{Value, json};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The `edge_bench` program built for the host.
    pub native: PathBuf,
    /// The `edge_bench` program built for `wasm32-wasip2` (with `simd128`).
    pub wasm: PathBuf,
    /// The Spin component.
    pub spin: PathBuf,
    /// The Worker's module (after wasm-opt, as worker-build leaves it).
    pub worker: PathBuf,
    /// Seconds of top-10 requests per model and runtime.
    pub seconds: f64,
    /// Seconds of `wrk` load (0 = skip).
    pub wrk_seconds: u64,
    /// Items of the model served under `wrk` load.
    pub wrk_items: usize,
    /// Open connections of the `wrk` load.
    pub wrk_connections: u32,
    /// Threads of the `wrk` load.
    pub wrk_threads: u32,
    /// Write the figures here as JSON.
    pub json: Option<PathBuf>,
}

const USERS: usize = 1_000;
const DIMS: usize = 64;

/// A synthetic signed factor model: `items` × [`DIMS`], [`USERS`] users named
/// `u0…` (already pseudonymous), five owned items each.
fn model(items: usize, key: &SigningKey, pseudonyms: Option<&Pseudonymizer>) -> Result<Vec<u8>> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let users: Vec<String> = (0..USERS)
        .map(|u| match pseudonyms {
            Some(p) => p.pseudonymize(&format!("u{u}")),
            None => format!("u{u}"),
        })
        .collect();
    let mut b = ArtifactBuilder::new(ModelKind::Mf, DIMS);
    b.items((0..items).map(|i| format!("i{i}")).collect()).users(users);
    b.popularity((0..items).map(|_| next() + 1.0).collect());
    b.seen(
        &(0..USERS).map(|u| (0..5).map(|j| ((u * 7919 + j * 104_729) % items) as u32).collect()).collect::<Vec<_>>(),
    );
    let user_factors: Vec<f32> = (0..USERS * DIMS).map(|_| next()).collect();
    let item_factors: Vec<f32> = (0..items * DIMS).map(|_| next()).collect();
    // As the training job exports factor models: at 8 bits.
    b.factors_8bit(&user_factors, &item_factors)?;
    b.manifest_mut().model_id = format!("bench-{items}x{DIMS}");
    Ok(b.sign(key)?)
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(f64::NAN)
}

/// Runs the benchmark and prints the figures.
pub async fn run(opts: &BenchOptions) -> Result<Value> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; figures are only meaningful from `cargo run --release`");
    }
    for (what, p) in
        [("native edge_bench", &opts.native), ("wasm edge_bench", &opts.wasm), ("Spin component", &opts.spin)]
    {
        ensure!(p.is_file(), "{what} {} is missing: run `cargo xtask edge-bench`", p.display());
    }
    let dir = tempfile::tempdir()?;
    let key = SigningKey::from_seed([42; 32]);
    let public_hex = key.public_key().to_hex();
    let mut figures = json!({"date": chrono::Utc::now().to_rfc3339(), "models": {}});

    for items in [10_000usize, 100_000] {
        let name = format!("m{items}.kwm");
        let bytes = model(items, &key, None)?;
        std::fs::write(dir.path().join(&name), &bytes)?;
        let native_args = [dir.path().join(&name).to_string_lossy().into_owned()];
        let secs = opts.seconds.to_string();
        let users = USERS.to_string();
        let out = Command::new(&opts.native)
            .args(native_args.iter().map(String::as_str).chain([public_hex.as_str(), &secs, &users]))
            .output()
            .with_context(|| format!("running {}", opts.native.display()))?;
        ensure!(out.status.success(), "native edge_bench failed: {}", String::from_utf8_lossy(&out.stderr));
        let native: Value = serde_json::from_slice(&out.stdout).context("native edge_bench output")?;
        let args = vec!["edge_bench".to_owned(), format!("/bench/{name}"), public_hex.clone(), secs, users];
        let dirs = vec![(dir.path().to_owned(), "/bench".to_owned())];
        let in_wasm = |epoch: bool| {
            let (wasm_path, args, dirs) = (opts.wasm.clone(), args.clone(), dirs.clone());
            async move {
                let out = tokio::task::spawn_blocking(move || {
                    knowedge_edge_host::command::run_command(&wasm_path, &args, &dirs, epoch)
                })
                .await??;
                ensure!(out.success, "wasm edge_bench failed: {}", out.stdout);
                serde_json::from_str::<Value>(out.stdout.trim()).context("wasm edge_bench output")
            }
        };
        let wasm = in_wasm(true).await?;
        let wasm_plain = in_wasm(false).await?;
        let same = native["answers_checksum"] == wasm["answers_checksum"];
        let ratio =
            wasm["top10_us_mean"].as_f64().unwrap_or(f64::NAN) / native["top10_us_mean"].as_f64().unwrap_or(f64::NAN);
        let plain_ratio = wasm_plain["top10_us_mean"].as_f64().unwrap_or(f64::NAN)
            / native["top10_us_mean"].as_f64().unwrap_or(f64::NAN);
        println!(
            "top-10 over {items} x {DIMS}: native {:.1} µs (p99 {:.1}), wasm {:.1} µs (p99 {:.1}): wasm/native {ratio:.2}x \
             (without the host's deadline checks {plain_ratio:.2}x); answers identical: {same}",
            native["top10_us_mean"].as_f64().unwrap_or(f64::NAN),
            native["top10_us_p99"].as_f64().unwrap_or(f64::NAN),
            wasm["top10_us_mean"].as_f64().unwrap_or(f64::NAN),
            wasm["top10_us_p99"].as_f64().unwrap_or(f64::NAN),
        );
        let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "model load {items} x {DIMS} ({:.1} MB): native {:.0} µs (signature {:.0} µs), wasm {:.0} µs (signature {:.0} µs) (medians); \
             the item index, built by the first request naming an item: native {:.0} µs, wasm {:.0} µs",
            bytes.len() as f64 / 1e6,
            f(&native, "load_us_median"),
            f(&native, "verify_us_median"),
            f(&wasm, "load_us_median"),
            f(&wasm, "verify_us_median"),
            f(&native, "item_index_us_median"),
            f(&wasm, "item_index_us_median"),
        );
        figures["models"][format!("{items}x{DIMS}")] = json!({
            "artifact_bytes": bytes.len(),
            "native": native,
            "wasm": wasm,
            "wasm_without_deadline_checks": wasm_plain,
            "wasm_over_native_top10": ratio,
            "wasm_without_deadline_checks_over_native_top10": plain_ratio,
            "answers_identical": same,
        });
    }

    // Instantiation of the pre-compiled Spin component, as per request.
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live)?;
    let mut inst = knowedge_edge_host::instantiation_micros(&opts.spin, &live, 2_000).await?;
    let (p50, p99) = (percentile(&mut inst, 0.5), percentile(&mut inst, 0.99));
    println!("instantiation of the Spin component (pooling allocator): p50 {p50:.1} µs, p99 {p99:.1} µs");
    figures["instantiation_us"] = json!({"p50": p50, "p99": p99, "samples": inst.len()});

    // Sizes.
    let mut sizes = serde_json::Map::new();
    for (name, p) in [("spin_component", &opts.spin), ("worker_module", &opts.worker)] {
        match std::fs::metadata(p) {
            Ok(m) => {
                println!("{name}: {} ({:.0} KiB)", p.display(), m.len() as f64 / 1024.0);
                sizes.insert(name.into(), json!(m.len()));
            }
            Err(_) => println!("{name}: {} not built", p.display()),
        }
    }
    figures["wasm_bytes"] = Value::Object(sizes);

    if opts.wrk_seconds > 0 {
        figures["wrk"] = wrk(opts, &key, dir.path()).await?;
    }
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_vec_pretty(&figures)?)?;
    }
    Ok(figures)
}

/// Serves a `wrk_items` × 64 model from the Spin component in the local host
/// and loads it with `wrk` (`wrk_threads` threads, `wrk_connections` connections).
async fn wrk(opts: &BenchOptions, key: &SigningKey, dir: &Path) -> Result<Value> {
    let pseudonym_hex = "11".repeat(32);
    let pseudonyms = Pseudonymizer::from_hex(&pseudonym_hex)?;
    let store = dir.join("store");
    std::fs::create_dir_all(&store)?;
    let version = format!("bench-{}x{DIMS}", opts.wrk_items);
    std::fs::write(store.join(format!("{version}.kwm")), model(opts.wrk_items, key, Some(&pseudonyms))?)?;
    std::fs::write(store.join("current"), format!("{version}\n"))?;
    // Requests carry a learner token, as in production: its check is part of the figures.
    let token_seed = [7u8; 32];
    let token = knowedge_edge::token::issue(
        &token_seed,
        "u17",
        knowedge_edge::token::DEFAULT_AUDIENCE,
        chrono::Duration::hours(1),
        chrono::Utc::now(),
    )?;
    let host = EdgeHost::start(HostConfig {
        wasm: opts.spin.clone(),
        models_dir: store,
        state_dir: dir.join("edge"),
        public_key_hex: key.public_key().to_hex(),
        pseudonym_key_hex: pseudonym_hex,
        listen: "127.0.0.1:0".parse()?,
        poll_interval: Duration::from_millis(200),
        experiment: None,
        ingest: None,
        access: knowedge_edge_host::Access {
            token_keys_hex: Some(knowedge_edge::token::public_key_hex(&token_seed)),
            ..Default::default()
        },
    })
    .await?;
    let url = format!("http://{}/v1/recommend?user=u17&k=10", host.local_addr());
    for _ in 0..100 {
        let (status, body) = crate::get_json_as(&url, Some(&token)).await?;
        if status == 200 && body["model_id"] == version {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Warm up as many instances as wrk opens connections (each loads and
    // verifies the model once), so the figures are of the steady state.
    for _ in 0..3 {
        let calls: Vec<_> = (0..opts.wrk_connections)
            .map(|_| url.clone())
            .map(|u| {
                let token = token.clone();
                tokio::spawn(async move { crate::get_json_as(&u, Some(&token)).await })
            })
            .collect();
        for c in calls {
            c.await??;
        }
    }
    let d = format!("{}s", opts.wrk_seconds);
    let (t, c) = (format!("-t{}", opts.wrk_threads), format!("-c{}", opts.wrk_connections));
    let out = tokio::process::Command::new("wrk")
        .args([&t, &c, "-d", &d, "--latency", "-H", &format!("Authorization: Bearer {token}"), &url])
        .output()
        .await
        .context("running wrk (install it with `apt-get install wrk`)")?;
    host.shutdown().await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    println!(
        "wrk, {} s, {} threads, {} connections, GET /v1/recommend ({} x {DIMS} model):\n{text}",
        opts.wrk_seconds, opts.wrk_threads, opts.wrk_connections, opts.wrk_items
    );
    let grab = |prefix: &str| -> Option<String> {
        text.lines().find_map(|l| l.trim_start().strip_prefix(prefix).map(|r| r.trim().to_owned()))
    };
    let errors = text.lines().filter(|l| l.contains("Non-2xx") || l.contains("Socket errors")).collect::<Vec<_>>();
    Ok(json!({
        "seconds": opts.wrk_seconds,
        "items": opts.wrk_items,
        "connections": opts.wrk_connections,
        "threads": opts.wrk_threads,
        "requests_per_second": grab("Requests/sec:").and_then(|s| s.parse::<f64>().ok()),
        "p50": grab("50%"),
        "p99": grab("99%"),
        "errors": errors,
        "output": text,
    }))
}
