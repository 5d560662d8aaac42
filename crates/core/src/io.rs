//! I/O of a run: bytes its process tree read and wrote (`<proc>/<pid>/io`), and the host's
//! network bytes (`<proc>/net/dev`, labelled host-level: not attributable to the run), with
//! the energy of the network transfer from Cloud Carbon Footprint's coefficient.
//!
//! `/proc/<pid>/io` counts the process's own I/O (all its threads, live and ended) and, once it
//! has reaped a child, the child's (the kernel adds a reaped child's counters, its own reaped
//! descendants' included, to its parent's). So the tree's I/O is the sum over its live
//! processes; a process that left the tree is added apart only when no counter read later
//! holds its I/O: it left alive (re-parented to init or a subreaper, which will reap it outside
//! the tree), or it ended with no ancestor left in the tree (the root, reaped by wattprint):
//! what it had done by the last read is kept. The tree is read periodically (the session: every sampling interval, 1 s to
//! 5 s, or every checkpoint for a quiet run) and once more when the job has exited; a process
//! re-parented and ended between two reads is missed (the figures are a lower bound).
//! Every path is rooted at [`HostPaths::proc`] (`WATTPRINT_PROCFS_ROOT`). Sources:
//! docs/pipeline.md.

use crate::host::HostPaths;
use crate::procfs::ForestScanner;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Cloud Carbon Footprint's networking coefficient, kWh per GB (10^9 bytes) transferred
/// (`NETWORKING_COEFFICIENT`, cloud-carbon-footprint @ b7a049c, 2021–2022, Apache-2.0; CCF
/// applies it to data moved between data centres only).
pub const NETWORK_KWH_PER_GB: f64 = 0.001;

/// Most processes whose figures are kept individually; the figures of processes that left the
/// tree are folded into a sum, so memory stays bounded by the live tree.
pub const MAX_TRACKED_PIDS: usize = 65_536;

/// Counters of one process (`proc(5)`, `/proc/<pid>/io`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PidIo {
    /// Bytes passed to read()-like calls (files, pipes, sockets; page-cache hits included).
    pub rchar: u64,
    pub wchar: u64,
    /// Bytes fetched from, or sent to, the storage layer.
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Bytes written then truncated away before reaching storage.
    pub cancelled_write_bytes: u64,
}

impl PidIo {
    fn add(&mut self, o: &PidIo) {
        self.rchar = self.rchar.saturating_add(o.rchar);
        self.wchar = self.wchar.saturating_add(o.wchar);
        self.read_bytes = self.read_bytes.saturating_add(o.read_bytes);
        self.write_bytes = self.write_bytes.saturating_add(o.write_bytes);
        self.cancelled_write_bytes = self
            .cancelled_write_bytes
            .saturating_add(o.cancelled_write_bytes);
    }
    fn max(&mut self, o: &PidIo) {
        self.rchar = self.rchar.max(o.rchar);
        self.wchar = self.wchar.max(o.wchar);
        self.read_bytes = self.read_bytes.max(o.read_bytes);
        self.write_bytes = self.write_bytes.max(o.write_bytes);
        self.cancelled_write_bytes = self.cancelled_write_bytes.max(o.cancelled_write_bytes);
    }
}

/// `/proc/<pid>/io`; `None` when a field is missing or not a number.
pub fn parse_pid_io(text: &str) -> Option<PidIo> {
    let mut io = PidIo::default();
    let mut found = 0;
    for line in text.lines().take(64) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let slot = match k.trim() {
            "rchar" => &mut io.rchar,
            "wchar" => &mut io.wchar,
            "read_bytes" => &mut io.read_bytes,
            "write_bytes" => &mut io.write_bytes,
            "cancelled_write_bytes" => &mut io.cancelled_write_bytes,
            _ => continue,
        };
        *slot = v.trim().parse().ok()?;
        found += 1;
    }
    (found == 5).then_some(io)
}

