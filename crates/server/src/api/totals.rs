//! `GET /api/v1/totals`: energy and emissions of the visible runs, grouped.

use super::runs::FilterQuery;
use super::{query, ApiError};
use crate::app::AppState;
use crate::auth::Auth;
use crate::store::GroupBy;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

/// Totals per `group_by` (org, team, project, user, month, status, host; default project), with
/// the same filters as `GET /runs`. Each run counts once, with its latest accepted record.
pub async fn totals(
    State(st): State<AppState>,
    auth: Auth,
    q: Result<Query<FilterQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let by_s = q.group_by.clone().unwrap_or_else(|| "project".to_string());
    let Some(by) = GroupBy::parse(&by_s) else {
        return Err(ApiError::bad_request(format!(
            "group_by={by_s:?}: use one of {}",
            GroupBy::ALL
        )));
    };
    let f = q.filter(&auth)?;
    let groups = st.store.totals(&f, by).await.map_err(ApiError::internal)?;
    let mut total = json!({"runs": 0, "duration_s": 0.0, "energy_kwh": 0.0, "facility_kwh": 0.0, "emissions_kg": 0.0});
    let (mut runs, mut dur, mut e, mut fac, mut kg) = (0i64, 0.0, 0.0, 0.0, 0.0);
    for g in &groups {
        runs += g.runs;
        dur += g.duration_s;
        e += g.energy_kwh;
        fac += g.facility_kwh;
        kg += g.emissions_kg;
    }
    if let Value::Object(m) = &mut total {
        m.insert("runs".into(), runs.into());
        m.insert("duration_s".into(), dur.into());
        m.insert("energy_kwh".into(), e.into());
        m.insert("facility_kwh".into(), fac.into());
        m.insert("emissions_kg".into(), kg.into());
    }
    Ok(Json(
        json!({"group_by": by_s, "groups": groups, "total": total}),
    ))
}
