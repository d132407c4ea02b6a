//! EASE (Steck, 2019): the closed-form linear item-item autoencoder
//! `B = argmin ||X - XB||² + λ||B||²` with `diag(B) = 0`, which is
//! `B_ij = -P_ij / P_jj` for `P = (XᵀX + λI)⁻¹`. Rows are then sparsified to
//! the largest `neighbours` weights so that the model fits the edge.

use rayon::prelude::*;

use std::collections::BTreeMap;

use knowedge_scoring::model::ItemItemWeights;

use super::{Config, Fitted, sparsify};
use crate::{Dataset, Result, linalg};

/// The Gram matrix `XᵀX` of binary rows (`rows` columns; each user's row
/// indices in `per_user`), dense and row major.
pub fn gram(per_user: &[Vec<u32>], rows: usize) -> Vec<f64> {
    let mut users = vec![Vec::new(); rows];
    for (u, list) in per_user.iter().enumerate() {
        for &i in list {
            users[i as usize].push(u);
        }
    }
    let mut g = vec![0f64; rows * rows];
    g.par_chunks_mut(rows.max(1)).enumerate().for_each(|(i, row)| {
        for &u in &users[i] {
            for &j in &per_user[u] {
                row[j as usize] += 1.0;
            }
        }
    });
    g
}

/// Dense EASE weights over `rows` input rows (items first, then user
/// features) and the first `n` of them as outputs (row `h` = the weights
/// input `h` adds to each item), with L2 weight `lambda` plus
/// `dropout / (1 - dropout)` times each row's own count on the diagonal.
/// With inputs `X_aug` and `P = (X_augᵀ X_aug + Λ)⁻¹`, `B_hj = -P_hj / P_jj`
/// for `h ≠ j` (the zero-diagonal constraint applies to items).
pub fn dense(per_user: &[Vec<u32>], rows: usize, n: usize, lambda: f64, dropout: f64) -> Result<Vec<f32>> {
    let mut g = gram(per_user, rows);
    let d = if dropout > 0.0 && dropout < 1.0 { dropout / (1.0 - dropout) } else { 0.0 };
    for i in 0..rows {
        g[i * rows + i] += lambda + d * g[i * rows + i];
    }
    let p = linalg::spd_inverse(&g, rows)?;
    let mut b = vec![0f32; rows * n];
    b.par_chunks_mut(n.max(1)).enumerate().for_each(|(i, row)| {
        for (j, x) in row.iter_mut().enumerate() {
            *x = if i == j { 0.0 } else { (-p[i * rows + j] / p[j * rows + j]) as f32 };
        }
    });
    Ok(b)
}

/// Each user's feature names: activity periods (`period:<k>`, every
/// `period_days` from the earliest event; none if 0) and, if asked, the
/// data set's user attributes.
pub fn user_features(ds: &Dataset, period_days: f64, attributes: bool) -> Vec<Vec<String>> {
    let start = ds.times.iter().flatten().copied().min().unwrap_or(0);
    (0..ds.users.len())
        .map(|u| {
            let mut f: Vec<String> = Vec::new();
            if period_days > 0.0 {
                let len = (period_days * 86_400.0) as i64;
                f.extend(ds.times[u].iter().map(|t| format!("period:{}", (t - start) / len.max(1))));
            }
            if attributes && let Some(a) = ds.user_attributes.get(u) {
                f.extend(a.iter().cloned());
            }
            f.sort_unstable();
            f.dedup();
            f
        })
        .collect()
}

/// EASE with the configured user features, each row's `ease_neighbours`
/// largest weights (by magnitude) kept (0 = all).
pub fn fit_with_features(ds: &Dataset, cfg: &Config) -> Result<Fitted> {
    let n = ds.items.len();
    let features = user_features(ds, cfg.ease_period_days, cfg.ease_user_attributes);
    let mut names: BTreeMap<&str, u32> = BTreeMap::new();
    for f in features.iter().flatten() {
        names.entry(f.as_str()).or_insert(0);
    }
    for (k, v) in names.values_mut().enumerate() {
        *v = (n + k) as u32;
    }
    let per_user: Vec<Vec<u32>> = ds
        .positives
        .iter()
        .zip(&features)
        .map(|(p, f)| p.iter().copied().chain(f.iter().map(|x| names[x.as_str()])).collect())
        .collect();
    let rows = n + names.len();
    let b = dense(&per_user, rows, n, cfg.ease_lambda, cfg.ease_dropout)?;
    let per_row: Vec<Vec<(u32, f32)>> =
        b.par_chunks(n.max(1)).enumerate().map(|(i, row)| sparsify(row, cfg.ease_neighbours, i)).collect();
    Ok(Fitted::ItemItem(ItemItemWeights::new(n, &per_row, Vec::new(), &per_user)))
}

/// Plain EASE over items, each item's `neighbours` largest weights (by magnitude) kept (0 = all).
pub fn fit(ds: &Dataset, lambda: f64, dropout: f64, neighbours: usize) -> Result<Vec<Vec<(u32, f32)>>> {
    let n = ds.items.len();
    let b = dense(&ds.positives, n, n, lambda, dropout)?;
    Ok(b.par_chunks(n.max(1)).enumerate().map(|(i, row)| sparsify(row, neighbours, i)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form_on_a_tiny_matrix() {
        let mut ds = Dataset { items: vec!["a".into(), "b".into()], ..Dataset::default() };
        ds.set_interactions(vec![vec![(0, 0), (1, 0)], vec![(0, 0)]]);
        // G + λI = [[2+1, 1], [1, 1+1]] (λ = 1); P = [[2, -1], [-1, 3]] / 5.
        // B_01 = -P_01 / P_11 = (1/5) / (3/5) = 1/3; B_10 = (1/5) / (2/5) = 1/2.
        let b = dense(&ds.positives, 2, 2, 1.0, 0.0).unwrap();
        assert!((b[1] - 1.0 / 3.0).abs() < 1e-6 && (b[2] - 0.5).abs() < 1e-6 && b[0] == 0.0, "{b:?}");
        assert_eq!(fit(&ds, 1.0, 0.0, 0).unwrap()[0].len(), 1);
    }
}
