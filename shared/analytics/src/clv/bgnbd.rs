//! The BG/NBD model of repeat purchases (Fader, Hardie and Lee 2005,
//! "Counting your customers the easy way"): while alive, a customer buys at
//! a Poisson rate λ ~ Gamma(r, α); after each purchase they drop out with
//! probability p ~ Beta(a, b).

use serde::{Deserialize, Serialize};

use super::optimize;
use super::summary::Rfm;
use crate::special::ln_hyp2f1;
use crate::{Error, Result};

/// The BG/NBD parameters, all positive; time in the unit of the data (weeks).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    /// Shape of the purchase rate's Gamma distribution.
    pub r: f64,
    /// Scale (rate) of the purchase rate's Gamma distribution.
    pub alpha: f64,
    /// First shape of the drop-out probability's Beta distribution.
    pub a: f64,
    /// Second shape of the drop-out probability's Beta distribution.
    pub b: f64,
}

/// A model fitted by maximum likelihood.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fit<M> {
    /// The estimate.
    pub model: M,
    /// The log-likelihood of the data at the estimate.
    pub log_likelihood: f64,
    /// Customers the fit used.
    pub customers: usize,
    /// Evaluations of the likelihood the search needed.
    pub evaluations: usize,
}

/// The parts of the log-likelihood that depend on x alone, for x = 0, 1, …:
/// ln Γ(r+x)/Γ(r) + ln B(a, b+x)/B(a, b), as sums of logarithms, which stay
/// exact where r or b are large (ln Γ differences of huge arguments would
/// cancel to noise).
fn frequency_terms(m: &BgNbd, max_x: u32) -> Vec<f64> {
    let BgNbd { r, a, b, .. } = *m;
    let mut terms = Vec::with_capacity(max_x as usize + 1);
    let mut acc = 0.0;
    terms.push(acc);
    for k in 0..max_x {
        let k = f64::from(k);
        acc += (r + k).ln() + (b + k).ln() - (a + b + k).ln();
        terms.push(acc);
    }
    terms
}

/// ln L of one customer given the x-only terms. (α/(α+T))^r is written as
/// exp(−r·ln(1 + T/α)), which stays precise for large r and α.
fn customer_ll(m: &BgNbd, terms: &[f64], rfm: &Rfm) -> f64 {
    let x = f64::from(rfm.frequency);
    let alive = -m.r * (rfm.age / m.alpha).ln_1p() - x * (m.alpha + rfm.age).ln();
    let total = if rfm.frequency == 0 {
        alive
    } else {
        let dropped =
            m.a.ln() - (m.b + x - 1.0).ln() - m.r * (rfm.recency / m.alpha).ln_1p() - x * (m.alpha + rfm.recency).ln();
        let hi = alive.max(dropped);
        hi + ((alive - hi).exp() + (dropped - hi).exp()).ln()
    };
    terms[rfm.frequency as usize] + total
}

impl BgNbd {
    /// Whether every parameter is positive and finite.
    fn valid(&self) -> bool {
        [self.r, self.alpha, self.a, self.b].iter().all(|p| p.is_finite() && *p > 0.0)
    }

    /// The log-likelihood of one customer's calibration data (equation 6 of
    /// Fader, Hardie and Lee 2005).
    pub fn log_likelihood(&self, rfm: &Rfm) -> f64 {
        let terms = frequency_terms(self, rfm.frequency);
        customer_ll(self, &terms, rfm)
    }

    /// The log-likelihood of many customers.
    pub fn total_log_likelihood(&self, data: &[Rfm]) -> f64 {
        let max_x = data.iter().map(|d| d.frequency).max().unwrap_or(0);
        let terms = frequency_terms(self, max_x);
        data.iter().map(|d| customer_ll(self, &terms, d)).sum()
    }

    /// Fits the model by maximum likelihood: Nelder-Mead with restarts on
    /// the logarithms of the parameters, starting from r = α = a = b = 1,
    /// each kept within e^±20. Customers with the same
    /// (x, tₓ, T) are counted together.
    ///
    /// Data in which nobody seems to drop out has its maximum at the edge
    /// (a → 0 and r, α → ∞ with r/α fixed: every customer a Poisson buyer at
    /// the same rate); the fit then stops at the bound, which answers
    /// the same predictions to many digits.
    ///
    /// # Errors
    /// [`Error::Data`] for no data or an invalid [`Rfm`];
    /// [`Error::NoConvergence`] when the search does not settle.
    pub fn fit(data: &[Rfm]) -> Result<Fit<BgNbd>> {
        if data.is_empty() {
            return Err(Error::Data("no customers to fit BG/NBD on".into()));
        }
        for d in data {
            d.validate()?;
        }
        let mut keys: Vec<(u32, u64, u64)> =
            data.iter().map(|d| (d.frequency, d.recency.to_bits(), d.age.to_bits())).collect();
        keys.sort_unstable();
        let mut rows: Vec<(Rfm, f64)> = Vec::new();
        for k in keys {
            let rfm = Rfm { frequency: k.0, recency: f64::from_bits(k.1), age: f64::from_bits(k.2) };
            match rows.last_mut() {
                Some((last, w)) if *last == rfm => *w += 1.0,
                _ => rows.push((rfm, 1.0)),
            }
        }
        let max_x = rows.iter().map(|(d, _)| d.frequency).max().unwrap_or(0);
        let n = data.len() as f64;
        let objective = |theta: &[f64]| {
            if !optimize::within_bounds(theta) {
                return f64::NAN;
            }
            let m = BgNbd { r: theta[0].exp(), alpha: theta[1].exp(), a: theta[2].exp(), b: theta[3].exp() };
            if !m.valid() {
                return f64::NAN;
            }
            let terms = frequency_terms(&m, max_x);
            -rows.iter().map(|(d, w)| w * customer_ll(&m, &terms, d)).sum::<f64>() / n
        };
        let best = optimize::minimize(objective, &[0.0; 4])?;
        let model = BgNbd { r: best.x[0].exp(), alpha: best.x[1].exp(), a: best.x[2].exp(), b: best.x[3].exp() };
        Ok(Fit { model, log_likelihood: -best.value * n, customers: data.len(), evaluations: best.evaluations })
    }

