//! `knowedge dev`: the whole platform on one machine, with demo data.
//!
//! Generates the demo data set, serves the ingestion function, sends the
//! events through it over HTTP, trains and publishes a model, starts the
//! wasmtime edge host with the compiled Spin component, and prints the URLs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use knowedge_edge_host::{EdgeHost, HostConfig};
use knowedge_format::store::Channel;
use knowedge_ingest::Ingest;
use knowedge_lake::{Lake, ModelStore};
use knowedge_train::Recipe;
use knowedge_train::pipeline::{self, Options};

use crate::demo::{self, DemoConfig, ReviewTexts};
use crate::keys::Keys;

/// Options of `knowedge dev`.
#[derive(Clone, Debug)]
pub struct DevOptions {
    /// State directory (keys, lake, models, edge state).
    pub dir: PathBuf,
    /// Where the ingestion function listens.
    pub ingest_listen: SocketAddr,
    /// Where the edge host listens.
    pub edge_listen: SocketAddr,
    /// The compiled Spin component.
    pub wasm: PathBuf,
    /// Demo learners.
    pub learners: usize,
    /// Demo seed.
    pub seed: u64,
    /// Folder with real review texts (`pos.txt`, `neg.txt`).
    pub reviews: Option<PathBuf>,
    /// Where the dashboard is served.
    pub report_listen: SocketAddr,
    /// Keep serving until Ctrl-C (otherwise return once everything answered).
    pub wait: bool,
}

/// The A/B experiment `knowedge dev` runs at the edge.
pub const EXPERIMENT: &str = "homepage-demo";

/// Storefront traffic through the edge, so that the experiment has
/// exposures, clicks and purchases: a third of the learners ask for
/// recommendations; some click the first item, and some of those buy it
/// (events posted to the edge, which forwards them with the variant).
/// Returns (answers, clicks, purchases).
async fn storefront(data: &demo::DemoData, keys: &Keys, edge: &str, seed: u64) -> Result<(usize, usize, usize)> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5707_e5f0);
    let prices: std::collections::HashMap<&str, f64> =
        data.catalogue.iter().map(|i| (i.id.as_str(), i.price)).collect();
    let (mut answers, mut clicks, mut purchases) = (0, 0, 0);
    let client = reqwest::Client::new();
    for (n, learner) in data.learners.iter().enumerate().filter(|(n, _)| n % 3 == 0) {
        let token = keys.token(learner, chrono::Duration::minutes(10), None)?;
        let (status, answer) =
            crate::get_json_as(&format!("{edge}/v1/recommend?user={learner}&k=5"), Some(&token)).await?;
        anyhow::ensure!(status == 200, "edge answered {status}: {answer}");
        answers += 1;
        let (Some(item), Some(rec)) = (answer["items"][0]["item"].as_str(), answer["recommendation_id"].as_str())
        else {
            continue;
        };
        let mut events = Vec::new();
        let now = chrono::Utc::now();
        if rng.random_bool(0.3) {
            events.push(
                serde_json::json!({"event_id": format!("00000000-0000-4000-8000-{:012}", 2 * n), "type": "click",
                "item_id": item, "ts": now.to_rfc3339()}),
            );
            clicks += 1;
            if rng.random_bool(0.3) {
                events.push(serde_json::json!({"event_id": format!("00000000-0000-4000-8000-{:012}", 2 * n + 1),
                    "type": "purchase", "item_id": item, "price": prices.get(item).copied().unwrap_or(99.0),
                    "currency": "CNY", "ts": now.to_rfc3339()}));
                purchases += 1;
            }
        }
        if !events.is_empty() {
            let r = client
                .post(format!("{edge}/v1/events?recommendation_id={rec}"))
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(serde_json::json!({"events": events}).to_string())
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "the edge refused storefront events: {}", r.status());
        }
    }
    Ok((answers, clicks, purchases))
}

fn step(n: usize, text: &str) {
    eprintln!("[{n}/8] {text}");
}

