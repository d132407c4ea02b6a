//! `knowedge sentiment …`: train, evaluate, publish, score the lake, report
//! and benchmark the review sentiment model (see docs/SENTIMENT.md).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, Subcommand};
use knowedge_format::store::Channel;
use knowedge_lake::{Lake, ModelStore};
use knowedge_scoring::sentiment::{Label, SentimentModel};
use knowedge_train::reviews::{self, ItemSentiment};
use knowedge_train::sentiment::{self as train, Metrics, SentimentConfig};
use serde_json::json;

use crate::keys::Keys;

const DEFAULT_KEYS: &str = ".knowedge/keys";

/// Hyper-parameters of sentiment training (defaults: the tuned settings).
#[derive(Args, Clone, Debug)]
pub struct Hyper {
    /// Hash bits: the model has 2^bits weights of 4 bytes.
    #[arg(long, default_value_t = SentimentConfig::default().bits)]
    pub bits: u32,
    /// Passes over the training reviews.
    #[arg(long, default_value_t = SentimentConfig::default().epochs)]
    pub epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = SentimentConfig::default().lr)]
    pub lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = SentimentConfig::default().weight_decay)]
    pub weight_decay: f64,
    /// Reviews per step.
    #[arg(long, default_value_t = SentimentConfig::default().batch)]
    pub batch: usize,
    /// Naive-Bayes ratio smoothing (0 turns the scaling off).
    #[arg(long, default_value_t = SentimentConfig::default().nb_smoothing)]
    pub nb_smoothing: f32,
}

impl Hyper {
    fn config(&self, seed: u64) -> SentimentConfig {
        SentimentConfig {
            bits: self.bits,
            epochs: self.epochs,
            lr: self.lr,
            weight_decay: self.weight_decay,
            batch: self.batch,
            nb_smoothing: self.nb_smoothing,
            seed,
        }
    }
}

