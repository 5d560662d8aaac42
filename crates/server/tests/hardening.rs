#![allow(clippy::unwrap_used)]
//! Hardening of the server, each on SQLite and on PostgreSQL, the real server on loopback:
//! connection limits (slow headers, idle keep-alive and silent connections, a connection cap),
//! paged listings and bounded reads, the per-token cap on expensive requests, deleting a bad
//! run (audited, totals consistent after), and small leaks (a project token's view of the team
//! budget, statuses, invisible characters in names, the database file's mode, samples per
//! request against the body limit).

mod common;

use common::{assert_error, close, Backend, Rec, TestServer};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wattprint_server::limits::Limits;
use wattprint_server::store::Role;

/// Read until the server closes the connection (`true`), or `within` passes (`false`).
async fn closed_within(sock: &mut TcpStream, within: Duration) -> bool {
    tokio::time::timeout(within, async {
        let mut chunk = [0u8; 4096];
        loop {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Read one answer (headers and a `Content-Length` body) from a keep-alive connection.
async fn read_answer(sock: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut chunk))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before answering");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::default();
    f(&mut l);
    l
}

/// Headers that never finish, and a keep-alive connection left idle after its answer, are
/// closed once the header-read timeout is over; the server keeps answering meanwhile.
async fn slow_headers_and_idle_keep_alive_are_closed(b: Backend) {
    let s = TestServer::with_limits(
        b,
        limits(|l| l.header_read_timeout = Duration::from_millis(400)),
    )
    .await;
    // Headers that never finish.
    let mut slow = TcpStream::connect(s.addr()).await.unwrap();
    slow.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let t0 = Instant::now();
    s.assert_up().await;
    assert!(
        closed_within(&mut slow, Duration::from_secs(10)).await,
        "a request whose headers never finish is still open after 10 s"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(390),
        "{:?}",
        t0.elapsed()
    );
    // An idle keep-alive connection after one answer.
    let mut idle = TcpStream::connect(s.addr()).await.unwrap();
    idle.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_answer(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        closed_within(&mut idle, Duration::from_secs(10)).await,
        "an idle keep-alive connection is still open after 10 s"
    );
    s.assert_up().await;
    s.stop().await;
}
both!(slow_headers_and_idle_keep_alive_are_closed);

/// A connection on which nothing moves is closed after the idle timeout, even when the
/// header-read timeout is longer.
async fn silent_connections_are_closed_when_idle(b: Backend) {
    let s = TestServer::with_limits(
        b,
        limits(|l| {
            l.header_read_timeout = Duration::from_secs(300);
            l.idle_timeout = Duration::from_millis(400);
        }),
    )
    .await;
    let mut silent = TcpStream::connect(s.addr()).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(10)).await,
        "a silent connection is still open after 10 s"
    );
    s.assert_up().await;
    s.stop().await;
}
both!(silent_connections_are_closed_when_idle);

/// Beyond the connection limit, a new connection waits until one closes; then it is served.
async fn connection_limit_holds_new_connections_until_one_closes(b: Backend) {
    let s = TestServer::with_limits(
        b,
        limits(|l| {
            l.max_connections = 2;
            l.header_read_timeout = Duration::from_secs(300);
            l.idle_timeout = Duration::from_secs(300);
        }),
    )
    .await;
    let a = TcpStream::connect(s.addr()).await.unwrap();
    let mut b2 = TcpStream::connect(s.addr()).await.unwrap();
    // Both slots are taken once the server has answered on the second connection.
    b2.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_answer(&mut b2).await.starts_with("HTTP/1.1 200"));
    let url = s.url("/health");
    let third = tokio::spawn(async move {
        let c = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        c.get(url).send().await.map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served while the limit is 2"
    );
    drop(a);
    let got = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("served once a connection closed")
        .unwrap()
        .unwrap();
    assert_eq!(got, 200);
    drop(b2);
    s.stop().await;
}
both!(connection_limit_holds_new_connections_until_one_closes);

