//! The signed model artifact, format version 2.
//!
//! One file carries one trained model:
//!
//! ```text
//! offset  size  content
//! 0       8     magic "KNWMODEL"
//! 8       4     format version, u32 little endian (2)
//! 12      4     manifest length M, u32 little endian
//! 16      8     tensor section length T, u64 little endian
//! 24      M     manifest, UTF-8 JSON (see [`Manifest`])
//! 24+M    T     tensors, in the safetensors format
//! 24+M+T  64    ed25519 signature (see below)
//! ```
//!
//! Version 2 signs a digest: the signature is the ed25519 signature of the
//! 66 bytes `"knowedge model artifact v2 blake3\0"` (34 bytes, the trailing
//! NUL included) followed by the 32-byte BLAKE3 hash of bytes
//! `[0, 24+M+T)`. BLAKE3 hashes several gigabytes a second with SIMD, where
//! ed25519's own SHA-512 pass over a multi-megabyte artifact cost most of a
//! model load. Version 1 (same layout, the signature over bytes
//! `[0, 24+M+T)` themselves) is still read; writers produce version 2.
//!
//! A reader must (in this order) check the magic, refuse any format version
//! other than those in [`READABLE_VERSIONS`], check the lengths, verify the
//! signature with the publisher's public key, check that the manifest's
//! `format_version` equals the header's, refuse a manifest whose `requires`
//! list names a feature it does not implement, and check the tensors
//! against the manifest. Unknown manifest fields that are not listed in
//! `requires` are ignored, so later writers can add optional information
//! without breaking readers.
//!
//! Tensors (all little endian):
//!
//! | name | dtype | shape | meaning |
//! |---|---|---|---|
//! | `item_popularity` | F32 | `[items]` | fallback score of every item (all kinds) |
//! | `item_category` | U32 | `[items]` | index into `categories`, `u32::MAX` for none |
//! | `item_price` | F32 | `[items]` | price in the catalogue currency, NaN if unknown |
//! | `user_seen_offsets` | U32 | `[users + 1]` | CSR offsets of items each user owns |
//! | `user_seen_items` | U32 | `[nnz]` | CSR item indices (sorted per user) |
//! | `item_factors` | F32 or I8 | `[items, dims]` | item embeddings (kind `mf`) |
//! | `user_factors` | F32 or I8 | `[users, dims]` | user embeddings (kind `mf`) |
//! | `item_factor_scale` | F32 | `[1]` | scale of I8 `item_factors` (feature `factors-i8`) |
//! | `item_ids`, `user_ids` | U8 | `[bytes]` | ids, UTF-8, concatenated (feature `id-tensors`) |
//! | `item_id_ends`, `user_id_ends` | U32 | `[items]`, `[users]` | end of each id in the bytes (feature `id-tensors`) |
//! | `user_factor_scale` | F32 | `[1]` | scale of I8 `user_factors` (feature `factors-i8`) |
//! | `item_neighbour_offsets` | U32 | `[rows + 1]` | CSR offsets of each row's neighbours: rows are the items, then optional user features (kind `itemitem`) |
//! | `item_neighbour_items` | U32 | `[nnz]` | neighbour item indices, in summation order (kind `itemitem`) |
//! | `item_neighbour_weights` | F32 | `[nnz]` | neighbour weights (kind `itemitem`) |
//! | `item_bias` | F32 | `[items]` | score every item starts from (kind `itemitem`, optional, zero if absent) |
//! | `user_history_offsets` | U32 | `[users + 1]` | CSR offsets of each user's history (kind `itemitem`) |
//! | `user_history_items` | U32 | `[nnz]` | rows of each user: items engaged with, then user features, sorted (kind `itemitem`) |
//!
//! Ids stored as tensors (feature `id-tensors` in `requires`, written by
//! this crate whenever a model has items or users): the manifest's `items`
//! and `users` lists are empty, and each list is two tensors instead,
//! `<list>_ids` (U8 `[bytes]`, the ids' UTF-8 one after another) and
//! `<list>_id_ends` (U32 `[ids]`, where each id ends), for `item` and
//! `user`. A reader refuses text that is not UTF-8, ends that decrease, run
//! past the text, fall inside a character or do not end it, and ids in both
//! places. Reading ids this way costs a UTF-8 check and a copy, where a JSON
//! list of ten thousand ids cost about as much as hashing the whole file.
//!
//! Factors stored at 8 bits (feature `factors-i8` in `requires`): both
//! factor tensors are I8, and the factor a model scores with is the `f32`
//! product `scale · q` of the matrix's positive, finite scale and the stored
//! integer. Writers store values in `-127..=127`; readers take any `i8`
//! (`-128` too: refusing it would cost a pass over the matrix at every
//! load, and nothing depends on it). Writers ([`quantize_factors`]) pick a
//! power of two for the scale, so that the product is exact and quantising
//! the products again gives back the same integers. Item factors take a
//! quarter of the bytes of F32: a smaller file to fetch, hash and hold at the
//! edge, and the form the first pass of the top-k search reads anyway.
//!
//! Kind `itemitem` (feature `item-item` in `requires`) scores item `i` for a
//! user as `item_bias[i] + sum over h in history(user) of w(h, i)`, where
//! `w(h, i)` is the weight of `i` among the stored neighbours of row `h` (zero
//! if absent); see [`crate::model::ItemItemWeights::scores`] for the exact
//! summation order.
//!
//! Kind `sentiment` (feature `sentiment-features-v1` in `requires`) has no
//! items or users and two tensors, `sentiment_weights` (F32 `[2^bits]`) and
//! `sentiment_bias` (F32 `[1]`); see [`crate::sentiment`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, Verifier};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Magic bytes at the start of every artifact.
pub const MAGIC: &[u8; 8] = b"KNWMODEL";
/// The artifact format version this crate writes.
pub const FORMAT_VERSION: u32 = 2;
/// The artifact format versions this crate reads.
pub const READABLE_VERSIONS: &[u32] = &[1, 2];
/// What a version 2 signature signs, before the BLAKE3 digest.
const DIGEST_DOMAIN_V2: &[u8] = b"knowedge model artifact v2 blake3\0";
/// Features (names in a manifest's `requires`) this reader implements.
pub const SUPPORTED_FEATURES: &[&str] =
    &["dot-product", "factors-i8", "id-tensors", "item-item", "sentiment-features-v1"];
