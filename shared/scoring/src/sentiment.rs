//! Review sentiment: the features and the scoring of the `sentiment` model kind.
//!
//! One function, [`Featurizer::features`], turns a review into hashed
//! features; the training function and every edge module call the same code,
//! so a model scores identically wherever it runs. The model is linear:
//!
//! ```text
//! logit = bias + (Σ weight[f] for each distinct feature f) / sqrt(number of distinct features)
//! score = 1 / (1 + exp(-logit))        probability that the review is positive
//! label = positive if score ≥ 0.5, negative otherwise
//! ```
//!
//! A text with no features at all (empty, only whitespace, control or
//! invisible format characters) is not scored: it gets label
//! [`Label::Neutral`] and score 0.5. Every other text, in any language or
//! script, gets a positive or negative answer; nothing panics, however long
//! or odd the text is.
//!
//! # Features, version 1 ([`FEATURES`])
//!
//! 1. Each character is normalised: full-width ASCII forms (U+FF01–U+FF5E)
//!    become ASCII, the ideographic space becomes a space, ASCII letters are
//!    lower-cased.
//! 2. The text becomes a sequence of units: a run of ASCII letters and digits
//!    is one unit (a word; every digit counts as `0`), whitespace and control
//!    characters are boundaries (runs of them collapse to one), invisible
//!    format characters (zero-width joiners and spaces, variation selectors,
//!    byte order marks) are dropped, emoji and pictographs are all the same
//!    unit, and every other character (Chinese characters, punctuation, other
//!    scripts) is a unit of its own. The text starts with a boundary.
//! 3. Features are the unit n-grams of orders 1 to 3 that contain no boundary
//!    except possibly as their first unit (so clause starts are features of
//!    their own), and the skip bigrams (unit *i*, unit *i* + 2) of non-boundary
//!    units.
//! 4. Each feature is hashed (64-bit mixing) into one of `2^bits` buckets; the
//!    distinct buckets are the features. `bits` is fixed by the length of the
//!    model's weight tensor (a power of two from 2^10 to 2^24).
//!
//! # Artifact
//!
//! Kind `sentiment`, `requires` = `["sentiment-features-v1"]`, no items or
//! users, and two tensors: [`WEIGHTS_TENSOR`] (F32 `[2^bits]`) and
//! [`BIAS_TENSOR`] (F32 `[1]`). Build one with [`builder`].
//!
//! ```
//! use knowedge_format::artifact::SigningKey;
//! use knowedge_scoring::sentiment::{self, Featurizer, Label, SentimentModel};
//!
//! // A toy model: "好" (good) pushes towards positive.
//! let bits = 10;
//! let mut weights = vec![0.0; 1 << bits];
//! for f in Featurizer::new(bits).features("好") {
//!     weights[*f as usize] = 4.0;
//! }
//! let key = SigningKey::from_seed([1; 32]);
//! let bytes = sentiment::builder(weights, 0.0, "toy").sign(&key).unwrap();
//! let model = SentimentModel::from_artifact(&bytes, &key.public_key()).unwrap();
//! assert_eq!(model.score("好").label, Label::Positive);
//! assert_eq!(model.score("").label, Label::Neutral);
//! ```

use serde::{Deserialize, Serialize};

use knowedge_format::artifact::{Artifact, ArtifactBuilder, ModelKind, TensorData, TrainingWindow, VerifyingKeys};
use knowedge_format::{Error, Result};

/// The feature extraction this module implements (listed in `requires`).
pub const FEATURES: &str = "sentiment-features-v1";
/// Tensor with one weight per hash bucket.
pub const WEIGHTS_TENSOR: &str = "sentiment_weights";
/// Tensor with the bias (one value).
pub const BIAS_TENSOR: &str = "sentiment_bias";
/// Fewest hash bits a model may use.
pub const MIN_BITS: u32 = 10;
/// Most hash bits a model may use (64 MiB of weights).
pub const MAX_BITS: u32 = 24;
/// Hash bits of a model trained with the default settings (2 MiB of
/// weights). Scoring is compiled for this size with its masks and shifts
/// as constants (a little faster); other sizes take the general path.
pub const DEFAULT_BITS: u32 = 19;
/// Highest n-gram order.
pub const MAX_ORDER: usize = 3;

