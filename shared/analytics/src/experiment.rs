//! Statistics of an A/B experiment: per-variant rates and revenue, the lift of a
//! treatment over the control with its 95% interval and p-value, a check for a
//! sample-ratio mismatch, and the planned sample size.
//!
//! Everything here is a pure function of counts and sums:
//!
//! * [`Variant`] holds what was counted for one variant (learners, exposures,
//!   clicks, converters and the per-learner revenue as [`Moments`]);
//!   [`Variant::metrics`] gives its CTR, conversion rate and revenue per learner.
//! * [`two_proportion`] compares two rates with the two-proportion z-test
//!   (pooled standard error for the test, unpooled for the interval);
//!   [`welch`] compares two means with Welch's t-test.
//!   Both return a [`Comparison`]: the difference with its interval, the
//!   relative lift (treatment / control − 1) with an interval by the delta
//!   method, the statistic and the two-sided p-value.
//! * [`sample_ratio_mismatch`] tests the learner counts against the configured
//!   weights with a chi-square goodness-of-fit test.
//! * [`sample_size_per_variant`] is the number of learners each variant needs
//!   for a two-proportion test to detect a relative lift.
//! * [`report`] puts them together for a control and its treatments.

use serde::{Deserialize, Serialize};

use crate::special::{chi_square_sf, normal_quantile, normal_sf, student_t_quantile, student_t_sf};
use crate::{Error, Result};

/// The p-value below which [`sample_ratio_mismatch`] flags a mismatch.
pub const SRM_THRESHOLD: f64 = 0.001;

/// The confidence level of the intervals of [`report`].
pub const CONFIDENCE: f64 = 0.95;

/// Count, mean and sum of squared deviations of a sample (the sufficient
/// statistics of Welch's test), built from the values or from n, Σx and Σx².
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Number of values.
    pub n: u64,
    /// Their mean (0 for none).
    pub mean: f64,
    /// Σ (x − mean)².
    pub sum_squared_deviations: f64,
}

impl Moments {
    /// The moments of `values`, by Welford's update (no cancellation).
    ///
    /// # Errors
    /// [`Error::Data`] when a value is not finite.
    pub fn from_values(values: &[f64]) -> Result<Self> {
        let mut m = Moments::default();
        for &x in values {
            if !x.is_finite() {
                return Err(Error::Data(format!("a revenue of {x}")));
            }
            m.n += 1;
            let delta = x - m.mean;
            m.mean += delta / m.n as f64;
            m.sum_squared_deviations += delta * (x - m.mean);
        }
        Ok(m)
    }

    /// The moments from the count, the sum and the sum of squares of the values.
    ///
    /// # Errors
    /// [`Error::Data`] when a sum is not finite, or values are claimed without count.
    pub fn from_sums(n: u64, sum: f64, sum_squares: f64) -> Result<Self> {
        if !(sum.is_finite() && sum_squares.is_finite() && sum_squares >= 0.0) {
            return Err(Error::Data(format!("sums {sum} and {sum_squares} of squares")));
        }
        if n == 0 {
            if sum != 0.0 || sum_squares != 0.0 {
                return Err(Error::Data("sums of no values must be 0".into()));
            }
            return Ok(Moments::default());
        }
        let mean = sum / n as f64;
        // Rounding can leave a tiny negative remainder when all values are equal.
        let sum_squared_deviations = (sum_squares - sum * mean).max(0.0);
        Ok(Moments { n, mean, sum_squared_deviations })
    }

    /// The sample variance Σ (x − mean)² / (n − 1) (0 for fewer than two values).
    pub fn variance(&self) -> f64 {
        if self.n < 2 { 0.0 } else { self.sum_squared_deviations / (self.n - 1) as f64 }
    }
}

/// What was counted for one variant of an experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// Name of the variant.
    pub name: String,
    /// Share of learners the experiment assigns to it (any positive scale).
    pub weight: f64,
    /// Learners assigned to it.
    pub learners: u64,
    /// Recommendations shown to them.
    pub exposures: u64,
    /// Recommendations clicked.
    pub clicks: u64,
    /// Learners who bought at least once.
    pub converters: u64,
    /// Revenue per learner, one value for each learner (0 for those who bought nothing).
    pub revenue: Moments,
}

