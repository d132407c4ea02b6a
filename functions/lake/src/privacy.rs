//! The privacy-law operations of the lake: erasure of one learner (GDPR
//! Art. 17, PIPL Art. 47) and export of what the lake holds about them
//! (GDPR Art. 15, PIPL Art. 45).
//!
//! # Erasure
//!
//! An erasure is a job, identified by a random job id and kept as
//! `privacy/erasures/<job id>.json` while it is unfinished. The record holds
//! the learner's pseudonym (never the raw id) and the job's progress.
//! [`Lake::request_erasure`] writes a pending record; an [`Eraser`] runs it:
//!
//! 1. It lists the objects of the event files (`events/`), the review
//!    sentiment table (`review-sentiment/`), the exposures (`exposures/`) and
//!    the dead letters (`dead-letter/`) once, in that order, and keeps the
//!    list in the record.
//!    Objects written after that (ingestion keeps running) are not scanned;
//!    the receipt says when the list was taken.
//! 2. Object by object: event files lose the learner's rows; review sentiment
//!    rows go when their review event was one of the learner's; exposures go
//!    when they were shown to the learner; dead letters
//!    go when any string in them is the pseudonym (or, with a pseudonymizer,
//!    a raw id whose pseudonym it is). Each changed object is written again
//!    under a name derived from the old one and the job
//!    (`<old stem>.e<job>.<ext>`), durable first; the record is saved every
//!    16 rewritten objects or every second; then the old objects are removed.
//!    A crash before the save redoes those objects (the same new names are
//!    overwritten, so nothing is written twice); a crash after it leaves old
//!    and new side by side, which readers count once (each `event_id` once)
//!    and the next run removes. An object that vanished meanwhile (a
//!    compaction) makes the job list the lake again when its list is done.
//! 3. With a model store: every channel's current model that holds the
//!    learner is published again without them under a new version
//!    ([`knowedge_format::forget::forget_user`], artifact first, then the
//!    pointer), then every other stored version that still holds them is
//!    rewritten in place (same version and model id).
//! 4. A signed receipt (`privacy/receipts/<job id>.json`,
//!    [`knowedge_format::forget::sign_receipt`]) lists per object the rows
//!    removed and per model what was done; it holds the job id and a salted
//!    HMAC of the pseudonym, never the pseudonym. Then the record is removed.
//!
//! Running the job again at any point finishes it ([`Eraser::run`],
//! [`Eraser::erase`] with the same learner). Erasures and compactions of
//! one lake run one at a time (the compaction entry points run pending
//! erasures first); ingestion may run throughout.
//!
//! # Export
//!
//! [`Lake::export_user`] gathers the learner's events (each `event_id` once,
//! earliest received copy), the review sentiment of their reviews, the
//! recommendations shown to them (exposures) and their dead letters into one
//! [`UserExport`] document.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use arrow_array::{Array, StringArray};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use knowedge_format::artifact::SigningKey;
use knowedge_format::event::EventType;
use knowedge_format::forget;
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_format::store::Channel;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::events::{Codec, DeadLetter, StoredEvent, decode_parquet, encode_parquet};
use crate::exposures::{self, StoredExposure};
use crate::sentiment::{self, ReviewSentiment};
use crate::{Error, Lake, ModelStore, Result};

/// Folder of unfinished erasure jobs.
pub const JOBS: &str = "privacy/erasures";
/// Folder of erasure receipts.
pub const RECEIPTS: &str = "privacy/receipts";
/// Rewritten objects between two saves of the job record.
const CHECKPOINT_OBJECTS: usize = 16;

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Requested, not started.
    Pending,
    /// Started (or interrupted: running it again finishes it).
    Running,
    /// Finished: the receipt exists and the record is gone.
    Done,
}

/// One lake object the erasure changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectResult {
    /// The object, relative to the lake.
    pub path: String,
    /// `events`, `review-sentiment` or `dead-letter`.
    pub table: String,
    /// Rows (events, sentiment rows, dead letters) removed from it.
    pub rows_removed: usize,
    /// The object that replaced it (`None`: nothing was left, it was removed).
    pub replaced_by: Option<String>,
}

/// What the erasure did to one stored model version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelResult {
    /// The channel whose current model it was (`None` for other stored versions).
    pub channel: Option<String>,
    /// The version that held the learner.
    pub version: String,
    /// `republished` (a new version, now current) or `rewritten` (the same version, in place).
    pub action: String,
    /// The new version, when republished.
    pub new_version: Option<String>,
}

/// The job record (`privacy/erasures/<job id>.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct JobRecord {
    job_id: String,
    state: JobState,
    pseudonym: String,
    requested_at: DateTime<Utc>,
    #[serde(default)]
    started_at: Option<DateTime<Utc>>,
    /// Objects to examine, relative to the lake, listed at `listed_at`.
    #[serde(default)]
    plan: Vec<String>,
    #[serde(default)]
    listed_at: Option<DateTime<Utc>>,
    /// `plan[..next]` are done.
    #[serde(default)]
    next: usize,
    /// An object of the plan vanished: list again once the plan is done.
    #[serde(default)]
    relist: bool,
    #[serde(default)]
    objects: Vec<ObjectResult>,
    /// The learner's review events removed (their sentiment rows go too).
    #[serde(default)]
    review_events: Vec<String>,
    #[serde(default)]
    models: Vec<ModelResult>,
    #[serde(default)]
    models_done: bool,
}

