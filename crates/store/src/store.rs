//! The local store: SQLite (WAL) under `$WATTPRINT_HOME` (default `$XDG_DATA_HOME/wattprint`,
//! else `~/.local/share/wattprint`). Runs are upserted at every checkpoint so a crash loses at
//! most one checkpoint interval; samples are kept per device.
//!
//! Schema changes go through [`MIGRATIONS`], keyed on `PRAGMA user_version`: each step runs once,
//! in order, inside one `BEGIN IMMEDIATE` transaction (all steps or none), after a copy of the
//! database has been written next to it (`wattprint.db.v<N>.bak`). A step may add tables, columns
//! and indexes and fill them from the stored record JSON; it never drops or rewrites a run's
//! record. See docs/store-and-interchange.md.

use anyhow::{Context, Result};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use wattprint_core::env::Env;
use wattprint_core::record::{Methods, RunRecord};
use wattprint_core::sampler::{SeriesPoint, Snapshot};

/// Schema version written to `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 3;

/// One schema step: applied once, to databases whose `user_version` is below `version`.
pub struct Migration {
    pub version: i64,
    pub what: &'static str,
    apply: fn(&Transaction) -> Result<()>,
}

/// Every schema step, oldest first. Append only: never edit a released step.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        what: "runs (record JSON + project/status/time/energy/emissions columns) and samples",
        apply: migrate_v1,
    },
    Migration {
        version: 2,
        what: "listing columns (start time, duration, exit code, tags, static and facility \
               energy, scope, hostname, methods) filled from each stored record, and indexes",
        apply: migrate_v2,
    },
    Migration {
        version: 3,
        what: "the model of each run (the record's lineage) as a column filled from each stored \
               record, and its index, for `wattprint model`",
        apply: migrate_v3,
    },
];

fn migrate_v3(tx: &Transaction) -> Result<()> {
    tx.execute_batch(
        "ALTER TABLE runs ADD COLUMN model TEXT;
        CREATE INDEX IF NOT EXISTS runs_model ON runs(model, started_unix);",
    )?;
    let rows: Vec<(String, String)> = {
        let mut st = tx.prepare("SELECT id, record FROM runs")?;
        let it = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        it.collect::<std::result::Result<_, _>>()?
    };
    let mut up = tx.prepare("UPDATE runs SET model = ?2 WHERE id = ?1")?;
    for (id, json) in rows {
        // A record that does not parse keeps its row untouched, without a model.
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or(serde_json::Value::Null);
        if let Some(m) = Denorm::from_value(&v).model {
            up.execute(params![id, m])?;
        }
    }
    Ok(())
}

fn migrate_v1(tx: &Transaction) -> Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS runs (
            id TEXT PRIMARY KEY,
            project TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            energy_kwh REAL NOT NULL,
            emissions_kg REAL NOT NULL,
            record TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS runs_project ON runs(project, started_at);
        CREATE TABLE IF NOT EXISTS samples (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            device_id TEXT NOT NULL,
            t0 REAL NOT NULL,
            t1 REAL NOT NULL,
            energy_j REAL NOT NULL,
            PRIMARY KEY (run_id, device_id, t0)
        );",
    )?;
    Ok(())
}

fn migrate_v2(tx: &Transaction) -> Result<()> {
    tx.execute_batch(
        "ALTER TABLE runs ADD COLUMN started_unix REAL NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN duration_s REAL NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN exit_code INTEGER;
        ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE runs ADD COLUMN static_kwh REAL NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN facility_kwh REAL NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN scope TEXT NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN hostname TEXT NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN methods TEXT NOT NULL DEFAULT '{}';
        CREATE INDEX IF NOT EXISTS runs_started ON runs(started_unix);
        CREATE INDEX IF NOT EXISTS runs_status ON runs(status, started_unix);
        CREATE INDEX IF NOT EXISTS runs_project_started ON runs(project, started_unix);",
    )?;
    let rows: Vec<(String, String, String)> = {
        let mut st = tx.prepare("SELECT id, started_at, record FROM runs")?;
        let it = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        it.collect::<std::result::Result<_, _>>()?
    };
    let mut up = tx.prepare(
        "UPDATE runs SET started_unix = ?2, duration_s = ?3, exit_code = ?4, tags = ?5,
           static_kwh = ?6, facility_kwh = ?7, scope = ?8, hostname = ?9, methods = ?10
         WHERE id = ?1",
    )?;
    for (id, started_at, json) in rows {
        // A record that does not parse keeps its row (and its JSON, untouched) with the
        // columns' defaults; only the listing columns are then unknown.
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or(serde_json::Value::Null);
        let mut d = Denorm::from_value(&v);
        if d.started_unix == 0.0 {
            d.started_unix = rfc3339_unix(&started_at).unwrap_or(0.0);
        }
        up.execute(params![
            id,
            d.started_unix,
            d.duration_s,
            d.exit_code,
            d.tags,
            d.static_kwh,
            d.facility_kwh,
            d.scope,
            d.hostname,
            d.methods
        ])?;
    }
    Ok(())
}

