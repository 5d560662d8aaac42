#![allow(clippy::unwrap_used)]
//! The sampler against fake sensors whose true energy is a known function of time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wattprint_core::sampler::{
    push_point, Attributor, Sampler, SamplerConfig, SeriesPoint, WholeMachine, MAX_SERIES_POINTS,
};
use wattprint_core::sensor::{Device, DeviceKind, Method, Reading, Sensor, SensorError};
use wattprint_core::units::Joules;

/// A device drawing a constant power since `t0`; optionally sleeping inside `read`.
struct ConstPower {
    devices: Vec<Device>,
    watts: f64,
    t0: Instant,
    read_delay: Duration,
    reads: Arc<Mutex<Vec<Instant>>>,
}

fn dev(id: &str, kind: DeviceKind) -> Device {
    Device {
        id: id.into(),
        kind,
        method: Method::Model,
        name: id.into(),
        gpu_index: None,
        uuid: None,
        idle_power_w: None,
        factors: Vec::new(),
    }
}

impl Sensor for ConstPower {
    fn name(&self) -> &'static str {
        "const"
    }
    fn devices(&self) -> &[Device] {
        &self.devices
    }
    fn read(&mut self, now: Instant) -> Result<Reading, SensorError> {
        std::thread::sleep(self.read_delay);
        self.reads.lock().unwrap().push(now);
        let e = self.watts * now.saturating_duration_since(self.t0).as_secs_f64();
        Ok(Reading {
            energy: vec![Joules(e); self.devices.len()],
            power: vec![None; self.devices.len()],
        })
    }
}

fn sensor(watts: f64, delay: Duration) -> (ConstPower, Arc<Mutex<Vec<Instant>>>) {
    let reads = Arc::new(Mutex::new(Vec::new()));
    (
        ConstPower {
            devices: vec![dev("cpu:x", DeviceKind::Cpu)],
            watts,
            t0: Instant::now(),
            read_delay: delay,
            reads: reads.clone(),
        },
        reads,
    )
}

#[test]
fn integrates_constant_power_between_start_and_stop() {
    let (s, _) = sensor(100.0, Duration::ZERO);
    let cfg = SamplerConfig {
        interval: Duration::from_millis(20),
    };
    let started = Instant::now();
    let sampler = Sampler::start(vec![Box::new(s)], Box::new(WholeMachine), cfg);
    std::thread::sleep(Duration::from_millis(300));
    let snap = sampler.stop();
    let wall = started.elapsed().as_secs_f64();
    let e = snap.devices[0].energy.0;
    // The sampler's window is inside [started, now]: at most the whole wall time.
    assert!(e <= 100.0 * wall + 1e-9, "{e} > {}", 100.0 * wall);
    assert!(
        e >= 100.0 * 0.29,
        "energy {e} J too small for 300 ms at 100 W"
    );
    assert_eq!(snap.devices[0].energy, snap.devices[0].machine_energy);
    assert!(snap.samples >= 5, "only {} samples", snap.samples);
    let series_total: f64 = snap.devices[0].series.iter().map(|p| p.energy_j).sum();
    assert!((series_total - e).abs() < 1e-9);
}

#[test]
fn slow_reads_skip_ticks_without_drifting() {
    // reads take 35 ms at a 20 ms interval: each read overruns one tick
    let (s, reads) = sensor(10.0, Duration::from_millis(35));
    let cfg = SamplerConfig {
        interval: Duration::from_millis(20),
    };
    let sampler = Sampler::start(vec![Box::new(s)], Box::new(WholeMachine), cfg);
    let start = reads.lock().unwrap()[0];
    std::thread::sleep(Duration::from_millis(400));
    let snap = sampler.stop();
    assert!(snap.skipped_ticks > 0, "overruns should skip ticks");
    // Scheduled reads (all but the first, baseline, and the last, final) start on the 20 ms
    // grid. A drifting scheduler (sleep `interval` after each read) would start them at
    // multiples of 55 ms instead. Allow a few late wake-ups on a loaded machine.
    let r = reads.lock().unwrap();
    let scheduled = &r[1..r.len() - 1];
    let on_grid = scheduled
        .iter()
        .filter(|t| {
            let ms = t.duration_since(start).as_secs_f64() * 1000.0;
            (ms % 20.0) < 6.0
        })
        .count();
    assert!(
        on_grid * 10 >= scheduled.len() * 7,
        "only {on_grid} of {} reads on the 20 ms grid",
        scheduled.len()
    );
}

struct Half;
impl Attributor for Half {
    fn shares(&mut self, d: &[Device], _: &[Option<Vec<u32>>]) -> Vec<f64> {
        vec![0.5; d.len()]
    }
}

#[test]
fn attribution_share_applies_and_machine_energy_kept() {
    let (s, _) = sensor(50.0, Duration::ZERO);
    let cfg = SamplerConfig {
        interval: Duration::from_millis(10),
    };
    // (checkpoints are the session's now: wattprint-session's tests check their cadence)
    let sampler = Sampler::start(vec![Box::new(s)], Box::new(Half), cfg);
    std::thread::sleep(Duration::from_millis(200));
    let live = sampler.snapshot();
    assert!(live.samples > 0);
    let snap = sampler.stop();
    let d = &snap.devices[0];
    assert!((d.energy.0 * 2.0 - d.machine_energy.0).abs() < 1e-9);
}

#[test]
fn downsampling_preserves_energy_exactly() {
    let mut series = Vec::new();
    let mut total = 0.0;
    for i in 0..(MAX_SERIES_POINTS * 5 + 3) {
        let e = (i % 7) as f64 * 0.25;
        total += e;
        push_point(
            &mut series,
            SeriesPoint {
                t0: i as f64,
                t1: i as f64 + 1.0,
                energy_j: e,
            },
        );
    }
    assert!(series.len() <= MAX_SERIES_POINTS);
    let kept: f64 = series.iter().map(|p| p.energy_j).sum();
    assert_eq!(kept, total);
    // contiguous coverage
    for w in series.windows(2) {
        assert_eq!(w[0].t1, w[1].t0);
    }
}

#[test]
fn an_interval_beyond_any_instant_waits_for_the_stop_without_panicking() {
    let (s, _) = sensor(50.0, Duration::ZERO);
    let sampler = Sampler::start(
        vec![Box::new(s)],
        Box::new(WholeMachine),
        SamplerConfig {
            interval: Duration::from_secs(u64::MAX),
        },
    );
    let snap = sampler.stop();
    // the final read at stop still counts the run's tail
    assert_eq!(snap.samples, 1);
    assert_eq!(snap.warnings, Vec::<String>::new());
}
