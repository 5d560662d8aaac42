//! `wattprint digest`: a one-page summary of a period for a person or a team (Markdown or
//! HTML, for a cron job to mail): what was emitted, the top models and their overhead, waste
//! (failed runs, discarded compute, idle GPUs), what the cleanest region would have saved, and
//! three concrete actions with their estimated saving. Rules: docs/pipeline.md.

use crate::model_footprint::{footprint, DiscardedSum, ModelFootprint};
use crate::pipeline_text::{gpu_idle_spans, MIN_IDLE_SPAN_S};
use crate::report::{is_wasted, project_from_runs, Alternative};
use crate::store::Store;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use wattprint_core::format::{energy_kwh, mass_kg, percent, sig};
use wattprint_core::record::RunRecord;

/// Models listed.
pub const TOP_MODELS: usize = 5;

/// One action and what it would have saved over the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub what: String,
    /// kg CO2e over the period; `None`: unknown.
    pub saving_kg: Option<f64>,
}

/// The digest's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Digest {
    /// What the period is, in words.
    pub period: String,
    pub runs: usize,
    pub energy_kwh: f64,
    pub emissions_kg: f64,
    pub models: Vec<ModelFootprint>,
    /// Runs of no model.
    pub unlinked_runs: usize,
    pub failed_runs: usize,
    pub failed_kg: f64,
    pub discarded: DiscardedSum,
    pub idle_gpu_kwh: f64,
    pub idle_gpu_kg: f64,
    pub idle_gpu_spans: usize,
    /// Whether idle GPU time could be judged (the series are read from the local store; a
    /// server digest does not fetch them).
    pub idle_gpu_known: bool,
    pub cleanest: Option<Alternative>,
    pub actual_operational_kg: f64,
    pub actions: Vec<Action>,
}

/// The digest of `runs` (with their stored series read from `store` for idle GPUs; without a
/// store, idle GPU time is said not computed).
pub fn digest(store: Option<&Store>, period: &str, runs: Vec<RunRecord>) -> anyhow::Result<Digest> {
    let mut by_model: BTreeMap<String, Vec<RunRecord>> = BTreeMap::new();
    let mut unlinked = 0;
    let mut discarded = DiscardedSum::default();
    let (mut idle_kwh, mut idle_kg, mut idle_n) = (0.0, 0.0, 0);
    let (mut failed_runs, mut failed_kg) = (0, 0.0);
    for r in &runs {
        match r.lineage.as_ref().and_then(|l| l.model.clone()) {
            Some(m) => by_model.entry(m).or_default().push(r.clone()),
            None => unlinked += 1,
        }
        discarded.add(r);
        if is_wasted(r.status) {
            failed_runs += 1;
            failed_kg += r.emissions_kg.total;
        }
        if let Some(store) = store.filter(|_| r.devices.iter().any(|d| d.idle_power_w.is_some())) {
            let series = store.series(&r.id)?;
            let kg_per_kwh = r.pue * r.carbon_intensity.g_per_kwh / 1000.0;
            for s in gpu_idle_spans(r, &series, MIN_IDLE_SPAN_S) {
                idle_kwh += s.energy_kwh;
                idle_kg += s.energy_kwh * kg_per_kwh;
                idle_n += 1;
            }
        }
    }
    let mut models: Vec<ModelFootprint> = by_model.iter().map(|(m, rs)| footprint(m, rs)).collect();
    models.sort_by(|a, b| b.total.emissions_kg.total_cmp(&a.total.emissions_kg));
    models.truncate(TOP_MODELS);
    let energy: f64 = runs.iter().map(|r| r.energy_kwh.total.0).sum();
    let emissions: f64 = runs.iter().map(|r| r.emissions_kg.total).sum();
    let n = runs.len();
    let rep = project_from_runs(None, None, runs);
    let alt = &rep.alternatives;
    let cleanest = alt
        .near
        .first()
        .or(alt.overall.first())
        .filter(|a| a.emissions_kg < alt.actual_operational_kg)
        .cloned();
    let mut d = Digest {
        period: period.to_string(),
        runs: n,
        energy_kwh: energy,
        emissions_kg: emissions,
        models,
        unlinked_runs: unlinked,
        failed_runs,
        failed_kg,
        discarded,
        idle_gpu_kwh: idle_kwh,
        idle_gpu_kg: idle_kg,
        idle_gpu_spans: idle_n,
        idle_gpu_known: store.is_some(),
        cleanest,
        actual_operational_kg: alt.actual_operational_kg,
        actions: Vec::new(),
    };
    d.actions = actions(&d);
    Ok(d)
}

