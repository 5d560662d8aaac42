//! PostgreSQL backend: tokio-postgres with a deadpool connection pool, statements prepared once
//! per connection. No TLS: connect over a Unix socket or loopback (see docs/server.md).

use super::{pg_placeholders, returns_rows, Cell, Db, Dialect, Row, Stmt, StmtResult, Val};
use anyhow::{anyhow, bail, Context, Result};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::NoTls;

/// Connections in the pool.
const POOL_SIZE: usize = 16;

pub struct PgDb {
    pool: Pool,
    describe: String,
}

impl ToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::I(v) => v.to_sql_checked(ty, out),
            Val::F(v) => v.to_sql_checked(ty, out),
            Val::T(v) => v.to_sql_checked(ty, out),
            Val::OptI(v) => v.to_sql_checked(ty, out),
            Val::OptT(v) => v.to_sql_checked(ty, out),
            Val::OptF(v) => v.to_sql_checked(ty, out),
            Val::TextArray(v) => v.to_sql_checked(ty, out),
            Val::FloatArray(v) => v.to_sql_checked(ty, out),
            Val::IntArray(v) => v.to_sql_checked(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        // Checked per variant in `to_sql`.
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

pub(crate) fn cells(row: &tokio_postgres::Row) -> Result<Row> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let ty = col.type_();
        let c = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Cell::I)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map(|v| Cell::I(i64::from(v)))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?
                .map(|v| Cell::I(i64::from(v)))
        } else if *ty == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i)?.map(Cell::F)
        } else if *ty == Type::FLOAT4 {
            row.try_get::<_, Option<f32>>(i)?
                .map(|v| Cell::F(f64::from(v)))
        } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME {
            row.try_get::<_, Option<String>>(i)?.map(Cell::T)
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?
                .map(|v| Cell::I(i64::from(v)))
        } else if *ty == Type::VOID {
            None
        } else {
            bail!(
                "column {} has PostgreSQL type {ty}, which the server does not read",
                col.name()
            );
        };
        out.push(c.unwrap_or(Cell::Null));
    }
    Ok(Row(out))
}

pub(crate) fn params(vals: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    vals.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

/// A PostgreSQL error with its server message (tokio-postgres' Display says only "db error").
pub(crate) fn pg_err(e: tokio_postgres::Error, what: &str) -> anyhow::Error {
    match e.as_db_error() {
        Some(db) => anyhow!("{what}: {} ({})", db.message(), db.code().code()),
        None => anyhow!("{what}: {e}"),
    }
}

impl PgDb {
    pub async fn open(url: &str) -> Result<PgDb> {
        let cfg = tokio_postgres::Config::from_str(url)
            .map_err(|e| anyhow!("invalid PostgreSQL URL {}: {e}", super::redact(url)))?;
        let hosts: Vec<String> = cfg
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(s) => s.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        let describe = format!(
            "postgres://{}@{}:{}/{}",
            cfg.get_user().unwrap_or(""),
            hosts.join(","),
            cfg.get_ports()
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(","),
            cfg.get_dbname().unwrap_or("")
        );
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .context("building the PostgreSQL pool")?;
        // Fail at start, with the reason, rather than on the first request.
        let client = pool.get().await.map_err(|e| {
            let detail = match &e {
                deadpool_postgres::PoolError::Backend(b) => match b.as_db_error() {
                    Some(db) => db.message().to_string(),
                    None => b.to_string(),
                },
                other => other.to_string(),
            };
            anyhow!("cannot connect to PostgreSQL at {describe}: {detail}")
        })?;
        drop(client);
        Ok(PgDb { pool, describe })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| anyhow!("PostgreSQL connection from the pool: {e}"))
    }
}

