//! Keyed pseudonymisation of user ids.
//!
//! Ingestion replaces every `user_id` by `HMAC-SHA256(key, user_id)` (hex)
//! before anything is stored, and the edge applies the same function to the
//! user id of a request to find the learner in a model. Without the key a
//! pseudonym cannot be linked back to a user id, and nobody can compute the
//! pseudonym of a known id.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// Minimum key length in bytes.
pub const MIN_KEY_LEN: usize = 16;

/// Computes pseudonyms under one secret key.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: HmacSha256,
    key_id: String,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pseudonymizer").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl Pseudonymizer {
    /// Creates a pseudonymizer from raw key bytes (at least [`MIN_KEY_LEN`]).
    pub fn new(key: &[u8]) -> Result<Self> {
        if key.len() < MIN_KEY_LEN {
            return Err(Error::Key(format!("pseudonym key must be at least {MIN_KEY_LEN} bytes, got {}", key.len())));
        }
        let mac = HmacSha256::new_from_slice(key).map_err(|e| Error::Key(e.to_string()))?;
        let digest = Sha256::digest([b"knowedge-pseudonym-key-id:".as_slice(), key].concat());
        Ok(Self { mac, key_id: hex::encode(&digest[..4]) })
    }

    /// Creates a pseudonymizer from a hex-encoded key.
    pub fn from_hex(key: &str) -> Result<Self> {
        let raw = hex::decode(key.trim()).map_err(|e| Error::Key(format!("pseudonym key is not hex: {e}")))?;
        Self::new(&raw)
    }

    /// A short public identifier of the key (for manifests and rotation), not the key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// A keyed tag (HMAC-SHA256 with the pseudonym key) over `parts`, each
    /// length-prefixed, under `domain`: for values the edge issues and later
    /// recognises (recommendation ids), never equal to any pseudonym.
    pub fn tag(&self, domain: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(b"\0knowedge-tag\0");
        for part in std::iter::once(domain.as_bytes()).chain(parts.iter().copied()) {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The pseudonym of `user_id`: 64 lowercase hex characters.
    pub fn pseudonymize(&self, user_id: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(user_id.as_bytes());
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(mac.finalize().into_bytes()) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 15)];
        }
        // Hex digits are ASCII, so this never falls back.
        std::str::from_utf8(&out).map(str::to_owned).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc4231_test_case_2_shape() {
        // RFC 4231 test case 2 uses a 4-byte key, which we refuse as too short.
        assert!(Pseudonymizer::new(b"Jefe").is_err());
        // HMAC-SHA256 with key = 0x0b * 20 and data "Hi There" (RFC 4231 test case 1).
        let p = Pseudonymizer::new(&[0x0b; 20]).unwrap();
        assert_eq!(p.pseudonymize("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    }

    #[test]
    fn different_keys_give_different_pseudonyms() {
        let a = Pseudonymizer::new(&[1; 32]).unwrap();
        let b = Pseudonymizer::new(&[2; 32]).unwrap();
        assert_ne!(a.pseudonymize("u-1"), b.pseudonymize("u-1"));
        assert_eq!(a.pseudonymize("u-1"), a.pseudonymize("u-1"));
        assert_ne!(a.key_id(), b.key_id());
        assert!(!format!("{a:?}").contains("0101"));
    }
}
