//! The scoring component (`wit/scorer.wit`, world `scoring`) called through
//! the host's `bindgen!` bindings: same answers as the native core, typed
//! errors for bad input, never a trap.
//!
//! Needs `target/wasm32-wasip2/edge/knowedge_edge_scorer.wasm` (`cargo xtask build`).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use knowedge_edge_host::scorer::{Filters, ScoreError, Scorer, SentimentLabel};
use knowedge_format::artifact::{ArtifactBuilder, ModelKind, SigningKey, assemble};
use knowedge_scoring::model::{self, Model};
use knowedge_scoring::sentiment::{self, Featurizer, Label, SentimentModel};

const SEED: [u8; 32] = [5; 32];
const ITEMS: usize = 500;
const DIMS: usize = 32;

fn wasm() -> PathBuf {
    let p = knowedge_test_support::scorer_wasm();
    assert!(p.is_file(), "{} is missing: run `cargo xtask build`", p.display());
    p
}

fn key() -> [u8; 32] {
    let hex = SigningKey::from_seed(SEED).public_key().to_hex();
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    k
}

fn mf_artifact() -> Vec<u8> {
    let mut state = 7u64;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut b = ArtifactBuilder::new(ModelKind::Mf, DIMS);
    b.items((0..ITEMS).map(|i| format!("item-{i}")).collect()).users((0..50).map(|u| format!("p{u}")).collect());
    b.popularity((0..ITEMS).map(|_| next() + 1.0).collect());
    b.catalogue(
        vec!["a".into(), "b".into()],
        (0..ITEMS).map(|i| (i % 2) as u32).collect(),
        (0..ITEMS).map(|i| (i % 5) as f32 * 10.0).collect(),
    );
    b.seen(&(0..50).map(|u| vec![(u * 3) as u32, (u * 3 + 1) as u32]).collect::<Vec<_>>());
    let users: Vec<f32> = (0..50 * DIMS).map(|_| next()).collect();
    let items: Vec<f32> = (0..ITEMS * DIMS).map(|_| next()).collect();
    b.factors(users, items);
    b.manifest_mut().model_id = "mf-1".into();
    b.sign(&SigningKey::from_seed(SEED)).unwrap()
}

fn names(v: &[knowedge_edge_host::scorer::Scored]) -> Vec<(String, f32)> {
    v.iter().map(|s| (s.item.clone(), s.score)).collect()
}

fn native(v: &[model::Scored]) -> Vec<(String, f32)> {
    v.iter().map(|s| (s.item.clone(), s.score)).collect()
}

#[test]
fn the_component_answers_like_the_native_core() {
    let bytes = mf_artifact();
    let reference = Model::from_artifact(&bytes, &SigningKey::from_seed(SEED).public_key()).unwrap();
    let mut scorer = Scorer::new(&wasm()).unwrap();
    let m = scorer.load(&bytes, &key()).unwrap().unwrap();
    let info = scorer.info(&m).unwrap();
    assert_eq!(
        (info.model_id.as_str(), info.kind.as_str(), info.items, info.dims),
        ("mf-1", "mf", ITEMS as u32, DIMS as u32)
    );

    let none = Filters { category: None, max_price: None, exclude: vec![] };
    let cheap = Filters { category: Some("b".into()), max_price: Some(20.0), exclude: vec!["item-1".into()] };
    let session = vec!["item-10".to_owned(), "item-11".to_owned()];
    for user in ["p0", "p7", "p49", "stranger"] {
        for (filters, native_filters) in [
            (&none, model::Filters::default()),
            (
                &cheap,
                model::Filters { category: Some("b".into()), max_price: Some(20.0), exclude: vec!["item-1".into()] },
            ),
        ] {
            for s in [&[][..], &session[..]] {
                let got = scorer.recommend(&m, user, 10, filters, s).unwrap().unwrap();
                let want = reference.recommend_in_session(Some(user), s, 10, &native_filters);
                assert_eq!(names(&got), native(&want), "{user} {filters:?} {s:?}");
            }
        }
    }
    let candidates: Vec<String> = (0..40).map(|i| format!("item-{i}")).chain(["nope".to_owned()]).collect();
    let ranked = scorer.rank(&m, "p3", &candidates, &session).unwrap().unwrap();
    let want = reference.rank(Some("p3"), &session, &candidates);
    assert_eq!(names(&ranked.items), native(&want.items));
    assert_eq!(ranked.unknown, ["nope"]);
    assert_eq!(
        names(&scorer.similar(&m, "item-5", 5).unwrap().unwrap()),
        native(&reference.similar("item-5", 5).unwrap())
    );

    // Hostile or wrong input: typed errors, and the instance keeps working.
    assert!(matches!(
        scorer.recommend(&m, "p0", 1_000_000_000, &none, &[]).unwrap(),
        Err(ScoreError::InvalidArgument(_))
    ));
    assert!(matches!(scorer.recommend(&m, "p0", 0, &none, &[]).unwrap(), Err(ScoreError::InvalidArgument(_))));
    let bad_price = Filters { max_price: Some(f32::NAN), ..none.clone() };
    assert!(matches!(scorer.recommend(&m, "p0", 5, &bad_price, &[]).unwrap(), Err(ScoreError::InvalidArgument(_))));
    let many: Vec<String> = (0..100_000).map(|i| format!("item-{}", i % ITEMS)).collect();
    assert!(matches!(scorer.rank(&m, "p0", &many, &[]).unwrap(), Err(ScoreError::InvalidArgument(_))));
    assert!(matches!(scorer.similar(&m, "nope", 5).unwrap(), Err(ScoreError::UnknownItem(_))));
    assert!(matches!(scorer.sentiment(&m, &["好".to_owned()]).unwrap(), Err(ScoreError::InvalidArgument(_))));
    // The same limits as the HTTP API: user ids of 1 to 128 characters.
    let long_user = "u".repeat(1 << 20);
    assert!(matches!(scorer.recommend(&m, &long_user, 3, &none, &[]).unwrap(), Err(ScoreError::InvalidArgument(_))));
    assert_eq!(scorer.recommend(&m, &"u".repeat(128), 3, &none, &[]).unwrap().unwrap().len(), 3);
    assert_eq!(names(&scorer.recommend(&m, "p0", 10, &none, &[]).unwrap().unwrap()).len(), 10);
    scorer.unload(m).unwrap();
}

