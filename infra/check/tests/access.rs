//! Each function's real code paths, run on recording object stores, touch
//! only the object-store access the function declares (and `infra/` grants,
//! see `tests/infra.rs`): ingestion with events, dead letters and the admin
//! erasure route; compaction with retention and an erasure that rewrites the
//! served model; a training run that promotes a model; the scheduled report.
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use anyhow::Result;
use chrono::Utc;
use knowedge_format::artifact::SigningKey;
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_format::store::Channel;
use knowedge_ingest::{Ingest, KeyRing};
use knowedge_lake::deploy::{Action, Bucket, ObjectAccess};
use knowedge_lake::privacy::Eraser;
use knowedge_lake::{CompactOptions, Lake, ModelStore};
use knowedge_test_support::lake::{LEARNER, plant, planted_model};
use knowedge_test_support::recording::{Log, Recording, not_declared};
use lambda_http::{Body, Request};
use object_store::local::LocalFileSystem;
use object_store::path::Path;

const WRITE: &str = "web-3f9a1c0e7b2d4a68";
const ADMIN: &str = "ops-0000000000000000admin";

fn recorded(dir: &std::path::Path, bucket: Bucket, log: &Log) -> Result<Arc<Recording>> {
    let fs = Arc::new(LocalFileSystem::new_with_prefix(dir)?);
    Ok(Recording::new(fs, bucket, log.clone()))
}

fn lake_on(dir: &std::path::Path, log: &Log) -> Result<Lake> {
    Ok(Lake::new(recorded(dir, Bucket::Lake, log)?, Path::from("")))
}

fn models_on(dir: &std::path::Path, log: &Log) -> Result<ModelStore> {
    Ok(ModelStore::new(recorded(dir, Bucket::Models, log)?, Path::from("")))
}

fn did(log: &Log, bucket: Bucket, prefix: &str, action: Action) -> bool {
    log.lock().unwrap().iter().any(|(b, k, a)| *b == bucket && k.starts_with(prefix) && *a == action)
}

fn assert_declared(function: &str, log: &Log, declared: &[ObjectAccess]) {
    let extra = not_declared(log, declared);
    assert!(extra.is_empty(), "{function} uses object access it does not declare: {extra:#?}");
}

fn request(method: &str, path: &str, key: &str, body: &str) -> Request {
    lambda_http::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::Text(body.into()))
        .unwrap()
}

