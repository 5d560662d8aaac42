//! Factor profiles: the same job counted the way each well-known tool counts it, with that tool's
//! own datasets and conventions, so that `wattprint compare` can say why their numbers differ.
//!
//! | profile | formula (per run; × runs) | PUE | intensity | embodied |
//! |---|---|---|---|---|
//! | `wattprint` | [`crate::estimate::estimate`] | location's (CCF per region, else 1.56) | location's, any basis | CCF server model |
//! | `green-algorithms` | `h × (n_c·P_c·u_c + n_g·P_g·u_g + GB·0.3725) × PUE × CI` | GA datacentre, else GA provider default, else 1.56 | GA `CI_aggregated` (direct) | no |
//! | `mlco2` | `h × n_g × TDP × CI` (GPUs only) | none | ML CO2 Impact `impact.csv` (cloud regions only) | no |
//! | `codecarbon` | `h × (TDP·(0.1 + 0.9·u³) + GPU TDP·u + RAM(DIMMs))` | 1.0 | CodeCarbon mix (life-cycle), GCP region table | no |
//! | `ccf` | `h × (vCPU·(min + u·(max − min)) + GPU (min + u·(max − min)) + GB·0.392) × PUE × EF` | CCF per provider/region | CCF factors (direct), cloud regions only | yes, SCI |
//!
//! Each result lists every factor it used with its value and source
//! ([`ProfileResult::factors`]); a part a tool does not count is `None` with the reason, never a
//! zero. Sources and attribution of the tools' data: `docs/factors.md`,
//! `crates/core/data/README.md`, and [`data`].

pub mod data;
pub mod render;

use crate::accounting::{Assumption, Breakdown};
use crate::estimate::{estimate, EmbodiedSpec, EstimateInput};
use crate::factors::cloud::{cloud_region, CloudRegion};
use crate::factors::gpu::{gpu_lookup, GpuMatch};
use crate::factors::intensity::{intensity_rows, world_average};
use crate::units::GramsPerKwh;
use serde::Serialize;
use std::time::Duration;

/// A tool whose conventions a profile reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    Wattprint,
    GreenAlgorithms,
    Mlco2,
    Codecarbon,
    Ccf,
}

impl Profile {
    /// Every profile, in the order `compare` prints them.
    pub const ALL: [Profile; 5] = [
        Profile::Wattprint,
        Profile::GreenAlgorithms,
        Profile::Mlco2,
        Profile::Codecarbon,
        Profile::Ccf,
    ];

    /// The name on the command line (`--factors NAME`).
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Wattprint => "wattprint",
            Profile::GreenAlgorithms => "green-algorithms",
            Profile::Mlco2 => "mlco2",
            Profile::Codecarbon => "codecarbon",
            Profile::Ccf => "ccf",
        }
    }

    /// The tool's name for people.
    pub fn title(self) -> &'static str {
        match self {
            Profile::Wattprint => "wattprint",
            Profile::GreenAlgorithms => "Green Algorithms v3.0",
            Profile::Mlco2 => "ML CO2 Impact",
            Profile::Codecarbon => "CodeCarbon 3.3.2",
            Profile::Ccf => "Cloud Carbon Footprint",
        }
    }

    /// Parse a profile name (also `ga`, `ml-co2-impact`, `cloud-carbon-footprint`).
    pub fn parse(s: &str) -> Option<Profile> {
        match s.trim().to_ascii_lowercase().as_str() {
            "wattprint" => Some(Profile::Wattprint),
            "green-algorithms" | "ga" | "greenalgorithms" => Some(Profile::GreenAlgorithms),
            "mlco2" | "ml-co2-impact" | "mlco2-impact" => Some(Profile::Mlco2),
            "codecarbon" | "code-carbon" => Some(Profile::Codecarbon),
            "ccf" | "cloud-carbon-footprint" => Some(Profile::Ccf),
            _ => None,
        }
    }
}

/// A job described the way every tool can take it: hardware, time and place.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Duration of one run, hours (> 0).
    pub hours: f64,
    pub runs: u32,
    pub gpus: u32,
    /// GPU model as given (`a100 sxm`, `V100`), for each tool's own table.
    pub gpu_model: Option<String>,
    /// Power per GPU given by the user, W (wins over every table).
    pub gpu_watts: Option<f64>,
    /// CPU cores (or vCPUs).
    pub cores: u32,
    /// Power per core given by the user, W.
    pub core_watts: Option<f64>,
    pub sockets: u32,
    /// TDP per socket, W.
    pub socket_watts: Option<f64>,
    /// Memory, GB.
    pub memory_gb: f64,
    pub cpu_usage: f64,
    pub gpu_usage: f64,
    /// ISO country (`FR`), zone (`CA-QC`) or cloud region (`aws:us-east-1`).
    pub location: String,
    /// Embodied emissions as wattprint and CCF count them, if asked for.
    pub embodied: Option<EmbodiedSpec>,
    /// PUE given by the user: used by the tools that take one (wattprint, Green Algorithms,
    /// CodeCarbon's `pue`); ML CO2 Impact and CCF have none to set.
    pub pue: Option<f64>,
}

