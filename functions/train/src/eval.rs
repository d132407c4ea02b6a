//! Full-ranking offline evaluation.
//!
//! For every user with at least one held-out item, the model scores every
//! item; the user's training items (and, at test time, validation items) are
//! masked; the `k` best remaining items (ties broken by item index, exactly
//! as [`knowedge_scoring::model::top_k`] does at the edge) are compared with
//! the held-out items `T` (binary relevance). With `rel(r)` = 1 when the item
//! at rank `r` is in `T`:
//!
//! * `hit@k` = 1 if any of the `k` is in `T`;
//! * `precision@k` = hits / k;
//! * `recall@k` = hits / |T|;
//! * `ndcg@k` = (sum over r ≤ k of rel(r) / log2(r + 1)) / (sum over r ≤ min(|T|, k) of 1 / log2(r + 1));
//! * `mrr@k` = 1 / (rank of the first hit), 0 without a hit;
//! * `coverage@k` = distinct items in all users' lists / number of items.
//!
//! Each metric except coverage is the mean over the evaluated users. The same
//! metrics are also given for the least active quarter of those users (fewest
//! training items; ties by user order), prefixed `q1_`.

use std::collections::BTreeMap;

use knowedge_scoring::model::top_k;
use rayon::prelude::*;

/// Something that scores every item for a user.
pub trait Scorer: Sync {
    /// Writes the score of every item for user `u` into `out` (resized to the item count).
    fn scores(&self, u: usize, out: &mut Vec<f32>);
}

impl<F: Fn(usize, &mut Vec<f32>) + Sync> Scorer for F {
    fn scores(&self, u: usize, out: &mut Vec<f32>) {
        self(u, out)
    }
}

/// Metrics of one evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Cut-off.
    pub k: usize,
    /// Users evaluated.
    pub users: usize,
    /// Mean NDCG@k.
    pub ndcg: f64,
    /// Mean recall@k.
    pub recall: f64,
    /// Mean reciprocal rank of the first hit within k.
    pub mrr: f64,
    /// Share of users with a hit in k.
    pub hit: f64,
    /// Mean precision@k.
    pub precision: f64,
    /// Distinct recommended items / items.
    pub coverage: f64,
    /// The same for the least active quarter of users.
    pub q1: Option<Box<Metrics>>,
}

impl Metrics {
    /// The metrics as `name@k` entries (`q1_name@k` for the least active quarter).
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        let k = self.k;
        let mut m = BTreeMap::new();
        for (name, v) in [
            ("ndcg", self.ndcg),
            ("recall", self.recall),
            ("mrr", self.mrr),
            ("hit", self.hit),
            ("precision", self.precision),
            ("coverage", self.coverage),
        ] {
            m.insert(format!("{name}@{k}"), v);
        }
        if let Some(q) = &self.q1 {
            for (name, v) in q.to_map() {
                m.insert(format!("q1_{name}"), v);
            }
        }
        m
    }
}

/// Per-user outcome: the top-k list and its metrics.
#[derive(Clone, Debug, Default)]
struct UserResult {
    top: Vec<u32>,
    ndcg: f64,
    recall: f64,
    mrr: f64,
    hit: f64,
    precision: f64,
}

/// Metrics of one ranked list against the relevant (sorted) items.
fn judge(top: &[u32], relevant: &[u32], k: usize) -> UserResult {
    let mut r = UserResult { top: top.to_vec(), ..Default::default() };
    let (mut dcg, mut hits) = (0f64, 0usize);
    for (rank, i) in top.iter().enumerate() {
        if relevant.binary_search(i).is_ok() {
            dcg += 1.0 / ((rank + 2) as f64).log2();
            hits += 1;
            if r.mrr == 0.0 {
                r.mrr = 1.0 / (rank + 1) as f64;
            }
        }
    }
    let idcg: f64 = (0..relevant.len().min(k)).map(|rank| 1.0 / ((rank + 2) as f64).log2()).sum();
    r.ndcg = if idcg > 0.0 { dcg / idcg } else { 0.0 };
    r.recall = hits as f64 / relevant.len().max(1) as f64;
    r.hit = f64::from(u8::from(hits > 0));
    r.precision = hits as f64 / k as f64;
    r
}

fn aggregate(results: &[&UserResult], k: usize, n_items: usize) -> Metrics {
    let n = results.len().max(1) as f64;
    let mean = |f: fn(&UserResult) -> f64| results.iter().map(|r| f(r)).sum::<f64>() / n;
    let mut seen = vec![false; n_items];
    for r in results {
        for &i in &r.top {
            seen[i as usize] = true;
        }
    }
    Metrics {
        k,
        users: results.len(),
        ndcg: mean(|r| r.ndcg),
        recall: mean(|r| r.recall),
        mrr: mean(|r| r.mrr),
        hit: mean(|r| r.hit),
        precision: mean(|r| r.precision),
        coverage: seen.iter().filter(|s| **s).count() as f64 / n_items.max(1) as f64,
        q1: None,
    }
}

