#![allow(clippy::unwrap_used)]
//! Caps, budgets and predictions on `wattprint run`, end to end with the real binary and a
//! fake powercap tree driven at a known power.

use std::time::{Duration, Instant};

mod common;
use common::{read_json, Driver, FakeHost};

#[test]
fn max_duration_sends_sigterm_and_gives_the_grace() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let marker = h.dir.path().join("got-term");
    // The job traps SIGTERM, "checkpoints" for 0.5 s, writes a marker and exits 0.
    let script = format!(
        "trap 'sleep 0.5; touch {}; exit 0' TERM; while true; do sleep 0.05; done",
        marker.display()
    );
    let t = Instant::now();
    let out = h
        .cmd()
        .args([
            "run",
            "--quiet",
            "--interval",
            "50ms",
            "--max-duration",
            "2s",
            "--grace",
            "5s",
            "--json",
        ])
        .arg(&json)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert!(
        marker.exists(),
        "the job should have received SIGTERM and used its grace"
    );
    assert_eq!(out.status.code(), Some(0), "the job's own exit code");
    assert!((2.0..4.5).contains(&wall), "stopped after {wall} s");
    let r = read_json(&json);
    assert_eq!(r["status"], "stopped_by_cap");
    assert_eq!(r["stopped"]["limit"], "max_duration");
    assert_eq!(r["stopped"]["signal"], libc::SIGTERM);
    assert_eq!(r["stopped"]["killed_after_grace"], false);
    let at = r["stopped"]["at_s"].as_f64().unwrap();
    assert!((2.0..2.5).contains(&at), "stop signal at {at} s");
    assert_eq!(r["limits"]["max_duration_s"], 2.0);
    let ev = r["limit_events"].as_array().unwrap();
    assert!(
        ev.iter().any(|e| e["level"] == "warning"),
        "80 % warning recorded"
    );
    assert!(ev.iter().any(|e| e["level"] == "reached"));
}

#[test]
fn a_job_ignoring_sigterm_is_killed_after_the_grace() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let t = Instant::now();
    let out = h
        .cmd()
        .args([
            "run",
            "--quiet",
            "--interval",
            "50ms",
            "--max-duration",
            "1s",
            "--grace",
            "1s",
            "--json",
        ])
        .arg(&json)
        .args([
            "--",
            "sh",
            "-c",
            "trap '' TERM; while true; do sleep 0.05; done",
        ])
        .output()
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(128 + libc::SIGKILL));
    assert!((2.0..4.0).contains(&wall), "killed after {wall} s");
    let r = read_json(&json);
    assert_eq!(r["status"], "stopped_by_cap");
    assert_eq!(r["stopped"]["killed_after_grace"], true);
    assert_eq!(r["signal"], libc::SIGKILL);
}

#[test]
fn energy_budget_stops_within_one_interval_of_the_expected_time() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    // Package 360 W + DRAM 0 W: 0.0002 kWh = 720 J is reached after 2 s.
    let driver = Driver::constant(&h, 360.0, 0.0);
    let interval = 0.1;
    let out = h
        .cmd()
        .args([
            "run",
            "--quiet",
            "--interval",
            "100ms",
            "--budget-kwh",
            "0.0002",
            "--grace",
            "5s",
            "--json",
        ])
        .arg(&json)
        .args(["--", "sleep", "30"])
        .output()
        .unwrap();
    // How long the fake counters could have lagged (a loaded machine starves the driver).
    let lag = driver.finish().as_secs_f64();
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM));
    let r = read_json(&json);
    assert_eq!(r["status"], "stopped_by_budget");
    assert_eq!(r["stopped"]["limit"], "budget_kwh");
    let at = r["stopped"]["at_s"].as_f64().unwrap();
    // expected at 2.0 s: the first sample past 2.0 s (≤ one interval later) fires it
    // (the driver starts counting a few ms before wattprint takes its baseline), later by as
    // much as the counters lagged
    assert!(
        at >= 1.9 && at <= 2.0 + interval + 0.15 + lag,
        "fired at {at} s (driver lag up to {lag} s)"
    );
    let reached = r["limit_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["level"] == "reached")
        .unwrap()
        .clone();
    // spent: at least the budget, at most one interval (and any lag caught up at once) more
    let spent = reached["spent_kwh"].as_f64().unwrap();
    assert!(spent >= 0.0002, "{spent}");
    assert!(
        spent < 0.0002 + 360.0 * (interval + 0.15 + lag) / 3.6e6,
        "{spent} kWh (driver lag up to {lag} s)"
    );
}

