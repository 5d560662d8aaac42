#![allow(clippy::unwrap_used)]
//! `wattprint run` end to end: the real binary, a real child process, fake sysfs/procfs trees
//! where a deterministic answer is needed, and the real local SQLite store.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::{read_json, Driver, FakeHost};

#[test]
fn exit_code_is_the_jobs() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let out = h
        .cmd()
        .args(["run", "--quiet", "--json"])
        .arg(&json)
        .args(["--", "sh", "-c", "echo hello; echo err >&2; exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    // --quiet: only the job's own stderr
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let r = read_json(&json);
    assert_eq!(r["schema"], "wattprint.run/1");
    assert_eq!(r["status"], "failed");
    assert_eq!(r["exit_code"], 3);
    assert_eq!(
        r["command"],
        serde_json::json!(["sh", "-c", "echo hello; echo err >&2; exit 3"])
    );
    assert_eq!(r["methods"]["cpu"], "rapl");
    assert_eq!(r["methods"]["ram"], "rapl-dram");
    assert_eq!(r["methods"]["gpu"], "none");
    assert_eq!(r["scope"], "machine");
    for k in ["cpu", "gpu", "ram", "total", "dynamic", "static"] {
        assert!(r["energy_kwh"][k].is_number(), "energy_kwh.{k}");
    }
    for k in [
        "dynamic",
        "static",
        "infrastructure",
        "embodied",
        "operational",
        "total",
    ] {
        assert!(r["emissions_kg"][k].is_number(), "emissions_kg.{k}");
    }
    assert_eq!(r["carbon_intensity"]["g_per_kwh"], 475.0);
    assert!(r["carbon_intensity"]["source"]
        .as_str()
        .unwrap()
        .contains("default"));
    assert_eq!(r["location"]["known"], false);
    assert!(r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("location unknown")));
    // stored in the local store too, findable by prefix
    let id = r["id"].as_str().unwrap();
    let show = h.cmd().args(["show", "--json", &id[..8]]).output().unwrap();
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    let stored: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(stored["id"], r["id"]);
    assert_eq!(stored["status"], "failed");
}

#[test]
fn success_summary_and_stdin_pass_through() {
    let h = FakeHost::new();
    let mut child = h
        .cmd()
        .args(["run", "--", "sh", "-c", "read x; echo got:$x"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"ping\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got:ping\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("completed (exit 0)"), "{err}");
    assert!(err.contains("cpu:package-0"), "{err}");
    assert!(err.contains("rapl"), "{err}");
    assert!(err.contains("location unknown"), "{err}");
    // stderr is not a terminal: no live line, no escape sequences
    assert!(!err.contains('\x1b'), "{err}");
}

#[test]
fn live_line_on_a_terminal_stays_out_of_the_jobs_lines() {
    // util-linux `script` gives the run a pseudo-terminal of 24 rows. The job writes 400 lines
    // (each with an escape sequence of its own) as fast as it can while the status line is
    // drawn. Every frame of the status line is one write, so whatever the timing, no frame is
    // split by the job's output and no job line by a frame. Nothing here depends on timing: the
    // first frame is drawn before the job's output can end, and the count of later frames is not
    // asserted.
    let h = FakeHost::new();
    let inner = format!(
        "stty rows 24 cols 100; WATTPRINT_SYSFS_ROOT={} WATTPRINT_PROCFS_ROOT={} WATTPRINT_HOME={} WATTPRINT_RUNTIME_DIR={} {} run --interval 10ms -- sh -c 'i=0; while [ $i -lt 400 ]; do printf \"\\033[1mline%d\\033[0m\\n\" $i; i=$((i+1)); done'",
        h.sys().display(),
        h.proc().display(),
        h.home().display(),
        h.runtime().display(),
        common::bin().display()
    );
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &inner, "/dev/null"])
        .output()
        .expect("util-linux `script` is needed for the terminal test");
    assert!(out.status.success());
    let t = String::from_utf8_lossy(&out.stdout);
    // the job's rows scroll in rows 1..23; the status is drawn on row 24 between a cursor save
    // and restore, so a job line is never split by it
    assert!(t.contains("\n\x1b[1A\x1b7\x1b[1;23r\x1b8"), "{t:?}");
    let frame = "\x1b7\x1b[24;1H\x1b[2K\x1b[7m wattprint";
    let draws: Vec<&str> = t.split(frame).skip(1).collect();
    assert!(!draws.is_empty(), "{t:?}");
    for d in &draws {
        // each frame runs whole to its cursor restore, with no job output inside
        let end = d
            .find("\x1b[0m\x1b8")
            .unwrap_or_else(|| panic!("frame cut: {d:?}"));
        assert!(
            !d[..end].contains("line"),
            "job output inside a frame: {d:?}"
        );
        assert!(!d[..end].contains('\n'), "job output inside a frame: {d:?}");
    }
    for i in 0..400 {
        assert!(
            t.contains(&format!("\x1b[1mline{i}\x1b[0m\r\n")),
            "line{i} split: {t:?}"
        );
    }
    // the whole terminal is given back at the end
    assert!(t.contains("\x1b7\x1b[24;1H\x1b[2K\x1b[r\x1b8"), "{t:?}");
    assert!(t.contains("completed (exit 0)"));
}

