//! Event files: Arrow schema, Parquet encoding, partitioned writes and
//! de-duplicating reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{Float64Builder, Int32Builder, StringBuilder};
use arrow_array::{Array, ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use knowedge_format::event::{Event, EventType, Problem};
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::SchemaDescriptor;
use serde::{Deserialize, Serialize};

use crate::{Error, Lake, Result};

/// An accepted event as stored: user id already pseudonymised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The event (its `user_id` is a pseudonym).
    pub event: Event,
    /// When ingestion accepted it.
    pub received_at: DateTime<Utc>,
    /// Personal data items redacted from its text or query.
    #[serde(default)]
    pub redactions: u32,
    /// The configured name of the API key that sent it (never the secret);
    /// `None` without authentication and in files written before the
    /// `key_name` column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
}

/// A rejected event kept aside with its reasons.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// Position in its batch.
    pub index: usize,
    /// What the dead-letter policy keeps of the event
    /// ([`knowedge_format::deadletter`]: allowlisted fields, ids
    /// pseudonymised, texts redacted); `null` when the element was not valid
    /// JSON (its raw bytes may hold personal data that cannot be found reliably).
    pub raw: serde_json::Value,
    /// SHA-256 of the element's raw bytes, when it was not valid JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_sha256: Option<String>,
    /// Every problem found (field names and messages as the dead-letter
    /// policy keeps them).
    pub problems: Vec<Problem>,
    /// Names of the fields dropped by the dead-letter policy (harmless names only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_fields: Vec<String>,
    /// How many dropped fields had names that are not kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_unnamed: usize,
    /// The configured name of the API key that sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The Arrow schema of event files (partition columns `dt` and `type` live in the path).
pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        s("event_id", false),
        s("user_id", false),
        s("item_id", true),
        Field::new("ts", ts.clone(), false),
        Field::new("received_at", ts, false),
        Field::new("price", DataType::Float64, true),
        s("currency", true),
        Field::new("rating", DataType::Int32, true),
        Field::new("progress", DataType::Float64, true),
        s("text", true),
        s("query", true),
        s("session_id", true),
        s("experiment", true),
        s("variant", true),
        s("recommendation_id", true),
        Field::new("schema_version", DataType::Int32, false),
        Field::new("pii_redactions", DataType::Int32, false),
        s("key_name", true),
    ]))
}

/// Compression of an event file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Snappy: for the small files ingestion writes per batch. Its per-file
    /// cost is tiny, where a zstd codec context per column chunk costs about
    /// a millisecond per file, which would cap ingestion far below its target.
    Snappy,
    /// zstd level 3: for compacted partition files, which are what stays.
    Zstd,
}

/// The Parquet writer settings of an event file. Per-batch files (Snappy)
/// skip dictionary encoding and page-level statistics (column and offset
/// indexes): on files of a few hundred rows they cost more than they save
/// (about 27 % of the encoding time), and compaction rewrites these files
/// anyway. Row-group (chunk) statistics stay, for readers that prune.
/// Compacted files (zstd) keep every default.
pub fn writer_properties(codec: Codec) -> Result<WriterProperties> {
    let b = WriterProperties::builder().set_created_by(concat!("knowedge-lake ", env!("CARGO_PKG_VERSION")).into());
    Ok(match codec {
        Codec::Snappy => b
            .set_compression(Compression::SNAPPY)
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::Chunk),
        Codec::Zstd => b.set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?)),
    }
    .build())
}

/// What every event file shares, built once: the Arrow schema, its Parquet
/// schema and the writer settings of each codec.
struct FileLayout {
    arrow: SchemaRef,
    parquet: SchemaDescriptor,
    snappy: WriterProperties,
    zstd: WriterProperties,
}

fn file_layout() -> Result<&'static FileLayout> {
    static LAYOUT: OnceLock<FileLayout> = OnceLock::new();
    if let Some(l) = LAYOUT.get() {
        return Ok(l);
    }
    let arrow = schema();
    let snappy = writer_properties(Codec::Snappy)?;
    let zstd = writer_properties(Codec::Zstd)?;
    // As `ArrowWriter` derives it (both codecs share the type coercion setting).
    debug_assert_eq!(snappy.coerce_types(), zstd.coerce_types());
    let parquet = ArrowSchemaConverter::new().with_coerce_types(snappy.coerce_types()).convert(&arrow)?;
    Ok(LAYOUT.get_or_init(|| FileLayout { arrow, parquet, snappy, zstd }))
}

