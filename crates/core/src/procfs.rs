//! Parsers for the few `/proc` files wattprint needs: system CPU times (`stat`), memory
//! (`meminfo`), per-process times (`<pid>/stat`) and the CPU time of a whole process tree.
//!
//! Every path is rooted at [`HostPaths::proc`], never at a hard-coded `/proc`, so tests and
//! containers can point it elsewhere (`WATTPRINT_PROCFS_ROOT`). Formats follow `proc(5)`.

use crate::host::HostPaths;
use crate::sensor::SensorError;
use std::collections::{HashMap, HashSet};
use std::path::Path;

const PROC_ADVICE: &str = "wattprint reads /proc to compute CPU load and memory use; \
     make sure procfs is mounted and readable (in a container, mount the host's /proc and set \
     WATTPRINT_PROCFS_ROOT to it)";

/// Aggregate CPU time of the machine since boot, in clock ticks (`USER_HZ`, see
/// [`clock_ticks_per_second`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// Ticks spent doing anything but idling or waiting for I/O:
    /// `total − idle − iowait` (so user, nice, system, irq, softirq and steal).
    pub busy: u64,
    /// `user + nice + system + idle + iowait + irq + softirq + steal`. `guest` and `guest_nice`
    /// are not added: the kernel already counts them inside `user` and `nice`.
    pub total: u64,
}

impl CpuTimes {
    /// Fraction of CPU time that was busy between `earlier` and `self`, clamped to `0..=1`.
    /// `None` when no tick elapsed (the two reads were too close together to tell).
    ///
    /// Differences saturate at zero: `iowait` is known to go backwards on some kernels, which
    /// must not produce a negative or overflowing load.
    pub fn load_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let dt = self.total.saturating_sub(earlier.total);
        if dt == 0 {
            return None;
        }
        let db = self.busy.saturating_sub(earlier.busy);
        Some((db as f64 / dt as f64).clamp(0.0, 1.0))
    }
}

fn read_to_string(path: &Path) -> Result<String, SensorError> {
    let read = || read_machine_file(path).map_err(|e| SensorError::io(path, e, PROC_ADVICE));
    ONE_LOOK.with(|memo| {
        let mut memo = memo.borrow_mut();
        let Some(seen) = memo.as_mut() else {
            return read();
        };
        if let Some(text) = seen.get(path) {
            return Ok(text.clone());
        }
        let text = read()?;
        seen.insert(path.to_path_buf(), text.clone());
        Ok(text)
    })
}

/// Machine-wide files kept open per thread (a sampler reads the same few every interval).
const KEPT_MACHINE_FILES: usize = 8;

/// A machine-wide file (`<proc>/stat`, `<proc>/meminfo`), through a file this thread keeps
/// open ([`crate::kernel_file::KeptFile`]).
fn read_machine_file(path: &Path) -> std::io::Result<String> {
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        if let Some(k) = kept.get_mut(path) {
            if let Ok(t) = k.read() {
                return Ok(t);
            }
            kept.remove(path);
        }
        let mut k = crate::kernel_file::KeptFile::open(path)?;
        let text = k.read()?;
        if k.is_kept() && kept.len() < KEPT_MACHINE_FILES {
            kept.insert(path.to_path_buf(), k);
        }
        Ok(text)
    })
}

thread_local! {
    static KEPT: std::cell::RefCell<HashMap<std::path::PathBuf, crate::kernel_file::KeptFile>> =
        std::cell::RefCell::new(HashMap::new());
    /// The machine-wide files (`<proc>/stat`, `<proc>/meminfo`) read during [`one_look`].
    static ONE_LOOK: std::cell::RefCell<Option<HashMap<std::path::PathBuf, String>>> =
        const { std::cell::RefCell::new(None) };
}

/// Run `f` as one look at the machine: `<proc>/stat` and `<proc>/meminfo` are read at most
/// once within it, whoever asks (the host ledger's reader reads its sensors — a CPU or memory
/// model reads these files — and then the machine's use from the same files, microseconds
/// later). Outside, every call reads the file.
pub fn one_look<R>(f: impl FnOnce() -> R) -> R {
    let outer = ONE_LOOK.with(|m| m.borrow().is_some());
    if outer {
        return f();
    }
    ONE_LOOK.with(|m| *m.borrow_mut() = Some(HashMap::new()));
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            ONE_LOOK.with(|m| *m.borrow_mut() = None);
        }
    }
    let _reset = Reset;
    f()
}

