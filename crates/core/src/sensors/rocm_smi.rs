//! AMD GPU energy through ROCm SMI (`librocm_smi64.so`), the older library, used where amdsmi
//! is absent (ROCm before 6, Debian's `librocm-smi64-1`).
//!
//! `rsmi_dev_energy_count_get(index, &accumulator, &resolution, &timestamp)` is the same
//! counter amdsmi reads (amdsmi calls it): a 64-bit accumulator in `resolution` µJ units,
//! differenced with a wrap at 2⁶⁴ and the plausibility bound of 2 × the power cap
//! (`rsmi_dev_power_cap_get`, µW) else [`crate::sensors::amdsmi::DEFAULT_MAX_POWER_W`]. There
//! is no power fallback here: a GPU whose counter is not supported is listed with method `none`,
//! loudly.
//!
//! **No per-device call before the count says the device exists**: Debian's library crashes
//! the process when asked about device 0 of a machine with none, so every per-device function is
//! called only with an index below `rsmi_num_monitor_devices`. An initialisation failure (no
//! amdgpu driver: no `/sys/class/drm`) or a count of 0 is "no AMD GPU".
//!
//! The dual-die rule is amdsmi's (see [`crate::sensors::amdsmi`]). Methodology:
//! `docs/sensors-amd.md`.

use crate::sensor::{Device, DeviceKind, Method, Reading, Sensor, SensorError};
use crate::sensors::amdsmi::DEFAULT_MAX_POWER_W;
use crate::sensors::gpu_track::Track;
use crate::sensors::vendor_library::{c_string, candidates, VendorLibrary};
use std::path::Path;
use std::time::Instant;

/// Environment variable naming the ROCm SMI library to load.
pub const LIBRARY_ENV: &str = "WATTPRINT_ROCM_SMI_LIBRARY";
/// Where Debian and ROCm install it.
pub const DEFAULT_LIBRARIES: &[&str] = &["librocm_smi64.so.1", "/opt/rocm/lib/librocm_smi64.so"];
/// Devices considered at most.
const MAX_DEVICES: u32 = 256;

const SUCCESS: u32 = 0;
const NOT_SUPPORTED: u32 = 2;
const INIT_ERROR: u32 = 8;

/// ROCm SMI's status code as its name and meaning.
pub fn status_text(code: u32) -> String {
    let (name, meaning) = match code {
        0 => ("SUCCESS", "success"),
        1 => ("INVALID_ARGS", "invalid arguments"),
        2 => ("NOT_SUPPORTED", "not supported on this GPU or platform"),
        3 => ("FILE_ERROR", "a driver file could not be read"),
        4 => (
            "PERMISSION",
            "permission denied: this user may not read the GPU (check the groups `video`/`render`)",
        ),
        5 => ("OUT_OF_RESOURCES", "out of memory"),
        6 => ("INTERNAL_EXCEPTION", "internal error in ROCm SMI"),
        7 => ("INPUT_OUT_OF_BOUNDS", "index out of range"),
        8 => (
            "INIT_ERROR",
            "the amdgpu driver's /sys/class/drm entries are missing",
        ),
        9 => ("NOT_YET_IMPLEMENTED", "not implemented in this library"),
        10 => ("NOT_FOUND", "not found"),
        11 => ("INSUFFICIENT_SIZE", "buffer too small"),
        12 => ("INTERRUPT", "interrupted"),
        13 => ("UNEXPECTED_SIZE", "unexpected amount of data"),
        14 => ("NO_DATA", "no data"),
        15 => ("UNEXPECTED_DATA", "unexpected data"),
        16 => ("BUSY", "busy"),
        _ => ("UNKNOWN_ERROR", "unknown status"),
    };
    format!("RSMI_STATUS_{name} ({code}): {meaning}")
}

struct Api {
    lib: VendorLibrary,
    init: unsafe extern "C" fn(u64) -> u32,
    shut_down: unsafe extern "C" fn() -> u32,
    num_devices: unsafe extern "C" fn(*mut u32) -> u32,
    energy_count: unsafe extern "C" fn(u32, *mut u64, *mut f32, *mut u64) -> u32,
    name: Option<unsafe extern "C" fn(u32, *mut std::ffi::c_char, usize) -> u32>,
    unique_id: Option<unsafe extern "C" fn(u32, *mut u64) -> u32>,
    power_cap: Option<unsafe extern "C" fn(u32, u32, *mut u64) -> u32>,
}

