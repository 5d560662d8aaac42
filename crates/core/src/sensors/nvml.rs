//! GPU energy through NVML (the NVIDIA Management Library), one device per GPU.
//!
//! The library is loaded at run time by the `nvml-wrapper` crate (`dlopen` of
//! `libnvidia-ml.so.1`), so wattprint builds and runs on machines without NVIDIA hardware; there
//! [`NvmlSensor::open`] returns an error saying that GPU energy is not measured.
//!
//! Per GPU, the method is decided once, at open:
//! - [`Method::NvmlEnergy`]: `nvmlDeviceGetTotalEnergyConsumption`, "total energy consumption
//!   for this GPU in millijoules (mJ) since the driver was last reloaded" (nvml.h; Volta and
//!   newer). Differenced through [`crate::counter::EnergyChannel`] with no wrap range, so a
//!   decrease is a **reset** (driver reload, GPU reset): it is reported as a warning and the new
//!   raw value (energy since the reset) is counted; the energy between the previous reading and
//!   the reset is lost. Differences implying more than 2 × the enforced power limit (or
//!   [`DEFAULT_MAX_POWER_W`] when the limit is unknown) are rejected and reported.
//! - [`Method::NvmlPower`]: when the energy counter returns `NOT_SUPPORTED`,
//!   `nvmlDeviceGetPowerUsage` (mW) is integrated by the trapezoid rule
//!   ([`crate::counter::PowerIntegrator`]). On Ampere (except GA100) and newer GPUs NVML returns
//!   that power averaged over one second (nvml.h), so sampling faster than 1 Hz adds no detail.
//!
//! **MIG**: on a GPU in MIG mode the instances are listed ([`NvmlSensor::mig_instances`]) with
//! their share of the card: GPU-instance slices (`nvmlDeviceGetAttributes_v2`) over the card's
//! slices (the 1-slice profile's instance count, `nvmlDeviceGetGpuInstanceProfileInfo`). NVML
//! measures energy per card, never per instance: a run given MIG instances is charged that
//! share of its card (see [`NvmlSensor::mig_shares`] and docs/sensors-nvml.md).
//!
//! **Several processes on one card**: [`Sensor::device_process_util`] gives each process's SM
//! utilisation (`nvmlDeviceGetProcessUtilization`), which the host ledger uses to split a
//! card's dynamic energy among the runs holding it.
//!
//! Methodology notes: `docs/sensors-nvml.md`.

use crate::counter::{ChannelEvent, EnergyChannel, PowerIntegrator};
use crate::sensor::{Device, DeviceKind, Method, Reading, Sensor, SensorError};
use crate::units::{Joules, Watts};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Environment variable naming the NVML library to load (a path or a file name for `dlopen`).
pub const LIBRARY_ENV: &str = "WATTPRINT_NVML_LIBRARY";
/// The library `nvml-wrapper` loads by default on Linux (the NVIDIA driver installs it).
pub const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";
/// Plausibility bound for a GPU's power when NVML does not give its enforced power limit:
/// above any single GPU board sold to date (H100/B200 SXM boards are rated 700–1200 W).
pub const DEFAULT_MAX_POWER_W: f64 = 1500.0;

/// The library to load: `library` if given (front ends fill it from `--nvml-library` or
/// `$WATTPRINT_NVML_LIBRARY`), else [`DEFAULT_LIBRARY`].
fn resolve_library(library: Option<&Path>) -> OsString {
    if let Some(p) = library {
        return p.as_os_str().to_owned();
    }
    OsString::from(DEFAULT_LIBRARY)
}

