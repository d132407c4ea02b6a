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

use std::borrow::Cow;

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

/// Number of top-level fields of schema v1.
const FIELDS: usize = 15;

const KNOWN_FIELDS: [&str; FIELDS] = [
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

// Positions in `KNOWN_FIELDS`.
const EVENT_ID: usize = 0;
const TYPE: usize = 1;
const USER_ID: usize = 2;
const ITEM_ID: usize = 3;
const TS: usize = 4;
const PRICE: usize = 5;
const CURRENCY: usize = 6;
const RATING: usize = 7;
const PROGRESS: usize = 8;
const TEXT: usize = 9;
const QUERY: usize = 10;
const SESSION_ID: usize = 11;
const EXPERIMENT: usize = 12;
const VARIANT: usize = 13;
const RECOMMENDATION_ID: usize = 14;

/// Active ISO 4217 currency codes.
const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL \
BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL \
GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD \
KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD \
OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP \
SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

/// Whether `code` is an active ISO 4217 currency code.
pub fn is_currency(code: &str) -> bool {
    // `ISO_4217` is sorted, one code every 4 bytes: a binary search.
    let (codes, code) = (ISO_4217.as_bytes(), code.as_bytes());
    if code.len() != 3 {
        return false;
    }
    let (mut lo, mut hi) = (0, codes.len().div_ceil(4));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match codes[4 * mid..4 * mid + 3].cmp(code) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
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
        let views = std::array::from_fn(|i| match obj.get(KNOWN_FIELDS[i]) {
            None => View::Absent,
            Some(Value::Null) => View::Null,
            Some(Value::String(s)) => View::Str(s),
            Some(Value::Number(n)) => View::Num(n.as_f64()),
            Some(_) => View::Other,
        });
        self.check(&views, problems).map(|e| e.to_event())
    }

    /// Validates an event decoded by [`decode_elements`], borrowing its
    /// strings. Gives exactly what [`Validator::validate`] gives for
    /// [`EventFields::to_value`] (the event id keeps the case it was sent in
    /// until [`EventRef::to_event`]).
    pub fn validate_fields<'b>(&self, fields: &'b EventFields<'_>) -> Result<EventRef<'b>, Vec<Problem>> {
        self.check(&fields.views(), Vec::new())
    }

    /// The schema rules over the known fields, after the unknown-field check
    /// (whose problems come in `problems`).
    fn check<'b>(&self, views: &[View<'b>; FIELDS], mut problems: Vec<Problem>) -> Result<EventRef<'b>, Vec<Problem>> {
        let mut f = Fields { views, problems: &mut problems };

        let event_id = f.string(EVENT_ID, true, 36);
        if let Some(id) = event_id
            && !is_uuid(id)
        {
            f.problems.push(Problem::new("event_id", "uuid", "event_id must be a UUID (8-4-4-4-12 hex digits)"));
        }
        let event_type = match views[TYPE] {
            View::Absent | View::Null => {
                f.problems.push(Problem::new("type", "required", "type is required"));
                None
            }
            View::Str(s) => match EventType::parse(s) {
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
            View::Num(_) | View::Other => {
                f.problems.push(Problem::new("type", "string", "type must be a string"));
                None
            }
        };
        let user_id = f.id(USER_ID, true);
        let item_required = event_type.is_some_and(|t| t != EventType::Search);
        let item_id = f.id(ITEM_ID, item_required);
        let ts = f.timestamp(TS, self);
        let price = f.number(PRICE);
        let currency = f.string(CURRENCY, false, 3);
        let rating = f.number(RATING);
        let progress = f.number(PROGRESS);
        let text = f.string(TEXT, false, MAX_TEXT_CHARS);
        let query = f.string(QUERY, false, MAX_QUERY_CHARS);
        let session_id = f.id(SESSION_ID, false);
        let experiment = f.id(EXPERIMENT, false);
        let variant = f.id(VARIANT, false);
        let recommendation_id = f.id(RECOMMENDATION_ID, false);

        if let Some(c) = currency
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
            let present = |i: usize| !matches!(views[i], View::Absent | View::Null);
            let (required, allowed): (&[usize], &[usize]) = match t {
                EventType::View | EventType::Click => (&[], &[]),
                EventType::Progress => (&[PROGRESS], &[]),
                EventType::Purchase => (&[PRICE, CURRENCY], &[]),
                EventType::Subscribe => (&[], &[PRICE, CURRENCY]),
                EventType::Rate => (&[RATING], &[]),
                EventType::Review => (&[TEXT], &[RATING]),
                EventType::Search => (&[QUERY], &[]),
            };
            for i in [PRICE, CURRENCY, RATING, PROGRESS, TEXT, QUERY] {
                let field = KNOWN_FIELDS[i];
                let is_required = required.contains(&i);
                if is_required && !present(i) {
                    problems.push(Problem::new(field, "required", format!("{field} is required for {t} events")));
                } else if !is_required && !allowed.contains(&i) && present(i) {
                    problems.push(Problem::new(field, "not_allowed", format!("{field} is not allowed on {t} events")));
                }
            }
            if t == EventType::Subscribe && present(PRICE) != present(CURRENCY) {
                problems.push(Problem::new("currency", "together", "price and currency come together"));
            }
            if t == EventType::Search && present(ITEM_ID) {
                problems.push(Problem::new("item_id", "not_allowed", "item_id is not allowed on search events"));
            }
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        match (event_id, event_type, user_id, ts) {
            (Some(event_id), Some(event_type), Some(user_id), Some(ts)) => Ok(EventRef {
                event_id,
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

/// A valid event whose strings borrow from the decoded input (see
/// [`Validator::validate_fields`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EventRef<'a> {
    /// Client-generated UUID, in the case it was sent in.
    pub event_id: &'a str,
    /// What happened.
    pub event_type: EventType,
    /// The learner, as sent.
    pub user_id: &'a str,
    /// The item acted on.
    pub item_id: Option<&'a str>,
    /// When it happened.
    pub ts: DateTime<Utc>,
    /// Price paid.
    pub price: Option<f64>,
    /// ISO 4217 currency of `price`.
    pub currency: Option<&'a str>,
    /// Rating 1-5.
    pub rating: Option<u8>,
    /// Progress 0-1.
    pub progress: Option<f64>,
    /// Review text.
    pub text: Option<&'a str>,
    /// Search query.
    pub query: Option<&'a str>,
    /// Client session.
    pub session_id: Option<&'a str>,
    /// A/B experiment the learner saw.
    pub experiment: Option<&'a str>,
    /// Variant of the experiment.
    pub variant: Option<&'a str>,
    /// Recommendation that led to this event.
    pub recommendation_id: Option<&'a str>,
}

impl EventRef<'_> {
    /// The owned event, as [`Validator::validate`] gives it (event id in lowercase).
    pub fn to_event(&self) -> Event {
        let own = |s: Option<&str>| s.map(str::to_owned);
        Event {
            event_id: self.event_id.to_ascii_lowercase(),
            event_type: self.event_type,
            user_id: self.user_id.to_owned(),
            item_id: own(self.item_id),
            ts: self.ts,
            price: self.price,
            currency: own(self.currency),
            rating: self.rating,
            progress: self.progress,
            text: own(self.text),
            query: own(self.query),
            session_id: own(self.session_id),
            experiment: own(self.experiment),
            variant: own(self.variant),
            recommendation_id: own(self.recommendation_id),
        }
    }
}

/// What the validator sees of one known field.
#[derive(Clone, Copy, Debug)]
enum View<'b> {
    /// Not in the object.
    Absent,
    /// `null`.
    Null,
    /// A string.
    Str(&'b str),
    /// A number (`None` when it has no `f64` value).
    Num(Option<f64>),
    /// A boolean, array or object.
    Other,
}

struct Fields<'v, 'b> {
    views: &'v [View<'b>; FIELDS],
    problems: &'v mut Vec<Problem>,
}

impl<'b> Fields<'_, 'b> {
    fn string(&mut self, i: usize, required: bool, max_chars: usize) -> Option<&'b str> {
        let field = KNOWN_FIELDS[i];
        match self.views[i] {
            View::Absent | View::Null => {
                if required {
                    self.problems.push(Problem::new(field, "required", format!("{field} is required")));
                }
                None
            }
            View::Str(s) => {
                // A string of at most `max_chars` bytes has at most that many characters.
                let n = if s.len() <= max_chars { 0 } else { s.chars().count() };
                if s.is_empty() {
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
                    Some(s)
                }
            }
            View::Num(_) | View::Other => {
                self.problems.push(Problem::new(field, "string", format!("{field} must be a string")));
                None
            }
        }
    }

    fn id(&mut self, i: usize, required: bool) -> Option<&'b str> {
        let s = self.string(i, required, MAX_ID_CHARS)?;
        if !is_printable(s) {
            let field = KNOWN_FIELDS[i];
            self.problems.push(Problem::new(
                field,
                "printable",
                format!("{field} must be printable characters without surrounding spaces"),
            ));
            return None;
        }
        Some(s)
    }

    fn number(&mut self, i: usize) -> Option<f64> {
        let field = KNOWN_FIELDS[i];
        match self.views[i] {
            View::Absent | View::Null => None,
            View::Num(n) => match n {
                Some(x) if x.is_finite() => Some(x),
                _ => {
                    self.problems.push(Problem::new(field, "number", format!("{field} must be a finite number")));
                    None
                }
            },
            View::Str(_) | View::Other => {
                self.problems.push(Problem::new(field, "number", format!("{field} must be a number")));
                None
            }
        }
    }

    fn timestamp(&mut self, i: usize, v: &Validator) -> Option<DateTime<Utc>> {
        let field = KNOWN_FIELDS[i];
        let s = self.string(i, true, 64)?;
        let ts = match DateTime::parse_from_rfc3339(s) {
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

/// Whether `s` has no control characters and no surrounding white space.
fn is_printable(s: &str) -> bool {
    let b = s.as_bytes();
    // Printable ASCII (the common case): only a space can be surrounding white space.
    if b.iter().fold(true, |ok, c| ok & (0x20..0x7f).contains(c)) {
        return b.first() != Some(&b' ') && b.last() != Some(&b' ');
    }
    !s.chars().any(char::is_control) && s.trim() == s
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Whether `s` is a UUID in its 8-4-4-4-12 hex form.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return false;
    }
    // Without early exits, so the check runs straight through.
    let hex = |r: &[u8]| r.iter().fold(true, |ok, c| ok & c.is_ascii_hexdigit());
    hex(&b[..8]) & hex(&b[9..13]) & hex(&b[14..18]) & hex(&b[19..23]) & hex(&b[24..])
}

/// The largest batch accepted, in events (by ingestion, and by the edge that forwards batches to it).
pub const MAX_BATCH_EVENTS: usize = 500;
/// The largest batch body accepted, in bytes (by ingestion, and by the edge that forwards batches to it).
pub const MAX_BATCH_BYTES: usize = 1 << 20;
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
        let text = ndjson_text(body)?;
        return Ok(text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, line)| strict_line(i, line))
            .collect());
    }
    let batch: Batch<'_> = serde_json::from_slice(body).map_err(|e| Error::Batch(e.to_string()))?;
    Ok(batch.events.into_iter().map(|raw| strict_element(raw.get())).collect())
}

