#![allow(clippy::unwrap_used)]
//! `wattprint run` with GPUs: the fake NVML library (C, built here) loaded through the real
//! NVML path, two GPUs (one with the energy counter, one with power only), in machine and
//! process scope.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{read_json, FakeHost};

fn build_fake_nvml(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fake_nvml/fake_nvml.c");
    let out = dir.join("libnvidia-ml.so.1");
    let o = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("a C compiler (cc) is needed to build the fake NVML library");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// Drives GPU 0's energy counter at `w0` W and GPU 1's power at `w1` W, and lists the pid the
/// job writes to `pidfile` as a compute process on GPU 0.
struct GpuDriver {
    stop: Arc<AtomicBool>,
    t: Option<std::thread::JoinHandle<()>>,
}

impl GpuDriver {
    fn start(state: PathBuf, pidfile: PathBuf, w0: f64, w1: f64, extra: &str) -> GpuDriver {
        let extra = extra.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let t = std::thread::spawn(move || {
            let t0 = Instant::now();
            while !s2.load(Ordering::SeqCst) {
                let mj = 5_000_000.0 + w0 * 1000.0 * t0.elapsed().as_secs_f64();
                let pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
                let text = format!(
                    "energy0_mj={}\npower0_mw={}\npower1_mw={}\npids0={}\n{extra}",
                    mj as u64,
                    (w0 * 1000.0) as u64,
                    (w1 * 1000.0) as u64,
                    pid.trim()
                );
                let tmp = state.with_extension("tmp");
                std::fs::write(&tmp, text).unwrap();
                std::fs::rename(&tmp, &state).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        GpuDriver { stop, t: Some(t) }
    }
}

impl Drop for GpuDriver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.t.take() {
            let _ = t.join();
        }
    }
}

fn gpu_run(scope: &str, visible: Option<&str>) -> serde_json::Value {
    gpu_run_with(scope, visible, "", true)
}

/// [`gpu_run`] with `extra` lines in the fake NVML's state, through the host ledger or not.
fn gpu_run_with(
    scope: &str,
    visible: Option<&str>,
    extra: &str,
    ledger: bool,
) -> serde_json::Value {
    let h = FakeHost::new();
    let lib = build_fake_nvml(h.dir.path());
    let state = h.dir.path().join("nvml-state");
    let pidfile = h.dir.path().join("jobpid");
    let _d = GpuDriver::start(state.clone(), pidfile.clone(), 200.0, 150.0, extra);
    let json = h.dir.path().join("r.json");
    let script = format!("echo $$ > {}; sleep 1", pidfile.display());
    let mut c = h.cmd();
    c.env("WATTPRINT_NVML_LIBRARY", &lib)
        .env("FAKE_NVML_STATE", &state)
        // the job's process tree must be visible: real /proc for process scope
        .env_remove("WATTPRINT_PROCFS_ROOT");
    if let Some(v) = visible {
        c.env("CUDA_VISIBLE_DEVICES", v);
    }
    if !ledger {
        c.env("WATTPRINT_HOST_LEDGER", "off");
    }
    let out = c
        .args([
            "run",
            "--quiet",
            "--interval",
            "50ms",
            "--scope",
            scope,
            "--json",
        ])
        .arg(&json)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_json(&json)
}

fn device<'a>(r: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("no device {id} in {r}"))
}

#[test]
fn machine_scope_measures_both_gpus_by_their_own_method() {
    let r = gpu_run("machine", None);
    assert_eq!(r["host"]["gpus"].as_array().unwrap().len(), 2);
    assert_eq!(r["methods"]["gpu"], "mixed(nvml-energy+nvml-power)");
    let dur = r["duration_s"].as_f64().unwrap();
    let g0 = device(&r, "gpu:0");
    let g1 = device(&r, "gpu:1");
    assert_eq!(g0["method"], "nvml-energy");
    assert_eq!(g1["method"], "nvml-power");
    // each GPU is identified by its UUID in the record, not only by its index
    assert_eq!(g0["uuid"], "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6");
    assert_eq!(g1["uuid"], "GPU-1a2b3c4d-0000-1111-2222-333344445555");
    let e0 = g0["energy_kwh"].as_f64().unwrap() * 3.6e6;
    let e1 = g1["energy_kwh"].as_f64().unwrap() * 3.6e6;
    assert!(
        (e0 - 200.0 * dur).abs() < 0.05 * 200.0 * dur,
        "gpu0 {e0} J over {dur} s"
    );
    assert!(
        (e1 - 150.0 * dur).abs() < 0.05 * 150.0 * dur,
        "gpu1 {e1} J over {dur} s"
    );
    let gpu_total = r["energy_kwh"]["gpu"].as_f64().unwrap() * 3.6e6;
    assert!((gpu_total - e0 - e1).abs() < 1e-6);
}

#[test]
fn process_scope_charges_only_the_gpus_the_job_holds() {
    let r = gpu_run("process", None);
    let g0 = device(&r, "gpu:0");
    let g1 = device(&r, "gpu:1");
    // GPU 0 runs the job's process: charged, nearly all of the time it ran there
    let (e0, m0) = (
        g0["energy_kwh"].as_f64().unwrap(),
        g0["machine_energy_kwh"].as_f64().unwrap(),
    );
    assert!(
        e0 > 0.8 * m0 && e0 <= m0 * (1.0 + 1e-9),
        "gpu0 {e0} of {m0}"
    );
    // GPU 1 holds none of the job's processes: not charged, though it drew energy
    assert_eq!(g1["energy_kwh"].as_f64().unwrap(), 0.0);
    assert!(g1["machine_energy_kwh"].as_f64().unwrap() > 0.0);
}

#[test]
fn process_scope_honours_cuda_visible_devices() {
    let r = gpu_run("process", Some("1"));
    let g1 = device(&r, "gpu:1");
    let (e1, m1) = (
        g1["energy_kwh"].as_f64().unwrap(),
        g1["machine_energy_kwh"].as_f64().unwrap(),
    );
    assert!(m1 > 0.0 && (e1 - m1).abs() < 1e-12, "gpu1 {e1} of {m1}");
}

#[test]
fn process_scope_charges_the_mig_share_of_the_card() {
    // GPU 1 in MIG mode: the job is given its 2-slice instance of 7 slices; through the host
    // ledger (the default) and without it (the process-tree attributor).
    for ledger in [true, false] {
        let r = gpu_run_with(
            "process",
            Some("MIG-0b0b0b0b-aaaa-bbbb-cccc-ddddeeeeffff"),
            "mig1=1\n",
            ledger,
        );
        let g1 = device(&r, "gpu:1");
        let (e1, m1) = (
            g1["energy_kwh"].as_f64().unwrap(),
            g1["machine_energy_kwh"].as_f64().unwrap(),
        );
        assert!(
            m1 > 0.0 && (e1 - m1 * 2.0 / 7.0).abs() < 1e-9 * m1,
            "ledger {ledger}: gpu1 {e1} of {m1}: want 2/7"
        );
        assert_eq!(g1["uuid"], "GPU-1a2b3c4d-0000-1111-2222-333344445555");
    }
}
