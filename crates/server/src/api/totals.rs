//! `GET /api/v1/totals`: energy and emissions of the visible runs, grouped.

use super::runs::{page_cursor, page_limit, FilterQuery};
use super::{query, ApiError};
use crate::app::AppState;
use crate::auth::Auth;
use crate::store::{GroupBy, TotalsRow};
use crate::store_pages::{id_cursor, parse_id_cursor};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::Serialize;

/// Most groups per page of `GET /totals`.
pub const MAX_GROUPS_PAGE: usize = 10_000;

/// The sum over every group (all pages).
#[derive(Serialize)]
pub struct Overall {
    pub runs: i64,
    pub duration_s: f64,
    pub energy_kwh: f64,
    pub facility_kwh: f64,
    pub emissions_kg: f64,
}

/// `GET /api/v1/totals` answer.
#[derive(Serialize)]
pub struct Totals {
    pub group_by: String,
    pub groups: Vec<TotalsRow>,
    /// Over every matching run, whichever page this is.
    pub total: Overall,
    /// Pass it as `cursor` for the next page of groups; null on the last page.
    pub next_cursor: Option<String>,
}

/// Totals per `group_by` (org, team, project, user, month, status, host; default project), with
/// the same filters as `GET /runs`. Each run counts once, with its latest accepted record.
/// Groups come one page at a time (`limit`, default and most [`MAX_GROUPS_PAGE`], `cursor`).
pub async fn totals(
    State(st): State<AppState>,
    auth: Auth,
    q: Result<Query<FilterQuery>, QueryRejection>,
) -> Result<Json<Totals>, ApiError> {
    let q = query(q)?;
    let by_s = q.group_by.clone().unwrap_or_else(|| "project".to_string());
    let Some(by) = GroupBy::parse(&by_s) else {
        return Err(ApiError::bad_request(format!(
            "group_by={by_s:?}: use one of {}",
            GroupBy::ALL
        )));
    };
    let f = q.filter(&auth)?;
    let limit = page_limit(q.limit, MAX_GROUPS_PAGE, MAX_GROUPS_PAGE)?;
    let skip = page_cursor(q.cursor.as_deref(), |c| {
        parse_id_cursor('g', c).filter(|n| *n >= 0)
    })?
    .unwrap_or(0);
    let _slot = st.expensive.enter(auth.token.id)?;
    let lim = i64::try_from(limit).unwrap_or(1) + 1;
    // The page and the overall sum are independent reads: both at once.
    let (mut groups, all) = tokio::try_join!(
        st.store.totals(&f, by, lim, skip),
        st.store.totals(&f, GroupBy::Org, 2, 0)
    )?;
    let more = groups.len() > limit;
    groups.truncate(limit);
    let mut total = Overall {
        runs: 0,
        duration_s: 0.0,
        energy_kwh: 0.0,
        facility_kwh: 0.0,
        emissions_kg: 0.0,
    };
    for g in &all {
        total.runs += g.runs;
        total.duration_s += g.duration_s;
        total.energy_kwh += g.energy_kwh;
        total.facility_kwh += g.facility_kwh;
        total.emissions_kg += g.emissions_kg;
    }
    let next_cursor = more.then(|| id_cursor('g', skip + groups.len() as i64));
    Ok(Json(Totals {
        group_by: by_s,
        groups,
        total,
        next_cursor,
    }))
}
