//! Exact top-k over factor models in two passes: a fast first pass over item
//! factors quantised to 8-bit integers (the user vector to 16 bits) finds the
//! few items that can be in the top k, and the exact `f32` scores of [`dot`](crate::kernels::dot)
//! decide among those. Eight bits keep the pass's reads to one byte per
//! factor: for models larger than the processor's caches the pass is bound by
//! memory reads, not arithmetic.
//!
//! The first pass computes, for every item `i`, the integer dot product
//! `dᵢ = q(u) · q(vᵢ)` of the quantised user and item vectors (`q(x) =
//! round(x / s)`, one scale `s` for all items, one for the user). Integer
//! arithmetic is exact, so the pass gives the same `dᵢ` on every platform
//! whatever the instruction set (SSE2 natively, `simd128` in WebAssembly, a
//! plain loop elsewhere). With `c = s_u · s_v`, the exact score lies within
//! `c·dᵢ ± B` where
//!
//! ```text
//! B = ‖u‖₁·e_v + e_u·s_v·max‖q(vᵢ)‖₁ + γ·‖u‖∞·max‖vᵢ‖₁,  γ = n·2⁻²⁴ / (1 - n·2⁻²⁴), n = dims + 1
//! ```
//!
//! (`e` the largest quantisation error of a component, measured; the row
//! norms `max‖·‖₁` bounded by `dims` times the largest magnitude; the last
//! term bounds the rounding of the `f32` dot product itself). If the k-th
//! largest `dᵢ` among the items the filters keep is `τ`, then k items score
//! at least `c·τ - B`, and every item with `c·dᵢ + B` below that is strictly
//! worse than all of them: only items with `dᵢ ≥ τ - 2B/c` are scored
//! exactly. The answer is therefore exactly the answer of the plain scan,
//! ties included; typically a handful of items are scored exactly.
//!
//! Models whose factors are not all finite, or too large for `f32` sums to
//! stay finite, are not quantised, and user vectors of that kind are not
//! either: those requests take the plain scan.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::kernels::top_k_of;

/// Largest factor magnitude quantised (products of 64 such values and their
/// sums stay far from `f32` overflow).
const LIMIT: f64 = 1e15;
/// Dimensions beyond this are not quantised.
const MAX_DIMS: usize = 4096;
/// Fewer items than this take the plain scan.
const MIN_ITEMS: usize = 64;

/// Largest quantised magnitude of an item factor.
const ITEM_RANGE: i32 = 127;
/// Largest magnitude of an item factor stored at 8 bits: writers store
/// `-127..=127`, but a reader takes every `i8`, `-128` included, rather than
/// pay a pass over the matrix to refuse it.
const STORED_RANGE: i32 = 128;

/// Item factors quantised for the first pass.
#[derive(Clone, Debug)]
pub(crate) struct QuantizedFactors {
    dims: usize,
    /// Row length: `dims` rounded up to a multiple of 16, zero padded.
    stride: usize,
    /// Largest quantised magnitude of a user factor.
    user_range: i32,
    /// Item scale `s_v`.
    scale: f64,
    /// Number of rows.
    items: usize,
    /// Largest `|v - s_v·q(v)|` over all components.
    error: f64,
    /// A bound of every `‖q(vᵢ)‖₁`.
    q_l1: f64,
    /// A bound of every `‖vᵢ‖₁`.
    v_l1: f64,
}

/// Adding 1.5·2²³ rounds any `f32` below 2²² in magnitude to the nearest integer.
const ROUND: f32 = 12_582_912.0;

/// Lanes of the reductions in [`quantize`] and [`max_abs`]: eight
/// independent accumulators, so the compiler vectorises them.
const LANES: usize = 8;

