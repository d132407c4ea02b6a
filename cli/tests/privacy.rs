//! The privacy-law operations end to end, through the `knowedge` binary:
//!
//! * erasure of a learner from a planted lake of 1,000,000 events (a
//!   100,000-event variant for quick runs: `cargo test -p knowedge --test
//!   privacy -- --ignored`) while another task
//!   keeps ingesting, the erasing process SIGKILLed midway and run again;
//!   afterwards no lake or model store file holds the learner (every Parquet
//!   string, every JSON string and key, every artifact's users, and the raw
//!   bytes), every other event is still there once, the concurrently
//!   ingested events too, the served model no longer knows the learner and
//!   scores everyone else as before, and the receipt verifies;
//! * export: exactly the learner's events, sentiment rows and dead letters;
//! * retention through `knowedge lake compact --retention-days`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow_array::{Array, StringArray};
use chrono::TimeDelta;
use knowedge::keys::Keys;
use knowedge_format::artifact::Artifact;
use knowedge_format::forget;
use knowedge_format::store::Channel;
use knowedge_lake::{Lake, ModelStore};
use knowedge_scoring::model::{Filters, Model};
use knowedge_test_support::lake::{self as planted, LEARNER};
use serde_json::Value;

fn knowedge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_knowedge")).args(args).output().unwrap()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { files(&p, out) } else { out.push(p) }
    }
}

fn json_holds(v: &Value, needles: &[&str]) -> bool {
    match v {
        Value::String(s) => needles.iter().any(|n| s.contains(n)),
        Value::Array(a) => a.iter().any(|x| json_holds(x, needles)),
        Value::Object(m) => m.iter().any(|(k, x)| needles.iter().any(|n| k.contains(n)) || json_holds(x, needles)),
        _ => false,
    }
}

/// Fails if any file under `dir` holds one of `needles`: in its bytes, in
/// any decoded Parquet string, any JSON string or key, any artifact's ids.
fn assert_nothing_holds(dir: &Path, needles: &[&str], public: &knowedge_format::artifact::PublicKey) -> usize {
    let mut all = Vec::new();
    files(dir, &mut all);
    for f in &all {
        let bytes = std::fs::read(f).unwrap();
        for n in needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                "{} holds the learner in its bytes",
                f.display()
            );
        }
        let name = f.to_string_lossy();
        if name.ends_with(".parquet") {
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
                    .unwrap()
                    .build()
                    .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                for col in batch.columns() {
                    if let Some(s) = col.as_any().downcast_ref::<StringArray>() {
                        for i in 0..s.len() {
                            assert!(
                                s.is_null(i) || !needles.iter().any(|n| s.value(i).contains(n)),
                                "{name} holds the learner in a value"
                            );
                        }
                    }
                }
            }
        } else if name.ends_with(".json") || name.ends_with(".ndjson") {
            let text = String::from_utf8(bytes).unwrap();
            let docs: Vec<Value> = if name.ends_with(".ndjson") {
                text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
            } else {
                vec![serde_json::from_str(&text).unwrap()]
            };
            assert!(docs.iter().all(|d| !json_holds(d, needles)), "{name} holds the learner in a JSON value");
        } else if name.ends_with(".kwm") {
            let a = Artifact::read(&bytes, public).unwrap();
            assert!(a.manifest.users.iter().all(|u| !needles.contains(&u)), "{name} holds the learner");
        }
    }
    all.len()
}

