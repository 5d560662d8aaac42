//! The exit path: output into a closed pipe (`wattprint runs --json | head -1`) ends the
//! command quietly with status 0, as Unix tools do, never with a panic; a job that cannot be
//! started gives the shell's status (127) with one error line.
#![allow(clippy::unwrap_used)]

mod common;
use common::FakeHost;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

/// A pipe whose read end is already closed: every write into it fails with EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two descriptors it is given.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors are ours and open; the read end is closed here at once.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let h = FakeHost::new();
    for args in [
        &["doctor", "--json"][..],
        &["runs", "--json"],
        &["runs"],
        &["projects"],
        &["factors"],
        &[
            "estimate",
            "--gpus",
            "8",
            "--gpu-watts",
            "400",
            "--duration",
            "72h",
        ],
        &[
            "estimate",
            "--gpus",
            "8",
            "--gpu-watts",
            "400",
            "--duration",
            "72h",
            "--json",
        ],
    ] {
        let out = h.cmd().args(args).stdout(closed_pipe()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

#[test]
fn a_job_that_cannot_start_gives_the_shells_status() {
    let h = FakeHost::new();
    let out = h
        .cmd()
        .args([
            "run",
            "--no-live",
            "--",
            "/nonexistent/wattprint-no-such-command",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{err}");
    assert_eq!(err.matches("wattprint: error:").count(), 1, "{err}");
}

#[test]
fn a_record_that_cannot_be_saved_is_said_even_when_quiet_and_the_jobs_status_kept() {
    let h = FakeHost::new();
    let home = h.dir.path().join("home-is-a-file");
    std::fs::write(&home, "not a directory").unwrap();
    let out = h
        .cmd()
        .env("WATTPRINT_HOME", &home)
        .args(["run", "--quiet", "--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("will not be saved"), "{err}");
    // without --quiet the summary does not offer `wattprint show` for a run never stored
    let out = h
        .cmd()
        .env("WATTPRINT_HOME", &home)
        .args(["run", "--no-live", "--", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("completed (exit 0)"), "{err}");
    assert!(!err.contains("wattprint show"), "{err}");
}

#[test]
fn an_interval_beyond_an_hour_is_refused_before_the_job_starts() {
    let h = FakeHost::new();
    let marker = h.dir.path().join("ran");
    let out = h
        .cmd()
        .args(["run", "--interval", "1e19s", "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--interval") && err.contains("maximum of 1h"),
        "{err}"
    );
    assert!(!marker.exists(), "the job started");
}
