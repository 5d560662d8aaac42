#![allow(clippy::unwrap_used)]
//! A run's samples (`crates/server/src/store_samples.rs`): rows on SQLite, sets of arrays on
//! PostgreSQL, one meaning on both — a sample (device, start) is stored once, the last upload
//! of it wins, whatever the uploads overlap, however they are split, retried or raced, and a
//! listing pages through them in (device, start) order.

mod common;

use common::Backend;
use std::collections::BTreeMap;
use wattprint_server::store::{NewRun, Sample, Scope, Store};

struct Ids {
    org: i64,
    team: i64,
    project: i64,
}

async fn setup(b: Backend) -> (Store, Ids, String, Option<tempfile::TempDir>) {
    let (url, dir) = common::database(b).await;
    let store = wattprint_server::admin::open(&url).await.unwrap();
    let org = store.create_org("org").await.unwrap();
    let team = store.create_team(org, "physics").await.unwrap();
    let project = store.ensure_project(org, team, "climate").await.unwrap();
    (store, Ids { org, team, project }, url, dir)
}

fn scope(ids: &Ids) -> Scope {
    Scope {
        org_id: ids.org,
        team_id: Some(ids.team),
        project_id: None,
    }
}

/// Checkpoint `n` of run `id` (status running, progress growing with `n`).
fn run(ids: &Ids, id: &str, n: u32) -> NewRun {
    let d = f64::from(n) * 10.0;
    NewRun {
        org_id: ids.org,
        team_id: ids.team,
        project: "climate".into(),
        project_id: Some(ids.project),
        run_id: id.into(),
        user: Some("ada".into()),
        status: "running".into(),
        status_rank: 0,
        started_at: "2026-03-10T12:00:00Z".into(),
        started_unix: 1_773_144_000,
        ended_at: None,
        month: "2026-03".into(),
        duration_s: d,
        energy_kwh: d / 1000.0,
        facility_kwh: d / 1000.0,
        emissions_kg: d / 10_000.0,
        hostname: "node-1".into(),
        record: format!("{{\"id\": \"{id}\", \"duration_s\": {d}}}"),
        derived: Default::default(),
        model: None,
    }
}

fn sample(dev: &str, t0: f64, e: f64) -> Sample {
    Sample {
        device_id: dev.into(),
        t0,
        t1: t0 + 1.0,
        energy_j: e,
    }
}

/// Every sample of the run, read page by page (`limit` per page).
async fn all_samples(store: &Store, ids: &Ids, id: &str, limit: usize) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut after = None;
    for _ in 0..100_000 {
        let page = store
            .samples_page(&scope(ids), id, limit, after)
            .await
            .unwrap()
            .unwrap();
        assert!(page.items.len() <= limit);
        out.extend(page.items);
        match page.next {
            Some(c) => after = wattprint_server::store_pages::parse_sample_cursor(&c),
            None => return out,
        }
    }
    panic!("the listing did not end");
}

type Model = BTreeMap<(String, u64), (f64, f64)>;

