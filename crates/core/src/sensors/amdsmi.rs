//! AMD GPU energy through amdsmi (`libamd_smi.so`, the AMD System Management Interface
//! library of ROCm 6 and later), loaded at run time.
//!
//! Per GPU (an amdsmi *processor*, found through its *socket*), the method is decided once, at
//! open:
//! - [`Method::AmdsmiEnergy`]: `amdsmi_get_energy_count(handle, &accumulator, &resolution,
//!   &timestamp)`: a 64-bit energy accumulator in units of `resolution` µJ (15.259 µJ on
//!   MI200/MI300). Differenced through [`crate::counter`] with a wrap at 2⁶⁴; a difference
//!   implying more than 2 × the power cap (else [`DEFAULT_MAX_POWER_W`]) is rejected and reported
//!   (an older firmware's 32-bit accumulator wrapping shows up so, not as energy).
//! - [`Method::AmdsmiPower`]: when the counter answers `NOT_SUPPORTED` (AMD documents it as
//!   unavailable on virtual-machine guests), `amdsmi_get_power_info`'s socket power in W
//!   (`current_socket_power` on MI300, `average_socket_power` before), integrated by the
//!   trapezoid rule — said loudly, once.
//!
//! `amdsmi_power_info_t` changed layout inside library version 23.4 (a `current_socket_power`
//! field was put first, ROCm/amdsmi commit 5b36b43). The layout read here is the one of library versions 24.x (ROCm 6.1 to
//! 6.3, checked against ROCm/amdsmi's `amdsmi.h` up to 24.7.0); with any other version
//! (`amdsmi_get_lib_version`) the power fallback is refused with a message. The energy counter's
//! signature is the same in every version and is always used.
//!
//! **Dual-die parts** (MI250X, MI250: two graphics dies, each its own processor): the package's
//! energy is reported by its first die and the second reports 0. The rule: a processor whose
//! counter reads exactly 0 at open and whose power reads 0 (or nothing), right after a processor
//! of the same name whose counter reads more than 0, is that part's second die: one device
//! (its dies in [`AmdSmiSensor::dies`], its note says so), read from the first die; a job given
//! either die holds the device.
//!
//! **Processes**: [`Sensor::device_pids`] and [`Sensor::device_process_util`] come from
//! `amdsmi_get_gpu_process_list` ([`super::amdsmi_process`]), for the host ledger's split of a
//! card among the runs using it (both dies of a dual-die part counted together).
//!
//! Methodology notes: `docs/sensors-amd.md`.

use crate::sensor::{Device, DeviceKind, Method, Reading, Sensor, SensorError};
use crate::sensors::amdsmi_process::{self, ProcInfoV24, ProcSample, ProcessUse};
use crate::sensors::gpu_track::{plausible_watts, Track};
use crate::sensors::vendor_library::{c_string, candidates, VendorLibrary};
use std::ffi::c_void;
use std::path::Path;
use std::time::Instant;

/// Environment variable naming the amdsmi library to load.
pub const LIBRARY_ENV: &str = "WATTPRINT_AMDSMI_LIBRARY";
/// Where ROCm installs amdsmi; the first is for the dynamic loader's search.
pub const DEFAULT_LIBRARIES: &[&str] = &["libamd_smi.so", "/opt/rocm/lib/libamd_smi.so"];
/// `AMDSMI_INIT_AMD_GPUS` (amdsmi.h `amdsmi_init_flags_t`).
pub const INIT_AMD_GPUS: u64 = 1 << 1;
/// The library version year (`AMDSMI_LIB_VERSION_YEAR`) whose `amdsmi_power_info_t` layout is
/// read.
pub const SUPPORTED_POWER_INFO_YEAR: u32 = 24;
/// Plausibility bound when the power cap is unknown: above any AMD Instinct part to date
/// (MI300X: 750 W; MI355X: 1400 W).
pub const DEFAULT_MAX_POWER_W: f64 = 1500.0;
/// At most this many sockets and processors per socket are enumerated.
const MAX_HANDLES: u32 = 256;

