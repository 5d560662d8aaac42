//! Predicting where a running job will end up: final energy and emissions with a P10–P90
//! interval, from the energy rate so far and either the job's reported progress or an expected
//! duration.
//!
//! Method (documented in docs/caps-and-budgets.md):
//! 1. The observed history is split into up to [`CHUNKS`] equal-time chunks; each chunk gives an
//!    average power. The point estimate of the power still to come is the average power of the
//!    most recent half of the history (it tracks phase changes); P10 and P90 are the 10th and
//!    90th percentiles of the chunk powers (linear interpolation).
//! 2. The time still to come: with an expected duration, `expected − elapsed` (no spread). With
//!    progress reports `(tᵢ, pᵢ)`, a least-squares line through the recent half of the reports
//!    gives the position now `p̂` and the rate `r`; the point estimate is `(1 − p̂)/r`. Its spread
//!    comes from the residual spread σ of the reports (position `p̂ ± 1.2816σ`) and from the rate
//!    in equal-time chunks of the whole history (P10/P90 of the chunk rates).
//! 3. Final energy = energy so far + power × remaining time, low = P10 power × short remaining
//!    time, high = P90 power × long remaining time. Emissions scale with the run's emissions per
//!    kWh so far.

use serde::{Deserialize, Serialize};

/// Number of equal-time chunks the history is split into.
pub const CHUNKS: usize = 10;

/// An interval estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
}

impl Band {
    pub fn covers(&self, x: f64) -> bool {
        self.p10 <= x && x <= self.p90
    }
}

/// A prediction of the job's final totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Seconds since the start when the prediction was made.
    pub at_s: f64,
    /// Fraction of the job done (progress file, or elapsed / expected duration).
    pub fraction_done: f64,
    pub final_kwh: Band,
    pub final_kg: Band,
    /// Expected total duration, seconds.
    pub final_duration_s: Band,
    /// `progress` or `expected-duration`.
    pub basis: String,
}

/// What the job has told us about its progress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Basis {
    /// Progress observations `(elapsed_s, fraction 0..=1)`, oldest first.
    Progress,
    /// The user's expected total duration, seconds.
    ExpectedDuration(f64),
}