/// Decodes a batch body like [`decode_batch`], but decodes the common element
/// (a flat object of schema fields) straight into [`EventFields`] that borrow
/// from `body`, without building a [`Value`] tree.
///
/// Element for element, the result is what [`decode_batch`] gives: an
/// [`Element::Fields`] `f` stands for `RawEvent::Json(f.to_value())`, an
/// [`Element::Raw`] is the very same [`RawEvent`]; batch errors are the same.
/// The one difference: a batch of more than [`MAX_BATCH_EVENTS`] elements,
/// which nobody accepts, is [`Error::TooManyEvents`] with their number, and
/// its elements are not decoded (so a large body of tiny elements costs no
/// more memory than its outline).
pub fn decode_elements(body: &[u8], ndjson: bool) -> Result<Vec<Element<'_>>> {
    if ndjson {
        let text = ndjson_text(body)?;
        let lines = || text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let n = lines().count();
        if n > MAX_BATCH_EVENTS {
            return Err(Error::TooManyEvents(n));
        }
        return Ok(lines()
            .map(|(i, line)| match EventFields::parse(line) {
                Some(f) => Element::Fields(f),
                None => Element::Raw(strict_line(i, line)),
            })
            .collect());
    }
    // The common batch, in one pass: every element a flat object of schema fields.
    if let Ok(events) = flat_batch(body) {
        return Ok(events);
    }
    // Anything else: the batch's structure first, then element by element.
    let batch: Batch<'_> = serde_json::from_slice(body).map_err(|e| Error::Batch(e.to_string()))?;
    if batch.events.len() > MAX_BATCH_EVENTS {
        return Err(Error::TooManyEvents(batch.events.len()));
    }
    Ok(batch
        .events
        .into_iter()
        .map(|raw| match EventFields::parse(raw.get()) {
            Some(f) => Element::Fields(f),
            None => Element::Raw(strict_element(raw.get())),
        })
        .collect())
}

