//! The report as Markdown (for a paper's appendix or a README): the HTML report's content as
//! tables; the plots are only in the HTML report.

use super::{
    command_text, equivalents_rows, fmt_time, hardware_of, location_text, methods_of, pct,
    short_id, title, Alternatives, ProjectReport, Report, RunReport, Subject,
};
use crate::embodied_text::{fmt_embodied, of_record, of_sum, EmbodiedFigure};
use crate::summary::{fmt_duration, fmt_energy_kwh, fmt_mass_kg};
use std::fmt::Write;

/// Escape user text for Markdown: punctuation that could start markup is backslash-escaped
/// (so `<script>` stays text), line breaks become spaces.
pub fn md_esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '<' | '>' | '(' | ')' | '#' | '|'
            | '!' | '~' | '&' => {
                o.push('\\');
                o.push(c);
            }
            '\n' | '\r' | '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// The whole Markdown document.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# wattprint report: {}\n", md_esc(&title(r)));
    match &r.subject {
        Subject::Run(run) => run_md(&mut o, run),
        Subject::Project(p) => project_md(&mut o, p),
    }
    let _ = writeln!(
        o,
        "\n---\nMade by wattprint {} on {}. The plots (power over time, breakdown, cumulative emissions) are in the HTML report: `wattprint report … --format html`. Methods: docs/methodology.md.",
        md_esc(r.version),
        md_esc(&r.generated_at)
    );
    o
}

fn breakdown(
    o: &mut String,
    e: (f64, f64, f64),
    m: (f64, f64, f64, &EmbodiedFigure),
    fac: f64,
    tot: f64,
) {
    let _ = writeln!(
        o,
        "## Energy and emissions breakdown\n\n| part | energy | share | emissions CO2e | share |\n|---|---:|---:|---:|---:|"
    );
    for (name, en, kg) in [
        ("dynamic (above idle)", Some(e.0), Ok(m.0)),
        ("static (idle draw)", Some(e.1), Ok(m.1)),
        ("infrastructure (PUE − 1)", Some(e.2), Ok(m.2)),
        ("embodied (manufacturing, amortised)", None, m.3.clone()),
    ] {
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} |",
            en.map(fmt_energy_kwh).unwrap_or_else(|| "–".into()),
            en.map(|v| pct(v, fac)).unwrap_or_else(|| "–".into()),
            md_esc(&fmt_embodied(&kg)),
            kg.as_ref()
                .map(|k| pct(*k, tot))
                .unwrap_or_else(|_| "–".into())
        );
    }
    let _ = writeln!(
        o,
        "| **total** | **{}** | 100 % | **{}** | 100 % |\n",
        fmt_energy_kwh(fac),
        fmt_mass_kg(tot)
    );
}

fn alternatives(o: &mut String, a: &Alternatives, where_: &str) {
    let _ = writeln!(o, "## Lower-carbon alternatives\n");
    let Some(best) = a.overall.first() else {
        let _ = writeln!(
            o,
            "No cloud-region factors are available to compare with.\n"
        );
        return;
    };
    let _ = writeln!(
        o,
        "The same work ({} of IT energy) in **{}** ({}) would have emitted **{}** CO2e instead of {} ({}){}. Embodied emissions ({}) do not depend on where the work runs and are left out.\n",
        fmt_energy_kwh(a.it_kwh),
        md_esc(&best.name),
        md_esc(&best.id),
        fmt_mass_kg(best.emissions_kg),
        fmt_mass_kg(a.actual_operational_kg),
        md_esc(where_),
        best.saving_percent
            .map(|p| format!(", {} less", wattprint_core::format::percent(p / 100.0)))
            .unwrap_or_default(),
        a.embodied_kg
            .map(fmt_mass_kg)
            .unwrap_or_else(|| "not counted".into()),
    );
    let table = |o: &mut String, caption: &str, rows: &[super::Alternative]| {
        let _ = writeln!(
            o,
            "{caption}:\n\n| region | grid gCO2e/kWh | PUE | effective | would emit | saving | sources |\n|---|---:|---:|---:|---:|---:|---|"
        );
        for r in rows {
            let _ = writeln!(
                o,
                "| {} ({}) | {} | {} | {} | {} | {} | {} |",
                md_esc(&r.name),
                md_esc(&r.id),
                wattprint_core::format::sig(r.intensity_g_per_kwh),
                wattprint_core::format::sig(r.pue),
                wattprint_core::format::sig(r.effective_g_per_kwh),
                fmt_mass_kg(r.emissions_kg),
                r.saving_percent
                    .map(|p| wattprint_core::format::percent(p / 100.0))
                    .unwrap_or_else(|| "–".into()),
                md_esc(&super::sources_text(&r.intensity_source, &r.pue_source))
            );
        }
        o.push('\n');
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
            let _ = writeln!(
                o,
                "These are also the best regions in the run's own area ({area}).\n"
            );
        } else if !a.near.is_empty() {
            table(o, &format!("Best in the same area ({area})"), &a.near);
        }
    }
}

