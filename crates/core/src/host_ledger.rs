//! The host ledger: concurrent runs on one machine share its energy instead of each being
//! charged all of it. (Not to be confused with the node agent's per-hour energy ledger.)
//!
//! A directory per host under the runtime directory (`$WATTPRINT_RUNTIME_DIR`, default
//! `/dev/shm/wattprint`, else `/run/wattprint`) holds:
//!
//! - `p-<run id>.json`, one small file per participant, written by it (0644, nothing secret:
//!   run id, tracker pid and its start time, job key, scope, the root of the measured process
//!   tree, the GPUs it was given);
//! - `lock`, taken (`flock`, exclusive) around every read or update of the ledger;
//! - `state-<uid>.json`, the ledger's state, written by the current **reader**: the one
//!   participant that reads the machine's counters each interval, splits the interval's energy
//!   among the participants present and adds each one's share to its account. Each user's
//!   reader writes its own file (a sticky directory lets no one replace another user's file);
//!   the newest (`seq`) is the ledger. It is rewritten in place, with a checksum
//!   (`host_ledger/state_file.rs`); the reader lists the directory only when it changed
//!   (`host_ledger/dir_watch.rs`).
//!
//! Every participant's sampler reads the ledger instead of the counters: the machine energy
//! published since it joined, and what its account was charged. A reader that leaves hands the
//! role to the next participant to tick; one that dies (`kill -9`) is noticed by the next tick
//! of another (its pid is gone or belongs to another process), which takes over and estimates
//! the unseen gap from its own counters' mean power (the record says how many seconds were
//! estimated). A participant whose process is gone expires at the reader's next interval.
//!
//! The split of one interval is [`split_interval`]; docs/methodology.md, "Sharing a machine".

mod dir_watch;
mod state_file;

use crate::host::HostPaths;
use crate::process_watch::{process_start, ProcessWatch};
use crate::procfs::{self, ForestScanner};
use crate::sampler::{Attributor, Scope};
use crate::sensor::{Device, DeviceKind, Idle, Reading, Sensor, SensorError};
use crate::units::Joules;
use dir_watch::DirWatch;
use serde::{Deserialize, Serialize};
use state_file::{mtime_ns, newest_state, read_bounded, read_state_file, StateCache, StateWriter};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Variable naming the runtime directory.
pub const RUNTIME_DIR_ENV: &str = "WATTPRINT_RUNTIME_DIR";
/// Variable that turns the ledger off (`off`, `0`, `no`): each run is then charged as if it
/// were alone, as before the ledger existed.
pub const LEDGER_SWITCH_ENV: &str = "WATTPRINT_HOST_LEDGER";
/// Participants considered per interval; more are ignored (with a warning to the reader).
pub const MAX_PARTICIPANTS: usize = 256;
/// Companions named per run in its record; the time with the others is summed in `others_s`.
pub const MAX_COMPANY: usize = 32;
/// Directory entries looked at per interval.
const MAX_ENTRIES: usize = 4 * MAX_PARTICIPANTS;
/// Largest participant file read.
const MAX_PARTICIPANT_BYTES: u64 = 16 * 1024;
/// Largest state file read.
const MAX_STATE_BYTES: u64 = 8 * 1024 * 1024;
/// Longest run id or job key kept.
pub const MAX_KEY_LEN: usize = 128;
const STATE_VERSION: u32 = 1;

/// The rule a machine-scope run's share follows, as the record states it.
pub const MACHINE_RULE: &str = "machine scope, shared: each interval's energy of each device is divided among the runs present; the static part (idle power × time) evenly (a CPU's by allocated CPUs when the scheduler gives them for every run, a GPU's among the runs holding it), the dynamic part by use: CPU time of each run's process tree, its resident memory, the GPUs it holds (a GPU by its processes' SM utilisation when NVML gives it, a MIG instance by its share of the card's slices); process-scope runs' own use is taken out first";
/// The rule a process-scope run's share follows.
pub const PROCESS_RULE: &str = "process scope: the run's own use only (CPU time of its process tree over the machine's busy CPU time, resident memory over memory in use, GPUs it holds, split among their holders by SM utilisation when NVML gives it, a MIG instance by its share of the card's slices); energy no run used is the host's unattributed energy";

/// The rule for a rank that is not its job's leader on the node.
pub const RANK_RULE: &str = "rank of a job on this node: its process tree counts in the job's use, and the job's energy on this node is charged to its leader's record, once";

/// The runtime directory from the environment: `None` when the ledger is switched off.
pub fn runtime_dir(env: &crate::env::Env) -> Option<PathBuf> {
    if let Some(v) = env.get(LEDGER_SWITCH_ENV) {
        if matches!(v.trim(), "off" | "0" | "no" | "false") {
            return None;
        }
    }
    if let Some(p) = env.path(RUNTIME_DIR_ENV).filter(|p| p.is_absolute()) {
        return Some(p);
    }
    let shm = Path::new("/dev/shm");
    Some(if shm.is_dir() {
        shm.join("wattprint")
    } else {
        PathBuf::from("/run/wattprint")
    })
}

/// The ledger directory of the host whose counters are under `paths.sys`: `host` for the real
/// `/sys`, `host-<hash>` for another root (a fake host in tests, the host's tree mounted
/// elsewhere). Keyed by the counters, not `/proc`: an agent and the runs reading the same
/// counters meet, whichever procfs each looks at.
pub fn ledger_dir(runtime: &Path, paths: &HostPaths) -> PathBuf {
    if paths.sys == HostPaths::default().sys {
        return runtime.join("host");
    }
    // FNV-1a: stable across builds and platforms.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in paths.sys.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    runtime.join(format!("host-{h:016x}"))
}

/// One participant's file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub run_id: String,
    /// The tracker's process (its liveness is the entry's).
    pub pid: u32,
    /// That process's start time (`/proc/<pid>/stat` field 22), so a reused pid is not taken
    /// for it.
    pub start_ticks: u64,
    #[serde(default)]
    pub job: Option<String>,
    pub scope: Scope,
    /// Root of the measured process tree (0 until the work is started).
    #[serde(default)]
    pub root_pid: u32,
    /// NVML indices of the GPUs the run was given (`CUDA_VISIBLE_DEVICES`), when known.
    #[serde(default)]
    pub gpus: Option<Vec<u32>>,
    /// `(NVML index, share)` of the cards it holds through MIG instances (bounded on use).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_shares: Vec<(u32, f64)>,
    pub joined_unix: f64,
    /// Rank on the node per the launcher ([`crate::job::local_rank`]): the lowest leads its job.
    #[serde(default)]
    pub local_rank: Option<u32>,
    /// A node agent: it reads the counters whenever it runs (runs then never read them), is
    /// charged nothing and is no run's company.
    #[serde(default)]
    pub agent: bool,
    /// CPUs the scheduler allocated to the run on this node, when it says.
    #[serde(default)]
    pub cpus: Option<u32>,
}

/// What the ledger has charged one participant so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub scope: Scope,
    #[serde(default)]
    pub job: Option<String>,
    /// Cumulative energy charged, per device of the state.
    pub charged_j: Vec<f64>,
    /// Its tree's CPU ticks at the previous interval.
    #[serde(default)]
    pub prev_ticks: Option<u64>,
    pub alone_s: f64,
    pub shared_s: f64,
    /// Seconds spent with each other run (at most [`MAX_COMPANY`] named).
    #[serde(default)]
    pub company: BTreeMap<String, Companion>,
    #[serde(default)]
    pub others_s: f64,
    /// Seconds whose machine energy was estimated at a reader's handover.
    #[serde(default)]
    pub estimated_s: f64,
    /// The run charged for this run's job on the node, when it is another (this run is then a
    /// rank that contributes its process tree).
    #[serde(default)]
    pub leader: Option<String>,
    /// Seconds this run led its job on the node (was charged for it).
    #[serde(default)]
    pub led_s: f64,
    /// Seconds it was a rank, per leader (at most 8 leaders named).
    #[serde(default)]
    pub led_by: BTreeMap<String, f64>,
    /// Most ranks of its job seen at once on the node (1 without a job).
    #[serde(default)]
    pub ranks: u32,
}

