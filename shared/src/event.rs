//! Learner events, schema version 1.
//!
//! A frontend sends events in batches. Each event is a JSON object:
//!
//! | field | type | rule |
//! |---|---|---|
//! | `event_id` | string | required; a UUID chosen by the client, the idempotency key |
//! | `type` | string | required; one of [`EventType`] |
//! | `user_id` | string | required; 1-128 printable characters |
//! | `item_id` | string | required except for `search`; 1-128 printable characters |
//! | `ts` | string | required; RFC 3339 time, at most 5 minutes ahead of the receiver, not older than its window |
//! | `price`, `currency` | number, string | `purchase` (required), `subscribe` (optional, together); price ≥ 0, ISO 4217 code |
//! | `rating` | integer | `rate` (required), `review` (optional); 1-5 |
//! | `progress` | number | `progress` (required); 0-1 |
//! | `text` | string | `review` (required); 1-5,000 characters |
//! | `query` | string | `search` (required); 1-1,000 characters |
//! | `session_id`, `experiment`, `variant`, `recommendation_id` | string | optional on every type; 1-128 printable characters |
//!
//! Unknown top-level fields are refused. [`Validator::validate`] reports every
//! problem of an event, not only the first.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// The event schema version this crate implements.
pub const SCHEMA_VERSION: u32 = 1;

/// Longest accepted id (user, item, session, experiment ...), in characters.
pub const MAX_ID_CHARS: usize = 128;
/// Longest accepted review text, in characters.
pub const MAX_TEXT_CHARS: usize = 5_000;
/// Longest accepted search query, in characters.
pub const MAX_QUERY_CHARS: usize = 1_000;

/// What a learner did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// Opened an item's page.
    View,
    /// Clicked an item (for instance a recommendation).
    Click,
    /// Progressed through a lesson, book or audio (`progress` 0-1).
    Progress,
    /// Bought an item (`price`, `currency`).
    Purchase,
    /// Subscribed to a column or series.
    Subscribe,
    /// Rated an item 1-5.
    Rate,
    /// Wrote a review (`text`).
    Review,
    /// Searched the catalogue (`query`).
    Search,
}

impl EventType {
    /// All event types, in schema order.
    pub const ALL: [EventType; 8] = [
        EventType::View,
        EventType::Click,
        EventType::Progress,
        EventType::Purchase,
        EventType::Subscribe,
        EventType::Rate,
        EventType::Review,
        EventType::Search,
    ];

    /// The wire name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::View => "view",
            EventType::Click => "click",
            EventType::Progress => "progress",
            EventType::Purchase => "purchase",
            EventType::Subscribe => "subscribe",
            EventType::Rate => "rate",
            EventType::Review => "review",
            EventType::Search => "search",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether the event is a purchase-like conversion (the item is owned afterwards).
    pub fn is_conversion(self) -> bool {
        matches!(self, EventType::Purchase | EventType::Subscribe)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A valid learner event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Client-generated UUID; the idempotency key.
    pub event_id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The learner (raw from a client; pseudonymous once ingested).
    pub user_id: String,
    /// The item acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// When it happened.
    pub ts: DateTime<Utc>,
    /// Price paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// ISO 4217 currency of `price`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Rating 1-5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    /// Progress 0-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    /// Review text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Search query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Client session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// A/B experiment the learner saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// Variant of the experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Recommendation that led to this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation_id: Option<String>,
}

/// One thing wrong with an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The offending field (empty for the event as a whole).
    pub field: String,
    /// A stable rule name, for machines.
    pub rule: String,
    /// A sentence for people.
    pub message: String,
}

impl Problem {
    fn new(field: &str, rule: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_owned(), rule: rule.to_owned(), message: message.into() }
    }
}

const KNOWN_FIELDS: [&str; 15] = [
    "event_id",
    "type",
    "user_id",
    "item_id",
    "ts",
    "price",
    "currency",
    "rating",
    "progress",
    "text",
    "query",
    "session_id",
    "experiment",
    "variant",
    "recommendation_id",
];