/// Received and transmitted bytes over every interface but loopback (`/proc/net/dev`).
pub fn parse_net_dev(text: &str) -> Option<(u64, u64)> {
    let mut rx: u64 = 0;
    let mut tx: u64 = 0;
    let mut any = false;
    for line in text.lines().skip(2).take(4096) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 9 {
            return None;
        }
        rx = rx.saturating_add(f[0].parse().ok()?);
        tx = tx.saturating_add(f[8].parse().ok()?);
        any = true;
    }
    any.then_some((rx, tx))
}

/// The host's network bytes now.
pub fn read_net_dev(paths: &HostPaths) -> Option<(u64, u64)> {
    parse_net_dev(&std::fs::read_to_string(paths.proc_file("net/dev")).ok()?)
}

/// Follows one process tree's I/O over a run.
#[derive(Debug, Default)]
pub struct IoTracker {
    scanner: ForestScanner,
    /// The tree's processes at the last read: their start time (their identity with the pid),
    /// their parent and their counters, kept at their highest.
    live: HashMap<u32, Tracked>,
    /// Processes that left the tree alive, as last read (back in the tree if they reappear).
    left: HashMap<u32, Tracked>,
    /// What processes that left the tree alive had done, once there are too many to keep
    /// apart.
    retired: PidIo,
    seen: u64,
    unreadable: u64,
}

impl IoTracker {
    /// Read the tree of `root` now: every process's counters (kept at their highest).
    pub fn sample(&mut self, paths: &HostPaths, root: u32) {
        // The kernel's children lists when it has them (a few small reads for a small tree),
        // else one scan of every process's stat.
        // The host ledger's tree scanner: the kernel's children lists for a small
        // single-threaded tree, else one listing of every process.
        let pids = match self.scanner.usage(paths, &[root], None) {
            Ok(mut u) => u.pop().flatten().map(|t| t.pids),
            Err(_) => None,
        }
        // The root alone (a zombie's stat may still be there; its io too).
        .unwrap_or_else(|| vec![root]);
        let mut now: HashMap<u32, Tracked> = HashMap::with_capacity(pids.len());
        for pid in pids.into_iter().take(MAX_TRACKED_PIDS) {
            match crate::kernel_file::read_small(&paths.proc_file(format!("{pid}/io")))
                .ok()
                .and_then(|t| parse_pid_io(&t))
            {
                Some(io) => {
                    let who = || identity(paths, pid);
                    let mut v = match self.live.remove(&pid) {
                        Some(v) => v,
                        None => match self.left.remove(&pid) {
                            // Missed by one read, or back: the same process, not a new one.
                            Some(v) if who().map(|w| w.0) == Some(v.start) => v,
                            _ => {
                                self.seen += 1;
                                let (start, ppid) = who().unwrap_or((0, 0));
                                Tracked {
                                    start,
                                    ppid,
                                    io: PidIo::default(),
                                }
                            }
                        },
                    };
                    v.io.max(&io);
                    now.insert(pid, v);
                }
                None => {
                    if !self.live.contains_key(&pid) {
                        self.unreadable += 1;
                    }
                }
            }
        }
        // Gone from the tree since the last read:
        // - alive outside it (re-parented, to be reaped outside): what it did is kept;
        // - ended, with an ancestor read now: the ancestor reaped it (or its reaper was
        //   reaped into it) and its counters hold its I/O: nothing to add;
        // - ended with no ancestor left (the root, or a subtree that ended in the same
        //   interval): its last figures are kept, since no counter read later holds them.
        let gone: Vec<u32> = self.live.keys().copied().collect();
        for pid in gone {
            let Some(t) = self.live.get(&pid).copied() else {
                continue;
            };
            let alive = t.start != 0 && identity(paths, pid).map(|w| w.0) == Some(t.start);
            if alive {
                if self.left.len() >= MAX_TRACKED_PIDS {
                    for (_, w) in self.left.drain() {
                        self.retired.add(&w.io);
                    }
                }
                self.left.insert(pid, t);
            } else if !self.ancestor_read_now(t.ppid, &now) {
                self.retired.add(&t.io);
            }
        }
        self.live = now;
    }

