//! Any text, valid or not, must get a defined sentiment answer: no panic, a
//! score in [0, 1], neutral exactly when the text has no features, and the
//! distinct features the scorer counts must be the sorted, deduplicated
//! features of the definition, however often the featurizer is reused. A
//! model of the default size (scored by a loop compiled for its bits) must
//! give the logit of its distinct features summed in first-seen order.
#![no_main]

use std::sync::{Mutex, OnceLock};

use knowedge_scoring::sentiment::{DEFAULT_BITS, Featurizer, Label, SentimentModel};
use libfuzzer_sys::fuzz_target;

const BITS: u32 = 12;

/// Fixed weights of both signs, large enough to reach the sigmoid's ends.
fn weights(bits: u32) -> Vec<f32> {
    (0..1u32 << bits).map(|i| ((i.wrapping_mul(2_654_435_761) >> 20) as f32 - 2048.0) / 64.0).collect()
}

fn model() -> &'static SentimentModel {
    static MODEL: OnceLock<SentimentModel> = OnceLock::new();
    MODEL.get_or_init(|| SentimentModel::from_weights(weights(BITS), 0.25, "fuzz").expect("valid weights"))
}

fn default_size() -> &'static (SentimentModel, Vec<f32>, Mutex<Featurizer>) {
    static MODEL: OnceLock<(SentimentModel, Vec<f32>, Mutex<Featurizer>)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let w = weights(DEFAULT_BITS);
        let m = SentimentModel::from_weights(w.clone(), -0.5, "fuzz-default").expect("valid weights");
        (m, w, Mutex::new(Featurizer::new(DEFAULT_BITS)))
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
    drop(f);

    let (m, w, f) = default_size();
    let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
    let firsts = f.distinct(&text).to_vec();
    let expected = (!firsts.is_empty()).then(|| {
        let sum: f32 = firsts.iter().map(|&x| w[x as usize]).sum();
        -0.5 + sum / (firsts.len() as f32).sqrt()
    });
    assert_eq!(m.logit_with(&mut f, &text).map(f32::to_bits), expected.map(f32::to_bits));
});
