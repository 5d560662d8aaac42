//! A run's place in the pipeline and its waste, as `wattprint show` prints them: the lineage
//! (model, stage, sweep, trial, base model), compute discarded since the last checkpoint, and
//! GPU energy drawn while idle (from the stored series; see `wattprint_core::waste`).

use std::fmt::Write;
use wattprint_core::format::{energy_kwh, mass_kg};
use wattprint_core::record::RunRecord;
use wattprint_core::sampler::SeriesPoint;
use wattprint_core::sensor::DeviceKind;
use wattprint_core::waste::{idle_spans, IdleSpan};

/// Shortest idle span reported, seconds.
pub const MIN_IDLE_SPAN_S: f64 = 60.0;

/// Idle GPU spans of a run: per GPU with an idle power, from its stored series.
pub fn gpu_idle_spans(
    r: &RunRecord,
    series: &[(String, Vec<SeriesPoint>)],
    min_s: f64,
) -> Vec<IdleSpan> {
    let mut out = Vec::new();
    for d in r.devices.iter().filter(|d| d.kind == DeviceKind::Gpu) {
        let (Some(idle), Some((_, pts))) =
            (d.idle_power_w, series.iter().find(|(id, _)| *id == d.id))
        else {
            continue;
        };
        out.extend(idle_spans(&d.id, pts, idle, min_s));
    }
    out
}

/// GPUs of the run whose idle power is unknown (their idle time cannot be told).
pub fn gpus_without_idle_power(r: &RunRecord) -> Vec<String> {
    r.devices
        .iter()
        .filter(|d| d.kind == DeviceKind::Gpu && d.idle_power_w.is_none())
        .map(|d| d.id.clone())
        .collect()
}

/// The section (empty when there is nothing to say).
pub fn pipeline_text(r: &RunRecord, series: &[(String, Vec<SeriesPoint>)]) -> String {
    let mut o = String::new();
    if let Some(l) = &r.lineage {
        let _ = writeln!(o, "\nlineage");
        let mut kv = |k: &str, v: String| {
            let _ = writeln!(o, "  {k:<22} {v}");
        };
        if let Some(m) = &l.model {
            kv("model", m.clone());
        }
        if let Some(s) = l.stage {
            kv("stage", s.as_str().to_string());
        }
        if let Some(s) = &l.sweep {
            kv("sweep", s.clone());
        }
        if let Some(t) = &l.trial {
            kv("trial", t.clone());
        }
        if let Some(b) = &l.base_model {
            kv("base model (reused)", b.clone());
        }
        if l.is_final {
            kv("final training", "yes".into());
        }
        if let Some(ob) = &l.objective {
            kv(
                "objective",
                format!("{} = {} ({:?})", ob.name, ob.value, ob.goal).to_lowercase(),
            );
        }
        for (f, src) in &l.sources {
            kv(&format!("{f} from"), src.clone());
        }
    }
    if let Some(d) = &r.discarded {
        match (d.energy_kwh, d.emissions_kg) {
            (Some(e), Some(kg)) => {
                let _ = writeln!(
                    o,
                    "\nDiscarded since the last checkpoint: {}, {} CO2e ({} checkpoint signal(s))\n  {}",
                    energy_kwh(e),
                    mass_kg(kg),
                    d.checkpoints,
                    d.advice
                );
            }
            _ => {
                let _ = writeln!(o, "\nDiscarded since the last checkpoint: {}", d.advice);
            }
        }
    }
    if let Some(io) = r.io.as_ref().filter(|io| io.processes == 0) {
        let _ = writeln!(
            o,
            "\nI/O of the job's processes: unknown (no process's io file could be read: {} unreadable)",
            io.unreadable
        );
    }
    if let Some(io) = r.io.as_ref().filter(|io| io.processes > 0) {
        let _ = writeln!(
            o,
            "\nI/O of the job's processes: read {}, written {} (storage layer); {} read, {} written through read/write calls ({} process(es){})",
            bytes(io.read_bytes),
            bytes(io.write_bytes),
            bytes(io.rchar),
            bytes(io.wchar),
            io.processes,
            if io.unreadable > 0 {
                format!(", {} unreadable", io.unreadable)
            } else {
                String::new()
            }
        );
        match &io.network {
            Some(n) => {
                let _ = writeln!(
                    o,
                    "  network (host-level, not only this run): {} received, {} sent → {}, {} CO2e at {} kWh/GB (Cloud Carbon Footprint)",
                    bytes(n.rx_bytes),
                    bytes(n.tx_bytes),
                    energy_kwh(n.energy_kwh),
                    mass_kg(n.emissions_kg),
                    n.kwh_per_gb
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "  network: unknown (the host's counters were unreadable)"
                );
            }
        }
        let _ = writeln!(o, "  storage I/O energy: {}", io.storage_energy);
    }
    let spans = gpu_idle_spans(r, series, MIN_IDLE_SPAN_S);
    if !spans.is_empty() {
        let total: f64 = spans.iter().map(|s| s.energy_kwh).sum();
        let _ = writeln!(
            o,
            "\nIdle GPU (power within 10 % of idle for at least {} s): {} in {} span(s)",
            MIN_IDLE_SPAN_S,
            energy_kwh(total),
            spans.len()
        );
        let start = crate::store::rfc3339_unix(&r.started_at);
        for s in spans.iter().take(20) {
            let at = |x: f64| match start {
                Some(t0) => crate::report::fmt_time(&unix_text(t0 + x)),
                None => format!("+{x:.0} s"),
            };
            let _ = writeln!(
                o,
                "  {}  {} → {}  {}",
                s.device,
                at(s.from_s),
                at(s.to_s),
                energy_kwh(s.energy_kwh)
            );
        }
    }
    o
}

/// Bytes in B, kB, MB, GB or TB (decimal) with the one rounding policy.
pub fn bytes(n: u64) -> String {
    let x = n as f64;
    for (unit, scale) in [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)] {
        if x >= scale {
            return format!("{} {unit}", wattprint_core::format::sig(x / scale));
        }
    }
    format!("{n} B")
}

fn unix_text(t: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos((t * 1e9) as i128)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
