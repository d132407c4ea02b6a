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
//! * every other recipe of [`recipes`] (`trending`, `itemknn`, `rp3beta`,
//!   `ease`, `multvae`, `content`, `hybrid`).
//!
//! A scheduled run promotes the new model to `current` only if it beats the
//! current one on the latest validation window ([`schedule`]); the window
//! metrics go into the manifest. [`recbole`], [`eval`] and [`offline`]
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
//! | `KNOWEDGE_RECIPE` | `mf` (default), `popularity`, or any recipe of [`recipes::ALL`] |

pub mod bpr;
pub mod data;
pub mod eval;
pub mod linalg;
pub mod offline;
pub mod recbole;
pub mod recipes;
pub mod reviews;
pub mod schedule;
pub mod search;
pub mod sentiment;

use std::collections::BTreeMap;

use chrono::Utc;
use knowedge_lake::{Lake, ModelStore};
use knowedge_shared::artifact::SigningKey;
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
    /// A data file could not be read.
    #[error("{}: {source}", path.display())]
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
    /// Time-decayed popularity.
    Trending,
    /// Cosine item-kNN.
    ItemKnn,
    /// RP3beta item-item.
    Rp3Beta,
    /// EASE.
    Ease,
    /// Mult-VAE.
    MultVae,
    /// TF-IDF content-based.
    Content,
    /// Hybrid of item-item recipes and popularity.
    Hybrid,
}

impl Recipe {
    /// The recipe's name in [`recipes`] (`mf` is `bpr` there).
    pub fn recipe_name(self) -> &'static str {
        match self {
            Recipe::Popularity => "popularity",
            Recipe::Mf => "bpr",
            Recipe::Trending => "trending",
            Recipe::ItemKnn => "itemknn",
            Recipe::Rp3Beta => "rp3beta",
            Recipe::Ease => "ease",
            Recipe::MultVae => "multvae",
            Recipe::Content => "content",
            Recipe::Hybrid => "hybrid",
        }
    }
}

impl std::str::FromStr for Recipe {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "popularity" => Recipe::Popularity,
            "mf" | "bpr" => Recipe::Mf,
            "trending" => Recipe::Trending,
            "itemknn" => Recipe::ItemKnn,
            "rp3beta" => Recipe::Rp3Beta,
            "ease" => Recipe::Ease,
            "multvae" => Recipe::MultVae,
            "content" => Recipe::Content,
            "hybrid" => Recipe::Hybrid,
            other => {
                return Err(Error::Config(format!(
                    "unknown recipe `{other}`; expected `mf` or one of {}",
                    recipes::ALL.join(", ")
                )));
            }
        })
    }
}

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
    let name = recipe.recipe_name();
    let fitted = match recipe {
        Recipe::Popularity => recipes::Fitted::Scores(popularity(ds)),
        _ => recipes::fit(name, ds, cfg, None)?,
    };
    let mut params = cfg.params(name);
    if recipe == Recipe::Mf {
        params.extend(cfg.bpr().to_params());
    }
    // The fallback for unknown learners keeps conversions weighted higher.
    offline::export(&fitted, ds, &ds.owned, None, Some(popularity(ds)), key, version, metrics, params)
}

/// A new model version name: UTC time and recipe.
pub fn new_version(recipe: Recipe) -> String {
    let now = Utc::now();
    format!(
        "{}-{}",
        now.format("%Y%m%dT%H%M%S%3fZ"),
        match recipe {
            Recipe::Mf => "mf",
            other => other.recipe_name(),
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
    /// The new model's NDCG@10 on the latest validation window (trained before it).
    pub valid_ndcg: Option<f64>,
    /// The current model's NDCG@10 on the same window, and what was measured.
    pub champion: Option<(String, f64)>,
    /// Why it was or was not promoted.
    pub decision: String,
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
    if ds.users.is_empty() || ds.items.is_empty() {
        return Err(Error::NoData("the lake holds no events with users and items".into()));
    }
    let cfg = lake_config(bpr);
    let mut final_cfg = cfg.clone();
    let version = new_version(recipe);
    let current = match models.current_version().await? {
        Some(v) => Some((models.get(&v).await?, v)),
        None => None,
    };
    // The gate: challenger and champion on the latest validation window.
    let mut metrics = BTreeMap::new();
    let (mut valid_ndcg, mut champion) = (None, None);
    let window = schedule::latest_window(&ds, schedule::WINDOW_FRACTION);
    let beats = match &window {
        Some(w) => {
            // Tuned on the window (the hybrid's weights); the artifact below is
            // refitted on all data with the same configuration.
            let (fitted, tuned) =
                offline::fit_for_refit(recipe.recipe_name(), &w.train, &cfg, Some(&w.valid), &mut Default::default())?;
            final_cfg = tuned;
            let m = eval::evaluate(&fitted, w.train.items.len(), &w.train.positives, None, &w.valid, schedule::K);
            metrics.extend(schedule::metric_entries(&m, "valid_"));
            metrics.insert("valid_users".into(), m.users as f64);
            valid_ndcg = Some(m.ndcg);
            match &current {
                Some((bytes, v)) => {
                    let (what, cm) = schedule::champion_metrics(bytes, &key.public_key(), w, &cfg)?;
                    metrics.insert("champion_ndcg@10".into(), cm.ndcg);
                    champion = Some((format!("{v}: {what}"), cm.ndcg));
                    m.ndcg > cm.ndcg
                }
                None => true,
            }
        }
        None => current.is_none(),
    };
    let decision = match (&champion, beats, promote) {
        (_, _, false) => "not promoted: promotion disabled".to_owned(),
        (None, true, true) => "promoted: no current model".to_owned(),
        (Some((c, n)), true, true) => format!("promoted: NDCG@10 {:.4} > {n:.4} of {c}", valid_ndcg.unwrap_or(0.0)),
        (Some((c, n)), false, true) => {
            format!("kept current: NDCG@10 {:.4} ≤ {n:.4} of {c}", valid_ndcg.unwrap_or(0.0))
        }
        (None, false, true) => "kept current: no validation window to compare on".to_owned(),
    };
    let artifact = train_artifact_with(&ds, recipe, &final_cfg, key, &version, metrics)?;
    let artifact_bytes = artifact.len();
    models.put(&version, artifact).await?;
    let promoted = promote && beats;
    if promoted {
        models.promote(&version).await?;
    }
    tracing::info!(%version, %decision, "training run");
    Ok(Report {
        version,
        recipe,
        events: events.len(),
        users: ds.users.len(),
        items: ds.items.len(),
        artifact_bytes,
        promoted,
        valid_ndcg,
        champion,
        decision,
    })
}
