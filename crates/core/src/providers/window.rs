//! When to run: the best start time for a job in a forecast (`wattprint when`) and the start
//! decision for `wattprint run --start-when-clean`. Pure functions of the points and a `now`;
//! [`wait_plan`] adds the provider call.
//!
//! The forecast is a step function `f(t)` (the points, normalised: see
//! [`super::normalize`]). Coverage starts at `s0 = max(now, start of the first point ending
//! after now)` and runs while points follow each other without a gap. For a job of duration
//! `d`, the window starting at `t` has mean intensity `m(t) = (F(t+d) − F(t)) / d` with
//! `F` the integral of `f`. Windows must lie inside the coverage (a window crossing the end
//! of the forecast, or a gap in it, is not allowed) and inside the query's limits. `m` is
//! piecewise linear in `t`, with breaks where `t` or `t + d` meets a point boundary, so its
//! minimum is at one of the candidates `s0`, `b`, `b − d` (for every boundary `b`) or the
//! last allowed start; the earliest candidate within 1e-9 (relative) of the minimum wins ties.
//! This is the Carbon Aware SDK's "minimum rolling average over the window size", evaluated
//! exactly rather than on a grid.

use super::{
    iso, normalize, IntensityPoint, IntensityProvider, ProviderError, SeriesError, Signal,
};
use serde::Serialize;
use std::time::Duration;

/// Bounds of a best-window search (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowQuery {
    pub now: i64,
    /// Length of the job, > 0.
    pub duration_s: i64,
    /// The window must start no later than this.
    pub latest_start: Option<i64>,
    /// The window must end no later than this (`when --within`).
    pub latest_end: Option<i64>,
}

/// One window and its mean intensity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    pub g_per_kwh: f64,
}

/// The result of [`best_window`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowPlan {
    pub signal: Signal,
    pub now: i64,
    /// The earliest possible start (`now`, or the forecast's first instant when it begins later).
    pub first_start: i64,
    /// Where usable coverage ends (forecast end, first gap, or `latest_end`).
    pub horizon_end: i64,
    /// The window starting as soon as possible.
    pub start_now: Window,
    /// The window with the lowest mean (earliest on ties).
    pub best: Window,
    /// `(start_now − best) / start_now × 100` (0 when `start_now` is 0).
    pub saving_percent: f64,
    /// Number of start times evaluated.
    pub candidates: usize,
}

/// Why no window could be chosen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WindowError {
    #[error("the job duration must be more than zero (got {0} s)")]
    InvalidDuration(i64),
    #[error("the forecast has no point from now on ({now}); the provider returned {points} points, none ending after now")]
    NoForecast { now: String, points: usize },
    #[error("{0}")]
    Series(#[from] SeriesError),
    #[error("the job ({}) is longer than the usable forecast horizon ({}, from {} to {}{}); give a shorter --duration{}",
        fmt_hm(*.duration_s), fmt_hm(*.available_s), iso::format(*.from), iso::format(*.to),
        .limit.because(), .limit.widen())]
    DurationExceedsHorizon {
        duration_s: i64,
        available_s: i64,
        from: i64,
        to: i64,
        limit: HorizonLimit,
    },
}

/// What cut the usable horizon short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HorizonLimit {
    /// The forecast ends (or has a gap).
    ForecastEnd,
    /// `--within` (the query's latest end).
    Within,
    /// The latest allowed start is before the forecast begins.
    StartBeforeForecast,
}

impl HorizonLimit {
    fn because(self) -> &'static str {
        match self {
            HorizonLimit::ForecastEnd => ", where the forecast ends",
            HorizonLimit::Within => ", limited by --within",
            HorizonLimit::StartBeforeForecast => {
                ", and the latest allowed start is before the forecast begins"
            }
        }
    }
    fn widen(self) -> &'static str {
        match self {
            HorizonLimit::Within => " or a longer --within",
            _ => "",
        }
    }
}

/// Error of [`wait_plan`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Window(#[from] WindowError),
}

