//! The rollups' schema: what each rollup row sums, how one run contributes to it, and the
//! triggers that keep the two rollup tables exact in the same transaction as every write of
//! `runs` (insert, advance, re-upload, deletion, back-fill of derived figures).
//!
//! On SQLite (one writer) the triggers update the tables in place. On PostgreSQL they append the
//! change to a journal (`rollup_deltas`), which a background task folds into the tables a
//! second later ([`fold_sql`]); reads add the journal's rows not folded yet ([`source`]). So
//! concurrent uploads of runs in the same group never wait for each other's commit on a rollup
//! row (updating it in place halved PostgreSQL's ingest rate: every checkpoint of a group's
//! running runs queued on one row lock held until commit).
//!
//! Two tables, the same sums:
//! - `rollups`: per (team, project, user, month, status), what `/totals` (unless grouped or
//!   filtered by host), budgets and the dashboard read. An institution's year is tens of
//!   thousands of rows however many runs it had.
//! - `rollup_hosts`: per (team, project, user, month, status, host), for `/totals` by or
//!   filtered by host (hosts multiply the groups, so the coarse table stays separate).
//!
//! A third, per day (`rollup_days`, migration 8), has its own module: [`super::rollup_days`]; on
//! PostgreSQL it shares this journal (whose rows then carry the run's day) and fold.
//!
//! Sums are integers in fixed units (µWh, µg, ms), so that adding a run's new contribution and
//! subtracting its old one is exact in any order: a rollup row equals, bit for bit, the sum over
//! its runs recomputed from `runs` ([`recompute_sql`]). One run's figures are first bounded to
//! what one record can hold (`wattprint_core::validate`), so rows stored before the server
//! validated records (or forged ones) cannot overflow a row.

use super::Dialect;
use wattprint_core::validate::{MAX_DURATION_S, MAX_EMISSIONS_KG, MAX_ENERGY_KWH, MAX_PUE};

/// Keys of `rollups`, in primary-key order (`user_key` is the user's name, `''` for none).
pub const KEYS: &[&str] = &["team_id", "project_id", "user_key", "month", "status"];

/// One summed figure: its column, the run's expression (with `R.` for the row) before bounds
/// and scaling, the bound, and the scale (units per unit of the run's column).
pub struct Measure {
    pub column: &'static str,
    run_expr: &'static str,
    bound: f64,
    scale: f64,
}

/// Units per kWh in the rollups (µWh).
pub const PER_KWH: f64 = 1e9;
/// Units per kg (µg).
pub const PER_KG: f64 = 1e9;
/// Units per second (ms).
pub const PER_S: f64 = 1e3;

/// Every summed figure after `runs` (a count).
pub const MEASURES: &[Measure] = &[
    m("duration_ms", "R.duration_s", MAX_DURATION_S, PER_S),
    m("energy_uwh", "R.energy_kwh", MAX_ENERGY_KWH, PER_KWH),
    m(
        "facility_uwh",
        "R.facility_kwh",
        MAX_ENERGY_KWH * MAX_PUE,
        PER_KWH,
    ),
    m("emissions_ug", "R.emissions_kg", MAX_EMISSIONS_KG, PER_KG),
    m("gpu_uwh", "R.gpu_kwh", MAX_ENERGY_KWH, PER_KWH),
    m("idle_gpu_uwh", "R.idle_gpu_kwh", MAX_ENERGY_KWH, PER_KWH),
    m("idle_gpu_ug", "R.idle_gpu_kg", MAX_EMISSIONS_KG, PER_KG),
    m("static_uwh", "R.static_kwh", MAX_ENERGY_KWH, PER_KWH),
    m(
        "operational_ug",
        "R.operational_kg",
        MAX_EMISSIONS_KG,
        PER_KG,
    ),
    m("embodied_ug", "R.embodied_kg", MAX_EMISSIONS_KG, PER_KG),
    // Counts: runs whose embodied emissions were not counted, GPUs without an idle power,
    // runs whose record could not be read (or is not derived yet).
    m("embodied_nc", "R.embodied_nc", 1.0, 1.0),
    m("gpus_without_idle", "R.gpus_without_idle", 1e6, 1.0),
    m(
        "unreadable",
        "CASE WHEN R.derived = 1 THEN 0 ELSE 1 END",
        1.0,
        1.0,
    ),
];

