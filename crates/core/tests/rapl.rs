//! RAPL sensor on fake powercap trees built in a temporary directory.
//!
//! Each test drives the fake counters with known energies between reads and checks the
//! sensor's cumulative joules against that truth within `TOL` (1 µJ, the counter's unit).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wattprint_core::host::HostPaths;
use wattprint_core::sensor::{DeviceKind, Method, Sensor, SensorError};
use wattprint_core::sensors::rapl::{discover, RaplSensor, RaplZoneKind};

const TOL: f64 = 1e-6;
const UJ: u64 = 1_000_000;

/// How zones are laid out on disk.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// Like real sysfs: zone directories under `devices/virtual/powercap/<type>/...`, subzones
    /// nested in their parent, and a symlink in `class/powercap` for every zone and subzone.
    Symlinked,
    /// Top-level zones as plain directories in `class/powercap`; subzones only nested inside
    /// their parent (no class entry).
    NestedOnly,
}

/// A fake `/sys` with a powercap class directory.
struct FakeSys {
    tmp: tempfile::TempDir,
    layout: Layout,
    zones: HashMap<String, (PathBuf, Option<u64>)>,
}

impl FakeSys {
    fn new(layout: Layout) -> FakeSys {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("sys/class/powercap")).unwrap();
        FakeSys {
            tmp,
            layout,
            zones: HashMap::new(),
        }
    }
    /// A `/sys` without `class/powercap`.
    fn without_powercap() -> FakeSys {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("sys/class")).unwrap();
        FakeSys {
            tmp,
            layout: Layout::NestedOnly,
            zones: HashMap::new(),
        }
    }
    fn sys(&self) -> PathBuf {
        self.tmp.path().join("sys")
    }
    fn paths(&self) -> HostPaths {
        HostPaths::new(self.sys(), self.tmp.path().join("proc"))
    }
    fn class(&self) -> PathBuf {
        self.sys().join("class/powercap")
    }

    /// Add zone `id` (`intel-rapl:0`, `intel-rapl:0:2`...) with its `name`, `energy_uj`, and
    /// optional `max_energy_range_uj` and `constraint_0_max_power_uw`. A subzone's parent must
    /// exist already.
    fn zone(
        &mut self,
        id: &str,
        name: &str,
        energy_uj: u64,
        max_range_uj: Option<u64>,
        max_power_uw: Option<u64>,
    ) -> PathBuf {
        let colons: Vec<&str> = id.split(':').collect();
        let control = colons[0];
        let parent = (colons.len() == 3).then(|| format!("{}:{}", colons[0], colons[1]));
        let dir = match (self.layout, &parent) {
            (_, Some(p)) => self.zones[p].0.join(id),
            (Layout::Symlinked, None) => self
                .sys()
                .join("devices/virtual/powercap")
                .join(control)
                .join(id),
            (Layout::NestedOnly, None) => self.class().join(id),
        };
        std::fs::create_dir_all(&dir).unwrap();
        if self.layout == Layout::Symlinked {
            std::os::unix::fs::symlink(&dir, self.class().join(id)).unwrap();
        }
        std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
        std::fs::write(dir.join("enabled"), "1\n").unwrap();
        std::fs::write(dir.join("energy_uj"), format!("{energy_uj}\n")).unwrap();
        if let Some(m) = max_range_uj {
            std::fs::write(dir.join("max_energy_range_uj"), format!("{m}\n")).unwrap();
        }
        if let Some(w) = max_power_uw {
            std::fs::write(dir.join("constraint_0_max_power_uw"), format!("{w}\n")).unwrap();
        }
        self.zones
            .insert(id.to_string(), (dir.clone(), max_range_uj));
        dir
    }

    fn energy_path(&self, id: &str) -> PathBuf {
        self.zones[id].0.join("energy_uj")
    }
    fn get(&self, id: &str) -> u64 {
        std::fs::read_to_string(self.energy_path(id))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
    /// Advance zone `id` by `joules`, wrapping like the hardware: the counter runs from 0 to
    /// `max_energy_range_uj` and starts again (the convention of `counter::difference`).
    /// Returns true when it wrapped.
    fn add(&self, id: &str, joules: f64) -> bool {
        let d = (joules * 1e6).round() as u64;
        let mut v = self.get(id) + d;
        let mut wrapped = false;
        if let Some(max) = self.zones[id].1 {
            while v > max {
                v -= max;
                wrapped = true;
            }
        }
        std::fs::write(self.energy_path(id), format!("{v}\n")).unwrap();
        wrapped
    }
    fn write_raw(&self, id: &str, text: &str) {
        std::fs::write(self.energy_path(id), text).unwrap();
    }
}

