//! Special functions the models need: the logarithm of the Gamma function
//! (Lanczos approximation) and the Gaussian hypergeometric function 2F1
//! (its power series, summed with rescaling so large values do not overflow).

use crate::{Error, Result};

/// Lanczos parameter g of the coefficients below.
const LANCZOS_G: f64 = 7.0;

/// Lanczos coefficients for g = 7 and nine terms (relative error near 1e-15).
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// ln |Γ(x)|. Infinite at zero and the negative integers (the poles), NaN for NaN.
///
/// Below one half it uses the reflection formula Γ(x) Γ(1 − x) = π / sin(πx).
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return f64::INFINITY;
    }
    if x <= 0.0 && x == x.floor() {
        return f64::INFINITY;
    }
    if x < 0.5 {
        let s = (std::f64::consts::PI * x).sin().abs();
        return std::f64::consts::PI.ln() - s.ln() - ln_gamma(1.0 - x);
    }
    let z = x - 1.0;
    let mut sum = LANCZOS[0];
    for (i, c) in LANCZOS.iter().enumerate().skip(1) {
        sum += c / (z + i as f64);
    }
    let t = z + LANCZOS_G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (z + 0.5) * t.ln() - t + sum.ln()
}

/// Relative size of the last term at which the series stops.
const SERIES_TOLERANCE: f64 = 1e-16;
/// Terms summed at most before giving up.
const SERIES_MAX_TERMS: usize = 200_000;
/// The partial sum is rescaled by this factor whenever it grows past it.
const RESCALE: f64 = 1e200;

/// A value as `mantissa · e^ln_scale`, so sums that overflow `f64` can still be carried.
#[derive(Clone, Copy, Debug)]
struct Scaled {
    mantissa: f64,
    ln_scale: f64,
}

/// The Gaussian hypergeometric function 2F1(a, b; c; z) for −1 < z < 1.
///
/// # Errors
/// [`Error::Domain`] when z is outside (−1, 1), c is zero or a negative
/// integer, or an argument is not finite; [`Error::NoConvergence`] when the
/// series needs more terms than it may sum (z very close to 1); also when
/// the value does not fit in `f64` (use [`ln_hyp2f1`] for large values).
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64> {
    let s = series(a, b, c, z)?;
    let v = s.mantissa * s.ln_scale.exp();
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::Domain(format!("2F1({a}, {b}; {c}; {z}) overflows; use its logarithm")))
    }
}

/// ln 2F1(a, b; c; z) for −1 < z < 1 where the function is positive
/// (always so when a, b, c > 0 and z ≥ 0); large values do not overflow.
///
/// # Errors
/// As [`hyp2f1`], and [`Error::Domain`] when the value is not positive.
pub fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64> {
    let s = series(a, b, c, z)?;
    if s.mantissa > 0.0 {
        Ok(s.mantissa.ln() + s.ln_scale)
    } else {
        Err(Error::Domain(format!("2F1({a}, {b}; {c}; {z}) is not positive; it has no logarithm")))
    }
}

