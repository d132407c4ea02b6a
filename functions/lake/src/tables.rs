//! The lake's tables as SQL engines see them: where each lives, its file
//! format, its Hive partition columns and its columns.
//!
//! The Parquet tables' columns are the Arrow schemas the lake writes
//! ([`events::schema`], [`sentiment::schema`]); the JSON tables (dead letters
//! and the audit log) are described here with the Arrow types of their
//! fields. Catalogues built for Athena, Spark or DuckDB (the Glue tables in
//! `infra/`) are tested against this list with [`hive_type`].

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::{audit, events, exposures, sentiment};

/// How a table's files are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// Parquet files.
    Parquet,
    /// JSON objects, one per line.
    JsonLines,
}

/// A table of the lake.
#[derive(Clone, Debug)]
pub struct Table {
    /// SQL name.
    pub name: &'static str,
    /// Key prefix under the lake root, ending in `/`.
    pub prefix: &'static str,
    /// File encoding.
    pub format: FileFormat,
    /// Hive partition columns (strings in the path, in order).
    pub partitions: &'static [&'static str],
    /// The columns inside the files.
    pub schema: SchemaRef,
}

/// Every table of the lake.
pub fn tables() -> Vec<Table> {
    vec![
        Table {
            name: "events",
            prefix: "events/",
            format: FileFormat::Parquet,
            partitions: &["dt", "type"],
            schema: events::schema(),
        },
        Table {
            name: "review_sentiment",
            prefix: "review-sentiment/",
            format: FileFormat::Parquet,
            partitions: &["dt"],
            schema: sentiment::schema(),
        },
        Table {
            name: "exposures",
            prefix: "exposures/",
            format: FileFormat::Parquet,
            partitions: &["dt"],
            schema: exposures::schema(),
        },
        Table {
            name: "dead_letter",
            prefix: "dead-letter/",
            format: FileFormat::JsonLines,
            partitions: &["dt"],
            schema: dead_letter_schema(),
        },
        Table {
            name: "audit",
            prefix: AUDIT_PREFIX,
            format: FileFormat::JsonLines,
            partitions: &[],
            schema: audit_schema(),
        },
    ]
}

/// `audit::AUDIT_DIR` with its separator.
const AUDIT_PREFIX: &str = "audit/";

/// The fields of a dead-letter line ([`crate::DeadLetter`]); times are
/// RFC 3339 strings and `raw` is the kept event as JSON text.
pub fn dead_letter_schema() -> SchemaRef {
    let problem = Fields::from(vec![
        Field::new("field", DataType::Utf8, false),
        Field::new("rule", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(vec![
        Field::new("received_at", DataType::Utf8, false),
        Field::new("index", DataType::Int64, false),
        Field::new("raw", DataType::Utf8, true),
        Field::new("raw_sha256", DataType::Utf8, true),
        Field::new("problems", DataType::List(Arc::new(Field::new("item", DataType::Struct(problem), false))), false),
        Field::new("dropped_fields", DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))), true),
        Field::new("dropped_unnamed", DataType::Int64, true),
        Field::new("key_name", DataType::Utf8, true),
    ]))
}

/// The fields of an audit record ([`audit::AuditRecord`]); `details` is a
/// JSON object kept as text.
pub fn audit_schema() -> SchemaRef {
    debug_assert_eq!(format!("{}/", audit::AUDIT_DIR), AUDIT_PREFIX);
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::Int64, false),
        Field::new("at", DataType::Utf8, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, false),
        Field::new("details", DataType::Utf8, false),
        Field::new("prev", DataType::Utf8, false),
        Field::new("digest", DataType::Utf8, false),
    ]))
}

/// The Hive (Glue, Athena, Spark) type of an Arrow type, where there is one.
pub fn hive_type(t: &DataType) -> Option<String> {
    Some(match t {
        DataType::Utf8 | DataType::LargeUtf8 => "string".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(TimeUnit::Millisecond | TimeUnit::Microsecond, _) => "timestamp".into(),
        DataType::List(item) | DataType::LargeList(item) => format!("array<{}>", hive_type(item.data_type())?),
        DataType::Struct(fields) => {
            let parts: Option<Vec<String>> =
                fields.iter().map(|f| Some(format!("{}:{}", f.name(), hive_type(f.data_type())?))).collect();
            format!("struct<{}>", parts?.join(","))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_has_a_hive_type() {
        for table in tables() {
            for field in table.schema.fields() {
                assert!(hive_type(field.data_type()).is_some(), "{}.{}", table.name, field.name());
            }
        }
        let problems = dead_letter_schema().field_with_name("problems").unwrap().data_type().clone();
        assert_eq!(hive_type(&problems).unwrap(), "array<struct<field:string,rule:string,message:string>>");
    }

    #[test]
    fn json_tables_name_the_fields_the_lake_writes() {
        let letter = crate::DeadLetter {
            received_at: chrono::Utc::now(),
            index: 3,
            raw: serde_json::json!({"event_id": "e"}),
            raw_sha256: Some("00".into()),
            problems: vec![],
            dropped_fields: vec!["x".into()],
            dropped_unnamed: 1,
            key_name: Some("web".into()),
        };
        let written = serde_json::to_value(&letter).unwrap();
        let schema = dead_letter_schema();
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        for key in written.as_object().unwrap().keys() {
            assert!(columns.contains(&key.as_str()), "dead letters write `{key}`, which no column reads");
        }
    }
}
