//! A lake for the report tests: every table the report queries read, with
//! enough variety that a difference between SQL engines shows. Learners
//! over six weeks view, start, buy (CNY, some USD), complete, click and
//! review items of four categories; an A/B experiment splits them; edges
//! logged exposures; a batch was sent twice; some records were rejected.
//! Deterministic for a given seed.

use chrono::{DateTime, TimeDelta, Utc};
use knowedge_format::event::{EventType, Problem};
use knowedge_lake::{CatalogueItem, DeadLetter, Lake, ReviewSentiment, StoredEvent, StoredExposure};

/// What was planted.
#[derive(Clone, Debug, Default)]
pub struct BusinessLake {
    /// Events written, each once (the re-sent batch not counted again).
    pub events: usize,
    /// Exposures written.
    pub exposures: usize,
    /// The experiment's name.
    pub experiment: String,
}

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The first day: Monday 2026-10-05.
fn start() -> DateTime<Utc> {
    "2026-10-05T00:00:00Z".parse().unwrap_or_default()
}

const CATEGORIES: [&str; 4] = ["writing", "history", "finance", "coding"];

fn item(n: u64) -> String {
    format!("item-{n:03}")
}

fn pseudonym(n: u64) -> String {
    format!("{:064x}", 0x1000 + n * 7919)
}

fn stored(id: String, t: EventType, user: &str, item: Option<String>, ts: DateTime<Utc>) -> StoredEvent {
    let mut e = crate::lake::view_event(&id, user, "", ts, ts + TimeDelta::seconds(3));
    e.event.event_type = t;
    e.event.item_id = item;
    e.key_name = Some(if ts.timestamp() % 3 == 0 { "ios".into() } else { "web".into() });
    e
}

/// Plants `learners` learners into the lake at `root` (a directory).
pub async fn plant(root: &std::path::Path, learners: u64, seed: u64) -> knowedge_lake::Result<BusinessLake> {
    let lake = Lake::open(root.to_str().unwrap_or_default())?;
    let items = 24u64;
    let catalogue: Vec<CatalogueItem> = (0..items)
        .map(|n| CatalogueItem {
            id: item(n),
            title: format!("Course {n}"),
            format: if n % 3 == 0 { "ebook".into() } else { "course".into() },
            category: CATEGORIES[(n % 4) as usize].into(),
            price: 49.0 + 10.0 * (n % 5) as f64,
            currency: "CNY".into(),
        })
        .collect();
    lake.put_catalogue(&catalogue).await?;
    let mut rng = Lcg(seed);
    let experiment = "ranker-2026-10".to_owned();
    let mut events = Vec::new();
    let mut exposures = Vec::new();
    let mut sentiment = Vec::new();
    let mut n = 0u64;
    let mut next_id = |rng: &mut Lcg| {
        n += 1;
        format!("{:08x}-0000-4000-8000-{:012x}", rng.below(1 << 30), n)
    };
    for l in 0..learners {
        let user = pseudonym(l);
        let variant = if l % 2 == 0 { "control" } else { "treatment" };
        let first_day = rng.below(35) as i64;
        let active_days = 1 + rng.below(12);
        for k in 0..active_days {
            let day = (first_day + (k * (1 + rng.below(4))) as i64).min(41);
            let t0 = start() + TimeDelta::days(day) + TimeDelta::minutes((rng.below(20 * 60)) as i64 + 60);
            let it = rng.below(items);
            // A recommendation answer, shown under the experiment.
            let rec = format!("r-{l:04}-{k:03}");
            exposures.push(StoredExposure {
                recommendation_id: rec.clone(),
                ts: t0,
                received_at: t0 + TimeDelta::seconds(1),
                user_id: Some(user.clone()),
                model_id: if variant == "control" { "m-pop".into() } else { "m-mf".into() },
                experiment: Some(experiment.clone()),
                variant: Some(variant.into()),
                items: vec![item(it), item((it + 1) % items), item((it + 2) % items)],
                key_name: Some("edge".into()),
            });
            let mut view = stored(next_id(&mut rng), EventType::View, &user, Some(item(it)), t0);
            view.event.session_id = Some(format!("s-{l}-{k}"));
            events.push(view);
            let lift = if variant == "treatment" { 10 } else { 0 };
            if rng.chance(35 + lift) {
                let mut click =
                    stored(next_id(&mut rng), EventType::Click, &user, Some(item(it)), t0 + TimeDelta::seconds(20));
                click.event.recommendation_id = Some(rec.clone());
                click.event.experiment = Some(experiment.clone());
                click.event.variant = Some(variant.into());
                events.push(click);
            }
            if rng.chance(50) {
                let mut p =
                    stored(next_id(&mut rng), EventType::Progress, &user, Some(item(it)), t0 + TimeDelta::minutes(5));
                p.event.progress = Some((rng.below(101) as f64) / 100.0);
                events.push(p);
            }
            if rng.chance(18 + lift / 2) {
                let mut buy =
                    stored(next_id(&mut rng), EventType::Purchase, &user, Some(item(it)), t0 + TimeDelta::minutes(9));
                let usd = rng.chance(5);
                buy.event.price = Some(if usd { 9.99 } else { catalogue[it as usize].price });
                buy.event.currency = Some(if usd { "USD".into() } else { "CNY".into() });
                buy.event.experiment = Some(experiment.clone());
                buy.event.variant = Some(variant.into());
                if rng.chance(60) {
                    buy.event.recommendation_id = Some(rec.clone());
                }
                events.push(buy);
                if rng.chance(40) {
                    let id = next_id(&mut rng);
                    let at = t0 + TimeDelta::minutes(30);
                    let mut review = stored(id.clone(), EventType::Review, &user, Some(item(it)), at);
                    review.event.rating = Some(1 + rng.below(5) as u8);
                    review.event.text = Some("讲得很清楚".into());
                    events.push(review);
                    let positive = rng.chance(70);
                    sentiment.push(ReviewSentiment {
                        event_id: id,
                        item_id: Some(item(it)),
                        ts: at,
                        label: if positive { "positive".into() } else { "negative".into() },
                        score: if positive { 0.9 } else { 0.2 },
                        model_id: "s-1".into(),
                        scored_at: at + TimeDelta::hours(1),
                    });
                }
            }
            if rng.chance(10) {
                let mut search = stored(next_id(&mut rng), EventType::Search, &user, None, t0 + TimeDelta::seconds(5));
                search.event.query = Some("python".into());
                events.push(search);
            }
        }
    }
    let planted = BusinessLake { events: events.len(), exposures: exposures.len(), experiment };
    for chunk in events.chunks(400) {
        lake.write_events(chunk).await?;
    }
    // A batch sent twice.
    lake.write_events(&events[..events.len().min(150)]).await?;
    lake.write_exposures(&exposures).await?;
    lake.write_review_sentiment(&sentiment).await?;
    let rejected: Vec<DeadLetter> = (0..7)
        .map(|i| DeadLetter {
            received_at: start() + TimeDelta::days(3 + i),
            index: i as usize,
            raw: serde_json::json!({"event_id": format!("bad-{i}"), "type": "teleport"}),
            raw_sha256: None,
            problems: vec![Problem {
                field: if i % 2 == 0 { "type".into() } else { "ts".into() },
                rule: if i % 2 == 0 { "enum".into() } else { "too_old".into() },
                message: "refused".into(),
            }],
            dropped_fields: vec![],
            dropped_unnamed: 0,
            key_name: Some("web".into()),
        })
        .collect();
    for letter in &rejected {
        lake.write_dead_letters(std::slice::from_ref(letter)).await?;
    }
    Ok(planted)
}
