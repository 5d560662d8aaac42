#![allow(clippy::unwrap_used)]
//! Concurrent `wattprint run`s on one host share its energy through the host ledger: the real
//! binary, real child processes (their CPU time from the real /proc), a fake powercap tree
//! driven at a known power, and each fake host's own runtime directory.
//!
//! Every wait polls the ledger's published state with a deadline; nothing asserts on
//! wall-clock timing. "Within 2 %" compares with the energy the fake host was driven with over
//! the time the ledger covered.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{read_json, Driver, FakeHost};

const PKG_W: f64 = 300.0;
const DRAM_W: f64 = 10.0;
const DEADLINE: Duration = Duration::from_secs(60);

/// The ledger's newest state on `h` (its runtime directory holds one host directory).
fn state(h: &FakeHost) -> Option<serde_json::Value> {
    let mut best: Option<serde_json::Value> = None;
    for host in std::fs::read_dir(h.runtime()).ok()?.flatten() {
        for f in std::fs::read_dir(host.path()).ok()?.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("state-") && name.ends_with(".json")) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(f.path()) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if best
                .as_ref()
                .is_none_or(|b| v["seq"].as_u64() > b["seq"].as_u64())
            {
                best = Some(v);
            }
        }
    }
    best
}

/// Poll the state until `ok` holds (panics after the deadline, saying what was awaited).
fn wait_state(
    h: &FakeHost,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let t = Instant::now();
    loop {
        if let Some(s) = state(h) {
            if ok(&s) {
                return s;
            }
        }
        assert!(t.elapsed() < DEADLINE, "waited too long for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn accounts(s: &serde_json::Value) -> usize {
    s["accounts"].as_object().map(|a| a.len()).unwrap_or(0)
}

fn covered(s: &serde_json::Value) -> f64 {
    s["covered_s"].as_f64().unwrap_or(0.0)
}

/// Wait until the ledger has covered `secs` more seconds than now.
fn advance(h: &FakeHost, secs: f64) {
    let from = state(h).map(|s| covered(&s)).unwrap_or(0.0);
    wait_state(h, "the ledger to advance", |s| covered(s) >= from + secs);
}

/// A job that runs until `stop` exists: busy (a shell loop testing for the file) or idle. It
/// also ends when the test's directory is gone (a failed test leaves no busy loop behind).
fn job(stop: &Path, busy: bool) -> Vec<String> {
    let s = stop.display();
    let d = stop.parent().unwrap().display();
    let body = if busy {
        format!("while [ ! -e '{s}' ] && [ -d '{d}' ]; do :; done")
    } else {
        format!("while [ ! -e '{s}' ] && [ -d '{d}' ]; do sleep 0.02; done")
    };
    vec!["sh".into(), "-c".into(), body]
}

fn start_run(h: &FakeHost, scope: &str, json: &Path, cmd: &[String]) -> Child {
    h.cmd()
        .env_remove("WATTPRINT_PROCFS_ROOT")
        .env("WATTPRINT_CHECKPOINT_EVERY", "100ms")
        .args([
            "run",
            "--quiet",
            "--scope",
            scope,
            "--interval",
            "50ms",
            "--json",
        ])
        .arg(json)
        .arg("--")
        .args(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn joules(r: &serde_json::Value) -> f64 {
    r["energy_kwh"]["total"].as_f64().unwrap() * 3.6e6
}

fn finish(mut c: Child) {
    let st = c.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = c.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(st.success(), "wattprint run failed: {err}");
}

fn within(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * want,
        "{what}: {got} J vs {want} J (more than {} % apart)",
        tol * 100.0
    );
}

/// The last checkpoint of a run whose tracker was killed, from the local store.
fn stored_run(h: &FakeHost, exclude: &[&str]) -> serde_json::Value {
    let out = h.cmd().args(["runs", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = v
        .as_array()
        .cloned()
        .unwrap_or_else(|| v["runs"].as_array().unwrap().clone());
    let id = runs
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .find(|id| !exclude.contains(&id.as_str()))
        .unwrap();
    let out = h.cmd().args(["show", "--json", &id]).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn touch(p: &Path) {
    std::fs::write(p, "").unwrap();
}

#[test]
fn staggered_machine_scope_runs_together_charge_the_machine_once() {
    let h = FakeHost::new();
    let driver = Driver::constant(&h, PKG_W, DRAM_W);
    let d = h.dir.path();
    let (stop_a, stop_b, stop_c) = (d.join("stop-a"), d.join("stop-b"), d.join("stop-c"));
    let (ja, jb, jc) = (d.join("a.json"), d.join("b.json"), d.join("c.json"));
    // A: idle, first (it reads the counters), later killed -9.
    let mut a = start_run(&h, "machine", &ja, &job(&stop_a, false));
    wait_state(&h, "A in the ledger", |s| {
        accounts(s) == 1 && covered(s) > 0.2
    });
    // B: busy.
    let b = start_run(&h, "machine", &jb, &job(&stop_b, true));
    wait_state(&h, "B in the ledger", |s| accounts(s) == 2);
    // C: idle.
    let c = start_run(&h, "machine", &jc, &job(&stop_c, false));
    wait_state(&h, "C in the ledger", |s| accounts(s) == 3);
    advance(&h, 0.8);
    // A's tracker dies without a word: its entry expires, another run reads the counters.
    let a_pid = a.id();
    unsafe {
        libc::kill(a_pid as i32, libc::SIGKILL);
    }
    let _ = a.wait();
    let s = wait_state(&h, "A expired and a new reader", |s| {
        accounts(s) == 2 && s["reader"]["pid"].as_u64() != Some(u64::from(a_pid))
    });
    assert_ne!(s["reader"]["pid"].as_u64(), Some(u64::from(a_pid)));
    advance(&h, 0.5);
    touch(&stop_c);
    finish(c);
    wait_state(&h, "C left", |s| accounts(s) == 1);
    advance(&h, 0.5);
    touch(&stop_b);
    finish(b);
    touch(&stop_a);
    drop(driver);

    let rb = read_json(&jb);
    let rc = read_json(&jc);
    let ids = [rb["id"].as_str().unwrap(), rc["id"].as_str().unwrap()];
    let ra = stored_run(&h, &ids);
    assert_eq!(ra["status"], "running", "A's last checkpoint");

    let s = state(&h).unwrap();
    let machine_j: f64 = s["machine_j"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    let driven = (PKG_W + DRAM_W) * covered(&s);
    // The readers (A, then B or C, estimating the handover's gap) saw what the host drew.
    within(machine_j, driven, 0.02, "ledger's machine energy");
    // What the ledger charged A in all (its record keeps its last checkpoint only).
    let a_final = s["departed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["run"] == ra["id"])
        .unwrap_or_else(|| panic!("A not among the departed: {s}"));
    assert_eq!(a_final["expired"], true);
    let a_final = a_final["joules"].as_f64().unwrap();
    assert!(
        joules(&ra) <= a_final * (1.0 + 1e-9),
        "{} vs {a_final}",
        joules(&ra)
    );
    // Together the runs are charged the host's energy once, not three times.
    let charged = a_final + joules(&rb) + joules(&rc);
    eprintln!(
        "covered {:.3} s, driven {driven:.1} J, ledger {machine_j:.1} J, runs {a_final:.1} (checkpoint {:.1}) + {:.1} + {:.1} = {charged:.1} J, estimated {} s",
        covered(&s),
        joules(&ra),
        joules(&rb),
        joules(&rc),
        rb["sharing"]["estimated_s"].as_f64().unwrap_or(0.0) + rc["sharing"]["estimated_s"].as_f64().unwrap_or(0.0)
    );
    within(charged, driven, 0.02, "sum over the runs");
    // Machine scope shares nothing with "unattributed".
    let unattributed: f64 = s["unattributed_j"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert_eq!(unattributed, 0.0);

    // The busy run is charged more than the idle one it spent the same time with.
    assert!(
        joules(&rb) > joules(&rc),
        "busy {} vs idle {}",
        joules(&rb),
        joules(&rc)
    );
    // Records say with whom, for how long and by which rule.
    for r in [&rb, &rc] {
        let sh = &r["sharing"];
        assert_eq!(sh["mode"], "shared", "{sh}");
        assert!(sh["rule"]
            .as_str()
            .unwrap()
            .contains("machine scope, shared"));
        assert!(sh["shared_s"].as_f64().unwrap() > 0.5, "{sh}");
        let company: Vec<&str> = sh["company"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["run"].as_str().unwrap())
            .collect();
        assert!(company.contains(&ra["id"].as_str().unwrap()), "{sh}");
    }
    let b_with_c = rb["sharing"]["company"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["run"] == rc["id"])
        .unwrap()["seconds"]
        .as_f64()
        .unwrap();
    assert!(b_with_c > 0.5 && b_with_c <= rc["duration_s"].as_f64().unwrap() + 0.2);
    // The files of the runs that ended are gone, the killed one's expired.
    let host_dir: PathBuf = std::fs::read_dir(h.runtime())
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let left: Vec<String> = std::fs::read_dir(&host_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("p-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn process_scope_runs_plus_unattributed_equal_the_machine() {
    let h = FakeHost::new();
    let driver = Driver::constant(&h, PKG_W, DRAM_W);
    let d = h.dir.path();
    let (stop_a, stop_b) = (d.join("stop-a"), d.join("stop-b"));
    let (ja, jb) = (d.join("a.json"), d.join("b.json"));
    let a = start_run(&h, "process", &ja, &job(&stop_a, true));
    wait_state(&h, "A in the ledger", |s| {
        accounts(s) == 1 && covered(s) > 0.2
    });
    let b = start_run(&h, "process", &jb, &job(&stop_b, false));
    wait_state(&h, "B in the ledger", |s| accounts(s) == 2);
    advance(&h, 0.8);
    touch(&stop_a);
    finish(a);
    wait_state(&h, "A left", |s| accounts(s) == 1);
    advance(&h, 0.3);
    touch(&stop_b);
    finish(b);
    drop(driver);
    let (ra, rb) = (read_json(&ja), read_json(&jb));
    let s = state(&h).unwrap();
    let sum = |k: &str| -> f64 {
        s[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .sum()
    };
    let driven = (PKG_W + DRAM_W) * covered(&s);
    let unattributed = sum("unattributed_j");
    assert!(unattributed > 0.0, "the idle machine's rest is nobody's");
    within(
        joules(&ra) + joules(&rb) + unattributed,
        driven,
        0.02,
        "process-scope runs + unattributed",
    );
    within(sum("machine_j"), driven, 0.02, "ledger's machine energy");
    // The busy shell loop is charged a real share; the sleeping one less.
    assert!(
        joules(&ra) > joules(&rb),
        "{} vs {}",
        joules(&ra),
        joules(&rb)
    );
    assert!(ra["sharing"]["rule"]
        .as_str()
        .unwrap()
        .starts_with("process scope"));
    assert_eq!(ra["sharing"]["mode"], "shared");
}

#[test]
fn a_lone_machine_scope_run_is_charged_the_whole_machine() {
    let h = FakeHost::new();
    let driver = Driver::constant(&h, 40.0, 4.0);
    let json = h.dir.path().join("r.json");
    let out = h
        .cmd()
        .args(["run", "--quiet", "--interval", "50ms", "--json"])
        .arg(&json)
        .args(["--", "sleep", "1"])
        .output()
        .unwrap();
    drop(driver);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = read_json(&json);
    // every device: charged = what it drew, as without the ledger
    for dev in r["devices"].as_array().unwrap() {
        assert_eq!(dev["energy_kwh"], dev["machine_energy_kwh"], "{dev}");
    }
    let j = joules(&r);
    let want = 44.0 * r["duration_s"].as_f64().unwrap();
    within(j, want, 0.02, "lone run");
    let sh = &r["sharing"];
    assert_eq!(sh["mode"], "alone", "{sh}");
    assert_eq!(sh["reader"], true);
    assert_eq!(sh["company"].as_array().unwrap().len(), 0);
    assert!(sh["rule"].as_str().unwrap().contains("alone"));
}

#[test]
fn a_quiet_follower_sleeps_until_its_checkpoint_and_takes_over_when_the_reader_ends() {
    let h = FakeHost::new();
    let driver = Driver::constant(&h, PKG_W, DRAM_W);
    let d = h.dir.path();
    let (stop_a, stop_b) = (d.join("stop-a"), d.join("stop-b"));
    let (ja, jb) = (d.join("a.json"), d.join("b.json"));
    // A reads the counters; B follows, quiet (no terminal, no limits), with a 10 s cadence.
    let mut a = start_run(&h, "machine", &ja, &job(&stop_a, false));
    wait_state(&h, "A reading", |s| accounts(s) == 1 && covered(s) > 0.2);
    let b = h
        .cmd()
        .env_remove("WATTPRINT_PROCFS_ROOT")
        .env("WATTPRINT_CHECKPOINT_EVERY", "10s")
        .args(["run", "--quiet", "--interval", "50ms", "--json"])
        .arg(&jb)
        .arg("--")
        .args(job(&stop_b, false))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_state(&h, "B in the ledger", |s| accounts(s) == 2);
    // About 40 of A's intervals with B present: B looks at none of them.
    advance(&h, 2.0);
    // A's tracker dies: B's sleep ends with it (the reader's pidfd), not 10 s later.
    let a_pid = a.id();
    unsafe {
        libc::kill(a_pid as i32, libc::SIGKILL);
    }
    let _ = a.wait();
    let b_pid = u64::from(b.id());
    wait_state(&h, "B reading", |s| {
        s["reader"]["pid"].as_u64() == Some(b_pid)
    });
    advance(&h, 0.5);
    touch(&stop_b);
    finish(b);
    touch(&stop_a);
    drop(driver);
    let rb = read_json(&jb);
    let sh = &rb["sharing"];
    // The gap between A's last publication and B's first was estimated: well under the
    // 10 s B would have slept without the reader's pidfd.
    let estimated = sh["estimated_s"].as_f64().unwrap_or(0.0);
    assert!(
        estimated < 5.0,
        "B took over late: {estimated} s estimated ({sh})"
    );
    // B read a handful of times while following, then every interval as the reader: far
    // fewer reads than the ≈ 50 intervals it lasted (and none counted as skipped).
    let reads = rb["samples"].as_u64().unwrap() + rb["skipped_ticks"].as_u64().unwrap_or(0);
    let intervals = rb["duration_s"].as_f64().unwrap() / 0.05;
    // (≈ 40 intervals slept through; a follower reading every interval has reads ≈ intervals)
    assert!(
        (reads as f64) < intervals - 20.0,
        "B read {reads} times in {intervals:.0} intervals"
    );
    // What B was charged while following is exact: A's share and B's sum to the host.
    let s = state(&h).unwrap();
    let a_j = s["departed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["expired"] == true)
        .unwrap_or_else(|| panic!("A not among the departed: {s}"))["joules"]
        .as_f64()
        .unwrap();
    let driven = (PKG_W + DRAM_W) * covered(&s);
    within(a_j + joules(&rb), driven, 0.02, "A and B together");
    assert_eq!(sh["mode"], "shared", "{sh}");
}

#[test]
fn the_ledger_can_be_switched_off() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let out = h
        .cmd()
        .env("WATTPRINT_HOST_LEDGER", "off")
        .args(["run", "--quiet", "--interval", "50ms", "--json"])
        .arg(&json)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let r = read_json(&json);
    assert!(r.get("sharing").is_none(), "{}", r["sharing"]);
    assert!(!h.runtime().exists());
}

#[test]
fn job_key_from_the_flag_or_the_launcher_is_recorded() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let mut c: Command = h.cmd();
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c
            .args(["run", "--quiet", "--interval", "50ms", "--json"])
            .arg(&json)
            .args(extra)
            .args(["--", "true"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        read_json(&json)
    };
    assert_eq!(run(&["--job", "exp-42"], &[])["job"], "exp-42");
    assert_eq!(
        run(&[], &[("SLURM_JOB_ID", "1234"), ("SLURM_STEP_ID", "0")])["job"],
        "slurm:1234.0"
    );
    assert_eq!(
        run(
            &[],
            &[("TORCHELASTIC_RUN_ID", "abc"), ("SLURM_JOB_ID", "9")]
        )["job"],
        "torchrun:abc"
    );
    let out = h
        .cmd()
        .args(["run", "--job", "has space", "--", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--job"));
}

const LAUNCHER_VARS: [&str; 8] = [
    "LOCAL_RANK",
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "SLURM_LOCALID",
    "SLURM_JOB_ID",
    "SLURM_STEP_ID",
    "TORCHELASTIC_RUN_ID",
    "OMPI_MCA_ess_base_jobid",
    "PMIX_NAMESPACE",
];

/// Start one rank: `env` on top of a clean launcher environment.
fn start_rank(
    h: &FakeHost,
    json: &Path,
    env: &[(&str, String)],
    extra: &[&str],
    cmd: &[String],
) -> Child {
    let mut c = h.cmd();
    for k in LAUNCHER_VARS {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.env_remove("WATTPRINT_PROCFS_ROOT")
        .env("WATTPRINT_CHECKPOINT_EVERY", "100ms")
        .args(["run", "--quiet", "--interval", "50ms", "--json"])
        .arg(json)
        .args(extra)
        .arg("--")
        .args(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn driven_now(h: &FakeHost) -> f64 {
    (PKG_W + DRAM_W) * covered(&state(h).unwrap())
}

/// `wattprint runs --job KEY --json`: the job's totals.
fn job_totals(h: &FakeHost, key: &str) -> serde_json::Value {
    let out = h
        .cmd()
        .args(["runs", "--json", "--job", key])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn four_ranks_under_srun_torchrun_are_led_by_local_rank_zero() {
    // A fake `srun torchrun`: four workers started at once, the highest rank first; every one
    // inherits SLURM_LOCALID=0 from srun, torchrun gives each its LOCAL_RANK.
    let h = FakeHost::new();
    let driver = Driver::constant(&h, PKG_W, DRAM_W);
    let d = h.dir.path();
    let stop = d.join("stop");
    let mut ranks = Vec::new();
    for rank in (0..4u32).rev() {
        let env = [
            ("SLURM_JOB_ID", "4242".to_string()),
            ("SLURM_STEP_ID", "0".to_string()),
            ("SLURM_LOCALID", "0".to_string()),
            ("TORCHELASTIC_RUN_ID", "rdzv-7".to_string()),
            ("LOCAL_RANK", rank.to_string()),
        ];
        let json = d.join(format!("rank{rank}.json"));
        ranks.push((
            rank,
            json.clone(),
            start_rank(&h, &json, &env, &[], &job(&stop, rank % 2 == 0)),
        ));
    }
    wait_state(&h, "four ranks in the ledger", |s| accounts(s) == 4);
    advance(&h, 0.8);
    touch(&stop);
    for (_, _, c) in ranks.drain(..) {
        finish(c);
    }
    let driven = driven_now(&h);
    drop(driver);
    let recs: Vec<serde_json::Value> = (0..4)
        .map(|r| read_json(&d.join(format!("rank{r}.json"))))
        .collect();
    let leader = &recs[0];
    for r in &recs {
        assert_eq!(r["job"], "torchrun:rdzv-7");
    }
    assert_eq!(
        leader["sharing"]["job_role"], "leader",
        "{}",
        leader["sharing"]
    );
    assert_eq!(leader["sharing"]["ranks"], 4);
    for r in &recs[1..] {
        assert_eq!(r["sharing"]["job_role"], "rank", "{}", r["sharing"]);
        assert_eq!(r["sharing"]["leader"], leader["id"]);
    }
    // The node's energy once: the ranks' records add up to it, and rank 0's holds most of it
    // (the others led only until it joined).
    let sum: f64 = recs.iter().map(joules).sum();
    within(sum, driven, 0.02, "sum over the four ranks");
    assert!(joules(leader) > 0.5 * sum, "{} of {sum}", joules(leader));
    // The job alone on the node: no company.
    assert_eq!(leader["sharing"]["mode"], "alone", "{}", leader["sharing"]);
    // `show` of a rank gives the job's total on the node, once.
    let out = h
        .cmd()
        .args(["show", recs[2]["id"].as_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("job torchrun:rdzv-7: 1 node(s)") && text.contains("4 run(s)"),
        "{text}"
    );
    let t = job_totals(&h, "torchrun:rdzv-7");
    assert_eq!(t["nodes"].as_array().unwrap().len(), 1, "{t}");
    assert_eq!(t["nodes"][0]["runs"], 4);
    within(
        t["energy_kwh"].as_f64().unwrap() * 3.6e6,
        sum,
        1e-5,
        "runs --job total",
    );
}

#[test]
fn four_ranks_started_in_a_race_have_exactly_one_leader() {
    let h = FakeHost::new();
    let driver = Driver::constant(&h, PKG_W, DRAM_W);
    let d = h.dir.path();
    let stop = d.join("stop");
    // Started from four threads at once, no launcher ranks: the first to take the lock leads.
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let json = d.join(format!("race{i}.json"));
            let cmd = job(&stop, i % 2 == 1);
            let c = h.cmd();
            let prog = c.get_program().to_owned();
            let envs: Vec<(std::ffi::OsString, Option<std::ffi::OsString>)> = c
                .get_envs()
                .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
                .collect();
            std::thread::spawn(move || {
                let mut c = Command::new(prog);
                for (k, v) in envs {
                    match v {
                        Some(v) => c.env(k, v),
                        None => c.env_remove(k),
                    };
                }
                for k in LAUNCHER_VARS {
                    c.env_remove(k);
                }
                c.env_remove("WATTPRINT_PROCFS_ROOT")
                    .args([
                        "run",
                        "--quiet",
                        "--interval",
                        "50ms",
                        "--job",
                        "race-job",
                        "--json",
                    ])
                    .arg(&json)
                    .arg("--")
                    .args(&cmd)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
        })
        .collect();
    let kids: Vec<Child> = handles.into_iter().map(|t| t.join().unwrap()).collect();
    wait_state(&h, "four ranks in the ledger", |s| accounts(s) == 4);
    advance(&h, 0.8);
    touch(&stop);
    for c in kids {
        finish(c);
    }
    let driven = driven_now(&h);
    drop(driver);
    let recs: Vec<serde_json::Value> = (0..4)
        .map(|i| read_json(&d.join(format!("race{i}.json"))))
        .collect();
    let leaders: Vec<&serde_json::Value> = recs
        .iter()
        .filter(|r| r["sharing"]["job_role"] == "leader")
        .collect();
    assert_eq!(
        leaders.len(),
        1,
        "{:?}",
        recs.iter().map(|r| &r["sharing"]).collect::<Vec<_>>()
    );
    let leader = leaders[0];
    for r in recs.iter().filter(|r| r["id"] != leader["id"]) {
        assert_eq!(r["sharing"]["leader"], leader["id"]);
        // the first to join led until it ended: the others were charged at most the tail
        // after it (the job's energy on the node, once)
        assert!(joules(r) < 0.2 * joules(leader), "{}", r["sharing"]);
    }
    let sum: f64 = recs.iter().map(joules).sum();
    within(sum, driven, 0.02, "the job on the node");
    assert!(joules(leader) > 0.8 * sum, "{} of {sum}", joules(leader));
    let t = job_totals(&h, "race-job");
    within(
        t["energy_kwh"].as_f64().unwrap() * 3.6e6,
        sum,
        1e-5,
        "runs --job total",
    );
}

/// A running `wattprint agent`, stopped (SIGTERM) when dropped.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// Start the node agent on `h` (metrics on a free loopback port, no server); its metrics URL.
fn start_agent(h: &FakeHost) -> (Agent, String) {
    use std::io::{BufRead, BufReader};
    let mut c = h
        .cmd()
        .env_remove("WATTPRINT_SERVER")
        .env_remove("WATTPRINT_TOKEN")
        .env("WATTPRINT_HOME", h.dir.path().join("agent-home"))
        .env("WATTPRINT_CONFIG", h.dir.path().join("none.toml"))
        .env("WATTPRINT_SYSTEM_CONFIG", h.dir.path().join("none.toml"))
        .args([
            "agent",
            "--metrics",
            "127.0.0.1:0",
            "--interval",
            "50ms",
            "--intensity",
            "100",
            "--pue",
            "1.0",
            "--no-attribution",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = c.stdout.take().unwrap();
    let agent = Agent(c);
    let mut first = String::new();
    BufReader::new(out).read_line(&mut first).unwrap();
    let url = first
        .split_whitespace()
        .map(|w| w.trim_end_matches(';'))
        .find(|w| w.starts_with("http://") && w.ends_with("/metrics"))
        .unwrap_or_else(|| panic!("no metrics URL in {first:?}"))
        .to_string();
    (agent, url)
}

fn scrape(url: &str) -> String {
    ureq::get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

fn run_series(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("wattprint_run_energy_joules_total{"))
        .map(str::to_string)
        .collect()
}

#[test]
fn with_the_agent_runs_take_their_shares_without_reading_the_counters() {
    let h = FakeHost::new();
    let driver = Driver::constant(&h, PKG_W, DRAM_W);
    let d = h.dir.path();
    let (agent, url) = start_agent(&h);
    wait_state(&h, "the agent reading", |s| s["reader"]["agent"] == true);
    let (stop_a, stop_b) = (d.join("stop-a"), d.join("stop-b"));
    let (ja, jb) = (d.join("a.json"), d.join("b.json"));
    let a = start_run(&h, "machine", &ja, &job(&stop_a, true));
    wait_state(&h, "A in the ledger", |s| accounts(s) == 1);
    let b = start_run(&h, "process", &jb, &job(&stop_b, false));
    wait_state(&h, "B in the ledger", |s| accounts(s) == 2);
    advance(&h, 0.6);
    let m = scrape(&url);
    let series = run_series(&m);
    assert_eq!(series.len(), 2, "{m}");
    assert!(
        series
            .iter()
            .any(|l| l.contains("scope=\"machine\"") && l.contains("job=\"\"")),
        "{series:?}"
    );
    assert!(
        m.contains("wattprint_unattributed_energy_joules_total "),
        "{m}"
    );
    // The agent stays the reader throughout.
    assert_eq!(state(&h).unwrap()["reader"]["agent"], true);
    touch(&stop_b);
    finish(b);
    wait_state(&h, "B left", |s| accounts(s) == 1);
    advance(&h, 0.3);
    touch(&stop_a);
    finish(a);
    let s = wait_state(&h, "A left", |s| accounts(s) == 0);
    let driven = (PKG_W + DRAM_W) * covered(&s);
    let (ra, rb) = (read_json(&ja), read_json(&jb));
    for r in [&ra, &rb] {
        // the agent read the counters: the run never did
        assert_eq!(r["sharing"]["reader"], false, "{}", r["sharing"]);
        assert!(r["sharing"]["company"].as_array().unwrap().len() <= 1);
    }
    // A (machine scope) was present whenever a run was: together they are charged the
    // machine's energy over that time, once.
    within(
        joules(&ra) + joules(&rb),
        driven,
        0.02,
        "runs with the agent",
    );
    assert!(joules(&ra) > joules(&rb));
    // Finished runs drop out of the metrics; the unattributed counter stays.
    wait_state(&h, "a reading with no run", |s2| {
        s2["seq"].as_u64() > s["seq"].as_u64()
    });
    let m = scrape(&url);
    assert!(run_series(&m).is_empty(), "{m}");
    assert!(
        m.contains("wattprint_unattributed_energy_joules_total "),
        "{m}"
    );
    drop(agent);
    drop(driver);
    // The agent left the ledger when it stopped.
    let s = state(&h).unwrap();
    assert!(s["reader"].is_null(), "{s}");
}

#[test]
fn a_budget_on_every_rank_stops_the_whole_job_at_the_jobs_energy() {
    // Two ranks of one job, each started with the same energy budget (as a launcher does).
    // The ledger charges the job's leader; the other rank is charged nothing itself, yet its
    // budget must watch the job's energy on the node and stop it too.
    let h = FakeHost::new();
    let driver = Driver::constant(&h, PKG_W, DRAM_W);
    let d = h.dir.path();
    let stop = d.join("stop");
    // About two seconds of the node's power.
    let budget_j = 2.0 * (PKG_W + DRAM_W);
    let budget = format!("{}", budget_j / 3.6e6);
    let mut ranks = Vec::new();
    for rank in 0..2u32 {
        let env = [
            ("TORCHELASTIC_RUN_ID", "rdzv-budget".to_string()),
            ("LOCAL_RANK", rank.to_string()),
        ];
        let json = d.join(format!("b{rank}.json"));
        let c = start_rank(
            &h,
            &json,
            &env,
            &["--budget-kwh", &budget, "--grace", "1s"],
            &job(&stop, false),
        );
        ranks.push((json, c));
    }
    // Both end on their own: the budget stops them (the stop file is the test's way out).
    let t = std::time::Instant::now();
    for (_, c) in ranks.iter_mut() {
        loop {
            if c.try_wait().unwrap().is_some() {
                break;
            }
            if t.elapsed() > std::time::Duration::from_secs(60) {
                touch(&stop);
                panic!("a rank was not stopped by the job's budget");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    drop(driver);
    let recs: Vec<serde_json::Value> = ranks.iter().map(|(j, _)| read_json(j)).collect();
    let roles: Vec<&str> = recs
        .iter()
        .map(|r| r["sharing"]["job_role"].as_str().unwrap_or(""))
        .collect();
    assert!(
        roles.contains(&"leader") && roles.contains(&"rank"),
        "{roles:?}"
    );
    for r in &recs {
        assert_eq!(r["status"], "stopped_by_budget", "{}", r["sharing"]);
        assert_eq!(r["stopped"]["limit"], "budget_kwh");
    }
    // The rank's own record still carries (almost) nothing: the job's energy is its leader's.
    let rank = recs
        .iter()
        .find(|r| r["sharing"]["job_role"] == "rank")
        .unwrap();
    let leader = recs
        .iter()
        .find(|r| r["sharing"]["job_role"] == "leader")
        .unwrap();
    assert!(joules(leader) >= 0.9 * budget_j, "{} J", joules(leader));
    assert!(joules(rank) < 0.5 * joules(leader), "{} J", joules(rank));
}

/// Processes the fake procfs shows: pid, CPU ticks per second, resident pages, since when.
type FakeProcs = std::sync::Arc<std::sync::Mutex<Vec<(u32, f64, u64, std::time::Instant)>>>;

/// Drives the fake procfs as the counters are driven: the machine's busy CPU ticks at
/// `busy_hz`, and for each registered process its own ticks and resident pages.
struct UseDriver {
    procs: FakeProcs,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UseDriver {
    fn start(h: &FakeHost, busy_hz: f64) -> UseDriver {
        let proc_dir = h.proc();
        let procs: FakeProcs = Default::default();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p2, s2) = (procs.clone(), stop.clone());
        let write = |p: &Path, text: String| {
            let tmp = p.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, p).unwrap();
        };
        let thread = std::thread::spawn(move || {
            let t0 = std::time::Instant::now();
            while !s2.load(std::sync::atomic::Ordering::SeqCst) {
                let busy = (busy_hz * t0.elapsed().as_secs_f64()) as u64;
                write(
                    &proc_dir.join("stat"),
                    format!("cpu  {busy} 0 0 {} 0 0 0 0 0 0\n", 10 * busy + 1000),
                );
                for &(pid, hz, rss_pages, since) in p2.lock().unwrap().iter() {
                    let ticks = (hz * since.elapsed().as_secs_f64()) as u64;
                    let dir = proc_dir.join(pid.to_string());
                    std::fs::create_dir_all(&dir).unwrap();
                    write(
                        &dir.join("stat"),
                        format!(
                            "{pid} (sh) S 1 1 1 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 100 0 {rss_pages}\n"
                        ),
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        UseDriver {
            procs,
            stop,
            thread: Some(thread),
        }
    }

    /// From now on, `pid` uses `hz` CPU ticks per second and `rss_pages` of memory.
    fn add(&self, pid: u32, hz: f64, rss_pages: u64) -> std::time::Instant {
        let now = std::time::Instant::now();
        self.procs.lock().unwrap().push((pid, hz, rss_pages, now));
        now
    }
}

impl Drop for UseDriver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The pid a job wrote to `file` (`echo $$`), once it has.
fn job_pid(file: &Path) -> u32 {
    let t = std::time::Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(file) {
            if let Ok(p) = s.trim().parse() {
                return p;
            }
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "no pid in {file:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn device_j(r: &serde_json::Value, kind: &str) -> f64 {
    r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| d["energy_kwh"].as_f64().unwrap() * 3.6e6)
        .sum()
}

#[test]
fn process_scope_shares_follow_the_use_a_fake_procfs_reports() {
    // Everything the split reads is faked at its interface: the counters (powercap) and the
    // use (procfs: the machine's busy ticks, each job's ticks and resident pages), so each
    // run's share is known in advance. Machine busy at 4 000 ticks/s (many ticks per interval:
    // whole ticks do not blur the shares); A uses 3 000/s and a quarter of the memory in use,
    // B 1 000/s and an eighth.
    let h = FakeHost::new();
    let driver = Driver::constant(&h, PKG_W, DRAM_W);
    let uses = UseDriver::start(&h, 4000.0);
    let d = h.dir.path();
    // used = MemTotal − MemAvailable = 8 000 000 kB
    let used_pages = 8_000_000u64 * 1024 / 4096;
    let mut runs = Vec::new();
    for (name, hz, pages) in [("a", 3000.0, used_pages / 4), ("b", 1000.0, used_pages / 8)] {
        let stop = d.join(format!("stop-{name}"));
        let pid_file = d.join(format!("pid-{name}"));
        let json = d.join(format!("{name}.json"));
        let body = format!(
            "echo $$ > '{}'; while [ ! -e '{}' ] && [ -d '{}' ]; do sleep 0.02; done",
            pid_file.display(),
            stop.display(),
            d.display()
        );
        let spawned = std::time::Instant::now();
        let child = h
            .cmd()
            .env("WATTPRINT_CHECKPOINT_EVERY", "100ms")
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
            .args(["--", "sh", "-c", &body])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Until the fake procfs shows the job, the run uses nothing: at most this long.
        let unseen_s = (uses.add(job_pid(&pid_file), hz, pages) - spawned).as_secs_f64();
        runs.push((name, stop, json, child, unseen_s, hz, pages));
        wait_state(&h, "the run in the ledger", |s| accounts(s) == runs.len());
    }
    advance(&h, 2.0);
    let mut recs = Vec::new();
    for (name, stop, json, child, unseen_s, hz, pages) in runs {
        touch(&stop);
        finish(child);
        recs.push((name, read_json(&json), unseen_s, hz, pages));
    }
    drop(uses);
    drop(driver);
    for (name, r, unseen_s, hz, pages) in &recs {
        let cpu_share = hz / 4000.0;
        let ram_share = *pages as f64 / used_pages as f64;
        let (cpu, ram) = (device_j(r, "cpu"), device_j(r, "ram"));
        // The CPU rule (own ticks ÷ machine busy ticks) against the RAM rule (resident ÷ in
        // use), interval by interval: their ratio does not depend on timing.
        within(
            cpu / ram,
            (cpu_share * PKG_W) / (ram_share * DRAM_W),
            0.05,
            &format!("{name}: CPU ÷ RAM"),
        );
        // And in absolute terms: the package's power × its share over the time the ledger
        // counted the run (its own clock, not the test's: no race with a loaded machine),
        // less the time before the fake procfs showed the job and one baseline interval.
        let counted_s =
            r["sharing"]["alone_s"].as_f64().unwrap() + r["sharing"]["shared_s"].as_f64().unwrap();
        let (most, least) = (
            cpu_share * PKG_W * counted_s,
            cpu_share * PKG_W * (counted_s - unseen_s - 0.1),
        );
        assert!(
            cpu <= most * 1.02 && cpu >= least * 0.98,
            "{name}: CPU {cpu} J, expected {least}–{most} J"
        );
        assert_eq!(
            r["sharing"]["rule"].as_str().unwrap(),
            wattprint_core::host_ledger::PROCESS_RULE
        );
    }
    // What neither used stays the host's: together the pieces are the machine's energy.
    let s = state(&h).unwrap();
    let sum = |k: &str| -> f64 {
        s[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .sum()
    };
    let (machine, unattributed) = (sum("machine_j"), sum("unattributed_j"));
    let charged: f64 = recs.iter().map(|(_, r, ..)| joules(r)).sum();
    within(charged + unattributed, machine, 0.02, "runs + unattributed");
}
