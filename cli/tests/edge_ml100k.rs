//! The compiled edge component serves MovieLens-100K models (from
//! `../shared/data/ml-100k/split-2026`) and, for sampled users, answers
//! exactly the top-10 that the native offline evaluator ranks at test time
//! (training and validation items masked).
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use knowedge::keys::Keys;
use knowedge_edge_host::{EdgeHost, HostConfig, RunningHost};
use knowedge_format::store::Channel;
use knowedge_lake::ModelStore;
use knowedge_train::eval::{Scorer, rank};
use knowedge_train::recbole;
use knowedge_train::recipes::{Config, Fitted, Recipe};
use rand::seq::IndexedRandom;
use rand::{SeedableRng, rngs::StdRng};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

async fn wait_serving(host: &RunningHost, version: &str) {
    for _ in 0..200 {
        host.refresh().await;
        if host.status().serving.as_deref() == Some(version) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("edge never served {version}: {:?}", host.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_top10_equals_the_native_evaluator_on_ml100k() {
    let wasm = knowedge_test_support::spin_wasm();
    let data = root().join("../shared/data/ml-100k");
    assert!(data.join("ml-100k.inter").exists(), "{} is missing: the shared data sets are required", data.display());
    let split = recbole::load_split(&data, &data.join("split-2026")).unwrap();
    // The final models are refitted on training + validation, and at test
    // time both are masked: exactly the data set's positives.
    let full = split.train_and_valid();
    let ds = &full;
    let seen = ds.positives.clone();

    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate().unwrap();
    let pseudo = keys.pseudonymizer().unwrap();
    let models_dir = dir.path().join("models");
    let models = ModelStore::open(models_dir.to_str().unwrap()).unwrap();
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

    // The best recipe (item-item, tuned on validation) and a candle-trained one (factors, shortened).
    let mut cfg = Config::default();
    cfg.vae.epochs = 3;
    let mut rng = StdRng::seed_from_u64(2026);
    let users: Vec<usize> = (0..ds.users.len()).collect();
    let mut caches = knowedge_train::offline::Caches::default();
    for recipe in [Recipe::Hybrid, Recipe::MultVae] {
        // As `knowedge eval` does: tuned on validation, refitted on training + validation.
        let r = knowedge_train::offline::run_recipe(&split, &full, recipe, &cfg, &mut caches, 10).unwrap();
        let fitted = r.fitted;
        assert_eq!(matches!(fitted, Fitted::ItemItem(_)), recipe == Recipe::Hybrid);
        let version = format!("ml100k-{recipe}");
        let bytes = knowedge_train::export::artifact(
            &fitted,
            ds,
            &seen,
            Some(&pseudo),
            None,
            &keys.signing().unwrap(),
            &version,
            Default::default(),
            r.config.params(recipe),
        )
        .unwrap();
        models.publish(Channel::Recommender, &version, bytes).await.unwrap();
        wait_serving(&host, &version).await;
        let mut buf = Vec::new();
        for &u in users.choose_multiple(&mut rng, 30) {
            fitted.scores(u, &mut buf);
            let native: Vec<String> =
                rank(&buf, &[&ds.positives[u]], 10).into_iter().map(|i| ds.items[i as usize].clone()).collect();
            let url = format!("http://{edge}/v1/recommend?user={}&k=10", ds.users[u]);
            let (status, v) =
                knowedge::get_json_as(&url, Some(&knowedge_test_support::token(&ds.users[u]))).await.unwrap();
            assert_eq!(status, 200, "{v}");
            let served: Vec<String> =
                v["items"].as_array().unwrap().iter().map(|i| i["item"].as_str().unwrap().to_owned()).collect();
            assert_eq!(served, native, "{recipe}, user {}", ds.users[u]);
            // Scores travel as JSON numbers; the ranking itself is compared exactly above.
            buf.clear();
        }
    }
    host.shutdown().await;
}
