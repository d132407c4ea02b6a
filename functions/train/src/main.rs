//! Entry point of the training function.
//!
//! Under AWS Lambda (invoked on a schedule by EventBridge Scheduler) each
//! invocation is one [`knowedge_train::pipeline::run`]; the answer is its
//! JSON report. Run anywhere else (an AWS Batch job on a GPU instance, a
//! container, a shell) or with `--once`, it does one run, prints the report
//! and exits (status 1 on failure, 2 when a retry cannot help).
//!
//! Settings: [`knowedge_train::deploy::SETTINGS`]; under Lambda, secrets are
//! read through the AWS Parameters and Secrets extension. After a run, the
//! current models go to every configured edge ([`knowedge_lake::publish`]:
//! Workers KV, a Spin application), a no-op for an edge that has them
//! already, so a push that failed is repeated by the next run. Metrics
//! (`ModelsPromoted`, `EdgePublishFailures`) are CloudWatch Embedded Metric
//! Format lines.

use knowedge_format::artifact::SigningKey;
use knowedge_lake::deploy::{Settings, emit_metrics};
use knowedge_lake::publish::EdgeTargets;
use knowedge_lake::{Lake, ModelStore};
use knowedge_train::deploy::SETTINGS;
use knowedge_train::pipeline::{self, Options};
use knowedge_train::{Error, Recipe};
use lambda_runtime::{Diagnostic, LambdaEvent, run, service_fn};
use serde_json::Value;

const FUNCTION: &str = "knowedge-train";

struct Job {
    lake: Lake,
    models: ModelStore,
    key: SigningKey,
    options: Options,
    edges: EdgeTargets,
}

async fn job() -> Result<Job, Error> {
    let settings = Settings::load(SETTINGS).await?;
    let lake = Lake::open(settings.require("KNOWEDGE_LAKE")?)?;
    let models = ModelStore::open(settings.require("KNOWEDGE_MODELS")?)?;
    let key = SigningKey::from_hex(settings.require("KNOWEDGE_SIGNING_KEY")?)?;
    let recipe: Recipe = settings.get("KNOWEDGE_RECIPE").unwrap_or("mf").parse()?;
    let edges = EdgeTargets::from_settings(&settings)?;
    Ok(Job { lake, models, key, options: Options::new(recipe), edges })
}

impl Job {
    /// One training run, then the edges; the error says whether a retry can help.
    async fn run(&self) -> Result<Value, (String, bool)> {
        let failed = |message: String, retryable: bool, what: &str| {
            tracing::error!(error = %message, retryable, "{what} failed");
            (message, retryable)
        };
        let report = pipeline::run(&self.lake, &self.models, &self.key, &self.options)
            .await
            .map_err(|e| failed(knowedge_train::error_chain(&e), e.is_retryable(), "training run"))?;
        emit_metrics(FUNCTION, &[("ModelsPromoted", if report.promoted { 1.0 } else { 0.0 })]);
        let mut answer = serde_json::to_value(&report).unwrap_or_default();
        if !self.edges.is_empty() {
            match self.edges.publish(&self.models).await {
                Ok(published) => answer["edges"] = serde_json::to_value(published).unwrap_or_default(),
                Err(e) => {
                    emit_metrics(FUNCTION, &[("EdgePublishFailures", 1.0)]);
                    return Err(failed(knowedge_format::error::chain(&e), e.is_retryable(), "publishing to the edges"));
                }
            }
        }
        Ok(answer)
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let once = std::env::args().any(|a| a == "--once") || std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none();
    let job = job().await.map_err(|e| knowedge_train::error_chain(&e))?;
    if once {
        match job.run().await {
            Ok(report) => {
                println!("{report}");
                return Ok(());
            }
            Err((_, retryable)) => std::process::exit(if retryable { 1 } else { 2 }),
        }
    }
    let job = &job;
    run(service_fn(move |_event: LambdaEvent<Value>| async move {
        job.run().await.map_err(|(message, retryable)| {
            // The scheduler retries failed invocations; the type tells operators whether a retry can help.
            let error_type = if retryable { "Retryable" } else { "NonRetryable" };
            Diagnostic { error_type: error_type.into(), error_message: message }
        })
    }))
    .await
}
