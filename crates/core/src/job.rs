//! Job keys: runs with the same key on one host are ranks of one job.
//!
//! `--job KEY` wins; else the launcher's environment names the job: torchrun
//! (`TORCHELASTIC_RUN_ID`), Slurm (`SLURM_JOB_ID` and the step, `SLURM_STEP_ID`), Open MPI
//! (`OMPI_MCA_ess_base_jobid`), PMIx (`PMIX_NAMESPACE`). The rank on the node comes from
//! `LOCAL_RANK` (torchrun), else `OMPI_COMM_WORLD_LOCAL_RANK`, else `SLURM_LOCALID`: under
//! `srun torchrun` every worker inherits `SLURM_LOCALID=0`, so `LOCAL_RANK` must come first.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

use crate::env::Env;

/// Longest job key.
pub const MAX_KEY_LEN: usize = crate::host_ledger::MAX_KEY_LEN;

/// The key, trimmed, when it is 1 to 128 characters of letters, digits and `-_.:@+=`.
pub fn check_key(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()
        && s.len() <= MAX_KEY_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:@+=".contains(c)))
    .then(|| s.to_string())
}

/// The job key from the launcher's environment, if it names one (values that are not usable
/// keys are ignored).
pub fn from_env(env: &Env) -> Option<String> {
    let get = |k: &str| env.get(k).and_then(check_key);
    if let Some(id) = get("TORCHELASTIC_RUN_ID") {
        // torchrun's default run id is "none" when no rendezvous id was given.
        if id != "none" {
            return check_key(&format!("torchrun:{id}"));
        }
    }
    if let Some(job) = get("SLURM_JOB_ID") {
        return check_key(&match get("SLURM_STEP_ID") {
            Some(step) => format!("slurm:{job}.{step}"),
            None => format!("slurm:{job}"),
        });
    }
    if let Some(id) = get("OMPI_MCA_ess_base_jobid") {
        return check_key(&format!("ompi:{id}"));
    }
    if let Some(ns) = get("PMIX_NAMESPACE") {
        return check_key(&format!("pmix:{ns}"));
    }
    None
}

/// This process's rank on its node, per the launcher: `LOCAL_RANK`, else
/// `OMPI_COMM_WORLD_LOCAL_RANK`, else `SLURM_LOCALID`.
pub fn local_rank(env: &Env) -> Option<u32> {
    ["LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"]
        .iter()
        .find_map(|k| env.get(k).and_then(|v| v.trim().parse::<u32>().ok()))
}

/// One node's part of a job: the runs of the job on that host, summed once (a rank's record
/// carries no energy: the node's energy of the job is in its leader's record).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodePart {
    pub host: String,
    pub runs: usize,
    /// Runs that were charged (leaders, and runs that led for a while after a handover).
    pub leaders: usize,
    pub energy_kwh: f64,
    pub emissions_kg: f64,
    pub duration_s: f64,
}

/// A job's total over the nodes that reported.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobTotal {
    pub job: String,
    pub nodes: Vec<NodePart>,
    pub energy_kwh: f64,
    pub emissions_kg: f64,
}

/// Sum the records of `job` per node and over nodes. Records of other jobs are ignored, a run
/// id seen twice counts once (the latest record given wins), nodes come in name order.
pub fn job_total(job: &str, records: &[crate::record::RunRecord]) -> JobTotal {
    let mut by_id: std::collections::BTreeMap<&str, &crate::record::RunRecord> =
        std::collections::BTreeMap::new();
    for r in records.iter().filter(|r| r.job.as_deref() == Some(job)) {
        by_id.insert(r.id.as_str(), r);
    }
    let mut nodes: std::collections::BTreeMap<String, NodePart> = std::collections::BTreeMap::new();
    for r in by_id.values() {
        let n = nodes
            .entry(r.host.hostname.clone())
            .or_insert_with(|| NodePart {
                host: r.host.hostname.clone(),
                runs: 0,
                leaders: 0,
                energy_kwh: 0.0,
                emissions_kg: 0.0,
                duration_s: 0.0,
            });
        n.runs += 1;
        let leads = r
            .sharing
            .as_ref()
            .is_none_or(|s| s.job_role.as_deref() != Some("rank"));
        if leads || r.energy_kwh.total.0 > 0.0 {
            n.leaders += 1;
        }
        n.energy_kwh += r.energy_kwh.total.0;
        n.emissions_kg += r.emissions_kg.total;
        n.duration_s = n.duration_s.max(r.duration_s);
    }
    let round = |x: f64| crate::units::round_sig(x, crate::units::RECORD_DIGITS) + 0.0;
    let nodes: Vec<NodePart> = nodes
        .into_values()
        .map(|mut n| {
            n.energy_kwh = round(n.energy_kwh);
            n.emissions_kg = round(n.emissions_kg);
            n
        })
        .collect();
    JobTotal {
        job: job.to_string(),
        energy_kwh: round(nodes.iter().map(|n| n.energy_kwh).sum()),
        emissions_kg: round(nodes.iter().map(|n| n.emissions_kg).sum()),
        nodes,
    }
}

/// Most node names kept from a node list.
pub const MAX_NODES: usize = 4096;

/// The number of nodes the job runs on, per the launcher: `SLURM_JOB_NUM_NODES` (Slurm), else
/// `GROUP_WORLD_SIZE` (torchrun's number of worker groups, one per node).
pub fn expected_nodes(env: &Env) -> Option<u32> {
    ["SLURM_JOB_NUM_NODES", "GROUP_WORLD_SIZE"]
        .iter()
        .find_map(|k| env.get(k).and_then(|v| v.trim().parse::<u32>().ok()))
        .filter(|n| (1..=MAX_NODES as u32).contains(n))
}