/// Load the library and call `nvmlInit_v2`, mapping failures to errors that say what to do.
fn init(lib: &OsString) -> Result<Nvml, SensorError> {
    let shown = lib.to_string_lossy();
    Nvml::builder()
        .lib_path(lib.as_os_str())
        .init()
        .map_err(|e| match e {
            NvmlError::LibloadingError(err) => SensorError::Library(format!(
                "no NVIDIA driver found ({shown} not loadable: {err}): GPU energy not measured. \
             Install the NVIDIA driver, or set {LIBRARY_ENV} to the full path of \
             libnvidia-ml.so.1"
            )),
            NvmlError::FailedToLoadSymbol(s) => SensorError::Library(format!(
                "{shown} is not a usable NVML library ({s}): GPU energy not measured. \
             Set {LIBRARY_ENV} to the NVIDIA driver's libnvidia-ml.so.1"
            )),
            NvmlError::DriverNotLoaded => SensorError::Library(format!(
                "{shown} loaded but the NVIDIA kernel driver is not running (nvmlInit: driver not \
             loaded): GPU energy not measured. Check `nvidia-smi`"
            )),
            NvmlError::NoPermission => SensorError::PermissionDenied {
                path: PathBuf::from(lib),
                advice: "NVML was refused access to the NVIDIA driver: GPU energy not measured. \
                     Check the permissions of /dev/nvidia* for this user"
                    .into(),
            },
            other => SensorError::Library(format!(
                "NVML initialisation failed ({shown}: {other}): GPU energy not measured"
            )),
        })
}

/// How one GPU will be read, decided from what answers at open.
struct Plan {
    method: Method,
    note: String,
    max_power_w: f64,
}

fn plan(dev: &nvml_wrapper::Device<'_>) -> Plan {
    let limit_w = dev
        .enforced_power_limit()
        .ok()
        .filter(|mw| *mw > 0)
        .map(|mw| f64::from(mw) / 1000.0);
    let (max_power_w, bound) = match limit_w {
        Some(w) => (2.0 * w, format!("2 × enforced power limit {w} W")),
        None => (
            DEFAULT_MAX_POWER_W,
            format!("{DEFAULT_MAX_POWER_W} W, power limit unknown"),
        ),
    };
    match dev.total_energy_consumption() {
        Ok(_) => Plan {
            method: Method::NvmlEnergy,
            note: format!(
                "total energy counter (mJ since driver load); plausibility bound {max_power_w} W \
                 ({bound})"
            ),
            max_power_w,
        },
        Err(energy_err) => {
            let why = match energy_err {
                NvmlError::NotSupported => {
                    "energy counter not supported (needs Volta or newer)".to_string()
                }
                other => format!("energy counter unreadable ({other})"),
            };
            match dev.power_usage() {
                Ok(_) => Plan {
                    method: Method::NvmlPower,
                    note: format!(
                        "{why}: integrating power_usage (mW) by the trapezoid rule; NVML \
                         averages it over 1 s on Ampere (except GA100) and newer"
                    ),
                    max_power_w,
                },
                Err(power_err) => Plan {
                    method: Method::None,
                    note: format!(
                        "{why}, power unreadable ({power_err}): this GPU's energy is not measured"
                    ),
                    max_power_w,
                },
            }
        }
    }
}

enum Source {
    Energy {
        channel: EnergyChannel,
        last_raw: Option<u64>,
    },
    Power(PowerIntegrator),
    Unavailable,
}

struct GpuState {
    index: u32,
    /// Newest per-process utilisation sample seen, for the next query.
    util_seen: Option<u64>,
    /// A per-process utilisation failure was reported once for this GPU.
    util_warned: bool,
    source: Source,
    /// A read failed and the failure was reported; cleared (and reported) when reads resume.
    failing: bool,
    /// A process-list failure was reported once for this GPU.
    pids_warned: bool,
}

