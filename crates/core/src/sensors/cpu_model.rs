//! CPU power modelled from TDP and load: the fallback when no RAPL counter is readable.
//!
//! Model (linear idle-to-max, as in Cloud Carbon Footprint's compute estimator,
//! `packages/core/src/compute/ComputeEstimator.ts`, Apache-2.0):
//!
//! ```text
//! P(load) = Pmin + load × (Pmax − Pmin)
//! Pmax    = TDP per package × sockets
//! Pmin    = IDLE_FRACTION × Pmax,   IDLE_FRACTION = 0.74 / 3.5 ≈ 0.211
//! ```
//!
//! The idle fraction is CCF's AWS fallback for an unknown microarchitecture, `MIN_WATTS_AVG` =
//! 0.74 W per vCPU over `MAX_WATTS_AVG` = 3.5 W per vCPU (`AwsFootprintEstimationConstants.ts`
//! at commit b7a049c, 2024; CCF © 2021 Thoughtworks, Apache-2.0).
//!
//! `load` = Δbusy / Δtotal of the aggregate `cpu` line of `/proc/stat` between two reads,
//! clamped to 0..1 (see [`crate::procfs::CpuTimes`]). Energy accumulates as P(load of the
//! interval) × Δt: piecewise constant, which is exact for this model given the load of each
//! interval.
//!
//! TDP comes from, in order: the user's `--cpu-tdp` (W per package), the shipped table
//! ([`crate::cpu_table`]), else a per-thread default of [`DEFAULT_WATTS_PER_THREAD`] (CCF's
//! `MAX_WATTS_AVG`, 3.5 W per vCPU) × logical CPUs, with a loud warning.

use crate::cpu_table::{self, CpuMatch, PackageThreads};
use crate::cpuinfo::{self, CpuInfo};
use crate::host::HostPaths;
use crate::procfs::{self, CpuTimes};
use crate::sensor::{Device, DeviceKind, Method, Reading, Sensor, SensorError};
use crate::units::{Joules, Watts};
use std::path::PathBuf;
use std::time::Instant;

/// CCF `MIN_WATTS_AVG` (AWS), W per vCPU.
pub const CCF_MIN_WATTS_AVG: f64 = 0.74;
/// CCF `MAX_WATTS_AVG` (AWS), W per vCPU.
pub const CCF_MAX_WATTS_AVG: f64 = 3.5;
/// Idle power as a fraction of maximum power: `0.74 / 3.5` ≈ 0.2114.
pub const IDLE_FRACTION: f64 = CCF_MIN_WATTS_AVG / CCF_MAX_WATTS_AVG;
/// Maximum power per logical CPU when the CPU model's TDP is unknown (CCF `MAX_WATTS_AVG`).
pub const DEFAULT_WATTS_PER_THREAD: f64 = CCF_MAX_WATTS_AVG;

/// How the TDP used by the model was chosen. Part of the run record.
#[derive(Debug, Clone, PartialEq)]
pub enum TdpSource {
    /// Found in the shipped table: the table's model name and data source.
    Table { model: String, source: &'static str },
    /// Given by the user (`--cpu-tdp`).
    User,
    /// Model unknown or ambiguous: `threads × watts_per_thread`.
    DefaultPerThread {
        threads: usize,
        watts_per_thread: f64,
    },
}

/// Every factor of the CPU TDP model, for the record's assumptions.
fn cpu_model_factors(
    tdp: &TdpSource,
    per_package_w: f64,
    vm: &Option<VmShare>,
    max_w: f64,
    idle_w: f64,
) -> Vec<crate::accounting::Assumption> {
    use crate::accounting::Assumption;
    let mut v = Vec::new();
    match tdp {
        TdpSource::Table { model, source } => v.push(Assumption::new(
            "cpu TDP per package",
            per_package_w,
            "W",
            format!("CPU TDP table row '{model}' ({source})"),
        )),
        TdpSource::User => v.push(Assumption::new(
            "cpu TDP per package",
            per_package_w,
            "W",
            "given by the user (--cpu-tdp)",
        )),
        TdpSource::DefaultPerThread {
            threads,
            watts_per_thread,
        } => {
            v.push(Assumption::new(
                "cpu power per logical CPU (fallback)",
                *watts_per_thread,
                "W",
                format!(
                    "CPU model unknown: Cloud Carbon Footprint's average maximum per vCPU (MAX_WATTS_AVG) × {threads} logical CPUs"
                ),
            ));
        }
    }
    if let Some(s) = vm {
        v.push(Assumption::new(
            "cpu package share of this VM",
            s.fraction,
            "fraction",
            format!(
                "{} of the package's {} logical CPUs",
                s.vm_threads,
                s.package.threads()
            ),
        ));
    }
    v.push(Assumption::new(
        "cpu model maximum power",
        max_w,
        "W",
        "TDP model at full load",
    ));
    v.push(Assumption::new(
        "cpu model idle fraction",
        IDLE_FRACTION,
        "fraction of maximum",
        format!(
            "Cloud Carbon Footprint MIN_WATTS_AVG / MAX_WATTS_AVG = 0.74 / 3.5; idle {idle_w:.3} W"
        ),
    ));
    v
}

/// In a virtual machine, the share of one CPU package the model charges: the VM's logical CPUs
/// over the package's. Part of the run record (through the method detail).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VmShare {
    /// Logical CPUs this VM sees.
    pub vm_threads: usize,
    /// Logical CPUs of one package of the host's CPU, and how that is known.
    pub package: PackageThreads,
    /// `vm_threads / package threads`.
    pub fraction: f64,
}

