//! SQL on a small hand-made lake whose answers are known: the views count
//! each event once, the report queries give the numbers worked out by hand,
//! damaged files are left out and named, and bad queries get clear errors.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use knowedge_format::event::EventType;
use knowedge_lake::{CatalogueItem, DeadLetter, Lake, StoredEvent};
use knowedge_report::{Error, SqlLake, output, queries};
use knowedge_test_support::lake::view_event;
use serde_json::{Value, json};

fn day(n: i64) -> DateTime<Utc> {
    // 2026-11-02 is a Monday.
    "2026-11-02T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::days(n)
}

fn event(id: &str, t: EventType, user: &str, item: &str, at: DateTime<Utc>) -> StoredEvent {
    let mut e = view_event(id, user, item, at, at + TimeDelta::seconds(5));
    e.event.event_type = t;
    if t == EventType::Purchase {
        e.event.price = Some(100.0);
        e.event.currency = Some("CNY".into());
    }
    if t == EventType::Progress {
        e.event.progress = Some(0.5);
    }
    e
}

/// Three learners over two weeks. `a` views, starts, buys and completes
/// course-1 and buys book-1; `b` views course-1 and buys it in week two; `c`
/// only views book-1. One of `a`'s purchases is written twice (a re-sent
/// batch), one purchase is in USD.
async fn plant(dir: &Path) -> Result<()> {
    let lake = Lake::open(dir.to_str().unwrap())?;
    lake.put_catalogue(&[
        CatalogueItem {
            id: "course-1".into(),
            title: "写作课".into(),
            format: "course".into(),
            category: "writing".into(),
            price: 100.0,
            currency: "CNY".into(),
        },
        CatalogueItem {
            id: "book-1".into(),
            title: "History".into(),
            format: "ebook".into(),
            category: "history".into(),
            price: 100.0,
            currency: "CNY".into(),
        },
    ])
    .await?;
    let mut done = event("e-a5", EventType::Progress, "a", "course-1", day(2));
    done.event.progress = Some(0.95);
    let mut usd = event("e-b3", EventType::Purchase, "b", "book-1", day(8));
    usd.event.currency = Some("USD".into());
    let mut first = vec![
        event("e-a1", EventType::View, "a", "course-1", day(0)),
        event("e-a2", EventType::Progress, "a", "course-1", day(0)),
        event("e-a3", EventType::Purchase, "a", "course-1", day(1)),
        done,
        event("e-a4", EventType::Purchase, "a", "book-1", day(2)),
        event("e-c1", EventType::View, "c", "book-1", day(1)),
        event("e-b1", EventType::View, "b", "course-1", day(1)),
    ];
    first[2].event.experiment = Some("ranker".into());
    first[2].event.variant = Some("treatment".into());
    lake.write_events(&first).await?;
    // A re-sent batch: e-a4 again, and b's week-two events.
    lake.write_events(&[
        event("e-a4", EventType::Purchase, "a", "book-1", day(2)),
        event("e-b2", EventType::Purchase, "b", "course-1", day(8)),
        usd,
    ])
    .await?;
    lake.write_dead_letters(&[DeadLetter {
        received_at: day(8),
        index: 0,
        raw: json!({"event_id": "x", "type": "teleport"}),
        raw_sha256: None,
        problems: vec![knowedge_format::event::Problem {
            field: "type".into(),
            rule: "enum".into(),
            message: "unknown event type".into(),
        }],
        dropped_fields: vec![],
        dropped_unnamed: 0,
        key_name: Some("web".into()),
    }])
    .await?;
    Ok(())
}

async fn rows(lake: &SqlLake, sql: &str) -> Result<Vec<Value>> {
    let answer = lake.query(sql).await?;
    Ok(output::json_rows(&answer.batches)?.into_iter().map(Value::Object).collect())
}

async fn report(lake: &SqlLake, name: &str) -> Result<Vec<Value>> {
    let q = queries::DASHBOARD.iter().find(|q| q.name == name).unwrap();
    rows(lake, q.sql).await
}