/// `6h`, `1h30m`, `45m`, `30s`.
pub fn fmt_hm(s: i64) -> String {
    let s = s.max(0);
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    match (h, m, sec) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// The contiguous coverage from `now` on, with prefix integrals.
struct Coverage {
    signal: Signal,
    /// `(start, end, g/kWh)`, contiguous.
    segs: Vec<(i64, i64, f64)>,
    /// `cum[i]` = ∫ f from `segs[0].start` to `segs[i].start`.
    cum: Vec<f64>,
    s0: i64,
    end: i64,
}

impl Coverage {
    fn new(points: &[IntensityPoint], now: i64) -> Result<Coverage, WindowError> {
        let norm = normalize(points)?;
        let first =
            norm.iter()
                .position(|p| p.end > now)
                .ok_or_else(|| WindowError::NoForecast {
                    now: iso::format(now),
                    points: points.len(),
                })?;
        let mut segs: Vec<(i64, i64, f64)> = Vec::new();
        for p in &norm[first..] {
            if let Some(&(_, e, _)) = segs.last() {
                if p.start != e {
                    break; // a gap ends the usable coverage
                }
            }
            segs.push((p.start, p.end, p.g_per_kwh));
        }
        let mut cum = Vec::with_capacity(segs.len());
        let mut acc = 0.0;
        for &(a, b, v) in &segs {
            cum.push(acc);
            acc += v * (b - a) as f64;
        }
        let s0 = now.max(segs[0].0);
        let end = segs[segs.len() - 1].1;
        Ok(Coverage {
            signal: norm[first].signal,
            segs,
            cum,
            s0,
            end,
        })
    }

    /// Index of the segment containing `t` (the last one for `t == end`).
    fn index(&self, t: i64) -> usize {
        self.segs
            .partition_point(|&(a, _, _)| a <= t)
            .saturating_sub(1)
            .min(self.segs.len() - 1)
    }

    /// ∫ f from the coverage start to `t` (`t` within the coverage).
    fn integral(&self, t: i64) -> f64 {
        let i = self.index(t);
        let (a, _, v) = self.segs[i];
        self.cum[i] + v * (t - a) as f64
    }

    /// Mean over `[t, t + d)`, or the value at `t` when `d == 0`.
    fn mean(&self, t: i64, d: i64) -> f64 {
        if d == 0 {
            self.segs[self.index(t)].2
        } else {
            (self.integral(t + d) - self.integral(t)) / d as f64
        }
    }

    /// Candidate starts in `[s0, last]`, sorted, without duplicates.
    fn candidates(&self, d: i64, last: i64) -> Vec<i64> {
        let mut c = vec![self.s0, last];
        for &(a, b, _) in &self.segs {
            for x in [a, b, a - d, b - d] {
                if x > self.s0 && x < last {
                    c.push(x);
                }
            }
        }
        c.sort_unstable();
        c.dedup();
        c
    }
}

/// The start bound and end of usable coverage for a query, or the error saying it is too short.
fn bounds(
    cov: &Coverage,
    d: i64,
    latest_start: Option<i64>,
    latest_end: Option<i64>,
) -> Result<(i64, i64), WindowError> {
    let horizon_end = cov.end.min(latest_end.unwrap_or(i64::MAX));
    // With d == 0 (an instant), the start must fall inside a point.
    let last_by_end = if d == 0 {
        horizon_end - 1
    } else {
        horizon_end - d
    };
    let last = last_by_end.min(latest_start.unwrap_or(i64::MAX));
    if last < cov.s0 {
        let limited_by_end = latest_end.is_some_and(|e| e < cov.end);
        return Err(WindowError::DurationExceedsHorizon {
            duration_s: d,
            available_s: horizon_end - cov.s0,
            from: cov.s0,
            to: horizon_end,
            limit: if limited_by_end {
                HorizonLimit::Within
            } else if latest_start.is_some_and(|s| s < cov.s0) {
                HorizonLimit::StartBeforeForecast
            } else {
                HorizonLimit::ForecastEnd
            },
        });
    }
    Ok((last, horizon_end))
}

/// Index of the lowest of `values` (earliest within a 1e-9 relative tolerance).
fn argmin(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate().skip(1) {
        let b = values[best];
        if v < b - 1e-9 * b.abs().max(1.0) {
            best = i;
        }
    }
    best
}

/// The best start for a job of `q.duration_s` in `points` (see the module doc).
pub fn best_window(points: &[IntensityPoint], q: &WindowQuery) -> Result<WindowPlan, WindowError> {
    let d = q.duration_s;
    if d <= 0 {
        return Err(WindowError::InvalidDuration(d));
    }
    let cov = Coverage::new(points, q.now)?;
    let (last, horizon_end) = bounds(&cov, d, q.latest_start, q.latest_end)?;
    let cands = cov.candidates(d, last);
    let means: Vec<f64> = cands.iter().map(|&t| cov.mean(t, d)).collect();
    let i = argmin(&means);
    let start_now = Window {
        start: cov.s0,
        end: cov.s0 + d,
        g_per_kwh: means[0],
    };
    let best = Window {
        start: cands[i],
        end: cands[i] + d,
        g_per_kwh: means[i],
    };
    Ok(WindowPlan {
        signal: cov.signal,
        now: q.now,
        first_start: cov.s0,
        horizon_end,
        start_now,
        best,
        saving_percent: saving_percent(start_now.g_per_kwh, best.g_per_kwh),
        candidates: cands.len(),
    })
}

/// `(now − best) / now × 100`, 0 when `now` is 0.
pub fn saving_percent(now: f64, best: f64) -> f64 {
    if now > 0.0 {
        (now - best) / now * 100.0
    } else {
        0.0
    }
}

/// Inputs of a start decision (`run --start-when-clean`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaitQuery {
    pub now: i64,
    /// Wait at most this long: the job starts no later than `now + within_s`.
    pub within_s: i64,
    /// Start as soon as the expected intensity is at or below this (gCO2e/kWh).
    pub threshold_g_per_kwh: Option<f64>,
    /// The job's expected duration: judge each start by the mean over the job. Without it,
    /// each start is judged by the intensity at that instant.
    pub duration_s: Option<i64>,
}

