//! Publishing models into an edge's own key-value store.
//!
//! An edge that keeps its models in a key-value store (the Spin component's
//! store `models`) takes new ones over HTTP: `PUT /v1/admin/models/<key>`
//! with `Authorization: Bearer <publish key>`, artifact first, then the
//! pointer, as in the model store ([`knowedge_format::store`]). This module
//! holds the rules; the adapter reads and writes its store.
//!
//! * Publishing is off unless a publish key is configured (`403
//!   publishing_disabled`); a missing or wrong key is `401` (compared in
//!   constant time).
//! * The keys accepted are `<version>.kwm`, `current` and
//!   `current-sentiment` (anything else `400 unknown_object`); a body over
//!   [`MAX_ARTIFACT_BYTES`] is `413`.
//! * An artifact must verify with the edge's signing keys and its signed
//!   `model_id` must be the version its key names (`400 artifact_invalid`);
//!   a version already stored with other bytes is not replaced (`409
//!   version_exists`): a version is immutable, a retry with the same bytes
//!   succeeds.
//! * A pointer must name a version whose artifact is already stored and
//!   verifies, of the pointer's kind (`409 version_missing`,
//!   `version_invalid`), and must not go back to a version created before
//!   the one it replaces (`409 version_older`), the slot's rule
//!   ([`crate::slot`]): a deliberate rollback is a re-signed, newer version
//!   (`knowedge models rollback`).
//!
//! ```
//! use knowedge_edge::publish::{self, Publisher};
//! use knowedge_format::artifact::{ArtifactBuilder, ModelKind, SigningKey};
//!
//! let key = SigningKey::from_seed([1; 32]);
//! let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
//! b.items(vec!["a".into()]).popularity(vec![1.0]);
//! b.manifest_mut().model_id = "v1".into();
//! let artifact = b.sign(&key).unwrap();
//! let keys = key.public_key().into();
//! let publisher = Publisher { publish_key: Some("s3cret"), keys: Ok(&keys) };
//!
//! let mut store = std::collections::BTreeMap::<String, Vec<u8>>::new();
//! let put = |store: &mut std::collections::BTreeMap<String, Vec<u8>>, key: &str, body: &[u8]| {
//!     let read = |name: &str| Ok(store.get(name).cloned());
//!     let accepted = publisher.check("PUT", key, Some("Bearer s3cret"), body, read)?;
//!     let (name, value) = (accepted.key.clone(), accepted.value.to_vec());
//!     store.insert(name, value);
//!     Ok::<_, publish::Refusal>(())
//! };
//! // The pointer cannot come first.
//! assert_eq!(put(&mut store, "current", b"v1").unwrap_err().code(), "version_missing");
//! put(&mut store, "v1.kwm", &artifact).unwrap();
//! put(&mut store, "current", b"v1\n").unwrap();
//! assert_eq!(store["current"], b"v1");
//! ```

use knowedge_format::artifact::{self, KeySet, Manifest, ModelKind};
use knowedge_format::store::{self, Channel};
use sha2::{Digest, Sha256};

use crate::api::Response;

/// The route's prefix: the object's key follows it.
pub const PATH_PREFIX: &str = "/v1/admin/models/";
/// Largest body accepted: an artifact of tens of MB (the 8-bit factors of
/// 500,000 learners and items at 64 dimensions take 32 MB), small enough
/// that a guest holding it while it verifies it stays well within its
/// memory (the local host's limit is 256 MiB).
pub const MAX_ARTIFACT_BYTES: usize = 64 * 1024 * 1024;

/// The key of `path` if it is on the publish route.
pub fn object(path: &str) -> Option<&str> {
    path.strip_prefix(PATH_PREFIX)
}

/// What a key of the store names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key<'a> {
    /// `<version>.kwm`: a version's artifact.
    Artifact(&'a str),
    /// `current` or `current-sentiment`: a channel's pointer.
    Pointer(Channel),
}

impl<'a> Key<'a> {
    /// The key's meaning, if it is one the store accepts.
    pub fn parse(key: &'a str) -> Option<Self> {
        if let Some(channel) = Channel::ALL.into_iter().find(|c| c.pointer() == key) {
            return Some(Key::Pointer(channel));
        }
        let version = key.strip_suffix(store::EXTENSION)?.strip_suffix('.')?;
        store::is_valid_version(version).then_some(Key::Artifact(version))
    }
}

