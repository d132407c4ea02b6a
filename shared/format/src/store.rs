//! Layout of a model store (names only; I/O belongs to the callers).
//!
//! A model store is a directory or object-store prefix holding:
//!
//! ```text
//! <store>/<version>.kwm   one signed artifact per published version
//! <store>/current         UTF-8 text: the version the edge should serve
//! <store>/current-sentiment  UTF-8 text: the sentiment model version the edge should serve
//! ```
//!
//! Each pointer belongs to a [`Channel`].
//!
//! Publishing writes the artifact first and then replaces `current`, so a
//! reader never sees a pointer to an artifact that is not there yet.

/// Name of the pointer object.
pub const CURRENT: &str = "current";
/// Name of the pointer to the sentiment model (a separate artifact, see [`crate::sentiment`]).
pub const CURRENT_SENTIMENT: &str = "current-sentiment";
/// A kind of model the store publishes, each with its own pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The recommendation model, named by [`CURRENT`].
    Recommender,
    /// The review sentiment model, named by [`CURRENT_SENTIMENT`].
    Sentiment,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 2] = [Channel::Recommender, Channel::Sentiment];

    /// Name of the channel's pointer object.
    pub const fn pointer(self) -> &'static str {
        match self {
            Channel::Recommender => CURRENT,
            Channel::Sentiment => CURRENT_SENTIMENT,
        }
    }

    /// The channel's name in logs and status answers.
    pub const fn name(self) -> &'static str {
        match self {
            Channel::Recommender => "recommender",
            Channel::Sentiment => "sentiment",
        }
    }
}

/// File extension of artifacts.
pub const EXTENSION: &str = "kwm";

/// Object name of a version's artifact.
pub fn artifact_name(version: &str) -> String {
    format!("{version}.{EXTENSION}")
}

/// Whether `version` is a safe version name (letters, digits, `-`, `_`, `.`; 1-128 chars, no leading dot).
pub fn is_valid_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= 128
        && !version.starts_with('.')
        && version.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Parses the content of a `current` pointer.
pub fn parse_current(content: &[u8]) -> Option<&str> {
    let v = std::str::from_utf8(content).ok()?.trim();
    is_valid_version(v).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers() {
        assert_eq!(parse_current(b"20261128T1200Z-mf\n"), Some("20261128T1200Z-mf"));
        assert_eq!(parse_current(b"../etc/passwd"), None);
        assert_eq!(parse_current(b""), None);
        assert_eq!(artifact_name("v1"), "v1.kwm");
    }
}
