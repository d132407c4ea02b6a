//! The edge HTTP API, shared by every edge adapter.
//!
//! An adapter (the Spin component, the Cloudflare Worker) parses its
//! platform's request into a [`Request`], loads the current model, calls
//! [`handle`] and writes the [`Response`] back. All parameter checks,
//! filters and JSON shapes live here, so every adapter answers the same.
//!
//! | route | parameters | answer |
//! |---|---|---|
//! | `GET /v1/recommend` | `user` (required), `k` (1-100, default 10), `category`, `max_price`, `exclude` (comma separated), `session` (comma separated items of this session, newest last) | `{"model_id", "kind", "user", "known_user", "items": [{"item", "score"}], "recommendation_id", "experiment", "variant"}` (the last two under an A/B experiment, see [`crate::experiment`]) |
//! | `POST /v1/events` | a JSON event batch `{"events": [...]}` (ingestion's format, at most [`MAX_BATCH_EVENTS`] events, [`MAX_BATCH_BYTES`] bytes), optional `recommendation_id` query parameter | ingestion's answer: the adapter forwards the batch prepared by [`forward_events`] (each event given the learner's `experiment` and `variant`, and the `recommendation_id`) with the edge's ingest key |
//! | `POST /v1/rank` | JSON body `{"user", "candidates": ["…"], "session": ["…"]}` (`session` optional; at most [`MAX_RANK_CANDIDATES`](crate::query::MAX_RANK_CANDIDATES) candidates) | `{"model_id", "kind", "user", "known_user", "items": [{"item", "score"}], "unknown": ["…"]}`: known candidates best first, unknown ids apart |
//! | `GET /v1/similar` | `item` (required), `k` | `{"model_id", "item", "items": [...]}` |
//! | `GET /v1/model` | | the model's [`ModelInfo`] |
//! | `GET /healthz` | | `{"status": "ok", "model_id"}` |
//! | `POST /v1/sentiment` | JSON body `{"texts": ["…", …]}`: at most [`MAX_SENTIMENT_TEXTS`](crate::query::MAX_SENTIMENT_TEXTS) texts of at most [`MAX_TEXT_BYTES`](crate::query::MAX_TEXT_BYTES) bytes each, body at most [`MAX_BODY_BYTES`] | `{"model_id", "results": [{"label", "score"}]}`, one result per text, in order |
//!
//! A recommendation answer also yields an exposure record
//! ([`Response::exposure`]) that the adapter logs; under an experiment the
//! adapter asks [`model_choice`] which model (the learner's variant's) to load.
//!
//! Errors are JSON too: `{"error": {"code": "...", "message": "..."}}` with a
//! 4xx status for bad requests and 503 when no valid model is loaded.
//!
//! Requests with a body (`POST /v1/sentiment`) go through
//! [`handle_with_body`], which takes the body bytes next to the [`Request`]
//! and both models in [`Models`]; [`model_choice`] tells an adapter which one
//! model a path needs, so it loads only that one. [`handle`] (no body, one
//! model) keeps answering the `GET` routes as before. Sentiment answers: a
//! `label` (`positive`, `negative`, or `neutral` for a text with nothing to
//! score, such as an empty one) and a `score`, the probability that the text
//! is positive (see [`knowedge_scoring::sentiment`]). A body that is not UTF-8 or not
//! the JSON above is answered `400`; too many texts `400`; a text over
//! [`MAX_TEXT_BYTES`](crate::query::MAX_TEXT_BYTES) or a body over [`MAX_BODY_BYTES`] `413`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use knowedge_format::cors::Cors;

use knowedge_format::event::{MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_ID_CHARS};
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_scoring::model::{Filters, Model, ModelInfo, Scored};
use knowedge_scoring::sentiment::{Sentiment, SentimentModel};

use crate::experiment::{CURRENT, Experiment, Exposure};
use crate::query::{DEFAULT_K, RankQuery, RecommendQuery, SentimentQuery, SimilarQuery};
use crate::settings;
use crate::token::{self, Refusal, TokenKeys};

/// The answer to `POST /v1/events` on an edge with no ingestion endpoint configured.
pub fn events_not_configured() -> Response {
    Response::error(
        503,
        "not_configured",
        format!(
            "this edge forwards no events: {} and {} are not set",
            settings::INGEST_URL_VAR,
            settings::INGEST_KEY_VAR
        ),
    )
}

/// Longest accepted query string, in bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Path of the sentiment route.
pub const SENTIMENT_PATH: &str = "/v1/sentiment";
/// Path of the rank route.
pub const RANK_PATH: &str = "/v1/rank";
/// Path of the event forwarding route.
pub const EVENTS_PATH: &str = "/v1/events";
/// Largest accepted request body, in bytes.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The models an adapter hands to [`handle_with_body`]: each one loaded, or
/// the reason it is not.
#[derive(Clone, Copy, Debug)]
pub struct Models<'a> {
    /// The recommendation model (`/v1/recommend`, `/v1/similar`, `/v1/model`, `/healthz`).
    pub recommender: Result<&'a Model, &'a str>,
    /// The sentiment model (`/v1/sentiment`).
    pub sentiment: Result<&'a SentimentModel, &'a str>,
}

/// An HTTP request as the adapters see it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Path, without the query string.
    pub path: &'a str,
    /// Raw query string, without `?`.
    pub query: &'a str,
    /// The `Authorization` header (a learner token: `Bearer <jwt>`).
    pub authorization: Option<&'a str>,
    /// The `Origin` header (browsers' cross-origin calls).
    pub origin: Option<&'a str>,
    /// The `Access-Control-Request-Method` header of a CORS preflight.
    pub preflight_method: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// A request without the headers the API reads.
    pub fn new(method: &'a str, path: &'a str, query: &'a str) -> Self {
        Self { method, path, query, authorization: None, origin: None, preflight_method: None }
    }

    /// The same request with an `Authorization` header.
    pub fn with_authorization(self, authorization: Option<&'a str>) -> Self {
        Self { authorization, ..self }
    }

    /// The same request with CORS headers (`Origin`, `Access-Control-Request-Method`).
    pub fn with_origin(self, origin: Option<&'a str>, preflight_method: Option<&'a str>) -> Self {
        Self { origin, preflight_method, ..self }
    }

    /// The header names the API reads, for adapters that copy headers selectively.
    pub const HEADERS: [&'static str; 3] = ["authorization", "origin", "access-control-request-method"];
}