/// Why a publication is refused: each with its HTTP status and a stable code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No publish key is configured: publishing is off (`403`).
    Disabled,
    /// The route takes `PUT` only (`405`).
    MethodNotAllowed,
    /// No bearer key was sent (`401`).
    KeyRequired,
    /// The bearer key is not the publish key (`401`).
    KeyInvalid,
    /// The key is not one the store accepts (`400`).
    UnknownObject(String),
    /// The body is larger than [`MAX_ARTIFACT_BYTES`] (`413`).
    TooLarge,
    /// The edge has no valid signing keys to verify with; why (`503`).
    NoSigningKeys(String),
    /// The artifact does not verify or is not the version its key names; why (`400`).
    InvalidArtifact(String),
    /// The version is stored already, with other bytes (`409`).
    VersionExists(String),
    /// The pointer's body is not a version name (`400`).
    InvalidPointer,
    /// The pointer names a version whose artifact is not stored (`409`).
    VersionMissing(String),
    /// The pointer names a version whose stored artifact cannot be served; why (`409`).
    VersionInvalid(String, String),
    /// The pointer would go back to an older version (`409`).
    Older {
        /// The version named.
        version: String,
        /// The version the pointer names now.
        current: String,
    },
    /// The store could not be read or written; why (`503`).
    Store(String),
    /// A pointer read with `GET` is not set (`404`).
    NotSet(String),
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Disabled => 403,
            Refusal::MethodNotAllowed => 405,
            Refusal::KeyRequired | Refusal::KeyInvalid => 401,
            Refusal::UnknownObject(_) | Refusal::InvalidArtifact(_) | Refusal::InvalidPointer => 400,
            Refusal::TooLarge => 413,
            Refusal::VersionExists(_)
            | Refusal::VersionMissing(_)
            | Refusal::VersionInvalid(..)
            | Refusal::Older { .. } => 409,
            Refusal::NoSigningKeys(_) | Refusal::Store(_) => 503,
            Refusal::NotSet(_) => 404,
        }
    }

    /// A stable code for the JSON error answer.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Disabled => "publishing_disabled",
            Refusal::MethodNotAllowed => "method_not_allowed",
            Refusal::KeyRequired => "publish_key_required",
            Refusal::KeyInvalid => "publish_key_invalid",
            Refusal::UnknownObject(_) => "unknown_object",
            Refusal::TooLarge => "payload_too_large",
            Refusal::NoSigningKeys(_) => "signing_keys_missing",
            Refusal::InvalidArtifact(_) => "artifact_invalid",
            Refusal::VersionExists(_) => "version_exists",
            Refusal::InvalidPointer => "pointer_invalid",
            Refusal::VersionMissing(_) => "version_missing",
            Refusal::VersionInvalid(..) => "version_invalid",
            Refusal::Older { .. } => "version_older",
            Refusal::Store(_) => "store_unavailable",
            Refusal::NotSet(_) => "not_set",
        }
    }

    /// The JSON answer (with `WWW-Authenticate` for `401`, `Allow` for `405`).
    pub fn response(&self) -> Response {
        let mut r = Response::error(self.status(), self.code(), self);
        match self {
            Refusal::KeyRequired | Refusal::KeyInvalid => r.headers.push(("www-authenticate", "Bearer".to_owned())),
            Refusal::MethodNotAllowed => r.headers.push(("allow", "GET, PUT".to_owned())),
            _ => {}
        }
        r
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Disabled => f.write_str("publishing is off at this edge (no publish key is configured)"),
            Refusal::MethodNotAllowed => {
                f.write_str("models are published with PUT; pointers (not artifacts) can be read with GET")
            }
            Refusal::NotSet(key) => write!(f, "`{key:.140}` is not set"),
            Refusal::KeyRequired => f.write_str("publishing needs the publish key (Authorization: Bearer <key>)"),
            Refusal::KeyInvalid => f.write_str("the publish key is not valid"),
            Refusal::UnknownObject(key) => {
                write!(f, "`{key:.140}` is not a model object (`<version>.kwm`, `current`, `current-sentiment`)")
            }
            Refusal::TooLarge => write!(f, "the body is larger than {MAX_ARTIFACT_BYTES} bytes"),
            Refusal::NoSigningKeys(why) => write!(f, "this edge cannot verify artifacts: {why}"),
            Refusal::InvalidArtifact(why) => write!(f, "the artifact is refused: {why}"),
            Refusal::VersionExists(v) => write!(f, "version {v} is stored already, with other bytes"),
            Refusal::InvalidPointer => {
                f.write_str("a pointer's body is a version name (letters, digits, `-`, `_`, `.`)")
            }
            Refusal::VersionMissing(v) => write!(f, "version {v} is not stored: publish its artifact first"),
            Refusal::VersionInvalid(v, why) => write!(f, "version {v} cannot be served: {why}"),
            Refusal::Older { version, current } => write!(
                f,
                "version {version} was created before {current}, which the pointer names now; roll back by \
                 publishing a re-signed version (`knowedge models rollback`)"
            ),
            Refusal::Store(why) => write!(f, "the model store cannot be used now: {why}"),
        }
    }
}

