//! Scheduled training with a promotion gate.
//!
//! The latest validation window is the most recent tenth of the lake's
//! user-item engagements (by time). A challenger is fitted on everything
//! before the window and scored on it (full ranking, each user's earlier
//! items masked). The champion is the model `current` points at: scored
//! as it is when its training data ends before the window, otherwise its
//! recipe (from the manifest) is refitted on the same earlier data, so
//! neither side has seen the window. The challenger is promoted only if its
//! NDCG@10 is higher; it is always stored (trained on all data), with the
//! window metrics in its manifest.

use std::collections::{BTreeMap, HashMap};

use knowedge_format::artifact::{Artifact, ModelKind, PublicKey};
use knowedge_scoring::model::{Filters, Model};

use crate::eval::{self, Metrics};
use crate::recipes::{self, Config, Recipe};
use crate::{Dataset, Result};

/// Share of the engagements (the most recent ones) in the validation window.
pub const WINDOW_FRACTION: f64 = 0.1;
/// Cut-off of the gate's metrics.
pub const K: usize = 10;

/// Data before the window and, per user, the new items within it.
#[derive(Clone, Debug)]
pub struct Window {
    /// Engagements up to `cutoff`.
    pub train: Dataset,
    /// Per user, items first engaged with after `cutoff`.
    pub valid: Vec<Vec<u32>>,
    /// Last time (Unix seconds) before the window.
    pub cutoff: i64,
}

/// Splits off the latest `fraction` of engagements; `None` if fewer than
/// two users would have anything to validate on.
pub fn latest_window(ds: &Dataset, fraction: f64) -> Option<Window> {
    let mut times: Vec<i64> = ds.times.iter().flatten().copied().collect();
    if times.is_empty() {
        return None;
    }
    times.sort_unstable();
    let at = ((times.len() as f64) * (1.0 - fraction)).floor() as usize;
    let cutoff = times[at.min(times.len() - 1).saturating_sub(1)];
    let mut train = ds.clone();
    let mut valid = Vec::with_capacity(ds.users.len());
    let mut per_user = Vec::with_capacity(ds.users.len());
    for (items, ts) in ds.positives.iter().zip(&ds.times) {
        type Pairs = Vec<(u32, i64)>;
        let (before, after): (Pairs, Pairs) =
            items.iter().copied().zip(ts.iter().copied()).partition(|&(_, t)| t <= cutoff);
        valid.push(if before.is_empty() { Vec::new() } else { after.iter().map(|&(i, _)| i).collect() });
        per_user.push(before);
    }
    train.set_interactions(per_user);
    (valid.iter().filter(|v| !v.is_empty()).count() >= 2).then_some(Window { train, valid, cutoff })
}

/// The recipe that made an artifact (manifest `params.recipe`, else from its kind).
/// A name this reader does not know is taken from the kind too.
pub fn recipe_of(a: &Artifact) -> Recipe {
    match a.manifest.params.get("recipe").and_then(|v| v.as_str()).and_then(|r| r.parse().ok()) {
        Some(r) => r,
        None => match a.manifest.kind {
            ModelKind::Mf => Recipe::Bpr,
            ModelKind::ItemItem => Recipe::Ease,
            _ => Recipe::Popularity,
        },
    }
}

/// The champion's metrics on the window: the artifact as it is if it has
/// not seen the window, else its recipe refitted on the data before it.
pub fn champion_metrics(bytes: &[u8], key: &PublicKey, w: &Window, cfg: &Config) -> Result<(String, Metrics)> {
    let artifact = Artifact::read(bytes, key)?;
    let recipe = recipe_of(&artifact);
    let ds = &w.train;
    let unseen = artifact.manifest.training.to.is_some_and(|t| t.timestamp() <= w.cutoff);
    if unseen {
        let model = Model::from_verified(artifact)?;
        let index: HashMap<&str, u32> = ds.items.iter().enumerate().map(|(i, s)| (s.as_str(), i as u32)).collect();
        let lists: Vec<Vec<u32>> = (0..ds.users.len())
            .map(|u| {
                if w.valid[u].is_empty() {
                    return Vec::new();
                }
                let exclude = ds.positives[u].iter().map(|&i| ds.items[i as usize].clone()).collect();
                model
                    .recommend(Some(&ds.users[u]), K, &Filters { exclude, ..Filters::default() })
                    .iter()
                    .filter_map(|s| index.get(s.item.as_str()).copied())
                    .collect()
            })
            .collect();
        Ok((format!("{recipe} (as served)"), eval::evaluate_lists(&lists, ds.items.len(), &ds.positives, &w.valid, K)))
    } else {
        let fitted = recipes::fit(recipe, ds, cfg, Some(&w.valid))?;
        Ok((
            format!("{recipe} (refitted before the window)"),
            eval::evaluate(&fitted, ds.items.len(), &ds.positives, None, &w.valid, K),
        ))
    }
}

/// The manifest form of window metrics (`valid_` prefix).
pub fn metric_entries(m: &Metrics, prefix: &str) -> BTreeMap<String, f64> {
    m.to_map().into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_tenth_is_held_out() {
        let mut ds = Dataset { items: (0..10).map(|i| i.to_string()).collect(), ..Dataset::default() };
        ds.users = vec!["a".into(), "b".into(), "c".into()];
        ds.set_interactions(vec![
            (0..8).map(|i| (i, i64::from(i))).collect(),
            vec![(0, 1), (9, 100)],
            vec![(1, 2), (2, 3), (8, 99)],
        ]);
        let w = latest_window(&ds, 0.15).unwrap();
        assert_eq!(w.cutoff, 7);
        assert_eq!(w.valid, vec![vec![], vec![9], vec![8]]);
        assert_eq!(w.train.positives[1], vec![0]);
        assert!(latest_window(&Dataset::default(), 0.1).is_none());
    }
}
