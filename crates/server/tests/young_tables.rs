#![allow(clippy::unwrap_used)]
//! PostgreSQL: a table that has grown from empty gets its first statistics from the server
//! (`crates/server/src/db/young_tables.rs`), and with them a prepared lookup by run id that was
//! planned on the empty table moves from scanning a team's runs to the run's key.

mod common;

use wattprint_server::db::young_tables;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grown_table_is_analysed_once_and_lookups_plan_again() {
    let url = common::fresh_pg_database().await;
    let store = wattprint_server::admin::open(&url).await.unwrap();
    let org = store.create_org("org").await.unwrap();
    let team = store.create_team(org, "physics").await.unwrap();
    let project = store.ensure_project(org, team, "climate").await.unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // Autovacuum would analyse the table on its own at some moment of its choosing: not here.
    client
        .batch_execute("ALTER TABLE runs SET (autovacuum_enabled = false)")
        .await
        .unwrap();
    // The generic plan a prepared statement keeps (as the server's statements are kept per
    // connection), made now, on the empty table.
    client
        .batch_execute(
            "SET plan_cache_mode = force_generic_plan; \
             PREPARE lookup(bigint, text) AS SELECT r.pk FROM runs r WHERE r.team_id = $1 AND r.run_id = $2",
        )
        .await
        .unwrap();
    let explain = || async {
        let mut out = Vec::new();
        for m in client
            .simple_query(&format!("EXPLAIN EXECUTE lookup({team}, 'x')"))
            .await
            .unwrap()
        {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                out.push(r.get(0).unwrap().to_string());
            }
        }
        out.join("\n")
    };
    let uses_key = |p: &str| p.contains("runs_team_id_run_id_key");
    // Empty: nothing to analyse yet, and the lookup is planned on an "empty" table.
    let (done, all) = young_tables::analyze(store.db.as_ref()).await.unwrap();
    assert!(done.is_empty() && !all);
    let before = explain().await;
    // 2 000 runs with 1.5 KB records: far past the threshold.
    client
        .execute(
            "INSERT INTO runs (org_id, team_id, project_id, run_id, status, status_rank, started_at, \
             started_unix, month, duration_s, energy_kwh, facility_kwh, emissions_kg, hostname, record, \
             checkpoints, received_at, updated_at) \
             SELECT $1, $2, $3, 'r' || g, 'running', 0, 'x', g, '2026-01', 1, 1, 1, 1, 'h', repeat('x', 1500), \
             1, 'x', 'x' FROM generate_series(1, 2000) g",
            &[&org, &team, &project],
        )
        .await
        .unwrap();
    let still = explain().await;
    assert_eq!(
        still, before,
        "a kept generic plan does not follow the table's growth"
    );
    let (done, _) = young_tables::analyze(store.db.as_ref()).await.unwrap();
    assert!(done.contains(&"runs"), "{done:?}");
    let after = explain().await;
    assert!(uses_key(&after), "after the analysis:\n{after}");
    if uses_key(&before) {
        eprintln!("note: this PostgreSQL planned the empty table's lookup on the key already");
    }
    // Once analysed, a table is left to autovacuum.
    let (again, _) = young_tables::analyze(store.db.as_ref()).await.unwrap();
    assert!(!again.contains(&"runs"));
}