fn ids(s: &RaplSensor) -> Vec<String> {
    s.devices().iter().map(|d| d.id.clone()).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOL
}

/// Typical Intel server socket with every zone type: only package and DRAM are reported.
#[test]
fn package_and_dram_only_never_core_uncore_mmio_psys() {
    let mut f = FakeSys::new(Layout::Symlinked);
    f.zone(
        "intel-rapl:0",
        "package-0",
        1_000 * UJ,
        Some(262_143_328_850),
        Some(150_000_000),
    );
    f.zone(
        "intel-rapl:0:0",
        "core",
        500 * UJ,
        Some(262_143_328_850),
        None,
    );
    f.zone(
        "intel-rapl:0:1",
        "uncore",
        7 * UJ,
        Some(262_143_328_850),
        None,
    );
    f.zone(
        "intel-rapl:0:2",
        "dram",
        300 * UJ,
        Some(65_712_999_613),
        None,
    );
    f.zone(
        "intel-rapl-mmio:0",
        "package-0",
        2_000 * UJ,
        Some(262_143_328_850),
        Some(150_000_000),
    );
    f.zone(
        "intel-rapl:1",
        "psys",
        9_000 * UJ,
        Some(262_143_328_850),
        None,
    );

    let t0 = Instant::now();
    let mut s = RaplSensor::open_at(&f.paths(), t0).unwrap();
    assert_eq!(s.name(), "rapl");
    assert_eq!(ids(&s), vec!["cpu:package-0", "ram:dram-0"]);
    let d = s.devices();
    assert_eq!((d[0].kind, d[0].method), (DeviceKind::Cpu, Method::Rapl));
    assert_eq!(
        (d[1].kind, d[1].method),
        (DeviceKind::Ram, Method::RaplDram)
    );
    // bound from constraint_0_max_power_uw (150 W) x 2; DRAM without one gets the default
    assert_eq!(s.max_power_w(), vec![300.0, 300.0]);

    for step in 1..=5u32 {
        f.add("intel-rapl:0", 50.0);
        f.add("intel-rapl:0:2", 5.0);
        // large increments on zones that must never be counted
        f.add("intel-rapl:0:0", 40.0);
        f.add("intel-rapl:0:1", 9.0);
        f.add("intel-rapl-mmio:0", 280.0);
        f.add("intel-rapl:1", 2_500.0);
        let r = s.read(t0 + Duration::from_secs(step as u64)).unwrap();
        assert_eq!(r.energy.len(), 2);
        assert!(close(r.energy[0].0, 50.0 * step as f64), "{:?}", r.energy);
        assert!(close(r.energy[1].0, 5.0 * step as f64), "{:?}", r.energy);
        assert_eq!(r.power, vec![None, None]);
    }
    assert!(s.take_warnings().is_empty());

    // discovery lists every zone once, marks what is counted and explains the rest
    let disc = discover(&f.paths());
    assert_eq!(disc.zones.len(), 6, "{:#?}", disc.zones);
    let by_id = |id: &str| disc.zones.iter().find(|z| z.zone_id() == id).unwrap();
    assert_eq!(
        by_id("intel-rapl:0").device_id.as_deref(),
        Some("cpu:package-0")
    );
    assert_eq!(
        by_id("intel-rapl:0:2").device_id.as_deref(),
        Some("ram:dram-0")
    );
    assert_eq!(by_id("intel-rapl:0:2").kind, RaplZoneKind::Dram);
    assert_eq!(by_id("intel-rapl:0:2").package, 0);
    let mmio = by_id("intel-rapl-mmio:0");
    assert!(mmio.mmio);
    assert_eq!(mmio.device_id, None);
    assert_eq!(by_id("intel-rapl:1").kind, RaplZoneKind::Psys);
    assert_eq!(by_id("intel-rapl:1").device_id, None);
    assert_eq!(by_id("intel-rapl:0:0").kind, RaplZoneKind::Core);
    assert_eq!(by_id("intel-rapl:0:1").kind, RaplZoneKind::Uncore);
    assert!(disc.zones.iter().all(|z| z.readable.is_ok()));
    let notes = disc.notes.join("\n");
    assert!(notes.contains("psys"), "{notes}");
    assert!(notes.contains("intel-rapl-mmio:0"), "{notes}");
    assert!(notes.contains("core/uncore"), "{notes}");
}

