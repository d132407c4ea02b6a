//! The loop the edge closes: an answer under an A/B experiment carries a
//! recommendation id and a variant; the learner's click, posted to the edge's
//! `POST /v1/events`, is forwarded by the compiled Spin component (in
//! wasmtime, through the host's one allowed outbound endpoint) to the real
//! ingestion handler, and lands in the lake attributed to that
//! recommendation and variant. The answers' exposures reach the lake's
//! exposures table through ingestion, and the experiment report reads both.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

use knowedge::keys::Keys;
use knowedge_edge::experiment::Experiment;
use knowedge_edge_host::{EdgeHost, Forwarding, HostConfig};
use knowedge_format::artifact::{ArtifactBuilder, ModelKind};
use knowedge_format::store::{CURRENT, artifact_name};
use knowedge_ingest::Ingest;
use knowedge_lake::Lake;
use serde_json::{Value, json};

fn wasm() -> PathBuf {
    knowedge_test_support::spin_wasm()
}

fn popularity_model(keys: &Keys, version: &str, scores: [f32; 3]) -> Vec<u8> {
    let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
    b.items(vec!["course-a".into(), "course-b".into(), "course-c".into()]);
    b.popularity(scores.to_vec());
    b.manifest_mut().model_id = version.into();
    b.sign(&keys.signing().unwrap()).unwrap()
}

