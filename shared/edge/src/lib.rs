//! The edge core of knowedge: everything an edge adapter does besides I/O.
//!
//! * [`query`]: typed queries with one `validate()` each, shared by the HTTP
//!   API and the WIT scorer component;
//! * [`api`]: routing, parameters, JSON answers and errors of the edge HTTP
//!   API, so the Spin component, the Cloudflare Worker and the local host
//!   answer alike;
//! * [`slot`]: which model to serve, given a store pointer and artifact
//!   bytes (keeps the last good model, remembers refused versions);
//! * [`publish`]: what an edge's key-value store accepts over its publish
//!   route (`PUT /v1/admin/models/<key>`): verified artifacts, then pointers
//!   that do not go back;
//! * [`experiment`]: A/B experiments (deterministic assignment, exposure records);
//! * [`token`]: learner tokens (JWT, EdDSA) the edge verifies before personalising;
//! * [`settings`]: the names of the settings every adapter reads, and [`settings::Loaded`],
//!   which turns them into an [`api::EdgeConfig`] once per change of their values.
//!
//! An adapter parses its platform's request into an [`api::Request`], asks
//! [`api::model_choice`] which model the route needs, gets it through a
//! [`slot::ModelSlot`] (reading the store in its own way), calls
//! [`api::handle_with_body`] and writes the [`api::Response`] back.
//!
//! The crate does no I/O and needs no async runtime; it builds for the host,
//! `wasm32-wasip2` and `wasm32-unknown-unknown`.

pub mod api;
pub mod experiment;
pub mod publish;
pub mod query;
pub mod settings;
pub mod slot;
pub mod token;

/// Everything the edge core refuses.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A query parameter is out of its limits (answered `400`).
    #[error("{message}")]
    Invalid {
        /// The parameter.
        field: &'static str,
        /// What is wrong, for the client.
        message: String,
    },
    /// A text is longer than the API accepts (answered `413`).
    #[error("{0}")]
    TextTooLong(String),
    /// An A/B experiment configuration is invalid.
    #[error("invalid experiment: {0}")]
    Experiment(String),
    /// A setting (token keys, audience) is invalid.
    #[error("invalid setting: {0}")]
    Settings(String),
}

impl Error {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid { field, message: message.into() }
    }
}

/// Result alias of the edge core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
