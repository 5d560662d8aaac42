//! Process scope: the job's share of each device's energy, per interval.
//!
//! - CPU: the job's process-tree CPU time (utime+stime+cutime+cstime of the job and all its
//!   descendants, from `<procfs>/<pid>/stat`) over the machine's busy CPU time (from
//!   `<procfs>/stat`) in the same interval. Idle power is thereby shared among the processes
//!   that were active, in proportion to their CPU time (as Scaphandre does); in an interval
//!   where the machine did no work at all, nothing is charged to the job.
//! - RAM: the job's resident memory over the machine's memory in use.
//! - GPU: the whole device for GPUs the job holds — a GPU listed in the job's
//!   `CUDA_VISIBLE_DEVICES`, or one on which NVML reports one of the job's processes — or, for
//!   a card it was given MIG instances of, their share of the card's slices.

use crate::host::HostPaths;
use crate::procfs;
use crate::sampler::Attributor;
use crate::sensor::{Device, DeviceKind};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

pub struct ProcessTree {
    paths: HostPaths,
    /// The job's pid; 0 until the job is spawned.
    pid: Arc<AtomicU32>,
    /// NVML indices the job was given through `CUDA_VISIBLE_DEVICES` (None: not set).
    visible_gpus: Option<Vec<u32>>,
    /// `(NVML index, share)` of the cards it was given through MIG instances.
    gpu_shares: Vec<(u32, f64)>,
    prev_job_ticks: Option<u64>,
    prev_busy: Option<u64>,
    warnings: Vec<String>,
    warned_procfs: bool,
    scanner: procfs::TreeScanner,
}

impl ProcessTree {
    pub fn new(paths: HostPaths, pid: Arc<AtomicU32>, visible_gpus: Option<Vec<u32>>) -> Self {
        ProcessTree {
            paths,
            pid,
            visible_gpus,
            gpu_shares: Vec::new(),
            prev_job_ticks: None,
            prev_busy: None,
            warnings: Vec::new(),
            warned_procfs: false,
            scanner: procfs::TreeScanner::default(),
        }
    }

    /// Charge only `share` of each listed card: the job holds it through MIG instances.
    pub fn with_gpu_shares(mut self, shares: Vec<(u32, f64)>) -> Self {
        self.gpu_shares = shares;
        self
    }

    fn warn_procfs(&mut self, e: &dyn std::fmt::Display) {
        if !self.warned_procfs {
            self.warned_procfs = true;
            self.warnings.push(format!(
                "process scope: cannot read CPU times ({e}); intervals without them charge the job nothing"
            ));
        }
    }
}

/// Share of an interval's CPU energy: job ticks over machine busy ticks, clamped to 0..=1.
pub fn cpu_share(job_delta: u64, busy_delta: u64) -> f64 {
    if busy_delta == 0 {
        0.0
    } else {
        (job_delta as f64 / busy_delta as f64).clamp(0.0, 1.0)
    }
}

impl Attributor for ProcessTree {
    fn shares(&mut self, devices: &[Device], gpu_pids: &[Option<Vec<u32>>]) -> Vec<f64> {
        let pid = self.pid.load(Ordering::SeqCst);
        let machine = procfs::read_cpu_times(&self.paths);
        let tree = if pid == 0 {
            None
        } else {
            match self.scanner.usage(&self.paths, pid) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.warn_procfs(&e);
                    None
                }
            }
        };
        let cpu = match (&machine, &tree) {
            (Ok(m), Some(t)) => {
                let share = match (self.prev_busy, self.prev_job_ticks) {
                    (Some(pb), Some(pj)) => {
                        cpu_share(t.ticks.saturating_sub(pj), m.busy.saturating_sub(pb))
                    }
                    // The job started during this interval: all its ticks are new.
                    (Some(pb), None) => cpu_share(t.ticks, m.busy.saturating_sub(pb)),
                    _ => 0.0,
                };
                self.prev_job_ticks = Some(t.ticks);
                share
            }
            (Err(e), _) => {
                let msg = e.to_string();
                self.warn_procfs(&msg);
                0.0
            }
            _ => 0.0,
        };
        if let Ok(m) = &machine {
            self.prev_busy = Some(m.busy);
        }
        let ram = match (&tree, procfs::read_meminfo(&self.paths)) {
            (Some(t), Ok(mi)) => {
                let used = mi.total_bytes.saturating_sub(mi.available_bytes);
                if used == 0 {
                    0.0
                } else {
                    (t.rss_bytes as f64 / used as f64).clamp(0.0, 1.0)
                }
            }
            _ => 0.0,
        };
        let job_pids: &[u32] = tree.as_ref().map(|t| t.pids.as_slice()).unwrap_or(&[]);
        devices
            .iter()
            .enumerate()
            .map(|(i, d)| match d.kind {
                DeviceKind::Cpu => cpu,
                DeviceKind::Ram => ram,
                DeviceKind::Gpu => {
                    let visible = match (&self.visible_gpus, d.gpu_index) {
                        (Some(v), Some(ix)) => v.contains(&ix),
                        _ => false,
                    };
                    let holds = gpu_pids
                        .get(i)
                        .and_then(|p| p.as_ref())
                        .is_some_and(|p| p.iter().any(|x| job_pids.contains(x)));
                    if visible || holds {
                        d.gpu_index
                            .and_then(|ix| self.gpu_shares.iter().find(|(g, _)| *g == ix))
                            .map_or(1.0, |(_, s)| s.clamp(0.0, 1.0))
                    } else {
                        0.0
                    }
                }
            })
            .collect()
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}