const SUCCESS: u32 = 0;
const NOT_SUPPORTED: u32 = 2;
const OUT_OF_RESOURCES: u32 = 15;

/// amdsmi's status code as its name and what it means for us.
pub fn status_text(code: u32) -> String {
    let (name, meaning) = match code {
        0 => ("SUCCESS", "success"),
        1 => ("INVAL", "invalid parameters"),
        2 => ("NOT_SUPPORTED", "not supported on this GPU or platform"),
        3 => ("NOT_YET_IMPLEMENTED", "not implemented in this library"),
        4 => (
            "FAIL_LOAD_MODULE",
            "a library amdsmi needs could not be loaded",
        ),
        5 => ("FAIL_LOAD_SYMBOL", "a symbol amdsmi needs is missing"),
        6 => ("DRM_ERROR", "libdrm failed"),
        7 => ("API_FAILED", "the driver call failed"),
        8 => ("TIMEOUT", "timed out"),
        9 => ("RETRY", "busy, retry"),
        10 => (
            "NO_PERM",
            "permission denied: this user may not read the GPU (check the groups `video`/`render`)",
        ),
        11 => ("INTERRUPT", "interrupted"),
        12 => ("IO", "I/O error"),
        14 => ("FILE_ERROR", "a driver file could not be read"),
        15 => ("OUT_OF_RESOURCES", "out of memory"),
        16 => ("INTERNAL_EXCEPTION", "internal error in amdsmi"),
        18 => ("INIT_ERROR", "amdsmi could not initialise"),
        30 => ("BUSY", "device busy"),
        31 => ("NOT_FOUND", "device not found"),
        32 => ("NOT_INIT", "amdsmi not initialised"),
        34 => (
            "DRIVER_NOT_LOADED",
            "the amdgpu kernel driver is not loaded",
        ),
        40 => ("NO_DATA", "no data"),
        41 => ("INSUFFICIENT_SIZE", "buffer too small"),
        43 => ("UNEXPECTED_DATA", "unexpected data from the driver"),
        _ => ("UNKNOWN", "unknown status"),
    };
    format!("AMDSMI_STATUS_{name} ({code}): {meaning}")
}

/// `amdsmi_version_t`.
#[repr(C)]
struct Version {
    year: u32,
    major: u32,
    minor: u32,
    release: u32,
    build: *const std::ffi::c_char,
}

/// `amdsmi_power_info_t` as laid out in library versions 24.x, followed by slack so that a
/// library writing a larger structure cannot write past it.
#[allow(dead_code)] // mirrors the C layout: every field is needed, not every one is read
#[repr(C)]
struct PowerInfoV24 {
    current_socket_power: u32,
    average_socket_power: u32,
    gfx_voltage: u32,
    soc_voltage: u32,
    mem_voltage: u32,
    power_limit: u32,
    reserved: [u32; 11],
    slack: [u8; 1024],
}

type Handle = *mut c_void;

struct Api {
    lib: VendorLibrary,
    init: unsafe extern "C" fn(u64) -> u32,
    shut_down: unsafe extern "C" fn() -> u32,
    lib_version: Option<unsafe extern "C" fn(*mut Version) -> u32>,
    socket_handles: unsafe extern "C" fn(*mut u32, *mut Handle) -> u32,
    processor_handles: unsafe extern "C" fn(Handle, *mut u32, *mut Handle) -> u32,
    energy_count: unsafe extern "C" fn(Handle, *mut u64, *mut f32, *mut u64) -> u32,
    power_info: Option<unsafe extern "C" fn(Handle, *mut PowerInfoV24) -> u32>,
    asic_info: Option<unsafe extern "C" fn(Handle, *mut u8) -> u32>,
    device_uuid: Option<unsafe extern "C" fn(Handle, *mut u32, *mut std::ffi::c_char) -> u32>,
    process_list: Option<unsafe extern "C" fn(Handle, *mut u32, *mut ProcInfoV24) -> u32>,
}

