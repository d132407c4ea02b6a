//! Scores review texts with a sentiment model for at least a given time and
//! prints the throughput as one JSON line.
//!
//! `knowedge sentiment bench` builds it for `wasm32-wasip2` and runs it in
//! wasmtime to measure the portable core's scoring inside WebAssembly; the
//! same loop runs natively in the command itself.
//!
//! ```text
//! sentiment_bench MODEL.kwm PUBLIC_KEY_HEX SECONDS TEXT_FILE...
//! ```

use std::process::ExitCode;
use std::time::Instant;

use knowedge_format::artifact::PublicKey;
use knowedge_scoring::sentiment::{Label, SentimentModel};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: sentiment_bench MODEL.kwm PUBLIC_KEY_HEX SECONDS TEXT_FILE...");
        return ExitCode::from(2);
    }
    let run = || -> Result<String, String> {
        let key = PublicKey::from_hex(&args[2]).map_err(|e| e.to_string())?;
        let bytes = std::fs::read(&args[1]).map_err(|e| format!("{}: {e}", args[1]))?;
        let model = SentimentModel::from_artifact(&bytes, &key).map_err(|e| e.to_string())?;
        let seconds: f64 = args[3].parse().map_err(|e| format!("SECONDS: {e}"))?;
        let mut texts = Vec::new();
        for path in &args[4..] {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            texts.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned));
        }
        let (reviews, elapsed, positive) = score_for(&model, &texts, seconds);
        Ok(format!(
            "{{\"reviews\":{reviews},\"seconds\":{elapsed},\"reviews_per_second\":{},\"positive\":{positive}}}",
            reviews as f64 / elapsed
        ))
    };
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sentiment_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Scores `texts` in passes until `seconds` have passed; returns reviews
/// scored, seconds taken and how many were positive. The same loop runs in
/// `knowedge sentiment bench` natively.
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
