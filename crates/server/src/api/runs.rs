//! Runs: ingest (idempotent upsert of checkpoints and final records), samples, listing, one run.

use super::{check_ident, check_len, month_of, parse_time, query, typed, ApiError, JsonBody};
use crate::app::AppState;
use crate::auth::Auth;
use crate::store::{NewRun, Outcome, Role, RunFilter, Sample};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use wattprint_core::record::{RunRecord, RunStatus};
use wattprint_core::validate::{check_sample, ValidationError};

/// Longest run id.
pub const MAX_RUN_ID: usize = wattprint_core::validate::MAX_RUN_ID;
/// Longest team, project, user, device or tag name.
pub const MAX_NAME: usize = wattprint_core::validate::MAX_NAME;
/// Most samples in one request.
pub const MAX_SAMPLES: usize = 100_000;

/// Check a run record with [`RunRecord::validate`] (form, physical bounds, times, identities; see
/// docs/server.md, "Validation"): a refusal is a 422 naming the field's JSON path.
pub fn validate_record(r: &RunRecord) -> Result<(), ApiError> {
    r.validate().map_err(invalid)
}

fn invalid(e: ValidationError) -> ApiError {
    ApiError::invalid(e.to_string())
}

/// Check samples: device ids, finite non-negative times and energies within the bounds of one
/// run, `t1 >= t0`.
pub fn validate_samples(path: &str, s: &[Sample]) -> Result<(), ApiError> {
    check_len(path, s, MAX_SAMPLES)?;
    for (i, x) in s.iter().enumerate() {
        check_ident(&format!("{path}[{i}].device_id"), &x.device_id, MAX_NAME)?;
        check_sample(&format!("{path}[{i}]"), x.t0, x.t1, x.energy_j).map_err(invalid)?;
    }
    Ok(())
}

/// `POST /api/v1/runs`: a run record (`wattprint.run/1`), optionally with `series` (samples) and, for
/// tokens not tied to a user, `user`. Idempotent: see [`Outcome`].
pub async fn ingest(
    State(st): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(Role::Member, "uploading runs")?;
    let Some(team_id) = auth.team_id() else {
        return Err(ApiError::forbidden(
            "an organisation-wide token cannot upload runs; use a team or project token",
        ));
    };
    let Value::Object(mut obj) = body else {
        return Err(ApiError::invalid(
            "the body must be a JSON object: a wattprint.run/1 record, optionally with `series` and `user`",
        ));
    };
    // Not `samples`: the record already has a `samples` field (the sampler's read count).
    let samples: Vec<Sample> = match obj.remove("series") {
        Some(v) => typed(v, "series")?,
        None => Vec::new(),
    };
    let body_user: Option<String> = match obj.remove("user") {
        Some(v) => typed(v, "user")?,
        None => None,
    };
    let record_value = Value::Object(obj);
    let rec: RunRecord = typed(record_value.clone(), "run record")?;
    validate_record(&rec)?;
    validate_samples("series", &samples)?;
    if let Some(u) = &body_user {
        check_ident("user", u, MAX_NAME)?;
    }
    let user = auth.token.user.clone().or(body_user);
    let org_id = auth.token.org_id;
    let project_id = match (auth.token.project_id, &auth.token.project) {
        (Some(pid), Some(pname)) => {
            if *pname != rec.project {
                return Err(ApiError::forbidden(format!(
                    "this token is scoped to project {pname:?}; the run names project {:?}",
                    rec.project
                )));
            }
            Some(pid)
        }
        _ => None,
    };
    let started = parse_time("started_at", &rec.started_at)?;
    let status_rank = i64::from(rec.status != RunStatus::Running);
    let run = NewRun {
        org_id,
        team_id,
        project: rec.project.clone(),
        project_id,
        run_id: rec.id.clone(),
        user,
        status: rec.status.as_str().to_string(),
        status_rank,
        started_at: rec.started_at.clone(),
        started_unix: started.unix_timestamp(),
        ended_at: rec.ended_at.clone(),
        month: month_of(started),
        duration_s: rec.duration_s,
        energy_kwh: rec.energy_kwh.total.0,
        facility_kwh: rec.energy_kwh.facility.0,
        emissions_kg: rec.emissions_kg.total,
        hostname: rec.host.hostname.clone(),
        record: serde_json::to_string(&record_value).map_err(|e| ApiError::internal(e.into()))?,
    };
    let outcome = st
        .store
        .upsert_run(&run, &samples)
        .await
        .map_err(ApiError::internal)?;
    if let Outcome::ProjectConflict { existing_project } = &outcome {
        return Err(ApiError::conflict(format!(
            "run {:?} already belongs to project {existing_project:?}; a run cannot move between projects (run ids are unique per team)",
            rec.id
        )));
    }
    let code = if outcome == Outcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        code,
        Json(json!({
            "run_id": rec.id,
            "outcome": outcome.as_str(),
            "status": rec.status.as_str(),
            "samples": samples.len(),
        })),
    ))
}

