//! Intel GPU energy through oneAPI Level Zero Sysman (`libze_loader.so.1`), loaded at run time.
//!
//! `zesInit(0)`, `zesDriverGet`, `zesDeviceGet` (Sysman devices, unaffected by
//! `ZE_AFFINITY_MASK`), then per device `zesDeviceEnumPowerDomains` and
//! `zesPowerGetProperties`: the device's energy is its **card-level** domain (`onSubdevice`
//! false) when it has one, else the sum of its tiles' domains (Data Center GPU Max parts have
//! one domain per tile). `zesPowerGetEnergyCounter` gives "the monotonic energy counter in
//! microjoules" (zes_api.h), differenced through [`crate::counter`] with no wrap range: a
//! decrease is a reset. A difference implying more than 2 × the domain's `maxLimit` (mW), else
//! [`crate::sensors::amdsmi::DEFAULT_MAX_POWER_W`], is rejected and reported.
//!
//! Structure layouts are those of Level Zero's `zes_api.h`/`ze_api.h` (oneapi-src/level-zero,
//! checked at its 2026-06 head); every structure is passed with slack after it.
//! Methodology: `docs/sensors-intel.md`.

use crate::sensor::{Device, DeviceKind, Method, Reading, Sensor, SensorError};
use crate::sensors::amdsmi::DEFAULT_MAX_POWER_W;
use crate::sensors::gpu_track::Track;
use crate::sensors::vendor_library::{c_string, candidates, VendorLibrary};
use std::ffi::c_void;
use std::path::Path;
use std::time::Instant;

/// Environment variable naming the Level Zero loader to load.
pub const LIBRARY_ENV: &str = "WATTPRINT_LEVEL_ZERO_LIBRARY";
/// The loader as Intel's packages install it.
pub const DEFAULT_LIBRARIES: &[&str] = &["libze_loader.so.1"];
/// Drivers, devices per driver and power domains per device enumerated at most.
const MAX_HANDLES: u32 = 64;

const SUCCESS: u32 = 0;
const STYPE_DEVICE_PROPERTIES: u32 = 0x1;
const STYPE_POWER_PROPERTIES: u32 = 0xd;

/// Level Zero's result code as its name.
pub fn result_text(code: u32) -> String {
    let name = match code {
        0 => "SUCCESS",
        1 => "NOT_READY",
        0x7000_0001 => "ERROR_DEVICE_LOST",
        0x7000_0002 => "ERROR_OUT_OF_HOST_MEMORY",
        0x7000_0006 => "ERROR_DEVICE_REQUIRES_RESET",
        0x7000_0007 => "ERROR_DEVICE_IN_LOW_POWER_STATE",
        0x7001_0000 => "ERROR_INSUFFICIENT_PERMISSIONS (this user may not read the GPU's power)",
        0x7001_0001 => "ERROR_NOT_AVAILABLE",
        0x7002_0000 => "ERROR_DEPENDENCY_UNAVAILABLE",
        0x7800_0001 => "ERROR_UNINITIALIZED",
        0x7800_0002 => "ERROR_UNSUPPORTED_VERSION",
        0x7800_0003 => "ERROR_UNSUPPORTED_FEATURE (not supported on this GPU or platform)",
        0x7800_0004 => "ERROR_INVALID_ARGUMENT",
        0x7800_0005 => "ERROR_INVALID_NULL_HANDLE",
        0x7800_0007 => "ERROR_INVALID_NULL_POINTER",
        _ => "ERROR_UNKNOWN",
    };
    format!("ZE_RESULT_{name} ({code:#x})")
}

