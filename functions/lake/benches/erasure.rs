//! Erasure of one learner from a lake of 1,000,000 events (30 days × 8
//! event types, the learner in every partition and in small per-batch files,
//! review sentiment rows and dead letters) and from two stored models: the
//! same `Eraser` that `knowedge privacy erase` runs. Also the export of the
//! learner and a full compaction, for scale.
//!
//! `cargo bench -p knowedge-lake --bench erasure` (release); the number of
//! events is `KNOWEDGE_BENCH_EVENTS` (default 1,000,000). With
//! `KNOWEDGE_BENCH_DIR=DIR` it only plants `DIR/lake`, `DIR/models` and the
//! keys `DIR/keys` and prints the `knowedge privacy erase` command that
//! measures the same erasure through the command line.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Instant;

use chrono::TimeDelta;
use knowedge_format::artifact::SigningKey;
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_format::store::Channel;
use knowedge_lake::privacy::Eraser;
use knowedge_lake::{Lake, ModelStore};
use knowedge_test_support::lake as planted;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let events: usize = std::env::var("KNOWEDGE_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let keep = std::env::var_os("KNOWEDGE_BENCH_DIR").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().unwrap();
    let root = keep.clone().unwrap_or_else(|| temp.path().to_owned());
    let lake = Lake::open(root.join("lake").to_str().unwrap()).unwrap();
    let models = ModelStore::open(root.join("models").to_str().unwrap()).unwrap();
    let pseudonymizer = Pseudonymizer::new(&[3; 32]).unwrap();
    let key = SigningKey::from_seed([4; 32]);

    let t = Instant::now();
    let p = planted::plant(&lake, &pseudonymizer, events, 30, 20_000).await.unwrap();
    let plant_s = t.elapsed().as_secs_f64();
    let mut users = p.others.clone();
    users.insert(25, p.pseudonym.clone());
    let day = planted::first_day();
    for (v, d) in [("20261101T000000000Z-mf", 0), ("20261120T000000000Z-mf", 19)] {
        let bytes = planted::planted_model(&key, &users, v, day + TimeDelta::days(d));
        models.publish(Channel::Recommender, v, bytes).await.unwrap();
    }
    println!("planted {} events in {} files in {plant_s:.1} s", p.events, p.files);
    if keep.is_some() {
        let keys = root.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        for (file, value) in
            [("signing.key", hex([4; 32])), ("signing.pub", key.public_key().to_hex()), ("pseudonym.key", hex([3; 32]))]
        {
            std::fs::write(keys.join(file), value).unwrap();
        }
        let d = root.display();
        println!(
            "knowedge privacy erase --lake {d}/lake --models {d}/models --keys {d}/keys --user {}",
            planted::LEARNER
        );
        return;
    }

    let t = Instant::now();
    let export = lake.export_user(&p.pseudonym, Some(&pseudonymizer)).await.unwrap();
    let export_s = t.elapsed().as_secs_f64();
    assert_eq!(export.events.len(), p.learner_events.len());

    let t = Instant::now();
    let eraser = Eraser::new(lake.clone(), key).with_models(models).with_pseudonymizer(pseudonymizer);
    let out = eraser.erase(&p.pseudonym).await.unwrap();
    let erase_s = t.elapsed().as_secs_f64();
    assert_eq!(out.events_removed, p.learner_events.len());

    let t = Instant::now();
    let compaction = lake.compact().await.unwrap();
    let compact_s = t.elapsed().as_secs_f64();

    println!(
        "export: {} events in {export_s:.1} s\nerasure: {} objects changed, {} events, {} sentiment rows, {} dead letters removed, {} model versions, in {erase_s:.1} s\ncompaction afterwards: {} partitions, {} rows in {compact_s:.1} s",
        export.events.len(),
        out.objects_changed,
        out.events_removed,
        out.review_sentiment_removed,
        out.dead_letters_removed,
        out.models.len(),
        compaction.partitions,
        compaction.rows_read,
    );
    println!(
        "| {} | {} | {} | {erase_s:.1} s | {export_s:.1} s | {compact_s:.1} s |",
        p.events, p.files, out.objects_changed
    );
}

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
