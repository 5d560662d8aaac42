//! Deleting a run (`DELETE /api/v1/runs/{id}`, `wattprint admin run rm`): the run and its
//! samples go, in one transaction with an audit entry that keeps who deleted it, when, its
//! figures and its record (quarantined: readable, re-uploadable by hand). Totals and budgets
//! are computed from the runs table, so they drop by exactly the run's figures at once.

use crate::db::{Row, Stmt, Val};
use crate::store::{Scope, Store};
use anyhow::{anyhow, Result};
use serde::Serialize;

/// Who deletes, for the audit trail.
#[derive(Debug, Clone)]
pub struct Deleter {
    /// e.g. `token 12 (wpt_1a2b3c4d…, "alice-laptop", user alice)` or `wattprint admin (local user root)`.
    pub who: String,
    /// The API token, when deleted through the API.
    pub token_id: Option<i64>,
    /// Why, free text (optional).
    pub reason: Option<String>,
}

/// One audit entry: a deleted run's figures, and who deleted it when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deletion {
    pub id: i64,
    pub team: String,
    pub project: String,
    pub run_id: String,
    pub user: Option<String>,
    pub status: String,
    pub started_at: String,
    pub duration_s: f64,
    pub energy_kwh: f64,
    pub facility_kwh: f64,
    pub emissions_kg: f64,
    /// Samples deleted with the run.
    pub samples: i64,
    pub deleted_at: String,
    pub deleted_by: String,
    pub reason: Option<String>,
}

const DELETION_COLUMNS: &str = "id, team, project, run_id, user_name, status, started_at, \
     duration_s, energy_kwh, facility_kwh, emissions_kg, samples, deleted_at, deleted_by, reason";

fn deletion(r: &Row) -> Result<Deletion> {
    Ok(Deletion {
        id: r.i64(0)?,
        team: r.text(1)?,
        project: r.text(2)?,
        run_id: r.text(3)?,
        user: r.opt_text(4)?,
        status: r.text(5)?,
        started_at: r.text(6)?,
        duration_s: r.f64(7)?,
        energy_kwh: r.f64(8)?,
        facility_kwh: r.f64(9)?,
        emissions_kg: r.f64(10)?,
        samples: r.i64(11)?,
        deleted_at: r.text(12)?,
        deleted_by: r.text(13)?,
        reason: r.opt_text(14)?,
    })
}

impl Store {
    /// Delete a run visible in `scope` with its samples, recording the audit entry in the same
    /// transaction. `None` when there is no such run (or another request deleted it first).
    pub async fn delete_run(
        &self,
        scope: &Scope,
        run_id: &str,
        by: &Deleter,
    ) -> Result<Option<Deletion>> {
        let Some(pk) = self.run_pk(scope, run_id).await? else {
            return Ok(None);
        };
        let now = crate::now_rfc3339();
        let d = self.db.dialect();
        let count = crate::store_samples::count_sql(d, "r.pk");
        let audit = Stmt::new(
            format!(
                "INSERT INTO run_deletions (org_id, team_id, team, project, run_id, user_name, status, \
                   started_at, duration_s, energy_kwh, facility_kwh, emissions_kg, samples, record, \
                   deleted_at, deleted_by, deleted_by_token, reason) \
                 SELECT r.org_id, r.team_id, t.name, p.name, r.run_id, r.user_name, r.status, \
                   r.started_at, r.duration_s, r.energy_kwh, r.facility_kwh, r.emissions_kg, \
                   {count}, r.record, \
                   CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT) \
                 FROM runs r JOIN teams t ON t.id = r.team_id JOIN projects p ON p.id = r.project_id \
                 WHERE r.pk = ? RETURNING {DELETION_COLUMNS}"
            ),
            vec![
                now.into(),
                by.who.clone().into(),
                Val::OptI(by.token_id),
                Val::OptT(by.reason.clone()),
                pk.into(),
            ],
        );
        let mut stmts = Vec::new();
        if d == crate::db::Dialect::Postgres {
            // Another server may be deleting the same run: wait for it, so that the audit
            // below sees the run gone instead of recording a second deletion (SQLite's single
            // writer serialises this already).
            stmts.push(Stmt::new(
                "SELECT pk FROM runs WHERE pk = ? FOR UPDATE",
                vec![pk.into()],
            ));
        }
        let at = stmts.len();
        stmts.extend([
            audit,
            Stmt::new(
                format!(
                    "DELETE FROM {} WHERE run_pk = ?",
                    crate::store_samples::samples_table(d)
                ),
                vec![pk.into()],
            ),
            Stmt::new("DELETE FROM runs WHERE pk = ?", vec![pk.into()]),
        ]);
        let res = self.db.transaction(stmts).await?;
        let Some(row) = res.get(at).and_then(|r| r.rows.first()) else {
            // Deleted by a concurrent request between the lookup and the transaction.
            return Ok(None);
        };
        let d = deletion(row)?;
        let removed = res.get(at + 2).map(|r| r.changed).unwrap_or(0);
        if removed != 1 {
            return Err(anyhow!(
                "deleting run {run_id:?} removed {removed} rows instead of 1"
            ));
        }
        Ok(Some(d))
    }

    /// The audit trail of deletions visible in `scope`, newest first (at most `limit`).
    pub async fn deletions(&self, scope: &Scope, limit: usize) -> Result<Vec<Deletion>> {
        let mut params = Vec::new();
        let team_scope = Scope {
            project_id: None,
            ..*scope
        };
        let filter = team_scope.sql("d", &mut params);
        // Deletions have no project key: a project-scoped view filters by the project's name.
        let mut project = String::new();
        if let Some(p) = scope.project_id {
            project = " AND d.project = (SELECT name FROM projects WHERE id = ?)".into();
            params.push(p.into());
        }
        params.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT {} FROM run_deletions d WHERE 1 = 1{}{project} ORDER BY d.id DESC LIMIT ?",
                    DELETION_COLUMNS
                        .split(", ")
                        .map(|c| format!("d.{c}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    filter,
                ),
                params,
            )
            .await?;
        rows.iter().map(deletion).collect()
    }
}