fn invalid(path: &Path, value: &str, reason: impl Into<String>) -> SensorError {
    SensorError::Invalid {
        path: path.to_path_buf(),
        value: value.chars().take(200).collect(),
        reason: reason.into(),
    }
}

/// Parse the aggregate `cpu ` line of a `/proc/stat` text. `path` only names the file in errors.
pub fn parse_cpu_times(text: &str, path: &Path) -> Result<CpuTimes, SensorError> {
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu ") || l.starts_with("cpu\t"))
        .ok_or_else(|| SensorError::Missing {
            what: "aggregate `cpu` line in /proc/stat".into(),
            path: path.to_path_buf(),
        })?;
    let mut fields = Vec::with_capacity(10);
    for tok in line.split_whitespace().skip(1) {
        let v: u64 = tok.parse().map_err(|_| {
            invalid(
                path,
                line,
                format!("`{tok}` is not a tick count; expected non-negative integers after `cpu`"),
            )
        })?;
        fields.push(v);
    }
    if fields.len() < 4 {
        return Err(invalid(
            path,
            line,
            "expected at least user, nice, system and idle tick counts",
        ));
    }
    let get = |i: usize| fields.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let (idle, iowait) = (get(3), get(4));
    let total = (0..8).map(get).fold(0u64, u64::saturating_add);
    let busy = total.saturating_sub(idle).saturating_sub(iowait);
    Ok(CpuTimes { busy, total })
}

/// Read the machine's aggregate CPU times from `<proc>/stat`.
pub fn read_cpu_times(paths: &HostPaths) -> Result<CpuTimes, SensorError> {
    let path = paths.proc_file("stat");
    parse_cpu_times(&read_to_string(&path)?, &path)
}

/// The host's fork counter (`processes` in `<proc>/stat`: processes and threads created since
/// boot), `None` when the file does not say.
pub fn parse_forks(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("processes "))
        .and_then(|v| v.trim().parse().ok())
}

/// The machine's aggregate CPU times and its fork counter ([`parse_forks`]), from one read of
/// `<proc>/stat`.
pub fn read_cpu_times_and_forks(paths: &HostPaths) -> Result<(CpuTimes, Option<u64>), SensorError> {
    let path = paths.proc_file("stat");
    let text = read_to_string(&path)?;
    Ok((parse_cpu_times(&text, &path)?, parse_forks(&text)))
}

/// Number of logical CPUs: the `cpuN` lines of `<proc>/stat` (online CPUs).
pub fn logical_cpus(paths: &HostPaths) -> Result<usize, SensorError> {
    let path = paths.proc_file("stat");
    let text = read_to_string(&path)?;
    let n = text
        .lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    if n == 0 {
        return Err(SensorError::Missing {
            what: "per-CPU `cpuN` lines in /proc/stat".into(),
            path,
        });
    }
    Ok(n)
}

/// System memory from `<proc>/meminfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    /// `MemTotal` in bytes.
    pub total_bytes: u64,
    /// `MemAvailable` in bytes: the kernel's estimate of memory available to start new
    /// applications without swapping (page cache that can be dropped counts as available).
    pub available_bytes: u64,
}

impl MemInfo {
    /// Memory in use: `MemTotal − MemAvailable`, in bytes.
    pub fn used_bytes(&self) -> u64 {
        self.total_bytes.saturating_sub(self.available_bytes)
    }
}

