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