#[tokio::test]
async fn report_queries_give_the_numbers_worked_out_by_hand() -> Result<()> {
    let dir = tempfile::tempdir()?;
    plant(dir.path()).await?;
    let lake = SqlLake::open(dir.path()).await?;
    assert!(lake.skipped().is_empty(), "{:?}", lake.skipped());

    let raw = rows(&lake, "SELECT COUNT(*) AS n FROM events").await?;
    let unique = rows(&lake, "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS ids FROM events_unique").await?;
    assert_eq!(raw[0]["n"], 10);
    assert_eq!(unique[0]["n"], 9);
    assert_eq!(unique[0]["ids"], 9);

    let k = &report(&lake, "kpis").await?[0];
    assert_eq!(k["dau"], 1, "only b is active on the last day (day 8)");
    assert_eq!(k["wau"], 2, "a (day 2) and b (day 8) in the 7 days ending on day 8");
    assert_eq!(k["mau"], 3);
    assert_eq!(k["learners"], 3);
    assert_eq!(k["gmv_cny"], 300.0, "three CNY purchases once each; the USD one is not GMV in CNY");
    assert_eq!(k["paying_learners"], 2);
    assert_eq!(k["arppu_cny"], 150.0);
    assert!((k["conversion"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);

    let daily = report(&lake, "daily").await?;
    let days: Vec<&str> = daily.iter().map(|d| d["day"].as_str().unwrap()).collect();
    assert_eq!(days, ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-10"]);
    assert_eq!(daily[2]["gmv_cny"], 100.0);
    assert_eq!(daily[3]["purchases"], 2);

    let funnel = report(&lake, "funnel").await?;
    assert_eq!(
        funnel,
        [
            json!({"category": "history", "viewed": 1, "started": 0, "purchased": 2, "completed": 0}),
            json!({"category": "writing", "viewed": 2, "started": 1, "purchased": 2, "completed": 1}),
        ]
    );

    let cohorts = report(&lake, "cohorts").await?;
    let cells: Vec<(String, String, i64)> = cohorts
        .iter()
        .map(|c| (c["cohort_week"].to_string(), c["active_week"].to_string(), c["learners"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        cells,
        [("\"2026-11-02\"".into(), "\"2026-11-02\"".into(), 3), ("\"2026-11-02\"".into(), "\"2026-11-09\"".into(), 1),]
    );

    let completion = report(&lake, "completion").await?;
    assert_eq!(completion.len(), 1);
    assert_eq!(completion[0]["item_id"], "course-1");
    assert_eq!((completion[0]["started"].clone(), completion[0]["completed"].clone()), (json!(1), json!(1)));

    let top = report(&lake, "top_items").await?;
    assert_eq!(top[0]["item_id"], "course-1");
    assert_eq!(top[0]["gmv_cny"], 200.0);
    assert_eq!(top[0]["buyers"], 2);
    assert_eq!(top[1]["item_id"], "book-1");
    assert_eq!(top[1]["reviews"], 0);

    let volume = report(&lake, "volume").await?;
    assert_eq!(volume.iter().map(|v| v["events"].as_i64().unwrap()).sum::<i64>(), 9);

    let dead = report(&lake, "dead_letters").await?;
    assert_eq!(dead, [json!({"day": "2026-11-10", "key_name": "web", "rule": "enum", "dead_letters": 1})]);
    let raw = rows(&lake, "SELECT raw FROM dead_letter").await?;
    assert!(raw[0]["raw"].as_str().unwrap().contains("teleport"), "nested JSON is kept as text");
    Ok(())
}

#[tokio::test]
async fn damaged_files_are_left_out_and_named() -> Result<()> {
    let dir = tempfile::tempdir()?;
    plant(dir.path()).await?;
    let part = dir.path().join("events/dt=2026-11-10/type=view");
    std::fs::create_dir_all(&part)?;
    std::fs::write(part.join("part-1-broken.parquet"), b"PAR1 not really")?;
    std::fs::write(dir.path().join("events/stray.parquet"), b"")?;
    let letters = std::fs::read_dir(dir.path().join("dead-letter/dt=2026-11-10"))
        .context("the planted dead letters")?
        .next()
        .unwrap()?
        .path();
    let mut text = std::fs::read_to_string(&letters)?;
    text.push_str("{not json\n");
    std::fs::write(&letters, text)?;

    let lake = SqlLake::open(dir.path()).await?;
    let skipped: Vec<(&str, &str)> = lake.skipped().iter().map(|s| (s.table.as_str(), s.file.as_str())).collect();
    assert!(skipped.contains(&("events", "events/dt=2026-11-10/type=view/part-1-broken.parquet")), "{skipped:?}");
    assert!(skipped.contains(&("events", "events/stray.parquet")), "{skipped:?}");
    assert!(skipped.iter().any(|(t, _)| *t == "dead_letter"), "{skipped:?}");
    // What is readable still answers.
    let n = rows(&lake, "SELECT COUNT(*) AS n FROM events_unique").await?;
    assert_eq!(n[0]["n"], 9);
    let dead = rows(&lake, "SELECT COUNT(*) AS n FROM dead_letter").await?;
    assert_eq!(dead[0]["n"], 1, "the good line of the damaged file is kept");
    Ok(())
}

#[tokio::test]
async fn an_empty_lake_has_empty_tables_and_every_report_runs() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let lake = SqlLake::open(dir.path()).await?;
    for q in queries::all() {
        let sql = queries::bind(q.sql, &[("experiment", "none")])?;
        lake.query(&sql).await.map_err(|e| anyhow::anyhow!("{}: {e}", q.name))?;
    }
    let k = &report(&lake, "kpis").await?[0];
    assert_eq!((k["learners"].clone(), k["gmv_cny"].clone()), (json!(0), json!(0.0)));
    Ok(())
}

#[tokio::test]
async fn bad_queries_and_bad_lakes_get_clear_errors() -> Result<()> {
    let dir = tempfile::tempdir()?;
    plant(dir.path()).await?;
    let lake = SqlLake::open(dir.path()).await?;
    let unknown = lake.query("SELECT * FROM nothing_here").await.unwrap_err();
    assert!(matches!(unknown, Error::Sql { .. }));
    assert!(unknown.to_string().contains("nothing_here"), "{unknown}");
    let syntax = lake.query("SELEC 1").await.unwrap_err();
    assert!(syntax.to_string().starts_with("SQL error:"), "{syntax}");
    for writing in ["CREATE VIEW v AS SELECT 1", "DROP VIEW events_unique", "COPY events TO '/tmp/x.parquet'"] {
        assert!(lake.query(writing).await.is_err(), "{writing} must be refused");
    }
    let missing = SqlLake::open(&dir.path().join("nope")).await.unwrap_err();
    assert!(matches!(missing, Error::NoLake { .. }), "{missing}");
    Ok(())
}

#[tokio::test]
async fn results_encode_as_csv_json_and_parquet() -> Result<()> {
    let dir = tempfile::tempdir()?;
    plant(dir.path()).await?;
    let lake = SqlLake::open(dir.path()).await?;
    let answer = lake.query("SELECT type, COUNT(*) AS n FROM events_unique GROUP BY type ORDER BY type").await?;
    let csv = String::from_utf8(output::csv(&answer.schema, &answer.batches)?)?;
    assert_eq!(csv, "type,n\nprogress,2\npurchase,4\nview,3\n");
    let table = output::table(&answer.schema, &answer.batches)?;
    assert!(table.contains("| purchase | 4 |"), "{table}");
    let parquet = output::parquet(&answer.schema, &answer.batches)?;
    assert!(parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"));
    let empty = lake.query("SELECT type FROM events_unique WHERE type = 'none'").await?;
    assert_eq!(String::from_utf8(output::csv(&empty.schema, &empty.batches)?)?, "type\n");
    Ok(())
}
