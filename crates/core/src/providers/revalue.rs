//! Valuing a run at live intensity: once when the job ends ([`revalue_run`], called by
//! `wattprint run`), and again later ([`revalue_record`], `wattprint show --revalue`) when the
//! provider has published the values that were still forecasts (WattTime's `/v3/historical`
//! lags real time; the GB national `actual` comes after the half hour).

use super::{
    attribution, fmt_resolution, intensity_for_run, iso, now_unix, IntensityProvider, KindCounts,
    RunIntensity, Signal,
};
use crate::accounting::{operational_detail, Equivalents, Intensity};
use crate::record::{CarbonContext, LiveIntensity, RunRecord};
use crate::sampler::SeriesPoint;
use crate::units::{round_sig, GramsCo2e, Joules, RECORD_DIGITS};

/// Prefix of the warning `CarbonArgs::resolve` gives for an unknown location.
const WORLD_AVERAGE_WARNING: &str = "location unknown: valued at the world average";

/// Words a run's warnings for a run that will be valued at live intensity: an unknown location
/// no longer means the world average (that is only the fallback). Call before the job starts.
pub fn live_location_note(carbon: &mut CarbonContext, provider: &str, zone: &str) {
    for w in &mut carbon.warnings {
        if w.starts_with(WORLD_AVERAGE_WARNING) {
            *w = format!(
                "location unknown to the factor tables: the run is valued at live intensity from {provider} for zone {zone}; the world average is only the fallback if the provider fails"
            );
        }
    }
}

fn signal_name(s: Signal) -> String {
    s.to_string()
}

/// The record of a successful valuation.
fn live_of(
    provider: &dyn IntensityProvider,
    zone: &str,
    ri: &RunIntensity,
    static_fallback: (f64, String),
) -> Option<LiveIntensity> {
    let attribution = attribution(provider.name())?;
    let retrieved = provider.retrieved_at().unwrap_or_else(now_unix);
    Some(LiveIntensity {
        provider: provider.name().to_string(),
        zone: zone.to_string(),
        attribution,
        retrieved_at: iso::format(retrieved),
        resolution_s: ri.resolution_s.unwrap_or(3600),
        points: ri.counts,
        time_weighted_g_per_kwh: round_sig(
            ri.time_weighted_g_per_kwh.unwrap_or(static_fallback.0),
            RECORD_DIGITS,
        ),
        static_fallback_g_per_kwh: static_fallback.0,
        static_fallback_source: static_fallback.1,
    })
}

/// The assumption's source for a live valuation.
fn detail(ri: &RunIntensity, live: &LiveIntensity) -> String {
    format!(
        "{}; {} resolution; time-weighted mean over the run; retrieved {}; {}",
        ri.source,
        fmt_resolution(live.resolution_s),
        live.retrieved_at,
        live.attribution.line()
    )
}

/// Values the run over `[start, end)` (unix seconds) at `provider`'s intensity for `zone`,
/// updating `carbon`: on success the series, signal, source, the intensity actually used (the
/// series' time-weighted mean over the run) and [`CarbonContext::live`]; on failure nothing
/// but a warning (the static factor stays). Returns the warnings and notes to add to the
/// record.
pub fn revalue_run(
    provider: &dyn IntensityProvider,
    zone: &str,
    start: i64,
    end: i64,
    carbon: &mut CarbonContext,
) -> Vec<String> {
    let fallback = (carbon.intensity_g_per_kwh, carbon.intensity_source.clone());
    let ri = intensity_for_run(Some(provider), zone, start, end, fallback.clone());
    if let Some(why) = &ri.fallback_reason {
        for w in &mut carbon.warnings {
            if w.starts_with("location unknown to the factor") {
                *w = format!("{WORLD_AVERAGE_WARNING} intensity because the live provider failed; pass --location (e.g. FR, US-CA, aws:eu-west-3) or set WATTPRINT_LOCATION");
            }
        }
        let mut out = vec![format!(
            "live intensity not used ({why}); valued at the static factor"
        )];
        out.extend(ri.notes);
        return out;
    }
    let Some(live) = live_of(provider, zone, &ri, fallback) else {
        return vec![format!(
            "live intensity not used (unknown provider {}); valued at the static factor",
            provider.name()
        )];
    };
    carbon.intensity_source = ri.source.clone();
    carbon.intensity_detail = detail(&ri, &live);
    carbon.intensity_g_per_kwh = live.time_weighted_g_per_kwh;
    carbon.signal = Some(signal_name(ri.signal));
    if let Intensity::Hourly(_) = &ri.intensity {
        carbon.series = Some(ri.intensity.clone());
    }
    carbon.warnings.retain(|w| {
        !w.starts_with(WORLD_AVERAGE_WARNING) && !w.starts_with("location unknown to the factor")
    });
    carbon.live = Some(live);
    ri.notes
}

