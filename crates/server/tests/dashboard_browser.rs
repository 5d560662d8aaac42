#![allow(clippy::unwrap_used)]
//! The dashboard in a real headless Chromium (Debian's `chromium`, installed by `.ci/run`),
//! driven over the Chrome DevTools Protocol against the real server on 127.0.0.1:0: sign in by
//! filling the form, follow the link to the team page, read the totals from the DOM, and check
//! that no page logs an error or requests anything from another host. A second test renders a
//! realistic dataset on every kind of page; with `WATTPRINT_DASHBOARD_SCREENSHOTS=DIR` it also
//! writes the screenshots there (`DIR/dashboard.png`, the overview, is docs/img/dashboard.png:
//! see docs/dashboard.md).

mod cdp;
mod common;

use cdp::{png_size, Browser};
use common::{Backend, Rec, TestServer};
use serde_json::{json, Value};
use wattprint_server::store::Role;

async fn upload(s: &TestServer, token: &str, body: &Value) {
    let (c, v) = s.post(token, "/runs", body).await;
    assert_eq!(c, 201, "{v}");
}

/// Requests to any other origin than the server's, and errors, on this tab so far.
fn assert_clean(b: &Browser, tab: &str, origin: &str, what: &str) {
    let reqs = b.requests(tab);
    assert!(
        !reqs.is_empty(),
        "{what}: the harness saw no request at all"
    );
    let foreign: Vec<&String> = reqs
        .iter()
        .filter(|u| !u.starts_with(&format!("{origin}/")) && !u.starts_with("data:"))
        .collect();
    assert!(
        foreign.is_empty(),
        "{what}: requests to other hosts: {foreign:?}"
    );
    let errors = b.errors(tab);
    assert!(errors.is_empty(), "{what}: errors: {errors:?}");
}

