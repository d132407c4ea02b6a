use std::sync::Arc;

use bytes::Bytes;
use knowedge_shared::store;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::{Error, Result, open_store, open_store_with};

/// Where signed model artifacts are published (`<version>.kwm` plus the
/// `current` pointer, see [`knowedge_shared::store`]).
#[derive(Clone, Debug)]
pub struct ModelStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl ModelStore {
    /// Opens a model store (a local directory or an object store URL).
    pub fn open(location: &str) -> Result<Self> {
        let (store, prefix) = open_store(location)?;
        Ok(Self { store, prefix })
    }

    /// Opens a model store with explicit S3 settings (see [`open_store_with`]).
    pub fn open_with(location: &str, options: &[(&str, &str)]) -> Result<Self> {
        let (store, prefix) = open_store_with(location, options)?;
        Ok(Self { store, prefix })
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

    /// Points `current` at `version` (which must have been stored).
    pub async fn promote(&self, version: &str) -> Result<()> {
        self.store.head(&self.path(&store::artifact_name(version))).await?;
        self.store.put(&self.path(store::CURRENT), PutPayload::from(format!("{version}\n").into_bytes())).await?;
        Ok(())
    }

    /// Points the sentiment pointer ([`store::CURRENT_SENTIMENT`]) at `version` (which must have been stored).
    pub async fn promote_sentiment(&self, version: &str) -> Result<()> {
        self.store.head(&self.path(&store::artifact_name(version))).await?;
        let body = PutPayload::from(format!("{version}\n").into_bytes());
        self.store.put(&self.path(store::CURRENT_SENTIMENT), body).await?;
        Ok(())
    }

    /// Stores a sentiment artifact and points [`store::CURRENT_SENTIMENT`] at it
    /// (`current`, the recommendation model, is left alone).
    pub async fn publish_sentiment(&self, version: &str, artifact: Vec<u8>) -> Result<()> {
        self.put(version, artifact).await?;
        self.promote_sentiment(version).await
    }

    /// The version the sentiment pointer names, if any.
    pub async fn current_sentiment_version(&self) -> Result<Option<String>> {
        match self.store.get(&self.path(store::CURRENT_SENTIMENT)).await {
            Ok(r) => {
                let bytes = r.bytes().await?;
                Ok(store::parse_current(&bytes).map(str::to_owned))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores an artifact and makes it current.
    pub async fn publish(&self, version: &str, artifact: Vec<u8>) -> Result<()> {
        self.put(version, artifact).await?;
        self.promote(version).await
    }

    /// The current version, if any.
    pub async fn current_version(&self) -> Result<Option<String>> {
        match self.store.get(&self.path(store::CURRENT)).await {
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
}
