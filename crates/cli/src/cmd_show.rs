//! `wattprint show RUN`: one stored run (an id prefix is enough): the summary, then the full
//! record — identity, host, energy and emissions breakdown, equivalents, assumptions with their
//! sources, and the stored power series.

use crate::store::Store;
use crate::summary::{fmt_duration, fmt_energy_kwh, fmt_mass_kg};
use anyhow::Result;
use std::fmt::Write;
use wattprint_core::record::RunRecord;
use wattprint_core::sampler::SeriesPoint;

#[derive(clap::Args)]
pub struct Args {
    /// Run id or a unique prefix of it.
    pub run: String,
    /// Print the full JSON record.
    #[arg(long)]
    pub json: bool,
    /// Value the run again at its live provider's intensity (same provider and zone, no
    /// cache), replacing forecast values that have been published since, and save it.
    #[arg(long)]
    pub revalue: bool,
    /// Also count the run's hardware, duration and place as another tool would:
    /// green-algorithms, mlco2, codecarbon, ccf (`wattprint compare RUN` shows them all).
    #[arg(long, value_name = "PROFILE", value_parser = parse_profile)]
    pub factors: Option<wattprint_core::profiles::Profile>,
}

pub fn parse_profile(s: &str) -> Result<wattprint_core::profiles::Profile, String> {
    use wattprint_core::profiles::Profile;
    Profile::parse(s).ok_or_else(|| {
        format!(
            "`{s}` is not a profile; one of {}",
            Profile::ALL.map(|p| p.as_str()).join(", ")
        )
    })
}

/// `show --factors P`: the run recomputed with a tool's profile, under the measured figures.
pub fn profile_text(rec: &RunRecord, p: wattprint_core::profiles::Profile) -> Result<String> {
    use wattprint_core::profiles::{evaluate, job_from_record, render, Profile};
    let job = job_from_record(rec);
    let base = evaluate(Profile::Wattprint, &job).map_err(|e| anyhow::anyhow!("{e}"))?;
    let r = evaluate(p, &job).map_err(|e| anyhow::anyhow!("{e}"))?;
    let c = render::row(&base, &r);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "
as {} would count it ({}, processors busy)",
        r.tool,
        render::describe(&job)
    );
    if let Err(why) = &r.applicable {
        let _ = writeln!(o, "  not counted: {why}");
        return Ok(o);
    }
    kv(&mut o, "IT energy", format!("{} kWh", c[1]));
    kv(
        &mut o,
        "facility energy",
        format!("{} kWh (PUE {})", c[2], c[3]),
    );
    kv(&mut o, "intensity", format!("{} g/kWh", c[4]));
    kv(&mut o, "operational", c[5].clone());
    kv(&mut o, "embodied", c[6].clone());
    kv(&mut o, "why", c[7].clone());
    Ok(o)
}

pub fn run(a: Args) -> Result<i32> {
    let mut store = if a.revalue {
        Store::open_default(crate::env())?
    } else {
        Store::open_default_for_reading(crate::env())?
    };
    let mut rec = store.find_run(&a.run)?;
    if a.revalue {
        let code = revalue(&mut store, &mut rec)?;
        if code != 0 {
            return Ok(code);
        }
    }
    if a.json {
        crate::stdout_ln!("{}", serde_json::to_string_pretty(&rec)?);
    } else {
        let series = store.series(&rec.id)?;
        let status = store.status_label(&rec);
        crate::stdout_print!("{}", crate::summary::summary_text_as(&rec, &[], &status));
        crate::stdout_print!("{}", details_text(&rec, &series, &status));
        if let Some(p) = a.factors {
            crate::stdout_print!("{}", profile_text(&rec, p)?);
        }
        if let Some(job) = &rec.job {
            // The job's total in this store (each node once), whichever rank this run was.
            let f = crate::store::RunFilter {
                job: Some(job.clone()),
                ..Default::default()
            };
            let total = wattprint_core::job::job_total(job, &store.list_runs(&f)?);
            crate::stdout_print!("{}", crate::job_view::totals_text(&total));
        }
    }
    Ok(0)
}

