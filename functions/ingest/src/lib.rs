//! The knowedge ingestion function.
//!
//! Frontends `POST /v1/events` with a batch of learner events (a JSON object
//! `{"events": [...]}` or NDJSON with `content-type: application/x-ndjson`),
//! authenticated with an ingest key (`Authorization: Bearer …`). Each event
//! is decoded strictly and validated against schema v1
//! ([`knowedge_format::event`]); accepted events get their `user_id` and
//! `session_id` replaced by their keyed pseudonyms and personal data in
//! `text` / `query` redacted (an event whose `item_id`, `experiment`,
//! `variant` or `recommendation_id` holds personal data is refused, rule
//! `personal_data`), record the name of the API key that sent them, and are
//! written to the event lake as Parquet before the answer is sent; rejected
//! events are kept in the lake's dead letter with every reason, as the
//! dead-letter policy ([`knowedge_format::deadletter`]) allows. A request
//! authorised with an `admin` key is recorded in the lake's audit log first
//! (`503` if it cannot be). The answer lists the outcome of every event.
//!
//! The same [`Ingest::handle`] runs as an AWS Lambda function behind API
//! Gateway or a function URL (`knowedge-ingest` binary) and locally behind
//! `knowedge ingest serve`.
//!
//! Configuration (environment; the list is [`deploy::INGEST_SETTINGS`], and
//! in a deployment secrets are read through the AWS Parameters and Secrets
//! extension, see [`knowedge_lake::deploy`]):
//!
//! | variable | meaning |
//! |---|---|
//! | `KNOWEDGE_LAKE` | lake location: a directory, or `s3://bucket/prefix` |
//! | `KNOWEDGE_PSEUDONYM_KEY` | hex secret (≥ 16 bytes) for user pseudonyms |
//! | `KNOWEDGE_API_KEYS` | API keys, `name:scopes:secret,...` (see [`auth`]) |
//! | `KNOWEDGE_CORS_ORIGINS` | origins allowed to call from browsers, comma separated (`*` for any) |
//! | `KNOWEDGE_MAX_EVENT_AGE_DAYS` | oldest accepted event, in days (default 30) |
//!
//! Edges `POST /v1/exposures` with batches of what they showed learners
//! ([`knowedge_format::exposure::ExposureBatch`]: learners as pseudonyms,
//! never raw ids); they are checked one by one and written to the lake's
//! `exposures` table (see [`Ingest`]'s exposure route).
//!
//! Admins (`admin` scope) request erasures of a learner at
//! `POST /v1/admin/erasures` (`{"user_id": "RAW"}`, answered 202 with the
//! `job_id`) and follow them at `GET /v1/admin/erasures/{job_id}`; see
//! `knowedge_lake::privacy`.
//!
//! Status codes: 200 batch processed (see per-event results), 400 malformed
//! batch, 401 missing or unknown key, 403 key without `events.write`, 404,
//! 405, 413 body over 1 MiB or more than 500 events, 422 every event
//! rejected, 503 the lake could not store the batch or the audit record (retry it).

pub mod auth;
pub mod deploy;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use knowedge_format::cors::Cors;
use knowedge_format::deadletter;
use knowedge_format::event::{self, Element, Event, Problem, RawEvent, Validator};
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_format::redact::{self, Redactions};
use knowedge_lake::deploy::Settings;
use knowedge_lake::{AuditAction, DeadLetter, Lake, StoredEvent, StoredExposure};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::{Value, json};

pub use auth::{KeyRing, Scope};

/// Largest accepted request body, in bytes (the batch limit of the event format).
pub const MAX_BODY_BYTES: usize = event::MAX_BATCH_BYTES;

/// Errors of the ingestion function.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Configuration is missing or invalid (not retryable).
    #[error("configuration: {0}")]
    Config(String),
    /// The lake could not store the batch.
    #[error("lake")]
    Lake(#[from] knowedge_lake::Error),
}

impl Error {
    /// Whether the client (or Lambda) should retry the request.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Config(_) => false,
            Error::Lake(e) => e.is_retryable(),
        }
    }
}

/// Result alias of the ingestion function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Outcome of one event of a batch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventResult {
    /// Position in the batch.
    pub index: usize,
    /// The event's id, when it had a string one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// `accepted` (durably stored; also for a re-sent event, which readers
    /// count once), `duplicate` (same id earlier in this batch) or `rejected`.
    pub status: &'static str,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// Outcome of a batch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchResult {
    /// Events stored.
    pub accepted: usize,
    /// Events already seen in this batch.
    pub duplicates: usize,
    /// Events rejected (kept in the dead letter).
    pub rejected: usize,
    /// Personal data redacted from texts and queries of accepted events.
    pub redactions: Redactions,
    /// Per-event outcome, in batch order.
    pub results: Vec<EventResult>,
}

