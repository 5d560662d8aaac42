//! The one counter-difference routine used by every hardware energy counter.
//!
//! Hardware exposes energy as a monotonically increasing integer that either wraps at a known
//! range (RAPL: `max_energy_range_uj`, per zone) or is reset to zero when the driver reloads
//! (NVML: `nvmlDeviceGetTotalEnergyConsumption`, which has no wrap range). A decrease is read as
//! a wrap only when the counter has a range; otherwise it is a reset, and the energy since the
//! reset (the new raw value) is a lower bound of the interval's energy.

/// What happened between two readings of a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// The first reading: there is nothing to difference yet.
    First,
    /// The counter advanced normally by this many raw units.
    Normal(u64),
    /// The counter passed its range and wrapped; the value is the corrected difference.
    Wrapped(u64),
    /// The counter went back without a range to wrap at (or beyond it): a reset. The value is
    /// the new raw reading, i.e. what accrued since the reset.
    Reset(u64),
}

impl Delta {
    /// Raw units accrued, zero for the first reading.
    pub fn raw(self) -> u64 {
        match self {
            Delta::First => 0,
            Delta::Normal(d) | Delta::Wrapped(d) | Delta::Reset(d) => d,
        }
    }
}

/// A cumulative hardware counter, remembering the last raw value it saw.
#[derive(Debug, Clone, Default)]
pub struct EnergyCounter {
    /// Value at which the counter wraps back to zero (RAPL `max_energy_range_uj`). `None` for
    /// counters that never wrap in practice but may be reset (NVML's u64 millijoules).
    pub max_range: Option<u64>,
    last: Option<u64>,
}

impl EnergyCounter {
    pub fn new(max_range: Option<u64>) -> Self {
        EnergyCounter {
            max_range: max_range.filter(|m| *m > 0),
            last: None,
        }
    }

    /// Feed a new raw reading and get the difference from the previous one.
    pub fn update(&mut self, raw: u64) -> Delta {
        let delta = match self.last {
            None => Delta::First,
            Some(prev) => difference(prev, raw, self.max_range),
        };
        self.last = Some(raw);
        delta
    }

    pub fn last(&self) -> Option<u64> {
        self.last
    }
}

/// Difference between two raw readings `prev` then `cur` of a counter that wraps at
/// `max_range` (if any).
pub fn difference(prev: u64, cur: u64, max_range: Option<u64>) -> Delta {
    if cur >= prev {
        return Delta::Normal(cur - prev);
    }
    match max_range {
        // The counter counts 0..=max and starts again at 0: what remained up to max, plus cur.
        Some(max) if prev <= max => Delta::Wrapped(max - prev + cur),
        _ => Delta::Reset(cur),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn normal_wrap_reset() {
        assert_eq!(difference(10, 25, Some(100)), Delta::Normal(15));
        assert_eq!(difference(90, 5, Some(100)), Delta::Wrapped(15));
        // no range: a decrease is a reset, never a wrap
        assert_eq!(difference(90, 5, None), Delta::Reset(5));
        // a previous value above the declared range cannot be a wrap either
        assert_eq!(difference(150, 5, Some(100)), Delta::Reset(5));
    }

    #[test]
    fn counter_sequence() {
        let mut c = EnergyCounter::new(Some(1000));
        assert_eq!(c.update(900), Delta::First);
        assert_eq!(c.update(950), Delta::Normal(50));
        assert_eq!(c.update(20), Delta::Wrapped(70));
        assert_eq!(c.last(), Some(20));
        let mut n = EnergyCounter::new(None);
        n.update(5000);
        assert_eq!(n.update(40), Delta::Reset(40));
        // a zero range is treated as unknown
        assert_eq!(EnergyCounter::new(Some(0)).max_range, None);
    }
}

/// A hardware counter turned into cumulative joules, with implausible differences rejected.
///
/// Every sensor that reads an energy counter (RAPL `energy_uj`, NVML total energy) feeds its raw
/// values here. A difference implying more than `max_power` over the interval since the previous
/// reading is impossible for the device: it is rejected (not added) and reported.
#[derive(Debug, Clone)]
pub struct EnergyChannel {
    counter: EnergyCounter,
    joules_per_unit: f64,
    max_power_w: f64,
    total_j: f64,
    last_at: Option<std::time::Instant>,
}

/// Outcome of one channel update that the caller should report.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelEvent {
    Ok,
    Wrapped,
    Reset,
    /// A difference that implies an impossible power; it was not counted.
    Rejected {
        implied_watts: f64,
    },
}

