//! The model slot: which model an edge serves, decided without I/O.
//!
//! Every edge adapter keeps its models the same way, whatever its storage
//! (files for the Spin component and the local host, Workers KV for the
//! Worker). The adapter reads the channel's pointer and hands its content to
//! [`ModelSlot::on_pointer`], which answers with a [`Step`]: serve this
//! model, fetch this artifact, or no model can answer (and why). A fetched
//! artifact goes to [`ModelSlot::offer`], which verifies it (signature,
//! format version, requirements, through the model's own loader) and answers
//! again. The rules, the same everywhere:
//!
//! * the pointer names the version being served: serve it (no read, no check);
//! * it names a new version: fetch it; a valid artifact replaces the model
//!   served, an invalid one is **refused** and remembered (not fetched again
//!   while the pointer names it), and the last good model keeps answering;
//! * a fetched artifact must say it is the version the pointer names (its
//!   manifest's `model_id`), or it is refused: old bytes cannot be served
//!   under a new name;
//! * a version created before the newest one this slot has served is
//!   refused: whoever can write the store cannot roll the edge back to an
//!   older (perhaps since erased or poisoned) model. A deliberate rollback
//!   is a new version: the old model re-signed under a new name and a new
//!   time (`knowedge models rollback`), so only the signing key can roll back;
//! * the pointer or the artifact cannot be read, is missing, or holds no
//!   valid version: keep serving the last good model (nothing is refused:
//!   storage may catch up later);
//! * with no good model at all, [`Step::Unavailable`] carries the reason,
//!   which the API answers as `503`.
//!
//! [`Versions`] keeps the fixed versions that experiment variants name.
//!
//! ```
//! use knowedge_edge::slot::{ModelSlot, Step};
//! use knowedge_format::artifact::{ArtifactBuilder, ModelKind, SigningKey};
//! use knowedge_format::store::Channel;
//! use knowedge_scoring::model::Model;
//!
//! let key = SigningKey::from_seed([1; 32]);
//! let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
//! b.items(vec!["a".into()]);
//! b.popularity(vec![1.0]);
//! b.manifest_mut().model_id = "v1".into();
//! let artifact = b.sign(&key).unwrap();
//!
//! let mut slot = ModelSlot::<Model>::new(Channel::Recommender, key.public_key().into());
//! let Step::Fetch { version, object } = slot.on_pointer(Ok(Some(b"v1"))) else { panic!() };
//! assert_eq!(object, "v1.kwm");
//! assert!(matches!(slot.offer(&version, Ok(Some(&artifact))), Step::Serve(_)));
//! assert!(matches!(slot.on_pointer(Ok(Some(b"v1"))), Step::Serve(_)));
//! ```

use std::sync::Arc;

use chrono::{DateTime, Utc};
use knowedge_format::artifact::KeySet;
use knowedge_format::store::{self, Channel};
use knowedge_scoring::model::Model;
use knowedge_scoring::sentiment::SentimentModel;
use serde::Serialize;

/// A model an edge can serve: loaded from artifact bytes, verified on the way.
pub trait Servable: Sized {
    /// Verifies and loads an artifact.
    fn load(bytes: &[u8], keys: &KeySet) -> knowedge_format::Result<Self>;
    /// The model id its manifest holds.
    fn model_id(&self) -> &str;
    /// When it was created (exported and signed).
    fn created_at(&self) -> DateTime<Utc>;
}

impl Servable for Model {
    fn load(bytes: &[u8], keys: &KeySet) -> knowedge_format::Result<Self> {
        Model::from_artifact(bytes, keys)
    }

    fn model_id(&self) -> &str {
        &self.info().model_id
    }

    fn created_at(&self) -> DateTime<Utc> {
        self.info().created_at
    }
}

impl Servable for SentimentModel {
    fn load(bytes: &[u8], keys: &KeySet) -> knowedge_format::Result<Self> {
        SentimentModel::from_artifact(bytes, keys)
    }

    fn model_id(&self) -> &str {
        &self.info().model_id
    }

    fn created_at(&self) -> DateTime<Utc> {
        self.info().created_at
    }
}

/// Loads `bytes` as `version`: verified, and saying it is that version.
fn load_version<M: Servable>(version: &str, bytes: &[u8], keys: &KeySet) -> Result<M, String> {
    let model = M::load(bytes, keys).map_err(|e| e.to_string())?;
    if model.model_id() != version {
        return Err(format!("the artifact holds model {:.128}, not version {version}", model.model_id()));
    }
    Ok(model)
}

