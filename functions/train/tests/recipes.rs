//! Every recipe trains on small synthetic data, exports a signed artifact,
//! and the shared scoring core ranks exactly as the offline evaluator does.
#![allow(missing_docs)]

use knowedge_format::artifact::SigningKey;
use knowedge_scoring::model::{Filters, Model};
use knowedge_train::eval::{Scorer, rank};
use knowedge_train::recipes::{self, Config, Recipe};
use knowedge_train::{Dataset, export};

/// 40 users in two taste groups over 24 items, with times and item texts.
fn data() -> Dataset {
    let mut ds = Dataset {
        users: (0..40).map(|u| format!("u{u}")).collect(),
        items: (0..24).map(|i| format!("i{i}")).collect(),
        item_text: (0..24)
            .map(|i| {
                if i < 12 {
                    format!("Python 数据分析 第{i}讲 category:python")
                } else {
                    format!("写作 课程 category:writing {i}")
                }
            })
            .collect(),
        ..Dataset::default()
    };
    ds.owned = vec![Vec::new(); 40];
    let per_user = (0..40u32)
        .map(|u| {
            let base = if u % 2 == 0 { 0 } else { 12 };
            (0..6u32).map(|k| (base + (u * 7 + k * 5) % 12, i64::from(u * 1000 + k * 60))).collect()
        })
        .collect();
    ds.set_interactions(per_user);
    ds
}

#[test]
fn every_recipe_exports_and_serves_its_own_ranking() {
    let ds = data();
    let key = SigningKey::from_seed([9; 32]);
    let mut cfg = Config { bpr_epochs: 3, ..Config::default() };
    cfg.vae.epochs = 2;
    let valid: Vec<Vec<u32>> =
        (0..40u32).map(|u| vec![if u % 2 == 0 { (u * 7 + 30) % 12 } else { 12 + (u * 7 + 30) % 12 }]).collect();
    let valid: Vec<Vec<u32>> = valid
        .into_iter()
        .enumerate()
        .map(|(u, v)| v.into_iter().filter(|i| !ds.positives[u].contains(i)).collect())
        .collect();
    for recipe in Recipe::ALL {
        let fitted = recipes::fit(recipe, &ds, &cfg, Some(&valid)).unwrap();
        let bytes = export::artifact(
            &fitted,
            &ds,
            &ds.positives,
            None,
            None,
            &key,
            "v1",
            Default::default(),
            cfg.params(recipe),
        )
        .unwrap();
        let model = Model::from_artifact(&bytes, &key.public_key()).unwrap();
        assert_eq!(model.info().kind, fitted.kind(), "{recipe}");
        let mut buf = Vec::new();
        for u in 0..ds.users.len() {
            fitted.scores(u, &mut buf);
            let native: Vec<String> =
                rank(&buf, &[&ds.positives[u]], 5).into_iter().map(|i| ds.items[i as usize].clone()).collect();
            let served: Vec<String> =
                model.recommend(Some(&ds.users[u]), 5, &Filters::default()).into_iter().map(|s| s.item).collect();
            assert_eq!(served, native, "{recipe}, user {u}");
        }
    }
}

#[test]
fn personalised_recipes_learn_the_taste_groups() {
    let ds = data();
    let cfg = Config::default();
    for recipe in [Recipe::ItemKnn, Recipe::Rp3Beta, Recipe::TimeKnn, Recipe::Ease, Recipe::Content, Recipe::Hybrid] {
        let fitted = recipes::fit(recipe, &ds, &cfg, None).unwrap();
        let mut buf = Vec::new();
        for u in 0..ds.users.len() {
            fitted.scores(u, &mut buf);
            let top = rank(&buf, &[&ds.positives[u]], 3);
            let group = |i: u32| i < 12;
            assert!(top.iter().all(|&i| group(i) == (u % 2 == 0)), "{recipe}, user {u}: {top:?}");
        }
    }
}
