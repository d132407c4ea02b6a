//! The review sentiment table, kept next to the review events:
//!
//! ```text
//! review-sentiment/dt=YYYY-MM-DD/part-<scored ms>-<uuid>.parquet
//! ```
//!
//! One row per scored review event (`dt` is the UTC day of the review, as in
//! `events/dt=…/type=review/`), Parquet (zstd) with the Arrow schema of
//! [`schema`]: `event_id`, `item_id`, `ts`, `label`, `score`, `model_id`,
//! `scored_at`. A review scored again (say by a newer model) gets a new row;
//! [`Lake::read_review_sentiment`] returns the most recently scored row of
//! each review. SQL engines can do the same with
//! `max_by(…, scored_at) … group by event_id`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{Float32Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{Array, ArrayRef, Float32Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::{Error, Lake, Result};

/// Top folder of the table.
pub const TABLE: &str = "review-sentiment";

/// The sentiment of one review event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewSentiment {
    /// The review event's id.
    pub event_id: String,
    /// The item reviewed.
    pub item_id: Option<String>,
    /// When the review was written (the event's `ts`).
    pub ts: DateTime<Utc>,
    /// `positive`, `negative` or `neutral` (nothing to score).
    pub label: String,
    /// Probability that the review is positive (0.5 for neutral).
    pub score: f32,
    /// The sentiment model that scored it.
    pub model_id: String,
    /// When it was scored.
    pub scored_at: DateTime<Utc>,
}

/// The Arrow schema of the table's files (`dt` lives in the path).
pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("item_id", DataType::Utf8, true),
        Field::new("ts", ts.clone(), false),
        Field::new("label", DataType::Utf8, false),
        Field::new("score", DataType::Float32, false),
        Field::new("model_id", DataType::Utf8, false),
        Field::new("scored_at", ts, false),
    ]))
}

pub(crate) fn encode(rows: &[&ReviewSentiment]) -> Result<Vec<u8>> {
    let n = rows.len();
    let strings = |f: &dyn Fn(&ReviewSentiment) -> Option<&str>| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, n * 24);
        for r in rows {
            b.append_option(f(r));
        }
        Arc::new(b.finish())
    };
    let times = |f: &dyn Fn(&ReviewSentiment) -> i64| -> ArrayRef {
        let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
        for r in rows {
            b.append_value(f(r));
        }
        Arc::new(b.finish())
    };
    let mut score = Float32Builder::with_capacity(n);
    for r in rows {
        score.append_value(r.score);
    }
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| Some(&r.event_id)),
        strings(&|r| r.item_id.as_deref()),
        times(&|r| r.ts.timestamp_millis()),
        strings(&|r| Some(&r.label)),
        Arc::new(score.finish()),
        strings(&|r| Some(&r.model_id)),
        times(&|r| r.scored_at.timestamp_millis()),
    ];
    let batch = RecordBatch::try_new(schema(), columns)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_created_by(concat!("knowedge-lake ", env!("CARGO_PKG_VERSION")).into())
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema(), Some(props))?;
    w.write(&batch)?;
    w.close()?;
    Ok(out)
}

pub(crate) fn decode(bytes: Bytes, path: &str) -> Result<Vec<ReviewSentiment>> {
    let corrupt = |reason: String| Error::Corrupt { path: path.to_owned(), reason };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        let col = |name: &str| batch.column_by_name(name).ok_or_else(|| corrupt(format!("missing column {name}")));
        fn cast<'a, T: 'static>(a: &'a ArrayRef, name: &str, path: &str) -> Result<&'a T> {
            a.as_any().downcast_ref::<T>().ok_or_else(|| Error::Corrupt {
                path: path.into(),
                reason: format!("column {name} has type {}", a.data_type()),
            })
        }
        let s = |name: &str| -> Result<&StringArray> { cast::<StringArray>(col(name)?, name, path) };
        let t = |name: &str| -> Result<&TimestampMillisecondArray> {
            cast::<TimestampMillisecondArray>(col(name)?, name, path)
        };
        let (event_id, item_id, label, model_id) = (s("event_id")?, s("item_id")?, s("label")?, s("model_id")?);
        let (ts, scored_at) = (t("ts")?, t("scored_at")?);
        let score = cast::<Float32Array>(col("score")?, "score", path)?;
        let time = |ms: i64| {
            DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(|| corrupt(format!("timestamp {ms} out of range")))
        };
        for i in 0..batch.num_rows() {
            out.push(ReviewSentiment {
                event_id: event_id.value(i).to_owned(),
                item_id: (!item_id.is_null(i)).then(|| item_id.value(i).to_owned()),
                ts: time(ts.value(i))?,
                label: label.value(i).to_owned(),
                score: score.value(i),
                model_id: model_id.value(i).to_owned(),
                scored_at: time(scored_at.value(i))?,
            });
        }
    }
    Ok(out)
}

