//! What a dead letter may keep of a rejected event.
//!
//! A rejected event can hold anything a client sent: a phone number as a
//! numeric `user_id`, an `email` field, an address in a review. The dead
//! letter keeps only what this policy allows, so nothing raw and personal
//! reaches the lake through it:
//!
//! | field | kept as |
//! |---|---|
//! | `event_id`, `type`, `item_id`, `ts`, `price`, `currency`, `rating`, `progress`, `experiment`, `variant`, `recommendation_id`, `schema_version` | as sent when a string of at most [`MAX_KEPT_CHARS`] characters, a number or a boolean (strings and numbers with personal data found by [`redact`] are redacted); any other shape is replaced by its description, `{"omitted": "<JSON type>", "len": <characters or elements>}` |
//! | `user_id`, `session_id` | the keyed pseudonym of the value, whatever its JSON type (a string as is, a number as its decimal text, anything else as its canonical JSON: see [`canonical_text`]); `null` stays `null` |
//! | `text`, `query` | redacted text when a string of at most 5,000 (`text`) or 1,000 (`query`) characters; else its description |
//! | anything else | dropped; its name is listed in `dropped_fields` when the name itself is harmless ([`is_harmless_name`]), else only counted in `dropped_unnamed` |
//!
//! An element that is not a JSON object is replaced by its description.
//! The problems found keep every rule; a problem about a field whose name is
//! not harmless names no field, and every message is redacted
//! ([`sanitize_problems`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::{MAX_ID_CHARS, MAX_QUERY_CHARS, MAX_TEXT_CHARS, Problem};
use crate::pseudonym::Pseudonymizer;
use crate::redact::{self, Redactions};

/// Longest string kept in an allowlisted field, in characters.
pub const MAX_KEPT_CHARS: usize = MAX_ID_CHARS;

/// Longest field name listed among the dropped fields.
pub const MAX_NAME_CHARS: usize = 32;

/// Fields kept as sent when they have a harmless shape.
pub const KEPT_FIELDS: [&str; 12] = [
    "event_id",
    "type",
    "item_id",
    "ts",
    "price",
    "currency",
    "rating",
    "progress",
    "experiment",
    "variant",
    "recommendation_id",
    "schema_version",
];

/// Fields replaced by their keyed pseudonym.
pub const PSEUDONYMISED_FIELDS: [&str; 2] = ["user_id", "session_id"];

/// Free-text fields kept redacted.
pub const REDACTED_FIELDS: [&str; 2] = ["text", "query"];

/// What the policy keeps of one rejected element.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sanitized {
    /// The kept fields (a JSON object), or the description of an element
    /// that is not an object.
    pub value: Value,
    /// Names of the dropped fields whose names are harmless, in the order sent.
    pub dropped_fields: Vec<String>,
    /// How many dropped fields had a name that is not harmless.
    pub dropped_unnamed: usize,
    /// Personal data redacted from kept strings.
    pub redactions: Redactions,
}

/// Applies the policy (see the module docs) to a rejected element.
pub fn sanitize(value: &Value, pseudonymizer: &Pseudonymizer) -> Sanitized {
    let mut out = Sanitized::default();
    let Some(obj) = value.as_object() else {
        out.value = describe(value);
        return out;
    };
    let mut kept = Map::new();
    for (name, v) in obj {
        let name = name.as_str();
        let clean = if KEPT_FIELDS.contains(&name) {
            keep(v, MAX_KEPT_CHARS, &mut out.redactions)
        } else if PSEUDONYMISED_FIELDS.contains(&name) {
            match v {
                Value::Null => Value::Null,
                v => Value::String(pseudonymizer.pseudonymize(&canonical_text(v))),
            }
        } else if REDACTED_FIELDS.contains(&name) {
            let max = if name == "text" { MAX_TEXT_CHARS } else { MAX_QUERY_CHARS };
            match v {
                Value::String(_) | Value::Null => keep(v, max, &mut out.redactions),
                v => describe(v),
            }
        } else {
            if is_harmless_name(name) {
                out.dropped_fields.push(name.to_owned());
            } else {
                out.dropped_unnamed += 1;
            }
            continue;
        };
        kept.insert(name.to_owned(), clean);
    }
    out.value = Value::Object(kept);
    out
}

/// The problems of a rejected element as a dead letter keeps them: every
/// problem and rule, a field name only when [`is_harmless_name`] (else
/// empty), messages redacted, and the message of an unnamed field replaced.
pub fn sanitize_problems(problems: &[Problem]) -> Vec<Problem> {
    problems
        .iter()
        .map(|p| {
            if p.field.is_empty() || is_harmless_name(&p.field) {
                let mut ignored = Redactions::default();
                let message = redact::redact(&p.message, &mut ignored).unwrap_or_else(|| p.message.clone());
                Problem { field: p.field.clone(), rule: p.rule.clone(), message }
            } else {
                Problem {
                    field: String::new(),
                    rule: p.rule.clone(),
                    message: "a field whose name is not kept (it may hold personal data)".into(),
                }
            }
        })
        .collect()
}

/// Whether a field name may be written as is: 1-32 lowercase ASCII
/// letters, digits and `_`, starting with a letter, without a run of more
/// than 4 digits, and without anything [`redact`] finds.
pub fn is_harmless_name(name: &str) -> bool {
    let b = name.as_bytes();
    let shape = !b.is_empty()
        && b.len() <= MAX_NAME_CHARS
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
    let mut run = 0;
    let short_runs = b.iter().all(|c| {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        run <= 4
    });
    shape && short_runs && redact::redact(name, &mut Redactions::default()).is_none()
}

