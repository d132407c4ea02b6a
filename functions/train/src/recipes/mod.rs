//! Recommendation recipes: each learns from a [`Dataset`] and yields a
//! [`Fitted`] model in one of the three forms the shared artifact format
//! serves (the same scores for everyone, user and item factors, or sparse
//! item-item weights over the user's history).
//!
//! | recipe | what it learns | served as |
//! |---|---|---|
//! | `popularity` | users per item | `popularity` |
//! | `trending` | users per item, each weighted by `2^(-age / half_life)` | `popularity` |
//! | `itemknn` | cosine similarity with shrinkage, top-N neighbours | `itemitem` |
//! | `rp3beta` | random-walk item-item weights with popularity penalty | `itemitem` |
//! | `timeknn` | item-kNN over time-local co-occurrence (same-session engagement) | `itemitem` |
//! | `ease` | closed-form linear item-item autoencoder (EASE), top-N neighbours | `itemitem` |
//! | `bpr` | BPR matrix factorisation on candle | `mf` |
//! | `multvae` | Mult-VAE (variational autoencoder, multinomial likelihood) on candle | `mf` |
//! | `content` | TF-IDF over item text and attributes, cosine neighbours | `itemitem` |
//! | `hybrid` | EASE + RP3beta + content + popularity, weights tuned on validation | `itemitem` |

pub mod content;
pub mod ease;
pub mod hybrid;
pub mod knn;
pub mod popularity;
pub mod vae;

use std::collections::BTreeMap;

use knowedge_format::artifact::{ArtifactBuilder, ModelKind, dequantize_factors, quantize_factors};
use knowedge_scoring::model::{ItemItemWeights, dot};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::eval::Scorer;
use crate::{BprConfig, Dataset, Error, Result};

/// A trained model, ready to score and to export.
#[derive(Clone, Debug)]
pub enum Fitted {
    /// One score per item, the same for every user.
    Scores(Vec<f32>),
    /// User and item factors (row major, `dims` columns): score = dot product.
    Factors {
        /// Columns.
        dims: usize,
        /// `users × dims`.
        users: Vec<f32>,
        /// `items × dims`.
        items: Vec<f32>,
    },
    /// Sparse item-item weights over each user's history.
    ItemItem(ItemItemWeights),
}

impl Fitted {
    /// The artifact kind this model is served as.
    pub fn kind(&self) -> ModelKind {
        match self {
            Fitted::Scores(_) => ModelKind::Popularity,
            Fitted::Factors { .. } => ModelKind::Mf,
            Fitted::ItemItem(_) => ModelKind::ItemItem,
        }
    }

    /// Embedding dimensions (0 unless factors).
    pub fn dims(&self) -> usize {
        match self {
            Fitted::Factors { dims, .. } => *dims,
            _ => 0,
        }
    }

    /// The model as the edge serves it: factors are stored at 8 bits
    /// (feature `factors-i8` of the artifact format), so they are replaced by
    /// the values the stored integers stand for, and evaluation measures the
    /// served model. Other forms are unchanged. Fails if a factor is not finite.
    pub fn as_served(self) -> Result<Self> {
        match self {
            Fitted::Factors { dims, users, items } => {
                let widen = |v: Vec<f32>, what: &str| {
                    let (scale, q) = quantize_factors(&v).ok_or_else(|| {
                        knowedge_format::Error::Tensors(format!("{what} factors are not finite or too large"))
                    })?;
                    Ok::<_, Error>(dequantize_factors(scale, &q))
                };
                Ok(Fitted::Factors { dims, users: widen(users, "user")?, items: widen(items, "item")? })
            }
            other => Ok(other),
        }
    }

    /// Adds the model's tensors to an artifact (`popularity` is the fallback
    /// for unknown users and is set by the caller). Factors are stored at 8
    /// bits; for factors from [`as_served`](Self::as_served) that loses nothing.
    pub fn export(&self, b: &mut ArtifactBuilder) -> Result<()> {
        match self {
            Fitted::Scores(s) => {
                b.popularity(s.clone());
            }
            Fitted::Factors { users, items, .. } => {
                b.factors_8bit(users, items)?;
            }
            Fitted::ItemItem(w) => {
                let per_item: Vec<Vec<(u32, f32)>> = (0..w.n_rows())
                    .map(|i| {
                        let (j, x) = w.neighbours(i);
                        j.iter().copied().zip(x.iter().copied()).collect()
                    })
                    .collect();
                let per_user: Vec<Vec<u32>> =
                    (0..w.history_offsets.len().saturating_sub(1)).map(|u| w.history(u).to_vec()).collect();
                b.neighbours(&per_item).history(&per_user);
                if !w.bias.is_empty() {
                    b.item_bias(w.bias.clone());
                }
            }
        }
        Ok(())
    }

