//! Delivering promoted models to the edges: Workers KV (through the
//! Cloudflare API) and the key-value store of a Spin application (through its
//! publish route).
//!
//! [`EdgeTargets::publish`] copies what the model store's pointers name to
//! every configured edge, in the model store's own order: for each channel,
//! the artifact `<version>.kwm` first, then the pointer (`current`,
//! `current-sentiment`), skipping a channel whose pointer at the edge names
//! that version already. An edge therefore never holds a pointer to an
//! artifact it lacks. A write that fails with a 5xx, a 429 or a network
//! error is retried with backoff; if it still fails, or the edge refuses the
//! credentials, nothing after it is written and the error says whether a
//! later run may succeed ([`crate::Error::is_retryable`]). Publishing is
//! idempotent, so the next training or compaction run repeats it; the
//! `EdgePublishFailures` metric ([`crate::deploy::emit_metrics`]) lets an
//! alarm catch an edge that stays behind.

use std::time::Duration;

use knowedge_format::store::{self, Channel};

use crate::deploy::{Setting, Settings};
use crate::{Error, ModelStore, Result};

/// The Cloudflare API (override for tests or a regional endpoint).
pub const CLOUDFLARE_API_URL_VAR: &str = "KNOWEDGE_CLOUDFLARE_API_URL";
/// The Cloudflare account that owns the KV namespace.
pub const CLOUDFLARE_ACCOUNT_VAR: &str = "KNOWEDGE_CLOUDFLARE_ACCOUNT_ID";
/// The id of the Workers KV namespace the Worker binds as `MODELS`.
pub const CLOUDFLARE_NAMESPACE_VAR: &str = "KNOWEDGE_CLOUDFLARE_KV_NAMESPACE";
/// An API token allowed to write that namespace (secret).
pub const CLOUDFLARE_TOKEN_VAR: &str = "KNOWEDGE_CLOUDFLARE_API_TOKEN";
/// Base URL of a Spin application serving the edge component.
pub const SPIN_URL_VAR: &str = "KNOWEDGE_SPIN_URL";
/// The Spin application's publish key (secret).
pub const SPIN_KEY_VAR: &str = "KNOWEDGE_SPIN_PUBLISH_KEY";
/// The Cloudflare API when [`CLOUDFLARE_API_URL_VAR`] is not set.
pub const DEFAULT_CLOUDFLARE_API_URL: &str = "https://api.cloudflare.com/client/v4";
/// Largest value Workers KV stores.
pub const KV_VALUE_LIMIT: usize = 25 * 1024 * 1024;

/// The settings of the edge publisher (every function that promotes models reads them).
pub const SETTINGS: [Setting; 6] = [
    Setting::optional(CLOUDFLARE_API_URL_VAR),
    Setting::optional(CLOUDFLARE_ACCOUNT_VAR),
    Setting::optional(CLOUDFLARE_NAMESPACE_VAR),
    Setting::optional_secret(CLOUDFLARE_TOKEN_VAR),
    Setting::optional(SPIN_URL_VAR),
    Setting::optional_secret(SPIN_KEY_VAR),
];

/// Attempts per write before giving up.
const ATTEMPTS: u32 = 4;

/// An edge models are pushed to.
#[derive(Clone, Debug)]
pub enum Target {
    /// A Workers KV namespace, written through the Cloudflare API.
    CloudflareKv {
        /// API base URL.
        api: String,
        /// Account id.
        account: String,
        /// Namespace id.
        namespace: String,
        /// API token.
        token: String,
    },
    /// A Spin application's `models` key-value store, written through its
    /// `PUT /v1/admin/models/<key>` route.
    Spin {
        /// Base URL of the application.
        url: String,
        /// Publish key.
        key: String,
    },
}

