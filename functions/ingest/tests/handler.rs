//! The ingestion handler driven by real Lambda payloads (API Gateway HTTP API
//! v2, function URL with a base64 body) and by a suite of bad batches.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_ingest::{Ingest, KeyRing};
use knowedge_lake::Lake;
use lambda_http::{Body, Request};
use serde_json::Value;

const KEY: &str = "web-3f9a1c0e7b2d4a68";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z").unwrap().with_timezone(&Utc)
}

fn service(lake: &Lake) -> Ingest {
    Ingest::new(lake.clone(), Pseudonymizer::new(&[8; 32]).unwrap())
        .with_keys(KeyRing::parse(&format!("web:events.write:{KEY},reports:admin:0000000000000000admin")).unwrap())
        .with_cors_origins(vec!["https://learn.example.com".into()])
}

fn lambda_request(name: &str) -> Request {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    lambda_http::request::from_str(&text).unwrap()
}

fn body_json(r: &lambda_http::Response<Body>) -> Value {
    serde_json::from_slice(r.body()).unwrap()
}

#[tokio::test]
async fn api_gateway_v2_batch() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let resp = service(&lake).respond(lambda_request("apigw-v2-batch.json"), now()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://learn.example.com");
    let v = body_json(&resp);
    assert_eq!((v["accepted"].as_u64(), v["rejected"].as_u64()), (Some(3), Some(1)));
    assert_eq!(v["results"][3]["problems"][0]["field"], "rating");
    assert_eq!((v["redactions"]["phone"].as_u64(), v["redactions"]["email"].as_u64()), (Some(1), Some(1)));

    let stored = lake.read_events().await.unwrap();
    assert_eq!(stored.len(), 3);
    let review = stored.iter().find(|e| e.event.text.is_some()).unwrap();
    let text = review.event.text.as_deref().unwrap();
    assert!(text.contains("[PHONE]") && text.contains("[EMAIL]") && !text.contains("13812345678"), "{text}");
    assert_eq!(review.redactions, 2);
    assert!(stored.iter().all(|e| e.event.user_id != "learner-0042"));
    let dead = lake.read_dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_ne!(dead[0].raw["user_id"], "learner-0042");
    // Nothing in the lake holds the raw user id.
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!bytes.windows(12).any(|w| w == b"learner-0042"), "{} holds the raw user id", entry.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn function_url_with_base64_ndjson_body() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let resp = service(&lake).respond(lambda_request("function-url-ndjson-base64.json"), now()).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.body());
    assert_eq!(body_json(&resp)["accepted"], 2);
    assert_eq!(lake.read_events().await.unwrap().len(), 2);
}

#[tokio::test]
async fn keys_and_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let s = service(&lake);
    let resp = s.respond(lambda_request("apigw-v2-no-key.json"), now()).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(body_json(&resp)["error"]["code"], "unauthorized");
    let mut req = lambda_request("apigw-v2-batch.json");
    req.headers_mut().insert("authorization", "Bearer not-a-key-at-all".parse().unwrap());
    assert_eq!(s.respond(req, now()).await.status(), 401);
    // An admin key may write too; nothing was stored by the refused requests.
    assert!(lake.read_events().await.unwrap().is_empty());
}

#[tokio::test]
async fn cors_preflight() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let s = service(&lake);
    let pre = |origin: &str| {
        lambda_http::http::Request::builder()
            .method("OPTIONS")
            .uri("/v1/events")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(Body::Empty)
            .unwrap()
    };
    let ok = s.respond(pre("https://learn.example.com"), now()).await;
    assert_eq!(ok.status(), 204);
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://learn.example.com");
    assert!(ok.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    let bad = s.respond(pre("https://evil.example.net"), now()).await;
    assert_eq!(bad.status(), 403);
    assert!(bad.headers().get("access-control-allow-origin").is_none());
}

fn post(body: Vec<u8>, content_type: &str) -> Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/v1/events")
        .header("content-type", content_type)
        .header("authorization", format!("Bearer {KEY}"))
        .body(Body::Binary(body))
        .unwrap()
}

