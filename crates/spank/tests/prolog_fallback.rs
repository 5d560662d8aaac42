#![allow(clippy::unwrap_used)]
//! The Prolog/Epilog fallback (deploy/slurm/): the Prolog starts one detached `wattprint run`
//! keyed `slurm:JOB`, a `wattprint run` in the batch script (same key) is its rank and is
//! charged nothing, the Epilog ends it and its record is final; the TaskProlog's lines point
//! tasks at the site's ledger. Run as slurmd would run them (its variables, no terminal), on a
//! fake powercap host, outside Slurm: the scripts' own mechanics.

mod common;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn script(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/slurm")
        .join(name)
}

#[test]
fn prolog_measures_the_job_once_and_epilog_ends_it() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // The fake host: one package zone.
    let z = d.join("sys/class/powercap/intel-rapl:0");
    std::fs::create_dir_all(&z).unwrap();
    std::fs::write(z.join("name"), "package-0\n").unwrap();
    std::fs::write(z.join("energy_uj"), "1000000\n").unwrap();
    std::fs::write(z.join("max_energy_range_uj"), "262143328850\n").unwrap();
    let site_env = d.join("slurm.env");
    std::fs::write(
        &site_env,
        format!(
            "WATTPRINT_BIN='{}'\nWATTPRINT_SLURM_STATE='{}'\nWATTPRINT_HOME='{}'\nWATTPRINT_RUNTIME_DIR='{}'\nWATTPRINT_SYSFS_ROOT='{}'\nexport WATTPRINT_RUNTIME_DIR WATTPRINT_SYSFS_ROOT\n",
            common::wattprint_bin().display(),
            d.join("state").display(),
            d.join("site").display(),
            d.join("run").display(),
            d.join("sys").display(),
        ),
    )
    .unwrap();
    let slurmd = |name: &str| {
        let mut c = Command::new("sh");
        c.arg(script(name))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("SLURM_JOB_ID", "424242")
            .env("WATTPRINT_SLURM_ENV", &site_env)
            .stdin(Stdio::null());
        c
    };
    assert!(slurmd("wattprint-prolog.sh").status().unwrap().success());
    // The TaskProlog's exports, as slurmstepd would apply them to each task.
    let o = slurmd("wattprint-task-prolog.sh").output().unwrap();
    let exports = String::from_utf8(o.stdout).unwrap();
    assert!(exports.contains(&format!(
        "export WATTPRINT_RUNTIME_DIR={}",
        d.join("run").display()
    )));
    // The measurer is in the ledger before the job's own run starts.
    let t0 = Instant::now();
    let joined = || -> bool {
        let Ok(hosts) = std::fs::read_dir(d.join("run")) else {
            return false;
        };
        hosts.flatten().any(|h| {
            std::fs::read_dir(h.path()).is_ok_and(|files| {
                files
                    .flatten()
                    .any(|f| f.file_name().to_string_lossy().starts_with("p-"))
            })
        })
    };
    while !joined() {
        assert!(
            t0.elapsed() < common::DEADLINE,
            "the Prolog's measurer did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A `wattprint run` in the batch script (SLURM_JOB_ID, no step): a rank of the job.
    let home = d.join("user");
    let mut user = Command::new(common::wattprint_bin());
    user.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SLURM_JOB_ID", "424242")
        .env("WATTPRINT_HOME", &home);
    for line in exports.lines() {
        let (k, v) = line.trim_start_matches("export ").split_once('=').unwrap();
        user.env(k, v);
    }
    let go = d.join("go");
    let child = user
        .args(["run", "--quiet", "--interval", "50ms", "--json"])
        .arg(d.join("user.json"))
        .args(["--", "sh", "-c"])
        .arg(common::wait_for(&go))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both in the ledger's accounts, then one more reading: the run has been a rank.
    let state = || -> Option<serde_json::Value> {
        let host = std::fs::read_dir(d.join("run"))
            .ok()?
            .flatten()
            .next()?
            .path();
        let f = std::fs::read_dir(host)
            .ok()?
            .flatten()
            .find(|f| f.file_name().to_string_lossy().starts_with("state-"))?;
        serde_json::from_str(&std::fs::read_to_string(f.path()).ok()?).ok()
    };
    let mut seen: Option<u64> = None;
    let t0 = Instant::now();
    loop {
        if let Some(s) = state() {
            let n = s["accounts"].as_object().map(|a| a.len()).unwrap_or(0);
            let seq = s["seq"].as_u64().unwrap_or(0);
            match seen {
                None if n == 2 => seen = Some(seq),
                Some(x) if seq > x => break,
                _ => {}
            }
        }
        assert!(
            t0.elapsed() < common::DEADLINE,
            "the job's run never shared the ledger"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&go, "").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mine: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("user.json")).unwrap()).unwrap();
    assert_eq!(mine["job"], "slurm:424242");
    assert_eq!(mine["sharing"]["job_role"], "rank", "{mine}");
    assert_eq!(mine["energy_kwh"]["total"], 0.0);
    assert!(slurmd("wattprint-epilog.sh").status().unwrap().success());
    // The Epilog waited for the measurer: its record is final in the site store.
    let o = Command::new(common::wattprint_bin())
        .env("WATTPRINT_HOME", d.join("site"))
        .args(["runs", "--json"])
        .output()
        .unwrap();
    let recs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let recs = recs.as_array().unwrap();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["job"], "slurm:424242");
    assert_eq!(recs[0]["status"], "completed");
    assert_eq!(recs[0]["tags"]["slurm_job"], "424242");
    assert_eq!(recs[0]["sharing"]["job_role"], "leader");
    assert_eq!(mine["sharing"]["leader"], recs[0]["id"]);
    assert!(!d.join("state/424242.pid").exists());
}