impl Target {
    /// Its name in logs, errors and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Target::CloudflareKv { .. } => "cloudflare-kv",
            Target::Spin { .. } => "spin",
        }
    }

    fn url(&self, key: &str) -> String {
        let key = encode_path(key);
        match self {
            Target::CloudflareKv { api, account, namespace, .. } => format!(
                "{}/accounts/{}/storage/kv/namespaces/{}/values/{key}",
                api.trim_end_matches('/'),
                encode_path(account),
                encode_path(namespace)
            ),
            Target::Spin { url, .. } => format!("{}/v1/admin/models/{key}", url.trim_end_matches('/')),
        }
    }

    fn token(&self) -> &str {
        match self {
            Target::CloudflareKv { token, .. } => token,
            Target::Spin { key, .. } => key,
        }
    }
}

/// What one [`EdgeTargets::publish`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PublishReport {
    /// `(target, channel pointer, version)` for each pointer written.
    pub published: Vec<(String, String, String)>,
    /// `(target, channel pointer, version)` for each pointer the edge held already.
    pub unchanged: Vec<(String, String, String)>,
}

/// The edges a deployment pushes models to (possibly none).
#[derive(Clone, Debug, Default)]
pub struct EdgeTargets {
    targets: Vec<Target>,
    client: reqwest::Client,
    backoff: Duration,
}

impl EdgeTargets {
    /// These targets.
    pub fn new(targets: Vec<Target>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self { targets, client, backoff: Duration::from_millis(500) }
    }

    /// The first wait between attempts (doubled each time).
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// The targets the settings configure: Workers KV when the account,
    /// namespace and token are all set, Spin when its URL and key are. A
    /// target configured halfway is an error rather than silently skipped.
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let set = |name| settings.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let mut targets = Vec::new();
        let cf = [CLOUDFLARE_ACCOUNT_VAR, CLOUDFLARE_NAMESPACE_VAR, CLOUDFLARE_TOKEN_VAR].map(set);
        match cf {
            [Some(account), Some(namespace), Some(token)] => targets.push(Target::CloudflareKv {
                api: set(CLOUDFLARE_API_URL_VAR).unwrap_or_else(|| DEFAULT_CLOUDFLARE_API_URL.into()),
                account,
                namespace,
                token,
            }),
            [None, None, None] => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "Workers KV publishing needs {CLOUDFLARE_ACCOUNT_VAR}, {CLOUDFLARE_NAMESPACE_VAR} and \
                     {CLOUDFLARE_TOKEN_VAR} together"
                )));
            }
        }
        match [SPIN_URL_VAR, SPIN_KEY_VAR].map(set) {
            [Some(url), Some(key)] => targets.push(Target::Spin { url, key }),
            [None, None] => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "Spin publishing needs {SPIN_URL_VAR} and {SPIN_KEY_VAR} together"
                )));
            }
        }
        Ok(Self::new(targets))
    }

    /// Whether there is nowhere to publish.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The configured targets.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Copies every channel's current model from `models` to every target:
    /// artifact first, then pointer. Stops at the first write that fails
    /// after its retries.
    pub async fn publish(&self, models: &ModelStore) -> Result<PublishReport> {
        let mut current = Vec::new();
        for channel in Channel::ALL {
            if let Some(version) = models.current(channel).await? {
                let artifact = models.get(&version).await?;
                current.push((channel, version, artifact));
            }
        }
        let mut report = PublishReport::default();
        for target in &self.targets {
            for (channel, version, artifact) in &current {
                if matches!(target, Target::CloudflareKv { .. }) && artifact.len() > KV_VALUE_LIMIT {
                    return Err(Error::Publish {
                        target: target.name().into(),
                        reason: format!(
                            "artifact {version} is {} bytes, over Workers KV's {KV_VALUE_LIMIT}-byte value limit",
                            artifact.len()
                        ),
                        retryable: false,
                    });
                }
                let entry = (target.name().to_owned(), channel.pointer().to_owned(), version.clone());
                if self.remote_pointer(target, channel.pointer()).await.as_deref() == Some(version.as_str()) {
                    report.unchanged.push(entry);
                    continue;
                }
                self.put(target, &store::artifact_name(version), artifact.clone()).await?;
                self.put(target, channel.pointer(), bytes::Bytes::from(format!("{version}\n"))).await?;
                tracing::info!(target = target.name(), channel = channel.name(), %version, "model published to the edge");
                report.published.push(entry);
            }
        }
        Ok(report)
    }

    /// The version an edge's pointer names now, if it can be read (any
    /// failure reads as unknown, and the model is pushed again).
    async fn remote_pointer(&self, target: &Target, pointer: &str) -> Option<String> {
        let r = self.client.get(target.url(pointer)).bearer_auth(target.token()).send().await.ok()?;
        if !r.status().is_success() {
            return None;
        }
        let body = r.bytes().await.ok()?;
        // Workers KV answers the value itself; a Spin application `{"pointer": …, "version": …}`.
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) if v.is_object() => v["version"].as_str().map(str::to_owned),
            _ => store::parse_current(&body).map(str::to_owned),
        }
    }

    /// One write, retried on 5xx, 429 and network errors.
    async fn put(&self, target: &Target, key: &str, body: bytes::Bytes) -> Result<()> {
        let url = target.url(key);
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            let sent = self
                .client
                .put(&url)
                .bearer_auth(target.token())
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body.clone())
                .send()
                .await;
            let (reason, retryable) = match sent {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    let retryable = status.is_server_error() || status.as_u16() == 429;
                    (format!("writing `{key}` answered {status}: {}", api_message(&text)), retryable)
                }
                Err(e) => (format!("writing `{key}`: {e}"), true),
            };
            if !retryable || attempt >= ATTEMPTS {
                return Err(Error::Publish { target: target.name().into(), reason, retryable });
            }
            tracing::warn!(target = target.name(), attempt, %reason, "edge write failed; retrying");
            sleep(wait).await;
            wait *= 2;
            attempt += 1;
        }
    }
}

