//! The scoring core: a loaded model answers top-k questions.
//!
//! The same code runs natively (evaluation, tests) and inside the edge
//! WebAssembly modules, and gives bit-identical answers on both: dot products
//! sum in a fixed order, and ties break by item order.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::kernels::{Entry, cholesky_solve};
pub use crate::kernels::{dot, top_k};
use crate::quantized::QuantizedFactors;
use knowedge_format::artifact::{Artifact, FACTORS_I8, IdList, ModelKind, TrainingWindow, VerifyingKeys};
use knowedge_format::{Error, Result};

/// Business filters on a recommendation request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filters {
    /// Only items of this category.
    pub category: Option<String>,
    /// Only items priced at most this much (0 = free items only).
    pub max_price: Option<f32>,
    /// Items never to return (for instance those on screen already).
    pub exclude: Vec<String>,
}

/// One recommended item.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scored {
    /// Item id.
    pub item: String,
    /// Model score (higher is better; comparable within one answer only).
    pub score: f32,
}

/// Most session items a request may use (the newest are kept).
pub const MAX_SESSION_ITEMS: usize = 50;

/// Candidates ordered by [`Model::rank`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Ranked {
    /// Known candidates, best first.
    pub items: Vec<Scored>,
    /// Candidate ids the model does not know, in request order.
    pub unknown: Vec<String>,
}

/// How a request's items are scored.
enum Scorer {
    /// A user vector against the item factors.
    Factors(Vec<f32>),
    /// One precomputed score per item.
    Dense(Vec<f32>),
    /// The popularity fallback.
    Popularity,
}

/// What a model is, for `GET /v1/model` and logs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelInfo {
    /// Model id / version.
    pub model_id: String,
    /// Scoring kind.
    pub kind: ModelKind,
    /// Export time.
    pub created_at: DateTime<Utc>,
    /// Artifact format version.
    pub format_version: u32,
    /// Signing key id.
    pub key_id: String,
    /// Embedding dimensions.
    pub dims: usize,
    /// Number of items.
    pub items: usize,
    /// Number of known users.
    pub users: usize,
    /// Training data window.
    pub training: TrainingWindow,
    /// Offline metrics.
    pub metrics: std::collections::BTreeMap<String, f64>,
}

/// A verified model, ready to score.
#[derive(Clone, Debug)]
pub struct Model {
    info: ModelInfo,
    items: Ids,
    users: Ids,
    categories: Vec<String>,
    item_category: Vec<u32>,
    item_price: Vec<f32>,
    popularity: Vec<f32>,
    seen_offsets: Vec<u32>,
    seen_items: Vec<u32>,
    dims: usize,
    item_factors: Factors,
    user_factors: Factors,
    /// Norms of the item factors, computed when [`similar`](Self::similar) first needs them.
    item_norms: std::sync::OnceLock<Vec<f32>>,
    /// The fold-in's `λ`, computed when a session first needs it (a pass over all item factors).
    fold_in_lambda: std::sync::OnceLock<f64>,
    /// The first top-k pass (large enough factor models).
    quantized: Option<QuantizedFactors>,
    /// Its rows, for `f32` item factors (8-bit ones are read in place).
    quantized_rows: Vec<i8>,
    item_item: Option<ItemItemWeights>,
}

/// No category.
pub const NO_CATEGORY: u32 = u32::MAX;

/// A factor matrix (row major) as the artifact stores it: `f32` values, or
/// 8-bit integers `q` standing for the `f32` values `scale · q` (feature
/// `factors-i8`), rows zero padded to `stride` values (for item factors, the
/// rows the first top-k pass reads). Rows are read as `f32` either way, so scores are
/// defined the same way for both.
#[derive(Clone, Debug)]
enum Factors {
    F32(Vec<f32>),
    I8 { scale: f32, stride: usize, q: Vec<i8> },
}

/// Rows of at most this many dimensions are widened on the stack.
const STACK_DIMS: usize = 128;

impl Factors {
    fn is_empty(&self) -> bool {
        match self {
            Factors::F32(v) => v.is_empty(),
            Factors::I8 { q, .. } => q.is_empty(),
        }
    }

    /// Row `i` of `d` values, widened into `buf` (at least `d` long) if stored at 8 bits.
    fn row<'a>(&'a self, i: usize, d: usize, buf: &'a mut [f32]) -> &'a [f32] {
        match self {
            Factors::F32(v) => &v[i * d..(i + 1) * d],
            Factors::I8 { scale, stride, q } => {
                for (o, &x) in buf[..d].iter_mut().zip(&q[i * stride..i * stride + d]) {
                    *o = scale * f32::from(x);
                }
                &buf[..d]
            }
        }
    }

    /// Row `i` of `d` values, owned.
    fn row_vec(&self, i: usize, d: usize) -> Vec<f32> {
        match self {
            Factors::F32(v) => v[i * d..(i + 1) * d].to_vec(),
            Factors::I8 { .. } => {
                let mut buf = vec![0f32; d];
                let _ = self.row(i, d, &mut buf);
                buf
            }
        }
    }

    /// [`dot`] of `u` with row `i`.
    fn dot(&self, u: &[f32], i: usize) -> f32 {
        let d = u.len();
        match self {
            Factors::F32(v) => dot(u, &v[i * d..(i + 1) * d]),
            Factors::I8 { .. } if d <= STACK_DIMS => dot(u, self.row(i, d, &mut [0f32; STACK_DIMS])),
            Factors::I8 { .. } => dot(u, self.row(i, d, &mut vec![0f32; d])),
        }
    }