/// Unit value of a boundary (whitespace, control characters, text start).
const BOUNDARY: u64 = 0;
/// Unit value shared by every emoji and pictograph.
const PICTOGRAPH: u64 = 0x1_0000_0000;
/// Marks word units (ASCII runs) apart from code points.
const WORD_FLAG: u64 = 1 << 63;
const WORD_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const NGRAM_SEED: u64 = 0x517c_c1b7_2722_0a95;
const ORDER_STEP: u64 = 0x0123_4567;
const SKIP_SEED: u64 = 0x00ab_cdef;

/// The polarity of a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// The text praises.
    Positive,
    /// The text complains.
    Negative,
    /// The text holds nothing to score (empty, whitespace, control characters).
    Neutral,
}

impl Label {
    /// The label's name (`positive`, `negative`, `neutral`).
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Positive => "positive",
            Label::Negative => "negative",
            Label::Neutral => "neutral",
        }
    }

    /// Parses a label name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "positive" => Some(Label::Positive),
            "negative" => Some(Label::Negative),
            "neutral" => Some(Label::Neutral),
            _ => None,
        }
    }
}

/// The answer for one text.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    /// Positive, negative, or neutral when there was nothing to score.
    pub label: Label,
    /// Probability that the text is positive, in [0, 1] (0.5 for neutral).
    pub score: f32,
}

/// The 64-bit finaliser of MurmurHash3: cheap, and mixes every input bit.
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// What a normalised character contributes.
enum Unit {
    /// Part of an ASCII word (already lower-cased, digits as `0`).
    Word(u8),
    /// A boundary.
    Boundary,
    /// Nothing (invisible format characters).
    Skip,
    /// A unit of its own.
    Char(u64),
}