/// The state of an erasure job, as the admin route answers it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErasureStatus {
    /// The job.
    pub job_id: String,
    /// Pending, running or done.
    pub state: JobState,
    /// Objects examined so far, of `objects_planned` (unfinished jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects_examined: Option<usize>,
    /// Objects listed for the job (unfinished jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects_planned: Option<usize>,
    /// The receipt's body (done jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<serde_json::Value>,
}

/// What a finished erasure did: what an audit record needs. Holds no
/// pseudonym and no raw id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErasureOutcome {
    /// The job.
    pub job_id: String,
    /// The signed receipt, relative to the lake (`privacy/receipts/<job id>.json`).
    pub receipt_path: String,
    /// Objects rewritten or removed.
    pub objects_changed: usize,
    /// Event rows removed (all copies of each event).
    pub events_removed: usize,
    /// Review sentiment rows removed.
    pub review_sentiment_removed: usize,
    /// Exposures (recommendation answers shown to the learner) removed.
    pub exposures_removed: usize,
    /// Dead letters removed.
    pub dead_letters_removed: usize,
    /// Model versions republished or rewritten.
    pub models: Vec<ModelResult>,
    /// When the lake was listed (objects written later were not scanned).
    pub listed_at: Option<DateTime<Utc>>,
}

/// Everything the lake holds about one learner ([`Lake::export_user`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserExport {
    /// `knowedge-export-v1`.
    pub format: &'static str,
    /// When the export was made.
    pub generated_at: DateTime<Utc>,
    /// The learner's pseudonym, as their events carry it.
    pub user_id: String,
    /// Their events, each `event_id` once (earliest received copy), by time then id.
    pub events: Vec<StoredEvent>,
    /// The sentiment rows of their review events (latest scoring of each).
    pub review_sentiment: Vec<ReviewSentiment>,
    /// The recommendation answers shown to them.
    pub exposures: Vec<StoredExposure>,
    /// Their rejected events.
    pub dead_letters: Vec<DeadLetter>,
}

/// What a scheduled maintenance run did ([`Lake::maintain`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MaintenanceReport {
    /// Erasure jobs run (pending or interrupted ones).
    pub erasures: Vec<ErasureOutcome>,
    /// Unfinished erasure jobs left waiting because no eraser (signing key) was given.
    pub erasures_waiting: usize,
    /// The compaction.
    pub compaction: crate::CompactionReport,
}