/// The feature of factors stored at 8 bits.
pub const FACTORS_I8: &str = "factors-i8";
/// The feature of ids stored as tensors instead of in the manifest.
pub const ID_TENSORS: &str = "id-tensors";
const HEADER_LEN: usize = 24;
const SIGNATURE_LEN: usize = 64;

/// Which scoring a model uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Items ranked by (recent) popularity, the same for every learner.
    Popularity,
    /// Matrix factorisation: score = user factors · item factors.
    Mf,
    /// Item-item: score = item bias + sum of sparse neighbour weights over the user's history.
    #[serde(rename = "itemitem")]
    ItemItem,
    /// Review sentiment: a linear model on hashed text features (see [`crate::sentiment`]).
    Sentiment,
}

impl ModelKind {
    /// The manifest name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Popularity => "popularity",
            ModelKind::Mf => "mf",
            ModelKind::ItemItem => "itemitem",
            ModelKind::Sentiment => "sentiment",
        }
    }
}

/// The time span and size of the data a model was trained on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingWindow {
    /// Earliest event used.
    pub from: Option<DateTime<Utc>>,
    /// Latest event used.
    pub to: Option<DateTime<Utc>>,
    /// Number of events used.
    pub events: u64,
}

/// The JSON manifest of an artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_VERSION`] for this reader.
    pub format_version: u32,
    /// Features a reader must implement to use this model.
    #[serde(default)]
    pub requires: Vec<String>,
    /// How the model scores.
    pub kind: ModelKind,
    /// Unique id of this model (also its version in the model store).
    pub model_id: String,
    /// When it was exported.
    pub created_at: DateTime<Utc>,
    /// Identifier of the signing key (first 8 bytes of SHA-256 of the public key, hex).
    pub key_id: String,
    /// Embedding dimensions (0 for popularity models).
    pub dims: usize,
    /// Item ids, in tensor row order.
    pub items: IdList,
    /// Pseudonymous user ids, in tensor row order.
    pub users: IdList,
    /// Category names referenced by `item_category`.
    #[serde(default)]
    pub categories: Vec<String>,
    /// The training data.
    #[serde(default)]
    pub training: TrainingWindow,
    /// Offline metrics measured at training time.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Hyper-parameters used.
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
}

/// A list of ids (a JSON array of strings in the manifest), held as one
/// string and the end of each id in it: reading the ids of a large model
/// allocates twice, not once per id.
///
/// ```
/// use knowedge_format::artifact::IdList;
///
/// let ids: IdList = ["course-1", "book-7"].into_iter().collect();
/// assert_eq!((ids.len(), &ids[1]), (2, "book-7"));
/// let json = serde_json::to_string(&ids).unwrap();
/// assert_eq!(json, r#"["course-1","book-7"]"#);
/// assert_eq!(serde_json::from_str::<IdList>(&json).unwrap(), ids);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdList {
    text: String,
    ends: Vec<u32>,
}

impl IdList {
    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Id `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..end)
    }

    /// The bytes of id `i` (no character boundary checks, unlike slicing
    /// the text: ids are whole strings by construction). Panics if out of range.
    pub fn bytes(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text.as_bytes()[start..self.ends[i] as usize]
    }

    /// The text of all ids and where each ends.
    pub fn parts(&self) -> (&[u8], &[u32]) {
        (self.text.as_bytes(), &self.ends)
    }

    /// The ids in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| &self[i])
    }

    /// Appends an id. Panics if the ids together exceed 4 GiB.
    pub fn push(&mut self, id: &str) {
        self.text.push_str(id);
        self.ends.push(u32::try_from(self.text.len()).expect("ids exceed 4 GiB"));
    }
}

impl std::ops::Index<usize> for IdList {
    type Output = str;

    /// Id `i`; panics if out of range, as a slice does.
    fn index(&self, i: usize) -> &str {
        match self.get(i) {
            Some(id) => id,
            None => panic!("id index {i} out of range for {} ids", self.len()),
        }
    }
}

impl<S: AsRef<str>> FromIterator<S> for IdList {
    fn from_iter<T: IntoIterator<Item = S>>(iter: T) -> Self {
        let mut ids = IdList::default();
        for id in iter {
            ids.push(id.as_ref());
        }
        ids
    }
}

impl Serialize for IdList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for IdList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};

        /// Appends one string to the list's text, without allocating it on its own.
        struct Append<'a>(&'a mut String);
        impl<'de> DeserializeSeed<'de> for Append<'_> {
            type Value = ();
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
                d.deserialize_str(self)
            }
        }
        impl Visitor<'_> for Append<'_> {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an id string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<(), E> {
                self.0.push_str(v);
                Ok(())
            }
        }
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = IdList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of id strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<IdList, A::Error> {
                let mut ids = IdList::default();
                while seq.next_element_seed(Append(&mut ids.text))?.is_some() {
                    let end = u32::try_from(ids.text.len()).map_err(|_| A::Error::custom("ids exceed 4 GiB"))?;
                    ids.ends.push(end);
                }
                Ok(ids)
            }
        }
        deserializer.deserialize_seq(List)
    }
}

/// A tensor's values.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 32-bit unsigned integers.
    U32(Vec<u32>),
    /// 8-bit signed integers.
    I8(Vec<i8>),
    /// Bytes.
    U8(Vec<u8>),
}

impl TensorData {
    fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I8(v) => v.iter().map(|x| x.to_le_bytes()[0]).collect(),
            TensorData::U8(v) => v.clone(),
        }
    }
    fn dtype(&self) -> Dtype {
        match self {
            TensorData::F32(_) => Dtype::F32,
            TensorData::U32(_) => Dtype::U32,
            TensorData::I8(_) => Dtype::I8,
            TensorData::U8(_) => Dtype::U8,
        }
    }
}

/// An ed25519 key that signs artifacts (kept by the training function).
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public_key().key_id())
    }
}

impl SigningKey {
    /// A key from its 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// A key from a hex-encoded 32-byte seed.
    pub fn from_hex(hex_seed: &str) -> Result<Self> {
        let raw = hex::decode(hex_seed.trim()).map_err(|e| Error::Key(format!("signing key is not hex: {e}")))?;
        let seed: [u8; 32] = raw.try_into().map_err(|_| Error::Key("signing key must be 32 bytes".into()))?;
        Ok(Self::from_seed(seed))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
}

/// An ed25519 public key that verifies artifacts (given to readers and the edge).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// A key from its hex encoding (32 bytes).
    pub fn from_hex(hex_key: &str) -> Result<Self> {
        let raw = hex::decode(hex_key.trim()).map_err(|e| Error::Key(format!("public key is not hex: {e}")))?;
        let bytes: [u8; 32] = raw.try_into().map_err(|_| Error::Key("public key must be 32 bytes".into()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).map(Self).map_err(|e| Error::Key(e.to_string()))
    }

    /// Hex encoding of the key.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// Short identifier: first 8 bytes of SHA-256 of the key, hex.
    pub fn key_id(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_bytes())[..8])
    }
}

/// The keys a reader accepts artifacts from.
///
/// A single [`PublicKey`] is one; a [`KeySet`] holds several (key rotation:
/// the artifact's manifest names its signing key by [`PublicKey::key_id`],
/// and the set verifies it with that key).
pub trait VerifyingKeys {
    /// The accepted key whose [`PublicKey::key_id`] is `key_id`.
    fn find(&self, key_id: &str) -> Option<&PublicKey>;
    /// The one accepted key, when there is exactly one.
    fn only(&self) -> Option<&PublicKey>;
}

impl VerifyingKeys for PublicKey {
    fn find(&self, key_id: &str) -> Option<&PublicKey> {
        (self.key_id() == key_id).then_some(self)
    }

    fn only(&self) -> Option<&PublicKey> {
        Some(self)
    }
}

/// Several accepted signing keys (for rotation), each with its key id.
///
/// ```
/// use knowedge_format::artifact::{KeySet, SigningKey};
///
/// let (old, new) = (SigningKey::from_seed([1; 32]), SigningKey::from_seed([2; 32]));
/// let list = format!("{}, {}", old.public_key().to_hex(), new.public_key().to_hex());
/// let set = KeySet::from_hex_list(&list).unwrap();
/// assert_eq!(set.len(), 2);
/// assert!(KeySet::from_hex_list("").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<(String, PublicKey)>,
}

