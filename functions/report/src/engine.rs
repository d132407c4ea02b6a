//! The lake as SQL tables (DataFusion).
//!
//! [`SqlLake::open`] looks at every file of every table of
//! [`knowedge_lake::tables::tables`] and keeps those it can read:
//!
//! * **Parquet tables** (`events`, `review_sentiment`): a file is kept when it
//!   sits in a complete Hive partition path (`dt=…/type=…/name.parquet` for
//!   events), its footer can be read, every column the table requires is in
//!   it and no column has another type than the table's. The kept files are
//!   linked into a private snapshot directory with the same layout, which
//!   DataFusion reads in place (projection and partition pruning included);
//!   columns missing from older files read as null.
//! * **JSON-lines tables** (`dead_letter`, `audit`): small, so they are
//!   loaded into memory; a line that is not a JSON object is skipped, and a
//!   nested value in a text column (the dead letter's `raw`, the audit
//!   record's `details`) is kept as its JSON text, as Athena's JSON SerDe shows it.
//! * **`catalogue`**: the lake's `catalogue/items.json`.
//!
//! Whatever is left out is listed by [`SqlLake::skipped`] with the reason;
//! an empty lake gives empty tables. Then the views of
//! [`crate::queries::VIEWS`] are created.
//!
//! Queries are read-only: no DDL, no `INSERT`, no `COPY … TO`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::execution::context::SQLOptions;
use datafusion::parquet::arrow::parquet_to_arrow_schema;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use datafusion::prelude::{SessionConfig, SessionContext};
use knowedge_lake::CatalogueItem;
use knowedge_lake::tables::{FileFormat, Table};
use serde::Serialize;

use crate::{Error, Result, queries};

/// A file left out of a table, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The table it belongs to.
    pub table: String,
    /// Its path relative to the lake root.
    pub file: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A query's answer: its schema (known even without rows) and its batches.
#[derive(Clone, Debug)]
pub struct QueryResult {
    /// Column names and types.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// A lake directory opened for SQL.
pub struct SqlLake {
    ctx: SessionContext,
    skipped: Vec<Skipped>,
    files: BTreeMap<String, usize>,
    // Links to the kept Parquet files; removed when the lake is dropped.
    _snapshot: tempfile::TempDir,
}

impl std::fmt::Debug for SqlLake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlLake").field("files", &self.files).field("skipped", &self.skipped).finish_non_exhaustive()
    }
}

/// A Parquet file's footer, read to decide whether the file can be used.
enum FileCheck {
    Usable,
    Unusable(String),
}

impl SqlLake {
    /// Opens the lake at `root` (a local directory, as `knowedge dev` and
    /// `knowedge ingest serve --lake DIR` write it).
    ///
    /// # Errors
    /// [`Error::NoLake`] when `root` is not a directory, [`Error::Io`] when a
    /// directory cannot be listed, [`Error::Sql`] when a view cannot be created.
    pub async fn open(root: &Path) -> Result<Self> {
        let meta = std::fs::metadata(root)
            .map_err(|e| Error::NoLake { path: root.display().to_string(), reason: e.to_string() })?;
        if !meta.is_dir() {
            return Err(Error::NoLake { path: root.display().to_string(), reason: "not a directory".into() });
        }
        let root = root.canonicalize().map_err(|e| Error::io(root, e))?;
        let snapshot = tempfile::Builder::new()
            .prefix("knowedge-sql-")
            .tempdir()
            .map_err(|e| Error::io(&std::env::temp_dir(), e))?;
        let config = SessionConfig::new().with_information_schema(true);
        let ctx = SessionContext::new_with_config(config);
        // `element_at(array, n)`, 1-based, as Spark SQL and Trino have it
        // (DataFusion's own `element_at` is for maps; the lake has none).
        let element_at =
            datafusion::functions_nested::extract::array_element_udf().as_ref().clone().with_aliases(["element_at"]);
        ctx.register_udf(element_at);
        let mut lake = SqlLake { ctx, skipped: Vec::new(), files: BTreeMap::new(), _snapshot: snapshot };
        for table in knowedge_lake::tables::tables() {
            match table.format {
                FileFormat::Parquet => lake.register_parquet(&root, &table).await?,
                FileFormat::JsonLines => lake.register_json(&root, &table)?,
            }
        }
        lake.register_catalogue(&root)?;
        for statement in queries::statements(queries::VIEWS) {
            lake.ctx.sql(&statement).await.map_err(Error::sql)?.collect().await.map_err(Error::sql)?;
        }
        Ok(lake)
    }

