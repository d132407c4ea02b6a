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
//! ([`knowedge_scoring::model`], [`knowedge_scoring::sentiment`]) and the
//! edge core's typed queries ([`knowedge_edge::query`]), which check every
//! argument with the same limits as the HTTP API; this crate only converts
//! between WIT types and core types.
//!
//! ```text
//! cargo build -p knowedge-edge-scorer --target wasm32-wasip2 --profile edge
//! # -> target/wasm32-wasip2/edge/knowedge_edge_scorer.wasm
//! ```
//!
//! Built natively the crate holds only [`MAX_K`] and [`MAX_CANDIDATES`].

/// Most items one `recommend` or `similar` call may ask for.
pub const MAX_K: u32 = knowedge_edge::query::MAX_K as u32;
/// Most candidates one `rank` call may carry.
pub const MAX_CANDIDATES: usize = knowedge_edge::query::MAX_RANK_CANDIDATES;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code, missing_docs)]
mod component {
    use knowedge_edge::query::{RankQuery, RecommendQuery, SentimentQuery, SimilarQuery};
    use knowedge_format::Error as CoreError;
    use knowedge_format::artifact::{self, ModelKind, PublicKey};
    use knowedge_scoring::model::{self as core, Model as CoreModel};
    use knowedge_scoring::sentiment::{Label, SentimentModel};

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

    /// A query the edge core refuses.
    fn invalid(e: knowedge_edge::Error) -> Error {
        Error::InvalidArgument(e.to_string())
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
            let m = self.recommender()?;
            let filters =
                core::Filters { category: filters.category, max_price: filters.max_price, exclude: filters.exclude };
            let q = RecommendQuery { user: Some(user), k: k as usize, filters, session: session_items };
            q.validate().map_err(invalid)?;
            Ok(scored(m.recommend_in_session(q.user.as_deref(), &q.session, q.k, &q.filters)))
        }

        fn rank(&self, user: String, candidates: Vec<String>, session_items: Vec<String>) -> Result<Ranked, Error> {
            let q = RankQuery { user: Some(user), candidates, session: session_items };
            q.validate().map_err(invalid)?;
            let r = self.recommender()?.rank(q.user.as_deref(), &q.session, &q.candidates);
            Ok(Ranked { items: scored(r.items), unknown: r.unknown })
        }

        fn similar(&self, item: String, k: u32) -> Result<Vec<Scored>, Error> {
            let q = SimilarQuery { item, k: k as usize };
            q.validate().map_err(invalid)?;
            self.recommender()?.similar(&q.item, q.k).map(scored).ok_or(Error::UnknownItem(q.item))
        }

        fn sentiment(&self, texts: Vec<String>) -> Result<Vec<SentimentResult>, Error> {
            let Loaded::Sentiment(m) = &self.0 else {
                return Err(Error::InvalidArgument("not a sentiment model".into()));
            };
            let q = SentimentQuery { texts };
            q.validate().map_err(invalid)?;
            Ok(m.score_all(&q.texts)
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
