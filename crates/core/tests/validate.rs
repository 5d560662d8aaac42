#![allow(clippy::unwrap_used)]
//! `RunRecord::validate`: records as `wattprint run` builds them pass (hourly intensity, embodied
//! share, process scope, idle power); errors name the JSON path; the time rules.

use std::collections::BTreeMap;
use std::time::Duration;
use wattprint_core::accounting::{EmbodiedComponent, Intensity};
use wattprint_core::record::{
    build_record, CarbonContext, Ending, HostInfo, LocationRecord, RunEmbodied, RunMeta, RunRecord,
    RunStatus,
};
use wattprint_core::sampler::{DeviceTotal, Scope, SeriesPoint, Snapshot};
use wattprint_core::sensor::{Device, DeviceKind, Method};
use wattprint_core::units::{GramsPerKwh, Joules, Watts};
use wattprint_core::validate::{EARLIEST_UNIX, MAX_CLOCK_SKEW_S};

/// 2025-03-10T13:00:00Z.
const NOW: i64 = 1_741_611_600;

fn device(id: &str, kind: DeviceKind, joules: f64, machine: f64, idle: Option<f64>) -> DeviceTotal {
    DeviceTotal {
        device: Device {
            id: id.into(),
            kind,
            method: Method::Rapl,
            name: id.into(),
            gpu_index: None,
            uuid: None,
            idle_power_w: idle,
            factors: Vec::new(),
        },
        energy: Joules(joules),
        machine_energy: Joules(machine),
        last_power: Watts(0.0),
        series: (0..60)
            .map(|i| SeriesPoint {
                t0: f64::from(i) * 60.0,
                t1: f64::from(i + 1) * 60.0,
                energy_j: joules / 60.0,
            })
            .collect(),
    }
}

/// A one-hour run in process scope, valued against an hourly series, with embodied emissions.
fn built(status: RunStatus) -> RunRecord {
    let snap = Snapshot {
        elapsed: Duration::from_secs(3600),
        devices: vec![
            device("cpu:package-0", DeviceKind::Cpu, 2.0e5, 5.0e5, Some(40.0)),
            device("cpu:package-1", DeviceKind::Cpu, 1.5e5, 4.0e5, Some(40.0)),
            device("gpu:0", DeviceKind::Gpu, 1.1e6, 1.1e6, Some(60.0)),
            device("ram", DeviceKind::Ram, 3.0e4, 6.0e4, None),
        ],
        warnings: vec![],
        samples: 3600,
        skipped_ticks: 0,
    };
    let start_unix = (NOW - 3600 - 60) as f64;
    let meta = RunMeta {
        id: "run-1".into(),
        project: "p".into(),
        tags: BTreeMap::new(),
        command: vec!["python".into(), "train.py".into()],
        started_at: "2025-03-10T11:59:00Z".into(),
        host: HostInfo {
            hostname: "node-1".into(),
            cpu_model: "cpu".into(),
            logical_cpus: 64,
            ram_gb: 256.0,
            gpus: vec![],
        },
        scope: Scope::Process,
        interval_s: 1.0,
        start_unix,
    };
    let s = start_unix as i64;
    let series = Intensity::hourly(vec![
        (s - 1800, s + 1800, GramsPerKwh(80.0)),
        (s + 1800, s + 5400, GramsPerKwh(310.0)),
    ])
    .unwrap();
    let carbon = CarbonContext {
        intensity_g_per_kwh: 200.0,
        intensity_source: "test".into(),
        intensity_detail: "test".into(),
        pue: 1.4,
        pue_detail: "test".into(),
        location: LocationRecord {
            code: "FR".into(),
            name: "France".into(),
            known: true,
            pue_source: "test".into(),
        },
        factors_version: "test".into(),
        warnings: vec![],
        series: Some(series),
        signal: Some("average".into()),
        live: None,
        embodied_not_counted: None,
        embodied: Some(RunEmbodied {
            components: vec![EmbodiedComponent {
                name: "server".into(),
                kg_co2e: 1200.0,
                count: 1.0,
                lifetime_hours: 35_040.0,
                source: "test".into(),
            }],
            share: None,
        }),
    };
    let ending = Ending {
        ended_at: (status != RunStatus::Running).then(|| "2025-03-10T12:59:00Z".to_string()),
        exit_code: (status != RunStatus::Running).then_some(0),
        signal: None,
    };
    build_record(&meta, &carbon, &snap, status, &ending, &[])
}

#[test]
fn records_wattprint_builds_are_valid() {
    for status in [RunStatus::Running, RunStatus::Completed] {
        let r = built(status);
        assert!(r.emissions_kg.embodied > 0.0 && r.energy_kwh.static_.0 > 0.0);
        assert_eq!(r.validate_at(NOW), Ok(()), "{status:?}");
    }
}

