//! `GET/PUT /api/v1/policy`: limits the institution puts on every run — an organisation-wide
//! default and a policy per team, the stricter of the two applying — and the state of the
//! team's monthly budget. `wattprint run --server` fetches it at start and applies it as
//! institution limits (a user can only lower them). See docs/agents.md.

use super::{check_ident, check_nonneg, query, typed, ApiError, JsonBody};
use crate::app::AppState;
use crate::auth::Auth;
use crate::store::Role;
use crate::store_agents::{Policy, ORG_DEFAULT};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyQuery {
    /// Organisation-wide tokens: the team whose policy to show (else the organisation's).
    pub team: Option<String>,
    /// A project of the team, to include its budget.
    pub project: Option<String>,
}

/// The team a request is about: the token's own, or for organisation tokens the one named
/// (`None`: the organisation's default).
async fn target_team(
    st: &AppState,
    auth: &Auth,
    team: Option<&String>,
) -> Result<Option<(i64, String)>, ApiError> {
    let t = &auth.token;
    match (t.team_id, team) {
        (Some(id), None) => Ok(Some((id, t.team.clone().unwrap_or_default()))),
        (Some(id), Some(name)) if t.team.as_deref() == Some(name.as_str()) => {
            Ok(Some((id, name.clone())))
        }
        // The same answer as for a team that does not exist: no existence leak.
        (Some(_), Some(name)) => Err(ApiError::not_found(format!(
            "no team {name:?} visible to this token"
        ))),
        (None, Some(name)) => {
            check_ident("team", name, super::runs::MAX_NAME)?;
            let id = st.store.team_id(t.org_id, name).await?.ok_or_else(|| {
                ApiError::not_found(format!("no team {name:?} visible to this token"))
            })?;
            Ok(Some((id, name.clone())))
        }
        (None, None) => Ok(None),
    }
}

/// One level of policy (the organisation's or the team's) and when it was set.
#[derive(Serialize)]
pub struct PolicyLevel {
    #[serde(flatten)]
    pub policy: Policy,
    pub updated_at: String,
}

/// A budget as `GET /policy` shows it.
#[derive(Serialize)]
pub struct BudgetState {
    pub name: String,
    pub team: String,
    pub project: Option<String>,
    pub month: String,
    pub kg_per_month: f64,
    /// Null for the team budget when the token is a project token.
    pub used_kg: Option<f64>,
    pub left_kg: Option<f64>,
    pub exhausted: bool,
}

/// `GET` and `PUT /api/v1/policy` answer.
#[derive(Serialize)]
pub struct PolicyAnswer {
    pub org: String,
    pub team: Option<String>,
    /// In force: the stricter of the two levels, field by field.
    pub policy: Policy,
    pub org_policy: Option<PolicyLevel>,
    pub team_policy: Option<PolicyLevel>,
    pub budgets: Vec<BudgetState>,
    pub month: String,
}

/// The effective policy of a team (or the organisation's default) with both levels and the
/// month's budgets.
async fn describe(
    st: &AppState,
    auth: &Auth,
    team: Option<(i64, String)>,
    project: Option<&String>,
) -> Result<PolicyAnswer, ApiError> {
    let org_id = auth.token.org_id;
    let org = st.store.policy(org_id, ORG_DEFAULT).await?;
    let team_p = match &team {
        Some((id, _)) => st.store.policy(org_id, *id).await?,
        None => None,
    };
    let empty = Policy::default();
    let effective = org
        .as_ref()
        .map(|x| &x.0)
        .unwrap_or(&empty)
        .stricter(team_p.as_ref().map(|x| &x.0).unwrap_or(&empty));
    let level = |x: Option<(Policy, String)>| {
        x.map(|(policy, updated_at)| PolicyLevel { policy, updated_at })
    };
    let month = super::month_of(time::OffsetDateTime::now_utc());
    let mut budgets = Vec::new();
    if let Some((team_id, _)) = &team {
        let scope = crate::store::Scope {
            org_id,
            team_id: Some(*team_id),
            project_id: None,
        };
        let all = st.store.list_budgets(&scope, &month).await?;
        let project = project.cloned().or_else(|| auth.token.project.clone());
        // A project token sees only its project's runs: the team budget's use is the other
        // projects' too, so it gets whether that budget is exhausted, not the figures.
        let project_token = auth.token.project_id.is_some();
        for b in all {
            if b.project.is_none() || b.project == project {
                let hide = project_token && b.project.is_none();
                budgets.push(BudgetState {
                    exhausted: b.left_kg <= 0.0,
                    used_kg: (!hide).then_some(b.used_kg),
                    left_kg: (!hide).then_some(b.left_kg),
                    name: b.name,
                    team: b.team,
                    project: b.project,
                    month: b.month,
                    kg_per_month: b.kg_per_month,
                });
            }
        }
    }
    Ok(PolicyAnswer {
        org: auth.token.org.clone(),
        team: team.map(|t| t.1),
        policy: effective,
        org_policy: level(org),
        team_policy: level(team_p),
        budgets,
        month,
    })
}

