//! The exposures table: what the edge showed, one row per recommendation
//! answer, as ingestion receives them (`POST /v1/exposures`):
//!
//! ```text
//! exposures/dt=YYYY-MM-DD/part-<received ms>-<uuid>.parquet
//! ```
//!
//! `dt` is the UTC day of the answer (`ts`). Columns ([`schema`]):
//! `recommendation_id`, `ts`, `received_at`, `user_id` (the learner's
//! pseudonym, null for an anonymous answer), `model_id`, `experiment`,
//! `variant`, `items` (the items shown, best first: position = index + 1)
//! and `key_name` (the ingest key that sent it). Reports join events to
//! exposures by `recommendation_id`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use knowedge_format::exposure::Exposure;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::events::{Codec, writer_properties};
use crate::{Error, Lake, Result};

/// Top folder of the table.
pub const TABLE: &str = "exposures";

/// An exposure as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredExposure {
    /// The answer's id.
    pub recommendation_id: String,
    /// When the edge answered.
    pub ts: DateTime<Utc>,
    /// When ingestion received it.
    pub received_at: DateTime<Utc>,
    /// The learner's pseudonym; `None` for an anonymous answer.
    pub user_id: Option<String>,
    /// The model that answered.
    pub model_id: String,
    /// Experiment name.
    pub experiment: Option<String>,
    /// Variant name.
    pub variant: Option<String>,
    /// The items shown, best first.
    pub items: Vec<String>,
    /// The configured name of the ingest key that sent it.
    pub key_name: Option<String>,
}

impl StoredExposure {
    /// The stored form of a checked exposure (`ts` defaults to `received_at`).
    pub fn new(e: Exposure, received_at: DateTime<Utc>, key_name: Option<String>) -> Self {
        StoredExposure {
            recommendation_id: e.recommendation_id,
            ts: e.ts.unwrap_or(received_at),
            received_at,
            user_id: (!e.user.is_empty()).then_some(e.user),
            model_id: e.model_id,
            experiment: e.experiment,
            variant: e.variant,
            items: e.items,
            key_name,
        }
    }
}

/// The Arrow schema of the table's files (`dt` lives in the path).
pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        s("recommendation_id", false),
        Field::new("ts", ts.clone(), false),
        Field::new("received_at", ts, false),
        s("user_id", true),
        s("model_id", false),
        s("experiment", true),
        s("variant", true),
        Field::new("items", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), false),
        s("key_name", true),
    ]))
}

pub(crate) fn encode(rows: &[&StoredExposure]) -> Result<Vec<u8>> {
    let n = rows.len();
    let strings = |f: &dyn Fn(&StoredExposure) -> Option<&str>| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, n * 24);
        for r in rows {
            b.append_option(f(r));
        }
        Arc::new(b.finish())
    };
    let times = |f: &dyn Fn(&StoredExposure) -> i64| -> ArrayRef {
        let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
        for r in rows {
            b.append_value(f(r));
        }
        Arc::new(b.finish())
    };
    let mut items =
        ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new("item", DataType::Utf8, true)));
    for r in rows {
        for i in &r.items {
            items.values().append_value(i);
        }
        items.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| Some(&r.recommendation_id)),
        times(&|r| r.ts.timestamp_millis()),
        times(&|r| r.received_at.timestamp_millis()),
        strings(&|r| r.user_id.as_deref()),
        strings(&|r| Some(&r.model_id)),
        strings(&|r| r.experiment.as_deref()),
        strings(&|r| r.variant.as_deref()),
        Arc::new(items.finish()),
        strings(&|r| r.key_name.as_deref()),
    ];
    let batch = RecordBatch::try_new(schema(), columns)?;
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema(), Some(writer_properties(Codec::Snappy)?))?;
    w.write(&batch)?;
    w.close()?;
    Ok(out)
}

