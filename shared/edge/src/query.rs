//! Typed queries: what a learner may ask the edge, with one `validate()`
//! each. The HTTP API ([`crate::api`]) parses requests into these, the WIT
//! scorer component converts its arguments into them, and both refuse what
//! `validate()` refuses, with the same limits.

use knowedge_format::event::MAX_ID_CHARS;
use knowedge_scoring::model::Filters;
use serde::Deserialize;

use crate::{Error, Result};

/// Most items one request may ask for.
pub const MAX_K: usize = 100;
/// Default number of items.
pub const DEFAULT_K: usize = 10;
/// Most ids in `exclude`.
pub const MAX_EXCLUDE: usize = 200;
/// Most ids in `session`.
pub const MAX_SESSION: usize = 200;
/// Most candidates one rank request may carry.
pub const MAX_RANK_CANDIDATES: usize = 1_000;
/// Most texts one sentiment request may carry.
pub const MAX_SENTIMENT_TEXTS: usize = 100;
/// Longest accepted text, in UTF-8 bytes (any review event text fits: 5,000 characters of at most 4 bytes).
pub const MAX_TEXT_BYTES: usize = 20_000;

/// `k` checked: from 1 to [`MAX_K`].
pub fn check_k(k: usize) -> Result<usize> {
    if (1..=MAX_K).contains(&k) {
        Ok(k)
    } else {
        Err(Error::invalid("k", format!("`k` must be an integer from 1 to {MAX_K}")))
    }
}

/// A user id: 1 to [`MAX_ID_CHARS`] characters.
fn check_user(user: &str) -> Result<()> {
    if user.is_empty() || user.chars().count() > MAX_ID_CHARS {
        return Err(Error::invalid("user", format!("`user` must be 1-{MAX_ID_CHARS} characters")));
    }
    Ok(())
}

fn check_session(session: &[String]) -> Result<()> {
    if session.len() > MAX_SESSION {
        return Err(Error::invalid("session", format!("`session` lists more than {MAX_SESSION} items")));
    }
    Ok(())
}

/// `GET /v1/recommend`, the scorer's `recommend`: the top `k` items for a learner.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecommendQuery {
    /// The learner (a raw id over HTTP, a pseudonym in the scorer).
    pub user: Option<String>,
    /// How many items.
    pub k: usize,
    /// Business filters.
    pub filters: Filters,
    /// Items of this session, newest last.
    pub session: Vec<String>,
}

impl RecommendQuery {
    /// Checks every limit.
    pub fn validate(&self) -> Result<()> {
        if let Some(user) = &self.user {
            check_user(user)?;
        }
        check_k(self.k)?;
        if self.filters.max_price.is_some_and(|p| !p.is_finite() || p < 0.0) {
            return Err(Error::invalid("max_price", "`max_price` must be a number ≥ 0"));
        }
        if self.filters.exclude.len() > MAX_EXCLUDE {
            return Err(Error::invalid("exclude", format!("`exclude` lists more than {MAX_EXCLUDE} items")));
        }
        check_session(&self.session)
    }
}

/// `POST /v1/rank`, the scorer's `rank`: a page's own candidates, best first.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankQuery {
    /// The learner.
    #[serde(default)]
    pub user: Option<String>,
    /// Item ids to order.
    pub candidates: Vec<String>,
    /// Items of this session, newest last.
    #[serde(default)]
    pub session: Vec<String>,
}

impl RankQuery {
    /// Checks every limit.
    pub fn validate(&self) -> Result<()> {
        if let Some(user) = &self.user {
            check_user(user)?;
        }
        if self.candidates.len() > MAX_RANK_CANDIDATES {
            return Err(Error::invalid(
                "candidates",
                format!("{} candidates given; at most {MAX_RANK_CANDIDATES} per request", self.candidates.len()),
            ));
        }
        check_session(&self.session)
    }
}

/// `GET /v1/similar`, the scorer's `similar`: items like one item.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimilarQuery {
    /// The item.
    pub item: String,
    /// How many items.
    pub k: usize,
}

impl SimilarQuery {
    /// Checks every limit.
    pub fn validate(&self) -> Result<()> {
        if self.item.is_empty() || self.item.chars().count() > MAX_ID_CHARS {
            return Err(Error::invalid("item", format!("`item` must be 1-{MAX_ID_CHARS} characters")));
        }
        check_k(self.k).map(drop)
    }
}

/// `POST /v1/sentiment`, the scorer's `sentiment`: the polarity of texts.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct SentimentQuery {
    /// The texts, answered in order.
    pub texts: Vec<String>,
}

impl SentimentQuery {
    /// Checks every limit.
    pub fn validate(&self) -> Result<()> {
        if self.texts.len() > MAX_SENTIMENT_TEXTS {
            return Err(Error::invalid(
                "texts",
                format!("{} texts given; at most {MAX_SENTIMENT_TEXTS} per request", self.texts.len()),
            ));
        }
        if let Some((i, t)) = self.texts.iter().enumerate().find(|(_, t)| t.len() > MAX_TEXT_BYTES) {
            return Err(Error::TextTooLong(format!(
                "text {i} is {} bytes; at most {MAX_TEXT_BYTES} are accepted",
                t.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_once_for_every_front_end() {
        let ok = RecommendQuery { user: Some("u".into()), k: 10, ..Default::default() };
        assert!(ok.validate().is_ok());
        for bad in [
            RecommendQuery { k: 0, ..ok.clone() },
            RecommendQuery { k: MAX_K + 1, ..ok.clone() },
            RecommendQuery { user: Some(String::new()), ..ok.clone() },
            RecommendQuery { user: Some("x".repeat(MAX_ID_CHARS + 1)), ..ok.clone() },
            RecommendQuery { session: vec!["a".into(); MAX_SESSION + 1], ..ok.clone() },
            RecommendQuery { filters: Filters { max_price: Some(f32::NAN), ..Default::default() }, ..ok.clone() },
            RecommendQuery { filters: Filters { max_price: Some(-1.0), ..Default::default() }, ..ok.clone() },
            RecommendQuery {
                filters: Filters { exclude: vec!["a".into(); MAX_EXCLUDE + 1], ..Default::default() },
                ..ok.clone()
            },
        ] {
            assert!(matches!(bad.validate(), Err(Error::Invalid { .. })), "{bad:?}");
        }
        let rank =
            RankQuery { user: Some("u".into()), candidates: vec!["a".into(); MAX_RANK_CANDIDATES], session: vec![] };
        assert!(rank.validate().is_ok());
        let many = RankQuery { candidates: vec!["a".into(); MAX_RANK_CANDIDATES + 1], ..rank };
        assert!(many.validate().is_err());
        assert!(SimilarQuery { item: "i".into(), k: 5 }.validate().is_ok());
        assert!(SimilarQuery { item: "i".into(), k: 0 }.validate().is_err());
        let texts = SentimentQuery { texts: vec!["好".repeat(MAX_TEXT_BYTES / 3); MAX_SENTIMENT_TEXTS] };
        assert!(texts.validate().is_ok());
        let long = SentimentQuery { texts: vec!["x".repeat(MAX_TEXT_BYTES + 1)] };
        assert!(matches!(long.validate(), Err(Error::TextTooLong(_))));
        let many = SentimentQuery { texts: vec![String::new(); MAX_SENTIMENT_TEXTS + 1] };
        assert!(matches!(many.validate(), Err(Error::Invalid { .. })));
    }
}