    /// The sum of the squares of all values.
    fn sum_of_squares(&self) -> f64 {
        match self {
            Factors::F32(v) => v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum(),
            Factors::I8 { scale, q, .. } => {
                // The padding is zero.
                let s: i64 = q.iter().map(|&x| i64::from(x) * i64::from(x)).sum();
                s as f64 * f64::from(*scale) * f64::from(*scale)
            }
        }
    }

    /// Takes the `rows × dims` matrix `name` (`user` or `item`) from the
    /// artifact, 8-bit rows padded to `stride`.
    fn take(a: &mut Artifact, name: &str, rows: usize, dims: usize, stride: usize) -> Result<Self> {
        let tensor = format!("{name}_factors");
        if !a.requires(FACTORS_I8) {
            return Ok(Factors::F32(a.take_f32(&tensor, &[rows, dims])?));
        }
        let q = a.take_i8(&tensor, &[rows, dims])?;
        let scale = a.take_f32(&format!("{name}_factor_scale"), &[1])?[0];
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::Tensors(format!("{name}_factor_scale: {scale} is not a positive number")));
        }
        if stride == dims {
            return Ok(Factors::I8 { scale, stride, q });
        }
        let mut padded = vec![0i8; rows * stride];
        for (v, r) in q.chunks_exact(dims).zip(padded.chunks_exact_mut(stride)) {
            r[..dims].copy_from_slice(v);
        }
        Ok(Factors::I8 { scale, stride, q: padded })
    }
}

/// An id list with the position of each id: open addressing (linear
/// probing, at most half full) over positions in the list, compared with the
/// ids themselves, so that building it copies no string. The ids come from
/// the signed artifact and requests only look them up (a request cannot add
/// ids that collide), so a fast fixed hash ([`hash_id`]) needs no defence
/// against chosen keys.
///
/// The index is built at the first lookup, not when the model loads: the
/// item ids are only looked up by requests that name items (similar, rank,
/// session items, excluded items), and a plain recommendation, the
/// commonest request and the one an edge instance that loads the model per
/// request answers most, never pays for them. The user index is built at
/// load ([`Ids::indexed`]). If an id appears twice (writers refuse that,
/// see [`ArtifactBuilder::sign`](knowedge_format::artifact::ArtifactBuilder::sign)),
/// lookups find its first position.
#[derive(Clone, Debug, Default)]
struct Ids {
    list: IdList,
    slots: std::sync::OnceLock<Vec<u32>>,
}