#[test]
fn mmio_zone_used_only_without_its_msr_twin() {
    let mut f = FakeSys::new(Layout::NestedOnly);
    // no max_energy_range_uj: the sensor must say that decreases count as resets
    f.zone("intel-rapl-mmio:0", "package-0", 10 * UJ, None, None);
    let t0 = Instant::now();
    let mut s = RaplSensor::open_at(&f.paths(), t0).unwrap();
    assert_eq!(ids(&s), vec!["cpu:package-0"]);
    assert!(s.devices()[0].name.contains("intel-rapl-mmio:0"));
    let w = s.take_warnings().join("\n");
    assert!(
        w.contains("max_energy_range_uj") && w.contains("reset"),
        "{w}"
    );
    f.add("intel-rapl-mmio:0", 12.5);
    let r = s.read(t0 + Duration::from_secs(1)).unwrap();
    assert!(close(r.energy[0].0, 12.5));
    // a decrease without a range: only the new value counts (lower bound), reported once
    f.write_raw("intel-rapl-mmio:0", "3000000\n");
    let r = s.read(t0 + Duration::from_secs(2)).unwrap();
    assert!(close(r.energy[0].0, 15.5), "{:?}", r.energy);
    assert!(s.take_warnings().join("\n").contains("reset"));
    assert_eq!(s.event_counts()[0].resets, 1);
}

#[test]
fn two_packages_each_with_dram() {
    let mut f = FakeSys::new(Layout::NestedOnly);
    let range = Some(262_143_328_850);
    f.zone("intel-rapl:0", "package-0", 100 * UJ, range, None);
    f.zone("intel-rapl:0:0", "dram", 10 * UJ, range, None);
    f.zone("intel-rapl:1", "package-1", 200 * UJ, range, None);
    f.zone("intel-rapl:1:0", "dram", 20 * UJ, range, None);
    let t0 = Instant::now();
    let mut s = RaplSensor::open_at(&f.paths(), t0).unwrap();
    assert_eq!(
        ids(&s),
        vec!["cpu:package-0", "cpu:package-1", "ram:dram-0", "ram:dram-1"]
    );
    // no constraint files: the defaults (1000 W per package, 300 W per DRAM)
    assert_eq!(s.max_power_w(), vec![1000.0, 1000.0, 300.0, 300.0]);
    for step in 1..=4u32 {
        f.add("intel-rapl:0", 50.0);
        f.add("intel-rapl:1", 70.0);
        f.add("intel-rapl:0:0", 5.0);
        f.add("intel-rapl:1:0", 7.0);
        let r = s.read(t0 + Duration::from_secs(2 * step as u64)).unwrap();
        let k = step as f64;
        let want = [50.0 * k, 70.0 * k, 5.0 * k, 7.0 * k];
        for (got, want) in r.energy.iter().zip(want) {
            assert!(close(got.0, want), "{:?} vs {want}", r.energy);
        }
    }
    assert!(s.take_warnings().is_empty());
}

#[test]
fn multi_die_packages_are_separate_devices() {
    let mut f = FakeSys::new(Layout::NestedOnly);
    f.zone("intel-rapl:0", "package-0-die-0", UJ, Some(1 << 40), None);
    f.zone("intel-rapl:1", "package-0-die-1", UJ, Some(1 << 40), None);
    let t0 = Instant::now();
    let mut s = RaplSensor::open_at(&f.paths(), t0).unwrap();
    assert_eq!(ids(&s), vec!["cpu:package-0-die-0", "cpu:package-0-die-1"]);
    f.add("intel-rapl:0", 30.0);
    f.add("intel-rapl:1", 31.0);
    let r = s.read(t0 + Duration::from_secs(1)).unwrap();
    assert!(close(r.energy[0].0, 30.0) && close(r.energy[1].0, 31.0));
    let disc = discover(&f.paths());
    assert!(disc.zones.iter().all(|z| z.package == 0));
}

