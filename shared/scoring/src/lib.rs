//! Scoring for knowedge: models loaded from verified artifacts answer
//! learners' questions, the same natively and in WebAssembly.
//!
//! * [`model`]: a recommendation model ([`model::Model`]) loaded from a
//!   signed artifact answers top-k with business filters, folds a session's
//!   items in, ranks candidates and finds similar items;
//! * [`sentiment`]: review sentiment (hashed text features and a linear
//!   model), scored the same in training and at the edge;
//! * [`kernels`]: the dot product, top-k selection and Cholesky solve that
//!   training shares, so offline evaluation measures what the edge serves.
//!
//! Loading verifies the artifact with [`knowedge_format::artifact::verify`]
//! (magic, format version, signature, requirements); every failure is a
//! [`knowedge_format::Error`], the error type of this crate too.
//!
//! ```
//! use knowedge_format::artifact::{ArtifactBuilder, ModelKind, SigningKey};
//! use knowedge_scoring::model::{Filters, Model};
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

pub mod kernels;
pub mod model;
mod quantized;
pub mod sentiment;

pub use knowedge_format::{Error, Result};
