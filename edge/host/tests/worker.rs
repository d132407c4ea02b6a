//! The real Cloudflare Worker in workerd (`wrangler dev --local`, offline)
//! against the real Spin component in the project's wasmtime host and the
//! native scoring core: same model, same requests, same answers.
//!
//! Needs the built Worker (`edge/worker/build/`) and wrangler
//! (`edge/worker/node_modules/`), and the Spin component
//! (`target/wasm32-wasip2/edge/knowedge_edge_spin.wasm`). `cargo xtask test`
//! installs and builds all of them; `cargo xtask worker` builds the Worker
//! (and installs its tools when missing).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use knowedge_edge_host::{EdgeHost, HostConfig, RunningHost};
use knowedge_format::artifact::{ArtifactBuilder, ModelKind, SigningKey};
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_format::store::{CURRENT, CURRENT_SENTIMENT, artifact_name};
use knowedge_scoring::model::{Filters, Model};
use knowedge_scoring::sentiment::{self, Featurizer, SentimentModel};
use serde_json::{Value, json};
use tempfile::TempDir;

const SEED: [u8; 32] = [7; 32];
const PSEUDONYM_KEY: &str = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";
const ITEMS: usize = 300;
const USERS: usize = 40;
const DIMS: usize = 16;
const CATEGORIES: [&str; 6] = ["python", "finance", "writing", "design", "language", "music"];
/// How long wrangler may take to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn spin_wasm() -> PathBuf {
    knowedge_test_support::spin_wasm()
}

/// The wrangler binary and the Worker's entry module, or a clear failure.
fn worker_tools() -> (PathBuf, PathBuf) {
    let dir = root().join("edge/worker");
    let wrangler = dir.join("node_modules/.bin/wrangler");
    assert!(
        wrangler.is_file(),
        "{} is missing: run `cargo xtask test` or `cargo xtask worker` (they run `npm ci` in edge/worker)",
        wrangler.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "`node` is needed to run wrangler (Node ≥ 20.3): {node:?}"
    );
    let main = dir.join("build/worker/shim.mjs");
    assert!(
        main.is_file() && dir.join("build/index_bg.wasm").is_file(),
        "the Worker is not built ({} is missing): run `cargo xtask worker` (worker-build + wasm-bindgen-cli 0.2.130)",
        main.display()
    );
    (wrangler, main.canonicalize().unwrap())
}

/// Deterministic pseudo-random numbers in [-1, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn learner(u: usize) -> String {
    format!("learner-{u:04}")
}

/// A matrix factorisation model with a catalogue (categories, prices with
/// free and unknown ones) and owned items; `salt` tells versions apart.
fn mf_artifact(version: &str, salt: u64) -> Vec<u8> {
    let pseudonymizer = Pseudonymizer::from_hex(PSEUDONYM_KEY).unwrap();
    let mut rng = Lcg(salt);
    let items: Vec<String> = (0..ITEMS).map(|i| format!("{}-item-{i:03}", CATEGORIES[i % CATEGORIES.len()])).collect();
    let users: Vec<String> = (0..USERS).map(|u| pseudonymizer.pseudonymize(&learner(u))).collect();
    let item_factors: Vec<f32> = (0..ITEMS * DIMS).map(|_| rng.next()).collect();
    let user_factors: Vec<f32> = (0..USERS * DIMS).map(|_| rng.next()).collect();
    let popularity: Vec<f32> = (0..ITEMS).map(|_| rng.next() + 1.0).collect();
    let category: Vec<u32> = (0..ITEMS).map(|i| (i % CATEGORIES.len()) as u32).collect();
    let price: Vec<f32> = (0..ITEMS)
        .map(|i| match i % 7 {
            0 => 0.0,
            1 => f32::NAN,
            r => (r * 30) as f32 - 0.5,
        })
        .collect();
    let seen: Vec<Vec<u32>> =
        (0..USERS).map(|u| (0..5).map(|j| ((u * 13 + j * 31) % ITEMS) as u32).collect()).collect();
    let mut b = ArtifactBuilder::new(ModelKind::Mf, DIMS);
    b.items(items).users(users).popularity(popularity).seen(&seen);
    b.catalogue(CATEGORIES.map(String::from).to_vec(), category, price);
    b.factors(user_factors, item_factors);
    b.manifest_mut().model_id = version.into();
    // Later versions are newer (the edge refuses to go back in time).
    b.manifest_mut().created_at = chrono::DateTime::from_timestamp(1_800_000_000 + salt as i64 * 60, 0).unwrap();
    b.sign(&SigningKey::from_seed(SEED)).unwrap()
}