    /// Whether `ppid` or one of its ancestors as last seen is among the processes read now.
    fn ancestor_read_now(&self, mut ppid: u32, now: &HashMap<u32, Tracked>) -> bool {
        for _ in 0..MAX_TRACKED_PIDS {
            if now.contains_key(&ppid) {
                return true;
            }
            match self.live.get(&ppid) {
                Some(t) if t.ppid != ppid => ppid = t.ppid,
                _ => return false,
            }
        }
        false
    }

    /// The tree's totals so far, the processes counted and those whose io was unreadable.
    pub fn totals(&self) -> (PidIo, u64, u64) {
        let mut t = self.retired;
        for v in self.live.values().chain(self.left.values()) {
            t.add(&v.io);
        }
        (t, self.seen, self.unreadable)
    }
}

/// When `pid` started (clock ticks after boot: with the pid, its identity) and its parent, if
/// it is alive.
fn identity(paths: &HostPaths, pid: u32) -> Option<(u64, u32)> {
    crate::procfs::read_pid_stat(paths, pid)
        .ok()
        .map(|s| (s.start_ticks, s.ppid))
}

/// A process of the tree as last read.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    start: u64,
    ppid: u32,
    io: PidIo,
}

/// A run's I/O, for the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IoRecord {
    /// Bytes the process tree read and wrote through the storage layer.
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Bytes passed to read/write calls (files, pipes, sockets, page cache).
    pub rchar: u64,
    pub wchar: u64,
    /// Processes whose counters were read, and those whose `io` file could not be.
    pub processes: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unreadable: u64,
    /// How the figures were gathered, and what they miss.
    pub source: String,
    /// The host's network traffic over the run (`None`: its counters were unreadable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkIo>,
    /// Why the energy of storage I/O is not counted.
    pub storage_energy: String,
}

