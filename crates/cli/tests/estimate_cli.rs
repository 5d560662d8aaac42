#![allow(clippy::unwrap_used)]
//! `wattprint estimate` and `run --location` end to end with the real binary.

use std::process::Command;

fn wp() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wattprint"));
    c.env_remove("WATTPRINT_LOCATION");
    c
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = wp().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn green_algorithms_vectors() {
    // 8 GPUs × 400 W, 72 h, PUE 1.2, 308 g/kWh, no memory
    let v = json(&[
        "estimate",
        "--gpus",
        "8",
        "--gpu-watts",
        "400",
        "--duration",
        "72h",
        "--pue",
        "1.2",
        "--intensity",
        "308",
        "--json",
    ]);
    assert!(
        close(v["energy_kwh"]["facility"].as_f64().unwrap(), 276.48),
        "{v}"
    );
    assert!(
        close(v["emissions_kg"]["total"].as_f64().unwrap(), 85.15584),
        "{v}"
    );
    // IT energy is before PUE, as in a run record
    assert!(close(v["energy_kwh"]["total"].as_f64().unwrap(), 230.4));
    // plus 48 cores × 12 W and 1 152 GB at 0.3725 W/GB
    let v = json(&[
        "estimate",
        "--gpus",
        "8",
        "--gpu-watts",
        "400",
        "--cores",
        "48",
        "--core-watts",
        "12",
        "--memory",
        "1152",
        "--duration",
        "72h",
        "--pue",
        "1.2",
        "--intensity",
        "308",
        "--json",
    ]);
    let kwh = v["energy_kwh"]["facility"].as_f64().unwrap();
    let kg = v["emissions_kg"]["total"].as_f64().unwrap();
    assert_eq!(format!("{kwh:.3}"), "363.322");
    assert_eq!(format!("{kg:.5}"), "111.90329");
    // every factor used is listed with a source
    let names: Vec<String> = v["assumptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(names.iter().any(|n| n.contains("memory")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("pue")), "{names:?}");
    for a in v["assumptions"].as_array().unwrap() {
        assert!(!a["source"].as_str().unwrap().is_empty(), "{a}");
        assert!(!a["unit"].as_str().unwrap().is_empty(), "{a}");
    }
}

#[test]
fn gpu_model_names_are_matched_helpfully() {
    let out = wp()
        .args(["estimate", "--gpu", "a100", "--duration", "1h"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("several models"), "{err}");
    assert!(err.to_lowercase().matches("a100").count() >= 3, "{err}");
    let v = json(&[
        "estimate",
        "--gpu",
        "H100 SXM",
        "--gpus",
        "2",
        "--duration",
        "10h",
        "--intensity",
        "100",
        "--pue",
        "1",
        "--json",
    ]);
    // 2 × 700 W × 10 h
    assert!(close(v["energy_kwh"]["gpu"].as_f64().unwrap(), 14.0), "{v}");
}

#[test]
fn embodied_from_the_data_and_from_flags() {
    // CCF-style: 4 675.5184 kg over 35 040 h, 72 h → 9.6072 kg
    let v = json(&[
        "estimate",
        "--watts",
        "0",
        "--duration",
        "72h",
        "--intensity",
        "0",
        "--pue",
        "1",
        "--embodied",
        "--embodied-kg-per-server",
        "4675.5184",
        "--lifetime",
        "35040h",
        "--json",
    ]);
    let e = v["emissions_kg"]["embodied"].as_f64().unwrap();
    assert_eq!(format!("{e:.4}"), "9.6072", "{v}");
    // defaults from the shipped data: non-zero and sourced
    let v = json(&[
        "estimate",
        "--gpus",
        "8",
        "--gpu-watts",
        "400",
        "--duration",
        "72h",
        "--embodied",
        "--json",
    ]);
    assert!(v["emissions_kg"]["embodied"].as_f64().unwrap() > 0.0);
    assert!(v["assumptions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["source"].as_str().unwrap().contains("embodied")));
}

#[test]
fn bad_input_is_a_clear_error_with_exit_2() {
    for (args, needle) in [
        (vec!["--duration", "3x"], "3x"),
        (vec!["--duration", "1h", "--gpus", "-1"], "-1"),
        (
            vec!["--duration", "1h", "--utilization", "1.5"],
            "utilization",
        ),
        (
            vec!["--duration", "1h", "--location", "aws:nowhere-9"],
            "aws",
        ),
        (
            vec!["--duration", "1h", "--location", "XX-YY-ZZ"],
            "XX-YY-ZZ",
        ),
        (vec!["--duration", "1h", "--pue", "0.8"], "pue"),
        (vec!["--duration", "1h", "--gpu-watts", "-5"], "gpu-watts"),
    ] {
        let out = wp().arg("estimate").args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.to_lowercase().contains(&needle.to_lowercase()),
            "{args:?}: {err}"
        );
    }
    // an unknown region lists valid choices
    let out = wp()
        .args([
            "estimate",
            "--duration",
            "1h",
            "--location",
            "aws:eu-west-99",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("eu-west-"),
        "should suggest real regions: {err}"
    );
}

#[test]
fn run_records_the_cloud_region_with_sources() {
    let dir = tempfile::tempdir().unwrap();
    let js = dir.path().join("r.json");
    let out = wp()
        .env("WATTPRINT_HOME", dir.path().join("home"))
        .env("WATTPRINT_NVML_LIBRARY", dir.path().join("none.so"))
        .args(["run", "--quiet", "--location", "aws:eu-west-3", "--json"])
        .arg(&js)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&js).unwrap()).unwrap();
    assert_eq!(r["location"]["code"], "aws:eu-west-3");
    assert_eq!(r["location"]["known"], true);
    // CCF's AWS figures: 51.1 g/kWh for eu-west-3 and the AWS fleet PUE 1.135
    assert!(
        close(r["carbon_intensity"]["g_per_kwh"].as_f64().unwrap(), 51.1),
        "{r}"
    );
    assert!(close(r["pue"].as_f64().unwrap(), 1.135), "{r}");
    assert!(r["carbon_intensity"]["source"]
        .as_str()
        .unwrap()
        .contains("A-CCF"));
    assert!(!r["location"]["pue_source"].as_str().unwrap().is_empty());
    assert!(r["factors_version"]
        .as_str()
        .unwrap()
        .starts_with("wattprint-factors-"));
    assert!(!r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("location unknown")));
}

/// Embodied kg of `estimate … --json` with zero operational emissions.
fn embodied_kg(extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "estimate",
        "--duration",
        "720h",
        "--intensity",
        "0",
        "--pue",
        "1",
        "--json",
    ];
    args.extend_from_slice(extra);
    json(&args)
}