/// A JSON answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// JSON body.
    pub body: String,
    /// For a recommendation answer, the [`Exposure`] record as one JSON line,
    /// which the adapter writes to its log (standard output).
    pub exposure: Option<String>,
    /// Headers to send besides `content-type: application/json` (CORS).
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    fn json(status: u16, value: &impl Serialize) -> Self {
        let body = serde_json::to_string(value)
            .unwrap_or_else(|_| r#"{"error":{"code":"internal","message":"serialisation failed"}}"#.into());
        Self { status, body, exposure: None, headers: Vec::new() }
    }

    /// Another service's answer passed on (ingestion's, for forwarded events).
    pub fn relayed(status: u16, body: &[u8]) -> Self {
        Self { status, body: String::from_utf8_lossy(body).into_owned(), exposure: None, headers: Vec::new() }
    }

    /// The answer with the CORS headers `req`'s origin gets under `config`
    /// (none for an origin not allowed); adapters call it on answers they
    /// build themselves, such as a relayed ingestion answer.
    pub fn for_origin(mut self, req: &Request<'_>, config: &EdgeConfig) -> Self {
        for (name, value) in config.cors.headers(req.origin) {
            self.headers.retain(|(n, _)| *n != name);
            self.headers.push((name, value));
        }
        self
    }

    fn refused(refusal: &Refusal) -> Self {
        let mut r = Self::error(401, refusal.code(), refusal);
        r.headers.push((
            "www-authenticate",
            format!("Bearer error=\"invalid_token\", error_description=\"{}\"", refusal.code()),
        ));
        r
    }

    /// A JSON error answer.
    pub fn error(status: u16, code: &str, message: impl std::fmt::Display) -> Self {
        Self::json(status, &json!({"error": {"code": code, "message": message.to_string()}}))
    }
}

impl From<crate::Error> for Response {
    /// A refused query: `400 invalid_parameter`, or `413 text_too_long`.
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::TextTooLong(m) => Response::error(413, "text_too_long", m),
            other => Response::error(400, "invalid_parameter", other),
        }
    }
}

/// What the adapter knows besides the model.
#[derive(Clone, Debug, Default)]
pub struct EdgeConfig {
    /// Maps request user ids to the pseudonyms models are keyed by.
    pub pseudonymizer: Option<Pseudonymizer>,
    /// The A/B experiment running at this edge, if any.
    pub experiment: Option<Experiment>,
    /// A unique id for this request (the adapter draws it from its platform's
    /// randomness); it becomes the answer's `recommendation_id`, followed by
    /// a tag only this edge can make (see [`forward_events`]). Without
    /// one, the id is derived from the learner, the model and the query.
    pub request_id: Option<String>,
    /// The keys learner tokens are verified with (`KNOWEDGE_TOKEN_KEYS`);
    /// without them, personalised requests are refused `401`.
    pub tokens: Option<TokenKeys>,
    /// The current time (tokens expire); the adapter reads its platform's clock.
    pub now: Option<DateTime<Utc>>,
    /// The origins browsers may call this edge from (`KNOWEDGE_CORS_ORIGINS`).
    pub cors: Cors,
}

/// Prefix of the anonymous ids events may carry without a learner token
/// (`anon-` and the client's random id, e.g. a UUID).
pub const ANONYMOUS_PREFIX: &str = "anon-";

/// The learner a request acts for: the subject of its verified token
/// (`Some`), or nobody (`None`, no token and no `user` asked for). A `user`
/// asked for must equal the token's subject.
///
/// | request | answer |
/// |---|---|
/// | no token, no `user` | anonymous (`Ok(None)`) |
/// | no token, `user` given | `401 token_required` |
/// | malformed, forged, unknown key, wrong audience, expired token | `401` |
/// | valid token, `user` = subject or absent | `Ok(Some(subject))` |
/// | valid token, another `user` | `403 user_mismatch` |
pub fn learner(req: &Request<'_>, user: Option<&str>, config: &EdgeConfig) -> Result<Option<String>, Response> {
    let Some(header) = req.authorization.filter(|h| !h.trim().is_empty()) else {
        return match user {
            None => Ok(None),
            Some(_) => Err(Response::refused(&Refusal::Missing)),
        };
    };
    let Some(jwt) = token::bearer(header) else {
        return Err(Response::refused(&Refusal::Invalid("expected `Authorization: Bearer <token>`".into())));
    };
    let Some(keys) = &config.tokens else {
        return Err(Response::error(
            401,
            "token_not_accepted",
            format!("this edge verifies no learner tokens ({} is not set)", settings::TOKEN_KEYS_VAR),
        ));
    };
    let Some(now) = config.now else {
        return Err(Response::error(503, "no_clock", "the edge cannot read the time to check the token"));
    };
    let subject = keys.verify(jwt, now).map_err(|r| Response::refused(&r))?;
    match user {
        Some(u) if u != subject => {
            Err(Response::error(403, "user_mismatch", "the learner token is for another learner than `user`"))
        }
        _ => Ok(Some(subject)),
    }
}

/// The CORS preflight answer: `204` with the allowed methods and headers, or `403`.
fn preflight(req: &Request<'_>, config: &EdgeConfig) -> Response {
    match config.cors.preflight(req.origin.unwrap_or(""), req.preflight_method.unwrap_or("")) {
        Ok(headers) => Response { status: 204, body: String::new(), exposure: None, headers },
        Err(reason) => Response::error(403, "origin_not_allowed", reason),
    }
}

/// Domain of the tags recommendation ids carry.
const RECOMMENDATION_TAG: &str = "recommendation-id";

/// `id` followed by `.` and a tag binding it to the learner's pseudonym
/// (empty for anonymous answers), made with the edge's pseudonym key.
fn tagged_id(id: &str, pseudonym: &str, config: &EdgeConfig) -> String {
    match &config.pseudonymizer {
        Some(p) => {
            let tag = p.tag(RECOMMENDATION_TAG, &[id.as_bytes(), pseudonym.as_bytes()]);
            format!("{id}.k{}", hex::encode(&tag[..8]))
        }
        None => id.to_owned(),
    }
}

/// Whether `tagged` is a recommendation id this edge issued to the learner
/// with `pseudonym`, or to an anonymous learner.
fn is_own_recommendation(tagged: &str, pseudonym: &str, config: &EdgeConfig) -> bool {
    let Some((id, _)) = tagged.rsplit_once('.') else { return false };
    config.pseudonymizer.is_some()
        && (tagged_id(id, pseudonym, config) == tagged || tagged_id(id, "", config) == tagged)
}

/// The model a request needs, so an adapter loads only that one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelChoice {
    /// The recommendation model the store's `current` pointer names.
    Current,
    /// A published recommendation model version (an experiment's variant).
    Version(String),
    /// The sentiment model.
    Sentiment,
}