/// `ze_device_properties_t`.
#[allow(dead_code)] // mirrors the C layout: every field is needed, not every one is read
#[repr(C)]
struct CoreProps {
    stype: u32,
    p_next: *mut c_void,
    device_type: u32,
    vendor_id: u32,
    device_id: u32,
    flags: u32,
    subdevice_id: u32,
    core_clock_rate: u32,
    max_mem_alloc_size: u64,
    max_hardware_contexts: u32,
    max_command_queue_priority: u32,
    num_threads_per_eu: u32,
    physical_eu_simd_width: u32,
    num_eus_per_subslice: u32,
    num_subslices_per_slice: u32,
    num_slices: u32,
    timer_resolution: u64,
    timestamp_valid_bits: u32,
    kernel_timestamp_valid_bits: u32,
    uuid: [u8; 16],
    name: [u8; 256],
}

/// `zes_device_properties_t`, with slack.
#[allow(dead_code)] // mirrors the C layout: every field is needed, not every one is read
#[repr(C)]
struct DeviceProps {
    stype: u32,
    p_next: *mut c_void,
    core: CoreProps,
    num_subdevices: u32,
    serial_number: [u8; 64],
    board_number: [u8; 64],
    brand_name: [u8; 64],
    model_name: [u8; 64],
    vendor_name: [u8; 64],
    driver_version: [u8; 64],
    slack: [u8; 1024],
}

/// `zes_power_properties_t`, with slack.
#[allow(dead_code)] // mirrors the C layout: every field is needed, not every one is read
#[repr(C)]
struct PowerProps {
    stype: u32,
    p_next: *mut c_void,
    on_subdevice: u8,
    subdevice_id: u32,
    can_control: u8,
    is_energy_threshold_supported: u8,
    default_limit: i32,
    min_limit: i32,
    max_limit: i32,
    slack: [u8; 1024],
}

/// `zes_power_energy_counter_t`, with slack.
#[allow(dead_code)] // mirrors the C layout: every field is needed, not every one is read
#[repr(C)]
struct EnergyCounter {
    energy: u64,
    timestamp: u64,
    slack: [u8; 256],
}

type Handle = *mut c_void;
/// `(on a tile, max power limit W)` of a power domain.
type DomainProps = (bool, Option<f64>);

struct Api {
    lib: VendorLibrary,
    init: unsafe extern "C" fn(u32) -> u32,
    driver_get: unsafe extern "C" fn(*mut u32, *mut Handle) -> u32,
    device_get: unsafe extern "C" fn(Handle, *mut u32, *mut Handle) -> u32,
    device_props: Option<unsafe extern "C" fn(Handle, *mut DeviceProps) -> u32>,
    enum_power: unsafe extern "C" fn(Handle, *mut u32, *mut Handle) -> u32,
    power_props: Option<unsafe extern "C" fn(Handle, *mut PowerProps) -> u32>,
    energy_counter: unsafe extern "C" fn(Handle, *mut EnergyCounter) -> u32,
}

impl Api {
    fn load(library: Option<&Path>) -> Result<Api, SensorError> {
        let lib = VendorLibrary::open(&candidates(library, DEFAULT_LIBRARIES)).map_err(|e| {
            SensorError::Library(format!(
                "Level Zero not found ({e}): Intel GPU energy not measured. Install Intel's \
                 level-zero loader and GPU driver, or set {LIBRARY_ENV} to the full path of \
                 libze_loader.so.1"
            ))
        })?;
        let need = |e: String| {
            SensorError::Library(format!(
                "not a usable Level Zero loader with Sysman ({e}): Intel GPU energy not measured"
            ))
        };
        // SAFETY: each type below is the C declaration of that function in zes_api.h.
        unsafe {
            Ok(Api {
                init: lib.function("zesInit").map_err(need)?,
                driver_get: lib.function("zesDriverGet").map_err(need)?,
                device_get: lib.function("zesDeviceGet").map_err(need)?,
                device_props: lib.function("zesDeviceGetProperties").ok(),
                enum_power: lib.function("zesDeviceEnumPowerDomains").map_err(need)?,
                power_props: lib.function("zesPowerGetProperties").ok(),
                energy_counter: lib.function("zesPowerGetEnergyCounter").map_err(need)?,
                lib,
            })
        }
    }