fn sentiment_artifact(version: &str) -> Vec<u8> {
    let mut f = Featurizer::new(12);
    let mut w = vec![0.0; 1 << 12];
    for &i in f.features("好 喜欢 good") {
        w[i as usize] = 3.0;
    }
    for &i in f.features("差 失望 bad") {
        w[i as usize] = -3.0;
    }
    sentiment::builder(w, 0.1, version).sign(&SigningKey::from_seed(SEED)).unwrap()
}

use knowedge_test_support::{free_port, tampered};

/// `wrangler --config wrangler.toml ...` in `dir`, quiet and offline-friendly.
fn wrangler_command(dir: &Path, wrangler: &Path) -> Command {
    let mut cmd = Command::new(wrangler);
    cmd.current_dir(dir)
        .args(["--config", "wrangler.toml"])
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_LOG_PATH", dir.join("wrangler-logs"))
        .env("NO_COLOR", "1");
    cmd
}

/// Writes `entries`, in order, to the local KV namespace `MODELS` of the
/// Worker configured in `dir`, each with `wrangler kv key put --local --path`
/// (`kv bulk put --local` does not keep base64 values binary).
async fn put(dir: &Path, wrangler: &Path, entries: &[(&str, Vec<u8>)]) {
    for (key, value) in entries {
        let file = dir.join("value.bin");
        std::fs::write(&file, value).unwrap();
        let mut cmd = wrangler_command(dir, wrangler);
        cmd.args(["kv", "key", "put", "--local", "--binding", "MODELS", key, "--path"]).arg(&file);
        let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap();
        assert!(
            out.status.success(),
            "wrangler kv key put {key} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `wrangler dev --local` serving the built Worker, with its own KV store,
/// secrets and log file in a temporary directory; stopped (with workerd) on drop.
struct WorkerDev {
    dir: TempDir,
    wrangler: PathBuf,
    child: Child,
    port: u16,
}

impl WorkerDev {
    /// Writes a config next to the secrets, seeds KV with `entries` and starts the server.
    async fn start(entries: &[(&str, Vec<u8>)]) -> Self {
        Self::start_with_vars(entries, "").await
    }

    /// [`WorkerDev::start`] with more `NAME=value` lines for `.dev.vars`.
    async fn start_with_vars(entries: &[(&str, Vec<u8>)], vars: &str) -> Self {
        let (wrangler, main) = worker_tools();
        let mut dir = TempDir::new().unwrap();
        // The checked-in wrangler.toml, minus its [build] step (the Worker is built already).
        std::fs::write(
            dir.path().join("wrangler.toml"),
            format!(
                "name = \"knowedge-edge-test\"\nmain = {:?}\ncompatibility_date = \"2026-04-26\"\n\n\
                 [[kv_namespaces]]\nbinding = \"MODELS\"\nid = \"00000000000000000000000000000000\"\n",
                main.display().to_string()
            ),
        )
        .unwrap();
        // Secrets, as `wrangler secret put` gives them in production.
        let public_key = SigningKey::from_seed(SEED).public_key().to_hex();
        std::fs::write(
            dir.path().join(".dev.vars"),
            format!(
                "KNOWEDGE_SIGNING_PUBLIC_KEY={public_key}\nKNOWEDGE_PSEUDONYM_KEY={PSEUDONYM_KEY}\n\
                 KNOWEDGE_TOKEN_KEYS={}\nKNOWEDGE_CORS_ORIGINS={SHOP}\n{vars}",
                knowedge_test_support::token_keys_hex()
            ),
        )
        .unwrap();
        put(dir.path(), &wrangler, entries).await;
        // The ports are free when picked but not held until wrangler binds
        // them; another process (workerd, a parallel test) may take one in
        // between, so a server that exits before answering is started again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (port, inspector_port) = (free_port(), free_port());
            let log = std::fs::File::create(dir.path().join("dev.log")).unwrap();
            let mut cmd = wrangler_command(dir.path(), &wrangler);
            cmd.args(["dev", "--local", "--ip", "127.0.0.1", "--show-interactive-dev-session=false"])
                .args(["--port", &port.to_string(), "--inspector-port", &inspector_port.to_string()])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            // Its own process group, so that stopping it stops workerd too.
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", wrangler.display()));
            let mut dev = Self { dir, wrangler: wrangler.clone(), child, port };
            match dev.wait_ready().await {
                Ok(()) => return dev,
                Err(status) if attempt < 3 => {
                    eprintln!("wrangler dev exited ({status}) before answering; starting it again:\n{}", dev.log());
                    dir = std::mem::replace(&mut dev.dir, TempDir::new().unwrap());
                }
                Err(status) => panic!("wrangler dev exited ({status}) before answering:\n{}", dev.log()),
            }
        }
    }

    /// Writes `entries` to the Worker's KV namespace while it runs.
    async fn put(&self, entries: &[(&str, Vec<u8>)]) {
        put(self.dir.path(), &self.wrangler, entries).await;
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dev.log")).unwrap_or_default()
    }

    /// Waits until the server answers `/healthz`; the exit status if it stops first.
    async fn wait_ready(&mut self) -> Result<(), std::process::ExitStatus> {
        let since = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(status);
            }
            if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                drop(stream);
                if let Ok((200, _)) = tokio::time::timeout(Duration::from_secs(10), self.get("/healthz")).await {
                    eprintln!("wrangler dev ready in {:.1}s", since.elapsed().as_secs_f32());
                    return Ok(());
                }
            }
            assert!(
                since.elapsed() < READY_TIMEOUT,
                "wrangler dev did not answer in {READY_TIMEOUT:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn get(&self, path_and_query: &str) -> (u16, Value) {
        self.send("GET", path_and_query, Vec::new()).await
    }

    /// A request with exactly these headers (no token added): status, headers and JSON body.
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (u16, http::HeaderMap, Value) {
        let addr = format!("127.0.0.1:{}", self.port);
        tokio::time::timeout(REQUEST_TIMEOUT, send_with(&addr, method, path, headers, body))
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: no answer in {REQUEST_TIMEOUT:?}; log:\n{}", self.log()))
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        self.send("POST", path, body).await
    }

    /// Like [`send`], with the Worker's log in the failure message.
    async fn send(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
        let addr = format!("127.0.0.1:{}", self.port);
        let short: String = path.chars().take(80).collect();
        tokio::time::timeout(REQUEST_TIMEOUT, send_unbounded(&addr, method, path, body))
            .await
            .unwrap_or_else(|_| panic!("{method} {short}: no answer in {REQUEST_TIMEOUT:?}; log:\n{}", self.log()))
    }

    /// Waits until the Worker's log has a line containing `needle`.
    async fn wait_for_log(&self, needle: &str) {
        let since = Instant::now();
        while !self.log().contains(needle) {
            assert!(since.elapsed() < Duration::from_secs(10), "no `{needle}` in the Worker's log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WorkerDev {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let since = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() && since.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.wait();
    }
}

/// Sends `method path` with `body` over a fresh HTTP/1.1 connection: status and JSON body.
async fn send(addr: &str, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let short: String = path.chars().take(80).collect();
    tokio::time::timeout(REQUEST_TIMEOUT, send_unbounded(addr, method, path, body))
        .await
        .unwrap_or_else(|_| panic!("{method} {short} to {addr}: no answer in {REQUEST_TIMEOUT:?}"))
}

/// Sends as the learner the request names (`user=` in the query, `"user"`
/// of a rank body, the first event's `user_id`), with their token.
async fn send_unbounded(addr: &str, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let named = serde_json::from_slice::<Value>(&body).ok().and_then(|b| {
        b["user"].as_str().or_else(|| b["events"][0]["user_id"].as_str()).map(knowedge_test_support::token)
    });
    let auth = knowedge_test_support::bearer_for_query(path).or(named.map(|t| format!("Bearer {t}")));
    let headers: Vec<(&str, String)> = auth.into_iter().map(|a| ("authorization", a)).collect();
    let (status, _, json) = send_with(addr, method, path, &headers, body).await;
    (status, json)
}

async fn send_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, http::HeaderMap, Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = sender.send_request(request.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = headers.get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let short: String = path.chars().take(80).collect();
    if bytes.is_empty() && status == 204 {
        return (status, headers, Value::Null);
    }
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{method} {short}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    assert_eq!(content_type.as_deref(), Some("application/json"), "{method} {short}: {json}");
    (status, headers, json)
}

/// The origin browsers may call the Worker from.
const SHOP: &str = "https://shop.example";

async fn start_spin(store: &Path, state: &Path) -> RunningHost {
    start_spin_with(store, state, None).await
}

/// [`start_spin`] running an A/B experiment (JSON).
async fn start_spin_with(store: &Path, state: &Path, experiment: Option<&str>) -> RunningHost {
    EdgeHost::start(HostConfig {
        wasm: spin_wasm(),
        models_dir: store.to_owned(),
        state_dir: state.to_owned(),
        public_key_hex: SigningKey::from_seed(SEED).public_key().to_hex(),
        pseudonym_key_hex: PSEUDONYM_KEY.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        poll_interval: Duration::from_secs(3600),
        experiment: experiment.map(str::to_owned),
        ingest: None,
        access: knowedge_edge_host::Access {
            token_keys_hex: Some(knowedge_test_support::token_keys_hex()),
            ..Default::default()
        },
    })
    .await
    .unwrap()
}

fn items(answer: &Value) -> Vec<&str> {
    answer["items"].as_array().unwrap().iter().map(|i| i["item"].as_str().unwrap()).collect()
}

/// Forwarded batches a stand-in for ingestion received: authorization header and body.
type Forwarded = std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>;

/// A stand-in for ingestion (the Worker's outbound target): records each
/// request and answers `200 {"accepted": <events>}`.
async fn mock_ingestion() -> (String, Forwarded) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/events", listener.local_addr().unwrap());
    let seen = Forwarded::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let record = record.clone();
                    async move {
                        let auth = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let bytes = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        let n = body["events"].as_array().map_or(0, Vec::len);
                        record.lock().unwrap().push((auth, body));
                        let answer = Full::new(Bytes::from(json!({"accepted": n}).to_string()));
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(answer))
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (url, seen)
}

/// An answer without its per-request `recommendation_id`.
fn without_id(answer: &Value) -> Value {
    let mut a = answer.clone();
    if let Some(o) = a.as_object_mut() {
        o.remove("recommendation_id");
    }
    a
}

/// The native core's answer as the API would serialise its items.
fn native_items(model: &Model, user: &str, k: usize, filters: &Filters) -> Value {
    native_session_items(model, user, &[], k, filters)
}

/// [`native_items`] with the learner's session items.
fn native_session_items(model: &Model, user: &str, session: &[String], k: usize, filters: &Filters) -> Value {
    let pseudonym = Pseudonymizer::from_hex(PSEUDONYM_KEY).unwrap().pseudonymize(user);
    let items = model.recommend_in_session(Some(&pseudonym), session, k, filters);
    // Through text, as the API writes it (shortest f32 representations).
    serde_json::from_str(&serde_json::to_string(&items).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_in_workerd_answers_like_spin_and_the_native_core() {
    let v1 = mf_artifact("v1", 1);
    let sent = sentiment_artifact("sent-1");

    // The same model store for both adapters: a directory for the Spin host, KV for the Worker.
    let (store, state) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    for (name, bytes) in [
        (artifact_name("v1"), &v1),
        (CURRENT.into(), &b"v1\n".to_vec()),
        (artifact_name("sent-1"), &sent),
        (CURRENT_SENTIMENT.into(), &b"sent-1\n".to_vec()),
    ] {
        std::fs::write(store.path().join(name), bytes).unwrap();
    }
    let spin = start_spin(store.path(), state.path()).await;
    let spin_addr = spin.local_addr().to_string();
    let (ingest_url, forwarded) = mock_ingestion().await;
    let worker = WorkerDev::start_with_vars(
        &[
            (&artifact_name("v1"), v1.clone()),
            (CURRENT, b"v1\n".to_vec()),
            (&artifact_name("sent-1"), sent.clone()),
            (CURRENT_SENTIMENT, b"sent-1".to_vec()),
        ],
        &format!("KNOWEDGE_INGEST_URL={ingest_url}\nKNOWEDGE_INGEST_KEY=kn_worker_test\n"),
    )
    .await;

    // Same top-10 from the Worker, the Spin component and the native core.
    let key = SigningKey::from_seed(SEED).public_key();
    let native = Model::from_artifact(&v1, &key).unwrap();
    let python = Filters { category: Some("python".into()), ..Filters::default() };
    let free = Filters { max_price: Some(0.0), ..Filters::default() };
    let cheap = Filters { max_price: Some(100.0), exclude: vec!["finance-item-001".into()], ..Filters::default() };
    let mut compared = 0;
    for (user, query, filters) in [
        (learner(0), String::new(), Filters::default()),
        (learner(7), String::new(), Filters::default()),
        (learner(39), String::new(), Filters::default()),
        ("someone-new".to_owned(), String::new(), Filters::default()),
        (learner(3), "&category=python".to_owned(), python),
        (learner(11), "&max_price=0".to_owned(), free),
        (learner(12), "&max_price=100&exclude=finance-item-001".to_owned(), cheap),
    ] {
        let path = format!("/v1/recommend?user={user}&k=10{query}");
        let (status, from_worker) = worker.get(&path).await;
        assert_eq!(status, 200, "{path}: {from_worker}");
        let (status, from_spin) = send(&spin_addr, "GET", &path, Vec::new()).await;
        assert_eq!(status, 200, "{path}: {from_spin}");
        assert_eq!(items(&from_worker).len(), 10, "{path}: {from_worker}");
        assert_eq!(
            without_id(&from_worker),
            without_id(&from_spin),
            "{path}: the Worker and the Spin component differ"
        );
        assert_ne!(from_worker["recommendation_id"], from_spin["recommendation_id"], "{path}: ids are per request");
        assert_eq!(from_worker["items"], native_items(&native, &user, 10, &filters), "{path}: differs from native");
        assert!(from_worker.get("known_user").is_none(), "{path}: answers do not tell who is a customer");
        compared += 1;
    }
    // Session items fold into the answer, the same way everywhere.
    for (user, session) in [
        (learner(5), vec![native.items()[4].to_owned(), native.items()[9].to_owned()]),
        ("someone-new".to_owned(), vec![native.items()[3].to_owned()]),
    ] {
        let path = format!("/v1/recommend?user={user}&k=10&session={}", session.join(","));
        let (status, from_worker) = worker.get(&path).await;
        assert_eq!(status, 200, "{path}: {from_worker}");
        let from_spin = send(&spin_addr, "GET", &path, Vec::new()).await;
        assert_eq!((status, without_id(&from_worker)), (from_spin.0, without_id(&from_spin.1)), "{path}");
        let expected = native_session_items(&native, &user, &session, 10, &Filters::default());
        assert_eq!(from_worker["items"], expected, "{path}: differs from native");
        assert_ne!(
            expected,
            native_items(&native, &user, 10, &Filters::default()),
            "{path}: the session changed nothing"
        );
        compared += 1;
    }
    // POST /v1/rank.
    let candidates: Vec<String> =
        native.items().iter().take(30).map(str::to_owned).chain(["no-such-item".into()]).collect();
    let body = serde_json::to_vec(&json!({"user": learner(2), "candidates": candidates})).unwrap();
    let from_worker = worker.post("/v1/rank", body.clone()).await;
    assert_eq!(from_worker.0, 200, "{}", from_worker.1);
    assert_eq!(from_worker, send(&spin_addr, "POST", "/v1/rank", body).await, "rank: Worker and Spin differ");
    let pseudonym = Pseudonymizer::from_hex(PSEUDONYM_KEY).unwrap().pseudonymize(&learner(2));
    let ranked = native.rank(Some(&pseudonym), &[], &candidates);
    let expected: Value = serde_json::from_str(&serde_json::to_string(&ranked.items).unwrap()).unwrap();
    assert_eq!(from_worker.1["items"], expected, "rank differs from native");
    assert_eq!(from_worker.1["unknown"], json!(["no-such-item"]));
    compared += 1;
    eprintln!("{compared} answers identical across workerd, wasmtime and native");
    for path in ["/v1/similar?item=python-item-000&k=10", "/v1/model", "/healthz"] {
        let (from_worker, from_spin) = (worker.get(path).await, send(&spin_addr, "GET", path, Vec::new()).await);
        assert_eq!(from_worker, from_spin, "{path}");
        assert_eq!(from_worker.0, 200, "{path}: {}", from_worker.1);
    }

    // POST /v1/sentiment: the body reaches the shared API the same way.
    let texts = json!({"texts": ["这本书很好，喜欢", "太差了，失望", "", "The book is good, 推荐!"]});
    let body = serde_json::to_vec(&texts).unwrap();
    let from_worker = worker.post("/v1/sentiment", body.clone()).await;
    assert_eq!(from_worker.0, 200, "{}", from_worker.1);
    assert_eq!(from_worker, send(&spin_addr, "POST", "/v1/sentiment", body).await);
    let native_sentiment = SentimentModel::from_artifact(&sent, &key).unwrap();
    let texts: Vec<&str> = texts["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let expected: Value =
        serde_json::from_str(&serde_json::to_string(&native_sentiment.score_all(&texts)).unwrap()).unwrap();
    assert_eq!(from_worker.1["results"], expected);

    // POST /v1/events: forwarded to ingestion with the Worker's key, as the token's learner, with
    // the recommendation id the Worker gave that learner; its answer relayed. What the client
    // claims (another learner, an experiment and variant) does not pass.
    let token = |user: &str| format!("Bearer {}", knowedge_test_support::token(user));
    let rec_id = worker.get(&format!("/v1/recommend?user={}&k=3", learner(1))).await.1["recommendation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let click = json!({"events": [{"event_id": "e-1", "type": "click", "user_id": learner(2), "item_id": "x",
                                   "experiment": "forged", "variant": "forged", "recommendation_id": rec_id}]});
    let (status, _, answer) = worker
        .request("POST", "/v1/events", &[("authorization", token(&learner(1)))], serde_json::to_vec(&click).unwrap())
        .await;
    assert_eq!((status, &answer), (200, &json!({"accepted": 1})));
    {
        let seen = forwarded.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, "Bearer kn_worker_test");
        let event = &seen[0].1["events"][0];
        assert_eq!((&event["user_id"], &event["recommendation_id"]), (&json!(learner(1)), &json!(rec_id)));
        assert!(event.get("variant").is_none() && event.get("experiment").is_none(), "{event}");
    }
    // Another learner's recommendation id is dropped; events without a token must be anonymous.
    let (status, _, _) = worker
        .request("POST", "/v1/events", &[("authorization", token(&learner(2)))], serde_json::to_vec(&click).unwrap())
        .await;
    assert_eq!(status, 200);
    assert!(forwarded.lock().unwrap()[1].1["events"][0].get("recommendation_id").is_none());
    let (status, _, answer) = worker.request("POST", "/v1/events", &[], serde_json::to_vec(&click).unwrap()).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("token_invalid")), "{answer}");
    assert_eq!(forwarded.lock().unwrap().len(), 2, "a refused batch is not forwarded");

    // Learner tokens: missing, expired, forged, for another audience, for another learner.
    use knowedge_edge::token::DEFAULT_AUDIENCE;
    use knowedge_test_support::{TOKEN_SEED, token_issued};
    let minutes = chrono::Duration::minutes;
    let path = format!("/v1/recommend?user={}&k=3", learner(1));
    for (auth, status, code) in [
        (None, 401, "token_required"),
        (Some(token_issued(&TOKEN_SEED, &learner(1), DEFAULT_AUDIENCE, minutes(15), 60)), 401, "token_expired"),
        (Some(token_issued(&[0x99; 32], &learner(1), DEFAULT_AUDIENCE, minutes(15), 0)), 401, "token_invalid"),
        (Some(token_issued(&TOKEN_SEED, &learner(1), "another-app", minutes(15), 0)), 401, "token_wrong_audience"),
        (Some(knowedge_test_support::token(&learner(2))), 403, "user_mismatch"),
    ] {
        let headers: Vec<(&str, String)> = auth.into_iter().map(|t| ("authorization", format!("Bearer {t}"))).collect();
        let (got, _, answer) = worker.request("GET", &path, &headers, Vec::new()).await;
        assert_eq!((got, answer["error"]["code"].as_str()), (status, Some(code)), "{answer}");
    }
    // CORS: the shop's preflight is allowed, another origin's refused; answers carry the header.
    let preflight =
        |origin: &str| vec![("origin", origin.to_owned()), ("access-control-request-method", "POST".to_owned())];
    let (status, headers, _) = worker.request("OPTIONS", "/v1/events", &preflight(SHOP), Vec::new()).await;
    assert_eq!((status, headers["access-control-allow-origin"].to_str().unwrap()), (204, SHOP));
    let (status, headers, _) =
        worker.request("OPTIONS", "/v1/events", &preflight("https://evil.example"), Vec::new()).await;
    assert_eq!(status, 403);
    assert!(headers.get("access-control-allow-origin").is_none());
    let (_, headers, _) = worker.request("GET", "/v1/recommend?k=3", &[("origin", SHOP.to_owned())], Vec::new()).await;
    assert_eq!(headers["access-control-allow-origin"], SHOP);

    let (status, answer) = worker.post("/v1/events", b"{\"events\": 3}".to_vec()).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_body")), "{answer}");
    assert_eq!(forwarded.lock().unwrap().len(), 2, "a refused batch is not forwarded");

    // Bad requests: JSON 4xx from the Worker, as from the Spin component.
    let long_query = format!("/v1/recommend?user={}", "x".repeat(32 * 1024));
    let oversized = serde_json::to_vec(&json!({"texts": ["x".repeat(5 << 20)]})).unwrap();
    let many_candidates =
        serde_json::to_vec(&json!({"user": "a", "candidates": vec!["python-item-000"; 100_000]})).unwrap();
    for (method, path, body, expected) in [
        ("GET", "/v1/recommend?user=learner-0000&k=1000000000", Vec::new(), 400),
        ("GET", "/v1/recommend?k=0", Vec::new(), 400),
        ("GET", "/v1/recommend?user=learner-0000&k=-1", Vec::new(), 400),
        ("GET", "/v1/recommend?user=a&user=b", Vec::new(), 400),
        ("GET", "/v1/recommend?user=%FF%FE", Vec::new(), 400),
        ("GET", "/v1/similar?item=zzz", Vec::new(), 404),
        ("GET", "/nowhere", Vec::new(), 404),
        ("POST", "/v1/model", Vec::new(), 405),
        ("GET", &long_query, Vec::new(), 414),
        ("POST", "/v1/sentiment", b"{\"texts\": [\"\xff\"]}".to_vec(), 400),
        ("POST", "/v1/sentiment", oversized, 413),
        ("POST", "/v1/rank", many_candidates, 400),
        ("POST", "/v1/rank", b"{\"user\": \"\xff\", \"candidates\": []}".to_vec(), 400),
        ("GET", "/v1/rank", Vec::new(), 405),
    ] {
        let (status, answer) = if method == "GET" { worker.get(path).await } else { worker.post(path, body).await };
        let short: String = path.chars().take(60).collect();
        assert_eq!(status, expected, "{method} {short}: {answer}");
        assert!(status == 200 || answer["error"]["code"].is_string(), "{method} {short}: {answer}");
    }

    // A tampered artifact made current is refused; the Worker keeps serving v1.
    let v1_top = worker.get("/v1/recommend?user=learner-0000&k=10").await.1;
    worker.put(&[(&artifact_name("v2"), tampered(mf_artifact("v2", 2))), (CURRENT, b"v2".to_vec())]).await;
    let (status, info) = worker.get("/v1/model").await;
    assert_eq!((status, info["model_id"].as_str()), (200, Some("v1")), "{info}");
    worker.wait_for_log("refused model v2 from current: artifact signature does not verify").await;
    assert_eq!(without_id(&worker.get("/v1/recommend?user=learner-0000&k=10").await.1), without_id(&v1_top));
    // So is one of an unknown format version.
    let mut future = mf_artifact("v3", 3);
    future[8..12].copy_from_slice(&3u32.to_le_bytes());
    worker.put(&[(&artifact_name("v3"), future), (CURRENT, b"v3".to_vec())]).await;
    assert_eq!(worker.get("/v1/model").await.1["model_id"], "v1");
    worker.wait_for_log("refused model v3 from current").await;
    // A valid new version is swapped in without a restart.
    let v4 = mf_artifact("v4", 4);
    worker.put(&[(&artifact_name("v4"), v4.clone()), (CURRENT, b"v4".to_vec())]).await;
    let (status, answer) = worker.get("/v1/recommend?user=learner-0000&k=10").await;
    assert_eq!((status, answer["model_id"].as_str()), (200, Some("v4")), "{answer}");
    let native_v4 = Model::from_artifact(&v4, &key).unwrap();
    assert_eq!(answer["items"], native_items(&native_v4, &learner(0), 10, &Filters::default()));
    // Pointing `current` back at the older v1, or at v1's bytes under a new name, is refused.
    worker.put(&[(CURRENT, b"v1".to_vec())]).await;
    assert_eq!(worker.get("/v1/model").await.1["model_id"], "v4");
    worker.wait_for_log("refused model v1 from current").await;
    worker.put(&[(&artifact_name("v5"), v1.clone()), (CURRENT, b"v5".to_vec())]).await;
    assert_eq!(worker.get("/v1/model").await.1["model_id"], "v4");
    worker.wait_for_log("refused model v5 from current").await;

    drop(worker);
    spin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_runs_experiments_like_the_spin_component() {
    let (v1, v2) = (mf_artifact("v1", 1), mf_artifact("v2", 2));
    let experiment = r#"{"name":"home-2026-11","variants":[{"name":"control","weight":1,"model":"current"},{"name":"treatment","weight":1,"model":"v2"}]}"#;
    let (store, state) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    for (name, bytes) in [(artifact_name("v1"), &v1), (artifact_name("v2"), &v2), (CURRENT.into(), &b"v1\n".to_vec())] {
        std::fs::write(store.path().join(name), bytes).unwrap();
    }
    let spin = start_spin_with(store.path(), state.path(), Some(experiment)).await;
    let spin_addr = spin.local_addr().to_string();
    let worker = WorkerDev::start_with_vars(
        &[(&artifact_name("v1"), v1.clone()), (&artifact_name("v2"), v2.clone()), (CURRENT, b"v1\n".to_vec())],
        &format!("KNOWEDGE_EXPERIMENT={experiment}\n"),
    )
    .await;

    let e = knowedge_edge::experiment::Experiment::from_json(experiment).unwrap();
    let pseudonyms = Pseudonymizer::from_hex(PSEUDONYM_KEY).unwrap();
    let key = SigningKey::from_seed(SEED).public_key();
    let models = [Model::from_artifact(&v1, &key).unwrap(), Model::from_artifact(&v2, &key).unwrap()];
    let mut seen = std::collections::BTreeSet::new();
    for u in 0..16 {
        let user = learner(u);
        let path = format!("/v1/recommend?user={user}&k=10");
        let (status, from_worker) = worker.get(&path).await;
        assert_eq!(status, 200, "{path}: {from_worker}");
        let (status, from_spin) = send(&spin_addr, "GET", &path, Vec::new()).await;
        assert_eq!(status, 200, "{path}: {from_spin}");
        // Same assignment, same variant model, same answer as the native core.
        let variant = e.assign(&pseudonyms.pseudonymize(&user)).name.clone();
        assert_eq!(from_worker["experiment"], "home-2026-11", "{from_worker}");
        assert_eq!(from_worker["variant"], variant.as_str(), "{path}: {from_worker}");
        assert_eq!(
            without_id(&from_worker),
            without_id(&from_spin),
            "{path}: the Worker and the Spin component differ"
        );
        let model = &models[usize::from(variant == "treatment")];
        assert_eq!(from_worker["model_id"], model.info().model_id.as_str(), "{path}: {from_worker}");
        assert_eq!(from_worker["items"], native_items(model, &user, 10, &Filters::default()), "{path}");
        // The exposure is logged with the answer's recommendation id.
        let id = from_worker["recommendation_id"].as_str().unwrap();
        worker.wait_for_log(id).await;
        seen.insert(variant);
    }
    assert_eq!(seen.len(), 2, "16 learners should reach both variants: {seen:?}");
    drop(worker);
    spin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_without_a_valid_model_answers_503_json() {
    let worker =
        WorkerDev::start(&[(&artifact_name("bad"), tampered(mf_artifact("bad", 5))), (CURRENT, b"bad".to_vec())]).await;
    let (status, answer) = worker.get("/v1/recommend?user=learner-0000").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("no_model")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("signature"), "{answer}");
    let (status, answer) = worker.post("/v1/sentiment", r#"{"texts": ["好"]}"#.as_bytes().to_vec()).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("no_model")), "{answer}");
    worker.wait_for_log("refused model bad from current").await;
}