/// The metrics of one variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantMetrics {
    /// Name of the variant.
    pub name: String,
    /// Learners assigned to it.
    pub learners: u64,
    /// Recommendations shown to them.
    pub exposures: u64,
    /// Click-through rate, clicks / exposures (none without exposures).
    pub ctr: Option<f64>,
    /// Conversion rate, converters / learners.
    pub conversion: f64,
    /// Revenue per learner, the mean of the per-learner revenue.
    pub revenue_per_learner: f64,
}

impl Variant {
    /// Checks the counts: at least one learner, clicks ≤ exposures, converters ≤ learners, a
    /// revenue value for each learner, a positive finite weight.
    ///
    /// # Errors
    /// [`Error::Data`] naming what does not hold.
    pub fn validate(&self) -> Result<()> {
        let name = &self.name;
        if self.learners == 0 {
            return Err(Error::Data(format!("variant {name} has no learners")));
        }
        if self.clicks > self.exposures {
            return Err(Error::Data(format!("variant {name}: {} clicks on {} exposures", self.clicks, self.exposures)));
        }
        if self.converters > self.learners {
            return Err(Error::Data(format!(
                "variant {name}: {} converters among {} learners",
                self.converters, self.learners
            )));
        }
        if self.revenue.n != self.learners {
            return Err(Error::Data(format!(
                "variant {name}: {} revenue values for {} learners (one per learner, 0 for none)",
                self.revenue.n, self.learners
            )));
        }
        if !(self.weight.is_finite() && self.weight > 0.0) {
            return Err(Error::Data(format!("variant {name}: a weight of {}", self.weight)));
        }
        Ok(())
    }

    /// CTR, conversion rate and revenue per learner.
    ///
    /// # Errors
    /// As [`Variant::validate`].
    pub fn metrics(&self) -> Result<VariantMetrics> {
        self.validate()?;
        Ok(VariantMetrics {
            name: self.name.clone(),
            learners: self.learners,
            exposures: self.exposures,
            ctr: (self.exposures > 0).then(|| self.clicks as f64 / self.exposures as f64),
            conversion: self.converters as f64 / self.learners as f64,
            revenue_per_learner: self.revenue.mean,
        })
    }
}

/// An estimate with its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The point estimate.
    pub value: f64,
    /// Lower end of the interval.
    pub lower: f64,
    /// Upper end of the interval.
    pub upper: f64,
}

/// A treatment compared with the control on one metric.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The control's value of the metric.
    pub control: f64,
    /// The treatment's value.
    pub treatment: f64,
    /// treatment − control, with its interval.
    pub difference: Estimate,
    /// treatment / control − 1, with its interval by the delta method; none when the
    /// control's value is 0.
    pub relative_lift: Option<Estimate>,
    /// The test statistic: z for proportions, t for means.
    pub statistic: f64,
    /// Degrees of freedom of the t statistic (Welch–Satterthwaite); none for z.
    pub degrees_of_freedom: Option<f64>,
    /// Two-sided p-value of "no difference".
    pub p_value: f64,
}

/// Checks a confidence level and returns the upper tail probability of each side.
fn tail(confidence: f64) -> Result<f64> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(Error::Domain(format!("a confidence level of {confidence}")));
    }
    Ok(0.5 * (1.0 - confidence))
}

/// The relative lift t / c − 1 and its delta-method interval, from the two estimates and
/// their variances: Var(t / c) ≈ Var(t) / c² + t² Var(c) / c⁴.
fn relative(control: f64, treatment: f64, var_control: f64, var_treatment: f64, critical: f64) -> Option<Estimate> {
    if control == 0.0 {
        return None;
    }
    let value = treatment / control - 1.0;
    let c2 = control * control;
    let se = (var_treatment / c2 + treatment * treatment * var_control / (c2 * c2)).sqrt();
    Some(Estimate { value, lower: value - critical * se, upper: value + critical * se })
}