impl Job {
    /// A job of `hours` at `location` with no hardware, full usage, one run.
    pub fn new(hours: f64, location: &str) -> Job {
        Job {
            hours,
            runs: 1,
            gpus: 0,
            gpu_model: None,
            gpu_watts: None,
            cores: 0,
            core_watts: None,
            sockets: 0,
            socket_watts: None,
            memory_gb: 0.0,
            cpu_usage: 1.0,
            gpu_usage: 1.0,
            location: location.to_string(),
            embodied: None,
            pue: None,
        }
    }

    fn region(&self) -> Option<&'static CloudRegion> {
        cloud_region(&self.location.to_ascii_lowercase())
    }

    fn total_hours(&self) -> f64 {
        self.hours * f64::from(self.runs)
    }
}

/// A part of the footprint: counted (a number) or not counted (why).
pub type Part = Result<f64, String>;

/// The job counted by one profile.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileResult {
    pub profile: Profile,
    pub tool: &'static str,
    /// `Err(why)` when the tool cannot count this job at all (e.g. ML CO2 Impact off the cloud).
    #[serde(serialize_with = "ser_part_unit")]
    pub applicable: Result<(), String>,
    /// IT energy by component, kWh (`Err(why)` when the tool does not count it).
    #[serde(serialize_with = "ser_part")]
    pub cpu_kwh: Part,
    #[serde(serialize_with = "ser_part")]
    pub gpu_kwh: Part,
    #[serde(serialize_with = "ser_part")]
    pub ram_kwh: Part,
    pub it_kwh: f64,
    pub pue: f64,
    pub facility_kwh: f64,
    pub intensity_g_per_kwh: f64,
    /// `direct`, `life-cycle` or `unstated`.
    pub intensity_basis: &'static str,
    pub intensity_source: String,
    pub operational_kg: f64,
    #[serde(serialize_with = "ser_part")]
    pub embodied_kg: Part,
    /// operational + embodied (when counted).
    pub total_kg: f64,
    /// Every factor that produced a number, with its source.
    pub factors: Vec<Assumption>,
}

fn ser_part<S: serde::Serializer>(p: &Part, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(1))?;
    match p {
        Ok(v) => m.serialize_entry("value", v)?,
        Err(why) => m.serialize_entry("not_counted", why)?,
    }
    m.end()
}

fn ser_part_unit<S: serde::Serializer>(p: &Result<(), String>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Ok(()) => s.serialize_bool(true),
        Err(why) => s.serialize_str(why),
    }
}

