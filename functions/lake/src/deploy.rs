//! What a deployed function needs: the settings it reads, where its secrets
//! come from, the object-store access its code uses, and the metrics it
//! reports.
//!
//! Each Lambda binary lists its settings ([`Setting`]) and its object-store
//! access ([`ObjectAccess`]) as constants; the deployment (`infra/`) is
//! tested against those lists, so a setting the code reads cannot be missing
//! from the function's configuration and a prefix it writes cannot be missing
//! from its role.
//!
//! # Secrets
//!
//! A secret setting `KNOWEDGE_X` is read from the environment when it is
//! set there (local runs, tests). In a deployment the environment holds only
//! `KNOWEDGE_X_SECRET`, the ARN or name of a Secrets Manager secret (or
//! `ssm:<parameter name>` for an SSM SecureString parameter), and the value is
//! fetched once at cold start from the AWS Parameters and Secrets Lambda
//! extension, which serves them on `localhost` (port
//! `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`, default 2773) to callers that
//! present the function's session token. No AWS SDK is needed and the value
//! never sits in the function's configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{Error, Result};

/// A setting a function reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Environment name (`KNOWEDGE_…`).
    pub name: &'static str,
    /// Whether the value is a secret (read through the secrets extension in a deployment).
    pub secret: bool,
    /// Whether the function refuses to start without it.
    pub required: bool,
}

impl Setting {
    /// A plain setting the function cannot start without.
    pub const fn required(name: &'static str) -> Self {
        Self { name, secret: false, required: true }
    }

    /// A plain optional setting.
    pub const fn optional(name: &'static str) -> Self {
        Self { name, secret: false, required: false }
    }

    /// A required secret.
    pub const fn secret(name: &'static str) -> Self {
        Self { name, secret: true, required: true }
    }

    /// An optional secret.
    pub const fn optional_secret(name: &'static str) -> Self {
        Self { name, secret: true, required: false }
    }

    /// The environment variable naming where the secret is kept.
    pub fn secret_reference(&self) -> String {
        format!("{}{SECRET_SUFFIX}", self.name)
    }
}

/// Suffix of the variable that names a secret's location.
pub const SECRET_SUFFIX: &str = "_SECRET";
/// Port of the Parameters and Secrets extension when not configured.
pub const EXTENSION_PORT: u16 = 2773;

/// Object storage a function's code uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectAccess {
    /// Which store.
    pub bucket: Bucket,
    /// Key prefix (`""` for the whole store).
    pub prefix: &'static str,
    /// What it does there.
    pub actions: &'static [Action],
}

/// The stores of a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    /// The event lake (`KNOWEDGE_LAKE`).
    Lake,
    /// The model store (`KNOWEDGE_MODELS`).
    Models,
}

impl Bucket {
    /// The name the deployment uses for it.
    pub const fn name(self) -> &'static str {
        match self {
            Bucket::Lake => "lake",
            Bucket::Models => "models",
        }
    }
}

/// An object-store operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Read objects (GET and HEAD).
    Get,
    /// Write objects (including conditional create).
    Put,
    /// Delete objects.
    Delete,
    /// List keys under the prefix.
    List,
}

impl Action {
    /// The S3 IAM action that allows it.
    pub const fn iam(self) -> &'static str {
        match self {
            Action::Get => "s3:GetObject",
            Action::Put => "s3:PutObject",
            Action::Delete => "s3:DeleteObject",
            Action::List => "s3:ListBucket",
        }
    }
}

/// The values of a function's settings, read once at start.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    declared: Vec<Setting>,
    values: BTreeMap<&'static str, String>,
}

impl Settings {
    /// Reads `declared` from the environment; secrets given only by
    /// reference (`<NAME>_SECRET`) are fetched from the secrets extension.
    /// Fails on a missing required setting or a secret that cannot be read.
    pub async fn load(declared: &[Setting]) -> Result<Self> {
        Self::load_with(declared, |name| std::env::var(name).ok()).await
    }

    /// [`Settings::load`] with another source of variables.
    pub async fn load_with(declared: &[Setting], var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut values = BTreeMap::new();
        let mut extension = None;
        for setting in declared {
            let direct = var(setting.name).filter(|v| !v.is_empty());
            let value = match direct {
                Some(v) => Some(v),
                None if setting.secret => match var(&setting.secret_reference()).filter(|v| !v.is_empty()) {
                    Some(reference) => {
                        let client = extension.get_or_insert_with(|| SecretsExtension::from_lookup(&var));
                        Some(client.fetch(setting.name, &reference).await?)
                    }
                    None => None,
                },
                None => None,
            };
            match value {
                Some(v) => {
                    values.insert(setting.name, v);
                }
                None if setting.required => {
                    let how =
                        if setting.secret { format!(" (nor {})", setting.secret_reference()) } else { String::new() };
                    return Err(Error::Invalid(format!("{} is not set{how}", setting.name)));
                }
                None => {}
            }
        }
        Ok(Self { declared: declared.to_vec(), values })
    }

    /// Settings given directly (tests, local runs).
    pub fn from_pairs(declared: &[Setting], pairs: &[(&str, &str)]) -> Self {
        let values = declared
            .iter()
            .filter_map(|s| pairs.iter().find(|(k, _)| *k == s.name).map(|(_, v)| (s.name, (*v).to_owned())))
            .collect();
        Self { declared: declared.to_vec(), values }
    }

    /// A setting's value. Only declared settings are ever read: asking for
    /// another one is a programming error, reported as unset (and caught by
    /// debug builds).
    pub fn get(&self, name: &str) -> Option<&str> {
        debug_assert!(self.declared.iter().any(|s| s.name == name), "{name} is read but not declared");
        self.values.get(name).map(String::as_str)
    }

