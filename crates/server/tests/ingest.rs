#![allow(clippy::unwrap_used)]
//! Ingestion, totals, budgets and migrations, each on SQLite and on PostgreSQL.

mod common;

use common::{assert_error, close, Backend, Rec, TestServer};
use serde_json::json;
use wattprint_server::store::Role;

async fn ingest_is_idempotent(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    let cp = |d: f64, e: f64| {
        Rec::new("job-1", "climate")
            .status("running")
            .progress(d, e, e * 0.2)
    };
    let mut outcomes = Vec::new();
    let post = |body: serde_json::Value| {
        let s = &s;
        let tok = tok.clone();
        async move {
            let (c, v) = s.post(&tok, "/runs", &body).await;
            assert!(c == 200 || c == 201, "{c} {v}");
            (c, v["outcome"].as_str().unwrap().to_string())
        }
    };
    // First checkpoint three times, second checkpoint three times, final record three times.
    for _ in 0..3 {
        outcomes.push(post(cp(10.0, 1.0).json()).await);
    }
    for _ in 0..3 {
        outcomes.push(post(cp(20.0, 2.0).json()).await);
    }
    let fin = Rec::new("job-1", "climate").progress(30.0, 3.0, 0.6);
    for _ in 0..3 {
        outcomes.push(post(fin.json()).await);
    }
    // A late checkpoint (replayed from a spool after the final record), and one going backwards.
    outcomes.push(post(cp(25.0, 2.5).json()).await);
    outcomes.push(post(cp(40.0, 4.0).json()).await);
    let got: Vec<(u16, &str)> = outcomes.iter().map(|(c, o)| (*c, o.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (201, "created"),
            (200, "duplicate"),
            (200, "duplicate"),
            (200, "updated"),
            (200, "duplicate"),
            (200, "duplicate"),
            (200, "updated"),
            (200, "duplicate"),
            (200, "duplicate"),
            (200, "stale"),
            (200, "stale"),
        ]
    );
    let (_, t) = s.get(&tok, "/totals?group_by=project").await;
    assert_eq!(t["total"]["runs"], 1);
    assert!(
        close(t["total"]["energy_kwh"].as_f64().unwrap(), 3.0),
        "{t}"
    );
    assert!(
        close(t["total"]["emissions_kg"].as_f64().unwrap(), 0.6),
        "{t}"
    );
    assert!(
        close(t["total"]["facility_kwh"].as_f64().unwrap(), 3.6),
        "{t}"
    );
    let (_, r) = s.get(&tok, "/runs/job-1").await;
    assert_eq!(r["status"], "completed");
    assert_eq!(r["checkpoints"], 3);
    assert_eq!(r["record"]["duration_s"], 30.0);

    // Among running checkpoints, a late (older) one never replaces a newer one.
    let c2 = |d: f64, e: f64| {
        Rec::new("job-2", "climate")
            .status("running")
            .progress(d, e, e)
    };
    assert_eq!(post(c2(50.0, 5.0).json()).await.1, "created");
    assert_eq!(post(c2(40.0, 4.0).json()).await.1, "stale");
    assert_eq!(post(c2(60.0, 5.5).json()).await.1, "updated");
    // More time with less energy is inconsistent: ignored.
    assert_eq!(post(c2(70.0, 5.0).json()).await.1, "stale");
    let (_, r) = s.get(&tok, "/runs/job-2").await;
    assert_eq!(r["energy_kwh"], 5.5);
    // A failed or killed ending is final too.
    assert_eq!(
        post(
            Rec::new("job-2", "climate")
                .status("killed")
                .progress(65.0, 5.6, 5.6)
                .json()
        )
        .await
        .1,
        "updated"
    );
    let (_, t) = s.get(&tok, "/totals?group_by=status").await;
    let g = t["groups"].as_array().unwrap();
    assert_eq!(g.len(), 2, "{t}");
    assert_eq!(t["total"]["runs"], 2);

    // Samples: retried and overlapping uploads are stored once per (device, t0).
    let batch = |from: i32, to: i32| json!({"samples": (from..to).map(|i| json!({"device_id": "gpu:0", "t0": i as f64, "t1": (i + 1) as f64, "energy_j": 100.0})).collect::<Vec<_>>()});
    for _ in 0..3 {
        let (c, v) = s.post(&tok, "/runs/job-1/samples", &batch(0, 10)).await;
        assert_eq!(c, 200, "{v}");
    }
    s.post(&tok, "/runs/job-1/samples", &batch(5, 15)).await;
    let mut inline = fin.json();
    inline["series"] = batch(10, 20)["samples"].clone();
    assert_eq!(
        s.post(&tok, "/runs", &inline).await.1["outcome"],
        "duplicate"
    );
    let (_, smp) = s.get(&tok, "/runs/job-1/samples").await;
    let list = smp["samples"].as_array().unwrap();
    assert_eq!(list.len(), 20);
    let total_j: f64 = list.iter().map(|x| x["energy_j"].as_f64().unwrap()).sum();
    assert!(close(total_j, 2000.0));
    // Duplicates inside one batch: the last wins, no error.
    let dup = json!({"samples": [
        {"device_id": "cpu", "t0": 0.0, "t1": 1.0, "energy_j": 1.0},
        {"device_id": "cpu", "t0": 0.0, "t1": 1.0, "energy_j": 2.0}
    ]});
    assert_eq!(s.post(&tok, "/runs/job-1/samples", &dup).await.0, 200);
    assert_eq!(s.count("samples").await, 21);
    s.stop().await;
}
both!(ingest_is_idempotent);

