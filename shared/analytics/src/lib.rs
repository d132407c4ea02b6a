//! Analytics for knowedge: the business view of what learners buy.
//!
//! * [`clv`]: customer lifetime value. An RFM summary of transactions
//!   (frequency, recency, age and mean spend per customer, split into a
//!   calibration and a holdout period), the BG/NBD model of repeat purchases
//!   and the Gamma-Gamma model of spend, both fitted by maximum likelihood,
//!   and the lifetime value of a customer over a horizon.
//!
//! The crate does no I/O: it takes transactions and returns summaries,
//! fitted models and predictions. Every failure is an [`Error`].

pub mod clv;
mod error;

pub use error::{Error, Result};