/// Which model answering `req` needs: the sentiment model for
/// [`SENTIMENT_PATH`]; for `GET /v1/recommend` under an experiment, the
/// model of the learner's variant; else the current model. Requests the API
/// will refuse anyway get [`ModelChoice::Current`].
pub fn model_choice(req: &Request<'_>, config: &EdgeConfig) -> ModelChoice {
    if req.path == SENTIMENT_PATH {
        return ModelChoice::Sentiment;
    }
    if req.path != "/v1/recommend" || req.query.len() > MAX_QUERY_BYTES {
        return ModelChoice::Current;
    }
    let (Some(experiment), Some(p)) = (&config.experiment, &config.pseudonymizer) else {
        return ModelChoice::Current;
    };
    let Ok(params) = Params::parse(req.query) else { return ModelChoice::Current };
    // The token is verified when the request is answered; a forged one only
    // chooses which model refuses it.
    let subject = req.authorization.and_then(token::bearer).and_then(token::unverified_subject);
    match params.get("user").map(str::to_owned).or(subject) {
        Some(user) if !user.is_empty() => {
            let user = user.as_str();
            let variant = experiment.assign(&p.pseudonymize(user));
            if variant.model == CURRENT { ModelChoice::Current } else { ModelChoice::Version(variant.model.clone()) }
        }
        _ => ModelChoice::Current,
    }
}

#[derive(Serialize)]
struct RecommendAnswer<'a> {
    model_id: &'a str,
    kind: &'a str,
    user: Option<&'a str>,
    items: Vec<Scored>,
    recommendation_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    experiment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
}

#[derive(Serialize)]
struct SimilarAnswer<'a> {
    model_id: &'a str,
    item: &'a str,
    items: Vec<Scored>,
}

/// Answers one request, body included, with the models given.
///
/// A CORS preflight (`OPTIONS`) is answered from [`EdgeConfig::cors`]; every
/// answer carries the CORS headers its origin gets.
pub fn handle_with_body(req: &Request<'_>, body: &[u8], models: Models<'_>, config: &EdgeConfig) -> Response {
    if req.method == "OPTIONS" {
        return preflight(req, config);
    }
    route(req, body, models, config).for_origin(req, config)
}

fn route(req: &Request<'_>, body: &[u8], models: Models<'_>, config: &EdgeConfig) -> Response {
    if req.path == SENTIMENT_PATH {
        return sentiment(req, body, models.sentiment);
    }
    if req.path == RANK_PATH {
        return rank(req, body, models.recommender, config);
    }
    if req.path == EVENTS_PATH {
        // Adapters that forward events answer this route before calling here.
        return Response::error(503, "not_configured", "this edge forwards no events (no ingestion endpoint is set)");
    }
    get(req, models.recommender, config)
}

/// Answers one request without a body with the current recommendation
/// model, or with the reason there is none (`POST /v1/sentiment` needs
/// [`handle_with_body`] and is answered `503` here).
pub fn handle(req: &Request<'_>, model: Result<&Model, &str>, config: &EdgeConfig) -> Response {
    let models = Models {
        recommender: model,
        sentiment: Err("this adapter passes no sentiment model (see api::handle_with_body)"),
    };
    handle_with_body(req, &[], models, config)
}

/// The `GET` routes.
fn get(req: &Request<'_>, model: Result<&Model, &str>, config: &EdgeConfig) -> Response {
    if req.query.len() > MAX_QUERY_BYTES {
        return Response::error(
            414,
            "uri_too_long",
            format!("query string is {} bytes; at most {MAX_QUERY_BYTES} are accepted", req.query.len()),
        );
    }
    let route = match req.path {
        "/v1/recommend" | "/v1/similar" | "/v1/model" | "/healthz" => req.path,
        _ => return Response::error(404, "not_found", format!("no route {}", truncate(req.path))),
    };
    if req.method != "GET" {
        return Response::error(405, "method_not_allowed", format!("{route} answers GET only"));
    }
    if route == "/healthz" {
        return Response::json(
            200,
            &json!({"status": "ok", "model_id": model.ok().map(|m| m.info().model_id.clone())}),
        );
    }
    let model = match model {
        Ok(m) => m,
        Err(reason) => return Response::error(503, "no_model", format!("no valid model is loaded: {reason}")),
    };
    let params = match Params::parse(req.query) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match route {
        "/v1/model" => Response::json(200, model.info() as &ModelInfo),
        "/v1/recommend" => recommend(req, &params, model, config),
        _ => similar(&params, model),
    }
}

fn recommend(req: &Request<'_>, p: &Params, model: &Model, config: &EdgeConfig) -> Response {
    let max_price = match p.get("max_price") {
        None => None,
        Some(s) => match s.parse::<f32>() {
            Ok(x) => Some(x),
            Err(_) => return Response::error(400, "invalid_parameter", "`max_price` must be a number ≥ 0"),
        },
    };
    let list = |name: &str| -> Vec<String> {
        p.get(name).map(|s| s.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
    };
    let query = match p.k() {
        Ok(k) => RecommendQuery {
            user: p.get("user").map(str::to_owned),
            k,
            filters: Filters { category: p.get("category").map(str::to_owned), max_price, exclude: list("exclude") },
            session: list("session"),
        },
        Err(r) => return r,
    };
    if let Err(e) = query.validate() {
        return e.into();
    }
    let user = match learner(req, query.user.as_deref(), config) {
        Ok(user) => user,
        Err(refused) => return refused,
    };
    let pseudonym = match (&user, &config.pseudonymizer) {
        (None, _) => None,
        (Some(u), Some(p)) => Some(p.pseudonymize(u)),
        (Some(_), None) => return Response::error(503, "not_configured", "the edge has no pseudonym key"),
    };
    let items = model.recommend_in_session(pseudonym.as_deref(), &query.session, query.k, &query.filters);
    let info = model.info();
    let variant = match (&config.experiment, &pseudonym) {
        (Some(e), Some(p)) => Some((e.name.as_str(), e.assign(p).name.as_str())),
        _ => None,
    };
    let pseudonym = pseudonym.unwrap_or_default();
    let id = match &config.request_id {
        Some(id) => id.clone(),
        None => derived_id(&[pseudonym.as_bytes(), info.model_id.as_bytes(), p.raw.as_bytes()]),
    };
    let recommendation_id = tagged_id(&id, &pseudonym, config);
    let exposure = Exposure {
        recommendation_id: recommendation_id.clone(),
        ts: config.now,
        user: pseudonym.clone(),
        model_id: info.model_id.clone(),
        experiment: variant.map(|v| v.0.to_owned()),
        variant: variant.map(|v| v.1.to_owned()),
        items: items.iter().map(|s| s.item.clone()).collect(),
    };
    let mut answer = Response::json(
        200,
        &RecommendAnswer {
            model_id: &info.model_id,
            kind: info.kind.as_str(),
            user: user.as_deref(),
            items,
            recommendation_id: &recommendation_id,
            experiment: variant.map(|v| v.0),
            variant: variant.map(|v| v.1),
        },
    );
    answer.exposure = Some(knowedge_format::exposure::LogLine::to_json(&exposure));
    answer
}

/// `r-` and 16 hex digits of SHA-256 over the parts (each length-prefixed).
fn derived_id(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let d = h.finalize();
    format!("r-{}", hex::encode(&d[..8]))
}

#[derive(Serialize)]
struct RankAnswer<'a> {
    model_id: &'a str,
    kind: &'a str,
    user: Option<&'a str>,
    items: Vec<Scored>,
    unknown: Vec<String>,
}

