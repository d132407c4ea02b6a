//! A realistic paid-knowledge demo data set with planted learner interests.
//!
//! A catalogue of courses, columns, e-books, audio lessons and live classes
//! in a dozen subjects, and learners who each favour one or two subjects.
//! Learners browse mostly within their subjects (and sometimes whatever is
//! popular), progress through what they open, buy some of it, rate it and
//! review it. Review texts come from real Chinese reviews when
//! `../shared/data/reviews-zh` is available.
//!
//! Generation is deterministic for a seed, so tests can check that the
//! learned model recovers the planted interests.

use std::collections::HashMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use knowedge_lake::CatalogueItem;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const SUBJECTS: [(&str, &str); 12] = [
    ("python", "Python 编程"),
    ("data", "数据分析"),
    ("ml", "机器学习"),
    ("product", "产品经理"),
    ("career", "职场沟通"),
    ("finance", "个人理财"),
    ("english", "英语口语"),
    ("photo", "摄影入门"),
    ("psychology", "心理学"),
    ("history", "中国历史"),
    ("writing", "写作训练"),
    ("frontend", "前端开发"),
];
const FORMATS: [(&str, &str); 5] =
    [("course", "系统课"), ("column", "专栏"), ("ebook", "电子书"), ("audio", "音频课"), ("live", "直播课")];

/// Knobs of the generator.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Random seed.
    pub seed: u64,
    /// Number of learners.
    pub learners: usize,
    /// Items per subject.
    pub items_per_subject: usize,
    /// Days of history, ending at `end`.
    pub days: i64,
    /// Last moment of the history.
    pub end: DateTime<Utc>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        // Whole minutes: the same seed gives the same history, only shifted in time.
        let end = Utc::now() - Duration::minutes(10);
        let end = end.duration_trunc(Duration::minutes(1)).unwrap_or(end);
        Self { seed: 7, learners: 600, items_per_subject: 20, days: 21, end }
    }
}

/// Real review sentences to reuse, split by polarity.
#[derive(Clone, Debug, Default)]
pub struct ReviewTexts {
    /// Positive reviews.
    pub positive: Vec<String>,
    /// Negative reviews.
    pub negative: Vec<String>,
}

impl ReviewTexts {
    /// Loads `pos.txt` and `neg.txt` from `dir`, if present.
    pub fn load(dir: &std::path::Path) -> Option<Self> {
        let read = |name: &str| -> Option<Vec<String>> {
            let text = std::fs::read_to_string(dir.join(name)).ok()?;
            Some(
                text.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| l.chars().take(2000).collect()).collect(),
            )
        };
        Some(Self { positive: read("pos.txt")?, negative: read("neg.txt")? })
    }

    fn pick(&self, rng: &mut StdRng, positive: bool) -> String {
        let pool = if positive { &self.positive } else { &self.negative };
        if pool.is_empty() {
            return if positive {
                "讲得很清楚，收获很大，推荐！".into()
            } else {
                "内容太浅，和介绍不符，有点失望。".into()
            };
        }
        pool[rng.random_range(0..pool.len())].clone()
    }
}

/// The generated data.
#[derive(Clone, Debug)]
pub struct DemoData {
    /// The catalogue.
    pub catalogue: Vec<CatalogueItem>,
    /// Raw client events, in time order, as a frontend would send them.
    pub events: Vec<Value>,
    /// Learner ids (raw, as clients know them).
    pub learners: Vec<String>,
    /// Each learner's favourite subjects (the planted interests).
    pub interests: HashMap<String, Vec<String>>,
}

fn uuid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    let mut b = b;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// One learner's generated history.
#[derive(Clone, Debug)]
pub struct LearnerHistory {
    /// The learner's raw id.
    pub learner: String,
    /// The learner's favourite subjects (the planted interests).
    pub interests: Vec<String>,
    /// Raw client events with their times, in generation order (not sorted;
    /// events after the end of the history are already left out).
    pub events: Vec<(DateTime<Utc>, Value)>,
}

/// The generator, one learner at a time: [`generate`] runs it for a whole
/// data set in memory, a lake writer can run it for as many learners as it
/// needs while storing what it has generated. The same seed gives the same
/// catalogue and the same learners in the same order.
pub struct Generator<'a> {
    rng: StdRng,
    reviews: &'a ReviewTexts,
    catalogue: Vec<CatalogueItem>,
    by_subject: Vec<Vec<(usize, f64)>>,
    all_quality: Vec<(usize, f64)>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    span_ms: i64,
    next: usize,
}

