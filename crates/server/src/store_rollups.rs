//! Reads served by the rollups (`/totals`, budgets, the dashboard's pages) and the upkeep around
//! them: back-filling the derived figures of runs stored before the rollups existed, and a check
//! that the rollups equal a recomputation from `runs` (see [`crate::db::rollup_schema`]).

use crate::db::rollup_days;
use crate::db::rollup_schema::{self, MEASURES, PER_KG, PER_KWH, PER_S};
use crate::db::{Dialect, Row, Stmt, Val};
use crate::store::{GroupBy, RunFilter, Scope, Store, TotalsRow};
use crate::totals_window::{self, Window};
use anyhow::Result;
use std::collections::{BTreeMap, HashMap};
use wattprint_core::record::RunRecord;

/// Sums over a group of runs, read from the rollups.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    pub runs: i64,
    pub duration_s: f64,
    pub energy_kwh: f64,
    pub facility_kwh: f64,
    pub emissions_kg: f64,
    pub gpu_kwh: f64,
    pub idle_gpu_kwh: f64,
    pub idle_gpu_kg: f64,
    pub static_kwh: f64,
    pub operational_kg: f64,
    pub embodied_kg: f64,
    /// Runs whose embodied emissions were not counted.
    pub embodied_not_counted: i64,
    /// GPU entries without an idle power.
    pub gpus_without_idle: i64,
    /// Runs whose record could not be read.
    pub unreadable: i64,
}

/// Every measure's column.
fn all_measures() -> Vec<&'static str> {
    MEASURES.iter().map(|m| m.column).collect()
}

/// The measures `/totals` shows (the other sums are the dashboard's).
const TOTALS_MEASURES: &[&str] = &["duration_ms", "energy_uwh", "facility_uwh", "emissions_ug"];

/// The sums' columns, as read: the run count, then each of `cols` as a float (a sum of
/// integers, exact up to 2⁵³ units).
fn sums_sql(cols: &[&str]) -> String {
    // Summed as floats (exact below 2⁵³): PostgreSQL sums BIGINT as NUMERIC, far slower.
    let mut s = vec!["CAST(SUM(CAST(x.runs AS DOUBLE PRECISION)) AS BIGINT)".to_string()];
    for c in cols {
        s.push(format!("SUM(CAST(x.{c} AS DOUBLE PRECISION))"));
    }
    s.join(", ")
}

/// Sums read at column `at` of `r`: the run count, then `cols` (the others stay zero).
fn sums_of(r: &Row, at: usize, cols: &[&str]) -> Result<Sums> {
    let mut s = Sums {
        runs: r.i64(at)?,
        ..Sums::default()
    };
    for (i, c) in cols.iter().enumerate() {
        let v = r.f64(at + 1 + i)?;
        match *c {
            "duration_ms" => s.duration_s = v / PER_S,
            "energy_uwh" => s.energy_kwh = v / PER_KWH,
            "facility_uwh" => s.facility_kwh = v / PER_KWH,
            "emissions_ug" => s.emissions_kg = v / PER_KG,
            "gpu_uwh" => s.gpu_kwh = v / PER_KWH,
            "idle_gpu_uwh" => s.idle_gpu_kwh = v / PER_KWH,
            "idle_gpu_ug" => s.idle_gpu_kg = v / PER_KG,
            "static_uwh" => s.static_kwh = v / PER_KWH,
            "operational_ug" => s.operational_kg = v / PER_KG,
            "embodied_ug" => s.embodied_kg = v / PER_KG,
            "embodied_nc" => s.embodied_not_counted = v as i64,
            "gpus_without_idle" => s.gpus_without_idle = v as i64,
            "unreadable" => s.unreadable = v as i64,
            other => anyhow::bail!("no measure {other}"),
        }
    }
    Ok(s)
}