/// The hash of an id in [`Ids`]: eight bytes at a time, 64-bit multiplies
/// (native in WebAssembly too, unlike the 128-bit products of general
/// hashers), and a final mix so that the low bits depend on every byte.
#[inline]
fn hash_id(id: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (id.len() as u64).wrapping_mul(K);
    let mut words = id.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    // The last bytes one by one: a copy of a variable length is a call
    // into the host in WebAssembly.
    let last = words.remainder().iter().rev().fold(0u64, |t, &b| (t << 8) | u64::from(b));
    h = (h ^ last).wrapping_mul(K);
    h = (h ^ (h >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

/// An unused slot of [`Ids`].
const EMPTY_SLOT: u32 = u32::MAX;

impl Ids {
    /// The ids of `list`, indexed at the first lookup (`what` names the ids in errors).
    fn new(list: IdList, what: &str) -> Result<Self> {
        if list.len() >= EMPTY_SLOT as usize / 2 {
            return Err(Error::Manifest(format!("{} {what} ids are too many", list.len())));
        }
        Ok(Self { list, slots: std::sync::OnceLock::new() })
    }

    /// [`new`](Self::new), indexed now.
    fn indexed(list: IdList, what: &str) -> Result<Self> {
        let ids = Self::new(list, what)?;
        ids.slots();
        Ok(ids)
    }

    /// The index, built at the first call.
    fn slots(&self) -> &[u32] {
        self.slots.get_or_init(|| {
            let mut slots = vec![EMPTY_SLOT; (2 * self.list.len()).next_power_of_two()];
            let (text, ends) = self.list.parts();
            let mut start = 0;
            for (i, &end) in ends.iter().enumerate() {
                let id = &text[start..end as usize];
                start = end as usize;
                // A repeated id is found at its first position, which stays.
                if let Err(s) = probe(&slots, &self.list, id) {
                    slots[s] = i as u32;
                }
            }
            slots
        })
    }

    /// The position of `id` in the list.
    fn position(&self, id: &str) -> Option<u32> {
        probe(self.slots(), &self.list, id.as_bytes()).ok()
    }
}

/// Looks `id` up in `slots` (open addressing, linear probing, a power-of-two
/// length with at least one empty slot): its position in `list`, or the
/// empty slot where it would go.
#[inline]
fn probe(slots: &[u32], list: &IdList, id: &[u8]) -> std::result::Result<u32, usize> {
    let mask = slots.len() - 1;
    let mut s = hash_id(id) as usize & mask;
    loop {
        match slots[s] {
            EMPTY_SLOT => return Err(s),
            j if list.bytes(j as usize) == id => return Ok(j),
            _ => s = (s + 1) & mask,
        }
    }
}

impl std::ops::Deref for Ids {
    type Target = IdList;

    fn deref(&self) -> &IdList {
        &self.list
    }
}

impl Model {
    /// Verifies an artifact with `key` and loads it.
    pub fn from_artifact(bytes: &[u8], key: &(impl VerifyingKeys + ?Sized)) -> Result<Self> {
        Self::from_verified(Artifact::read(bytes, key)?)
    }

    /// Loads an already verified artifact, checking every tensor against the manifest.
    pub fn from_verified(mut a: Artifact) -> Result<Self> {
        let n = a.manifest.items.len();
        let m = a.manifest.users.len();
        let kind = a.manifest.kind;
        let dims = a.manifest.dims;
        let popularity = a.take_f32("item_popularity", &[n])?;
        let (item_category, item_price) = if a.tensors.contains_key("item_category") {
            (a.take_u32("item_category", Some(n))?, a.take_f32("item_price", &[n])?)
        } else {
            (vec![NO_CATEGORY; n], vec![f32::NAN; n])
        };
        if let Some(bad) =
            item_category.iter().find(|c| **c != NO_CATEGORY && **c as usize >= a.manifest.categories.len())
        {
            return Err(Error::Tensors(format!("item_category: index {bad} out of range")));
        }
        let (seen_offsets, seen_items) = if a.tensors.contains_key("user_seen_offsets") {
            let off = a.take_u32("user_seen_offsets", Some(m + 1))?;
            let items = a.take_u32("user_seen_items", None)?;
            if off.first() != Some(&0)
                || off.windows(2).any(|w| w[0] > w[1])
                || off.last().copied() != Some(items.len() as u32)
            {
                return Err(Error::Tensors("user_seen_offsets: not a valid CSR offset list".into()));
            }
            if items.iter().any(|i| *i as usize >= n) {
                return Err(Error::Tensors("user_seen_items: item index out of range".into()));
            }
            for u in 0..m {
                let s = &items[off[u] as usize..off[u + 1] as usize];
                if s.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(Error::Tensors("user_seen_items: not sorted per user".into()));
                }
            }
            (off, items)
        } else {
            (vec![0; m + 1], Vec::new())
        };
        let (user_factors, item_factors) = match kind {
            ModelKind::Mf => {
                if dims == 0 {
                    return Err(Error::Manifest("mf model with 0 dims".into()));
                }
                let stride = QuantizedFactors::stride(dims);
                (Factors::take(&mut a, "user", m, dims, dims)?, Factors::take(&mut a, "item", n, dims, stride)?)
            }
            ModelKind::Popularity | ModelKind::ItemItem => (Factors::F32(Vec::new()), Factors::F32(Vec::new())),
            ModelKind::Sentiment => {
                return Err(Error::Manifest("a sentiment model cannot recommend; load it as a SentimentModel".into()));
            }
        };
        let item_item = if kind == ModelKind::ItemItem { Some(ItemItemWeights::take(&mut a, n, m)?) } else { None };
        let (quantized, quantized_rows) = match &item_factors {
            Factors::F32(v) => QuantizedFactors::new(v, dims).map_or((None, Vec::new()), |(q, r)| (Some(q), r)),
            Factors::I8 { scale, .. } => (QuantizedFactors::from_stored(n, dims, *scale), Vec::new()),
        };
        let items = Ids::new(std::mem::take(&mut a.manifest.items), "item")?;
        let users = Ids::indexed(std::mem::take(&mut a.manifest.users), "user")?;
        let mf = a.manifest;
        Ok(Self {
            info: ModelInfo {
                model_id: mf.model_id,
                kind,
                created_at: mf.created_at,
                format_version: mf.format_version,
                key_id: mf.key_id,
                dims,
                items: n,
                users: m,
                training: mf.training,
                metrics: mf.metrics,
            },
            items,
            users,
            categories: mf.categories,
            item_category,
            item_price,
            popularity,
            seen_offsets,
            seen_items,
            dims,
            item_factors,
            user_factors,
            item_norms: std::sync::OnceLock::new(),
            fold_in_lambda: std::sync::OnceLock::new(),
            quantized,
            quantized_rows,
            item_item,
        })
    }

    /// What the model is.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Item ids in model order.
    pub fn items(&self) -> &IdList {
        &self.items
    }

    /// Whether the (pseudonymous) user is known to the model.
    pub fn knows_user(&self, user: &str) -> bool {
        self.users.position(user).is_some()
    }

    /// Items the (pseudonymous) user already owns.
    pub fn owned(&self, user: &str) -> Vec<&str> {
        match self.users.position(user) {
            Some(u) => self.seen(u as usize).iter().map(|&i| &self.items[i as usize]).collect(),
            None => Vec::new(),
        }
    }

    fn seen(&self, u: usize) -> &[u32] {
        &self.seen_items[self.seen_offsets[u] as usize..self.seen_offsets[u + 1] as usize]
    }

    /// The top `k` items for a pseudonymous user (or for anyone, with `None`),
    /// never returning items the user owns, nor items the filters rule out.
    /// Unknown users get the most popular items.
    pub fn recommend(&self, user: Option<&str>, k: usize, filters: &Filters) -> Vec<Scored> {
        self.recommend_in_session(user, &[], k, filters)
    }

    /// [`recommend`](Self::recommend), taking into account the items the
    /// learner engaged with in this session (newest last; unknown ids are
    /// ignored, at most [`MAX_SESSION_ITEMS`] are used), without retraining:
    ///
    /// * item-item models add the session items to the user's history (an
    ///   unknown user's history is the session: items similar to those);
    /// * factor models fold the session into the user vector: the ridge
    ///   solution `u' = (VₛᵀVₛ + λI)⁻¹ (Vₛᵀ1 + λu)` over the session items'
    ///   factors `Vₛ`, starting from the trained vector `u` (zero for an
    ///   unknown user), with `λ` the mean squared norm of the item factors;
    /// * popularity models and users with an empty session are answered as
    ///   by [`recommend`](Self::recommend).
    ///
    /// Session items are not recommended again.
    pub fn recommend_in_session(
        &self,
        user: Option<&str>,
        session: &[String],
        k: usize,
        filters: &Filters,
    ) -> Vec<Scored> {
        let u = user.and_then(|u| self.users.position(u)).map(|u| u as usize);
        let seen = u.map(|u| self.seen(u)).unwrap_or(&[]);
        let session = self.session_indices(session);
        // Owned, excluded and session items as a bit set: one lookup per item in the scan.
        let mut blocked = vec![0u64; self.items.len().div_ceil(64)];
        let excluded = filters.exclude.iter().filter_map(|e| self.items.position(e));
        for i in seen.iter().copied().chain(excluded).chain(session.iter().copied()) {
            if let Some(word) = blocked.get_mut(i as usize / 64) {
                *word |= 1 << (i % 64);
            }
        }
        let category = match &filters.category {
            Some(c) => match self.categories.iter().position(|x| x == c) {
                Some(i) => Some(i as u32),
                None => return Vec::new(),
            },
            None => None,
        };
        let keep = |i: usize| {
            blocked[i / 64] & (1 << (i % 64)) == 0
                && category.is_none_or(|c| self.item_category[i] == c)
                && filters.max_price.is_none_or(|p| self.item_price[i] <= p)
        };
        let top = match self.scorer(u, &session) {
            Scorer::Factors(uv) => {
                let exact = |i: usize| self.item_factors.dot(&uv, i);
                let rows = match &self.item_factors {
                    Factors::I8 { q, .. } => q,
                    Factors::F32(_) => &self.quantized_rows,
                };
                match self.quantized.as_ref().and_then(|q| q.top_k(rows, &uv, k, &keep, exact)) {
                    Some(top) => top,
                    None => top_k(self.items.len(), k, exact, keep),
                }
            }
            Scorer::Dense(scores) => top_k(self.items.len(), k, |i| scores[i], keep),
            Scorer::Popularity => top_k(self.items.len(), k, |i| self.popularity[i], keep),
        };
        self.named(top)
    }

    /// Orders `candidates` for a pseudonymous user (session as in
    /// [`recommend_in_session`](Self::recommend_in_session)), best first, ties
    /// by model item order. No filter applies: the caller chose the
    /// candidates. Ids the model does not know come back in
    /// [`Ranked::unknown`], in request order; a repeated id is ranked once.
    pub fn rank(&self, user: Option<&str>, session: &[String], candidates: &[String]) -> Ranked {
        let u = user.and_then(|u| self.users.position(u)).map(|u| u as usize);
        let session = self.session_indices(session);
        let mut wanted: Vec<u32> = Vec::with_capacity(candidates.len());
        let mut unknown = Vec::new();
        for c in candidates {
            match self.items.position(c) {
                Some(i) => wanted.push(i),
                None => unknown.push(c.clone()),
            }
        }
        wanted.sort_unstable();
        wanted.dedup();
        let scorer = self.scorer(u, &session);
        let score = |i: usize| match &scorer {
            Scorer::Factors(uv) => self.item_factors.dot(uv, i),
            Scorer::Dense(scores) => scores[i],
            Scorer::Popularity => self.popularity[i],
        };
        let mut scored: Vec<Entry> = wanted
            .iter()
            .map(|&i| {
                let s = score(i as usize);
                Entry(if s.is_nan() { f32::NEG_INFINITY } else { s }, i)
            })
            .collect();
        scored.sort_by(|a, b| b.cmp(a));
        Ranked { items: self.named(scored.into_iter().map(|e| (e.1, e.0)).collect()), unknown }
    }

    /// Known session items, deduplicated in order, the newest [`MAX_SESSION_ITEMS`].
    fn session_indices(&self, session: &[String]) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for s in session.iter().rev() {
            if out.len() == MAX_SESSION_ITEMS {
                break;
            }
            if let Some(i) = self.items.position(s)
                && !out.contains(&i)
            {
                out.push(i);
            }
        }
        out.reverse();
        out
    }

    /// How to score items for user `u` (if known) with these session items.
    fn scorer(&self, u: Option<usize>, session: &[u32]) -> Scorer {
        match self.info.kind {
            ModelKind::Mf if u.is_some() || !session.is_empty() => {
                let d = self.dims;
                let base = match u {
                    Some(u) => self.user_factors.row_vec(u, d),
                    None => vec![0.0; d],
                };
                if session.is_empty() {
                    return Scorer::Factors(base);
                }
                Scorer::Factors(self.fold_in(&base, session))
            }
            ModelKind::ItemItem if u.is_some() || !session.is_empty() => {
                let Some(ii) = &self.item_item else { return Scorer::Popularity };
                let known: &[u32] = u.map(|u| ii.history(u)).unwrap_or(&[]);
                let mut history = known.to_vec();
                history.extend(session.iter().filter(|i| !known.contains(i)));
                let mut scores = Vec::new();
                ii.scores(&history, &mut scores);
                Scorer::Dense(scores)
            }
            _ => Scorer::Popularity,
        }
    }

    /// The ridge fold-in of `session` into `base` (see [`recommend_in_session`](Self::recommend_in_session)).
    fn fold_in(&self, base: &[f32], session: &[u32]) -> Vec<f32> {
        let d = self.dims;
        let n = self.items.len().max(1);
        let lambda = *self.fold_in_lambda.get_or_init(|| (self.item_factors.sum_of_squares() / n as f64).max(1e-6));
        // A = VₛᵀVₛ + λI, b = Vₛᵀ1 + λ·base, in f64.
        let mut a = vec![0f64; d * d];
        let mut b: Vec<f64> = base.iter().map(|&x| lambda * f64::from(x)).collect();
        let mut buf = vec![0f32; d];
        for &i in session {
            let v = self.item_factors.row(i as usize, d, &mut buf);
            for r in 0..d {
                b[r] += f64::from(v[r]);
                for c in 0..=r {
                    a[r * d + c] += f64::from(v[r]) * f64::from(v[c]);
                }
            }
        }
        for r in 0..d {
            a[r * d + r] += lambda;
        }
        match cholesky_solve(&mut a, &mut b, d) {
            true => b.into_iter().map(|x| x as f32).collect(),
            false => base.to_vec(),
        }
    }

    /// The `k` items most similar to `item` (cosine of item factors; for
    /// popularity models, the most popular items of the same category).
    /// `None` if the item is unknown.
    pub fn similar(&self, item: &str, k: usize) -> Option<Vec<Scored>> {
        let q = self.items.position(item)?;
        let q = q as usize;
        let top = if let Some(ii) = &self.item_item {
            let (items, weights) = ii.neighbours(q);
            let mut scores = vec![f32::NEG_INFINITY; self.items.len()];
            for (&j, &w) in items.iter().zip(weights) {
                scores[j as usize] = w;
            }
            top_k(self.items.len(), k.min(items.len()), |i| scores[i], |i| i != q && scores[i] > f32::NEG_INFINITY)
        } else if self.item_factors.is_empty() {
            let c = self.item_category[q];
            top_k(
                self.items.len(),
                k,
                |i| self.popularity[i],
                |i| i != q && (c == NO_CATEGORY || self.item_category[i] == c),
            )
        } else {
            let d = self.dims;
            let f = &self.item_factors;
            let qv = f.row_vec(q, d);
            let norms = self.item_norms.get_or_init(|| {
                let mut buf = vec![0f32; d];
                (0..self.items.len())
                    .map(|i| {
                        let r = f.row(i, d, &mut buf);
                        dot(r, r).sqrt()
                    })
                    .collect()
            });
            let qn = norms[q].max(f32::MIN_POSITIVE);
            top_k(self.items.len(), k, |i| f.dot(&qv, i) / (qn * norms[i].max(f32::MIN_POSITIVE)), |i| i != q)
        };
        Some(self.named(top))
    }

    fn named(&self, top: Vec<(u32, f32)>) -> Vec<Scored> {
        top.into_iter().map(|(i, s)| Scored { item: self.items[i as usize].to_owned(), score: s }).collect()
    }
}

/// The weights of an item-item model (kind `itemitem`): per row its sparse
/// neighbours, an optional per-item bias, and each user's history.
///
/// Rows `0..n_items` are items; further rows are user features (for example
/// an activity period or a demographic group) that a user's history may list
/// after their items and that add weights the same way.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ItemItemWeights {
    /// Number of items (scored columns); rows beyond it are user features.
    pub n_items: usize,
    /// CSR offsets into `items` / `weights`, one per row plus one.
    pub offsets: Vec<u32>,
    /// Neighbour item indices, in summation order.
    pub items: Vec<u32>,
    /// Neighbour weights.
    pub weights: Vec<f32>,
    /// Score every item starts from (empty = zeros).
    pub bias: Vec<f32>,
    /// CSR offsets of each user's history.
    pub history_offsets: Vec<u32>,
    /// History items, sorted per user.
    pub history_items: Vec<u32>,
}

