//! Checks on the real MovieLens-100K data in `../shared/data` (RecBole atomic
//! format, fixed split `split-2026`). They fail, not skip, when it is missing.
#![allow(missing_docs)]

use std::path::PathBuf;

use knowedge_train::eval::evaluate;
use knowedge_train::recbole;
use knowedge_train::recipes::{self, Config, Recipe};

fn data() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ml-100k");
    assert!(p.join("ml-100k.inter").exists(), "{} is missing: the shared data sets are required", p.display());
    p
}

#[test]
fn split_2026_loads_and_popularity_matches_the_reference_protocol() {
    let split = recbole::load_split(&data(), &data().join("split-2026")).unwrap();
    let ds = &split.train;
    assert_eq!((ds.users.len(), ds.items.len(), ds.pairs()), (943, 1682, 80_000));
    assert_eq!(split.valid.iter().map(Vec::len).sum::<usize>(), 10_009);
    assert_eq!(split.test.iter().map(Vec::len).sum::<usize>(), 9_991);
    assert!(ds.item_text[0].starts_with("Toy Story"), "{}", ds.item_text[0]);
    let pop = recipes::fit(Recipe::Popularity, ds, &Config::default(), None).unwrap();
    let m = evaluate(&pop, ds.items.len(), &ds.positives, Some(&split.valid), &split.test, 10);
    assert_eq!(m.users, 943);
    // An independent implementation of the same protocol gives 0.147.
    assert!((m.ndcg - 0.147).abs() < 0.005, "popularity test NDCG@10 {:.4}", m.ndcg);
}

#[test]
fn random_splits_are_per_user_80_10_10_and_seeded() {
    let a = recbole::random_split(&data(), 1).unwrap();
    let b = recbole::random_split(&data(), 1).unwrap();
    let c = recbole::random_split(&data(), 2).unwrap();
    assert_eq!(a.test, b.test);
    assert_ne!(a.test, c.test);
    let (tr, va, te) =
        (a.train.pairs(), a.valid.iter().map(Vec::len).sum::<usize>(), a.test.iter().map(Vec::len).sum::<usize>());
    assert_eq!(tr + va + te, 100_000);
    assert!((79_000..81_000).contains(&tr) && (9_000..11_000).contains(&te), "{tr} {va} {te}");
    for u in 0..a.train.users.len() {
        assert!(a.test[u].iter().all(|i| a.train.positives[u].binary_search(i).is_err()));
    }
}

#[test]
fn ease_is_far_ahead_of_popularity_on_validation() {
    let split = recbole::load_split(&data(), &data().join("split-2026")).unwrap();
    let ds = &split.train;
    let ease = recipes::fit(Recipe::Ease, ds, &Config::default(), None).unwrap();
    let m = evaluate(&ease, ds.items.len(), &ds.positives, None, &split.valid, 10);
    assert!(m.ndcg > 0.25, "EASE validation NDCG@10 {:.4}", m.ndcg);
}
