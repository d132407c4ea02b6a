//! Compaction: one file per partition, each event once.
//!
//! Ingestion writes one small file per batch and partition, and a client
//! that re-sends a batch (after a timeout, to another Lambda instance) writes
//! the same events again. Readers through [`Lake::read_events`] count each
//! `event_id` once at any time; compaction makes the files themselves hold
//! each event once, for plain Parquet readers (Athena, Spark, DuckDB).
//!
//! Per partition with more than one file or any duplicate, it reads the files
//! it listed, keeps the earliest received copy of each `event_id`, writes one
//! `compacted-…` file (zstd; durable before the next step), then deletes exactly
//! the files it read. Files written meanwhile are left for the next run. A
//! crash between the write and the deletes leaves duplicates that readers
//! still count once and the next run removes. Concurrent compactions of the
//! same lake are not supported: schedule one at a time.
//!
//! Retention ([`CompactOptions`]): events whose `ts` is older than the
//! retention period are dropped while their partition is rewritten (a
//! partition left empty loses its files), review sentiment rows of reviews
//! that old go with them, and dead letters received before the dead-letter
//! retention period are dropped from their files (new file first, then the
//! old one removed). Unset periods keep everything; the report counts what
//! was dropped.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use serde::Serialize;

use crate::events::DeadLetter;
use crate::events::{Codec, StoredEvent, encode_parquet};
use crate::{Error, Lake, Result};

/// What a compaction run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactionReport {
    /// Partitions rewritten.
    pub partitions: usize,
    /// Files read (and removed).
    pub files_removed: usize,
    /// Rows read.
    pub rows_read: usize,
    /// Rows written (rows read minus duplicates and expired events).
    pub rows_written: usize,
    /// Events dropped because they were older than the retention period.
    pub events_expired: usize,
    /// Review sentiment rows dropped with their expired reviews.
    pub review_sentiment_expired: usize,
    /// Dead letters dropped because they were older than their retention period.
    pub dead_letters_expired: usize,
}

/// What a compaction run keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactOptions {
    /// Drop events whose `ts` is more than this many days before `now` (`None`: keep forever).
    pub retention_days: Option<u32>,
    /// Drop dead letters received more than this many days before `now` (`None`: keep forever).
    pub dead_letter_retention_days: Option<u32>,
    /// The time the periods count back from (`None`: the current time).
    pub now: Option<DateTime<Utc>>,
}

impl CompactOptions {
    /// The periods from `KNOWEDGE_RETENTION_DAYS` and
    /// `KNOWEDGE_DEAD_LETTER_RETENTION_DAYS` (unset or empty: keep forever).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`CompactOptions::from_env`] reading the periods through `var`
    /// (for instance a function's [`crate::deploy::Settings::lookup`]).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let days = |name: &str| -> Result<Option<u32>> {
            match var(name) {
                Some(v) if !v.trim().is_empty() => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| Error::Invalid(format!("{name} must be a whole number of days, not `{v}`"))),
                _ => Ok(None),
            }
        };
        Ok(Self {
            retention_days: days("KNOWEDGE_RETENTION_DAYS")?,
            dead_letter_retention_days: days("KNOWEDGE_DEAD_LETTER_RETENTION_DAYS")?,
            now: None,
        })
    }

    fn cutoff(&self, days: Option<u32>) -> Option<DateTime<Utc>> {
        days.map(|d| self.now.unwrap_or_else(Utc::now) - TimeDelta::days(i64::from(d)))
    }
}

impl Lake {
    /// Compacts every partition, keeping everything (see the module docs).
    pub async fn compact(&self) -> Result<CompactionReport> {
        self.compact_with(&CompactOptions::default()).await
    }

