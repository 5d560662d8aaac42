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
