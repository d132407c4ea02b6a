//! AWS Lambda entry point of the lake compaction job, invoked on a schedule
//! (EventBridge Scheduler, for instance hourly, with a reserved concurrency
//! of one). Settings: [`knowedge_ingest::deploy::COMPACT_SETTINGS`]
//! (secrets through the AWS Parameters and Secrets extension).
//!
//! Runs the pending erasure jobs first when `KNOWEDGE_SIGNING_KEY` is set
//! (with `KNOWEDGE_MODELS`, the learner leaves the served models too; with
//! `KNOWEDGE_PSEUDONYM_KEY`, dead letters holding raw ids are found), then
//! compacts with the retention periods `KNOWEDGE_RETENTION_DAYS` and
//! `KNOWEDGE_DEAD_LETTER_RETENTION_DAYS`. With `KNOWEDGE_MODELS` and edge
//! publishing configured ([`knowedge_lake::publish`]), the current models
//! are then brought to every edge (a no-op when they are there already), so
//! a model republished without an erased learner reaches the edges within a
//! run. Answers with the report. See `knowedge_lake::Lake::maintain`.

use knowedge_format::artifact::SigningKey;
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_ingest::deploy::COMPACT_SETTINGS;
use knowedge_lake::deploy::{Settings, emit_metrics};
use knowedge_lake::privacy::Eraser;
use knowedge_lake::publish::EdgeTargets;
use knowedge_lake::{CompactOptions, Lake, ModelStore};
use lambda_http::lambda_runtime::{Diagnostic, LambdaEvent, run, service_fn};
use serde_json::Value;

const FUNCTION: &str = "knowedge-compact";

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let settings = Settings::load(COMPACT_SETTINGS).await?;
    let lake = Lake::open(settings.require("KNOWEDGE_LAKE")?)?;
    let options = CompactOptions::from_lookup(settings.lookup())?;
    let models = settings.get("KNOWEDGE_MODELS").map(ModelStore::open).transpose()?;
    let eraser = match settings.get("KNOWEDGE_SIGNING_KEY") {
        Some(hex) => {
            let mut e = Eraser::new(lake.clone(), SigningKey::from_hex(hex)?);
            if let Some(models) = &models {
                e = e.with_models(models.clone());
            }
            if let Some(key) = settings.get("KNOWEDGE_PSEUDONYM_KEY") {
                e = e.with_pseudonymizer(Pseudonymizer::from_hex(key)?);
            }
            Some(e)
        }
        None => None,
    };
    let edges = EdgeTargets::from_settings(&settings)?;
    let (lake, eraser, options, models, edges) = (&lake, &eraser, &options, &models, &edges);
    run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let failed = |e: knowedge_lake::Error, what: &str| {
            let message = knowedge_format::error::chain(&e);
            tracing::error!(error = %message, retryable = e.is_retryable(), "{what} failed");
            let error_type = if e.is_retryable() { "Retryable" } else { "NonRetryable" };
            Diagnostic { error_type: error_type.into(), error_message: message }
        };
        let report = lake.maintain(eraser.as_ref(), options).await.map_err(|e| failed(e, "compaction"))?;
        let mut answer = serde_json::to_value(report).unwrap_or_default();
        if let (Some(models), false) = (models, edges.is_empty()) {
            match edges.publish(models).await {
                Ok(published) => answer["edges"] = serde_json::to_value(published).unwrap_or_default(),
                Err(e) => {
                    emit_metrics(FUNCTION, &[("EdgePublishFailures", 1.0)]);
                    return Err(failed(e, "publishing to the edges"));
                }
            }
        }
        Ok::<_, Diagnostic>(answer)
    }))
    .await
}
