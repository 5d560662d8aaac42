#![allow(clippy::unwrap_used)]
//! Record validation at the server (docs/server.md, "Validation"), each class on SQLite and on
//! PostgreSQL: magnitudes beyond what a real job reaches, impossible times, and records that
//! contradict themselves are refused with a 422 naming the field; the largest accepted records
//! keep every sum finite.

mod common;

use common::{assert_error, Backend, Rec, TestServer};
use serde_json::{json, Value};
use wattprint_server::store::Role;

/// `body` with the value at `path` replaced.
fn with(body: &Value, path: &[&str], v: Value) -> Value {
    let mut x = body.clone();
    let mut cur = &mut x;
    for k in &path[..path.len() - 1] {
        cur = if let Ok(i) = k.parse::<usize>() {
            &mut cur[i]
        } else {
            &mut cur[*k]
        };
    }
    cur[path[path.len() - 1]] = v;
    x
}

async fn magnitudes_are_bounded_and_sums_stay_finite(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Admin).await;
    let base = Rec::new("huge", "climate").json();
    // The reproducer of the issue: finite, so accepted before, and two of them made every sum ∞.
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&base, &["energy_kwh", "total"], json!(1e308)),
            "energy_kwh.total",
        ),
        (
            with(&base, &["emissions_kg", "total"], json!(1e308)),
            "emissions_kg.total",
        ),
        (
            with(&base, &["energy_kwh", "facility"], json!(1e10)),
            "energy_kwh.facility",
        ),
        (
            with(&base, &["devices", "0", "avg_power_w"], json!(5e6)),
            "devices[0].avg_power_w",
        ),
        (with(&base, &["pue"], json!(40.0)), "pue"),
        (
            with(&base, &["carbon_intensity", "g_per_kwh"], json!(1e5)),
            "carbon_intensity.g_per_kwh",
        ),
        (with(&base, &["duration_s"], json!(1e12)), "duration_s"),
        (
            with(&base, &["host", "ram_gb"], json!(1e300)),
            "host.ram_gb",
        ),
        (
            with(&base, &["equivalents", "car_km"], json!(1e300)),
            "equivalents.car_km",
        ),
        (
            with(&base, &["assumptions", "0", "value"], json!(-1e300)),
            "assumptions[0].value",
        ),
        (
            with(
                &base,
                &["series"],
                json!([{"device_id": "cpu", "t0": 0.0, "t1": 1.0, "energy_j": 1e300}]),
            ),
            "series[0].energy_j",
        ),
    ];
    for (body, field) in &cases {
        let got = s.post(&tok, "/runs", body).await;
        assert_error(&got, 422, field);
        assert!(
            got.1["detail"].as_str().unwrap().contains("limit"),
            "{field}: {}",
            got.1
        );
    }
    // Node agents' hour windows are bounded the same way.
    let now = wattprint_server::now_rfc3339();
    let hour = format!("{}:00:00Z", &now[..13]);
    let got = s
        .post(
            &tok,
            "/nodes/n1/energy",
            &json!({"agent": "a1", "windows": [{"start": hour, "devices": [
                {"device_id": "gpu:0", "kind": "gpu", "joules": 1e308, "emissions_g": 0.0}]}]}),
        )
        .await;
    assert_error(&got, 422, "windows[0].devices[0].joules");
    for start in ["1970-01-01T00:00:00Z", "9999-01-01T00:00:00Z"] {
        let got = s
            .post(
                &tok,
                "/nodes/n1/energy",
                &json!({"agent": "a1", "windows": [{"start": start, "devices": [
                    {"device_id": "gpu:0", "kind": "gpu", "joules": 1.0, "emissions_g": 0.0}]}]}),
            )
            .await;
        assert_error(&got, 422, "windows[0].start");
    }
    assert_eq!(s.count("runs").await, 0);

    // The largest records the bounds accept, many times over: every sum stays a finite number.
    let (kwh, kg) = (1_000_000.0, 240_000.0);
    for i in 0..5 {
        let body = Rec::new(&format!("big-{i}"), "climate")
            .at("2025-03-10T00:00:00Z")
            .progress(366.0 * 86_400.0, kwh, kg)
            .json();
        let (c, v) = s.post(&tok, "/runs", &body).await;
        assert_eq!(c, 201, "{v}");
    }
    let (c, v) = s
        .post(
            &tok,
            "/budgets",
            &json!({"project": "climate", "kg_per_month": 10.0}),
        )
        .await;
    assert!(c == 200 || c == 201, "{v}");
    let (c, t) = s.get(&tok, "/totals?group_by=project").await;
    assert_eq!(c, 200, "{t}");
    let total = &t["total"];
    for (k, want) in [("energy_kwh", 5.0 * kwh), ("emissions_kg", 5.0 * kg)] {
        let got = total[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} is not a number: {t}"));
        assert!(got.is_finite() && common::close(got, want), "{k}: {got}");
    }
    let (c, p) = s.get(&tok, "/budgets?month=2025-03").await;
    assert_eq!(c, 200, "{p}");
    let used = p["budgets"][0]["used_kg"]
        .as_f64()
        .unwrap_or_else(|| panic!("used_kg is not a number: {p}"));
    assert!(common::close(used, 5.0 * kg), "{p}");
    s.assert_up().await;
    s.stop().await;
}
both!(magnitudes_are_bounded_and_sums_stay_finite);

