//! RAPL energy counters read through the Linux powercap interface
//! (`<sysfs root>/class/powercap`, see [`HostPaths::powercap`]).
//!
//! What is counted (methodology in `docs/sensors-rapl.md`):
//! - one `cpu:package-N` device ([`Method::Rapl`]) per CPU package zone (`intel-rapl:N`, `name`
//!   = `package-N`, or `package-N-die-M` on multi-die parts);
//! - one `ram:dram-N` device ([`Method::RaplDram`]) per DRAM subzone (`intel-rapl:N:M`, `name` =
//!   `dram`). The package domain covers the cores and the uncore; DRAM is a separate RAPL domain
//!   (Intel SDM vol. 3B, "Platform Specific Power Management Support": PKG, PP0, PP1, DRAM and
//!   PSys are distinct domains; Linux `Documentation/power/powercap/powercap.rst`), so DRAM energy
//!   is not inside package energy and is reported as its own RAM device;
//! - never `core`/`uncore` subzones (PP0/PP1: already inside the package), never `psys` (the
//!   whole platform, which contains the packages), and never an `intel-rapl-mmio:N` zone whose
//!   MSR twin `intel-rapl:N` (same `name`) exists.
//!
//! Energy is `energy_uj` (µJ) differenced through [`crate::counter::EnergyChannel`] with the
//! zone's own `max_energy_range_uj` as wrap range, and each difference is checked against a
//! power bound: `2 × constraint_0_max_power_uw` when the zone declares one, else
//! [`DEFAULT_MAX_PACKAGE_W`] per package / [`DEFAULT_MAX_DRAM_W`] per DRAM zone.

use crate::counter::{difference, ChannelEvent, EnergyChannel};
use crate::host::HostPaths;
use crate::sensor::{Device, DeviceKind, Method, Reading, Sensor, SensorError};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Plausibility bound for a package zone that declares no `constraint_0_max_power_uw`: no
/// current server CPU package draws 1000 W (the largest parts are rated around 500 W).
pub const DEFAULT_MAX_PACKAGE_W: f64 = 1000.0;
/// Plausibility bound for a DRAM zone that declares no `constraint_0_max_power_uw`.
pub const DEFAULT_MAX_DRAM_W: f64 = 300.0;
/// Multiplier applied to `constraint_0_max_power_uw` to get the plausibility bound.
pub const CONSTRAINT_FACTOR: f64 = 2.0;

/// Kind of RAPL domain a powercap zone stands for, from its `name` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RaplZoneKind {
    /// `package-N` (or `package-N-die-M`): a whole CPU socket (cores + uncore).
    Package,
    /// `dram`: memory attached to a package; a separate domain, not inside the package.
    Dram,
    /// `core` (PP0): inside the package, never added.
    Core,
    /// `uncore` (PP1, usually the integrated GPU): inside the package, never added.
    Uncore,
    /// `psys`: the whole platform, containing the packages; never added.
    Psys,
    /// Anything else (unknown name, unreadable `name`).
    Other,
}

impl RaplZoneKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RaplZoneKind::Package => "package",
            RaplZoneKind::Dram => "dram",
            RaplZoneKind::Core => "core",
            RaplZoneKind::Uncore => "uncore",
            RaplZoneKind::Psys => "psys",
            RaplZoneKind::Other => "other",
        }
    }
}

/// One powercap zone found under `class/powercap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaplZone {
    /// The zone directory, e.g. `/sys/class/powercap/intel-rapl:0:2` (its file name is the
    /// zone id).
    pub dir: PathBuf,
    /// Content of the zone's `name` file, trimmed (empty when unreadable).
    pub name: String,
    /// Package the zone belongs to: `N` of `package-N` for package zones, the parent package's
    /// number for subzones, the zone index for other top-level zones (e.g. psys).
    pub package: u32,
    pub kind: RaplZoneKind,
    /// True for an `intel-rapl-mmio:*` zone (MMIO twin of an MSR zone).
    pub mmio: bool,
    /// `max_energy_range_uj`: the value at which `energy_uj` wraps; `None` when absent or bad.
    pub max_range_uj: Option<u64>,
    /// `constraint_0_max_power_uw` when present and non-zero.
    pub max_power_uw: Option<u64>,
    /// Whether `energy_uj` could be read and parsed, and why not.
    pub readable: Result<(), String>,
    /// The device this zone is reported as (`cpu:package-0`, `ram:dram-0`); `None` when the zone
    /// is not counted (core, uncore, psys, a duplicate, unknown).
    pub device_id: Option<String>,
}

