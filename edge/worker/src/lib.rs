//! The knowedge edge scorer as a Cloudflare Worker.
//!
//! A thin adapter like the Spin component (`edge/spin`): per request it reads
//! its configuration from the Worker's environment, loads and verifies the one
//! model the route needs from Workers KV, and hands everything, the request
//! body included, to [`knowedge_shared::api::handle_with_body`], which holds
//! all routing, parameter checks and JSON shapes.
//!
//! | binding | kind | meaning |
//! |---|---|---|
//! | `MODELS` | KV namespace | the model store: `current` (and `current-sentiment`) hold a version, `<version>.kwm` its signed artifact (the layout of [`knowedge_shared::store`]) |
//! | `KNOWEDGE_SIGNING_PUBLIC_KEY` | secret or var | hex ed25519 key the artifacts must be signed with |
//! | `KNOWEDGE_PSEUDONYM_KEY` | secret or var | hex key mapping request user ids to model pseudonyms |
//! | `KNOWEDGE_EXPERIMENT` | var | optional A/B experiment (JSON); variants name `current` or a version in `MODELS` |
//! | `KNOWEDGE_INGEST_URL`, `KNOWEDGE_INGEST_KEY` | var, secret | ingestion endpoint and the Worker's ingest key: `POST /v1/events` forwards there |
//!
//! Each recommendation answer's exposure record is logged (`console.log`) as
//! one JSON line, for Workers Logpush.
//!
//! Models: each isolate keeps the last model it verified, keyed by version
//! and public key, so a request costs one KV read of the pointer. A new
//! version is verified with [`knowedge_shared::model::Model::from_artifact`]
//! (signature, format version, manifest) before it replaces the old one; a
//! version that fails is remembered as refused (and logged), and the isolate
//! keeps answering with the model it had. With no good model at all the
//! shared API answers `503` with the reason.
//!
//! Request bodies are kept up to one byte past
//! [`knowedge_shared::api::MAX_BODY_BYTES`] (the rest is read and dropped), so
//! an oversized body is answered `413` by the shared API without holding all
//! of it in memory.
//!
//! Built natively the crate is empty apart from these constants, so
//! `cargo build --workspace` keeps working. The Worker is built with
//! `worker-build` (see `wrangler.toml` and `cargo xtask worker`):
//!
//! ```text
//! cd edge/worker && worker-build --release
//! # -> build/worker/shim.mjs, build/index.js, build/index_bg.wasm
//! ```

/// The settings shared by every edge adapter.
pub use knowedge_shared::api::settings::{
    EXPERIMENT_VAR, INGEST_KEY_VAR, INGEST_URL_VAR, PSEUDONYM_KEY_VAR, PUBLIC_KEY_VAR,
};

/// KV namespace binding holding the model store.
pub const MODELS_BINDING: &str = "MODELS";

