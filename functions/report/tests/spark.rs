//! The report SQL is portable: the same `.sql` files, run by Spark (PySpark
//! in local mode, reading the same lake files in place) and by the embedded
//! engine, give the same rows.
//!
//! Needs PySpark (`target/tools/spark`, installed by `cargo xtask test`, or
//! a Python with `pyspark` named by `KNOWEDGE_PYSPARK_PYTHON`) and Java 17.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use knowedge_report::{SqlLake, output, queries};
use serde_json::{Value, json};

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("KNOWEDGE_PYSPARK_PYTHON") {
        return p.into();
    }
    let p = knowedge_test_support::target_dir().join("tools/spark/bin/python");
    if !p.exists() {
        panic!("{} is missing: run `cargo xtask test`, which installs PySpark there", p.display());
    }
    p
}

/// Whether two values from the two engines are the same: numbers within a
/// relative 1e-9 (integers may come back as floats), anything else equal.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_sql_gives_the_same_rows_on_spark() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let planted = knowedge_test_support::business::plant(dir.path(), 120, 11).await?;
    let bound: Vec<(String, String)> = queries::all()
        .iter()
        .map(|q| Ok((q.name.to_owned(), queries::bind(q.sql, &[("experiment", &planted.experiment)])?)))
        .collect::<Result<_>>()?;

    let lake = SqlLake::open(dir.path()).await?;
    assert!(lake.skipped().is_empty(), "{:?}", lake.skipped());
    let mut embedded = serde_json::Map::new();
    for (name, sql) in &bound {
        let answer = lake.query(sql).await.with_context(|| format!("{name} on the embedded engine"))?;
        let rows = output::json_rows(&answer.batches)?;
        embedded.insert(name.clone(), Value::Array(rows.into_iter().map(Value::Object).collect()));
    }

    let work = dir.path().join("spark-queries.json");
    let views = queries::statements(queries::VIEWS);
    let list: Vec<Value> = bound.iter().map(|(n, s)| json!({"name": n, "sql": s})).collect();
    std::fs::write(&work, serde_json::to_vec(&json!({"views": views, "queries": list}))?)?;
    let out = dir.path().join("spark-rows.json");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/spark/run_queries.py");
    let run = Command::new(python()).arg(&script).arg(dir.path()).arg(&work).arg(&out).output()?;
    if !run.status.success() {
        bail!("Spark failed ({}):\n{}", run.status, String::from_utf8_lossy(&run.stderr));
    }
    let spark: serde_json::Map<String, Value> = serde_json::from_slice(&std::fs::read(&out)?)?;

    for (name, _) in &bound {
        let ours = embedded[name].as_array().unwrap();
        let theirs = spark[name].as_array().with_context(|| format!("{name}: no rows from Spark"))?;
        assert_eq!(ours.len(), theirs.len(), "{name}: row counts differ");
        assert!(!ours.is_empty(), "{name}: the planted lake should give rows");
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
            assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{name}: columns");
            for (k, va) in a {
                assert!(same(va, &b[k]), "{name} row {i} column {k}: embedded {va}, Spark {}", b[k]);
            }
        }
    }
    Ok(())
}
