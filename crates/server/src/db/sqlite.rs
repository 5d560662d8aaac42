//! SQLite backend (rusqlite, bundled SQLite). One writer connection (write transactions are
//! `BEGIN IMMEDIATE`, so writers queue instead of failing) and a few reader connections; WAL
//! lets readers proceed while a write is in progress. Every call runs on tokio's blocking pool.

use super::{returns_rows, Cell, Db, Dialect, Row, Stmt, StmtResult, Val};
use anyhow::{Context, Result};
use async_trait::async_trait;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many reader connections.
const READERS: usize = 4;

pub struct SqliteDb {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next: AtomicUsize,
}

impl ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::I(v) => ToSqlOutput::from(*v),
            Val::F(v) => ToSqlOutput::from(*v),
            Val::T(v) => ToSqlOutput::from(v.as_str()),
            Val::OptI(v) => match v {
                Some(v) => ToSqlOutput::from(*v),
                None => ToSqlOutput::from(rusqlite::types::Null),
            },
            Val::OptT(v) => match v {
                Some(v) => ToSqlOutput::from(v.as_str()),
                None => ToSqlOutput::from(rusqlite::types::Null),
            },
            Val::OptF(v) => match v {
                Some(v) => ToSqlOutput::from(*v),
                None => ToSqlOutput::from(rusqlite::types::Null),
            },
            Val::TextArray(_) | Val::FloatArray(_) | Val::IntArray(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "array parameters are PostgreSQL-only; this query was not meant for SQLite"
                        .into(),
                ))
            }
        })
    }
}

fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("opening the SQLite database {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn run_stmt(conn: &Connection, sql: &str, params: &[Val]) -> Result<StmtResult> {
    let mut st = conn
        .prepare_cached(sql)
        .with_context(|| format!("preparing SQL: {sql}"))?;
    if returns_rows(sql) {
        let ncol = st.column_count();
        let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut cells = Vec::with_capacity(ncol);
            for i in 0..ncol {
                cells.push(match r.get_ref(i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::I(v),
                    ValueRef::Real(v) => Cell::F(v),
                    ValueRef::Text(t) => Cell::T(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Cell::T(String::from_utf8_lossy(b).into_owned()),
                });
            }
            out.push(Row(cells));
        }
        Ok(StmtResult {
            rows: out,
            changed: 0,
        })
    } else {
        let n = st.execute(rusqlite::params_from_iter(params.iter()))?;
        Ok(StmtResult {
            rows: Vec::new(),
            changed: n as u64,
        })
    }
}

/// Create the database file, readable and writable by its owner only (0600: it holds every
/// run and the token hashes), if it does not exist yet. SQLite gives its `-wal` and `-shm`
/// files the database file's permissions. An existing file keeps its permissions, with a
/// warning when others may read it.
fn create_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if let Ok(m) = std::fs::metadata(path) {
                    let mode = m.permissions().mode() & 0o777;
                    if mode & 0o077 != 0 {
                        eprintln!(
                            "wattprint serve: warning: the database {} has mode {mode:03o}: other users may read it; `chmod 600` it",
                            path.display()
                        );
                    }
                }
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("creating the SQLite database {}", path.display()))
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl SqliteDb {
    /// Open (creating the file and its directory on first start).
    pub async fn open(path: &Path) -> Result<SqliteDb> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the directory {}", dir.display()))?;
            }
            create_private(&path)?;
            let writer = connect(&path)?;
            let mut readers = Vec::with_capacity(READERS);
            for _ in 0..READERS {
                readers.push(Mutex::new(connect(&path)?));
            }
            Ok(SqliteDb {
                path,
                writer: Arc::new(Mutex::new(writer)),
                readers: Arc::new(readers),
                next: AtomicUsize::new(0),
            })
        })
        .await
        .context("opening the SQLite database")?
    }
}

#[async_trait]
impl Db for SqliteDb {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn describe(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    async fn query(&self, sql: &str, params: Vec<Val>) -> Result<Vec<Row>> {
        let readers = self.readers.clone();
        let i = self.next.fetch_add(1, Ordering::Relaxed) % readers.len();
        let sql = sql.to_string();
        tokio::task::spawn_blocking(move || {
            let conn = readers[i]
                .lock()
                .map_err(|_| anyhow::anyhow!("SQLite reader lock poisoned"))?;
            Ok(run_stmt(&conn, &sql, &params)?.rows)
        })
        .await
        .context("SQLite query task")?
    }

    async fn transaction(&self, stmts: Vec<Stmt>) -> Result<Vec<StmtResult>> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer
                .lock()
                .map_err(|_| anyhow::anyhow!("SQLite writer lock poisoned"))?;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut out = Vec::with_capacity(stmts.len());
            for s in &stmts {
                out.push(run_stmt(&tx, &s.sql, &s.params)?);
            }
            tx.commit()?;
            Ok(out)
        })
        .await
        .context("SQLite transaction task")?
    }
}
