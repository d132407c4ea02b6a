//! Benchmark: every recipe on MovieLens-100K (release build recommended).
//!
//! ```text
//! cargo run --release -p knowedge-train --example ml100k                 # split-2026
//! cargo run --release -p knowedge-train --example ml100k -- --resplit 7  # a fresh random 80/10/10 split
//! cargo run --release -p knowedge-train --example ml100k -- ease hybrid  # some recipes
//! ```
#![allow(missing_docs)]

use std::path::PathBuf;
use std::time::Instant;

use knowedge_train::offline;
use knowedge_train::recbole;
use knowedge_train::recipes::{Config, Recipe};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ml-100k");
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut resplit = None;
    if let Some(p) = args.iter().position(|a| a == "--resplit") {
        resplit = Some(args[p + 1].parse::<u64>()?);
        args.drain(p..p + 2);
    }
    let mut cfg = Config::default();
    if let Some(p) = args.iter().position(|a| a == "--config") {
        cfg = serde_json::from_slice(&std::fs::read(&args[p + 1])?)?;
        args.drain(p..p + 2);
    }
    let t = Instant::now();
    let split = match resplit {
        Some(seed) => recbole::random_split(&data, seed)?,
        None => recbole::load_split(&data, &data.join("split-2026"))?,
    };
    let search = args.iter().position(|a| a == "--search").map(|p| args.remove(p)).is_some();
    let names: Vec<String> =
        if args.is_empty() { Recipe::ALL.iter().map(|r| r.name().to_owned()).collect() } else { args };
    if search {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (best, _) = knowedge_train::search::search(&split, &refs, &cfg, 10, |d, n, t| {
            println!("{d}/{n}\t{}\t{}\t{:.4}", t.recipe, t.patch, t.ndcg)
        })?;
        println!("{}", serde_json::to_string_pretty(&best)?);
        eprintln!("total {:.1}s", t.elapsed().as_secs_f64());
        return Ok(());
    }
    let mut caches = offline::Caches::default();
    let full = split.train_and_valid();
    println!("recipe\tvalid_ndcg\ttrain_only_test_ndcg\ttest_ndcg\ttest_recall\tq1_ndcg\tcoverage\tfit_s\tscore_s");
    for name in &names {
        let r = offline::run_recipe(&split, &full, name.parse()?, &cfg, &mut caches, 10)?;
        println!(
            "{name}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{:.3}\t{:.2}\t{:.2}",
            r.valid.ndcg,
            r.test_train_only.ndcg,
            r.test.ndcg,
            r.test.recall,
            r.test.q1.as_ref().map_or(0.0, |q| q.ndcg),
            r.test.coverage,
            r.fit_s + r.refit_s,
            r.score_s
        );
    }
    eprintln!("total {:.1}s", t.elapsed().as_secs_f64());
    Ok(())
}
