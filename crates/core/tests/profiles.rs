#![allow(clippy::unwrap_used)]
//! Factor profiles: each tool's published formula on its own data, to 0.1 %.
//!
//! The expected figures come from `scripts/profile-vectors.py`, an independent Python
//! implementation of each formula over the upstream files (Green Algorithms data v3.0,
//! mlco2/impact, codecarbon 3.3.2, Cloud Carbon Footprint constants); the table is in
//! `tests/data/profile_vectors.in`.

use wattprint_core::profiles::{evaluate, evaluate_all, why, Job, Profile};

struct Vector {
    id: &'static str,
    hours: f64,
    runs: u32,
    gpus: u32,
    gpu_model: Option<&'static str>,
    gpu_watts: Option<f64>,
    cores: u32,
    core_watts: Option<f64>,
    memory_gb: f64,
    cpu_usage: f64,
    gpu_usage: f64,
    location: &'static str,
    pue: Option<f64>,
    /// (facility kWh, operational kgCO2e); `None`: the tool cannot count this job.
    ga: Option<(f64, f64)>,
    mlco2: Option<(f64, f64)>,
    codecarbon: Option<(f64, f64)>,
    ccf: Option<(f64, f64)>,
}

include!("data/profile_vectors.in");

fn job(v: &Vector) -> Job {
    let mut j = Job::new(v.hours, v.location);
    j.runs = v.runs;
    j.gpus = v.gpus;
    j.gpu_model = v.gpu_model.map(str::to_string);
    j.gpu_watts = v.gpu_watts;
    j.cores = v.cores;
    j.core_watts = v.core_watts;
    j.memory_gb = v.memory_gb;
    j.cpu_usage = v.cpu_usage;
    j.gpu_usage = v.gpu_usage;
    j.pue = v.pue;
    j
}

fn within(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-12)
}

#[test]
fn every_tool_reproduced_to_a_tenth_of_a_percent_on_its_own_data() {
    let mut counted = [0usize; 4];
    for v in JOBS {
        let j = job(v);
        for (k, (p, want)) in [
            (Profile::GreenAlgorithms, v.ga),
            (Profile::Mlco2, v.mlco2),
            (Profile::Codecarbon, v.codecarbon),
            (Profile::Ccf, v.ccf),
        ]
        .into_iter()
        .enumerate()
        {
            let r = evaluate(p, &j).unwrap();
            match want {
                Some((kwh, kg)) => {
                    assert!(r.applicable.is_ok(), "{} {p:?}: {:?}", v.id, r.applicable);
                    assert!(
                        within(r.facility_kwh, kwh, 1e-3),
                        "{} {p:?}: {} kWh vs {kwh}",
                        v.id,
                        r.facility_kwh
                    );
                    assert!(
                        within(r.operational_kg, kg, 1e-3),
                        "{} {p:?}: {} kg vs {kg}: {:#?}",
                        v.id,
                        r.operational_kg,
                        r.factors
                    );
                    counted[k] += 1;
                }
                None => {
                    let why = r.applicable.unwrap_err();
                    assert!(why.contains("cloud"), "{} {p:?}: {why}", v.id);
                }
            }
        }
    }
    for (n, tool) in counted.iter().zip(["GA", "ML CO2", "CodeCarbon", "CCF"]) {
        assert!(*n >= 10, "{tool}: only {n} vectors");
    }
}

