//! Discovery of the GPUs that are not NVIDIA's: AMD through amdsmi, else ROCm SMI; Intel
//! through Level Zero Sysman. Called by [`crate::discovery::discover`] after NVML.
//!
//! A vendor library is loaded by default only where its kernel driver is loaded
//! (`<sysfs>/module/amdgpu`, `<sysfs>/module/i915` or `xe`): elsewhere there is nothing to read,
//! and the libraries print diagnostics of their own. A library named by a flag or its variable
//! is always tried. GPU indices continue after the NVIDIA GPUs: `gpu:<n>` stays unique on a
//! machine with several vendors' cards.

use crate::discovery::{ComponentReport, DiscoverOptions, Discovery, SourceReport, WithIdle};
use crate::host::HostPaths;
use crate::record::GpuInfo;
use crate::sensor::{Device, DeviceKind, Method, Sensor, SensorError};
use crate::sensors::amd_visible;
use crate::sensors::amdsmi::AmdSmiSensor;
use crate::sensors::level_zero::LevelZeroSensor;
use crate::sensors::rocm_smi::RocmSmiSensor;
use crate::sensors::vendor_library::kernel_module_loaded;

/// Idle power of a GPU from the factor table, by its name.
pub(crate) fn gpu_idle_w(dev: &Device) -> Option<f64> {
    match crate::factors::gpu::gpu_lookup(&dev.name) {
        crate::factors::gpu::GpuMatch::Found(g) => g.idle_w,
        _ => None,
    }
}

/// The AMD sensor found, with what discovery needs beyond the [`Sensor`] trait.
struct AmdFound {
    sensor: Box<dyn Sensor>,
    source: &'static str,
    library: String,
    notes: Vec<String>,
    dies: Vec<Vec<u32>>,
}