/// A batch after validation, before storage.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Events to store (pseudonymised, redacted).
    pub accepted: Vec<StoredEvent>,
    /// Rejected events with their reasons.
    pub dead: Vec<DeadLetter>,
    /// The answer for the client.
    pub result: BatchResult,
}

/// The ingestion service.
#[derive(Clone, Debug)]
pub struct Ingest {
    lake: Lake,
    pseudonymizer: Pseudonymizer,
    max_age: Duration,
    keys: Option<KeyRing>,
    cors: Cors,
    /// The function name metrics are reported under, when reported.
    metrics: Option<String>,
}

impl Ingest {
    /// A service writing to `lake` with `pseudonymizer`, without authentication
    /// (for tests and trusted local use; see [`Ingest::with_keys`]).
    pub fn new(lake: Lake, pseudonymizer: Pseudonymizer) -> Self {
        tracing::info!(pseudonym_key_id = pseudonymizer.key_id(), "ingestion pseudonymises with this key");
        Self {
            lake,
            pseudonymizer,
            max_age: Duration::days(Validator::DEFAULT_MAX_AGE_DAYS),
            keys: None,
            cors: Cors::default(),
            metrics: None,
        }
    }

    /// Requires an API key with the `events.write` scope.
    pub fn with_keys(mut self, keys: KeyRing) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Allows browser calls from these origins (`*` for any).
    pub fn with_cors_origins(mut self, origins: Vec<String>) -> Self {
        self.cors = Cors::new(origins);
        self
    }

