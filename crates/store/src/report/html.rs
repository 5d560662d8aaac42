//! The HTML report: one self-contained file (inline CSS and SVG; no scripts, no fonts, images,
//! style sheets or anything else loaded from elsewhere), readable on screen and on A4 paper.

use super::svg::{self, esc, Line, Segment, XScale, YUnit, PALETTE};
use super::{
    command_text, equivalents_rows, fmt_time, hardware_of, location_text, methods_of, pct,
    power_steps, project_cumulative, run_cumulative, short_id, title, Alternatives, ProjectReport,
    Report, RunReport, Subject,
};
use crate::embodied_text::{fmt_embodied, kg_or_zero, of_record, of_sum, EmbodiedFigure};
use crate::summary::{fmt_duration, fmt_energy_kwh, fmt_mass_kg};
use std::fmt::Write;
use wattprint_core::factors::sources::sources;
use wattprint_core::units::JOULES_PER_KWH;

const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1d1d1f; background: #fff; margin: 0 auto; max-width: 780px; padding: 24px 24px 48px;
  line-height: 1.45; font-size: 15px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.15em; margin: 28px 0 8px; border-bottom: 1px solid #d0d0d0; padding-bottom: 3px; }
p.sub { color: #555; margin: 0 0 16px; }
.kpis { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; margin: 12px 0; }
.kpi { border: 1px solid #d0d0d0; border-radius: 6px; padding: 8px 10px; }
.kpi .v { font-size: 1.3em; font-weight: 600; }
.kpi .k { font-size: 0.8em; color: #555; }
table { border-collapse: collapse; width: 100%; font-size: 0.88em; margin: 6px 0; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #e4e4e4; vertical-align: top;
  overflow-wrap: anywhere; }
th { background: #f3f3f3; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.wasted td { background: #fdecea; }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 0.85em; border: 1px solid #bbb; }
.badge.completed { background: #e8f5e9; border-color: #81c784; }
.badge.failed, .badge.killed, .badge.stopped_by_budget, .badge.stopped_by_cap {
  background: #fdecea; border-color: #e57373; }
.badge.running { background: #fff8e1; border-color: #ffb74d; }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.9em;
  background: #f5f5f5; padding: 0 3px; border-radius: 3px; overflow-wrap: break-word; }
table.runs { font-size: 0.8em; }
table.runs td:nth-child(2), .badge { white-space: nowrap; }
code.id { white-space: nowrap; word-break: normal; }
.note { background: #fff8e1; border-left: 4px solid #ffb74d; padding: 6px 10px; margin: 8px 0; }
.warn li { margin: 2px 0; }
.muted { color: #666; font-size: 0.85em; }
svg.chart { display: block; width: 100%; height: auto; max-width: 720px; margin: 6px 0; }
svg .ct { font: 600 13px system-ui, sans-serif; fill: #1d1d1f; }
svg .cl { font: 12px system-ui, sans-serif; fill: #333; }
svg .cin { font: 600 11px system-ui, sans-serif; fill: #fff; }
svg .grid { stroke: #e6e6e6; stroke-width: 1; }
svg .axis { stroke: #888; stroke-width: 1; }
footer { margin-top: 32px; color: #666; font-size: 0.8em; }
@media print {
  @page { size: A4; margin: 14mm; }
  body { max-width: none; padding: 0; font-size: 10pt; }
  h2 { break-after: avoid; }
  section.keep, svg.chart, .kpis { break-inside: avoid; }
  tr { break-inside: avoid; }
  thead { display: table-header-group; }
  .kpi { border-color: #999; }
  tr.wasted td, .badge, th, code, code.id { white-space: nowrap; word-break: normal; }
.note { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

/// The whole HTML document.
pub fn render(r: &Report) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let t = title(r);
    let _ = writeln!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"wattprint {v}\">\n<title>wattprint · {t}</title>\n<style>{CSS}</style>\n</head>\n<body>",
        v = esc(r.version),
        t = esc(&t),
    );
    match &r.subject {
        Subject::Run(run) => run_body(&mut o, run, &t),
        Subject::Project(p) => project_body(&mut o, p, &t),
    }
    let _ = writeln!(
        o,
        "<footer>Made by wattprint {} on {}. Methods and formulas: docs/methodology.md; reports: docs/reports.md.</footer>\n</body>\n</html>",
        esc(r.version),
        esc(&r.generated_at)
    );
    o
}

fn badge(r: &wattprint_core::record::RunRecord, lost: bool) -> String {
    let wasted = if super::is_wasted(r.status) {
        " · wasted"
    } else {
        ""
    };
    format!(
        "<span class=\"badge {c}\">{t}{wasted}</span>",
        c = r.status.as_str(),
        t = esc(&crate::liveness::status_text(r, lost))
    )
}

fn kpis(o: &mut String, items: &[(&str, String)]) {
    o.push_str("<div class=\"kpis\">");
    for (k, v) in items {
        let _ = write!(
            o,
            "<div class=\"kpi\"><div class=\"v\">{}</div><div class=\"k\">{}</div></div>",
            esc(v),
            esc(k)
        );
    }
    o.push_str("</div>\n");
}

fn breakdown_segments(
    e: (f64, f64, f64),
    m: (f64, f64, f64, &EmbodiedFigure),
) -> Vec<(String, Vec<Segment>)> {
    let seg = |label: &str, value: f64, color: &'static str, text: String| Segment {
        label: label.into(),
        value,
        color,
        text,
    };
    vec![
        (
            "energy".into(),
            vec![
                seg("dynamic", e.0, PALETTE[0], fmt_energy_kwh(e.0)),
                seg("static (idle)", e.1, PALETTE[5], fmt_energy_kwh(e.1)),
                seg("infrastructure", e.2, PALETTE[7], fmt_energy_kwh(e.2)),
            ],
        ),
        (
            "emissions".into(),
            vec![
                seg("dynamic", m.0, PALETTE[0], fmt_mass_kg(m.0)),
                seg("static (idle)", m.1, PALETTE[5], fmt_mass_kg(m.1)),
                seg("infrastructure", m.2, PALETTE[7], fmt_mass_kg(m.2)),
                seg("embodied", kg_or_zero(m.3), PALETTE[6], fmt_embodied(m.3)),
            ],
        ),
    ]
}

#[allow(clippy::too_many_arguments)]
fn breakdown_table(
    o: &mut String,
    e: (f64, f64, f64),
    m: (f64, f64, f64, &EmbodiedFigure),
    facility: f64,
    total_kg: f64,
) {
    o.push_str("<table><thead><tr><th>part</th><th class=\"n\">energy</th><th class=\"n\">share</th><th class=\"n\">emissions CO2e</th><th class=\"n\">share</th></tr></thead><tbody>");
    let rows = [
        ("dynamic (above idle)", Some(e.0), Ok(m.0)),
        ("static (idle draw)", Some(e.1), Ok(m.1)),
        ("infrastructure (PUE − 1)", Some(e.2), Ok(m.2)),
        ("embodied (manufacturing, amortised)", None, m.3.clone()),
    ];
    for (name, en, kg) in rows {
        let _ = write!(
            o,
            // a "not counted (why)" cell wraps like text; figures stay on one line
            "<tr><td>{name}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td{}>{}</td><td class=\"n\">{}</td></tr>",
            en.map(fmt_energy_kwh).unwrap_or_else(|| "–".into()),
            en.map(|v| pct(v, facility)).unwrap_or_else(|| "–".into()),
            if kg.is_ok() { " class=\"n\"" } else { "" },
            esc(&fmt_embodied(&kg)),
            kg.as_ref().map(|k| pct(*k, total_kg)).unwrap_or_else(|_| "–".into()),
        );
    }
    let _ = writeln!(
        o,
        "<tr><th>total</th><th class=\"n\">{}</th><th class=\"n\">100 %</th><th class=\"n\">{}</th><th class=\"n\">100 %</th></tr></tbody></table>",
        fmt_energy_kwh(facility),
        fmt_mass_kg(total_kg)
    );
}

fn alternatives_section(o: &mut String, a: &Alternatives, where_: &str) {
    o.push_str("<section class=\"keep\"><h2>Lower-carbon alternatives</h2>\n");
    let Some(best) = a.overall.first() else {
        o.push_str("<p>No cloud-region factors are available to compare with.</p></section>\n");
        return;
    };
    let _ = writeln!(
        o,
        "<p>The same work ({} of IT energy) in <strong>{}</strong> ({}) would have emitted <strong>{}</strong> CO2e instead of {} ({}){}. Embodied emissions ({}) do not depend on where the work runs and are left out of this comparison.</p>",
        esc(&fmt_energy_kwh(a.it_kwh)),
        esc(&best.name),
        esc(&best.id),
        esc(&fmt_mass_kg(best.emissions_kg)),
        esc(&fmt_mass_kg(a.actual_operational_kg)),
        esc(where_),
        best.saving_percent
            .map(|p| format!(", {} less", wattprint_core::format::percent(p / 100.0)))
            .unwrap_or_default(),
        esc(&a
            .embodied_kg
            .map(fmt_mass_kg)
            .unwrap_or_else(|| "not counted".into())),
    );
    let table = |o: &mut String, caption: &str, rows: &[super::Alternative]| {
        let _ = write!(
            o,
            "<table><caption class=\"muted\" style=\"text-align:left\">{}</caption><thead><tr><th>region</th><th class=\"n\">grid gCO2e/kWh</th><th class=\"n\">PUE</th><th class=\"n\">effective</th><th class=\"n\">would emit</th><th class=\"n\">saving</th><th>sources</th></tr></thead><tbody>",
            esc(caption)
        );
        for r in rows {
            let _ = write!(
                o,
                "<tr><td>{} <span class=\"muted\">{}</span></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"muted\">{}</td></tr>",
                esc(&r.name),
                esc(&r.id),
                wattprint_core::format::sig(r.intensity_g_per_kwh),
                wattprint_core::format::sig(r.pue),
                wattprint_core::format::sig(r.effective_g_per_kwh),
                esc(&fmt_mass_kg(r.emissions_kg)),
                r.saving_percent
                    .map(|p| wattprint_core::format::percent(p / 100.0))
                    .unwrap_or_else(|| "–".into()),
                esc(&super::sources_text(&r.intensity_source, &r.pue_source)),
            );
        }
        o.push_str("</tbody></table>\n");
    };
    table(
        o,
        "Lowest intensity × PUE among all shipped cloud regions",
        &a.overall,
    );
    let same = a
        .near
        .iter()
        .map(|x| &x.id)
        .eq(a.overall.iter().map(|x| &x.id));
    if let Some(area) = &a.near_area {
        if same {
            let _ = write!(
                o,
                "<p class=\"muted\">These are also the best regions in the run's own area ({}).</p>",
                esc(area)
            );
        } else if !a.near.is_empty() {
            table(o, &format!("Best in the same area ({area})"), &a.near);
        }
    }
    o.push_str("<p class=\"muted\">would emit = IT energy × grid intensity × PUE of the region (operational only). Rank them all with <code>wattprint regions</code>.</p></section>\n");
}

fn equivalents_section(o: &mut String, e: &wattprint_core::record::Equivalents, total: f64) {
    let _ = write!(
        o,
        "<section class=\"keep\"><h2>Equivalents</h2><p>{} CO2e is about:</p><table><tbody>",
        esc(&fmt_mass_kg(total))
    );
    for (what, v) in equivalents_rows(e) {
        let _ = write!(
            o,
            "<tr><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&v),
            esc(what)
        );
    }
    o.push_str("</tbody></table><p class=\"muted\">Factors from Green Algorithms v3.0 (CC BY 4.0) and the US EPA calculator; see docs/methodology.md.</p></section>\n");
}

fn warnings_section(o: &mut String, ws: &[(String, Option<usize>)]) {
    o.push_str("<section><h2>Warnings</h2>");
    if ws.is_empty() {
        o.push_str("<p>None.</p>");
    } else {
        o.push_str("<ul class=\"warn\">");
        for (w, n) in ws {
            let _ = write!(
                o,
                "<li>{}{}</li>",
                esc(w),
                n.map(|n| format!(" <span class=\"muted\">({n} runs)</span>"))
                    .unwrap_or_default()
            );
        }
        o.push_str("</ul>");
    }
    o.push_str("</section>\n");
}

fn attributions(o: &mut String, text: &str) {
    // whole keys only: `A-CC` must not match inside `A-CCF`
    let has = |key: &str| {
        text.match_indices(key).any(|(i, _)| {
            let after = text[i + key.len()..].chars().next();
            let before = text[..i].chars().next_back();
            !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
                && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
        })
    };
    let used: Vec<_> = sources().into_iter().filter(|s| has(s.key)).collect();
    if used.is_empty() {
        return;
    }
    o.push_str("<h3 style=\"font-size:1em\">Datasets</h3><ul class=\"muted\">");
    for s in used {
        let _ = write!(
            o,
            "<li><strong>{}</strong> {} ({}, {}). {}</li>",
            esc(s.key),
            esc(s.name),
            esc(s.version),
            esc(s.licence),
            esc(s.attribution)
        );
    }
    o.push_str("</ul>");
}

/// The live-intensity providers whose data the report embeds, with their credit, and a notice
/// when their terms restrict redistribution.
fn live_data_html(o: &mut String, records: &[&wattprint_core::record::RunRecord]) {
    let (lines, notices) = super::live_data(records);
    if lines.is_empty() {
        return;
    }
    o.push_str("<h3 style=\"font-size:1em\">Live intensity data</h3><ul class=\"muted\">");
    for l in &lines {
        let _ = write!(o, "<li>{}</li>", esc(l));
    }
    o.push_str("</ul>");
    for n in &notices {
        let _ = write!(
            o,
            "<p class=\"note\"><strong>Restricted data.</strong> {}</p>",
            esc(n)
        );
    }
}

fn run_body(o: &mut String, run: &RunReport, t: &str) {
    let r = &run.record;
    let where_ = location_text(&r.location.code, &r.location.name, r.location.known);
    let _ = writeln!(
        o,
        "<header><h1>{}</h1><p class=\"sub\">{} · started {} · {} · {}</p></header>",
        esc(t),
        badge(r, run.lost),
        esc(&fmt_time(&r.started_at)),
        esc(&fmt_duration(r.duration_s)),
        esc(&where_),
    );
    let avg_w = if r.duration_s > 0.0 {
        r.energy_kwh.it.0 * JOULES_PER_KWH / r.duration_s
    } else {
        0.0
    };
    kpis(
        o,
        &[
            ("emissions CO2e", fmt_mass_kg(r.emissions_kg.total)),
            ("IT energy (devices)", fmt_energy_kwh(r.energy_kwh.it.0)),
            (
                "facility energy (× PUE)",
                fmt_energy_kwh(r.energy_kwh.facility.0),
            ),
            ("average IT power", wattprint_core::format::power_w(avg_w)),
        ],
    );
    for n in &run.notes {
        let _ = write!(o, "<p class=\"note\">{}</p>", esc(n));
    }

    // power over time
    o.push_str("<section class=\"keep\"><h2>Power over time</h2>\n");
    let lines: Vec<Line> = run
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let steps = power_steps(s, 600);
            let mut pts = Vec::with_capacity(steps.len() * 2);
            for p in steps {
                let w = p.power().0;
                pts.push((p.t0, w));
                pts.push((p.t1, w));
            }
            let method = r
                .devices
                .iter()
                .find(|d| d.id == s.device_id)
                .map(|d| format!(" ({})", d.method.as_str()))
                .unwrap_or_default();
            Line {
                name: format!("{}{method}", s.device_id),
                color: PALETTE[i % PALETTE.len()],
                points: pts,
                dashed: false,
            }
        })
        .collect();
    o.push_str(&svg::line_chart(
        "Power charged to the job, per device",
        &lines,
        XScale::Seconds,
        YUnit::Watts,
        260.0,
    ));
    let _ = writeln!(
        o,
        "<p class=\"muted\">Average power over each sampling interval (interval {} s; long runs are merged into wider intervals, energy preserved).</p></section>",
        r.interval_s
    );

    // breakdown
    let e = (
        r.energy_kwh.dynamic.0,
        r.energy_kwh.static_.0,
        r.energy_kwh.infrastructure.0,
    );
    let embodied = of_record(r);
    let m = (
        r.emissions_kg.dynamic,
        r.emissions_kg.static_,
        r.emissions_kg.infrastructure,
        &embodied,
    );
    o.push_str("<section class=\"keep\"><h2>Energy and emissions breakdown</h2>\n");
    o.push_str(&svg::stacked_bars(
        "Where the energy and emissions come from",
        &breakdown_segments(e, m),
    ));
    breakdown_table(o, e, m, r.energy_kwh.facility.0, r.emissions_kg.total);
    let _ = writeln!(
        o,
        "<p class=\"muted\">By component: CPU {}, GPU {}, RAM {}. Operational = IT energy × PUE {} × {} gCO2e/kWh.</p></section>",
        esc(&fmt_energy_kwh(r.energy_kwh.cpu.0)),
        esc(&fmt_energy_kwh(r.energy_kwh.gpu.0)),
        esc(&fmt_energy_kwh(r.energy_kwh.ram.0)),
        wattprint_core::format::sig(r.pue),
        wattprint_core::format::sig(r.carbon_intensity.g_per_kwh)
    );

    // cumulative
    o.push_str("<section class=\"keep\"><h2>Cumulative emissions</h2>\n");
    o.push_str(&svg::line_chart(
        "Emissions so far (operational + embodied)",
        &[Line {
            name: "cumulative CO2e".into(),
            color: PALETTE[1],
            points: run_cumulative(run),
            dashed: false,
        }],
        XScale::Seconds,
        YUnit::KgCo2e,
        220.0,
    ));
    o.push_str("</section>\n");

    // devices
    o.push_str("<section class=\"keep\"><h2>Devices and methods</h2><table><thead><tr><th>device</th><th>kind</th><th>name</th><th>method</th><th class=\"n\">energy</th><th class=\"n\">avg power</th><th class=\"n\">idle power</th></tr></thead><tbody>");
    for d in &r.devices {
        let _ = write!(
            o,
            "<tr><td><code class=\"id\">{}</code></td><td>{}</td><td>{}</td><td>{} <span class=\"muted\">{}</span></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&d.id),
            esc(d.kind.as_str()),
            esc(&d.name),
            esc(d.method.as_str()),
            if d.method.is_measured() { "measured" } else { "estimated" },
            esc(&fmt_energy_kwh(d.energy_kwh)),
            wattprint_core::format::power_w(d.avg_power_w),
            d.idle_power_w
                .map(wattprint_core::format::power_w)
                .unwrap_or_else(|| "–".into()),
        );
    }
    let _ = writeln!(
        o,
        "</tbody></table><p class=\"muted\">Scope <strong>{}</strong>: {}. Methods: {}.</p></section>",
        esc(&r.scope),
        if r.scope == "process" {
            "the job's share of each device (CPU time, resident memory, GPUs it holds)"
        } else {
            "everything the devices drew while the job ran"
        },
        esc(&methods_of(r)),
    );

    alternatives_section(o, &run.alternatives, &where_);
    super::other_tools::section(o, r, esc);
    equivalents_section(o, &r.equivalents, r.emissions_kg.total);

    // assumptions
    o.push_str("<section><h2>Assumptions and sources</h2><table><thead><tr><th>factor</th><th class=\"n\">value</th><th>unit</th><th>source</th></tr></thead><tbody>");
    for a in &r.assumptions {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.name),
            wattprint_core::format::sig(a.value),
            esc(&a.unit),
            esc(&a.source)
        );
    }
    let _ = write!(
        o,
        "</tbody></table><p>Carbon intensity {} gCO2e/kWh at {}: {}.<br>PUE {}: {}.<br>Factors version <code>{}</code>.</p>",
        wattprint_core::format::sig(r.carbon_intensity.g_per_kwh),
        esc(&where_),
        esc(&r.carbon_intensity.source),
        wattprint_core::format::sig(r.pue),
        esc(&r.location.pue_source),
        esc(&r.factors_version),
    );
    let mut text = r.carbon_intensity.source.clone();
    text.push_str(&r.location.pue_source);
    for a in &r.assumptions {
        text.push_str(&a.source);
    }
    for a in run
        .alternatives
        .overall
        .iter()
        .chain(&run.alternatives.near)
    {
        text.push_str(&a.intensity_source);
        text.push_str(&a.pue_source);
    }
    attributions(o, &text);
    live_data_html(o, &[r]);
    o.push_str("</section>\n");

    let seg = crate::segments_text::segments_text(r);
    if !seg.is_empty() {
        let _ = writeln!(
            o,
            "<section id=\"segments\"><h2>Stages, windows and work</h2><pre>{}</pre></section>",
            esc(seg.trim_start())
        );
    }

    let ws: Vec<(String, Option<usize>)> = r.warnings.iter().map(|w| (w.clone(), None)).collect();
    warnings_section(o, &ws);

    // run details
    o.push_str("<section class=\"keep\"><h2>Run</h2><table><tbody>");
    let tags = if r.tags.is_empty() {
        "–".to_string()
    } else {
        r.tags
            .iter()
            .map(|(k, v)| format!("<code>{}={}</code>", esc(k), esc(v)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let exit = match (r.exit_code, r.signal) {
        (_, Some(s)) => format!("signal {s}"),
        (Some(c), None) => format!("exit code {c}"),
        _ => "–".into(),
    };
    let rows: Vec<(&str, String)> = vec![
        ("id", format!("<code>{}</code>", esc(&r.id))),
        ("project", esc(&r.project)),
        (
            "command",
            format!("<code>{}</code>", esc(&command_text(&r.command))),
        ),
        ("tags", tags),
        ("status", format!("{} ({})", badge(r, run.lost), esc(&exit))),
        (
            "time",
            format!(
                "{} → {} ({})",
                esc(&fmt_time(&r.started_at)),
                esc(&r
                    .ended_at
                    .as_deref()
                    .map(fmt_time)
                    .unwrap_or_else(|| "–".into())),
                esc(&fmt_duration(r.duration_s))
            ),
        ),
        (
            "host",
            format!("{} · {}", esc(&r.host.hostname), esc(&hardware_of(r))),
        ),
        (
            "sampling",
            format!(
                "every {} s, {} reads, {} ticks skipped",
                r.interval_s, r.samples, r.skipped_ticks
            ),
        ),
        ("wattprint", esc(&r.wattprint_version)),
    ];
    for (k, v) in rows {
        let _ = writeln!(o, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    o.push_str("</tbody></table></section>\n");
}

fn project_body(o: &mut String, p: &ProjectReport, t: &str) {
    let tt = &p.totals;
    let since = p
        .since
        .as_deref()
        .map(|s| format!(" · runs started since {}", esc(s)))
        .unwrap_or_default();
    let _ = write!(
        o,
        "<header><h1>{}</h1><p class=\"sub\">{} runs: {} completed, {} failed, {} killed, {} running · {} of run time{}</p></header>",
        esc(t),
        tt.runs,
        tt.completed,
        tt.failed,
        tt.killed,
        tt.running,
        esc(&fmt_duration(tt.duration_s)),
        since,
    );
    let wasted_key = format!(
        "wasted: {} of failed or killed runs",
        fmt_mass_kg(tt.wasted_emissions_kg)
    );
    kpis(
        o,
        &[
            ("emissions CO2e", fmt_mass_kg(tt.emissions_kg.total)),
            ("IT energy (devices)", fmt_energy_kwh(tt.energy_kwh.it)),
            (
                &wasted_key,
                pct(tt.wasted_emissions_kg, tt.emissions_kg.total),
            ),
            (
                "idle share of IT energy",
                pct(tt.energy_kwh.static_, tt.energy_kwh.it),
            ),
        ],
    );
    if tt.running > 0 {
        let _ = write!(
            o,
            "<p class=\"note\">{} run(s) are still running or ended without a final record: their figures are those of their last checkpoint.</p>",
            tt.running
        );
    }

    let e = (
        tt.energy_kwh.dynamic,
        tt.energy_kwh.static_,
        tt.energy_kwh.infrastructure,
    );
    let embodied = of_sum(
        tt.emissions_kg.embodied,
        tt.runs,
        tt.emissions_kg.embodied_not_counted_runs,
    );
    let m = (
        tt.emissions_kg.dynamic,
        tt.emissions_kg.static_,
        tt.emissions_kg.infrastructure,
        &embodied,
    );
    o.push_str("<section class=\"keep\"><h2>Energy and emissions breakdown</h2>\n");
    let mut rows = breakdown_segments(e, m);
    rows.push((
        "runs".into(),
        vec![
            Segment {
                label: "useful (completed, running)".into(),
                value: tt.emissions_kg.total - tt.wasted_emissions_kg,
                color: PALETTE[2],
                text: fmt_mass_kg(tt.emissions_kg.total - tt.wasted_emissions_kg),
            },
            Segment {
                label: "wasted (failed, killed)".into(),
                value: tt.wasted_emissions_kg,
                color: PALETTE[1],
                text: fmt_mass_kg(tt.wasted_emissions_kg),
            },
        ],
    ));
    o.push_str(&svg::stacked_bars("Totals over the runs", &rows));
    breakdown_table(o, e, m, tt.energy_kwh.facility, tt.emissions_kg.total);
    let _ = writeln!(
        o,
        "<p class=\"muted\">By component: CPU {}, GPU {}, RAM {}. Wasted: {} runs, {} of IT energy, {} CO2e.</p></section>",
        esc(&fmt_energy_kwh(tt.energy_kwh.cpu)),
        esc(&fmt_energy_kwh(tt.energy_kwh.gpu)),
        esc(&fmt_energy_kwh(tt.energy_kwh.ram)),
        tt.wasted_runs,
        esc(&fmt_energy_kwh(tt.wasted_energy_kwh)),
        esc(&fmt_mass_kg(tt.wasted_emissions_kg)),
    );

    let cum = project_cumulative(p);
    o.push_str("<section class=\"keep\"><h2>Cumulative emissions</h2>\n");
    o.push_str(&svg::line_chart(
        "Emissions over the runs, by end time",
        &[
            Line {
                name: "all runs".into(),
                color: PALETTE[0],
                points: cum.iter().map(|&(t, a, _)| (t, a)).collect(),
                dashed: false,
            },
            Line {
                name: "of which wasted (failed, killed)".into(),
                color: PALETTE[1],
                points: cum.iter().map(|&(t, _, w)| (t, w)).collect(),
                dashed: true,
            },
        ],
        XScale::Unix,
        YUnit::KgCo2e,
        240.0,
    ));
    o.push_str("</section>\n");

    let where_ = p
        .locations
        .first()
        .map(|l| {
            let known = l.code != "unknown";
            location_text(&l.code, &l.name, known)
        })
        .unwrap_or_else(|| "unknown".into());
    alternatives_section(o, &p.alternatives, &where_);

    // runs
    o.push_str(
        "<section><h2>Runs</h2><table class=\"runs\"><thead><tr><th>run</th><th>started (UTC)</th><th>status</th><th class=\"n\">duration</th><th class=\"n\">IT energy</th><th class=\"n\">CO2e</th><th>command · tags</th></tr></thead><tbody>\n",
    );
    for r in &p.runs {
        let cmd = command_text(&r.command);
        let cmd: String = if cmd.chars().count() > 60 {
            cmd.chars().take(59).chain(std::iter::once('…')).collect()
        } else {
            cmd
        };
        let tags: String = r
            .tags
            .iter()
            .map(|(k, v)| format!("<code>{}={}</code> ", esc(k), esc(v)))
            .collect();
        let _ = writeln!(
            o,
            "<tr{cls}><td><code class=\"id\">{id}</code></td><td>{st}</td><td>{badge}</td><td class=\"n\">{d}</td><td class=\"n\">{e}</td><td class=\"n\">{m}</td><td><code>{cmd}</code><br>{tags}</td></tr>",
            cls = if super::is_wasted(r.status) { " class=\"wasted\"" } else { "" },
            id = esc(short_id(&r.id)),
            st = esc(fmt_time(&r.started_at).get(..16).unwrap_or(&r.started_at)),
            badge = badge(r, p.lost.contains(&r.id)),
            d = esc(&fmt_duration(r.duration_s)),
            e = esc(&fmt_energy_kwh(r.energy_kwh.it.0)),
            m = esc(&fmt_mass_kg(r.emissions_kg.total)),
            cmd = esc(&cmd),
        );
    }
    let _ = writeln!(
        o,
        "</tbody><tfoot><tr><th colspan=\"3\">total ({} runs)</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th></th></tr></tfoot></table></section>",
        tt.runs,
        esc(&fmt_duration(tt.duration_s)),
        esc(&fmt_energy_kwh(tt.energy_kwh.it)),
        esc(&fmt_mass_kg(tt.emissions_kg.total)),
    );

    // methods
    o.push_str("<section class=\"keep\"><h2>Methods</h2><table><thead><tr><th>component</th><th>method</th><th class=\"n\">runs</th></tr></thead><tbody>");
    for (c, m, n) in &p.methods {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{n}</td></tr>",
            esc(c),
            esc(m)
        );
    }
    o.push_str("</tbody></table></section>\n");

    equivalents_section(
        o,
        &wattprint_core::record::Equivalents::of(wattprint_core::units::GramsCo2e(
            tt.emissions_kg.total * 1000.0,
        )),
        tt.emissions_kg.total,
    );

    o.push_str("<section><h2>Assumptions and sources</h2><table><thead><tr><th>location</th><th class=\"n\">gCO2e/kWh</th><th>intensity source</th><th class=\"n\">PUE</th><th>PUE source</th><th class=\"n\">runs</th></tr></thead><tbody>");
    let mut text = String::new();
    for l in &p.locations {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            esc(&location_text(&l.code, &l.name, l.code != "unknown")),
            wattprint_core::format::sig(l.intensity_g_per_kwh),
            esc(&l.intensity_source),
            wattprint_core::format::sig(l.pue),
            esc(&l.pue_source),
            l.runs
        );
        text.push_str(&l.intensity_source);
        text.push_str(&l.pue_source);
    }
    let _ = write!(
        o,
        "</tbody></table><p>Factors versions: {}. Each run's full list of factors is in its own report (<code>wattprint report RUN</code>).</p>",
        p.factors_versions
            .iter()
            .map(|v| format!("<code>{}</code>", esc(v)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for a in p.alternatives.overall.iter().chain(&p.alternatives.near) {
        text.push_str(&a.intensity_source);
        text.push_str(&a.pue_source);
    }
    attributions(o, &text);
    live_data_html(o, &p.runs.iter().collect::<Vec<_>>());
    o.push_str("</section>\n");
    let ws: Vec<(String, Option<usize>)> = p
        .warnings
        .iter()
        .map(|(w, n)| (w.clone(), Some(*n)))
        .collect();
    warnings_section(o, &ws);
}
