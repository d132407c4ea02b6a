//! The artifact a fitted recipe is served as: its tensors, the items and
//! (pseudonymous) users, the popularity fallback, the catalogue for business
//! filters, what each learner has seen, and a manifest with the training
//! window, metrics and parameters; signed. Training on the lake and offline
//! evaluation export through the same function.

use std::collections::BTreeMap;

use chrono::Utc;
use knowedge_format::artifact::{ArtifactBuilder, SigningKey};
use knowedge_format::pseudonym::Pseudonymizer;

use crate::recipes::{self, Fitted};
use crate::{Dataset, Result};

/// A signed artifact of a fitted model for `ds`'s users (pseudonymised with
/// `pseudonyms`), masking each user's `seen` items, with `metrics` and `params`
/// in the manifest. Unknown users get `fallback` (default: users per item).
#[allow(clippy::too_many_arguments)]
pub fn artifact(
    fitted: &Fitted,
    ds: &Dataset,
    seen: &[Vec<u32>],
    pseudonyms: Option<&Pseudonymizer>,
    fallback: Option<Vec<f32>>,
    key: &SigningKey,
    version: &str,
    metrics: BTreeMap<String, f64>,
    params: BTreeMap<String, serde_json::Value>,
) -> Result<Vec<u8>> {
    let mut b = ArtifactBuilder::new(fitted.kind(), fitted.dims());
    let users = match pseudonyms {
        Some(p) => ds.users.iter().map(|u| p.pseudonymize(u)).collect(),
        None => ds.users.clone(),
    };
    b.items(ds.items.clone()).users(users);
    b.popularity(fallback.unwrap_or_else(|| recipes::popularity::counts(ds)));
    if ds.item_category.len() == ds.items.len() {
        b.catalogue(ds.categories.clone(), ds.item_category.clone(), ds.item_price.clone());
    }
    b.seen(seen);
    fitted.export(&mut b)?;
    let m = b.manifest_mut();
    m.model_id = version.to_owned();
    m.created_at = Utc::now();
    m.training = ds.window.clone();
    m.metrics = metrics;
    m.params = params;
    Ok(b.sign(key)?)
}
