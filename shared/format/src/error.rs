//! The error type of the formats.

/// Everything that can go wrong reading or writing a knowedge format.
///
/// Artifact readers distinguish a wrong container version, a bad signature
/// and malformed content, so callers can log the precise reason and keep
/// serving the model they already have.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not start with the artifact magic.
    #[error("not a knowedge model artifact (bad magic bytes)")]
    NotAnArtifact,
    /// The container version is not one this reader understands.
    #[error(
        "unsupported artifact format version {found}; this reader writes version {supported} and reads versions 1 to {supported}"
    )]
    UnsupportedVersion {
        /// Version found in the artifact header.
        found: u32,
        /// Version this reader writes (it reads versions 1 to this).
        supported: u32,
    },
    /// Lengths in the header do not match the bytes.
    #[error("malformed artifact: {0}")]
    Malformed(String),
    /// The ed25519 signature does not verify with the configured key.
    #[error("artifact signature does not verify against the configured public key")]
    BadSignature,
    /// The manifest lists requirements this reader does not implement.
    #[error("artifact requires features this reader does not understand: {0:?}")]
    UnsupportedFeature(Vec<String>),
    /// The manifest is not valid JSON or misses fields.
    #[error("invalid artifact manifest: {0}")]
    Manifest(String),
    /// Tensors are missing or have the wrong type or shape.
    #[error("invalid artifact tensors: {0}")]
    Tensors(String),
    /// A key has the wrong length or encoding.
    #[error("invalid key: {0}")]
    Key(String),
    /// An event batch could not be decoded at all.
    #[error("invalid batch: {0}")]
    Batch(String),
    /// An event batch holds more elements than
    /// [`MAX_BATCH_EVENTS`](crate::event::MAX_BATCH_EVENTS) (their number).
    #[error("{0} events; at most {max} per batch", max = crate::event::MAX_BATCH_EVENTS)]
    TooManyEvents(usize),
    /// An exposure batch holds more than
    /// [`MAX_BATCH_EXPOSURES`](crate::exposure::MAX_BATCH_EXPOSURES) exposures (their number).
    #[error("{0} exposures; at most {max} per batch", max = crate::exposure::MAX_BATCH_EXPOSURES)]
    TooManyExposures(usize),
    /// A batch says it is of a version this reader does not read.
    #[error("batch version {found}; this reader reads version {supported}")]
    BatchVersion {
        /// The version the batch gives.
        found: u32,
        /// The version this reader reads.
        supported: u32,
    },
}

/// An error and its causes in one line, outermost first: `a: b: c`. Error
/// types of knowedge keep a cause only as their `source`, never in their
/// own message, so each cause appears once.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cause = e.source();
    }
    out
}

/// Result alias of the formats.
pub type Result<T, E = Error> = std::result::Result<T, E>;
