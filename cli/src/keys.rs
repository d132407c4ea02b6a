//! Key material for local runs: a directory with three hex files.
//!
//! | file | content | who needs it |
//! |---|---|---|
//! | `signing.key` | ed25519 seed that signs model artifacts | training |
//! | `signing.pub` | the matching public key | the edge, any artifact reader |
//! | `pseudonym.key` | HMAC key for user pseudonyms | ingestion, the edge |
//! | `ingest.key` | API key (scope `events.write`) frontends send events with | ingestion, frontends |
//! | `token.key` | ed25519 seed that signs learner tokens (JWT, EdDSA) | the operator's backend (`knowedge keys token` here) |
//! | `token.pub` | the matching public key | the edge (`KNOWEDGE_TOKEN_KEYS`) |
//!
//! In production the same values come from a secret store (AWS Secrets
//! Manager, Spin variables, Workers secrets) through environment variables:
//! `KNOWEDGE_SIGNING_KEY`, `KNOWEDGE_SIGNING_PUBLIC_KEY`, `KNOWEDGE_PSEUDONYM_KEY`,
//! `KNOWEDGE_API_KEYS` (all ingestion keys, `name:scopes:secret,...`),
//! `KNOWEDGE_TOKEN_SIGNING_KEY` and `KNOWEDGE_TOKEN_KEYS`.

use std::path::Path;

use anyhow::{Context, Result};
use knowedge_format::artifact::{PublicKey, SigningKey};
use knowedge_format::pseudonym::Pseudonymizer;

/// The keys of a deployment. `Debug` shows the public key only.
#[derive(Clone)]
pub struct Keys {
    /// Signs artifacts (hex seed).
    pub signing_hex: String,
    /// Verifies artifacts (hex).
    pub public_hex: String,
    /// Pseudonymises users (hex).
    pub pseudonym_hex: String,
    /// The local ingest API key (scope `events.write`).
    pub ingest_key: String,
    /// Signs learner tokens (hex seed; empty where only verifying).
    pub token_hex: String,
    /// Verifies learner tokens (hex public keys, comma separated).
    pub token_public_hex: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("signing_hex", &"<redacted>")
            .field("public_hex", &self.public_hex)
            .field("pseudonym_hex", &"<redacted>")
            .field("ingest_key", &"<redacted>")
            .field("token_hex", &"<redacted>")
            .field("token_public_hex", &self.token_public_hex)
            .finish()
    }
}

/// The files of a key directory: name, and whether it is secret.
const FILES: [(&str, bool); 6] = [
    ("signing.key", true),
    ("signing.pub", false),
    ("pseudonym.key", true),
    ("ingest.key", true),
    ("token.key", true),
    ("token.pub", false),
];

