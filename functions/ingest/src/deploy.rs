//! What the two Lambda functions of this crate read and touch in a
//! deployment: their settings and their object-store access (see
//! [`knowedge_lake::deploy`]). `infra/` is tested against these lists.

use knowedge_lake::deploy::{Action, Bucket, ObjectAccess, Setting};
use knowedge_lake::publish;

/// Settings of `knowedge-ingest`.
pub const INGEST_SETTINGS: &[Setting] = &[
    Setting::required("KNOWEDGE_LAKE"),
    Setting::secret("KNOWEDGE_PSEUDONYM_KEY"),
    Setting::secret("KNOWEDGE_API_KEYS"),
    Setting::optional("KNOWEDGE_CORS_ORIGINS"),
    Setting::optional("KNOWEDGE_MAX_EVENT_AGE_DAYS"),
];

const GET_PUT_LIST: &[Action] = &[Action::Get, Action::Put, Action::List];
const ALL: &[Action] = &[Action::Get, Action::Put, Action::Delete, Action::List];

/// Object-store access of `knowedge-ingest`: it writes event files,
/// exposures and dead letters, appends to the audit log, and files erasure requests.
pub const INGEST_ACCESS: &[ObjectAccess] = &[
    ObjectAccess { bucket: Bucket::Lake, prefix: "events/", actions: &[Action::Put] },
    ObjectAccess { bucket: Bucket::Lake, prefix: "exposures/", actions: &[Action::Put] },
    ObjectAccess { bucket: Bucket::Lake, prefix: "dead-letter/", actions: &[Action::Put] },
    ObjectAccess { bucket: Bucket::Lake, prefix: "audit/", actions: GET_PUT_LIST },
    ObjectAccess { bucket: Bucket::Lake, prefix: "privacy/", actions: GET_PUT_LIST },
];

/// Settings of `knowedge-compact`.
pub const COMPACT_SETTINGS: &[Setting] = &[
    Setting::required("KNOWEDGE_LAKE"),
    Setting::optional("KNOWEDGE_MODELS"),
    Setting::optional_secret("KNOWEDGE_SIGNING_KEY"),
    Setting::optional_secret("KNOWEDGE_PSEUDONYM_KEY"),
    Setting::optional("KNOWEDGE_RETENTION_DAYS"),
    Setting::optional("KNOWEDGE_DEAD_LETTER_RETENTION_DAYS"),
    publish::SETTINGS[0],
    publish::SETTINGS[1],
    publish::SETTINGS[2],
    publish::SETTINGS[3],
    publish::SETTINGS[4],
    publish::SETTINGS[5],
];

/// Object-store access of `knowedge-compact`: it rewrites and removes lake
/// files (compaction, retention, erasure), appends to the audit log, and
/// republishes models without an erased learner.
pub const COMPACT_ACCESS: &[ObjectAccess] = &[
    ObjectAccess { bucket: Bucket::Lake, prefix: "events/", actions: ALL },
    ObjectAccess { bucket: Bucket::Lake, prefix: "dead-letter/", actions: ALL },
    ObjectAccess { bucket: Bucket::Lake, prefix: "review-sentiment/", actions: ALL },
    ObjectAccess { bucket: Bucket::Lake, prefix: "exposures/", actions: ALL },
    ObjectAccess { bucket: Bucket::Lake, prefix: "privacy/", actions: ALL },
    ObjectAccess { bucket: Bucket::Lake, prefix: "audit/", actions: GET_PUT_LIST },
    ObjectAccess { bucket: Bucket::Models, prefix: "", actions: ALL },
];
