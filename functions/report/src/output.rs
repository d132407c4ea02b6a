//! Query results as text: an aligned table for people, CSV, JSON (an array
//! of objects) and Parquet for programs.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use serde_json::{Map, Value};

use crate::{Error, Result};

fn encode_error(format: &'static str) -> impl FnOnce(datafusion::arrow::error::ArrowError) -> Error {
    move |e| Error::Encode { format, source: Box::new(e) }
}

/// An aligned text table with a header, as `psql` prints one.
///
/// # Errors
/// [`Error::Encode`] when a value cannot be shown.
pub fn table(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<String> {
    if batches.iter().all(|b| b.num_rows() == 0) {
        let empty = RecordBatch::new_empty(schema.clone());
        return Ok(datafusion::arrow::util::pretty::pretty_format_batches(&[empty])
            .map_err(encode_error("a table"))?
            .to_string());
    }
    Ok(datafusion::arrow::util::pretty::pretty_format_batches(batches).map_err(encode_error("a table"))?.to_string())
}

/// CSV with a header line.
///
/// # Errors
/// [`Error::Encode`] when a value cannot be written.
pub fn csv(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut w = datafusion::arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
        if batches.is_empty() {
            w.write(&RecordBatch::new_empty(schema.clone())).map_err(encode_error("CSV"))?;
        }
        for b in batches {
            w.write(b).map_err(encode_error("CSV"))?;
        }
    }
    Ok(out)
}

/// The rows as JSON objects, column name to value (nulls kept as `null`).
///
/// # Errors
/// [`Error::Encode`] when a value has no JSON form.
pub fn json_rows(batches: &[RecordBatch]) -> Result<Vec<Map<String, Value>>> {
    let mut buf = Vec::new();
    {
        let mut w = datafusion::arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, datafusion::arrow::json::writer::JsonArray>(&mut buf);
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        w.write_batches(&refs).map_err(encode_error("JSON"))?;
        w.finish().map_err(encode_error("JSON"))?;
    }
    if buf.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&buf).map_err(|e| Error::Encode { format: "JSON", source: Box::new(e) })
}

/// A Parquet file (zstd).
///
/// # Errors
/// [`Error::Encode`] when the writer fails.
pub fn parquet(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::basic::{Compression, ZstdLevel};
    use datafusion::parquet::file::properties::WriterProperties;
    let err = |e: datafusion::parquet::errors::ParquetError| Error::Encode { format: "Parquet", source: Box::new(e) };
    let props =
        WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(err)?)).build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema.clone(), Some(props)).map_err(err)?;
    for b in batches {
        w.write(b).map_err(err)?;
    }
    w.close().map_err(err)?;
    Ok(out)
}