impl Lake {
    /// Writes scored reviews, one Parquet file per review day. Returns the paths written.
    pub async fn write_review_sentiment(&self, rows: &[ReviewSentiment]) -> Result<Vec<String>> {
        let mut days: std::collections::BTreeMap<String, Vec<&ReviewSentiment>> = Default::default();
        for r in rows {
            days.entry(r.ts.format("%Y-%m-%d").to_string()).or_default().push(r);
        }
        let scored = rows.iter().map(|r| r.scored_at).max().unwrap_or_else(Utc::now);
        let mut written = Vec::with_capacity(days.len());
        for (dt, group) in days {
            let name = format!("part-{}-{}.parquet", scored.timestamp_millis(), uuid::Uuid::new_v4().simple());
            let path = self.path(&format!("{TABLE}/dt={dt}/{name}"));
            self.store().put(&path, PutPayload::from(encode(&group)?)).await?;
            written.push(path.to_string());
        }
        Ok(written)
    }

    /// Reads the table: per review event, its most recently scored row
    /// (ties: the later file). Sorted by review time, then event id.
    pub async fn read_review_sentiment(&self) -> Result<Vec<ReviewSentiment>> {
        let mut objects: Vec<_> = self.store().list(Some(&self.path(TABLE))).try_collect().await?;
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        let mut latest: HashMap<String, ReviewSentiment> = HashMap::new();
        for o in objects {
            let Some(parts) = self.relative(&o.location) else { continue };
            if parts.len() != 3 || !parts[1].starts_with("dt=") || !parts[2].ends_with(".parquet") {
                self.skip(&o.location, &"not a review sentiment file (review-sentiment/dt=…/*.parquet)");
                continue;
            }
            let bytes = self.store().get(&o.location).await?.bytes().await?;
            let rows = match decode(bytes, o.location.as_ref()) {
                Ok(rows) => rows,
                Err(e @ (Error::Parquet(_) | Error::Arrow(_) | Error::Corrupt { .. })) => {
                    self.skip(&o.location, &knowedge_format::error::chain(&e));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for r in rows {
                match latest.get(&r.event_id) {
                    Some(prev) if prev.scored_at > r.scored_at => {}
                    _ => {
                        latest.insert(r.event_id.clone(), r);
                    }
                }
            }
        }
        let mut all: Vec<ReviewSentiment> = latest.into_values().collect();
        all.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.event_id.cmp(&b.event_id)));
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(id: &str, day: u32, label: &str, score: f32, model: &str, scored_s: i64) -> ReviewSentiment {
        ReviewSentiment {
            event_id: id.into(),
            item_id: Some("course-1".into()),
            ts: DateTime::parse_from_rfc3339(&format!("2026-11-{day:02}T10:00:00Z")).unwrap().with_timezone(&Utc),
            label: label.into(),
            score,
            model_id: model.into(),
            scored_at: DateTime::<Utc>::from_timestamp(1_764_000_000 + scored_s, 0).unwrap(),
        }
    }

    #[tokio::test]
    async fn round_trip_partitioned_and_latest_wins() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        assert!(lake.read_review_sentiment().await.unwrap().is_empty());
        let a = row("a", 1, "positive", 0.9, "m1", 0);
        let mut b = row("b", 2, "negative", 0.1, "m1", 0);
        b.item_id = None;
        assert_eq!(lake.write_review_sentiment(&[a.clone(), b.clone()]).await.unwrap().len(), 2);
        assert!(dir.path().join("review-sentiment/dt=2026-11-02").is_dir());
        // Scored again by a newer model: the newer row wins.
        let b2 = row("b", 2, "positive", 0.6, "m2", 60);
        lake.write_review_sentiment(std::slice::from_ref(&b2)).await.unwrap();
        assert_eq!(lake.read_review_sentiment().await.unwrap(), vec![a, b2]);
        // The events reader does not see the table.
        assert!(lake.read_events().await.unwrap().is_empty());
    }
}
