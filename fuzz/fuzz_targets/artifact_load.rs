//! The artifact reader and the model built from it must refuse or accept any
//! bytes without panicking, and a model that loads must answer queries.
//!
//! Raw input exercises the header, version, length and signature checks; the
//! same input split into a manifest and a tensor section and signed with the
//! test key exercises the manifest and safetensors parsers and the tensor
//! checks behind the signature.
#![no_main]

use knowedge_format::artifact::{SigningKey, assemble};
use knowedge_scoring::model::{Filters, Model};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_seed([7; 32]);
    let public = key.public_key();
    let _ = Model::from_artifact(data, &public);
    if data.len() < 2 {
        return;
    }
    let split = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    let (manifest, tensors) = data[2..].split_at(split);
    let Ok(bytes) = assemble(manifest, tensors, &key) else { return };
    if let Ok(model) = Model::from_artifact(&bytes, &public) {
        let _ = model.recommend(None, 10, &Filters::default());
        let filters = Filters { category: Some("python".into()), max_price: Some(10.0), exclude: vec!["a".into()] };
        for item in model.items().iter().take(2) {
            let _ = model.similar(item, 10);
        }
        let _ = model.recommend(Some("u"), 100, &filters);
    }
});
