//! Helpers shared by knowedge's integration tests.
//!
//! Tests find the built WebAssembly modules where cargo put them (honouring
//! `CARGO_TARGET_DIR`), pick free local ports, publish to a model store in a
//! directory the way the lake's model store does, damage artifacts, and
//! plant a lake for the privacy tests ([`lake`]).
//! Failures panic with a message saying what to run, as tests should.
#![allow(clippy::unwrap_used)]

pub mod business;
pub mod lake;
pub mod recording;
pub mod stand_in;

use std::path::{Path, PathBuf};

use knowedge_format::store::{Channel, artifact_name};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".."))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace
/// root when relative), else `target/` in the workspace root.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// A module built for `wasm32-wasip2` with the `edge` profile, or a panic saying how to build it.
pub fn edge_module(name: &str) -> PathBuf {
    let path = target_dir().join("wasm32-wasip2/edge").join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing: run `cargo xtask build` (or `cargo xtask test`) first", path.display());
    path
}

/// The compiled Spin component.
pub fn spin_wasm() -> PathBuf {
    edge_module("knowedge_edge_spin")
}

/// The compiled scoring component of `wit/scorer.wit`.
pub fn scorer_wasm() -> PathBuf {
    edge_module("knowedge_edge_scorer")
}

/// The read-only data sets beside the workspace (`../shared/data`).
pub fn shared_data() -> PathBuf {
    workspace_root().join("../shared/data")
}

/// A local TCP port free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Publishes `bytes` as `version` to a directory model store and points the
/// channel at it: the artifact first, then the pointer.
pub fn publish(store: &Path, channel: Channel, version: &str, bytes: &[u8]) {
    std::fs::write(store.join(artifact_name(version)), bytes).unwrap();
    std::fs::write(store.join(channel.pointer()), format!("{version}\n")).unwrap();
}

/// Seed of the key that signs the tests' learner tokens.
pub const TOKEN_SEED: [u8; 32] = [0x3c; 32];

/// `KNOWEDGE_TOKEN_KEYS` for [`TOKEN_SEED`].
pub fn token_keys_hex() -> String {
    knowedge_edge::token::public_key_hex(&TOKEN_SEED)
}

/// A learner token for `user`, valid for 15 minutes from now, for the default audience.
pub fn token(user: &str) -> String {
    token_issued(&TOKEN_SEED, user, knowedge_edge::token::DEFAULT_AUDIENCE, chrono::Duration::minutes(15), 0)
}

/// A learner token signed with `seed`, issued `minutes_ago` minutes ago, living `ttl`.
pub fn token_issued(seed: &[u8; 32], user: &str, audience: &str, ttl: chrono::Duration, minutes_ago: i64) -> String {
    let issued = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    knowedge_edge::token::issue(seed, user, audience, ttl, issued).unwrap()
}

/// The `Authorization` value a request for the learner a query names
/// (`user=…`) carries: that learner's token; `None` without `user`.
pub fn bearer_for_query(path_and_query: &str) -> Option<String> {
    let query = path_and_query.split_once('?')?.1;
    let user = query.split('&').find_map(|p| p.strip_prefix("user="))?;
    // Ids the API refuses anyway (over 128 characters) get no token.
    if user.len() > 128 {
        return None;
    }
    Some(format!("Bearer {}", token(user)))
}

/// `bytes` with one bit flipped in the middle (a tampered artifact).
pub fn tampered(mut bytes: Vec<u8>) -> Vec<u8> {
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_artifact_then_pointer() {
        let dir = std::env::temp_dir().join(format!("knowedge-test-support-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        publish(&dir, Channel::Sentiment, "s1", b"bytes");
        assert_eq!(std::fs::read(dir.join("s1.kwm")).unwrap(), b"bytes");
        assert_eq!(std::fs::read_to_string(dir.join("current-sentiment")).unwrap(), "s1\n");
        assert_ne!(tampered(b"abc".to_vec()), b"abc");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