#[inline(always)]
fn classify(c: char) -> Unit {
    let cp = c as u32;
    // Most of a Chinese review: CJK unified ideographs are units of their own.
    if IDEOGRAPHS.contains(&cp) {
        return Unit::Char(u64::from(cp));
    }
    let c = match cp {
        0xFF01..=0xFF5E => char::from_u32(cp - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        _ => c,
    };
    if c.is_ascii_alphanumeric() {
        return Unit::Word(if c.is_ascii_digit() { b'0' } else { c.to_ascii_lowercase() as u8 });
    }
    if c.is_whitespace() || c.is_control() {
        return Unit::Boundary;
    }
    match c as u32 {
        0x200B..=0x200F | 0x2060..=0x2064 | 0xFE00..=0xFE0F | 0xFEFF | 0xE0000..=0xE007F => Unit::Skip,
        0x2600..=0x27BF | 0x1F000..=0x1FAFF => Unit::Char(PICTOGRAPH),
        other => Unit::Char(u64::from(other)),
    }
}

/// CJK unified ideographs: each is a unit of its own.
const IDEOGRAPHS: std::ops::RangeInclusive<u32> = 0x4E00..=0x9FFF;

/// Takes the next character if it is a CJK unified ideograph.
#[inline(always)]
fn ideograph(chars: &mut std::str::Chars<'_>) -> Option<u64> {
    let mut next = chars.clone();
    match next.next() {
        Some(c) if IDEOGRAPHS.contains(&u32::from(c)) => {
            *chars = next;
            Some(u64::from(u32::from(c)))
        }
        _ => None,
    }
}

/// The hash bits of a featurizer: fixed when compiling ([`Fixed`]) or
/// known only at run time (`u32`). The feature loop is compiled for each;
/// with fixed bits it keeps all of its state in registers.
trait Bits: Copy {
    fn get(self) -> u32;
}

#[derive(Clone, Copy)]
struct Fixed<const B: u32>;

impl<const B: u32> Bits for Fixed<B> {
    #[inline(always)]
    fn get(self) -> u32 {
        B
    }
}

impl Bits for u32 {
    #[inline(always)]
    fn get(self) -> u32 {
        self
    }
}

/// Turns texts into feature buckets, reusing its buffers between calls.
#[derive(Clone, Debug)]
pub struct Featurizer {
    bits: u32,
    /// The answer of `features` and `distinct`.
    features: Vec<u32>,
    /// One stamp per bucket: the generation of the last text that had it.
    stamps: Vec<u8>,
    generation: u8,
}

impl Featurizer {
    /// A featurizer for `2^bits` buckets (`bits` is clamped to [`MIN_BITS`]..=[`MAX_BITS`]).
    pub fn new(bits: u32) -> Self {
        Self { bits: bits.clamp(MIN_BITS, MAX_BITS), features: Vec::new(), stamps: Vec::new(), generation: 0 }
    }

    /// Number of hash buckets.
    pub fn buckets(&self) -> usize {
        1 << self.bits
    }

    /// The distinct feature buckets of `text`, sorted.
    pub fn features(&mut self, text: &str) -> &[u32] {
        let features = &mut self.features;
        features.clear();
        Self::each_feature(self.bits, text, |f| features.push(f));
        features.sort_unstable();
        features.dedup();
        features
    }

    /// The distinct feature buckets of `text` in the order they first
    /// occur: the same set as [`features`](Self::features), without sorting.
    pub fn distinct(&mut self, text: &str) -> &[u32] {
        let mut list = std::mem::take(&mut self.features);
        list.clear();
        self.fold_distinct(self.bits, text, (), |(), x| list.push(x));
        self.features = list;
        &self.features
    }

    /// Folds `f` over the distinct feature buckets of `text` in the order
    /// they first occur; also returns how many there are. `bits` are this
    /// featurizer's bits. A bucket is taken when its stamp is not this
    /// call's generation yet; the stamps are reset once every 255 calls, so
    /// nothing is cleared per text.
    #[inline(always)]
    fn fold_distinct<B: Bits, A: Copy>(
        &mut self,
        bits: B,
        text: &str,
        init: A,
        mut f: impl FnMut(A, u32) -> A,
    ) -> (A, usize) {
        debug_assert_eq!(bits.get(), self.bits);
        if self.stamps.is_empty() {
            self.stamps = vec![0; self.buckets()];
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamps.fill(0);
            self.generation = 1;
        }
        let generation = self.generation;
        // A power of two of buckets, and every feature is below it: the
        // mask changes nothing but spares a bounds check.
        let stamps = &mut self.stamps[..1 << bits.get()];
        let mask = stamps.len() - 1;
        // Counted in a float, which is exact up to 2^24 (MAX_BITS buckets)
        // and leaves the integer registers to the loop.
        let (mut n, mut acc) = (0.0f32, init);
        Self::each_feature(bits, text, |x| {
            let stamp = &mut stamps[x as usize & mask];
            if *stamp != generation {
                *stamp = generation;
                n += 1.0;
                acc = f(acc, x);
            }
        });
        (acc, n as usize)
    }

    /// Calls `take` with every feature bucket of `text`, repeats included,
    /// unit by unit (its 1-gram, 2-gram, 3-gram and skip bigram). One pass
    /// over the characters, no buffer: a unit's n-grams are written out as
    /// soon as the two units after it are known. WebAssembly hosts check
    /// their deadline at every loop back-edge, and the registers live there
    /// get saved around the check, so the loop goes round as seldom as it
    /// can: a word is read to its end, and a run of ideographs four at a time.
    #[inline(always)]
    fn each_feature(bits: impl Bits, text: &str, take: impl FnMut(u32)) {
        let mut grams = Grams { before: BOUNDARY, last: BOUNDARY, shift: 64 - bits.get(), take };
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match classify(c) {
                Unit::Char(u) => {
                    grams.push(u);
                    // Up to three more ideographs without going round the loop.
                    if let Some(u) = ideograph(&mut chars) {
                        grams.push(u);
                        if let Some(u) = ideograph(&mut chars) {
                            grams.push(u);
                            if let Some(u) = ideograph(&mut chars) {
                                grams.push(u);
                            }
                        }
                    }
                }
                // Runs of boundaries collapse to one; the text starts with one.
                Unit::Boundary if grams.last != BOUNDARY => grams.push(BOUNDARY),
                Unit::Boundary | Unit::Skip => {}
                Unit::Word(b) => {
                    // A word runs to the first character that is not part of one.
                    let mut word = mix(WORD_SEED ^ u64::from(b));
                    let mut rest = chars.clone();
                    while let Some(Unit::Word(b)) = rest.next().map(classify) {
                        word = mix(word ^ u64::from(b));
                        chars = rest.clone();
                    }
                    grams.push(word | WORD_FLAG);
                }
            }
        }
        grams.finish();
    }
}

/// The n-grams of a stream of units. `before` and `last` are the two latest
/// units; at the start, a boundary standing before the text's opening
/// boundary, which contributes nothing.
struct Grams<F> {
    before: u64,
    last: u64,
    shift: u32,
    take: F,
}

