//! Paged listings: every listing the API serves is read one bounded page at a time, with an
//! opaque cursor to the next page (keyset pagination: a page costs the same wherever it is, and
//! rows inserted meanwhile neither repeat nor shift what follows). Written once; every
//! statement runs unchanged on SQLite and PostgreSQL.

use crate::db::Val;
use crate::store::{
    run_summary, token_record, Budget, RunFilter, RunSummary, Scope, Store, TokenRecord,
    RUN_COLUMNS, RUN_FROM, TOKEN_SELECT,
};
use anyhow::Result;

/// A page of a listing and the cursor of the next one (`None` on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Cut `rows` (read with `limit + 1`) to `limit` and make the next cursor from the last kept
/// row.
pub(crate) fn page_of<T>(mut rows: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Page<T> {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(cursor) } else { None };
    Page { items: rows, next }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 4096 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Runs cursor: `r<started_unix>.<pk>` (newest first).
pub fn run_cursor(started_unix: i64, pk: i64) -> String {
    format!("r{started_unix}.{pk}")
}

pub fn parse_run_cursor(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.strip_prefix('r')?.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Samples cursor: `s<t0 bits, hex>.<device id, hex>` (by device, then start).
pub fn sample_cursor(device_id: &str, t0: f64) -> String {
    format!("s{:016x}.{}", t0.to_bits(), hex(device_id.as_bytes()))
}

pub fn parse_sample_cursor(s: &str) -> Option<(String, f64)> {
    let (a, b) = s.strip_prefix('s')?.split_once('.')?;
    let t0 = f64::from_bits(u64::from_str_radix(a, 16).ok()?);
    let dev = String::from_utf8(unhex(b)?).ok()?;
    t0.is_finite().then_some((dev, t0))
}

/// Id cursor (tokens, budgets): `<letter><id>`.
pub fn id_cursor(kind: char, id: i64) -> String {
    format!("{kind}{id}")
}

pub fn parse_id_cursor(kind: char, s: &str) -> Option<i64> {
    s.strip_prefix(kind)?.parse().ok()
}

fn lim(limit: usize) -> Val {
    i64::try_from(limit.saturating_add(1))
        .unwrap_or(i64::MAX)
        .into()
}

impl Store {
    /// A page of the runs matching `f`, newest first, after `after` (a runs cursor's values).
    pub async fn runs_page(
        &self,
        f: &RunFilter,
        limit: usize,
        after: Option<(i64, i64)>,
    ) -> Result<Page<RunSummary>> {
        let mut params = Vec::new();
        let mut filter = f.sql(&mut params);
        if let Some((started, pk)) = after {
            filter.push_str(" AND (r.started_unix < ? OR (r.started_unix = ? AND r.pk < ?))");
            params.extend([started.into(), started.into(), pk.into()]);
        }
        params.push(lim(limit));
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS}, r.started_unix, r.pk {RUN_FROM} WHERE 1 = 1{filter} \
                     ORDER BY r.started_unix DESC, r.pk DESC LIMIT ?"
                ),
                params,
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((run_summary(r)?, r.i64(16)?, r.i64(17)?));
        }
        let p = page_of(out, limit, |x| run_cursor(x.1, x.2));
        Ok(Page {
            items: p.items.into_iter().map(|x| x.0).collect(),
            next: p.next,
        })
    }

    /// The internal key of a run visible in `scope`.
    pub(crate) async fn run_pk(&self, scope: &Scope, run_id: &str) -> Result<Option<i64>> {
        let mut params = vec![run_id.into()];
        let filter = scope.sql("r", &mut params);
        self.one_i64(
            &format!("SELECT r.pk FROM runs r WHERE r.run_id = ?{filter} ORDER BY r.pk LIMIT 1"),
            params,
        )
        .await
    }

    /// A page of the tokens inside `scope`, newest first, after the token `after`.
    pub async fn tokens_page(
        &self,
        scope: &Scope,
        limit: usize,
        after: Option<i64>,
    ) -> Result<Page<TokenRecord>> {
        let mut params = Vec::new();
        let mut filter = scope.sql("k", &mut params);
        if let Some(id) = after {
            filter.push_str(" AND k.id < ?");
            params.push(id.into());
        }
        params.push(lim(limit));
        let rows = self
            .db
            .query(
                &format!("{TOKEN_SELECT} WHERE 1 = 1{filter} ORDER BY k.id DESC LIMIT ?"),
                params,
            )
            .await?;
        let out = rows.iter().map(token_record).collect::<Result<Vec<_>>>()?;
        Ok(page_of(out, limit, |t| id_cursor('t', t.id)))
    }

    /// A page of the budgets visible in `scope` (oldest first), with what `month` used.
    pub async fn budgets_page(
        &self,
        scope: &Scope,
        month: &str,
        limit: usize,
        after: Option<i64>,
    ) -> Result<Page<Budget>> {
        let all = self.list_budgets_after(scope, month, limit, after).await?;
        Ok(page_of(all, limit, |b| id_cursor('b', b.id)))
    }
}