/// The two-proportion z-test of treatment successes `x_t` of `n_t` against control successes
/// `x_c` of `n_c`, with intervals at `confidence` (e.g. 0.95).
///
/// * z = (p̂ₜ − p̂꜀) / √(p̄(1 − p̄)(1/nₜ + 1/n꜀)) with the pooled rate p̄ = (xₜ + x꜀) / (nₜ + n꜀);
///   the p-value is 2 (1 − Φ(|z|)). When p̄ is 0 or 1 there is no difference to test:
///   z = 0 and p = 1.
/// * The difference p̂ₜ − p̂꜀ ± z₁₋α/₂ √(p̂ₜ(1 − p̂ₜ)/nₜ + p̂꜀(1 − p̂꜀)/n꜀) (unpooled, Wald).
/// * The relative lift p̂ₜ/p̂꜀ − 1 ± z₁₋α/₂ · SE by the delta method (see [`Comparison`]).
///
/// # Errors
/// [`Error::Data`] for an empty group or more successes than trials; [`Error::Domain`] for a
/// confidence level outside (0, 1).
pub fn two_proportion(x_c: u64, n_c: u64, x_t: u64, n_t: u64, confidence: f64) -> Result<Comparison> {
    if n_c == 0 || n_t == 0 || x_c > n_c || x_t > n_t {
        return Err(Error::Data(format!("proportions {x_c}/{n_c} and {x_t}/{n_t}")));
    }
    let critical = -normal_quantile(tail(confidence)?)?;
    let (nc, nt) = (n_c as f64, n_t as f64);
    let (pc, pt) = (x_c as f64 / nc, x_t as f64 / nt);
    let diff = pt - pc;
    let pooled = (x_c + x_t) as f64 / (nc + nt);
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / nt)).sqrt();
    let (statistic, p_value) = if se_pooled > 0.0 {
        let z = diff / se_pooled;
        (z, (2.0 * normal_sf(z.abs())).min(1.0))
    } else {
        (0.0, 1.0)
    };
    let (var_c, var_t) = (pc * (1.0 - pc) / nc, pt * (1.0 - pt) / nt);
    let se = (var_c + var_t).sqrt();
    Ok(Comparison {
        control: pc,
        treatment: pt,
        difference: Estimate { value: diff, lower: diff - critical * se, upper: diff + critical * se },
        relative_lift: relative(pc, pt, var_c, var_t, critical),
        statistic,
        degrees_of_freedom: None,
        p_value,
    })
}

/// Welch's t-test of the treatment's mean against the control's, with intervals at
/// `confidence`.
///
/// t = (x̄ₜ − x̄꜀) / √(sₜ²/nₜ + s꜀²/n꜀) with the sample variances s²; the degrees of freedom
/// are Welch–Satterthwaite's, ν = (sₜ²/nₜ + s꜀²/n꜀)² / ((sₜ²/nₜ)²/(nₜ − 1) + (s꜀²/n꜀)²/(n꜀ − 1));
/// the p-value is 2 P(T_ν > |t|). The difference interval is x̄ₜ − x̄꜀ ± t₁₋α/₂,ν · SE, the
/// relative lift's is by the delta method with the same critical value. When both variances
/// are 0 the means are compared exactly: p = 1 if equal (t = 0), else p = 0 (t = ±∞).
///
/// # Errors
/// [`Error::Data`] when a group has fewer than two values; [`Error::Domain`] for a
/// confidence level outside (0, 1).
pub fn welch(control: &Moments, treatment: &Moments, confidence: f64) -> Result<Comparison> {
    if control.n < 2 || treatment.n < 2 {
        return Err(Error::Data(format!(
            "Welch's test needs two values per group, not {} and {}",
            control.n, treatment.n
        )));
    }
    let alpha_half = tail(confidence)?;
    let (nc, nt) = (control.n as f64, treatment.n as f64);
    let (var_c, var_t) = (control.variance() / nc, treatment.variance() / nt);
    let diff = treatment.mean - control.mean;
    let se2 = var_c + var_t;
    if se2 == 0.0 {
        let (statistic, p_value) = if diff == 0.0 { (0.0, 1.0) } else { (diff.signum() * f64::INFINITY, 0.0) };
        let exact = |value: f64| Estimate { value, lower: value, upper: value };
        return Ok(Comparison {
            control: control.mean,
            treatment: treatment.mean,
            difference: exact(diff),
            relative_lift: (control.mean != 0.0).then(|| exact(treatment.mean / control.mean - 1.0)),
            statistic,
            degrees_of_freedom: None,
            p_value,
        });
    }
    let se = se2.sqrt();
    let df = se2 * se2 / (var_c * var_c / (nc - 1.0) + var_t * var_t / (nt - 1.0));
    let t = diff / se;
    let p_value = (2.0 * student_t_sf(t.abs(), df)?).min(1.0);
    let critical = -student_t_quantile(alpha_half, df)?;
    Ok(Comparison {
        control: control.mean,
        treatment: treatment.mean,
        difference: Estimate { value: diff, lower: diff - critical * se, upper: diff + critical * se },
        relative_lift: relative(control.mean, treatment.mean, var_c, var_t, critical),
        statistic: t,
        degrees_of_freedom: Some(df),
        p_value,
    })
}