/// The job's node names from `SLURM_JOB_NODELIST` (`gpu[01-03,07],login1`), when it parses and
/// names at most [`MAX_NODES`] nodes.
pub fn nodelist(env: &Env) -> Option<Vec<String>> {
    expand_nodelist(env.get("SLURM_JOB_NODELIST")?)
}

/// Expand a Slurm host list: comma-separated names, each with at most one bracketed range
/// list (`node[1-3,5]`, zero padding kept: `gpu[08-10]`). `None` for anything else.
pub fn expand_nodelist(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    // Split at commas outside brackets.
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return None;
        }
    }
    parts.push(&s[start..]);
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        match (p.find('['), p.rfind(']')) {
            (None, None) => out.push(check_key(p)?),
            (Some(o), Some(c)) if c == p.len() - 1 && o < c => {
                let (prefix, ranges) = (&p[..o], &p[o + 1..c]);
                for r in ranges.split(',') {
                    let (a, b) = r.split_once('-').unwrap_or((r, r));
                    let width = a.len();
                    let (x, y): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
                    if y < x || (y - x) as usize >= MAX_NODES {
                        return None;
                    }
                    for n in x..=y {
                        out.push(check_key(&format!("{prefix}{n:0width$}"))?);
                        if out.len() > MAX_NODES {
                            return None;
                        }
                    }
                }
            }
            _ => return None,
        }
        if out.len() > MAX_NODES {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A node's part of the job.
#[derive(Debug, Default)]
struct Node {
    runs: u64,
    charged_runs: u64,
    running: u64,
    energy_kwh: f64,
    facility_kwh: f64,
    emissions_kg: f64,
    duration_s: f64,
    run_ids: Vec<String>,
}

fn num(v: &Value) -> f64 {
    v.as_f64()
        .filter(|x| x.is_finite() && *x >= 0.0)
        .unwrap_or(0.0)
}

/// The job's figures from its runs' records as JSON (those whose `job` is `key`; others are
/// ignored, a run id seen twice counts once): per node (hostname) the runs, those charged
/// (leaders), the energy and emissions summed once per node; the total; the expected nodes
/// (`job_nodes`, else the length of `job_nodelist`), those reported, the missing ones, and
/// `complete`. Used by the server (`GET /api/v1/jobs/{key}`) and `wattprint import-job`.
pub fn summarize(key: &str, records: &[Value]) -> Value {
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut expected: Option<u64> = None;
    let mut listed: BTreeSet<String> = BTreeSet::new();
    let mut seen_ids = BTreeSet::new();
    for r in records.iter().filter(|r| r["job"].as_str() == Some(key)) {
        let id = r["id"].as_str().unwrap_or("").to_string();
        if !seen_ids.insert(id.clone()) {
            continue;
        }
        let host = r["host"]["hostname"]
            .as_str()
            .unwrap_or("unknown")
            .to_string();
        let n = nodes.entry(host).or_default();
        n.runs += 1;
        let rank = r["sharing"]["job_role"].as_str() == Some("rank");
        let kwh = num(&r["energy_kwh"]["total"]);
        if !rank || kwh > 0.0 {
            n.charged_runs += 1;
        }
        if r["status"].as_str() == Some("running") {
            n.running += 1;
        }
        n.energy_kwh += kwh;
        n.facility_kwh += num(&r["energy_kwh"]["facility"]);
        n.emissions_kg += num(&r["emissions_kg"]["total"]);
        n.duration_s = n.duration_s.max(num(&r["duration_s"]));
        if n.run_ids.len() < 64 {
            n.run_ids.push(id);
        }
        if let Some(e) = r["job_nodes"].as_u64().filter(|e| (1..=4096).contains(e)) {
            expected = Some(expected.map_or(e, |x| x.max(e)));
        }
        if let Some(l) = r["job_nodelist"].as_array() {
            for h in l.iter().filter_map(|h| h.as_str()).take(4096) {
                listed.insert(h.to_string());
            }
        }
    }
    let reported = nodes.len() as u64;
    let expected = expected.or((!listed.is_empty()).then_some(listed.len() as u64));
    let missing: Vec<&String> = listed.iter().filter(|h| !nodes.contains_key(*h)).collect();
    let running: u64 = nodes.values().map(|n| n.running).sum();
    let complete = expected.is_some_and(|e| reported >= e) && missing.is_empty() && running == 0;
    let round = |x: f64| crate::units::round_sig(x, 6) + 0.0;
    let node_list: Vec<Value> = nodes
        .iter()
        .map(|(h, n)| {
            json!({
                "node": h,
                "runs": n.runs,
                "charged_runs": n.charged_runs,
                "running": n.running,
                "energy_kwh": round(n.energy_kwh),
                "facility_kwh": round(n.facility_kwh),
                "emissions_kg": round(n.emissions_kg),
                "duration_s": round(n.duration_s),
                "run_ids": n.run_ids,
            })
        })
        .collect();
    json!({
        "job": key,
        "nodes": node_list,
        "total": {
            "energy_kwh": round(nodes.values().map(|n| n.energy_kwh).sum()),
            "facility_kwh": round(nodes.values().map(|n| n.facility_kwh).sum()),
            "emissions_kg": round(nodes.values().map(|n| n.emissions_kg).sum()),
            "runs": nodes.values().map(|n| n.runs).sum::<u64>(),
        },
        "expected_nodes": expected,
        "reported_nodes": reported,
        "missing_nodes": missing,
        "missing_count": expected.map(|e| e.saturating_sub(reported)),
        "running": running,
        "complete": complete,
    })
}
