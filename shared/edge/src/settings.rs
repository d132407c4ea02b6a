//! Names of the settings every edge adapter reads (environment variables,
//! Workers vars and secrets; Spin variables use them without `KNOWEDGE_`,
//! in lower case). Defined once so that the adapters and the local host agree.

/// Hex ed25519 public key that model artifacts must be signed with.
pub const PUBLIC_KEY_VAR: &str = "KNOWEDGE_SIGNING_PUBLIC_KEY";
/// Hex pseudonymisation key.
pub const PSEUDONYM_KEY_VAR: &str = "KNOWEDGE_PSEUDONYM_KEY";
/// The A/B experiment (JSON, see [`crate::experiment`]).
pub const EXPERIMENT_VAR: &str = "KNOWEDGE_EXPERIMENT";
/// The ingestion endpoint `POST /v1/events` forwards to (a full URL).
pub const INGEST_URL_VAR: &str = "KNOWEDGE_INGEST_URL";
/// The edge's ingest API key (scope `events.write`).
pub const INGEST_KEY_VAR: &str = "KNOWEDGE_INGEST_KEY";

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
