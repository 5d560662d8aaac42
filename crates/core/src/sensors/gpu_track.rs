//! One GPU's energy as the AMD and Intel sensors keep it: a hardware energy counter
//! differenced through [`crate::counter::EnergyChannel`] (wraps, resets, implausible jumps), or
//! a power reading integrated by the trapezoid rule, with each failure episode reported once.

use crate::counter::{ChannelEvent, EnergyChannel, PowerIntegrator};
use crate::units::{Joules, Watts};
use std::time::Instant;

/// How a GPU is read, decided once at open.
#[derive(Debug)]
pub enum Source {
    /// A cumulative counter of `unit_j` joules per raw unit.
    Energy {
        channel: EnergyChannel,
        last_raw: Option<u64>,
        unit_j: f64,
    },
    /// Power in watts, integrated.
    Power(PowerIntegrator),
    /// Nothing readable: 0 J, said once at open.
    Unavailable,
}

/// A GPU's source and whether it is failing now.
#[derive(Debug)]
pub struct Track {
    pub source: Source,
    failing: bool,
}

impl Track {
    /// A counter in `unit_j` joules per raw unit that wraps after `max_range` raw units (`None`:
    /// it never wraps, a decrease is a reset), rejecting differences above `max_power_w`.
    pub fn energy(unit_j: f64, max_range: Option<u64>, max_power_w: f64) -> Track {
        Track {
            source: Source::Energy {
                channel: EnergyChannel::new(max_range, unit_j, max_power_w),
                last_raw: None,
                unit_j,
            },
            failing: false,
        }
    }

    pub fn power() -> Track {
        Track {
            source: Source::Power(PowerIntegrator::new()),
            failing: false,
        }
    }

    pub fn unavailable() -> Track {
        Track {
            source: Source::Unavailable,
            failing: false,
        }
    }

    /// Feed one read of the GPU (`Ok((raw counter, power))` for a counter, `Ok((_, Some(power)))`
    /// for a power source; `Err(why)` when the read failed) and get its cumulative energy and
    /// power now. `label` names the GPU and `lib` the library in warnings.
    pub fn update(
        &mut self,
        read: Result<(u64, Option<Watts>), String>,
        now: Instant,
        label: &str,
        lib: &str,
        warnings: &mut Vec<String>,
    ) -> (Joules, Option<Watts>) {
        let (raw, power) = match read {
            _ if matches!(self.source, Source::Unavailable) => return (Joules(0.0), None),
            Ok(v) => v,
            Err(e) => {
                if !self.failing {
                    self.failing = true;
                    let how = match self.source {
                        Source::Energy { .. } => {
                            "energy stays at its last value until a read succeeds, then the \
                             counter difference covers the gap"
                        }
                        _ => "the gap will be interpolated linearly between the readings around it",
                    };
                    warnings.push(format!("{label}: {lib} read failed ({e}); {how}"));
                }
                return (channel_total(&self.source), None);
            }
        };
        match &mut self.source {
            Source::Unavailable => (Joules(0.0), None),
            Source::Energy {
                channel,
                last_raw,
                unit_j,
            } => {
                if self.failing {
                    self.failing = false;
                    warnings.push(format!(
                        "{label}: {lib} energy readings resumed; the counter covers the gap"
                    ));
                }
                let prev = last_raw.map_or("?".into(), |v| v.to_string());
                match channel.update(raw, now) {
                    ChannelEvent::Ok => {}
                    ChannelEvent::Wrapped => warnings.push(format!(
                        "{label}: {lib} energy counter wrapped (from {prev} to {raw} units of \
                         {unit_j} J); the wrap was counted"
                    )),
                    ChannelEvent::Reset => warnings.push(format!(
                        "{label}: {lib} energy counter went back from {prev} to {raw} (driver \
                         reload or GPU reset); counted the energy since the reset, the energy \
                         between the previous reading and the reset is not measured"
                    )),
                    ChannelEvent::Rejected { implied_watts } => warnings.push(format!(
                        "{label}: {lib} energy counter moved from {prev} to {raw}, implying \
                         {implied_watts:.0} W, above the plausibility bound for this GPU; that \
                         difference was not counted"
                    )),
                }
                *last_raw = Some(raw);
                (channel.total(), power)
            }
            Source::Power(integ) => match power {
                Some(w) => {
                    if self.failing {
                        self.failing = false;
                        warnings.push(format!(
                            "{label}: {lib} power readings resumed; power was interpolated \
                             linearly across the gap"
                        ));
                    }
                    (integ.update(w, now), Some(w))
                }
                None => (integ.total(), None),
            },
        }
    }
}

