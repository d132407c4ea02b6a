//! AWS Lambda entry point of the ingestion function (API Gateway HTTP API,
//! REST API, ALB or function URL events). Configuration comes from the
//! environment; see the `knowedge_ingest` crate docs.

use knowedge_ingest::Ingest;
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let ingest = Ingest::from_env()?;
    let ingest = &ingest;
    run(service_fn(move |req| async move { ingest.handle(req).await })).await
}
