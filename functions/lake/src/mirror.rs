//! A copy of parts of a lake in another store (the scheduled report keeps
//! one on the function's local disk and reads it with its SQL engine).
//!
//! [`Lake::mirror_to`] copies the objects under some prefixes that are new
//! or changed since the last run and removes the copies of objects that are
//! gone (compaction replaces per-batch files; a copy left behind would count
//! their rows twice). What it copied is remembered in the copy itself, in
//! [`MANIFEST`], so a warm run copies only what changed.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::{Lake, Result};

/// Where the copy remembers which version of each object it holds (outside
/// every table's folder).
pub const MANIFEST: &str = "mirror-manifest.json";

/// Objects fetched at once.
const CONCURRENCY: usize = 8;

/// What a mirror run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorReport {
    /// Objects copied (new or changed).
    pub copied: usize,
    /// Bytes copied.
    pub bytes_copied: u64,
    /// Objects the copy already held.
    pub unchanged: usize,
    /// Copies removed because their object is gone.
    pub removed: usize,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    /// Relative key → version (size and ETag, or size and modification time).
    objects: BTreeMap<String, String>,
}

fn version(meta: &ObjectMeta) -> String {
    match &meta.e_tag {
        Some(tag) => format!("{}:{tag}", meta.size),
        None => format!("{}:{}", meta.size, meta.last_modified.timestamp_nanos_opt().unwrap_or_default()),
    }
}

impl Lake {
    /// Brings `to` up to date with the objects of this lake under `prefixes`
    /// (relative folders ending in `/`, such as `events/`): copies what is new
    /// or changed and removes, under those prefixes only, what this lake no
    /// longer has.
    ///
    /// # Errors
    /// [`crate::Error::Store`] when listing, reading or writing fails; the
    /// copy is then partly updated and the next run finishes it.
    pub async fn mirror_to(&self, to: &Lake, prefixes: &[&str]) -> Result<MirrorReport> {
        let mut manifest: Manifest = match to.store().get(&to.path(MANIFEST)).await {
            Ok(got) => serde_json::from_slice(&got.bytes().await?).unwrap_or_default(),
            Err(object_store::Error::NotFound { .. }) => Manifest::default(),
            Err(e) => return Err(e.into()),
        };
        let mut report = MirrorReport::default();
        let mut wanted: BTreeMap<String, String> = BTreeMap::new();
        let mut fetch = Vec::new();
        for prefix in prefixes {
            let listed: Vec<ObjectMeta> = self.store().list(Some(&self.path(prefix))).try_collect().await?;
            for meta in listed {
                let Some(rel) = self.relative(&meta.location).map(|parts| parts.join("/")) else { continue };
                let v = version(&meta);
                if manifest.objects.get(&rel) == Some(&v) {
                    report.unchanged += 1;
                } else {
                    fetch.push((rel.clone(), meta));
                }
                wanted.insert(rel, v);
            }
        }
        let copies = futures::stream::iter(fetch.into_iter().map(|(rel, meta)| async move {
            let bytes = self.store().get(&meta.location).await?.bytes().await?;
            let n = bytes.len() as u64;
            to.store().put(&to.path(&rel), PutPayload::from(bytes)).await?;
            Ok::<_, crate::Error>((rel, n))
        }))
        .buffer_unordered(CONCURRENCY);
        let mut copies = std::pin::pin!(copies);
        while let Some(done) = copies.next().await {
            let (rel, n) = done?;
            report.copied += 1;
            report.bytes_copied += n;
            if let Some(v) = wanted.get(&rel) {
                manifest.objects.insert(rel, v.clone());
            }
        }
        for prefix in prefixes {
            let held: Vec<ObjectMeta> = to.store().list(Some(&to.path(prefix))).try_collect().await?;
            for meta in held {
                let Some(rel) = to.relative(&meta.location).map(|parts| parts.join("/")) else { continue };
                if !wanted.contains_key(&rel) {
                    to.store().delete(&meta.location).await?;
                    manifest.objects.remove(&rel);
                    report.removed += 1;
                }
            }
        }
        manifest.objects.retain(|rel, _| wanted.contains_key(rel) || !prefixes.iter().any(|p| rel.starts_with(p)));
        to.store().put(&to.path(MANIFEST), PutPayload::from(serde_json::to_vec(&manifest)?)).await?;
        Ok(report)
    }

