//! The audit log: append-only, hash-chained records of who did what to the
//! lake and its models.
//!
//! One small JSON object per record, `audit/<seq, 12 digits>.json`, so a
//! listing gives the order. A record holds `seq` (1, 2, …), `at`, `action`
//! ([`AuditAction`]), `key_name` (who acted: an API key's configured name, a
//! function's name or `cli`), `details` (a JSON object), `prev` (the
//! `digest` of the record before it; [`GENESIS`] for the first) and its own
//! `digest`: the hex SHA-256 of `knowedge-audit-v1\n` followed by the
//! record's canonical JSON without `digest` (keys sorted, no spaces; see
//! [`AuditRecord::canonical_bytes`]).
//!
//! **Appending** ([`Lake::audit_append`]) reads the last record and creates
//! the next one only if no object has that name yet (`PutMode::Create`, a
//! conditional put on S3); when another appender got there first it reads
//! again and retries, so concurrent appenders produce one gap-free chain.
//!
//! Each append lists `audit/` to find the last record, so its cost grows
//! with the log (fine for admin actions, promotions and erasures; not meant
//! for per-event use). An unreadable last record stops appends with an
//! error until the log is looked at (`knowedge audit verify`).
//!
//! **Records never hold a learner's raw id or pseudonym**: an erasure must be
//! able to remove every copy of a pseudonym from the lake, and the audit log
//! is never rewritten. `details` reference job ids, model versions, routes;
//! [`Lake::audit_append`] refuses details with a key such as `user_id`, a
//! string of 64 hex digits (the shape of a pseudonym) or personal data that
//! [`knowedge_format::redact`] finds.
//!
//! **Verifying** ([`Lake::audit_verify`]) walks the chain and reports the
//! first broken record: a changed record (its digest no longer matches, or
//! it was rewritten with a fresh digest, which breaks the next `prev`), a
//! record whose bytes differ from what was written, a removed record (a gap in the names, or a chain that does not link), a
//! reordered or renamed record (its `seq` differs from its name, or a name
//! that is not a record name), an unreadable one. What a chain cannot show
//! by itself is a removed *tail*: deleting the last records leaves a shorter
//! valid chain. Keep the head (`seq` and `digest`, printed by
//! `knowedge audit verify`) somewhere the lake's writers cannot change, and
//! verify with [`AuditExpectation`] (`--expect-at-least N`,
//! `--expect-digest HEX`). Anyone who can write the lake can also rewrite
//! the whole chain from some record on; the same kept head detects that.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Error, Lake, Result};

/// The folder of the audit log in the lake.
pub const AUDIT_DIR: &str = "audit";

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain separation of record digests.
const DOMAIN: &[u8] = b"knowedge-audit-v1\n";

/// How often an append retries after losing a race for the next name.
const MAX_ATTEMPTS: usize = 1_000;

/// Detail keys a record may not have: they would name a learner.
const PERSONAL_KEYS: [&str; 6] = ["user_id", "anonymous_id", "session_id", "pseudonym", "email", "phone"];

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditAction {
    /// A learner's data was erased.
    Erasure,
    /// A learner's data was exported.
    Export,
    /// Data past its retention period was removed.
    Retention,
    /// A request was authorised with an `admin` API key.
    AdminKeyUse,
    /// A model became current on a channel.
    ModelPromotion,
    /// An A/B experiment was changed.
    ExperimentChange,
}

impl AuditAction {
    /// The name stored in records.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Erasure => "erasure",
            AuditAction::Export => "export",
            AuditAction::Retention => "retention",
            AuditAction::AdminKeyUse => "admin_key_use",
            AuditAction::ModelPromotion => "model_promotion",
            AuditAction::ExperimentChange => "experiment_change",
        }
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When it was appended.
    pub at: DateTime<Utc>,
    /// What was done (an [`AuditAction`] name; readers accept any).
    pub action: String,
    /// Who did it: a key's configured name, a function's name or `cli`.
    pub key_name: String,
    /// What it was done to (a JSON object; no learner ids).
    pub details: Value,
    /// The digest of the record before ([`GENESIS`] for the first).
    pub prev: String,
    /// This record's digest (see [`AuditRecord::canonical_bytes`]).
    pub digest: String,
}