/// Active ISO 4217 currency codes.
const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL \
BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL \
GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD \
KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD \
OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP \
SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

/// Whether `code` is an active ISO 4217 currency code.
pub fn is_currency(code: &str) -> bool {
    code.len() == 3 && ISO_4217.split(' ').any(|c| c == code)
}

/// Checks raw JSON events against schema version 1.
#[derive(Clone, Debug)]
pub struct Validator {
    /// The receiver's clock.
    pub now: DateTime<Utc>,
    /// How far in the past `ts` may lie.
    pub max_age: Duration,
    /// How far in the future `ts` may lie (clock skew).
    pub max_skew: Duration,
}

impl Validator {
    /// Default window for old events: 30 days.
    pub const DEFAULT_MAX_AGE_DAYS: i64 = 30;

    /// A validator with the default windows (30 days back, 5 minutes ahead).
    pub fn new(now: DateTime<Utc>) -> Self {
        Self { now, max_age: Duration::days(Self::DEFAULT_MAX_AGE_DAYS), max_skew: Duration::minutes(5) }
    }

    /// Validates one raw event, returning the typed event or every problem found.
    pub fn validate(&self, value: &Value) -> Result<Event, Vec<Problem>> {
        let Some(obj) = value.as_object() else {
            return Err(vec![Problem::new("", "object", "an event must be a JSON object")]);
        };
        let mut problems = Vec::new();
        for key in obj.keys() {
            if !KNOWN_FIELDS.contains(&key.as_str()) {
                problems.push(Problem::new(
                    key,
                    "unknown_field",
                    format!("`{key}` is not a field of schema v{SCHEMA_VERSION}"),
                ));
            }
        }
        let mut f = Fields { obj, problems: &mut problems };

        let event_id = f.string("event_id", true, 36);
        if let Some(id) = &event_id
            && !is_uuid(id)
        {
            f.problems.push(Problem::new("event_id", "uuid", "event_id must be a UUID (8-4-4-4-12 hex digits)"));
        }
        let event_type = match obj.get("type") {
            None | Some(Value::Null) => {
                f.problems.push(Problem::new("type", "required", "type is required"));
                None
            }
            Some(Value::String(s)) => match EventType::parse(s) {
                Some(t) => Some(t),
                None => {
                    f.problems.push(Problem::new(
                        "type",
                        "enum",
                        format!("unknown type `{}`; expected one of view, click, progress, purchase, subscribe, rate, review, search", truncate(s)),
                    ));
                    None
                }
            },
            Some(_) => {
                f.problems.push(Problem::new("type", "string", "type must be a string"));
                None
            }
        };
        let user_id = f.id("user_id", true);
        let item_required = event_type.is_some_and(|t| t != EventType::Search);
        let item_id = f.id("item_id", item_required);
        let ts = f.timestamp("ts", self);
        let price = f.number("price");
        let currency = f.string("currency", false, 3);
        let rating = f.number("rating");
        let progress = f.number("progress");
        let text = f.string("text", false, MAX_TEXT_CHARS);
        let query = f.string("query", false, MAX_QUERY_CHARS);
        let session_id = f.id("session_id", false);
        let experiment = f.id("experiment", false);
        let variant = f.id("variant", false);
        let recommendation_id = f.id("recommendation_id", false);

        if let Some(c) = &currency
            && !is_currency(c)
        {
            problems.push(Problem::new(
                "currency",
                "iso4217",
                format!("`{}` is not an ISO 4217 currency code", truncate(c)),
            ));
        }
        if let Some(p) = price
            && !(0.0..=1e9).contains(&p)
        {
            problems.push(Problem::new("price", "range", "price must be between 0 and 1e9"));
        }
        let rating = match rating {
            Some(r) if r.fract() == 0.0 && (1.0..=5.0).contains(&r) => Some(r as u8),
            Some(_) => {
                problems.push(Problem::new("rating", "range", "rating must be an integer from 1 to 5"));
                None
            }
            None => None,
        };
        if let Some(p) = progress
            && !(0.0..=1.0).contains(&p)
        {
            problems.push(Problem::new("progress", "range", "progress must be between 0 and 1"));
        }

        if let Some(t) = event_type {
            let present = |k: &str| obj.get(k).is_some_and(|v| !v.is_null());
            let (required, allowed): (&[&str], &[&str]) = match t {
                EventType::View | EventType::Click => (&[], &[]),
                EventType::Progress => (&["progress"], &[]),
                EventType::Purchase => (&["price", "currency"], &[]),
                EventType::Subscribe => (&[], &["price", "currency"]),
                EventType::Rate => (&["rating"], &[]),
                EventType::Review => (&["text"], &["rating"]),
                EventType::Search => (&["query"], &[]),
            };
            for field in ["price", "currency", "rating", "progress", "text", "query"] {
                let is_required = required.contains(&field);
                if is_required && !present(field) {
                    problems.push(Problem::new(field, "required", format!("{field} is required for {t} events")));
                } else if !is_required && !allowed.contains(&field) && present(field) {
                    problems.push(Problem::new(field, "not_allowed", format!("{field} is not allowed on {t} events")));
                }
            }
            if t == EventType::Subscribe && present("price") != present("currency") {
                problems.push(Problem::new("currency", "together", "price and currency come together"));
            }
            if t == EventType::Search && present("item_id") {
                problems.push(Problem::new("item_id", "not_allowed", "item_id is not allowed on search events"));
            }
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        match (event_id, event_type, user_id, ts) {
            (Some(event_id), Some(event_type), Some(user_id), Some(ts)) => Ok(Event {
                event_id: event_id.to_ascii_lowercase(),
                event_type,
                user_id,
                item_id,
                ts,
                price,
                currency,
                rating,
                progress,
                text,
                query,
                session_id,
                experiment,
                variant,
                recommendation_id,
            }),
            _ => Err(vec![Problem::new("", "required", "required fields are missing")]),
        }
    }
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    problems: &'a mut Vec<Problem>,
}

impl Fields<'_> {
    fn string(&mut self, field: &str, required: bool, max_chars: usize) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.problems.push(Problem::new(field, "required", format!("{field} is required")));
                }
                None
            }
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n == 0 {
                    self.problems.push(Problem::new(field, "length", format!("{field} must not be empty")));
                    None
                } else if n > max_chars {
                    self.problems.push(Problem::new(
                        field,
                        "length",
                        format!("{field} is {n} characters; at most {max_chars} are allowed"),
                    ));
                    None
                } else {
                    Some(s.clone())
                }
            }
            Some(_) => {
                self.problems.push(Problem::new(field, "string", format!("{field} must be a string")));
                None
            }
        }
    }

    fn id(&mut self, field: &str, required: bool) -> Option<String> {
        let s = self.string(field, required, MAX_ID_CHARS)?;
        if s.chars().any(|c| c.is_control()) || s.trim() != s {
            self.problems.push(Problem::new(
                field,
                "printable",
                format!("{field} must be printable characters without surrounding spaces"),
            ));
            return None;
        }
        Some(s)
    }

    fn number(&mut self, field: &str) -> Option<f64> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() => Some(x),
                _ => {
                    self.problems.push(Problem::new(field, "number", format!("{field} must be a finite number")));
                    None
                }
            },
            Some(_) => {
                self.problems.push(Problem::new(field, "number", format!("{field} must be a number")));
                None
            }
        }
    }

    fn timestamp(&mut self, field: &str, v: &Validator) -> Option<DateTime<Utc>> {
        let s = self.string(field, true, 64)?;
        let ts = match DateTime::parse_from_rfc3339(&s) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => {
                self.problems.push(Problem::new(field, "rfc3339", format!("{field} must be an RFC 3339 time: {e}")));
                return None;
            }
        };
        if ts > v.now + v.max_skew {
            self.problems.push(Problem::new(
                field,
                "future",
                format!("{field} lies more than {} minutes ahead of the receiver's clock", v.max_skew.num_minutes()),
            ));
            return None;
        }
        if ts < v.now - v.max_age {
            self.problems.push(Problem::new(
                field,
                "too_old",
                format!("{field} is older than the accepted window of {} days", v.max_age.num_days()),
            ));
            return None;
        }
        Some(ts)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Whether `s` is a UUID in its 8-4-4-4-12 hex form.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The largest batch accepted, in events.
