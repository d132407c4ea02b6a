//! The lake on a real S3 API server (moto's standalone server, a separate
//! process) and read back by an independent Parquet reader (DuckDB).
//!
//! Both need Python packages that `cargo xtask test` installs
//! (`moto[server]`, `duckdb`); without them these tests fail with a message.
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_format::store::Channel;
use knowedge_ingest::Ingest;
use knowedge_lake::{AuditAction, AuditExpectation, Lake, ModelStore};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

use knowedge_test_support::free_port;

fn start_moto() -> (Server, String) {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server is not installed: run `cargo xtask test` or `pip install 'moto[server]'`");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, format!("http://127.0.0.1:{port}"))
}

/// CreateBucket with a plain HTTP request (the S3 API needs no client library for it).
fn create_bucket(endpoint: &str, bucket: &str) {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z").unwrap().with_timezone(&Utc)
}

fn fixture_request() -> lambda_http::Request {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apigw-v2-batch.json"))
            .unwrap();
    let mut req = lambda_http::request::from_str(&text).unwrap();
    req.headers_mut().remove("authorization");
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lake_and_model_store_on_s3() {
    let (_server, endpoint) = start_moto();
    create_bucket(&endpoint, "knowedge-lake");
    let opts: Vec<(&str, &str)> = vec![
        ("aws_endpoint", endpoint.as_str()),
        ("aws_allow_http", "true"),
        ("aws_access_key_id", "testing"),
        ("aws_secret_access_key", "testing"),
        ("aws_region", "us-east-1"),
        ("aws_virtual_hosted_style_request", "false"),
    ];
    let lake = Lake::open_with("s3://knowedge-lake/prod/lake", &opts).unwrap();
    let ingest = Ingest::new(lake.clone(), Pseudonymizer::new(&[8; 32]).unwrap());
    let resp = ingest.respond(fixture_request(), now()).await;
    assert_eq!(resp.status(), 200, "{:?}", String::from_utf8_lossy(resp.body()));
    // Sent twice (a client retry): readers still count each event once.
    assert_eq!(ingest.respond(fixture_request(), now()).await.status(), 200);
    assert_eq!(lake.scan_events().await.unwrap().len(), 6);
    let events = lake.read_events().await.unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(lake.read_dead_letters().await.unwrap().len(), 2);
    let report = lake.compact().await.unwrap();
    assert_eq!((report.rows_read, report.rows_written), (6, 3));
    assert_eq!(lake.scan_events().await.unwrap().len(), 3);

    // Objects really are on the server under the prefix, Hive-partitioned.
    let listing = ureq_list(&endpoint, "knowedge-lake", "prod/lake/events/");
    assert!(listing.contains("prod/lake/events/dt=2026-11-28/type=purchase/compacted-"), "{listing}");

    let models = ModelStore::open_with("s3://knowedge-lake/prod/models", &opts).unwrap();
    models.publish(Channel::Recommender, "v1", b"artifact bytes".to_vec()).await.unwrap();
    assert_eq!(models.current(Channel::Recommender).await.unwrap().as_deref(), Some("v1"));
    assert_eq!(&models.get("v1").await.unwrap()[..], b"artifact bytes");
    assert!(models.promote(Channel::Recommender, "missing").await.is_err());

    // The audit log on S3: conditional creates keep concurrent appenders in one gap-free chain.
    let mut tasks = Vec::new();
    for t in 0..4 {
        let lake = lake.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let details = serde_json::json!({"n": i});
                lake.audit_append(AuditAction::AdminKeyUse, &format!("key-{t}"), details).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = lake.audit_verify(&AuditExpectation { at_least: Some(20), digest: None }).await.unwrap();
    assert_eq!((report.records, report.problem), (20, None));
}

/// ListObjectsV2 over plain HTTP, returning the XML.
fn ureq_list(endpoint: &str, bucket: &str, prefix: &str) -> String {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET /{bucket}?list-type=2&prefix={prefix} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

#[tokio::test]
async fn duckdb_reads_what_was_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let ingest = Ingest::new(lake.clone(), Pseudonymizer::new(&[8; 32]).unwrap());
    assert_eq!(ingest.respond(fixture_request(), now()).await.status(), 200);
    let events = lake.read_events().await.unwrap();

    let script = r#"
import json, sys, duckdb
rows = duckdb.sql(f"""
  SELECT event_id, type, dt, user_id, item_id, price, currency, rating, text, pii_redactions,
         epoch_ms(ts) AS ts_ms, schema_version
  FROM read_parquet('{sys.argv[1]}/events/*/*/*.parquet', hive_partitioning = true)
  ORDER BY event_id""").fetchall()
print(json.dumps([[str(c) if c is not None else None for c in r] for r in rows], ensure_ascii=False))
"#;
    let out = Command::new("python3")
        .args(["-c", script, dir.path().to_str().unwrap()])
        .output()
        .expect("python3 is needed for the DuckDB reader test");
    assert!(
        out.status.success(),
        "DuckDB reader failed (run `cargo xtask test` or `pip install duckdb`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<Option<String>>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), events.len());
    let mut expected = events.clone();
    expected.sort_by(|a, b| a.event.event_id.cmp(&b.event.event_id));
    for (row, e) in rows.iter().zip(&expected) {
        let e = &e.event;
        assert_eq!(row[0].as_deref(), Some(e.event_id.as_str()));
        assert_eq!(row[1].as_deref(), Some(e.event_type.as_str()));
        assert_eq!(row[2].as_deref(), Some(e.ts.format("%Y-%m-%d").to_string().as_str()));
        assert_eq!(row[3].as_deref(), Some(e.user_id.as_str()));
        assert_eq!(row[4].as_deref(), e.item_id.as_deref());
        assert_eq!(row[5].as_ref().map(|p| p.parse::<f64>().unwrap()), e.price);
        assert_eq!(row[6].as_deref(), e.currency.as_deref());
        assert_eq!(row[7].as_ref().map(|r| r.parse::<u8>().unwrap()), e.rating);
        assert_eq!(row[8].as_deref(), e.text.as_deref());
        assert_eq!(row[10].as_ref().map(|t| t.parse::<i64>().unwrap()), Some(e.ts.timestamp_millis()));
        assert_eq!(row[11].as_deref(), Some("1"));
    }
    let review = rows.iter().find(|r| r[1].as_deref() == Some("review")).unwrap();
    assert_eq!(review[9].as_deref(), Some("2"));
}
