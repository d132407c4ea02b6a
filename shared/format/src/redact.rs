//! Redaction of personal data in free text (review texts, search queries).
//!
//! Finds and replaces, without regular expressions:
//!
//! | kind | rule | placeholder |
//! |---|---|---|
//! | e-mail address | `local@domain.tld` | `[EMAIL]` |
//! | resident ID number | 17 digits + digit or `X`, valid ISO 7064 MOD 11-2 check digit (GB 11643) | `[ID_NUMBER]` |
//! | bank card number | 13-19 digits (groups split by single spaces or hyphens allowed), valid Luhn checksum | `[BANK_CARD]` |
//! | phone number | mainland mobile `1[3-9]` + 9 digits (optionally `+86`/`86`, groups 3-4-4), or `+` and 8-15 digits | `[PHONE]` |
//!
//! Digit runs are taken whole: a number inside a longer run of digits is not
//! matched, so order numbers and timestamps are left alone unless they pass
//! one of the checks above.

use serde::{Deserialize, Serialize};

/// How many of each kind were replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redactions {
    /// E-mail addresses.
    pub email: u32,
    /// Phone numbers.
    pub phone: u32,
    /// Resident ID numbers.
    pub id_number: u32,
    /// Bank card numbers.
    pub bank_card: u32,
}

impl Redactions {
    /// Total replacements.
    pub fn total(&self) -> u32 {
        self.email + self.phone + self.id_number + self.bank_card
    }

    /// Adds another count.
    pub fn add(&mut self, o: &Redactions) {
        self.email += o.email;
        self.phone += o.phone;
        self.id_number += o.id_number;
        self.bank_card += o.bank_card;
    }
}

/// Redacts `text`; returns `None` when nothing was found (the common case, no allocation).
pub fn redact(text: &str, counts: &mut Redactions) -> Option<String> {
    let b = text.as_bytes();
    // Fast path: no '@' and no run of 8+ digits means nothing to do.
    if !b.contains(&b'@') && !has_long_digit_run(b) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut last = 0;
    let mut changed = false;
    while i < b.len() {
        let c = b[i];
        if c == b'@' {
            if let Some((s, e)) = email_at(b, i)
                && s >= last
            {
                out.push_str(&text[last..s]);
                out.push_str("[EMAIL]");
                counts.email += 1;
                last = e;
                i = e;
                changed = true;
                continue;
            }
        } else if (c.is_ascii_digit() || c == b'+') && (i == 0 || !is_word(b[i - 1])) && i >= last {
            if let Some((e, kind)) = number_at(b, i) {
                out.push_str(&text[last..i]);
                let tag = match kind {
                    Kind::Phone => {
                        counts.phone += 1;
                        "[PHONE]"
                    }
                    Kind::Id => {
                        counts.id_number += 1;
                        "[ID_NUMBER]"
                    }
                    Kind::Card => {
                        counts.bank_card += 1;
                        "[BANK_CARD]"
                    }
                };
                out.push_str(tag);
                last = e;
                i = e;
                changed = true;
                continue;
            }
            // Skip the rest of this digit run so its tail is not matched on its own.
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'+') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    if !changed {
        return None;
    }
    out.push_str(&text[last..]);
    Some(out)
}

/// Whether `text` holds anything [`redact`] replaces.
pub fn contains_personal_data(text: &str) -> bool {
    redact(text, &mut Redactions::default()).is_some()
}

fn has_long_digit_run(b: &[u8]) -> bool {
    let mut run = 0;
    for &c in b {
        if c.is_ascii_digit() {
            run += 1;
            if run >= 8 {
                return true;
            }
        } else if c != b' ' && c != b'-' {
            run = 0;
        }
    }
    false
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

/// The byte span of an e-mail address around the `@` at `at`.
fn email_at(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut s = at;
    while s > 0 && is_local(b[s - 1]) {
        s -= 1;
    }
    while s < at && b[s] == b'.' {
        s += 1;
    }
    let mut e = at + 1;
    while e < b.len() && is_domain(b[e]) {
        e += 1;
    }
    while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
        e -= 1;
    }
    if s == at || e == at + 1 {
        return None;
    }
    let domain = &b[at + 1..e];
    let dot = domain.iter().rposition(|&c| c == b'.')?;
    let tld = &domain[dot + 1..];
    (dot > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)).then_some((s, e))
}

enum Kind {
    Phone,
    Id,
    Card,
}

/// Reads a number starting at `s`: digit groups joined by single spaces or
/// hyphens, optionally a leading `+`, and an `X` check digit. Returns the end
/// and the kind if it is personal data: the longest run of whole groups that
/// is (so `13812345678 2` still finds the phone number before the `2`).
fn number_at(b: &[u8], s: usize) -> Option<(usize, Kind)> {
    let plus = b[s] == b'+';
    let mut i = s + usize::from(plus);
    let mut digits: Vec<u8> = Vec::with_capacity(24);
    // (end byte, digits so far) after each group.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    loop {
        let g = i;
        while i < b.len() && b[i].is_ascii_digit() && digits.len() < 24 {
            digits.push(b[i] - b'0');
            i += 1;
        }
        if i == g {
            break;
        }
        groups.push((i, digits.len()));
        if i + 1 < b.len() && matches!(b[i], b' ' | b'-') && b[i + 1].is_ascii_digit() {
            i += 1;
        } else {
            break;
        }
    }
    (1..=groups.len()).rev().find_map(|g| {
        let (end, n) = groups[g - 1];
        classify(b, plus, &digits[..n], g, end)
    })
}