/// The `knowedge sentiment` subcommands.
#[derive(Subcommand, Clone, Debug)]
pub enum SentimentCommand {
    /// Train on DIR/pos.txt and DIR/neg.txt and write a signed artifact.
    Train {
        /// Folder with pos.txt and neg.txt (one review a line).
        #[arg(long)]
        data: PathBuf,
        /// Artifact to write.
        #[arg(long)]
        out: PathBuf,
        /// Keep this share of the reviews (seeded, stratified) aside and report the held-out metrics (0 = train on all).
        #[arg(long, default_value_t = 0.0)]
        holdout: f64,
        /// Seed of the split and of the training.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Hyper-parameters.
        #[command(flatten)]
        hyper: Hyper,
        /// Key directory (signing.key), unless KNOWEDGE_SIGNING_KEY is set.
        #[arg(long, default_value = DEFAULT_KEYS)]
        keys: PathBuf,
        /// Also write the held-out metrics here as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Evaluate an artifact on DIR/pos.txt and DIR/neg.txt: accuracy, macro-F1, confusion matrix.
    Eval {
        /// The artifact.
        #[arg(long)]
        model: PathBuf,
        /// Folder with pos.txt and neg.txt.
        #[arg(long)]
        data: PathBuf,
        /// Write the metrics here as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Evaluate only the held-out part of the split `train --holdout H --seed S` made.
        #[arg(long, default_value_t = 0.0)]
        holdout: f64,
        /// Seed of that split.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Key directory (signing.pub), unless KNOWEDGE_SIGNING_PUBLIC_KEY is set.
        #[arg(long, default_value = DEFAULT_KEYS)]
        keys: PathBuf,
    },
    /// Train and evaluate on several seeded held-out splits (for tuning without tuning to one split).
    Cv {
        /// Folder with pos.txt and neg.txt.
        #[arg(long)]
        data: PathBuf,
        /// Held-out share of each split.
        #[arg(long, default_value_t = 0.2)]
        holdout: f64,
        /// Comma-separated split seeds.
        #[arg(long, default_value = "1,2,3", value_delimiter = ',')]
        seeds: Vec<u64>,
        /// Hyper-parameters.
        #[command(flatten)]
        hyper: Hyper,
        /// Write the results here as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Put an artifact into a model store and point `current-sentiment` at it (the edge follows).
    Publish {
        /// The artifact.
        #[arg(long)]
        model: PathBuf,
        /// Model store (directory or s3:// URL).
        #[arg(long)]
        models: String,
        /// Key directory (signing.pub), unless KNOWEDGE_SIGNING_PUBLIC_KEY is set.
        #[arg(long, default_value = DEFAULT_KEYS)]
        keys: PathBuf,
    },
    /// Score the lake's review events not yet scored into review-sentiment/ (the training job does this too).
    Score {
        /// Lake location.
        #[arg(long)]
        lake: String,
        /// Model store whose `current-sentiment` to use.
        #[arg(long, conflicts_with = "model")]
        models: Option<String>,
        /// Or an artifact file.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Key directory (signing.pub), unless KNOWEDGE_SIGNING_PUBLIC_KEY is set.
        #[arg(long, default_value = DEFAULT_KEYS)]
        keys: PathBuf,
    },
    /// Per-item review sentiment from the lake's review-sentiment table.
    Report {
        /// Lake location.
        #[arg(long)]
        lake: String,
        /// Only items with at least this many scored reviews.
        #[arg(long, default_value_t = 1)]
        min_reviews: usize,
        /// Rows to print (all in --json).
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Write every item here as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Scoring throughput natively and in wasmtime (one core each), and the artifact size. Build in release.
    Bench {
        /// The artifact.
        #[arg(long)]
        model: PathBuf,
        /// Folder with pos.txt and neg.txt (the texts scored).
        #[arg(long)]
        data: PathBuf,
        /// The scoring program built for wasm32-wasip2
        /// (`cargo build -p knowedge-scoring --example sentiment_bench --target wasm32-wasip2 --release`).
        #[arg(long, default_value_os_t = crate::built("wasm32-wasip2/release/examples/sentiment_bench.wasm"))]
        wasm: PathBuf,
        /// Seconds of scoring per measurement.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Rounds of the three measurements (native, wasm, wasm without deadline
        /// checks), taken in turn; the figures are the medians.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
        rounds: u32,
        /// Key directory (signing.pub), unless KNOWEDGE_SIGNING_PUBLIC_KEY is set.
        #[arg(long, default_value = DEFAULT_KEYS)]
        keys: PathBuf,
        /// Write the figures here as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

/// Runs a `knowedge sentiment` subcommand.
pub async fn run(command: SentimentCommand) -> Result<()> {
    match command {
        SentimentCommand::Train { data, out, holdout, seed, hyper, keys, json } => {
            let key = Keys::load_signing(&keys)?;
            let all = train::load_reviews(&data)?;
            ensure!((0.0..1.0).contains(&holdout), "--holdout must be in [0, 1)");
            let (train_set, test_set) = train::split(&all, holdout, seed);
            let cfg = hyper.config(seed);
            let t = Instant::now();
            let trained = train::train(&train_set, &cfg)?;
            eprintln!(
                "trained on {} reviews in {:.1}s (2^{} weights, final loss {:.4})",
                train_set.len(),
                t.elapsed().as_secs_f32(),
                cfg.bits,
                trained.final_loss
            );
            let metrics = if test_set.is_empty() {
                None
            } else {
                let m = train::evaluate(&trained.model("holdout")?, &test_set);
                print_metrics(&format!("held out ({:.0}%, seed {seed})", holdout * 100.0), &m);
                Some(m)
            };
            let version = train::new_version();
            let bytes = train::export(&trained, &cfg, metrics.as_ref(), &key, &version)?;
            write(&out, &bytes)?;
            println!("wrote {} ({} bytes, model id {version})", out.display(), bytes.len());
            if let (Some(path), Some(m)) = (json, &metrics) {
                write(&path, &serde_json::to_vec_pretty(&metrics_json(m, &version))?)?;
            }
            Ok(())
        }
        SentimentCommand::Eval { model, data, json, holdout, seed, keys } => {
            let model = load_model(&model, &keys)?;
            let all = train::load_reviews(&data)?;
            let reviews = if holdout > 0.0 { train::split(&all, holdout, seed).1 } else { all };
            let m = train::evaluate(&model, &reviews);
            print_metrics(&format!("{} on {}", model.info().model_id, data.display()), &m);
            if let Some(path) = json {
                write(&path, &serde_json::to_vec_pretty(&metrics_json(&m, &model.info().model_id))?)?;
            }
            Ok(())
        }
        SentimentCommand::Cv { data, holdout, seeds, hyper, json } => {
            let all = train::load_reviews(&data)?;
            let results = train::cross_validate(&all, holdout, &seeds, &hyper.config(0))?;
            println!("{:>6} {:>8} {:>9} {:>9}", "seed", "train", "accuracy", "macro-F1");
            for r in &results {
                println!("{:>6} {:>8} {:>9.4} {:>9.4}", r.seed, r.train, r.metrics.accuracy, r.metrics.macro_f1);
            }
            let n = results.len().max(1) as f64;
            let mean_acc = results.iter().map(|r| r.metrics.accuracy).sum::<f64>() / n;
            let mean_f1 = results.iter().map(|r| r.metrics.macro_f1).sum::<f64>() / n;
            println!("{:>6} {:>8} {:>9.4} {:>9.4}", "mean", "", mean_acc, mean_f1);
            if let Some(path) = json {
                let v = json!({"holdout": holdout, "config": hyper.config(0), "splits": results,
                               "mean_accuracy": mean_acc, "mean_macro_f1": mean_f1});
                write(&path, &serde_json::to_vec_pretty(&v)?)?;
            }
            Ok(())
        }
        SentimentCommand::Publish { model, models, keys } => {
            let bytes = std::fs::read(&model).with_context(|| format!("reading {}", model.display()))?;
            let loaded = SentimentModel::from_artifact(&bytes, &Keys::load_public(&keys)?)
                .with_context(|| format!("{} is not a valid sentiment artifact", model.display()))?;
            let version = loaded.info().model_id.clone();
            ModelStore::open(&models)?.publish(Channel::Sentiment, &version, bytes).await?;
            println!("published {version}; {models}/current-sentiment now names it");
            Ok(())
        }
        SentimentCommand::Score { lake, models, model, keys } => {
            let lake = Lake::open(&lake)?;
            let key = Keys::load_public(&keys)?;
            let report = match (models, model) {
                (Some(store), None) => reviews::score_with_current(&lake, &ModelStore::open(&store)?, &key)
                    .await?
                    .with_context(|| format!("{store} has no current-sentiment model"))?,
                (None, Some(file)) => reviews::score_reviews(&lake, &load_model(&file, &keys)?).await?,
                _ => bail!("give --models STORE or --model FILE"),
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        SentimentCommand::Report { lake, min_reviews, top, json } => {
            let lake = Lake::open(&lake)?;
            let rows = lake.read_review_sentiment().await?;
            let titles: HashMap<String, String> =
                lake.catalogue().await?.into_iter().map(|c| (c.id, c.title)).collect();
            let mut items: Vec<ItemSentiment> =
                reviews::item_sentiment(&rows).into_iter().filter(|i| i.reviews >= min_reviews).collect();
            items.sort_by(|a, b| b.mean_score.total_cmp(&a.mean_score).then_with(|| b.reviews.cmp(&a.reviews)));
            println!("{} scored reviews, {} items with at least {min_reviews}", rows.len(), items.len());
            println!(
                "{:<28} {:>7} {:>4} {:>4} {:>4} {:>6} {:>6}  title",
                "item", "reviews", "pos", "neg", "neu", "pos%", "mean"
            );
            let shown: Vec<&ItemSentiment> = if items.len() > top {
                items[..top / 2].iter().chain(&items[items.len() - (top - top / 2)..]).collect()
            } else {
                items.iter().collect()
            };
            for i in shown {
                println!(
                    "{:<28} {:>7} {:>4} {:>4} {:>4} {:>5.0}% {:>6.3}  {}",
                    i.item_id,
                    i.reviews,
                    i.positive,
                    i.negative,
                    i.neutral,
                    i.positive_share * 100.0,
                    i.mean_score,
                    titles.get(&i.item_id).map(String::as_str).unwrap_or("")
                );
            }
            if let Some(path) = json {
                write(&path, &serde_json::to_vec_pretty(&items)?)?;
            }
            Ok(())
        }
        SentimentCommand::Bench { model, data, wasm, seconds, rounds, keys, json } => {
            // wasmtime's synchronous WASI blocks on its own; keep it off the async worker threads.
            tokio::task::spawn_blocking(move || bench(&model, &data, &wasm, seconds, rounds, &keys, json)).await?
        }
    }
}

fn load_model(path: &Path, keys: &Path) -> Result<SentimentModel> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    SentimentModel::from_artifact(&bytes, &Keys::load_public(keys)?)
        .with_context(|| format!("{} is not a valid sentiment artifact", path.display()))
}

fn metrics_json(m: &Metrics, model_id: &str) -> serde_json::Value {
    json!({
        "model_id": model_id,
        "accuracy": m.accuracy,
        "macro_f1": m.macro_f1,
        "f1_positive": m.f1_positive,
        "f1_negative": m.f1_negative,
        "reviews": m.reviews,
        "confusion": m.confusion,
    })
}

fn print_metrics(title: &str, m: &Metrics) {
    let c = &m.confusion;
    println!("{title}: {} reviews", m.reviews);
    println!(
        "  accuracy {:.4}   macro-F1 {:.4}   (F1 positive {:.4}, negative {:.4})",
        m.accuracy, m.macro_f1, m.f1_positive, m.f1_negative
    );
    println!("  {:<16} {:>18} {:>18} {:>8}", "", "predicted positive", "predicted negative", "neutral");
    println!("  {:<16} {:>18} {:>18} {:>8}", "actual positive", c.true_positive, c.false_negative, "");
    println!("  {:<16} {:>18} {:>18} {:>8}", "actual negative", c.false_positive, c.true_negative, "");
    println!("  {:<16} {:>18} {:>18} {:>8}", "(no features)", "", "", c.neutral);
}

/// The loop of `shared/scoring/examples/sentiment_bench.rs`, natively.
fn score_for(model: &SentimentModel, texts: &[String], seconds: f64) -> (usize, f64, usize) {
    let mut featurizer = model.featurizer();
    let (mut reviews, mut positive) = (0usize, 0usize);
    let start = Instant::now();
    loop {
        for t in texts {
            positive += usize::from(model.score_with(&mut featurizer, t).label == Label::Positive);
        }
        reviews += texts.len();
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= seconds || texts.is_empty() {
            return (reviews, elapsed.max(f64::MIN_POSITIVE), positive);
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn bench(
    model: &Path,
    data: &Path,
    wasm: &Path,
    seconds: f64,
    rounds: u32,
    keys: &Path,
    json_out: Option<PathBuf>,
) -> Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; figures are only meaningful from `cargo run --release`");
    }
    ensure!(
        wasm.is_file(),
        "{} is missing: cargo build -p knowedge-scoring --example sentiment_bench --target wasm32-wasip2 --release",
        wasm.display()
    );
    ensure!(seconds.is_finite() && seconds > 0.0, "--seconds must be a positive number");
    let artifact_bytes = std::fs::metadata(model).with_context(|| format!("reading {}", model.display()))?.len();
    let loaded = load_model(model, keys)?;
    let public_hex = Keys::load_public(keys)?.to_hex();
    let texts: Vec<String> = train::load_reviews(data)?.into_iter().map(|r| r.text).collect();
    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    eprintln!(
        "{} reviews, {:.0} characters on average; {rounds} rounds of native, wasm and wasm without deadline checks, \
         {seconds}s each",
        texts.len(),
        chars as f64 / texts.len().max(1) as f64
    );

    let abs = |p: &Path| std::fs::canonicalize(p).with_context(|| format!("resolving {}", p.display()));
    let model_abs = abs(model)?;
    let model_dir = model_abs.parent().context("model path has no folder")?.to_owned();
    let model_name = model_abs.file_name().context("model path has no file name")?.to_string_lossy().into_owned();
    let args = vec![
        "sentiment_bench".to_owned(),
        format!("/model/{model_name}"),
        public_hex,
        seconds.to_string(),
        "/data/pos.txt".to_owned(),
        "/data/neg.txt".to_owned(),
    ];
    let dirs = vec![(model_dir, "/model".to_owned()), (abs(data)?, "/data".to_owned())];
    // One wasm measurement: reviews per second, and whether its labels agree with the native pass.
    let run_wasm = |epoch: bool, native_pos: usize, native_n: usize| -> Result<(f64, bool)> {
        let out = knowedge_edge_host::command::run_command(wasm, &args, &dirs, epoch)?;
        ensure!(out.success, "the wasm benchmark failed: {}", out.stdout);
        let w: serde_json::Value = serde_json::from_str(out.stdout.trim()).context("wasm benchmark output")?;
        let rate = w["reviews_per_second"].as_f64().context("wasm benchmark output has no reviews_per_second")?;
        let agree = w["positive"].as_u64().map(|p| p as usize * native_n)
            == Some(native_pos * w["reviews"].as_u64().unwrap_or(0) as usize);
        Ok((rate, agree))
    };

    // The three measurements are taken in turn, round after round, so that a
    // change in the machine's load falls on all of them; the ratios are
    // taken within each round.
    let (mut native, mut wasm_rate, mut plain_rate) = (Vec::new(), Vec::new(), Vec::new());
    let mut agree = true;
    for round in 1..=rounds {
        let (n, secs, native_pos) = score_for(&loaded, &texts, seconds);
        let nat = n as f64 / secs;
        let (w, a) = run_wasm(true, native_pos, n)?;
        let (p, b) = run_wasm(false, native_pos, n)?;
        agree &= a && b;
        eprintln!(
            "round {round}: native {nat:.0} reviews/s; wasm {w:.0} ({:.2}x); without deadline checks {p:.0} ({:.2}x)",
            nat / w,
            nat / p
        );
        native.push(nat);
        wasm_rate.push(w);
        plain_rate.push(p);
    }
    let ratios: Vec<f64> = native.iter().zip(&wasm_rate).map(|(n, w)| n / w).collect();
    let plain_ratios: Vec<f64> = native.iter().zip(&plain_rate).map(|(n, p)| n / p).collect();
    let (native_m, wasm_m, plain_m) = (median(&native), median(&wasm_rate), median(&plain_rate));
    let (ratio_m, plain_ratio_m) = (median(&ratios), median(&plain_ratios));
    let range = |v: &[f64]| (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(0.0, f64::max));
    let (lo, hi) = range(&ratios);

    let figures = json!({
        "model_id": loaded.info().model_id,
        "artifact_bytes": artifact_bytes,
        "reviews": texts.len(),
        "mean_review_chars": chars as f64 / texts.len().max(1) as f64,
        "rounds": rounds,
        "seconds_per_measurement": seconds,
        "native_reviews_per_second": native_m,
        "wasm_reviews_per_second": wasm_m,
        "wasm_time_over_native": ratio_m,
        "wasm_without_deadline_checks_reviews_per_second": plain_m,
        "wasm_without_deadline_checks_time_over_native": plain_ratio_m,
        "per_round": {
            "native_reviews_per_second": native,
            "wasm_reviews_per_second": wasm_rate,
            "wasm_without_deadline_checks_reviews_per_second": plain_rate,
            "wasm_time_over_native": ratios,
        },
        "wasm_engine": "wasmtime 48.0.8 (cranelift, epoch interruption on as in the edge host), single thread",
        "same_labels_native_and_wasm": agree,
    });
    println!("artifact            {artifact_bytes} bytes ({:.2} MiB)", artifact_bytes as f64 / (1 << 20) as f64);
    println!("medians of {rounds} rounds:");
    println!("native (1 core)     {native_m:.0} reviews/s");
    println!("wasm in wasmtime    {wasm_m:.0} reviews/s");
    println!("wasm time / native  {ratio_m:.2}x (rounds: {lo:.2}x to {hi:.2}x)");
    println!("  without the edge host's deadline checks: {plain_m:.0} reviews/s, {plain_ratio_m:.2}x");
    if !agree {
        println!("warning: the wasm and native passes disagree on the labels");
    }
    if let Some(path) = json_out {
        write(&path, &serde_json::to_vec_pretty(&figures)?)?;
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_even_and_no_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }
}