/// A dashboard group from a row `(team id, project id, …, status, month, sums…)` whose status
/// is at `at`, the project's and team's names looked up in `names`.
fn dash_group(
    r: &Row,
    names: &HashMap<i64, (String, String)>,
    user: Option<String>,
    at: usize,
) -> Result<DashGroup> {
    let (team_id, project_id) = (r.i64(0)?, r.i64(1)?);
    let Some((team, project)) = names.get(&project_id) else {
        anyhow::bail!(
            "rollup row of project {project_id} (team {team_id}), which is not in the projects table"
        );
    };
    Ok(DashGroup {
        team: team.clone(),
        project: project.clone(),
        user,
        status: r.text(at)?,
        month: r.text(at + 1)?,
        sums: sums(r, at + 2)?,
    })
}

fn sums(r: &Row, at: usize) -> Result<Sums> {
    sums_of(r, at, &all_measures())
}

/// The rows a window of `/totals` reads, as a `FROM` item with the rollups' columns (the keys,
/// `runs` and `cols`): the rollup rows of its whole months and days (on PostgreSQL with the
/// journal not folded yet) and the runs of its edges, each counted with its sign; every branch
/// restricted to `scope` so that it reads through its index. Rows of days have no user (`''`)
/// and their month only when `by_month` (else `''`): the plan uses days only when neither
/// the grouping nor the filters need a user or a host.
fn window_source(
    d: Dialect,
    hosts: bool,
    by_month: bool,
    w: &Window,
    scope: &Scope,
    cols: &[&str],
    params: &mut Vec<Val>,
) -> String {
    let mut names = vec!["org_id"];
    names.extend(rollup_schema::keys(hosts));
    names.push("runs");
    names.extend(cols);
    let list = names.join(", ");
    let mut branches = Vec::new();
    if let Some(m) = &w.months {
        let mut tables = vec![rollup_schema::table(hosts)];
        if d == Dialect::Postgres {
            tables.push("rollup_deltas");
        }
        for t in tables {
            let mut b = format!("SELECT {list} FROM {t} WHERE 1 = 1{}", scope.sql(t, params));
            if let Some(from) = &m.from {
                b.push_str(&format!(" AND {t}.month >= ?"));
                params.push(from.into());
            }
            if let Some(to) = &m.to {
                b.push_str(&format!(" AND {t}.month < ?"));
                params.push(to.into());
            }
            branches.push(b);
        }
    }
    for range in &w.days {
        let neg = if range.sign < 0 { "-" } else { "" };
        let mut tables = vec![rollup_days::TABLE];
        if d == Dialect::Postgres {
            tables.push("rollup_deltas");
        }
        for t in tables {
            let mut sel = vec![format!("{t}.org_id AS org_id")];
            for k in rollup_schema::keys(hosts) {
                sel.push(match k {
                    "user_key" => "'' AS user_key".to_string(),
                    "month" if by_month => {
                        format!(
                            "{} AS month",
                            rollup_days::month_of_day(d, &format!("{t}.day"))
                        )
                    }
                    "month" => "'' AS month".to_string(),
                    k => format!("{t}.{k} AS {k}"),
                });
            }
            sel.push(format!("{neg}{t}.runs AS runs"));
            for c in cols {
                sel.push(format!("{neg}{t}.{c} AS {c}"));
            }
            params.push(range.lo.into());
            params.push(range.hi.into());
            branches.push(format!(
                "SELECT {} FROM {t} WHERE {t}.day >= ? AND {t}.day < ?{}",
                sel.join(", "),
                scope.sql(t, params)
            ));
        }
    }
    for range in &w.runs {
        let neg = if range.sign < 0 { "-" } else { "" };
        // Named as the rollups' columns (the first branch names the union's).
        let mut sel = vec!["r.org_id AS org_id".to_string()];
        for (k, e) in rollup_schema::keys(hosts)
            .iter()
            .zip(rollup_schema::key_exprs(hosts, "r"))
        {
            sel.push(format!("{e} AS {k}"));
        }
        sel.push(format!("{} AS runs", range.sign));
        for c in cols {
            if let Some(m) = MEASURES.iter().find(|m| m.column == *c) {
                sel.push(format!("{neg}{} AS {c}", m.contribution(d, "r")));
            }
        }
        branches.push(format!(
            "SELECT {} FROM runs r WHERE r.started_unix >= ? AND r.started_unix < ?{}",
            sel.join(", "),
            {
                params.push(range.lo.into());
                params.push(range.hi.into());
                scope.sql("r", params)
            }
        ));
    }
    format!("({})", branches.join(" UNION ALL "))
}