/// The chi-square goodness-of-fit test of the learner counts against the configured weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleRatio {
    /// Learners expected in each variant: total · weight / Σ weights.
    pub expected: Vec<f64>,
    /// Σ (observed − expected)² / expected.
    pub chi_square: f64,
    /// Variants − 1.
    pub degrees_of_freedom: u64,
    /// P(χ² > the statistic), from the regularized upper incomplete gamma function.
    pub p_value: f64,
    /// Whether the p-value is below [`SRM_THRESHOLD`]: the split is not the configured one,
    /// and the comparisons should not be trusted.
    pub mismatch: bool,
}

/// Tests whether `learners` were assigned in the ratio of `weights`.
///
/// # Errors
/// [`Error::Data`] for fewer than two variants, lengths that differ, a weight that is not
/// positive and finite, or no learners at all.
pub fn sample_ratio_mismatch(learners: &[u64], weights: &[f64]) -> Result<SampleRatio> {
    if learners.len() < 2 || learners.len() != weights.len() {
        return Err(Error::Data(format!("{} learner counts for {} weights", learners.len(), weights.len())));
    }
    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
        return Err(Error::Data(format!("a weight of {w}")));
    }
    let total: u64 = learners.iter().sum();
    if total == 0 {
        return Err(Error::Data("no learners in any variant".into()));
    }
    let weight_sum: f64 = weights.iter().sum();
    let expected: Vec<f64> = weights.iter().map(|w| total as f64 * w / weight_sum).collect();
    let chi_square = learners
        .iter()
        .zip(&expected)
        .map(|(&o, &e)| {
            let d = o as f64 - e;
            d * d / e
        })
        .sum::<f64>();
    let degrees_of_freedom = learners.len() as u64 - 1;
    let p_value = chi_square_sf(chi_square, degrees_of_freedom as f64)?;
    Ok(SampleRatio { expected, chi_square, degrees_of_freedom, p_value, mismatch: p_value < SRM_THRESHOLD })
}

/// The learners each of two variants needs for a two-sided two-proportion z-test at level
/// `alpha` to detect, with probability `power`, a change of the `baseline` rate by the
/// relative lift `minimum_lift` (0.1 for +10%):
///
/// n = (z₁₋α/₂ √(2 p̄(1 − p̄)) + z_power √(p₁(1 − p₁) + p₂(1 − p₂)))² / (p₂ − p₁)²,
/// with p₁ the baseline, p₂ = p₁(1 + lift), p̄ = (p₁ + p₂)/2, rounded up.
///
/// # Errors
/// [`Error::Domain`] for a baseline outside (0, 1), a lift of 0 or one that takes p₂ outside
/// (0, 1), or alpha or power outside (0, 1).
pub fn sample_size_per_variant(baseline: f64, minimum_lift: f64, alpha: f64, power: f64) -> Result<u64> {
    let p1 = baseline;
    let p2 = baseline * (1.0 + minimum_lift);
    let open = |v: f64| v > 0.0 && v < 1.0;
    if !(open(p1) && open(p2) && minimum_lift != 0.0 && open(alpha) && open(power)) {
        return Err(Error::Domain(format!(
            "a sample size for baseline {baseline}, lift {minimum_lift}, alpha {alpha}, power {power}"
        )));
    }
    let z_alpha = -normal_quantile(0.5 * alpha)?;
    let z_power = normal_quantile(power)?;
    let mean = 0.5 * (p1 + p2);
    let root = z_alpha * (2.0 * mean * (1.0 - mean)).sqrt() + z_power * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    Ok((root * root / ((p2 - p1) * (p2 - p1))).ceil() as u64)
}

/// What the experiment was planned to detect.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The control's expected conversion rate.
    pub baseline_conversion: f64,
    /// The smallest relative lift of conversion worth detecting (0.1 for +10%).
    pub minimum_lift: f64,
    /// Significance level (0.05).
    pub alpha: f64,
    /// Power (0.8).
    pub power: f64,
}

impl Plan {
    /// A plan at alpha 0.05 and power 0.8.
    pub fn new(baseline_conversion: f64, minimum_lift: f64) -> Self {
        Plan { baseline_conversion, minimum_lift, alpha: 0.05, power: 0.8 }
    }
}