/// Energy of every NVIDIA GPU NVML enumerates, as cumulative joules since [`NvmlSensor::open`].
///
/// Devices are `gpu:<NVML index>`, kind [`DeviceKind::Gpu`], with name, UUID and index.
/// Energy per device is either the NVML energy counter differenced (mJ, [`Method::NvmlEnergy`])
/// or `power_usage` integrated by the trapezoid rule ([`Method::NvmlPower`]); a GPU where
/// neither can be read is listed with [`Method::None`] and reports 0 J (with a warning).
pub struct NvmlSensor {
    nvml: Nvml,
    library: String,
    driver_version: Option<String>,
    devices: Vec<Device>,
    mig: Vec<MigInstance>,
    gpus: Vec<GpuState>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for NvmlSensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlSensor")
            .field("library", &self.library)
            .field("driver_version", &self.driver_version)
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

impl NvmlSensor {
    /// Load NVML and enumerate the GPUs. `library` (from the front end's flag or
    /// `$WATTPRINT_NVML_LIBRARY`) overrides [`DEFAULT_LIBRARY`]. Takes a first reading as the baseline, so energy counts
    /// from here.
    ///
    /// Errors: the library cannot be loaded or is not NVML ([`SensorError::Library`], the
    /// message says GPU energy is not measured and how to fix it), access refused
    /// ([`SensorError::PermissionDenied`]), or NVML lists no GPU ([`SensorError::Unsupported`]).
    pub fn open(library: Option<&Path>) -> Result<NvmlSensor, SensorError> {
        let lib = resolve_library(library);
        let nvml = init(&lib)?;
        let shown = lib.to_string_lossy().into_owned();
        let driver_version = nvml.sys_driver_version().ok();
        let count = nvml.device_count().map_err(|e| {
            SensorError::Library(format!(
                "NVML ({shown}) could not count GPUs ({e}): GPU energy not measured"
            ))
        })?;
        if count == 0 {
            return Err(SensorError::Unsupported(format!(
                "NVML ({shown}, driver {}) lists no GPU: GPU energy not measured",
                driver_version.as_deref().unwrap_or("unknown")
            )));
        }
        let mut devices = Vec::new();
        let mut gpus = Vec::new();
        let mut warnings = Vec::new();
        let mut mig = Vec::new();
        for index in 0..count {
            let id = format!("gpu:{index}");
            let (device, source) = match nvml.device_by_index(index) {
                Ok(dev) => {
                    let p = plan(&dev);
                    let name = dev.name().unwrap_or_else(|e| {
                        warnings.push(format!("{id}: NVML could not give the GPU name ({e})"));
                        "unknown NVIDIA GPU".into()
                    });
                    let uuid = dev.uuid().ok();
                    match mig_instances(&dev, index) {
                        Ok(m) => mig.extend(m),
                        Err(e) => warnings.push(format!("{id} ({name}): {e}")),
                    }
                    let source = match p.method {
                        Method::NvmlEnergy => Source::Energy {
                            channel: EnergyChannel::new(None, 1e-3, p.max_power_w),
                            last_raw: None,
                        },
                        Method::NvmlPower => Source::Power(PowerIntegrator::new()),
                        _ => {
                            warnings.push(format!("{id} ({name}): {}", p.note));
                            Source::Unavailable
                        }
                    };
                    let device = Device {
                        id,
                        kind: DeviceKind::Gpu,
                        method: p.method,
                        name,
                        gpu_index: Some(index),
                        uuid,
                        idle_power_w: None,
                        factors: Vec::new(),
                    };
                    (device, source)
                }
                Err(e) => {
                    warnings.push(format!(
                        "{id}: NVML gave no handle for this GPU ({e}): its energy is not measured"
                    ));
                    let device = Device {
                        id,
                        kind: DeviceKind::Gpu,
                        method: Method::None,
                        name: "unknown NVIDIA GPU".into(),
                        gpu_index: Some(index),
                        uuid: None,
                        idle_power_w: None,
                        factors: Vec::new(),
                    };
                    (device, Source::Unavailable)
                }
            };
            devices.push(device);
            gpus.push(GpuState {
                index,
                util_seen: None,
                util_warned: false,
                source,
                failing: false,
                pids_warned: false,
            });
        }
        let mut sensor = NvmlSensor {
            nvml,
            library: shown,
            driver_version,
            devices,
            mig,
            gpus,
            warnings,
        };
        sensor.read_all(Instant::now());
        Ok(sensor)
    }

    /// The MIG instances of the GPUs in MIG mode, by parent GPU.
    pub fn mig_instances(&self) -> &[MigInstance] {
        &self.mig
    }

    /// The share of its card a job holds through the MIG instance its `CUDA_VISIBLE_DEVICES`
    /// names, as `(NVML index, share)`. CUDA enumerates one MIG instance per process (NVIDIA's
    /// MIG user guide), so only the first MIG entry counts, as [`Self::visible_gpus`] keeps it;
    /// cards named whole are not listed.
    pub fn mig_shares(&self, cuda_visible_devices: &str) -> Vec<(u32, f64)> {
        cuda_visible_devices
            .split(',')
            .map(str::trim)
            .find_map(|e| self.mig.iter().find(|m| m.uuid.eq_ignore_ascii_case(e)))
            .map(|m| vec![(m.parent_index, m.share())])
            .unwrap_or_default()
    }