impl KeySet {
    /// A set of the given keys (at least one).
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Result<Self> {
        let keys: Vec<(String, PublicKey)> = keys.into_iter().map(|k| (k.key_id(), k)).collect();
        if keys.is_empty() {
            return Err(Error::Key("no public key given".into()));
        }
        Ok(Self { keys })
    }

    /// Keys from hex encodings separated by commas or white space.
    pub fn from_hex_list(list: &str) -> Result<Self> {
        Self::new(
            list.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(PublicKey::from_hex)
                .collect::<Result<Vec<_>>>()?,
        )
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true: a set holds at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys' ids, in order.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| id.as_str())
    }
}

impl From<PublicKey> for KeySet {
    fn from(key: PublicKey) -> Self {
        Self { keys: vec![(key.key_id(), key)] }
    }
}

impl VerifyingKeys for KeySet {
    fn find(&self, key_id: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|(id, _)| id == key_id).map(|(_, k)| k)
    }

    fn only(&self) -> Option<&PublicKey> {
        match self.keys.as_slice() {
            [(_, k)] => Some(k),
            _ => None,
        }
    }
}

/// Assembles and signs an artifact.
#[derive(Clone, Debug)]
pub struct ArtifactBuilder {
    manifest: Manifest,
    tensors: BTreeMap<String, (Vec<usize>, TensorData)>,
}

impl ArtifactBuilder {
    /// Starts an artifact of `kind` with `dims` embedding dimensions.
    pub fn new(kind: ModelKind, dims: usize) -> Self {
        let created_at = DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default();
        Self {
            manifest: Manifest {
                format_version: FORMAT_VERSION,
                requires: match kind {
                    ModelKind::Mf => vec!["dot-product".into()],
                    ModelKind::ItemItem => vec!["item-item".into()],
                    _ => Vec::new(),
                },
                kind,
                model_id: String::new(),
                created_at,
                key_id: String::new(),
                dims,
                items: IdList::default(),
                users: IdList::default(),
                categories: Vec::new(),
                training: TrainingWindow::default(),
                metrics: BTreeMap::new(),
                params: BTreeMap::new(),
            },
            tensors: BTreeMap::new(),
        }
    }

    /// Mutable access to the manifest (ids, window, metrics, params).
    pub fn manifest_mut(&mut self) -> &mut Manifest {
        &mut self.manifest
    }

    /// Sets the item ids (tensor row order).
    pub fn items(&mut self, items: Vec<String>) -> &mut Self {
        self.manifest.items = items.iter().collect();
        self
    }

    /// Sets the pseudonymous user ids (tensor row order).
    pub fn users(&mut self, users: Vec<String>) -> &mut Self {
        self.manifest.users = users.iter().collect();
        self
    }

    /// Sets the popularity score of every item.
    pub fn popularity(&mut self, scores: Vec<f32>) -> &mut Self {
        let n = scores.len();
        self.tensor("item_popularity", vec![n], TensorData::F32(scores))
    }

    /// Sets item categories (`categories[item_category[i]]`) and prices (NaN unknown).
    pub fn catalogue(&mut self, categories: Vec<String>, item_category: Vec<u32>, item_price: Vec<f32>) -> &mut Self {
        self.manifest.categories = categories;
        let n = item_category.len();
        self.tensor("item_category", vec![n], TensorData::U32(item_category));
        let n = item_price.len();
        self.tensor("item_price", vec![n], TensorData::F32(item_price))
    }

    /// Sets the items each user owns (excluded from recommendations).
    pub fn seen(&mut self, per_user: &[Vec<u32>]) -> &mut Self {
        self.user_lists("user_seen", per_user)
    }

    /// Sets the factor matrices of a matrix factorisation model (row major).
    pub fn factors(&mut self, user_factors: Vec<f32>, item_factors: Vec<f32>) -> &mut Self {
        let d = self.manifest.dims.max(1);
        let (u, i) = (user_factors.len() / d, item_factors.len() / d);
        self.tensor("user_factors", vec![u, self.manifest.dims], TensorData::F32(user_factors));
        self.tensor("item_factors", vec![i, self.manifest.dims], TensorData::F32(item_factors))
    }