async fn run_cannot_change_project(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    assert_eq!(
        s.post(&tok, "/runs", &Rec::new("r", "a").json()).await.0,
        201
    );
    let got = s
        .post(
            &tok,
            "/runs",
            &Rec::new("r", "b").progress(99.0, 9.0, 9.0).json(),
        )
        .await;
    assert_error(&got, 409, "already belongs to project \"a\"");
    assert_eq!(
        s.count("projects").await,
        1,
        "the refused upload created no project"
    );
    let (_, r) = s.get(&tok, "/runs/r").await;
    assert_eq!(r["project"], "a");
    assert_eq!(r["energy_kwh"], 0.5);
    // Again once project "b" exists (on PostgreSQL a known project takes the one-statement
    // path): refused, and neither the record nor its samples are stored.
    assert_eq!(
        s.post(&tok, "/runs", &Rec::new("other", "b").json())
            .await
            .0,
        201
    );
    let mut moved = Rec::new("r", "b").progress(99.0, 9.0, 9.0).json();
    moved["series"] = json!([{"device_id": "cpu", "t0": 0.0, "t1": 1.0, "energy_j": 5.0}]);
    let got = s.post(&tok, "/runs", &moved).await;
    assert_error(&got, 409, "already belongs to project \"a\"");
    let (_, r) = s.get(&tok, "/runs/r").await;
    assert_eq!(r["project"], "a");
    assert_eq!(r["energy_kwh"], 0.5);
    assert_eq!(s.count("samples").await, 0);
    s.stop().await;
}
both!(run_cannot_change_project);