    /// Sets the oldest accepted event age.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Builds the service from its settings ([`deploy::INGEST_SETTINGS`],
    /// read with [`Settings::load`]: secrets may come from the secrets
    /// extension). `KNOWEDGE_API_KEYS` is required.
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let var = |k: &str| settings.require(k).map_err(|_| Error::Config(format!("{k} is not set")));
        let lake = Lake::open(var("KNOWEDGE_LAKE")?).map_err(|e| Error::Config(e.to_string()))?;
        let p = Pseudonymizer::from_hex(var("KNOWEDGE_PSEUDONYM_KEY")?).map_err(|e| Error::Config(e.to_string()))?;
        let keys = KeyRing::parse(var("KNOWEDGE_API_KEYS")?).map_err(Error::Config)?;
        let mut s = Self::new(lake, p).with_keys(keys);
        if let Some(origins) = settings.get("KNOWEDGE_CORS_ORIGINS") {
            s = s
                .with_cors_origins(origins.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect());
        }
        if let Some(days) = settings.get("KNOWEDGE_MAX_EVENT_AGE_DAYS") {
            let d: i64 =
                days.parse().map_err(|_| Error::Config("KNOWEDGE_MAX_EVENT_AGE_DAYS must be a whole number".into()))?;
            s = s.with_max_age(Duration::days(d));
        }
        Ok(s)
    }

    /// Reports `EventsAccepted` and `DeadLetters` per batch as CloudWatch
    /// metrics (Embedded Metric Format lines, dimension `function`).
    pub fn with_metrics(mut self, function: impl Into<String>) -> Self {
        self.metrics = Some(function.into());
        self
    }

    /// Validates, pseudonymises, redacts and stores a decoded batch. Returns
    /// after the accepted events and the dead letters are durable.
    pub async fn ingest(&self, raw: Vec<RawEvent>, now: DateTime<Utc>) -> Result<BatchResult> {
        let prepared = self.prepare(raw, now);
        self.store(prepared).await
    }

    /// [`Ingest::ingest`] of a batch decoded by [`event::decode_elements`]
    /// (what the handler does).
    pub async fn ingest_elements(&self, elements: &[Element<'_>], now: DateTime<Utc>) -> Result<BatchResult> {
        self.ingest_elements_as(elements, now, None).await
    }

    /// [`Ingest::ingest_elements`] of a batch sent with the API key named
    /// `key_name`, which every stored event and dead letter records.
    pub async fn ingest_elements_as(
        &self,
        elements: &[Element<'_>],
        now: DateTime<Utc>,
        key_name: Option<&str>,
    ) -> Result<BatchResult> {
        let prepared = self.prepare_elements_as(elements, now, key_name);
        self.store(prepared).await
    }

    async fn store(&self, prepared: Prepared) -> Result<BatchResult> {
        if !prepared.accepted.is_empty() {
            self.lake.write_events(&prepared.accepted).await?;
        }
        self.lake.write_dead_letters(&prepared.dead).await?;
        if let Some(function) = &self.metrics {
            let counts =
                [("EventsAccepted", prepared.accepted.len() as f64), ("DeadLetters", prepared.dead.len() as f64)];
            knowedge_lake::deploy::emit_metrics(function, &counts);
        }
        Ok(prepared.result)
    }

    /// The pure part of [`Ingest::ingest`]: validation, pseudonymisation and
    /// redaction, without storage.
    pub fn prepare(&self, raw: Vec<RawEvent>, now: DateTime<Utc>) -> Prepared {
        let elements: Vec<Element<'_>> = raw.into_iter().map(Element::Raw).collect();
        self.prepare_elements(&elements, now)
    }

    /// The pure part of [`Ingest::ingest_elements`]: the same as
    /// [`Ingest::prepare`] of the elements as [`event::decode_batch`] gives
    /// them, without building a JSON value of each valid event.
    pub fn prepare_elements(&self, elements: &[Element<'_>], now: DateTime<Utc>) -> Prepared {
        self.prepare_elements_as(elements, now, None)
    }

    /// [`Ingest::prepare_elements`] of a batch sent with the API key named
    /// `key_name` (recorded in every stored event and dead letter).
    pub fn prepare_elements_as(
        &self,
        elements: &[Element<'_>],
        now: DateTime<Utc>,
        key_name: Option<&str>,
    ) -> Prepared {
        let key_name = key_name.map(str::to_owned);
        let mut validator = Validator::new(now);
        validator.max_age = self.max_age;
        // Valid event ids are UUIDs: 36 ASCII bytes, compared in lowercase.
        let hasher = foldhash::fast::RandomState::default();
        let mut seen: HashSet<[u8; 36], _> = HashSet::with_capacity_and_hasher(elements.len(), hasher.clone());
        // Raw user id -> position in `accepted` of the first event holding its pseudonym.
        let mut pseudonyms: HashMap<&str, usize, _> = HashMap::with_capacity_and_hasher(elements.len(), hasher);
        let mut accepted = Vec::with_capacity(elements.len());
        let mut dead = Vec::new();
        let mut results = Vec::with_capacity(elements.len());
        let mut total = Redactions::default();
        for (index, element) in elements.iter().enumerate() {
            let (value, event_id, problems) = match element {
                Element::Fields(fields) => match validator.validate_fields(fields).and_then(|e| {
                    refuse_personal_ids([e.item_id, e.experiment, e.variant, e.recommendation_id])?;
                    Ok(e)
                }) {
                    Ok(e) => {
                        let event_id = Some(e.event_id.to_owned());
                        if !seen.insert(id_key(e.event_id)) {
                            results.push(EventResult { index, event_id, status: "duplicate", problems: Vec::new() });
                            continue;
                        }
                        let mut counts = Redactions::default();
                        let mut clean =
                            |t: Option<&str>| t.map(|t| redact::redact(t, &mut counts).unwrap_or_else(|| t.to_owned()));
                        let text = clean(e.text);
                        let query = clean(e.query);
                        let own = |s: Option<&str>| s.map(str::to_owned);
                        let event = Event {
                            event_id: e.event_id.to_ascii_lowercase(),
                            event_type: e.event_type,
                            user_id: self.pseudonym(&mut pseudonyms, &accepted, e.user_id),
                            item_id: own(e.item_id),
                            ts: e.ts,
                            price: e.price,
                            currency: own(e.currency),
                            rating: e.rating,
                            progress: e.progress,
                            text,
                            query,
                            session_id: e.session_id.map(|s| self.pseudonymizer.pseudonymize(s)),
                            experiment: own(e.experiment),
                            variant: own(e.variant),
                            recommendation_id: own(e.recommendation_id),
                        };
                        total.add(&counts);
                        accepted.push(StoredEvent {
                            event,
                            received_at: now,
                            redactions: counts.total(),
                            key_name: key_name.clone(),
                        });
                        results.push(EventResult { index, event_id, status: "accepted", problems: Vec::new() });
                        continue;
                    }
                    Err(problems) => (fields.to_value(), fields.event_id().map(str::to_owned), problems),
                },
                Element::Raw(RawEvent::Json(value)) => {
                    let event_id = value.get("event_id").and_then(Value::as_str).map(str::to_owned);
                    match validator.validate(value).and_then(|e| {
                        refuse_personal_ids(
                            [&e.item_id, &e.experiment, &e.variant, &e.recommendation_id].map(|f| f.as_deref()),
                        )?;
                        Ok(e)
                    }) {
                        Ok(mut e) => {
                            if !seen.insert(id_key(&e.event_id)) {
                                results.push(EventResult {
                                    index,
                                    event_id,
                                    status: "duplicate",
                                    problems: Vec::new(),
                                });
                                continue;
                            }
                            e.user_id = match value.get("user_id") {
                                Some(Value::String(u)) => self.pseudonym(&mut pseudonyms, &accepted, u),
                                _ => self.pseudonymizer.pseudonymize(&e.user_id),
                            };
                            if let Some(s) = &mut e.session_id {
                                *s = self.pseudonymizer.pseudonymize(s);
                            }
                            let mut counts = Redactions::default();
                            for field in [&mut e.text, &mut e.query].into_iter().flatten() {
                                if let Some(clean) = redact::redact(field, &mut counts) {
                                    *field = clean;
                                }
                            }
                            total.add(&counts);
                            accepted.push(StoredEvent {
                                event: e,
                                received_at: now,
                                redactions: counts.total(),
                                key_name: key_name.clone(),
                            });
                            results.push(EventResult { index, event_id, status: "accepted", problems: Vec::new() });
                            continue;
                        }
                        Err(problems) => (value.clone(), event_id, problems),
                    }
                }
                Element::Raw(RawEvent::Malformed { error, len, sha256 }) => {
                    let message = format!("{error} ({len} bytes)");
                    let problems = vec![Problem { field: String::new(), rule: "json".into(), message }];
                    dead.push(DeadLetter {
                        received_at: now,
                        index,
                        raw: Value::Null,
                        raw_sha256: Some(sha256.clone()),
                        problems: deadletter::sanitize_problems(&problems),
                        dropped_fields: Vec::new(),
                        dropped_unnamed: 0,
                        key_name: key_name.clone(),
                    });
                    results.push(EventResult { index, event_id: None, status: "rejected", problems });
                    continue;
                }
            };
            // Only what the dead-letter policy allows reaches the lake.
            let kept = deadletter::sanitize(&value, &self.pseudonymizer);
            dead.push(DeadLetter {
                received_at: now,
                index,
                raw: kept.value,
                raw_sha256: None,
                problems: deadletter::sanitize_problems(&problems),
                dropped_fields: kept.dropped_fields,
                dropped_unnamed: kept.dropped_unnamed,
                key_name: key_name.clone(),
            });
            results.push(EventResult { index, event_id, status: "rejected", problems });
        }
        let result = BatchResult {
            accepted: accepted.len(),
            duplicates: results.len() - accepted.len() - dead.len(),
            rejected: dead.len(),
            redactions: total,
            results,
        };
        Prepared { accepted, dead, result }
    }

    /// The pseudonym of `user` for the event about to be accepted, computed
    /// once per batch: `cache` remembers which accepted event holds it.
    fn pseudonym<'a, S: std::hash::BuildHasher>(
        &self,
        cache: &mut HashMap<&'a str, usize, S>,
        accepted: &[StoredEvent],
        user: &'a str,
    ) -> String {
        match cache.entry(user) {
            Entry::Occupied(o) => match accepted.get(*o.get()) {
                Some(e) => e.event.user_id.clone(),
                None => self.pseudonymizer.pseudonymize(user),
            },
            Entry::Vacant(v) => {
                v.insert(accepted.len());
                self.pseudonymizer.pseudonymize(user)
            }
        }
    }

    /// The HTTP handler (API Gateway, function URL, or the local server).
    pub async fn handle(&self, req: Request) -> std::result::Result<Response<Body>, lambda_http::Error> {
        Ok(self.respond(req, Utc::now()).await)
    }

    /// Answers a request as of `now` (the handler with an injectable clock).
    pub async fn respond(&self, req: Request, now: DateTime<Utc>) -> Response<Body> {
        let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_owned);
        let preflight = req.method() == Method::OPTIONS;
        let mut resp = self.route(req, now).await;
        if !preflight {
            for (name, value) in self.cors.headers(origin.as_deref()) {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    resp.headers_mut().insert(name, v);
                }
            }
        }
        resp
    }

    /// Appends an `admin_key_use` record to the lake's audit log: the key's
    /// name, the method and the route (not the request's path, which a
    /// client chooses, and never the body).
    async fn record_admin_use(&self, key_name: &str, method: &Method, route: &str) -> Result<()> {
        let details = json!({"method": method.as_str(), "route": route});
        self.lake.audit_append(AuditAction::AdminKeyUse, key_name, details).await?;
        Ok(())
    }

    async fn route(&self, req: Request, now: DateTime<Utc>) -> Response<Body> {
        let path = req.uri().path();
        if let Some(i) = path.find(ERASURES) {
            let rest = path[i + ERASURES.len()..].to_owned();
            return self.erasures(req, &rest).await;
        }
        if path.ends_with(EXPOSURES) {
            return self.exposures(req, now).await;
        }
        if !path.ends_with("/v1/events") {
            let shown: String = path.chars().take(64).collect();
            return error(StatusCode::NOT_FOUND, "not_found", format!("no route {shown}"));
        }
        if req.method() == Method::OPTIONS {
            // The one cross-origin policy of ingestion and the edge (`knowedge_format::cors`).
            let header = |name| req.headers().get(name).and_then(|o: &HeaderValue| o.to_str().ok()).unwrap_or_default();
            let method = header(header::ACCESS_CONTROL_REQUEST_METHOD);
            return match self.cors.preflight(header(header::ORIGIN), method) {
                Ok(headers) => {
                    let mut r = Response::new(Body::Empty);
                    *r.status_mut() = StatusCode::NO_CONTENT;
                    for (name, value) in headers {
                        if let Ok(v) = HeaderValue::from_str(&value) {
                            r.headers_mut().insert(name, v);
                        }
                    }
                    r
                }
                Err(reason) => error(StatusCode::FORBIDDEN, "origin_not_allowed", reason),
            };
        }
        if req.method() != Method::POST {
            return error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "/v1/events accepts POST only");
        }
        let key_name = match self.authorize_write(&req, "/v1/events").await {
            Ok(name) => name,
            Err(refused) => return refused,
        };
        let body: &[u8] = req.body();
        if body.len() > MAX_BODY_BYTES {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("body is {} bytes; at most {MAX_BODY_BYTES} are accepted", body.len()),
            );
        }
        let ndjson = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-ndjson") || ct.starts_with("application/jsonl"));
        let raw = match event::decode_elements(body, ndjson) {
            Ok(r) => r,
            Err(knowedge_format::Error::TooManyEvents(n)) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_many_events",
                    format!("{n} events; at most {} per batch", event::MAX_BATCH_EVENTS),
                );
            }
            Err(e) => return error(StatusCode::BAD_REQUEST, "malformed_batch", e),
        };
        if raw.is_empty() {
            return error(StatusCode::BAD_REQUEST, "empty_batch", "the batch holds no events");
        }
        if raw.len() > event::MAX_BATCH_EVENTS {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_events",
                format!("{} events; at most {} per batch", raw.len(), event::MAX_BATCH_EVENTS),
            );
        }
        match self.ingest_elements_as(&raw, now, key_name.as_deref()).await {
            Ok(result) => {
                let status = if result.accepted == 0 && result.duplicates == 0 {
                    StatusCode::UNPROCESSABLE_ENTITY
                } else {
                    StatusCode::OK
                };
                json_response(status, &result)
            }
            Err(e) => {
                let message = knowedge_format::error::chain(&e);
                tracing::error!(error = %message, retryable = e.is_retryable(), "batch not stored");
                let status =
                    if e.is_retryable() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
                json_response(
                    status,
                    &json!({"error": {"code": "not_stored", "message": "the batch was not stored; send it again", "retryable": e.is_retryable()}}),
                )
            }
        }
    }
}