#[test]
fn embodied_counts_sockets_memory_gpus_and_drives_like_ccf() {
    // CCF ccf-coefficients m5.metal: 2 sockets, 384 GB → 1 610.79 kg; 720 h of 35 040 h.
    let expect = 1610.79 * 720.0 / 35040.0;
    for extra in [
        &["--embodied", "--cpus", "2", "--memory", "384"][..],
        &["--instance-type", "m5.metal"][..],
        &["--instance-type", "aws:m5.metal"][..],
    ] {
        let v = embodied_kg(extra);
        let e = v["emissions_kg"]["embodied"].as_f64().unwrap();
        assert!((e - expect).abs() < 1e-4, "{extra:?}: {e} vs {expect}: {v}");
        assert_eq!(format!("{e:.3}"), "33.098");
    }
    // More sockets and memory cost more (the audit found them ignored).
    let small = embodied_kg(&["--embodied", "--cpus", "1", "--memory", "16"]);
    let big = embodied_kg(&["--embodied", "--cpus", "4", "--memory", "4096"]);
    let s = small["emissions_kg"]["embodied"].as_f64().unwrap();
    let b = big["emissions_kg"]["embodied"].as_f64().unwrap();
    assert!((s - 1000.0 * 720.0 / 35040.0).abs() < 1e-9, "{s}");
    let want = (1000.0 + 300.0 + 533.0 / 384.0 * 4080.0) * 720.0 / 35040.0;
    assert!((b - want).abs() < 1e-6, "{b} vs {want}");
    // p3.16xlarge by parts (GPU instance): 2 sockets, 768 GB, 8 GPUs, 2 SSDs = 3 543.79 kg.
    let v = embodied_kg(&[
        "--embodied",
        "--cpus",
        "2",
        "--memory",
        "768",
        "--gpus",
        "8",
        "--gpu-watts",
        "0",
        "--ssds",
        "2",
    ]);
    let e = v["emissions_kg"]["embodied"].as_f64().unwrap();
    assert!((e - 3543.79 * 720.0 / 35040.0).abs() < 1e-4, "{e}");
    // d2.8xlarge by parts: 24 HDDs.
    let v = embodied_kg(&[
        "--embodied",
        "--cpus",
        "2",
        "--memory",
        "244",
        "--hdds",
        "24",
    ]);
    let e = v["emissions_kg"]["embodied"].as_f64().unwrap();
    assert!((e - 2616.47 * 720.0 / 35040.0).abs() < 1e-4, "{e}");
    // m5.large: the host platform × 2/96 vCPU (CCF's share).
    let v = embodied_kg(&["--instance-type", "m5.large"]);
    let e = v["emissions_kg"]["embodied"].as_f64().unwrap();
    assert!(
        (e - 1610.79 * 720.0 / 35040.0 * 2.0 / 96.0).abs() < 1e-9,
        "{e}"
    );
    assert!(
        v["embodied"]["note"]
            .as_str()
            .unwrap()
            .contains("2 / 96 vCPU"),
        "{v}"
    );
}

