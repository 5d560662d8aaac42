//! The one small trait every energy source implements, and the types it speaks.
//!
//! A sensor reports **cumulative energy per device** since it was opened. Counter-based sensors
//! difference hardware counters through [`crate::counter`]; model-based sensors integrate a
//! modelled power. The sampler, exporters and tests never care which hardware answered.

use crate::units::{Joules, Watts};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// What a device is, for totals per component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Cpu,
    Gpu,
    Ram,
}

impl DeviceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Gpu => "gpu",
            DeviceKind::Ram => "ram",
        }
    }
}

/// How a device's energy was obtained. The string forms are part of the run record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    /// RAPL package energy counter (powercap).
    #[serde(rename = "rapl")]
    Rapl,
    /// RAPL DRAM-domain energy counter.
    #[serde(rename = "rapl-dram")]
    RaplDram,
    /// CPU power modelled from TDP and load.
    #[serde(rename = "tdp-model")]
    TdpModel,
    /// RAM power modelled from memory in use (W/GB).
    #[serde(rename = "model")]
    Model,
    /// NVML total-energy counter.
    #[serde(rename = "nvml-energy")]
    NvmlEnergy,
    /// NVML power readings integrated over time.
    #[serde(rename = "nvml-power")]
    NvmlPower,
    /// AMD amdsmi energy accumulator (`amdsmi_get_energy_count`).
    #[serde(rename = "amdsmi-energy")]
    AmdsmiEnergy,
    /// AMD amdsmi socket power (`amdsmi_get_power_info`) integrated over time.
    #[serde(rename = "amdsmi-power")]
    AmdsmiPower,
    /// AMD ROCm SMI energy accumulator (`rsmi_dev_energy_count_get`).
    #[serde(rename = "rocm-smi-energy")]
    RocmSmiEnergy,
    /// Intel Level Zero Sysman power-domain energy counter (`zesPowerGetEnergyCounter`).
    #[serde(rename = "level-zero-energy")]
    LevelZeroEnergy,
    /// Nothing measured or modelled.
    #[serde(rename = "none")]
    None,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Rapl => "rapl",
            Method::RaplDram => "rapl-dram",
            Method::TdpModel => "tdp-model",
            Method::Model => "model",
            Method::NvmlEnergy => "nvml-energy",
            Method::NvmlPower => "nvml-power",
            Method::AmdsmiEnergy => "amdsmi-energy",
            Method::AmdsmiPower => "amdsmi-power",
            Method::RocmSmiEnergy => "rocm-smi-energy",
            Method::LevelZeroEnergy => "level-zero-energy",
            Method::None => "none",
        }
    }
    /// True for hardware measurements, false for estimates from a model.
    pub fn is_measured(self) -> bool {
        matches!(
            self,
            Method::Rapl
                | Method::RaplDram
                | Method::NvmlEnergy
                | Method::NvmlPower
                | Method::AmdsmiEnergy
                | Method::AmdsmiPower
                | Method::RocmSmiEnergy
                | Method::LevelZeroEnergy
        )
    }
}

/// One energy-consuming device a sensor reports on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// Stable id within a run, e.g. `cpu:package-0`, `ram:dram-0`, `gpu:0`.
    pub id: String,
    pub kind: DeviceKind,
    pub method: Method,
    /// Human-readable name (CPU model, GPU name, zone name).
    pub name: String,
    /// GPU index as NVML numbers it, for GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_index: Option<u32>,
    /// GPU UUID, for GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Idle (static) power of the device when known, used by the accounting to split dynamic
    /// and static energy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_power_w: Option<f64>,
    /// The factors of the device's model (TDP and where it came from, the per-thread fallback,
    /// W per GB of memory, …), copied into the record's assumptions. Empty for measured devices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub factors: Vec<crate::accounting::Assumption>,
}

/// Why a sensor could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("{path}: permission denied. {advice}")]
    PermissionDenied { path: PathBuf, advice: String },
    #[error("{what} not found ({path})")]
    Missing { what: String, path: PathBuf },
    #[error("{path}: invalid value `{value}`: {reason}")]
    Invalid {
        path: PathBuf,
        value: String,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Library(String),
}

impl SensorError {
    /// Map an I/O error on `path` to the right variant.
    pub fn io(path: impl Into<PathBuf>, e: std::io::Error, advice: &str) -> SensorError {
        let path = path.into();
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => SensorError::PermissionDenied {
                path,
                advice: advice.to_string(),
            },
            std::io::ErrorKind::NotFound => SensorError::Missing {
                what: "file".into(),
                path,
            },
            _ => SensorError::Io { path, source: e },
        }
    }
}

/// One reading of every device of a sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Cumulative energy per device (same order as [`Sensor::devices`]) since the sensor opened.
    pub energy: Vec<Joules>,
    /// Instantaneous power per device where the source gives one.
    pub power: Vec<Option<Watts>>,
}

/// A source of energy readings for one or more devices.
pub trait Sensor: Send {
    /// Short name for messages (`rapl`, `nvml`, `cpu-model`, `ram-model`).
    fn name(&self) -> &'static str;
    /// The devices this sensor reports, in reading order. Fixed once opened.
    fn devices(&self) -> &[Device];
    /// Read every device now. `now` is the instant of the read, used for integration.
    fn read(&mut self, now: Instant) -> Result<Reading, SensorError>;
    /// Human-readable warnings noticed since the last call (wraps, resets, rejected values).
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// For GPU sensors: the process ids running on each device, in device order. `None` when
    /// the sensor cannot tell.
    fn device_pids(&mut self) -> Option<Vec<Vec<u32>>> {
        None
    }
    /// For GPU sensors: each process's utilisation (%) of each device since the previous call,
    /// `(pid, %)`, in device order. `None` when the sensor cannot tell.
    fn device_process_util(&mut self) -> Option<Vec<Vec<(u32, f64)>>> {
        None
    }
    /// Whether the sampler may leave this sensor unread for longer than its interval, and
    /// what should wake it sooner. `None` (the default): read every interval.
    fn idle(&mut self) -> Option<Idle> {
        None
    }
}

/// A sensor's leave to go unread (see [`Sensor::idle`]): a host-ledger follower whose
/// figures nobody reads live need only look at the ledger now and then, since the ledger's
/// reader counts for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idle {
    /// The longest the sensor may go unread.
    pub at_most: std::time::Duration,
    /// A descriptor that becomes readable when the sensor must be read at once (the
    /// reader's pidfd: its end). Valid until the sensor's next `read` or `idle` call.
    pub wake_fd: Option<std::os::fd::RawFd>,
}
