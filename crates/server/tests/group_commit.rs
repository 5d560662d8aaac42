#![allow(clippy::unwrap_used)]
//! Group commit of uploads (`crates/server/src/group_commit.rs`): a group of uploads written
//! together answers each with its own outcome, keeps the order of one run's uploads, keeps the
//! others when one fails, and answers none as stored when the group's commit fails.

mod common;

use common::Backend;
use wattprint_server::store::{NewRun, Outcome, Sample, Scope, Store};

struct Ids {
    org: i64,
    team: i64,
    project: i64,
}

async fn setup(b: Backend) -> (Store, Ids, Option<tempfile::TempDir>) {
    let (url, dir) = common::database(b).await;
    let store = wattprint_server::admin::open(&url).await.unwrap();
    let org = store.create_org("org").await.unwrap();
    let team = store.create_team(org, "physics").await.unwrap();
    let project = store.ensure_project(org, team, "climate").await.unwrap();
    store.ensure_project(org, team, "other").await.unwrap();
    (store, Ids { org, team, project }, dir)
}

/// An upload of run `id`: `rank` 0 running, 1 completed; cumulative `duration_s` and
/// `energy_kwh`; one sample per device and checkpoint (starting at `duration_s`).
fn upload(ids: &Ids, id: &str, project: &str, rank: i64, d: f64, e: f64) -> (NewRun, Vec<Sample>) {
    let run = NewRun {
        org_id: ids.org,
        team_id: ids.team,
        project: project.into(),
        project_id: (project == "climate").then_some(ids.project),
        run_id: id.into(),
        user: Some("ada".into()),
        status: if rank == 0 { "running" } else { "completed" }.into(),
        status_rank: rank,
        started_at: "2026-03-10T12:00:00Z".into(),
        started_unix: 1_773_144_000,
        ended_at: (rank == 1).then(|| "2026-03-10T13:00:00Z".into()),
        month: "2026-03".into(),
        duration_s: d,
        energy_kwh: e,
        facility_kwh: e * 1.2,
        emissions_kg: e * 0.1,
        hostname: "node-1".into(),
        record: format!("{{\"id\": \"{id}\", \"duration_s\": {d}}}"),
        derived: Default::default(),
        model: None,
    };
    let samples = ["cpu", "gpu0"]
        .iter()
        .map(|dev| Sample {
            device_id: (*dev).into(),
            t0: d,
            t1: d + 10.0,
            energy_j: 100.0,
        })
        .collect();
    (run, samples)
}

fn scope(ids: &Ids) -> Scope {
    Scope {
        org_id: ids.org,
        team_id: Some(ids.team),
        project_id: None,
    }
}

fn outcomes(got: &[anyhow::Result<Outcome>]) -> Vec<String> {
    got.iter()
        .map(|r| match r {
            Ok(o) => o.as_str().to_string(),
            Err(_) => "error".to_string(),
        })
        .collect()
}

async fn samples_of(store: &Store, ids: &Ids, id: &str) -> usize {
    store
        .samples_page(&scope(ids), id, 1000, None)
        .await
        .unwrap()
        .map(|p| p.items.len())
        .unwrap_or(0)
}

async fn a_group_answers_each_upload_in_order(b: Backend) {
    let (store, ids, _dir) = setup(b).await;
    let mut missing = upload(&ids, "broken", "climate", 0, 10.0, 0.1);
    // A project id that does not exist: the database refuses this upload (a foreign key).
    missing.0.project_id = Some(ids.project + 1000);
    let group = vec![
        upload(&ids, "a", "climate", 0, 10.0, 0.1), // created
        upload(&ids, "a", "climate", 0, 20.0, 0.2), // updated: after the one before it
        upload(&ids, "a", "climate", 0, 10.0, 0.1), // stale: older than the one before
        missing,                                    // fails alone
        upload(&ids, "b", "climate", 0, 10.0, 0.1), // created, though after a failure
        upload(&ids, "a", "climate", 0, 20.0, 0.2), // duplicate (a retry)
        upload(&ids, "a", "climate", 1, 30.0, 0.3), // updated: the final record
        upload(&ids, "a", "climate", 0, 40.0, 0.4), // stale: a checkpoint after the final
        upload(&ids, "b", "other", 0, 10.0, 0.1),   // conflict: "b" is climate's
    ];
    let got = store.upsert_runs_group(&group).await.unwrap();
    assert_eq!(
        outcomes(&got),
        [
            "created",
            "updated",
            "stale",
            "error",
            "created",
            "duplicate",
            "updated",
            "stale",
            "conflict"
        ]
    );
    let (a, _) = store.get_run(&scope(&ids), "a").await.unwrap().unwrap();
    assert_eq!(
        (a.status.as_str(), a.duration_s, a.checkpoints),
        ("completed", 30.0, 3)
    );
    assert!(store
        .get_run(&scope(&ids), "broken")
        .await
        .unwrap()
        .is_none());
    // Samples are kept whenever the run is the project's (stale and duplicate uploads too):
    // "a" had samples at 10, 20, 30 and 40 s for two devices.
    assert_eq!(samples_of(&store, &ids, "a").await, 8);
    assert_eq!(samples_of(&store, &ids, "b").await, 2);
    assert_eq!(store.rollup_drift().await.unwrap(), Vec::<String>::new());
}
both!(a_group_answers_each_upload_in_order);