#[test]
fn bad_artifacts_are_refused_with_typed_errors() {
    let bytes = mf_artifact();
    let mut scorer = Scorer::new(&wasm()).unwrap();
    let mut tampered = bytes.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 1;
    assert!(matches!(scorer.load(&tampered, &key()).unwrap(), Err(ScoreError::BadSignature)));
    let mut v3 = bytes.clone();
    v3[8] = 3;
    assert!(matches!(scorer.load(&v3, &key()).unwrap(), Err(ScoreError::UnsupportedVersion(3))));
    assert!(matches!(scorer.load(b"not an artifact", &key()).unwrap(), Err(ScoreError::BadArtifact(_))));
    assert!(scorer.load(&bytes, &[9; 32]).unwrap().is_err());
    let needs =
        assemble(br#"{"format_version":2,"kind":"mf","requires":["time-travel"]}"#, b"", &SigningKey::from_seed(SEED))
            .unwrap();
    assert!(scorer.load(&needs, &key()).unwrap().is_err());
    // Still serving after all that.
    assert!(scorer.load(&bytes, &key()).unwrap().is_ok());
}

#[test]
fn sentiment_models_score_texts_like_the_native_core() {
    let mut f = Featurizer::new(12);
    let mut w = vec![0.0; 1 << 12];
    for &i in f.features("好 喜欢") {
        w[i as usize] = 3.0;
    }
    for &i in f.features("差 失望") {
        w[i as usize] = -3.0;
    }
    let bytes = sentiment::builder(w, 0.1, "sent-1").sign(&SigningKey::from_seed(SEED)).unwrap();
    let reference = SentimentModel::from_artifact(&bytes, &SigningKey::from_seed(SEED).public_key()).unwrap();
    let mut scorer = Scorer::new(&wasm()).unwrap();
    let m = scorer.load(&bytes, &key()).unwrap().unwrap();
    let texts: Vec<String> = ["很好，喜欢", "太差了，失望", "", "🙂🙂", "mixed 好 text"].map(String::from).to_vec();
    let got = scorer.sentiment(&m, &texts).unwrap().unwrap();
    let want = reference.score_all(&texts);
    for (g, w) in got.iter().zip(&want) {
        let label = match w.label {
            Label::Positive => SentimentLabel::Positive,
            Label::Negative => SentimentLabel::Negative,
            Label::Neutral => SentimentLabel::Neutral,
        };
        assert_eq!((g.label, g.score), (label, w.score));
    }
    let too_many = vec!["x".to_owned(); 101];
    assert!(matches!(scorer.sentiment(&m, &too_many).unwrap(), Err(ScoreError::InvalidArgument(_))));
    assert!(matches!(scorer.sentiment(&m, &["x".repeat(1 << 20)]).unwrap(), Err(ScoreError::InvalidArgument(_))));
    let none = Filters { category: None, max_price: None, exclude: vec![] };
    assert!(matches!(scorer.recommend(&m, "p", 5, &none, &[]).unwrap(), Err(ScoreError::InvalidArgument(_))));
}
