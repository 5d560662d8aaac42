#![allow(clippy::unwrap_used)]
//! procfs parsers on fake /proc trees.

use std::fs;
use std::path::Path;
use wattprint_core::host::HostPaths;
use wattprint_core::procfs::{self, CpuTimes, MemInfo, ProcStat};
use wattprint_core::sensor::SensorError;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// A `/proc/<pid>/stat` line with the given fields (others filled with plausible values).
fn stat_line(pid: u32, comm: &str, ppid: u32, t: [u64; 4], rss: u64) -> String {
    format!(
        "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 1234 0 5 0 {} {} {} {} 20 0 3 0 98765 123456789 {rss} 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 2 0 0 0 0 0",
        t[0], t[1], t[2], t[3]
    )
}

fn fake() -> (tempfile::TempDir, HostPaths) {
    let dir = tempfile::tempdir().unwrap();
    let paths = HostPaths::new(dir.path().join("sys"), dir.path().join("proc"));
    fs::create_dir_all(&paths.proc).unwrap();
    (dir, paths)
}

#[test]
fn cpu_times_and_logical_cpus() {
    let (_d, paths) = fake();
    write(
        &paths.proc,
        "stat",
        "cpu  1000 50 300 8000 200 10 20 30 400 0\ncpu0 500 25 150 4000 100 5 10 15 200 0\ncpu1 500 25 150 4000 100 5 10 15 200 0\nintr 12345\nctxt 999\nbtime 1700000000\n",
    );
    let t = procfs::read_cpu_times(&paths).unwrap();
    // guest (400) is inside user already and must not be added again
    assert_eq!(t.total, 1000 + 50 + 300 + 8000 + 200 + 10 + 20 + 30);
    assert_eq!(t.busy, t.total - 8000 - 200);
    assert_eq!(procfs::logical_cpus(&paths).unwrap(), 2);

    let later = CpuTimes {
        busy: t.busy + 300,
        total: t.total + 400,
    };
    assert!((later.load_since(&t).unwrap() - 0.75).abs() < 1e-12);
}

