//! Cross-origin (CORS) policy shared by ingestion and the edge.
//!
//! Browsers on another origin may call an API only if it answers with the
//! right headers. A [`Cors`] policy holds the allowed origins (exact
//! `scheme://host[:port]` strings, or `*` for any) and computes those
//! headers; the HTTP adapters only copy them onto their answers.
//!
//! * a preflight (`OPTIONS` with `Access-Control-Request-Method`) from an
//!   allowed origin gets [`Cors::preflight`]'s headers and `204`; from any
//!   other origin `403` with a reason;
//! * an actual request from an allowed origin gets
//!   `Access-Control-Allow-Origin` (the origin itself, never `*`, since
//!   requests carry credentials in `Authorization`) and `Vary: Origin`;
//!   other origins get no CORS header, so the browser withholds the answer.
//!
//! ```
//! use knowedge_format::cors::Cors;
//!
//! let cors = Cors::from_list("https://shop.example, https://m.shop.example");
//! assert!(cors.allows("https://shop.example"));
//! assert!(!cors.allows("https://evil.example"));
//! assert!(cors.preflight("https://evil.example", "POST").is_err());
//! let headers = cors.preflight("https://shop.example", "POST").unwrap();
//! assert!(headers.iter().any(|(n, v)| *n == "access-control-allow-origin" && v == "https://shop.example"));
//! ```

/// Methods browsers may use cross-origin.
pub const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";
/// Request headers browsers may send cross-origin.
pub const ALLOWED_HEADERS: &str = "authorization, content-type";
/// How long (seconds) a browser may cache a preflight answer.
pub const MAX_AGE_SECONDS: u32 = 600;

/// The origins allowed to call from browsers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    /// A policy allowing these origins (`*` allows any).
    pub fn new(origins: impl IntoIterator<Item = String>) -> Self {
        Self {
            origins: origins
                .into_iter()
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
        }
    }

    /// A policy from a comma-separated list (the `KNOWEDGE_CORS_ORIGINS` setting).
    pub fn from_list(list: &str) -> Self {
        Self::new(list.split(',').map(str::to_owned))
    }

    /// Whether no origin is allowed.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    /// The allowed origins.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// Whether `origin` may call.
    pub fn allows(&self, origin: &str) -> bool {
        !origin.is_empty() && self.origins.iter().any(|o| o == "*" || o == origin)
    }

    /// Headers for an actual (non-preflight) answer to `origin`: empty when
    /// the origin is not allowed or absent.
    pub fn headers(&self, origin: Option<&str>) -> Vec<(&'static str, String)> {
        match origin {
            Some(o) if self.allows(o) => {
                vec![("access-control-allow-origin", o.to_owned()), ("vary", "Origin".to_owned())]
            }
            _ => Vec::new(),
        }
    }

    /// The headers answering a preflight from `origin` for `method`, or why it is refused.
    pub fn preflight(&self, origin: &str, method: &str) -> Result<Vec<(&'static str, String)>, String> {
        if !self.allows(origin) {
            return Err(if origin.is_empty() {
                "a preflight request needs an Origin header".to_owned()
            } else {
                format!("origin {} may not call this API", origin.chars().take(100).collect::<String>())
            });
        }
        let method = method.trim();
        if !method.is_empty() && !ALLOWED_METHODS.split(", ").any(|m| m.eq_ignore_ascii_case(method)) {
            return Err(format!("method {} is not allowed cross-origin", method.chars().take(20).collect::<String>()));
        }
        Ok(vec![
            ("access-control-allow-origin", origin.to_owned()),
            ("access-control-allow-methods", ALLOWED_METHODS.to_owned()),
            ("access-control-allow-headers", ALLOWED_HEADERS.to_owned()),
            ("access-control-max-age", MAX_AGE_SECONDS.to_string()),
            ("vary", "Origin".to_owned()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_allows_any_named_origin_but_echoes_it() {
        let c = Cors::from_list("*");
        assert!(c.allows("https://a.example"));
        assert!(!c.allows(""));
        assert_eq!(c.headers(Some("https://a.example"))[0].1, "https://a.example");
        assert!(c.headers(None).is_empty());
    }

    #[test]
    fn empty_policy_allows_nothing() {
        let c = Cors::from_list(" , ");
        assert!(c.is_empty());
        assert!(c.preflight("https://a.example", "GET").is_err());
        assert!(c.headers(Some("https://a.example")).is_empty());
    }

    #[test]
    fn preflight_checks_method_and_trailing_slashes_are_ignored() {
        let c = Cors::from_list("https://a.example/");
        assert!(c.preflight("https://a.example", "DELETE").unwrap_err().contains("DELETE"));
        assert!(c.preflight("https://a.example", "post").is_ok());
        assert!(c.preflight("", "GET").unwrap_err().contains("Origin"));
    }
}