pub const MAX_BATCH_EVENTS: usize = 500;
/// The deepest nesting accepted inside one event.
pub const MAX_DEPTH: usize = 16;

/// One element of a batch as decoded: its JSON value, or why it is not valid JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum RawEvent {
    /// Well-formed JSON (no duplicate keys, bounded nesting).
    Json(Value),
    /// Not acceptable JSON: the parser's message and the element's length in bytes.
    Malformed {
        /// Where and why it broke.
        error: String,
        /// Length of the element in bytes.
        len: usize,
        /// SHA-256 of the element's bytes, hex (to match it with client logs without keeping it).
        sha256: String,
    },
}

/// Decodes a batch body: a JSON object `{"events": [...]}` or, with
/// `ndjson`, one JSON object per line.
///
/// The batch's outer structure must be valid (else [`Error::Batch`] with the
/// line and column where it broke); each element is then decoded on its own,
/// strictly (duplicate keys and nesting deeper than [`MAX_DEPTH`] are
/// refused), so one bad event does not sink the others.
pub fn decode_batch(body: &[u8], ndjson: bool) -> Result<Vec<RawEvent>> {
    if ndjson {
        let text = std::str::from_utf8(body).map_err(|e| Error::Batch(format!("body is not UTF-8: {e}")))?;
        return Ok(text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, line)| match parse_strict(line) {
                Ok(v) => RawEvent::Json(v),
                Err(e) => malformed(format!("line {}: {e}", i + 1), line),
            })
            .collect());
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Batch<'a> {
        #[serde(borrow)]
        events: Vec<&'a serde_json::value::RawValue>,
    }
    let batch: Batch<'_> = serde_json::from_slice(body).map_err(|e| Error::Batch(e.to_string()))?;
    Ok(batch
        .events
        .into_iter()
        .map(|raw| match parse_strict(raw.get()) {
            Ok(v) => RawEvent::Json(v),
            Err(e) => malformed(e, raw.get()),
        })
        .collect())
}