/// Whether `s` looks like a pseudonym (64 lowercase hex digits).
pub fn is_pseudonym(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `s` is a job id (32 lowercase hex digits).
pub fn is_job_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Lake {
    fn job_path(&self, job_id: &str) -> Path {
        self.path(&format!("{JOBS}/{job_id}.json"))
    }

    fn receipt_rel(job_id: &str) -> String {
        format!("{RECEIPTS}/{job_id}.json")
    }

    async fn get_opt(&self, path: &Path) -> Result<Option<Bytes>> {
        match self.store().get(path).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_opt(&self, path: &Path) -> Result<()> {
        match self.store().delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn load_job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        match self.get_opt(&self.job_path(job_id)).await? {
            Some(b) => Ok(Some(serde_json::from_slice(&b)?)),
            None => Ok(None),
        }
    }

    async fn save_job(&self, job: &JobRecord) -> Result<()> {
        let body = serde_json::to_vec(job)?;
        self.store().put(&self.job_path(&job.job_id), PutPayload::from(body)).await?;
        Ok(())
    }

    /// Records a pending erasure of the learner `pseudonym` (64 hex
    /// digits, see [`knowedge_format::pseudonym`]) and returns its job id.
    /// An unfinished job for the same learner is returned instead of a new one.
    pub async fn request_erasure(&self, pseudonym: &str) -> Result<String> {
        if !is_pseudonym(pseudonym) {
            return Err(Error::Invalid("a learner to erase is named by their pseudonym (64 hex digits)".into()));
        }
        for id in self.erasure_jobs().await? {
            if let Some(job) = self.load_job(&id).await?
                && job.pseudonym == pseudonym
            {
                return Ok(id);
            }
        }
        let job = JobRecord {
            job_id: uuid::Uuid::new_v4().simple().to_string(),
            state: JobState::Pending,
            pseudonym: pseudonym.to_owned(),
            requested_at: Utc::now(),
            started_at: None,
            plan: Vec::new(),
            listed_at: None,
            next: 0,
            relist: false,
            objects: Vec::new(),
            review_events: Vec::new(),
            models: Vec::new(),
            models_done: false,
        };
        self.save_job(&job).await?;
        tracing::info!(job_id = %job.job_id, "erasure requested");
        Ok(job.job_id)
    }

    /// The ids of unfinished erasure jobs (pending or interrupted), oldest request first.
    pub async fn erasure_jobs(&self) -> Result<Vec<String>> {
        let objects: Vec<_> = self.store().list(Some(&self.path(JOBS))).try_collect().await?;
        let mut jobs: Vec<(DateTime<Utc>, String)> = Vec::new();
        for o in objects {
            let Some(id) = o.location.filename().and_then(|f| f.strip_suffix(".json")).filter(|id| is_job_id(id))
            else {
                continue;
            };
            if let Some(job) = self.load_job(id).await? {
                jobs.push((job.requested_at, job.job_id));
            }
        }
        jobs.sort();
        Ok(jobs.into_iter().map(|(_, id)| id).collect())
    }

    /// Where an erasure job stands; `None` for an unknown job.
    pub async fn erasure_status(&self, job_id: &str) -> Result<Option<ErasureStatus>> {
        if !is_job_id(job_id) {
            return Err(Error::Invalid("a job id is 32 hex digits".into()));
        }
        if let Some(envelope) = self.get_opt(&self.path(&Self::receipt_rel(job_id))).await? {
            let v: serde_json::Value = serde_json::from_slice(&envelope)?;
            return Ok(Some(ErasureStatus {
                job_id: job_id.to_owned(),
                state: JobState::Done,
                objects_examined: None,
                objects_planned: None,
                receipt: Some(v["receipt"].clone()),
            }));
        }
        Ok(self.load_job(job_id).await?.map(|job| ErasureStatus {
            job_id: job.job_id,
            state: job.state,
            objects_examined: Some(job.next),
            objects_planned: Some(job.plan.len()),
            receipt: None,
        }))
    }

    /// Removes what killed writes of the job left in a local lake: the
    /// staging files (`<name>#<n>`, never listed) of its record, its receipt
    /// and its rewritten objects. The record's may hold the pseudonym.
    /// Object stores without staging files (S3) have nothing to remove.
    fn remove_staging(&self, job_id: &str) -> Result<()> {
        fn walk(dir: &std::path::Path, keep: &dyn Fn(&str) -> bool) -> std::io::Result<()> {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    walk(&path, keep)?;
                } else if !keep(&entry.file_name().to_string_lossy()) {
                    std::fs::remove_file(&path)?;
                }
            }
            Ok(())
        }
        let Some(root) = self.local_dir() else { return Ok(()) };
        let tag = format!(".e{}.", &job_id[..12]);
        let keep = |name: &str| !(name.contains('#') && (name.starts_with(job_id) || name.contains(&tag)));
        for top in ["events", sentiment::TABLE, exposures::TABLE, "dead-letter", JOBS, RECEIPTS] {
            walk(&root.join(top), &keep).map_err(|e| Error::Erasure {
                job_id: job_id.to_owned(),
                reason: format!("removing staging files under {top}: {e}"),
            })?;
        }
        Ok(())
    }

    /// Every object of the tables an erasure scans, relative to the lake, in scan order.
    async fn erasure_plan(&self) -> Result<Vec<String>> {
        let mut plan = Vec::new();
        for table in ["events", sentiment::TABLE, exposures::TABLE, "dead-letter"] {
            let objects: Vec<_> = self.store().list(Some(&self.path(table))).try_collect().await?;
            let mut rels: Vec<String> =
                objects.iter().filter_map(|o| self.relative(&o.location)).map(|parts| parts.join("/")).collect();
            rels.sort();
            plan.extend(rels);
        }
        Ok(plan)
    }

    /// What every compaction entry point runs (`knowedge lake compact`, the
    /// `knowedge-compact` function): the unfinished erasure jobs first (with
    /// `eraser`; without one they wait and are counted), then compaction
    /// with `options` (retention), so that erasures and compactions never overlap.
    pub async fn maintain(
        &self,
        eraser: Option<&Eraser>,
        options: &crate::CompactOptions,
    ) -> Result<MaintenanceReport> {
        let (erasures, erasures_waiting) = match eraser {
            Some(e) => (e.run_pending().await?, 0),
            None => {
                let waiting = self.erasure_jobs().await?.len();
                if waiting > 0 {
                    tracing::warn!(waiting, "erasure jobs wait: this run has no signing key to sign their receipts");
                }
                (Vec::new(), waiting)
            }
        };
        let compaction = self.compact_with(options).await?;
        Ok(MaintenanceReport { erasures, erasures_waiting, compaction })
    }

    /// Everything the lake holds about the learner `pseudonym` (see the module
    /// docs). With `pseudonymizer`, dead letters that hold the raw id (where
    /// ingestion could not pseudonymise it, say a `user_id` that was not a
    /// string) are found too.
    pub async fn export_user(&self, pseudonym: &str, pseudonymizer: Option<&Pseudonymizer>) -> Result<UserExport> {
        if !is_pseudonym(pseudonym) {
            return Err(Error::Invalid("a learner to export is named by their pseudonym (64 hex digits)".into()));
        }
        let mut by_id: HashMap<String, StoredEvent> = HashMap::new();
        for ((_, t), files) in self.event_files().await? {
            for o in files {
                let bytes = self.store().get(&o.location).await?.bytes().await?;
                if !file_holds_user(&bytes, pseudonym, o.location.as_ref())? {
                    continue;
                }
                for e in decode_parquet(bytes, t, o.location.as_ref())? {
                    if e.event.user_id != pseudonym {
                        continue;
                    }
                    match by_id.get(&e.event.event_id) {
                        Some(prev) if prev.received_at <= e.received_at => {}
                        _ => {
                            by_id.insert(e.event.event_id.clone(), e);
                        }
                    }
                }
            }
        }
        let mut events: Vec<StoredEvent> = by_id.into_values().collect();
        events.sort_by(|a, b| a.event.ts.cmp(&b.event.ts).then_with(|| a.event.event_id.cmp(&b.event.event_id)));
        let reviews: HashSet<&str> = events
            .iter()
            .filter(|e| e.event.event_type == EventType::Review)
            .map(|e| e.event.event_id.as_str())
            .collect();
        let review_sentiment =
            self.read_review_sentiment().await?.into_iter().filter(|r| reviews.contains(r.event_id.as_str())).collect();
        let exposures =
            self.read_exposures().await?.into_iter().filter(|x| x.user_id.as_deref() == Some(pseudonym)).collect();
        let dead_letters = self
            .read_dead_letters()
            .await?
            .into_iter()
            .filter(|d| json_names_user(&serde_json::to_value(d).unwrap_or_default(), pseudonym, pseudonymizer))
            .collect();
        Ok(UserExport {
            format: "knowedge-export-v1",
            generated_at: Utc::now(),
            user_id: pseudonym.to_owned(),
            events,
            review_sentiment,
            exposures,
            dead_letters,
        })
    }
}