    /// The library that was loaded, as given to `dlopen`.
    pub fn library(&self) -> &str {
        &self.library
    }

    /// The NVIDIA driver version NVML reports, if it does.
    pub fn driver_version(&self) -> Option<&str> {
        self.driver_version.as_deref()
    }

    /// [`parse_cuda_visible_devices_detailed`] with MIG instance UUIDs (`MIG-<uuid>`) resolved
    /// to their parent GPU through NVML (`nvmlDeviceGetHandleByUUID`, then
    /// `nvmlDeviceGetDeviceHandleFromMigDeviceHandle` and `nvmlDeviceGetIndex`).
    pub fn visible_gpus(&self, cuda_visible_devices: &str) -> Result<CudaVisible, String> {
        let gpus: Vec<(u32, String)> = self
            .devices
            .iter()
            .filter_map(|d| Some((d.gpu_index?, d.uuid.clone()?)))
            .collect();
        let resolve = |mig: &str| -> Option<u32> {
            let dev = self.nvml.device_by_uuid(mig).ok()?;
            dev.mig_parent_device().ok()?.index().ok()
        };
        parse_visible(cuda_visible_devices, &gpus, &resolve)
    }

    fn read_all(&mut self, now: Instant) -> Reading {
        let mut energy = Vec::with_capacity(self.gpus.len());
        let mut power = Vec::with_capacity(self.gpus.len());
        for (g, dev) in self.gpus.iter_mut().zip(&self.devices) {
            let label = format!("{} ({})", dev.id, dev.name);
            match &mut g.source {
                Source::Energy { channel, last_raw } => {
                    let res = self.nvml.device_by_index(g.index).and_then(|d| {
                        let raw = d.total_energy_consumption()?;
                        Ok((raw, d.power_usage().ok()))
                    });
                    match res {
                        Ok((raw, p)) => {
                            if g.failing {
                                g.failing = false;
                                self.warnings.push(format!(
                                    "{label}: NVML energy readings resumed; the counter covers \
                                     the gap"
                                ));
                            }
                            match channel.update(raw, now) {
                                ChannelEvent::Ok => {}
                                ChannelEvent::Reset | ChannelEvent::Wrapped => {
                                    self.warnings.push(format!(
                                        "{label}: NVML energy counter went back from {} mJ to \
                                         {raw} mJ (driver reload or GPU reset); counted the \
                                         {raw} mJ since the reset, the energy between the \
                                         previous reading and the reset is not measured",
                                        last_raw.map_or("?".into(), |v| v.to_string())
                                    ));
                                }
                                ChannelEvent::Rejected { implied_watts } => {
                                    self.warnings.push(format!(
                                        "{label}: NVML energy counter moved from {} mJ to {raw} \
                                         mJ, implying {implied_watts:.0} W, above the \
                                         plausibility bound for this GPU; that difference was \
                                         not counted",
                                        last_raw.map_or("?".into(), |v| v.to_string())
                                    ));
                                }
                            }
                            *last_raw = Some(raw);
                            power.push(p.map(Watts::from_milliwatts));
                        }
                        Err(e) => {
                            if !g.failing {
                                g.failing = true;
                                self.warnings.push(format!(
                                    "{label}: NVML energy read failed ({e}); energy stays at \
                                     its last value until a read succeeds, then the counter \
                                     difference covers the gap"
                                ));
                            }
                            power.push(None);
                        }
                    }
                    energy.push(channel.total());
                }
                Source::Power(integ) => {
                    match self
                        .nvml
                        .device_by_index(g.index)
                        .and_then(|d| d.power_usage())
                    {
                        Ok(mw) => {
                            if g.failing {
                                g.failing = false;
                                self.warnings.push(format!(
                                    "{label}: NVML power readings resumed; power was \
                                     interpolated linearly across the gap"
                                ));
                            }
                            let w = Watts::from_milliwatts(mw);
                            integ.update(w, now);
                            power.push(Some(w));
                        }
                        Err(e) => {
                            if !g.failing {
                                g.failing = true;
                                self.warnings.push(format!(
                                    "{label}: NVML power read failed ({e}); the gap will be \
                                     interpolated linearly between the readings around it"
                                ));
                            }
                            power.push(None);
                        }
                    }
                    energy.push(integ.total());
                }
                Source::Unavailable => {
                    energy.push(Joules(0.0));
                    power.push(None);
                }
            }
        }
        Reading { energy, power }
    }
}

impl Sensor for NvmlSensor {
    fn name(&self) -> &'static str {
        "nvml"
    }

    fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// Read every GPU. Per-GPU failures do not fail the read: they are reported through
    /// [`Sensor::take_warnings`] and the GPU's energy stays at its last value.
    fn read(&mut self, now: Instant) -> Result<Reading, SensorError> {
        Ok(self.read_all(now))
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// SM utilisation (%) of each process on each GPU since the previous call, from
    /// `nvmlDeviceGetProcessUtilization` (mean of its samples); `(pid, %)` sorted by pid. A GPU
    /// that gives none (no process, not supported, MIG mode) gets an empty list.
    fn device_process_util(&mut self) -> Option<Vec<Vec<(u32, f64)>>> {
        let mut out = Vec::with_capacity(self.gpus.len());
        for (g, dev) in self.gpus.iter_mut().zip(&self.devices) {
            let samples = self
                .nvml
                .device_by_index(g.index)
                .and_then(|d| d.process_utilization_stats(g.util_seen));
            let mut per_pid: Vec<(u32, f64, u32)> = Vec::new();
            match samples {
                Ok(v) => {
                    for s in v {
                        g.util_seen = Some(g.util_seen.unwrap_or(0).max(s.timestamp));
                        let sm = f64::from(s.sm_util.min(100));
                        match per_pid.iter_mut().find(|(p, _, _)| *p == s.pid) {
                            Some(e) => {
                                e.1 += sm;
                                e.2 += 1;
                            }
                            None => per_pid.push((s.pid, sm, 1)),
                        }
                    }
                }
                Err(NvmlError::NotFound) | Err(NvmlError::NotSupported) => {}
                Err(e) => {
                    if !g.util_warned {
                        g.util_warned = true;
                        self.warnings.push(format!(
                            "{} ({}): NVML gives no per-process utilisation ({e}); the runs on \
                             this GPU share its dynamic energy evenly",
                            dev.id, dev.name
                        ));
                    }
                }
            }
            let mut v: Vec<(u32, f64)> = per_pid
                .into_iter()
                .map(|(p, sum, n)| (p, sum / f64::from(n.max(1))))
                .collect();
            v.sort_by_key(|(p, _)| *p);
            out.push(v);
        }
        Some(out)
    }

    /// PIDs with a compute (CUDA) or graphics context on each GPU, sorted and deduplicated.
    /// A GPU whose process list cannot be read gets an empty list (reported once).
    fn device_pids(&mut self) -> Option<Vec<Vec<u32>>> {
        let mut out = Vec::with_capacity(self.gpus.len());
        for (g, dev) in self.gpus.iter_mut().zip(&self.devices) {
            let mut pids = Vec::new();
            let mut errors = Vec::new();
            match self.nvml.device_by_index(g.index) {
                Ok(d) => {
                    match d.running_compute_processes() {
                        Ok(v) => pids.extend(v.iter().map(|p| p.pid)),
                        Err(NvmlError::NotSupported) => {}
                        Err(e) => errors.push(format!("compute processes: {e}")),
                    }
                    match d.running_graphics_processes() {
                        Ok(v) => pids.extend(v.iter().map(|p| p.pid)),
                        Err(NvmlError::NotSupported) => {}
                        Err(e) => errors.push(format!("graphics processes: {e}")),
                    }
                }
                Err(e) => errors.push(format!("device handle: {e}")),
            }
            if !errors.is_empty() && !g.pids_warned {
                g.pids_warned = true;
                self.warnings.push(format!(
                    "{} ({}): NVML could not list the processes on this GPU ({}); they are not \
                     attributed to it",
                    dev.id,
                    dev.name,
                    errors.join("; ")
                ));
            }
            if !errors.is_empty() {
                pids.clear();
            }
            pids.sort_unstable();
            pids.dedup();
            out.push(pids);
        }
        Some(out)
    }
}

/// A MIG instance: the GPU it is part of and its share of that card.
#[derive(Debug, Clone, PartialEq)]
pub struct MigInstance {
    /// NVML index of the parent GPU.
    pub parent_index: u32,
    /// `MIG-…` UUID, as `nvidia-smi -L` and `CUDA_VISIBLE_DEVICES` name it.
    pub uuid: String,
    /// GPU-instance slices it holds.
    pub slices: u32,
    /// Slices of the whole card.
    pub card_slices: u32,
}

impl MigInstance {
    /// Its share of the card's energy: slices over the card's slices, at most 1.
    pub fn share(&self) -> f64 {
        if self.card_slices == 0 {
            0.0
        } else {
            (f64::from(self.slices) / f64::from(self.card_slices)).clamp(0.0, 1.0)
        }
    }
}

/// Largest MIG device count considered per GPU (NVML's maximum is 7 today).
const MAX_MIG: u32 = 16;

/// The MIG instances of `dev` (NVML index `index`) when it is in MIG mode; empty otherwise.
fn mig_instances(dev: &nvml_wrapper::Device<'_>, index: u32) -> Result<Vec<MigInstance>, String> {
    match dev.mig_mode() {
        Ok(m) if m.current == 1 => {}
        Ok(_) | Err(NvmlError::NotSupported) | Err(NvmlError::FailedToLoadSymbol(_)) => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(format!("NVML could not tell whether MIG is enabled ({e})")),
    }
    // The card's slices: how many 1-slice GPU instances (profile 0) it can hold.
    let card_slices = dev
        .profile_info(0)
        .map(|p| p.instance_count.saturating_mul(p.slice_count))
        .ok()
        .filter(|n| (1..=MAX_MIG).contains(n))
        .ok_or_else(|| {
            "MIG is enabled but NVML gives no slice count for the card: MIG instances are not \
             told apart, a run given one is charged the whole card"
                .to_string()
        })?;
    let max = dev.mig_device_count().unwrap_or(0).min(MAX_MIG);
    let mut out = Vec::new();
    for k in 0..max {
        let Ok(m) = dev.mig_device_by_index(k) else {
            continue; // an empty slot
        };
        let (Ok(uuid), Ok(attrs)) = (m.uuid(), m.attributes()) else {
            continue;
        };
        let slices = attrs.gpu_instance_slice_count.min(card_slices);
        out.push(MigInstance {
            parent_index: index,
            uuid,
            slices,
            card_slices,
        });
    }
    Ok(out)
}

/// What `wattprint doctor` shows about NVML.
#[derive(Debug, Clone, PartialEq)]
pub struct NvmlProbe {
    /// The library given to `dlopen` (see [`NvmlSensor::open`] for the order of choice).
    pub library: String,
    /// Whether the library loaded and initialised; the error text says what to do.
    pub loaded: Result<(), String>,
    pub driver_version: Option<String>,
    pub gpus: Vec<NvmlGpuProbe>,
}

/// One GPU as [`probe`] found it.
#[derive(Debug, Clone, PartialEq)]
pub struct NvmlGpuProbe {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    /// The method [`NvmlSensor::open`] would use for this GPU.
    pub method: Method,
    /// Why that method, and its caveats.
    pub note: String,
}

/// Load NVML like [`NvmlSensor::open`] and describe every GPU and the method that would be used,
/// without keeping the library open. Never fails: problems are in the returned fields.
pub fn probe(library: Option<&Path>) -> NvmlProbe {
    let lib = resolve_library(library);
    let mut out = NvmlProbe {
        library: lib.to_string_lossy().into_owned(),
        loaded: Ok(()),
        driver_version: None,
        gpus: Vec::new(),
    };
    let nvml = match init(&lib) {
        Ok(n) => n,
        Err(e) => {
            out.loaded = Err(e.to_string());
            return out;
        }
    };
    out.driver_version = nvml.sys_driver_version().ok();
    let count = match nvml.device_count() {
        Ok(c) => c,
        Err(e) => {
            out.loaded = Err(format!("NVML loaded but could not count GPUs ({e})"));
            return out;
        }
    };
    for index in 0..count {
        let gpu = match nvml.device_by_index(index) {
            Ok(dev) => {
                let p = plan(&dev);
                NvmlGpuProbe {
                    index,
                    name: dev.name().unwrap_or_else(|e| format!("unknown ({e})")),
                    uuid: dev.uuid().unwrap_or_else(|e| format!("unknown ({e})")),
                    method: p.method,
                    note: p.note,
                }
            }
            Err(e) => NvmlGpuProbe {
                index,
                name: "unknown".into(),
                uuid: "unknown".into(),
                method: Method::None,
                note: format!("NVML gave no handle for this GPU ({e}): energy not measured"),
            },
        };
        out.gpus.push(gpu);
    }
    out
}

/// The GPUs a job may use according to `CUDA_VISIBLE_DEVICES`, as NVML indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CudaVisible {
    /// NVML indices, in the order CUDA enumerates them.
    pub indices: Vec<u32>,
    /// When an entry was invalid: why, and that it and the entries after it were ignored (CUDA
    /// hides every device from the first invalid entry on).
    pub ignored: Option<String>,
}

