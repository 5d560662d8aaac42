//! Domain operations on top of [`Db`]: accounts, tokens, runs, samples, totals and budgets.
//! Written once; every statement runs unchanged on SQLite and PostgreSQL, except the
//! one-statement run upload that PostgreSQL takes when it can ([`Store::upsert_run`]).

use crate::db::{Db, Dialect, Row, Stmt, StmtResult, Val};
use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A role within a team (or project, or organisation for an organisation-wide token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads runs, totals and budgets.
    Viewer,
    /// Also ingests runs and samples.
    Member,
    /// Also manages budgets and tokens.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// What a token may see: an organisation, optionally narrowed to a team and a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    pub org_id: i64,
    pub team_id: Option<i64>,
    pub project_id: Option<i64>,
}

impl Scope {
    /// ` AND a.org_id = ? [AND a.team_id = ?] [AND a.project_id = ?]`, pushing the values.
    pub(crate) fn sql(&self, alias: &str, params: &mut Vec<Val>) -> String {
        let mut s = format!(" AND {alias}.org_id = ?");
        params.push(self.org_id.into());
        if let Some(t) = self.team_id {
            s.push_str(&format!(" AND {alias}.team_id = ?"));
            params.push(t.into());
        }
        if let Some(p) = self.project_id {
            s.push_str(&format!(" AND {alias}.project_id = ?"));
            params.push(p.into());
        }
        s
    }
}

/// A stored API token (never the secret: only its hash is stored).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenRecord {
    pub id: i64,
    /// The first characters of the token, to recognise it in listings.
    pub prefix: String,
    pub name: String,
    #[serde(skip)]
    pub org_id: i64,
    pub org: String,
    #[serde(skip)]
    pub team_id: Option<i64>,
    pub team: Option<String>,
    #[serde(skip)]
    pub project_id: Option<i64>,
    pub project: Option<String>,
    #[serde(skip)]
    pub user_id: Option<i64>,
    pub user: Option<String>,
    pub role: Role,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl TokenRecord {
    pub fn scope(&self) -> Scope {
        Scope {
            org_id: self.org_id,
            team_id: self.team_id,
            project_id: self.project_id,
        }
    }
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub prefix: String,
    pub hash: String,
    pub name: String,
    pub org_id: i64,
    pub team_id: Option<i64>,
    pub project_id: Option<i64>,
    pub user_id: Option<i64>,
    pub role: Role,
}

/// One run (checkpoint or final record) to upsert, with the columns derived from its record.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub org_id: i64,
    pub team_id: i64,
    /// The run's project, by name.
    pub project: String,
    /// Its id when already known (a project token's); otherwise the project is looked up, and
    /// created on first use, once the upload is known not to conflict.
    pub project_id: Option<i64>,
    pub run_id: String,
    pub user: Option<String>,
    pub status: String,
    /// 0 while running, 1 once ended (completed, failed or killed).
    pub status_rank: i64,
    pub started_at: String,
    pub started_unix: i64,
    pub ended_at: Option<String>,
    /// `YYYY-MM` of `started_at`, UTC.
    pub month: String,
    pub duration_s: f64,
    pub energy_kwh: f64,
    pub facility_kwh: f64,
    pub emissions_kg: f64,
    pub hostname: String,
    /// The record as received (JSON text).
    pub record: String,
    /// Figures derived from the record for the dashboard (summed by the rollups).
    pub derived: crate::derived::RunDerived,
    /// The model the run belongs to (the record's `lineage.model`).
    pub model: Option<String>,
}

/// One sample of a device's energy series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub device_id: String,
    pub t0: f64,
    pub t1: f64,
    pub energy_j: f64,
}

/// What an upsert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// First upload of this run.
    Created,
    /// A newer checkpoint or the final record replaced the stored one.
    Updated,
    /// Same progress as stored (a retry): nothing changed.
    Duplicate,
    /// Older than what is stored (a late checkpoint, or a checkpoint after the final record):
    /// ignored so totals never go backwards.
    Stale,
    /// The run already exists under another project of the team.
    ProjectConflict { existing_project: String },
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Duplicate => "duplicate",
            Outcome::Stale => "stale",
            Outcome::ProjectConflict { .. } => "conflict",
        }
    }
}

/// A run as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub org: String,
    pub team: String,
    pub project: String,
    pub user: Option<String>,
    pub status: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_s: f64,
    pub energy_kwh: f64,
    pub facility_kwh: f64,
    pub emissions_kg: f64,
    pub hostname: String,
    /// Uploads that advanced the run (first upload included).
    pub checkpoints: i64,
    pub received_at: String,
    pub updated_at: String,
}

/// Filters for listings and totals.
#[derive(Debug, Clone)]
pub struct RunFilter {
    pub scope: Scope,
    pub team: Option<String>,
    pub project: Option<String>,
    pub status: Option<String>,
    pub user: Option<String>,
    pub host: Option<String>,
    /// Runs started at or after (unix seconds).
    pub since_unix: Option<i64>,
    /// Runs started before (unix seconds).
    pub until_unix: Option<i64>,
}

