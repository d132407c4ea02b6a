//! `POST /v1/sentiment` through the real compiled Spin component in wasmtime,
//! and the host keeping the sentiment model live from `current-sentiment`.
//!
//! Needs `target/wasm32-wasip2/edge/knowedge_edge_spin.wasm`; build it with
//! `cargo xtask build`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use knowedge_edge_host::{EdgeHost, HostConfig, LIVE_DIR, RunningHost};
use knowedge_format::artifact::{ArtifactBuilder, ModelKind, SigningKey};
use knowedge_format::store::{CURRENT, CURRENT_SENTIMENT, artifact_name};
use knowedge_scoring::sentiment::{self, Featurizer, SentimentModel};
use serde_json::{Value, json};
use tempfile::TempDir;

const SEED: [u8; 32] = [7; 32];
const PSEUDONYM_KEY: &str = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";

fn wasm_path() -> PathBuf {
    knowedge_test_support::spin_wasm()
}

/// A small sentiment model: 好/喜欢/good positive, 差/失望/bad negative; `bias` tells versions apart.
fn sentiment_artifact(version: &str, bias: f32) -> Vec<u8> {
    let mut f = Featurizer::new(12);
    let mut w = vec![0.0; 1 << 12];
    for &i in f.features("好 喜欢 good") {
        w[i as usize] = 3.0;
    }
    for &i in f.features("差 失望 bad") {
        w[i as usize] = -3.0;
    }
    sentiment::builder(w, bias, version).sign(&SigningKey::from_seed(SEED)).unwrap()
}

fn recommender_artifact(version: &str) -> Vec<u8> {
    let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
    b.items(vec!["a".into(), "b".into()]).popularity(vec![2.0, 1.0]);
    b.manifest_mut().model_id = version.into();
    b.sign(&SigningKey::from_seed(SEED)).unwrap()
}

fn publish(store: &Path, pointer: &str, version: &str, bytes: &[u8]) {
    std::fs::write(store.join(artifact_name(version)), bytes).unwrap();
    std::fs::write(store.join(pointer), format!("{version}\n")).unwrap();
}

async fn start(store: &TempDir, state: &TempDir) -> RunningHost {
    EdgeHost::start(HostConfig {
        wasm: wasm_path(),
        models_dir: store.path().to_owned(),
        state_dir: state.path().to_owned(),
        public_key_hex: SigningKey::from_seed(SEED).public_key().to_hex(),
        pseudonym_key_hex: PSEUDONYM_KEY.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        poll_interval: Duration::from_secs(3600),
        experiment: None,
        ingest: None,
        access: knowedge_edge_host::Access {
            token_keys_hex: Some(knowedge_test_support::token_keys_hex()),
            ..Default::default()
        },
    })
    .await
    .unwrap()
}

