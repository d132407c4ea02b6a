//! The dashboard on a schedule: what the `knowedge-report` Lambda function
//! runs. It brings a local copy of the lake's tables up to date
//! ([`knowedge_lake::Lake::mirror_to`]: only new or changed objects are
//! fetched, objects gone from the lake leave the copy), opens the copy with
//! [`SqlLake`], and writes the same page and data as `knowedge report` to
//! `reports/index.html` and `reports/data.json` of the lake.
//!
//! The copy lives on the function's ephemeral storage, so the lake's tables
//! must fit there (Lambda allows up to 10 GB); run it after compaction (the
//! deployment schedules it half an hour after), so it copies compacted files.

use std::path::Path;

use knowedge_lake::{Lake, MirrorReport};
use serde::Serialize;

use crate::{Error, Result, SqlLake, dashboard};

/// What one run did.
#[derive(Clone, Debug, Serialize)]
pub struct Published {
    /// The copy's update.
    pub mirror: MirrorReport,
    /// Files the SQL engine left out, as `table: file: reason`.
    pub skipped: Vec<String>,
    /// Panels that could not be built.
    pub problems: Vec<String>,
    /// The objects written, relative to the lake.
    pub written: Vec<String>,
}

/// Updates the copy of `lake` in `work` (a directory), builds the dashboard
/// with `echarts` inlined and writes it to the lake's `reports/`.
///
/// # Errors
/// [`Error::Lake`] when the lake cannot be read or the report not written;
/// [`Error::NoLake`], [`Error::Io`] or [`Error::Sql`] when the copy cannot
/// be opened.
pub async fn publish(lake: &Lake, work: &Path, echarts: &str, now: chrono::DateTime<chrono::Utc>) -> Result<Published> {
    std::fs::create_dir_all(work).map_err(|e| Error::io(work, e))?;
    let location = work.to_str().ok_or_else(|| Error::Invalid(format!("{} is not UTF-8", work.display())))?;
    let copy = Lake::open(location)?;
    let mirror = lake.mirror_to(&copy, &crate::deploy::mirrored_prefixes()).await?;
    let sql = SqlLake::open(work).await?;
    let skipped = sql.skipped().iter().map(|s| format!("{}: {}: {}", s.table, s.file, s.reason)).collect();
    let data = dashboard::data(&sql, now).await?;
    let problems =
        data["problems"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(str::to_owned)).collect();
    let json = serde_json::to_vec_pretty(&data).map_err(|e| Error::Invalid(format!("the dashboard data: {e}")))?;
    let page = dashboard::page(&data, echarts);
    // The data first: a page is never newer than the data beside it.
    lake.put_report("data.json", json).await?;
    lake.put_report("index.html", page.into_bytes()).await?;
    let written =
        ["data.json", "index.html"].iter().map(|f| format!("{}{f}", knowedge_lake::mirror::REPORTS)).collect();
    Ok(Published { mirror, skipped, problems, written })
}
