//! Shared by the report tests: a fake machine for real `wattprint run`s, and run records built
//! with the library's own accounting (`build_record`) for stores with many runs.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use wattprint::carbon_args::CarbonArgs;
use wattprint::store::Store;
use wattprint_core::record::{
    build_record, Ending, GpuInfo, HostInfo, RunMeta, RunRecord, RunStatus,
};
use wattprint_core::sampler::{DeviceTotal, Scope, SeriesPoint, Snapshot};
use wattprint_core::sensor::{Device, DeviceKind, Method};
use wattprint_core::units::{Joules, Watts};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wattprint"))
}

/// A fake machine: one RAPL package + DRAM, 4 CPUs, 16 GB; its own store.
pub struct FakeHost {
    pub dir: tempfile::TempDir,
}

impl FakeHost {
    pub fn new() -> FakeHost {
        let dir = tempfile::tempdir().unwrap();
        let h = FakeHost { dir };
        let pc = h.sys().join("class/powercap");
        for (zone, name, max) in [
            ("intel-rapl:0", "package-0", "262143328850"),
            ("intel-rapl:0:0", "dram", "65712999613"),
        ] {
            let z = pc.join(zone);
            std::fs::create_dir_all(&z).unwrap();
            std::fs::write(z.join("name"), format!("{name}\n")).unwrap();
            std::fs::write(z.join("energy_uj"), "1000000\n").unwrap();
            std::fs::write(z.join("max_energy_range_uj"), format!("{max}\n")).unwrap();
        }
        std::fs::create_dir_all(h.proc()).unwrap();
        std::fs::write(
            h.proc().join("stat"),
            "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 25 0 25 250 0 0 0 0 0 0\ncpu1 25 0 25 250 0 0 0 0 0 0\ncpu2 25 0 25 250 0 0 0 0 0 0\ncpu3 25 0 25 250 0 0 0 0 0 0\n",
        )
        .unwrap();
        std::fs::write(
            h.proc().join("meminfo"),
            "MemTotal:       16000000 kB\nMemFree:         8000000 kB\nMemAvailable:    8000000 kB\n",
        )
        .unwrap();
        std::fs::write(
            h.proc().join("cpuinfo"),
            "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\nphysical id\t: 0\n\n",
        )
        .unwrap();
        std::fs::create_dir_all(h.home()).unwrap();
        h
    }
    pub fn sys(&self) -> PathBuf {
        self.dir.path().join("sys")
    }
    pub fn proc(&self) -> PathBuf {
        self.dir.path().join("proc")
    }
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    pub fn db(&self) -> PathBuf {
        self.home().join("wattprint.db")
    }
    pub fn energy_file(&self, zone: &str) -> PathBuf {
        self.sys()
            .join("class/powercap")
            .join(zone)
            .join("energy_uj")
    }
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("WATTPRINT_SYSFS_ROOT", self.sys())
            .env("WATTPRINT_PROCFS_ROOT", self.proc())
            .env("WATTPRINT_HOME", self.home())
            .env(
                "WATTPRINT_NVML_LIBRARY",
                self.dir.path().join("no-libnvidia-ml.so"),
            )
            .env_remove("WATTPRINT_LOCATION")
            .env_remove("WATTPRINT_PROJECT")
            .env_remove("CUDA_VISIBLE_DEVICES");
        c
    }
    /// `wattprint ARGS`, asserting success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "wattprint {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Drives the fake package and DRAM counters at `power(t)` watts until dropped.
pub struct Driver {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Driver {
    /// `pkg(t)` and `dram(t)`: power in watts at `t` seconds; energy is their integral.
    pub fn start(
        h: &FakeHost,
        pkg: impl Fn(f64) -> f64 + Send + 'static,
        dram: impl Fn(f64) -> f64 + Send + 'static,
    ) -> Driver {
        let pkg_file = h.energy_file("intel-rapl:0");
        let dram_file = h.energy_file("intel-rapl:0:0");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            let (mut e_pkg, mut e_dram, mut last) = (1e6, 1e6, 0.0);
            while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
                let s = t0.elapsed().as_secs_f64();
                let dt = s - last;
                e_pkg += pkg(s) * 1e6 * dt;
                e_dram += dram(s) * 1e6 * dt;
                last = s;
                let write = |p: &Path, uj: f64| {
                    let tmp = p.with_extension("tmp");
                    std::fs::write(&tmp, format!("{}\n", uj as u64)).unwrap();
                    std::fs::rename(&tmp, p).unwrap();
                };
                write(&pkg_file, e_pkg);
                write(&dram_file, e_dram);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Driver {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

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