/// Whether any string in `v` is the pseudonym, or (with a pseudonymizer) a
/// raw id whose pseudonym it is.
fn json_names_user(v: &serde_json::Value, pseudonym: &str, p: Option<&Pseudonymizer>) -> bool {
    match v {
        serde_json::Value::String(s) => s == pseudonym || p.is_some_and(|p| p.pseudonymize(s) == pseudonym),
        serde_json::Value::Array(a) => a.iter().any(|x| json_names_user(x, pseudonym, p)),
        serde_json::Value::Object(m) => m.iter().any(|(k, x)| {
            k == pseudonym || p.is_some_and(|p| p.pseudonymize(k) == pseudonym) || json_names_user(x, pseudonym, p)
        }),
        _ => false,
    }
}

/// Whether an event file has a row of the user: reads the `user_id` column only.
fn file_holds_user(bytes: &Bytes, pseudonym: &str, path: &str) -> Result<bool> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())?;
    let Some(idx) = builder.parquet_schema().columns().iter().position(|c| c.name() == "user_id") else {
        return Err(Error::Corrupt { path: path.to_owned(), reason: "missing column user_id".into() });
    };
    let mask = ProjectionMask::leaves(builder.parquet_schema(), [idx]);
    for batch in builder.with_projection(mask).build()? {
        let batch = batch?;
        let users = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::Corrupt { path: path.to_owned(), reason: "user_id is not a string column".into() })?;
        if (0..users.len()).any(|i| !users.is_null(i) && users.value(i) == pseudonym) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The name erasure jobs act under in the audit log, unless [`Eraser::with_actor`] says otherwise.
pub const AUDIT_ACTOR: &str = "knowedge-eraser";

/// Runs erasure jobs on a lake (and its model store).
#[derive(Clone, Debug)]
pub struct Eraser {
    lake: Lake,
    models: Option<ModelStore>,
    signing: SigningKey,
    pseudonymizer: Option<Pseudonymizer>,
    /// Who runs the jobs, as the audit log names them.
    actor: String,
    /// Tests: stop as a kill would after this many objects (`true`: after saving the record).
    #[cfg(test)]
    crash: Option<(usize, bool)>,
}

impl Eraser {
    /// An eraser of `lake`; receipts and rewritten models are signed with `signing`.
    pub fn new(lake: Lake, signing: SigningKey) -> Self {
        Self {
            lake,
            models: None,
            signing,
            pseudonymizer: None,
            actor: AUDIT_ACTOR.to_owned(),
            #[cfg(test)]
            crash: None,
        }
    }

    /// Also takes the learner out of the models of this store (its
    /// promotions go to the lake's audit log).
    pub fn with_models(mut self, models: ModelStore) -> Self {
        let audited = models.is_audited();
        self.models = Some(if audited { models } else { models.with_audit(self.lake.clone(), self.actor.clone()) });
        self
    }

    /// Names who runs the jobs in the audit log (default [`AUDIT_ACTOR`]).
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// Also finds dead letters that hold the raw id (see [`Lake::export_user`]).
    pub fn with_pseudonymizer(mut self, pseudonymizer: Pseudonymizer) -> Self {
        self.pseudonymizer = Some(pseudonymizer);
        self
    }

    /// The lake.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// Erases the learner `pseudonym`: finishes their unfinished job if
    /// there is one (an interrupted run), else starts a new one.
    pub async fn erase(&self, pseudonym: &str) -> Result<ErasureOutcome> {
        let job_id = self.lake.request_erasure(pseudonym).await?;
        self.run(&job_id).await
    }

    /// Runs every unfinished job, oldest first.
    pub async fn run_pending(&self) -> Result<Vec<ErasureOutcome>> {
        let mut out = Vec::new();
        for id in self.lake.erasure_jobs().await? {
            out.push(self.run(&id).await?);
        }
        Ok(out)
    }