async fn impossible_times_are_refused(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    let base = Rec::new("t", "climate").json();
    let in_an_hour = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let in_an_hour = in_an_hour
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with(&base, &["started_at"], json!("9999-01-01T00:00:00Z")),
            "started_at",
            "future",
        ),
        (
            with(&base, &["started_at"], json!("0000-01-01T00:00:00Z")),
            "started_at",
            "before 2000",
        ),
        (
            with(&base, &["started_at"], json!("1970-01-01T00:00:00Z")),
            "started_at",
            "never set",
        ),
        (
            with(&base, &["started_at"], json!("2016-12-31T23:59:60Z")),
            "started_at",
            "",
        ),
        (
            with(&base, &["ended_at"], json!("2025-03-10T11:00:00Z")),
            "ended_at",
            "before started_at",
        ),
        (
            with(&base, &["ended_at"], json!(in_an_hour)),
            "ended_at",
            "future",
        ),
        (
            with(&base, &["started_at"], json!(in_an_hour)),
            "started_at",
            "future",
        ),
    ];
    for (body, field, why) in &cases {
        let got = s.post(&tok, "/runs", body).await;
        assert_error(&got, 422, field);
        assert_error(&got, 422, why);
    }
    assert_eq!(s.count("runs").await, 0);
    // A little clock skew is fine: a checkpoint that started 5 minutes "in the future".
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::minutes(5))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = Rec::new("skewed", "climate")
        .status("running")
        .at(&soon)
        .progress(10.0, 0.1, 0.01)
        .json();
    let (c, v) = s.post(&tok, "/runs", &body).await;
    assert_eq!(c, 201, "{v}");
    s.stop().await;
}
both!(impossible_times_are_refused);

async fn contradictory_records_are_refused(b: Backend) {
    let s = TestServer::start(b).await;
    let (_, tok) = s.token("physics", None, Role::Member).await;
    // 9.43 kWh whose breakdown says nothing, as in the issue.
    let base = Rec::new("c", "climate").progress(600.0, 9.43, 2.0).json();
    let zero_breakdown = ["cpu", "gpu", "ram", "dynamic", "static"]
        .iter()
        .fold(base.clone(), |b, k| {
            with(&b, &["energy_kwh", k], json!(0.0))
        });
    let zero_breakdown = with(&zero_breakdown, &["devices", "0", "energy_kwh"], json!(0.0));
    let cases: Vec<(Value, &str)> = vec![
        (zero_breakdown, "energy_kwh.it"),
        (
            with(&base, &["energy_kwh", "cpu"], json!(9.43)),
            "energy_kwh.cpu + gpu + ram + other",
        ),
        // A device that does not add up to its component.
        (
            with(&base, &["devices", "0", "energy_kwh"], json!(0.001)),
            "cpu devices",
        ),
        // Emissions that are not energy × intensity.
        (
            with(&base, &["carbon_intensity", "g_per_kwh"], json!(20.0)),
            "carbon_intensity",
        ),
        (
            with(&base, &["emissions_kg", "operational"], json!(0.5)),
            "emissions_kg.operational",
        ),
        (
            with(&base, &["emissions_kg", "total"], json!(1e-3)),
            "emissions_kg.total",
        ),
        // Facility energy that is not IT × PUE.
        (with(&base, &["pue"], json!(1.5)), "energy_kwh.facility"),
        (
            with(&base, &["energy_kwh", "total"], json!(1.0)),
            "energy_kwh.total",
        ),
    ];
    for (body, identity) in &cases {
        let got = s.post(&tok, "/runs", body).await;
        assert_error(&got, 422, identity);
        assert_error(&got, 422, "contradicts itself");
    }
    assert_eq!(s.count("runs").await, 0);
    let (c, v) = s.post(&tok, "/runs", &base).await;
    assert_eq!(c, 201, "{v}");
    s.stop().await;
}
both!(contradictory_records_are_refused);