/// NVML indices of the GPUs visible to a job whose `CUDA_VISIBLE_DEVICES` is `value`, given the
/// machine's GPUs as `(NVML index, UUID)`. Same as [`parse_cuda_visible_devices_detailed`]
/// without the note on ignored entries.
///
/// Call it only when the variable is set: unset means every GPU is visible.
pub fn parse_cuda_visible_devices(value: &str, gpus: &[(u32, String)]) -> Result<Vec<u32>, String> {
    parse_cuda_visible_devices_detailed(value, gpus).map(|v| v.indices)
}

/// Parse `CUDA_VISIBLE_DEVICES` with CUDA's documented semantics (CUDA C Programming Guide,
/// "CUDA Environment Variables"):
/// - a comma-separated sequence of GPU identifiers, enumerated in that order; surrounding
///   whitespace of each entry is ignored;
/// - an identifier is an index (`0,2`), a UUID as `nvidia-smi -L` prints it
///   (`GPU-8932f937-d72c-4106-c12f-20bd9faed9f6`) or a prefix of one that names a single GPU
///   (`GPU-8932f937`), or a MIG instance: `MIG-GPU-<gpu-uuid>/<gi>/<ci>` (driver < R470) maps to
///   its parent GPU by the UUID it contains; `MIG-<uuid>` (R470+) cannot be resolved without
///   NVML, use [`NvmlSensor::visible_gpus`] (here it is an `Err`);
/// - an invalid entry (unknown index, negative number, unmatched or ambiguous UUID, anything
///   else such as Slurm's `NoDevFiles`) hides it and **every entry after it**; the indices
///   before it are returned with a note in [`CudaVisible::ignored`];
/// - an empty value means no GPU is visible; a repeated GPU is treated as invalid (NVIDIA does
///   not document duplicates).
///
/// Numeric entries are taken as NVML indices. NVML numbers GPUs in PCI bus order; CUDA does
/// too only with `CUDA_DEVICE_ORDER=PCI_BUS_ID` (its default, `FASTEST_FIRST`, can differ on
/// machines with mixed GPU models). UUIDs are unambiguous.
pub fn parse_cuda_visible_devices_detailed(
    value: &str,
    gpus: &[(u32, String)],
) -> Result<CudaVisible, String> {
    parse_visible(value, gpus, &|_| None)
}

