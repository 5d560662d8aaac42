//! Retention of samples: full resolution for `full_days` after a run ended, then 1-minute
//! buckets, then after `minute_days` 1-hour buckets, kept forever (run records, rollups and
//! totals are never touched). A bucket sums the energy of the samples it replaces (per device,
//! buckets of the run's own timeline: `floor(t0 / width)`), keeps the first start and the last
//! end, so a run's series still adds up to the same energy and still draws.
//!
//! A background task ([`spawn`]) does it in small batches — at most `batch` samples of one
//! device of one run per transaction, a pause between batches — so ingest never waits long, and
//! it stops with the server. Several servers on one database may run it: a run is claimed by
//! the statement that marks its new resolution (`runs.samples_res`), which also makes uploads
//! stop adding samples to it (they hold the run's row while they write, so the mark waits for
//! any in flight). Running it twice changes nothing the second time.

use crate::db::{Stmt, Val};
use crate::store::Store;
use anyhow::{bail, Result};
use std::time::Duration;

/// Seconds in a day.
const DAY: i64 = 86_400;
/// The two downsampled resolutions, s.
pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3_600;
/// Most days a retention may name (100 years).
pub const MAX_DAYS: i64 = 36_500;
/// Runs read per candidate query.
const CANDIDATES: i64 = 200;

/// The server's retention settings (`wattprint serve --keep-full-days … --keep-minute-days …`);
/// an organisation may override the days ([`Store::set_retention`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    /// Days after a run ended that its samples stay as uploaded.
    pub full_days: i64,
    /// Days after a run ended that its samples stay in 1-minute buckets (then 1-hour).
    pub minute_days: i64,
    /// Most samples read and rewritten per transaction.
    pub batch: usize,
    /// Pause between two batches.
    pub pause: Duration,
    /// Time between two passes over the runs.
    pub every: Duration,
    /// Whether the background task runs at all.
    pub enabled: bool,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            full_days: 30,
            minute_days: 365,
            batch: 5_000,
            pause: Duration::from_millis(20),
            every: Duration::from_secs(600),
            enabled: true,
        }
    }
}

impl Retention {
    /// Check the days (0 ≤ full ≤ minute ≤ [`MAX_DAYS`]) and the batch size.
    pub fn check(&self) -> Result<()> {
        check_days(self.full_days, self.minute_days)?;
        if !(100..=1_000_000).contains(&self.batch) {
            bail!("the retention batch must be 100 to 1 000 000 samples");
        }
        Ok(())
    }
}

fn check_days(full: i64, minute: i64) -> Result<()> {
    if !(0..=MAX_DAYS).contains(&full) || !(0..=MAX_DAYS).contains(&minute) {
        bail!("retention days must be 0 to {MAX_DAYS}");
    }
    if minute < full {
        bail!("1-minute samples ({minute} days) cannot be kept for less time than full-resolution ones ({full} days)");
    }
    Ok(())
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Runs downsampled (a run moved from full resolution straight to hours counts once).
    pub runs: u64,
    /// Sample rows read and rewritten.
    pub rows_before: u64,
    pub rows_after: u64,
}

impl Store {
    /// Set an organisation's retention days (overriding the server's).
    pub async fn set_retention(&self, org_id: i64, full_days: i64, minute_days: i64) -> Result<()> {
        check_days(full_days, minute_days)?;
        self.db
            .transaction(vec![Stmt::new(
                "INSERT INTO retention (org_id, full_days, minute_days, updated_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (org_id) DO UPDATE SET full_days = excluded.full_days, \
                 minute_days = excluded.minute_days, updated_at = excluded.updated_at",
                vec![
                    org_id.into(),
                    full_days.into(),
                    minute_days.into(),
                    crate::now_rfc3339().into(),
                ],
            )])
            .await?;
        Ok(())
    }

    /// Every organisation with its (full, minute) days: its own, else `defaults`'.
    pub async fn retentions(&self, defaults: &Retention) -> Result<Vec<(i64, i64, i64)>> {
        let rows = self
            .db
            .query(
                "SELECT o.id, COALESCE(r.full_days, ?), COALESCE(r.minute_days, ?) \
                 FROM orgs o LEFT JOIN retention r ON r.org_id = o.id ORDER BY o.id",
                vec![defaults.full_days.into(), defaults.minute_days.into()],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.i64(0)?, r.i64(1)?, r.i64(2)?)))
            .collect()
    }
}

/// One pass over every organisation's runs, as of `now_unix`: runs that ended more than
/// `minute_days` ago go to 1-hour buckets, those that ended more than `full_days` ago to
/// 1-minute buckets. Pauses `cfg.pause` between batches.
pub async fn pass(store: &Store, cfg: &Retention, now_unix: i64) -> Result<PassReport> {
    let mut report = PassReport::default();
    for (org, full, minute) in store.retentions(cfg).await? {
        for (width, days) in [(HOUR, minute), (MINUTE, full)] {
            let cutoff = now_unix.saturating_sub(days.saturating_mul(DAY));
            stage(store, cfg, org, width, cutoff, &mut report).await?;
        }
    }
    Ok(report)
}

