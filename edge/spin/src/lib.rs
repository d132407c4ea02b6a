//! The knowedge edge scorer as a Spin HTTP component.
//!
//! Built for `wasm32-wasip2`, the component exports
//! `wasi:http/incoming-handler@0.2.0`, so it runs under Spin (`spin up`,
//! `spin deploy`) and under any wasi:http 0.2 host such as
//! `knowedge-edge-host` or `wasmtime serve`.
//!
//! Per request it reads its configuration from the environment, loads and
//! verifies the one model file the route needs (the recommendation model, or
//! the sentiment model for `POST /v1/sentiment`), and hands everything, the
//! request body included, to [`knowedge_shared::api::handle_with_body`], which
//! holds all routing, parameter checks and JSON shapes:
//!
//! | variable | meaning |
//! |---|---|
//! | `KNOWEDGE_SIGNING_PUBLIC_KEY` | hex ed25519 key the model artifact must be signed with |
//! | `KNOWEDGE_PSEUDONYM_KEY` | hex key mapping request user ids to model pseudonyms |
//! | `KNOWEDGE_MODEL_PATH` | model file, default [`DEFAULT_MODEL_PATH`] |
//! | `KNOWEDGE_SENTIMENT_MODEL_PATH` | sentiment model file, default [`DEFAULT_SENTIMENT_MODEL_PATH`] |
//!
//! Built natively the crate is empty apart from these constants, so
//! `cargo build --workspace` keeps working.
//!
//! ```text
//! cargo build -p knowedge-edge-spin --target wasm32-wasip2 --profile edge
//! # -> target/wasm32-wasip2/edge/knowedge_edge_spin.wasm
//! ```

/// Model file read when `KNOWEDGE_MODEL_PATH` is not set.
pub const DEFAULT_MODEL_PATH: &str = "/models/model.kwm";
/// Variable holding the hex public key that verifies model artifacts.
pub const PUBLIC_KEY_VAR: &str = "KNOWEDGE_SIGNING_PUBLIC_KEY";
/// Variable holding the hex pseudonymisation key.
pub const PSEUDONYM_KEY_VAR: &str = "KNOWEDGE_PSEUDONYM_KEY";
/// Variable overriding the model file path.
pub const MODEL_PATH_VAR: &str = "KNOWEDGE_MODEL_PATH";
/// Sentiment model file read when `KNOWEDGE_SENTIMENT_MODEL_PATH` is not set.
pub const DEFAULT_SENTIMENT_MODEL_PATH: &str = "/models/sentiment.kwm";
/// Variable overriding the sentiment model file path.
pub const SENTIMENT_MODEL_PATH_VAR: &str = "KNOWEDGE_SENTIMENT_MODEL_PATH";

// `unsafe` is allowed here only for the export glue `#[http_component]`
// generates (wit-bindgen's canonical ABI entry points); the code below has none.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component {
    use knowedge_shared::api::{self, EdgeConfig, ModelNeeded, Models};
    use knowedge_shared::artifact::PublicKey;
    use knowedge_shared::model::Model;
    use knowedge_shared::pseudonym::Pseudonymizer;
    use knowedge_shared::sentiment::SentimentModel;
    use spin_sdk::http::{Request, Response};
    use spin_sdk::http_component;

    use super::{
        DEFAULT_MODEL_PATH, DEFAULT_SENTIMENT_MODEL_PATH, MODEL_PATH_VAR, PSEUDONYM_KEY_VAR, PUBLIC_KEY_VAR,
        SENTIMENT_MODEL_PATH_VAR,
    };

    /// Answers one request with the model currently on disk.
    #[http_component]
    fn handle(req: Request) -> anyhow::Result<Response> {
        let config = EdgeConfig { pseudonymizer: pseudonymizer() };
        let not_needed = "not needed for this route".to_owned();
        let (model, sentiment) = match api::model_needed(req.path()) {
            ModelNeeded::Recommender => (load_model(), Err(not_needed)),
            ModelNeeded::Sentiment => (Err(not_needed), load_sentiment_model()),
        };
        let models = Models {
            recommender: model.as_ref().map_err(String::as_str),
            sentiment: sentiment.as_ref().map_err(String::as_str),
        };
        let method = req.method().to_string();
        let request = api::Request { method: &method, path: req.path(), query: req.query() };
        let answer = api::handle_with_body(&request, req.body(), models, &config);
        Ok(Response::builder()
            .status(answer.status)
            .header("content-type", "application/json")
            .body(answer.body)
            .build())
    }

    /// The pseudonymizer from the environment; `None` when unset or invalid.
    fn pseudonymizer() -> Option<Pseudonymizer> {
        let hex = std::env::var(PSEUDONYM_KEY_VAR).ok()?;
        Pseudonymizer::from_hex(&hex).ok()
    }

    /// Reads and verifies the model file, or says why there is no model.
    fn load_model() -> Result<Model, String> {
        let (bytes, key) = read_artifact(MODEL_PATH_VAR, DEFAULT_MODEL_PATH)?;
        Model::from_artifact(&bytes, &key).map_err(|e| e.to_string())
    }

    /// Reads and verifies the sentiment model file, or says why there is none.
    fn load_sentiment_model() -> Result<SentimentModel, String> {
        let (bytes, key) = read_artifact(SENTIMENT_MODEL_PATH_VAR, DEFAULT_SENTIMENT_MODEL_PATH)?;
        SentimentModel::from_artifact(&bytes, &key).map_err(|e| e.to_string())
    }

    /// The artifact bytes at the path in `path_var` (or `default_path`) and the public key to verify them with.
    fn read_artifact(path_var: &str, default_path: &str) -> Result<(Vec<u8>, PublicKey), String> {
        let key_hex = std::env::var(PUBLIC_KEY_VAR).map_err(|_| format!("{PUBLIC_KEY_VAR} is not set"))?;
        let key = PublicKey::from_hex(&key_hex).map_err(|e| format!("{PUBLIC_KEY_VAR}: {e}"))?;
        let path = std::env::var(path_var).unwrap_or_else(|_| default_path.to_owned());
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        Ok((bytes, key))
    }
}