impl std::fmt::Debug for Generator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator").field("items", &self.catalogue.len()).field("next", &self.next).finish()
    }
}

impl<'a> Generator<'a> {
    /// A generator for `cfg`; the catalogue is drawn at once.
    pub fn new(cfg: &DemoConfig, reviews: &'a ReviewTexts) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let mut catalogue = Vec::new();
        let mut by_subject: Vec<Vec<(usize, f64)>> = vec![Vec::new(); SUBJECTS.len()];
        for (s, (code, name)) in SUBJECTS.iter().enumerate() {
            for k in 0..cfg.items_per_subject {
                let (fmt, fmt_name) = FORMATS[rng.random_range(0..FORMATS.len())];
                let price = if rng.random_bool(0.1) {
                    0.0
                } else {
                    [9.9, 19.9, 29.9, 49.0, 99.0, 199.0, 399.0][rng.random_range(0..7)]
                };
                // Quality follows a Zipf-like curve inside each subject.
                let quality = 1.0 / (k as f64 + 1.0).powf(0.8);
                by_subject[s].push((catalogue.len(), quality));
                catalogue.push(CatalogueItem {
                    id: format!("{code}-{fmt}-{k:03}"),
                    title: format!("{name}{fmt_name} 第{}讲", k + 1),
                    format: fmt.into(),
                    category: (*code).into(),
                    price,
                    currency: "CNY".into(),
                });
            }
        }
        let all_quality: Vec<(usize, f64)> = by_subject.iter().flatten().copied().collect();
        let start = cfg.end - Duration::days(cfg.days);
        let span_ms = (cfg.end - start).num_milliseconds();
        Self { rng, reviews, catalogue, by_subject, all_quality, start, end: cfg.end, span_ms, next: 0 }
    }

    /// The catalogue.
    pub fn catalogue(&self) -> &[CatalogueItem] {
        &self.catalogue
    }

    /// The first moment of the history.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// The last moment of the history.
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// The history of the next learner.
    pub fn next_learner(&mut self) -> LearnerHistory {
        let l = self.next;
        self.next += 1;
        let rng = &mut self.rng;
        let catalogue = &self.catalogue;
        let reviews = self.reviews;
        let pick = |rng: &mut StdRng, pool: &[(usize, f64)]| -> usize {
            let total: f64 = pool.iter().map(|p| p.1).sum();
            let mut x = rng.random::<f64>() * total;
            for &(i, w) in pool {
                if x < w {
                    return i;
                }
                x -= w;
            }
            pool[pool.len() - 1].0
        };
        let mut events: Vec<(DateTime<Utc>, Value)> = Vec::new();
        let learner = format!("learner-{l:04}");
        let first = rng.random_range(0..SUBJECTS.len());
        let mut favs = vec![first];
        if rng.random_bool(0.5) {
            let second = (first + rng.random_range(1..SUBJECTS.len())) % SUBJECTS.len();
            favs.push(second);
        }
        let interests = favs.iter().map(|&s| SUBJECTS[s].0.to_owned()).collect();
        let pool: Vec<(usize, f64)> = favs.iter().flat_map(|&s| self.by_subject[s].iter().copied()).collect();
        let sessions = rng.random_range(3..9);
        let mut owned = Vec::new();
        for s in 0..sessions {
            let session = format!("s-{l:04}-{s}");
            let mut t = self.start + Duration::milliseconds(rng.random_range(0..self.span_ms));
            let views = rng.random_range(2..7);
            for _ in 0..views {
                let item = if rng.random_bool(0.85) { pick(rng, &pool) } else { pick(rng, &self.all_quality) };
                let it = &catalogue[item];
                let in_favs = favs.iter().any(|&f| SUBJECTS[f].0 == it.category);
                let mut push = |t: DateTime<Utc>, v: Value| events.push((t, v));
                let base = |rng: &mut StdRng, kind: &str, t: DateTime<Utc>| {
                    json!({"event_id": uuid(rng), "type": kind, "user_id": learner, "item_id": it.id,
                           "ts": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "session_id": session})
                };
                push(t, base(rng, "view", t));
                t += Duration::seconds(rng.random_range(5..90));
                if rng.random_bool(if in_favs { 0.6 } else { 0.2 }) {
                    push(t, base(rng, "click", t));
                    t += Duration::seconds(rng.random_range(30..600));
                    let mut p = base(rng, "progress", t);
                    p["progress"] = json!((rng.random::<f64>() * 100.0).round() / 100.0);
                    push(t, p);
                }
                if !owned.contains(&item) && rng.random_bool(if in_favs { 0.35 } else { 0.04 }) {
                    owned.push(item);
                    t += Duration::seconds(rng.random_range(10..120));
                    let kind = if it.format == "column" && rng.random_bool(0.5) { "subscribe" } else { "purchase" };
                    let mut p = base(rng, kind, t);
                    p["price"] = json!(it.price);
                    p["currency"] = json!(it.currency);
                    push(t, p);
                    if rng.random_bool(0.4) {
                        t += Duration::minutes(rng.random_range(30..600));
                        let rating: u8 = if in_favs { rng.random_range(3..=5) } else { rng.random_range(1..=4) };
                        let mut r = base(rng, "rate", t);
                        r["rating"] = json!(rating);
                        push(t, r);
                        if rng.random_bool(0.5) {
                            let mut v = base(rng, "review", t + Duration::seconds(30));
                            v["text"] = json!(reviews.pick(rng, rating >= 4));
                            v["rating"] = json!(rating);
                            push(t + Duration::seconds(30), v);
                        }
                    }
                }
            }
            if rng.random_bool(0.3) {
                let q = SUBJECTS[favs[0]].1;
                events.push((
                    t,
                    json!({"event_id": uuid(rng), "type": "search", "user_id": learner,
                           "ts": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "query": q, "session_id": session}),
                ));
            }
        }
        let end = self.end;
        events.retain(|(t, _)| *t <= end);
        LearnerHistory { learner, interests, events }
    }
}