fn str_of(v: Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_read_the_team_totals_in_chromium() {
    let s = TestServer::start(Backend::Sqlite).await;
    let (_, a) = s.token("physics", None, Role::Member).await;
    let (_, other) = s.token("genomics", None, Role::Member).await;
    for (id, project, kwh, kg, status) in [
        ("p-1", "climate", 0.5, 0.1, "completed"),
        ("p-2", "climate", 1.25, 0.25, "failed"),
        ("p-3", "weather", 2.0, 0.4, "completed"),
    ] {
        let r = Rec::new(id, project)
            .status(status)
            .at("2025-02-10T08:00:00Z")
            .progress(600.0, kwh, kg);
        upload(&s, &a, &r.json()).await;
    }
    upload(
        &s,
        &other,
        &Rec::new("g-secret", "sequencing")
            .progress(60.0, 9.0, 3.0)
            .json(),
    )
    .await;
    let origin = format!("http://{}", s.addr());

    let token = a.clone();
    let origin2 = origin.clone();
    // The browser is blocking: drive it off the async runtime while the server serves.
    let result = tokio::task::spawn_blocking(move || {
        let origin = origin2;
        let mut b = Browser::launch();
        let tab = b.new_page(1280, 1000);

        // Not signed in: the dashboard sends the browser to the login form.
        b.navigate(&tab, &format!("{origin}/dashboard/teams/physics"));
        assert_eq!(str_of(b.eval(&tab, "location.pathname")), "/dashboard/login");
        assert_eq!(b.eval(&tab, "document.scripts.length"), json!(0));

        // Sign in by filling the form and submitting it.
        b.eval_and_wait_load(
            &tab,
            &format!(
                "document.getElementById('token').value = {}; document.getElementById('login').submit(); true",
                json!(token)
            ),
        );
        assert_eq!(str_of(b.eval(&tab, "location.pathname")), "/dashboard/");
        // The session cookie is HttpOnly: invisible to scripts.
        assert_eq!(str_of(b.eval(&tab, "document.cookie")), "");

        // Follow the navigation link to the team page.
        b.eval_and_wait_load(
            &tab,
            "document.querySelector('header nav a[href=\"/dashboard/teams/physics\"]').click(); true",
        );
        assert_eq!(
            str_of(b.eval(&tab, "location.pathname")),
            "/dashboard/teams/physics"
        );
        let text = |b: &mut Browser, id: &str| {
            str_of(b.eval(&tab, &format!("document.getElementById('{id}').textContent")))
        };
        assert_eq!(text(&mut b, "page-title"), "Team physics");
        assert_eq!(text(&mut b, "total-runs"), "3");
        assert_eq!(text(&mut b, "total-energy"), "3.75 kWh");
        assert_eq!(text(&mut b, "total-emissions"), "0.750 kg CO2e");
        assert_eq!(text(&mut b, "waste-emissions"), "0.250 kg CO2e");
        let kwh = b
            .eval(&tab, "Number(document.getElementById('total-energy').dataset.kwh)")
            .as_f64()
            .unwrap();
        assert!((kwh - 3.75).abs() < 1e-12, "{kwh}");
        let kg = b
            .eval(&tab, "Number(document.getElementById('total-emissions').dataset.kg)")
            .as_f64()
            .unwrap();
        assert!((kg - 0.75).abs() < 1e-12, "{kg}");
        // Another team's runs are not on the page.
        let body = str_of(b.eval(&tab, "document.body.innerText"));
        assert!(body.contains("climate") && body.contains("weather"));
        assert!(!body.contains("genomics") && !body.contains("g-secret") && !body.contains("sequencing"));
        // The charts are laid out, readable and drawn.
        let sizes = b.eval(
            &tab,
            "Array.from(document.querySelectorAll('svg.chart')).map(e => { const r = e.getBoundingClientRect(); return [r.width, r.height, e.querySelectorAll('rect,path').length]; })",
        );
        let sizes = sizes.as_array().unwrap();
        assert!(sizes.len() >= 4, "{sizes:?}");
        for sz in sizes {
            assert!(sz[0].as_f64().unwrap() > 300.0, "chart width {sz}");
            assert!(sz[1].as_f64().unwrap() > 40.0, "chart height {sz}");
            assert!(sz[2].as_u64().unwrap() > 0, "chart without marks {sz}");
        }
        // The style sheet applied (the CSP allows it by hash): the header is dark blue.
        assert_eq!(
            str_of(b.eval(&tab, "getComputedStyle(document.querySelector('header.top')).backgroundColor")),
            "rgb(23, 50, 77)"
        );
        assert_clean(&b, &tab, &origin, "login and team page");

        let png = b.screenshot(&tab, true);
        let (w, h) = png_size(&png);
        assert!((1200..=1280).contains(&w), "page width {w}");
        assert!(h > 1000, "the whole page: {h}");
        assert!(png.len() > 30_000, "a blank page compresses far smaller: {} bytes", png.len());
        let dir = tempfile::tempdir().unwrap();
        let shot = dir.path().join("team.png");
        std::fs::write(&shot, &png).unwrap();
        eprintln!("screenshot: {} ({} bytes, {w}×{h})", shot.display(), png.len());

        // The harness sees errors and foreign requests, and the CSP blocks what a page could
        // be tricked into loading.
        let before = b.events.len();
        b.eval(
            &tab,
            "const i = document.createElement('img'); i.src = 'http://127.0.0.1:9/x.png'; document.body.appendChild(i); \
             const st = document.createElement('div'); st.setAttribute('style', 'color: red'); document.body.appendChild(st); \
             console.error('control error'); true",
        );
        b.drain(std::time::Duration::from_millis(800));
        let errs = b.errors(&tab);
        assert!(errs.iter().any(|e| e.contains("control error")), "{errs:?}");
        assert!(
            errs.iter().any(|e| e.contains("Content Security Policy") && e.contains("127.0.0.1:9")),
            "the image was not blocked by the CSP: {errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.contains("Content Security Policy") && e.contains("style")),
            "an inline style attribute was not blocked: {errs:?}"
        );
        // Chromium reports the attempt, then its failure with the CSP as the reason.
        let late = &b.events[before..];
        let tried: Vec<&Value> = late
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .collect();
        assert_eq!(tried.len(), 1, "{tried:?}");
        assert_eq!(tried[0]["params"]["request"]["url"], "http://127.0.0.1:9/x.png");
        let id = &tried[0]["params"]["requestId"];
        assert!(
            late.iter().any(|e| e["method"] == "Network.loadingFailed"
                && e["params"]["requestId"] == *id
                && e["params"]["blockedReason"] == "csp"),
            "the image was not blocked by the CSP: {late:?}"
        );
        assert!(
            !late.iter().any(|e| e["method"] == "Network.responseReceived"),
            "a blocked image got a response"
        );

        // Sign out with the button (the form carries the CSRF token); the session is gone.
        b.eval_and_wait_load(&tab, "document.querySelector('header form button').click(); true");
        assert_eq!(str_of(b.eval(&tab, "location.pathname")), "/dashboard/login");
        b.navigate(&tab, &format!("{origin}/dashboard/teams/physics"));
        assert_eq!(str_of(b.eval(&tab, "location.pathname")), "/dashboard/login");
    })
    .await;
    s.stop().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() % v.len() as u64) as usize]
    }
}