impl<F: FnMut(u32)> Grams<F> {
    /// The next unit: the n-grams starting two units back are now known.
    #[inline(always)]
    fn push(&mut self, unit: u64) {
        self.starting_at(self.before, self.last, unit);
        self.before = self.last;
        self.last = unit;
    }

    /// The end of the text: the n-grams starting at the last two units.
    #[inline(always)]
    fn finish(mut self) {
        self.starting_at(self.before, self.last, BOUNDARY);
        self.starting_at(self.last, BOUNDARY, BOUNDARY);
    }

    /// The n-grams starting at unit `first`, followed by `second` and
    /// `third` (boundaries past the end of the text). A boundary may only
    /// open an n-gram, and alone it is no feature.
    #[inline(always)]
    fn starting_at(&mut self, first: u64, second: u64, third: u64) {
        const _: () = assert!(MAX_ORDER == 3);
        let h = mix(NGRAM_SEED ^ first);
        if first != BOUNDARY {
            self.emit(h);
        }
        if second != BOUNDARY {
            let h = mix(h ^ second.wrapping_add(ORDER_STEP));
            self.emit(h);
            if third != BOUNDARY {
                self.emit(mix(h ^ third.wrapping_add(2 * ORDER_STEP)));
            }
        }
        if first != BOUNDARY && third != BOUNDARY {
            self.emit(mix(mix(SKIP_SEED ^ first) ^ third));
        }
    }

    #[inline(always)]
    fn emit(&mut self, h: u64) {
        (self.take)((h >> self.shift) as u32);
    }
}

/// What a sentiment model is, for `GET`-style info answers and logs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SentimentInfo {
    /// Model id / version.
    pub model_id: String,
    /// Always `sentiment`.
    pub kind: ModelKind,
    /// Export time.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Artifact format version.
    pub format_version: u32,
    /// Signing key id.
    pub key_id: String,
    /// Hash bits (the model has `2^bits` weights).
    pub bits: u32,
    /// The training data.
    pub training: TrainingWindow,
    /// Offline metrics measured at training time.
    pub metrics: std::collections::BTreeMap<String, f64>,
}

/// A verified sentiment model, ready to score.
#[derive(Debug)]
pub struct SentimentModel {
    info: SentimentInfo,
    weights: Vec<f32>,
    bias: f32,
    /// Featurizers of earlier [`score`](Self::score) and
    /// [`score_all`](Self::score_all) calls, kept so that a call does not
    /// allocate and zero a stamp per bucket again.
    spare: std::sync::Mutex<Vec<Featurizer>>,
}

/// Featurizers a model keeps for later calls.
const SPARE_FEATURIZERS: usize = 4;

impl Clone for SentimentModel {
    fn clone(&self) -> Self {
        Self { info: self.info.clone(), weights: self.weights.clone(), bias: self.bias, spare: Default::default() }
    }
}

impl SentimentModel {
    /// Verifies an artifact with `key` and loads it.
    pub fn from_artifact(bytes: &[u8], key: &(impl VerifyingKeys + ?Sized)) -> Result<Self> {
        Self::from_verified(Artifact::read(bytes, key)?)
    }