    /// Stored parameters (floats) of the model: its size at the edge.
    pub fn size(&self) -> usize {
        match self {
            Fitted::Scores(s) => s.len(),
            Fitted::Factors { users, items, .. } => users.len() + items.len(),
            Fitted::ItemItem(w) => w.items.len() * 2 + w.bias.len() + w.history_items.len(),
        }
    }
}

impl Scorer for Fitted {
    /// Scores exactly as the shared scoring core does at the edge.
    fn scores(&self, u: usize, out: &mut Vec<f32>) {
        out.clear();
        match self {
            Fitted::Scores(s) => out.extend_from_slice(s),
            Fitted::Factors { dims, users, items } => {
                let uv = &users[u * dims..(u + 1) * dims];
                out.extend(items.chunks_exact(*dims).map(|iv| dot(uv, iv)));
            }
            Fitted::ItemItem(w) => w.scores(w.history(u), out),
        }
    }
}

/// A recipe: the one registry of what can be trained. Names are parsed
/// only where they enter the program (the command line, `KNOWEDGE_RECIPE`,
/// a manifest's `params.recipe`); everything inside takes this type. Adding
/// a recipe means adding a variant here, its row in [`Recipe::ALL`] and
/// [`Recipe::spec`], and its arm in [`fit_cached`]: the compiler points at
/// every `match` that must learn it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Recipe {
    /// Users per item, conversions weighted higher.
    Popularity,
    /// Time-decayed popularity.
    Trending,
    /// Cosine item-kNN.
    ItemKnn,
    /// RP3beta item-item.
    Rp3Beta,
    /// Item-kNN over time-local co-occurrence.
    TimeKnn,
    /// EASE.
    Ease,
    /// BPR matrix factorisation on candle (`mf`).
    Bpr,
    /// Mult-VAE on candle.
    MultVae,
    /// TF-IDF content-based.
    Content,
    /// Hybrid of item-item recipes and popularity.
    Hybrid,
}

/// What the registry says about a recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The name used everywhere (command line, manifests, reports).
    pub name: &'static str,
    /// Other names accepted on input.
    pub aliases: &'static [&'static str],
    /// The suffix of model versions it trains.
    pub version_tag: &'static str,
    /// How the edge serves it.
    pub served_as: ModelKind,
    /// One line on what it learns.
    pub summary: &'static str,
}

impl Recipe {
    /// Every recipe, in the order `knowedge eval` runs them.
    pub const ALL: [Recipe; 10] = [
        Recipe::Popularity,
        Recipe::Trending,
        Recipe::ItemKnn,
        Recipe::Rp3Beta,
        Recipe::TimeKnn,
        Recipe::Ease,
        Recipe::Bpr,
        Recipe::MultVae,
        Recipe::Content,
        Recipe::Hybrid,
    ];