impl Keys {
    /// Fresh random keys.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        let mut pk = [0u8; 32];
        let mut ik = [0u8; 24];
        let mut tk = [0u8; 32];
        for buf in [&mut seed[..], &mut pk[..], &mut ik[..], &mut tk[..]] {
            getrandom::fill(buf).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        }
        let signing = SigningKey::from_seed(seed);
        Ok(Self {
            signing_hex: hex::encode(seed),
            public_hex: signing.public_key().to_hex(),
            pseudonym_hex: hex::encode(pk),
            ingest_key: format!("kn_{}", hex::encode(ik)),
            token_hex: hex::encode(tk),
            token_public_hex: knowedge_edge::token::public_key_hex(&tk),
        })
    }

    /// Reads keys from `dir`, letting environment variables override each file.
    pub fn load(dir: &Path) -> Result<Self> {
        let get = |env: &str, file: &str| -> Result<String> {
            if let Ok(v) = std::env::var(env) {
                return Ok(v);
            }
            let p = dir.join(file);
            Ok(std::fs::read_to_string(&p)
                .with_context(|| {
                    format!("{env} is not set and {} cannot be read (run `knowedge keys generate`)", p.display())
                })?
                .trim()
                .to_owned())
        };
        let keys = Self {
            signing_hex: get("KNOWEDGE_SIGNING_KEY", "signing.key").unwrap_or_default(),
            public_hex: get("KNOWEDGE_SIGNING_PUBLIC_KEY", "signing.pub")?,
            pseudonym_hex: get("KNOWEDGE_PSEUDONYM_KEY", "pseudonym.key")?,
            ingest_key: get("KNOWEDGE_INGEST_KEY", "ingest.key").unwrap_or_default(),
            token_hex: get("KNOWEDGE_TOKEN_SIGNING_KEY", "token.key").unwrap_or_default(),
            token_public_hex: get("KNOWEDGE_TOKEN_KEYS", "token.pub").unwrap_or_default(),
        };
        keys.public()?;
        keys.pseudonymizer()?;
        Ok(keys)
    }

    /// Only the signing key (`KNOWEDGE_SIGNING_KEY`, else `dir/signing.key`),
    /// for commands that sign artifacts and need no other key.
    pub fn load_signing(dir: &Path) -> Result<SigningKey> {
        let hex = read_one(dir, "KNOWEDGE_SIGNING_KEY", "signing.key")?;
        SigningKey::from_hex(&hex).context("signing key (KNOWEDGE_SIGNING_KEY / signing.key)")
    }

    /// Only the public key (`KNOWEDGE_SIGNING_PUBLIC_KEY`, else `dir/signing.pub`),
    /// for commands that verify artifacts and need no other key.
    pub fn load_public(dir: &Path) -> Result<PublicKey> {
        let hex = read_one(dir, "KNOWEDGE_SIGNING_PUBLIC_KEY", "signing.pub")?;
        PublicKey::from_hex(&hex).context("public key (KNOWEDGE_SIGNING_PUBLIC_KEY / signing.pub)")
    }

    /// Loads keys from `dir`, generating and saving them first if the
    /// directory has none. Existing keys are never replaced: a missing
    /// `ingest.key` or `signing.pub` is added (the public key derived from
    /// `signing.key`), but a missing signing or pseudonym key next to
    /// existing ones is an error, since a new one would stop every model
    /// from verifying or change every learner's pseudonym.
    pub fn load_or_generate(dir: &Path) -> Result<Self> {
        let present: Vec<bool> = FILES.iter().map(|(f, _)| dir.join(f).exists()).collect();
        if present.iter().all(|p| !p) {
            Self::generate()?.save(dir)?;
            return Self::load(dir);
        }
        for (file, _) in FILES.iter().zip(&present).filter(|(_, p)| !**p).map(|(f, _)| f) {
            match *file {
                "ingest.key" => write_new(dir, file, &Self::generate()?.ingest_key, true)?,
                // Token keys sign nothing stored: a missing pair is simply
                // added (tokens issued with a lost key stop verifying).
                "token.key" if !dir.join("token.pub").exists() => {
                    let fresh = Self::generate()?;
                    write_new(dir, file, &fresh.token_hex, true)?;
                    write_new(dir, "token.pub", &fresh.token_public_hex, false)?;
                }
                "token.key" => anyhow::bail!(
                    "token.key is missing next to token.pub in {}: restore it, or remove token.pub to make a new pair",
                    dir.display()
                ),
                "token.pub" if dir.join("token.pub").exists() => {}
                "token.pub" => {
                    let seed = token_seed(&read_one(dir, "KNOWEDGE_TOKEN_SIGNING_KEY", "token.key")?)?;
                    write_new(dir, file, &knowedge_edge::token::public_key_hex(&seed), false)?;
                }
                "signing.pub" => {
                    let signing = SigningKey::from_hex(&read_one(dir, "KNOWEDGE_SIGNING_KEY", "signing.key")?)
                        .context("signing key (signing.key)")?;
                    write_new(dir, file, &signing.public_key().to_hex(), false)?;
                }
                other => anyhow::bail!(
                    "{} is missing while other keys exist in {}: restore it (a new one would {}), or move the directory away to start afresh",
                    other,
                    dir.display(),
                    if other == "signing.key" {
                        "stop every published model from verifying"
                    } else {
                        "change every learner's pseudonym"
                    }
                ),
            }
        }
        Self::load(dir)
    }

    /// Writes the four files, secret ones readable by the owner only; an
    /// existing file is never overwritten (that is an error).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some((file, _)) = FILES.iter().find(|(f, _)| dir.join(f).exists()) {
            anyhow::bail!("{} exists already; keys are never overwritten", dir.join(file).display());
        }
        for ((file, secret), value) in FILES.iter().zip([
            &self.signing_hex,
            &self.public_hex,
            &self.pseudonym_hex,
            &self.ingest_key,
            &self.token_hex,
            &self.token_public_hex,
        ]) {
            write_new(dir, file, value, *secret)?;
        }
        Ok(())
    }

    /// The signing key.
    pub fn signing(&self) -> Result<SigningKey> {
        SigningKey::from_hex(&self.signing_hex).context("signing key (KNOWEDGE_SIGNING_KEY / signing.key)")
    }

    /// The public key.
    pub fn public(&self) -> Result<PublicKey> {
        PublicKey::from_hex(&self.public_hex).context("public key (KNOWEDGE_SIGNING_PUBLIC_KEY / signing.pub)")
    }

    /// The ingestion key ring: `KNOWEDGE_API_KEYS` if set, else the local ingest key.
    pub fn key_ring(&self) -> Result<knowedge_ingest::KeyRing> {
        let spec = match std::env::var("KNOWEDGE_API_KEYS") {
            Ok(s) => s,
            Err(_) => {
                anyhow::ensure!(
                    !self.ingest_key.is_empty(),
                    "no ingest key: set KNOWEDGE_API_KEYS or run `knowedge keys generate`"
                );
                format!("local:events.write:{}", self.ingest_key)
            }
        };
        knowedge_ingest::KeyRing::parse(&spec).map_err(|e| anyhow::anyhow!("KNOWEDGE_API_KEYS: {e}"))
    }

    /// A learner token for `user`, valid for `ttl` from now, for `audience`
    /// (default `knowedge-edge`), signed with the token key.
    pub fn token(&self, user: &str, ttl: chrono::Duration, audience: Option<&str>) -> Result<String> {
        anyhow::ensure!(
            !self.token_hex.is_empty(),
            "no token signing key: set KNOWEDGE_TOKEN_SIGNING_KEY or run `knowedge keys generate`"
        );
        let seed = token_seed(&self.token_hex)?;
        let audience = audience.unwrap_or(knowedge_edge::token::DEFAULT_AUDIENCE);
        Ok(knowedge_edge::token::issue(&seed, user, audience, ttl, chrono::Utc::now())?)
    }

    /// The pseudonymizer.
    pub fn pseudonymizer(&self) -> Result<Pseudonymizer> {
        Pseudonymizer::from_hex(&self.pseudonym_hex).context("pseudonym key (KNOWEDGE_PSEUDONYM_KEY / pseudonym.key)")
    }
}

