//! Runs: ingest (idempotent upsert of checkpoints and final records), samples, listing, one run.

use super::{
    check_ident, check_len, check_line, month_of, parse_time, query, typed, ApiError, JsonBody,
};
use crate::app::AppState;
use crate::auth::Auth;
use crate::store::{NewRun, Outcome, Role, RunFilter, RunSummary, Sample};
use crate::store_deletions::{Deleter, Deletion};
use crate::store_pages::{parse_run_cursor, parse_sample_cursor};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wattprint_core::record::{RunRecord, RunStatus};
use wattprint_core::validate::{check_sample, ValidationError};

/// Longest run id.
pub const MAX_RUN_ID: usize = wattprint_core::validate::MAX_RUN_ID;
/// Longest team, project, user, device or tag name.
pub const MAX_NAME: usize = wattprint_core::validate::MAX_NAME;
/// Most samples in one request. Chosen so that a full request fits the default body limit
/// ([`crate::limits::Limits::max_body_bytes`], 2 MiB) with room to spare: a sample as wattprint
/// sends it is under 160 bytes of JSON even with a 64-character device id and full-precision
/// numbers (a test checks it), and `wattprint run` sends series in chunks of this size.
pub const MAX_SAMPLES: usize = 10_000;

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
) -> Result<(StatusCode, Json<IngestResult>), ApiError> {
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
    let rec: RunRecord = super::typed_ref(&record_value, "run record")?;
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
        record: serde_json::to_string(&record_value)?,
        derived: crate::derived::derive(&rec),
        model: rec.lineage.as_ref().and_then(|l| l.model.clone()),
    };
    let outcome = st.store.upsert_run(&run, &samples).await?;
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
        Json(IngestResult {
            run_id: rec.id,
            outcome: outcome.as_str(),
            status: rec.status.as_str(),
            samples: samples.len(),
        }),
    ))
}

/// `POST /api/v1/runs` answer.
#[derive(Serialize)]
pub struct IngestResult {
    pub run_id: String,
    /// created, updated, duplicate or stale.
    pub outcome: &'static str,
    pub status: &'static str,
    /// Samples received with the upload.
    pub samples: usize,
}

/// `POST /api/v1/runs/{id}/samples` answer.
#[derive(Serialize)]
pub struct SamplesStored {
    pub run_id: String,
    /// Samples received.
    pub samples: usize,
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
) -> Result<Json<SamplesStored>, ApiError> {
    auth.require(Role::Member, "uploading samples")?;
    if auth.team_id().is_none() {
        return Err(ApiError::forbidden(
            "an organisation-wide token cannot upload samples; use a team or project token",
        ));
    }
    let b: SamplesBody = typed(body, "samples body")?;
    validate_samples("samples", &b.samples)?;
    match st.store.add_samples(&auth.scope(), &id, &b.samples).await? {
        Some(n) => Ok(Json(SamplesStored {
            run_id: id,
            samples: n,
        })),
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
    /// Where the previous page ended (its `next_cursor`).
    pub cursor: Option<String>,
    pub group_by: Option<String>,
}

impl FilterQuery {
    pub fn filter(&self, auth: &Auth) -> Result<RunFilter, ApiError> {
        let mut f = RunFilter::new(auth.scope());
        f.team = self.team.clone();
        f.project = self.project.clone();
        if let Some(s) = &self.status {
            if RunStatus::parse(s).is_none() {
                let all: Vec<&str> = RunStatus::ALL.iter().map(|x| x.as_str()).collect();
                return Err(ApiError::bad_request(format!(
                    "status={s:?}: use one of {}",
                    all.join(", ")
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

/// A `limit` query parameter: `default` when absent, else within `1..=max` (400 otherwise).
pub fn page_limit(limit: Option<i64>, default: usize, max: usize) -> Result<usize, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) => match usize::try_from(n) {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!("limit={n}: use 1 to {max}"))),
        },
    }
}

/// A `cursor` query parameter, decoded by `parse` (400 when it is not one this server gave).
pub fn page_cursor<T>(
    cursor: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    cursor
        .map(|c| {
            parse(c).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "cursor={c:?} is not a cursor of this listing: pass the `next_cursor` of the previous page as it is"
                ))
            })
        })
        .transpose()
}

/// Most runs per page of `GET /runs`.
pub const MAX_RUNS_PAGE: usize = 1000;

