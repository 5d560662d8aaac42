#![allow(clippy::unwrap_used)]
//! A hostile environment must not stop the job nor hide the store: an unreadable `$HOME` (so an
//! optional configuration file cannot even be looked at) is a warning; a store that cannot be
//! written can still be browsed.
//!
//! Permissions do not bind root, so when the tests run as root the commands run as `nobody`
//! (uid/gid 65534) over a tree that user may read.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

mod common;
use common::FakeHost;

fn as_unprivileged(mut c: Command) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        c.uid(65534).gid(65534);
    }
    c.current_dir("/");
    c
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A fake host whose tree `nobody` may read (the temporary directory is private by default).
fn open_host() -> FakeHost {
    let h = FakeHost::new();
    chmod(h.dir.path(), 0o755);
    chmod(&h.home(), 0o777);
    h
}

#[test]
fn an_unreadable_home_is_a_warning_and_the_job_runs() {
    let h = open_host();
    let home = h.dir.path().join("locked-home");
    std::fs::create_dir_all(home.join(".config/wattprint")).unwrap();
    chmod(&home, 0o000);
    let marker = h.dir.path().join("ran");
    chmod(h.dir.path(), 0o777);
    let mut c = as_unprivileged(h.cmd());
    c.env("HOME", &home)
        .env_remove("WATTPRINT_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .args(["run", "--", "touch"])
        .arg(&marker);
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(marker.exists(), "the job did not run: {err}");
    assert!(err.contains("warning: configuration file"), "{err}");
    assert_eq!(err.matches("not read").count(), 1, "said once: {err}");
    assert!(err.contains("completed (exit 0)"), "{err}");
    chmod(&home, 0o755);
}

#[test]
fn a_configuration_path_that_is_a_directory_is_a_warning_too() {
    let h = FakeHost::new();
    let dir = h.dir.path().join("cfg-is-a-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let out = h
        .cmd()
        .env("WATTPRINT_CONFIG", &dir)
        .args(["run", "--no-live", "--", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("not read"), "{err}");
}

#[test]
fn a_read_only_store_can_be_browsed() {
    let h = open_host();
    let json = h.dir.path().join("r.json");
    h.ok(&[
        "run",
        "--quiet",
        "--json",
        json.to_str().unwrap(),
        "--",
        "true",
    ]);
    let id = common::read_json(&json)["id"].as_str().unwrap().to_string();
    // the store and its directory become read-only for the browsing user
    for e in std::fs::read_dir(h.home()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            chmod(&p, 0o444);
        }
    }
    chmod(&h.home(), 0o555);
    let report = h.dir.path().join("report.md");
    chmod(h.dir.path(), 0o777);
    for args in [
        vec!["runs"],
        vec!["runs", "--json"],
        vec!["show", &id[..8]],
        vec!["projects"],
        vec![
            "report",
            "--all",
            "--format",
            "md",
            "--output",
            report.to_str().unwrap(),
        ],
    ] {
        let mut c = as_unprivileged(h.cmd());
        let out = c.args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        if args[0] != "report" {
            let o = String::from_utf8_lossy(&out.stdout);
            assert!(
                o.contains(&id[..8]) || o.contains("default"),
                "{args:?}: {o}"
            );
        }
    }
    assert!(std::fs::read_to_string(&report)
        .unwrap()
        .contains("default"));
    chmod(&h.home(), 0o755);
}
