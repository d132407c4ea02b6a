//! What the training function reads and touches in a deployment: its
//! settings and its object-store access (see [`knowedge_lake::deploy`]).
//! `infra/` is tested against these lists.

use knowedge_lake::deploy::{Action, Bucket, ObjectAccess, Setting};
use knowedge_lake::publish;

/// Settings of `knowedge-train` (as a Lambda function and as a batch job).
pub const SETTINGS: &[Setting] = &[
    Setting::required("KNOWEDGE_LAKE"),
    Setting::required("KNOWEDGE_MODELS"),
    Setting::secret("KNOWEDGE_SIGNING_KEY"),
    Setting::optional("KNOWEDGE_RECIPE"),
    publish::SETTINGS[0],
    publish::SETTINGS[1],
    publish::SETTINGS[2],
    publish::SETTINGS[3],
    publish::SETTINGS[4],
    publish::SETTINGS[5],
];

/// Object-store access of `knowedge-train`: it reads events and the
/// catalogue, writes review sentiment, records promotions in the audit log,
/// and stores and promotes models.
pub const ACCESS: &[ObjectAccess] = &[
    ObjectAccess { bucket: Bucket::Lake, prefix: "events/", actions: &[Action::Get, Action::List] },
    ObjectAccess { bucket: Bucket::Lake, prefix: "catalogue/", actions: &[Action::Get, Action::List] },
    ObjectAccess {
        bucket: Bucket::Lake,
        prefix: "review-sentiment/",
        actions: &[Action::Get, Action::Put, Action::List],
    },
    ObjectAccess { bucket: Bucket::Lake, prefix: "audit/", actions: &[Action::Get, Action::Put, Action::List] },
    ObjectAccess { bucket: Bucket::Models, prefix: "", actions: &[Action::Get, Action::Put, Action::List] },
];
