//! The knowedge event lake and model store on object storage.
//!
//! The lake is a prefix on an object store (a local directory by default, an
//! `s3://bucket/prefix` URL in production) laid out for Athena, Spark and
//! DuckDB:
//!
//! ```text
//! events/dt=YYYY-MM-DD/type=<event type>/part-<received ms>-<uuid>.parquet
//! dead-letter/dt=YYYY-MM-DD/part-<received ms>-<uuid>.ndjson
//! review-sentiment/dt=YYYY-MM-DD/part-<scored ms>-<uuid>.parquet   (see [`sentiment`])
//! exposures/dt=YYYY-MM-DD/part-<received ms>-<uuid>.parquet         (see [`exposures`])
//! catalogue/items.json
//! audit/<seq, 12 digits>.json                                        (see [`audit`])
//! reports/index.html, reports/data.json  the scheduled dashboard (see [`mirror`])
//! privacy/erasures/<job id>.json     unfinished erasure jobs (see [`privacy`])
//! privacy/receipts/<job id>.json     signed receipts of finished ones
//! ```
//!
//! Event files are Parquet (Snappy as ingestion writes them, zstd once compacted) with the Arrow schema from
//! [`events::schema`]; `dt` (UTC day of `ts`) and `type` are Hive partition
//! columns and are not repeated inside the files. User ids in the lake are
//! always pseudonyms.
//!
//! The ingestion function writes through [`Lake::write_events`]; the training
//! function and reports read through [`Lake::read_events`], which returns
//! every event once even if a client re-sent it. [`ModelStore`] keeps signed
//! model artifacts and the `current` pointer the edge follows.

pub mod audit;
pub mod catalogue;
mod compact;
pub mod deploy;
pub mod events;
pub mod exposures;
pub mod mirror;
mod models;
pub mod privacy;
pub mod publish;
pub mod sentiment;
pub mod tables;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

pub use audit::{AuditAction, AuditExpectation, AuditProblem, AuditRecord, AuditReport};
pub use catalogue::CatalogueItem;
pub use compact::{CompactOptions, CompactionReport};
pub use events::{DeadLetter, StoredEvent};
pub use exposures::StoredExposure;
pub use mirror::MirrorReport;
pub use models::ModelStore;
pub use sentiment::ReviewSentiment;

/// Errors of the lake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The lake or store URL is not usable.
    #[error("invalid location `{url}`: {reason}")]
    Location {
        /// The URL or path given.
        url: String,
        /// Why it is not usable.
        reason: String,
    },
    /// The object store failed (network, permissions, disk).
    #[error("object store")]
    Store(#[from] object_store::Error),
    /// Parquet encoding or decoding failed.
    #[error("parquet")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow arrays could not be built or read.
    #[error("arrow")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A file in the lake does not have the expected content.
    #[error("corrupt lake object `{path}`: {reason}")]
    Corrupt {
        /// Object path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// JSON encoding or decoding failed.
    #[error("json")]
    Json(#[from] serde_json::Error),
    /// An audit record was refused or could not be appended.
    #[error("audit log: {reason}")]
    Audit {
        /// Why.
        reason: String,
    },
    /// A model artifact or receipt could not be read, rewritten or signed.
    #[error("model format")]
    Format(#[from] knowedge_format::Error),
    /// A request or setting is not usable (a job id, a pseudonym, a retention period).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A secret setting could not be read from the secrets extension.
    #[error("secret {setting}: {reason}")]
    Secret {
        /// The setting.
        setting: String,
        /// Why.
        reason: String,
    },
    /// Pushing a model to an edge failed.
    #[error("publishing to {target}: {reason}")]
    Publish {
        /// The edge (`cloudflare-kv`, `spin`).
        target: String,
        /// What failed.
        reason: String,
        /// Whether a later attempt may succeed (a 5xx or a network error, not a refused token).
        retryable: bool,
    },
    /// An erasure job cannot go on (see the message).
    #[error("erasure job `{job_id}`: {reason}")]
    Erasure {
        /// The job.
        job_id: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// Whether retrying the same operation later may succeed (I/O and service errors).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Store(_) | Error::Secret { .. } | Error::Publish { retryable: true, .. })
    }
}

/// Result alias of the lake.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Opens an object store at a URL (`s3://bucket/prefix`, `file:///dir`) or a
/// local directory path (created if missing). Local writes are fsynced.
///
/// S3 settings come from the usual `AWS_*` environment variables
/// (credentials, `AWS_REGION`, `AWS_ENDPOINT` for S3-compatible services).
pub fn open_store(location: &str) -> Result<(Arc<dyn ObjectStore>, Path)> {
    open_store_with(location, &[])
}

/// Like [`open_store`], with S3 settings given explicitly (keys such as
/// `aws_endpoint`, `aws_region`, `aws_access_key_id`, `aws_allow_http`),
/// which win over the environment.
pub fn open_store_with(location: &str, options: &[(&str, &str)]) -> Result<(Arc<dyn ObjectStore>, Path)> {
    let err = |reason: String| Error::Location { url: location.to_owned(), reason };
    if let Some(rest) = location.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(err("no bucket name".into()));
        }
        let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in options {
            let key: object_store::aws::AmazonS3ConfigKey =
                k.parse().map_err(|e: object_store::Error| err(e.to_string()))?;
            b = b.with_config(key, *v);
        }
        let store = b.build().map_err(|e| err(e.to_string()))?;
        let prefix = Path::parse(prefix.trim_end_matches('/')).map_err(|e| err(e.to_string()))?;
        return Ok((Arc::new(store), prefix));
    }
    if location.contains("://") && !location.starts_with("file://") {
        return Err(err("supported locations are directories, file:// and s3:// URLs".into()));
    }
    let dir = location.strip_prefix("file://").unwrap_or(location);
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| err(e.to_string()))?.with_fsync(true);
    Ok((Arc::new(fs), Path::default()))
}

