//! The report of an A/B experiment, read from the lake.
//!
//! [`queries::EXPERIMENT`] counts, per variant, the learners the edge
//! assigned to it, the answers shown to them (exposures), the answers they
//! clicked, the learners who bought and the revenue per learner (Σx and
//! Σx²). [`knowedge_analytics::experiment::report`] then compares every
//! variant with the control: two-proportion z-tests for click-through and
//! conversion, Welch's t-test for revenue per learner, relative lifts with
//! 95 % intervals, the sample-ratio-mismatch check against the configured
//! weights and whether the planned sample size is reached.

use knowedge_analytics::experiment::{self, Moments, Plan, Report, Variant};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result, SqlLake, output, queries};

/// The experiment as the edge runs it (`KNOWEDGE_EXPERIMENT`): its name and
/// the variants' weights (the `model` of each variant is not needed here).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    /// Experiment name.
    pub name: String,
    /// Variants in order; the first is the control unless told otherwise.
    pub variants: Vec<ConfiguredVariant>,
}

/// One configured variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredVariant {
    /// Variant name.
    pub name: String,
    /// Its share of learners.
    pub weight: f64,
}

impl ExperimentConfig {
    /// Parses the edge's experiment JSON.
    ///
    /// # Errors
    /// [`Error::Invalid`] when it is not an experiment.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Invalid(format!("not an experiment configuration: {e}")))
    }
}

/// What to report on.
#[derive(Clone, Debug)]
pub struct ExperimentOptions {
    /// The experiment's name.
    pub name: String,
    /// Its configuration (weights); without it, the variants found in the
    /// lake with equal weights.
    pub config: Option<ExperimentConfig>,
    /// The control variant (default: the configuration's first, else `control`
    /// when present, else the first by name).
    pub control: Option<String>,
    /// What the experiment was planned to detect.
    pub plan: Plan,
}

/// The experiment report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExperimentReport {
    /// The experiment.
    pub experiment: String,
    /// What was counted per variant.
    pub counts: Vec<Variant>,
    /// The statistics.
    pub statistics: Report,
    /// What the reader should know (assumed weights, variants without data).
    pub notes: Vec<String>,
}

fn count(row: &serde_json::Map<String, Value>, key: &str) -> u64 {
    row.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn amount(row: &serde_json::Map<String, Value>, key: &str) -> f64 {
    row.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// Reads the experiment's counts from the lake and computes its statistics.
///
/// # Errors
/// [`Error::Invalid`] when the lake has no learners in two variants of the
/// experiment or the control is not one of them; [`Error::Sql`] when the
/// query fails; [`Error::Analytics`] when the statistics do.
pub async fn report(lake: &SqlLake, options: &ExperimentOptions) -> Result<ExperimentReport> {
    let sql = queries::bind(queries::EXPERIMENT.sql, &[("experiment", &options.name)])?;
    let answer = lake.query(&sql).await?;
    let rows = output::json_rows(&answer.batches)?;
    let mut notes = Vec::new();
    let found: Vec<(String, serde_json::Map<String, Value>)> =
        rows.into_iter().filter_map(|r| Some((r.get("variant")?.as_str()?.to_owned(), r))).collect();
    let (names, weights): (Vec<String>, Vec<f64>) = match &options.config {
        Some(c) => {
            if c.name != options.name {
                return Err(Error::Invalid(format!(
                    "the configuration is of experiment `{}`, not `{}`",
                    c.name, options.name
                )));
            }
            for (name, _) in &found {
                if !c.variants.iter().any(|v| &v.name == name) {
                    notes.push(format!("variant `{name}` is in the lake but not in the configuration; left out"));
                }
            }
            c.variants.iter().map(|v| (v.name.clone(), v.weight)).unzip()
        }
        None => {
            if !found.is_empty() {
                notes.push("no configuration given: equal weights assumed for the sample-ratio check".into());
            }
            found.iter().map(|(n, _)| (n.clone(), 1.0)).unzip()
        }
    };
    let mut counts = Vec::with_capacity(names.len());
    for (name, weight) in names.iter().zip(&weights) {
        let Some((_, row)) = found.iter().find(|(n, _)| n == name) else {
            return Err(Error::Invalid(format!(
                "variant `{name}` of experiment `{}` has no learners in the lake",
                options.name
            )));
        };
        let learners = count(row, "learners");
        let revenue = Moments::from_sums(learners, amount(row, "revenue"), amount(row, "revenue_squares"))?;
        counts.push(Variant {
            name: name.clone(),
            weight: *weight,
            learners,
            exposures: count(row, "exposures"),
            clicks: count(row, "clicks"),
            converters: count(row, "converters"),
            revenue,
        });
    }
    if counts.len() < 2 {
        return Err(Error::Invalid(format!(
            "experiment `{}` has {} variant(s) with learners in the lake; a report needs two",
            options.name,
            counts.len()
        )));
    }
    let control = match &options.control {
        Some(c) => names
            .iter()
            .position(|n| n == c)
            .ok_or_else(|| Error::Invalid(format!("control `{c}` is not a variant of `{}`", options.name)))?,
        None if options.config.is_some() => 0,
        None => names.iter().position(|n| n == "control").unwrap_or(0),
    };
    if counts.iter().any(|v| v.exposures == 0) {
        notes.push("a variant has no exposures in the lake: click-through is not compared".into());
    }
    let statistics = experiment::report(&counts, control, &options.plan)?;
    Ok(ExperimentReport { experiment: options.name.clone(), counts, statistics, notes })
}

/// The report as text for a terminal.
pub fn human(r: &ExperimentReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "experiment {} (control: {})", r.experiment, r.statistics.control);
    let _ = writeln!(
        out,
        "{:<16} {:>9} {:>10} {:>8} {:>11} {:>12}",
        "variant", "learners", "exposures", "CTR", "conversion", "CNY/learner"
    );
    for m in &r.statistics.variants {
        let ctr = m.ctr.map_or_else(|| "-".to_owned(), |c| format!("{:.2}%", 100.0 * c));
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>10} {:>8} {:>10.2}% {:>12.2}",
            m.name,
            m.learners,
            m.exposures,
            ctr,
            100.0 * m.conversion,
            m.revenue_per_learner
        );
    }
    for c in &r.statistics.comparisons {
        let _ = writeln!(out, "{} against {}:", c.name, r.statistics.control);
        let mut line = |label: &str, cmp: Option<&experiment::Comparison>| {
            let Some(cmp) = cmp else {
                let _ = writeln!(out, "  {label:<20} not compared");
                return;
            };
            let lift = cmp.relative_lift.map_or_else(
                || "lift undefined (control is 0)".to_owned(),
                |l| format!("lift {:+.1}% [{:+.1}%, {:+.1}%]", 100.0 * l.value, 100.0 * l.lower, 100.0 * l.upper),
            );
            let _ = writeln!(out, "  {label:<20} {lift}, p = {:.4}", cmp.p_value);
        };
        line("click-through", c.ctr.as_ref());
        line("conversion", Some(&c.conversion));
        line("revenue per learner", c.revenue_per_learner.as_ref());
    }
    let srm = &r.statistics.sample_ratio;
    let _ = writeln!(
        out,
        "sample ratio: chi-square p = {:.4}{}",
        srm.p_value,
        if srm.mismatch { " (MISMATCH)" } else { "" }
    );
    let s = &r.statistics.sample_size;
    let _ = writeln!(
        out,
        "sample size: {} learners per variant needed, smallest has {} ({})",
        s.required_per_variant,
        s.smallest_variant,
        if s.reached { "reached" } else { "not reached" }
    );
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}
