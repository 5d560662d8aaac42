//! Fill a store with many realistic runs, for the report benchmark (`scripts/bench-report.sh`)
//! and for trying reports out:
//!
//! ```sh
//! cargo run --release -p wattprint --example seed_runs -- --db /tmp/w/wattprint.db --project bench --runs 10000
//! WATTPRINT_HOME=/tmp/w wattprint report --project bench --output /tmp/bench.html
//! ```
//!
//! Each run goes through the library's own accounting (`build_record`) and store
//! (`Store::save_run`, `Store::save_series`): a CPU package, its DRAM and, for one run in three,
//! 1–8 GPUs, at powers, durations and start times drawn from a fixed-seed generator; about 12 %
//! of the runs fail and 4 % are killed.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use wattprint::carbon_args::CarbonArgs;
use wattprint::store::Store;
use wattprint_core::record::{build_record, Ending, GpuInfo, HostInfo, RunMeta, RunStatus};
use wattprint_core::sampler::{DeviceTotal, Scope, SeriesPoint, Snapshot};
use wattprint_core::sensor::{Device, DeviceKind, Method};
use wattprint_core::units::{Joules, Watts};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.f()
    }
}

struct Opts {
    db: PathBuf,
    project: String,
    runs: usize,
    points: usize,
    seed: u64,
}

fn parse() -> Result<Opts> {
    let mut o = Opts {
        db: PathBuf::new(),
        project: "bench".into(),
        runs: 10_000,
        points: 20,
        seed: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--db" => o.db = PathBuf::from(val()?),
            "--project" => o.project = val()?,
            "--runs" => o.runs = val()?.parse().context("--runs: a whole number")?,
            "--points" => o.points = val()?.parse().context("--points: a whole number")?,
            "--seed" => o.seed = val()?.parse().context("--seed: a whole number")?,
            other => bail!(
                "unknown argument {other}; usage: seed_runs --db PATH [--project NAME] [--runs N] [--points N] [--seed N]"
            ),
        }
    }
    if o.db.as_os_str().is_empty() {
        bail!("--db PATH is required (the store file, e.g. /tmp/w/wattprint.db)");
    }
    if o.points == 0 {
        bail!("--points must be at least 1");
    }
    Ok(o)
}

fn main() -> Result<()> {
    let o = parse()?;
    let mut store = Store::open(&o.db)?;
    let mut rng = Rng(o.seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let locations = ["FR", "US-CA", "aws:us-east-1", "gcp:europe-west1", "DE"];
    let carbons: Vec<_> = locations
        .iter()
        .map(|l| {
            CarbonArgs {
                location: Some(l.to_string()),
                ..CarbonArgs::default()
            }
            .resolve()
        })
        .collect::<Result<_>>()?;
    let t_end = time::OffsetDateTime::now_utc();
    let span_s = 90.0 * 86400.0;
    let started = std::time::Instant::now();
    for i in 0..o.runs {
        let dur = (60f64.ln() + rng.f() * (21600f64.ln() - 60f64.ln())).exp();
        let start = t_end - time::Duration::seconds_f64(span_s * (1.0 - i as f64 / o.runs as f64));
        let status = match rng.f() {
            x if x < 0.12 => RunStatus::Failed,
            x if x < 0.16 => RunStatus::Killed,
            _ => RunStatus::Completed,
        };
        let n_gpus = if rng.f() < 1.0 / 3.0 {
            [1usize, 2, 4, 8][(rng.next() % 4) as usize]
        } else {
            0
        };
        let mut devs: Vec<(String, DeviceKind, Method, String, f64, Option<f64>)> = vec![
            (
                "cpu:package-0".into(),
                DeviceKind::Cpu,
                Method::Rapl,
                "AMD EPYC 7763 64-Core Processor".into(),
                rng.range(90.0, 260.0),
                None,
            ),
            (
                "ram:dram-0".into(),
                DeviceKind::Ram,
                Method::RaplDram,
                "dram".into(),
                rng.range(8.0, 30.0),
                None,
            ),
        ];
        for g in 0..n_gpus {
            devs.push((
                format!("gpu:{g}"),
                DeviceKind::Gpu,
                Method::NvmlEnergy,
                "NVIDIA A100-SXM4-80GB".into(),
                rng.range(120.0, 400.0),
                Some(55.0),
            ));
        }
        let step = dur / o.points as f64;
        let devices: Vec<DeviceTotal> = devs
            .iter()
            .map(|(id, kind, method, name, w, idle)| {
                let series: Vec<SeriesPoint> = (0..o.points)
                    .map(|k| {
                        let t0 = k as f64 * step;
                        let t1 = t0 + step;
                        SeriesPoint {
                            t0,
                            t1,
                            energy_j: w * step * (0.9 + 0.2 * ((k * 7 + i) % 5) as f64 / 4.0),
                        }
                    })
                    .collect();
                let e: f64 = series.iter().map(|p| p.energy_j).sum();
                DeviceTotal {
                    device: Device {
                        id: id.clone(),
                        kind: *kind,
                        method: *method,
                        name: name.clone(),
                        gpu_index: None,
                        uuid: None,
                        idle_power_w: *idle,
                        factors: Vec::new(),
                    },
                    energy: Joules(e),
                    machine_energy: Joules(e),
                    last_power: Watts(*w),
                    series,
                }
            })
            .collect();
        let snap = Snapshot {
            elapsed: Duration::from_secs_f64(dur),
            devices,
            warnings: Vec::new(),
            samples: o.points as u64,
            skipped_ticks: 0,
        };
        let mut tags = BTreeMap::new();
        tags.insert("lr".to_string(), format!("{:.0e}", rng.range(1e-5, 1e-3)));
        tags.insert("seed".to_string(), (i % 5).to_string());
        let started_at = wattprint::clock::format_rfc3339(start);
        let meta = RunMeta {
            id: format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                rng.next() as u32,
                rng.next() as u16,
                rng.next() & 0xfff,
                rng.next() & 0xfff,
                rng.next() & 0xffff_ffff_ffff
            ),
            project: o.project.clone(),
            tags,
            command: vec![
                "python".into(),
                "train.py".into(),
                format!("--config=configs/exp{}.yaml", i % 37),
            ],
            started_at,
            host: HostInfo {
                hostname: format!("node-{}", i % 8),
                cpu_model: "AMD EPYC 7763 64-Core Processor".into(),
                logical_cpus: 128,
                ram_gb: 512.0,
                gpus: (0..n_gpus)
                    .map(|g| GpuInfo {
                        index: g as u32,
                        name: "NVIDIA A100-SXM4-80GB".into(),
                        uuid: format!("GPU-{g}"),
                    })
                    .collect(),
            },
            scope: Scope::Machine,
            interval_s: 1.0,
            start_unix: 0.0,
        };
        let ending = Ending {
            ended_at: Some(wattprint::clock::format_rfc3339(
                start + time::Duration::seconds_f64(dur),
            )),
            exit_code: Some(match status {
                RunStatus::Failed => 1,
                RunStatus::Killed => 137,
                _ => 0,
            }),
            signal: (status == RunStatus::Killed).then_some(9),
        };
        let carbon = &carbons[i % carbons.len()];
        let rec = build_record(&meta, carbon, &snap, status, &ending, &[]);
        store.save_run(&rec)?;
        store.save_series(&rec.id, &snap)?;
    }
    eprintln!(
        "seed_runs: {} runs in project {} written to {} in {:.1} s",
        o.runs,
        o.project,
        o.db.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
