//! Budgets: monthly emissions allowances (kg CO2e) for a team or one of its projects.

use super::runs::{page_cursor, page_limit};
use super::{check_ident, check_line, check_nonneg, query, typed, ApiError, JsonBody};
use crate::app::AppState;
use crate::auth::Auth;
use crate::store::{Budget, Role};
use crate::store_pages::parse_id_cursor;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct MonthQuery {
    pub month: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Most budgets per page of `GET /budgets`.
pub const MAX_BUDGETS_PAGE: usize = 1000;

/// `GET /api/v1/budgets` answer.
#[derive(Serialize)]
pub struct BudgetList {
    pub month: String,
    pub budgets: Vec<Budget>,
    /// Pass it as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/budgets?month=YYYY-MM[&limit=N&cursor=C]`: the visible budgets and what the
/// month used of them, one page at a time.
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    q: Result<Query<MonthQuery>, QueryRejection>,
) -> Result<Json<BudgetList>, ApiError> {
    let q = query(q)?;
    let limit = page_limit(q.limit, 100, MAX_BUDGETS_PAGE)?;
    let after = page_cursor(q.cursor.as_deref(), |c| parse_id_cursor('b', c))?;
    let month = match q.month {
        Some(m) => {
            let ok = m.len() == 7
                && m.as_bytes()[4] == b'-'
                && m[..4].bytes().all(|b| b.is_ascii_digit())
                && matches!(m[5..].parse::<u8>(), Ok(1..=12));
            if !ok {
                return Err(ApiError::bad_request(format!(
                    "month={m:?}: use YYYY-MM, e.g. 2025-03"
                )));
            }
            m
        }
        None => super::month_of(time::OffsetDateTime::now_utc()),
    };
    let _slot = st.expensive.enter(auth.token.id)?;
    let page = st
        .store
        .budgets_page(&auth.scope(), &month, limit, after)
        .await?;
    Ok(Json(BudgetList {
        month,
        budgets: page.items,
        next_cursor: page.next,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetBody {
    /// Required for organisation-wide tokens; otherwise the token's team.
    pub team: Option<String>,
    /// A project of the team; absent for a team-wide budget.
    pub project: Option<String>,
    pub name: Option<String>,
    pub kg_per_month: f64,
}

/// `POST /api/v1/budgets`: create or replace the budget of a team or project (admin).
pub async fn upsert(
    State(st): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Budget>), ApiError> {
    auth.require(Role::Admin, "setting budgets")?;
    let b: BudgetBody = typed(body, "budget")?;
    check_nonneg("kg_per_month", b.kg_per_month)?;
    let t = &auth.token;
    let team_id = match (t.team_id, &b.team) {
        (Some(id), None) => id,
        (Some(id), Some(name)) if t.team.as_deref() == Some(name.as_str()) => id,
        (Some(_), Some(name)) => {
            return Err(ApiError::forbidden(format!(
                "this token belongs to team {:?}; it cannot set budgets of team {name:?}",
                t.team.as_deref().unwrap_or("")
            )))
        }
        (None, Some(name)) => {
            check_ident("team", name, super::runs::MAX_NAME)?;
            st.store.team_id(t.org_id, name).await?.ok_or_else(|| {
                ApiError::invalid(format!("no team {name:?} in this organisation"))
            })?
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "an organisation-wide token must name the budget's `team`",
            ))
        }
    };
    let project_id = match (t.project_id, &b.project) {
        (Some(pid), None) => Some(pid),
        (Some(pid), Some(p)) if t.project.as_deref() == Some(p.as_str()) => Some(pid),
        (Some(_), Some(p)) => {
            return Err(ApiError::forbidden(format!(
                "this token is scoped to project {:?}; it cannot set the budget of project {p:?}",
                t.project.as_deref().unwrap_or("")
            )))
        }
        (None, Some(p)) => {
            check_ident("project", p, super::runs::MAX_NAME)?;
            Some(
                st.store
                    .project_id(team_id, p)
                    .await?
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "no project {p:?} in this team; a project is created by its first run or by `wattprint admin project create`"
                        ))
                    })?,
            )
        }
        (None, None) => None,
    };
    let name = match &b.name {
        Some(n) => {
            check_line("name", n, super::runs::MAX_NAME)?;
            n.clone()
        }
        None => match &b.project {
            Some(p) => format!("project {p}"),
            None => "team".to_string(),
        },
    };
    let (id, created) = st
        .store
        .upsert_budget(t.org_id, team_id, project_id, &name, b.kg_per_month)
        .await?;
    let month = super::month_of(time::OffsetDateTime::now_utc());
    let all = st.store.list_budgets(&auth.scope(), &month).await?;
    let budget = all
        .into_iter()
        .find(|x| x.id == id)
        .ok_or_else(|| anyhow::anyhow!("budget {id} vanished after it was written"))?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(budget)))
}

/// `DELETE /api/v1/budgets/{id}` (admin).
pub async fn delete(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require(Role::Admin, "deleting budgets")?;
    let nf = || ApiError::not_found(format!("no budget {id:?} visible to this token"));
    let n: i64 = id.parse().map_err(|_| nf())?;
    if st.store.delete_budget(&auth.scope(), n).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(nf())
    }
}