/// A location: code, name, g CO2e/kWh, PUE.
type Loc = (&'static str, &'static str, f64, f64);
/// A team of the demo dataset: name, projects, users, where it computes.
type DemoTeam = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    Loc,
);

/// A coherent `wattprint.run/1` record: components, dynamic/static, PUE, intensity, emissions.
#[allow(clippy::too_many_arguments)]
fn demo_record(
    id: &str,
    project: &str,
    user: &str,
    status: &str,
    started: time::OffsetDateTime,
    hours: f64,
    gpus: usize,
    gpu_name: &str,
    gpu_w: f64,
    loc: Loc,
) -> Value {
    let (code, name, g_per_kwh, pue) = loc;
    let dur = hours * 3600.0;
    let gpu_kwh = gpus as f64 * gpu_w * hours / 1000.0;
    let cpu_kwh = 0.12 * hours;
    let ram_kwh = 0.03 * hours;
    let it = gpu_kwh + cpu_kwh + ram_kwh;
    let idle_gpu_w = if gpu_name.contains("A100") {
        46.0
    } else {
        60.0
    };
    let static_kwh = (gpus as f64 * idle_gpu_w * hours / 1000.0 + 0.04 * hours).min(it);
    let op = it * pue * g_per_kwh / 1000.0;
    let embodied = 0.0006 * hours * (1.0 + gpus as f64);
    let mut devices = vec![
        json!({"id": "cpu:package-0", "kind": "cpu", "method": "rapl", "name": "AMD EPYC 7763",
        "energy_kwh": cpu_kwh, "avg_power_w": 120.0, "machine_energy_kwh": cpu_kwh * 1.4, "idle_power_w": 40.0}),
    ];
    for g in 0..gpus {
        devices.push(json!({"id": format!("gpu:{g}"), "kind": "gpu", "method": "nvml-energy", "name": gpu_name,
            "energy_kwh": gpu_w * hours / 1000.0, "avg_power_w": gpu_w, "machine_energy_kwh": gpu_w * hours / 1000.0}));
    }
    let ended = started + time::Duration::seconds_f64(dur);
    let running = status == "running";
    json!({
        "schema": "wattprint.run/1", "id": id, "project": project, "user": user,
        "tags": {"git": format!("{:07x}", id.len() * 7919 + gpus * 104_729)},
        "command": ["python", "train.py", "--config", format!("{project}.yaml")],
        "started_at": wattprint_server::format_rfc3339(started),
        "ended_at": if running { Value::Null } else { json!(wattprint_server::format_rfc3339(ended)) },
        "duration_s": dur, "status": status,
        "exit_code": match status { "completed" => json!(0), "failed" => json!(1), _ => Value::Null },
        "host": {"hostname": format!("gpu-node-{:02}", id.len() % 7 + gpus), "cpu_model": "AMD EPYC 7763",
                 "logical_cpus": 128, "ram_gb": 512.0,
                 "gpus": (0..gpus).map(|g| json!({"index": g, "name": gpu_name, "uuid": format!("GPU-{g}")})).collect::<Vec<_>>()},
        "scope": "process", "interval_s": 1.0,
        "energy_kwh": {"cpu": cpu_kwh, "gpu": gpu_kwh, "ram": ram_kwh, "other": 0.0,
                       "dynamic": it - static_kwh, "static": static_kwh, "it": it,
                       "infrastructure": it * (pue - 1.0), "facility": it * pue, "total": it},
        "devices": devices,
        "methods": {"cpu": "rapl", "gpu": "nvml-energy", "ram": "model"},
        "pue": pue,
        "carbon_intensity": {"g_per_kwh": g_per_kwh, "source": format!("Ember 2024, {name}")},
        "location": {"code": code, "name": name, "known": true, "pue_source": "institution"},
        "emissions_kg": {"dynamic": (it - static_kwh) * g_per_kwh / 1000.0, "static": static_kwh * g_per_kwh / 1000.0,
                         "infrastructure": it * (pue - 1.0) * g_per_kwh / 1000.0, "embodied": embodied,
                         "operational": op, "total": op + embodied},
        "equivalents": {"car_km": (op + embodied) * 1000.0 / 175.0, "tree_months": 0.0, "flights_paris_london": 0.0,
                        "flights_paris_dublin": 0.0, "flights_new_york_san_francisco": 0.0, "phone_charges": 0.0},
        "assumptions": [
            {"name": "carbon intensity", "value": g_per_kwh, "unit": "gCO2e/kWh", "source": format!("Ember 2024, {name}")},
            {"name": "PUE", "value": pue, "unit": "ratio", "source": "institution's data centre, 2024"}
        ],
        "factors_version": "2025.1", "warnings": [], "samples": (dur as u64).min(100_000), "skipped_ticks": 0,
        "wattprint_version": "0.1.0"
    })
}

