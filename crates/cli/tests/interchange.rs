#![allow(clippy::unwrap_used)]
//! Interchange through the real binary: CodeCarbon emissions.csv export (columns, units, PUE),
//! import (real CodeCarbon 3.3.2 rows, idempotence, malformed rows with line numbers, --strict),
//! export → import round trips, plain CSV and JSON Lines.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;
use wattprint::interchange::{CODECARBON_COLUMNS, CSV_COLUMNS};
use wattprint::store::{RunFilter, Store};
use wattprint_core::record::{
    build_record, CarbonContext, Ending, GpuInfo, HostInfo, LocationRecord, RunMeta, RunRecord,
    RunStatus,
};
use wattprint_core::sampler::{DeviceTotal, Scope, Snapshot};
use wattprint_core::sensor::{Device, DeviceKind, Method};
use wattprint_core::units::{Joules, Watts, JOULES_PER_KWH};

/// Header and rows of an emissions.csv written by CodeCarbon 3.3.2 (offline FRA, then the
/// online tracker's Canada/Quebec fallback), from /work/shared/reference/codecarbon.md.
const CODECARBON_FILE: &str = "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,water_consumed,country_name,country_iso_code,region,cloud_provider,cloud_region,os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,ram_total_size,tracking_mode,cpu_utilization_percent,gpu_utilization_percent,ram_utilization_percent,ram_used_gb,on_cloud,pue,wue
2026-11-28T02:46:56,bench_offline,3a69a452-5344-4f1f-ba7e-757b606702ed,5b0fa12a-3dd7-45bb-9766-cc326314d9f1,17.367462284999988,5.863516507272113e-06,3.376150419129652e-07,2.498376859514142,0.0,20.0,1.0011268067334999e-05,0.0,9.462151458888856e-05,0.00010463278265622357,0.0,France,FRA,,,,Linux-6.18.44-fc-v657-x86_64-with-glibc2.36,3.11.7,3.3.2,2,AMD EPYC,0,,,,23.540584564208984,machine,51.54117647058824,0,1.6058823529411768,0.37791936537798715,N,1.0,0.0
2026-11-28T02:47:31,bench_offline,da11bf79-2cfd-4550-81bd-9a60db7f0219,5b0fa12a-3dd7-45bb-9766-cc326314d9f1,17.86742708899999,5.98651416119342e-06,3.350518309868461e-07,1.9607179482274786,0.0,20.0,9.941589543710105e-06,0.0,9.688605122777795e-05,0.00010682764077148806,0.0,France,FRA,,,,Linux-6.18.44-fc-v657-x86_64-with-glibc2.36,3.11.7,3.3.2,2,AMD EPYC,0,,,,23.540584564208984,machine,45.67647058823529,0,1.6000000000000003,0.37601381189682903,N,1.0,0.0
2026-11-28T02:48:07,bench_offline,7b6e87e5-d538-4558-9ec5-cadcad1fc181,5b0fa12a-3dd7-45bb-9766-cc326314d9f1,17.144172212,5.76708046230504e-06,3.36387221907885e-07,1.9301439987347377,0.0,20.0,9.409614034771996e-06,0.0,9.350229485555512e-05,0.00010291190889032709,0.0,France,FRA,,,,Linux-6.18.44-fc-v657-x86_64-with-glibc2.36,3.11.7,3.3.2,2,AMD EPYC,0,,,,23.540584564208984,machine,45.025000000000006,0,1.6375000000000002,0.3863706588745117,N,1.0,0.0
2026-11-28T02:48:25,bench_online,e396e883-b776-4a91-b637-08576eed4ef6,5b0fa12a-3dd7-45bb-9766-cc326314d9f1,16.526415161999978,3.8613481002238614e-07,2.3364704700765683e-08,1.77484569067322,0.0,20.0,8.334152598137965e-06,0.0,8.973544168888865e-05,9.806959428702663e-05,0.0,Canada,CAN,quebec,,,Linux-6.18.44-fc-v657-x86_64-with-glibc2.36,3.11.7,3.3.2,2,AMD EPYC,0,,-71.2,46.8,23.540584564208984,machine,52.931250000000006,0,1.6250000000000004,0.3831000328063965,N,1.0,0.0
2026-11-28T02:48:45,bench_online,6f8e4e0e-8e1a-417c-bf68-395a73abb592,5b0fa12a-3dd7-45bb-9766-cc326314d9f1,17.951026859000024,4.167832070453863e-07,2.3217791958036406e-08,1.7421993176319919,0.0,20.0,8.825199345764755e-06,0.0,9.70284014166664e-05,0.00010585360076243114,0.0,Canada,CAN,quebec,,,Linux-6.18.44-fc-v657-x86_64-with-glibc2.36,3.11.7,3.3.2,2,AMD EPYC,0,,-71.2,46.8,23.540584564208984,machine,45.25882352941177,0,1.6294117647058826,0.37975243961109834,N,1.0,0.0
";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wattprint"))
}

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn store(&self) -> Store {
        Store::open(&self.home().join("wattprint.db")).unwrap()
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn wp(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .env("WATTPRINT_HOME", self.home())
            // local timestamps are read in the machine's zone: fix it for the tests
            .env("TZ", "UTC")
            .args(args)
            .output()
            .unwrap()
    }
    fn runs(&self) -> Vec<RunRecord> {
        let mut v = self.store().list_runs(&RunFilter::default()).unwrap();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
}

/// Rows of a CSV text as maps column → value.
fn rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let h = rd.headers().unwrap().clone();
    rd.records()
        .map(|r| {
            let r = r.unwrap();
            h.iter()
                .zip(r.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn num(row: &BTreeMap<String, String>, col: &str) -> f64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} = `{}`", row[col]))
}

struct Spec<'a> {
    id: &'a str,
    project: &'a str,
    status: RunStatus,
    location: &'a str,
    pue: f64,
    intensity: f64,
    secs: f64,
    cpu_kwh: f64,
    gpu_kwh: f64,
    ram_kwh: f64,
    gpus: usize,
}

/// A run record as `wattprint run` builds it.
fn record(s: &Spec) -> RunRecord {
    let dev = |id: &str, kind, method, kwh: f64| DeviceTotal {
        device: Device {
            id: id.into(),
            kind,
            method,
            name: id.into(),
            gpu_index: None,
            uuid: None,
            idle_power_w: None,
            factors: Vec::new(),
        },
        energy: Joules(kwh * JOULES_PER_KWH),
        machine_energy: Joules(kwh * JOULES_PER_KWH),
        last_power: Watts(0.0),
        series: vec![],
    };
    let mut devices = vec![
        dev("cpu:package-0", DeviceKind::Cpu, Method::Rapl, s.cpu_kwh),
        dev("ram:dram-0", DeviceKind::Ram, Method::RaplDram, s.ram_kwh),
    ];
    if s.gpus > 0 {
        devices.push(dev("gpu:0", DeviceKind::Gpu, Method::NvmlEnergy, s.gpu_kwh));
    }
    let snap = Snapshot {
        elapsed: Duration::from_secs_f64(s.secs),
        devices,
        warnings: vec![],
        samples: 3,
        skipped_ticks: 0,
    };
    let started = time::macros::datetime!(2025-06-01 10:00:00.123 UTC);
    let ended = started + time::Duration::seconds_f64(s.secs);
    let f = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let meta = RunMeta {
        id: s.id.into(),
        project: s.project.into(),
        tags: BTreeMap::new(),
        command: vec!["python".into(), "train.py".into()],
        started_at: f(started),
        host: HostInfo {
            hostname: "node-1".into(),
            cpu_model: "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz".into(),
            logical_cpus: 16,
            ram_gb: 32.0,
            gpus: (0..s.gpus as u32)
                .map(|i| GpuInfo {
                    index: i,
                    name: "NVIDIA A100-SXM4-40GB".into(),
                    uuid: format!("GPU-{i}"),
                })
                .collect(),
        },
        scope: Scope::Machine,
        interval_s: 1.0,
        start_unix: 0.0,
    };
    let carbon = CarbonContext {
        intensity_g_per_kwh: s.intensity,
        intensity_source: "test".into(),
        intensity_detail: "test".into(),
        pue: s.pue,
        pue_detail: "test".into(),
        location: LocationRecord {
            code: s.location.into(),
            name: s.location.into(),
            known: s.location != "unknown",
            pue_source: "test".into(),
        },
        factors_version: "test".into(),
        warnings: vec![],
        series: None,
        signal: None,
        live: None,
        embodied: None,
        embodied_not_counted: None,
    };
    let (code, signal) = match s.status {
        RunStatus::Failed => (Some(1), None),
        _ => (Some(0), None),
    };
    build_record(
        &meta,
        &carbon,
        &snap,
        s.status,
        &Ending {
            ended_at: Some(f(ended)),
            exit_code: code,
            signal,
        },
        &[],
    )
}

fn seed(h: &Home) -> Vec<RunRecord> {
    let recs = vec![
        record(&Spec {
            id: "11111111-aaaa-4000-8000-000000000001",
            project: "vision",
            status: RunStatus::Completed,
            location: "FR",
            pue: 1.5,
            intensity: 56.039,
            secs: 3600.0,
            cpu_kwh: 0.2,
            gpu_kwh: 0.3,
            ram_kwh: 0.05,
            gpus: 2,
        }),
        record(&Spec {
            id: "22222222-bbbb-4000-8000-000000000002",
            project: "vision",
            status: RunStatus::Failed,
            location: "aws:eu-west-3",
            pue: 1.135,
            intensity: 51.1,
            secs: 123.456,
            cpu_kwh: 0.0123,
            gpu_kwh: 0.0,
            ram_kwh: 0.00123,
            gpus: 0,
        }),
        record(&Spec {
            id: "33333333-cccc-4000-8000-000000000003",
            project: "nlp",
            status: RunStatus::Completed,
            location: "US-CA",
            pue: 1.0,
            intensity: 179.06,
            secs: 17.3,
            cpu_kwh: 1e-5,
            gpu_kwh: 0.0,
            ram_kwh: 9.4e-5,
            gpus: 0,
        }),
        record(&Spec {
            id: "44444444-dddd-4000-8000-000000000004",
            project: "nlp",
            status: RunStatus::Completed,
            location: "unknown",
            pue: 1.56,
            intensity: 475.0,
            secs: 0.5,
            cpu_kwh: 2e-7,
            gpu_kwh: 0.0,
            ram_kwh: 3e-8,
            gpus: 0,
        }),
    ];
    let mut st = h.store();
    for r in &recs {
        st.save_run(r).unwrap();
    }
    recs
}

#[test]
fn codecarbon_export_has_codecarbons_columns_units_and_pue() {
    let h = Home::new();
    let recs = seed(&h);
    let out = ok(&h.wp(&["export", "--format", "codecarbon"]));
    let header = out.lines().next().unwrap();
    assert_eq!(
        header,
        "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,water_consumed,country_name,country_iso_code,region,cloud_provider,cloud_region,os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,ram_total_size,tracking_mode,cpu_utilization_percent,gpu_utilization_percent,ram_utilization_percent,ram_used_gb,on_cloud,pue,wue"
    );
    assert_eq!(header, CODECARBON_COLUMNS.join(","));
    let rs = rows(&out);
    assert_eq!(rs.len(), 4);
    let by_id = |id: &str| rs.iter().find(|r| r["run_id"] == id).unwrap();

    let r = by_id(&recs[0].id);
    assert_eq!(r["timestamp"], "2025-06-01T11:00:00");
    assert_eq!(r["project_name"], "vision");
    assert_eq!(r["experiment_id"], "");
    assert_eq!(r["duration"], "3600.0");
    // IT energy 0.55 kWh × PUE 1.5 × 56.039 g/kWh.
    let kg = 0.55 * 1.5 * 56.039 / 1000.0;
    assert!(close(num(r, "emissions"), kg), "{}", r["emissions"]);
    assert!(close(num(r, "emissions_rate"), kg / 3600.0));
    // Energies in kWh with PUE included; power in W with PUE included.
    assert!(close(num(r, "cpu_energy"), 0.2 * 1.5));
    assert!(close(num(r, "gpu_energy"), 0.3 * 1.5));
    assert!(close(num(r, "ram_energy"), 0.05 * 1.5));
    assert!(close(num(r, "energy_consumed"), 0.55 * 1.5));
    assert!(close(num(r, "cpu_power"), 0.2 * 1.5 * 3.6e6 / 3600.0));
    assert!(close(num(r, "gpu_power"), 450.0));
    assert!(close(num(r, "ram_power"), 75.0));
    assert_eq!(r["country_name"], "France");
    assert_eq!(r["country_iso_code"], "FRA");
    assert_eq!(r["region"], "");
    assert_eq!(r["on_cloud"], "N");
    assert_eq!(r["cpu_count"], "16");
    assert_eq!(
        r["cpu_model"],
        "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
    );
    assert_eq!(r["gpu_count"], "2");
    assert_eq!(r["gpu_model"], "2 x NVIDIA A100-SXM4-40GB");
    // 32 GB = 29.80 GiB.
    assert!(close(num(r, "ram_total_size"), 32e9 / 1073741824.0));
    assert_eq!(r["tracking_mode"], "machine");
    assert_eq!(r["pue"], "1.5");
    // What wattprint does not know stays empty, as CodeCarbon leaves missing values.
    for c in [
        "water_consumed",
        "os",
        "python_version",
        "codecarbon_version",
        "longitude",
        "latitude",
        "cpu_utilization_percent",
        "gpu_utilization_percent",
        "ram_utilization_percent",
        "ram_used_gb",
        "wue",
        "cloud_provider",
        "cloud_region",
    ] {
        assert_eq!(r[c], "", "{c}");
    }

    let r = by_id(&recs[1].id);
    assert_eq!(r["cloud_provider"], "aws");
    assert_eq!(r["cloud_region"], "eu-west-3");
    assert_eq!(r["on_cloud"], "Y");
    assert_eq!(r["country_iso_code"], "FRA");
    assert_eq!(r["gpu_count"], "0");
    assert_eq!(r["gpu_model"], "");
    assert_eq!(r["gpu_power"], "0.0");
    assert_eq!(r["pue"], "1.135");

    let r = by_id(&recs[2].id);
    assert_eq!(r["country_name"], "United States");
    assert_eq!(r["country_iso_code"], "USA");
    assert_eq!(r["region"], "california");
    // Python float text, as CodeCarbon writes it.
    assert_eq!(r["cpu_energy"], "1e-05");

    let r = by_id(&recs[3].id);
    assert_eq!(r["country_iso_code"], "");
    assert_eq!(r["country_name"], "");

    // Oldest first, and --project filters.
    let out = ok(&h.wp(&["export", "--format", "codecarbon", "--project", "nlp"]));
    assert_eq!(rows(&out).len(), 2);
}

#[test]
fn export_then_import_round_trips_the_numbers() {
    let src = Home::new();
    let recs = seed(&src);
    let file = src.dir.path().join("emissions.csv");
    let o = src.wp(&[
        "export",
        "--format",
        "codecarbon",
        "--output",
        file.to_str().unwrap(),
    ]);
    ok(&o);
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains("exported 4 run(s)"), "{}", stderr(&o));
    let first = std::fs::read_to_string(&file).unwrap();

    let dst = Home::new();
    let out = ok(&dst.wp(&["import", "codecarbon", file.to_str().unwrap()]));
    assert!(out.contains("imported 4 run(s)"), "{out}");
    let got = dst.runs();
    assert_eq!(got.len(), 4);
    for (a, b) in recs.iter().zip(&got) {
        assert_eq!(a.id, b.id);
        assert_eq!(a.project, b.project);
        assert!(close(a.duration_s, b.duration_s));
        assert!(close(a.emissions_kg.operational, b.emissions_kg.total));
        assert!(close(a.energy_kwh.facility.0, b.energy_kwh.facility.0));
        assert!(close(a.energy_kwh.it.0, b.energy_kwh.it.0), "{}", a.id);
        assert!(close(a.energy_kwh.cpu.0, b.energy_kwh.cpu.0));
        assert!(close(a.energy_kwh.gpu.0, b.energy_kwh.gpu.0));
        assert!(close(a.energy_kwh.ram.0, b.energy_kwh.ram.0));
        assert!(close(a.pue, b.pue));
        assert!(
            (a.carbon_intensity.g_per_kwh - b.carbon_intensity.g_per_kwh).abs() < 1e-9,
            "{} vs {}",
            a.carbon_intensity.g_per_kwh,
            b.carbon_intensity.g_per_kwh
        );
        assert_eq!(a.location.code, b.location.code);
        assert_eq!(a.host.logical_cpus, b.host.logical_cpus);
        assert!(close(a.host.ram_gb, b.host.ram_gb));
        assert_eq!(a.host.gpus.len(), b.host.gpus.len());
        assert_eq!(b.status, RunStatus::Completed);
        assert_eq!(b.methods.cpu, "imported:codecarbon");
        assert!(
            b.warnings[0].contains("emissions.csv, line"),
            "{:?}",
            b.warnings
        );
    }
    // Exporting the imported runs gives the same file back.
    let second = ok(&dst.wp(&["export", "--format", "codecarbon"]));
    let (r1, r2) = (rows(&first), rows(&second));
    assert_eq!(r1.len(), r2.len());
    for a in &r1 {
        let b = r2.iter().find(|b| b["run_id"] == a["run_id"]).unwrap();
        for c in CODECARBON_COLUMNS {
            match (a[c].parse::<f64>(), b[c].parse::<f64>()) {
                (Ok(x), Ok(y)) => assert!(close(x, y), "{c}: {x} vs {y}"),
                _ => assert_eq!(a[c], b[c], "{c}"),
            }
        }
    }
}

