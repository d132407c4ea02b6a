//! The training run: one function from the lake to a served model.
//!
//! [`run`] reads the lake's events and catalogue, fits the recipe, gates it
//! against the current model on the latest validation window, exports and
//! signs the artifact, publishes it, promotes it if it won, and scores the
//! review events the current sentiment model has not scored yet. The Lambda
//! function (`knowedge-train`), `knowedge train` and `knowedge dev` all call
//! it, so a run behaves the same wherever it is started.

use std::collections::BTreeMap;

use knowedge_format::artifact::SigningKey;
use knowedge_format::store::Channel;
use knowedge_lake::{Lake, ModelStore};
use serde::Serialize;

use crate::reviews::{self, ScoreReport};
use crate::{BprConfig, Dataset, Error, Recipe, Result, eval, lake_config, new_version, offline, schedule};

/// Who the audit log says promoted a model the pipeline trained.
pub const AUDIT_KEY_NAME: &str = "knowedge-train";

/// What a run does.
#[derive(Clone, Debug)]
pub struct Options {
    /// The recipe to train.
    pub recipe: Recipe,
    /// BPR's settings (the other recipes use their defaults).
    pub bpr: BprConfig,
    /// Whether a winning model becomes `current`.
    pub promote: bool,
    /// Whether new review events are scored with the current sentiment model afterwards.
    pub score_reviews: bool,
}

impl Options {
    /// A scheduled run of `recipe`: default settings, promotion and review scoring on.
    pub fn new(recipe: Recipe) -> Self {
        Self { recipe, bpr: BprConfig::default(), promote: true, score_reviews: true }
    }
}

/// What a training run did.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The version published.
    pub version: String,
    /// Recipe trained.
    pub recipe: Recipe,
    /// Events read.
    pub events: usize,
    /// Learners in the model.
    pub users: usize,
    /// Items in the model.
    pub items: usize,
    /// Artifact size in bytes.
    pub artifact_bytes: usize,
    /// Whether `current` now points at it.
    pub promoted: bool,
    /// The new model's NDCG@10 on the latest validation window (trained before it).
    pub valid_ndcg: Option<f64>,
    /// The current model's NDCG@10 on the same window, and what was measured.
    pub champion: Option<(String, f64)>,
    /// Why it was or was not promoted.
    pub decision: String,
    /// Review events scored with the current sentiment model (none without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_sentiment: Option<ScoreReport>,
    /// Why scoring reviews failed; it never fails the run, whose model is published already.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_sentiment_error: Option<String>,
}

/// Reads the lake, trains, signs, publishes, promotes if the model wins, and
/// scores new reviews.
///
/// A promotion is recorded in the lake's audit log as [`AUDIT_KEY_NAME`]
/// unless `models` already records promotions elsewhere
/// ([`ModelStore::with_audit`]).
pub async fn run(lake: &Lake, models: &ModelStore, key: &SigningKey, opts: &Options) -> Result<Report> {
    let audited;
    let models = if models.is_audited() {
        models
    } else {
        audited = models.clone().with_audit(lake.clone(), AUDIT_KEY_NAME);
        &audited
    };
    let recipe = opts.recipe;
    let events = lake.read_events().await?;
    let catalogue = lake.catalogue().await?;
    let ds = Dataset::from_events(&events, &catalogue);
    if ds.users.is_empty() || ds.items.is_empty() {
        return Err(Error::NoData("the lake holds no events with users and items".into()));
    }
    let cfg = lake_config(&opts.bpr);
    let mut final_cfg = cfg.clone();
    let version = new_version(recipe);
    let current = match models.current(Channel::Recommender).await? {
        Some(v) => Some((models.get(&v).await?, v)),
        None => None,
    };
    // The gate: challenger and champion on the latest validation window.
    let mut metrics = BTreeMap::new();
    let (mut valid_ndcg, mut champion) = (None, None);
    let window = schedule::latest_window(&ds, schedule::WINDOW_FRACTION);
    let beats = match &window {
        Some(w) => {
            // Tuned on the window (the hybrid's weights); the artifact below is
            // refitted on all data with the same configuration.
            let (fitted, tuned) =
                offline::fit_for_refit(recipe, &w.train, &cfg, Some(&w.valid), &mut Default::default())?;
            final_cfg = tuned;
            let m = eval::evaluate(&fitted, w.train.items.len(), &w.train.positives, None, &w.valid, schedule::K);
            metrics.extend(schedule::metric_entries(&m, "valid_"));
            metrics.insert("valid_users".into(), m.users as f64);
            valid_ndcg = Some(m.ndcg);
            match &current {
                Some((bytes, v)) => {
                    let (what, cm) = schedule::champion_metrics(bytes, &key.public_key(), w, &cfg)?;
                    metrics.insert("champion_ndcg@10".into(), cm.ndcg);
                    champion = Some((format!("{v}: {what}"), cm.ndcg));
                    m.ndcg > cm.ndcg
                }
                None => true,
            }
        }
        None => current.is_none(),
    };
    let decision = match (&champion, beats, opts.promote) {
        (_, _, false) => "not promoted: promotion disabled".to_owned(),
        (None, true, true) => "promoted: no current model".to_owned(),
        (Some((c, n)), true, true) => format!("promoted: NDCG@10 {:.4} > {n:.4} of {c}", valid_ndcg.unwrap_or(0.0)),
        (Some((c, n)), false, true) => {
            format!("kept current: NDCG@10 {:.4} ≤ {n:.4} of {c}", valid_ndcg.unwrap_or(0.0))
        }
        (None, false, true) => "kept current: no validation window to compare on".to_owned(),
    };
    let artifact = crate::train_artifact_with(&ds, recipe, &final_cfg, key, &version, metrics)?;
    let artifact_bytes = artifact.len();
    models.put(&version, artifact).await?;
    let promoted = opts.promote && beats;
    if promoted {
        models.promote(Channel::Recommender, &version).await?;
    }
    tracing::info!(%version, %decision, "training run");
    let (mut review_sentiment, mut review_sentiment_error) = (None, None);
    if opts.score_reviews {
        match reviews::score_with_current(lake, models, &key.public_key()).await {
            Ok(scored) => review_sentiment = scored,
            Err(e) => {
                tracing::error!(error = %crate::error_chain(&e), "scoring review sentiment failed");
                review_sentiment_error = Some(crate::error_chain(&e));
            }
        }
    }
    Ok(Report {
        version,
        recipe,
        events: events.len(),
        users: ds.users.len(),
        items: ds.items.len(),
        artifact_bytes,
        promoted,
        valid_ndcg,
        champion,
        decision,
        review_sentiment,
        review_sentiment_error,
    })
}
