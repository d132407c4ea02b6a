//! The knowedge training function.
//!
//! Reads the event lake, builds the user-item interaction data, trains a
//! recipe and exports a signed model artifact to the model store:
//!
//! * `popularity`: items ranked by how many learners engaged with them,
//!   conversions weighted higher (also the fallback inside every model);
//! * `mf`: matrix factorisation learned with Bayesian personalised ranking
//!   (BPR) on [candle](https://github.com/huggingface/candle) (CPU by
//!   default; the `cuda` feature for training instances with a GPU);
//! * every other recipe of the registry, [`Recipe`] (`trending`, `itemknn`,
//!   `rp3beta`, `timeknn`, `ease`, `multvae`, `content`, `hybrid`).
//!
//! [`pipeline::run`] is the one training run (read the lake, fit, gate,
//! export, publish, promote, score new reviews) that the Lambda function,
//! `knowedge train` and `knowedge dev` all call. It promotes the new model to
//! `current` only if it beats the current one on the latest validation
//! window ([`schedule`]); the window metrics go into the manifest. [`recbole`], [`eval`] and [`offline`]
//! evaluate the same recipes on public data sets (`knowedge eval`).
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
//! | `KNOWEDGE_RECIPE` | `mf` (default) or any recipe of [`Recipe::ALL`] |

pub mod bpr;
pub mod data;
pub mod deploy;
pub mod eval;
pub mod export;
pub mod linalg;
pub mod offline;
pub mod pipeline;
pub mod recbole;
pub mod recipes;
pub mod reviews;
pub mod schedule;
pub mod search;
pub mod sentiment;

use std::collections::BTreeMap;

use chrono::Utc;
use knowedge_format::artifact::SigningKey;

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
    #[error("lake")]
    Lake(#[from] knowedge_lake::Error),
    /// candle failed while training.
    #[error("training")]
    Candle(#[from] candle_core::Error),
    /// The data cannot train a model (for instance no events).
    #[error("no usable training data: {0}")]
    NoData(String),
    /// The artifact could not be built.
    #[error("artifact")]
    Artifact(#[from] knowedge_format::Error),
    /// A data file could not be read.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Input data is malformed or unusable.
    #[error("data: {0}")]
    Data(String),
}

impl Error {
    /// Whether the scheduler should retry the run.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Lake(e) if e.is_retryable())
    }
}

/// An error with its causes in one line (see [`knowedge_format::error::chain`]).
pub fn error_chain(e: &Error) -> String {
    knowedge_format::error::chain(e)
}

/// Result alias of the training function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use recipes::Recipe;

/// The recipe configuration for lake runs: the defaults, with BPR's settings from `bpr`.
pub fn lake_config(bpr: &BprConfig) -> recipes::Config {
    recipes::Config {
        bpr_dims: bpr.dims,
        bpr_epochs: bpr.epochs,
        bpr_lr: bpr.lr,
        bpr_reg: bpr.reg,
        seed: bpr.seed,
        ..recipes::Config::default()
    }
}

/// Item popularity: per item, the sum over learners of their strongest
/// engagement weight with it (view 1, conversion 3); the fallback for
/// unknown learners in every artifact.
pub fn popularity(ds: &Dataset) -> Vec<f32> {
    recipes::popularity::counts(ds)
}

/// Builds the signed artifact of `recipe` trained on `ds`.
pub fn train_artifact(
    ds: &Dataset,
    recipe: Recipe,
    bpr: &BprConfig,
    key: &SigningKey,
    version: &str,
) -> Result<Vec<u8>> {
    train_artifact_with(ds, recipe, &lake_config(bpr), key, version, BTreeMap::new())
}

/// Builds the signed artifact of `recipe` trained on `ds` with `cfg`, with
/// `metrics` in the manifest. Learners' owned items are never recommended.
pub fn train_artifact_with(
    ds: &Dataset,
    recipe: Recipe,
    cfg: &recipes::Config,
    key: &SigningKey,
    version: &str,
    metrics: BTreeMap<String, f64>,
) -> Result<Vec<u8>> {
    if ds.users.is_empty() || ds.items.is_empty() {
        return Err(Error::NoData("the lake holds no events with users and items".into()));
    }
    let fitted = recipes::fit(recipe, ds, cfg, None)?;
    let mut params = cfg.params(recipe);
    if recipe == Recipe::Bpr {
        params.extend(cfg.bpr().to_params());
    }
    export::artifact(&fitted, ds, &ds.owned, None, Some(popularity(ds)), key, version, metrics, params)
}

/// A new model version name: UTC time and recipe.
pub fn new_version(recipe: Recipe) -> String {
    let now = Utc::now();
    format!("{}-{}", now.format("%Y%m%dT%H%M%S%3fZ"), recipe.spec().version_tag)
}