/// Power samples for a run: a warm-up, noisy plateaus and an evaluation dip, per device.
fn demo_series(rng: &mut Rng, hours: f64, gpus: usize, gpu_w: f64) -> Vec<Value> {
    let n = 240;
    let dt = hours * 3600.0 / n as f64;
    let mut out = Vec::new();
    for i in 0..n {
        let t = i as f64 * dt;
        let phase = i as f64 / n as f64;
        let eval = if (i / 30) % 4 == 3 { 0.55 } else { 1.0 };
        let warm = (phase * 12.0).min(1.0);
        for g in 0..gpus {
            let w = gpu_w * (0.35 + 0.65 * warm * eval) * (0.95 + 0.1 * rng.f());
            out.push(
                json!({"device_id": format!("gpu:{g}"), "t0": t, "t1": t + dt, "energy_j": w * dt}),
            );
        }
        let c = 120.0 * (0.8 + 0.3 * rng.f());
        out.push(json!({"device_id": "cpu:package-0", "t0": t, "t1": t + dt, "energy_j": c * dt}));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_realistic_dataset_renders_on_every_page_without_errors() {
    let s = TestServer::start(Backend::Sqlite).await;
    let teams: [DemoTeam; 3] = [
        (
            "vision",
            &["detector", "segmentation"],
            &["alice", "bob", "chen"],
            ("DE", "Germany", 381.0, 1.35),
        ),
        (
            "nlp",
            &["llm-finetune", "translation"],
            &["dana", "emeka"],
            ("US-VA", "Virginia", 330.0, 1.2),
        ),
        (
            "climate-ml",
            &["downscaling"],
            &["farah", "chen"],
            ("FR", "France", 56.0, 1.4),
        ),
    ];
    let mut tokens = Vec::new();
    for (team, ..) in &teams {
        tokens.push(s.token(team, None, Role::Admin).await.1);
    }
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let now = time::OffsetDateTime::now_utc();
    let (mut total_kwh, mut total_kg, mut n) = (0.0, 0.0, 0);
    let mut plotted = Vec::new();
    for i in 0..84 {
        let k = i % 3;
        let (team, projects, users, loc) = teams[k];
        let project = rng.pick(projects).to_string();
        let user = rng.pick(users).to_string();
        let roll = rng.f();
        let status = if i == 83 {
            "running"
        } else if roll < 0.12 {
            "failed"
        } else if roll < 0.19 {
            "killed"
        } else if roll < 0.23 {
            "stopped_by_cap"
        } else {
            "completed"
        };
        let llm = project.starts_with("llm");
        let gpus = if llm { 8 } else { *rng.pick(&[1usize, 2, 4]) };
        let (gpu_name, gpu_w) = if llm || rng.f() < 0.3 {
            ("NVIDIA H100 80GB HBM3", 520.0 + 120.0 * rng.f())
        } else {
            ("NVIDIA A100-SXM4-80GB", 230.0 + 120.0 * rng.f())
        };
        let mut hours = 0.5 + 14.0 * rng.f() * rng.f();
        if status != "completed" {
            hours *= 0.4;
        }
        let age_days = 150.0 * (1.0 - (i as f64 / 84.0)).powf(0.8) + rng.f();
        let started = now - time::Duration::seconds_f64(age_days * 86400.0 + hours * 3600.0);
        let id = format!("{:08x}-{:04x}", rng.next() as u32, i);
        let mut rec = demo_record(
            &id, &project, &user, status, started, hours, gpus, gpu_name, gpu_w, loc,
        );
        if i % 9 == 0 {
            rec["series"] = json!(demo_series(&mut rng, hours, gpus, gpu_w));
            plotted.push((team, id.clone()));
        }
        total_kwh += rec["energy_kwh"]["total"].as_f64().unwrap();
        total_kg += rec["emissions_kg"]["total"].as_f64().unwrap();
        n += 1;
        upload(&s, &tokens[k], &rec).await;
    }
    for (k, kg) in [(0, 60.0), (1, 400.0), (2, 5.0)] {
        let (c, v) = s
            .post(
                &tokens[k],
                "/budgets",
                &json!({"kg_per_month": kg, "name": "monthly"}),
            )
            .await;
        assert_eq!(c, 201, "{v}");
    }
    let org = s.org_token(Role::Viewer).await;
    let origin = format!("http://{}", s.addr());
    let out_dir = std::env::var("WATTPRINT_DASHBOARD_SCREENSHOTS").ok();
    let (plot_team, plot_id) = plotted[1].clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut b = Browser::launch();
        let tab = b.new_page(1280, 1650);
        b.navigate(&tab, &format!("{origin}/dashboard/login"));
        b.eval_and_wait_load(
            &tab,
            &format!(
                "document.getElementById('token').value = {}; document.getElementById('login').submit(); true",
                json!(org)
            ),
        );
        assert_eq!(str_of(b.eval(&tab, "location.pathname")), "/dashboard/");
        let runs = str_of(b.eval(&tab, "document.getElementById('total-runs').textContent"));
        assert_eq!(runs, n.to_string());
        let kwh = b
            .eval(&tab, "Number(document.getElementById('total-energy').dataset.kwh)")
            .as_f64()
            .unwrap();
        assert!((kwh - total_kwh).abs() < 1e-9 * total_kwh, "{kwh} vs {total_kwh}");
        let kg = b
            .eval(&tab, "Number(document.getElementById('total-emissions').dataset.kg)")
            .as_f64()
            .unwrap();
        assert!((kg - total_kg).abs() < 1e-9 * total_kg, "{kg} vs {total_kg}");
        let overview = b.screenshot(&tab, false);
        // (page, URL, charts it draws)
        let pages = [
            ("team", format!("{origin}/dashboard/teams/vision"), 4),
            ("project", format!("{origin}/dashboard/teams/nlp/projects/llm-finetune"), 2),
            ("user", format!("{origin}/dashboard/users/chen"), 2),
            ("run", format!("{origin}/dashboard/teams/{plot_team}/runs/{plot_id}"), 3),
            ("regions", format!("{origin}/dashboard/regions"), 0),
        ];
        let mut shots = vec![("overview", overview)];
        for (name, url, want) in &pages {
            b.navigate(&tab, url);
            assert_eq!(str_of(b.eval(&tab, "document.location.href")), *url, "{name}");
            let charts = b.eval(&tab, "document.querySelectorAll('svg.chart').length").as_u64().unwrap();
            assert_eq!(charts, *want, "{name}: {charts} charts");
            if *name == "run" {
                // The run page plots its samples: a line per device.
                let lines = b
                    .eval(&tab, "document.querySelectorAll('#power path').length")
                    .as_u64()
                    .unwrap();
                assert!(lines >= 2, "power lines: {lines}");
            }
            shots.push((name, b.screenshot(&tab, true)));
        }
        assert_clean(&b, &tab, &origin, "realistic dataset");
        for (name, png) in &shots {
            let (w, h) = png_size(png);
            assert!((1200..=1280).contains(&w), "{name}: width {w}");
            assert!(h >= 900, "{name}: {h}");
            assert!(png.len() > 40_000, "{name}: {} bytes", png.len());
            if let Some(dir) = &out_dir {
                let file = if *name == "overview" {
                    "dashboard.png".to_string()
                } else {
                    format!("dashboard-{name}.png")
                };
                let p = std::path::Path::new(dir).join(file);
                std::fs::write(&p, png).unwrap();
                eprintln!("wrote {} ({} bytes)", p.display(), png.len());
            }
        }
    })
    .await;
    s.stop().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
