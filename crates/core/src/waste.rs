//! Waste made concrete: compute discarded at a failure (the energy since the last checkpoint
//! the job saved) and GPU energy drawn while idle (allocations held at near-zero load).
//!
//! **Checkpoint signals.** A job says it saved a checkpoint by appending a line to
//! `$WATTPRINT_PROGRESS_FILE` (progress lines are unchanged; see
//! [`crate::prediction::parse_progress`]):
//!
//! ```text
//! checkpoint 1733310000.25     # saved at this Unix time (seconds, fraction allowed)
//! checkpoint                   # saved now: the file's modification time, if it is the last line
//! ```
//!
//! or, in Python, `t.checkpoint_saved()`. Without any signal, what a failure discarded is
//! *unknown* (never 0).
//!
//! **Idle GPU.** An interval of a GPU's series whose mean power is at most
//! [`IDLE_POWER_MARGIN`] × the GPU's idle power (the record's `idle_power_w`) is taken as
//! near-zero utilisation; consecutive such intervals form a span, kept when it lasts at least
//! the given minimum. Rules: docs/pipeline.md.

use crate::sampler::SeriesPoint;
use crate::units::{round_sig, RECORD_DIGITS};
use crate::validate::{check_range, ValidationError, MAX_DURATION_S, MAX_EMISSIONS_KG};
use crate::validate::{MAX_ENERGY_KWH, MAX_NAME};
use serde::{Deserialize, Serialize};

/// Most checkpoint signals one run keeps the count of (further ones still count as latest).
pub const MAX_CHECKPOINTS: u64 = 1_000_000;

/// The checkpoint cadence the advice compares with, minutes.
pub const ADVISED_CHECKPOINT_MIN: f64 = 30.0;

/// What a run that did not finish discarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discarded {
    /// Checkpoint signals received.
    pub checkpoints: u64,
    /// Seconds from the start to the last checkpoint, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checkpoint_s: Option<f64>,
    /// IT energy since the last checkpoint (`None`: unknown, no signal), kWh.
    pub energy_kwh: Option<f64>,
    /// Its emissions (the run's operational intensity × PUE), kg CO2e.
    pub emissions_kg: Option<f64>,
    /// What would have avoided it, in words.
    pub advice: String,
}

impl Discarded {
    pub fn check(&self) -> Result<(), ValidationError> {
        if let Some(s) = self.last_checkpoint_s {
            check_range("discarded.last_checkpoint_s", s, MAX_DURATION_S, "a year")?;
        }
        if let Some(e) = self.energy_kwh {
            check_range("discarded.energy_kwh", e, MAX_ENERGY_KWH, "one host")?;
        }
        if let Some(k) = self.emissions_kg {
            check_range("discarded.emissions_kg", k, MAX_EMISSIONS_KG, "one host")?;
        }
        crate::validate::check_text("discarded.advice", &self.advice, 4 * MAX_NAME)?;
        Ok(())
    }
}

/// Checkpoint lines of a progress file: their Unix times. A bare `checkpoint` takes
/// `mtime` (the file's modification time) when it is the file's last non-empty line, and is
/// otherwise not usable (counted in the second value).
pub fn checkpoint_lines(text: &str, mtime: Option<f64>) -> (Vec<f64>, u64) {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut times = Vec::new();
    let mut bad = 0;
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.strip_prefix("checkpoint") else {
            continue;
        };
        let rest = rest.trim();
        if rest.is_empty() {
            match mtime {
                Some(t) if i + 1 == lines.len() => times.push(t),
                _ => bad += 1,
            }
        } else {
            match rest.parse::<f64>() {
                Ok(t) if t.is_finite() && t > 0.0 => times.push(t),
                _ => bad += 1,
            }
        }
        if times.len() as u64 >= MAX_CHECKPOINTS {
            break;
        }
    }
    (times, bad)
}