// SAFETY: the handles are opaque pointers amdsmi hands out for the process; amdsmi's calls are
// thread-safe (it locks internally), and the sensor is used by one thread at a time.
unsafe impl Send for Api {}

impl Api {
    fn load(library: Option<&Path>) -> Result<Api, SensorError> {
        let lib = VendorLibrary::open(&candidates(library, DEFAULT_LIBRARIES)).map_err(|e| {
            SensorError::Library(format!(
                "amdsmi not found ({e}): AMD GPU energy not measured through amdsmi. Install \
                 ROCm's amd-smi-lib, or set {LIBRARY_ENV} to the full path of libamd_smi.so"
            ))
        })?;
        let need = |e: String| {
            SensorError::Library(format!(
                "not a usable amdsmi library ({e}): AMD GPU energy not measured through amdsmi"
            ))
        };
        // SAFETY: each type below is the C declaration of that function in amdsmi.h.
        unsafe {
            Ok(Api {
                init: lib.function("amdsmi_init").map_err(need)?,
                shut_down: lib.function("amdsmi_shut_down").map_err(need)?,
                lib_version: lib.function("amdsmi_get_lib_version").ok(),
                socket_handles: lib.function("amdsmi_get_socket_handles").map_err(need)?,
                processor_handles: lib.function("amdsmi_get_processor_handles").map_err(need)?,
                energy_count: lib.function("amdsmi_get_energy_count").map_err(need)?,
                power_info: lib.function("amdsmi_get_power_info").ok(),
                asic_info: lib.function("amdsmi_get_gpu_asic_info").ok(),
                device_uuid: lib.function("amdsmi_get_gpu_device_uuid").ok(),
                process_list: lib.function("amdsmi_get_gpu_process_list").ok(),
                lib,
            })
        }
    }

    /// `(year, major, minor, release)` of the library, when it says.
    fn version(&self) -> Option<(u32, u32, u32, u32)> {
        let f = self.lib_version?;
        let mut v = Version {
            year: 0,
            major: 0,
            minor: 0,
            release: 0,
            build: std::ptr::null(),
        };
        // SAFETY: v is a valid amdsmi_version_t the library fills.
        (unsafe { f(&mut v) } == SUCCESS).then_some((v.year, v.major, v.minor, v.release))
    }

    /// Every GPU processor handle, socket by socket, at most [`MAX_HANDLES`] of each.
    fn processors(&self) -> Result<Vec<Handle>, String> {
        let mut n: u32 = 0;
        // SAFETY: a NULL array asks for the count.
        let st = unsafe { (self.socket_handles)(&mut n, std::ptr::null_mut()) };
        if st != SUCCESS {
            return Err(format!("amdsmi_get_socket_handles: {}", status_text(st)));
        }
        let mut sockets = vec![std::ptr::null_mut(); n.min(MAX_HANDLES) as usize];
        let mut n = sockets.len() as u32;
        if n > 0 {
            // SAFETY: sockets has room for n handles.
            let st = unsafe { (self.socket_handles)(&mut n, sockets.as_mut_ptr()) };
            if st != SUCCESS {
                return Err(format!("amdsmi_get_socket_handles: {}", status_text(st)));
            }
            sockets.truncate(n.min(MAX_HANDLES) as usize);
        }
        let mut out = Vec::new();
        for s in sockets {
            let mut m: u32 = 0;
            // SAFETY: s is a socket handle from the library; NULL asks for the count.
            let st = unsafe { (self.processor_handles)(s, &mut m, std::ptr::null_mut()) };
            if st != SUCCESS {
                return Err(format!("amdsmi_get_processor_handles: {}", status_text(st)));
            }
            let mut procs = vec![std::ptr::null_mut(); m.min(MAX_HANDLES) as usize];
            let mut m = procs.len() as u32;
            if m > 0 {
                // SAFETY: procs has room for m handles.
                let st = unsafe { (self.processor_handles)(s, &mut m, procs.as_mut_ptr()) };
                if st != SUCCESS {
                    return Err(format!("amdsmi_get_processor_handles: {}", status_text(st)));
                }
                procs.truncate(m.min(MAX_HANDLES) as usize);
            }
            out.extend(procs);
            if out.len() >= MAX_HANDLES as usize {
                out.truncate(MAX_HANDLES as usize);
                break;
            }
        }
        Ok(out)
    }

