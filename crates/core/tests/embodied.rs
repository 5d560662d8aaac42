#![allow(clippy::unwrap_used)]
//! Embodied emissions against Cloud Carbon Footprint's own per-instance coefficients
//! (ccf-coefficients @ b0032d9 `output/coefficients-*-embodied.csv`), and the one amortisation
//! rule shared by runs, estimates and the coefficients.

use std::time::Duration;
use wattprint_core::accounting::{amortisation_fraction, embodied as allocate};
use wattprint_core::estimate::{estimate, EmbodiedSpec, EstimateInput};
use wattprint_core::factors::embodied::{embodied, ServerSpec};
use wattprint_core::factors::instances::{find_instance, instance_table};
use wattprint_core::units::GramsPerKwh;

const LIFE: f64 = 35_040.0;

fn server(sockets: u32, dram_gb: f64, gpus: u32, ssds: u32, hdds: u32) -> f64 {
    embodied()
        .components(&ServerSpec {
            sockets,
            dram_gb,
            gpus,
            ssds,
            hdds,
        })
        .iter()
        .map(|c| c.kg_co2e * c.count)
        .sum()
}

fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

/// Embodied kg of an estimate with nothing but the given embodied spec.
fn estimated(spec: EmbodiedSpec, h: u64) -> f64 {
    let mut i = EstimateInput::new(hours(h), 1.0, GramsPerKwh(0.0));
    i.embodied = Some(spec);
    estimate(&i).unwrap().emissions_kg.embodied
}

#[test]
fn ccf_instance_totals_from_the_server_parts() {
    // (instance, sockets, platform GB, GPUs, SSDs, HDDs, ccf-coefficients total kg)
    let cases = [
        ("m5.metal", 2, 384.0, 0, 0, 0, 1610.79),
        ("p4d.24xlarge", 2, 1152.0, 8, 8, 0, 4676.79), // GPU instance
        ("p3.16xlarge", 2, 768.0, 8, 2, 0, 3543.79),   // GPU instance
        ("g4dn.12xlarge", 2, 384.0, 8, 2, 0, 3010.79), // GPU instance
        ("i3.metal", 2, 512.0, 0, 8, 0, 2588.46),
        ("d2.8xlarge", 2, 244.0, 0, 0, 24, 2616.47),
        ("m5d.metal", 2, 384.0, 0, 4, 0, 2010.79),
    ];
    for (name, sockets, gb, gpus, ssds, hdds, total) in cases {
        let kg = server(sockets, gb, gpus, ssds, hdds);
        assert!(
            (kg - total).abs() < 0.01,
            "{name}: parts give {kg}, CCF {total}"
        );
        let row = find_instance(Some("aws"), name).unwrap();
        assert!(
            (row.total_kg - total).abs() < 1e-9,
            "{name}: table {}",
            row.total_kg
        );
    }
}

#[test]
fn m5_metal_for_720_hours_is_33_098_kg() {
    // 1610.79 kg × 720 / 35 040 = 33.098 kg, by parts, by instance type, and by estimate().
    let expect = 1610.79 * 720.0 / LIFE;
    assert_eq!(format!("{expect:.3}"), "33.098");
    let c = embodied();
    let by_parts = estimated(
        EmbodiedSpec::server(
            1,
            &ServerSpec {
                sockets: 2,
                dram_gb: 384.0,
                ..ServerSpec::default()
            },
            &c,
            1.0,
        ),
        720,
    );
    assert!((by_parts - expect).abs() < 1e-4, "{by_parts}");
    let m5 = find_instance(None, "m5.metal").unwrap();
    assert_eq!(m5.share(), 1.0);
    let by_type = estimated(EmbodiedSpec::instance(m5, LIFE, 1.0), 720);
    assert!((by_type - expect).abs() < 1e-9, "{by_type}");
}

