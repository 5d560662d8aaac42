//! The agent's attribution of the node's energy to the wattprint runs and the commands on it.
//!
//! Each interval, the agent reads `<proc>/stat` (the machine's busy CPU ticks) and every
//! `<proc>/<pid>/stat` (the process's own user + system ticks and resident memory), and
//! charges:
//! - the CPU devices' energy of the interval to each process in proportion to its share of the
//!   machine's busy ticks (idle power is thereby shared by the processes that were active, as in
//!   `wattprint run --scope process`);
//! - the RAM devices' energy in proportion to its resident memory over the memory in use;
//! - GPU energy is not split by the agent (it stays unattributed).
//!
//! A process belongs to a wattprint run when its environment holds `WATTPRINT_RUN_ID` (set by
//! `wattprint run` for the job and inherited by its children; reading another user's
//! environment needs root or CAP_SYS_PTRACE), else to its command name. What no process
//! explains (kernel, processes that exited between two reads, GPU) goes to `unattributed`.
//! Memory is bounded: at most `cap` groups are kept; beyond that the smallest command groups
//! are folded into `other`. Labels of Prometheus metrics never carry these names (unbounded);
//! they are on the agent's `/status` page.

use std::collections::HashMap;
use wattprint_core::host::HostPaths;
use wattprint_core::procfs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// A wattprint run (by its run id).
    Run,
    /// Processes by command name.
    Command,
    /// Folded small groups.
    Other,
    /// Energy no process explains.
    Unattributed,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Group {
    pub key: String,
    pub kind: GroupKind,
    pub energy_j: f64,
    pub cpu_j: f64,
    pub ram_j: f64,
    /// Live processes in the latest interval.
    pub pids: usize,
}

struct Proc {
    starttime: u64,
    ticks: u64,
    group: String,
}

pub struct ProcAttribution {
    paths: HostPaths,
    cap: usize,
    page_size: u64,
    prev_busy: Option<u64>,
    procs: HashMap<u32, Proc>,
    groups: HashMap<String, Group>,
    pub runs_active: usize,
    pub warnings: Vec<String>,
    warned: bool,
}

/// The command name of a `<pid>/stat` line (between the first `(` and the last `)`).
fn comm_of(text: &str) -> Option<String> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    Some(text.get(open + 1..close)?.to_string())
}

fn run_id_of(paths: &HostPaths, pid: u32) -> Option<String> {
    let env = std::fs::read(paths.proc_file(format!("{pid}/environ"))).ok()?;
    env.split(|b| *b == 0).find_map(|kv| {
        kv.strip_prefix(b"WATTPRINT_RUN_ID=")
            .map(|v| String::from_utf8_lossy(v).chars().take(128).collect())
    })
}

impl ProcAttribution {
    pub fn new(paths: HostPaths, cap: usize) -> ProcAttribution {
        ProcAttribution {
            paths,
            cap: cap.max(2),
            page_size: procfs::page_size(),
            prev_busy: None,
            procs: HashMap::new(),
            groups: HashMap::new(),
            runs_active: 0,
            warnings: Vec::new(),
            warned: false,
        }
    }

    fn warn(&mut self, w: String) {
        if !self.warned {
            self.warned = true;
            self.warnings.push(w);
        }
    }

    fn group_mut(&mut self, key: &str, kind: GroupKind) -> &mut Group {
        self.groups.entry(key.to_string()).or_insert_with(|| Group {
            key: key.to_string(),
            kind,
            energy_j: 0.0,
            cpu_j: 0.0,
            ram_j: 0.0,
            pids: 0,
        })
    }