impl Api {
    fn load(library: Option<&Path>) -> Result<Api, SensorError> {
        let lib = VendorLibrary::open(&candidates(library, DEFAULT_LIBRARIES)).map_err(|e| {
            SensorError::Library(format!(
                "ROCm SMI not found ({e}): AMD GPU energy not measured through ROCm SMI. Install \
                 rocm-smi-lib (Debian: librocm-smi64-1), or set {LIBRARY_ENV} to the full path \
                 of librocm_smi64.so"
            ))
        })?;
        let need = |e: String| {
            SensorError::Library(format!(
                "not a usable ROCm SMI library ({e}): AMD GPU energy not measured through ROCm \
                 SMI"
            ))
        };
        // SAFETY: each type below is the C declaration of that function in rocm_smi.h.
        unsafe {
            Ok(Api {
                init: lib.function("rsmi_init").map_err(need)?,
                shut_down: lib.function("rsmi_shut_down").map_err(need)?,
                num_devices: lib.function("rsmi_num_monitor_devices").map_err(need)?,
                energy_count: lib.function("rsmi_dev_energy_count_get").map_err(need)?,
                name: lib.function("rsmi_dev_name_get").ok(),
                unique_id: lib.function("rsmi_dev_unique_id_get").ok(),
                power_cap: lib.function("rsmi_dev_power_cap_get").ok(),
                lib,
            })
        }
    }

    // Every function below takes an index the caller checked against the device count.

    fn energy(&self, ix: u32) -> Result<(u64, f32), u32> {
        let (mut acc, mut res, mut ts) = (0u64, 0f32, 0u64);
        // SAFETY: valid out-pointers; ix < the device count.
        let st = unsafe { (self.energy_count)(ix, &mut acc, &mut res, &mut ts) };
        if st == SUCCESS {
            Ok((acc, res))
        } else {
            Err(st)
        }
    }

    fn name(&self, ix: u32) -> Option<String> {
        let f = self.name?;
        let mut buf = vec![0u8; 256];
        // SAFETY: buf has room for the length given.
        if unsafe { f(ix, buf.as_mut_ptr().cast(), buf.len()) } != SUCCESS {
            return None;
        }
        Some(c_string(&buf)).filter(|s| !s.is_empty())
    }

    fn unique_id(&self, ix: u32) -> Option<String> {
        let f = self.unique_id?;
        let mut id = 0u64;
        // SAFETY: valid out-pointer.
        (unsafe { f(ix, &mut id) } == SUCCESS && id != 0).then(|| format!("GPU-{id:016x}"))
    }

    /// The power cap in W, when given and plausible.
    fn power_cap_w(&self, ix: u32) -> Option<f64> {
        let f = self.power_cap?;
        let mut uw = 0u64;
        // SAFETY: valid out-pointer; sensor 0 is the device's only power sensor.
        if unsafe { f(ix, 0, &mut uw) } != SUCCESS {
            return None;
        }
        let w = uw as f64 / 1e6;
        (w > 0.0 && w <= DEFAULT_MAX_POWER_W).then_some(w)
    }
}