#[test]
fn instance_share_is_vcpu_of_the_platform() {
    // m5.large: 2 of the platform's 96 vCPU.
    let i = find_instance(Some("aws"), "m5.large").unwrap();
    assert_eq!((i.instance_vcpu, i.platform_vcpu), (2.0, 96.0));
    let kg = estimated(EmbodiedSpec::instance(i, LIFE, 1.0), 720);
    let expect = 1610.79 * 720.0 / LIFE * 2.0 / 96.0;
    assert!((kg - expect).abs() < 1e-9, "{kg} vs {expect}");
    // p4d.24xlarge 72 h: 4 676.79 × 72 / 35 040 = 9.6098 kg (the coefficient file's total).
    let p4d = find_instance(None, "p4d.24xlarge").unwrap();
    let kg = estimated(EmbodiedSpec::instance(p4d, LIFE, 1.0), 72);
    assert_eq!(format!("{kg:.4}"), "9.6098");
    // GCP a2-highgpu-1g: 12 of 96 vCPU of a 5 465.5 kg platform (16 A100), 24 h.
    let a2 = find_instance(Some("gcp"), "a2-highgpu-1g").unwrap();
    assert!((a2.total_kg - 5465.5).abs() < 1e-9);
    let kg = estimated(EmbodiedSpec::instance(a2, LIFE, 1.0), 24);
    assert!(
        (kg - 5465.5 * 24.0 / LIFE * 12.0 / 96.0).abs() < 1e-9,
        "{kg}"
    );
    // Azure spelling as the API gives it.
    let nc = find_instance(Some("azure"), "Standard_NC24s_v3").unwrap();
    assert_eq!(nc.instance_type, "NC24s v3");
    assert!((nc.total_kg - 2349.62).abs() < 1e-9);
    assert!(find_instance(None, "no-such.type").is_none());
    assert!(find_instance(None, &"x".repeat(500)).is_none());
}

#[test]
fn instance_table_is_consistent() {
    let t = instance_table();
    assert!(t.len() > 1000, "{}", t.len());
    for r in t {
        let parts = r.memory_kg + r.storage_kg + r.cpus_kg + r.gpus_kg;
        assert!((1000.0 + parts - r.total_kg).abs() < 0.02, "{r:?}");
        assert!(r.share() > 0.0 && r.share() <= 1.0, "{r:?}");
        let comps: f64 = r.components(LIFE).iter().map(|c| c.kg_co2e).sum();
        assert!((comps - r.total_kg).abs() < 1e-6, "{r:?}");
    }
}

#[test]
fn one_amortisation_rule_not_capped() {
    // Linear in hours, no cap: two lifetimes carry twice the server.
    assert_eq!(amortisation_fraction(2.0 * LIFE, LIFE, 1.0), 2.0);
    assert_eq!(amortisation_fraction(LIFE, LIFE, 0.5), 2.0);
    assert_eq!(amortisation_fraction(-5.0, LIFE, 1.0), 0.0);
    let c = embodied();
    assert_eq!(c.amortised_kg(100.0, 2.0 * LIFE), 200.0);
    // The same rule in the core allocation (runs) and in estimate().
    let comps = c.components(&ServerSpec::default());
    let run = allocate(&comps, hours(70_080), 1.0, 1.0).kg();
    assert!((run - 2000.0).abs() < 1e-9, "{run}");
    let est = estimated(
        EmbodiedSpec::server(1, &ServerSpec::default(), &c, 1.0),
        70_080,
    );
    assert!((est - 2000.0).abs() < 1e-9, "{est}");
}

#[test]
fn not_counted_is_null_in_json_never_zero() {
    let mut i = EstimateInput::new(hours(1), 1.0, GramsPerKwh(100.0));
    i.other_watts = 100.0;
    let b = estimate(&i).unwrap();
    assert!(!b.emissions_kg.embodied_counted);
    assert_eq!(b.emissions_kg.embodied_kg(), None);
    let v = serde_json::to_value(b.emissions_kg).unwrap();
    assert!(v["embodied"].is_null(), "{v}");
    // and back
    let m: wattprint_core::accounting::EmissionsKg = serde_json::from_value(v).unwrap();
    assert!(!m.embodied_counted);
    // counted, even when tiny, is a number
    i.embodied = Some(EmbodiedSpec::server(
        1,
        &ServerSpec::default(),
        &embodied(),
        1.0,
    ));
    let b = estimate(&i).unwrap();
    let v = serde_json::to_value(b.emissions_kg).unwrap();
    assert!(v["embodied"].as_f64().unwrap() > 0.0, "{v}");
}