    /// The files left out, with their reasons.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// How many files each table reads.
    pub fn files(&self) -> &BTreeMap<String, usize> {
        &self.files
    }

    /// Runs one read-only SQL statement.
    ///
    /// # Errors
    /// [`Error::Sql`] for a syntax error, an unknown table or column, a
    /// statement that would change something, or a failure while running.
    pub async fn query(&self, sql: &str) -> Result<QueryResult> {
        let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        let frame = self.ctx.sql_with_options(sql, options).await.map_err(Error::sql)?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.map_err(Error::sql)?;
        Ok(QueryResult { schema, batches })
    }

    /// The names of the tables and views.
    pub fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .ctx
            .catalog("datafusion")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default();
        names.sort();
        names
    }

    fn skip(&mut self, table: &str, root: &Path, file: &Path, reason: impl Into<String>) {
        let file = file.strip_prefix(root).unwrap_or(file).display().to_string();
        self.skipped.push(Skipped { table: table.to_owned(), file, reason: reason.into() });
    }

    async fn register_parquet(&mut self, root: &Path, table: &Table) -> Result<()> {
        let dir = root.join(table.prefix);
        let mut kept = 0usize;
        for (file, partition) in files_under(&dir)? {
            if let Err(reason) = check_partition_path(&partition, table.partitions, ".parquet") {
                self.skip(table.name, root, &file, reason);
                continue;
            }
            match check_parquet(&file, &table.schema) {
                FileCheck::Usable => {}
                FileCheck::Unusable(reason) => {
                    self.skip(table.name, root, &file, reason);
                    continue;
                }
            }
            let link = self._snapshot.path().join(table.prefix).join(partition.join("/"));
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            link_file(&file, &link)?;
            kept += 1;
        }
        self.files.insert(table.name.to_owned(), kept);
        let partitions: Vec<(String, DataType)> =
            table.partitions.iter().map(|p| ((*p).to_owned(), DataType::Utf8)).collect();
        if kept == 0 {
            let schema = with_partitions(&table.schema, table.partitions);
            let empty = MemTable::try_new(schema, vec![vec![]]).map_err(Error::sql)?;
            self.ctx.register_table(table.name, Arc::new(empty)).map_err(Error::sql)?;
            return Ok(());
        }
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(partitions);
        let location = format!("{}/", self._snapshot.path().join(table.prefix).display());
        self.ctx
            .register_listing_table(table.name, location, options, Some(table.schema.clone()), None)
            .await
            .map_err(Error::sql)
    }

    fn register_json(&mut self, root: &Path, table: &Table) -> Result<()> {
        let dir = root.join(table.prefix);
        let full = with_partitions(&table.schema, table.partitions);
        let mut batches = Vec::new();
        let mut kept = 0usize;
        for (file, partition) in files_under(&dir)? {
            let extension = if table.partitions.is_empty() { ".json" } else { ".ndjson" };
            if let Err(reason) = check_partition_path(&partition, table.partitions, extension) {
                self.skip(table.name, root, &file, reason);
                continue;
            }
            let text = match std::fs::read(&file) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) => {
                    self.skip(table.name, root, &file, format!("unreadable: {e}"));
                    continue;
                }
            };
            let mut rows = Vec::new();
            let mut bad_lines = 0usize;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match serde_json::from_str::<serde_json::Value>(line) {
                    Ok(serde_json::Value::Object(mut row)) => {
                        for field in table.schema.fields() {
                            if field.data_type() == &DataType::Utf8
                                && let Some(v) = row.get_mut(field.name())
                                && (v.is_object() || v.is_array())
                            {
                                *v = serde_json::Value::String(v.to_string());
                            }
                        }
                        rows.push(row);
                    }
                    _ => bad_lines += 1,
                }
            }
            if bad_lines > 0 {
                self.skip(table.name, root, &file, format!("{bad_lines} line(s) that are not JSON objects"));
            }
            if rows.is_empty() {
                continue;
            }
            match decode_json(&table.schema, &rows) {
                Ok(batch) => {
                    let values: Vec<&str> = partition_values(&partition);
                    match add_partition_columns(&full, batch, &values) {
                        Ok(batch) => {
                            batches.push(batch);
                            kept += 1;
                        }
                        Err(reason) => self.skip(table.name, root, &file, reason),
                    }
                }
                Err(reason) => self.skip(table.name, root, &file, reason),
            }
        }
        self.files.insert(table.name.to_owned(), kept);
        let mem = MemTable::try_new(full, vec![batches]).map_err(Error::sql)?;
        self.ctx.register_table(table.name, Arc::new(mem)).map_err(Error::sql)?;
        Ok(())
    }

    fn register_catalogue(&mut self, root: &Path) -> Result<()> {
        let path = root.join("catalogue/items.json");
        let items: Vec<CatalogueItem> = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(items) => {
                    self.files.insert("catalogue".into(), 1);
                    items
                }
                Err(e) => {
                    self.skip("catalogue", root, &path, format!("not a catalogue: {e}"));
                    Vec::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                self.skip("catalogue", root, &path, format!("unreadable: {e}"));
                Vec::new()
            }
        };
        let schema = catalogue_schema();
        let text = |f: &dyn Fn(&CatalogueItem) -> &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(items.iter().map(f)))
        };
        let columns: Vec<ArrayRef> = vec![
            text(&|i| &i.id),
            text(&|i| &i.title),
            text(&|i| &i.format),
            text(&|i| &i.category),
            Arc::new(Float64Array::from_iter_values(items.iter().map(|i| i.price))),
            text(&|i| &i.currency),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::sql(e.into()))?;
        let mem = MemTable::try_new(schema, vec![vec![batch]]).map_err(Error::sql)?;
        self.ctx.register_table("catalogue", Arc::new(mem)).map_err(Error::sql)?;
        Ok(())
    }
}

