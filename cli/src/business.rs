//! `knowedge experiment report` and `knowedge segments`: the business
//! reports that read the lake through SQL (`knowedge-report`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use knowedge_analytics::experiment::Plan;
use knowedge_format::store::Channel;
use knowedge_lake::ModelStore;
use knowedge_report::experiment::{ExperimentConfig, ExperimentOptions};
use knowedge_report::segments::{Learner, ValueOptions};
use knowedge_report::{SqlLake, output};
use knowedge_scoring::model::Model;
use serde_json::json;

use crate::keys::Keys;

/// `knowedge experiment …`.
#[derive(Subcommand, Debug)]
pub enum ExperimentCommand {
    /// Per variant: learners, exposures, CTR, conversion, revenue per learner; lifts with 95 %
    /// intervals and p-values against the control; the sample-ratio check; the planned sample size.
    Report(ExperimentArgs),
}

/// Arguments of `knowedge experiment report`.
#[derive(Args, Debug)]
pub struct ExperimentArgs {
    /// The lake directory.
    #[arg(long, default_value = ".knowedge/lake")]
    pub lake: PathBuf,
    /// The experiment's name.
    #[arg(long)]
    pub experiment: String,
    /// The experiment as the edge runs it (JSON with the variants' weights); without it equal
    /// weights are assumed.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The control variant (default: the configuration's first, else `control`).
    #[arg(long)]
    pub control: Option<String>,
    /// The control's expected conversion rate, for the planned sample size.
    #[arg(long, default_value_t = 0.05)]
    pub baseline: f64,
    /// The smallest relative lift of conversion worth detecting (0.1 = +10 %).
    #[arg(long, default_value_t = 0.1)]
    pub minimum_lift: f64,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs `knowedge experiment …`.
pub async fn experiment(command: ExperimentCommand) -> Result<()> {
    let ExperimentCommand::Report(args) = command;
    let config = match &args.config {
        Some(p) => Some(ExperimentConfig::from_json(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?),
        None => None,
    };
    let lake = SqlLake::open(&args.lake).await?;
    warn_skipped(&lake);
    let options = ExperimentOptions {
        name: args.experiment.clone(),
        config,
        control: args.control.clone(),
        plan: Plan::new(args.baseline, args.minimum_lift),
    };
    let report = knowedge_report::experiment::report(&lake, &options).await?;
    print!("{}", knowedge_report::experiment::human(&report));
    if let Some(path) = &args.json {
        write(path, &serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}

/// Arguments of `knowedge segments`.
#[derive(Args, Debug)]
pub struct SegmentArgs {
    /// The lake directory.
    #[arg(long, default_value = ".knowedge/lake")]
    pub lake: PathBuf,
    /// Where the audiences and the summary go.
    #[arg(long)]
    pub out: PathBuf,
    /// Model store whose current recommender makes the item-affinity audiences (directory);
    /// without it there are none.
    #[arg(long)]
    pub models: Option<String>,
    /// Key directory (the public key that verifies the model).
    #[arg(long, default_value = ".knowedge/keys")]
    pub keys: PathBuf,
    /// Items to build affinity audiences for (default: the three with the most GMV).
    #[arg(long, value_delimiter = ',')]
    pub affinity: Vec<String>,
    /// Learners in each affinity audience.
    #[arg(long, default_value_t = 100)]
    pub affinity_size: usize,
    /// Weeks ahead for expected purchases and lifetime value.
    #[arg(long, default_value_t = 52)]
    pub horizon_weeks: u32,
    /// Discount rate per month of the lifetime value.
    #[arg(long, default_value_t = 0.01)]
    pub monthly_discount: f64,
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn warn_skipped(lake: &SqlLake) {
    for s in lake.skipped() {
        eprintln!("skipped {} ({}): {}", s.file, s.table, s.reason);
    }
}

/// Writes `learners` as `<stem>.csv` and `<stem>.parquet`.
fn audience(dir: &Path, stem: &str, learners: &[&Learner]) -> Result<()> {
    let batch = knowedge_report::segments::learners_batch(learners)?;
    let schema = batch.schema();
    write(&dir.join(format!("{stem}.csv")), &output::csv(&schema, std::slice::from_ref(&batch))?)?;
    write(&dir.join(format!("{stem}.parquet")), &output::parquet(&schema, std::slice::from_ref(&batch))?)?;
    Ok(())
}

/// Runs `knowedge segments`.
pub async fn segments(args: SegmentArgs) -> Result<()> {
    let lake = SqlLake::open(&args.lake).await?;
    warn_skipped(&lake);
    let options = ValueOptions { horizon_weeks: args.horizon_weeks, monthly_discount: args.monthly_discount };
    let s = knowedge_report::segments::segments(&lake, &options).await?;
    let all: Vec<&Learner> = s.learners.iter().collect();
    audience(&args.out, "learners", &all)?;
    let audiences = args.out.join("audiences");
    for name in knowedge_report::segments::SEGMENTS {
        let members: Vec<&Learner> = s.learners.iter().filter(|l| l.segment == name).collect();
        audience(&audiences, name, &members)?;
    }
    let mut affinity = BTreeMap::new();
    if let Some(models) = &args.models {
        affinity = affinity_audiences(&lake, models, &args, &audiences).await?;
    }
    let summary = json!({
        "as_of": s.as_of,
        "paying_learners": s.learners.len(),
        "sizes": s.sizes,
        "models": s.models,
        "clv_quantiles": s.clv_quantiles,
        "affinity": affinity,
        "notes": s.notes,
        "skipped": lake.skipped(),
    });
    write(&args.out.join("summary.json"), &serde_json::to_vec_pretty(&summary)?)?;
    println!("{} paying learners as of {}", s.learners.len(), s.as_of.as_deref().unwrap_or("-"));
    for (name, n) in &s.sizes {
        println!("  {name:<16} {n}");
    }
    if let Some(m) = &s.models {
        let b = m.bgnbd.model;
        let g = m.gamma_gamma.model;
        println!(
            "BG/NBD r {:.4} alpha {:.4} a {:.4} b {:.4}; Gamma-Gamma p {:.4} q {:.4} v {:.4}",
            b.r, b.alpha, b.a, b.b, g.p, g.q, g.v
        );
    }
    for (item, n) in &affinity {
        println!("  affinity {item}: {n} learners");
    }
    for n in &s.notes {
        println!("note: {n}");
    }
    println!("audiences written to {}", audiences.display());
    Ok(())
}

/// For each item, the learners (who do not own it) the current model ranks
/// it highest for; writes `affinity-<item>.csv|parquet` (user_id, position).
async fn affinity_audiences(
    lake: &SqlLake,
    models: &str,
    args: &SegmentArgs,
    dir: &Path,
) -> Result<BTreeMap<String, usize>> {
    let store = ModelStore::open(models)?;
    let Some(version) = store.current(Channel::Recommender).await? else {
        bail!("the model store {models} has no current recommender");
    };
    let bytes = store.get(&version).await?;
    let model = Model::from_artifact(&bytes, &Keys::load_public(&args.keys)?)
        .with_context(|| format!("model {version} is not a valid recommender artifact"))?;
    let items: Vec<String> = if args.affinity.is_empty() {
        let top = lake.query("SELECT item_id FROM purchases_cny WHERE item_id IS NOT NULL GROUP BY item_id ORDER BY SUM(price) DESC, item_id LIMIT 3").await?;
        output::json_rows(&top.batches)?.iter().filter_map(|r| r["item_id"].as_str().map(str::to_owned)).collect()
    } else {
        args.affinity.clone()
    };
    let learners = lake.query("SELECT DISTINCT user_id FROM events_unique ORDER BY user_id").await?;
    let learners: Vec<String> =
        output::json_rows(&learners.batches)?.iter().filter_map(|r| r["user_id"].as_str().map(str::to_owned)).collect();
    let catalogue: Vec<String> = model.items().iter().map(str::to_owned).collect();
    let mut sizes = BTreeMap::new();
    for item in items {
        if !catalogue.contains(&item) {
            eprintln!("affinity: the model does not know item {item}; skipped");
            continue;
        }
        let mut ranked: Vec<(usize, String)> = Vec::new();
        for user in &learners {
            if model.owned(user).contains(&item.as_str()) {
                continue;
            }
            let order = model.rank(Some(user), &[], &catalogue);
            if let Some(pos) = order.items.iter().position(|s| s.item == item) {
                ranked.push((pos + 1, user.clone()));
            }
        }
        ranked.sort();
        ranked.truncate(args.affinity_size);
        let safe: String =
            item.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        let batch = knowedge_report::segments::affinity_batch(&ranked)?;
        let schema = batch.schema();
        write(&dir.join(format!("affinity-{safe}.csv")), &output::csv(&schema, std::slice::from_ref(&batch))?)?;
        write(&dir.join(format!("affinity-{safe}.parquet")), &output::parquet(&schema, std::slice::from_ref(&batch))?)?;
        sizes.insert(item, ranked.len());
    }
    Ok(sizes)
}

/// Arguments of `knowedge report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The lake directory.
    #[arg(long, default_value = ".knowedge/lake")]
    pub lake: PathBuf,
    /// Where `index.html` (the dashboard, self-contained) and `data.json` go.
    #[arg(long, default_value = ".knowedge/report")]
    pub out: PathBuf,
    /// Apache ECharts (`echarts.min.js`) to inline into the page; by default the copy `npm ci`
    /// puts in functions/report/dashboard/node_modules.
    #[arg(long, env = "KNOWEDGE_ECHARTS")]
    pub echarts: Option<PathBuf>,
}

/// Writes the dashboard of the lake at `lake` into `out`; returns the page's path.
pub async fn write_report(lake: &Path, out: &Path, echarts: Option<&Path>) -> Result<PathBuf> {
    let default = knowedge_report::dashboard::default_echarts();
    let echarts_path = echarts.unwrap_or(&default);
    let echarts = std::fs::read_to_string(echarts_path).with_context(|| {
        format!(
            "reading Apache ECharts at {} (run `npm ci` in functions/report/dashboard, or pass --echarts)",
            echarts_path.display()
        )
    })?;
    let sql = SqlLake::open(lake).await?;
    warn_skipped(&sql);
    let data = knowedge_report::dashboard::data(&sql, chrono::Utc::now()).await?;
    for p in data["problems"].as_array().into_iter().flatten() {
        eprintln!("panel not built: {}", p.as_str().unwrap_or_default());
    }
    write(&out.join("data.json"), &serde_json::to_vec_pretty(&data)?)?;
    let page = out.join("index.html");
    write(&page, knowedge_report::dashboard::page(&data, &echarts).as_bytes())?;
    Ok(page)
}

/// Runs `knowedge report`.
pub async fn report(args: ReportArgs) -> Result<()> {
    let page = write_report(&args.lake, &args.out, args.echarts.as_deref()).await?;
    println!("dashboard: {}", page.display());
    Ok(())
}