/// Parse a `/proc/meminfo` text (`MemTotal` and `MemAvailable`, in kB = 1024 bytes).
pub fn parse_meminfo(text: &str, path: &Path) -> Result<MemInfo, SensorError> {
    let mut total = None;
    let mut avail = None;
    for line in text.lines() {
        let Some((k, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match k.trim() {
            "MemTotal" => &mut total,
            "MemAvailable" => &mut avail,
            _ => continue,
        };
        let mut it = rest.split_whitespace();
        let num = it.next().unwrap_or("");
        let v: u64 = num
            .parse()
            .map_err(|_| invalid(path, line, "expected `<number> kB` after the field name"))?;
        let mult = match it.next() {
            Some("kB") | None => 1024,
            Some(u) => {
                return Err(invalid(
                    path,
                    line,
                    format!("unexpected unit `{u}`; /proc/meminfo values are in kB"),
                ))
            }
        };
        *slot = Some(v.saturating_mul(mult));
    }
    let missing = |what: &str| SensorError::Missing {
        what: format!("`{what}` in /proc/meminfo (MemAvailable needs Linux 3.14 or later)"),
        path: path.to_path_buf(),
    };
    let total_bytes = total.ok_or_else(|| missing("MemTotal"))?;
    let available_bytes = avail.ok_or_else(|| missing("MemAvailable"))?;
    Ok(MemInfo {
        total_bytes,
        available_bytes,
    })
}

/// Read `<proc>/meminfo`.
pub fn read_meminfo(paths: &HostPaths) -> Result<MemInfo, SensorError> {
    let path = paths.proc_file("meminfo");
    parse_meminfo(&read_to_string(&path)?, &path)
}

/// The fields of `/proc/<pid>/stat` wattprint uses. Times are in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub ppid: u32,
    /// User-mode time of the process itself.
    pub utime: u64,
    /// Kernel-mode time of the process itself.
    pub stime: u64,
    /// User time of children the process has waited for (reaped), cumulative.
    pub cutime: u64,
    /// Kernel time of children the process has waited for (reaped), cumulative.
    pub cstime: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
    /// Threads of the process (`num_threads`).
    pub threads: u64,
    /// When the process started, clock ticks after boot (`starttime`): with the pid, its
    /// identity.
    pub start_ticks: u64,
}

impl ProcStat {
    /// `utime + stime + cutime + cstime`: the CPU time of the process and of its reaped
    /// descendants.
    pub fn ticks(&self) -> u64 {
        self.utime
            .saturating_add(self.stime)
            .saturating_add(self.cutime)
            .saturating_add(self.cstime)
    }
}

/// Parse one `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may
/// itself contain spaces and parentheses, so the line is split at the **last** `)`.
pub fn parse_pid_stat(text: &str, path: &Path) -> Result<ProcStat, SensorError> {
    let line = text.trim_end();
    let open = line.find('(');
    let close = line.rfind(')');
    let (Some(open), Some(close)) = (open, close) else {
        return Err(invalid(path, line, "expected `pid (comm) state ppid ...`"));
    };
    if close < open {
        return Err(invalid(path, line, "expected `pid (comm) state ppid ...`"));
    }
    let pid_s = line[..open].trim();
    let pid: u32 = pid_s
        .parse()
        .map_err(|_| invalid(path, line, format!("`{pid_s}` is not a process id")))?;
    // After `)`: state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8) flags(9) minflt(10)
    // cminflt(11) majflt(12) cmajflt(13) utime(14) stime(15) cutime(16) cstime(17)
    // priority(18) nice(19) num_threads(20) itrealvalue(21) starttime(22) vsize(23) rss(24)
    let rest: Vec<&str> = line[close + 1..].split_whitespace().collect();
    // field n (1-based, proc(5)) is rest[n - 3]
    let field = |n: usize, name: &str| -> Result<i64, SensorError> {
        let s = rest.get(n - 3).ok_or_else(|| {
            invalid(
                path,
                line,
                format!("too few fields: `{name}` (field {n}) is missing"),
            )
        })?;
        s.parse::<i64>().map_err(|_| {
            invalid(
                path,
                line,
                format!("`{name}` (field {n}) `{s}` is not an integer"),
            )
        })
    };
    let nonneg = |v: i64| v.max(0) as u64;
    let ppid = field(4, "ppid")?;
    let ppid = u32::try_from(ppid)
        .map_err(|_| invalid(path, line, format!("ppid `{ppid}` is not a process id")))?;
    Ok(ProcStat {
        pid,
        ppid,
        utime: nonneg(field(14, "utime")?),
        stime: nonneg(field(15, "stime")?),
        cutime: nonneg(field(16, "cutime")?),
        cstime: nonneg(field(17, "cstime")?),
        rss_pages: nonneg(field(24, "rss")?),
        threads: nonneg(field(20, "num_threads")?),
        start_ticks: nonneg(field(22, "starttime")?),
    })
}

/// Read and parse `<proc>/<pid>/stat`. A process that does not exist gives
/// [`SensorError::Missing`].
pub fn read_pid_stat(paths: &HostPaths, pid: u32) -> Result<ProcStat, SensorError> {
    let path = paths.proc_file(format!("{pid}/stat"));
    match crate::kernel_file::read_small(&path) {
        Ok(text) => parse_pid_stat(&text, &path),
        Err(e) if is_gone(&e) => Err(SensorError::Missing {
            what: format!("process {pid}"),
            path,
        }),
        Err(e) => Err(SensorError::io(&path, e, PROC_ADVICE)),
    }
}

/// True for the errors a process that exited between listing and reading gives.
fn is_gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// CPU time and memory of a process and all its live descendants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeUsage {
    /// Σ over the tree of `utime + stime + cutime + cstime`, in clock ticks. `cutime`/`cstime`
    /// carry the time of descendants already reaped by a process of the tree.
    pub ticks: u64,
    /// The root and every live descendant, sorted.
    pub pids: Vec<u32>,
    /// Σ of resident set sizes, bytes (shared pages are counted once per process).
    pub rss_bytes: u64,
}