/// The kind of the number `digits` (in `groups` groups) ending at `end`, if
/// it is personal data.
fn classify(b: &[u8], plus: bool, digits: &[u8], groups: usize, end: usize) -> Option<(usize, Kind)> {
    // The run must end at a boundary (letters/digits after it make it something else).
    let x_check = end < b.len() && (b[end] == b'X' || b[end] == b'x');
    let boundary = |e: usize| e >= b.len() || !is_word(b[e]);
    if !plus
        && digits.len() == 17
        && x_check
        && groups == 1
        && boundary(end + 1)
        && id_checksum(digits, 10)
        && plausible_birth_date(digits)
    {
        return Some((end + 1, Kind::Id));
    }
    if !boundary(end) {
        return None;
    }
    let n = digits.len();
    if !plus && n == 18 && groups == 1 && id_checksum(&digits[..17], digits[17]) && plausible_birth_date(digits) {
        return Some((end, Kind::Id));
    }
    let mobile = |d: &[u8]| d.len() == 11 && d[0] == 1 && (3..=9).contains(&d[1]);
    if mobile(digits) || (n == 13 && digits[..2] == [8, 6] && mobile(&digits[2..])) {
        return Some((end, Kind::Phone));
    }
    if plus && (8..=15).contains(&n) {
        return Some((end, Kind::Phone));
    }
    if !plus && (13..=19).contains(&n) && luhn(digits) {
        return Some((end, Kind::Card));
    }
    None
}

/// ISO 7064 MOD 11-2 check of the first 17 digits of a resident ID number
/// against `check` (0-9, or 10 for `X`).
fn id_checksum(first17: &[u8], check: u8) -> bool {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17.iter().zip(W).map(|(&d, w)| u32::from(d) * w).sum();
    let expected = (12 - (sum % 11)) % 11;
    u32::from(check) == expected
}

fn plausible_birth_date(d: &[u8]) -> bool {
    let num = |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let (y, m, day) = (num(6..10), num(10..12), num(12..14));
    (1900..=2100).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&day)
}

fn luhn(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &x) in d.iter().rev().enumerate() {
        let mut v = u32::from(x);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> (String, Redactions) {
        let mut c = Redactions::default();
        let out = redact(s, &mut c).unwrap_or_else(|| s.to_owned());
        (out, c)
    }

    #[test]
    fn emails() {
        assert_eq!(r("联系我 zhang.san+ke@mail.example.cn 谢谢").0, "联系我 [EMAIL] 谢谢");
        assert_eq!(r("a@b").0, "a@b");
        assert_eq!(r("@home.com").0, "@home.com");
    }

    #[test]
    fn phones() {
        assert_eq!(r("手机13812345678找我").0, "手机[PHONE]找我");
        assert_eq!(r("call +86 138-1234-5678 now").0, "call [PHONE] now");
        assert_eq!(r("tel 138 1234 5678").0, "tel [PHONE]");
        assert_eq!(r("order 12812345678").0, "order 12812345678", "12x is not a mobile prefix");
        assert_eq!(r("x 2013812345678").0, "x 2013812345678", "part of a longer run");
        // A number in the groups that follow does not hide the phone number.
        assert_eq!(r("打 13812345678 2次").0, "打 [PHONE] 2次");
        assert_eq!(r("13812345678 11010519491231002X").0, "[PHONE] [ID_NUMBER]");
        assert_eq!(r("13812345678-13912345678").0, "[PHONE]-[PHONE]");
    }

    #[test]
    fn resident_ids() {
        // A valid check digit computed with the GB 11643 weights.
        assert_eq!(r("身份证11010519491231002X。").0, "身份证[ID_NUMBER]。");
        assert_eq!(r("身份证110105194912310021").0, "身份证110105194912310021", "bad checksum is kept");
        let (_, c) = r("11010519491231002X");
        assert_eq!(c.id_number, 1);
    }

    #[test]
    fn bank_cards() {
        assert_eq!(r("卡号 4111 1111 1111 1111 谢谢").0, "卡号 [BANK_CARD] 谢谢");
        assert_eq!(r("card 6011000990139424").0, "card [BANK_CARD]");
        assert_eq!(r("card 6011000990139425").0, "card 6011000990139425", "fails Luhn");
    }

    #[test]
    fn counts_and_untouched_text() {
        let (out, c) = r("a@x.com, b@y.org, 13912345678");
        assert_eq!(out, "[EMAIL], [EMAIL], [PHONE]");
        assert_eq!((c.email, c.phone, c.total()), (2, 1, 3));
        let mut c = Redactions::default();
        assert!(redact("这本书很好，2026年买的，第3版", &mut c).is_none());
        assert!(redact("", &mut c).is_none());
        assert!(contains_personal_data("id-13812345678") && !contains_personal_data("course-12"));
        assert_eq!(c.total(), 0);
    }
}
