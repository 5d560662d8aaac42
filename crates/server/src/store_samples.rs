//! A run's samples (per device: start, end, energy): how they are stored, written and read.
//!
//! - **SQLite** keeps one row per sample in `samples`, unique by (run, device, start).
//! - **PostgreSQL** keeps *sets*: `sample_sets` holds one row per (run, device) and stretch of
//!   samples, the samples as three arrays in start order (at most [`SET_MAX`] per set), keyed by
//!   (run, device, last start), with the first start beside it. The sets of one device of a run
//!   never overlap: [first start, last start] intervals are disjoint, so a sample (device,
//!   start) lives in at most one set. An upload of 20 samples writes 2 rows (one per device)
//!   instead of 20, a fifth of the write-ahead log, and a sample takes ~25 bytes instead of ~100
//!   (docs/server.md, "Load" and "Scale"). A view named `samples` unnests them, so SQL that
//!   reads samples (counts, the run chart's buckets, the tests) reads the same on both.
//!
//! Writes keep one meaning on both databases: an upload's samples replace stored samples of the
//! same device and start and add the others (uploads are idempotent; a retry never counts a
//! sample twice). On PostgreSQL a write is one statement: per device, the new samples become new
//! sets when their span meets no stored set (the usual case); otherwise the sets they overlap
//! are deleted and the union (the new samples, and the old ones they do not replace) is
//! inserted as fresh sets — the union's span covers every set it replaced, so the sets stay
//! disjoint. It runs after the statement that holds the run's row (the upload's upsert,
//! `FOR NO KEY UPDATE`, or downsampling's mark) in the same transaction, so it reads the sets
//! as committed by any earlier writer of that run (a fresh snapshot per statement).

use crate::db::{Db, Dialect, Stmt, Val};
use crate::store::{Sample, Scope, Store};
use crate::store_pages::{sample_cursor, Page};
use anyhow::Result;

/// Most samples in one PostgreSQL set (bounds what a page read unnests beyond its limit).
pub const SET_MAX: usize = 1000;
/// Rows per multi-row samples insert on SQLite (4 parameters each, well under its limit).
const SAMPLE_CHUNK: usize = 1000;

/// Samples deduplicated by device and start (the last wins): one write must not touch a sample
/// twice.
pub(crate) fn unique_samples(samples: &[Sample]) -> Vec<&Sample> {
    let mut uniq: std::collections::BTreeMap<(&str, u64), &Sample> = Default::default();
    for s in samples {
        uniq.insert((s.device_id.as_str(), s.t0.to_bits()), s);
    }
    uniq.into_values().collect()
}

/// The run some samples belong to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SamplesOf<'a> {
    /// An upload's run (by team and run id; of this project when given), written only while
    /// its samples are at full resolution (downsampling has not claimed it).
    Run {
        team_id: i64,
        run_id: &'a str,
        project_id: Option<i64>,
    },
    /// A run by key, whatever its resolution (downsampling, which has claimed it).
    Pk(i64),
}

impl SamplesOf<'_> {
    /// SQL giving the run's key as `pk` (no row when it does not qualify), and its parameters.
    fn key_sql(&self) -> (String, Vec<Val>) {
        match *self {
            SamplesOf::Run {
                team_id,
                run_id,
                project_id,
            } => {
                let mut p: Vec<Val> = vec![team_id.into(), run_id.into()];
                let mut sql =
                    "SELECT r.pk FROM runs r WHERE r.team_id = ? AND r.run_id = ?".to_string();
                if let Some(id) = project_id {
                    sql.push_str(" AND r.project_id = ?");
                    p.push(id.into());
                }
                sql.push_str(" AND r.samples_res = 0");
                (sql, p)
            }
            SamplesOf::Pk(pk) => ("SELECT CAST(? AS BIGINT) AS pk".into(), vec![pk.into()]),
        }
    }
}

/// The table holding samples (for deletion and device lists): rows on SQLite, sets on
/// PostgreSQL.
pub(crate) fn samples_table(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "samples",
        Dialect::Postgres => "sample_sets",
    }
}

/// SQL counting the samples of the run whose key is `pk_expr`.
pub(crate) fn count_sql(d: Dialect, pk_expr: &str) -> String {
    match d {
        Dialect::Sqlite => format!("(SELECT COUNT(*) FROM samples s WHERE s.run_pk = {pk_expr})"),
        Dialect::Postgres => format!(
            "(SELECT CAST(COALESCE(SUM(s.n), 0) AS BIGINT) FROM sample_sets s WHERE s.run_pk = {pk_expr})"
        ),
    }
}