/// The TDP model as a [`Sensor`]: one device `cpu:model`.
#[derive(Debug)]
pub struct CpuModelSensor {
    paths: HostPaths,
    devices: Vec<Device>,
    info: CpuInfo,
    tdp_source: TdpSource,
    /// TDP per package (W) the model uses.
    tdp_per_package_w: f64,
    /// In a VM with a table TDP: the share of the package charged.
    vm_share: Option<VmShare>,
    max_w: f64,
    idle_w: f64,
    /// CPU times and instant of the previous read (None before the first read).
    last: Option<(CpuTimes, Instant)>,
    /// CPU times read at open, to give the first read a power value.
    at_open: CpuTimes,
    /// Load of the last interval that saw clock ticks.
    last_load: Option<f64>,
    energy_j: f64,
    warnings: Vec<String>,
}

impl CpuModelSensor {
    /// Read `/proc/cpuinfo` and `/proc/stat` and choose the TDP.
    ///
    /// `tdp_override_w`: TDP per CPU package in W (the `--cpu-tdp` flag), multiplied by the
    /// number of sockets; it must be a positive finite number.
    pub fn open(paths: &HostPaths, tdp_override_w: Option<f64>) -> Result<Self, SensorError> {
        let info = cpuinfo::read_cpuinfo(paths)?;
        let at_open = procfs::read_cpu_times(paths)?;
        // /proc/stat counts online CPUs; cpuinfo lists the same ones. Prefer stat if readable.
        let threads = procfs::logical_cpus(paths).unwrap_or(info.logical_cpus);
        let model = info.primary_model().to_string();
        let mut warnings = Vec::new();
        if info.models.len() > 1 {
            warnings.push(format!(
                "this machine reports several CPU models ({}); the TDP model uses the first",
                info.models.join(", ")
            ));
        }
        let sockets = info.sockets.max(1);
        let default = |warnings: &mut Vec<String>, why: String| {
            let per_package = threads as f64 * DEFAULT_WATTS_PER_THREAD / sockets as f64;
            warnings.push(format!(
                "{why}; CPU power is modelled with a default of {DEFAULT_WATTS_PER_THREAD} W per \
                 logical CPU × {threads} = {:.1} W at full load (Cloud Carbon Footprint's \
                 average per vCPU). This can be far off: pass --cpu-tdp W (TDP per CPU package, \
                 from the vendor's specification) for a better estimate",
                threads as f64 * DEFAULT_WATTS_PER_THREAD
            ));
            (
                per_package,
                TdpSource::DefaultPerThread {
                    threads,
                    watts_per_thread: DEFAULT_WATTS_PER_THREAD,
                },
            )
        };
        let mut table_cores = None;
        let (tdp_per_package_w, tdp_source) = match tdp_override_w {
            Some(w) if w.is_finite() && w > 0.0 => (w, TdpSource::User),
            Some(w) => {
                return Err(SensorError::Invalid {
                    path: PathBuf::from("--cpu-tdp"),
                    value: w.to_string(),
                    reason: "the CPU TDP must be a positive number of watts per CPU package, \
                             e.g. --cpu-tdp 205"
                        .into(),
                })
            }
            None => match cpu_table::lookup(&model) {
                CpuMatch::Found {
                    model: m,
                    tdp_w,
                    source,
                    cores,
                } => {
                    table_cores = cores;
                    (tdp_w, TdpSource::Table { model: m, source })
                }
                CpuMatch::Ambiguous { candidates } => {
                    let list = candidates
                        .iter()
                        .map(|(m, w)| format!("{m} ({w} W)"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    default(
                        &mut warnings,
                        format!(
                            "CPU model \"{model}\" matches several TDP table rows with different \
                             TDPs: {list}"
                        ),
                    )
                }
                CpuMatch::Unknown if model == "unknown" => default(
                    &mut warnings,
                    "/proc/cpuinfo names no CPU model".to_string(),
                ),
                CpuMatch::Unknown => default(
                    &mut warnings,
                    format!(
                        "CPU model \"{model}\" is not in wattprint's TDP table (or names no \
                         model number)"
                    ),
                ),
            },
        };
        // A virtual machine holds part of the host's CPU: with a table TDP it is charged its
        // share of the package (its logical CPUs over the package's), and when the package's
        // size is unknown the per-thread default applies rather than the whole package.
        let mut vm_share = None;
        let (tdp_per_package_w, tdp_source) = match (&tdp_source, info.hypervisor) {
            (TdpSource::Table { model: m, .. }, true) => {
                match cpu_table::package_threads(m, table_cores) {
                    Some(package) => {
                        vm_share = Some(VmShare {
                            vm_threads: threads,
                            package,
                            fraction: threads as f64 / f64::from(package.threads()),
                        });
                        (tdp_per_package_w, tdp_source)
                    }
                    None => default(
                        &mut warnings,
                        format!(
                            "running in a virtual machine on a {m}, whose logical CPUs per \
                             package wattprint does not know, so the VM's share of its \
                             {tdp_per_package_w} W TDP cannot be computed"
                        ),
                    ),
                }
            }
            _ => (tdp_per_package_w, tdp_source),
        };
        let max_w = match &vm_share {
            Some(v) => tdp_per_package_w * v.fraction,
            None => tdp_per_package_w * sockets as f64,
        };
        let idle_w = IDLE_FRACTION * max_w;
        if let Some(v) = &vm_share {
            let how = match v.package {
                PackageThreads::Listed { source, .. } => {
                    format!("Cloud Carbon Coefficients' host CPU list ({source})")
                }
                PackageThreads::TwiceCores { cores } => {
                    format!("2 per core × {cores} cores, assuming hyper-threading")
                }
            };
            warnings.push(format!(
                "running in a virtual machine: the CPU TDP model charges this VM's share of the \
                 package, {} of its {} logical CPUs ({how}) × {tdp_per_package_w} W = {max_w:.1} W \
                 at full load, assuming each vCPU is one hardware thread. Pass --cpu-tdp W to \
                 charge W × sockets instead",
                v.vm_threads,
                v.package.threads()
            ));
        } else if info.hypervisor && matches!(tdp_source, TdpSource::User) {
            warnings.push(format!(
                "running in a virtual machine ({threads} logical CPUs): --cpu-tdp charges \
                 {max_w:.0} W at full load to this VM; if the VM holds only part of the host's \
                 CPU, give --cpu-tdp the VM's share of it"
            ));
        }
        let factors = cpu_model_factors(&tdp_source, tdp_per_package_w, &vm_share, max_w, idle_w);
        let device = Device {
            id: "cpu:model".into(),
            kind: DeviceKind::Cpu,
            method: Method::TdpModel,
            name: model,
            gpu_index: None,
            uuid: None,
            idle_power_w: Some(idle_w),
            factors,
        };
        Ok(CpuModelSensor {
            paths: paths.clone(),
            devices: vec![device],
            info,
            tdp_source,
            tdp_per_package_w,
            vm_share,
            max_w,
            idle_w,
            last: None,
            at_open,
            last_load: None,
            energy_j: 0.0,
            warnings,
        })
    }

    /// How the TDP was chosen.
    pub fn tdp_source(&self) -> &TdpSource {
        &self.tdp_source
    }

    /// In a virtual machine with a table TDP: the share of the package charged.
    pub fn vm_share(&self) -> Option<&VmShare> {
        self.vm_share.as_ref()
    }

    /// Pmax: TDP per package × sockets.
    pub fn max_power(&self) -> Watts {
        Watts(self.max_w)
    }

    /// Pmin: [`IDLE_FRACTION`] × Pmax.
    pub fn idle_power(&self) -> Watts {
        Watts(self.idle_w)
    }

    /// TDP per package used by the model (W).
    pub fn tdp_per_package(&self) -> Watts {
        Watts(self.tdp_per_package_w)
    }

    /// What `/proc/cpuinfo` said.
    pub fn cpu_info(&self) -> &CpuInfo {
        &self.info
    }

    /// Load (0..1) of the latest interval in which clock ticks elapsed.
    pub fn last_load(&self) -> Option<f64> {
        self.last_load
    }

    /// Modelled power at `load` (clamped to 0..1): `Pmin + load × (Pmax − Pmin)`.
    pub fn power_at(&self, load: f64) -> Watts {
        let l = if load.is_finite() {
            load.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Watts(self.idle_w + l * (self.max_w - self.idle_w))
    }
}

impl Sensor for CpuModelSensor {
    fn name(&self) -> &'static str {
        "cpu-model"
    }

    fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// The first read only starts the clock (energy 0; power from the load since open). Each
    /// later read adds `P(load of the interval) × Δt`. An interval without clock ticks (reads
    /// closer than 1/USER_HZ) reuses the previous load.
    fn read(&mut self, now: Instant) -> Result<Reading, SensorError> {
        let times = procfs::read_cpu_times(&self.paths)?;
        let power = match self.last {
            None => {
                let load = times.load_since(&self.at_open);
                if load.is_some() {
                    self.last_load = load;
                }
                load.map(|l| self.power_at(l))
            }
            Some((prev, t_prev)) => {
                if let Some(l) = times.load_since(&prev) {
                    self.last_load = Some(l);
                }
                let p = self.power_at(self.last_load.unwrap_or(0.0));
                let dt = now.saturating_duration_since(t_prev).as_secs_f64();
                self.energy_j += p.0 * dt;
                Some(p)
            }
        };
        self.last = Some((times, now));
        Ok(Reading {
            energy: vec![Joules(self.energy_j)],
            power: vec![power],
        })
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}
