//! `knowedge audit verify` / `audit list` and `lake stats` on a real lake
//! directory, through the built binary.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use knowedge_lake::{AuditAction, Lake};
use serde_json::{Value, json};

fn knowedge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_knowedge")).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn verify_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().to_str().unwrap();
    let lake = Lake::open(lake_dir).unwrap();
    // An empty log verifies.
    let out = knowedge(&["audit", "verify", "--lake", lake_dir]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("0 records"));
    for i in 0..5 {
        lake.audit_append(AuditAction::ModelPromotion, "knowedge-train", json!({"version": format!("v{i}")}))
            .await
            .unwrap();
    }
    let out = knowedge(&["audit", "verify", "--lake", lake_dir, "--expect-at-least", "5"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    let head = lake.audit_records().await.unwrap()[4].digest.clone();
    assert!(summary.contains("5 records") && summary.contains(&head), "{summary}");

    let out = knowedge(&["audit", "list", "--lake", lake_dir, "--json"]);
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 5);
    assert_eq!(list[2]["details"]["version"], "v2");
    let out = knowedge(&["audit", "list", "--lake", lake_dir]);
    assert_eq!(text(&out.stdout).lines().count(), 5);
    assert!(text(&out.stdout).contains("model_promotion"));

    // A changed record: non-zero, and the message names it.
    let third = Path::new(lake_dir).join("audit/000000000003.json");
    let original = std::fs::read_to_string(&third).unwrap();
    std::fs::write(&third, original.replace("v2", "v9")).unwrap();
    let out = knowedge(&["audit", "verify", "--lake", lake_dir]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("record 3") && err.contains("digest_mismatch"), "{err}");
    std::fs::write(&third, original).unwrap();
    // A removed tail: caught with the kept head or count.
    std::fs::remove_file(Path::new(lake_dir).join("audit/000000000005.json")).unwrap();
    assert!(knowedge(&["audit", "verify", "--lake", lake_dir]).status.success());
    let out = knowedge(&["audit", "verify", "--lake", lake_dir, "--expect-digest", &head]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("digest_not_found"));
    let out = knowedge(&["audit", "verify", "--lake", lake_dir, "--expect-at-least", "5"]);
    assert!(text(&out.stderr).contains("truncated"));
}

#[test]
fn lake_stats_counts_skipped_objects() {
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("events/dt=2026-11-01/type=view");
    std::fs::create_dir_all(&part).unwrap();
    std::fs::write(part.join("notes.txt"), "x").unwrap();
    std::fs::write(part.join("part-1.parquet"), "garbage").unwrap();
    std::fs::create_dir_all(dir.path().join("dead-letter/dt=2026-11-01")).unwrap();
    std::fs::write(dir.path().join("dead-letter/dt=2026-11-01/part-1.ndjson"), "garbage\n").unwrap();
    let out = knowedge(&["lake", "stats", "--lake", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, json!({"rows": 0, "events": 0, "dead_letters": 0, "skipped_objects": 3}));
    assert!(text(&out.stderr).contains("lake object skipped"), "a warning names each: {}", text(&out.stderr));
}