impl RaplZone {
    /// The zone id, i.e. the directory name (`intel-rapl:0:2`).
    pub fn zone_id(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Everything found under `class/powercap`, for `wattprint doctor` and for [`RaplSensor::open`].
#[derive(Debug, Clone, Default)]
pub struct RaplDiscovery {
    /// The powercap directory that was listed.
    pub root: PathBuf,
    /// Whether that directory exists and could be listed.
    pub powercap_present: bool,
    /// RAPL zones, MSR (`intel-rapl`) first, then `amd-rapl`, then `intel-rapl-mmio`, each by
    /// index.
    pub zones: Vec<RaplZone>,
    /// Human-readable notes: what was ignored and why, what is unreadable and how to fix it.
    pub notes: Vec<String>,
}

impl RaplDiscovery {
    /// Zones that are counted, i.e. that have a device id.
    pub fn counted(&self) -> impl Iterator<Item = &RaplZone> {
        self.zones.iter().filter(|z| z.device_id.is_some())
    }
}

/// The advice attached to a permission error on `energy_uj`, naming the fixes.
///
/// Since Linux 5.10 the RAPL `energy_uj` files are mode 0400 (root only), the kernel's fix for
/// CVE-2020-8694 ("Platypus", a power side channel). `family` is the zone-name prefix
/// (`intel-rapl` or `amd-rapl`) used in the globs.
pub fn permission_advice(family: &str) -> String {
    format!(
        "RAPL energy counters are readable by root only since Linux 5.10 (CVE-2020-8694, \
         \"Platypus\"). Fix one of: (a) until reboot: \
         `sudo chmod a+r /sys/class/powercap/{f}*/energy_uj`; \
         (b) persistently with a udev rule, one line in /etc/udev/rules.d/70-wattprint-rapl.rules: \
         `ACTION==\"add\", SUBSYSTEM==\"powercap\", KERNEL==\"{f}*:*\", RUN+=\"/bin/chmod a+r /sys%p/energy_uj\"` \
         (then `sudo udevadm trigger --subsystem-match=powercap`); \
         (c) persistently with systemd-tmpfiles, one line in /etc/tmpfiles.d/wattprint-rapl.conf: \
         `z /sys/class/powercap/{f}*/energy_uj 0444 - - -`; \
         or (d) run wattprint as root. Making the counters world-readable re-opens that side \
         channel to local users; on shared machines prefer a group (see docs/sensors-rapl.md).",
        f = family
    )
}

/// Map an I/O error on a RAPL file to a [`SensorError`]; `EACCES` gets [`permission_advice`].
fn map_read_error(path: &Path, e: io::Error, family: &str) -> SensorError {
    let path = path.to_path_buf();
    match e.kind() {
        io::ErrorKind::PermissionDenied => SensorError::PermissionDenied {
            path,
            advice: permission_advice(family),
        },
        io::ErrorKind::NotFound => SensorError::Missing {
            what: "RAPL powercap file".into(),
            path,
        },
        _ => SensorError::Io { path, source: e },
    }
}

/// Parse a sysfs counter: one unsigned decimal integer, surrounding whitespace allowed.
fn parse_u64(path: &Path, text: &str) -> Result<u64, SensorError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(SensorError::Invalid {
            path: path.to_path_buf(),
            value: String::new(),
            reason: "empty file, expected an unsigned integer".into(),
        });
    }
    t.parse::<u64>().map_err(|_| SensorError::Invalid {
        path: path.to_path_buf(),
        value: t.chars().take(64).collect(),
        reason: "expected an unsigned decimal integer".into(),
    })
}

