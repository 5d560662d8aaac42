//! AMD GPU sensors: amdsmi and ROCm SMI against C fakes built from `tests/fake_amd/` and loaded
//! through the same path as the real libraries, and ROCm SMI against Debian's real
//! `librocm_smi64.so.1` on this machine (no AMD GPU: a clean "no AMD GPU").
//!
//! The fakes' state files are named by environment variables, which are process-global: every
//! test here takes `LOCK`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wattprint_core::discovery::{discover, DiscoverOptions};
use wattprint_core::env::Env;
use wattprint_core::host::HostPaths;
use wattprint_core::sensor::{Method, Sensor, SensorError};
use wattprint_core::sensors::amdsmi::AmdSmiSensor;
use wattprint_core::sensors::rocm_smi::RocmSmiSensor;
use wattprint_core::units::Watts;

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn compile(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let mut last = String::new();
    for cc in ["cc", "gcc"] {
        match Command::new(cc)
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(src)
            .output()
        {
            Ok(o) if o.status.success() => return out,
            Ok(o) => last = format!("{cc}: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => last = format!("{cc}: {e}"),
        }
    }
    panic!("could not compile {}: {last}", src.display());
}

fn fake(dir: &Path, file: &str, lib: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fake_amd")
        .join(file);
    compile(&src, dir, lib)
}

/// The fake's state file: `set` rewrites it with every key given so far.
struct State {
    path: PathBuf,
    lines: Vec<(String, String)>,
}

impl State {
    fn new(path: PathBuf) -> State {
        std::fs::write(&path, "").unwrap();
        State {
            path,
            lines: Vec::new(),
        }
    }
    fn set(&mut self, key: &str, value: impl ToString) {
        let value = value.to_string();
        match self.lines.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = value,
            None => self.lines.push((key.to_string(), value)),
        }
        let text: String = self
            .lines
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(&self.path, text).unwrap();
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

/// Joules per accumulator unit for the fakes' default resolution, as the library gives it (f32).
fn unit_j() -> f64 {
    f64::from(15.259f32) * 1e-6
}

/// An empty host (no RAPL, no amdgpu module) for discovery.
fn empty_host(dir: &Path) -> HostPaths {
    std::fs::create_dir_all(dir.join("sys")).unwrap();
    std::fs::create_dir_all(dir.join("proc")).unwrap();
    HostPaths::new(dir.join("sys"), dir.join("proc"))
}

#[test]
fn amdsmi_counter_wrap_fallback_dual_die_and_refusals() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let lib = fake(dir.path(), "fake_amdsmi.c", "libamd_smi.so");
    let mut st = State::new(dir.path().join("state"));
    std::env::set_var("FAKE_AMDSMI_STATE", &st.path);

    // GPU 0 + 1: an MI250X whose second die reports 0; GPU 2: an MI300X on a VM guest
    // (energy NOT_SUPPORTED, power only); GPU 3: an MI210 with nothing readable.
    st.set("count", 4);
    st.set("name0", "AMD Instinct MI250X");
    st.set("name1", "AMD Instinct MI250X");
    st.set("name2", "AMD Instinct MI300X");
    st.set("energy0", 1_000_000);
    st.set("cap0", 500);
    st.set("energy1", 0);
    st.set("cur1", 0);
    st.set("ens2", 2);
    st.set("cur2", 500);
    st.set("cap2", 750);
    st.set("ens3", 7);

    let mut s = AmdSmiSensor::open(Some(&lib), 0).expect("fake amdsmi opens");
    assert_eq!(s.name(), "amdsmi");
    assert_eq!(s.version().as_deref(), Some("24.7.0.0"));
    let devs = s.devices().to_vec();
    assert_eq!(devs.len(), 3, "{devs:?}");
    assert_eq!(devs[0].id, "gpu:0");
    assert_eq!(devs[0].name, "AMD Instinct MI250X");
    assert_eq!(devs[0].method, Method::AmdsmiEnergy);
    assert_eq!(
        devs[0].uuid.as_deref(),
        Some("0cff74a1-0000-1000-80ab-0d3ac4e6b4c0")
    );
    assert_eq!(s.dies()[0], vec![0, 1]);
    assert!(s.notes()[0].contains("second die"), "{:?}", s.notes());
    assert!(
        s.notes()[0].contains("1000 W"),
        "bound 2 × 500 W cap: {:?}",
        s.notes()
    );
    assert_eq!(
        (devs[1].id.as_str(), devs[1].method),
        ("gpu:2", Method::AmdsmiPower)
    );
    assert_eq!(
        (devs[2].id.as_str(), devs[2].method),
        ("gpu:3", Method::None)
    );
    assert_eq!(devs[2].gpu_index, Some(3));
    let w = s.take_warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].contains("gpu:2")
            && w[0].contains("NOT_SUPPORTED")
            && w[0].contains("virtual-machine guest")
            && w[0].contains("FALLING BACK"),
        "{w:?}"
    );
    assert!(
        w[1].contains("gpu:3") && w[1].contains("API_FAILED"),
        "{w:?}"
    );

    // Counter: joules = units × resolution; power: 500 W integrated.
    let t0 = Instant::now();
    let sec = Duration::from_secs(1);
    let at_t0 = s.read(t0).unwrap().energy[1].0;
    let mut raw: u64 = 1_000_000;
    let mut expected = 0.0;
    for (k, inc) in [6_553_600u64, 1, 0, 13_107_200].iter().enumerate() {
        raw += inc;
        expected += *inc as f64 * unit_j();
        st.set("energy0", raw);
        let r = s.read(t0 + sec * (k as u32 + 1)).unwrap();
        assert!(
            close(r.energy[0].0, expected),
            "{} vs {expected}",
            r.energy[0].0
        );
        assert_eq!(r.power[1], Some(Watts(500.0)));
        assert_eq!(r.energy[2].0, 0.0);
    }
    let r = s.read(t0 + sec * 4).unwrap();
    assert!(
        close(r.energy[1].0 - at_t0, 2000.0),
        "500 W × 4 s: {}",
        r.energy[1].0 - at_t0
    );
    assert!(s.take_warnings().is_empty());

    // The 64-bit accumulator wraps: counted through counter.rs, said once.
    let before = r.energy[0].0;
    st.set("energy0", u64::MAX - 1_000);
    let r = s.read(t0 + sec * 5).unwrap();
    assert!(
        r.energy[0].0 == before,
        "a jump to near 2^64 is impossible: rejected"
    );
    let w = s.take_warnings();
    assert!(w.len() == 1 && w[0].contains("plausibility"), "{w:?}");
    st.set("energy0", 5_000);
    let r = s.read(t0 + sec * 6).unwrap();
    assert!(
        close(r.energy[0].0 - before, 6_000.0 * unit_j()),
        "wrap: {}",
        r.energy[0].0 - before
    );
    let w = s.take_warnings();
    assert!(w.len() == 1 && w[0].contains("wrapped"), "{w:?}");

    // A read failure is said once; the counter covers the gap when reads resume.
    st.set("ens0", 30);
    let r = s.read(t0 + sec * 7).unwrap();
    let held = r.energy[0].0;
    s.read(t0 + sec * 8).unwrap();
    let w = s.take_warnings();
    assert!(w.len() == 1 && w[0].contains("BUSY"), "{w:?}");
    st.set("ens0", 0);
    st.set("energy0", 5_000 + 65_536);
    let r = s.read(t0 + sec * 9).unwrap();
    assert!(close(r.energy[0].0 - held, 65_536.0 * unit_j()));
    assert!(s.take_warnings()[0].contains("resumed"));
    drop(s);

    // Another library version: the power_info layout is refused, the counter still used.
    st.set("year", 25);
    let mut s = AmdSmiSensor::open(Some(&lib), 4).unwrap();
    let devs = s.devices().to_vec();
    assert_eq!(devs[0].id, "gpu:4", "indices start at first_index");
    assert_eq!(devs[0].method, Method::AmdsmiEnergy);
    assert_eq!(devs[1].method, Method::None, "{:?}", s.notes());
    let w = s.take_warnings();
    assert!(
        w.iter()
            .any(|x| x.contains("amdsmi 25.7.0.0") && x.contains("refuses")),
        "{w:?}"
    );
    drop(s);
    st.set("year", 24);

    // The resolution the library gives is used: 1000 µJ per unit; an impossible one is refused.
    let mut one = State::new(dir.path().join("state-res"));
    std::env::set_var("FAKE_AMDSMI_STATE", &one.path);
    one.set("count", 1);
    one.set("res0", "1000");
    one.set("energy0", 5);
    let mut s = AmdSmiSensor::open(Some(&lib), 0).unwrap();
    assert!(s.notes()[0].contains("1000 µJ per unit"), "{:?}", s.notes());
    let t1 = Instant::now();
    s.read(t1).unwrap();
    one.set("energy0", 1005);
    let r = s.read(t1 + sec).unwrap();
    assert!(
        close(r.energy[0].0, 1.0),
        "1000 units × 1000 µJ: {}",
        r.energy[0].0
    );
    drop(s);
    for bad in ["0", "nan", "-2"] {
        one.set("res0", bad);
        let mut s = AmdSmiSensor::open(Some(&lib), 0).unwrap();
        assert_eq!(s.devices()[0].method, Method::None, "resolution {bad}");
        let w = s.take_warnings();
        assert!(
            w[0].contains("resolution") && w[0].contains("not plausible"),
            "{w:?}"
        );
    }
    std::env::set_var("FAKE_AMDSMI_STATE", &st.path);

    // Initialisation refused; no GPU; not an amdsmi library; missing.
    st.set("init_status", 34);
    let e = AmdSmiSensor::open(Some(&lib), 0).unwrap_err();
    assert!(e.to_string().contains("DRIVER_NOT_LOADED"), "{e}");
    st.set("init_status", 0);
    st.set("count", 0);
    let e = AmdSmiSensor::open(Some(&lib), 0).unwrap_err();
    assert!(matches!(e, SensorError::Unsupported(_)), "{e:?}");
    assert!(e.to_string().contains("lists no AMD GPU"), "{e}");
    let other_src = dir.path().join("other.c");
    std::fs::write(&other_src, "int not_amdsmi(void) { return 1; }\n").unwrap();
    let other = compile(&other_src, dir.path(), "libother.so");
    let e = AmdSmiSensor::open(Some(&other), 0).unwrap_err();
    assert!(e.to_string().contains("not a usable amdsmi library"), "{e}");
    let e = AmdSmiSensor::open(Some(&dir.path().join("nope.so")), 0).unwrap_err();
    assert!(
        e.to_string().contains("nope.so") && e.to_string().contains("WATTPRINT_AMDSMI_LIBRARY"),
        "{e}"
    );

    // Discovery: the library from its variable, ROCR/HIP_VISIBLE_DEVICES map dies to devices.
    st.set("count", 4);
    let host = empty_host(dir.path());
    let env = Env::from_pairs([
        (
            "WATTPRINT_AMDSMI_LIBRARY",
            lib.to_string_lossy().into_owned(),
        ),
        (
            "WATTPRINT_NVML_LIBRARY",
            "/nonexistent/libnvidia-ml.so.1".into(),
        ),
        ("ROCR_VISIBLE_DEVICES", "1,2,3".into()),
        ("HIP_VISIBLE_DEVICES", "0".into()),
    ]);
    let d = discover(&host, &DiscoverOptions::resolve(&env, None, None));
    assert_eq!(
        d.visible_gpus,
        Some(vec![0]),
        "HIP 0 of ROCR 1,2,3 is die 1: gpu:0"
    );
    let src = d.sources.iter().find(|s| s.source == "amdsmi").unwrap();
    assert!(
        src.found && src.detail.contains("amdsmi 24.7.0.0"),
        "{src:?}"
    );
    let gpu: Vec<_> = d
        .components
        .iter()
        .filter(|c| c.component == wattprint_core::sensor::DeviceKind::Gpu)
        .collect();
    assert_eq!(gpu.len(), 1, "NVML's 'no GPU' line is replaced: {gpu:?}");
    assert_eq!(gpu[0].method, Method::AmdsmiEnergy);
    assert!(
        gpu[0]
            .detail
            .contains("gpu:2 AMD Instinct MI300X (amdsmi-power"),
        "{}",
        gpu[0].detail
    );
    assert!(
        d.warnings.iter().any(|w| w.contains("FALLING BACK")),
        "{:?}",
        d.warnings
    );
    assert_eq!(d.gpus.len(), 3);
    assert_eq!(d.gpus[0].name, "AMD Instinct MI250X");
    // The factor table knows the part (its datasheet TDP); AMD publishes no idle power, so
    // none is attached: the static part is not guessed.
    let dev = &d.sensors.last().unwrap().devices()[0];
    assert_eq!(dev.name, "AMD Instinct MI250X");
    match wattprint_core::factors::gpu::gpu_lookup(&dev.name) {
        wattprint_core::factors::gpu::GpuMatch::Found(g) => {
            assert_eq!((g.name.as_str(), g.tdp_w), ("AMD Instinct MI250X", 500.0));
            assert_eq!(g.idle_w, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(dev.idle_power_w, None);
    let env = Env::from_pairs([
        (
            "WATTPRINT_AMDSMI_LIBRARY",
            lib.to_string_lossy().into_owned(),
        ),
        (
            "WATTPRINT_NVML_LIBRARY",
            "/nonexistent/libnvidia-ml.so.1".into(),
        ),
        ("ROCR_VISIBLE_DEVICES", "3,7".into()),
    ]);
    let d = discover(&host, &DiscoverOptions::resolve(&env, None, None));
    assert_eq!(d.visible_gpus, Some(vec![3]));
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("ROCR_VISIBLE_DEVICES entry `7`")),
        "{:?}",
        d.warnings
    );
    // Without NVIDIA GPUs, HIP takes CUDA_VISIBLE_DEVICES as HIP_VISIBLE_DEVICES (ROCm docs).
    let env = Env::from_pairs([
        (
            "WATTPRINT_AMDSMI_LIBRARY",
            lib.to_string_lossy().into_owned(),
        ),
        (
            "WATTPRINT_NVML_LIBRARY",
            "/nonexistent/libnvidia-ml.so.1".into(),
        ),
        ("CUDA_VISIBLE_DEVICES", "2".into()),
    ]);
    let d = discover(&host, &DiscoverOptions::resolve(&env, None, None));
    assert_eq!(d.visible_gpus, Some(vec![2]));
    // Without the variable and without the amdgpu driver, no AMD library is loaded.
    let env = Env::from_pairs([("WATTPRINT_NVML_LIBRARY", "/nonexistent/x.so")]);
    let d = discover(&host, &DiscoverOptions::resolve(&env, None, None));
    let src = d.sources.iter().find(|s| s.source == "amdsmi").unwrap();
    assert!(
        !src.found && src.detail.contains("no amdgpu kernel driver"),
        "{src:?}"
    );
    assert!(!d.sources.iter().any(|s| s.source == "rocm-smi"));
    std::env::remove_var("FAKE_AMDSMI_STATE");
}