    /// Runs (or finishes) the job `job_id`; a finished job answers from its receipt.
    pub async fn run(&self, job_id: &str) -> Result<ErasureOutcome> {
        if !is_job_id(job_id) {
            return Err(Error::Invalid("a job id is 32 hex digits".into()));
        }
        let lake = &self.lake;
        let receipt_rel = Lake::receipt_rel(job_id);
        let Some(mut job) = lake.load_job(job_id).await? else {
            return match lake.get_opt(&lake.path(&receipt_rel)).await? {
                Some(envelope) => {
                    lake.remove_staging(job_id)?;
                    outcome_from_receipt(&envelope, &receipt_rel)
                }
                None => Err(Error::Erasure { job_id: job_id.to_owned(), reason: "no such job".into() }),
            };
        };
        if let Some(envelope) = lake.get_opt(&lake.path(&receipt_rel)).await? {
            // Interrupted after the receipt was written: only the record is left to remove.
            lake.delete_opt(&lake.job_path(job_id)).await?;
            lake.remove_staging(job_id)?;
            return outcome_from_receipt(&envelope, &receipt_rel);
        }
        if job.state == JobState::Pending {
            let now = Utc::now();
            job.state = JobState::Running;
            job.started_at = Some(now);
            job.plan = lake.erasure_plan().await?;
            job.listed_at = Some(now);
            lake.save_job(&job).await?;
            tracing::info!(job_id, objects = job.plan.len(), "erasure started");
        } else {
            tracing::info!(job_id, done = job.next, objects = job.plan.len(), "erasure resumed");
            // Objects recorded as rewritten may still be there (interrupted before their removal).
            for r in &job.objects {
                lake.delete_opt(&lake.path(&r.path)).await?;
            }
        }
        self.erase_objects(&mut job).await?;
        if !job.models_done {
            if let Some(models) = &self.models {
                self.erase_models(&mut job, models).await?;
            }
            job.models_done = true;
            lake.save_job(&job).await?;
        }
        // The audit record (at least once: a crash before the receipt repeats it), the
        // receipt, then the record goes.
        let details = serde_json::json!({
            "job_id": job_id,
            "status": "done",
            "objects_changed": job.objects.len(),
            "models": job.models.len(),
            "receipt": receipt_rel,
        });
        lake.audit_append(crate::audit::AuditAction::Erasure, &self.actor, details).await?;
        let body = receipt_body(&job)?;
        let envelope = forget::sign_receipt(&body, &self.signing)?;
        lake.store().put(&lake.path(&receipt_rel), PutPayload::from(envelope.clone())).await?;
        lake.delete_opt(&lake.job_path(job_id)).await?;
        lake.remove_staging(job_id)?;
        tracing::info!(job_id, objects = job.objects.len(), models = job.models.len(), "erasure done");
        outcome_from_receipt(&envelope, &receipt_rel)
    }

    /// Step 2 of the module docs.
    async fn erase_objects(&self, job: &mut JobRecord) -> Result<()> {
        let lake = &self.lake;
        loop {
            let mut reviews: HashSet<String> = job.review_events.iter().cloned().collect();
            let mut unremoved: Vec<Path> = Vec::new();
            let mut saved = Instant::now();
            while job.next < job.plan.len() {
                let rel = job.plan[job.next].clone();
                match self.erase_object(job, &rel, &mut reviews).await? {
                    Erased::Gone => job.relist = true,
                    Erased::Untouched => {}
                    Erased::Changed(result) => {
                        unremoved.push(lake.path(&result.path));
                        job.objects.push(result);
                    }
                }
                job.next += 1;
                #[cfg(test)]
                if let Some((at, save)) = self.crash
                    && job.next == at
                {
                    if save {
                        job.review_events = reviews.iter().cloned().collect();
                        lake.save_job(job).await?;
                    }
                    return Err(Error::Erasure { job_id: job.job_id.clone(), reason: "killed (test)".into() });
                }
                if unremoved.len() >= CHECKPOINT_OBJECTS || saved.elapsed().as_secs() >= 1 {
                    job.review_events = reviews.iter().cloned().collect();
                    job.review_events.sort();
                    lake.save_job(job).await?;
                    for p in unremoved.drain(..) {
                        lake.delete_opt(&p).await?;
                    }
                    saved = Instant::now();
                }
            }
            job.review_events = reviews.into_iter().collect();
            job.review_events.sort();
            if job.relist {
                // Something moved the lake's objects meanwhile: look at what is there now.
                job.plan = lake.erasure_plan().await?;
                job.listed_at = Some(Utc::now());
                job.next = 0;
                job.relist = false;
            }
            lake.save_job(job).await?;
            for p in unremoved {
                lake.delete_opt(&p).await?;
            }
            if job.next >= job.plan.len() {
                return Ok(());
            }
        }
    }