/// What the adapter writes for an accepted publication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication<'b> {
    /// The key to write.
    pub key: String,
    /// Its value: the artifact, or the version a pointer names (trimmed).
    pub value: &'b [u8],
    /// The version concerned.
    pub version: String,
    /// The pointer's channel, for a pointer.
    pub channel: Option<Channel>,
}

impl Publication<'_> {
    /// The `200` answer once the value is written.
    pub fn response(&self) -> Response {
        let body = serde_json::json!({
            "stored": self.key,
            "version": self.version,
            "bytes": self.value.len(),
        });
        Response::relayed(200, body.to_string().as_bytes())
    }
}

/// What an edge publishes with: its publish key and its signing keys.
#[derive(Clone, Copy, Debug)]
pub struct Publisher<'a> {
    /// The publish key clients must send; `None`: publishing is off.
    pub publish_key: Option<&'a str>,
    /// The keys artifacts are verified with, or why there are none.
    pub keys: Result<&'a KeySet, &'a str>,
}

/// An object as the store holds it: its bytes, `None` if absent, or why it cannot be read.
pub type Read = Result<Option<Vec<u8>>, String>;

/// The answer to a pointer read: `{"pointer": …, "version": …}` (`version`
/// is null if the stored pointer is not a version name).
pub fn pointer_answer(key: &str, stored: &[u8]) -> Response {
    let body = serde_json::json!({"pointer": key, "version": store::parse_current(stored)});
    let mut r = Response::error(200, "", "");
    r.body = body.to_string();
    r
}

impl Publisher<'_> {
    /// Whether `authorization` (the header's value) carries the publish key.
    pub fn authorize(&self, authorization: Option<&str>) -> Result<(), Refusal> {
        let Some(expected) = self.publish_key.filter(|k| !k.trim().is_empty()) else {
            return Err(Refusal::Disabled);
        };
        let sent = authorization.and_then(crate::token::bearer).ok_or(Refusal::KeyRequired)?;
        if same_secret(sent, expected.trim()) { Ok(()) } else { Err(Refusal::KeyInvalid) }
    }

    /// `GET <PATH_PREFIX><pointer>` with the publish key: the pointer as
    /// stored, so a publisher can skip a model this edge serves already.
    /// Artifacts are not read back.
    pub fn pointer(
        &self,
        key: &str,
        authorization: Option<&str>,
        mut read: impl FnMut(&str) -> Read,
    ) -> Result<Vec<u8>, Refusal> {
        self.authorize(authorization)?;
        match Key::parse(key) {
            Some(Key::Pointer(channel)) => {
                read(channel.pointer()).map_err(Refusal::Store)?.ok_or_else(|| Refusal::NotSet(key.to_owned()))
            }
            Some(Key::Artifact(_)) => Err(Refusal::MethodNotAllowed),
            None => Err(Refusal::UnknownObject(key.to_owned())),
        }
    }

    /// Checks `PUT <PATH_PREFIX><key>` with `body` against the store, read
    /// with `read`: what to write, or why not (see the module docs).
    pub fn check<'b>(
        &self,
        method: &str,
        key: &str,
        authorization: Option<&str>,
        body: &'b [u8],
        mut read: impl FnMut(&str) -> Read,
    ) -> Result<Publication<'b>, Refusal> {
        if method != "PUT" {
            return Err(Refusal::MethodNotAllowed);
        }
        self.authorize(authorization)?;
        if body.len() > MAX_ARTIFACT_BYTES {
            return Err(Refusal::TooLarge);
        }
        let parsed = Key::parse(key).ok_or_else(|| Refusal::UnknownObject(key.to_owned()))?;
        let keys = self.keys.map_err(|why| Refusal::NoSigningKeys(why.to_owned()))?;
        match parsed {
            Key::Artifact(version) => {
                let manifest = verified(body, keys).map_err(Refusal::InvalidArtifact)?;
                if manifest.model_id != version {
                    return Err(Refusal::InvalidArtifact(format!(
                        "it holds model {:.128}, not version {version}",
                        manifest.model_id
                    )));
                }
                match read(key).map_err(Refusal::Store)? {
                    Some(stored) if stored != body => return Err(Refusal::VersionExists(version.to_owned())),
                    _ => {}
                }
                Ok(Publication { key: key.to_owned(), value: body, version: version.to_owned(), channel: None })
            }
            Key::Pointer(channel) => {
                let version = store::parse_current(body).ok_or(Refusal::InvalidPointer)?;
                let named = match stored(version, channel, keys, &mut read)? {
                    Ok(m) => m,
                    Err(why) => return Err(Refusal::VersionInvalid(version.to_owned(), why)),
                };
                let current = read(channel.pointer()).map_err(Refusal::Store)?;
                if let Some(current) = current.as_deref().and_then(store::parse_current)
                    && current != version
                    // A current version that is missing or does not verify sets no floor.
                    && let Ok(now) = stored(current, channel, keys, &mut read)?
                    && named.created_at < now.created_at
                {
                    return Err(Refusal::Older { version: version.to_owned(), current: current.to_owned() });
                }
                let value = version.as_bytes();
                Ok(Publication { key: key.to_owned(), value, version: version.to_owned(), channel: Some(channel) })
            }
        }
    }
}