/// Writes `dir/file` atomically without replacing anything: the value goes
/// to a temporary file created with its final permissions (0600 for a
/// secret, so it is never readable by others, not even for a moment), which
/// is synced and then linked under its name; linking fails if the name exists.
fn write_new(dir: &Path, file: &str, value: &str, secret: bool) -> Result<()> {
    use std::io::Write;
    let path = dir.join(file);
    let tmp = dir.join(format!(".{file}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let written = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(format!("{value}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, &path)
    })();
    let _ = std::fs::remove_file(&tmp);
    written.with_context(|| format!("writing {}", path.display()))
}

/// A token signing key's seed from hex.
fn token_seed(hex_seed: &str) -> Result<[u8; 32]> {
    hex::decode(hex_seed.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("token signing key (KNOWEDGE_TOKEN_SIGNING_KEY / token.key) must be 32 bytes of hex")
}

/// One key: the environment variable `env` if set, else the file `dir/file`.
fn read_one(dir: &Path, env: &str, file: &str) -> Result<String> {
    if let Ok(v) = std::env::var(env) {
        return Ok(v.trim().to_owned());
    }
    let p = dir.join(file);
    Ok(std::fs::read_to_string(&p)
        .with_context(|| format!("{env} is not set and {} cannot be read (run `knowedge keys generate`)", p.display()))?
        .trim()
        .to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_private_never_overwritten_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::load_or_generate(dir.path()).unwrap();
        #[cfg(unix)]
        for (file, secret) in FILES {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, if secret { 0o600 } else { 0o644 }, "{file}");
        }
        // Saving again is refused and changes nothing.
        assert!(Keys::generate().unwrap().save(dir.path()).unwrap_err().to_string().contains("never overwritten"));
        assert_eq!(Keys::load(dir.path()).unwrap().pseudonym_hex, keys.pseudonym_hex);
        // A lost ingest key is replaced alone; the signing and pseudonym keys stay.
        std::fs::remove_file(dir.path().join("ingest.key")).unwrap();
        let again = Keys::load_or_generate(dir.path()).unwrap();
        assert_eq!((&again.signing_hex, &again.pseudonym_hex), (&keys.signing_hex, &keys.pseudonym_hex));
        assert_ne!(again.ingest_key, keys.ingest_key);
        // Keys made before token keys existed get a token pair added.
        std::fs::remove_file(dir.path().join("token.key")).unwrap();
        std::fs::remove_file(dir.path().join("token.pub")).unwrap();
        let with_tokens = Keys::load_or_generate(dir.path()).unwrap();
        assert_ne!(with_tokens.token_hex, keys.token_hex);
        assert_eq!(with_tokens.signing_hex, keys.signing_hex);
        let jwt = with_tokens.token("u-1", chrono::Duration::minutes(5), None).unwrap();
        let verify = knowedge_edge::token::TokenKeys::from_settings(&with_tokens.token_public_hex, None).unwrap();
        assert_eq!(verify.verify(&jwt, chrono::Utc::now()).unwrap(), "u-1");
        // A lost pseudonym key is not silently replaced.
        std::fs::remove_file(dir.path().join("pseudonym.key")).unwrap();
        assert!(Keys::load_or_generate(dir.path()).unwrap_err().to_string().contains("pseudonym"));
        assert!(!dir.path().join("pseudonym.key").exists());
        // Debug shows no secret; no temporary file is left.
        let shown = format!("{keys:?}");
        assert!(
            !shown.contains(&keys.signing_hex)
                && !shown.contains(&keys.ingest_key)
                && !shown.contains(&keys.pseudonym_hex)
                && !shown.contains(&keys.token_hex)
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp"))
        );
    }
}