/// Another run that shared the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Companion {
    #[serde(default)]
    pub job: Option<String>,
    pub scope: Scope,
    pub seconds: f64,
}

/// Who reads the counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReaderId {
    pub run_id: String,
    pub pid: u32,
    pub start_ticks: u64,
    /// Whether the reader is the node agent.
    #[serde(default)]
    pub agent: bool,
}

/// The ledger's state, as its reader publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerState {
    pub version: u32,
    /// Random id of this ledger's life: a participant that sees it change starts counting
    /// afresh from the new cumulative values.
    pub epoch: String,
    pub seq: u64,
    pub reader: Option<ReaderId>,
    /// Unix time of the latest publication.
    pub t_unix: f64,
    /// Device ids, the order of every per-device vector.
    pub devices: Vec<String>,
    /// Machine energy per device since the ledger began.
    pub machine_j: Vec<f64>,
    /// Energy no run was charged (process scope only), per device.
    pub unattributed_j: Vec<f64>,
    /// Machine busy CPU ticks at the latest publication.
    #[serde(default)]
    pub prev_busy: Option<u64>,
    /// Seconds during which the machine's energy was counted (some participant present).
    pub covered_s: f64,
    /// The latest interval skipped the process trees (one machine-scope run or job alone).
    #[serde(default)]
    pub trees_skipped: bool,
    pub accounts: BTreeMap<String, Account>,
    /// The latest runs that left (at most [`MAX_DEPARTED`]), with what the ledger charged
    /// them in all: a run killed without a word keeps in its record only its last checkpoint.
    #[serde(default)]
    pub departed: Vec<Departed>,
}

/// Runs that left, kept in the state.
pub const MAX_DEPARTED: usize = 64;

/// A run that left the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Departed {
    pub run: String,
    /// Energy the ledger charged it in all, joules.
    pub joules: f64,
    /// Its tracker died without leaving (expired).
    pub expired: bool,
    /// Unix time it was dropped.
    pub at_unix: f64,
}

impl LedgerState {
    fn new(devices: Vec<String>) -> LedgerState {
        let n = devices.len();
        LedgerState {
            version: STATE_VERSION,
            epoch: format!("{:016x}{:08x}", unix_now().to_bits(), std::process::id()),
            seq: 0,
            reader: None,
            t_unix: 0.0,
            devices,
            machine_j: vec![0.0; n],
            unattributed_j: vec![0.0; n],
            prev_busy: None,
            covered_s: 0.0,
            trees_skipped: false,
            accounts: BTreeMap::new(),
            departed: Vec::new(),
        }
    }

    /// Total machine energy and unattributed energy, joules.
    pub fn totals(&self) -> (f64, f64) {
        (
            self.machine_j.iter().sum(),
            self.unattributed_j.iter().sum(),
        )
    }
}

/// One participant's use of the machine over one interval.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Use {
    pub scope: Option<Scope>,
    /// CPU ticks of its process tree in the interval.
    pub cpu_ticks: u64,
    /// Resident memory of its tree, bytes.
    pub rss_bytes: u64,
    /// Per device (same order as the devices): whether it holds that GPU.
    pub holds: Vec<bool>,
    /// CPUs the scheduler allocated to it on this node (`SLURM_CPUS_ON_NODE`), when it says.
    pub cpus: Option<u32>,
    /// Per device: its processes' SM utilisation (%) when NVML gave samples (empty: none).
    pub gpu_util: Vec<Option<f64>>,
    /// Per device: its MIG instances' share of the card (empty: none).
    pub gpu_share: Vec<Option<f64>>,
}

impl Use {
    /// Its relation to device `d`, for the GPU rule ([`crate::gpu_share`]).
    fn holder(&self, d: usize) -> crate::gpu_share::Holder {
        crate::gpu_share::Holder {
            holds: self.holds.get(d).copied().unwrap_or(false),
            util: self.gpu_util.get(d).copied().flatten(),
            share: self.gpu_share.get(d).copied().flatten(),
        }
    }
}

/// The machine over the same interval.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineUse {
    /// Busy CPU ticks of the whole machine in the interval.
    pub busy_ticks: u64,
    /// Memory in use, bytes.
    pub mem_used_bytes: u64,
}

/// Split one interval's energy of each device among the participants.
///
/// `energy[d]` is what device `d` drew over `dt_s` seconds. Returns the energy charged to each
/// participant per device, and what no one was charged (unattributed). For every device the
/// charged energies and the unattributed energy add up to `energy[d]` (up to rounding), and the
/// unattributed energy is zero whenever a machine-scope participant is present.
///
/// - Process-scope participants are charged their own use: CPU ticks over the machine's busy
///   ticks, resident memory over memory in use, a GPU they hold divided among its holders
///   ([`crate::gpu_share`]: MIG share of the card, else SM utilisation, else evenly).
/// - Machine-scope participants divide the rest: its static part (`idle_w × dt`, in the same
///   proportion) evenly (a GPU's among those holding it, when any does), its dynamic part in
///   proportion to their use (the same measures), evenly when none used the device.
pub fn split_interval(
    devices: &[Device],
    energy: &[f64],
    dt_s: f64,
    uses: &[Use],
    machine: &MachineUse,
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let n = uses.len();
    let mut charged = vec![vec![0.0; devices.len()]; n];
    let mut unattributed = vec![0.0; devices.len()];
    for (d, dev) in devices.iter().enumerate() {
        let e = energy.get(d).copied().unwrap_or(0.0);
        if !(e.is_finite() && e > 0.0) {
            continue;
        }
        // A GPU: MIG share, else use, else evenly among holders (crate::gpu_share).
        let gpu: Vec<crate::gpu_share::Holder> = uses.iter().map(|u| u.holder(d)).collect();
        let gpu_w = crate::gpu_share::weights(&gpu);
        // Each participant's use of this device, as a weight and as a fraction of the machine.
        let weight = |i: usize| -> f64 {
            let u = &uses[i];
            match dev.kind {
                DeviceKind::Cpu => u.cpu_ticks as f64,
                DeviceKind::Ram => u.rss_bytes as f64,
                DeviceKind::Gpu => gpu_w[i],
            }
        };
        let own_fraction = |i: usize| -> f64 {
            let u = &uses[i];
            let f = match dev.kind {
                DeviceKind::Cpu => crate::attribution::cpu_share(u.cpu_ticks, machine.busy_ticks),
                DeviceKind::Ram => {
                    if machine.mem_used_bytes == 0 {
                        0.0
                    } else {
                        u.rss_bytes as f64 / machine.mem_used_bytes as f64
                    }
                }
                DeviceKind::Gpu => crate::gpu_share::own_fraction(&gpu, i),
            };
            f.clamp(0.0, 1.0)
        };
        // Process scope first.
        let mut proc_total = 0.0;
        for (i, u) in uses.iter().enumerate() {
            if u.scope == Some(Scope::Process) {
                charged[i][d] = e * own_fraction(i);
                proc_total += charged[i][d];
            }
        }
        if proc_total > e {
            // Rounding or a tree counted twice: scale down, never charge more than the device.
            let k = e / proc_total;
            for row in charged.iter_mut() {
                row[d] *= k;
            }
            proc_total = e;
        }
        let rest = (e - proc_total).max(0.0);
        let machine_ix: Vec<usize> = (0..n)
            .filter(|&i| uses[i].scope != Some(Scope::Process))
            .collect();
        if machine_ix.is_empty() {
            unattributed[d] = rest;
            continue;
        }
        let idle_j = dev.idle_power_w.unwrap_or(0.0).max(0.0) * dt_s.max(0.0);
        let static_part = if e > 0.0 {
            (idle_j.min(e) * rest / e).min(rest)
        } else {
            0.0
        };
        let dynamic_part = rest - static_part;
        // Static: evenly, a GPU's among its holders when any of them is here.
        let gpu_holders: Vec<usize> = machine_ix
            .iter()
            .copied()
            .filter(|&i| dev.kind == DeviceKind::Gpu && gpu[i].holds)
            .collect();
        let static_among = if gpu_holders.is_empty() {
            &machine_ix
        } else {
            &gpu_holders
        };
        // A CPU's static part by allocated CPUs when the scheduler gave every one of them.
        let alloc: Option<Vec<f64>> = (dev.kind == DeviceKind::Cpu)
            .then(|| {
                static_among
                    .iter()
                    .map(|&i| uses[i].cpus.filter(|c| *c > 0).map(f64::from))
                    .collect::<Option<Vec<f64>>>()
            })
            .flatten();
        match alloc {
            Some(w) => {
                let total: f64 = w.iter().sum();
                for (k, &i) in static_among.iter().enumerate() {
                    charged[i][d] += static_part * w[k] / total;
                }
            }
            None => {
                for &i in static_among {
                    charged[i][d] += static_part / static_among.len() as f64;
                }
            }
        }
        let total_w: f64 = machine_ix.iter().map(|&i| weight(i)).sum();
        for &i in &machine_ix {
            charged[i][d] += if total_w > 0.0 {
                dynamic_part * weight(i) / total_w
            } else {
                dynamic_part / machine_ix.len() as f64
            };
        }
    }
    (charged, unattributed)
}

