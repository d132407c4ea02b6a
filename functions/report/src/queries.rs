//! The report queries, as `.sql` files (`functions/report/sql/`).
//!
//! They use only what DataFusion, Spark SQL and Athena (Trino) share:
//! `CAST`, `CASE`, `COALESCE`, `COUNT(DISTINCT …)`, `ROW_NUMBER()`/`NTILE()`
//! windows, `date_trunc('week', …)`, `element_at` (struct fields through a subquery alias), interval literals such as
//! `INTERVAL '7' DAY`, and the partition column `dt` as text. Parameters are
//! written `{{name}}` and replaced by quoted SQL literals ([`bind`]).

use crate::{Error, Result};

/// The views every report reads (`events_unique`, `purchases_cny`, `exposures_unique`).
pub const VIEWS: &str = include_str!("../sql/views.sql");

/// One report query.
#[derive(Clone, Copy, Debug)]
pub struct Query {
    /// Its name (the file's stem).
    pub name: &'static str,
    /// Its SQL.
    pub sql: &'static str,
}

macro_rules! query {
    ($name:literal) => {
        Query { name: $name, sql: include_str!(concat!("../sql/", $name, ".sql")) }
    };
}

/// The dashboard's queries, in panel order.
pub const DASHBOARD: &[Query] = &[
    query!("kpis"),
    query!("daily"),
    query!("funnel"),
    query!("cohorts"),
    query!("completion"),
    query!("top_items"),
    query!("recommendations"),
    query!("volume"),
    query!("dead_letters"),
];

/// One variant's counts in an experiment (parameter `experiment`).
pub const EXPERIMENT: Query = query!("experiment");

/// Per learner: purchase days and spend, for lifetime value.
pub const PURCHASE_DAYS: Query = query!("purchase_days");

/// Per paying learner: RFM scores and segment.
pub const RFM: Query = query!("rfm");

/// Every query with its name: the dashboard's, then the others.
pub fn all() -> Vec<Query> {
    let mut all = DASHBOARD.to_vec();
    all.extend([EXPERIMENT, PURCHASE_DAYS, RFM]);
    all
}

/// The statements of a file: split at `;`, with `--` comments removed.
pub fn statements(sql: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .map(|l| match l.find("--") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// `sql` with each `{{name}}` replaced by `value` as a quoted SQL string.
///
/// # Errors
/// [`Error::Invalid`] when a placeholder is left without a value.
pub fn bind(sql: &str, params: &[(&str, &str)]) -> Result<String> {
    let mut out = sql.to_owned();
    for (name, value) in params {
        let literal = format!("'{}'", value.replace('\'', "''"));
        out = out.replace(&format!("{{{{{name}}}}}"), &literal);
    }
    if let Some(start) = out.find("{{") {
        let rest = &out[start..];
        let end = rest.find("}}").map_or(rest.len(), |i| i + 2);
        return Err(Error::Invalid(format!("query parameter {} has no value", &rest[..end])));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn views_split_into_statements() {
        let s = statements(VIEWS);
        assert_eq!(s.len(), 3);
        assert!(s.iter().all(|s| s.starts_with("CREATE VIEW")));
    }

    #[test]
    fn parameters_are_quoted() {
        assert_eq!(bind("x = {{e}}", &[("e", "it's")]).unwrap(), "x = 'it''s'");
        assert!(bind("x = {{e}}", &[]).is_err());
    }

    #[test]
    fn every_query_is_one_statement() {
        for q in all() {
            assert_eq!(statements(q.sql).len(), 1, "{}", q.name);
        }
    }
}
