//! Exposures: what the edge showed a learner, one record per
//! recommendation answer, on its way to the lake's `exposures` table.
//!
//! The edge logs each answer's exposure ([`LogLine`], one JSON line) and its
//! adapter sends them to ingestion in batches ([`ExposureBatch`],
//! `POST /v1/exposures`), off the answer's path. Ingestion checks each
//! record with [`Exposure::check`]: the learner is a pseudonym (the edge
//! pseudonymises with the lake's key, so a raw id never travels), ids are
//! short and printable, at most [`MAX_ITEMS`] items, and the time is neither
//! in the future nor older than [`MAX_AGE_DAYS`].
//!
//! ```
//! use knowedge_format::exposure::{ExposureBatch, Exposure};
//!
//! let batch = ExposureBatch::decode(br#"{"version": 1, "exposures": [
//!     {"recommendation_id": "r-1", "ts": "2026-12-01T10:00:00Z", "user": "",
//!      "model_id": "m-1", "items": ["course-a", "course-b"]}]}"#).unwrap();
//! let now = "2026-12-01T10:00:01Z".parse().unwrap();
//! assert!(batch.exposures[0].check(now).is_ok());
//! ```

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::event::MAX_ID_CHARS;
use crate::{Error, Result};

/// The version of [`ExposureBatch`] this crate writes and reads.
pub const BATCH_VERSION: u32 = 1;

/// Most exposures in one batch.
pub const MAX_BATCH_EXPOSURES: usize = 500;

/// Most bytes in one batch body.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// Most items one exposure may list (the edge answers at most 100).
pub const MAX_ITEMS: usize = 100;

/// Oldest exposure ingestion takes, in days.
pub const MAX_AGE_DAYS: i64 = 30;

/// How far in the future an exposure's time may be (clock skew).
const MAX_SKEW_MINUTES: i64 = 5;

/// One recommendation answer as shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    /// The answer's id, echoed by the events it leads to.
    pub recommendation_id: String,
    /// When the edge answered (absent in log lines of adapters without a clock;
    /// the sender sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<DateTime<Utc>>,
    /// The learner's pseudonym (64 hex digits), empty for an anonymous answer.
    pub user: String,
    /// The model that answered.
    pub model_id: String,
    /// Experiment name (absent without an experiment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// Variant name (absent without an experiment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The items shown, best first: an item's position is its index + 1.
    pub items: Vec<String>,
}

/// The edge's log line of an exposure: `{"log": "exposure", …}` (the
/// exposure's fields after `log`, which tells these lines apart in a mixed log).
#[derive(Clone, Copy, Debug)]
pub struct LogLine;

#[derive(Serialize)]
struct LineOut<'a> {
    log: &'static str,
    recommendation_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<DateTime<Utc>>,
    user: &'a str,
    model_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    experiment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    items: &'a [String],
}

#[derive(Deserialize)]
struct LineIn {
    log: String,
    recommendation_id: String,
    #[serde(default)]
    ts: Option<DateTime<Utc>>,
    user: String,
    model_id: String,
    #[serde(default)]
    experiment: Option<String>,
    #[serde(default)]
    variant: Option<String>,
    items: Vec<String>,
}

impl LogLine {
    /// The line of `exposure`, as JSON text.
    pub fn to_json(e: &Exposure) -> String {
        let line = LineOut {
            log: "exposure",
            recommendation_id: &e.recommendation_id,
            ts: e.ts,
            user: &e.user,
            model_id: &e.model_id,
            experiment: e.experiment.as_deref(),
            variant: e.variant.as_deref(),
            items: &e.items,
        };
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// The exposure in a log line, if it is one.
    pub fn parse(line: &str) -> Option<Exposure> {
        let l: LineIn = serde_json::from_str(line).ok()?;
        (l.log == "exposure").then_some(Exposure {
            recommendation_id: l.recommendation_id,
            ts: l.ts,
            user: l.user,
            model_id: l.model_id,
            experiment: l.experiment,
            variant: l.variant,
            items: l.items,
        })
    }
}

/// What an edge sends to ingestion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExposureBatch {
    /// [`BATCH_VERSION`]; a reader refuses others.
    pub version: u32,
    /// The exposures, at most [`MAX_BATCH_EXPOSURES`].
    pub exposures: Vec<Exposure>,
}

impl ExposureBatch {
    /// A batch of this crate's version.
    pub fn new(exposures: Vec<Exposure>) -> Self {
        ExposureBatch { version: BATCH_VERSION, exposures }
    }

