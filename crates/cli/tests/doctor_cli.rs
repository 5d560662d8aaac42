#![allow(clippy::unwrap_used)]
//! `wattprint doctor` on fake hosts: what is found, what each component uses, and why.

mod common;
use common::FakeHost;

fn doctor(h: &FakeHost) -> serde_json::Value {
    let out = h.cmd().args(["doctor", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn method(v: &serde_json::Value, comp: &str) -> String {
    v["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == comp)
        .map(|c| c["method"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn rapl_host_uses_counters_and_says_where_they_are() {
    let h = FakeHost::new();
    let v = doctor(&h);
    assert_eq!(method(&v, "cpu"), "rapl");
    assert_eq!(method(&v, "ram"), "rapl-dram");
    assert_eq!(method(&v, "gpu"), "none");
    let rapl = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "rapl")
        .unwrap();
    assert_eq!(rapl["found"], true);
    assert!(rapl["detail"].as_str().unwrap().contains("cpu:package-0"));
    assert_eq!(v["location"]["known"], false);
    assert_eq!(
        v["host"]["cpu_model"],
        "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
    );
    // the text form names the same facts
    let out = h.cmd().arg("doctor").output().unwrap();
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("rapl") && t.contains("location unknown"), "{t}");
}

#[test]
fn broken_counter_falls_back_loudly_and_vm_without_rapl_quietly_uses_the_model() {
    let h = FakeHost::new();
    std::fs::write(h.energy_file("intel-rapl:0"), "not-a-number\n").unwrap();
    let v = doctor(&h);
    assert_eq!(method(&v, "cpu"), "tdp-model");
    let warnings: Vec<String> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("RAPL") && w.contains("energy_uj")),
        "{warnings:?}"
    );
    // no powercap at all: the model is used, the CPU's TDP comes from the table, no RAPL warning
    std::fs::remove_dir_all(h.sys().join("class/powercap")).unwrap();
    let v = doctor(&h);
    assert_eq!(method(&v, "cpu"), "tdp-model");
    assert_eq!(method(&v, "ram"), "model");
    let comp = v["components"].as_array().unwrap();
    let cpu = comp.iter().find(|c| c["component"] == "cpu").unwrap();
    assert!(cpu["detail"].as_str().unwrap().contains("8375C"), "{cpu}");
    assert!(!v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("RAPL")));
}
