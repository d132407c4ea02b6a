//! Review sentiment end to end: trained on (a subsample of) the real corpus
//! with candle, published under `current-sentiment`, served by the compiled
//! Spin component in wasmtime, and used to score review events in the lake.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use knowedge::keys::Keys;
use knowedge::sentiment::SentimentCommand;
use knowedge_edge_host::{EdgeHost, HostConfig};
use knowedge_format::event::{Event, EventType};
use knowedge_format::store::Channel;
use knowedge_lake::{Lake, ModelStore, StoredEvent};
use knowedge_scoring::sentiment::SentimentModel;
use knowedge_train::reviews;
use knowedge_train::sentiment::{self, SentimentConfig};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn data_dir() -> PathBuf {
    let dir = root().join("../shared/data/reviews-zh");
    assert!(
        dir.join("pos.txt").is_file() && dir.join("neg.txt").is_file(),
        "the review corpus is missing at {}; it must be at ../shared/data/reviews-zh beside the repository",
        dir.display()
    );
    dir
}

fn review_event(id: usize, item: &str, text: &str) -> StoredEvent {
    let ts = Utc.with_ymd_and_hms(2026, 11, 20 + (id % 3) as u32, 9, 0, 0).unwrap();
    StoredEvent {
        event: Event {
            event_id: format!("00000000-0000-4000-8000-{id:012}"),
            event_type: EventType::Review,
            user_id: format!("p-{id}"),
            item_id: Some(item.into()),
            ts,
            price: None,
            currency: None,
            rating: Some(4),
            progress: None,
            text: Some(text.into()),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trained_sentiment_served_at_the_edge_and_written_to_the_lake() {
    let wasm = knowedge_test_support::spin_wasm();
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate().unwrap();

    // 1. Train on a quarter of the corpus (a few seconds), hold part of it out.
    let all = sentiment::load_reviews(&data_dir()).unwrap();
    let sample: Vec<_> = all.iter().step_by(4).cloned().collect();
    let (train_set, test_set) = sentiment::split(&sample, 0.2, 5);
    let cfg = SentimentConfig { bits: 16, epochs: 4, ..SentimentConfig::default() };
    let trained = sentiment::train(&train_set, &cfg).unwrap();
    let metrics = sentiment::evaluate(&trained.model("m").unwrap(), &test_set);
    let version = sentiment::new_version();
    let artifact = sentiment::export(&trained, &cfg, Some(&metrics), &keys.signing().unwrap(), &version).unwrap();
    let native = SentimentModel::from_artifact(&artifact, &keys.public().unwrap()).unwrap();

    // 2. Publish under current-sentiment; the host picks it up.
    let models_dir = dir.path().join("models");
    let models = ModelStore::open(models_dir.to_str().unwrap()).unwrap();
    models.publish(Channel::Sentiment, &version, artifact.clone()).await.unwrap();
    assert_eq!(models.current(Channel::Recommender).await.unwrap(), None, "current is left alone");
    let host = EdgeHost::start(HostConfig {
        wasm,
        models_dir,
        state_dir: dir.path().join("edge"),
        public_key_hex: keys.public_hex.clone(),
        pseudonym_key_hex: keys.pseudonym_hex.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        poll_interval: Duration::from_millis(100),
        experiment: None,
        ingest: None,
        access: knowedge_edge_host::Access {
            token_keys_hex: Some(knowedge_test_support::token_keys_hex()),
            ..Default::default()
        },
    })
    .await
    .unwrap();
    assert_eq!(host.sentiment_status().serving.as_deref(), Some(version.as_str()));

    // 3. The edge answers held-out reviews exactly as the native core does.
    let client = reqwest::Client::new();
    let url = format!("http://{}/v1/sentiment", host.local_addr());
    let mut correct = 0;
    for chunk in test_set.chunks(100).take(4) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&json!({ "texts": texts })).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        assert_eq!(v["model_id"], Value::from(version.clone()));
        for (r, got) in chunk.iter().zip(v["results"].as_array().unwrap()) {
            let want = native.score(&r.text);
            assert_eq!(got["label"], want.label.as_str());
            assert_eq!(got["score"].as_f64().unwrap() as f32, want.score);
            correct += usize::from((want.label.as_str() == "positive") == r.positive);
        }
    }
    let edge_accuracy = correct as f64 / test_set.len().min(400) as f64;
    eprintln!("subsample model: held-out accuracy {:.3}, at the edge {edge_accuracy:.3}", metrics.accuracy);
    assert!(edge_accuracy > 0.75);
    host.shutdown().await;

    // 4. Review events in the lake get scored next to the reviews, once per model.
    let lake_dir = dir.path().join("lake");
    let lake = Lake::open(lake_dir.to_str().unwrap()).unwrap();
    let pos: Vec<&str> = test_set.iter().filter(|r| r.positive).take(30).map(|r| r.text.as_str()).collect();
    let neg: Vec<&str> = test_set.iter().filter(|r| !r.positive).take(30).map(|r| r.text.as_str()).collect();
    let mut events = Vec::new();
    for (i, t) in pos.iter().enumerate() {
        events.push(review_event(i, "liked-course", t));
    }
    for (i, t) in neg.iter().enumerate() {
        events.push(review_event(100 + i, "disliked-course", t));
    }
    lake.write_events(&events).await.unwrap();
    let report = reviews::score_with_current(&lake, &models, &keys.public().unwrap()).await.unwrap().unwrap();
    assert_eq!((report.reviews, report.scored), (60, 60));
    assert!(report.files.iter().all(|f| f.contains("review-sentiment/dt=2026-11-2")), "{:?}", report.files);
    let again = reviews::score_with_current(&lake, &models, &keys.public().unwrap()).await.unwrap().unwrap();
    assert_eq!((again.scored, again.already_scored), (0, 60));
    let rows = lake.read_review_sentiment().await.unwrap();
    assert_eq!(rows.len(), 60);
    let per_item = reviews::item_sentiment(&rows);
    let mean = |id: &str| per_item.iter().find(|i| i.item_id == id).unwrap().mean_score;
    eprintln!("mean sentiment: liked {:.3}, disliked {:.3}", mean("liked-course"), mean("disliked-course"));
    assert!(mean("liked-course") > mean("disliked-course") + 0.2);

    // 5. The report command reads the table.
    let json_path = dir.path().join("report.json");
    knowedge::sentiment::run(SentimentCommand::Report {
        lake: lake_dir.to_string_lossy().into_owned(),
        min_reviews: 1,
        top: 10,
        json: Some(json_path.clone()),
    })
    .await
    .unwrap();
    let report: Value = serde_json::from_slice(&std::fs::read(json_path).unwrap()).unwrap();
    assert_eq!(report.as_array().unwrap().len(), 2);
    assert_eq!(report[0]["item_id"], "liked-course", "sorted by mean score");
}
