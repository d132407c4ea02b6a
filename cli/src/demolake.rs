//! `knowedge demo lake`: a demo lake of any size, written through ingestion.
//!
//! The demo generator ([`crate::demo::Generator`]) runs one learner at a
//! time and its events go through the ingestion service in batches
//! ([`Ingest::ingest_elements_as`]: validation, pseudonymisation, redaction,
//! per-batch Parquet files and dead letters), so memory holds one batch, not
//! the lake. Every third learner also gets recommendation answers from the
//! storefront's A/B experiment ([`crate::dev::EXPERIMENT`]): exposures
//! (stored as ingestion stores them), clicks on the first item shown and some
//! purchases of it, carrying the answer's experiment, variant and id. A few
//! events are sent broken (about one in [`BROKEN_EVERY`]) and end in the dead
//! letter. Compaction ([`Lake::compact`]) then gives the lake the shape
//! production has: one zstd file per partition.

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use chrono::{DateTime, Duration, Utc};
use knowedge_format::event::{Element, RawEvent};
use knowedge_format::exposure::Exposure;
use knowedge_format::pseudonym::Pseudonymizer;
use knowedge_ingest::Ingest;
use knowedge_lake::{CompactionReport, Lake, StoredExposure};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

use crate::demo::{DemoConfig, Generator, LearnerHistory, ReviewTexts};

/// One sent event in about this many is followed by a broken one.
pub const BROKEN_EVERY: u32 = 2000;

/// What to write.
#[derive(Clone, Debug)]
pub struct LakeOptions {
    /// Valid events to store (the broken ones come on top).
    pub events: u64,
    /// Generator seed.
    pub seed: u64,
    /// Events per ingestion batch.
    pub batch: usize,
    /// Days of history, ending at `end`.
    pub days: i64,
    /// Last moment of the history (at most now).
    pub end: DateTime<Utc>,
    /// Compact the lake at the end.
    pub compact: bool,
}

impl Default for LakeOptions {
    fn default() -> Self {
        let cfg = DemoConfig::default();
        Self { events: 100_000, seed: cfg.seed, batch: 50_000, days: 28, end: cfg.end, compact: true }
    }
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LakeSummary {
    /// Learners generated.
    pub learners: usize,
    /// Catalogue items stored.
    pub items: usize,
    /// Events ingestion accepted.
    pub accepted: u64,
    /// Events ingestion rejected (into the dead letter).
    pub rejected: u64,
    /// Events ingestion saw twice in a batch.
    pub duplicates: u64,
    /// Exposures stored.
    pub exposures: u64,
    /// Ingestion batches.
    pub batches: usize,
    /// What compaction did, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compaction: Option<CompactionReport>,
}

/// The storefront's experiment: its variants and the models behind them.
const VARIANTS: [(&str, &str); 2] = [("control", "mf-demo"), ("popularity", "popularity-demo")];
/// Items shown per answer.
const SHOWN: usize = 5;

/// The storefront: recommendation answers, what learners did with them.
struct Storefront {
    rng: StdRng,
    /// Item ids per subject, best first.
    by_subject: BTreeMap<String, Vec<(String, f64)>>,
    /// The best items of every subject.
    popular: Vec<(String, f64)>,
    pseudonymizer: Pseudonymizer,
}

impl Storefront {
    fn new(seed: u64, generator: &Generator<'_>, pseudonymizer: Pseudonymizer) -> Self {
        let mut by_subject: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for item in generator.catalogue() {
            by_subject.entry(item.category.clone()).or_default().push((item.id.clone(), item.price));
        }
        let popular = by_subject.values().flat_map(|items| items.iter().take(2).cloned()).collect();
        Self { rng: StdRng::seed_from_u64(seed ^ 0x5707_e5f0), by_subject, popular, pseudonymizer }
    }