/// Quantises a user vector `v` into `out` with `scale` (rounding to nearest,
/// clamped to `±range`) and returns a bound on the largest error `|v - scale·q|` and
/// a bound on `‖v‖₁`. `v` must be finite.
///
/// The error is measured in `f32`: `|x - q·s|` computed in `f32` is within
/// two roundings (each at most 2⁻²⁴ of a value no larger than `max |x|` plus
/// the error) of the true value, so `2⁻²² · max |x|` is added to cover them.
fn quantize(v: &[f32], range: i32, scale: f64, out: &mut [i16]) -> (f64, f64) {
    let s = scale as f32;
    let inv = if scale > 0.0 { (1.0 / scale) as f32 } else { 0.0 };
    let r = range as f32;
    let (mut error, mut big, mut l1) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
    let n = v.len().min(out.len());
    // One component into lane `j` (a macro, so that the full-chunk loop below
    // has literal bounds and vectorises).
    macro_rules! one {
        ($x:expr, $o:expr, $j:expr) => {{
            let (x, j) = ($x, $j);
            let y = x * inv;
            let t = clamp(y, r) + ROUND;
            let q = t - ROUND;
            // t = 1.5·2²³ + q exactly, so its low mantissa bits hold q: the
            // integer comes out of a subtraction of bit patterns (which
            // vectorises, where a float-to-integer cast does not).
            *$o = (t.to_bits() as i32 - ROUND.to_bits() as i32) as i16;
            let e = (x - q * s).abs();
            error[j] = if e > error[j] { e } else { error[j] };
            let a = x.abs();
            big[j] = if a > big[j] { a } else { big[j] };
            l1[j] += a;
        }};
    }
    let mut vs = v[..n].chunks_exact(LANES);
    let mut os = out[..n].chunks_exact_mut(LANES);
    for (x, o) in (&mut vs).zip(&mut os) {
        for j in 0..LANES {
            one!(x[j], &mut o[j], j);
        }
    }
    for (j, (x, o)) in vs.remainder().iter().zip(os.into_remainder()).enumerate() {
        one!(*x, o, j);
    }
    let lane_max = |a: [f32; LANES]| a.into_iter().fold(0f64, |m, x| m.max(f64::from(x)));
    // The largest error of a component, plus the rounding slack of its measurement.
    let error = lane_max(error) + lane_max(big) * f64::powi(2.0, -22) + f64::from(s) * f64::powi(2.0, -22);
    // An f32 sum of n terms is within n·2⁻²⁴ of the exact sum, relatively.
    let l1 = l1.iter().map(|x| f64::from(*x)).sum::<f64>() * (1.0 + (v.len() + LANES) as f64 * f64::powi(2.0, -23));
    (error, l1)
}

/// Quantises item factors, all within `±ITEM_RANGE·scale`, to the nearest
/// integers (the error bound is in [`QuantizedFactors::new`]).
fn quantize_items(v: &[f32], scale: f64, out: &mut [i8]) {
    let inv = (1.0 / scale) as f32;
    let r = ITEM_RANGE as f32;
    for (x, o) in v.iter().zip(out) {
        // As in `quantize`: rounding by adding 1.5·2²³, the integer from the bits.
        let t = clamp(x * inv, r) + ROUND;
        *o = (t.to_bits() as i32 - ROUND.to_bits() as i32) as i8;
    }
}

/// `y` clamped to `±r`, as two selects: they vectorise natively and in
/// WebAssembly (`f32x4.pmin`/`pmax`), where `f32::max` becomes a call to
/// `fmaxf` per value (its NaN rule is not the instruction's).
#[inline(always)]
fn clamp(y: f32, r: f32) -> f32 {
    let y = if y < -r { -r } else { y };
    if y > r { r } else { y }
}

/// The largest magnitude in `v`; `None` if any value is not finite or above [`LIMIT`].
fn max_abs(v: &[f32]) -> Option<f64> {
    // x · 0 is NaN exactly for infinite and NaN values.
    let (mut poison, mut m) = ([0f32; LANES], [0f32; LANES]);
    let mut chunks = v.chunks_exact(LANES);
    for x in &mut chunks {
        for j in 0..LANES {
            poison[j] += x[j] * 0.0;
            m[j] = if x[j].abs() > m[j] { x[j].abs() } else { m[j] };
        }
    }
    for (j, &x) in chunks.remainder().iter().enumerate() {
        poison[j] += x * 0.0;
        m[j] = if x.abs() > m[j] { x.abs() } else { m[j] };
    }
    let m = m.into_iter().fold(0f64, |a, x| a.max(f64::from(x)));
    (poison.iter().all(|p| *p == 0.0) && m <= LIMIT).then_some(m)
}

