//! The run record: what `wattprint run` stores and prints as JSON (`schema` "wattprint.run/1").
//! Field names are part of the public format; add fields freely, never rename.

use crate::sampler::Snapshot;
use crate::sensor::{DeviceKind, Method};
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
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Killed => "killed",
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

/// Energy in kWh per component; `total` is the IT energy (before PUE).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnergyKwh {
    pub cpu: f64,
    pub gpu: f64,
    pub ram: f64,
    pub total: f64,
    /// What the work added above idle.
    pub dynamic: f64,
    /// Idle power of the devices used, over the run's duration.
    #[serde(rename = "static")]
    pub static_: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmissionsKg {
    pub dynamic: f64,
    #[serde(rename = "static")]
    pub static_: f64,
    pub infrastructure: f64,
    pub embodied: f64,
    pub operational: f64,
    pub total: f64,
}

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
    pub g_per_kwh: f64,
    /// Where the value came from, in words (dataset, year, licence), or "default: ...".
    pub source: String,
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
    pub factors_version: String,
    pub warnings: Vec<String>,
    /// Completed sampler reads and ticks skipped by overruns.
    pub samples: u64,
    pub skipped_ticks: u64,
    pub wattprint_version: String,
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
        })
        .collect()
}
