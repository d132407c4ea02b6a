//! The edge publisher against a stand-in of the Cloudflare API over HTTP, and
//! secrets read through a stand-in of the Parameters and Secrets extension.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use knowedge_format::artifact::SigningKey;
use knowedge_format::store::Channel;
use knowedge_lake::deploy::{Setting, Settings};
use knowedge_lake::publish::{self, EdgeTargets};
use knowedge_lake::{Error, ModelStore};
use knowedge_test_support::lake::planted_model;
use knowedge_test_support::stand_in::{Recorded, StandIn};

const TOKEN: &str = "cf-token-allowed-to-write";
const PREFIX: &str = "/accounts/acc-1/storage/kv/namespaces/ns-1/values/";

/// A Workers KV namespace behind the Cloudflare API: bearer `TOKEN` only,
/// the first `fail_puts` writes answered 503.
struct Cloudflare {
    server: StandIn,
    kv: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl Cloudflare {
    fn start(fail_puts: usize) -> Self {
        let kv: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
        let failures = AtomicUsize::new(fail_puts);
        let store = kv.clone();
        let server = StandIn::start(move |r: &Recorded| {
            let error = |status, code, message: &str| {
                let body = serde_json::json!({"success": false, "errors": [{"code": code, "message": message}]});
                (status, body.to_string().into_bytes())
            };
            if r.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
                return error(403, 10000, "Authentication error");
            }
            let Some(key) = r.target.strip_prefix(PREFIX) else { return error(404, 7003, "No route") };
            match r.method.as_str() {
                "PUT" => {
                    if failures.load(Ordering::SeqCst) > 0 {
                        failures.fetch_sub(1, Ordering::SeqCst);
                        return error(503, 10013, "service temporarily unavailable");
                    }
                    store.lock().unwrap().insert(key.to_owned(), r.body.clone());
                    (200, br#"{"success":true,"errors":[],"messages":[],"result":null}"#.to_vec())
                }
                "GET" => match store.lock().unwrap().get(key) {
                    Some(v) => (200, v.clone()),
                    None => error(404, 10009, "key not found"),
                },
                _ => error(405, 10000, "method not allowed"),
            }
        });
        Self { server, kv }
    }

    fn targets(&self, token: &str) -> EdgeTargets {
        let settings = Settings::from_pairs(
            &publish::SETTINGS,
            &[
                (publish::CLOUDFLARE_API_URL_VAR, &self.server.url),
                (publish::CLOUDFLARE_ACCOUNT_VAR, "acc-1"),
                (publish::CLOUDFLARE_NAMESPACE_VAR, "ns-1"),
                (publish::CLOUDFLARE_TOKEN_VAR, token),
            ],
        );
        EdgeTargets::from_settings(&settings).unwrap().with_backoff(Duration::from_millis(1))
    }

    fn puts(&self) -> Vec<String> {
        let requests = self.server.requests();
        requests.iter().filter(|r| r.method == "PUT").map(|r| r.target.trim_start_matches(PREFIX).to_owned()).collect()
    }
}

async fn store_with_model(dir: &std::path::Path, version: &str) -> (ModelStore, Vec<u8>) {
    let models = ModelStore::open(dir.to_str().unwrap()).unwrap();
    let key = SigningKey::from_seed([5; 32]);
    let users = vec!["u1".to_owned(), "u2".to_owned()];
    let artifact = planted_model(&key, &users, version, chrono::Utc::now());
    models.publish(Channel::Recommender, version, artifact.clone()).await.unwrap();
    (models, artifact)
}

#[tokio::test]
async fn a_refused_token_writes_nothing_and_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (models, _) = store_with_model(dir.path(), "v1").await;
    let cf = Cloudflare::start(0);
    let err = cf.targets("a-revoked-token").publish(&models).await.unwrap_err();
    assert!(matches!(err, Error::Publish { retryable: false, .. }), "{err}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("cloudflare-kv") && text.contains("403") && text.contains("Authentication error"), "{text}");
    assert_eq!(cf.puts(), ["v1.kwm"], "one attempt, no retry, no pointer");
    assert!(cf.kv.lock().unwrap().is_empty());
}

#[tokio::test]
async fn server_errors_are_retried_and_the_artifact_lands_before_the_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let (models, artifact) = store_with_model(dir.path(), "v1").await;
    let cf = Cloudflare::start(2);
    let report = cf.targets(TOKEN).publish(&models).await.unwrap();
    assert_eq!(report.published, [("cloudflare-kv".to_owned(), "current".to_owned(), "v1".to_owned())]);
    // Two 503s on the artifact, then the artifact, then the pointer.
    assert_eq!(cf.puts(), ["v1.kwm", "v1.kwm", "v1.kwm", "current"]);
    let kv = cf.kv.lock().unwrap().clone();
    assert_eq!(kv["v1.kwm"], artifact, "the artifact arrives byte for byte");
    assert_eq!(kv["current"], b"v1\n");
    for put in cf.server.requests().iter().filter(|r| r.method == "PUT") {
        assert_eq!(put.header("content-type"), Some("application/octet-stream"));
    }

