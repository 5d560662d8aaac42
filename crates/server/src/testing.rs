//! Helpers for tests of this crate and of the CLI (not part of the server's behaviour).

use anyhow::{Context, Result};
use std::sync::atomic::{AtomicU32, Ordering};

/// The variable naming a PostgreSQL server the tests may create databases on.
pub const PG_ENV: &str = "WATTPRINT_TEST_POSTGRES_URL";

/// `$WATTPRINT_TEST_POSTGRES_URL`; panics (failing the test) with how to get one when unset.
pub fn pg_base_url() -> String {
    match std::env::var(PG_ENV) {
        Ok(u) if !u.trim().is_empty() => u,
        _ => panic!(
            "{PG_ENV} is not set: the PostgreSQL half of the server tests needs a server on which \
             it may create databases. `.ci/run` starts a throwaway cluster and sets it; by hand \
             (as root, prefix initdb and pg_ctl with `runuser -u postgres --`):\n  \
             initdb -D /tmp/wp-pg -A trust -U wattprint\n  \
             pg_ctl -D /tmp/wp-pg -o '-h 127.0.0.1 -p 55432 -k /tmp' -w start\n  \
             export {PG_ENV}=postgres://wattprint@127.0.0.1:55432/postgres"
        ),
    }
}

/// `url` with its database name replaced.
pub fn with_dbname(url: &str, db: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{db}{query}")
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Create a fresh, empty database on the server at `base_url`; returns its URL.
pub async fn fresh_pg_database(base_url: &str) -> Result<String> {
    let (client, conn) = tokio_postgres::connect(base_url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {}", crate::db::redact(base_url)))?;
    tokio::spawn(conn);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "wp_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    );
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .with_context(|| format!("creating database {name}"))?;
    Ok(with_dbname(base_url, &name))
}

/// Totals of the runs matching `f` recomputed from `runs` (every matching row read, figures
/// summed as stored): what tests compare `/totals`, which reads the rollups and the window's
/// edges ([`crate::totals_window`]), against. All groups, in key order.
pub async fn totals_from_runs(
    store: &crate::store::Store,
    f: &crate::store::RunFilter,
    by: crate::store::GroupBy,
) -> Result<Vec<crate::store::TotalsRow>> {
    use crate::store::GroupBy;
    let (keys, group) = match by {
        GroupBy::Org => ("o.name, NULL", "r.org_id, o.name"),
        GroupBy::Team => ("t.name, NULL", "r.team_id, t.name"),
        GroupBy::Project => ("p.name, t.name", "r.project_id, p.name, t.name"),
        GroupBy::User => ("r.user_name, NULL", "r.user_name"),
        GroupBy::Month => ("r.month, NULL", "r.month"),
        GroupBy::Status => ("r.status, NULL", "r.status"),
        GroupBy::Host => ("r.hostname, NULL", "r.hostname"),
    };
    let mut params = Vec::new();
    let filter = f.sql(&mut params);
    let rows = store
        .db
        .query(
            &format!(
                "SELECT {keys}, COUNT(*), COALESCE(SUM(r.duration_s), 0.0), \
                 COALESCE(SUM(r.energy_kwh), 0.0), COALESCE(SUM(r.facility_kwh), 0.0), \
                 COALESCE(SUM(r.emissions_kg), 0.0) {} WHERE 1 = 1{filter} \
                 GROUP BY {group} ORDER BY {group}",
                crate::store::RUN_FROM
            ),
            params,
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(crate::store::TotalsRow {
                key: r.opt_text(0)?,
                team: r.opt_text(1)?,
                runs: r.i64(2)?,
                duration_s: r.f64(3)?,
                energy_kwh: r.f64(4)?,
                facility_kwh: r.f64(5)?,
                emissions_kg: r.f64(6)?,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn dbname_is_replaced() {
        assert_eq!(
            super::with_dbname("postgres://u@h:5/postgres?sslmode=disable", "x"),
            "postgres://u@h:5/x?sslmode=disable"
        );
        assert_eq!(
            super::with_dbname("postgres://u@h", "x"),
            "postgres://u@h/x"
        );
    }
}
