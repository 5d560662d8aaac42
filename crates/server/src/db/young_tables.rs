//! PostgreSQL: statistics for tables that have just started to grow.
//!
//! The planner sizes a table it has no statistics for from its pages, and a prepared
//! statement's generic plan, made on a connection's sixth execution, is kept until the table's
//! statistics change. On a new database that plan is made while `runs` is nearly empty, where
//! every index starting with `team_id` costs the same as the `(team_id, run_id)` key: measured,
//! the upload's lookups by run id then scanned a team's runs through `runs_team_model`, slower
//! with every run (3 ms per upload after 9 000 uploads), until autovacuum's first `ANALYZE`,
//! up to a minute later (docs/server.md, "Load"). So the server analyses each of these tables
//! once, when it has grown past [`PAGES`] pages (512 KiB; the test's 2 000 runs are 4 MiB, and
//! a lookup chose the key by itself from about 300 runs of 1.5 KB) and nobody has analysed it yet; the new
//! statistics make every connection plan again, and autovacuum keeps them from then on.

use super::Db;
use anyhow::Result;

/// The tables an upload looks up by key: `runs` (its key among several indexes starting with
/// `team_id`) and `sample_sets` (its key against a scan). The rollups' journal is read whole by
/// the fold and needs no plan of this kind.
const TABLES: &[&str] = &["runs", "sample_sets"];
/// Size (8 KiB pages) from which a table is analysed: well before a scan of it costs more than
/// its key's lookup, well after it is empty.
pub const PAGES: i64 = 64;

/// Analyse each of [`TABLES`] that has grown past [`PAGES`] and was never analysed; the tables
/// analysed, and whether every table has statistics now (nothing is left to do). One query
/// when there is nothing to do.
pub async fn analyze(db: &dyn Db) -> Result<(Vec<&'static str>, bool)> {
    let rows = db
        .query(
            "SELECT s.relname, pg_relation_size(s.relid) / 8192, \
             s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL \
             FROM pg_stat_user_tables s WHERE s.schemaname = current_schema() \
             AND s.relname = ANY(CAST(? AS TEXT[]))",
            vec![super::Val::TextArray(
                TABLES.iter().map(|t| t.to_string()).collect(),
            )],
        )
        .await?;
    let mut done = Vec::new();
    let mut left = false;
    for r in &rows {
        let name = r.text(0)?;
        let Some(&t) = TABLES.iter().find(|t| **t == name) else {
            continue;
        };
        if r.i64(2)? == 1 {
            continue;
        }
        if r.i64(1)? < PAGES {
            left = true;
            continue;
        }
        db.transaction(vec![super::Stmt::new(format!("ANALYZE {t}"), vec![])])
            .await?;
        done.push(t);
    }
    Ok((done, !left))
}