/// A job's runs on the node: their indices and the one charged (the leader).
#[derive(Debug, Clone, PartialEq)]
pub struct JobGroup {
    pub members: Vec<usize>,
    pub leader: usize,
}

/// Group the participants by job key (a run without one is its own group). The leader of a
/// group is the lowest launcher rank on the node (`LOCAL_RANK`, else
/// `OMPI_COMM_WORLD_LOCAL_RANK`, else `SLURM_LOCALID`), then the first to join.
pub fn job_groups(live: &[Participant]) -> Vec<JobGroup> {
    let mut groups: Vec<JobGroup> = Vec::new();
    let mut keys: Vec<Option<&str>> = Vec::new();
    for (i, p) in live.iter().enumerate() {
        let key = p.job.as_deref();
        match key.and_then(|k| keys.iter().position(|x| *x == Some(k))) {
            Some(g) => groups[g].members.push(i),
            None => {
                keys.push(key);
                groups.push(JobGroup {
                    members: vec![i],
                    leader: i,
                });
            }
        }
    }
    for g in &mut groups {
        let order = |i: &usize| {
            let p = &live[*i];
            (
                p.local_rank.unwrap_or(u32::MAX),
                p.joined_unix.to_bits(),
                p.run_id.clone(),
            )
        };
        if let Some(l) = g.members.iter().min_by_key(|i| order(i)) {
            g.leader = *l;
        }
    }
    groups
}

/// Owner of the real `/proc/<pid>`.
fn process_uid(pid: u32) -> Option<u32> {
    std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|m| m.uid())
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Write `text` to `path` through a temporary file and a rename (readers never see half): a
/// participant's own file.
fn write_atomic(dir: &Path, path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!(
        ".tmp-{}-{:x}",
        std::process::id(),
        unix_now().to_bits()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Create the runtime directory and the host's directory in it, world-writable and sticky
/// (like /tmp) when this process creates them; refuse a symbolic link.
fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    for d in [dir.parent(), Some(dir)].into_iter().flatten() {
        match std::fs::symlink_metadata(d) {
            Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{} is not a directory", d.display()),
                ))
            }
            Ok(_) => {}
            Err(_) => {
                std::fs::create_dir_all(d)?;
                let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o1777));
            }
        }
    }
    Ok(())
}

/// The lock around every ledger update, held while the guard lives: on its own file, or on
/// the file a participant keeps open (`Link::lock_file`), which outlives the guard.
enum LockGuard {
    Own(std::fs::File),
    Kept(std::os::fd::RawFd),
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let fd = match self {
            LockGuard::Own(f) => std::os::fd::AsRawFd::as_raw_fd(f),
            LockGuard::Kept(fd) => *fd,
        };
        // SAFETY: flock on a file descriptor open for as long as the guard lives.
        unsafe { libc::flock(fd, libc::LOCK_UN) };
    }
}

fn lock(dir: &Path) -> std::io::Result<LockGuard> {
    let f = open_lock_file(dir)?;
    flock_ex(&f)?;
    Ok(LockGuard::Own(f))
}

fn flock_ex(f: &std::fs::File) -> std::io::Result<()> {
    // SAFETY: flock on a file descriptor we own; blocks until the holder releases it (holders
    // only read and write a few small files).
    let r = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(f), libc::LOCK_EX) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn open_lock_file(dir: &Path) -> std::io::Result<std::fs::File> {
    let path = dir.join("lock");
    // Read-only is enough for flock, so another user's lock file serves everyone.
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(f) => f,
        Err(_) => std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)?,
    };
    Ok(f)
}

/// The newest state in `dir` (highest `seq` over every user's state file), if any.
pub fn load_state(dir: &Path) -> Option<LedgerState> {
    newest_state(&list_dir(dir)?, &mut StateCache::default(), None).map(|(st, _)| st)
}

/// The names in the ledger's directory (at most [`MAX_ENTRIES`]), read once per look.
fn list_dir(dir: &Path) -> Option<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .take(MAX_ENTRIES)
            .flatten()
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .collect(),
    )
}

/// A participant's file as the reader last read it: unchanged files (same inode and
/// modification time) are not read again, and their process is watched through a pidfd.
struct KnownEntry {
    ino: u64,
    mtime_ns: i128,
    participant: Participant,
    watch: ProcessWatch,
}