    /// Compacts every partition and applies the retention periods of `options`.
    pub async fn compact_with(&self, options: &CompactOptions) -> Result<CompactionReport> {
        let mut report = CompactionReport::default();
        let cutoff = options.cutoff(options.retention_days);
        for ((dt, t), files) in self.event_files().await? {
            let mut rows: Vec<StoredEvent> = Vec::new();
            // Only the files read are replaced: an unreadable one is left as it is.
            let mut read = Vec::with_capacity(files.len());
            for o in files {
                if let Some(r) = self.read_file_or_skip(&o, t).await? {
                    rows.extend(r);
                    read.push(o);
                }
            }
            let files = read;
            let before = rows.len();
            if let Some(cutoff) = cutoff {
                rows.retain(|e| e.event.ts >= cutoff);
            }
            let expired = before - rows.len();
            let mut first: HashMap<&str, usize> = HashMap::new();
            for (i, e) in rows.iter().enumerate() {
                let keep = first.get(e.event.event_id.as_str()).is_none_or(|&j| e.received_at < rows[j].received_at);
                if keep {
                    first.insert(&e.event.event_id, i);
                }
            }
            if files.len() < 2 && first.len() == rows.len() && expired == 0 {
                continue;
            }
            let mut keep: Vec<usize> = first.into_values().collect();
            keep.sort_by(|&a, &b| {
                rows[a]
                    .event
                    .ts
                    .cmp(&rows[b].event.ts)
                    .then_with(|| rows[a].event.event_id.cmp(&rows[b].event.event_id))
            });
            let kept: Vec<&StoredEvent> = keep.iter().map(|&i| &rows[i]).collect();
            if !kept.is_empty() {
                let bytes = encode_parquet(&kept, Codec::Zstd)?;
                let name =
                    format!("compacted-{}-{}.parquet", Utc::now().timestamp_millis(), uuid::Uuid::new_v4().simple());
                let path = self.path(&format!("events/dt={dt}/type={t}/{name}"));
                self.store().put(&path, PutPayload::from(bytes)).await?;
            }
            for o in &files {
                match self.store().delete(&o.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            report.partitions += 1;
            report.files_removed += files.len();
            report.rows_read += before;
            report.rows_written += kept.len();
            report.events_expired += expired;
            tracing::info!(%dt, %t, files = files.len(), rows = before, kept = kept.len(), expired, "partition compacted");
        }
        if let Some(cutoff) = cutoff {
            report.review_sentiment_expired = self.expire_review_sentiment(cutoff).await?;
        }
        if let Some(cutoff) = options.cutoff(options.dead_letter_retention_days) {
            report.dead_letters_expired = self.expire_dead_letters(cutoff).await?;
        }
        Ok(report)
    }

    /// Drops review sentiment rows of reviews written before `cutoff`; returns how many.
    async fn expire_review_sentiment(&self, cutoff: DateTime<Utc>) -> Result<usize> {
        let objects: Vec<_> = self.store().list(Some(&self.path(crate::sentiment::TABLE))).try_collect().await?;
        let mut dropped = 0;
        for o in objects {
            if !o.location.as_ref().ends_with(".parquet") {
                continue;
            }
            let bytes = self.store().get(&o.location).await?.bytes().await?;
            let rows = crate::sentiment::decode(bytes, o.location.as_ref())?;
            let kept: Vec<_> = rows.iter().filter(|r| r.ts >= cutoff).collect();
            if kept.len() == rows.len() {
                continue;
            }
            dropped += rows.len() - kept.len();
            self.replace_object(&o.location, (!kept.is_empty()).then(|| crate::sentiment::encode(&kept)).transpose()?)
                .await?;
        }
        Ok(dropped)
    }

    /// Drops dead letters received before `cutoff`; returns how many.
    async fn expire_dead_letters(&self, cutoff: DateTime<Utc>) -> Result<usize> {
        let objects: Vec<_> = self.store().list(Some(&self.path("dead-letter"))).try_collect().await?;
        let mut dropped = 0;
        for o in objects {
            let bytes = self.store().get(&o.location).await?.bytes().await?;
            let mut kept = Vec::with_capacity(bytes.len());
            let mut removed = 0;
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let letter: DeadLetter = serde_json::from_slice(line)?;
                if letter.received_at < cutoff {
                    removed += 1;
                } else {
                    kept.extend_from_slice(line);
                    kept.push(b'\n');
                }
            }
            if removed == 0 {
                continue;
            }
            dropped += removed;
            self.replace_object(&o.location, (!kept.is_empty()).then_some(kept)).await?;
        }
        Ok(dropped)
    }

    /// Replaces an object by new content under a fresh name beside it (the
    /// new object is durable before the old one is removed), or removes it
    /// when there is no content left. Returns the new object's path.
    pub(crate) async fn replace_object(
        &self,
        old: &object_store::path::Path,
        content: Option<Vec<u8>>,
    ) -> Result<Option<object_store::path::Path>> {
        let new = match content {
            Some(bytes) => {
                let name = old.filename().unwrap_or("part");
                let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "bin"));
                let stem = stem.split(".r").next().unwrap_or(stem);
                let fresh =
                    format!("{stem}.r{}-{}.{ext}", Utc::now().timestamp_millis(), uuid::Uuid::new_v4().simple());
                let mut parts: Vec<_> = old.parts().collect();
                parts.pop();
                let path = parts.into_iter().collect::<object_store::path::Path>().join(fresh.as_str());
                self.store().put(&path, PutPayload::from(bytes)).await?;
                Some(path)
            }
            None => None,
        };
        match self.store().delete(old).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::tests::ev;
    use knowedge_format::event::EventType;

