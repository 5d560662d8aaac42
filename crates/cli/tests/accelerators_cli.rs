#![allow(clippy::unwrap_used)]
//! `wattprint doctor` and `wattprint run` with AMD and Intel GPUs: the C fakes of amdsmi and
//! Level Zero (crates/core/tests/fake_*) built here and loaded through the real paths
//! (`--amdsmi-library`, `WATTPRINT_LEVEL_ZERO_LIBRARY`).

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{read_json, FakeHost};

fn build(dir: &Path, src: &str, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests")
        .join(src);
    let out = dir.join(name);
    let o = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("a C compiler (cc) is needed to build the fake GPU libraries");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// A job script that waits (10 s at most) until the fake library counted `reads` reads of GPU
/// 0's energy counter — the sensor's two opening reads plus the sampler's first, its baseline —
/// then writes `text` as the fake's new state: the change falls between the baseline and the
/// final read whatever the scheduling.
fn drive_after_reads(state: &Path, reads: u32, text: &str) -> String {
    format!(
        "i=0; while [ \"$(cat {s}.reads 2>/dev/null || echo 0)\" -lt {reads} ] && [ $i -lt 1000 ]; \
         do sleep 0.01; i=$((i+1)); done; printf '{text}' > {s}.tmp && mv {s}.tmp {s}",
        s = state.display()
    )
}

fn gpu_component(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["component"] == "gpu")
        .cloned()
        .collect()
}

#[test]
fn amd_gpus_in_doctor_and_in_the_run_record() {
    let h = FakeHost::new();
    let lib = build(h.dir.path(), "fake_amd/fake_amdsmi.c", "libamd_smi.so");
    let state = h.dir.path().join("amd-state");
    let base = "count=2\nname0=AMD Instinct MI300X\nname1=AMD Instinct MI210\nens1=2\ncur1=280\n";
    std::fs::write(&state, format!("{base}energy0=1000000\n")).unwrap();

    let out = h
        .cmd()
        .env("FAKE_AMDSMI_STATE", &state)
        .args(["doctor", "--json", "--amdsmi-library"])
        .arg(&lib)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gpu = gpu_component(&v);
    assert_eq!(gpu.len(), 1, "{gpu:?}");
    assert_eq!(gpu[0]["method"], "amdsmi-energy");
    let detail = gpu[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("gpu:0 AMD Instinct MI300X (amdsmi-energy")
            && detail.contains("gpu:1 AMD Instinct MI210 (amdsmi-power"),
        "{detail}"
    );
    assert_eq!(v["host"]["gpus"].as_array().unwrap().len(), 2);
    assert!(
        v["warnings"].to_string().contains("FALLING BACK"),
        "the power fallback is loud: {}",
        v["warnings"]
    );

    // A run: the job moves GPU 0's counter by 300,000 units of 15.259 µJ (4.6 J: within the
    // plausibility bound's absolute slack however short the last interval is).
    let json = h.dir.path().join("r.json");
    // Opening the sensor reads GPU 0's counter twice; the third read is the sampler's baseline.
    let _ = std::fs::remove_file(state.with_extension("reads"));
    let script = drive_after_reads(&state, 3, &format!("{base}energy0=1300000\\n"));
    let out = h
        .cmd()
        .env("FAKE_AMDSMI_STATE", &state)
        .env("WATTPRINT_AMDSMI_LIBRARY", &lib)
        .args(["run", "--quiet", "--interval", "50ms", "--json"])
        .arg(&json)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = read_json(&json);
    let devices = r["devices"].as_array().unwrap();
    let g0 = devices.iter().find(|d| d["id"] == "gpu:0").unwrap();
    assert_eq!(g0["method"], "amdsmi-energy");
    assert_eq!(g0["name"], "AMD Instinct MI300X");
    assert_eq!(g0["uuid"], "0cff74a1-0000-1000-80ab-0d3ac4e6b4c0");
    let j = g0["energy_kwh"].as_f64().unwrap() * 3.6e6;
    let want = 300_000.0 * f64::from(15.259f32) * 1e-6;
    assert!((j - want).abs() < 1e-3, "{j} J, want {want} J");
    let g1 = devices.iter().find(|d| d["id"] == "gpu:1").unwrap();
    assert_eq!(g1["method"], "amdsmi-power");
    assert_eq!(
        r["host"]["gpus"][0]["uuid"], "0cff74a1-0000-1000-80ab-0d3ac4e6b4c0",
        "{}",
        r["host"]
    );
    assert_eq!(r["methods"]["gpu"], "mixed(amdsmi-energy+amdsmi-power)");
}