/// The event lake.
#[derive(Clone, Debug)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// Objects readers skipped (shared by clones).
    skipped: Arc<AtomicU64>,
    /// The directory of a local lake (where a killed write can leave a staging file).
    local: Option<std::path::PathBuf>,
}

/// The directory of a local location (as [`open_store`] reads it).
fn local_dir(location: &str) -> Option<std::path::PathBuf> {
    (!location.contains("://") || location.starts_with("file://"))
        .then(|| std::path::PathBuf::from(location.strip_prefix("file://").unwrap_or(location)))
}

impl Lake {
    /// Opens the lake at `location` (see [`open_store`]).
    pub fn open(location: &str) -> Result<Self> {
        let (store, prefix) = open_store(location)?;
        Ok(Self { store, prefix, local: local_dir(location), skipped: Arc::default() })
    }

    /// Opens the lake with explicit S3 settings (see [`open_store_with`]).
    pub fn open_with(location: &str, options: &[(&str, &str)]) -> Result<Self> {
        let (store, prefix) = open_store_with(location, options)?;
        Ok(Self { store, prefix, local: local_dir(location), skipped: Arc::default() })
    }

    /// A lake on an existing store under `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Self { store, prefix, local: None, skipped: Arc::default() }
    }

    /// How many objects the readers of this lake (and its clones) skipped
    /// so far: stray files in a table's folders and files that could not be
    /// decoded, each logged with a warning (see [`Lake::read_events`]). An
    /// object skipped by several reads counts once per read.
    pub fn skipped_objects(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Notes an object a reader skips: a warning with its path and why, and the count.
    pub(crate) fn skip(&self, path: &Path, reason: &dyn std::fmt::Display) {
        tracing::warn!(path = %path, reason = %reason, "lake object skipped");
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// The directory of a local lake.
    pub(crate) fn local_dir(&self) -> Option<&std::path::Path> {
        self.local.as_deref()
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub(crate) fn path(&self, rel: &str) -> Path {
        let mut p = self.prefix.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.clone().join(part);
        }
        p
    }

    pub(crate) fn relative<'a>(&self, full: &'a Path) -> Option<Vec<&'a str>> {
        let prefix_parts = self.prefix.parts().count();
        let parts: Vec<&str> = full.as_ref().split('/').filter(|s| !s.is_empty()).collect();
        (parts.len() >= prefix_parts).then(|| parts[prefix_parts..].to_vec())
    }
}
