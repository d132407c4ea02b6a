//! The whole path through the real components: an HTTP batch reaches the
//! ingestion handler, Parquet lands in the lake, training exports a signed
//! artifact, and the compiled Spin component running in wasmtime answers.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use knowedge::demo::{self, DemoConfig, ReviewTexts};
use knowedge::keys::Keys;
use knowedge_edge_host::{EdgeHost, HostConfig, RunningHost};
use knowedge_format::store::Channel;
use knowedge_ingest::Ingest;
use knowedge_lake::{Lake, ModelStore};
use knowedge_scoring::model::{Filters, Model};
use knowedge_train::pipeline::{self, Options};
use knowedge_train::{BprConfig, Recipe};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn wasm() -> PathBuf {
    knowedge_test_support::spin_wasm()
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out
}

async fn wait_serving(host: &RunningHost, version: &str) {
    for _ in 0..100 {
        host.refresh().await;
        if host.status().serving.as_deref() == Some(version) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("edge never served {version}: {:?}", host.status());
}

async fn recommend(edge: &str, user: &str, k: usize) -> Vec<String> {
    let url = format!("http://{edge}/v1/recommend?user={user}&k={k}");
    let (status, v) = knowedge::get_json_as(&url, Some(&knowedge_test_support::token(user))).await.unwrap();
    assert_eq!(status, 200, "{v}");
    v["items"].as_array().unwrap().iter().map(|i| i["item"].as_str().unwrap().to_owned()).collect()
}

/// Hit rate at 10 of the edge's current model on the held-out purchases,
/// asserting on the way that no owned item comes back.
async fn hit_rate(edge: &str, held: &HashMap<String, String>, owned: &HashMap<String, HashSet<String>>) -> f64 {
    let mut hits = 0;
    for (user, item) in held {
        let top = recommend(edge, user, 10).await;
        assert_eq!(top.len(), 10);
        if let Some(o) = owned.get(user) {
            assert!(top.iter().all(|i| !o.contains(i)), "{user} was recommended an item they own");
        }
        hits += usize::from(top.contains(item));
    }
    hits as f64 / held.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_recommendations_out_at_the_edge() {
    let wasm = wasm();
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate().unwrap();
    let reviews = ReviewTexts::load(&root().join("../shared/data/reviews-zh")).unwrap_or_default();
    let data = demo::generate(&DemoConfig { seed: 11, learners: 400, ..DemoConfig::default() }, &reviews);
    let (events, held) = demo::hold_out_last_purchase(&data.events);
    let mut owned: HashMap<String, HashSet<String>> = HashMap::new();
    for e in &events {
        if matches!(e["type"].as_str(), Some("purchase" | "subscribe")) {
            owned
                .entry(e["user_id"].as_str().unwrap().into())
                .or_default()
                .insert(e["item_id"].as_str().unwrap().into());
        }
    }

    // 1. HTTP batches -> the Lambda handler -> Parquet in the lake.
    let lake_dir = dir.path().join("lake");
    let lake = Lake::open(lake_dir.to_str().unwrap()).unwrap();
    lake.put_catalogue(&data.catalogue).await.unwrap();
    let ingest = Ingest::new(lake.clone(), keys.pseudonymizer().unwrap()).with_keys(keys.key_ring().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ingest_url = knowedge::serve::spawn_ingest(listener, ingest).unwrap();
    let sent = knowedge::send_events(&ingest_url, &keys.ingest_key, &events, 500, |_, _| {}).await.unwrap();
    assert_eq!((sent.accepted, sent.rejected, sent.duplicates), (events.len(), 0, 0));
    let files = parquet_files(&lake_dir.join("events"));
    assert!(!files.is_empty());
    assert!(files.iter().all(|f| f.to_string_lossy().contains("/dt=") && f.to_string_lossy().contains("/type=")));
    let stored = lake.read_events().await.unwrap();
    assert_eq!(stored.len(), events.len());
    let raw_users: HashSet<&str> = data.learners.iter().map(String::as_str).collect();
    assert!(stored.iter().all(|e| !raw_users.contains(e.event.user_id.as_str())), "raw user ids reached the lake");

    // 2. Train and publish popularity; serve it from the compiled component in wasmtime.
    let models_dir = dir.path().join("models");
    let models = ModelStore::open(models_dir.to_str().unwrap()).unwrap();
    let signing = keys.signing().unwrap();
    let bpr = BprConfig::default();
    let pop =
        pipeline::run(&lake, &models, &signing, &Options { bpr: bpr.clone(), ..Options::new(Recipe::Popularity) })
            .await
            .unwrap();
    let host = EdgeHost::start(HostConfig {
        wasm,
        models_dir: models_dir.clone(),
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
    let edge = host.local_addr().to_string();
    wait_serving(&host, &pop.version).await;
    let pop_hits = hit_rate(&edge, &held, &owned).await;

    // 3. Train matrix factorisation; the edge swaps to it without restart.
    let mf = pipeline::run(&lake, &models, &signing, &Options { bpr: bpr.clone(), ..Options::new(Recipe::Bpr) })
        .await
        .unwrap();
    wait_serving(&host, &mf.version).await;
    let mf_hits = hit_rate(&edge, &held, &owned).await;
    eprintln!("hit-rate@10 on {} held-out purchases: mf {mf_hits:.3}, popularity {pop_hits:.3}", held.len());
    assert!(mf_hits >= 2.0 * pop_hits && mf_hits > 0.2, "mf {mf_hits:.3} vs popularity {pop_hits:.3}");
    assert!(mf.promoted && mf.champion.is_some(), "{}", mf.decision);

    // A scheduled run whose model does not beat the current one on the latest window is stored, not promoted.
    let again =
        pipeline::run(&lake, &models, &signing, &Options { bpr: bpr.clone(), ..Options::new(Recipe::Popularity) })
            .await
            .unwrap();
    assert!(!again.promoted, "{}", again.decision);
    assert_eq!(models.current(Channel::Recommender).await.unwrap().as_deref(), Some(mf.version.as_str()));

    // 4. The edge answers exactly what the native core answers.
    let artifact = models.get(&mf.version).await.unwrap();
    let native = Model::from_artifact(&artifact, &keys.public().unwrap()).unwrap();
    assert!(native.info().metrics.contains_key("valid_ndcg@10"), "{:?}", native.info().metrics);
    let pseudo = keys.pseudonymizer().unwrap();
    for user in data.learners.iter().take(20) {
        let expected: Vec<String> = native
            .recommend(Some(&pseudo.pseudonymize(user)), 10, &Filters::default())
            .into_iter()
            .map(|s| s.item)
            .collect();
        assert_eq!(recommend(&edge, user, 10).await, expected, "{user}");
    }

    // 5. A tampered artifact and one of an unknown format version are refused; the edge keeps its model.
    let before = recommend(&edge, &data.learners[0], 10).await;
    let mut tampered = artifact.to_vec();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x01;
    models.publish(Channel::Recommender, "tampered", tampered).await.unwrap();
    host.refresh().await;
    let s = host.status();
    assert_eq!(s.refused.as_deref(), Some("tampered"), "{s:?}");
    assert!(s.last_error.as_deref().unwrap_or_default().contains("signature"), "{s:?}");
    let mut future = artifact.to_vec();
    future[8..12].copy_from_slice(&3u32.to_le_bytes());
    models.publish(Channel::Recommender, "future", future).await.unwrap();
    host.refresh().await;
    let s = host.status();
    assert_eq!(s.refused.as_deref(), Some("future"), "{s:?}");
    assert!(s.last_error.as_deref().unwrap_or_default().contains("version"), "{s:?}");
    assert_eq!(s.serving.as_deref(), Some(mf.version.as_str()));
    assert_eq!(recommend(&edge, &data.learners[0], 10).await, before);
    let (_, info) = knowedge::get_json(&format!("http://{edge}/v1/model")).await.unwrap();
    assert_eq!(info["model_id"], Value::from(mf.version.clone()));

    // 6. Bad requests get JSON 4xx from the component.
    for q in ["k=500", "user=a&k=1000000000", "user=a&k=0", "user=a&max_price=-1"] {
        let url = format!("http://{edge}/v1/recommend?{q}");
        let (status, v) = knowedge::get_json_as(&url, Some(&knowedge_test_support::token("a"))).await.unwrap();
        assert_eq!(status, 400, "{q}: {v}");
        assert!(v["error"]["message"].is_string());
    }
    host.shutdown().await;
}