/// The listing columns of a run, taken from its record JSON (tolerant of missing fields).
#[derive(Debug, PartialEq)]
struct Denorm {
    started_unix: f64,
    duration_s: f64,
    exit_code: Option<i64>,
    tags: String,
    static_kwh: f64,
    facility_kwh: f64,
    scope: String,
    hostname: String,
    methods: String,
    model: Option<String>,
}

impl Denorm {
    fn from_value(v: &serde_json::Value) -> Denorm {
        let f = |p: &str| v.pointer(p).and_then(|x| x.as_f64());
        let s = |p: &str| {
            v.pointer(p)
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string()
        };
        let obj = |p: &str| match v.pointer(p) {
            Some(o @ serde_json::Value::Object(_)) => o.to_string(),
            _ => "{}".to_string(),
        };
        let facility = f("/energy_kwh/facility")
            .unwrap_or_else(|| f("/energy_kwh/total").unwrap_or(0.0) * f("/pue").unwrap_or(1.0));
        Denorm {
            started_unix: v
                .pointer("/started_at")
                .and_then(|x| x.as_str())
                .and_then(rfc3339_unix)
                .unwrap_or(0.0),
            duration_s: f("/duration_s").unwrap_or(0.0),
            exit_code: v.pointer("/exit_code").and_then(|x| x.as_i64()),
            tags: obj("/tags"),
            static_kwh: f("/energy_kwh/static").unwrap_or(0.0),
            facility_kwh: facility,
            scope: s("/scope"),
            hostname: s("/host/hostname"),
            methods: obj("/methods"),
            model: v
                .pointer("/lineage/model")
                .and_then(|x| x.as_str())
                .map(str::to_string),
        }
    }
}

impl Denorm {
    /// [`Denorm::from_value`] of the record's JSON, taken from the record itself (a running
    /// record is saved every few seconds: no JSON tree is built for it).
    fn from_record(rec: &RunRecord) -> Result<Denorm> {
        // JSON writes a non-finite number as null, which `from_value` reads as absent.
        let finite = |x: f64| x.is_finite().then_some(x);
        let e = &rec.energy_kwh;
        Ok(Denorm {
            started_unix: rfc3339_unix(&rec.started_at).unwrap_or(0.0),
            duration_s: finite(rec.duration_s).unwrap_or(0.0),
            exit_code: rec.exit_code.map(i64::from),
            tags: serde_json::to_string(&rec.tags)?,
            static_kwh: finite(e.static_.0).unwrap_or(0.0),
            facility_kwh: finite(e.facility.0).unwrap_or_else(|| {
                finite(e.total.0).unwrap_or(0.0) * finite(rec.pue).unwrap_or(1.0)
            }),
            scope: rec.scope.clone(),
            hostname: rec.host.hostname.clone(),
            // Through a JSON value, as `from_value` writes it (keys in order).
            methods: serde_json::to_value(&rec.methods)?.to_string(),
            model: rec.lineage.as_ref().and_then(|l| l.model.clone()),
        })
    }
}

/// Seconds since the Unix epoch of an RFC 3339 time.
pub fn rfc3339_unix(s: &str) -> Option<f64> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() as f64 / 1e9)
}

