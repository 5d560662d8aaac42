#![allow(clippy::unwrap_used)]
//! Security tests, each on SQLite and on PostgreSQL: authentication, isolation between teams,
//! revocation, roles, hostile and malformed input, limits. The real server on loopback.

mod common;

use common::{assert_error, close, Backend, Rec, TestServer};
use serde_json::{json, Value};
use std::time::Duration;
use wattprint_server::limits::Limits;
use wattprint_server::store::Role;

async fn no_token_is_401(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    s.post(&tok, "/runs", &Rec::new("r1", "p").json()).await;
    for (method, path) in [
        ("GET", "/runs"),
        ("GET", "/runs/r1"),
        ("GET", "/totals"),
        ("GET", "/budgets"),
        ("GET", "/me"),
        ("POST", "/runs"),
    ] {
        let req = match method {
            "GET" => s.http.get(s.url(path)),
            _ => s.http.post(s.url(path)).json(&Rec::new("r2", "p").json()),
        };
        let r = req.send().await.unwrap();
        assert_eq!(
            r.headers().get("www-authenticate").unwrap(),
            "Bearer",
            "{path}"
        );
        let got = common::read(r).await;
        assert_error(&got, 401, "Authorization");
        // Not a bearer token, an unknown token, a token of the right shape that does not exist.
        for h in [
            "Basic dXNlcjpwYXNz".to_string(),
            "Bearer ".to_string(),
            "Bearer nonsense".to_string(),
            format!("Bearer wpt_{}", "0".repeat(64)),
        ] {
            let r = s
                .http
                .get(s.url(path))
                .header("authorization", h.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{path} with {h:?}");
        }
    }
    assert_eq!(
        s.count("runs").await,
        1,
        "the unauthenticated POST stored nothing"
    );
    // Health and the API description need no token.
    s.assert_up().await;
    let r = s.http.get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}
both!(no_token_is_401);

async fn other_team_sees_nothing(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, a) = s.token("alpha", None, Role::Admin).await;
    let (_, bt) = s.token("beta", None, Role::Admin).await;
    let mut rec = Rec::new("secret-run", "alpha-proj");
    rec.hostname = "alpha-node".into();
    assert_eq!(s.post(&a, "/runs", &rec.json()).await.0, 201);
    assert_eq!(
        s.post(&a, "/budgets", &json!({"kg_per_month": 5.0}))
            .await
            .0,
        201
    );

    // Reading another team's run is answered exactly like reading a run that does not exist.
    let theirs = s.get(&bt, "/runs/secret-run").await;
    let absent = s.get(&bt, "/runs/no-such-run").await;
    assert_eq!(theirs.0, 404);
    assert_eq!(
        theirs.1["detail"]
            .as_str()
            .unwrap()
            .replace("secret-run", "X"),
        absent.1["detail"]
            .as_str()
            .unwrap()
            .replace("no-such-run", "X")
    );
    assert_eq!(s.get(&bt, "/runs/secret-run/samples").await.0, 404);
    let add = s
        .post(
            &bt,
            "/runs/secret-run/samples",
            &json!({"samples": [{"device_id": "cpu", "t0": 0.0, "t1": 1.0, "energy_j": 5.0}]}),
        )
        .await;
    assert_eq!(add.0, 404);
    assert_eq!(s.count("samples").await, 0);
    // Listings, totals and budgets show nothing of alpha, even when asked by name.
    let (c, v) = s.get(&bt, "/runs?team=alpha").await;
    assert_eq!(c, 200);
    assert_eq!(v["runs"].as_array().unwrap().len(), 0);
    let (_, v) = s.get(&bt, "/runs").await;
    assert_eq!(v["runs"].as_array().unwrap().len(), 0);
    let (_, v) = s.get(&bt, "/totals?group_by=team").await;
    assert_eq!(v["total"]["runs"], 0);
    assert_eq!(v["groups"].as_array().unwrap().len(), 0);
    let (_, v) = s.get(&bt, "/budgets").await;
    assert_eq!(v["budgets"].as_array().unwrap().len(), 0);
    let (_, abud) = s.get(&a, "/budgets").await;
    let bid = abud["budgets"][0]["id"].as_i64().unwrap();
    assert_eq!(s.delete(&bt, &format!("/budgets/{bid}")).await.0, 404);
    // Beta cannot revoke alpha's tokens either.
    let (_, alist) = s.get(&bt, "/tokens").await;
    assert!(alist["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["team"] == "beta"));
    let a_id = s.get(&a, "/me").await.1["token"]["id"].as_i64().unwrap();
    assert_eq!(s.delete(&bt, &format!("/tokens/{a_id}")).await.0, 404);
    assert_eq!(s.get(&a, "/me").await.0, 200);

    // Beta may use the same run id: it is a different run; alpha's is untouched.
    let mut mine = Rec::new("secret-run", "beta-proj");
    mine.hostname = "beta-node".into();
    assert_eq!(s.post(&bt, "/runs", &mine.json()).await.0, 201);
    let (_, got) = s.get(&a, "/runs/secret-run").await;
    assert_eq!(got["hostname"], "alpha-node");
    assert_eq!(got["team"], "alpha");
    let (_, got) = s.get(&bt, "/runs/secret-run").await;
    assert_eq!(got["hostname"], "beta-node");

    // A project token sees only its project and uploads only to it.
    let (_, pt) = s.token("alpha", Some("other-proj"), Role::Member).await;
    assert_eq!(s.get(&pt, "/runs/secret-run").await.0, 404);
    let (_, v) = s.get(&pt, "/totals").await;
    assert_eq!(v["total"]["runs"], 0);
    let r = s
        .post(&pt, "/runs", &Rec::new("x", "alpha-proj").json())
        .await;
    assert_error(&r, 403, "scoped to project");
    assert_eq!(
        s.post(&pt, "/runs", &Rec::new("x", "other-proj").json())
            .await
            .0,
        201
    );
    // An organisation-wide viewer reads every team but cannot write.
    let org = s.org_token(Role::Viewer).await;
    let (_, v) = s.get(&org, "/totals?group_by=team").await;
    assert_eq!(v["total"]["runs"], 3);
    let org_admin = s.org_token(Role::Admin).await;
    let r = s
        .post(&org_admin, "/runs", &Rec::new("y", "p").json())
        .await;
    assert_error(&r, 403, "organisation-wide");
    s.stop().await;
}
both!(other_team_sees_nothing);

async fn revoked_token_is_401(b: Backend) {
    let s = TestServer::start(b).await;
    let (id, tok) = s.token("physics", None, Role::Member).await;
    assert_eq!(s.get(&tok, "/runs").await.0, 200);
    let rec = wattprint_server::admin::revoke_token(&s.state.store, id)
        .await
        .unwrap();
    assert!(rec.revoked_at.is_some());
    let got = s.get(&tok, "/runs").await;
    assert_error(&got, 401, "revoked");
    let got = s.post(&tok, "/runs", &Rec::new("r", "p").json()).await;
    assert_error(&got, 401, "revoked");
    assert_eq!(s.count("runs").await, 0);

    // Revocation through the API by a team admin.
    let (_, admin) = s.token("physics", None, Role::Admin).await;
    let (id2, tok2) = s.token("physics", None, Role::Viewer).await;
    assert_eq!(s.get(&tok2, "/runs").await.0, 200);
    assert_eq!(s.delete(&admin, &format!("/tokens/{id2}")).await.0, 204);
    assert_error(&s.get(&tok2, "/runs").await, 401, "revoked");
    // Revoking an unknown id is an error, not a silent success.
    assert!(
        wattprint_server::admin::revoke_token(&s.state.store, 999_999)
            .await
            .is_err()
    );
    s.stop().await;
}
both!(revoked_token_is_401);

async fn roles_are_enforced(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, viewer) = s.token("physics", None, Role::Viewer).await;
    let (_, member) = s.token("physics", None, Role::Member).await;
    let (_, admin) = s.token("physics", None, Role::Admin).await;
    let r = s.post(&viewer, "/runs", &Rec::new("r", "p").json()).await;
    assert_error(&r, 403, "role viewer");
    assert_eq!(s.count("runs").await, 0);
    assert_eq!(
        s.post(&member, "/runs", &Rec::new("r", "p").json()).await.0,
        201
    );
    assert_eq!(s.get(&viewer, "/runs/r").await.0, 200);
    let r = s
        .post(&viewer, "/runs/r/samples", &json!({"samples": []}))
        .await;
    assert_eq!(r.0, 403);
    assert_error(
        &s.post(&member, "/budgets", &json!({"kg_per_month": 1.0}))
            .await,
        403,
        "admin",
    );
    assert_eq!(s.get(&member, "/tokens").await.0, 403);
    assert_eq!(
        s.post(&admin, "/budgets", &json!({"kg_per_month": 1.0}))
            .await
            .0,
        201
    );
    // Tokens made through the API: shown once, never listed with the secret, no escalation.
    let (c, created) = s
        .post(&admin, "/tokens", &json!({"name": "ci", "role": "member"}))
        .await;
    assert_eq!(c, 201, "{created}");
    let secret = created["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("wpt_"));
    assert_eq!(s.get(&secret, "/me").await.1["token"]["role"], "member");
    let (_, list) = s.get(&admin, "/tokens").await;
    let text = list.to_string();
    assert!(!text.contains(&secret), "a listing leaked a secret");
    assert!(!text.contains(&wattprint_server::auth::hash_token(&secret)));
    assert!(text.contains(&secret[..12]), "the prefix identifies it");
    // The hash, not the secret, is what the database holds.
    let rows = s
        .state
        .store
        .db
        .query("SELECT hash, prefix FROM api_tokens", vec![])
        .await
        .unwrap();
    assert!(rows.iter().all(|r| !r.text(0).unwrap().contains("wpt_")));
    let (_, member_admin_try) = s
        .post(&member, "/tokens", &json!({"name": "x", "role": "admin"}))
        .await;
    assert_eq!(member_admin_try["error"], "forbidden");
    s.stop().await;
}
both!(roles_are_enforced);

/// Every bad body is a 4xx JSON error naming the problem; the server keeps answering; nothing is
/// stored.
async fn bad_input_is_rejected_and_nothing_stored(b: Backend) {
    let limits = Limits {
        max_body_bytes: 256 * 1024,
        ..Limits::default()
    };
    let s = TestServer::with_limits(b, limits).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    let good = Rec::new("r1", "p").json();
    let with = |path: &[&str], v: Value| {
        let mut x = good.clone();
        let mut cur = &mut x;
        for k in &path[..path.len() - 1] {
            cur = &mut cur[*k];
        }
        cur[path[path.len() - 1]] = v;
        x
    };
    let json_cases: Vec<(Value, u16, &str)> = vec![
        (
            with(&["energy_kwh", "total"], json!(-1.0)),
            422,
            "energy_kwh.total",
        ),
        (with(&["energy_kwh", "gpu"], json!(-0.5)), 422, "negative"),
        (
            with(&["emissions_kg", "total"], json!(-3)),
            422,
            "emissions_kg.total",
        ),
        (
            with(&["energy_kwh", "total"], json!("lots")),
            422,
            "energy_kwh.total",
        ),
        (with(&["duration_s"], json!(-1)), 422, "duration_s"),
        (with(&["duration_s"], json!(null)), 422, "duration_s"),
        (with(&["status"], json!("exploded")), 422, "status"),
        (with(&["schema"], json!("wattprint.run/9")), 422, "schema"),
        (with(&["id"], json!("")), 422, "id"),
        (with(&["id"], json!("a\nb")), 422, "control"),
        (with(&["id"], json!("x".repeat(129))), 422, "limit is 128"),
        (with(&["project"], json!(42)), 422, "project"),
        (
            with(&["started_at"], json!("last tuesday")),
            422,
            "started_at",
        ),
        (with(&["pue"], json!(0.5)), 422, "pue"),
        (with(&["devices"], json!([{"id": "cpu"}])), 422, "devices"),
        (
            with(
                &["devices"],
                json!([{"id": "cpu", "kind": "cpu", "method": "rapl", "name": "c",
                "energy_kwh": -1.0, "avg_power_w": 1.0, "machine_energy_kwh": 1.0}]),
            ),
            422,
            "devices[0].energy_kwh",
        ),
        (with(&["tags"], json!({"k": "v\u{0}"})), 422, "NUL"),
        (with(&["tags"], json!(["not", "a", "map"])), 422, "tags"),
        (with(&["command"], json!("python train.py")), 422, "command"),
        (
            with(&["host", "hostname"], json!(["h"])),
            422,
            "host.hostname",
        ),
        (
            with(
                &["series"],
                json!([{"device_id": "cpu", "t0": 0.0, "t1": 1.0, "energy_j": -2.0}]),
            ),
            422,
            "series[0].energy_j",
        ),
        (
            with(
                &["series"],
                json!([{"device_id": "cpu", "t0": 5.0, "t1": 1.0, "energy_j": 2.0}]),
            ),
            422,
            "before t0",
        ),
        (with(&["series"], json!("many")), 422, "series"),
        (with(&["user"], json!(7)), 422, "user"),
        (json!([1, 2, 3]), 422, "object"),
        (json!("a string"), 422, "object"),
        (json!({}), 422, "run record"),
    ];
    for (body, status, needle) in &json_cases {
        let got = s.post(&tok, "/runs", body).await;
        assert_error(&got, *status, needle);
        s.assert_up().await;
    }
    // Bodies that are not JSON at all, or JSON with numbers JSON cannot carry.
    let text = good.to_string();
    let raw_cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (b"{".to_vec(), "application/json", 400, "malformed JSON"),
        (b"".to_vec(), "application/json", 400, "malformed JSON"),
        (
            text.replace("\"duration_s\":60.0", "\"duration_s\":NaN")
                .into_bytes(),
            "application/json",
            400,
            "malformed JSON",
        ),
        (
            text.replace("\"duration_s\":60.0", "\"duration_s\":1e999")
                .into_bytes(),
            "application/json",
            400,
            "malformed JSON",
        ),
        (
            text.replace("\"duration_s\":60.0", "\"duration_s\":Infinity")
                .into_bytes(),
            "application/json",
            400,
            "malformed JSON",
        ),
        (
            vec![0xff, 0xfe, 0x00],
            "application/json",
            400,
            "malformed JSON",
        ),
        (
            text.clone().into_bytes(),
            "text/plain",
            415,
            "application/json",
        ),
        (
            text.clone().into_bytes(),
            "application/x-www-form-urlencoded",
            415,
            "Content-Type",
        ),
    ];
    assert!(text.contains("\"duration_s\":60.0"), "fixture changed");
    for (body, ct, status, needle) in raw_cases {
        let got = s.post_raw(&tok, "/runs", ct, body).await;
        assert_error(&got, status, needle);
        s.assert_up().await;
    }
    // An oversized body (1 MiB against a 256 KiB limit): 413.
    let mut big = good.clone();
    big["warnings"] = json!(["w".repeat(1024 * 1024)]);
    let got = s.post(&tok, "/runs", &big).await;
    assert_error(&got, 413, "limit");
    s.assert_up().await;
    let mut big = json!({"samples": []});
    big["samples"] = Value::Array(
        (0..20_000)
            .map(|i| json!({"device_id": "cpu", "t0": i, "t1": i + 1, "energy_j": 1.0}))
            .collect(),
    );
    let got = s.post(&tok, "/runs/r1/samples", &big).await;
    assert_error(&got, 413, "limit");
    // Bad query strings.
    assert_error(
        &s.get(&tok, "/totals?group_by=planet").await,
        400,
        "group_by",
    );
    assert_error(&s.get(&tok, "/runs?since=tomorrow").await, 400, "since");
    assert_error(&s.get(&tok, "/runs?limit=abc").await, 400, "query");
    assert_error(&s.get(&tok, "/runs?limit=0").await, 400, "limit");
    assert_error(&s.get(&tok, "/runs?status=lost").await, 400, "status");
    assert_error(&s.get(&tok, "/budgets?month=2025-13").await, 400, "YYYY-MM");
    // Unknown routes and methods are JSON errors too.
    assert_error(&s.get(&tok, "/nowhere").await, 404, "no route");
    assert_error(&s.delete(&tok, "/runs").await, 405, "not allowed");

    // Nothing was stored by any of it; a good request still works.
    assert_eq!(s.count("runs").await, 0);
    assert_eq!(s.count("samples").await, 0);
    assert_eq!(s.count("projects").await, 0);
    assert_eq!(s.post(&tok, "/runs", &good).await.0, 201);
    let (_, t) = s.get(&tok, "/totals").await;
    assert_eq!(t["total"]["runs"], 1);
    s.stop().await;
}
both!(bad_input_is_rejected_and_nothing_stored);

/// Strings full of SQL (and other) metacharacters are stored and read back verbatim.
async fn sql_metacharacters_stored_verbatim(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    let nasty = [
        "'; DROP TABLE runs; --",
        "\" OR \"1\"=\"1",
        "Robert'); DELETE FROM api_tokens WHERE ('a'='a",
        "100% _wild_ \\ back\\slash",
        "$1 ? ?? :name @p {id}",
        // Right-to-left script (bidirectional controls themselves are refused in names: see
        // tests/hardening.rs).
        "é 中文 🚀 עברית",
        "a/b/../c?x=1&y=2#frag",
    ];
    for (i, n) in nasty.iter().enumerate() {
        let mut rec = Rec::new(&format!("run {i} {n}"), &format!("proj {n}"));
        rec.hostname = format!("host-{i}-{n}");
        rec.tags.insert(format!("key {n}"), format!("value {n}"));
        rec.tags.insert("note".into(), format!("line1\nline2\t{n}"));
        rec.command = vec!["sh".into(), "-c".into(), format!("echo {n}; rm -rf /")];
        let mut body = rec.json();
        body["host"]["cpu_model"] = json!(n);
        body["location"]["name"] = json!(n);
        body["carbon_intensity"]["source"] = json!(n);
        body["warnings"] = json!([n]);
        body["devices"][0]["id"] = json!(format!("dev {n}"));
        body["assumptions"][0]["source"] = json!(n);
        body["extra_field_from_the_future"] = json!({"k": n});
        // A float that a non-round-tripping parser changes in the last digit.
        // (A figure outside the record's identities, which the server checks within 1e-6.)
        body["equivalents"]["car_km"] = json!(7.525160583522583e-10);
        let mut with_user = body.clone();
        with_user["user"] = json!(format!("user {n}"));
        with_user["series"] =
            json!([{"device_id": format!("dev {n}"), "t0": 0.0, "t1": 1.0, "energy_j": 7.5}]);
        let (c, v) = s.post(&tok, "/runs", &with_user).await;
        assert_eq!(c, 201, "{v}");
        // Read back through a percent-encoded path.
        let id = rec.id.clone();
        let url =
            reqwest::Url::parse_with_params(&s.url("/runs"), &[("project", &rec.project)]).unwrap();
        let r = s.http.get(url).bearer_auth(&tok).send().await.unwrap();
        let (_, list) = common::read(r).await;
        assert_eq!(list["runs"].as_array().unwrap().len(), 1, "filter by {n:?}");
        assert_eq!(list["runs"][0]["run_id"], json!(id));
        let mut u = reqwest::Url::parse(&s.url("/runs/")).unwrap();
        u.path_segments_mut().unwrap().pop_if_empty().push(&id);
        let r = s
            .http
            .get(u.clone())
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        let (c, got) = common::read(r).await;
        assert_eq!(c, 200, "{got}");
        assert_eq!(got["record"], body, "record changed in storage for {n:?}");
        assert_eq!(got["project"], json!(rec.project));
        assert_eq!(got["hostname"], json!(rec.hostname));
        assert_eq!(got["user"], json!(format!("user {n}")));
        u.path_segments_mut().unwrap().push("samples");
        let r = s.http.get(u).bearer_auth(&tok).send().await.unwrap();
        let (_, smp) = common::read(r).await;
        assert_eq!(smp["samples"][0]["device_id"], json!(format!("dev {n}")));
        assert_eq!(smp["samples"][0]["energy_j"], 7.5);
    }
    let (_, t) = s.get(&tok, "/totals?group_by=project").await;
    let keys: Vec<String> = t["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap().to_string())
        .collect();
    for n in nasty {
        assert!(keys.contains(&format!("proj {n}")), "{keys:?}");
    }
    let (_, t) = s.get(&tok, "/totals?group_by=user").await;
    assert_eq!(t["groups"].as_array().unwrap().len(), nasty.len());
    // Every table is still there and whole.
    assert_eq!(s.count("runs").await, nasty.len() as i64);
    assert_eq!(s.count("api_tokens").await, 1);
    assert_eq!(s.count("samples").await, nasty.len() as i64);
    s.stop().await;
}
both!(sql_metacharacters_stored_verbatim);

async fn rate_limit_answers_429(b: Backend) {
    let limits = Limits {
        rate_per_s: 0.5,
        burst: 3.0,
        ..Limits::default()
    };
    let s = TestServer::with_limits(b, limits).await;
    let (_, a) = s.token("physics", None, Role::Viewer).await;
    let (_, other) = s.token("physics", None, Role::Viewer).await;
    for _ in 0..3 {
        assert_eq!(s.get(&a, "/runs").await.0, 200);
    }
    let r = s
        .http
        .get(s.url("/runs"))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_error(&common::read(r).await, 429, "too many requests");
    // Another token has its own allowance, and the server is fine.
    assert_eq!(s.get(&other, "/runs").await.0, 200);
    s.assert_up().await;
    s.stop().await;
}
both!(rate_limit_answers_429);

/// A client that sends its headers and then stalls gets a 408 once the request timeout is over,
/// and does not hold the server up.
async fn slow_request_times_out(b: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let limits = Limits {
        request_timeout: Duration::from_millis(800),
        ..Limits::default()
    };
    let s = TestServer::with_limits(b, limits).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    let mut sock = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    let head = format!(
        "POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"schema\":"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let t0 = std::time::Instant::now();
    // Meanwhile, others are served.
    s.assert_up().await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if String::from_utf8_lossy(&buf).contains("\"detail\"") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a stalled request");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("longer than"), "{text}");
    assert!(t0.elapsed() >= Duration::from_millis(700));
    assert_eq!(s.count("runs").await, 0);
    s.assert_up().await;
    s.stop().await;
}
both!(slow_request_times_out);

async fn totals_stay_exact_under_concurrent_retries(b: Backend) {
    // Ten clients upload the same checkpoints of the same runs at once, with retries: each run
    // counts once, with its final record.
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    let mut tasks = Vec::new();
    for c in 0..10 {
        let http = s.http.clone();
        let url = s.url("/runs");
        let tok = tok.clone();
        tasks.push(tokio::spawn(async move {
            for run in 0..5 {
                for step in 1..=4 {
                    let status = if step == 4 { "completed" } else { "running" };
                    let rec = Rec::new(&format!("run-{run}"), "p")
                        .status(status)
                        .progress(step as f64 * 10.0, step as f64, step as f64 * 0.1);
                    let r = http
                        .post(&url)
                        .bearer_auth(&tok)
                        .json(&rec.json())
                        .send()
                        .await
                        .unwrap();
                    assert!(
                        r.status() == 200 || r.status() == 201,
                        "client {c}: {}",
                        r.status()
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (_, t) = s.get(&tok, "/totals?group_by=project").await;
    assert_eq!(t["total"]["runs"], 5);
    assert!(
        close(t["total"]["energy_kwh"].as_f64().unwrap(), 20.0),
        "{t}"
    );
    assert!(
        close(t["total"]["emissions_kg"].as_f64().unwrap(), 2.0),
        "{t}"
    );
    let (_, runs) = s.get(&tok, "/runs").await;
    for r in runs["runs"].as_array().unwrap() {
        assert_eq!(r["status"], "completed");
    }
    s.stop().await;
}
both!(totals_stay_exact_under_concurrent_retries);