/// The error messages of a Cloudflare API answer (`{"errors":[{"message":…}]}`), or the text.
fn api_message(text: &str) -> String {
    let messages: Vec<String> = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
        .map(|errors| errors.iter().filter_map(|e| e["message"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if messages.is_empty() { text.chars().take(300).collect() } else { messages.join("; ") }
}

/// Percent-encodes one path segment.
fn encode_path(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Waits without tying the library to an async runtime's timer: the wait
/// runs on a helper thread and the task awaits its completion (the runtime's
/// threads are never blocked). Also used by [`crate::deploy`]'s start-up retries.
pub(crate) async fn sleep(d: Duration) {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(d);
        let _ = tx.send(());
    });
    let _ = rx.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_pairs(&SETTINGS, pairs)
    }

    #[test]
    fn targets_come_from_complete_settings_only() {
        assert!(EdgeTargets::from_settings(&settings(&[])).unwrap().is_empty());
        let t = EdgeTargets::from_settings(&settings(&[
            (CLOUDFLARE_ACCOUNT_VAR, "acc"),
            (CLOUDFLARE_NAMESPACE_VAR, "ns"),
            (CLOUDFLARE_TOKEN_VAR, "tok"),
            (SPIN_URL_VAR, "https://edge.example"),
            (SPIN_KEY_VAR, "k"),
        ]))
        .unwrap();
        assert_eq!(t.targets().iter().map(Target::name).collect::<Vec<_>>(), ["cloudflare-kv", "spin"]);
        assert_eq!(
            t.targets()[0].url("v1.kwm"),
            "https://api.cloudflare.com/client/v4/accounts/acc/storage/kv/namespaces/ns/values/v1.kwm"
        );
        assert_eq!(t.targets()[1].url("current"), "https://edge.example/v1/admin/models/current");

        let half = EdgeTargets::from_settings(&settings(&[(CLOUDFLARE_ACCOUNT_VAR, "acc")])).unwrap_err();
        assert!(half.to_string().contains(CLOUDFLARE_TOKEN_VAR), "{half}");
        let half = EdgeTargets::from_settings(&settings(&[(SPIN_URL_VAR, "https://x")])).unwrap_err();
        assert!(half.to_string().contains(SPIN_KEY_VAR), "{half}");
    }

    #[test]
    fn cloudflare_error_messages_are_kept() {
        assert_eq!(
            api_message(r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#),
            "Authentication error"
        );
        assert_eq!(api_message("plain"), "plain");
        assert_eq!(encode_path("a b/c"), "a%20b%2Fc");
    }
}