const fn m(column: &'static str, run_expr: &'static str, bound: f64, scale: f64) -> Measure {
    Measure {
        column,
        run_expr,
        bound,
        scale,
    }
}

impl Measure {
    /// The run's contribution, an integer, for row `r` (`NEW`, `OLD` or a table alias).
    pub fn contribution(&self, d: Dialect, r: &str) -> String {
        let x = self.run_expr.replace("R.", &format!("{r}."));
        let (lo, hi) = match d {
            Dialect::Sqlite => ("MAX", "MIN"),
            Dialect::Postgres => ("GREATEST", "LEAST"),
        };
        // Bounded to [0, bound] (NaN and infinities included), then scaled and rounded.
        format!(
            "CAST(ROUND({hi}({lo}(COALESCE({x}, 0), 0), {b:e}) * {s:e}) AS BIGINT)",
            b = self.bound,
            s = self.scale
        )
    }
}

/// `user_key` of row `r`.
fn user_key(r: &str) -> String {
    format!("COALESCE({r}.user_name, '')")
}

/// The keys of a table: `rollups`, or `rollup_hosts` (`hostname` last).
pub fn keys(hosts: bool) -> Vec<&'static str> {
    let mut k = KEYS.to_vec();
    if hosts {
        k.push("hostname");
    }
    k
}

/// The keys of a table as expressions on a row `r` of `runs`.
pub(crate) fn key_exprs(hosts: bool, r: &str) -> Vec<String> {
    keys(hosts)
        .into_iter()
        .map(|k| match k {
            "user_key" => user_key(r),
            k => format!("{r}.{k}"),
        })
        .collect()
}

/// `rollups`, or `rollup_hosts`.
pub(crate) fn table(hosts: bool) -> &'static str {
    if hosts {
        "rollup_hosts"
    } else {
        "rollups"
    }
}

/// The CREATE TABLE and index statements.
fn tables() -> Vec<String> {
    let mut out = Vec::new();
    for hosts in [false, true] {
        let t = table(hosts);
        let mut cols = vec!["org_id BIGINT NOT NULL".to_string()];
        for k in keys(hosts) {
            let ty = if k.ends_with("_id") { "BIGINT" } else { "TEXT" };
            cols.push(format!("{k} {ty} NOT NULL"));
        }
        cols.push("runs BIGINT NOT NULL".into());
        for m in MEASURES {
            cols.push(format!("{} BIGINT NOT NULL", m.column));
        }
        out.push(format!(
            "CREATE TABLE {t} ({}, PRIMARY KEY ({}))",
            cols.join(", "),
            keys(hosts).join(", ")
        ));
        out.push(format!("CREATE INDEX {t}_org_month ON {t} (org_id, month)"));
        out.push(format!(
            "CREATE INDEX {t}_team_month ON {t} (team_id, month)"
        ));
    }
    out
}