/// Refuses a valid event whose ids hold personal data (an e-mail address,
/// a phone, ID or card number, as [`redact`] finds them): `item_id`,
/// `experiment`, `variant` and `recommendation_id` are stored as sent, so
/// they must not name a person (rule `personal_data`). `session_id` is
/// pseudonymised instead, and `text` / `query` are redacted.
/// `ids` are those four fields, in that order.
fn refuse_personal_ids(ids: [Option<&str>; 4]) -> std::result::Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    for (field, value) in ["item_id", "experiment", "variant", "recommendation_id"].into_iter().zip(ids) {
        if value.is_some_and(redact::contains_personal_data) {
            problems.push(Problem {
                field: field.into(),
                rule: "personal_data".into(),
                message: format!(
                    "{field} looks like personal data (an e-mail address, phone, ID or card number); ids must not name a person"
                ),
            });
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

/// The admin route of erasure requests.
const ERASURES: &str = "/v1/admin/erasures";

/// The route of exposure batches (from edges).
pub const EXPOSURES: &str = "/v1/exposures";

impl Ingest {
    /// Checks the request's ingest key for writing (events or exposures):
    /// the key's configured name (`None` without authentication), or the
    /// refusal to answer. An admin key's use is recorded in the audit log
    /// first; when that fails the request is refused (503, retryable).
    async fn authorize_write(&self, req: &Request, route: &str) -> std::result::Result<Option<String>, Response<Body>> {
        let Some(keys) = &self.keys else { return Ok(None) };
        let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        match keys.authorize(header, Scope::EventsWrite) {
            Ok(key) => {
                if key.scopes.contains(&Scope::Admin)
                    && let Err(e) = self.record_admin_use(&key.name, req.method(), route).await
                {
                    let message = knowedge_format::error::chain(&e);
                    tracing::error!(error = %message, "admin key use not recorded; request refused");
                    return Err(json_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        &json!({"error": {"code": "audit_unavailable", "message": "the use of an admin key could not be recorded; send the request again", "retryable": true}}),
                    ));
                }
                Ok(Some(key.name.clone()))
            }
            Err(auth::Denied::Missing) => Err(error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send an ingest key as `Authorization: Bearer <key>`",
            )),
            Err(auth::Denied::Invalid) => Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "unknown API key")),
            Err(auth::Denied::Forbidden) => {
                Err(error(StatusCode::FORBIDDEN, "forbidden", "this API key may not write events"))
            }
        }
    }
}

