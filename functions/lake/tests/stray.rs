//! Stray and unreadable objects in the lake are skipped with a warning by
//! every reader, and counted; the model store records promotions in the
//! audit log.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::Path;

use chrono::{DateTime, Utc};
use knowedge_format::event::Problem;
use knowedge_format::store::Channel;
use knowedge_lake::{AuditExpectation, DeadLetter, Lake, ModelStore, ReviewSentiment, StoredEvent};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn event(id: &str, received: &str) -> StoredEvent {
    knowedge_test_support::lake::view_event(id, "p-1", "c1", at("2026-11-01T10:00:00Z"), at(received))
}

fn open(dir: &Path) -> Lake {
    Lake::open(dir.to_str().unwrap()).unwrap()
}

fn plant(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

#[tokio::test]
async fn event_readers_and_compaction_skip_stray_and_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = open(dir.path());
    lake.write_events(&[event("a", "2026-11-01T11:00:00Z")]).await.unwrap();
    lake.write_events(&[event("b", "2026-11-01T12:00:00Z")]).await.unwrap();
    let part = "events/dt=2026-11-01/type=view";
    let good = std::fs::read_dir(dir.path().join(part)).unwrap().next().unwrap().unwrap().path();
    let truncated = std::fs::read(&good).unwrap();
    plant(dir.path(), &format!("{part}/notes.txt"), b"remember to compact");
    plant(dir.path(), &format!("{part}/part-0-truncated.parquet"), &truncated[..truncated.len() / 2]);
    plant(dir.path(), &format!("{part}/part-0-garbage.parquet"), b"PAR1 not really");
    plant(dir.path(), "events/dt=2026-11-01/type=unknown/part-1.parquet", &truncated);
    plant(dir.path(), "events/README.md", b"# lake");

    assert_eq!(lake.skipped_objects(), 0);
    assert_eq!(lake.scan_events().await.unwrap().len(), 2);
    assert_eq!(lake.skipped_objects(), 5, "each stray or broken object once per read");
    let events = lake.read_events().await.unwrap();
    assert_eq!(events.iter().map(|e| e.event.event_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(lake.skipped_objects(), 10);

    // Compaction merges the readable files and leaves the others as they are.
    let report = lake.compact().await.unwrap();
    assert_eq!((report.files_removed, report.rows_written), (2, 2));
    for stray in ["notes.txt", "part-0-truncated.parquet", "part-0-garbage.parquet"] {
        assert!(dir.path().join(part).join(stray).is_file(), "{stray} kept");
    }
    assert_eq!(open(dir.path()).read_events().await.unwrap().len(), 2);
}

#[tokio::test]
async fn dead_letter_reader_skips_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let lake = open(dir.path());
    let letter = DeadLetter {
        received_at: at("2026-11-01T11:00:00Z"),
        index: 0,
        raw: serde_json::json!({"type": "view"}),
        raw_sha256: None,
        problems: vec![Problem { field: "event_id".into(), rule: "required".into(), message: "x".into() }],
        dropped_fields: vec!["email".into()],
        dropped_unnamed: 1,
        key_name: Some("web".into()),
    };
    lake.write_dead_letters(std::slice::from_ref(&letter)).await.unwrap();
    plant(dir.path(), "dead-letter/dt=2026-11-01/part-9-garbage.ndjson", b"\x00\x01 not json\n{\"half\":");
    plant(dir.path(), "dead-letter/dt=2026-11-01/notes.txt", b"hello");
    // A file written before the dead-letter policy fields still reads.
    plant(
        dir.path(),
        "dead-letter/dt=2026-11-01/part-8-old.ndjson",
        br#"{"received_at":"2026-11-01T10:00:00Z","index":3,"raw":{"type":"view"},"problems":[]}"#,
    );
    let back = lake.read_dead_letters().await.unwrap();
    assert_eq!(back.len(), 2);
    assert!(back.contains(&letter));
    let old = back.iter().find(|l| l.index == 3).unwrap();
    assert_eq!((old.dropped_fields.len(), old.dropped_unnamed, old.key_name.clone()), (0, 0, None));
    assert_eq!(lake.skipped_objects(), 2);
}

#[tokio::test]
async fn review_sentiment_reader_skips_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let lake = open(dir.path());
    let row = ReviewSentiment {
        event_id: "r1".into(),
        item_id: Some("c1".into()),
        ts: at("2026-11-01T10:00:00Z"),
        label: "positive".into(),
        score: 0.9,
        model_id: "s1".into(),
        scored_at: at("2026-11-02T10:00:00Z"),
    };
    lake.write_review_sentiment(std::slice::from_ref(&row)).await.unwrap();
    plant(dir.path(), "review-sentiment/dt=2026-11-01/part-0-garbage.parquet", b"garbage");
    plant(dir.path(), "review-sentiment/dt=2026-11-01/notes.txt", b"hello");
    assert_eq!(lake.read_review_sentiment().await.unwrap(), vec![row]);
    assert_eq!(lake.skipped_objects(), 2);
}

#[tokio::test]
async fn promotions_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let lake = open(&dir.path().join("lake"));
    let models = ModelStore::open(dir.path().join("models").to_str().unwrap()).unwrap();
    models.publish(Channel::Recommender, "v1", b"not audited".to_vec()).await.unwrap();
    assert!(lake.audit_records().await.unwrap().is_empty());
    let models = models.with_audit(lake.clone(), "knowedge-train");
    models.publish(Channel::Recommender, "v2", b"a".to_vec()).await.unwrap();
    models.publish(Channel::Sentiment, "s1", b"b".to_vec()).await.unwrap();
    let records = lake.audit_records().await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!((records[0].action.as_str(), records[0].key_name.as_str()), ("model_promotion", "knowedge-train"));
    assert_eq!(records[0].details, serde_json::json!({"channel": "current", "version": "v2", "previous": "v1"}));
    assert_eq!(records[1].details["channel"], "current-sentiment");
    assert_eq!(records[1].details["previous"], serde_json::Value::Null);
    assert!(lake.audit_verify(&AuditExpectation { at_least: Some(2), digest: None }).await.unwrap().is_intact());
}
