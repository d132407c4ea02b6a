//! A training run that promotes its model records the promotion in the
//! lake's audit log; one that does not promote records nothing.
#![allow(missing_docs, clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use knowedge_format::artifact::SigningKey;
use knowedge_format::store::Channel;
use knowedge_lake::{AuditExpectation, Lake, ModelStore, StoredEvent};
use knowedge_train::Recipe;
use knowedge_train::pipeline::{self, AUDIT_KEY_NAME, Options};

fn view(n: usize, user: usize, item: usize) -> StoredEvent {
    let ts =
        DateTime::parse_from_rfc3339("2026-11-01T10:00:00Z").unwrap().with_timezone(&Utc) + Duration::minutes(n as i64);
    knowedge_test_support::lake::view_event(
        &format!("00000000-0000-4000-8000-{n:012}"),
        &format!("p-{user}"),
        &format!("c{item}"),
        ts,
        ts,
    )
}

#[tokio::test]
async fn promotions_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let models = ModelStore::open(dir.path().join("models").to_str().unwrap()).unwrap();
    let events: Vec<StoredEvent> = (0..60).map(|n| view(n, n % 6, (n * 7) % 5)).collect();
    lake.write_events(&events).await.unwrap();
    let key = SigningKey::from_seed([3; 32]);

    let off = Options { promote: false, score_reviews: false, ..Options::new(Recipe::Popularity) };
    let r = pipeline::run(&lake, &models, &key, &off).await.unwrap();
    assert!(!r.promoted);
    assert!(lake.audit_records().await.unwrap().is_empty());

    let on = Options { score_reviews: false, ..Options::new(Recipe::Popularity) };
    let r = pipeline::run(&lake, &models, &key, &on).await.unwrap();
    assert!(r.promoted, "{}", r.decision);
    let records = lake.audit_records().await.unwrap();
    assert_eq!(records.len(), 1);
    let rec = &records[0];
    assert_eq!((rec.action.as_str(), rec.key_name.as_str()), ("model_promotion", AUDIT_KEY_NAME));
    assert_eq!(rec.details["version"], r.version.as_str());
    assert_eq!(rec.details["channel"], Channel::Recommender.pointer());
    assert!(lake.audit_verify(&AuditExpectation::default()).await.unwrap().is_intact());
}