/// Find AMD GPUs: amdsmi first, ROCm SMI where amdsmi is absent or unusable.
pub fn discover_amd(paths: &HostPaths, opts: &DiscoverOptions, d: &mut Discovery) {
    let driver = kernel_module_loaded(paths, "amdgpu");
    let first_index = next_gpu_index(d);
    let mut found: Option<AmdFound> = None;
    if driver || opts.amdsmi_library.is_some() {
        match AmdSmiSensor::open(opts.amdsmi_library.as_deref(), first_index) {
            Ok(mut s) => {
                d.warnings.extend(s.take_warnings());
                let version = s.version().unwrap_or_else(|| "version unknown".into());
                found = Some(AmdFound {
                    library: format!("{} (amdsmi {version})", s.library()),
                    notes: s.notes().to_vec(),
                    dies: s.dies().to_vec(),
                    source: "amdsmi",
                    sensor: Box::new(s),
                });
            }
            Err(e) => not_found(d, "amdsmi", &e),
        }
    } else {
        d.sources.push(SourceReport {
            source: "amdsmi",
            found: false,
            detail: format!(
                "no amdgpu kernel driver ({} missing): AMD GPU libraries not loaded (set {} to \
                 load one anyway)",
                paths.sys.join("module/amdgpu").display(),
                crate::sensors::amdsmi::LIBRARY_ENV
            ),
        });
    }
    if found.is_none() && (driver || opts.rocm_smi_library.is_some()) {
        match RocmSmiSensor::open(opts.rocm_smi_library.as_deref(), first_index) {
            Ok(mut s) => {
                d.warnings.extend(s.take_warnings());
                found = Some(AmdFound {
                    library: s.library().to_string(),
                    notes: s.notes().to_vec(),
                    dies: s.dies().to_vec(),
                    source: "rocm-smi",
                    sensor: Box::new(s),
                });
            }
            Err(e) => not_found(d, "rocm-smi", &e),
        }
    }
    let Some(f) = found else { return };
    add_gpus(d, f.source, &f.library, f.sensor.devices(), &f.notes);
    // ROCR_VISIBLE_DEVICES, then HIP_VISIBLE_DEVICES, name dies by library index.
    let devices = f.sensor.devices();
    let die_uuids: Vec<(u32, String)> = f
        .dies
        .iter()
        .zip(devices)
        .flat_map(|(dies, dev)| {
            dies.iter()
                .enumerate()
                .map(|(k, ix)| {
                    let u = if k == 0 { dev.uuid.clone() } else { None };
                    (*ix, u.unwrap_or_default())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    // HIP reads "HIP_VISIBLE_DEVICES or CUDA_VISIBLE_DEVICES" (ROCm's HIP environment
    // variables): CUDA_VISIBLE_DEVICES is taken so when no NVIDIA GPU claims it.
    let hip = opts.hip_visible_devices.as_deref().or_else(|| {
        (first_index == 0)
            .then_some(opts.cuda_visible_devices.as_deref())
            .flatten()
    });
    if let Some(v) = amd_visible::visible(opts.rocr_visible_devices.as_deref(), hip, &die_uuids) {
        d.warnings.extend(v.notes);
        let mut given: Vec<u32> = Vec::new();
        for die in v.indices {
            if let Some(g) = f
                .dies
                .iter()
                .position(|ds| ds.contains(&die))
                .and_then(|k| devices.get(k))
                .and_then(|dev| dev.gpu_index)
            {
                if !given.contains(&g) {
                    given.push(g);
                }
            }
        }
        d.visible_gpus.get_or_insert_with(Vec::new).extend(given);
    }
    d.sensors
        .push(Box::new(WithIdle::new(f.sensor, gpu_idle_w)));
}

/// Find Intel GPUs through Level Zero Sysman.
pub fn discover_intel(paths: &HostPaths, opts: &DiscoverOptions, d: &mut Discovery) {
    let driver = kernel_module_loaded(paths, "i915") || kernel_module_loaded(paths, "xe");
    if !driver && opts.level_zero_library.is_none() {
        d.sources.push(SourceReport {
            source: "level-zero",
            found: false,
            detail: format!(
                "no Intel GPU driver (i915 or xe under {}): Level Zero not loaded (set {} to \
                 load it anyway)",
                paths.sys.join("module").display(),
                crate::sensors::level_zero::LIBRARY_ENV
            ),
        });
        return;
    }
    match LevelZeroSensor::open(opts.level_zero_library.as_deref(), next_gpu_index(d)) {
        Ok(mut s) => {
            d.warnings.extend(s.take_warnings());
            let library = s.library().to_string();
            let notes = s.notes().to_vec();
            add_gpus(d, "level-zero", &library, s.devices(), &notes);
            if let Some(mask) = &opts.ze_affinity_mask {
                let devices = s.devices();
                let (ix, bad) = crate::sensors::level_zero::affinity_devices(mask, devices.len());
                if !bad.is_empty() {
                    d.warnings.push(format!(
                        "ZE_AFFINITY_MASK={mask}: {} names no Intel GPU of this machine; ignored",
                        bad.join(", ")
                    ));
                }
                let given = ix
                    .iter()
                    .filter_map(|i| devices.get(*i as usize).and_then(|dev| dev.gpu_index));
                d.visible_gpus.get_or_insert_with(Vec::new).extend(given);
            }
            d.sensors
                .push(Box::new(WithIdle::new(Box::new(s), gpu_idle_w)));
        }
        Err(e) => not_found(d, "level-zero", &e),
    }
}

/// The first free `gpu:<n>` index.
pub(crate) fn next_gpu_index(d: &Discovery) -> u32 {
    d.gpus.iter().map(|g| g.index + 1).max().unwrap_or(0)
}

fn not_found(d: &mut Discovery, source: &'static str, e: &SensorError) {
    d.sources.push(SourceReport {
        source,
        found: false,
        detail: e.to_string(),
    });
}

/// Record found GPUs: host facts, a source line, and one component line listing each device
/// with its method and why. A "no GPU measured" line left by NVML is dropped: these are.
pub(crate) fn add_gpus(
    d: &mut Discovery,
    source: &'static str,
    library: &str,
    devices: &[Device],
    notes: &[String],
) {
    let mut lines = Vec::new();
    for (k, g) in devices.iter().enumerate() {
        d.gpus.push(GpuInfo {
            index: g.gpu_index.unwrap_or(0),
            name: g.name.clone(),
            uuid: g.uuid.clone().unwrap_or_default(),
        });
        let note = notes.get(k).map(String::as_str).unwrap_or("");
        lines.push(format!(
            "{} {} ({}: {note})",
            g.id,
            g.name,
            g.method.as_str()
        ));
    }
    d.sources.push(SourceReport {
        source,
        found: true,
        detail: format!("{library}: {} GPU(s)", devices.len()),
    });
    d.components
        .retain(|c| !(c.component == DeviceKind::Gpu && c.method == Method::None));
    let method = devices.first().map(|g| g.method).unwrap_or(Method::None);
    d.components.push(ComponentReport {
        component: DeviceKind::Gpu,
        method,
        detail: lines.join("; "),
    });
}

/// Doctor lines for the MIG instances of NVIDIA GPUs: each instance and its share of the card.
pub fn mig_lines(mig: &[crate::sensors::nvml::MigInstance]) -> Vec<String> {
    mig.iter()
        .map(|m| {
            format!(
                "gpu:{} MIG instance {} ({}/{} slices: a run given it is charged {}/{} of the \
                 card's energy)",
                m.parent_index, m.uuid, m.slices, m.card_slices, m.slices, m.card_slices
            )
        })
        .collect()
}
