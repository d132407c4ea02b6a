//! Hybrid: a weighted sum of item-item recipes (EASE, RP3beta, item-kNN,
//! content) plus a popularity term, with weights tuned on validation.
//!
//! Every component is first divided by its scale (the mean over users of
//! their best score), so weights are comparable. With validation items, the
//! weights are found by coordinate ascent on NDCG@10 (EASE fixed at 1, each
//! other weight from [`GRID`], three rounds); without, the configured
//! weights are used. Because each part is linear in the user's history, the
//! sum is again an item-item model: one sparse matrix (each item's
//! `hybrid_neighbours` largest combined weights) plus a per-item bias.

use std::collections::BTreeMap;

use knowedge_scoring::model::ItemItemWeights;
use rayon::prelude::*;

use super::{Config, Fitted, Recipe, Tuning, popularity, sparsify};
use crate::eval::{self, Scorer};
use crate::{Dataset, Result};

/// The item-item components, in weight order (the popularity weight comes last).
pub const COMPONENTS: [Recipe; 5] = [Recipe::Ease, Recipe::Rp3Beta, Recipe::ItemKnn, Recipe::TimeKnn, Recipe::Content];
/// Candidate weights of the coordinate ascent.
pub const GRID: [f64; 9] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5];

/// Fitted recipes reused across calls on the same data.
pub type Cache = BTreeMap<Recipe, Fitted>;

/// The mean over users of their best score: a component's scale. The
/// per-user maxima are computed in parallel and summed in user order, so the
/// result (and the hybrid's weights) is the same on every run.
fn mean_best(scorer: &dyn Scorer, users: usize) -> f32 {
    let best: Vec<f32> = (0..users)
        .into_par_iter()
        .map_init(Vec::new, |buf, u| {
            scorer.scores(u, buf);
            buf.iter().copied().fold(0f32, f32::max)
        })
        .collect();
    let total: f32 = best.iter().sum();
    (total / users.max(1) as f32).max(f32::MIN_POSITIVE)
}

/// Fits the hybrid (components from `cache` when present, else fitted and cached).
pub fn fit(ds: &Dataset, cfg: &Config, tuning: Tuning<'_>, cache: &mut Cache) -> Result<Fitted> {
    Ok(fit_tuned(ds, cfg, tuning, cache)?.0)
}

/// [`fit`], also returning the weights used (tuned on `tuning` when given,
/// else `cfg.hybrid_weights`), so a refit on more data can reuse them.
pub fn fit_tuned(ds: &Dataset, cfg: &Config, tuning: Tuning<'_>, cache: &mut Cache) -> Result<(Fitted, Vec<f64>)> {
    let mut parts: Vec<ItemItemWeights> = Vec::new();
    for name in COMPONENTS {
        let fitted = match cache.entry(name) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(super::fit_cached(name, ds, cfg, None, &mut Cache::new())?)
            }
        };
        match fitted {
            Fitted::ItemItem(w) => parts.push(w.clone()),
            _ => unreachable!("hybrid components are item-item recipes"),
        }
    }
    let pop = popularity::counts(ds);
    let nu = ds.users.len();
    let mut scales: Vec<f32> = parts.iter().map(|p| mean_best(&Fitted::ItemItem(p.clone()), nu)).collect::<Vec<_>>();
    scales.push(pop.iter().copied().fold(0f32, f32::max).max(1.0));
    let weights = match tuning {
        Some(valid) => tune(ds, &parts, &pop, &scales, valid),
        None => cfg.hybrid_weights.clone(),
    };
    Ok((combine(ds, &parts, &pop, &scales, &weights, cfg.hybrid_neighbours), weights))
}