/// Why a profile could not be computed at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}")]
    Estimate(#[from] crate::estimate::EstimateError),
    #[error("the duration must be a positive number of hours (got {0})")]
    Hours(f64),
    #[error("PUE must be between 1 and 10 (got {0})")]
    Pue(f64),
    #[error("{0} must be a finite non-negative number in range (got {1})")]
    Value(&'static str, f64),
}

fn check(job: &Job) -> Result<(), ProfileError> {
    if !(job.hours.is_finite() && job.hours > 0.0 && job.hours < 1e7) {
        return Err(ProfileError::Hours(job.hours));
    }
    if let Some(p) = job.pue {
        if !(p.is_finite() && (1.0..=10.0).contains(&p)) {
            return Err(ProfileError::Pue(p));
        }
    }
    for (what, v) in [
        ("memory", job.memory_gb),
        ("CPU usage", job.cpu_usage),
        ("GPU usage", job.gpu_usage),
    ] {
        if !(v.is_finite() && (0.0..=1e9).contains(&v)) {
            return Err(ProfileError::Value(what, v));
        }
    }
    if job.cpu_usage > 1.0 || job.gpu_usage > 1.0 {
        return Err(ProfileError::Value(
            "usage (0-1)",
            job.cpu_usage.max(job.gpu_usage),
        ));
    }
    for w in [job.gpu_watts, job.core_watts, job.socket_watts]
        .into_iter()
        .flatten()
    {
        if !(w.is_finite() && (0.0..=1e6).contains(&w)) {
            return Err(ProfileError::Value("power (W)", w));
        }
    }
    Ok(())
}

/// Count `job` the way `profile`'s tool does.
pub fn evaluate(profile: Profile, job: &Job) -> Result<ProfileResult, ProfileError> {
    check(job)?;
    Ok(match profile {
        Profile::Wattprint => wattprint(job)?,
        Profile::GreenAlgorithms => green_algorithms(job),
        Profile::Mlco2 => mlco2(job),
        Profile::Codecarbon => codecarbon(job),
        Profile::Ccf => ccf(job),
    })
}

/// Every profile's result, in [`Profile::ALL`] order.
pub fn evaluate_all(job: &Job) -> Result<Vec<ProfileResult>, ProfileError> {
    Profile::ALL.iter().map(|p| evaluate(*p, job)).collect()
}

/// The job a stored run describes: its GPUs (count and name), logical CPUs as cores, its
/// machine's memory, its duration and location. Usage is 1: the tools that model power from TDP
/// count the hardware as busy (give other usage factors to `compare`).
pub fn job_from_record(r: &crate::record::RunRecord) -> Job {
    let hours = if r.duration_s.is_finite() {
        (r.duration_s / 3600.0).clamp(1e-9, 1e6)
    } else {
        1e-9
    };
    let mut j = Job::new(hours, &r.location.code);
    j.gpus = u32::try_from(r.host.gpus.len()).unwrap_or(u32::MAX);
    j.gpu_model = r.host.gpus.first().map(|g| g.name.clone());
    j.cores = u32::try_from(r.host.logical_cpus).unwrap_or(u32::MAX);
    j.memory_gb = if r.host.ram_gb.is_finite() {
        r.host.ram_gb.clamp(0.0, 1e7)
    } else {
        0.0
    };
    if j.location == "unknown" || j.location.is_empty() {
        j.location = "WORLD".into();
    }
    j
}

// ------------------------------------------------------------------------------------------
// shared pieces

struct Acc {
    factors: Vec<Assumption>,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            factors: Vec::new(),
        }
    }
    fn push(&mut self, name: &str, value: f64, unit: &str, source: impl Into<String>) {
        self.factors
            .push(Assumption::new(name, value, unit, source.into()));
    }
}

