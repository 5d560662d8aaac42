//! The report as JSON (`schema` "wattprint.report/1"): the run record(s) unchanged, plus the
//! breakdown, the power series (run reports), totals (project reports) and the alternatives.

use super::{project_cumulative, run_cumulative, Report, Subject};
use anyhow::Result;
use serde_json::{json, Value};

pub const SCHEMA: &str = "wattprint.report/1";

/// The JSON value of a report.
pub fn value(r: &Report) -> Result<Value> {
    Ok(match &r.subject {
        Subject::Run(run) => {
            let rec = &run.record;
            let series: Vec<Value> = run
                .series
                .iter()
                .map(|s| {
                    json!({
                        "device_id": s.device_id,
                        "energy_j": s.energy_j(),
                        "points": s.points.iter().map(|p| json!({
                            "t0": p.t0, "t1": p.t1, "energy_j": p.energy_j, "power_w": p.power().0,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({
                "schema": SCHEMA,
                "kind": "run",
                "generated_at": r.generated_at,
                "wattprint_version": r.version,
                "run": rec,
                "breakdown": {
                    "energy_kwh": {
                        "dynamic": rec.energy_kwh.dynamic.0,
                        "static": rec.energy_kwh.static_.0,
                        "infrastructure": rec.energy_kwh.infrastructure.0,
                        "it": rec.energy_kwh.it.0,
                        "facility": rec.energy_kwh.facility.0,
                    },
                    "emissions_kg": rec.emissions_kg,
                },
                "series": series,
                "cumulative_emissions_kg": run_cumulative(run)
                    .into_iter().map(|(t, kg)| json!({"t": t, "kg": kg})).collect::<Vec<_>>(),
                "alternatives": run.alternatives,
                "notes": run.notes,
            })
        }
        Subject::Project(p) => json!({
            "schema": SCHEMA,
            "kind": "project",
            "generated_at": r.generated_at,
            "wattprint_version": r.version,
            "project": p.project,
            "since": p.since,
            "totals": p.totals,
            "breakdown": {
                "energy_kwh": p.totals.energy_kwh,
                "emissions_kg": p.totals.emissions_kg,
            },
            "cumulative_emissions_kg": project_cumulative(p).into_iter()
                .map(|(t, kg, w)| json!({"t_unix": t, "kg": kg, "wasted_kg": w}))
                .collect::<Vec<_>>(),
            "alternatives": p.alternatives,
            "locations": p.locations,
            "methods": p.methods.iter().map(|(c, m, n)| json!({"component": c, "method": m, "runs": n})).collect::<Vec<_>>(),
            "warnings": p.warnings.iter().map(|(w, n)| json!({"warning": w, "runs": n})).collect::<Vec<_>>(),
            "factors_versions": p.factors_versions,
            "runs": p.runs,
        }),
    })
}

/// Pretty-printed JSON with a final newline.
pub fn render(r: &Report) -> Result<String> {
    let mut s = serde_json::to_string_pretty(&value(r)?)?;
    s.push('\n');
    Ok(s)
}
