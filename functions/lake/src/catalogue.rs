//! The item catalogue kept beside the events (`catalogue/items.json`).

use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::{Lake, Result};

/// One thing the platform sells or gives away.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogueItem {
    /// Item id, as used in events.
    pub id: String,
    /// Display title.
    pub title: String,
    /// Format: course, column, ebook, audio, live.
    pub format: String,
    /// Subject category.
    pub category: String,
    /// List price (0 = free).
    pub price: f64,
    /// ISO 4217 currency of `price`.
    pub currency: String,
}

const CATALOGUE: &str = "catalogue/items.json";

impl Lake {
    /// Replaces the catalogue.
    pub async fn put_catalogue(&self, items: &[CatalogueItem]) -> Result<()> {
        let body = serde_json::to_vec(items)?;
        self.store().put(&self.path(CATALOGUE), PutPayload::from(body)).await?;
        Ok(())
    }

    /// The catalogue (empty if none was stored).
    pub async fn catalogue(&self) -> Result<Vec<CatalogueItem>> {
        match self.store().get(&self.path(CATALOGUE)).await {
            Ok(r) => Ok(serde_json::from_slice(&r.bytes().await?)?),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }
}