fn equivalents(o: &mut String, e: &wattprint_core::record::Equivalents, total: f64) {
    let _ = writeln!(
        o,
        "## Equivalents\n\n{} CO2e is about:\n\n| amount | of |\n|---:|---|",
        fmt_mass_kg(total)
    );
    for (what, v) in equivalents_rows(e) {
        let _ = writeln!(o, "| {v} | {what} |");
    }
    o.push('\n');
}

fn warnings(o: &mut String, ws: &[String]) {
    let _ = writeln!(o, "## Warnings\n");
    if ws.is_empty() {
        let _ = writeln!(o, "None.\n");
    }
    for w in ws {
        let _ = writeln!(o, "- {}", md_esc(w));
    }
    o.push('\n');
}

fn run_md(o: &mut String, run: &RunReport) {
    let r = &run.record;
    let where_ = location_text(&r.location.code, &r.location.name, r.location.known);
    let tags = if r.tags.is_empty() {
        "–".to_string()
    } else {
        r.tags
            .iter()
            .map(|(k, v)| format!("{}={}", md_esc(k), md_esc(v)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let exit = match (r.exit_code, r.signal) {
        (_, Some(s)) => format!("signal {s}"),
        (Some(c), None) => format!("exit code {c}"),
        _ => "–".into(),
    };
    let wasted = if super::is_wasted(r.status) {
        " (wasted)"
    } else {
        ""
    };
    let _ = writeln!(o, "| | |\n|---|---|");
    for (k, v) in [
        ("run", md_esc(&r.id)),
        ("project", md_esc(&r.project)),
        ("command", md_esc(&command_text(&r.command))),
        ("tags", tags),
        (
            "status",
            format!(
                "{}{wasted}, {exit}",
                crate::liveness::status_text(r, run.lost)
            ),
        ),
        (
            "time",
            format!(
                "{} → {} ({})",
                md_esc(&fmt_time(&r.started_at)),
                md_esc(
                    &r.ended_at
                        .as_deref()
                        .map(fmt_time)
                        .unwrap_or_else(|| "–".into())
                ),
                fmt_duration(r.duration_s)
            ),
        ),
        (
            "host",
            format!("{}, {}", md_esc(&r.host.hostname), md_esc(&hardware_of(r))),
        ),
        ("location", md_esc(&where_)),
        (
            "emissions",
            format!("**{} CO2e**", fmt_mass_kg(r.emissions_kg.total)),
        ),
        (
            "energy",
            format!(
                "{} IT, {} facility (× PUE {})",
                fmt_energy_kwh(r.energy_kwh.it.0),
                fmt_energy_kwh(r.energy_kwh.facility.0),
                wattprint_core::format::sig(r.pue)
            ),
        ),
    ] {
        let _ = writeln!(o, "| {k} | {v} |");
    }
    o.push('\n');
    for n in &run.notes {
        let _ = writeln!(o, "> Note: {}\n", md_esc(n));
    }
    breakdown(
        o,
        (
            r.energy_kwh.dynamic.0,
            r.energy_kwh.static_.0,
            r.energy_kwh.infrastructure.0,
        ),
        (
            r.emissions_kg.dynamic,
            r.emissions_kg.static_,
            r.emissions_kg.infrastructure,
            &of_record(r),
        ),
        r.energy_kwh.facility.0,
        r.emissions_kg.total,
    );
    let _ = writeln!(
        o,
        "## Devices and methods\n\nScope: {}. Methods: {}.\n\n| device | kind | name | method | energy | avg power | idle power |\n|---|---|---|---|---:|---:|---:|",
        md_esc(&r.scope),
        md_esc(&methods_of(r))
    );
    for d in &r.devices {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} ({}) | {} | {} | {} |",
            md_esc(&d.id),
            d.kind.as_str(),
            md_esc(&d.name),
            d.method.as_str(),
            if d.method.is_measured() {
                "measured"
            } else {
                "estimated"
            },
            fmt_energy_kwh(d.energy_kwh),
            wattprint_core::format::power_w(d.avg_power_w),
            d.idle_power_w
                .map(wattprint_core::format::power_w)
                .unwrap_or_else(|| "–".into())
        );
    }
    o.push('\n');
    let peak = run
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| (s.device_id.as_str(), p.power().0)))
        .fold(None, |best: Option<(&str, f64)>, (d, w)| match best {
            Some((_, bw)) if bw >= w => best,
            _ => Some((d, w)),
        });
    if let Some((d, w)) = peak {
        let _ = writeln!(
            o,
            "Highest interval power: {} ({}); series of {} device(s) stored.\n",
            wattprint_core::format::power_w(w),
            md_esc(d),
            run.series.len()
        );
    }
    alternatives(o, &run.alternatives, &where_);
    equivalents(o, &r.equivalents, r.emissions_kg.total);
    let _ = writeln!(
        o,
        "## Assumptions and sources\n\n| factor | value | unit | source |\n|---|---:|---|---|"
    );
    for a in &r.assumptions {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            md_esc(&a.name),
            wattprint_core::format::sig(a.value),
            md_esc(&a.unit),
            md_esc(&a.source)
        );
    }
    let _ = writeln!(
        o,
        "\nCarbon intensity {} gCO2e/kWh: {}. PUE {}: {}. Factors version {}.\n",
        wattprint_core::format::sig(r.carbon_intensity.g_per_kwh),
        md_esc(&r.carbon_intensity.source),
        wattprint_core::format::sig(r.pue),
        md_esc(&r.location.pue_source),
        md_esc(&r.factors_version)
    );
    live_data_md(o, &[r]);
    let seg = crate::segments_text::segments_text(r);
    if !seg.is_empty() {
        let _ = writeln!(o, "\n## Stages, windows and work\n\n```{seg}```");
    }
    warnings(o, &r.warnings);
}