#[tokio::test]
async fn bad_batches_get_documented_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let s = service(&lake);
    let cases: &[(&str, u16, &str)] = &[
        ("truncated.json", 400, "malformed_batch"),
        ("wrong-types.json", 422, ""),
        ("nan.json", 400, "malformed_batch"),
        ("duplicate-keys.json", 422, ""),
        ("duplicate-batch-key.json", 400, "malformed_batch"),
        ("deep-nesting.json", 422, ""),
        ("not-an-object.json", 400, "malformed_batch"),
        ("huge-strings.json", 422, ""),
        ("invalid-utf8.bin", 400, "malformed_batch"),
        ("unknown-fields.json", 422, ""),
    ];
    for (name, status, code) in cases {
        let body = std::fs::read(fixture(&format!("bad/{name}"))).unwrap();
        let resp = s.respond(post(body, "application/json"), now()).await;
        assert_eq!(resp.status().as_u16(), *status, "{name}: {:?}", String::from_utf8_lossy(resp.body()));
        let v = body_json(&resp);
        if code.is_empty() {
            assert!(v["results"].as_array().unwrap().iter().all(|r| r["status"] == "rejected"), "{name}");
        } else {
            assert_eq!(v["error"]["code"], *code, "{name}");
            assert!(v["error"]["message"].as_str().unwrap().len() > 5);
        }
    }
    // Where the JSON broke is reported.
    let body = std::fs::read(fixture("bad/truncated.json")).unwrap();
    let v = body_json(&s.respond(post(body, "application/json"), now()).await);
    assert!(v["error"]["message"].as_str().unwrap().contains("column"), "{v}");
    // Invalid UTF-8 NDJSON.
    assert_eq!(s.respond(post(b"\xff\n".to_vec(), "application/x-ndjson"), now()).await.status(), 400);
    // A 10 MB body.
    let big = vec![b' '; 10 << 20];
    let resp = s.respond(post(big, "application/json"), now()).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(body_json(&resp)["error"]["code"], "body_too_large");
    // 10,000 small events fit in 1 MiB only if tiny: send them as NDJSON of `{}`.
    let many = "{}\n".repeat(10_000).into_bytes();
    let resp = s.respond(post(many, "application/x-ndjson"), now()).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(body_json(&resp)["error"]["code"], "too_many_events");
    // Nothing invalid reached the event files; every rejected event is in the dead letter with reasons.
    assert!(lake.read_events().await.unwrap().is_empty());
    let dead = lake.read_dead_letters().await.unwrap();
    assert!(dead.len() >= 5 && dead.iter().all(|d| !d.problems.is_empty()));
    let dup = dead.iter().find(|d| d.problems.iter().any(|p| p.message.contains("duplicate key"))).unwrap();
    assert!(dup.raw.is_null() && dup.raw_sha256.as_ref().unwrap().len() == 64);
}

#[tokio::test]
async fn admin_key_use_is_audited_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let body = r#"{"events":[{"event_id":"6a1f0a52-8d7e-4a0b-9a52-7c1f1b3e0001","type":"view","user_id":"u","item_id":"c1","ts":"2026-11-28T09:00:00Z"}]}"#;
    let post = |key: &str| {
        lambda_http::http::Request::builder()
            .method("POST")
            .uri("/v1/events")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::Text(body.into()))
            .unwrap()
    };
    let s = service(&lake);
    assert_eq!(s.respond(post(KEY), now()).await.status(), 200);
    assert!(lake.audit_records().await.unwrap().is_empty(), "an events.write key is not audited");
    assert_eq!(s.respond(post("0000000000000000admin"), now()).await.status(), 200);
    let records = lake.audit_records().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].action.as_str(), records[0].key_name.as_str()), ("admin_key_use", "reports"));
    assert_eq!(records[0].details, serde_json::json!({"method": "POST", "route": "/v1/events"}));
    let names: Vec<Option<String>> = lake.scan_events().await.unwrap().into_iter().map(|e| e.key_name).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&Some("web".into())) && names.contains(&Some("reports".into())));

    // When the record cannot be written, the admin request is refused and nothing is stored.
    let blocked = tempfile::tempdir().unwrap();
    std::fs::write(blocked.path().join("audit"), "not a folder").unwrap();
    let lake = Lake::open(blocked.path().to_str().unwrap()).unwrap();
    let r = service(&lake).respond(post("0000000000000000admin"), now()).await;
    assert_eq!(r.status(), 503);
    assert_eq!(body_json(&r)["error"]["code"], "audit_unavailable");
    assert!(lake.scan_events().await.unwrap().is_empty());
    assert_eq!(service(&lake).respond(post(KEY), now()).await.status(), 200);
}