#[test]
fn missing_command_exits_127_with_clear_error() {
    let h = FakeHost::new();
    let out = h
        .cmd()
        .args(["run", "--", "definitely-not-a-command-xyz", "a"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("definitely-not-a-command-xyz"), "{err}");
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn bad_flags_exit_2_and_start_nothing() {
    let h = FakeHost::new();
    let marker = h.dir.path().join("ran");
    for args in [
        vec!["--interval", "5ms"],
        vec!["--interval", "3x"],
        vec!["--tag", "novalue"],
        vec!["--intensity", "-4"],
        vec!["--pue", "0.5"],
        vec!["--scope", "galaxy"],
    ] {
        let out = h
            .cmd()
            .arg("run")
            .args(&args)
            .args(["--", "touch"])
            .arg(&marker)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(args[0]) || err.contains(args[1]),
            "{args:?}: {err}"
        );
        assert!(
            !marker.exists(),
            "job must not start with bad flags {args:?}"
        );
    }
}

#[test]
fn an_unknown_option_before_the_command_is_a_usage_error_not_the_command() {
    let h = FakeHost::new();
    let marker = h.dir.path().join("ran");
    let out = h
        .cmd()
        .args(["run", "--bogus", "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--bogus"), "{err}");
    assert!(!err.contains("not found"), "{err}");
    assert!(!marker.exists());
    // the job's own options stay the job's, with or without `--`
    for args in [
        vec!["run", "--quiet", "--", "echo", "--epochs", "3", "-v"],
        vec!["run", "--quiet", "echo", "--epochs", "3", "-v"],
        vec![
            "run",
            "--quiet",
            "--interval",
            "100ms",
            "echo",
            "--",
            "--epochs",
            "3",
            "-v",
        ],
    ] {
        let out = h.cmd().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let want = if args.contains(&"--interval") {
            "-- --epochs 3 -v\n"
        } else {
            "--epochs 3 -v\n"
        };
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{args:?}");
    }
}

#[test]
fn sigterm_reaches_the_job_and_the_record_says_killed() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let started = h.dir.path().join("started");
    let script = format!("touch {}; sleep 30", started.display());
    let mut child = h
        .cmd()
        .args(["run", "--quiet", "--interval", "50ms", "--json"])
        .arg(&json)
        .args(["--", "sh", "-c", &script])
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !started.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "job never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "job did not stop on SIGTERM"
    );
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    let r = read_json(&json);
    assert_eq!(r["status"], "killed");
    assert_eq!(r["signal"], libc::SIGTERM);
    assert_eq!(r["exit_code"], 128 + libc::SIGTERM);
}