impl Ingest {
    /// `POST /v1/exposures`: a batch of what an edge showed
    /// ([`knowedge_format::exposure::ExposureBatch`]), stored in the lake's
    /// `exposures` table. Each exposure is checked on its own
    /// ([`Exposure::check`](knowedge_format::exposure::Exposure::check), and
    /// no id may hold personal data); the answer is
    /// `{"accepted": n, "rejected": [{"index", "reason"}]}`, 200 when any was
    /// accepted, else 422. Same keys as events.
    async fn exposures(&self, req: Request, now: DateTime<Utc>) -> Response<Body> {
        use knowedge_format::exposure::{self, ExposureBatch};
        if req.method() != Method::POST {
            return error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "/v1/exposures accepts POST only");
        }
        let key_name = match self.authorize_write(&req, EXPOSURES).await {
            Ok(name) => name,
            Err(refused) => return refused,
        };
        let body: &[u8] = req.body();
        let batch = match ExposureBatch::decode(body) {
            Ok(b) => b,
            Err(e @ knowedge_format::Error::TooManyExposures(_)) => {
                return error(StatusCode::PAYLOAD_TOO_LARGE, "too_many_exposures", e);
            }
            Err(e @ knowedge_format::Error::BatchVersion { .. }) => {
                return error(StatusCode::BAD_REQUEST, "unsupported_version", e);
            }
            Err(_) if body.len() > exposure::MAX_BATCH_BYTES => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("body is {} bytes; at most {} are accepted", body.len(), exposure::MAX_BATCH_BYTES),
                );
            }
            Err(e) => return error(StatusCode::BAD_REQUEST, "malformed_batch", e),
        };
        if batch.exposures.is_empty() {
            return error(StatusCode::BAD_REQUEST, "empty_batch", "the batch holds no exposures");
        }
        let mut stored = Vec::with_capacity(batch.exposures.len());
        let mut rejected = Vec::new();
        for (index, e) in batch.exposures.into_iter().enumerate() {
            let personal = [
                Some(e.recommendation_id.as_str()),
                Some(e.model_id.as_str()),
                e.experiment.as_deref(),
                e.variant.as_deref(),
            ]
            .into_iter()
            .flatten()
            .chain(e.items.iter().map(String::as_str))
            .any(redact::contains_personal_data);
            let verdict = if personal {
                Err("an id looks like personal data (an e-mail address, phone, ID or card number)".to_owned())
            } else {
                e.check(now)
            };
            match verdict {
                Ok(()) => stored.push(StoredExposure::new(e, now, key_name.clone())),
                Err(reason) => rejected.push(json!({"index": index, "reason": reason})),
            }
        }
        if !stored.is_empty()
            && let Err(e) = self.lake.write_exposures(&stored).await
        {
            let message = knowedge_format::error::chain(&e);
            tracing::error!(error = %message, retryable = e.is_retryable(), "exposures not stored");
            let status =
                if e.is_retryable() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
            return json_response(
                status,
                &json!({"error": {"code": "not_stored", "message": "the exposures were not stored; send them again", "retryable": e.is_retryable()}}),
            );
        }
        let status = if stored.is_empty() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
        json_response(status, &json!({"accepted": stored.len(), "rejected": rejected}))
    }

    /// `POST /v1/admin/erasures` (`{"user_id": "RAW"}` → 202 `{"job_id", "status"}`) and
    /// `GET /v1/admin/erasures/{job_id}` (→ 200 the job's state, with its receipt once done).
    /// Admin keys only. The raw id is pseudonymised at once and reaches
    /// neither the lake nor the logs; the job runs where compaction runs
    /// (see `knowedge_lake::privacy`).
    async fn erasures(&self, req: Request, rest: &str) -> Response<Body> {
        let Some(keys) = &self.keys else {
            return error(StatusCode::UNAUTHORIZED, "unauthorized", "admin routes need API keys to be configured");
        };
        let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let key_name = match keys.authorize(header, Scope::Admin) {
            Ok(key) => key.name.clone(),
            Err(auth::Denied::Missing) => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send an admin key as `Authorization: Bearer <key>`",
                );
            }
            Err(auth::Denied::Invalid) => return error(StatusCode::UNAUTHORIZED, "unauthorized", "unknown API key"),
            Err(auth::Denied::Forbidden) => {
                return error(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "this API key may not request erasures (scope admin)",
                );
            }
        };
        if let Err(e) = self.record_admin_use(&key_name, req.method(), ERASURES).await {
            tracing::error!(error = %knowedge_format::error::chain(&e), "admin use not audited; request refused");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "the audit log cannot be written; try again",
            );
        }
        match (req.method(), rest.trim_end_matches('/')) {
            (&Method::POST, "") => {
                let body: &[u8] = req.body();
                if body.len() > MAX_BODY_BYTES {
                    return error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the body is too large");
                }
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Request {
                    user_id: String,
                }
                let user = match serde_json::from_slice::<Request>(body) {
                    Ok(r) => r.user_id,
                    Err(_) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "malformed_request",
                            "send {\"user_id\": \"<learner id>\"}",
                        );
                    }
                };
                if user.is_empty() || user.chars().count() > 128 || user.chars().any(char::is_control) {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_user_id",
                        "user_id must be 1-128 printable characters",
                    );
                }
                let pseudonym = self.pseudonymizer.pseudonymize(&user);
                drop(user);
                match self.lake.request_erasure(&pseudonym).await {
                    Ok(job_id) => {
                        tracing::info!(%job_id, "erasure accepted");
                        let details = json!({"job_id": job_id, "status": "requested"});
                        if let Err(e) = self.lake.audit_append(AuditAction::Erasure, &key_name, details).await {
                            tracing::error!(error = %knowedge_format::error::chain(&e), %job_id, "erasure request not audited");
                        }
                        json_response(
                            StatusCode::ACCEPTED,
                            &json!({"job_id": job_id, "status": "pending", "status_url": format!("{ERASURES}/{job_id}")}),
                        )
                    }
                    Err(e) => not_recorded(&e),
                }
            }
            (&Method::GET, id) if !id.is_empty() => {
                let id = id.trim_start_matches('/');
                if !knowedge_lake::privacy::is_job_id(id) {
                    return error(StatusCode::BAD_REQUEST, "invalid_job_id", "a job id is 32 hex digits");
                }
                match self.lake.erasure_status(id).await {
                    Ok(Some(status)) => json_response(StatusCode::OK, &status),
                    Ok(None) => error(StatusCode::NOT_FOUND, "not_found", "no such erasure job"),
                    Err(e) => not_recorded(&e),
                }
            }
            _ => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "POST /v1/admin/erasures or GET /v1/admin/erasures/{job_id}",
            ),
        }
    }
}