/// When to start, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartDecision {
    /// Unix seconds; `<= now` means start now.
    pub start_at: i64,
    /// The intensity expected at `start_at` (the mean over the job when its duration is known).
    pub expected_g_per_kwh: f64,
    /// The same for starting as soon as possible.
    pub now_g_per_kwh: f64,
    pub signal: Signal,
    /// With a threshold: whether the forecast reaches it within the wait.
    pub threshold_met: Option<bool>,
    pub reason: String,
}

/// The start decision for `points` (pure; see [`wait_plan`]).
///
/// * With a threshold: the earliest start in `[now, now + within]` whose expected intensity
///   is at or below it (between candidates the mean is linear, so the crossing is found
///   exactly, to the second). If the forecast never gets there, the cleanest start within the
///   wait, with `threshold_met = Some(false)`.
/// * Without: the cleanest start within the wait (ties: the earliest).
///
/// The job's window (with a duration) must fit inside the forecast; a job longer than the
/// forecast is an error (retry without a duration to judge by the instant value).
pub fn decide_start(
    points: &[IntensityPoint],
    q: &WaitQuery,
) -> Result<StartDecision, WindowError> {
    let d = q.duration_s.unwrap_or(0);
    if d < 0 {
        return Err(WindowError::InvalidDuration(d));
    }
    let within = q.within_s.max(0);
    let cov = Coverage::new(points, q.now)?;
    let (last, _) = bounds(&cov, d, Some(q.now.saturating_add(within)), None)?;
    let cands = cov.candidates(d, last);
    let means: Vec<f64> = cands.iter().map(|&t| cov.mean(t, d)).collect();
    let now_g = means[0];
    let judged = if d > 0 {
        format!("mean over the {} job", fmt_hm(d))
    } else {
        "intensity".to_string()
    };
    let best_i = argmin(&means);
    let cleanest = |reason: String, met: Option<bool>| StartDecision {
        start_at: cands[best_i],
        expected_g_per_kwh: means[best_i],
        now_g_per_kwh: now_g,
        signal: cov.signal,
        threshold_met: met,
        reason,
    };
    let Some(g) = q.threshold_g_per_kwh else {
        let reason = if best_i == 0 {
            format!(
                "now is the cleanest start in the next {}: {judged} {:.1} g/kWh",
                fmt_hm(within),
                now_g
            )
        } else {
            format!(
                "cleanest start in the next {}: {} with {judged} {:.1} g/kWh vs {:.1} now ({:.1} % lower)",
                fmt_hm(within),
                iso::format(cands[best_i]),
                means[best_i],
                now_g,
                saving_percent(now_g, means[best_i])
            )
        };
        return Ok(cleanest(reason, None));
    };
    for i in 0..cands.len() {
        let (t, m) = (cands[i], means[i]);
        let found = if m <= g {
            Some((t, m))
        } else if d > 0 && i + 1 < cands.len() && means[i + 1] <= g {
            // m is linear on [t, next]: solve m(x) = g and round up to the second.
            let (t1, m1) = (cands[i + 1], means[i + 1]);
            let x = t as f64 + (m - g) / (m - m1) * (t1 - t) as f64;
            let x = (x.ceil() as i64).clamp(t, t1);
            // Rounding can leave the crossing a hair above g; the next candidate cannot be.
            match cov.mean(x, d) {
                e if e <= g + 1e-9 * g.abs().max(1.0) => Some((x, e)),
                _ => Some((t1, m1)),
            }
        } else {
            None
        };
        if let Some((start, exp)) = found {
            let reason = if start == cov.s0 {
                format!(
                    "{judged} now {exp:.1} g/kWh is at or below the threshold {g} g/kWh: start now"
                )
            } else {
                format!(
                    "{judged} first reaches the threshold {g} g/kWh at {} ({exp:.1} g/kWh; {now_g:.1} now)",
                    iso::format(start)
                )
            };
            return Ok(StartDecision {
                start_at: start,
                expected_g_per_kwh: exp,
                now_g_per_kwh: now_g,
                signal: cov.signal,
                threshold_met: Some(true),
                reason,
            });
        }
    }
    let reason = format!(
        "the forecast never reaches the threshold {g} g/kWh within {}; starting at the cleanest time instead: {} ({judged} {:.1} g/kWh; {now_g:.1} now)",
        fmt_hm(within),
        iso::format(cands[best_i]),
        means[best_i]
    );
    Ok(cleanest(reason, Some(false)))
}

