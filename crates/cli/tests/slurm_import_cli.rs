#![allow(clippy::unwrap_used)]
//! `wattprint slurm import` end to end on sacct -P fixture files: the estimate is `estimate`'s,
//! GA4HPC's figures are its own vector's, waste per user/account/partition, malformed lines
//! reported with their numbers, measured records win.

mod common;

use common::FakeHost;
use serde_json::Value;
use std::io::Write;
use std::process::Stdio;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/sacct_history.txt"
);
const FACTORS: [&str; 8] = [
    "--intensity",
    "467",
    "--pue",
    "1.67",
    "--core-watts",
    "10",
    "--gpu-watts",
    "250",
];

fn import(h: &FakeHost, args: &[&str], stdin: Option<&str>) -> (String, String) {
    let mut c = h.cmd();
    c.args(["slurm", "import"]).args(args).args(FACTORS);
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut ch = c.spawn().unwrap();
    if let Some(s) = stdin {
        ch.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = ch.wait_with_output().unwrap();
    let (o, e) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success(), "{args:?}: {e}");
    (o, e)
}

fn jobs(v: &Value) -> std::collections::BTreeMap<String, Value> {
    v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["job"].as_str().unwrap().to_string(), j.clone()))
        .collect()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-12)
}

#[test]
fn ga4hpc_vectors_and_the_estimate_commands_accounting() {
    // GA4HPC's worked vector (docs/slurm.md): 552375 (TotalCPU 0 → CPUTime, 250Gn, one GPU)
    // = 3.331485 kWh and 556141 (6760Mc, one core busy all along) = 0.083766 kWh, at
    // 10 W/core, 250 W/GPU, PUE 1.67, 467 g/kWh.
    let text = "JobID|Elapsed|NNodes|NCPUS|TotalCPU|CPUTime|ReqMem|MaxRSS|AllocTRES|State|User|Account|Partition\n\
552375|03:00:30|1|32|00:00:00|4-00:16:00|250Gn||cpu=32,gres/gpu=1,node=1|COMPLETED|a|x|gpu\n\
556141|04:00:25|1|1|04:00:25|04:00:25|6760Mc||cpu=1,node=1|COMPLETED|b|y|cpu\n";
    let h = FakeHost::new();
    let (o, _) = import(&h, &["-", "--format", "json"], Some(text));
    let v: Value = serde_json::from_str(&o).unwrap();
    let j = jobs(&v);
    let ga = |k: &str| j[k]["ga4hpc"]["energy_kwh"].as_f64().unwrap();
    assert!(close(ga("552375"), 3.331485, 1e-6), "{}", ga("552375"));
    assert!(close(ga("556141"), 0.083766, 1e-5), "{}", ga("556141"));
    assert_eq!(v["ga4hpc_total"]["jobs"], 2);
    let total = v["ga4hpc_total"]["energy_kwh"].as_f64().unwrap();
    assert!(close(total, ga("552375") + ga("556141"), 1e-12));
    assert!(close(
        j["552375"]["ga4hpc"]["emissions_kg"].as_f64().unwrap(),
        1.55580,
        1e-5
    ));
    // Ours: the same job through `wattprint estimate` (memory in binary GB: 250 GiB).
    let est = h.ok(&[
        "estimate",
        "--cores",
        "32",
        "--core-watts",
        "10",
        "--gpus",
        "1",
        "--gpu-watts",
        "250",
        "--memory",
        "268.435456",
        "--duration",
        "10830s",
        "--pue",
        "1.67",
        "--intensity",
        "467",
        "--json",
    ]);
    let est: Value = serde_json::from_str(&est).unwrap();
    let ours = j["552375"]["energy_kwh"].as_f64().unwrap();
    let want = est["energy_kwh"]["facility"].as_f64().unwrap();
    assert!(close(ours, want, 1e-9), "{ours} vs {want}");
    assert_eq!(j["552375"]["basis"], "estimate");
    assert_eq!(j["552375"]["cpu_from_cputime"], true);
    assert!(j["552375"]["notes"][0]
        .as_str()
        .unwrap()
        .contains("CPUTime"));
    assert!(v["notes"].to_string().contains("1 job(s) had TotalCPU 0"));
}

