//! The per-day rollups, `rollup_days`: the same sums as `rollups` (see
//! [`crate::db::rollup_schema`]) per (UTC day, team, project, status), so that a `/totals` window
//! whose ends fall mid-month reads the whole days of its edge months from here and only the
//! partial day at each end from `runs` ([`crate::totals_window`]).
//!
//! No user and no host in the key: at an institution's scale (the scale script's year: 1 000
//! users, 2 740 runs a day) a row per (user, day) would be nearly a row per run, and reading
//! half a month of them would cost what reading the runs did. Windows grouped or filtered by
//! user or host keep the monthly rollups and runs at their edges.
//!
//! `day` is the run's `started_unix` divided by 86 400, rounded down (day 0 is 1970-01-01).
//! Kept exactly like the monthly rollups: on SQLite three triggers of their own update it in
//! place; on PostgreSQL the rollup trigger's journal rows carry the run's day and the journal
//! fold upserts this table too (the per-upload write path appends the same one row).

use super::rollup_schema::{self, MEASURES, RUN_INPUTS};
use super::Dialect;

/// The table.
pub const TABLE: &str = "rollup_days";

/// Its keys, in primary-key order (day first: a window reads a range of days).
pub const KEYS: &[&str] = &["day", "team_id", "project_id", "status"];

/// Seconds per day.
pub const DAY_S: i64 = 86_400;

/// The UTC day of row `r` (`NEW`, `OLD` or an alias of `runs`): `started_unix` / 86 400 rounded
/// down, in integer arithmetic both dialects share (their `/` and `%` truncate towards zero).
pub fn day_expr(r: &str) -> String {
    format!("(({r}.started_unix - ((({r}.started_unix % {DAY_S}) + {DAY_S}) % {DAY_S})) / {DAY_S})")
}

/// The keys as expressions on row `r` of `runs`.
fn key_exprs(r: &str) -> Vec<String> {
    KEYS.iter()
        .map(|k| match *k {
            "day" => day_expr(r),
            k => format!("{r}.{k}"),
        })
        .collect()
}

/// Every column: `org_id`, the keys, `runs`, the measures.
pub fn columns() -> Vec<String> {
    let mut c = vec!["org_id".to_string()];
    c.extend(KEYS.iter().map(|k| k.to_string()));
    c.push("runs".into());
    c.extend(MEASURES.iter().map(|m| m.column.to_string()));
    c
}

/// `YYYY-MM` of the day in column `col` (the month its runs count in).
pub fn month_of_day(d: Dialect, col: &str) -> String {
    match d {
        Dialect::Sqlite => format!("strftime('%Y-%m', {col} * {DAY_S}, 'unixepoch')"),
        Dialect::Postgres => {
            format!("to_char(to_timestamp({col} * {DAY_S}) AT TIME ZONE 'UTC', 'YYYY-MM')")
        }
    }
}

/// The CREATE TABLE statement (SQLite: clustered on its key, so a range of days is contiguous).
fn create(d: Dialect) -> String {
    let mut cols = vec!["org_id BIGINT NOT NULL".to_string()];
    for k in KEYS {
        let ty = if *k == "status" { "TEXT" } else { "BIGINT" };
        cols.push(format!("{k} {ty} NOT NULL"));
    }
    cols.push("runs BIGINT NOT NULL".into());
    for m in MEASURES {
        cols.push(format!("{} BIGINT NOT NULL", m.column));
    }
    format!(
        "CREATE TABLE {TABLE} ({}, PRIMARY KEY ({})){}",
        cols.join(", "),
        KEYS.join(", "),
        if d == Dialect::Sqlite {
            " WITHOUT ROWID"
        } else {
            ""
        }
    )
}