async fn concurrent_uploads_of_a_new_run_lose_nothing(b: Backend) {
    // 16 agents upload the same new run at once (a retry storm), each with its own samples, in
    // a project the server already knows (on PostgreSQL: the one-statement path, whose snapshot
    // cannot see a run another upload creates meanwhile; it must then fall back, not drop).
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    assert_eq!(
        s.post(&tok, "/runs", &Rec::new("warm-up", "climate").json())
            .await
            .0,
        201
    );
    for round in 0..5 {
        let id = format!("storm-{round}");
        let rec = Rec::new(&id, "climate").json();
        let mut uploads = tokio::task::JoinSet::new();
        for i in 0..16 {
            let mut body = rec.clone();
            body["series"] = json!([{"device_id": "cpu", "t0": f64::from(i), "t1": f64::from(i) + 1.0, "energy_j": 1.0}]);
            let req = reqwest::Client::new()
                .post(s.url("/runs"))
                .bearer_auth(&tok)
                .json(&body);
            uploads.spawn(async move {
                let (c, v) = common::read(req.send().await.unwrap()).await;
                assert!(c == 200 || c == 201, "{c} {v}");
                v["outcome"].as_str().unwrap().to_string()
            });
        }
        let outcomes: Vec<String> = uploads.join_all().await;
        assert_eq!(
            outcomes.iter().filter(|o| *o == "created").count(),
            1,
            "{outcomes:?}"
        );
        assert!(
            outcomes.iter().all(|o| o == "created" || o == "duplicate"),
            "{outcomes:?}"
        );
        let (_, smp) = s.get(&tok, &format!("/runs/{id}/samples")).await;
        assert_eq!(smp["samples"].as_array().unwrap().len(), 16, "{smp}");
        let (_, r) = s.get(&tok, &format!("/runs/{id}")).await;
        assert_eq!(r["checkpoints"], 1);
    }
    s.stop().await;
}
both!(concurrent_uploads_of_a_new_run_lose_nothing);