/// The manifest of `version` as stored, if it can be served on `channel`
/// (inner `Err`: why not); `Err` if it is missing or the store cannot be read.
fn stored(
    version: &str,
    channel: Channel,
    keys: &KeySet,
    read: &mut impl FnMut(&str) -> Read,
) -> Result<Result<Manifest, String>, Refusal> {
    let bytes = read(&store::artifact_name(version))
        .map_err(Refusal::Store)?
        .ok_or_else(|| Refusal::VersionMissing(version.to_owned()))?;
    Ok(verified(&bytes, keys).and_then(|m| {
        if m.model_id != version {
            return Err(format!("its artifact holds model {:.128}", m.model_id));
        }
        match (channel, m.kind) {
            (Channel::Sentiment, ModelKind::Sentiment) => Ok(m),
            (Channel::Recommender, kind) if kind != ModelKind::Sentiment => Ok(m),
            (_, kind) => Err(format!("a {} model cannot be served as `{}`", kind.as_str(), channel.pointer())),
        }
    }))
}

/// The manifest of an artifact that verifies, or why it does not. One call
/// site of the verifier: inlined into several, it grew the Spin component by
/// tens of KiB.
#[inline(never)]
fn verified(bytes: &[u8], keys: &KeySet) -> Result<Manifest, String> {
    artifact::verify(bytes, keys).map_err(|e| e.to_string())
}