/// SQLite: an upsert adding `sign` times row `r`'s contribution.
fn upsert(r: &str, sign: i64) -> String {
    let neg = if sign < 0 { "-" } else { "" };
    let mut vals = vec![format!("{r}.org_id")];
    vals.extend(key_exprs(r));
    vals.push(format!("{sign}"));
    for m in MEASURES {
        vals.push(format!("{neg}{}", m.contribution(Dialect::Sqlite, r)));
    }
    let set: Vec<String> = std::iter::once("runs")
        .chain(MEASURES.iter().map(|m| m.column))
        .map(|c| format!("{c} = {TABLE}.{c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {TABLE} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
        columns().join(", "),
        vals.join(", "),
        KEYS.join(", "),
        set.join(", ")
    )
}

/// SQLite: the triggers on `runs` keeping the table (besides the monthly ones, unchanged).
fn sqlite_triggers() -> Vec<String> {
    let changed: Vec<String> = RUN_INPUTS
        .iter()
        .chain(std::iter::once(&"started_unix"))
        .map(|c| format!("OLD.{c} IS NOT NEW.{c}"))
        .collect();
    vec![
        format!(
            "CREATE TRIGGER runs_rollup_days_insert AFTER INSERT ON runs BEGIN {}; END",
            upsert("NEW", 1)
        ),
        format!(
            "CREATE TRIGGER runs_rollup_days_delete AFTER DELETE ON runs BEGIN {}; END",
            upsert("OLD", -1)
        ),
        format!(
            "CREATE TRIGGER runs_rollup_days_update AFTER UPDATE ON runs WHEN {} BEGIN {}; {}; END",
            changed.join(" OR "),
            upsert("OLD", -1),
            upsert("NEW", 1)
        ),
    ]
}

/// PostgreSQL: the fold's upsert of the journal rows `d` (a CTE) into the table, in key order.
pub(crate) fn fold_upsert() -> String {
    let ks = KEYS.join(", ");
    let mut sel = vec!["CAST(SUM(runs) AS BIGINT)".to_string()];
    let mut set = vec![format!("runs = {TABLE}.runs + excluded.runs")];
    for m in MEASURES {
        sel.push(format!("CAST(SUM({c}) AS BIGINT)", c = m.column));
        set.push(format!("{c} = {TABLE}.{c} + excluded.{c}", c = m.column));
    }
    format!(
        "INSERT INTO {TABLE} ({}) SELECT org_id, {ks}, {} FROM d GROUP BY org_id, {ks} \
         ORDER BY {ks} ON CONFLICT ({ks}) DO UPDATE SET {}",
        columns().join(", "),
        sel.join(", "),
        set.join(", ")
    )
}

/// What reads see, as a `FROM` item: the table, and on PostgreSQL the journal not folded yet.
pub fn source(d: Dialect) -> String {
    match d {
        Dialect::Sqlite => TABLE.to_string(),
        Dialect::Postgres => {
            let c = columns().join(", ");
            format!("(SELECT {c} FROM {TABLE} UNION ALL SELECT {c} FROM rollup_deltas)")
        }
    }
}

/// The table's rows recomputed from `runs r`: the back-fill, and what the drift check compares.
pub fn recompute_sql(d: Dialect) -> String {
    rollup_schema::recompute_by(d, key_exprs("r"))
}

/// Every statement of the migration adding the table, for `d`, in one transaction.
///
/// PostgreSQL: the journal gains the run's day. The migration locks it (writers' journal rows
/// wait for the commit), folds what it holds into the monthly tables (those changes are already
/// in `runs`, which the back-fill reads), adds the column to the now empty journal, creates and
/// back-fills the table, and replaces the trigger function by one writing the day.
pub fn migration(d: Dialect) -> Vec<String> {
    let mut out = Vec::new();
    if d == Dialect::Postgres {
        out.push("LOCK TABLE rollup_deltas IN ACCESS EXCLUSIVE MODE".into());
        out.push(rollup_schema::fold_statement(None, false));
        out.push("ALTER TABLE rollup_deltas ADD COLUMN day BIGINT NOT NULL".into());
    }
    out.push(create(d));
    // In key order, day first: on PostgreSQL a range of days then lies on few pages (in hash
    // order, 16 days of the scale year's rows were on 1 748 pages of 2 040).
    out.push(format!(
        "INSERT INTO {TABLE} ({}) {} ORDER BY 2, 3, 4, 5",
        columns().join(", "),
        recompute_sql(d)
    ));
    match d {
        Dialect::Sqlite => out.extend(sqlite_triggers()),
        Dialect::Postgres => out.push(rollup_schema::pg_function(true)),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The day expression's arithmetic, evaluated as both databases do (`/` and `%` truncate).
    fn day_of(x: i64) -> i64 {
        (x - (((x % DAY_S) + DAY_S) % DAY_S)) / DAY_S
    }

    #[test]
    fn days_round_down_on_both_sides_of_1970() {
        for x in [
            0,
            1,
            86_399,
            86_400,
            -1,
            -86_400,
            -86_401,
            1_738_368_000 + 5,
        ] {
            assert_eq!(day_of(x), x.div_euclid(DAY_S), "{x}");
        }
        assert!(day_expr("NEW").contains("NEW.started_unix % 86400"));
    }
}
