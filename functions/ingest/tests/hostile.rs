//! Hostile ingestion: batches full of raw ids and personal data in every
//! field, of valid and invalid events, sent through the HTTP handler; then
//! every file of the lake is opened and every value decoded (each Parquet
//! column of each row, each JSON value and key, recursively, and the raw
//! bytes) to check that none holds a raw id, a phone number, an e-mail
//! address or an ID card number.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_ingest::{Ingest, KeyRing};
use knowedge_lake::{AuditExpectation, Lake};
use lambda_http::{Body, Request};
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::{Value, json};

const WEB_KEY: &str = "web-3f9a1c0e7b2d4a68";
const ADMIN_KEY: &str = "ops-0000000000000000admin";

const PHONE: &str = "13812345678";
const PHONE_INTL: &str = "+8613700001111";
const PHONE_NUM: u64 = 13912345678;
const PHONE_IN_ARRAY: &str = "15012345678";
const EMAIL: &str = "alice.hostile@example.com";
const EMAIL_2: &str = "bob.leak@mail.example.cn";
const ID_CARD: &str = "11010519491231002X";
const RAW_IDS: [&str; 3] = ["learner-raw-7f3a01", "learner-raw-7f3a02", "anon-raw-7f3a03"];

/// Everything that must not appear anywhere in the lake.
fn needles() -> Vec<String> {
    let mut n: Vec<String> = [PHONE, PHONE_INTL, "8613700001111", PHONE_IN_ARRAY, EMAIL, EMAIL_2, ID_CARD]
        .iter()
        .map(|s| s.to_string())
        .collect();
    n.push(PHONE_NUM.to_string());
    n.push("alice.hostile".into());
    n.push("bob.leak".into());
    n.push("110105194912310".into());
    n.extend(RAW_IDS.iter().map(|s| s.to_string()));
    n
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z").unwrap().with_timezone(&Utc)
}

fn id(n: u32) -> String {
    format!("6a1f0a52-8d7e-4a0b-9a52-7c1f1b3e{n:04x}")
}

fn post(key: &str, body: String, ndjson: bool) -> Request {
    lambda_http::http::Request::builder()
        .method("POST")
        .uri("/v1/events")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", if ndjson { "application/x-ndjson" } else { "application/json" })
        .body(Body::Text(body))
        .unwrap()
}

/// Valid events with personal data where the schema allows free text or ids.
fn valid_events() -> Vec<Value> {
    let ts = "2026-11-28T09:00:00Z";
    vec![
        json!({"event_id": id(1), "type": "review", "user_id": RAW_IDS[0], "item_id": "c1", "ts": ts, "rating": 4,
               "text": format!("写信 {EMAIL} 或 {EMAIL_2}, 打 {PHONE} / {PHONE_INTL}, 身份证{ID_CARD}。"),
               "session_id": PHONE}),
        json!({"event_id": id(2), "type": "search", "user_id": PHONE, "ts": ts,
               "query": format!("{EMAIL} {PHONE} {ID_CARD}"), "session_id": EMAIL}),
        json!({"event_id": id(3), "type": "view", "user_id": RAW_IDS[1], "item_id": "c2", "ts": ts,
               "session_id": RAW_IDS[2], "experiment": "ranker-2026-11", "variant": "ease",
               "recommendation_id": "rec-001"}),
        json!({"event_id": id(4), "type": "view", "user_id": EMAIL, "item_id": "c3", "ts": ts}),
        json!({"event_id": id(5), "type": "purchase", "user_id": ID_CARD, "item_id": "c4", "ts": ts,
               "price": 9.9, "currency": "CNY", "session_id": ID_CARD}),
    ]
}