fn not_recorded(e: &knowedge_lake::Error) -> Response<Body> {
    let message = knowedge_format::error::chain(e);
    tracing::error!(error = %message, retryable = e.is_retryable(), "erasure request not served");
    let status = if e.is_retryable() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR };
    json_response(
        status,
        &json!({"error": {"code": "not_stored", "message": "try again", "retryable": e.is_retryable()}}),
    )
}

/// The lookup key of a valid (UUID) event id: its bytes in lowercase.
fn id_key(id: &str) -> [u8; 36] {
    let mut key = [0; 36];
    for (k, b) in key.iter_mut().zip(id.bytes()) {
        *k = b.to_ascii_lowercase();
    }
    key
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    let mut r = Response::new(Body::Text(text));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response<Body> {
    json_response(status, &json!({"error": {"code": code, "message": message.to_string()}}))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn service(dir: &std::path::Path) -> Ingest {
        Ingest::new(Lake::open(dir.to_str().unwrap()).unwrap(), Pseudonymizer::new(&[4; 32]).unwrap())
    }

    fn post(body: &str) -> Request {
        lambda_http::http::Request::builder()
            .method("POST")
            .uri("/v1/events")
            .header("content-type", "application/json")
            .body(Body::Text(body.into()))
            .unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[tokio::test]
    async fn mixed_batch_stores_the_good_and_dead_letters_the_bad() {
        let dir = tempfile::tempdir().unwrap();
        let s = service(dir.path());
        let body = r#"{"events":[
          {"event_id":"6a1f0a52-8d7e-4a0b-9a52-7c1f1b3e0001","type":"view","user_id":"alice","item_id":"c1","ts":"2026-11-28T11:00:00Z"},
          {"event_id":"6a1f0a52-8d7e-4a0b-9a52-7c1f1b3e0002","type":"rate","user_id":"alice","item_id":"c1","ts":"2026-11-28T11:00:00Z","rating":9},
          {"event_id":"6a1f0a52-8d7e-4a0b-9a52-7c1f1b3e0001","type":"view","user_id":"alice","item_id":"c1","ts":"2026-11-28T11:00:00Z"}
        ]}"#;
        let r = s.respond(post(body), now()).await;
        assert_eq!(r.status(), 200);
        let v: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(
            (v["accepted"].as_u64(), v["rejected"].as_u64(), v["duplicates"].as_u64()),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(v["results"][1]["problems"][0]["field"], "rating");
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let stored = lake.read_events().await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0].event.user_id, "alice");
        let dead = lake.read_dead_letters().await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_ne!(dead[0].raw["user_id"], "alice");
    }

    #[test]
    fn prepare_elements_is_prepare() {
        let dir = tempfile::tempdir().unwrap();
        let s = service(dir.path());
        let id = |n: u32| format!("6a1f0a52-8d7e-4a0b-9a52-7c1f1b3e{n:04x}");
        let mut events = Vec::new();
        for n in 0..40u32 {
            let user = format!("learner-{}", n % 7);
            events.push(match n % 10 {
                0 => json!({"event_id": id(n), "type": "view", "user_id": user, "item_id": "c1", "ts": "2026-11-28T11:00:00Z"}),
                1 => json!({"event_id": id(n - 1).to_uppercase(), "type": "click", "user_id": user, "item_id": "c1", "ts": "2026-11-28T11:00:00Z"}),
                2 => json!({"event_id": id(n), "type": "review", "user_id": user, "item_id": "c1", "ts": "2026-11-27T11:00:00Z", "rating": 4, "text": "很好 a@b.cn 13812345678"}),
                3 => json!({"event_id": id(n), "type": "review", "user_id": user, "item_id": "c1", "ts": "2026-11-28T11:00:00Z", "rating": 9, "text": "13812345678"}),
                4 => json!({"event_id": id(n), "type": "search", "user_id": user, "ts": "2026-11-28T11:00:00Z", "query": "卡号 4111 1111 1111 1111", "colour": "red"}),
                5 => json!({"event_id": id(n), "type": "search", "user_id": user, "ts": "2026-11-28T11:00:00Z", "query": "x@y.org"}),
                6 => json!({"event_id": id(n), "type": "purchase", "user_id": user, "item_id": "c2", "ts": "2026-11-28T11:00:00Z", "price": 9, "currency": "CNY"}),
                7 => json!({"event_id": id(n), "type": "progress", "user_id": [user], "item_id": "c2", "ts": "2026-11-28T11:00:00Z", "progress": 0.5}),
                8 => json!({"event_id": 7, "type": "view", "user_id": user, "ts": "2026-11-28T11:00:00Z"}),
                _ => json!({"event_id": id(n), "type": "view", "user_id": user, "item_id": "c3", "ts": "2026-11-28T11:00:00Z", "session_id": "s"}),
            });
        }
        let mut body = serde_json::to_string(&json!({ "events": events })).unwrap();
        body.insert_str(
            body.len() - 2,
            r#",{"a":1,"a":2},[1],{"event_id":"x","text":{"t":"13812345678"},"user_id":"bob"},{"event_id":"6a1f0a52-8d7e-4a0b-9a52-7c1f1b3effff","type":"view","user_id":"u","item_id":"13812345678","ts":"2026-11-28T11:00:00Z"}"#,
        );
        for (body, ndjson) in [(body.clone().into_bytes(), false), (ndjson(&body), true)] {
            let elements = event::decode_elements(&body, ndjson).unwrap();
            assert!(elements.iter().any(|e| matches!(e, Element::Fields(_))));
            assert!(elements.iter().any(|e| matches!(e, Element::Raw(_))));
            let fast = s.prepare_elements(&elements, now());
            let slow = s.prepare(event::decode_batch(&body, ndjson).unwrap(), now());
            assert_eq!(fast.result, slow.result);
            assert_eq!(fast.accepted, slow.accepted);
            assert_eq!(fast.dead, slow.dead);
            assert_eq!(
                (fast.result.accepted, fast.result.duplicates, fast.result.rejected),
                (20, 4, 20 + usize::from(ndjson))
            );
            assert!(fast.result.redactions.total() >= 4);
            assert!(fast.result.results.iter().any(|r| r.problems.iter().any(|p| p.rule == "personal_data")));
            assert!(fast.accepted.iter().all(|e| e.event.session_id.as_deref() != Some("s")), "pseudonymised");
        }
    }

    #[tokio::test]
    async fn too_many_events_are_counted_without_decoding_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = service(dir.path());
        for n in [501, 1_000] {
            let json = format!("{{\"events\":[{}]}}", vec!["{}"; n].join(","));
            let mut nd = post(&vec!["{}"; n].join("\n"));
            nd.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
            for req in [post(&json), nd] {
                let r = s.respond(req, now()).await;
                assert_eq!(r.status(), 413);
                let v: Value = serde_json::from_slice(r.body()).unwrap();
                assert_eq!(v["error"]["code"], "too_many_events");
                assert_eq!(v["error"]["message"], format!("{n} events; at most 500 per batch"));
            }
        }
    }

    fn ndjson(body: &str) -> Vec<u8> {
        let v: Value = serde_json::from_str(&body.replace(r#"{"a":1,"a":2}"#, r#"{"a":3}"#)).unwrap();
        let mut lines: Vec<String> = v["events"].as_array().unwrap().iter().map(|e| e.to_string()).collect();
        lines.push(r#"{"a":1,"a":2}"#.into());
        lines.join("\n").into_bytes()
    }

    #[tokio::test]
    async fn bad_requests() {
        let dir = tempfile::tempdir().unwrap();
        let s = service(dir.path());
        for (body, status) in [("{\"events\":[", 400), ("[]", 400), ("{\"events\":[]}", 400), ("{\"events\":[1]}", 422)]
        {
            assert_eq!(s.respond(post(body), now()).await.status(), status, "{body}");
        }
        let many = format!("{{\"events\":[{}]}}", vec!["{}"; 501].join(","));
        assert_eq!(s.respond(post(&many), now()).await.status(), 413);
        let mut get = post("");
        *get.method_mut() = Method::GET;
        assert_eq!(s.respond(get, now()).await.status(), 405);
    }
}