#[test]
fn wraparound_is_corrected_and_warned_once() {
    let mut f = FakeSys::new(Layout::Symlinked);
    let max = 100 * UJ; // 100 J range, so +50 J steps wrap every other step
    f.zone("intel-rapl:0", "package-0", 90 * UJ, Some(max), None);
    f.zone("intel-rapl:0:0", "dram", 0, Some(1 << 40), None);
    let t0 = Instant::now();
    let mut s = RaplSensor::open_at(&f.paths(), t0).unwrap();
    let mut wraps = 0;
    let mut warnings = Vec::new();
    for step in 1..=6u32 {
        if f.add("intel-rapl:0", 50.0) {
            wraps += 1;
        }
        f.add("intel-rapl:0:0", 4.0);
        let r = s.read(t0 + Duration::from_secs(step as u64)).unwrap();
        assert!(close(r.energy[0].0, 50.0 * step as f64), "{:?}", r.energy);
        assert!(close(r.energy[1].0, 4.0 * step as f64), "{:?}", r.energy);
        warnings.extend(s.take_warnings());
    }
    assert_eq!(wraps, 3);
    assert_eq!(s.event_counts()[0].wraps, 3);
    assert_eq!(s.event_counts()[1].wraps, 0);
    // one message for three wraps
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("wrapped") && warnings[0].contains("cpu:package-0"));
}

#[test]
fn implausible_jump_is_rejected_and_warned() {
    let mut f = FakeSys::new(Layout::NestedOnly);
    let range = Some(1u64 << 40);
    // 100 W constraint: bound 200 W
    f.zone("intel-rapl:0", "package-0", 0, range, Some(100_000_000));
    f.zone("intel-rapl:0:0", "dram", 0, range, None);
    let t0 = Instant::now();
    let s1 = Duration::from_secs(1);
    let mut s = RaplSensor::open_at(&f.paths(), t0).unwrap();
    assert_eq!(s.max_power_w(), vec![200.0, 300.0]);

    f.add("intel-rapl:0", 50.0);
    f.add("intel-rapl:0:0", 5.0);
    let r = s.read(t0 + s1).unwrap();
    assert!(close(r.energy[0].0, 50.0) && close(r.energy[1].0, 5.0));

    // 1000 J in 1 s (1000 W > 200 W) and 400 J of DRAM in 1 s (> 300 W default)
    f.add("intel-rapl:0", 1000.0);
    f.add("intel-rapl:0:0", 400.0);
    let r = s.read(t0 + 2 * s1).unwrap();
    assert!(close(r.energy[0].0, 50.0), "{:?}", r.energy);
    assert!(close(r.energy[1].0, 5.0), "{:?}", r.energy);
    let w = s.take_warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].contains("cpu:package-0") && w[0].contains("implausible"));
    assert!(
        w[0].contains("200 W") && w[0].contains("1000 W"),
        "{}",
        w[0]
    );
    assert!(
        w[1].contains("ram:dram-0") && w[1].contains("300 W"),
        "{}",
        w[1]
    );

    // counting resumes from the new value
    f.add("intel-rapl:0", 50.0);
    f.add("intel-rapl:0:0", 5.0);
    let r = s.read(t0 + 3 * s1).unwrap();
    assert!(close(r.energy[0].0, 100.0) && close(r.energy[1].0, 10.0));

    // a second rejection is counted but not reported again
    f.add("intel-rapl:0", 900.0);
    let r = s.read(t0 + 4 * s1).unwrap();
    assert!(close(r.energy[0].0, 100.0));
    assert!(s.take_warnings().is_empty());
    assert_eq!(s.event_counts()[0].rejected, 2);
    assert_eq!(s.event_counts()[1].rejected, 1);
}

