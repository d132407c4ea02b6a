//! Review sentiment: training on candle, evaluation and export.
//!
//! The model is logistic regression on the hashed text features of
//! [`knowedge_scoring::sentiment`], with naive-Bayes feature scaling: each
//! feature `f` of a review enters with value `r_f / sqrt(n)`, where `n` is the
//! review's number of distinct features and `r_f` the smoothed log ratio of
//! how often `f` occurs in positive and in negative training reviews. The
//! weights `w` and the bias are learned with AdamW on the logistic loss; the
//! exported weights are `w_f · r_f`, so the edge computes exactly
//! `bias + Σ weight[f] / sqrt(n)` with no table besides the weights.
//!
//! Training is seeded (shuffling, split) and therefore reproducible.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use chrono::Utc;
use knowedge_format::artifact::SigningKey;
use knowedge_scoring::sentiment::{self, Featurizer, Label, SentimentModel};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use serde_json::json;

use crate::{Error, Result};

/// One labelled review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    /// The text.
    pub text: String,
    /// Whether it is positive.
    pub positive: bool,
}

/// Reads `pos.txt` and `neg.txt` (UTF-8, one review a line; blank lines are
/// skipped, `\r\n` line ends and a leading byte order mark accepted) from
/// `dir`. Fails when either file is missing or empty, or names the first line
/// that is not valid UTF-8.
pub fn load_reviews(dir: &Path) -> Result<Vec<Review>> {
    let mut out = Vec::new();
    for (file, positive) in [("pos.txt", true), ("neg.txt", false)] {
        let path = dir.join(file);
        let bytes = std::fs::read(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
            Error::Data(format!(
                "{}: line {line} is not valid UTF-8 (review files are UTF-8 text, one review a line)",
                path.display()
            ))
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let before = out.len();
        out.extend(
            text.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| Review { text: l.to_owned(), positive }),
        );
        if out.len() == before {
            return Err(Error::NoData(format!("{} holds no reviews", path.display())));
        }
    }
    Ok(out)
}

/// A seeded, stratified split: `holdout` (0-1) of the positive and of the
/// negative reviews go to the second list, the rest to the first.
pub fn split(reviews: &[Review], holdout: f64, seed: u64) -> (Vec<Review>, Vec<Review>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in [true, false] {
        let mut part: Vec<&Review> = reviews.iter().filter(|r| r.positive == class).collect();
        part.shuffle(&mut rng);
        let cut = ((part.len() as f64) * holdout.clamp(0.0, 1.0)).round() as usize;
        test.extend(part[..cut].iter().map(|r| (*r).clone()));
        train.extend(part[cut..].iter().map(|r| (*r).clone()));
    }
    (train, test)
}

/// Hyper-parameters of sentiment training.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SentimentConfig {
    /// Hash bits: the model has `2^bits` weights (4 bytes each).
    pub bits: u32,
    /// Passes over the training reviews.
    pub epochs: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Reviews per step.
    pub batch: usize,
    /// Additive smoothing of the naive-Bayes ratios; 0 turns the scaling off.
    pub nb_smoothing: f32,
    /// Seed of the shuffling.
    pub seed: u64,
}

impl Default for SentimentConfig {
    /// The settings tuned on seeded 80/20 splits (see docs/SENTIMENT.md).
    fn default() -> Self {
        Self {
            bits: sentiment::DEFAULT_BITS,
            epochs: 6,
            lr: 0.01,
            weight_decay: 0.0,
            batch: 64,
            nb_smoothing: 1.0,
            seed: 42,
        }
    }
}