impl RunFilter {
    pub fn new(scope: Scope) -> RunFilter {
        RunFilter {
            scope,
            team: None,
            project: None,
            status: None,
            user: None,
            host: None,
            since_unix: None,
            until_unix: None,
        }
    }

    pub(crate) fn sql(&self, params: &mut Vec<Val>) -> String {
        let mut s = self.scope.sql("r", params);
        let mut eq = |col: &str, v: &Option<String>| {
            if let Some(v) = v {
                s.push_str(&format!(" AND {col} = ?"));
                params.push(v.into());
            }
        };
        eq("t.name", &self.team);
        eq("p.name", &self.project);
        eq("r.status", &self.status);
        eq("r.user_name", &self.user);
        eq("r.hostname", &self.host);
        if let Some(v) = self.since_unix {
            s.push_str(" AND r.started_unix >= ?");
            params.push(v.into());
        }
        if let Some(v) = self.until_unix {
            s.push_str(" AND r.started_unix < ?");
            params.push(v.into());
        }
        s
    }
}

/// How totals are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Org,
    Team,
    Project,
    User,
    Month,
    Status,
    Host,
}

impl GroupBy {
    pub const ALL: &'static str = "org, team, project, user, month, status, host";
    pub fn parse(s: &str) -> Option<GroupBy> {
        Some(match s {
            "org" => GroupBy::Org,
            "team" => GroupBy::Team,
            "project" => GroupBy::Project,
            "user" => GroupBy::User,
            "month" => GroupBy::Month,
            "status" => GroupBy::Status,
            "host" => GroupBy::Host,
            _ => return None,
        })
    }
}

/// One group of totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TotalsRow {
    /// The group's name (null for runs without a user when grouping by user).
    pub key: Option<String>,
    /// The project's team, when grouping by project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub runs: i64,
    pub duration_s: f64,
    pub energy_kwh: f64,
    pub facility_kwh: f64,
    pub emissions_kg: f64,
}

/// Most budgets read at once where a listing is not paged (the dashboard, `GET /policy`): one
/// per team and per project, so far more than any organisation has.
pub const MAX_BUDGETS: usize = 10_000;

/// A monthly emissions budget for a team or one of its projects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    pub id: i64,
    pub name: String,
    pub team: String,
    pub project: Option<String>,
    pub kg_per_month: f64,
    /// The month `used_kg` covers (`YYYY-MM`, UTC).
    pub month: String,
    /// Emissions of runs started this month in the budget's team or project.
    pub used_kg: f64,
    /// `kg_per_month - used_kg` (negative when over).
    pub left_kg: f64,
    pub created_at: String,
    pub updated_at: String,
}

pub(crate) const RUN_COLUMNS: &str =
    "r.run_id, o.name, t.name, p.name, r.user_name, r.status, r.started_at, r.ended_at, \
     r.duration_s, r.energy_kwh, r.facility_kwh, r.emissions_kg, r.hostname, r.checkpoints, \
     r.received_at, r.updated_at";
pub(crate) const RUN_FROM: &str =
    "FROM runs r JOIN orgs o ON o.id = r.org_id JOIN teams t ON t.id = r.team_id \
     JOIN projects p ON p.id = r.project_id";

pub(crate) fn run_summary(r: &Row) -> Result<RunSummary> {
    Ok(RunSummary {
        run_id: r.text(0)?,
        org: r.text(1)?,
        team: r.text(2)?,
        project: r.text(3)?,
        user: r.opt_text(4)?,
        status: r.text(5)?,
        started_at: r.text(6)?,
        ended_at: r.opt_text(7)?,
        duration_s: r.f64(8)?,
        energy_kwh: r.f64(9)?,
        facility_kwh: r.f64(10)?,
        emissions_kg: r.f64(11)?,
        hostname: r.text(12)?,
        checkpoints: r.i64(13)?,
        received_at: r.text(14)?,
        updated_at: r.text(15)?,
    })
}

pub(crate) const TOKEN_SELECT: &str =
    "SELECT k.id, k.prefix, k.name, k.org_id, o.name, k.team_id, t.name, \
     k.project_id, p.name, k.user_id, u.name, k.role, k.created_at, k.last_used_at, k.revoked_at \
     FROM api_tokens k JOIN orgs o ON o.id = k.org_id LEFT JOIN teams t ON t.id = k.team_id \
     LEFT JOIN projects p ON p.id = k.project_id LEFT JOIN users u ON u.id = k.user_id";

