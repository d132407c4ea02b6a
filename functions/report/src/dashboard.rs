//! The dashboard: every panel's data from the lake ([`data`]) and one
//! self-contained HTML page that draws it ([`page`]): Apache ECharts and the
//! page's own script (`dashboard/dashboard.js`) inlined, the data embedded as
//! JSON, no request to anywhere: it opens from a file, offline.
//!
//! A panel whose query fails is left empty and named in `problems`; files
//! the lake could not read are listed in `skipped`, and the page shows both.

use serde_json::{Map, Value, json};

use crate::experiment::{ExperimentOptions, report as experiment_report};
use crate::segments::{ValueOptions, segments};
use crate::{Result, SqlLake, output, queries};

/// The version of the data document ([`data`]).
pub const FORMAT: &str = "knowedge-dashboard-v1";

/// The page's own script.
pub const SCRIPT: &str = include_str!("../dashboard/dashboard.js");

/// The page's style.
const STYLE: &str = include_str!("../dashboard/dashboard.css");

/// Where `npm ci` in `functions/report/dashboard` puts ECharts (the file inlined into pages).
pub fn default_echarts() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard/node_modules/echarts/dist/echarts.min.js")
}

/// Runs every panel's query and gathers the experiments and segments.
///
/// # Errors
/// Only what cannot be reported inside the document; failing panels are
/// listed in its `problems`.
pub async fn data(lake: &SqlLake, generated_at: chrono::DateTime<chrono::Utc>) -> Result<Value> {
    let mut panels = Map::new();
    let mut problems: Vec<String> = Vec::new();
    for q in queries::DASHBOARD {
        match lake.query(q.sql).await.and_then(|a| output::json_rows(&a.batches)) {
            Ok(rows) => {
                panels.insert(q.name.to_owned(), Value::Array(rows.into_iter().map(Value::Object).collect()));
            }
            Err(e) => {
                problems.push(format!("{}: {e}", q.name));
                panels.insert(q.name.to_owned(), Value::Array(Vec::new()));
            }
        }
    }
    let mut experiments = Vec::new();
    let names = match lake
        .query("SELECT DISTINCT experiment FROM exposures_unique WHERE experiment IS NOT NULL ORDER BY experiment")
        .await
        .and_then(|a| output::json_rows(&a.batches))
    {
        Ok(rows) => rows.iter().filter_map(|r| r.get("experiment")?.as_str().map(str::to_owned)).collect(),
        Err(e) => {
            problems.push(format!("experiments: {e}"));
            Vec::new()
        }
    };
    for name in names {
        let options = ExperimentOptions {
            name: name.clone(),
            config: None,
            control: None,
            plan: knowedge_analytics::experiment::Plan::new(0.05, 0.1),
        };
        match experiment_report(lake, &options).await {
            Ok(r) => experiments.push(serde_json::to_value(r).unwrap_or(Value::Null)),
            Err(e) => problems.push(format!("experiment {name}: {e}")),
        }
    }
    let segments = match segments(lake, &ValueOptions::default()).await {
        Ok(s) => json!({
            "paying_learners": s.learners.len(),
            "sizes": s.sizes,
            "clv_quantiles": s.clv_quantiles,
            "models": s.models,
            "notes": s.notes,
        }),
        Err(e) => {
            problems.push(format!("segments: {e}"));
            json!({})
        }
    };
    let as_of = panels
        .get("daily")
        .and_then(Value::as_array)
        .and_then(|d| d.last())
        .and_then(|d| d.get("day").cloned())
        .unwrap_or(Value::Null);
    Ok(json!({
        "format": FORMAT,
        "generated_at": generated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "as_of": as_of,
        "panels": panels,
        "experiments": experiments,
        "segments": segments,
        "skipped": lake.skipped(),
        "files": lake.files(),
        "problems": problems,
    }))
}

/// Text safe inside `<script>`: no `</` that could close the element.
fn script_safe(text: &str) -> String {
    text.replace("</", "<\\/")
}

/// The dashboard page for `data`, with `echarts` (the text of
/// `echarts.min.js`) inlined.
pub fn page(data: &Value, echarts: &str) -> String {
    let data_text = script_safe(&serde_json::to_string(data).unwrap_or_else(|_| "{}".into()));
    let panels = [
        "chart-daily",
        "chart-funnel",
        "chart-cohorts",
        "chart-completion",
        "chart-top-items",
        "chart-recommendations",
        "chart-experiment",
        "chart-segments",
        "chart-clv",
        "chart-quality",
        "chart-volume",
    ];
    let charts: String = panels.iter().map(|id| format!("<div class=\"chart\" id=\"{id}\"></div>\n")).collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>knowedge</title>
<style>{STYLE}</style>
</head>
<body>
<header><h1 id="title">knowedge</h1><span id="as-of"></span><button id="lang" type="button"></button></header>
<section id="kpis" class="kpis"></section>
<section class="charts">
{charts}</section>
<section id="experiment-table"></section>
<section id="notes"></section>
<script id="knowedge-data" type="application/json">{data_text}</script>
<script>{echarts}</script>
<script>{script}</script>
</body>
</html>
"#,
        echarts = script_safe(echarts),
        script = script_safe(SCRIPT),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn embedded_text_cannot_close_the_script() {
        let page = page(&json!({"x": "</script><script>alert(1)</script>"}), "var a = '</script>';");
        assert_eq!(page.matches("</script>").count(), 3, "only the page's own three scripts close");
    }
}
