//! Group commit of uploads on PostgreSQL: uploads that arrive while earlier ones are being
//! committed are gathered (at most [`MAX_BATCH`], only what is already waiting: no upload waits
//! for others to arrive) and written by one connection in one transaction with one commit, each
//! upload's outcome answered to its own request only after that commit (docs/server.md, "Load").
//!
//! - [`WRITERS`] writers, each with its own queue: a run's uploads always go to the same writer
//!   (by a hash of team and run id), so they are committed in the order they arrived, even
//!   across batches, while batches of other runs commit on the other writers meanwhile.
//! - The statements of a batch are pipelined: `BEGIN`, every upload's statements (the run's
//!   upsert, then its samples' merge: see `crate::sample_sets`) and `COMMIT` are sent at once
//!   and answered in order (one round trip, one wake-up of the backend).
//! - An upload whose statement fails on its own (its own database error) fails alone: the
//!   transaction then ends in a rollback, and the batch is run again without it (at most one
//!   pass per upload). A failing `BEGIN` or `COMMIT`, or a lost connection, fails every upload of the
//!   batch: none is answered as stored unless its commit succeeded.
//! - Uploads are ordered by (team, run id) in a batch, keeping their order of arrival within a
//!   run (a stable sort), so a batch takes its rows' locks in key order; uploads of one run in
//!   one batch come out as if sent one after the other (each statement of the transaction sees
//!   the ones before it). Batches of different writers hold different runs.

use crate::db::postgres::{cells, params};
use crate::db::{returns_rows, Db, Stmt, StmtResult};
use anyhow::{anyhow, Result};
use futures_util::future::{join3, join_all};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};

/// Most uploads in one transaction (bounds the locks a batch holds and the work run again when
/// one of its uploads fails).
pub const MAX_BATCH: usize = 64;
/// Writers (connections committing batches at once) unless `wattprint serve --upload-writers`
/// says otherwise.
pub const WRITERS: usize = 3;
/// Uploads waiting for one writer before `submit` itself waits (back-pressure).
const QUEUE: usize = 4096;

struct Job {
    key: (i64, String),
    stmts: Vec<Stmt>,
    reply: oneshot::Sender<Result<Vec<StmtResult>>>,
}

/// The queue of uploads and its writers (started on first use, inside the server's runtime;
/// they end when the last clone of the store is dropped).
pub struct GroupCommit {
    db: Arc<dyn Db>,
    writers: usize,
    queues: OnceLock<Vec<mpsc::Sender<Job>>>,
}

impl GroupCommit {
    /// `writers` connections committing batches at once (at least one).
    pub fn new(db: Arc<dyn Db>, writers: usize) -> GroupCommit {
        GroupCommit {
            db,
            writers: writers.max(1),
            queues: OnceLock::new(),
        }
    }

    /// Run `stmts` (one upload; `key` = its team and run id) in the next batch; their results
    /// once that batch has committed.
    pub async fn submit(&self, key: (i64, String), stmts: Vec<Stmt>) -> Result<Vec<StmtResult>> {
        let queues = self
            .queues
            .get_or_init(|| start(self.db.clone(), self.writers));
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        let tx = &queues[(h.finish() % queues.len() as u64) as usize];
        let (reply, answer) = oneshot::channel();
        tx.send(Job { key, stmts, reply })
            .await
            .map_err(|_| anyhow!("the server's upload writers have stopped"))?;
        answer
            .await
            .map_err(|_| anyhow!("the server's upload writer stopped before the commit"))?
    }
}

fn start(db: Arc<dyn Db>, writers: usize) -> Vec<mpsc::Sender<Job>> {
    (0..writers)
        .map(|_| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(writer(db.clone(), rx));
            tx
        })
        .collect()
}

async fn writer(db: Arc<dyn Db>, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        run_batch(db.as_ref(), batch).await;
    }
}

