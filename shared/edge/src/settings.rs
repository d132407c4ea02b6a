//! Names of the settings every edge adapter reads (environment variables,
//! Workers vars and secrets; Spin variables use them without `KNOWEDGE_`,
//! in lower case). Defined once so that the adapters and the local host agree.

/// Hex ed25519 public keys that model artifacts may be signed with (comma
/// separated; the artifact names its key by id, so keys can be rotated).
pub const PUBLIC_KEY_VAR: &str = "KNOWEDGE_SIGNING_PUBLIC_KEY";
/// Hex pseudonymisation key.
pub const PSEUDONYM_KEY_VAR: &str = "KNOWEDGE_PSEUDONYM_KEY";
/// The A/B experiment (JSON, see [`crate::experiment`]).
pub const EXPERIMENT_VAR: &str = "KNOWEDGE_EXPERIMENT";
/// The ingestion endpoint `POST /v1/events` forwards to (a full URL).
pub const INGEST_URL_VAR: &str = "KNOWEDGE_INGEST_URL";
/// The edge's ingest API key (scope `events.write`).
pub const INGEST_KEY_VAR: &str = "KNOWEDGE_INGEST_KEY";

/// Hex Ed25519 public keys learner tokens are verified with, comma separated (see [`crate::token`]).
pub const TOKEN_KEYS_VAR: &str = "KNOWEDGE_TOKEN_KEYS";
/// The audience learner tokens must name (default [`crate::token::DEFAULT_AUDIENCE`]).
pub const TOKEN_AUDIENCE_VAR: &str = "KNOWEDGE_TOKEN_AUDIENCE";
/// Origins browsers may call the edge from, comma separated (`*` for any).
pub const CORS_ORIGINS_VAR: &str = "KNOWEDGE_CORS_ORIGINS";

/// The key clients must send to publish models into the edge's own store
/// (`PUT /v1/admin/models/<key>`, see [`crate::publish`]); unset: publishing is off.
pub const PUBLISH_KEY_VAR: &str = "KNOWEDGE_PUBLISH_KEY";

/// Every setting [`Loaded::load`] reads.
pub const EDGE_SETTINGS: [&str; 6] =
    [PUBLIC_KEY_VAR, PSEUDONYM_KEY_VAR, EXPERIMENT_VAR, TOKEN_KEYS_VAR, TOKEN_AUDIENCE_VAR, CORS_ORIGINS_VAR];

/// The edge's settings, parsed again only when their values change:
/// adapters read settings per request, and parsing keys (point
/// decompressions) and the experiment is not free.
///
/// ```
/// use knowedge_edge::settings::{Loaded, CORS_ORIGINS_VAR};
///
/// let mut loaded = Loaded::default();
/// let problems = loaded.load(|name| (name == CORS_ORIGINS_VAR).then(|| "https://a.example".to_owned()));
/// assert!(problems.is_empty());
/// assert!(loaded.config().cors.allows("https://a.example"));
/// assert!(loaded.keys().is_err()); // no signing key set
/// ```
#[derive(Debug)]
pub struct Loaded {
    values: Option<Vec<Option<String>>>,
    config: crate::api::EdgeConfig,
    keys: Result<knowedge_format::artifact::KeySet, String>,
}

impl Default for Loaded {
    fn default() -> Self {
        Self {
            values: None,
            config: crate::api::EdgeConfig::default(),
            keys: Err(format!("{PUBLIC_KEY_VAR} is not set")),
        }
    }
}

impl Loaded {
    /// Reads every setting with `get` (`None` or blank: unset) and parses
    /// them if any value changed. Returns what is wrong with them, only when
    /// they changed (so an adapter logs each problem once); a setting in
    /// error is left out (no experiment, no token keys, no pseudonym key).
    pub fn load(&mut self, get: impl Fn(&str) -> Option<String>) -> Vec<String> {
        let values: Vec<Option<String>> =
            EDGE_SETTINGS.iter().map(|name| get(name).filter(|v| !v.trim().is_empty())).collect();
        if self.values.as_ref() == Some(&values) {
            return Vec::new();
        }
        let value = |name: &str| EDGE_SETTINGS.iter().position(|n| *n == name).and_then(|i| values[i].as_deref());
        let mut problems = Vec::new();
        self.keys = match value(PUBLIC_KEY_VAR) {
            None => Err(format!("{PUBLIC_KEY_VAR} is not set")),
            Some(list) => {
                knowedge_format::artifact::KeySet::from_hex_list(list).map_err(|e| format!("{PUBLIC_KEY_VAR}: {e}"))
            }
        };
        if let Err(e) = &self.keys
            && value(PUBLIC_KEY_VAR).is_some()
        {
            problems.push(e.clone());
        }
        let mut note = |name: &str, e: String| problems.push(format!("{name}: {e}"));
        let pseudonymizer = value(PSEUDONYM_KEY_VAR).and_then(|h| {
            knowedge_format::pseudonym::Pseudonymizer::from_hex(h)
                .map_err(|e| note(PSEUDONYM_KEY_VAR, e.to_string()))
                .ok()
        });
        let experiment = value(EXPERIMENT_VAR).and_then(|t| {
            crate::experiment::Experiment::from_json(t).map_err(|e| note(EXPERIMENT_VAR, e.to_string())).ok()
        });
        let tokens = value(TOKEN_KEYS_VAR).and_then(|k| {
            crate::token::TokenKeys::from_settings(k, value(TOKEN_AUDIENCE_VAR))
                .map_err(|e| note(TOKEN_KEYS_VAR, e.to_string()))
                .ok()
        });
        let cors = value(CORS_ORIGINS_VAR).map(knowedge_format::cors::Cors::from_list).unwrap_or_default();
        self.config = crate::api::EdgeConfig { pseudonymizer, experiment, tokens, cors, ..Default::default() };
        self.values = Some(values);
        problems
    }

    /// The configuration from the last [`load`](Self::load); the adapter adds
    /// the request's id and the time.
    pub fn config(&self) -> crate::api::EdgeConfig {
        self.config.clone()
    }

    /// The keys model artifacts must be signed with, or why there are none.
    pub fn keys(&self) -> Result<knowedge_format::artifact::KeySet, String> {
        self.keys.clone()
    }
}

/// The Spin variable of a setting: its name without `KNOWEDGE_`, in lower
/// case (`KNOWEDGE_PSEUDONYM_KEY` → `pseudonym_key`).
pub fn spin_variable(name: &str) -> String {
    name.strip_prefix("KNOWEDGE_").unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    #[test]
    fn spin_variables_drop_the_prefix() {
        assert_eq!(super::spin_variable(super::PSEUDONYM_KEY_VAR), "pseudonym_key");
    }
}
