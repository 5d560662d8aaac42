//! The local store: SQLite (WAL) under `$WATTPRINT_HOME` (default `$XDG_DATA_HOME/wattprint`,
//! else `~/.local/share/wattprint`). Runs are upserted at every checkpoint so a crash loses at
//! most one checkpoint interval; samples are kept per device.

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::Duration;
use wattprint_core::record::RunRecord;
use wattprint_core::sampler::Snapshot;

/// Schema version written to `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 1;

/// `$WATTPRINT_HOME`, else `$XDG_DATA_HOME/wattprint`, else `$HOME/.local/share/wattprint`.
pub fn home_dir() -> Result<PathBuf> {
    if let Some(h) = std::env::var_os("WATTPRINT_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("wattprint"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/wattprint")),
        None => anyhow::bail!(
            "cannot locate the local store: set WATTPRINT_HOME (or HOME / XDG_DATA_HOME)"
        ),
    }
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Open (creating if needed) the store in the default home directory.
    pub fn open_default() -> Result<Store> {
        let dir = home_dir()?;
        Store::open(&dir.join("wattprint.db"))
    }

    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the store directory {}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("opening the local store {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            anyhow::bail!(
                "the local store {} has schema version {version}, newer than this wattprint understands ({SCHEMA_VERSION}); upgrade wattprint",
                self.path.display()
            );
        }
        let tx = self.conn.transaction()?;
        if version < 1 {
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
                );
                PRAGMA user_version = 1;",
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Insert or replace a run record (checkpoint or final).
    pub fn save_run(&mut self, rec: &RunRecord) -> Result<()> {
        let json = serde_json::to_string(rec)?;
        let now = crate::clock::now_rfc3339();
        self.conn.execute(
            "INSERT INTO runs (id, project, status, started_at, ended_at, energy_kwh, emissions_kg, record, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(id) DO UPDATE SET project=excluded.project, status=excluded.status,
               ended_at=excluded.ended_at, energy_kwh=excluded.energy_kwh,
               emissions_kg=excluded.emissions_kg, record=excluded.record, updated_at=excluded.updated_at",
            params![
                rec.id,
                rec.project,
                rec.status.as_str(),
                rec.started_at,
                rec.ended_at,
                rec.energy_kwh.total.0,
                rec.emissions_kg.total,
                json,
                now
            ],
        )?;
        Ok(())
    }

    /// Replace the stored series of a run with the snapshot's.
    pub fn save_series(&mut self, run_id: &str, snap: &Snapshot) -> Result<()> {
        let tx = self.conn.transaction()?;
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
}

impl Store {
    /// Remove a run and its samples.
    pub fn delete_run(&mut self, id: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM samples WHERE run_id = ?1", params![id])?;
        self.conn
            .execute("DELETE FROM runs WHERE id = ?1", params![id])?;
        Ok(())
    }
}

impl Store {
    /// The run whose id is `prefix` or starts with it; an error when none or several match.
    pub fn find_run(&self, prefix: &str) -> Result<RunRecord> {
        let p = prefix.trim();
        if p.is_empty() {
            anyhow::bail!(
                "empty run id: give a run id or a prefix of one (see `wattprint show --help`)"
            );
        }
        let escaped = p
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let mut st = self.conn.prepare(
            "SELECT id FROM runs WHERE id LIKE ?1 || '%' ESCAPE '\\' ORDER BY started_at DESC LIMIT 6",
        )?;
        let ids: Vec<String> = st
            .query_map(params![escaped], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        match ids.as_slice() {
            [] => anyhow::bail!("no run matches `{p}` in {}", self.path.display()),
            [one] => self
                .get_run(one)?
                .ok_or_else(|| anyhow::anyhow!("run {one} vanished while reading")),
            many => anyhow::bail!(
                "`{p}` matches several runs ({}…); give more characters",
                many.join(", ")
            ),
        }
    }
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub project: Option<String>,
    /// `(key, value)` pairs that must all be present in the run's tags.
    pub tags: Vec<(String, String)>,
    pub status: Option<String>,
    /// RFC 3339 lower bound on `started_at`.
    pub since: Option<String>,
    pub limit: Option<usize>,
}

impl Store {
    /// Runs matching `f`, newest first.
    pub fn list_runs(&self, f: &RunFilter) -> Result<Vec<RunRecord>> {
        let mut sql = String::from("SELECT record FROM runs WHERE 1=1");
        let mut args: Vec<String> = Vec::new();
        if let Some(p) = &f.project {
            args.push(p.clone());
            sql.push_str(&format!(" AND project = ?{}", args.len()));
        }
        if let Some(s) = &f.status {
            args.push(s.clone());
            sql.push_str(&format!(" AND status = ?{}", args.len()));
        }
        if let Some(s) = &f.since {
            args.push(s.clone());
            sql.push_str(&format!(" AND started_at >= ?{}", args.len()));
        }
        sql.push_str(" ORDER BY started_at DESC");
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            r.get::<_, String>(0)
        })?;
        let mut out = Vec::new();
        for row in rows {
            let rec: RunRecord = serde_json::from_str(&row?)?;
            if f.tags
                .iter()
                .all(|(k, v)| rec.tags.get(k).is_some_and(|x| x == v))
            {
                out.push(rec);
                if f.limit.is_some_and(|l| out.len() >= l) {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The stored power series of a run: per device id, its points in time order.
    pub fn series(
        &self,
        run_id: &str,
    ) -> Result<Vec<(String, Vec<wattprint_core::sampler::SeriesPoint>)>> {
        let mut st = self.conn.prepare(
            "SELECT device_id, t0, t1, energy_j FROM samples WHERE run_id = ?1 ORDER BY device_id, t0",
        )?;
        let mut out: Vec<(String, Vec<wattprint_core::sampler::SeriesPoint>)> = Vec::new();
        let rows = st.query_map(params![run_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                wattprint_core::sampler::SeriesPoint {
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
