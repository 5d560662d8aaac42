//! Retention and downsampling of samples, on SQLite and on PostgreSQL: every run's energy is the
//! same before and after (runs' figures bit for bit, their series' sums to 10⁻¹² relative),
//! series stay readable, a second pass changes nothing, samples sent for a downsampled run are
//! not added, and an organisation's own retention overrides the server's.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, Rec, TestServer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use wattprint_server::retention::{self, Retention};
use wattprint_server::store::Role;

/// A run with `minutes` minutes of 5-second samples on two devices (irregular energies).
fn body(id: &str, started: &str, minutes: u32) -> Value {
    let mut b = Rec::new(id, "climate")
        .at(started)
        .progress(f64::from(minutes) * 60.0, 0.5, 0.1)
        .json();
    let mut series = Vec::new();
    for dev in ["cpu:0", "gpu:0"] {
        for i in 0..minutes * 12 {
            let t0 = f64::from(i) * 5.0;
            series.push(json!({"device_id": dev, "t0": t0, "t1": t0 + 5.0,
                               "energy_j": 100.0 + f64::from(i % 7) / 3.0 + f64::from(i) * 0.01}));
        }
    }
    b["series"] = json!(series);
    b
}

/// Per run id: (sample rows, energy of its series, J) from the database.
async fn series(s: &TestServer) -> BTreeMap<String, (i64, f64)> {
    let rows = s
        .state
        .store
        .db
        .query(
            "SELECT r.run_id, COUNT(s.t0), COALESCE(SUM(s.energy_j), 0.0) FROM runs r \
             LEFT JOIN samples s ON s.run_pk = r.pk GROUP BY r.run_id ORDER BY r.run_id",
            vec![],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| (r.text(0).unwrap(), (r.i64(1).unwrap(), r.f64(2).unwrap())))
        .collect()
}

/// The runs' stored figures, exactly.
async fn figures(s: &TestServer) -> Vec<(String, f64, f64, f64)> {
    let rows = s
        .state
        .store
        .db
        .query(
            "SELECT run_id, energy_kwh, emissions_kg, duration_s FROM runs ORDER BY run_id",
            vec![],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.text(0).unwrap(),
                r.f64(1).unwrap(),
                r.f64(2).unwrap(),
                r.f64(3).unwrap(),
            )
        })
        .collect()
}

fn unix(t: &str) -> i64 {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

async fn downsampling_keeps_energy(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    let now = unix("2025-06-01T00:00:00Z");
    // Ended 60 days before `now` (→ 1-minute), 400 days (→ 1-hour), 1 day (kept as is).
    let runs = [
        ("minute", "2025-04-01T10:00:00Z", 30),
        ("hour", "2024-04-01T10:00:00Z", 150),
        ("fresh", "2025-05-30T10:00:00Z", 20),
    ];
    for (id, at, min) in runs {
        let (code, v) = s.post(&tok, "/runs", &body(id, at, min)).await;
        assert_eq!(code, 201, "{v}");
    }
    let before = series(&s).await;
    let figs = figures(&s).await;
    let (_, totals_before) = s.get(&tok, "/totals?group_by=project").await;
    let cfg = Retention {
        batch: 100,
        pause: std::time::Duration::ZERO,
        ..Retention::default()
    };
    let r = retention::pass(&s.state.store, &cfg, now).await.unwrap();
    assert_eq!(r.runs, 2, "{r:?}");
    let after = series(&s).await;
    for (id, (n, e)) in &before {
        let (n2, e2) = after[id];
        assert!(
            (e - e2).abs() <= 1e-12 * e.abs(),
            "{id}: {e} J before, {e2} J after"
        );
        match id.as_str() {
            // 30 min of 5 s samples on two devices: 720 rows → 30 one-minute buckets each.
            "minute" => assert_eq!((*n, n2), (720, 60)),
            // 150 min starting on the hour of the run's timeline: 3 hour buckets each.
            "hour" => assert_eq!((*n, n2), (3600, 6)),
            _ => assert_eq!((*n, n2), (480, 480)),
        }
    }
    // The runs' figures and the totals are untouched (bit for bit).
    assert_eq!(figs, figures(&s).await);
    assert_eq!(
        totals_before,
        s.get(&tok, "/totals?group_by=project").await.1
    );
    assert!(s.state.store.rollup_drift().await.unwrap().is_empty());
    // The series reads back through the API: energy and coverage kept.
    let (code, v) = s.get(&tok, "/runs/minute/samples?limit=1000").await;
    assert_eq!(code, 200, "{v}");
    let got = v["samples"].as_array().unwrap();
    assert_eq!(got.len(), 60);
    let e: f64 = got.iter().map(|x| x["energy_j"].as_f64().unwrap()).sum();
    assert!((e - before["minute"].1).abs() <= 1e-9 * e);
    let cpu: Vec<&Value> = got.iter().filter(|x| x["device_id"] == "cpu:0").collect();
    assert_eq!(cpu[0]["t0"], 0.0);
    assert_eq!(cpu[0]["t1"], 60.0);
    assert_eq!(cpu[29]["t1"], 1800.0);
    // Twice: nothing more to do, nothing changed.
    let again = retention::pass(&s.state.store, &cfg, now).await.unwrap();
    assert_eq!(again, Default::default());
    assert_eq!(after, series(&s).await);
    // Samples sent for a downsampled run are not added (its series is final), whether with
    // the record or alone; the run's figures still advance.
    let mut late = body("minute", "2025-04-01T10:00:00Z", 31);
    late["series"] = json!([{"device_id": "cpu:0", "t0": 1800.0, "t1": 1805.0, "energy_j": 9.0},
                            {"device_id": "cpu:0", "t0": 0.0, "t1": 5.0, "energy_j": 9.0}]);
    let (code, v) = s.post(&tok, "/runs", &late).await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = s
        .post(
            &tok,
            "/runs/minute/samples",
            &json!({"samples": [{"device_id": "cpu:0", "t0": 60.0, "t1": 65.0, "energy_j": 9.0}]}),
        )
        .await;
    assert!(code < 300, "{code} {v}");
    assert_eq!(after["minute"], series(&s).await["minute"]);
    // The organisation's own retention: keep nothing at full resolution.
    let org = s.state.store.org_id("default").await.unwrap().unwrap();
    s.state.store.set_retention(org, 0, 365).await.unwrap();
    assert!(s.state.store.set_retention(org, 10, 5).await.is_err());
    let r = retention::pass(&s.state.store, &cfg, now).await.unwrap();
    assert_eq!(
        r.runs, 1,
        "the fresh run, now past its organisation's 0 days"
    );
    let fresh = series(&s).await["fresh"];
    assert_eq!(fresh.0, 40);
    assert!((fresh.1 - before["fresh"].1).abs() <= 1e-12 * fresh.1);
    s.stop().await;
}
both!(downsampling_keeps_energy);

/// The background task stops with its handle (the server aborts it when it stops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_stops() {
    let s = TestServer::start(Backend::Sqlite).await;
    let task = retention::spawn(s.state.store.clone(), Retention::default()).unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let off = Retention {
        enabled: false,
        ..Retention::default()
    };
    assert!(retention::spawn(s.state.store.clone(), off).is_none());
    s.stop().await;
}