impl ItemItemWeights {
    /// Builds the weights from per-row neighbour lists (kept in the given
    /// order; rows beyond `n_items` are user features) and per-user histories
    /// (row indices, sorted and de-duplicated here).
    pub fn new(n_items: usize, per_item: &[Vec<(u32, f32)>], bias: Vec<f32>, per_user: &[Vec<u32>]) -> Self {
        let mut w = Self { n_items, bias, ..Self::default() };
        w.offsets.push(0);
        for row in per_item {
            for &(j, x) in row {
                w.items.push(j);
                w.weights.push(x);
            }
            w.offsets.push(w.items.len() as u32);
        }
        w.history_offsets.push(0);
        for list in per_user {
            let mut l = list.clone();
            l.sort_unstable();
            l.dedup();
            w.history_items.extend(l);
            w.history_offsets.push(w.history_items.len() as u32);
        }
        w
    }

    fn take(a: &mut Artifact, n: usize, m: usize) -> Result<Self> {
        let offsets = a.take_u32("item_neighbour_offsets", None)?;
        if offsets.len() < n + 1 {
            return Err(Error::Tensors("item_neighbour_offsets: fewer rows than items".into()));
        }
        let rows = offsets.len() - 1;
        let items = a.take_u32("item_neighbour_items", None)?;
        let weights = a.take_f32("item_neighbour_weights", &[items.len()])?;
        let bias = if a.tensors.contains_key("item_bias") { a.take_f32("item_bias", &[n])? } else { Vec::new() };
        let history_offsets = a.take_u32("user_history_offsets", Some(m + 1))?;
        let history_items = a.take_u32("user_history_items", None)?;
        for (name, off, idx, limit) in
            [("item_neighbour", &offsets, &items, n), ("user_history", &history_offsets, &history_items, rows)]
        {
            if off.first() != Some(&0)
                || off.windows(2).any(|w| w[0] > w[1])
                || off.last().copied() != Some(idx.len() as u32)
            {
                return Err(Error::Tensors(format!("{name}_offsets: not a valid CSR offset list")));
            }
            if idx.iter().any(|i| *i as usize >= limit) {
                return Err(Error::Tensors(format!("{name}_items: index out of range")));
            }
        }
        Ok(Self { n_items: n, offsets, items, weights, bias, history_offsets, history_items })
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Number of rows (items, then user features).
    pub fn n_rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The history of user `u` (sorted item indices).
    pub fn history(&self, u: usize) -> &[u32] {
        &self.history_items[self.history_offsets[u] as usize..self.history_offsets[u + 1] as usize]
    }

    /// The stored neighbours of row `i` (an item, or a user feature) and their weights.
    pub fn neighbours(&self, i: usize) -> (&[u32], &[f32]) {
        let r = self.offsets[i] as usize..self.offsets[i + 1] as usize;
        (&self.items[r.clone()], &self.weights[r])
    }

    /// Scores every item for a history into `out` (resized to the item count):
    /// `out[i]` starts at the bias (or zero) and adds, history item by history
    /// item in the given order, each neighbour weight in stored order. This one
    /// order is used natively and in WebAssembly, so scores agree bit for bit.
    pub fn scores(&self, history: &[u32], out: &mut Vec<f32>) {
        let n = self.n_items();
        out.clear();
        if self.bias.len() == n {
            out.extend_from_slice(&self.bias);
        } else {
            out.resize(n, 0.0);
        }
        for &h in history {
            let (items, weights) = self.neighbours(h as usize);
            for (&j, &w) in items.iter().zip(weights) {
                out[j as usize] += w;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use knowedge_format::artifact::{ArtifactBuilder, SigningKey};

    fn model() -> Model {
        let key = SigningKey::from_seed([3; 32]);
        let mut b = ArtifactBuilder::new(ModelKind::Mf, 2);
        b.items(vec!["a".into(), "b".into(), "c".into(), "d".into()]).users(vec!["u1".into(), "u2".into()]);
        b.popularity(vec![1.0, 4.0, 3.0, 2.0]);
        b.catalogue(vec!["python".into(), "rust".into()], vec![0, 1, 1, NO_CATEGORY], vec![0.0, 10.0, 99.0, f32::NAN]);
        // u1 likes the first dimension, u2 the second.
        b.factors(vec![1.0, 0.0, 0.0, 1.0], vec![0.9, 0.1, 0.8, 0.2, 0.1, 0.9, 0.5, 0.5]);
        b.seen(&[vec![0], vec![]]);
        b.sign(&key).and_then(|bytes| Model::from_artifact(&bytes, &key.public_key())).unwrap()
    }

    fn ids(v: &[Scored]) -> Vec<&str> {
        v.iter().map(|s| s.item.as_str()).collect()
    }

    #[test]
    fn the_id_index_finds_every_id_and_only_those() {
        let list: Vec<String> = (0..1000).map(|i| format!("item-{i}")).collect();
        let ids = Ids::new(list.iter().collect(), "item").unwrap();
        assert!(ids.slots.get().is_none(), "indexed at the first lookup");
        assert!(ids.iter().eq(list.iter().map(String::as_str)));
        for (i, id) in list.iter().enumerate() {
            assert_eq!(ids.position(id), Some(i as u32));
        }
        for miss in ["", "item-1000", "item-", "ITEM-1", "item-01"] {
            assert_eq!(ids.position(miss), None, "{miss:?}");
        }
        assert!(ids.slots.get().is_some());
        let mut twice = list;
        twice.push("item-17".into());
        let ids = Ids::indexed(twice.iter().collect(), "item").unwrap();
        assert_eq!(ids.position("item-17"), Some(17), "the first position of a repeated id");
        assert_eq!(Ids::new(IdList::default(), "user").unwrap().position("a"), None);
        assert_eq!(Ids::default().position("item-1"), None);
    }

    /// The same random factor model twice: factors stored at 8 bits, and
    /// stored as the `f32` values those stand for.
    fn eight_bit_and_f32_models(items: usize, dims: usize) -> (Model, Model) {
        let key = SigningKey::from_seed([4; 32]);
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let users: Vec<f32> = (0..6 * dims).map(|_| next()).collect();
        let factors: Vec<f32> = (0..items * dims).map(|_| next() * 0.3).collect();
        let build = |eight: bool| {
            let mut b = ArtifactBuilder::new(ModelKind::Mf, dims);
            b.items((0..items).map(|i| format!("i{i}")).collect()).users((0..6).map(|u| format!("u{u}")).collect());
            b.popularity((0..items).map(|i| (i % 17) as f32).collect());
            b.seen(&[vec![1, 2], vec![], vec![5], vec![], vec![], vec![0]]);
            if eight {
                b.factors_8bit(&users, &factors).unwrap();
            } else {
                let widen = |v: &[f32]| {
                    let (scale, q) = knowedge_format::artifact::quantize_factors(v).unwrap();
                    knowedge_format::artifact::dequantize_factors(scale, &q)
                };
                b.factors(widen(&users), widen(&factors));
            }
            b.sign(&key).and_then(|bytes| Model::from_artifact(&bytes, &key.public_key())).unwrap()
        };
        (build(true), build(false))
    }

    #[test]
    fn eight_bit_factors_answer_as_the_values_they_stand_for() {
        // 300 items take the two-pass search, 40 the plain scan; 13 dims are padded.
        for (items, dims) in [(300, 16), (300, 13), (40, 8)] {
            let (eight, wide) = eight_bit_and_f32_models(items, dims);
            assert!(matches!(eight.item_factors, Factors::I8 { .. }) && matches!(wide.item_factors, Factors::F32(_)));
            assert_eq!(eight.quantized.is_some(), items >= 64);
            let session: Vec<String> = vec!["i7".into(), "i30".into()];
            let f = Filters::default();
            for u in ["u0", "u1", "u2", "u5", "stranger"] {
                for k in [1, 10, 50] {
                    assert_eq!(eight.recommend(Some(u), k, &f), wide.recommend(Some(u), k, &f), "{u} k {k}");
                    assert_eq!(
                        eight.recommend_in_session(Some(u), &session, k, &f),
                        wide.recommend_in_session(Some(u), &session, k, &f),
                        "{u} k {k} with a session"
                    );
                }
                let candidates: Vec<String> = (0..items).step_by(3).map(|i| format!("i{i}")).collect();
                assert_eq!(eight.rank(Some(u), &session, &candidates), wide.rank(Some(u), &session, &candidates));
            }
            assert_eq!(eight.similar("i3", 10), wide.similar("i3", 10));
            assert!(eight.recommend(Some("u1"), 5, &f).iter().all(|s| s.score.is_finite()));
        }
    }

    #[test]
    fn eight_bit_factors_are_checked() {
        let key = SigningKey::from_seed([4; 32]);
        let sign = |q: Vec<i8>, scale: f32| {
            let mut b = ArtifactBuilder::new(ModelKind::Mf, 2);
            b.items(vec!["a".into(), "b".into()]).users(vec!["u".into()]);
            b.factors_8bit(&[1.0, 0.0], &[0.5, 0.5, 0.25, -1.0]).unwrap();
            b.tensor("item_factors", vec![2, 2], knowedge_format::artifact::TensorData::I8(q));
            b.tensor("item_factor_scale", vec![1], knowedge_format::artifact::TensorData::F32(vec![scale]));
            let bytes = b.sign(&key).unwrap();
            Model::from_artifact(&bytes, &key.public_key()).map(|_| ()).map_err(|e| e.to_string())
        };
        assert_eq!(sign(vec![1, 2, 3, -127], 0.5), Ok(()));
        // -128 is read (writers do not write it; see `artifact`).
        assert_eq!(sign(vec![1, 2, 3, -128], 0.5), Ok(()));
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(sign(vec![1, 2, 3, 4], bad).unwrap_err().contains("item_factor_scale"), "{bad}");
        }
        let mut b = ArtifactBuilder::new(ModelKind::Mf, 2);
        b.items(vec!["a".into()]).users(vec!["u".into()]);
        assert!(b.factors_8bit(&[1.0, f32::NAN], &[0.5, 0.5]).is_err());
        b.factors_8bit(&[1.0, 0.0], &[0.5, 0.5]).unwrap();
        assert!(b.manifest_mut().requires.contains(&"factors-i8".to_owned()));
        // Without the feature, I8 factors are not F32 ones.
        b.manifest_mut().requires.retain(|r| r != "factors-i8");
        let bytes = b.sign(&key).unwrap();
        let e = Model::from_artifact(&bytes, &key.public_key()).unwrap_err().to_string();
        assert!(e.contains("expected F32"), "{e}");
    }

    #[test]
    fn personalised_and_excludes_owned() {
        let m = model();
        assert_eq!(ids(&m.recommend(Some("u1"), 10, &Filters::default())), ["b", "d", "c"]);
        assert_eq!(ids(&m.recommend(Some("u2"), 2, &Filters::default())), ["c", "d"]);
        assert_eq!(m.owned("u1"), ["a"]);
    }

    #[test]
    fn unknown_users_get_popular_items() {
        let m = model();
        assert_eq!(ids(&m.recommend(Some("stranger"), 2, &Filters::default())), ["b", "c"]);
        assert_eq!(ids(&m.recommend(None, 10, &Filters::default())), ["b", "c", "d", "a"]);
    }

    #[test]
    fn filters() {
        let m = model();
        let f = Filters { category: Some("rust".into()), ..Filters::default() };
        assert_eq!(ids(&m.recommend(Some("u2"), 10, &f)), ["c", "b"]);
        let f = Filters { max_price: Some(10.0), ..Filters::default() };
        assert_eq!(ids(&m.recommend(None, 10, &f)), ["b", "a"]);
        let f = Filters { max_price: Some(0.0), ..Filters::default() };
        assert_eq!(ids(&m.recommend(None, 10, &f)), ["a"]);
        let f = Filters { exclude: vec!["b".into(), "zz".into()], ..Filters::default() };
        assert_eq!(ids(&m.recommend(None, 2, &f)), ["c", "d"]);
        let f = Filters { category: Some("cobol".into()), ..Filters::default() };
        assert!(m.recommend(None, 10, &f).is_empty());
    }

    #[test]
    fn session_items_fold_into_factor_models() {
        let m = model();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // A stranger who just looked at `c` (second dimension) gets items like it, not the popular ones.
        let top = m.recommend_in_session(Some("stranger"), &s(&["c"]), 3, &Filters::default());
        assert_eq!(ids(&top), ["d", "b", "a"]);
        // u1 keeps its taste, and the session item is not offered again.
        let top = m.recommend_in_session(Some("u1"), &s(&["c"]), 10, &Filters::default());
        assert_eq!(ids(&top), ["b", "d"]);
        let plain = m.recommend(Some("u1"), 10, &Filters::default());
        assert!(top[1].score > plain[1].score, "{top:?} vs {plain:?}");
        // Unknown and repeated session ids change nothing.
        let noise = s(&["zz"; 60]);
        assert_eq!(
            m.recommend_in_session(Some("u2"), &noise, 10, &Filters::default()),
            m.recommend(Some("u2"), 10, &Filters::default())
        );
    }

    #[test]
    fn ranks_candidates() {
        let m = model();
        let c = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let r = m.rank(Some("u1"), &[], &c(&["d", "c", "zz", "b", "d", "a"]));
        assert_eq!(ids(&r.items), ["a", "b", "d", "c"]);
        assert_eq!(r.unknown, ["zz"]);
        // Strangers: popularity order.
        assert_eq!(ids(&m.rank(None, &[], &c(&["a", "c", "b"])).items), ["b", "c", "a"]);
        assert!(m.rank(None, &[], &[]).items.is_empty());
    }

    #[test]
    fn cholesky_solves_and_refuses_indefinite_systems() {
        let mut a = vec![4.0, 0.0, 2.0, 3.0];
        let mut b = vec![2.0, 4.0];
        assert!(cholesky_solve(&mut a, &mut b, 2));
        // [[4, 2], [2, 3]] x = [2, 4] -> x = [-0.25, 1.5]
        assert!((b[0] + 0.25).abs() < 1e-12 && (b[1] - 1.5).abs() < 1e-12, "{b:?}");
        let mut a = vec![-1.0];
        assert!(!cholesky_solve(&mut a, &mut [1.0], 1));
    }

    #[test]
    fn similar_items() {
        let m = model();
        assert_eq!(ids(&m.similar("a", 1).unwrap()), ["b"]);
        assert!(m.similar("nope", 3).is_none());
    }

    #[test]
    fn item_item_scores_sum_neighbours_over_history() {
        let key = SigningKey::from_seed([3; 32]);
        let mut b = ArtifactBuilder::new(ModelKind::ItemItem, 0);
        b.items(vec!["a".into(), "b".into(), "c".into(), "d".into()]).users(vec!["u1".into(), "u2".into()]);
        b.popularity(vec![1.0, 4.0, 3.0, 2.0]);
        // a -> b 0.5, c 0.25; b -> d 1.0; c -> a 0.1
        b.neighbours(&[vec![(1, 0.5), (2, 0.25)], vec![(3, 1.0)], vec![(0, 0.1)], vec![]]);
        b.item_bias(vec![0.0, 0.0, 0.3, 0.0]);
        b.history(&[vec![0], vec![0, 1]]);
        b.seen(&[vec![0], vec![0, 1]]);
        let bytes = b.sign(&key).unwrap();
        assert_eq!(
            knowedge_format::artifact::verify(&bytes, &key.public_key()).unwrap().requires,
            ["item-item", "id-tensors"]
        );
        let m = Model::from_artifact(&bytes, &key.public_key()).unwrap();
        let top = m.recommend(Some("u1"), 10, &Filters::default());
        assert_eq!(ids(&top), ["c", "b", "d"]);
        assert_eq!(top[0].score, 0.55);
        assert_eq!(ids(&m.recommend(Some("u2"), 10, &Filters::default())), ["d", "c"]);
        assert_eq!(ids(&m.recommend(Some("nobody"), 2, &Filters::default())), ["b", "c"]);
        assert_eq!(ids(&m.similar("a", 5).unwrap()), ["b", "c"]);
        // A stranger whose session holds `a` gets a's neighbours, not the popular items.
        let session = vec!["a".to_owned()];
        assert_eq!(ids(&m.recommend_in_session(Some("nobody"), &session, 2, &Filters::default())), ["c", "b"]);
        // u1's history already holds `a`: the session adds nothing but the exclusion.
        assert_eq!(m.recommend_in_session(Some("u1"), &session, 10, &Filters::default()), top);
    }

    #[test]
    fn top_k_breaks_ties_by_index_and_handles_nan() {
        let s = [1.0, 3.0, 3.0, f32::NAN, 2.0];
        assert_eq!(top_k(5, 3, |i| s[i], |_| true), vec![(1, 3.0), (2, 3.0), (4, 2.0)]);
        assert_eq!(top_k(5, 0, |i| s[i], |_| true), vec![]);
        assert_eq!(top_k(5, 99, |i| s[i], |_| true).len(), 5);
    }

    #[test]
    fn dot_matches_naive_sum_closely() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.25).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.01).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }
}
