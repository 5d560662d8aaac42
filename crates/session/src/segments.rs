//! Windows, stages and units of work reported by the measured code while the session runs
//! (Python's `Tracker.begin_window`, `stage`, `add_work`), priced from the sampler's totals.
//!
//! The sampler publishes totals after each read; a window's edge falls between reads, so the
//! energy at an edge is the latest total plus the latest power for the time since that read
//! (at most one interval: a stalled sampler is not extrapolated further).

use std::time::{Duration, Instant};
use wattprint_core::record::RunRecord;
use wattprint_core::sampler::Snapshot;
use wattprint_core::segments::{
    Segment, SegmentKind, Segments, WorkUnits, MAX_SEGMENTS, MAX_UNITS,
};
use wattprint_core::units::{round_sig, JOULES_PER_KWH, RECORD_DIGITS};
use wattprint_core::validate::{check_ident, MAX_NAME};

/// A window still open.
#[derive(Debug, Clone)]
struct Open {
    name: String,
    kind: SegmentKind,
    start_s: f64,
    start_j: f64,
    units: f64,
}

/// Live totals for a front end's log line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Live {
    pub elapsed_s: f64,
    /// IT energy charged to the run so far, kWh.
    pub energy_kwh: f64,
    /// Operational emissions so far (IT × PUE × intensity), kg CO2e.
    pub emissions_kg: f64,
    /// Power over the latest interval, W.
    pub power_w: f64,
}

/// The windows of one session.
#[derive(Debug)]
pub struct SegmentTracker {
    origin: Instant,
    interval: Duration,
    kg_per_kwh: f64,
    open: Vec<Open>,
    done: Vec<Segment>,
    dropped: u64,
    units: f64,
    unit: Option<String>,
}

impl SegmentTracker {
    /// `origin`: the sampler's start; `kg_per_kwh`: PUE × intensity / 1000.
    pub fn new(origin: Instant, interval: Duration, kg_per_kwh: f64) -> SegmentTracker {
        SegmentTracker {
            origin,
            interval,
            kg_per_kwh,
            open: Vec::new(),
            done: Vec::new(),
            dropped: 0,
            units: 0.0,
            unit: None,
        }
    }

    /// Seconds since the start and IT joules at this instant, from the latest snapshot.
    fn at_now(&self, snap: &Snapshot) -> (f64, f64) {
        let now = self.origin.elapsed().as_secs_f64();
        let since = (now - snap.elapsed.as_secs_f64()).clamp(0.0, self.interval.as_secs_f64());
        let power: f64 = snap.devices.iter().map(|d| d.last_power.0).sum();
        let power = if power.is_finite() {
            power.max(0.0)
        } else {
            0.0
        };
        (now, snap.total_energy().0 + power * since)
    }

    /// Live totals at this instant.
    pub fn live(&self, snap: &Snapshot) -> Live {
        let (now, j) = self.at_now(snap);
        let kwh = j / JOULES_PER_KWH;
        Live {
            elapsed_s: now,
            energy_kwh: kwh,
            emissions_kg: kwh * self.kg_per_kwh,
            power_w: snap.devices.iter().map(|d| d.last_power.0).sum(),
        }
    }

    /// Open a window (or stage) called `name`. Names of open windows are unique.
    pub fn begin(&mut self, name: &str, kind: SegmentKind, snap: &Snapshot) -> Result<(), String> {
        check_ident("name", name, MAX_NAME).map_err(|e| e.reason)?;
        if self.open.iter().any(|o| o.name == name) {
            return Err(format!("a window named {name:?} is already open"));
        }
        if self.open.len() >= MAX_SEGMENTS {
            return Err(format!(
                "{MAX_SEGMENTS} windows are open already; end some first"
            ));
        }
        let (start_s, start_j) = self.at_now(snap);
        self.open.push(Open {
            name: name.to_string(),
            kind,
            start_s,
            start_j,
            units: 0.0,
        });
        Ok(())
    }