impl AuditRecord {
    /// What the digest covers: the record's fields but `digest` as canonical
    /// JSON (object keys sorted, no spaces).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let body = serde_json::json!({
            "seq": self.seq,
            "at": self.at,
            "action": self.action,
            "key_name": self.key_name,
            "details": self.details,
            "prev": self.prev,
        });
        knowedge_format::deadletter::canonical_text(&body).into_bytes()
    }

    /// The record's object as written: its JSON and a newline.
    pub fn stored_bytes(&self) -> Result<Vec<u8>> {
        let mut out = serde_json::to_vec(self)?;
        out.push(b'\n');
        Ok(out)
    }

    /// The digest the record should carry.
    pub fn compute_digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(self.canonical_bytes());
        hex::encode(h.finalize())
    }
}

/// The name of the record `seq` relative to the lake.
pub fn record_name(seq: u64) -> String {
    format!("{AUDIT_DIR}/{seq:012}.json")
}

/// What a verification should find beyond an intact chain (an anchor kept
/// outside the lake, to detect a removed tail).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditExpectation {
    /// At least this many records.
    pub at_least: Option<u64>,
    /// A record with this digest (a head seen earlier).
    pub digest: Option<String>,
}

/// The first thing wrong with the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditProblem {
    /// The record concerned (the sequence number expected at that place).
    pub seq: u64,
    /// Its object path, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A stable name: `unexpected_object`, `missing`, `unreadable`,
    /// `seq_mismatch`, `digest_mismatch`, `broken_chain`, `truncated`,
    /// `digest_not_found`.
    pub kind: &'static str,
    /// A sentence for people.
    pub message: String,
}

/// What [`Lake::audit_verify`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Records that verified, from the first (up to the first problem).
    pub records: u64,
    /// The last verified record's sequence number (0 for none).
    pub head_seq: u64,
    /// The last verified record's digest ([`GENESIS`] for none).
    pub head_digest: String,
    /// The first problem, if any.
    pub problem: Option<AuditProblem>,
}

impl AuditReport {
    /// Whether the log is intact (and meets the expectation).
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Why details may not be recorded, if they may not.
fn check_details(details: &Value) -> std::result::Result<(), String> {
    fn walk(v: &Value, at: &str) -> std::result::Result<(), String> {
        match v {
            Value::String(s) => {
                if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("{at} looks like a pseudonym (64 hex digits)"));
                }
                if knowedge_format::redact::contains_personal_data(s) {
                    return Err(format!("{at} holds personal data"));
                }
                Ok(())
            }
            Value::Array(a) => a.iter().try_for_each(|x| walk(x, at)),
            Value::Object(o) => o.iter().try_for_each(|(k, x)| {
                if PERSONAL_KEYS.contains(&k.as_str()) || knowedge_format::redact::contains_personal_data(k) {
                    return Err(format!("details may not have a key `{}`", k.chars().take(32).collect::<String>()));
                }
                walk(x, k)
            }),
            _ => Ok(()),
        }
    }
    if !details.is_object() {
        return Err("details must be a JSON object".into());
    }
    walk(details, "details")
}

