//! `knowedge`: the command line of the knowedge platform.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use knowedge::demo::{self, DemoConfig, ReviewTexts};
use knowedge::dev::{self, DevOptions};
use knowedge::keys::Keys;
use knowedge_edge_host::{EdgeHost, HostConfig};
use knowedge_format::store::Channel;
use knowedge_ingest::Ingest;
use knowedge_lake::{CatalogueItem, Lake, ModelStore};
use knowedge_train::pipeline::{self, Options};
use knowedge_train::{BprConfig, Recipe};

const DEFAULT_REVIEWS: &str = "../shared/data/reviews-zh";

/// knowedge: learner events in, recommendations out at the edge.
///
/// Keys come from `--keys DIR` (files signing.key, signing.pub, pseudonym.key)
/// or the environment (KNOWEDGE_SIGNING_KEY, KNOWEDGE_SIGNING_PUBLIC_KEY,
/// KNOWEDGE_PSEUDONYM_KEY), which wins.
#[derive(Parser)]
#[command(name = "knowedge", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring the whole platform up locally with demo data: ingestion, lake, training, edge.
    Dev {
        /// State directory (keys, lake, models); lake and models are recreated.
        #[arg(long, default_value = ".knowedge")]
        dir: PathBuf,
        /// Ingestion listen address.
        #[arg(long, default_value = "127.0.0.1:8081")]
        ingest_listen: SocketAddr,
        /// Edge listen address.
        #[arg(long, default_value = "127.0.0.1:8082")]
        edge_listen: SocketAddr,
        /// Dashboard listen address.
        #[arg(long, default_value = "127.0.0.1:8083")]
        report_listen: SocketAddr,
        /// The compiled Spin component.
        #[arg(long, env = "KNOWEDGE_EDGE_WASM", default_value_os_t = knowedge::built("wasm32-wasip2/edge/knowedge_edge_spin.wasm"))]
        wasm: PathBuf,
        /// Number of demo learners.
        #[arg(long, default_value_t = 600)]
        learners: usize,
        /// Demo data seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Folder with real review texts (pos.txt, neg.txt).
        #[arg(long, default_value = DEFAULT_REVIEWS)]
        reviews: PathBuf,
        /// Return once everything answered instead of serving until Ctrl-C.
        #[arg(long)]
        no_wait: bool,
    },
    /// The ingestion function.
    Ingest {
        #[command(subcommand)]
        command: IngestCommand,
    },
    /// Train a recipe on the lake and publish a signed artifact to the model store.
    Train {
        /// Lake location (directory or s3:// URL).
        #[arg(long)]
        lake: String,
        /// Model store location (directory or s3:// URL).
        #[arg(long)]
        models: String,
        /// Recipe (one of `knowedge_train::Recipe::names()`; `mf` is BPR).
        #[arg(long, default_value = "mf", value_parser = parse_recipe, help = recipe_help())]
        recipe: Recipe,
        /// Key directory.
        #[arg(long, default_value = ".knowedge/keys")]
        keys: PathBuf,
        /// Store the artifact without pointing `current` at it.
        #[arg(long)]
        no_promote: bool,
        /// Embedding dimensions (mf).
        #[arg(long, default_value_t = 32)]
        dims: usize,
        /// Training epochs (mf).
        #[arg(long, default_value_t = 30)]
        epochs: usize,
    },
    /// The edge: the compiled Spin component served by the local wasmtime host.
    Edge {
        #[command(subcommand)]
        command: EdgeCommand,
    },
    /// Lake maintenance.
    Lake {
        #[command(subcommand)]
        command: LakeCommand,
    },
    /// The model store.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// The lake's audit log: verify the hash chain, list the records.
    Audit {
        #[command(subcommand)]
        command: knowedge::audit::AuditCommand,
    },
    /// Key material.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Demo data.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Privacy-law operations: erase a learner (signed receipt), export their data, job status.
    Privacy {
        #[command(subcommand)]
        command: knowedge::privacy::PrivacyCommand,
    },
    /// Review sentiment: train, eval, cv, publish, score the lake, report, bench.
    Sentiment {
        #[command(subcommand)]
        command: knowedge::sentiment::SentimentCommand,
    },
    /// Evaluate every recipe offline on a data set split (full ranking) and print a table.
    Eval {
        /// Data set folder in RecBole atomic format (`<name>.inter`, `<name>.item`).
        #[arg(long, default_value = "../shared/data/ml-100k")]
        data: PathBuf,
        /// Split folder with train.inter, valid.inter and test.inter.
        #[arg(long, conflicts_with = "resplit")]
        split: Option<PathBuf>,
        /// Instead of --split: a fresh seeded per-user 80/10/10 split of `<name>.inter`.
        #[arg(long)]
        resplit: Option<u64>,
        /// Cut-off of the metrics.
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// Also write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Comma-separated recipes (default: all).
        #[arg(long, value_delimiter = ',')]
        recipes: Vec<String>,
        /// Recipe configuration (JSON); the built-in defaults otherwise.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Search hyper-parameters on validation (never test) and write the best configuration here.
        #[arg(long)]
        search: Option<PathBuf>,
    },
    /// SQL on the lake: its tables (events, review_sentiment, dead_letter, audit, catalogue) and
    /// views (events_unique, purchases_cny), read in place with DataFusion.
    Sql(knowedge::sql::SqlArgs),
    /// A/B experiments read from the lake.
    Experiment {
        #[command(subcommand)]
        command: knowedge::business::ExperimentCommand,
    },
    /// The business dashboard: a self-contained HTML page (ECharts inlined) and its data as JSON.
    Report(knowedge::business::ReportArgs),
    /// Marketing audiences: RFM segments, lifetime value (BG/NBD, Gamma-Gamma) and item affinity.
    Segments(knowedge::business::SegmentArgs),
    /// Customer lifetime value on CDNOW: BG/NBD and Gamma-Gamma fitted on a calibration period
    /// (purchases on one day count once, time in weeks), predictions held against the holdout period.
    Clv {
        /// The CDNOW transactions (`CDNOW_master.txt`, or the sample's layout).
        #[arg(long, default_value = "../shared/data/cdnow/CDNOW_master.txt")]
        cdnow: PathBuf,
        /// Last day of the calibration period (YYYY-MM-DD).
        #[arg(long, default_value = "1997-09-30")]
        calibration_end: chrono::NaiveDate,
        /// Last day of the holdout period (YYYY-MM-DD).
        #[arg(long, default_value = "1998-06-30")]
        holdout_end: chrono::NaiveDate,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write each customer's summary (x, recency, T, mean spend, holdout purchases) as CSV here.
        #[arg(long)]
        summary: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum IngestCommand {
    /// Serve POST /v1/events on a local address with the Lambda function's handler.
    Serve {
        /// Lake location (directory or s3:// URL).
        #[arg(long)]
        lake: String,
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// Key directory (the pseudonym key; the signing key runs requested erasures in the background).
        #[arg(long, default_value = ".knowedge/keys")]
        keys: PathBuf,
        /// Model store that requested erasures also take the learner out of.
        #[arg(long)]
        models: Option<String>,
    },
}

#[derive(Subcommand)]
enum EdgeCommand {
    /// Serve the edge API; follows the model store's `current` pointer and swaps models without restart.
    /// With `KNOWEDGE_PUBLISH_KEY` set, models can also be published to it (`PUT /v1/admin/models/<key>`).
    Serve {
        /// Model store directory.
        #[arg(long)]
        models: PathBuf,
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8082")]
        listen: SocketAddr,
        /// The compiled Spin component.
        #[arg(long, env = "KNOWEDGE_EDGE_WASM", default_value_os_t = knowedge::built("wasm32-wasip2/edge/knowedge_edge_spin.wasm"))]
        wasm: PathBuf,
        /// Host state directory (the live model).
        #[arg(long, default_value = ".knowedge/edge")]
        state: PathBuf,
        /// Key directory.
        #[arg(long, default_value = ".knowedge/keys")]
        keys: PathBuf,
        /// A/B experiment to run: a JSON file (`{"name", "variants": [{"name", "weight", "model"}]}`).
        #[arg(long, env = "KNOWEDGE_EXPERIMENT_FILE")]
        experiment: Option<PathBuf>,
        /// Ingestion endpoint that `POST /v1/events` forwards to (with the ingest key of --keys or
        /// `KNOWEDGE_INGEST_KEY`), e.g. http://127.0.0.1:8081/v1/events.
        #[arg(long, env = "KNOWEDGE_EDGE_INGEST_URL")]
        ingest_url: Option<String>,
        /// Origins browsers may call the edge from, comma separated (`*` for any).
        #[arg(long, env = "KNOWEDGE_CORS_ORIGINS", value_delimiter = ',')]
        cors_origins: Vec<String>,
        /// The audience learner tokens must name.
        #[arg(long, env = "KNOWEDGE_TOKEN_AUDIENCE")]
        token_audience: Option<String>,
    },
    /// Measure the edge: top-10 natively and in wasmtime, model load, instantiation, sizes, HTTP load.
    /// `cargo xtask edge-bench` builds what it needs and runs it.
    Bench {
        /// The `edge_bench` program built for this machine.
        #[arg(long, default_value_os_t = knowedge::built("release/examples/edge_bench"))]
        native: PathBuf,
        /// The `edge_bench` program built for wasm32-wasip2 (simd128).
        #[arg(long, default_value_os_t = knowedge::built("wasm32-wasip2/release/examples/edge_bench.wasm"))]
        wasm_bench: PathBuf,
        /// The compiled Spin component.
        #[arg(long, env = "KNOWEDGE_EDGE_WASM", default_value_os_t = knowedge::built("wasm32-wasip2/edge/knowedge_edge_spin.wasm"))]
        wasm: PathBuf,
        /// The Worker's module.
        #[arg(long, default_value = "edge/worker/build/index_bg.wasm")]
        worker: PathBuf,
        /// Seconds of top-10 requests per model and runtime.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Seconds of HTTP load with wrk against the local host (0 = skip).
        #[arg(long, default_value_t = 0)]
        wrk: u64,
        /// Items of the model served under wrk load (× 64 dimensions).
        #[arg(long, default_value_t = 10_000)]
        wrk_items: usize,
        /// Open connections of the wrk load.
        #[arg(long, default_value_t = 32)]
        wrk_connections: u32,
        /// Threads of the wrk load.
        #[arg(long, default_value_t = 2)]
        wrk_threads: u32,
        /// Also write the figures as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LakeCommand {
    /// Run requested erasures, then merge each partition's files into one, drop re-sent
    /// duplicates and apply the retention periods.
    Compact {
        /// Lake location (directory or s3:// URL).
        #[arg(long)]
        lake: String,
        /// Drop events older than this many days (default: keep forever).
        #[arg(long, env = "KNOWEDGE_RETENTION_DAYS")]
        retention_days: Option<u32>,
        /// Drop dead letters received more than this many days ago (default: keep forever).
        #[arg(long, env = "KNOWEDGE_DEAD_LETTER_RETENTION_DAYS")]
        dead_letter_retention_days: Option<u32>,
        /// Model store that pending erasures also take the learner out of.
        #[arg(long)]
        models: Option<String>,
        /// Key directory, read only when erasures are pending (they sign receipts).
        #[arg(long, default_value = ".knowedge/keys")]
        keys: PathBuf,
    },
    /// Count the lake's rows: as stored, and as readers count them (each event once).
    Stats {
        /// Lake location (directory or s3:// URL).
        #[arg(long)]
        lake: String,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Serve an older version again: re-signs it as a new version (a new id and time) and points
    /// `current` at it. The edge refuses to go back to an older version any other way.
    Rollback {
        /// Model store location (directory or s3:// URL).
        #[arg(long)]
        models: String,
        /// Key directory (the signing key).
        #[arg(long, default_value = ".knowedge/keys")]
        keys: PathBuf,
        /// The version to serve again.
        #[arg(long)]
        to: String,
        /// Roll back the sentiment model instead of the recommender.
        #[arg(long)]
        sentiment: bool,
        /// Lake whose audit log records the promotion (directory or s3:// URL).
        #[arg(long)]
        lake: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate fresh keys into a directory.
    Generate {
        /// Target directory.
        #[arg(long, default_value = ".knowedge/keys")]
        dir: PathBuf,
        /// Replace existing keys.
        #[arg(long)]
        force: bool,
    },
    /// Print a learner token (JWT, EdDSA) for tests and demos; in production the platform's
    /// backend issues them with the token key.
    Token {
        /// Key directory (the token key).
        #[arg(long, default_value = ".knowedge/keys")]
        keys: PathBuf,
        /// The learner (the raw id the frontends send as `user`).
        #[arg(long)]
        user: String,
        /// Lifetime, e.g. 15m, 1h, 90s (at most 24h).
        #[arg(long, default_value = "15m", value_parser = parse_ttl)]
        ttl: chrono::Duration,
        /// The audience the edge expects (`KNOWEDGE_TOKEN_AUDIENCE`).
        #[arg(long, env = "KNOWEDGE_TOKEN_AUDIENCE")]
        audience: Option<String>,
    },
}

/// A lifetime such as `15m`, `1h`, `90s`.
fn parse_ttl(s: &str) -> Result<chrono::Duration, String> {
    let (number, unit) = s.trim().split_at(s.trim().find(|c: char| !c.is_ascii_digit()).unwrap_or(s.trim().len()));
    let n: i64 = number.parse().map_err(|_| format!("`{s}` is not a lifetime such as 15m, 1h or 90s"))?;
    let seconds = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{s}`: the unit must be s, m or h")),
    };
    if !(1..=knowedge_edge::token::MAX_LIFETIME_SECONDS).contains(&seconds) {
        return Err(format!("`{s}`: a token lives from 1 s to 24 h"));
    }
    Ok(chrono::Duration::seconds(seconds))
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Write a demo data set: events.ndjson (raw client events) and catalogue.json.
    Generate {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Number of learners.
        #[arg(long, default_value_t = 600)]
        learners: usize,
        /// Seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Folder with real review texts.
        #[arg(long, default_value = DEFAULT_REVIEWS)]
        reviews: PathBuf,
    },
    /// Write a demo lake of any size through the ingestion service (validation,
    /// pseudonymisation, per-batch files, dead letters), with the storefront
    /// experiment's exposures, then compact it; memory holds one batch.
    Lake {
        /// Lake directory; it must not exist yet or be empty.
        #[arg(long)]
        lake: PathBuf,
        /// Valid events to store (about one in 2000 more is sent broken).
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        /// Seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Days of history, ending ten minutes ago.
        #[arg(long, default_value_t = 28)]
        days: i64,
        /// Events per ingestion batch.
        #[arg(long, default_value_t = 50_000)]
        batch: usize,
        /// Key directory (the pseudonym key); made when missing.
        #[arg(long, default_value = ".knowedge/keys")]
        keys: PathBuf,
        /// Folder with real review texts.
        #[arg(long, default_value = DEFAULT_REVIEWS)]
        reviews: PathBuf,
        /// Leave the per-batch files as ingestion wrote them.
        #[arg(long)]
        no_compact: bool,
    },
    /// Send events.ndjson to an ingestion endpoint in batches of 500.
    Send {
        /// The NDJSON file.
        #[arg(long)]
        events: PathBuf,
        /// Ingestion URL, e.g. http://127.0.0.1:8081/v1/events.
        #[arg(long)]
        to: String,
        /// Ingest API key.
        #[arg(long, env = "KNOWEDGE_INGEST_KEY")]
        key: String,
    },
    /// Store a catalogue.json in the lake.
    Catalogue {
        /// The catalogue file.
        #[arg(long)]
        file: PathBuf,
        /// Lake location.
        #[arg(long)]
        lake: String,
    },
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,knowedge=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Dev { dir, ingest_listen, edge_listen, report_listen, wasm, learners, seed, reviews, no_wait } => {
            dev::run(DevOptions {
                dir,
                ingest_listen,
                edge_listen,
                report_listen,
                wasm,
                learners,
                seed,
                reviews: Some(reviews),
                wait: !no_wait,
            })
            .await
        }
        Command::Ingest { command: IngestCommand::Serve { lake, listen, keys, models } } => {
            let keys = Keys::load(&keys)?;
            let lake_handle = Lake::open(&lake)?;
            let mut ingest = Ingest::new(lake_handle.clone(), keys.pseudonymizer()?).with_keys(keys.key_ring()?);
            if !keys.signing_hex.is_empty() {
                let models = models.as_deref().map(ModelStore::open).transpose()?;
                let eraser = knowedge::privacy::eraser(&lake_handle, models, &keys)?;
                tokio::spawn(knowedge::serve::run_erasures(eraser, Duration::from_secs(5)));
            }
            if let Ok(origins) = std::env::var("KNOWEDGE_CORS_ORIGINS") {
                ingest = ingest.with_cors_origins(origins.split(',').map(|o| o.trim().to_owned()).collect());
            }
            let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
            eprintln!("ingestion: POST http://{}/v1/events -> lake {lake}", listener.local_addr()?);
            tokio::select! {
                _ = knowedge::serve::serve_lambda(listener, move |req| {
                    let ingest = ingest.clone();
                    async move { ingest.handle(req).await }
                }) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            Ok(())
        }
        Command::Train { lake, models, recipe, keys, no_promote, dims, epochs } => {
            let keys = Keys::load(&keys)?;
            let bpr = BprConfig { dims, epochs, ..BprConfig::default() };
            let opts = Options { recipe, bpr, promote: !no_promote, score_reviews: true };
            let report =
                pipeline::run(&Lake::open(&lake)?, &ModelStore::open(&models)?, &keys.signing()?, &opts).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Edge {
            command:
                EdgeCommand::Serve {
                    models,
                    listen,
                    wasm,
                    state,
                    keys,
                    experiment,
                    ingest_url,
                    cors_origins,
                    token_audience,
                },
        } => {
            let keys = Keys::load(&keys)?;
            let experiment = match experiment {
                Some(p) => Some(std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?),
                None => None,
            };
            anyhow::ensure!(wasm.exists(), "{} is missing; build it with `cargo xtask build`", wasm.display());
            let host = EdgeHost::start(HostConfig {
                wasm,
                models_dir: models,
                state_dir: state,
                public_key_hex: keys.public_hex.clone(),
                pseudonym_key_hex: keys.pseudonym_hex.clone(),
                listen,
                poll_interval: Duration::from_secs(1),
                experiment,
                ingest: match ingest_url {
                    Some(url) => {
                        anyhow::ensure!(
                            !keys.ingest_key.is_empty(),
                            "--ingest-url needs an ingest key (ingest.key or KNOWEDGE_INGEST_KEY)"
                        );
                        Some(knowedge_edge_host::Forwarding { url, key: keys.ingest_key.clone() })
                    }
                    None => None,
                },
                access: knowedge_edge_host::Access {
                    token_keys_hex: (!keys.token_public_hex.is_empty()).then(|| keys.token_public_hex.clone()),
                    token_audience,
                    cors_origins,
                    publish_key: std::env::var(knowedge_edge::settings::PUBLISH_KEY_VAR)
                        .ok()
                        .filter(|k| !k.trim().is_empty()),
                },
            })
            .await?;
            eprintln!(
                "edge: http://{}/v1/recommend?user=<learner>&k=10 (with `Authorization: Bearer $(knowedge keys token --user <learner>)`)",
                host.local_addr()
            );
            host.wait().await;
            Ok(())
        }
        Command::Edge {
            command:
                EdgeCommand::Bench {
                    native,
                    wasm_bench,
                    wasm,
                    worker,
                    seconds,
                    wrk,
                    wrk_items,
                    wrk_connections,
                    wrk_threads,
                    json,
                },
        } => {
            let opts = knowedge::edgebench::BenchOptions {
                native,
                wasm: wasm_bench,
                spin: wasm,
                worker,
                seconds,
                wrk_seconds: wrk,
                wrk_items,
                wrk_connections,
                wrk_threads,
                json,
            };
            knowedge::edgebench::run(&opts).await?;
            Ok(())
        }
        Command::Keys { command: KeysCommand::Generate { dir, force } } => {
            anyhow::ensure!(
                force || !dir.join("signing.pub").exists(),
                "{} already holds keys (use --force to replace them)",
                dir.display()
            );
            let keys = Keys::generate()?;
            keys.save(&dir)?;
            println!("keys written to {}; public key {}", dir.display(), keys.public_hex);
            Ok(())
        }
        Command::Keys { command: KeysCommand::Token { keys, user, ttl, audience } } => {
            println!("{}", Keys::load(&keys)?.token(&user, ttl, audience.as_deref())?);
            Ok(())
        }
        Command::Models { command: ModelsCommand::Rollback { models, keys, to, sentiment, lake } } => {
            let mut store = ModelStore::open(&models)?;
            if let Some(lake) = lake {
                store = store.with_audit(Lake::open(&lake)?, "knowedge-cli");
            }
            let channel = if sentiment { Channel::Sentiment } else { Channel::Recommender };
            let keys = Keys::load(&keys)?;
            let old = store.get(&to).await.with_context(|| format!("reading version {to}"))?;
            let now = chrono::Utc::now();
            let version = format!("{to}-rollback-{}", now.format("%Y%m%dT%H%M%SZ"));
            let bytes = knowedge_format::artifact::reissue(&old, &keys.public()?, &keys.signing()?, &version, now)
                .with_context(|| format!("version {to} does not verify with this signing key"))?;
            store.publish(channel, &version, bytes).await?;
            println!("{}", serde_json::json!({"channel": channel.name(), "serving": version, "reissued_from": to}));
            Ok(())
        }
        Command::Demo { command } => demo_command(command).await,
        Command::Sentiment { command } => knowedge::sentiment::run(command).await,
        Command::Audit { command } => knowedge::audit::run(command).await,
        Command::Privacy { command } => knowedge::privacy::run(command).await,
        Command::Eval { data, split, resplit, k, json, recipes, config, search } => {
            let opts = knowedge::eval::EvalOptions { data, split, resplit, k, json, recipes, config, search };
            tokio::task::spawn_blocking(move || knowedge::eval::run(&opts).map(|_| ())).await?
        }
        Command::Sql(args) => knowedge::sql::run(args).await,
        Command::Experiment { command } => knowedge::business::experiment(command).await,
        Command::Segments(args) => knowedge::business::segments(args).await,
        Command::Report(args) => knowedge::business::report(args).await,
        Command::Clv { cdnow, calibration_end, holdout_end, json, summary } => {
            let opts = knowedge::clv::ClvOptions { cdnow, calibration_end, holdout_end, json, summary };
            let report = tokio::task::spawn_blocking(move || knowedge::clv::run(&opts)).await??;
            print!("{}", knowedge::clv::human(&report));
            Ok(())
        }
        Command::Lake {
            command: LakeCommand::Compact { lake, retention_days, dead_letter_retention_days, models, keys },
        } => {
            let lake = Lake::open(&lake)?;
            let eraser = if lake.erasure_jobs().await?.is_empty() {
                None
            } else {
                let keys = Keys::load(&keys).context("erasures are pending and need the keys (--keys)")?;
                let models = models.as_deref().map(ModelStore::open).transpose()?;
                Some(knowedge::privacy::eraser(&lake, models, &keys)?)
            };
            let options = knowedge_lake::CompactOptions { retention_days, dead_letter_retention_days, now: None };
            let report = lake.maintain(eraser.as_ref(), &options).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Lake { command: LakeCommand::Stats { lake } } => {
            let lake = Lake::open(&lake)?;
            let rows = lake.scan_events().await?.len();
            // Objects skipped (logged): by the event scan and the dead-letter read.
            let skipped_events = lake.skipped_objects();
            let events = lake.read_events().await?.len();
            let before = lake.skipped_objects();
            let dead = lake.read_dead_letters().await?.len();
            let skipped = skipped_events + lake.skipped_objects() - before;
            println!(
                "{}",
                serde_json::json!({"rows": rows, "events": events, "dead_letters": dead, "skipped_objects": skipped})
            );
            Ok(())
        }
    }
}

async fn demo_command(command: DemoCommand) -> Result<()> {
    match command {
        DemoCommand::Generate { out, learners, seed, reviews } => {
            let texts = ReviewTexts::load(&reviews).unwrap_or_default();
            let data = demo::generate(&DemoConfig { seed, learners, ..DemoConfig::default() }, &texts);
            std::fs::create_dir_all(&out)?;
            let mut nd = String::new();
            for e in &data.events {
                nd.push_str(&serde_json::to_string(e)?);
                nd.push('\n');
            }
            write(&out.join("events.ndjson"), nd.as_bytes())?;
            write(&out.join("catalogue.json"), &serde_json::to_vec_pretty(&data.catalogue)?)?;
            println!("{} events, {} items written to {}", data.events.len(), data.catalogue.len(), out.display());
            Ok(())
        }
        DemoCommand::Lake { lake, events, seed, days, batch, keys, reviews, no_compact } => {
            let empty = match std::fs::read_dir(&lake) {
                Ok(mut entries) => entries.next().is_none(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                Err(e) => return Err(e).with_context(|| format!("reading {}", lake.display())),
            };
            anyhow::ensure!(empty, "{} is not empty: a demo lake is written into a new directory", lake.display());
            std::fs::create_dir_all(&lake).with_context(|| format!("creating {}", lake.display()))?;
            let pseudonymizer = Keys::load_or_generate(&keys)?.pseudonymizer()?;
            let texts = ReviewTexts::load(&reviews).unwrap_or_default();
            let defaults = knowedge::demolake::LakeOptions::default();
            let options =
                knowedge::demolake::LakeOptions { events, seed, batch, days, compact: !no_compact, ..defaults };
            let started = std::time::Instant::now();
            let handle = Lake::open(&lake.to_string_lossy())?;
            let summary = knowedge::demolake::write(&handle, &pseudonymizer, &texts, &options, |n, total| {
                eprintln!("{n}/{total} events ({:.0} s)", started.elapsed().as_secs_f64());
            })
            .await?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
        DemoCommand::Send { events, to, key } => {
            let text = std::fs::read_to_string(&events).with_context(|| format!("reading {}", events.display()))?;
            let values = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("line {}", i + 1)))
                .collect::<Result<Vec<_>>>()?;
            let s = knowedge::send_events(&to, &key, &values, 500, |sent, total| eprint!("\r{sent}/{total}")).await?;
            eprintln!();
            println!("accepted {}, rejected {}, duplicates {}", s.accepted, s.rejected, s.duplicates);
            Ok(())
        }
        DemoCommand::Catalogue { file, lake } => {
            let items: Vec<CatalogueItem> =
                serde_json::from_slice(&std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?)
                    .context("catalogue is not a JSON list of items")?;
            Lake::open(&lake)?.put_catalogue(&items).await?;
            println!("{} items stored", items.len());
            Ok(())
        }
    }
}

/// Parses a recipe name on the command line.
fn parse_recipe(s: &str) -> Result<Recipe, String> {
    s.parse().map_err(|e: knowedge_train::Error| e.to_string())
}

/// The help text of `--recipe`, from the registry.
fn recipe_help() -> String {
    format!("Recipe: {}", Recipe::names())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