/// What the slot says to do next.
#[derive(Debug)]
pub enum Step<M> {
    /// Answer with this model.
    Serve(Arc<M>),
    /// Read `object` from the store and hand it to [`ModelSlot::offer`] for `version`.
    Fetch {
        /// The version the pointer names.
        version: String,
        /// The store object holding its artifact.
        object: String,
    },
    /// No model can answer, and why.
    Unavailable(String),
}

/// Which model is served, and what was refused last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SlotStatus {
    /// Version of the model served, if there is one.
    pub serving: Option<String>,
    /// The version most recently refused (its artifact did not verify).
    pub refused: Option<String>,
    /// Why the most recent refusal or failed read happened (kept after a
    /// later successful swap, until the next failure replaces it).
    pub last_error: Option<String>,
}

/// What a refusal or failure changed, for the adapter's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new version is served.
    Swapped(String),
    /// A version was refused, with the reason.
    Refused(String, String),
    /// Something could not be read; the reason.
    Failed(String),
}

/// The model of one store channel an edge serves (see the module docs).
#[derive(Debug)]
pub struct ModelSlot<M> {
    channel: Channel,
    key: KeySet,
    serving: Option<(String, Arc<M>)>,
    /// Creation time and version of the newest model served so far.
    newest: Option<(DateTime<Utc>, String)>,
    refused: Option<(String, String)>,
    last_error: Option<String>,
    events: Vec<Event>,
}

impl<M: Servable> ModelSlot<M> {
    /// An empty slot for `channel`, verifying artifacts with `key`.
    pub fn new(channel: Channel, key: KeySet) -> Self {
        Self { channel, key, serving: None, newest: None, refused: None, last_error: None, events: Vec::new() }
    }

    /// Refuses models created before `at` from now on (an adapter that
    /// keeps state across restarts passes the newest time it served).
    pub fn refuse_older_than(&mut self, at: DateTime<Utc>, version: &str) {
        if self.newest.as_ref().is_none_or(|(t, _)| *t < at) {
            self.newest = Some((at, version.to_owned()));
        }
    }

    /// Creation time and version of the newest model this slot has served.
    pub fn newest(&self) -> Option<(DateTime<Utc>, &str)> {
        self.newest.as_ref().map(|(t, v)| (*t, v.as_str()))
    }

    /// The channel this slot follows.
    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// The keys artifacts are verified with.
    pub fn key(&self) -> &KeySet {
        &self.key
    }

    /// Empties the slot if `key` differs from the slot's keys (a changed key
    /// set re-checks everything; the rollback floor stays).
    pub fn use_key(&mut self, key: &KeySet) {
        if *key != self.key {
            let newest = self.newest.take();
            *self = Self::new(self.channel, key.clone());
            self.newest = newest;
        }
    }

    /// The pointer's content as read now: `Ok(Some(bytes))`, `Ok(None)` if
    /// there is no pointer, `Err(reason)` if it could not be read.
    pub fn on_pointer(&mut self, pointer: Result<Option<&[u8]>, String>) -> Step<M> {
        let name = self.channel.pointer();
        let content = match pointer {
            Ok(Some(c)) => c,
            Ok(None) => return self.fallback(format!("the store has no `{name}` pointer yet")),
            Err(reason) => return self.fail(format!("cannot read `{name}`: {reason}")),
        };
        let Some(version) = store::parse_current(content) else {
            return self.fail(format!("`{name}` does not hold a valid version"));
        };
        if let Some((v, model)) = &self.serving
            && v == version
        {
            return Step::Serve(Arc::clone(model));
        }
        if let Some((v, reason)) = &self.refused
            && v == version
        {
            let reason = format!("version {v} was refused: {reason}");
            return self.fallback(reason);
        }
        Step::Fetch { version: version.to_owned(), object: store::artifact_name(version) }
    }

    /// The artifact of `version` as read: `Ok(Some(bytes))`, `Ok(None)` if
    /// missing, `Err(reason)` if unreadable. Verifies and serves it, or
    /// refuses it and keeps the last good model.
    pub fn offer(&mut self, version: &str, artifact: Result<Option<&[u8]>, String>) -> Step<M> {
        let object = store::artifact_name(version);
        let bytes = match artifact {
            Ok(Some(b)) => b,
            Ok(None) => return self.fail(format!("`{object}` is not in the store")),
            Err(reason) => return self.fail(format!("cannot read `{object}`: {reason}")),
        };
        let loaded = load_version::<M>(version, bytes, &self.key).and_then(|model| match &self.newest {
            Some((t, newest)) if model.created_at() < *t => Err(format!(
                "it was created at {}, before {newest} ({t}) which this edge has served; \
                 roll back by publishing a re-signed version (`knowedge models rollback`)",
                model.created_at()
            )),
            _ => Ok(model),
        });
        match loaded {
            Ok(model) => {
                let model = Arc::new(model);
                self.refuse_older_than(model.created_at(), version);
                self.serving = Some((version.to_owned(), Arc::clone(&model)));
                if self.refused.as_ref().is_some_and(|(v, _)| v == version) {
                    self.refused = None;
                }
                self.events.push(Event::Swapped(version.to_owned()));
                Step::Serve(model)
            }
            Err(reason) => {
                self.events.push(Event::Refused(version.to_owned(), reason.clone()));
                self.refused = Some((version.to_owned(), reason.clone()));
                self.last_error = Some(reason.clone());
                self.fallback(format!("version {version} was refused: {reason}"))
            }
        }
    }