#[test]
fn intel_gpus_in_doctor_and_in_the_run_record() {
    let h = FakeHost::new();
    let lib = build(
        h.dir.path(),
        "fake_level_zero/fake_ze_loader.c",
        "libze_loader.so.1",
    );
    let state = h.dir.path().join("ze-state");
    std::fs::write(&state, "count=1\ne00=1000000\n").unwrap();
    let out = h
        .cmd()
        .env("FAKE_ZE_STATE", &state)
        .env("WATTPRINT_LEVEL_ZERO_LIBRARY", &lib)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gpu = gpu_component(&v);
    assert_eq!(gpu.len(), 1, "{gpu:?}");
    assert_eq!(gpu[0]["method"], "level-zero-energy");
    let detail = gpu[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("gpu:0 Intel(R) Data Center GPU Max 1550 (level-zero-energy: card-level"),
        "{detail}"
    );
    // the text form lists the source and the method too
    let out = h
        .cmd()
        .env("FAKE_ZE_STATE", &state)
        .env("WATTPRINT_LEVEL_ZERO_LIBRARY", &lib)
        .arg("doctor")
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(
        t.contains("level-zero") && t.contains("level-zero-energy"),
        "{t}"
    );

    // A run: the job moves the card domain's counter by 5 J (within the plausibility bound's
    // absolute slack however short the last interval is).
    let json = h.dir.path().join("r.json");
    let _ = std::fs::remove_file(state.with_extension("reads"));
    let script = drive_after_reads(&state, 3, "count=1\\ne00=6000000\\n");
    let out = h
        .cmd()
        .env("FAKE_ZE_STATE", &state)
        .env("WATTPRINT_LEVEL_ZERO_LIBRARY", &lib)
        .args(["run", "--quiet", "--interval", "50ms", "--json"])
        .arg(&json)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = read_json(&json);
    let devices = r["devices"].as_array().unwrap();
    let g0 = devices.iter().find(|d| d["id"] == "gpu:0").unwrap();
    assert_eq!(g0["method"], "level-zero-energy");
    assert_eq!(g0["name"], "Intel(R) Data Center GPU Max 1550");
    let j = g0["energy_kwh"].as_f64().unwrap() * 3.6e6;
    assert!((j - 5.0).abs() < 1e-6, "{j} J");
    assert_eq!(g0["uuid"], "000102030405060708090a0b0c0d0e0f");
}

#[test]
fn mig_instances_in_doctor() {
    let h = FakeHost::new();
    let lib = build(h.dir.path(), "fake_nvml/fake_nvml.c", "libnvidia-ml.so.1");
    let state = h.dir.path().join("nvml-state");
    std::fs::write(&state, "energy0_mj=1000\nmig1=1\n").unwrap();
    let out = h
        .cmd()
        .env("FAKE_NVML_STATE", &state)
        .env("WATTPRINT_NVML_LIBRARY", &lib)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gpu = gpu_component(&v);
    let detail = gpu[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("gpu:1 MIG instance MIG-5c6d7e8f-aaaa-bbbb-cccc-ddddeeeeffff (1/7 slices")
            && detail.contains(
                "MIG-0b0b0b0b-aaaa-bbbb-cccc-ddddeeeeffff (2/7 slices: a run given it is charged 2/7 of the card's energy"
            ),
        "{detail}"
    );
}