/// The filters of `f` but its times, on a window's rows `x` (joined to `t` and `p`).
fn filter_sql(f: &RunFilter, params: &mut Vec<Val>) -> String {
    let mut s = f.scope.sql("x", params);
    let mut eq = |col: &str, v: &Option<String>| {
        if let Some(v) = v {
            s.push_str(&format!(" AND {col} = ?"));
            params.push(v.into());
        }
    };
    eq("t.name", &f.team);
    eq("p.name", &f.project);
    eq("x.status", &f.status);
    eq("x.user_key", &f.user);
    eq("x.hostname", &f.host);
    s
}

/// The joins a grouping and the filters need (a team's or project's name).
fn joins_for(by: GroupBy, f: &RunFilter) -> String {
    let mut j = String::new();
    if by == GroupBy::Org {
        j.push_str(" JOIN orgs o ON o.id = x.org_id");
    }
    if matches!(by, GroupBy::Team | GroupBy::Project) || f.team.is_some() {
        j.push_str(" JOIN teams t ON t.id = x.team_id");
    }
    if by == GroupBy::Project || f.project.is_some() {
        j.push_str(" JOIN projects p ON p.id = x.project_id");
    }
    j
}

/// `YYYY-MM` when `unix` is the first instant of a UTC month, else `None`.
fn month_start(unix: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    (t.day() == 1 && t.hour() == 0 && t.minute() == 0 && t.second() == 0)
        .then(|| format!("{:04}-{:02}", t.year(), u8::from(t.month())))
}

/// The rollups' `WHERE` clause for `f` (alias `x`, joined to `t` and `p`), and whether it needs
/// the host table; `None` when `since`/`until` do not fall on month starts (the rollups keep
/// months: such a query reads `runs`).
fn rollup_filter(f: &RunFilter, params: &mut Vec<Val>) -> Option<(String, bool)> {
    let since = match f.since_unix {
        Some(u) => Some(month_start(u)?),
        None => None,
    };
    let until = match f.until_unix {
        Some(u) => Some(month_start(u)?),
        None => None,
    };
    let mut s = f.scope.sql("x", params);
    let mut eq = |col: &str, v: &Option<String>| {
        if let Some(v) = v {
            s.push_str(&format!(" AND {col} = ?"));
            params.push(v.into());
        }
    };
    eq("t.name", &f.team);
    eq("p.name", &f.project);
    eq("x.status", &f.status);
    eq("x.user_key", &f.user);
    eq("x.hostname", &f.host);
    if let Some(m) = since {
        s.push_str(" AND x.month >= ?");
        params.push(m.into());
    }
    if let Some(m) = until {
        s.push_str(" AND x.month < ?");
        params.push(m.into());
    }
    Some((s, f.host.is_some()))
}

/// (selected keys: key, team-or-NULL; GROUP BY columns; needs the host table)
fn group_columns(by: GroupBy) -> (&'static str, &'static str, bool) {
    match by {
        GroupBy::Org => ("o.name, NULL", "x.org_id, o.name", false),
        GroupBy::Team => ("t.name, NULL", "x.team_id, t.name", false),
        GroupBy::Project => ("p.name, t.name", "x.project_id, p.name, t.name", false),
        GroupBy::User => ("NULLIF(x.user_key, ''), NULL", "x.user_key", false),
        GroupBy::Month => ("x.month, NULL", "x.month", false),
        GroupBy::Status => ("x.status, NULL", "x.status", false),
        GroupBy::Host => ("x.hostname, NULL", "x.hostname", true),
    }
}

/// One dashboard group: team, project, user, status, month and its sums.
#[derive(Debug, Clone)]
pub struct DashGroup {
    pub team: String,
    pub project: String,
    pub user: Option<String>,
    pub status: String,
    pub month: String,
    pub sums: Sums,
}

/// A month's emissions per (team, project), in µg (sums of integers, exact as floats).
#[derive(Debug, Default)]
pub(crate) struct MonthEmissions {
    ug: BTreeMap<(i64, i64), f64>,
}

