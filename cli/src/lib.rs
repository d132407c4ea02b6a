//! The `knowedge` command line: the local entry to the whole platform.
//!
//! It runs the ingestion function as a local HTTP server, trains and
//! publishes models, serves the compiled edge component in the wasmtime host,
//! generates demo data, and brings everything up at once (`knowedge dev`).
//! The same library functions drive the end-to-end tests.

pub mod audit;
pub mod business;
pub mod clv;
pub mod demo;
pub mod demolake;
pub mod dev;
pub mod edgebench;
pub mod eval;
pub mod keys;
pub mod privacy;
pub mod sentiment;
pub mod serve;
pub mod sql;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// A file cargo built, under the target directory: `CARGO_TARGET_DIR` when
/// set, else `target` (relative to the directory the command runs in, the
/// workspace root for `cargo xtask` and `cargo run`).
pub fn built(relative: &str) -> std::path::PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => std::path::Path::new(&dir).join(relative),
        _ => std::path::Path::new("target").join(relative),
    }
}

/// Sends raw events to an ingestion endpoint (with the ingest API `key`) in batches of at most `batch`,
/// calling `progress(sent, total)` after each. Fails on any non-2xx answer.
pub async fn send_events(
    endpoint: &str,
    key: &str,
    events: &[Value],
    batch: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<SendSummary> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let mut summary = SendSummary::default();
    for chunk in events.chunks(batch.max(1)) {
        let body = serde_json::to_vec(&serde_json::json!({ "events": chunk }))?;
        let resp = client
            .post(endpoint)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {key}"))
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {endpoint}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("ingestion answered {status}: {text}");
        }
        let v: Value = serde_json::from_str(&text).context("ingestion answer is not JSON")?;
        summary.accepted += v["accepted"].as_u64().unwrap_or(0) as usize;
        summary.rejected += v["rejected"].as_u64().unwrap_or(0) as usize;
        summary.duplicates += v["duplicates"].as_u64().unwrap_or(0) as usize;
        summary.batches += 1;
        progress(summary.accepted + summary.rejected + summary.duplicates, events.len());
    }
    Ok(summary)
}

/// Totals of [`send_events`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendSummary {
    /// Requests sent.
    pub batches: usize,
    /// Events accepted.
    pub accepted: usize,
    /// Events rejected.
    pub rejected: usize,
    /// Events that were duplicates within their batch.
    pub duplicates: usize,
}

/// GETs a URL and parses the JSON answer, returning the status too.
pub async fn get_json(url: &str) -> Result<(u16, Value)> {
    get_json_as(url, None).await
}

/// `GET url` with a learner token (`Authorization: Bearer <token>`), if
/// given; the status and the JSON answer.
pub async fn get_json_as(url: &str, token: Option<&str>) -> Result<(u16, Value)> {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let resp = request.send().await.with_context(|| format!("GET {url}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    let v = serde_json::from_str(&text).with_context(|| format!("answer of {url} is not JSON: {text}"))?;
    Ok((status, v))
}