    /// Writes `bytes` as `reports/<name>` (the scheduled report's output:
    /// aggregates only, no learner's id).
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] for a name that is not a plain file name
    /// under `reports/`; [`crate::Error::Store`] when the write fails.
    pub async fn put_report(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        if name.is_empty() || name.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(crate::Error::Invalid(format!("`{name}` is not a report file name")));
        }
        self.store().put(&self.path(&format!("{REPORTS}{name}")), PutPayload::from(bytes)).await?;
        Ok(())
    }
}

/// The folder of the scheduled report's output.
pub const REPORTS: &str = "reports/";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn put(lake: &Lake, rel: &str, body: &str) {
        lake.store().put(&lake.path(rel), PutPayload::from(body.as_bytes().to_vec())).await.unwrap();
    }

    async fn keys(lake: &Lake) -> Vec<String> {
        let all: Vec<ObjectMeta> = lake.store().list(None).try_collect().await.unwrap();
        let mut keys: Vec<String> =
            all.iter().filter_map(|m| lake.relative(&m.location).map(|p| p.join("/"))).collect();
        keys.sort();
        keys
    }

    #[tokio::test]
    async fn copies_what_changed_and_removes_what_is_gone_under_its_prefixes_only() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let from = Lake::open(a.path().to_str().unwrap()).unwrap();
        let to = Lake::open(b.path().to_str().unwrap()).unwrap();
        put(&from, "events/dt=2026-10-05/type=view/part-1.parquet", "one").await;
        put(&from, "events/dt=2026-10-05/type=view/part-2.parquet", "two").await;
        put(&from, "catalogue/items.json", "[]").await;
        put(&from, "privacy/erasures/job.json", "{}").await;
        let prefixes = ["events/", "catalogue/"];
        let first = from.mirror_to(&to, &prefixes).await.unwrap();
        assert_eq!((first.copied, first.unchanged, first.removed, first.bytes_copied), (3, 0, 0, 8));
        assert_eq!(
            keys(&to).await,
            [
                "catalogue/items.json",
                "events/dt=2026-10-05/type=view/part-1.parquet",
                "events/dt=2026-10-05/type=view/part-2.parquet",
                MANIFEST
            ]
        );
        // Nothing changed: nothing copied.
        let again = from.mirror_to(&to, &prefixes).await.unwrap();
        assert_eq!((again.copied, again.unchanged, again.removed), (0, 3, 0));
        // Compaction: two files become one; the catalogue is rewritten. A file of the
        // copy's own outside the prefixes stays.
        from.store().delete(&from.path("events/dt=2026-10-05/type=view/part-1.parquet")).await.unwrap();
        from.store().delete(&from.path("events/dt=2026-10-05/type=view/part-2.parquet")).await.unwrap();
        put(&from, "events/dt=2026-10-05/type=view/compacted.parquet", "onetwo").await;
        put(&from, "catalogue/items.json", "[{}]").await;
        put(&to, "elsewhere/keep.txt", "mine").await;
        let third = from.mirror_to(&to, &prefixes).await.unwrap();
        assert_eq!((third.copied, third.unchanged, third.removed), (2, 0, 2));
        assert_eq!(
            keys(&to).await,
            [
                "catalogue/items.json",
                "elsewhere/keep.txt",
                "events/dt=2026-10-05/type=view/compacted.parquet",
                MANIFEST
            ]
        );
        let got = to.store().get(&to.path("catalogue/items.json")).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], b"[{}]");
    }

    #[tokio::test]
    async fn reports_go_under_reports_and_odd_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        lake.put_report("index.html", b"<html>".to_vec()).await.unwrap();
        assert_eq!(keys(&lake).await, ["reports/index.html"]);
        for bad in ["", "../x", "a//b", "./x"] {
            assert!(lake.put_report(bad, Vec::new()).await.is_err(), "{bad}");
        }
    }
}
