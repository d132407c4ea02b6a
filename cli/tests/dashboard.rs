//! The dashboard in a real browser: `knowedge report` writes the page, and
//! headless Chromium (Debian's, driven by playwright-core from npm) loads it
//! from a file with no console error and no network request, every chart
//! draws on its canvas, and the KPI cards show what the SQL says. Also over
//! an empty lake and over a lake with damaged files, which render with what
//! they have and list what was skipped.
//!
//! Needs `npm ci` in functions/report/dashboard and /usr/bin/chromium
//! (`cargo xtask test` and `.ci/run` see to both).
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use knowedge_report::{SqlLake, output, queries};
use serde_json::{Map, Value};

fn dashboard_dir() -> PathBuf {
    knowedge_test_support::workspace_root().join("functions/report/dashboard")
}

/// The KPIs as the SQL computes them.
async fn kpis(lake: &Path) -> Map<String, Value> {
    let sql = SqlLake::open(lake).await.unwrap();
    let q = queries::DASHBOARD.iter().find(|q| q.name == "kpis").unwrap();
    let answer = sql.query(q.sql).await.unwrap();
    let row = output::json_rows(&answer.batches).unwrap().remove(0);
    ["dau", "wau", "mau", "gmv_cny", "paying_learners", "arppu_cny", "conversion"]
        .iter()
        .map(|k| ((*k).to_owned(), if row[*k].is_null() { Value::from(0) } else { row[*k].clone() }))
        .collect()
}

/// Opens the page in Chromium; the checker's summary.
fn check(page: &Path, expected: &Map<String, Value>, screenshot: Option<&Path>, lang: &str) -> Value {
    let dir = dashboard_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci` in {} (cargo xtask test does)",
        dir.display()
    );
    let expected_file = page.with_file_name("expected.json");
    std::fs::write(&expected_file, serde_json::to_vec(expected).unwrap()).unwrap();
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir).arg("test/check.mjs").arg(page).arg(&expected_file);
    cmd.arg(screenshot.map_or_else(|| PathBuf::from(""), Path::to_path_buf)).arg(lang);
    let out = cmd.output().expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|_| panic!("checker printed no summary:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "dashboard check failed: {}", summary["failures"]);
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_every_chart_and_shows_the_sql_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    knowedge_test_support::business::plant(&lake, 120, 5).await.unwrap();
    let out = dir.path().join("report");
    let page = knowedge::business::write_report(&lake, &out, None).await.unwrap();
    let data: Value = serde_json::from_slice(&std::fs::read(out.join("data.json")).unwrap()).unwrap();
    assert_eq!(data["format"], "knowedge-dashboard-v1");
    assert_eq!(data["problems"], Value::Array(vec![]), "every panel is built");
    assert_eq!(data["experiments"][0]["experiment"], "ranker-2026-10");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "the page loads nothing from elsewhere");

    let expected = kpis(&lake).await;
    assert!(expected["gmv_cny"].as_f64().unwrap() > 0.0);
    let shot = knowedge_test_support::target_dir().join("dashboard.png");
    let summary = check(&page, &expected, Some(&shot), "en");
    assert_eq!(summary["charts"].as_array().unwrap().len(), 11);
    check(&page, &expected, None, "zh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_damaged_lakes_still_render_and_say_what_was_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let page = knowedge::business::write_report(&empty, &dir.path().join("r1"), None).await.unwrap();
    let expected = kpis(&empty).await;
    assert_eq!(expected["mau"], 0);
    check(&page, &expected, None, "zh");

    let lake = dir.path().join("lake");
    knowedge_test_support::business::plant(&lake, 40, 9).await.unwrap();
    let part = lake.join("events/dt=2026-10-07/type=view");
    std::fs::create_dir_all(&part).unwrap();
    std::fs::write(part.join("part-0-torn.parquet"), b"PAR1 torn write").unwrap();
    std::fs::write(lake.join("catalogue/items.json"), b"{not a catalogue").unwrap();
    let out = dir.path().join("r2");
    let page = knowedge::business::write_report(&lake, &out, None).await.unwrap();
    let data: Value = serde_json::from_slice(&std::fs::read(out.join("data.json")).unwrap()).unwrap();
    let skipped: Vec<&str> = data["skipped"].as_array().unwrap().iter().map(|s| s["file"].as_str().unwrap()).collect();
    assert!(skipped.contains(&"events/dt=2026-10-07/type=view/part-0-torn.parquet"), "{skipped:?}");
    assert!(skipped.contains(&"catalogue/items.json"), "{skipped:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("part-0-torn.parquet"), "the page lists what it skipped");
    check(&page, &kpis(&lake).await, None, "en");
}
