//! The formats of knowedge: what crosses a boundary between its parts.
//!
//! * [`event`]: the learner event schema (version [`event::SCHEMA_VERSION`]),
//!   batch decoding and validation, which reports every problem of an event
//!   at once; the batch limits ([`event::MAX_BATCH_EVENTS`],
//!   [`event::MAX_BATCH_BYTES`]) that ingestion and the edge share;
//! * [`exposure`]: what the edge showed a learner, as logged and as sent to
//!   ingestion in versioned batches;
//! * [`pseudonym`]: keyed pseudonymisation of user ids (HMAC-SHA256);
//! * [`redact`]: redaction of e-mail addresses, phone, ID and bank card numbers in free text;
//! * [`deadletter`]: what a dead letter may keep of a rejected event (an
//!   allowlist; ids pseudonymised, texts redacted, other fields dropped);
//! * [`artifact`]: the signed model artifact format (version
//!   [`artifact::FORMAT_VERSION`]): safetensors tensors plus a JSON manifest,
//!   signed with ed25519 over a BLAKE3 digest, and the signing keys;
//! * [`cors`]: the cross-origin policy ingestion and the edge answer browsers with;
//! * [`store`]: the layout of a model store (artifacts and the pointers of
//!   its [`store::Channel`]s).
//!
//! The crate does no I/O, needs no async runtime and takes bytes, not paths.
//! It builds for the host, `wasm32-wasip2` and `wasm32-unknown-unknown`.
//! Models are loaded from artifacts by `knowedge-scoring`; the edge API is
//! `knowedge-edge`.
//!
//! ```
//! use knowedge_format::artifact::{self, ArtifactBuilder, ModelKind, SigningKey};
//!
//! let key = SigningKey::from_seed([7; 32]);
//! let mut builder = ArtifactBuilder::new(ModelKind::Popularity, 0);
//! builder.items(vec!["course-a".into(), "course-b".into()]);
//! builder.popularity(vec![1.0, 5.0]);
//! let bytes = builder.sign(&key).unwrap();
//!
//! let manifest = artifact::verify(&bytes, &key.public_key()).unwrap();
//! assert_eq!(manifest.kind, ModelKind::Popularity);
//! assert!(artifact::verify(&bytes, &SigningKey::from_seed([8; 32]).public_key()).is_err());
//! ```

pub mod artifact;
pub mod cors;
pub mod deadletter;
pub mod error;
pub mod event;
pub mod exposure;
pub mod forget;
pub mod pseudonym;
pub mod redact;
pub mod store;

pub use error::{Error, Result};