#[test]
fn budget_action_warn_lets_the_job_finish() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let driver = Driver::constant(&h, 360.0, 0.0);
    let out = h
        .cmd()
        .args([
            "run",
            "--interval",
            "50ms",
            "--budget-kwh",
            "0.00005",
            "--budget-action",
            "warn",
            "--json",
        ])
        .arg(&json)
        .args(["--", "sleep", "1"])
        .output()
        .unwrap();
    drop(driver);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("energy budget reached"), "{err}");
    assert!(err.contains("the job goes on"), "{err}");
    let r = read_json(&json);
    assert_eq!(r["status"], "completed");
    assert!(r.get("stopped").is_none());
}

#[test]
fn progress_file_prediction_is_recorded_and_covers_the_truth() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let driver = Driver::constant(&h, 100.0, 0.0);
    // 3 s job reporting progress every 0.1 s as done/total
    let script = "i=0; while [ $i -lt 30 ]; do echo \"$i/30\" > \"$WATTPRINT_PROGRESS_FILE\"; sleep 0.1; i=$((i+1)); done";
    let out = h
        .cmd()
        .args(["run", "--quiet", "--interval", "50ms", "--json"])
        .arg(&json)
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap();
    drop(driver);
    assert!(out.status.success());
    let r = read_json(&json);
    let p = &r["prediction"];
    assert_eq!(p["basis"], "progress");
    let truth = r["energy_kwh"]["total"].as_f64().unwrap();
    let (lo, hi) = (
        p["final_kwh"]["p10"].as_f64().unwrap(),
        p["final_kwh"]["p90"].as_f64().unwrap(),
    );
    // the last prediction (≈ 97 % done) brackets the final energy within 10 %
    assert!(
        lo <= truth * 1.1 && hi >= truth * 0.9,
        "{lo}..{hi} vs {truth}"
    );
    assert!(p["fraction_done"].as_f64().unwrap() > 0.8);
}

#[test]
fn predict_stop_stops_before_the_budget_is_burnt() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let driver = Driver::constant(&h, 360.0, 0.0);
    // 10 s expected at 360 W = 0.001 kWh; budget 0.0005 kWh would be reached at 5 s, but the
    // prediction's P10 exceeds it much earlier (after the 5 % minimum, i.e. 0.5 s).
    let out = h
        .cmd()
        .args([
            "run",
            "--quiet",
            "--interval",
            "100ms",
            "--budget-kwh",
            "0.0005",
            "--predict-stop",
            "--expected-duration",
            "10s",
            "--grace",
            "2s",
            "--json",
        ])
        .arg(&json)
        .args(["--", "sleep", "20"])
        .output()
        .unwrap();
    drop(driver);
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM));
    let r = read_json(&json);
    assert_eq!(r["status"], "stopped_by_budget");
    let at = r["stopped"]["at_s"].as_f64().unwrap();
    assert!(
        at < 2.5,
        "predicted stop at {at} s, well before the 5 s budget time"
    );
    assert!(r["energy_kwh"]["total"].as_f64().unwrap() < 0.0005);
    assert!(r["limit_events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["level"] == "predicted"));
}

#[test]
fn institution_limits_cannot_be_raised_by_the_user() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let sys = h.dir.path().join("system.toml");
    std::fs::write(&sys, "[limits]\nmax_duration = \"1s\"\n").unwrap();
    let t = Instant::now();
    let out = h
        .cmd()
        .env("WATTPRINT_SYSTEM_CONFIG", &sys)
        .args([
            "run",
            "--interval",
            "50ms",
            "--max-duration",
            "1h",
            "--grace",
            "1s",
            "--json",
        ])
        .arg(&json)
        .args(["--", "sleep", "10"])
        .output()
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("institution's limit"), "{err}");
    let r = read_json(&json);
    assert_eq!(r["status"], "stopped_by_cap");
    assert_eq!(r["limits"]["max_duration_s"], 1.0);
    // a broken config file is a clear error and starts nothing
    std::fs::write(&sys, "[limits]\nmax_duration = 72h\n").unwrap();
    let out = h
        .cmd()
        .env("WATTPRINT_SYSTEM_CONFIG", &sys)
        .args(["run", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("system.toml"));
}

#[test]
fn bad_limit_flags_exit_2() {
    let h = FakeHost::new();
    for args in [
        vec!["--max-duration", "soon"],
        vec!["--budget-kwh", "-1"],
        vec!["--budget-kg", "0"],
        vec!["--stop-signal", "BOOM"],
        vec!["--grace", "x"],
    ] {
        let out = h
            .cmd()
            .arg("run")
            .args(&args)
            .args(["--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[0]), "{args:?}: {err}");
    }
}
