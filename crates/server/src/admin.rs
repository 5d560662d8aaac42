//! Administration on the database directly (`wattprint admin …`), for bootstrap: organisations,
//! teams, projects, users and tokens; and recovery: deleting a bad run (audited). Every function is async; [`block_on`] runs one from a
//! synchronous command.

use crate::auth::CreatedToken;
use crate::store::{Role, Scope, Store, TokenRecord};
use anyhow::{bail, Context, Result};

/// The organisation every database starts with.
pub const DEFAULT_ORG: &str = "default";

/// Run a future to completion on a small runtime.
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(rt.block_on(f))
}

/// Open (and migrate) the database.
pub async fn open(database: &str) -> Result<Store> {
    Ok(Store::new(crate::db::open(database).await?))
}

fn check_name(what: &str, s: &str) -> Result<()> {
    crate::api::check_ident(what, s, crate::api::runs::MAX_NAME)
        .map_err(|e| anyhow::anyhow!("{}", e.detail))
}

pub async fn org_id(store: &Store, org: &str) -> Result<i64> {
    store.org_id(org).await?.with_context(|| {
        format!("no organisation {org:?}; create it with `wattprint admin org create {org}`")
    })
}

pub async fn team_id(store: &Store, org_id: i64, org: &str, team: &str) -> Result<i64> {
    store.team_id(org_id, team).await?.with_context(|| {
        format!(
            "no team {team:?} in organisation {org:?}; create it with `wattprint admin team create {team} --org {org}`"
        )
    })
}

pub async fn create_org(store: &Store, name: &str) -> Result<i64> {
    check_name("organisation name", name)?;
    if store.org_id(name).await?.is_some() {
        bail!("organisation {name:?} already exists");
    }
    store.create_org(name).await
}

pub async fn create_team(store: &Store, org: &str, name: &str) -> Result<i64> {
    check_name("team name", name)?;
    let o = org_id(store, org).await?;
    if store.team_id(o, name).await?.is_some() {
        bail!("team {name:?} already exists in organisation {org:?}");
    }
    store.create_team(o, name).await
}

pub async fn create_project(store: &Store, org: &str, team: &str, name: &str) -> Result<i64> {
    check_name("project name", name)?;
    let o = org_id(store, org).await?;
    let t = team_id(store, o, org, team).await?;
    if store.project_id(t, name).await?.is_some() {
        bail!("project {name:?} already exists in team {team:?}");
    }
    store.ensure_project(o, t, name).await
}

/// Create the user if needed and, with a team, give them `role` there.
pub async fn create_user(
    store: &Store,
    org: &str,
    name: &str,
    team: Option<&str>,
    role: Role,
) -> Result<i64> {
    check_name("user name", name)?;
    let o = org_id(store, org).await?;
    let u = match store.user_id(o, name).await? {
        Some(u) => u,
        None => store.create_user(o, name).await?,
    };
    if let Some(team) = team {
        let t = team_id(store, o, org, team).await?;
        store.set_membership(u, t, role).await?;
    }
    Ok(u)
}

/// What a new token is for.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub org: String,
    /// None: an organisation-wide token (reads every team; cannot upload runs).
    pub team: Option<String>,
    pub project: Option<String>,
    pub user: Option<String>,
    pub role: Role,
    pub name: String,
}

/// Create a token; the secret is in the result and nowhere else.
pub async fn create_token(store: &Store, spec: &TokenSpec) -> Result<CreatedToken> {
    crate::api::check_line("token name", &spec.name, 200)
        .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    let o = org_id(store, &spec.org).await?;
    let t = match &spec.team {
        Some(team) => Some(team_id(store, o, &spec.org, team).await?),
        None => None,
    };
    let p = match (&spec.project, t) {
        (Some(_), None) => bail!("--project needs --team (projects belong to a team)"),
        (Some(project), Some(t)) => {
            check_name("project name", project)?;
            Some(store.ensure_project(o, t, project).await?)
        }
        (None, _) => None,
    };
    let u = match &spec.user {
        Some(user) => {
            let Some(u) = store.user_id(o, user).await? else {
                bail!(
                    "no user {user:?} in organisation {:?}; create it with `wattprint admin user create {user} --team TEAM --role ROLE`",
                    spec.org
                );
            };
            if let Some(t) = t {
                match store.membership(u, t).await? {
                    Some(r) if r >= spec.role => {}
                    Some(r) => bail!(
                        "user {user:?} has role {} in team {:?}; a token for them cannot have role {}",
                        r.as_str(),
                        spec.team.as_deref().unwrap_or(""),
                        spec.role.as_str()
                    ),
                    None => bail!(
                        "user {user:?} is not a member of team {:?}; add them with `wattprint admin user create {user} --team {} --role {}`",
                        spec.team.as_deref().unwrap_or(""),
                        spec.team.as_deref().unwrap_or(""),
                        spec.role.as_str()
                    ),
                }
            }
            Some(u)
        }
        None => None,
    };
    let scope = Scope {
        org_id: o,
        team_id: t,
        project_id: p,
    };
    crate::auth::create_token(store, &spec.name, scope, u, spec.role).await
}

/// Every token (no secrets).
pub async fn list_tokens(store: &Store) -> Result<Vec<TokenRecord>> {
    store.list_tokens(None).await
}

/// Revoke a token by id; an error when there is none.
pub async fn revoke_token(store: &Store, id: i64) -> Result<TokenRecord> {
    if !store.revoke_token(id, None).await? {
        bail!("no token with id {id}; list them with `wattprint admin token list`");
    }
    store
        .token_by_id(id)
        .await?
        .with_context(|| format!("token {id} vanished"))
}

/// Who runs `wattprint admin` on this machine, for the audit trail.
fn local_admin() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("wattprint admin (on the database, local user {user})")
}

/// Delete a run of a team and its samples, audited (`run_deletions`: who, when, the figures and
/// the record). An error when the team has no such run.
pub async fn delete_run(
    store: &Store,
    org: &str,
    team: &str,
    run_id: &str,
    reason: Option<&str>,
) -> Result<crate::store_deletions::Deletion> {
    if let Some(r) = reason {
        crate::api::check_line("reason", r, 1024).map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    }
    let o = org_id(store, org).await?;
    let t = team_id(store, o, org, team).await?;
    let scope = Scope {
        org_id: o,
        team_id: Some(t),
        project_id: None,
    };
    let by = crate::store_deletions::Deleter {
        who: local_admin(),
        token_id: None,
        reason: reason.map(str::to_string),
    };
    store
        .delete_run(&scope, run_id, &by)
        .await?
        .with_context(|| format!("no run {run_id:?} in team {team:?}"))
}

/// The audit trail of deleted runs of a team (all teams when `None`), newest first.
pub async fn deletions(
    store: &Store,
    org: &str,
    team: Option<&str>,
    limit: usize,
) -> Result<Vec<crate::store_deletions::Deletion>> {
    let o = org_id(store, org).await?;
    let t = match team {
        Some(team) => Some(team_id(store, o, org, team).await?),
        None => None,
    };
    let scope = Scope {
        org_id: o,
        team_id: t,
        project_id: None,
    };
    store.deletions(&scope, limit).await
}
