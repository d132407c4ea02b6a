//! Watching the model store and keeping the live directory the guest reads.
//!
//! Each store channel (recommender, sentiment) has a watcher holding the
//! core's [`ModelSlot`]: the same rules as the Spin component and the Worker
//! decide what is served. The host's part is I/O: it reads the store, and
//! when the slot accepts a new version it installs that artifact and then
//! the channel's pointer in the live directory (a model store too, which the
//! guest reads as its key-value store `models`, see [`crate::kv`]). A refused
//! or unreadable version never reaches the live directory from the store, so
//! every guest instance serves the last good model.
//!
//! The guest may publish into the live directory itself (its publish route,
//! checked by [`knowedge_edge::publish`]). Before each look at the store the
//! watcher takes a version published that way as the one served, so its
//! rollback floor covers it too: the store cannot then bring back an older
//! version, and a restart adopts the published version like any other.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use knowedge_edge::slot::{Event, ModelSlot, Servable, SlotStatus};
use knowedge_format::artifact::KeySet;
use knowedge_format::store::{Channel, artifact_name, parse_current};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::kv::write_atomically;
use crate::{Error, Result};

/// Subdirectory of the state directory holding the live models (the guest's key-value store `models`).
pub const LIVE_DIR: &str = "live";

/// Polls one channel's pointer in the model store and installs valid new
/// versions in the live directory.
pub(crate) struct ModelWatcher<M> {
    models_dir: PathBuf,
    live_dir: PathBuf,
    /// Held during a check, so checks never overlap.
    slot: Mutex<ModelSlot<M>>,
    /// Held while the live directory is written (shared with the guest's key-value store).
    live_lock: Arc<Mutex<()>>,
}

impl<M> std::fmt::Debug for ModelWatcher<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelWatcher")
            .field("models_dir", &self.models_dir)
            .field("live_dir", &self.live_dir)
            .finish_non_exhaustive()
    }
}

/// An object of a directory store: its bytes, `None` if absent, or why it cannot be read.
fn read(dir: &Path, name: &str) -> std::result::Result<Option<Vec<u8>>, String> {
    let path = dir.join(name);
    match fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // The object's name, not the host path: the status is served over HTTP.
        Err(e) => Err(e.kind().to_string()),
    }
}

