//! The section on the windows, stages and work units a run's code reported
//! (Python's `Tracker`, or `--work-units` / `$WATTPRINT_WORK_FILE`), as `wattprint show` and the
//! run reports print it.

use crate::summary::{fmt_energy_kwh, fmt_mass_kg};
use std::fmt::Write;
use wattprint_core::record::RunRecord;
use wattprint_core::segments::{SegmentKind, WorkUnits};

fn per_unit(w: &WorkUnits) -> String {
    match (w.j_per_unit, w.g_per_unit) {
        (Some(j), Some(g)) => format!("{} {} · {j} J and {g} gCO2e per unit", w.units, w.unit),
        _ => format!("{} {} (no per-unit figure)", w.units, w.unit),
    }
}

/// The section, empty when the run has no segments.
pub fn segments_text(r: &RunRecord) -> String {
    let mut o = String::new();
    let Some(s) = &r.segments else {
        return o;
    };
    let stages = s.energy_by_stage();
    if !stages.is_empty() {
        let _ = writeln!(o, "\nstages");
        for (name, kwh) in &stages {
            let _ = writeln!(o, "  {name:<14} {}", fmt_energy_kwh(*kwh));
        }
    }
    let windows: Vec<_> = s
        .windows
        .iter()
        .filter(|w| w.kind == SegmentKind::Window)
        .collect();
    if !windows.is_empty() {
        let _ = writeln!(o, "\nwindows");
        for w in windows {
            let _ = write!(
                o,
                "  {:<14} {:.1}–{:.1} s · {} · {}",
                w.name,
                w.start_s,
                w.end_s,
                fmt_energy_kwh(w.energy_kwh),
                fmt_mass_kg(w.emissions_kg)
            );
            if let Some(u) = &w.work {
                let _ = write!(o, " · {}", per_unit(u));
            }
            let _ = writeln!(
                o,
                "{}",
                if w.open_at_end {
                    " (open at the end)"
                } else {
                    ""
                }
            );
        }
    }
    if let Some(u) = &s.work {
        let _ = writeln!(o, "\nwork");
        let _ = writeln!(o, "  {:<14} {}", "whole run", per_unit(u));
    }
    if s.dropped > 0 {
        let _ = writeln!(o, "  ({} more windows not kept)", s.dropped);
    }
    o
}
