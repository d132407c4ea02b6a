//! The RFM summary of transactions, as Fader, Hardie and Lee (2005) build it
//! for the BG/NBD model: purchases on the same day count as one (their
//! amounts summed), time is measured in weeks (days / 7), and the first
//! purchase only starts the customer's clock.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One purchase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Who bought.
    pub customer: String,
    /// On which day.
    pub day: NaiveDate,
    /// For how much (not negative).
    pub amount: f64,
}

/// What the BG/NBD model needs of a customer's calibration period.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rfm {
    /// x: repeat purchases (purchase days after the first).
    pub frequency: u32,
    /// tₓ: weeks from the first purchase to the last repeat purchase (0 without one).
    pub recency: f64,
    /// T: weeks from the first purchase to the end of the calibration period.
    pub age: f64,
}

impl Rfm {
    /// Checks 0 ≤ tₓ ≤ T, tₓ = 0 without repeat purchases, all finite.
    ///
    /// # Errors
    /// [`Error::Data`] saying what is wrong.
    pub fn validate(&self) -> Result<()> {
        let Rfm { frequency, recency, age } = *self;
        if !(recency.is_finite() && age.is_finite()) || recency < 0.0 || recency > age {
            return Err(Error::Data(format!("recency {recency} and age {age} must satisfy 0 ≤ recency ≤ age")));
        }
        if frequency == 0 && recency != 0.0 {
            return Err(Error::Data(format!("recency {recency} without repeat purchases; it must be 0")));
        }
        Ok(())
    }
}

/// A customer's summary over the calibration and the holdout period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerSummary {
    /// The customer.
    pub customer: String,
    /// Frequency, recency and age in the calibration period.
    pub rfm: Rfm,
    /// Mean amount of the repeat purchases in the calibration period (each
    /// day's amounts summed; the first purchase left out); 0 without one.
    pub monetary: f64,
    /// Purchase days in the holdout period.
    pub holdout_frequency: u32,
}

/// The calibration period (up to and including its last day) and the
/// holdout period after it (up to and including its last day).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Periods {
    calibration_end: NaiveDate,
    holdout_end: NaiveDate,
}

impl Periods {
    /// The periods ending on these days.
    ///
    /// # Errors
    /// [`Error::Periods`] unless the calibration period ends first.
    pub fn new(calibration_end: NaiveDate, holdout_end: NaiveDate) -> Result<Self> {
        if calibration_end >= holdout_end {
            return Err(Error::Periods { calibration_end, holdout_end });
        }
        Ok(Periods { calibration_end, holdout_end })
    }

    /// Last day of the calibration period.
    pub fn calibration_end(&self) -> NaiveDate {
        self.calibration_end
    }

    /// Last day of the holdout period.
    pub fn holdout_end(&self) -> NaiveDate {
        self.holdout_end
    }

    /// Length of the holdout period in weeks.
    pub fn holdout_weeks(&self) -> f64 {
        weeks(self.calibration_end, self.holdout_end)
    }
}

/// Weeks (days / 7) from one day to another.
fn weeks(from: NaiveDate, to: NaiveDate) -> f64 {
    (to - from).num_days() as f64 / 7.0
}