/// Statements storing `samples` of `of` (each replacing a stored sample of the same device and
/// start); none when there are none.
pub(crate) fn write_stmts(d: Dialect, of: SamplesOf<'_>, samples: &[Sample]) -> Vec<Stmt> {
    let uniq = unique_samples(samples);
    if uniq.is_empty() {
        return Vec::new();
    }
    match d {
        Dialect::Sqlite => row_stmts(of, &uniq),
        Dialect::Postgres => vec![merge_stmt(of, &uniq, None)],
    }
}

/// Statements replacing every sample of `device` of run `pk` with a start in `first..=last` by
/// `merged` (downsampling: starts ascending, unique, within the range).
pub(crate) fn replace_stmts(
    d: Dialect,
    pk: i64,
    device: &str,
    (first, last): (f64, f64),
    merged: &[(f64, f64, f64)],
) -> Vec<Stmt> {
    let samples: Vec<Sample> = merged
        .iter()
        .map(|&(t0, t1, energy_j)| Sample {
            device_id: device.into(),
            t0,
            t1,
            energy_j,
        })
        .collect();
    match d {
        Dialect::Sqlite => {
            let mut stmts = vec![Stmt::new(
                "DELETE FROM samples WHERE run_pk = ? AND device_id = ? AND t0 >= ? AND t0 <= ?",
                vec![pk.into(), device.into(), first.into(), last.into()],
            )];
            let uniq: Vec<&Sample> = samples.iter().collect();
            stmts.extend(row_stmts(SamplesOf::Pk(pk), &uniq));
            stmts
        }
        Dialect::Postgres => {
            let uniq: Vec<&Sample> = samples.iter().collect();
            vec![merge_stmt(
                SamplesOf::Pk(pk),
                &uniq,
                Some((device, first, last)),
            )]
        }
    }
}

/// SQLite: multi-row upserts of sample rows.
fn row_stmts(of: SamplesOf<'_>, uniq: &[&Sample]) -> Vec<Stmt> {
    let (key, key_params) = of.key_sql();
    uniq.chunks(SAMPLE_CHUNK)
        .map(|chunk| {
            let mut params = Vec::with_capacity(chunk.len() * 4 + key_params.len());
            let values = vec![
                "(CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION), CAST(? AS DOUBLE PRECISION), CAST(? AS DOUBLE PRECISION))";
                chunk.len()
            ]
            .join(", ");
            for s in chunk {
                params.push(Val::T(s.device_id.clone()));
                params.push(Val::F(s.t0));
                params.push(Val::F(s.t1));
                params.push(Val::F(s.energy_j));
            }
            params.extend(key_params.iter().cloned());
            Stmt::new(
                format!(
                    "INSERT INTO samples (run_pk, device_id, t0, t1, energy_j) \
                     SELECT k.pk, v.column1, v.column2, v.column3, v.column4 \
                     FROM (VALUES {values}) AS v, ({key}) AS k WHERE true \
                     ON CONFLICT (run_pk, device_id, t0) DO UPDATE SET t1 = excluded.t1, energy_j = excluded.energy_j \
                     WHERE samples.t1 <> excluded.t1 OR samples.energy_j <> excluded.energy_j"
                ),
                params,
            )
        })
        .collect()
}