fn parse_visible(
    value: &str,
    gpus: &[(u32, String)],
    resolve_mig: &dyn Fn(&str) -> Option<u32>,
) -> Result<CudaVisible, String> {
    let mut indices: Vec<u32> = Vec::new();
    if value.trim().is_empty() {
        return Ok(CudaVisible {
            indices,
            ignored: None,
        });
    }
    for raw in value.split(',') {
        let entry = raw.trim();
        let found = match_entry(entry, gpus, resolve_mig)?;
        let invalid = match found {
            Ok(i) if indices.contains(&i) => Some(format!("GPU {i} appears twice")),
            Ok(i) => {
                indices.push(i);
                None
            }
            Err(why) => Some(why),
        };
        if let Some(why) = invalid {
            return Ok(CudaVisible {
                indices,
                ignored: Some(format!(
                    "CUDA_VISIBLE_DEVICES entry `{entry}` is invalid ({why}); CUDA ignores it and \
                     every entry after it"
                )),
            });
        }
    }
    Ok(CudaVisible {
        indices,
        ignored: None,
    })
}

/// One entry: `Ok(Ok(index))`, `Ok(Err(why invalid))`, or `Err` when it names a MIG instance
/// whose parent GPU cannot be found (valid for CUDA, but we cannot tell which GPU it is on).
fn match_entry(
    entry: &str,
    gpus: &[(u32, String)],
    resolve_mig: &dyn Fn(&str) -> Option<u32>,
) -> Result<Result<u32, String>, String> {
    if entry.is_empty() {
        return Ok(Err("empty entry".into()));
    }
    if entry.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(match entry.parse::<u32>() {
            Ok(i) if gpus.iter().any(|(g, _)| *g == i) => Ok(i),
            _ => Err(format!("no GPU with index {entry}")),
        });
    }
    if let Some(rest) = strip_prefix_ci(entry, "MIG-") {
        // Pre-R470 form: MIG-GPU-<parent uuid>/<gpu instance>/<compute instance>.
        if let Some((parent, _)) = rest.split_once('/') {
            if strip_prefix_ci(parent, "GPU-").is_some() {
                return Ok(gpus
                    .iter()
                    .find(|(_, u)| u.eq_ignore_ascii_case(parent))
                    .map(|(i, _)| *i)
                    .ok_or_else(|| format!("no GPU with UUID {parent}")));
            }
        }
        return match resolve_mig(entry) {
            Some(i) if gpus.iter().any(|(g, _)| *g == i) => Ok(Ok(i)),
            _ => Err(format!(
                "CUDA_VISIBLE_DEVICES entry `{entry}` is a MIG instance whose parent GPU could not \
                 be found through NVML; name the GPU by index or UUID (`nvidia-smi -L`) instead"
            )),
        };
    }
    if strip_prefix_ci(entry, "GPU-").is_some() {
        let matches: Vec<u32> = gpus
            .iter()
            .filter(|(_, u)| strip_prefix_ci(u, entry).is_some())
            .map(|(i, _)| *i)
            .collect();
        return Ok(match matches.as_slice() {
            [i] => Ok(*i),
            [] => Err(format!("no GPU UUID starts with {entry}")),
            _ => Err(format!("{entry} matches {} GPUs", matches.len())),
        });
    }
    Ok(Err("neither an index nor a GPU-/MIG- UUID".into()))
}

