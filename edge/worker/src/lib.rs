//! The knowedge edge scorer as a Cloudflare Worker.
//!
//! A thin adapter like the Spin component (`edge/spin`): per request it reads
//! its configuration from the Worker's environment, loads and verifies the one
//! model the route needs from Workers KV, and hands everything, the request
//! body included, to [`knowedge_edge::api::handle_with_body`], which holds
//! all routing, parameter checks and JSON shapes.
//!
//! | binding | kind | meaning |
//! |---|---|---|
//! | `MODELS` | KV namespace | the model store: `current` (and `current-sentiment`) hold a version, `<version>.kwm` its signed artifact (the layout of [`knowedge_format::store`]) |
//! | `KNOWEDGE_SIGNING_PUBLIC_KEY` | secret or var | hex ed25519 key the artifacts must be signed with |
//! | `KNOWEDGE_PSEUDONYM_KEY` | secret or var | hex key mapping request user ids to model pseudonyms |
//! | `KNOWEDGE_EXPERIMENT` | var | optional A/B experiment (JSON); variants name `current` or a version in `MODELS` |
//! | `KNOWEDGE_INGEST_URL`, `KNOWEDGE_INGEST_KEY` | var, secret | ingestion endpoint and the Worker's ingest key: `POST /v1/events` forwards there |
//!
//! Each recommendation answer's exposure record is logged (`console.log`) as
//! one JSON line, for Workers Logpush.
//!
//! Models: each isolate keeps one [`ModelSlot`](knowedge_edge::slot::ModelSlot)
//! per store channel, the same slot the Spin component and the local host
//! use, so a request costs one KV read of the pointer. A new version is
//! verified (signature, format version, manifest) before it replaces the old
//! one; a version that fails is remembered as refused (and logged), and the
//! isolate keeps answering with the model it had. With no good model at all
//! the shared API answers `503` with the reason.
//!
//! Request bodies are kept up to one byte past
//! [`knowedge_edge::api::MAX_BODY_BYTES`] (the rest is read and dropped), so
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
pub use knowedge_edge::settings::{
    CORS_ORIGINS_VAR, EXPERIMENT_VAR, INGEST_KEY_VAR, INGEST_URL_VAR, PSEUDONYM_KEY_VAR, PUBLIC_KEY_VAR,
    TOKEN_AUDIENCE_VAR, TOKEN_KEYS_VAR,
};

/// KV namespace binding holding the model store.
pub const MODELS_BINDING: &str = "MODELS";