    fn uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.random()).into_uuid().to_string()
    }

    /// Answers for `history`'s learner (one to three, within the history),
    /// appending the events they lead to; returns the exposures.
    fn visit(&mut self, history: &mut LearnerHistory, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Exposure> {
        let (variant, model) = VARIANTS[self.rng.random_range(0..VARIANTS.len())];
        let user = self.pseudonymizer.pseudonymize(&history.learner);
        let candidates: Vec<(String, f64)> = match variant {
            "control" => {
                history.interests.iter().flat_map(|s| self.by_subject.get(s).into_iter().flatten()).cloned().collect()
            }
            _ => self.popular.clone(),
        };
        let span = (end - start).num_milliseconds().max(1);
        let mut shown = Vec::new();
        for _ in 0..self.rng.random_range(1..=3) {
            let ts = start + Duration::milliseconds(self.rng.random_range(0..span));
            let mut items = Vec::with_capacity(SHOWN);
            while items.len() < SHOWN.min(candidates.len()) {
                let pick = &candidates[self.rng.random_range(0..candidates.len())];
                if !items.iter().any(|(id, _)| id == &pick.0) {
                    items.push(pick.clone());
                }
            }
            let recommendation_id = self.uuid();
            // The control's items match the learner's interests: clicked more often.
            let click = self.rng.random_bool(if variant == "control" { 0.35 } else { 0.25 });
            if let (true, Some((item, price))) = (click, items.first()) {
                let event = |id: String, kind: &str, t: DateTime<Utc>| {
                    json!({"event_id": id, "type": kind, "user_id": history.learner, "item_id": item,
                           "ts": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                           "experiment": crate::dev::EXPERIMENT, "variant": variant,
                           "recommendation_id": recommendation_id})
                };
                let t = ts + Duration::seconds(self.rng.random_range(2..60));
                let id = self.uuid();
                history.events.push((t, event(id, "click", t)));
                if self.rng.random_bool(0.3) {
                    let t = t + Duration::seconds(self.rng.random_range(20..300));
                    let id = self.uuid();
                    let mut purchase = event(id, "purchase", t);
                    purchase["price"] = json!(price);
                    purchase["currency"] = json!("CNY");
                    history.events.push((t, purchase));
                }
            }
            shown.push(Exposure {
                recommendation_id,
                ts: Some(ts),
                user: user.clone(),
                model_id: model.to_owned(),
                experiment: Some(crate::dev::EXPERIMENT.to_owned()),
                variant: Some(variant.to_owned()),
                items: items.into_iter().map(|(id, _)| id).collect(),
            });
        }
        history.events.retain(|(t, _)| *t <= end);
        shown
    }

    /// A broken copy of `event` (a new id): a missing time, an unknown type or a rating out of range.
    fn break_event(&mut self, event: &Value) -> Value {
        let mut broken = event.clone();
        broken["event_id"] = json!(self.uuid());
        match self.rng.random_range(0..3) {
            0 => {
                if let Some(o) = broken.as_object_mut() {
                    o.remove("ts");
                }
            }
            1 => broken["type"] = json!("wishlist"),
            _ => broken["rating"] = json!(11),
        }
        broken
    }
}

