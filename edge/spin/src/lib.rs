//! The knowedge edge as a Spin HTTP component.
//!
//! Built for `wasm32-wasip2`, the component exports
//! `wasi:http/incoming-handler@0.2.0` and imports Spin's
//! `fermyon:spin/variables@2.0.0`, so it runs under Spin (`spin up`,
//! `spin deploy`) and under `knowedge-edge-host`, which provides both.
//!
//! A thin adapter: it parses the request, reads its settings, gets the model
//! the route needs through the core's [`ModelSlot`](knowedge_edge::slot::ModelSlot)
//! (reading the model store), and hands everything to
//! [`knowedge_edge::api::handle_with_body`], which holds all routing,
//! parameter checks and JSON shapes. `POST /v1/events` is forwarded to
//! ingestion with `wasi:http` (the body prepared by
//! [`knowedge_edge::api::forward_events`]).
//!
//! Models come from the Spin key-value store labelled [`MODELS_STORE`]
//! (`fermyon:spin/key-value@2.0.0`), laid out as a model store
//! ([`knowedge_format::store`]): `current` and `current-sentiment` name
//! versions, `<version>.kwm` are their signed artifacts. New models arrive
//! there through the publish route, `PUT /v1/admin/models/<key>` with
//! `Authorization: Bearer <publish key>`, whose rules are
//! [`knowedge_edge::publish`]'s: verified artifacts first, then pointers to
//! stored versions that do not go back; no redeploy. Only if the variable
//! `models_dir` is set are models read from that directory instead (the
//! files layout of earlier releases, which changes only with a deploy), and
//! publishing is off.
//!
//! Each request answered from `current` or `current-sentiment` reads that
//! pointer; a model is read and verified the first time an instance meets its
//! version and kept while the pointer names it (Spin starts an instance per
//! request, the local host reuses them).
//!
//! Settings are Spin application variables (`fermyon:spin/variables`; the
//! name without `KNOWEDGE_`, in lower case: `signing_public_key`,
//! `pseudonym_key`, …, declared in `spin.toml`), else environment variables
//! of the full names.
//!
//! | setting | meaning |
//! |---|---|
//! | `KNOWEDGE_SIGNING_PUBLIC_KEY` | hex ed25519 keys the model artifacts may be signed with, comma separated (rotation) |
//! | `KNOWEDGE_TOKEN_KEYS`, `KNOWEDGE_TOKEN_AUDIENCE` | hex ed25519 keys learner tokens are verified with, and the audience they name (see `knowedge_edge::token`) |
//! | `KNOWEDGE_CORS_ORIGINS` | origins browsers may call from, comma separated |
//! | `KNOWEDGE_PSEUDONYM_KEY` | hex key mapping request user ids to model pseudonyms |
//! | `KNOWEDGE_PUBLISH_KEY` | the key the publish route requires (secret); unset: publishing is off |
//! | `KNOWEDGE_MODELS_DIR` | optional: read models from this directory instead of the key-value store |
//! | `KNOWEDGE_STORE_DIR` | optional: directory of published `<version>.kwm` files that experiment variants name (default: where the models come from) |
//! | `KNOWEDGE_EXPERIMENT` | optional A/B experiment (JSON, see `knowedge_edge::experiment`) |
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
pub use knowedge_edge::settings::{
    CORS_ORIGINS_VAR, EXPERIMENT_VAR, INGEST_KEY_VAR, INGEST_URL_VAR, PSEUDONYM_KEY_VAR, PUBLIC_KEY_VAR,
    PUBLISH_KEY_VAR, TOKEN_AUDIENCE_VAR, TOKEN_KEYS_VAR,
};

/// Label of the Spin key-value store the models are kept in (declared in
/// `spin.toml` as `key_value_stores = ["models"]`).
pub const MODELS_STORE: &str = "models";
/// Variable naming a model directory to read instead of the key-value store.
pub const MODELS_DIR_VAR: &str = "KNOWEDGE_MODELS_DIR";
/// Variable naming the directory of published versions that experiment variants name.
pub const STORE_DIR_VAR: &str = "KNOWEDGE_STORE_DIR";

