//! Review sentiment in the pipeline: scoring the lake's review events into
//! the `review-sentiment` table, per-item sentiment, and a re-ranker.
//!
//! The training job calls [`score_with_current`] after training: every
//! review event not yet scored by the current sentiment model (the model
//! store's `current-sentiment`) is scored with the shared scoring code and
//! written next to the reviews (`review-sentiment/dt=…/`, see
//! [`knowedge_lake::sentiment`]). Reports and recipes read the table with
//! [`knowedge_lake::Lake::read_review_sentiment`] and aggregate it per item
//! with [`item_sentiment`]; [`rerank`] lets a recipe nudge a ranking towards
//! well-reviewed items.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Utc;
use knowedge_format::artifact::PublicKey;
use knowedge_format::event::EventType;
use knowedge_format::store::Channel;
use knowedge_lake::{Lake, ModelStore, ReviewSentiment};
use knowedge_scoring::model::Scored;
use knowedge_scoring::sentiment::{Label, SentimentModel};
use serde::Serialize;

use crate::Result;

/// What one scoring run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScoreReport {
    /// The model used.
    pub model_id: String,
    /// Review events in the lake.
    pub reviews: usize,
    /// Reviews scored in this run.
    pub scored: usize,
    /// Reviews skipped because this model had scored them already.
    pub already_scored: usize,
    /// Files written.
    pub files: Vec<String>,
}

/// Scores every review event the model has not scored yet and writes the
/// results to the lake.
pub async fn score_reviews(lake: &Lake, model: &SentimentModel) -> Result<ScoreReport> {
    let model_id = model.info().model_id.clone();
    let events = lake.read_events().await?;
    let previous = lake.read_review_sentiment().await?;
    let done: HashSet<&str> = previous.iter().filter(|r| r.model_id == model_id).map(|r| r.event_id.as_str()).collect();
    let mut report = ScoreReport { model_id: model_id.clone(), ..ScoreReport::default() };
    // Later than every row already stored (which keep milliseconds), so the
    // newest scoring wins even when two runs fall in the same millisecond.
    let newest = previous.iter().map(|r| r.scored_at).max();
    let scored_at = newest.map_or_else(Utc::now, |t| Utc::now().max(t + chrono::Duration::milliseconds(1)));
    let mut featurizer = model.featurizer();
    let mut rows = Vec::new();
    for e in events.iter().map(|e| &e.event).filter(|e| e.event_type == EventType::Review) {
        report.reviews += 1;
        if done.contains(e.event_id.as_str()) {
            report.already_scored += 1;
            continue;
        }
        let s = model.score_with(&mut featurizer, e.text.as_deref().unwrap_or_default());
        rows.push(ReviewSentiment {
            event_id: e.event_id.clone(),
            item_id: e.item_id.clone(),
            ts: e.ts,
            label: s.label.as_str().to_owned(),
            score: s.score,
            model_id: model_id.clone(),
            scored_at,
        });
    }
    report.scored = rows.len();
    if !rows.is_empty() {
        report.files = lake.write_review_sentiment(&rows).await?;
    }
    Ok(report)
}

/// Scores new reviews with the model store's current sentiment model, after
/// verifying it with `key`. `None` when the store has no sentiment model.
pub async fn score_with_current(lake: &Lake, models: &ModelStore, key: &PublicKey) -> Result<Option<ScoreReport>> {
    let Some(version) = models.current(Channel::Sentiment).await? else { return Ok(None) };
    let bytes = models.get(&version).await?;
    let model = SentimentModel::from_artifact(&bytes, key)?;
    Ok(Some(score_reviews(lake, &model).await?))
}

/// Review sentiment of one item.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ItemSentiment {
    /// The item.
    pub item_id: String,
    /// Reviews scored.
    pub reviews: usize,
    /// Reviews labelled positive.
    pub positive: usize,
    /// Reviews labelled negative.
    pub negative: usize,
    /// Reviews with nothing to score.
    pub neutral: usize,
    /// Mean score (probability positive) over the positive and negative reviews; 0.5 without any.
    pub mean_score: f64,
    /// Share of positive among positive and negative reviews; 0.5 without any.
    pub positive_share: f64,
}

/// Per-item sentiment from scored reviews (rows without an item are left
/// out), sorted by item id.
pub fn item_sentiment(rows: &[ReviewSentiment]) -> Vec<ItemSentiment> {
    let mut acc: BTreeMap<&str, (usize, usize, usize, f64)> = BTreeMap::new();
    for r in rows {
        let Some(item) = r.item_id.as_deref() else { continue };
        let e = acc.entry(item).or_default();
        match Label::parse(&r.label) {
            Some(Label::Positive) => e.0 += 1,
            Some(Label::Negative) => e.1 += 1,
            _ => {
                e.2 += 1;
                continue;
            }
        }
        e.3 += f64::from(r.score);
    }
    acc.into_iter()
        .map(|(item, (positive, negative, neutral, sum))| {
            let judged = positive + negative;
            ItemSentiment {
                item_id: item.to_owned(),
                reviews: judged + neutral,
                positive,
                negative,
                neutral,
                mean_score: if judged == 0 { 0.5 } else { sum / judged as f64 },
                positive_share: if judged == 0 { 0.5 } else { positive as f64 / judged as f64 },
            }
        })
        .collect()
}