fn read_u64(path: &Path, family: &str) -> Result<u64, SensorError> {
    let text = crate::kernel_file::read_small(path).map_err(|e| map_read_error(path, e, family))?;
    parse_u64(path, &text)
}

/// An optional file: `Ok(None)` when it does not exist, an error when it exists but cannot be
/// read or parsed.
fn read_opt_u64(path: &Path, family: &str) -> Result<Option<u64>, SensorError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_u64(path, &text).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(map_read_error(path, e, family)),
    }
}

/// A parsed zone directory name: `<prefix>:<top>` or `<prefix>:<top>:<sub>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ZoneName {
    /// 0 = `intel-rapl` (MSR), 1 = `amd-rapl`, 2 = `intel-rapl-mmio`. Lower wins duplicates.
    priority: u8,
    top: u32,
    sub: Option<u32>,
}

const PREFIXES: [&str; 3] = ["intel-rapl", "amd-rapl", "intel-rapl-mmio"];

impl ZoneName {
    fn parse(dir_name: &str) -> Option<ZoneName> {
        let mut parts = dir_name.split(':');
        let prefix = parts.next()?;
        let priority = PREFIXES.iter().position(|p| *p == prefix)? as u8;
        let top = parts.next()?.parse().ok()?;
        let sub = match parts.next() {
            None => None,
            Some(s) => Some(s.parse().ok()?),
        };
        if parts.next().is_some() {
            return None;
        }
        Some(ZoneName { priority, top, sub })
    }
    fn prefix(self) -> &'static str {
        PREFIXES[self.priority as usize]
    }
    fn family(self) -> &'static str {
        if self.priority == 1 {
            "amd-rapl"
        } else {
            "intel-rapl"
        }
    }
}

/// `package-N` → (N, None); `package-N-die-M` → (N, Some(M)).
fn parse_package_name(name: &str) -> Option<(u32, Option<u32>)> {
    let rest = name.strip_prefix("package-")?;
    match rest.split_once("-die-") {
        Some((p, d)) => Some((p.parse().ok()?, Some(d.parse().ok()?))),
        None => Some((rest.parse().ok()?, None)),
    }
}

fn classify(name: &str, top_level: bool) -> RaplZoneKind {
    match name {
        "dram" => RaplZoneKind::Dram,
        "core" => RaplZoneKind::Core,
        "uncore" => RaplZoneKind::Uncore,
        "psys" => RaplZoneKind::Psys,
        n if top_level && n.starts_with("package") => RaplZoneKind::Package,
        _ => RaplZoneKind::Other,
    }
}

/// Internal per-zone facts that discovery needs beyond [`RaplZone`].
struct Found {
    zname: ZoneName,
    zone: RaplZone,
    /// Package label used in device ids: `package-0`, `package-0-die-1`.
    label: String,
}

