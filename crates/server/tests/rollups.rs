//! Rollups, on SQLite and on PostgreSQL: exact against a recomputation from `runs` after seeded
//! mixes of uploads, re-uploads with changed figures, retries, checkpoint → final transitions
//! and deletions (property-based); `/totals` from the rollups equal to `/totals` from `runs`;
//! the migration back-fills the rollups and the derived figures of runs stored before it.

#![allow(clippy::unwrap_used)]

mod common;

use common::{close, Backend, Rec, TestServer};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use wattprint_server::store::Role;

#[derive(Debug, Clone)]
enum Op {
    Upload {
        run: usize,
        status: usize,
        dur: u32,
        kwh: u32,
        kg: u32,
        user: Option<u8>,
        host: u8,
    },
    /// The same body as this run's last upload, again (a retry).
    Retry {
        run: usize,
    },
    Delete {
        run: usize,
    },
    /// This run's last upload, final (`completed`) with the same figures: a transition that
    /// moves no sum but the status.
    Finish {
        run: usize,
    },
    /// This run's last upload claiming another start (a day and an hour later): the server
    /// keeps the start of the run's first upload.
    Restart {
        run: usize,
    },
    /// An operator moves this run's start a day and an hour later, or back (SQL on `runs`, in
    /// the same month): the per-day rollups follow.
    Shift {
        run: usize,
    },
    /// Fold the rollups' journal into the tables (PostgreSQL; the server does it every second).
    Fold,
}

const RUNS: usize = 8;
const STATUSES: [&str; 3] = ["running", "completed", "failed"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..RUNS, 0..3usize, 1..5000u32, 0..50_000u32, 0..50_000u32,
              proptest::option::of(0..3u8), 0..3u8)
            .prop_map(|(run, status, dur, kwh, kg, user, host)| Op::Upload {
                run, status, dur, kwh, kg, user, host
            }),
        2 => (0..RUNS).prop_map(|run| Op::Retry { run }),
        1 => (0..RUNS).prop_map(|run| Op::Delete { run }),
        1 => (0..RUNS).prop_map(|run| Op::Finish { run }),
        1 => (0..RUNS).prop_map(|run| Op::Restart { run }),
        1 => (0..RUNS).prop_map(|run| Op::Shift { run }),
        1 => Just(Op::Fold),
    ]
}

/// Run `i`'s team token index, project and start (fixed per run: a run never moves).
fn run_home(i: usize) -> (usize, String, String) {
    (
        i % 2,
        format!("p{}", i % 3),
        // Spread over the months (the 1st at midnight included), so that windows cut them.
        format!(
            "2025-0{}-{:02}T{:02}:00:00Z",
            1 + i % 3,
            1 + (i * 11) % 28,
            (i * 5) % 24
        ),
    )
}

/// Groups of `/totals?group_by=BY` as key → (runs, kWh, kg, duration).
async fn groups(s: &TestServer, tok: &str, q: &str) -> BTreeMap<String, (i64, f64, f64, f64)> {
    let (code, v) = s.get(tok, &format!("/totals?{q}")).await;
    assert_eq!(code, 200, "{v}");
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                format!("{}/{}", g["key"], g["team"]),
                (
                    g["runs"].as_i64().unwrap(),
                    g["energy_kwh"].as_f64().unwrap(),
                    g["emissions_kg"].as_f64().unwrap(),
                    g["duration_s"].as_f64().unwrap(),
                ),
            )
        })
        .collect()
}

/// Windows `/totals` is checked on: open, month-aligned, edges on either side of the middle of
/// a month (an edge is read from its smaller side: the days of its part of the month, or the
/// month's rollup less the days outside it), within one month, and empty; edges mid-day (the
/// partial day from its smaller side), exactly at, a second after and before runs' starts, on
/// day boundaries; one hour, one day, and most of a month.
const WINDOWS: &[(Option<&str>, Option<&str>)] = &[
    (None, None),
    (Some("2025-02-01T00:00:00Z"), Some("2025-03-01T00:00:00Z")),
    (Some("2025-01-06T00:00:00Z"), None),
    (Some("2025-01-20T12:00:00Z"), Some("2025-03-05T00:00:00Z")),
    (Some("2025-01-01T00:00:01Z"), Some("2025-03-25T00:00:00Z")),
    (None, Some("2025-02-17T00:00:00Z")),
    (Some("2025-02-03T00:00:00Z"), Some("2025-02-25T00:00:00Z")),
    (Some("2025-03-02T00:00:00Z"), Some("2025-01-02T00:00:00Z")),
    (Some("2025-01-06T15:00:00Z"), Some("2025-02-17T20:00:00Z")),
    (Some("2025-01-06T15:00:01Z"), Some("2025-02-22T10:59:59Z")),
    (Some("2025-01-11T00:00:00Z"), Some("2025-03-23T00:00:00Z")),
    (Some("2025-02-12T05:00:00Z"), Some("2025-02-12T06:00:00Z")),
    (Some("2025-02-12T00:00:00Z"), Some("2025-02-13T00:00:00Z")),
    (Some("2025-02-02T02:00:00Z"), Some("2025-02-27T22:00:00Z")),
    (None, Some("2025-03-28T01:00:00Z")),
];

