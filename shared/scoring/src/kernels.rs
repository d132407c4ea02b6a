//! Kernels shared by scoring and training: a dot product with a fixed
//! summation order, top-k selection with ties broken by index, and a small
//! Cholesky solve. They give bit-identical results natively and in
//! WebAssembly, which is what lets offline evaluation and the edge agree.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Solves `A x = b` in place for a symmetric positive definite `A` (`d × d`,
/// lower triangle used), leaving `x` in `b`. False if `A` is not positive definite.
pub fn cholesky_solve(a: &mut [f64], b: &mut [f64], d: usize) -> bool {
    for j in 0..d {
        let mut diag = a[j * d + j];
        for k in 0..j {
            diag -= a[j * d + k] * a[j * d + k];
        }
        if diag.is_nan() || diag <= 0.0 || !diag.is_finite() {
            return false;
        }
        let l = diag.sqrt();
        a[j * d + j] = l;
        for i in j + 1..d {
            let mut x = a[i * d + j];
            for k in 0..j {
                x -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = x / l;
        }
    }
    for i in 0..d {
        let mut x = b[i];
        for k in 0..i {
            x -= a[i * d + k] * b[k];
        }
        b[i] = x / a[i * d + i];
    }
    for i in (0..d).rev() {
        let mut x = b[i];
        for k in i + 1..d {
            x -= a[k * d + i] * b[k];
        }
        b[i] = x / a[i * d + i];
    }
    true
}

/// Dot product with a fixed summation order (sixteen lanes, summed
/// pairwise, then the tail), so native and WebAssembly builds agree bit for
/// bit. Sixteen independent lanes keep four 128-bit vector accumulators busy
/// (SSE natively, `simd128` in WebAssembly).
///
/// Common embedding sizes (16, 32, 64, 128) take a path with the length
/// known at compile time, which the compiler unrolls completely: the same
/// additions in the same order, without a loop (in WebAssembly each loop
/// iteration would also pay the host's deadline check).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    macro_rules! fixed {
        ($($len:literal),*) => {
            match n {
                $($len => {
                    if let (Ok(x), Ok(y)) = (<&[f32; $len]>::try_from(a), <&[f32; $len]>::try_from(b)) {
                        return dot_lanes(x, y);
                    }
                })*
                _ => {}
            }
        };
    }
    fixed!(16, 32, 64, 128);
    dot_lanes(a, b)
}

/// The sixteen-lane sum of [`dot`] (`a` and `b` of equal length).
#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for j in 0..LANES {
            acc[j] += x[j] * y[j];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    let mut half = [0f32; 8];
    for j in 0..8 {
        half[j] = acc[j] + acc[j + 8];
    }
    ((half[0] + half[4]) + (half[1] + half[5])) + ((half[2] + half[6]) + (half[3] + half[7])) + tail
}

#[derive(PartialEq)]
/// A scored index; "greater" is better: higher score, then lower index.
pub(crate) struct Entry(pub(crate) f32, pub(crate) u32);
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// "Greater" means "better": higher score, then lower index.
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then_with(|| other.1.cmp(&self.1))
    }
}

/// The `k` best indices in `0..n` by `score` among those `keep` accepts,
/// best first. NaN scores rank last.
pub fn top_k(n: usize, k: usize, score: impl FnMut(usize) -> f32, keep: impl Fn(usize) -> bool) -> Vec<(u32, f32)> {
    top_k_of(0..n, k.min(n), score, keep)
}

/// [`top_k`] over the given indices (ascending, so that ties break by index).
pub(crate) fn top_k_of(
    indices: impl Iterator<Item = usize>,
    k: usize,
    mut score: impl FnMut(usize) -> f32,
    keep: impl Fn(usize) -> bool,
) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<std::cmp::Reverse<Entry>> = BinaryHeap::with_capacity(k.min(4096) + 1);
    for i in indices {
        if !keep(i) {
            continue;
        }
        let mut s = score(i);
        if s.is_nan() {
            s = f32::NEG_INFINITY;
        }
        let e = Entry(s, i as u32);
        if heap.len() < k {
            heap.push(std::cmp::Reverse(e));
        } else if let Some(worst) = heap.peek()
            && e > worst.0
        {
            heap.pop();
            heap.push(std::cmp::Reverse(e));
        }
    }
    let mut out: Vec<Entry> = heap.into_iter().map(|r| r.0).collect();
    out.sort_by(|a, b| b.cmp(a));
    out.into_iter().map(|e| (e.1, e.0)).collect()
}