fn rank(req: &Request<'_>, body: &[u8], model: Result<&Model, &str>, config: &EdgeConfig) -> Response {
    if req.method != "POST" {
        return Response::error(405, "method_not_allowed", format!("{RANK_PATH} answers POST only"));
    }
    let model = match model {
        Ok(m) => m,
        Err(reason) => return Response::error(503, "no_model", format!("no valid model is loaded: {reason}")),
    };
    let request: RankQuery =
        match json_body(body, "{\"user\": string, \"candidates\": [strings], \"session\": [strings]}") {
            Ok(r) => r,
            Err(r) => return r,
        };
    if let Err(e) = request.validate() {
        return e.into();
    }
    let user = match learner(req, request.user.as_deref(), config) {
        Ok(user) => user,
        Err(refused) => return refused,
    };
    let pseudonym = match (&user, &config.pseudonymizer) {
        (None, _) => None,
        (Some(u), Some(p)) => Some(p.pseudonymize(u)),
        (Some(_), None) => return Response::error(503, "not_configured", "the edge has no pseudonym key"),
    };
    let ranked = model.rank(pseudonym.as_deref(), &request.session, &request.candidates);
    let info = model.info();
    Response::json(
        200,
        &RankAnswer {
            model_id: &info.model_id,
            kind: info.kind.as_str(),
            user: user.as_deref(),
            items: ranked.items,
            unknown: ranked.unknown,
        },
    )
}

/// Prepares a `POST /v1/events` batch for forwarding to ingestion: checks
/// the method, size and shape (`{"events": [...]}`, at most
/// [`MAX_BATCH_EVENTS`], at most [`MAX_BATCH_BYTES`]) and who sends it.
/// Returns the body to send with the edge's ingest key; ingestion validates
/// the events themselves. Errors are the answers to give the client (a CORS
/// preflight is answered here too).
///
/// The edge vouches only for what it knows:
/// * with a learner token, every event's `user_id` becomes the token's
///   subject, whatever the client sent;
/// * without one, every `user_id` must be anonymous (a string starting with
///   [`ANONYMOUS_PREFIX`]), else the batch is refused `401`;
/// * `experiment` and `variant` sent by the client are dropped and replaced
///   by the edge's own assignment of the learner under the running experiment;
/// * a `recommendation_id` (the event's, else the request's
///   `recommendation_id` query parameter) is kept only if this edge issued
///   it to this learner (or to an anonymous learner): its tag is checked
///   with the pseudonym key. Others are dropped.
pub fn forward_events(req: &Request<'_>, body: &[u8], config: &EdgeConfig) -> Result<Vec<u8>, Response> {
    if req.method == "OPTIONS" {
        return Err(preflight(req, config));
    }
    prepare_events(req, body, config).map_err(|r| r.for_origin(req, config))
}

fn prepare_events(req: &Request<'_>, body: &[u8], config: &EdgeConfig) -> Result<Vec<u8>, Response> {
    if req.method != "POST" {
        return Err(Response::error(405, "method_not_allowed", format!("{EVENTS_PATH} answers POST only")));
    }
    if body.len() > MAX_BATCH_BYTES {
        return Err(Response::error(
            413,
            "payload_too_large",
            format!("the body is {} bytes; at most {MAX_BATCH_BYTES} are accepted", body.len()),
        ));
    }
    if req.query.len() > MAX_QUERY_BYTES {
        return Err(Response::error(414, "uri_too_long", "query string too long"));
    }
    let params = Params::parse(req.query)?;
    let recommendation_id = params.get("recommendation_id");
    if let Some(id) = recommendation_id
        && (id.is_empty() || id.chars().count() > MAX_ID_CHARS || id.chars().any(char::is_control))
    {
        return Err(Response::error(
            400,
            "invalid_parameter",
            "`recommendation_id` must be 1-128 printable characters",
        ));
    }
    let subject = learner(req, None, config)?;
    let mut batch: serde_json::Value = json_body(body, "{\"events\": [event objects]}")?;
    let Some(events) = batch.get_mut("events").and_then(serde_json::Value::as_array_mut) else {
        return Err(Response::error(400, "invalid_body", "expected JSON {\"events\": [event objects]}"));
    };
    if events.len() > MAX_BATCH_EVENTS {
        return Err(Response::error(
            413,
            "too_many_events",
            format!("{} events given; at most {MAX_BATCH_EVENTS} per batch", events.len()),
        ));
    }
    for event in events.iter_mut().filter_map(serde_json::Value::as_object_mut) {
        let user = match &subject {
            Some(s) => {
                event.insert("user_id".into(), s.as_str().into());
                s.clone()
            }
            None => match event.get("user_id").and_then(serde_json::Value::as_str) {
                Some(u) if u.starts_with(ANONYMOUS_PREFIX) && u.len() > ANONYMOUS_PREFIX.len() => u.to_owned(),
                _ => {
                    return Err(Response::refused(&Refusal::Invalid(format!(
                        "events for a learner need the learner's token; without one, `user_id` must start with `{ANONYMOUS_PREFIX}`"
                    ))));
                }
            },
        };
        let pseudonym = config.pseudonymizer.as_ref().map(|p| p.pseudonymize(&user));
        event.remove("experiment");
        event.remove("variant");
        if let (Some(e), Some(p)) = (&config.experiment, &pseudonym) {
            event.insert("experiment".into(), e.name.as_str().into());
            event.insert("variant".into(), e.assign(p).name.as_str().into());
        }
        let sent = event.remove("recommendation_id");
        let claimed = sent.as_ref().and_then(serde_json::Value::as_str).or(recommendation_id);
        if let (Some(id), Some(p)) = (claimed, &pseudonym)
            && is_own_recommendation(id, p, config)
        {
            event.insert("recommendation_id".into(), id.into());
        }
    }
    serde_json::to_vec(&batch).map_err(|e| Response::error(400, "invalid_body", e))
}

/// Decodes a JSON request body of the `shape` described, or the 4xx answer.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, Response> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Response::error(
            413,
            "payload_too_large",
            format!("the body is {} bytes; at most {MAX_BODY_BYTES} are accepted", body.len()),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| Response::error(400, "invalid_body", format!("the body is not valid UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| Response::error(400, "invalid_body", format!("expected JSON {shape}: {e}")))
}

#[derive(Serialize)]
struct SentimentAnswer<'a> {
    model_id: &'a str,
    results: Vec<Sentiment>,
}

