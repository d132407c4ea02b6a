//! The edge host serving the real compiled Spin component over HTTP.
//!
//! Needs `target/wasm32-wasip2/edge/knowedge_edge_spin.wasm`; build it with
//! `cargo xtask test` or
//! `cargo build -p knowedge-edge-spin --target wasm32-wasip2 --profile edge`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use knowedge_edge_host::{Access, EdgeHost, HostConfig, LIVE_DIR, ModelStatus, RunningHost};
use knowedge_format::artifact::{ArtifactBuilder, ModelKind, SigningKey};
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_format::store::{Channel, artifact_name};
use serde_json::Value;
use tempfile::TempDir;

const SEED: [u8; 32] = [7; 32];
const PSEUDONYM_KEY: &str = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";

fn wasm_path() -> PathBuf {
    knowedge_test_support::spin_wasm()
}

/// A popularity model over items a-d; alice owns `a`.
fn artifact(version: &str, popularity: [f32; 4]) -> Vec<u8> {
    let pseudonymizer = Pseudonymizer::from_hex(PSEUDONYM_KEY).unwrap();
    let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
    b.items(["a", "b", "c", "d"].map(String::from).to_vec()).users(vec![pseudonymizer.pseudonymize("alice")]);
    b.popularity(popularity.to_vec());
    b.seen(&[vec![0]]);
    b.manifest_mut().model_id = version.into();
    b.sign(&SigningKey::from_seed(SEED)).unwrap()
}

/// Publishes like the training function: artifact first, then the pointer.
fn publish(store: &Path, version: &str, bytes: &[u8]) {
    knowedge_test_support::publish(store, Channel::Recommender, version, bytes);
}

struct Fixture {
    store: TempDir,
    state: TempDir,
    host: RunningHost,
}

async fn start(poll_interval: Duration, prepare: impl FnOnce(&Path)) -> Fixture {
    start_with(poll_interval, None, prepare).await
}

async fn start_with(poll_interval: Duration, experiment: Option<String>, prepare: impl FnOnce(&Path)) -> Fixture {
    let store = TempDir::new().unwrap();
    let state = TempDir::new().unwrap();
    prepare(store.path());
    let host = EdgeHost::start(HostConfig {
        wasm: wasm_path(),
        models_dir: store.path().to_owned(),
        state_dir: state.path().to_owned(),
        public_key_hex: SigningKey::from_seed(SEED).public_key().to_hex(),
        pseudonym_key_hex: PSEUDONYM_KEY.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        poll_interval,
        experiment,
        ingest: None,
        access: Access {
            token_keys_hex: Some(knowedge_test_support::token_keys_hex()),
            token_audience: None,
            cors_origins: vec![SHOP.into()],
            publish_key: None,
        },
    })
    .await
    .unwrap();
    Fixture { store, state, host }
}

/// The origin browsers may call the test host from.
const SHOP: &str = "https://shop.example";

/// `GET path_and_query` over a fresh HTTP/1.1 connection, as the learner the
/// query names (with their token): status, content type and JSON body.
async fn get(host: &RunningHost, path_and_query: &str) -> (u16, String, Value) {
    let auth = knowedge_test_support::bearer_for_query(path_and_query);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let (status, headers, json) = request(host, "GET", path_and_query, &headers, Bytes::new()).await;
    let content_type = headers.get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, json)
}

