//! Key material for local runs: a directory with three hex files.
//!
//! | file | content | who needs it |
//! |---|---|---|
//! | `signing.key` | ed25519 seed that signs model artifacts | training |
//! | `signing.pub` | the matching public key | the edge, any artifact reader |
//! | `pseudonym.key` | HMAC key for user pseudonyms | ingestion, the edge |
//! | `ingest.key` | API key (scope `events.write`) frontends send events with | ingestion, frontends |
//!
//! In production the same values come from a secret store (AWS Secrets
//! Manager, Spin variables, Workers secrets) through environment variables:
//! `KNOWEDGE_SIGNING_KEY`, `KNOWEDGE_SIGNING_PUBLIC_KEY`, `KNOWEDGE_PSEUDONYM_KEY`,
//! `KNOWEDGE_API_KEYS` (all ingestion keys, `name:scopes:secret,...`).

use std::path::Path;

use anyhow::{Context, Result};
use knowedge_format::artifact::{PublicKey, SigningKey};
use knowedge_format::pseudonym::Pseudonymizer;

/// The keys of a deployment.
#[derive(Clone, Debug)]
pub struct Keys {
    /// Signs artifacts (hex seed).
    pub signing_hex: String,
    /// Verifies artifacts (hex).
    pub public_hex: String,
    /// Pseudonymises users (hex).
    pub pseudonym_hex: String,
    /// The local ingest API key (scope `events.write`).
    pub ingest_key: String,
}

impl Keys {
    /// Fresh random keys.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        let mut pk = [0u8; 32];
        let mut ik = [0u8; 24];
        for buf in [&mut seed[..], &mut pk[..], &mut ik[..]] {
            getrandom::fill(buf).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        }
        let signing = SigningKey::from_seed(seed);
        Ok(Self {
            signing_hex: hex::encode(seed),
            public_hex: signing.public_key().to_hex(),
            pseudonym_hex: hex::encode(pk),
            ingest_key: format!("kn_{}", hex::encode(ik)),
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

    /// Loads keys from `dir`, generating and saving them first if the directory has none.
    pub fn load_or_generate(dir: &Path) -> Result<Self> {
        if !dir.join("signing.pub").exists() || !dir.join("ingest.key").exists() {
            Self::generate()?.save(dir)?;
        }
        Self::load(dir)
    }

    /// Writes the three files (private ones readable by the owner only).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (file, value, private) in [
            ("signing.key", &self.signing_hex, true),
            ("signing.pub", &self.public_hex, false),
            ("pseudonym.key", &self.pseudonym_hex, true),
            ("ingest.key", &self.ingest_key, true),
        ] {
            let p = dir.join(file);
            std::fs::write(&p, format!("{value}\n")).with_context(|| format!("writing {}", p.display()))?;
            #[cfg(unix)]
            if private {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
            }
            #[cfg(not(unix))]
            let _ = private;
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

    /// The pseudonymizer.
    pub fn pseudonymizer(&self) -> Result<Pseudonymizer> {
        Pseudonymizer::from_hex(&self.pseudonym_hex).context("pseudonym key (KNOWEDGE_PSEUDONYM_KEY / pseudonym.key)")
    }
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