/// The top `k` unmasked items of a score vector (masks are sorted item lists).
pub fn rank(scores: &[f32], masks: &[&[u32]], k: usize) -> Vec<u32> {
    top_k(scores.len(), k, |i| scores[i], |i| masks.iter().all(|m| m.binary_search(&(i as u32)).is_err()))
        .into_iter()
        .map(|(i, _)| i)
        .collect()
}

/// Evaluates `scorer` on `held_out` (sorted per user), masking each user's
/// `train` items and any `extra_mask` items; `activity` (per user, number of
/// training items) picks the least active quarter.
pub fn evaluate(
    scorer: &dyn Scorer,
    n_items: usize,
    train: &[Vec<u32>],
    extra_mask: Option<&[Vec<u32>]>,
    held_out: &[Vec<u32>],
    k: usize,
) -> Metrics {
    let users: Vec<usize> = (0..held_out.len()).filter(|&u| !held_out[u].is_empty()).collect();
    let results: Vec<UserResult> = users
        .par_iter()
        .map_init(Vec::new, |buf, &u| {
            scorer.scores(u, buf);
            let masks: Vec<&[u32]> =
                [Some(train[u].as_slice()), extra_mask.map(|m| m[u].as_slice())].into_iter().flatten().collect();
            judge(&rank(buf, &masks, k), &held_out[u], k)
        })
        .collect();
    summarise(users, results, train, k, n_items)
}

/// Evaluates ready-made top-k lists (`lists[u]`, best first) against
/// `held_out` (sorted per user); users without held-out items are skipped.
pub fn evaluate_lists(
    lists: &[Vec<u32>],
    n_items: usize,
    train: &[Vec<u32>],
    held_out: &[Vec<u32>],
    k: usize,
) -> Metrics {
    let users: Vec<usize> = (0..held_out.len()).filter(|&u| !held_out[u].is_empty()).collect();
    let results = users.iter().map(|&u| judge(&lists[u][..lists[u].len().min(k)], &held_out[u], k)).collect();
    summarise(users, results, train, k, n_items)
}

fn summarise(users: Vec<usize>, results: Vec<UserResult>, train: &[Vec<u32>], k: usize, n_items: usize) -> Metrics {
    let mut m = aggregate(&results.iter().collect::<Vec<_>>(), k, n_items);
    let mut order: Vec<usize> = (0..users.len()).collect();
    order.sort_by_key(|&x| (train[users[x]].len(), users[x]));
    let quarter: Vec<&UserResult> = order[..users.len().div_ceil(4)].iter().map(|&x| &results[x]).collect();
    m.q1 = Some(Box::new(aggregate(&quarter, k, n_items)));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed: 5 items, k = 3.
    ///
    /// User 0 scores items 0..5 as [0.9, 0.8, 0.7, 0.6, 0.5], trained on item 0
    /// (masked), held out {2, 4}. Ranked list: 1, 2, 3. Hit at rank 2 only.
    /// DCG = 1/log2(3) = 0.630930; IDCG (2 relevant) = 1 + 1/log2(3) = 1.630930;
    /// NDCG = 0.386853; recall 1/2; precision 1/3; MRR 1/2; hit 1.
    ///
    /// User 1 scores all items equally (ties by index), trained on nothing,
    /// held out {0}: list 0, 1, 2; NDCG 1, recall 1, precision 1/3, MRR 1.
    ///
    /// User 2 has nothing held out and is not evaluated.
    /// Coverage = |{0, 1, 2, 3}| / 5 = 0.8.
    #[test]
    fn matches_hand_computed_metrics() {
        let scorer = |u: usize, out: &mut Vec<f32>| {
            out.clear();
            match u {
                0 => out.extend([0.9, 0.8, 0.7, 0.6, 0.5]),
                _ => out.extend([1.0; 5]),
            }
        };
        let train = vec![vec![0], vec![], vec![1]];
        let held = vec![vec![2, 4], vec![0], vec![]];
        let m = evaluate(&scorer, 5, &train, None, &held, 3);
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        assert_eq!(m.users, 2);
        close(m.ndcg, (0.386853 + 1.0) / 2.0);
        close(m.recall, (0.5 + 1.0) / 2.0);
        close(m.precision, 1.0 / 3.0);
        close(m.mrr, (0.5 + 1.0) / 2.0);
        close(m.hit, 1.0);
        close(m.coverage, 0.8);
        // The least active quarter (ceil(2 / 4) = 1 user) is user 1 (no training items).
        let q1 = m.q1.as_ref().unwrap();
        assert_eq!(q1.users, 1);
        close(q1.ndcg, 1.0);
        close(q1.coverage, 0.6);
        assert_eq!(m.to_map()["ndcg@3"], m.ndcg);
        assert_eq!(m.to_map()["q1_mrr@3"], 1.0);

        // An extra mask (validation items at test time) removes item 1 for user 0: list 2, 3, 4.
        let m = evaluate(&scorer, 5, &train, Some(&[vec![1], vec![], vec![]]), &held, 3);
        // User 0: hits at ranks 1 and 3: DCG = 1 + 1/log2(4) = 1.5; NDCG = 1.5 / 1.630930.
        close(m.ndcg, (1.5 / 1.630930 + 1.0) / 2.0);
    }
}
