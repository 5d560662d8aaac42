//! Shared by the report tests: a fake machine for real `wattprint run`s, and run records built
//! with the library's own accounting (`build_record`) for stores with many runs.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use wattprint::carbon_args::CarbonArgs;
use wattprint::store::Store;
use wattprint_core::record::{
    build_record, Ending, GpuInfo, HostInfo, RunMeta, RunRecord, RunStatus,
};
use wattprint_core::sampler::{DeviceTotal, Scope, SeriesPoint, Snapshot};
use wattprint_core::sensor::{Device, DeviceKind, Method};
use wattprint_core::units::{Joules, Watts};

#[path = "../common/mod.rs"]
mod common;
pub use common::{Driver, FakeHost};

/// What a synthetic run looks like.
pub struct Spec<'a> {
    pub id: String,
    pub project: &'a str,
    pub status: RunStatus,
    pub started_at: String,
    pub duration_s: f64,
    /// Constant power per device: (id, kind, method, watts, idle watts).
    pub devices: Vec<(&'a str, DeviceKind, Method, f64, Option<f64>)>,
    pub location: &'a str,
    pub gpus: Vec<&'a str>,
    pub cpu_model: &'a str,
    pub tags: BTreeMap<String, String>,
    pub command: Vec<String>,
}

impl<'a> Spec<'a> {
    pub fn new(id: &str, project: &'a str, status: RunStatus, started_at: &str) -> Spec<'a> {
        Spec {
            id: id.to_string(),
            project,
            status,
            started_at: started_at.to_string(),
            duration_s: 600.0,
            devices: vec![
                (
                    "cpu:package-0",
                    DeviceKind::Cpu,
                    Method::Rapl,
                    120.0,
                    Some(40.0),
                ),
                ("ram:dram-0", DeviceKind::Ram, Method::RaplDram, 10.0, None),
            ],
            location: "FR",
            gpus: Vec::new(),
            cpu_model: "AMD EPYC 7763 64-Core Processor",
            tags: BTreeMap::new(),
            command: vec!["python".into(), "train.py".into()],
        }
    }
}

/// A run record and its snapshot (series at 10 s), through the library's `build_record`.
pub fn synth(spec: &Spec) -> (RunRecord, Snapshot) {
    let step = 10.0;
    let n = (spec.duration_s / step).ceil() as usize;
    let devices: Vec<DeviceTotal> = spec
        .devices
        .iter()
        .map(|&(id, kind, method, w, idle)| {
            let series: Vec<SeriesPoint> = (0..n)
                .map(|i| {
                    let t0 = i as f64 * step;
                    let t1 = (t0 + step).min(spec.duration_s);
                    SeriesPoint {
                        t0,
                        t1,
                        energy_j: w * (t1 - t0),
                    }
                })
                .collect();
            let e: f64 = series.iter().map(|p| p.energy_j).sum();
            DeviceTotal {
                device: Device {
                    id: id.to_string(),
                    kind,
                    method,
                    name: match kind {
                        DeviceKind::Gpu => spec.gpus.first().copied().unwrap_or("GPU").into(),
                        _ => id.to_string(),
                    },
                    gpu_index: None,
                    uuid: None,
                    idle_power_w: idle,
                    factors: Vec::new(),
                },
                energy: Joules(e),
                machine_energy: Joules(e),
                last_power: Watts(w),
                series,
            }
        })
        .collect();
    let snap = Snapshot {
        elapsed: Duration::from_secs_f64(spec.duration_s),
        devices,
        warnings: Vec::new(),
        samples: n as u64,
        skipped_ticks: 0,
    };
    let meta = RunMeta {
        id: spec.id.clone(),
        project: spec.project.to_string(),
        tags: spec.tags.clone(),
        command: spec.command.clone(),
        started_at: spec.started_at.clone(),
        host: HostInfo {
            hostname: "node-1".into(),
            cpu_model: spec.cpu_model.into(),
            logical_cpus: 128,
            ram_gb: 512.0,
            gpus: spec
                .gpus
                .iter()
                .enumerate()
                .map(|(i, g)| GpuInfo {
                    index: i as u32,
                    name: g.to_string(),
                    uuid: format!("GPU-{i}"),
                })
                .collect(),
        },
        scope: Scope::Machine,
        interval_s: step,
        start_unix: 0.0,
    };
    let carbon = CarbonArgs {
        location: Some(spec.location.to_string()),
        ..CarbonArgs::default()
    }
    .resolve()
    .unwrap();
    let (ended_at, exit_code, signal) = match spec.status {
        RunStatus::Completed => (Some(spec.started_at.clone()), Some(0), None),
        RunStatus::Failed => (Some(spec.started_at.clone()), Some(1), None),
        RunStatus::Killed | RunStatus::StoppedByBudget | RunStatus::StoppedByCap => {
            (Some(spec.started_at.clone()), Some(137), Some(9))
        }
        RunStatus::Running => (None, None, None),
    };
    let ending = Ending {
        ended_at: ended_at.map(|s| end_time(&s, spec.duration_s)),
        exit_code,
        signal,
    };
    let rec = build_record(&meta, &carbon, &snap, spec.status, &ending, &[]);
    (rec, snap)
}

fn end_time(start: &str, dur: f64) -> String {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(start, &Rfc3339).unwrap();
    (t + time::Duration::seconds_f64(dur))
        .format(&Rfc3339)
        .unwrap()
}

/// Save synthetic runs (records and series) into the store at `db`.
pub fn save(db: &Path, specs: &[Spec]) -> Vec<RunRecord> {
    let mut st = Store::open(db).unwrap();
    specs
        .iter()
        .map(|s| {
            let (rec, snap) = synth(s);
            st.save_run(&rec).unwrap();
            st.save_series(&rec.id, &snap).unwrap();
            rec
        })
        .collect()
}

/// Resource-loading markup that a self-contained page must not have.
pub const FORBIDDEN: [&str; 15] = [
    "<script",
    "<link",
    "<img",
    "<iframe",
    "<object",
    "<embed",
    "<video",
    "<audio",
    "src=",
    "@import",
    "url(",
    "<base",
    "href=",
    "srcset",
    "http-equiv",
];
