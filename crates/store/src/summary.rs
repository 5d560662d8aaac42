//! What the user reads on stderr: the end-of-run summary and the live status line.

use std::fmt::Write;
use wattprint_core::format;
use wattprint_core::prediction::Prediction;
use wattprint_core::record::{CarbonContext, RunRecord};
use wattprint_core::sampler::Snapshot;
use wattprint_core::units::JOULES_PER_KWH;

/// Energy with a unit suited to its size (the one policy: `wattprint_core::format`).
pub fn fmt_energy_kwh(kwh: f64) -> String {
    format::energy_kwh(kwh)
}

/// Mass of CO2e with a unit suited to its size (the one policy: `wattprint_core::format`).
pub fn fmt_mass_kg(kg: f64) -> String {
    format::mass_kg(kg)
}

pub fn fmt_duration(s: f64) -> String {
    if !s.is_finite() || s < 60.0 {
        format!("{} s", format::sig(s))
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0).floor(), (s % 60.0).floor())
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0).floor(),
            ((s % 3600.0) / 60.0).floor()
        )
    }
}

/// The end-of-run summary; warnings in `shown` were already printed and are not repeated.
pub fn summary_text(r: &RunRecord, shown: &[String]) -> String {
    summary_text_as(r, shown, r.status.as_str())
}

/// [`summary_text`] with the status as the reader should see it (e.g. `unfinished (tracker
/// lost)`, from [`crate::store::Store::status_label`]).
pub fn summary_text_as(r: &RunRecord, shown: &[String], status: &str) -> String {
    let mut o = String::new();
    let short = r.id.get(..8).unwrap_or(&r.id);
    let exit = match (r.exit_code, r.signal) {
        (_, Some(s)) => format!(" (signal {s})"),
        (Some(c), None) => format!(" (exit {c})"),
        _ if r.status == wattprint_core::record::RunStatus::Running => String::new(),
        _ => " (exit code unknown)".into(),
    };
    let _ = writeln!(
        o,
        "wattprint: run {short} {status}{exit} in {} · project {} · scope {}",
        fmt_duration(r.duration_s),
        r.project,
        r.scope
    );
    let _ = writeln!(
        o,
        "  {:<16} {:<5} {:<12} {:>12} {:>10}",
        "device", "kind", "method", "energy", "avg power"
    );
    for d in &r.devices {
        let method = if d.method.is_measured() {
            d.method.as_str().to_string()
        } else {
            format!("{} (est.)", d.method.as_str())
        };
        let _ = writeln!(
            o,
            "  {:<16} {:<5} {:<12} {:>12} {:>10}",
            d.id,
            d.kind.as_str(),
            method,
            fmt_energy_kwh(d.energy_kwh),
            format::power_w(d.avg_power_w)
        );
    }
    let avg_w = if r.duration_s > 0.0 {
        r.energy_kwh.total.0 * JOULES_PER_KWH / r.duration_s
    } else {
        0.0
    };
    let _ = writeln!(
        o,
        "  IT energy {} (dynamic {}, static {}), average {}; × PUE {} → {}",
        fmt_energy_kwh(r.energy_kwh.total.0),
        fmt_energy_kwh(r.energy_kwh.dynamic.0),
        fmt_energy_kwh(r.energy_kwh.static_.0),
        format::power_w(avg_w),
        format::sig(r.pue),
        fmt_energy_kwh(r.energy_kwh.facility.0)
    );
    let _ = writeln!(
        o,
        "  emissions {} CO2e (operational {}, embodied {})",
        fmt_mass_kg(r.emissions_kg.total),
        fmt_mass_kg(r.emissions_kg.operational),
        crate::embodied_text::fmt_embodied(&crate::embodied_text::of_record(r))
    );
    let _ = writeln!(
        o,
        "  intensity {} at {} — {}",
        format::intensity(r.carbon_intensity.g_per_kwh),
        if r.location.known {
            format!("{} ({})", r.location.code, r.location.name)
        } else {
            "location unknown".to_string()
        },
        r.carbon_intensity.source
    );
    if let Some(l) = &r.carbon_intensity.live {
        let _ = writeln!(o, "  {}", live_intensity_line(l));
    }
    let _ = writeln!(
        o,
        "  PUE {} — {}",
        format::sig(r.pue),
        r.location.pue_source
    );
    if let Some(st) = &r.stopped {
        let _ = writeln!(
            o,
            "  stopped by the {} at {} (signal {}{})",
            st.limit.describe(),
            fmt_duration(st.at_s),
            st.signal,
            if st.killed_after_grace {
                ", then SIGKILL after the grace period"
            } else {
                ""
            }
        );
    }
    for ev in &r.limit_events {
        let _ = writeln!(o, "  limit: {}", ev.message);
    }
    if let Some(p) = &r.prediction {
        let _ = writeln!(
            o,
            "  predicted final (at {} done): {} ({}–{}, P10–P90)",
            format::percent(p.fraction_done),
            fmt_energy_kwh(p.final_kwh.p50),
            fmt_energy_kwh(p.final_kwh.p10),
            fmt_energy_kwh(p.final_kwh.p90)
        );
    }
    let earlier = r.warnings.iter().filter(|w| shown.contains(w)).count();
    for w in r.warnings.iter().filter(|w| !shown.contains(w)) {
        let _ = writeln!(o, "  warning: {w}");
    }
    if earlier > 0 {
        let _ = writeln!(o, "  ({earlier} warning(s) shown when the run started)");
    }
    let _ = writeln!(
        o,
        "  details: wattprint show {short}   (methods: docs/methodology.md)"
    );
    o
}

