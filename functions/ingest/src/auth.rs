//! API keys with scopes, checked in constant time.
//!
//! Keys are configured as a comma-separated list of `name:scopes:secret`
//! entries, scopes joined by `+` (for instance
//! `web:events.write:0123456789abcdef,ops:admin:...`).
//! Known scopes: `events.write` (send events) and `admin` (everything).
//! Only the SHA-256 digest of each secret is kept in memory; a presented
//! token is hashed and compared with every key's digest without early exit.

use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Send events (`events.write`).
    EventsWrite,
    /// Everything (`admin`).
    Admin,
}

impl Scope {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "events.write" => Some(Scope::EventsWrite),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// One configured key.
#[derive(Clone)]
pub struct ApiKey {
    /// Key name (for logs; never the secret).
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey").field("name", &self.name).field("scopes", &self.scopes).finish_non_exhaustive()
    }
}

/// Why a request was not authorised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header (401).
    Missing,
    /// The token matches no key (401).
    Invalid,
    /// The key lacks the scope (403).
    Forbidden,
}

/// The configured keys.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: Vec<ApiKey>,
}

/// Shortest accepted secret.
pub const MIN_SECRET_LEN: usize = 16;

impl KeyRing {
    /// Parses `name:scope+scope:secret,...`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = entry.splitn(3, ':');
            let (Some(name), Some(scopes), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
                return Err("each API key must be written name:scopes:secret".into());
            };
            let scopes = scopes
                .split('+')
                .map(|s| {
                    Scope::parse(s).ok_or_else(|| format!("key `{name}`: unknown scope `{s}` (events.write, admin)"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if secret.len() < MIN_SECRET_LEN {
                return Err(format!("key `{name}`: secret shorter than {MIN_SECRET_LEN} characters"));
            }
            keys.push(ApiKey { name: name.to_owned(), scopes, digest: Sha256::digest(secret.as_bytes()).into() });
        }
        if keys.is_empty() {
            return Err("no API keys configured".into());
        }
        Ok(Self { keys })
    }

    /// Checks an `Authorization` header value for `scope`.
    pub fn authorize(&self, header: Option<&str>, scope: Scope) -> Result<&ApiKey, Denied> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .ok_or(Denied::Missing)?;
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        let mut found = None;
        for k in &self.keys {
            // Compare every key, every byte: timing does not depend on where a mismatch is.
            let diff = k.digest.iter().zip(digest.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 && found.is_none() {
                found = Some(k);
            }
        }
        let key = found.ok_or(Denied::Invalid)?;
        if key.scopes.contains(&scope) || key.scopes.contains(&Scope::Admin) { Ok(key) } else { Err(Denied::Forbidden) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_secrets() {
        let ring = KeyRing::parse(
            "web:events.write:0123456789abcdef, ops:admin:fedcba9876543210,ro:admin+events.write:zzzzzzzzzzzzzzzz",
        )
        .unwrap();
        assert_eq!(ring.authorize(Some("Bearer 0123456789abcdef"), Scope::EventsWrite).unwrap().name, "web");
        assert_eq!(ring.authorize(Some("Bearer 0123456789abcdef"), Scope::Admin).unwrap_err(), Denied::Forbidden);
        assert_eq!(ring.authorize(Some("Bearer fedcba9876543210"), Scope::EventsWrite).unwrap().name, "ops");
        assert_eq!(ring.authorize(Some("Bearer nope"), Scope::EventsWrite).unwrap_err(), Denied::Invalid);
        assert_eq!(ring.authorize(Some("Basic abc"), Scope::EventsWrite).unwrap_err(), Denied::Missing);
        assert_eq!(ring.authorize(None, Scope::EventsWrite).unwrap_err(), Denied::Missing);
        assert!(!format!("{ring:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn bad_specs() {
        assert!(KeyRing::parse("").is_err());
        assert!(KeyRing::parse("web:events.write").is_err());
        assert!(KeyRing::parse("web:read:0123456789abcdef").is_err());
        assert!(KeyRing::parse("web:events.write:short").is_err());
    }
}