fn malformed(error: String, raw: &str) -> RawEvent {
    use sha2::Digest;
    RawEvent::Malformed { error, len: raw.len(), sha256: hex::encode(sha2::Sha256::digest(raw.as_bytes())) }
}

/// Parses one JSON value, refusing duplicate object keys and nesting deeper than [`MAX_DEPTH`].
pub fn parse_strict(text: &str) -> std::result::Result<Value, String> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Strict { depth: 0 }.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

struct Strict {
    depth: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Value, E> {
        serde_json::Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("number is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict { depth: self.depth + 1 })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(serde::de::Error::custom(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                let shown: String = k.chars().take(40).collect();
                return Err(serde::de::Error::custom(format!("duplicate key `{shown}`")));
            }
            let v = map.next_value_seed(Strict { depth: self.depth + 1 })?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn purchase() -> Value {
        json!({
            "event_id": "0b6f2d8e-3a51-4c1e-9d0e-5b1f3c7a9e21",
            "type": "purchase",
            "user_id": "learner-42",
            "item_id": "course-rust-101",
            "ts": "2026-11-28T11:59:00Z",
            "price": 99.0,
            "currency": "CNY",
            "session_id": "s-1"
        })
    }

    #[test]
    fn accepts_a_valid_purchase() {
        let e = Validator::new(now()).validate(&purchase()).unwrap();
        assert_eq!(e.event_type, EventType::Purchase);
        assert_eq!(e.price, Some(99.0));
        assert_eq!(e.currency.as_deref(), Some("CNY"));
    }

    #[test]
    fn reports_every_problem() {
        let mut v = purchase();
        v["event_id"] = json!("nope");
        v["price"] = json!(-1);
        v["currency"] = json!("XXQ");
        v["rating"] = json!(4);
        v["colour"] = json!("red");
        v["ts"] = json!("2026-11-28T13:00:00Z");
        let problems = Validator::new(now()).validate(&v).unwrap_err();
        let rules: Vec<(&str, &str)> = problems.iter().map(|p| (p.field.as_str(), p.rule.as_str())).collect();
        for expected in [
            ("colour", "unknown_field"),
            ("event_id", "uuid"),
            ("price", "range"),
            ("currency", "iso4217"),
            ("rating", "not_allowed"),
            ("ts", "future"),
        ] {
            assert!(rules.contains(&expected), "missing {expected:?} in {rules:?}");
        }
    }

    #[test]
    fn per_type_rules() {
        let v = Validator::new(now());
        let base = |t: &str| json!({"event_id": "0b6f2d8e-3a51-4c1e-9d0e-5b1f3c7a9e21", "type": t, "user_id": "u", "item_id": "i", "ts": "2026-11-28T11:00:00Z"});
        assert!(v.validate(&base("view")).is_ok());
        let err = v.validate(&base("rate")).unwrap_err();
        assert_eq!((err[0].field.as_str(), err[0].rule.as_str()), ("rating", "required"));
        let mut r = base("rate");
        r["rating"] = json!(4.5);
        assert_eq!(v.validate(&r).unwrap_err()[0].rule, "range");
        let mut p = base("progress");
        p["progress"] = json!(1.5);
        assert_eq!(v.validate(&p).unwrap_err()[0].rule, "range");
        let mut s = base("search");
        s["query"] = json!("rust 入门");
        assert_eq!(v.validate(&s).unwrap_err()[0].field, "item_id");
        s.as_object_mut().unwrap().remove("item_id");
        assert!(v.validate(&s).is_ok());
        let mut old = base("view");
        old["ts"] = json!("2025-01-01T00:00:00Z");
        assert_eq!(v.validate(&old).unwrap_err()[0].rule, "too_old");
        let mut long = base("review");
        long["text"] = json!("好".repeat(MAX_TEXT_CHARS + 1));
        assert_eq!(v.validate(&long).unwrap_err()[0].rule, "length");
        let mut ctl = base("view");
        ctl["user_id"] = json!("a\u{0007}b");
        assert_eq!(v.validate(&ctl).unwrap_err()[0].rule, "printable");
        assert_eq!(v.validate(&json!([1])).unwrap_err()[0].rule, "object");
    }

    #[test]
    fn decodes_both_batch_forms() {
        let body = br#"{"events":[{"a":1},{"b":2}]}"#;
        assert_eq!(decode_batch(body, false).unwrap().len(), 2);
        let nd = b"{\"a\":1}\n\n{\"b\":2}\n{oops\n";
        let got = decode_batch(nd, true).unwrap();
        assert_eq!(got.len(), 3);
        assert!(matches!(&got[2], RawEvent::Malformed { error, .. } if error.starts_with("line 4")));
        assert!(matches!(decode_batch(b"{\"events\":[", false), Err(Error::Batch(_))));
        assert!(matches!(decode_batch(b"{\"events\":[],\"x\":1}", false), Err(Error::Batch(_))));
        assert!(matches!(decode_batch(b"\xff\xfe", true), Err(Error::Batch(_))));
    }

    #[test]
    fn strict_parsing() {
        assert!(parse_strict(r#"{"a":1,"b":{"c":[1,2]}}"#).is_ok());
        assert!(parse_strict(r#"{"a":1,"a":2}"#).unwrap_err().contains("duplicate key `a`"));
        assert!(parse_strict(r#"{"a":{"b":1,"b":1}}"#).unwrap_err().contains("duplicate"));
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(parse_strict(&deep).unwrap_err().contains("nesting"));
        assert!(parse_strict("NaN").is_err());
        assert!(parse_strict("{} {}").is_err());
        let body = br#"{"events":[{"a":1,"a":2},{"b":2}]}"#;
        let got = decode_batch(body, false).unwrap();
        assert!(matches!(&got[0], RawEvent::Malformed { .. }));
        assert_eq!(got[1], RawEvent::Json(serde_json::json!({"b": 2})));
    }
}