#[test]
fn errors_name_the_field_and_the_reason() {
    let mut r = built(RunStatus::Completed);
    r.energy_kwh.total.0 = 1e308;
    let e = r.validate_at(NOW).unwrap_err();
    assert_eq!(e.path, "energy_kwh.total");
    assert!(
        e.to_string()
            .starts_with("energy_kwh.total is 1e308; the limit is 1000000"),
        "{e}"
    );

    let mut r = built(RunStatus::Completed);
    r.devices[2].energy_kwh *= 2.0;
    let e = r.validate_at(NOW).unwrap_err();
    assert_eq!(e.path, "energy_kwh.gpu");
    assert!(
        e.reason.contains("gpu devices") && e.reason.contains("contradicts"),
        "{e}"
    );

    // A job's share of a device cannot exceed what the whole device drew.
    let mut r = built(RunStatus::Completed);
    r.devices[0].machine_energy_kwh = r.devices[0].energy_kwh / 2.0;
    let e = r.validate_at(NOW).unwrap_err();
    assert_eq!(e.path, "devices[0].energy_kwh");

    let mut r = built(RunStatus::Completed);
    r.carbon_intensity.g_per_kwh *= 1.01;
    let e = r.validate_at(NOW).unwrap_err();
    assert_eq!(e.path, "emissions_kg.dynamic");

    let mut r = built(RunStatus::Completed);
    r.emissions_kg.embodied += 1.0;
    assert_eq!(r.validate_at(NOW).unwrap_err().path, "emissions_kg.total");

    // A GPU's UUID is a short line like the host's GPU list's.
    let mut r = built(RunStatus::Completed);
    r.devices[2].uuid = Some("GPU-8932f937-d72c-4106-c12f-20bd9faed9f6".into());
    assert_eq!(r.validate_at(NOW), Ok(()));
    r.devices[2].uuid = Some("x".repeat(300));
    assert_eq!(r.validate_at(NOW).unwrap_err().path, "devices[2].uuid");
    r.devices[2].uuid = Some("GPU-1\nforged".into());
    assert_eq!(r.validate_at(NOW).unwrap_err().path, "devices[2].uuid");

    // Within the tolerance (10⁻⁶ relative): float noise passes.
    let mut r = built(RunStatus::Completed);
    r.emissions_kg.total *= 1.0 + 1e-9;
    r.energy_kwh.facility.0 *= 1.0 - 1e-9;
    assert_eq!(r.validate_at(NOW), Ok(()));
}

#[test]
fn times_must_be_possible() {
    let at = |started: &str, ended: Option<&str>, duration: f64| {
        let mut r = built(RunStatus::Completed);
        r.started_at = started.into();
        r.ended_at = ended.map(str::to_string);
        r.duration_s = duration;
        r.validate_at(NOW)
    };
    let fmt = |unix: i64| {
        time::OffsetDateTime::from_unix_timestamp(unix)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    // The clock-skew allowance, to the second.
    assert_eq!(at(&fmt(NOW + MAX_CLOCK_SKEW_S), None, 0.0), Ok(()));
    let e = at(&fmt(NOW + MAX_CLOCK_SKEW_S + 1), None, 0.0).unwrap_err();
    assert!(e.path == "started_at" && e.reason.contains("future"), "{e}");
    let e = at(&fmt(NOW), None, f64::from(MAX_CLOCK_SKEW_S as i32) + 1.0).unwrap_err();
    assert_eq!(e.path, "duration_s");
    // 2000 onwards.
    assert_eq!(at(&fmt(EARLIEST_UNIX), None, 0.0), Ok(()));
    assert_eq!(
        at(&fmt(EARLIEST_UNIX - 1), None, 0.0).unwrap_err().path,
        "started_at"
    );
    for bad in [
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2016-12-31T23:59:60Z",
        "yesterday",
        "",
    ] {
        assert_eq!(at(bad, None, 0.0).unwrap_err().path, "started_at", "{bad}");
    }
    let e = at("2025-03-10T12:00:00Z", Some("2025-03-10T11:00:00Z"), 10.0).unwrap_err();
    assert!(
        e.path == "ended_at" && e.reason.contains("before started_at"),
        "{e}"
    );
    let e = at(
        "2025-03-10T12:00:00+01:00",
        Some("2025-03-10T11:30:00Z"),
        10.0,
    );
    assert_eq!(e, Ok(()), "offsets are compared as instants");
}

#[test]
fn segments_are_bounded_and_errors_name_the_window() {
    use wattprint_core::segments::{Segment, SegmentKind, Segments, WorkUnits, MAX_SEGMENTS};
    let window = |name: &str, kwh: f64| Segment {
        name: name.into(),
        kind: SegmentKind::Stage,
        start_s: 1.0,
        end_s: 2.0,
        energy_kwh: kwh,
        emissions_kg: kwh * 0.1,
        work: Some(WorkUnits::new(10.0, "tokens", kwh, kwh * 0.1)),
        open_at_end: false,
    };
    let mut r = built(RunStatus::Completed);
    r.segments = Some(Segments {
        windows: vec![window("training", 0.5)],
        work: Some(WorkUnits::new(0.0, "tokens", 1.0, 0.1)),
        dropped: 0,
    });
    assert_eq!(r.validate_at(NOW), Ok(()));
    // the record round-trips through JSON with its segments
    let back: RunRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back.segments, r.segments);
    let mut bad = r.clone();
    bad.segments.as_mut().unwrap().windows[0].energy_kwh = -1.0;
    let e = bad.validate_at(NOW).unwrap_err();
    assert_eq!(e.path, "segments.windows[0].energy_kwh");
    let mut bad = r.clone();
    bad.segments.as_mut().unwrap().windows[0].name = "a\nb".into();
    assert_eq!(
        bad.validate_at(NOW).unwrap_err().path,
        "segments.windows[0].name"
    );
    let mut bad = r.clone();
    bad.segments.as_mut().unwrap().windows = vec![window("w", 0.0); MAX_SEGMENTS + 1];
    assert_eq!(bad.validate_at(NOW).unwrap_err().path, "segments.windows");
    let mut bad = r;
    bad.segments.as_mut().unwrap().work.as_mut().unwrap().units = f64::INFINITY;
    assert_eq!(
        bad.validate_at(NOW).unwrap_err().path,
        "segments.work.units"
    );
}