/// Percentile with linear interpolation; `q` in 0..=1. `xs` must not be empty.
fn percentile(xs: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Value of a piecewise-linear function given as `(t, y)` points (sorted by t) at `t`.
fn interp(points: &[(f64, f64)], t: f64) -> f64 {
    match points {
        [] => 0.0,
        [only] => only.1,
        _ => {
            if t <= points[0].0 {
                return points[0].1;
            }
            for w in points.windows(2) {
                let ((t0, y0), (t1, y1)) = (w[0], w[1]);
                if t <= t1 {
                    if t1 > t0 {
                        return y0 + (y1 - y0) * (t - t0) / (t1 - t0);
                    }
                    return y1;
                }
            }
            points[points.len() - 1].1
        }
    }
}

/// Predict final totals.
///
/// `energy`: cumulative energy history `(elapsed_s, kWh)`, oldest first, starting near 0.
/// `progress`: progress observations `(elapsed_s, fraction)` (used with [`Basis::Progress`]).
/// `kg_per_kwh`: the run's emissions per kWh of IT energy so far (PUE × intensity, embodied
/// rate folded in by the caller if wanted).
/// Returns `None` until there is enough to say anything (no energy yet, no progress yet).
pub fn predict(
    energy: &[(f64, f64)],
    progress: &[(f64, f64)],
    basis: Basis,
    kg_per_kwh: f64,
) -> Option<Prediction> {
    let &(t_now, e_now) = energy.last()?;
    let t_start = energy.first()?.0;
    let span = t_now - t_start;
    if span <= 0.0 || !e_now.is_finite() {
        return None;
    }
    let n = CHUNKS.min(energy.len().saturating_sub(1)).max(1);
    let width = span / n as f64;
    let bounds: Vec<f64> = (0..=n).map(|i| t_start + width * i as f64).collect();
    let chunk_power: Vec<f64> = bounds
        .windows(2)
        .map(|w| (interp(energy, w[1]) - interp(energy, w[0])) / (w[1] - w[0]))
        .collect();
    let half = t_start + span / 2.0;
    let recent_power = (e_now - interp(energy, half)) / (t_now - half);
    let p_lo = percentile(&chunk_power, 0.1).min(recent_power);
    let p_hi = percentile(&chunk_power, 0.9).max(recent_power);

    let (frac, rem_mid, rem_short, rem_long) = match basis {
        Basis::ExpectedDuration(total) => {
            let rem = (total - t_now).max(0.0);
            ((t_now / total).clamp(0.0, 1.0), rem, rem, rem)
        }
        Basis::Progress => {
            let &(tp, p_last) = progress.last()?;
            if p_last.is_nan() || p_last <= 0.0 {
                return None;
            }
            // Least-squares line through the recent half of the progress reports: its value
            // now is the position (robust to a noisy last report), its slope the rate, and the
            // residual spread the uncertainty of the position.
            let recent: Vec<(f64, f64)> = {
                let from = tp / 2.0;
                let r: Vec<(f64, f64)> = progress
                    .iter()
                    .copied()
                    .filter(|(t, _)| *t >= from)
                    .collect();
                if r.len() >= 3 {
                    r
                } else {
                    progress.to_vec()
                }
            };
            let (p_now, slope, sigma) = if recent.len() >= 3 {
                let m = recent.len() as f64;
                let mt = recent.iter().map(|x| x.0).sum::<f64>() / m;
                let mp = recent.iter().map(|x| x.1).sum::<f64>() / m;
                let stt: f64 = recent.iter().map(|x| (x.0 - mt).powi(2)).sum();
                let stp: f64 = recent.iter().map(|x| (x.0 - mt) * (x.1 - mp)).sum();
                let slope = if stt > 0.0 { stp / stt } else { 0.0 };
                let resid: f64 = recent
                    .iter()
                    .map(|x| (x.1 - (mp + slope * (x.0 - mt))).powi(2))
                    .sum();
                let sigma = (resid / (m - 2.0).max(1.0)).sqrt();
                (mp + slope * (t_now - mt), slope, sigma)
            } else {
                (p_last, p_last / tp.max(1e-9), 0.0)
            };
            let (p_now, slope) = if slope > 0.0 && p_now > 0.0 {
                (p_now.min(1.0), slope)
            } else {
                (p_last.min(1.0), p_last / t_now.max(1e-9))
            };
            // spread of the rate over equal-time chunks of the whole progress history
            let rates: Vec<f64> = if progress.len() >= 3 {
                let k = CHUNKS.min(progress.len() - 1);
                let w = tp / k as f64;
                let mut pts = vec![(0.0, 0.0)];
                pts.extend_from_slice(progress);
                (0..k)
                    .map(|i| {
                        let a = w * i as f64;
                        (interp(&pts, a + w) - interp(&pts, a)) / w
                    })
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .collect()
            } else {
                Vec::new()
            };
            let (r_lo, r_hi) = if rates.is_empty() {
                (slope, slope)
            } else {
                (
                    percentile(&rates, 0.1).min(slope),
                    percentile(&rates, 0.9).max(slope),
                )
            };
            // 1.2816 = the standard normal's 90th percentile
            let z = 1.2816 * sigma;
            let rem = |pos: f64, r: f64| ((1.0 - pos.clamp(0.0, 1.0)) / r).max(0.0);
            (
                p_now,
                rem(p_now, slope),
                rem(p_now + z, r_hi),
                rem(p_now - z, r_lo),
            )
        }
    };
    let final_kwh = Band {
        p10: e_now + p_lo.max(0.0) * rem_short,
        p50: e_now + recent_power.max(0.0) * rem_mid,
        p90: e_now + p_hi.max(0.0) * rem_long,
    };
    let k = if kg_per_kwh.is_finite() {
        kg_per_kwh
    } else {
        0.0
    };
    Some(Prediction {
        at_s: t_now,
        fraction_done: frac,
        final_kwh,
        final_kg: Band {
            p10: final_kwh.p10 * k,
            p50: final_kwh.p50 * k,
            p90: final_kwh.p90 * k,
        },
        final_duration_s: Band {
            p10: t_now + rem_short,
            p50: t_now + rem_mid,
            p90: t_now + rem_long,
        },
        basis: match basis {
            Basis::Progress => "progress".into(),
            Basis::ExpectedDuration(_) => "expected-duration".into(),
        },
    })
}

/// Parse what a job wrote to its progress file: a fraction `0.42`, a percentage `42%`, or
/// `done/total` such as `420/1000`. Whitespace and a trailing newline are ignored; only the
/// last non-empty line counts (jobs may append).
/// Whether `text` holds a progress line (not only blanks and checkpoint signals).
pub fn has_progress(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with("checkpoint"))
}

