//! Which sensor answers for each component on this machine, and why.
//!
//! Preference: CPU — RAPL package counters, else the TDP × load model; RAM — the RAPL DRAM
//! domain, else the W/GB model; GPU — NVML. Every fallback is reported once, with the reason
//! and the fix, and the method actually used is what the record says.

use crate::attribution::ProcessTree;
use crate::host::HostPaths;
use crate::record::{GpuInfo, HostInfo};
use crate::sampler::{Attributor, Scope, WholeMachine};
use crate::sensor::{DeviceKind, Method, Sensor, SensorError};
use crate::sensors::cpu_model::{CpuModelSensor, TdpSource};
use crate::sensors::nvml::NvmlSensor;
use crate::sensors::ram_model::RamModelSensor;
use crate::sensors::rapl::RaplSensor;
use crate::{cpuinfo, procfs};
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// User-given CPU TDP (W per package) for the CPU model.
    pub cpu_tdp_w: Option<f64>,
    /// libnvidia-ml path (else the system's).
    pub nvml_library: Option<PathBuf>,
    /// The job's `CUDA_VISIBLE_DEVICES`, if set: the GPUs process scope charges.
    pub cuda_visible_devices: Option<String>,
    /// libamd_smi path (`--amdsmi-library`, else `$WATTPRINT_AMDSMI_LIBRARY`; else the system's
    /// where the amdgpu driver is loaded).
    pub amdsmi_library: Option<PathBuf>,
    /// librocm_smi64 path (`$WATTPRINT_ROCM_SMI_LIBRARY`), used where amdsmi is absent.
    pub rocm_smi_library: Option<PathBuf>,
    /// The job's `ROCR_VISIBLE_DEVICES` and `HIP_VISIBLE_DEVICES`, if set.
    pub rocr_visible_devices: Option<String>,
    pub hip_visible_devices: Option<String>,
    /// libze_loader path (`$WATTPRINT_LEVEL_ZERO_LIBRARY`; else the system's where the i915 or
    /// xe driver is loaded).
    pub level_zero_library: Option<PathBuf>,
    /// The job's `ZE_AFFINITY_MASK`, if set: the Intel GPUs process scope charges.
    pub ze_affinity_mask: Option<String>,
}

impl DiscoverOptions {
    /// Options as a front end resolves them: a flag wins over `$WATTPRINT_NVML_LIBRARY`;
    /// `CUDA_VISIBLE_DEVICES` from the job's environment; the AMD libraries from their
    /// variables (a front end's `--amdsmi-library` then replaces `amdsmi_library`).
    pub fn resolve(
        env: &crate::env::Env,
        cpu_tdp_w: Option<f64>,
        nvml_library: Option<PathBuf>,
    ) -> DiscoverOptions {
        DiscoverOptions {
            cpu_tdp_w,
            nvml_library: nvml_library.or_else(|| env.path(crate::sensors::nvml::LIBRARY_ENV)),
            cuda_visible_devices: env.get("CUDA_VISIBLE_DEVICES").map(str::to_string),
            amdsmi_library: env.path(crate::sensors::amdsmi::LIBRARY_ENV),
            rocm_smi_library: env.path(crate::sensors::rocm_smi::LIBRARY_ENV),
            rocr_visible_devices: env
                .get(crate::sensors::amd_visible::ROCR_VAR)
                .map(str::to_string),
            hip_visible_devices: env
                .get(crate::sensors::amd_visible::HIP_VAR)
                .map(str::to_string),
            level_zero_library: env.path(crate::sensors::level_zero::LIBRARY_ENV),
            ze_affinity_mask: env
                .get(crate::sensors::level_zero::AFFINITY_VAR)
                .map(str::to_string),
        }
    }
}

impl DiscoverOptions {
    /// A front end's `--amdsmi-library`, which wins over `$WATTPRINT_AMDSMI_LIBRARY`.
    pub fn with_amdsmi_library(mut self, library: Option<PathBuf>) -> DiscoverOptions {
        if library.is_some() {
            self.amdsmi_library = library;
        }
        self
    }
}

