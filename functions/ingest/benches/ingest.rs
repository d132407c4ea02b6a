//! Ingestion throughput on one core: decode + validate + pseudonymise +
//! redact + Parquet encode of 100k realistic events, against `serde_json`
//! decoding of the same bytes alone, measured in the same run.
//!
//! `cargo bench -p knowedge-ingest --bench ingest` (release). Review texts
//! come from `../shared/data/reviews-zh` when present.

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use knowedge_format::event::decode_elements;
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_ingest::Ingest;
use knowedge_lake::Lake;
use serde_json::{Value, json};

const EVENTS: usize = 100_000;
const BATCH: usize = 500;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn reviews() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/reviews-zh/pos.txt");
    std::fs::read_to_string(dir)
        .map(|t| t.lines().filter(|l| !l.is_empty()).map(|l| l.chars().take(500).collect()).collect())
        .unwrap_or_else(|_| vec!["讲得很清楚，收获很大，推荐！联系 13812345678".into()])
}

fn batches(now: DateTime<Utc>) -> Vec<Vec<u8>> {
    let texts = reviews();
    let mut r = Lcg(42);
    let mut all = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    for n in 0..EVENTS {
        let user = format!("learner-{:05}", r.below(20_000));
        let item = format!("course-{:04}", r.below(3_000));
        // A client batch covers the last minutes of activity.
        let ts = (now - Duration::seconds(r.below(600) as i64)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let id =
            format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", r.next(), n % 0xffff, r.below(0xfff), r.below(0xfff), n);
        let e = match r.below(100) {
            0..=54 => {
                json!({"event_id": id, "type": "view", "user_id": user, "item_id": item, "ts": ts, "session_id": "s-1"})
            }
            55..=74 => {
                json!({"event_id": id, "type": "click", "user_id": user, "item_id": item, "ts": ts, "session_id": "s-1", "recommendation_id": "r-9", "variant": "b"})
            }
            75..=86 => {
                json!({"event_id": id, "type": "progress", "user_id": user, "item_id": item, "ts": ts, "progress": 0.5})
            }
            87..=91 => {
                json!({"event_id": id, "type": "purchase", "user_id": user, "item_id": item, "ts": ts, "price": 99.0, "currency": "CNY"})
            }
            92..=95 => {
                json!({"event_id": id, "type": "review", "user_id": user, "item_id": item, "ts": ts, "rating": 4, "text": texts[r.below(texts.len() as u64) as usize]})
            }
            _ => json!({"event_id": id, "type": "search", "user_id": user, "ts": ts, "query": "python 数据分析"}),
        };
        batch.push(e);
        if batch.len() == BATCH {
            all.push(serde_json::to_vec(&json!({ "events": batch })).unwrap_or_default());
            batch.clear();
        }
    }
    all
}

fn main() {
    let now = DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now());
    let bodies = batches(now);
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let dir = std::env::temp_dir().join("knowedge-ingest-bench");
    let ingest = Ingest::new(
        Lake::open(dir.to_str().unwrap_or("/tmp/knowedge-ingest-bench")).expect("lake"),
        Pseudonymizer::new(&[7; 32]).expect("key"),
    );
    println!("{EVENTS} events in {} batches, {:.1} MB of JSON", bodies.len(), bytes as f64 / 1e6);
    {
        let raw = decode_elements(&bodies[0], false).expect("batch");
        let p = ingest.prepare_elements(&raw, now);
        let one: Vec<&knowedge_lake::StoredEvent> = p.accepted.iter().take(1).collect();
        let t = Instant::now();
        for _ in 0..1000 {
            black_box(knowedge_lake::events::encode_parquet(&one, knowedge_lake::events::Codec::Snappy).expect("pq"));
        }
        println!("fixed cost of one Parquet file: {:.1} µs", t.elapsed().as_secs_f64() * 1e3);
        let all: Vec<&knowedge_lake::StoredEvent> = p.accepted.iter().collect();
        let t = Instant::now();
        for _ in 0..100 {
            black_box(knowedge_lake::events::encode_parquet(&all, knowedge_lake::events::Codec::Snappy).expect("pq"));
        }
        println!("one file of {} rows: {:.1} µs", all.len(), t.elapsed().as_secs_f64() * 1e4);
    }
    let mut best_decode = f64::MAX;
    let mut best_full = f64::MAX;
    let mut split = (0.0, 0.0, 0.0);
    let mut files_written = 0;
    for _round in 0..5 {
        let t = Instant::now();
        for b in &bodies {
            let v: Value = serde_json::from_slice(b).expect("json");
            black_box(v);
        }
        best_decode = best_decode.min(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let mut accepted = 0;
        let mut nfiles = 0;
        let (mut t_decode, mut t_prepare, mut t_parquet) = (0.0, 0.0, 0.0);
        for b in &bodies {
            let t0 = Instant::now();
            let raw = decode_elements(b, false).expect("batch");
            let t1 = Instant::now();
            let p = ingest.prepare_elements(&raw, now);
            let t2 = Instant::now();
            accepted += p.accepted.len();
            let files = knowedge_lake::events::partition_files(&p.accepted).expect("parquet");
            nfiles += files.len();
            black_box(files);
            t_decode += (t1 - t0).as_secs_f64();
            t_prepare += (t2 - t1).as_secs_f64();
            t_parquet += t2.elapsed().as_secs_f64();
        }
        assert_eq!(accepted, EVENTS);
        files_written = nfiles;
        let full = t.elapsed().as_secs_f64();
        if full < best_full {
            best_full = full;
            split = (t_decode, t_prepare, t_parquet);
        }
    }
    let decode_rate = EVENTS as f64 / best_decode;
    let full_rate = EVENTS as f64 / best_full;
    println!(
        "serde_json decode only:                      {:>10.0} events/s ({:.1} ms)",
        decode_rate,
        best_decode * 1e3
    );
    println!("decode+validate+pseudonymise+redact+parquet: {:>10.0} events/s ({:.1} ms)", full_rate, best_full * 1e3);
    println!("  {files_written} Parquet files ({:.0} rows each)", EVENTS as f64 / files_written as f64);
    println!(
        "  of which strict decode {:.1} ms, validate+pseudonymise+redact {:.1} ms, parquet {:.1} ms",
        split.0 * 1e3,
        split.1 * 1e3,
        split.2 * 1e3
    );
    println!("ratio to decode-only: {:.2} (goal >= 0.40); goal >= 200000 events/s", full_rate / decode_rate);
}