    /// Decodes a batch body.
    ///
    /// # Errors
    /// [`Error::Batch`] over [`MAX_BATCH_BYTES`] or when it is not a batch,
    /// [`Error::BatchVersion`] for another version, [`Error::TooManyExposures`]
    /// over [`MAX_BATCH_EXPOSURES`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_BATCH_BYTES {
            return Err(Error::Batch(format!("{} bytes; at most {MAX_BATCH_BYTES}", bytes.len())));
        }
        #[derive(Deserialize)]
        struct Head {
            version: u32,
        }
        let head: Head = serde_json::from_slice(bytes).map_err(|e| Error::Batch(e.to_string()))?;
        if head.version != BATCH_VERSION {
            return Err(Error::BatchVersion { found: head.version, supported: BATCH_VERSION });
        }
        let batch: ExposureBatch = serde_json::from_slice(bytes).map_err(|e| Error::Batch(e.to_string()))?;
        if batch.exposures.len() > MAX_BATCH_EXPOSURES {
            return Err(Error::TooManyExposures(batch.exposures.len()));
        }
        Ok(batch)
    }
}

/// Whether `s` is a pseudonym as [`crate::pseudonym::Pseudonymizer`] makes them.
pub fn is_pseudonym(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn short_id(field: &str, value: &str) -> std::result::Result<(), String> {
    if value.is_empty() || value.chars().count() > MAX_ID_CHARS {
        return Err(format!("`{field}` must have 1-{MAX_ID_CHARS} characters"));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("`{field}` holds spaces or control characters"));
    }
    Ok(())
}

impl Exposure {
    /// Checks the record as of `now`.
    ///
    /// # Errors
    /// A sentence naming the first field that does not hold.
    pub fn check(&self, now: DateTime<Utc>) -> std::result::Result<(), String> {
        short_id("recommendation_id", &self.recommendation_id)?;
        short_id("model_id", &self.model_id)?;
        if !self.user.is_empty() && !is_pseudonym(&self.user) {
            return Err("`user` must be a pseudonym (64 hex digits) or empty; raw ids are refused".into());
        }
        match (&self.experiment, &self.variant) {
            (Some(e), Some(v)) => {
                short_id("experiment", e)?;
                short_id("variant", v)?;
            }
            (None, None) => {}
            _ => return Err("`experiment` and `variant` come together".into()),
        }
        if self.items.len() > MAX_ITEMS {
            return Err(format!("{} items; at most {MAX_ITEMS}", self.items.len()));
        }
        for item in &self.items {
            short_id("items", item)?;
        }
        let Some(ts) = self.ts else {
            return Err("`ts` is missing".into());
        };
        if ts > now + TimeDelta::minutes(MAX_SKEW_MINUTES) {
            return Err("`ts` is in the future".into());
        }
        if ts < now - TimeDelta::days(MAX_AGE_DAYS) {
            return Err(format!("`ts` is more than {MAX_AGE_DAYS} days old"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Exposure {
        Exposure {
            recommendation_id: "r-1.kabc".into(),
            ts: Some("2026-12-01T10:00:00Z".parse().unwrap()),
            user: "ab".repeat(32),
            model_id: "m-1".into(),
            experiment: Some("ranker".into()),
            variant: Some("b".into()),
            items: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn log_lines_round_trip_and_other_lines_are_not_exposures() {
        let e = sample();
        let line = LogLine::to_json(&e);
        assert!(line.starts_with(r#"{"log":"exposure","#), "{line}");
        assert_eq!(LogLine::parse(&line), Some(e));
        assert_eq!(LogLine::parse(r#"{"log": "request", "recommendation_id": "r"}"#), None);
        assert_eq!(LogLine::parse("plain text"), None);
    }

    #[test]
    fn checks_refuse_raw_ids_and_bad_fields() {
        let now = "2026-12-01T10:00:10Z".parse().unwrap();
        assert!(sample().check(now).is_ok());
        let bad = |f: &dyn Fn(&mut Exposure)| {
            let mut e = sample();
            f(&mut e);
            e.check(now).unwrap_err()
        };
        assert!(bad(&|e| e.user = "alice@example.com".into()).contains("pseudonym"));
        assert!(bad(&|e| e.recommendation_id = String::new()).contains("recommendation_id"));
        assert!(bad(&|e| e.items = vec!["x".into(); 101]).contains("101 items"));
        assert!(bad(&|e| e.variant = None).contains("together"));
        assert!(bad(&|e| e.ts = Some("2026-12-02T10:00:00Z".parse().unwrap())).contains("future"));
        assert!(bad(&|e| e.ts = None).contains("missing"));
        let mut anonymous = sample();
        anonymous.user = String::new();
        assert!(anonymous.check(now).is_ok());
    }

    #[test]
    fn batches_carry_a_version_and_a_limit() {
        let body = serde_json::to_vec(&ExposureBatch::new(vec![sample()])).unwrap();
        assert_eq!(ExposureBatch::decode(&body).unwrap().exposures.len(), 1);
        assert!(matches!(
            ExposureBatch::decode(br#"{"version": 2, "exposures": []}"#),
            Err(Error::BatchVersion { found: 2, .. })
        ));
        let many = serde_json::to_vec(&ExposureBatch::new(vec![sample(); MAX_BATCH_EXPOSURES + 1])).unwrap();
        assert!(matches!(ExposureBatch::decode(&many), Err(Error::TooManyExposures(_))));
        assert!(ExposureBatch::decode(b"[]").is_err());
    }
}
