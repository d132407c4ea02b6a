//! Removing one learner from a signed model artifact, and signed erasure
//! receipts (GDPR Art. 17, PIPL Art. 47).
//!
//! [`forget_user`] takes an artifact's bytes, verifies them, and writes a new
//! artifact without the learner: the id in `users` (manifest list or the
//! `user_ids` / `user_id_ends` tensors), the learner's row of `user_factors`
//! (F32 or I8; `user_factor_scale` is kept, so every other learner's factors
//! and scores stay bit for bit the same), and the learner's lists in every
//! per-user CSR pair (`user_seen_*`, `user_history_*`, and any other
//! `user_<name>_offsets` + `user_<name>_items`). Any other tensor whose name
//! starts with `user_` is refused ([`Error::Tensors`]) rather than copied, so
//! a per-user tensor a later writer adds cannot silently keep the learner.
//! Item tensors (factors, neighbours, popularity) are aggregates over every
//! learner and are kept: the next training run on the erased lake drops the
//! learner's share of them too.
//!
//! A receipt is a JSON document signed with the artifact signing key
//! ([`sign_receipt`], [`verify_receipt`]): an envelope
//! `{"receipt": <body>, "signature": <hex>, "key_id": <hex>}` where the
//! signature is the ed25519 signature of the 66-byte message
//! `"knowedge model artifact v2 blake3\0" ‖ BLAKE3(c)`, and `c` is the body
//! framed as an artifact container without tensors: `"KNWMODEL"`, `2u32`,
//! `len(body) as u32`, `0u64` (little endian), then the body bytes exactly as
//! they appear in the envelope. A receipt body is never a valid manifest
//! (it has no `kind` and no tensors), so a receipt signature cannot pass for
//! an artifact.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::artifact::{self, Artifact, ArtifactBuilder, PublicKey, SigningKey, TensorData};
use crate::{Error, Result};

/// Whether the verified artifact `bytes` holds the (pseudonymous) user.
pub fn holds_user(bytes: &[u8], public: &PublicKey, pseudonym: &str) -> Result<bool> {
    let a = Artifact::read(bytes, public)?;
    Ok(a.manifest.users.iter().any(|u| u == pseudonym))
}

/// What [`forget_user`] produced.
#[derive(Clone, Debug)]
pub struct Forgotten {
    /// The new signed artifact.
    pub bytes: Vec<u8>,
    /// Tensors that had a row or a list of the learner, in name order.
    pub tensors_changed: Vec<String>,
    /// Users left in the model.
    pub users_left: usize,
}

