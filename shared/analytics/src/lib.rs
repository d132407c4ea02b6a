//! Analytics for knowedge: the business view of what learners buy.
//!
//! * [`clv`]: customer lifetime value. An RFM summary of transactions
//!   (frequency, recency, age and mean spend per customer, split into a
//!   calibration and a holdout period), the BG/NBD model of repeat purchases
//!   and the Gamma-Gamma model of spend, both fitted by maximum likelihood,
//!   and the lifetime value of a customer over a horizon.
//! * [`experiment`]: the statistics of an A/B experiment. Per variant CTR,
//!   conversion and revenue per learner; the lift of a treatment over the
//!   control with its 95% interval and p-value (two-proportion z-test,
//!   Welch's t-test); a sample-ratio-mismatch check; the planned sample size.
//! * [`special`]: the special functions both need (ln Γ, 2F1, the incomplete
//!   gamma and beta functions, erf, and the normal, Student t and chi-square
//!   distributions).
//!
//! The crate does no I/O: it takes transactions and counts and returns
//! summaries, fitted models, predictions and test results. Every failure is an [`Error`].
//!
//! ```
//! use chrono::NaiveDate;
//! use knowedge_analytics::clv::{self, BgNbd, Periods};
//!
//! // customer, day, CDs, dollars: two purchases on 1 March count once.
//! let text = "1 19970101 1 10.0\n1 19970301 1 12.0\n1 19970301 1 8.0\n2 19970115 1 15.0\n1 19971101 1 5.0\n";
//! let transactions = clv::cdnow::parse(text)?;
//! let periods = Periods::new("1997-09-30".parse::<NaiveDate>()?, "1998-06-30".parse::<NaiveDate>()?)?;
//! let customers = clv::summarize(&transactions, &periods)?;
//! assert_eq!((customers[0].rfm.frequency, customers[0].monetary, customers[0].holdout_frequency), (1, 20.0, 1));
//!
//! // The estimate Fader, Hardie and Lee published for CDNOW; `BgNbd::fit` finds one from data.
//! let model = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
//! let next_year = model.expected_purchases(52.0, &customers[0].rfm)?;
//! assert!(next_year > 0.0 && model.p_alive(&customers[0].rfm) < 1.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod clv;
mod error;
pub mod experiment;
pub mod special;

pub use error::{Error, Result};