/// The participants whose files are valid, owned by their process's owner, and alive.
/// Returns them and the files of those that are gone (expired). `known` keeps what earlier
/// calls learnt; unless `fresh`, the files are known unchanged and not looked at.
fn participants(
    listing: &[(String, PathBuf)],
    known: &mut HashMap<String, KnownEntry>,
    fresh: bool,
) -> (Vec<Participant>, Vec<PathBuf>) {
    let mut live = Vec::new();
    let mut dead = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    // Known and unchanged files: their processes are looked at together, in one poll.
    let mut unchanged: Vec<(&str, &Path)> = Vec::new();
    for (name, path) in listing {
        let name = name.as_str();
        if !(name.starts_with("p-") && name.ends_with(".json")) {
            continue;
        }
        if !fresh {
            // The directory did not change since `listing` (see `dir_watch`): nor did the
            // files in it (each is replaced by a rename).
            if known.contains_key(name) {
                seen.push(name.to_string());
                unchanged.push((name, path));
            }
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        if let Some(k) = known.get(name) {
            if k.ino == meta.ino() && k.mtime_ns == mtime_ns(&meta) {
                seen.push(name.to_string());
                unchanged.push((name, path));
                continue;
            }
        }
        let path = path.clone();
        let Ok(text) = read_bounded(&path, MAX_PARTICIPANT_BYTES) else {
            continue;
        };
        let Ok(p) = serde_json::from_slice::<Participant>(&text) else {
            continue;
        };
        if name != format!("p-{}.json", p.run_id) || crate::job::check_key(&p.run_id).is_none() {
            continue;
        }
        let Some(watch) = ProcessWatch::open(p.pid, p.start_ticks) else {
            dead.push(path);
            continue;
        };
        // Someone else's file claiming my process (or anyone's): ignored. Root's files are
        // trusted whoever runs the process now: slurmstepd (the Slurm plugin's process) takes
        // the job user's effective uid for moments while it starts tasks, and /proc/<pid>
        // follows it.
        if meta.uid() != 0 && process_uid(p.pid) != Some(meta.uid()) {
            continue;
        }
        // One pidfd per known participant: bounded like the participants.
        if known.len() < MAX_PARTICIPANTS {
            seen.push(name.to_string());
            known.insert(
                name.to_string(),
                KnownEntry {
                    ino: meta.ino(),
                    mtime_ns: mtime_ns(&meta),
                    participant: p.clone(),
                    watch,
                },
            );
        }
        if live.len() < MAX_PARTICIPANTS {
            live.push(p);
        }
    }
    let alive = {
        let mut watches: Vec<&mut ProcessWatch> = Vec::with_capacity(unchanged.len());
        // `unchanged` names are distinct keys of `known`: one mutable borrow each.
        let mut by_name: HashMap<&str, &mut KnownEntry> = known
            .iter_mut()
            .filter(|(k, _)| unchanged.iter().any(|(n, _)| *n == k.as_str()))
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        for (name, _) in &unchanged {
            if let Some(k) = by_name.remove(name) {
                watches.push(&mut k.watch);
            }
        }
        ProcessWatch::alive_all(&mut watches)
    };
    for ((name, path), alive) in unchanged.iter().zip(alive) {
        if !alive {
            dead.push(path.to_path_buf());
        } else if let Some(k) = known.get(*name) {
            if live.len() < MAX_PARTICIPANTS {
                live.push(k.participant.clone());
            }
        }
    }
    known.retain(|k, _| seen.contains(k));
    live.sort_by(|a: &Participant, b| a.run_id.cmp(&b.run_id));
    (live, dead)
}

/// What a run's record says about sharing the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSharing {
    /// `alone` (never shared: charged the whole machine, as without the ledger) or `shared`.
    pub mode: String,
    /// The rule of the split (see docs/methodology.md, "Sharing a machine").
    pub rule: String,
    /// Seconds alone on the host and with company.
    pub alone_s: f64,
    pub shared_s: f64,
    /// The other runs and how long each shared the machine with this one.
    pub company: Vec<CompanyRecord>,
    /// Seconds with runs beyond the first [`MAX_COMPANY`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub others_s: f64,
    /// Seconds whose machine energy was estimated when a reader died and another took over.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub estimated_s: f64,
    /// Whether this run read the machine's counters for the ledger at some point.
    pub reader: bool,
    /// For a run with a job key: `leader` (charged for the job's share of the node) or `rank`
    /// (its process tree counts in the job's use; the energy is in the leader's record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_role: Option<String>,
    /// The leader's run id, for a rank (the one that led while it was a rank the longest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Seconds this run led its job on the node (charged for it); a run leads when it has the
    /// lowest launcher rank on the node, else was first to join, and hands over when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub led_s: Option<f64>,
    /// Most ranks of the job seen at once on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranks: Option<u32>,
    /// The ledger directory.
    pub ledger: String,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompanyRecord {
    pub run: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    pub scope: String,
    pub seconds: f64,
}

/// State shared by a participant's [`LedgerSensor`] and [`LedgerShares`].
struct Link {
    dir: PathBuf,
    /// This participant's devices (those of its own sensors), in reading order.
    devices: Vec<Device>,
    me: Participant,
    paths: HostPaths,
    /// Whether this participant is the reader now, and ever was.
    reading: bool,
    was_reader: bool,
    /// Own sensors' cumulative energy at the previous read, when reading.
    prev_own: Option<Vec<f64>>,
    opened_unix: f64,
    scanner: ForestScanner,
    /// The epoch and values of the ledger at this participant's previous look.
    seen_epoch: Option<String>,
    seen_machine: Vec<f64>,
    seen_charged: Vec<f64>,
    /// This participant's cumulative view, per own device.
    view_machine: Vec<f64>,
    view_charged: Vec<f64>,
    /// Share of the latest interval, per own device, for [`LedgerShares`].
    last_share: Vec<f64>,
    account: Option<Account>,
    leaving: bool,
    left: bool,
    /// For an agent: the runs present and what each was charged, and the unattributed energy.
    runs: Vec<RunEnergy>,
    /// Unattributed energy this agent saw, joules, monotonic across ledger epochs; and the
    /// ledger's figure at the previous look.
    unattributed_j: f64,
    seen_unattributed: f64,
    /// What the ledger charged this participant's job on the node (all its ranks) since this
    /// participant joined, joules; and the figure at the previous look.
    job_j: f64,
    seen_job_j: f64,
    warnings: Vec<String>,
    failed: bool,
    /// The reader as last seen, watched for its end.
    reader_watch: Option<ProcessWatch>,
    /// The state file read last and its sequence number: a follower reads it alone while it
    /// advances.
    state_hint: Option<(PathBuf, u64)>,
    /// The participants' files as the reader last read them.
    known: HashMap<String, KnownEntry>,
    /// See [`JoinOptions::idle_follow`].
    idle_follow: Option<Duration>,
    /// The ledger's lock file, opened at the first lock and kept.
    lock_file: Option<std::fs::File>,
    /// State files as last read or written.
    states: StateCache,
    /// This user's state file, as this participant writes it when it reads.
    state_out: StateWriter,
    /// The text this participant published in the current tick.
    published: Option<Vec<u8>>,
    /// The ledger's directory as last listed, and whether it changed since.
    listing: Vec<(String, PathBuf)>,
    dir_watch: DirWatch,
}

/// A run present on the host and the energy the ledger charged it, for the agent's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnergy {
    pub run: String,
    pub job: Option<String>,
    pub scope: Scope,
    pub joules: f64,
}

/// A participant's handle on the host ledger: change its measured process tree, ask for its
/// sharing summary, leave.
#[derive(Clone)]
pub struct HostLedger(Arc<Mutex<Link>>);

impl std::fmt::Debug for HostLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("HostLedger").field(&self.dir()).finish()
    }
}

/// Counters of the machine as the ledger publishes them: wraps the host's real sensors, which
/// it reads only while this participant is the ledger's reader.
pub struct LedgerSensor {
    inner: Vec<Box<dyn Sensor>>,
    devices: Vec<Device>,
    link: Arc<Mutex<Link>>,
}

/// The share of each interval the ledger charged this participant.
pub struct LedgerShares {
    link: Arc<Mutex<Link>>,
}

/// A participant's handle, the sensor its sampler reads and the attributor it applies.
pub type Joined = (HostLedger, LedgerSensor, LedgerShares);
/// Why the ledger could not be joined, and the sensors back (to measure alone).
pub type NotJoined = (String, Vec<Box<dyn Sensor>>);

/// Options of a participant.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    pub run_id: String,
    pub job: Option<String>,
    /// Rank on the node per the launcher, when it says.
    pub local_rank: Option<u32>,
    /// Join as the node agent (see [`Participant::agent`]).
    pub agent: bool,
    /// CPUs the scheduler allocated on this node (`SLURM_CPUS_ON_NODE`).
    pub cpus: Option<u32>,
    pub scope: Scope,
    pub gpus: Option<Vec<u32>>,
    /// `(NVML index, share)` of the cards it holds through MIG instances.
    pub gpu_shares: Vec<(u32, f64)>,
    /// Nobody reads this participant's figures live (no live line, no limits): while another
    /// participant reads the ledger, look at it only this often (its checkpoint cadence), or
    /// at once when the reader ends. `None`: every interval.
    pub idle_follow: Option<Duration>,
}

