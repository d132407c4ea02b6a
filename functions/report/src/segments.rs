//! Marketing segments and lifetime value of the paying learners.
//!
//! * **RFM** ([`queries::RFM`], portable SQL): per paying learner the last
//!   purchase day, the purchase days and the CNY spent, scored 1-5 by
//!   quintile, and a named segment from the recency and frequency scores:
//!   `champions` (R ≥ 4, F ≥ 4), `loyal` (R ≥ 3, F ≥ 3), `promising` (R ≥ 4),
//!   `needs_attention` (R = 3), `at_risk` (F ≥ 3) and `hibernating` (the rest).
//! * **Lifetime value** ([`knowedge_analytics::clv`]): the purchase days up
//!   to the last day with events ([`queries::PURCHASE_DAYS`]) summarised as
//!   Fader, Hardie and Lee do (weeks, a day's purchases once); BG/NBD and
//!   Gamma-Gamma fitted by maximum likelihood; per learner the probability of
//!   being active, the expected purchases and the expected spend per purchase
//!   over the horizon, and the lifetime value (monthly periods, discounted).
//!   With too little history to fit, the RFM part stands alone and a note
//!   says why.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use knowedge_analytics::clv::{self, BgNbd, Fit, GammaGamma, Horizon, Periods, Spend, Transaction};
use serde::Serialize;
use serde_json::Value;

use crate::{Error, Result, SqlLake, output, queries};

/// The segment names, best first.
pub const SEGMENTS: [&str; 6] = ["champions", "loyal", "promising", "needs_attention", "at_risk", "hibernating"];

/// What the lifetime values look ahead.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ValueOptions {
    /// Weeks ahead for expected purchases and lifetime value.
    pub horizon_weeks: u32,
    /// Discount rate per month (0.01 for 1 %).
    pub monthly_discount: f64,
}

impl Default for ValueOptions {
    fn default() -> Self {
        ValueOptions { horizon_weeks: 52, monthly_discount: 0.01 }
    }
}

/// One paying learner.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Learner {
    /// Pseudonym.
    pub user_id: String,
    /// Named segment.
    pub segment: String,
    /// Recency score 1-5.
    pub r_score: i64,
    /// Frequency score 1-5.
    pub f_score: i64,
    /// Monetary score 1-5.
    pub m_score: i64,
    /// Day of the last purchase.
    pub last_purchase: String,
    /// Purchase days.
    pub frequency: i64,
    /// CNY spent.
    pub monetary: f64,
    /// BG/NBD probability of being active.
    pub p_alive: Option<f64>,
    /// BG/NBD expected purchases over the horizon.
    pub expected_purchases: Option<f64>,
    /// Gamma-Gamma expected spend per purchase.
    pub expected_spend: Option<f64>,
    /// Lifetime value over the horizon (CNY, discounted).
    pub clv: Option<f64>,
}

/// The fitted lifetime-value models.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValueModels {
    /// BG/NBD.
    pub bgnbd: Fit<BgNbd>,
    /// Gamma-Gamma.
    pub gamma_gamma: Fit<GammaGamma>,
    /// The horizon used.
    pub options: ValueOptions,
}

/// Segments and values of the paying learners.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Segments {
    /// The last day with events (the "today" of recency and value).
    pub as_of: Option<String>,
    /// Learners per segment, every segment listed.
    pub sizes: BTreeMap<String, usize>,
    /// The lifetime-value models, when they could be fitted.
    pub models: Option<ValueModels>,
    /// Lifetime value quantiles (0, 25, 50, 75, 90, 100 %), when fitted.
    pub clv_quantiles: Option<Vec<(f64, f64)>>,
    /// Every paying learner, by pseudonym.
    pub learners: Vec<Learner>,
    /// What the reader should know.
    pub notes: Vec<String>,
}