/// Writes the artifact `bytes` (verified with `public`) again without the
/// user `pseudonym`, as model `model_id` created at `created_at` (moved to
/// one millisecond after the old `created_at` if it is not later), signed
/// with `signing`. `None` when the model does not hold the user.
///
/// The new manifest keeps everything else and records the model it was
/// derived from in `params.derived_from`.
pub fn forget_user(
    bytes: &[u8],
    public: &PublicKey,
    signing: &SigningKey,
    pseudonym: &str,
    model_id: &str,
    created_at: DateTime<Utc>,
) -> Result<Option<Forgotten>> {
    let mut a = Artifact::read(bytes, public)?;
    let m = a.manifest.users.len();
    let Some(u) = a.manifest.users.iter().position(|x| x == pseudonym) else { return Ok(None) };
    let mut tensors = std::mem::take(&mut a.tensors);
    let mut changed = Vec::new();

    // Per-user CSR pairs: `<prefix>_offsets` [m + 1] and `<prefix>_items`.
    let prefixes: Vec<String> = tensors
        .keys()
        .filter(|k| k.starts_with("user_"))
        .filter_map(|k| k.strip_suffix("_offsets").map(str::to_owned))
        .filter(|p| tensors.contains_key(&format!("{p}_items")))
        .collect();
    for prefix in prefixes {
        let (off_name, items_name) = (format!("{prefix}_offsets"), format!("{prefix}_items"));
        let bad = |why: &str| Error::Tensors(format!("{off_name}: {why}"));
        let offsets = match tensors.remove(&off_name) {
            Some((_, TensorData::U32(v))) if v.len() == m + 1 => v,
            _ => return Err(bad("expected U32 [users + 1]")),
        };
        let items = match tensors.remove(&items_name) {
            Some((_, TensorData::U32(v))) => v,
            _ => return Err(bad("its items are not U32")),
        };
        let (start, end) = (offsets[u] as usize, offsets[u + 1] as usize);
        if start > end || end > items.len() {
            return Err(bad("not a valid CSR offset list"));
        }
        let removed = (end - start) as u32;
        let mut new_items = Vec::with_capacity(items.len() - (end - start));
        new_items.extend_from_slice(&items[..start]);
        new_items.extend_from_slice(&items[end..]);
        let mut new_offsets = Vec::with_capacity(m);
        new_offsets.extend_from_slice(&offsets[..=u]);
        new_offsets.extend(offsets[u + 2..].iter().map(|o| o - removed));
        let n = new_offsets.len();
        tensors.insert(off_name.clone(), (vec![n], TensorData::U32(new_offsets)));
        let n = new_items.len();
        tensors.insert(items_name.clone(), (vec![n], TensorData::U32(new_items)));
        changed.extend([off_name, items_name]);
    }

    // Per-user rows: the factor matrix.
    if let Some((shape, data)) = tensors.remove("user_factors") {
        if shape.len() != 2 || shape[0] != m {
            return Err(Error::Tensors(format!("user_factors: expected [{m}, dims], found {shape:?}")));
        }
        let d = shape[1];
        let row = u * d..(u + 1) * d;
        let data = match data {
            TensorData::F32(mut v) if v.len() == m * d => {
                v.drain(row);
                TensorData::F32(v)
            }
            TensorData::I8(mut v) if v.len() == m * d => {
                v.drain(row);
                TensorData::I8(v)
            }
            _ => return Err(Error::Tensors("user_factors: expected F32 or I8 values of its shape".into())),
        };
        tensors.insert("user_factors".into(), (vec![m - 1, d], data));
        changed.push("user_factors".into());
    }
    if let Some(unknown) =
        tensors.keys().find(|k| k.starts_with("user_") && !changed.contains(k) && *k != "user_factor_scale")
    {
        return Err(Error::Tensors(format!("{unknown}: a per-user tensor this version cannot remove the user from")));
    }

    let mut manifest = a.manifest;
    let old_id = std::mem::take(&mut manifest.model_id);
    let users: Vec<String> =
        manifest.users.iter().enumerate().filter(|(i, _)| *i != u).map(|(_, s)| s.into()).collect();
    manifest.users = users.iter().collect();
    manifest.model_id = model_id.to_owned();
    let floor = manifest.created_at + TimeDelta::milliseconds(1);
    manifest.created_at = created_at.max(floor);
    manifest.params.insert("derived_from".into(), serde_json::Value::String(old_id));
    // The builder adds the id tensors (and the `id-tensors` requirement) itself.
    let mut b = ArtifactBuilder::new(manifest.kind, manifest.dims);
    *b.manifest_mut() = manifest;
    for (name, (shape, data)) in tensors {
        b.tensor(&name, shape, data);
    }
    changed.push("user_ids".into());
    changed.sort();
    Ok(Some(Forgotten { bytes: b.sign(signing)?, tensors_changed: changed, users_left: m - 1 }))
}

/// A signed receipt as stored: the body exactly as signed, and the signature.
#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    receipt: &'a serde_json::value::RawValue,
    signature: String,
    key_id: String,
}

/// Frames a receipt body as an artifact container without tensors (see the module docs).
fn receipt_container(body: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(body.len()).map_err(|_| Error::Manifest("receipt exceeds 4 GiB".into()))?;
    let mut c = Vec::with_capacity(24 + body.len());
    c.extend_from_slice(artifact::MAGIC);
    c.extend_from_slice(&artifact::FORMAT_VERSION.to_le_bytes());
    c.extend_from_slice(&len.to_le_bytes());
    c.extend_from_slice(&0u64.to_le_bytes());
    c.extend_from_slice(body);
    Ok(c)
}