/// `t` (RFC 3339) plus `secs` seconds.
fn later(t: &str, secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix(t) + secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn unix(t: &str) -> i64 {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

/// `/totals` (rollups and window edges) equals a recomputation from `runs` for every grouping
/// and window, and with user and host filters.
async fn totals_agree(s: &TestServer, org: &str) {
    use wattprint_server::store::{GroupBy, RunFilter, Scope};
    let org_id = s
        .state
        .store
        .org_id(wattprint_server::admin::DEFAULT_ORG)
        .await
        .unwrap()
        .unwrap();
    let scope = Scope {
        org_id,
        team_id: None,
        project_id: None,
    };
    let check = |by: &'static str,
                 since: Option<&'static str>,
                 until: Option<&'static str>,
                 extra: &'static str| async move {
        let mut q = format!("group_by={by}{extra}");
        let mut f = RunFilter::new(scope);
        if let Some(t) = since {
            q.push_str(&format!("&since={t}"));
            f.since_unix = Some(unix(t));
        }
        if let Some(t) = until {
            q.push_str(&format!("&until={t}"));
            f.until_unix = Some(unix(t));
        }
        if !extra.is_empty() {
            f.user = Some("u1".into());
            f.host = Some("h2".into());
        }
        let fast = groups(s, org, &q).await;
        let rows = wattprint_server::testing::totals_from_runs(
            &s.state.store,
            &f,
            GroupBy::parse(by).unwrap(),
        )
        .await
        .unwrap();
        let slow: BTreeMap<String, (i64, f64, f64, f64)> = rows
            .iter()
            .map(|r| {
                (
                    format!("{}/{}", json!(r.key), json!(r.team)),
                    (r.runs, r.energy_kwh, r.emissions_kg, r.duration_s),
                )
            })
            .collect();
        assert_eq!(
            fast.keys().collect::<Vec<_>>(),
            slow.keys().collect::<Vec<_>>(),
            "{q}"
        );
        for (k, a) in &fast {
            let b = slow[k];
            assert_eq!(a.0, b.0, "{q} {k}");
            // Rollups keep µWh, µg and ms: within half a unit per run of the float sums.
            let runs = a.0 as f64;
            assert!(
                (a.1 - b.1).abs() <= runs * 0.5e-9 + 1e-12,
                "{q} {k} {a:?} {b:?}"
            );
            assert!(
                (a.2 - b.2).abs() <= runs * 0.5e-9 + 1e-12,
                "{q} {k} {a:?} {b:?}"
            );
            assert!(
                (a.3 - b.3).abs() <= runs * 0.5e-3 + 1e-9,
                "{q} {k} {a:?} {b:?}"
            );
        }
    };
    for (since, until) in WINDOWS {
        for by in ["org", "team", "project", "user", "month", "status", "host"] {
            check(by, *since, *until, "").await;
        }
        // Filters too: by user and host together (the host table).
        check("team", *since, *until, "&user=u1&host=h2").await;
    }
    // A fractional second is cut to the second, as for `runs`.
    let fast = groups(s, org, "group_by=month&since=2025-02-01&until=2025-03-01").await;
    let slow = groups(
        s,
        org,
        "group_by=month&since=2025-01-31T23:59:59.5Z&until=2025-03-01",
    )
    .await;
    assert!(fast.keys().all(|k| k == "\"2025-02\"/null"), "{fast:?}");
    assert_eq!(
        fast.values().next().map(|v| v.0),
        slow.values().next().map(|v| v.0)
    );
}

async fn apply(
    s: &TestServer,
    toks: &[String; 2],
    admins: &[String; 2],
    ops: &[Op],
    last: &mut BTreeMap<usize, Value>,
) {
    for op in ops {
        match op {
            Op::Upload {
                run,
                status,
                dur,
                kwh,
                kg,
                user,
                host,
            } => {
                let (team, project, at) = run_home(*run);
                let mut r = Rec::new(&format!("r{run}"), &project)
                    .at(&at)
                    .status(STATUSES[*status])
                    .progress(
                        f64::from(*dur),
                        f64::from(*kwh) / 7.0,
                        f64::from(*kg) / 70.0,
                    );
                r.hostname = format!("h{host}");
                let mut body = r.json();
                if let Some(u) = user {
                    body["user"] = json!(format!("u{u}"));
                }
                let (code, v) = s.post(&toks[team], "/runs", &body).await;
                assert!(code == 200 || code == 201, "{code} {v}");
                last.insert(*run, body);
            }
            Op::Retry { run } => {
                if let Some(body) = last.get(run) {
                    let (code, v) = s.post(&toks[run % 2], "/runs", body).await;
                    assert!(code == 200 || code == 201, "{code} {v}");
                }
            }
            Op::Finish { run } => {
                if let Some(body) = last.get(run) {
                    let mut body = body.clone();
                    body["status"] = json!("completed");
                    if body["ended_at"].is_null() {
                        let secs = body["duration_s"].as_f64().unwrap() as i64;
                        body["ended_at"] = json!(later(body["started_at"].as_str().unwrap(), secs));
                        body["exit_code"] = json!(0);
                    }
                    let (code, v) = s.post(&toks[run % 2], "/runs", &body).await;
                    assert!(code == 200 || code == 201, "{code} {v}");
                    last.insert(*run, body);
                }
            }
            Op::Restart { run } => {
                if let Some(body) = last.get(run) {
                    let mut body = body.clone();
                    for k in ["started_at", "ended_at"] {
                        if let Some(t) = body[k].as_str() {
                            body[k] = json!(later(t, 90_000));
                        }
                    }
                    let (code, v) = s.post(&toks[run % 2], "/runs", &body).await;
                    assert!(code == 200 || code == 201, "{code} {v}");
                }
            }
            Op::Shift { run } => {
                let start = unix(&run_home(*run).2);
                s.state
                    .store
                    .db
                    .transaction(vec![wattprint_server::db::Stmt::new(
                        "UPDATE runs SET started_unix = CASE WHEN started_unix = ? \
                         THEN CAST(? AS BIGINT) ELSE CAST(? AS BIGINT) END \
                         WHERE run_id = ?",
                        vec![
                            start.into(),
                            (start + 90_000).into(),
                            start.into(),
                            format!("r{run}").into(),
                        ],
                    )])
                    .await
                    .unwrap();
            }
            Op::Fold => {
                s.state.store.fold_rollups().await.unwrap();
            }
            Op::Delete { run } => {
                let (code, v) = s.delete(&admins[run % 2], &format!("/runs/r{run}")).await;
                assert!(code == 200 || code == 404, "{code} {v}");
            }
        }
    }
}

fn rollups_stay_exact(b: Backend, cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (s, toks, admins, org) = rt.block_on(async {
        // Many requests per case: no rate limit or cap on expensive requests in the way.
        let limits = wattprint_server::limits::Limits {
            rate_per_s: 0.0,
            max_expensive_per_token: 0,
            ..Default::default()
        };
        let s = TestServer::with_limits(b, limits).await;
        let toks = [
            s.token("physics", None, Role::Member).await.1,
            s.token("biology", None, Role::Member).await.1,
        ];
        let admins = [
            s.token("physics", None, Role::Admin).await.1,
            s.token("biology", None, Role::Admin).await.1,
        ];
        let org = s.org_token(Role::Viewer).await;
        (s, toks, admins, org)
    });
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            rt.block_on(async {
                let mut last = BTreeMap::new();
                apply(&s, &toks, &admins, &ops, &mut last).await;
                let drift = s.state.store.rollup_drift().await.unwrap();
                assert!(drift.is_empty(), "{drift:#?}");
                totals_agree(&s, &org).await;
                // Folded or not, the same.
                s.state.store.fold_rollups().await.unwrap();
                let drift = s.state.store.rollup_drift().await.unwrap();
                assert!(drift.is_empty(), "after folding: {drift:#?}");
            });
            Ok(())
        })
        .unwrap();
    // Something was counted (the check is not vacuous).
    let n = rt.block_on(s.count("runs"));
    let rows = rt.block_on(s.count("rollups"));
    assert!(n > 0 && rows > 0, "{n} runs, {rows} rollup rows");
    // The per-day rollups hold rows too (the windows above read them).
    let days = rt.block_on(s.count("rollup_days"));
    assert!(days > 0, "{days} per-day rollup rows");
    // And the check sees a difference of one unit in one row, of either table.
    rt.block_on(async {
        let db = s.state.store.db.clone();
        let change = |sql: &'static str| {
            let db = db.clone();
            async move {
                db.transaction(vec![wattprint_server::db::Stmt::new(sql, vec![])])
                    .await
                    .unwrap();
            }
        };
        change(
            "UPDATE rollup_days SET emissions_ug = emissions_ug - 1 \
             WHERE day = (SELECT MIN(day) FROM rollup_days WHERE runs > 0) AND runs > 0",
        )
        .await;
        let drift = s.state.store.rollup_drift().await.unwrap();
        assert!(
            drift.iter().any(|l| l.starts_with("rollup_days")),
            "{drift:#?}"
        );
        change(
            "UPDATE rollup_days SET emissions_ug = emissions_ug + 1 \
             WHERE day = (SELECT MIN(day) FROM rollup_days WHERE runs > 0) AND runs > 0",
        )
        .await;
        assert!(s.state.store.rollup_drift().await.unwrap().is_empty());
        change(
            "UPDATE rollup_hosts SET energy_uwh = energy_uwh + 1 \
             WHERE hostname = (SELECT MIN(hostname) FROM rollup_hosts WHERE runs > 0) AND runs > 0",
        )
        .await;
        let drift = s.state.store.rollup_drift().await.unwrap();
        assert!(!drift.is_empty());
    });
    rt.block_on(s.stop());
}