/// Any request over a fresh HTTP/1.1 connection: status, headers and JSON body (`null` if empty).
async fn request(
    host: &RunningHost,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (u16, http::HeaderMap, Value) {
    let stream = tokio::net::TcpStream::connect(host.local_addr()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request =
        hyper::Request::builder().method(method).uri(path_and_query).header("host", host.local_addr().to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender.send_request(request.body(http_body_util::Full::new(body)).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{path_and_query}: body is not JSON ({e}): {}", String::from_utf8_lossy(&body)))
    };
    (status, headers, json)
}

fn items(answer: &Value) -> Vec<&str> {
    answer["items"].as_array().unwrap().iter().map(|i| i["item"].as_str().unwrap()).collect()
}

async fn model_id(host: &RunningHost) -> String {
    let (status, _, body) = get(host, "/v1/model").await;
    assert_eq!(status, 200, "{body}");
    body["model_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_verifies_and_swaps_models() {
    let f = start(Duration::from_millis(50), |store| publish(store, "v1", &artifact("v1", [4.0, 3.0, 2.0, 1.0]))).await;
    let host = &f.host;
    assert_eq!(host.status(), ModelStatus { serving: Some("v1".into()), refused: None, last_error: None });

    // Scores with the model; owned items are left out.
    let (status, content_type, body) = get(host, "/v1/recommend?user=alice&k=2").await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"), "{body}");
    assert_eq!(items(&body), ["b", "c"]);
    assert!(body.get("known_user").is_none(), "answers do not tell who is a customer: {body}");
    assert_eq!(items(&get(host, "/v1/recommend?user=bob&k=2").await.2), ["a", "b"]);
    assert_eq!(model_id(host).await, "v1");

    // A tampered artifact is refused; the old model keeps answering.
    let mut tampered = artifact("v2", [1.0, 2.0, 3.0, 4.0]);
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    publish(f.store.path(), "v2", &tampered);
    host.refresh().await;
    let status = host.status();
    assert_eq!(status.serving.as_deref(), Some("v1"));
    assert_eq!(status.refused.as_deref(), Some("v2"));
    assert!(status.last_error.as_deref().unwrap().contains("signature"), "{status:?}");
    assert_eq!(model_id(host).await, "v1");

    // So is an artifact of an unknown format version.
    let mut future_format = artifact("v3", [1.0, 2.0, 3.0, 4.0]);
    future_format[8..12].copy_from_slice(&3u32.to_le_bytes());
    publish(f.store.path(), "v3", &future_format);
    host.refresh().await;
    let status = host.status();
    assert_eq!((status.serving.as_deref(), status.refused.as_deref()), (Some("v1"), Some("v3")));
    assert!(status.last_error.as_deref().unwrap().contains("format version 3"), "{status:?}");
    assert_eq!(model_id(host).await, "v1");
    let (code, _, body) = get(host, "/_host/status").await;
    assert_eq!((code, body["refused"].as_str()), (200, Some("v3")));

    // A valid new version is picked up by the watcher, without a restart.
    publish(f.store.path(), "v4", &artifact("v4", [1.0, 2.0, 3.0, 4.0]));
    let since = Instant::now();
    while host.status().serving.as_deref() != Some("v4") {
        assert!(since.elapsed() < Duration::from_secs(10), "v4 was not swapped in: {:?}", host.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(model_id(host).await, "v4");
    assert_eq!(items(&get(host, "/v1/recommend?user=alice&k=2").await.2), ["d", "c"]);
    assert_eq!(
        std::fs::read(f.state.path().join(LIVE_DIR).join("v4.kwm")).unwrap(),
        artifact("v4", [1.0, 2.0, 3.0, 4.0])
    );
    // The live directory holds the pointer and the artifact served, nothing refused or replaced.
    let live = f.state.path().join(LIVE_DIR);
    assert_eq!(std::fs::read_to_string(live.join("current")).unwrap(), "v4");
    let mut names: Vec<String> =
        std::fs::read_dir(&live).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["current", "v4.kwm"]);

    // Bad requests get JSON 4xx answers from the module.
    for (path, expected) in [
        ("/v1/recommend?user=alice&k=1000000000", 400),
        ("/v1/recommend?k=0", 400),
        ("/v1/similar?item=zzz", 404),
        ("/nowhere", 404),
    ] {
        let (status, content_type, body) = get(host, path).await;
        assert_eq!((status, content_type.as_str()), (expected, "application/json"), "{path}: {body}");
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }

    f.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_without_a_model_and_survives_a_trapping_guest() {
    let f = start(Duration::from_secs(3600), |_| {}).await;
    let host = &f.host;
    assert_eq!(host.status(), ModelStatus::default());
    let (status, _, body) = get(host, "/v1/recommend?user=alice").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "no_model");

    // A live model larger than the guest's memory limit makes the guest trap
    // (sparse file: no disk space used).
    let live_dir = f.state.path().join(LIVE_DIR);
    let live = live_dir.join("big.kwm");
    std::fs::File::create(&live).unwrap().set_len(knowedge_edge_host::MEMORY_LIMIT_BYTES as u64 + (1 << 20)).unwrap();
    std::fs::write(live_dir.join("current"), "big").unwrap();
    let (status, content_type, body) = get(host, "/v1/model").await;
    assert_eq!((status, content_type.as_str()), (500, "application/json"), "{body}");
    assert_eq!(body["error"]["code"], "guest_failed");

    // The host is still up, and so is the next guest.
    std::fs::remove_file(&live).unwrap();
    std::fs::remove_file(live_dir.join("current")).unwrap();
    assert_eq!(get(host, "/_host/status").await.0, 200);
    assert_eq!(get(host, "/healthz").await.0, 200);
    assert_eq!(get(host, "/v1/model").await.0, 503);

    f.host.shutdown().await;
}

#[test]
fn component_exports_the_wasi_http_handler_and_imports_spin_variables_and_key_value() {
    // Only the types are looked at: skip optimisation to compile faster.
    let mut config = wasmtime::Config::new();
    config.cranelift_opt_level(wasmtime::OptLevel::None);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let component = wasmtime::component::Component::from_file(&engine, wasm_path()).unwrap();
    let ty = component.component_type();
    let exports: Vec<&str> = ty.exports(&engine).map(|(name, _)| name).collect();
    let imports: Vec<&str> = ty.imports(&engine).map(|(name, _)| name).collect();
    eprintln!("exports: {exports:?}\nimports: {imports:?}");
    assert_eq!(exports, ["wasi:http/incoming-handler@0.2.0"]);
    // WASI, Spin's application variables (the keys are Spin variables) and key-value store (the
    // models); nothing else of Spin's.
    let spin = ["fermyon:spin/variables@2.0.0", "fermyon:spin/key-value@2.0.0"];
    assert!(imports.iter().all(|i| i.starts_with("wasi:") || spin.contains(i)), "{imports:?}");
    assert!(spin.iter().all(|s| imports.contains(s)), "{imports:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiments_route_learners_to_their_variants_model() {
    let experiment = r#"{"name": "ranker", "variants": [
        {"name": "control", "weight": 1, "model": "current"},
        {"name": "reverse", "weight": 1, "model": "v-reverse"}]}"#;
    let f = start_with(Duration::from_secs(3600), Some(experiment.to_owned()), |store| {
        // Published, not current: only the experiment's variant names it.
        std::fs::write(store.join(artifact_name("v-reverse")), artifact("v-reverse", [1.0, 2.0, 3.0, 4.0])).unwrap();
        publish(store, "v1", &artifact("v1", [4.0, 3.0, 2.0, 1.0]));
    })
    .await;
    let e = knowedge_edge::experiment::Experiment::from_json(experiment).unwrap();
    let p = Pseudonymizer::from_hex(PSEUDONYM_KEY).unwrap();
    let mut ids = std::collections::BTreeSet::new();
    let mut per_variant = std::collections::BTreeMap::<String, usize>::new();
    for u in 0..30 {
        let user = format!("learner-{u}");
        let (status, _, body) = get(&f.host, &format!("/v1/recommend?user={user}&k=2")).await;
        assert_eq!(status, 200, "{body}");
        let variant = e.assign(&p.pseudonymize(&user));
        assert_eq!(body["experiment"], "ranker");
        assert_eq!(body["variant"], variant.name.as_str(), "{user}");
        let (model, top) = if variant.name == "reverse" { ("v-reverse", ["d", "c"]) } else { ("v1", ["a", "b"]) };
        assert_eq!(body["model_id"], model, "{user}");
        assert_eq!(items(&body), top, "{user}");
        // Every answer has its own id, drawn by the component.
        assert!(ids.insert(body["recommendation_id"].as_str().unwrap().to_owned()), "{body}");
        *per_variant.entry(variant.name.clone()).or_default() += 1;
    }
    assert_eq!(per_variant.len(), 2, "{per_variant:?}");
    // The same learner keeps the variant.
    let again = get(&f.host, "/v1/recommend?user=learner-3&k=2").await.2;
    assert_eq!(again["variant"], e.assign(&p.pseudonymize("learner-3")).name.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_experiment_is_refused_at_start() {
    let (store, state) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let started = EdgeHost::start(HostConfig {
        wasm: wasm_path(),
        models_dir: store.path().to_owned(),
        state_dir: state.path().to_owned(),
        public_key_hex: SigningKey::from_seed(SEED).public_key().to_hex(),
        pseudonym_key_hex: PSEUDONYM_KEY.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        poll_interval: Duration::from_secs(1),
        experiment: Some(r#"{"name": "x", "variants": []}"#.into()),
        ingest: None,
        access: Access::default(),
    })
    .await;
    let Err(err) = started else { panic!("an experiment without variants was accepted") };
    let message = knowedge_format::error::chain(&err);
    assert!(message.contains("variants") && message.starts_with("the A/B experiment"), "{message}");
}

/// A popularity model over items a-d created `minute` minutes into 2026-12-01 12:00.
fn artifact_at(version: &str, minute: u32) -> Vec<u8> {
    use chrono::TimeZone;
    let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
    b.items(["a", "b", "c", "d"].map(String::from).to_vec());
    b.popularity(vec![4.0, 3.0, 2.0, 1.0]);
    b.manifest_mut().model_id = version.into();
    b.manifest_mut().created_at = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 12, minute, 0).unwrap();
    b.sign(&SigningKey::from_seed(SEED)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_need_their_own_token_and_browsers_an_allowed_origin() {
    let f = start(Duration::from_secs(3600), |store| publish(store, "v1", &artifact("v1", [4.0, 3.0, 2.0, 1.0]))).await;
    let host = &f.host;
    let ask = |auth: Option<String>| async move {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let (status, _, body) = request(host, "GET", "/v1/recommend?user=alice&k=2", &headers, Bytes::new()).await;
        (status, body["error"]["code"].as_str().unwrap_or_default().to_owned())
    };
    use knowedge_edge::token::DEFAULT_AUDIENCE;
    use knowedge_test_support::{TOKEN_SEED, token, token_issued};
    let minutes = chrono::Duration::minutes;
    assert_eq!(ask(None).await, (401, "token_required".into()));
    let expired = token_issued(&TOKEN_SEED, "alice", DEFAULT_AUDIENCE, minutes(15), 60);
    assert_eq!(ask(Some(format!("Bearer {expired}"))).await, (401, "token_expired".into()));
    let forged = token_issued(&[0x99; 32], "alice", DEFAULT_AUDIENCE, minutes(15), 0);
    assert_eq!(ask(Some(format!("Bearer {forged}"))).await, (401, "token_invalid".into()));
    let foreign = token_issued(&TOKEN_SEED, "alice", "another-app", minutes(15), 0);
    assert_eq!(ask(Some(format!("Bearer {foreign}"))).await, (401, "token_wrong_audience".into()));
    assert_eq!(ask(Some(format!("Bearer {}", token("bob")))).await, (403, "user_mismatch".into()));
    assert_eq!(ask(Some(format!("Bearer {}", token("alice")))).await, (200, String::new()));
    // Anonymous answers need no token and name nobody.
    let (status, _, body) = request(host, "GET", "/v1/recommend?k=2", &[], Bytes::new()).await;
    assert_eq!((status, &body["user"]), (200, &Value::Null), "{body}");
    assert_eq!(items(&body), ["a", "b"]);

    // CORS: a preflight from the shop is allowed, from elsewhere refused; answers carry the header.
    let preflight = |origin: &'static str| async move {
        let headers = [("origin", origin), ("access-control-request-method", "GET")];
        request(host, "OPTIONS", "/v1/recommend?k=2", &headers, Bytes::new()).await
    };
    let (status, headers, _) = preflight(SHOP).await;
    assert_eq!(status, 204);
    assert_eq!(headers["access-control-allow-origin"], SHOP);
    assert!(headers["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    let (status, headers, body) = preflight("https://evil.example").await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("origin_not_allowed")));
    assert!(headers.get("access-control-allow-origin").is_none());
    let (_, headers, _) = request(host, "GET", "/v1/recommend?k=2", &[("origin", SHOP)], Bytes::new()).await;
    assert_eq!(headers["access-control-allow-origin"], SHOP);
    let (_, headers, _) =
        request(host, "GET", "/v1/recommend?k=2", &[("origin", "https://evil.example")], Bytes::new()).await;
    assert!(headers.get("access-control-allow-origin").is_none());
    f.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_cannot_roll_the_edge_back_but_a_signed_rollback_can() {
    let f = start(Duration::from_secs(3600), |store| {
        std::fs::write(store.join("v1.kwm"), artifact_at("v1", 1)).unwrap();
        publish(store, "v2", &artifact_at("v2", 2));
    })
    .await;
    let host = &f.host;
    assert_eq!(model_id(host).await, "v2");
    // `current` names an older, validly signed version: refused, v2 keeps answering.
    std::fs::write(f.store.path().join("current"), "v1").unwrap();
    host.refresh().await;
    assert_eq!((host.status().serving.as_deref(), host.status().refused.as_deref()), (Some("v2"), Some("v1")));
    assert!(host.status().last_error.unwrap().contains("before v2"));
    assert_eq!(model_id(host).await, "v2");
    // Old bytes under a new name: refused.
    publish(f.store.path(), "v3", &artifact_at("v1", 1));
    host.refresh().await;
    assert_eq!(host.status().refused.as_deref(), Some("v3"));
    assert!(host.status().last_error.unwrap().contains("not version v3"));
    assert_eq!(model_id(host).await, "v2");
    // A signed rollback (the old model re-signed under a new name and time) is served.
    let now = chrono::Utc::now();
    let rollback = knowedge_format::artifact::reissue(
        &artifact_at("v1", 1),
        &SigningKey::from_seed(SEED).public_key(),
        &SigningKey::from_seed(SEED),
        "v1-rollback",
        now,
    )
    .unwrap();
    publish(f.store.path(), "v1-rollback", &rollback);
    host.refresh().await;
    assert_eq!(model_id(host).await, "v1-rollback");
    f.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_bodies_are_capped_like_announced_ones() {
    let f = start(Duration::from_secs(3600), |store| publish(store, "v1", &artifact("v1", [4.0, 3.0, 2.0, 1.0]))).await;
    let stream = tokio::net::TcpStream::connect(f.host.local_addr()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    // A streamed body without a length: hyper sends it chunked.
    let chunk = Bytes::from(vec![b' '; 1 << 20]);
    let frames = (0..(knowedge_edge_host::MAX_REQUEST_BODY_BYTES >> 20) + 2)
        .map(move |_| Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(chunk.clone())));
    let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
    let request = hyper::Request::post("/v1/rank")
        .header("host", f.host.local_addr().to_string())
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 413);
    f.host.shutdown().await;
}
