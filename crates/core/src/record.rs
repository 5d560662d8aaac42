//! The run record: what `wattprint run` stores and prints as JSON (`schema` "wattprint.run/1").
//! Field names are part of the public format; add fields freely, never rename.

use crate::accounting::{AccountInput, Assumption, Intensity};
use crate::sampler::Snapshot;
use crate::sensor::{DeviceKind, Method};
use crate::units::{GramsPerKwh, Joules};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA: &str = "wattprint.run/1";

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still running (checkpoints).
    Running,
    /// Exit code 0.
    Completed,
    /// Non-zero exit code.
    Failed,
    /// Ended by a signal.
    Killed,
    /// Stopped by wattprint because an energy or carbon budget was reached (or predicted to be).
    StoppedByBudget,
    /// Stopped by wattprint because the duration cap was reached.
    StoppedByCap,
}

impl RunStatus {
    /// Every status, in the order the docs list them.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Killed,
        RunStatus::StoppedByBudget,
        RunStatus::StoppedByCap,
    ];

    /// The status named `s` (as [`RunStatus::as_str`] writes it).
    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Killed => "killed",
            RunStatus::StoppedByBudget => "stopped_by_budget",
            RunStatus::StoppedByCap => "stopped_by_cap",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub hostname: String,
    pub cpu_model: String,
    pub logical_cpus: usize,
    pub ram_gb: f64,
    pub gpus: Vec<GpuInfo>,
}

pub use crate::accounting::{EmissionsKg, EnergyKwh, Equivalents};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub id: String,
    pub kind: DeviceKind,
    pub method: Method,
    pub name: String,
    pub energy_kwh: f64,
    pub avg_power_w: f64,
    /// Energy the whole device drew; differs from `energy_kwh` in process scope.
    pub machine_energy_kwh: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_power_w: Option<f64>,
    /// The GPU's UUID as its vendor library gives it (NVML `GPU-…`), so that a card keeps its
    /// history across reboots and index changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

/// Method per component: the method of its devices, `mixed(a+b)` when they differ, `none`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Methods {
    pub cpu: String,
    pub gpu: String,
    pub ram: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CarbonIntensity {
    /// The intensity applied: the constant factor, or with an hourly series the
    /// energy-weighted mean of the intervals the run covered.
    pub g_per_kwh: f64,
    /// Where the value came from, in words (dataset, year, licence), or "default: ...".
    pub source: String,
    /// `average` or `marginal` (a live provider's signal; static factors are averages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// `constant`, or the live series' interval length (`30 min`, `5 min`, `1 h`; `hourly` in
    /// records written before 0.x): each interval valued at its own intensity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Set when the run was valued at a live provider's intensity: which provider and zone,
    /// its attribution, when the data was retrieved, the series' kinds and resolution, the
    /// time-weighted intensity, and the static factor that was only the fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveIntensity>,
}