#[test]
fn rollups_stay_exact_sqlite() {
    rollups_stay_exact(Backend::Sqlite, 16);
}

#[test]
fn rollups_stay_exact_postgres() {
    rollups_stay_exact(Backend::Postgres, 16);
}

/// A database written before the rollups (schema 3) is upgraded: the rollups are back-filled
/// from its runs, and the dashboard's derived figures from their records.
async fn upgrade_backfills(b: Backend) {
    use wattprint_server::db::Stmt;
    let (raw, url, _dir, mut stmts) = common::older_database(b, 3).await;
    for i in 0..5i64 {
        let rec = Rec::new(&format!("old{i}"), "climate")
            .progress(60.0, 0.5 + i as f64, 0.1)
            .json();
        stmts.push(Stmt::new(
            "INSERT INTO runs (org_id, team_id, project_id, run_id, user_name, status, status_rank, \
             started_at, started_unix, month, duration_s, energy_kwh, facility_kwh, emissions_kg, \
             hostname, record, checkpoints, received_at, updated_at) \
             VALUES (1, 1, 1, ?, ?, 'completed', 1, '2025-03-10T12:00:00Z', 1741608000, '2025-03', \
             60.0, ?, ?, 0.1, 'node-1', ?, 1, 'x', 'x')",
            vec![
                format!("old{i}").into(),
                if i % 2 == 0 { Some("ana".to_string()) } else { None }.into(),
                (0.5 + i as f64).into(),
                ((0.5 + i as f64) * 1.2).into(),
                if i == 4 { "{not json".to_string() } else { rec.to_string() }.into(),
            ],
        ));
    }
    raw.transaction(stmts).await.unwrap();
    drop(raw);
    // The server opens it: migration 4 (rollups), then the derived figures.
    let state = wattprint_server::app::AppState::open(&url, Default::default())
        .await
        .unwrap();
    let store = &state.store;
    assert!(store.rollup_drift().await.unwrap().is_empty());
    let f = wattprint_server::store::RunFilter::new(wattprint_server::store::Scope {
        org_id: 1,
        team_id: None,
        project_id: None,
    });
    let groups = store.dashboard_groups(&f).await.unwrap();
    let runs: i64 = groups.iter().map(|g| g.sums.runs).sum();
    let kwh: f64 = groups.iter().map(|g| g.sums.energy_kwh).sum();
    let gpu: f64 = groups.iter().map(|g| g.sums.gpu_kwh).sum();
    let unreadable: i64 = groups.iter().map(|g| g.sums.unreadable).sum();
    assert_eq!(runs, 5);
    assert!(close(kwh, 0.5 + 1.5 + 2.5 + 3.5 + 4.5));
    // The record's GPU devices: none in Rec's records (one CPU device), so 0; static energy is
    // a quarter of each readable record's energy.
    assert_eq!(gpu, 0.0);
    let st: f64 = groups.iter().map(|g| g.sums.static_kwh).sum();
    assert!(close(st, (0.5 + 1.5 + 2.5 + 3.5) * 0.25), "{st}");
    assert_eq!(unreadable, 1, "the record that is not JSON");
    assert_eq!(store.backfill_derived().await.unwrap(), 0, "done once");
    // On PostgreSQL the back-fill's changes wait in the journal; folded, nothing changes.
    let moved = store.fold_rollups().await.unwrap();
    assert_eq!(moved > 0, b == Backend::Postgres);
    assert!(store.rollup_drift().await.unwrap().is_empty());
    assert_eq!(store.fold_rollups().await.unwrap(), 0);
    let again = store.dashboard_groups(&f).await.unwrap();
    let st2: f64 = again.iter().map(|g| g.sums.static_kwh).sum();
    assert_eq!(st, st2);
}

