use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use knowedge_format::store::{self, Channel};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::audit::AuditAction;
use crate::{Error, Lake, Result, open_store, open_store_with};

/// Where signed model artifacts are published (`<version>.kwm` plus one
/// pointer per [`Channel`], see [`knowedge_format::store`]).
#[derive(Clone, Debug)]
pub struct ModelStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// Where promotions are recorded, and as whom.
    audit: Option<(Lake, String)>,
}

impl ModelStore {
    /// Opens a model store (a local directory or an object store URL).
    pub fn open(location: &str) -> Result<Self> {
        let (store, prefix) = open_store(location)?;
        Ok(Self { store, prefix, audit: None })
    }

    /// A model store on an existing object store under `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Self { store, prefix, audit: None }
    }

    /// Opens a model store with explicit S3 settings (see [`open_store_with`]).
    pub fn open_with(location: &str, options: &[(&str, &str)]) -> Result<Self> {
        let (store, prefix) = open_store_with(location, options)?;
        Ok(Self { store, prefix, audit: None })
    }

    /// Records every promotion in `lake`'s audit log as `key_name` (a
    /// `model_promotion` record: channel pointer, version, previous version).
    pub fn with_audit(mut self, lake: Lake, key_name: impl Into<String>) -> Self {
        self.audit = Some((lake, key_name.into()));
        self
    }

    /// Whether promotions are recorded in an audit log.
    pub fn is_audited(&self) -> bool {
        self.audit.is_some()
    }

    fn path(&self, name: &str) -> Path {
        self.prefix.clone().join(name)
    }

    /// Stores an artifact under `version` without making it current.
    pub async fn put(&self, version: &str, artifact: Vec<u8>) -> Result<()> {
        if !store::is_valid_version(version) {
            return Err(Error::Location { url: version.to_owned(), reason: "not a valid model version name".into() });
        }
        self.store.put(&self.path(&store::artifact_name(version)), PutPayload::from(artifact)).await?;
        Ok(())
    }

    /// Points the channel's pointer at `version` (which must have been
    /// stored); the other channels' pointers are left alone. With an audit
    /// log ([`ModelStore::with_audit`]) the promotion is recorded once the
    /// pointer is written; an error then means the promotion happened but
    /// is not recorded.
    pub async fn promote(&self, channel: Channel, version: &str) -> Result<()> {
        self.store.head(&self.path(&store::artifact_name(version))).await?;
        let previous = match &self.audit {
            Some(_) => self.current(channel).await?,
            None => None,
        };
        let body = PutPayload::from(format!("{version}\n").into_bytes());
        self.store.put(&self.path(channel.pointer()), body).await?;
        if let Some((lake, key_name)) = &self.audit {
            let details = serde_json::json!({"channel": channel.pointer(), "version": version, "previous": previous});
            lake.audit_append(AuditAction::ModelPromotion, key_name, details).await?;
        }
        Ok(())
    }

    /// Stores an artifact and points the channel at it: the artifact first,
    /// then the pointer, so a reader never sees a pointer to nothing.
    pub async fn publish(&self, channel: Channel, version: &str, artifact: Vec<u8>) -> Result<()> {
        self.put(version, artifact).await?;
        self.promote(channel, version).await
    }

    /// The version the channel's pointer names, if any.
    pub async fn current(&self, channel: Channel) -> Result<Option<String>> {
        match self.store.get(&self.path(channel.pointer())).await {
            Ok(r) => {
                let bytes = r.bytes().await?;
                Ok(store::parse_current(&bytes).map(str::to_owned))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The bytes of a stored version.
    pub async fn get(&self, version: &str) -> Result<Bytes> {
        Ok(self.store.get(&self.path(&store::artifact_name(version))).await?.bytes().await?)
    }

    /// Every stored version (`<version>.kwm` directly in the store), sorted.
    pub async fn versions(&self) -> Result<Vec<String>> {
        let objects: Vec<_> = self.store.list(Some(&self.prefix)).try_collect().await?;
        let prefix_parts = self.prefix.parts().count();
        let mut out: Vec<String> = objects
            .iter()
            .filter(|o| o.location.parts().count() == prefix_parts + 1)
            .filter_map(|o| o.location.filename()?.strip_suffix(&format!(".{}", store::EXTENSION)).map(str::to_owned))
            .filter(|v| store::is_valid_version(v))
            .collect();
        out.sort();
        Ok(out)
    }
}