    /// `(accumulator, resolution µJ)`.
    fn energy(&self, h: Handle) -> Result<(u64, f32), u32> {
        let (mut acc, mut res, mut ts) = (0u64, 0f32, 0u64);
        // SAFETY: h is a processor handle; the out-pointers are valid.
        let st = unsafe { (self.energy_count)(h, &mut acc, &mut res, &mut ts) };
        if st == SUCCESS {
            Ok((acc, res))
        } else {
            Err(st)
        }
    }

    /// `(socket power W, power cap W)`: the current power (MI300) else the average; a field
    /// at 0xFFFF or 0xFFFFFFFF is amdsmi's "not available".
    fn power(&self, h: Handle) -> Result<(Option<f64>, Option<f64>), String> {
        let f = self
            .power_info
            .ok_or_else(|| "amdsmi_get_power_info missing".to_string())?;
        // SAFETY: all-zero bytes are a valid PowerInfoV24 (integers only).
        let mut info: PowerInfoV24 = unsafe { std::mem::zeroed() };
        // SAFETY: h is a processor handle; info is larger than any amdsmi_power_info_t.
        let st = unsafe { f(h, &mut info) };
        let avail = |v: u32| (v != 0xFFFF && v != u32::MAX).then_some(f64::from(v));
        let power = avail(info.current_socket_power)
            .filter(|w| *w > 0.0)
            .or_else(|| avail(info.average_socket_power));
        let cap = avail(info.power_limit).filter(|w| *w > 0.0);
        // amdsmi returns the power cap's status: a missing cap with a power is still a power.
        if power.is_none() && st != SUCCESS {
            return Err(format!("amdsmi_get_power_info: {}", status_text(st)));
        }
        Ok((power, cap))
    }

    /// The processes on a processor, `(pid, GFX busy ns)`, at most
    /// [`amdsmi_process::MAX_PROCESSES`]; `true` when there were more. Only for library
    /// versions 24.x (the caller checks).
    fn processes(&self, h: Handle) -> Result<(Vec<ProcSample>, bool), String> {
        let f = self
            .process_list
            .ok_or_else(|| "amdsmi_get_gpu_process_list missing".to_string())?;
        let cap = amdsmi_process::MAX_PROCESSES;
        // Room for more entries than asked, should a library write past the count it was given.
        let mut list = vec![ProcInfoV24::zeroed(); cap + 16];
        let mut n = cap as u32;
        // SAFETY: h is a processor handle; list holds at least n amdsmi_proc_info_t (24.x).
        let st = unsafe { f(h, &mut n, list.as_mut_ptr()) };
        let more = st == OUT_OF_RESOURCES;
        if st != SUCCESS && !more {
            return Err(format!("amdsmi_get_gpu_process_list: {}", status_text(st)));
        }
        let got = (n as usize).min(cap);
        Ok((
            list[..got].iter().map(|p| (p.pid, p.gfx_ns)).collect(),
            more || n as usize > cap,
        ))
    }

    fn name(&self, h: Handle) -> Option<String> {
        let f = self.asic_info?;
        // market_name is the first field (64 bytes before 24.x, 256 since); the buffer is
        // larger than any amdsmi_asic_info_t.
        let mut buf = vec![0u8; 4096];
        // SAFETY: buf is writable and larger than the structure.
        if unsafe { f(h, buf.as_mut_ptr()) } != SUCCESS {
            return None;
        }
        Some(c_string(&buf[..256])).filter(|s| !s.is_empty())
    }

