//! Neighbourhood item-item recipes: cosine item-kNN with shrinkage, and RP3beta.

use rayon::prelude::*;

use super::sparsify;
use crate::Dataset;

/// Users of each item.
pub(crate) fn item_users(ds: &Dataset) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); ds.items.len()];
    for (u, items) in ds.positives.iter().enumerate() {
        for &i in items {
            out[i as usize].push(u as u32);
        }
    }
    out
}

/// For each item `i`, the dense row `sum over users u of i of weight(u) · x_u`.
pub(crate) fn cooccurrence_rows(
    ds: &Dataset,
    weight: impl Fn(usize) -> f32 + Sync,
    per_row: impl Fn(usize, &mut [f32]) -> Vec<(u32, f32)> + Sync,
) -> Vec<Vec<(u32, f32)>> {
    let users = item_users(ds);
    let n = ds.items.len();
    (0..n)
        .into_par_iter()
        .map_init(
            || vec![0f32; n],
            |row, i| {
                row.fill(0.0);
                for &u in &users[i] {
                    let w = weight(u as usize);
                    for &j in &ds.positives[u as usize] {
                        row[j as usize] += w;
                    }
                }
                per_row(i, row)
            },
        )
        .collect()
}

/// Cosine similarity with shrinkage, `c_ij / (sqrt(n_i n_j) + shrink)`,
/// keeping the `neighbours` most similar items of each item.
pub fn cosine(ds: &Dataset, neighbours: usize, shrink: f64) -> Vec<Vec<(u32, f32)>> {
    let n_users: Vec<f32> = item_users(ds).iter().map(|u| (u.len() as f32).sqrt()).collect();
    let shrink = shrink as f32;
    cooccurrence_rows(
        ds,
        |_| 1.0,
        |i, row| {
            for (j, x) in row.iter_mut().enumerate() {
                if *x != 0.0 {
                    *x /= n_users[i] * n_users[j] + shrink;
                }
            }
            sparsify(row, neighbours, i)
        },
    )
}

/// RP3beta: the probability of a two-step random walk item → user → item,
/// raised to `alpha`, divided by the target's popularity to the power `beta`.
pub fn rp3beta(ds: &Dataset, neighbours: usize, alpha: f64, beta: f64) -> Vec<Vec<(u32, f32)>> {
    let pop: Vec<f32> = item_users(ds).iter().map(|u| u.len() as f32).collect();
    let (alpha, beta) = (alpha as f32, beta as f32);
    cooccurrence_rows(
        ds,
        |u| 1.0 / ds.positives[u].len().max(1) as f32,
        |i, row| {
            for (j, x) in row.iter_mut().enumerate() {
                if *x != 0.0 {
                    *x = (*x / pop[i]).powf(alpha) / pop[j].powf(beta);
                }
            }
            sparsify(row, neighbours, i)
        },
    )
}

/// Time-local co-occurrence: like [`cosine`], but each pair of items a user
/// engaged with counts `exp(-|t_i - t_j| / tau)`, so items taken up in the
/// same sessions are closer neighbours.
pub fn temporal(ds: &Dataset, neighbours: usize, shrink: f64, tau_hours: f64) -> Vec<Vec<(u32, f32)>> {
    let users = item_users(ds);
    let n = ds.items.len();
    let norms: Vec<f32> = users.iter().map(|u| (u.len() as f32).sqrt()).collect();
    let (shrink, tau) = (shrink as f32, (tau_hours * 3600.0).max(1.0) as f32);
    (0..n)
        .into_par_iter()
        .map_init(
            || vec![0f32; n],
            |row, i| {
                row.fill(0.0);
                for &u in &users[i] {
                    let (items, times) = (&ds.positives[u as usize], &ds.times[u as usize]);
                    let Ok(at) = items.binary_search(&(i as u32)) else { continue };
                    let ti = times[at];
                    for (&j, &tj) in items.iter().zip(times) {
                        row[j as usize] += (-((ti - tj).abs() as f32) / tau).exp();
                    }
                }
                for (j, x) in row.iter_mut().enumerate() {
                    if *x != 0.0 {
                        *x /= norms[i] * norms[j] + shrink;
                    }
                }
                sparsify(row, neighbours, i)
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds() -> Dataset {
        let mut ds = Dataset { items: vec!["a".into(), "b".into(), "c".into()], ..Dataset::default() };
        ds.set_interactions(vec![vec![(0, 0), (1, 0)], vec![(0, 0), (1, 0)], vec![(0, 0), (2, 0)]]);
        ds
    }

    #[test]
    fn cosine_with_shrinkage() {
        let s = cosine(&ds(), 10, 0.0);
        // a: 3 users, b: 2 (both with a), c: 1 (with a).
        assert_eq!(s[1], vec![(0, 2.0 / (3f32.sqrt() * 2f32.sqrt()))]);
        assert_eq!(s[0].len(), 2);
        assert_eq!(cosine(&ds(), 1, 0.0)[0].len(), 1);
    }

    #[test]
    fn rp3beta_penalises_popular_targets() {
        let s = rp3beta(&ds(), 10, 1.0, 0.5);
        // From b: both users of b have 2 items: P(b -> a) = (1/2 + 1/2) / 2 = 0.5; / sqrt(3).
        assert!((s[1][0].1 - 0.5 / 3f32.sqrt()).abs() < 1e-6);
    }
}
