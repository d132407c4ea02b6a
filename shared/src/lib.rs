//! The portable core of knowedge.
//!
//! Everything that must behave identically in the cloud functions, in the
//! command line and inside the WebAssembly modules at the edge lives here:
//!
//! * [`event`]: the learner event schema (version [`event::SCHEMA_VERSION`]) and
//!   its validation, which reports every problem of an event at once;
//! * [`pseudonym`]: keyed pseudonymisation of user ids (HMAC-SHA256);
//! * [`redact`]: redaction of e-mail addresses, phone, ID and bank card numbers in free text;
//! * [`artifact`]: the signed model artifact format (version
//!   [`artifact::FORMAT_VERSION`]): safetensors tensors plus a JSON manifest,
//!   signed with ed25519 over a BLAKE3 digest;
//! * [`model`]: the scoring core (top-k by dot product with business filters);
//! * [`sentiment`]: review sentiment (hashed text features and a linear
//!   model), scored the same in training and at the edge;
//! * [`experiment`]: A/B experiments (deterministic assignment, exposure records);
//! * [`api`]: the edge HTTP API (routing, parameters, JSON answers) that every
//!   edge adapter calls, so Spin and Workers modules share one behaviour.
//!
//! The crate does no I/O, needs no async runtime and takes bytes, not paths.
//! It builds for the host, `wasm32-wasip2` and `wasm32-unknown-unknown`.
//!
//! Platform engineers use it through the functions and edge modules; it is
//! also the reference reader for anyone consuming knowedge artifacts.
//!
//! ```
//! use knowedge_shared::artifact::{ArtifactBuilder, ModelKind, SigningKey};
//! use knowedge_shared::model::{Filters, Model};
//!
//! let key = SigningKey::from_seed([7; 32]);
//! let mut builder = ArtifactBuilder::new(ModelKind::Popularity, 0);
//! builder.items(vec!["course-a".into(), "course-b".into()]);
//! builder.popularity(vec![1.0, 5.0]);
//! let bytes = builder.sign(&key).unwrap();
//!
//! let model = Model::from_artifact(&bytes, &key.public_key()).unwrap();
//! let top = model.recommend(None, 1, &Filters::default());
//! assert_eq!(top[0].item, "course-b");
//! ```

pub mod api;
pub mod artifact;
pub mod error;
pub mod event;
pub mod experiment;
pub mod model;
pub mod pseudonym;
mod quantized;
pub mod redact;
pub mod sentiment;
pub mod store;

pub use error::{Error, Result};