pub(crate) fn token_record(r: &Row) -> Result<TokenRecord> {
    let role = r.text(11)?;
    Ok(TokenRecord {
        id: r.i64(0)?,
        prefix: r.text(1)?,
        name: r.text(2)?,
        org_id: r.i64(3)?,
        org: r.text(4)?,
        team_id: r.opt_i64(5)?,
        team: r.opt_text(6)?,
        project_id: r.opt_i64(7)?,
        project: r.opt_text(8)?,
        user_id: r.opt_i64(9)?,
        user: r.opt_text(10)?,
        role: Role::parse(&role)
            .ok_or_else(|| anyhow!("stored token has unknown role {role:?}"))?,
        created_at: r.text(12)?,
        last_used_at: r.opt_text(13)?,
        revoked_at: r.opt_text(14)?,
    })
}

/// Insert a run or advance it: the newer record wins (higher status rank, or the same rank with
/// more duration or energy); a run never moves to another project. Parameters from
/// [`run_upsert_params`]; the caller appends a `RETURNING` clause.
const RUN_UPSERT: &str =
    "INSERT INTO runs (org_id, team_id, project_id, run_id, user_name, status, status_rank, \
       started_at, started_unix, ended_at, month, duration_s, energy_kwh, facility_kwh, \
       emissions_kg, hostname, record, checkpoints, received_at, updated_at, gpu_kwh, \
       idle_gpu_kwh, idle_gpu_kg, static_kwh, operational_kg, embodied_kg, embodied_nc, \
       gpus_without_idle, derived, model) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?) \
     ON CONFLICT (team_id, run_id) DO UPDATE SET \
       user_name = COALESCE(excluded.user_name, runs.user_name), \
       status = excluded.status, status_rank = excluded.status_rank, \
       ended_at = excluded.ended_at, duration_s = excluded.duration_s, \
       energy_kwh = excluded.energy_kwh, facility_kwh = excluded.facility_kwh, \
       emissions_kg = excluded.emissions_kg, hostname = excluded.hostname, \
       record = excluded.record, checkpoints = runs.checkpoints + 1, model = excluded.model, \
       updated_at = excluded.updated_at, gpu_kwh = excluded.gpu_kwh, \
       idle_gpu_kwh = excluded.idle_gpu_kwh, idle_gpu_kg = excluded.idle_gpu_kg, \
       static_kwh = excluded.static_kwh, operational_kg = excluded.operational_kg, \
       embodied_kg = excluded.embodied_kg, embodied_nc = excluded.embodied_nc, \
       gpus_without_idle = excluded.gpus_without_idle, derived = 1 \
     WHERE runs.project_id = excluded.project_id AND ( \
       excluded.status_rank > runs.status_rank \
       OR (excluded.status_rank = runs.status_rank \
           AND excluded.duration_s >= runs.duration_s \
           AND excluded.energy_kwh >= runs.energy_kwh \
           AND (excluded.duration_s > runs.duration_s OR excluded.energy_kwh > runs.energy_kwh)))";

fn run_upsert_params(run: &NewRun, project_id: i64) -> Vec<Val> {
    let now = crate::now_rfc3339();
    let mut p = vec![
        run.org_id.into(),
        run.team_id.into(),
        project_id.into(),
        run.run_id.clone().into(),
        run.user.clone().into(),
        run.status.clone().into(),
        run.status_rank.into(),
        run.started_at.clone().into(),
        run.started_unix.into(),
        run.ended_at.clone().into(),
        run.month.clone().into(),
        run.duration_s.into(),
        run.energy_kwh.into(),
        run.facility_kwh.into(),
        run.emissions_kg.into(),
        run.hostname.clone().into(),
        run.record.clone().into(),
        now.clone().into(),
        now.into(),
    ];
    p.extend(run.derived.params());
    p.push(run.model.clone().into());
    p
}

/// A stored run as an upload sees it.
enum RunState {
    /// Under another project (the upload is refused).
    OtherProject(String),
    /// Under the upload's project: its id and (status rank, duration, energy).
    Here {
        project_id: i64,
        progress: (i64, f64, f64),
    },
}

/// What an upsert did, from whether it applied (the run's checkpoint count after it) and the
/// run's state before it.
fn outcome(run: &NewRun, applied: Option<i64>, existing: Option<(i64, f64, f64)>) -> Outcome {
    match (applied, existing) {
        (Some(1), _) => Outcome::Created,
        (Some(_), _) => Outcome::Updated,
        (None, Some((rank, dur, e)))
            if rank == run.status_rank && dur == run.duration_s && e == run.energy_kwh =>
        {
            Outcome::Duplicate
        }
        (None, _) => Outcome::Stale,
    }
}