/// `GET /api/v1/runs` answer.
#[derive(Serialize)]
pub struct RunList {
    pub runs: Vec<RunSummary>,
    pub limit: usize,
    /// Only when the request used `offset` (deprecated: use `cursor`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// Pass it as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/runs`: runs visible to the token, newest first, filtered, one page at a time
/// (`limit`, then `cursor` = the previous page's `next_cursor`; `offset` still works but costs
/// more the further it goes).
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    q: Result<Query<FilterQuery>, QueryRejection>,
) -> Result<Json<RunList>, ApiError> {
    let q = query(q)?;
    let f = q.filter(&auth)?;
    let limit = page_limit(q.limit, 100, MAX_RUNS_PAGE)?;
    let after = page_cursor(q.cursor.as_deref(), parse_run_cursor)?;
    let _slot = st.expensive.enter(auth.token.id)?;
    if let Some(offset) = q.offset {
        if offset < 0 {
            return Err(ApiError::bad_request("offset must not be negative"));
        }
        if after.is_some() {
            return Err(ApiError::bad_request(
                "use either cursor or offset, not both",
            ));
        }
        let lim = i64::try_from(limit).unwrap_or(1000);
        let runs = st.store.list_runs(&f, lim, offset).await?;
        return Ok(Json(RunList {
            runs,
            limit,
            offset: Some(offset),
            next_cursor: None,
        }));
    }
    let page = st.store.runs_page(&f, limit, after).await?;
    Ok(Json(RunList {
        runs: page.items,
        limit,
        offset: None,
        next_cursor: page.next,
    }))
}

/// `GET /api/v1/runs/{id}`: one run with its record as received.
pub async fn get(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<RunWithRecord>, ApiError> {
    let Some((summary, record)) = st.store.get_run(&auth.scope(), &id).await? else {
        return Err(not_found(&id));
    };
    Ok(Json(RunWithRecord {
        summary,
        record: serde_json::from_str(&record)?,
    }))
}

/// `GET /api/v1/runs/{id}` answer: the server's columns and the record as uploaded.
#[derive(Serialize)]
pub struct RunWithRecord {
    #[serde(flatten)]
    pub summary: RunSummary,
    pub record: Value,
}

/// Samples per page of `GET /runs/{id}/samples`: default and most.
pub const SAMPLES_PAGE: usize = 10_000;
pub const MAX_SAMPLES_PAGE: usize = 50_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// `GET /api/v1/runs/{id}/samples` answer.
#[derive(Serialize)]
pub struct SamplePage {
    pub run_id: String,
    pub samples: Vec<Sample>,
    pub limit: usize,
    /// Pass it as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/runs/{id}/samples`: a page of the run's samples, by device then time (`limit`
/// up to [`MAX_SAMPLES_PAGE`], then `cursor`), so that a call costs bounded memory however many
/// samples the run has.
pub async fn samples(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<SamplePage>, ApiError> {
    let q = query(q)?;
    let limit = page_limit(q.limit, SAMPLES_PAGE, MAX_SAMPLES_PAGE)?;
    let after = page_cursor(q.cursor.as_deref(), parse_sample_cursor)?;
    let _slot = st.expensive.enter(auth.token.id)?;
    match st
        .store
        .samples_page(&auth.scope(), &id, limit, after)
        .await?
    {
        Some(p) => Ok(Json(SamplePage {
            run_id: id,
            samples: p.items,
            limit,
            next_cursor: p.next,
        })),
        None => Err(not_found(&id)),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Why, for the audit trail.
    pub reason: Option<String>,
}

/// `DELETE /api/v1/runs/{id}` (team or project admin): delete a run and its samples; totals
/// and budgets drop by its figures at once. The answer is the audit entry (who, when, the
/// run's figures), which the server keeps with the run's record (`run_deletions`).
pub async fn delete(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    q: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<Json<Deletion>, ApiError> {
    let q = query(q)?;
    auth.require(Role::Admin, "deleting runs")?;
    if auth.team_id().is_none() {
        return Err(ApiError::forbidden(
            "an organisation-wide token cannot delete runs (run ids are unique per team); use a team admin token, or `wattprint admin run rm`",
        ));
    }
    if let Some(r) = &q.reason {
        check_line("reason", r, 1024)?;
    }
    let t = &auth.token;
    let mut who = format!("token {} ({}…, {:?}", t.id, t.prefix, t.name);
    if let Some(u) = &t.user {
        who.push_str(&format!(", user {u}"));
    }
    who.push(')');
    let by = Deleter {
        who,
        token_id: Some(t.id),
        reason: q.reason.clone(),
    };
    match st.store.delete_run(&auth.scope(), &id, &by).await? {
        Some(d) => {
            eprintln!(
                "wattprint serve: run {:?} of team {:?} (project {:?}, {} kWh, {} kg CO2e, {} samples) deleted by {}",
                d.run_id, d.team, d.project, d.energy_kwh, d.emissions_kg, d.samples, d.deleted_by
            );
            Ok(Json(d))
        }
        None => Err(not_found(&id)),
    }
}