#[tokio::test]
async fn ingestion_uses_only_its_declared_access() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = Log::default();
    let ingest = Ingest::new(lake_on(dir.path(), &log)?, Pseudonymizer::new(&[8; 32])?)
        .with_keys(KeyRing::parse(&format!("web:events.write:{WRITE},ops:admin:{ADMIN}")).map_err(anyhow::Error::msg)?);
    let ts = (Utc::now() - chrono::TimeDelta::hours(1)).to_rfc3339();
    let body = serde_json::json!({"events": [
        {"event_id": "6a1f0a52-8d7e-4a0b-9a52-7c1f1b3e0001", "type": "view", "user_id": "alice", "item_id": "c1", "ts": ts},
        {"event_id": "not-a-uuid", "type": "view", "user_id": "bob", "ts": ts},
    ]});
    let r = ingest.respond(request("POST", "/v1/events", WRITE, &body.to_string()), Utc::now()).await;
    assert_eq!(r.status(), 200);
    let r = ingest.respond(request("POST", "/v1/admin/erasures", ADMIN, r#"{"user_id":"alice"}"#), Utc::now()).await;
    assert_eq!(r.status(), 202);
    let job: serde_json::Value = serde_json::from_slice(r.body())?;
    let path = format!("/v1/admin/erasures/{}", job["job_id"].as_str().unwrap_or_default());
    let r = ingest.respond(request("GET", &path, ADMIN, ""), Utc::now()).await;
    assert_eq!(r.status(), 200);

    assert!(did(&log, Bucket::Lake, "events/", Action::Put));
    assert!(did(&log, Bucket::Lake, "dead-letter/", Action::Put));
    assert!(did(&log, Bucket::Lake, "audit/", Action::Put));
    assert!(did(&log, Bucket::Lake, "privacy/", Action::Put));
    assert_declared("knowedge-ingest", &log, knowedge_ingest::deploy::INGEST_ACCESS);
    Ok(())
}

#[tokio::test]
async fn compaction_with_retention_and_an_erasure_uses_only_its_declared_access() -> Result<()> {
    let (lake_dir, models_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let pseudonymizer = Pseudonymizer::new(&[8; 32])?;
    let key = SigningKey::from_seed([3; 32]);
    let plain = Lake::open(lake_dir.path().to_str().unwrap_or_default())?;
    let planted = plant(&plain, &pseudonymizer, 2_000, 6, 100).await?;
    let plain_models = ModelStore::open(models_dir.path().to_str().unwrap_or_default())?;
    let users = vec![planted.pseudonym.clone(), planted.others[0].clone()];
    let model = planted_model(&key, &users, "v1", Utc::now() - chrono::TimeDelta::hours(1));
    plain_models.publish(Channel::Recommender, "v1", model).await?;
    plain.request_erasure(&pseudonymizer.pseudonymize(LEARNER)).await?;

    let log = Log::default();
    let lake = lake_on(lake_dir.path(), &log)?;
    let models = models_on(models_dir.path(), &log)?;
    let eraser = Eraser::new(lake.clone(), key).with_models(models).with_pseudonymizer(pseudonymizer);
    let options = CompactOptions { retention_days: Some(3), dead_letter_retention_days: Some(1), now: None };
    let report = lake.maintain(Some(&eraser), &options).await?;
    assert_eq!(report.erasures.len(), 1);

    assert!(did(&log, Bucket::Lake, "events/", Action::Delete));
    assert!(did(&log, Bucket::Models, "", Action::Put), "the model is republished without the learner");
    assert_declared("knowedge-compact", &log, knowedge_ingest::deploy::COMPACT_ACCESS);
    Ok(())
}

#[tokio::test]
async fn a_training_run_uses_only_its_declared_access() -> Result<()> {
    let (lake_dir, models_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let pseudonymizer = Pseudonymizer::new(&[8; 32])?;
    plant(&Lake::open(lake_dir.path().to_str().unwrap_or_default())?, &pseudonymizer, 2_000, 6, 100).await?;

    let log = Log::default();
    let lake = lake_on(lake_dir.path(), &log)?;
    let models = models_on(models_dir.path(), &log)?;
    let recipe: knowedge_train::Recipe = "popularity".parse()?;
    let report = knowedge_train::pipeline::run(
        &lake,
        &models,
        &SigningKey::from_seed([3; 32]),
        &knowedge_train::pipeline::Options::new(recipe),
    )
    .await?;
    assert!(report.promoted, "{}", report.decision);

    assert!(did(&log, Bucket::Lake, "events/", Action::Get));
    assert!(did(&log, Bucket::Lake, "audit/", Action::Put), "the promotion is audited");
    assert!(did(&log, Bucket::Models, "", Action::Put));
    assert_declared("knowedge-train", &log, knowedge_train::deploy::ACCESS);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_report_uses_only_its_declared_access() -> Result<()> {
    let (lake_dir, work) = (tempfile::tempdir()?, tempfile::tempdir()?);
    knowedge_test_support::business::plant(lake_dir.path(), 20, 5).await?;
    // Objects the report must never read: erasure jobs name learners.
    let plain = Lake::open(lake_dir.path().to_str().unwrap_or_default())?;
    plain.request_erasure(&"ab".repeat(32)).await?;
    let log = Log::default();
    let lake = lake_on(lake_dir.path(), &log)?;
    let published = knowedge_report::scheduled::publish(&lake, work.path(), "/* echarts */", Utc::now()).await?;
    assert!(published.mirror.copied > 0);
    assert!(did(&log, Bucket::Lake, "reports/", Action::Put));
    assert!(!did(&log, Bucket::Lake, "privacy/", Action::Get) && !did(&log, Bucket::Lake, "privacy/", Action::List));
    assert_declared("knowedge-report", &log, knowedge_report::deploy::ACCESS);
    Ok(())
}