/// PostgreSQL, project known: one statement reads the run's previous state (the statement's
/// snapshot) and upserts it; its row is read by [`pg_upload_outcome`]. Few plan nodes (executor
/// start-up is a sixth of its time): the previous state without its project's name (a
/// conflict, rare, takes the general path). The samples follow in a second statement of the
/// same transaction ([`crate::store_samples`]), stored whenever the run is this project's, even
/// when the record itself is a duplicate or stale (as on the general path): the upsert holds
/// the run's row (an `ON CONFLICT DO UPDATE` locks it even when its condition is false), so
/// the merge reads the sets as the run's previous writer committed them.
fn pg_upload_stmts(run: &NewRun, project_id: i64, samples: &[Sample]) -> Vec<Stmt> {
    let mut params = run_upsert_params(run, project_id);
    params.push(run.team_id.into());
    params.push(run.run_id.clone().into());
    let old = "old AS (SELECT r.project_id, r.status_rank, r.duration_s, r.energy_kwh \
               FROM runs r WHERE r.team_id = ? AND r.run_id = ?)";
    let last = "SELECT (SELECT checkpoints FROM up), o.project_id, o.status_rank, \
                o.duration_s, o.energy_kwh FROM (SELECT 1 AS one) x LEFT JOIN old o ON true";
    let mut stmts = vec![Stmt::new(
        format!("WITH up AS ({RUN_UPSERT} RETURNING checkpoints), {old} {last}"),
        params,
    )];
    stmts.extend(crate::store_samples::write_stmts(
        Dialect::Postgres,
        crate::store_samples::SamplesOf::Run {
            team_id: run.team_id,
            run_id: &run.run_id,
            project_id: Some(project_id),
        },
        samples,
    ));
    stmts
}

/// The outcome of [`pg_upload_stmts`] (for project `project_id`) from its row. `None`, with
/// nothing written, when the general path must decide: another upload created the run after
/// the statement's snapshot was taken (the upsert then found it but the snapshot cannot show
/// it), or the run is another project's (the general path reads that project's name).
fn pg_upload_outcome(run: &NewRun, project_id: i64, res: &StmtResult) -> Result<Option<Outcome>> {
    let row = res
        .rows
        .first()
        .ok_or_else(|| anyhow!("the run upsert returned no row"))?;
    let applied = row.opt_i64(0)?;
    let existing = match row.opt_i64(1)? {
        Some(p) if p != project_id => return Ok(None),
        Some(_) => Some((row.i64(2)?, row.f64(3)?, row.f64(4)?)),
        None if applied.is_none() => return Ok(None),
        None => None,
    };
    Ok(Some(outcome(run, applied, existing)))
}

/// The server's data, on whichever database.
#[derive(Clone)]
pub struct Store {
    pub db: Arc<dyn Db>,
    /// (team id, project name) → project id, for projects seen (never deleted or renamed).
    projects: Arc<std::sync::Mutex<std::collections::HashMap<(i64, String), i64>>>,
    /// PostgreSQL: uploads committed in groups (see [`crate::group_commit`]); `None`: each
    /// upload commits on its own.
    group: Option<Arc<crate::group_commit::GroupCommit>>,
    /// Token lookups of the requests' `Authorization` (see [`crate::token_cache`]).
    pub(crate) tokens: Arc<crate::token_cache::TokenCache>,
}

impl Store {
    pub fn new(db: Arc<dyn Db>) -> Store {
        Store {
            group: Some(Arc::new(crate::group_commit::GroupCommit::new(
                db.clone(),
                crate::group_commit::WRITERS,
            ))),
            db,
            projects: Default::default(),
            tokens: Arc::new(crate::token_cache::TokenCache::new(
                crate::token_cache::DEFAULT_TTL,
            )),
        }
    }

    /// The same store with token lookups cached for `ttl` (zero: not cached;
    /// `wattprint serve --token-cache-ms`).
    pub fn with_token_cache(mut self, ttl: std::time::Duration) -> Store {
        self.tokens = Arc::new(crate::token_cache::TokenCache::new(ttl));
        self
    }

    /// The same store with `n` group-commit writers for uploads on PostgreSQL; 0 commits each
    /// upload on its own (`wattprint serve --upload-writers`).
    pub fn with_upload_writers(mut self, n: usize) -> Store {
        self.group =
            (n > 0).then(|| Arc::new(crate::group_commit::GroupCommit::new(self.db.clone(), n)));
        self
    }

    pub(crate) async fn one_i64(&self, sql: &str, params: Vec<Val>) -> Result<Option<i64>> {
        let rows = self.db.query(sql, params).await?;
        rows.first().map(|r| r.i64(0)).transpose()
    }

    async fn insert_returning_id(&self, sql: &str, params: Vec<Val>) -> Result<i64> {
        let res = self.db.transaction(vec![Stmt::new(sql, params)]).await?;
        res.first()
            .and_then(|r| r.rows.first())
            .ok_or_else(|| anyhow!("insert returned no id"))?
            .i64(0)
    }

    // ---- organisations, teams, projects, users ----

    pub async fn org_id(&self, name: &str) -> Result<Option<i64>> {
        self.one_i64("SELECT id FROM orgs WHERE name = ?", vec![name.into()])
            .await
    }