/// `s` without `prefix`, compared ASCII case-insensitively.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn gpus() -> Vec<(u32, String)> {
        vec![
            (0, "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6".into()),
            (1, "GPU-1a2b3c4d-0000-1111-2222-333344445555".into()),
            (2, "GPU-1a2b9999-0000-1111-2222-333344445555".into()),
        ]
    }

    #[test]
    fn strip_prefix_ci_handles_case_and_short_input() {
        assert_eq!(strip_prefix_ci("gpu-abc", "GPU-"), Some("abc"));
        assert_eq!(strip_prefix_ci("GP", "GPU-"), None);
        assert_eq!(strip_prefix_ci("éé", "G"), None);
    }

    #[test]
    fn library_argument_overrides_everything() {
        let p = Path::new("/opt/x/libnvidia-ml.so.1");
        assert_eq!(resolve_library(Some(p)), OsString::from(p));
    }

    #[test]
    fn ambiguous_prefix_stops_the_list() {
        let v = parse_cuda_visible_devices_detailed("0,GPU-1a2b", &gpus()).unwrap();
        assert_eq!(v.indices, vec![0]);
        assert!(v.ignored.unwrap().contains("matches 2 GPUs"));
        let v = parse_cuda_visible_devices_detailed("GPU-1a2b3,0", &gpus()).unwrap();
        assert_eq!(v.indices, vec![1, 0]);
        assert_eq!(v.ignored, None);
    }
}