/// `POST url` as `learner` (with their token).
async fn post(url: &str, learner: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .header("authorization", format!("Bearer {}", knowedge_test_support::token(learner)))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_slice(&r.bytes().await.unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_forwarded_by_the_edge_land_in_the_lake_with_their_variant() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate().unwrap();

    // Ingestion, as `knowedge ingest serve` runs it.
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let ingest = Ingest::new(lake.clone(), keys.pseudonymizer().unwrap()).with_keys(keys.key_ring().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ingest_url = knowedge::serve::spawn_ingest(listener, ingest).unwrap();

    // Two published models; the experiment splits learners between them.
    let store = dir.path().join("models");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join(artifact_name("v-pop")), popularity_model(&keys, "v-pop", [3.0, 2.0, 1.0])).unwrap();
    std::fs::write(store.join(artifact_name("v-alt")), popularity_model(&keys, "v-alt", [1.0, 2.0, 3.0])).unwrap();
    std::fs::write(store.join(CURRENT), "v-pop\n").unwrap();
    let experiment = r#"{"name": "homepage-2026-11", "variants": [
        {"name": "control", "weight": 1, "model": "current"},
        {"name": "alt", "weight": 1, "model": "v-alt"}]}"#;
    let host = EdgeHost::start(HostConfig {
        wasm: wasm(),
        models_dir: store,
        state_dir: dir.path().join("edge"),
        public_key_hex: keys.public_hex.clone(),
        pseudonym_key_hex: keys.pseudonym_hex.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        poll_interval: Duration::from_secs(60),
        experiment: Some(experiment.into()),
        ingest: Some(Forwarding { url: ingest_url.clone(), key: keys.ingest_key.clone() }),
        access: knowedge_edge_host::Access {
            token_keys_hex: Some(knowedge_test_support::token_keys_hex()),
            ..Default::default()
        },
    })
    .await
    .unwrap();
    let edge = format!("http://{}", host.local_addr());
    let e = Experiment::from_json(experiment).unwrap();
    let pseudonyms = keys.pseudonymizer().unwrap();

    let now = chrono::Utc::now().to_rfc3339();
    // The keys are fresh every run, so pick three learners of each variant
    // (a fixed list of six lands wholly in one variant about once in 32 runs).
    let learners: Vec<String> = {
        let (mut control, mut alt) = (Vec::new(), Vec::new());
        for n in 1..1000 {
            let learner = format!("learner-{n}");
            let side = if e.assign(&pseudonyms.pseudonymize(&learner)).name == "alt" { &mut alt } else { &mut control };
            if side.len() < 3 {
                side.push(learner);
            }
            if control.len() == 3 && alt.len() == 3 {
                break;
            }
        }
        control.into_iter().zip(alt).flat_map(|(c, a)| [c, a]).collect()
    };
    assert_eq!(learners.len(), 6, "{learners:?}");
    let mut expected = Vec::new();
    for (n, learner) in learners.iter().enumerate() {
        let (status, answer) = knowedge::get_json_as(
            &format!("{edge}/v1/recommend?user={learner}&k=1"),
            Some(&knowedge_test_support::token(learner)),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{answer}");
        let variant = e.assign(&pseudonyms.pseudonymize(learner)).name.clone();
        assert_eq!(answer["variant"], variant.as_str(), "{answer}");
        let shown = answer["items"][0]["item"].as_str().unwrap().to_owned();
        assert_eq!(shown, if variant == "alt" { "course-c" } else { "course-a" }, "{answer}");
        let rec_id = answer["recommendation_id"].as_str().unwrap().to_owned();

        // The click goes to the edge, which sets the learner from the token and its own
        // experiment and variant (whatever the client claims), and forwards it.
        let event_id = format!("00000000-0000-4000-8000-{n:012}");
        let click = json!({"events": [{"event_id": event_id, "type": "click", "user_id": "someone-else",
                                       "experiment": "forged", "variant": "forged", "item_id": shown, "ts": now}]});
        let (status, receipt) = post(&format!("{edge}/v1/events?recommendation_id={rec_id}"), learner, &click).await;
        assert_eq!(status, 200, "{receipt}");
        assert_eq!(receipt["accepted"], 1, "{receipt}");
        expected.push((event_id, rec_id, variant, pseudonyms.pseudonymize(learner)));
    }
    assert!(expected.iter().any(|x| x.2 == "alt") && expected.iter().any(|x| x.2 == "control"), "{expected:?}");

    let stored = lake.read_events().await.unwrap();
    assert_eq!(stored.len(), expected.len());
    for (event_id, rec_id, variant, pseudonym) in &expected {
        let e = &stored.iter().find(|s| &s.event.event_id == event_id).unwrap().event;
        assert_eq!(e.recommendation_id.as_deref(), Some(rec_id.as_str()));
        assert_eq!(e.variant.as_deref(), Some(variant.as_str()));
        assert_eq!(e.experiment.as_deref(), Some("homepage-2026-11"));
        assert!(!e.user_id.starts_with("learner-"), "raw user id in the lake");
        assert_eq!(&e.user_id, pseudonym, "the token's learner, not the one the client named");
    }

    // Bad batches are refused at the edge with JSON, and nothing else is forwarded.
    let (status, answer) = post(&format!("{edge}/v1/events"), "learner-1", &json!({"nope": []})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_body")), "{answer}");
    // Invalid events are ingestion's to judge: its answer (422, every event rejected) comes back.
    let (status, answer) =
        post(&format!("{edge}/v1/events"), "learner-1", &json!({"events": [{"type": "click"}]})).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["rejected"], 1, "{answer}");
    assert_eq!(lake.read_events().await.unwrap().len(), expected.len());
    // Stopping the host sends the exposures still queued.
    let (_, dropped) = host.exposures_shipped();
    host.shutdown().await;
    assert_eq!(dropped, 0);

    // Every answer reached the lake's exposures table, off the answer's path.
    let exposures = lake.read_exposures().await.unwrap();
    assert_eq!(exposures.len(), expected.len(), "{exposures:?}");
    for (_, rec_id, variant, pseudonym) in &expected {
        let x = exposures.iter().find(|x| &x.recommendation_id == rec_id).unwrap();
        assert_eq!(x.variant.as_deref(), Some(variant.as_str()));
        assert_eq!(x.user_id.as_deref(), Some(pseudonym.as_str()));
        assert_eq!(x.items.len(), 1);
        assert_eq!(x.key_name.as_deref(), Some("local"));
    }

    // The experiment report reads it back through SQL: three learners per
    // variant, each shown one answer and clicking it.
    let sql = knowedge_report::SqlLake::open(&dir.path().join("lake")).await.unwrap();
    let options = knowedge_report::experiment::ExperimentOptions {
        name: "homepage-2026-11".into(),
        config: Some(knowedge_report::experiment::ExperimentConfig::from_json(experiment).unwrap()),
        control: None,
        plan: knowedge_analytics::experiment::Plan::new(0.05, 0.1),
    };
    let report = knowedge_report::experiment::report(&sql, &options).await.unwrap();
    for v in &report.counts {
        assert_eq!((v.learners, v.exposures, v.clicks, v.converters), (3, 3, 3, 0), "{v:?}");
    }
    assert_eq!(report.statistics.control, "control");
}
