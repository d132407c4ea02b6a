//! The error type of the analytics.

/// Everything that can go wrong summarising transactions or fitting a model.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A line of a transaction file could not be read.
    #[error("line {line}: {message}")]
    Parse {
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The calibration period does not end before the holdout period.
    #[error("the calibration period must end before the holdout period: {calibration_end} is not before {holdout_end}")]
    Periods {
        /// Last day of the calibration period.
        calibration_end: chrono::NaiveDate,
        /// Last day of the holdout period.
        holdout_end: chrono::NaiveDate,
    },
    /// The data cannot be used: empty, or values out of their range.
    #[error("invalid data: {0}")]
    Data(String),
    /// A function was asked for a value outside its domain.
    #[error("outside the domain: {0}")]
    Domain(String),
    /// A series or an optimisation did not converge.
    #[error("no convergence: {0}")]
    NoConvergence(String),
}

/// The result type of the analytics.
pub type Result<T> = std::result::Result<T, Error>;
