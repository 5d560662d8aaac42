#![allow(clippy::unwrap_used)]
//! A cap through Slurm: the cluster's plugstack.conf gives every step `budget_kwh=0.001`
//! (3.6 kJ) and `grace=3s` (scripts/slurm-up.sh). A job that ignores the stop signal is warned
//! in its own output at 80 %, signalled at the budget, then cancelled with `scancel`, and its
//! record says `stopped_by_budget`. Energy is added by the test, not paced by time.

mod common;
use common::{wait_for, Cluster, Policy, DEADLINE};
use std::time::{Duration, Instant};

fn wait_output(path: &std::path::Path, what: &str) -> String {
    let t = Instant::now();
    loop {
        let s = std::fs::read_to_string(path).unwrap_or_default();
        if s.contains(what) {
            return s;
        }
        assert!(
            t.elapsed() < DEADLINE,
            "no `{what}` in the job's output: {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_job_over_its_budget_is_warned_stopped_and_recorded() {
    let c = Cluster::get();
    let t = c.t().to_path_buf();
    let out = t.join("out.txt");
    // Ignores SIGTERM: only scancel ends it.
    let script = format!("trap '' TERM\necho started\n{}", wait_for(&t.join("never")));
    let job = c.sbatch(&script, &out);
    c.wait_jobs(&[&format!("slurm:{job}")]);
    wait_output(&out, "started");
    c.add_energy(3_000.0);
    let text = wait_output(&out, "wattprint: ");
    assert!(text.contains("budget"), "{text}");
    c.add_energy(1_000.0);
    let recs = c.records(job, 1);
    let r = &recs[0];
    assert_eq!(r["status"], "stopped_by_budget", "{r}");
    assert_eq!(r["stopped"]["limit"], "budget_kwh", "{r}");
    assert_eq!(r["stopped"]["killed_after_grace"], true, "{r}");
    assert!(r["limit_events"].as_array().unwrap().len() >= 2, "{r}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("stopping the job"), "{text}");
    c.wait_job_done(job);
    let o = c
        .slurm("sacct")
        .args(["-n", "-P", "-X", "-j", &job.to_string(), "-o", "State"])
        .output()
        .unwrap();
    let state = String::from_utf8_lossy(&o.stdout);
    assert!(state.starts_with("CANCELLED"), "sacct: {state}");
}

#[test]
fn the_site_policys_duration_cap_stops_a_step() {
    let c = Cluster::get();
    let t = c.t().to_path_buf();
    let _policy = Policy::write(&c, "[limits]\nmax_duration = \"2s\"\n");
    let out = t.join("out.txt");
    let job = c.sbatch(
        &format!("echo started\n{}", wait_for(&t.join("never"))),
        &out,
    );
    let recs = c.records(job, 1);
    let r = &recs[0];
    assert_eq!(r["status"], "stopped_by_cap", "{r}");
    assert_eq!(r["stopped"]["limit"], "max_duration", "{r}");
    assert_eq!(r["limits"]["max_duration_s"], 2.0, "{r}");
    // The shell ended at the stop signal, within the grace period.
    assert_eq!(r["stopped"]["killed_after_grace"], false, "{r}");
    let text = wait_output(&out, "stopping the job");
    assert!(text.contains("wattprint: "), "{text}");
    c.wait_job_done(job);
}
