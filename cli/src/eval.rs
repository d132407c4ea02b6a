//! `knowedge eval`: every recipe on a data set split, with a progress bar,
//! a table on stdout and the same as JSON.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use knowedge_train::offline::{self, Caches, RecipeResult};
use knowedge_train::recbole::{self, Split};
use knowedge_train::recipes::{Config, Recipe};
use serde_json::{Value, json};

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Data set folder (`<name>.inter`, `<name>.item`).
    pub data: PathBuf,
    /// Split folder (`train.inter`, `valid.inter`, `test.inter`); `None` with `resplit`.
    pub split: Option<PathBuf>,
    /// Make a fresh per-user 80/10/10 split of `<name>.inter` with this seed instead.
    pub resplit: Option<u64>,
    /// Cut-off.
    pub k: usize,
    /// JSON output file.
    pub json: Option<PathBuf>,
    /// Recipes to run (all if empty).
    pub recipes: Vec<String>,
    /// Configuration file (JSON, fields of [`Config`]); defaults otherwise.
    pub config: Option<PathBuf>,
    /// Run the hyper-parameter search on validation instead, writing the best configuration here.
    pub search: Option<PathBuf>,
}

/// A one-line progress bar on stderr.
struct Progress {
    total: usize,
    start: Instant,
}

impl Progress {
    fn show(&self, done: usize, what: &str) {
        let width = 24;
        let filled = done * width / self.total.max(1);
        eprint!(
            "\r\x1b[2K[{}{}] {done}/{} {:>5.1}s {what}",
            "#".repeat(filled),
            "-".repeat(width - filled),
            self.total,
            self.start.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    }
}

/// Loads the split the options name.
pub fn load(opts: &EvalOptions) -> Result<(Split, String)> {
    match (&opts.split, opts.resplit) {
        (Some(dir), None) => Ok((
            recbole::load_split(&opts.data, dir).with_context(|| format!("loading {}", dir.display()))?,
            dir.display().to_string(),
        )),
        (None, Some(seed)) => Ok((recbole::random_split(&opts.data, seed)?, format!("random 80/10/10, seed {seed}"))),
        _ => bail!("give exactly one of --split DIR and --resplit SEED"),
    }
}

/// The configuration: defaults, or a JSON file.
pub fn config(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(p) => Ok(serde_json::from_slice(&std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)?),
        None => Ok(Config::default()),
    }
}

/// Runs the evaluation, prints the table and writes the JSON; returns the results.
pub fn run(opts: &EvalOptions) -> Result<Vec<RecipeResult>> {
    let start = Instant::now();
    let cfg = config(opts.config.as_deref())?;
    let (split, split_name) = load(opts)?;
    let names: Vec<String> = if opts.recipes.is_empty() {
        Recipe::ALL.iter().map(|r| r.name().to_owned()).collect()
    } else {
        opts.recipes.clone()
    };
    if let Some(out) = &opts.search {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let total = knowedge_train::search::budget(&names);
        eprintln!("search on the validation part of {split_name}: {total} fits");
        let progress = Progress { total, start };
        let (best, trials) = knowedge_train::search::search(&split, &names, &cfg, opts.k, |done, _, t| {
            progress.show(done, &format!("{} {}", t.recipe, t.patch));
            eprintln!("  valid NDCG@{} {:.4}", opts.k, t.ndcg);
        })?;
        eprintln!();
        for t in &trials {
            println!("{}\t{}\t{:.4}", t.recipe, t.patch, t.ndcg);
        }
        std::fs::write(out, serde_json::to_vec_pretty(&best)?).with_context(|| format!("writing {}", out.display()))?;
        println!("best configuration written to {} ({:.1}s)", out.display(), start.elapsed().as_secs_f64());
        return Ok(Vec::new());
    }
    let recipes: Vec<Recipe> = names.iter().map(|n| n.parse()).collect::<Result<_, _>>()?;
    let progress = Progress { total: names.len(), start };
    let mut caches = Caches::default();
    let full = split.train_and_valid();
    let mut results = Vec::new();
    for (n, recipe) in recipes.into_iter().enumerate() {
        progress.show(n, recipe.name());
        results.push(offline::run_recipe(&split, &full, recipe, &cfg, &mut caches, opts.k)?);
    }
    progress.show(names.len(), "done");
    eprintln!();
    let total_s = start.elapsed().as_secs_f64();
    let users = split.train.users.len();
    let pairs = split.train.pairs();
    println!(
        "{split_name}: {users} users, {} items, {pairs} training pairs; full ranking, k = {}; {total_s:.1}s",
        split.train.items.len(),
        opts.k
    );
    println!("{}", table(&results, opts.k));
    if let Some(path) = &opts.json {
        let recipes: BTreeMap<String, Value> =
            results.iter().map(|r| (r.name.clone(), serde_json::to_value(r.summary()).unwrap_or_default())).collect();
        let doc = json!({
            "split": split_name,
            "k": opts.k,
            "users": users,
            "items": split.train.items.len(),
            "total_s": total_s,
            "config": cfg,
            "recipes": recipes,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(results)
}

/// The results as a Markdown table.
pub fn table(results: &[RecipeResult], k: usize) -> String {
    let mut s = format!(
        "| recipe | valid NDCG@{k} | train-only NDCG@{k} | NDCG@{k} | Recall@{k} | MRR@{k} | Hit@{k} | Precision@{k} | Coverage@{k} | least active ¼ NDCG@{k} | fit s | score s |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for r in results {
        let t = &r.test;
        s.push_str(&format!(
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.3} | {:.4} | {:.2} | {:.2} |\n",
            r.name,
            r.valid.ndcg,
            r.test_train_only.ndcg,
            t.ndcg,
            t.recall,
            t.mrr,
            t.hit,
            t.precision,
            t.coverage,
            t.q1.as_ref().map_or(0.0, |q| q.ndcg),
            r.fit_s + r.refit_s,
            r.score_s
        ));
    }
    s
}
