//! The knowedge ingestion function.
//!
//! Frontends `POST /v1/events` with a batch of learner events (a JSON object
//! `{"events": [...]}` or NDJSON). Each event is validated against schema v1
//! ([`knowedge_shared::event`]); accepted events get their `user_id` replaced
//! by its keyed pseudonym and are written to the event lake as Parquet;
//! rejected events are kept in the lake's dead letter with every reason. The
//! answer lists the outcome of every event.
//!
//! The same [`Ingest::handle`] runs as an AWS Lambda function behind API
//! Gateway or a function URL (`knowedge-ingest` binary) and locally behind
//! `knowedge ingest serve`.
//!
//! Configuration (environment):
//!
//! | variable | meaning |
//! |---|---|
//! | `KNOWEDGE_LAKE` | lake location: a directory, or `s3://bucket/prefix` |
//! | `KNOWEDGE_PSEUDONYM_KEY` | hex secret (≥ 16 bytes) for user pseudonyms |
//! | `KNOWEDGE_MAX_EVENT_AGE_DAYS` | oldest accepted event, in days (default 30) |

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use knowedge_lake::{DeadLetter, Lake, StoredEvent};
use knowedge_shared::event::{self, Problem, Validator};
use knowedge_shared::pseudonym::Pseudonymizer;
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::{Value, json};

/// Largest accepted request body, in bytes.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Errors of the ingestion function.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Configuration is missing or invalid (not retryable).
    #[error("configuration: {0}")]
    Config(String),
    /// The lake could not store the batch.
    #[error("lake: {0}")]
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
    /// `accepted`, `duplicate` (same id earlier in the batch) or `rejected`.
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
    /// Per-event outcome, in batch order.
    pub results: Vec<EventResult>,
}

/// The ingestion service.
#[derive(Clone, Debug)]
pub struct Ingest {
    lake: Lake,
    pseudonymizer: Pseudonymizer,
    max_age: Duration,
}

impl Ingest {
    /// A service writing to `lake` with `pseudonymizer`.
    pub fn new(lake: Lake, pseudonymizer: Pseudonymizer) -> Self {
        Self { lake, pseudonymizer, max_age: Duration::days(Validator::DEFAULT_MAX_AGE_DAYS) }
    }

    /// Sets the oldest accepted event age.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Builds the service from the environment (see the crate docs).
    pub fn from_env() -> Result<Self> {
        let var = |k: &str| std::env::var(k).map_err(|_| Error::Config(format!("{k} is not set")));
        let lake = Lake::open(&var("KNOWEDGE_LAKE")?).map_err(|e| Error::Config(e.to_string()))?;
        let p = Pseudonymizer::from_hex(&var("KNOWEDGE_PSEUDONYM_KEY")?).map_err(|e| Error::Config(e.to_string()))?;
        let mut s = Self::new(lake, p);
        if let Ok(days) = std::env::var("KNOWEDGE_MAX_EVENT_AGE_DAYS") {
            let d: i64 =
                days.parse().map_err(|_| Error::Config("KNOWEDGE_MAX_EVENT_AGE_DAYS must be a whole number".into()))?;
            s = s.with_max_age(Duration::days(d));
        }
        Ok(s)
    }

    /// Validates, pseudonymises and stores a decoded batch. Returns after the
    /// accepted events and the dead letters are durable.
    pub async fn ingest(&self, raw: Vec<Value>, now: DateTime<Utc>) -> Result<BatchResult> {
        let mut validator = Validator::new(now);
        validator.max_age = self.max_age;
        let mut seen = HashSet::new();
        let mut accepted = Vec::new();
        let mut dead = Vec::new();
        let mut results = Vec::with_capacity(raw.len());
        for (index, mut value) in raw.into_iter().enumerate() {
            let event_id = value.get("event_id").and_then(Value::as_str).map(str::to_owned);
            match validator.validate(&value) {
                Ok(mut e) => {
                    if !seen.insert(e.event_id.clone()) {
                        results.push(EventResult { index, event_id, status: "duplicate", problems: Vec::new() });
                        continue;
                    }
                    e.user_id = self.pseudonymizer.pseudonymize(&e.user_id);
                    accepted.push(StoredEvent { event: e, received_at: now });
                    results.push(EventResult { index, event_id, status: "accepted", problems: Vec::new() });
                }
                Err(problems) => {
                    if let Some(Value::String(u)) = value.get_mut("user_id") {
                        *u = self.pseudonymizer.pseudonymize(u);
                    }
                    dead.push(DeadLetter { received_at: now, index, raw: value, problems: problems.clone() });
                    results.push(EventResult { index, event_id, status: "rejected", problems });
                }
            }
        }
        if !accepted.is_empty() {
            self.lake.write_events(&accepted).await?;
        }
        self.lake.write_dead_letters(&dead).await?;
        Ok(BatchResult {
            accepted: accepted.len(),
            duplicates: results.len() - accepted.len() - dead.len(),
            rejected: dead.len(),
            results,
        })
    }

    /// The HTTP handler (API Gateway, function URL, or the local server).
    pub async fn handle(&self, req: Request) -> std::result::Result<Response<Body>, lambda_http::Error> {
        Ok(self.respond(req, Utc::now()).await)
    }

    async fn respond(&self, req: Request, now: DateTime<Utc>) -> Response<Body> {
        let path = req.uri().path();
        if !path.ends_with("/v1/events") {
            return error(StatusCode::NOT_FOUND, "not_found", format!("no route {path}"));
        }
        if req.method() != Method::POST {
            return error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "/v1/events accepts POST only");
        }
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
        let raw = match event::decode_batch(body, ndjson) {
            Ok(r) => r,
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
        match self.ingest(raw, now).await {
            Ok(result) => {
                let status = if result.accepted == 0 && result.duplicates == 0 {
                    StatusCode::UNPROCESSABLE_ENTITY
                } else {
                    StatusCode::OK
                };
                json_response(status, &result)
            }
            Err(e) => {
                tracing::error!(error = %e, retryable = e.is_retryable(), "batch not stored");
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

fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    let mut r = Response::new(Body::Text(text));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
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