// `unsafe` is allowed here only for the glue `#[event(fetch)]` and
// wasm-bindgen generate; the code below has none.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod worker_glue {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::thread::LocalKey;

    use futures::StreamExt;
    use knowedge_shared::api::{self, EdgeConfig, ModelChoice, Models};
    use knowedge_shared::artifact::PublicKey;
    use knowedge_shared::experiment::Experiment;
    use knowedge_shared::model::Model;
    use knowedge_shared::pseudonym::Pseudonymizer;
    use knowedge_shared::sentiment::SentimentModel;
    use knowedge_shared::store;
    use worker::kv::KvStore;
    use worker::{
        Context, Env, Fetch, Headers, Method, Request, RequestInit, Response, console_error, console_log, event, js_sys,
    };

    use super::{EXPERIMENT_VAR, INGEST_KEY_VAR, INGEST_URL_VAR, MODELS_BINDING, PSEUDONYM_KEY_VAR, PUBLIC_KEY_VAR};

    /// The verified model an isolate serves, and the last version it refused.
    struct Slot<T> {
        /// Hex public key the cached entries were checked with.
        key: String,
        /// Version and model being served.
        serving: Option<(String, Rc<T>)>,
        /// Version refused, with the reason.
        refused: Option<(String, String)>,
    }

    impl<T> Slot<T> {
        const fn empty() -> Self {
            Self { key: String::new(), serving: None, refused: None }
        }
    }

    thread_local! {
        static RECOMMENDER: RefCell<Slot<Model>> = const { RefCell::new(Slot::empty()) };
        static SENTIMENT: RefCell<Slot<SentimentModel>> = const { RefCell::new(Slot::empty()) };
    }

    /// Answers one request with the current model from KV.
    #[event(fetch)]
    async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
        let url = req.url()?;
        let path = url.path().to_owned();
        let query = url.query().unwrap_or("").to_owned();
        let method = req.method().to_string();
        let body = read_body(&mut req).await?;

        let config = EdgeConfig {
            pseudonymizer: text_binding(&env, PSEUDONYM_KEY_VAR).and_then(pseudonymizer),
            experiment: experiment(&env),
            request_id: Some(request_id()),
        };
        let request = api::Request { method: &method, path: &path, query: &query };
        if path == api::EVENTS_PATH {
            return reply(forward(&request, &body, &config, &env).await);
        }
        let not_needed = "not needed for this route".to_owned();
        let (model, sentiment) = match api::model_choice(&request, &config) {
            ModelChoice::Current => {
                (current(&RECOMMENDER, &env, store::CURRENT, Model::from_artifact).await, Err(not_needed))
            }
            ModelChoice::Version(v) => (version(&env, &v).await, Err(not_needed)),
            ModelChoice::Sentiment => (
                Err(not_needed),
                current(&SENTIMENT, &env, store::CURRENT_SENTIMENT, SentimentModel::from_artifact).await,
            ),
        };
        let models = Models {
            recommender: model.as_deref().map_err(String::as_str),
            sentiment: sentiment.as_deref().map_err(String::as_str),
        };
        let answer = api::handle_with_body(&request, &body, models, &config);
        if let Some(line) = &answer.exposure {
            console_log!("{line}");
        }
        reply(answer)
    }

    fn reply(answer: api::Response) -> worker::Result<Response> {
        Ok(Response::builder()
            .with_status(answer.status)
            .with_header("content-type", "application/json")?
            .fixed(answer.body.into_bytes()))
    }

    /// `POST /v1/events`: the batch, given variants and the recommendation id,
    /// sent to ingestion with the Worker's ingest key; ingestion's answer is relayed.
    async fn forward(request: &api::Request<'_>, body: &[u8], config: &EdgeConfig, env: &Env) -> api::Response {
        let (Some(url), Some(key)) = (text_binding(env, INGEST_URL_VAR), text_binding(env, INGEST_KEY_VAR)) else {
            return api::events_not_configured();
        };
        let batch = match api::forward_events(request, body, config) {
            Ok(b) => b,
            Err(answer) => return answer,
        };
        let sent = async {
            let headers = Headers::new();
            headers.set("content-type", "application/json")?;
            headers.set("authorization", &format!("Bearer {key}"))?;
            let mut init = RequestInit::new();
            init.with_method(Method::Post)
                .with_headers(headers)
                .with_body(Some(String::from_utf8_lossy(&batch).into_owned().into()));
            let mut response = Fetch::Request(Request::new_with_init(&url, &init)?).send().await?;
            Ok::<_, worker::Error>((response.status_code(), response.text().await?))
        };
        match sent.await {
            Ok((status, body)) => api::Response { status, body, exposure: None },
            Err(e) => api::Response::error(502, "ingestion_unavailable", format!("cannot reach ingestion: {e}")),
        }
    }

    /// The experiment in `KNOWEDGE_EXPERIMENT`; an invalid one is logged and ignored.
    fn experiment(env: &Env) -> Option<Experiment> {
        let text = text_binding(env, EXPERIMENT_VAR).filter(|t| !t.trim().is_empty())?;
        Experiment::from_json(&text).inspect_err(|e| console_error!("knowedge: {EXPERIMENT_VAR}: {e}")).ok()
    }

    /// A fresh request id from the isolate's randomness.
    fn request_id() -> String {
        let draw = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
        format!("r-{:08x}{:08x}{:08x}{:08x}", draw(), draw(), draw(), draw())
    }

    thread_local! {
        /// Published versions an experiment's variants named, verified (versions never change).
        static VERSIONS: RefCell<Vec<(String, String, Rc<Model>)>> = const { RefCell::new(Vec::new()) };
    }

    /// A published version from KV, verified once per isolate.
    async fn version(env: &Env, version: &str) -> Result<Rc<Model>, String> {
        let key_hex = text_binding(env, PUBLIC_KEY_VAR).ok_or_else(|| format!("{PUBLIC_KEY_VAR} is not set"))?;
        let cached = VERSIONS.with_borrow(|v| {
            v.iter().find(|(k, name, _)| *k == key_hex && name == version).map(|(_, _, m)| Rc::clone(m))
        });
        if let Some(model) = cached {
            return Ok(model);
        }
        let key = PublicKey::from_hex(&key_hex).map_err(|e| format!("{PUBLIC_KEY_VAR}: {e}"))?;
        let kv: KvStore = env.kv(MODELS_BINDING).map_err(|e| format!("KV binding {MODELS_BINDING}: {e}"))?;
        let name = store::artifact_name(version);
        let bytes = kv.get(&name).bytes().await.map_err(|e| format!("cannot read `{name}`: {e}"))?;
        let bytes = bytes.ok_or_else(|| format!("no `{name}` in {MODELS_BINDING}"))?;
        let model = Rc::new(Model::from_artifact(&bytes, &key).map_err(|e| format!("version {version}: {e}"))?);
        VERSIONS.with_borrow_mut(|v| {
            // A handful of variants at most; keep the newest few.
            if v.len() >= 4 {
                v.remove(0);
            }
            v.push((key_hex, version.to_owned(), Rc::clone(&model)));
        });
        Ok(model)
    }

    /// The request body, kept up to one byte past the most the API accepts;
    /// the rest is read and dropped (answering before the body is consumed
    /// stalls `wrangler dev`'s proxy).
    async fn read_body(req: &mut Request) -> worker::Result<Vec<u8>> {
        if req.inner().body().is_none() {
            return Ok(Vec::new());
        }
        let mut stream = req.stream()?;
        let mut body = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            let room = (api::MAX_BODY_BYTES + 1).saturating_sub(body.len());
            body.extend_from_slice(&chunk[..room.min(chunk.len())]);
        }
        Ok(body)
    }

    /// A string secret or var, if set.
    fn text_binding(env: &Env, name: &str) -> Option<String> {
        env.var(name).ok().map(|v| v.to_string())
    }

    /// The pseudonymizer from its hex key; `None` when invalid.
    fn pseudonymizer(hex: String) -> Option<Pseudonymizer> {
        Pseudonymizer::from_hex(&hex).ok()
    }

    /// The model `pointer` names in KV, verified, or the reason there is none.
    ///
    /// Serves the cached model while the pointer names it; verifies and caches
    /// a new version; keeps the cached model when the new one cannot be read
    /// or is refused.
    async fn current<T>(
        slot: &'static LocalKey<RefCell<Slot<T>>>,
        env: &Env,
        pointer: &str,
        verify: fn(&[u8], &PublicKey) -> knowedge_shared::Result<T>,
    ) -> Result<Rc<T>, String> {
        let key_hex = text_binding(env, PUBLIC_KEY_VAR).ok_or_else(|| format!("{PUBLIC_KEY_VAR} is not set"))?;
        let key = PublicKey::from_hex(&key_hex).map_err(|e| format!("{PUBLIC_KEY_VAR}: {e}"))?;
        slot.with_borrow_mut(|s| {
            if s.key != key_hex {
                *s = Slot { key: key_hex.clone(), serving: None, refused: None };
            }
        });
        let fresh = load(slot, env, pointer, &key, verify).await;
        slot.with_borrow_mut(|s| {
            if s.key != key_hex {
                // Another request changed keys while this one waited on KV: do not mix them.
                return fresh.map(|(_, model)| model).map_err(|(_, reason)| reason);
            }
            match fresh {
                Ok((version, model)) => {
                    s.serving = Some((version, Rc::clone(&model)));
                    Ok(model)
                }
                Err((refused, reason)) => {
                    if let Some(version) = refused {
                        console_error!("knowedge: refused model {version} from {pointer}: {reason}");
                        s.refused = Some((version, reason.clone()));
                    }
                    s.serving.as_ref().map(|(_, model)| Rc::clone(model)).ok_or(reason)
                }
            }
        })
    }

    /// The model the pointer names: the cached one when unchanged, else the
    /// artifact from KV, verified. Errors carry the version to remember as
    /// refused (only for artifacts that failed verification) and the reason.
    async fn load<T>(
        slot: &'static LocalKey<RefCell<Slot<T>>>,
        env: &Env,
        pointer: &str,
        key: &PublicKey,
        verify: fn(&[u8], &PublicKey) -> knowedge_shared::Result<T>,
    ) -> Result<(String, Rc<T>), (Option<String>, String)> {
        let kv: KvStore = env.kv(MODELS_BINDING).map_err(|e| (None, format!("KV binding {MODELS_BINDING}: {e}")))?;
        let content = kv.get(pointer).text().await.map_err(|e| (None, format!("cannot read `{pointer}`: {e}")))?;
        let content = content.ok_or_else(|| (None, format!("no `{pointer}` in {MODELS_BINDING}")))?;
        let version = store::parse_current(content.as_bytes())
            .ok_or_else(|| (None, format!("`{pointer}` does not hold a valid version")))?
            .to_owned();
        let known = slot.with_borrow(|s| {
            if let Some((v, model)) = &s.serving
                && *v == version
            {
                return Some(Ok(Rc::clone(model)));
            }
            match &s.refused {
                Some((v, reason)) if *v == version => Some(Err(reason.clone())),
                _ => None,
            }
        });
        match known {
            Some(Ok(model)) => return Ok((version, model)),
            // Already logged when first refused.
            Some(Err(reason)) => return Err((None, format!("version {version} was refused: {reason}"))),
            None => {}
        }
        let name = store::artifact_name(&version);
        let bytes = kv.get(&name).bytes().await.map_err(|e| (None, format!("cannot read `{name}`: {e}")))?;
        // Not refused: KV is eventually consistent, the artifact may show up later.
        let bytes = bytes.ok_or_else(|| (None, format!("no `{name}` in {MODELS_BINDING}")))?;
        match verify(&bytes, key) {
            Ok(model) => Ok((version, Rc::new(model))),
            Err(e) => Err((Some(version), e.to_string())),
        }
    }
}
