//! Reports on a stored run or a whole project: the data they show, gathered once from the
//! store, then rendered as HTML ([`html`]), Markdown ([`markdown`]), a Hugging Face model-card
//! block ([`model_card`]) or JSON ([`json`]).
//!
//! Every number comes from the stored run records (the same accounting as `wattprint run`);
//! the only new arithmetic is sums over runs, the cumulative curves and the "same work
//! elsewhere" comparison (IT energy × the region's grid intensity × its PUE). See
//! `docs/reports.md`.

pub mod html;
pub mod json;
pub mod markdown;
pub mod model_card;
pub mod other_tools;
pub mod svg;

use crate::store::{RunFilter, Store};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use wattprint_core::factors::cloud::cloud_regions;
use wattprint_core::factors::ranking::{regions_report, RegionsQuery};
use wattprint_core::record::{RunRecord, RunStatus};
use wattprint_core::sampler::SeriesPoint;
use wattprint_core::units::JOULES_PER_KWH;

/// What a report is about.
#[derive(Debug, Clone)]
pub enum Subject {
    Run(Box<RunReport>),
    Project(Box<ProjectReport>),
}

/// A report ready to render.
#[derive(Debug, Clone)]
pub struct Report {
    pub subject: Subject,
    /// When the report was made (RFC 3339, UTC).
    pub generated_at: String,
    /// The wattprint that made it.
    pub version: &'static str,
}

/// The stored power series of one device.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceSeries {
    pub device_id: String,
    pub points: Vec<SeriesPoint>,
}

impl DeviceSeries {
    pub fn energy_j(&self) -> f64 {
        self.points.iter().map(|p| p.energy_j).sum()
    }
}

/// One run with its series and the "same work elsewhere" comparison.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub record: RunRecord,
    /// Its tracker died before the final save (`unfinished (tracker lost)`).
    pub lost: bool,
    pub series: Vec<DeviceSeries>,
    pub alternatives: Alternatives,
    /// Remarks on the data (series missing or not matching the record's energy).
    pub notes: Vec<String>,
}

/// The same IT energy run in another cloud region.
#[derive(Debug, Clone, Serialize)]
pub struct Alternative {
    pub id: String,
    pub name: String,
    pub area: String,
    pub intensity_g_per_kwh: f64,
    pub pue: f64,
    /// `intensity × pue`, gCO2e per kWh of IT energy.
    pub effective_g_per_kwh: f64,
    /// `it_kwh × effective / 1000`: operational emissions there, kgCO2e.
    pub emissions_kg: f64,
    /// Against the actual operational emissions, percent (negative = worse).
    pub saving_percent: Option<f64>,
    /// Dataset keys of the intensity and the PUE (`docs/factors.md`).
    pub intensity_source: String,
    pub pue_source: String,
}

/// The lowest-carbon places to do the same work.
#[derive(Debug, Clone, Serialize)]
pub struct Alternatives {
    /// IT energy compared (before PUE), kWh.
    pub it_kwh: f64,
    /// Operational emissions of the same work at ONE place, the location the report names (the
    /// one most runs used), kgCO2e; see [`baseline_operational_kg`].
    pub actual_operational_kg: f64,
    /// Embodied emissions, which a move does not change, kgCO2e; `null` when not counted.
    pub embodied_kg: Option<f64>,
    /// The three regions of lowest intensity × PUE among all shipped regions.
    pub overall: Vec<Alternative>,
    /// The area of the run's location (`europe`, ...), when it could be told.
    pub near_area: Option<String>,
    /// The three best regions in that area.
    pub near: Vec<Alternative>,
}