    /// The handles a Level Zero "get" function lists: count first, then fill.
    fn list(
        &self,
        what: &str,
        get: impl Fn(*mut u32, *mut Handle) -> u32,
    ) -> Result<Vec<Handle>, String> {
        let mut n = 0u32;
        let st = get(&mut n, std::ptr::null_mut());
        if st != SUCCESS {
            return Err(format!("{what}: {}", result_text(st)));
        }
        let mut v = vec![std::ptr::null_mut(); n.min(MAX_HANDLES) as usize];
        let mut n = v.len() as u32;
        if n > 0 {
            let st = get(&mut n, v.as_mut_ptr());
            if st != SUCCESS {
                return Err(format!("{what}: {}", result_text(st)));
            }
            v.truncate(n.min(MAX_HANDLES) as usize);
        }
        Ok(v)
    }

    fn devices(&self) -> Result<Vec<Handle>, String> {
        // SAFETY (closures): valid count pointer; arrays sized by `list`.
        let drivers = self.list("zesDriverGet", |n, p| unsafe { (self.driver_get)(n, p) })?;
        let mut out = Vec::new();
        for d in drivers {
            let devs = self.list("zesDeviceGet", |n, p| unsafe { (self.device_get)(d, n, p) })?;
            out.extend(devs);
        }
        out.truncate(MAX_HANDLES as usize);
        Ok(out)
    }

    /// `(name, UUID)` of a device.
    fn identity(&self, dev: Handle) -> (Option<String>, Option<String>) {
        let Some(f) = self.device_props else {
            return (None, None);
        };
        // SAFETY: all-zero bytes are valid for this plain-data structure (null pointer).
        let mut p: DeviceProps = unsafe { std::mem::zeroed() };
        p.stype = STYPE_DEVICE_PROPERTIES;
        p.core.stype = 0x3; // ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES
                            // SAFETY: p is a valid, larger-than-needed zes_device_properties_t.
        if unsafe { f(dev, &mut p) } != SUCCESS {
            return (None, None);
        }
        let model = c_string(&p.model_name);
        let name = if model.is_empty() || model == "unknown" {
            c_string(&p.core.name)
        } else {
            model
        };
        let uuid = p.core.uuid.iter().any(|b| *b != 0).then(|| {
            p.core
                .uuid
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        });
        (Some(name).filter(|n| !n.is_empty()), uuid)
    }

    /// `(on a tile, max limit W)` of a power domain.
    fn domain(&self, pwr: Handle) -> Option<DomainProps> {
        let f = self.power_props?;
        // SAFETY: as above.
        let mut p: PowerProps = unsafe { std::mem::zeroed() };
        p.stype = STYPE_POWER_PROPERTIES;
        // SAFETY: p is a valid zes_power_properties_t.
        if unsafe { f(pwr, &mut p) } != SUCCESS {
            return None;
        }
        let max = (p.max_limit > 0).then(|| f64::from(p.max_limit) / 1000.0);
        Some((p.on_subdevice != 0, max))
    }

    fn energy(&self, pwr: Handle) -> Result<u64, u32> {
        // SAFETY: as above.
        let mut c: EnergyCounter = unsafe { std::mem::zeroed() };
        // SAFETY: c is a valid zes_power_energy_counter_t.
        let st = unsafe { (self.energy_counter)(pwr, &mut c) };
        if st == SUCCESS {
            Ok(c.energy)
        } else {
            Err(st)
        }
    }
}

struct Gpu {
    /// The domains summed for this device (one card domain, or every tile's).
    domains: Vec<Handle>,
    track: Track,
}

// SAFETY: Level Zero handles are opaque tokens valid in the whole process; Sysman calls are
// thread-safe (zes_api.h: "may call this function from simultaneous threads").
unsafe impl Send for Gpu {}