/// The live-intensity providers whose data the report embeds, with their credit, and a notice
/// when their terms restrict redistribution.
fn live_data_md(o: &mut String, records: &[&wattprint_core::record::RunRecord]) {
    let (lines, notices) = super::live_data(records);
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(o, "Live intensity data:\n");
    for l in &lines {
        let _ = writeln!(o, "* {}", md_esc(l));
    }
    let _ = writeln!(o);
    for n in &notices {
        let _ = writeln!(o, "**Restricted data.** {}\n", md_esc(n));
    }
}

fn project_md(o: &mut String, p: &ProjectReport) {
    let t = &p.totals;
    if let Some(s) = &p.since {
        let _ = writeln!(o, "Runs started since {}.\n", md_esc(s));
    }
    let _ = writeln!(o, "| | |\n|---|---|");
    for (k, v) in [
        (
            "runs",
            format!(
                "{} ({} completed, {} failed, {} killed, {} running)",
                t.runs, t.completed, t.failed, t.killed, t.running
            ),
        ),
        ("run time", fmt_duration(t.duration_s)),
        (
            "emissions",
            format!("**{} CO2e**", fmt_mass_kg(t.emissions_kg.total)),
        ),
        (
            "energy",
            format!(
                "{} IT, {} facility",
                fmt_energy_kwh(t.energy_kwh.it),
                fmt_energy_kwh(t.energy_kwh.facility)
            ),
        ),
        (
            "wasted (failed + killed)",
            format!(
                "{} runs, {} IT energy, {} CO2e = {} of emissions",
                t.wasted_runs,
                fmt_energy_kwh(t.wasted_energy_kwh),
                fmt_mass_kg(t.wasted_emissions_kg),
                pct(t.wasted_emissions_kg, t.emissions_kg.total)
            ),
        ),
        (
            "idle share of IT energy",
            pct(t.energy_kwh.static_, t.energy_kwh.it),
        ),
    ] {
        let _ = writeln!(o, "| {k} | {v} |");
    }
    o.push('\n');
    breakdown(
        o,
        (
            t.energy_kwh.dynamic,
            t.energy_kwh.static_,
            t.energy_kwh.infrastructure,
        ),
        (
            t.emissions_kg.dynamic,
            t.emissions_kg.static_,
            t.emissions_kg.infrastructure,
            &of_sum(
                t.emissions_kg.embodied,
                t.runs,
                t.emissions_kg.embodied_not_counted_runs,
            ),
        ),
        t.energy_kwh.facility,
        t.emissions_kg.total,
    );
    let where_ = p
        .locations
        .first()
        .map(|l| location_text(&l.code, &l.name, l.code != "unknown"))
        .unwrap_or_else(|| "unknown".into());
    alternatives(o, &p.alternatives, &where_);
    let _ = writeln!(
        o,
        "## Runs\n\n| run | started (UTC) | status | duration | IT energy | CO2e | command | tags |\n|---|---|---|---:|---:|---:|---|---|"
    );
    for r in &p.runs {
        let tags: Vec<String> = r
            .tags
            .iter()
            .map(|(k, v)| format!("{}={}", md_esc(k), md_esc(v)))
            .collect();
        let _ = writeln!(
            o,
            "| {} | {} | {}{} | {} | {} | {} | {} | {} |",
            md_esc(short_id(&r.id)),
            md_esc(r.started_at.get(..19).unwrap_or(&r.started_at)),
            crate::liveness::status_text(r, p.lost.contains(&r.id)),
            if super::is_wasted(r.status) {
                " (wasted)"
            } else {
                ""
            },
            fmt_duration(r.duration_s),
            fmt_energy_kwh(r.energy_kwh.it.0),
            fmt_mass_kg(r.emissions_kg.total),
            md_esc(&command_text(&r.command)),
            tags.join(", ")
        );
    }
    let _ = writeln!(
        o,
        "| **total** | | | {} | {} | {} | | |\n",
        fmt_duration(t.duration_s),
        fmt_energy_kwh(t.energy_kwh.it),
        fmt_mass_kg(t.emissions_kg.total)
    );
    let _ = writeln!(
        o,
        "## Methods\n\n| component | method | runs |\n|---|---|---:|"
    );
    for (c, m, n) in &p.methods {
        let _ = writeln!(o, "| {} | {} | {n} |", md_esc(c), md_esc(m));
    }
    o.push('\n');
    equivalents(
        o,
        &wattprint_core::record::Equivalents::of(wattprint_core::units::GramsCo2e(
            t.emissions_kg.total * 1000.0,
        )),
        t.emissions_kg.total,
    );
    let _ = writeln!(
        o,
        "## Assumptions and sources\n\n| location | gCO2e/kWh | intensity source | PUE | PUE source | runs |\n|---|---:|---|---:|---|---:|"
    );
    for l in &p.locations {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            md_esc(&location_text(&l.code, &l.name, l.code != "unknown")),
            wattprint_core::format::sig(l.intensity_g_per_kwh),
            md_esc(&l.intensity_source),
            wattprint_core::format::sig(l.pue),
            md_esc(&l.pue_source),
            l.runs
        );
    }
    let _ = writeln!(
        o,
        "\nFactors versions: {}.\n",
        p.factors_versions
            .iter()
            .map(|v| md_esc(v))
            .collect::<Vec<_>>()
            .join(", ")
    );
    live_data_md(o, &p.runs.iter().collect::<Vec<_>>());
    let ws: Vec<String> = p
        .warnings
        .iter()
        .map(|(w, n)| format!("{w} ({n} runs)"))
        .collect();
    warnings(o, &ws);
}
