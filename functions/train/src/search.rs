//! Hyper-parameter search on validation.
//!
//! Each recipe has a small grid over its own settings ([`grid`]); every point
//! is fitted on the training part and scored by validation NDCG@k (training
//! items masked). The test part is never read. The budget is the number of
//! fits: the sum of the grid sizes (see [`budget`]).

use serde_json::{Value, json};

use crate::recbole::Split;
use crate::recipes::{Config, Recipe};
use crate::{Result, offline};

/// The settings tried for `recipe`, as JSON patches of [`Config`].
pub fn grid(recipe: &str) -> Vec<Value> {
    let mut out = Vec::new();
    match recipe {
        "trending" => {
            for h in [7.0, 30.0, 60.0, 120.0, 365.0] {
                out.push(json!({ "trending_half_life_days": h }));
            }
        }
        "itemknn" => {
            for n in [50, 100, 200, 400] {
                for s in [0.0, 10.0, 50.0, 100.0] {
                    out.push(json!({ "knn_neighbours": n, "knn_shrink": s }));
                }
            }
        }
        "rp3beta" => {
            for n in [50, 100, 200] {
                for a in [0.5, 0.75, 1.0] {
                    for b in [0.2, 0.35, 0.5] {
                        out.push(json!({ "rp3_neighbours": n, "rp3_alpha": a, "rp3_beta": b }));
                    }
                }
            }
        }
        "timeknn" => {
            for tau in [1.0, 6.0, 24.0, 168.0] {
                for n in [100, 200, 400] {
                    out.push(json!({ "time_tau_hours": tau, "time_neighbours": n }));
                }
            }
        }
        "ease" => {
            for l in [100.0, 200.0, 300.0, 500.0] {
                for p in [0.0, 0.1, 0.25] {
                    out.push(json!({ "ease_lambda": l, "ease_dropout": p, "ease_neighbours": 0 }));
                }
            }
        }
        "ease-features" => {
            for d in [0.0, 7.0, 14.0, 30.0] {
                for a in [false, true] {
                    out.push(json!({ "ease_period_days": d, "ease_user_attributes": a }));
                }
            }
        }
        "ease-size" => {
            for n in [25, 50, 100, 200, 400, 800, 0] {
                out.push(json!({ "ease_neighbours": n }));
            }
        }
        "bpr" => {
            for e in [20, 50] {
                for lr in [0.002, 0.005, 0.01] {
                    for reg in [1e-4, 1e-2] {
                        out.push(json!({ "bpr_epochs": e, "bpr_lr": lr, "bpr_reg": reg }));
                    }
                }
            }
        }
        "multvae" => {
            for e in [50, 100, 200] {
                for b in [0.1, 0.2, 0.4] {
                    out.push(json!({ "vae": { "epochs": e, "beta": b } }));
                }
            }
        }
        "content" => {
            for n in [20, 50, 100, 200, 0] {
                out.push(json!({ "content_neighbours": n }));
            }
        }
        "hybrid" => {
            for n in [50, 100, 200, 400, 800, 0] {
                out.push(json!({ "hybrid_neighbours": n }));
            }
        }
        _ => {}
    }
    out
}

/// Total fits of a search over `recipes`.
pub fn budget(recipes: &[&str]) -> usize {
    recipes.iter().map(|r| grid(r).len()).sum()
}

/// Applies a JSON patch (objects merge recursively) to a configuration.
pub fn patched(cfg: &Config, patch: &Value) -> Result<Config> {
    fn merge(a: &mut Value, b: &Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b.clone(),
        }
    }
    let mut v = serde_json::to_value(cfg).map_err(|e| crate::Error::Config(e.to_string()))?;
    merge(&mut v, patch);
    serde_json::from_value(v).map_err(|e| crate::Error::Config(e.to_string()))
}

/// One tried point.
#[derive(Clone, Debug)]
pub struct Trial {
    /// Recipe.
    pub recipe: String,
    /// The settings.
    pub patch: Value,
    /// Validation NDCG@k.
    pub ndcg: f64,
}

/// Searches each recipe's grid in turn (each starting from the best found so
/// far), calling `progress(done, total, trial)`; returns the best configuration.
pub fn search(
    split: &Split,
    recipes: &[&str],
    start: &Config,
    k: usize,
    mut progress: impl FnMut(usize, usize, &Trial),
) -> Result<(Config, Vec<Trial>)> {
    let total = budget(recipes);
    let mut best_cfg = start.clone();
    let mut trials = Vec::new();
    for recipe in recipes {
        let mut best: Option<(f64, Config)> = None;
        for patch in grid(recipe) {
            let cfg = patched(&best_cfg, &patch)?;
            // `<recipe>-size` searches a recipe's sparsity after its other settings.
            let base: Recipe = recipe.split('-').next().unwrap_or(recipe).parse()?;
            let ndcg = offline::validate(split, base, &cfg, k)?;
            let t = Trial { recipe: (*recipe).to_owned(), patch, ndcg };
            progress(trials.len() + 1, total, &t);
            trials.push(t);
            if best.as_ref().is_none_or(|(b, _)| ndcg > *b) {
                best = Some((ndcg, cfg));
            }
        }
        if let Some((_, cfg)) = best {
            best_cfg = cfg;
        }
    }
    Ok((best_cfg, trials))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_merge_into_the_configuration() {
        let c = patched(&Config::default(), &json!({ "ease_lambda": 7.0, "vae": { "epochs": 3 } })).unwrap();
        assert_eq!(c.ease_lambda, 7.0);
        assert_eq!(c.vae.epochs, 3);
        assert_eq!(c.vae.latent, Config::default().vae.latent);
        assert_eq!(budget(&["ease", "content"]), grid("ease").len() + 5);
    }
}