fn text(row: &serde_json::Map<String, Value>, key: &str) -> String {
    row.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn int(row: &serde_json::Map<String, Value>, key: &str) -> i64 {
    row.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn float(row: &serde_json::Map<String, Value>, key: &str) -> f64 {
    row.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

async fn rows(lake: &SqlLake, sql: &str) -> Result<Vec<serde_json::Map<String, Value>>> {
    let answer = lake.query(sql).await?;
    output::json_rows(&answer.batches)
}

/// Computes the segments and values.
///
/// # Errors
/// [`Error::Sql`] when a query fails; [`Error::Invalid`] for a bad horizon.
pub async fn segments(lake: &SqlLake, options: &ValueOptions) -> Result<Segments> {
    if options.horizon_weeks == 0 || !(options.monthly_discount.is_finite() && options.monthly_discount >= 0.0) {
        return Err(Error::Invalid("the horizon needs at least one week and a discount rate of 0 or more".into()));
    }
    let mut notes = Vec::new();
    let as_of = rows(lake, "SELECT MAX(dt) AS day FROM events_unique").await?.first().map(|r| text(r, "day"));
    let as_of = as_of.filter(|d| !d.is_empty());
    let mut learners: Vec<Learner> = rows(lake, queries::RFM.sql)
        .await?
        .iter()
        .map(|r| Learner {
            user_id: text(r, "user_id"),
            segment: text(r, "segment"),
            r_score: int(r, "r_score"),
            f_score: int(r, "f_score"),
            m_score: int(r, "m_score"),
            last_purchase: text(r, "last_purchase"),
            frequency: int(r, "frequency"),
            monetary: float(r, "monetary"),
            p_alive: None,
            expected_purchases: None,
            expected_spend: None,
            clv: None,
        })
        .collect();
    let mut sizes: BTreeMap<String, usize> = SEGMENTS.iter().map(|s| ((*s).to_owned(), 0)).collect();
    for l in &learners {
        *sizes.entry(l.segment.clone()).or_default() += 1;
    }
    let mut models = None;
    if let Some(day) = &as_of {
        let day = NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map_err(|e| Error::Invalid(format!("partition day `{day}`: {e}")))?;
        let transactions: Vec<Transaction> = rows(lake, queries::PURCHASE_DAYS.sql)
            .await?
            .iter()
            .filter_map(|r| {
                Some(Transaction {
                    customer: text(r, "user_id"),
                    day: NaiveDate::parse_from_str(&text(r, "day"), "%Y-%m-%d").ok()?,
                    amount: float(r, "spend"),
                })
            })
            .collect();
        match value(&transactions, day, options, &mut learners) {
            Ok(m) => models = Some(m),
            Err(e) => notes.push(format!(
                "lifetime value not computed: {} ({} paying learners)",
                knowedge_format::error::chain(&e),
                learners.len()
            )),
        }
    } else {
        notes.push("the lake has no events".into());
    }
    let clv_quantiles = models.as_ref().map(|_| {
        let mut values: Vec<f64> = learners.iter().filter_map(|l| l.clv).collect();
        values.sort_by(f64::total_cmp);
        [0.0, 0.25, 0.5, 0.75, 0.9, 1.0].iter().map(|q| (*q, quantile(&values, *q))).collect()
    });
    Ok(Segments { as_of: as_of.clone(), sizes, models, clv_quantiles, learners, notes })
}

/// Linear interpolation between order statistics (0 for none).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Fits the models on the purchase days up to `as_of` and fills in each learner's values.
fn value(
    transactions: &[Transaction],
    as_of: NaiveDate,
    options: &ValueOptions,
    learners: &mut [Learner],
) -> std::result::Result<ValueModels, knowedge_analytics::Error> {
    let end = as_of + chrono::TimeDelta::weeks(i64::from(options.horizon_weeks));
    let periods = Periods::new(as_of, end)?;
    let summaries = clv::summarize(transactions, &periods)?;
    let rfm: Vec<clv::Rfm> = summaries.iter().map(|s| s.rfm).collect();
    let bgnbd = BgNbd::fit(&rfm)?;
    let spends: Vec<Spend> = summaries
        .iter()
        .filter(|s| s.rfm.frequency > 0 && s.monetary > 0.0)
        .map(|s| Spend { frequency: s.rfm.frequency, mean: s.monetary })
        .collect();
    let gamma_gamma = GammaGamma::fit(&spends)?;
    let weeks = f64::from(options.horizon_weeks);
    let months = (weeks * 7.0 / 30.4375).round().max(1.0) as u32;
    let horizon =
        Horizon { period_length: weeks / f64::from(months), periods: months, discount_rate: options.monthly_discount };
    let by_user: BTreeMap<&str, &clv::CustomerSummary> = summaries.iter().map(|s| (s.customer.as_str(), s)).collect();
    for l in learners.iter_mut() {
        let Some(s) = by_user.get(l.user_id.as_str()) else { continue };
        let spend = gamma_gamma.model.expected_spend(&Spend { frequency: s.rfm.frequency, mean: s.monetary })?;
        l.p_alive = Some(bgnbd.model.p_alive(&s.rfm));
        l.expected_purchases = Some(bgnbd.model.expected_purchases(weeks, &s.rfm)?);
        l.expected_spend = Some(spend);
        l.clv = Some(clv::lifetime_value(&bgnbd.model, &s.rfm, spend, &horizon)?);
    }
    Ok(ValueModels { bgnbd, gamma_gamma, options: *options })
}

/// The learners as one Arrow batch (for Parquet and CSV audiences).
///
/// # Errors
/// [`Error::Encode`] when the batch cannot be built.
pub fn learners_batch(learners: &[&Learner]) -> Result<RecordBatch> {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("r_score", DataType::Int64, false),
        Field::new("f_score", DataType::Int64, false),
        Field::new("m_score", DataType::Int64, false),
        Field::new("last_purchase", DataType::Utf8, false),
        Field::new("frequency", DataType::Int64, false),
        Field::new("monetary", DataType::Float64, false),
        Field::new("p_alive", DataType::Float64, true),
        Field::new("expected_purchases", DataType::Float64, true),
        Field::new("expected_spend", DataType::Float64, true),
        Field::new("clv", DataType::Float64, true),
    ]));
    let s = |f: &dyn Fn(&Learner) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(learners.iter().map(|l| f(l))))
    };
    let i = |f: &dyn Fn(&Learner) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(learners.iter().map(|l| f(l))))
    };
    let o = |f: &dyn Fn(&Learner) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from_iter(learners.iter().map(|l| f(l))))
    };
    let columns = vec![
        s(&|l| &l.user_id),
        s(&|l| &l.segment),
        i(&|l| l.r_score),
        i(&|l| l.f_score),
        i(&|l| l.m_score),
        s(&|l| &l.last_purchase),
        i(&|l| l.frequency),
        Arc::new(Float64Array::from_iter_values(learners.iter().map(|l| l.monetary))) as ArrayRef,
        o(&|l| l.p_alive),
        o(&|l| l.expected_purchases),
        o(&|l| l.expected_spend),
        o(&|l| l.clv),
    ];
    RecordBatch::try_new(schema, columns).map_err(|e| Error::Encode { format: "Arrow", source: Box::new(e) })
}

/// An affinity audience as one Arrow batch: `user_id` and the item's
/// `position` in the learner's ranking (1 = first).
///
/// # Errors
/// [`Error::Encode`] when the batch cannot be built.
pub fn affinity_batch(rows: &[(usize, String)]) -> Result<RecordBatch> {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, false),
        Field::new("position", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str()))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0 as i64))),
    ];
    RecordBatch::try_new(schema, columns).map_err(|e| Error::Encode { format: "Arrow", source: Box::new(e) })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.9), 4.6);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