/// Energy of every AMD GPU ROCm SMI counts, as cumulative joules since [`RocmSmiSensor::open`].
pub struct RocmSmiSensor {
    api: Api,
    devices: Vec<Device>,
    indices: Vec<u32>,
    tracks: Vec<Track>,
    notes: Vec<String>,
    dies: Vec<Vec<u32>>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for RocmSmiSensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocmSmiSensor")
            .field("library", &self.api.lib.shown())
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

impl RocmSmiSensor {
    /// Load ROCm SMI (`library`, else [`DEFAULT_LIBRARIES`]), `rsmi_init(0)`, count the devices
    /// and only then ask about each. Devices are `gpu:<first_index + ROCm SMI index>`.
    ///
    /// Errors: library missing or not ROCm SMI ([`SensorError::Library`]); initialisation error
    /// or no device ([`SensorError::Unsupported`], "no AMD GPU").
    pub fn open(library: Option<&Path>, first_index: u32) -> Result<RocmSmiSensor, SensorError> {
        let api = Api::load(library)?;
        let shown = api.lib.shown().to_string();
        // SAFETY: plain call; 0 is the default flags.
        let st = unsafe { (api.init)(0) };
        if st != SUCCESS {
            let e = format!(
                "no AMD GPU: ROCm SMI ({shown}) could not initialise ({}): AMD GPU energy not \
                 measured",
                status_text(st)
            );
            return Err(if st == INIT_ERROR {
                SensorError::Unsupported(e)
            } else {
                SensorError::Library(e)
            });
        }
        let mut sensor = RocmSmiSensor {
            api,
            devices: Vec::new(),
            indices: Vec::new(),
            tracks: Vec::new(),
            notes: Vec::new(),
            dies: Vec::new(),
            warnings: Vec::new(),
        };
        // From here `sensor` shuts ROCm SMI down when dropped.
        let mut count = 0u32;
        // SAFETY: valid out-pointer.
        let st = unsafe { (sensor.api.num_devices)(&mut count) };
        if st != SUCCESS {
            return Err(SensorError::Library(format!(
                "ROCm SMI ({shown}) could not count the GPUs ({}): AMD GPU energy not measured",
                status_text(st)
            )));
        }
        if count == 0 {
            return Err(SensorError::Unsupported(format!(
                "no AMD GPU: ROCm SMI ({shown}) counts none: AMD GPU energy not measured"
            )));
        }
        let mut prev: Option<(usize, String, bool)> = None;
        for ix in 0..count.min(MAX_DEVICES) {
            let name = sensor.api.name(ix).unwrap_or_else(|| "AMD GPU".to_string());
            let cap = sensor.api.power_cap_w(ix);
            let (max_power_w, bound) = match cap {
                Some(w) => (2.0 * w, format!("2 × power cap {w} W")),
                None => (
                    DEFAULT_MAX_POWER_W,
                    format!("{DEFAULT_MAX_POWER_W} W, power cap unknown"),
                ),
            };
            let first = sensor.api.energy(ix);
            // The dual-die rule: a zero counter right after a counting die of the same name.
            if let (Ok((0, _)), Some((dev, pname, true))) = (&first, &prev) {
                if *pname == name && sensor.dies[*dev].len() == 1 {
                    let dev = *dev;
                    sensor.dies[dev].push(ix);
                    sensor.notes[dev].push_str(&format!(
                        "; second die ROCm SMI #{ix} reports 0: one device, read from the first die"
                    ));
                    prev = None;
                    continue;
                }
            }
            let index = first_index + ix;
            let id = format!("gpu:{index}");
            let (method, note, track) = match first {
                Ok((raw, res32)) => {
                    let res = f64::from(res32);
                    if res.is_finite() && res > 0.0 && res <= 1e6 {
                        prev = Some((sensor.devices.len(), name.clone(), raw > 0));
                        (
                            Method::RocmSmiEnergy,
                            format!(
                                "energy accumulator ({res32} µJ per unit, 64-bit); \
                                 plausibility bound {max_power_w} W ({bound})"
                            ),
                            Track::energy(res * 1e-6, Some(u64::MAX), max_power_w),
                        )
                    } else {
                        prev = None;
                        (
                            Method::None,
                            format!(
                                "energy counter resolution {res32} µJ is not plausible: \
                                 energy not measured"
                            ),
                            Track::unavailable(),
                        )
                    }
                }
                Err(st) => {
                    prev = None;
                    let why = if st == NOT_SUPPORTED {
                        format!(
                            "energy counter not supported ({}; unavailable on virtual-machine \
                             guests)",
                            status_text(st)
                        )
                    } else {
                        format!("energy counter unreadable ({})", status_text(st))
                    };
                    (
                        Method::None,
                        format!(
                            "{why}: energy not measured (ROCm SMI has no power fallback here; \
                             amdsmi has)"
                        ),
                        Track::unavailable(),
                    )
                }
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
                uuid: sensor.api.unique_id(ix),
                idle_power_w: None,
                factors: Vec::new(),
            });
            sensor.indices.push(ix);
            sensor.tracks.push(track);
            sensor.notes.push(note);
            sensor.dies.push(vec![ix]);
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

    /// The ROCm SMI indices of each device's dies.
    pub fn dies(&self) -> &[Vec<u32>] {
        &self.dies
    }

    fn read_all(&mut self, now: Instant) -> Reading {
        let mut energy = Vec::with_capacity(self.devices.len());
        let mut power = Vec::with_capacity(self.devices.len());
        for ((t, dev), ix) in self.tracks.iter_mut().zip(&self.devices).zip(&self.indices) {
            let label = format!("{} ({})", dev.id, dev.name);
            let read = if dev.method == Method::RocmSmiEnergy {
                self.api
                    .energy(*ix)
                    .map(|(raw, _)| (raw, None))
                    .map_err(status_text)
            } else {
                Ok((0, None))
            };
            let (e, p) = t.update(read, now, &label, "ROCm SMI", &mut self.warnings);
            energy.push(e);
            power.push(p);
        }
        Reading { energy, power }
    }
}

impl Drop for RocmSmiSensor {
    fn drop(&mut self) {
        // SAFETY: ROCm SMI was initialised in open.
        unsafe {
            (self.api.shut_down)();
        }
    }
}

impl Sensor for RocmSmiSensor {
    fn name(&self) -> &'static str {
        "rocm-smi"
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