    fn uuid(&self, h: Handle) -> Option<String> {
        let f = self.device_uuid?;
        let mut buf = vec![0u8; 128];
        let mut len: u32 = 64;
        // SAFETY: buf has room for len (64) bytes and more.
        if unsafe { f(h, &mut len, buf.as_mut_ptr().cast()) } != SUCCESS {
            return None;
        }
        Some(c_string(&buf[..64])).filter(|s| !s.is_empty())
    }
}

/// How one processor will be read, and why.
struct Plan {
    method: Method,
    note: String,
    /// For a counter: raw → joules, and the first raw value.
    counter: Option<(f64, u64)>,
    first_power: Option<f64>,
    max_power_w: f64,
}

// SAFETY: see `Api`: an amdsmi processor handle is an opaque token valid in the whole process.
unsafe impl Send for Gpu {}

fn plan(api: &Api, h: Handle, layout_ok: &Result<(), String>) -> Plan {
    let power = match layout_ok {
        Ok(()) => api.power(h),
        Err(why) => Err(why.clone()),
    };
    let cap = power.as_ref().ok().and_then(|(_, c)| *c);
    let (max_power_w, bound) = match cap {
        Some(w) => (2.0 * w, format!("2 × power cap {w} W")),
        None => (
            DEFAULT_MAX_POWER_W,
            format!("{DEFAULT_MAX_POWER_W} W, power cap unknown"),
        ),
    };
    let first_power = power.as_ref().ok().and_then(|(p, _)| *p);
    let energy_why = match api.energy(h) {
        Ok((raw, res32)) => {
            let res = f64::from(res32);
            if res.is_finite() && res > 0.0 && res <= 1e6 {
                return Plan {
                    method: Method::AmdsmiEnergy,
                    note: format!(
                        "energy accumulator ({res32} µJ per unit, 64-bit); plausibility bound \
                         {max_power_w} W ({bound})"
                    ),
                    counter: Some((res * 1e-6, raw)),
                    first_power,
                    max_power_w,
                };
            }
            format!("energy counter resolution {res32} µJ is not plausible")
        }
        Err(NOT_SUPPORTED) => format!(
            "energy counter not supported ({}; AMD documents it as unavailable on \
             virtual-machine guests)",
            status_text(NOT_SUPPORTED)
        ),
        Err(st) => format!("energy counter unreadable ({})", status_text(st)),
    };
    match power {
        Ok((Some(_), _)) => Plan {
            method: Method::AmdsmiPower,
            note: format!(
                "{energy_why}: FALLING BACK to integrating amdsmi socket power (W) by the \
                 trapezoid rule, which misses changes between samples"
            ),
            counter: None,
            first_power,
            max_power_w,
        },
        Ok((None, _)) => Plan {
            method: Method::None,
            note: format!("{energy_why}, and amdsmi gives no power: energy not measured"),
            counter: None,
            first_power,
            max_power_w,
        },
        Err(e) => Plan {
            method: Method::None,
            note: format!("{energy_why}, and no power fallback ({e}): energy not measured"),
            counter: None,
            first_power,
            max_power_w,
        },
    }
}

/// Whether the library's version has the `amdsmi_power_info_t` layout read here.
fn check_layout(version: Option<(u32, u32, u32, u32)>, shown: &str) -> Result<(), String> {
    match version {
        Some((y, ..)) if y == SUPPORTED_POWER_INFO_YEAR => Ok(()),
        Some((y, ma, mi, r)) => Err(format!(
            "{shown} is amdsmi {y}.{ma}.{mi}.{r}; wattprint reads amdsmi_power_info_t only as laid \
             out in versions {SUPPORTED_POWER_INFO_YEAR}.x and refuses to read it from another \
             version"
        )),
        None => Err(format!(
            "{shown} does not give its version (amdsmi_get_lib_version); wattprint reads \
             amdsmi_power_info_t only from versions {SUPPORTED_POWER_INFO_YEAR}.x"
        )),
    }
}