    pub async fn create_org(&self, name: &str) -> Result<i64> {
        self.insert_returning_id(
            "INSERT INTO orgs (name, created_at) VALUES (?, ?) RETURNING id",
            vec![name.into(), crate::now_rfc3339().into()],
        )
        .await
    }

    pub async fn team_id(&self, org_id: i64, name: &str) -> Result<Option<i64>> {
        self.one_i64(
            "SELECT id FROM teams WHERE org_id = ? AND name = ?",
            vec![org_id.into(), name.into()],
        )
        .await
    }

    pub async fn create_team(&self, org_id: i64, name: &str) -> Result<i64> {
        self.insert_returning_id(
            "INSERT INTO teams (org_id, name, created_at) VALUES (?, ?, ?) RETURNING id",
            vec![org_id.into(), name.into(), crate::now_rfc3339().into()],
        )
        .await
    }

    pub async fn project_id(&self, team_id: i64, name: &str) -> Result<Option<i64>> {
        self.one_i64(
            "SELECT id FROM projects WHERE team_id = ? AND name = ?",
            vec![team_id.into(), name.into()],
        )
        .await
    }

    /// The project's id, creating it on first use (concurrent creators get the same id).
    pub async fn ensure_project(&self, org_id: i64, team_id: i64, name: &str) -> Result<i64> {
        if let Some(id) = self.project_id(team_id, name).await? {
            return Ok(id);
        }
        self.db
            .transaction(vec![Stmt::new(
                "INSERT INTO projects (org_id, team_id, name, created_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (team_id, name) DO NOTHING",
                vec![
                    org_id.into(),
                    team_id.into(),
                    name.into(),
                    crate::now_rfc3339().into(),
                ],
            )])
            .await?;
        self.project_id(team_id, name)
            .await?
            .ok_or_else(|| anyhow!("project {name:?} vanished after creation"))
    }

    pub async fn user_id(&self, org_id: i64, name: &str) -> Result<Option<i64>> {
        self.one_i64(
            "SELECT id FROM users WHERE org_id = ? AND name = ?",
            vec![org_id.into(), name.into()],
        )
        .await
    }

    pub async fn create_user(&self, org_id: i64, name: &str) -> Result<i64> {
        self.insert_returning_id(
            "INSERT INTO users (org_id, name, created_at) VALUES (?, ?, ?) RETURNING id",
            vec![org_id.into(), name.into(), crate::now_rfc3339().into()],
        )
        .await
    }

    /// Give a user a role in a team (replacing any previous one).
    pub async fn set_membership(&self, user_id: i64, team_id: i64, role: Role) -> Result<()> {
        self.db
            .transaction(vec![Stmt::new(
                "INSERT INTO memberships (user_id, team_id, role, created_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (user_id, team_id) DO UPDATE SET role = excluded.role",
                vec![
                    user_id.into(),
                    team_id.into(),
                    role.as_str().into(),
                    crate::now_rfc3339().into(),
                ],
            )])
            .await?;
        Ok(())
    }

    pub async fn membership(&self, user_id: i64, team_id: i64) -> Result<Option<Role>> {
        let rows = self
            .db
            .query(
                "SELECT role FROM memberships WHERE user_id = ? AND team_id = ?",
                vec![user_id.into(), team_id.into()],
            )
            .await?;
        match rows.first() {
            Some(r) => Ok(Role::parse(&r.text(0)?)),
            None => Ok(None),
        }
    }

    // ---- tokens ----

