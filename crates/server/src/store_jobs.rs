//! Jobs across nodes: the stored records of one job's runs (`GET /api/v1/jobs/{key}`).
//! Written once; the statement runs unchanged on SQLite and PostgreSQL.

use crate::store::{Scope, Store};
use anyhow::Result;

/// Most runs of one job read for its page (ranks × nodes × leader handovers).
pub const MAX_JOB_RUNS: i64 = 20_000;

/// `s` with `\`, `%` and `_` escaped for `LIKE … ESCAPE '\'`.
fn like_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

impl Store {
    /// Records (JSON text) of the runs visible in `scope` whose record mentions `key`, oldest
    /// first, at most `limit`: the caller keeps those whose `job` is `key` (the text filter is
    /// only a cheap first pass that works the same on both databases).
    pub async fn job_records(&self, scope: &Scope, key: &str, limit: i64) -> Result<Vec<String>> {
        let mut params = vec![format!("%{}%", like_escape(key)).into()];
        let filter = scope.sql("r", &mut params);
        params.push(limit.into());
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT r.record FROM runs r WHERE r.record LIKE ? ESCAPE '\\'{filter} \
                     ORDER BY r.started_unix, r.pk LIMIT ?"
                ),
                params,
            )
            .await?;
        rows.iter().map(|r| r.text(0)).collect()
    }
}