    /// Loads an already verified artifact, checking kind, requirements and tensors.
    pub fn from_verified(mut a: Artifact) -> Result<Self> {
        if a.manifest.kind != ModelKind::Sentiment {
            return Err(Error::Manifest(format!("a {} model is not a sentiment model", a.manifest.kind.as_str())));
        }
        if !a.manifest.requires.iter().any(|r| r == FEATURES) {
            return Err(Error::Manifest(format!("a sentiment model must require `{FEATURES}`")));
        }
        let n = match a.tensors.get(WEIGHTS_TENSOR) {
            Some((shape, _)) if shape.len() == 1 => shape[0],
            Some((shape, _)) => return Err(Error::Tensors(format!("{WEIGHTS_TENSOR}: shape {shape:?} is not 1-D"))),
            None => return Err(Error::Tensors(format!("{WEIGHTS_TENSOR}: missing"))),
        };
        let bits = n.trailing_zeros();
        if !n.is_power_of_two() || !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(Error::Tensors(format!(
                "{WEIGHTS_TENSOR}: {n} weights; expected a power of two from 2^{MIN_BITS} to 2^{MAX_BITS}"
            )));
        }
        let weights = a.take_f32(WEIGHTS_TENSOR, &[n])?;
        let bias = a.take_f32(BIAS_TENSOR, &[1])?[0];
        if !bias.is_finite() || weights.iter().any(|w| !w.is_finite()) {
            return Err(Error::Tensors("sentiment weights must be finite".into()));
        }
        let m = a.manifest;
        Ok(Self {
            info: SentimentInfo {
                model_id: m.model_id,
                kind: m.kind,
                created_at: m.created_at,
                format_version: m.format_version,
                key_id: m.key_id,
                bits,
                training: m.training,
                metrics: m.metrics,
            },
            weights,
            bias,
            spare: Default::default(),
        })
    }

    /// A model straight from trained weights (no artifact; for evaluation at training time).
    ///
    /// Fails unless the weights are finite and their number is a power of two
    /// from 2^[`MIN_BITS`] to 2^[`MAX_BITS`].
    pub fn from_weights(weights: Vec<f32>, bias: f32, model_id: &str) -> Result<Self> {
        let manifest = builder(Vec::new(), bias, model_id).manifest_mut().clone();
        let n = weights.len();
        let tensors = [
            (WEIGHTS_TENSOR.to_owned(), (vec![n], TensorData::F32(weights))),
            (BIAS_TENSOR.to_owned(), (vec![1], TensorData::F32(vec![bias]))),
        ]
        .into_iter()
        .collect();
        Self::from_verified(Artifact { manifest, tensors })
    }

    /// What the model is.
    pub fn info(&self) -> &SentimentInfo {
        &self.info
    }

    /// Hash bits of the model.
    pub fn bits(&self) -> u32 {
        self.info.bits
    }

    /// A featurizer matching this model (reuse it across calls of [`SentimentModel::score_with`]).
    pub fn featurizer(&self) -> Featurizer {
        Featurizer::new(self.info.bits)
    }

    /// The logit of `text`; `None` when the text has no features.
    pub fn logit_with(&self, featurizer: &mut Featurizer, text: &str) -> Option<f32> {
        // Features come from a featurizer of the same bits in normal use; a
        // mismatched one is masked instead of indexing out of bounds. The
        // weights are summed as the features are found, in the order they
        // first occur. Models of the default size take the loop compiled
        // for their bits.
        let weights = &self.weights[..];
        let (sum, n) = if featurizer.bits == DEFAULT_BITS && weights.len() == 1 << DEFAULT_BITS {
            let weights = &weights[..1 << DEFAULT_BITS];
            let mask = (1 << DEFAULT_BITS) - 1;
            featurizer.fold_distinct(Fixed::<DEFAULT_BITS>, text, 0.0f32, |sum, f| sum + weights[f as usize & mask])
        } else {
            Self::weigh(weights, featurizer, text)?
        };
        if n == 0 {
            return None;
        }
        Some(self.bias + sum / (n as f32).sqrt())
    }

    /// The sum of the weights of `text`'s features and their number, for
    /// any bits (kept out of line: the default size has its own loop).
    #[inline(never)]
    fn weigh(weights: &[f32], featurizer: &mut Featurizer, text: &str) -> Option<(f32, usize)> {
        let mask = weights.len().checked_sub(1)?;
        Some(featurizer.fold_distinct(featurizer.bits, text, 0.0f32, |sum, f| sum + weights[f as usize & mask]))
    }

    /// Scores one text with a reusable featurizer.
    pub fn score_with(&self, featurizer: &mut Featurizer, text: &str) -> Sentiment {
        match self.logit_with(featurizer, text) {
            None => Sentiment { label: Label::Neutral, score: 0.5 },
            Some(z) => {
                let score = 1.0 / (1.0 + (-z).exp());
                Sentiment { label: if score >= 0.5 { Label::Positive } else { Label::Negative }, score }
            }
        }
    }

    /// Scores one text.
    pub fn score(&self, text: &str) -> Sentiment {
        self.with_featurizer(|f| self.score_with(f, text))
    }

    /// Scores many texts, in order.
    pub fn score_all<S: AsRef<str>>(&self, texts: &[S]) -> Vec<Sentiment> {
        self.with_featurizer(|f| texts.iter().map(|t| self.score_with(f, t.as_ref())).collect())
    }

    /// Runs `work` with a spare featurizer (or a new one), then keeps it.
    fn with_featurizer<T>(&self, work: impl FnOnce(&mut Featurizer) -> T) -> T {
        let spare = self.spare.lock().ok().and_then(|mut spare| spare.pop());
        let mut f = spare.unwrap_or_else(|| self.featurizer());
        let out = work(&mut f);
        if let Ok(mut spare) = self.spare.lock()
            && spare.len() < SPARE_FEATURIZERS
        {
            spare.push(f);
        }
        out
    }
}