/// The run's energy per sampled interval on the calendar, summed over devices, from the stored
/// series (`t0`, `t1` in seconds since `start_unix`).
pub fn energy_from_series(
    series: &[(String, Vec<SeriesPoint>)],
    start_unix: i64,
) -> Vec<(i64, i64, Joules)> {
    let mut sums: std::collections::BTreeMap<(i64, i64), f64> = std::collections::BTreeMap::new();
    for (_, pts) in series {
        for p in pts {
            if !(p.t0.is_finite() && p.t1.is_finite() && p.energy_j.is_finite()) {
                continue;
            }
            let a = start_unix.saturating_add(p.t0.floor() as i64);
            let b = start_unix.saturating_add(p.t1.ceil() as i64).max(a + 1);
            *sums.entry((a, b)).or_default() += p.energy_j;
        }
    }
    sums.into_iter()
        .map(|((a, b), j)| (a, b, Joules(j)))
        .collect()
}

/// What [`revalue_record`] changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Revalued {
    pub old_g_per_kwh: f64,
    pub new_g_per_kwh: f64,
    pub old_total_kg: f64,
    pub new_total_kg: f64,
    pub old_points: KindCounts,
    pub new_points: KindCounts,
    pub notes: Vec<String>,
}

/// Values a stored run again at `provider`'s intensity (`wattprint show --revalue`): the same
/// provider and zone as recorded, over the run's span; operational emissions are recomputed
/// from the stored energy per interval (`energy`, see [`energy_from_series`]; the series'
/// time-weighted mean when empty), embodied emissions are unchanged. An error (the record was
/// not valued live, another provider, the provider failed) leaves the record untouched.
pub fn revalue_record(
    provider: &dyn IntensityProvider,
    rec: &mut RunRecord,
    energy: &[(i64, i64, Joules)],
) -> Result<Revalued, String> {
    let Some(old) = rec.carbon_intensity.live.clone() else {
        return Err(format!(
            "run {} was valued at a static factor ({}), not at live intensity: nothing to revalue",
            rec.id, rec.carbon_intensity.source
        ));
    };
    if old.provider != provider.name() {
        return Err(format!(
            "run {} was valued with {}; configure that provider (--provider {}) to revalue it",
            rec.id, old.provider, old.provider
        ));
    }
    let start = iso::parse(&rec.started_at).ok_or_else(|| {
        format!(
            "run {}: started_at {:?} is not a time",
            rec.id, rec.started_at
        )
    })?;
    let dur = if rec.duration_s.is_finite() && rec.duration_s > 0.0 {
        rec.duration_s.ceil().min(1e12) as i64
    } else {
        1
    };
    let end = start.saturating_add(dur);
    let fallback = (
        old.static_fallback_g_per_kwh,
        old.static_fallback_source.clone(),
    );
    let ri = intensity_for_run(Some(provider), &old.zone, start, end, fallback.clone());
    if let Some(why) = ri.fallback_reason {
        return Err(format!("run {} not revalued: {why}", rec.id));
    }
    let live = live_of(provider, &old.zone, &ri, fallback)
        .ok_or_else(|| format!("unknown provider {}", provider.name()))?;
    let g = match operational_detail(energy, &ri.intensity, 1.0).effective_intensity {
        Some(g) if !energy.is_empty() && g.0.is_finite() => g.0,
        _ => live.time_weighted_g_per_kwh,
    };
    let e = &rec.energy_kwh;
    let pue = rec.pue;
    let m = &mut rec.emissions_kg;
    let old_total = m.total;
    m.dynamic = e.dynamic.0 * g / 1000.0;
    m.static_ = e.static_.0 * g / 1000.0;
    m.infrastructure = e.it.0 * g * (pue - 1.0) / 1000.0;
    m.operational = m.dynamic + m.static_ + m.infrastructure;
    m.total = m.operational + m.embodied;
    rec.equivalents = Equivalents::of(GramsCo2e(m.total * 1000.0));
    let ci = &mut rec.carbon_intensity;
    let old_g = ci.g_per_kwh;
    ci.g_per_kwh = round_sig(g, RECORD_DIGITS);
    ci.source = ri.source.clone();
    ci.signal = Some(signal_name(ri.signal));
    ci.resolution = Some(fmt_resolution(live.resolution_s));
    let source = detail(&ri, &live);
    for a in &mut rec.assumptions {
        if a.name == "carbon intensity" {
            a.value = live.time_weighted_g_per_kwh;
            a.source = source.clone();
        }
    }
    rec.warnings.retain(|w| {
        !w.contains(" intervals are forecast values") && !w.contains(" intervals are estimates")
    });
    for n in &ri.notes {
        if !rec.warnings.contains(n) {
            rec.warnings.push(n.clone());
        }
    }
    let out = Revalued {
        old_g_per_kwh: old_g,
        new_g_per_kwh: ci.g_per_kwh,
        old_total_kg: old_total,
        new_total_kg: rec.emissions_kg.total,
        old_points: old.points,
        new_points: live.points,
        notes: ri.notes,
    };
    rec.carbon_intensity.live = Some(live);
    Ok(out)
}