/// Whether two secrets are equal, in time independent of where they differ
/// (their SHA-256 digests are compared in full).
fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    let diff = x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;
    use knowedge_format::artifact::{ArtifactBuilder, SigningKey};

    use super::*;

    fn artifact(key: &SigningKey, id: &str, kind: ModelKind, minute: u32) -> Vec<u8> {
        let mut b = ArtifactBuilder::new(kind, 0);
        b.items(vec!["a".into(), "b".into()]).popularity(vec![1.0, 2.0]);
        b.manifest_mut().model_id = id.into();
        b.manifest_mut().created_at = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 12, minute, 0).unwrap();
        b.sign(key).unwrap()
    }

    struct Store(BTreeMap<String, Vec<u8>>);

    impl Store {
        fn put(&mut self, publisher: &Publisher<'_>, key: &str, body: &[u8]) -> Result<(), Refusal> {
            let accepted = publisher.check("PUT", key, Some("Bearer s3cret"), body, |n| Ok(self.0.get(n).cloned()))?;
            let (key, value) = (accepted.key.clone(), accepted.value.to_vec());
            self.0.insert(key, value);
            Ok(())
        }
    }

    #[test]
    fn pointers_are_read_back_with_the_publish_key_and_artifacts_are_not() {
        let key = SigningKey::from_seed([9; 32]);
        let keys = KeySet::new([key.public_key()]).unwrap();
        let publisher = Publisher { publish_key: Some("s3cret"), keys: Ok(&keys) };
        let stored: BTreeMap<String, Vec<u8>> = [("current".to_owned(), b"v1\n".to_vec())].into();
        let read = |n: &str| Ok(stored.get(n).cloned());
        assert_eq!(publisher.pointer("current", Some("Bearer s3cret"), read).unwrap(), b"v1\n");
        let answer = pointer_answer("current", b"v1\n");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&answer.body).unwrap()["version"], "v1");
        let refused = |r: Result<Vec<u8>, Refusal>| r.unwrap_err().status();
        assert_eq!(refused(publisher.pointer("current", Some("Bearer nope"), read)), 401);
        assert_eq!(refused(publisher.pointer("current-sentiment", Some("Bearer s3cret"), read)), 404);
        assert_eq!(refused(publisher.pointer("v1.kwm", Some("Bearer s3cret"), read)), 405);
    }

    fn code(r: Result<(), Refusal>) -> (u16, &'static str) {
        let refusal = r.unwrap_err();
        (refusal.status(), refusal.code())
    }

    #[test]
    fn keys_are_artifacts_or_pointers() {
        assert_eq!(Key::parse("current"), Some(Key::Pointer(Channel::Recommender)));
        assert_eq!(Key::parse("current-sentiment"), Some(Key::Pointer(Channel::Sentiment)));
        assert_eq!(Key::parse("20261203T1200Z-mf.kwm"), Some(Key::Artifact("20261203T1200Z-mf")));
        for bad in ["", ".kwm", "..kwm", "v1", "v1.txt", "a/b.kwm", "../x.kwm", "current.", "CURRENT"] {
            assert_eq!(Key::parse(bad), None, "{bad}");
        }
        assert_eq!(object("/v1/admin/models/current"), Some("current"));
        assert_eq!(object("/v1/recommend"), None);
    }

    #[test]
    fn only_the_publish_key_may_publish() {
        let keys = SigningKey::from_seed([1; 32]).public_key().into();
        let off = Publisher { publish_key: None, keys: Ok(&keys) };
        assert_eq!(off.authorize(Some("Bearer s3cret")), Err(Refusal::Disabled));
        assert_eq!(Publisher { publish_key: Some("  "), ..off }.authorize(Some("Bearer  ")), Err(Refusal::Disabled));
        let on = Publisher { publish_key: Some("s3cret"), keys: Ok(&keys) };
        assert_eq!(on.authorize(None), Err(Refusal::KeyRequired));
        assert_eq!(on.authorize(Some("Basic s3cret")), Err(Refusal::KeyRequired));
        assert_eq!(on.authorize(Some("Bearer s3cre")), Err(Refusal::KeyInvalid));
        assert_eq!(on.authorize(Some("Bearer s3cret")), Ok(()));
        assert_eq!(on.authorize(Some("bearer  s3cret ")), Ok(()));
        let r = on.check("POST", "current", Some("Bearer s3cret"), b"v1", |_| Ok(None)).unwrap_err();
        assert_eq!((r.status(), r.response().headers), (405, vec![("allow", "GET, PUT".to_owned())]));
        let r = on.check("PUT", "current", Some("Bearer nope"), b"v1", |_| Ok(None)).unwrap_err();
        assert_eq!(r.response().status, 401);
        assert!(r.response().headers.iter().any(|(n, _)| *n == "www-authenticate"));
        assert!(r.response().body.contains("publish_key_invalid"), "{}", r.response().body);
        assert!(same_secret("a", "a") && !same_secret("a", "b") && !same_secret("a", "aa"));
    }

    #[test]
    fn artifacts_must_verify_as_their_version() {
        let key = SigningKey::from_seed([1; 32]);
        let keys = key.public_key().into();
        let p = Publisher { publish_key: Some("s3cret"), keys: Ok(&keys) };
        let mut store = Store(BTreeMap::new());
        let v1 = artifact(&key, "v1", ModelKind::Popularity, 1);
        assert_eq!(code(store.put(&p, "v2.kwm", &v1)), (400, "artifact_invalid"));
        let mut tampered = v1.clone();
        let mid = tampered.len() / 2;
        tampered[mid] ^= 1;
        assert_eq!(code(store.put(&p, "v1.kwm", &tampered)), (400, "artifact_invalid"));
        let foreign = artifact(&SigningKey::from_seed([2; 32]), "v1", ModelKind::Popularity, 1);
        assert_eq!(code(store.put(&p, "v1.kwm", &foreign)), (400, "artifact_invalid"));
        assert_eq!(code(store.put(&p, "v1.kwm", b"junk")), (400, "artifact_invalid"));
        assert_eq!(code(store.put(&p, "v1.bin", &v1)), (400, "unknown_object"));
        let huge = vec![0; MAX_ARTIFACT_BYTES + 1];
        assert_eq!(code(store.put(&p, "v1.kwm", &huge)), (413, "payload_too_large"));
        assert!(store.0.is_empty());
        store.put(&p, "v1.kwm", &v1).unwrap();
        // A retry with the same bytes is fine; other bytes under the same version are not.
        store.put(&p, "v1.kwm", &v1).unwrap();
        let other = artifact(&key, "v1", ModelKind::Popularity, 5);
        assert_eq!(code(store.put(&p, "v1.kwm", &other)), (409, "version_exists"));
        assert_eq!(store.0["v1.kwm"], v1);
        // Without signing keys nothing is accepted.
        let blind = Publisher { keys: Err("KNOWEDGE_SIGNING_PUBLIC_KEY is not set"), ..p };
        assert_eq!(code(store.put(&blind, "v1.kwm", &v1)), (503, "signing_keys_missing"));
    }

    #[test]
    fn pointers_name_stored_newer_versions_of_their_kind() {
        let key = SigningKey::from_seed([1; 32]);
        let keys = key.public_key().into();
        let p = Publisher { publish_key: Some("s3cret"), keys: Ok(&keys) };
        let mut store = Store(BTreeMap::new());
        assert_eq!(code(store.put(&p, "current", b"v1")), (409, "version_missing"));
        assert_eq!(code(store.put(&p, "current", b"../v1")), (400, "pointer_invalid"));
        for (v, minute) in [("v1", 1), ("v2", 2)] {
            store.put(&p, &format!("{v}.kwm"), &artifact(&key, v, ModelKind::Popularity, minute)).unwrap();
        }
        store.put(&p, "s1.kwm", &artifact(&key, "s1", ModelKind::Sentiment, 1)).unwrap();
        // Each pointer takes its own kind only.
        assert_eq!(code(store.put(&p, "current", b"s1")), (409, "version_invalid"));
        assert_eq!(code(store.put(&p, "current-sentiment", b"v1")), (409, "version_invalid"));
        store.put(&p, "current-sentiment", b"s1").unwrap();
        // Forward, then not back; the same version again is fine.
        store.put(&p, "current", b"v1\n").unwrap();
        store.put(&p, "current", b"v2").unwrap();
        store.put(&p, "current", b"v2").unwrap();
        assert_eq!(code(store.put(&p, "current", b"v1")), (409, "version_older"));
        assert_eq!(store.0["current"], b"v2");
        // A stored artifact that no longer verifies (written behind the route's back) is refused.
        store.0.insert("v3.kwm".into(), b"junk".to_vec());
        assert_eq!(code(store.put(&p, "current", b"v3")), (409, "version_invalid"));
        // One renamed behind the route's back too.
        store.0.insert("v4.kwm".into(), artifact(&key, "v2", ModelKind::Popularity, 4));
        assert_eq!(code(store.put(&p, "current", b"v4")), (409, "version_invalid"));
        // A current version that no longer verifies sets no floor.
        store.0.insert("v2.kwm".into(), b"gone bad".to_vec());
        store.put(&p, "current", b"v1").unwrap();
        // A store that cannot be read refuses with 503.
        let r = p.check("PUT", "current", Some("Bearer s3cret"), b"v1", |_| Err("timeout".into())).unwrap_err();
        assert_eq!((r.status(), r.code()), (503, "store_unavailable"));
        // The answer names what was stored.
        let accepted = p.check("PUT", "current", Some("Bearer s3cret"), b" v1 ", |n| Ok(store.0.get(n).cloned()));
        let body = accepted.unwrap().response().body;
        assert!(body.contains(r#""stored":"current""#) && body.contains(r#""version":"v1""#), "{body}");
    }
}