/// The outer structure of a JSON batch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch<'a> {
    #[serde(borrow)]
    events: Vec<&'a serde_json::value::RawValue>,
}

/// Decodes `{"events": [...]}` of at most [`MAX_BATCH_EVENTS`] elements,
/// each a flat object of schema fields; any other body, valid or not, is an
/// error (and goes the element by element way). Whatever it accepts,
/// [`Batch`] accepts too.
fn flat_batch(body: &[u8]) -> serde_json::Result<Vec<Element<'_>>> {
    use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
    struct Events(usize);
    impl<'de> DeserializeSeed<'de> for Events {
        type Value = Vec<Element<'de>>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for Events {
        type Value = Vec<Element<'de>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of flat events")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(self.0);
            // Each element is decoded in its place in `out` (they are large to move).
            loop {
                out.push(Element::Fields(EventFields::empty()));
                let Some(Element::Fields(f)) = out.last_mut() else { break };
                if seq.next_element_seed(Fill(f))?.is_none() {
                    out.pop();
                    break;
                }
                if out.len() > MAX_BATCH_EVENTS {
                    return Err(A::Error::custom("too many events"));
                }
            }
            Ok(out)
        }
    }
    struct Body(usize);
    impl<'de> Visitor<'de> for Body {
        type Value = Vec<Element<'de>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a batch object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
            match map.next_key::<Cow<'de, str>>()? {
                Some(k) if k == "events" => {}
                _ => return Err(A::Error::custom("not a plain batch")),
            }
            let events = map.next_value_seed(Events(self.0))?;
            match map.next_key::<Cow<'de, str>>()? {
                None => Ok(events),
                Some(_) => Err(A::Error::custom("not a plain batch")),
            }
        }
    }
    // Events take 100 bytes or more; room for the largest accepted batch at most.
    let capacity = (body.len() / 100).clamp(1, MAX_BATCH_EVENTS + 1);
    let mut de = serde_json::Deserializer::from_slice(body);
    let events = serde::Deserializer::deserialize_map(&mut de, Body(capacity))?;
    de.end()?;
    Ok(events)
}