/// List the RAPL zones under `<sys>/class/powercap`, say which are counted and whether their
/// `energy_uj` is readable. Never fails: problems become notes.
///
/// Zones are found as the `intel-rapl:*`, `amd-rapl:*` and `intel-rapl-mmio:*` entries of the
/// class directory (symlinks to the device directories in real sysfs) and as the
/// `<prefix>:N:M` subdirectories of each top-level zone, each zone once.
pub fn discover(paths: &HostPaths) -> RaplDiscovery {
    let root = paths.powercap();
    let mut disc = RaplDiscovery {
        root: root.clone(),
        ..Default::default()
    };
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) => {
            disc.notes.push(format!(
                "{}: {e}: no Linux powercap interface, so no RAPL (usual in VMs, most cloud \
                 instances, containers without the host's /sys, WSL and non-Linux systems; on \
                 bare metal try `sudo modprobe intel_rapl_msr`)",
                root.display()
            ));
            return disc;
        }
    };
    disc.powercap_present = true;

    let mut dirs: BTreeMap<ZoneName, PathBuf> = BTreeMap::new();
    let mut other: Vec<String> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        match ZoneName::parse(&name) {
            Some(z) => {
                dirs.insert(z, entry.path());
            }
            None if name.contains(':') => other.push(name),
            None => {}
        }
    }
    // Subzones are also subdirectories of their parent; pick up any the class dir lacks.
    let tops: Vec<(ZoneName, PathBuf)> = dirs
        .iter()
        .filter(|(z, _)| z.sub.is_none())
        .map(|(z, p)| (*z, p.clone()))
        .collect();
    for (top, path) in tops {
        let Ok(sub_entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in sub_entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(z) = ZoneName::parse(&name) {
                if z.priority == top.priority && z.top == top.top && z.sub.is_some() {
                    dirs.entry(z).or_insert_with(|| entry.path());
                }
            }
        }
    }
    if !other.is_empty() {
        other.sort();
        disc.notes.push(format!(
            "ignored non-RAPL powercap zones: {}",
            other.join(", ")
        ));
    }

    // Top-level zones first (BTreeMap order puts `N` before `N:M` within a prefix), so that
    // subzones can look up their parent's package.
    let mut found: Vec<Found> = Vec::new();
    for (zname, dir) in dirs {
        let family = zname.family();
        let zone_id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = match std::fs::read_to_string(dir.join("name")) {
            Ok(n) => n.trim().to_string(),
            Err(e) => {
                disc.notes.push(format!(
                    "{}: {e}; zone {zone_id} is not used",
                    dir.join("name").display()
                ));
                String::new()
            }
        };
        let kind = classify(&name, zname.sub.is_none());
        let (package, label) = match (kind, zname.sub) {
            (RaplZoneKind::Package, _) => match parse_package_name(&name) {
                Some((p, _)) => (p, name.clone()),
                None => {
                    disc.notes.push(format!(
                        "zone {zone_id}: package name `{name}` is not `package-N`; using the \
                         zone index {} as package number",
                        zname.top
                    ));
                    (zname.top, format!("package-{}", zname.top))
                }
            },
            (_, Some(_)) => found
                .iter()
                .find(|f| {
                    f.zname.priority == zname.priority
                        && f.zname.top == zname.top
                        && f.zname.sub.is_none()
                        && f.zone.kind == RaplZoneKind::Package
                })
                .map(|f| (f.zone.package, f.label.clone()))
                .unwrap_or((zname.top, format!("package-{}", zname.top))),
            _ => (zname.top, format!("package-{}", zname.top)),
        };
        let max_range_uj = match read_opt_u64(&dir.join("max_energy_range_uj"), family) {
            Ok(v) => v.filter(|m| *m > 0),
            Err(e) => {
                if matches!(kind, RaplZoneKind::Package | RaplZoneKind::Dram) {
                    disc.notes.push(e.to_string());
                }
                None
            }
        };
        let max_power_uw = read_opt_u64(&dir.join("constraint_0_max_power_uw"), family)
            .ok()
            .flatten()
            .filter(|w| *w > 0);
        let energy = dir.join("energy_uj");
        let readable = match read_u64(&energy, family) {
            Ok(_) => Ok(()),
            Err(SensorError::PermissionDenied { .. }) => Err(
                "permission denied (energy_uj is root-only since Linux 5.10, CVE-2020-8694)".into(),
            ),
            Err(e) => Err(e.to_string()),
        };
        found.push(Found {
            zname,
            label,
            zone: RaplZone {
                dir,
                name,
                package,
                kind,
                mmio: zname.prefix() == "intel-rapl-mmio",
                max_range_uj,
                max_power_uw,
                readable,
                device_id: None,
            },
        });
    }

    select(&mut found, &mut disc.notes);
    disc.zones = found.into_iter().map(|f| f.zone).collect();
    notes_for(&mut disc);
    disc
}