/// `GET /runs` pages with `limit` and `cursor`: every run once, in the same order as one big
/// page, runs with the same start included; a cursor that is not one is a 400.
async fn runs_are_paged_with_a_cursor(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    for i in 0..7 {
        // Three runs share a start time: the cursor must still split them exactly.
        let at = if i < 3 {
            "2025-03-10T12:00:00Z".to_string()
        } else {
            format!("2025-03-1{}T12:00:00Z", i - 2)
        };
        let r = s
            .post(
                &tok,
                "/runs",
                &Rec::new(&format!("r{i}"), "p").at(&at).json(),
            )
            .await;
        assert_eq!(r.0, 201, "{}", r.1);
    }
    let (_, all) = s.get(&tok, "/runs?limit=1000").await;
    let want: Vec<String> = all["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(want.len(), 7);
    assert!(all["next_cursor"].is_null(), "{all}");
    let mut got = Vec::new();
    let mut path = "/runs?limit=3".to_string();
    let mut pages = 0;
    loop {
        let (code, page) = s.get(&tok, &path).await;
        assert_eq!(code, 200, "{page}");
        pages += 1;
        for r in page["runs"].as_array().unwrap() {
            got.push(r["run_id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/runs?limit=3&cursor={c}"),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(got, want);
    assert_error(
        &s.get(&tok, "/runs?cursor=nonsense").await,
        400,
        "next_cursor",
    );
    assert_error(&s.get(&tok, "/runs?limit=1001").await, 400, "1 to 1000");
    s.stop().await;
}
both!(runs_are_paged_with_a_cursor);

/// A run's samples come a bounded page at a time, however many the run has; walking the
/// cursors gives each sample once, by device then time.
async fn samples_are_paged_and_bounded(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    assert_eq!(
        s.post(&tok, "/runs", &Rec::new("big", "p").json()).await.0,
        201
    );
    let n_per_dev = 12_500usize;
    for dev in ["cpu:0", "gpu:0"] {
        let all: Vec<Value> = (0..n_per_dev)
            .map(|i| json!({"device_id": dev, "t0": i as f64, "t1": i as f64 + 1.0, "energy_j": 2.0}))
            .collect();
        for chunk in all.chunks(10_000) {
            let r = s
                .post(&tok, "/runs/big/samples", &json!({"samples": chunk}))
                .await;
            assert_eq!(r.0, 200, "{}", r.1);
        }
    }
    let (code, first) = s.get(&tok, "/runs/big/samples").await;
    assert_eq!(code, 200);
    assert_eq!(first["samples"].as_array().unwrap().len(), 10_000);
    assert!(first["next_cursor"].is_string(), "no cursor on a full page");
    let mut seen = Vec::new();
    let mut path = "/runs/big/samples".to_string();
    for _ in 0..10 {
        let (code, page) = s.get(&tok, &path).await;
        assert_eq!(code, 200, "{page}");
        for x in page["samples"].as_array().unwrap() {
            seen.push((
                x["device_id"].as_str().unwrap().to_string(),
                x["t0"].as_f64().unwrap(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/runs/big/samples?cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 2 * n_per_dev);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    sorted.dedup();
    assert_eq!(sorted, seen, "out of order or repeated");
    let (_, small) = s.get(&tok, "/runs/big/samples?limit=5").await;
    assert_eq!(small["samples"].as_array().unwrap().len(), 5);
    assert_error(
        &s.get(&tok, "/runs/big/samples?limit=50001").await,
        400,
        "1 to 50000",
    );
    assert_error(&s.get(&tok, "/runs/nope/samples").await, 404, "nope");
    s.stop().await;
}
both!(samples_are_paged_and_bounded);

/// A token with the most expensive requests in flight gets 429 for another (other tokens do
/// not); once one ends it is served again.
async fn expensive_requests_are_capped_per_token(b: Backend) {
    let s = TestServer::with_limits(b, limits(|l| l.max_expensive_per_token = 1)).await;
    let (id, tok) = s.token("physics", None, Role::Viewer).await;
    let (_, other) = s.token("physics", None, Role::Viewer).await;
    let held = s.state.expensive.enter(id).unwrap();
    for path in ["/runs", "/totals", "/budgets", "/nodes"] {
        let r = s
            .http
            .get(s.url(path))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429, "{path}");
        assert_eq!(r.headers()["retry-after"], "1");
        assert_eq!(s.get(&other, path).await.0, 200, "{path}");
    }
    // Cheap requests are not counted.
    assert_eq!(s.get(&tok, "/me").await.0, 200);
    drop(held);
    assert_eq!(s.get(&tok, "/runs").await.0, 200);
    s.stop().await;
}
both!(expensive_requests_are_capped_per_token);

/// Tokens, budgets and totals' groups page too, and the totals' `total` covers every page.
async fn other_listings_are_paged(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.token("physics", None, Role::Admin).await;
    for i in 0..4 {
        s.token("physics", None, Role::Viewer).await;
        let p = format!("p{i}");
        let r = s
            .post(&admin, "/runs", &Rec::new(&format!("r{i}"), &p).json())
            .await;
        assert_eq!(r.0, 201, "{}", r.1);
        let r = s
            .post(
                &admin,
                "/budgets",
                &json!({"project": p, "kg_per_month": 1.0}),
            )
            .await;
        assert_eq!(r.0, 201, "{}", r.1);
    }
    let walk = |list: &'static str, first: String| {
        let s = &s;
        let admin = admin.clone();
        async move {
            let mut n = 0;
            let mut path = first.clone();
            for _ in 0..20 {
                let (code, page) = s.get(&admin, &path).await;
                assert_eq!(code, 200, "{page}");
                let items = page[list].as_array().unwrap();
                assert!(items.len() <= 2, "{page}");
                n += items.len();
                if list == "groups" {
                    assert_eq!(page["total"]["runs"], 4, "{page}");
                }
                match page["next_cursor"].as_str() {
                    Some(c) => path = format!("{first}&cursor={c}"),
                    None => return n,
                }
            }
            panic!("more than 20 pages");
        }
    };
    assert_eq!(walk("tokens", "/tokens?limit=2".into()).await, 5);
    assert_eq!(
        walk("budgets", "/budgets?month=2025-03&limit=2".into()).await,
        4
    );
    assert_eq!(
        walk("groups", "/totals?group_by=project&limit=2".into()).await,
        4
    );
    s.stop().await;
}
both!(other_listings_are_paged);

/// Team admins delete a bad run: its samples go with it, totals and budgets drop by its
/// figures, the deletion is recorded (who, when, what figures). Others cannot.
async fn admins_delete_runs_audited_and_totals_follow(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.token("physics", None, Role::Admin).await;
    let (_, member) = s.token("physics", None, Role::Member).await;
    let (_, viewer) = s.token("physics", None, Role::Viewer).await;
    let (_, other_admin) = s.token("chemistry", None, Role::Admin).await;
    let (_, proj_b_admin) = s.token("physics", Some("b"), Role::Admin).await;
    let mut bad = Rec::new("bad", "a").progress(60.0, 9.43, 2.0).json();
    bad["series"] = json!([{"device_id": "gpu:0", "t0": 0.0, "t1": 1.0, "energy_j": 5.0},
                           {"device_id": "gpu:0", "t0": 1.0, "t1": 2.0, "energy_j": 5.0}]);
    assert_eq!(s.post(&member, "/runs", &bad).await.0, 201);
    let good = Rec::new("good", "a").progress(60.0, 0.5, 0.1).json();
    assert_eq!(s.post(&member, "/runs", &good).await.0, 201);
    let other = Rec::new("inb", "b").progress(60.0, 0.25, 0.05).json();
    assert_eq!(s.post(&member, "/runs", &other).await.0, 201);
    let budget = s
        .post(&admin, "/budgets", &json!({"kg_per_month": 100.0}))
        .await;
    assert_eq!(budget.0, 201, "{}", budget.1);
    let used = |v: &Value| v["budgets"][0]["used_kg"].as_f64().unwrap();
    let (_, before) = s.get(&admin, "/budgets?month=2025-03").await;
    assert!(close(used(&before), 2.15), "{before}");

    assert_error(&s.delete(&member, "/runs/bad").await, 403, "admin");
    assert_error(&s.delete(&viewer, "/runs/bad").await, 403, "admin");
    assert_error(&s.delete(&other_admin, "/runs/bad").await, 404, "bad");
    assert_error(&s.delete(&proj_b_admin, "/runs/bad").await, 404, "bad");
    assert_eq!(s.count("runs").await, 3);

    let (code, d) = s.delete(&admin, "/runs/bad?reason=bogus%20figures").await;
    assert_eq!(code, 200, "{d}");
    assert_eq!(d["run_id"], "bad");
    assert_eq!(d["team"], "physics");
    assert_eq!(d["project"], "a");
    assert!(close(d["energy_kwh"].as_f64().unwrap(), 9.43), "{d}");
    assert!(close(d["emissions_kg"].as_f64().unwrap(), 2.0), "{d}");
    assert_eq!(d["samples"], 2);
    assert_eq!(d["reason"], "bogus figures");
    assert!(
        d["deleted_by"].as_str().unwrap().starts_with("token "),
        "{d}"
    );
    assert!(d["deleted_at"].as_str().unwrap().ends_with('Z'), "{d}");

    assert_error(&s.get(&admin, "/runs/bad").await, 404, "bad");
    assert_eq!(s.count("samples").await, 0);
    assert_eq!(s.count("run_deletions").await, 1);
    let (_, t) = s.get(&viewer, "/totals?group_by=project").await;
    assert_eq!(t["total"]["runs"], 2, "{t}");
    assert!(
        close(t["total"]["energy_kwh"].as_f64().unwrap(), 0.75),
        "{t}"
    );
    assert!(
        close(t["total"]["emissions_kg"].as_f64().unwrap(), 0.15),
        "{t}"
    );
    let (_, after) = s.get(&admin, "/budgets?month=2025-03").await;
    assert!(close(used(&after), 0.15), "{after}");
    assert_error(&s.delete(&admin, "/runs/bad").await, 404, "bad");

    // A project admin deletes in its project; the database admin command in any team.
    let (code, d) = s.delete(&proj_b_admin, "/runs/inb").await;
    assert_eq!(code, 200, "{d}");
    let d = wattprint_server::admin::delete_run(
        &s.state.store,
        "default",
        "physics",
        "good",
        Some("test"),
    )
    .await
    .unwrap();
    assert!(d.deleted_by.starts_with("wattprint admin"), "{d:?}");
    assert!(wattprint_server::admin::delete_run(
        &s.state.store,
        "default",
        "physics",
        "good",
        None
    )
    .await
    .is_err());
    let trail = wattprint_server::admin::deletions(&s.state.store, "default", Some("physics"), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = trail.iter().map(|d| d.run_id.as_str()).collect();
    assert_eq!(ids, ["good", "inb", "bad"]);
    let (_, t) = s.get(&viewer, "/totals").await;
    assert_eq!(t["total"]["runs"], 0, "{t}");
    assert_eq!(t["total"]["energy_kwh"].as_f64().unwrap(), 0.0, "{t}");
    s.stop().await;
}
both!(admins_delete_runs_audited_and_totals_follow);

/// A project token's policy shows whether the team budget is exhausted, not how much the other
/// projects used.
async fn project_tokens_do_not_see_the_teams_use(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, admin) = s.token("physics", None, Role::Admin).await;
    let (_, proj) = s.token("physics", Some("mine"), Role::Member).await;
    let now = wattprint_server::now_rfc3339();
    let theirs = Rec::new("theirs", "other")
        .at(&now)
        .progress(60.0, 5.0, 1.0)
        .json();
    assert_eq!(s.post(&admin, "/runs", &theirs).await.0, 201);
    assert_eq!(
        s.post(&admin, "/budgets", &json!({"kg_per_month": 0.5}))
            .await
            .0,
        201
    );
    let (_, team_view) = s.get(&admin, "/policy").await;
    assert!(close(
        team_view["budgets"][0]["used_kg"].as_f64().unwrap(),
        1.0
    ));
    let (code, p) = s.get(&proj, "/policy").await;
    assert_eq!(code, 200, "{p}");
    let b0 = &p["budgets"][0];
    assert!(b0["project"].is_null(), "{p}");
    assert!(b0["used_kg"].is_null(), "{p}");
    assert!(b0["left_kg"].is_null(), "{p}");
    assert_eq!(b0["exhausted"], true, "{p}");
    s.stop().await;
}
both!(project_tokens_do_not_see_the_teams_use);

/// Every status a record can have filters listings and totals.
async fn every_status_filters(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    for (id, st) in [
        ("a", "stopped_by_cap"),
        ("b", "stopped_by_budget"),
        ("c", "completed"),
    ] {
        let r = s
            .post(&tok, "/runs", &Rec::new(id, "p").status(st).json())
            .await;
        assert_eq!(r.0, 201, "{}", r.1);
    }
    for (st, id) in [("stopped_by_cap", "a"), ("stopped_by_budget", "b")] {
        let (code, v) = s.get(&tok, &format!("/runs?status={st}")).await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["runs"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(v["runs"][0]["run_id"], id);
        let (code, t) = s.get(&tok, &format!("/totals?status={st}")).await;
        assert_eq!(code, 200, "{t}");
        assert_eq!(t["total"]["runs"], 1, "{t}");
    }
    assert_error(
        &s.get(&tok, "/runs?status=exploded").await,
        400,
        "stopped_by_cap",
    );
    s.stop().await;
}
both!(every_status_filters);

/// Names with bidirectional overrides or zero-width characters are refused (422 naming the
/// field and the character); nothing is stored.
async fn invisible_characters_in_names_are_refused(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    for (field, value) in [
        ("project", "climate\u{202E}gnp.exe"),
        ("project", "cli\u{200B}mate"),
        ("id", "run\u{2066}1"),
    ] {
        let mut r = Rec::new("r1", "p").json();
        r[field] = json!(value);
        let got = s.post(&tok, "/runs", &r).await;
        assert_error(&got, 422, field);
        assert!(
            got.1["detail"].as_str().unwrap().contains("U+"),
            "{}",
            got.1
        );
    }
    assert_eq!(s.count("runs").await, 0);
    assert!(
        wattprint_server::admin::create_team(&s.state.store, "default", "phys\u{200D}ics")
            .await
            .is_err()
    );
    s.stop().await;
}
both!(invisible_characters_in_names_are_refused);

/// The most samples a request may carry fit the default body limit, as `wattprint run` sends
/// them (64-character device ids, full-precision numbers); one more is refused.
async fn max_samples_fit_the_default_body_limit(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    let max = wattprint_server::api::runs::MAX_SAMPLES;
    let dev = "d".repeat(64);
    let series: Vec<Value> = (0..max)
        .map(|i| {
            let t = 1.0e5 + i as f64 * 0.123_456_789_012_345_67;
            json!({"device_id": dev, "t0": t, "t1": t + 0.987_654_321_098_765_4,
                   "energy_j": 1_234.567_890_123_456_7 + i as f64})
        })
        .collect();
    let mut body = Rec::new("full", "p").json();
    body["series"] = json!(series);
    let bytes = serde_json::to_vec(&body).unwrap().len();
    assert!(
        bytes < Limits::default().max_body_bytes,
        "{max} samples take {bytes} bytes, over the default body limit"
    );
    let r = s.post(&tok, "/runs", &body).await;
    assert_eq!(r.0, 201, "{}", r.1);
    assert_eq!(r.1["samples"], max);
    let one_more: Vec<Value> = (0..=max)
        .map(|i| json!({"device_id": "cpu", "t0": i as f64, "t1": i as f64 + 1.0, "energy_j": 1.0}))
        .collect();
    assert_error(
        &s.post(&tok, "/runs/full/samples", &json!({"samples": one_more}))
            .await,
        422,
        "limit",
    );
    s.stop().await;
}
both!(max_samples_fit_the_default_body_limit);

/// The SQLite database file is created readable by its owner only.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let s = TestServer::start(Backend::Sqlite).await;
    let path = s.database.trim_start_matches("sqlite://").to_string();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{path} has mode {mode:o}");
    let wal = format!("{path}-wal");
    if let Ok(m) = std::fs::metadata(&wal) {
        assert_eq!(m.permissions().mode() & 0o077, 0, "{wal}");
    }
    s.stop().await;
}

/// `GET /nodes` pages by node (all of a node's devices on one page); its `total` covers every
/// page.
async fn nodes_are_paged(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    for i in 0..5 {
        let body = json!({"agent": "a1", "windows": [{"start": "2025-03-10T12:00:00Z", "devices": [
            {"device_id": "cpu:0", "kind": "cpu", "joules": 1000.0, "emissions_g": 1.0},
            {"device_id": "gpu:0", "kind": "gpu", "joules": 2000.0, "emissions_g": 2.0}]}]});
        let r = s
            .post(&tok, &format!("/nodes/node-{i}/energy"), &body)
            .await;
        assert_eq!(r.0, 200, "{}", r.1);
    }
    let mut nodes = Vec::new();
    let mut path = "/nodes?limit=2".to_string();
    for _ in 0..10 {
        let (code, page) = s.get(&tok, &path).await;
        assert_eq!(code, 200, "{page}");
        assert!(
            close(page["total"]["joules"].as_f64().unwrap(), 15_000.0),
            "{page}"
        );
        for n in page["nodes"].as_array().unwrap() {
            assert_eq!(n["devices"].as_array().unwrap().len(), 2, "{n}");
            nodes.push(n["node"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/nodes?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(nodes, ["node-0", "node-1", "node-2", "node-3", "node-4"]);
    assert_error(&s.get(&tok, "/nodes?cursor=bogus").await, 400, "cursor");
    s.stop().await;
}
both!(nodes_are_paged);

/// The dashboard's charts read a bounded number of samples however long the run: beyond the
/// bound they are merged per device, energy kept.
async fn chart_samples_are_bounded_and_keep_the_energy(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    assert_eq!(
        s.post(&tok, "/runs", &Rec::new("long", "p").json()).await.0,
        201
    );
    for dev in ["cpu:0", "gpu:0"] {
        let all: Vec<Value> = (0..15_000)
            .map(|i| json!({"device_id": dev, "t0": i as f64, "t1": i as f64 + 1.0, "energy_j": 3.0}))
            .collect();
        for chunk in all.chunks(10_000) {
            let r = s
                .post(&tok, "/runs/long/samples", &json!({"samples": chunk}))
                .await;
            assert_eq!(r.0, 200, "{}", r.1);
        }
    }
    let scope = wattprint_server::store::Scope {
        org_id: s.state.store.org_id("default").await.unwrap().unwrap(),
        team_id: None,
        project_id: None,
    };
    let store = &s.state.store;
    let few = store
        .samples_for_chart(&scope, "long", 1000)
        .await
        .unwrap()
        .unwrap();
    assert!(few.len() <= 2000 && few.len() >= 100, "{}", few.len());
    let energy: f64 = few.iter().map(|x| x.energy_j).sum();
    assert!(close(energy, 90_000.0), "{energy}");
    for dev in ["cpu:0", "gpu:0"] {
        let d: Vec<_> = few.iter().filter(|x| x.device_id == dev).collect();
        assert!(
            d.windows(2).all(|w| w[0].t1 <= w[1].t0 + 1e-9),
            "overlapping stretches"
        );
        assert_eq!(d.first().unwrap().t0, 0.0);
        assert_eq!(d.last().unwrap().t1, 15_000.0);
    }
    let all = store
        .samples_for_chart(&scope, "long", 100_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all.len(), 30_000);
    assert!(store
        .samples_for_chart(&scope, "nope", 10)
        .await
        .unwrap()
        .is_none());
    s.stop().await;
}
both!(chart_samples_are_bounded_and_keep_the_energy);