#[test]
fn real_codecarbon_rows_import_idempotently() {
    let h = Home::new();
    let file = h.file("emissions.csv", CODECARBON_FILE);
    let out = ok(&h.wp(&["import", "codecarbon", file.to_str().unwrap()]));
    assert!(out.contains("imported 5 run(s)"), "{out}");
    let runs = h.runs();
    assert_eq!(runs.len(), 5);
    let r = runs
        .iter()
        .find(|r| r.id == "3a69a452-5344-4f1f-ba7e-757b606702ed")
        .unwrap();
    assert_eq!(r.schema, "wattprint.run/1");
    assert_eq!(r.project, "bench_offline");
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.ended_at.as_deref(), Some("2026-11-28T02:46:56Z"));
    assert!(
        r.started_at.starts_with("2026-11-28T02:46:38.6325377"),
        "timestamp − duration: {}",
        r.started_at
    );
    assert_eq!(r.duration_s, 17.367462284999988);
    assert_eq!(r.emissions_kg.total, 5.863516507272113e-06);
    assert_eq!(r.energy_kwh.facility.0, 0.00010463278265622357);
    assert_eq!(r.energy_kwh.cpu.0, 1.0011268067334999e-05);
    assert_eq!(r.energy_kwh.ram.0, 9.462151458888856e-05);
    assert_eq!(r.pue, 1.0);
    // FRA's 2023 OWID figure, as CodeCarbon used it.
    assert!((r.carbon_intensity.g_per_kwh - 56.039).abs() < 0.001);
    assert_eq!(r.location.code, "FR");
    assert!(r.location.known);
    assert_eq!(r.methods.cpu, "imported:codecarbon");
    assert_eq!(r.methods.gpu, "imported:codecarbon");
    assert_eq!(
        r.tags["codecarbon.experiment_id"],
        "5b0fa12a-3dd7-45bb-9766-cc326314d9f1"
    );
    assert_eq!(r.host.cpu_model, "AMD EPYC");
    assert_eq!(r.host.logical_cpus, 2);
    assert!(close(
        r.host.ram_gb,
        23.540584564208984 * 1073741824.0 / 1e9
    ));
    let canon = std::fs::canonicalize(&file).unwrap();
    assert!(
        r.warnings[0].contains(&format!("{}, line 2", canon.display())),
        "{:?}",
        r.warnings
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("read in this machine's time zone") && w.contains("UTC+00:00")),
        "{:?}",
        r.warnings
    );
    // CodeCarbon columns without a record field are kept, and go back out on export.
    let kept = &r.imported.as_ref().unwrap().codecarbon;
    assert_eq!(kept["os"], "Linux-6.18.44-fc-v657-x86_64-with-glibc2.36");
    assert_eq!(kept["python_version"], "3.11.7");
    assert_eq!(kept["codecarbon_version"], "3.3.2");
    assert_eq!(kept["water_consumed"], "0.0");
    assert!(kept.contains_key("cpu_utilization_percent"), "{kept:?}");
    let q = runs
        .iter()
        .find(|r| r.id == "e396e883-b776-4a91-b637-08576eed4ef6")
        .unwrap();
    assert_eq!(
        q.location.code, "CA-QC",
        "Canada + quebec is our zone CA-QC"
    );
    assert!(q.warnings[0].ends_with("line 5"), "{:?}", q.warnings);

    // Browsing sees them.
    let table = ok(&h.wp(&["runs", "--project", "bench_online"]));
    assert!(table.contains("imported:codecarbon"), "{table}");

    // Again: nothing duplicated.
    let out = ok(&h.wp(&["import", "codecarbon", file.to_str().unwrap()]));
    assert!(out.contains("imported 0 run(s)"), "{out}");
    assert!(out.contains("5 already in the store (skipped)"), "{out}");
    assert_eq!(h.runs().len(), 5);

    // --project puts them elsewhere (new ids only: the same ids stay where they are).
    let out = ok(&h.wp(&["projects", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["project"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["bench_offline", "bench_online"]);

    // Exported back to CodeCarbon, the columns CodeCarbon wrote come back unchanged (powers are
    // recomputed from energy / duration; fields wattprint does not keep are empty).
    let out = ok(&h.wp(&["export", "--format", "codecarbon"]));
    let orig = rows(CODECARBON_FILE);
    let back = rows(&out);
    assert_eq!(back.len(), 5);
    for a in &orig {
        let b = back.iter().find(|b| b["run_id"] == a["run_id"]).unwrap();
        for c in [
            "timestamp",
            "project_name",
            "experiment_id",
            "country_name",
            "country_iso_code",
            "region",
            "cpu_count",
            "cpu_model",
            "gpu_count",
            "tracking_mode",
            "on_cloud",
        ] {
            assert_eq!(a[c], b[c], "{c}");
        }
        for c in [
            "duration",
            "emissions",
            "cpu_energy",
            "gpu_energy",
            "ram_energy",
            "energy_consumed",
            "ram_total_size",
            "pue",
        ] {
            assert!(close(num(a, c), num(b, c)), "{c}: {} vs {}", a[c], b[c]);
        }
        assert!((num(a, "emissions_rate") - num(b, "emissions_rate")).abs() < 1e-15);
    }
}

fn with_header(lines: &[&str]) -> String {
    let mut s = CODECARBON_COLUMNS.join(",");
    s.push('\n');
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s
}

fn cc_row(run_id: &str, duration: &str, emissions: &str, cpu_model: &str) -> String {
    format!(
        "2025-01-01T00:00:00,proj,{run_id},,{duration},{emissions},,,,,0.001,0.0,0.0005,0.0015,,France,FRA,,,,,,,4,{cpu_model},0,,,,8.0,machine,,,,,N,1.0,"
    )
}

#[test]
fn rows_beyond_the_bounds_are_refused_with_their_line() {
    let h = Home::new();
    let text = with_header(&[
        &cc_row("good", "10", "0.0001", "cpu"),   // line 2
        &cc_row("huge", "10", "1e308", "cpu"),    // line 3: 1e308 kg
        &cc_row("long", "1e12", "0.0001", "cpu"), // line 4: 31 700 years
        &cc_row("future", "10", "0.0001", "cpu").replacen("2025-01-01", "9999-01-01", 1), // line 5
        &cc_row("control", "10", "0.0001", "a\u{1b}[2Jb"), // line 6: a terminal escape
        &cc_row("pue", "10", "0.0001", "cpu").replacen(",N,1.0,", ",N,50.0,", 1), // line 7
        // line 8: emissions without energy
        &cc_row("no-energy", "10", "0.0001", "cpu").replacen(
            ",0.001,0.0,0.0005,0.0015,",
            ",0,0,0,0,",
            1,
        ),
    ]);
    let file = h.file("bounds.csv", &text);
    let o = h.wp(&["import", "codecarbon", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "partial import: exit 1");
    let e = stderr(&o);
    let shown = file.display().to_string();
    for (line, what) in [
        (3, "carbon_intensity.g_per_kwh"),
        (4, "duration"),
        (5, "future"),
        (6, "host.cpu_model"),
        (7, "pue"),
        (8, "without energy"),
    ] {
        assert!(
            e.lines()
                .any(|l| l.starts_with(&format!("wattprint: {shown}:{line}: ")) && l.contains(what)),
            "line {line} ({what}): {e}"
        );
    }
    assert!(!e.contains(":2:"), "{e}");
    let ids: Vec<String> = h.runs().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, vec!["good"]);
    // The store stays usable by every reader.
    for args in [&["runs", "--json"][..], &["export", "--format", "csv"][..]] {
        let o = h.wp(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn malformed_rows_are_reported_by_line_and_the_good_rows_imported() {
    let h = Home::new();
    let text = with_header(&[
        &cc_row("good-1", "10", "0.0001", "cpu"),   // line 2
        &cc_row("bad-dur", "abc", "0.0001", "cpu"), // line 3
        &cc_row("good-2", "20", "0.0002", "cpu"),   // line 4
        "2025-01-01T00:00:00,proj,short",           // line 5
        &cc_row("bad-neg", "5", "-1", "cpu"),       // line 6
        // (A multi-line field where the record allows one: a tag value.)
        &cc_row("good-3", "30", "0.0003", "cpu").replacen(
            "good-3,,",
            "good-3,\"multi\nline experiment\",",
            1,
        ), // lines 7-8
        &cc_row("bad-ts", "5", "0.1", "cpu").replacen("2025-01-01T00:00:00", "yesterday", 1), // line 9
    ]);
    let file = h.file("mixed.csv", &text);
    let o = h.wp(&["import", "codecarbon", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "partial import: exit 1");
    let e = stderr(&o);
    let shown = file.display().to_string();
    assert!(
        e.contains(&format!(
            "{shown}:3: column `duration`: `abc` is not a number"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!("{shown}:5: has 3 fields where the header has 38")),
        "{e}"
    );
    assert!(e.contains(&format!("{shown}:6: column `emissions`")), "{e}");
    assert!(e.contains(&format!("{shown}:9: column `timestamp`")), "{e}");
    assert!(
        !e.contains(":2:") && !e.contains(":4:") && !e.contains(":7:"),
        "{e}"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("imported 3 run(s)"), "{out}");
    assert!(out.contains("4 malformed row(s) left out"), "{out}");
    let ids: Vec<String> = h.runs().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, vec!["good-1", "good-2", "good-3"]);
    let g3 = h.store().get_run("good-3").unwrap().unwrap();
    assert_eq!(
        g3.tags["codecarbon.experiment_id"],
        "multi\nline experiment"
    );
    assert!(g3.warnings[0].ends_with("line 7"), "{:?}", g3.warnings);

    // --strict: nothing imported, exit 2.
    let s = Home::new();
    let o = s.wp(&["import", "codecarbon", "--strict", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains(":3:") && e.contains(":9:"), "{e}");
    assert!(e.contains("nothing was imported (--strict)"), "{e}");
    assert!(s.runs().is_empty());

    // --strict on a clean file imports it.
    let clean = h.file(
        "clean.csv",
        // (0.0003 kg for 0.0015 kWh: 200 g/kWh, a possible intensity.)
        &with_header(&[&cc_row("c-1", "1", "0.0003", "x")]),
    );
    let out = ok(&s.wp(&["import", "codecarbon", "--strict", clean.to_str().unwrap()]));
    assert!(out.contains("imported 1 run(s)"), "{out}");
}

#[test]
fn import_rejects_files_that_are_not_codecarbon_and_overrides_project() {
    let h = Home::new();
    let f = h.file("other.csv", "a,b,c\n1,2,3\n");
    let o = h.wp(&["import", "codecarbon", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("lacks timestamp, duration, emissions, energy_consumed"),
        "{e}"
    );
    let o = h.wp(&["import", "codecarbon", "/nonexistent/emissions.csv"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot open /nonexistent/emissions.csv"));
    let o = h.wp(&["import", "carbontracker", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));

    // An older CodeCarbon file (fewer columns, any order) with a flushed run_id twice: the last
    // row wins; --project overrides project_name.
    let text = "run_id,timestamp,project_name,duration,emissions,energy_consumed\n\
                r-1,2024-03-01T10:00:00,old,10,0.001,0.01\n\
                r-1,2024-03-01T10:00:05,old,15,0.0015,0.015\n";
    let f = h.file("old.csv", text);
    let o = h.wp(&[
        "import",
        "codecarbon",
        "--project",
        "migrated",
        f.to_str().unwrap(),
    ]);
    let out = ok(&o);
    assert!(out.contains("imported 1 run(s)"), "{out}");
    assert!(stderr(&o).contains("appears on line 2 and again on line 3"));
    let r = h.store().get_run("r-1").unwrap().unwrap();
    assert_eq!(r.project, "migrated");
    assert_eq!(r.duration_s, 15.0);
    assert_eq!(r.energy_kwh.facility.0, 0.015);
    assert_eq!(r.pue, 1.0, "no pue column: CodeCarbon's default 1.0");
    assert_eq!(r.location.code, "unknown");
    assert!(!r.location.known);
    assert!((r.carbon_intensity.g_per_kwh - 100.0).abs() < 1e-9);
}

#[test]
fn csv_and_jsonl_exports() {
    let h = Home::new();
    let recs = seed(&h);
    let out = ok(&h.wp(&["export", "--format", "jsonl"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4);
    let mut back: Vec<RunRecord> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    back.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(back, recs, "JSON Lines carry the full records, exactly");

    let out = ok(&h.wp(&["export", "--format", "csv", "--project", "vision"]));
    assert_eq!(out.lines().next().unwrap(), CSV_COLUMNS.join(","));
    let rs = rows(&out);
    assert_eq!(rs.len(), 2);
    let r = rs
        .iter()
        .find(|r| r["id"] == "22222222-bbbb-4000-8000-000000000002")
        .unwrap();
    assert_eq!(r["status"], "failed");
    assert_eq!(r["exit_code"], "1");
    assert_eq!(r["location"], "aws:eu-west-3");
    assert_eq!(r["method_cpu"], "rapl");
    assert!(close(num(r, "energy_cpu_kwh"), 0.0123));
    assert!(close(num(r, "energy_it_kwh"), 0.01353));
    assert!(close(num(r, "energy_facility_kwh"), 0.01353 * 1.135));
    assert!(close(
        num(r, "emissions_total_kg"),
        0.01353 * 1.135 * 51.1 / 1000.0
    ));
    assert_eq!(r["command"], "[\"python\",\"train.py\"]");

    // Into a file: written whole; a bad directory is a clear error.
    let p = h.dir.path().join("runs.jsonl");
    ok(&h.wp(&["export", "--format", "jsonl", "-o", p.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 4);
    let o = h.wp(&["export", "--format", "csv", "-o", "/nonexistent/dir/x.csv"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--output"), "{}", stderr(&o));
    let o = h.wp(&["export", "--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));

    // An empty selection: just the header.
    let out = ok(&h.wp(&["export", "--format", "codecarbon", "--project", "none"]));
    assert_eq!(out.lines().count(), 1);
}

#[test]
fn codecarbon_local_time_zone_unknown_columns_and_kept_values_round_trip() {
    // One row with an extra column CodeCarbon 3.3.2 does not write.
    let mut lines = CODECARBON_FILE.lines();
    let header = format!("{},gpu_temperature", lines.next().unwrap());
    let row = format!("{},71", lines.next().unwrap());
    let text = format!("{header}\n{row}\n");
    // --timezone +02:00: 02:46:56 local is 00:46:56 UTC.
    let h = Home::new();
    let file = h.file("emissions.csv", &text);
    let o = h.wp(&[
        "import",
        "codecarbon",
        "--timezone",
        "+02:00",
        file.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("not understood") && err.contains("gpu_temperature"),
        "{err}"
    );
    let r = &h.runs()[0];
    assert_eq!(r.ended_at.as_deref(), Some("2026-11-28T00:46:56Z"));
    assert_eq!(
        r.imported.as_ref().unwrap().codecarbon["gpu_temperature"],
        "71"
    );
    // export: the kept columns are back in CodeCarbon's columns
    let out = h.wp(&["export", "--format", "codecarbon"]);
    let csv_text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut rd = csv::Reader::from_reader(csv_text.as_bytes());
    let hdr = rd.headers().unwrap().clone();
    let rec = rd.records().next().unwrap().unwrap();
    let col = |n: &str| {
        rec.get(hdr.iter().position(|x| x == n).unwrap())
            .unwrap()
            .to_string()
    };
    assert_eq!(col("python_version"), "3.11.7");
    assert_eq!(col("codecarbon_version"), "3.3.2");
    assert_eq!(col("os"), "Linux-6.18.44-fc-v657-x86_64-with-glibc2.36");
    // the machine's zone, daylight saving included: Paris is UTC+01:00 in November
    let h = Home::new();
    let file = h.file("emissions.csv", &text);
    let o = Command::new(bin())
        .env("WATTPRINT_HOME", h.home())
        // Paris as a POSIX rule (no tz database needed): CET, CEST from March to October
        .env("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")
        .args(["import", "codecarbon", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let r = &h.runs()[0];
    assert_eq!(r.ended_at.as_deref(), Some("2026-11-28T01:46:56Z"));
    assert!(
        r.warnings.iter().any(|w| w.contains("UTC+01:00")),
        "{:?}",
        r.warnings
    );
    // an unreadable zone is refused, naming the flag
    let o = h.wp(&[
        "import",
        "codecarbon",
        "--timezone",
        "Europe/Paris",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--timezone"));
}