/// Give each package and DRAM zone its device id, keeping one zone per id: the MSR
/// `intel-rapl` zone, else `amd-rapl`, else `intel-rapl-mmio`.
fn select(found: &mut [Found], notes: &mut Vec<String>) {
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..found.len() {
        let f = &found[i];
        let id = match f.zone.kind {
            RaplZoneKind::Package => format!("cpu:{}", f.label),
            RaplZoneKind::Dram => {
                let suffix = f.label.strip_prefix("package-").unwrap_or(&f.label);
                format!("ram:dram-{suffix}")
            }
            _ => continue,
        };
        match owner.get(&id) {
            // `found` is sorted by priority first, so the earlier zone wins.
            Some(&j) => notes.push(format!(
                "{} (`{}`) duplicates {} for {id}; not counted twice",
                f.zone.zone_id(),
                f.zone.name,
                found[j].zone.zone_id()
            )),
            None => {
                owner.insert(id.clone(), i);
                found[i].zone.device_id = Some(id);
            }
        }
    }
}

fn notes_for(disc: &mut RaplDiscovery) {
    let ids = |kinds: &[RaplZoneKind]| -> Vec<String> {
        disc.zones
            .iter()
            .filter(|z| kinds.contains(&z.kind))
            .map(|z| z.zone_id())
            .collect()
    };
    let psys = ids(&[RaplZoneKind::Psys]);
    if !psys.is_empty() {
        disc.notes.push(format!(
            "psys (platform) zone {} ignored: it covers the whole platform including the \
             packages, so adding it would count them twice",
            psys.join(", ")
        ));
    }
    let inner = ids(&[RaplZoneKind::Core, RaplZoneKind::Uncore]);
    if !inner.is_empty() {
        disc.notes.push(format!(
            "core/uncore subzones {} not added: their energy is part of the package's",
            inner.join(", ")
        ));
    }
    let unknown = ids(&[RaplZoneKind::Other]);
    if !unknown.is_empty() {
        disc.notes.push(format!(
            "zones of unknown kind ignored: {}",
            unknown.join(", ")
        ));
    }
    if disc.powercap_present && !disc.zones.iter().any(|z| z.kind == RaplZoneKind::Package) {
        disc.notes.push(format!(
            "no RAPL package zone (`intel-rapl:N` named `package-N`) under {}",
            disc.root.display()
        ));
    }
    let mut extra = Vec::new();
    for z in disc.counted() {
        if z.max_range_uj.is_none() {
            extra.push(format!(
                "{}: no usable max_energy_range_uj; a counter decrease will be treated as a \
                 reset (energy since the reset counted), not a wrap",
                z.zone_id()
            ));
        }
    }
    if let Some(z) = disc
        .counted()
        .find(|z| matches!(&z.readable, Err(m) if m.starts_with("permission denied")))
    {
        let family = ZoneName::parse(&z.zone_id())
            .map(|n| n.family())
            .unwrap_or("intel-rapl");
        extra.push(permission_advice(family));
    }
    disc.notes.extend(extra);
}

/// Counts of the counter events seen on one device since the sensor opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaplEventCounts {
    pub device_id: String,
    /// Wraps at `max_energy_range_uj`, corrected (normal on long runs).
    pub wraps: u64,
    /// Decreases with no usable wrap range: energy since the reset counted (lower bound).
    pub resets: u64,
    /// Differences above the plausibility bound, not counted.
    pub rejected: u64,
}

struct Channel {
    energy_path: PathBuf,
    /// `energy_uj`, kept open and read again from its start (on sysfs; a fake tree's file is
    /// read by its path): no path lookup, open and close every interval.
    energy_file: Option<crate::kernel_file::KeptFile>,
    family: &'static str,
    channel: EnergyChannel,
    max_range: Option<u64>,
    max_power_w: f64,
    bound_source: String,
    last_raw: u64,
    last_at: Instant,
    counts: RaplEventCounts,
}

/// RAPL sensor: package and DRAM energy from powercap `energy_uj` counters.
///
/// `read` returns, per device, the joules counted since [`RaplSensor::open`] (which takes the
/// baseline reading): the sum of the counter differences, wraps corrected with the zone's
/// `max_energy_range_uj`, implausible differences left out and reported.
pub struct RaplSensor {
    devices: Vec<Device>,
    channels: Vec<Channel>,
    discovery: RaplDiscovery,
    warnings: Vec<String>,
}

impl RaplSensor {
    /// Open at the current instant; see [`RaplSensor::open_at`].
    pub fn open(paths: &HostPaths) -> Result<RaplSensor, SensorError> {
        Self::open_at(paths, Instant::now())
    }