    async fn erase_object(&self, job: &JobRecord, rel: &str, reviews: &mut HashSet<String>) -> Result<Erased> {
        let lake = &self.lake;
        let path = lake.path(rel);
        let Some(bytes) = lake.get_opt(&path).await? else { return Ok(Erased::Gone) };
        let parts: Vec<&str> = rel.split('/').collect();
        let table = parts[0];
        let who = job.pseudonym.as_str();
        let (content, removed) = match table {
            "events" => {
                let t = (parts.len() == 4 && rel.ends_with(".parquet"))
                    .then(|| parts[2].strip_prefix("type=").and_then(EventType::parse))
                    .flatten();
                let Some(t) = t else { return Ok(Erased::Untouched) };
                if !file_holds_user(&bytes, who, rel)? {
                    return Ok(Erased::Untouched);
                }
                let rows = decode_parquet(bytes, t, rel)?;
                let (mine, kept): (Vec<&StoredEvent>, Vec<&StoredEvent>) =
                    rows.iter().partition(|e| e.event.user_id == who);
                if t == EventType::Review {
                    reviews.extend(mine.iter().map(|e| e.event.event_id.clone()));
                }
                let content = if kept.is_empty() { None } else { Some(encode_parquet(&kept, Codec::Zstd)?) };
                (content, mine.len())
            }
            sentiment::TABLE => {
                if !rel.ends_with(".parquet") || reviews.is_empty() {
                    return Ok(Erased::Untouched);
                }
                let rows = sentiment::decode(bytes, rel)?;
                let kept: Vec<&ReviewSentiment> = rows.iter().filter(|r| !reviews.contains(&r.event_id)).collect();
                if kept.len() == rows.len() {
                    return Ok(Erased::Untouched);
                }
                let removed = rows.len() - kept.len();
                (if kept.is_empty() { None } else { Some(sentiment::encode(&kept)?) }, removed)
            }
            exposures::TABLE => {
                if !rel.ends_with(".parquet") || !file_holds_user(&bytes, who, rel)? {
                    return Ok(Erased::Untouched);
                }
                let rows = exposures::decode(bytes, rel)?;
                let kept: Vec<&StoredExposure> = rows.iter().filter(|r| r.user_id.as_deref() != Some(who)).collect();
                if kept.len() == rows.len() {
                    return Ok(Erased::Untouched);
                }
                let removed = rows.len() - kept.len();
                (if kept.is_empty() { None } else { Some(exposures::encode(&kept)?) }, removed)
            }
            _ => {
                let mut kept = Vec::with_capacity(bytes.len());
                let mut removed = 0;
                for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let v: serde_json::Value = serde_json::from_slice(line)?;
                    if json_names_user(&v, who, self.pseudonymizer.as_ref()) {
                        removed += 1;
                    } else {
                        kept.extend_from_slice(line);
                        kept.push(b'\n');
                    }
                }
                if removed == 0 {
                    return Ok(Erased::Untouched);
                }
                ((!kept.is_empty()).then_some(kept), removed)
            }
        };
        let replaced_by = match content {
            Some(bytes) => {
                let new_rel = replacement_name(rel, &job.job_id);
                lake.store().put(&lake.path(&new_rel), PutPayload::from(bytes)).await?;
                Some(new_rel)
            }
            None => None,
        };
        Ok(Erased::Changed(ObjectResult {
            path: rel.to_owned(),
            table: table.to_owned(),
            rows_removed: removed,
            replaced_by,
        }))
    }

    /// Step 3 of the module docs.
    async fn erase_models(&self, job: &mut JobRecord, models: &ModelStore) -> Result<()> {
        let public = self.signing.public_key();
        let who = job.pseudonym.clone();
        let short = &job.job_id[..8];
        for channel in Channel::ALL {
            let Some(version) = models.current(channel).await? else { continue };
            let bytes = models.get(&version).await?;
            // A version the key does not verify is reported by the pass over every version below.
            if !forget::holds_user(&bytes, &public, &who).unwrap_or(false) {
                continue;
            }
            let now = Utc::now();
            let tag = version.split('-').nth(1).filter(|t| !t.is_empty()).unwrap_or("model");
            let new_version = format!("{}-{tag}-e{short}", now.format("%Y%m%dT%H%M%S%3fZ"));
            let Some(f) = forget::forget_user(&bytes, &public, &self.signing, &who, &new_version, now)? else {
                continue;
            };
            models.publish(channel, &new_version, f.bytes).await?;
            tracing::info!(job_id = %job.job_id, channel = channel.name(), %version, %new_version, "model republished without the learner");
            job.models.push(ModelResult {
                channel: Some(channel.name().to_owned()),
                version,
                action: "republished".into(),
                new_version: Some(new_version),
            });
            self.lake.save_job(job).await?;
        }
        for version in models.versions().await? {
            let bytes = models.get(&version).await?;
            let holds = match forget::holds_user(&bytes, &public, &who) {
                Ok(h) => h,
                Err(e) => {
                    // Not ours to rewrite (another key, a damaged file): the receipt says so.
                    tracing::warn!(job_id = %job.job_id, %version, error = %e, "stored model not checked");
                    job.models.push(ModelResult {
                        channel: None,
                        version,
                        action: "unverifiable".into(),
                        new_version: None,
                    });
                    continue;
                }
            };
            if !holds {
                continue;
            }
            let created = knowedge_format::artifact::verify(&bytes, &public)?.created_at;
            if let Some(f) = forget::forget_user(&bytes, &public, &self.signing, &who, &version, created)? {
                models.put(&version, f.bytes).await?;
                job.models.push(ModelResult { channel: None, version, action: "rewritten".into(), new_version: None });
                self.lake.save_job(job).await?;
            }
        }
        Ok(())
    }
}