/// The weighted sum of the parts as one sparse item-item model.
fn combine(
    ds: &Dataset,
    parts: &[ItemItemWeights],
    pop: &[f32],
    scales: &[f32],
    weights: &[f64],
    neighbours: usize,
) -> Fitted {
    let n = ds.items.len();
    let w = |k: usize| weights.get(k).copied().unwrap_or(0.0) as f32 / scales[k];
    // Rows beyond the items are user features (of the part that has the most).
    let widest = (0..parts.len()).max_by_key(|&k| parts[k].n_rows()).unwrap_or(0);
    let rows = parts.get(widest).map_or(n, ItemItemWeights::n_rows);
    let per_item: Vec<Vec<(u32, f32)>> = (0..rows)
        .into_par_iter()
        .map_init(
            || vec![0f32; n],
            |row, i| {
                row.fill(0.0);
                for (k, p) in parts.iter().enumerate() {
                    let wk = w(k);
                    if wk == 0.0 || i >= p.n_rows() {
                        continue;
                    }
                    let (js, xs) = p.neighbours(i);
                    for (&j, &x) in js.iter().zip(xs) {
                        row[j as usize] += wk * x;
                    }
                }
                sparsify(row, neighbours, i)
            },
        )
        .collect();
    let wp = w(parts.len());
    let bias = if wp != 0.0 { pop.iter().map(|p| p * wp).collect() } else { Vec::new() };
    let histories: Vec<Vec<u32>> = match parts.get(widest) {
        Some(p) => (0..ds.users.len()).map(|u| p.history(u).to_vec()).collect(),
        None => ds.positives.clone(),
    };
    Fitted::ItemItem(ItemItemWeights::new(n, &per_item, bias, &histories))
}

/// Coordinate ascent of the weights on validation NDCG@10.
fn tune(ds: &Dataset, parts: &[ItemItemWeights], pop: &[f32], scales: &[f32], valid: &[Vec<u32>]) -> Vec<f64> {
    let n = ds.items.len();
    let users: Vec<usize> = (0..valid.len()).filter(|&u| !valid[u].is_empty()).collect();
    // Scaled component scores of every validation user, computed once.
    let cached: Vec<Vec<Vec<f32>>> = users
        .par_iter()
        .map(|&u| {
            let mut out: Vec<Vec<f32>> = parts
                .iter()
                .zip(scales)
                .map(|(p, s)| {
                    let mut v = Vec::new();
                    p.scores(p.history(u), &mut v);
                    v.iter_mut().for_each(|x| *x /= s);
                    v
                })
                .collect();
            out.push(pop.iter().map(|p| p / scales[parts.len()]).collect());
            out
        })
        .collect();
    let ndcg = |w: &[f64]| -> f64 {
        let total: f64 = users
            .par_iter()
            .zip(&cached)
            .map_init(
                || vec![0f32; n],
                |buf, (&u, comps)| {
                    buf.fill(0.0);
                    for (c, &wk) in comps.iter().zip(w) {
                        if wk != 0.0 {
                            let wk = wk as f32;
                            buf.iter_mut().zip(c).for_each(|(b, x)| *b += wk * x);
                        }
                    }
                    let top = eval::rank(buf, &[&ds.positives[u]], 10);
                    ndcg_at(&top, &valid[u], 10)
                },
            )
            .sum();
        total / users.len().max(1) as f64
    };
    let mut w = vec![0.0; parts.len() + 1];
    w[0] = 1.0;
    let mut best = ndcg(&w);
    for _round in 0..3 {
        for k in 1..w.len() {
            for &g in &GRID {
                let mut c = w.clone();
                c[k] = g;
                let v = ndcg(&c);
                if v > best + 1e-9 {
                    best = v;
                    w = c;
                }
            }
        }
    }
    tracing::info!(?w, best, "hybrid weights");
    if std::env::var_os("KNOWEDGE_DEBUG_HYBRID").is_some() {
        eprintln!("hybrid weights {w:?}: validation NDCG@10 {best:.4}");
    }
    w
}

fn ndcg_at(top: &[u32], relevant: &[u32], k: usize) -> f64 {
    let dcg: f64 = top
        .iter()
        .enumerate()
        .filter(|(_, i)| relevant.binary_search(i).is_ok())
        .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
        .sum();
    let idcg: f64 = (0..relevant.len().min(k)).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
    if idcg > 0.0 { dcg / idcg } else { 0.0 }
}
