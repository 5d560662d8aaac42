#![allow(clippy::unwrap_used)]
//! `wattprint slurm import --run-sacct` on the REAL one-node Slurm cluster that
//! scripts/slurm-up.sh starts (sourced by scripts/test-env.sh, which exports
//! `WATTPRINT_TEST_SLURM=1` and `SLURM_CONF`). Without it this test fails: a required real part
//! is missing, so it does not skip.

use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

fn require_cluster() {
    assert_eq!(
        std::env::var("WATTPRINT_TEST_SLURM").as_deref(),
        Ok("1"),
        "the real Slurm cluster is not up: `source scripts/test-env.sh` (or scripts/slurm-up.sh) first"
    );
}

fn sbatch(wrap: &str) -> String {
    // --output: the job's output file would otherwise land in the working directory.
    let out = Command::new("sbatch")
        .args([
            "--output",
            "/dev/null",
            "--parsable",
            "-n",
            "1",
            "--mem=100M",
            "-J",
            "wp-import",
            "--wrap",
            wrap,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sbatch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap();
    // --parsable: `ID` or `ID;cluster`
    id.trim().split(';').next().unwrap().to_string()
}

/// The job's state once sacct records it as ended, polling with a deadline. The query is the
/// import's own (a time window, not `-j`): right after a job ends, `sacct -j` can list it a
/// moment before a window query does.
fn wait_ended(id: &str, deadline: Instant) -> String {
    loop {
        let out = Command::new("sacct")
            .args([
                "-n",
                "-P",
                "-X",
                "--starttime",
                "now-3600",
                "--format",
                "JobID,State",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let s = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{id}|")))
            .unwrap_or("")
            .to_string();
        if !s.is_empty() && !["PENDING", "RUNNING", "REQUEUED", "COMPLETING"].contains(&s.as_str())
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} did not end in time (state `{s}`)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn import_reads_the_real_clusters_sacct() {
    require_cluster();
    let ok = sbatch("sleep 1");
    let failed = sbatch("exit 3");
    let deadline = Instant::now() + Duration::from_secs(120);
    assert_eq!(wait_ended(&ok, deadline), "COMPLETED");
    assert_eq!(wait_ended(&failed, deadline), "FAILED");

    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wattprint"))
        .env("WATTPRINT_HOME", home.path())
        .env_remove("WATTPRINT_LOCATION")
        .args([
            "slurm",
            "import",
            "--run-sacct",
            "--starttime",
            "now-3600",
            "--format",
            "json",
            "--intensity",
            "100",
            "--pue",
            "1.2",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The real sacct's lines are all read: none reported malformed.
    assert!(!err.contains("sacct line"), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs = v["jobs"].as_array().unwrap();
    let job = |id: &str| {
        jobs.iter()
            .find(|j| j["job"] == id)
            .unwrap_or_else(|| panic!("job {id} not imported: {v}"))
    };
    let a = job(&ok);
    assert_eq!(a["outcome"], "completed");
    assert_eq!(a["ncpus"], 1);
    assert!(a["elapsed_s"].as_f64().unwrap() >= 1.0);
    assert_eq!(a["basis"], "estimate");
    assert!(a["energy_kwh"].as_f64().unwrap() > 0.0);
    // 100M requested (ReqMem as this Slurm writes it).
    assert!(
        (a["req_mem_gb"].as_f64().unwrap() - 0.104_857_6).abs() < 1e-9,
        "{a}"
    );
    let f = job(&failed);
    assert_eq!(f["outcome"], "failed");
    assert_eq!(f["wasted"], true);
    // The failed job is in the waste section, under its user and partition.
    let user = f["user"].as_str().unwrap();
    let w = &v["waste"];
    assert!(w["total"]["wasted_jobs"].as_u64().unwrap() >= 1);
    assert!(
        w["by_user"][user]["by_outcome"]["failed"]["jobs"]
            .as_u64()
            .unwrap()
            >= 1,
        "{w}"
    );
    assert!(
        w["by_partition"]["debug"]["wasted_jobs"].as_u64().unwrap() >= 1,
        "{w}"
    );
}