/// `show --revalue`: value `rec` again with the provider it was valued with, save it, say what
/// changed. 0 when revalued or when there is nothing to revalue (a static factor), 1 when the
/// provider could not be used.
fn revalue(store: &mut Store, rec: &mut RunRecord) -> Result<i32> {
    use crate::provider_config::{self, ProviderKind};
    use wattprint_core::providers::{iso, revalue::energy_from_series, revalue_record};
    let Some(live) = rec.carbon_intensity.live.clone() else {
        eprintln!(
            "wattprint: run {} was valued at a static factor ({}); nothing to revalue",
            rec.id, rec.carbon_intensity.source
        );
        return Ok(0);
    };
    let Some(kind) = ProviderKind::from_name(&live.provider) else {
        anyhow::bail!("run {}: unknown provider {:?}", rec.id, live.provider);
    };
    let cfg = provider_config::build(kind, "the run's record".into(), true, crate::env())?;
    let start = iso::parse(&rec.started_at).unwrap_or(0);
    let energy = energy_from_series(&store.series(&rec.id)?, start);
    match revalue_record(cfg.provider.as_ref(), rec, &energy) {
        Ok(r) => {
            store.save_run(rec)?;
            eprintln!(
                "wattprint: run {} revalued with {} {}: intensity {} → {} gCO2e/kWh, emissions {} → {}; intervals ({}) → ({})",
                rec.id,
                live.provider,
                live.zone,
                r.old_g_per_kwh,
                r.new_g_per_kwh,
                fmt_mass_kg(r.old_total_kg),
                fmt_mass_kg(r.new_total_kg),
                r.old_points,
                r.new_points
            );
            Ok(0)
        }
        Err(why) => {
            eprintln!("wattprint: {why}");
            Ok(1)
        }
    }
}

/// Three significant digits, without exponent (`0.0000335`, `12.3`, `4560`).
pub fn sig(x: f64) -> String {
    wattprint_core::format::sig(x)
}

fn kv(o: &mut String, k: &str, v: impl std::fmt::Display) {
    let _ = writeln!(o, "  {k:<14} {v}");
}

/// Everything in the record that the summary does not show.
/// The record in full; `status` as the reader should see it ([`Store::status_label`]).
pub fn details_text(r: &RunRecord, series: &[(String, Vec<SeriesPoint>)], status: &str) -> String {
    let mut o = String::new();
    run_section(&mut o, r, status);
    host_section(&mut o, r);
    breakdown_section(&mut o, r);
    o.push_str(&crate::segments_text::segments_text(r));
    intensity_lines(&mut o, r);
    o.push_str(&wattprint_store::pipeline_text::pipeline_text(r, series));
    equivalents_section(&mut o, r);
    assumptions_section(&mut o, r);
    series_section(&mut o, series);
    o
}

/// Identity, timing, status, sampling and methods.
fn run_section(o: &mut String, r: &RunRecord, status: &str) {
    let _ = writeln!(o, "\nrun");
    kv(o, "id", &r.id);
    kv(o, "project", &r.project);
    if !r.tags.is_empty() {
        let tags: Vec<String> = r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        kv(o, "tags", tags.join(" "));
    }
    if !r.command.is_empty() {
        kv(o, "command", r.command.join(" "));
    }
    kv(o, "started", &r.started_at);
    kv(
        o,
        "ended",
        r.ended_at.as_deref().unwrap_or("(still running)"),
    );
    kv(o, "duration", fmt_duration(r.duration_s));
    let exit = match (r.exit_code, r.signal) {
        (_, Some(s)) => format!("killed by signal {s}"),
        (Some(c), None) => format!("exit code {c}"),
        (None, None) => "unknown".into(),
    };
    kv(o, "status", format!("{status} ({exit})"));
    kv(o, "scope", &r.scope);
    if r.samples == 0 && r.interval_s == 0.0 {
        kv(o, "sampling", "none (not measured by wattprint)");
    } else {
        kv(
            o,
            "sampling",
            format!(
                "every {} s, {} reads, {} ticks skipped",
                sig(r.interval_s),
                r.samples,
                r.skipped_ticks
            ),
        );
    }
    kv(
        o,
        "methods",
        format!(
            "cpu {} · gpu {} · ram {}",
            r.methods.cpu, r.methods.gpu, r.methods.ram
        ),
    );
}

/// The machine.
fn host_section(o: &mut String, r: &RunRecord) {
    let _ = writeln!(o, "\nhost");
    kv(o, "hostname", &r.host.hostname);
    kv(
        o,
        "cpu",
        format!(
            "{} ({} logical CPUs)",
            r.host.cpu_model, r.host.logical_cpus
        ),
    );
    kv(o, "ram", format!("{} GB", sig(r.host.ram_gb)));
    if r.host.gpus.is_empty() {
        kv(o, "gpus", "none");
    }
    for g in &r.host.gpus {
        kv(
            o,
            &format!("gpu {}", g.index),
            format!("{} {}", g.name, g.uuid),
        );
    }
}