    /// Sets the factor matrices of a matrix factorisation model (row major),
    /// stored at 8 bits (feature `factors-i8`, see the module docs): each
    /// matrix is quantised with [`quantize_factors`]. Fails if a factor is
    /// not finite.
    pub fn factors_8bit(&mut self, user_factors: &[f32], item_factors: &[f32]) -> Result<&mut Self> {
        let d = self.manifest.dims;
        for (name, v) in [("user", user_factors), ("item", item_factors)] {
            let (scale, q) = quantize_factors(v)
                .ok_or_else(|| Error::Tensors(format!("{name}_factors: a factor is not finite or too large")))?;
            self.tensor(&format!("{name}_factors"), vec![v.len() / d.max(1), d], TensorData::I8(q));
            self.tensor(&format!("{name}_factor_scale"), vec![1], TensorData::F32(vec![scale]));
        }
        if !self.manifest.requires.iter().any(|r| r == FACTORS_I8) {
            self.manifest.requires.push(FACTORS_I8.into());
        }
        Ok(self)
    }

    /// Sets the sparse item-item weights (kind `itemitem`): for each item, its
    /// neighbours and their weights, in the order scoring sums them.
    pub fn neighbours(&mut self, per_item: &[Vec<(u32, f32)>]) -> &mut Self {
        let mut offsets = Vec::with_capacity(per_item.len() + 1);
        let (mut items, mut weights) = (Vec::new(), Vec::new());
        offsets.push(0u32);
        for row in per_item {
            for &(j, w) in row {
                items.push(j);
                weights.push(w);
            }
            offsets.push(items.len() as u32);
        }
        let n = offsets.len();
        self.tensor("item_neighbour_offsets", vec![n], TensorData::U32(offsets));
        let n = items.len();
        self.tensor("item_neighbour_items", vec![n], TensorData::U32(items));
        self.tensor("item_neighbour_weights", vec![n], TensorData::F32(weights))
    }

    /// Sets the per-item score offset of an item-item model.
    pub fn item_bias(&mut self, bias: Vec<f32>) -> &mut Self {
        let n = bias.len();
        self.tensor("item_bias", vec![n], TensorData::F32(bias))
    }

    /// Sets the items each user engaged with (the history item-item models score from).
    pub fn history(&mut self, per_user: &[Vec<u32>]) -> &mut Self {
        self.user_lists("user_history", per_user)
    }

    /// Stores per-user item lists as CSR tensors `<prefix>_offsets` and
    /// `<prefix>_items` (each list sorted, without repeats).
    fn user_lists(&mut self, prefix: &str, per_user: &[Vec<u32>]) -> &mut Self {
        let mut offsets = Vec::with_capacity(per_user.len() + 1);
        let mut items = Vec::new();
        offsets.push(0u32);
        for list in per_user {
            let mut l = list.clone();
            l.sort_unstable();
            l.dedup();
            items.extend(l);
            offsets.push(items.len() as u32);
        }
        let n = offsets.len();
        self.tensor(&format!("{prefix}_offsets"), vec![n], TensorData::U32(offsets));
        let n = items.len();
        self.tensor(&format!("{prefix}_items"), vec![n], TensorData::U32(items))
    }

    /// Adds any tensor.
    pub fn tensor(&mut self, name: &str, shape: Vec<usize>, data: TensorData) -> &mut Self {
        self.tensors.insert(name.to_owned(), (shape, data));
        self
    }

