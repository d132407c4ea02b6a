//! The knowedge edge scorer as a Spin HTTP component.
//!
//! Built for `wasm32-wasip2`, the component exports
//! `wasi:http/incoming-handler@0.2.0` and imports Spin's
//! `fermyon:spin/variables@2.0.0`, so it runs under Spin (`spin up`,
//! `spin deploy`) and under `knowedge-edge-host`, which provides both.
//!
//! Per request it reads its configuration (Spin variables, else environment
//! variables of the same names, see below), gets the one
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
//! is picked up at the next request.
//!
//! Settings are Spin application variables (`fermyon:spin/variables`; the
//! name without `KNOWEDGE_`, in lower case: `signing_public_key`,
//! `pseudonym_key`, …, declared in `spin.toml`), else environment variables
//! of the full names. The local host provides both.
//!
//! | setting | meaning |
//! |---|---|
//! | `KNOWEDGE_SIGNING_PUBLIC_KEY` | hex ed25519 key the model artifact must be signed with |
//! | `KNOWEDGE_PSEUDONYM_KEY` | hex key mapping request user ids to model pseudonyms |
//! | `KNOWEDGE_MODEL_PATH` | model file, default [`DEFAULT_MODEL_PATH`] |
//! | `KNOWEDGE_SENTIMENT_MODEL_PATH` | sentiment model file, default [`DEFAULT_SENTIMENT_MODEL_PATH`] |
//! | `KNOWEDGE_EXPERIMENT` | optional A/B experiment (JSON, see `knowedge_shared::experiment`) |
//! | `KNOWEDGE_STORE_DIR` | directory of published `<version>.kwm` files that variants name, default [`DEFAULT_STORE_DIR`] |
//! | `KNOWEDGE_INGEST_URL`, `KNOWEDGE_INGEST_KEY` | ingestion endpoint and the edge's ingest key: `POST /v1/events` forwards there (the host must allow the outbound request) |
//!
//! Each recommendation answer's exposure record is written to standard
//! output as one JSON line (`{"log": "exposure", …}`).
//!
//! Built natively the crate is empty apart from these constants, so
//! `cargo build --workspace` keeps working.
//!
//! ```text
//! cargo build -p knowedge-edge-spin --target wasm32-wasip2 --profile edge
//! # -> target/wasm32-wasip2/edge/knowedge_edge_spin.wasm
//! ```

/// The settings shared by every edge adapter.
pub use knowedge_shared::api::settings::{
    EXPERIMENT_VAR, INGEST_KEY_VAR, INGEST_URL_VAR, PSEUDONYM_KEY_VAR, PUBLIC_KEY_VAR,
};

/// Model file read when `KNOWEDGE_MODEL_PATH` is not set.
pub const DEFAULT_MODEL_PATH: &str = "/models/model.kwm";
/// Variable overriding the model file path.
pub const MODEL_PATH_VAR: &str = "KNOWEDGE_MODEL_PATH";
/// Sentiment model file read when `KNOWEDGE_SENTIMENT_MODEL_PATH` is not set.
pub const DEFAULT_SENTIMENT_MODEL_PATH: &str = "/models/sentiment.kwm";
/// Variable overriding the sentiment model file path.
pub const SENTIMENT_MODEL_PATH_VAR: &str = "KNOWEDGE_SENTIMENT_MODEL_PATH";
/// Variable naming the directory of published versions (`<version>.kwm`) that experiment variants name.
pub const STORE_DIR_VAR: &str = "KNOWEDGE_STORE_DIR";
/// Store directory read when `KNOWEDGE_STORE_DIR` is not set.
pub const DEFAULT_STORE_DIR: &str = "/store";