    /// One look at a store that can be read synchronously: the pointer, then
    /// the artifact if the pointer names a new version. `read` returns an
    /// object's bytes, `None` if it does not exist, or why it cannot be read.
    pub fn resolve(&mut self, mut read: impl FnMut(&str) -> Result<Option<Vec<u8>>, String>) -> Step<M> {
        let pointer = read(self.channel.pointer());
        match self.on_pointer(pointer.as_ref().map(Option::as_deref).map_err(String::clone)) {
            Step::Fetch { version, object } => {
                let artifact = read(&object);
                self.offer(&version, artifact.as_ref().map(Option::as_deref).map_err(String::clone))
            }
            step => step,
        }
    }

    /// Serves `bytes` as `version` without a pointer (a model left by a
    /// previous run); false, with the reason recorded, if it does not verify.
    pub fn adopt(&mut self, version: &str, bytes: &[u8]) -> bool {
        matches!(self.offer(version, Ok(Some(bytes))), Step::Serve(_))
            && self.serving.as_ref().is_some_and(|(v, _)| v == version)
    }

    /// The model served, if any.
    pub fn serving(&self) -> Option<(&str, &Arc<M>)> {
        self.serving.as_ref().map(|(v, m)| (v.as_str(), m))
    }

    /// The slot's status.
    pub fn status(&self) -> SlotStatus {
        SlotStatus {
            serving: self.serving.as_ref().map(|(v, _)| v.clone()),
            refused: self.refused.as_ref().map(|(v, _)| v.clone()),
            last_error: self.last_error.clone(),
        }
    }

    /// What changed since the last call (swaps, refusals, failures), for the adapter to log.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// A failure to read: noted, and the last good model keeps answering.
    fn fail(&mut self, reason: String) -> Step<M> {
        if self.last_error.as_deref() != Some(reason.as_str()) {
            self.events.push(Event::Failed(reason.clone()));
        }
        self.last_error = Some(reason.clone());
        self.fallback(reason)
    }

    fn fallback(&self, reason: String) -> Step<M> {
        match &self.serving {
            Some((_, model)) => Step::Serve(Arc::clone(model)),
            None => Step::Unavailable(reason),
        }
    }
}

/// Fixed versions of a store (the models experiment variants name), each
/// verified once, the most recent few kept.
#[derive(Debug)]
pub struct Versions<M> {
    key: KeySet,
    capacity: usize,
    entries: Vec<(String, Arc<M>)>,
}

impl<M: Servable> Versions<M> {
    /// Keeps up to `capacity` versions verified with `key`.
    pub fn new(key: KeySet, capacity: usize) -> Self {
        Self { key, capacity: capacity.max(1), entries: Vec::new() }
    }

    /// Empties the cache if `key` differs from its key.
    pub fn use_key(&mut self, key: &KeySet) {
        if *key != self.key {
            *self = Self::new(key.clone(), self.capacity);
        }
    }

    /// The version if it is kept; else the object to fetch for it.
    pub fn get(&self, version: &str) -> Result<Arc<M>, String> {
        self.entries
            .iter()
            .find(|(v, _)| v == version)
            .map(|(_, m)| Arc::clone(m))
            .ok_or_else(|| store::artifact_name(version))
    }

    /// The version, read with `read` (as in [`ModelSlot::resolve`]) and verified unless it is kept already.
    pub fn resolve(
        &mut self,
        version: &str,
        read: impl FnOnce(&str) -> Result<Option<Vec<u8>>, String>,
    ) -> Result<Arc<M>, String> {
        match self.get(version) {
            Ok(model) => Ok(model),
            Err(object) => {
                let artifact = read(&object);
                self.offer(version, artifact.as_ref().map(Option::as_deref).map_err(String::clone))
            }
        }
    }