/// CPU ticks, pids and RSS of `root_pid` and every descendant (children, grandchildren, ...).
///
/// Scans `<proc>/[0-9]*/stat` once and builds the parent → children map. Processes that vanish
/// between the directory listing and the read have exited and are skipped silently; their time
/// reappears in their parent's `cutime`/`cstime` once the parent reaps them. Processes whose
/// stat is unreadable (another user's, with procfs mounted `hidepid=1`) are skipped too.
/// Limitations: a descendant whose parent exits is re-parented (to init or a subreaper) and
/// leaves the tree; the time of a descendant that exits un-reaped by a tree member is lost; a
/// setuid descendant hidden by `hidepid` is missed.
///
/// Errors: the root does not exist ([`SensorError::Missing`]); `<proc>` cannot be listed; a
/// stat file is malformed ([`SensorError::Invalid`]).
pub fn process_tree_usage(paths: &HostPaths, root_pid: u32) -> Result<TreeUsage, SensorError> {
    TreeScanner::default().usage(paths, root_pid)
}

/// A process-tree scanner for repeated use on the same job: it remembers the pids it has seen
/// outside the job's tree and does not read their `stat` again (a process never joins a tree it
/// was not born into: orphans are re-parented to init or a subreaper, never to the job). A full
/// rescan every [`TreeScanner::FULL_RESCAN`] catches a pid reused by a new process of the job
/// between two reads. On a busy machine this turns a scan of every `/proc/<pid>/stat` per
/// sample into reading only the job's processes and the newcomers.
#[derive(Debug, Default)]
pub struct TreeScanner {
    others: HashSet<u32>,
    last_full: Option<std::time::Instant>,
}

impl TreeScanner {
    /// Only a pid reused by the job within this time is missed until then, and only its
    /// memory: its CPU time is cumulative and counted at the rescan (or in its parent's
    /// `cutime` once reaped).
    pub const FULL_RESCAN: std::time::Duration = std::time::Duration::from_secs(60);

    pub fn usage(&mut self, paths: &HostPaths, root_pid: u32) -> Result<TreeUsage, SensorError> {
        if self
            .last_full
            .is_none_or(|t| t.elapsed() >= Self::FULL_RESCAN)
        {
            self.others.clear();
            self.last_full = Some(std::time::Instant::now());
        }
        let usage = scan_tree(paths, root_pid, &self.others)?;
        self.others = usage.1;
        Ok(usage.0)
    }
}