/// PostgreSQL: one statement merging `uniq` into the run's sets. Per device, the new samples'
/// span [first start, last start] (or `range`: device, first, last) is looked up among the
/// stored sets (one index probe). A device whose span meets no stored set — an upload after the
/// previous one, the usual case — has its sets inserted as built here (slices of the flat
/// arrays, at most [`SET_MAX`] samples each: no sort, no aggregate). For a device whose span
/// meets stored sets, those sets are deleted and the union of their samples and the new ones
/// is inserted as sets: without `range`, the stored samples kept are those whose start the new
/// ones do not have; with `range`, those starting outside it.
fn merge_stmt(of: SamplesOf<'_>, uniq: &[&Sample], range: Option<(&str, f64, f64)>) -> Stmt {
    let mut sorted: Vec<&Sample> = uniq.to_vec();
    sorted.sort_by(|a, b| a.device_id.cmp(&b.device_id).then(a.t0.total_cmp(&b.t0)));
    // Sets: (device, first index, last index), 1-based into the flat arrays; spans per device.
    let mut sets: Vec<(String, i64, i64)> = Vec::new();
    let mut spans: Vec<(String, f64, f64)> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let dev = &sorted[i].device_id;
        let mut j = i;
        while j < sorted.len() && &sorted[j].device_id == dev {
            j += 1;
        }
        let mut a = i;
        while a < j {
            let b = (a + SET_MAX).min(j);
            sets.push((dev.clone(), a as i64 + 1, b as i64));
            a = b;
        }
        spans.push((dev.clone(), sorted[i].t0, sorted[j - 1].t0));
        i = j;
    }
    if let Some((device, first, last)) = range {
        spans = vec![(device.to_string(), first, last)];
    }
    let (key, mut params) = of.key_sql();
    params.push(Val::TextArray(
        sorted.iter().map(|s| s.device_id.clone()).collect(),
    ));
    params.push(Val::FloatArray(sorted.iter().map(|s| s.t0).collect()));
    params.push(Val::FloatArray(sorted.iter().map(|s| s.t1).collect()));
    params.push(Val::FloatArray(sorted.iter().map(|s| s.energy_j).collect()));
    params.push(Val::TextArray(sets.iter().map(|s| s.0.clone()).collect()));
    params.push(Val::IntArray(sets.iter().map(|s| s.1).collect()));
    params.push(Val::IntArray(sets.iter().map(|s| s.2).collect()));
    params.push(Val::TextArray(spans.iter().map(|s| s.0.clone()).collect()));
    params.push(Val::FloatArray(spans.iter().map(|s| s.1).collect()));
    params.push(Val::FloatArray(spans.iter().map(|s| s.2).collect()));
    let kept = if range.is_some() {
        "u.t0 < c.lo OR u.t0 > c.hi"
    } else {
        "NOT EXISTS (SELECT 1 FROM new n WHERE n.device_id = o.device_id AND n.t0 = u.t0)"
    };
    Stmt::new(
        format!(
            "WITH k AS ({key}), \
             f AS (SELECT CAST(? AS TEXT[]) AS dev, CAST(? AS DOUBLE PRECISION[]) AS t0, \
                   CAST(? AS DOUBLE PRECISION[]) AS t1, CAST(? AS DOUBLE PRECISION[]) AS e), \
             sets AS (SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[])) \
                      AS s(device_id, lo, hi)), \
             rng AS (SELECT * FROM unnest(CAST(? AS TEXT[]), CAST(? AS DOUBLE PRECISION[]), \
                     CAST(? AS DOUBLE PRECISION[])) AS r(device_id, lo, hi)), \
             clash AS (SELECT rng.* FROM k, rng WHERE EXISTS (SELECT 1 FROM sample_sets x \
                       WHERE x.run_pk = k.pk AND x.device_id = rng.device_id \
                       AND x.t0_last >= rng.lo AND x.t0_first <= rng.hi)), \
             fast AS (INSERT INTO sample_sets (run_pk, device_id, t0_first, t0_last, n, t0, t1, energy_j) \
                      SELECT k.pk, s.device_id, f.t0[s.lo], f.t0[s.hi], s.hi - s.lo + 1, \
                      f.t0[s.lo:s.hi], f.t1[s.lo:s.hi], f.e[s.lo:s.hi] FROM k, f, sets s \
                      WHERE NOT EXISTS (SELECT 1 FROM clash c WHERE c.device_id = s.device_id)), \
             gone AS (SELECT y.run_pk, y.device_id, y.t0_last FROM k, clash c, LATERAL \
                      (SELECT x.run_pk, x.device_id, x.t0_last FROM sample_sets x WHERE x.run_pk = k.pk \
                       AND x.device_id = c.device_id AND x.t0_last >= c.lo AND x.t0_first <= c.hi) y), \
             old AS (DELETE FROM sample_sets s USING gone g WHERE s.run_pk = g.run_pk \
                     AND s.device_id = g.device_id AND s.t0_last = g.t0_last \
                     RETURNING s.device_id, s.t0, s.t1, s.energy_j), \
             new AS (SELECT v.* FROM f, unnest(f.dev, f.t0, f.t1, f.e) AS v(device_id, t0, t1, energy_j) \
                     WHERE EXISTS (SELECT 1 FROM clash c WHERE c.device_id = v.device_id)), \
             kept AS (SELECT o.device_id, u.t0, u.t1, u.energy_j FROM old o JOIN clash c ON c.device_id = o.device_id \
                      CROSS JOIN LATERAL unnest(o.t0, o.t1, o.energy_j) AS u(t0, t1, energy_j) \
                      WHERE {kept}), \
             a AS (SELECT x.*, (ROW_NUMBER() OVER (PARTITION BY x.device_id ORDER BY x.t0) - 1) / {SET_MAX} AS part \
                   FROM (SELECT * FROM new UNION ALL SELECT * FROM kept) x) \
             INSERT INTO sample_sets (run_pk, device_id, t0_first, t0_last, n, t0, t1, energy_j) \
             SELECT k.pk, a.device_id, MIN(a.t0), MAX(a.t0), COUNT(*), ARRAY_AGG(a.t0 ORDER BY a.t0), \
                    ARRAY_AGG(a.t1 ORDER BY a.t0), ARRAY_AGG(a.energy_j ORDER BY a.t0) \
             FROM k, a GROUP BY k.pk, a.device_id, a.part"
        ),
        params,
    )
}