#[test]
fn amdsmi_processes_and_their_use_of_each_gpu() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let lib = fake(dir.path(), "fake_amdsmi.c", "libamd_smi.so");
    let mut st = State::new(dir.path().join("state"));
    std::env::set_var("FAKE_AMDSMI_STATE", &st.path);
    // One MI250X (the second die reports 0: one device); processes on both dies, pid 100 on both.
    st.set("count", 2);
    st.set("name0", "AMD Instinct MI250X");
    st.set("name1", "AMD Instinct MI250X");
    st.set("energy0", 1_000_000);
    st.set("energy1", 0);
    st.set("cur1", 0);
    st.set("procs0", "100:1000,200:0");
    st.set("procs1", "100:0,300:5000");
    let mut s = AmdSmiSensor::open(Some(&lib), 0).unwrap();
    assert_eq!(s.dies(), &[vec![0, 1]]);
    let lists_path = format!("{}.lists", st.path.display());
    let lists = || {
        std::fs::read_to_string(&lists_path)
            .map(|t| t.trim().parse::<u64>().unwrap())
            .unwrap_or(0)
    };
    // After a read, the processes and their use come from one list (the host ledger asks
    // both every interval).
    s.read(Instant::now()).unwrap();
    let before = lists();
    assert_eq!(s.device_pids(), Some(vec![vec![100, 200, 300]]));
    // The first list only starts the count.
    assert_eq!(s.device_process_util(), Some(vec![vec![]]));
    assert_eq!(lists(), before + 1, "one list of the first die per read");
    // GFX time grows by 3 ms for pid 100 (its two dies together), 1 ms for 200 and 300: whatever
    // the wall time between the calls, 100 used the card 3 times as much as each other.
    st.set("procs0", "100:3001000,200:1000000");
    st.set("procs1", "100:0,300:1005000");
    s.read(Instant::now()).unwrap();
    let u = s.device_process_util().unwrap();
    assert_eq!(u.len(), 1);
    let pids: Vec<u32> = u[0].iter().map(|(p, _)| *p).collect();
    assert_eq!(pids, vec![100, 200, 300], "{u:?}");
    let (a, b, c) = (u[0][0].1, u[0][1].1, u[0][2].1);
    assert!(b > 0.0 && close(a, 3.0 * b) && close(b, c), "{u:?}");
    assert!(s.take_warnings().is_empty());
    // The list fails on the first die: no process is attributed, said once.
    st.set("pls0", 7);
    s.read(Instant::now()).unwrap();
    assert_eq!(s.device_pids(), Some(vec![vec![]]));
    assert_eq!(s.device_process_util(), Some(vec![vec![]]));
    let w = s.take_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("gpu:0 (AMD Instinct MI250X)")
            && w[0].contains("AMDSMI_STATUS_API_FAILED")
            && w[0].contains("not attributed"),
        "{w:?}"
    );
    // Back: the count starts again from the next list.
    st.set("pls0", 0);
    s.read(Instant::now()).unwrap();
    assert_eq!(s.device_process_util(), Some(vec![vec![]]));
    drop(s);
    // Another library version: its amdsmi_proc_info_t layout is not read, said once.
    st.set("year", 23);
    let mut s = AmdSmiSensor::open(Some(&lib), 0).unwrap();
    assert_eq!(s.device_pids(), None);
    assert_eq!(s.device_process_util(), None);
    let w = s.take_warnings();
    let about: Vec<_> = w.iter().filter(|w| w.contains("processes")).collect();
    assert_eq!(about.len(), 1, "{w:?}");
    assert!(about[0].contains("amdsmi 23.7.0.0"), "{about:?}");
    std::env::remove_var("FAKE_AMDSMI_STATE");
}