/// Sums the series Σ (a)ₙ (b)ₙ / (c)ₙ zⁿ / n!, after Pfaff's transformation
/// 2F1(a, b; c; z) = (1 − z)^(−a) 2F1(a, c − b; c; z / (z − 1)) when z < −1/2,
/// which turns a slowly converging alternating series into one in (1/3, 1/2).
fn series(a: f64, b: f64, c: f64, z: f64) -> Result<Scaled> {
    if !(a.is_finite() && b.is_finite() && c.is_finite() && z.is_finite()) {
        return Err(Error::Domain(format!("2F1({a}, {b}; {c}; {z}): arguments must be finite")));
    }
    if z <= -1.0 || z >= 1.0 {
        return Err(Error::Domain(format!("2F1({a}, {b}; {c}; {z}): the series needs −1 < z < 1")));
    }
    if c <= 0.0 && c == c.floor() {
        return Err(Error::Domain(format!("2F1({a}, {b}; {c}; {z}): c may not be zero or a negative integer")));
    }
    if z < -0.5 {
        let w = z / (z - 1.0);
        let inner = series(a, c - b, c, w)?;
        return Ok(Scaled { mantissa: inner.mantissa, ln_scale: inner.ln_scale - a * (1.0 - z).ln() });
    }
    let mut sum = 1.0_f64;
    let mut term = 1.0_f64;
    let mut ln_scale = 0.0_f64;
    for n in 0..SERIES_MAX_TERMS {
        let k = n as f64;
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        if term == 0.0 {
            // a or b is a non-positive integer: the series is a polynomial and has ended.
            return Ok(Scaled { mantissa: sum, ln_scale });
        }
        sum += term;
        if sum.abs() > RESCALE {
            sum /= RESCALE;
            term /= RESCALE;
            ln_scale += RESCALE.ln();
        }
        if !sum.is_finite() {
            return Err(Error::NoConvergence(format!("2F1({a}, {b}; {c}; {z}): the partial sums are not finite")));
        }
        // Bound the rest by a geometric series: the ratio of successive terms tends to |z|
        // monotonically for large n, so the larger of the next ratio and |z| bounds every later one.
        let next = ((a + k + 1.0) * (b + k + 1.0) / ((c + k + 1.0) * (k + 2.0)) * z).abs();
        let rho = next.max(z.abs());
        if rho < 1.0 && term.abs() * rho / (1.0 - rho) <= SERIES_TOLERANCE * sum.abs() {
            return Ok(Scaled { mantissa: sum, ln_scale });
        }
    }
    Err(Error::NoConvergence(format!("2F1({a}, {b}; {c}; {z}): {SERIES_MAX_TERMS} terms were not enough")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, rel: f64) {
        let err = (got - want).abs() / want.abs().max(1.0);
        assert!(err <= rel, "got {got}, want {want} (relative error {err:e})");
    }

    #[test]
    fn ln_gamma_matches_factorials_and_half_integers() {
        let mut factorial = 1.0_f64;
        for n in 1..30 {
            // Γ(n) = (n − 1)!
            close(ln_gamma(n as f64), factorial.ln(), 1e-14);
            factorial *= n as f64;
        }
        let sqrt_pi = std::f64::consts::PI.sqrt();
        close(ln_gamma(0.5), sqrt_pi.ln(), 1e-14);
        close(ln_gamma(1.5), (sqrt_pi / 2.0).ln(), 1e-14);
        close(ln_gamma(2.5), (3.0 * sqrt_pi / 4.0).ln(), 1e-14);
        // Γ(−1/2) = −2√π: the logarithm of its magnitude.
        close(ln_gamma(-0.5), (2.0 * sqrt_pi).ln(), 1e-14);
    }

    #[test]
    fn ln_gamma_satisfies_recurrence_and_reflection() {
        for i in 1..200 {
            let x = i as f64 * 0.173;
            // Γ(x + 1) = x Γ(x)
            close(ln_gamma(x + 1.0) - ln_gamma(x), x.ln(), 1e-13);
            if x < 1.0 {
                // Γ(x) Γ(1 − x) = π / sin(πx)
                let want = (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln();
                close(ln_gamma(x) + ln_gamma(1.0 - x), want, 1e-13);
            }
        }
    }

    #[test]
    fn ln_gamma_agrees_with_stirling_for_large_arguments() {
        for x in [50.0_f64, 1e3, 1e5, 1e8] {
            // Stirling's series with three correction terms, exact to far below 1e-15 here.
            let stirling = (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + 1.0 / (12.0 * x)
                - 1.0 / (360.0 * x.powi(3))
                + 1.0 / (1260.0 * x.powi(5));
            close(ln_gamma(x), stirling, 1e-14);
        }
    }

    #[test]
    fn ln_gamma_poles_and_nan() {
        assert_eq!(ln_gamma(0.0), f64::INFINITY);
        assert_eq!(ln_gamma(-3.0), f64::INFINITY);
        assert!(ln_gamma(f64::NAN).is_nan());
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        for i in 1..40 {
            let z = -0.95 + i as f64 * 0.0475;
            if z == 0.0 {
                continue;
            }
            // 2F1(1, 1; 2; z) = −ln(1 − z) / z
            close(hyp2f1(1.0, 1.0, 2.0, z).unwrap(), -(1.0 - z).ln() / z, 1e-13);
            // 2F1(a, b; b; z) = (1 − z)^(−a)
            close(hyp2f1(0.37, 2.5, 2.5, z).unwrap(), (1.0 - z).powf(-0.37), 1e-13);
            if z > 0.0 {
                // 2F1(1/2, 1/2; 3/2; s²) = arcsin(s) / s
                let s = z.sqrt();
                close(hyp2f1(0.5, 0.5, 1.5, z).unwrap(), s.asin() / s, 1e-13);
            } else {
                // 2F1(1/2, 1; 3/2; −s²) = arctan(s) / s
                let s = (-z).sqrt();
                close(hyp2f1(0.5, 1.0, 1.5, z).unwrap(), s.atan() / s, 1e-13);
            }
        }
    }

    #[test]
    fn hyp2f1_polynomial_and_euler_transformation() {
        // a = −2: 1 − 2bz/c + b(b + 1)z² / (c(c + 1))
        let (b, c, z) = (1.7, 3.2, 0.6);
        let want = 1.0 - 2.0 * b * z / c + b * (b + 1.0) * z * z / (c * (c + 1.0));
        close(hyp2f1(-2.0, b, c, z).unwrap(), want, 1e-15);
        // Euler: 2F1(a, b; c; z) = (1 − z)^(c − a − b) 2F1(c − a, c − b; c; z)
        let (a, b, c) = (5.243, 12.426, 17.219);
        for z in [0.1, 0.47, 0.8, 0.95] {
            let left = ln_hyp2f1(a, b, c, z).unwrap();
            let right = ln_hyp2f1(c - a, c - b, c, z).unwrap() + (c - a - b) * (1.0 - z).ln();
            close(left, right, 1e-12);
        }
    }

    #[test]
    fn ln_hyp2f1_survives_values_beyond_f64() {
        // 2F1(a, b; b; z) = (1 − z)^(−a) with a huge: e^(a ln 2) for z = 1/2.
        let a = 5000.0;
        assert!(hyp2f1(a, 3.0, 3.0, 0.5).is_err());
        close(ln_hyp2f1(a, 3.0, 3.0, 0.5).unwrap(), a * 2.0_f64.ln(), 1e-12);
    }

    #[test]
    fn hyp2f1_refuses_outside_its_domain() {
        assert!(matches!(hyp2f1(1.0, 1.0, 2.0, 1.0), Err(Error::Domain(_))));
        assert!(matches!(hyp2f1(1.0, 1.0, 2.0, -1.5), Err(Error::Domain(_))));
        assert!(matches!(hyp2f1(1.0, 1.0, -2.0, 0.5), Err(Error::Domain(_))));
        assert!(matches!(hyp2f1(f64::NAN, 1.0, 2.0, 0.5), Err(Error::Domain(_))));
        assert_eq!(hyp2f1(3.0, 4.0, 5.0, 0.0).unwrap(), 1.0);
    }
}
