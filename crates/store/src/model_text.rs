//! `wattprint model NAME` as text: the footprint of [`crate::model_footprint`], every figure
//! with the one rounding policy (`wattprint_core::format`); unknowns said, never zeros.

use crate::model_footprint::{Cost, ModelFootprint};
use std::fmt::Write;
use wattprint_core::format::{energy_kwh, mass_kg, percent, sig};
use wattprint_core::lineage::{Goal, Stage};

fn cost(c: &Cost) -> String {
    format!(
        "{} CO2e, {} ({} run{})",
        mass_kg(c.emissions_kg),
        energy_kwh(c.energy_kwh),
        c.runs,
        if c.runs == 1 { "" } else { "s" }
    )
}

/// The footprint, one page of text.
pub fn model_text(f: &ModelFootprint) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Model {}", f.model);
    let _ = writeln!(o, "  total (every run):     {}", cost(&f.total));
    let _ = writeln!(o, "  development:           {}", cost(&f.development));
    match &f.final_training {
        Some(r) => {
            let _ = writeln!(
                o,
                "  final training:        {} CO2e, {} (run {}, {}; rule: {})",
                mass_kg(r.emissions_kg),
                energy_kwh(r.energy_kwh),
                crate::report::short_id(&r.id),
                r.started_at,
                f.final_rule
            );
        }
        None => {
            let _ = writeln!(o, "  final training:        {}", f.final_rule);
        }
    }
    match (&f.overhead, f.overhead_ratio) {
        (Some(oh), Some(x)) => {
            let _ = writeln!(
                o,
                "  overhead:              {} = {}× the final training (by emissions{})",
                cost(oh),
                sig(x),
                f.overhead_ratio_energy
                    .map(|e| format!("; {}× by energy", sig(e)))
                    .unwrap_or_default()
            );
        }
        _ => {
            let _ = writeln!(
                o,
                "  overhead ratio:        unknown (no final training run to divide by)"
            );
        }
    }
    match f.preparation_share {
        Some(s) => {
            let _ = writeln!(
                o,
                "  preparation share:     {} of development emissions",
                percent(s)
            );
        }
        None => {
            let _ = writeln!(
                o,
                "  preparation share:     unknown (no run says its stage, or nothing was emitted)"
            );
        }
    }
    let _ = writeln!(o, "\nPer stage (a run's --stage; `unstaged`: none given)");
    let order = Stage::ALL
        .iter()
        .map(|s| s.as_str())
        .chain(["unstaged"])
        .collect::<Vec<_>>();
    for name in order {
        if let Some(c) = f.stages.get(name) {
            let _ = writeln!(o, "  {name:<12} {}", cost(c));
        }
    }
    if f.failed.runs > 0 {
        let _ = writeln!(
            o,
            "\nFailed, killed or stopped: {} (counted in their stage)",
            cost(&f.failed)
        );
        for r in f.failed_runs.iter().take(20) {
            let _ = writeln!(
                o,
                "  {}  {}  {}  {} CO2e",
                crate::report::short_id(&r.id),
                r.started_at,
                r.status,
                mass_kg(r.emissions_kg)
            );
        }
        if f.failed_runs.len() > 20 {
            let _ = writeln!(o, "  … and {} more", f.failed_runs.len() - 20);
        }
        let d = &f.discarded;
        if d.known_runs > 0 {
            let _ = writeln!(
                o,
                "  discarded since their last checkpoint: {} CO2e, {} ({} run(s))",
                mass_kg(d.emissions_kg),
                energy_kwh(d.energy_kwh),
                d.known_runs
            );
        }
        if d.unknown_runs > 0 {
            let _ = writeln!(
                o,
                "  discarded compute unknown for {} run(s): they signalled no checkpoint",
                d.unknown_runs
            );
        }
    }
    for s in &f.sweeps {
        let _ = writeln!(
            o,
            "\nSweep {}: {} trial{}, {}",
            s.sweep,
            s.trials,
            if s.trials == 1 { "" } else { "s" },
            cost(&s.cost)
        );
        match (&s.best, &s.not_selected) {
            (Some(b), Some(ns)) => {
                let _ = writeln!(
                    o,
                    "  best trial: {} ({} = {}, {}); the other trials cost {}",
                    b.trial,
                    b.objective,
                    sig(b.value),
                    if b.goal == Goal::Max {
                        "higher is better"
                    } else {
                        "lower is better"
                    },
                    cost(ns)
                );
            }
            _ => {
                let _ = writeln!(
                    o,
                    "  best trial: unknown (no trial reported an objective: --objective NAME=VALUE)"
                );
            }
        }
        if let Some(g) = &s.grid {
            let params: Vec<String> = g
                .parameters
                .iter()
                .map(|(k, n)| format!("{k} ({n})"))
                .collect();
            let _ = writeln!(
                o,
                "  {} over {} = {} combinations ({} run)",
                if g.full {
                    "a full grid"
                } else {
                    "a partial grid"
                },
                params.join(" × "),
                g.combinations,
                g.covered
            );
        }
        if let Some(far) = &s.far_from_best {
            let _ = writeln!(
                o,
                "  {} of {} trials reporting it were more than {} worse than the best ({}), costing {}",
                far.trials,
                far.of_reporting,
                percent(crate::model_footprint::FAR_FROM_BEST),
                percent(far.share),
                cost(&far.cost)
            );
        }
    }
    let inf = &f.inference;
    if inf.cost.runs > 0 {
        let _ = writeln!(o, "\nInference to date: {}", cost(&inf.cost));
        match (inf.g_per_unit, &inf.unit) {
            (Some(g), Some(u)) => {
                let _ = writeln!(o, "  {} g CO2e per unit of work ({u})", sig(g));
            }
            _ => {
                let _ = writeln!(
                    o,
                    "  per unit of work: unknown (no inference run reported work units of one kind)"
                );
            }
        }
    }
    if let Some(b) = &f.base_model {
        match &b.reused {
            Some(c) => {
                let _ = writeln!(
                    o,
                    "\nBase model {} reused, not re-spent: its development was {}",
                    b.name,
                    cost(c)
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "\nBase model {} reused, not re-spent: its footprint is unknown here (none of its runs is in this store)",
                    b.name
                );
            }
        }
    }
    if f.running > 0 {
        let _ = writeln!(
            o,
            "\n{} run(s) still running: their energy so far is counted",
            f.running
        );
    }
    if f.embodied_not_counted > 0 {
        let _ = writeln!(
            o,
            "Embodied emissions not counted for {} of {} runs (their totals are operational only)",
            f.embodied_not_counted, f.total.runs
        );
    }
    o
}