/// One scan skipping `skip`; returns the usage and the pids seen outside the tree.
fn scan_tree(
    paths: &HostPaths,
    root_pid: u32,
    skip: &HashSet<u32>,
) -> Result<(TreeUsage, HashSet<u32>), SensorError> {
    let dir = &paths.proc;
    let entries = std::fs::read_dir(dir).map_err(|e| SensorError::io(dir, e, PROC_ADVICE))?;
    let mut others: HashSet<u32> = HashSet::new();
    let mut stats: HashMap<u32, ProcStat> = HashMap::new();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in entries {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if skip.contains(&pid) {
            others.insert(pid);
            continue;
        }
        let st = match read_pid_stat(paths, pid) {
            Ok(st) => st,
            Err(SensorError::Missing { .. }) => continue, // exited mid-scan: normal
            // Another user's process under `hidepid=1`: it cannot be ours unless setuid.
            Err(SensorError::PermissionDenied { .. }) if pid != root_pid => continue,
            Err(e) => return Err(e),
        };
        children.entry(st.ppid).or_default().push(pid);
        stats.insert(pid, st);
    }
    if !stats.contains_key(&root_pid) {
        return Err(SensorError::Missing {
            what: format!("process {root_pid} (it may have exited)"),
            path: paths.proc_file(format!("{root_pid}/stat")),
        });
    }
    let page = page_size();
    let mut usage = TreeUsage::default();
    let mut seen = HashSet::new();
    let mut stack = vec![root_pid];
    while let Some(pid) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if let Some(st) = stats.get(&pid) {
            usage.ticks = usage.ticks.saturating_add(st.ticks());
            usage.rss_bytes = usage
                .rss_bytes
                .saturating_add(st.rss_pages.saturating_mul(page));
            usage.pids.push(pid);
        }
        if let Some(kids) = children.get(&pid) {
            // `seen` guards against cycles, which a real kernel never produces
            stack.extend(kids.iter().copied());
        }
    }
    for pid in stats.keys() {
        if !seen.contains(pid) {
            others.insert(*pid);
        }
    }
    usage.pids.sort_unstable();
    Ok((usage, others))
}

/// [`TreeScanner`] for several process trees at once (the host ledger's reader measures every
/// run's tree each interval), at the least cost the host allows:
///
/// 1. **Nothing forked** on the host since the previous scan (the fork counter of
///    `<proc>/stat`, passed in): the trees are the previous ones less what ended, so only
///    their members' `stat` files are read — and checked (a member whose parent is no longer
///    in its tree was re-parented: the trees are found again).
/// 2. **Small trees of single-threaded processes**: walked from each root through
///    `<proc>/<pid>/task/<pid>/children` (cost in the trees' size, not the host's).
/// 3. Otherwise one listing of `<proc>` per scan whatever the number of trees, the pids seen
///    outside every tree skipped until the next full rescan.
///
/// Each way gives the trees the listing gives: the processes whose parent chain leads to a
/// root.
#[derive(Debug, Default)]
pub struct ForestScanner {
    /// For listings: the pids outside every tree, skipped until the next full rescan, and
    /// the roots they were outside of (new roots start with a full scan).
    others: HashSet<u32>,
    last_full: Option<std::time::Instant>,
    listing_roots: Vec<u32>,
    /// The roots of the previous scan, the host's fork counter before it, and its trees.
    last_roots: Vec<u32>,
    last_forks: Option<u64>,
    last_trees: Vec<Option<Vec<u32>>>,
    /// Whether the previous scan met a multi-threaded process (its children are spread over
    /// its threads' files: listing `<proc>` is cheaper then).
    threaded: bool,
    /// The kernel gives no `children` files (`CONFIG_PROC_CHILDREN` off).
    no_children_files: bool,
    /// The trees' processes' files, kept open between scans.
    kept: KeptFiles,
}

/// How a [`ForestScanner`] found the trees last (for tests and benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanWay {
    Unchanged,
    Children,
    Listing,
}

impl ForestScanner {
    /// Usage of the tree of each root, in `roots` order (`None`: the root is gone). `forks`:
    /// the host's fork counter read just before (see [`read_cpu_times_and_forks`]), `None` if unknown.
    /// Errors: `<proc>` cannot be listed, or a stat file is malformed.
    pub fn usage(
        &mut self,
        paths: &HostPaths,
        roots: &[u32],
        forks: Option<u64>,
    ) -> Result<Vec<Option<TreeUsage>>, SensorError> {
        Ok(self.usage_how(paths, roots, forks)?.0)
    }

