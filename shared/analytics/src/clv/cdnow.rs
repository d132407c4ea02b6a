//! The CDNOW transaction files: `CDNOW_master.txt` (customer, day as
//! YYYYMMDD, number of CDs, dollars; whitespace-separated, with a header
//! line) and the 1/10 sample `CDNOW_sample.txt` (the same with the sample's
//! own customer number after the master's, no header).

use chrono::NaiveDate;

use super::summary::Transaction;
use crate::{Error, Result};

/// Reads the transactions of a CDNOW file. The first line is skipped when it
/// is a header (its first field is not a number); blank lines are skipped.
/// Customers are named by their master file number.
///
/// # Errors
/// [`Error::Parse`] with the line of the first malformed row; [`Error::Data`]
/// when the file holds no transaction at all.
pub fn parse(text: &str) -> Result<Vec<Transaction>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if out.is_empty() && i == 0 && !fields[0].bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let bad = |message: String| Error::Parse { line: i + 1, message };
        let (customer, date, cds, dollars) = match fields[..] {
            [customer, date, cds, dollars] | [customer, _, date, cds, dollars] => (customer, date, cds, dollars),
            _ => {
                return Err(bad(format!(
                    "expected 4 fields (customer, date, CDs, dollars) or 5 (customer, sample customer, date, CDs, dollars), found {}",
                    fields.len()
                )));
            }
        };
        if !customer.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("customer `{customer}` is not a number")));
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("date `{date}` is not YYYYMMDD")));
        }
        let day = NaiveDate::parse_from_str(date, "%Y%m%d").map_err(|e| bad(format!("date `{date}`: {e}")))?;
        cds.parse::<u32>().map_err(|_| bad(format!("number of CDs `{cds}` is not a whole number")))?;
        let amount: f64 = dollars.parse().map_err(|_| bad(format!("dollar value `{dollars}` is not a number")))?;
        if !(amount.is_finite() && amount >= 0.0) {
            return Err(bad(format!("dollar value `{dollars}` is not a sum of money")));
        }
        out.push(Transaction { customer: customer.to_owned(), day, amount });
    }
    if out.is_empty() {
        return Err(Error::Data("no transactions".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_master_and_sample_layouts() {
        let master = " customer_id  date number_of_cds  dollar_value\n 00001 19970101  1   11.77\n\n 00002 19970112  2   12.00\n";
        let t = parse(master).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].customer, "00001");
        assert_eq!(t[0].day, NaiveDate::from_ymd_opt(1997, 1, 1).unwrap());
        assert_eq!(t[1].amount, 12.0);
        let sample = " 00004 0001 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n";
        let t = parse(sample).unwrap();
        assert_eq!((t[1].customer.as_str(), t[1].amount), ("00004", 29.73));
    }

    #[test]
    fn says_which_line_is_malformed() {
        let cases = [
            ("h\n 1 19970101 1 1.0\n 2 19970101 1\n", 3),
            ("h\n 1 1997-01-01 1 1.0\n", 2),
            ("h\n 1 19970231 1 1.0\n", 2),
            ("h\n 1 19970101 x 1.0\n", 2),
            ("h\n 1 19970101 1 -3\n", 2),
            ("h\n 1 19970101 1 NaN\n", 2),
            ("h\n a 19970101 1 1\n", 2),
        ];
        for (text, line) in cases {
            match parse(text) {
                Err(Error::Parse { line: l, message }) => assert_eq!(l, line, "{text:?}: {message}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert!(matches!(parse("customer date cds dollars\n"), Err(Error::Data(_))));
        assert!(matches!(parse(""), Err(Error::Data(_))));
    }
}