// `unsafe` is allowed here only for the glue `#[event(fetch)]` and
// wasm-bindgen generate; the code below has none.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod worker_glue {
    use std::cell::RefCell;
    use std::sync::Arc;
    use std::thread::LocalKey;

    use futures::StreamExt;
    use knowedge_edge::api::{self, EdgeConfig, ModelChoice, Models};
    use knowedge_edge::settings::Loaded;
    use knowedge_edge::slot::{Event, ModelSlot, Servable, Step, Versions};
    use knowedge_format::artifact::KeySet;
    use knowedge_format::store::Channel;
    use knowedge_scoring::model::Model;
    use knowedge_scoring::sentiment::SentimentModel;
    use worker::kv::KvStore;
    use worker::{
        Context, Env, Fetch, Headers, Method, Request, RequestInit, Response, console_error, console_log, event, js_sys,
    };

    use super::{INGEST_KEY_VAR, INGEST_URL_VAR, MODELS_BINDING};

    thread_local! {
        static RECOMMENDER: RefCell<Option<ModelSlot<Model>>> = const { RefCell::new(None) };
        static SENTIMENT: RefCell<Option<ModelSlot<SentimentModel>>> = const { RefCell::new(None) };
        static VARIANTS: RefCell<Option<Versions<Model>>> = const { RefCell::new(None) };
        static SETTINGS: RefCell<Loaded> = RefCell::new(Loaded::default());
    }

    /// Answers one request with the models KV names.
    #[event(fetch)]
    async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
        let url = req.url()?;
        let (path, query) = (url.path().to_owned(), url.query().unwrap_or("").to_owned());
        let method = req.method().to_string();
        let body = read_body(&mut req).await?;
        let (mut config, keys) = SETTINGS.with_borrow_mut(|loaded| {
            for problem in loaded.load(|name| text_binding(&env, name)) {
                console_error!("knowedge: {problem}");
            }
            (loaded.config(), loaded.keys())
        });
        config.request_id = Some(request_id());
        config.now = chrono::DateTime::from_timestamp_millis(js_sys::Date::now() as i64);
        let header = |name: &str| req.headers().get(name).ok().flatten();
        let (authorization, origin, preflight) =
            (header("authorization"), header("origin"), header("access-control-request-method"));
        let request = api::Request::new(&method, &path, &query)
            .with_authorization(authorization.as_deref())
            .with_origin(origin.as_deref(), preflight.as_deref());
        if path == api::EVENTS_PATH {
            return reply(forward(&request, &body, &config, &env).await.for_origin(&request, &config));
        }
        let (model, sentiment) = match api::model_choice(&request, &config) {
            ModelChoice::Current => (serve(&RECOMMENDER, Channel::Recommender, &env, &keys).await, not_needed()),
            ModelChoice::Version(v) => (variant(&env, &v, &keys).await, not_needed()),
            ModelChoice::Sentiment => (not_needed(), serve(&SENTIMENT, Channel::Sentiment, &env, &keys).await),
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

    /// The model a route does not use.
    fn not_needed<T>() -> Result<T, String> {
        Err("not needed for this route".to_owned())
    }

    fn reply(answer: api::Response) -> worker::Result<Response> {
        let mut response =
            Response::builder().with_status(answer.status).with_header("content-type", "application/json")?;
        for (name, value) in &answer.headers {
            response = response.with_header(name, value)?;
        }
        Ok(response.fixed(answer.body.into_bytes()))
    }

    /// `POST /v1/events`: the prepared batch sent to ingestion with the Worker's key; its answer relayed.
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
            Ok::<_, worker::Error>((response.status_code(), response.bytes().await?))
        };
        match sent.await {
            Ok((status, body)) => api::Response::relayed(status, &body),
            Err(e) => api::Response::error(502, "ingestion_unavailable", format!("cannot reach ingestion: {e}")),
        }
    }

    /// A fresh request id from the isolate's randomness.
    fn request_id() -> String {
        let draw = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
        format!("r-{:08x}{:08x}{:08x}{:08x}", draw(), draw(), draw(), draw())
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

    fn kv(env: &Env) -> Result<KvStore, String> {
        env.kv(MODELS_BINDING).map_err(|e| format!("KV binding {MODELS_BINDING}: {e}"))
    }

    /// The model the channel's pointer names in KV, through the isolate's slot.
    async fn serve<M: Servable>(
        cell: &'static LocalKey<RefCell<Option<ModelSlot<M>>>>,
        channel: Channel,
        env: &Env,
        keys: &Result<KeySet, String>,
    ) -> Result<Arc<M>, String> {
        let key = keys.clone()?;
        let kv = kv(env)?;
        let pointer = kv.get(channel.pointer()).bytes().await.map_err(|e| e.to_string());
        let step = cell.with_borrow_mut(|slot| {
            let slot = slot.get_or_insert_with(|| ModelSlot::new(channel, key.clone()));
            slot.use_key(&key);
            slot.on_pointer(pointer.as_ref().map(Option::as_deref).map_err(String::clone))
        });
        let step = match step {
            Step::Fetch { version, object } => {
                let artifact = kv.get(&object).bytes().await.map_err(|e| e.to_string());
                cell.with_borrow_mut(|slot| match slot {
                    // Another request may have changed keys while this one waited on KV.
                    Some(slot) if *slot.key() == key => {
                        slot.offer(&version, artifact.as_ref().map(Option::as_deref).map_err(String::clone))
                    }
                    _ => Step::Unavailable("the signing key changed; try again".into()),
                })
            }
            step => step,
        };
        cell.with_borrow_mut(|slot| {
            for event in slot.as_mut().map(ModelSlot::take_events).unwrap_or_default() {
                if let Event::Refused(version, reason) = event {
                    console_error!("knowedge: refused model {version} from {}: {reason}", channel.pointer());
                }
            }
        });
        match step {
            Step::Serve(model) => Ok(model),
            Step::Unavailable(reason) => Err(reason),
            Step::Fetch { object, .. } => Err(format!("`{object}` was not read")),
        }
    }

    /// A published version an experiment variant names, verified once per isolate.
    async fn variant(env: &Env, version: &str, keys: &Result<KeySet, String>) -> Result<Arc<Model>, String> {
        let key = keys.clone()?;
        let kept = VARIANTS.with_borrow_mut(|v| {
            let v = v.get_or_insert_with(|| Versions::new(key.clone(), 4));
            v.use_key(&key);
            v.get(version)
        });
        let object = match kept {
            Ok(model) => return Ok(model),
            Err(object) => object,
        };
        let artifact = kv(env)?.get(&object).bytes().await.map_err(|e| e.to_string());
        VARIANTS.with_borrow_mut(|v| match v {
            Some(v) => v.offer(version, artifact.as_ref().map(Option::as_deref).map_err(String::clone)),
            None => Err("no variant cache".into()),
        })
    }
}