fn ndjson_text(body: &[u8]) -> Result<&str> {
    std::str::from_utf8(body).map_err(|e| Error::Batch(format!("body is not UTF-8: {e}")))
}

fn strict_line(i: usize, line: &str) -> RawEvent {
    match parse_strict(line) {
        Ok(v) => RawEvent::Json(v),
        Err(e) => malformed(format!("line {}: {e}", i + 1), line),
    }
}

fn strict_element(raw: &str) -> RawEvent {
    match parse_strict(raw) {
        Ok(v) => RawEvent::Json(v),
        Err(e) => malformed(e, raw),
    }
}

fn malformed(error: String, raw: &str) -> RawEvent {
    use sha2::Digest;
    RawEvent::Malformed { error, len: raw.len(), sha256: hex::encode(sha2::Sha256::digest(raw.as_bytes())) }
}

/// One element of a batch as decoded by [`decode_elements`].
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant, reason = "nearly every element is `Fields`; boxing it costs an allocation each")]
pub enum Element<'a> {
    /// A flat object of schema fields (the common case), not validated yet.
    Fields(EventFields<'a>),
    /// Anything else, exactly as [`decode_batch`] gives it.
    Raw(RawEvent),
}

impl Element<'_> {
    /// The element as [`decode_batch`] gives it.
    pub fn into_raw(self) -> RawEvent {
        match self {
            Element::Fields(f) => RawEvent::Json(f.to_value()),
            Element::Raw(r) => r,
        }
    }
}