pub(crate) fn decode(bytes: Bytes, path: &str) -> Result<Vec<StoredExposure>> {
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
        let opt = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_owned());
        let (id, user, model, experiment, variant) =
            (s("recommendation_id")?, s("user_id")?, s("model_id")?, s("experiment")?, s("variant")?);
        let key_name = batch.column_by_name("key_name").and_then(|a| a.as_any().downcast_ref::<StringArray>());
        let (ts, received_at) = (t("ts")?, t("received_at")?);
        let items = cast::<ListArray>(col("items")?, "items", path)?;
        let time = |ms: i64| {
            DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(|| corrupt(format!("timestamp {ms} out of range")))
        };
        for i in 0..batch.num_rows() {
            let shown = items.value(i);
            let shown = cast::<StringArray>(&shown, "items", path)?;
            out.push(StoredExposure {
                recommendation_id: id.value(i).to_owned(),
                ts: time(ts.value(i))?,
                received_at: time(received_at.value(i))?,
                user_id: opt(user, i),
                model_id: model.value(i).to_owned(),
                experiment: opt(experiment, i),
                variant: opt(variant, i),
                items: shown.iter().flatten().map(str::to_owned).collect(),
                key_name: key_name.and_then(|k| opt(k, i)),
            });
        }
    }
    Ok(out)
}

impl Lake {
    /// Writes exposures, one Parquet file per answer day. Returns the paths written.
    pub async fn write_exposures(&self, rows: &[StoredExposure]) -> Result<Vec<String>> {
        let mut days: BTreeMap<String, Vec<&StoredExposure>> = BTreeMap::new();
        for r in rows {
            days.entry(r.ts.format("%Y-%m-%d").to_string()).or_default().push(r);
        }
        let received = rows.iter().map(|r| r.received_at).max().unwrap_or_else(Utc::now);
        let mut written = Vec::with_capacity(days.len());
        for (dt, group) in days {
            let name = format!("part-{}-{}.parquet", received.timestamp_millis(), uuid::Uuid::new_v4().simple());
            let path = self.path(&format!("{TABLE}/dt={dt}/{name}"));
            self.store().put(&path, PutPayload::from(encode(&group)?)).await?;
            written.push(path.to_string());
        }
        Ok(written)
    }

    /// Reads every exposure, each `recommendation_id` once (the copy
    /// received first), sorted by time then id. Files that are not exposure
    /// files are skipped with a warning.
    pub async fn read_exposures(&self) -> Result<Vec<StoredExposure>> {
        let mut objects: Vec<_> = self.store().list(Some(&self.path(TABLE))).try_collect().await?;
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        let mut first: BTreeMap<String, StoredExposure> = BTreeMap::new();
        for o in objects {
            let Some(parts) = self.relative(&o.location) else { continue };
            if parts.len() != 3 || !parts[1].starts_with("dt=") || !parts[2].ends_with(".parquet") {
                self.skip(&o.location, &"not an exposure file (exposures/dt=…/*.parquet)");
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
                match first.get(&r.recommendation_id) {
                    Some(prev) if prev.received_at <= r.received_at => {}
                    _ => {
                        first.insert(r.recommendation_id.clone(), r);
                    }
                }
            }
        }
        let mut all: Vec<StoredExposure> = first.into_values().collect();
        all.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.recommendation_id.cmp(&b.recommendation_id)));
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) fn exposure(id: &str, user: Option<&str>, day: u32) -> StoredExposure {
        let ts: DateTime<Utc> = format!("2026-11-{day:02}T10:00:00Z").parse().unwrap();
        StoredExposure {
            recommendation_id: id.into(),
            ts,
            received_at: ts + chrono::TimeDelta::seconds(2),
            user_id: user.map(str::to_owned),
            model_id: "m-1".into(),
            experiment: Some("ranker".into()),
            variant: Some("b".into()),
            items: vec!["course-1".into(), "course-2".into()],
            key_name: Some("edge".into()),
        }
    }

    #[tokio::test]
    async fn exposures_round_trip_per_day_and_resent_ones_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let mut anonymous = exposure("r-2", None, 2);
        anonymous.experiment = None;
        anonymous.variant = None;
        anonymous.items.clear();
        let rows = vec![exposure("r-1", Some(&"ab".repeat(32)), 1), anonymous];
        let written = lake.write_exposures(&rows).await.unwrap();
        assert_eq!(written.len(), 2);
        assert!(written[0].contains("exposures/dt=2026-11-01/part-"), "{written:?}");
        let mut again = rows[0].clone();
        again.received_at += chrono::TimeDelta::minutes(1);
        lake.write_exposures(&[again]).await.unwrap();
        assert_eq!(lake.read_exposures().await.unwrap(), rows);
    }
}