    /// Discover the zones, choose the counted ones and take the baseline reading at `now`.
    ///
    /// Errors: [`SensorError::Missing`] without powercap or without a package zone;
    /// [`SensorError::PermissionDenied`] (with [`permission_advice`]) when a package `energy_uj`
    /// is not readable; [`SensorError::Invalid`] naming the file when a package value is
    /// malformed. A DRAM zone that cannot be read is left out with a warning (see
    /// [`Sensor::take_warnings`]), never silently.
    pub fn open_at(paths: &HostPaths, now: Instant) -> Result<RaplSensor, SensorError> {
        let discovery = discover(paths);
        if !discovery.powercap_present {
            return Err(SensorError::Missing {
                what: "Linux powercap interface (RAPL energy counters)".into(),
                path: discovery.root.clone(),
            });
        }
        let mut counted: Vec<&RaplZone> = discovery.counted().collect();
        if !counted.iter().any(|z| z.kind == RaplZoneKind::Package) {
            return Err(SensorError::Missing {
                what: "RAPL package zone (`intel-rapl:N` named `package-N`)".into(),
                path: discovery.root.clone(),
            });
        }
        // Devices: packages first, then DRAM; each by package number, then label.
        counted.sort_by(|a, b| {
            (a.kind, a.package, &a.device_id).cmp(&(b.kind, b.package, &b.device_id))
        });
        let mut devices = Vec::new();
        let mut channels = Vec::new();
        let mut warnings = Vec::new();
        for z in counted {
            let id = z.device_id.clone().unwrap_or_default();
            let family = ZoneName::parse(&z.zone_id())
                .map(|n| n.family())
                .unwrap_or("intel-rapl");
            match open_channel(z, &id, family, now) {
                Ok(ch) => {
                    let (kind, method, what) = if z.kind == RaplZoneKind::Package {
                        (DeviceKind::Cpu, Method::Rapl, z.name.clone())
                    } else {
                        (DeviceKind::Ram, Method::RaplDram, format!("dram of {id}"))
                    };
                    devices.push(Device {
                        id: id.clone(),
                        kind,
                        method,
                        name: format!("RAPL {what} ({})", z.zone_id()),
                        gpu_index: None,
                        uuid: None,
                        idle_power_w: None,
                        factors: Vec::new(),
                    });
                    if ch.max_range.is_none() {
                        warnings.push(format!(
                            "rapl: {id}: {} has no usable max_energy_range_uj; a counter \
                             decrease will be counted as a reset (lower bound), not a wrap",
                            z.dir.display()
                        ));
                    }
                    channels.push(ch);
                }
                Err(e) if z.kind == RaplZoneKind::Package => return Err(e),
                Err(e) => warnings.push(format!(
                    "rapl: {id} left out, DRAM energy not measured by RAPL: {e}"
                )),
            }
        }
        Ok(RaplSensor {
            devices,
            channels,
            discovery,
            warnings,
        })
    }

    /// What discovery found (zones, notes), for diagnostics.
    pub fn discovery(&self) -> &RaplDiscovery {
        &self.discovery
    }

    /// Wraps, resets and rejections per device since open, in device order.
    pub fn event_counts(&self) -> Vec<RaplEventCounts> {
        self.channels.iter().map(|c| c.counts.clone()).collect()
    }

    /// The plausibility bound in watts used for each device, in device order.
    pub fn max_power_w(&self) -> Vec<f64> {
        self.channels.iter().map(|c| c.max_power_w).collect()
    }
}