/// Energy and emissions, by component and by kind.
fn breakdown_section(o: &mut String, r: &RunRecord) {
    let e = &r.energy_kwh;
    let _ = writeln!(o, "\nenergy breakdown");
    kv(
        o,
        "by component",
        format!(
            "cpu {} · gpu {} · ram {} · other {}",
            fmt_energy_kwh(e.cpu.0),
            fmt_energy_kwh(e.gpu.0),
            fmt_energy_kwh(e.ram.0),
            fmt_energy_kwh(e.other.0)
        ),
    );
    kv(
        o,
        "by kind",
        format!(
            "dynamic {} · static (idle) {}",
            fmt_energy_kwh(e.dynamic.0),
            fmt_energy_kwh(e.static_.0)
        ),
    );
    kv(
        o,
        "facility",
        format!(
            "IT {} + infrastructure {} (PUE {}) = {}",
            fmt_energy_kwh(e.it.0),
            fmt_energy_kwh(e.infrastructure.0),
            sig(r.pue),
            fmt_energy_kwh(e.facility.0)
        ),
    );
    let m = &r.emissions_kg;
    let _ = writeln!(o, "\nemissions breakdown (CO2e)");
    kv(o, "dynamic", fmt_mass_kg(m.dynamic));
    kv(o, "static (idle)", fmt_mass_kg(m.static_));
    kv(o, "infrastructure", fmt_mass_kg(m.infrastructure));
    kv(o, "operational", fmt_mass_kg(m.operational));
    kv(
        o,
        "embodied",
        wattprint_store::embodied_text::fmt_embodied(&wattprint_store::embodied_text::of_record(r)),
    );
    kv(o, "total", fmt_mass_kg(m.total));
}

/// The intensity used, with the live provider's attribution when there was one.
fn intensity_lines(o: &mut String, r: &RunRecord) {
    match &r.carbon_intensity.live {
        None => kv(
            o,
            "intensity",
            format!(
                "{} at {} — {}",
                wattprint_core::format::intensity(r.carbon_intensity.g_per_kwh),
                r.location.code,
                r.carbon_intensity.source
            ),
        ),
        Some(l) => {
            kv(
                o,
                "intensity",
                format!(
                    "{} gCO2e/kWh energy-weighted, {} time-weighted, {} {} ({}) — {}",
                    r.carbon_intensity.g_per_kwh,
                    l.time_weighted_g_per_kwh,
                    l.provider,
                    l.zone,
                    r.carbon_intensity.resolution.as_deref().unwrap_or("series"),
                    r.carbon_intensity.source
                ),
            );
            kv(o, "intervals", l.points);
            kv(o, "data", l.attribution.line());
            kv(o, "retrieved", &l.retrieved_at);
            kv(
                o,
                "fallback",
                format!(
                    "{} gCO2e/kWh ({}), not used",
                    l.static_fallback_g_per_kwh, l.static_fallback_source
                ),
            );
        }
    }
}

/// Everyday equivalents of the emissions.
fn equivalents_section(o: &mut String, r: &RunRecord) {
    let q = &r.equivalents;
    let _ = writeln!(o, "\nequivalents");
    kv(o, "car", format!("{} km (EU average car)", sig(q.car_km)));
    kv(o, "trees", format!("{} tree-months", sig(q.tree_months)));
    kv(
        o,
        "phones",
        format!("{} smartphone charges", sig(q.phone_charges)),
    );
    kv(
        o,
        "flights",
        format!(
            "{} Paris–London passenger flights",
            sig(q.flights_paris_london)
        ),
    );
}

/// Every factor with its source, versions and the tracker's own cost.
fn assumptions_section(o: &mut String, r: &RunRecord) {
    let _ = writeln!(o, "\nassumptions");
    if r.assumptions.is_empty() {
        let _ = writeln!(o, "  (none recorded)");
    }
    for a in &r.assumptions {
        let _ = writeln!(o, "  {} = {} {}", a.name, sig(a.value), a.unit);
        let _ = writeln!(o, "      source: {}", a.source);
    }
    let _ = writeln!(
        o,
        "  factors {} · wattprint {} · {}",
        r.factors_version, r.wattprint_version, r.schema
    );
    if let Some(t) = &r.tracker {
        let _ = writeln!(
            o,
            "  measuring cost: {} CPU-s, peak {}, start-up {} ms",
            sig(t.cpu_s),
            t.max_rss_mb
                .map(|m| format!("{} MB", sig(m)))
                .unwrap_or_else(|| "memory not measured (inside another program)".into()),
            sig(t.startup_ms)
        );
    }
}

/// The stored power series per device.
fn series_section(o: &mut String, series: &[(String, Vec<SeriesPoint>)]) {
    let _ = writeln!(o, "\npower series");
    if series.is_empty() {
        let _ = writeln!(o, "  (none stored)");
    }
    for (dev, pts) in series {
        let j: f64 = pts.iter().map(|p| p.energy_j).sum();
        let span = match (pts.first(), pts.last()) {
            (Some(a), Some(b)) => b.t1 - a.t0,
            _ => 0.0,
        };
        let peak = pts.iter().map(|p| p.power().0).fold(0.0, f64::max);
        let _ = writeln!(
            o,
            "  {dev:<16} {} points over {}, {}, peak {}",
            pts.len(),
            fmt_duration(span),
            fmt_energy_kwh(j / wattprint_core::units::JOULES_PER_KWH),
            wattprint_core::format::power_w(peak)
        );
    }
}
