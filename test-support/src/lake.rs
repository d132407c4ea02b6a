//! A planted lake for the privacy tests and the erasure benchmark: many
//! learners' events in `days × 8` partitions, one learner (the one to erase
//! or export) in every partition, in per-day files and in small per-batch
//! files, with review sentiment rows and dead letters; and a model store
//! whose models hold that learner.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use knowedge_format::artifact::{ArtifactBuilder, ModelKind, SigningKey};
use knowedge_format::event::{Event, EventType};
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_lake::{DeadLetter, Lake, ReviewSentiment, StoredEvent};

/// The learner the planted lake is about.
pub const LEARNER: &str = "learner-to-forget";

/// What was planted.
#[derive(Clone, Debug)]
pub struct PlantedLake {
    /// The learner's pseudonym.
    pub pseudonym: String,
    /// Events written (each once).
    pub events: usize,
    /// The learner's event ids.
    pub learner_events: HashSet<String>,
    /// Events per partition `(dt, type)` of the other learners.
    pub others_per_partition: BTreeMap<(String, String), usize>,
    /// The learner's review sentiment rows.
    pub learner_sentiment: usize,
    /// The learner's dead letters (by pseudonym, and one holding the raw id).
    pub learner_dead_letters: usize,
    /// Pseudonyms of some other learners (in the planted models too).
    pub others: Vec<String>,
    /// Files written.
    pub files: usize,
}

struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// The first day of the planted lake.
pub fn first_day() -> DateTime<Utc> {
    DateTime::from_timestamp(1_761_955_200, 0).unwrap_or_default() // 2026-11-01T00:00:00Z
}

fn event(id: String, t: EventType, user: &str, day: u32, n: u64) -> StoredEvent {
    let ts = first_day() + TimeDelta::days(i64::from(day)) + TimeDelta::seconds((n % 86_000) as i64);
    let item = (t != EventType::Search).then(|| format!("item-{:03}", n % 500));
    StoredEvent {
        event: Event {
            event_id: id,
            event_type: t,
            user_id: user.to_owned(),
            item_id: item,
            ts,
            price: (t == EventType::Purchase).then_some(49.0),
            currency: (t == EventType::Purchase).then(|| "CNY".to_owned()),
            rating: matches!(t, EventType::Rate | EventType::Review).then_some(4),
            progress: (t == EventType::Progress).then_some(0.5),
            text: (t == EventType::Review).then(|| "讲得很清楚，收获很大".to_owned()),
            query: (t == EventType::Search).then(|| "python 入门".to_owned()),
            session_id: Some(format!("s-{}", n % 977)),
            experiment: None,
            variant: None,
            recommendation_id: None,
        },
        received_at: ts + TimeDelta::minutes(1),
        key_name: Some("web".into()),
        redactions: 0,
    }
}

/// An event id (UUID shaped) from a number and a tag.
pub fn event_id(tag: u32, n: u64) -> String {
    format!("{tag:08x}-0000-4000-8000-{n:012x}")
}

