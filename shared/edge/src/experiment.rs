//! A/B experiments at the edge: which model answers which learner, and the
//! exposure record that lets a later report attribute clicks and purchases
//! to variants.
//!
//! An experiment is configuration (JSON, for instance the edge's
//! `KNOWEDGE_EXPERIMENT` variable):
//!
//! ```json
//! {"name": "ranker-2026-11",
//!  "variants": [{"name": "control", "weight": 50, "model": "current"},
//!               {"name": "ease", "weight": 50, "model": "20261128T0900Z-ease"}]}
//! ```
//!
//! Each variant names a model: `current` (whatever the store's `current`
//! pointer names) or a published version. A learner's variant is fixed by
//! hashing the experiment name and the learner's pseudonym:
//! `v = u64::from_be_bytes(SHA-256(name ‖ 0x00 ‖ pseudonym)[..8]) mod Σ weights`,
//! and the variant whose cumulative weight range holds `v`. The same learner
//! gets the same variant on every edge node, every adapter and every
//! request, without any state; changing the weights or the name reshuffles.
//!
//! Every recommendation answer then carries a `recommendation_id`, the
//! `experiment` and the `variant`, and the edge logs one [`Exposure`] line
//! (JSON on standard output: Spin's and Cloudflare's log pipelines collect
//! it). Frontends send the `recommendation_id` back with the clicks and
//! purchases it led to (the event schema has `recommendation_id`,
//! `experiment` and `variant` fields), so a report joins events to exposures
//! by `recommendation_id` and counts per variant.
//!
//! ```
//! use knowedge_edge::experiment::Experiment;
//!
//! let e = Experiment::from_json(r#"{"name": "t", "variants": [
//!     {"name": "a", "weight": 1, "model": "current"},
//!     {"name": "b", "weight": 1, "model": "v2"}]}"#).unwrap();
//! let v = e.assign("some-pseudonym");
//! assert_eq!(v.name, e.assign("some-pseudonym").name);
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The model name meaning "the store's `current` pointer".
pub const CURRENT: &str = "current";
/// Most variants in one experiment.
pub const MAX_VARIANTS: usize = 16;

/// A running experiment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Experiment name (1-64 characters: letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Its variants, in order.
    pub variants: Vec<Variant>,
}

/// One arm of an experiment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Variant name (same rule as experiment names).
    pub name: String,
    /// Relative share of learners (0 switches the variant off).
    pub weight: u32,
    /// The model that answers its learners: [`CURRENT`] or a version.
    #[serde(default = "current")]
    pub model: String,
}

fn current() -> String {
    CURRENT.to_owned()
}

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl Experiment {
    /// Parses and checks an experiment: valid names, distinct variant
    /// names, 1 to [`MAX_VARIANTS`] variants, a positive total weight.
    pub fn from_json(text: &str) -> Result<Self> {
        let e: Experiment = serde_json::from_str(text).map_err(|e| Error::Experiment(e.to_string()))?;
        e.check()?;
        Ok(e)
    }

    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Experiment(m));
        if !valid_name(&self.name) {
            return bad(format!("experiment name `{}` must be 1-64 letters, digits, `-`, `_` or `.`", self.name));
        }
        if self.variants.is_empty() || self.variants.len() > MAX_VARIANTS {
            return bad(format!("an experiment has 1 to {MAX_VARIANTS} variants"));
        }
        for (i, v) in self.variants.iter().enumerate() {
            if !valid_name(&v.name) {
                return bad(format!("variant name `{}` must be 1-64 letters, digits, `-`, `_` or `.`", v.name));
            }
            if self.variants[..i].iter().any(|w| w.name == v.name) {
                return bad(format!("variant `{}` is listed twice", v.name));
            }
            if !knowedge_format::store::is_valid_version(&v.model) {
                return bad(format!("variant `{}`: model `{}` is not a version name", v.name, v.model));
            }
        }
        if self.variants.iter().map(|v| u64::from(v.weight)).sum::<u64>() == 0 {
            return bad("the variants' weights sum to 0".into());
        }
        Ok(())
    }

    /// The variant of the learner with this pseudonym (see the module docs).
    pub fn assign(&self, pseudonym: &str) -> &Variant {
        let total: u64 = self.variants.iter().map(|v| u64::from(v.weight)).sum();
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update([0u8]);
        h.update(pseudonym.as_bytes());
        let digest = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let mut point = u64::from_be_bytes(first) % total.max(1);
        for v in &self.variants {
            if point < u64::from(v.weight) {
                return v;
            }
            point -= u64::from(v.weight);
        }
        // Unreachable with a checked experiment (total > 0); the last variant otherwise.
        &self.variants[self.variants.len() - 1]
    }
}

/// What one recommendation answer showed (the format's record; the edge
/// logs it as a [`knowedge_format::exposure::LogLine`]).
pub use knowedge_format::exposure::Exposure;

#[cfg(test)]
mod tests {
    use super::*;

    fn two(weights: (u32, u32)) -> Experiment {
        Experiment {
            name: "ranker".into(),
            variants: vec![
                Variant { name: "a".into(), weight: weights.0, model: CURRENT.into() },
                Variant { name: "b".into(), weight: weights.1, model: "v2".into() },
            ],
        }
    }

    #[test]
    fn assignment_is_deterministic_and_follows_weights() {
        let e = two((1, 3));
        let mut b = 0;
        for u in 0..4000 {
            let p = format!("user-{u}");
            let v = e.assign(&p);
            assert_eq!(v, e.assign(&p));
            b += usize::from(v.name == "b");
        }
        // 3/4 of learners, within sampling error.
        assert!((2850..3150).contains(&b), "{b}");
        assert!((0..100).all(|u| two((0, 1)).assign(&format!("u{u}")).name == "b"));
        // Another experiment name reshuffles learners independently.
        let mut other = two((1, 1));
        let same = (0..1000)
            .filter(|u| {
                let p = format!("u{u}");
                let first = two((1, 1)).assign(&p).name.clone();
                other.name = "other".into();
                other.assign(&p).name == first
            })
            .count();
        assert!((400..600).contains(&same), "{same}");
    }

    #[test]
    fn bad_experiments_are_refused() {
        for text in [
            "",
            "{}",
            r#"{"name": "x", "variants": []}"#,
            r#"{"name": "", "variants": [{"name": "a", "weight": 1}]}"#,
            r#"{"name": "x y", "variants": [{"name": "a", "weight": 1}]}"#,
            r#"{"name": "x", "variants": [{"name": "a", "weight": 0}]}"#,
            r#"{"name": "x", "variants": [{"name": "a", "weight": 1}, {"name": "a", "weight": 1}]}"#,
            r#"{"name": "x", "variants": [{"name": "a", "weight": 1, "model": "../etc/passwd"}]}"#,
            r#"{"name": "x", "variants": [{"name": "a", "weight": 1, "colour": "red"}]}"#,
        ] {
            assert!(Experiment::from_json(text).is_err(), "{text}");
        }
        let e = Experiment::from_json(r#"{"name": "x", "variants": [{"name": "a", "weight": 1}]}"#).unwrap();
        assert_eq!(e.variants[0].model, CURRENT);
    }
}