impl EnergyChannel {
    /// `joules_per_unit`: 1e-6 for microjoules, 1e-3 for millijoules. `max_power_w`: a bound no
    /// real reading of this device can exceed (e.g. several times its TDP).
    pub fn new(max_range: Option<u64>, joules_per_unit: f64, max_power_w: f64) -> Self {
        EnergyChannel {
            counter: EnergyCounter::new(max_range),
            joules_per_unit,
            max_power_w,
            total_j: 0.0,
            last_at: None,
        }
    }

    /// Cumulative energy counted since the first reading.
    pub fn total(&self) -> crate::units::Joules {
        crate::units::Joules(self.total_j)
    }

    pub fn update(&mut self, raw: u64, at: std::time::Instant) -> ChannelEvent {
        let delta = self.counter.update(raw);
        let dt = self
            .last_at
            .map(|t| at.saturating_duration_since(t).as_secs_f64())
            .unwrap_or(0.0);
        self.last_at = Some(at);
        let joules = delta.raw() as f64 * self.joules_per_unit;
        if delta == Delta::First {
            return ChannelEvent::Ok;
        }
        // Allow a small absolute slack so that a tiny interval does not reject a normal reading.
        let bound = self.max_power_w * dt.max(0.0) + self.max_power_w * 0.005;
        if joules > bound {
            let implied = if dt > 0.0 { joules / dt } else { f64::INFINITY };
            return ChannelEvent::Rejected {
                implied_watts: implied,
            };
        }
        self.total_j += joules;
        match delta {
            Delta::Wrapped(_) => ChannelEvent::Wrapped,
            Delta::Reset(_) => ChannelEvent::Reset,
            _ => ChannelEvent::Ok,
        }
    }
}

/// Trapezoid integration of sampled power into cumulative energy, for sources that expose a
/// power reading but no energy counter (NVML power, the CPU and RAM models).
#[derive(Debug, Clone, Default)]
pub struct PowerIntegrator {
    last: Option<(std::time::Instant, f64)>,
    total_j: f64,
}

impl PowerIntegrator {
    pub fn new() -> Self {
        Self::default()
    }
    /// Add a power sample taken at `at`; returns the cumulative energy so far.
    pub fn update(
        &mut self,
        power: crate::units::Watts,
        at: std::time::Instant,
    ) -> crate::units::Joules {
        if let Some((t0, p0)) = self.last {
            let dt = at.saturating_duration_since(t0).as_secs_f64();
            self.total_j += 0.5 * (p0 + power.0) * dt;
        }
        self.last = Some((at, power.0));
        crate::units::Joules(self.total_j)
    }
    pub fn total(&self) -> crate::units::Joules {
        crate::units::Joules(self.total_j)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod channel_tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn channel_counts_wraps_and_rejects() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        // microjoule counter wrapping at 1_000_000_000 (1000 J), max 500 W
        let mut ch = EnergyChannel::new(Some(1_000_000_000), 1e-6, 500.0);
        assert_eq!(ch.update(999_900_000, t0), ChannelEvent::Ok);
        assert_eq!(ch.update(99_900_000, t0 + s), ChannelEvent::Wrapped); // +0.1 J + 99.9 J
        assert!((ch.total().0 - 100.0).abs() < 1e-9);
        // 900 J in one second from a 500 W device: rejected, not counted
        let ev = ch.update(999_900_000, t0 + 2 * s);
        assert!(matches!(ev, ChannelEvent::Rejected { implied_watts } if implied_watts > 800.0));
        assert!((ch.total().0 - 100.0).abs() < 1e-9);
        assert_eq!(ch.update(999_950_000, t0 + 3 * s), ChannelEvent::Ok);
        assert!((ch.total().0 - 100.05).abs() < 1e-9);
    }

    #[test]
    fn trapezoid() {
        let t0 = Instant::now();
        let mut p = PowerIntegrator::new();
        p.update(crate::units::Watts(100.0), t0);
        let e = p.update(crate::units::Watts(200.0), t0 + Duration::from_secs(2));
        assert!((e.0 - 300.0).abs() < 1e-9);
    }
}