/// A sample from a row of (device, start, end, energy).
fn sample_of(r: &crate::db::Row) -> Result<Sample> {
    Ok(Sample {
        device_id: r.text(0)?,
        t0: r.f64(1)?,
        t1: r.f64(2)?,
        energy_j: r.f64(3)?,
    })
}

/// Samples of run `pk` after `after` (device, start) in (device, start) order, only `device`'s
/// when given, at most `limit`.
async fn samples_after(
    db: &dyn Db,
    pk: i64,
    after: Option<(&str, f64)>,
    device: Option<&str>,
    limit: i64,
) -> Result<Vec<Sample>> {
    // The sets (PostgreSQL) or rows (SQLite) at or after the cursor, `c` being their alias and
    // `last` the column compared with the cursor's start.
    let filter = |c: &str, last: &str, params: &mut Vec<Val>| {
        let mut sql = String::new();
        if let Some((dev, t0)) = after {
            sql.push_str(&format!(
                " AND ({c}.device_id > ? OR ({c}.device_id = ? AND {c}.{last} > ?))"
            ));
            params.extend([dev.into(), dev.into(), t0.into()]);
        }
        if let Some(dev) = device {
            sql.push_str(&format!(" AND {c}.device_id = ?"));
            params.push(dev.into());
        }
        sql
    };
    let mut params: Vec<Val> = vec![pk.into()];
    let rows = match db.dialect() {
        Dialect::Sqlite => {
            let f = filter("s", "t0", &mut params);
            params.push(limit.into());
            db.query(
                &format!(
                    "SELECT s.device_id, s.t0, s.t1, s.energy_j FROM samples s \
                     WHERE s.run_pk = ?{f} ORDER BY s.device_id, s.t0 LIMIT ?"
                ),
                params,
            )
            .await?
        }
        Dialect::Postgres => {
            // The sets needed: in key order, until they hold `limit` samples past the cursor
            // (each holds at least one), so what is unnested stays within `limit + 2 SET_MAX`.
            // The cursor's own set (the first, when there is a cursor) may hold none past it:
            // it is not counted, and one more set is read.
            let f = filter("s", "t0_last", &mut params);
            let mut p1 = params.clone();
            p1.push(limit.saturating_add(1).into());
            let sets = db
                .query(
                    &format!(
                        "SELECT s.device_id, s.t0_last, s.n FROM sample_sets s \
                         WHERE s.run_pk = ?{f} ORDER BY s.device_id, s.t0_last LIMIT ?"
                    ),
                    p1,
                )
                .await?;
            let mut held = 0i64;
            let mut upto = None;
            for (i, s) in sets.iter().enumerate() {
                if i > 0 || after.is_none() {
                    held = held.saturating_add(s.i64(2)?);
                }
                upto = Some((s.text(0)?, s.f64(1)?));
                if held >= limit {
                    break;
                }
            }
            let Some((dev_end, last_end)) = upto else {
                return Ok(Vec::new());
            };
            let mut cond = String::new();
            if let Some((dev, t0)) = after {
                cond.push_str(" AND (s.device_id > ? OR u.t0 > ?)");
                params.extend([dev.into(), t0.into()]);
            }
            params.extend([dev_end.clone().into(), dev_end.into(), last_end.into()]);
            params.push(limit.into());
            db.query(
                &format!(
                    "SELECT s.device_id, u.t0, u.t1, u.energy_j FROM sample_sets s \
                     CROSS JOIN LATERAL unnest(s.t0, s.t1, s.energy_j) AS u(t0, t1, energy_j) \
                     WHERE s.run_pk = ?{f}{cond} \
                     AND (s.device_id < ? OR (s.device_id = ? AND s.t0_last <= ?)) \
                     ORDER BY s.device_id, u.t0 LIMIT ?"
                ),
                params,
            )
            .await?
        }
    };
    rows.iter().map(sample_of).collect()
}