/// An unsigned sentiment artifact with `weights` (one per bucket) and `bias`;
/// set training window, metrics and params through
/// [`ArtifactBuilder::manifest_mut`], then sign.
pub fn builder(weights: Vec<f32>, bias: f32, model_id: &str) -> ArtifactBuilder {
    let mut b = ArtifactBuilder::new(ModelKind::Sentiment, 0);
    let n = weights.len();
    b.tensor(WEIGHTS_TENSOR, vec![n], TensorData::F32(weights));
    b.tensor(BIAS_TENSOR, vec![1], TensorData::F32(vec![bias]));
    let m = b.manifest_mut();
    m.model_id = model_id.to_owned();
    m.requires = vec![FEATURES.to_owned()];
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use knowedge_format::artifact::SigningKey;

    fn toy() -> SentimentModel {
        let bits = 12;
        let mut f = Featurizer::new(bits);
        let mut w = vec![0.0; 1 << bits];
        for &i in f.features("好 喜欢 great") {
            w[i as usize] += 2.0;
        }
        for &i in f.features("差 失望 bad") {
            w[i as usize] -= 2.0;
        }
        let key = SigningKey::from_seed([4; 32]);
        let bytes = builder(w, 0.1, "toy-1").sign(&key).unwrap();
        SentimentModel::from_artifact(&bytes, &key.public_key()).unwrap()
    }

    #[test]
    fn features_are_stable_and_normalised() {
        let mut f = Featurizer::new(16);
        let a = f.features("ＧＲＥＡＴ 好书！").to_vec();
        let b = f.features("great 好书!").to_vec();
        assert_eq!(a, b, "full-width and case fold to the same features");
        assert_eq!(f.features("价格 12 元").to_vec(), f.features("价格 99 元").to_vec(), "digits are one class");
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(a.iter().all(|&x| (x as usize) < f.buckets()));
        assert_eq!(f.features("好").len(), 2, "the unigram and the clause-start bigram");
        assert_eq!(f.features("好书").len(), 5, "2 unigrams, 2 bigrams, 1 trigram (with the start)");
        assert_eq!(f.features("很好书").len(), 9, "3 unigrams, 3 bigrams, 2 trigrams, 1 skip bigram");
    }

    #[test]
    fn distinct_gives_the_sorted_set_unsorted() {
        let mut f = Featurizer::new(12);
        let long = "好书好书，不错不错！".repeat(200);
        for text in ["", "好", "好书 好书 好书", "ok ok OK 12 34", "😀😀 很好", long.as_str(), "好书 ok"]
        {
            let sorted = f.features(text).to_vec();
            let mut first = f.distinct(text).to_vec();
            assert_eq!(first.len(), sorted.len(), "{text:?}: no repeats");
            first.sort_unstable();
            assert_eq!(first, sorted, "{text:?}");
        }
        // The marks are cleared after each call: the same text again, the same answer.
        let once = f.distinct("好书 好书").to_vec();
        assert_eq!(f.distinct("好书 好书"), once);
        // Past the 255 generations of the stamps, every feature still comes once.
        for i in 0..600 {
            let text = ["好书 好书", "不错", "好书 不错", ""][i % 4];
            let mut d = f.distinct(text).to_vec();
            d.sort_unstable();
            assert_eq!(d, f.features(text), "{i}: {text:?}");
        }
    }

    /// Version 1 written plainly, as the module documentation defines it:
    /// the units first, then every unit's n-grams in order.
    fn plain_features(bits: u32, text: &str) -> Vec<u32> {
        let mut units = vec![BOUNDARY];
        let mut word: Option<u64> = None;
        for c in text.chars() {
            let unit = classify(c);
            if let Unit::Word(b) = unit {
                word = Some(mix(word.unwrap_or(WORD_SEED) ^ u64::from(b)));
                continue;
            }
            units.extend(word.take().map(|w| w | WORD_FLAG));
            match unit {
                Unit::Boundary if units.last() != Some(&BOUNDARY) => units.push(BOUNDARY),
                Unit::Char(u) => units.push(u),
                _ => {}
            }
        }
        units.extend(word.map(|w| w | WORD_FLAG));
        let bucket = |h: u64| (h >> (64 - bits)) as u32;
        let mut out = Vec::new();
        for i in 0..units.len() {
            let at = |j: usize| units.get(j).copied().filter(|&u| u != BOUNDARY);
            let h1 = mix(NGRAM_SEED ^ units[i]);
            out.extend(at(i).map(|_| bucket(h1)));
            if let Some(second) = at(i + 1) {
                let h2 = mix(h1 ^ second.wrapping_add(ORDER_STEP));
                out.push(bucket(h2));
                out.extend(at(i + 2).map(|third| bucket(mix(h2 ^ third.wrapping_add(2 * ORDER_STEP)))));
            }
            if let (Some(first), Some(third)) = (at(i), at(i + 2)) {
                out.push(bucket(mix(mix(SKIP_SEED ^ first) ^ third)));
            }
        }
        out
    }

    #[test]
    fn one_pass_gives_the_plain_features_in_order() {
        let texts = [
            "",
            " ",
            "好",
            "好书",
            "  很好书  ",
            "这本书 great, 推荐! 12元",
            "ok",
            "a b",
            "😀😀 很好\u{200b}书\n\n\t差",
            "ＧＲＥＡＴ 好书！ \u{3000} 再说缺点：",
            "Книга хорошая, 3,被子感觉很不好",
            "\u{0}\u{1}好\u{7f}",
            // Runs of 1 to 9 ideographs, between words and punctuation.
            "好。很好。非常好书。这本书很好。这本书非常好看。这本书真的非常好看。这本书真的是非常好看。这本书真的是非常非常好",
            "abc好def很好ghi很好书jkl这本好书mno这本书很好",
            "好ab\u{200b}cd书ｅｆ1２3很😀好x",
            "书书书书书书书书书",
        ];
        for text in texts {
            let mut seen = Vec::new();
            Featurizer::each_feature(20, text, |f| seen.push(f));
            assert_eq!(seen, plain_features(20, text), "{text:?}");
        }
        // The model sums the same weights in the same order: the same bits,
        // on the general path (12 bits) and on the default size's own loop.
        let mut weights = vec![0.0f32; 1 << DEFAULT_BITS];
        for (i, w) in weights.iter_mut().enumerate() {
            *w = ((i as u32).wrapping_mul(2_654_435_761) >> 20) as f32 / 256.0 - 8.0;
        }
        for m in [toy(), SentimentModel::from_weights(weights, -0.3, "default-size").unwrap()] {
            let mut f = m.featurizer();
            for text in texts {
                let plain = plain_features(m.bits(), text);
                let mut firsts: Vec<u32> = Vec::new();
                for x in plain {
                    if !firsts.contains(&x) {
                        firsts.push(x);
                    }
                }
                let expected = (!firsts.is_empty()).then(|| {
                    let sum: f32 = firsts.iter().map(|&x| m.weights[x as usize]).sum();
                    m.bias + sum / (firsts.len() as f32).sqrt()
                });
                let got = m.logit_with(&mut f, text);
                assert_eq!(got.map(f32::to_bits), expected.map(f32::to_bits), "{} bits, {text:?}", m.bits());
            }
        }
    }

    #[test]
    fn pins_the_features_of_version_1() {
        // Trained models depend on these exact values: a change here needs a new `FEATURES` version.
        let mut f = Featurizer::new(20);
        assert_eq!(f.features("好书 ok"), PINNED);
    }
    const PINNED: &[u32] = &[11547, 55983, 190694, 259028, 396628, 646797, 658711, 785114];

    #[test]
    fn scores_and_labels() {
        let m = toy();
        assert_eq!(m.info().model_id, "toy-1");
        assert_eq!(m.bits(), 12);
        assert_eq!(m.score("这本书很好，我喜欢").label, Label::Positive);
        assert_eq!(m.score("太差了，失望").label, Label::Negative);
        let s = m.score("好");
        assert!(s.score > 0.5 && s.score <= 1.0);
        assert_eq!(
            m.score_all(&["好", "差"]).iter().map(|s| s.label).collect::<Vec<_>>(),
            [Label::Positive, Label::Negative]
        );
        // Later calls reuse the model's featurizers and answer the same as a fresh one.
        let texts = ["这本书很好，我喜欢", "太差了，失望", "好书 好书 ok", ""];
        let fresh: Vec<Sentiment> = texts.iter().map(|t| m.score_with(&mut m.featurizer(), t)).collect();
        for _ in 0..300 {
            assert_eq!(m.score_all(&texts), fresh);
        }
        assert_eq!(m.clone().score_all(&texts), fresh);
    }

    #[test]
    fn odd_input_gets_a_defined_answer() {
        let m = toy();
        let neutral = Sentiment { label: Label::Neutral, score: 0.5 };
        for text in ["", "   ", "\n\t\r", "\u{0}\u{1}\u{7f}\u{9f}", "\u{200b}\u{feff}\u{fe0f}"] {
            assert_eq!(m.score(text), neutral, "{text:?}");
        }
        // Emoji only: scored (one shared unit), deterministic, in range.
        let e1 = m.score("😀😀👍");
        let e2 = m.score("😡🔥");
        assert_ne!(e1.label, Label::Neutral);
        assert!((0.0..=1.0).contains(&e1.score));
        assert_eq!(Featurizer::new(12).features("😀").to_vec(), Featurizer::new(12).features("👍").to_vec());
        assert!((0.0..=1.0).contains(&e2.score));
        // Mixed Chinese and English, other scripts, lone combining marks.
        for text in ["这本书 great, 推荐!", "Книга хорошая", "\u{301}\u{301}", "ｇｏｏｄ！！", "a", "1"]
        {
            let s = m.score(text);
            assert_ne!(s.label, Label::Neutral, "{text:?}");
            assert!(s.score.is_finite() && (0.0..=1.0).contains(&s.score), "{text:?}");
        }
        assert_eq!(m.score("great").label, Label::Positive);
        // A megabyte of text scores without trouble.
        let big = "好".repeat(350_000);
        assert!(big.len() > 1_000_000);
        assert_eq!(m.score(&big).label, Label::Positive);
        let big_mixed: String = (0..200_000).map(|i| char::from_u32(0x4e00 + (i * 7919) % 20000).unwrap()).collect();
        assert!(m.score(&big_mixed).score.is_finite());
        // Invalid UTF-8 never reaches the model: callers decode, lossy or strictly.
        let lossy = String::from_utf8_lossy(b"\xff\xfe\xe5\xa5\xbd");
        assert!(m.score(&lossy).score.is_finite());
    }

    #[test]
    fn refuses_what_is_not_a_sentiment_model() {
        let key = SigningKey::from_seed([4; 32]);
        let pk = key.public_key();
        let mut pop = ArtifactBuilder::new(ModelKind::Popularity, 0);
        pop.items(vec!["a".into()]);
        let err = SentimentModel::from_artifact(&pop.sign(&key).unwrap(), &pk).unwrap_err();
        assert!(matches!(err, Error::Manifest(_)), "{err:?}");
        let bad_len = builder(vec![0.0; 1000], 0.0, "x").sign(&key).unwrap();
        assert!(matches!(SentimentModel::from_artifact(&bad_len, &pk), Err(Error::Tensors(_))));
        let nan = builder(vec![f32::NAN; 1024], 0.0, "x").sign(&key).unwrap();
        assert!(matches!(SentimentModel::from_artifact(&nan, &pk), Err(Error::Tensors(_))));
        let mut no_bias = ArtifactBuilder::new(ModelKind::Sentiment, 0);
        no_bias.manifest_mut().requires = vec![FEATURES.into()];
        no_bias.tensor(WEIGHTS_TENSOR, vec![1024], TensorData::F32(vec![0.0; 1024]));
        assert!(matches!(SentimentModel::from_artifact(&no_bias.sign(&key).unwrap(), &pk), Err(Error::Tensors(_))));
        // A sentiment artifact is no recommendation model either.
        let ok = builder(vec![0.0; 1024], 0.0, "x").sign(&key).unwrap();
        assert!(crate::model::Model::from_artifact(&ok, &pk).is_err());
        assert!(SentimentModel::from_weights(vec![0.0; 1024], 0.0, "w").is_ok());
        assert!(SentimentModel::from_weights(vec![0.0; 1000], 0.0, "w").is_err());
    }
}