/// Energy of every Intel GPU Level Zero Sysman lists, as cumulative joules since
/// [`LevelZeroSensor::open`].
pub struct LevelZeroSensor {
    api: Api,
    devices: Vec<Device>,
    gpus: Vec<Gpu>,
    notes: Vec<String>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for LevelZeroSensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LevelZeroSensor")
            .field("library", &self.api.lib.shown())
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

impl LevelZeroSensor {
    /// Load the loader, `zesInit(0)`, list the devices and their power domains and take a
    /// first reading. Devices are `gpu:<first_index + i>`.
    pub fn open(library: Option<&Path>, first_index: u32) -> Result<LevelZeroSensor, SensorError> {
        let api = Api::load(library)?;
        let shown = api.lib.shown().to_string();
        // SAFETY: plain call; flags must be 0.
        let st = unsafe { (api.init)(0) };
        if st != SUCCESS {
            return Err(SensorError::Library(format!(
                "Level Zero Sysman ({shown}) could not initialise ({}): Intel GPU energy not \
                 measured",
                result_text(st)
            )));
        }
        let handles = api.devices().map_err(|e| {
            SensorError::Library(format!(
                "Level Zero ({shown}) could not list the GPUs ({e}): Intel GPU energy not measured"
            ))
        })?;
        if handles.is_empty() {
            return Err(SensorError::Unsupported(format!(
                "Level Zero ({shown}) lists no Intel GPU: Intel GPU energy not measured"
            )));
        }
        let mut sensor = LevelZeroSensor {
            api,
            devices: Vec::new(),
            gpus: Vec::new(),
            notes: Vec::new(),
            warnings: Vec::new(),
        };
        for (i, dev) in handles.into_iter().enumerate() {
            let index = first_index + i as u32;
            let id = format!("gpu:{index}");
            let (name, uuid) = sensor.api.identity(dev);
            let name = name.unwrap_or_else(|| "Intel GPU".to_string());
            let api = &sensor.api;
            // SAFETY: valid count pointer; array sized by `list`.
            let domains = api.list("zesDeviceEnumPowerDomains", |n, p| unsafe {
                (api.enum_power)(dev, n, p)
            });
            let (method, note, gpu) = match domains {
                Err(e) => (
                    Method::None,
                    format!("power domains unreadable ({e}): energy not measured"),
                    Gpu {
                        domains: Vec::new(),
                        track: Track::unavailable(),
                    },
                ),
                Ok(ds) => plan(&sensor.api, ds),
            };
            if method == Method::None {
                sensor.warnings.push(format!("{id} ({name}): {note}"));
            }
            sensor.devices.push(Device {
                id,
                kind: DeviceKind::Gpu,
                method,
                name,
                gpu_index: Some(index),
                uuid,
                idle_power_w: None,
                factors: Vec::new(),
            });
            sensor.notes.push(note);
            sensor.gpus.push(gpu);
        }
        sensor.read_all(Instant::now());
        Ok(sensor)
    }

    pub fn library(&self) -> &str {
        self.api.lib.shown()
    }

    /// Why each device is read the way it is (same order as the devices).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The sum of the device's domain counters (µJ), or the first failure.
    fn raw(&self, g: &Gpu) -> Result<u64, String> {
        let mut sum = 0u64;
        for d in &g.domains {
            sum = sum.wrapping_add(self.api.energy(*d).map_err(result_text)?);
        }
        Ok(sum)
    }