    /// Serialises and signs the artifact. Refuses an id that appears twice
    /// in the item or the user list ([`Error::Manifest`]).
    pub fn sign(&self, key: &SigningKey) -> Result<Vec<u8>> {
        for (name, list) in [("item", &self.manifest.items), ("user", &self.manifest.users)] {
            let mut seen = std::collections::HashSet::with_capacity(list.len());
            if let Some(id) = list.iter().find(|id| !seen.insert(*id)) {
                return Err(Error::Manifest(format!("duplicate {name} id {id}")));
            }
        }
        let mut manifest = self.manifest.clone();
        manifest.key_id = key.public_key().key_id();
        let mut tensors = self.tensors.clone();
        let n = manifest.items.len();
        if !(manifest.items.is_empty() && manifest.users.is_empty()) {
            for (name, list) in [("item", &mut manifest.items), ("user", &mut manifest.users)] {
                let IdList { text, ends } = std::mem::take(list);
                tensors.insert(format!("{name}_ids"), (vec![text.len()], TensorData::U8(text.into_bytes())));
                tensors.insert(format!("{name}_id_ends"), (vec![ends.len()], TensorData::U32(ends)));
            }
            if !manifest.requires.iter().any(|r| r == ID_TENSORS) {
                manifest.requires.push(ID_TENSORS.into());
            }
        }
        tensors.entry("item_popularity".into()).or_insert_with(|| (vec![n], TensorData::F32(vec![0.0; n])));
        let raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> =
            tensors.iter().map(|(k, (shape, d))| (k.clone(), d.dtype(), shape.clone(), d.to_le_bytes())).collect();
        let views = raw
            .iter()
            .map(|(k, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| Error::Tensors(format!("{k}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let tensor_bytes = safetensors::serialize(views, None).map_err(|e| Error::Tensors(e.to_string()))?;
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| Error::Manifest(e.to_string()))?;
        assemble(&manifest_bytes, &tensor_bytes, key)
    }
}

/// Assembles and signs an artifact from already serialised sections: the
/// manifest JSON and the safetensors bytes. For tools that produce the
/// sections themselves and for fuzzing the readers behind the signature;
/// [`ArtifactBuilder::sign`] is the usual way.
pub fn assemble(manifest_json: &[u8], tensors: &[u8], key: &SigningKey) -> Result<Vec<u8>> {
    let manifest_len =
        u32::try_from(manifest_json.len()).map_err(|_| Error::Manifest("manifest exceeds 4 GiB".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + manifest_json.len() + tensors.len() + SIGNATURE_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&manifest_len.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(manifest_json);
    out.extend_from_slice(tensors);
    let signature = key.0.sign(&signed_message(FORMAT_VERSION, &out));
    out.extend_from_slice(&signature.to_bytes());
    Ok(out)
}

/// The same model under a new id and creation time, signed again with
/// `key`: how a deliberate rollback is published (the edge refuses a model
/// created before the newest it has served, so an old artifact cannot simply
/// be pointed at again). The manifest keeps every other field and records
/// the old id in `params.reissued_from`.
pub fn reissue(
    bytes: &[u8],
    keys: &(impl VerifyingKeys + ?Sized),
    key: &SigningKey,
    model_id: &str,
    created_at: DateTime<Utc>,
) -> Result<Vec<u8>> {
    let old = verify(bytes, keys)?;
    let (m_end, t_end) = section_ends(bytes)?;
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&bytes[HEADER_LEN..m_end]).map_err(|e| Error::Manifest(e.to_string()))?;
    let fields = manifest.as_object_mut().ok_or_else(|| Error::Manifest("the manifest is not an object".into()))?;
    fields.insert("format_version".into(), FORMAT_VERSION.into());
    fields.insert("model_id".into(), model_id.into());
    fields.insert("created_at".into(), serde_json::to_value(created_at).map_err(|e| Error::Manifest(e.to_string()))?);
    fields.insert("key_id".into(), key.public_key().key_id().into());
    let params = fields.entry("params").or_insert_with(|| serde_json::json!({}));
    if let Some(params) = params.as_object_mut() {
        params.insert("reissued_from".into(), old.model_id.into());
    }
    let json = serde_json::to_vec(&manifest).map_err(|e| Error::Manifest(e.to_string()))?;
    assemble(&json, &bytes[m_end..t_end], key)
}

/// What the signature of a `version` artifact signs, given its bytes before the signature.
fn signed_message(version: u32, body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match version {
        1 => std::borrow::Cow::Borrowed(body),
        _ => {
            let mut m = Vec::with_capacity(DIGEST_DOMAIN_V2.len() + 32);
            m.extend_from_slice(DIGEST_DOMAIN_V2);
            m.extend_from_slice(blake3::hash(body).as_bytes());
            std::borrow::Cow::Owned(m)
        }
    }
}

/// Quantises factors to 8 bits for [`ArtifactBuilder::factors_8bit`]: the
/// scale is the smallest power of two `s` with every `|x| / s ≤ 127`, and
/// `q = round(x / s)`. The factors a reader scores with are then exactly
/// `s · q`, and quantising those again gives the same `s` and `q`. `None`
/// if a value is not finite or so large (above 2¹²⁰) that `127 · s` would
/// not be; all zeros get scale 1.
///
/// ```
/// use knowedge_format::artifact::{dequantize_factors, quantize_factors};
///
/// let (scale, q) = quantize_factors(&[0.5, -0.25, 0.125, 0.0]).unwrap();
/// assert_eq!(scale, 1.0 / 128.0);
/// assert_eq!(q, vec![64, -32, 16, 0]);
/// let back = dequantize_factors(scale, &q);
/// assert_eq!(quantize_factors(&back), Some((scale, q)));
/// ```
pub fn quantize_factors(v: &[f32]) -> Option<(f32, Vec<i8>)> {
    if v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return Some((1.0, vec![0; v.len()]));
    }
    // The smallest power of two at least max / 127 (in f32's range, subnormals included).
    let wanted = f64::from(max) / 127.0;
    let mut e = (wanted.log2().ceil() as i32).clamp(-149, 127);
    while e > -149 && 2f64.powi(e - 1) >= wanted {
        e -= 1;
    }
    while e < 127 && 2f64.powi(e) < wanted {
        e += 1;
    }
    let scale = 2f64.powi(e) as f32;
    if !(scale * 127.0).is_finite() {
        return None;
    }
    let q = v.iter().map(|x| (f64::from(*x) / f64::from(scale)).round().clamp(-127.0, 127.0) as i8).collect();
    Some((scale, q))
}

/// The `f32` values of factors quantised by [`quantize_factors`]: `scale · q`.
pub fn dequantize_factors(scale: f32, q: &[i8]) -> Vec<f32> {
    q.iter().map(|&x| scale * f32::from(x)).collect()
}

/// A verified artifact: its manifest and its tensors.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The manifest.
    pub manifest: Manifest,
    /// Tensors by name, with their shapes.
    pub tensors: BTreeMap<String, (Vec<usize>, TensorData)>,
}

impl Artifact {
    /// Reads and verifies an artifact.
    ///
    /// Refuses with [`Error::NotAnArtifact`], [`Error::UnsupportedVersion`],
    /// [`Error::Malformed`], [`Error::BadSignature`],
    /// [`Error::UnsupportedFeature`], [`Error::Manifest`] or [`Error::Tensors`].
    pub fn read(bytes: &[u8], key: &(impl VerifyingKeys + ?Sized)) -> Result<Self> {
        let manifest = verify(bytes, key)?;
        let (m_end, t_end) = section_ends(bytes)?;
        let st = SafeTensors::deserialize(&bytes[m_end..t_end]).map_err(|e| Error::Tensors(e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let data = view.data();
            let values = match view.dtype() {
                Dtype::F32 => TensorData::F32(le_values(data, f32::from_le_bytes)),
                Dtype::U32 => TensorData::U32(le_values(data, u32::from_le_bytes)),
                // Block copies (a byte loop is not one in WebAssembly).
                Dtype::I8 => TensorData::I8(bytemuck::cast_slice(data).to_vec()),
                Dtype::U8 => TensorData::U8(data.to_vec()),
                other => return Err(Error::Tensors(format!("{name}: unsupported dtype {other:?}"))),
            };
            tensors.insert(name, (view.shape().to_vec(), values));
        }
        let mut a = Self { manifest, tensors };
        if a.requires(ID_TENSORS) {
            if !(a.manifest.items.is_empty() && a.manifest.users.is_empty()) {
                return Err(Error::Manifest("ids both in the manifest and in tensors".into()));
            }
            a.manifest.items = a.take_ids("item")?;
            a.manifest.users = a.take_ids("user")?;
        }
        Ok(a)
    }

    /// Takes an F32 tensor, checking its shape.
    pub fn take_f32(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        match self.tensors.remove(name) {
            Some((s, TensorData::F32(v))) if s == shape => Ok(v),
            Some((s, _)) => Err(Error::Tensors(format!("{name}: expected F32 {shape:?}, found shape {s:?}"))),
            None => Err(Error::Tensors(format!("{name}: missing"))),
        }
    }

    /// Takes an I8 tensor, checking its shape.
    pub fn take_i8(&mut self, name: &str, shape: &[usize]) -> Result<Vec<i8>> {
        match self.tensors.remove(name) {
            Some((s, TensorData::I8(v))) if s == shape => Ok(v),
            Some((s, _)) => Err(Error::Tensors(format!("{name}: expected I8 {shape:?}, found shape {s:?}"))),
            None => Err(Error::Tensors(format!("{name}: missing"))),
        }
    }

    /// Takes the id tensors of `list` (`item` or `user`), checking them.
    fn take_ids(&mut self, list: &str) -> Result<IdList> {
        let bytes = match self.tensors.remove(&format!("{list}_ids")) {
            Some((s, TensorData::U8(v))) if s.len() == 1 => v,
            Some(_) => return Err(Error::Tensors(format!("{list}_ids: expected U8 [bytes]"))),
            None => return Err(Error::Tensors(format!("{list}_ids: missing"))),
        };
        let ends = self.take_u32(&format!("{list}_id_ends"), None)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Tensors(format!("{list}_ids: not UTF-8")))?;
        let mut last = 0;
        for &end in &ends {
            if end < last || !text.is_char_boundary(end as usize) {
                return Err(Error::Tensors(format!("{list}_id_ends: {end} does not end an id")));
            }
            last = end;
        }
        if last as usize != text.len() {
            return Err(Error::Tensors(format!("{list}_id_ends: the ids end at {last}, the text at {}", text.len())));
        }
        Ok(IdList { text, ends })
    }

    /// Whether the manifest requires `feature`.
    pub fn requires(&self, feature: &str) -> bool {
        self.manifest.requires.iter().any(|r| r == feature)
    }

    /// Takes a U32 tensor, checking its shape (`None` in `shape` = any length).
    pub fn take_u32(&mut self, name: &str, len: Option<usize>) -> Result<Vec<u32>> {
        match self.tensors.remove(name) {
            Some((s, TensorData::U32(v))) if s.len() == 1 && len.is_none_or(|n| s[0] == n) => Ok(v),
            Some((s, _)) => Err(Error::Tensors(format!("{name}: expected U32 [{len:?}], found shape {s:?}"))),
            None => Err(Error::Tensors(format!("{name}: missing"))),
        }
    }
}

/// The little-endian 4-byte values of `data` (whose length the tensor
/// parser has checked): a block copy on little-endian targets, which every
/// target of the project is; `from_le` one by one elsewhere.
fn le_values<T: bytemuck::Pod>(data: &[u8], from_le: fn([u8; 4]) -> T) -> Vec<T> {
    const { assert!(size_of::<T>() == 4) };
    if cfg!(target_endian = "little") && data.len().is_multiple_of(4) {
        let mut values = vec![T::zeroed(); data.len() / 4];
        bytemuck::cast_slice_mut::<T, u8>(&mut values).copy_from_slice(data);
        values
    } else {
        data.chunks_exact(4).map(|c| from_le([c[0], c[1], c[2], c[3]])).collect()
    }
}

fn section_ends(bytes: &[u8]) -> Result<(usize, usize)> {
    let manifest_len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
    let tensor_len =
        u64::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19], bytes[20], bytes[21], bytes[22], bytes[23]]);
    let m_end =
        HEADER_LEN.checked_add(manifest_len).ok_or_else(|| Error::Malformed("manifest length overflows".into()))?;
    let t_end = usize::try_from(tensor_len)
        .ok()
        .and_then(|t| m_end.checked_add(t))
        .ok_or_else(|| Error::Malformed("tensor length overflows".into()))?;
    if t_end.checked_add(SIGNATURE_LEN) != Some(bytes.len()) {
        return Err(Error::Malformed(format!(
            "header announces {} bytes, file has {}",
            t_end.saturating_add(SIGNATURE_LEN),
            bytes.len()
        )));
    }
    Ok((m_end, t_end))
}