struct Gpu {
    handle: Handle,
    /// Every die's handle (the first is `handle`), for the process list.
    die_handles: Vec<Handle>,
    track: Track,
    max_power_w: f64,
    uses: ProcessUse,
    /// A process-list failure was reported once for this GPU.
    procs_warned: bool,
}

/// Energy of every AMD GPU amdsmi enumerates, as cumulative joules since [`AmdSmiSensor::open`].
pub struct AmdSmiSensor {
    api: Api,
    version: Option<(u32, u32, u32, u32)>,
    devices: Vec<Device>,
    gpus: Vec<Gpu>,
    notes: Vec<String>,
    /// For each device, the amdsmi indices of its dies (one, or two for a dual-die part).
    dies: Vec<Vec<u32>>,
    warnings: Vec<String>,
    /// Whether the process list's layout may be read (library 24.x), else why not.
    layout: Result<(), String>,
    /// Reported once: the process list cannot be read with this library.
    layout_warned: bool,
    /// Clock of the process samples.
    epoch: Instant,
    /// The process lists taken since the latest read, for the second of the two questions
    /// asked after it (the processes on each GPU, then their use): one list per read.
    listed: Option<Option<Vec<Option<Vec<ProcSample>>>>>,
}

impl std::fmt::Debug for AmdSmiSensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmdSmiSensor")
            .field("library", &self.api.lib.shown())
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

impl AmdSmiSensor {
    /// Load amdsmi (`library`, else [`DEFAULT_LIBRARIES`]), `amdsmi_init(AMDSMI_INIT_AMD_GPUS)`,
    /// enumerate the GPUs and take a first reading. Devices are `gpu:<first_index + i>` where
    /// `i` is the amdsmi index of the device's (first) die.
    ///
    /// Errors: library missing or not amdsmi ([`SensorError::Library`]), initialisation refused
    /// (the status said), or no AMD GPU ([`SensorError::Unsupported`]).
    pub fn open(library: Option<&Path>, first_index: u32) -> Result<AmdSmiSensor, SensorError> {
        let api = Api::load(library)?;
        let shown = api.lib.shown().to_string();
        // SAFETY: plain call with the documented flag.
        let st = unsafe { (api.init)(INIT_AMD_GPUS) };
        if st != SUCCESS {
            return Err(SensorError::Library(format!(
                "amdsmi ({shown}) could not initialise: {}: AMD GPU energy not measured through \
                 amdsmi",
                status_text(st)
            )));
        }
        let mut sensor = AmdSmiSensor {
            version: api.version(),
            api,
            devices: Vec::new(),
            gpus: Vec::new(),
            notes: Vec::new(),
            dies: Vec::new(),
            warnings: Vec::new(),
            layout: Ok(()),
            layout_warned: false,
            epoch: Instant::now(),
            listed: None,
        };
        // From here `sensor` shuts amdsmi down when dropped, on every error path too.
        let handles = sensor.api.processors().map_err(|e| {
            SensorError::Library(format!(
                "amdsmi ({shown}) could not list the GPUs ({e}): AMD GPU energy not measured"
            ))
        })?;
        if handles.is_empty() {
            return Err(SensorError::Unsupported(format!(
                "amdsmi ({shown}) lists no AMD GPU: AMD GPU energy not measured"
            )));
        }
        let layout = check_layout(sensor.version, &shown);
        let mut last_named: Option<(usize, String, bool)> = None;
        for (i, h) in handles.into_iter().enumerate() {
            let i32_ = i as u32;
            let p = plan(&sensor.api, h, &layout);
            let name = sensor.api.name(h).unwrap_or_else(|| "AMD GPU".to_string());
            // The dual-die rule (module docs).
            let zero_die = match p.counter {
                Some((_, raw)) => raw == 0 && p.first_power.is_none_or(|w| w == 0.0),
                None => false,
            };
            if let Some((dev_ix, prev_name, prev_counts)) = &last_named {
                if zero_die && *prev_counts && *prev_name == name && sensor.dies[*dev_ix].len() == 1
                {
                    sensor.dies[*dev_ix].push(i32_);
                    sensor.gpus[*dev_ix].die_handles.push(h);
                    sensor.notes[*dev_ix].push_str(&format!(
                        "; second die amdsmi #{i} reports 0: one device, read from the first die"
                    ));
                    last_named = None;
                    continue;
                }
            }
            let index = first_index + i32_;
            let id = format!("gpu:{index}");
            let track = match (p.method, p.counter) {
                (Method::AmdsmiEnergy, Some((unit, _))) => {
                    Track::energy(unit, Some(u64::MAX), p.max_power_w)
                }
                (Method::AmdsmiPower, _) => {
                    sensor.warnings.push(format!("{id} ({name}): {}", p.note));
                    Track::power()
                }
                _ => {
                    sensor.warnings.push(format!("{id} ({name}): {}", p.note));
                    Track::unavailable()
                }
            };
            last_named = Some((
                sensor.devices.len(),
                name.clone(),
                p.counter.is_some_and(|(_, raw)| raw > 0),
            ));
            sensor.devices.push(Device {
                id,
                kind: DeviceKind::Gpu,
                method: p.method,
                name,
                gpu_index: Some(index),
                uuid: sensor.api.uuid(h),
                idle_power_w: None,
                factors: Vec::new(),
            });
            sensor.notes.push(p.note);
            sensor.dies.push(vec![i32_]);
            sensor.gpus.push(Gpu {
                handle: h,
                die_handles: vec![h],
                track,
                max_power_w: p.max_power_w,
                uses: ProcessUse::default(),
                procs_warned: false,
            });
        }
        sensor.layout = layout;
        sensor.read_all(Instant::now());
        Ok(sensor)
    }