    /// P(alive): the probability that a customer with this history is still
    /// active at the end of their calibration period (1 without repeat purchases).
    pub fn p_alive(&self, rfm: &Rfm) -> f64 {
        if rfm.frequency == 0 {
            return 1.0;
        }
        let x = f64::from(rfm.frequency);
        let ln_odds = (self.a / (self.b + x - 1.0)).ln()
            + (self.r + x) * ((self.alpha + rfm.age) / (self.alpha + rfm.recency)).ln();
        1.0 / (1.0 + ln_odds.exp())
    }

    /// Expected purchases in the next `t` time units of a customer with this
    /// calibration history (equation 10 of Fader, Hardie and Lee 2005).
    ///
    /// The formula divides by a − 1; a = 1 is a removable singularity, and an
    /// estimate within about 1e-8 of it is refused rather than answered imprecisely.
    ///
    /// # Errors
    /// [`Error::Domain`] for a negative or non-finite `t`, for a within 1e-8
    /// of 1, or when the hypergeometric series cannot be evaluated.
    pub fn expected_purchases(&self, t: f64, rfm: &Rfm) -> Result<f64> {
        if !(t.is_finite() && t >= 0.0) {
            return Err(Error::Domain(format!("a period of length {t}")));
        }
        if t == 0.0 {
            return Ok(0.0);
        }
        let BgNbd { r, alpha, a, b } = *self;
        if (a - 1.0).abs() < 1e-8 {
            return Err(Error::Domain(format!("a = {a}: the expected purchases divide by a − 1")));
        }
        let x = f64::from(rfm.frequency);
        let big_t = rfm.age;
        let c = a + b + x - 1.0;
        let z = t / (alpha + big_t + t);
        let ln_hyp = ln_hyp2f1(r + x, b + x, c, z)?;
        let remaining = 1.0 - (ln_hyp + (r + x) * ((alpha + big_t) / (alpha + big_t + t)).ln()).exp();
        let numerator = c / (a - 1.0) * remaining;
        let denominator = if rfm.frequency > 0 {
            1.0 + ((a / (b + x - 1.0)).ln() + (r + x) * ((alpha + big_t) / (alpha + rfm.recency)).ln()).exp()
        } else {
            1.0
        };
        Ok(numerator / denominator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published estimate on the CDNOW sample (Fader, Hardie and Lee 2005).
    const PUBLISHED: BgNbd = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };

    /// (x, tₓ, T), then from lifetimes 0.11.3 at [`PUBLISHED`]: expected purchases in the
    /// next 39 weeks (`conditional_expected_number_of_purchases_up_to_time`), P(alive)
    /// (`conditional_probability_alive`) and ln L (`-_negative_log_likelihood` of one customer).
    const LIFETIMES: [(u32, f64, f64, f64, f64, f64); 5] = [
        (0, 0.0, 38.86, 0.19509805201125396, 1.0, -0.5547132764381585),
        (2, 30.43, 38.86, 1.226028174767135, 0.726578570080673, -9.45860630706627),
        (1, 1.71, 38.86, 0.20318698707975183, 0.2121009853773791, -4.469093275032588),
        (7, 29.43, 31.0, 5.4030056206705135, 0.8844044304495576, -20.73216054846426),
        (25, 36.0, 38.0, 16.246152885673673, 0.9077935639765753, -41.84746861587344),
    ];

    fn close(got: f64, want: f64, rel: f64) {
        let err = (got - want).abs() / want.abs().max(1e-300);
        assert!(err <= rel, "got {got}, want {want} (relative error {err:e})");
    }

    #[test]
    fn agrees_with_lifetimes_at_the_published_estimate() {
        for (x, tx, t, e39, alive, ll) in LIFETIMES {
            let rfm = Rfm { frequency: x, recency: tx, age: t };
            close(PUBLISHED.expected_purchases(39.0, &rfm).unwrap(), e39, 1e-10);
            close(PUBLISHED.p_alive(&rfm), alive, 1e-12);
            close(PUBLISHED.log_likelihood(&rfm), ll, 1e-12);
        }
    }

    #[test]
    fn likelihood_matches_the_closed_form_without_repeat_purchases() {
        // x = 0: L = B(a, b)/B(a, b) · (α / (α + T))^r: the Beta terms cancel.
        let m = BgNbd { r: 0.7, alpha: 3.0, a: 1.3, b: 2.1 };
        let rfm = Rfm { frequency: 0, recency: 0.0, age: 20.0 };
        close(m.log_likelihood(&rfm), 0.7 * (3.0_f64 / 23.0).ln(), 1e-13);
        // x = 1 by hand: B(a, b + 1)/B(a, b) = b/(a + b); B(a + 1, b)/B(a, b) = a/(a + b);
        // Γ(r + 1)/Γ(r) = r.
        let rfm = Rfm { frequency: 1, recency: 5.0, age: 20.0 };
        let (r, al, a, b) = (0.7_f64, 3.0_f64, 1.3_f64, 2.1_f64);
        let want = b / (a + b) * r * al.powf(r) / (al + 20.0).powf(r + 1.0)
            + a / (a + b) * r * al.powf(r) / (al + 5.0).powf(r + 1.0);
        close(m.log_likelihood(&rfm), want.ln(), 1e-13);
        close(m.total_log_likelihood(&[rfm, rfm]), 2.0 * want.ln(), 1e-13);
    }

    #[test]
    fn expected_purchases_of_a_new_customer_follow_the_unconditional_formula() {
        // A customer seen for no time at all: over a short period nobody has dropped out yet,
        // so E[X(t)] ≈ t · E[λ] = t · r/α.
        let m = BgNbd { r: 2.0, alpha: 100.0, a: 3.0, b: 1.0 };
        let rfm = Rfm { frequency: 0, recency: 0.0, age: 0.0 };
        // For small t, E[X(t)] ≈ t · r/α (no one has dropped out yet).
        let t = 1e-3;
        close(m.expected_purchases(t, &rfm).unwrap(), t * 2.0 / 100.0, 1e-3);
        assert_eq!(m.expected_purchases(0.0, &rfm).unwrap(), 0.0);
        assert!(m.expected_purchases(-1.0, &rfm).is_err());
        assert!(BgNbd { a: 1.0, ..m }.expected_purchases(1.0, &rfm).is_err());
    }

    #[test]
    fn fit_recovers_the_maximum_of_the_likelihood() {
        // A small deterministic data set; the fit must beat every nearby point.
        let mut data = Vec::new();
        for i in 0..400_u32 {
            let age = 20.0 + f64::from(i % 19);
            let x = (i * 7919) % 11 % 6;
            let recency = if x == 0 { 0.0 } else { age * f64::from((i * 104_729) % 97 + 1) / 98.0 };
            data.push(Rfm { frequency: x, recency, age });
        }
        let fit = BgNbd::fit(&data).unwrap();
        close(fit.log_likelihood, fit.model.total_log_likelihood(&data), 1e-12);
        let m = fit.model;
        for (i, step) in [0.999, 1.001].iter().enumerate() {
            for k in 0..4 {
                let mut p = [m.r, m.alpha, m.a, m.b];
                p[k] *= step;
                let near = BgNbd { r: p[0], alpha: p[1], a: p[2], b: p[3] };
                assert!(near.total_log_likelihood(&data) <= fit.log_likelihood + 1e-9, "{i} {k}: {m:?}");
            }
        }
        assert!(BgNbd::fit(&[]).is_err());
        assert!(BgNbd::fit(&[Rfm { frequency: 0, recency: 1.0, age: 2.0 }]).is_err());
    }

    #[test]
    fn data_without_drop_outs_fits_at_the_edge_and_still_predicts() {
        // Everyone bought last at the end of their history: nobody looks gone, so
        // the maximum lies at a → 0, r, α → ∞. The fit stops at the bound and its
        // predictions are those of Poisson buyers whose rates vary as Gamma(r, α).
        let mut data = Vec::new();
        for i in 0..300_u32 {
            let age = 30.0 + f64::from(i % 7);
            data.push(Rfm { frequency: 2 + i % 9, recency: age, age });
        }
        let fit = BgNbd::fit(&data).unwrap();
        let m = fit.model;
        assert!(m.a < 1e-6, "{m:?}");
        let purchases: f64 = data.iter().map(|d| f64::from(d.frequency)).sum();
        let weeks: f64 = data.iter().map(|d| d.age).sum();
        let rate = purchases / weeks;
        close(m.r / m.alpha, rate, 1e-2);
        let rfm = data[0];
        close(m.p_alive(&rfm), 1.0, 1e-6);
        let expected = m.expected_purchases(10.0, &rfm).unwrap();
        // Nobody leaves: the posterior mean rate (r + x)/(α + T) over 10 weeks.
        close(expected, 10.0 * (m.r + f64::from(rfm.frequency)) / (m.alpha + rfm.age), 1e-3);
    }
}
