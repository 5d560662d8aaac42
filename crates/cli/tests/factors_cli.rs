#![allow(clippy::unwrap_used)]
//! End-to-end tests of `wattprint factors` and `wattprint regions` (the real binary).

use serde_json::Value;
use std::process::{Command, Output};

fn wattprint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wattprint"))
        .args(args)
        .env_remove("WATTPRINT_LOCATION")
        .output()
        .expect("run wattprint")
}

fn ok_json(args: &[&str]) -> Value {
    let out = wattprint(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = wattprint(args);
    assert_eq!(out.status.code(), Some(2), "{args:?} should exit 2");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

#[test]
fn sources_print_version_and_attribution_lines() {
    let out = wattprint(&["factors", "--sources"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(wattprint_core::factors::FACTORS_VERSION));
    for key in [
        "[A-CC]", "[A-GA]", "[A-ML]", "[A-CCFC]", "[A-CCF]", "[WP-DS]",
    ] {
        assert!(text.contains(key), "missing {key}");
    }
    assert!(text.contains("licensed under CC BY 4.0"));
    assert!(text.contains("Licensed under the Apache License 2.0"));
}

#[test]
fn factors_intensity_picks_the_run_year() {
    let v = ok_json(&["factors", "intensity", "fr", "--year", "2021", "--json"]);
    assert_eq!(
        v["factors_version"],
        wattprint_core::factors::FACTORS_VERSION
    );
    assert_eq!(v["rows"]["rows"].as_array().unwrap().len(), 2);
    assert_eq!(f(&v["rows"]["used"]["g_per_kwh"]), 51.28);
    assert_eq!(v["rows"]["used"]["provenance"]["source"], "A-GA");
    let v = ok_json(&["factors", "intensity", "FR", "--json"]);
    assert_eq!(f(&v["rows"]["used"]["g_per_kwh"]), 56.039);

    let err = fails(&["factors", "intensity", "Frnce"]);
    assert!(
        err.contains("wattprint factors intensity") && err.contains("FR"),
        "{err}"
    );
}

#[test]
fn factors_cloud_and_gpu() {
    let v = ok_json(&["factors", "cloud", "aws:eu-west-3", "--json"]);
    let r = &v["rows"][0];
    assert_eq!(f(&r["intensity_g_per_kwh"]), 51.1);
    assert_eq!(f(&r["pue"]), 1.135);
    assert_eq!(r["intensity_provenance"]["source"], "A-CCF");

    let v = ok_json(&["factors", "cloud", "azure", "--json"]);
    assert_eq!(v["rows"].as_array().unwrap().len(), 48);

    let v = ok_json(&["factors", "gpu", "a100", "--json"]);
    assert_eq!(v["rows"].as_array().unwrap().len(), 3);
    let v = ok_json(&["factors", "gpu", "H100 SXM", "--json"]);
    assert_eq!(f(&v["rows"][0]["tdp_w"]), 700.0);

    let err = fails(&["factors", "gpu", "quantum flux"]);
    assert!(err.contains("wattprint factors gpu"), "{err}");
    let err = fails(&["factors", "cloud", "aws:eu-wst-3"]);
    assert!(
        err.contains("aws:eu-west-3") && err.contains("--provider aws"),
        "{err}"
    );
}

#[test]
fn regions_near_with_savings() {
    let v = ok_json(&[
        "regions",
        "--provider",
        "aws",
        "--near",
        "aws:eu-west-3",
        "--kwh",
        "1000",
        "--json",
    ]);
    assert_eq!(v["near_area"], "europe");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r["area"] == "europe"));
    assert_eq!(rows[0]["id"], "aws:eu-north-1");
    let (e_ref, e_sto) = (51.1 * 1.135, 8.8 * 1.135);
    let pct = f(&rows[0]["saving"]["percent"]);
    assert!(
        (pct - (e_ref - e_sto) / e_ref * 100.0).abs() < 1e-9,
        "{pct}"
    );
    let kg = f(&rows[0]["saving"]["kg"]);
    assert!((kg - (e_ref - e_sto)).abs() < 1e-9, "{kg}");
    let effs: Vec<f64> = rows.iter().map(|r| f(&r["effective_g_per_kwh"])).collect();
    assert!(effs.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn regions_text_top_and_errors() {
    let out = wattprint(&["regions", "--provider", "gcp", "--top", "3", "--from", "PL"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let data_lines = text.lines().filter(|l| l.contains("gcp:")).count();
    assert_eq!(data_lines, 3, "{text}");
    assert!(text.contains("saving"));

    let err = fails(&["regions", "--provider", "ibm"]);
    assert!(err.contains("aws, gcp, azure"), "{err}");
    let err = fails(&["regions", "--from", "aws:nope-1"]);
    assert!(err.contains("wattprint regions --provider aws"), "{err}");
    let err = fails(&["regions", "--near", "FR"]);
    assert!(err.contains("--near"), "{err}");
    fails(&["regions", "--top", "0"]);
    let err = fails(&["regions", "--kwh=-5"]);
    assert!(err.contains("--kwh") && err.contains("finite"), "{err}");
}

#[test]
fn factors_cpu_and_instances_tables_exist() {
    // `estimate --cpu` help points here: the subcommand must exist.
    let v = ok_json(&["factors", "cpu", "8375C", "--json"]);
    let rows = v["rows"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["model"].as_str().unwrap().contains("8375C")),
        "{v}"
    );
    assert!(fails(&["factors", "cpu"]).contains("QUERY"));
    let v = ok_json(&["factors", "instances", "p4d.24xlarge", "--json"]);
    let r = &v["rows"][0];
    assert_eq!(r["type"], "p4d.24xlarge");
    assert_eq!(f(&r["total_kg"]), 4676.79);
    assert!(fails(&["factors", "instances", "zz9"]).contains("zz9"));
}

#[test]
fn regions_compare_like_with_like_basis() {
    // France: life-cycle 56.039 (CodeCarbon mix) and direct 51.28 (Green Algorithms). Azure's
    // Sweden Central is direct 5.67 (CCF): compared with France's direct figure.
    let v = ok_json(&["regions", "--from", "FR", "--provider", "azure", "--json"]);
    let by: Vec<(String, f64)> = v["reference"]["by_basis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x[0].as_str().unwrap().to_string(), f(&x[1])))
        .collect();
    assert!(by.contains(&("direct".to_string(), 51.28)), "{by:?}");
    let row = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "azure:swedencentral")
        .unwrap();
    assert_eq!(row["basis"], "direct");
    let want = (51.28 * 1.56 - 5.67 * 1.185) / (51.28 * 1.56) * 100.0;
    assert!((f(&row["saving"]["percent"]) - want).abs() < 1e-9, "{row}");
    // Sweden's zone 3 has only a life-cycle figure: no saving is claimed against direct ones.
    let v = ok_json(&["regions", "--from", "SE-SE3", "--provider", "aws", "--json"]);
    let row = &v["rows"][0];
    assert_eq!(row["bases_differ"], true);
    assert!(row["saving"].is_null());
    let out = wattprint(&[
        "regions",
        "--from",
        "SE-SE3",
        "--provider",
        "aws",
        "--top",
        "2",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("bases≠") && text.contains("no saving is claimed"),
        "{text}"
    );
}
