//! Reads served by the rollups (`/totals`, budgets, the dashboard's pages) and the upkeep around
//! them: back-filling the derived figures of runs stored before the rollups existed, and a check
//! that the rollups equal a recomputation from `runs` (see [`crate::db::rollup_schema`]).

use crate::db::rollup_schema::{self, MEASURES, PER_KG, PER_KWH, PER_S};
use crate::db::{Row, Stmt, Val};
use crate::store::{GroupBy, RunFilter, Store, TotalsRow};
use anyhow::Result;
use std::collections::BTreeMap;
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

/// The sums' columns, as read: the run count, then every measure as a float (a sum of
/// integers, exact up to 2⁵³ units).
fn sums_sql() -> String {
    let mut s = vec!["CAST(SUM(x.runs) AS BIGINT)".to_string()];
    for m in MEASURES {
        s.push(format!("SUM(CAST(x.{} AS DOUBLE PRECISION))", m.column));
    }
    s.join(", ")
}

fn sums(r: &Row, at: usize) -> Result<Sums> {
    let f = |i: usize| r.f64(at + 1 + i);
    Ok(Sums {
        runs: r.i64(at)?,
        duration_s: f(0)? / PER_S,
        energy_kwh: f(1)? / PER_KWH,
        facility_kwh: f(2)? / PER_KWH,
        emissions_kg: f(3)? / PER_KG,
        gpu_kwh: f(4)? / PER_KWH,
        idle_gpu_kwh: f(5)? / PER_KWH,
        idle_gpu_kg: f(6)? / PER_KG,
        static_kwh: f(7)? / PER_KWH,
        operational_kg: f(8)? / PER_KG,
        embodied_kg: f(9)? / PER_KG,
        embodied_not_counted: f(10)? as i64,
        gpus_without_idle: f(11)? as i64,
        unreadable: f(12)? as i64,
    })
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

const FROM: &str = "JOIN orgs o ON o.id = x.org_id JOIN teams t ON t.id = x.team_id \
                    JOIN projects p ON p.id = x.project_id";

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

/// Runs whose derived figures are back-filled per transaction.
const BACKFILL_BATCH: i64 = 500;

impl Store {
    /// Totals from the rollups; `None` when `f` cannot be served by them (see
    /// [`rollup_filter`]).
    pub(crate) async fn totals_from_rollups(
        &self,
        f: &RunFilter,
        by: GroupBy,
        limit: i64,
        offset: i64,
    ) -> Result<Option<Vec<TotalsRow>>> {
        let mut params = Vec::new();
        let Some((filter, host_filter)) = rollup_filter(f, &mut params) else {
            return Ok(None);
        };
        let (keys, group, host_group) = group_columns(by);
        let table = rollup_schema::source(self.db.dialect(), host_filter || host_group);
        params.push(limit.into());
        params.push(offset.into());
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT {keys}, {} FROM {table} x {FROM} WHERE 1 = 1{filter} \
                     GROUP BY {group} HAVING SUM(x.runs) > 0 ORDER BY {group} LIMIT ? OFFSET ?",
                    sums_sql()
                ),
                params,
            )
            .await?;
        let out = rows
            .iter()
            .map(|r| {
                let s = sums(r, 2)?;
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
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(out))
    }

    /// The dashboard's groups (team, project, user, status, month) of the runs matching `f`.
    /// Fails when `f` cannot be served by the rollups (the dashboard never filters by time).
    /// Rows come as stored, not grouped (sorting tens of thousands of text keys was most of a
    /// page's time): a group may come in more than one row (on PostgreSQL, its table row and
    /// journal rows not folded yet), and every reader sums them.
    pub async fn dashboard_groups(&self, f: &RunFilter) -> Result<Vec<DashGroup>> {
        let mut params = Vec::new();
        let Some((filter, host)) = rollup_filter(f, &mut params) else {
            anyhow::bail!("dashboard filters must fall on month starts");
        };
        let table = rollup_schema::source(self.db.dialect(), host);
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
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT t.name, p.name, NULLIF(x.user_key, ''), x.status, x.month, {} \
                     FROM {table} x {FROM} WHERE ({}){filter}",
                    cols.join(", "),
                    nonzero.join(" OR ")
                ),
                params,
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DashGroup {
                    team: r.text(0)?,
                    project: r.text(1)?,
                    user: r.opt_text(2)?,
                    status: r.text(3)?,
                    month: r.text(4)?,
                    sums: sums(r, 5)?,
                })
            })
            .collect()
    }

    /// Emissions of the runs started in `month` in a team (or one of its projects), kg.
    pub(crate) async fn month_emissions(
        &self,
        team_id: i64,
        project_id: Option<i64>,
        month: &str,
    ) -> Result<f64> {
        let mut p = vec![team_id.into(), month.into()];
        let proj = match project_id {
            Some(id) => {
                p.push(id.into());
                " AND project_id = ?"
            }
            None => "",
        };
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT COALESCE(SUM(CAST(emissions_ug AS DOUBLE PRECISION)), 0.0) \
                     FROM {} x WHERE team_id = ? AND month = ?{proj}",
                    rollup_schema::source(self.db.dialect(), false)
                ),
                p,
            )
            .await?;
        Ok(rows.first().map(|u| u.f64(0)).transpose()?.unwrap_or(0.0) / PER_KG)
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

    /// Where the rollups differ from a recomputation from `runs`: one line per differing
    /// group (empty when exact). A row whose sums are all zero equals a missing row.
    pub async fn rollup_drift(&self) -> Result<Vec<String>> {
        let d = self.db.dialect();
        let mut out = Vec::new();
        for hosts in [false, true] {
            let table = if hosts { "rollup_hosts" } else { "rollups" };
            let mut cols = vec!["org_id".to_string()];
            cols.extend(rollup_schema::keys(hosts).iter().map(|k| k.to_string()));
            cols.push("runs".into());
            cols.extend(MEASURES.iter().map(|m| m.column.to_string()));
            let nkeys = 1 + rollup_schema::keys(hosts).len();
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
                        rollup_schema::source(d, hosts),
                        cols[..nkeys].join(", ")
                    ),
                    vec![],
                )
                .await?;
            let fresh = self
                .db
                .query(&rollup_schema::recompute_sql(d, hosts), vec![])
                .await?;
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
/// SQLite), until the handle is aborted. Several servers may run it at once.
pub fn spawn_fold(store: Store) -> Option<tokio::task::JoinHandle<()>> {
    if store.db.dialect() != crate::db::Dialect::Postgres {
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            if let Err(e) = store.fold_rollups().await {
                eprintln!("wattprint serve: rollups: folding the journal failed: {e:#} (retried)");
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