#[test]
fn missing_stat_is_missing_error() {
    let (_d, paths) = fake();
    let e = procfs::read_cpu_times(&paths).unwrap_err();
    assert!(matches!(e, SensorError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("stat"), "{e}");
}

#[test]
fn meminfo() {
    let (_d, paths) = fake();
    write(
        &paths.proc,
        "meminfo",
        "MemTotal:       16384000 kB\nMemFree:         1000000 kB\nMemAvailable:    4096000 kB\nBuffers:          100 kB\nHugePages_Total:       0\n",
    );
    let m = procfs::read_meminfo(&paths).unwrap();
    assert_eq!(
        m,
        MemInfo {
            total_bytes: 16_384_000 * 1024,
            available_bytes: 4_096_000 * 1024
        }
    );
    assert_eq!(m.used_bytes(), (16_384_000 - 4_096_000) * 1024);

    write(
        &paths.proc,
        "meminfo",
        "MemTotal:       16384000 kB\nMemFree: 5 kB\n",
    );
    let e = procfs::read_meminfo(&paths).unwrap_err();
    assert!(e.to_string().contains("MemAvailable"), "{e}");
    write(
        &paths.proc,
        "meminfo",
        "MemTotal: lots kB\nMemAvailable: 1 kB\n",
    );
    assert!(matches!(
        procfs::read_meminfo(&paths),
        Err(SensorError::Invalid { .. })
    ));
}

#[test]
fn pid_stat_comm_with_spaces_and_parens() {
    let (_d, paths) = fake();
    write(
        &paths.proc,
        "4242/stat",
        &stat_line(4242, "my (weird) proc", 17, [11, 22, 33, 44], 250),
    );
    let st = procfs::read_pid_stat(&paths, 4242).unwrap();
    assert_eq!(
        st,
        ProcStat {
            pid: 4242,
            ppid: 17,
            utime: 11,
            stime: 22,
            cutime: 33,
            cstime: 44,
            rss_pages: 250,
            threads: 3,
            start_ticks: 98765,
        }
    );
    assert_eq!(st.ticks(), 110);
    // a comm made of `) (` confusion: only the last ')' closes it
    write(
        &paths.proc,
        "4243/stat",
        &stat_line(4243, ") S 1 2 3 (", 17, [1, 2, 3, 4], 5),
    );
    let st = procfs::read_pid_stat(&paths, 4243).unwrap();
    assert_eq!((st.ppid, st.utime, st.cstime, st.rss_pages), (17, 1, 4, 5));
}

#[test]
fn malformed_and_vanished_pid_stat() {
    let (_d, paths) = fake();
    write(&paths.proc, "77/stat", "77 (short) S 1 2 3\n");
    let e = procfs::read_pid_stat(&paths, 77).unwrap_err();
    assert!(matches!(e, SensorError::Invalid { .. }), "{e}");
    write(&paths.proc, "79/stat", "79 no parens S 1\n");
    assert!(matches!(
        procfs::read_pid_stat(&paths, 79),
        Err(SensorError::Invalid { .. })
    ));
    write(
        &paths.proc,
        "80/stat",
        "80 (x) S 1 1 1 0 -1 0 0 0 0 0 ten 2 3 4 20 0 1 0 5 6 7\n",
    );
    let e = procfs::read_pid_stat(&paths, 80).unwrap_err();
    assert!(e.to_string().contains("utime"), "{e}");
    assert!(matches!(
        procfs::read_pid_stat(&paths, 999),
        Err(SensorError::Missing { .. })
    ));
}

#[test]
fn process_tree_with_grandchildren() {
    let (_d, paths) = fake();
    let p = &paths.proc;
    write(
        p,
        "1/stat",
        &stat_line(1, "systemd", 0, [1000, 1000, 1000, 1000], 3000),
    );
    write(
        p,
        "100/stat",
        &stat_line(100, "wattprint run", 1, [10, 20, 30, 40], 100),
    );
    write(
        p,
        "101/stat",
        &stat_line(101, "my (weird) proc", 100, [1, 2, 3, 4], 200),
    );
    write(
        p,
        "102/stat",
        &stat_line(102, "python train.py", 101, [100, 200, 0, 0], 300),
    );
    write(
        p,
        "103/stat",
        &stat_line(103, "dataloader 0", 102, [5, 5, 0, 0], 400),
    );
    write(p, "104/stat", &stat_line(104, "sh", 100, [7, 0, 0, 0], 10));
    write(
        p,
        "200/stat",
        &stat_line(200, "unrelated", 1, [9999, 9999, 0, 0], 5000),
    );
    write(
        p,
        "201/stat",
        &stat_line(201, "unrelated child", 200, [9999, 0, 0, 0], 5000),
    );
    // a pid listed but gone by the time it is read: a directory without stat
    fs::create_dir_all(p.join("105")).unwrap();
    // non-pid entries are ignored
    write(p, "self/stat", "garbage");
    write(p, "meminfo", "MemTotal: 1 kB\n");

    let u = procfs::process_tree_usage(&paths, 100).unwrap();
    assert_eq!(u.pids, vec![100, 101, 102, 103, 104]);
    assert_eq!(
        u.ticks,
        (10 + 20 + 30 + 40) + (1 + 2 + 3 + 4) + 300 + 10 + 7
    );
    assert_eq!(
        u.rss_bytes,
        (100 + 200 + 300 + 400 + 10) * procfs::page_size()
    );

    // a subtree root
    let u = procfs::process_tree_usage(&paths, 102).unwrap();
    assert_eq!(u.pids, vec![102, 103]);
    assert_eq!(u.ticks, 310);

    // the root itself gone
    let e = procfs::process_tree_usage(&paths, 105).unwrap_err();
    assert!(matches!(e, SensorError::Missing { .. }), "{e}");

    // a malformed stat anywhere is reported, not skipped
    write(p, "300/stat", "300 (broken");
    let e = procfs::process_tree_usage(&paths, 100).unwrap_err();
    assert!(matches!(e, SensorError::Invalid { .. }), "{e}");
}

#[test]
fn sysconf_values_are_sane() {
    let hz = procfs::clock_ticks_per_second();
    assert!((10..=10_000).contains(&hz), "{hz}");
    let page = procfs::page_size();
    assert!(page >= 4096 && page.is_power_of_two(), "{page}");
}

#[test]
fn real_proc_self_if_present() {
    // On Linux, our own process tree must contain us.
    let paths = HostPaths::default();
    if !Path::new("/proc/self/stat").exists() {
        return;
    }
    let me = std::process::id();
    let u = procfs::process_tree_usage(&paths, me).unwrap();
    assert!(u.pids.contains(&me));
    assert!(u.rss_bytes > 0);
}

#[test]
fn tree_scanner_finds_newcomers_and_skips_known_outsiders() {
    let (_d, paths) = fake();
    let root = &paths.proc;
    write(
        root,
        "100/stat",
        &stat_line(100, "job", 1, [10, 0, 0, 0], 1),
    );
    write(
        root,
        "200/stat",
        &stat_line(200, "other", 1, [500, 0, 0, 0], 1),
    );
    let mut sc = wattprint_core::procfs::TreeScanner::default();
    let u = sc.usage(&paths, 100).unwrap();
    assert_eq!(u.pids, vec![100]);
    assert_eq!(u.ticks, 10);
    // a child of the job appears, and the outsider's stat becomes unreadable garbage: the
    // outsider is not read again (it is known not to be ours), the newcomer is found
    write(
        root,
        "101/stat",
        &stat_line(101, "worker", 100, [7, 0, 0, 0], 1),
    );
    write(root, "200/stat", "garbage");
    let u = sc.usage(&paths, 100).unwrap();
    assert_eq!(u.pids, vec![100, 101]);
    assert_eq!(u.ticks, 17);
    // the stateless scan reads everything, and so reports the garbage
    assert!(wattprint_core::procfs::process_tree_usage(&paths, 100).is_err());
}

#[test]
fn forest_scanner_measures_several_trees_in_one_scan() {
    let (_d, paths) = fake();
    let p = &paths.proc;
    write(p, "1/stat", &stat_line(1, "init", 0, [1, 1, 0, 0], 1));
    write(p, "10/stat", &stat_line(10, "run a", 1, [10, 0, 0, 0], 100));
    write(
        p,
        "11/stat",
        &stat_line(11, "a child", 10, [5, 5, 0, 0], 50),
    );
    write(p, "20/stat", &stat_line(20, "run b", 1, [7, 0, 0, 0], 10));
    write(
        p,
        "21/stat",
        &stat_line(21, "b child", 20, [0, 3, 0, 0], 10),
    );
    write(
        p,
        "30/stat",
        &stat_line(30, "other", 1, [999, 0, 0, 0], 999),
    );
    let mut s = procfs::ForestScanner::default();
    let page = procfs::page_size();
    let u = s.usage(&paths, &[10, 20, 99, 0], None).unwrap();
    let a = u[0].as_ref().unwrap();
    assert_eq!(
        (a.pids.clone(), a.ticks, a.rss_bytes),
        (vec![10, 11], 20, 150 * page)
    );
    let b = u[1].as_ref().unwrap();
    assert_eq!((b.pids.clone(), b.ticks), (vec![20, 21], 10));
    assert!(u[2].is_none() && u[3].is_none(), "a gone root, no root yet");
    // A new descendant appears in the next scan; the process outside every tree is skipped.
    write(
        p,
        "12/stat",
        &stat_line(12, "a grandchild", 11, [4, 0, 0, 0], 1),
    );
    let u = s.usage(&paths, &[10, 20, 99, 0], None).unwrap();
    assert_eq!(u[0].as_ref().unwrap().pids, vec![10, 11, 12]);
    assert_eq!(u[0].as_ref().unwrap().ticks, 24);
    // A new set of roots starts afresh: a root that was "outside" before is found.
    let u = s.usage(&paths, &[30], None).unwrap();
    assert_eq!(u[0].as_ref().unwrap().ticks, 999);
}

/// A single-threaded process in a fake procfs, with its `children` file.
fn proc1(p: &Path, pid: u32, ppid: u32, utime: u64, kids: &[u32]) {
    let line = stat_line(pid, "p", ppid, [utime, 0, 0, 0], 1).replace(" 20 0 3 0 ", " 20 0 1 0 ");
    write(p, &format!("{pid}/stat"), &line);
    let list: String = kids.iter().map(|k| format!("{k} ")).collect();
    write(p, &format!("{pid}/task/{pid}/children"), &list);
}

#[test]
fn forest_scans_take_the_cheapest_way_and_agree() {
    use procfs::ScanWay::*;
    let (_d, paths) = fake();
    let p = &paths.proc;
    proc1(p, 1, 0, 1, &[10, 20, 30]);
    proc1(p, 10, 1, 10, &[11]);
    proc1(p, 11, 10, 5, &[12]);
    proc1(p, 12, 11, 4, &[]);
    proc1(p, 20, 1, 7, &[]);
    proc1(p, 30, 1, 999, &[]);
    let pids = |u: &[Option<procfs::TreeUsage>]| -> Vec<Option<Vec<u32>>> {
        u.iter()
            .map(|t| t.as_ref().map(|t| t.pids.clone()))
            .collect()
    };
    let mut s = procfs::ForestScanner::default();
    let (u, way) = s.usage_how(&paths, &[10, 20, 99], Some(5)).unwrap();
    assert_eq!(way, Children);
    assert_eq!(pids(&u), vec![Some(vec![10, 11, 12]), Some(vec![20]), None]);
    assert_eq!(u[0].as_ref().unwrap().ticks, 19);
    // The listing finds the same trees.
    let mut listing = procfs::ForestScanner::default();
    let lu = listing.usage(&paths, &[10, 20, 99], None).unwrap();
    assert_eq!(pids(&lu), pids(&u));
    // Nothing forked: the members are read again, their times follow.
    proc1(p, 11, 10, 50, &[12]);
    let (u, way) = s.usage_how(&paths, &[10, 20, 99], Some(5)).unwrap();
    assert_eq!(way, Unchanged);
    assert_eq!(u[0].as_ref().unwrap().ticks, 64);
    // A member that ended leaves its tree without a new walk.
    std::fs::remove_dir_all(p.join("20")).unwrap();
    let (u, way) = s.usage_how(&paths, &[10, 20, 99], Some(5)).unwrap();
    assert_eq!(way, Unchanged);
    assert_eq!(pids(&u), vec![Some(vec![10, 11, 12]), None, None]);
    // 11 exits, 12 is re-parented to init: no fork, but the tree changed shape.
    std::fs::remove_dir_all(p.join("11")).unwrap();
    proc1(p, 12, 1, 4, &[]);
    proc1(p, 1, 0, 1, &[10, 12, 30]);
    proc1(p, 10, 1, 10, &[]);
    let (u, way) = s.usage_how(&paths, &[10, 20, 99], Some(5)).unwrap();
    assert_eq!(way, Children);
    assert_eq!(pids(&u), vec![Some(vec![10]), None, None]);
    // A fork: the new child is found.
    proc1(p, 10, 1, 10, &[13]);
    proc1(p, 13, 10, 2, &[]);
    let (u, way) = s.usage_how(&paths, &[10, 20, 99], Some(6)).unwrap();
    assert_eq!((pids(&u)[0].clone(), way), (Some(vec![10, 13]), Children));
    // Without a fork counter, never "unchanged".
    let (_, way) = s.usage_how(&paths, &[10, 20, 99], None).unwrap();
    assert_eq!(way, Children);
    // A multi-threaded member: its children are spread over its threads' files; listed.
    let threaded = stat_line(13, "t", 10, [2, 0, 0, 0], 1);
    write(p, "13/stat", &threaded);
    let (u, way) = s.usage_how(&paths, &[10, 20, 99], Some(7)).unwrap();
    assert_eq!((pids(&u)[0].clone(), way), (Some(vec![10, 13]), Listing));
}

#[test]
fn forest_scans_list_proc_where_there_are_no_children_files() {
    let (_d, paths) = fake();
    let p = &paths.proc;
    proc1(p, 10, 1, 10, &[11]);
    proc1(p, 11, 10, 5, &[]);
    std::fs::remove_file(p.join("10/task/10/children")).unwrap();
    let mut s = procfs::ForestScanner::default();
    let (u, way) = s.usage_how(&paths, &[10], Some(1)).unwrap();
    assert_eq!(way, procfs::ScanWay::Listing);
    assert_eq!(u[0].as_ref().unwrap().pids, vec![10, 11]);
    // and it is remembered: no walk is tried again
    let (_, way) = s.usage_how(&paths, &[10], Some(2)).unwrap();
    assert_eq!(way, procfs::ScanWay::Listing);
    // a fake tree without any task directory: listed too, its child found
    std::fs::remove_dir_all(p.join("10/task")).unwrap();
    let (u, way) = procfs::ForestScanner::default()
        .usage_how(&paths, &[10], Some(3))
        .unwrap();
    assert_eq!(way, procfs::ScanWay::Listing);
    assert_eq!(u[0].as_ref().unwrap().pids, vec![10, 11]);
}

#[test]
fn forest_scans_of_real_processes_agree_with_the_listing() {
    let mut child = std::process::Command::new("sh")
        .args(["-c", "sleep 30 & sleep 30 & wait"])
        .spawn()
        .unwrap();
    let root = child.id();
    let paths = HostPaths::default();
    // Wait (bounded) until both sleeps are there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut listing = procfs::ForestScanner::default();
    loop {
        let u = listing.usage(&paths, &[root], None).unwrap();
        if u[0].as_ref().is_some_and(|t| t.pids.len() == 3) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the shell's children never showed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let forks = procfs::read_cpu_times_and_forks(&paths).unwrap().1;
    assert!(forks.is_some(), "a real /proc/stat has a fork counter");
    let mut s = procfs::ForestScanner::default();
    let (u, way) = s.usage_how(&paths, &[root], forks).unwrap();
    assert_eq!(way, procfs::ScanWay::Children);
    let lu = procfs::ForestScanner::default()
        .usage(&paths, &[root], None)
        .unwrap();
    assert_eq!(u[0].as_ref().unwrap().pids, lu[0].as_ref().unwrap().pids);
    let _ = std::process::Command::new("pkill")
        .args(["-P", &root.to_string()])
        .status();
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn one_look_reads_the_machine_files_once() {
    let (_d, paths) = fake();
    let stat = |busy: u64| format!("cpu  {busy} 0 0 1000 0 0 0 0 0 0\nprocesses 7\n");
    write(&paths.proc, "stat", &stat(10));
    let (a, b) = procfs::one_look(|| {
        let a = procfs::read_cpu_times(&paths).unwrap();
        write(&paths.proc, "stat", &stat(20));
        (a, procfs::read_cpu_times_and_forks(&paths).unwrap())
    });
    assert_eq!(
        (a.busy, b.0.busy, b.1),
        (10, 10, Some(7)),
        "one read within the look"
    );
    assert_eq!(
        procfs::read_cpu_times(&paths).unwrap().busy,
        20,
        "fresh outside it"
    );
    // nested looks share the outer one; a panic inside still ends it
    let r = std::panic::catch_unwind(|| procfs::one_look(|| procfs::one_look(|| panic!("x"))));
    assert!(r.is_err());
    write(&paths.proc, "stat", &stat(30));
    assert_eq!(procfs::read_cpu_times(&paths).unwrap().busy, 30);
}
