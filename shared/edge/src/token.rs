//! Learner tokens: who is asking, proven to the edge.
//!
//! The operator's backend (which knows who is logged in) issues each learner
//! a short-lived **JSON Web Token** signed with **EdDSA** (Ed25519, RFC 8037):
//!
//! * header: `{"alg": "EdDSA", "typ": "JWT", "kid": <key id>}`, the key id
//!   being the first 8 bytes of SHA-256 of the public key, in hex (as for
//!   model artifacts, [`knowedge_format::artifact::PublicKey::key_id`]);
//! * claims: `sub` (the learner's raw id, as the platform's own frontends
//!   send it as `user`), `aud` (this edge's audience, a string or an array
//!   holding it), `exp` (required; at most [`MAX_LIFETIME_SECONDS`] ahead),
//!   `iat` and `nbf` (optional).
//!
//! The edge verifies tokens with a set of public keys ([`TokenKeys`], from
//! `KNOWEDGE_TOKEN_KEYS`), so a key can be rotated: publish the new public
//! key next to the old one, switch the backend, drop the old key once its
//! tokens have expired. Any JWT library with EdDSA support can issue these
//! tokens; [`issue`] is the one `knowedge keys token` and the tests use.
//!
//! ```
//! use chrono::{Duration, TimeZone, Utc};
//! use knowedge_edge::token::{self, TokenKeys, Refusal};
//!
//! let seed = [7u8; 32];
//! let keys = TokenKeys::from_settings(&token::public_key_hex(&seed), Some("shop")).unwrap();
//! let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
//! let jwt = token::issue(&seed, "learner-7", "shop", Duration::minutes(15), now).unwrap();
//! assert_eq!(keys.verify(&jwt, now).unwrap(), "learner-7");
//! assert_eq!(keys.verify(&jwt, now + Duration::hours(1)).unwrap_err(), Refusal::Expired);
//! ```

use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::Ed25519;
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken, ValidationError};
use knowedge_format::artifact::PublicKey;
use serde::{Deserialize, Serialize};

/// Audience a token must name when `KNOWEDGE_TOKEN_AUDIENCE` is not set.
pub const DEFAULT_AUDIENCE: &str = "knowedge-edge";
/// The longest lifetime accepted: tokens expiring later than this from now are refused.
pub const MAX_LIFETIME_SECONDS: i64 = 24 * 3600;
/// Clock difference tolerated between the issuer and the edge.
pub const LEEWAY_SECONDS: i64 = 30;
/// Longest accepted token, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Why a token is refused (each answered `401`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No token where one is needed.
    Missing,
    /// The token is past its `exp` (or before its `nbf`).
    Expired,
    /// The token names another audience.
    WrongAudience,
    /// The signature does not verify, the key is unknown, or the token is malformed; why.
    Invalid(String),
}

impl Refusal {
    /// A stable code for the JSON error answer.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Missing => "token_required",
            Refusal::Expired => "token_expired",
            Refusal::WrongAudience => "token_wrong_audience",
            Refusal::Invalid(_) => "token_invalid",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Missing => f.write_str("this request needs a learner token (Authorization: Bearer <token>)"),
            Refusal::Expired => f.write_str("the learner token has expired"),
            Refusal::WrongAudience => f.write_str("the learner token is for another audience"),
            Refusal::Invalid(why) => write!(f, "the learner token is not valid: {why}"),
        }
    }
}

/// The claims knowedge reads besides the time claims.
#[derive(Debug, Serialize, Deserialize)]
struct LearnerClaims {
    sub: String,
    aud: Audience,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn names(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(list) => list.iter().any(|a| a == audience),
        }
    }
}

/// Tokens verified recently (by SHA-256 of the token): a learner's next
/// requests with the same token skip the signature check, which is most of
/// a request's cost at the edge. Expiry is checked on every use.
#[derive(Debug, Default)]
struct Verified {
    entries: std::collections::HashMap<[u8; 32], (String, DateTime<Utc>)>,
    order: std::collections::VecDeque<[u8; 32]>,
}

/// Tokens kept verified per [`TokenKeys`] (and its clones).
pub const VERIFIED_CACHE: usize = 1024;

/// The public keys tokens are verified with, and the audience they must name.
/// Clones share the cache of verified tokens.
#[derive(Clone, Debug)]
pub struct TokenKeys {
    keys: Vec<(String, ed25519_dalek::VerifyingKey)>,
    audience: String,
    verified: std::sync::Arc<std::sync::Mutex<Verified>>,
}