#[test]
fn history_table_waste_and_malformed_lines() {
    let h = FakeHost::new();
    let (o, e) = import(&h, &[FIXTURE], None);
    // Each job once, steps folded; the pending array range and running job are listed but
    // never counted as waste; zero elapsed is "not counted", never 0.
    for id in ["552375", "556141", "600_4", "700+0", "700+1", "800", "901"] {
        assert_eq!(
            o.lines()
                .filter(|l| l.starts_with(&format!("{id} ")))
                .count(),
            1,
            "{id}\n{o}"
        );
    }
    assert!(!o.lines().any(|l| l.starts_with("552375.batch")));
    let l901 = o.lines().find(|l| l.starts_with("901 ")).unwrap();
    assert!(
        l901.contains("not counted") && !l901.contains(" 0 J"),
        "{l901}"
    );
    // Slurm's own figure beside the estimate: 1 800 000 J = 500 Wh.
    assert!(o
        .lines()
        .find(|l| l.starts_with("556141 "))
        .unwrap()
        .contains("500 Wh"));
    assert!(o.contains("Slurm's own node-level figure"));
    assert!(
        o.contains("GA4HPC's way (green-algorithms profile): 6 jobs,"),
        "{o}"
    );
    assert!(o.contains("waste (failed, cancelled"));
    assert!(o.contains("not counted: 2 unfinished job(s)"));
    assert!(o.contains("per user:") && o.contains("per account:") && o.contains("per partition:"));
    let carol = o
        .lines()
        .find(|l| l.trim_start().starts_with("carol:"))
        .unwrap();
    assert!(
        carol.contains("wasted 2 jobs") && carol.contains("100 % of the energy"),
        "{carol}"
    );
    // The two bad lines, by number, skipped.
    assert!(
        e.contains("line 18: 2 fields where the header has 19"),
        "{e}"
    );
    assert!(e.contains("line 19:") && e.contains("366 days"), "{e}");

    let (o, _) = import(&h, &[FIXTURE, "--format", "json"], None);
    let v: Value = serde_json::from_str(&o).unwrap();
    assert_eq!(v["schema"], "wattprint.slurm-import/1");
    assert_eq!(v["malformed_lines"], 2);
    let w = &v["waste"]["total"];
    assert_eq!(w["jobs"], 7);
    assert_eq!(w["wasted_jobs"], 4);
    let j = jobs(&v);
    let kwh = |k: &str| j[k]["energy_kwh"].as_f64().unwrap();
    let wasted = kwh("600_4") + kwh("700+0") + kwh("700+1") + kwh("800");
    assert!(close(w["wasted_kwh"].as_f64().unwrap(), wasted, 1e-9));
    // Memory over-request of 800: (64 GiB − 60 GiB) × 24 h × 0.3725 W/GB × 1.67.
    let dave = &v["waste"]["by_user"]["dave"];
    let want = 4.0 * 1.073741824 * 24.0 * 0.3725 * 1.67 / 1000.0;
    assert!(close(
        dave["mem_overrequest_kwh"].as_f64().unwrap(),
        want,
        1e-9
    ));
    assert!(close(
        dave["cpu_used_s"].as_f64().unwrap() / dave["cpu_held_s"].as_f64().unwrap(),
        0.5,
        1e-12
    ));
    assert_eq!(j["800"]["gpus"], 2); // typed gres/gpu:a100=2 only
    assert_eq!(j["901"]["energy_kwh"], Value::Null);
    assert_eq!(j["901"]["basis"], "not counted");

    // Filters, CSV.
    let (o, _) = import(
        &h,
        &[
            FIXTURE,
            "--format",
            "csv",
            "--user",
            "carol",
            "--state",
            "out_of_memory",
        ],
        None,
    );
    let rows: Vec<&str> = o.lines().collect();
    assert_eq!(rows.len(), 2, "{o}");
    assert!(rows[0].starts_with("job,job_id_raw,user"));
    assert!(
        rows[1].starts_with("700+0,700,carol,lab-b,cpu,OUT_OF_MEMORY,out_of_memory,"),
        "{}",
        rows[1]
    );
}