    fn read_all(&mut self, now: Instant) -> Reading {
        let mut energy = Vec::with_capacity(self.gpus.len());
        let mut power = Vec::with_capacity(self.gpus.len());
        for k in 0..self.gpus.len() {
            let read = if self.gpus[k].domains.is_empty() {
                Ok((0, None))
            } else {
                self.raw(&self.gpus[k]).map(|r| (r, None))
            };
            let dev = &self.devices[k];
            let label = format!("{} ({})", dev.id, dev.name);
            let (e, p) =
                self.gpus[k]
                    .track
                    .update(read, now, &label, "Level Zero", &mut self.warnings);
            energy.push(e);
            power.push(p);
        }
        Reading { energy, power }
    }
}

/// The domains to read for a device and how: its card domain, else the sum of its tiles'.
fn plan(api: &Api, domains: Vec<Handle>) -> (Method, String, Gpu) {
    let props: Vec<(Handle, Option<DomainProps>)> =
        domains.into_iter().map(|d| (d, api.domain(d))).collect();
    let card: Vec<_> = props
        .iter()
        .filter(|(_, p)| matches!(p, Some((false, _))))
        .collect();
    let (chosen, how): (Vec<_>, String) = if let Some(c) = card.first() {
        (vec![**c], "card-level power domain".into())
    } else if !props.is_empty() {
        (
            props.clone(),
            format!(
                "sum of {} tile power domains (no card-level domain)",
                props.len()
            ),
        )
    } else {
        return (
            Method::None,
            "no power domain: energy not measured".into(),
            Gpu {
                domains: Vec::new(),
                track: Track::unavailable(),
            },
        );
    };
    let limit: Option<f64> = chosen
        .iter()
        .map(|(_, p)| p.and_then(|(_, m)| m))
        .sum::<Option<f64>>()
        .filter(|w| *w > 0.0 && *w <= DEFAULT_MAX_POWER_W);
    let (max_power_w, bound) = match limit {
        Some(w) => (2.0 * w, format!("2 × max power limit {w} W")),
        None => (
            DEFAULT_MAX_POWER_W,
            format!("{DEFAULT_MAX_POWER_W} W, power limit unknown"),
        ),
    };
    let handles: Vec<Handle> = chosen.iter().map(|(h, _)| *h).collect();
    for h in &handles {
        if let Err(st) = api.energy(*h) {
            return (
                Method::None,
                format!(
                    "{how}: energy counter unreadable ({}): energy not measured",
                    result_text(st)
                ),
                Gpu {
                    domains: Vec::new(),
                    track: Track::unavailable(),
                },
            );
        }
    }
    (
        Method::LevelZeroEnergy,
        format!(
            "{how}, energy counter (µJ, monotonic); plausibility bound {max_power_w} W ({bound})"
        ),
        Gpu {
            domains: handles,
            track: Track::energy(1e-6, None, max_power_w),
        },
    )
}

impl Sensor for LevelZeroSensor {
    fn name(&self) -> &'static str {
        "level-zero"
    }
    fn devices(&self) -> &[Device] {
        &self.devices
    }
    fn read(&mut self, now: Instant) -> Result<Reading, SensorError> {
        Ok(self.read_all(now))
    }
    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

/// Variable the Level Zero loader reads to expose a subset of devices.
pub const AFFINITY_VAR: &str = "ZE_AFFINITY_MASK";

/// The device indices a job may use per `ZE_AFFINITY_MASK` (`0,1.0,2`: a root device, or one of
/// its tiles as `device.tile`), among `count` devices, in the order given and without repeats.
/// An entry that is not a device (`7` of 2, text) is skipped and named in the second value.
/// Level Zero numbers root devices as its core API enumerates them; Sysman devices are taken to
/// be in that order (both follow the driver's PCI order on the machines documented).
pub fn affinity_devices(mask: &str, count: usize) -> (Vec<u32>, Vec<String>) {
    let mut out: Vec<u32> = Vec::new();
    let mut bad = Vec::new();
    for entry in mask.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let root = entry.split('.').next().unwrap_or("");
        match root.parse::<u32>() {
            Ok(i) if (i as usize) < count => {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
            _ => bad.push(entry.to_string()),
        }
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_mask_names_root_devices_or_their_tiles() {
        assert_eq!(affinity_devices("0,1.0,1.1", 2), (vec![0, 1], vec![]));
        assert_eq!(affinity_devices(" 1 ", 2), (vec![1], vec![]));
        assert_eq!(
            affinity_devices("0,7,x.1", 2),
            (vec![0], vec!["7".to_string(), "x.1".to_string()])
        );
        assert_eq!(affinity_devices("", 2), (vec![], vec![]));
    }
}
