//! Parts of a run the measured code names itself: measurement windows (Zeus's model: nested
//! and overlapping allowed), stages (preparation, training, evaluation, inference) and units
//! of work (tokens, samples, images), so a record can say J and gCO2e per unit, per window and
//! for the whole run.
//!
//! The front end (Python's `Tracker`) reports when a window begins and ends; the session reads
//! the energy at those instants ([`crate::sampler::Snapshot`] totals, interpolated at the
//! last power between reads) and keeps the finished windows here. Every list is bounded
//! ([`MAX_SEGMENTS`]) and every figure is rounded with the record's one policy.

use crate::units::{round_sig, JOULES_PER_KWH, RECORD_DIGITS};
use crate::validate::{
    check_ident, check_len, check_range, ValidationError, MAX_DURATION_S, MAX_EMISSIONS_KG,
    MAX_ENERGY_KWH, MAX_NAME,
};
use serde::{Deserialize, Serialize};

/// Most windows and stages one record keeps (further ones are counted in `dropped`).
pub const MAX_SEGMENTS: usize = 1000;

/// A window (any span the code names) or a stage (a phase of the model's life).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentKind {
    Window,
    Stage,
}

/// Units of work done, and what each cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkUnits {
    /// How many units (e.g. 1.2e6 tokens).
    pub units: f64,
    /// What a unit is (`tokens`, `samples`, `images`, ...).
    pub unit: String,
    /// IT energy per unit, J; `None` when no unit was done (never infinity).
    pub j_per_unit: Option<f64>,
    /// Total emissions per unit, gCO2e; `None` when no unit was done.
    pub g_per_unit: Option<f64>,
}

impl WorkUnits {
    /// `units` of `unit` done for `energy_kwh` and `emissions_kg`.
    pub fn new(units: f64, unit: &str, energy_kwh: f64, emissions_kg: f64) -> WorkUnits {
        let per = |x: f64| (units > 0.0).then(|| round_sig(x / units, RECORD_DIGITS));
        WorkUnits {
            units: round_sig(units, RECORD_DIGITS),
            unit: unit.to_string(),
            j_per_unit: per(energy_kwh * JOULES_PER_KWH),
            g_per_unit: per(emissions_kg * 1000.0),
        }
    }
}

/// One finished window or stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub name: String,
    pub kind: SegmentKind,
    /// Seconds since the run's start.
    pub start_s: f64,
    pub end_s: f64,
    /// IT energy charged to the run during the window (before PUE), kWh.
    pub energy_kwh: f64,
    /// Operational emissions of that energy (IT × PUE × intensity), kg CO2e.
    pub emissions_kg: f64,
    /// Work reported while the window was open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<WorkUnits>,
    /// Still open when the run ended (closed at the end).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open_at_end: bool,
}

/// The run record's `segments`: windows and stages in the order they ended, and the whole
/// run's work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Segments {
    pub windows: Vec<Segment>,
    /// Work over the whole run, priced at the run's IT energy and total emissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<WorkUnits>,
    /// Windows not kept because the record already held [`MAX_SEGMENTS`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Segments {
    /// Energy per stage name, kWh (stages repeated under one name are summed), in first-seen
    /// order: the breakdown reports show.
    pub fn energy_by_stage(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = Vec::new();
        for s in self.windows.iter().filter(|s| s.kind == SegmentKind::Stage) {
            match out.iter_mut().find(|(n, _)| *n == s.name) {
                Some((_, e)) => *e += s.energy_kwh,
                None => out.push((s.name.clone(), s.energy_kwh)),
            }
        }
        out
    }
}

/// Most units of work one record may state (a trillion tokens is 10¹²; 10¹⁸ bounds sums).
pub const MAX_UNITS: f64 = 1e18;

impl WorkUnits {
    fn check(&self, path: &str) -> Result<(), ValidationError> {
        check_range(
            &format!("{path}.units"),
            self.units,
            MAX_UNITS,
            "10^18 units",
        )?;
        check_ident(&format!("{path}.unit"), &self.unit, 64)?;
        let max_j = MAX_ENERGY_KWH * JOULES_PER_KWH;
        if let Some(j) = self.j_per_unit {
            check_range(&format!("{path}.j_per_unit"), j, max_j, "a run's IT energy")?;
        }
        if let Some(g) = self.g_per_unit {
            let max_g = MAX_EMISSIONS_KG * 1000.0;
            check_range(&format!("{path}.g_per_unit"), g, max_g, "a run's emissions")?;
        }
        Ok(())
    }
}

impl Segments {
    /// Form and bounds of every window (called by [`crate::record::RunRecord::validate`]).
    pub fn check(&self) -> Result<(), ValidationError> {
        check_len("segments.windows", &self.windows, MAX_SEGMENTS)?;
        for (i, w) in self.windows.iter().enumerate() {
            let p = format!("segments.windows[{i}]");
            check_ident(&format!("{p}.name"), &w.name, MAX_NAME)?;
            let d = "a year, the longest run";
            check_range(&format!("{p}.start_s"), w.start_s, MAX_DURATION_S, d)?;
            check_range(&format!("{p}.end_s"), w.end_s, MAX_DURATION_S, d)?;
            let e = "a run's IT energy";
            check_range(&format!("{p}.energy_kwh"), w.energy_kwh, MAX_ENERGY_KWH, e)?;
            let k = "a run's emissions";
            check_range(
                &format!("{p}.emissions_kg"),
                w.emissions_kg,
                MAX_EMISSIONS_KG,
                k,
            )?;
            if let Some(u) = &w.work {
                u.check(&format!("{p}.work"))?;
            }
        }
        if let Some(u) = &self.work {
            u.check("segments.work")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_units_give_no_per_unit_figure_not_infinity() {
        let w = WorkUnits::new(0.0, "tokens", 1.0, 0.5);
        assert_eq!(w.j_per_unit, None);
        assert_eq!(w.g_per_unit, None);
        let w = WorkUnits::new(1000.0, "tokens", 1.0, 0.5);
        assert_eq!(w.j_per_unit, Some(3600.0));
        assert_eq!(w.g_per_unit, Some(0.5));
    }

    #[test]
    fn stages_sum_by_name_in_first_seen_order() {
        let seg = |name: &str, kind, e| Segment {
            name: name.into(),
            kind,
            start_s: 0.0,
            end_s: 1.0,
            energy_kwh: e,
            emissions_kg: 0.0,
            work: None,
            open_at_end: false,
        };
        let s = Segments {
            windows: vec![
                seg("training", SegmentKind::Stage, 2.0),
                seg("steady", SegmentKind::Window, 9.0),
                seg("evaluation", SegmentKind::Stage, 1.0),
                seg("training", SegmentKind::Stage, 3.0),
            ],
            work: None,
            dropped: 0,
        };
        assert_eq!(
            s.energy_by_stage(),
            vec![
                ("training".to_string(), 5.0),
                ("evaluation".to_string(), 1.0)
            ]
        );
    }
}