    /// The registry entry.
    pub const fn spec(self) -> Spec {
        let (name, aliases, version_tag, served_as, summary): (_, &'static [&'static str], _, _, _) = match self {
            Recipe::Popularity => {
                ("popularity", &[], "popularity", ModelKind::Popularity, "users per item, conversions weighted higher")
            }
            Recipe::Trending => ("trending", &[], "trending", ModelKind::Popularity, "popularity with a half-life"),
            Recipe::ItemKnn => ("itemknn", &[], "itemknn", ModelKind::ItemItem, "cosine item-kNN with shrinkage"),
            Recipe::Rp3Beta => ("rp3beta", &[], "rp3beta", ModelKind::ItemItem, "random-walk item-item weights"),
            Recipe::TimeKnn => {
                ("timeknn", &[], "timeknn", ModelKind::ItemItem, "item-kNN over same-session engagement")
            }
            Recipe::Ease => ("ease", &[], "ease", ModelKind::ItemItem, "closed-form linear item-item autoencoder"),
            Recipe::Bpr => ("bpr", &["mf"], "mf", ModelKind::Mf, "BPR matrix factorisation on candle"),
            Recipe::MultVae => ("multvae", &[], "multvae", ModelKind::Mf, "Mult-VAE on candle"),
            Recipe::Content => ("content", &[], "content", ModelKind::ItemItem, "TF-IDF over item text"),
            Recipe::Hybrid => {
                ("hybrid", &[], "hybrid", ModelKind::ItemItem, "EASE + RP3beta + content + popularity, tuned")
            }
        };
        Spec { name, aliases, version_tag, served_as, summary }
    }

    /// The recipe's name.
    pub const fn name(self) -> &'static str {
        self.spec().name
    }

    /// Every accepted name, for help texts: `popularity, trending, …, bpr (mf), …`.
    pub fn names() -> String {
        Recipe::ALL
            .iter()
            .map(|r| {
                let s = r.spec();
                if s.aliases.is_empty() { s.name.to_owned() } else { format!("{} ({})", s.name, s.aliases.join(", ")) }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::fmt::Display for Recipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Recipe {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        Recipe::ALL
            .into_iter()
            .find(|r| r.name() == s || r.spec().aliases.contains(&s))
            .ok_or_else(|| Error::Config(format!("unknown recipe `{s}`; expected one of {}", Recipe::names())))
    }
}

impl From<Recipe> for String {
    fn from(r: Recipe) -> Self {
        r.name().to_owned()
    }
}

impl TryFrom<String> for Recipe {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// Hyper-parameters of every recipe. The defaults are the configuration
/// chosen on the validation part of `ml-100k/split-2026` (see
/// docs/EVALUATION.md for the search and its budget).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Trending half-life in days.
    pub trending_half_life_days: f64,
    /// item-kNN neighbours per item.
    pub knn_neighbours: usize,
    /// item-kNN shrinkage.
    pub knn_shrink: f64,
    /// RP3beta neighbours per item.
    pub rp3_neighbours: usize,
    /// RP3beta exponent on transition probabilities.
    pub rp3_alpha: f64,
    /// RP3beta popularity penalty exponent.
    pub rp3_beta: f64,
    /// Time-kNN neighbours per item.
    pub time_neighbours: usize,
    /// Time-kNN shrinkage.
    pub time_shrink: f64,
    /// Time-kNN time scale in hours.
    pub time_tau_hours: f64,
    /// EASE L2 regularisation.
    pub ease_lambda: f64,
    /// EASE neighbours kept per item (0 = all).
    pub ease_neighbours: usize,
    /// EASE input features: each user's activity periods of this many days
    /// (0 = none), as extra rows the model learns weights for.
    pub ease_period_days: f64,
    /// EASE input features: the user attributes of the data set (age group, gender, occupation…).
    pub ease_user_attributes: bool,
    /// EASE emphasised-dropout strength `p`: adds `p / (1 - p) · (XᵀX)_ii` to
    /// the diagonal (Steck, 2020); 0 = plain EASE.
    pub ease_dropout: f64,
    /// BPR settings.
    pub bpr_dims: usize,
    /// BPR epochs.
    pub bpr_epochs: usize,
    /// BPR learning rate.
    pub bpr_lr: f64,
    /// BPR L2 weight.
    pub bpr_reg: f64,
    /// BPR triples per step.
    pub bpr_batch: usize,
    /// Mult-VAE settings.
    pub vae: vae::VaeConfig,
    /// Content-based neighbours per item.
    pub content_neighbours: usize,
    /// Hybrid neighbours kept per item.
    pub hybrid_neighbours: usize,
    /// Hybrid weights used when no validation data is given (EASE, RP3beta,
    /// item-kNN, time-kNN, content, popularity).
    pub hybrid_weights: Vec<f64>,
    /// Random seed of the stochastic recipes.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            trending_half_life_days: 60.0,
            knn_neighbours: 400,
            knn_shrink: 0.0,
            rp3_neighbours: 200,
            rp3_alpha: 0.75,
            rp3_beta: 0.5,
            time_neighbours: 400,
            time_shrink: 10.0,
            time_tau_hours: 1.0,
            ease_lambda: 300.0,
            ease_neighbours: 0,
            ease_dropout: 0.1,
            ease_period_days: 7.0,
            ease_user_attributes: false,
            bpr_dims: 64,
            bpr_epochs: 50,
            bpr_lr: 0.005,
            bpr_reg: 0.01,
            bpr_batch: 4096,
            vae: vae::VaeConfig::default(),
            content_neighbours: 100,
            hybrid_neighbours: 800,
            hybrid_weights: vec![1.0, 0.05, 0.05, 0.0, 0.1, 0.0],
            seed: 42,
        }
    }
}

