//! Any text, valid or not, must get a defined sentiment answer: no panic, a
//! score in [0, 1], neutral exactly when the text has no features, and the
//! distinct features the scorer counts must be the sorted, deduplicated
//! features of the definition, however often the featurizer is reused.
#![no_main]

use std::sync::{Mutex, OnceLock};

use knowedge_shared::sentiment::{Featurizer, Label, SentimentModel};
use libfuzzer_sys::fuzz_target;

const BITS: u32 = 12;

fn model() -> &'static SentimentModel {
    static MODEL: OnceLock<SentimentModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        // Fixed weights of both signs, large enough to reach the sigmoid's ends.
        let weights = (0..1u32 << BITS).map(|i| ((i.wrapping_mul(2_654_435_761) >> 20) as f32 - 2048.0) / 64.0).collect();
        SentimentModel::from_weights(weights, 0.25, "fuzz").expect("valid weights")
    })
}

/// One featurizer for the whole run, so its stamps wrap around many times.
fn featurizer() -> &'static Mutex<Featurizer> {
    static F: OnceLock<Mutex<Featurizer>> = OnceLock::new();
    F.get_or_init(|| Mutex::new(Featurizer::new(BITS)))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut f = featurizer().lock().unwrap_or_else(|e| e.into_inner());
    let sorted = f.features(&text).to_vec();
    let mut distinct = f.distinct(&text).to_vec();
    distinct.sort_unstable();
    assert_eq!(distinct, sorted);
    assert!(sorted.iter().all(|&x| x < 1 << BITS));

    let s = model().score_with(&mut f, &text);
    assert!(s.score.is_finite() && (0.0..=1.0).contains(&s.score), "{s:?}");
    assert_eq!(s.label == Label::Neutral, sorted.is_empty(), "{s:?}");
    assert_eq!(model().score(&text), s);
});