fn sentiment(req: &Request<'_>, body: &[u8], model: Result<&SentimentModel, &str>) -> Response {
    if req.method != "POST" {
        return Response::error(405, "method_not_allowed", format!("{SENTIMENT_PATH} answers POST only"));
    }
    let model = match model {
        Ok(m) => m,
        Err(reason) => {
            return Response::error(503, "no_model", format!("no valid sentiment model is loaded: {reason}"));
        }
    };
    if body.len() > MAX_BODY_BYTES {
        return Response::error(
            413,
            "payload_too_large",
            format!("the body is {} bytes; at most {MAX_BODY_BYTES} are accepted", body.len()),
        );
    }
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => return Response::error(400, "invalid_body", format!("the body is not valid UTF-8: {e}")),
    };
    let request: SentimentQuery = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            return Response::error(400, "invalid_body", format!("expected JSON {{\"texts\": [strings]}}: {e}"));
        }
    };
    if let Err(e) = request.validate() {
        return e.into();
    }
    Response::json(200, &SentimentAnswer { model_id: &model.info().model_id, results: model.score_all(&request.texts) })
}

fn similar(p: &Params, model: &Model) -> Response {
    let Some(item) = p.get("item") else {
        return Response::error(400, "missing_parameter", "`item` is required");
    };
    let query = match p.k() {
        Ok(k) => SimilarQuery { item: item.to_owned(), k },
        Err(r) => return r,
    };
    if let Err(e) = query.validate() {
        return e.into();
    }
    match model.similar(item, query.k) {
        Some(items) => Response::json(200, &SimilarAnswer { model_id: &model.info().model_id, item, items }),
        None => Response::error(404, "unknown_item", format!("item `{}` is not in the model", truncate(item))),
    }
}

struct Params {
    pairs: Vec<(String, String)>,
    raw: String,
}

impl Params {
    /// Decodes `application/x-www-form-urlencoded` pairs; a value whose
    /// escapes are not UTF-8 (`user=%ff`) is refused rather than replaced.
    fn parse(query: &str) -> Result<Self, Response> {
        let mut out: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (form_decode(k)?, form_decode(v)?);
            if out.iter().any(|(x, _)| *x == k) {
                return Err(Response::error(400, "duplicate_parameter", format!("`{}` is given twice", truncate(&k))));
            }
            out.push((k, v));
        }
        Ok(Self { pairs: out, raw: query.to_owned() })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn k(&self) -> Result<usize, Response> {
        match self.get("k") {
            None => Ok(DEFAULT_K),
            Some(s) => {
                s.parse::<usize>().map_err(|_| ()).and_then(|k| crate::query::check_k(k).map_err(|_| ())).map_err(
                    |()| {
                        Response::error(
                            400,
                            "invalid_parameter",
                            format!("`k` must be an integer from 1 to {}", crate::query::MAX_K),
                        )
                    },
                )
            }
        }
    }
}