impl Lake {
    /// Appends a record to the audit log (see the module docs) and returns
    /// it once it is durable. Refuses details that could name a learner and
    /// an empty `key_name`.
    pub async fn audit_append(&self, action: AuditAction, key_name: &str, details: Value) -> Result<AuditRecord> {
        check_details(&details).map_err(|reason| Error::Audit { reason })?;
        if key_name.trim().is_empty() || key_name.len() > 128 {
            return Err(Error::Audit { reason: "key_name must be 1-128 bytes".into() });
        }
        for _ in 0..MAX_ATTEMPTS {
            let (seq, prev) = match self.audit_head().await? {
                Some(h) => (h.seq + 1, h.digest),
                None => (1, GENESIS.to_owned()),
            };
            let mut record = AuditRecord {
                seq,
                at: Utc::now(),
                action: action.as_str().to_owned(),
                key_name: key_name.to_owned(),
                details: details.clone(),
                prev,
                digest: String::new(),
            };
            record.digest = record.compute_digest();
            let body = record.stored_bytes()?;
            let opts = PutOptions::from(PutMode::Create);
            match self.store().put_opts(&self.path(&record_name(seq)), PutPayload::from(body), opts).await {
                Ok(_) => return Ok(record),
                Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Audit { reason: format!("no free record name after {MAX_ATTEMPTS} attempts") })
    }

    /// The last record of the audit log by name, if any (read as stored, not verified).
    async fn audit_head(&self) -> Result<Option<AuditRecord>> {
        let mut names = self.audit_objects().await?;
        names.retain(|(seq, _)| seq.is_some());
        let Some((_, last)) = names.pop() else { return Ok(None) };
        let bytes = self.store().get(&last).await?.bytes().await?;
        let record: AuditRecord = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            path: last.to_string(),
            reason: format!("the last audit record is not readable ({e}); verify the log"),
        })?;
        Ok(Some(record))
    }

    /// Every object under `audit/`, sorted by name, with the sequence
    /// number its name gives (`None` for a name that is not a record name).
    async fn audit_objects(&self) -> Result<Vec<(Option<u64>, object_store::path::Path)>> {
        let objects: Vec<_> = self.store().list(Some(&self.path(AUDIT_DIR))).try_collect().await?;
        let mut out: Vec<_> = objects
            .into_iter()
            .map(|o| {
                let name = o.location.filename().unwrap_or_default();
                let seq = name
                    .strip_suffix(".json")
                    .filter(|n| n.len() == 12 && n.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|n| n.parse::<u64>().ok());
                (seq, o.location)
            })
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    /// Every readable record, in order (unreadable objects are skipped with
    /// a warning; [`Lake::audit_verify`] says whether the log is intact).
    pub async fn audit_records(&self) -> Result<Vec<AuditRecord>> {
        let mut out = Vec::new();
        for (seq, path) in self.audit_objects().await? {
            if seq.is_none() {
                self.skip(&path, &"not an audit record name");
                continue;
            }
            let bytes = self.store().get(&path).await?.bytes().await?;
            match serde_json::from_slice::<AuditRecord>(&bytes) {
                Ok(r) => out.push(r),
                Err(e) => self.skip(&path, &e),
            }
        }
        Ok(out)
    }

    /// Verifies the audit log (see the module docs for what is detected).
    pub async fn audit_verify(&self, expect: &AuditExpectation) -> Result<AuditReport> {
        let mut report = AuditReport { records: 0, head_seq: 0, head_digest: GENESIS.to_owned(), problem: None };
        let mut seen_digest = false;
        let problem = |seq: u64, path: Option<String>, kind: &'static str, message: String| AuditProblem {
            seq,
            path,
            kind,
            message,
        };
        for (seq, path) in self.audit_objects().await? {
            let expected = report.head_seq + 1;
            let shown = Some(path.to_string());
            let Some(seq) = seq else {
                report.problem = Some(problem(
                    expected,
                    shown,
                    "unexpected_object",
                    "an object under audit/ whose name is not a record name (renamed or added)".into(),
                ));
                return Ok(report);
            };
            if seq != expected {
                report.problem = Some(problem(
                    expected,
                    shown,
                    "missing",
                    format!("record {expected} is missing: the next record is named {seq}"),
                ));
                return Ok(report);
            }
            let bytes = self.store().get(&path).await?.bytes().await?;
            let record: AuditRecord = match serde_json::from_slice(&bytes) {
                Ok(r) => r,
                Err(e) => {
                    report.problem = Some(problem(expected, shown, "unreadable", format!("not an audit record: {e}")));
                    return Ok(report);
                }
            };
            if record.stored_bytes()? != bytes {
                report.problem = Some(problem(
                    expected,
                    shown,
                    "digest_mismatch",
                    "the record's bytes are not as they were written (changed)".into(),
                ));
                return Ok(report);
            }
            if record.seq != seq {
                report.problem = Some(problem(
                    expected,
                    shown,
                    "seq_mismatch",
                    format!("the record named {seq} says it is record {} (moved or reordered)", record.seq),
                ));
                return Ok(report);
            }
            if record.compute_digest() != record.digest {
                report.problem = Some(problem(
                    expected,
                    shown,
                    "digest_mismatch",
                    "the record's content does not match its digest (changed)".into(),
                ));
                return Ok(report);
            }
            if record.prev != report.head_digest {
                report.problem = Some(problem(
                    expected,
                    shown,
                    "broken_chain",
                    format!(
                        "prev does not name record {}'s digest (a record before it was changed or replaced)",
                        seq - 1
                    ),
                ));
                return Ok(report);
            }
            seen_digest |= expect.digest.as_deref() == Some(record.digest.as_str());
            report.records += 1;
            report.head_seq = seq;
            report.head_digest = record.digest;
        }
        if let Some(n) = expect.at_least
            && report.records < n
        {
            report.problem = Some(problem(
                report.head_seq + 1,
                None,
                "truncated",
                format!("{} records; at least {n} were expected (records at the end were removed)", report.records),
            ));
        } else if let Some(d) = &expect.digest
            && !seen_digest
        {
            report.problem = Some(problem(
                report.head_seq + 1,
                None,
                "digest_not_found",
                format!("no record has the expected digest {}", d.chars().take(64).collect::<String>()),
            ));
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn lake() -> (tempfile::TempDir, Lake) {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        (dir, lake)
    }

    async fn filled(n: u64) -> (tempfile::TempDir, Lake) {
        let (dir, lake) = lake();
        for i in 0..n {
            let r = lake.audit_append(AuditAction::ModelPromotion, "train", json!({"version": format!("v{i}")})).await;
            assert_eq!(r.unwrap().seq, i + 1);
        }
        (dir, lake)
    }

    fn file(dir: &tempfile::TempDir, seq: u64) -> std::path::PathBuf {
        dir.path().join(record_name(seq))
    }

    async fn first_problem(lake: &Lake) -> AuditProblem {
        let r = lake.audit_verify(&AuditExpectation::default()).await.unwrap();
        assert!(!r.is_intact());
        r.problem.unwrap()
    }

    #[tokio::test]
    async fn many_appends_verify() {
        let (dir, lake) = filled(40).await;
        let r = lake.audit_verify(&AuditExpectation::default()).await.unwrap();
        assert_eq!((r.records, r.head_seq, r.problem.clone()), (40, 40, None));
        assert!(dir.path().join("audit/000000000040.json").is_file());
        let records = lake.audit_records().await.unwrap();
        assert_eq!(records.len(), 40);
        assert_eq!(records[0].prev, GENESIS);
        assert_eq!(records[39].digest, r.head_digest);
        assert!(records.windows(2).all(|w| w[1].prev == w[0].digest));
        assert_eq!(records[7].details, json!({"version": "v7"}));
        let ok = AuditExpectation { at_least: Some(40), digest: Some(records[20].digest.clone()) };
        assert!(lake.audit_verify(&ok).await.unwrap().is_intact());
    }

    #[tokio::test]
    async fn a_changed_byte_anywhere_is_detected() {
        for seq in [1, 2, 7, 12] {
            let (dir, lake) = filled(12).await;
            let kept = lake.audit_verify(&AuditExpectation::default()).await.unwrap().head_digest;
            let path = file(&dir, seq);
            let text = std::fs::read_to_string(&path).unwrap();
            // Change a detail, the key name, the time, the prev: each is caught.
            for (from, to) in [
                (format!("v{}", seq - 1), "vX".to_owned()),
                ("\"train\"".into(), "\"trane\"".into()),
                ("T".into(), "t".into()),
            ] {
                std::fs::write(&path, text.replacen(&from, &to, 1)).unwrap();
                let p = first_problem(&lake).await;
                assert_eq!(p.seq, seq, "{from}");
                assert!(["digest_mismatch", "unreadable"].contains(&p.kind), "{p:?}");
            }
            // Any single byte flipped, at several positions.
            let bytes = text.as_bytes();
            for pos in [0, 1, bytes.len() / 4, bytes.len() / 2, 3 * bytes.len() / 4, bytes.len() - 2, bytes.len() - 1] {
                let mut changed = bytes.to_vec();
                changed[pos] ^= 0x01;
                std::fs::write(&path, &changed).unwrap();
                let p = first_problem(&lake).await;
                assert_eq!(p.seq, seq, "byte {pos}");
            }
            std::fs::write(&path, &text).unwrap();
            assert!(lake.audit_verify(&AuditExpectation::default()).await.unwrap().is_intact());
            // Rewritten with a fresh, valid digest: the next record's prev breaks.
            let mut r: AuditRecord = serde_json::from_str(&text).unwrap();
            r.key_name = "someone-else".into();
            r.digest = r.compute_digest();
            std::fs::write(&path, [serde_json::to_vec(&r).unwrap(), b"\n".to_vec()].concat()).unwrap();
            if seq < 12 {
                let p = first_problem(&lake).await;
                assert_eq!((p.seq, p.kind), (seq + 1, "broken_chain"));
            } else {
                // The last record: only a kept head shows it.
                assert!(lake.audit_verify(&AuditExpectation::default()).await.unwrap().is_intact());
                let p = lake.audit_verify(&AuditExpectation { at_least: None, digest: Some(kept) }).await.unwrap();
                assert_eq!(p.problem.unwrap().kind, "digest_not_found");
            }
        }
    }

    #[tokio::test]
    async fn removed_swapped_renamed_and_truncated_are_detected() {
        let (dir, lake) = filled(6).await;
        let head = lake.audit_verify(&AuditExpectation::default()).await.unwrap();
        // Removed in the middle: a gap.
        let saved = std::fs::read(file(&dir, 3)).unwrap();
        std::fs::remove_file(file(&dir, 3)).unwrap();
        let p = first_problem(&lake).await;
        assert_eq!((p.seq, p.kind), (3, "missing"));
        // Renamed to close the gap: the names say 3, the record says 4.
        std::fs::rename(file(&dir, 4), file(&dir, 3)).unwrap();
        assert_eq!(first_problem(&lake).await.kind, "seq_mismatch");
        std::fs::rename(file(&dir, 3), file(&dir, 4)).unwrap();
        std::fs::write(file(&dir, 3), &saved).unwrap();
        assert!(lake.audit_verify(&AuditExpectation::default()).await.unwrap().is_intact());
        // Two records swapped.
        let (a, b) = (std::fs::read(file(&dir, 2)).unwrap(), std::fs::read(file(&dir, 5)).unwrap());
        std::fs::write(file(&dir, 2), &b).unwrap();
        std::fs::write(file(&dir, 5), &a).unwrap();
        let p = first_problem(&lake).await;
        assert_eq!((p.seq, p.kind), (2, "seq_mismatch"));
        std::fs::write(file(&dir, 2), &a).unwrap();
        std::fs::write(file(&dir, 5), &b).unwrap();
        // A stray object among the records.
        std::fs::write(dir.path().join("audit/000000000003.json.bak"), &saved).unwrap();
        assert_eq!(first_problem(&lake).await.kind, "unexpected_object");
        std::fs::remove_file(dir.path().join("audit/000000000003.json.bak")).unwrap();
        // The tail removed: a valid shorter chain, caught only with a kept head.
        std::fs::remove_file(file(&dir, 6)).unwrap();
        std::fs::remove_file(file(&dir, 5)).unwrap();
        assert!(lake.audit_verify(&AuditExpectation::default()).await.unwrap().is_intact());
        let by_count = lake.audit_verify(&AuditExpectation { at_least: Some(6), digest: None }).await.unwrap();
        assert_eq!(by_count.problem.unwrap().kind, "truncated");
        let by_head = AuditExpectation { at_least: None, digest: Some(head.head_digest) };
        assert_eq!(lake.audit_verify(&by_head).await.unwrap().problem.unwrap().kind, "digest_not_found");
        // Appending continues the (shorter) chain.
        assert_eq!(lake.audit_append(AuditAction::Export, "cli", json!({"job": "j-1"})).await.unwrap().seq, 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appenders_make_one_gap_free_chain() {
        let (_dir, lake) = lake();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let lake = lake.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    lake.audit_append(AuditAction::AdminKeyUse, &format!("key-{t}"), json!({"n": i})).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let r = lake.audit_verify(&AuditExpectation { at_least: Some(80), digest: None }).await.unwrap();
        assert_eq!((r.records, r.problem), (80, None));
        let records = lake.audit_records().await.unwrap();
        for t in 0..8 {
            let mine: Vec<i64> = records
                .iter()
                .filter(|r| r.key_name == format!("key-{t}"))
                .map(|r| r.details["n"].as_i64().unwrap())
                .collect();
            assert_eq!(mine, (0..10).collect::<Vec<_>>(), "each appender's records in its order");
        }
    }

    #[tokio::test]
    async fn details_that_could_name_a_learner_are_refused() {
        let (dir, lake) = lake();
        let pseudonym = "ab".repeat(32);
        for details in [
            json!("not an object"),
            json!({"user_id": "x"}),
            json!({"target": pseudonym}),
            json!({"who": ["13812345678"]}),
            json!({"nested": {"mail": "a@b.cn"}}),
        ] {
            let e = lake.audit_append(AuditAction::Erasure, "cli", details.clone()).await.unwrap_err();
            assert!(matches!(e, Error::Audit { .. }), "{details}");
        }
        assert!(lake.audit_append(AuditAction::Erasure, "", json!({})).await.is_err());
        assert!(!dir.path().join(AUDIT_DIR).exists());
        let ok = lake.audit_append(AuditAction::Erasure, "cli", json!({"job": "erase-20261203-1", "rows": 4})).await;
        assert_eq!(ok.unwrap().seq, 1);
    }
}