#[test]
fn energy_matches_a_fake_package_driven_at_known_power() {
    // A loaded machine can starve the thread that writes the fake counters; a run during which
    // they lagged more than 0.2 s proves too little and is measured again (at most 3 times).
    let (h, r, lag) = (0..3)
        .find_map(|_| {
            let h = FakeHost::new();
            let json = h.dir.path().join("r.json");
            let driver = Driver::constant(&h, 100.0, 4.0);
            let out = h
                .cmd()
                .args(["run", "--quiet", "--interval", "20ms", "--json"])
                .arg(&json)
                .args(["--", "sleep", "1.5"])
                .output()
                .unwrap();
            // The job has ended while the driver still ran: its longest write gap bounds how
            // stale the counters were at the tracker's first and last reads.
            let lag = driver.finish().as_secs_f64();
            assert!(out.status.success());
            let r = read_json(&json);
            (lag < 0.2).then_some((h, r, lag))
        })
        .expect("the fake counters lagged more than 0.2 s in three runs");
    drop(h);
    let dur = r["duration_s"].as_f64().unwrap();
    let cpu_j = r["energy_kwh"]["cpu"].as_f64().unwrap() * 3.6e6;
    let ram_j = r["energy_kwh"]["ram"].as_f64().unwrap() * 3.6e6;
    // Truth: 100 W and 4 W over the measured window, within 3 % plus what counters that lagged
    // by `lag` at both ends could hide.
    let tol = |w: f64| 0.03 * w * dur + 2.0 * w * lag;
    assert!(
        (cpu_j - 100.0 * dur).abs() < tol(100.0),
        "cpu {cpu_j} J over {dur} s (driver lag up to {lag} s)"
    );
    assert!(
        (ram_j - 4.0 * dur).abs() < tol(4.0),
        "ram {ram_j} J over {dur} s (driver lag up to {lag} s)"
    );
    let avg = r["devices"][0]["avg_power_w"].as_f64().unwrap();
    assert!(
        (avg - 100.0).abs() < tol(100.0) / dur,
        "avg power {avg} (driver lag up to {lag} s)"
    );
    // Static part: the package's idle power estimated from the CPU table (8375C: 300 W TDP ×
    // 0.211 = 63.4 W) over the run; the rest is dynamic.
    let idle = r["devices"][0]["idle_power_w"].as_f64().unwrap();
    assert!((idle - 300.0 * 0.74 / 3.5).abs() < 1e-9, "{idle}");
    let static_j = r["energy_kwh"]["static"].as_f64().unwrap() * 3.6e6;
    assert!(
        (static_j - idle * dur).abs() < 1e-6 * idle * dur,
        "{static_j} vs {}",
        idle * dur
    );
    let dyn_j = r["energy_kwh"]["dynamic"].as_f64().unwrap() * 3.6e6;
    assert!((dyn_j + static_j - cpu_j - ram_j).abs() < 1e-6);
}

#[test]
fn process_scope_charges_the_job_share_on_the_real_procfs() {
    // Real /proc (the job's process tree must be visible), fake powercap for the energy.
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let driver = Driver::constant(&h, 40.0, 4.0);
    let out = h
        .cmd()
        .env_remove("WATTPRINT_PROCFS_ROOT")
        .args([
            "run",
            "--quiet",
            "--scope",
            "process",
            "--interval",
            "50ms",
            "--json",
        ])
        .arg(&json)
        // a busy child (grandchild of wattprint through sh) for about a second
        .args([
            "--",
            "sh",
            "-c",
            "sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'",
        ])
        .output()
        .unwrap();
    drop(driver);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = read_json(&json);
    assert_eq!(r["scope"], "process");
    let d = &r["devices"][0];
    let job = d["energy_kwh"].as_f64().unwrap();
    let machine = d["machine_energy_kwh"].as_f64().unwrap();
    assert!(machine > 0.0);
    // the busy grandchild is charged a real share, never more than the machine drew
    assert!(job > 0.05 * machine, "job {job} vs machine {machine}");
    assert!(
        job <= machine * (1.0 + 1e-9),
        "job {job} vs machine {machine}"
    );
    // the share is on the record as an assumption
    let share = r["assumptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["name"]
                .as_str()
                .unwrap()
                .starts_with("process-scope share of cpu:")
        })
        .unwrap_or_else(|| panic!("{}", r["assumptions"]));
    let v = share["value"].as_f64().unwrap();
    assert!((v - job / machine).abs() < 1e-5, "{v} vs {}", job / machine);
}