/// The lower time bound `--since` means: an RFC 3339 time (`2025-03-01T12:00:00Z`), a date
/// (`2025-03-01`, midnight UTC), a UTC date and time without offset (`2025-03-01T12:00:00`), or a
/// duration back from `now` (`7d`, `12h`, `30m`).
pub fn parse_since(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime> {
    let t = s.trim();
    let bad = || {
        anyhow::anyhow!(
            "invalid --since `{s}`: give an RFC 3339 time (2025-03-01T12:00:00Z), a date \
             (2025-03-01) or a duration back from now (7d, 12h, 30m)"
        )
    };
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(dt) = OffsetDateTime::parse(t, &Rfc3339) {
        return Ok(dt);
    }
    let date_fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(t, &date_fmt) {
        return Ok(d.midnight().assume_utc());
    }
    let naive = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    if let Ok(dt) = time::PrimitiveDateTime::parse(t, &naive) {
        return Ok(dt.assume_utc());
    }
    if t.starts_with(|c: char| c.is_ascii_digit()) && !t.contains('-') {
        let d = wattprint_core::units::parse_duration(t).map_err(|e| {
            anyhow::anyhow!("invalid --since `{s}`: {e}; or give a date such as 2025-03-01")
        })?;
        let d = time::Duration::try_from(d).map_err(|_| bad())?;
        return now.checked_sub(d).ok_or_else(bad);
    }
    Err(bad())
}

/// `$WATTPRINT_HOME`, else `$XDG_DATA_HOME/wattprint`, else `$HOME/.local/share/wattprint`.
pub fn home_dir(env: &Env) -> Result<PathBuf> {
    if let Some(h) = env.path("WATTPRINT_HOME") {
        return Ok(h);
    }
    if let Some(x) = env.path("XDG_DATA_HOME") {
        return Ok(x.join("wattprint"));
    }
    match env.path("HOME") {
        Some(h) => Ok(h.join(".local/share/wattprint")),
        None => anyhow::bail!(
            "cannot locate the local store: set WATTPRINT_HOME (or HOME / XDG_DATA_HOME)"
        ),
    }
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Switch the database to WAL mode. Two processes opening a new store at once both try the
/// switch, which takes an exclusive lock that SQLite's busy handler does not wait for: the one
/// refused retries (up to the busy timeout) instead of giving the store up.
fn set_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut pause = Duration::from_millis(2);
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

impl Store {
    /// Open (creating if needed) the store in the home directory `env` names.
    pub fn open_default(env: &Env) -> Result<Store> {
        let dir = home_dir(env)?;
        Store::open(&dir.join("wattprint.db"))
    }

    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the store directory {}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("opening the local store {}", path.display()))?;
        // Writers (concurrent `wattprint run`s) wait for each other up to this long.
        conn.busy_timeout(Duration::from_secs(30))?;
        set_wal(&conn).with_context(|| format!("setting WAL mode on {}", path.display()))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Open the default store for browsing (`runs`, `show`, `report`, `projects`, `export`).
    /// Like [`Store::open_default`], but a store that cannot be written (read-only file or
    /// directory, read-only mount) is still opened, read-only.
    pub fn open_default_for_reading(env: &Env) -> Result<Store> {
        let dir = home_dir(env)?;
        Store::open_for_reading(&dir.join("wattprint.db"))
    }

    /// [`Store::open`], else (when the file exists but cannot be opened for writing) read-only:
    /// first as a normal reader (which still sees other writers' latest commits), then, where
    /// SQLite cannot even create its shared-memory index next to the file (a read-only
    /// directory or mount), as an immutable file.
    pub fn open_for_reading(path: &Path) -> Result<Store> {
        let first = match Store::open(path) {
            Ok(s) => return Ok(s),
            Err(e) => e,
        };
        if !path.is_file() {
            return Err(first);
        }
        use rusqlite::OpenFlags;
        let ro = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let Some(name) = path.to_str() else {
            return Err(first);
        };
        let uri = |immutable: bool| {
            let mut u = String::from("file:");
            for c in name.chars() {
                match c {
                    '?' | '#' | '%' => u.push_str(&format!("%{:02X}", c as u32)),
                    _ => u.push(c),
                }
            }
            u.push_str(if immutable {
                "?mode=ro&immutable=1"
            } else {
                "?mode=ro"
            });
            u
        };
        let mut last: Option<anyhow::Error> = None;
        for immutable in [false, true] {
            let attempt = Connection::open_with_flags(uri(immutable), ro)
                .map_err(anyhow::Error::from)
                .and_then(|conn| {
                    let store = Store {
                        conn,
                        path: path.to_path_buf(),
                    };
                    let v = store.schema_version()?;
                    if v > SCHEMA_VERSION {
                        anyhow::bail!(
                            "the local store {} has schema version {v}, newer than this wattprint understands ({SCHEMA_VERSION}); upgrade wattprint",
                            path.display()
                        );
                    }
                    if v != SCHEMA_VERSION {
                        anyhow::bail!(
                            "the local store {} is read-only here and has schema version {v}, not {SCHEMA_VERSION}; open it once with write access (any wattprint command) to upgrade it",
                            path.display()
                        );
                    }
                    Ok(store)
                });
            match attempt {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        // Both messages: why it could not be opened normally, and why not read-only either.
        match last {
            Some(l) => Err(anyhow::anyhow!("{first:#}; read-only: {l:#}")),
            None => Err(first),
        }
    }

    /// Where the database file is.
    /// The directory holding the database (and the trackers' lock files).
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The status of `r` as people read it: `unfinished (tracker lost)` for a `running` run
    /// whose tracker died (see [`crate::liveness`]).
    pub fn status_label(&self, r: &RunRecord) -> String {
        crate::liveness::status_label(
            self.dir(),
            &r.id,
            r.status.as_str(),
            &r.started_at,
            r.duration_s,
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    fn migrate(&mut self) -> Result<()> {
        let version = self.schema_version()?;
        if version > SCHEMA_VERSION {
            anyhow::bail!(
                "the local store {} has schema version {version}, newer than this wattprint understands ({SCHEMA_VERSION}); upgrade wattprint",
                self.path.display()
            );
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        if version >= 1 {
            self.backup_before_upgrade(version)?;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for m in MIGRATIONS.iter().filter(|m| m.version > version) {
            (m.apply)(&tx).with_context(|| {
                format!(
                    "upgrading the local store {} to schema version {} ({}); nothing was changed",
                    self.path.display(),
                    m.version,
                    m.what
                )
            })?;
            tx.pragma_update(None, "user_version", m.version)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Copy the database to `<db>.v<version>.bak` before upgrading it (once per version).
    fn backup_before_upgrade(&self, version: i64) -> Result<()> {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".v{version}.bak"));
        let bak = PathBuf::from(name);
        if bak.exists() {
            return Ok(());
        }
        let target = bak.to_string_lossy().into_owned();
        if let Err(e) = self.conn.execute("VACUUM INTO ?1", params![target]) {
            // Another process upgrading at the same moment may have just written it.
            if !bak.exists() {
                return Err(e).with_context(|| {
                    format!(
                        "copying the local store to {} before upgrading it; free some space or \
                         copy it yourself, then retry",
                        bak.display()
                    )
                });
            }
        }
        Ok(())
    }

    /// Insert or replace a run record (checkpoint or final).
    pub fn save_run(&mut self, rec: &RunRecord) -> Result<()> {
        upsert_run(&self.conn, rec, true)?;
        Ok(())
    }

    /// Insert runs whose id is not in the store yet, all in one transaction; the result says,
    /// per record, whether it was inserted (`false`: the id was already there, left untouched).
    pub fn insert_new_runs(&mut self, recs: &[RunRecord]) -> Result<Vec<bool>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(recs.len());
        for r in recs {
            out.push(upsert_run(&tx, r, false)? == 1);
        }
        tx.commit()?;
        Ok(out)
    }

    /// Replace the stored series of a run with the snapshot's.
    pub fn save_series(&mut self, run_id: &str, snap: &Snapshot) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM samples WHERE run_id = ?1", params![run_id])?;
        {
            let mut st = tx.prepare(
                "INSERT OR REPLACE INTO samples (run_id, device_id, t0, t1, energy_j) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for d in &snap.devices {
                for p in &d.series {
                    st.execute(params![run_id, d.device.id, p.t0, p.t1, p.energy_j])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn get_run(&self, id: &str) -> Result<Option<RunRecord>> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT record FROM runs WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?;
        match json {
            Some(j) => Ok(Some(serde_json::from_str(&j).with_context(|| {
                format!("run {id}: stored record is not valid JSON")
            })?)),
            None => Ok(None),
        }
    }

    /// Whether a run with exactly this id is stored.
    pub fn has_run(&self, id: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM runs WHERE id = ?1", params![id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Number of stored runs.
    pub fn count_runs(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }
}

/// Write one run's row; `replace` upserts, otherwise an existing id is left alone. Returns the
/// number of rows changed (0 or 1).
fn upsert_run(conn: &Connection, rec: &RunRecord, replace: bool) -> Result<usize> {
    let value = serde_json::to_value(rec)?;
    let d = Denorm::from_value(&value);
    let json = value.to_string();
    let now = crate::clock::now_rfc3339();
    let conflict = if replace {
        "ON CONFLICT(id) DO UPDATE SET project=excluded.project, status=excluded.status,
           started_at=excluded.started_at, ended_at=excluded.ended_at,
           energy_kwh=excluded.energy_kwh, emissions_kg=excluded.emissions_kg,
           record=excluded.record, updated_at=excluded.updated_at,
           started_unix=excluded.started_unix, duration_s=excluded.duration_s,
           exit_code=excluded.exit_code, tags=excluded.tags, static_kwh=excluded.static_kwh,
           facility_kwh=excluded.facility_kwh, scope=excluded.scope,
           hostname=excluded.hostname, methods=excluded.methods, model=excluded.model"
    } else {
        "ON CONFLICT(id) DO NOTHING"
    };
    let sql = format!(
        "INSERT INTO runs (id, project, status, started_at, ended_at, energy_kwh, emissions_kg,
           record, updated_at, started_unix, duration_s, exit_code, tags, static_kwh,
           facility_kwh, scope, hostname, methods, model)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
           ?19)
         {conflict}"
    );
    execute_run_row(&mut conn.prepare_cached(&sql)?, rec, &d, &json, &now)
}

/// Execute `stmt` with one run's row bound as `runs` stores it: ?1 id, ?2 project, ?3 status,
/// ?4 started_at, ?5 ended_at, ?6 energy_kwh, ?7 emissions_kg, ?8 record, ?9 updated_at,
/// ?10 started_unix, ?11 duration_s, ?12 exit_code, ?13 tags, ?14 static_kwh, ?15 facility_kwh,
/// ?16 scope, ?17 hostname, ?18 methods, ?19 model. Returns the rows changed.
fn execute_run_row(
    stmt: &mut rusqlite::CachedStatement<'_>,
    rec: &RunRecord,
    d: &Denorm,
    json: &str,
    now: &str,
) -> Result<usize> {
    Ok(stmt.execute(params![
        rec.id,
        rec.project,
        rec.status.as_str(),
        rec.started_at,
        rec.ended_at,
        rec.energy_kwh.total.0,
        rec.emissions_kg.total,
        json,
        now,
        d.started_unix,
        d.duration_s,
        d.exit_code,
        d.tags,
        d.static_kwh,
        d.facility_kwh,
        d.scope,
        d.hostname,
        d.methods,
        d.model
    ])?)
}

impl Store {
    /// Save a running record over its previous save. While a run goes on, only what is not
    /// indexed changes (energy, emissions, the record, its end so far); writing just those
    /// columns spares rewriting the five indexes of `runs` at every checkpoint. A record whose
    /// indexed columns changed (or a run not stored yet) is saved as by [`Store::save_run`].
    pub fn save_checkpoint(&mut self, rec: &RunRecord) -> Result<()> {
        let d = Denorm::from_record(rec)?;
        let json = serde_json::to_string(rec)?;
        // Bound as `upsert_run` binds it (see `execute_run_row`).
        let n = execute_run_row(
            &mut self.conn.prepare_cached(
                "UPDATE runs SET ended_at = ?5, energy_kwh = ?6, emissions_kg = ?7, record = ?8,
                   updated_at = ?9, duration_s = ?11, exit_code = ?12, tags = ?13,
                   static_kwh = ?14, facility_kwh = ?15, scope = ?16, hostname = ?17,
                   methods = ?18
                 WHERE id = ?1 AND project IS ?2 AND status = ?3 AND started_at = ?4
                   AND started_unix IS ?10 AND model IS ?19",
            )?,
            rec,
            &d,
            &json,
            &crate::clock::now_rfc3339(),
        )?;
        if n == 0 {
            upsert_run(&self.conn, rec, true)?;
        }
        Ok(())
    }

    /// Remove a run and its samples.
    pub fn delete_run(&mut self, id: &str) -> Result<()> {
        self.delete_runs(&[id.to_string()])?;
        Ok(())
    }

    /// Remove runs (exact ids) and their samples in one transaction; returns how many runs
    /// were removed.
    pub fn delete_runs(&mut self, ids: &[String]) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = 0;
        for id in ids {
            tx.execute("DELETE FROM samples WHERE run_id = ?1", params![id])?;
            n += tx.execute("DELETE FROM runs WHERE id = ?1", params![id])?;
        }
        tx.commit()?;
        Ok(n)
    }
}

/// How many candidates an ambiguous prefix lists.
const AMBIGUOUS_SHOWN: usize = 20;

impl Store {
    /// The full id of the run whose id is `prefix` or starts with it. Errors when none matches
    /// or when several do (the error lists them).
    pub fn resolve_id(&self, prefix: &str) -> Result<String> {
        let p = prefix.trim();
        if p.is_empty() {
            anyhow::bail!("empty run id: give a run id or a prefix of one (see `wattprint runs`)");
        }
        if self.has_run(p)? {
            return Ok(p.to_string());
        }
        let escaped = p
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let like = "id LIKE ?1 || '%' ESCAPE '\\'";
        let total: i64 = self.conn.query_row(
            &format!("SELECT COUNT(*) FROM runs WHERE {like}"),
            params![escaped],
            |r| r.get(0),
        )?;
        let mut st = self.conn.prepare(&format!(
            "SELECT id, project, status, started_at FROM runs WHERE {like}
             ORDER BY started_unix DESC, id LIMIT {AMBIGUOUS_SHOWN}"
        ))?;
        let rows: Vec<(String, String, String, String)> = st
            .query_map(params![escaped], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<std::result::Result<_, _>>()?;
        match rows.as_slice() {
            [] => anyhow::bail!(
                "no run matches `{p}` in {}; list runs with `wattprint runs`",
                self.path.display()
            ),
            [one] => Ok(one.0.clone()),
            many => {
                let mut msg =
                    format!("`{p}` matches {total} runs; give more characters of the id:");
                for (id, project, status, started) in many {
                    msg.push_str(&format!("\n  {id}  {started}  {status}  project {project}"));
                }
                if total as usize > many.len() {
                    msg.push_str(&format!("\n  … and {} more", total as usize - many.len()));
                }
                anyhow::bail!(msg)
            }
        }
    }

    /// The run whose id is `prefix` or starts with it; an error when none or several match.
    pub fn find_run(&self, prefix: &str) -> Result<RunRecord> {
        let id = self.resolve_id(prefix)?;
        self.get_run(&id)?
            .ok_or_else(|| anyhow::anyhow!("run {id} vanished while reading"))
    }
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub project: Option<String>,
    /// `(key, value)` pairs that must all be present in the run's tags.
    pub tags: Vec<(String, String)>,
    pub status: Option<String>,
    /// Lower bound on the start time, as [`parse_since`] reads it: RFC 3339, a date, or a
    /// duration back from now (`7d`).
    pub since: Option<String>,
    pub limit: Option<usize>,
    /// Only runs of this job (the record's `job` key).
    pub job: Option<String>,
    /// Only runs of this model, stage and sweep (the record's `lineage`).
    pub lineage: LineageFilter,
}

/// Which runs of which model, stage and sweep to list (all given must match).
#[derive(Debug, Clone, Default)]
pub struct LineageFilter {
    pub model: Option<String>,
    /// A stage name (`training`, ...).
    pub stage: Option<String>,
    pub sweep: Option<String>,
}

impl RunFilter {
    /// `WHERE ...` and its parameters.
    fn where_sql(&self) -> Result<(String, Vec<SqlValue>)> {
        let mut sql = String::from(" WHERE 1=1");
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(p) = &self.project {
            args.push(SqlValue::Text(p.clone()));
            sql.push_str(&format!(" AND project = ?{}", args.len()));
        }
        if let Some(s) = &self.status {
            args.push(SqlValue::Text(s.clone()));
            sql.push_str(&format!(" AND status = ?{}", args.len()));
        }
        if let Some(s) = &self.since {
            let t = parse_since(s, OffsetDateTime::now_utc())?;
            args.push(SqlValue::Real(t.unix_timestamp_nanos() as f64 / 1e9));
            sql.push_str(&format!(" AND started_unix >= ?{}", args.len()));
        }
        if let Some(j) = &self.job {
            args.push(SqlValue::Text(j.clone()));
            sql.push_str(&format!(
                " AND json_extract(runs.record, '$.job') = ?{}",
                args.len()
            ));
        }
        if let Some(m) = &self.lineage.model {
            args.push(SqlValue::Text(m.clone()));
            sql.push_str(&format!(" AND model = ?{}", args.len()));
        }
        for (path, v) in [
            ("$.lineage.stage", &self.lineage.stage),
            ("$.lineage.sweep", &self.lineage.sweep),
        ] {
            if let Some(v) = v {
                args.push(SqlValue::Text(v.clone()));
                // A record that is not JSON (kept as stored) matches no filter, never fails one.
                sql.push_str(&format!(
                    " AND (CASE WHEN json_valid(runs.record) THEN json_extract(runs.record, '{path}') END) = ?{}",
                    args.len()
                ));
            }
        }
        for (k, v) in &self.tags {
            args.push(SqlValue::Text(k.clone()));
            args.push(SqlValue::Text(v.clone()));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM json_each(runs.tags) AS t WHERE t.key = ?{} AND t.value = ?{})",
                args.len() - 1,
                args.len()
            ));
        }
        Ok((sql, args))
    }

    fn limit_sql(&self) -> String {
        match self.limit {
            Some(l) => format!(" LIMIT {l}"),
            None => String::new(),
        }
    }
}

/// One run as the listing columns hold it (no record JSON parsed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    pub id: String,
    pub project: String,
    pub status: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_s: f64,
    pub exit_code: Option<i64>,
    /// IT energy (before PUE), kWh.
    pub energy_kwh: f64,
    /// Facility energy (IT × PUE), kWh.
    pub facility_kwh: f64,
    /// Idle (static) part of the IT energy, kWh.
    pub static_kwh: f64,
    /// Total emissions (operational + embodied), kg CO2e.
    pub emissions_kg: f64,
    pub scope: String,
    pub hostname: String,
    pub methods: Methods,
    pub tags: BTreeMap<String, String>,
}

/// Totals of one project.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectTotals {
    pub project: String,
    pub runs: u64,
    /// IT energy (before PUE), kWh.
    pub energy_kwh: f64,
    /// Facility energy (IT × PUE), kWh.
    pub facility_kwh: f64,
    pub emissions_kg: f64,
    /// Idle (static) energy, kWh, and its share of the IT energy (0 when there is none).
    pub static_kwh: f64,
    pub idle_share: f64,
    /// Failed, killed, and stopped (by a cap or budget) runs: work that did not finish.
    pub wasted: Wasted,
    /// Runs still marked running (in progress, or a tracker that died before its last save).
    pub running: u64,
    pub first_started_at: Option<String>,
    pub last_started_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wasted {
    pub runs: u64,
    pub energy_kwh: f64,
    pub emissions_kg: f64,
    /// Share of the project's emissions (0 when the project emitted nothing).
    pub emissions_share: f64,
}

fn unix_rfc3339(t: f64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos((t * 1e9) as i128).ok()?;
    t.format(&Rfc3339).ok()
}

impl Store {
    /// Runs matching `f`, newest first.
    pub fn list_runs(&self, f: &RunFilter) -> Result<Vec<RunRecord>> {
        let (w, args) = f.where_sql()?;
        let sql = format!(
            "SELECT id, record FROM runs{w} ORDER BY started_unix DESC, id{}",
            f.limit_sql()
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row?;
            out.push(
                serde_json::from_str(&json)
                    .with_context(|| format!("run {id}: stored record is not valid JSON"))?,
            );
        }
        Ok(out)
    }

    /// Runs matching `f`, newest first, from the listing columns only (fast: no JSON record is
    /// parsed).
    pub fn list_rows(&self, f: &RunFilter) -> Result<Vec<RunRow>> {
        let (w, args) = f.where_sql()?;
        let sql = format!(
            "SELECT id, project, status, started_at, ended_at, duration_s, exit_code, energy_kwh,
               facility_kwh, static_kwh, emissions_kg, scope, hostname, methods, tags
             FROM runs{w} ORDER BY started_unix DESC, id{}",
            f.limit_sql()
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            let methods: String = r.get(13)?;
            let tags: String = r.get(14)?;
            Ok(RunRow {
                id: r.get(0)?,
                project: r.get(1)?,
                status: r.get(2)?,
                started_at: r.get(3)?,
                ended_at: r.get(4)?,
                duration_s: r.get(5)?,
                exit_code: r.get(6)?,
                energy_kwh: r.get(7)?,
                facility_kwh: r.get(8)?,
                static_kwh: r.get(9)?,
                emissions_kg: r.get(10)?,
                scope: r.get(11)?,
                hostname: r.get(12)?,
                methods: serde_json::from_str(&methods).unwrap_or_else(|_| Methods {
                    cpu: "?".into(),
                    gpu: "?".into(),
                    ram: "?".into(),
                }),
                tags: serde_json::from_str(&tags).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Facility kWh, emissions (kg) and run count of the stored runs per job key that starts
    /// with `prefix` (`slurm:`), in one query (`wattprint slurm import`: measured records win).
    pub fn job_totals_with_prefix(
        &self,
        prefix: &str,
    ) -> Result<BTreeMap<String, (f64, f64, u64)>> {
        let mut st = self.conn.prepare(
            "SELECT json_extract(record, '$.job'), SUM(facility_kwh), SUM(emissions_kg), COUNT(*)
             FROM runs WHERE substr(json_extract(record, '$.job'), 1, length(?1)) = ?1
             GROUP BY 1",
        )?;
        let rows = st.query_map([prefix], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (
                    r.get::<_, f64>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, i64>(3)? as u64,
                ),
            ))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Per-project totals over the runs matching `f` (its `limit` is ignored), by project name.
    pub fn project_totals(&self, f: &RunFilter) -> Result<Vec<ProjectTotals>> {
        let (w, args) = f.where_sql()?;
        let sql = format!(
            "SELECT project, COUNT(*), TOTAL(energy_kwh), TOTAL(facility_kwh),
               TOTAL(emissions_kg), TOTAL(static_kwh),
               TOTAL(status IN ('failed', 'killed', 'stopped_by_budget', 'stopped_by_cap')),
               TOTAL(CASE WHEN status IN ('failed', 'killed', 'stopped_by_budget', 'stopped_by_cap') THEN energy_kwh END),
               TOTAL(CASE WHEN status IN ('failed', 'killed', 'stopped_by_budget', 'stopped_by_cap') THEN emissions_kg END),
               TOTAL(status = 'running'), MIN(started_unix), MAX(started_unix)
             FROM runs{w} GROUP BY project ORDER BY project"
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            let energy: f64 = r.get(2)?;
            let emissions: f64 = r.get(4)?;
            let static_kwh: f64 = r.get(5)?;
            let wasted_kg: f64 = r.get(8)?;
            let first: Option<f64> = r.get(10)?;
            let last: Option<f64> = r.get(11)?;
            Ok(ProjectTotals {
                project: r.get(0)?,
                runs: r.get::<_, i64>(1)?.max(0) as u64,
                energy_kwh: energy,
                facility_kwh: r.get(3)?,
                emissions_kg: emissions,
                static_kwh,
                idle_share: if energy > 0.0 {
                    static_kwh / energy
                } else {
                    0.0
                },
                wasted: Wasted {
                    runs: r.get::<_, f64>(6)?.max(0.0) as u64,
                    energy_kwh: r.get(7)?,
                    emissions_kg: wasted_kg,
                    emissions_share: if emissions > 0.0 {
                        wasted_kg / emissions
                    } else {
                        0.0
                    },
                },
                running: r.get::<_, f64>(9)?.max(0.0) as u64,
                first_started_at: first.and_then(unix_rfc3339),
                last_started_at: last.and_then(unix_rfc3339),
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// The stored power series of a run: per device id, its points in time order.
    pub fn series(&self, run_id: &str) -> Result<Vec<(String, Vec<SeriesPoint>)>> {
        let mut st = self.conn.prepare(
            "SELECT device_id, t0, t1, energy_j FROM samples WHERE run_id = ?1 ORDER BY device_id, t0",
        )?;
        let mut out: Vec<(String, Vec<SeriesPoint>)> = Vec::new();
        let rows = st.query_map(params![run_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                SeriesPoint {
                    t0: r.get(1)?,
                    t1: r.get(2)?,
                    energy_j: r.get(3)?,
                },
            ))
        })?;
        for row in rows {
            let (dev, p) = row?;
            match out.last_mut() {
                Some((d, v)) if *d == dev => v.push(p),
                _ => out.push((dev, vec![p])),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn since_forms() {
        let now = datetime!(2025-03-10 12:00:00 UTC);
        assert_eq!(
            parse_since("7d", now).unwrap(),
            datetime!(2025-03-03 12:00:00 UTC)
        );
        assert_eq!(
            parse_since("90m", now).unwrap(),
            datetime!(2025-03-10 10:30:00 UTC)
        );
        assert_eq!(
            parse_since("2025-03-01", now).unwrap(),
            datetime!(2025-03-01 00:00:00 UTC)
        );
        assert_eq!(
            parse_since("2025-03-01T08:00:00+02:00", now).unwrap(),
            datetime!(2025-03-01 06:00:00 UTC)
        );
        assert_eq!(
            parse_since("2025-03-01T08:00:00", now).unwrap(),
            datetime!(2025-03-01 08:00:00 UTC)
        );
        for bad in ["", "yesterday", "7 parsecs", "2025-13-01"] {
            let e = parse_since(bad, now).unwrap_err().to_string();
            assert!(e.contains("--since"), "{bad}: {e}");
        }
    }
}
