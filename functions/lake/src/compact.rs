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

use std::collections::HashMap;

use chrono::Utc;
use object_store::{ObjectStoreExt, PutPayload};
use serde::Serialize;

use crate::events::{Codec, StoredEvent, encode_parquet};
use crate::{Lake, Result};

/// What a compaction run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactionReport {
    /// Partitions rewritten.
    pub partitions: usize,
    /// Files read (and removed).
    pub files_removed: usize,
    /// Rows read.
    pub rows_read: usize,
    /// Rows written (rows read minus duplicates).
    pub rows_written: usize,
}

impl Lake {
    /// Compacts every partition (see the module docs).
    pub async fn compact(&self) -> Result<CompactionReport> {
        let mut report = CompactionReport::default();
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
            let mut first: HashMap<&str, usize> = HashMap::new();
            for (i, e) in rows.iter().enumerate() {
                let keep = first.get(e.event.event_id.as_str()).is_none_or(|&j| e.received_at < rows[j].received_at);
                if keep {
                    first.insert(&e.event.event_id, i);
                }
            }
            if files.len() < 2 && first.len() == rows.len() {
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
            let bytes = encode_parquet(&kept, Codec::Zstd)?;
            let name = format!("compacted-{}-{}.parquet", Utc::now().timestamp_millis(), uuid::Uuid::new_v4().simple());
            let path = self.path(&format!("events/dt={dt}/type={t}/{name}"));
            self.store().put(&path, PutPayload::from(bytes)).await?;
            for o in &files {
                match self.store().delete(&o.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            report.partitions += 1;
            report.files_removed += files.len();
            report.rows_read += rows.len();
            report.rows_written += kept.len();
            tracing::info!(%dt, %t, files = files.len(), rows = rows.len(), kept = kept.len(), "partition compacted");
        }
        Ok(report)
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
        assert_eq!(r, CompactionReport { partitions: 1, files_removed: 2, rows_read: 4, rows_written: 3 });
        let rows = lake.scan_events().await.unwrap();
        assert_eq!(rows.len(), 4);
        let b = rows.iter().find(|e| e.event.event_id == "b").unwrap();
        assert_eq!(b.received_at, ev("b", EventType::View, 1, 0).received_at, "earliest copy kept");
        assert_eq!(lake.read_events().await.unwrap().len(), 4);
        // Idempotent.
        assert_eq!(lake.compact().await.unwrap(), CompactionReport::default());
    }
}