/// Three actions, those with the largest known saving first.
pub fn actions(d: &Digest) -> Vec<Action> {
    let mut known: Vec<Action> = Vec::new();
    if let Some(c) = &d.cleanest {
        known.push(Action {
            what: format!(
                "Run the same work in {} ({}, {} gCO2e/kWh × PUE {})",
                c.name,
                c.id,
                sig(c.intensity_g_per_kwh),
                sig(c.pue)
            ),
            saving_kg: Some(d.actual_operational_kg - c.emissions_kg),
        });
    }
    if d.discarded.known_runs > 0 {
        known.push(Action {
            what: "Checkpoint more often (every 30 min): failed runs discarded the work since their last checkpoint".into(),
            saving_kg: Some(d.discarded.emissions_kg),
        });
    }
    if d.idle_gpu_spans > 0 {
        known.push(Action {
            what: "Release GPUs held idle (data-loader stalls, hung or waiting jobs)".into(),
            saving_kg: Some(d.idle_gpu_kg),
        });
    }
    let sweep_waste: f64 = d
        .models
        .iter()
        .flat_map(|m| m.sweeps.iter())
        .filter_map(|s| s.far_from_best.as_ref().map(|f| f.cost.emissions_kg))
        .sum();
    if sweep_waste > 0.0 {
        known.push(Action {
            what: "Stop sweep trials early when they fall far behind the best (e.g. a pruning scheduler)".into(),
            saving_kg: Some(sweep_waste),
        });
    }
    known.retain(|a| a.saving_kg.is_some_and(|k| k > 0.0));
    known.sort_by(|a, b| {
        b.saving_kg
            .unwrap_or(0.0)
            .total_cmp(&a.saving_kg.unwrap_or(0.0))
    });
    let mut out: Vec<Action> = known.into_iter().take(3).collect();
    let fallbacks = [
        (d.discarded.unknown_runs > 0, format!(
            "Signal checkpoints (`checkpoint <unix time>` in $WATTPRINT_PROGRESS_FILE, or t.checkpoint_saved()): what {} failed run(s) discarded is unknown",
            d.discarded.unknown_runs
        )),
        (d.unlinked_runs > 0, format!(
            "Link runs to their model (`wattprint run --model NAME --stage …`): {} run(s) belong to no model, so preparation overhead cannot be told",
            d.unlinked_runs
        )),
        (true, "Scan shared data for duplicate copies (`wattprint storage scan DIR…`)".to_string()),
        (true, "Start flexible jobs at the cleanest hour (`wattprint run --start-when-clean`)".to_string()),
    ];
    for (when, what) in fallbacks {
        if out.len() >= 3 {
            break;
        }
        if when {
            out.push(Action {
                what,
                saving_kg: None,
            });
        }
    }
    out
}