fn open_channel(
    z: &RaplZone,
    id: &str,
    family: &'static str,
    now: Instant,
) -> Result<Channel, SensorError> {
    let energy_path = z.dir.join("energy_uj");
    let raw = read_u64(&energy_path, family)?;
    // Read strictly here: a malformed range or constraint is an error, not a guess.
    let max_range = read_opt_u64(&z.dir.join("max_energy_range_uj"), family)?.filter(|m| *m > 0);
    let constraint =
        read_opt_u64(&z.dir.join("constraint_0_max_power_uw"), family)?.filter(|w| *w > 0);
    let (max_power_w, bound_source) = match constraint {
        Some(uw) => (
            CONSTRAINT_FACTOR * uw as f64 * 1e-6,
            format!("2 × constraint_0_max_power_uw ({} W)", uw as f64 * 1e-6),
        ),
        None if z.kind == RaplZoneKind::Package => (
            DEFAULT_MAX_PACKAGE_W,
            "default for a package without constraint_0_max_power_uw".into(),
        ),
        None => (
            DEFAULT_MAX_DRAM_W,
            "default for DRAM without constraint_0_max_power_uw".into(),
        ),
    };
    let mut channel = EnergyChannel::new(max_range, 1e-6, max_power_w);
    channel.update(raw, now);
    Ok(Channel {
        energy_file: crate::kernel_file::KeptFile::open(&energy_path).ok(),
        energy_path,
        family,
        channel,
        max_range,
        max_power_w,
        bound_source,
        last_raw: raw,
        last_at: now,
        counts: RaplEventCounts {
            device_id: id.to_string(),
            wraps: 0,
            resets: 0,
            rejected: 0,
        },
    })
}

impl Channel {
    /// The counter now. A failed read drops the kept file: the next read opens it again.
    fn read_raw(&mut self) -> Result<u64, SensorError> {
        if self.energy_file.is_none() {
            self.energy_file = crate::kernel_file::KeptFile::open(&self.energy_path).ok();
        }
        match self.energy_file.as_mut().map(|k| k.read()) {
            Some(Ok(text)) => parse_u64(&self.energy_path, &text),
            Some(Err(e)) => {
                self.energy_file = None;
                Err(map_read_error(&self.energy_path, e, self.family))
            }
            // Not even opened: reading by its path says why.
            None => read_u64(&self.energy_path, self.family),
        }
    }

    /// Feed one raw value; returns a warning to report, if this event deserves one.
    fn feed(&mut self, raw: u64, now: Instant) -> Option<String> {
        let prev = self.last_raw;
        let dt = now.saturating_duration_since(self.last_at).as_secs_f64();
        self.last_raw = raw;
        self.last_at = now;
        let id = &self.counts.device_id;
        match self.channel.update(raw, now) {
            ChannelEvent::Ok => None,
            ChannelEvent::Wrapped => {
                self.counts.wraps += 1;
                (self.counts.wraps == 1).then(|| {
                    format!(
                        "rapl: {id}: energy counter wrapped at max_energy_range_uj = {} µJ ({}); \
                         corrected. Wraps are normal on long runs; further ones are counted, \
                         not reported",
                        self.max_range.unwrap_or(0),
                        self.energy_path.display()
                    )
                })
            }
            ChannelEvent::Reset => {
                self.counts.resets += 1;
                (self.counts.resets == 1).then(|| {
                    format!(
                        "rapl: {id}: energy counter went back from {prev} to {raw} µJ with no \
                         usable wrap range ({}); treated as a reset, only the {:.6} J since the \
                         reset were counted (a lower bound). Further resets are counted, not \
                         reported",
                        self.energy_path.display(),
                        raw as f64 * 1e-6
                    )
                })
            }
            ChannelEvent::Rejected { implied_watts } => {
                self.counts.rejected += 1;
                let n = self.counts.rejected;
                // First one in full, then at 10, 100, 1000... so that a persistent fault shows.
                let report = n == 1 || (n >= 10 && 10u64.pow(n.ilog10()) == n);
                report.then(|| {
                    let joules = difference(prev, raw, self.max_range).raw() as f64 * 1e-6;
                    format!(
                        "rapl: {id}: implausible counter jump rejected ({} rejected so far): \
                         {joules:.3} J in {dt:.3} s implies {implied_watts:.0} W, above the \
                         {:.0} W bound ({}); that interval was not counted, so the total is a \
                         lower bound ({})",
                        n,
                        self.max_power_w,
                        self.bound_source,
                        self.energy_path.display()
                    )
                })
            }
        }
    }
}

