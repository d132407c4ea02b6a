//! The experiment statistics on simulated traffic: a planted lift is found, an A/A test gives
//! false positives at its stated rate, and a lopsided split is flagged as a sample-ratio
//! mismatch. The traffic comes from a small seeded generator, so every run sees the same numbers.

#![allow(clippy::unwrap_used, missing_docs)]
use knowedge_analytics::experiment::{Moments, Plan, Variant, report, sample_ratio_mismatch, two_proportion, welch};
use knowedge_analytics::special::{normal_cdf, normal_quantile};

/// xorshift64* seeded through splitmix64: enough for simulated traffic, with no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponential with the given mean.
    fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }
}

/// One simulated arm: `learners` learners, each converting with probability `rate` and then
/// spending an exponential amount of mean `spend`; every learner sees 10 recommendations and
/// clicks each with probability 0.05.
fn arm(rng: &mut Rng, name: &str, learners: u64, rate: f64, spend: f64) -> Variant {
    let mut converters = 0;
    let mut clicks = 0;
    let mut revenue = Vec::with_capacity(learners as usize);
    for _ in 0..learners {
        for _ in 0..10 {
            clicks += u64::from(rng.uniform() < 0.05);
        }
        if rng.uniform() < rate {
            converters += 1;
            revenue.push(rng.exponential(spend));
        } else {
            revenue.push(0.0);
        }
    }
    Variant {
        name: name.into(),
        weight: 1.0,
        learners,
        exposures: learners * 10,
        clicks,
        converters,
        revenue: Moments::from_values(&revenue).unwrap(),
    }
}

/// Power of the two-sided two-proportion z-test at level 0.05 (normal approximation).
fn theoretical_power(p1: f64, p2: f64, n: f64) -> f64 {
    let z = -normal_quantile(0.025).unwrap();
    let mean = 0.5 * (p1 + p2);
    let null_se = (2.0 * mean * (1.0 - mean) / n).sqrt();
    let se = ((p1 * (1.0 - p1) + p2 * (1.0 - p2)) / n).sqrt();
    normal_cdf(((p2 - p1).abs() - z * null_se) / se)
}

#[test]
fn a_planted_conversion_lift_is_detected() {
    // 10% against 11% (a relative lift of 10%) with 20,000 learners per arm.
    let (p1, p2, n) = (0.10, 0.11, 20_000);
    let power = theoretical_power(p1, p2, n as f64);
    assert!((0.85..0.95).contains(&power), "theoretical power {power}");
    let runs = 50;
    let mut detected = 0;
    let mut covered = 0;
    for seed in 0..runs {
        let mut rng = Rng::new(1_000 + seed);
        let c = arm(&mut rng, "control", n, p1, 50.0);
        let t = arm(&mut rng, "treatment", n, p2, 50.0);
        let test = two_proportion(c.converters, c.learners, t.converters, t.learners, 0.95).unwrap();
        detected += u32::from(test.p_value < 0.05 && test.statistic > 0.0);
        let lift = test.relative_lift.unwrap();
        covered += u32::from(lift.lower <= 0.1 && 0.1 <= lift.upper);
    }
    let found = f64::from(detected) / runs as f64;
    eprintln!(
        "planted 10% lift: found in {detected} of {runs} runs (theory {power:.3}); interval covered it {covered} times"
    );
    assert!(found >= 0.8, "found in {detected} of {runs} runs, theory says {power:.3}");
    // The 95% interval of the relative lift holds the planted lift in most runs too.
    assert!(covered >= 43, "the interval held the planted lift in {covered} of {runs} runs");
}

#[test]
fn a_planted_revenue_difference_is_detected() {
    // Same conversion, converters spend 50 against 60 on average: revenue per learner 5 against 6.
    let runs = 20;
    let mut detected = 0;
    for seed in 0..runs {
        let mut rng = Rng::new(5_000 + seed);
        let c = arm(&mut rng, "control", 20_000, 0.10, 50.0);
        let t = arm(&mut rng, "treatment", 20_000, 0.10, 60.0);
        let w = welch(&c.revenue, &t.revenue, 0.95).unwrap();
        detected += u32::from(w.p_value < 0.05 && w.statistic > 0.0);
    }
    eprintln!("planted revenue difference: found in {detected} of {runs} runs");
    assert!(detected >= 18, "found in {detected} of {runs} runs");
}

#[test]
fn a_a_runs_give_false_positives_at_the_stated_rate() {
    // 400 experiments where both arms are the same: about 5% should come out below p = 0.05.
    // With 400 runs the count is Binomial(400, 0.05), standard deviation 4.4; the band 8..=36
    // (2%–9%) is more than 2.7 of them either side.
    let runs = 400;
    let (mut conversion, mut revenue, mut ctr, mut srm) = (0, 0, 0, 0);
    for seed in 0..runs {
        let mut rng = Rng::new(90_000 + seed);
        let c = arm(&mut rng, "control", 10_000, 0.10, 50.0);
        let t = arm(&mut rng, "treatment", 10_000, 0.10, 50.0);
        let r = report(&[c, t], 0, &Plan::new(0.10, 0.10)).unwrap();
        let cmp = &r.comparisons[0];
        conversion += u32::from(cmp.conversion.p_value < 0.05);
        revenue += u32::from(cmp.revenue_per_learner.unwrap().p_value < 0.05);
        ctr += u32::from(cmp.ctr.unwrap().p_value < 0.05);
        srm += u32::from(r.sample_ratio.mismatch);
    }
    eprintln!("A/A false positives in {runs} runs: conversion {conversion}, revenue {revenue}, CTR {ctr}");
    for (metric, count) in [("conversion", conversion), ("revenue per learner", revenue), ("CTR", ctr)] {
        assert!((8..=36).contains(&count), "{metric}: {count} false positives in {runs} A/A runs");
    }
    // Equal arms by construction: no sample-ratio mismatch.
    assert_eq!(srm, 0);
}

#[test]
fn a_lopsided_split_is_a_sample_ratio_mismatch() {
    let lopsided = sample_ratio_mismatch(&[10_500, 9_500], &[0.5, 0.5]).unwrap();
    assert!(lopsided.mismatch && lopsided.p_value < 1e-11, "{lopsided:?}");

    // 20,000 learners assigned at random 50/50: no mismatch, in each of 200 seeded runs at
    // a threshold of 0.001 (the chance of any false alarm is about 18%, none of these seeds has one).
    let mut smallest = 1.0_f64;
    for seed in 0..200 {
        let mut rng = Rng::new(7_000 + seed);
        let first = (0..20_000).filter(|_| rng.uniform() < 0.5).count() as u64;
        let s = sample_ratio_mismatch(&[first, 20_000 - first], &[0.5, 0.5]).unwrap();
        smallest = smallest.min(s.p_value);
        assert!(!s.mismatch, "seed {seed}: {first} of 20,000, p = {}", s.p_value);
    }
    eprintln!("fair splits: smallest SRM p-value {smallest:.4}");

    // Weights of 20/80 with a 20/80 split are fair; a 50/50 split against them is not.
    assert!(!sample_ratio_mismatch(&[2_010, 7_990], &[20.0, 80.0]).unwrap().mismatch);
    assert!(sample_ratio_mismatch(&[5_000, 5_000], &[20.0, 80.0]).unwrap().mismatch);
}