/// Fetches the forecast for `zone` (far enough to cover the wait and the job) and decides when
/// to start. The waiting itself is the caller's.
pub fn wait_plan(
    provider: &dyn IntensityProvider,
    zone: &str,
    q: &WaitQuery,
) -> Result<StartDecision, PlanError> {
    let horizon = q
        .within_s
        .max(0)
        .saturating_add(q.duration_s.unwrap_or(0).max(0))
        .saturating_add(3600);
    let points = provider.forecast(
        zone,
        Duration::from_secs(u64::try_from(horizon).unwrap_or(0)),
    )?;
    Ok(decide_start(&points, q)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::providers::PointKind;

    fn series(start: i64, step: i64, values: &[f64]) -> Vec<IntensityPoint> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| IntensityPoint {
                start: start + i as i64 * step,
                end: start + (i as i64 + 1) * step,
                g_per_kwh: v,
                signal: Signal::Average,
                kind: PointKind::Forecast,
                source: "test".into(),
                estimation_method: None,
            })
            .collect()
    }

    fn q(now: i64, d: i64, end: Option<i64>) -> WindowQuery {
        WindowQuery {
            now,
            duration_s: d,
            latest_start: None,
            latest_end: end,
        }
    }

    const H: i64 = 3600;

    #[test]
    fn finds_the_known_best_window() {
        // 12 hourly values; the best 3 h window is hours 6..9 (mean 20).
        let v = [
            100.0, 90.0, 80.0, 70.0, 60.0, 50.0, 20.0, 20.0, 20.0, 90.0, 95.0, 99.0,
        ];
        let p = series(0, H, &v);
        let plan = best_window(&p, &q(0, 3 * H, None)).unwrap();
        assert_eq!(plan.best.start, 6 * H);
        assert_eq!(plan.best.end, 9 * H);
        assert!((plan.best.g_per_kwh - 20.0).abs() < 1e-9);
        assert!((plan.start_now.g_per_kwh - 90.0).abs() < 1e-9);
        assert!((plan.saving_percent - (90.0 - 20.0) / 90.0 * 100.0).abs() < 1e-9);
        assert_eq!(plan.horizon_end, 12 * H);
    }

    #[test]
    fn ties_pick_the_earliest() {
        let v = [50.0, 10.0, 10.0, 50.0, 10.0, 10.0, 50.0];
        let p = series(0, H, &v);
        let plan = best_window(&p, &q(0, 2 * H, None)).unwrap();
        assert_eq!(plan.best.start, H);
        // A flat forecast: start now.
        let flat = series(0, H, &[30.0; 6]);
        assert_eq!(best_window(&flat, &q(0, H, None)).unwrap().best.start, 0);
    }

    #[test]
    fn windows_crossing_the_horizon_are_excluded() {
        // The cleanest hours are the last two, but a 3 h window cannot start there.
        let v = [60.0, 60.0, 60.0, 50.0, 5.0, 5.0];
        let p = series(0, H, &v);
        let plan = best_window(&p, &q(0, 3 * H, None)).unwrap();
        assert_eq!(plan.best.start, 3 * H);
        assert!(plan.best.end <= 6 * H);
        assert!((plan.best.g_per_kwh - 20.0).abs() < 1e-9);
        // --within 5h: the window must end by 5 h.
        let plan = best_window(&p, &q(0, 3 * H, Some(5 * H))).unwrap();
        assert_eq!(plan.best.end, 5 * H);
        assert_eq!(plan.horizon_end, 5 * H);
        // A gap ends the coverage.
        let mut gap = series(0, H, &[60.0, 60.0, 60.0]);
        gap.extend(series(4 * H, H, &[1.0, 1.0, 1.0]));
        let plan = best_window(&gap, &q(0, 2 * H, None)).unwrap();
        assert!(plan.best.end <= 3 * H);
    }

    #[test]
    fn duration_longer_than_the_horizon_is_an_error() {
        let p = series(0, H, &[10.0; 4]);
        let e = best_window(&p, &q(0, 5 * H, None)).unwrap_err();
        assert!(matches!(e, WindowError::DurationExceedsHorizon { .. }));
        let msg = e.to_string();
        assert!(msg.contains("5h") && msg.contains("4h"), "{msg}");
        let e = best_window(&p, &q(0, 3 * H, Some(2 * H))).unwrap_err();
        assert!(e.to_string().contains("--within"), "{e}");
        assert!(matches!(
            best_window(&p, &q(0, 0, None)),
            Err(WindowError::InvalidDuration(0))
        ));
        // Exactly the horizon fits.
        assert!(best_window(&p, &q(0, 4 * H, None)).is_ok());
    }

    #[test]
    fn now_inside_a_point_and_unaligned_best() {
        // now is 30 min into the first hour; 90-minute job.
        let v = [100.0, 40.0, 40.0, 100.0];
        let p = series(0, H, &v);
        let now = H / 2;
        let plan = best_window(&p, &q(now, 90 * 60, None)).unwrap();
        assert_eq!(plan.first_start, now);
        assert_eq!(plan.start_now.start, now);
        // Any start in [1h, 1h30m] gives 40; the earliest is 1h.
        assert_eq!(plan.best.start, H);
        assert!((plan.best.g_per_kwh - 40.0).abs() < 1e-9);
        // Start now: 30 min at 100, 60 min at 40 → 60.
        assert!((plan.start_now.g_per_kwh - 60.0).abs() < 1e-9);
        // Past points are ignored; a forecast starting later than now starts there.
        let later = series(2 * H, H, &[10.0, 20.0]);
        let plan = best_window(&later, &q(0, H, None)).unwrap();
        assert_eq!(plan.first_start, 2 * H);
        assert!(matches!(
            best_window(&series(0, H, &[1.0]), &q(5 * H, H, None)),
            Err(WindowError::NoForecast { .. })
        ));
    }

    #[test]
    fn the_optimum_matches_a_brute_force_search() {
        // Pseudo-random half-hourly forecast; compare with a 60-second grid search.
        let mut x: u64 = 12345;
        let v: Vec<f64> = (0..40)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) % 400) as f64
            })
            .collect();
        let p = series(0, 1800, &v);
        let now = 7 * 60;
        let d = 5 * H + 13 * 60;
        let plan = best_window(&p, &q(now, d, None)).unwrap();
        let f = |t: i64| v[(t / 1800) as usize];
        let mut best = f64::MAX;
        let mut t = now;
        while t + d <= 40 * 1800 {
            let mean = (t..t + d).step_by(60).map(f).sum::<f64>() / (d / 60) as f64;
            best = best.min(mean);
            t += 60;
        }
        // Every candidate lies on the minute grid here, so the two optima agree exactly.
        assert!(
            (plan.best.g_per_kwh - best).abs() < 1e-6,
            "{} vs {best}",
            plan.best.g_per_kwh
        );
    }

    #[test]
    fn mixed_signals_are_refused() {
        let mut p = series(0, H, &[10.0, 20.0]);
        p[1].signal = Signal::Marginal;
        assert!(matches!(
            best_window(&p, &q(0, H, None)),
            Err(WindowError::Series(SeriesError::MixedSignals { .. }))
        ));
    }

    fn wq(now: i64, within: i64, thr: Option<f64>, d: Option<i64>) -> WaitQuery {
        WaitQuery {
            now,
            within_s: within,
            threshold_g_per_kwh: thr,
            duration_s: d,
        }
    }

    #[test]
    fn start_decisions() {
        let v = [300.0, 250.0, 120.0, 80.0, 200.0, 40.0, 300.0, 300.0];
        let p = series(0, H, &v);
        // Threshold met now.
        let s = decide_start(&p, &wq(0, 6 * H, Some(400.0), None)).unwrap();
        assert_eq!((s.start_at, s.threshold_met), (0, Some(true)));
        // First instant at or below 100 is 3 h.
        let s = decide_start(&p, &wq(0, 6 * H, Some(100.0), None)).unwrap();
        assert_eq!(s.start_at, 3 * H);
        assert_eq!(s.expected_g_per_kwh, 80.0);
        // Not reachable within 2 h: the cleanest start in the wait.
        let s = decide_start(&p, &wq(0, 2 * H, Some(100.0), None)).unwrap();
        assert_eq!(s.threshold_met, Some(false));
        assert_eq!(s.start_at, 2 * H);
        // No threshold: cleanest start within 6 h is 5 h (40).
        let s = decide_start(&p, &wq(0, 6 * H, None, None)).unwrap();
        assert_eq!(s.start_at, 5 * H);
        assert_eq!(s.threshold_met, None);
        // Within bounds the start, not the end: a 2 h job may end after now + within.
        let s = decide_start(&p, &wq(0, 5 * H, None, Some(2 * H))).unwrap();
        assert_eq!(s.start_at, 2 * H); // mean(120, 80) = 100
        assert!((s.expected_g_per_kwh - 100.0).abs() < 1e-9);
    }

    #[test]
    fn threshold_crossing_with_a_duration_is_exact() {
        // Mean over a 1 h job starting at t in [0, 1h]: 200 − 100·t/H. Reaches 150 at 30 min.
        let p = series(0, H, &[200.0, 100.0, 100.0]);
        let s = decide_start(&p, &wq(0, 2 * H, Some(150.0), Some(H))).unwrap();
        assert_eq!(s.start_at, H / 2);
        assert!(s.expected_g_per_kwh <= 150.0);
        assert_eq!(s.threshold_met, Some(true));
        // Longer than the forecast: an error that says so.
        let e = decide_start(&p, &wq(0, H, None, Some(4 * H))).unwrap_err();
        assert!(matches!(e, WindowError::DurationExceedsHorizon { .. }));
    }
}
