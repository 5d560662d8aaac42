//! The sampler: one background thread that reads every sensor on an `Instant`-based schedule,
//! differences cumulative energies per interval, applies the attribution scope, and keeps
//! per-device totals and a bounded power series.
//!
//! Scheduling: tick `k` is due at `start + k × interval`. A read that overruns one or more ticks
//! does not shift the schedule: the missed ticks are skipped (and counted), the next read happens
//! at the next due tick, so the schedule never drifts.
//!
//! Idle sensors: when every sensor says it may go unread for longer ([`Sensor::idle`]: a
//! host-ledger follower nobody watches live), the thread sleeps that long — or until a sensor's
//! descriptor asks for a read, or the sampler is stopped — in one `poll` ([`crate::wake`]), and
//! the ticks slept through are not counted as skipped.

use crate::sensor::{Device, Sensor};
use crate::units::{Joules, Watts};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Shortest accepted sampling interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Default sampling interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Series points kept per device before adjacent points are merged (energy-preserving).
pub const MAX_SERIES_POINTS: usize = 2048;

/// Which energy is charged to the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everything the machine's devices drew.
    Machine,
    /// The job's share (see [`Attributor`]).
    Process,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Machine => "machine",
            Scope::Process => "process",
        }
    }
}

/// Decides, per interval, the fraction of each device's energy that belongs to the job.
pub trait Attributor: Send {
    /// One share in `0..=1` per device, in `devices` order. `gpu_pids[i]` is the list of process
    /// ids running on device `i` when its sensor can tell.
    fn shares(&mut self, devices: &[Device], gpu_pids: &[Option<Vec<u32>>]) -> Vec<f64>;
    /// Warnings noticed since the last call.
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Machine scope: every device is charged in full.
pub struct WholeMachine;

impl Attributor for WholeMachine {
    fn shares(&mut self, devices: &[Device], _: &[Option<Vec<u32>>]) -> Vec<f64> {
        vec![1.0; devices.len()]
    }
}

/// One point of a device's power series: the energy charged between two instants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Seconds since the sampler started.
    pub t0: f64,
    pub t1: f64,
    /// Energy charged to the job in `[t0, t1]`, joules.
    pub energy_j: f64,
}

impl SeriesPoint {
    pub fn power(&self) -> Watts {
        let dt = self.t1 - self.t0;
        Watts(if dt > 0.0 { self.energy_j / dt } else { 0.0 })
    }
}

/// Totals and series for one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceTotal {
    pub device: Device,
    /// Energy charged to the job.
    pub energy: Joules,
    /// Energy the whole device drew (equal to `energy` in machine scope).
    pub machine_energy: Joules,
    /// Power over the latest interval (charged to the job).
    pub last_power: Watts,
    pub series: Vec<SeriesPoint>,
}

/// State of the sampler at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub elapsed: Duration,
    pub devices: Vec<DeviceTotal>,
    /// Every distinct warning so far, in order of first appearance.
    pub warnings: Vec<String>,
    /// Completed reads.
    pub samples: u64,
    /// Ticks skipped because a read overran its slot.
    pub skipped_ticks: u64,
}

impl Snapshot {
    /// The same state without the power series: cheap to copy, for live readers (the status
    /// line, limit checks) that need totals only.
    pub fn without_series(&self) -> Snapshot {
        Snapshot {
            elapsed: self.elapsed,
            devices: self
                .devices
                .iter()
                .map(|d| DeviceTotal {
                    device: d.device.clone(),
                    energy: d.energy,
                    machine_energy: d.machine_energy,
                    last_power: d.last_power,
                    series: Vec::new(),
                })
                .collect(),
            warnings: self.warnings.clone(),
            samples: self.samples,
            skipped_ticks: self.skipped_ticks,
        }
    }

    pub fn total_energy(&self) -> Joules {
        self.devices.iter().map(|d| d.energy).sum()
    }
}

/// Sampler settings.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    pub interval: Duration,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            interval: DEFAULT_INTERVAL,
        }
    }
}

