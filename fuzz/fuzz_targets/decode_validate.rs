//! Batch decoding, strict per-event parsing, schema validation and PII
//! redaction must never panic, whatever the bytes; the fast decoding path
//! (`decode_elements`, `validate_fields`) must give what the `Value` path
//! (`decode_batch`, `validate`) gives.
#![no_main]

use knowedge_format::Error;
use knowedge_format::event::{Element, MAX_BATCH_EVENTS, RawEvent, Validator, decode_batch, decode_elements};
use knowedge_format::redact::{Redactions, redact};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else { return };
    let now = chrono::DateTime::from_timestamp(1_795_860_000, 0).unwrap_or_default();
    let validator = Validator::new(now);
    let decoded = decode_batch(body, mode & 1 == 1);
    let elements = decode_elements(body, mode & 1 == 1);
    match (&decoded, &elements) {
        (Ok(raw), Ok(elements)) => {
            assert_eq!(raw.len(), elements.len());
            for (r, e) in raw.iter().zip(elements) {
                assert_eq!(&e.clone().into_raw(), r);
                if let (Element::Fields(f), RawEvent::Json(v)) = (e, r) {
                    assert_eq!(validator.validate_fields(f).map(|e| e.to_event()), validator.validate(v));
                }
            }
        }
        (Ok(raw), Err(Error::TooManyEvents(n))) => assert!(raw.len() == *n && *n > MAX_BATCH_EVENTS),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("decode_batch and decode_elements disagree"),
    }
    if let Ok(events) = decoded {
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
