#![allow(clippy::unwrap_used)]
//! Policies (`GET/PUT /policy`) and node energy from agents (`POST /nodes/{node}/energy`,
//! `GET /nodes`), each on SQLite and on PostgreSQL.

mod common;

use common::{assert_error, Backend, Rec, TestServer};
use serde_json::{json, Value};
use wattprint_server::store::Role;

async fn put(s: &TestServer, token: &str, body: &Value) -> (u16, Value) {
    let r = s
        .http
        .put(s.url("/policy"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    common::read(r).await
}

async fn policies_are_the_stricter_of_org_and_team(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, member) = s.token("physics", None, Role::Member).await;
    let (_, admin) = s.token("physics", None, Role::Admin).await;
    let (_, proj_admin) = s.token("physics", Some("p1"), Role::Admin).await;
    let (_, other_admin) = s.token("biology", None, Role::Admin).await;
    let org_admin = s.org_token(Role::Admin).await;

    // Nothing set: an empty policy.
    let (c, v) = s.get(&member, "/policy").await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["team"], "physics");
    assert!(v["policy"]["max_duration_s"].is_null());
    assert!(v["org_policy"].is_null() && v["team_policy"].is_null());

    // The organisation's default: 72 h, 50 kg per run.
    let (c, v) = put(
        &s,
        &org_admin,
        &json!({"max_duration": "72h", "budget_kg_per_run": 50.0}),
    )
    .await;
    assert_eq!(c, 200, "{v}");
    assert!(v["team"].is_null());
    assert_eq!(v["policy"]["max_duration_s"], 259_200.0);
    // Physics tightens the cap, tries to loosen the budget: the stricter of each applies.
    let (c, v) = put(
        &s,
        &admin,
        &json!({"max_duration": "1h", "budget_kg_per_run": 80.0, "budget_action": "warn"}),
    )
    .await;
    assert_eq!(c, 200, "{v}");
    let (c, v) = s.get(&member, "/policy").await;
    assert_eq!(c, 200);
    assert_eq!(v["policy"]["max_duration_s"], 3600.0);
    assert_eq!(v["policy"]["budget_kg_per_run"], 50.0);
    assert_eq!(v["policy"]["budget_action"], "warn");
    assert_eq!(v["team_policy"]["budget_kg_per_run"], 80.0);
    assert_eq!(v["org_policy"]["max_duration_s"], 259_200.0);
    // Biology only has the organisation's default.
    let (_, v) = s.get(&other_admin, "/policy").await;
    assert_eq!(v["policy"]["max_duration_s"], 259_200.0);
    assert!(v["team_policy"].is_null());
    // An organisation token may look at (and set) a team's; a team token not at another's.
    let (c, v) = s.get(&org_admin, "/policy?team=physics").await;
    assert_eq!(
        (c, v["policy"]["max_duration_s"].as_f64()),
        (200, Some(3600.0))
    );
    let nf = s.get(&admin, "/policy?team=biology").await;
    let missing = s.get(&admin, "/policy?team=nosuchteam").await;
    assert_error(&nf, 404, "no team");
    assert_eq!(
        nf.1["detail"].as_str().unwrap().replace("biology", "X"),
        missing.1["detail"]
            .as_str()
            .unwrap()
            .replace("nosuchteam", "X"),
        "the same answer whether the team exists or not"
    );
    let (c, _) = put(
        &s,
        &org_admin,
        &json!({"team": "biology", "max_duration": "2h"}),
    )
    .await;
    assert_eq!(c, 200);
    let (_, v) = s.get(&other_admin, "/policy").await;
    assert_eq!(v["policy"]["max_duration_s"], 7200.0);

    // Who may set it.
    assert_error(&put(&s, &member, &json!({})).await, 403, "admin");
    assert_error(
        &put(&s, &proj_admin, &json!({})).await,
        403,
        "project token",
    );
    assert_error(
        &put(
            &s,
            &admin,
            &json!({"team": "biology", "max_duration": "1s"}),
        )
        .await,
        404,
        "no team",
    );
    // Bad values: 4xx naming the field, nothing changed.
    for (body, needle) in [
        (json!({"max_duration": "soon"}), "max_duration"),
        (json!({"max_duration": "0s"}), "longer than zero"),
        (json!({"max_duration": 5}), "max_duration"),
        (json!({"budget_kg_per_run": -1.0}), "budget_kg_per_run"),
        (json!({"budget_kwh_per_run": 0.0}), "budget_kwh_per_run"),
        (json!({"budget_action": "explode"}), "budget_action"),
        (json!({"max_durration": "1h"}), "max_durration"),
        (json!([1, 2]), "policy"),
    ] {
        let got = put(&s, &admin, &body).await;
        assert_error(&got, 422, needle);
    }
    let (_, v) = s.get(&member, "/policy").await;
    assert_eq!(v["policy"]["max_duration_s"], 3600.0, "unchanged");
    // `{}` clears the team's level; the organisation's applies again.
    let (c, _) = put(&s, &admin, &json!({})).await;
    assert_eq!(c, 200);
    let (_, v) = s.get(&member, "/policy").await;
    assert!(v["team_policy"].is_null());
    assert_eq!(v["policy"]["max_duration_s"], 259_200.0);
    assert_eq!(v["policy"]["budget_action"], Value::Null);
    // No token: 401.
    let r = s.http.get(s.url("/policy")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    s.stop().await;
}
both!(policies_are_the_stricter_of_org_and_team);

async fn policy_reports_exhausted_budgets(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.token("physics", None, Role::Admin).await;
    let (c, v) = s
        .post(&admin, "/budgets", &json!({"kg_per_month": 1.0}))
        .await;
    assert_eq!(c, 201, "{v}");
    let (_, v) = s.get(&admin, "/policy").await;
    assert_eq!(v["budgets"][0]["exhausted"], false);
    assert_eq!(v["budgets"][0]["kg_per_month"], 1.0);
    // A run this month that uses 1.5 kg.
    let now = wattprint_server::now_rfc3339();
    let (c, v) = s
        .post(
            &admin,
            "/runs",
            &Rec::new("big", "p")
                .at(&now)
                .progress(10.0, 2.0, 1.5)
                .json(),
        )
        .await;
    assert_eq!(c, 201, "{v}");
    let (_, v) = s.get(&admin, "/policy").await;
    let bud = &v["budgets"][0];
    assert_eq!(bud["exhausted"], true, "{v}");
    assert!((bud["used_kg"].as_f64().unwrap() - 1.5).abs() < 1e-12);
    assert!((bud["left_kg"].as_f64().unwrap() + 0.5).abs() < 1e-12);
    s.stop().await;
}
both!(policy_reports_exhausted_budgets);

fn report(agent: &str, windows: &[(&str, &[(&str, f64)])]) -> Value {
    json!({
        "agent": agent,
        "windows": windows.iter().map(|(start, devs)| json!({
            "start": start,
            "devices": devs.iter().map(|(id, j)| json!({
                "device_id": id, "kind": id.split(':').next().unwrap(), "joules": j, "emissions_g": j / 100.0
            })).collect::<Vec<_>>()
        })).collect::<Vec<_>>()
    })
}

async fn node_energy_is_idempotent(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    let (_, viewer) = s.token("physics", None, Role::Viewer).await;
    let (_, other) = s.token("biology", None, Role::Member).await;
    let org = s.org_token(Role::Admin).await;
    let w1 = "2025-03-10T10:00:00Z";
    let w2 = "2025-03-10T11:00:00Z";
    // Progress of one agent instance: cumulative values, sent, retried, sent out of order.
    let a = report("agent-a", &[(w1, &[("cpu:0", 100.0), ("ram:0", 10.0)])]);
    let a2 = report(
        "agent-a",
        &[
            (w1, &[("cpu:0", 360.0), ("ram:0", 36.0)]),
            (w2, &[("cpu:0", 5.5), ("ram:0", 0.5)]),
        ],
    );
    let path = "/nodes/gpu-node-1/energy";
    let (c, v) = s.post(&tok, path, &a).await;
    assert_eq!((c, v["changed"].as_i64()), (200, Some(2)), "{v}");
    let (c, v) = s.post(&tok, path, &a2).await;
    assert_eq!((c, v["changed"].as_i64()), (200, Some(4)), "{v}");
    // Retry and a late, older report: nothing changes.
    let (_, v) = s.post(&tok, path, &a2).await;
    assert_eq!(v["changed"], 0);
    let (_, v) = s.post(&tok, path, &a).await;
    assert_eq!(v["changed"], 0);
    // The same window with another time notation is the same window.
    let (_, v) = s
        .post(
            &tok,
            path,
            &report(
                "agent-a",
                &[("2025-03-10T12:00:00+02:00", &[("cpu:0", 300.0)])],
            ),
        )
        .await;
    assert_eq!(v["changed"], 0, "10:00Z written as 12:00+02:00");
    // A restarted agent (new instance) counts on top.
    let (_, v) = s
        .post(
            &tok,
            path,
            &report("agent-b", &[(w2, &[("cpu:0", 1000.0)])]),
        )
        .await;
    assert_eq!(v["changed"], 1);
    // Another team's node of the same name is kept apart.
    let (c, _) = s
        .post(&other, path, &report("agent-z", &[(w1, &[("cpu:0", 7.0)])]))
        .await;
    assert_eq!(c, 200);

    let (c, v) = s.get(&viewer, "/nodes").await;
    assert_eq!(c, 200, "{v}");
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "only the team's own node: {v}");
    let n = &nodes[0];
    assert_eq!(n["node"], "gpu-node-1");
    assert_eq!(n["agents"], 2);
    let cpu = n["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == "cpu:0")
        .unwrap();
    assert_eq!(cpu["joules"], 360.0 + 5.5 + 1000.0);
    assert_eq!(cpu["kind"], "cpu");
    assert_eq!(n["joules"], 360.0 + 36.0 + 5.5 + 0.5 + 1000.0);
    assert_eq!(v["total"]["joules"], n["joules"]);
    // Window filters.
    let (_, v) = s.get(&viewer, "/nodes?since=2025-03-10T11:00:00Z").await;
    assert_eq!(v["total"]["joules"], 5.5 + 0.5 + 1000.0);
    let (_, v) = s.get(&viewer, "/nodes?until=2025-03-10T11:00:00Z").await;
    assert_eq!(v["total"]["joules"], 396.0);
    // The organisation sees both teams'.
    let (_, v) = s.get(&org, "/nodes").await;
    assert_eq!(v["nodes"].as_array().unwrap().len(), 2);
    let (_, v) = s.get(&org, "/nodes?team=biology").await;
    assert_eq!(v["total"]["joules"], 7.0);

    // Refusals: viewer, organisation token, bad bodies; nothing stored.
    assert_error(&s.post(&viewer, path, &a2).await, 403, "member");
    assert_error(&s.post(&org, path, &a2).await, 403, "organisation-wide");
    for (body, needle) in [
        (report("agent-c", &[(w1, &[("cpu:0", -1.0)])]), "joules"),
        (
            report("agent-c", &[("yesterday", &[("cpu:0", 1.0)])]),
            "start",
        ),
        (report("", &[(w1, &[("cpu:0", 1.0)])]), "agent"),
        (
            json!({"agent": "x", "windows": [{"start": w1, "devices": [{"device_id": "d", "kind": "cpu", "joules": "1"}]}]}),
            "joules",
        ),
        (json!({"agent": "x"}), "windows"),
        (json!({"agent": "x", "windows": [], "extra": 1}), "extra"),
    ] {
        let got = s.post(&tok, "/nodes/node-x/energy", &body).await;
        assert_error(&got, 422, needle);
    }
    let got = s
        .post_raw(
            &tok,
            "/nodes/node-x/energy",
            "application/json",
            b"{\"agent\": NaN}".to_vec(),
        )
        .await;
    assert_eq!(got.0, 400);
    let (_, v) = s.get(&viewer, "/nodes?node=node-x").await;
    assert!(v["nodes"].as_array().unwrap().is_empty());
    // SQL metacharacters in names are stored verbatim.
    let weird = "n'; DROP TABLE node_energy; --";
    let enc: String = weird
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let (c, v) = s
        .post(
            &tok,
            &format!("/nodes/{enc}/energy"),
            &report("a'--", &[(w1, &[("cpu:'\"?$1", 1.0)])]),
        )
        .await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["node"], weird);
    let (_, v) = s.get(&viewer, &format!("/nodes?node={enc}")).await;
    assert_eq!(v["nodes"][0]["node"], weird);
    assert_eq!(v["nodes"][0]["devices"][0]["device_id"], "cpu:'\"?$1");
    s.stop().await;
}
both!(node_energy_is_idempotent);