    pub async fn create_token(&self, t: &NewToken) -> Result<i64> {
        self.insert_returning_id(
            "INSERT INTO api_tokens (prefix, hash, name, org_id, team_id, project_id, user_id, role, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            vec![
                t.prefix.clone().into(),
                t.hash.clone().into(),
                t.name.clone().into(),
                t.org_id.into(),
                t.team_id.into(),
                t.project_id.into(),
                t.user_id.into(),
                t.role.as_str().into(),
                crate::now_rfc3339().into(),
            ],
        )
        .await
    }

    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>> {
        let rows = self
            .db
            .query(
                &format!("{TOKEN_SELECT} WHERE k.hash = ?"),
                vec![hash.into()],
            )
            .await?;
        rows.first().map(token_record).transpose()
    }

    /// [`Store::token_by_hash`] through the token cache: what authenticates API requests.
    pub async fn token_by_hash_cached(&self, hash: &str) -> Result<Option<TokenRecord>> {
        if let Some(rec) = self.tokens.get(hash, std::time::Instant::now()) {
            return Ok(Some(rec));
        }
        let generation = self.tokens.generation();
        let read_at = std::time::Instant::now();
        let rec = self.token_by_hash(hash).await?;
        if let Some(r) = &rec {
            self.tokens.put(hash, r, generation, read_at);
        }
        Ok(rec)
    }

    pub async fn token_by_id(&self, id: i64) -> Result<Option<TokenRecord>> {
        let rows = self
            .db
            .query(&format!("{TOKEN_SELECT} WHERE k.id = ?"), vec![id.into()])
            .await?;
        rows.first().map(token_record).transpose()
    }

    /// Tokens inside `scope` (all tokens when `None`), newest first.
    pub async fn list_tokens(&self, scope: Option<&Scope>) -> Result<Vec<TokenRecord>> {
        let mut params = Vec::new();
        let filter = scope.map(|s| s.sql("k", &mut params)).unwrap_or_default();
        let rows = self
            .db
            .query(
                &format!("{TOKEN_SELECT} WHERE 1 = 1{filter} ORDER BY k.id DESC"),
                params,
            )
            .await?;
        rows.iter().map(token_record).collect()
    }

    /// Revoke a token inside `scope` (any token when `None`). False when no such token.
    pub async fn revoke_token(&self, id: i64, scope: Option<&Scope>) -> Result<bool> {
        let mut params = vec![crate::now_rfc3339().into(), id.into()];
        let filter = scope.map(|s| s.sql("k", &mut params)).unwrap_or_default();
        // The alias keeps the scope filter's column references valid on both databases.
        let res = self
            .db
            .transaction(vec![Stmt::new(
                format!(
                    "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) \
                     WHERE id IN (SELECT k.id FROM api_tokens k WHERE k.id = ?{filter})"
                ),
                params,
            )])
            .await;
        // Committed (or not known to have failed before it): this server stops accepting it.
        self.tokens.forget(id);
        let res = res?;
        Ok(res.first().map(|r| r.changed).unwrap_or(0) > 0)
    }

    pub async fn touch_token(&self, id: i64) -> Result<()> {
        self.db
            .transaction(vec![Stmt::new(
                "UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                vec![crate::now_rfc3339().into(), id.into()],
            )])
            .await?;
        Ok(())
    }

    // ---- runs ----

    /// Insert or advance a run, with optional samples, idempotently (see [`Outcome`]). Nothing is
    /// written when the run exists under another project.
    ///
    /// On PostgreSQL, once the project's id is known (a project-scoped token, or a project seen
    /// before: projects are never deleted or renamed), the whole upload is two prepared
    /// statements (the run, then its samples: [`pg_upload_stmts`]), committed together with
    /// the other uploads waiting at that moment (group commit, [`crate::group_commit`]; see
    /// "Load" in docs/server.md). Both paths give the same
    /// outcomes; the server tests run on both databases.
    pub async fn upsert_run(&self, run: &NewRun, samples: &[Sample]) -> Result<Outcome> {
        if self.db.dialect() == Dialect::Postgres {
            if let Some(project_id) = self.upload_project_id(run).await? {
                let stmts = pg_upload_stmts(run, project_id, samples);
                let res = match &self.group {
                    Some(g) => g.submit((run.team_id, run.run_id.clone()), stmts).await?,
                    None => self.db.transaction(stmts).await?,
                };
                let first = res
                    .first()
                    .ok_or_else(|| anyhow!("the run upsert gave no result"))?;
                if let Some(o) = pg_upload_outcome(run, project_id, first)? {
                    return Ok(o);
                }
            }
        }
        self.upsert_run_general(run, samples).await
    }

    /// The project id an upload can use without creating its project: a project token's, or a
    /// project seen before.
    async fn upload_project_id(&self, run: &NewRun) -> Result<Option<i64>> {
        match run.project_id {
            Some(id) => Ok(Some(id)),
            None => self.known_project_id(run.team_id, &run.project).await,
        }
    }

    /// Uploads as one group, in this order: on PostgreSQL those whose project is known are
    /// written in one transaction with one commit, as the group-commit writers do with the
    /// uploads they gather (an upload that fails there fails alone; if the commit fails, all of
    /// them fail); the others, and every upload on SQLite, take [`Store::upsert_run`]'s general
    /// path one by one afterwards. Each upload's own outcome or error, in the order given.
    pub async fn upsert_runs_group(
        &self,
        uploads: &[(NewRun, Vec<Sample>)],
    ) -> Result<Vec<Result<Outcome>>> {
        let mut out: Vec<Option<Result<Outcome>>> = uploads.iter().map(|_| None).collect();
        if self.db.dialect() == Dialect::Postgres {
            let mut idx = Vec::new();
            let mut stmts = Vec::new();
            for (i, (run, samples)) in uploads.iter().enumerate() {
                if let Some(project_id) = self.upload_project_id(run).await? {
                    idx.push((i, project_id));
                    stmts.push(pg_upload_stmts(run, project_id, samples));
                }
            }
            let results = self.db.group(stmts).await?;
            for ((i, project_id), r) in idx.into_iter().zip(results) {
                let run = &uploads[i].0;
                let first = r.and_then(|r| {
                    r.into_iter()
                        .next()
                        .ok_or_else(|| anyhow!("the run upsert gave no result"))
                });
                match first.and_then(|r| pg_upload_outcome(run, project_id, &r)) {
                    Ok(Some(o)) => out[i] = Some(Ok(o)),
                    Ok(None) => {}
                    Err(e) => out[i] = Some(Err(e)),
                }
            }
        }
        let mut done = Vec::with_capacity(uploads.len());
        for ((run, samples), o) in uploads.iter().zip(out) {
            done.push(match o {
                Some(o) => o,
                None => self.upsert_run_general(run, samples).await,
            });
        }
        Ok(done)
    }

    /// A project's id if the project exists (remembered once seen; never created here).
    async fn known_project_id(&self, team_id: i64, name: &str) -> Result<Option<i64>> {
        let key = (team_id, name.to_string());
        if let Some(id) = self.projects.lock().ok().and_then(|m| m.get(&key).copied()) {
            return Ok(Some(id));
        }
        let id = self.project_id(team_id, name).await?;
        if let (Some(id), Ok(mut m)) = (id, self.projects.lock()) {
            m.insert(key, id);
        }
        Ok(id)
    }

    /// Any database: read the run's state, create its project if needed, then upsert the run
    /// and its samples in one transaction.
    async fn upsert_run_general(&self, run: &NewRun, samples: &[Sample]) -> Result<Outcome> {
        let (existing, project_id) = match self.run_state(run).await? {
            Some(RunState::OtherProject(name)) => {
                return Ok(Outcome::ProjectConflict {
                    existing_project: name,
                })
            }
            Some(RunState::Here {
                project_id,
                progress,
            }) => (Some(progress), project_id),
            None => match run.project_id {
                Some(id) => (None, id),
                None => (
                    None,
                    self.ensure_project(run.org_id, run.team_id, &run.project)
                        .await?,
                ),
            },
        };
        let mut stmts = vec![Stmt::new(
            format!("{RUN_UPSERT} RETURNING checkpoints"),
            run_upsert_params(run, project_id),
        )];
        stmts.extend(crate::store_samples::write_stmts(
            self.db.dialect(),
            crate::store_samples::SamplesOf::Run {
                team_id: run.team_id,
                run_id: &run.run_id,
                project_id: Some(project_id),
            },
            samples,
        ));
        let res = self.db.transaction(stmts).await?;
        let applied = res
            .first()
            .and_then(|r| r.rows.first())
            .map(|r| r.i64(0))
            .transpose()?;
        if applied.is_none() && existing.is_none() {
            // Another upload created the run between our read and our write (a retry racing
            // the original): judge this one against what is stored now.
            return Ok(match self.run_state(run).await? {
                Some(RunState::OtherProject(name)) => Outcome::ProjectConflict {
                    existing_project: name,
                },
                Some(RunState::Here { progress, .. }) => outcome(run, None, Some(progress)),
                None => outcome(run, None, None),
            });
        }
        Ok(outcome(run, applied, existing))
    }

    /// The stored state of `run` (same team and run id), if any.
    async fn run_state(&self, run: &NewRun) -> Result<Option<RunState>> {
        let rows = self
            .db
            .query(
                "SELECT r.project_id, p.name, r.status_rank, r.duration_s, r.energy_kwh \
                 FROM runs r JOIN projects p ON p.id = r.project_id \
                 WHERE r.team_id = ? AND r.run_id = ?",
                vec![run.team_id.into(), run.run_id.clone().into()],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let name = r.text(1)?;
        Ok(Some(if name != run.project {
            RunState::OtherProject(name)
        } else {
            RunState::Here {
                project_id: r.i64(0)?,
                progress: (r.i64(2)?, r.f64(3)?, r.f64(4)?),
            }
        }))
    }

    /// The team and internal key of a run visible in `scope`.
    pub(crate) async fn run_team(&self, scope: &Scope, run_id: &str) -> Result<Option<i64>> {
        let mut params = vec![run_id.into()];
        let filter = scope.sql("r", &mut params);
        self.one_i64(
            &format!(
                "SELECT r.team_id FROM runs r WHERE r.run_id = ?{filter} ORDER BY r.pk LIMIT 1"
            ),
            params,
        )
        .await
    }

    /// A run and its record as received.
    pub async fn get_run(
        &self,
        scope: &Scope,
        run_id: &str,
    ) -> Result<Option<(RunSummary, String)>> {
        let mut params = vec![run_id.into()];
        let filter = scope.sql("r", &mut params);
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS}, r.record {RUN_FROM} WHERE r.run_id = ?{filter} ORDER BY r.pk LIMIT 1"
                ),
                params,
            )
            .await?;
        match rows.first() {
            Some(r) => Ok(Some((run_summary(r)?, r.text(16)?))),
            None => Ok(None),
        }
    }

    /// Runs matching `f`, newest first.
    pub async fn list_runs(
        &self,
        f: &RunFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<RunSummary>> {
        let mut params = Vec::new();
        let filter = f.sql(&mut params);
        params.push(limit.into());
        params.push(offset.into());
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} {RUN_FROM} WHERE 1 = 1{filter} \
                     ORDER BY r.started_unix DESC, r.pk DESC LIMIT ? OFFSET ?"
                ),
                params,
            )
            .await?;
        rows.iter().map(run_summary).collect()
    }

    /// Totals of the runs matching `f`, grouped, groups `offset..offset + limit` in key order.
    pub async fn totals(
        &self,
        f: &RunFilter,
        by: GroupBy,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<TotalsRow>> {
        // Whole months from the rollups, the window's edges from `runs`.
        self.totals_from_rollups(f, by, limit, offset).await
    }

    // ---- budgets ----

    /// Create or update the budget of a team (project `None`) or of one of its projects.
    /// Returns the budget's id and whether it was created.
    pub async fn upsert_budget(
        &self,
        org_id: i64,
        team_id: i64,
        project_id: Option<i64>,
        name: &str,
        kg_per_month: f64,
    ) -> Result<(i64, bool)> {
        let mut params = vec![team_id.into()];
        let proj = match project_id {
            Some(p) => {
                params.push(p.into());
                "project_id = ?"
            }
            None => "project_id IS NULL",
        };
        let now = crate::now_rfc3339();
        let existing = self
            .one_i64(
                &format!("SELECT id FROM budgets WHERE team_id = ? AND {proj}"),
                params,
            )
            .await?;
        match existing {
            Some(id) => {
                self.db
                    .transaction(vec![Stmt::new(
                        "UPDATE budgets SET name = ?, kg_per_month = ?, updated_at = ? WHERE id = ?",
                        vec![name.into(), kg_per_month.into(), now.into(), id.into()],
                    )])
                    .await?;
                Ok((id, false))
            }
            None => {
                let id = self
                    .insert_returning_id(
                        "INSERT INTO budgets (org_id, team_id, project_id, name, kg_per_month, created_at, updated_at) \
                         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                        vec![
                            org_id.into(),
                            team_id.into(),
                            project_id.into(),
                            name.into(),
                            kg_per_month.into(),
                            now.clone().into(),
                            now.into(),
                        ],
                    )
                    .await?;
                Ok((id, true))
            }
        }
    }

    /// Budgets visible in `scope`, with what `month` used of them.
    pub async fn list_budgets(&self, scope: &Scope, month: &str) -> Result<Vec<Budget>> {
        self.list_budgets_after(scope, month, MAX_BUDGETS, None)
            .await
    }

    /// Up to `limit + 1` budgets visible in `scope` with an id above `after`, by id, with what
    /// `month` used of them (see [`Store::budgets_page`]).
    pub(crate) async fn list_budgets_after(
        &self,
        scope: &Scope,
        month: &str,
        limit: usize,
        after: Option<i64>,
    ) -> Result<Vec<Budget>> {
        let mut params = Vec::new();
        let mut filter = scope.sql("b", &mut params);
        if let Some(id) = after {
            filter.push_str(" AND b.id > ?");
            params.push(id.into());
        }
        params.push(
            i64::try_from(limit.saturating_add(1))
                .unwrap_or(i64::MAX)
                .into(),
        );
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT b.id, b.name, t.name, p.name, b.kg_per_month, b.created_at, b.updated_at, \
                       b.team_id, b.project_id \
                     FROM budgets b JOIN teams t ON t.id = b.team_id \
                     LEFT JOIN projects p ON p.id = b.project_id WHERE 1 = 1{filter} ORDER BY b.id LIMIT ?"
                ),
                params,
            )
            .await?;
        // What the month used, for every budget at once (one read of the month's rollups).
        let used = if rows.is_empty() {
            Default::default()
        } else {
            self.month_emissions(scope, month).await?
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let team_id = r.i64(7)?;
            let project_id = r.opt_i64(8)?;
            let used_kg = used.kg(team_id, project_id);
            let kg = r.f64(4)?;
            out.push(Budget {
                id: r.i64(0)?,
                name: r.text(1)?,
                team: r.text(2)?,
                project: r.opt_text(3)?,
                kg_per_month: kg,
                month: month.to_string(),
                used_kg,
                left_kg: kg - used_kg,
                created_at: r.text(5)?,
                updated_at: r.text(6)?,
            });
        }
        Ok(out)
    }

    /// Delete a budget visible in `scope`; false when there is none.
    pub async fn delete_budget(&self, scope: &Scope, id: i64) -> Result<bool> {
        let mut params = vec![id.into()];
        let filter = scope.sql("b", &mut params);
        let res = self
            .db
            .transaction(vec![Stmt::new(
                format!("DELETE FROM budgets WHERE id IN (SELECT b.id FROM budgets b WHERE b.id = ?{filter})"),
                params,
            )])
            .await?;
        Ok(res.first().map(|r| r.changed).unwrap_or(0) > 0)
    }
}
