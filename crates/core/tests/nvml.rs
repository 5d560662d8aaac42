//! NVML sensor against a fake libnvidia-ml built from `tests/fake_nvml/fake_nvml.c`.
//!
//! Environment variables are process-global, and the fake's state file is named by one
//! (`FAKE_NVML_STATE`), so every test here takes `LOCK`, and all scenarios that drive the fake run
//! sequentially inside one test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wattprint_core::sensor::{DeviceKind, Method, Sensor, SensorError};
use wattprint_core::sensors::nvml::{
    parse_cuda_visible_devices, parse_cuda_visible_devices_detailed, probe, NvmlSensor,
};
use wattprint_core::units::Watts;

static LOCK: Mutex<()> = Mutex::new(());

const UUID0: &str = "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6";
const UUID1: &str = "GPU-1a2b3c4d-0000-1111-2222-333344445555";
const MIG1: &str = "MIG-5c6d7e8f-aaaa-bbbb-cccc-ddddeeeeffff";

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Compile a C file into a shared library in `dir`; the test fails with the compiler output if
/// that does not work.
fn compile(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let mut last = String::new();
    for cc in ["cc", "gcc"] {
        match Command::new(cc)
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-o"])
            .arg(&out)
            .arg(src)
            .output()
        {
            Ok(o) if o.status.success() => return out,
            Ok(o) => {
                last = format!(
                    "{cc} failed ({}):\n{}{}",
                    o.status,
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            }
            Err(e) => last = format!("{cc}: {e}"),
        }
    }
    panic!("could not compile {}: {last}", src.display());
}

fn fake_lib(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_nvml/fake_nvml.c");
    compile(&src, dir, "libnvidia-ml.so.1")
}

struct State {
    path: PathBuf,
    lines: Vec<(String, String)>,
}

impl State {
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

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn fake_nvml_scenarios() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let lib = fake_lib(dir.path());
    let mut st = State {
        path: dir.path().join("state"),
        lines: Vec::new(),
    };
    // SAFETY (edition 2021: safe fn): every test in this binary holds LOCK, so no other test
    // thread reads the environment while it changes.
    std::env::set_var("FAKE_NVML_STATE", &st.path);
    std::env::remove_var("WATTPRINT_NVML_LIBRARY");

    let mut energy0_mj: u64 = 1_000_000; // 1000 J accrued before the job
    st.set("energy0_mj", energy0_mj);
    st.set("power0_mw", 200_000);
    st.set("power1_mw", 150_000);
    st.set("limit0_mw", 300_000); // bound for GPU 0: 2 × 300 W = 600 W
    st.set("pids0", "1234,5678");
    st.set("gpids0", "5678,42");

    // ---- open: devices, names, UUIDs, methods ----
    let mut s = NvmlSensor::open(Some(&lib)).expect("fake NVML opens");
    let t0 = Instant::now();
    let sec = Duration::from_secs(1);
    assert_eq!(s.name(), "nvml");
    assert_eq!(s.driver_version(), Some("555.42.06-fake"));
    let devs = s.devices().to_vec();
    assert_eq!(devs.len(), 2);
    assert_eq!(devs[0].id, "gpu:0");
    assert_eq!(devs[1].id, "gpu:1");
    assert!(devs.iter().all(|d| d.kind == DeviceKind::Gpu));
    assert_eq!(devs[0].name, "NVIDIA Fake A100 (energy counter)");
    assert_eq!(devs[1].name, "NVIDIA Fake T4 (power only)");
    assert_eq!(devs[0].uuid.as_deref(), Some(UUID0));
    assert_eq!(devs[1].uuid.as_deref(), Some(UUID1));
    assert_eq!(devs[0].gpu_index, Some(0));
    assert_eq!(devs[1].gpu_index, Some(1));
    assert_eq!(devs[0].method, Method::NvmlEnergy);
    assert_eq!(devs[1].method, Method::NvmlPower);
    assert_eq!(s.take_warnings(), Vec::<String>::new());

    // ---- GPU 0: energy = sum of driven increments; GPU 1: 150 W integrated ----
    let increments_mj: [u64; 6] = [150_000, 275_500, 1, 0, 599_000, 12_345];
    let mut expected0 = 0.0;
    let mut t = t0;
    let mut prev1 = None;
    for (k, inc) in increments_mj.iter().enumerate() {
        energy0_mj += inc;
        expected0 += *inc as f64 / 1000.0;
        st.set("energy0_mj", energy0_mj);
        t = t0 + sec * (k as u32 + 1);
        let r = s.read(t).unwrap();
        assert_eq!(r.energy.len(), 2);
        assert!(
            close(r.energy[0].0, expected0, 1e-6),
            "step {k}: GPU0 {} J, expected {expected0} J",
            r.energy[0].0
        );
        assert_eq!(r.power[0], Some(Watts(200.0)));
        assert_eq!(r.power[1], Some(Watts(150.0)));
        if let Some(p) = prev1 {
            // exactly 150 W × 1 s between reads spaced by 1 s
            assert!(
                close(r.energy[1].0 - p, 150.0, 1e-9),
                "{}",
                r.energy[1].0 - p
            );
        }
        prev1 = Some(r.energy[1].0);
    }
    assert_eq!(s.take_warnings(), Vec::<String>::new());
    // GPU 1 total since open: 150 W × (t - open instant); open came just before t0.
    let r = s.read(t).unwrap();
    let want1 = 150.0 * (t - t0).as_secs_f64();
    assert!(
        r.energy[1].0 >= want1 && r.energy[1].0 <= want1 * 1.01,
        "GPU1 {} J, expected 150 W × {} s = {want1} J within 1 %",
        r.energy[1].0,
        (t - t0).as_secs_f64()
    );

    // ---- GPU 0 counter reset (driver reload): a reset, not a wrap ----
    energy0_mj = 42_000; // 42 J since the reload
    st.set("energy0_mj", energy0_mj);
    t += sec;
    let r = s.read(t).unwrap();
    expected0 += 42.0;
    assert!(
        close(r.energy[0].0, expected0, 1e-6),
        "after reset: {} J, expected {expected0} J (no wrap-sized jump)",
        r.energy[0].0
    );
    let w = s.take_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("gpu:0") && w[0].contains("went back"),
        "{w:?}"
    );
    assert!(w[0].contains("42000 mJ"), "{w:?}");
    // accumulates normally after the reset
    energy0_mj += 100_000;
    st.set("energy0_mj", energy0_mj);
    t += sec;
    let r = s.read(t).unwrap();
    expected0 += 100.0;
    assert!(close(r.energy[0].0, expected0, 1e-6), "{}", r.energy[0].0);
    assert!(s.take_warnings().is_empty());

    // ---- an impossible jump (10 kJ in 1 s > 600 W bound) is rejected and reported ----
    energy0_mj += 10_000_000;
    st.set("energy0_mj", energy0_mj);
    t += sec;
    let r = s.read(t).unwrap();
    assert!(close(r.energy[0].0, expected0, 1e-6), "{}", r.energy[0].0);
    let w = s.take_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("plausibility"), "{w:?}");
    energy0_mj += 250_000;
    st.set("energy0_mj", energy0_mj);
    t += sec;
    expected0 += 250.0;
    let r = s.read(t).unwrap();
    assert!(close(r.energy[0].0, expected0, 1e-6), "{}", r.energy[0].0);

    // ---- GPU 1 trapezoid over a power change: 150 W -> 250 W over 2 s = 400 J ----
    let before = r.energy[1].0;
    st.set("power1_mw", 250_000);
    t += 2 * sec;
    let r = s.read(t).unwrap();
    assert!(
        close(r.energy[1].0 - before, 400.0, 1e-9),
        "{}",
        r.energy[1].0 - before
    );
    assert_eq!(r.power[1], Some(Watts(250.0)));

    // ---- GPU 1 power read failure: reported once, energy held, gap interpolated after ----
    st.set("fail_power1", 1);
    let held = r.energy[1].0;
    t += sec;
    let r = s.read(t).unwrap();
    assert_eq!(r.energy[1].0, held);
    assert_eq!(r.power[1], None);
    t += sec;
    let r = s.read(t).unwrap();
    assert_eq!(r.energy[1].0, held);
    let w = s.take_warnings();
    assert_eq!(w.len(), 1, "one warning per failure episode: {w:?}");
    assert!(
        w[0].contains("gpu:1") && w[0].contains("power read failed"),
        "{w:?}"
    );
    st.set("fail_power1", 0);
    t += sec;
    let r = s.read(t).unwrap();
    // 250 W before the gap, 250 W after, 3 s apart
    assert!(
        close(r.energy[1].0 - held, 750.0, 1e-9),
        "{}",
        r.energy[1].0 - held
    );
    let w = s.take_warnings();
    assert!(w.len() == 1 && w[0].contains("resumed"), "{w:?}");

    // ---- PIDs per device (compute + graphics, sorted, deduplicated) ----
    assert_eq!(
        s.device_pids(),
        Some(vec![vec![42, 1234, 5678], Vec::<u32>::new()])
    );
    st.set("pids1", "777");
    assert_eq!(s.device_pids(), Some(vec![vec![42, 1234, 5678], vec![777]]));
    st.set("fail_pids1", 1);
    assert_eq!(
        s.device_pids(),
        Some(vec![vec![42, 1234, 5678], Vec::<u32>::new()])
    );
    assert_eq!(s.device_pids().unwrap()[1], Vec::<u32>::new());
    let w = s.take_warnings();
    assert_eq!(w.len(), 1, "reported once: {w:?}");
    assert!(
        w[0].contains("gpu:1") && w[0].contains("processes"),
        "{w:?}"
    );
    st.set("fail_pids1", 0);

    // ---- CUDA_VISIBLE_DEVICES with MIG UUIDs resolved through NVML ----
    let v = s.visible_gpus(&format!("{MIG1},0")).unwrap();
    assert_eq!(v.indices, vec![1, 0]);
    assert_eq!(v.ignored, None);
    let e = s
        .visible_gpus("MIG-00000000-aaaa-bbbb-cccc-ddddeeeeffff")
        .unwrap_err();
    assert!(e.contains("parent GPU"), "{e}");
    let v = s.visible_gpus("GPU-8932,7,1").unwrap();
    assert_eq!(v.indices, vec![0]);
    assert!(v.ignored.unwrap().contains("`7`"));

    // ---- a second sensor on the same library (shared state) works and then drops cleanly ----
    {
        let s2 = NvmlSensor::open(Some(&lib)).unwrap();
        assert_eq!(s2.devices().len(), 2);
    }
    let r = s.read(t + sec).unwrap();
    assert!(close(r.energy[0].0, expected0, 1e-6));
    drop(s);

    // ---- probe ----
    let p = probe(Some(&lib));
    assert_eq!(p.library, lib.to_string_lossy());
    assert_eq!(p.loaded, Ok(()));
    assert_eq!(p.driver_version.as_deref(), Some("555.42.06-fake"));
    assert_eq!(p.gpus.len(), 2);
    assert_eq!(p.gpus[0].method, Method::NvmlEnergy);
    assert_eq!(p.gpus[0].uuid, UUID0);
    assert!(p.gpus[0].note.contains("600 W"), "{}", p.gpus[0].note);
    assert_eq!(p.gpus[1].method, Method::NvmlPower);
    assert_eq!(p.gpus[1].name, "NVIDIA Fake T4 (power only)");
    assert!(
        p.gpus[1].note.contains("not supported"),
        "{}",
        p.gpus[1].note
    );
    // no power limit: the default bound
    st.set("limit0_mw", 0);
    assert!(probe(Some(&lib)).gpus[0].note.contains("1500 W"));

    // ---- WATTPRINT_NVML_LIBRARY: used when no path is given, overridden by one ----
    // (front ends resolve it into the options; the sensor never reads the environment)
    let env = wattprint_core::env::Env::from_pairs([(
        "WATTPRINT_NVML_LIBRARY",
        lib.to_string_lossy().into_owned(),
    )]);
    let opts = wattprint_core::discovery::DiscoverOptions::resolve(&env, None, None);
    let s = NvmlSensor::open(opts.nvml_library.as_deref()).unwrap();
    assert_eq!(s.library(), lib.to_string_lossy());
    assert_eq!(s.devices().len(), 2);
    drop(s);
    assert_eq!(
        probe(opts.nvml_library.as_deref()).library,
        lib.to_string_lossy()
    );
    let missing = dir.path().join("nope/libnvidia-ml.so.1");
    let e = NvmlSensor::open(Some(&missing)).unwrap_err();
    assert!(e.to_string().contains("nope/libnvidia-ml.so.1"), "{e}");
    let env = wattprint_core::env::Env::from_pairs([(
        "WATTPRINT_NVML_LIBRARY",
        missing.to_string_lossy().into_owned(),
    )]);
    let opts = wattprint_core::discovery::DiscoverOptions::resolve(&env, None, None);
    let e = NvmlSensor::open(opts.nvml_library.as_deref()).unwrap_err();
    assert!(e.to_string().contains("no NVIDIA driver found"), "{e}");
    // a flag overrides the variable
    let opts = wattprint_core::discovery::DiscoverOptions::resolve(&env, None, Some(lib.clone()));
    assert_eq!(opts.nvml_library.as_deref(), Some(lib.as_path()));

    // ---- no GPU listed ----
    st.set("count", 0);
    let e = NvmlSensor::open(Some(&lib)).unwrap_err();
    assert!(matches!(e, SensorError::Unsupported(_)), "{e:?}");
    assert!(e.to_string().contains("no GPU"), "{e}");

    // ---- a library that is not NVML ----
    let other_src = dir.path().join("other.c");
    std::fs::write(&other_src, "int not_nvml(void) { return 1; }\n").unwrap();
    let other = compile(&other_src, dir.path(), "libother.so");
    let e = NvmlSensor::open(Some(&other)).unwrap_err();
    assert!(e.to_string().contains("not a usable NVML library"), "{e}");
    assert_eq!(probe(Some(&other)).loaded.unwrap_err(), e.to_string());

    std::env::remove_var("FAKE_NVML_STATE");
}

