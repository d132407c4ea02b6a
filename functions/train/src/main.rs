//! AWS Lambda entry point of the training function, invoked on a schedule
//! (EventBridge). Configuration comes from the environment; see the
//! `knowedge_train` crate docs. Each invocation is one
//! [`knowedge_train::pipeline::run`]; the answer is its JSON report
//! (`review_sentiment` says how many new reviews were scored).

use knowedge_format::artifact::SigningKey;
use knowedge_lake::{Lake, ModelStore};
use knowedge_train::pipeline::{self, Options};
use knowedge_train::{Error, Recipe};
use lambda_runtime::{Diagnostic, LambdaEvent, run, service_fn};
use serde_json::Value;

fn config() -> Result<(Lake, ModelStore, SigningKey, Recipe), Error> {
    let var = |k: &str| std::env::var(k).map_err(|_| Error::Config(format!("{k} is not set")));
    let lake = Lake::open(&var("KNOWEDGE_LAKE")?)?;
    let models = ModelStore::open(&var("KNOWEDGE_MODELS")?)?;
    let key = SigningKey::from_hex(&var("KNOWEDGE_SIGNING_KEY")?)?;
    let recipe = std::env::var("KNOWEDGE_RECIPE").unwrap_or_else(|_| "mf".into()).parse()?;
    Ok((lake, models, key, recipe))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();
    let (lake, models, key, recipe) = config().map_err(|e| knowedge_train::error_chain(&e))?;
    let (lake, models, key) = (&lake, &models, &key);
    let opts = &Options::new(recipe);
    run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let report = pipeline::run(lake, models, key, opts).await.map_err(|e| {
            let message = knowedge_train::error_chain(&e);
            tracing::error!(error = %message, retryable = e.is_retryable(), "training run failed");
            // EventBridge retries asynchronous invocations; the type tells operators whether a retry can help.
            let error_type = if e.is_retryable() { "Retryable" } else { "NonRetryable" };
            Diagnostic { error_type: error_type.into(), error_message: message }
        })?;
        Ok::<_, Diagnostic>(serde_json::to_value(report).unwrap_or_default())
    }))
    .await
}