    // Published again with nothing new: the edge has it, nothing is written.
    let again = cf.targets(TOKEN).publish(&models).await.unwrap();
    assert!(again.published.is_empty());
    assert_eq!(again.unchanged.len(), 1);
    assert_eq!(cf.puts().len(), 4);
}

#[tokio::test]
async fn an_edge_that_stays_down_never_gets_a_pointer_to_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (models, _) = store_with_model(dir.path(), "v1").await;
    let cf = Cloudflare::start(usize::MAX);
    let err = cf.targets(TOKEN).publish(&models).await.unwrap_err();
    assert!(err.is_retryable(), "a later run may succeed: {err}");
    assert!(err.to_string().contains("503"), "{err}");
    assert!(cf.puts().iter().all(|k| k == "v1.kwm"), "the pointer is never tried: {:?}", cf.puts());
    assert!(cf.kv.lock().unwrap().is_empty());

    // The next run (the edge is back) completes the copy.
    let cf2 = Cloudflare::start(0);
    cf2.targets(TOKEN).publish(&models).await.unwrap();
    assert_eq!(cf2.puts(), ["v1.kwm", "current"]);
}

#[tokio::test]
async fn a_promotion_moves_the_edge_to_the_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let (models, _) = store_with_model(dir.path(), "v1").await;
    let cf = Cloudflare::start(0);
    cf.targets(TOKEN).publish(&models).await.unwrap();
    let key = SigningKey::from_seed([5; 32]);
    let v2 = planted_model(&key, &["u3".to_owned()], "v2", chrono::Utc::now());
    models.publish(Channel::Recommender, "v2", v2).await.unwrap();
    cf.targets(TOKEN).publish(&models).await.unwrap();
    assert_eq!(cf.puts(), ["v1.kwm", "current", "v2.kwm", "current"]);
    assert_eq!(cf.kv.lock().unwrap()["current"], b"v2\n");
}

#[tokio::test]
async fn secrets_come_from_the_extension_with_the_session_token() {
    let extension = StandIn::start(|r: &Recorded| {
        if r.header("x-aws-parameters-secrets-token") != Some("session-token") {
            return (401, b"{}".to_vec());
        }
        if r.target == "/secretsmanager/get?secretId=arn%3Aaws%3Asecretsmanager%3Aeu-west-1%3A1%3Asecret%3Ap" {
            return (200, br#"{"Name":"p","SecretString":"0011"}"#.to_vec());
        }
        if r.target == "/systemsmanager/parameters/get?name=%2Fknowedge%2Fkeys&withDecryption=true" {
            return (200, br#"{"Parameter":{"Name":"/knowedge/keys","Value":"web:events.write:s3cr3t"}}"#.to_vec());
        }
        (400, br#"{"message":"unknown secret"}"#.to_vec())
    });
    let declared = [
        Setting::required("KNOWEDGE_LAKE"),
        Setting::secret("KNOWEDGE_PSEUDONYM_KEY"),
        Setting::secret("KNOWEDGE_API_KEYS"),
        Setting::optional_secret("KNOWEDGE_SIGNING_KEY"),
    ];
    let port = extension.port.to_string();
    let env = |token: &'static str| {
        let port = port.clone();
        move |k: &str| -> Option<String> {
            Some(match k {
                "KNOWEDGE_LAKE" => "/lake".into(),
                "KNOWEDGE_PSEUDONYM_KEY_SECRET" => "arn:aws:secretsmanager:eu-west-1:1:secret:p".into(),
                "KNOWEDGE_API_KEYS_SECRET" => "ssm:/knowedge/keys".into(),
                "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT" => port.clone(),
                "AWS_SESSION_TOKEN" => token.into(),
                _ => return None,
            })
        }
    };
    let s = Settings::load_with(&declared, env("session-token")).await.unwrap();
    assert_eq!(s.get("KNOWEDGE_PSEUDONYM_KEY"), Some("0011"));
    assert_eq!(s.get("KNOWEDGE_API_KEYS"), Some("web:events.write:s3cr3t"));
    assert_eq!(s.get("KNOWEDGE_SIGNING_KEY"), None, "an optional secret without a reference stays unset");

    let err = Settings::load_with(&declared, env("another-session")).await.unwrap_err();
    assert!(matches!(err, Error::Secret { .. }), "{err}");
    assert!(err.to_string().contains("401"), "{err}");
}
