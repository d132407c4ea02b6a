//! Derivative-free minimisation: Nelder-Mead with restarts.
//!
//! The models are fitted in log-space (every parameter is positive), where
//! the negative log-likelihood is smooth; a restart from the best point with
//! a fresh simplex guards against the simplex collapsing early.

use crate::{Error, Result};

/// A minimum found by [`minimize`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Minimum {
    /// Where.
    pub x: Vec<f64>,
    /// The function's value there.
    pub value: f64,
    /// How many times the function was evaluated.
    pub evaluations: usize,
}

/// Stop when the simplex's values differ by less than this (absolutely).
const VALUE_TOLERANCE: f64 = 1e-13;
/// … and its points lie within this of the best one, in every coordinate.
const POINT_TOLERANCE: f64 = 1e-9;
/// Evaluations allowed in all, over every restart.
const MAX_EVALUATIONS: usize = 50_000;
/// Restarts at most.
const MAX_RESTARTS: usize = 12;
/// The models' parameters are searched within e^±LOG_BOUND (about 2e-9 to
/// 5e8): beyond it the likelihood is flat to double precision, and a search
/// that runs off towards a limit (a model that degenerates into a simpler
/// one) stops at the edge instead of wandering.
pub(crate) const LOG_BOUND: f64 = 20.0;

/// Whether every coordinate lies within ±[`LOG_BOUND`].
pub(crate) fn within_bounds(theta: &[f64]) -> bool {
    theta.iter().all(|t| t.abs() <= LOG_BOUND)
}

/// Size of the first simplex's steps from the start, in every coordinate.
const STEP: f64 = 0.25;

/// Minimises `f` from `start`. Non-finite values count as +∞, so `f` may
/// answer NaN where it is undefined.
///
/// # Errors
/// [`Error::NoConvergence`] when no finite value was found or the
/// evaluations ran out before the simplex converged.
pub(crate) fn minimize(mut f: impl FnMut(&[f64]) -> f64, start: &[f64]) -> Result<Minimum> {
    let mut evaluations = 0;
    let mut eval = |x: &[f64]| {
        evaluations += 1;
        let v = f(x);
        if v.is_finite() { v } else { f64::INFINITY }
    };
    let mut best = start.to_vec();
    let mut best_value = eval(&best);
    let mut converged = false;
    let mut used = 1;
    for restart in 0..=MAX_RESTARTS {
        let step = if restart == 0 { STEP } else { STEP / 4.0 };
        let (x, value, done) = nelder_mead(&mut eval, &best, step, MAX_EVALUATIONS.saturating_sub(used), &mut used);
        let improvement = best_value - value;
        if value <= best_value {
            best = x;
            best_value = value;
        }
        if !done {
            break;
        }
        if restart > 0 && improvement.abs() <= VALUE_TOLERANCE {
            converged = true;
            break;
        }
    }
    if !best_value.is_finite() {
        return Err(Error::NoConvergence("the function is not finite anywhere the search went".into()));
    }
    if !converged {
        return Err(Error::NoConvergence(format!(
            "Nelder-Mead did not settle within {MAX_EVALUATIONS} evaluations and {MAX_RESTARTS} restarts"
        )));
    }
    Ok(Minimum { x: best, value: best_value, evaluations })
}

/// One Nelder-Mead run (reflection 1, expansion 2, contraction and shrink ½)
/// of at most about `budget` evaluations, added to `total`.
/// Returns the best point, its value and whether the simplex converged.
fn nelder_mead(
    eval: &mut impl FnMut(&[f64]) -> f64,
    start: &[f64],
    step: f64,
    budget: usize,
    total: &mut usize,
) -> (Vec<f64>, f64, bool) {
    let n = start.len();
    let mut points: Vec<Vec<f64>> = Vec::with_capacity(n + 1);
    points.push(start.to_vec());
    for i in 0..n {
        let mut p = start.to_vec();
        p[i] += step;
        points.push(p);
    }
    let mut values: Vec<f64> = points.iter().map(|p| eval(p)).collect();
    let mut used = n + 1;
    loop {
        // Order best first.
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
        points = order.iter().map(|&i| points[i].clone()).collect();
        values = order.iter().map(|&i| values[i]).collect();

        let spread = values[n] - values[0];
        let size = points[1..]
            .iter()
            .flat_map(|p| p.iter().zip(&points[0]).map(|(a, b)| (a - b).abs()))
            .fold(0.0_f64, f64::max);
        if values[0].is_finite() && spread <= VALUE_TOLERANCE && size <= POINT_TOLERANCE {
            *total += used;
            return (points.swap_remove(0), values[0], true);
        }
        if used >= budget {
            *total += used;
            return (points.swap_remove(0), values[0], false);
        }

        let centroid: Vec<f64> = (0..n).map(|k| points[..n].iter().map(|p| p[k]).sum::<f64>() / n as f64).collect();
        let along = |t: f64, towards: &[f64]| -> Vec<f64> {
            centroid.iter().zip(towards).map(|(c, w)| c + t * (w - c)).collect()
        };
        let reflected = along(-1.0, &points[n]);
        let fr = eval(&reflected);
        used += 1;
        if fr < values[0] {
            let expanded = along(-2.0, &points[n]);
            let fe = eval(&expanded);
            used += 1;
            if fe < fr {
                points[n] = expanded;
                values[n] = fe;
            } else {
                points[n] = reflected;
                values[n] = fr;
            }
            continue;
        }
        if fr < values[n - 1] {
            points[n] = reflected;
            values[n] = fr;
            continue;
        }
        let (contracted, limit) =
            if fr < values[n] { (along(-0.5, &points[n]), fr) } else { (along(0.5, &points[n]), values[n]) };
        let fc = eval(&contracted);
        used += 1;
        if fc < limit {
            points[n] = contracted;
            values[n] = fc;
            continue;
        }
        // Shrink towards the best point.
        for i in 1..=n {
            let shrunk: Vec<f64> = points[0].iter().zip(&points[i]).map(|(b, p)| b + 0.5 * (p - b)).collect();
            values[i] = eval(&shrunk);
            points[i] = shrunk;
        }
        used += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_rosenbrock() {
        let rosenbrock = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let m = minimize(rosenbrock, &[-1.2, 1.0]).unwrap();
        assert!((m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6, "{m:?}");
        assert!(m.value < 1e-12);
    }

    #[test]
    fn finds_a_quadratic_minimum_in_four_dimensions() {
        let target = [0.3, -1.2, 2.0, 0.7];
        let f = |x: &[f64]| x.iter().zip(&target).enumerate().map(|(i, (a, b))| (i + 1) as f64 * (a - b).powi(2)).sum();
        let m = minimize(f, &[0.0; 4]).unwrap();
        for (got, want) in m.x.iter().zip(&target) {
            assert!((got - want).abs() < 1e-7, "{m:?}");
        }
    }

    #[test]
    fn treats_nan_as_infinitely_bad_and_fails_when_nothing_is_finite() {
        // Defined only for x > 0: NaN elsewhere.
        let f = |x: &[f64]| if x[0] > 0.0 { (x[0] - 2.0).powi(2) } else { f64::NAN };
        let m = minimize(f, &[0.5]).unwrap();
        assert!((m.x[0] - 2.0).abs() < 1e-7);
        assert!(matches!(minimize(|_| f64::NAN, &[0.0]), Err(Error::NoConvergence(_))));
    }
}