impl TokenKeys {
    /// Keys from `KNOWEDGE_TOKEN_KEYS` (hex Ed25519 public keys separated by
    /// commas) and the audience from `KNOWEDGE_TOKEN_AUDIENCE` (default [`DEFAULT_AUDIENCE`]).
    pub fn from_settings(keys: &str, audience: Option<&str>) -> crate::Result<Self> {
        let mut parsed = Vec::new();
        for hex_key in keys.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()) {
            let key = PublicKey::from_hex(hex_key)
                .map_err(|e| crate::Error::Settings(format!("token key {hex_key:.16}…: {e}")))?;
            let raw: [u8; 32] = hex::decode(hex_key.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| crate::Error::Settings("token keys must be 32-byte hex".into()))?;
            let dalek = ed25519_dalek::VerifyingKey::from_bytes(&raw)
                .map_err(|e| crate::Error::Settings(format!("token key: {e}")))?;
            parsed.push((key.key_id(), dalek));
        }
        if parsed.is_empty() {
            return Err(crate::Error::Settings("no token key is given".into()));
        }
        let audience = audience.map(str::trim).filter(|a| !a.is_empty()).unwrap_or(DEFAULT_AUDIENCE).to_owned();
        Ok(Self { keys: parsed, audience, verified: Default::default() })
    }

    /// The audience tokens must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies `token` at time `now`: the learner it names (`sub`), or why not.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<String, Refusal> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refusal::Invalid(format!("longer than {MAX_TOKEN_BYTES} bytes")));
        }
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let cached = self.verified.lock().ok().and_then(|v| v.entries.get(&digest).cloned());
        if let Some((subject, expires)) = cached {
            return if now > expires + Duration::seconds(LEEWAY_SECONDS) { Err(Refusal::Expired) } else { Ok(subject) };
        }
        let subject = self.verify_uncached(token, now)?;
        if let (Ok(mut v), Some(expires)) = (self.verified.lock(), expiry(token)) {
            if v.order.len() >= VERIFIED_CACHE
                && let Some(old) = v.order.pop_front()
            {
                v.entries.remove(&old);
            }
            v.entries.insert(digest, (subject.clone(), expires));
            v.order.push_back(digest);
        }
        Ok(subject)
    }

    fn verify_uncached(&self, token: &str, now: DateTime<Utc>) -> Result<String, Refusal> {
        let untrusted = UntrustedToken::new(token).map_err(|e| Refusal::Invalid(e.to_string()))?;
        let key = match (&untrusted.header().key_id, self.keys.as_slice()) {
            (Some(kid), keys) => keys
                .iter()
                .find(|(id, _)| id == kid)
                .map(|(_, k)| k)
                .ok_or_else(|| Refusal::Invalid(format!("signed by unknown key {kid:.32}")))?,
            (None, [(_, only)]) => only,
            (None, _) => return Err(Refusal::Invalid("no `kid` in the header".into())),
        };
        let token = Ed25519.validator::<LearnerClaims>(key).validate(&untrusted).map_err(|e| match e {
            ValidationError::InvalidSignature => Refusal::Invalid("bad signature".into()),
            other => Refusal::Invalid(other.to_string()),
        })?;
        let claims = token.claims();
        let time = TimeOptions::new(Duration::seconds(LEEWAY_SECONDS), move || now);
        claims.validate_expiration(&time).map_err(|e| match e {
            ValidationError::Expired => Refusal::Expired,
            other => Refusal::Invalid(other.to_string()),
        })?;
        if claims.not_before.is_some() {
            claims.validate_maturity(&time).map_err(|_| Refusal::Expired)?;
        }
        if claims.expiration.is_some_and(|exp| exp > now + Duration::seconds(MAX_LIFETIME_SECONDS + LEEWAY_SECONDS)) {
            return Err(Refusal::Invalid(format!("expires more than {MAX_LIFETIME_SECONDS} s from now")));
        }
        if !claims.custom.aud.names(&self.audience) {
            return Err(Refusal::WrongAudience);
        }
        let sub = &claims.custom.sub;
        if sub.is_empty()
            || sub.chars().count() > knowedge_format::event::MAX_ID_CHARS
            || sub.chars().any(char::is_control)
        {
            return Err(Refusal::Invalid("`sub` must be 1-128 printable characters".into()));
        }
        Ok(sub.clone())
    }
}

/// The `exp` of a token already verified.
fn expiry(token: &str) -> Option<DateTime<Utc>> {
    let untrusted = UntrustedToken::new(token).ok()?;
    let claims: Claims<LearnerClaims> = untrusted.deserialize_claims_unchecked().ok()?;
    claims.expiration
}

/// The hex public key of a token signing key's 32-byte seed (for `KNOWEDGE_TOKEN_KEYS`).
pub fn public_key_hex(seed: &[u8; 32]) -> String {
    hex::encode(ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().as_bytes())
}