    pub fn library(&self) -> &str {
        self.api.lib.shown()
    }

    /// The library's version, `year.major.minor.release`, when it gives it.
    pub fn version(&self) -> Option<String> {
        self.version.map(|(y, a, b, c)| format!("{y}.{a}.{b}.{c}"))
    }

    /// Why each device is read the way it is (same order as the devices), for `doctor`.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The amdsmi indices of each device's dies (same order as the devices).
    pub fn dies(&self) -> &[Vec<u32>] {
        &self.dies
    }

    fn read_all(&mut self, now: Instant) -> Reading {
        let mut energy = Vec::with_capacity(self.gpus.len());
        let mut power = Vec::with_capacity(self.gpus.len());
        let lib = "amdsmi";
        for (g, dev) in self.gpus.iter_mut().zip(&self.devices) {
            let label = format!("{} ({})", dev.id, dev.name);
            let max_w = g.max_power_w;
            let read = match dev.method {
                Method::AmdsmiEnergy => match self.api.energy(g.handle) {
                    Ok((raw, _)) => Ok((raw, None)),
                    Err(st) => Err(status_text(st)),
                },
                Method::AmdsmiPower => match self.api.power(g.handle) {
                    Ok((Some(w), _)) => match plausible_watts(w, max_w) {
                        Some(w) => Ok((0, Some(w))),
                        None => Err(format!("power {w} W is not possible for one GPU")),
                    },
                    Ok((None, _)) => Err("no power reading".to_string()),
                    Err(e) => Err(e),
                },
                _ => Ok((0, None)),
            };
            let (e, p) = g.track.update(read, now, &label, lib, &mut self.warnings);
            energy.push(e);
            power.push(p);
        }
        Reading { energy, power }
    }
}