/// PostgreSQL only (SQLite commits each upload on its own): a commit that fails — here a
/// deferred constraint trigger that refuses run "poison" only at commit time — answers every
/// upload of the group with an error and stores none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_commit_fails_stores_and_acknowledges_nothing() {
    let (store, ids, _dir) = setup(Backend::Postgres).await;
    store
        .db
        .transaction(vec![
            wattprint_server::db::Stmt::new(
                "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.run_id = 'poison' THEN RAISE EXCEPTION 'poisoned run'; END IF; \
                 RETURN NULL; END $$",
                vec![],
            ),
            wattprint_server::db::Stmt::new(
                "CREATE CONSTRAINT TRIGGER refuse_poison AFTER INSERT OR UPDATE ON runs \
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
                vec![],
            ),
        ])
        .await
        .unwrap();
    let group = vec![
        upload(&ids, "x", "climate", 0, 10.0, 0.1),
        upload(&ids, "poison", "climate", 0, 10.0, 0.1),
        upload(&ids, "y", "climate", 1, 10.0, 0.1),
    ];
    let got = store.upsert_runs_group(&group).await.unwrap();
    assert_eq!(outcomes(&got), ["error", "error", "error"]);
    let msg = format!("{:#}", got[0].as_ref().unwrap_err());
    assert!(msg.contains("poisoned run"), "{msg}");
    for id in ["x", "poison", "y"] {
        assert!(store.get_run(&scope(&ids), id).await.unwrap().is_none());
        assert_eq!(samples_of(&store, &ids, id).await, 0);
    }
    // Without the poisoned upload the same group commits.
    let got = store
        .upsert_runs_group(&[group[0].clone(), group[2].clone()])
        .await
        .unwrap();
    assert_eq!(outcomes(&got), ["created", "created"]);
    assert_eq!(store.rollup_drift().await.unwrap(), Vec::<String>::new());
}

/// PostgreSQL: uploads of one run sent at once go through the group-commit writers (however
/// they are gathered into batches) and come out in the order they were sent: each is judged
/// against the ones before it. Sent from one task with `join_all`, which polls (and so queues)
/// them in order; a project token's uploads queue without any await before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_sent_together_keep_their_order_through_the_writers() {
    let (store, ids, _dir) = setup(Backend::Postgres).await;
    for round in 0..5 {
        let id = format!("r{round}");
        let group = [
            upload(&ids, &id, "climate", 0, 10.0, 0.1),
            upload(&ids, &id, "climate", 0, 20.0, 0.2),
            upload(&ids, &id, "climate", 0, 10.0, 0.1),
            upload(&ids, &id, "climate", 0, 20.0, 0.2),
            upload(&ids, &id, "climate", 1, 30.0, 0.3),
            upload(&ids, &id, "climate", 0, 40.0, 0.4),
        ];
        let got = futures_util::future::join_all(
            group
                .iter()
                .map(|(run, samples)| store.upsert_run(run, samples)),
        )
        .await;
        assert_eq!(
            outcomes(&got),
            [
                "created",
                "updated",
                "stale",
                "duplicate",
                "updated",
                "stale"
            ]
        );
        assert_eq!(samples_of(&store, &ids, &id).await, 8);
    }
    assert_eq!(store.rollup_drift().await.unwrap(), Vec::<String>::new());
}