/// Commit one batch and answer each job.
async fn run_batch(db: &dyn Db, mut batch: Vec<Job>) {
    // Stable: arrival order is kept within a run.
    batch.sort_by(|a, b| a.key.cmp(&b.key));
    let (units, replies): (Vec<Vec<Stmt>>, Vec<_>) =
        batch.into_iter().map(|j| (j.stmts, j.reply)).unzip();
    match db.group(units).await {
        Ok(results) => {
            for (reply, r) in replies.into_iter().zip(results) {
                // The request may have gone (its client hung up): its upload stands.
                let _ = reply.send(r);
            }
        }
        Err(e) => {
            let msg = format!("{e:#}");
            for reply in replies {
                let _ = reply.send(Err(anyhow!("{msg}")));
            }
        }
    }
}

/// What one pipelined pass of a group gave.
pub(crate) enum Pass {
    /// Committed: each unit's results (a row that cannot be read is that unit's error).
    Committed(Vec<Result<Vec<StmtResult>>>),
    /// A statement of the unit at this position (in the pass) failed on its own; nothing was
    /// committed.
    Failed {
        at: usize,
        error: tokio_postgres::Error,
    },
    /// Nothing committed, and the failure is not one statement's.
    AllFailed(anyhow::Error),
}

/// Send the statements `begin` (`BEGIN` and settings), the statements of the units `live` (indices into `units`/`prepared`) and
/// `COMMIT` at once (tokio-postgres sends requests in the order they are first polled, and
/// `join3`/`join_all` poll in order) and read the answers.
pub(crate) async fn pipeline(
    client: &Client,
    begin: &[&Statement],
    commit: &Statement,
    prepared: &[Vec<Statement>],
    units: &[Vec<Stmt>],
    live: &[usize],
) -> Pass {
    // (position of the unit in `live`, statement, its prepared form), in the order sent.
    let flat: Vec<(usize, &Stmt, &Statement)> = live
        .iter()
        .enumerate()
        .flat_map(|(at, &u)| {
            units[u]
                .iter()
                .zip(&prepared[u])
                .map(move |(s, p)| (at, s, p))
        })
        .collect();
    let ps: Vec<_> = flat.iter().map(|(_, s, _)| params(&s.params)).collect();
    let queries = flat.iter().zip(&ps).map(|((_, s, st), p)| {
        let rows = returns_rows(&s.sql);
        async move {
            if rows {
                client.query(*st, p).await.map(|r| (Some(r), 0))
            } else {
                client.execute(*st, p).await.map(|n| (None, n))
            }
        }
    });
    let (b, results, c) = join3(
        join_all(begin.iter().map(|st| client.execute(*st, &[]))),
        join_all(queries),
        client.execute(commit, &[]),
    )
    .await;
    if let Some(Err(e)) = b.into_iter().find(|r| r.is_err()) {
        return Pass::AllFailed(crate::db::postgres::pg_err(e, "BEGIN"));
    }
    let mut out: Vec<Result<Vec<StmtResult>>> = live.iter().map(|_| Ok(Vec::new())).collect();
    for ((at, _, _), r) in flat.iter().zip(results) {
        let res = match r {
            Ok((Some(rows), _)) => rows
                .iter()
                .map(cells)
                .collect::<Result<Vec<_>>>()
                .map(|rows| StmtResult { rows, changed: 0 }),
            Ok((None, n)) => Ok(StmtResult {
                rows: Vec::new(),
                changed: n,
            }),
            Err(e) => {
                let own = e.as_db_error().is_some()
                    && e.code() != Some(&SqlState::IN_FAILED_SQL_TRANSACTION);
                return if own {
                    Pass::Failed { at: *at, error: e }
                } else {
                    Pass::AllFailed(crate::db::postgres::pg_err(e, "statement"))
                };
            }
        };
        match (&mut out[*at], res) {
            (Ok(v), Ok(r)) => v.push(r),
            (slot @ Ok(_), Err(e)) => *slot = Err(e),
            (Err(_), _) => {}
        }
    }
    match c {
        Ok(_) => Pass::Committed(out),
        Err(e) => Pass::AllFailed(crate::db::postgres::pg_err(e, "COMMIT")),
    }
}
