//! `/dashboard/jobs/{key}`: one job across nodes — each node's part (summed once per node), the
//! job's total, and whether every expected node reported (the API's `GET /api/v1/jobs/{key}`).

use super::pages::document;
use super::{esc, fmt_dur, fmt_kg, fmt_kwh, internal, not_found, DashState, Viewer};
use crate::store_jobs::MAX_JOB_RUNS;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::fmt::Write as _;

pub async fn job(State(st): State<DashState>, v: Viewer, Path(key): Path<String>) -> Response {
    let Some(key) = wattprint_core::job::check_key(&key) else {
        return not_found();
    };
    let texts = match st
        .app
        .store
        .job_records(&v.scope(), &key, MAX_JOB_RUNS)
        .await
    {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let records: Vec<Value> = texts
        .iter()
        .filter_map(|t| serde_json::from_str::<Value>(t).ok())
        .filter(|r| r["job"].as_str() == Some(key.as_str()))
        .collect();
    if records.is_empty() {
        return not_found();
    }
    let s = wattprint_core::job::summarize(&key, &records);
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let mut o = String::new();
    let state = if s["complete"] == true {
        "complete".to_string()
    } else {
        match (s["expected_nodes"].as_u64(), s["reported_nodes"].as_u64()) {
            (Some(e), Some(r)) => format!("incomplete: {r} of {e} nodes reported"),
            _ => "incomplete: the number of nodes is unknown".to_string(),
        }
    };
    let _ = write!(
        o,
        "<h1 id=\"page-title\">Job {}</h1><p class=\"sub\">{}; {} IT energy, {} CO2e (each node once)</p>",
        esc(&key),
        esc(&state),
        esc(&fmt_kwh(f(&s["total"]["energy_kwh"]))),
        esc(&fmt_kg(f(&s["total"]["emissions_kg"])))
    );
    if let Some(m) = s["missing_nodes"].as_array().filter(|m| !m.is_empty()) {
        let names: Vec<&str> = m.iter().filter_map(|x| x.as_str()).collect();
        let _ = write!(
            o,
            "<p id=\"missing\">Not reported: {}</p>",
            esc(&names.join(", "))
        );
    }
    o.push_str("<table id=\"job-nodes\"><thead><tr><th>node</th><th>runs</th><th>charged</th><th>running</th><th>IT energy</th><th>emissions</th><th>longest</th></tr></thead><tbody>");
    for n in s["nodes"].as_array().into_iter().flatten() {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(n["node"].as_str().unwrap_or("?")),
            n["runs"],
            n["charged_runs"],
            n["running"],
            esc(&fmt_kwh(f(&n["energy_kwh"]))),
            esc(&fmt_kg(f(&n["emissions_kg"]))),
            esc(&fmt_dur(f(&n["duration_s"])))
        );
    }
    o.push_str("</tbody></table>");
    document(&format!("Job {key}"), Some(&v), "jobs", &o).into_response()
}