/// Signs a receipt body (any JSON value) with the artifact signing key;
/// returns the envelope's bytes (see the module docs).
pub fn sign_receipt<T: Serialize>(body: &T, key: &SigningKey) -> Result<Vec<u8>> {
    let body = serde_json::to_vec(body).map_err(|e| Error::Manifest(e.to_string()))?;
    let signed = artifact::assemble(&body, &[], key)?;
    let signature = hex::encode(&signed[signed.len() - 64..]);
    let raw: Box<serde_json::value::RawValue> =
        serde_json::from_slice(&body).map_err(|e| Error::Manifest(e.to_string()))?;
    let envelope = Envelope { receipt: &raw, signature, key_id: key.public_key().key_id() };
    serde_json::to_vec_pretty(&envelope).map_err(|e| Error::Manifest(e.to_string()))
}

/// Verifies a receipt envelope with the public key; returns its body.
/// Refuses with [`Error::Manifest`] (not an envelope) or [`Error::BadSignature`].
pub fn verify_receipt(envelope: &[u8], public: &PublicKey) -> Result<serde_json::Value> {
    let e: Envelope<'_> = serde_json::from_slice(envelope).map_err(|e| Error::Manifest(format!("receipt: {e}")))?;
    let sig: [u8; 64] = hex::decode(&e.signature)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| Error::Manifest("receipt signature is not 64 hex bytes".into()))?;
    let key_bytes: [u8; 32] = hex::decode(public.to_hex())
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| Error::Key("public key must be 32 bytes".into()))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes).map_err(|e| Error::Key(e.to_string()))?;
    let mut message = b"knowedge model artifact v2 blake3\0".to_vec();
    message.extend_from_slice(blake3::hash(&receipt_container(e.receipt.get().as_bytes())?).as_bytes());
    use ed25519_dalek::Verifier;
    key.verify(&message, &ed25519_dalek::Signature::from_bytes(&sig)).map_err(|_| Error::BadSignature)?;
    serde_json::from_str(e.receipt.get()).map_err(|e| Error::Manifest(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::artifact::{ModelKind, quantize_factors};

    fn ts(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_764_000_000 + s, 0).unwrap()
    }

    fn mf(key: &SigningKey) -> Vec<u8> {
        let mut b = ArtifactBuilder::new(ModelKind::Mf, 2);
        b.items(vec!["a".into(), "b".into(), "c".into()]).users(vec!["u0".into(), "u1".into(), "u2".into()]);
        b.factors_8bit(&[1.0, 0.5, -0.25, 0.75, 0.5, -1.0], &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap();
        b.seen(&[vec![0], vec![1, 2], vec![2]]);
        b.manifest_mut().model_id = "m1".into();
        b.manifest_mut().created_at = ts(100);
        b.sign(key).unwrap()
    }

    fn itemitem(key: &SigningKey) -> Vec<u8> {
        let mut b = ArtifactBuilder::new(ModelKind::ItemItem, 0);
        b.items(vec!["a".into(), "b".into()]).users(vec!["u0".into(), "u1".into(), "u2".into()]);
        b.neighbours(&[vec![(1, 0.5)], vec![(0, 0.25)]]);
        b.history(&[vec![0], vec![0, 1], vec![1]]);
        b.seen(&[vec![0], vec![0, 1], vec![1]]);
        b.manifest_mut().model_id = "ii".into();
        b.sign(key).unwrap()
    }

    #[test]
    fn the_user_leaves_every_per_user_tensor_and_the_others_stay() {
        let key = SigningKey::from_seed([3; 32]);
        let public = key.public_key();
        let old = mf(&key);
        assert!(holds_user(&old, &public, "u1").unwrap());
        let f = forget_user(&old, &public, &key, "u1", "m2", ts(50)).unwrap().unwrap();
        assert_eq!(f.users_left, 2);
        assert!(!holds_user(&f.bytes, &public, "u1").unwrap());
        let mut a = Artifact::read(&f.bytes, &public).unwrap();
        assert_eq!(a.manifest.model_id, "m2");
        assert!(a.manifest.created_at > ts(100), "created_at moves past the old model's");
        assert_eq!(a.manifest.params["derived_from"], "m1");
        assert_eq!(a.manifest.users.iter().collect::<Vec<_>>(), ["u0", "u2"]);
        let (_, q) = quantize_factors(&[1.0, 0.5, -0.25, 0.75, 0.5, -1.0]).unwrap();
        let rows: Vec<i8> = q[..2].iter().chain(&q[4..]).copied().collect();
        assert_eq!(a.take_i8("user_factors", &[2, 2]).unwrap(), rows);
        let mut old_a = Artifact::read(&old, &public).unwrap();
        assert_eq!(a.take_f32("user_factor_scale", &[1]).unwrap(), old_a.take_f32("user_factor_scale", &[1]).unwrap());
        assert_eq!(a.take_i8("item_factors", &[3, 2]).unwrap(), old_a.take_i8("item_factors", &[3, 2]).unwrap());
        assert_eq!(a.take_u32("user_seen_offsets", Some(3)).unwrap(), [0, 1, 2]);
        assert_eq!(a.take_u32("user_seen_items", None).unwrap(), [0, 2]);
        // A model without the user is left alone.
        assert!(forget_user(&f.bytes, &public, &key, "u1", "m3", ts(200)).unwrap().is_none());
        // Bytes that do not verify are refused.
        let other = SigningKey::from_seed([4; 32]);
        assert_eq!(forget_user(&old, &other.public_key(), &key, "u1", "x", ts(0)).unwrap_err(), Error::BadSignature);
    }

    #[test]
    fn item_item_histories_lose_the_user() {
        let key = SigningKey::from_seed([3; 32]);
        let public = key.public_key();
        for (gone, left_history) in [("u0", vec![0, 2, 3]), ("u2", vec![0, 1, 3]), ("u1", vec![0, 1, 2])] {
            let f = forget_user(&itemitem(&key), &public, &key, gone, "ii2", ts(0)).unwrap().unwrap();
            let mut a = Artifact::read(&f.bytes, &public).unwrap();
            assert_eq!(a.take_u32("user_history_offsets", Some(3)).unwrap(), left_history, "{gone}");
            assert_eq!(
                f.tensors_changed,
                ["user_history_items", "user_history_offsets", "user_ids", "user_seen_items", "user_seen_offsets"]
            );
            assert_eq!(a.take_u32("item_neighbour_items", None).unwrap(), [1, 0]);
        }
        let f = forget_user(&itemitem(&key), &public, &key, "u1", "ii2", ts(0)).unwrap().unwrap();
        let mut a = Artifact::read(&f.bytes, &public).unwrap();
        assert_eq!(a.take_u32("user_history_items", None).unwrap(), [0, 1]);
    }

    #[test]
    fn unknown_per_user_tensors_are_refused() {
        let key = SigningKey::from_seed([3; 32]);
        let mut b = ArtifactBuilder::new(ModelKind::Popularity, 0);
        b.items(vec!["a".into()]).users(vec!["u0".into()]);
        b.tensor("user_age", vec![1], TensorData::F32(vec![30.0]));
        let bytes = b.sign(&key).unwrap();
        let e = forget_user(&bytes, &key.public_key(), &key, "u0", "p2", ts(0)).unwrap_err();
        assert!(e.to_string().contains("user_age"), "{e}");
    }

    #[test]
    fn receipts_verify_and_refuse_any_change() {
        let key = SigningKey::from_seed([5; 32]);
        let body = serde_json::json!({"job_id": "j1", "objects": [{"path": "events/x.parquet", "rows_removed": 3}]});
        let env = sign_receipt(&body, &key).unwrap();
        assert_eq!(verify_receipt(&env, &key.public_key()).unwrap(), body);
        let text = String::from_utf8(env.clone()).unwrap();
        let tampered = text.replace("\"rows_removed\":3", "\"rows_removed\":4");
        assert_ne!(tampered, text);
        assert_eq!(verify_receipt(tampered.as_bytes(), &key.public_key()).unwrap_err(), Error::BadSignature);
        let other = SigningKey::from_seed([6; 32]);
        assert_eq!(verify_receipt(&env, &other.public_key()).unwrap_err(), Error::BadSignature);
        assert!(matches!(verify_receipt(b"{}", &key.public_key()), Err(Error::Manifest(_))));
        // A receipt's signature does not make it an artifact.
        let v: serde_json::Value = serde_json::from_slice(&env).unwrap();
        let container = receipt_container(v["receipt"].to_string().as_bytes()).unwrap();
        let mut forged = container.clone();
        forged.extend_from_slice(&hex::decode(v["signature"].as_str().unwrap()).unwrap());
        assert!(artifact::verify(&forged, &key.public_key()).is_err());
    }
}