/// CPU time (user + system) used so far by the calling thread.
pub fn thread_cpu_time() -> Duration {
    // SAFETY: clock_gettime fills the timespec it is given.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Read access to the latest published snapshot of a running sampler (totals, no series).
#[derive(Clone)]
pub struct SnapshotWatch(Arc<Mutex<Snapshot>>);

impl SnapshotWatch {
    pub fn get(&self) -> Snapshot {
        match self.0.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

/// A running sampler thread.
pub struct Sampler {
    stop_tx: mpsc::Sender<()>,
    /// Signalled with the stop, to end an idle sleep; `None`: no eventfd, no idle sleeps.
    wake: Option<Arc<crate::wake::Wake>>,
    shared: Arc<Mutex<Snapshot>>,
    handle: JoinHandle<Snapshot>,
    /// CPU time of the sampler thread, nanoseconds (updated after each read).
    cpu_ns: Arc<AtomicU64>,
}

struct State {
    sensors: Vec<Box<dyn Sensor>>,
    /// Index of the first device of each sensor in `snap.devices`.
    offsets: Vec<usize>,
    /// Cumulative machine energy per device at the previous read.
    prev: Vec<f64>,
    attributor: Box<dyn Attributor>,
    snap: Snapshot,
    start: Instant,
    last_read: Instant,
    failing: Vec<bool>,
    /// The devices, in reading order (fixed once the sampler starts).
    device_list: Vec<Device>,
}

impl State {
    /// How long every sensor may go unread, and the descriptors that end the wait sooner;
    /// `None` when some sensor must be read every interval.
    fn idle(&mut self) -> Option<(Duration, Vec<std::os::fd::RawFd>)> {
        let mut at_most = Duration::MAX;
        let mut fds = Vec::new();
        for s in &mut self.sensors {
            let idle = s.idle()?;
            at_most = at_most.min(idle.at_most);
            fds.extend(idle.wake_fd);
        }
        (!self.sensors.is_empty()).then_some((at_most, fds))
    }

    fn warn(&mut self, w: String) {
        if !self.snap.warnings.contains(&w) {
            self.snap.warnings.push(w);
        }
    }

    /// Read every sensor at `now` and charge the interval since the previous read.
    fn read(&mut self, now: Instant) {
        let n = self.snap.devices.len();
        let mut cum = self.prev.clone();
        let mut pids: Vec<Option<Vec<u32>>> = vec![None; n];
        for (si, sensor) in self.sensors.iter_mut().enumerate() {
            let off = self.offsets[si];
            match sensor.read(now) {
                Ok(r) => {
                    for (i, e) in r.energy.iter().enumerate() {
                        if off + i < n {
                            cum[off + i] = e.0;
                        }
                    }
                    self.failing[si] = false;
                }
                Err(e) => {
                    if !self.failing[si] {
                        let w = format!(
                            "{}: read failed: {e}; energy of its devices is not counted while it fails",
                            sensor.name()
                        );
                        if !self.snap.warnings.contains(&w) {
                            self.snap.warnings.push(w);
                        }
                    }
                    self.failing[si] = true;
                }
            }
            for w in sensor.take_warnings() {
                if !self.snap.warnings.contains(&w) {
                    self.snap.warnings.push(w);
                }
            }
            if let Some(list) = sensor.device_pids() {
                for (i, p) in list.into_iter().enumerate() {
                    if off + i < n {
                        pids[off + i] = Some(p);
                    }
                }
            }
        }
        let shares = self.attributor.shares(&self.device_list, &pids);
        for w in self.attributor.take_warnings() {
            self.warn(w);
        }
        let t0 = self
            .last_read
            .saturating_duration_since(self.start)
            .as_secs_f64();
        let t1 = now.saturating_duration_since(self.start).as_secs_f64();
        let dt = t1 - t0;
        let prev = std::mem::take(&mut self.prev);
        for (i, (&now_j, &prev_j)) in cum.iter().zip(prev.iter()).enumerate() {
            let mut delta = now_j - prev_j;
            if !delta.is_finite() || delta < 0.0 {
                let id = self.snap.devices[i].device.id.clone();
                self.warn(format!(
                    "{id}: sensor reported decreasing cumulative energy ({delta} J); interval not counted"
                ));
                delta = 0.0;
            }
            let share = shares.get(i).copied().unwrap_or(1.0).clamp(0.0, 1.0);
            let charged = delta * share;
            let d = &mut self.snap.devices[i];
            d.machine_energy += Joules(delta);
            d.energy += Joules(charged);
            d.last_power = Watts(if dt > 0.0 { charged / dt } else { 0.0 });
            if dt > 0.0 {
                push_point(
                    &mut d.series,
                    SeriesPoint {
                        t0,
                        t1,
                        energy_j: charged,
                    },
                );
            }
        }
        self.prev = cum;
        self.last_read = now;
        self.snap.samples += 1;
        self.snap.elapsed = now.saturating_duration_since(self.start);
    }
}

/// Append a point; when the series is full, merge adjacent pairs (energy is summed, so the total
/// is preserved exactly while the resolution halves).
pub fn push_point(series: &mut Vec<SeriesPoint>, p: SeriesPoint) {
    series.push(p);
    if series.len() > MAX_SERIES_POINTS {
        let merged: Vec<SeriesPoint> = series
            .chunks(2)
            .map(|c| match c {
                [a, b] => SeriesPoint {
                    t0: a.t0,
                    t1: b.t1,
                    energy_j: a.energy_j + b.energy_j,
                },
                [a] => *a,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
        *series = merged;
    }
}

impl Sampler {
    /// Start sampling `sensors` (already opened: their first reading is the baseline).
    pub fn start(
        sensors: Vec<Box<dyn Sensor>>,
        attributor: Box<dyn Attributor>,
        config: SamplerConfig,
    ) -> Sampler {
        let start = Instant::now();
        let mut offsets = Vec::new();
        let mut devices = Vec::new();
        for s in &sensors {
            offsets.push(devices.len());
            for d in s.devices() {
                devices.push(DeviceTotal {
                    device: d.clone(),
                    energy: Joules::ZERO,
                    machine_energy: Joules::ZERO,
                    last_power: Watts::ZERO,
                    series: Vec::new(),
                });
            }
        }
        let n = devices.len();
        let failing = vec![false; sensors.len()];
        let mut state = State {
            sensors,
            offsets,
            prev: vec![0.0; n],
            attributor,
            snap: Snapshot {
                elapsed: Duration::ZERO,
                devices,
                warnings: Vec::new(),
                samples: 0,
                skipped_ticks: 0,
            },
            start,
            last_read: start,
            failing,
            device_list: Vec::new(),
        };
        state.device_list = state
            .snap
            .devices
            .iter()
            .map(|d| d.device.clone())
            .collect();
        // Baseline: whatever the sensors accumulated before `start` is not the job's.
        state.read(start);
        for d in &mut state.snap.devices {
            d.energy = Joules::ZERO;
            d.machine_energy = Joules::ZERO;
            d.series.clear();
        }
        state.snap.samples = 0;
        let shared = Arc::new(Mutex::new(state.snap.without_series()));
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let shared2 = Arc::clone(&shared);
        let cpu_ns = Arc::new(AtomicU64::new(0));
        let cpu2 = Arc::clone(&cpu_ns);
        let interval = config.interval.max(MIN_INTERVAL);
        let wake = crate::wake::Wake::new().map(Arc::new);
        let wake2 = wake.clone();
        let handle = std::thread::Builder::new()
            .name("wattprint-sampler".into())
            .spawn(move || {
                let mut tick: u64 = 1;
                loop {
                    // Beyond what an Instant can hold, the next read is never due: wait for
                    // the stop (front ends bound the interval; the sampler must not panic).
                    let wait = Duration::try_from_secs_f64(interval.as_secs_f64() * tick as f64)
                        .ok()
                        .and_then(|d| start.checked_add(d))
                        .map_or(Duration::MAX, |due| {
                            due.saturating_duration_since(Instant::now())
                        });
                    let idle = wake2.as_ref().and_then(|w| Some((w, state.idle()?)));
                    let slept_idle = match idle {
                        Some((w, (at_most, fds))) if at_most > wait => {
                            w.sleep(at_most, &fds);
                            if !matches!(stop_rx.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                                break;
                            }
                            true
                        }
                        _ => {
                            match stop_rx.recv_timeout(wait) {
                                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                                Err(RecvTimeoutError::Timeout) => {}
                            }
                            false
                        }
                    };
                    let now = Instant::now();
                    state.read(now);
                    // Next due tick strictly after the end of this read: overruns skip ticks
                    // (not those an idle sensor let the thread sleep through).
                    let after = Instant::now().saturating_duration_since(start);
                    let next = (after.as_secs_f64() / interval.as_secs_f64()).floor() as u64 + 1;
                    if next > tick + 1 && !slept_idle {
                        state.snap.skipped_ticks += next - tick - 1;
                    }
                    tick = next.max(tick + 1);
                    // Readers between samples need totals only: publish them without the series.
                    let light = state.snap.without_series();
                    if let Ok(mut s) = shared2.lock() {
                        *s = light;
                    }
                    cpu2.store(thread_cpu_time().as_nanos() as u64, Ordering::Relaxed);
                }
                // Final reading at stop time, so the tail of the run is counted.
                state.read(Instant::now());
                cpu2.store(thread_cpu_time().as_nanos() as u64, Ordering::Relaxed);
                state.snap
            })
            .expect("spawning the sampler thread");
        Sampler {
            stop_tx,
            wake,
            shared,
            handle,
            cpu_ns,
        }
    }

    /// CPU time the sampler thread has used (its reads), for the tracker's own cost when
    /// wattprint is not its own process (Python, a Slurm plugin).
    pub fn thread_cpu(&self) -> Duration {
        Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed))
    }

    /// A handle other threads can read the latest snapshot from.
    pub fn watch(&self) -> SnapshotWatch {
        SnapshotWatch(Arc::clone(&self.shared))
    }

    /// Latest state, without the power series (see [`Snapshot::without_series`]).
    pub fn snapshot(&self) -> Snapshot {
        match self.shared.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Stop, take a final reading and return the final state.
    pub fn stop(self) -> Snapshot {
        let _ = self.stop_tx.send(());
        if let Some(w) = &self.wake {
            w.signal();
        }
        let Sampler { shared, handle, .. } = self;
        match handle.join() {
            Ok(s) => s,
            Err(_) => {
                let mut s = match shared.lock() {
                    Ok(s) => s.clone(),
                    Err(p) => p.into_inner().clone(),
                };
                s.warnings
                    .push("sampler thread panicked; totals are those of the last sample".into());
                s
            }
        }
    }
}