/// Downsample to `width` the runs of `org` that ended before `cutoff` and are finer.
async fn stage(
    store: &Store,
    cfg: &Retention,
    org: i64,
    width: i64,
    cutoff: i64,
    report: &mut PassReport,
) -> Result<()> {
    let mut after = 0i64;
    loop {
        // Keyset on pk: each query moves forward, so the loop ends whatever it finds.
        let rows = store
            .db
            .query(
                "SELECT pk FROM runs WHERE org_id = ? AND samples_res < ? AND started_unix < ? \
                 AND started_unix + duration_s < ? AND pk > ? ORDER BY pk LIMIT ?",
                vec![
                    org.into(),
                    width.into(),
                    cutoff.into(),
                    Val::F(cutoff as f64),
                    after.into(),
                    CANDIDATES.into(),
                ],
            )
            .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.i64(0)?;
        for r in &rows {
            downsample_run(store, cfg, r.i64(0)?, width, report).await?;
        }
    }
}

/// Claim run `pk` for `width` (mark it; another server may have), then merge its samples.
async fn downsample_run(
    store: &Store,
    cfg: &Retention,
    pk: i64,
    width: i64,
    report: &mut PassReport,
) -> Result<()> {
    let res = store
        .db
        .transaction(vec![Stmt::new(
            "UPDATE runs SET samples_res = ? WHERE pk = ? AND samples_res < ?",
            vec![width.into(), pk.into(), width.into()],
        )])
        .await?;
    if res.first().map(|r| r.changed).unwrap_or(0) != 1 {
        return Ok(());
    }
    report.runs += 1;
    for device in store.sample_devices(pk).await? {
        merge_device(store, cfg, pk, &device, width, report).await?;
    }
    Ok(())
}

/// Merge one device's samples of run `pk` into buckets of `width` seconds, `cfg.batch` samples
/// per transaction.
async fn merge_device(
    store: &Store,
    cfg: &Retention,
    pk: i64,
    device: &str,
    width: i64,
    report: &mut PassReport,
) -> Result<()> {
    let w = width as f64;
    let bucket = |t0: f64| (t0 / w).floor();
    let mut from = f64::NEG_INFINITY;
    let batch = cfg.batch.max(2);
    loop {
        let read = store
            .device_samples_from(
                pk,
                device,
                if from.is_finite() { from } else { -1e300 },
                i64::try_from(batch + 1).unwrap_or(i64::MAX),
            )
            .await?;
        let s: Vec<(f64, f64, f64)> = read.iter().map(|x| (x.t0, x.t1, x.energy_j)).collect();
        if s.is_empty() {
            return Ok(());
        }
        // Take whole buckets: up to the bucket of the first row not read this time. When the
        // batch is all one bucket, merge it into one row and read again from that row: the
        // bucket shrinks by `batch - 1` rows each time until it is one row.
        enum Next {
            At(f64),
            Again,
            Done,
        }
        let (take, next) = if s.len() > batch {
            let edge = bucket(s[batch].0);
            let whole = s
                .iter()
                .take(batch)
                .take_while(|x| bucket(x.0) < edge)
                .count();
            if whole > 0 {
                (whole, Next::At(s[whole].0))
            } else {
                (batch, Next::Again)
            }
        } else {
            (s.len(), Next::Done)
        };
        let part = &s[..take];
        let mut merged: Vec<(f64, f64, f64)> = Vec::new();
        for &(t0, t1, e) in part {
            match merged.last_mut() {
                Some(m) if bucket(m.0) == bucket(t0) => {
                    m.1 = m.1.max(t1);
                    m.2 += e;
                }
                _ => merged.push((t0, t1, e)),
            }
        }
        if merged.len() < part.len() {
            let (first, last) = (part[0].0, part[part.len() - 1].0);
            let stmts = crate::store_samples::replace_stmts(
                store.db.dialect(),
                pk,
                device,
                (first, last),
                &merged,
            );
            store.db.transaction(stmts).await?;
            report.rows_before += part.len() as u64;
            report.rows_after += merged.len() as u64;
            pause(cfg).await;
        }
        match next {
            // Rows are unique per (device, t0) and read in order: `t` is past `from`.
            Next::At(t) => from = t,
            // `batch` ≥ 2 rows became one: fewer rows each time, so this ends.
            Next::Again => from = part[0].0,
            Next::Done => return Ok(()),
        }
    }
}

async fn pause(cfg: &Retention) {
    if cfg.pause.is_zero() {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(cfg.pause).await;
    }
}

/// The background task: a pass now and every `cfg.every`, until the returned handle is
/// aborted (the server does when it stops). A failed pass is reported on stderr and retried at
/// the next one.
pub fn spawn(store: Store, cfg: Retention) -> Option<tokio::task::JoinHandle<()>> {
    if !cfg.enabled {
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            match pass(&store, &cfg, now).await {
                Ok(r) if r.runs > 0 => eprintln!(
                    "wattprint serve: retention: {} run(s) downsampled, {} sample rows → {}",
                    r.runs, r.rows_before, r.rows_after
                ),
                Ok(_) => {}
                Err(e) => eprintln!(
                    "wattprint serve: retention: {e:#} (retried in {:?})",
                    cfg.every
                ),
            }
            tokio::time::sleep(cfg.every).await;
        }
    }))
}