/// Sends `method path` with `body` (and its content-length) over a fresh connection.
async fn send(host: &RunningHost, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let stream = tokio::net::TcpStream::connect(host.local_addr()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", host.local_addr().to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

async fn post_texts(host: &RunningHost, texts: &[&str]) -> (u16, Value) {
    send(host, "POST", "/v1/sentiment", serde_json::to_vec(&json!({ "texts": texts })).unwrap()).await
}

fn labels(v: &Value) -> Vec<String> {
    v["results"].as_array().unwrap().iter().map(|r| r["label"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_sentiment_from_its_own_pointer() {
    let (store, state) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    publish(store.path(), CURRENT, "rec-1", &recommender_artifact("rec-1"));
    let host = start(&store, &state).await;

    // No sentiment model yet: 503 from the module; recommendations unaffected.
    let (status, v) = post_texts(&host, &["好"]).await;
    assert_eq!((status, v["error"]["code"].as_str()), (503, Some("no_model")), "{v}");
    assert_eq!(send(&host, "GET", "/v1/model", Vec::new()).await.0, 200);
    assert_eq!(host.sentiment_status().serving, None);

    // Published under current-sentiment: verified, swapped in, answered by the component.
    publish(store.path(), CURRENT_SENTIMENT, "sent-1", &sentiment_artifact("sent-1", 0.1));
    host.refresh().await;
    assert_eq!(host.sentiment_status().serving.as_deref(), Some("sent-1"));
    assert_eq!(host.status().serving.as_deref(), Some("rec-1"), "the recommendation model stays");
    assert!(state.path().join(LIVE_DIR).join("sent-1.kwm").is_file());
    assert_eq!(std::fs::read_to_string(state.path().join(LIVE_DIR).join("current-sentiment")).unwrap(), "sent-1");
    let texts = ["这本书很好，喜欢", "太差了，失望", "", "😀🎉", "\u{0}\u{7}\t", "The book is good, 推荐!"];
    let (status, v) = post_texts(&host, &texts).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model_id"], "sent-1");
    assert_eq!(labels(&v)[..3], ["positive", "negative", "neutral"]);
    assert_eq!(labels(&v)[4], "neutral");
    assert_eq!(labels(&v)[5], "positive");
    // The component answers exactly what the native core answers.
    let native =
        SentimentModel::from_artifact(&sentiment_artifact("sent-1", 0.1), &SigningKey::from_seed(SEED).public_key())
            .unwrap();
    for (i, t) in texts.iter().enumerate() {
        let s = native.score(t);
        assert_eq!(v["results"][i]["label"], s.label.as_str(), "{t:?}");
        assert_eq!(v["results"][i]["score"].as_f64().unwrap() as f32, s.score, "{t:?}");
    }

    // A tampered sentiment artifact is refused; the live one keeps answering.
    let mut tampered = sentiment_artifact("sent-2", -5.0);
    let mid = tampered.len() / 2;
    tampered[mid] ^= 1;
    publish(store.path(), CURRENT_SENTIMENT, "sent-2", &tampered);
    host.refresh().await;
    let s = host.sentiment_status();
    assert_eq!((s.serving.as_deref(), s.refused.as_deref()), (Some("sent-1"), Some("sent-2")));
    assert!(s.last_error.unwrap().contains("signature"));
    assert_eq!(post_texts(&host, &["好"]).await.1["model_id"], "sent-1");

    // A recommendation artifact under current-sentiment is refused, and a
    // sentiment artifact under current too: each pointer takes its own kind.
    publish(store.path(), CURRENT_SENTIMENT, "rec-x", &recommender_artifact("rec-x"));
    publish(store.path(), CURRENT, "sent-x", &sentiment_artifact("sent-x", 0.0));
    host.refresh().await;
    assert_eq!(host.sentiment_status().refused.as_deref(), Some("rec-x"));
    assert_eq!(host.status().refused.as_deref(), Some("sent-x"));
    assert_eq!(host.status().serving.as_deref(), Some("rec-1"));
    let (_, v) = send(&host, "GET", "/_host/status", Vec::new()).await;
    assert_eq!((v["serving"].as_str(), v["sentiment"]["serving"].as_str()), (Some("rec-1"), Some("sent-1")));

    // A valid new version swaps in without a restart.
    publish(store.path(), CURRENT_SENTIMENT, "sent-3", &sentiment_artifact("sent-3", 0.0));
    host.refresh().await;
    assert_eq!(post_texts(&host, &["好"]).await.1["model_id"], "sent-3");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sentiment_requests_get_json_4xx_and_never_crash() {
    let (store, state) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    publish(store.path(), CURRENT_SENTIMENT, "sent-1", &sentiment_artifact("sent-1", 0.0));
    let host = start(&store, &state).await;
    let megabyte = "好".repeat(350_000);
    let many = vec!["好"; 101];
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("invalid UTF-8", b"{\"texts\": [\"\xff\xfe\"]}".to_vec(), 400, "invalid_body"),
        ("not JSON", b"hello".to_vec(), 400, "invalid_body"),
        ("empty body", Vec::new(), 400, "invalid_body"),
        ("wrong shape", br#"{"texts": [1]}"#.to_vec(), 400, "invalid_body"),
        ("101 texts", serde_json::to_vec(&json!({ "texts": many })).unwrap(), 400, "invalid_parameter"),
        ("1 MB text", serde_json::to_vec(&json!({ "texts": [megabyte] })).unwrap(), 413, "text_too_long"),
        (
            "5 MB body",
            serde_json::to_vec(&json!({ "texts": ["x".repeat(5 << 20)] })).unwrap(),
            413,
            "payload_too_large",
        ),
    ];
    for (what, body, status, code) in cases {
        let (got, v) = send(&host, "POST", "/v1/sentiment", body).await;
        assert_eq!((got, v["error"]["code"].as_str()), (status, Some(code)), "{what}: {v}");
    }
    // Announced too large to hand to the guest at all: the host answers from the headers alone.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(host.local_addr()).await.unwrap();
        let head = format!(
            "POST /v1/sentiment HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n\r\n",
            host.local_addr(),
            knowedge_edge_host::MAX_REQUEST_BODY_BYTES + 1
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        let mut buf = vec![0u8; 4096];
        while !answer.contains("payload_too_large") {
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.unwrap().unwrap();
            if n == 0 {
                break;
            }
            answer.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("payload_too_large"), "{answer}");
    }
    assert_eq!(send(&host, "GET", "/v1/sentiment", Vec::new()).await.0, 405);
    // Odd but valid texts get defined answers.
    let (status, v) =
        post_texts(&host, &["", " ", "\u{200b}", "👍👍👍", "\u{1}\u{2}\u{3}", "mixed 中文 and English 很好", "!!!"])
            .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(labels(&v)[..3], ["neutral", "neutral", "neutral"]);
    assert_eq!(labels(&v)[4], "neutral");
    for r in v["results"].as_array().unwrap() {
        let s = r["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&s), "{r}");
    }
    // Still healthy afterwards.
    assert_eq!(post_texts(&host, &["好"]).await.0, 200);
    host.shutdown().await;
}

#[test]
fn wit_contract_declares_sentiment() {
    let mut resolve = wit_parser::Resolve::new();
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit");
    resolve.push_path(&wit).unwrap();
    let (_, scorer) = resolve.interfaces.iter().find(|(_, i)| i.name.as_deref() == Some("scorer")).unwrap();
    let names: Vec<&str> = scorer.functions.keys().map(String::as_str).collect();
    assert!(names.contains(&"[method]model.sentiment"), "{names:?}");
    let (_, types) = resolve.interfaces.iter().find(|(_, i)| i.name.as_deref() == Some("types")).unwrap();
    assert!(types.types.contains_key("sentiment-result") && types.types.contains_key("sentiment-label"));
}