/// A JSON object whose keys are all fields of schema v1, each at most once,
/// and whose values are strings, numbers or `null`: what nearly every event
/// is. Strings without escapes borrow from the batch body.
#[derive(Clone, Debug, PartialEq)]
pub struct EventFields<'a> {
    /// Value of each field of `KNOWN_FIELDS`.
    slots: [Slot<'a>; FIELDS],
    /// Positions of the fields present, in the order they came.
    order: [u8; FIELDS],
    /// How many fields are present.
    len: u8,
}

/// The value of one field in [`EventFields`].
#[derive(Clone, Debug, PartialEq)]
enum Slot<'a> {
    Absent,
    Null,
    Str(Cow<'a, str>),
    Num(serde_json::Number),
}

impl<'a> EventFields<'a> {
    /// Decodes one element if it is a flat object of schema fields; `None`
    /// for anything else (other keys, a repeated key, a boolean, array or
    /// object value, invalid JSON), which [`parse_strict`] then handles.
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut de = serde_json::Deserializer::from_str(text);
        let mut f = EventFields::empty();
        serde::de::DeserializeSeed::deserialize(Fill(&mut f), &mut de).ok()?;
        de.end().ok()?;
        Some(f)
    }

    fn empty() -> Self {
        EventFields { slots: [const { Slot::Absent }; FIELDS], order: [0; FIELDS], len: 0 }
    }

    /// The element as a JSON value: what [`parse_strict`] gives for it.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        for &i in &self.order[..usize::from(self.len)] {
            let i = usize::from(i);
            let v = match &self.slots[i] {
                Slot::Absent => continue,
                Slot::Null => Value::Null,
                Slot::Str(s) => Value::String(s.as_ref().to_owned()),
                Slot::Num(n) => Value::Number(n.clone()),
            };
            map.insert(KNOWN_FIELDS[i].to_owned(), v);
        }
        Value::Object(map)
    }

    /// The `event_id` field, when it is a string.
    pub fn event_id(&self) -> Option<&str> {
        match &self.slots[EVENT_ID] {
            Slot::Str(s) => Some(s),
            _ => None,
        }
    }

    fn views(&self) -> [View<'_>; FIELDS] {
        std::array::from_fn(|i| match &self.slots[i] {
            Slot::Absent => View::Absent,
            Slot::Null => View::Null,
            Slot::Str(s) => View::Str(s),
            Slot::Num(n) => View::Num(n.as_f64()),
        })
    }
}

