//! AWS Lambda entry point of the training function, invoked on a schedule
//! (EventBridge). Configuration comes from the environment; see the
//! `knowedge_train` crate docs. The answer is the run's JSON report.
//!
//! After training, review events not yet scored by the model store's
//! `current-sentiment` model (if there is one) are scored into the lake's
//! `review-sentiment/` table; the report's `review_sentiment` says how many.

use knowedge_lake::{Lake, ModelStore};
use knowedge_shared::artifact::SigningKey;
use knowedge_train::{BprConfig, Error, Recipe};
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
    let (lake, models, key, recipe) = config()?;
    let (lake, models, key) = (&lake, &models, &key);
    run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let report =
            knowedge_train::run(lake, models, key, recipe, &BprConfig::default(), true).await.map_err(|e| {
                tracing::error!(error = %e, retryable = e.is_retryable(), "training run failed");
                // EventBridge retries asynchronous invocations; the type tells operators whether a retry can help.
                let error_type = if e.is_retryable() { "Retryable" } else { "NonRetryable" };
                Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
            })?;
        let mut answer = serde_json::to_value(report).unwrap_or_default();
        // Sentiment scoring never fails the training run: the model is published already.
        match knowedge_train::reviews::score_with_current(lake, models, &key.public_key()).await {
            Ok(scored) => answer["review_sentiment"] = serde_json::to_value(scored).unwrap_or_default(),
            Err(e) => tracing::error!(error = %e, "scoring review sentiment failed"),
        }
        Ok::<_, Diagnostic>(answer)
    }))
    .await
}