async fn totals_group_correctly(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, phys) = s.token("physics", None, Role::Member).await;
    let (_, bio) = s.token("biology", None, Role::Member).await;
    let org = s.org_token(Role::Viewer).await;
    // (team token, id, project, started, kWh, kg, user)
    let runs = [
        (
            &phys,
            "p1",
            "climate",
            "2025-01-05T10:00:00Z",
            1.0,
            0.1,
            "ana",
        ),
        (
            &phys,
            "p2",
            "climate",
            "2025-01-31T23:59:59Z",
            2.0,
            0.2,
            "ben",
        ),
        (
            &phys,
            "p3",
            "fluids",
            "2025-02-01T00:00:00Z",
            4.0,
            0.4,
            "ana",
        ),
        // An offset time: 2025-02-28T23:30-02:00 is 2025-03-01T01:30Z, so March.
        (
            &phys,
            "p4",
            "fluids",
            "2025-02-28T23:30:00-02:00",
            8.0,
            0.8,
            "ana",
        ),
        (
            &bio,
            "b1",
            "genomes",
            "2025-01-10T00:00:00Z",
            16.0,
            1.6,
            "cy",
        ),
        (
            &bio,
            "b2",
            "climate",
            "2025-02-10T00:00:00Z",
            32.0,
            3.2,
            "cy",
        ),
    ];
    for (tok, id, project, at, kwh, kg, user) in runs {
        let mut body = Rec::new(id, project).at(at).progress(100.0, kwh, kg).json();
        body["user"] = json!(user);
        assert_eq!(s.post(tok, "/runs", &body).await.0, 201);
    }
    let groups = |v: &serde_json::Value| -> Vec<(String, Option<String>, i64, f64, f64)> {
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["key"].as_str().unwrap_or("<null>").to_string(),
                    g["team"].as_str().map(str::to_string),
                    g["runs"].as_i64().unwrap(),
                    g["energy_kwh"].as_f64().unwrap(),
                    g["emissions_kg"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let find = |gs: &[(String, Option<String>, i64, f64, f64)], key: &str, team: Option<&str>| {
        gs.iter()
            .find(|g| g.0 == key && (team.is_none() || g.1.as_deref() == team))
            .cloned()
            .unwrap_or_else(|| panic!("no group {key} {team:?} in {gs:?}"))
    };
    // Per project, across teams (an organisation token): "climate" exists in both teams.
    let (_, v) = s.get(&org, "/totals?group_by=project").await;
    let g = groups(&v);
    assert_eq!(g.len(), 4, "{v}");
    let c = find(&g, "climate", Some("physics"));
    assert_eq!(c.2, 2);
    assert!(close(c.3, 3.0) && close(c.4, 0.3));
    let c = find(&g, "climate", Some("biology"));
    assert_eq!((c.2, c.3), (1, 32.0));
    assert!(close(find(&g, "fluids", None).3, 12.0));
    assert_eq!(v["total"]["runs"], 6);
    assert!(close(v["total"]["energy_kwh"].as_f64().unwrap(), 63.0));
    // Per team.
    let (_, v) = s.get(&org, "/totals?group_by=team").await;
    let g = groups(&v);
    assert!(close(find(&g, "physics", None).3, 15.0));
    assert!(close(find(&g, "biology", None).4, 4.8));
    // Per month (UTC months of started_at).
    let (_, v) = s.get(&org, "/totals?group_by=month").await;
    let g = groups(&v);
    assert_eq!(
        g.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        vec!["2025-01", "2025-02", "2025-03"]
    );
    assert!(close(find(&g, "2025-01", None).3, 19.0));
    assert!(close(find(&g, "2025-02", None).3, 36.0));
    assert!(close(find(&g, "2025-03", None).3, 8.0));
    // Per user, within one team's token: only that team's runs.
    let (_, v) = s.get(&phys, "/totals?group_by=user").await;
    let g = groups(&v);
    assert_eq!(g.len(), 2);
    assert!(close(find(&g, "ana", None).3, 13.0));
    assert!(close(find(&g, "ben", None).3, 2.0));
    // Filters: since/until, project, user, team.
    let (_, v) = s
        .get(
            &org,
            "/totals?group_by=org&since=2025-02-01&until=2025-03-01",
        )
        .await;
    assert_eq!(v["total"]["runs"], 2, "{v}");
    assert!(close(v["total"]["energy_kwh"].as_f64().unwrap(), 36.0));
    let (_, v) = s.get(&org, "/totals?project=climate&team=physics").await;
    assert_eq!(v["total"]["runs"], 2);
    let (_, v) = s.get(&org, "/runs?user=cy&limit=1").await;
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    assert_eq!(v["runs"][0]["run_id"], "b2", "newest first");
    let (_, v) = s.get(&org, "/runs?user=cy&limit=1&offset=1").await;
    assert_eq!(v["runs"][0]["run_id"], "b1");
    s.stop().await;
}
both!(totals_group_correctly);

async fn budgets_track_this_month(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.token("physics", None, Role::Admin).await;
    let now = wattprint_server::now_rfc3339();
    let month = &now[..7];
    s.post(
        &admin,
        "/runs",
        &Rec::new("a", "climate")
            .at(&now)
            .progress(1.0, 1.0, 2.5)
            .json(),
    )
    .await;
    s.post(
        &admin,
        "/runs",
        &Rec::new("b", "fluids")
            .at(&now)
            .progress(1.0, 1.0, 1.0)
            .json(),
    )
    .await;
    s.post(
        &admin,
        "/runs",
        &Rec::new("old", "climate")
            .at("2020-01-01T00:00:00Z")
            .progress(1.0, 1.0, 100.0)
            .json(),
    )
    .await;
    let (c, team) = s
        .post(&admin, "/budgets", &json!({"kg_per_month": 10.0}))
        .await;
    assert_eq!(c, 201, "{team}");
    assert!(close(team["used_kg"].as_f64().unwrap(), 3.5), "{team}");
    assert!(close(team["left_kg"].as_f64().unwrap(), 6.5));
    assert_eq!(team["month"], json!(month));
    let (c, proj) = s
        .post(
            &admin,
            "/budgets",
            &json!({"project": "climate", "kg_per_month": 2.0, "name": "climate cap"}),
        )
        .await;
    assert_eq!(c, 201);
    assert!(
        close(proj["left_kg"].as_f64().unwrap(), -0.5),
        "over budget"
    );
    // Replacing, not duplicating.
    let (c, again) = s
        .post(&admin, "/budgets", &json!({"kg_per_month": 20.0}))
        .await;
    assert_eq!(c, 200);
    assert_eq!(again["id"], team["id"]);
    let (_, list) = s.get(&admin, "/budgets").await;
    assert_eq!(list["budgets"].as_array().unwrap().len(), 2);
    let (_, jan) = s.get(&admin, "/budgets?month=2020-01").await;
    let climate = jan["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["project"] == "climate")
        .unwrap()
        .clone();
    assert!(close(climate["used_kg"].as_f64().unwrap(), 100.0));
    // Invalid budgets.
    assert_error(
        &s.post(&admin, "/budgets", &json!({"kg_per_month": -1.0}))
            .await,
        422,
        "kg_per_month",
    );
    assert_error(
        &s.post(
            &admin,
            "/budgets",
            &json!({"project": "nope", "kg_per_month": 1.0}),
        )
        .await,
        422,
        "no project",
    );
    assert_error(
        &s.post(
            &admin,
            "/budgets",
            &json!({"kg_per_month": 1.0, "colour": "red"}),
        )
        .await,
        422,
        "colour",
    );
    assert_error(
        &s.post(
            &admin,
            "/budgets",
            &json!({"team": "biology", "kg_per_month": 1.0}),
        )
        .await,
        403,
        "biology",
    );
    let id = proj["id"].as_i64().unwrap();
    assert_eq!(s.delete(&admin, &format!("/budgets/{id}")).await.0, 204);
    assert_eq!(s.delete(&admin, &format!("/budgets/{id}")).await.0, 404);
    assert_eq!(s.delete(&admin, "/budgets/abc").await.0, 404);
    s.stop().await;
}
both!(budgets_track_this_month);

async fn migrations_apply_once_and_refuse_newer(b: Backend) {
    let (url, _dir) = common::database(b).await;
    let db = wattprint_server::db::open(&url).await.unwrap();
    let v = wattprint_server::db::migrations::current_version(db.as_ref())
        .await
        .unwrap();
    assert_eq!(v, wattprint_server::db::migrations::latest_version());
    // Opening again applies nothing (the default organisation is not duplicated).
    let db2 = wattprint_server::db::open(&url).await.unwrap();
    let rows = db2
        .query("SELECT COUNT(*) FROM orgs", vec![])
        .await
        .unwrap();
    assert_eq!(rows[0].i64(0).unwrap(), 1);
    let rows = db2
        .query("SELECT COUNT(*) FROM schema_migrations", vec![])
        .await
        .unwrap();
    assert_eq!(rows[0].i64(0).unwrap(), v);
    // A database from a newer wattprint is refused with a clear message.
    db2.transaction(vec![wattprint_server::db::Stmt::new(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        vec![
            999i64.into(),
            "future".into(),
            "2099-01-01T00:00:00Z".into(),
        ],
    )])
    .await
    .unwrap();
    let err = wattprint_server::db::open(&url).await.err().unwrap();
    assert!(err.to_string().contains("newer"), "{err:#}");
}
both!(migrations_apply_once_and_refuse_newer);

async fn openapi_and_health(b: Backend) {
    let s = TestServer::start(b).await;
    let r = s.http.get(s.url("/openapi.json")).send().await.unwrap();
    let (c, doc) = common::read(r).await;
    assert_eq!(c, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for (m, p) in wattprint_server::app::ROUTES {
        assert!(doc["paths"][p][m].is_object(), "{m} {p} undocumented");
    }
    let r = s.http.get(s.url("/health")).send().await.unwrap();
    let (c, h) = common::read(r).await;
    assert_eq!(c, 200);
    let want = match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(h["database"], want);
    assert_eq!(
        h["schema_version"],
        wattprint_server::db::migrations::latest_version()
    );
    s.stop().await;
}
both!(openapi_and_health);

#[tokio::test]
async fn unreachable_postgres_is_a_clear_error() {
    // A loopback port nobody listens on (bound then released).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("postgres://wattprint:hunter2@127.0.0.1:{port}/x");
    let err = wattprint_server::db::open(&url).await.err().unwrap();
    let msg = format!("{err:#}");
    assert!(msg.contains("cannot connect to PostgreSQL"), "{msg}");
    assert!(!msg.contains("hunter2"), "password leaked: {msg}");
    let err = wattprint_server::db::open("mysql://x").await.err().unwrap();
    assert!(err.to_string().contains("sqlite://"), "{err}");
}
