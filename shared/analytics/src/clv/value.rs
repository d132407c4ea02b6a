//! Customer lifetime value: expected purchases over a horizon (BG/NBD) times
//! the expected amount of each (Gamma-Gamma), discounted per period.

use serde::{Deserialize, Serialize};

use super::bgnbd::BgNbd;
use super::summary::Rfm;
use crate::{Error, Result};

/// The horizon of a lifetime value: `periods` periods of `period_length`
/// time units (weeks for data summarised by [`super::summarize`]), each
/// discounted by `discount_rate` more than the one before.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Horizon {
    /// Length of one period.
    pub period_length: f64,
    /// Number of periods.
    pub periods: u32,
    /// Discount rate per period (0 for none).
    pub discount_rate: f64,
}

/// The lifetime value of a customer over `horizon`:
/// Σₖ spend · (E[X(k·len)] − E[X((k − 1)·len)]) / (1 + d)ᵏ for k = 1 … periods,
/// with E[X(t)] the expected purchases of [`BgNbd::expected_purchases`] and
/// `spend` the expected amount of a purchase (e.g.
/// [`super::GammaGamma::expected_spend`]). Without discount it is
/// spend · E[X(periods · len)].
///
/// # Errors
/// [`Error::Domain`] for a negative or non-finite length, spend or discount
/// rate (≤ −1), and when the expected purchases cannot be evaluated.
pub fn lifetime_value(model: &BgNbd, rfm: &Rfm, spend: f64, horizon: &Horizon) -> Result<f64> {
    let Horizon { period_length, periods, discount_rate } = *horizon;
    if !(period_length.is_finite() && period_length >= 0.0) {
        return Err(Error::Domain(format!("a period of length {period_length}")));
    }
    if !(spend.is_finite() && spend >= 0.0) {
        return Err(Error::Domain(format!("a spend of {spend}")));
    }
    if !(discount_rate.is_finite() && discount_rate > -1.0) {
        return Err(Error::Domain(format!("a discount rate of {discount_rate}")));
    }
    let mut value = 0.0;
    let mut before = 0.0;
    for k in 1..=periods {
        let cumulative = model.expected_purchases(f64::from(k) * period_length, rfm)?;
        value += spend * (cumulative - before) / (1.0 + discount_rate).powf(f64::from(k));
        before = cumulative;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_lifetimes_and_reduces_to_spend_times_purchases() {
        let model = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
        let rfm = Rfm { frequency: 2, recency: 30.43, age: 38.86 };
        // lifetimes 0.11.3: GammaGammaFitter(p=6.25, q=3.74, v=15.44).customer_lifetime_value(
        // bg, 2, 30.43, 38.86, 35.5, time=12, discount_rate=0.01, freq="W") with the BG/NBD above;
        // the expected spend it uses, conditional_expected_average_profit(2, 35.5), is 35.449475065616795.
        let horizon = Horizon { period_length: 4.345, periods: 12, discount_rate: 0.01 };
        let v = lifetime_value(&model, &rfm, 35.449475065616795, &horizon).unwrap();
        assert!((v - 52.15895260553412).abs() < 1e-9, "{v}");

        let flat = Horizon { discount_rate: 0.0, ..horizon };
        let want = 35.0 * model.expected_purchases(12.0 * 4.345, &rfm).unwrap();
        assert!((lifetime_value(&model, &rfm, 35.0, &flat).unwrap() - want).abs() < 1e-9);
        assert!(lifetime_value(&model, &rfm, -1.0, &flat).is_err());
        assert!(lifetime_value(&model, &rfm, 1.0, &Horizon { discount_rate: -1.0, ..flat }).is_err());
    }
}