/// The digest as Markdown.
pub fn markdown(d: &Digest) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# wattprint digest: {}\n", d.period);
    let _ = writeln!(
        o,
        "**Emitted:** {} CO2e, {} over {} run(s).\n",
        mass_kg(d.emissions_kg),
        energy_kwh(d.energy_kwh),
        d.runs
    );
    let _ = writeln!(o, "## Top models\n");
    if d.models.is_empty() {
        let _ = writeln!(
            o,
            "No run names its model (`wattprint run --model NAME`): preparation overhead unknown.\n"
        );
    } else {
        let _ = writeln!(
            o,
            "| model | emitted | final training | overhead ratio | preparation |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|");
        for m in &d.models {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                md_cell(&m.model),
                mass_kg(m.total.emissions_kg),
                m.final_training
                    .as_ref()
                    .map(|f| mass_kg(f.emissions_kg))
                    .unwrap_or_else(|| "none".into()),
                m.overhead_ratio
                    .map(|x| format!("{}×", sig(x)))
                    .unwrap_or_else(|| "unknown".into()),
                m.preparation_share
                    .map(percent)
                    .unwrap_or_else(|| "unknown".into())
            );
        }
        if d.unlinked_runs > 0 {
            let _ = writeln!(o, "\n{} run(s) name no model.", d.unlinked_runs);
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "## Waste\n");
    let _ = writeln!(
        o,
        "- Failed, killed or stopped runs: {} ({} CO2e)",
        d.failed_runs,
        mass_kg(d.failed_kg)
    );
    let disc = &d.discarded;
    let _ = writeln!(
        o,
        "- Discarded since the last checkpoint: {}{}",
        if disc.known_runs > 0 {
            format!(
                "{} CO2e in {} run(s)",
                mass_kg(disc.emissions_kg),
                disc.known_runs
            )
        } else {
            "none known".into()
        },
        if disc.unknown_runs > 0 {
            format!(
                "; unknown for {} run(s) without checkpoint signals",
                disc.unknown_runs
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        o,
        "- Idle GPUs (within 10 % of idle power for ≥ {MIN_IDLE_SPAN_S} s): {}",
        if !d.idle_gpu_known {
            "not computed (the power series stay on the server)".to_string()
        } else if d.idle_gpu_spans > 0 {
            format!(
                "{}, {} CO2e in {} span(s)",
                energy_kwh(d.idle_gpu_kwh),
                mass_kg(d.idle_gpu_kg),
                d.idle_gpu_spans
            )
        } else {
            "none seen (GPUs without a known idle power are not judged)".into()
        }
    );
    let _ = writeln!(
        o,
        "- Duplicate data: not in the run store; `wattprint storage scan DIR…` measures it\n"
    );
    let _ = writeln!(o, "## Cleaner place or time\n");
    match &d.cleanest {
        Some(c) => {
            let _ = writeln!(
                o,
                "The same work in {} ({}) would have emitted {} instead of {} operational CO2e.\n",
                c.name,
                c.id,
                mass_kg(c.emissions_kg),
                mass_kg(d.actual_operational_kg)
            );
        }
        None => {
            let _ = writeln!(o, "No shipped region is cleaner than where the work ran.\n");
        }
    }
    let _ = writeln!(
        o,
        "Cleanest hour: not computed here (it needs a live intensity forecast: `wattprint when`).\n"
    );
    let _ = writeln!(o, "## Three actions\n");
    for (i, a) in d.actions.iter().enumerate() {
        let _ = writeln!(
            o,
            "{}. {} — {}",
            i + 1,
            a.what,
            match a.saving_kg {
                Some(k) => format!("would have saved about {} CO2e", mass_kg(k)),
                None => "saving unknown".into(),
            }
        );
    }
    o
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The digest as one self-contained HTML page (the Markdown's content, escaped).
pub fn html(d: &Digest) -> String {
    let md = markdown(d);
    let mut body = String::new();
    let mut in_list = false;
    let mut in_table = false;
    for line in md.lines() {
        if in_table && !line.starts_with('|') {
            body.push_str("</table>\n");
            in_table = false;
        }
        let is_item = line.starts_with("- ")
            || line.chars().next().is_some_and(|c| c.is_ascii_digit()) && line.contains(". ");
        if in_list && !is_item {
            body.push_str("</ul>\n");
            in_list = false;
        }
        if let Some(t) = line.strip_prefix("# ") {
            let _ = writeln!(body, "<h1>{}</h1>", esc(t));
        } else if let Some(t) = line.strip_prefix("## ") {
            let _ = writeln!(body, "<h2>{}</h2>", esc(t));
        } else if line.starts_with("|---") {
        } else if line.starts_with('|') {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split(" | ")
                .map(|c| format!("<td>{}</td>", esc(c.trim())))
                .collect();
            if !in_table {
                body.push_str("<table>\n");
                in_table = true;
            }
            let _ = writeln!(body, "<tr>{}</tr>", cells.join(""));
        } else if is_item {
            if !in_list {
                body.push_str("<ul>\n");
                in_list = true;
            }
            let t = line.trim_start_matches("- ");
            let _ = writeln!(body, "<li>{}</li>", esc(t));
        } else if !line.trim().is_empty() {
            let _ = writeln!(body, "<p>{}</p>", esc(&line.replace("**", "")));
        }
    }
    if in_list {
        body.push_str("</ul>\n");
    }
    if in_table {
        body.push_str("</table>\n");
    }
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>wattprint digest: {}</title>\
         <style>body{{font-family:sans-serif;max-width:50em;margin:2em auto}}td{{padding:0 .6em}}</style>\
         </head><body>\n{body}</body></html>\n",
        esc(&d.period)
    )
}