/// How a run was valued at live intensity (see [`CarbonIntensity::live`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveIntensity {
    /// `uk`, `electricitymaps`, `watttime`.
    pub provider: String,
    /// The zone asked for (`GB`, `FR`, `CAISO_NORTH`).
    pub zone: String,
    /// Publisher, licence or terms, signal, and whether redistribution is restricted.
    pub attribution: crate::providers::Attribution,
    /// When the data was retrieved from the provider (RFC 3339, UTC).
    pub retrieved_at: String,
    /// Typical interval length of the series, seconds (1800 for the GB API, 300 for WattTime).
    pub resolution_s: i64,
    /// Points of each kind over the run.
    pub points: crate::providers::KindCounts,
    /// Mean of the series over the run, weighted by time, gCO2e/kWh.
    pub time_weighted_g_per_kwh: f64,
    /// The static factor that would have been used had the provider failed, and its source.
    pub static_fallback_g_per_kwh: f64,
    pub static_fallback_source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationRecord {
    /// `FR`, `US-CA`, `aws:eu-west-3`, or `unknown`.
    pub code: String,
    pub name: String,
    pub known: bool,
    pub pue_source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: String,
    pub id: String,
    pub project: String,
    pub tags: BTreeMap<String, String>,
    pub command: Vec<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_s: f64,
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    /// Signal number that ended the job, when it was killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub host: HostInfo,
    pub scope: String,
    pub interval_s: f64,
    pub energy_kwh: EnergyKwh,
    pub devices: Vec<DeviceRecord>,
    pub methods: Methods,
    pub pue: f64,
    pub carbon_intensity: CarbonIntensity,
    pub location: LocationRecord,
    pub emissions_kg: EmissionsKg,
    pub equivalents: Equivalents,
    /// Every factor used, its value, unit and source.
    pub assumptions: Vec<crate::accounting::Assumption>,
    pub factors_version: String,
    pub warnings: Vec<String>,
    /// Completed sampler reads and ticks skipped by overruns.
    pub samples: u64,
    pub skipped_ticks: u64,
    pub wattprint_version: String,
    /// Why embodied emissions were not counted (`emissions_kg.embodied` is then `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embodied_not_counted: Option<String>,
    /// What an import kept that has no field of its own (e.g. CodeCarbon's water and versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<Imported>,
    /// Caps and budgets in force, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::limits::Limits>,
    /// Limits approached (80 %), reached, or predicted to be exceeded, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limit_events: Vec<crate::limits::LimitEvent>,
    /// How wattprint stopped the job, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StopInfo>,
    /// The latest prediction of the final totals (progress file or expected duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<crate::prediction::Prediction>,
    /// What measuring cost: the tracker's own CPU time and peak memory (not the job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracker: Option<TrackerUsage>,
    /// Windows, stages and work units the measured code reported (Python's `Tracker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<crate::segments::Segments>,
    /// The job this run belongs to (`--job`, or the launcher's environment), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Whether, with whom, for how long and by which rule the run shared the machine (the
    /// host ledger); absent when the ledger was off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<crate::host_ledger::HostSharing>,
    /// How many nodes the job runs on (`--nodes`, `SLURM_JOB_NUM_NODES`, `GROUP_WORLD_SIZE`):
    /// the job is complete when that many nodes reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_nodes: Option<u32>,
    /// The job's node names, when the launcher lists them (`SLURM_JOB_NODELIST`): which node
    /// is missing can then be told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_nodelist: Option<Vec<String>>,
    /// The model the run belongs to, its stage, sweep and trial, its base model
    /// ([`crate::lineage`]); absent when none was given or detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<crate::lineage::Lineage>,
    /// What a run that did not finish discarded since its last checkpoint (unknown without
    /// checkpoint signals), or, for a finished run, how many checkpoints it signalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discarded: Option<crate::waste::Discarded>,
    /// Bytes the job's process tree read and wrote, and the host's network traffic with its
    /// energy ([`crate::io`]); absent when no job was attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<crate::io::IoRecord>,
}

/// How a job was stopped by a limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopInfo {
    pub limit: crate::limits::LimitKind,
    /// Seconds since the start when the stop signal was sent.
    pub at_s: f64,
    /// Signal sent first (e.g. 15 for SIGTERM).
    pub signal: i32,
    pub grace_s: f64,
    /// Whether the job outlived its grace period and was sent SIGKILL.
    pub killed_after_grace: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackerUsage {
    /// CPU seconds (user + system) used by wattprint itself.
    pub cpu_s: f64,
    /// Peak resident memory of wattprint itself, MB; `None` when wattprint runs inside another
    /// program's process (Python, a Slurm plugin), whose memory is not ours to tell apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rss_mb: Option<f64>,
    /// Milliseconds from wattprint's start to the job's spawn.
    pub startup_ms: f64,
}

/// Method of one component across its devices.
pub fn component_method(snapshot: &Snapshot, kind: DeviceKind) -> String {
    let mut ms: Vec<&'static str> = Vec::new();
    for d in snapshot.devices.iter().filter(|d| d.device.kind == kind) {
        let m = d.device.method.as_str();
        if !ms.contains(&m) {
            ms.push(m);
        }
    }
    match ms.len() {
        0 => "none".to_string(),
        1 => ms[0].to_string(),
        _ => format!("mixed({})", ms.join("+")),
    }
}

