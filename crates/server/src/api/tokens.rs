//! Token management by team administrators (bootstrap uses `wattprint admin token create`).

use super::runs::{page_cursor, page_limit, PageQuery};
use super::{check_line, query, typed, ApiError, JsonBody};
use crate::app::AppState;
use crate::auth::{Auth, CreatedToken};
use crate::store::{Role, Scope, TokenRecord};
use crate::store_pages::parse_id_cursor;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Most tokens per page of `GET /tokens`.
pub const MAX_TOKENS_PAGE: usize = 1000;

/// `GET /api/v1/tokens` answer.
#[derive(Serialize)]
pub struct TokenList {
    pub tokens: Vec<TokenRecord>,
    /// Pass it as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/tokens?limit=N&cursor=C` (admin): tokens in the caller's scope, newest first,
/// without secrets, one page at a time.
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<TokenList>, ApiError> {
    let q = query(q)?;
    auth.require(Role::Admin, "listing tokens")?;
    let limit = page_limit(q.limit, 100, MAX_TOKENS_PAGE)?;
    let after = page_cursor(q.cursor.as_deref(), |c| parse_id_cursor('t', c))?;
    let page = st.store.tokens_page(&auth.scope(), limit, after).await?;
    Ok(Json(TokenList {
        tokens: page.items,
        next_cursor: page.next,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    pub name: String,
    /// A project of the caller's team, to scope the new token to it.
    pub project: Option<String>,
    /// viewer, member or admin; at most the caller's role. Default member.
    pub role: Option<Role>,
}

/// `POST /api/v1/tokens` (admin): a new token in the caller's team (or project), shown once.
pub async fn create(
    State(st): State<AppState>,
    auth: Auth,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    auth.require(Role::Admin, "creating tokens")?;
    let b: NewTokenBody = typed(body, "token")?;
    check_line("name", &b.name, 200)?;
    let t = &auth.token;
    let Some(team_id) = t.team_id else {
        return Err(ApiError::forbidden(
            "an organisation-wide token cannot create tokens through the API; use `wattprint admin token create`",
        ));
    };
    let role = b.role.unwrap_or(Role::Member);
    if role > t.role {
        return Err(ApiError::forbidden(
            "a token cannot create a token with a higher role",
        ));
    }
    let project_id = match (t.project_id, &b.project) {
        (Some(pid), None) => Some(pid),
        (Some(pid), Some(p)) if t.project.as_deref() == Some(p.as_str()) => Some(pid),
        (Some(_), Some(_)) => {
            return Err(ApiError::forbidden(
                "a project token can only create tokens for its own project",
            ))
        }
        (None, Some(p)) => Some(
            st.store
                .project_id(team_id, p)
                .await?
                .ok_or_else(|| ApiError::invalid(format!("no project {p:?} in this team")))?,
        ),
        (None, None) => None,
    };
    let scope = Scope {
        org_id: t.org_id,
        team_id: Some(team_id),
        project_id,
    };
    let created = crate::auth::create_token(&st.store, &b.name, scope, None, role).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `DELETE /api/v1/tokens/{id}` (admin): revoke a token in the caller's scope.
pub async fn revoke(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require(Role::Admin, "revoking tokens")?;
    let nf = || ApiError::not_found(format!("no token {id:?} visible to this token"));
    let n: i64 = id.parse().map_err(|_| nf())?;
    if st.store.revoke_token(n, Some(&auth.scope())).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(nf())
    }
}