impl<M: Servable + Send + Sync + 'static> ModelWatcher<M> {
    /// Creates the live directory and takes over what a previous run left
    /// there for this channel, if it still verifies.
    pub(crate) fn new(
        models_dir: &Path,
        state_dir: &Path,
        key: KeySet,
        channel: Channel,
        live_lock: &Arc<Mutex<()>>,
    ) -> Result<Self> {
        let live_dir = state_dir.join(LIVE_DIR);
        fs::create_dir_all(&live_dir).map_err(|source| Error::Io { path: live_dir.clone(), source })?;
        let mut slot = ModelSlot::new(channel, key);
        if let Some(version) = read(&live_dir, channel.pointer()).ok().flatten().as_deref().and_then(parse_current) {
            let version = version.to_owned();
            if let Ok(Some(bytes)) = read(&live_dir, &artifact_name(&version)) {
                if slot.adopt(&version, &bytes) {
                    info!(version, channel = channel.name(), "serving the live model left by a previous run");
                } else {
                    warn!(version, channel = channel.name(), "the live model left by a previous run does not verify");
                }
            }
        }
        slot.take_events();
        Ok(Self { models_dir: models_dir.to_owned(), live_dir, slot: Mutex::new(slot), live_lock: live_lock.clone() })
    }

    /// The live directory (the guest's key-value store `models`).
    pub(crate) fn live_dir(&self) -> &Path {
        &self.live_dir
    }

    /// A snapshot of the status.
    pub(crate) fn status(&self) -> SlotStatus {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner).status()
    }

    /// Checks the store once, on a blocking thread.
    pub(crate) async fn refresh(self: &Arc<Self>) {
        let watcher = self.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || watcher.check()).await {
            warn!(error = %e, "model check failed");
        }
    }

    /// Checks the store every `interval` until `stop` turns true or its sender is dropped.
    pub(crate) async fn poll(self: Arc<Self>, interval: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
                () = tokio::time::sleep(interval) => self.refresh().await,
            }
        }
    }

    /// One look at the store: the slot decides, the host installs what it accepted.
    fn check(&self) {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        let channel = slot.channel();
        let seen = self.follow_published(&mut slot);
        let mut fetched: Option<(String, Vec<u8>)> = None;
        slot.resolve(|name| {
            let object = read(&self.models_dir, name);
            if let Ok(Some(bytes)) = &object
                && name != channel.pointer()
            {
                fetched = Some((name.to_owned(), bytes.clone()));
            }
            object
        });
        for event in slot.take_events() {
            match event {
                Event::Swapped(version) => {
                    let Some((_, bytes)) = fetched.as_ref().filter(|(n, _)| *n == artifact_name(&version)) else {
                        continue;
                    };
                    match self.install(channel, &version, bytes, seen.as_deref()) {
                        Ok(true) => info!(version, channel = channel.name(), "model swapped in"),
                        Ok(false) => {
                            info!(version, "a version was published to the edge's store meanwhile; not installed")
                        }
                        Err(e) => warn!(version, error = %e, "cannot install the model in the live directory"),
                    }
                }
                Event::Refused(version, reason) => {
                    warn!(version, error = %reason, "refusing model artifact; keeping the live model");
                }
                Event::Failed(reason) => warn!(error = %reason, "model store check failed"),
            }
        }
    }

    /// Takes a version the guest published into the live directory (its
    /// pointer names another version than the slot serves) as served, if it
    /// verifies; its creation time becomes the slot's floor. Returns the
    /// version the live pointer names.
    fn follow_published(&self, slot: &mut ModelSlot<M>) -> Option<String> {
        let channel = slot.channel();
        let pointer = read(&self.live_dir, channel.pointer()).ok().flatten();
        let version = pointer.as_deref().and_then(parse_current)?.to_owned();
        let known =
            slot.serving().is_some_and(|(v, _)| *v == version) || slot.status().refused.as_deref() == Some(&version);
        if !known && let Ok(Some(bytes)) = read(&self.live_dir, &artifact_name(&version)) {
            if slot.adopt(&version, &bytes) {
                info!(version, channel = channel.name(), "serving the version published to the edge's store");
            } else {
                let error = slot.status().last_error.unwrap_or_default();
                warn!(version, channel = channel.name(), error, "refusing the version published to the edge's store");
            }
            slot.take_events();
        }
        Some(version)
    }

    /// Installs a version in the live directory: the artifact, then the
    /// pointer (each written to a temporary file, synced and renamed), then
    /// removes the channel's previous artifact. Installs nothing (false) if
    /// the live pointer no longer names `seen`, the version it named when
    /// the check began: the guest published another since, which the next
    /// check follows.
    fn install(&self, channel: Channel, version: &str, bytes: &[u8], seen: Option<&str>) -> std::io::Result<bool> {
        // The guest's store does not write meanwhile (it could name the artifact removed below).
        let _live = self.live_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let previous =
            read(&self.live_dir, channel.pointer()).ok().flatten().and_then(|p| parse_current(&p).map(str::to_owned));
        if previous.as_deref() != seen {
            return Ok(false);
        }
        let write = |name: &str, bytes: &[u8]| write_atomically(&self.live_dir, &self.live_dir.join(name), bytes);
        write(&artifact_name(version), bytes)?;
        write(channel.pointer(), version.as_bytes())?;
        if let Some(old) = previous.filter(|old| old != version) {
            // Another channel may serve the same version (it never should); keep it then.
            let shared = Channel::ALL.iter().filter(|c| **c != channel).any(|c| {
                read(&self.live_dir, c.pointer()).ok().flatten().as_deref().and_then(parse_current)
                    == Some(old.as_str())
            });
            if !shared {
                let _ = fs::remove_file(self.live_dir.join(artifact_name(&old)));
            }
        }
        Ok(true)
    }
}
