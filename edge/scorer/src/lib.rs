//! The knowedge scoring component: the `knowedge:edge/scorer` interface of
//! `wit/scorer.wit` (world `scoring`), exported by a `wasm32-wasip2`
//! component.
//!
//! Where the Spin and Workers adapters are HTTP front ends, this component
//! is the contract for hosts that call scoring directly: a host loads a
//! `model` resource from artifact bytes once (the signature, format version
//! and requirements are checked inside the component) and then asks it for
//! recommendations, rankings, similar items or review sentiment as often as
//! it likes. The project's wasmtime host calls it through `bindgen!`
//! (`knowedge_edge_host::scorer`). All logic is the portable core's
//! ([`knowedge_shared::model`], [`knowedge_shared::sentiment`]); this crate
//! only converts between WIT types and core types.
//!
//! ```text
//! cargo build -p knowedge-edge-scorer --target wasm32-wasip2 --profile edge
//! # -> target/wasm32-wasip2/edge/knowedge_edge_scorer.wasm
//! ```
//!
//! Built natively the crate holds only [`MAX_K`] and [`MAX_CANDIDATES`].

/// Most items one `recommend` or `similar` call may ask for.
pub const MAX_K: u32 = knowedge_shared::api::MAX_K as u32;
/// Most candidates one `rank` call may carry.
pub const MAX_CANDIDATES: usize = knowedge_shared::api::MAX_RANK_CANDIDATES;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code, missing_docs)]
mod component {
    use knowedge_shared::Error as CoreError;
    use knowedge_shared::api::{MAX_SENTIMENT_TEXTS, MAX_TEXT_BYTES};
    use knowedge_shared::artifact::{self, ModelKind, PublicKey};
    use knowedge_shared::model::{self as core, Model as CoreModel};
    use knowedge_shared::sentiment::{Label, SentimentModel};

    use super::{MAX_CANDIDATES, MAX_K};

    wit_bindgen::generate!({
        path: "../../wit",
        world: "scoring",
    });

    use exports::knowedge::edge::scorer::{Guest, GuestModel, Model as ModelHandle};
    use knowedge::edge::types::{Error, Filters, ModelInfo, Ranked, Scored, SentimentLabel, SentimentResult};

    struct Component;

    enum Loaded {
        Recommender(Box<CoreModel>),
        Sentiment(SentimentModel),
    }

    /// A loaded model (the `model` resource).
    struct Model(Loaded);

    impl Guest for Component {
        type Model = Model;
    }

    fn error(e: CoreError) -> Error {
        match e {
            CoreError::UnsupportedVersion { found, .. } => Error::UnsupportedVersion(found),
            CoreError::BadSignature => Error::BadSignature,
            CoreError::UnsupportedFeature(f) => Error::UnsupportedFeature(f),
            other => Error::BadArtifact(other.to_string()),
        }
    }

    fn scored(v: Vec<core::Scored>) -> Vec<Scored> {
        v.into_iter().map(|s| Scored { item: s.item, score: s.score }).collect()
    }

    fn check_k(k: u32) -> Result<usize, Error> {
        if (1..=MAX_K).contains(&k) {
            Ok(k as usize)
        } else {
            Err(Error::InvalidArgument(format!("k must be from 1 to {MAX_K}, got {k}")))
        }
    }

    impl Model {
        fn recommender(&self) -> Result<&CoreModel, Error> {
            match &self.0 {
                Loaded::Recommender(m) => Ok(m),
                Loaded::Sentiment(_) => Err(Error::InvalidArgument("a sentiment model does not recommend".into())),
            }
        }
    }

    impl GuestModel for Model {
        fn load(artifact_bytes: Vec<u8>, public_key: Vec<u8>) -> Result<ModelHandle, Error> {
            let key = PublicKey::from_hex(&hex_of(&public_key)).map_err(error)?;
            let manifest = artifact::verify(&artifact_bytes, &key).map_err(error)?;
            let loaded = if manifest.kind == ModelKind::Sentiment {
                Loaded::Sentiment(SentimentModel::from_artifact(&artifact_bytes, &key).map_err(error)?)
            } else {
                Loaded::Recommender(Box::new(CoreModel::from_artifact(&artifact_bytes, &key).map_err(error)?))
            };
            Ok(ModelHandle::new(Model(loaded)))
        }

        fn info(&self) -> ModelInfo {
            match &self.0 {
                Loaded::Recommender(m) => {
                    let i = m.info();
                    ModelInfo {
                        model_id: i.model_id.clone(),
                        kind: i.kind.as_str().to_owned(),
                        format_version: i.format_version,
                        dims: i.dims as u32,
                        items: i.items as u32,
                        users: i.users as u32,
                    }
                }
                Loaded::Sentiment(m) => {
                    let i = m.info();
                    ModelInfo {
                        model_id: i.model_id.clone(),
                        kind: i.kind.as_str().to_owned(),
                        format_version: i.format_version,
                        dims: 0,
                        items: 0,
                        users: 0,
                    }
                }
            }
        }

        fn recommend(
            &self,
            user: String,
            k: u32,
            filters: Filters,
            session_items: Vec<String>,
        ) -> Result<Vec<Scored>, Error> {
            let k = check_k(k)?;
            let m = self.recommender()?;
            if filters.max_price.is_some_and(|p| !p.is_finite() || p < 0.0) {
                return Err(Error::InvalidArgument("max-price must be a number >= 0".into()));
            }
            let filters =
                core::Filters { category: filters.category, max_price: filters.max_price, exclude: filters.exclude };
            Ok(scored(m.recommend_in_session(Some(&user), &session_items, k, &filters)))
        }

        fn rank(&self, user: String, candidates: Vec<String>, session_items: Vec<String>) -> Result<Ranked, Error> {
            if candidates.len() > MAX_CANDIDATES {
                return Err(Error::InvalidArgument(format!(
                    "{} candidates; at most {MAX_CANDIDATES}",
                    candidates.len()
                )));
            }
            let r = self.recommender()?.rank(Some(&user), &session_items, &candidates);
            Ok(Ranked { items: scored(r.items), unknown: r.unknown })
        }

        fn similar(&self, item: String, k: u32) -> Result<Vec<Scored>, Error> {
            let k = check_k(k)?;
            self.recommender()?.similar(&item, k).map(scored).ok_or(Error::UnknownItem(item))
        }

        fn sentiment(&self, texts: Vec<String>) -> Result<Vec<SentimentResult>, Error> {
            let Loaded::Sentiment(m) = &self.0 else {
                return Err(Error::InvalidArgument("not a sentiment model".into()));
            };
            if texts.len() > MAX_SENTIMENT_TEXTS {
                return Err(Error::InvalidArgument(format!("at most {MAX_SENTIMENT_TEXTS} texts per call")));
            }
            if let Some(i) = texts.iter().position(|t| t.len() > MAX_TEXT_BYTES) {
                return Err(Error::InvalidArgument(format!("text {i} is over {MAX_TEXT_BYTES} bytes")));
            }
            Ok(m.score_all(&texts)
                .into_iter()
                .map(|s| SentimentResult {
                    label: match s.label {
                        Label::Positive => SentimentLabel::Positive,
                        Label::Negative => SentimentLabel::Negative,
                        Label::Neutral => SentimentLabel::Neutral,
                    },
                    score: s.score,
                })
                .collect())
        }
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    export!(Component);
}