impl HostLedger {
    /// Join the ledger in `dir` with the host's `sensors` (already opened). Returns the handle,
    /// the sensor the sampler reads and the attributor it applies.
    pub fn join(
        dir: &Path,
        paths: &HostPaths,
        opts: JoinOptions,
        sensors: Vec<Box<dyn Sensor>>,
    ) -> Result<Joined, NotJoined> {
        let Some(run_id) = crate::job::check_key(&opts.run_id) else {
            return Err((format!("run id `{}` not usable", opts.run_id), sensors));
        };
        if let Err(e) = prepare_dir(dir) {
            return Err((format!("{}: {e}", dir.display()), sensors));
        }
        let pid = std::process::id();
        let Some(start_ticks) = process_start(pid) else {
            return Err(("cannot read this process's start time".into(), sensors));
        };
        let me = Participant {
            run_id,
            pid,
            start_ticks,
            job: opts.job.as_deref().and_then(crate::job::check_key),
            scope: opts.scope,
            root_pid: 0,
            gpus: opts.gpus,
            gpu_shares: opts.gpu_shares,
            joined_unix: unix_now(),
            local_rank: opts.local_rank,
            agent: opts.agent,
            cpus: opts.cpus,
        };
        let devices: Vec<Device> = sensors.iter().flat_map(|s| s.devices().to_vec()).collect();
        let n = devices.len();
        let link = Link {
            dir: dir.to_path_buf(),
            devices: devices.clone(),
            me,
            paths: paths.clone(),
            reading: false,
            was_reader: false,
            prev_own: None,
            opened_unix: unix_now(),
            scanner: ForestScanner::default(),
            seen_epoch: None,
            seen_machine: vec![0.0; n],
            seen_charged: vec![0.0; n],
            view_machine: vec![0.0; n],
            view_charged: vec![0.0; n],
            last_share: vec![1.0; n],
            account: None,
            leaving: false,
            left: false,
            runs: Vec::new(),
            unattributed_j: 0.0,
            seen_unattributed: 0.0,
            job_j: 0.0,
            seen_job_j: 0.0,
            warnings: Vec::new(),
            failed: false,
            reader_watch: None,
            state_hint: None,
            known: HashMap::new(),
            idle_follow: opts.idle_follow,
            lock_file: None,
            states: StateCache::default(),
            state_out: StateWriter::new(dir.join(format!(
                "state-{}.json",
                // SAFETY: geteuid has no preconditions.
                unsafe { libc::geteuid() }
            ))),
            published: None,
            listing: Vec::new(),
            dir_watch: DirWatch::default(),
        };
        // Joined under the lock: among ranks without a launcher rank, the first to take it
        // leads.
        let joined = lock(dir).and_then(|_guard| {
            let mut link = link;
            link.me.joined_unix = unix_now();
            link.write_me().map(|_| link)
        });
        let link = match joined {
            Ok(l) => l,
            Err(e) => return Err((format!("{}: {e}", dir.display()), sensors)),
        };
        let link = Arc::new(Mutex::new(link));
        Ok((
            HostLedger(Arc::clone(&link)),
            LedgerSensor {
                inner: sensors,
                devices,
                link: Arc::clone(&link),
            },
            LedgerShares { link },
        ))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Link) -> R) -> R {
        match self.0.lock() {
            Ok(mut l) => f(&mut l),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// The measured work's root process: its tree is this participant's use.
    pub fn set_root(&self, pid: u32) {
        self.with(|l| {
            l.me.root_pid = pid;
            if !l.left {
                if let Err(e) = l.write_me() {
                    l.warn(format!("host ledger: cannot update this run's entry ({e})"));
                }
            }
        });
    }

    /// Leave at the sampler's next read (call before stopping it): that read is the last
    /// charged to this run; what follows goes to the others.
    pub fn leave_at_next_read(&self) {
        self.with(|l| l.leaving = true);
    }

    /// Leave now, if not done yet (e.g. the session is discarded).
    pub fn leave(&self) {
        self.with(|l| {
            if !l.left {
                l.leaving = true;
                l.tick(None);
            }
        });
    }

    /// For the agent: the runs present at its latest reading with the energy each was charged
    /// (finished runs drop out), and the host's unattributed energy since the agent joined,
    /// joules (never decreasing).
    pub fn runs(&self) -> (Vec<RunEnergy>, f64) {
        self.with(|l| (l.runs.clone(), l.unattributed_j))
    }

    /// For a run with a job key: the energy the ledger charged its job on this node (its
    /// leader, whichever rank that is) since this run joined, joules. A rank is charged nothing
    /// itself, so its caps and budgets watch this instead.
    pub fn job_energy_j(&self) -> Option<f64> {
        self.with(|l| l.me.job.as_ref().map(|_| l.job_j))
    }

    /// The ledger directory.
    pub fn dir(&self) -> PathBuf {
        self.with(|l| l.dir.clone())
    }

    /// How this run shared the machine so far.
    pub fn sharing(&self) -> HostSharing {
        self.with(|l| {
            let a = l.account.clone();
            let (alone_s, shared_s, others_s, estimated_s, company) = match &a {
                Some(a) => (
                    a.alone_s,
                    a.shared_s,
                    a.others_s,
                    a.estimated_s,
                    a.company
                        .iter()
                        .map(|(run, c)| CompanyRecord {
                            run: run.clone(),
                            job: c.job.clone(),
                            scope: c.scope.as_str().to_string(),
                            seconds: crate::units::round_sig(c.seconds, 4),
                        })
                        .collect(),
                ),
                None => (0.0, 0.0, 0.0, 0.0, Vec::new()),
            };
            let shared = shared_s > 0.0;
            // A rank is a run that spent more time led by another than leading its job.
            let ranked_s: f64 = a.as_ref().map(|a| a.led_by.values().sum()).unwrap_or(0.0);
            let led_s = a.as_ref().map(|a| a.led_s).unwrap_or(0.0);
            let is_rank = l.me.job.is_some() && ranked_s > led_s;
            let main_leader = a.as_ref().and_then(|a| {
                a.led_by
                    .iter()
                    .max_by(|x, y| x.1.total_cmp(y.1))
                    .map(|(k, _)| k.clone())
            });
            HostSharing {
                mode: if shared { "shared" } else { "alone" }.into(),
                rule: match (l.me.scope, shared) {
                    _ if is_rank => RANK_RULE.into(),
                    (Scope::Process, _) => PROCESS_RULE.into(),
                    (Scope::Machine, true) => MACHINE_RULE.into(),
                    (Scope::Machine, false) => {
                        "machine scope, alone on the host: charged the whole machine".into()
                    }
                },
                alone_s: crate::units::round_sig(alone_s, 4),
                shared_s: crate::units::round_sig(shared_s, 4),
                company,
                others_s: crate::units::round_sig(others_s, 4),
                estimated_s: crate::units::round_sig(estimated_s, 4),
                reader: l.was_reader,
                job_role: l
                    .me
                    .job
                    .as_ref()
                    .map(|_| if is_rank { "rank" } else { "leader" }.to_string()),
                led_s: l.me.job.as_ref().map(|_| {
                    crate::units::round_sig(a.as_ref().map(|a| a.led_s).unwrap_or(0.0), 4)
                }),
                leader: if is_rank { main_leader } else { None },
                ranks: l
                    .me
                    .job
                    .as_ref()
                    .map(|_| a.as_ref().map(|a| a.ranks).unwrap_or(1)),
                ledger: l.dir.display().to_string(),
            }
        })
    }
}

impl Link {
    fn warn(&mut self, w: String) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    fn me_path(&self) -> PathBuf {
        self.dir.join(format!("p-{}.json", self.me.run_id))
    }

    fn write_me(&self) -> std::io::Result<()> {
        let text = serde_json::to_string(&self.me).map_err(std::io::Error::other)?;
        write_atomic(&self.dir, &self.me_path(), &text).map(|_| ())
    }

    /// Write `st` to this user's state file (under the lock); returns the text written.
    fn write_state(&mut self, st: &LedgerState) -> std::io::Result<Vec<u8>> {
        let text = state_file::seal(serde_json::to_string(st).map_err(std::io::Error::other)?);
        self.state_out.write(&text)?;
        Ok(text)
    }

    /// Whether the reader `r` is still running (its pidfd, opened once per reader).
    fn reader_alive(&mut self, r: &ReaderId) -> bool {
        if !self
            .reader_watch
            .as_ref()
            .is_some_and(|w| w.is(r.pid, r.start_ticks))
        {
            self.reader_watch = ProcessWatch::open(r.pid, r.start_ticks);
        }
        self.reader_watch.as_mut().is_some_and(|w| w.alive())
    }

    /// The newest state: the file read last while its sequence advances, else a look at
    /// every user's state file.
    fn load_state_fast(&mut self) -> Option<LedgerState> {
        if let Some((path, seq)) = self.state_hint.clone() {
            if let Some(st) = read_state_file(&path, &mut self.states) {
                if st.seq > seq {
                    let st = st.clone();
                    self.state_hint = Some((path, st.seq));
                    return Some(st);
                }
            }
        }
        let (st, path) = newest_state(&list_dir(&self.dir)?, &mut self.states, None)?;
        self.state_hint = Some((path, st.seq));
        Some(st)
    }

    fn me_reader(&self) -> ReaderId {
        ReaderId {
            run_id: self.me.run_id.clone(),
            pid: self.me.pid,
            start_ticks: self.me.start_ticks,
            agent: self.me.agent,
        }
    }

    /// One look at the ledger (and, as its reader, one interval of it). `own` reads this
    /// participant's sensors when it must read the counters.
    fn tick(&mut self, own: Option<&mut dyn FnMut() -> Option<OwnRead>>) {
        if self.left {
            self.last_share.iter_mut().for_each(|s| *s = 0.0);
            return;
        }
        // A follower whose reader is alive only looks: no lock, one state file read.
        if own.is_some() && !self.reading && !self.leaving {
            if let Some(st) = self.load_state_fast() {
                let reader = st
                    .reader
                    .clone()
                    .filter(|r| *r != self.me_reader() && (r.agent || !self.me.agent));
                if reader.is_some_and(|r| self.reader_alive(&r)) {
                    self.prev_own = None;
                    self.look(Some(&st));
                    return;
                }
            }
        }
        let guard = match self.lock() {
            Ok(g) => g,
            Err(e) => {
                if !self.failed {
                    self.failed = true;
                    self.warn(format!(
                        "host ledger {}: cannot lock ({e}); this interval is not counted",
                        self.dir.display()
                    ));
                }
                self.last_share.iter_mut().for_each(|s| *s = 0.0);
                return;
            }
        };
        let me_id = self.me.run_id.clone();
        // The directory is listed, and the participants' files looked at, only when it
        // changed (or every few looks): the reader's own state file is rewritten in place.
        let fresh = !self.dir_watch.unchanged(&self.dir);
        if fresh {
            self.listing = list_dir(&self.dir).unwrap_or_default();
            self.state_out.forget();
        }
        // The state this participant published last, when its file still holds it.
        let mine = (!fresh
            && self.states.get(self.state_out.path()).is_some()
            && self.state_out.still_ours())
        .then(|| self.state_out.path().to_path_buf());
        // A file found half-written without the lock may have been caught while written.
        self.states.take_torn();
        let newest = newest_state(&self.listing, &mut self.states, mine.as_deref());
        for torn in self.states.take_torn() {
            self.warn(format!(
                "host ledger {}: {} was left half-written (its writer ended while writing it) \
                 and is not read: the ledger goes on from the newest whole state, or afresh; \
                 up to one interval of this host's energy may not be counted",
                self.dir.display(),
                torn.display()
            ));
        }
        let mut state = match newest {
            Some((st, path)) => {
                self.state_hint = Some((path, st.seq));
                Some(st)
            }
            None => None,
        };
        // A reader is alive while its process is and its entry is there.
        let reader = state.as_ref().and_then(|s| s.reader.clone());
        let reader_alive = reader.is_some_and(|r| {
            let entry = format!("p-{}.json", r.run_id);
            self.reader_alive(&r) && self.listing.iter().any(|(n, _)| *n == entry)
        });
        let i_read = state
            .as_ref()
            .and_then(|s| s.reader.as_ref())
            .is_some_and(|r| *r == self.me_reader());
        // An agent takes the reading over from a run.
        let agent_takes_over = self.me.agent
            && state
                .as_ref()
                .and_then(|s| s.reader.as_ref())
                .is_some_and(|r| !r.agent);
        if let Some(own) = own {
            if i_read || !reader_alive || agent_takes_over {
                // Only the reader looks at every participant.
                let (live, dead) = participants(&self.listing, &mut self.known, fresh);
                procfs::one_look(|| self.publish(&mut state, &live, &dead, own));
            } else {
                self.reading = false;
                self.prev_own = None;
            }
        }
        self.look(state.as_ref());
        if self.leaving {
            let _ = std::fs::remove_file(self.me_path());
            if let Some(st) = state.as_mut() {
                if st.reader.as_ref() == Some(&self.me_reader()) {
                    st.reader = None;
                    if let Some(a) = st.accounts.remove(&me_id) {
                        st.departed.push(Departed {
                            run: me_id.clone(),
                            joules: a.charged_j.iter().sum(),
                            expired: false,
                            at_unix: unix_now(),
                        });
                        if st.departed.len() > MAX_DEPARTED {
                            st.departed.remove(0);
                        }
                    }
                    st.seq += 1;
                    let _ = self.write_state(st);
                    self.published = None;
                }
            }
        }
        // What was just published is the newest state: kept, not read back next interval.
        if let (Some(text), Some(st)) = (self.published.take(), state) {
            self.states.wrote(self.state_out.path(), &text, st);
        }
        drop(guard);
        if self.leaving {
            self.left = true;
        }
    }

    /// The ledger's lock, through the lock file this participant keeps open.
    fn lock(&mut self) -> std::io::Result<LockGuard> {
        if self.lock_file.is_none() {
            self.lock_file = Some(open_lock_file(&self.dir)?);
        }
        let f = self
            .lock_file
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no lock file"))?;
        flock_ex(f)?;
        Ok(LockGuard::Kept(std::os::fd::AsRawFd::as_raw_fd(f)))
    }

    /// As the reader: read the counters, split the interval, publish.
    fn publish(
        &mut self,
        state: &mut Option<LedgerState>,
        live: &[Participant],
        dead: &[PathBuf],
        own: &mut dyn FnMut() -> Option<OwnRead>,
    ) {
        // The agent reads but is not charged: only runs share the energy.
        let runs: Vec<Participant> = live.iter().filter(|p| !p.agent).cloned().collect();
        let live = runs.as_slice();
        let Some(OwnRead {
            cum,
            pids: gpu_pids,
            util: gpu_util,
        }) = own()
        else {
            return;
        };
        let now = unix_now();
        let my_ids: Vec<String> = self.view_devices();
        let takeover = !self.reading;
        let mut st = match state.take() {
            Some(s) if s.devices == my_ids => s,
            Some(mut s) => {
                // Another reader saw other devices: start a new ledger with ours, keeping the
                // company figures.
                let mut fresh = LedgerState::new(my_ids.clone());
                for (k, a) in std::mem::take(&mut s.accounts) {
                    fresh.accounts.insert(
                        k,
                        Account {
                            charged_j: vec![0.0; my_ids.len()],
                            ..a
                        },
                    );
                }
                fresh.seq = s.seq;
                fresh
            }
            None => LedgerState::new(my_ids.clone()),
        };
        // The energy since the previous publication.
        let mut estimated = 0.0;
        let delta: Vec<f64> = match &self.prev_own {
            Some(prev) if !takeover => cum
                .iter()
                .zip(prev)
                .map(|(c, p)| (c - p).max(0.0))
                .collect(),
            _ => {
                if st.t_unix > 0.0 && st.t_unix > self.opened_unix && now > self.opened_unix {
                    // Our counters cover [opened, now]; the ledger was last published at
                    // t_unix: the gap is estimated at our mean power.
                    let gap = (now - st.t_unix).max(0.0);
                    estimated = gap;
                    let k = (gap / (now - self.opened_unix)).clamp(0.0, 1.0);
                    cum.iter().map(|c| c * k).collect()
                } else {
                    cum.clone()
                }
            }
        };
        self.prev_own = Some(cum);
        self.reading = true;
        self.was_reader = true;
        // The time the energy above covers: since the last publication, or since our counters
        // opened when the ledger was idle before that (a stale state: nobody was counting).
        let dt = if st.t_unix <= 0.0 {
            0.0
        } else if takeover && st.t_unix <= self.opened_unix {
            (now - self.opened_unix).max(0.0)
        } else {
            (now - st.t_unix).max(0.0)
        };
        st.reader = Some(self.me_reader());
        let mut expired_ids = Vec::new();
        for p in dead {
            // Expired (killed -9, crashed): drop the file when we may, forget the account.
            if let Some(id) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("p-"))
                .and_then(|n| n.strip_suffix(".json"))
            {
                expired_ids.push(id.to_string());
            }
            let _ = std::fs::remove_file(p);
        }
        let gone: Vec<String> = st
            .accounts
            .keys()
            .filter(|k| !live.iter().any(|p| &p.run_id == *k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(a) = st.accounts.remove(&k) {
                st.departed.push(Departed {
                    expired: expired_ids.contains(&k),
                    joules: a.charged_j.iter().sum(),
                    run: k,
                    at_unix: now,
                });
            }
        }
        if st.departed.len() > MAX_DEPARTED {
            let extra = st.departed.len() - MAX_DEPARTED;
            st.departed.drain(..extra);
        }
        // Every run's process tree from one scan of /proc — unless a single machine-scope run
        // (or job) is on the host: it is charged everything whatever its use, as without the
        // ledger, so the scan is skipped (the first scan after that only sets baselines).
        let alone = live.iter().all(|p| p.scope == Scope::Machine)
            && live.iter().all(|p| p.job.is_some() && p.job == live[0].job)
            || (live.len() == 1 && live[0].scope == Scope::Machine);
        // Use figures.
        let (machine_cpu, forks) = if alone {
            (None, None)
        } else {
            match procfs::read_cpu_times_and_forks(&self.paths) {
                Ok((c, f)) => (Some(c), f),
                Err(_) => (None, None),
            }
        };
        let busy = machine_cpu.as_ref().map(|c| c.busy);
        let busy_delta = match (busy, st.prev_busy) {
            (Some(b), Some(p)) => b.saturating_sub(p),
            _ => 0,
        };
        st.prev_busy = busy;
        let mem_used = if alone {
            0
        } else {
            procfs::read_meminfo(&self.paths)
                .map(|m| m.used_bytes())
                .unwrap_or(0)
        };
        let devices = self.devices.clone();
        let baseline_only = st.trees_skipped && !alone;
        st.trees_skipped = alone;
        let mut trees = if alone {
            vec![None; live.len()]
        } else {
            let roots: Vec<u32> = live.iter().map(|p| p.root_pid).collect();
            self.scanner
                .usage(&self.paths, &roots, forks)
                .unwrap_or_else(|_| vec![None; live.len()])
        };
        let mut uses = Vec::with_capacity(live.len());
        for (pi, p) in live.iter().enumerate() {
            let acc = st.accounts.entry(p.run_id.clone()).or_insert(Account {
                scope: p.scope,
                job: p.job.clone(),
                charged_j: vec![0.0; devices.len()],
                prev_ticks: None,
                alone_s: 0.0,
                shared_s: 0.0,
                company: BTreeMap::new(),
                others_s: 0.0,
                estimated_s: 0.0,
                leader: None,
                led_s: 0.0,
                led_by: BTreeMap::new(),
                ranks: 1,
            });
            let tree = trees.get_mut(pi).and_then(Option::take);
            let ticks = tree.as_ref().map(|t| t.ticks);
            let cpu_ticks = match (ticks, acc.prev_ticks) {
                _ if baseline_only => 0,
                (Some(t), Some(prev)) => t.saturating_sub(prev),
                (Some(t), None) if st.prev_busy.is_some() => t.min(busy_delta),
                _ => 0,
            };
            if ticks.is_some() {
                acc.prev_ticks = ticks;
            }
            let pids: &[u32] = tree.as_ref().map(|t| t.pids.as_slice()).unwrap_or(&[]);
            let holds = devices
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    d.kind == DeviceKind::Gpu
                        && (match (&p.gpus, d.gpu_index) {
                            (Some(v), Some(ix)) => v.contains(&ix),
                            _ => false,
                        } || gpu_pids
                            .get(i)
                            .and_then(|x| x.as_ref())
                            .is_some_and(|x| x.iter().any(|q| pids.contains(q))))
                })
                .collect();
            // Its processes' utilisation of each GPU, where NVML gave samples.
            let util = (0..devices.len())
                .map(|i| {
                    gpu_util.get(i).and_then(|x| x.as_ref()).map(|s| {
                        s.iter()
                            .filter(|(q, _)| pids.contains(q))
                            .map(|(_, u)| u)
                            .sum()
                    })
                })
                .collect();
            let share = devices
                .iter()
                .map(|d| {
                    let ix = d.gpu_index?;
                    (d.kind == DeviceKind::Gpu)
                        .then(|| p.gpu_shares.iter().find(|(g, _)| *g == ix).map(|(_, s)| *s))
                        .flatten()
                })
                .collect();
            uses.push(Use {
                cpus: p.cpus,
                scope: Some(p.scope),
                cpu_ticks,
                rss_bytes: tree.as_ref().map(|t| t.rss_bytes).unwrap_or(0),
                holds,
                gpu_util: util,
                gpu_share: share,
            });
        }
        // Ranks of one job form one group: their trees are its use, its leader is charged.
        let groups = job_groups(live);
        let group_uses: Vec<Use> = groups
            .iter()
            .map(|g| {
                let leader = &live[g.leader];
                let mut u = Use {
                    scope: Some(leader.scope),
                    cpu_ticks: 0,
                    rss_bytes: 0,
                    holds: vec![false; devices.len()],
                    // ranks of one job share its allocation on the node
                    cpus: g.members.iter().filter_map(|&i| live[i].cpus).max(),
                    gpu_util: vec![None; devices.len()],
                    gpu_share: vec![None; devices.len()],
                };
                for &i in &g.members {
                    u.cpu_ticks = u.cpu_ticks.saturating_add(uses[i].cpu_ticks);
                    u.rss_bytes = u.rss_bytes.saturating_add(uses[i].rss_bytes);
                    for (h, x) in u.holds.iter_mut().zip(&uses[i].holds) {
                        *h |= *x;
                    }
                    // ranks' use of a GPU adds up; their MIG shares too (at most the card)
                    for d in 0..devices.len() {
                        let add = |a: Option<f64>, b: Option<f64>, max: f64| match (a, b) {
                            (None, None) => None,
                            (a, b) => Some((a.unwrap_or(0.0) + b.unwrap_or(0.0)).min(max)),
                        };
                        let gu = uses[i].gpu_util.get(d).copied().flatten();
                        u.gpu_util[d] = add(u.gpu_util[d], gu, f64::MAX);
                        let gs = uses[i].gpu_share.get(d).copied().flatten();
                        u.gpu_share[d] = add(u.gpu_share[d], gs, 1.0);
                    }
                }
                u
            })
            .collect();
        let (charged, unattributed) = split_interval(
            &devices,
            &delta,
            dt,
            &group_uses,
            &MachineUse {
                busy_ticks: busy_delta,
                mem_used_bytes: mem_used,
            },
        );
        for (d, e) in delta.iter().enumerate() {
            st.machine_j[d] += e;
            st.unattributed_j[d] += unattributed[d];
        }
        if !live.is_empty() {
            // Time during which some run was on the host.
            st.covered_s += dt;
        }
        let shared = groups.len() > 1;
        for (gi, g) in groups.iter().enumerate() {
            let leader_id = live[g.leader].run_id.clone();
            for &i in &g.members {
                let p = &live[i];
                let Some(acc) = st.accounts.get_mut(&p.run_id) else {
                    continue;
                };
                if i == g.leader {
                    for (d, c) in charged[gi].iter().enumerate() {
                        acc.charged_j[d] += c;
                    }
                    acc.leader = None;
                    acc.led_s += dt;
                } else {
                    acc.leader = Some(leader_id.clone());
                    if let Some(x) = acc.led_by.get_mut(&leader_id) {
                        *x += dt;
                    } else if acc.led_by.len() < 8 {
                        acc.led_by.insert(leader_id.clone(), dt);
                    }
                }
                acc.ranks = acc.ranks.max(g.members.len() as u32);
                if shared {
                    acc.shared_s += dt;
                } else {
                    acc.alone_s += dt;
                }
                acc.estimated_s += estimated.min(dt);
                // Company: the runs of other jobs (ranks of one's own job are not company).
                for q in live
                    .iter()
                    .filter(|q| q.run_id != p.run_id && (q.job.is_none() || q.job != p.job))
                {
                    if let Some(c) = acc.company.get_mut(&q.run_id) {
                        c.seconds += dt;
                    } else if acc.company.len() < MAX_COMPANY {
                        acc.company.insert(
                            q.run_id.clone(),
                            Companion {
                                job: q.job.clone(),
                                scope: q.scope,
                                seconds: dt,
                            },
                        );
                    } else {
                        acc.others_s += dt;
                    }
                }
            }
        }
        st.t_unix = now;
        st.seq += 1;
        match self.write_state(&st) {
            Ok(text) => self.published = Some(text),
            Err(e) => self.warn(format!(
                "host ledger {}: cannot publish ({e})",
                self.dir.display()
            )),
        }
        *state = Some(st);
    }

    fn view_devices(&self) -> Vec<String> {
        self.devices.iter().map(|d| d.id.clone()).collect()
    }

    /// What the ledger has charged the accounts of this participant's job, joules.
    fn job_charged(&self, st: &LedgerState) -> f64 {
        st.accounts
            .values()
            .filter(|a| a.job.is_some() && a.job == self.me.job)
            .map(|a| a.charged_j.iter().sum::<f64>())
            .sum()
    }

    /// Update this participant's cumulative view from the state.
    fn look(&mut self, state: Option<&LedgerState>) {
        let n = self.devices.len();
        let Some(st) = state else {
            self.last_share = vec![0.0; n];
            return;
        };
        let mut m_now = vec![0.0; n];
        let mut c_now = vec![0.0; n];
        let acc = st.accounts.get(&self.me.run_id);
        for (i, d) in self.devices.iter().enumerate() {
            if let Some(j) = st.devices.iter().position(|x| *x == d.id) {
                m_now[i] = st.machine_j[j];
                c_now[i] = acc.map(|a| a.charged_j[j]).unwrap_or(0.0);
            }
        }
        if self.seen_epoch.as_deref() != Some(st.epoch.as_str()) {
            // A new ledger (first look, or a reader with other devices): count from here.
            self.seen_epoch = Some(st.epoch.clone());
            self.seen_machine = m_now.clone();
            self.seen_charged = c_now.clone();
            self.seen_unattributed = st.unattributed_j.iter().sum();
            self.seen_job_j = self.job_charged(st);
        }
        if self.me.job.is_some() {
            // A leader that leaves takes its account along: the sum drops, nothing is added.
            let j_now = self.job_charged(st);
            self.job_j += (j_now - self.seen_job_j).max(0.0);
            self.seen_job_j = j_now;
        }
        if self.me.agent {
            self.runs = st
                .accounts
                .iter()
                .map(|(id, a)| RunEnergy {
                    run: id.clone(),
                    job: a.job.clone(),
                    scope: a.scope,
                    joules: a.charged_j.iter().sum(),
                })
                .collect();
            // A counter: what the ledger added since the previous look (a new ledger starts
            // from its own zero, counted from the epoch change above).
            let u_now: f64 = st.unattributed_j.iter().sum();
            self.unattributed_j += (u_now - self.seen_unattributed).max(0.0);
            self.seen_unattributed = u_now;
        }
        for i in 0..n {
            let dm = (m_now[i] - self.seen_machine[i]).max(0.0);
            let dc = if self.me.agent {
                // The agent's own figures are the machine's.
                dm
            } else {
                (c_now[i] - self.seen_charged[i]).clamp(0.0, dm)
            };
            self.view_machine[i] += dm;
            self.view_charged[i] += dc;
            self.last_share[i] = if dm > 0.0 { dc / dm } else { 0.0 };
        }
        self.seen_machine = m_now;
        self.seen_charged = c_now;
        if let Some(a) = acc {
            self.account = Some(a.clone());
        }
    }
}