/// Deserializes into an empty [`EventFields`] in place, failing on anything
/// that is not a flat object of schema fields.
struct Fill<'f, 'a>(&'f mut EventFields<'a>);

impl<'de: 'a, 'a> serde::de::DeserializeSeed<'de> for Fill<'_, 'a> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for Fill<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a flat object of event fields")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let f = self.0;
        while let Some(i) = map.next_key_seed(FieldKey)? {
            if !matches!(f.slots[i], Slot::Absent) {
                return Err(serde::de::Error::custom("duplicate key"));
            }
            f.slots[i] = map.next_value_seed(ScalarSeed(std::marker::PhantomData))?;
            f.order[usize::from(f.len)] = i as u8;
            f.len += 1;
        }
        Ok(())
    }
}

/// A key of [`EventFields`]: its position in `KNOWN_FIELDS`.
struct FieldKey;

impl<'de> serde::de::DeserializeSeed<'de> for FieldKey {
    type Value = usize;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for FieldKey {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a field of schema v1")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<usize, E> {
        Ok(match v {
            "event_id" => EVENT_ID,
            "type" => TYPE,
            "user_id" => USER_ID,
            "item_id" => ITEM_ID,
            "ts" => TS,
            "price" => PRICE,
            "currency" => CURRENCY,
            "rating" => RATING,
            "progress" => PROGRESS,
            "text" => TEXT,
            "query" => QUERY,
            "session_id" => SESSION_ID,
            "experiment" => EXPERIMENT,
            "variant" => VARIANT,
            "recommendation_id" => RECOMMENDATION_ID,
            _ => return Err(E::custom("unknown field")),
        })
    }
}