#[test]
fn unreadable_energy_file_is_an_error_naming_it() {
    // Tests may run as root, where mode 000 does not block reads; an `energy_uj` that is a
    // directory fails to read for root too.
    let mut f = FakeSys::new(Layout::Symlinked);
    let dir = f.zone("intel-rapl:0", "package-0", 0, Some(1 << 40), None);
    let energy = dir.join("energy_uj");
    std::fs::remove_file(&energy).unwrap();
    std::fs::create_dir(&energy).unwrap();
    let err = RaplSensor::open(&f.paths()).err().expect("must fail");
    match &err {
        SensorError::Io { path, .. } => assert_eq!(path, &f.class().join("intel-rapl:0/energy_uj")),
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(err.to_string().contains("intel-rapl:0/energy_uj"), "{err}");
    let disc = discover(&f.paths());
    assert!(disc.zones[0].readable.is_err());

    // A dangling symlink (file gone): Missing, naming it.
    std::fs::remove_dir(&energy).unwrap();
    std::os::unix::fs::symlink(dir.join("nowhere"), &energy).unwrap();
    let err = RaplSensor::open(&f.paths()).err().expect("must fail");
    assert!(
        matches!(&err, SensorError::Missing { path, .. } if path.ends_with("intel-rapl:0/energy_uj")),
        "{err:?}"
    );
}

#[test]
fn unreadable_dram_is_left_out_with_a_warning() {
    let mut f = FakeSys::new(Layout::NestedOnly);
    f.zone("intel-rapl:0", "package-0", 0, Some(1 << 40), None);
    let dram = f.zone("intel-rapl:0:0", "dram", 0, Some(1 << 40), None);
    std::fs::remove_file(dram.join("energy_uj")).unwrap();
    std::fs::create_dir(dram.join("energy_uj")).unwrap();
    let t0 = Instant::now();
    let mut s = RaplSensor::open_at(&f.paths(), t0).unwrap();
    assert_eq!(ids(&s), vec!["cpu:package-0"]);
    let w = s.take_warnings().join("\n");
    assert!(w.contains("ram:dram-0") && w.contains("left out"), "{w}");
    f.add("intel-rapl:0", 20.0);
    let r = s.read(t0 + Duration::from_secs(1)).unwrap();
    assert_eq!(r.energy.len(), 1);
    assert!(close(r.energy[0].0, 20.0));
}

#[test]
fn mode_000_is_permission_denied_with_fix_when_not_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // root bypasses file modes; the mapping of EACCES to PermissionDenied with advice is
        // unit-tested inside the module (sensors::rapl::tests).
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let mut f = FakeSys::new(Layout::NestedOnly);
    let dir = f.zone("intel-rapl:0", "package-0", 0, Some(1 << 40), None);
    std::fs::set_permissions(
        dir.join("energy_uj"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    match RaplSensor::open(&f.paths()).err().expect("must fail") {
        SensorError::PermissionDenied { path, advice } => {
            assert!(path.ends_with("intel-rapl:0/energy_uj"));
            assert!(advice.contains("chmod a+r") && advice.contains("udev"));
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    let disc = discover(&f.paths());
    assert!(disc.notes.join("\n").contains("CVE-2020-8694"));
}

#[test]
fn garbage_values_are_invalid_naming_the_file() {
    let mut f = FakeSys::new(Layout::NestedOnly);
    f.zone("intel-rapl:0", "package-0", 0, Some(1 << 40), None);
    f.write_raw("intel-rapl:0", "abc\n");
    let err = RaplSensor::open(&f.paths()).err().expect("must fail");
    match &err {
        SensorError::Invalid { path, value, .. } => {
            assert_eq!(path, &f.energy_path("intel-rapl:0"));
            assert_eq!(value, "abc");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(err.to_string().contains("energy_uj"), "{err}");

    f.write_raw("intel-rapl:0", "");
    assert!(matches!(
        RaplSensor::open(&f.paths()),
        Err(SensorError::Invalid { .. })
    ));

    // garbage appearing after open: the read fails, and the sensor is unchanged by it
    f.write_raw("intel-rapl:0", "1000000\n");
    let t0 = Instant::now();
    let mut s = RaplSensor::open_at(&f.paths(), t0).unwrap();
    f.write_raw("intel-rapl:0", "12x\n");
    let err = s.read(t0 + Duration::from_secs(1)).expect_err("must fail");
    assert!(matches!(err, SensorError::Invalid { ref value, .. } if value == "12x"));
    f.write_raw("intel-rapl:0", "41000000\n");
    let r = s.read(t0 + Duration::from_secs(2)).unwrap();
    assert!(close(r.energy[0].0, 40.0), "{:?}", r.energy);

    // a malformed max_energy_range_uj is an error too
    let dir = f.zones["intel-rapl:0"].0.clone();
    std::fs::write(dir.join("max_energy_range_uj"), "lots\n").unwrap();
    match RaplSensor::open(&f.paths()) {
        Err(SensorError::Invalid { path, .. }) => assert!(path.ends_with("max_energy_range_uj")),
        other => panic!("expected Invalid, got {:?}", other.err()),
    }
}

#[test]
fn no_powercap_or_no_package_is_missing() {
    let f = FakeSys::without_powercap();
    match RaplSensor::open(&f.paths()) {
        Err(SensorError::Missing { path, .. }) => assert_eq!(path, f.class()),
        other => panic!("expected Missing, got {:?}", other.err()),
    }
    let disc = discover(&f.paths());
    assert!(!disc.powercap_present);
    assert!(disc.zones.is_empty());
    assert!(disc.notes.join("\n").contains("powercap"));

    // powercap present, but only a control-type dir and a psys zone: no package
    let mut f = FakeSys::new(Layout::NestedOnly);
    std::fs::create_dir_all(f.class().join("intel-rapl")).unwrap();
    f.zone("intel-rapl:1", "psys", 0, Some(1 << 40), None);
    match RaplSensor::open(&f.paths()) {
        Err(e @ SensorError::Missing { .. }) => assert!(e.to_string().contains("package")),
        other => panic!("expected Missing, got {:?}", other.err()),
    }
    let disc = discover(&f.paths());
    assert!(disc.powercap_present);
    assert!(disc.notes.join("\n").contains("no RAPL package zone"));
}

/// AMD Zen exposes its RAPL through the same `intel-rapl` powercap type: a `package-N` zone with
/// `core` subzones and no DRAM domain, usually without `constraint_*` files.
#[test]
fn amd_style_trees() {
    let mut f = FakeSys::new(Layout::Symlinked);
    let range = Some(4_294_967_295 * 15);
    f.zone("intel-rapl:0", "package-0", 5 * UJ, range, None);
    f.zone("intel-rapl:0:0", "core", 4 * UJ, range, None);
    f.zone("intel-rapl:0:1", "core", 3 * UJ, range, None);
    let t0 = Instant::now();
    let mut s = RaplSensor::open_at(&f.paths(), t0).unwrap();
    assert_eq!(ids(&s), vec!["cpu:package-0"]);
    for step in 1..=3u32 {
        f.add("intel-rapl:0", 80.0);
        f.add("intel-rapl:0:0", 35.0);
        f.add("intel-rapl:0:1", 35.0);
        let r = s.read(t0 + Duration::from_secs(step as u64)).unwrap();
        assert_eq!(r.energy.len(), 1);
        assert!(close(r.energy[0].0, 80.0 * step as f64));
    }

    // defensive: an `amd-rapl` prefix is read the same way
    let mut f = FakeSys::new(Layout::NestedOnly);
    f.zone("amd-rapl:0", "package-0", 0, range, None);
    f.zone("amd-rapl:0:0", "core", 0, range, None);
    f.zone("amd-rapl:1", "package-1", 0, range, None);
    let mut s = RaplSensor::open_at(&f.paths(), t0).unwrap();
    assert_eq!(ids(&s), vec!["cpu:package-0", "cpu:package-1"]);
    f.add("amd-rapl:0", 60.0);
    f.add("amd-rapl:0:0", 50.0);
    f.add("amd-rapl:1", 61.0);
    let r = s.read(t0 + Duration::from_secs(1)).unwrap();
    assert!(close(r.energy[0].0, 60.0) && close(r.energy[1].0, 61.0));
    let disc = discover(&f.paths());
    assert_eq!(disc.zones.len(), 3);
    assert!(disc.zones.iter().all(|z| !z.mmio));
}

#[allow(dead_code)]
fn _assert_send(s: RaplSensor) -> Box<dyn Sensor> {
    Box::new(s)
}