/// One read of the participant's own sensors: cumulative energy and GPU pids per device.
struct OwnRead {
    cum: Vec<f64>,
    pids: Vec<Option<Vec<u32>>>,
    /// Per device: `(pid, SM %)` samples since the previous read, when the sensor gives them.
    util: Vec<Option<Vec<(u32, f64)>>>,
}

impl Sensor for LedgerSensor {
    fn name(&self) -> &'static str {
        "host-ledger"
    }

    fn devices(&self) -> &[Device] {
        &self.devices
    }

    fn read(&mut self, _now: Instant) -> Result<Reading, SensorError> {
        let inner = &mut self.inner;
        let mut link = match self.link.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        let mut warnings: Vec<String> = Vec::new();
        let mut own = || -> Option<OwnRead> {
            let mut cum = Vec::new();
            let mut pids: Vec<Option<Vec<u32>>> = Vec::new();
            let mut util: Vec<Option<Vec<(u32, f64)>>> = Vec::new();
            for s in inner.iter_mut() {
                let k = s.devices().len();
                match s.read(Instant::now()) {
                    Ok(r) => cum.extend(r.energy.iter().map(|j| j.0)),
                    Err(e) => {
                        warnings.push(format!("{}: read failed: {e}", s.name()));
                        return None;
                    }
                }
                warnings.extend(s.take_warnings());
                match s.device_pids() {
                    Some(list) => pids.extend(
                        list.into_iter()
                            .map(Some)
                            .chain(std::iter::repeat(None))
                            .take(k),
                    ),
                    None => pids.extend(std::iter::repeat_n(None, k)),
                }
                match s.device_process_util() {
                    Some(list) => util.extend(
                        list.into_iter()
                            .map(Some)
                            .chain(std::iter::repeat(None))
                            .take(k),
                    ),
                    None => util.extend(std::iter::repeat_n(None, k)),
                }
            }
            Some(OwnRead { cum, pids, util })
        };
        link.tick(Some(&mut own));
        for w in warnings {
            link.warn(w);
        }
        Ok(Reading {
            energy: link.view_machine.iter().map(|j| Joules(*j)).collect(),
            power: vec![None; link.view_machine.len()],
        })
    }

    fn take_warnings(&mut self) -> Vec<String> {
        match self.link.lock() {
            Ok(mut l) => std::mem::take(&mut l.warnings),
            Err(p) => std::mem::take(&mut p.into_inner().warnings),
        }
    }

    /// A follower nobody watches live sleeps until its next checkpoint or the reader's end.
    fn idle(&mut self) -> Option<Idle> {
        let mut link = match self.link.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        let at_most = link.idle_follow?;
        if link.reading || link.leaving || link.left || link.failed {
            return None;
        }
        // Only while the reader is alive and its end can wake us (a pidfd): an ended reader
        // (its pidfd readable) means reading every interval until someone takes over.
        let watch = link.reader_watch.as_mut()?;
        if !watch.alive() {
            return None;
        }
        Some(Idle {
            at_most,
            wake_fd: Some(watch.raw_fd()?),
        })
    }
}

impl Attributor for LedgerShares {
    fn shares(&mut self, devices: &[Device], _: &[Option<Vec<u32>>]) -> Vec<f64> {
        let l = match self.link.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        (0..devices.len())
            .map(|i| l.last_share.get(i).copied().unwrap_or(0.0))
            .collect()
    }
}
