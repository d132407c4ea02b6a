//! AWS Lambda entry point of the scheduled business dashboard, invoked on a
//! schedule (EventBridge Scheduler, daily by default, with a reserved
//! concurrency of one). Settings: [`knowedge_report::deploy::SETTINGS`].
//!
//! Each run brings its copy of the lake's tables on ephemeral storage up to
//! date and writes `reports/index.html` and `reports/data.json` (see
//! [`knowedge_report::scheduled`]); it answers with what it did. A failing
//! object store is a retryable error, anything else is not.

use std::path::PathBuf;

use knowedge_lake::Lake;
use knowedge_lake::deploy::{Settings, emit_metrics};
use knowedge_report::deploy::SETTINGS;
use lambda_http::lambda_runtime::{Diagnostic, LambdaEvent, run, service_fn};
use serde_json::Value;

const FUNCTION: &str = "knowedge-report";

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let settings = Settings::load(SETTINGS).await?;
    let lake = Lake::open(settings.require("KNOWEDGE_LAKE")?)?;
    let work = PathBuf::from(settings.get("KNOWEDGE_REPORT_WORK_DIR").unwrap_or("/tmp/knowedge-lake"));
    let echarts_path = match settings.get("KNOWEDGE_ECHARTS") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(std::env::var("LAMBDA_TASK_ROOT").unwrap_or_else(|_| ".".into())).join("echarts.min.js"),
    };
    // Read at start-up: a package without ECharts fails at once, not at the first run.
    let echarts = std::fs::read_to_string(&echarts_path)
        .map_err(|e| format!("reading Apache ECharts at {}: {e}", echarts_path.display()))?;
    let (lake, work, echarts) = (&lake, &work, &echarts);
    run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let started = std::time::Instant::now();
        match knowedge_report::scheduled::publish(lake, work, echarts, chrono::Utc::now()).await {
            Ok(published) => {
                for s in &published.skipped {
                    tracing::warn!(file = %s, "lake file left out of the report");
                }
                for p in &published.problems {
                    tracing::warn!(panel = %p, "dashboard panel not built");
                }
                emit_metrics(
                    FUNCTION,
                    &[
                        ("ReportSeconds", started.elapsed().as_secs_f64()),
                        ("ReportObjectsCopied", published.mirror.copied as f64),
                        ("ReportFilesSkipped", published.skipped.len() as f64),
                        ("ReportPanelsMissing", published.problems.len() as f64),
                    ],
                );
                Ok(serde_json::to_value(published).unwrap_or_default())
            }
            Err(e) => {
                let message = knowedge_format::error::chain(&e);
                tracing::error!(error = %message, retryable = e.is_retryable(), "report failed");
                let error_type = if e.is_retryable() { "Retryable" } else { "NonRetryable" };
                Err(Diagnostic { error_type: error_type.into(), error_message: message })
            }
        }
    }))
    .await
}