/// Re-ranks `items` by `score + weight · (mean_score - 0.5)` for items with at
/// least `min_reviews` judged reviews (others keep their score); the order is
/// stable for equal adjusted scores. Scores are left as they were: only the
/// order changes.
pub fn rerank(items: &mut [Scored], sentiment: &HashMap<String, ItemSentiment>, weight: f32, min_reviews: usize) {
    let adjusted = |s: &Scored| {
        let bonus = sentiment
            .get(&s.item)
            .filter(|x| x.positive + x.negative >= min_reviews.max(1))
            .map_or(0.0, |x| (x.mean_score - 0.5) as f32);
        s.score + weight * bonus
    };
    items.sort_by(|a, b| adjusted(b).total_cmp(&adjusted(a)));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{DateTime, TimeZone};
    use knowedge_format::event::Event;
    use knowedge_lake::StoredEvent;
    use knowedge_scoring::sentiment::Featurizer;

    fn review(id: &str, item: &str, text: Option<&str>) -> StoredEvent {
        let ts: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
        StoredEvent {
            event: Event {
                event_id: id.into(),
                event_type: EventType::Review,
                user_id: "p-1".into(),
                item_id: Some(item.into()),
                ts,
                price: None,
                currency: None,
                rating: Some(5),
                progress: None,
                text: text.map(str::to_owned),
                query: None,
                session_id: None,
                experiment: None,
                variant: None,
                recommendation_id: None,
            },
            received_at: ts,
            redactions: 0,
            key_name: None,
        }
    }

    fn toy_model(id: &str) -> SentimentModel {
        let mut f = Featurizer::new(12);
        let mut w = vec![0.0; 1 << 12];
        for &i in f.features("好 喜欢") {
            w[i as usize] = 3.0;
        }
        for &i in f.features("差 失望") {
            w[i as usize] = -3.0;
        }
        SentimentModel::from_weights(w, 0.0, id).unwrap()
    }

    #[tokio::test]
    async fn scores_reviews_into_the_lake_once_per_model() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        lake.write_events(&[
            review("r1", "a", Some("很好，喜欢")),
            review("r2", "a", Some("好")),
            review("r3", "b", Some("太差了，失望")),
            review("r4", "b", Some("")),
        ])
        .await
        .unwrap();
        let m1 = toy_model("m1");
        let first = score_reviews(&lake, &m1).await.unwrap();
        assert_eq!((first.reviews, first.scored, first.already_scored), (4, 4, 0));
        assert!(first.files[0].contains("review-sentiment/dt=2026-11-20/"), "{:?}", first.files);
        let again = score_reviews(&lake, &m1).await.unwrap();
        assert_eq!((again.scored, again.already_scored), (0, 4));
        let rows = lake.read_review_sentiment().await.unwrap();
        let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["positive", "positive", "negative", "neutral"]);

        let per_item = item_sentiment(&rows);
        assert_eq!(per_item.len(), 2);
        assert_eq!((per_item[0].item_id.as_str(), per_item[0].positive, per_item[0].reviews), ("a", 2, 2));
        assert!(per_item[0].mean_score > 0.8);
        assert_eq!((per_item[1].negative, per_item[1].neutral, per_item[1].positive_share), (1, 1, 0.0));

        // A newer model scores everything again; the reader keeps the newest rows.
        assert_eq!(score_reviews(&lake, &toy_model("m2")).await.unwrap().scored, 4);
        assert!(lake.read_review_sentiment().await.unwrap().iter().all(|r| r.model_id == "m2"));

        // Even when the stored rows carry a later time than this machine's
        // clock (another writer's clock, or the same millisecond), the newest
        // scoring is stamped after them and wins.
        let ahead = Utc::now() + chrono::Duration::hours(1);
        let rows: Vec<ReviewSentiment> = lake
            .read_review_sentiment()
            .await
            .unwrap()
            .into_iter()
            .map(|r| ReviewSentiment { model_id: "m-ahead".into(), scored_at: ahead, ..r })
            .collect();
        lake.write_review_sentiment(&rows).await.unwrap();
        assert_eq!(score_reviews(&lake, &toy_model("m3")).await.unwrap().scored, 4);
        let rows = lake.read_review_sentiment().await.unwrap();
        assert!(rows.iter().all(|r| r.model_id == "m3" && r.scored_at > ahead), "{rows:?}");
    }

    #[test]
    fn rerank_moves_well_reviewed_items_up() {
        let s = |item: &str, score: f32| Scored { item: item.into(), score };
        let mut items = vec![s("a", 1.0), s("b", 0.95), s("c", 0.9)];
        let per: HashMap<String, ItemSentiment> = [("a", 0.1, 5), ("b", 0.9, 5), ("c", 0.99, 1)]
            .into_iter()
            .map(|(id, mean, n)| {
                let x = ItemSentiment {
                    item_id: id.into(),
                    reviews: n,
                    positive: n,
                    negative: 0,
                    neutral: 0,
                    mean_score: mean,
                    positive_share: 1.0,
                };
                (id.to_owned(), x)
            })
            .collect();
        rerank(&mut items, &per, 0.5, 2);
        let order: Vec<&str> = items.iter().map(|x| x.item.as_str()).collect();
        assert_eq!(order, ["b", "c", "a"], "c has too few reviews to move; a drops");
        assert_eq!(items[0].score, 0.95);
    }
}
