//! `wattprint projects`: per project, runs, energy and emissions, of which wasted (failed and
//! killed runs), and the share of idle (static) energy.

use crate::cmd_runs::FilterArgs;
use crate::store::{ProjectTotals, Store};
use crate::summary::{fmt_energy_kwh, fmt_mass_kg};
use anyhow::Result;
use std::fmt::Write;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Print the totals as a JSON array.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let f = a.filter.to_filter()?;
    let store = Store::open_default_for_reading(crate::env())?;
    let totals = store.project_totals(&f)?;
    if a.json {
        crate::stdout_ln!("{}", serde_json::to_string_pretty(&totals)?);
        return Ok(0);
    }
    if totals.is_empty() {
        eprintln!("wattprint: no runs match; measure one with `wattprint run -- CMD`");
        return Ok(0);
    }
    crate::stdout_print!("{}", table(&totals));
    Ok(0)
}

fn pct(x: f64) -> String {
    wattprint_core::format::percent(x)
}

/// The projects table and its legend.
pub fn table(totals: &[ProjectTotals]) -> String {
    let pw = totals
        .iter()
        .map(|t| t.project.chars().count())
        .max()
        .unwrap_or(7)
        .clamp(7, 32);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<pw$}  {:>5}  {:>11}  {:>10}  {:>5}  {:>11}  {:>10}  {:>6}  {:>6}",
        "PROJECT", "RUNS", "ENERGY", "EMISSIONS", "WASTE", "W. ENERGY", "W. EMISS.", "W. %", "IDLE"
    );
    let mut running = 0;
    for t in totals {
        running += t.running;
        let _ = writeln!(
            o,
            "{:<pw$}  {:>5}  {:>11}  {:>10}  {:>5}  {:>11}  {:>10}  {:>6}  {:>6}",
            t.project,
            t.runs,
            fmt_energy_kwh(t.energy_kwh),
            fmt_mass_kg(t.emissions_kg),
            t.wasted.runs,
            fmt_energy_kwh(t.wasted.energy_kwh),
            fmt_mass_kg(t.wasted.emissions_kg),
            pct(t.wasted.emissions_share),
            pct(t.idle_share)
        );
    }
    let _ = writeln!(
        o,
        "ENERGY: IT energy before PUE. EMISSIONS: PUE and embodied included (CO2e).\n\
         WASTE: failed and killed runs (W. % = their share of the emissions).\n\
         IDLE: static (idle) share of the IT energy; imported runs have no split and count as 0."
    );
    if running > 0 {
        let _ = writeln!(
            o,
            "{running} run(s) still marked running: in progress, or their tracker died before its last save."
        );
    }
    o
}