/// `GET /api/v1/policy[?team=NAME][&project=NAME]`: the policy in force for the token's team.
pub async fn get(
    State(st): State<AppState>,
    auth: Auth,
    q: Result<Query<PolicyQuery>, QueryRejection>,
) -> Result<Json<PolicyAnswer>, ApiError> {
    let q = query(q)?;
    if let Some(p) = &q.project {
        check_ident("project", p, super::runs::MAX_NAME)?;
    }
    let team = target_team(&st, &auth, q.team.as_ref()).await?;
    Ok(Json(describe(&st, &auth, team, q.project.as_ref()).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// Organisation-wide tokens: the team to set (absent: the organisation's default).
    pub team: Option<String>,
    /// e.g. `"72h"`; absent or null: no cap at this level.
    pub max_duration: Option<String>,
    pub budget_kwh_per_run: Option<f64>,
    pub budget_kg_per_run: Option<f64>,
    /// `"stop"` or `"warn"`.
    pub budget_action: Option<String>,
}

/// `PUT /api/v1/policy` (admin): replace the policy of the token's team, or for an
/// organisation-wide token the organisation's default (or a named team's). Fields left out
/// are cleared; an empty body `{}` removes the policy.
pub async fn put(
    State(st): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<Json<PolicyAnswer>, ApiError> {
    auth.require(Role::Admin, "setting the policy")?;
    if auth.token.project_id.is_some() {
        return Err(ApiError::forbidden(
            "a project token cannot set its team's policy; use a team or organisation admin token",
        ));
    }
    let b: PolicyBody = typed(body, "policy")?;
    let max_duration_s = match &b.max_duration {
        Some(s) => {
            let d = wattprint_core::units::parse_duration(s)
                .map_err(|e| ApiError::invalid(format!("max_duration: {e}")))?;
            if d.is_zero() {
                return Err(ApiError::invalid(
                    "max_duration must be longer than zero, e.g. \"72h\"",
                ));
            }
            Some(d.as_secs_f64())
        }
        None => None,
    };
    for (name, v) in [
        ("budget_kwh_per_run", b.budget_kwh_per_run),
        ("budget_kg_per_run", b.budget_kg_per_run),
    ] {
        if let Some(x) = v {
            check_nonneg(name, x)?;
            if x == 0.0 {
                return Err(ApiError::invalid(format!(
                    "{name} must be positive (leave it out for no budget)"
                )));
            }
        }
    }
    if let Some(a) = &b.budget_action {
        if a != "stop" && a != "warn" {
            return Err(ApiError::invalid(format!(
                "budget_action is {a:?}; use \"stop\" or \"warn\""
            )));
        }
    }
    let policy = Policy {
        max_duration_s,
        budget_kwh_per_run: b.budget_kwh_per_run,
        budget_kg_per_run: b.budget_kg_per_run,
        budget_action: b.budget_action.clone(),
    };
    let team = target_team(&st, &auth, b.team.as_ref()).await?;
    let team_id = team.as_ref().map(|t| t.0).unwrap_or(ORG_DEFAULT);
    st.store
        .set_policy(auth.token.org_id, team_id, &policy)
        .await?;
    Ok(Json(describe(&st, &auth, team, None).await?))
}