async fn scenario(events: usize) {
    let start = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let keys = Keys::generate().unwrap();
    keys.save(&keys_dir).unwrap();
    let (lake_dir, models_dir) = (dir.path().join("lake"), dir.path().join("models"));
    let lake = Lake::open(lake_dir.to_str().unwrap()).unwrap();
    let (pseudonymizer, signing, public) =
        (keys.pseudonymizer().unwrap(), keys.signing().unwrap(), keys.public().unwrap());
    let p = planted::plant(&lake, &pseudonymizer, events, 30, 20_000).await.unwrap();
    let me = p.pseudonym.clone();

    // Two stored models hold the learner: the current one and an older one.
    let models = ModelStore::open(models_dir.to_str().unwrap()).unwrap();
    let mut users = p.others[..25].to_vec();
    users.push(me.clone());
    users.extend_from_slice(&p.others[25..]);
    let day = planted::first_day();
    let old = planted::planted_model(&signing, &users, "20261101T000000000Z-mf", day);
    models.publish(Channel::Recommender, "20261101T000000000Z-mf", old).await.unwrap();
    let served = planted::planted_model(&signing, &users, "20261120T000000000Z-mf", day + TimeDelta::days(19));
    models.publish(Channel::Recommender, "20261120T000000000Z-mf", served.clone()).await.unwrap();
    let (lake_s, models_s, keys_s) =
        (lake_dir.to_str().unwrap(), models_dir.to_str().unwrap(), keys_dir.to_str().unwrap());
    eprintln!("planted {} events in {} files in {:.1}s", p.events, p.files, start.elapsed().as_secs_f64());

    // (b) Export: exactly the learner's events, sentiment rows and dead letters.
    let t = Instant::now();
    let export_file = dir.path().join("export.json");
    let out = knowedge(&[
        "privacy",
        "export",
        "--lake",
        lake_s,
        "--keys",
        keys_s,
        "--user",
        LEARNER,
        "--out",
        export_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let export: Value = serde_json::from_slice(&std::fs::read(&export_file).unwrap()).unwrap();
    let ids: Vec<&str> =
        export["events"].as_array().unwrap().iter().map(|e| e["event"]["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), p.learner_events.len(), "each event once");
    assert_eq!(ids.iter().map(|s| s.to_string()).collect::<HashSet<_>>(), p.learner_events);
    assert!(export["events"].as_array().unwrap().iter().all(|e| e["event"]["user_id"] == me.as_str()));
    assert_eq!(export["review_sentiment"].as_array().unwrap().len(), p.learner_sentiment);
    assert_eq!(export["dead_letters"].as_array().unwrap().len(), p.learner_dead_letters);
    let text = String::from_utf8(std::fs::read(&export_file).unwrap()).unwrap();
    assert_eq!(text.matches(LEARNER).count(), 1, "the raw id only where the dead letter kept it");
    eprintln!("export: {} events in {:.1}s", ids.len(), t.elapsed().as_secs_f64());

    // Ingestion keeps running: other learners' events, in small files.
    let stop = Arc::new(AtomicBool::new(false));
    let ingestion = {
        let (lake, stop, others) = (lake.clone(), stop.clone(), p.others.clone());
        tokio::spawn(async move {
            let mut ids = HashSet::new();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let batch: Vec<_> = (0..50)
                    .map(|k| {
                        n += 1;
                        let mut e = planted_event(n, &others[(n as usize) % others.len()], k % 30);
                        e.event.event_id = planted::event_id(9, n);
                        e
                    })
                    .collect();
                lake.write_events(&batch).await.unwrap();
                ids.extend(batch.into_iter().map(|e| e.event.event_id));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ids
        })
    };

    // The erasure, SIGKILLed once some objects are rewritten.
    let t = Instant::now();
    let args = ["privacy", "erase", "--lake", lake_s, "--models", models_s, "--keys", keys_s, "--user", LEARNER];
    let mut child = Command::new(env!("CARGO_BIN_EXE_knowedge"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let jobs = lake_dir.join("privacy/erasures");
    let (done_at_kill, planned) = loop {
        assert!(child.try_wait().unwrap().is_none(), "the erasure finished before it could be killed");
        let record = std::fs::read_dir(&jobs)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read(e.unwrap().path()).ok());
        if let Some(v) = record.and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
            let (done, next, plan) = (
                v["objects"].as_array().map_or(0, Vec::len),
                v["next"].as_u64().unwrap_or(0),
                v["plan"].as_array().map_or(0, Vec::len),
            );
            if done >= 3 && (next as usize) < plan {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                break (next, plan);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let record: Value = serde_json::from_slice(
        &std::fs::read(std::fs::read_dir(&jobs).unwrap().next().unwrap().unwrap().path()).unwrap(),
    )
    .unwrap();
    assert_eq!(record["state"], "running");
    assert!(!record.to_string().contains(LEARNER), "the job record holds the pseudonym only");
    eprintln!("killed after {done_at_kill} of {planned} objects ({:.1}s)", t.elapsed().as_secs_f64());

    // The same command again finishes the job.
    let t = Instant::now();
    let out = knowedge(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let receipt_path = stdout.lines().find_map(|l| l.strip_prefix("receipt: ")).unwrap().to_owned();
    eprintln!("resumed and finished in {:.1}s", t.elapsed().as_secs_f64());
    assert!(!stdout.contains(&me) && !stdout.contains(LEARNER));
    stop.store(true, Ordering::SeqCst);
    let ingested = ingestion.await.unwrap();
    assert!(!ingested.is_empty());
    assert!(std::fs::read_dir(&jobs).unwrap().next().is_none(), "the job record is replaced by the receipt");

    // The receipt verifies, counts what was removed, and names nobody.
    let envelope = std::fs::read(&receipt_path).unwrap();
    let receipt = forget::verify_receipt(&envelope, &public).unwrap();
    let text = String::from_utf8_lossy(&envelope);
    assert!(!text.contains(&me) && !text.contains(LEARNER));
    assert_eq!(receipt["totals"]["events_removed"], p.learner_events.len());
    assert_eq!(receipt["totals"]["review_sentiment_removed"], p.learner_sentiment);
    assert_eq!(receipt["totals"]["dead_letters_removed"], p.learner_dead_letters);
    let removed: u64 = receipt["objects"].as_array().unwrap().iter().map(|o| o["rows_removed"].as_u64().unwrap()).sum();
    assert_eq!(
        removed as usize,
        p.learner_events.len() + p.learner_sentiment + p.learner_dead_letters,
        "nothing counted twice"
    );
    let mut tampered: Value = serde_json::from_slice(&envelope).unwrap();
    tampered["receipt"]["totals"]["events_removed"] = 0.into();
    assert!(forget::verify_receipt(tampered.to_string().as_bytes(), &public).is_err());

    // No file of the lake or the model store holds the learner.
    let t = Instant::now();
    let n = assert_nothing_holds(&lake_dir, &[&me, LEARNER], &public);
    let m = assert_nothing_holds(&models_dir, &[&me, LEARNER], &public);
    eprintln!("{n} lake files and {m} model store files checked in {:.1}s", t.elapsed().as_secs_f64());

    // Every other event is there once; the concurrently ingested ones too.
    let rows = lake.scan_events().await.unwrap();
    let mut per_partition: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut seen = HashSet::with_capacity(rows.len());
    for e in &rows {
        assert_ne!(e.event.user_id, me);
        assert!(seen.insert(e.event.event_id.clone()), "event {} stored twice", e.event.event_id);
        if !ingested.contains(&e.event.event_id) {
            let key = (e.event.ts.format("%Y-%m-%d").to_string(), e.event.event_type.to_string());
            *per_partition.entry(key).or_default() += 1;
        }
    }
    assert_eq!(per_partition, p.others_per_partition, "per partition: before == after minus the learner's");
    assert!(ingested.iter().all(|id| seen.contains(id)), "concurrently ingested events lost");
    assert_eq!(rows.len(), p.events - p.learner_events.len() + ingested.len());
    let export = knowedge(&["privacy", "export", "--lake", lake_s, "--keys", keys_s, "--user", LEARNER]);
    let export: Value = serde_json::from_slice(&export.stdout).unwrap();
    assert_eq!(export["events"].as_array().unwrap().len() + export["dead_letters"].as_array().unwrap().len(), 0);

    // The served model: a new version without the learner, everyone else scored as before.
    let current = models.current(Channel::Recommender).await.unwrap().unwrap();
    assert_ne!(current, "20261120T000000000Z-mf");
    let bytes = models.get(&current).await.unwrap();
    let new = Model::from_artifact(&bytes, &public).unwrap();
    let before = Model::from_artifact(&served, &public).unwrap();
    assert_eq!(new.info().model_id, current);
    assert!(new.info().created_at > before.info().created_at);
    assert!(before.knows_user(&me) && !new.knows_user(&me));
    assert_eq!(new.info().users, before.info().users - 1);
    for u in &p.others {
        assert!(new.knows_user(u));
        assert_eq!(new.recommend(Some(u), 10, &Filters::default()), before.recommend(Some(u), 10, &Filters::default()));
        assert_eq!(new.owned(u), before.owned(u));
    }
    assert_eq!(new.recommend(Some(&me), 10, &Filters::default()), new.recommend(None, 10, &Filters::default()));
    eprintln!("total {:.1}s", start.elapsed().as_secs_f64());
}

fn planted_event(n: u64, user: &str, day: u32) -> knowedge_lake::StoredEvent {
    let ts = planted::first_day() + TimeDelta::days(i64::from(day)) + TimeDelta::seconds(n as i64 % 80_000);
    planted::view_event("", user, "item-007", ts, chrono::Utc::now())
}

/// About 100 s in a debug build on the 2-core machine (2026-12-03).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_1m_killed_and_resumed_under_ingestion() {
    scenario(1_000_000).await;
}

/// The same on 100,000 events, for quick runs: `cargo test -p knowedge --test privacy -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the 1,000,000-event test covers it; run explicitly for a quick check"]
async fn erasure_100k() {
    scenario(100_000).await;
}

/// (c) Retention through the command line, with planted old events and dead letters.
#[tokio::test]
async fn compaction_applies_retention() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let now = chrono::Utc::now();
    let mk = |n: u64, days_ago: i64| {
        let mut e = planted_event(n, "aa", 0);
        e.event.event_id = planted::event_id(5, n);
        e.event.ts = now - TimeDelta::days(days_ago);
        e
    };
    let events: Vec<_> = (0..40).map(|n| mk(n, if n % 4 == 0 { 400 } else { 3 })).collect();
    lake.write_events(&events).await.unwrap();
    let letter = |days_ago: i64| knowedge_lake::DeadLetter {
        received_at: now - TimeDelta::days(days_ago),
        index: 0,
        raw: serde_json::json!({"rating": 9}),
        raw_sha256: None,
        problems: Vec::new(),
        dropped_fields: Vec::new(),
        dropped_unnamed: 0,
        key_name: None,
    };
    lake.write_dead_letters(&[letter(100), letter(1)]).await.unwrap();
    let lake_s = dir.path().to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_knowedge"))
        .args(["lake", "compact", "--lake", lake_s, "--retention-days", "365"])
        .env("KNOWEDGE_DEAD_LETTER_RETENTION_DAYS", "30")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["compaction"]["events_expired"], 10);
    assert_eq!(report["compaction"]["dead_letters_expired"], 1);
    assert_eq!(lake.read_events().await.unwrap().len(), 30);
    assert_eq!(lake.read_dead_letters().await.unwrap().len(), 1);
    // A bad period is a clear error, not a panic.
    let out = knowedge(&["lake", "compact", "--lake", lake_s, "--retention-days", "soon"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("retention-days"));
}

/// After an erasure the edge (the Spin component in the local host, following
/// the model store) answers the learner as it answers anyone unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_stops_personalising_for_an_erased_learner() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let keys = Keys::generate().unwrap();
    keys.save(&keys_dir).unwrap();
    let (lake_dir, models_dir) = (dir.path().join("lake"), dir.path().join("models"));
    let lake = Lake::open(lake_dir.to_str().unwrap()).unwrap();
    let p = planted::plant(&lake, &keys.pseudonymizer().unwrap(), 2_000, 3, 50).await.unwrap();
    let models = ModelStore::open(models_dir.to_str().unwrap()).unwrap();
    let mut users = p.others.clone();
    users.insert(7, p.pseudonym.clone());
    let version = "20261120T000000000Z-mf";
    let served = planted::planted_model(&keys.signing().unwrap(), &users, version, planted::first_day());
    models.publish(Channel::Recommender, version, served).await.unwrap();

    let host = knowedge_edge_host::EdgeHost::start(knowedge_edge_host::HostConfig {
        wasm: knowedge_test_support::spin_wasm(),
        models_dir: models_dir.clone(),
        state_dir: dir.path().join("edge"),
        public_key_hex: keys.public_hex.clone(),
        pseudonym_key_hex: keys.pseudonym_hex.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        poll_interval: Duration::from_millis(100),
        experiment: None,
        ingest: None,
        access: knowedge_edge_host::Access {
            token_keys_hex: Some(knowedge_test_support::token_keys_hex()),
            ..Default::default()
        },
    })
    .await
    .unwrap();
    let edge = host.local_addr();
    let ask = |user: &'static str| async move {
        let url = format!("http://{edge}/v1/recommend?user={user}&k=10");
        let (status, v) = knowedge::get_json_as(&url, Some(&knowedge_test_support::token(user))).await.unwrap();
        assert_eq!(status, 200, "{v}");
        (v["model_id"].as_str().unwrap().to_owned(), v["items"].clone())
    };
    let (model, before) = ask(LEARNER).await;
    let (_, stranger) = ask("never-seen-before").await;
    assert_eq!(model, version);
    assert_ne!(before, stranger, "the learner is personalised before the erasure");

    let lake_s = lake_dir.to_str().unwrap();
    let out = knowedge(&[
        "privacy",
        "erase",
        "--lake",
        lake_s,
        "--models",
        models_dir.to_str().unwrap(),
        "--keys",
        keys_dir.to_str().unwrap(),
        "--user",
        LEARNER,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let since = Instant::now();
    let after = loop {
        let (model, items) = ask(LEARNER).await;
        if model != version {
            break items;
        }
        assert!(since.elapsed() < Duration::from_secs(20), "the edge kept serving {version}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(after, ask("never-seen-before").await.1, "the erased learner is answered as a stranger");
    // The erasure and the promotion of the new version are in the audit log.
    let actions: Vec<String> =
        lake.audit_records().await.unwrap().iter().map(|r| format!("{:?}", r.action).to_lowercase()).collect();
    assert!(
        actions.iter().any(|a| a.contains("erasure")) && actions.iter().any(|a| a.contains("promotion")),
        "{actions:?}"
    );
    assert!(lake.audit_verify(&Default::default()).await.unwrap().is_intact());
    host.shutdown().await;
}
