//! `GET /api/v1/jobs/{key}`: one job across nodes. Each node's leader uploads its part (the
//! job's energy on that node, once: its ranks' records carry none); the answer gives each
//! node's figures, the job's total summed once per node, and whether every expected node
//! reported (`job_nodes` in the records: `--nodes`, `SLURM_JOB_NUM_NODES`,
//! `GROUP_WORLD_SIZE`), naming the missing ones when the records list the nodes
//! (`SLURM_JOB_NODELIST`). Uploads are idempotent per run, so a node that reports twice counts
//! once.

use super::ApiError;
use crate::app::AppState;
use crate::auth::Auth;
use crate::store_jobs::MAX_JOB_RUNS;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

/// `GET /api/v1/jobs/{key}`: any role; only the runs the token may see.
pub async fn get(
    State(st): State<AppState>,
    auth: Auth,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Some(key) = wattprint_core::job::check_key(&key) else {
        return Err(ApiError::bad_request(
            "job key: 1 to 128 letters, digits and - _ . : @ + =",
        ));
    };
    let texts = st
        .store
        .job_records(&auth.scope(), &key, MAX_JOB_RUNS)
        .await
        .map_err(ApiError::internal)?;
    let records: Vec<Value> = texts
        .iter()
        .filter_map(|t| serde_json::from_str::<Value>(t).ok())
        .filter(|v| v["job"].as_str() == Some(key.as_str()))
        .collect();
    if records.is_empty() {
        return Err(ApiError::not_found(format!(
            "no run of job {key:?} visible to this token"
        )));
    }
    Ok(Json(wattprint_core::job::summarize(&key, &records)))
}
