//! Two server instances on one PostgreSQL database (each with its own connection pool, rate
//! limiter, sessions and caches, as two `wattprint serve` processes behind a load balancer):
//! they migrate at the same moment, take concurrent uploads of the same runs (checkpoints, final
//! records, retries, new projects), deletions and downsampling passes, and nothing is counted
//! twice: rollups exact, totals equal on both and to what was sent, every sample once.
#![allow(clippy::unwrap_used)]

mod common;

use common::{close, Rec};
use serde_json::{json, Value};
use wattprint_server::app::AppState;
use wattprint_server::retention::{self, Retention};
use wattprint_server::store::Role;

struct Instance {
    base: String,
    state: AppState,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn instance(url: &str) -> Instance {
    let limits = wattprint_server::limits::Limits {
        rate_per_s: 0.0,
        ..Default::default()
    };
    let state = AppState::open(url, limits).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let st = state.clone();
    let task = tokio::spawn(async move {
        wattprint_server::serve(listener, st, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Instance {
        base: format!("http://{addr}/api/v1"),
        state,
        stop: tx,
        task,
    }
}

async fn send(http: &reqwest::Client, base: &str, tok: &str, body: &Value) -> u16 {
    http.post(format!("{base}/runs"))
        .bearer_auth(tok)
        .json(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Run `i`'s upload `k` of 4 (three checkpoints, then the final record), with 5 samples each.
fn upload(i: usize, k: usize) -> Value {
    let final_ = k == 3;
    let mut b = Rec::new(&format!("run-{i}"), &format!("proj-{}", i % 4))
        .status(if final_ { "completed" } else { "running" })
        .progress(
            60.0 * (k + 1) as f64,
            0.25 * (k + 1) as f64 + i as f64 / 7.0,
            0.01 * (k + 1) as f64,
        )
        .json();
    b["user"] = json!(format!("user-{}", i % 3));
    let series: Vec<Value> = (0..5)
        .map(|j| {
            let t0 = (k * 5 + j) as f64;
            json!({"device_id": "gpu:0", "t0": t0, "t1": t0 + 1.0, "energy_j": 10.0 + t0})
        })
        .collect();
    b["series"] = json!(series);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_count_nothing_twice() {
    let url = common::fresh_pg_database().await;
    // Both start (and migrate) at once.
    let (a, b) = tokio::join!(instance(&url), instance(&url));
    let store = &a.state.store;
    wattprint_server::admin::create_team(store, "default", "physics")
        .await
        .unwrap();
    let tok = |role: Role| wattprint_server::admin::TokenSpec {
        org: "default".into(),
        team: Some("physics".into()),
        project: None,
        user: None,
        role,
        name: "t".into(),
    };
    let member = wattprint_server::admin::create_token(store, &tok(Role::Member))
        .await
        .unwrap()
        .token;
    let admin = wattprint_server::admin::create_token(store, &tok(Role::Admin))
        .await
        .unwrap()
        .token;
    let http = reqwest::Client::new();
    const RUNS: usize = 24;
    // Every upload goes to both servers at once, and the final record twice more (retries).
    let mut tasks = Vec::new();
    for i in 0..RUNS {
        let (http, member) = (http.clone(), member.clone());
        let (ba, bb) = (a.base.clone(), b.base.clone());
        tasks.push(tokio::spawn(async move {
            for k in 0..4 {
                let body = upload(i, k);
                let (x, y) = tokio::join!(
                    send(&http, &ba, &member, &body),
                    send(&http, &bb, &member, &body)
                );
                assert!(x < 300 && y < 300, "{x} {y}");
            }
            let body = upload(i, 3);
            let (x, y) = tokio::join!(
                send(&http, &bb, &member, &body),
                send(&http, &ba, &member, &body)
            );
            assert!(x == 200 && y == 200, "retries: {x} {y}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Two runs deleted through both servers at once: one deletes, the other finds none.
    for i in [1, 2] {
        let del = |base: String| {
            let (http, admin) = (http.clone(), admin.clone());
            async move {
                http.delete(format!("{base}/runs/run-{i}"))
                    .bearer_auth(admin)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        let (x, y) = tokio::join!(del(a.base.clone()), del(b.base.clone()));
        let mut codes = [x, y];
        codes.sort();
        assert_eq!(codes, [200, 404]);
    }
    let kept: Vec<usize> = (0..RUNS).filter(|i| *i != 1 && *i != 2).collect();
    let want_kwh: f64 = kept.iter().map(|&i| 1.0 + i as f64 / 7.0).sum();
    assert!(store.rollup_drift().await.unwrap().is_empty());
    // Both fold the rollups' journal at once: each row is moved once.
    let (fa, fb) = tokio::join!(a.state.store.fold_rollups(), b.state.store.fold_rollups());
    assert!(fa.unwrap() + fb.unwrap() > 0);
    assert!(store.rollup_drift().await.unwrap().is_empty());
    let left = store
        .db
        .query("SELECT COUNT(*) FROM rollup_deltas", vec![])
        .await
        .unwrap();
    assert_eq!(left[0].i64(0).unwrap(), 0);
    for base in [&a.base, &b.base] {
        let v: Value = http
            .get(format!("{base}/totals?group_by=project"))
            .bearer_auth(&member)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["total"]["runs"], kept.len(), "{v}");
        let kwh = v["total"]["energy_kwh"].as_f64().unwrap();
        assert!(close(kwh, want_kwh), "{kwh} vs {want_kwh}");
        assert_eq!(v["groups"].as_array().unwrap().len(), 4);
    }
    // Every sample once: 4 uploads × 5 samples per run.
    let n = store
        .db
        .query("SELECT COUNT(*), SUM(energy_j) FROM samples", vec![])
        .await
        .unwrap();
    assert_eq!(n[0].i64(0).unwrap(), (kept.len() * 20) as i64);
    let energy = n[0].f64(1).unwrap();
    // Both servers downsample at once (everything: 0 days): each run is merged once.
    let cfg = Retention {
        full_days: 0,
        minute_days: 0,
        pause: std::time::Duration::ZERO,
        ..Retention::default()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp() + 86_400;
    let (ra, rb) = tokio::join!(
        retention::pass(&a.state.store, &cfg, now),
        retention::pass(&b.state.store, &cfg, now)
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.runs + rb.runs, kept.len() as u64, "{ra:?} {rb:?}");
    let n = store
        .db
        .query("SELECT COUNT(*), SUM(energy_j) FROM samples", vec![])
        .await
        .unwrap();
    assert_eq!(
        n[0].i64(0).unwrap(),
        kept.len() as i64,
        "one hour bucket per run"
    );
    assert!((n[0].f64(1).unwrap() - energy).abs() <= 1e-12 * energy);
    assert!(store.rollup_drift().await.unwrap().is_empty());
    for i in [a, b] {
        let _ = i.stop.send(());
        i.task.await.unwrap();
    }
}