// `unsafe` is allowed here only for the export glue `#[http_component]`
// generates (wit-bindgen's canonical ABI entry points); the code below has none.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component {
    use std::cell::RefCell;
    use std::rc::Rc;

    use knowedge_shared::api::{self, EdgeConfig, ModelChoice, Models};
    use knowedge_shared::artifact::PublicKey;
    use knowedge_shared::experiment::Experiment;
    use knowedge_shared::model::Model;
    use knowedge_shared::pseudonym::Pseudonymizer;
    use knowedge_shared::sentiment::SentimentModel;
    use knowedge_shared::store;
    use spin_sdk::http::{Request, Response};
    use spin_sdk::http_component;

    use super::{
        DEFAULT_MODEL_PATH, DEFAULT_SENTIMENT_MODEL_PATH, DEFAULT_STORE_DIR, EXPERIMENT_VAR, INGEST_KEY_VAR,
        INGEST_URL_VAR, MODEL_PATH_VAR, PSEUDONYM_KEY_VAR, PUBLIC_KEY_VAR, SENTIMENT_MODEL_PATH_VAR, STORE_DIR_VAR,
    };

    /// Answers one request with the model currently on disk (or the
    /// learner's variant's model under an experiment), and logs the exposure.
    #[http_component]
    async fn handle(req: Request) -> anyhow::Result<Response> {
        let config =
            EdgeConfig { pseudonymizer: pseudonymizer(), experiment: experiment(), request_id: Some(request_id()) };
        let method = req.method().to_string();
        let request = api::Request { method: &method, path: req.path(), query: req.query() };
        if request.path == api::EVENTS_PATH {
            return Ok(reply(forward(&request, req.body(), &config).await));
        }
        let not_needed = "not needed for this route".to_owned();
        let (model, sentiment) = match api::model_choice(&request, &config) {
            ModelChoice::Current => (load_model(None), Err(not_needed)),
            ModelChoice::Version(v) => (load_model(Some(&v)), Err(not_needed)),
            ModelChoice::Sentiment => (Err(not_needed), load_sentiment_model()),
        };
        let models = Models {
            recommender: model.as_deref().map_err(String::as_str),
            sentiment: sentiment.as_deref().map_err(String::as_str),
        };
        let answer = api::handle_with_body(&request, req.body(), models, &config);
        if let Some(line) = &answer.exposure {
            println!("{line}");
        }
        Ok(reply(answer))
    }

    fn reply(answer: api::Response) -> Response {
        Response::builder().status(answer.status).header("content-type", "application/json").body(answer.body).build()
    }

    /// `POST /v1/events`: the batch, given variants and the recommendation id,
    /// sent to ingestion with the edge's ingest key; ingestion's answer is relayed.
    async fn forward(request: &api::Request<'_>, body: &[u8], config: &EdgeConfig) -> api::Response {
        let (Some(url), Some(key)) = (setting(INGEST_URL_VAR), setting(INGEST_KEY_VAR)) else {
            return api::events_not_configured();
        };
        let batch = match api::forward_events(request, body, config) {
            Ok(b) => b,
            Err(answer) => return answer,
        };
        let outgoing = Request::post(url, batch)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {key}"))
            .build();
        match spin_sdk::http::send::<_, Response>(outgoing).await {
            Ok(r) => api::Response {
                status: *r.status(),
                body: String::from_utf8_lossy(r.body()).into_owned(),
                exposure: None,
            },
            Err(e) => api::Response::error(502, "ingestion_unavailable", format!("cannot reach ingestion: {e}")),
        }
    }

    /// The experiment in `KNOWEDGE_EXPERIMENT`; an invalid one is reported
    /// on standard error and ignored (every learner gets the current model).
    fn experiment() -> Option<Experiment> {
        let text = setting(EXPERIMENT_VAR).filter(|t| !t.trim().is_empty())?;
        Experiment::from_json(&text).inspect_err(|e| eprintln!("knowedge: {EXPERIMENT_VAR}: {e}")).ok()
    }

    /// A fresh request id from the runtime's randomness (std's hash keys come from `wasi:random`).
    fn request_id() -> String {
        use std::hash::{BuildHasher, Hasher};
        let draw = || {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u8(0);
            h.finish()
        };
        format!("r-{:016x}{:016x}", draw(), draw())
    }

    /// A setting: the Spin variable named like `name` without its
    /// `KNOWEDGE_` prefix, in lower case (`KNOWEDGE_PSEUDONYM_KEY` →
    /// `pseudonym_key`), else the environment variable `name`.
    fn setting(name: &str) -> Option<String> {
        let variable = name.strip_prefix("KNOWEDGE_").unwrap_or(name).to_ascii_lowercase();
        let value = spin_sdk::variables::get(&variable).ok().or_else(|| std::env::var(name).ok())?;
        // An empty value (a manifest default) means "not set".
        (!value.trim().is_empty()).then_some(value)
    }

    fn pseudonymizer() -> Option<Pseudonymizer> {
        let hex = setting(PSEUDONYM_KEY_VAR)?;
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
        static VARIANT_MODEL: RefCell<Option<Cached<Model>>> = const { RefCell::new(None) };
        static SENTIMENT: RefCell<Option<Cached<SentimentModel>>> = const { RefCell::new(None) };
    }

    /// The current model, or with `version` that version from the store directory.
    fn load_model(version: Option<&str>) -> Result<Rc<Model>, String> {
        match version {
            None => MODEL.with(|cell| cached(cell, MODEL_PATH_VAR, DEFAULT_MODEL_PATH, Model::from_artifact)),
            Some(v) => {
                let dir = setting(STORE_DIR_VAR).unwrap_or_else(|| DEFAULT_STORE_DIR.to_owned());
                let path = format!("{}/{}", dir.trim_end_matches('/'), store::artifact_name(v));
                VARIANT_MODEL.with(|cell| cached_at(cell, path, Model::from_artifact))
            }
        }
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
        let path = setting(path_var).unwrap_or_else(|| default_path.to_owned());
        cached_at(cell, path, load)
    }

    /// [`cached`] for a file path.
    fn cached_at<T, E: std::fmt::Display>(
        cell: &RefCell<Option<Cached<T>>>,
        path: String,
        load: impl Fn(&[u8], &PublicKey) -> Result<T, E>,
    ) -> Result<Rc<T>, String> {
        let key_hex = setting(PUBLIC_KEY_VAR).ok_or_else(|| format!("{PUBLIC_KEY_VAR} is not set"))?;
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