/// The text a non-string id is pseudonymised from: a string as is, a number
/// as its JSON text (`13812345678`), `true`/`false`/`null`, and arrays and
/// objects as compact JSON with object keys sorted (by their UTF-8 bytes).
pub fn canonical_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        v => {
            let mut out = String::new();
            canonical_json(v, &mut out);
            out
        }
    }
}

fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&map[k.as_str()], out);
            }
            out.push('}');
        }
        v => out.push_str(&v.to_string()),
    }
}

/// A kept value: a short string (redacted), a number (redacted to a string
/// when its text is personal data), a boolean or null; anything else described.
fn keep(v: &Value, max_chars: usize, counts: &mut Redactions) -> Value {
    match v {
        Value::Null | Value::Bool(_) => v.clone(),
        Value::String(s) if s.chars().count() <= max_chars => match redact::redact(s, counts) {
            Some(clean) => Value::String(clean),
            None => v.clone(),
        },
        Value::Number(n) => match redact::redact(&n.to_string(), counts) {
            Some(clean) => Value::String(clean),
            None => v.clone(),
        },
        v => describe(v),
    }
}

/// `{"omitted": "<JSON type>", "len": <characters or elements>}`.
pub fn describe(value: &Value) -> Value {
    let (kind, len) = match value {
        Value::Null => ("null", 0),
        Value::Bool(_) => ("boolean", 0),
        Value::Number(n) => ("number", n.to_string().len()),
        Value::String(s) => ("string", s.chars().count()),
        Value::Array(a) => ("array", a.len()),
        Value::Object(o) => ("object", o.len()),
    };
    let mut m = Map::new();
    m.insert("omitted".into(), Value::String(kind.into()));
    m.insert("len".into(), Value::from(len));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn p() -> Pseudonymizer {
        Pseudonymizer::new(&[9; 32]).unwrap()
    }

    #[test]
    fn ids_of_any_type_are_pseudonymised() {
        let p = p();
        for (user, text) in [
            (json!("13812345678"), "13812345678"),
            (json!(13812345678u64), "13812345678"),
            (json!(["13812345678"]), "[\"13812345678\"]"),
            (json!({"z": 1, "a": "x@y.cn"}), "{\"a\":\"x@y.cn\",\"z\":1}"),
            (json!(true), "true"),
        ] {
            let s = sanitize(&json!({"user_id": user, "session_id": user}), &p);
            assert_eq!(s.value["user_id"], p.pseudonymize(text), "{user}");
            assert_eq!(s.value["session_id"], p.pseudonymize(text));
        }
        assert_eq!(sanitize(&json!({"user_id": null}), &p).value["user_id"], Value::Null);
    }

    #[test]
    fn allowlisted_fields_keep_harmless_shapes_only() {
        let s = sanitize(
            &json!({"event_id": "e-1", "type": "view", "price": 9.5, "rating": 9, "progress": true,
                    "item_id": "x".repeat(129), "variant": [1, 2], "experiment": {"a": 1},
                    "currency": "13812345678", "recommendation_id": 13812345678u64, "ts": "a@b.cn"}),
            &p(),
        );
        let v = &s.value;
        assert_eq!((v["event_id"].clone(), v["type"].clone()), (json!("e-1"), json!("view")));
        assert_eq!(
            (v["price"].clone(), v["rating"].clone(), v["progress"].clone()),
            (json!(9.5), json!(9), json!(true))
        );
        assert_eq!(v["item_id"], json!({"omitted": "string", "len": 129}));
        assert_eq!(v["variant"], json!({"omitted": "array", "len": 2}));
        assert_eq!(v["experiment"], json!({"omitted": "object", "len": 1}));
        assert_eq!(v["currency"], "[PHONE]");
        assert_eq!(v["recommendation_id"], "[PHONE]");
        assert_eq!(v["ts"], "[EMAIL]");
        assert_eq!((s.redactions.phone, s.redactions.email), (2, 1));
    }

    #[test]
    fn texts_are_redacted_and_unknown_fields_dropped() {
        let s = sanitize(
            &json!({"text": "call 13812345678", "query": {"q": "x"}, "email": "a@b.cn", "phone": 1,
                    "a@b.cn": 1, "13812345678": 2, "Name": 3}),
            &p(),
        );
        assert_eq!(s.value, json!({"text": "call [PHONE]", "query": {"omitted": "object", "len": 1}}));
        let mut dropped = s.dropped_fields.clone();
        dropped.sort();
        assert_eq!(dropped, ["email", "phone"]);
        assert_eq!(s.dropped_unnamed, 3);
        assert_eq!(sanitize(&json!("13812345678"), &p()).value, json!({"omitted": "string", "len": 11}));
        assert_eq!(sanitize(&json!([1, 2, 3]), &p()).value, json!({"omitted": "array", "len": 3}));
    }

    #[test]
    fn names_and_problems() {
        for ok in ["email", "phone", "x_1", "utm_source2026"] {
            assert!(is_harmless_name(ok), "{ok}");
        }
        for bad in ["", "Email", "a@b.cn", "13812345678", "u13812345678", "a b", "_x", &"a".repeat(33)] {
            assert!(!is_harmless_name(bad), "{bad}");
        }
        let problems = [
            Problem { field: "a@b.cn".into(), rule: "unknown_field".into(), message: "`a@b.cn` is unknown".into() },
            Problem { field: "type".into(), rule: "type".into(), message: "unknown type `13812345678`".into() },
        ];
        let clean = sanitize_problems(&problems);
        assert_eq!(clean.len(), 2);
        assert_eq!((clean[0].field.as_str(), clean[0].rule.as_str()), ("", "unknown_field"));
        assert!(!clean[0].message.contains("a@b.cn"));
        assert_eq!(clean[1].message, "unknown type `[PHONE]`");
    }
}