/// Checks header, version, lengths, signature and requirements; returns the manifest.
///
/// With several accepted keys ([`KeySet`]), the key the manifest names by
/// `key_id` verifies; an artifact naming none of them is refused with
/// [`Error::Key`].
pub fn verify(bytes: &[u8], keys: &(impl VerifyingKeys + ?Sized)) -> Result<Manifest> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(Error::NotAnArtifact);
    }
    if bytes.len() < HEADER_LEN + SIGNATURE_LEN {
        return Err(Error::Malformed(format!("{} bytes is shorter than any artifact", bytes.len())));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if !READABLE_VERSIONS.contains(&version) {
        return Err(Error::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
    }
    let (m_end, t_end) = section_ends(bytes)?;
    let sig_bytes: [u8; SIGNATURE_LEN] =
        bytes[t_end..].try_into().map_err(|_| Error::Malformed("signature length".into()))?;
    let signature = ed25519_dalek::Signature::from_bytes(&sig_bytes);
    let key = match keys.only() {
        Some(key) => key,
        None => {
            /// The one manifest field needed to choose a key (the rest is skipped).
            #[derive(Deserialize)]
            struct KeyId {
                key_id: String,
            }
            let named: KeyId =
                serde_json::from_slice(&bytes[HEADER_LEN..m_end]).map_err(|e| Error::Manifest(e.to_string()))?;
            keys.find(&named.key_id).ok_or_else(|| {
                Error::Key(format!("the artifact is signed by key {}, which is not accepted here", named.key_id))
            })?
        }
    };
    key.0.verify(&signed_message(version, &bytes[..t_end]), &signature).map_err(|_| Error::BadSignature)?;

    let manifest: Manifest =
        serde_json::from_slice(&bytes[HEADER_LEN..m_end]).map_err(|e| Error::Manifest(e.to_string()))?;
    if manifest.format_version != version {
        return Err(Error::Manifest(format!(
            "manifest says format version {}, header says {version}",
            manifest.format_version
        )));
    }
    let unknown: Vec<String> =
        manifest.requires.iter().filter(|r| !SUPPORTED_FEATURES.contains(&r.as_str())).cloned().collect();
    if !unknown.is_empty() {
        return Err(Error::UnsupportedFeature(unknown));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &SigningKey) -> Vec<u8> {
        let mut b = ArtifactBuilder::new(ModelKind::Mf, 2);
        b.items(vec!["a".into(), "b".into(), "c".into()]).users(vec!["u".into()]);
        b.popularity(vec![3.0, 2.0, 1.0]);
        b.factors(vec![1.0, 0.0], vec![0.1, 0.0, 0.9, 0.0, 0.5, 0.0]);
        b.seen(&[vec![1]]);
        b.manifest_mut().model_id = "m1".into();
        b.sign(key).unwrap()
    }

    #[test]
    fn writers_refuse_repeated_ids() {
        let key = SigningKey::from_seed([9; 32]);
        for (items, users, what) in
            [(vec!["a", "b", "a"], vec!["u"], "item id a"), (vec!["a"], vec!["u", "u"], "user id u")]
        {
            let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
            b.items(items.into_iter().map(String::from).collect()).users(users.into_iter().map(String::from).collect());
            let e = b.sign(&key).unwrap_err().to_string();
            assert!(e.contains(&format!("duplicate {what}")), "{e}");
        }
    }

    #[test]
    fn factors_quantise_to_a_power_of_two_scale_and_back() {
        let mut state = 7u64;
        for spread in [1e-30f32, 1e-3, 0.4, 1.0, 127.0, 3e5, 1e35] {
            let v: Vec<f32> = (0..999)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * spread
                })
                .collect();
            let (scale, q) = quantize_factors(&v).unwrap();
            assert_eq!(scale.to_bits() & 0x007f_ffff, 0, "{scale} is a power of two");
            let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
            assert!(max / scale <= 127.0 && max / scale > 63.0, "{spread}: {max} / {scale}");
            for (x, &i) in v.iter().zip(&q) {
                assert!(i != i8::MIN);
                assert!((f64::from(*x) - f64::from(scale) * f64::from(i)).abs() <= f64::from(scale) / 2.0);
            }
            let back = dequantize_factors(scale, &q);
            assert_eq!(quantize_factors(&back), Some((scale, q)), "{spread}");
        }
        assert_eq!(quantize_factors(&[0.0; 3]), Some((1.0, vec![0; 3])));
        assert_eq!(quantize_factors(&[]), Some((1.0, vec![])));
        assert_eq!(quantize_factors(&[1.0, f32::NAN]), None);
        assert_eq!(quantize_factors(&[f32::INFINITY]), None);
        assert_eq!(quantize_factors(&[1.0, -f32::MAX]), None);
    }

    #[test]
    fn id_lists_read_escapes_and_refuse_what_is_not_a_string() {
        let ids: IdList = serde_json::from_str(r#"["a\"b", "\u4e2d\u6587", "", "line\nbreak", "课程"]"#).unwrap();
        assert_eq!(ids.iter().collect::<Vec<_>>(), ["a\"b", "中文", "", "line\nbreak", "课程"]);
        assert_eq!((ids.get(2), ids.get(5)), (Some(""), None));
        let back: IdList = serde_json::from_str(&serde_json::to_string(&ids).unwrap()).unwrap();
        assert_eq!(back, ids);
        for bad in [r#"["a", 1]"#, r#"["a", null]"#, r#"{"a": 1}"#, r#""a""#, r#"["a""#] {
            assert!(serde_json::from_str::<IdList>(bad).is_err(), "{bad}");
        }
        assert!(IdList::default().is_empty());
    }

    #[test]
    fn ids_travel_as_tensors_and_are_checked() {
        let key = SigningKey::from_seed([1; 32]);
        let bytes = sample(&key);
        let (m_end, t_end) = section_ends(&bytes).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&bytes[HEADER_LEN..m_end]).unwrap();
        assert_eq!(manifest["items"], serde_json::json!([]));
        assert!(manifest["requires"].as_array().unwrap().contains(&"id-tensors".into()));
        let a = Artifact::read(&bytes, &key.public_key()).unwrap();
        assert_eq!(a.manifest.items.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(a.manifest.users.iter().collect::<Vec<_>>(), ["u"]);
        assert!(!a.tensors.contains_key("item_ids") && !a.tensors.contains_key("user_id_ends"));

        // Ids in the manifest, as older writers put them, are still read.
        let mut old = manifest.clone();
        old["items"] = serde_json::json!(["a", "b", "c"]);
        old["users"] = serde_json::json!(["u"]);
        old["requires"] = serde_json::json!(["dot-product"]);
        let old = assemble(&serde_json::to_vec(&old).unwrap(), &bytes[m_end..t_end], &key).unwrap();
        let o = Artifact::read(&old, &key.public_key()).unwrap();
        assert_eq!((o.manifest.items, o.manifest.users), (a.manifest.items.clone(), a.manifest.users.clone()));

        // Both at once, or broken id tensors, are refused.
        let mut both = manifest.clone();
        both["items"] = serde_json::json!(["a", "b", "c"]);
        let both = assemble(&serde_json::to_vec(&both).unwrap(), &bytes[m_end..t_end], &key).unwrap();
        assert!(Artifact::read(&both, &key.public_key()).unwrap_err().to_string().contains("both"));
        let with_ids = |text: Vec<u8>, ends: Vec<u32>| {
            let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
            b.tensor("item_ids", vec![text.len()], TensorData::U8(text));
            b.tensor("item_id_ends", vec![ends.len()], TensorData::U32(ends));
            b.tensor("user_ids", vec![0], TensorData::U8(Vec::new()));
            b.tensor("user_id_ends", vec![0], TensorData::U32(Vec::new()));
            b.manifest_mut().requires.push(ID_TENSORS.into());
            let bytes = b.sign(&key).unwrap();
            Artifact::read(&bytes, &key.public_key()).map(|a| a.manifest.items).map_err(|e| e.to_string())
        };
        let good = with_ids("ab课c".into(), vec![1, 5, 6]).unwrap();
        assert_eq!(good.iter().collect::<Vec<_>>(), ["a", "b课", "c"]);
        assert_eq!(with_ids(Vec::new(), Vec::new()).unwrap().len(), 0);
        for (text, ends, why) in [
            (vec![b'a', 0xff], vec![1, 2], "not UTF-8"),
            ("abc".into(), vec![2, 1, 3], "does not end an id"),
            ("a课".into(), vec![1, 2, 4], "does not end an id"),
            ("abc".into(), vec![1, 2], "the ids end at 2"),
            ("abc".into(), vec![1, 9], "does not end an id"),
        ] {
            let e = with_ids(text, ends).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn round_trip() {
        let key = SigningKey::from_seed([1; 32]);
        let bytes = sample(&key);
        let mut a = Artifact::read(&bytes, &key.public_key()).unwrap();
        assert_eq!(a.manifest.model_id, "m1");
        assert_eq!(a.manifest.key_id, key.public_key().key_id());
        assert_eq!(a.take_f32("item_factors", &[3, 2]).unwrap()[2], 0.9);
        assert_eq!(a.take_u32("user_seen_items", None).unwrap(), vec![1]);
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let key = SigningKey::from_seed([1; 32]);
        let bytes = sample(&key);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let err = Artifact::read(&bad, &key.public_key()).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::NotAnArtifact | Error::UnsupportedVersion { .. } | Error::Malformed(_) | Error::BadSignature
                ),
                "byte {i}: {err:?}"
            );
        }
    }

    #[test]
    fn wrong_key_version_and_truncation_are_refused() {
        let key = SigningKey::from_seed([1; 32]);
        let other = SigningKey::from_seed([2; 32]);
        let bytes = sample(&key);
        assert_eq!(Artifact::read(&bytes, &other.public_key()).unwrap_err(), Error::BadSignature);
        let mut v3 = bytes.clone();
        v3[8..12].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(
            Artifact::read(&v3, &key.public_key()).unwrap_err(),
            Error::UnsupportedVersion { found: 3, supported: 2 }
        );
        assert!(matches!(Artifact::read(&bytes[..bytes.len() - 1], &key.public_key()), Err(Error::Malformed(_))));
        assert_eq!(Artifact::read(b"hello", &key.public_key()).unwrap_err(), Error::NotAnArtifact);
    }

    /// The same model written as version 1 (signature over the bytes themselves).
    fn as_version_1(bytes: &[u8], key: &SigningKey) -> Vec<u8> {
        let (m_end, t_end) = section_ends(bytes).unwrap();
        let manifest = String::from_utf8(bytes[HEADER_LEN..m_end].to_vec()).unwrap();
        let manifest = manifest.replace("\"format_version\":2", "\"format_version\":1");
        let mut out = bytes[..HEADER_LEN].to_vec();
        out[8..12].copy_from_slice(&1u32.to_le_bytes());
        out[12..16].copy_from_slice(&(manifest.len() as u32).to_le_bytes());
        out.extend_from_slice(manifest.as_bytes());
        out.extend_from_slice(&bytes[m_end..t_end]);
        let signature = key.0.sign(&out);
        out.extend_from_slice(&signature.to_bytes());
        out
    }

    #[test]
    fn version_1_artifacts_are_still_read() {
        let key = SigningKey::from_seed([1; 32]);
        let v1 = as_version_1(&sample(&key), &key);
        let mut a = Artifact::read(&v1, &key.public_key()).unwrap();
        assert_eq!(a.manifest.format_version, 1);
        assert_eq!(a.take_f32("item_factors", &[3, 2]).unwrap()[2], 0.9);
        // A version 1 signature does not pass as version 2, nor the other way round.
        let mut relabelled = v1.clone();
        relabelled[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(Artifact::read(&relabelled, &key.public_key()).unwrap_err(), Error::BadSignature);
        let mut v2 = sample(&key);
        v2[8..12].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(Artifact::read(&v2, &key.public_key()).unwrap_err(), Error::BadSignature);
    }

    #[test]
    fn the_manifest_version_must_match_the_header() {
        let key = SigningKey::from_seed([1; 32]);
        let bytes = sample(&key);
        let (m_end, t_end) = section_ends(&bytes).unwrap();
        let manifest = String::from_utf8(bytes[HEADER_LEN..m_end].to_vec()).unwrap();
        let claims_1 = manifest.replace("\"format_version\":2", "\"format_version\":1");
        assert_ne!(manifest, claims_1);
        let bad = assemble(claims_1.as_bytes(), &bytes[m_end..t_end], &key).unwrap();
        match Artifact::read(&bad, &key.public_key()) {
            Err(Error::Manifest(m)) => assert!(m.contains("header says 2"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_requirements_are_refused() {
        let key = SigningKey::from_seed([1; 32]);
        let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
        b.items(vec!["a".into()]);
        b.manifest_mut().requires.push("quantised-int4".into());
        let bytes = b.sign(&key).unwrap();
        assert_eq!(
            Artifact::read(&bytes, &key.public_key()).unwrap_err(),
            Error::UnsupportedFeature(vec!["quantised-int4".into()])
        );
    }
    #[test]
    fn key_sets_verify_with_the_key_the_manifest_names() {
        let (old, new, other) =
            (SigningKey::from_seed([1; 32]), SigningKey::from_seed([2; 32]), SigningKey::from_seed([3; 32]));
        let set = KeySet::new([old.public_key(), new.public_key()]).unwrap();
        for key in [&old, &new] {
            assert_eq!(Artifact::read(&sample(key), &set).unwrap().manifest.key_id, key.public_key().key_id());
        }
        let e = verify(&sample(&other), &set).unwrap_err();
        assert!(matches!(&e, Error::Key(m) if m.contains(&other.public_key().key_id())), "{e}");
        // A manifest naming an accepted key but signed by another fails the signature.
        let forged = assemble_with_key_id(&other, &old.public_key().key_id());
        assert_eq!(verify(&forged, &set).unwrap_err(), Error::BadSignature);
    }

    fn assemble_with_key_id(key: &SigningKey, key_id: &str) -> Vec<u8> {
        let bytes = sample(key);
        let a = Artifact::read(&bytes, &key.public_key()).unwrap();
        let mut m = a.manifest.clone();
        m.key_id = key_id.to_owned();
        let (m_end, t_end) = section_ends(&bytes).unwrap();
        assemble(&serde_json::to_vec(&m).unwrap(), &bytes[m_end..t_end], key).unwrap()
    }

    #[test]
    fn reissued_artifacts_carry_the_new_id_and_time_and_the_same_tensors() {
        let key = SigningKey::from_seed([4; 32]);
        let old = sample(&key);
        let at = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let new = reissue(&old, &key.public_key(), &key, "m1-rollback", at).unwrap();
        let (a, b) =
            (Artifact::read(&old, &key.public_key()).unwrap(), Artifact::read(&new, &key.public_key()).unwrap());
        assert_eq!((b.manifest.model_id.as_str(), b.manifest.created_at), ("m1-rollback", at));
        assert_eq!(b.manifest.params["reissued_from"], "m1");
        assert_eq!(a.tensors.keys().collect::<Vec<_>>(), b.tensors.keys().collect::<Vec<_>>());
        assert_eq!(a.manifest.items, b.manifest.items);
        // Only a verified artifact is reissued.
        let other = SigningKey::from_seed([5; 32]);
        assert_eq!(reissue(&old, &other.public_key(), &other, "x", at).unwrap_err(), Error::BadSignature);
    }
}
