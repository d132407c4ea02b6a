//! Models published into the Spin component's key-value store: the local
//! host serving the real compiled component, which keeps its models in the
//! Spin key-value store `models` (the host's live directory) and takes new
//! ones through `PUT /v1/admin/models/<key>`.
//!
//! Needs `target/wasm32-wasip2/edge/knowedge_edge_spin.wasm`; build it with
//! `cargo xtask test` or
//! `cargo build -p knowedge-edge-spin --target wasm32-wasip2 --profile edge`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use chrono::TimeZone;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use knowedge_edge_host::{Access, EdgeHost, HostConfig, LIVE_DIR, RunningHost};
use knowedge_format::artifact::{ArtifactBuilder, ModelKind, SigningKey, TensorData};
use knowedge_format::store::Channel;
use serde_json::Value;
use tempfile::TempDir;

const SEED: [u8; 32] = [7; 32];
const PSEUDONYM_KEY: &str = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";
const PUBLISH_KEY: &str = "publish-key-for-tests";

/// A popularity model over items a-d, created `minute` minutes into 2026-12-01 12:00.
fn artifact(version: &str, popularity: [f32; 4], minute: u32) -> Vec<u8> {
    let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
    b.items(["a", "b", "c", "d"].map(String::from).to_vec()).popularity(popularity.to_vec());
    b.manifest_mut().model_id = version.into();
    b.manifest_mut().created_at = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 12, minute, 0).unwrap();
    b.sign(&SigningKey::from_seed(SEED)).unwrap()
}

async fn start(store: &Path, state: &Path, publish_key: Option<&str>) -> RunningHost {
    EdgeHost::start(HostConfig {
        wasm: knowedge_test_support::spin_wasm(),
        models_dir: store.to_owned(),
        state_dir: state.to_owned(),
        public_key_hex: SigningKey::from_seed(SEED).public_key().to_hex(),
        pseudonym_key_hex: PSEUDONYM_KEY.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        poll_interval: Duration::from_secs(3600),
        experiment: None,
        ingest: None,
        access: Access { publish_key: publish_key.map(str::to_owned), ..Default::default() },
    })
    .await
    .unwrap()
}

/// One request over a fresh HTTP/1.1 connection: status and JSON body.
async fn request(host: &RunningHost, method: &str, path: &str, auth: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let stream = tokio::net::TcpStream::connect(host.local_addr()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::builder().method(method).uri(path).header("host", host.local_addr().to_string());
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = sender.send_request(request.body(http_body_util::Full::new(Bytes::from(body))).unwrap()).await;
    let response = response.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{path}: body is not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, json)
}

/// `PUT /v1/admin/models/<key>` with the publish key: status and error code (empty on success).
async fn put(host: &RunningHost, key: &str, body: &[u8]) -> (u16, String) {
    put_as(host, Some(&format!("Bearer {PUBLISH_KEY}")), key, body).await
}

async fn put_as(host: &RunningHost, auth: Option<&str>, key: &str, body: &[u8]) -> (u16, String) {
    let (status, json) = request(host, "PUT", &format!("/v1/admin/models/{key}"), auth, body.to_vec()).await;
    (status, json["error"]["code"].as_str().unwrap_or_default().to_owned())
}