/// Issues a token for `subject` valid for `ttl` from `now`, signed with the
/// key whose 32-byte seed is `seed`.
pub fn issue(
    seed: &[u8; 32],
    subject: &str,
    audience: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> crate::Result<String> {
    let signing = ed25519_dalek::SigningKey::from_bytes(seed);
    let public = PublicKey::from_hex(&hex::encode(signing.verifying_key().as_bytes()))
        .map_err(|e| crate::Error::Settings(e.to_string()))?;
    let header = Header::empty().with_key_id(public.key_id()).with_token_type("JWT");
    let mut claims = Claims::new(LearnerClaims { sub: subject.to_owned(), aud: Audience::One(audience.to_owned()) });
    claims.issued_at = Some(now);
    claims.expiration = Some(now + ttl);
    Ed25519.token(&header, &claims, &signing).map_err(|e| crate::Error::Settings(e.to_string()))
}

/// The `sub` of a token without verifying it: only for choosing which
/// model variant to load before the API verifies the token.
pub fn unverified_subject(token: &str) -> Option<String> {
    let untrusted = UntrustedToken::new(token).ok()?;
    let claims: Claims<LearnerClaims> = untrusted.deserialize_claims_unchecked().ok()?;
    Some(claims.custom.sub)
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
    }

    fn keys(seeds: &[[u8; 32]]) -> TokenKeys {
        let list: Vec<String> = seeds.iter().map(public_key_hex).collect();
        TokenKeys::from_settings(&list.join(","), None).unwrap()
    }

    #[test]
    fn valid_tokens_name_their_learner_under_rotation() {
        let set = keys(&[[1; 32], [2; 32]]);
        for seed in [[1; 32], [2; 32]] {
            let t = issue(&seed, "u-1", DEFAULT_AUDIENCE, Duration::minutes(15), now()).unwrap();
            assert_eq!(set.verify(&t, now()).unwrap(), "u-1");
        }
    }

    #[test]
    fn forged_expired_foreign_and_malformed_tokens_are_refused() {
        let set = keys(&[[1; 32]]);
        let good = issue(&[1; 32], "u-1", DEFAULT_AUDIENCE, Duration::minutes(15), now()).unwrap();
        // Another key.
        let other = issue(&[3; 32], "u-1", DEFAULT_AUDIENCE, Duration::minutes(15), now()).unwrap();
        assert!(matches!(set.verify(&other, now()), Err(Refusal::Invalid(m)) if m.contains("unknown key")));
        // A changed claim under the original signature.
        let (head, rest) = good.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged_claims = base64url(
            &serde_json::to_vec(
                &serde_json::json!({"sub": "u-2", "aud": DEFAULT_AUDIENCE, "exp": now().timestamp() + 600}),
            )
            .unwrap(),
        );
        let forged = format!("{head}.{forged_claims}.{sig}");
        assert_eq!(set.verify(&forged, now()), Err(Refusal::Invalid("bad signature".into())));
        assert_eq!(set.verify(&good, now() + Duration::minutes(16)), Err(Refusal::Expired));
        let foreign = issue(&[1; 32], "u-1", "another-app", Duration::minutes(15), now()).unwrap();
        assert_eq!(set.verify(&foreign, now()), Err(Refusal::WrongAudience));
        let forever = issue(&[1; 32], "u-1", DEFAULT_AUDIENCE, Duration::days(30), now()).unwrap();
        assert!(matches!(set.verify(&forever, now()), Err(Refusal::Invalid(_))));
        for junk in ["", "abc", "a.b.c", &"x".repeat(MAX_TOKEN_BYTES + 1)] {
            assert!(matches!(set.verify(junk, now()), Err(Refusal::Invalid(_))), "{junk:.20}");
        }
        // `alg: none` is not EdDSA.
        let none = format!("{}.{}.", base64url(br#"{"alg":"none"}"#), forged_claims);
        assert!(matches!(set.verify(&none, now()), Err(Refusal::Invalid(_))));
    }

    #[test]
    fn verified_tokens_are_remembered_but_still_expire() {
        let set = keys(&[[1; 32]]);
        let t = issue(&[1; 32], "u-1", DEFAULT_AUDIENCE, Duration::minutes(15), now()).unwrap();
        assert_eq!(set.verify(&t, now()).unwrap(), "u-1");
        assert_eq!(set.clone().verify(&t, now() + Duration::minutes(5)).unwrap(), "u-1");
        assert_eq!(set.verify(&t, now() + Duration::minutes(16)), Err(Refusal::Expired));
        // Only verified tokens are remembered: a forged one is refused every time.
        let forged = issue(&[2; 32], "u-1", DEFAULT_AUDIENCE, Duration::minutes(15), now()).unwrap();
        for _ in 0..2 {
            assert!(set.verify(&forged, now()).is_err());
        }
        // The cache is bounded.
        for i in 0..VERIFIED_CACHE + 10 {
            let t = issue(&[1; 32], &format!("u-{i}"), DEFAULT_AUDIENCE, Duration::minutes(15), now()).unwrap();
            set.verify(&t, now()).unwrap();
        }
        assert_eq!(set.verified.lock().unwrap().entries.len(), VERIFIED_CACHE);
    }

    #[test]
    fn bearer_headers_and_settings() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert!(TokenKeys::from_settings("", None).is_err());
        assert!(TokenKeys::from_settings("zz", None).is_err());
        assert_eq!(keys(&[[1; 32]]).audience(), DEFAULT_AUDIENCE);
        let t = issue(&[1; 32], "u-9", "x", Duration::minutes(1), now()).unwrap();
        assert_eq!(unverified_subject(&t).as_deref(), Some("u-9"));
    }

    fn base64url(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
}
