//! The admin route of erasure requests: keys and scopes, the pending job
//! (pseudonym only), and its status once the job ran where compaction runs.
#![allow(missing_docs, clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use knowedge_format::artifact::SigningKey;
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_ingest::{Ingest, KeyRing};
use knowedge_lake::privacy::Eraser;
use knowedge_lake::{CompactOptions, Lake};
use lambda_http::{Body, Request};
use serde_json::Value;

const WRITE: &str = "web-3f9a1c0e7b2d4a68";
const ADMIN: &str = "ops-0000000000000000admin";

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn request(method: &str, path: &str, key: Option<&str>, body: &str) -> Request {
    let mut b =
        lambda_http::http::Request::builder().method(method).uri(path).header("content-type", "application/json");
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    b.body(Body::Text(body.into())).unwrap()
}

fn json(r: &lambda_http::Response<Body>) -> Value {
    serde_json::from_slice(r.body()).unwrap()
}

#[tokio::test]
async fn admins_request_erasures_and_follow_them_to_the_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let pseudonymizer = Pseudonymizer::new(&[8; 32]).unwrap();
    let ingest = Ingest::new(lake.clone(), pseudonymizer.clone())
        .with_keys(KeyRing::parse(&format!("web:events.write:{WRITE},ops:admin:{ADMIN}")).unwrap());
    let ts = (Utc::now() - chrono::TimeDelta::hours(1)).to_rfc3339();
    let events: Vec<Value> = (0..6)
        .map(|i| {
            serde_json::json!({"event_id": format!("6a1f0a52-8d7e-4a0b-9a52-7c1f1b3e{i:04x}"), "type": "view",
                "user_id": if i % 2 == 0 { "alice-raw-id" } else { "bob" }, "item_id": "c1", "ts": ts})
        })
        .collect();
    let body = serde_json::json!({ "events": events }).to_string();
    let r = ingest.respond(request("POST", "/v1/events", Some(WRITE), &body), now()).await;
    assert_eq!(r.status(), 200, "{:?}", json(&r));

    let erase = r#"{"user_id":"alice-raw-id"}"#;
    let r = ingest.respond(request("POST", "/v1/admin/erasures", None, erase), now()).await;
    assert_eq!(r.status(), 401);
    assert_eq!(json(&r)["error"]["code"], "unauthorized");
    let r = ingest.respond(request("POST", "/v1/admin/erasures", Some("not-a-key-at-all"), erase), now()).await;
    assert_eq!(r.status(), 401);
    let r = ingest.respond(request("POST", "/v1/admin/erasures", Some(WRITE), erase), now()).await;
    assert_eq!(r.status(), 403);
    assert_eq!(json(&r)["error"]["code"], "forbidden");
    for bad in [r#"{"user":"x"}"#, "nope", r#"{"user_id":""}"#, r#"{"user_id":"a\u0007"}"#] {
        let r = ingest.respond(request("POST", "/v1/admin/erasures", Some(ADMIN), bad), now()).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert!(lake.erasure_jobs().await.unwrap().is_empty(), "refused requests record nothing");

    let r = ingest.respond(request("POST", "/v1/admin/erasures", Some(ADMIN), erase), now()).await;
    assert_eq!(r.status(), 202);
    let job = json(&r)["job_id"].as_str().unwrap().to_owned();
    // The pending record holds the pseudonym, never the raw id.
    let record = std::fs::read_to_string(dir.path().join(format!("privacy/erasures/{job}.json"))).unwrap();
    assert!(!record.contains("alice-raw-id"));
    assert!(record.contains(&pseudonymizer.pseudonymize("alice-raw-id")));

    let status = |key: Option<&'static str>, id: String| {
        let ingest = ingest.clone();
        async move { ingest.respond(request("GET", &format!("/v1/admin/erasures/{id}"), key, ""), now()).await }
    };
    let r = status(Some(ADMIN), job.clone()).await;
    assert_eq!((r.status().as_u16(), json(&r)["state"].as_str()), (200, Some("pending")));
    assert_eq!(status(Some(WRITE), job.clone()).await.status(), 403);
    assert_eq!(status(None, job.clone()).await.status(), 401);
    assert_eq!(status(Some(ADMIN), "0".repeat(32)).await.status(), 404);
    assert_eq!(status(Some(ADMIN), "..%2Fkeys".into()).await.status(), 400);

    // What runs compaction runs the job.
    let key = SigningKey::from_seed([2; 32]);
    let eraser = Eraser::new(lake.clone(), key.clone());
    let report = lake.maintain(Some(&eraser), &CompactOptions::default()).await.unwrap();
    assert_eq!(report.erasures.len(), 1);
    assert_eq!(report.erasures[0].events_removed, 3);
    let r = status(Some(ADMIN), job.clone()).await;
    let v = json(&r);
    assert_eq!(v["state"], "done");
    assert_eq!(v["receipt"]["totals"]["events_removed"], 3);
    let left = lake.read_events().await.unwrap();
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|e| e.event.user_id == pseudonymizer.pseudonymize("bob")));
}
