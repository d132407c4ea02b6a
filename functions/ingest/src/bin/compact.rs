//! AWS Lambda entry point of the lake compaction job, invoked on a schedule
//! (EventBridge, for instance hourly). Reads `KNOWEDGE_LAKE`; runs the
//! pending erasure jobs first when `KNOWEDGE_SIGNING_KEY` is set (with
//! `KNOWEDGE_MODELS`, the learner leaves the served models too; with
//! `KNOWEDGE_PSEUDONYM_KEY`, dead letters holding raw ids are found), then
//! compacts with the retention periods `KNOWEDGE_RETENTION_DAYS` and
//! `KNOWEDGE_DEAD_LETTER_RETENTION_DAYS`; answers with the report. See
//! `knowedge_lake::Lake::maintain`.

use knowedge_format::artifact::SigningKey;
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_lake::privacy::Eraser;
use knowedge_lake::{CompactOptions, Lake, ModelStore};
use lambda_http::lambda_runtime::{Diagnostic, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let location = std::env::var("KNOWEDGE_LAKE").map_err(|_| "KNOWEDGE_LAKE is not set")?;
    let lake = Lake::open(&location)?;
    let options = CompactOptions::from_env()?;
    let eraser = match std::env::var("KNOWEDGE_SIGNING_KEY") {
        Ok(hex) => {
            let mut e = Eraser::new(lake.clone(), SigningKey::from_hex(&hex)?);
            if let Ok(models) = std::env::var("KNOWEDGE_MODELS") {
                e = e.with_models(ModelStore::open(&models)?);
            }
            if let Ok(key) = std::env::var("KNOWEDGE_PSEUDONYM_KEY") {
                e = e.with_pseudonymizer(Pseudonymizer::from_hex(&key)?);
            }
            Some(e)
        }
        Err(_) => None,
    };
    let (lake, eraser, options) = (&lake, &eraser, &options);
    run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let report = lake.maintain(eraser.as_ref(), options).await.map_err(|e| {
            let message = knowedge_format::error::chain(&e);
            tracing::error!(error = %message, retryable = e.is_retryable(), "compaction failed");
            let error_type = if e.is_retryable() { "Retryable" } else { "NonRetryable" };
            Diagnostic { error_type: error_type.into(), error_message: message }
        })?;
        Ok::<_, Diagnostic>(serde_json::to_value(report).unwrap_or_default())
    }))
    .await
}
