//! The scheduled report (what the `knowedge-report` Lambda function runs):
//! the dashboard it writes to the lake's `reports/` has the numbers of the
//! lake itself, a second run fetches nothing that did not change, and after
//! compaction replaced the per-batch files the copy drops them (a stale copy
//! would count their rows twice).
#![allow(clippy::unwrap_used, missing_docs)]

use anyhow::Result;
use knowedge_lake::Lake;
use knowedge_report::{SqlLake, output, scheduled};
use object_store::ObjectStoreExt;
use serde_json::Value;

const ECHARTS: &str = "/* ECharts stand-in: this test reads the data, not the drawing */";

async fn written(lake: &Lake, name: &str) -> Vec<u8> {
    let path = object_store::path::Path::from(format!("reports/{name}"));
    lake.store().get(&path).await.unwrap().bytes().await.unwrap().to_vec()
}

async fn kpis_of(dir: &std::path::Path) -> Result<Value> {
    let sql = SqlLake::open(dir).await?;
    let kpis = knowedge_report::queries::DASHBOARD.iter().find(|q| q.name == "kpis").unwrap();
    let answer = sql.query(kpis.sql).await?;
    Ok(Value::Array(output::json_rows(&answer.batches)?.into_iter().map(Value::Object).collect()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_dashboard_follows_the_lake_through_compaction() -> Result<()> {
    let (lake_dir, work) = (tempfile::tempdir()?, tempfile::tempdir()?);
    knowedge_test_support::business::plant(lake_dir.path(), 60, 11).await?;
    let lake = Lake::open(lake_dir.path().to_str().unwrap())?;
    let now = chrono::Utc::now();

    let first = scheduled::publish(&lake, work.path(), ECHARTS, now).await?;
    assert!(first.mirror.copied > 10 && first.mirror.unchanged == 0, "{:?}", first.mirror);
    assert_eq!(first.written, ["reports/data.json", "reports/index.html"]);
    assert!(first.skipped.is_empty() && first.problems.is_empty(), "{first:?}");
    let data: Value = serde_json::from_slice(&written(&lake, "data.json").await)?;
    let expected = kpis_of(lake_dir.path()).await?;
    assert_eq!(data["panels"]["kpis"], expected);
    let page = String::from_utf8(written(&lake, "index.html").await)?;
    assert!(page.contains(ECHARTS), "ECharts is inlined into the page");

    // Nothing changed: nothing is fetched again.
    let second = scheduled::publish(&lake, work.path(), ECHARTS, now).await?;
    assert_eq!((second.mirror.copied, second.mirror.removed), (0, 0));
    assert_eq!(second.mirror.unchanged, first.mirror.copied);

    // Compaction rewrites the per-batch files; the copy follows, and the numbers stay.
    let compaction = lake.compact().await?;
    assert!(compaction.files_removed > 0, "{compaction:?}");
    let third = scheduled::publish(&lake, work.path(), ECHARTS, now).await?;
    assert!(third.mirror.removed > 0 && third.mirror.copied > 0, "{:?}", third.mirror);
    let data: Value = serde_json::from_slice(&written(&lake, "data.json").await)?;
    assert_eq!(data["panels"]["kpis"], expected);
    assert_eq!(kpis_of(work.path()).await?, expected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_lake_still_gets_a_dashboard() -> Result<()> {
    let (lake_dir, work) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let lake = Lake::open(lake_dir.path().to_str().unwrap())?;
    let published = scheduled::publish(&lake, work.path(), ECHARTS, chrono::Utc::now()).await?;
    assert_eq!(published.mirror.copied, 0);
    let data: Value = serde_json::from_slice(&written(&lake, "data.json").await)?;
    assert_eq!(data["format"], "knowedge-dashboard-v1");
    Ok(())
}
