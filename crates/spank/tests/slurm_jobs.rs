#![allow(clippy::unwrap_used)]
//! The SPANK plugin on a real Slurm (scripts/slurm-up.sh): every step measured once per node,
//! the host ledger's share in each record, `wattprint run` inside a measured step a rank of
//! the plugin's job. The fake powercap host's counters are moved by the test only: each
//! expected figure is energy the test added while the runs it names were in the ledger.

mod common;
use common::{close, joules, wait_for, Cluster};
use std::collections::BTreeMap;
use std::process::Stdio;

fn machine_j(s: &serde_json::Value) -> f64 {
    s["machine_j"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum()
}

/// Energy added per step: the cluster's budget is 3.6 kJ per step (tests/slurm_caps.rs).
const STEP_J: f64 = 500.0;

#[test]
fn sbatch_of_three_steps_gives_one_record_per_step_with_the_ledgers_share() {
    let c = Cluster::get();
    let t = c.t().to_path_buf();
    let steps: Vec<String> = (0..3)
        .map(|s| {
            format!(
                "srun -n 1 sh -c \"{}\"",
                wait_for(&t.join(format!("go-{s}")))
            )
        })
        .collect();
    let done = t.join("done");
    let job = c.sbatch(
        &format!("{}\n{}", steps.join("\n"), wait_for(&done)),
        &t.join("out.txt"),
    );
    for s in 0..3 {
        c.wait_jobs(&[&format!("slurm:{job}"), &format!("slurm:{job}.{s}")]);
        c.add_energy(STEP_J);
        std::fs::write(t.join(format!("go-{s}")), "").unwrap();
    }
    // The batch step's plugin reads the counters throughout: it ends last.
    c.wait_steps_final(job, 3);
    std::fs::write(&done, "").unwrap();
    let recs = c.records(job, 4);
    assert_eq!(recs.len(), 4, "{recs:?}");
    let mut by_step: BTreeMap<String, &serde_json::Value> = BTreeMap::new();
    for r in &recs {
        let step = r["tags"]["slurm_step"].as_str().unwrap().to_string();
        assert!(by_step.insert(step, r).is_none(), "two records of one step");
        assert_eq!(r["status"], "completed", "{r}");
        assert_eq!(r["sharing"]["job_role"], "leader", "{r}");
    }
    assert_eq!(
        by_step.keys().cloned().collect::<Vec<_>>(),
        ["0", "1", "2", "batch"]
    );
    assert_eq!(by_step["batch"]["job"], format!("slurm:{job}"));
    assert_eq!(by_step["1"]["job"], format!("slurm:{job}.1"));
    let hosts: std::collections::BTreeSet<&str> = recs
        .iter()
        .map(|r| r["host"]["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(hosts.len(), 1);
    // Each record is what the ledger charged that run; together, the energy added.
    let mut sum = 0.0;
    for r in &recs {
        let charged = c.departed_joules(r["id"].as_str().unwrap());
        close(joules(r), charged, "record vs ledger");
        sum += joules(r);
    }
    close(sum, 3.0 * STEP_J, "the job's records together");
    // Every step shared the node with the batch step.
    assert_eq!(by_step["0"]["sharing"]["mode"], "shared");
    c.wait_job_done(job);
    // Slurm's accounting saw the same job and steps.
    let o = c
        .slurm("sacct")
        .args(["-n", "-P", "-j", &job.to_string(), "-o", "JobID,State"])
        .output()
        .unwrap();
    let sacct = String::from_utf8_lossy(&o.stdout).to_string();
    for s in ["batch", "0", "1", "2"] {
        assert!(
            sacct.contains(&format!("{job}.{s}|COMPLETED")),
            "sacct: {sacct}"
        );
    }
}

#[test]
fn srun_of_four_wattprint_runs_is_measured_once() {
    let c = Cluster::get();
    let t = c.t().to_path_buf();
    let home = t.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let go = t.join("go");
    let mut srun = c
        .slurm("srun")
        .args(["-n", "4"])
        .env("WATTPRINT_HOME", &home)
        .env_remove("WATTPRINT_RUNTIME_DIR")
        .env_remove("WATTPRINT_SYSFS_ROOT")
        .arg(common::wattprint_bin())
        .args(["run", "--quiet", "--interval", "50ms", "--", "sh", "-c"])
        .arg(wait_for(&go))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The plugin and the four ranks, all with the step's key.
    let s = c.wait_state("the plugin and four ranks", |s| {
        s["accounts"].as_object().is_some_and(|a| {
            a.len() == 5
                && a.values()
                    .all(|x| x["job"].as_str().is_some_and(|j| j.ends_with(".0")))
        })
    });
    let key = s["accounts"].as_object().unwrap().values().next().unwrap()["job"]
        .as_str()
        .unwrap()
        .to_string();
    let job: u32 = key
        .trim_start_matches("slurm:")
        .trim_end_matches(".0")
        .parse()
        .unwrap();
    c.wait_jobs(&[&key]);
    c.add_energy(STEP_J);
    std::fs::write(&go, "").unwrap();
    let st = srun.wait().unwrap();
    assert!(st.success());
    let plugin = c.records(job, 1);
    assert_eq!(plugin.len(), 1, "{plugin:?}");
    let p = &plugin[0];
    assert_eq!(p["job"], key);
    assert_eq!(p["sharing"]["job_role"], "leader");
    assert_eq!(p["sharing"]["ranks"], 5, "{p}");
    // The plugin is charged the step's energy, once, and the ranks nothing.
    close(joules(p), STEP_J, "the plugin's record");
    close(
        joules(p),
        c.departed_joules(p["id"].as_str().unwrap()),
        "record vs ledger",
    );
    let ranks = c.wattprint(&home, &["runs", "--json"]);
    let ranks = ranks.as_array().unwrap();
    assert_eq!(ranks.len(), 4, "{ranks:?}");
    for r in ranks {
        assert_eq!(r["job"], key);
        assert_eq!(r["sharing"]["job_role"], "rank", "{r}");
        assert_eq!(r["sharing"]["leader"], p["id"], "{r}");
        assert_eq!(joules(r), 0.0);
    }
}

#[test]
fn two_concurrent_jobs_sum_to_the_nodes_energy() {
    let c = Cluster::get();
    let t = c.t().to_path_buf();
    let (go_a, go_b) = (t.join("go-a"), t.join("go-b"));
    let busy = format!(
        "while [ ! -e '{}' ] && [ -d '{}' ]; do :; done",
        go_a.display(),
        t.display()
    );
    let a = c.sbatch(&busy, &t.join("a.txt"));
    let b = c.sbatch(&wait_for(&go_b), &t.join("b.txt"));
    let s = c.wait_jobs(&[&format!("slurm:{a}"), &format!("slurm:{b}")]);
    let machine = |s: &serde_json::Value| -> f64 {
        s["machine_j"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .sum()
    };
    let before = machine(&s);
    c.add_energy(2.0 * STEP_J);
    // The job whose plugin reads the counters ends last: no reader hands over while the
    // added energy is still being charged.
    let reader = s["reader"]["run_id"].as_str().unwrap().to_string();
    let reader_job = s["accounts"][&reader]["job"].clone();
    let (first, second) = if reader_job == format!("slurm:{a}") {
        (&go_b, &go_a)
    } else {
        (&go_a, &go_b)
    };
    std::fs::write(first, "").unwrap();
    let first_job = if first == &go_a { a } else { b };
    c.records(first_job, 1);
    std::fs::write(second, "").unwrap();
    let ra = c.records(a, 1);
    let rb = c.records(b, 1);
    let (ja, jb) = (joules(&ra[0]), joules(&rb[0]));
    let after = c.wait_state("both jobs gone", |s| {
        s["accounts"].as_object().is_some_and(|a| a.is_empty())
    });
    close(machine(&after) - before, 2.0 * STEP_J, "the node's energy");
    close(ja + jb, 2.0 * STEP_J, "the two jobs together");
    for r in [&ra[0], &rb[0]] {
        assert_eq!(r["sharing"]["mode"], "shared", "{r}");
        close(
            joules(r),
            c.departed_joules(r["id"].as_str().unwrap()),
            "record vs ledger",
        );
    }
    // The busy job used the CPU; the idle one mostly waited.
    assert!(ja > jb, "busy {ja} J vs idle {jb} J");
}

#[test]
fn a_job_may_opt_out_where_the_site_allows_it() {
    let c = Cluster::get();
    let t = c.t().to_path_buf();
    let o = c
        .slurm("srun")
        .args([
            "--wattprint=off",
            "-n",
            "1",
            "sh",
            "-c",
            "echo $SLURM_JOB_ID",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let opted_out = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let bad = c
        .slurm("srun")
        .args(["--wattprint=perhaps", "-n", "1", "true"])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "a misspelt --wattprint is refused");
    // The next step is measured again (and the one before left no record).
    let job = c.sbatch("true", &t.join("out.txt"));
    let recs = c.records(job, 1);
    assert_eq!(recs.len(), 1);
    let all = c.wattprint(&c.site(), &["runs", "--json"]);
    assert!(
        !all.as_array()
            .unwrap()
            .iter()
            .any(|r| r["tags"]["slurm_job"] == opted_out.as_str()),
        "job {opted_out} ran with --wattprint=off"
    );
}

#[test]
fn a_users_batch_job_with_wattprint_runs_inside_is_measured_once_per_step() {
    let c = Cluster::get();
    let t = c.t().to_path_buf();
    // The job runs as an ordinary user; the plugin, in slurmstepd, as root.
    use std::os::unix::fs::PermissionsExt;
    let home = t.join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (go, done) = (t.join("go"), t.join("done"));
    let script = format!(
        "export WATTPRINT_HOME='{}'\nsrun -n 2 '{}' run --quiet --interval 50ms -- sh -c \"{}\"\n{}",
        home.display(),
        common::wattprint_bin().display(),
        wait_for(&go),
        wait_for(&done)
    );
    let file = t.join("user-job.sh");
    std::fs::write(&file, format!("#!/bin/sh\n{script}\n")).unwrap();
    let o = c
        .slurm("sbatch")
        .args(["--parsable", "--uid=nobody", "-c", "2", "-o"])
        .arg(t.join("out.txt"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let job: u32 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    let step = format!("slurm:{job}.0");
    // The batch step's plugin, the step's plugin and its two ranks.
    c.wait_state("the step's plugin and two ranks", |s| {
        s["accounts"]
            .as_object()
            .is_some_and(|a| a.values().filter(|x| x["job"] == step.as_str()).count() == 3)
    });
    let before = machine_j(&c.wait_jobs(&[&format!("slurm:{job}"), &step]));
    c.add_energy(STEP_J);
    std::fs::write(&go, "").unwrap();
    // The batch step's plugin reads the counters throughout: it ends last.
    c.wait_steps_final(job, 1);
    std::fs::write(&done, "").unwrap();
    let recs = c.records(job, 2);
    assert_eq!(recs.len(), 2, "{recs:?}");
    let plugin = recs.iter().find(|r| r["job"] == step.as_str()).unwrap();
    assert_eq!(plugin["sharing"]["job_role"], "leader");
    let mut sum = 0.0;
    for r in &recs {
        close(
            joules(r),
            c.departed_joules(r["id"].as_str().unwrap()),
            "record vs ledger",
        );
        sum += joules(r);
    }
    // Together they are charged the node's energy, once.
    let after = c.wait_state("the job gone", |s| {
        s["accounts"].as_object().is_some_and(|a| a.is_empty())
    });
    close(
        sum,
        machine_j(&after) - before,
        "the job's records vs the node's energy",
    );
    close(sum, STEP_J, "the batch step and the step together");
    let ranks = c.wattprint(&home, &["runs", "--json"]);
    let ranks = ranks.as_array().unwrap();
    assert_eq!(ranks.len(), 2, "{ranks:?}");
    for r in ranks {
        assert_eq!(r["job"], step.as_str());
        assert_eq!(r["sharing"]["job_role"], "rank", "{r}");
        assert_eq!(r["sharing"]["leader"], plugin["id"], "{r}");
        assert_eq!(joules(r), 0.0);
    }
}