/// One form-encoded component: `+` is a space, `%XX` a byte (a `%` not
/// followed by two hex digits stays as it is); the bytes must be UTF-8.
fn form_decode(part: &str) -> Result<String, Response> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| Response::error(400, "invalid_query", "the query string's percent-escapes are not UTF-8"))
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{MAX_SENTIMENT_TEXTS, MAX_TEXT_BYTES};
    use knowedge_format::artifact::{ArtifactBuilder, ModelKind, SigningKey};

    const TOKEN_SEED: [u8; 32] = [1; 32];

    fn now() -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
    }

    /// An `Authorization` header value for `user`.
    fn token_for(user: &str) -> String {
        let jwt =
            token::issue(&TOKEN_SEED, user, token::DEFAULT_AUDIENCE, chrono::Duration::minutes(15), now()).unwrap();
        format!("Bearer {jwt}")
    }

    fn setup() -> (Model, EdgeConfig) {
        let key = SigningKey::from_seed([9; 32]);
        let p = Pseudonymizer::new(&[5; 32]).unwrap();
        let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
        b.items(vec!["a".into(), "b".into(), "c".into()]).users(vec![p.pseudonymize("alice")]);
        b.popularity(vec![3.0, 2.0, 1.0]);
        b.seen(&[vec![0]]);
        b.manifest_mut().model_id = "m-1".into();
        let bytes = b.sign(&key).unwrap();
        (
            Model::from_artifact(&bytes, &key.public_key()).unwrap(),
            EdgeConfig {
                pseudonymizer: Some(p),
                tokens: Some(TokenKeys::from_settings(&token::public_key_hex(&TOKEN_SEED), None).unwrap()),
                now: Some(now()),
                cors: Cors::from_list("https://shop.example"),
                ..EdgeConfig::default()
            },
        )
    }

    /// A GET as the learner the query names (with their token), or anonymous.
    fn get(path: &str, query: &str) -> Response {
        let (m, c) = setup();
        let auth = Params::parse(query).ok().and_then(|p| p.get("user").map(token_for));
        handle(&Request::new("GET", path, query).with_authorization(auth.as_deref()), Ok(&m), &c)
    }

    fn body(r: &Response) -> serde_json::Value {
        serde_json::from_str(&r.body).unwrap()
    }

    #[test]
    fn recommends_for_a_raw_user_id() {
        let r = get("/v1/recommend", "user=alice&k=5");
        assert_eq!(r.status, 200, "{}", r.body);
        let b = body(&r);
        assert!(b.get("known_user").is_none(), "answers do not say whether a learner is known");
        let items: Vec<&str> = b["items"].as_array().unwrap().iter().map(|i| i["item"].as_str().unwrap()).collect();
        assert_eq!(items, ["b", "c"]);
        assert_eq!(body(&get("/v1/recommend", "user=bob&k=1"))["items"][0]["item"], "a");
    }

    fn rank_post(body: &[u8]) -> Response {
        let (m, c) = setup();
        let models = Models { recommender: Ok(&m), sentiment: Err("not needed") };
        let user =
            serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| v["user"].as_str().map(token_for));
        handle_with_body(&Request::new("POST", RANK_PATH, "").with_authorization(user.as_deref()), body, models, &c)
    }

    #[test]
    fn ranks_candidates_and_reports_unknown_ones() {
        let r = rank_post(br#"{"user": "alice", "candidates": ["c", "x", "a", "b"]}"#);
        assert_eq!(r.status, 200, "{}", r.body);
        let b = body(&r);
        let items: Vec<&str> = b["items"].as_array().unwrap().iter().map(|i| i["item"].as_str().unwrap()).collect();
        assert_eq!(items, ["a", "b", "c"]);
        assert_eq!(b["unknown"], serde_json::json!(["x"]));
        assert!(b.get("known_user").is_none());
        assert_eq!(b["model_id"], "m-1");
    }

    #[test]
    fn bad_rank_requests_get_json_4xx() {
        let many = format!(r#"{{"user": "a", "candidates": [{}]}}"#, vec!["\"i\""; 100_000].join(","));
        let huge = vec![b' '; MAX_BODY_BYTES + 1];
        for (body, status) in [
            (&b"{"[..], 400),
            (&b"\xff\xfe"[..], 400),
            (&br#"{"user": "a"}"#[..], 400),
            (&br#"{"user": "", "candidates": []}"#[..], 400),
            (&br#"{"user": "a", "candidates": [], "k": 1}"#[..], 400),
            (&br#"{"user": "a", "candidates": [1]}"#[..], 400),
            (many.as_bytes(), 400),
            (&huge[..], 413),
        ] {
            let r = rank_post(body);
            assert_eq!(r.status, status, "{}", r.body);
            assert!(body_has_error(&r), "{}", r.body);
        }
        let (m, c) = setup();
        assert_eq!(handle(&Request::new("GET", RANK_PATH, ""), Ok(&m), &c).status, 405);
        assert_eq!(handle(&Request::new("POST", RANK_PATH, ""), Ok(&m), &c).status, 400);
        let none = Models { recommender: Err("none yet"), sentiment: Err("none") };
        let r = handle_with_body(&Request::new("POST", RANK_PATH, ""), b"{}", none, &c);
        assert_eq!(r.status, 503);
    }

    fn body_has_error(r: &Response) -> bool {
        body(r)["error"]["code"].is_string()
    }

    #[test]
    fn session_parameter_is_checked() {
        assert_eq!(get("/v1/recommend", "user=alice&session=b,zz").status, 200);
        let long = format!("user=alice&session={}", vec!["x"; crate::query::MAX_SESSION + 1].join(","));
        assert_eq!(get("/v1/recommend", &long).status, 400);
        // The session item is not recommended again.
        let b = body(&get("/v1/recommend", "user=bob&session=a"));
        assert_eq!(b["items"][0]["item"], "b");
    }

    #[test]
    fn experiments_assign_variants_and_answers_log_exposures() {
        let (m, mut c) = setup();
        let e = Experiment::from_json(
            r#"{"name": "ranker", "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "model": "v-b"}]}"#,
        )
        .unwrap();
        c.experiment = Some(e.clone());
        let p = c.pseudonymizer.clone().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for u in 0..40 {
            let query = format!("user=learner-{u}&k=2");
            let auth = token_for(&format!("learner-{u}"));
            let req = Request::new("GET", "/v1/recommend", &query).with_authorization(Some(&auth));
            let variant = e.assign(&p.pseudonymize(&format!("learner-{u}")));
            let expected = if variant.name == "b" { ModelChoice::Version("v-b".into()) } else { ModelChoice::Current };
            assert_eq!(model_choice(&req, &c), expected);
            let r = handle(&req, Ok(&m), &c);
            let b = body(&r);
            assert_eq!(b["experiment"], "ranker");
            assert_eq!(b["variant"], variant.name.as_str());
            seen.insert(variant.name.clone());
            let exposure: Exposure = serde_json::from_str(r.exposure.as_deref().unwrap()).unwrap();
            assert_eq!(exposure.recommendation_id, b["recommendation_id"].as_str().unwrap());
            assert_eq!(exposure.variant.as_deref(), Some(variant.name.as_str()));
            assert_eq!(exposure.user, p.pseudonymize(&format!("learner-{u}")));
            assert_eq!(exposure.items.len(), b["items"].as_array().unwrap().len());
        }
        assert_eq!(seen.len(), 2, "both variants get learners");
        // The adapter's request id becomes the recommendation id; errors log nothing.
        c.request_id = Some("r-from-adapter".into());
        let auth = token_for("x");
        let r = handle(&Request::new("GET", "/v1/recommend", "user=x").with_authorization(Some(&auth)), Ok(&m), &c);
        let id = body(&r)["recommendation_id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("r-from-adapter."), "{id}");
        let r = handle(&Request::new("GET", "/v1/recommend", "k=0"), Ok(&m), &c);
        assert_eq!((r.status, r.exposure), (400, None));
        let s = Request::new("POST", SENTIMENT_PATH, "");
        assert_eq!(model_choice(&s, &c), ModelChoice::Sentiment);
    }

    #[test]
    fn without_an_experiment_answers_have_ids_but_no_variant() {
        let r = get("/v1/recommend", "user=alice&k=1");
        let b = body(&r);
        assert!(b["recommendation_id"].as_str().unwrap().starts_with("r-"));
        assert!(b.get("variant").is_none() && b.get("experiment").is_none());
        assert!(r.exposure.is_some());
    }

    #[test]
    fn events_carry_the_token_subject_and_only_the_edges_own_variant_and_recommendation_ids() {
        let (m, mut c) = setup();
        c.experiment = Some(
            Experiment::from_json(
                r#"{"name": "ranker", "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]}"#,
            )
            .unwrap(),
        );
        c.request_id = Some("r-1".into());
        // A recommendation this edge gave alice, and one it gave bob.
        let alice_token = token_for("alice");
        let ask = |user: &str, auth: &str| {
            let query = format!("user={user}");
            let r = handle(&Request::new("GET", "/v1/recommend", &query).with_authorization(Some(auth)), Ok(&m), &c);
            body(&r)["recommendation_id"].as_str().unwrap().to_owned()
        };
        let alices = ask("alice", &alice_token);
        let bobs = ask("bob", &token_for("bob"));
        let query = format!("recommendation_id={alices}");
        let req = Request::new("POST", EVENTS_PATH, &query).with_authorization(Some(&alice_token));
        let batch = format!(
            r#"{{"events": [
            {{"event_id": "e1", "type": "click", "user_id": "mallory", "item_id": "a"}},
            {{"event_id": "e2", "type": "click", "item_id": "b", "recommendation_id": "{bobs}", "experiment": "x", "variant": "y"}},
            {{"event_id": "e3", "type": "click", "recommendation_id": "r-1.0000000000000000"}},
            "not an object"]}}"#
        );
        let out: serde_json::Value =
            serde_json::from_slice(&forward_events(&req, batch.as_bytes(), &c).unwrap()).unwrap();
        let e = &out["events"];
        let alice = c.experiment.as_ref().unwrap().assign(&c.pseudonymizer.as_ref().unwrap().pseudonymize("alice"));
        for i in 0..3 {
            // The token's subject, whatever the client sent; ingestion pseudonymises it.
            assert_eq!(e[i]["user_id"], "alice");
            assert_eq!((&e[i]["experiment"], &e[i]["variant"]), (&"ranker".into(), &alice.name.as_str().into()));
        }
        assert_eq!(e[0]["recommendation_id"], alices.as_str());
        // Another learner's id and a forged tag are dropped.
        assert!(e[1].get("recommendation_id").is_none() && e[2].get("recommendation_id").is_none());
        assert_eq!(e[3], "not an object");

        // Without a token only anonymous ids pass, and they get anonymous recommendation ids.
        let anonymous = body(&handle(&Request::new("GET", "/v1/recommend", ""), Ok(&m), &c))["recommendation_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let anon = format!(
            r#"{{"events": [{{"event_id": "e4", "type": "click", "user_id": "anon-7f3a", "recommendation_id": "{anonymous}"}}]}}"#
        );
        let out: serde_json::Value = serde_json::from_slice(
            &forward_events(&Request::new("POST", EVENTS_PATH, ""), anon.as_bytes(), &c).unwrap(),
        )
        .unwrap();
        assert_eq!(out["events"][0]["recommendation_id"], anonymous.as_str());
        for claimed in [r#""alice""#, r#""anon-""#, "7", "null"] {
            let b = format!(r#"{{"events": [{{"event_id": "e5", "type": "click", "user_id": {claimed}}}]}}"#);
            let r = forward_events(&Request::new("POST", EVENTS_PATH, ""), b.as_bytes(), &c).unwrap_err();
            assert_eq!(r.status, 401, "{claimed}: {}", r.body);
        }
        let expired = Request::new("POST", EVENTS_PATH, "").with_authorization(Some(&alice_token));
        let late = EdgeConfig { now: Some(now() + chrono::Duration::hours(1)), ..c.clone() };
        assert_eq!(forward_events(&expired, b"{\"events\": []}", &late).unwrap_err().status, 401);

        let many = format!(r#"{{"events": [{}]}}"#, vec!["{}"; MAX_BATCH_EVENTS + 1].join(","));
        let huge = vec![b' '; MAX_BATCH_BYTES + 1];
        for (method, query, body, status) in [
            ("GET", "", &b"{}"[..], 405),
            ("POST", "", &b"{"[..], 400),
            ("POST", "", &b"\xff"[..], 400),
            ("POST", "", &br#"{"events": 1}"#[..], 400),
            ("POST", "", &br#"[]"#[..], 400),
            ("POST", "", many.as_bytes(), 413),
            ("POST", "", &huge[..], 413),
            ("POST", "recommendation_id=", &br#"{"events": []}"#[..], 400),
        ] {
            let r = forward_events(&Request::new(method, EVENTS_PATH, query), body, &c).unwrap_err();
            assert_eq!(r.status, status, "{method} {query}: {}", r.body);
            assert!(body_has_error(&r));
        }
        // Without forwarding in the adapter, the shared API says so.
        let none = Models { recommender: Err("x"), sentiment: Err("x") };
        assert_eq!(handle_with_body(&req, b"{}", none, &c).status, 503);
    }

    #[test]
    fn personalised_answers_need_the_learners_own_token() {
        let (m, c) = setup();
        let ask = |query: &str, auth: Option<&str>, config: &EdgeConfig| {
            let r = handle(&Request::new("GET", "/v1/recommend", query).with_authorization(auth), Ok(&m), config);
            let code =
                if r.status == 200 { String::new() } else { body(&r)["error"]["code"].as_str().unwrap().to_owned() };
            (r.status, code)
        };
        let alice = token_for("alice");
        assert_eq!(ask("user=alice", None, &c), (401, "token_required".into()));
        assert_eq!(ask("user=alice", Some(&alice), &c).0, 200);
        assert_eq!(ask("user=bob", Some(&alice), &c), (403, "user_mismatch".into()));
        assert_eq!(ask("user=alice", Some("Basic YWxpY2U6"), &c), (401, "token_invalid".into()));
        assert_eq!(ask("user=alice", Some("Bearer not.a.token"), &c), (401, "token_invalid".into()));
        let late = EdgeConfig { now: Some(now() + chrono::Duration::minutes(20)), ..c.clone() };
        assert_eq!(ask("user=alice", Some(&alice), &late), (401, "token_expired".into()));
        let foreign = token::issue(&TOKEN_SEED, "alice", "another-app", chrono::Duration::minutes(5), now()).unwrap();
        assert_eq!(ask("user=alice", Some(&format!("Bearer {foreign}")), &c), (401, "token_wrong_audience".into()));
        let forged =
            token::issue(&[2; 32], "alice", token::DEFAULT_AUDIENCE, chrono::Duration::minutes(5), now()).unwrap();
        assert_eq!(ask("user=alice", Some(&format!("Bearer {forged}")), &c), (401, "token_invalid".into()));
        // A token without `user` personalises for its subject: alice has seen `a`.
        let r = handle(&Request::new("GET", "/v1/recommend", "k=3").with_authorization(Some(&alice)), Ok(&m), &c);
        assert_eq!(body(&r)["user"], "alice");
        assert_eq!(body(&r)["items"].as_array().unwrap().len(), 2);
        // Anonymous: no token, no user; popular items, no learner.
        let r = handle(&Request::new("GET", "/v1/recommend", "k=3"), Ok(&m), &c);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(body(&r)["user"], serde_json::Value::Null);
        assert_eq!(body(&r)["items"].as_array().unwrap().len(), 3);
        // Rank binds the same way.
        let models = Models { recommender: Ok(&m), sentiment: Err("x") };
        let rank = |auth: Option<&str>| {
            let req = Request::new("POST", RANK_PATH, "").with_authorization(auth);
            handle_with_body(&req, br#"{"user": "alice", "candidates": ["a", "b"]}"#, models, &c).status
        };
        assert_eq!((rank(None), rank(Some(&token_for("bob"))), rank(Some(&alice))), (401, 403, 200));
        // 401 answers say how to authenticate.
        let r = handle(&Request::new("GET", "/v1/recommend", "user=alice"), Ok(&m), &c);
        assert!(r.headers.iter().any(|(n, v)| *n == "www-authenticate" && v.starts_with("Bearer")));
    }

    #[test]
    fn cors_preflights_and_answers_follow_the_configured_origins() {
        let (m, c) = setup();
        let models = Models { recommender: Ok(&m), sentiment: Err("x") };
        let pre = |origin| {
            let req = Request::new("OPTIONS", "/v1/recommend", "").with_origin(Some(origin), Some("GET"));
            handle_with_body(&req, b"", models, &c)
        };
        let ok = pre("https://shop.example");
        assert_eq!(ok.status, 204);
        let header = |r: &Response, name: &str| r.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        assert_eq!(header(&ok, "access-control-allow-origin").as_deref(), Some("https://shop.example"));
        assert!(header(&ok, "access-control-allow-headers").unwrap().contains("authorization"));
        let refused = pre("https://evil.example");
        assert_eq!(refused.status, 403);
        assert!(header(&refused, "access-control-allow-origin").is_none());
        // Actual answers (errors included) carry the header only for allowed origins.
        for (origin, expected) in
            [("https://shop.example", Some("https://shop.example")), ("https://evil.example", None)]
        {
            for query in ["k=2", "user=alice"] {
                let req = Request::new("GET", "/v1/recommend", query).with_origin(Some(origin), None);
                let r = handle(&req, Ok(&m), &c);
                assert_eq!(header(&r, "access-control-allow-origin").as_deref(), expected, "{origin} {query}");
            }
        }
        let events = Request::new("OPTIONS", EVENTS_PATH, "").with_origin(Some("https://shop.example"), Some("POST"));
        assert_eq!(forward_events(&events, b"", &c).unwrap_err().status, 204);
    }

    #[test]
    fn bad_requests_get_json_4xx() {
        for (path, query, status) in [
            ("/v1/recommend", "user=alice&k=1000000000", 400),
            ("/v1/recommend", "user=alice&k=-1", 400),
            ("/v1/recommend", "user=alice&user=bob", 400),
            ("/v1/recommend", "user=alice&max_price=NaN", 400),
            ("/v1/recommend", "user=%ff%fe%00", 400),
            ("/v1/similar", "item=%C3", 400),
            ("/v1/similar", "item=zzz", 404),
            ("/v1/nothing", "", 404),
        ] {
            let r = get(path, query);
            assert_eq!(r.status, status, "{path}?{query}: {}", r.body);
            assert!(body(&r)["error"]["code"].is_string());
        }
        let long = format!("user={}", "x".repeat(1 << 20));
        assert_eq!(get("/v1/recommend", &long).status, 414);
        let (m, c) = setup();
        assert_eq!(handle(&Request::new("POST", "/v1/model", ""), Ok(&m), &c).status, 405);
        assert_eq!(handle(&Request::new("GET", "/v1/model", ""), Err("none yet"), &c).status, 503);
        let unconfigured = EdgeConfig::default();
        let auth = token_for("a");
        let r = handle(
            &Request::new("GET", "/v1/recommend", "user=a").with_authorization(Some(&auth)),
            Ok(&m),
            &unconfigured,
        );
        assert_eq!((r.status, body(&r)["error"]["code"].as_str()), (401, Some("token_not_accepted")));
    }

    #[test]
    fn queries_decode_like_forms() {
        let p = Params::parse("user=a%20b+c&item=%E5%A5%BD&odd=100%&k=%zz").unwrap();
        assert_eq!(p.get("user"), Some("a b c"));
        assert_eq!(p.get("item"), Some("好"));
        assert_eq!(p.get("odd"), Some("100%"));
        assert_eq!(p.get("k"), Some("%zz"));
        let r = Params::parse("user=%ff").err().unwrap();
        assert_eq!((r.status, body(&r)["error"]["code"].as_str()), (400, Some("invalid_query")));
    }

    #[test]
    fn model_info() {
        let b = body(&get("/v1/model", ""));
        assert_eq!(b["model_id"], "m-1");
        assert_eq!(b["kind"], "popularity");
        assert_eq!(b["format_version"], 2);
    }
    fn sentiment_model() -> SentimentModel {
        let mut f = knowedge_scoring::sentiment::Featurizer::new(12);
        let mut w = vec![0.0; 1 << 12];
        for &i in f.features("好 喜欢 good") {
            w[i as usize] = 3.0;
        }
        for &i in f.features("差 失望 bad") {
            w[i as usize] = -3.0;
        }
        SentimentModel::from_weights(w, 0.0, "s-1").unwrap()
    }

    fn post(body: &[u8]) -> Response {
        let (m, c) = setup();
        let s = sentiment_model();
        let models = Models { recommender: Ok(&m), sentiment: Ok(&s) };
        handle_with_body(&Request::new("POST", SENTIMENT_PATH, ""), body, models, &c)
    }

    #[test]
    fn sentiment_scores_texts_in_order() {
        let r = post(
            r#"{"texts": ["很好，喜欢", "太差了", "", "😀👍", "\u0000\u0007", "this book is good 推荐"]}"#.as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let b = body(&r);
        assert_eq!(b["model_id"], "s-1");
        let labels: Vec<&str> = b["results"].as_array().unwrap().iter().map(|x| x["label"].as_str().unwrap()).collect();
        assert_eq!(labels[..3], ["positive", "negative", "neutral"]);
        assert_eq!(labels[4], "neutral", "control characters only");
        assert_eq!(labels[5], "positive");
        assert_ne!(labels[3], "neutral", "emoji are scored");
        assert_eq!(b["results"][2]["score"], 0.5);
        let empty = post(br#"{"texts": []}"#);
        assert_eq!((empty.status, body(&empty)["results"].as_array().unwrap().len()), (200, 0));
        // Unknown fields are ignored, so clients may send more later.
        assert_eq!(post(br#"{"texts": ["ok"], "lang": "zh"}"#).status, 200);
    }

    #[test]
    fn sentiment_bad_requests_get_json_4xx() {
        let many = serde_json::to_vec(&json!({"texts": vec!["好"; MAX_SENTIMENT_TEXTS + 1]})).unwrap();
        let long = serde_json::to_vec(&json!({"texts": ["ok", "好".repeat(350_000)]})).unwrap();
        let huge = serde_json::to_vec(&json!({"texts": ["x".repeat(MAX_BODY_BYTES)]})).unwrap();
        let limit = serde_json::to_vec(&json!({"texts": vec!["好".repeat(MAX_TEXT_BYTES / 3); 100]})).unwrap();
        assert_eq!(post(&limit).status, 200, "100 texts at the limit are fine");
        for (what, bytes, status, code) in [
            ("invalid UTF-8", &b"{\"texts\": [\"\xff\xfe\"]}"[..], 400, "invalid_body"),
            ("lone surrogate", br#"{"texts": ["\ud800"]}"#, 400, "invalid_body"),
            ("not JSON", b"texts=a", 400, "invalid_body"),
            ("empty body", b"", 400, "invalid_body"),
            ("no texts", br#"{"text": "a"}"#, 400, "invalid_body"),
            ("not strings", br#"{"texts": [1, null]}"#, 400, "invalid_body"),
            ("texts not a list", br#"{"texts": "a"}"#, 400, "invalid_body"),
            ("too many texts", &many, 400, "invalid_parameter"),
            ("1 MB text", &long, 413, "text_too_long"),
            ("body too large", &huge, 413, "payload_too_large"),
        ] {
            let r = post(bytes);
            assert_eq!(r.status, status, "{what}: {}", r.body);
            assert_eq!(body(&r)["error"]["code"], code, "{what}");
        }
        let (m, c) = setup();
        let s = sentiment_model();
        let get = Request::new("GET", SENTIMENT_PATH, "");
        let models = Models { recommender: Ok(&m), sentiment: Ok(&s) };
        assert_eq!(handle_with_body(&get, b"", models, &c).status, 405);
        let post_req = Request::new("POST", SENTIMENT_PATH, "");
        let none = Models { recommender: Ok(&m), sentiment: Err("not published") };
        let r = handle_with_body(&post_req, br#"{"texts": ["a"]}"#, none, &c);
        assert_eq!((r.status, body(&r)["error"]["code"].as_str()), (503, Some("no_model")));
        // The body-less entry point answers the route with a 503, and other routes as before.
        assert_eq!(handle(&post_req, Ok(&m), &c).status, 503);
        let info = Request::new("GET", "/v1/model", "");
        assert_eq!(body(&handle_with_body(&info, b"", models, &c))["model_id"], "m-1");
    }
}