// `unsafe` is allowed here only for the export glue `#[http_component]`
// generates (wit-bindgen's canonical ABI entry points); the code below has none.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component {
    use std::cell::RefCell;
    use std::sync::Arc;

    use knowedge_edge::api::{self, EdgeConfig, ModelChoice, Models};
    use knowedge_edge::publish::{self, Publisher, Refusal};
    use knowedge_edge::settings::{Loaded, spin_variable};
    use knowedge_edge::slot::{Event, ModelSlot, Servable, Step, Versions};
    use knowedge_format::artifact::KeySet;
    use knowedge_format::store::Channel;
    use knowedge_scoring::model::Model;
    use knowedge_scoring::sentiment::SentimentModel;
    use spin_sdk::http::{Request, Response};
    use spin_sdk::http_component;

    use super::*;

    thread_local! {
        static RECOMMENDER: RefCell<Option<ModelSlot<Model>>> = const { RefCell::new(None) };
        static SENTIMENT: RefCell<Option<ModelSlot<SentimentModel>>> = const { RefCell::new(None) };
        static VARIANTS: RefCell<Option<Versions<Model>>> = const { RefCell::new(None) };
        static SETTINGS: RefCell<Loaded> = RefCell::new(Loaded::default());
        /// The key-value store [`MODELS_STORE`], opened once per instance.
        static STORE: RefCell<Option<spin_sdk::key_value::Store>> = const { RefCell::new(None) };
    }

    /// Answers one request and logs its exposure.
    #[http_component]
    async fn handle(req: Request) -> anyhow::Result<Response> {
        let (mut config, keys) = SETTINGS.with_borrow_mut(|loaded| {
            for problem in loaded.load(setting) {
                eprintln!("knowedge: {problem}");
            }
            (loaded.config(), loaded.keys())
        });
        config.request_id = Some(request_id());
        config.now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| chrono::DateTime::from_timestamp(i64::try_from(d.as_secs()).ok()?, d.subsec_nanos()));
        let method = req.method().to_string();
        let header = |name: &str| req.header(name).and_then(|v| v.as_str());
        let request = api::Request::new(&method, req.path(), req.query())
            .with_authorization(header("authorization"))
            .with_origin(header("origin"), header("access-control-request-method"));
        if request.path == api::EVENTS_PATH {
            return Ok(reply(forward(&request, req.body(), &config).await.for_origin(&request, &config)));
        }
        if let Some(key) = publish::object(request.path) {
            let answer = publish_model(&method, key, header("authorization"), req.body(), &keys);
            return Ok(reply(answer.for_origin(&request, &config)));
        }
        let (model, sentiment) = match api::model_choice(&request, &config) {
            ModelChoice::Current => (serve(&RECOMMENDER, Channel::Recommender, &keys), not_needed()),
            ModelChoice::Version(v) => (variant(&v, &keys), not_needed()),
            ModelChoice::Sentiment => (not_needed(), serve(&SENTIMENT, Channel::Sentiment, &keys)),
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

    /// The model a route does not use.
    fn not_needed<T>() -> Result<T, String> {
        Err("not needed for this route".to_owned())
    }

    fn reply(answer: api::Response) -> Response {
        let mut response = Response::builder();
        response.status(answer.status).header("content-type", "application/json");
        for (name, value) in answer.headers {
            response.header(name, value);
        }
        response.body(answer.body).build()
    }

    /// `POST /v1/events`: the prepared batch sent to ingestion with the edge's key; its answer relayed.
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
            Ok(r) => api::Response::relayed(*r.status(), r.body()),
            Err(e) => api::Response::error(502, "ingestion_unavailable", format!("cannot reach ingestion: {e}")),
        }
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

    /// A setting: the Spin variable, else the environment variable; empty means unset.
    fn setting(name: &str) -> Option<String> {
        let value = spin_sdk::variables::get(&spin_variable(name)).ok().or_else(|| std::env::var(name).ok())?;
        (!value.trim().is_empty()).then_some(value)
    }

    /// Where models are read from: the directory `models_dir` names, else the key-value store.
    enum Source {
        Dir(String),
        Store,
    }

    impl Source {
        /// The models' source: the model directory if one is set.
        fn models() -> Self {
            setting(MODELS_DIR_VAR).map_or(Source::Store, Source::Dir)
        }

        /// Where experiment variants' versions are read from.
        fn versions() -> Self {
            setting(STORE_DIR_VAR).map_or_else(Self::models, Source::Dir)
        }

        /// Reads object `name`: its bytes, `None` if absent, or why not.
        fn read(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
            match self {
                Source::Dir(dir) => match std::fs::read(format!("{}/{name}", dir.trim_end_matches('/'))) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e.to_string()),
                },
                Source::Store => with_store(|store| store.get(name)),
            }
        }
    }

    /// Runs `f` on the models store (opened on first use); its errors as text.
    fn with_store<T>(
        f: impl FnOnce(&spin_sdk::key_value::Store) -> Result<T, spin_sdk::key_value::Error>,
    ) -> Result<T, String> {
        STORE.with_borrow_mut(|cell| {
            if cell.is_none() {
                let store = spin_sdk::key_value::Store::open(MODELS_STORE)
                    .map_err(|e| format!("cannot open the key-value store `{MODELS_STORE}`: {e}"))?;
                *cell = Some(store);
            }
            let store = cell.as_ref().ok_or_else(|| format!("the key-value store `{MODELS_STORE}` is not open"))?;
            f(store).map_err(|e| format!("key-value store `{MODELS_STORE}`: {e}"))
        })
    }

    /// `PUT /v1/admin/models/<key>`: a verified artifact or pointer written to the store.
    fn publish_model(
        method: &str,
        key: &str,
        authorization: Option<&str>,
        body: &[u8],
        keys: &Result<KeySet, String>,
    ) -> api::Response {
        let publish_key = setting(PUBLISH_KEY_VAR);
        let publisher = Publisher { publish_key: publish_key.as_deref(), keys: keys.as_ref().map_err(String::as_str) };
        if let Source::Dir(dir) = Source::models() {
            // Only whoever may publish learns why publishing is off.
            if let Err(refusal) = publisher.authorize(authorization) {
                return refusal.response();
            }
            return api::Response::error(
                403,
                "publishing_disabled",
                format!("models are read from the directory {dir} (`models_dir`), not from the key-value store"),
            );
        }
        if method == "GET" {
            return match publisher.pointer(key, authorization, |name| Source::Store.read(name)) {
                Ok(bytes) => publish::pointer_answer(key, &bytes),
                Err(refusal) => refusal.response(),
            };
        }
        let accepted = match publisher.check(method, key, authorization, body, |name| Source::Store.read(name)) {
            Ok(accepted) => accepted,
            Err(refusal) => {
                if refusal.status() != 401 {
                    eprintln!("knowedge: refused to publish {key:.140}: {refusal}");
                }
                return refusal.response();
            }
        };
        match with_store(|store| store.set(&accepted.key, accepted.value)) {
            Ok(()) => {
                eprintln!("knowedge: published {} (version {})", accepted.key, accepted.version);
                accepted.response()
            }
            Err(why) => Refusal::Store(why).response(),
        }
    }

    /// The model the channel's pointer names in the model store.
    fn serve<M: Servable>(
        cell: &'static std::thread::LocalKey<RefCell<Option<ModelSlot<M>>>>,
        channel: Channel,
        keys: &Result<KeySet, String>,
    ) -> Result<Arc<M>, String> {
        let key = keys.clone()?;
        let source = Source::models();
        cell.with_borrow_mut(|slot| {
            let slot = slot.get_or_insert_with(|| ModelSlot::new(channel, key.clone()));
            slot.use_key(&key);
            let step = slot.resolve(|name| source.read(name));
            for event in slot.take_events() {
                if let Event::Refused(version, reason) = event {
                    eprintln!("knowedge: refused model {version} from {}: {reason}", channel.pointer());
                }
            }
            match step {
                Step::Serve(model) => Ok(model),
                Step::Unavailable(reason) => Err(reason),
                Step::Fetch { object, .. } => Err(format!("`{object}` was not read")),
            }
        })
    }

    /// A published version an experiment variant names.
    fn variant(version: &str, keys: &Result<KeySet, String>) -> Result<Arc<Model>, String> {
        let key = keys.clone()?;
        let source = Source::versions();
        VARIANTS.with_borrow_mut(|versions| {
            let versions = versions.get_or_insert_with(|| Versions::new(key.clone(), 4));
            versions.use_key(&key);
            versions.resolve(version, |object| source.read(object))
        })
    }
}