/// Encodes events of one partition as a Parquet file.
pub fn encode_parquet(events: &[&StoredEvent], codec: Codec) -> Result<Vec<u8>> {
    let layout = file_layout()?;
    let batch = record_batch(events, layout.arrow.clone())?;
    let props = match codec {
        Codec::Snappy => layout.snappy.clone(),
        Codec::Zstd => layout.zstd.clone(),
    };
    // Room for the data (compressed or not) and the footer, so the file is not copied as it grows.
    let data: usize = batch.columns().iter().map(|c| c.get_buffer_memory_size()).sum();
    let mut out = Vec::with_capacity(data + 16 * 1024);
    let opts = ArrowWriterOptions::new()
        .with_properties(props)
        .with_skip_arrow_metadata(true)
        .with_parquet_schema(layout.parquet.clone());
    let mut w = ArrowWriter::try_new_with_options(&mut out, layout.arrow.clone(), opts)?;
    w.write(&batch)?;
    w.close()?;
    Ok(out)
}

/// The events as one Arrow record batch of `schema` (see [`schema`]).
fn record_batch(events: &[&StoredEvent], schema: SchemaRef) -> Result<RecordBatch> {
    let n = events.len();
    let redactions: Vec<i32> = events.iter().map(|e| i32::try_from(e.redactions).unwrap_or(i32::MAX)).collect();
    let rating: ArrayRef = if events.iter().all(|e| e.event.rating.is_none()) {
        Arc::new(Int32Array::new_null(n))
    } else {
        let mut rating = Int32Builder::with_capacity(n);
        for e in events {
            rating.append_option(e.event.rating.map(i32::from));
        }
        Arc::new(rating.finish())
    };
    let version = Int32Array::from_value(knowedge_format::event::SCHEMA_VERSION as i32, n);
    let columns: Vec<ArrayRef> = vec![
        strings(events, |e| Some(&e.event.event_id)),
        strings(events, |e| Some(&e.event.user_id)),
        strings(events, |e| e.event.item_id.as_deref()),
        times(events, |e| e.event.ts.timestamp_millis()),
        times(events, |e| e.received_at.timestamp_millis()),
        floats(events, |e| e.event.price),
        strings(events, |e| e.event.currency.as_deref()),
        rating,
        floats(events, |e| e.event.progress),
        strings(events, |e| e.event.text.as_deref()),
        strings(events, |e| e.event.query.as_deref()),
        strings(events, |e| e.event.session_id.as_deref()),
        strings(events, |e| e.event.experiment.as_deref()),
        strings(events, |e| e.event.variant.as_deref()),
        strings(events, |e| e.event.recommendation_id.as_deref()),
        Arc::new(version),
        Arc::new(Int32Array::from(redactions)),
        strings(events, |e| e.key_name.as_deref()),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

// Columns of other event types are all null in a partition: those skip the builders.

fn strings<'e>(events: &[&'e StoredEvent], f: impl Fn(&'e StoredEvent) -> Option<&'e str>) -> ArrayRef {
    let (mut bytes, mut present) = (0, false);
    for e in events {
        if let Some(s) = f(e) {
            bytes += s.len();
            present = true;
        }
    }
    if !present {
        return Arc::new(StringArray::new_null(events.len()));
    }
    let mut b = StringBuilder::with_capacity(events.len(), bytes);
    for e in events {
        b.append_option(f(e));
    }
    Arc::new(b.finish())
}

fn floats(events: &[&StoredEvent], f: impl Fn(&StoredEvent) -> Option<f64>) -> ArrayRef {
    if events.iter().all(|e| f(e).is_none()) {
        return Arc::new(Float64Array::new_null(events.len()));
    }
    let mut b = Float64Builder::with_capacity(events.len());
    for e in events {
        b.append_option(f(e));
    }
    Arc::new(b.finish())
}

fn times(events: &[&StoredEvent], f: impl Fn(&StoredEvent) -> i64) -> ArrayRef {
    let millis: Vec<i64> = events.iter().map(|e| f(e)).collect();
    Arc::new(TimestampMillisecondArray::from(millis).with_timezone("UTC"))
}

/// Decodes an event file of partition `event_type`.
pub fn decode_parquet(bytes: Bytes, event_type: EventType, path: &str) -> Result<Vec<StoredEvent>> {
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
        let f = |name: &str| -> Result<&Float64Array> { cast::<Float64Array>(col(name)?, name, path) };
        let t = |name: &str| -> Result<&TimestampMillisecondArray> {
            cast::<TimestampMillisecondArray>(col(name)?, name, path)
        };
        let (event_id, user_id, item_id) = (s("event_id")?, s("user_id")?, s("item_id")?);
        let (ts, received) = (t("ts")?, t("received_at")?);
        let (price, currency, progress) = (f("price")?, s("currency")?, f("progress")?);
        let rating = cast::<Int32Array>(col("rating")?, "rating", path)?;
        let redactions = cast::<Int32Array>(col("pii_redactions")?, "pii_redactions", path)?;
        let (text, query, session) = (s("text")?, s("query")?, s("session_id")?);
        let (experiment, variant, rec) = (s("experiment")?, s("variant")?, s("recommendation_id")?);
        // Files written before the column have no `key_name`.
        let key_name = match batch.column_by_name("key_name") {
            Some(a) => Some(cast::<StringArray>(a, "key_name", path)?),
            None => None,
        };
        let opt_s = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_owned());
        let opt_f = |a: &Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
        let time = |ms: i64| {
            DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(|| corrupt(format!("timestamp {ms} out of range")))
        };
        for i in 0..batch.num_rows() {
            out.push(StoredEvent {
                event: Event {
                    event_id: event_id.value(i).to_owned(),
                    event_type,
                    user_id: user_id.value(i).to_owned(),
                    item_id: opt_s(item_id, i),
                    ts: time(ts.value(i))?,
                    price: opt_f(price, i),
                    currency: opt_s(currency, i),
                    rating: (!rating.is_null(i)).then(|| rating.value(i).clamp(0, 255) as u8),
                    progress: opt_f(progress, i),
                    text: opt_s(text, i),
                    query: opt_s(query, i),
                    session_id: opt_s(session, i),
                    experiment: opt_s(experiment, i),
                    variant: opt_s(variant, i),
                    recommendation_id: opt_s(rec, i),
                },
                received_at: time(received.value(i))?,
                redactions: u32::try_from(redactions.value(i)).unwrap_or(0),
                key_name: key_name.and_then(|a| opt_s(a, i)),
            });
        }
    }
    Ok(out)
}