#[test]
fn rocm_smi_fake_counts_before_asking_and_merges_the_zero_die() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let lib = fake(dir.path(), "fake_rocm_smi.c", "librocm_smi64.so.1");
    let mut st = State::new(dir.path().join("state"));
    std::env::set_var("FAKE_ROCM_SMI_STATE", &st.path);

    // No device: the fake aborts the process on any per-device call, so passing here means
    // none was made.
    st.set("count", 0);
    let e = RocmSmiSensor::open(Some(&lib), 0).unwrap_err();
    assert!(matches!(e, SensorError::Unsupported(_)), "{e:?}");
    assert!(e.to_string().contains("no AMD GPU"), "{e}");
    st.set("init_status", 8);
    st.set("count", 2);
    let e = RocmSmiSensor::open(Some(&lib), 0).unwrap_err();
    assert!(
        e.to_string().contains("no AMD GPU") && e.to_string().contains("INIT_ERROR"),
        "{e}"
    );
    st.set("init_status", 0);

    // Three devices: an MI250X (second die reports 0) and an MI100 whose counter is not
    // supported.
    st.set("count", 3);
    st.set("name0", "AMD Instinct MI250X");
    st.set("name1", "AMD Instinct MI250X");
    st.set("name2", "AMD Instinct MI100");
    st.set("energy0", 42);
    st.set("energy1", 0);
    st.set("cap0", 560);
    st.set("ens2", 2);
    let mut s = RocmSmiSensor::open(Some(&lib), 1).unwrap();
    let devs = s.devices().to_vec();
    assert_eq!(devs.len(), 2, "{devs:?}");
    assert_eq!(devs[0].id, "gpu:1");
    assert_eq!(devs[0].name, "AMD Instinct MI250X");
    assert_eq!(devs[0].method, Method::RocmSmiEnergy);
    assert_eq!(devs[0].uuid.as_deref(), Some("GPU-00001234abcd0000"));
    assert_eq!(s.dies(), &[vec![0, 1], vec![2]]);
    assert!(s.notes()[0].contains("1120 W"), "{:?}", s.notes());
    assert_eq!(
        (devs[1].id.as_str(), devs[1].method),
        ("gpu:3", Method::None)
    );
    let w = s.take_warnings();
    assert!(w.len() == 1 && w[0].contains("NOT_SUPPORTED"), "{w:?}");
    let t0 = Instant::now();
    s.read(t0).unwrap();
    st.set("energy0", 42 + 1_000_000);
    let r = s.read(t0 + Duration::from_secs(1)).unwrap();
    assert!(
        close(r.energy[0].0, 1_000_000.0 * unit_j()),
        "{}",
        r.energy[0].0
    );
    assert_eq!(r.energy[1].0, 0.0);
    // A decrease of the 64-bit accumulator that is not plausible as a wrap is rejected.
    st.set("energy0", 7);
    s.read(t0 + Duration::from_secs(2)).unwrap();
    assert!(s.take_warnings()[0].contains("plausibility"));
    drop(s);

    // Through discovery, when amdsmi is absent: WATTPRINT_ROCM_SMI_LIBRARY.
    let host = empty_host(dir.path());
    let env = Env::from_pairs([
        (
            "WATTPRINT_ROCM_SMI_LIBRARY",
            lib.to_string_lossy().into_owned(),
        ),
        (
            "WATTPRINT_AMDSMI_LIBRARY",
            dir.path().join("absent.so").to_string_lossy().into_owned(),
        ),
        ("WATTPRINT_NVML_LIBRARY", "/nonexistent/x.so".into()),
        ("HIP_VISIBLE_DEVICES", "2".into()),
    ]);
    let d = discover(&host, &DiscoverOptions::resolve(&env, None, None));
    let amdsmi = d.sources.iter().find(|s| s.source == "amdsmi").unwrap();
    assert!(
        !amdsmi.found && amdsmi.detail.contains("absent.so"),
        "{amdsmi:?}"
    );
    let rsmi = d.sources.iter().find(|s| s.source == "rocm-smi").unwrap();
    assert!(rsmi.found, "{rsmi:?}");
    assert_eq!(d.visible_gpus, Some(vec![2]), "die 2 is the MI100, gpu:2");
    std::env::remove_var("FAKE_ROCM_SMI_STATE");
}

