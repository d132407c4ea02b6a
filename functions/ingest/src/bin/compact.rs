//! AWS Lambda entry point of the lake compaction job, invoked on a schedule
//! (EventBridge, for instance hourly). Reads `KNOWEDGE_LAKE`; answers with
//! the compaction report. See `knowedge_lake::Lake::compact`.

use knowedge_lake::Lake;
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
    let lake = &lake;
    run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let report = lake.compact().await.map_err(|e| {
            let message = knowedge_format::error::chain(&e);
            tracing::error!(error = %message, retryable = e.is_retryable(), "compaction failed");
            let error_type = if e.is_retryable() { "Retryable" } else { "NonRetryable" };
            Diagnostic { error_type: error_type.into(), error_message: message }
        })?;
        Ok::<_, Diagnostic>(serde_json::to_value(report).unwrap_or_default())
    }))
    .await
}