/// The anonymous top-2 and the model that answered.
async fn recommend(host: &RunningHost) -> (String, Vec<String>) {
    let (status, body) = request(host, "GET", "/v1/recommend?k=2", None, Vec::new()).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap().iter().map(|i| i["item"].as_str().unwrap().to_owned()).collect();
    (body["model_id"].as_str().unwrap().to_owned(), items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_model_is_served_by_the_next_request_without_a_restart() {
    let (store, state) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let host = start(store.path(), state.path(), Some(PUBLISH_KEY)).await;
    // Nothing published yet, nothing in the model store either.
    let (status, body) = request(&host, "GET", "/v1/recommend?k=2", None, Vec::new()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("no_model")), "{body}");

    // The artifact, then the pointer, through the component's publish route.
    assert_eq!(put(&host, "v1.kwm", &artifact("v1", [4.0, 3.0, 2.0, 1.0], 1)).await, (200, String::new()));
    assert_eq!(put(&host, "current", b"v1").await, (200, String::new()));
    assert_eq!(recommend(&host).await, ("v1".to_owned(), vec!["a".to_owned(), "b".to_owned()]));

    // A newer version replaces it at the next request (the same warm instances).
    assert_eq!(put(&host, "v2.kwm", &artifact("v2", [1.0, 2.0, 3.0, 4.0], 2)).await, (200, String::new()));
    assert_eq!(recommend(&host).await.0, "v1", "the artifact alone changes nothing");
    assert_eq!(put(&host, "current", b"v2\n").await, (200, String::new()));
    assert_eq!(recommend(&host).await, ("v2".to_owned(), vec!["d".to_owned(), "c".to_owned()]));
    // The store is the host's live directory; the watcher takes the published version as served.
    let live = state.path().join(LIVE_DIR);
    assert_eq!(std::fs::read_to_string(live.join("current")).unwrap(), "v2");
    host.refresh().await;
    assert_eq!(host.status().serving.as_deref(), Some("v2"));

    // Writing the key-value store's backing directly (as another writer of the store would) swaps too.
    std::fs::write(live.join("v3.kwm"), artifact("v3", [1.0, 4.0, 3.0, 2.0], 3)).unwrap();
    std::fs::write(live.join("current"), "v3").unwrap();
    assert_eq!(recommend(&host).await, ("v3".to_owned(), vec!["b".to_owned(), "c".to_owned()]));

    // Artifacts larger than the API's body limit pass (the route takes tens of MB).
    let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
    b.items(vec!["a".into()]).popularity(vec![1.0]);
    let padding = usize::try_from(knowedge_edge_host::MAX_REQUEST_BODY_BYTES).unwrap() + (1 << 20);
    b.tensor("padding", vec![padding], TensorData::U8(vec![0; padding]));
    b.manifest_mut().model_id = "big".into();
    let big = b.sign(&SigningKey::from_seed(SEED)).unwrap();
    assert_eq!(put(&host, "big.kwm", &big).await, (200, String::new()));
    assert_eq!(std::fs::read(live.join("big.kwm")).unwrap().len(), big.len());
    host.shutdown().await;

    // After a restart the published version is served and sets the floor: the model store's
    // older `current` is refused. Without a publish key the route is off.
    knowedge_test_support::publish(store.path(), Channel::Recommender, "v0", &artifact("v0", [4.0, 3.0, 2.0, 1.0], 0));
    let host = start(store.path(), state.path(), None).await;
    assert_eq!(recommend(&host).await.0, "v3");
    let status = host.status();
    assert_eq!((status.serving.as_deref(), status.refused.as_deref()), (Some("v3"), Some("v0")), "{status:?}");
    assert_eq!(put(&host, "current", b"v2").await, (403, "publishing_disabled".to_owned()));
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_refuses_wrong_keys_bad_artifacts_and_pointers_that_go_back() {
    let (store, state) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let host = start(store.path(), state.path(), Some(PUBLISH_KEY)).await;
    let v1 = artifact("v1", [4.0, 3.0, 2.0, 1.0], 1);

    // Only the publish key may publish.
    assert_eq!(put_as(&host, None, "v1.kwm", &v1).await, (401, "publish_key_required".to_owned()));
    assert_eq!(put_as(&host, Some("Bearer not-the-key"), "v1.kwm", &v1).await, (401, "publish_key_invalid".to_owned()));
    // Pointers can be read back with the key (publishers skip what an edge has); artifacts cannot.
    let (status, body) = request(&host, "GET", "/v1/admin/models/current", None, Vec::new()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("publish_key_required")));
    let key = format!("Bearer {PUBLISH_KEY}");
    let (status, body) = request(&host, "GET", "/v1/admin/models/current", Some(&key), Vec::new()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_set")));
    let (status, body) = request(&host, "GET", "/v1/admin/models/v1.kwm", Some(&key), Vec::new()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (405, Some("method_not_allowed")));

    // Artifacts must verify, as the version their key names; only model objects are taken.
    let tampered = knowedge_test_support::tampered(v1.clone());
    assert_eq!(put(&host, "v1.kwm", &tampered).await, (400, "artifact_invalid".to_owned()));
    assert_eq!(put(&host, "v9.kwm", &v1).await, (400, "artifact_invalid".to_owned()));
    let foreign = {
        let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
        b.items(vec!["a".into()]).popularity(vec![1.0]);
        b.manifest_mut().model_id = "v1".into();
        b.sign(&SigningKey::from_seed([8; 32])).unwrap()
    };
    assert_eq!(put(&host, "v1.kwm", &foreign).await, (400, "artifact_invalid".to_owned()));
    assert_eq!(put(&host, "notes.txt", b"hello").await, (400, "unknown_object".to_owned()));
    assert_eq!(put(&host, "..%2Fcurrent", b"v1").await, (400, "unknown_object".to_owned()));

    // A pointer needs its version stored first.
    assert_eq!(put(&host, "current", b"v1").await, (409, "version_missing".to_owned()));
    assert_eq!(put(&host, "current", b"../../etc/passwd").await, (400, "pointer_invalid".to_owned()));
    let live = state.path().join(LIVE_DIR);
    let mut names: Vec<String> =
        std::fs::read_dir(&live).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert!(names.is_empty(), "nothing refused was stored: {names:?}");

    // Forward is fine; back to an older version is not, and the newer one keeps answering.
    assert_eq!(put(&host, "v1.kwm", &v1).await, (200, String::new()));
    assert_eq!(put(&host, "v2.kwm", &artifact("v2", [1.0, 2.0, 3.0, 4.0], 2)).await, (200, String::new()));
    assert_eq!(put(&host, "current", b"v2").await, (200, String::new()));
    assert_eq!(put(&host, "current", b"v1").await, (409, "version_older".to_owned()));
    assert_eq!(recommend(&host).await.0, "v2");
    // A version is not replaced by other bytes; the same bytes again are fine (a retried push).
    assert_eq!(
        put(&host, "v1.kwm", &artifact("v1", [1.0, 1.0, 1.0, 1.0], 5)).await,
        (409, "version_exists".to_owned())
    );
    assert_eq!(put(&host, "v1.kwm", &v1).await, (200, String::new()));
    // A sentiment pointer takes sentiment models only.
    assert_eq!(put(&host, "current-sentiment", b"v2").await, (409, "version_invalid".to_owned()));

    // A deliberate rollback is a re-signed, newer version.
    let key = SigningKey::from_seed(SEED);
    let rollback = knowedge_format::artifact::reissue(&v1, &key.public_key(), &key, "v1-rollback", chrono::Utc::now());
    assert_eq!(put(&host, "v1-rollback.kwm", &rollback.unwrap()).await, (200, String::new()));
    assert_eq!(put(&host, "current", b"v1-rollback").await, (200, String::new()));
    assert_eq!(recommend(&host).await, ("v1-rollback".to_owned(), vec!["a".to_owned(), "b".to_owned()]));
    host.shutdown().await;
}

/// What the training and compaction functions do after a promotion
/// (`knowedge_lake::publish::EdgeTargets` with a Spin target), against the
/// real component: the model store's current model reaches the Spin
/// key-value store, artifact first, and is served; a second publish finds
/// the edge in step (a `GET` of the pointer) and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_publisher_brings_a_promoted_model_to_the_spin_component() {
    use knowedge_lake::deploy::Settings;
    use knowedge_lake::publish::{self, EdgeTargets};

    let (store, state, promoted) = (TempDir::new().unwrap(), TempDir::new().unwrap(), TempDir::new().unwrap());
    let host = start(store.path(), state.path(), Some(PUBLISH_KEY)).await;
    let models = knowedge_lake::ModelStore::open(promoted.path().to_str().unwrap()).unwrap();
    models.publish(Channel::Recommender, "v7", artifact("v7", [1.0, 4.0, 3.0, 2.0], 7)).await.unwrap();

    let targets = |key: &str| {
        let url = format!("http://{}", host.local_addr());
        let settings =
            Settings::from_pairs(&publish::SETTINGS, &[(publish::SPIN_URL_VAR, &url), (publish::SPIN_KEY_VAR, key)]);
        EdgeTargets::from_settings(&settings).unwrap().with_backoff(Duration::from_millis(1))
    };
    let err = targets("not-the-publish-key").publish(&models).await.unwrap_err();
    assert!(!err.is_retryable(), "a refused key is not retried: {err}");
    assert!(err.to_string().contains("401"), "{err}");

    let report = targets(PUBLISH_KEY).publish(&models).await.unwrap();
    assert_eq!(report.published, [("spin".to_owned(), "current".to_owned(), "v7".to_owned())]);
    assert_eq!(recommend(&host).await, ("v7".to_owned(), vec!["b".to_owned(), "c".to_owned()]));

    let (status, body) =
        request(&host, "GET", "/v1/admin/models/current", Some(&format!("Bearer {PUBLISH_KEY}")), Vec::new()).await;
    assert_eq!((status, body["version"].as_str()), (200, Some("v7")), "{body}");
    let again = targets(PUBLISH_KEY).publish(&models).await.unwrap();
    assert!(again.published.is_empty() && again.unchanged.len() == 1, "{again:?}");
    host.shutdown().await;
}
