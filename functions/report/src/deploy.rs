//! What the scheduled report function (`knowedge-report`) reads and touches
//! in a deployment: its settings and its object-store access (see
//! [`knowedge_lake::deploy`]). `infra/` is tested against these lists.

use knowedge_lake::deploy::{Action, Bucket, ObjectAccess, Setting};

/// Settings of `knowedge-report`.
///
/// * `KNOWEDGE_LAKE`: the lake (`s3://bucket/prefix`).
/// * `KNOWEDGE_REPORT_WORK_DIR`: where the function keeps its copy of the
///   lake's tables between runs (default `/tmp/knowedge-lake`; Lambda's
///   ephemeral storage, up to 10 GB).
/// * `KNOWEDGE_ECHARTS`: Apache ECharts to inline into the page (default
///   `$LAMBDA_TASK_ROOT/echarts.min.js`, which `cargo xtask package` puts
///   into the function's zip).
pub const SETTINGS: &[Setting] = &[
    Setting::required("KNOWEDGE_LAKE"),
    Setting::optional("KNOWEDGE_REPORT_WORK_DIR"),
    Setting::optional("KNOWEDGE_ECHARTS"),
];

const READ: &[Action] = &[Action::Get, Action::List];

/// Object-store access of `knowedge-report`: it reads the tables the
/// dashboard queries and the catalogue, and writes the dashboard under
/// `reports/`. It never reads `privacy/` (erasure jobs and receipts).
pub const ACCESS: &[ObjectAccess] = &[
    ObjectAccess { bucket: Bucket::Lake, prefix: "events/", actions: READ },
    ObjectAccess { bucket: Bucket::Lake, prefix: "exposures/", actions: READ },
    ObjectAccess { bucket: Bucket::Lake, prefix: "review-sentiment/", actions: READ },
    ObjectAccess { bucket: Bucket::Lake, prefix: "dead-letter/", actions: READ },
    ObjectAccess { bucket: Bucket::Lake, prefix: "audit/", actions: READ },
    ObjectAccess { bucket: Bucket::Lake, prefix: "catalogue/", actions: READ },
    ObjectAccess { bucket: Bucket::Lake, prefix: knowedge_lake::mirror::REPORTS, actions: &[Action::Put] },
];

/// The lake folders the report copies: every table's and the catalogue's.
pub fn mirrored_prefixes() -> Vec<&'static str> {
    let mut prefixes: Vec<&'static str> = knowedge_lake::tables::tables().iter().map(|t| t.prefix).collect();
    prefixes.push("catalogue/");
    prefixes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copied_folders_are_exactly_the_readable_ones() {
        let mut readable: Vec<&str> =
            ACCESS.iter().filter(|a| a.actions.contains(&Action::Get)).map(|a| a.prefix).collect();
        let mut copied = mirrored_prefixes();
        readable.sort_unstable();
        copied.sort_unstable();
        assert_eq!(readable, copied);
        assert!(!copied.iter().any(|p| p.starts_with("privacy")));
    }
}
