//! Offline evaluation of recipes on a [`Split`]. Each recipe is fitted on
//! the training part and measured on validation (training items masked);
//! that is all the configuration (and the hybrid's weights) ever depends on.
//! Then, with that configuration fixed, the final model is refitted on
//! training + validation and measured once on test (training and validation
//! items masked). The test score of the training-only fit is reported too,
//! for comparison with peers that do not refit (RecBole's published tables).

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::eval::{Metrics, evaluate};
use crate::recbole::Split;
use crate::recipes::hybrid::{self, Cache};
use crate::recipes::{self, Config, Fitted, Recipe, Tuning};
use crate::{Dataset, Result};

/// What one recipe achieved.
#[derive(Clone, Debug)]
pub struct RecipeResult {
    /// Recipe name.
    pub name: String,
    /// Validation metrics (fitted on training).
    pub valid: Metrics,
    /// Test metrics of the final model (refitted on training + validation).
    pub test: Metrics,
    /// Test metrics of the model fitted on training alone.
    pub test_train_only: Metrics,
    /// Seconds to fit on training.
    pub fit_s: f64,
    /// Seconds to refit on training + validation.
    pub refit_s: f64,
    /// Seconds to score and rank every user (validation and both tests).
    pub score_s: f64,
    /// The final model (fitted on training + validation).
    pub fitted: Fitted,
    /// The configuration the final model was fitted with (the hybrid's
    /// weights are the ones tuned on validation).
    pub config: Config,
}

/// Fitted recipes reused across recipes of one evaluation: the hybrid's
/// components on training, and on training + validation.
#[derive(Debug, Default)]
pub struct Caches {
    /// Fitted on the training part.
    pub train: Cache,
    /// Fitted on training + validation.
    pub full: Cache,
}

/// The JSON form of a [`RecipeResult`]: test metrics at the top level,
/// validation metrics prefixed `valid_`.
#[derive(Clone, Debug, Serialize)]
pub struct RecipeSummary {
    /// Test and validation metrics.
    #[serde(flatten)]
    pub metrics: BTreeMap<String, f64>,
    /// Seconds to fit on training.
    pub fit_s: f64,
    /// Seconds to refit on training + validation.
    pub refit_s: f64,
    /// Seconds to score.
    pub score_s: f64,
    /// Served as (artifact kind).
    pub kind: &'static str,
    /// Stored numbers of the model (its size at the edge).
    pub parameters: usize,
}

impl RecipeResult {
    /// The summary written to JSON: test metrics of the final model at the
    /// top level, `valid_…` and `train_only_…` (test metrics of the
    /// training-only fit) beside them.
    pub fn summary(&self) -> RecipeSummary {
        let mut metrics = self.test.to_map();
        metrics.extend(self.valid.to_map().into_iter().map(|(k, v)| (format!("valid_{k}"), v)));
        metrics.extend(self.test_train_only.to_map().into_iter().map(|(k, v)| (format!("train_only_{k}"), v)));
        RecipeSummary {
            metrics,
            fit_s: self.fit_s,
            refit_s: self.refit_s,
            score_s: self.score_s,
            kind: self.fitted.kind().as_str(),
            parameters: self.fitted.size(),
        }
    }
}

/// Fits `recipe` on `split.train` and measures it on validation; then refits
/// it with the same configuration (the hybrid with the weights tuned on
/// validation) on training + validation (`full`, from
/// [`Split::train_and_valid`]) and measures that final model on test.
pub fn run_recipe(
    split: &Split,
    full: &Dataset,
    recipe: Recipe,
    cfg: &Config,
    caches: &mut Caches,
    k: usize,
) -> Result<RecipeResult> {
    let t = Instant::now();
    let (fitted, cfg_final) = fit_for_refit(recipe, &split.train, cfg, Some(&split.valid), &mut caches.train)?;
    let fit_s = t.elapsed().as_secs_f64();
    caches.train.entry(recipe).or_insert_with(|| fitted.clone());
    let t = Instant::now();
    let (train, n) = (&split.train.positives, split.train.items.len());
    let valid = evaluate(&fitted, n, train, None, &split.valid, k);
    let test_train_only = evaluate(&fitted, n, train, Some(&split.valid), &split.test, k);
    let mut score_s = t.elapsed().as_secs_f64();
    drop(fitted);

    let t = Instant::now();
    let final_model = recipes::fit_cached(recipe, full, &cfg_final, None, &mut caches.full)?;
    let refit_s = t.elapsed().as_secs_f64();
    caches.full.entry(recipe).or_insert_with(|| final_model.clone());
    let t = Instant::now();
    // The least active quarter stays defined by training items.
    let test = evaluate(&final_model, n, train, Some(&split.valid), &split.test, k);
    score_s += t.elapsed().as_secs_f64();
    Ok(RecipeResult {
        name: recipe.name().to_owned(),
        valid,
        test,
        test_train_only,
        fit_s,
        refit_s,
        score_s,
        fitted: final_model,
        config: cfg_final,
    })
}

