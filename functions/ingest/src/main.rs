//! AWS Lambda entry point of the ingestion function (API Gateway HTTP API,
//! REST API, ALB or function URL events). Settings come from the environment
//! and secrets through the AWS Parameters and Secrets extension; see
//! [`knowedge_ingest::deploy::INGEST_SETTINGS`] and the crate docs.

use knowedge_ingest::Ingest;
use knowedge_ingest::deploy::INGEST_SETTINGS;
use knowedge_lake::deploy::Settings;
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let settings = Settings::load(INGEST_SETTINGS).await?;
    let ingest = Ingest::from_settings(&settings)?.with_metrics("knowedge-ingest");
    let ingest = &ingest;
    run(service_fn(move |req| async move { ingest.handle(req).await })).await
}
