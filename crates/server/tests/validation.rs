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