/// Energy of `series` (all devices' points) after `t` seconds, as a fraction of the whole
/// (a point straddling `t` counts pro rata); `None` when the series holds no energy.
pub fn share_after(series: &[&[SeriesPoint]], t: f64) -> Option<f64> {
    let mut total = 0.0;
    let mut after = 0.0;
    for pts in series {
        for p in *pts {
            let e = p.energy_j.max(0.0);
            total += e;
            if p.t0 >= t {
                after += e;
            } else if p.t1 > t && p.t1 > p.t0 {
                after += e * (p.t1 - t) / (p.t1 - p.t0);
            }
        }
    }
    (total > 0.0).then(|| (after / total).clamp(0.0, 1.0))
}

/// What a run that ended unfinished discarded, from the checkpoint times (seconds since its
/// start), its series, its IT energy and operational emissions.
pub fn discarded(
    checkpoints_s: &[f64],
    series: &[&[SeriesPoint]],
    duration_s: f64,
    energy_kwh: f64,
    operational_kg: f64,
) -> Discarded {
    let last = checkpoints_s
        .iter()
        .copied()
        .filter(|t| t.is_finite())
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))))
        .map(|t| t.clamp(0.0, duration_s.max(0.0)));
    let n = checkpoints_s.len() as u64;
    let Some(tc) = last else {
        return Discarded {
            checkpoints: 0,
            last_checkpoint_s: None,
            energy_kwh: None,
            emissions_kg: None,
            advice: "unknown: the job signalled no checkpoint (append `checkpoint <unix time>` to \
                     $WATTPRINT_PROGRESS_FILE, or call t.checkpoint_saved(), when one is saved)"
                .into(),
        };
    };
    let share = share_after(series, tc).unwrap_or(0.0);
    let kwh = energy_kwh * share;
    let kg = operational_kg * share;
    let lost_s = (duration_s - tc).max(0.0);
    let cadence_s = ADVISED_CHECKPOINT_MIN * 60.0;
    let lost = if lost_s < 120.0 {
        format!("{} s", round_sig(lost_s, 3))
    } else {
        format!("{} min", round_sig(lost_s / 60.0, 3))
    };
    let advice = if lost_s > cadence_s && duration_s > 0.0 {
        // With a checkpoint every N minutes, at most the last N minutes are lost.
        let bounded = share_after(series, duration_s - cadence_s).unwrap_or(0.0) * energy_kwh;
        format!(
            "{lost} of work since the last checkpoint was lost; checkpointing every {} min would \
             have saved about {} kWh",
            ADVISED_CHECKPOINT_MIN,
            round_sig((kwh - bounded).max(0.0), 3)
        )
    } else {
        format!(
            "{lost} of work since the last checkpoint was lost: checkpoints already come often \
             enough; look at why the run failed"
        )
    };
    Discarded {
        checkpoints: n,
        last_checkpoint_s: Some(round_sig(tc, RECORD_DIGITS)),
        energy_kwh: Some(round_sig(kwh, RECORD_DIGITS)),
        emissions_kg: Some(round_sig(kg, RECORD_DIGITS)),
        advice,
    }
}

/// Margin over a GPU's idle power under which it is taken as idle.
pub const IDLE_POWER_MARGIN: f64 = 1.10;

/// A span of a GPU held at near-zero load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdleSpan {
    pub device: String,
    /// Seconds since the run's start.
    pub from_s: f64,
    pub to_s: f64,
    pub energy_kwh: f64,
}

