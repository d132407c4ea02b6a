//! The knowedge edge scorer as a Spin HTTP component.
//!
//! Built for `wasm32-wasip2`, the component exports
//! `wasi:http/incoming-handler@0.2.0`, so it runs under Spin (`spin up`,
//! `spin deploy`) and under any wasi:http 0.2 host such as
//! `knowedge-edge-host` or `wasmtime serve`.
//!
//! Per request it reads its configuration from the environment, gets the one
//! model the route needs (the recommendation model, or the sentiment model
//! for `POST /v1/sentiment`), and hands everything, the request body
//! included, to [`knowedge_shared::api::handle_with_body`], which holds all
//! routing, parameter checks and JSON shapes.
//!
//! A model is read and verified (signature, format version, requirements)
//! the first time an instance needs it and kept for the instance's next
//! requests as long as the file's length and modification time are
//! unchanged; a host that reuses instances (the local host does, Spin may)
//! thus pays for loading once per model, not per request, and a swapped file
//! is picked up at the next request. Variables:
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
    use std::cell::RefCell;
    use std::rc::Rc;

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
            recommender: model.as_deref().map_err(String::as_str),
            sentiment: sentiment.as_deref().map_err(String::as_str),
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

    fn pseudonymizer() -> Option<Pseudonymizer> {
        let hex = std::env::var(PSEUDONYM_KEY_VAR).ok()?;
        Pseudonymizer::from_hex(&hex).ok()
    }

    /// What identifies a model file's content for the cache: path, length, modification time.
    type Stamp = (String, u64, Option<std::time::SystemTime>);

    /// A model kept for the instance's next requests.
    struct Cached<T> {
        stamp: Stamp,
        key_hex: String,
        model: Rc<T>,
    }

    thread_local! {
        static MODEL: RefCell<Option<Cached<Model>>> = const { RefCell::new(None) };
        static SENTIMENT: RefCell<Option<Cached<SentimentModel>>> = const { RefCell::new(None) };
    }

    fn load_model() -> Result<Rc<Model>, String> {
        MODEL.with(|cell| cached(cell, MODEL_PATH_VAR, DEFAULT_MODEL_PATH, Model::from_artifact))
    }

    fn load_sentiment_model() -> Result<Rc<SentimentModel>, String> {
        SENTIMENT.with(|cell| {
            cached(cell, SENTIMENT_MODEL_PATH_VAR, DEFAULT_SENTIMENT_MODEL_PATH, |b, k| {
                SentimentModel::from_artifact(b, k)
            })
        })
    }

    /// The cached model if its file is unchanged, else the file read and verified again.
    fn cached<T, E: std::fmt::Display>(
        cell: &RefCell<Option<Cached<T>>>,
        path_var: &str,
        default_path: &str,
        load: impl Fn(&[u8], &PublicKey) -> Result<T, E>,
    ) -> Result<Rc<T>, String> {
        let key_hex = std::env::var(PUBLIC_KEY_VAR).map_err(|_| format!("{PUBLIC_KEY_VAR} is not set"))?;
        let path = std::env::var(path_var).unwrap_or_else(|_| default_path.to_owned());
        let meta = std::fs::metadata(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let stamp: Stamp = (path.clone(), meta.len(), meta.modified().ok());
        if let Some(c) = cell.borrow().as_ref()
            && c.stamp == stamp
            && c.key_hex == key_hex
        {
            return Ok(c.model.clone());
        }
        *cell.borrow_mut() = None;
        let (bytes, key) = read_artifact(&key_hex, &path)?;
        let model = Rc::new(load(&bytes, &key).map_err(|e| e.to_string())?);
        *cell.borrow_mut() = Some(Cached { stamp, key_hex, model: model.clone() });
        Ok(model)
    }

    fn read_artifact(key_hex: &str, path: &str) -> Result<(Vec<u8>, PublicKey), String> {
        let key = PublicKey::from_hex(key_hex).map_err(|e| format!("{PUBLIC_KEY_VAR}: {e}"))?;
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        Ok((bytes, key))
    }
}