/// Encodes events into their partition files: (path relative to the lake, Parquet bytes).
pub fn partition_files(events: &[StoredEvent]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut parts: BTreeMap<(chrono::NaiveDate, EventType), Vec<&StoredEvent>> = BTreeMap::new();
    for e in events {
        parts.entry((e.event.ts.date_naive(), e.event.event_type)).or_default().push(e);
    }
    let received = events.iter().map(|e| e.received_at).max().unwrap_or_else(Utc::now);
    parts
        .into_iter()
        .map(|((dt, t), group)| {
            let rel = format!("events/dt={}/type={t}/{}", dt.format("%Y-%m-%d"), part_name(received, "parquet"));
            Ok((rel, encode_parquet(&group, Codec::Snappy)?))
        })
        .collect()
}

fn part_name(received_at: DateTime<Utc>, ext: &str) -> String {
    format!("part-{}-{}.{ext}", received_at.timestamp_millis(), uuid::Uuid::new_v4().simple())
}

impl Lake {
    /// Writes accepted events, one Parquet file per (`dt`, `type`) partition.
    /// Returns when every file is durable; returns the paths written.
    pub async fn write_events(&self, events: &[StoredEvent]) -> Result<Vec<String>> {
        let mut written = Vec::new();
        for (rel, bytes) in partition_files(events)? {
            let path = self.path(&rel);
            self.store().put(&path, PutPayload::from(bytes)).await?;
            written.push(path.to_string());
        }
        Ok(written)
    }