/// Debian's real `librocm_smi64.so.1` (package librocm-smi64-1; scripts/test-env.sh installs
/// it) on this machine, which has no AMD GPU: a clean "no AMD GPU", no crash.
#[test]
fn debian_rocm_smi_without_an_amd_gpu_says_so() {
    let _g = lock();
    let real = Path::new("/usr/lib/librocm_smi64.so.1");
    assert!(
        real.exists(),
        "{} missing: install Debian's librocm-smi64-1 (scripts/test-env.sh does)",
        real.display()
    );
    let e = RocmSmiSensor::open(Some(real), 0).unwrap_err();
    assert!(matches!(e, SensorError::Unsupported(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("no AMD GPU") && msg.contains("INIT_ERROR"),
        "{msg}"
    );
    // Twice in one process: initialisation and shutdown leave nothing behind.
    let e2 = RocmSmiSensor::open(Some(real), 0).unwrap_err();
    assert_eq!(e2.to_string(), msg);
    let dir = tempfile::tempdir().unwrap();
    let env = Env::from_pairs([
        (
            "WATTPRINT_ROCM_SMI_LIBRARY",
            real.to_string_lossy().into_owned(),
        ),
        ("WATTPRINT_NVML_LIBRARY", "/nonexistent/x.so".into()),
    ]);
    let d = discover(
        &empty_host(dir.path()),
        &DiscoverOptions::resolve(&env, None, None),
    );
    let rsmi = d.sources.iter().find(|s| s.source == "rocm-smi").unwrap();
    assert!(
        !rsmi.found && rsmi.detail.contains("no AMD GPU"),
        "{rsmi:?}"
    );
    assert!(d.gpus.is_empty());
}