impl SentimentConfig {
    /// The parameters as manifest entries.
    pub fn to_params(&self) -> BTreeMap<String, serde_json::Value> {
        [
            ("algorithm", json!("nb-logistic-regression")),
            ("features", json!(sentiment::FEATURES)),
            ("bits", json!(self.bits)),
            ("epochs", json!(self.epochs)),
            ("lr", json!(self.lr)),
            ("weight_decay", json!(self.weight_decay)),
            ("batch", json!(self.batch)),
            ("nb_smoothing", json!(self.nb_smoothing)),
            ("seed", json!(self.seed)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// A trained model: exported weights (NB scaling folded in) and bias.
#[derive(Clone, Debug)]
pub struct Trained {
    /// One weight per hash bucket.
    pub weights: Vec<f32>,
    /// The bias.
    pub bias: f32,
    /// Mean logistic loss of the last epoch.
    pub final_loss: f32,
    /// Reviews trained on.
    pub reviews: usize,
}

impl Trained {
    /// The model, for scoring without an artifact.
    pub fn model(&self, model_id: &str) -> Result<SentimentModel> {
        Ok(SentimentModel::from_weights(self.weights.clone(), self.bias, model_id)?)
    }
}

/// Trains on `reviews` with candle (CPU, or CUDA with the `cuda` feature).
pub fn train(reviews: &[Review], cfg: &SentimentConfig) -> Result<Trained> {
    if !reviews.iter().any(|r| r.positive) || !reviews.iter().any(|r| !r.positive) {
        return Err(Error::NoData("sentiment training needs positive and negative reviews".into()));
    }
    let mut featurizer = Featurizer::new(cfg.bits);
    let buckets = featurizer.buckets();
    let docs: Vec<Vec<u32>> = reviews.iter().map(|r| featurizer.features(&r.text).to_vec()).collect();

    // Naive-Bayes log-count ratios per bucket.
    let ratios: Vec<f32> = if cfg.nb_smoothing > 0.0 {
        let a = cfg.nb_smoothing;
        let (mut p, mut q) = (vec![a; buckets], vec![a; buckets]);
        for (d, r) in docs.iter().zip(reviews) {
            let counts = if r.positive { &mut p } else { &mut q };
            for &f in d {
                counts[f as usize] += 1.0;
            }
        }
        let (sp, sq) = (p.iter().map(|x| f64::from(*x)).sum::<f64>(), q.iter().map(|x| f64::from(*x)).sum::<f64>());
        p.iter().zip(&q).map(|(p, q)| ((f64::from(*p) / sp) / (f64::from(*q) / sq)).ln() as f32).collect()
    } else {
        vec![1.0; buckets]
    };

    let dev = crate::bpr::device();
    let w = Var::zeros(buckets, DType::F32, &dev)?;
    let b = Var::zeros(1, DType::F32, &dev)?;
    let mut opt = AdamW::new(
        vec![w.clone(), b.clone()],
        ParamsAdamW { lr: cfg.lr, weight_decay: cfg.weight_decay, ..Default::default() },
    )?;
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut order: Vec<usize> = (0..docs.len()).collect();
    let mut last_loss = f32::NAN;
    for epoch in 0..cfg.epochs {
        order.shuffle(&mut rng);
        let (mut total, mut steps) = (0f32, 0usize);
        for chunk in order.chunks(cfg.batch.max(1)) {
            let (mut idx, mut val, mut seg, mut ys) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (row, &k) in chunk.iter().enumerate() {
                let d = &docs[k];
                let scale = 1.0 / (d.len().max(1) as f32).sqrt();
                for &f in d {
                    idx.push(f);
                    val.push(ratios[f as usize] * scale);
                    seg.push(row as u32);
                }
                ys.push(if reviews[k].positive { 1f32 } else { 0.0 });
            }
            let n = chunk.len();
            let nnz = idx.len();
            let idx = Tensor::from_vec(idx, nnz, &dev)?;
            let val = Tensor::from_vec(val, nnz, &dev)?;
            let seg = Tensor::from_vec(seg, nnz, &dev)?;
            let y = Tensor::from_vec(ys, n, &dev)?;
            let contrib = (w.as_tensor().index_select(&idx, 0)? * val)?;
            let z = Tensor::zeros(n, DType::F32, &dev)?.index_add(&seg, &contrib, 0)?.broadcast_add(b.as_tensor())?;
            // Logistic loss with logits: softplus(z) - y z, softplus(z) = relu(z) + ln(1 + exp(-|z|)).
            let softplus = (z.relu()? + z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)?;
            let loss = (softplus - (&y * &z)?)?.mean_all()?;
            opt.backward_step(&loss)?;
            total += loss.to_scalar::<f32>()?;
            steps += 1;
        }
        last_loss = total / steps.max(1) as f32;
        tracing::debug!(epoch, loss = last_loss, "sentiment epoch");
    }
    let learned = w.as_tensor().to_vec1::<f32>()?;
    let weights = learned.iter().zip(&ratios).map(|(w, r)| w * r).collect();
    let bias = b.as_tensor().to_vec1::<f32>()?[0];
    Ok(Trained { weights, bias, final_loss: last_loss, reviews: reviews.len() })
}

/// Counts of actual (rows) against predicted (columns) labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Confusion {
    /// Positive reviews predicted positive.
    pub true_positive: usize,
    /// Positive reviews predicted negative.
    pub false_negative: usize,
    /// Negative reviews predicted positive.
    pub false_positive: usize,
    /// Negative reviews predicted negative.
    pub true_negative: usize,
    /// Reviews of either class that got no prediction (no features; counted as wrong).
    pub neutral: usize,
}

/// Quality of a model on labelled reviews.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    /// Share of reviews labelled correctly.
    pub accuracy: f64,
    /// Mean of the F1 scores of the positive and the negative class.
    pub macro_f1: f64,
    /// F1 of the positive class.
    pub f1_positive: f64,
    /// F1 of the negative class.
    pub f1_negative: f64,
    /// Reviews evaluated.
    pub reviews: usize,
    /// The confusion matrix.
    pub confusion: Confusion,
}

fn f1(tp: usize, fp: usize, fn_: usize) -> f64 {
    let denom = 2 * tp + fp + fn_;
    if denom == 0 { 0.0 } else { 2.0 * tp as f64 / denom as f64 }
}

/// Scores `reviews` with `model` (the shared scoring code) and compares with their labels.
pub fn evaluate(model: &SentimentModel, reviews: &[Review]) -> Metrics {
    let mut c = Confusion::default();
    let mut f = model.featurizer();
    for r in reviews {
        match (r.positive, model.score_with(&mut f, &r.text).label) {
            (true, Label::Positive) => c.true_positive += 1,
            (true, Label::Negative) => c.false_negative += 1,
            (false, Label::Positive) => c.false_positive += 1,
            (false, Label::Negative) => c.true_negative += 1,
            (_, Label::Neutral) => c.neutral += 1,
        }
    }
    let n = reviews.len();
    let f1_positive = f1(c.true_positive, c.false_positive, c.false_negative);
    let f1_negative = f1(c.true_negative, c.false_negative, c.false_positive);
    Metrics {
        accuracy: if n == 0 { 0.0 } else { (c.true_positive + c.true_negative) as f64 / n as f64 },
        macro_f1: (f1_positive + f1_negative) / 2.0,
        f1_positive,
        f1_negative,
        reviews: n,
        confusion: c,
    }
}

/// One seed of [`cross_validate`].
#[derive(Clone, Debug, Serialize)]
pub struct SplitResult {
    /// Seed of the split.
    pub seed: u64,
    /// Reviews trained on.
    pub train: usize,
    /// Held-out metrics.
    pub metrics: Metrics,
}

/// Trains on a seeded split for each seed and evaluates on its held-out part.
pub fn cross_validate(
    reviews: &[Review],
    holdout: f64,
    seeds: &[u64],
    cfg: &SentimentConfig,
) -> Result<Vec<SplitResult>> {
    seeds
        .iter()
        .map(|&seed| {
            let (train_set, test_set) = split(reviews, holdout, seed);
            let trained = train(&train_set, &SentimentConfig { seed, ..cfg.clone() })?;
            let metrics = evaluate(&trained.model("cv")?, &test_set);
            Ok(SplitResult { seed, train: train_set.len(), metrics })
        })
        .collect()
}

/// A new sentiment model version name: UTC time and `-sentiment`.
pub fn new_version() -> String {
    format!("{}-sentiment", Utc::now().format("%Y%m%dT%H%M%S%3fZ"))
}

/// Builds and signs the artifact of a trained model; `metrics` (held-out, if
/// measured) and the hyper-parameters go into the manifest.
pub fn export(
    trained: &Trained,
    cfg: &SentimentConfig,
    metrics: Option<&Metrics>,
    key: &SigningKey,
    version: &str,
) -> Result<Vec<u8>> {
    let mut b = sentiment::builder(trained.weights.clone(), trained.bias, version);
    let m = b.manifest_mut();
    m.created_at = Utc::now();
    m.training.events = trained.reviews as u64;
    m.params = cfg.to_params();
    m.metrics.insert("final_logistic_loss".into(), f64::from(trained.final_loss));
    if let Some(x) = metrics {
        m.metrics.insert("holdout_accuracy".into(), x.accuracy);
        m.metrics.insert("holdout_macro_f1".into(), x.macro_f1);
        m.metrics.insert("holdout_reviews".into(), x.reviews as f64);
    }
    Ok(b.sign(key)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn data_dir() -> std::path::PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/reviews-zh");
        assert!(
            dir.join("pos.txt").is_file() && dir.join("neg.txt").is_file(),
            "the review corpus is missing at {}: it must be at ../shared/data/reviews-zh beside the repository",
            dir.display()
        );
        dir
    }

    #[test]
    fn split_is_seeded_stratified_and_disjoint() {
        let reviews: Vec<Review> = (0..100).map(|i| Review { text: format!("r{i}"), positive: i % 3 == 0 }).collect();
        let (a, b) = split(&reviews, 0.2, 7);
        assert_eq!(a.len() + b.len(), 100);
        assert_eq!(b.iter().filter(|r| r.positive).count(), 7); // 34 positives * 0.2
        assert!(b.iter().all(|r| !a.contains(r)));
        assert_eq!(split(&reviews, 0.2, 7).1, b);
        assert_ne!(split(&reviews, 0.2, 8).1, b);
    }

    #[test]
    fn missing_data_fails_loudly() {
        let err = load_reviews(Path::new("/nonexistent/reviews")).unwrap_err();
        assert!(err.to_string().contains("pos.txt"), "{err}");
    }

    #[test]
    fn review_files_are_read_line_by_line_and_bad_bytes_are_located() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pos.txt"), "\u{feff}好书\r\n\r\n  讲得清楚 \r\n").unwrap();
        std::fs::write(dir.path().join("neg.txt"), "太差\n").unwrap();
        let all = load_reviews(dir.path()).unwrap();
        let texts: Vec<(&str, bool)> = all.iter().map(|r| (r.text.as_str(), r.positive)).collect();
        assert_eq!(texts, [("好书", true), ("讲得清楚", true), ("太差", false)]);

        // GBK bytes on the third line: the error names the file and the line.
        std::fs::write(dir.path().join("neg.txt"), b"\xe5\xa4\xaa\xe5\xb7\xae\n\nok \xcc\xab\xb2\xee\n").unwrap();
        let err = load_reviews(dir.path()).unwrap_err().to_string();
        assert!(err.contains("neg.txt: line 3 is not valid UTF-8"), "{err}");

        std::fs::write(dir.path().join("neg.txt"), "\n \n").unwrap();
        let err = load_reviews(dir.path()).unwrap_err().to_string();
        assert!(err.contains("neg.txt holds no reviews"), "{err}");
    }

    /// Trains on a subsample of the real corpus for a few seconds and checks
    /// the held-out accuracy and the exported artifact.
    #[test]
    fn learns_sentiment_from_real_reviews() {
        let all = load_reviews(&data_dir()).unwrap();
        assert!(all.len() > 10_000);
        // Every 4th review: a quick but real run.
        let sample: Vec<Review> = all.iter().step_by(4).cloned().collect();
        let (train_set, test_set) = split(&sample, 0.2, 3);
        let cfg = SentimentConfig { bits: 16, epochs: 4, ..SentimentConfig::default() };
        let trained = train(&train_set, &cfg).unwrap();
        let model = trained.model("t").unwrap();
        let m = evaluate(&model, &test_set);
        eprintln!("subsample held-out: {m:?}");
        assert!(m.accuracy > 0.78, "{m:?}");
        assert!(m.macro_f1 > 0.77, "{m:?}");
        let c = m.confusion;
        assert_eq!(c.true_positive + c.false_negative + c.false_positive + c.true_negative + c.neutral, test_set.len());

        let key = SigningKey::from_seed([5; 32]);
        let bytes = export(&trained, &cfg, Some(&m), &key, "s-1").unwrap();
        let loaded = SentimentModel::from_artifact(&bytes, &key.public_key()).unwrap();
        assert_eq!(loaded.info().metrics["holdout_accuracy"], m.accuracy);
        assert_eq!(loaded.bits(), 16);
        for r in test_set.iter().take(50) {
            assert_eq!(loaded.score(&r.text), model.score(&r.text));
        }
        assert_eq!(loaded.score("质量很好，非常喜欢，推荐购买").label, Label::Positive);
        assert_eq!(loaded.score("太差了，很失望，不推荐").label, Label::Negative);
    }
}