    /// Keeps rejected events aside (`dead-letter/dt=<receive day>/`).
    pub async fn write_dead_letters(&self, letters: &[DeadLetter]) -> Result<Option<String>> {
        let Some(first) = letters.first() else { return Ok(None) };
        let mut body = Vec::new();
        for l in letters {
            serde_json::to_writer(&mut body, l)?;
            body.push(b'\n');
        }
        let rel = format!(
            "dead-letter/dt={}/{}",
            first.received_at.format("%Y-%m-%d"),
            part_name(first.received_at, "ndjson")
        );
        let path = self.path(&rel);
        self.store().put(&path, PutPayload::from(body)).await?;
        Ok(Some(path.to_string()))
    }

    /// Reads every dead letter. A file that is not NDJSON of dead letters
    /// is skipped with a warning (its readable lines are kept).
    pub async fn read_dead_letters(&self) -> Result<Vec<DeadLetter>> {
        let mut out = Vec::new();
        let objects: Vec<_> = self.store().list(Some(&self.path("dead-letter"))).try_collect().await?;
        for o in objects {
            if !o.location.as_ref().ends_with(".ndjson") {
                self.skip(&o.location, &"not a dead-letter file (dead-letter/dt=…/*.ndjson)");
                continue;
            }
            let bytes = self.store().get(&o.location).await?.bytes().await?;
            let mut bad = 0usize;
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                match serde_json::from_slice(line) {
                    Ok(l) => out.push(l),
                    Err(_) => bad += 1,
                }
            }
            if bad > 0 {
                self.skip(&o.location, &format_args!("{bad} lines are not dead letters"));
            }
        }
        Ok(out)
    }

    /// Every event file, grouped by partition (`dt=…/type=…`), sorted.
    /// Anything else under `events/` is skipped with a warning.
    pub(crate) async fn event_files(&self) -> Result<BTreeMap<(String, EventType), Vec<object_store::ObjectMeta>>> {
        let objects: Vec<_> = self.store().list(Some(&self.path("events"))).try_collect().await?;
        let mut out: BTreeMap<(String, EventType), Vec<object_store::ObjectMeta>> = BTreeMap::new();
        for o in objects {
            let Some(parts) = self.relative(&o.location) else { continue };
            // events / dt=... / type=... / part-....parquet
            let partition = (parts.len() == 4 && parts[3].ends_with(".parquet"))
                .then(|| (parts[1].strip_prefix("dt="), parts[2].strip_prefix("type=").and_then(EventType::parse)));
            let Some((Some(dt), Some(t))) = partition else {
                self.skip(&o.location, &"not an event file (events/dt=…/type=…/*.parquet)");
                continue;
            };
            out.entry((dt.to_owned(), t)).or_default().push(o);
        }
        for files in out.values_mut() {
            files.sort_by(|a, b| a.location.cmp(&b.location));
        }
        Ok(out)
    }

    pub(crate) async fn read_file(&self, o: &object_store::ObjectMeta, t: EventType) -> Result<Vec<StoredEvent>> {
        let bytes = self.store().get(&o.location).await?.bytes().await?;
        decode_parquet(bytes, t, o.location.as_ref())
    }

    /// [`Lake::read_file`], or `None` (with a warning, counted) when the
    /// file is not a readable event file; store errors are returned.
    pub(crate) async fn read_file_or_skip(
        &self,
        o: &object_store::ObjectMeta,
        t: EventType,
    ) -> Result<Option<Vec<StoredEvent>>> {
        match self.read_file(o, t).await {
            Ok(rows) => Ok(Some(rows)),
            Err(e @ (Error::Parquet(_) | Error::Arrow(_) | Error::Corrupt { .. })) => {
                self.skip(&o.location, &knowedge_format::error::chain(&e));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Every stored row, duplicates included (what a plain Parquet reader of
    /// the lake sees), in file order.
    pub async fn scan_events(&self) -> Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        for ((_, t), files) in self.event_files().await? {
            for o in files {
                out.extend(self.read_file_or_skip(&o, t).await?.unwrap_or_default());
            }
        }
        Ok(out)
    }

    /// Reads every event in the lake once: a re-sent event (same `event_id`)
    /// counts once, in its earliest received copy. Sorted by time, then id.
    ///
    /// A file removed by a concurrent compaction between listing and reading
    /// restarts the read (its rows are in the compacted file by then).
    pub async fn read_events(&self) -> Result<Vec<StoredEvent>> {
        let mut attempt = 0;
        loop {
            match self.read_events_once().await {
                Err(Error::Store(object_store::Error::NotFound { .. })) if attempt < 3 => attempt += 1,
                other => return other,
            }
        }
    }

    async fn read_events_once(&self) -> Result<Vec<StoredEvent>> {
        let mut by_id: HashMap<String, StoredEvent> = HashMap::new();
        for ((_, t), files) in self.event_files().await? {
            for o in files {
                for e in self.read_file_or_skip(&o, t).await?.unwrap_or_default() {
                    match by_id.get(&e.event.event_id) {
                        Some(prev) if prev.received_at <= e.received_at => {}
                        _ => {
                            by_id.insert(e.event.event_id.clone(), e);
                        }
                    }
                }
            }
        }
        let mut all: Vec<StoredEvent> = by_id.into_values().collect();
        all.sort_by(|a, b| a.event.ts.cmp(&b.event.ts).then_with(|| a.event.event_id.cmp(&b.event.event_id)));
        Ok(all)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) fn ev(id: &str, t: EventType, day: u32, received_s: i64) -> StoredEvent {
        StoredEvent {
            event: Event {
                event_id: id.into(),
                event_type: t,
                user_id: "p-user".into(),
                item_id: Some("course-1".into()),
                ts: DateTime::parse_from_rfc3339(&format!("2026-11-{day:02}T10:00:00Z")).unwrap().with_timezone(&Utc),
                price: (t == EventType::Purchase).then_some(49.5),
                currency: (t == EventType::Purchase).then(|| "CNY".into()),
                rating: None,
                progress: None,
                text: None,
                query: None,
                session_id: Some("s".into()),
                experiment: None,
                variant: None,
                recommendation_id: None,
            },
            received_at: DateTime::<Utc>::from_timestamp(1_764_000_000 + received_s, 0).unwrap(),
            redactions: 0,
            key_name: None,
        }
    }

    #[test]
    fn shared_layout_writes_the_same_bytes_as_a_fresh_writer() {
        let mut events = [ev("a", EventType::View, 1, 0), ev("b", EventType::Purchase, 1, 5)];
        events[1].event.text = Some("好".repeat(300));
        events[1].event.rating = Some(4);
        events[1].redactions = 2;
        events[1].key_name = Some("web".into());
        let all: Vec<&StoredEvent> = events.iter().collect();
        for (refs, codec) in
            [(&all[..], Codec::Snappy), (&all[..], Codec::Zstd), (&all[..1], Codec::Snappy), (&all[1..], Codec::Snappy)]
        {
            let mut fresh = Vec::new();
            let opts = ArrowWriterOptions::new()
                .with_properties(writer_properties(codec).unwrap())
                .with_skip_arrow_metadata(true);
            let mut w = ArrowWriter::try_new_with_options(&mut fresh, schema(), opts).unwrap();
            w.write(&reference_batch(refs)).unwrap();
            w.close().unwrap();
            assert_eq!(encode_parquet(refs, codec).unwrap(), fresh, "{codec:?} {}", refs.len());
            assert_eq!(record_batch(refs, schema()).unwrap(), reference_batch(refs));
        }
    }

    /// The record batch as first written: a builder per column, nulls appended one by one.
    fn reference_batch(events: &[&StoredEvent]) -> RecordBatch {
        use arrow_array::builder::TimestampMillisecondBuilder;
        let n = events.len();
        let strings = |f: &dyn Fn(&StoredEvent) -> Option<&str>| -> ArrayRef {
            let mut b = StringBuilder::with_capacity(n, n * 16);
            for e in events {
                b.append_option(f(e));
            }
            Arc::new(b.finish())
        };
        let floats = |f: &dyn Fn(&StoredEvent) -> Option<f64>| -> ArrayRef {
            let mut b = Float64Builder::with_capacity(n);
            for e in events {
                b.append_option(f(e));
            }
            Arc::new(b.finish())
        };
        let times = |f: &dyn Fn(&StoredEvent) -> i64| -> ArrayRef {
            let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
            for e in events {
                b.append_value(f(e));
            }
            Arc::new(b.finish())
        };
        let mut rating = Int32Builder::with_capacity(n);
        let mut version = Int32Builder::with_capacity(n);
        let mut redactions = Int32Builder::with_capacity(n);
        for e in events {
            rating.append_option(e.event.rating.map(i32::from));
            version.append_value(knowedge_format::event::SCHEMA_VERSION as i32);
            redactions.append_value(i32::try_from(e.redactions).unwrap_or(i32::MAX));
        }
        let columns: Vec<ArrayRef> = vec![
            strings(&|e| Some(&e.event.event_id)),
            strings(&|e| Some(&e.event.user_id)),
            strings(&|e| e.event.item_id.as_deref()),
            times(&|e| e.event.ts.timestamp_millis()),
            times(&|e| e.received_at.timestamp_millis()),
            floats(&|e| e.event.price),
            strings(&|e| e.event.currency.as_deref()),
            Arc::new(rating.finish()),
            floats(&|e| e.event.progress),
            strings(&|e| e.event.text.as_deref()),
            strings(&|e| e.event.query.as_deref()),
            strings(&|e| e.event.session_id.as_deref()),
            strings(&|e| e.event.experiment.as_deref()),
            strings(&|e| e.event.variant.as_deref()),
            strings(&|e| e.event.recommendation_id.as_deref()),
            Arc::new(version.finish()),
            Arc::new(redactions.finish()),
            strings(&|e| e.key_name.as_deref()),
        ];
        RecordBatch::try_new(schema(), columns).unwrap()
    }

    #[tokio::test]
    async fn files_without_the_key_name_column_still_read() {
        let mut e = ev("a", EventType::View, 1, 0);
        e.key_name = Some("web".into());
        let batch = record_batch(&[&e], schema()).unwrap();
        assert_eq!(batch.schema().field(17).name(), "key_name");
        // A file as written before the column: the first 17 columns.
        let old = batch.project(&(0..17).collect::<Vec<_>>()).unwrap();
        let mut bytes = Vec::new();
        let mut w = ArrowWriter::try_new(&mut bytes, old.schema(), None).unwrap();
        w.write(&old).unwrap();
        w.close().unwrap();
        let back = decode_parquet(Bytes::from(bytes), EventType::View, "old.parquet").unwrap();
        assert_eq!(back[0].key_name, None);
        assert_eq!(back[0].event, e.event);
        let new = encode_parquet(&[&e], Codec::Snappy).unwrap();
        assert_eq!(decode_parquet(Bytes::from(new), EventType::View, "new.parquet").unwrap(), vec![e.clone()]);
        // Compaction keeps it.
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        lake.write_events(std::slice::from_ref(&e)).await.unwrap();
        lake.write_events(&[ev("b", EventType::View, 1, 5)]).await.unwrap();
        assert_eq!(lake.compact().await.unwrap().rows_written, 2);
        let rows = lake.scan_events().await.unwrap();
        let names: Vec<Option<&str>> = rows.iter().map(|r| r.key_name.as_deref()).collect();
        assert_eq!(names, [Some("web"), None]);
    }

    #[tokio::test]
    async fn partitions_round_trip_and_dedup() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        let a = ev("a", EventType::View, 1, 0);
        let b = ev("b", EventType::Purchase, 2, 0);
        let written = lake.write_events(&[a.clone(), b.clone()]).await.unwrap();
        assert_eq!(written.len(), 2);
        assert!(dir.path().join("events/dt=2026-11-02/type=purchase").is_dir());
        // re-sent later: must not be counted twice
        lake.write_events(&[ev("b", EventType::Purchase, 2, 60)]).await.unwrap();
        let back = lake.read_events().await.unwrap();
        assert_eq!(back, vec![a, b]);
    }
}
