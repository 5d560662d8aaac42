//! `wattprint runs --job KEY`: a job's runs and its total per node, each node counted once.

use crate::store::{RunFilter, Store};
use crate::summary::{fmt_energy_kwh, fmt_mass_kg};
use anyhow::Result;
use wattprint_core::job::{job_total, JobTotal};

/// The job's runs (the usual table) and its totals, or both as one JSON object.
pub fn print_job(store: &Store, f: &RunFilter, job: &str, json: bool) -> Result<i32> {
    let records = store.list_runs(f)?;
    let total = job_total(job, &records);
    if json {
        crate::stdout_ln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "job": total.job,
                "nodes": total.nodes,
                "energy_kwh": total.energy_kwh,
                "emissions_kg": total.emissions_kg,
                "runs": records,
            }))?
        );
        return Ok(0);
    }
    if records.is_empty() {
        eprintln!(
            "wattprint: no run of job `{job}` in {}",
            store.path().display()
        );
        return Ok(0);
    }
    let rows = store.list_rows(f)?;
    crate::stdout_print!("{}", crate::cmd_runs::table(&rows, store.dir()));
    crate::stdout_print!("{}", totals_text(&total));
    Ok(0)
}

/// `job KEY: N node(s), E, M` and one line per node.
pub fn totals_text(t: &JobTotal) -> String {
    let mut s = format!(
        "job {}: {} node(s), {} energy, {} CO2e (each node's energy once: ranks' energy is in their leader's record)\n",
        t.job,
        t.nodes.len(),
        fmt_energy_kwh(t.energy_kwh),
        fmt_mass_kg(t.emissions_kg)
    );
    for n in &t.nodes {
        s.push_str(&format!(
            "  {}: {} run(s), {} charged, {}, {} CO2e\n",
            n.host,
            n.runs,
            n.leaders,
            fmt_energy_kwh(n.energy_kwh),
            fmt_mass_kg(n.emissions_kg)
        ));
    }
    s
}