impl Config {
    /// The BPR part as [`BprConfig`].
    pub fn bpr(&self) -> BprConfig {
        BprConfig {
            dims: self.bpr_dims,
            epochs: self.bpr_epochs,
            lr: self.bpr_lr,
            reg: self.bpr_reg,
            batch: self.bpr_batch,
            seed: self.seed,
        }
    }

    /// The hyper-parameters a recipe uses, for manifests and reports.
    pub fn params(&self, recipe: Recipe) -> BTreeMap<String, Value> {
        let v = serde_json::to_value(self).unwrap_or_default();
        let keep = |k: &str| match recipe {
            Recipe::Popularity => false,
            Recipe::Trending => k.starts_with("trending"),
            Recipe::ItemKnn => k.starts_with("knn"),
            Recipe::Rp3Beta => k.starts_with("rp3"),
            Recipe::TimeKnn => k.starts_with("time_"),
            Recipe::Ease => k.starts_with("ease"),
            Recipe::Bpr => k.starts_with("bpr") || k == "seed",
            Recipe::MultVae => k == "vae" || k == "seed",
            Recipe::Content => k.starts_with("content"),
            Recipe::Hybrid => !k.starts_with("bpr") && k != "vae" && !k.starts_with("trending"),
        };
        let mut out: BTreeMap<String, Value> = v
            .as_object()
            .map(|o| o.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        out.insert("recipe".into(), json!(recipe.name()));
        out
    }
}

/// Per-user validation items a recipe may tune on (only `hybrid` does).
pub type Tuning<'a> = Option<&'a [Vec<u32>]>;

/// Fits `recipe` on `ds`. `tuning` gives validation items for recipes tuned
/// on them (the hybrid's weights); without it they use their defaults.
pub fn fit(recipe: Recipe, ds: &Dataset, cfg: &Config, tuning: Tuning<'_>) -> Result<Fitted> {
    fit_cached(recipe, ds, cfg, tuning, &mut hybrid::Cache::new())
}

/// [`fit`], reusing recipes already fitted on the same data (the hybrid's components).
pub fn fit_cached(
    recipe: Recipe,
    ds: &Dataset,
    cfg: &Config,
    tuning: Tuning<'_>,
    cache: &mut hybrid::Cache,
) -> Result<Fitted> {
    Ok(match recipe {
        Recipe::Popularity => Fitted::Scores(popularity::counts(ds)),
        Recipe::Trending => Fitted::Scores(popularity::trending(ds, cfg.trending_half_life_days)),
        Recipe::ItemKnn => item_item(ds, knn::cosine(ds, cfg.knn_neighbours, cfg.knn_shrink)),
        Recipe::Rp3Beta => item_item(ds, knn::rp3beta(ds, cfg.rp3_neighbours, cfg.rp3_alpha, cfg.rp3_beta)),
        Recipe::TimeKnn => item_item(ds, knn::temporal(ds, cfg.time_neighbours, cfg.time_shrink, cfg.time_tau_hours)),
        Recipe::Ease => ease::fit_with_features(ds, cfg)?,
        Recipe::Bpr => {
            let (users, items, _) = crate::bpr::train(ds, &cfg.bpr())?;
            Fitted::Factors { dims: cfg.bpr_dims, users, items }.as_served()?
        }
        Recipe::MultVae => vae::fit(ds, &cfg.vae, cfg.seed)?.as_served()?,
        Recipe::Content => item_item(ds, content::fit(ds, cfg.content_neighbours)),
        Recipe::Hybrid => hybrid::fit(ds, cfg, tuning, cache)?,
    })
}

/// Wraps per-item neighbour lists with the users' training histories.
pub fn item_item(ds: &Dataset, per_item: Vec<Vec<(u32, f32)>>) -> Fitted {
    Fitted::ItemItem(ItemItemWeights::new(ds.items.len(), &per_item, Vec::new(), &ds.positives))
}

/// Keeps the `n` entries of largest magnitude of a dense row (all if `n` is
/// 0; negative weights matter to EASE), skipping `skip` and zeros, sorted by
/// item index (the summation order).
pub fn sparsify(row: &[f32], n: usize, skip: usize) -> Vec<(u32, f32)> {
    let mut v: Vec<(u32, f32)> =
        row.iter().enumerate().filter(|&(j, &x)| j != skip && x != 0.0).map(|(j, &x)| (j as u32, x)).collect();
    if n > 0 && v.len() > n {
        v.select_nth_unstable_by(n - 1, |a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        v.truncate(n);
    }
    v.sort_unstable_by_key(|e| e.0);
    v
}