/// A string, number or `null` value of [`EventFields`], built as [`parse_strict`] builds it.
struct ScalarSeed<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> serde::de::DeserializeSeed<'de> for ScalarSeed<'a> {
    type Value = Slot<'a>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Slot<'a>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de: 'a, 'a> serde::de::Visitor<'de> for ScalarSeed<'a> {
    type Value = Slot<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string, number or null")
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Slot<'a>, E> {
        Ok(Slot::Num(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Slot<'a>, E> {
        Ok(Slot::Num(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Slot<'a>, E> {
        serde_json::Number::from_f64(v).map(Slot::Num).ok_or_else(|| E::custom("number is not finite"))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Slot<'a>, E> {
        Ok(Slot::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Slot<'a>, E> {
        Ok(Slot::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Slot<'a>, E> {
        Ok(Slot::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> std::result::Result<Slot<'a>, E> {
        Ok(Slot::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Slot<'a>, E> {
        Ok(Slot::Null)
    }
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

    /// Bodies of every shape: `decode_elements` must give what `decode_batch` gives.
    fn bodies() -> Vec<(Vec<u8>, bool)> {
        let good = r#"{"event_id":"0b6f2d8e-3a51-4c1e-9d0e-5b1f3c7a9e21","type":"view","user_id":"u","item_id":"i","ts":"2026-11-28T11:00:00Z"}"#;
        let elements = [
            good,
            r#"{"event_id":"0B6F2D8E-3A51-4C1E-9D0E-5B1F3C7A9E21","type":"review","user_id":"le\"arner","item_id":"i","ts":"2026-11-28T11:00:00Z","rating":4,"text":"好 13812345678 \u00e9"}"#,
            r#"{"\u0074ype":"view","event_id":null,"price":-0,"rating":18446744073709551615,"progress":-3,"currency":1.5e3}"#,
            r#"{"type":"view","type":"click"}"#,
            r#"{"type":"view","extra":1}"#,
            r#"{"type":"view","text":{"a":1,"a":2}}"#,
            r#"{"type":"view","text":[1,{"b":[]}]}"#,
            r#"{"type":true}"#,
            r#"{"price":1e400}"#,
            r#"{"rating":12345678901234567890123}"#,
            r#"{}"#,
            r#"[]"#,
            r#"1"#,
            r#""view""#,
            r#"null"#,
            r#"{"a":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}"#,
        ];
        let mut out = Vec::new();
        for n in 0..=elements.len() {
            let some: Vec<&str> = elements.iter().copied().cycle().skip(n).take(n.max(1) + 2).collect();
            out.push((format!("{{\"events\":[{}]}}", some.join(",")).into_bytes(), false));
            out.push((format!(" {{ \"events\" : [ {} ] }} \n", some.join(" , ")).into_bytes(), false));
            out.push((some.join("\n").into_bytes(), true));
            out.push((format!("\n{}\r\n \n", some.join("\r\n")).into_bytes(), true));
        }
        for odd in [
            "[]".to_owned(),
            format!("[[{good}]]"),
            format!("{{\"events\":[{good}],\"events\":[]}}"),
            format!("{{\"events\":[{good}],\"x\":1}}"),
            format!("{{\"\\u0065vents\":[{good}]}}"),
            format!("{{\"events\":[{good}]}} x"),
            format!("{{\"events\":[{good},]}}"),
            format!("{{\"events\":[{good}"),
            "{\"events\":[]}".to_owned(),
            "{\"events\":{}}".to_owned(),
            "{}".to_owned(),
            String::new(),
            format!("{{\"events\":[{}]}}", vec![good; MAX_BATCH_EVENTS].join(",")),
            format!("{{\"events\":[{}]}}", vec![good; MAX_BATCH_EVENTS + 1].join(",")),
            format!("{{\"events\":[{}]}}", vec!["{}"; 3 * MAX_BATCH_EVENTS].join(",")),
            format!("{{\"events\":[{},[]]}}", vec!["{}"; MAX_BATCH_EVENTS].join(",")),
            format!("{{\"events\":[{},{{]}}", vec!["{}"; MAX_BATCH_EVENTS + 1].join(",")),
        ] {
            out.push((odd.into_bytes(), false));
        }
        out.push((vec![good; MAX_BATCH_EVENTS + 1].join("\n").into_bytes(), true));
        out.push((vec![good; MAX_BATCH_EVENTS].join("\n\n").into_bytes(), true));
        out.push((b"\xff\xfe".to_vec(), true));
        out.push((b"{\"events\":[\"\xff\"]}".to_vec(), false));
        out
    }

    #[test]
    fn elements_are_what_decode_batch_gives() {
        for (body, ndjson) in bodies() {
            let shown = String::from_utf8_lossy(&body).into_owned();
            let want = decode_batch(&body, ndjson).map_err(|e| e.to_string());
            if let Ok(raw) = &want
                && raw.len() > MAX_BATCH_EVENTS
            {
                assert_eq!(decode_elements(&body, ndjson), Err(Error::TooManyEvents(raw.len())), "{shown}");
                continue;
            }
            let got = decode_elements(&body, ndjson)
                .map(|es| es.into_iter().map(Element::into_raw).collect::<Vec<_>>())
                .map_err(|e| e.to_string());
            assert_eq!(got, want, "{shown}");
        }
        // The common case decodes without a JSON value.
        let body = br#"{"events":[{"type":"view","user_id":"a\"b","price":4}]}"#;
        let got = decode_elements(body, false).unwrap();
        assert!(matches!(&got[..], [Element::Fields(_)]));
    }

    #[test]
    fn validate_fields_is_validate() {
        let v = Validator::new(now());
        let id = "0b6f2d8e-3a51-4c1e-9d0e-5b1f3c7a9e21";
        let values: Vec<Option<Value>> = vec![
            None,
            Some(Value::Null),
            Some(json!("")),
            Some(json!("x")),
            Some(json!(" x")),
            Some(json!("a\u{0007}b")),
            Some(json!("é\u{0085}")),
            Some(json!("x".repeat(129))),
            Some(json!("好".repeat(MAX_TEXT_CHARS + 1))),
            Some(json!("好".repeat(MAX_ID_CHARS))),
            Some(json!(4)),
            Some(json!(-1)),
            Some(json!(4.5)),
            Some(json!(0.5)),
            Some(json!(2e9)),
            Some(json!(u64::MAX)),
            Some(json!("CNY")),
            Some(json!("XXQ")),
            Some(json!("2026-11-28T11:00:00Z")),
            Some(json!("2026-11-28T13:00:00+00:00")),
            Some(json!("2025-01-01T00:00:00Z")),
            Some(json!(id.to_uppercase())),
            Some(json!("0b6f2d8e-3a51-4c1e-9d0e-5b1f3c7a9e2g")),
        ];
        let mut checked = 0;
        for t in EventType::ALL.iter().map(|t| t.as_str()).chain(["nope"]) {
            let mut base = json!({"event_id": id, "type": t, "user_id": "u-1", "ts": "2026-11-28T11:30:00.250Z"});
            match t {
                "search" => base["query"] = json!("rust 入门"),
                "progress" => base["progress"] = json!(0.25),
                "purchase" => (base["price"], base["currency"]) = (json!(9.9), json!("CNY")),
                "rate" => base["rating"] = json!(5),
                "review" => base["text"] = json!("很好"),
                _ => {}
            }
            if t != "search" {
                base["item_id"] = json!("course-1");
            }
            for field in KNOWN_FIELDS {
                for value in &values {
                    let mut event = base.clone();
                    let obj = event.as_object_mut().unwrap();
                    match value {
                        None => obj.remove(field),
                        Some(x) => obj.insert(field.to_owned(), x.clone()),
                    };
                    let text = serde_json::to_string(&event).unwrap();
                    let fields = EventFields::parse(&text).unwrap();
                    assert_eq!(fields.to_value(), parse_strict(&text).unwrap(), "{text}");
                    let got = v.validate_fields(&fields).map(|e| e.to_event());
                    assert_eq!(got, v.validate(&event), "{text}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 9 * FIELDS * values.len());
    }

    #[test]
    fn uuid_and_printable_checks() {
        let old_uuid = |s: &str| {
            let b = s.as_bytes();
            b.len() == 36
                && b.iter().enumerate().all(|(i, c)| match i {
                    8 | 13 | 18 | 23 => *c == b'-',
                    _ => c.is_ascii_hexdigit(),
                })
        };
        let id = "0b6f2d8e-3a51-4c1e-9d0e-5b1f3c7a9e21";
        for i in 0..id.len() {
            for c in ["0", "a", "F", "g", "-", " ", "é"] {
                let s = format!("{}{c}{}", &id[..i], &id[i + 1..]);
                assert_eq!(is_uuid(&s), old_uuid(&s), "{s}");
            }
        }
        let codes: Vec<&str> = ISO_4217.split(' ').collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]) && codes.iter().all(|c| c.len() == 3));
        assert!(codes.iter().all(|c| is_currency(c)));
        for a in b'@'..=b'[' {
            for b in b'A'..=b'Z' {
                for c in [b'A', b'D', b'K', b'N', b'S', b'Y', b'Z', b'['] {
                    let code = String::from_utf8(vec![a, b, c]).unwrap();
                    assert_eq!(is_currency(&code), codes.contains(&code.as_str()), "{code}");
                }
            }
        }
        for odd in ["", "CN", "CNYY", "cny", "CN Y", " CNY", "CNY ", "ZWG", "AED", "ZWGA"] {
            assert_eq!(is_currency(odd), codes.contains(&odd), "{odd}");
        }
        let old_printable = |s: &str| !(s.chars().any(|c| c.is_control()) || s.trim() != s);
        for c in (0..0x3000u32).filter_map(char::from_u32) {
            for s in [format!("{c}"), format!("a{c}"), format!("{c}b"), format!("a{c}b")] {
                assert_eq!(is_printable(&s), old_printable(&s), "{s:?}");
            }
        }
    }
}