pub fn parse_progress(text: &str) -> Result<f64, String> {
    // `checkpoint …` lines are checkpoint signals (crate::waste), not progress.
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("checkpoint"))
        .ok_or_else(|| "the progress file is empty".to_string())?;
    let bad = || {
        format!("`{line}` is not a progress value: write a fraction (0.42), a percentage (42%) or done/total (420/1000)")
    };
    let v = if let Some((a, b)) = line.split_once('/') {
        let a: f64 = a.trim().parse().map_err(|_| bad())?;
        let b: f64 = b.trim().parse().map_err(|_| bad())?;
        if b.is_nan() || b <= 0.0 {
            return Err(bad());
        }
        a / b
    } else if let Some(p) = line.strip_suffix('%') {
        p.trim().parse::<f64>().map_err(|_| bad())? / 100.0
    } else {
        line.parse::<f64>().map_err(|_| bad())?
    };
    if !v.is_finite() || !(0.0..=1.0).contains(&v) {
        return Err(format!("progress {v} is outside 0–1 (from `{line}`)"));
    }
    Ok(v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_progress() {
        assert_eq!(parse_progress("0.25\n").unwrap(), 0.25);
        assert_eq!(parse_progress("1\n2\n 30/120 \n\n").unwrap(), 0.25);
        assert_eq!(parse_progress("42%").unwrap(), 0.42);
        assert_eq!(parse_progress("0.5\ncheckpoint 1700000000\n").unwrap(), 0.5);
        for bad in ["", "abc", "1.5", "3/0", "-0.1", "NaN"] {
            assert!(parse_progress(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expected_duration_constant_power() {
        // 100 W for 60 s of a 600 s job
        let e: Vec<(f64, f64)> = (0..=60)
            .map(|s| (s as f64, 100.0 * s as f64 / 3.6e6))
            .collect();
        let p = predict(&e, &[], Basis::ExpectedDuration(600.0), 0.5).unwrap();
        let truth = 100.0 * 600.0 / 3.6e6;
        assert!((p.final_kwh.p50 - truth).abs() < 1e-9 * truth.max(1.0));
        assert!(p.final_kwh.covers(truth));
        assert!((p.final_kg.p50 - truth * 0.5).abs() < 1e-12);
        assert!((p.fraction_done - 0.1).abs() < 1e-12);
    }

    #[test]
    fn progress_based_prediction_converges_and_covers_truth() {
        // A job of 1000 s whose power alternates 80/120 W every 25 s (mean 100 W), progress
        // linear in time with jitter; truth = 100 kJ.
        let total = 1000.0;
        let power = |t: f64| {
            if ((t / 25.0) as i64) % 2 == 0 {
                80.0
            } else {
                120.0
            }
        };
        let mut e = vec![(0.0, 0.0)];
        let mut acc = 0.0;
        let mut prog = Vec::new();
        let truth_kwh = {
            let mut a = 0.0;
            for s in 0..1000 {
                a += power(s as f64 + 0.5);
            }
            a / 3.6e6
        };
        let mut widths = Vec::new();
        for s in 1..=900 {
            acc += power(s as f64 - 0.5);
            e.push((s as f64, acc / 3.6e6));
            if s % 10 == 0 {
                let jitter = if (s / 10) % 3 == 0 { 0.004 } else { -0.002 };
                prog.push((s as f64, (s as f64 / total + jitter).clamp(0.0, 1.0)));
            }
            if s >= 100 && s % 100 == 0 {
                let p = predict(&e, &prog, Basis::Progress, 0.3).unwrap();
                assert!(
                    p.final_kwh.covers(truth_kwh),
                    "at {s}s: {:?} vs truth {truth_kwh}",
                    p.final_kwh
                );
                widths.push(p.final_kwh.p90 - p.final_kwh.p10);
            }
        }
        // converges: the interval shrinks and the median ends within 2 % of the truth
        assert!(widths.last().unwrap() < &(widths[0] * 0.5), "{widths:?}");
        let p = predict(&e, &prog, Basis::Progress, 0.3).unwrap();
        assert!(
            (p.final_kwh.p50 - truth_kwh).abs() < 0.02 * truth_kwh,
            "{p:?}"
        );
    }

    #[test]
    fn nothing_to_say_yet() {
        assert!(predict(&[], &[], Basis::Progress, 1.0).is_none());
        assert!(predict(&[(0.0, 0.0), (1.0, 0.1)], &[], Basis::Progress, 1.0).is_none());
        assert!(predict(
            &[(0.0, 0.0), (1.0, 0.1)],
            &[(1.0, 0.0)],
            Basis::Progress,
            1.0
        )
        .is_none());
    }
}