impl MonthEmissions {
    /// A team's (project `None`) or one of its projects' emissions, kg.
    pub(crate) fn kg(&self, team_id: i64, project_id: Option<i64>) -> f64 {
        let ug: f64 = self
            .ug
            .range((team_id, i64::MIN)..=(team_id, i64::MAX))
            .filter(|((_, p), _)| project_id.is_none_or(|id| id == *p))
            .map(|(_, v)| v)
            .sum();
        ug / PER_KG
    }
}

/// Runs whose derived figures are back-filled per transaction.
const BACKFILL_BATCH: i64 = 500;

impl Store {
    /// Totals of the runs matching `f`, grouped by `by`, one page of groups: the whole months
    /// of the window from the rollups, the whole days of its edge months from the per-day
    /// rollups and its partial days from `runs` (by user or host: its partial months from
    /// `runs`; [`crate::totals_window`]); only the sums `/totals` shows are read.
    pub(crate) async fn totals_from_rollups(
        &self,
        f: &RunFilter,
        by: GroupBy,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<TotalsRow>> {
        let (keys, group, host_group) = group_columns(by);
        let hosts = host_group || f.host.is_some();
        // The per-day rollups keep neither users nor hosts.
        let by_day = !hosts && by != GroupBy::User && f.user.is_none();
        let w = totals_window::plan(f.since_unix, f.until_unix, by_day);
        if w.months.is_none() && w.days.is_empty() && w.runs.is_empty() {
            return Ok(Vec::new());
        }
        let mut params = Vec::new();
        let source = window_source(
            self.db.dialect(),
            hosts,
            by == GroupBy::Month,
            &w,
            &f.scope,
            TOTALS_MEASURES,
            &mut params,
        );
        let filter = filter_sql(f, &mut params);
        params.push(limit.into());
        params.push(offset.into());
        let joins = joins_for(by, f);
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT {keys}, {} FROM {source} x {joins} WHERE 1 = 1{filter} \
                     GROUP BY {group} HAVING SUM(CAST(x.runs AS DOUBLE PRECISION)) > 0 \
                     ORDER BY {group} LIMIT ? OFFSET ?",
                    sums_sql(TOTALS_MEASURES)
                ),
                params,
            )
            .await?;
        rows.iter()
            .map(|r| {
                let s = sums_of(r, 2, TOTALS_MEASURES)?;
                Ok(TotalsRow {
                    key: r.opt_text(0)?,
                    team: r.opt_text(1)?,
                    runs: s.runs,
                    duration_s: s.duration_s,
                    energy_kwh: s.energy_kwh,
                    facility_kwh: s.facility_kwh,
                    emissions_kg: s.emissions_kg,
                })
            })
            .collect()
    }

    /// The dashboard's groups (team, project, user, status, month) of the runs matching `f`.
    /// Fails when `f` cannot be served by the rollups (the dashboard never filters by time).
    /// Rows come as stored, not grouped (sorting tens of thousands of text keys was most of a
    /// page's time): a group may come in more than one row (on PostgreSQL, its table row and
    /// journal rows not folded yet), and every reader sums them.
    pub async fn dashboard_groups(&self, f: &RunFilter) -> Result<Vec<DashGroup>> {
        let mut params = Vec::new();
        let (table, filter) = self.dash_source(f, &mut params)?;
        let mut cols = vec!["x.runs".to_string()];
        cols.extend(
            MEASURES
                .iter()
                .map(|m| format!("CAST(x.{} AS DOUBLE PRECISION)", m.column)),
        );
        // Rows whose sums are all zero (a group whose runs all moved on) are left out.
        let nonzero: Vec<String> = std::iter::once("x.runs <> 0".to_string())
            .chain(MEASURES.iter().map(|m| format!("x.{} <> 0", m.column)))
            .collect();
        // The rows with their ids, and the names of the scope's projects and their teams apart
        // (both at once): joining tens of thousands of rows to the names in SQL was most of
        // the read's time on PostgreSQL.
        let sql = format!(
            "SELECT x.team_id, x.project_id, NULLIF(x.user_key, ''), x.status, x.month, {} \
             FROM {table} WHERE ({}){filter}",
            cols.join(", "),
            nonzero.join(" OR ")
        );
        let (rows, names) =
            tokio::try_join!(self.db.query(&sql, params), self.project_names(&f.scope))?;
        rows.iter()
            .map(|r| dash_group(r, &names, r.opt_text(2)?, 3))
            .collect()
    }

    /// The dashboard's groups of the runs matching `f` without the user dimension (team,
    /// project, status, month; `user` is `None`), grouped in SQL — a few thousand rows where
    /// [`Store::dashboard_groups`] returns tens of thousands: what the overview reads (its only
    /// use of users, the top emitters, is [`Store::top_users`]). Groups whose sums are all zero
    /// are left out, as are such rows in [`Store::dashboard_groups`].
    pub async fn dashboard_groups_without_users(&self, f: &RunFilter) -> Result<Vec<DashGroup>> {
        let mut params = Vec::new();
        let (table, filter) = self.dash_source(f, &mut params)?;
        let measures = all_measures();
        let nonzero: Vec<String> = std::iter::once("runs")
            .chain(measures.iter().copied())
            .map(|c| format!("SUM(CAST(x.{c} AS DOUBLE PRECISION)) <> 0"))
            .collect();
        let sql = format!(
            "SELECT x.team_id, x.project_id, x.status, x.month, {} FROM {table} \
             WHERE 1 = 1{filter} GROUP BY x.team_id, x.project_id, x.status, x.month \
             HAVING {}",
            sums_sql(&measures),
            nonzero.join(" OR ")
        );
        let (rows, names) =
            tokio::try_join!(self.db.query(&sql, params), self.project_names(&f.scope))?;
        rows.iter()
            .map(|r| dash_group(r, &names, None, 2))
            .collect()
    }

    /// The users (`None`: runs without one) of the runs matching `f` with the `n` largest
    /// emissions, and every user tied with the `n`th (the caller orders ties), each with its
    /// emissions in kg. Grouped in SQL, so that the rows of a group (on PostgreSQL its table row
    /// and journal rows not folded yet) are summed before they are ordered; groups whose runs
    /// and emissions sum to zero are left out.
    pub async fn top_users(&self, f: &RunFilter, n: i64) -> Result<Vec<(Option<String>, f64)>> {
        if n <= 0 {
            return Ok(Vec::new());
        }
        let mut params = Vec::new();
        let (table, filter) = self.dash_source(f, &mut params)?;
        params.push(n.into());
        let e = "SUM(CAST(x.emissions_ug AS DOUBLE PRECISION))";
        // Ranked after grouping; sums of integers below 2⁵³ are exact, so the `n`th's ties
        // share its rank and all come.
        let sql = format!(
            "SELECT g.u, g.e FROM (SELECT NULLIF(x.user_key, '') AS u, {e} AS e, \
             RANK() OVER (ORDER BY {e} DESC) AS k FROM {table} \
             WHERE 1 = 1{filter} GROUP BY x.user_key \
             HAVING SUM(CAST(x.runs AS DOUBLE PRECISION)) <> 0 OR {e} <> 0) g WHERE g.k <= ?"
        );
        let rows = self.db.query(&sql, params).await?;
        rows.iter()
            .map(|r| Ok((r.opt_text(0)?, r.f64(1)? / PER_KG)))
            .collect()
    }

    /// What the dashboard's readers read for the runs matching `f`: the rollup table (with the
    /// journal on PostgreSQL, per host when `f` names one) as `x` with the joins its filters
    /// need, and the filter (` AND …`, its values pushed to `params`).
    fn dash_source(&self, f: &RunFilter, params: &mut Vec<Val>) -> Result<(String, String)> {
        let Some((filter, host)) = rollup_filter(f, params) else {
            anyhow::bail!("dashboard filters must fall on month starts");
        };
        let table = rollup_schema::source(self.db.dialect(), host);
        let joins = joins_for(GroupBy::Status, f);
        Ok((format!("{table} x{joins}"), filter))
    }

    /// Project id → (team name, project name), for the projects visible in `scope`.
    async fn project_names(&self, scope: &Scope) -> Result<HashMap<i64, (String, String)>> {
        let mut params = vec![scope.org_id.into()];
        let mut filter = String::new();
        if let Some(t) = scope.team_id {
            filter.push_str(" AND p.team_id = ?");
            params.push(t.into());
        }
        if let Some(id) = scope.project_id {
            filter.push_str(" AND p.id = ?");
            params.push(id.into());
        }
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT p.id, t.name, p.name FROM projects p JOIN teams t ON t.id = p.team_id \
                     WHERE p.org_id = ?{filter}"
                ),
                params,
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.i64(0)?, (r.text(1)?, r.text(2)?))))
            .collect()
    }

    /// Emissions of the runs started in `month` in `scope`, per team and project.
    pub(crate) async fn month_emissions(
        &self,
        scope: &Scope,
        month: &str,
    ) -> Result<MonthEmissions> {
        let mut p = vec![month.into()];
        let filter = scope.sql("x", &mut p);
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT x.team_id, x.project_id, SUM(CAST(x.emissions_ug AS DOUBLE PRECISION)) \
                     FROM {} x WHERE x.month = ?{filter} GROUP BY x.team_id, x.project_id",
                    rollup_schema::source(self.db.dialect(), false)
                ),
                p,
            )
            .await?;
        let mut ug = BTreeMap::new();
        for r in &rows {
            ug.insert((r.i64(0)?, r.i64(1)?), r.f64(2)?);
        }
        Ok(MonthEmissions { ug })
    }

    /// PostgreSQL: fold the rollups' journal into the tables until it is empty (a batch per
    /// statement). Returns how many journal rows it moved; 0 on SQLite (no journal).
    pub async fn fold_rollups(&self) -> Result<u64> {
        if self.db.dialect() != crate::db::Dialect::Postgres {
            return Ok(0);
        }
        let sql = rollup_schema::fold_sql();
        let mut moved = 0u64;
        loop {
            let res = self
                .db
                .transaction(vec![Stmt::new(sql.clone(), vec![])])
                .await?;
            let n = res
                .first()
                .and_then(|r| r.rows.first())
                .map(|r| r.i64(0))
                .transpose()?
                .unwrap_or(0);
            moved += u64::try_from(n).unwrap_or(0);
            if n < rollup_schema::FOLD_BATCH {
                return Ok(moved);
            }
        }
    }

    /// Derive the figures of runs stored before the rollups (`derived = 0`), in batches (each
    /// one transaction; the rollups follow through their triggers). Returns how many runs.
    pub async fn backfill_derived(&self) -> Result<u64> {
        let mut done = 0u64;
        loop {
            let rows = self
                .db
                .query(
                    "SELECT pk, record FROM runs WHERE derived = 0 ORDER BY pk LIMIT ?",
                    vec![BACKFILL_BATCH.into()],
                )
                .await?;
            if rows.is_empty() {
                return Ok(done);
            }
            let mut stmts = Vec::with_capacity(rows.len());
            for r in &rows {
                let pk = r.i64(0)?;
                let stmt = match serde_json::from_str::<RunRecord>(&r.text(1)?) {
                    Ok(rec) => {
                        let d = crate::derived::derive(&rec);
                        let mut p = d.params();
                        p.push(pk.into());
                        Stmt::new(format!("UPDATE runs SET {} WHERE pk = ?", DERIVED_SET), p)
                    }
                    Err(_) => {
                        Stmt::new("UPDATE runs SET derived = 2 WHERE pk = ?", vec![pk.into()])
                    }
                };
                stmts.push(stmt);
            }
            done += rows.len() as u64;
            self.db.transaction(stmts).await?;
        }
    }

    /// Where the rollups (monthly, per host, per day) differ from a recomputation from `runs`:
    /// one line per differing group (empty when exact). A row whose sums are all zero equals a
    /// missing row.
    pub async fn rollup_drift(&self) -> Result<Vec<String>> {
        let d = self.db.dialect();
        let mut out = Vec::new();
        // (table, keys, what reads see, the recomputation)
        let tables: Vec<(&str, Vec<&str>, String, String)> = vec![
            (
                "rollups",
                rollup_schema::keys(false),
                rollup_schema::source(d, false),
                rollup_schema::recompute_sql(d, false),
            ),
            (
                "rollup_hosts",
                rollup_schema::keys(true),
                rollup_schema::source(d, true),
                rollup_schema::recompute_sql(d, true),
            ),
            (
                rollup_days::TABLE,
                rollup_days::KEYS.to_vec(),
                rollup_days::source(d),
                rollup_days::recompute_sql(d),
            ),
        ];
        for (table, keys, source, recompute) in tables {
            let mut cols = vec!["org_id".to_string()];
            cols.extend(keys.iter().map(|k| k.to_string()));
            cols.push("runs".into());
            cols.extend(MEASURES.iter().map(|m| m.column.to_string()));
            let nkeys = 1 + keys.len();
            // What reads see: the table plus the journal not folded yet, summed per group.
            let mut sel = cols[..nkeys].to_vec();
            sel.push("CAST(SUM(runs) AS BIGINT)".into());
            sel.extend(
                MEASURES
                    .iter()
                    .map(|m| format!("CAST(SUM({}) AS BIGINT)", m.column)),
            );
            let stored = self
                .db
                .query(
                    &format!(
                        "SELECT {} FROM {} x GROUP BY {}",
                        sel.join(", "),
                        source,
                        cols[..nkeys].join(", ")
                    ),
                    vec![],
                )
                .await?;
            let fresh = self.db.query(&recompute, vec![]).await?;
            let read = |rows: &[Row]| -> Result<BTreeMap<Vec<String>, Vec<i64>>> {
                let mut m = BTreeMap::new();
                for r in rows {
                    let mut k = Vec::with_capacity(nkeys);
                    for i in 0..nkeys {
                        k.push(match r.0.get(i) {
                            Some(crate::db::Cell::I(v)) => v.to_string(),
                            _ => r.text(i)?,
                        });
                    }
                    let v: Vec<i64> = (nkeys..nkeys + 1 + MEASURES.len())
                        .map(|i| r.i64(i))
                        .collect::<Result<_>>()?;
                    if v.iter().any(|x| *x != 0) {
                        m.insert(k, v);
                    }
                }
                Ok(m)
            };
            let (a, b) = (read(&stored)?, read(&fresh)?);
            for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                if a.get(k) != b.get(k) {
                    out.push(format!(
                        "{table} {k:?}: stored {:?}, recomputed {:?}",
                        a.get(k),
                        b.get(k)
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// How often the server folds the rollups' journal (PostgreSQL).
pub const FOLD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The background task folding the rollups' journal every [`FOLD_EVERY`] (PostgreSQL; `None` on
/// SQLite), until the handle is aborted, and giving young tables their first statistics
/// ([`crate::db::young_tables`]). Several servers may run it at once.
pub fn spawn_fold(store: Store) -> Option<tokio::task::JoinHandle<()>> {
    if store.db.dialect() != crate::db::Dialect::Postgres {
        return None;
    }
    Some(tokio::spawn(async move {
        // Young tables get their first statistics here (`crate::db::young_tables`).
        let mut young = true;
        loop {
            if let Err(e) = store.fold_rollups().await {
                eprintln!("wattprint serve: rollups: folding the journal failed: {e:#} (retried)");
            }
            if young {
                match crate::db::young_tables::analyze(store.db.as_ref()).await {
                    Ok((_, all)) => young = !all,
                    Err(e) => {
                        eprintln!("wattprint serve: analysing new tables failed: {e:#} (retried)")
                    }
                }
            }
            tokio::time::sleep(FOLD_EVERY).await;
        }
    }))
}

/// `SET` clause of the derived columns (parameters from [`crate::derived::RunDerived::params`]).
pub(crate) const DERIVED_SET: &str =
    "gpu_kwh = ?, idle_gpu_kwh = ?, idle_gpu_kg = ?, static_kwh = ?, operational_kg = ?, \
     embodied_kg = ?, embodied_nc = ?, gpus_without_idle = ?, derived = 1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_starts() {
        assert_eq!(month_start(1_738_368_000).as_deref(), Some("2025-02"));
        assert_eq!(month_start(1_738_368_001), None);
        assert_eq!(month_start(1_738_454_400), None, "2025-02-02");
    }
}