/// Spans of `points` (one GPU, in time order) at most [`IDLE_POWER_MARGIN`] × `idle_w`,
/// lasting at least `min_s`.
pub fn idle_spans(device: &str, points: &[SeriesPoint], idle_w: f64, min_s: f64) -> Vec<IdleSpan> {
    let mut out = Vec::new();
    if !(idle_w.is_finite() && idle_w > 0.0) {
        return out;
    }
    let limit = idle_w * IDLE_POWER_MARGIN;
    let mut cur: Option<IdleSpan> = None;
    let close = |c: Option<IdleSpan>, out: &mut Vec<IdleSpan>| {
        if let Some(s) = c {
            if s.to_s - s.from_s >= min_s {
                out.push(s);
            }
        }
    };
    for p in points {
        let dt = p.t1 - p.t0;
        let idle = dt > 0.0 && p.energy_j / dt <= limit;
        let contiguous = cur.as_ref().is_some_and(|c| (p.t0 - c.to_s).abs() < 1e-6);
        if idle {
            match &mut cur {
                Some(c) if contiguous => {
                    c.to_s = p.t1;
                    c.energy_kwh += p.energy_j / crate::units::JOULES_PER_KWH;
                }
                _ => {
                    close(cur.take(), &mut out);
                    cur = Some(IdleSpan {
                        device: device.to_string(),
                        from_s: p.t0,
                        to_s: p.t1,
                        energy_kwh: p.energy_j / crate::units::JOULES_PER_KWH,
                    });
                }
            }
        } else {
            close(cur.take(), &mut out);
        }
    }
    close(cur, &mut out);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn flat(w: f64, secs: usize) -> Vec<SeriesPoint> {
        (0..secs)
            .map(|i| SeriesPoint {
                t0: i as f64,
                t1: i as f64 + 1.0,
                energy_j: w,
            })
            .collect()
    }

    #[test]
    fn discarded_is_the_energy_after_the_last_checkpoint() {
        let s = flat(100.0, 100);
        let d = discarded(&[10.0, 40.0], &[&s], 100.0, 2.0, 1.0);
        assert_eq!(d.checkpoints, 2);
        assert_eq!(d.last_checkpoint_s, Some(40.0));
        assert_eq!(d.energy_kwh, Some(1.2));
        assert_eq!(d.emissions_kg, Some(0.6));
        // a checkpoint in the middle of an interval counts it pro rata
        assert_eq!(share_after(&[&s], 99.5), Some(0.005));
        // no signal: unknown, never 0
        let d = discarded(&[], &[&s], 100.0, 2.0, 1.0);
        assert_eq!((d.energy_kwh, d.emissions_kg), (None, None));
        assert!(d.advice.starts_with("unknown"));
        // a long loss: the advice says what a 30-min cadence would have saved
        let s = flat(100.0, 7200);
        let d = discarded(&[0.0], &[&s], 7200.0, 2.0, 1.0);
        assert_eq!(d.energy_kwh, Some(2.0));
        assert!(
            d.advice.contains("would have saved about 1.5 kWh"),
            "{}",
            d.advice
        );
    }

    #[test]
    fn checkpoint_lines_with_and_without_a_time() {
        let (t, bad) = checkpoint_lines(
            "0.1\ncheckpoint 1700000000.5\n0.2\ncheckpoint\n",
            Some(1.0e9),
        );
        assert_eq!((t, bad), (vec![1700000000.5, 1.0e9], 0));
        let (t, bad) = checkpoint_lines("checkpoint\n0.3\ncheckpoint soon\n", Some(1.0e9));
        assert_eq!((t.len(), bad), (0, 2));
    }

    #[test]
    fn idle_spans_from_the_series() {
        let mut s = flat(300.0, 10);
        s.extend((10..40).map(|i| SeriesPoint {
            t0: i as f64,
            t1: i as f64 + 1.0,
            energy_j: 60.0,
        }));
        s.extend((40..45).map(|i| SeriesPoint {
            t0: i as f64,
            t1: i as f64 + 1.0,
            energy_j: 300.0,
        }));
        s.extend((45..47).map(|i| SeriesPoint {
            t0: i as f64,
            t1: i as f64 + 1.0,
            energy_j: 55.0,
        }));
        let spans = idle_spans("gpu0", &s, 55.0, 5.0);
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!((spans[0].from_s, spans[0].to_s), (10.0, 40.0));
        assert!((spans[0].energy_kwh - 1800.0 / 3.6e6).abs() < 1e-15);
        assert!(idle_spans("gpu0", &s, 0.0, 5.0).is_empty());
    }
}