    /// A setting that must be there.
    pub fn require(&self, name: &str) -> Result<&str> {
        self.get(name).ok_or_else(|| Error::Invalid(format!("{name} is not set")))
    }

    /// A closure over [`Settings::get`], for readers written against environment lookups.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| self.get(name).map(str::to_owned)
    }
}

/// The HTTP interface of the AWS Parameters and Secrets Lambda extension.
struct SecretsExtension {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl SecretsExtension {
    fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Self {
        let port = var("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT").and_then(|p| p.parse().ok()).unwrap_or(EXTENSION_PORT);
        Self {
            base: format!("http://localhost:{port}"),
            token: var("AWS_SESSION_TOKEN").unwrap_or_default(),
            client: reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default(),
        }
    }

    /// The value of `reference`: a Secrets Manager secret id, or
    /// `ssm:<name>` for an SSM parameter (decrypted).
    async fn fetch(&self, setting: &str, reference: &str) -> Result<String> {
        let (url, ssm) = match reference.strip_prefix("ssm:") {
            Some(name) => {
                (format!("{}/systemsmanager/parameters/get?name={}&withDecryption=true", self.base, encode(name)), true)
            }
            None => (format!("{}/secretsmanager/get?secretId={}", self.base, encode(reference)), false),
        };
        let fail = |reason: String| Error::Secret { setting: setting.to_owned(), reason };
        // The extension starts with the execution environment; give it a moment if it is not listening yet.
        let mut attempt = 0;
        let response = loop {
            let sent = self.client.get(&url).header("X-Aws-Parameters-Secrets-Token", &self.token).send().await;
            match sent {
                Ok(r) => break r,
                Err(e) if attempt < 4 && e.is_connect() => {
                    attempt += 1;
                    crate::publish::sleep(Duration::from_millis(50 << attempt)).await;
                }
                Err(e) => return Err(fail(format!("the secrets extension at {} cannot be reached: {e}", self.base))),
            }
        };
        let status = response.status();
        let body = response.bytes().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(fail(format!("the secrets extension answered {status}: {}", text.trim())));
        }
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| fail("the secrets extension's answer is not JSON".into()))?;
        let value = if ssm { &json["Parameter"]["Value"] } else { &json["SecretString"] };
        value.as_str().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).ok_or_else(|| {
            fail(if ssm { "the parameter has no value".into() } else { "the secret has no string value".into() })
        })
    }
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// CloudWatch metrics as Embedded Metric Format log lines (namespace
/// `knowedge`, dimension `function`): printing the line is all it takes for
/// Lambda's log delivery to turn it into metrics, with no SDK and no extra
/// request.
pub fn emit_metrics(function: &str, metrics: &[(&str, f64)]) {
    println!("{}", metrics_line(function, metrics, chrono::Utc::now().timestamp_millis()));
}

/// The EMF line [`emit_metrics`] prints.
pub fn metrics_line(function: &str, metrics: &[(&str, f64)], at_ms: i64) -> String {
    let definitions: Vec<_> = metrics.iter().map(|(n, _)| serde_json::json!({"Name": n, "Unit": "Count"})).collect();
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{"Namespace": METRICS_NAMESPACE, "Dimensions": [["function"]], "Metrics": definitions}],
        },
        "function": function,
    });
    for (name, value) in metrics {
        line[*name] = serde_json::json!(value);
    }
    line.to_string()
}

/// The CloudWatch namespace of the functions' metrics.
pub const METRICS_NAMESPACE: &str = "knowedge";

#[cfg(test)]
mod tests {
    use super::*;

    const DECLARED: &[Setting] = &[Setting::required("KNOWEDGE_LAKE"), Setting::secret("KNOWEDGE_PSEUDONYM_KEY")];

    #[tokio::test]
    async fn direct_values_win_and_missing_required_ones_are_named() {
        let env = |k: &str| match k {
            "KNOWEDGE_LAKE" => Some("/lake".to_owned()),
            "KNOWEDGE_PSEUDONYM_KEY" => Some("00".to_owned()),
            _ => None,
        };
        let s = Settings::load_with(DECLARED, env).await.unwrap();
        assert_eq!(s.get("KNOWEDGE_LAKE"), Some("/lake"));
        assert_eq!(s.get("KNOWEDGE_PSEUDONYM_KEY"), Some("00"));

        let env = |k: &str| (k == "KNOWEDGE_LAKE").then(|| "/lake".to_owned());
        let e = Settings::load_with(DECLARED, env).await.unwrap_err().to_string();
        assert!(e.contains("KNOWEDGE_PSEUDONYM_KEY is not set (nor KNOWEDGE_PSEUDONYM_KEY_SECRET)"), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_extension_is_a_clear_error() {
        let env = |k: &str| match k {
            "KNOWEDGE_LAKE" => Some("/lake".to_owned()),
            "KNOWEDGE_PSEUDONYM_KEY_SECRET" => Some("arn:aws:secretsmanager:eu-west-1:1:secret:p".to_owned()),
            // A port nothing listens on.
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT" => Some("9".to_owned()),
            _ => None,
        };
        let e = Settings::load_with(DECLARED, env).await.unwrap_err();
        assert!(matches!(e, Error::Secret { .. }), "{e}");
        assert!(e.to_string().contains("KNOWEDGE_PSEUDONYM_KEY"), "{e}");
    }

    #[test]
    fn metric_lines_are_embedded_metric_format() {
        let line = metrics_line("knowedge-train", &[("ModelsPromoted", 1.0)], 5);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "knowedge");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "ModelsPromoted");
        assert_eq!(v["ModelsPromoted"], 1.0);
        assert_eq!(v["function"], "knowedge-train");
    }
}