/// One line of `wattprint doctor`: a component, the method it will use, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentReport {
    pub component: DeviceKind,
    pub method: Method,
    pub detail: String,
}

/// A sensor source that was looked for, and what was found.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceReport {
    pub source: &'static str,
    pub found: bool,
    pub detail: String,
}

pub struct Discovery {
    pub sensors: Vec<Box<dyn Sensor>>,
    pub components: Vec<ComponentReport>,
    pub sources: Vec<SourceReport>,
    /// Loud messages to show once (unreadable counters, unknown CPU…).
    pub warnings: Vec<String>,
    pub gpus: Vec<GpuInfo>,
    /// NVML indices the job may use per `CUDA_VISIBLE_DEVICES`, when it is set.
    pub visible_gpus: Option<Vec<u32>>,
    /// `(NVML index, share)` of the cards the job holds through the MIG instances its
    /// `CUDA_VISIBLE_DEVICES` names: it is charged that share of each.
    pub gpu_shares: Vec<(u32, f64)>,
    /// `/proc/cpuinfo` as read once here (model, sockets, hypervisor flag), when readable.
    pub cpu_info: Option<cpuinfo::CpuInfo>,
}

fn describe_err(e: &SensorError) -> String {
    e.to_string()
}

pub fn discover(paths: &HostPaths, opts: &DiscoverOptions) -> Discovery {
    let mut d = Discovery {
        sensors: Vec::new(),
        components: Vec::new(),
        sources: Vec::new(),
        warnings: Vec::new(),
        gpus: Vec::new(),
        visible_gpus: None,
        gpu_shares: Vec::new(),
        cpu_info: cpuinfo::read_cpuinfo(paths).ok(),
    };

    // CPU (and maybe DRAM) from RAPL.
    let mut have_dram = false;
    let mut have_cpu = false;
    match RaplSensor::open(paths) {
        Ok(s) => {
            let pk: Vec<String> = s
                .devices()
                .iter()
                .filter(|x| x.kind == DeviceKind::Cpu)
                .map(|x| x.id.clone())
                .collect();
            let dr: Vec<String> = s
                .devices()
                .iter()
                .filter(|x| x.kind == DeviceKind::Ram)
                .map(|x| x.id.clone())
                .collect();
            have_cpu = !pk.is_empty();
            have_dram = !dr.is_empty();
            d.sources.push(SourceReport {
                source: "rapl",
                found: true,
                detail: format!(
                    "powercap RAPL readable under {}: {}",
                    paths.powercap().display(),
                    pk.iter()
                        .chain(dr.iter())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
            d.components.push(ComponentReport {
                component: DeviceKind::Cpu,
                method: Method::Rapl,
                detail: format!("RAPL package counters ({})", pk.join(", ")),
            });
            if have_dram {
                d.components.push(ComponentReport {
                    component: DeviceKind::Ram,
                    method: Method::RaplDram,
                    detail: format!("RAPL DRAM counters ({})", dr.join(", ")),
                });
            }
            let idle = rapl_idle(d.cpu_info.as_ref());
            if let (Some((w, model)), Some(c)) = (
                &idle,
                d.components
                    .iter_mut()
                    .find(|c| c.component == DeviceKind::Cpu),
            ) {
                c.detail.push_str(&format!(
                    "; static (idle) part estimated at {w:.1} W per package ({model} TDP × 0.211)"
                ));
            }
            d.sensors.push(Box::new(WithIdle::new(Box::new(s), |dev| {
                (dev.kind == DeviceKind::Cpu)
                    .then(|| idle.as_ref().map(|(w, _)| *w))
                    .flatten()
            })));
        }
        Err(e) => {
            let detail = describe_err(&e);
            match e {
                SensorError::PermissionDenied { .. } => d.warnings.push(format!(
                    "RAPL energy counters exist but cannot be read: {detail} Until then CPU energy is estimated with the TDP × load model (method tdp-model)."
                )),
                // No powercap/RAPL at all (VMs, non-x86): the method says it; doctor explains.
                SensorError::Missing { .. } | SensorError::Unsupported(_) => {}
                _ => d.warnings.push(format!(
                    "RAPL energy counters are unusable ({detail}); CPU energy is estimated with the TDP × load model (method tdp-model)"
                )),
            }
            d.sources.push(SourceReport {
                source: "rapl",
                found: false,
                detail,
            });
        }
    }
    if !have_cpu {
        match CpuModelSensor::open(paths, opts.cpu_tdp_w) {
            Ok(mut s) => {
                let src = match s.tdp_source() {
                    TdpSource::Table { model, source } => match s.vm_share() {
                        Some(v) => format!(
                            "TDP of {model} from the CPU table ({source}) × this VM's share of \
                             the package, {} of {} logical CPUs",
                            v.vm_threads,
                            v.package.threads()
                        ),
                        None => format!("TDP of {model} from the CPU table ({source})"),
                    },
                    TdpSource::User => "TDP given by --cpu-tdp".to_string(),
                    TdpSource::DefaultPerThread {
                        threads,
                        watts_per_thread,
                    } => {
                        format!(
                            "default {watts_per_thread} W per thread × {threads} threads (CPU not in the table)"
                        )
                    }
                };
                for w in s.take_warnings() {
                    if !d.warnings.contains(&w) {
                        d.warnings.push(w);
                    }
                }
                d.components.push(ComponentReport {
                    component: DeviceKind::Cpu,
                    method: Method::TdpModel,
                    detail: format!(
                        "estimated: idle {:.1} W to max {:.1} W linear in CPU load; {src}",
                        s.idle_power().0,
                        s.max_power().0
                    ),
                });
                d.sensors.push(Box::new(s));
            }
            Err(e) => {
                d.warnings.push(format!(
                    "CPU energy not measured: neither RAPL nor the CPU model is usable ({e})"
                ));
                d.components.push(ComponentReport {
                    component: DeviceKind::Cpu,
                    method: Method::None,
                    detail: e.to_string(),
                });
            }
        }
    }
    if !have_dram {
        match RamModelSensor::open(paths) {
            Ok(s) => {
                d.components.push(ComponentReport {
                    component: DeviceKind::Ram,
                    method: Method::Model,
                    detail: "estimated: 0.3725 W per GB of memory in use (Green Algorithms)"
                        .to_string(),
                });
                d.sensors.push(Box::new(s));
            }
            Err(e) => {
                d.warnings.push(format!("RAM energy not estimated: {e}"));
                d.components.push(ComponentReport {
                    component: DeviceKind::Ram,
                    method: Method::None,
                    detail: e.to_string(),
                });
            }
        }
    }

    // GPUs through NVML.
    match NvmlSensor::open(opts.nvml_library.as_deref()) {
        Ok(s) => {
            let mut methods = Vec::new();
            for g in s.devices() {
                d.gpus.push(GpuInfo {
                    index: g.gpu_index.unwrap_or(0),
                    name: g.name.clone(),
                    uuid: g.uuid.clone().unwrap_or_default(),
                });
                methods.push(format!("{} {} ({})", g.id, g.name, g.method.as_str()));
            }
            methods.extend(crate::discovery_accelerators::mig_lines(s.mig_instances()));
            let method = s
                .devices()
                .first()
                .map(|g| g.method)
                .unwrap_or(Method::None);
            d.sources.push(SourceReport {
                source: "nvml",
                found: true,
                detail: format!("{} GPU(s)", s.devices().len()),
            });
            d.components.push(ComponentReport {
                component: DeviceKind::Gpu,
                method,
                detail: methods.join("; "),
            });
            if let Some(v) = &opts.cuda_visible_devices {
                match s.visible_gpus(v) {
                    Ok(cv) => {
                        if let Some(why) = cv.ignored {
                            d.warnings.push(format!("CUDA_VISIBLE_DEVICES={v}: {why}"));
                        }
                        d.visible_gpus = Some(cv.indices);
                        d.gpu_shares = s.mig_shares(v);
                    }
                    Err(e) => d.warnings.push(format!(
                        "CUDA_VISIBLE_DEVICES={v} not understood ({e}); process scope uses the GPUs the job's processes hold"
                    )),
                }
            }
            d.sensors.push(Box::new(WithIdle::new(
                Box::new(s),
                crate::discovery_accelerators::gpu_idle_w,
            )));
        }
        Err(e) => {
            d.sources.push(SourceReport {
                source: "nvml",
                found: false,
                detail: e.to_string(),
            });
            d.components.push(ComponentReport {
                component: DeviceKind::Gpu,
                method: Method::None,
                detail: format!("no GPU measured: {e}"),
            });
        }
    }
    crate::discovery_accelerators::discover_amd(paths, opts, &mut d);
    crate::discovery_accelerators::discover_intel(paths, opts, &mut d);
    d
}

/// Idle power per RAPL package estimated from the CPU table: TDP × the CPU model's idle ratio
/// (see sensors-cpu-ram-models.md). `None` when the CPU is not in the table.
fn rapl_idle(ci: Option<&cpuinfo::CpuInfo>) -> Option<(f64, String)> {
    let ci = ci?;
    match crate::cpu_table::lookup(ci.models.first()?) {
        crate::cpu_table::CpuMatch::Found { tdp_w, model, .. } => {
            Some((tdp_w * crate::sensors::cpu_model::IDLE_FRACTION, model))
        }
        _ => None,
    }
}

/// A sensor whose devices carry an idle power estimated from the factor tables, so that the
/// accounting can split measured energy into static and dynamic parts.
pub(crate) struct WithIdle {
    inner: Box<dyn Sensor>,
    devices: Vec<crate::sensor::Device>,
}

impl WithIdle {
    pub(crate) fn new(
        inner: Box<dyn Sensor>,
        idle: impl Fn(&crate::sensor::Device) -> Option<f64>,
    ) -> WithIdle {
        let devices = inner
            .devices()
            .iter()
            .map(|d| {
                let mut d = d.clone();
                if d.idle_power_w.is_none() {
                    d.idle_power_w = idle(&d);
                }
                d
            })
            .collect();
        WithIdle { inner, devices }
    }
}

impl Sensor for WithIdle {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn devices(&self) -> &[crate::sensor::Device] {
        &self.devices
    }
    fn read(&mut self, now: std::time::Instant) -> Result<crate::sensor::Reading, SensorError> {
        self.inner.read(now)
    }
    fn take_warnings(&mut self) -> Vec<String> {
        self.inner.take_warnings()
    }
    fn device_pids(&mut self) -> Option<Vec<Vec<u32>>> {
        self.inner.device_pids()
    }
    fn device_process_util(&mut self) -> Option<Vec<Vec<(u32, f64)>>> {
        self.inner.device_process_util()
    }
}

/// Host facts for the run record.
pub fn host_info(paths: &HostPaths, d: &Discovery) -> HostInfo {
    let ci = d.cpu_info.as_ref();
    let ram_gb = procfs::read_meminfo(paths)
        .map(|m| m.total_bytes as f64 / 1e9)
        .unwrap_or(0.0);
    HostInfo {
        hostname: hostname(),
        cpu_model: ci
            .as_ref()
            .and_then(|c| c.models.first().cloned())
            .unwrap_or_else(|| "unknown".into()),
        logical_cpus: ci
            .as_ref()
            .map(|c| c.logical_cpus)
            .filter(|n| *n > 0)
            .or_else(|| procfs::logical_cpus(paths).ok())
            .unwrap_or(0),
        ram_gb,
        gpus: d.gpus.clone(),
    }
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The attribution policy for a scope.
pub fn attributor(
    scope: Scope,
    paths: &HostPaths,
    job_pid: Arc<AtomicU32>,
    d: &Discovery,
) -> Box<dyn Attributor> {
    match scope {
        Scope::Machine => Box::new(WholeMachine),
        Scope::Process => Box::new(
            ProcessTree::new(paths.clone(), job_pid, d.visible_gpus.clone())
                .with_gpu_shares(d.gpu_shares.clone()),
        ),
    }
}