#[test]
fn a_measured_record_of_the_job_wins() {
    let h = FakeHost::new();
    // A measured run of job 556141's step 0 in this host's store.
    let out = h
        .cmd()
        .env("SLURM_JOB_ID", "556141")
        .env("SLURM_STEP_ID", "0")
        .args(["run", "--quiet", "--intensity", "467", "--", "true"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (o, _) = import(&h, &[FIXTURE, "--format", "json"], None);
    let v: Value = serde_json::from_str(&o).unwrap();
    let j = jobs(&v);
    assert_eq!(j["556141"]["basis"], "measured");
    assert_eq!(
        j["556141"]["measured_job_keys"],
        serde_json::json!(["slurm:556141.0"])
    );
    assert!(
        j["556141"]["estimate"]["energy_kwh"]["facility"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(j["552375"]["basis"], "estimate");
    assert!(v["notes"]
        .to_string()
        .contains("job 556141: measured wattprint record(s) slurm:556141.0 win over the estimate"));
    assert_eq!(v["waste"]["total"]["jobs_measured"], 1);
    let (t, _) = import(&h, &[FIXTURE], None);
    assert!(t
        .lines()
        .find(|l| l.starts_with("556141 "))
        .unwrap()
        .contains("(measured)"));
    // --no-measured: the estimate again.
    let (o, _) = import(&h, &[FIXTURE, "--format", "json", "--no-measured"], None);
    let v: Value = serde_json::from_str(&o).unwrap();
    assert_eq!(jobs(&v)["556141"]["basis"], "estimate");
}

#[test]
fn run_sacct_passes_the_flags_and_reports_its_failure() {
    // A stand-in `sacct` on its own interface (a program on the command line): it prints its
    // arguments' check and a tiny history.
    let h = FakeHost::new();
    let fake = h.dir.path().join("sacct");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/args\"\n[ \"$1\" = -P ] || exit 3\necho 'JobID|Elapsed|NCPUS|State'\necho '5|00:01:00|2|COMPLETED'\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let f = fake.to_str().unwrap();
    let (o, _) = import(
        &h,
        &[
            "--run-sacct",
            "--sacct",
            f,
            "--starttime",
            "2026-01-01",
            "--allusers",
        ],
        None,
    );
    assert!(o.lines().any(|l| l.starts_with("5 ")), "{o}");
    let args = std::fs::read_to_string(h.dir.path().join("args")).unwrap();
    assert!(args.starts_with("-P --format JobID,JobIDRaw,"), "{args}");
    assert!(
        args.contains("--starttime 2026-01-01") && args.trim_end().ends_with("--allusers"),
        "{args}"
    );
    assert!(!args.contains("--endtime"));
    // A sacct that fails: its status is said, not an empty history.
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n",
    )
    .unwrap();
    let out = h
        .cmd()
        .args(["slurm", "import", "--run-sacct", "--sacct", f])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("accounting storage is disabled"));
}

#[test]
fn input_without_a_header_and_a_wrong_state_are_errors() {
    let h = FakeHost::new();
    let run = |args: &[&str], stdin: &str| {
        let mut c = h.cmd();
        c.args(["slurm", "import"]).args(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut ch = c.spawn().unwrap();
        ch.stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = ch.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&["-"], "");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("no sacct -P output read") && err.contains("no input"),
        "{err}"
    );
    let (code, err) = run(&["-"], "JobID|User\n1|u\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("line 1:") && err.contains("Elapsed"), "{err}");
    let (code, err) = run(&["-", "--state", "done"], "JobID|Elapsed|NCPUS|State\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("--state `done`: one of completed"), "{err}");
}

#[test]
fn store_keeps_estimates_marked_as_estimates_once() {
    let h = FakeHost::new();
    // sacct's default Start has no zone: nothing is stored, and it says why.
    let (_, e) = import(&h, &[FIXTURE, "--store"], None);
    assert!(
        e.contains("stored 0 estimate(s)")
            && e.contains("6 not stored")
            && e.contains("SLURM_TIME_FORMAT"),
        "{e}"
    );
    // With zones (SLURM_TIME_FORMAT=%FT%T%z): the six finished, counted jobs.
    let text = std::fs::read_to_string(FIXTURE)
        .unwrap()
        .replace(":00|2026-", ":00+0100|2026-");
    let text = text
        .replace("T01:00:00|", "T01:00:00+0100|")
        .replace("T13:00:30|", "T13:00:30+0100|");
    let text = text
        .replace("T12:00:25|", "T12:00:25+0100|")
        .replace("T09:00:00|", "T09:00:00+0100|");
    let text = text
        .replace("T08:30:00|", "T08:30:00+0100|")
        .replace("T08:10:00|", "T08:10:00+0100|");
    let (_, e) = import(&h, &["-", "--store", "--project", "hpc"], Some(&text));
    assert!(
        e.contains("stored 6 estimate(s) in project hpc (0 already there"),
        "{e}"
    );
    let (_, e) = import(&h, &["-", "--store", "--project", "hpc"], Some(&text));
    assert!(
        e.contains("stored 0 estimate(s) in project hpc (6 already there"),
        "{e}"
    );
    let runs: Value = serde_json::from_str(&h.ok(&[
        "runs",
        "--project",
        "hpc",
        "--tag",
        "slurm_user=carol",
        "--json",
    ]))
    .unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert_eq!(r["methods"]["cpu"], "estimated:slurm-sacct");
        assert_eq!(r["tags"]["basis"], "estimate");
        assert_eq!(r["job"], Value::Null);
    }
    let oom = runs
        .iter()
        .find(|r| r["tags"]["slurm_job"] == "700+0")
        .unwrap();
    assert_eq!(oom["status"], "failed");
    assert_eq!(oom["started_at"], "2026-01-08T08:00:00+01:00");
    // Stored estimates are not measurements: the next import still estimates every job.
    let (o, _) = import(&h, &[FIXTURE, "--format", "json"], None);
    let v: Value = serde_json::from_str(&o).unwrap();
    assert_eq!(v["waste"]["total"]["jobs_measured"], 0);
}