/// The GPU power per device for a tool: the user's watts, else the tool's own table, else
/// wattprint's table (what a user of the tool would type as a custom TDP).
fn gpu_tdp(job: &Job, table: &[(&'static str, f64)], tool: &str) -> Option<(f64, String)> {
    if let Some(w) = job.gpu_watts {
        return Some((w, "given by the user".into()));
    }
    let model = job.gpu_model.as_deref()?;
    if let Some((name, w)) = data::lookup(table, model) {
        return Some((w, format!("{tool} table row '{name}'")));
    }
    match gpu_lookup(model) {
        GpuMatch::Found(g) => Some((
            g.tdp_w,
            format!(
                "'{model}' is not in {tool}'s table; its TDP from wattprint's GPU table ({}), as a user of {tool} would type it",
                g.name
            ),
        )),
        _ => None,
    }
}

/// Intensity rows of one source for a code.
fn source_row(code: &str, source: &str) -> Option<(f64, &'static str, String)> {
    intensity_rows(code)
        .into_iter()
        .rev()
        .find(|r| r.provenance.source == source)
        .map(|r| {
            (
                r.g_per_kwh,
                r.provenance.scope,
                format!("{} ({})", r.provenance.dataset, r.code),
            )
        })
}

fn finish(
    profile: Profile,
    acc: Acc,
    parts: [Part; 3],
    pue: f64,
    intensity: (f64, &'static str, String),
    embodied_kg: Part,
) -> ProfileResult {
    let [cpu, gpu, ram] = parts;
    let it: f64 = [&cpu, &gpu, &ram]
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .sum();
    let facility = it * pue;
    let operational = facility * intensity.0 / 1000.0;
    let total = operational + embodied_kg.as_ref().copied().unwrap_or(0.0);
    ProfileResult {
        profile,
        tool: profile.title(),
        applicable: Ok(()),
        cpu_kwh: cpu,
        gpu_kwh: gpu,
        ram_kwh: ram,
        it_kwh: it,
        pue,
        facility_kwh: facility,
        intensity_g_per_kwh: intensity.0,
        intensity_basis: intensity.1,
        intensity_source: intensity.2,
        operational_kg: operational,
        embodied_kg,
        total_kg: total,
        factors: acc.factors,
    }
}

fn not_applicable(profile: Profile, why: String) -> ProfileResult {
    let no = || Err(why.clone());
    ProfileResult {
        profile,
        tool: profile.title(),
        applicable: Err(why.clone()),
        cpu_kwh: no(),
        gpu_kwh: no(),
        ram_kwh: no(),
        it_kwh: 0.0,
        pue: 1.0,
        facility_kwh: 0.0,
        intensity_g_per_kwh: 0.0,
        intensity_basis: "unstated",
        intensity_source: String::new(),
        operational_kg: 0.0,
        embodied_kg: no(),
        total_kg: 0.0,
        factors: Vec::new(),
    }
}

// ------------------------------------------------------------------------------------------
// wattprint

fn wattprint(job: &Job) -> Result<ProfileResult, ProfileError> {
    let (intensity, basis, src, pue, pue_src) = match job.region() {
        Some(r) => (
            r.intensity_g_per_kwh,
            r.intensity_provenance.scope,
            format!("{} ({})", r.intensity_provenance.dataset, r.id),
            r.pue,
            r.pue_provenance.to_string(),
        ),
        None => {
            let (g, basis, src) = crate::factors::intensity::pick_intensity(&job.location, None)
                .map(|p| {
                    (
                        p.row.g_per_kwh,
                        p.row.provenance.scope,
                        p.provenance().to_string(),
                    )
                })
                .unwrap_or_else(|| {
                    let w = world_average();
                    (w.g_per_kwh, w.provenance.scope, w.provenance.to_string())
                });
            let (pue, prov) = crate::factors::pue::default_pue();
            (g, basis, src, pue, prov.to_string())
        }
    };
    let (pue, pue_src) = match job.pue {
        Some(p) => (p, "given by the user".to_string()),
        None => (pue, pue_src),
    };
    let mut input = EstimateInput::new(
        Duration::from_secs_f64(job.hours * 3600.0),
        pue,
        GramsPerKwh(intensity),
    );
    input.sources.pue = Some(pue_src);
    input.sources.intensity = Some(src.clone());
    input.runs = job.runs;
    input.gpus = job.gpus;
    if job.gpus > 0 {
        input.gpu_watts = job.gpu_watts.or_else(|| {
            job.gpu_model.as_deref().and_then(|m| match gpu_lookup(m) {
                GpuMatch::Found(g) => Some(g.tdp_w),
                _ => None,
            })
        });
    }
    input.cores = job.cores;
    input.core_watts = job.core_watts;
    if job.cores == 0 {
        input.cpus = job.sockets;
        input.cpu_watts = job.socket_watts;
        if job.socket_watts.is_none() {
            input.cpus = 0;
        }
    }
    input.memory_gb = job.memory_gb;
    input.cpu_usage = Some(job.cpu_usage);
    input.gpu_usage = Some(job.gpu_usage);
    input.embodied = job.embodied.clone();
    let b: Breakdown = estimate(&input)?;
    let e = &b.energy_kwh;
    let part = |v: f64, counted: bool, why: &str| {
        if counted {
            Ok(v)
        } else {
            Err(why.to_string())
        }
    };
    Ok(ProfileResult {
        profile: Profile::Wattprint,
        tool: Profile::Wattprint.title(),
        applicable: Ok(()),
        cpu_kwh: part(e.cpu.0, input.cores > 0 || input.cpus > 0, "no CPU given"),
        gpu_kwh: part(e.gpu.0, job.gpus > 0, "no GPU given"),
        ram_kwh: part(e.ram.0, job.memory_gb > 0.0, "no memory given"),
        it_kwh: e.it.0,
        pue: b.pue,
        facility_kwh: e.facility.0,
        intensity_g_per_kwh: b.intensity_g_per_kwh,
        intensity_basis: basis,
        intensity_source: src,
        operational_kg: b.emissions_kg.operational,
        embodied_kg: b
            .emissions_kg
            .embodied_kg()
            .ok_or_else(|| "not asked for (--embodied or --instance-type)".to_string()),
        total_kg: b.emissions_kg.total,
        factors: b.assumptions,
    })
}

// ------------------------------------------------------------------------------------------
// Green Algorithms

fn green_algorithms(job: &Job) -> ProfileResult {
    let mut acc = Acc::new();
    let h = job.total_hours();
    // CPU: cores × W per core (GA "Any" 12 W), or sockets × TDP (GA's per-core TDP × cores).
    let cpu: Part = if job.cores > 0 {
        let (w, src) = match job.core_watts {
            Some(w) => (w, "given by the user".to_string()),
            None => (data::GA_ANY_CORE_W, data::GA_SOURCE_CPU_ANY.to_string()),
        };
        acc.push("cpu_power_per_core", w, "W", src);
        acc.push("cpu_usage_factor", job.cpu_usage, "fraction", "given");
        Ok(h * f64::from(job.cores) * w * job.cpu_usage / 1000.0)
    } else if let (true, Some(w)) = (job.sockets > 0, job.socket_watts) {
        acc.push(
            "cpu_power_per_socket",
            w,
            "W",
            "given by the user (GA: TDP per core × cores)",
        );
        acc.push("cpu_usage_factor", job.cpu_usage, "fraction", "given");
        Ok(h * f64::from(job.sockets) * w * job.cpu_usage / 1000.0)
    } else {
        Err("no CPU given".into())
    };
    let gpu: Part = if job.gpus > 0 {
        let (w, src) = gpu_tdp(job, data::GA_GPU, "Green Algorithms")
            .unwrap_or((data::GA_ANY_GPU_W, data::GA_SOURCE_GPU_ANY.to_string()));
        acc.push("gpu_power", w, "W per GPU", src);
        acc.push("gpu_usage_factor", job.gpu_usage, "fraction", "given");
        Ok(h * f64::from(job.gpus) * w * job.gpu_usage / 1000.0)
    } else {
        Err("no GPU given".into())
    };
    let ram: Part = if job.memory_gb > 0.0 {
        acc.push(
            "memory_power",
            data::GA_MEMORY_W_PER_GB,
            "W/GB of memory requested",
            data::GA_SOURCE_MEMORY,
        );
        Ok(h * job.memory_gb * data::GA_MEMORY_W_PER_GB / 1000.0)
    } else {
        Err("no memory given".into())
    };
    // PUE and location: a GA datacentre row for the cloud region, else the region's zone or
    // country in GA's CI table; PUE from the row, else GA's provider default, else Unknown.
    let region = job.region();
    let dc = region.and_then(|r| data::ga_datacentre(r.provider.as_str(), &r.region));
    let (pue, pue_src) = match (dc, region) {
        (Some((_, p)), _) if p.is_finite() => (
            p,
            "Green Algorithms cloudProviders_datacenters.csv PUE".to_string(),
        ),
        (_, Some(r)) => (
            data::ga_default_pue(r.provider.as_str()),
            format!(
                "Green Algorithms defaults_PUE.csv ({})",
                r.provider.as_str()
            ),
        ),
        (_, None) => (
            data::ga_default_pue("Unknown"),
            "Green Algorithms defaults_PUE.csv (Unknown)".to_string(),
        ),
    };
    let (pue, pue_src) = match job.pue {
        Some(p) => (p, "given by the user".to_string()),
        None => (pue, pue_src),
    };
    acc.push("pue", pue, "ratio", pue_src);
    // GA's own location for the datacentre, else the region's zone, else its country, else
    // the code given; the first that GA's CI table has, else GA's World row.
    let codes: Vec<String> = match (dc, region) {
        (Some((loc, _)), _) if !loc.is_empty() => vec![loc.to_string()],
        (_, Some(r)) => r.zone.iter().cloned().chain([r.country.clone()]).collect(),
        _ => {
            let c = job.location.to_ascii_uppercase();
            let country = c.split('-').next().unwrap_or("").to_string();
            vec![c, country]
        }
    };
    let intensity = codes
        .iter()
        .find_map(|c| source_row(c, "A-GA"))
        .or_else(|| source_row("WORLD", "A-GA"))
        .unwrap_or((475.0, "direct", "Green Algorithms World".into()));
    acc.push(
        "carbon_intensity",
        intensity.0,
        "gCO2e/kWh",
        format!("{} [{}]", intensity.2, intensity.1),
    );
    finish(
        Profile::GreenAlgorithms,
        acc,
        [cpu, gpu, ram],
        pue,
        intensity,
        Err("Green Algorithms does not count embodied emissions".into()),
    )
}

// ------------------------------------------------------------------------------------------
// ML CO2 Impact

fn mlco2(job: &Job) -> ProfileResult {
    let Some(region) = job.region() else {
        return not_applicable(
            Profile::Mlco2,
            "ML CO2 Impact only knows cloud regions (give --location aws:REGION, gcp:…, azure:…)"
                .into(),
        );
    };
    let Some(impact) = region
        .alternatives
        .iter()
        .find(|a| a.source == "A-ML")
        .map(|a| a.g_per_kwh)
    else {
        return not_applicable(
            Profile::Mlco2,
            format!("{} is not in ML CO2 Impact's impact.csv", region.id),
        );
    };
    let mut acc = Acc::new();
    let h = job.total_hours();
    let gpu: Part = if job.gpus > 0 {
        match gpu_tdp(job, data::MLCO2_GPU, "ML CO2 Impact") {
            Some((w, src)) => {
                acc.push("gpu_power", w, "W per GPU (TDP, no usage factor)", src);
                Ok(h * f64::from(job.gpus) * w / 1000.0)
            }
            None => Err("ML CO2 Impact needs a known GPU model or its TDP".into()),
        }
    } else {
        Err("ML CO2 Impact counts GPUs only".into())
    };
    acc.push(
        "carbon_intensity",
        impact,
        "gCO2e/kWh",
        format!("mlco2/impact @ d0d3ee5 data/impact.csv ({})", region.id),
    );
    acc.push("pue", 1.0, "ratio", "ML CO2 Impact applies no PUE");
    finish(
        Profile::Mlco2,
        acc,
        [
            Err("ML CO2 Impact counts GPUs only".into()),
            gpu,
            Err("ML CO2 Impact does not count memory".into()),
        ],
        1.0,
        (
            impact,
            "unstated",
            format!("mlco2/impact data/impact.csv ({})", region.id),
        ),
        Err("ML CO2 Impact does not count embodied emissions".into()),
    )
}

// ------------------------------------------------------------------------------------------
// CodeCarbon

/// CodeCarbon 3.x RAM power from the memory size (x86): DIMMs from the size, then 5 W per DIMM
/// with diminishing steps, floor 10 W (`codecarbon/external/ram.py`).
pub fn codecarbon_ram_watts(gb: f64) -> f64 {
    let dimms: f64 = if gb <= 2.0 {
        1.0
    } else if gb <= 16.0 {
        2.0
    } else if gb <= 64.0 {
        4.0
    } else if gb <= 128.0 {
        8.0
    } else {
        let size = [128.0, 64.0, 32.0, 16.0, 8.0, 4.0]
            .into_iter()
            .find(|s| *s <= gb / 8.0)
            .unwrap_or(4.0);
        (gb / size).ceil().min(32.0)
    };
    let w = if dimms <= 4.0 {
        5.0 * dimms
    } else if dimms <= 8.0 {
        20.0 + 4.5 * (dimms - 4.0)
    } else if dimms <= 16.0 {
        38.0 + 4.0 * (dimms - 8.0)
    } else {
        70.0 + 3.5 * (dimms - 16.0)
    };
    w.max(10.0)
}

fn codecarbon(job: &Job) -> ProfileResult {
    let mut acc = Acc::new();
    let h = job.total_hours();
    let tdp = if job.cores > 0 {
        job.core_watts
            .map(|w| {
                (
                    w * f64::from(job.cores),
                    "cores × W per core given by the user",
                )
            })
            .or(Some((
                data::CC_DEFAULT_W_PER_THREAD * f64::from(job.cores),
                "CodeCarbon unknown CPU: 4 W per thread (DEFAULT_POWER_PER_CORE)",
            )))
    } else if job.sockets > 0 {
        job.socket_watts.map(|w| {
            (
                w * f64::from(job.sockets),
                "TDP per socket × sockets given by the user",
            )
        })
    } else {
        None
    };
    let cpu: Part = match tdp {
        Some((w, src)) => {
            let factor = 0.1 + 0.9 * job.cpu_usage.powi(3);
            acc.push("cpu_tdp", w, "W", src);
            acc.push(
                "cpu_load_factor",
                factor,
                "fraction of TDP",
                "CodeCarbon cpu_load mode: 0.1 + 0.9 × load³",
            );
            Ok(h * w * factor / 1000.0)
        }
        None => Err("no CPU given".into()),
    };
    let gpu: Part = if job.gpus > 0 {
        match gpu_tdp(job, &[], "CodeCarbon") {
            Some((w, src)) => {
                acc.push(
                    "gpu_power",
                    w * job.gpu_usage,
                    "W per GPU",
                    format!("CodeCarbon measures GPUs with NVML; here TDP × usage ({src})"),
                );
                Ok(h * f64::from(job.gpus) * w * job.gpu_usage / 1000.0)
            }
            None => Err("CodeCarbon measures GPUs; no model or power given".into()),
        }
    } else {
        Err("no GPU given".into())
    };
    let ram: Part = if job.memory_gb > 0.0 {
        let w = codecarbon_ram_watts(job.memory_gb);
        acc.push(
            "ram_power",
            w,
            "W",
            "CodeCarbon 3.x RAM heuristic: DIMMs from the size, 5 W per DIMM (diminishing), floor 10 W",
        );
        Ok(h * w / 1000.0)
    } else {
        Err("no memory given".into())
    };
    let pue = job.pue.unwrap_or(1.0);
    acc.push(
        "pue",
        pue,
        "ratio",
        if job.pue.is_some() {
            "given by the user (CodeCarbon `pue`)"
        } else {
            "CodeCarbon default pue = 1.0"
        },
    );
    let region = job.region();
    let gcp = region.and_then(|r| {
        r.alternatives.iter().find(|a| a.source == "A-CC").map(|a| {
            (
                a.g_per_kwh,
                "unstated",
                format!("codecarbon 3.3.2 cloud/impact.csv ({})", r.id),
            )
        })
    });
    let intensity = gcp.unwrap_or_else(|| {
        let codes: Vec<String> = match region {
            Some(r) => r.zone.iter().cloned().chain([r.country.clone()]).collect(),
            None => {
                let c = job.location.to_ascii_uppercase();
                let country = c.split('-').next().unwrap_or("").to_string();
                vec![c, country]
            }
        };
        codes.iter().find_map(|c| source_row(c, "A-CC")).unwrap_or((
            475.0,
            "life-cycle",
            "CodeCarbon world average (IEA 2019)".into(),
        ))
    });
    acc.push(
        "carbon_intensity",
        intensity.0,
        "gCO2e/kWh",
        format!("{} [{}]", intensity.2, intensity.1),
    );
    finish(
        Profile::Codecarbon,
        acc,
        [cpu, gpu, ram],
        pue,
        intensity,
        Err("CodeCarbon does not count embodied emissions".into()),
    )
}

// ------------------------------------------------------------------------------------------
// Cloud Carbon Footprint

fn ccf(job: &Job) -> ProfileResult {
    let Some(region) = job.region() else {
        return not_applicable(
            Profile::Ccf,
            "Cloud Carbon Footprint only counts cloud regions (give --location aws:REGION, gcp:…, azure:…)"
                .into(),
        );
    };
    let mut acc = Acc::new();
    let h = job.total_hours();
    let (min_w, max_w) = data::ccf_vcpu_watts(region.provider.as_str());
    let cpu: Part = if job.cores > 0 {
        let w = min_w + job.cpu_usage * (max_w - min_w);
        acc.push(
            "cpu_power_per_vcpu",
            w,
            "W",
            format!(
                "CCF {} average for an unknown microarchitecture: min {min_w} + u × (max {max_w} − min)",
                region.provider.as_str()
            ),
        );
        Ok(h * f64::from(job.cores) * w / 1000.0)
    } else {
        Err("CCF counts vCPUs; give --cores".into())
    };
    let gpu: Part = if job.gpus > 0 {
        let spec = job.gpu_model.as_deref().and_then(|m| match gpu_lookup(m) {
            GpuMatch::Found(g) => Some(g),
            _ => None,
        });
        match spec.and_then(|g| Some((g.idle_w?, g.max_w?, g.name.clone()))) {
            Some((lo, hi, name)) => {
                let w = lo + job.gpu_usage * (hi - lo);
                acc.push(
                    "gpu_power",
                    w,
                    "W per GPU",
                    format!("CCF {name} min {lo} / max {hi} W (Teads-derived)"),
                );
                Ok(h * f64::from(job.gpus) * w / 1000.0)
            }
            None => Err("CCF has no min/max watts for this GPU".into()),
        }
    } else {
        Err("no GPU given".into())
    };
    let ram: Part = if job.memory_gb > 0.0 {
        acc.push(
            "memory_power",
            data::CCF_MEMORY_W_PER_GB,
            "W/GB",
            "CCF 0.000392 kWh/GB-h",
        );
        Ok(h * job.memory_gb * data::CCF_MEMORY_W_PER_GB / 1000.0)
    } else {
        Err("no memory given".into())
    };
    acc.push(
        "pue",
        region.pue,
        "ratio",
        region.pue_provenance.to_string(),
    );
    let intensity = if region.intensity_provenance.source == "A-CCF" {
        (
            region.intensity_g_per_kwh,
            region.intensity_provenance.scope,
            format!("{} ({})", region.intensity_provenance.dataset, region.id),
        )
    } else {
        region
            .alternatives
            .iter()
            .find(|a| a.source == "A-CCFC")
            .map(|a| {
                (
                    a.g_per_kwh,
                    "direct",
                    format!("{} ({})", a.dataset, region.id),
                )
            })
            .unwrap_or((
                region.intensity_g_per_kwh,
                region.intensity_provenance.scope,
                format!("{} ({})", region.intensity_provenance.dataset, region.id),
            ))
    };
    acc.push(
        "carbon_intensity",
        intensity.0,
        "gCO2e/kWh",
        format!("{} [{}]", intensity.2, intensity.1),
    );
    let embodied: Part = match &job.embodied {
        Some(e) => {
            let hours = job.total_hours();
            let kg: f64 = e
                .components
                .iter()
                .map(|c| {
                    c.kg_co2e
                        * c.count
                        * f64::from(e.servers)
                        * crate::accounting::amortisation_fraction(
                            hours,
                            c.lifetime_hours,
                            e.use_rate,
                        )
                        * e.share
                })
                .sum();
            acc.push(
                "embodied_share",
                e.share,
                "fraction",
                "instance vCPU / platform vCPU (CCF)",
            );
            Ok(kg)
        }
        None => Err("not asked for (--embodied or --instance-type)".into()),
    };
    finish(
        Profile::Ccf,
        acc,
        [cpu, gpu, ram],
        region.pue,
        intensity,
        embodied,
    )
}

// ------------------------------------------------------------------------------------------
// why they differ

/// Short reasons why `other` differs from `base` (wattprint's result), most important first.
pub fn why(base: &ProfileResult, other: &ProfileResult) -> Vec<String> {
    use render::sig;
    let mut v = Vec::new();
    if let Err(e) = &other.applicable {
        v.push(e.clone());
        return v;
    }
    if other.profile == base.profile {
        return v;
    }
    let rel = |a: f64, b: f64| (a - b).abs() > 1e-9 * a.abs().max(b.abs()).max(1e-12);
    let (bi, oi) = (base.intensity_g_per_kwh, other.intensity_g_per_kwh);
    if base.intensity_basis != other.intensity_basis
        && base.intensity_basis != "unstated"
        && other.intensity_basis != "unstated"
    {
        v.push(format!(
            "{} vs {} intensity: {} vs {} g/kWh",
            other.intensity_basis,
            base.intensity_basis,
            sig(oi),
            sig(bi)
        ));
    } else if rel(bi, oi) {
        v.push(format!(
            "intensity {} vs {} g/kWh ({}{})",
            sig(oi),
            sig(bi),
            other.intensity_source,
            if other.intensity_basis == "unstated" {
                ", basis unstated"
            } else {
                ""
            }
        ));
    }
    if rel(base.pue, other.pue) {
        v.push(if other.pue == 1.0 {
            format!(
                "{} applies no PUE overhead (PUE 1; wattprint {})",
                other.tool,
                sig(base.pue)
            )
        } else {
            format!("PUE {} vs {}", sig(other.pue), sig(base.pue))
        });
    }
    let notes = |kind: &str| -> &'static str {
        match (other.profile, kind) {
            (Profile::GreenAlgorithms, "ram") => {
                "GA counts memory at 0.3725 W/GB of requested memory"
            }
            (Profile::Codecarbon, "ram") => {
                "CodeCarbon counts RAM at 5 W per DIMM (10 W floor), not per GB"
            }
            (Profile::Ccf, "ram") => "CCF counts memory at 0.392 W/GB",
            (Profile::Codecarbon, "cpu") => {
                "CodeCarbon: CPU TDP × (0.1 + 0.9 × load³), an unknown CPU at 4 W per thread"
            }
            (Profile::Ccf, "cpu") => "CCF: CPU at min + u × (max − min) W per vCPU",
            (Profile::GreenAlgorithms, "cpu") => "GA: CPU at W per core × usage",
            (Profile::Mlco2, "gpu") => {
                "ML CO2 Impact counts GPUs at full TDP from its own table, no usage factor"
            }
            (Profile::Ccf, "gpu") => "CCF: GPUs at min + u × (max − min) W",
            (Profile::GreenAlgorithms, "gpu") => "GA: GPU TDP from its own table × usage",
            (Profile::Codecarbon, "gpu") => "CodeCarbon measures GPUs (here TDP × usage)",
            _ => "different power figures",
        }
    };
    for (kind, a, b) in [
        ("gpu", &base.gpu_kwh, &other.gpu_kwh),
        ("cpu", &base.cpu_kwh, &other.cpu_kwh),
        ("ram", &base.ram_kwh, &other.ram_kwh),
    ] {
        match (a, b) {
            (Ok(x), Err(e)) if *x > 0.0 => v.push(e.clone()),
            (Ok(x), Ok(y)) if rel(*x, *y) => v.push(format!(
                "{} {} vs {} kWh: {}",
                kind.to_uppercase(),
                sig(*y),
                sig(*x),
                notes(kind)
            )),
            _ => {}
        }
    }
    match (&base.embodied_kg, &other.embodied_kg) {
        (Ok(_), Err(e)) => v.push(e.clone()),
        (Err(_), Ok(_)) => v.push(format!("{} counts embodied emissions", other.tool)),
        _ => {}
    }
    v
}
