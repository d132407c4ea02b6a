//! Offline evaluation of recipes on a [`Split`]: fit on the training part,
//! measure on validation (training items masked), then on test (training and
//! validation items masked). The configuration never depends on the test part.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::Utc;
use knowedge_shared::artifact::{ArtifactBuilder, SigningKey};
use knowedge_shared::pseudonym::Pseudonymizer;
use serde::Serialize;

use crate::eval::{Metrics, evaluate};
use crate::recbole::Split;
use crate::recipes::hybrid::Cache;
use crate::recipes::{self, Config, Fitted};
use crate::{Dataset, Result};

/// What one recipe achieved.
#[derive(Clone, Debug)]
pub struct RecipeResult {
    /// Recipe name.
    pub name: String,
    /// Validation metrics.
    pub valid: Metrics,
    /// Test metrics.
    pub test: Metrics,
    /// Seconds to fit.
    pub fit_s: f64,
    /// Seconds to score and rank every user (validation and test).
    pub score_s: f64,
    /// The fitted model.
    pub fitted: Fitted,
}

/// The JSON form of a [`RecipeResult`]: test metrics at the top level,
/// validation metrics prefixed `valid_`.
#[derive(Clone, Debug, Serialize)]
pub struct RecipeSummary {
    /// Test and validation metrics.
    #[serde(flatten)]
    pub metrics: BTreeMap<String, f64>,
    /// Seconds to fit.
    pub fit_s: f64,
    /// Seconds to score.
    pub score_s: f64,
    /// Served as (artifact kind).
    pub kind: &'static str,
    /// Stored numbers of the model (its size at the edge).
    pub parameters: usize,
}

impl RecipeResult {
    /// The summary written to JSON.
    pub fn summary(&self) -> RecipeSummary {
        let mut metrics = self.test.to_map();
        metrics.extend(self.valid.to_map().into_iter().map(|(k, v)| (format!("valid_{k}"), v)));
        RecipeSummary {
            metrics,
            fit_s: self.fit_s,
            score_s: self.score_s,
            kind: self.fitted.kind().as_str(),
            parameters: self.fitted.size(),
        }
    }
}

/// Fits `recipe` on `split.train` and evaluates it on validation and test at `k`.
pub fn run_recipe(split: &Split, recipe: &str, cfg: &Config, cache: &mut Cache, k: usize) -> Result<RecipeResult> {
    let t = Instant::now();
    let fitted = recipes::fit_cached(recipe, &split.train, cfg, Some(&split.valid), cache)?;
    let fit_s = t.elapsed().as_secs_f64();
    cache.entry(recipe.to_owned()).or_insert_with(|| fitted.clone());
    let t = Instant::now();
    let (train, n) = (&split.train.positives, split.train.items.len());
    let valid = evaluate(&fitted, n, train, None, &split.valid, k);
    let test = evaluate(&fitted, n, train, Some(&split.valid), &split.test, k);
    let score_s = t.elapsed().as_secs_f64();
    Ok(RecipeResult { name: recipe.to_owned(), valid, test, fit_s, score_s, fitted })
}

/// Validation NDCG@k of one configuration of one recipe (for the search).
pub fn validate(split: &Split, recipe: &str, cfg: &Config, k: usize) -> Result<f64> {
    let fitted = recipes::fit(recipe, &split.train, cfg, Some(&split.valid))?;
    Ok(evaluate(&fitted, split.train.items.len(), &split.train.positives, None, &split.valid, k).ndcg)
}

/// A signed artifact of a fitted model for `ds`'s users (pseudonymised with
/// `pseudonyms`), masking each user's `seen` items, with `metrics` and `params`
/// in the manifest. Unknown users get `fallback` (default: users per item).
#[allow(clippy::too_many_arguments)]
pub fn export(
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
    fitted.export(&mut b);
    let m = b.manifest_mut();
    m.model_id = version.to_owned();
    m.created_at = Utc::now();
    m.training = ds.window.clone();
    m.metrics = metrics;
    m.params = params;
    Ok(b.sign(key)?)
}