#[async_trait]
impl Db for PgDb {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn query(&self, sql: &str, params_: Vec<Val>) -> Result<Vec<Row>> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(&pg_placeholders(sql))
            .await
            .map_err(|e| pg_err(e, "preparing a query"))?;
        let rows = client
            .query(&st, &params(&params_))
            .await
            .map_err(|e| pg_err(e, "query"))?;
        rows.iter().map(cells).collect()
    }

    async fn transaction(&self, stmts: Vec<Stmt>) -> Result<Vec<StmtResult>> {
        let mut client = self.client().await?;
        // One statement is atomic on its own: no BEGIN/COMMIT round trips (most checkpoint
        // uploads and every agent report are one statement).
        if let [s] = stmts.as_slice() {
            let st = client
                .prepare_cached(&pg_placeholders(&s.sql))
                .await
                .map_err(|e| pg_err(e, "preparing a statement"))?;
            let p = params(&s.params);
            return Ok(vec![if returns_rows(&s.sql) {
                let rows = client
                    .query(&st, &p)
                    .await
                    .map_err(|e| pg_err(e, "query"))?;
                StmtResult {
                    rows: rows.iter().map(cells).collect::<Result<_>>()?,
                    changed: 0,
                }
            } else {
                StmtResult {
                    rows: Vec::new(),
                    changed: client
                        .execute(&st, &p)
                        .await
                        .map_err(|e| pg_err(e, "statement"))?,
                }
            }]);
        }
        let tx = client.transaction().await.map_err(|e| pg_err(e, "BEGIN"))?;
        let mut out = Vec::with_capacity(stmts.len());
        for s in &stmts {
            let st = tx
                .prepare_cached(&pg_placeholders(&s.sql))
                .await
                .map_err(|e| pg_err(e, "preparing a statement"))?;
            let p = params(&s.params);
            if returns_rows(&s.sql) {
                let rows = tx.query(&st, &p).await.map_err(|e| pg_err(e, "query"))?;
                out.push(StmtResult {
                    rows: rows.iter().map(cells).collect::<Result<_>>()?,
                    changed: 0,
                });
            } else {
                let n = tx
                    .execute(&st, &p)
                    .await
                    .map_err(|e| pg_err(e, "statement"))?;
                out.push(StmtResult {
                    rows: Vec::new(),
                    changed: n,
                });
            }
        }
        tx.commit().await.map_err(|e| pg_err(e, "COMMIT"))?;
        Ok(out)
    }

    async fn group(&self, units: Vec<Vec<Stmt>>) -> Result<Vec<Result<Vec<StmtResult>>>> {
        let client = self.client().await?;
        let begin = client
            .prepare_cached("BEGIN")
            .await
            .map_err(|e| pg_err(e, "preparing BEGIN"))?;
        // Uploads' statements keep their generic plans: with their array parameters, a
        // custom plan looks cheaper to PostgreSQL's plan cache, which then plans the samples'
        // statement anew on some executions (measured: a twentieth of them, as long to plan as
        // to run).
        let generic = client
            .prepare_cached("SET LOCAL plan_cache_mode = force_generic_plan")
            .await
            .map_err(|e| pg_err(e, "preparing SET LOCAL"))?;
        let commit = client
            .prepare_cached("COMMIT")
            .await
            .map_err(|e| pg_err(e, "preparing COMMIT"))?;
        let mut prepared = Vec::with_capacity(units.len());
        for u in &units {
            let mut ps = Vec::with_capacity(u.len());
            for s in u {
                ps.push(
                    client
                        .prepare_cached(&pg_placeholders(&s.sql))
                        .await
                        .map_err(|e| pg_err(e, "preparing a statement"))?,
                );
            }
            prepared.push(ps);
        }
        let mut out: Vec<Option<Result<Vec<StmtResult>>>> = units.iter().map(|_| None).collect();
        let mut live: Vec<usize> = (0..units.len()).collect();
        // Each pass removes a failing unit or ends: at most one pass per unit.
        while !live.is_empty() {
            let pass = crate::group_commit::pipeline(
                &client,
                &[&begin, &generic],
                &commit,
                &prepared,
                &units,
                &live,
            )
            .await;
            match pass {
                crate::group_commit::Pass::Committed(results) => {
                    for (i, r) in live.iter().zip(results) {
                        out[*i] = Some(r);
                    }
                    live.clear();
                }
                crate::group_commit::Pass::Failed { at, error } => {
                    // This unit's own error: the others are run again without it.
                    let i = live.remove(at);
                    out[i] = Some(Err(pg_err(error, "statement")));
                }
                crate::group_commit::Pass::AllFailed(error) => {
                    let msg = format!("{error:#}");
                    for i in live.drain(..) {
                        out[i] = Some(Err(anyhow!("{msg}")));
                    }
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(anyhow!("a unit of the group was not run"))))
            .collect())
    }
}
