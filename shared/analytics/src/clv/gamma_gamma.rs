//! The Gamma-Gamma model of spend (Fader, Hardie and Lee 2005, "RFM and
//! CLV"; Fader and Hardie's note 025): a customer's purchases are worth
//! Gamma(p, ν) amounts, whose rate ν ~ Gamma(q, v) differs between customers.

use serde::{Deserialize, Serialize};

use super::bgnbd::Fit;
use super::optimize;
use crate::special::ln_gamma;
use crate::{Error, Result};

/// The Gamma-Gamma parameters, all positive.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    /// Shape of the amount of one purchase.
    pub p: f64,
    /// Shape of the rate ν across customers.
    pub q: f64,
    /// Scale of the rate ν across customers.
    pub v: f64,
}

/// A customer's spend: the number of repeat purchases and their mean amount.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    /// x: repeat purchases.
    pub frequency: u32,
    /// m̄: their mean amount.
    pub mean: f64,
}

impl GammaGamma {
    /// The log-likelihood of one customer's mean spend (x > 0, m̄ > 0).
    pub fn log_likelihood(&self, spend: &Spend) -> f64 {
        let GammaGamma { p, q, v } = *self;
        let x = f64::from(spend.frequency);
        let m = spend.mean;
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q) + q * v.ln() + (p * x - 1.0) * m.ln() + p * x * x.ln()
            - (p * x + q) * (x * m + v).ln()
    }

    /// Fits the model by maximum likelihood (Nelder-Mead with restarts on the
    /// logarithms, from p = q = v = 1, each within e^±20). Customers without repeat purchases
    /// carry no information on spend and are left out, and so are those whose
    /// repeat purchases were all free (a mean of 0 has no density under the
    /// model); [`Fit::customers`] says how many were used.
    ///
    /// # Errors
    /// [`Error::Data`] when no customer is left or a mean is not finite;
    /// [`Error::NoConvergence`] when the search does not settle.
    pub fn fit(data: &[Spend]) -> Result<Fit<GammaGamma>> {
        if let Some(bad) = data.iter().find(|s| !(s.mean.is_finite() && s.mean >= 0.0)) {
            return Err(Error::Data(format!("mean spend {} is not a sum of money", bad.mean)));
        }
        let used: Vec<Spend> = data.iter().copied().filter(|s| s.frequency > 0 && s.mean > 0.0).collect();
        if used.is_empty() {
            return Err(Error::Data("no customer with paid repeat purchases to fit Gamma-Gamma on".into()));
        }
        let n = used.len() as f64;
        let objective = |theta: &[f64]| {
            if !optimize::within_bounds(theta) {
                return f64::NAN;
            }
            let m = GammaGamma { p: theta[0].exp(), q: theta[1].exp(), v: theta[2].exp() };
            -used.iter().map(|s| m.log_likelihood(s)).sum::<f64>() / n
        };
        let best = optimize::minimize(objective, &[0.0; 3])?;
        let model = GammaGamma { p: best.x[0].exp(), q: best.x[1].exp(), v: best.x[2].exp() };
        Ok(Fit { model, log_likelihood: -best.value * n, customers: used.len(), evaluations: best.evaluations })
    }

    /// The expected amount of a customer's future purchases given their
    /// history (equation 5 of note 025): a weighted mean of their own mean
    /// and the population's, p·v/(q − 1). For x = 0 it is the population's.
    ///
    /// # Errors
    /// [`Error::Domain`] when q ≤ 1 (the population mean is infinite).
    pub fn expected_spend(&self, spend: &Spend) -> Result<f64> {
        let GammaGamma { p, q, v } = *self;
        if q <= 1.0 {
            return Err(Error::Domain(format!("q = {q}: the expected spend needs q > 1")));
        }
        let x = f64::from(spend.frequency);
        let mean = if spend.frequency > 0 { spend.mean } else { 0.0 };
        Ok(p * (v + x * mean) / (p * x + q - 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The estimate on the CDNOW sample in Fader and Hardie's note 025.
    const NOTE: GammaGamma = GammaGamma { p: 6.25, q: 3.74, v: 15.44 };

    /// (x, m̄), expected spend and ln L from lifetimes 0.11.3 at [`NOTE`]
    /// (`conditional_expected_average_profit`, `-_negative_log_likelihood` of one customer).
    const LIFETIMES: [(u32, f64, f64, f64); 3] = [
        (1, 10.0, 17.686318131256954, -3.9213505021119737),
        (3, 35.5, 35.464169381107496, -4.090552209678847),
        (10, 120.0, 116.43930104230535, -7.843878054855907),
    ];

    fn close(got: f64, want: f64, rel: f64) {
        let err = (got - want).abs() / want.abs();
        assert!(err <= rel, "got {got}, want {want} (relative error {err:e})");
    }

    #[test]
    fn agrees_with_lifetimes() {
        for (x, m, spend, ll) in LIFETIMES {
            let s = Spend { frequency: x, mean: m };
            close(NOTE.expected_spend(&s).unwrap(), spend, 1e-13);
            close(NOTE.log_likelihood(&s), ll, 1e-12);
        }
        close(NOTE.expected_spend(&Spend { frequency: 0, mean: 99.0 }).unwrap(), 6.25 * 15.44 / 2.74, 1e-13);
        assert!(GammaGamma { q: 0.9, ..NOTE }.expected_spend(&Spend { frequency: 1, mean: 1.0 }).is_err());
    }

    #[test]
    fn likelihood_of_one_purchase_is_the_compound_density() {
        // x = 1: m ~ Gamma(p, ν), ν ~ Gamma(q, v): f(m) = Γ(p+q)/(Γ(p)Γ(q)) v^q m^(p−1) / (m + v)^(p+q),
        // which for p = 1, q = 2 is 2 v² / (m + v)³.
        let g = GammaGamma { p: 1.0, q: 2.0, v: 3.0 };
        let m = 4.0_f64;
        close(g.log_likelihood(&Spend { frequency: 1, mean: m }), (2.0 * 9.0 / (m + 3.0).powi(3)).ln(), 1e-14);
    }

    #[test]
    fn fit_finds_the_maximum_and_leaves_out_customers_without_paid_repeats() {
        let mut data: Vec<Spend> = (0..300_u32)
            .map(|i| Spend { frequency: i % 5 + 1, mean: 10.0 + f64::from((i * 7919) % 83) * 0.75 })
            .collect();
        data.push(Spend { frequency: 0, mean: 0.0 });
        data.push(Spend { frequency: 2, mean: 0.0 });
        let fit = GammaGamma::fit(&data).unwrap();
        assert_eq!(fit.customers, 300);
        let total = |g: &GammaGamma| data[..300].iter().map(|s| g.log_likelihood(s)).sum::<f64>();
        close(fit.log_likelihood, total(&fit.model), 1e-12);
        for k in 0..3 {
            for step in [0.999, 1.001] {
                let mut p = [fit.model.p, fit.model.q, fit.model.v];
                p[k] *= step;
                assert!(total(&GammaGamma { p: p[0], q: p[1], v: p[2] }) <= fit.log_likelihood + 1e-9);
            }
        }
        assert!(GammaGamma::fit(&[Spend { frequency: 0, mean: 3.0 }]).is_err());
        assert!(GammaGamma::fit(&[Spend { frequency: 1, mean: f64::NAN }]).is_err());
    }
}
