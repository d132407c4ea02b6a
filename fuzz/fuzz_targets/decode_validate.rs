//! Batch decoding, strict per-event parsing, schema validation and PII
//! redaction must never panic, whatever the bytes.
#![no_main]

use knowedge_shared::event::{RawEvent, Validator, decode_batch};
use knowedge_shared::redact::{Redactions, redact};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else { return };
    let now = chrono::DateTime::from_timestamp(1_795_860_000, 0).unwrap_or_default();
    let validator = Validator::new(now);
    if let Ok(events) = decode_batch(body, mode & 1 == 1) {
        for e in events {
            if let RawEvent::Json(v) = e {
                if let Ok(ev) = validator.validate(&v) {
                    let mut c = Redactions::default();
                    for t in [ev.text.as_deref(), ev.query.as_deref()].into_iter().flatten() {
                        let _ = redact(t, &mut c);
                    }
                }
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let mut c = Redactions::default();
        if let Some(out) = redact(text, &mut c) {
            assert!(c.total() > 0);
            assert!(!out.is_empty());
        }
    }
});