#[test]
fn missing_library_is_a_clear_error_not_a_panic() {
    let _g = lock();
    let path = Path::new("/nonexistent/wattprint-test/libnvidia-ml.so.1");
    let e = NvmlSensor::open(Some(path)).unwrap_err();
    assert!(matches!(e, SensorError::Library(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("no NVIDIA driver found"), "{msg}");
    assert!(
        msg.contains("/nonexistent/wattprint-test/libnvidia-ml.so.1"),
        "{msg}"
    );
    assert!(msg.contains("GPU energy not measured"), "{msg}");
    assert!(msg.contains("WATTPRINT_NVML_LIBRARY"), "{msg}");
    let p = probe(Some(path));
    assert_eq!(p.loaded, Err(msg));
    assert!(p.gpus.is_empty());
    assert_eq!(p.driver_version, None);
}

#[test]
fn cuda_visible_devices_cases() {
    let _g = lock();
    let gpus: Vec<(u32, String)> = vec![
        (0, UUID0.into()),
        (1, UUID1.into()),
        (2, "GPU-1a2b9999-0000-1111-2222-333344445555".into()),
        (3, "GPU-ffff0000-0000-1111-2222-333344445555".into()),
    ];
    let p = |v: &str| parse_cuda_visible_devices(v, &gpus);
    // indices, in the order given
    assert_eq!(p("0,2"), Ok(vec![0, 2]));
    assert_eq!(p("3,1, 0"), Ok(vec![3, 1, 0]));
    // empty: none visible
    assert_eq!(p(""), Ok(vec![]));
    assert_eq!(p("  "), Ok(vec![]));
    // invalid entries stop the list (CUDA: later devices are hidden)
    assert_eq!(p("0,2,-1,1"), Ok(vec![0, 2]));
    assert_eq!(p("1,9,0"), Ok(vec![1]));
    assert_eq!(p("NoDevFiles"), Ok(vec![]));
    assert_eq!(p("0,,1"), Ok(vec![0]));
    assert_eq!(p("0,0,1"), Ok(vec![0]));
    // full UUIDs and unique prefixes
    assert_eq!(p(&format!("{UUID1},{UUID0}")), Ok(vec![1, 0]));
    assert_eq!(p("GPU-8932f937"), Ok(vec![0]));
    assert_eq!(p("gpu-FFFF,0"), Ok(vec![3, 0]));
    // ambiguous prefix (GPUs 1 and 2) or unknown UUID: invalid
    assert_eq!(p("0,GPU-1a2b,3"), Ok(vec![0]));
    assert_eq!(p("GPU-1a2b3,GPU-dead"), Ok(vec![1]));
    // old-style MIG ids name their parent
    assert_eq!(p(&format!("MIG-{UUID1}/1/0")), Ok(vec![1]));
    assert_eq!(
        p("MIG-GPU-deadbeef-0000-0000-0000-000000000000/1/0,0"),
        Ok(vec![])
    );
    // new-style MIG UUIDs cannot be resolved without NVML: an error, not a guess
    let e = p("MIG-5c6d7e8f-aaaa-bbbb-cccc-ddddeeeeffff").unwrap_err();
    assert!(e.contains("MIG") && e.contains("parent GPU"), "{e}");
    // the detailed form says what was ignored
    let d = parse_cuda_visible_devices_detailed("2,foo,1", &gpus).unwrap();
    assert_eq!(d.indices, vec![2]);
    let note = d.ignored.unwrap();
    assert!(
        note.contains("`foo`") && note.contains("after it"),
        "{note}"
    );
    assert_eq!(
        parse_cuda_visible_devices_detailed("1,0", &gpus)
            .unwrap()
            .ignored,
        None
    );
}

#[test]
fn mig_instances_and_per_process_utilisation() {
    let _g = lock();
    let dir = tempfile::tempdir().unwrap();
    let lib = fake_lib(dir.path());
    let mut st = State {
        path: dir.path().join("state"),
        lines: Vec::new(),
    };
    std::env::set_var("FAKE_NVML_STATE", &st.path);
    st.set("energy0_mj", 1000);
    // no MIG: no instances, no shares
    let s = NvmlSensor::open(Some(&lib)).unwrap();
    assert!(s.mig_instances().is_empty());
    assert!(s.mig_shares(MIG1).is_empty());
    drop(s);
    st.set("mig1", 1);
    st.set("util0", "1234:60,5678:20,1234:40");
    let mut s = NvmlSensor::open(Some(&lib)).unwrap();
    let m = s.mig_instances().to_vec();
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!((m[0].parent_index, m[0].uuid.as_str()), (1, MIG1));
    assert_eq!((m[0].slices, m[0].card_slices), (1, 7));
    assert_eq!((m[1].slices, m[1].card_slices), (2, 7));
    assert!((m[1].share() - 2.0 / 7.0).abs() < 1e-12);
    // CUDA enumerates one MIG instance per process: the first one named counts
    let two = "MIG-0b0b0b0b-aaaa-bbbb-cccc-ddddeeeeffff";
    let both = format!("{two},{MIG1},0");
    assert_eq!(s.visible_gpus(&both).unwrap().indices, vec![1]);
    let sh = s.mig_shares(&both);
    assert_eq!(sh.len(), 1);
    assert_eq!(sh[0].0, 1);
    assert!((sh[0].1 - 2.0 / 7.0).abs() < 1e-12);
    // a whole card named by index is not a share
    assert!(s.mig_shares("1,0").is_empty());
    // per-process SM utilisation: the mean of each process's samples, by pid
    let u = s.device_process_util().unwrap();
    assert_eq!(u, vec![vec![(1234, 50.0), (5678, 20.0)], vec![]]);
    assert!(s.take_warnings().is_empty());
    drop(s);
    // doctor's lines name each instance and its share
    let lines = wattprint_core::discovery_accelerators::mig_lines(&m);
    assert!(
        lines[1].contains("gpu:1 MIG instance MIG-0b0b") && lines[1].contains("2/7"),
        "{lines:?}"
    );
    std::env::remove_var("FAKE_NVML_STATE");
}