/// Sums over the runs of a project.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub runs: usize,
    pub completed: usize,
    pub failed: usize,
    pub killed: usize,
    pub running: usize,
    pub duration_s: f64,
    pub energy_kwh: EnergyTotals,
    pub emissions_kg: EmissionTotals,
    /// Failed and killed runs: work that produced no result.
    pub wasted_runs: usize,
    pub wasted_energy_kwh: f64,
    pub wasted_emissions_kg: f64,
    /// `wasted_emissions_kg / emissions_kg.total`, 0 when there are no emissions.
    pub wasted_share: f64,
    /// Static (idle) share of IT energy.
    pub idle_share: f64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct EnergyTotals {
    pub cpu: f64,
    pub gpu: f64,
    pub ram: f64,
    pub dynamic: f64,
    #[serde(rename = "static")]
    pub static_: f64,
    pub it: f64,
    pub infrastructure: f64,
    pub facility: f64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct EmissionTotals {
    pub dynamic: f64,
    #[serde(rename = "static")]
    pub static_: f64,
    pub infrastructure: f64,
    pub embodied: f64,
    pub operational: f64,
    pub total: f64,
    /// Runs whose embodied emissions were not counted (`embodied` leaves them out).
    pub embodied_not_counted_runs: usize,
}

/// A location used by some runs of a project, with its factors.
#[derive(Debug, Clone, Serialize)]
pub struct LocationUse {
    pub code: String,
    pub name: String,
    pub intensity_g_per_kwh: f64,
    pub intensity_source: String,
    pub pue: f64,
    pub pue_source: String,
    pub runs: usize,
}

/// A project (or every run since a date) with its totals.
#[derive(Debug, Clone)]
pub struct ProjectReport {
    /// `None`: every project.
    pub project: Option<String>,
    /// RFC 3339 lower bound on the runs' start, when one was given.
    pub since: Option<String>,
    /// Newest first.
    pub runs: Vec<RunRecord>,
    /// Ids of the runs whose tracker died before the final save.
    pub lost: std::collections::BTreeSet<String>,
    pub totals: Totals,
    pub alternatives: Alternatives,
    pub locations: Vec<LocationUse>,
    /// `(component, method, runs)`.
    pub methods: Vec<(String, String, usize)>,
    /// Distinct warnings with the number of runs that carry each.
    pub warnings: Vec<(String, usize)>,
    pub factors_versions: Vec<String>,
}

/// Failed, killed and stopped (cap/budget) runs did not finish: their energy is waste.
pub fn is_wasted(s: RunStatus) -> bool {
    matches!(
        s,
        RunStatus::Failed
            | RunStatus::Killed
            | RunStatus::StoppedByBudget
            | RunStatus::StoppedByCap
    )
}

/// The report of one stored run (`run` is an id or a unique prefix of one).
pub fn run_report(store: &Store, run: &str) -> Result<RunReport> {
    let record = store.find_run(run)?;
    let series: Vec<DeviceSeries> = store
        .series(&record.id)?
        .into_iter()
        .map(|(device_id, points)| DeviceSeries { device_id, points })
        .collect();
    let mut notes = Vec::new();
    let series_j: f64 = series.iter().map(DeviceSeries::energy_j).sum();
    let record_j = record.energy_kwh.total.0 * JOULES_PER_KWH;
    if series.is_empty() {
        notes.push(if record.status == RunStatus::Running {
            "the run is still running (or ended without a final record): no power series is stored yet".to_string()
        } else {
            "no power series is stored for this run (imported or saved without samples)".to_string()
        });
    } else if (series_j - record_j).abs() > 0.01 * record_j.max(1.0) {
        notes.push(format!(
            "the stored series holds {} but the record {}; the plots show the series, the figures the record",
            wattprint_core::format::energy_kwh(series_j / wattprint_core::units::JOULES_PER_KWH),
            wattprint_core::format::energy_kwh(record_j / wattprint_core::units::JOULES_PER_KWH)
        ));
    }
    let alternatives = alternatives(
        record.energy_kwh.it.0,
        record.emissions_kg.operational,
        record.emissions_kg.embodied_kg(),
        &record.location.code,
    );
    Ok(RunReport {
        lost: store.status_label(&record) == crate::liveness::LOST,
        record,
        series,
        alternatives,
        notes,
    })
}

/// The report of every run of `project` (every project when `None`) started at or after
/// `since` (RFC 3339).
pub fn project_report(
    store: &Store,
    project: Option<&str>,
    since: Option<&str>,
) -> Result<ProjectReport> {
    let runs = store.list_runs(&RunFilter {
        project: project.map(str::to_string),
        since: since.map(str::to_string),
        ..RunFilter::default()
    })?;
    if runs.is_empty() {
        let what = match project {
            Some(p) => format!("project `{p}`"),
            None => "the store".to_string(),
        };
        match since {
            Some(s) => anyhow::bail!(
                "no runs in {what} started since {s}; check the name with `wattprint projects` or widen --since"
            ),
            None => anyhow::bail!(
                "no runs in {what}; check the name with `wattprint projects` (names are case-sensitive)"
            ),
        }
    }
    let mut rep = project_from_runs(project.map(str::to_string), since.map(str::to_string), runs);
    rep.lost = rep
        .runs
        .iter()
        .filter(|r| store.status_label(r) == crate::liveness::LOST)
        .map(|r| r.id.clone())
        .collect();
    Ok(rep)
}

/// Totals, locations, methods and warnings of a list of runs (newest first).
pub fn project_from_runs(
    project: Option<String>,
    since: Option<String>,
    runs: Vec<RunRecord>,
) -> ProjectReport {
    let mut t = Totals {
        runs: runs.len(),
        ..Totals::default()
    };
    let mut locations: BTreeMap<(String, u64, u64), LocationUse> = BTreeMap::new();
    let mut methods: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut warnings: Vec<(String, usize)> = Vec::new();
    let mut warning_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut versions: Vec<String> = Vec::new();
    for r in &runs {
        match r.status {
            RunStatus::Completed => t.completed += 1,
            RunStatus::Failed => t.failed += 1,
            // stopped by a cap or budget: killed by wattprint on the user's behalf
            RunStatus::Killed | RunStatus::StoppedByBudget | RunStatus::StoppedByCap => {
                t.killed += 1
            }
            RunStatus::Running => t.running += 1,
        }
        t.duration_s += r.duration_s;
        let e = &r.energy_kwh;
        t.energy_kwh.cpu += e.cpu.0;
        t.energy_kwh.gpu += e.gpu.0;
        t.energy_kwh.ram += e.ram.0;
        t.energy_kwh.dynamic += e.dynamic.0;
        t.energy_kwh.static_ += e.static_.0;
        t.energy_kwh.it += e.it.0;
        t.energy_kwh.infrastructure += e.infrastructure.0;
        t.energy_kwh.facility += e.facility.0;
        let m = &r.emissions_kg;
        t.emissions_kg.dynamic += m.dynamic;
        t.emissions_kg.static_ += m.static_;
        t.emissions_kg.infrastructure += m.infrastructure;
        t.emissions_kg.embodied += m.embodied;
        if !m.embodied_counted {
            t.emissions_kg.embodied_not_counted_runs += 1;
        }
        t.emissions_kg.operational += m.operational;
        t.emissions_kg.total += m.total;
        if is_wasted(r.status) {
            t.wasted_runs += 1;
            t.wasted_energy_kwh += e.it.0;
            t.wasted_emissions_kg += m.total;
        }
        let key = (
            r.location.code.clone(),
            r.carbon_intensity.g_per_kwh.to_bits(),
            r.pue.to_bits(),
        );
        locations
            .entry(key)
            .or_insert_with(|| LocationUse {
                code: r.location.code.clone(),
                name: r.location.name.clone(),
                intensity_g_per_kwh: r.carbon_intensity.g_per_kwh,
                intensity_source: r.carbon_intensity.source.clone(),
                pue: r.pue,
                pue_source: r.location.pue_source.clone(),
                runs: 0,
            })
            .runs += 1;
        for (c, mth) in [
            ("cpu", &r.methods.cpu),
            ("gpu", &r.methods.gpu),
            ("ram", &r.methods.ram),
        ] {
            *methods.entry((c.to_string(), mth.clone())).or_default() += 1;
        }
        for w in &r.warnings {
            match warning_index.get(w) {
                Some(&i) => warnings[i].1 += 1,
                None => {
                    warning_index.insert(w.clone(), warnings.len());
                    warnings.push((w.clone(), 1));
                }
            }
        }
        if !versions.contains(&r.factors_version) {
            versions.push(r.factors_version.clone());
        }
    }
    if t.emissions_kg.total > 0.0 {
        t.wasted_share = t.wasted_emissions_kg / t.emissions_kg.total;
    }
    if t.energy_kwh.it > 0.0 {
        t.idle_share = t.energy_kwh.static_ / t.energy_kwh.it;
    }
    let mut locations: Vec<LocationUse> = locations.into_values().collect();
    locations.sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.code.cmp(&b.code)));
    // Compare against the location most runs used (the one the report names).
    let main_location = locations
        .first()
        .map(|l| l.code.clone())
        .unwrap_or_default();
    let alternatives = alternatives(
        t.energy_kwh.it,
        baseline_operational_kg(&locations, t.energy_kwh.it, t.emissions_kg.operational),
        crate::embodied_text::of_sum(
            t.emissions_kg.embodied,
            t.runs,
            t.emissions_kg.embodied_not_counted_runs,
        )
        .ok(),
        &main_location,
    );
    ProjectReport {
        project,
        since,
        runs,
        lost: Default::default(),
        totals: t,
        alternatives,
        locations,
        methods: methods.into_iter().map(|((c, m), n)| (c, m, n)).collect(),
        warnings,
        factors_versions: versions,
    }
}

