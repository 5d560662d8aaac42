#![allow(clippy::unwrap_used)]
//! Signals reach the job once: `wattprint run` puts the job in its own process group, forwards
//! what wattprint itself receives, and hands a terminal to the job. The jobs here count their
//! SIGINT handler calls; each signal is sent only once the previous one was counted, so no two
//! are ever pending together (which would merge them and hide a duplicate).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::FakeHost;

/// A job that counts its SIGINTs into `count`, notes its process group, the group of its
/// parent (wattprint) and the terminal's foreground group, and ends when `stop` exists (or after
/// about a minute, so that a failed test leaves nothing running).
fn counting_job(dir: &Path, read_first: bool) -> String {
    let p = |n: &str| dir.join(n).display().to_string();
    format!(
        "n=0; trap 'n=$((n+1)); echo $n > {count}' INT; \
         set -- $(cat /proc/$$/stat); echo \"$5 $(cut -d' ' -f5 /proc/$PPID/stat) $8\" > {groups}; \
         touch {started}; {read} \
         i=0; while [ ! -f {stop} ] && [ $i -lt 3000 ]; do sleep 0.02; i=$((i+1)); done; \
         echo $n > {fin}",
        count = p("count"),
        groups = p("groups"),
        started = p("started"),
        stop = p("stop"),
        fin = p("final"),
        read = if read_first {
            format!("read x; echo \"$x\" > {};", p("read"))
        } else {
            String::new()
        },
    )
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool, child: &mut Child) {
    let t = Instant::now();
    while !cond() {
        if t.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn count(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join("count"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_string()
}

fn sigint(pid: i32) {
    // SAFETY: kill(2) on a process (group) this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
}

#[test]
fn sigint_to_wattprints_group_or_to_wattprint_reaches_the_job_once_each() {
    let h = FakeHost::new();
    let d = h.dir.path().to_path_buf();
    let mut wp = h
        .cmd()
        .args(["run", "--quiet", "--interval", "50ms", "--", "sh", "-c"])
        .arg(counting_job(&d, false))
        .process_group(0) // as a shell job: wattprint leads the group the test signals
        .spawn()
        .unwrap();
    let pid = wp.id() as i32;
    wait_for("the job", || d.join("started").exists(), &mut wp);
    // the job is in a group of its own, not wattprint's
    let groups = read(d.join("groups"));
    let g: Vec<&str> = groups.split(' ').collect();
    assert_eq!(g[1], pid.to_string(), "{groups}");
    assert_ne!(
        g[0], g[1],
        "the job shares wattprint's process group: {groups}"
    );

    // 1. to the whole group wattprint runs in (kill -INT -PGID, as a terminal or `timeout` do)
    sigint(-pid);
    wait_for("the first SIGINT", || count(&d) >= 1, &mut wp);
    // 2. to wattprint alone
    sigint(pid);
    wait_for("the second SIGINT", || count(&d) >= 2, &mut wp);
    std::fs::write(d.join("stop"), "").unwrap();
    let st = wp.wait().unwrap();
    assert_eq!(st.code(), Some(0));
    assert_eq!(read(d.join("final")), "2", "the job counted a signal twice");
}

#[test]
fn on_a_terminal_the_job_holds_it_and_ctrl_c_reaches_it_once() {
    // util-linux `script` runs wattprint on a pseudo-terminal whose input is our pipe: a byte
    // 0x03 written there is the terminal's Ctrl-C, sent to the terminal's foreground group.
    let h = FakeHost::new();
    let d = h.dir.path().to_path_buf();
    let job = counting_job(&d, true);
    let inner = format!(
        "WATTPRINT_SYSFS_ROOT={} WATTPRINT_PROCFS_ROOT={} WATTPRINT_HOME={} {} run --quiet --interval 50ms -- sh -c \"$JOB\"",
        h.sys().display(),
        h.proc().display(),
        h.home().display(),
        common::bin().display()
    );
    let mut sc = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &inner, "/dev/null"])
        .env("JOB", &job)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("util-linux `script` is needed for the terminal test");
    let mut tty_in = sc.stdin.take().unwrap();
    wait_for("the job", || d.join("started").exists(), &mut sc);
    // the job reads the terminal (a job outside the foreground group would be stopped instead)
    tty_in.write_all(b"hello\n").unwrap();
    tty_in.flush().unwrap();
    wait_for(
        "the job to read the terminal",
        || d.join("read").exists(),
        &mut sc,
    );
    assert_eq!(read(d.join("read")), "hello");
    let groups = read(d.join("groups"));
    let g: Vec<&str> = groups.split(' ').collect();
    assert_ne!(g[0], g[1], "{groups}");
    assert_eq!(
        g[0], g[2],
        "the job's group is not the terminal's foreground: {groups}"
    );

    tty_in.write_all(b"\x03").unwrap();
    tty_in.flush().unwrap();
    wait_for("Ctrl-C", || count(&d) >= 1, &mut sc);
    std::fs::write(d.join("stop"), "").unwrap();
    drop(tty_in);
    let st = sc.wait().unwrap();
    assert_eq!(st.code(), Some(0));
    assert_eq!(read(d.join("final")), "1", "Ctrl-C reached the job twice");
}

/// The state letter of `/proc/<pid>/stat` (`S` sleeping, `T` stopped, ...).
fn state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn ctrl_z_stops_the_job_then_wattprint_and_a_continue_resumes_both() {
    let h = FakeHost::new();
    let d = h.dir.path().to_path_buf();
    // one process (no fork in flight when Ctrl-Z comes), done 3 s of sleep after it started
    let job = format!(
        "echo $$ > {pid}; echo $PPID > {ppid}; touch {started}; exec sleep 3",
        pid = d.join("pid").display(),
        ppid = d.join("ppid").display(),
        started = d.join("started").display(),
    );
    let inner = format!(
        "WATTPRINT_SYSFS_ROOT={} WATTPRINT_PROCFS_ROOT={} WATTPRINT_HOME={} {} run --quiet --interval 50ms -- sh -c \"$JOB\"",
        h.sys().display(),
        h.proc().display(),
        h.home().display(),
        common::bin().display()
    );
    let mut sc = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &inner, "/dev/null"])
        .env("JOB", &job)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("util-linux `script` is needed for the terminal test");
    let mut tty_in = sc.stdin.take().unwrap();
    wait_for("the job", || d.join("started").exists(), &mut sc);
    let job_pid: i32 = read(d.join("pid")).parse().unwrap();
    let wp_pid: i32 = read(d.join("ppid")).parse().unwrap();
    // if an assertion fails, nothing stays stopped behind the test (disarmed once they are
    // waited for, so that a reused pid is never hit)
    struct Reap(Vec<i32>);
    impl Drop for Reap {
        fn drop(&mut self) {
            for &p in &self.0 {
                // SAFETY: processes this test started, still ours while armed.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
    }
    let mut reap = Reap(vec![job_pid, wp_pid]);
    tty_in.write_all(b"\x1a").unwrap(); // Ctrl-Z
    tty_in.flush().unwrap();
    wait_for(
        "the job and wattprint to stop",
        || state(job_pid) == Some('T') && state(wp_pid) == Some('T'),
        &mut sc,
    );
    // what a shell's `fg` does to wattprint (this shell has no job control); `script` stops
    // itself when its child stops, so it is continued too
    // SAFETY: processes this test started.
    unsafe {
        libc::kill(sc.id() as i32, libc::SIGCONT);
        libc::kill(wp_pid, libc::SIGCONT);
    }
    wait_for(
        "the job to run again",
        || state(job_pid).is_some_and(|s| s != 'T'),
        &mut sc,
    );
    drop(tty_in);
    let st = sc.wait().unwrap();
    reap.0.clear();
    assert_eq!(
        st.code(),
        Some(0),
        "the job did not complete after the continue"
    );
}

#[test]
fn a_signal_sent_the_moment_the_job_starts_still_reaches_the_job() {
    // The job signals wattprint (its parent) as its first act: wattprint must already catch it
    // (not die of it) and pass it on.
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let out = h
        .cmd()
        .args(["run", "--quiet", "--json"])
        .arg(&json)
        .args(["--", "sh", "-c", "kill -TERM $PPID; sleep 20"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGTERM),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let r = common::read_json(&json);
    assert_eq!(r["status"], "killed");
    assert_eq!(r["signal"], libc::SIGTERM);
}