impl Sensor for RaplSensor {
    fn name(&self) -> &'static str {
        "rapl"
    }

    fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// Cumulative joules per device since open. All counters are read before any is updated,
    /// so a failed read leaves the sensor unchanged. RAPL gives no instantaneous power: `power`
    /// is `None` for every device.
    fn read(&mut self, now: Instant) -> Result<Reading, SensorError> {
        let raws = self
            .channels
            .iter_mut()
            .map(Channel::read_raw)
            .collect::<Result<Vec<u64>, SensorError>>()?;
        for (c, raw) in self.channels.iter_mut().zip(raws) {
            if let Some(w) = c.feed(raw, now) {
                self.warnings.push(w);
            }
        }
        Ok(Reading {
            energy: self.channels.iter().map(|c| c.channel.total()).collect(),
            power: vec![None; self.channels.len()],
        })
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn eacces_maps_to_permission_denied_with_fixes() {
        let p = Path::new("/sys/class/powercap/intel-rapl:0/energy_uj");
        let e = map_read_error(
            p,
            io::Error::from(io::ErrorKind::PermissionDenied),
            "intel-rapl",
        );
        match e {
            SensorError::PermissionDenied { path, advice } => {
                assert_eq!(path, p);
                assert!(advice.contains("CVE-2020-8694"), "{advice}");
                assert!(
                    advice.contains("sudo chmod a+r /sys/class/powercap/intel-rapl*/energy_uj"),
                    "{advice}"
                );
                assert!(advice.contains("SUBSYSTEM==\"powercap\""), "{advice}");
                assert!(advice.contains("RUN+=\"/bin/chmod a+r /sys%p/energy_uj\""));
                assert!(advice.contains("z /sys/class/powercap/intel-rapl*/energy_uj 0444"));
                assert!(advice.contains("as root"));
            }
            other => panic!("expected PermissionDenied, got {other:?}"),
        }
        // the same through the sysfs error of EACCES (errno 13)
        let e = map_read_error(p, io::Error::from_raw_os_error(libc::EACCES), "amd-rapl");
        assert!(
            matches!(&e, SensorError::PermissionDenied { advice, .. } if advice.contains("amd-rapl*"))
        );
        let e = map_read_error(p, io::Error::from(io::ErrorKind::NotFound), "intel-rapl");
        assert!(matches!(e, SensorError::Missing { .. }));
        let e = map_read_error(p, io::Error::from_raw_os_error(libc::EIO), "intel-rapl");
        assert!(matches!(e, SensorError::Io { .. }));
    }

    #[test]
    fn parses_values_and_names() {
        let p = Path::new("x/energy_uj");
        assert_eq!(parse_u64(p, "123456\n").unwrap(), 123456);
        assert!(matches!(parse_u64(p, ""), Err(SensorError::Invalid { .. })));
        assert!(matches!(
            parse_u64(p, "-5"),
            Err(SensorError::Invalid { .. })
        ));
        assert!(matches!(
            parse_u64(p, "1.5"),
            Err(SensorError::Invalid { .. })
        ));
        assert_eq!(
            ZoneName::parse("intel-rapl:1:2"),
            Some(ZoneName {
                priority: 0,
                top: 1,
                sub: Some(2)
            })
        );
        assert_eq!(
            ZoneName::parse("intel-rapl-mmio:0").map(|z| z.priority),
            Some(2)
        );
        assert_eq!(ZoneName::parse("amd-rapl:3").map(|z| z.top), Some(3));
        assert_eq!(ZoneName::parse("intel-rapl"), None);
        assert_eq!(ZoneName::parse("intel-rapl:0:1:2"), None);
        assert_eq!(ZoneName::parse("dtpm:0"), None);
        assert_eq!(parse_package_name("package-1"), Some((1, None)));
        assert_eq!(parse_package_name("package-0-die-1"), Some((0, Some(1))));
        assert_eq!(parse_package_name("package"), None);
        assert_eq!(classify("package-0", true), RaplZoneKind::Package);
        assert_eq!(classify("package-0", false), RaplZoneKind::Other);
        assert_eq!(classify("dram", false), RaplZoneKind::Dram);
    }
}