/// One treatment against the control.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreatmentComparison {
    /// Name of the treatment.
    pub name: String,
    /// Click-through rate (none when either variant has no exposures).
    pub ctr: Option<Comparison>,
    /// Conversion rate.
    pub conversion: Comparison,
    /// Revenue per learner (none when either variant has fewer than two learners).
    pub revenue_per_learner: Option<Comparison>,
}

/// Whether the planned sample size is reached.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleSize {
    /// Learners each variant needs.
    pub required_per_variant: u64,
    /// Learners in the smallest variant.
    pub smallest_variant: u64,
    /// Whether every variant has the learners it needs.
    pub reached: bool,
}

/// The statistics of an experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Each variant's metrics, in the order given.
    pub variants: Vec<VariantMetrics>,
    /// Name of the control.
    pub control: String,
    /// Each other variant against the control, at [`CONFIDENCE`].
    pub comparisons: Vec<TreatmentComparison>,
    /// The check of the split against the weights.
    pub sample_ratio: SampleRatio,
    /// The planned sample size and whether it is reached.
    pub sample_size: SampleSize,
}

/// The report of an experiment whose control is `variants[control]`.
///
/// # Errors
/// [`Error::Data`] for fewer than two variants, a control index out of range or invalid
/// counts ([`Variant::validate`]); [`Error::Domain`] for an impossible plan.
pub fn report(variants: &[Variant], control: usize, plan: &Plan) -> Result<Report> {
    if variants.len() < 2 || control >= variants.len() {
        return Err(Error::Data(format!("control {control} of {} variants", variants.len())));
    }
    let metrics = variants.iter().map(Variant::metrics).collect::<Result<Vec<_>>>()?;
    let c = &variants[control];
    let mut comparisons = Vec::new();
    for (i, t) in variants.iter().enumerate() {
        if i == control {
            continue;
        }
        let ctr = if c.exposures > 0 && t.exposures > 0 {
            Some(two_proportion(c.clicks, c.exposures, t.clicks, t.exposures, CONFIDENCE)?)
        } else {
            None
        };
        let conversion = two_proportion(c.converters, c.learners, t.converters, t.learners, CONFIDENCE)?;
        let revenue_per_learner =
            if c.learners >= 2 && t.learners >= 2 { Some(welch(&c.revenue, &t.revenue, CONFIDENCE)?) } else { None };
        comparisons.push(TreatmentComparison { name: t.name.clone(), ctr, conversion, revenue_per_learner });
    }
    let learners: Vec<u64> = variants.iter().map(|v| v.learners).collect();
    let weights: Vec<f64> = variants.iter().map(|v| v.weight).collect();
    let sample_ratio = sample_ratio_mismatch(&learners, &weights)?;
    let required_per_variant =
        sample_size_per_variant(plan.baseline_conversion, plan.minimum_lift, plan.alpha, plan.power)?;
    let smallest_variant = learners.iter().copied().min().unwrap_or(0);
    Ok(Report {
        variants: metrics,
        control: c.name.clone(),
        comparisons,
        sample_ratio,
        sample_size: SampleSize {
            required_per_variant,
            smallest_variant,
            reached: smallest_variant >= required_per_variant,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near(got: f64, want: f64, rel: f64) {
        let err = (got - want).abs() / want.abs().max(1e-300);
        assert!(err <= rel, "got {got}, want {want} (relative error {err:e})");
    }

    // Reference values computed with scipy 1.17.1 (numpy 2.4.6) on 2026-12-03; each comment
    // holds the computation.

    const CONTROL_REVENUE: [f64; 12] = [0.0, 0.0, 12.5, 3.0, 0.0, 40.0, 7.5, 0.0, 0.0, 19.9, 5.0, 0.0];
    const TREATMENT_REVENUE: [f64; 14] = [0.0, 22.0, 0.0, 15.0, 31.0, 0.0, 9.5, 0.0, 48.0, 12.0, 0.0, 0.0, 27.5, 3.0];

    #[test]
    fn welch_matches_scipy() {
        let a = Moments::from_values(&CONTROL_REVENUE).unwrap();
        let b = Moments::from_values(&TREATMENT_REVENUE).unwrap();
        let w = welch(&a, &b, 0.95).unwrap();
        // r = scipy.stats.ttest_ind(b, a, equal_var=False); r.statistic, r.pvalue
        near(w.statistic, 0.8778521887787141, 1e-12);
        near(w.p_value, 0.3887617045341847, 1e-10);
        // va, vb = a.var(ddof=1)/len(a), b.var(ddof=1)/len(b); (va+vb)**2/(va**2/(len(a)-1)+vb**2/(len(b)-1))
        near(w.degrees_of_freedom.unwrap(), 23.905636043557855, 1e-12);
        // d = b.mean()-a.mean(); crit = scipy.stats.t.ppf(0.975, df); d ∓ crit*sqrt(va+vb)
        near(w.difference.value, 4.675, 1e-12);
        near(w.difference.lower, -6.318583904955147, 1e-10);
        near(w.difference.upper, 15.668583904955145, 1e-10);
        // rel = b.mean()/a.mean()-1; rel ∓ crit*sqrt(vb/a.mean()**2 + b.mean()**2*va/a.mean()**4)
        let r = w.relative_lift.unwrap();
        near(r.value, 0.6382252559726962, 1e-12);
        near(r.lower, -1.3295365338676817, 1e-10);
        near(r.upper, 2.605987045813074, 1e-10);
        // The same from sufficient statistics: n = 12, a.sum() = 87.9, (a*a).sum() = 2242.51.
        let sums = Moments::from_sums(12, 87.9, 2242.5099999999998).unwrap();
        let w2 = welch(&sums, &b, 0.95).unwrap();
        near(w2.p_value, 0.3887617045341847, 1e-9);
    }

    #[test]
    fn two_proportion_matches_hand_formulas_in_numpy() {
        let c = two_proportion(1000, 10_000, 1090, 10_000, 0.95).unwrap();
        // pool = (xc+xt)/(nc+nt); z = (pt-pc)/np.sqrt(pool*(1-pool)*(1/nc+1/nt)); 2*scipy.stats.norm.sf(abs(z))
        near(c.statistic, 2.0803507859630455, 1e-12);
        near(c.p_value, 0.037493369762011446, 1e-10);
        // se = np.sqrt(pc*(1-pc)/nc+pt*(1-pt)/nt); (pt-pc) ∓ scipy.stats.norm.ppf(0.975)*se
        near(c.difference.value, 0.009, 1e-12);
        near(c.difference.lower, 0.0005217340625015485, 1e-9);
        near(c.difference.upper, 0.01747826593749844, 1e-11);
        // serel = np.sqrt(pt*(1-pt)/nt/pc**2 + pt**2*pc*(1-pc)/nc/pc**4); (pt/pc-1) ∓ norm.ppf(0.975)*serel
        let r = c.relative_lift.unwrap();
        near(r.value, 0.09, 1e-12);
        near(r.lower, 0.0014651487014860909, 1e-9);
        near(r.upper, 0.17853485129851362, 1e-11);
        assert_eq!(c.degrees_of_freedom, None);
        // Swapping the arms flips the sign and keeps the p-value.
        let s = two_proportion(1090, 10_000, 1000, 10_000, 0.95).unwrap();
        near(s.statistic, -c.statistic, 1e-14);
        near(s.p_value, c.p_value, 1e-14);
    }

    #[test]
    fn degenerate_proportions_and_means() {
        let none = two_proportion(0, 100, 0, 120, 0.95).unwrap();
        assert_eq!((none.statistic, none.p_value, none.relative_lift), (0.0, 1.0, None));
        let flat = Moments::from_values(&[5.0; 4]).unwrap();
        let same = welch(&flat, &flat, 0.95).unwrap();
        assert_eq!((same.statistic, same.p_value), (0.0, 1.0));
        let higher = welch(&flat, &Moments::from_values(&[6.0; 3]).unwrap(), 0.95).unwrap();
        assert_eq!((higher.statistic, higher.p_value), (f64::INFINITY, 0.0));
        assert!(matches!(two_proportion(5, 4, 1, 10, 0.95), Err(Error::Data(_))));
        assert!(matches!(two_proportion(1, 0, 1, 10, 0.95), Err(Error::Data(_))));
        assert!(matches!(two_proportion(1, 10, 1, 10, 1.0), Err(Error::Domain(_))));
        assert!(matches!(welch(&Moments::from_values(&[1.0]).unwrap(), &flat, 0.95), Err(Error::Data(_))));
        assert!(matches!(Moments::from_values(&[1.0, f64::NAN]), Err(Error::Data(_))));
        assert!(matches!(Moments::from_sums(0, 1.0, 1.0), Err(Error::Data(_))));
    }

    #[test]
    fn sample_ratio_matches_scipy() {
        // scipy.stats.chisquare([10500, 9500], [10000, 10000])
        let s = sample_ratio_mismatch(&[10_500, 9_500], &[1.0, 1.0]).unwrap();
        near(s.chi_square, 50.0, 1e-14);
        near(s.p_value, 1.537459794428033e-12, 1e-10);
        assert_eq!(s.degrees_of_freedom, 1);
        assert!(s.mismatch);
        // scipy.stats.chisquare([5030, 4920, 10050], [5000, 5000, 10000])
        let s = sample_ratio_mismatch(&[5_030, 4_920, 10_050], &[25.0, 25.0, 50.0]).unwrap();
        near(s.chi_square, 1.71, 1e-12);
        near(s.p_value, 0.4252831910822741, 1e-11);
        assert_eq!(s.expected, vec![5_000.0, 5_000.0, 10_000.0]);
        assert!(!s.mismatch);
        assert!(sample_ratio_mismatch(&[1, 2], &[1.0]).is_err());
        assert!(sample_ratio_mismatch(&[1, 2], &[1.0, 0.0]).is_err());
        assert!(sample_ratio_mismatch(&[0, 0], &[1.0, 1.0]).is_err());
    }

    #[test]
    fn sample_size_matches_the_formula_in_numpy() {
        // p2 = p1*(1+lift); m = (p1+p2)/2; za = norm.ppf(1-alpha/2); zb = norm.ppf(power)
        // (za*np.sqrt(2*m*(1-m)) + zb*np.sqrt(p1*(1-p1)+p2*(1-p2)))**2/(p2-p1)**2
        // = 6692.607209051045, 31233.437940129952, 27368.160869412717, 14750.790469044954
        assert_eq!(sample_size_per_variant(0.10, 0.15, 0.05, 0.8).unwrap(), 6_693);
        assert_eq!(sample_size_per_variant(0.05, 0.10, 0.05, 0.8).unwrap(), 31_234);
        assert_eq!(sample_size_per_variant(0.3, -0.05, 0.01, 0.9).unwrap(), 27_369);
        assert_eq!(sample_size_per_variant(0.10, 0.10, 0.05, 0.8).unwrap(), 14_751);
        assert!(sample_size_per_variant(0.5, 1.0, 0.05, 0.8).is_err());
        assert!(sample_size_per_variant(0.1, 0.0, 0.05, 0.8).is_err());
    }

    fn variant(name: &str, learners: u64, converters: u64, revenue: &[f64]) -> Variant {
        Variant {
            name: name.into(),
            weight: 1.0,
            learners,
            exposures: learners * 10,
            clicks: learners,
            converters,
            revenue: Moments::from_values(revenue).unwrap(),
        }
    }

    #[test]
    fn report_puts_it_together() {
        let control = variant("control", 12, 6, &CONTROL_REVENUE);
        let treatment = variant("treatment", 14, 8, &TREATMENT_REVENUE);
        let r = report(&[control.clone(), treatment], 0, &Plan::new(0.10, 0.15)).unwrap();
        assert_eq!(r.control, "control");
        assert_eq!(r.variants[0].ctr, Some(0.1));
        near(r.variants[0].conversion, 0.5, 1e-15);
        near(r.variants[1].revenue_per_learner, TREATMENT_REVENUE.iter().sum::<f64>() / 14.0, 1e-14);
        let t = &r.comparisons[0];
        assert_eq!(t.name, "treatment");
        near(t.revenue_per_learner.unwrap().p_value, 0.3887617045341847, 1e-10);
        assert_eq!(t.ctr.unwrap().p_value, 1.0);
        assert!(!r.sample_ratio.mismatch);
        assert_eq!(r.sample_size, SampleSize { required_per_variant: 6_693, smallest_variant: 12, reached: false });

        let mut bad = control.clone();
        bad.revenue = Moments::from_values(&[1.0]).unwrap();
        assert!(matches!(report(&[control.clone(), bad], 0, &Plan::new(0.1, 0.1)), Err(Error::Data(_))));
        assert!(report(std::slice::from_ref(&control), 0, &Plan::new(0.1, 0.1)).is_err());
        assert!(report(&[control.clone(), control], 2, &Plan::new(0.1, 0.1)).is_err());
    }
}