/// Sign in to the dashboard with `token`: the session cookie.
async fn dashboard_session(s: &TestServer, token: &str) -> (reqwest::Client, String, String) {
    let root = format!("http://{}", s.addr());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie_of = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .find_map(|v| {
                let v = v.to_str().unwrap();
                let (k, rest) = v.split_once('=')?;
                (k == name).then(|| rest.split(';').next().unwrap().to_string())
            })
            .unwrap()
    };
    let r = http
        .get(format!("{root}/dashboard/login"))
        .send()
        .await
        .unwrap();
    let nonce = cookie_of(&r, "wattprint_login");
    let r = http
        .post(format!("{root}/dashboard/login"))
        .header(reqwest::header::COOKIE, format!("wattprint_login={nonce}"))
        .form(&[("token", token), ("nonce", nonce.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let sid = cookie_of(&r, "wattprint_session");
    (http, root, format!("wattprint_session={sid}"))
}

/// Rows stored before these checks (written to the database directly here, as an older server
/// did) with 1e308 kWh and kg and a start in 9999: every dashboard page still renders, in bounded
/// size and time, and the server keeps answering. (SQLite: its sums turn infinite, and the charts
/// must cope; PostgreSQL refuses such a sum, which is why those rows must be deleted there.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_over_rows_stored_before_the_checks() {
    use wattprint_server::store::NewRun;
    let s = TestServer::start(Backend::Sqlite).await;
    let (_, tok) = s.token("physics", None, Role::Admin).await;
    let store = &s.state.store;
    let org = store
        .org_id(wattprint_server::admin::DEFAULT_ORG)
        .await
        .unwrap()
        .unwrap();
    let team = store.team_id(org, "physics").await.unwrap().unwrap();
    for (i, at) in ["2025-03-10T12:00:00Z", "9999-01-01T00:00:00Z"]
        .iter()
        .enumerate()
    {
        let id = format!("poison-{i}");
        let mut rec = Rec::new(&id, "climate").at(at).json();
        for k in ["cpu", "it", "total", "facility", "dynamic"] {
            rec["energy_kwh"][k] = json!(1e308);
        }
        for k in ["dynamic", "operational", "total"] {
            rec["emissions_kg"][k] = json!(1e308);
        }
        rec["devices"][0]["energy_kwh"] = json!(1e308);
        rec["devices"][0]["avg_power_w"] = json!(1e308);
        let started =
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .unwrap();
        store
            .upsert_run(
                &NewRun {
                    org_id: org,
                    team_id: team,
                    project: "climate".into(),
                    project_id: None,
                    run_id: id.clone(),
                    user: Some("mallory".into()),
                    status: "completed".into(),
                    status_rank: 1,
                    started_at: at.to_string(),
                    started_unix: started.unix_timestamp(),
                    ended_at: None,
                    month: format!("{:04}-{:02}", started.year(), u8::from(started.month())),
                    duration_s: 60.0,
                    energy_kwh: 1e308,
                    facility_kwh: 1e308,
                    emissions_kg: 1e308,
                    hostname: "h".into(),
                    record: rec.to_string(),
                    derived: Default::default(),
                    model: None,
                },
                &[wattprint_server::store::Sample {
                    device_id: "cpu:package-0".into(),
                    t0: 0.0,
                    t1: 1e-300,
                    energy_j: 1e308,
                }],
            )
            .await
            .unwrap();
    }
    let (http, root, cookie) = dashboard_session(&s, &tok).await;
    for path in [
        "/dashboard/",
        "/dashboard/teams/physics",
        "/dashboard/teams/physics/projects/climate",
        "/dashboard/teams/physics/runs/poison-0",
        "/dashboard/teams/physics/runs/poison-1",
        "/dashboard/users/mallory",
    ] {
        let get = http
            .get(format!("{root}{path}"))
            .header(reqwest::header::COOKIE, &cookie)
            .send();
        // A hang guard, not a timing assertion: the old y-axis loop never ended.
        let r = tokio::time::timeout(std::time::Duration::from_secs(60), get)
            .await
            .unwrap_or_else(|_| panic!("{path} did not answer"))
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.len() < 2_000_000, "{path}: {} bytes", body.len());
        assert!(
            body.trim_end().ends_with("</html>"),
            "{path}: ends with {:?}",
            &body[body.len().saturating_sub(200)..]
        );
        if let Some(i) = body.find("NaN") {
            panic!(
                "{path}: NaN in {:?}",
                &body[i.saturating_sub(300)..(i + 100).min(body.len())]
            );
        }
        s.assert_up().await;
    }
    s.stop().await;
}