/// Per-device records from a sampler snapshot.
pub fn device_records(snapshot: &Snapshot) -> Vec<DeviceRecord> {
    let secs = snapshot.elapsed.as_secs_f64();
    snapshot
        .devices
        .iter()
        .map(|d| DeviceRecord {
            id: d.device.id.clone(),
            kind: d.device.kind,
            method: d.device.method,
            name: d.device.name.clone(),
            energy_kwh: d.energy.kwh().0,
            avg_power_w: if secs > 0.0 { d.energy.0 / secs } else { 0.0 },
            machine_energy_kwh: d.machine_energy.kwh().0,
            idle_power_w: d.device.idle_power_w,
            uuid: d.device.uuid.clone(),
        })
        .collect()
}

/// What is known about a run before it ends.
#[derive(Debug, Clone)]
pub struct RunMeta {
    pub id: String,
    pub project: String,
    pub tags: BTreeMap<String, String>,
    pub command: Vec<String>,
    pub started_at: String,
    pub host: HostInfo,
    pub scope: crate::sampler::Scope,
    pub interval_s: f64,
    /// Unix time (s) of the sampler's start, to place the series on the calendar.
    pub start_unix: f64,
}

/// The carbon factors in force for a run, each with its source.
#[derive(Debug, Clone)]
pub struct CarbonContext {
    pub intensity_g_per_kwh: f64,
    pub intensity_source: String,
    /// The source with the dataset's notes, for the assumptions list.
    pub intensity_detail: String,
    pub pue: f64,
    /// Where the PUE came from, with notes.
    pub pue_detail: String,
    pub location: LocationRecord,
    pub factors_version: String,
    /// Warnings to carry into every record (e.g. "location unknown").
    pub warnings: Vec<String>,
    /// A time series from a live provider; when set, each interval of the run is valued at its
    /// own intensity instead of the constant above.
    pub series: Option<crate::accounting::Intensity>,
    /// The series' signal (`average` / `marginal`).
    pub signal: Option<String>,
    /// How the run was valued at live intensity, when it was (set with `series`).
    pub live: Option<LiveIntensity>,
    /// Manufacturing emissions of the hardware the run used, and a fixed share of it when the
    /// run holds only part of the machine (e.g. a VM). `None`: embodied emissions not counted
    /// (and a warning says why).
    pub embodied: Option<RunEmbodied>,
    /// Why embodied emissions are not counted, when `embodied` is `None`.
    pub embodied_not_counted: Option<String>,
}

/// The hardware whose manufacturing emissions a run is charged for.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEmbodied {
    pub components: Vec<crate::accounting::EmbodiedComponent>,
    /// The run's share of that hardware; `None`: the whole machine in machine scope, and the
    /// job's share of the machine's measured energy in process scope.
    pub share: Option<f64>,
}

/// Embodied components of a host from the shipped coefficients (Cloud Carbon Footprint's
/// server model: a base server with 1 socket and 16 GB, plus sockets, DRAM and GPUs; disks are
/// not seen by the run and not counted).
pub fn host_embodied(host: &HostInfo, sockets: u32) -> Vec<crate::accounting::EmbodiedComponent> {
    crate::factors::embodied::embodied().components(&crate::factors::embodied::ServerSpec {
        sockets,
        dram_gb: if host.ram_gb.is_finite() {
            host.ram_gb.max(0.0)
        } else {
            0.0
        },
        gpus: u32::try_from(host.gpus.len()).unwrap_or(u32::MAX),
        ssds: 0,
        hdds: 0,
    })
}

/// Values an import kept, per source format: column → the file's text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Imported {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub codecarbon: BTreeMap<String, String>,
}