impl AmdSmiSensor {
    /// [`Self::process_samples`], listed once for the two questions asked after a read: the
    /// first lists, the second takes that list.
    fn samples_once(&mut self) -> Option<Vec<Option<Vec<ProcSample>>>> {
        match self.listed.take() {
            Some(kept) => kept,
            None => {
                let fresh = self.process_samples();
                self.listed = Some(fresh.clone());
                fresh
            }
        }
    }

    /// The processes on each device (all its dies), `None` for a device whose list cannot be
    /// read (reported once per device), or `None` overall when this library's layout is not
    /// read (reported once).
    fn process_samples(&mut self) -> Option<Vec<Option<Vec<ProcSample>>>> {
        if let Err(why) = &self.layout {
            if !self.layout_warned {
                self.layout_warned = true;
                self.warnings.push(format!(
                    "amdsmi: the processes on the AMD GPUs are not read ({why}): the runs \
                     sharing a GPU share its dynamic energy evenly"
                ));
            }
            return None;
        }
        let mut out = Vec::with_capacity(self.gpus.len());
        for (g, dev) in self.gpus.iter_mut().zip(&self.devices) {
            let mut all = Vec::new();
            let mut err = None;
            let mut more = false;
            for h in &g.die_handles {
                match self.api.processes(*h) {
                    Ok((v, m)) => {
                        all.extend(v);
                        more |= m;
                    }
                    Err(e) => err = Some(e),
                }
            }
            if (err.is_some() || more) && !g.procs_warned {
                g.procs_warned = true;
                self.warnings.push(match &err {
                    Some(e) => format!(
                        "{} ({}): amdsmi could not list the processes on this GPU ({e}); they \
                         are not attributed to it",
                        dev.id, dev.name
                    ),
                    None => format!(
                        "{} ({}): more than {} processes on this GPU; only the first {} listed \
                         are attributed to it",
                        dev.id,
                        dev.name,
                        amdsmi_process::MAX_PROCESSES,
                        amdsmi_process::MAX_PROCESSES
                    ),
                });
            }
            out.push(if err.is_some() { None } else { Some(all) });
        }
        Some(out)
    }
}

impl Drop for AmdSmiSensor {
    fn drop(&mut self) {
        // SAFETY: amdsmi was initialised in open.
        unsafe {
            (self.api.shut_down)();
        }
    }
}

impl Sensor for AmdSmiSensor {
    fn name(&self) -> &'static str {
        "amdsmi"
    }
    fn devices(&self) -> &[Device] {
        &self.devices
    }
    fn read(&mut self, now: Instant) -> Result<Reading, SensorError> {
        self.listed = None;
        Ok(self.read_all(now))
    }
    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// PIDs with a context on each GPU (both dies of a dual-die part), sorted; a GPU whose
    /// list cannot be read gets an empty list (reported once).
    fn device_pids(&mut self) -> Option<Vec<Vec<u32>>> {
        let samples = self.samples_once()?;
        Some(
            samples
                .into_iter()
                .map(|s| s.map(|v| amdsmi_process::pids(&v)).unwrap_or_default())
                .collect(),
        )
    }

    /// Each process's use (%) of each GPU since the previous call, from the growth of its GFX
    /// engine time ([`super::amdsmi_process`]); `(pid, %)` sorted by pid. A GPU whose list
    /// cannot be read gets an empty list and starts again from its next list.
    fn device_process_util(&mut self) -> Option<Vec<Vec<(u32, f64)>>> {
        let samples = self.samples_once()?;
        let at = self.epoch.elapsed().as_nanos();
        Some(
            samples
                .into_iter()
                .zip(self.gpus.iter_mut())
                .map(|(s, g)| match s {
                    Some(v) => g.uses.update(&v, at),
                    None => {
                        g.uses = ProcessUse::default();
                        Vec::new()
                    }
                })
                .collect(),
        )
    }
}