#[test]
fn audit_cases_and_published_figures() {
    let by = |id: &str| job(JOBS.iter().find(|v| v.id == id).unwrap());
    // Green Algorithms GA-2a / GA-2b (methodology notes 5.1): 85.15584 and 111.903289 kg.
    let r = evaluate(Profile::GreenAlgorithms, &by("ga2a-us-east-1")).unwrap();
    assert!(
        within(r.operational_kg, 85.15584, 1e-9),
        "{}",
        r.operational_kg
    );
    let r = evaluate(Profile::GreenAlgorithms, &by("ga2b-us-east-1")).unwrap();
    assert!(within(r.operational_kg, 111.903289344, 1e-9));
    // GA-3 (FR, PUE 1, 3 runs): 9.21809 g; GA-1' (AT, v3.0 PUE 1.56): 236.934 g.
    let r = evaluate(Profile::GreenAlgorithms, &by("ga3-france-pc")).unwrap();
    assert_eq!(format!("{:.5}", r.operational_kg * 1000.0), "9.21809");
    let r = evaluate(Profile::GreenAlgorithms, &by("ga1-austria")).unwrap();
    assert_eq!(format!("{:.3}", r.operational_kg * 1000.0), "236.934");
    // ML CO2 Impact ML-3 / ML-4 / ML-5, exact (the web page rounds the intensity for display).
    let r = evaluate(Profile::Mlco2, &by("v100-us-central1")).unwrap();
    assert!(
        within(r.operational_kg, 16.989, 1e-9),
        "{}",
        r.operational_kg
    );
    assert_eq!(r.pue, 1.0);
    let r = evaluate(Profile::Mlco2, &by("v100-quebec-gcp")).unwrap();
    assert!(within(r.operational_kg, 1.035, 1e-9));
    let r = evaluate(Profile::Mlco2, &by("t4-francecentral")).unwrap();
    assert!(within(r.operational_kg, 0.735, 1e-9));
    // ML CO2 Impact uses its own V100 PCIe row (300 W); wattprint's table repairs it to 250 W.
    assert!(r.cpu_kwh.is_err() && r.ram_kwh.is_err());
    let v100 = evaluate(Profile::Mlco2, &by("v100-quebec-gcp")).unwrap();
    assert!(v100
        .factors
        .iter()
        .any(|f| f.name == "gpu_power" && f.value == 300.0));
}

#[test]
fn quebec_life_cycle_and_direct_differ_by_an_order_of_magnitude() {
    let j = job(JOBS.iter().find(|v| v.id == "quebec-on-premise").unwrap());
    let ga = evaluate(Profile::GreenAlgorithms, &j).unwrap();
    let cc = evaluate(Profile::Codecarbon, &j).unwrap();
    assert_eq!(ga.intensity_g_per_kwh, 1.5);
    assert!(cc.intensity_g_per_kwh > 10.0 * ga.intensity_g_per_kwh);
    assert_eq!(cc.intensity_basis, "life-cycle");
    let reasons = why(&ga, &cc).join("; ");
    assert!(reasons.contains("intensity"), "{reasons}");
}

#[test]
fn not_counted_parts_are_reasons_not_zeros() {
    let j = job(JOBS.iter().find(|v| v.id == "ga1-austria").unwrap());
    let all = evaluate_all(&j).unwrap();
    assert_eq!(all.len(), 5);
    let ml = &all[2];
    assert!(ml.applicable.as_ref().unwrap_err().contains("cloud"));
    let v = serde_json::to_value(ml).unwrap();
    assert!(v["embodied_kg"]["not_counted"].is_string(), "{v}");
    assert!(v["embodied_kg"].get("value").is_none());
    let ga = &all[1];
    assert!(ga
        .embodied_kg
        .as_ref()
        .unwrap_err()
        .contains("does not count"));
    // Bounded inputs.
    let mut bad = j.clone();
    bad.hours = f64::NAN;
    assert!(evaluate(Profile::Wattprint, &bad).is_err());
    bad.hours = 1.0;
    bad.pue = Some(0.5);
    assert!(evaluate(Profile::GreenAlgorithms, &bad).is_err());
}

#[test]
fn methodology_doc_table_is_this_codes_output() {
    use wattprint_core::profiles::render;
    let results = evaluate_all(&render::worked_example()).unwrap();
    let table = render::markdown(&results);
    let doc = include_str!("../../../docs/methodology.md");
    assert!(
        doc.contains(&table),
        "docs/methodology.md must contain the table the code prints now:\n{table}"
    );
    // the numbers are significant digits, never -0, and nothing uncounted is a zero
    assert!(
        !table.contains("-0 ") && !table.contains("| 0 kg"),
        "{table}"
    );
    assert_eq!(render::sig(-0.0), "0");
    assert_eq!(render::sig(85.155841), "85.16");
    assert_eq!(render::sig(0.00123456), "0.001235");
}