/// Writes a demo lake of `options.events` valid events into `lake` through
/// the ingestion service (pseudonymising with `pseudonymizer`), then
/// compacts it unless told not to. `progress(stored, total)` is called after each batch.
///
/// # Errors
/// When the lake cannot be written, or `options` make no sense.
pub async fn write(
    lake: &Lake,
    pseudonymizer: &Pseudonymizer,
    reviews: &ReviewTexts,
    options: &LakeOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<LakeSummary> {
    ensure!(options.batch > 0, "a batch holds at least one event");
    ensure!(
        (1..knowedge_format::exposure::MAX_AGE_DAYS).contains(&options.days),
        "the history spans 1 to {} days (ingestion refuses older events)",
        knowedge_format::exposure::MAX_AGE_DAYS - 1
    );
    let cfg =
        DemoConfig { seed: options.seed, learners: 0, days: options.days, end: options.end, ..DemoConfig::default() };
    let mut generator = Generator::new(&cfg, reviews);
    lake.put_catalogue(generator.catalogue()).await?;
    let mut store = Storefront::new(options.seed, &generator, pseudonymizer.clone());
    let ingest = Ingest::new(lake.clone(), pseudonymizer.clone());
    let mut summary = LakeSummary { items: generator.catalogue().len(), ..LakeSummary::default() };
    let mut batch: Vec<Element<'static>> = Vec::with_capacity(options.batch + options.batch / 100);
    let mut exposures: Vec<Exposure> = Vec::new();
    let mut sent = 0u64;
    while sent < options.events {
        let mut history = generator.next_learner();
        if summary.learners.is_multiple_of(3) {
            exposures.extend(store.visit(&mut history, generator.start(), generator.end()));
        }
        summary.learners += 1;
        for (_, event) in history.events {
            if sent == options.events {
                break;
            }
            if store.rng.random_ratio(1, BROKEN_EVERY) {
                batch.push(Element::Raw(RawEvent::Json(store.break_event(&event))));
            }
            batch.push(Element::Raw(RawEvent::Json(event)));
            sent += 1;
            if batch.len() >= options.batch {
                flush(&ingest, lake, &mut batch, &mut exposures, &mut summary).await?;
                progress(sent, options.events);
            }
        }
    }
    if !batch.is_empty() || !exposures.is_empty() {
        flush(&ingest, lake, &mut batch, &mut exposures, &mut summary).await?;
        progress(sent, options.events);
    }
    if options.compact {
        summary.compaction = Some(lake.compact().await?);
    }
    Ok(summary)
}

/// Ingests one batch (most from the web client, some from the app) and stores the exposures gathered so far.
async fn flush(
    ingest: &Ingest,
    lake: &Lake,
    batch: &mut Vec<Element<'static>>,
    exposures: &mut Vec<Exposure>,
    summary: &mut LakeSummary,
) -> Result<()> {
    let now = Utc::now();
    let key = if summary.batches % 4 == 3 { "app" } else { "web" };
    let result = ingest.ingest_elements_as(batch, now, Some(key)).await?;
    summary.accepted += result.accepted as u64;
    summary.rejected += result.rejected as u64;
    summary.duplicates += result.duplicates as u64;
    summary.batches += 1;
    batch.clear();
    let mut stored = Vec::with_capacity(exposures.len());
    for e in exposures.drain(..) {
        e.check(now).map_err(anyhow::Error::msg)?;
        stored.push(StoredExposure::new(e, now, Some("edge".to_owned())));
    }
    if !stored.is_empty() {
        lake.write_exposures(&stored).await?;
        summary.exposures += stored.len() as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> Pseudonymizer {
        Pseudonymizer::from_hex(&"ab".repeat(32)).unwrap()
    }

    #[tokio::test]
    async fn a_small_lake_holds_exactly_the_events_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&dir.path().to_string_lossy()).unwrap();
        let options = LakeOptions { events: 3_000, batch: 700, ..LakeOptions::default() };
        let mut calls = Vec::new();
        let s =
            write(&lake, &key(), &ReviewTexts::default(), &options, |n, total| calls.push((n, total))).await.unwrap();
        assert_eq!(s.accepted, 3_000);
        assert_eq!(s.duplicates, 0);
        assert_eq!(s.batches, calls.len());
        assert_eq!(calls.last(), Some(&(3_000, 3_000)));
        assert!(s.exposures > 0 && s.learners > 30, "{s:?}");
        // Compacted: one file per partition.
        assert!(s.compaction.as_ref().unwrap().files_removed > 0);
        for day in std::fs::read_dir(dir.path().join("events")).unwrap() {
            for partition in std::fs::read_dir(day.unwrap().path()).unwrap() {
                assert_eq!(std::fs::read_dir(partition.unwrap().path()).unwrap().count(), 1);
            }
        }

        let events = lake.read_events().await.unwrap();
        assert_eq!(events.len(), 3_000);
        // Pseudonymised: no raw learner id reached the lake.
        assert!(events.iter().all(|e| knowedge_format::exposure::is_pseudonym(&e.event.user_id)));
        assert!(events.iter().all(|e| e.key_name.as_deref().is_some_and(|k| k == "web" || k == "app")));
        let attributed: Vec<_> = events.iter().filter(|e| e.event.recommendation_id.is_some()).collect();
        assert!(!attributed.is_empty());
        assert!(attributed.iter().all(|e| e.event.variant.is_some() && e.event.experiment.is_some()));
        assert!(events.iter().any(|e| e.event.price.is_some() && e.event.currency.as_deref() == Some("CNY")));

        // Attributed clicks point at an exposure of the same learner.
        let shown = lake.read_exposures().await.unwrap();
        assert_eq!(shown.len() as u64, s.exposures);
        for e in attributed {
            let x = shown.iter().find(|x| Some(&x.recommendation_id) == e.event.recommendation_id.as_ref()).unwrap();
            assert_eq!(x.user_id.as_deref(), Some(e.event.user_id.as_str()));
            assert_eq!(x.variant, e.event.variant);
        }
        assert_eq!(lake.read_dead_letters().await.unwrap().len() as u64, s.rejected);
        assert!(lake.catalogue().await.unwrap().len() == s.items);
    }

    #[tokio::test]
    async fn the_same_seed_gives_the_same_events() {
        let end = DemoConfig::default().end;
        let mut lakes = Vec::new();
        for _ in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            let lake = Lake::open(&dir.path().to_string_lossy()).unwrap();
            let options = LakeOptions { events: 500, batch: 200, end, compact: false, ..LakeOptions::default() };
            let s = write(&lake, &key(), &ReviewTexts::default(), &options, |_, _| {}).await.unwrap();
            assert!(s.compaction.is_none());
            let mut ids: Vec<_> = lake.read_events().await.unwrap().into_iter().map(|e| e.event).collect();
            ids.sort_by(|a, b| a.event_id.cmp(&b.event_id));
            lakes.push((ids, dir));
        }
        assert_eq!(lakes[0].0, lakes[1].0);
    }

    #[tokio::test]
    async fn nonsense_options_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&dir.path().to_string_lossy()).unwrap();
        for options in
            [LakeOptions { batch: 0, ..LakeOptions::default() }, LakeOptions { days: 40, ..LakeOptions::default() }]
        {
            assert!(write(&lake, &key(), &ReviewTexts::default(), &options, |_, _| {}).await.is_err());
        }
    }
}