/// Fits `recipe` on `ds` and returns the configuration a refit must use to
/// get the same model on more data: the hybrid's weights as tuned on `tuning`.
pub fn fit_for_refit(
    recipe: Recipe,
    ds: &Dataset,
    cfg: &Config,
    tuning: Tuning<'_>,
    cache: &mut Cache,
) -> Result<(Fitted, Config)> {
    let mut cfg = cfg.clone();
    let fitted = if recipe == Recipe::Hybrid {
        let (f, w) = hybrid::fit_tuned(ds, &cfg, tuning, cache)?;
        cfg.hybrid_weights = w;
        f
    } else {
        recipes::fit_cached(recipe, ds, &cfg, tuning, cache)?
    };
    Ok((fitted, cfg))
}

/// Validation NDCG@k of one configuration of one recipe (for the search).
pub fn validate(split: &Split, recipe: Recipe, cfg: &Config, k: usize) -> Result<f64> {
    let fitted = recipes::fit(recipe, &split.train, cfg, Some(&split.valid))?;
    Ok(evaluate(&fitted, split.train.items.len(), &split.train.positives, None, &split.valid, k).ndcg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Scorer;

    /// Four users who all like items 0-3 together; user 0's validation item
    /// is 2 and test item 3.
    fn tiny() -> Split {
        let mut train = Dataset {
            users: (0..4).map(|u| format!("u{u}")).collect(),
            items: (0..6).map(|i| format!("i{i}")).collect(),
            ..Dataset::default()
        };
        train.item_text = vec![String::new(); 6];
        train.user_attributes = vec![Vec::new(); 4];
        train.owned = vec![Vec::new(); 4];
        train.set_interactions(vec![
            vec![(0, 10), (1, 20)],
            vec![(0, 10), (1, 20), (2, 30), (3, 40)],
            vec![(0, 10), (1, 20), (2, 30), (3, 40), (4, 50)],
            vec![(2, 10), (3, 20), (5, 30)],
        ]);
        Split {
            train,
            valid: vec![vec![2], vec![], vec![], vec![]],
            valid_times: vec![vec![30], vec![], vec![], vec![]],
            test: vec![vec![3], vec![], vec![], vec![]],
        }
    }

    #[test]
    fn the_final_model_is_refitted_on_training_and_validation() {
        let split = tiny();
        let full = split.train_and_valid();
        let mut caches = Caches::default();
        let cfg = Config::default();
        let r = run_recipe(&split, &full, Recipe::Hybrid, &cfg, &mut caches, 3).unwrap();
        // The weights tuned on validation travel into the refit's configuration.
        assert_eq!(r.config.hybrid_weights.len(), hybrid::COMPONENTS.len() + 1);
        assert_eq!(r.config.hybrid_weights[0], 1.0);
        // The final model knows the validation item as part of user 0's history.
        let Fitted::ItemItem(w) = &r.fitted else { panic!("hybrid is item-item") };
        let items: Vec<u32> = w.history(0).iter().copied().filter(|&i| i < 6).collect();
        assert_eq!(items, [0, 1, 2]);
        // And both caches hold their own fits.
        assert!(caches.train.contains_key(&Recipe::Ease) && caches.full.contains_key(&Recipe::Ease));
        let mut s = Vec::new();
        r.fitted.scores(0, &mut s);
        assert_eq!(s.len(), 6);
        assert_eq!(r.test.users, 1);
        assert_eq!(r.test_train_only.users, 1);
    }
}