/// `live intensity: uk GB, 30 min, 4 actual, 0 estimated, 0 forecast, time-weighted 132
/// gCO2e/kWh (static fallback 475, not used); data: <attribution>; retrieved <time>`.
pub fn live_intensity_line(l: &wattprint_core::record::LiveIntensity) -> String {
    format!(
        "live intensity: {} {}, {} intervals ({}), time-weighted {} gCO2e/kWh (static fallback {} not used); data: {}; retrieved {}",
        l.provider,
        l.zone,
        wattprint_core::providers::fmt_resolution(l.resolution_s),
        l.points,
        l.time_weighted_g_per_kwh,
        l.static_fallback_g_per_kwh,
        l.attribution.line(),
        l.retrieved_at
    )
}

pub fn live_text(s: &Snapshot, c: &CarbonContext, p: Option<&Prediction>) -> String {
    let kwh = s.total_energy().kwh().0;
    let w: f64 = s.devices.iter().map(|d| d.last_power.0).sum();
    let kg = kwh * c.pue * c.intensity_g_per_kwh / 1000.0;
    let mut t = format!(
        " wattprint · {} · {} · {} · {} CO2e",
        fmt_duration(s.elapsed.as_secs_f64()),
        format::power_w(w),
        fmt_energy_kwh(kwh),
        fmt_mass_kg(kg)
    );
    if let Some(p) = p {
        t.push_str(&format!(
            " · {} done → {} ({}–{}) ",
            format::percent(p.fraction_done),
            fmt_mass_kg(p.final_kg.p50),
            fmt_mass_kg(p.final_kg.p10),
            fmt_mass_kg(p.final_kg.p90)
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn formats() {
        assert_eq!(fmt_energy_kwh(1.0 / 3.6e6 * 12.0), "12.0 J");
        assert_eq!(fmt_energy_kwh(0.5), "500 Wh");
        assert_eq!(fmt_energy_kwh(2.0), "2.00 kWh");
        assert_eq!(fmt_mass_kg(0.5), "500 g");
        assert_eq!(fmt_mass_kg(-0.0), "0 mg");
        assert_eq!(fmt_duration(-0.0), "0 s");
        assert_eq!(fmt_duration(3725.0), "1h02m");
    }
}
