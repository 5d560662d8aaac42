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
}

pub fn run(a: Args) -> Result<i32> {
    let mut store = Store::open_default(crate::env())?;
    let mut rec = store.find_run(&a.run)?;
    if a.revalue {
        let code = revalue(&mut store, &mut rec)?;
        if code != 0 {
            return Ok(code);
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rec)?);
    } else {
        let series = store.series(&rec.id)?;
        print!("{}", crate::summary::summary_text(&rec, &[]));
        print!("{}", details_text(&rec, &series));
        if let Some(job) = &rec.job {
            // The job's total in this store (each node once), whichever rank this run was.
            let f = crate::store::RunFilter {
                job: Some(job.clone()),
                ..Default::default()
            };
            let total = wattprint_core::job::job_total(job, &store.list_runs(&f)?);
            print!("{}", crate::job_view::totals_text(&total));
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
    if x == 0.0 || !x.is_finite() {
        return format!("{}", if x.is_finite() { 0.0 } else { x });
    }
    let mag = x.abs().log10().floor() as i32;
    let decimals = (2 - mag).clamp(0, 15) as usize;
    format!("{x:.decimals$}")
}

fn kv(o: &mut String, k: &str, v: impl std::fmt::Display) {
    let _ = writeln!(o, "  {k:<14} {v}");
}

/// Everything in the record that the summary does not show.
pub fn details_text(r: &RunRecord, series: &[(String, Vec<SeriesPoint>)]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "\nrun");
    kv(&mut o, "id", &r.id);
    kv(&mut o, "project", &r.project);
    if !r.tags.is_empty() {
        let tags: Vec<String> = r.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        kv(&mut o, "tags", tags.join(" "));
    }
    if !r.command.is_empty() {
        kv(&mut o, "command", r.command.join(" "));
    }
    kv(&mut o, "started", &r.started_at);
    kv(
        &mut o,
        "ended",
        r.ended_at.as_deref().unwrap_or("(still running)"),
    );
    kv(&mut o, "duration", fmt_duration(r.duration_s));
    let exit = match (r.exit_code, r.signal) {
        (_, Some(s)) => format!("killed by signal {s}"),
        (Some(c), None) => format!("exit code {c}"),
        (None, None) => "unknown".into(),
    };
    kv(&mut o, "status", format!("{} ({exit})", r.status.as_str()));
    kv(&mut o, "scope", &r.scope);
    if r.samples == 0 && r.interval_s == 0.0 {
        kv(&mut o, "sampling", "none (not measured by wattprint)");
    } else {
        kv(
            &mut o,
            "sampling",
            format!(
                "every {} s, {} reads, {} ticks skipped",
                r.interval_s, r.samples, r.skipped_ticks
            ),
        );
    }
    kv(
        &mut o,
        "methods",
        format!(
            "cpu {} · gpu {} · ram {}",
            r.methods.cpu, r.methods.gpu, r.methods.ram
        ),
    );

    let _ = writeln!(o, "\nhost");
    kv(&mut o, "hostname", &r.host.hostname);
    kv(
        &mut o,
        "cpu",
        format!(
            "{} ({} logical CPUs)",
            r.host.cpu_model, r.host.logical_cpus
        ),
    );
    kv(&mut o, "ram", format!("{:.1} GB", r.host.ram_gb));
    if r.host.gpus.is_empty() {
        kv(&mut o, "gpus", "none");
    }
    for g in &r.host.gpus {
        kv(
            &mut o,
            &format!("gpu {}", g.index),
            format!("{} {}", g.name, g.uuid),
        );
    }

    let e = &r.energy_kwh;
    let _ = writeln!(o, "\nenergy breakdown");
    kv(
        &mut o,
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
        &mut o,
        "by kind",
        format!(
            "dynamic {} · static (idle) {}",
            fmt_energy_kwh(e.dynamic.0),
            fmt_energy_kwh(e.static_.0)
        ),
    );
    kv(
        &mut o,
        "facility",
        format!(
            "IT {} + infrastructure {} (PUE {}) = {}",
            fmt_energy_kwh(e.it.0),
            fmt_energy_kwh(e.infrastructure.0),
            r.pue,
            fmt_energy_kwh(e.facility.0)
        ),
    );
    let m = &r.emissions_kg;
    let _ = writeln!(o, "\nemissions breakdown (CO2e)");
    kv(&mut o, "dynamic", fmt_mass_kg(m.dynamic));
    kv(&mut o, "static (idle)", fmt_mass_kg(m.static_));
    kv(&mut o, "infrastructure", fmt_mass_kg(m.infrastructure));
    kv(&mut o, "operational", fmt_mass_kg(m.operational));
    kv(&mut o, "embodied", fmt_mass_kg(m.embodied));
    kv(&mut o, "total", fmt_mass_kg(m.total));
    match &r.carbon_intensity.live {
        None => kv(
            &mut o,
            "intensity",
            format!(
                "{} gCO2e/kWh at {} — {}",
                r.carbon_intensity.g_per_kwh, r.location.code, r.carbon_intensity.source
            ),
        ),
        Some(l) => {
            kv(
                &mut o,
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
            kv(&mut o, "intervals", l.points);
            kv(&mut o, "data", l.attribution.line());
            kv(&mut o, "retrieved", &l.retrieved_at);
            kv(
                &mut o,
                "fallback",
                format!(
                    "{} gCO2e/kWh ({}), not used",
                    l.static_fallback_g_per_kwh, l.static_fallback_source
                ),
            );
        }
    }

    let q = &r.equivalents;
    let _ = writeln!(o, "\nequivalents");
    kv(
        &mut o,
        "car",
        format!("{} km (EU average car)", sig(q.car_km)),
    );
    kv(
        &mut o,
        "trees",
        format!("{} tree-months", sig(q.tree_months)),
    );
    kv(
        &mut o,
        "phones",
        format!("{} smartphone charges", sig(q.phone_charges)),
    );
    kv(
        &mut o,
        "flights",
        format!(
            "{} Paris–London passenger flights",
            sig(q.flights_paris_london)
        ),
    );

    let _ = writeln!(o, "\nassumptions");
    if r.assumptions.is_empty() {
        let _ = writeln!(o, "  (none recorded)");
    }
    for a in &r.assumptions {
        let _ = writeln!(o, "  {} = {} {}", a.name, a.value, a.unit);
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
            "  measuring cost: {:.3} CPU-s, peak {}, start-up {:.1} ms",
            t.cpu_s,
            t.max_rss_mb
                .map(|m| format!("{m:.1} MB"))
                .unwrap_or_else(|| "memory not measured (inside another program)".into()),
            t.startup_ms
        );
    }

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
            "  {dev:<16} {} points over {}, {}, peak {peak:.1} W",
            pts.len(),
            fmt_duration(span),
            fmt_energy_kwh(j / wattprint_core::units::JOULES_PER_KWH)
        );
    }
    o
}