    /// [`ForestScanner::usage`], and which way the trees were found.
    pub fn usage_how(
        &mut self,
        paths: &HostPaths,
        roots: &[u32],
        forks: Option<u64>,
    ) -> Result<(Vec<Option<TreeUsage>>, ScanWay), SensorError> {
        // No fork, no new process: the trees can only have lost members.
        let unchanged = self.last_roots == roots && forks.is_some() && forks == self.last_forks;
        self.last_forks = forks;
        if unchanged {
            if let Some(out) = self.members_again(paths)? {
                return Ok((out, ScanWay::Unchanged));
            }
        }
        if !self.threaded && !self.no_children_files {
            match walk_children(paths, roots, &mut self.kept)? {
                Walk::Done(trees) => {
                    self.remember(roots, &trees);
                    return Ok((usages(&trees), ScanWay::Children));
                }
                Walk::Threaded => self.threaded = true,
                Walk::NoChildrenFiles => self.no_children_files = true,
            }
        }
        let out = self.listing(paths, roots)?;
        Ok((out, ScanWay::Listing))
    }

    /// Keep what the next scan may reuse.
    fn remember(&mut self, roots: &[u32], trees: &[Option<Vec<ProcStat>>]) {
        self.last_roots = roots.to_vec();
        self.last_trees = trees
            .iter()
            .map(|t| t.as_ref().map(|v| v.iter().map(|s| s.pid).collect()))
            .collect();
        self.threaded = trees.iter().flatten().flatten().any(|s| s.threads > 1);
        let members: HashSet<u32> = trees.iter().flatten().flatten().map(|s| s.pid).collect();
        self.kept.retain(&members);
    }