impl QuantizedFactors {
    /// Quantises `factors` (`items × dims`, row major) into rows of
    /// [`stride`](Self::stride), returned with the pass that reads them;
    /// `None` if the model is too small to gain, or its factors are
    /// unsuitable (see the module docs).
    pub(crate) fn new(factors: &[f32], dims: usize) -> Option<(Self, Vec<i8>)> {
        if dims == 0 || dims > MAX_DIMS || !factors.len().is_multiple_of(dims) || factors.len() / dims < MIN_ITEMS {
            return None;
        }
        let n = factors.len() / dims;
        let stride = Self::stride(dims);
        let user_range = Self::user_range(stride);
        let v_max = max_abs(factors)?;
        let scale = v_max / f64::from(ITEM_RANGE);
        let mut rows = vec![0i8; n * stride];
        if stride == dims {
            // Unpadded rows: the whole matrix in one pass.
            quantize_items(factors, scale, &mut rows);
        } else {
            for (v, q) in factors.chunks_exact(dims).zip(rows.chunks_exact_mut(stride)) {
                quantize_items(v, scale, q);
            }
        }
        // Every |x| ≤ 127·s: `x·(1/s)` computed in f32 (two roundings) is
        // within 127·2⁻²³ of x/s, nothing clamps beyond that, and rounding to
        // the nearest integer adds at most 1/2.
        let error = scale * (0.5 + f64::from(ITEM_RANGE) * f64::powi(2.0, -22));
        // Bounds of the row norms from the largest magnitudes (they only
        // weigh the small terms of the bound; exact per-row sums would cost
        // a pass per row at every load).
        let q_l1 = (dims as f64) * f64::from(ITEM_RANGE);
        let v_l1 = (dims as f64) * v_max;
        Some((Self { dims, stride, user_range, scale, items: n, error, q_l1, v_l1 }, rows))
    }

    /// The row length of the first pass for `dims` dimensions: a multiple of
    /// 16, the rows zero padded.
    pub(crate) fn stride(dims: usize) -> usize {
        dims.div_ceil(16) * 16
    }

    /// The first pass over `items` rows of factors stored at 8 bits (any `i8`
    /// `q` standing for `scale · q`, rows of [`stride`](Self::stride),
    /// kept by the caller): the stored integers are the quantised rows, and
    /// the only error is the rounding of the `f32` product `scale · q`.
    /// `None` as for [`new`](Self::new).
    pub(crate) fn from_stored(items: usize, dims: usize, scale: f32) -> Option<Self> {
        if dims == 0 || dims > MAX_DIMS || items < MIN_ITEMS {
            return None;
        }
        let scale = f64::from(scale);
        let v_max = scale * f64::from(STORED_RANGE);
        if !(scale > 0.0 && v_max <= LIMIT) {
            return None;
        }
        let stride = Self::stride(dims);
        let user_range = Self::user_range(stride);
        // `scale · q` in f32 is within 2⁻²⁴ of itself (exact for a power-of-two scale).
        let error = v_max * f64::powi(2.0, -24);
        let q_l1 = (dims as f64) * f64::from(STORED_RANGE);
        let v_l1 = (dims as f64) * v_max * (1.0 + f64::powi(2.0, -23));
        Some(Self { dims, stride, user_range, scale, items, error, q_l1, v_l1 })
    }

    /// Largest quantised magnitude of a user factor for rows of `stride`: every
    /// `|dot| ≤ stride · user_range · STORED_RANGE` must fit in an `i32`.
    fn user_range(stride: usize) -> i32 {
        ((f64::from(i32::MAX) / (stride as f64 * f64::from(STORED_RANGE))).floor() as i32).min(i32::from(i16::MAX))
    }