/// Runs the main job.
pub async fn run(opts: DevOptions) -> Result<()> {
    let t0 = Instant::now();
    anyhow::ensure!(
        opts.wasm.exists(),
        "the edge component {} is missing; build it with `cargo xtask build` (or run `cargo xtask dev`)",
        opts.wasm.display()
    );
    let keys = Keys::load_or_generate(&opts.dir.join("keys"))?;
    let lake_dir = opts.dir.join("lake");
    let models_dir = opts.dir.join("models");
    for d in [&lake_dir, &models_dir, &opts.dir.join("edge")] {
        if d.exists() {
            std::fs::remove_dir_all(d).with_context(|| format!("clearing {}", d.display()))?;
        }
    }

    step(1, "generating the demo data set");
    let reviews = opts.reviews.as_deref().and_then(ReviewTexts::load).unwrap_or_default();
    let data =
        demo::generate(&DemoConfig { seed: opts.seed, learners: opts.learners, ..DemoConfig::default() }, &reviews);
    eprintln!(
        "      {} items, {} learners, {} events ({} real review texts available)",
        data.catalogue.len(),
        data.learners.len(),
        data.events.len(),
        reviews.positive.len() + reviews.negative.len()
    );
    let lake = Lake::open(&lake_dir.to_string_lossy())?;
    lake.put_catalogue(&data.catalogue).await?;

    step(2, "starting the ingestion function");
    let ingest = Ingest::new(lake.clone(), keys.pseudonymizer()?).with_keys(keys.key_ring()?);
    let listener = tokio::net::TcpListener::bind(opts.ingest_listen)
        .await
        .with_context(|| format!("binding {}", opts.ingest_listen))?;
    let ingest_url = crate::serve::spawn_ingest(listener, ingest)?;
    eprintln!("      {ingest_url}");

    step(3, "sending the events through ingestion");
    let summary = crate::send_events(&ingest_url, &keys.ingest_key, &data.events, 500, |sent, total| {
        if sent == total || sent % 5000 < 500 {
            eprintln!("      {sent}/{total} events");
        }
    })
    .await?;
    eprintln!("      accepted {}, rejected {}, duplicates {}", summary.accepted, summary.rejected, summary.duplicates);

    let models = ModelStore::open(&models_dir.to_string_lossy())?;
    let signing = keys.signing()?;
    // Erasures requested at POST /v1/admin/erasures run in the background.
    let eraser = crate::privacy::eraser(&lake, Some(models.clone()), &keys)?;
    tokio::spawn(crate::serve::run_erasures(eraser, Duration::from_secs(5)));
    if !reviews.positive.is_empty() && !reviews.negative.is_empty() {
        step(4, "training the review sentiment model (CPU)");
        let t = Instant::now();
        let labelled: Vec<knowedge_train::sentiment::Review> = reviews
            .positive
            .iter()
            .map(|t| (t, true))
            .chain(reviews.negative.iter().map(|t| (t, false)))
            .map(|(text, positive)| knowedge_train::sentiment::Review { text: text.clone(), positive })
            .collect();
        let cfg = knowedge_train::sentiment::SentimentConfig::default();
        let trained = knowedge_train::sentiment::train(&labelled, &cfg)?;
        let version = knowedge_train::sentiment::new_version();
        let bytes = knowedge_train::sentiment::export(&trained, &cfg, None, &signing, &version)?;
        models.publish(Channel::Sentiment, &version, bytes).await?;
        eprintln!(
            "      {} reviews, {:.1}s; published {version} (current-sentiment)",
            labelled.len(),
            t.elapsed().as_secs_f32()
        );
    }

    step(5, "training runs: popularity, then matrix factorisation (BPR on candle, CPU), scoring new reviews");
    let pop = pipeline::run(&lake, &models, &signing, &Options { promote: false, ..Options::new(Recipe::Popularity) })
        .await?;
    let t = Instant::now();
    let mf = pipeline::run(&lake, &models, &signing, &Options::new(Recipe::Bpr)).await?;
    eprintln!(
        "      {} events, {} learners, {} items; mf trained in {:.1}s; published {} (current), {}; {} review events scored into the lake",
        mf.events,
        mf.users,
        mf.items,
        t.elapsed().as_secs_f32(),
        mf.version,
        pop.version,
        pop.review_sentiment.as_ref().map_or(0, |r| r.scored) + mf.review_sentiment.as_ref().map_or(0, |r| r.scored)
    );

    step(6, "starting the edge host (wasmtime running the Spin component) with an A/B experiment");
    let experiment = serde_json::json!({"name": EXPERIMENT, "variants": [
        {"name": "control", "weight": 1, "model": "current"},
        {"name": "popularity", "weight": 1, "model": pop.version}]})
    .to_string();
    let host = EdgeHost::start(HostConfig {
        wasm: opts.wasm.clone(),
        models_dir: models_dir.clone(),
        state_dir: opts.dir.join("edge"),
        public_key_hex: keys.public_hex.clone(),
        pseudonym_key_hex: keys.pseudonym_hex.clone(),
        listen: opts.edge_listen,
        poll_interval: Duration::from_millis(500),
        experiment: Some(experiment.clone()),
        ingest: Some(knowedge_edge_host::Forwarding { url: ingest_url.clone(), key: keys.ingest_key.clone() }),
        access: knowedge_edge_host::Access {
            token_keys_hex: Some(keys.token_public_hex.clone()),
            token_audience: None,
            cors_origins: Vec::new(),
            publish_key: None,
        },
    })
    .await?;
    let edge = host.local_addr();

    step(7, "asking the edge for a demo learner's recommendations (control group), then storefront traffic");
    // A learner in the experiment's control group, who gets the trained model.
    let assignment = knowedge_edge::experiment::Experiment::from_json(&experiment)?;
    let pseudonyms = keys.pseudonymizer()?;
    let learner = data
        .learners
        .iter()
        .find(|l| assignment.assign(&pseudonyms.pseudonymize(l)).name == "control")
        .unwrap_or(&data.learners[0]);
    let url = format!("http://{edge}/v1/recommend?user={learner}&k=5");
    let token = keys.token(learner, chrono::Duration::hours(1), None)?;
    let (status, answer) = crate::get_json_as(&url, Some(&token)).await?;
    anyhow::ensure!(status == 200, "edge answered {status}: {answer}");
    let interests = data.interests.get(learner).cloned().unwrap_or_default();
    eprintln!("      {learner} (planted interests: {}) gets:", interests.join(", "));
    for item in answer["items"].as_array().into_iter().flatten() {
        eprintln!("        {} ({:.3})", item["item"].as_str().unwrap_or("?"), item["score"].as_f64().unwrap_or(0.0));
    }
    let sentiment_url = format!("http://{edge}/v1/sentiment");
    let texts = serde_json::json!({"texts": ["这本书写得很好，值得一读", "印刷很差，内容也让人失望"]});
    let sent = reqwest::Client::new()
        .post(&sentiment_url)
        .header("content-type", "application/json")
        .body(texts.to_string())
        .send()
        .await;
    if let Ok(r) = sent
        && r.status().is_success()
        && let Ok(bytes) = r.bytes().await
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
    {
        for (t, res) in
            texts["texts"].as_array().into_iter().flatten().zip(v["results"].as_array().into_iter().flatten())
        {
            eprintln!(
                "      sentiment of {t}: {} ({:.2})",
                res["label"].as_str().unwrap_or("?"),
                res["score"].as_f64().unwrap_or(0.0)
            );
        }
    }
    let (answers, clicks, purchases) = storefront(&data, &keys, &format!("http://{edge}"), opts.seed).await?;
    eprintln!("      storefront traffic through the edge: {answers} answers, {clicks} clicks, {purchases} purchases");
    let until = Instant::now() + Duration::from_secs(5);
    while host.exposures_shipped().0 < answers as u64 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    step(8, "writing the business dashboard from the lake");
    let report_dir = opts.dir.join("report");
    let page = crate::business::write_report(&lake_dir, &report_dir, None).await?;
    let listener = tokio::net::TcpListener::bind(opts.report_listen)
        .await
        .with_context(|| format!("binding {}", opts.report_listen))?;
    let dashboard = crate::serve::spawn_dashboard(listener, report_dir.clone())?;
    eprintln!("      {} ({dashboard})", page.display());

    println!();
    println!("knowedge is up ({:.0}s):", t0.elapsed().as_secs_f32());
    println!("  dashboard  {dashboard}  (also {})", page.display());
    println!(
        "  ingestion  POST {ingest_url}  (Authorization: Bearer $(cat {}))",
        opts.dir.join("keys/ingest.key").display()
    );
    println!(
        "  edge       GET  http://{edge}/v1/recommend?user=<learner>&k=10  (Authorization: Bearer <learner token>)"
    );
    println!("             GET  http://{edge}/v1/similar?item=<item>&k=10");
    println!("             GET  http://{edge}/v1/model");
    println!("             POST http://{edge}/v1/rank, /v1/events, /v1/sentiment");
    println!("  lake       {}", lake_dir.display());
    println!("  models     {}", models_dir.display());
    println!("  token      {token}");
    println!(
        "             (learner {learner}, 1 h; more with `knowedge keys token --keys {} --user <learner>`)",
        opts.dir.join("keys").display()
    );
    println!();
    println!("try:");
    println!("  TOKEN={token}");
    println!("  curl -H \"Authorization: Bearer $TOKEN\" 'http://{edge}/v1/recommend?user={learner}&k=5'");
    println!(
        "  curl -H \"Authorization: Bearer $TOKEN\" 'http://{edge}/v1/recommend?user={learner}&k=5&category={}&max_price=100'",
        interests.first().map(String::as_str).unwrap_or("python")
    );
    println!("  curl 'http://{edge}/v1/recommend?k=5'   (anonymous: no token, no user)");
    if opts.wait {
        println!();
        println!("Ctrl-C stops everything.");
        host.wait().await;
    } else {
        host.shutdown().await;
    }
    Ok(())
}