/// Events that must be refused, each hiding personal data somewhere.
fn invalid_events() -> Vec<Value> {
    let ts = "2026-11-28T09:00:00Z";
    vec![
        // Ids that are not strings.
        json!({"event_id": id(20), "type": "view", "user_id": PHONE_NUM, "item_id": "c1", "ts": ts}),
        json!({"event_id": id(21), "type": "view", "user_id": [PHONE_IN_ARRAY], "item_id": "c1", "ts": ts}),
        json!({"event_id": id(22), "type": "view", "user_id": {"id": EMAIL, "phone": PHONE}, "item_id": "c1", "ts": ts}),
        json!({"event_id": id(23), "type": "view", "user_id": RAW_IDS[0], "session_id": PHONE_NUM, "item_id": "c1", "ts": ts,
               "rating": 9}),
        // Unknown fields, some named like the data they hold.
        json!({"event_id": id(24), "type": "view", "user_id": RAW_IDS[1], "item_id": "c1", "ts": ts,
               "email": EMAIL, "phone": PHONE, "anonymous_id": RAW_IDS[2], "contact": {"mail": EMAIL_2}}),
        json!({"event_id": id(25), "type": "view", "user_id": PHONE, "item_id": "c1", "ts": ts,
               EMAIL: 1, PHONE: "x", ID_CARD: [1]}),
        // Personal data in the ids the schema keeps as sent: refused.
        json!({"event_id": id(26), "type": "view", "user_id": RAW_IDS[0], "item_id": PHONE, "ts": ts}),
        json!({"event_id": id(27), "type": "view", "user_id": RAW_IDS[0], "item_id": "c1", "ts": ts,
               "experiment": EMAIL, "variant": ID_CARD, "recommendation_id": PHONE_INTL}),
        json!({"event_id": id(28), "type": "click", "user_id": RAW_IDS[0], "item_id": format!("course {EMAIL_2}"), "ts": ts}),
        // Personal data in fields of the wrong shape or value.
        json!({"event_id": PHONE, "type": EMAIL, "user_id": RAW_IDS[1], "item_id": [PHONE], "ts": EMAIL,
               "currency": PHONE_INTL, "price": PHONE_NUM, "rating": ID_CARD}),
        json!({"event_id": id(29), "type": "review", "user_id": RAW_IDS[1], "item_id": "c1", "ts": ts, "rating": 9,
               "text": format!("{EMAIL} {PHONE} {ID_CARD}")}),
        json!({"event_id": id(30), "type": "review", "user_id": RAW_IDS[1], "item_id": "c1", "ts": ts,
               "text": {"body": EMAIL}, "query": [PHONE]}),
        json!({"event_id": id(31), "type": "search", "user_id": RAW_IDS[2], "ts": ts,
               "query": format!("{EMAIL} {}", "x".repeat(2_000))}),
        json!({"event_id": id(32), "type": "view", "user_id": format!("{PHONE}{}", "y".repeat(200)), "item_id": "c1", "ts": ts}),
        json!({"event_id": id(33), "type": "view", "user_id": RAW_IDS[0], "item_id": "c1", "ts": ts,
               "session_id": format!("{EMAIL} {PHONE}"), "variant": {"v": PHONE}}),
        json!([PHONE, EMAIL]),
        json!(format!("{EMAIL} {PHONE}")),
        json!(PHONE_NUM),
    ]
}

fn walk_json(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| walk_json(x, out)),
        Value::Object(o) => {
            for (k, x) in o {
                out.push(k.clone());
                walk_json(x, out);
            }
        }
        v => out.push(match v {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        }),
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(files(&p)) } else { out.push(p) }
    }
    out
}

/// Every value of every file under the lake, decoded, with its file's name.
fn every_value(lake_dir: &Path) -> (Vec<(String, String)>, usize, usize) {
    let (mut values, mut parquet_rows, mut json_values) = (Vec::new(), 0, 0);
    for path in files(lake_dir) {
        let shown = path.strip_prefix(lake_dir).unwrap().display().to_string();
        let bytes = std::fs::read(&path).unwrap();
        // The raw bytes, as a reader without any decoder would see them.
        values.push((shown.clone(), String::from_utf8_lossy(&bytes).into_owned()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".parquet") {
            let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
            for row in reader.get_row_iter(None).unwrap() {
                let row = row.unwrap();
                parquet_rows += 1;
                for (column, field) in row.get_column_iter() {
                    values.push((format!("{shown} column {column}"), field.to_string()));
                }
            }
        } else if name.ends_with(".ndjson") || name.ends_with(".json") {
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let v: Value = serde_json::from_slice(line).unwrap();
                let mut strings = Vec::new();
                walk_json(&v, &mut strings);
                json_values += strings.len();
                values.extend(strings.into_iter().map(|s| (shown.clone(), s)));
            }
        } else {
            panic!("unexpected file in the lake: {shown}");
        }
    }
    (values, parquet_rows, json_values)
}

fn assert_clean(lake_dir: &Path) -> (usize, usize) {
    let needles = needles();
    let (values, rows, json_values) = every_value(lake_dir);
    for (at, value) in &values {
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        for n in &needles {
            if let Some(i) = value.find(n.as_str()) {
                let from = value.floor_char_boundary(i.saturating_sub(150));
                panic!("{at} holds `{n}`: …{}", &value[from..value.ceil_char_boundary(i + n.len() + 50)]);
            }
            let nd: String = n.chars().filter(char::is_ascii_digit).collect();
            if nd.len() >= 11 {
                assert!(!digits.contains(&nd), "{at} holds the digits of `{n}`: {value:.300}");
            }
        }
    }
    (rows, json_values)
}