/// An upsert adding `sign` (1 or -1) times row `r`'s contribution to a table's row.
fn upsert(d: Dialect, hosts: bool, r: &str, sign: i64) -> String {
    let t = table(hosts);
    let neg = if sign < 0 { "-" } else { "" };
    let mut names = vec!["org_id".to_string()];
    names.extend(keys(hosts).iter().map(|k| k.to_string()));
    names.push("runs".into());
    let mut vals = vec![format!("{r}.org_id")];
    vals.extend(key_exprs(hosts, r));
    vals.push(format!("{sign}"));
    for m in MEASURES {
        names.push(m.column.into());
        vals.push(format!("{neg}{}", m.contribution(d, r)));
    }
    let set: Vec<String> = std::iter::once("runs")
        .chain(MEASURES.iter().map(|m| m.column))
        .map(|c| format!("{c} = {t}.{c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {t} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
        names.join(", "),
        vals.join(", "),
        keys(hosts).join(", "),
        set.join(", ")
    )
}

/// The columns of `runs` a rollup depends on.
pub(crate) const RUN_INPUTS: &[&str] = &[
    "org_id",
    "team_id",
    "project_id",
    "user_name",
    "month",
    "status",
    "hostname",
    "duration_s",
    "energy_kwh",
    "facility_kwh",
    "emissions_kg",
    "gpu_kwh",
    "idle_gpu_kwh",
    "idle_gpu_kg",
    "static_kwh",
    "operational_kg",
    "embodied_kg",
    "embodied_nc",
    "gpus_without_idle",
    "derived",
];

/// The triggers on `runs`.
fn triggers(d: Dialect) -> Vec<String> {
    match d {
        Dialect::Sqlite => {
            // SQLite serialises writers: no lock order to keep.
            let body = |parts: &[(&str, i64)]| -> String {
                let mut s = String::new();
                for (r, sign) in parts {
                    for hosts in [true, false] {
                        s.push_str(&upsert(d, hosts, r, *sign));
                        s.push_str("; ");
                    }
                }
                s
            };
            let changed: Vec<String> = RUN_INPUTS
                .iter()
                .map(|c| format!("OLD.{c} IS NOT NEW.{c}"))
                .collect();
            vec![
                format!(
                    "CREATE TRIGGER runs_rollup_insert AFTER INSERT ON runs BEGIN {}END",
                    body(&[("NEW", 1)])
                ),
                format!(
                    "CREATE TRIGGER runs_rollup_delete AFTER DELETE ON runs BEGIN {}END",
                    body(&[("OLD", -1)])
                ),
                format!(
                    "CREATE TRIGGER runs_rollup_update AFTER UPDATE ON runs WHEN {} BEGIN {}END",
                    changed.join(" OR "),
                    body(&[("OLD", -1), ("NEW", 1)])
                ),
            ]
        }
        Dialect::Postgres => vec![
            pg_function(false),
            "CREATE TRIGGER runs_rollup AFTER INSERT OR UPDATE OR DELETE ON runs \
             FOR EACH ROW EXECUTE FUNCTION wattprint_rollup()"
                .to_string(),
        ],
    }
}

/// PostgreSQL: the rollup trigger's function. Concurrent uploads only append to the journal (no
/// row is updated in place, so none waits for another's commit); [`fold_sql`] folds it into the
/// tables. With `days` (migration 8 on) each journal row also carries the run's UTC day
/// ([`super::rollup_days`]), and a change of day alone is journalled as old and new rows.
pub(crate) fn pg_function(days: bool) -> String {
    let mut inputs: Vec<&str> = RUN_INPUTS.to_vec();
    let mut keys_n = 7;
    if days {
        inputs.insert(7, "started_unix");
        keys_n = 8;
    }
    let same_keys: Vec<String> = inputs[..keys_n]
        .iter()
        .map(|c| format!("OLD.{c} IS NOT DISTINCT FROM NEW.{c}"))
        .collect();
    let same_all: Vec<String> = inputs
        .iter()
        .map(|c| format!("OLD.{c} IS NOT DISTINCT FROM NEW.{c}"))
        .collect();
    format!(
        "CREATE {}FUNCTION wattprint_rollup() RETURNS trigger LANGUAGE plpgsql AS $f$ \
         BEGIN \
           IF TG_OP = 'UPDATE' THEN \
             IF {same_all} THEN RETURN NULL; END IF; \
             IF {same_keys} THEN {delta}; RETURN NULL; END IF; \
           END IF; \
           IF TG_OP <> 'INSERT' THEN {old}; END IF; \
           IF TG_OP <> 'DELETE' THEN {new}; END IF; \
           RETURN NULL; \
         END $f$",
        if days { "OR REPLACE " } else { "" },
        same_all = same_all.join(" AND "),
        same_keys = same_keys.join(" AND "),
        delta = journal_delta(Dialect::Postgres, days),
        old = journal(Dialect::Postgres, "OLD", -1, days),
        new = journal(Dialect::Postgres, "NEW", 1, days),
    )
}

/// Columns of the journal (PostgreSQL): the host table's keys and the sums.
fn journal_columns(days: bool) -> Vec<String> {
    let mut names = vec!["org_id".to_string()];
    names.extend(keys(true).iter().map(|k| k.to_string()));
    if days {
        names.push("day".into());
    }
    names.push("runs".into());
    names.extend(MEASURES.iter().map(|m| m.column.to_string()));
    names
}

/// Append `sign` times row `r`'s contribution to the journal.
fn journal(d: Dialect, r: &str, sign: i64, days: bool) -> String {
    let neg = if sign < 0 { "-" } else { "" };
    let mut vals = vec![format!("{r}.org_id")];
    vals.extend(key_exprs(true, r));
    if days {
        vals.push(super::rollup_days::day_expr(r));
    }
    vals.push(format!("{sign}"));
    for m in MEASURES {
        vals.push(format!("{neg}{}", m.contribution(d, r)));
    }
    format!(
        "INSERT INTO rollup_deltas ({}) VALUES ({})",
        journal_columns(days).join(", "),
        vals.join(", ")
    )
}

/// Append `NEW − OLD` to the journal (the keys are unchanged).
fn journal_delta(d: Dialect, days: bool) -> String {
    let mut vals = vec!["NEW.org_id".to_string()];
    vals.extend(key_exprs(true, "NEW"));
    if days {
        vals.push(super::rollup_days::day_expr("NEW"));
    }
    vals.push("0".into());
    for m in MEASURES {
        vals.push(format!(
            "{} - {}",
            m.contribution(d, "NEW"),
            m.contribution(d, "OLD")
        ));
    }
    format!(
        "INSERT INTO rollup_deltas ({}) VALUES ({})",
        journal_columns(days).join(", "),
        vals.join(", ")
    )
}

/// Most journal rows folded per statement.
pub const FOLD_BATCH: i64 = 20_000;

/// PostgreSQL: move up to [`FOLD_BATCH`] journal rows into both tables in one statement
/// (`FOR UPDATE SKIP LOCKED`: two servers folding at once take different rows; rows are added
/// in key order, so they never wait on each other in a cycle). Returns how many rows it moved.
pub fn fold_sql() -> String {
    fold_statement(Some(FOLD_BATCH), true)
}

/// The fold of up to `limit` journal rows (all with `None`), into the monthly tables and, with
/// `days`, the per-day one.
pub(crate) fn fold_statement(limit: Option<i64>, days: bool) -> String {
    let sums = |t: &str| -> (String, String) {
        let mut sel = vec!["CAST(SUM(runs) AS BIGINT)".to_string()];
        let mut set = vec![format!("runs = {t}.runs + excluded.runs")];
        for m in MEASURES {
            sel.push(format!("CAST(SUM({c}) AS BIGINT)", c = m.column));
            set.push(format!("{c} = {t}.{c} + excluded.{c}", c = m.column));
        }
        (sel.join(", "), set.join(", "))
    };
    let upsert = |hosts: bool| -> String {
        let t = table(hosts);
        let ks = keys(hosts).join(", ");
        let (sel, set) = sums(t);
        let mut names = vec!["org_id".to_string()];
        names.extend(keys(hosts).iter().map(|k| k.to_string()));
        names.push("runs".into());
        names.extend(MEASURES.iter().map(|m| m.column.to_string()));
        format!(
            "INSERT INTO {t} ({}) SELECT org_id, {ks}, {sel} FROM d GROUP BY org_id, {ks} \
             ORDER BY {ks} ON CONFLICT ({ks}) DO UPDATE SET {set}",
            names.join(", ")
        )
    };
    let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    let day_cte = if days {
        format!(", y AS ({} RETURNING 1)", super::rollup_days::fold_upsert())
    } else {
        String::new()
    };
    format!(
        "WITH d AS (DELETE FROM rollup_deltas WHERE id IN \
           (SELECT id FROM rollup_deltas ORDER BY id{limit} FOR UPDATE SKIP LOCKED) \
           RETURNING *), \
         h AS ({} RETURNING 1), \
         c AS ({} RETURNING 1){day_cte} \
         SELECT (SELECT COUNT(*) FROM d), (SELECT COUNT(*) FROM h), (SELECT COUNT(*) FROM c)",
        upsert(true),
        upsert(false)
    )
}

/// What reads of a table see, as a `FROM` item: the table, and on PostgreSQL the journal not
/// folded yet (so reads are exact at any moment).
pub fn source(d: Dialect, hosts: bool) -> String {
    let t = table(hosts);
    match d {
        Dialect::Sqlite => t.to_string(),
        Dialect::Postgres => {
            let mut cols = vec!["org_id".to_string()];
            cols.extend(keys(hosts).iter().map(|k| k.to_string()));
            cols.push("runs".into());
            cols.extend(MEASURES.iter().map(|m| m.column.to_string()));
            let c = cols.join(", ");
            format!("(SELECT {c} FROM {t} UNION ALL SELECT {c} FROM rollup_deltas)")
        }
    }
}

/// The sums of a table's rows recomputed from `runs r` (`SELECT org_id, keys…, runs,
/// measures… FROM runs r GROUP BY …`): the back-fill, and what a check compares against.
pub fn recompute_sql(d: Dialect, hosts: bool) -> String {
    recompute_by(d, key_exprs(hosts, "r"))
}

/// The sums of `runs r` grouped by its organisation and the key expressions `ks`: what every
/// rollup table's back-fill and check read.
pub(crate) fn recompute_by(d: Dialect, ks: Vec<String>) -> String {
    let mut cols = vec!["r.org_id".to_string()];
    cols.extend(ks.iter().cloned());
    cols.push("COUNT(*)".into());
    for m in MEASURES {
        cols.push(format!("CAST(SUM({}) AS BIGINT)", m.contribution(d, "r")));
    }
    let mut group = vec!["r.org_id".to_string()];
    group.extend(ks);
    format!(
        "SELECT {} FROM runs r GROUP BY {}",
        cols.join(", "),
        group.join(", ")
    )
}

/// Every statement of the migration that adds the rollups, for `d`.
pub fn migration(d: Dialect) -> Vec<String> {
    let mut out = Vec::new();
    // The figures the dashboard derives from a run's record, kept beside it (computed at
    // ingest; `derived` 0 = not yet (rows stored before this migration), 1 = done,
    // 2 = the record cannot be read).
    for (c, ty) in [
        ("gpu_kwh", "DOUBLE PRECISION"),
        ("idle_gpu_kwh", "DOUBLE PRECISION"),
        ("idle_gpu_kg", "DOUBLE PRECISION"),
        ("static_kwh", "DOUBLE PRECISION"),
        ("operational_kg", "DOUBLE PRECISION"),
        ("embodied_kg", "DOUBLE PRECISION"),
        ("embodied_nc", "BIGINT"),
        ("gpus_without_idle", "BIGINT"),
        ("derived", "BIGINT"),
    ] {
        out.push(format!(
            "ALTER TABLE runs ADD COLUMN {c} {ty} NOT NULL DEFAULT 0"
        ));
    }
    out.push("CREATE INDEX runs_derived ON runs (derived, pk)".into());
    out.extend(tables());
    if d == Dialect::Postgres {
        let mut cols = vec![
            "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY".to_string(),
            "org_id BIGINT NOT NULL".to_string(),
        ];
        for k in keys(true) {
            let ty = if k.ends_with("_id") { "BIGINT" } else { "TEXT" };
            cols.push(format!("{k} {ty} NOT NULL"));
        }
        cols.push("runs BIGINT NOT NULL".into());
        for m in MEASURES {
            cols.push(format!("{} BIGINT NOT NULL", m.column));
        }
        out.push(format!("CREATE TABLE rollup_deltas ({})", cols.join(", ")));
        // Every row is deleted within a second of its insert: vacuum it after 10 000 dead rows
        // (not 20 % of a table that is nearly empty), so that reads of the journal stay short.
        out.push(
            "ALTER TABLE rollup_deltas SET (autovacuum_vacuum_scale_factor = 0, \
             autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_cost_delay = 0)"
                .into(),
        );
    }
    for hosts in [false, true] {
        let mut names = vec!["org_id".to_string()];
        names.extend(keys(hosts).iter().map(|k| k.to_string()));
        names.push("runs".into());
        names.extend(MEASURES.iter().map(|m| m.column.to_string()));
        out.push(format!(
            "INSERT INTO {} ({}) {}",
            table(hosts),
            names.join(", "),
            recompute_sql(d, hosts)
        ));
    }
    out.extend(triggers(d));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contributions_are_bounded_and_scaled() {
        let e = MEASURES[1].contribution(Dialect::Postgres, "NEW");
        assert_eq!(
            e,
            "CAST(ROUND(LEAST(GREATEST(COALESCE(NEW.energy_kwh, 0), 0), 1e6) * 1e9) AS BIGINT)"
        );
        let s = MEASURES[1].contribution(Dialect::Sqlite, "r");
        assert!(
            s.starts_with("CAST(ROUND(MIN(MAX(COALESCE(r.energy_kwh"),
            "{s}"
        );
        // A row holds a thousand runs at the largest figures a record may claim.
        for m in MEASURES {
            assert!(m.bound * m.scale * 1000.0 < i64::MAX as f64, "{}", m.column);
        }
    }
}