    /// The exact top `k` by `exact(i)`, the `f32` [`dot`](crate::kernels::dot) of `user` with
    /// item `i`'s factors, among the items `keep` accepts, as [`top_k_of`]
    /// over all items would give it; `None` if this user vector cannot take
    /// the fast path (the caller scans instead). `rows` are the quantised
    /// rows this pass was made for.
    pub(crate) fn top_k(
        &self,
        rows: &[i8],
        user: &[f32],
        k: usize,
        keep: &impl Fn(usize) -> bool,
        exact: impl Fn(usize) -> f32,
    ) -> Option<Vec<(u32, f32)>> {
        if user.len() != self.dims || k == 0 || rows.len() != self.items * self.stride {
            return None;
        }
        let u_max = max_abs(user)?;
        let u_scale = u_max / f64::from(self.user_range);
        let c = u_scale * self.scale;
        if c.is_nan() || c <= 0.0 {
            return None;
        }
        let mut uq = vec![0i16; self.stride];
        let (u_error, u_l1) = quantize(user, self.user_range, u_scale, &mut uq);
        // γₙ = n·u / (1 - n·u) bounds the relative rounding of an n-term f32 dot product.
        let nu = (self.dims + 1) as f64 * f64::powi(2.0, -24);
        let rounding = nu / (1.0 - nu) * u_max * self.v_l1;
        let bound = (u_l1 * self.error + u_error * self.scale * self.q_l1 + rounding) * (1.0 + 1e-6);
        let margin = (2.0 * bound / c).ceil() + 1.0;
        if margin.is_nan() || margin >= 1e12 {
            return None;
        }
        let margin = margin as i64;

        let n = self.items;
        SCRATCH.with(|scratch| {
            // The first-pass scores and the block maxima go to buffers kept
            // per thread (grown once, never cleared: every value is
            // overwritten), or to fresh ones if those are in use.
            let mut own = Scratch::default();
            let mut kept = scratch.try_borrow_mut();
            let buffer = match kept.as_deref_mut() {
                Ok(b) => b,
                Err(_) => &mut own,
            };
            let blocks = n.div_ceil(BLOCK);
            if buffer.dots.len() < n {
                buffer.dots.resize(n, 0);
            }
            if buffer.maxima.len() < blocks {
                buffer.maxima.resize(blocks, 0);
            }
            let (dots, maxima) = (&mut buffer.dots[..n], &mut buffer.maxima[..blocks]);
            let written = simd::dots(rows, self.stride, &uq, dots, maxima);
            for (m, block) in maxima.iter_mut().zip(dots.chunks(BLOCK)).skip(written) {
                *m = block.iter().fold(i32::MIN, |m, &x| m.max(x));
            }
            Some(self.select(dots, maxima, k, margin, keep, exact))
        })
    }

    /// The exact top `k` from the first-pass scores `dots` and their block
    /// `maxima` (see the module docs).
    #[inline(never)]
    fn select(
        &self,
        dots: &[i32],
        maxima: &[i32],
        k: usize,
        margin: i64,
        keep: &impl Fn(usize) -> bool,
        exact: impl Fn(usize) -> f32,
    ) -> Vec<(u32, f32)> {
        // The k-th largest first-pass score among the kept items (a min-heap
        // of k), skipping blocks whose best score cannot enter it.
        let mut best: BinaryHeap<Reverse<i32>> = BinaryHeap::with_capacity(k + 1);
        let mut floor = i32::MIN;
        for (b, (block, &top)) in dots.chunks(BLOCK).zip(maxima).enumerate() {
            if best.len() == k && top <= floor {
                continue;
            }
            for (j, &d) in block.iter().enumerate() {
                if (best.len() == k && d <= floor) || !keep(b * BLOCK + j) {
                    continue;
                }
                best.push(Reverse(d));
                if best.len() > k {
                    best.pop();
                }
                if best.len() == k {
                    floor = best.peek().map_or(i32::MIN, |w| w.0);
                }
            }
        }
        let threshold = match best.peek() {
            Some(w) if best.len() == k => i64::from(w.0) - margin,
            // Fewer than k items kept: all of them are the answer.
            _ => i64::MIN,
        };
        let mut candidates = Vec::new();
        for (b, (block, &top)) in dots.chunks(BLOCK).zip(maxima).enumerate() {
            if i64::from(top) >= threshold {
                let hits = block.iter().enumerate().filter(|(_, x)| i64::from(**x) >= threshold);
                candidates.extend(hits.map(|(j, _)| b * BLOCK + j));
            }
        }
        top_k_of(candidates.into_iter(), k, exact, keep)
    }
}