    /// The previous trees read again; `None` when one changed shape (a member re-parented
    /// out of it) and the trees must be found again.
    fn members_again(
        &mut self,
        paths: &HostPaths,
    ) -> Result<Option<Vec<Option<TreeUsage>>>, SensorError> {
        let mut trees: Vec<Option<Vec<ProcStat>>> = Vec::with_capacity(self.last_trees.len());
        for (root, members) in self.last_roots.iter().zip(&self.last_trees) {
            let Some(members) = members else {
                trees.push(None);
                continue;
            };
            let mut stats = Vec::with_capacity(members.len());
            let mut root_gone = false;
            for &pid in members {
                match self.kept.stat(paths, pid) {
                    Ok(st) => stats.push(st),
                    Err(SensorError::Missing { .. }) => root_gone |= pid == *root,
                    Err(SensorError::PermissionDenied { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
            if root_gone {
                trees.push(None);
                continue;
            }
            let kept: HashSet<u32> = stats.iter().map(|s| s.pid).collect();
            if stats
                .iter()
                .any(|s| s.pid != *root && !kept.contains(&s.ppid))
            {
                return Ok(None);
            }
            trees.push(Some(stats));
        }
        let roots = self.last_roots.clone();
        self.remember(&roots, &trees);
        Ok(Some(usages(&trees)))
    }

    /// Every tree from one listing of `<proc>`.
    fn listing(
        &mut self,
        paths: &HostPaths,
        roots: &[u32],
    ) -> Result<Vec<Option<TreeUsage>>, SensorError> {
        if self
            .last_full
            .is_none_or(|t| t.elapsed() >= TreeScanner::FULL_RESCAN)
            || self.listing_roots != roots
        {
            self.others.clear();
            self.last_full = Some(std::time::Instant::now());
            self.listing_roots = roots.to_vec();
        }
        let dir = &paths.proc;
        let entries = std::fs::read_dir(dir).map_err(|e| SensorError::io(dir, e, PROC_ADVICE))?;
        let mut stats: HashMap<u32, ProcStat> = HashMap::new();
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut skipped: HashSet<u32> = HashSet::new();
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if self.others.contains(&pid) && !roots.contains(&pid) {
                skipped.insert(pid);
                continue;
            }
            let st = match read_pid_stat(paths, pid) {
                Ok(st) => st,
                Err(SensorError::Missing { .. }) | Err(SensorError::PermissionDenied { .. }) => {
                    continue
                }
                Err(e) => return Err(e),
            };
            children.entry(st.ppid).or_default().push(pid);
            stats.insert(pid, st);
        }
        let mut seen = HashSet::new();
        let mut trees: Vec<Option<Vec<ProcStat>>> = Vec::with_capacity(roots.len());
        for &root in roots {
            if root == 0 || !stats.contains_key(&root) {
                trees.push(None);
                continue;
            }
            let mut tree = Vec::new();
            let mut stack = vec![root];
            let mut here = HashSet::new();
            while let Some(pid) = stack.pop() {
                if !here.insert(pid) {
                    continue;
                }
                seen.insert(pid);
                if let Some(st) = stats.get(&pid) {
                    tree.push(*st);
                }
                if let Some(kids) = children.get(&pid) {
                    // `here` guards against cycles, which a real kernel never produces
                    stack.extend(kids.iter().copied());
                }
            }
            trees.push(Some(tree));
        }
        // A process never joins a tree it was not born into: those outside every tree now are
        // skipped until the next full rescan.
        self.others = skipped;
        for pid in stats.keys() {
            if !seen.contains(pid) {
                self.others.insert(*pid);
            }
        }
        self.remember(roots, &trees);
        Ok(usages(&trees))
    }
}

/// The `stat` and `children` files of the trees' processes, kept open between scans
/// ([`crate::kernel_file::KeptFile`]: read again without a path lookup).
#[derive(Debug, Default)]
struct KeptFiles {
    stat: HashMap<u32, crate::kernel_file::KeptFile>,
    children: HashMap<u32, crate::kernel_file::KeptFile>,
}

impl KeptFiles {
    /// `<proc>/<pid>/stat`, through the kept file (opened at the first read).
    fn stat(&mut self, paths: &HostPaths, pid: u32) -> Result<ProcStat, SensorError> {
        let path = paths.proc_file(format!("{pid}/stat"));
        let text = kept_read(&mut self.stat, pid, &path).map_err(|e| {
            if is_gone(&e) {
                SensorError::Missing {
                    what: format!("process {pid}"),
                    path: path.clone(),
                }
            } else {
                SensorError::io(&path, e, PROC_ADVICE)
            }
        })?;
        parse_pid_stat(&text, &path)
    }

    /// `<proc>/<pid>/task/<pid>/children`.
    fn children(&mut self, paths: &HostPaths, pid: u32) -> std::io::Result<String> {
        let path = paths.proc_file(format!("{pid}/task/{pid}/children"));
        kept_read(&mut self.children, pid, &path)
    }

    /// Keep only the files of `pids`.
    fn retain(&mut self, pids: &HashSet<u32>) {
        self.stat.retain(|p, _| pids.contains(p));
        self.children.retain(|p, _| pids.contains(p));
    }
}

fn kept_read(
    files: &mut HashMap<u32, crate::kernel_file::KeptFile>,
    pid: u32,
    path: &Path,
) -> std::io::Result<String> {
    if let Some(k) = files.get_mut(&pid) {
        if let Ok(t) = k.read() {
            return Ok(t);
        }
        // Its process is gone; the pid may be another process's now: opened afresh.
        files.remove(&pid);
    }
    let mut k = crate::kernel_file::KeptFile::open(path)?;
    let text = k.read()?;
    if files.len() < MAX_WALKED {
        files.insert(pid, k);
    }
    Ok(text)
}

/// A walk of the trees through the `children` files.
enum Walk {
    Done(Vec<Option<Vec<ProcStat>>>),
    /// A process of a tree has several threads: its children are spread over their files.
    Threaded,
    NoChildrenFiles,
}

/// Processes in a walked tree at most (as [`MAX_TRACKED_PIDS`] elsewhere).
const MAX_WALKED: usize = 4096;

fn walk_children(
    paths: &HostPaths,
    roots: &[u32],
    kept: &mut KeptFiles,
) -> Result<Walk, SensorError> {
    let mut trees = Vec::with_capacity(roots.len());
    for &root in roots {
        if root == 0 {
            trees.push(None);
            continue;
        }
        let mut tree: Vec<ProcStat> = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = vec![root];
        let mut root_gone = false;
        while let Some(pid) = stack.pop() {
            if !seen.insert(pid) || tree.len() >= MAX_WALKED {
                continue;
            }
            let st = match kept.stat(paths, pid) {
                Ok(st) => st,
                Err(SensorError::Missing { .. }) | Err(SensorError::PermissionDenied { .. }) => {
                    root_gone |= pid == root;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if st.threads > 1 {
                return Ok(Walk::Threaded);
            }
            match kept.children(paths, pid) {
                Ok(text) => stack.extend(
                    text.split_ascii_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                ),
                // Exited since its stat was read: its children are re-parented, out of it.
                Err(_) if !paths.proc_file(format!("{pid}/stat")).exists() => {}
                // Alive without a children list: none on this kernel (or a fake tree).
                Err(_) => return Ok(Walk::NoChildrenFiles),
            }
            tree.push(st);
        }
        trees.push((!root_gone).then_some(tree));
    }
    Ok(Walk::Done(trees))
}

/// The usage of each tree.
fn usages(trees: &[Option<Vec<ProcStat>>]) -> Vec<Option<TreeUsage>> {
    let page = page_size();
    trees
        .iter()
        .map(|t| {
            t.as_ref().map(|stats| {
                let mut u = TreeUsage::default();
                for st in stats {
                    u.ticks = u.ticks.saturating_add(st.ticks());
                    u.rss_bytes = u
                        .rss_bytes
                        .saturating_add(st.rss_pages.saturating_mul(page));
                    u.pids.push(st.pid);
                }
                u.pids.sort_unstable();
                u
            })
        })
        .collect()
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, `USER_HZ`), the unit of `/proc` times.
/// Falls back to 100, the value on every mainstream Linux architecture, if sysconf fails.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a configuration value.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

/// Memory page size in bytes (`sysconf(_SC_PAGESIZE)`), 4096 if sysconf fails.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a configuration value.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cpu_line_sums_without_guest() {
        let p = Path::new("/x/stat");
        // user nice system idle iowait irq softirq steal guest guest_nice
        let t = parse_cpu_times("cpu  100 20 30 400 50 6 4 10 70 5\ncpu0 1 2 3 4\n", p).unwrap();
        assert_eq!(t.total, 100 + 20 + 30 + 400 + 50 + 6 + 4 + 10);
        assert_eq!(t.busy, 100 + 20 + 30 + 6 + 4 + 10);
        // old kernels with only four fields
        let t = parse_cpu_times("cpu 1 2 3 4\n", p).unwrap();
        assert_eq!((t.busy, t.total), (6, 10));
        assert!(matches!(
            parse_cpu_times("cpu 1 x 3 4\n", p),
            Err(SensorError::Invalid { .. })
        ));
        assert!(matches!(
            parse_cpu_times("intr 1 2\n", p),
            Err(SensorError::Missing { .. })
        ));
    }

    #[test]
    fn load_clamps_and_handles_no_ticks() {
        let a = CpuTimes {
            busy: 100,
            total: 1000,
        };
        let b = CpuTimes {
            busy: 150,
            total: 1100,
        };
        assert!((b.load_since(&a).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(a.load_since(&a), None);
        // busy went backwards (iowait accounting quirk): saturates to 0
        let c = CpuTimes {
            busy: 90,
            total: 1100,
        };
        assert_eq!(c.load_since(&a), Some(0.0));
    }

    #[test]
    fn pid_stat_with_nasty_comm() {
        let p = Path::new("/x/42/stat");
        let line = "42 (my (weird) proc) S 7 42 42 0 -1 4194304 100 0 0 0 11 22 33 44 20 0 1 0 123 4096 250 18446744073709551615";
        let st = parse_pid_stat(line, p).unwrap();
        assert_eq!(
            st,
            ProcStat {
                pid: 42,
                ppid: 7,
                utime: 11,
                stime: 22,
                cutime: 33,
                cstime: 44,
                rss_pages: 250,
                threads: 1,
                start_ticks: 123,
            }
        );
        assert!(matches!(
            parse_pid_stat("42 (x) S 7 1 2", p),
            Err(SensorError::Invalid { .. })
        ));
        assert!(matches!(
            parse_pid_stat("garbage", p),
            Err(SensorError::Invalid { .. })
        ));
    }
}