impl Store {
    /// Upsert samples of a run visible in `scope`; `None` when there is no such run.
    pub async fn add_samples(
        &self,
        scope: &Scope,
        run_id: &str,
        samples: &[Sample],
    ) -> Result<Option<usize>> {
        let Some(team_id) = self.run_team(scope, run_id).await? else {
            return Ok(None);
        };
        let d = self.db.dialect();
        let of = SamplesOf::Run {
            team_id,
            run_id,
            project_id: None,
        };
        let mut stmts = write_stmts(d, of, samples);
        if !stmts.is_empty() && d == Dialect::Postgres {
            // Hold the run's row (as a run upload does): writers of its samples take turns, each
            // merging into the sets the one before committed, and downsampling, which first
            // marks the run, waits for these samples (docs/server.md, "Retention").
            stmts.insert(
                0,
                Stmt::new(
                    "SELECT pk FROM runs WHERE team_id = ? AND run_id = ? FOR NO KEY UPDATE",
                    vec![team_id.into(), run_id.into()],
                ),
            );
        }
        if !stmts.is_empty() {
            self.db.transaction(stmts).await?;
        }
        Ok(Some(samples.len()))
    }

    /// A page of a run's samples (by device, then start) after `after`; `None` when there is
    /// no such run visible in `scope`.
    pub async fn samples_page(
        &self,
        scope: &Scope,
        run_id: &str,
        limit: usize,
        after: Option<(String, f64)>,
    ) -> Result<Option<Page<Sample>>> {
        let Some(pk) = self.run_pk(scope, run_id).await? else {
            return Ok(None);
        };
        let want = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let after = after.as_ref().map(|(d, t)| (d.as_str(), *t));
        let out = samples_after(self.db.as_ref(), pk, after, None, want).await?;
        Ok(Some(crate::store_pages::page_of(out, limit, |s| {
            sample_cursor(&s.device_id, s.t0)
        })))
    }

    /// Samples of run `pk`'s `device` from start `from` (included), in start order, at most
    /// `limit` (downsampling reads them so).
    pub(crate) async fn device_samples_from(
        &self,
        pk: i64,
        device: &str,
        from: f64,
        limit: i64,
    ) -> Result<Vec<Sample>> {
        samples_after(
            self.db.as_ref(),
            pk,
            Some((device, from.next_down())),
            Some(device),
            limit,
        )
        .await
    }

    /// The devices with samples in run `pk`, in order.
    pub(crate) async fn sample_devices(&self, pk: i64) -> Result<Vec<String>> {
        let table = samples_table(self.db.dialect());
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT DISTINCT device_id FROM {table} WHERE run_pk = ? ORDER BY device_id"
                ),
                vec![pk.into()],
            )
            .await?;
        rows.iter().map(|r| r.text(0)).collect()
    }

    /// A run's samples for a chart: as stored when there are at most `max` of them, else merged
    /// per device into at most about `max / devices` consecutive stretches of equal length
    /// (energy summed, first start and last end kept), so that what is read stays bounded
    /// whatever the run's length. `None` when there is no such run visible in `scope`.
    pub async fn samples_for_chart(
        &self,
        scope: &Scope,
        run_id: &str,
        max: usize,
    ) -> Result<Option<Vec<Sample>>> {
        let Some(pk) = self.run_pk(scope, run_id).await? else {
            return Ok(None);
        };
        let stats = self
            .db
            .query(
                "SELECT COUNT(*), COALESCE(MAX(t1), 0.0), COUNT(DISTINCT device_id) \
                 FROM samples WHERE run_pk = ?",
                vec![pk.into()],
            )
            .await?;
        let Some(st) = stats.first() else {
            return Ok(Some(Vec::new()));
        };
        let (n, end, devices) = (st.i64(0)?, st.f64(1)?, st.i64(2)?.max(1));
        let max_i = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
        if n <= max_i {
            return samples_after(self.db.as_ref(), pk, None, None, max_i)
                .await
                .map(Some);
        }
        let buckets = (max_i / devices).max(1) as f64;
        let width = (end / buckets).max(1e-9);
        let rows = self
            .db
            .query(
                "SELECT device_id, MIN(t0), MAX(t1), SUM(energy_j) FROM samples WHERE run_pk = ? \
                 GROUP BY device_id, CAST(t0 / ? AS BIGINT) ORDER BY device_id, MIN(t0) LIMIT ?",
                vec![pk.into(), width.into(), max_i.saturating_mul(2).into()],
            )
            .await?;
        rows.iter()
            .map(sample_of)
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}