thread_local! {
    /// The first-pass buffers of the last request on this thread.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// First-pass scores, and the largest of each block of [`BLOCK`].
#[derive(Default)]
struct Scratch {
    dots: Vec<i32>,
    maxima: Vec<i32>,
}

/// Items per block of the selection passes.
const BLOCK: usize = 16;

/// The first pass: `out[i] = rows[i] · u` for every row of `stride` values
/// (`out` holds one score per row), and the largest score of each block of
/// [`BLOCK`] rows into `maxima` as far as the vector loop covers whole blocks.
#[allow(unsafe_code)]
mod simd {
    // The vector loop takes four rows at a time and writes one maximum per four groups.
    const _: () = assert!(super::BLOCK == 16);

    /// The vector loop, for an instruction set given as closures: `$load`
    /// reads sixteen `i8` lanes (or eight `i16`), `$widen` turns sixteen
    /// `i8` lanes into their even and odd lanes as eight `i16` each, `$madd`
    /// multiplies `i16` lane pairs and adds neighbours into four `i32` lanes,
    /// `$add` and `$max` work lane by lane, `$splat` fills four lanes,
    /// `$lanes` reads them out, `$sum4` adds the lanes of four vectors into
    /// one (lane `i` the sum of vector `i`). Returns the number of leading
    /// blocks whose maximum it wrote.
    ///
    /// Four rows go together, the dimensions outside and the rows inside, so
    /// every vector loaded is used at once. The user vector's length is on
    /// purpose not a constant to the optimiser: it then keeps this order
    /// (one early-exit test per sixteen dimensions), where with a known
    /// length it reassociates the sums and hoists all row loads of a group
    /// in front, which a WebAssembly compiler (wasmtime's Cranelift) spills
    /// to the stack: 1.5x slower in wasmtime, and no faster natively.
    #[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
    macro_rules! rows_dot {
        ($rows:expr, $stride:expr, $u:expr, $out:expr, $maxima:expr,
         $load:expr, $widen:expr, $madd:expr, $add:expr, $max:expr, $splat:expr, $lanes:expr, $sum4:expr) => {{
            let (rows, u, out, maxima): (&[i8], &[i16], &mut [i32], &mut [i32]) = ($rows, $u, $out, $maxima);
            let (load, widen, madd, add) = ($load, $widen, $madd, $add);
            // The user vector's even and odd lanes of every sixteen.
            let uv: Vec<_> = u
                .chunks_exact(16)
                .map(|c| {
                    let even: [i16; 8] = std::array::from_fn(|j| c[2 * j]);
                    let odd: [i16; 8] = std::array::from_fn(|j| c[2 * j + 1]);
                    (load(even.as_slice()), load(odd.as_slice()))
                })
                .collect();
            let dot16 = |acc, x: &[i8], (e, o)| {
                let (xe, xo) = widen(x);
                add(acc, add(madd(xe, e), madd(xo, o)))
            };
            let zero = $splat(0);
            macro_rules! kernel {
                ($s:expr) => {{
                    let s: usize = $s;
                    let mut groups = rows.chunks_exact(4 * s);
                    let (full, rest) = out.split_at_mut(groups.len() * 4);
                    let mut written = 0;
                    let mut m = $splat(i32::MIN);
                    for (g, (b, o)) in (&mut groups).zip(full.chunks_exact_mut(4)).enumerate() {
                        let (r01, r23) = b.split_at(2 * s);
                        let ((r0, r1), (r2, r3)) = (r01.split_at(s), r23.split_at(s));
                        let mut acc = [zero; 4];
                        let lanes = r0.chunks_exact(16).zip(r1.chunks_exact(16)).zip(r2.chunks_exact(16));
                        for ((((x0, x1), x2), x3), &w) in lanes.zip(r3.chunks_exact(16)).zip(&uv) {
                            acc[0] = dot16(acc[0], x0, w);
                            acc[1] = dot16(acc[1], x1, w);
                            acc[2] = dot16(acc[2], x2, w);
                            acc[3] = dot16(acc[3], x3, w);
                        }
                        let sums = $sum4(acc);
                        o.copy_from_slice(&$lanes(sums));
                        m = $max(m, sums);
                        if g % 4 == 3 {
                            let [a, b, c, d] = $lanes(m);
                            maxima[written] = a.max(b).max(c.max(d));
                            written += 1;
                            m = $splat(i32::MIN);
                        }
                    }
                    for (r, o) in groups.remainder().chunks_exact(s).zip(rest) {
                        let a = r.chunks_exact(16).zip(&uv).fold(zero, |a, (x, &w)| dot16(a, x, w));
                        *o = $lanes(a).iter().sum();
                    }
                    written
                }};
            }
            // Literal row lengths for the common strides: the inner loop unrolls.
            match $stride {
                16 => kernel!(16),
                32 => kernel!(32),
                64 => kernel!(64),
                128 => kernel!(128),
                s => kernel!(s),
            }
        }};
    }

    /// SSE2, part of every x86-64 processor.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn dots(rows: &[i8], stride: usize, u: &[i16], out: &mut [i32], maxima: &mut [i32]) -> usize {
        // SAFETY: SSE2 is enabled on every x86_64 target (it is part of the
        // architecture's baseline), which is all `sse2_dots` requires.
        unsafe { sse2_dots(rows, stride, u, out, maxima) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse2")]
    fn sse2_dots(rows: &[i8], stride: usize, u: &[i16], out: &mut [i32], maxima: &mut [i32]) -> usize {
        use std::arch::x86_64::*;
        /// Sixteen bytes (sixteen `i8` or eight `i16` lanes).
        fn load<T>(x: &[T]) -> __m128i {
            assert_eq!(size_of_val(x), 16, "sixteen bytes");
            // SAFETY: `x` points to 16 readable bytes; unaligned loads are allowed.
            unsafe { _mm_loadu_si128(x.as_ptr().cast()) }
        }
        let lanes = |a: __m128i| {
            [
                _mm_cvtsi128_si32(a),
                _mm_cvtsi128_si32(_mm_shuffle_epi32(a, 1)),
                _mm_cvtsi128_si32(_mm_shuffle_epi32(a, 2)),
                _mm_cvtsi128_si32(_mm_shuffle_epi32(a, 3)),
            ]
        };
        rows_dot!(
            rows,
            stride,
            u,
            out,
            maxima,
            |x: &[i16]| load(x),
            // Byte 2j of a 16-bit lane is its low half: shifted up and back
            // (arithmetically) it is lane j of the even bytes; the high half
            // shifted down is lane j of the odd bytes.
            |x: &[i8]| {
                let x = load(x);
                (_mm_srai_epi16(_mm_slli_epi16(x, 8), 8), _mm_srai_epi16(x, 8))
            },
            _mm_madd_epi16,
            _mm_add_epi32,
            // SSE2 has no 32-bit maximum: compare and blend.
            |a: __m128i, b: __m128i| {
                let gt = _mm_cmpgt_epi32(a, b);
                _mm_or_si128(_mm_and_si128(gt, a), _mm_andnot_si128(gt, b))
            },
            _mm_set1_epi32,
            lanes,
            |[x0, x1, x2, x3]: [__m128i; 4]| {
                let s01 = _mm_add_epi32(_mm_unpacklo_epi32(x0, x1), _mm_unpackhi_epi32(x0, x1));
                let s23 = _mm_add_epi32(_mm_unpacklo_epi32(x2, x3), _mm_unpackhi_epi32(x2, x3));
                _mm_add_epi32(_mm_unpacklo_epi64(s01, s23), _mm_unpackhi_epi64(s01, s23))
            }
        )
    }

    /// `simd128`, enabled for the project's WebAssembly builds. Never
    /// inlined: inside a large caller (the edge components are built with
    /// LTO) the loop loses registers to the caller's values and spills.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[inline(never)]
    pub(super) fn dots(rows: &[i8], stride: usize, u: &[i16], out: &mut [i32], maxima: &mut [i32]) -> usize {
        use std::arch::wasm32::*;
        /// Sixteen bytes (sixteen `i8` or eight `i16` lanes).
        fn load<T>(x: &[T]) -> v128 {
            assert_eq!(size_of_val(x), 16, "sixteen bytes");
            // SAFETY: `x` points to 16 readable bytes; WebAssembly loads need no alignment.
            unsafe { v128_load(x.as_ptr().cast()) }
        }
        rows_dot!(
            rows,
            stride,
            u,
            out,
            maxima,
            |x: &[i16]| load(x),
            // As for SSE2: the low byte of each 16-bit lane shifted up and
            // back (arithmetically), the high byte shifted down.
            |x: &[i8]| {
                let x = load(x);
                (i16x8_shr(i16x8_shl(x, 8), 8), i16x8_shr(x, 8))
            },
            i32x4_dot_i16x8,
            i32x4_add,
            i32x4_max,
            i32x4_splat,
            |a: v128| {
                [
                    i32x4_extract_lane::<0>(a),
                    i32x4_extract_lane::<1>(a),
                    i32x4_extract_lane::<2>(a),
                    i32x4_extract_lane::<3>(a),
                ]
            },
            |[x0, x1, x2, x3]: [v128; 4]| {
                let s01 = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(x0, x1), i32x4_shuffle::<2, 6, 3, 7>(x0, x1));
                let s23 = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(x2, x3), i32x4_shuffle::<2, 6, 3, 7>(x2, x3));
                i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(s01, s23), i32x4_shuffle::<2, 3, 6, 7>(s01, s23))
            }
        )
    }

    /// Anywhere else: a plain loop (same integers); writes no maxima.
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    pub(super) fn dots(rows: &[i8], stride: usize, u: &[i16], out: &mut [i32], _maxima: &mut [i32]) -> usize {
        portable(rows, stride, u, out);
        0
    }

    #[cfg_attr(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")), allow(dead_code))]
    pub(super) fn portable(rows: &[i8], stride: usize, u: &[i16], out: &mut [i32]) {
        for (r, o) in rows.chunks_exact(stride).zip(out.iter_mut()) {
            *o = r.iter().zip(u).map(|(&x, &y)| i32::from(x) * i32::from(y)).fold(0i32, i32::wrapping_add);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{dot, top_k};

    fn lcg(seed: u64) -> impl FnMut() -> f32 {
        let mut s = seed;
        move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        }
    }

    #[test]
    fn the_simd_pass_equals_the_portable_loop() {
        let mut next = lcg(1);
        for dims in [8, 13, 64, 100] {
            let f: Vec<f32> = (0..200 * dims).map(|_| next() * 3.0).collect();
            let (q, rows) = QuantizedFactors::new(&f, dims).unwrap();
            let u: Vec<f32> = (0..dims).map(|_| next()).collect();
            let mut uq = vec![0i16; q.stride];
            quantize(&u, q.user_range, 0.5 / f64::from(q.user_range), &mut uq);
            let (mut a, mut b, mut maxima) = (vec![0; 200], vec![0; 200], vec![i32::MIN; 13]);
            let written = simd::dots(&rows, q.stride, &uq, &mut a, &mut maxima);
            simd::portable(&rows, q.stride, &uq, &mut b);
            assert_eq!(a, b, "dims {dims}");
            assert!(written <= 12, "only whole blocks");
            for (m, block) in maxima.iter().zip(b.chunks(BLOCK)).take(written) {
                assert_eq!(*m, *block.iter().max().unwrap(), "dims {dims}");
            }
            if cfg!(target_arch = "x86_64") {
                assert_eq!(written, 12, "the vector loop covers the whole blocks");
            }
        }
    }

    #[test]
    fn item_errors_stay_within_the_bound() {
        let mut next = lcg(5);
        for (dims, spread) in [(64, 1.0f32), (13, 1e-3), (100, 37.0)] {
            let mut f: Vec<f32> = (0..300 * dims).map(|_| next() * spread).collect();
            // The extremes, which quantise to exactly ±ITEM_RANGE.
            f[3] = spread;
            f[4] = -spread;
            let (q, rows) = QuantizedFactors::new(&f, dims).unwrap();
            for (v, r) in f.chunks_exact(dims).zip(rows.chunks_exact(q.stride)) {
                for (x, &i) in v.iter().zip(r) {
                    let e = (f64::from(*x) - q.scale * f64::from(i)).abs();
                    assert!(e <= q.error, "{x} -> {i}: error {e} above {}", q.error);
                }
                assert!(r[dims..].iter().all(|&p| p == 0), "padding is zero");
                assert!(v.iter().map(|x| f64::from(x.abs())).sum::<f64>() <= q.v_l1);
                assert!(r.iter().map(|x| f64::from(x.unsigned_abs())).sum::<f64>() <= q.q_l1);
            }
        }
    }

    #[test]
    fn two_passes_give_exactly_the_plain_scan() {
        let mut next = lcg(7);
        for (n, dims, k) in [(1000, 64, 10), (500, 13, 50), (300, 32, 1), (2000, 128, 100), (100, 16, 200)] {
            let mut f: Vec<f32> = (0..n * dims).map(|_| next()).collect();
            // Near ties and exact ties: copies of rows, and rows scaled a hair.
            for i in (0..n).step_by(17) {
                let src = (i * 31 + 5) % n;
                let row: Vec<f32> = f[src * dims..(src + 1) * dims].to_vec();
                let scale = if i % 2 == 0 { 1.0 } else { 1.0 + 1e-6 };
                for (j, x) in row.iter().enumerate() {
                    f[i * dims + j] = x * scale;
                }
            }
            let (q, rows) = QuantizedFactors::new(&f, dims).unwrap();
            for trial in 0..20 {
                let u: Vec<f32> = (0..dims).map(|_| next() * (1.0 + trial as f32)).collect();
                let keep = |i: usize| i % 7 != 3;
                let exact = |i: usize| dot(&u, &f[i * dims..(i + 1) * dims]);
                let fast = q.top_k(&rows, &u, k, &keep, exact).unwrap();
                let plain = top_k(n, k, exact, keep);
                assert_eq!(fast, plain, "n {n} dims {dims} k {k} trial {trial}");
            }
        }
    }

    #[test]
    fn stored_8_bit_factors_give_exactly_the_plain_scan() {
        let mut next = lcg(11);
        for (n, dims, k, scale) in [(1000, 64, 10, 1.0 / 128.0), (500, 13, 50, 0.37), (300, 32, 1, 3e-5)] {
            let mut q: Vec<i8> = (0..n * dims).map(|_| (next() * 254.0).round() as i8).collect();
            // Readers take -128 too, though writers do not write it.
            for i in (0..n * dims).step_by(7) {
                q[i] = i8::MIN;
            }
            // Exact ties: copies of rows.
            for i in (0..n).step_by(13) {
                let src = (i * 31 + 5) % n;
                let row = q[src * dims..(src + 1) * dims].to_vec();
                q[i * dims..(i + 1) * dims].copy_from_slice(&row);
            }
            let first = QuantizedFactors::from_stored(n, dims, scale).unwrap();
            let f: Vec<f32> = q.iter().map(|&x| scale * f32::from(x)).collect();
            let mut rows = vec![0i8; n * first.stride];
            for (v, r) in q.chunks_exact(dims).zip(rows.chunks_exact_mut(first.stride)) {
                r[..dims].copy_from_slice(v);
            }
            for (v, r) in f.chunks_exact(dims).zip(rows.chunks_exact(first.stride)) {
                for (x, &i) in v.iter().zip(r) {
                    assert!((f64::from(*x) - first.scale * f64::from(i)).abs() <= first.error);
                }
                assert!(v.iter().map(|x| f64::from(x.abs())).sum::<f64>() <= first.v_l1);
            }
            for trial in 0..20 {
                let u: Vec<f32> = (0..dims).map(|_| next() * (1.0 + trial as f32)).collect();
                let keep = |i: usize| i % 5 != 2;
                let exact = |i: usize| dot(&u, &f[i * dims..(i + 1) * dims]);
                let fast = first.top_k(&rows, &u, k, &keep, exact).unwrap();
                assert_eq!(fast, top_k(n, k, exact, keep), "n {n} dims {dims} k {k} trial {trial}");
            }
        }
        assert!(QuantizedFactors::from_stored(10, 64, 1.0).is_none(), "too few items to gain");
        assert!(QuantizedFactors::from_stored(100, 64, 1e20).is_none(), "too large for f32 sums");
        let first = QuantizedFactors::from_stored(100, 64, 1.0).unwrap();
        assert!(first.top_k(&[1; 64 * 99], &[1.0; 64], 5, &|_| true, |_| 0.0).is_none(), "rows of another model");
    }

    #[test]
    fn unsuitable_vectors_take_the_plain_scan() {
        let mut next = lcg(3);
        let f: Vec<f32> = (0..100 * 8).map(|_| next()).collect();
        assert!(QuantizedFactors::new(&f[..8 * 10], 8).is_none(), "too few items to gain");
        let mut bad = f.clone();
        bad[17] = f32::NAN;
        assert!(QuantizedFactors::new(&bad, 8).is_none());
        bad[17] = 1e30;
        assert!(QuantizedFactors::new(&bad, 8).is_none());
        let (q, r) = QuantizedFactors::new(&f, 8).unwrap();
        let exact = |u: &[f32], i: usize| dot(u, &f[i * 8..(i + 1) * 8]);
        assert!(q.top_k(&r, &[0.0; 8], 5, &|_| true, |i| exact(&[0.0; 8], i)).is_none(), "zero user vector");
        assert!(q.top_k(&r, &[f32::INFINITY; 8], 5, &|_| true, |i| exact(&[f32::INFINITY; 8], i)).is_none());
        assert!(q.top_k(&r, &[1.0; 7], 5, &|_| true, |i| exact(&[1.0; 7], i)).is_none());
        let fewer = q.top_k(&r, &[1.0; 8], 5, &|i| i < 3, |i| exact(&[1.0; 8], i)).unwrap();
        assert_eq!(fewer.len(), 3, "fewer kept than k");
    }
}
