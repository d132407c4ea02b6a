//! Dense linear algebra for closed-form recipes, in plain Rust (no BLAS or
//! LAPACK): Cholesky factorisation and the inverse of a symmetric positive
//! definite matrix. Matrices are row major `n × n` slices of `f64`.

use rayon::prelude::*;

use crate::{Error, Result};

/// Dot product with four independent accumulators (vectorises well).
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..4 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Cholesky factorisation in place: on success the lower triangle of `a`
/// holds `L` with `A = L Lᵀ` (the strict upper triangle is zeroed).
pub fn cholesky(a: &mut [f64], n: usize) -> Result<()> {
    if a.len() != n * n {
        return Err(Error::Data(format!("cholesky: {} values for a {n}×{n} matrix", a.len())));
    }
    for i in 0..n {
        let (done, rest) = a.split_at_mut(i * n);
        let row = &mut rest[..n];
        for j in 0..=i {
            let lj = &done.get(j * n..j * n + j).unwrap_or(&[]);
            let s = if j < i { row[j] - dot(&row[..j], lj) } else { row[i] - dot(&row[..i], &row[..i]) };
            if j < i {
                let d = done[j * n + j];
                row[j] = s / d;
            } else {
                if s <= 0.0 || !s.is_finite() {
                    return Err(Error::Data(format!("cholesky: matrix is not positive definite (pivot {i})")));
                }
                row[i] = s.sqrt();
            }
        }
        row[i + 1..].fill(0.0);
    }
    Ok(())
}

/// The inverse of a symmetric positive definite matrix, through its Cholesky
/// factor: `A⁻¹ = L⁻ᵀ L⁻¹`. Columns of `L⁻¹` are solved in parallel.
pub fn spd_inverse(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let mut l = a.to_vec();
    cholesky(&mut l, n)?;
    // Row c of `mt` is column c of M = L⁻¹ (zero above the diagonal of M).
    let mut mt = vec![0f64; n * n];
    mt.par_chunks_mut(n).enumerate().for_each(|(c, m)| {
        m[c] = 1.0 / l[c * n + c];
        for i in c + 1..n {
            let li = &l[i * n..i * n + i];
            m[i] = -dot(&li[c..i], &m[c..i]) / l[i * n + i];
        }
    });
    // (A⁻¹)[a][b] = sum over i of M[i][a] M[i][b] = mt[a] · mt[b], from max(a, b) on.
    let mut inv = vec![0f64; n * n];
    inv.par_chunks_mut(n).enumerate().for_each(|(r, row)| {
        let ma = &mt[r * n..(r + 1) * n];
        for (b, x) in row.iter_mut().enumerate() {
            let from = r.max(b);
            *x = dot(&ma[from..], &mt[b * n + from..(b + 1) * n]);
        }
    });
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_of_a_small_spd_matrix() {
        // A = [[4, 2, 0.4], [2, 5, 1], [0.4, 1, 3]]
        let a = [4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let inv = spd_inverse(&a, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let x: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((x - f64::from(u8::from(i == j))).abs() < 1e-12, "{i},{j}: {x}");
            }
        }
        let mut l = a.to_vec();
        cholesky(&mut l, 3).unwrap();
        assert_eq!(l[0], 2.0);
        assert_eq!(l[1], 0.0);
        assert!(cholesky(&mut [1.0, 2.0, 2.0, 1.0], 2).is_err());
    }

    #[test]
    fn inverse_of_a_larger_random_matrix() {
        let n = 37;
        let x: Vec<f64> = (0..n * n).map(|i| ((i * 7919 % 101) as f64 / 101.0) - 0.5).collect();
        let mut a = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] =
                    (0..n).map(|k| x[k * n + i] * x[k * n + j]).sum::<f64>() + if i == j { 1.0 } else { 0.0 };
            }
        }
        let inv = spd_inverse(&a, n).unwrap();
        for i in 0..n {
            for j in 0..n {
                let v: f64 = (0..n).map(|k| a[i * n + k] * inv[k * n + j]).sum();
                assert!((v - f64::from(u8::from(i == j))).abs() < 1e-9);
            }
        }
    }
}