    #[tokio::test]
    async fn merges_files_and_drops_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        lake.write_events(&[ev("a", EventType::View, 1, 0), ev("b", EventType::View, 1, 0)]).await.unwrap();
        lake.write_events(&[ev("b", EventType::View, 1, 5), ev("c", EventType::View, 1, 5)]).await.unwrap();
        lake.write_events(&[ev("d", EventType::Purchase, 2, 5)]).await.unwrap();
        assert_eq!(lake.scan_events().await.unwrap().len(), 5);
        let r = lake.compact().await.unwrap();
        assert_eq!(
            r,
            CompactionReport { partitions: 1, files_removed: 2, rows_read: 4, rows_written: 3, ..Default::default() }
        );
        let rows = lake.scan_events().await.unwrap();
        assert_eq!(rows.len(), 4);
        let b = rows.iter().find(|e| e.event.event_id == "b").unwrap();
        assert_eq!(b.received_at, ev("b", EventType::View, 1, 0).received_at, "earliest copy kept");
        assert_eq!(lake.read_events().await.unwrap().len(), 4);
        // Idempotent.
        assert_eq!(lake.compact().await.unwrap(), CompactionReport::default());
    }

    #[tokio::test]
    async fn retention_drops_old_events_sentiment_and_dead_letters() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        // Days 1 and 2 are old, day 20 is recent; one partition mixes nothing, one file holds both ages.
        lake.write_events(&[ev("old1", EventType::View, 1, 0), ev("old2", EventType::Review, 2, 0)]).await.unwrap();
        lake.write_events(&[ev("new1", EventType::View, 20, 0), ev("new2", EventType::Review, 20, 0)]).await.unwrap();
        let row = |id: &str, day: u32| crate::ReviewSentiment {
            event_id: id.into(),
            item_id: None,
            ts: ev(id, EventType::Review, day, 0).event.ts,
            label: "positive".into(),
            score: 0.9,
            model_id: "s".into(),
            scored_at: Utc::now(),
        };
        lake.write_review_sentiment(&[row("old2", 2), row("new2", 20)]).await.unwrap();
        let letter = |days_ago: i64, now: DateTime<Utc>| DeadLetter {
            received_at: now - TimeDelta::days(days_ago),
            index: 0,
            raw: serde_json::json!({"rating": 9}),
            raw_sha256: None,
            problems: Vec::new(),
            dropped_fields: Vec::new(),
            dropped_unnamed: 0,
            key_name: None,
        };
        let now = ev("x", EventType::View, 25, 0).event.ts;
        lake.write_dead_letters(&[letter(40, now), letter(1, now)]).await.unwrap();
        lake.write_dead_letters(&[letter(50, now)]).await.unwrap();

        // Unset periods keep everything.
        let keep = lake.compact_with(&CompactOptions { now: Some(now), ..Default::default() }).await.unwrap();
        assert_eq!((keep.events_expired, keep.dead_letters_expired, keep.review_sentiment_expired), (0, 0, 0));
        let opts = CompactOptions { retention_days: Some(10), dead_letter_retention_days: Some(30), now: Some(now) };
        let r = lake.compact_with(&opts).await.unwrap();
        assert_eq!((r.events_expired, r.review_sentiment_expired, r.dead_letters_expired), (2, 1, 2));
        let ids: Vec<String> = lake.read_events().await.unwrap().into_iter().map(|e| e.event.event_id).collect();
        assert_eq!(ids, ["new1", "new2"]);
        assert_eq!(lake.read_review_sentiment().await.unwrap().len(), 1);
        let letters = lake.read_dead_letters().await.unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].received_at, now - TimeDelta::days(1));
        assert!(
            !dir.path().join("events/dt=2026-11-01").read_dir().unwrap().flatten().any(|d| d
                .path()
                .read_dir()
                .unwrap()
                .next()
                .is_some())
        );
        // Nothing left to drop.
        let again = lake.compact_with(&opts).await.unwrap();
        assert_eq!((again.events_expired, again.dead_letters_expired), (0, 0));
    }
}