    /// Charge one interval's CPU and RAM energy (joules) to the processes that used them.
    pub fn update(&mut self, cpu_j: f64, ram_j: f64, other_j: f64) {
        let busy = match procfs::read_cpu_times(&self.paths) {
            Ok(t) => Some(t.busy),
            Err(e) => {
                self.warn(format!(
                    "attribution: cannot read CPU times ({e}); energy stays unattributed"
                ));
                None
            }
        };
        let mem_used = procfs::read_meminfo(&self.paths)
            .map(|m| m.total_bytes.saturating_sub(m.available_bytes))
            .unwrap_or(0);
        let first = self.prev_busy.is_none();
        let busy_delta = match (busy, self.prev_busy) {
            (Some(b), Some(p)) => b.saturating_sub(p),
            _ => 0,
        };
        if busy.is_some() {
            self.prev_busy = busy;
        }
        // Per group this interval: (ticks, rss bytes, pids, kind).
        let mut now: HashMap<String, (u64, u64, usize, GroupKind)> = HashMap::new();
        let mut seen: HashMap<u32, Proc> = HashMap::with_capacity(self.procs.len());
        let dir = match std::fs::read_dir(self.paths.proc_file("")) {
            Ok(d) => Some(d),
            Err(e) => {
                self.warn(format!(
                    "attribution: cannot list processes ({e}); energy stays unattributed"
                ));
                None
            }
        };
        for e in dir.into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let path = e.path().join("stat");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue; // exited, or hidden
            };
            let (Ok(st), Some(comm)) = (procfs::parse_pid_stat(&text, &path), comm_of(&text))
            else {
                continue;
            };
            let start = st.start_ticks;
            let ticks = st.utime.saturating_add(st.stime);
            let (delta, group) = match self.procs.remove(&pid) {
                Some(p) if p.starttime == start => (ticks.saturating_sub(p.ticks), p.group),
                // New since the last read (or a reused pid): all its ticks are new, except on
                // the very first read, which is only the baseline.
                _ => {
                    let g = match run_id_of(&self.paths, pid) {
                        Some(id) => format!("run:{id}"),
                        None => format!("cmd:{comm}"),
                    };
                    (if first { 0 } else { ticks }, g)
                }
            };
            let kind = if group.starts_with("run:") {
                GroupKind::Run
            } else {
                GroupKind::Command
            };
            let slot = now.entry(group.clone()).or_insert((0, 0, 0, kind));
            slot.0 += delta;
            slot.1 += st.rss_pages.saturating_mul(self.page_size);
            slot.2 += 1;
            seen.insert(
                pid,
                Proc {
                    starttime: start,
                    ticks,
                    group,
                },
            );
        }
        self.procs = seen;
        let total_ticks: u64 = now.values().map(|v| v.0).sum();
        // Shares of busy ticks; if the processes' ticks exceed the machine's (the two files are
        // not read at the same instant), scale them down to the whole.
        let denom = busy_delta.max(total_ticks) as f64;
        let mut charged = 0.0;
        for g in self.groups.values_mut() {
            g.pids = 0;
        }
        self.runs_active = now.values().filter(|v| v.3 == GroupKind::Run).count();
        for (key, (ticks, rss, pids, kind)) in now {
            let c = if denom > 0.0 {
                cpu_j * ticks as f64 / denom
            } else {
                0.0
            };
            let r = if mem_used > 0 {
                ram_j * (rss as f64 / mem_used as f64).min(1.0)
            } else {
                0.0
            };
            if c + r <= 0.0 && !self.groups.contains_key(&key) && kind != GroupKind::Run {
                continue;
            }
            charged += c + r;
            let g = self.group_mut(&key, kind);
            g.cpu_j += c;
            g.ram_j += r;
            g.energy_j += c + r;
            g.pids = pids;
        }
        let rest = (cpu_j + ram_j + other_j - charged).max(0.0);
        let u = self.group_mut("unattributed", GroupKind::Unattributed);
        u.energy_j += rest;
        self.fold();
    }

    /// Keep at most `cap` groups: the smallest command groups go into `other`.
    fn fold(&mut self) {
        if self.groups.len() <= self.cap {
            return;
        }
        let mut small: Vec<(String, f64)> = self
            .groups
            .values()
            .filter(|g| g.kind == GroupKind::Command && g.pids == 0)
            .map(|g| (g.key.clone(), g.energy_j))
            .collect();
        if small.len() < self.groups.len() - self.cap + 1 {
            small = self
                .groups
                .values()
                .filter(|g| {
                    g.kind == GroupKind::Command || (g.kind == GroupKind::Run && g.pids == 0)
                })
                .map(|g| (g.key.clone(), g.energy_j))
                .collect();
        }
        small.sort_by(|a, b| a.1.total_cmp(&b.1));
        let excess = self.groups.len() + 1 - self.cap;
        for (k, _) in small.into_iter().take(excess) {
            if let Some(g) = self.groups.remove(&k) {
                let o = self.group_mut("other", GroupKind::Other);
                o.energy_j += g.energy_j;
                o.cpu_j += g.cpu_j;
                o.ram_j += g.ram_j;
                o.pids += g.pids;
            }
        }
    }

    /// The `n` largest groups (wattprint runs first), largest first.
    pub fn top(&self, n: usize) -> Vec<Group> {
        let mut v: Vec<Group> = self.groups.values().cloned().collect();
        v.sort_by(|a, b| {
            (b.kind == GroupKind::Run)
                .cmp(&(a.kind == GroupKind::Run))
                .then(b.energy_j.total_cmp(&a.energy_j))
        });
        v.truncate(n);
        v
    }

    /// Energy of every group together (equals the energy given to [`update`](Self::update)).
    pub fn total(&self) -> f64 {
        self.groups.values().map(|g| g.energy_j).sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stat_line(pid: u32, comm: &str, utime: u64, stime: u64, start: u64, rss: u64) -> String {
        // Fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime prio nice threads itreal starttime vsize rss
        format!("{pid} ({comm}) S 1 1 1 0 -1 0 0 0 0 0 {utime} {stime} 0 0 20 0 1 0 {start} 1000 {rss}\n")
    }

    struct Fake {
        dir: tempfile::TempDir,
    }
    impl Fake {
        fn new() -> Fake {
            let f = Fake {
                dir: tempfile::tempdir().unwrap(),
            };
            std::fs::write(
                f.dir.path().join("meminfo"),
                "MemTotal: 1000 kB\nMemFree: 0 kB\nMemAvailable: 0 kB\n",
            )
            .unwrap();
            f.busy(0);
            f
        }
        fn busy(&self, b: u64) {
            std::fs::write(
                self.dir.path().join("stat"),
                format!("cpu  {b} 0 0 1000 0 0 0 0 0 0\n"),
            )
            .unwrap();
        }
        fn proc_(
            &self,
            pid: u32,
            comm: &str,
            ticks: u64,
            start: u64,
            rss_pages: u64,
            run: Option<&str>,
        ) {
            let d = self.dir.path().join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("stat"),
                stat_line(pid, comm, ticks, 0, start, rss_pages),
            )
            .unwrap();
            let env = match run {
                Some(r) => format!("PATH=/bin\0WATTPRINT_RUN_ID={r}\0"),
                None => "PATH=/bin\0".into(),
            };
            std::fs::write(d.join("environ"), env).unwrap();
        }
        fn paths(&self) -> HostPaths {
            HostPaths::new(self.dir.path().join("nosys"), self.dir.path())
        }
    }

    #[test]
    fn cpu_energy_follows_ticks_and_runs_are_found() {
        let f = Fake::new();
        f.proc_(10, "python", 100, 5, 0, Some("run-a"));
        f.proc_(11, "python worker", 100, 6, 0, Some("run-a"));
        f.proc_(20, "make", 100, 7, 0, None);
        let mut a = ProcAttribution::new(f.paths(), 16);
        a.update(0.0, 0.0, 0.0); // baseline
                                 // Next interval: busy +100 ticks; run-a used 30 + 30, make 20, 20 unexplained.
        f.busy(100);
        f.proc_(10, "python", 130, 5, 0, Some("run-a"));
        f.proc_(11, "python worker", 130, 6, 0, Some("run-a"));
        f.proc_(20, "make", 120, 7, 0, None);
        a.update(1000.0, 0.0, 50.0);
        let top = a.top(10);
        let get = |k: &str| top.iter().find(|g| g.key == k).unwrap().clone();
        assert!((get("run:run-a").energy_j - 600.0).abs() < 1e-9);
        assert_eq!(get("run:run-a").kind, GroupKind::Run);
        assert_eq!(get("run:run-a").pids, 2);
        assert!((get("cmd:make").energy_j - 200.0).abs() < 1e-9);
        // 200 J of CPU nobody explains + the 50 J of other devices.
        assert!((get("unattributed").energy_j - 250.0).abs() < 1e-9);
        assert!((a.total() - 1050.0).abs() < 1e-9, "energy is conserved");
        assert_eq!(a.runs_active, 1);
        assert_eq!(top[0].key, "run:run-a", "runs first");
        // A pid reused by another process (new start time) starts from zero.
        f.busy(200);
        f.proc_(20, "other", 10, 99, 0, None);
        a.update(100.0, 0.0, 0.0);
        assert!(
            (a.top(10)
                .iter()
                .find(|g| g.key == "cmd:other")
                .unwrap()
                .energy_j
                - 10.0)
                .abs()
                < 1e-9
        );
    }

    #[test]
    fn memory_energy_follows_rss_and_groups_are_bounded() {
        let f = Fake::new();
        let page = procfs::page_size();
        // 1000 kB in use; one process holds a quarter of it.
        f.proc_(10, "big", 0, 1, 250 * 1024 / page, None);
        let mut a = ProcAttribution::new(f.paths(), 4);
        a.update(0.0, 100.0, 0.0);
        let g = a.top(10).into_iter().find(|g| g.key == "cmd:big").unwrap();
        assert!((g.ram_j - 25.0).abs() < 1.0, "{g:?}");
        for pid in 100..110 {
            f.proc_(pid, &format!("p{pid}"), 0, 1, 1, None);
        }
        f.busy(50);
        for pid in 100..110 {
            f.proc_(pid, &format!("p{pid}"), 5, 1, 1, None);
        }
        a.update(100.0, 0.0, 0.0);
        assert!(a.top(100).len() <= 4, "{:?}", a.top(100));
        assert!((a.total() - 200.0).abs() < 1e-9, "folding keeps the energy");
    }
}
