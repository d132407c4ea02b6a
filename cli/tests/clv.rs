//! `knowedge clv` on CDNOW (../shared/data/cdnow): the fitted BG/NBD and
//! Gamma-Gamma parameters and the holdout totals against the `lifetimes`
//! package, the JSON report's shape, and bad input.
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::{Command, Output};

use serde_json::Value;

fn knowedge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_knowedge")).args(args).output().unwrap()
}

fn cdnow() -> std::path::PathBuf {
    let file = knowedge_test_support::shared_data().join("cdnow/CDNOW_master.txt");
    assert!(
        file.is_file(),
        "CDNOW is missing at {}; it must be at ../shared/data/cdnow beside the repository",
        file.display()
    );
    file
}

/// lifetimes 0.11.3 (pandas 3.1.1, scipy 1.17.1) on the same file and split:
/// `calibration_and_holdout_data(freq="D", freq_multiplier=7, calibration_period_end="1997-09-30",
/// observation_period_end="1998-06-30")`, `BetaGeoFitter().fit`, `GammaGammaFitter().fit` on the
/// customers with paid repeat purchases, and the sum of
/// `conditional_expected_number_of_purchases_up_to_time(39, …)` (docs/ANALYTICS.md, "Lifetime value";
/// `shared/analytics/compare/lifetimes_cdnow.py`).
const LIFETIMES: [(&str, &str, f64); 9] = [
    ("bgnbd", "r", 0.251624011424104),
    ("bgnbd", "alpha", 4.788945170327024),
    ("bgnbd", "a", 0.7234330357287222),
    ("bgnbd", "b", 2.1610869813720113),
    ("gammagamma", "p", 6.27535859283659),
    ("gammagamma", "q", 3.624450210390983),
    ("gammagamma", "v", 14.983688961949833),
    ("holdout", "predicted_total", 16873.737004341998),
    ("holdout", "mae", 0.8187422923395608),
];

#[test]
fn clv_on_cdnow_agrees_with_lifetimes() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("clv.json");
    let out = knowedge(&[
        "clv",
        "--cdnow",
        cdnow().to_str().unwrap(),
        "--calibration-end",
        "1997-09-30",
        "--holdout-end",
        "1998-06-30",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("23570 customers") && stdout.contains("BG/NBD") && stdout.contains("Gamma-Gamma"),
        "{stdout}"
    );

    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&report["bgnbd"]), ["a", "alpha", "b", "r"]);
    assert_eq!(keys(&report["gammagamma"]), ["p", "q", "v"]);
    assert_eq!(keys(&report["holdout"]), ["actual_total", "mae", "predicted_total"]);
    for (group, name, want) in LIFETIMES {
        let got = report[group][name].as_f64().unwrap();
        assert!(((got - want) / want).abs() < 0.01, "{group}.{name}: {got}, lifetimes {want}");
    }
    // The holdout's actual purchase days are counted, not estimated: exactly lifetimes' sum.
    assert_eq!(report["holdout"]["actual_total"].as_f64().unwrap(), 19684.0);
    assert_eq!(report["data"]["customers"].as_u64().unwrap(), 23570);
    assert_eq!(report["data"]["spend_customers"].as_u64().unwrap(), 9450);
}

fn fails_with(args: &[&str], message: &str) {
    let out = knowedge(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(stderr.contains(message), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}

#[test]
fn clv_refuses_bad_input_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let missing = path("missing.txt");
    fails_with(&["clv", "--cdnow", &missing], "reading");

    let malformed = path("malformed.txt");
    std::fs::write(&malformed, " customer_id date cds dollars\n 00001 19970101 1 11.77\n 00002 1997-01-12 1 12.00\n")
        .unwrap();
    fails_with(&["clv", "--cdnow", &malformed], "line 3: date `1997-01-12` is not YYYYMMDD");

    let short = path("short.txt");
    std::fs::write(&short, " 00001 19970101 1\n").unwrap();
    fails_with(&["clv", "--cdnow", &short], "line 1: expected 4 fields");

    let file = cdnow();
    let cdnow = file.to_str().unwrap();
    fails_with(
        &["clv", "--cdnow", cdnow, "--calibration-end", "1998-06-30", "--holdout-end", "1997-09-30"],
        "the calibration period must end before the holdout period",
    );
    fails_with(&["clv", "--cdnow", cdnow, "--calibration-end", "1997-13-01"], "--calibration-end");
    fails_with(&["clv", "--cdnow", cdnow, "--calibration-end", "1996-01-01"], "no customer made a first purchase");
}