fn check(got: &[Sample], model: &Model) {
    let want: Vec<(String, f64, f64, f64)> = model
        .iter()
        .map(|((d, t), (t1, e))| (d.clone(), f64::from_bits(*t), *t1, *e))
        .collect();
    let got: Vec<(String, f64, f64, f64)> = got
        .iter()
        .map(|s| (s.device_id.clone(), s.t0, s.t1, s.energy_j))
        .collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
}

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Uploads whose samples overlap stored ones in every way (inside, across the start or end of
/// stored stretches, spanning several, retried as they were, on two devices, through a run
/// upload or the samples endpoint) store each (device, start) once with its last value.
async fn overlapping_uploads_store_each_sample_once(b: Backend) {
    let (store, ids, _url, _dir) = setup(b).await;
    let mut model = Model::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let devices = ["cpu", "gpu0"];
    for n in 0..60u32 {
        let mut batch = Vec::new();
        for dev in devices.iter().take(1 + rng.below(2) as usize) {
            let start = rng.below(400);
            let len = 1 + rng.below(if n % 10 == 9 { 1_500 } else { 40 });
            let step = 1 + rng.below(3);
            for k in 0..len {
                let t0 = (start + k * step) as f64;
                let e = f64::from(n) * 1000.0 + k as f64;
                batch.push(sample(dev, t0, e));
            }
        }
        // Within one upload the last of a (device, start) wins.
        if let Some(first) = batch.first().cloned() {
            batch.push(Sample {
                energy_j: first.energy_j + 0.5,
                ..first
            });
        }
        for s in &batch {
            model.insert((s.device_id.clone(), s.t0.to_bits()), (s.t1, s.energy_j));
        }
        if n % 3 == 0 {
            store
                .add_samples(&scope(&ids), "job-1", &batch)
                .await
                .unwrap();
        } else {
            store
                .upsert_run(&run(&ids, "job-1", n), &batch)
                .await
                .unwrap();
        }
        if n % 7 == 0 {
            // A retry of the same upload changes nothing.
            store
                .upsert_run(&run(&ids, "job-1", n), &batch)
                .await
                .unwrap();
        }
        if n == 0 {
            continue;
        }
        if n % 15 == 0 {
            check(&all_samples(&store, &ids, "job-1", 37).await, &model);
        }
    }
    check(&all_samples(&store, &ids, "job-1", 1000).await, &model);
    check(&all_samples(&store, &ids, "job-1", 1).await[..], &model);
    let sum: f64 = model.values().map(|v| v.1).sum();
    let rows = store
        .db
        .query("SELECT COUNT(*), SUM(energy_j) FROM samples", vec![])
        .await
        .unwrap();
    assert_eq!(rows[0].i64(0).unwrap() as usize, model.len());
    assert!((rows[0].f64(1).unwrap() - sum).abs() < 1e-6 * sum);
    if b == Backend::Postgres {
        // The sets of a device never overlap and hold at most SET_MAX samples each.
        let bad = store
            .db
            .query(
                "SELECT COUNT(*) FROM sample_sets a JOIN sample_sets c ON a.run_pk = c.run_pk \
                 AND a.device_id = c.device_id AND a.t0_last < c.t0_last AND a.t0_last >= c.t0_first",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(bad[0].i64(0).unwrap(), 0);
        let sets = store
            .db
            .query(
                "SELECT MAX(n), CAST(SUM(n) AS BIGINT), COUNT(*), BOOL_AND(n = cardinality(t0) AND n = cardinality(energy_j) \
                 AND t0_first = t0[1] AND t0_last = t0[n]) FROM sample_sets",
                vec![],
            )
            .await
            .unwrap();
        assert!(sets[0].i64(0).unwrap() <= wattprint_server::store_samples::SET_MAX as i64);
        assert_eq!(sets[0].i64(1).unwrap() as usize, model.len());
        assert!(
            sets[0].i64(2).unwrap() < model.len() as i64 / 4,
            "sets hold many samples each"
        );
        assert_eq!(
            sets[0].i64(3).unwrap(),
            1,
            "counts and ends match the arrays"
        );
    }
}
both!(overlapping_uploads_store_each_sample_once);

/// Uploads of one run's overlapping stretches sent at once from two servers on one database
/// (retries racing their originals, each window starting elsewhere) store each sample once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_overlapping_uploads_from_two_servers_store_each_sample_once() {
    let (a, ids, url, _dir) = setup(Backend::Postgres).await;
    let b = wattprint_server::admin::open(&url).await.unwrap();
    let ids = std::sync::Arc::new(ids);
    for round in 0..3u32 {
        let id = format!("race-{round}");
        // The run exists first (the samples endpoint stores nothing for an unknown run).
        a.upsert_run(&run(&ids, &id, 0), &[]).await.unwrap();
        let mut tasks = Vec::new();
        for w in 0..12u32 {
            let store = if w % 2 == 0 { a.clone() } else { b.clone() };
            let ids = ids.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                // Window w: starts 0, 5, 10, … and 20 long: each overlaps its neighbours.
                let batch: Vec<Sample> = (0..20)
                    .flat_map(|k| {
                        let t0 = f64::from(w * 5 + k);
                        [sample("gpu0", t0, t0), sample("gpu1", t0, 2.0 * t0)]
                    })
                    .collect();
                if w % 3 == 2 {
                    store.add_samples(&scope(&ids), &id, &batch).await.unwrap();
                } else {
                    store
                        .upsert_run(&run(&ids, &id, w + 1), &batch)
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let got = all_samples(&a, &ids, &id, 50).await;
        // Starts 0..=74 on each device, each once.
        assert_eq!(got.len(), 150, "{id}");
        let mut seen = std::collections::BTreeSet::new();
        for s in &got {
            assert!(
                seen.insert((s.device_id.clone(), s.t0.to_bits())),
                "{s:?} twice"
            );
            let k = if s.device_id == "gpu0" { 1.0 } else { 2.0 };
            assert_eq!(s.energy_j, k * s.t0);
        }
    }
}

/// Samples stored as rows by version 8 are the same samples, in sets, after the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sample_rows_move_into_sets_on_upgrade() {
    use wattprint_server::db::{migrations, Stmt};
    let (raw, url, _dir, mut stmts) = common::older_database(Backend::Postgres, 8).await;
    for i in 0..3i64 {
        stmts.push(Stmt::new(
            "INSERT INTO runs (org_id, team_id, project_id, run_id, user_name, status, status_rank, \
             started_at, started_unix, month, duration_s, energy_kwh, facility_kwh, emissions_kg, \
             hostname, record, checkpoints, received_at, updated_at, derived) \
             VALUES (1, 1, 1, ?, NULL, 'completed', 1, 'x', 1741608000, '2025-03', \
             60.0, 1.0, 1.2, 0.1, 'node-1', '{}', 1, 'x', 'x', 1)",
            vec![format!("old{i}").into()],
        ));
    }
    // Run 1: 2 500 samples on one device (three sets), 3 on another; run 2: one; run 3: none.
    stmts.push(Stmt::new(
        "INSERT INTO samples (run_pk, device_id, t0, t1, energy_j) \
         SELECT 1, 'gpu0', g, g + 1, g * 0.5 FROM generate_series(2499, 0, -1) g \
         UNION ALL SELECT 1, 'cpu', g, g + 1, 7 FROM generate_series(0, 2) g \
         UNION ALL SELECT 2, 'gpu0', 3.5, 4.5, 9",
        vec![],
    ));
    raw.transaction(stmts).await.unwrap();
    let before = raw
        .query(
            "SELECT run_pk, device_id, t0, t1, energy_j FROM samples ORDER BY 1, 2, 3",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(before.len(), 2_504);
    migrations::migrate(raw.as_ref()).await.unwrap();
    let after = raw
        .query(
            "SELECT run_pk, device_id, t0, t1, energy_j FROM samples ORDER BY 1, 2, 3",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(format!("{before:?}"), format!("{after:?}"));
    let sets = raw
        .query(
            "SELECT run_pk, device_id, t0_first, t0_last, n FROM sample_sets ORDER BY 1, 2, 4",
            vec![],
        )
        .await
        .unwrap();
    let sets: Vec<(i64, String, f64, f64, i64)> = sets
        .iter()
        .map(|r| {
            (
                r.i64(0).unwrap(),
                r.text(1).unwrap(),
                r.f64(2).unwrap(),
                r.f64(3).unwrap(),
                r.i64(4).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sets,
        vec![
            (1, "cpu".into(), 0.0, 2.0, 3),
            (1, "gpu0".into(), 0.0, 999.0, 1000),
            (1, "gpu0".into(), 1000.0, 1999.0, 1000),
            (1, "gpu0".into(), 2000.0, 2499.0, 500),
            (2, "gpu0".into(), 3.5, 3.5, 1),
        ]
    );
    // And the server reads them as before: run 1's listing in pages of 900 crosses the sets.
    let store = wattprint_server::admin::open(&url).await.unwrap();
    let ids = Ids {
        org: 1,
        team: 1,
        project: 1,
    };
    let got = all_samples(&store, &ids, "old0", 900).await;
    assert_eq!(got.len(), 2_503);
    assert!(got
        .windows(2)
        .all(|w| (&w[0].device_id, w[0].t0) < (&w[1].device_id, w[1].t0)));
}
