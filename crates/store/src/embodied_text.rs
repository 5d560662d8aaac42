//! "Not counted" is never a zero: embodied emissions of a record or of a set of runs, either a
//! figure or the reason they were not counted, and how every text output writes it.

use crate::summary::fmt_mass_kg;
use wattprint_core::record::RunRecord;

/// Embodied emissions, kgCO2e, or why they were not counted.
pub type EmbodiedFigure = Result<f64, String>;

/// The record's embodied emissions, or its reason for not counting them.
pub fn of_record(r: &RunRecord) -> EmbodiedFigure {
    match r.emissions_kg.embodied_kg() {
        Some(kg) => Ok(kg),
        None => Err(r
            .embodied_not_counted
            .clone()
            .unwrap_or_else(|| "no reason recorded".to_string())),
    }
}

/// Embodied emissions summed over runs: a figure when at least one run counted them (the text
/// then says how many did not), the reason when none did.
pub fn of_sum(kg: f64, runs: usize, not_counted_runs: usize) -> EmbodiedFigure {
    if runs > 0 && not_counted_runs >= runs {
        Err(format!("not counted for any of the {runs} run(s)"))
    } else {
        Ok(kg)
    }
}

/// `1.2 kg` or `not counted (why)`.
pub fn fmt_embodied(e: &EmbodiedFigure) -> String {
    match e {
        Ok(kg) => fmt_mass_kg(*kg),
        Err(why) => format!("not counted ({why})"),
    }
}

/// The figure for charts and sums: the kg, 0 for "not counted" (never printed as a number).
pub fn kg_or_zero(e: &EmbodiedFigure) -> f64 {
    *e.as_ref().unwrap_or(&0.0)
}