/// Generates the demo data set.
pub fn generate(cfg: &DemoConfig, reviews: &ReviewTexts) -> DemoData {
    let mut generator = Generator::new(cfg, reviews);
    let mut events: Vec<(DateTime<Utc>, Value)> = Vec::new();
    let mut learners = Vec::new();
    let mut interests = HashMap::new();
    for _ in 0..cfg.learners {
        let history = generator.next_learner();
        events.extend(history.events);
        interests.insert(history.learner.clone(), history.interests);
        learners.push(history.learner);
    }
    // Stable: events of the same moment keep their generation order.
    events.sort_by_key(|a| a.0);
    DemoData {
        catalogue: generator.catalogue,
        events: events.into_iter().map(|(_, v)| v).collect(),
        learners,
        interests,
    }
}

/// Splits off each learner's last purchase (or subscription) as held-out
/// truth, together with what the learner did with that item afterwards.
/// Returns the remaining events and the held-out item per learner.
pub fn hold_out_last_purchase(events: &[Value]) -> (Vec<Value>, HashMap<String, String>) {
    let mut last: HashMap<String, (usize, String)> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if matches!(e["type"].as_str(), Some("purchase" | "subscribe"))
            && let (Some(u), Some(item)) = (e["user_id"].as_str(), e["item_id"].as_str())
        {
            last.insert(u.to_owned(), (i, item.to_owned()));
        }
    }
    let kept = events
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            let u = e["user_id"].as_str().unwrap_or_default();
            match last.get(u) {
                Some((at, item)) => !(i >= at && e["item_id"].as_str() == Some(item)),
                None => true,
            }
        })
        .map(|(_, e)| e.clone())
        .collect();
    (kept, last.into_iter().map(|(u, (_, item))| (u, item)).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use knowedge_format::event::Validator;

    #[test]
    fn events_are_valid_and_deterministic() {
        let cfg = DemoConfig { learners: 40, ..DemoConfig::default() };
        let a = generate(&cfg, &ReviewTexts::default());
        let b = generate(&cfg, &ReviewTexts::default());
        assert_eq!(a.events, b.events);
        let v = Validator::new(Utc::now());
        for e in &a.events {
            v.validate(e).unwrap();
        }
        assert!(a.events.iter().any(|e| e["type"] == "purchase"));
        let (kept, held) = hold_out_last_purchase(&a.events);
        assert!(!held.is_empty() && kept.len() < a.events.len());
        for (u, item) in &held {
            let later_purchase =
                kept.iter().any(|e| e["user_id"] == *u && e["item_id"] == *item && e["type"] == "purchase");
            assert!(!later_purchase, "held-out purchase leaked");
        }
    }
}