enum Erased {
    /// The object is no longer there.
    Gone,
    /// Nothing of the learner in it.
    Untouched,
    /// Rewritten (or removed): not yet removed.
    Changed(ObjectResult),
}

/// The name a job gives the rewritten copy of `rel`: the same folder,
/// `<stem>.e<job id>.<ext>`, so that redoing it overwrites, never duplicates.
fn replacement_name(rel: &str, job_id: &str) -> String {
    let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "bin"));
    format!("{dir}/{stem}.e{}.{ext}", &job_id[..12])
}

fn receipt_body(job: &JobRecord) -> Result<serde_json::Value> {
    let salt = uuid::Uuid::new_v4();
    let digest = Pseudonymizer::new(salt.as_bytes())?.pseudonymize(&job.pseudonym);
    let total = |table: &str| job.objects.iter().filter(|o| o.table == table).map(|o| o.rows_removed).sum::<usize>();
    Ok(serde_json::json!({
        "type": "knowedge-erasure-receipt",
        "receipt_version": 1,
        "job_id": job.job_id,
        "requested_at": job.requested_at,
        "started_at": job.started_at,
        "finished_at": Utc::now(),
        "lake_listed_at": job.listed_at,
        "scope": "event files, review sentiment, exposures and dead letters listed at lake_listed_at; objects written later were not scanned",
        "subject": {"salt": salt.simple().to_string(), "hmac_sha256_of_pseudonym": digest},
        "totals": {
            "objects_changed": job.objects.len(),
            "events_removed": total("events"),
            "review_sentiment_removed": total(sentiment::TABLE),
            "exposures_removed": total(exposures::TABLE),
            "dead_letters_removed": total("dead-letter"),
        },
        "objects": job.objects,
        "models": job.models,
    }))
}