#[tokio::test]
async fn nothing_raw_or_personal_reaches_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let ingest = Ingest::new(lake.clone(), Pseudonymizer::new(&[8; 32]).unwrap())
        .with_keys(KeyRing::parse(&format!("web:events.write:{WEB_KEY},ops:admin:{ADMIN_KEY}")).unwrap());
    let (valid, invalid) = (valid_events(), invalid_events());
    let mut all = valid.clone();
    all.extend(invalid.iter().cloned());

    // As a JSON batch (web key) and as NDJSON with a line that is not JSON (admin key).
    let r = ingest.respond(post(WEB_KEY, json!({ "events": all }).to_string(), false), now()).await;
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!((v["accepted"].as_u64(), v["rejected"].as_u64()), (Some(5), Some(invalid.len() as u64)), "{v}");
    let mut lines: Vec<String> = all.iter().map(Value::to_string).collect();
    lines.push(format!("{{\"user_id\": \"{PHONE}\", \"email\": \"{EMAIL}\", "));
    let later = now() + chrono::Duration::seconds(1);
    let r = ingest.respond(post(ADMIN_KEY, lines.join("\n"), true), later).await;
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!((v["accepted"].as_u64(), v["rejected"].as_u64()), (Some(5), Some(invalid.len() as u64 + 1)), "{v}");

    // The refusals name the rule, and the lake kept what it should.
    let results = v["results"].as_array().unwrap();
    let rules_of = |i: usize| -> Vec<&str> {
        results[i]["problems"].as_array().unwrap().iter().map(|p| p["rule"].as_str().unwrap()).collect()
    };
    assert_eq!(rules_of(valid.len() + 6), ["personal_data"]);
    assert_eq!(rules_of(valid.len() + 7), ["personal_data"; 3]);
    let stored = lake.read_events().await.unwrap();
    assert_eq!(stored.len(), 5);
    assert!(stored.iter().all(|e| e.key_name.as_deref() == Some("web")), "the first copy of each came with `web`");
    let rows = lake.scan_events().await.unwrap();
    assert_eq!(rows.iter().filter(|e| e.key_name.as_deref() == Some("ops")).count(), 5);
    let p = Pseudonymizer::new(&[8; 32]).unwrap();
    let review = stored.iter().find(|e| e.event.event_id == id(1)).unwrap();
    assert_eq!(review.event.session_id.as_deref(), Some(p.pseudonymize(PHONE).as_str()), "session ids are pseudonyms");
    assert_eq!(review.event.user_id, p.pseudonymize(RAW_IDS[0]));
    assert_eq!(review.redactions, 5);
    let dead = lake.read_dead_letters().await.unwrap();
    assert_eq!(dead.len(), 2 * invalid.len() + 1);
    let numeric = dead.iter().find(|d| d.raw["event_id"] == id(20)).unwrap();
    assert_eq!(numeric.raw["user_id"], p.pseudonymize(&PHONE_NUM.to_string()), "a numeric id is pseudonymised");
    assert!(numeric.problems.iter().any(|p| p.field == "user_id"));
    let unknown = dead.iter().find(|d| d.raw["event_id"] == id(24)).unwrap();
    assert_eq!(unknown.dropped_fields, ["anonymous_id", "contact", "email", "phone"]);
    let unnamed = dead.iter().find(|d| d.raw["event_id"] == id(25)).unwrap();
    assert_eq!((unnamed.dropped_fields.len(), unnamed.dropped_unnamed), (0, 3));
    assert_eq!(unnamed.problems.iter().filter(|p| p.rule == "unknown_field").count(), 3, "every problem is kept");
    assert!(dead.iter().any(|d| d.raw.is_null() && d.raw_sha256.is_some()));
    assert_eq!(dead.iter().filter(|d| d.key_name.as_deref() == Some("ops")).count(), invalid.len() + 1);

    // The admin key's use is in the audit log (key name and route only).
    let audit = lake.audit_records().await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].action.as_str(), audit[0].key_name.as_str()), ("admin_key_use", "ops"));
    assert!(lake.audit_verify(&AuditExpectation::default()).await.unwrap().is_intact());

    // Every file, every value: nothing raw, before and after compaction.
    let (rows_seen, json_seen) = assert_clean(dir.path());
    assert_eq!(rows_seen, 10);
    assert!(json_seen > 100, "{json_seen}");
    lake.compact().await.unwrap();
    let (rows_seen, _) = assert_clean(dir.path());
    assert_eq!(rows_seen, 5);
}

/// The check itself finds what it looks for (so a clean result means something).
#[test]
fn the_scan_finds_a_planted_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dead-letter")).unwrap();
    std::fs::write(dir.path().join("dead-letter/x.ndjson"), json!({"a": [{"b": PHONE_NUM}]}).to_string()).unwrap();
    let r = std::panic::catch_unwind(|| assert_clean(dir.path()));
    assert!(r.is_err());
}