impl IoRecord {
    /// Bounds of the figures a server accepts.
    pub fn check(&self) -> Result<(), crate::validate::ValidationError> {
        use crate::validate::{check_range, check_text, MAX_EMISSIONS_KG, MAX_ENERGY_KWH};
        check_text("io.source", &self.source, 1000)?;
        check_text("io.storage_energy", &self.storage_energy, 1000)?;
        if let Some(n) = &self.network {
            check_range(
                "io.network.energy_kwh",
                n.energy_kwh,
                MAX_ENERGY_KWH,
                "one host",
            )?;
            check_range(
                "io.network.emissions_kg",
                n.emissions_kg,
                MAX_EMISSIONS_KG,
                "one host",
            )?;
            check_range(
                "io.network.kwh_per_gb",
                n.kwh_per_gb,
                1.0,
                "a per-GB coefficient",
            )?;
            check_text("io.network.scope", &n.scope, 100)?;
            check_text("io.network.source", &n.source, 1000)?;
        }
        Ok(())
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Network bytes and the energy of moving them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkIo {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// `host`: every interface of the machine but loopback, not only the run's traffic.
    pub scope: String,
    /// (rx + tx) GB × the coefficient, kWh.
    pub energy_kwh: f64,
    /// × the run's PUE and carbon intensity, kg CO2e.
    pub emissions_kg: f64,
    pub kwh_per_gb: f64,
    pub source: String,
}

/// The record's I/O from the tracker and the host's network counters at start and end.
pub fn io_record(
    t: &IoTracker,
    net_start: Option<(u64, u64)>,
    net_end: Option<(u64, u64)>,
    pue: f64,
    g_per_kwh: f64,
) -> IoRecord {
    let (io, processes, unreadable) = t.totals();
    let network = match (net_start, net_end) {
        (Some((r0, t0)), Some((r1, t1))) if r1 >= r0 && t1 >= t0 => {
            let (rx, tx) = (r1 - r0, t1 - t0);
            let kwh = (rx + tx) as f64 / 1e9 * NETWORK_KWH_PER_GB;
            Some(NetworkIo {
                rx_bytes: rx,
                tx_bytes: tx,
                scope: "host".into(),
                energy_kwh: crate::units::round_sig(kwh, crate::units::RECORD_DIGITS),
                emissions_kg: crate::units::round_sig(
                    kwh * pue * g_per_kwh / 1000.0,
                    crate::units::RECORD_DIGITS,
                ),
                kwh_per_gb: NETWORK_KWH_PER_GB,
                source: "Cloud Carbon Footprint NETWORKING_COEFFICIENT 0.001 kWh/GB (2021-2022, \
                         Apache-2.0), for traffic between data centres; host-level bytes: not \
                         attributable to this run alone"
                    .into(),
            })
        }
        _ => None,
    };
    IoRecord {
        read_bytes: io.read_bytes,
        write_bytes: io.write_bytes,
        rchar: io.rchar,
        wchar: io.wchar,
        processes,
        unreadable,
        source: "/proc/<pid>/io of the job's process tree (a reaped child's I/O is its \
                 parent's), read every sampling interval (1 to 5 s) or checkpoint (a quiet run) \
                 and at the job's exit: a process re-parented out of the tree and ended between \
                 two reads is missed (a lower bound)"
            .into(),
        network,
        storage_energy: "not counted: no per-byte coefficient for storage I/O is published; \
                         stored data is counted per TB-hour by `wattprint storage scan`"
            .into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn io_text(r: u64, w: u64) -> String {
        format!(
            "rchar: {r}\nwchar: {w}\nsyscr: 1\nsyscw: 1\nread_bytes: {}\nwrite_bytes: {}\ncancelled_write_bytes: 0\n",
            r / 2,
            w / 2
        )
    }

    fn stat(pid: u32, ppid: u32) -> String {
        format!("{pid} (job) S {ppid} {pid} {pid} 0 -1 4194304 0 0 0 0 1 1 0 0 20 0 1 0 100 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0")
    }

    #[test]
    fn a_fake_process_tree_over_time() {
        let d = tempfile::tempdir().unwrap();
        let paths = HostPaths {
            sys: d.path().join("sys"),
            proc: d.path().join("proc"),
        };
        let put = |pid: u32, ppid: u32, r: u64, w: u64| {
            let p = paths.proc.join(pid.to_string());
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("stat"), stat(pid, ppid)).unwrap();
            std::fs::write(p.join("io"), io_text(r, w)).unwrap();
        };
        put(100, 1, 1000, 2000);
        put(101, 100, 500, 0);
        put(200, 1, 9999, 9999); // not in the tree
        let mut t = IoTracker::default();
        t.sample(&paths, 100);
        // the child grows, then exits and is reaped by the root: the kernel adds its counters
        // (800, 100) to the root's, which also did 1200 bytes of reads itself
        put(101, 100, 800, 100);
        t.sample(&paths, 100);
        std::fs::remove_dir_all(paths.proc.join("101")).unwrap();
        put(100, 1, 3000, 2100);
        t.sample(&paths, 100);
        let (io, seen, bad) = t.totals();
        assert_eq!(
            (io.rchar, io.wchar),
            (3000, 2100),
            "the reaped child counted once"
        );
        // the root itself is reaped by wattprint, outside the tree: its figures stay
        let mut after = IoTracker::default();
        after.sample(&paths, 100);
        std::fs::remove_dir_all(paths.proc.join("100")).unwrap();
        after.sample(&paths, 100);
        assert_eq!(after.totals().0.wchar, 2100);
        put(100, 1, 3000, 2100);
        // without children lists (this fake tree has none) the stat scan is used
        let tree = |r: u32| {
            let (mut u, way) = ForestScanner::default()
                .usage_how(&paths, &[r], None)
                .unwrap();
            (u.pop().flatten().map(|t| t.pids), way)
        };
        assert_eq!(
            tree(100),
            (Some(vec![100]), crate::procfs::ScanWay::Listing)
        );
        let task = paths.proc.join("100/task/100");
        std::fs::create_dir_all(&task).unwrap();
        std::fs::write(task.join("children"), "").unwrap();
        assert_eq!(
            tree(100),
            (Some(vec![100]), crate::procfs::ScanWay::Children)
        );
        assert_eq!(tree(4242).0, None);
        assert_eq!((io.read_bytes, io.write_bytes), (1500, 1050));
        assert_eq!((seen, bad), (2, 0));
        std::fs::create_dir_all(paths.proc.join("net")).unwrap();
        let dev = |rx: u64, tx: u64| {
            format!("Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets\n    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n  eth0: {rx} 1 0 0 0 0 0 0 {tx} 1 0 0 0 0 0 0\n")
        };
        std::fs::write(paths.proc.join("net/dev"), dev(1000, 2000)).unwrap();
        let a = read_net_dev(&paths);
        std::fs::write(paths.proc.join("net/dev"), dev(1_000_001_000, 2000)).unwrap();
        let b = read_net_dev(&paths);
        let rec = io_record(&t, a, b, 1.5, 400.0);
        let n = rec.network.unwrap();
        assert_eq!(
            (n.rx_bytes, n.tx_bytes, n.scope.as_str()),
            (1_000_000_000, 0, "host")
        );
        assert_eq!(n.energy_kwh, 0.001);
        assert_eq!(n.emissions_kg, 0.0006);
        // counters that went backwards (a reset): no figure rather than a wrong one
        assert!(io_record(&t, b, a, 1.0, 1.0).network.is_none());
        assert!(parse_pid_io("rchar: 1\n").is_none());
    }

    #[test]
    fn a_process_that_leaves_the_tree_alive_keeps_what_it_did() {
        let d = tempfile::tempdir().unwrap();
        let paths = HostPaths {
            sys: d.path().join("sys"),
            proc: d.path().join("proc"),
        };
        let put = |pid: u32, ppid: u32, r: u64| {
            let p = paths.proc.join(pid.to_string());
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("stat"), stat(pid, ppid)).unwrap();
            std::fs::write(p.join("io"), io_text(r, 0)).unwrap();
        };
        // The kernel's children lists, as the session reads them.
        let kids = |pid: u32, list: &str| {
            let t = paths.proc.join(format!("{pid}/task/{pid}"));
            std::fs::create_dir_all(&t).unwrap();
            std::fs::write(t.join("children"), list).unwrap();
        };
        put(100, 1, 1000);
        put(101, 100, 500);
        kids(100, "101 ");
        kids(101, "");
        let mut t = IoTracker::default();
        t.sample(&paths, 100);
        assert_eq!(t.totals().0.rchar, 1500);
        // A read that misses 101 (still the root's, alive): it is not lost, and when seen
        // again it is the same process, not a new one counted twice.
        kids(100, "");
        t.sample(&paths, 100);
        assert_eq!(t.totals().0.rchar, 1500);
        kids(100, "101 ");
        put(101, 100, 900);
        t.sample(&paths, 100);
        assert_eq!(t.totals().0.rchar, 1900);
        // Re-parented to init, it goes on outside the tree: what it did inside is kept.
        kids(100, "");
        put(101, 1, 1200);
        t.sample(&paths, 100);
        assert_eq!(t.totals().0.rchar, 1900);
        // Reaped outside (gone): still kept, once.
        std::fs::remove_dir_all(paths.proc.join("101")).unwrap();
        t.sample(&paths, 100);
        assert_eq!(t.totals().0.rchar, 1900);
        assert_eq!(t.totals().1, 2, "two processes seen");
    }

    #[test]
    fn real_children_reaped_by_the_job_are_counted_once() {
        // A shell that runs two writers one after the other, each reaped before the next.
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "head -c 3000000 /dev/zero >/dev/null; head -c 4000000 /dev/zero >/dev/null; sleep 2",
            ])
            .spawn()
            .unwrap();
        let paths = HostPaths::default();
        let mut t = IoTracker::default();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        // Sample as often as possible while the writers run, so that each is likely seen
        // alive before it is reaped (the double count this guards against).
        loop {
            t.sample(&paths, child.id());
            if t.totals().0.wchar >= 7_000_000 || std::time::Instant::now() > deadline {
                break;
            }
        }
        for _ in 0..20 {
            t.sample(&paths, child.id());
        }
        let w = t.totals().0.wchar;
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            (7_000_000..7_100_000).contains(&w),
            "7 MB written in all, counted {w} bytes"
        );
    }
}