/// The operational emissions the alternatives are compared with: the same work (all of the
/// project's IT energy) at ONE named place, the location most runs used (`locations[0]`, the
/// one the report names), at its intensity × PUE. When every run was at that place, the
/// recorded total (which may be valued hour by hour) is that figure already.
pub fn baseline_operational_kg(locations: &[LocationUse], it_kwh: f64, recorded_kg: f64) -> f64 {
    match locations {
        [] | [_] => recorded_kg,
        [main, ..] => {
            let kg = it_kwh * main.intensity_g_per_kwh * main.pue / 1000.0;
            if kg.is_finite() {
                kg
            } else {
                recorded_kg
            }
        }
    }
}

/// The area (`europe`, ...) of a location code: a cloud region's own, else that of the cloud
/// regions in the same country (`US-CA` → `US`).
pub fn area_of(code: &str) -> Option<String> {
    let regions = cloud_regions();
    if let Some(r) = regions.iter().find(|r| r.id.eq_ignore_ascii_case(code)) {
        return Some(r.area.clone());
    }
    let country = code.split('-').next().unwrap_or(code);
    if country.len() != 2 {
        return None;
    }
    regions
        .iter()
        .find(|r| r.country.eq_ignore_ascii_case(country))
        .map(|r| r.area.clone())
}