/// Summarises transactions per customer, sorted by customer. Customers
/// whose first purchase falls after the calibration period are left out
/// (the models describe customers from their first purchase on), and so
/// are purchases after the holdout period.
///
/// # Errors
/// [`Error::Data`] for a negative or non-finite amount.
pub fn summarize(transactions: &[Transaction], periods: &Periods) -> Result<Vec<CustomerSummary>> {
    let mut days: BTreeMap<&str, BTreeMap<NaiveDate, f64>> = BTreeMap::new();
    for t in transactions {
        if !(t.amount.is_finite() && t.amount >= 0.0) {
            return Err(Error::Data(format!(
                "customer {} on {}: amount {} is not a sum of money",
                t.customer, t.day, t.amount
            )));
        }
        if t.day > periods.holdout_end {
            continue;
        }
        *days.entry(&t.customer).or_default().entry(t.day).or_insert(0.0) += t.amount;
    }
    let mut out = Vec::with_capacity(days.len());
    for (customer, purchases) in days {
        let Some((&first, _)) = purchases.first_key_value() else { continue };
        if first > periods.calibration_end {
            continue;
        }
        let mut frequency = 0_u32;
        let mut last = first;
        let mut spent = 0.0;
        let mut holdout_frequency = 0_u32;
        for (&day, &amount) in purchases.range(first..).skip(1) {
            if day <= periods.calibration_end {
                frequency += 1;
                last = day;
                spent += amount;
            } else {
                holdout_frequency += 1;
            }
        }
        out.push(CustomerSummary {
            customer: customer.to_owned(),
            rfm: Rfm { frequency, recency: weeks(first, last), age: weeks(first, periods.calibration_end) },
            monetary: if frequency > 0 { spent / f64::from(frequency) } else { 0.0 },
            holdout_frequency,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn tx(customer: &str, d: &str, amount: f64) -> Transaction {
        Transaction { customer: customer.into(), day: day(d), amount }
    }

    #[test]
    fn same_day_purchases_count_once_and_the_first_is_left_out() {
        let periods = Periods::new(day("1997-09-30"), day("1998-06-30")).unwrap();
        let t = [
            tx("a", "1997-01-01", 10.0),
            tx("a", "1997-01-01", 5.0),
            tx("a", "1997-01-18", 20.0),
            tx("a", "1997-01-18", 4.0),
            tx("a", "1997-08-02", 12.0),
            tx("a", "1997-12-01", 7.0),
            tx("a", "1997-12-01", 1.0),
            tx("a", "1998-03-01", 2.0),
            tx("a", "1998-07-01", 2.0),
            tx("b", "1997-03-01", 9.0),
            tx("c", "1997-10-05", 9.0),
        ];
        let s = summarize(&t, &periods).unwrap();
        assert_eq!(s.len(), 2, "c starts after calibration: {s:?}");
        let a = &s[0];
        assert_eq!(a.rfm.frequency, 2);
        assert_eq!(a.rfm.recency, 213.0 / 7.0);
        assert_eq!(a.rfm.age, 272.0 / 7.0);
        assert_eq!(a.monetary, (24.0 + 12.0) / 2.0);
        assert_eq!(a.holdout_frequency, 2);
        let b = &s[1];
        assert_eq!((b.rfm.frequency, b.rfm.recency, b.monetary, b.holdout_frequency), (0, 0.0, 0.0, 0));
        assert_eq!(b.rfm.age, 213.0 / 7.0);
        assert_eq!(periods.holdout_weeks(), 39.0);
    }

    #[test]
    fn periods_must_be_in_order_and_amounts_money() {
        assert!(matches!(Periods::new(day("1998-06-30"), day("1997-09-30")), Err(Error::Periods { .. })));
        assert!(Periods::new(day("1997-09-30"), day("1997-09-30")).is_err());
        let periods = Periods::new(day("1997-09-30"), day("1998-06-30")).unwrap();
        assert!(matches!(summarize(&[tx("a", "1997-01-01", -1.0)], &periods), Err(Error::Data(_))));
        assert!(summarize(&[tx("a", "1997-01-01", f64::NAN)], &periods).is_err());
    }

    #[test]
    fn rfm_validation() {
        assert!(Rfm { frequency: 2, recency: 3.0, age: 5.0 }.validate().is_ok());
        assert!(Rfm { frequency: 2, recency: 6.0, age: 5.0 }.validate().is_err());
        assert!(Rfm { frequency: 0, recency: 1.0, age: 5.0 }.validate().is_err());
        assert!(Rfm { frequency: 1, recency: f64::NAN, age: 5.0 }.validate().is_err());
    }
}