#[derive(Deserialize)]
pub struct SamplesBody {
    pub samples: Vec<Sample>,
}

/// `POST /api/v1/runs/{id}/samples`: upsert samples of a run (by device and start time).
pub async fn add_samples(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Member, "uploading samples")?;
    if auth.team_id().is_none() {
        return Err(ApiError::forbidden(
            "an organisation-wide token cannot upload samples; use a team or project token",
        ));
    }
    let b: SamplesBody = typed(body, "samples body")?;
    validate_samples("samples", &b.samples)?;
    match st
        .store
        .add_samples(&auth.scope(), &id, &b.samples)
        .await
        .map_err(ApiError::internal)?
    {
        Some(n) => Ok(Json(json!({"run_id": id, "samples": n}))),
        None => Err(not_found(&id)),
    }
}

fn not_found(id: &str) -> ApiError {
    // The same answer whether the run is absent or belongs to another team.
    ApiError::not_found(format!("no run {id:?} visible to this token"))
}

/// Filters of `GET /runs` and `GET /totals`.
#[derive(Debug, Default, Deserialize)]
pub struct FilterQuery {
    pub team: Option<String>,
    pub project: Option<String>,
    pub status: Option<String>,
    pub user: Option<String>,
    pub host: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub group_by: Option<String>,
}

impl FilterQuery {
    pub fn filter(&self, auth: &Auth) -> Result<RunFilter, ApiError> {
        let mut f = RunFilter::new(auth.scope());
        f.team = self.team.clone();
        f.project = self.project.clone();
        if let Some(s) = &self.status {
            if !["running", "completed", "failed", "killed"].contains(&s.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "status={s:?}: use running, completed, failed or killed"
                )));
            }
            f.status = Some(s.clone());
        }
        f.user = self.user.clone();
        f.host = self.host.clone();
        if let Some(s) = &self.since {
            f.since_unix = Some(parse_time("since", s)?.unix_timestamp());
        }
        if let Some(s) = &self.until {
            f.until_unix = Some(parse_time("until", s)?.unix_timestamp());
        }
        Ok(f)
    }
}

/// `GET /api/v1/runs`: runs visible to the token, newest first, filtered.
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    q: Result<Query<FilterQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let f = q.filter(&auth)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit={limit}: use 1 to 1000"
        )));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::bad_request("offset must not be negative"));
    }
    let runs = st
        .store
        .list_runs(&f, limit, offset)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        json!({"runs": runs, "limit": limit, "offset": offset}),
    ))
}

/// `GET /api/v1/runs/{id}`: one run with its record as received.
pub async fn get(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Some((summary, record)) = st
        .store
        .get_run(&auth.scope(), &id)
        .await
        .map_err(ApiError::internal)?
    else {
        return Err(not_found(&id));
    };
    let record: Value = serde_json::from_str(&record).map_err(|e| ApiError::internal(e.into()))?;
    let mut v = serde_json::to_value(&summary).map_err(|e| ApiError::internal(e.into()))?;
    if let Value::Object(m) = &mut v {
        m.insert("record".into(), record);
    }
    Ok(Json(v))
}

/// `GET /api/v1/runs/{id}/samples`.
pub async fn samples(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match st
        .store
        .samples(&auth.scope(), &id)
        .await
        .map_err(ApiError::internal)?
    {
        Some(s) => Ok(Json(json!({"run_id": id, "samples": s}))),
        None => Err(not_found(&id)),
    }
}
