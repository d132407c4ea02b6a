//! The knowedge training function.
//!
//! Reads the event lake, builds the user-item interaction data, trains a
//! recipe and exports a signed model artifact to the model store:
//!
//! * `popularity`: items ranked by how many learners engaged with them,
//!   conversions weighted higher (also the fallback inside every model);
//! * `mf`: matrix factorisation learned with Bayesian personalised ranking
//!   (BPR) on [candle](https://github.com/huggingface/candle) (CPU by
//!   default; the `cuda` feature for training instances with a GPU).
//!
//! It runs as a scheduled AWS Lambda function (`knowedge-train` binary, an
//! EventBridge rule invokes it) and locally as `knowedge train`.
//!
//! Configuration (environment, for the Lambda function):
//!
//! | variable | meaning |
//! |---|---|
//! | `KNOWEDGE_LAKE` | lake location (directory or `s3://...`) |
//! | `KNOWEDGE_MODELS` | model store location (directory or `s3://...`) |
//! | `KNOWEDGE_SIGNING_KEY` | hex ed25519 seed that signs artifacts |
//! | `KNOWEDGE_RECIPE` | `mf` (default) or `popularity` |

pub mod bpr;
pub mod data;

use std::collections::BTreeMap;

use chrono::Utc;
use knowedge_lake::{Lake, ModelStore};
use knowedge_shared::artifact::{ArtifactBuilder, ModelKind, SigningKey};
use serde::Serialize;

pub use bpr::BprConfig;
pub use data::Dataset;

/// Errors of the training function.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Configuration is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The lake or model store failed.
    #[error("lake: {0}")]
    Lake(#[from] knowedge_lake::Error),
    /// candle failed while training.
    #[error("training: {0}")]
    Candle(#[from] candle_core::Error),
    /// The data cannot train a model (for instance no events).
    #[error("no usable training data: {0}")]
    NoData(String),
    /// The artifact could not be built.
    #[error("artifact: {0}")]
    Artifact(#[from] knowedge_shared::Error),
}

impl Error {
    /// Whether the scheduler should retry the run.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Lake(e) if e.is_retryable())
    }
}

/// Result alias of the training function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Recipe {
    /// Popularity ranking.
    Popularity,
    /// BPR matrix factorisation.
    Mf,
}

impl std::str::FromStr for Recipe {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "popularity" => Ok(Recipe::Popularity),
            "mf" => Ok(Recipe::Mf),
            other => Err(Error::Config(format!("unknown recipe `{other}`; expected `mf` or `popularity`"))),
        }
    }
}

/// Item popularity: per item, the sum over learners of their strongest
/// engagement weight with it (view 1, conversion 3).
pub fn popularity(ds: &Dataset) -> Vec<f32> {
    let mut scores = vec![0f32; ds.items.len()];
    for (u, items) in ds.positives.iter().enumerate() {
        for &i in items {
            let w = if ds.owned[u].binary_search(&i).is_ok() { 3.0 } else { 1.0 };
            scores[i as usize] += w;
        }
    }
    scores
}

/// Builds the signed artifact of `recipe` trained on `ds`.
pub fn train_artifact(
    ds: &Dataset,
    recipe: Recipe,
    bpr: &BprConfig,
    key: &SigningKey,
    version: &str,
) -> Result<Vec<u8>> {
    if ds.users.is_empty() || ds.items.is_empty() {
        return Err(Error::NoData("the lake holds no events with users and items".into()));
    }
    let kind = match recipe {
        Recipe::Popularity => ModelKind::Popularity,
        Recipe::Mf => ModelKind::Mf,
    };
    let dims = if recipe == Recipe::Mf { bpr.dims } else { 0 };
    let mut b = ArtifactBuilder::new(kind, dims);
    b.items(ds.items.clone()).users(ds.users.clone());
    b.popularity(popularity(ds));
    b.catalogue(ds.categories.clone(), ds.item_category.clone(), ds.item_price.clone());
    b.seen(&ds.owned);
    let mut params = BTreeMap::new();
    if recipe == Recipe::Mf {
        let (user_f, item_f, loss) = bpr::train(ds, bpr)?;
        b.factors(user_f, item_f);
        b.manifest_mut().metrics.insert("final_bpr_loss".into(), f64::from(loss));
        params = bpr.to_params();
    }
    let m = b.manifest_mut();
    m.model_id = version.to_owned();
    m.created_at = Utc::now();
    m.training = ds.window.clone();
    m.params = params;
    Ok(b.sign(key)?)
}

/// A new model version name: UTC time and recipe.
pub fn new_version(recipe: Recipe) -> String {
    let now = Utc::now();
    format!(
        "{}-{}",
        now.format("%Y%m%dT%H%M%S%3fZ"),
        match recipe {
            Recipe::Popularity => "popularity",
            Recipe::Mf => "mf",
        }
    )
}

/// What a training run did.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The version published.
    pub version: String,
    /// Recipe trained.
    pub recipe: Recipe,
    /// Events read.
    pub events: usize,
    /// Learners in the model.
    pub users: usize,
    /// Items in the model.
    pub items: usize,
    /// Artifact size in bytes.
    pub artifact_bytes: usize,
    /// Whether `current` now points at it.
    pub promoted: bool,
}

/// Reads the lake, trains, signs and publishes (and promotes, if asked).
pub async fn run(
    lake: &Lake,
    models: &ModelStore,
    key: &SigningKey,
    recipe: Recipe,
    bpr: &BprConfig,
    promote: bool,
) -> Result<Report> {
    let events = lake.read_events().await?;
    let catalogue = lake.catalogue().await?;
    let ds = Dataset::from_events(&events, &catalogue);
    let version = new_version(recipe);
    let artifact = train_artifact(&ds, recipe, bpr, key, &version)?;
    let artifact_bytes = artifact.len();
    models.put(&version, artifact).await?;
    if promote {
        models.promote(&version).await?;
    }
    Ok(Report {
        version,
        recipe,
        events: events.len(),
        users: ds.users.len(),
        items: ds.items.len(),
        artifact_bytes,
        promoted: promote,
    })
}