    /// The artifact of `version` as read: verified and kept, or the reason it cannot serve.
    pub fn offer(&mut self, version: &str, artifact: Result<Option<&[u8]>, String>) -> Result<Arc<M>, String> {
        let object = store::artifact_name(version);
        let bytes = match artifact {
            Ok(Some(b)) => b,
            Ok(None) => return Err(format!("`{object}` is not in the store")),
            Err(reason) => return Err(format!("cannot read `{object}`: {reason}")),
        };
        let model =
            Arc::new(load_version::<M>(version, bytes, &self.key).map_err(|e| format!("version {version}: {e}"))?);
        if self.entries.len() >= self.capacity {
            self.entries.remove(0);
        }
        self.entries.push((version.to_owned(), Arc::clone(&model)));
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use knowedge_format::artifact::{ArtifactBuilder, ModelKind, SigningKey};

    use super::*;

    fn artifact(key: &SigningKey, id: &str) -> Vec<u8> {
        let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
        b.items(vec!["a".into(), "b".into()]);
        b.popularity(vec![1.0, 2.0]);
        b.manifest_mut().model_id = id.into();
        b.sign(key).unwrap()
    }

    fn id(step: &Step<Model>) -> String {
        match step {
            Step::Serve(m) => m.info().model_id.clone(),
            other => panic!("expected a model, got {other:?}"),
        }
    }

    /// Runs one request's worth of the protocol against an in-memory store.
    fn look(slot: &mut ModelSlot<Model>, store: &[(&str, Vec<u8>)]) -> Step<Model> {
        slot.resolve(|name| Ok(store.iter().find(|(n, _)| *n == name).map(|(_, b)| b.clone())))
    }

    #[test]
    fn serves_swaps_refuses_and_keeps_the_last_good_model() {
        let key = SigningKey::from_seed([4; 32]);
        let mut slot = ModelSlot::<Model>::new(Channel::Recommender, key.public_key().into());
        // Nothing published yet.
        assert!(matches!(look(&mut slot, &[]), Step::Unavailable(r) if r.contains("no `current`")));
        // A first version.
        let v1 = artifact(&key, "v1");
        let mut store = vec![("v1.kwm", v1.clone()), ("current", b"v1\n".to_vec())];
        assert_eq!(id(&look(&mut slot, &store)), "v1");
        assert_eq!(slot.take_events(), [Event::Swapped("v1".into())]);
        // Served again without a fetch.
        assert!(matches!(slot.on_pointer(Ok(Some(b"v1"))), Step::Serve(_)));
        // A tampered version is refused, v1 keeps answering, and it is not fetched again.
        let mut bad = artifact(&key, "v2");
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        store.push(("v2.kwm", bad));
        store[1].1 = b"v2".to_vec();
        assert_eq!(id(&look(&mut slot, &store)), "v1");
        let status = slot.status();
        assert_eq!((status.serving.as_deref(), status.refused.as_deref()), (Some("v1"), Some("v2")));
        assert!(status.last_error.unwrap().contains("signature"));
        assert!(matches!(slot.on_pointer(Ok(Some(b"v2"))), Step::Serve(_)), "refused versions are not fetched");
        // Signed by another key: refused too.
        store.push(("v3.kwm", artifact(&SigningKey::from_seed([5; 32]), "v3")));
        store[1].1 = b"v3".to_vec();
        assert_eq!(id(&look(&mut slot, &store)), "v1");
        // A missing artifact, an unreadable or invalid pointer: kept, nothing refused.
        store[1].1 = b"v4".to_vec();
        assert_eq!(id(&look(&mut slot, &store)), "v1");
        assert_eq!(slot.status().refused.as_deref(), Some("v3"));
        assert!(matches!(slot.on_pointer(Err("timeout".into())), Step::Serve(_)));
        assert!(matches!(slot.on_pointer(Ok(Some(b"../etc/passwd"))), Step::Serve(_)));
        assert!(slot.status().last_error.unwrap().contains("valid version"));
        // A good new version replaces v1.
        store.push(("v5.kwm", artifact(&key, "v5")));
        store[1].1 = b"v5".to_vec();
        assert_eq!(id(&look(&mut slot, &store)), "v5");
        assert_eq!(slot.status().serving.as_deref(), Some("v5"));
    }

    #[test]
    fn without_a_good_model_the_reason_is_given() {
        let key = SigningKey::from_seed([4; 32]);
        let mut slot = ModelSlot::<Model>::new(Channel::Recommender, key.public_key().into());
        let store = [("current", b"v1".to_vec()), ("v1.kwm", b"not an artifact".to_vec())];
        assert!(matches!(look(&mut slot, &store), Step::Unavailable(r) if r.contains("refused")));
        assert!(matches!(slot.on_pointer(Ok(Some(b"v1"))), Step::Unavailable(r) if r.contains("magic")));
        // A sentiment slot refuses a recommendation artifact.
        let mut s = ModelSlot::<SentimentModel>::new(Channel::Sentiment, key.public_key().into());
        assert!(!s.adopt("rec", &artifact(&key, "rec")));
        assert_eq!(s.status().refused.as_deref(), Some("rec"));
        // A new key empties the slot.
        assert!(slot.adopt("v9", &artifact(&key, "v9")));
        slot.use_key(&SigningKey::from_seed([6; 32]).public_key().into());
        assert_eq!(slot.status(), SlotStatus::default());
    }

    fn artifact_at(key: &SigningKey, id: &str, minute: u32) -> Vec<u8> {
        use chrono::TimeZone;
        let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
        b.items(vec!["a".into(), "b".into()]);
        b.popularity(vec![1.0, 2.0]);
        b.manifest_mut().model_id = id.into();
        b.manifest_mut().created_at = Utc.with_ymd_and_hms(2026, 12, 1, 12, minute, 0).unwrap();
        b.sign(key).unwrap()
    }

    #[test]
    fn older_versions_and_renamed_artifacts_are_refused() {
        let key = SigningKey::from_seed([4; 32]);
        let mut slot = ModelSlot::<Model>::new(Channel::Recommender, key.public_key().into());
        let (v1, v2) = (artifact_at(&key, "v1", 1), artifact_at(&key, "v2", 2));
        let mut store = vec![("v1.kwm", v1.clone()), ("v2.kwm", v2.clone()), ("current", b"v2".to_vec())];
        assert_eq!(id(&look(&mut slot, &store)), "v2");
        // The pointer rolled back to an older signed version: refused, v2 keeps answering.
        store[2].1 = b"v1".to_vec();
        assert_eq!(id(&look(&mut slot, &store)), "v2");
        assert!(slot.status().last_error.unwrap().contains("before v2"));
        // Old bytes under a new name: refused.
        store.push(("v3.kwm", v1.clone()));
        store[2].1 = b"v3".to_vec();
        assert_eq!(id(&look(&mut slot, &store)), "v2");
        assert!(slot.status().last_error.unwrap().contains("not version v3"));
        // A rollback re-signed as a new, newer version is served.
        store.push(("v4.kwm", artifact_at(&key, "v4", 3)));
        store[2].1 = b"v4".to_vec();
        assert_eq!(id(&look(&mut slot, &store)), "v4");
        // The floor survives a key change and can be set from outside.
        slot.use_key(&SigningKey::from_seed([6; 32]).public_key().into());
        assert_eq!(slot.newest().map(|(_, v)| v), Some("v4"));
        let mut fresh = ModelSlot::<Model>::new(Channel::Recommender, key.public_key().into());
        fresh.refuse_older_than(DateTime::<Utc>::MAX_UTC, "v9");
        assert!(!fresh.adopt("v4", &artifact_at(&key, "v4", 3)));
    }

    #[test]
    fn rotated_keys_are_accepted_by_key_id() {
        let (old, new) = (SigningKey::from_seed([1; 32]), SigningKey::from_seed([2; 32]));
        let set = KeySet::new([old.public_key(), new.public_key()]).unwrap();
        let mut slot = ModelSlot::<Model>::new(Channel::Recommender, set);
        assert!(slot.adopt("v1", &artifact_at(&old, "v1", 1)));
        assert!(slot.adopt("v2", &artifact_at(&new, "v2", 2)));
        assert!(!slot.adopt("v3", &artifact_at(&SigningKey::from_seed([3; 32]), "v3", 3)));
    }

    #[test]
    fn versions_are_verified_once_and_bounded() {
        let key = SigningKey::from_seed([4; 32]);
        let mut versions = Versions::<Model>::new(key.public_key().into(), 2);
        assert_eq!(versions.get("a").unwrap_err(), "a.kwm");
        for v in ["a", "b", "c"] {
            versions.offer(v, Ok(Some(&artifact(&key, v)))).unwrap();
        }
        assert!(versions.get("a").is_err() && versions.get("c").is_ok());
        assert!(versions.offer("d", Ok(None)).unwrap_err().contains("not in the store"));
        assert!(versions.offer("e", Ok(Some(b"junk"))).is_err());
        assert!(versions.offer("f", Ok(Some(&artifact(&key, "a")))).unwrap_err().contains("not version f"));
    }
}
