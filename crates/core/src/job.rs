//! Job keys: runs with the same key on one host are ranks of one job.
//!
//! `--job KEY` wins; else the launcher's environment names the job: torchrun
//! (`TORCHELASTIC_RUN_ID`), Slurm (`SLURM_JOB_ID` and the step, `SLURM_STEP_ID`), Open MPI
//! (`OMPI_MCA_ess_base_jobid`), PMIx (`PMIX_NAMESPACE`). The rank on the node comes from
//! `LOCAL_RANK` (torchrun), else `OMPI_COMM_WORLD_LOCAL_RANK`, else `SLURM_LOCALID`: under
//! `srun torchrun` every worker inherits `SLURM_LOCALID=0`, so `LOCAL_RANK` must come first.

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
