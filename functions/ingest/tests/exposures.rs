//! `POST /v1/exposures`: batches of what edges showed land in the lake's
//! exposures table; each exposure is judged on its own, raw learner ids and
//! personal data are refused, and bad batches get a JSON reason.
#![allow(missing_docs, clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, Utc};
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_ingest::{Ingest, KeyRing};
use knowedge_lake::Lake;
use lambda_http::{Body, Request};
use serde_json::{Value, json};

const WRITE: &str = "edge-3f9a1c0e7b2d4a68";

fn request(method: &str, key: Option<&str>, body: &str) -> Request {
    let mut b = lambda_http::http::Request::builder()
        .method(method)
        .uri("/v1/exposures")
        .header("content-type", "application/json");
    if let Some(k) = key {
        b = b.header("authorization", format!("Bearer {k}"));
    }
    b.body(Body::Text(body.into())).unwrap()
}

fn answer(r: &lambda_http::Response<Body>) -> Value {
    serde_json::from_slice(r.body()).unwrap()
}

fn exposure(id: &str, user: &str, ts: DateTime<Utc>) -> Value {
    json!({"recommendation_id": id, "ts": ts, "user": user, "model_id": "m-1",
           "experiment": "ranker", "variant": "b", "items": ["course-1", "course-2"]})
}

#[tokio::test]
async fn exposures_are_checked_one_by_one_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let pseudonyms = Pseudonymizer::new(&[8; 32]).unwrap();
    let ingest = Ingest::new(lake.clone(), pseudonyms.clone())
        .with_keys(KeyRing::parse(&format!("edge:events.write:{WRITE}")).unwrap());
    let now = Utc::now();
    let learner = pseudonyms.pseudonymize("learner-1");
    let batch = json!({"version": 1, "exposures": [
        exposure("r-1", &learner, now - TimeDelta::seconds(2)),
        exposure("r-2", "", now),
        exposure("r-3", "learner-1", now),
        exposure("r-4", &learner, now + TimeDelta::hours(1)),
        {"recommendation_id": "r-5", "ts": now, "user": learner, "model_id": "m-1",
         "items": ["someone@example.com"]},
    ]});
    let r = ingest.respond(request("POST", None, &batch.to_string()), now).await;
    assert_eq!(r.status(), 401, "{}", answer(&r));
    let r = ingest.respond(request("POST", Some(WRITE), &batch.to_string()), now).await;
    assert_eq!(r.status(), 200, "{}", answer(&r));
    let a = answer(&r);
    assert_eq!(a["accepted"], 2, "{a}");
    let rejected: Vec<(u64, String)> = a["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["index"].as_u64().unwrap(), x["reason"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(rejected.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3, 4]);
    assert!(rejected[0].1.contains("pseudonym"), "{rejected:?}");
    assert!(rejected[1].1.contains("future"), "{rejected:?}");
    assert!(rejected[2].1.contains("personal data"), "{rejected:?}");

    let stored = lake.read_exposures().await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].recommendation_id, "r-1");
    assert_eq!(stored[0].user_id.as_deref(), Some(learner.as_str()));
    assert_eq!(stored[0].key_name.as_deref(), Some("edge"));
    assert_eq!(stored[0].items, ["course-1", "course-2"]);
    assert_eq!(stored[1].user_id, None, "an anonymous answer");
    let files = std::fs::read_dir(dir.path().join("exposures")).unwrap().count();
    assert_eq!(files, 1, "one day, one partition");
    for f in walk(&dir.path().join("exposures")) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("learner-1"), "no raw id in {}", f.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test]
async fn bad_batches_get_a_json_reason() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let ingest = Ingest::new(lake.clone(), Pseudonymizer::new(&[8; 32]).unwrap())
        .with_keys(KeyRing::parse(&format!("edge:events.write:{WRITE}")).unwrap());
    let now = Utc::now();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("POST", "not json".into(), 400, "malformed_batch"),
        ("POST", r#"{"version": 2, "exposures": []}"#.into(), 400, "unsupported_version"),
        ("POST", r#"{"version": 1, "exposures": []}"#.into(), 400, "empty_batch"),
        (
            "POST",
            json!({"version": 1, "exposures": vec![exposure("r", "", now); 501]}).to_string(),
            413,
            "too_many_exposures",
        ),
        ("GET", String::new(), 405, "method_not_allowed"),
    ];
    for (method, body, status, code) in cases {
        let r = ingest.respond(request(method, Some(WRITE), &body), now).await;
        assert_eq!(r.status(), status, "{code}: {}", answer(&r));
        assert_eq!(answer(&r)["error"]["code"], code);
    }
    let all_bad = json!({"version": 1, "exposures": [exposure("r", "raw-id", now)]});
    let r = ingest.respond(request("POST", Some(WRITE), &all_bad.to_string()), now).await;
    assert_eq!(r.status(), 422);
    assert!(lake.read_exposures().await.unwrap().is_empty());
}