/// The columns of the `catalogue` table.
pub fn catalogue_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, false),
        Field::new("format", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("price", DataType::Float64, false),
        Field::new("currency", DataType::Utf8, false),
    ]))
}

/// `schema` followed by the partition columns (text).
fn with_partitions(schema: &SchemaRef, partitions: &[&str]) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(partitions.iter().map(|p| Field::new(*p, DataType::Utf8, false)));
    Arc::new(Schema::new(fields))
}

/// Every file below `dir` (none when it does not exist) with its path
/// relative to `dir` as components. Names starting with `.` or `_` (temporary
/// files, markers such as `_SUCCESS`) are not data and are passed over.
fn files_under(dir: &Path) -> Result<Vec<(PathBuf, Vec<String>)>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), Vec::<String>::new())];
    while let Some((d, parts)) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && d == dir => return Ok(out),
            Err(e) => return Err(Error::io(&d, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&d, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            let path = entry.path();
            let mut sub = parts.clone();
            sub.push(name);
            if path.is_dir() {
                stack.push((path, sub));
            } else {
                out.push((path, sub));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Checks that `parts` is `<p1>=v/…/<pn>=v/<file><extension>`.
fn check_partition_path(parts: &[String], partitions: &[&str], extension: &str) -> Result<(), String> {
    let Some((file, dirs)) = parts.split_last() else {
        return Err("empty path".into());
    };
    if dirs.len() != partitions.len() {
        return Err(format!("not in a partition directory ({})", partitions.join("=…/") + "=…/"));
    }
    for (dir, key) in dirs.iter().zip(partitions) {
        match dir.split_once('=') {
            Some((k, v)) if k == *key && !v.is_empty() => {}
            _ => return Err(format!("directory `{dir}` is not a `{key}=…` partition")),
        }
    }
    if !file.ends_with(extension) {
        return Err(format!("not a `{extension}` file"));
    }
    Ok(())
}

fn partition_values(parts: &[String]) -> Vec<&str> {
    let dirs = &parts[..parts.len().saturating_sub(1)];
    dirs.iter().filter_map(|d| d.split_once('=').map(|(_, v)| v)).collect()
}

/// Whether a Parquet file can serve as part of a table with `schema`.
fn check_parquet(path: &Path, schema: &SchemaRef) -> FileCheck {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return FileCheck::Unusable(format!("unreadable: {e}")),
    };
    let reader = match SerializedFileReader::new(file) {
        Ok(r) => r,
        Err(e) => return FileCheck::Unusable(format!("not a readable Parquet file: {e}")),
    };
    let meta = reader.metadata().file_metadata();
    let found = match parquet_to_arrow_schema(meta.schema_descr(), meta.key_value_metadata()) {
        Ok(s) => s,
        Err(e) => return FileCheck::Unusable(format!("its schema has no Arrow form: {e}")),
    };
    for field in schema.fields() {
        match found.field_with_name(field.name()) {
            Ok(f) if f.data_type() == field.data_type() => {}
            Ok(f) => {
                return FileCheck::Unusable(format!(
                    "column `{}` is {}, the table's is {}",
                    field.name(),
                    f.data_type(),
                    field.data_type()
                ));
            }
            Err(_) if field.is_nullable() => {}
            Err(_) => return FileCheck::Unusable(format!("required column `{}` is missing", field.name())),
        }
    }
    FileCheck::Usable
}

#[cfg(unix)]
fn link_file(original: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(original, link).map_err(|e| Error::io(link, e))
}

#[cfg(not(unix))]
fn link_file(original: &Path, link: &Path) -> Result<()> {
    std::fs::copy(original, link).map(drop).map_err(|e| Error::io(link, e))
}

/// JSON objects to one batch with `schema`'s columns (other keys are ignored).
fn decode_json(schema: &SchemaRef, rows: &[serde_json::Map<String, serde_json::Value>]) -> Result<RecordBatch, String> {
    let mut decoder = datafusion::arrow::json::ReaderBuilder::new(schema.clone())
        .build_decoder()
        .map_err(|e| format!("no JSON decoder: {e}"))?;
    decoder.serialize(rows).map_err(|e| format!("lines do not match the table: {e}"))?;
    match decoder.flush() {
        Ok(Some(batch)) => Ok(batch),
        Ok(None) => Ok(RecordBatch::new_empty(schema.clone())),
        Err(e) => Err(format!("lines do not match the table: {e}")),
    }
}

/// `batch` with the partition values as constant text columns, to `full`'s schema.
fn add_partition_columns(full: &SchemaRef, batch: RecordBatch, values: &[&str]) -> Result<RecordBatch, String> {
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for v in values {
        columns.push(Arc::new(StringArray::from_iter_values(std::iter::repeat_n(*v, n))));
    }
    RecordBatch::try_new(full.clone(), columns).map_err(|e| format!("partition columns: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parts(p: &str) -> Vec<String> {
        p.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn partition_paths_are_checked() {
        let p = ["dt", "type"];
        assert!(check_partition_path(&parts("dt=2026-01-01/type=view/a.parquet"), &p, ".parquet").is_ok());
        assert!(check_partition_path(&parts("dt=2026-01-01/a.parquet"), &p, ".parquet").is_err());
        assert!(check_partition_path(&parts("day=2026-01-01/type=view/a.parquet"), &p, ".parquet").is_err());
        assert!(check_partition_path(&parts("dt=/type=view/a.parquet"), &p, ".parquet").is_err());
        assert!(check_partition_path(&parts("dt=2026-01-01/type=view/a.csv"), &p, ".parquet").is_err());
        assert_eq!(partition_values(&parts("dt=2026-01-01/type=view/a.parquet")), ["2026-01-01", "view"]);
    }

    #[test]
    fn sql_errors_lose_the_engine_prefixes() {
        let e = datafusion::error::DataFusionError::Plan("table 'x' not found".into());
        assert_eq!(clean(&e), "table 'x' not found");
    }

    fn clean(e: &datafusion::error::DataFusionError) -> String {
        crate::clean_message(e)
    }
}