/// The best regions for `it_kwh` of IT energy, overall and near `location_code`.
pub fn alternatives(
    it_kwh: f64,
    actual_operational_kg: f64,
    embodied_kg: Option<f64>,
    location_code: &str,
) -> Alternatives {
    let rows = |near: Option<&str>| -> Vec<Alternative> {
        let q = RegionsQuery {
            near: near.map(str::to_string),
            top: Some(3),
            kwh: Some(it_kwh.max(0.0)),
            ..RegionsQuery::default()
        };
        match regions_report(&q) {
            Ok(rep) => rep
                .rows
                .into_iter()
                .map(|r| {
                    let kg = r.emissions_kg.unwrap_or(0.0);
                    Alternative {
                        saving_percent: (actual_operational_kg > 0.0)
                            .then(|| (actual_operational_kg - kg) / actual_operational_kg * 100.0),
                        id: r.rank.id,
                        name: r.rank.name,
                        area: r.rank.area,
                        intensity_g_per_kwh: r.rank.intensity,
                        pue: r.rank.pue,
                        effective_g_per_kwh: r.rank.effective_g_per_kwh,
                        emissions_kg: kg,
                        intensity_source: r.rank.intensity_source.to_string(),
                        pue_source: r.rank.pue_source.to_string(),
                    }
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    };
    let near_area = area_of(location_code);
    Alternatives {
        it_kwh,
        actual_operational_kg,
        embodied_kg,
        overall: rows(None),
        near: near_area
            .as_deref()
            .map(|a| rows(Some(a)))
            .unwrap_or_default(),
        near_area,
    }
}

/// A device's series for plotting power: an interval shorter than half the typical one (the
/// last read at the job's exit, a read that came early) is merged into its neighbour, since
/// a counter's coarse steps make the power of a very short interval meaningless; then at most
/// `max_points` intervals are kept by merging adjacent ones. Energy is preserved throughout.
pub fn power_steps(s: &DeviceSeries, max_points: usize) -> Vec<SeriesPoint> {
    let mut durations: Vec<f64> = s.points.iter().map(|p| p.t1 - p.t0).collect();
    durations.sort_by(f64::total_cmp);
    let typical = durations.get(durations.len() / 2).copied().unwrap_or(0.0);
    let mut pts: Vec<SeriesPoint> = Vec::with_capacity(s.points.len());
    for p in &s.points {
        let short = p.t1 - p.t0 < 0.5 * typical;
        match pts.last_mut() {
            Some(prev) if short && (p.t0 - prev.t1).abs() <= 1e-9 + 0.5 * typical => {
                prev.t1 = p.t1;
                prev.energy_j += p.energy_j;
            }
            _ => pts.push(*p),
        }
    }
    if pts.len() >= 2 && pts[0].t1 - pts[0].t0 < 0.5 * typical {
        let first = pts.remove(0);
        pts[0].t0 = first.t0;
        pts[0].energy_j += first.energy_j;
    }
    let n = pts.len();
    if n <= max_points || max_points == 0 {
        return pts;
    }
    let k = n.div_ceil(max_points);
    pts.chunks(k)
        .filter_map(|c| {
            let first = c.first()?;
            let last = c.last()?;
            Some(SeriesPoint {
                t0: first.t0,
                t1: last.t1,
                energy_j: c.iter().map(|p| p.energy_j).sum(),
            })
        })
        .collect()
}

/// An RFC 3339 time as `2026-05-01 10:00:00 UTC` (the stored text when it does not parse).
pub fn fmt_time(s: &str) -> String {
    match time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        Ok(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        Err(_) => s.to_string(),
    }
}

/// Cumulative emissions of a run over its own time, kg: the series' energy at the run's
/// operational kg per IT joule, embodied spread evenly over the duration.
pub fn run_cumulative(r: &RunReport) -> Vec<(f64, f64)> {
    let rec = &r.record;
    let it_j = rec.energy_kwh.it.0 * JOULES_PER_KWH;
    let per_j = if it_j > 0.0 {
        rec.emissions_kg.operational / it_j
    } else {
        0.0
    };
    let dur = rec.duration_s;
    let mut ends: Vec<(f64, f64)> = r
        .series
        .iter()
        .flat_map(|d| d.points.iter().map(|p| (p.t1, p.energy_j)))
        .collect();
    ends.sort_by(|a, b| a.0.total_cmp(&b.0));
    let embodied_at = |t: f64| {
        if dur > 0.0 {
            rec.emissions_kg.embodied * (t / dur).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let mut out = vec![(0.0, 0.0)];
    let mut acc = 0.0;
    for (t, j) in ends {
        acc += j;
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 = acc * per_j + embodied_at(t),
            _ => out.push((t, acc * per_j + embodied_at(t))),
        }
    }
    if out.len() == 1 {
        // No series: a straight line to the recorded total.
        out.push((dur, rec.emissions_kg.total));
    }
    thin(out, 800)
}

/// Cumulative emissions over a project's runs in start order: `(unix end time, total kg,
/// wasted kg)`.
pub fn project_cumulative(p: &ProjectReport) -> Vec<(f64, f64, f64)> {
    let mut rs: Vec<(f64, f64, bool)> = p
        .runs
        .iter()
        .map(|r| {
            let start = parse_unix(&r.started_at).unwrap_or(0.0);
            let end = r
                .ended_at
                .as_deref()
                .and_then(parse_unix)
                .unwrap_or(start + r.duration_s);
            (end, r.emissions_kg.total, is_wasted(r.status))
        })
        .collect();
    rs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = Vec::with_capacity(rs.len());
    let (mut tot, mut waste) = (0.0, 0.0);
    for (t, kg, w) in rs {
        tot += kg;
        if w {
            waste += kg;
        }
        out.push((t, tot, waste));
    }
    if out.len() > 1000 {
        let k = out.len().div_ceil(1000);
        let last = out.last().copied();
        let mut v: Vec<_> = out.into_iter().step_by(k).collect();
        if let Some(l) = last {
            if v.last() != Some(&l) {
                v.push(l);
            }
        }
        out = v;
    }
    out
}

/// Keep at most about `max` points of a monotone curve (first and last always kept).
fn thin(v: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if v.len() <= max {
        return v;
    }
    let k = v.len().div_ceil(max);
    let last = v.last().copied();
    let mut out: Vec<_> = v.into_iter().step_by(k).collect();
    if let Some(l) = last {
        if out.last() != Some(&l) {
            out.push(l);
        }
    }
    out
}

/// Unix seconds of an RFC 3339 time.
pub fn parse_unix(s: &str) -> Option<f64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() as f64 / 1e9)
}

/// `8 x NVIDIA A100-SXM4-80GB, AMD EPYC 7763 (64 logical CPUs)`.
pub fn hardware_of(r: &RunRecord) -> String {
    hardware_summary(std::slice::from_ref(r).iter())
}

/// The hardware of several runs: per GPU model the number per run (`1–8 x NAME` when it
/// varies), then each distinct CPU with its logical CPUs.
pub fn hardware_summary<'a>(runs: impl Iterator<Item = &'a RunRecord>) -> String {
    // (gpu name, min per run, max per run), in first-seen order
    let mut gpus: Vec<(String, usize, usize)> = Vec::new();
    let mut cpus: Vec<String> = Vec::new();
    for r in runs {
        let mut here: Vec<(String, usize)> = Vec::new();
        for g in &r.host.gpus {
            match here.iter_mut().find(|(n, _)| *n == g.name) {
                Some((_, c)) => *c += 1,
                None => here.push((g.name.clone(), 1)),
            }
        }
        for (n, c) in here {
            match gpus.iter_mut().find(|(g, _, _)| *g == n) {
                Some((_, lo, hi)) => {
                    *lo = (*lo).min(c);
                    *hi = (*hi).max(c);
                }
                None => gpus.push((n, c, c)),
            }
        }
        if !r.host.cpu_model.trim().is_empty() {
            let c = format!(
                "{} ({} logical CPUs)",
                r.host.cpu_model.trim(),
                r.host.logical_cpus
            );
            if !cpus.contains(&c) {
                cpus.push(c);
            }
        }
    }
    let mut parts: Vec<String> = gpus
        .into_iter()
        .map(|(n, lo, hi)| {
            if lo == hi {
                format!("{lo} x {n}")
            } else {
                format!("{lo}–{hi} x {n}")
            }
        })
        .collect();
    parts.extend(cpus);
    if parts.is_empty() {
        "unknown hardware".to_string()
    } else {
        parts.join(", ")
    }
}

/// `A-CCF` or `A-GA, A-CCF`: the sources of an intensity and a PUE, said once when the same.
pub fn sources_text(intensity: &str, pue: &str) -> String {
    if intensity == pue {
        intensity.to_string()
    } else {
        format!("{intensity}, {pue}")
    }
}

/// The measurement method of each component, `none` left out: `cpu rapl, ram rapl-dram`.
pub fn methods_of(r: &RunRecord) -> String {
    let v: Vec<String> = [
        ("cpu", &r.methods.cpu),
        ("gpu", &r.methods.gpu),
        ("ram", &r.methods.ram),
    ]
    .iter()
    .filter(|(_, m)| m.as_str() != "none")
    .map(|(c, m)| format!("{c} {m}"))
    .collect();
    if v.is_empty() {
        "no device measured".into()
    } else {
        v.join(", ")
    }
}

/// The location as a person reads it: `Paris (aws:eu-west-3)`, or `unknown`.
pub fn location_text(code: &str, name: &str, known: bool) -> String {
    if !known {
        return "unknown (world-average intensity used)".to_string();
    }
    if name.is_empty() || name == code {
        code.to_string()
    } else {
        format!("{name} ({code})")
    }
}

/// Short run id (8 characters).
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A command line as one string, arguments with spaces quoted.
pub fn command_text(cmd: &[String]) -> String {
    cmd.iter()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) || a.contains('\'') {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `part / whole` as a percentage string, `–` when the whole is zero.
pub fn pct(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        wattprint_core::format::percent(part / whole)
    } else {
        "–".into()
    }
}

/// The equivalents shown in reports: `(what, value formatted)`.
pub fn equivalents_rows(e: &wattprint_core::record::Equivalents) -> Vec<(&'static str, String)> {
    vec![
        (
            "km driven by an average EU passenger car (175 g/km)",
            wattprint_core::format::sig(e.car_km),
        ),
        (
            "months of one tree's sequestration (11 kg/year)",
            wattprint_core::format::sig(e.tree_months),
        ),
        (
            "smartphone charges (8.22 g each)",
            wattprint_core::format::sig(e.phone_charges),
        ),
        (
            "Paris–London passenger flights (50 kg each)",
            wattprint_core::format::sig(e.flights_paris_london),
        ),
        (
            "New York–San Francisco passenger flights (570 kg each)",
            wattprint_core::format::sig(e.flights_new_york_san_francisco),
        ),
    ]
}

/// Title of a report.
pub fn title(r: &Report) -> String {
    match &r.subject {
        Subject::Run(run) => format!(
            "Run {} · project {}",
            short_id(&run.record.id),
            run.record.project
        ),
        Subject::Project(p) => match &p.project {
            Some(n) => format!("Project {n}"),
            None => "All projects".to_string(),
        },
    }
}

/// Live-intensity data embedded in a report: one line per provider used (publisher, signal,
/// licence or terms, and when the data was retrieved), and the notices of providers whose
/// terms restrict redistribution.
pub fn live_data(records: &[&RunRecord]) -> (Vec<String>, Vec<String>) {
    let mut lines: Vec<String> = Vec::new();
    let mut notices: Vec<String> = Vec::new();
    for r in records {
        let Some(l) = &r.carbon_intensity.live else {
            continue;
        };
        let line = format!(
            "{} {}: {}; retrieved {}; {} intervals ({})",
            l.provider,
            l.zone,
            l.attribution.line(),
            l.retrieved_at,
            wattprint_core::providers::fmt_resolution(l.resolution_s),
            l.points
        );
        if !lines.contains(&line) {
            lines.push(line);
        }
        if let Some(n) = l.attribution.restriction_notice() {
            if !notices.contains(&n) {
                notices.push(n);
            }
        }
    }
    (lines, notices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t0: f64, t1: f64, energy_j: f64) -> SeriesPoint {
        SeriesPoint { t0, t1, energy_j }
    }

    #[test]
    fn power_steps_merge_short_reads_and_keep_energy() {
        let s = DeviceSeries {
            device_id: "cpu".into(),
            points: vec![
                p(0.0, 1.0, 10.0),
                p(1.0, 2.0, 20.0),
                p(2.0, 3.0, 30.0),
                p(3.0, 3.01, 0.0),
            ],
        };
        let v = power_steps(&s, 100);
        assert_eq!(v.len(), 3);
        assert_eq!(v[2], p(2.0, 3.01, 30.0));
        let total: f64 = v.iter().map(|x| x.energy_j).sum();
        assert_eq!(total, 60.0);
        let v = power_steps(&s, 2);
        assert_eq!(v.len(), 2);
        assert_eq!(v.iter().map(|x| x.energy_j).sum::<f64>(), 60.0);
        assert_eq!((v[0].t0, v[1].t1), (0.0, 3.01));
    }

    #[test]
    fn times_read_as_utc() {
        assert_eq!(
            fmt_time("2026-05-01T12:00:00.123456+02:00"),
            "2026-05-01 10:00:00 UTC"
        );
        assert_eq!(fmt_time("garbage"), "garbage");
    }

    #[test]
    fn areas_of_locations() {
        assert_eq!(area_of("aws:eu-west-3").as_deref(), Some("europe"));
        assert_eq!(area_of("US-CA").as_deref(), Some("north-america"));
        assert_eq!(area_of("unknown"), None);
    }
}
