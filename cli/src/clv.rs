//! `knowedge clv`: customer lifetime value models on the CDNOW transactions
//! ([`knowedge_analytics::clv`]): BG/NBD and Gamma-Gamma fitted on a
//! calibration period, their predictions held against a holdout period.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use knowedge_analytics::clv::{self, BgNbd, CustomerSummary, GammaGamma, Periods, Spend};
use serde::Serialize;

/// What `knowedge clv` runs on.
#[derive(Clone, Debug)]
pub struct ClvOptions {
    /// The CDNOW transaction file (master or sample layout).
    pub cdnow: PathBuf,
    /// Last day of the calibration period.
    pub calibration_end: NaiveDate,
    /// Last day of the holdout period.
    pub holdout_end: NaiveDate,
    /// Write the report as JSON here.
    pub json: Option<PathBuf>,
    /// Write each customer's summary as CSV here.
    pub summary: Option<PathBuf>,
}

/// The report of `knowedge clv` (what `--json` writes).
#[derive(Clone, Debug, Serialize)]
pub struct ClvReport {
    /// The fitted BG/NBD parameters.
    pub bgnbd: BgNbd,
    /// The fitted Gamma-Gamma parameters.
    pub gammagamma: GammaGamma,
    /// Predicted against actual repeat purchases in the holdout period.
    pub holdout: Holdout,
    /// The data and the fits.
    pub data: DataSummary,
}

/// Repeat purchases in the holdout period, summed over customers.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Holdout {
    /// Σ expected purchases given each customer's calibration history.
    pub predicted_total: f64,
    /// Σ purchase days in the holdout period.
    pub actual_total: f64,
    /// Mean absolute error per customer.
    pub mae: f64,
}

/// What the models were fitted on, and how the fits went.
#[derive(Clone, Debug, Serialize)]
pub struct DataSummary {
    /// Customers whose first purchase falls in the calibration period.
    pub customers: usize,
    /// Customers with paid repeat purchases (those Gamma-Gamma is fitted on).
    pub spend_customers: usize,
    /// Last day of the calibration period.
    pub calibration_end: NaiveDate,
    /// Last day of the holdout period.
    pub holdout_end: NaiveDate,
    /// Length of the holdout period in weeks.
    pub holdout_weeks: f64,
    /// BG/NBD log-likelihood at the estimate.
    pub bgnbd_log_likelihood: f64,
    /// Gamma-Gamma log-likelihood at the estimate.
    pub gammagamma_log_likelihood: f64,
    /// Mean P(alive) at the end of the calibration period.
    pub mean_p_alive: f64,
    /// Mean expected amount per purchase.
    pub mean_expected_spend: f64,
    /// Seconds the two fits took.
    pub fit_seconds: f64,
}

/// Reads the file, summarises, fits both models, predicts the holdout
/// period, and writes the JSON report and the summary CSV when asked.
pub fn run(opts: &ClvOptions) -> Result<ClvReport> {
    let periods = Periods::new(opts.calibration_end, opts.holdout_end)?;
    let text = std::fs::read_to_string(&opts.cdnow).with_context(|| format!("reading {}", opts.cdnow.display()))?;
    let transactions = clv::cdnow::parse(&text).with_context(|| format!("reading {}", opts.cdnow.display()))?;
    let customers = clv::summarize(&transactions, &periods)?;
    anyhow::ensure!(
        !customers.is_empty(),
        "no customer made a first purchase by {} in {}",
        opts.calibration_end,
        opts.cdnow.display()
    );
    if let Some(path) = &opts.summary {
        std::fs::write(path, summary_csv(&customers)).with_context(|| format!("writing {}", path.display()))?;
    }

    let started = std::time::Instant::now();
    let rfm: Vec<_> = customers.iter().map(|c| c.rfm).collect();
    let bg = BgNbd::fit(&rfm).context("fitting BG/NBD")?;
    let spends: Vec<_> = customers.iter().map(|c| Spend { frequency: c.rfm.frequency, mean: c.monetary }).collect();
    let gg = GammaGamma::fit(&spends).context("fitting Gamma-Gamma")?;
    let fit_seconds = started.elapsed().as_secs_f64();

    let weeks = periods.holdout_weeks();
    let (mut predicted_total, mut actual_total, mut abs_error, mut alive, mut spend) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (c, s) in customers.iter().zip(&spends) {
        let predicted = bg.model.expected_purchases(weeks, &c.rfm)?;
        let actual = f64::from(c.holdout_frequency);
        predicted_total += predicted;
        actual_total += actual;
        abs_error += (predicted - actual).abs();
        alive += bg.model.p_alive(&c.rfm);
        spend += gg.model.expected_spend(s)?;
    }
    let n = customers.len() as f64;
    let report = ClvReport {
        bgnbd: bg.model,
        gammagamma: gg.model,
        holdout: Holdout { predicted_total, actual_total, mae: abs_error / n },
        data: DataSummary {
            customers: customers.len(),
            spend_customers: gg.customers,
            calibration_end: opts.calibration_end,
            holdout_end: opts.holdout_end,
            holdout_weeks: weeks,
            bgnbd_log_likelihood: bg.log_likelihood,
            gammagamma_log_likelihood: gg.log_likelihood,
            mean_p_alive: alive / n,
            mean_expected_spend: spend / n,
            fit_seconds,
        },
    };
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// Each customer's summary: customer, x, tₓ, T, mean repeat spend, holdout purchases.
fn summary_csv(customers: &[CustomerSummary]) -> String {
    let mut out = String::from("customer,frequency_cal,recency_cal,T_cal,monetary_value_cal,frequency_holdout\n");
    for c in customers {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{}",
            c.customer, c.rfm.frequency, c.rfm.recency, c.rfm.age, c.monetary, c.holdout_frequency
        );
    }
    out
}

/// A few lines for people.
pub fn human(report: &ClvReport) -> String {
    let ClvReport { bgnbd: b, gammagamma: g, holdout: h, data: d } = report;
    format!(
        "{} customers, calibration to {}, holdout {} weeks to {}\n\
         BG/NBD: r {:.4}, alpha {:.4}, a {:.4}, b {:.4} (log-likelihood {:.2}); mean P(alive) {:.3}\n\
         Gamma-Gamma on {} customers with paid repeat purchases: p {:.4}, q {:.4}, v {:.4}; mean expected spend {:.2}\n\
         holdout repeat purchases: predicted {:.1}, actual {:.0}, mean absolute error {:.3} per customer\n",
        d.customers,
        d.calibration_end,
        d.holdout_weeks,
        d.holdout_end,
        b.r,
        b.alpha,
        b.a,
        b.b,
        d.bgnbd_log_likelihood,
        d.mean_p_alive,
        d.spend_customers,
        g.p,
        g.q,
        g.v,
        d.mean_expected_spend,
        h.predicted_total,
        h.actual_total,
        h.mae
    )
}
