//! Watching the model store and swapping the live model.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use knowedge_shared::artifact::PublicKey;
use knowedge_shared::model::Model;
use knowedge_shared::sentiment::SentimentModel;
use knowedge_shared::store::{CURRENT, CURRENT_SENTIMENT, artifact_name, parse_current};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::{Error, Result};

/// Subdirectory of the state directory holding the live model (the guest's `/models`).
pub const LIVE_DIR: &str = "live";
/// File name of the live model in [`LIVE_DIR`].
pub const LIVE_MODEL: &str = "model.kwm";
/// File name of the live sentiment model in [`LIVE_DIR`] (the guest's `/models/sentiment.kwm`).
pub const LIVE_SENTIMENT_MODEL: &str = "sentiment.kwm";

/// One model the host keeps live: the store pointer it follows, the live
/// file it maintains, and how an artifact is verified before it is swapped in.
#[derive(Clone, Copy)]
pub(crate) struct Channel {
    /// Pointer object in the model store.
    pointer: &'static str,
    /// File name in the live directory.
    live_file: &'static str,
    /// Temporary file (in the state directory) the next live model is written to.
    staging: &'static str,
    /// Verifies an artifact with the code the guest uses; returns its model id.
    verify: fn(&[u8], &PublicKey) -> knowedge_shared::Result<String>,
}

/// The recommendation model: `current` -> `live/model.kwm`.
pub(crate) const RECOMMENDER: Channel = Channel {
    pointer: CURRENT,
    live_file: LIVE_MODEL,
    staging: "model.kwm.tmp",
    verify: |bytes, key| Model::from_artifact(bytes, key).map(|m| m.info().model_id.clone()),
};

/// The sentiment model: `current-sentiment` -> `live/sentiment.kwm`.
pub(crate) const SENTIMENT: Channel = Channel {
    pointer: CURRENT_SENTIMENT,
    live_file: LIVE_SENTIMENT_MODEL,
    staging: "sentiment.kwm.tmp",
    verify: |bytes, key| SentimentModel::from_artifact(bytes, key).map(|m| m.info().model_id.clone()),
};

/// Which model the host serves, and what it refused last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ModelStatus {
    /// Version (model id) of the live model, if there is one.
    pub serving: Option<String>,
    /// The version most recently refused (its artifact did not verify).
    pub refused: Option<String>,
    /// Why the most recent refusal or failed check happened (kept after a
    /// later successful swap, until the next failure replaces it).
    pub last_error: Option<String>,
}

/// A refused artifact: not checked again while `current` names the same bytes.
struct Refusal {
    version: String,
    digest: [u8; 32],
}

/// Polls a pointer of the store (`<models_dir>/current` or
/// `<models_dir>/current-sentiment`) and installs valid new versions as the live model.
pub(crate) struct ModelWatcher {
    channel: Channel,
    models_dir: PathBuf,
    state_dir: PathBuf,
    live_dir: PathBuf,
    key: PublicKey,
    status: RwLock<ModelStatus>,
    /// Held during a check, so checks never overlap.
    refusal: Mutex<Option<Refusal>>,
}

impl std::fmt::Debug for ModelWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelWatcher")
            .field("pointer", &self.channel.pointer)
            .field("models_dir", &self.models_dir)
            .field("live_dir", &self.live_dir)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl ModelWatcher {
    /// Creates the live directory and takes over a live model left by a previous run, if it is valid.
    pub(crate) fn new(models_dir: &Path, state_dir: &Path, key: PublicKey, channel: Channel) -> Result<Self> {
        let live_dir = state_dir.join(LIVE_DIR);
        fs::create_dir_all(&live_dir).map_err(|source| Error::Io { path: live_dir.clone(), source })?;
        let watcher = Self {
            channel,
            models_dir: models_dir.to_owned(),
            state_dir: state_dir.to_owned(),
            live_dir,
            key,
            status: RwLock::new(ModelStatus::default()),
            refusal: Mutex::new(None),
        };
        watcher.adopt_live_model();
        Ok(watcher)
    }

    /// The directory the guest sees as `/models`.
    pub(crate) fn live_dir(&self) -> &Path {
        &self.live_dir
    }

    /// A snapshot of the status.
    pub(crate) fn status(&self) -> ModelStatus {
        self.status.read().unwrap_or_else(PoisonError::into_inner).clone()
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

    /// Serves the live model of a previous run until the store says otherwise.
    fn adopt_live_model(&self) {
        let path = self.live_dir.join(self.channel.live_file);
        let Ok(bytes) = fs::read(&path) else { return };
        match (self.channel.verify)(&bytes, &self.key) {
            Ok(version) => {
                info!(version, file = self.channel.live_file, "serving the live model left by a previous run");
                self.update(|s| s.serving = Some(version));
            }
            Err(e) => self.note_failure(format!("live model {} is not valid: {e}", path.display())),
        }
    }

    /// One look at the store: installs the version `current` names if it is new and valid.
    fn check(&self) {
        let mut refusal = self.refusal.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(version) = self.current_version() else { return };
        if self.status().serving.as_deref() == Some(version.as_str()) {
            return;
        }
        let path = self.models_dir.join(artifact_name(&version));
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => return self.note_failure(format!("cannot read {}: {e}", path.display())),
        };
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if refusal.as_ref().is_some_and(|r| r.version == version && r.digest == digest) {
            return;
        }
        match (self.channel.verify)(&bytes, &self.key) {
            Ok(_) => match self.install(&bytes) {
                Ok(()) => {
                    info!(version, file = self.channel.live_file, "model swapped in");
                    *refusal = None;
                    self.update(|s| s.serving = Some(version));
                }
                Err(e) => self.note_failure(format!("cannot install version {version}: {e}")),
            },
            Err(e) => {
                warn!(version, error = %e, "refusing model artifact; keeping the live model");
                *refusal = Some(Refusal { version: version.clone(), digest });
                self.update(|s| {
                    s.refused = Some(version);
                    s.last_error = Some(e.to_string());
                });
            }
        }
    }

    /// The version `current` names; `None` (noting why) when there is none.
    fn current_version(&self) -> Option<String> {
        let path = self.models_dir.join(self.channel.pointer);
        match fs::read(&path) {
            Ok(content) => match parse_current(&content) {
                Some(version) => Some(version.to_owned()),
                None => {
                    self.note_failure(format!("{} does not hold a valid version", path.display()));
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                debug!(path = %path.display(), "no current model pointer yet");
                None
            }
            Err(e) => {
                self.note_failure(format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    }

    /// Replaces the live model atomically: write a temporary file, fsync, rename.
    fn install(&self, bytes: &[u8]) -> std::io::Result<()> {
        let staging = self.state_dir.join(self.channel.staging);
        let mut file = File::create(&staging)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&staging, self.live_dir.join(self.channel.live_file))?;
        // Make the rename itself durable where directories can be synced.
        if let Ok(dir) = File::open(&self.live_dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Records a failed check, logging it once per distinct message.
    fn note_failure(&self, message: String) {
        if self.status().last_error.as_deref() != Some(message.as_str()) {
            warn!(error = %message, "model store check failed");
        }
        self.update(|s| s.last_error = Some(message));
    }

    fn update(&self, change: impl FnOnce(&mut ModelStatus)) {
        change(&mut self.status.write().unwrap_or_else(PoisonError::into_inner));
    }
}