#[test]
fn embodied_not_counted_is_said_never_zero() {
    let v = json(&["estimate", "--watts", "100", "--duration", "1h", "--json"]);
    assert!(v["emissions_kg"]["embodied"].is_null(), "{v}");
    assert_eq!(v["embodied"]["counted"], false);
    assert!(v["embodied"]["note"]
        .as_str()
        .unwrap()
        .contains("not counted"));
    let out = wp()
        .args(["estimate", "--watts", "100", "--duration", "1h"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("embodied: not counted ("), "{text}");
    assert!(!text.contains("embodied 0"), "{text}");
}

#[test]
fn unknown_instance_type_and_separate_usage_factors() {
    let out = wp()
        .args([
            "estimate",
            "--duration",
            "1h",
            "--instance-type",
            "zz9.plural",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("zz9.plural") && err.contains("--embodied-kg-per-server"),
        "{err}"
    );
    // --cpu-usage and --gpu-usage apart (Green Algorithms): 10 cores × 12 W × 0.5 + 1 GPU ×
    // 300 W × 0.25 for 10 h = 0.6 + 0.75 kWh.
    let v = json(&[
        "estimate",
        "--cores",
        "10",
        "--gpus",
        "1",
        "--gpu-watts",
        "300",
        "--cpu-usage",
        "0.5",
        "--gpu-usage",
        "0.25",
        "--duration",
        "10h",
        "--pue",
        "1",
        "--intensity",
        "100",
        "--json",
    ]);
    assert!(close(v["energy_kwh"]["cpu"].as_f64().unwrap(), 0.6), "{v}");
    assert!(close(v["energy_kwh"]["gpu"].as_f64().unwrap(), 0.75), "{v}");
    let names: Vec<&str> = v["assumptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"cpu_usage_factor") && names.contains(&"gpu_usage_factor"),
        "{names:?}"
    );
    // --utilization stays a shortcut for both.
    let v = json(&[
        "estimate",
        "--cores",
        "10",
        "--gpus",
        "1",
        "--gpu-watts",
        "300",
        "--utilization",
        "0.5",
        "--duration",
        "10h",
        "--pue",
        "1",
        "--intensity",
        "100",
        "--json",
    ]);
    assert!(close(v["energy_kwh"]["gpu"].as_f64().unwrap(), 1.5), "{v}");
}

#[test]
fn estimate_with_another_tools_factors() {
    // ML CO2 Impact ML-3: V100 PCIe (its own row, 300 W) 100 h in gcp us-central1 (566.3 g).
    let v = json(&[
        "estimate",
        "--gpu",
        "v100 pcie 16gb",
        "--duration",
        "100h",
        "--location",
        "gcp:us-central1",
        "--factors",
        "mlco2",
        "--json",
    ]);
    assert_eq!(v["profile"], "mlco2");
    assert!(close(v["operational_kg"].as_f64().unwrap(), 16.989), "{v}");
    assert_eq!(v["pue"], 1.0);
    // Green Algorithms GA-2a.
    let v = json(&[
        "estimate",
        "--gpus",
        "8",
        "--gpu-watts",
        "400",
        "--duration",
        "72h",
        "--location",
        "aws:us-east-1",
        "--factors",
        "green-algorithms",
        "--json",
    ]);
    assert!(
        close(v["operational_kg"].as_f64().unwrap(), 85.15584),
        "{v}"
    );
    let out = wp()
        .args([
            "estimate",
            "--duration",
            "1h",
            "--watts",
            "5",
            "--factors",
            "nope",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn repaired_table_values_are_on_the_record() {
    let v = json(&[
        "estimate",
        "--gpu",
        "v100 pcie",
        "--duration",
        "1h",
        "--json",
    ]);
    let gpu = v["assumptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "gpu_power")
        .unwrap()
        .clone();
    assert_eq!(gpu["value"], 250.0);
    assert!(
        gpu["source"].as_str().unwrap().contains("mlco2 TDP 300 W"),
        "{gpu}"
    );
}