/// How the run ended (absent while it runs).
#[derive(Debug, Clone, Default)]
pub struct Ending {
    pub ended_at: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

/// Static (idle) energy of each device over the run, scaled by the share of the device's energy
/// charged to the job, and never more than the energy charged. Devices without a known idle
/// power contribute none (their whole energy counts as dynamic; see docs/methodology.md).
pub fn static_energy_j(snapshot: &Snapshot) -> f64 {
    let secs = snapshot.elapsed.as_secs_f64();
    snapshot
        .devices
        .iter()
        .map(|d| {
            let Some(idle) = d.device.idle_power_w else {
                return 0.0;
            };
            let share = if d.machine_energy.0 > 0.0 {
                (d.energy.0 / d.machine_energy.0).clamp(0.0, 1.0)
            } else {
                0.0
            };
            (idle * secs * share).min(d.energy.0).max(0.0)
        })
        .sum()
}

/// The run's energy per sampled interval, on the calendar: `(start, end, J)` in unix seconds,
/// summed over devices (every device is sampled at the same instants).
pub fn energy_by_interval(snapshot: &Snapshot, start_unix: f64) -> Vec<(i64, i64, Joules)> {
    let mut sums: std::collections::HashMap<(u64, u64), f64> = std::collections::HashMap::new();
    for d in &snapshot.devices {
        for p in &d.series {
            *sums.entry((p.t0.to_bits(), p.t1.to_bits())).or_default() += p.energy_j;
        }
    }
    let mut out: Vec<(f64, f64, f64)> = sums
        .into_iter()
        .map(|((a, b), e)| (f64::from_bits(a), f64::from_bits(b), e))
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out.into_iter()
        .map(|(a, b, e)| {
            let s = (start_unix + a).floor() as i64;
            let t = ((start_unix + b).ceil() as i64).max(s + 1);
            (s, t, Joules(e))
        })
        .collect()
}

/// Assemble the run record from the sampler's state.
pub fn build_record(
    meta: &RunMeta,
    carbon: &CarbonContext,
    snapshot: &Snapshot,
    status: RunStatus,
    ending: &Ending,
    extra_warnings: &[String],
) -> RunRecord {
    let by_kind = |k: DeviceKind| -> Joules {
        snapshot
            .devices
            .iter()
            .filter(|d| d.device.kind == k)
            .map(|d| d.energy)
            .sum()
    };
    let mut input = AccountInput::new(
        carbon.pue,
        carbon
            .series
            .clone()
            .unwrap_or(Intensity::Constant(GramsPerKwh(carbon.intensity_g_per_kwh))),
        snapshot.elapsed,
    );
    if carbon.series.is_some() {
        input.energy_by_interval = energy_by_interval(snapshot, meta.start_unix);
    }
    let mut embodied_not_counted = match &carbon.embodied {
        None => Some(
            carbon
                .embodied_not_counted
                .clone()
                .unwrap_or_else(|| "no embodied data was given for this run".to_string()),
        ),
        Some(_) => None,
    };
    if let Some(e) = &carbon.embodied {
        let share = e.share.unwrap_or_else(|| {
            let machine: f64 = snapshot.devices.iter().map(|d| d.machine_energy.0).sum();
            let charged: f64 = snapshot.devices.iter().map(|d| d.energy.0).sum();
            if machine > 0.0 {
                (charged / machine).clamp(0.0, 1.0)
            } else {
                1.0
            }
        });
        if share > 0.0 {
            input.embodied = Some(crate::accounting::EmbodiedInput {
                components: e.components.clone(),
                use_rate: 1.0,
                share,
            });
        } else {
            embodied_not_counted = Some(
                "the job was charged no energy yet, so its share of the machine is unknown"
                    .to_string(),
            );
        }
    }
    let cpu = by_kind(DeviceKind::Cpu);
    let gpu = by_kind(DeviceKind::Gpu);
    let ram = by_kind(DeviceKind::Ram);
    let it = cpu + gpu + ram;
    let static_j = Joules(static_energy_j(snapshot).min(it.0));
    input.set_components(cpu, gpu, ram, Joules::ZERO, static_j);
    input.assumptions = vec![
        Assumption::new(
            "carbon intensity",
            crate::units::round_sig(carbon.intensity_g_per_kwh, crate::units::RECORD_DIGITS),
            "gCO2e/kWh",
            &carbon.intensity_detail,
        ),
        Assumption::new("PUE", carbon.pue, "ratio", &carbon.pue_detail),
    ];
    if let Some(l) = &carbon.live {
        input.assumptions.push(Assumption::new(
            "carbon intensity fallback (static, not used)",
            l.static_fallback_g_per_kwh,
            "gCO2e/kWh",
            format!(
                "{}; used only if the live provider had failed",
                l.static_fallback_source
            ),
        ));
    }
    for d in &snapshot.devices {
        for f in &d.device.factors {
            input.assumptions.push(Assumption::new(
                format!("{} of {}", f.name, d.device.id),
                f.value,
                &f.unit,
                &f.source,
            ));
        }
        // The job's share of the device in process scope (1 in machine scope).
        if d.machine_energy.0 > 0.0 && d.energy.0 < d.machine_energy.0 {
            input.assumptions.push(Assumption::new(
                format!("process-scope share of {}", d.device.id),
                crate::units::round_sig(
                    (d.energy.0 / d.machine_energy.0).clamp(0.0, 1.0),
                    crate::units::RECORD_DIGITS,
                ),
                "fraction",
                "the job's share of the device's measured energy (see docs/methodology.md, process scope)",
            ));
        }
        if let Some(idle) = d.device.idle_power_w {
            input.assumptions.push(Assumption::new(
                format!("idle power of {}", d.device.id),
                idle,
                "W",
                "the device's model (see docs/methodology.md, static energy)",
            ));
        }
    }
    let b = crate::accounting::account(&input);
    let mut warnings = carbon.warnings.clone();
    for w in snapshot
        .warnings
        .iter()
        .chain(extra_warnings)
        .chain(&b.warnings)
    {
        if !warnings.contains(w) {
            warnings.push(w.clone());
        }
    }
    RunRecord {
        schema: SCHEMA.to_string(),
        id: meta.id.clone(),
        project: meta.project.clone(),
        tags: meta.tags.clone(),
        command: meta.command.clone(),
        started_at: meta.started_at.clone(),
        ended_at: ending.ended_at.clone(),
        duration_s: snapshot.elapsed.as_secs_f64(),
        status,
        exit_code: ending.exit_code,
        signal: ending.signal,
        host: meta.host.clone(),
        scope: meta.scope.as_str().to_string(),
        interval_s: meta.interval_s,
        energy_kwh: b.energy_kwh,
        devices: device_records(snapshot),
        methods: Methods {
            cpu: component_method(snapshot, DeviceKind::Cpu),
            gpu: component_method(snapshot, DeviceKind::Gpu),
            ram: component_method(snapshot, DeviceKind::Ram),
        },
        pue: carbon.pue,
        carbon_intensity: CarbonIntensity {
            g_per_kwh: crate::units::round_sig(
                if carbon.series.is_some() {
                    b.intensity_g_per_kwh
                } else {
                    carbon.intensity_g_per_kwh
                },
                crate::units::RECORD_DIGITS,
            ),
            source: carbon.intensity_source.clone(),
            signal: Some(carbon.signal.clone().unwrap_or_else(|| "average".into())),
            resolution: Some(match (&carbon.live, carbon.series.is_some()) {
                (Some(l), _) => crate::providers::fmt_resolution(l.resolution_s),
                (None, true) => "hourly".into(),
                (None, false) => "constant".into(),
            }),
            live: carbon.live.clone(),
        },
        location: carbon.location.clone(),
        emissions_kg: b.emissions_kg,
        equivalents: b.equivalents,
        assumptions: b.assumptions,
        factors_version: carbon.factors_version.clone(),
        warnings,
        samples: snapshot.samples,
        skipped_ticks: snapshot.skipped_ticks,
        wattprint_version: env!("CARGO_PKG_VERSION").to_string(),
        imported: None,
        embodied_not_counted: if b.emissions_kg.embodied_counted {
            None
        } else {
            embodied_not_counted
                .or_else(|| Some("the embodied inputs were invalid (see warnings)".to_string()))
        },
        tracker: None,
        segments: None,
        job: None,
        sharing: None,
        job_nodes: None,
        job_nodelist: None,
        lineage: None,
        discarded: None,
        io: None,
        limits: None,
        limit_events: Vec::new(),
        stopped: None,
        prediction: None,
    }
}