#[test]
fn embodied_share_of_the_server_is_charged_and_vms_say_why_not() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let out = h
        .cmd()
        .args(["run", "--quiet", "--interval", "50ms", "--json"])
        .arg(&json)
        .args(["--", "sleep", "0.5"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let r = read_json(&json);
    // 1 socket, no GPU: the base server (1000 kg with 16 GB) plus 1.388 kg per GB of DRAM
    // above 16 GB, over 35 040 h (CCF)
    let dur_h = r["duration_s"].as_f64().unwrap() / 3600.0;
    let ram_gb = r["host"]["ram_gb"].as_f64().unwrap();
    let e = r["emissions_kg"]["embodied"].as_f64().unwrap();
    let want = (1000.0 + 1.388020833 * (ram_gb - 16.0).max(0.0)) * dur_h / 35040.0;
    assert!(
        (e - want).abs() < 1e-9 * want.max(1e-12) + 1e-15,
        "{e} vs {want}"
    );
    let total = r["emissions_kg"]["total"].as_f64().unwrap();
    let op = r["emissions_kg"]["operational"].as_f64().unwrap();
    assert!((total - op - e).abs() < 1e-15);
    // a VM: its share of the host is unknown, so embodied is left out, and the record says so
    let cpuinfo = h.proc().join("cpuinfo");
    std::fs::write(
        &cpuinfo,
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\nflags\t\t: fpu hypervisor\n\n",
    )
    .unwrap();
    let out = h
        .cmd()
        .args(["run", "--quiet", "--json"])
        .arg(&json)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let r = read_json(&json);
    // not counted is null with a reason, never 0
    assert!(r["emissions_kg"]["embodied"].is_null(), "{r}");
    assert!(r["embodied_not_counted"]
        .as_str()
        .unwrap()
        .contains("virtual machine"));
    assert!(r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("--embodied-share")));
    let id = r["id"].as_str().unwrap().to_string();
    let show = h.cmd().args(["show", &id]).output().unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("not counted (virtual machine"), "{text}");
    // a known cloud instance type: the host platform × the instance's vCPU share (CCF)
    let out = h
        .cmd()
        .args(["run", "--quiet", "--instance-type", "m5.large", "--json"])
        .arg(&json)
        .args(["--", "sleep", "0.2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r = read_json(&json);
    let dur_h = r["duration_s"].as_f64().unwrap() / 3600.0;
    let e = r["emissions_kg"]["embodied"].as_f64().unwrap();
    let want = 1610.79 * dur_h / 35040.0 * 2.0 / 96.0;
    assert!((e - want).abs() < 1e-9 * want, "{e} vs {want}");
    // an unknown type is refused before anything starts
    let out = h
        .cmd()
        .args([
            "run",
            "--quiet",
            "--instance-type",
            "zz9.plural",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("zz9.plural"));
    // ...unless the user gives the share
    let out = h
        .cmd()
        .args(["run", "--quiet", "--embodied-share", "0.25", "--json"])
        .arg(&json)
        .args(["--", "sleep", "0.2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let r = read_json(&json);
    let dur_h = r["duration_s"].as_f64().unwrap() / 3600.0;
    let e = r["emissions_kg"]["embodied"].as_f64().unwrap();
    let want = 0.25 * (1000.0 + 1.388020833 * (ram_gb - 16.0).max(0.0)) * dur_h / 35040.0;
    assert!((e - want).abs() < 1e-9 * want, "{e} vs {want}");
}

#[test]
fn a_crash_of_the_tracker_keeps_the_last_checkpoint() {
    let h = FakeHost::new();
    let driver = Driver::constant(&h, 50.0, 0.0);
    let spawned = std::time::Instant::now();
    let mut child = h
        .cmd()
        .env("WATTPRINT_CHECKPOINT_EVERY", "300ms")
        .args(["run", "--quiet", "--interval", "50ms", "--", "sleep", "30"])
        .spawn()
        .unwrap();
    // The stored record's energy, once the run has one (read straight from the store).
    let stored_j = || -> Option<f64> {
        let st = wattprint::store::Store::open(&h.db()).ok()?;
        let runs = st.list_runs(&wattprint::store::RunFilter::default()).ok()?;
        runs.first().map(|r| r.energy_kwh.total.0 * 3.6e6)
    };
    // Wait (bounded, not timed) for a checkpoint with energy, then for a later one: the
    // tracker checkpoints periodically while it runs, whatever the machine's load.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut first = None;
    let seen = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no periodic checkpoint"
        );
        match (first, stored_j()) {
            (None, Some(j)) if j > 0.0 => first = Some(j),
            (Some(a), Some(j)) if j > a => break j,
            _ => {}
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // the tracker dies without a chance to save anything more
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    let alive_s = spawned.elapsed().as_secs_f64();
    let lag = driver.finish();
    let out = h.cmd().args(["runs", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = v
        .as_array()
        .cloned()
        .unwrap_or_else(|| v["runs"].as_array().unwrap().clone());
    assert_eq!(runs.len(), 1, "{v}");
    let id = runs[0]["id"].as_str().unwrap();
    let out = h.cmd().args(["show", "--json", id]).output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["status"], "running");
    // the last checkpoint survived the crash: nothing seen before it is lost, and nothing
    // beyond what the fake package drew (50 W while the tracker lived) was invented
    let j = r["energy_kwh"]["total"].as_f64().unwrap() * 3.6e6;
    assert!(j >= seen, "{j} J kept, {seen} J seen before the crash");
    assert!(
        j <= 50.0 * (alive_s + lag.as_secs_f64()) * 1.03 + 1.0,
        "{j} J checkpointed in {alive_s} s at 50 W"
    );
    // the job itself is not ours to clean up: it was orphaned with the tracker
}

#[test]
fn model_factors_are_on_the_record() {
    // No powercap: the CPU TDP model and the RAM model; every factor they use is an assumption.
    let h = FakeHost::new();
    std::fs::remove_dir_all(h.sys().join("class/powercap")).unwrap();
    let json = h.dir.path().join("r.json");
    let out = h
        .cmd()
        .args(["run", "--quiet", "--json"])
        .arg(&json)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r = read_json(&json);
    let a = r["assumptions"].as_array().unwrap();
    let find = |name: &str| {
        a.iter()
            .find(|x| x["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {a:?}"))
            .clone()
    };
    let tdp = find("cpu TDP per package of cpu:model");
    assert!(tdp["source"].as_str().unwrap().contains("8375C"), "{tdp}");
    assert_eq!(
        find("ram power per GB in use of ram:model")["value"],
        0.3725
    );
    let idle = find("cpu model idle fraction of cpu:model")["value"]
        .as_f64()
        .unwrap();
    assert!((idle - 0.74 / 3.5).abs() < 1e-12);
    // an unknown CPU: the per-thread fallback is on the record, with its value
    std::fs::write(
        h.proc().join("cpuinfo"),
        "processor\t: 0\nmodel name\t: Mystery CPU\nflags\t\t: fpu\n\n",
    )
    .unwrap();
    let out = h
        .cmd()
        .args(["run", "--quiet", "--json"])
        .arg(&json)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r = read_json(&json);
    let a = r["assumptions"].as_array().unwrap();
    let f = a
        .iter()
        .find(|x| x["name"] == "cpu power per logical CPU (fallback) of cpu:model")
        .unwrap_or_else(|| panic!("{a:?}"));
    assert_eq!(f["value"], 3.5);
}

#[test]
fn runs_started_together_on_a_new_store_all_keep_their_record() {
    // Ranks of a job start at once and find no store yet: each opening switches the new
    // database to WAL, which SQLite's busy handler does not wait for. Every run must still be
    // saved (it used to say "local store unavailable … database is locked" and keep nothing).
    for trial in 0..3 {
        let h = common::FakeHost::new();
        // On a disk file system (the fake host is on tmpfs, where the window is too short).
        let disk = tempfile::tempdir().unwrap();
        let home = disk.path().join(format!("fresh-home-{trial}"));
        let children: Vec<std::process::Child> = (0..8)
            .map(|_| {
                std::process::Command::new(common::bin())
                    .env("WATTPRINT_HOME", &home)
                    .env("WATTPRINT_RUNTIME_DIR", disk.path().join("run"))
                    .env("WATTPRINT_CONFIG", disk.path().join("none.toml"))
                    .args(["run", "--quiet", "--interval", "50ms", "--", "true"])
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!err.contains("unavailable"), "{err}");
        }
        let out = h
            .cmd()
            .env("WATTPRINT_HOME", &home)
            .args(["runs", "--json"])
            .output()
            .unwrap();
        let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(runs.as_array().unwrap().len(), 8, "trial {trial}");
    }
}
