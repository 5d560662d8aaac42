#![allow(clippy::unwrap_used)]
//! Job keys and ranks from the launcher's environment, Slurm node lists, and a job's totals
//! across nodes (each node once).

use serde_json::json;
use wattprint_core::env::Env;
use wattprint_core::job;

#[test]
fn job_keys_from_the_launchers() {
    let e = |pairs: &[(&str, &str)]| Env::from_pairs(pairs.iter().copied());
    assert_eq!(job::from_env(&e(&[])), None);
    assert_eq!(
        job::from_env(&e(&[("SLURM_JOB_ID", "77"), ("SLURM_STEP_ID", "3")])).as_deref(),
        Some("slurm:77.3")
    );
    assert_eq!(
        job::from_env(&e(&[("SLURM_JOB_ID", "77")])).as_deref(),
        Some("slurm:77")
    );
    // torchrun inside srun: the rendezvous id names the job
    assert_eq!(
        job::from_env(&e(&[("TORCHELASTIC_RUN_ID", "r1"), ("SLURM_JOB_ID", "77")])).as_deref(),
        Some("torchrun:r1")
    );
    // torchrun's default run id "none" says nothing
    assert_eq!(
        job::from_env(&e(&[
            ("TORCHELASTIC_RUN_ID", "none"),
            ("SLURM_JOB_ID", "5")
        ]))
        .as_deref(),
        Some("slurm:5")
    );
    assert_eq!(
        job::from_env(&e(&[("OMPI_MCA_ess_base_jobid", "123")])).as_deref(),
        Some("ompi:123")
    );
    assert_eq!(
        job::from_env(&e(&[("PMIX_NAMESPACE", "ns.1")])).as_deref(),
        Some("pmix:ns.1")
    );
    // values that are not usable keys are ignored
    assert_eq!(job::from_env(&e(&[("SLURM_JOB_ID", "a b")])), None);
    assert_eq!(job::check_key(&"x".repeat(129)), None);
    assert_eq!(job::check_key(" k-1 ").as_deref(), Some("k-1"));
}

#[test]
fn local_rank_wins_over_slurm_localid() {
    let e = |pairs: &[(&str, &str)]| Env::from_pairs(pairs.iter().copied());
    // srun torchrun: every worker inherits SLURM_LOCALID=0
    assert_eq!(
        job::local_rank(&e(&[("SLURM_LOCALID", "0"), ("LOCAL_RANK", "3")])),
        Some(3)
    );
    assert_eq!(
        job::local_rank(&e(&[
            ("SLURM_LOCALID", "2"),
            ("OMPI_COMM_WORLD_LOCAL_RANK", "1")
        ])),
        Some(1)
    );
    assert_eq!(job::local_rank(&e(&[("SLURM_LOCALID", "2")])), Some(2));
    assert_eq!(job::local_rank(&e(&[("LOCAL_RANK", "x")])), None);
}

#[test]
fn slurm_node_lists_expand() {
    assert_eq!(
        job::expand_nodelist("gpu[08-10,12],login1").unwrap(),
        ["gpu08", "gpu09", "gpu10", "gpu12", "login1"]
    );
    assert_eq!(job::expand_nodelist("n[1-2]").unwrap(), ["n1", "n2"]);
    for bad in ["n[3-1]", "n[1-2", "n[a-b]", "n[1-99999]", "", "n[[1]]"] {
        assert_eq!(job::expand_nodelist(bad), None, "{bad}");
    }
    let env = Env::from_pairs([("SLURM_JOB_NUM_NODES", "4"), ("GROUP_WORLD_SIZE", "2")]);
    assert_eq!(job::expected_nodes(&env), Some(4));
    let env = Env::from_pairs([("GROUP_WORLD_SIZE", "2")]);
    assert_eq!(job::expected_nodes(&env), Some(2));
    let env = Env::from_pairs([("SLURM_JOB_NUM_NODES", "0")]);
    assert_eq!(job::expected_nodes(&env), None);
}

fn rec(id: &str, host: &str, kwh: f64, role: Option<&str>) -> serde_json::Value {
    json!({
        "schema": "wattprint.run/1", "id": id, "job": "j", "status": "completed",
        "host": {"hostname": host}, "duration_s": 10.0,
        "energy_kwh": {"total": kwh, "facility": kwh}, "emissions_kg": {"total": kwh / 10.0},
        "sharing": role.map(|r| json!({"job_role": r})),
        "job_nodes": 3, "job_nodelist": ["a", "b", "c"]
    })
}

#[test]
fn a_job_is_summed_once_per_node_and_says_who_is_missing() {
    let records = vec![
        rec("1", "a", 0.5, Some("leader")),
        rec("2", "a", 0.0, Some("rank")),
        rec("3", "b", 0.25, Some("leader")),
        // the same run reported twice
        rec("3", "b", 0.25, Some("leader")),
        // another job's run
        json!({"id": "9", "job": "other", "host": {"hostname": "c"}, "energy_kwh": {"total": 9.0}}),
    ];
    let s = job::summarize("j", &records);
    assert_eq!(s["reported_nodes"], 2);
    assert_eq!(s["expected_nodes"], 3);
    assert_eq!(s["missing_nodes"], json!(["c"]));
    assert_eq!(s["complete"], false);
    assert_eq!(s["total"]["energy_kwh"], 0.75);
    assert_eq!(s["nodes"][0]["runs"], 2);
    assert_eq!(s["nodes"][0]["charged_runs"], 1);
    assert_eq!(s["nodes"][1]["runs"], 1);
    let mut all = records.clone();
    all.push(rec("4", "c", 0.125, None));
    let s = job::summarize("j", &all);
    assert_eq!(s["complete"], true);
    assert_eq!(s["total"]["energy_kwh"], 0.875);
}