fn outcome_from_receipt(envelope: &[u8], receipt_rel: &str) -> Result<ErasureOutcome> {
    let v: serde_json::Value = serde_json::from_slice(envelope)?;
    let r = &v["receipt"];
    let n = |k: &str| r["totals"][k].as_u64().unwrap_or(0) as usize;
    Ok(ErasureOutcome {
        job_id: r["job_id"].as_str().unwrap_or_default().to_owned(),
        receipt_path: receipt_rel.to_owned(),
        objects_changed: n("objects_changed"),
        events_removed: n("events_removed"),
        review_sentiment_removed: n("review_sentiment_removed"),
        exposures_removed: n("exposures_removed"),
        dead_letters_removed: n("dead_letters_removed"),
        models: serde_json::from_value(r["models"].clone())?,
        listed_at: serde_json::from_value(r["lake_listed_at"].clone())?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::events::tests::ev;

    fn who(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    #[test]
    fn replacement_names_are_stable_per_job() {
        let job = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            replacement_name("events/dt=2026-11-01/type=view/part-1-ab.parquet", job),
            "events/dt=2026-11-01/type=view/part-1-ab.e0123456789ab.parquet"
        );
        assert!(is_job_id(job) && !is_job_id("../x") && is_pseudonym(&who(1)) && !is_pseudonym("alice"));
    }

    #[tokio::test]
    async fn erases_rows_dead_letters_and_sentiment_and_signs_a_receipt() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let mut events = Vec::new();
        for (i, t) in [EventType::View, EventType::Review, EventType::View, EventType::Purchase].into_iter().enumerate()
        {
            let mut a = ev(&format!("a{i}"), t, 1 + i as u32 % 2, 0);
            a.event.user_id = who(1);
            let mut b = ev(&format!("b{i}"), t, 1 + i as u32 % 2, 0);
            b.event.user_id = who(2);
            events.extend([a, b]);
        }
        lake.write_events(&events).await.unwrap();
        let mut only_mine = ev("c0", EventType::Click, 3, 0);
        only_mine.event.user_id = who(1);
        lake.write_events(&[only_mine]).await.unwrap();
        let score = |id: &str| ReviewSentiment {
            event_id: id.into(),
            item_id: None,
            ts: events[2].event.ts,
            label: "positive".into(),
            score: 0.9,
            model_id: "s".into(),
            scored_at: events[2].received_at,
        };
        lake.write_review_sentiment(&[score("a1"), score("b1")]).await.unwrap();
        let letter = |user: &str| DeadLetter {
            received_at: events[0].received_at,
            index: 0,
            raw: serde_json::json!({"user_id": user, "rating": 9}),
            raw_sha256: None,
            problems: Vec::new(),
            dropped_fields: Vec::new(),
            dropped_unnamed: 0,
            key_name: None,
        };
        lake.write_dead_letters(&[letter(&who(1)), letter(&who(2))]).await.unwrap();
        let shown = |id: &str, user: Option<String>| StoredExposure {
            recommendation_id: id.into(),
            ts: events[0].event.ts,
            received_at: events[0].received_at,
            user_id: user,
            model_id: "m".into(),
            experiment: None,
            variant: None,
            items: vec!["x".into()],
            key_name: None,
        };
        lake.write_exposures(&[shown("r1", Some(who(1))), shown("r2", Some(who(2))), shown("r3", None)]).await.unwrap();
        let export = lake.export_user(&who(1), None).await.unwrap();
        assert_eq!(export.events.len(), 5);
        assert_eq!((export.review_sentiment.len(), export.dead_letters.len()), (1, 1));
        assert_eq!(export.exposures.iter().map(|x| x.recommendation_id.as_str()).collect::<Vec<_>>(), ["r1"]);

        let key = SigningKey::from_seed([8; 32]);
        let job = lake.request_erasure(&who(1)).await.unwrap();
        assert_eq!(lake.request_erasure(&who(1)).await.unwrap(), job, "one unfinished job per learner");
        assert_eq!(lake.erasure_status(&job).await.unwrap().unwrap().state, JobState::Pending);
        let out = Eraser::new(lake.clone(), key.clone()).run_pending().await.unwrap();
        assert_eq!(out.len(), 1);
        let out = &out[0];
        assert_eq!((out.events_removed, out.review_sentiment_removed, out.dead_letters_removed), (5, 1, 1));
        assert_eq!(out.exposures_removed, 1);
        let kept: Vec<String> = lake.read_exposures().await.unwrap().into_iter().map(|x| x.recommendation_id).collect();
        assert_eq!(kept, ["r2", "r3"], "the other learner's and the anonymous answer stay");
        let left = lake.read_events().await.unwrap();
        assert_eq!(left.len(), 4);
        assert!(left.iter().all(|e| e.event.user_id == who(2)));
        assert_eq!(lake.read_review_sentiment().await.unwrap().len(), 1);
        assert_eq!(lake.read_dead_letters().await.unwrap().len(), 1);
        let envelope = std::fs::read(dir.path().join(&out.receipt_path)).unwrap();
        let body = forget::verify_receipt(&envelope, &key.public_key()).unwrap();
        assert_eq!(body["job_id"], job.as_str());
        assert!(!String::from_utf8_lossy(&envelope).contains(&who(1)));
        assert!(!dir.path().join(JOBS).join(format!("{job}.json")).exists());
        assert_eq!(lake.erasure_status(&job).await.unwrap().unwrap().state, JobState::Done);
        // Running it again answers from the receipt.
        assert_eq!(&Eraser::new(lake.clone(), key).run(&job).await.unwrap(), out);
        assert!(lake.export_user(&who(1), None).await.unwrap().events.is_empty());
    }

    /// A kill in either window (new objects written, record not saved; record
    /// saved, old objects not removed) and the run that finishes the job:
    /// readers count each event once meanwhile, nothing is counted twice in the
    /// receipt, and no copy is left behind.
    #[tokio::test]
    async fn a_killed_job_finishes_without_double_counting() {
        for save in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
            let mut mine = 0;
            for batch in 0..6u32 {
                let events: Vec<StoredEvent> = (0..12u32)
                    .map(|i| {
                        let t = [EventType::View, EventType::Click, EventType::Review][(i % 3) as usize];
                        let mut e = ev(&format!("e{batch}-{i}"), t, 1 + i % 2, i64::from(batch));
                        e.event.user_id = who(if i % 4 == 0 { 1 } else { 2 });
                        e
                    })
                    .collect();
                mine += events.iter().filter(|e| e.event.user_id == who(1)).count();
                lake.write_events(&events).await.unwrap();
            }
            let total = lake.read_events().await.unwrap().len();
            let job = lake.request_erasure(&who(1)).await.unwrap();
            let key = SigningKey::from_seed([8; 32]);
            let mut killed = Eraser::new(lake.clone(), key.clone());
            killed.crash = Some((10, save));
            assert!(killed.run(&job).await.is_err());
            let rows = lake.scan_events().await.unwrap();
            if save {
                assert!(rows.len() > total, "old and new copies side by side");
            }
            let read = lake.read_events().await.unwrap();
            assert!(read.len() <= total && read.len() >= total - mine, "each event once meanwhile");
            let status = lake.erasure_status(&job).await.unwrap().unwrap();
            assert_eq!(status.state, JobState::Running);
            assert_eq!(status.objects_examined, Some(if save { 10 } else { 0 }));

            let out = Eraser::new(lake.clone(), key).erase(&who(1)).await.unwrap();
            assert_eq!(out.job_id, job, "the same job is finished");
            assert_eq!(out.events_removed, mine, "save {save}: nothing counted twice or lost");
            let rows = lake.scan_events().await.unwrap();
            assert_eq!(rows.len(), total - mine, "no copy left behind");
            assert!(rows.iter().all(|e| e.event.user_id == who(2)));
            let mut names = Vec::new();
            for d in std::fs::read_dir(dir.path().join("events")).unwrap() {
                for t in std::fs::read_dir(d.unwrap().path()).unwrap() {
                    for f in std::fs::read_dir(t.unwrap().path()).unwrap() {
                        names.push(f.unwrap().file_name().to_string_lossy().into_owned());
                    }
                }
            }
            assert!(names.iter().all(|n| !n.contains('#')), "{names:?}");
        }
    }
}