    /// Close the open window `name` and return its measurement.
    pub fn end(&mut self, name: &str, snap: &Snapshot) -> Result<Segment, String> {
        let i = self
            .open
            .iter()
            .position(|o| o.name == name)
            .ok_or_else(|| format!("no window named {name:?} is open"))?;
        let o = self.open.remove(i);
        let (now, j) = self.at_now(snap);
        let seg = self.close(o, now, j, false);
        self.keep(seg.clone());
        Ok(seg)
    }

    fn close(&self, o: Open, end_s: f64, end_j: f64, open_at_end: bool) -> Segment {
        let kwh = ((end_j - o.start_j) / JOULES_PER_KWH).max(0.0);
        let kg = kwh * self.kg_per_kwh;
        Segment {
            name: o.name,
            kind: o.kind,
            start_s: round_sig(o.start_s, RECORD_DIGITS),
            end_s: round_sig(end_s.max(o.start_s), RECORD_DIGITS),
            energy_kwh: round_sig(kwh, RECORD_DIGITS),
            emissions_kg: round_sig(kg, RECORD_DIGITS),
            work: self
                .unit
                .as_deref()
                .map(|u| WorkUnits::new(o.units, u, kwh, kg)),
            open_at_end,
        }
    }

    fn keep(&mut self, seg: Segment) {
        if self.done.len() < MAX_SEGMENTS {
            self.done.push(seg);
        } else {
            self.dropped += 1;
        }
    }

    /// `n` more units of work, counted for the run and every open window. One unit per run.
    pub fn add_work(&mut self, n: f64, unit: &str) -> Result<(), String> {
        if !(n.is_finite() && n >= 0.0) {
            return Err(format!("{n} units: must be a non-negative number"));
        }
        check_ident("unit", unit, 64).map_err(|e| e.reason)?;
        match &self.unit {
            Some(u) if u != unit => {
                return Err(format!(
                    "this run counts {u}; {unit} cannot be added to it (one unit per run)"
                ))
            }
            _ => {}
        }
        if self.units + n > MAX_UNITS {
            return Err(format!("more than {MAX_UNITS} units in one run"));
        }
        self.unit = Some(unit.to_string());
        self.units += n;
        for o in &mut self.open {
            o.units += n;
        }
        Ok(())
    }

    /// The run's whole work is `n` `unit` (a total stated at the end, e.g. by the work file
    /// or `--work-units`): replaces what was added, windows keep theirs.
    pub fn set_total_work(&mut self, n: f64, unit: &str) -> Result<(), String> {
        if !(n.is_finite() && (0.0..=MAX_UNITS).contains(&n)) {
            return Err(format!("{n} units: must be a number from 0 to {MAX_UNITS}"));
        }
        check_ident("unit", unit, 64).map_err(|e| e.reason)?;
        if let Some(u) = &self.unit {
            if u != unit && self.units > 0.0 {
                return Err(format!(
                    "this run counts {u}, not {unit} (one unit per run)"
                ));
            }
        }
        self.units = n;
        self.unit = Some(unit.to_string());
        Ok(())
    }

    /// The record's `segments` for `rec`: finished windows, and, when `closing` is the final
    /// snapshot, the windows still open closed at the end. `None` when nothing was reported.
    pub fn view(&self, rec: &RunRecord, closing: Option<&Snapshot>) -> Option<Segments> {
        let mut windows = self.done.clone();
        let mut dropped = self.dropped;
        if let Some(snap) = closing {
            let (end_s, end_j) = (snap.elapsed.as_secs_f64(), snap.total_energy().0);
            for o in &self.open {
                if windows.len() < MAX_SEGMENTS {
                    windows.push(self.close(o.clone(), end_s, end_j, true));
                } else {
                    dropped += 1;
                }
            }
        }
        let work = self
            .unit
            .as_deref()
            .map(|u| WorkUnits::new(self.units, u, rec.energy_kwh.it.0, rec.emissions_kg.total));
        (!windows.is_empty() || work.is_some() || dropped > 0).then_some(Segments {
            windows,
            work,
            dropped,
        })
    }

    /// Names of the windows still open.
    pub fn open_names(&self) -> Vec<String> {
        self.open.iter().map(|o| o.name.clone()).collect()
    }
}
