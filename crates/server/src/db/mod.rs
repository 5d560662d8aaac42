//! The database layer: one [`Db`] trait, implemented for SQLite ([`sqlite::SqliteDb`], rusqlite)
//! and PostgreSQL ([`postgres::PgDb`], tokio-postgres + deadpool). Both run the same SQL: queries
//! are written once with `?` placeholders (rewritten to `$1, $2…` for PostgreSQL) in the subset
//! of SQL both dialects share (`ON CONFLICT … DO UPDATE … WHERE`, `RETURNING`, `CAST`), and the
//! same versioned migrations ([`migrations`]) are applied on start. The domain logic on top lives
//! once in [`crate::store`] (whose only PostgreSQL-specific statement is the one-statement run
//! upload, with array parameters: [`Val::TextArray`], [`Val::FloatArray`]).

use anyhow::{bail, Result};
use async_trait::async_trait;
use std::sync::Arc;

pub mod migrations;
pub mod postgres;
pub mod rollup_days;
pub mod rollup_schema;
pub mod sqlite;
pub mod young_tables;

/// A bound parameter. Integers are 64-bit and reals are doubles on both databases (PostgreSQL
/// columns are `BIGINT` / `DOUBLE PRECISION`, so the types match exactly).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    I(i64),
    F(f64),
    T(String),
    /// A nullable integer.
    OptI(Option<i64>),
    /// A nullable text.
    OptT(Option<String>),
    /// A nullable real.
    OptF(Option<f64>),
    /// A text array (PostgreSQL only: `CAST(? AS TEXT[])`, e.g. for `unnest`).
    TextArray(Vec<String>),
    /// A real array (PostgreSQL only: `CAST(? AS DOUBLE PRECISION[])`).
    FloatArray(Vec<f64>),
    /// An integer array (PostgreSQL only: `CAST(? AS BIGINT[])`).
    IntArray(Vec<i64>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::I(v)
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::F(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::T(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::T(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::T(v.clone())
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Val {
        Val::OptI(v)
    }
}
impl From<Option<f64>> for Val {
    fn from(v: Option<f64>) -> Val {
        Val::OptF(v)
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Val {
        Val::OptT(v)
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Val {
        Val::OptT(v.map(str::to_string))
    }
}

/// One value read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    I(i64),
    F(f64),
    T(String),
}

/// One row read back, with typed accessors that fail loudly on a schema mismatch.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Cell>);

impl Row {
    fn cell(&self, i: usize) -> Result<&Cell> {
        match self.0.get(i) {
            Some(c) => Ok(c),
            None => bail!(
                "database row has {} columns, wanted column {i}",
                self.0.len()
            ),
        }
    }
    pub fn i64(&self, i: usize) -> Result<i64> {
        match self.cell(i)? {
            Cell::I(v) => Ok(*v),
            c => bail!("column {i}: expected an integer, got {c:?}"),
        }
    }
    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            _ => self.i64(i).map(Some),
        }
    }
    pub fn f64(&self, i: usize) -> Result<f64> {
        match self.cell(i)? {
            Cell::F(v) => Ok(*v),
            // SQLite stores a REAL that happens to be integral as REAL, but sums of an empty
            // set coalesced to 0 come back as INTEGER.
            Cell::I(v) => Ok(*v as f64),
            c => bail!("column {i}: expected a number, got {c:?}"),
        }
    }
    pub fn text(&self, i: usize) -> Result<String> {
        match self.cell(i)? {
            Cell::T(v) => Ok(v.clone()),
            c => bail!("column {i}: expected text, got {c:?}"),
        }
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
}

/// One statement of a transaction.
#[derive(Debug, Clone)]
pub struct Stmt {
    pub sql: String,
    pub params: Vec<Val>,
}

impl Stmt {
    pub fn new(sql: impl Into<String>, params: Vec<Val>) -> Stmt {
        Stmt {
            sql: sql.into(),
            params,
        }
    }
}

/// What one statement of a transaction gave: its rows (for `SELECT` / `RETURNING`) and, for
/// statements without rows, how many rows it changed.
#[derive(Debug, Clone, Default)]
pub struct StmtResult {
    pub rows: Vec<Row>,
    pub changed: u64,
}

/// Which SQL dialect a [`Db`] speaks; only migrations and locking differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

/// The database: read queries and all-or-nothing write transactions.
#[async_trait]
pub trait Db: Send + Sync {
    fn dialect(&self) -> Dialect;
    /// Where the data lives, for messages (never includes a password).
    fn describe(&self) -> String;
    /// A read-only query.
    async fn query(&self, sql: &str, params: Vec<Val>) -> Result<Vec<Row>>;
    /// Run the statements in one transaction; any error rolls all of them back. A statement
    /// whose SQL contains `RETURNING` or starts with `SELECT` gives rows.
    async fn transaction(&self, stmts: Vec<Stmt>) -> Result<Vec<StmtResult>>;
    /// Run independent units together, each a list of statements with its own outcome: the
    /// units that succeed are committed, one that fails changes nothing and fails alone.
    /// PostgreSQL runs them in one transaction with one commit (group commit,
    /// `crate::group_commit`), re-running the rest without a failing unit; if that commit fails,
    /// every unit fails. The default runs each unit as its own transaction. The outer error is
    /// for a failure before any statement ran.
    async fn group(&self, units: Vec<Vec<Stmt>>) -> Result<Vec<Result<Vec<StmtResult>>>> {
        let mut out = Vec::with_capacity(units.len());
        for u in units {
            out.push(self.transaction(u).await);
        }
        Ok(out)
    }
}

/// Whether a statement yields rows (both backends decide the same way).
pub(crate) fn returns_rows(sql: &str) -> bool {
    let t = sql.trim_start();
    t.len() >= 6 && t[..6].eq_ignore_ascii_case("select")
        || t.to_ascii_uppercase().contains("RETURNING")
}

/// Rewrite `?` placeholders to PostgreSQL's `$1, $2…` (outside quoted literals).
pub fn pg_placeholders(sql: &str) -> String {
    use std::fmt::Write;
    // Every statement passes here on each execution (the prepared-statement cache is keyed by
    // the rewritten text): copy the stretches between placeholders whole.
    let mut out = String::with_capacity(sql.len() + 64);
    let mut n = 0u32;
    let mut in_quote = false;
    let mut from = 0;
    for (i, b) in sql.bytes().enumerate() {
        match b {
            b'\'' => in_quote = !in_quote,
            b'?' if !in_quote => {
                out.push_str(&sql[from..i]);
                n += 1;
                let _ = write!(out, "${n}");
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push_str(&sql[from..]);
    out
}

/// A parsed `--database` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` or `sqlite:PATH` (`sqlite:///abs/path` for an absolute path).
    Sqlite(std::path::PathBuf),
    /// `postgres://…` or `postgresql://…`, passed to tokio-postgres as given.
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(s: &str) -> Result<DatabaseUrl> {
        let s = s.trim();
        if let Some(rest) = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
        {
            if rest.is_empty() {
                bail!("the database URL {s:?} names no file; use sqlite://PATH, e.g. sqlite:///var/lib/wattprint/server.db");
            }
            return Ok(DatabaseUrl::Sqlite(rest.into()));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(s.to_string()));
        }
        bail!(
            "unsupported database URL {:?}: use sqlite://PATH (embedded) or postgres://USER@HOST:PORT/DBNAME",
            redact(s)
        )
    }
}

/// The URL with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Open the database named by `url` and bring its schema up to date.
pub async fn open(url: &str) -> Result<Arc<dyn Db>> {
    let db = open_unmigrated(url).await?;
    migrations::migrate(db.as_ref()).await?;
    Ok(db)
}

/// Open the database named by `url` as it is (no migration).
pub async fn open_unmigrated(url: &str) -> Result<Arc<dyn Db>> {
    Ok(match DatabaseUrl::parse(url)? {
        DatabaseUrl::Sqlite(p) => Arc::new(sqlite::SqliteDb::open(&p).await?),
        DatabaseUrl::Postgres(u) => Arc::new(postgres::PgDb::open(&u).await?),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            pg_placeholders("SELECT ? , '?' , ? WHERE x = ?"),
            "SELECT $1 , '?' , $2 WHERE x = $3"
        );
        assert_eq!(
            pg_placeholders("é?'ü?'?ß??"),
            "é$1'ü?'$2ß$3$4",
            "multi-byte text around placeholders"
        );
        assert_eq!(pg_placeholders(""), "");
        let many = "?,".repeat(12);
        assert!(pg_placeholders(&many).ends_with("$11,$12,"));
    }

    #[test]
    fn urls_parse() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap(),
            DatabaseUrl::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:rel.db").unwrap(),
            DatabaseUrl::Sqlite("rel.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        let e = DatabaseUrl::parse("mysql://u:secret@h/db").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn redaction_hides_passwords() {
        assert_eq!(redact("postgres://u:pw@h:5/d"), "postgres://u:***@h:5/d");
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
    }

    #[test]
    fn rows_are_detected() {
        assert!(returns_rows("  select 1"));
        assert!(returns_rows("INSERT INTO x VALUES (1) RETURNING id"));
        assert!(!returns_rows("UPDATE x SET y = 1"));
    }
}