/// Plants about `events` events over `days` days of `learners` other
/// learners plus [`LEARNER`] (three events in every partition, a third of
/// them in small per-batch files) into `lake`.
pub async fn plant(
    lake: &Lake,
    pseudonymizer: &Pseudonymizer,
    events: usize,
    days: u32,
    learners: usize,
) -> knowedge_lake::Result<PlantedLake> {
    let me = pseudonymizer.pseudonymize(LEARNER);
    let others: Vec<String> = (0..learners).map(|i| pseudonymizer.pseudonymize(&format!("learner-{i}"))).collect();
    let mut rng = Lcg(42);
    let mut planted = PlantedLake {
        pseudonym: me.clone(),
        events: 0,
        learner_events: HashSet::new(),
        others_per_partition: BTreeMap::new(),
        learner_sentiment: 0,
        learner_dead_letters: 0,
        others: others.iter().take(50).cloned().collect(),
        files: 0,
    };
    let mine_per_day = 3 * EventType::ALL.len();
    let small_batches = 40usize;
    let small_each = 20usize;
    let bulk = events.saturating_sub(days as usize * mine_per_day + small_batches * small_each);
    let per_day = bulk / days as usize;
    let mut n: u64 = 0;
    let mut reviews: Vec<(String, DateTime<Utc>, bool)> = Vec::new();
    let mut small: Vec<StoredEvent> = Vec::new();
    let count_other = |planted: &mut PlantedLake, e: &StoredEvent| {
        let key = (e.event.ts.format("%Y-%m-%d").to_string(), e.event.event_type.to_string());
        *planted.others_per_partition.entry(key).or_default() += 1;
    };
    for day in 0..days {
        let mut batch = Vec::with_capacity(per_day + mine_per_day);
        for k in 0..per_day {
            let t = EventType::ALL[k % EventType::ALL.len()];
            let user = &others[rng.below(others.len() as u64) as usize];
            let e = event(event_id(1, n), t, user, day, n);
            n += 1;
            count_other(&mut planted, &e);
            if t == EventType::Review && reviews.len() < 2_000 {
                reviews.push((e.event.event_id.clone(), e.event.ts, false));
            }
            batch.push(e);
        }
        for (j, t) in EventType::ALL.iter().flat_map(|t| [*t; 3]).enumerate() {
            let e = event(event_id(2, n), t, &me, day, n);
            n += 1;
            planted.learner_events.insert(e.event.event_id.clone());
            if t == EventType::Review {
                reviews.push((e.event.event_id.clone(), e.event.ts, true));
            }
            // A third of the learner's events arrive in small per-batch files.
            if j % 3 == 0 { small.push(e) } else { batch.push(e) }
        }
        planted.files += lake.write_events(&batch).await?.len();
        planted.events += batch.len();
    }
    // Small per-batch files: some of the learner's events with others'.
    for (b, chunk) in small.chunks(small.len().div_ceil(small_batches).max(1)).enumerate() {
        let mut batch = chunk.to_vec();
        for k in 0..small_each {
            let t = EventType::ALL[k % EventType::ALL.len()];
            let user = &others[rng.below(others.len() as u64) as usize];
            let e = event(event_id(3, n), t, user, (b as u32 * 7) % days, n);
            n += 1;
            count_other(&mut planted, &e);
            batch.push(e);
        }
        planted.files += lake.write_events(&batch).await?.len();
        planted.events += batch.len();
    }
    // Review sentiment of some reviews, the learner's among them.
    let rows: Vec<ReviewSentiment> = reviews
        .iter()
        .map(|(id, ts, _)| ReviewSentiment {
            event_id: id.clone(),
            item_id: Some("item-001".into()),
            ts: *ts,
            label: "positive".into(),
            score: 0.9,
            model_id: "sentiment-test".into(),
            scored_at: *ts + TimeDelta::hours(1),
        })
        .collect();
    planted.learner_sentiment = reviews.iter().filter(|r| r.2).count();
    planted.files += lake.write_review_sentiment(&rows).await?.len();
    // Dead letters: the learner's (pseudonymised, and one whose user_id was not a
    // string, so ingestion could not pseudonymise it) among others'.
    for f in 0..4u32 {
        let received = first_day() + TimeDelta::days(i64::from(f) * 5);
        let mut letters = Vec::new();
        for k in 0..10 {
            let (user, mine) = match k {
                0 => (serde_json::json!(me), true),
                1 if f == 0 => (serde_json::json!([LEARNER]), true),
                _ => (serde_json::json!(others[k * 3 + f as usize]), false),
            };
            planted.learner_dead_letters += usize::from(mine);
            letters.push(DeadLetter {
                received_at: received,
                index: k,
                raw: serde_json::json!({"event_id": event_id(4, u64::from(f) * 100 + k as u64), "type": "rate",
                    "user_id": user, "item_id": "item-001", "rating": 9}),
                raw_sha256: None,
                problems: Vec::new(),
                dropped_fields: Vec::new(),
                dropped_unnamed: 0,
                key_name: None,
            });
        }
        lake.write_dead_letters(&letters).await?;
        planted.files += 1;
    }
    Ok(planted)
}

/// A signed 8-bit matrix factorisation model over `users` (and 200 items),
/// with seen lists: what a training run publishes, in miniature.
pub fn planted_model(key: &SigningKey, users: &[String], model_id: &str, created_at: DateTime<Utc>) -> Vec<u8> {
    let dims = 16;
    let items: Vec<String> = (0..200).map(|i| format!("item-{i:03}")).collect();
    let mut rng = Lcg(7);
    let mut value = || (rng.below(2001) as f32 - 1000.0) / 1000.0;
    let user_factors: Vec<f32> = (0..users.len() * dims).map(|_| value()).collect();
    let item_factors: Vec<f32> = (0..items.len() * dims).map(|_| value()).collect();
    let seen: Vec<Vec<u32>> = (0..users.len()).map(|u| vec![(u % 200) as u32, ((u * 7) % 200) as u32]).collect();
    let mut b = ArtifactBuilder::new(ModelKind::Mf, dims);
    b.items(items).users(users.to_vec());
    b.popularity((0..200).map(|i| 200.0 - i as f32).collect());
    // Finite factors always quantise.
    let _ = b.factors_8bit(&user_factors, &item_factors);
    b.seen(&seen);
    b.manifest_mut().model_id = model_id.to_owned();
    b.manifest_mut().created_at = created_at;
    b.sign(key).unwrap_or_default()
}

/// A stored `view` event of `user` on `item` at `ts`, received at
/// `received_at` through the key `web` (no other field set).
pub fn view_event(
    event_id: &str,
    user: &str,
    item: &str,
    ts: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> StoredEvent {
    StoredEvent {
        event: Event {
            event_id: event_id.to_owned(),
            event_type: EventType::View,
            user_id: user.to_owned(),
            item_id: Some(item.to_owned()),
            ts,
            price: None,
            currency: None,
            rating: None,
            progress: None,
            text: None,
            query: None,
            session_id: None,
            experiment: None,
            variant: None,
            recommendation_id: None,
        },
        received_at,
        key_name: Some("web".into()),
        redactions: 0,
    }
}