both!(upgrade_backfills);

/// A database at schema 7 (monthly rollups, on PostgreSQL with changes still in the journal) is
/// upgraded to the per-day rollups: the migration folds the journal into the monthly tables,
/// back-fills the days from `runs`, and from then on the days follow writes (journal and fold
/// on PostgreSQL, triggers on SQLite); a mid-month window reads them.
async fn upgrade_adds_days(b: Backend) {
    use wattprint_server::db::Stmt;
    let (raw, url, _dir, mut stmts) = common::older_database(b, 7).await;
    // Five runs a day and a half apart from 10 March 2025 12:00 UTC, 1 kWh more each.
    for i in 0..5i64 {
        stmts.push(Stmt::new(
            "INSERT INTO runs (org_id, team_id, project_id, run_id, user_name, status, status_rank, \
             started_at, started_unix, month, duration_s, energy_kwh, facility_kwh, emissions_kg, \
             hostname, record, checkpoints, received_at, updated_at, derived) \
             VALUES (1, 1, 1, ?, NULL, 'completed', 1, 'x', ?, '2025-03', \
             60.0, ?, ?, 0.1, 'node-1', '{}', 1, 'x', 'x', 1)",
            vec![
                format!("old{i}").into(),
                (1_741_608_000 + i * 129_600).into(),
                (1.0 + i as f64).into(),
                (1.2 + 1.2 * i as f64).into(),
            ],
        ));
    }
    raw.transaction(stmts).await.unwrap();
    if b == Backend::Postgres {
        let left = raw
            .query("SELECT COUNT(*) FROM rollup_deltas", vec![])
            .await
            .unwrap();
        assert_eq!(
            left[0].i64(0).unwrap(),
            5,
            "the inserts wait in the journal"
        );
    }
    drop(raw);
    let state = wattprint_server::app::AppState::open(&url, Default::default())
        .await
        .unwrap();
    let store = &state.store;
    assert!(store.rollup_drift().await.unwrap().is_empty());
    let days = store
        .db
        .query(
            "SELECT COUNT(*), CAST(SUM(runs) AS BIGINT) FROM rollup_days",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(days[0].i64(0).unwrap(), 5, "one row per day with a run");
    assert_eq!(days[0].i64(1).unwrap(), 5);
    // A later write goes through the new trigger (on PostgreSQL its journal row has a day).
    store
        .db
        .transaction(vec![Stmt::new(
            "UPDATE runs SET energy_kwh = energy_kwh + 10 WHERE run_id = 'old2'",
            vec![],
        )])
        .await
        .unwrap();
    assert!(store.rollup_drift().await.unwrap().is_empty());
    store.fold_rollups().await.unwrap();
    assert!(store.rollup_drift().await.unwrap().is_empty());
    // 11 March 00:00 to 15 March 12:00 (days 11–14 from the per-day rollups, half of 15 March
    // from `runs`): runs 1 (12 March 0:00), 2 (13 March 12:00, now 13 kWh) and 3 (15 March
    // 0:00); run 0 (10 March) and run 4 (16 March 12:00) are outside.
    let mut f = wattprint_server::store::RunFilter::new(wattprint_server::store::Scope {
        org_id: 1,
        team_id: None,
        project_id: None,
    });
    f.since_unix = Some(1_741_651_200);
    f.until_unix = Some(1_741_651_200 + 4 * 86_400 + 43_200);
    let rows = store
        .totals(&f, wattprint_server::store::GroupBy::Team, 10, 0)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].runs, 3);
    assert!(close(rows[0].energy_kwh, 2.0 + 13.0 + 4.0), "{rows:?}");
}

both!(upgrade_adds_days);