fn channel_total(s: &Source) -> Joules {
    match s {
        Source::Energy { channel, .. } => channel.total(),
        Source::Power(p) => p.total(),
        Source::Unavailable => Joules(0.0),
    }
}

/// A power reading in watts from a vendor library, kept only when physically possible for one
/// GPU: finite, not negative, at most `max_w`.
pub fn plausible_watts(w: f64, max_w: f64) -> Option<Watts> {
    (w.is_finite() && w >= 0.0 && w <= max_w).then_some(Watts(w))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counter_track_reports_failures_once_and_counts_the_gap() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut w = Vec::new();
        let mut t = Track::energy(1e-6, Some(u64::MAX), 1000.0);
        assert_eq!(
            t.update(Ok((1_000_000, None)), t0, "gpu:0", "lib", &mut w)
                .0,
            Joules(0.0)
        );
        let (e, _) = t.update(Ok((101_000_000, None)), t0 + s, "gpu:0", "lib", &mut w);
        assert!((e.0 - 100.0).abs() < 1e-9);
        for k in 2..4 {
            let (e, p) = t.update(Err("busy".into()), t0 + s * k, "gpu:0", "lib", &mut w);
            assert!((e.0 - 100.0).abs() < 1e-9);
            assert_eq!(p, None);
        }
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("read failed (busy)"), "{w:?}");
        let (e, _) = t.update(Ok((401_000_000, None)), t0 + s * 4, "gpu:0", "lib", &mut w);
        assert!((e.0 - 400.0).abs() < 1e-9, "{e:?}");
        assert!(w[1].contains("resumed"), "{w:?}");
        // A wrap of the 64-bit accumulator is counted.
        let near = u64::MAX - 50_000_000;
        let mut t = Track::energy(1e-6, Some(u64::MAX), 1000.0);
        t.update(Ok((near, None)), t0, "gpu:0", "lib", &mut w);
        let (e, _) = t.update(Ok((50_000_000, None)), t0 + s, "gpu:0", "lib", &mut w);
        assert!((e.0 - 100.0).abs() < 1e-6, "{e:?}");
        assert!(w.last().unwrap().contains("wrapped"), "{w:?}");
    }

    #[test]
    fn power_track_integrates_and_unavailable_stays_zero() {
        let t0 = Instant::now();
        let mut w = Vec::new();
        let mut t = Track::power();
        t.update(Ok((0, Some(Watts(100.0)))), t0, "g", "l", &mut w);
        let (e, p) = t.update(
            Ok((0, Some(Watts(300.0)))),
            t0 + Duration::from_secs(2),
            "g",
            "l",
            &mut w,
        );
        assert!((e.0 - 400.0).abs() < 1e-9);
        assert_eq!(p, Some(Watts(300.0)));
        let mut u = Track::unavailable();
        assert_eq!(
            u.update(Ok((5, None)), t0, "g", "l", &mut w),
            (Joules(0.0), None)
        );
        assert!(w.is_empty());
        assert_eq!(plausible_watts(f64::NAN, 10.0), None);
        assert_eq!(plausible_watts(-1.0, 10.0), None);
        assert_eq!(plausible_watts(11.0, 10.0), None);
        assert_eq!(plausible_watts(10.0, 10.0), Some(Watts(10.0)));
    }
}
