//! The business view of the knowedge lake.
//!
//! * [`SqlLake`] opens a lake directory as SQL tables with DataFusion: the
//!   Hive-partitioned Parquet tables (`events`, `review_sentiment`) are read
//!   in place, the JSON tables (`dead_letter`, `audit`) and the catalogue are
//!   loaded, and the views of [`queries::VIEWS`] (`events_unique`, every
//!   `event_id` once) are defined on top. Files that cannot be read are left
//!   out and listed ([`SqlLake::skipped`]), so a partly damaged lake still
//!   answers with what it has.
//! * [`queries`] holds the report queries as `.sql` files in a dialect that
//!   DataFusion, Spark SQL and Athena (Trino) all run unchanged.
//! * [`output`] renders query results as a text table, CSV, JSON or Parquet.
//! * [`dashboard`] builds the business dashboard; [`scheduled`] is what the
//!   `knowedge-report` Lambda function runs to write it to the lake's
//!   `reports/` (its settings and access in [`deploy`]).
//!
//! ```no_run
//! # async fn demo() -> knowedge_report::Result<()> {
//! let lake = knowedge_report::SqlLake::open(std::path::Path::new(".knowedge/lake")).await?;
//! let answer = lake.query("SELECT type, COUNT(*) AS n FROM events_unique GROUP BY type").await?;
//! println!("{}", knowedge_report::output::table(&answer.schema, &answer.batches)?);
//! # Ok(()) }
//! ```

pub mod dashboard;
pub mod deploy;
pub mod engine;
pub mod experiment;
pub mod output;
pub mod queries;
pub mod scheduled;
pub mod segments;

pub use engine::{QueryResult, Skipped, SqlLake};

/// Errors of the report crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The lake directory does not exist or is not a directory.
    #[error("no lake at `{path}`: {reason}")]
    NoLake {
        /// The path given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A query could not be planned or run (syntax, unknown table or column, types).
    #[error("SQL error: {message}")]
    Sql {
        /// DataFusion's explanation, without its internal prefixes.
        message: String,
        /// The engine's error.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// Results could not be encoded.
    #[error("could not write the results as {format}")]
    Encode {
        /// The output format.
        format: &'static str,
        /// The encoder's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading the lake's files failed.
    #[error("could not read the lake at `{path}`")]
    Io {
        /// The file or directory.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A report's inputs do not make sense (an unknown experiment, a bad parameter).
    #[error("{0}")]
    Invalid(String),
    /// The statistics of a report failed.
    #[error("statistics failed")]
    Analytics(#[from] knowedge_analytics::Error),
    /// The lake's store could not be read or written (the scheduled report).
    #[error("lake")]
    Lake(#[from] knowedge_lake::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether running again later may succeed (the object store failed).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Lake(e) if e.is_retryable())
    }

    pub(crate) fn sql(source: datafusion::error::DataFusionError) -> Self {
        let message = clean_message(&source);
        Error::Sql { message, source }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io { path: path.display().to_string(), source }
    }
}

/// DataFusion's message without the `Error during planning:`-style layers
/// that say nothing to someone who typed a query.
fn clean_message(e: &datafusion::error::DataFusionError) -> String {
    let mut text = e.to_string();
    for prefix in ["Error during planning: ", "SQL error: ", "Schema error: ", "Execution error: ", "Arrow error: "] {
        while let Some(rest) = text.strip_prefix(prefix) {
            text = rest.to_owned();
        }
    }
    text.trim().to_owned()
}
