#![allow(clippy::unwrap_used)]
//! `wattprint when` end to end: the real binary against a real HTTP server on loopback
//! (127.0.0.1, port 0) reached through the providers' base-URL variables, with a temporary
//! `WATTPRINT_HOME` for the cache.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use wattprint_core::providers::{iso, now_unix};

struct Server {
    url: String,
    log: Arc<Log>,
}

impl Server {
    fn start(handler: impl Fn(&str) -> (u16, String) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (h, l) = (Arc::new(handler), log.clone());
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let (h, l) = (h.clone(), l.clone());
                std::thread::spawn(move || serve(s, &*h, &l));
            }
        });
        Server { url, log }
    }
    fn paths(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.0.clone())
            .collect()
    }
    fn header(&self, i: usize, name: &str) -> Option<String> {
        self.log.lock().unwrap()[i]
            .1
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

type Log = Mutex<Vec<(String, Vec<(String, String)>)>>;

fn serve(stream: TcpStream, handler: &(dyn Fn(&str) -> (u16, String) + Send + Sync), log: &Log) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    log.lock().unwrap().push((path.clone(), headers));
    let (code, body) = handler(&path);
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The binary with every provider setting cleared and a fresh home.
fn wattprint(home: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wattprint"));
    c.args(args).env("WATTPRINT_HOME", home);
    for v in [
        "WATTPRINT_LOCATION",
        "WATTPRINT_INTENSITY_PROVIDER",
        "WATTPRINT_ELECTRICITYMAPS_TOKEN",
        "WATTPRINT_ELECTRICITYMAPS_URL",
        "WATTPRINT_ELECTRICITYMAPS_FACTOR",
        "WATTPRINT_UK_CI_URL",
        "WATTPRINT_WATTTIME_URL",
        "WATTPRINT_WATTTIME_USERNAME",
        "WATTPRINT_WATTTIME_PASSWORD",
        "WATTPRINT_PROVIDER_TIMEOUT",
        "WATTPRINT_INTENSITY_CACHE",
        "WATTPRINT_DEBUG",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// An Electricity Maps forecast from the current hour: 100 + i, except hours 8–10 at 20.
fn em_forecast_server(hours: i64) -> (Server, i64) {
    let h = now_unix().div_euclid(3600) * 3600;
    let s = Server::start(move |path| {
        if !path.starts_with("/v3/carbon-intensity/forecast?zone=FR") {
            return (404, r#"{"message":"Zone does not exist"}"#.into());
        }
        let f: Vec<String> = (0..hours)
            .map(|i| {
                let g = if (8..11).contains(&i) { 20 } else { 100 + i };
                format!(
                    r#"{{"carbonIntensity":{g},"datetime":"{}"}}"#,
                    iso::format(h + i * 3600).replace('Z', ".000Z")
                )
            })
            .collect();
        (
            200,
            format!(
                r#"{{"zone":"FR","forecast":[{}],"updatedAt":"x"}}"#,
                f.join(",")
            ),
        )
    });
    (s, h)
}

#[test]
fn when_finds_the_clean_window_from_electricity_maps() {
    let (s, h) = em_forecast_server(48);
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("WATTPRINT_ELECTRICITYMAPS_URL", s.url.as_str()),
        ("WATTPRINT_ELECTRICITYMAPS_TOKEN", "secret-token"),
    ];
    let o = wattprint(
        home.path(),
        &env,
        &[
            "when",
            "--location",
            "FR",
            "--duration",
            "3h",
            "--within",
            "24h",
            "--kwh",
            "10",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["provider"], "electricitymaps");
    assert_eq!(v["selected_by"], "WATTPRINT_ELECTRICITYMAPS_TOKEN is set");
    assert_eq!(v["signal"], "average");
    assert_eq!(v["best"]["start"].as_i64().unwrap(), h + 8 * 3600);
    assert_eq!(v["best"]["end"].as_i64().unwrap(), h + 11 * 3600);
    assert_eq!(v["best"]["g_per_kwh"].as_f64().unwrap(), 20.0);
    let now_g = v["start_now"]["g_per_kwh"].as_f64().unwrap();
    assert!((100.0..=104.0).contains(&now_g), "{now_g}");
    let pct = v["saving_percent"].as_f64().unwrap();
    // Rounded to 6 significant digits (no floating noise).
    let want = (now_g - 20.0) / now_g * 100.0;
    assert!((pct - want).abs() <= 5e-6 * want, "{pct} vs {want}");
    assert!(pct.to_string().len() <= 8, "{pct}");
    let saving_kg = v["saving_kg"].as_f64().unwrap();
    // both the saving and now_g are rounded to 6 significant digits: allow for each
    assert!(
        (saving_kg - 10.0 * (now_g - 20.0) / 1000.0).abs()
            <= 5e-6 * saving_kg + 10.0 * 5e-6 * now_g / 1000.0,
        "{saving_kg} vs now {now_g}"
    );
    assert_eq!(v["best"]["emissions_kg"].as_f64().unwrap(), 0.2);
    // The window stays inside --within.
    assert!(v["horizon_end"].as_i64().unwrap() <= v["now"].as_i64().unwrap() + 24 * 3600);
    assert_eq!(s.header(0, "auth-token").as_deref(), Some("secret-token"));
    // Cached under $WATTPRINT_HOME/cache/intensity/: a second call does not reach the server.
    let files: Vec<_> = std::fs::read_dir(home.path().join("cache/intensity"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1);
    let o = wattprint(
        home.path(),
        &env,
        &["when", "--location", "FR", "--duration", "3h"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(s.paths().len(), 1, "served from the cache: {:?}", s.paths());
    let text = stdout(&o);
    let best = iso::format(h + 8 * 3600);
    assert!(
        text.contains(&format!("{} {} UTC", &best[..10], &best[11..16])),
        "{text}"
    );
    assert!(
        text.contains("saving") && text.contains("20.0 gCO2e/kWh"),
        "{text}"
    );
    // --no-cache asks again.
    let o = wattprint(
        home.path(),
        &env,
        &["when", "--location", "FR", "--duration", "3h", "--no-cache"],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(s.paths().len(), 2);
}

#[test]
fn a_job_longer_than_the_forecast_is_refused() {
    let (s, _) = em_forecast_server(6);
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("WATTPRINT_ELECTRICITYMAPS_URL", s.url.as_str()),
        ("WATTPRINT_ELECTRICITYMAPS_TOKEN", "t"),
    ];
    let o = wattprint(
        home.path(),
        &env,
        &["when", "--location", "FR", "--duration", "8h"],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("longer than the usable forecast horizon") && e.contains("8h"),
        "{e}"
    );
    // Longer than --within: refused before any request.
    let o = wattprint(
        home.path(),
        &env,
        &[
            "when",
            "--location",
            "FR",
            "--duration",
            "8h",
            "--within",
            "4h",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--within"), "{}", stderr(&o));
    assert_eq!(s.paths().len(), 1);
}

#[test]
fn without_a_provider_when_says_how_to_configure_one() {
    let home = tempfile::tempdir().unwrap();
    let o = wattprint(
        home.path(),
        &[],
        &["when", "--location", "FR", "--duration", "6h"],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    for needle in [
        "no carbon-intensity forecast provider is configured",
        "WATTPRINT_ELECTRICITYMAPS_TOKEN",
        "WATTPRINT_WATTTIME_USERNAME",
        "--provider uk",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in {e}");
    }
    assert!(stdout(&o).is_empty());
    // `none` switches providers off explicitly, even with a token present.
    let o = wattprint(
        home.path(),
        &[
            ("WATTPRINT_INTENSITY_PROVIDER", "none"),
            ("WATTPRINT_ELECTRICITYMAPS_TOKEN", "t"),
            ("WATTPRINT_ELECTRICITYMAPS_URL", "http://127.0.0.1:9"),
        ],
        &["when", "--location", "FR", "--duration", "6h"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no carbon-intensity forecast provider"));
}

#[test]
fn uk_provider_by_flag_with_default_zone() {
    let half = now_unix().div_euclid(1800) * 1800;
    let s = Server::start(move |path| {
        if !(path.starts_with("/intensity/") && path.ends_with("/fw48h")) {
            return (404, "{}".into());
        }
        let periods: Vec<String> = (0..96)
            .map(|i| {
                let a = half + i * 1800;
                let g = if (20..24).contains(&i) { 35 } else { 180 };
                format!(
                    r#"{{"from":"{}","to":"{}","intensity":{{"forecast":{g},"actual":null,"index":"moderate"}}}}"#,
                    iso::format_minutes(a),
                    iso::format_minutes(a + 1800)
                )
            })
            .collect();
        (200, format!(r#"{{"data":[{}]}}"#, periods.join(",")))
    });
    let home = tempfile::tempdir().unwrap();
    let o = wattprint(
        home.path(),
        &[("WATTPRINT_UK_CI_URL", s.url.as_str())],
        &["when", "--provider", "uk", "--duration", "2h", "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["zone"], "GB");
    assert_eq!(v["best"]["start"].as_i64().unwrap(), half + 20 * 1800);
    assert_eq!(v["best"]["g_per_kwh"].as_f64().unwrap(), 35.0);
    assert_eq!(v["start_now"]["g_per_kwh"].as_f64().unwrap(), 180.0);
    assert_eq!(
        v["saving_percent"].as_f64().unwrap(),
        80.5556,
        "6 significant digits"
    );
    assert!(s.paths()[0].starts_with("/intensity/"));
}

#[test]
fn provider_errors_exit_2_with_the_fix() {
    let s = Server::start(|_| (401, r#"{"message":"Invalid auth-token"}"#.into()));
    let home = tempfile::tempdir().unwrap();
    let o = wattprint(
        home.path(),
        &[
            ("WATTPRINT_ELECTRICITYMAPS_URL", s.url.as_str()),
            ("WATTPRINT_ELECTRICITYMAPS_TOKEN", "wrong"),
        ],
        &["when", "--location", "FR", "--duration", "1h"],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("unauthorized") && e.contains("WATTPRINT_ELECTRICITYMAPS_TOKEN"),
        "{e}"
    );
    // Garbage is reported, not a panic.
    let s = Server::start(|_| (200, "<html>maintenance</html>".into()));
    let o = wattprint(
        home.path(),
        &[
            ("WATTPRINT_ELECTRICITYMAPS_URL", s.url.as_str()),
            ("WATTPRINT_ELECTRICITYMAPS_TOKEN", "t"),
        ],
        &["when", "--location", "FR", "--duration", "1h"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unexpected response"), "{}", stderr(&o));
    // Bad flags and settings.
    for (env, args, needle) in [
        (vec![], vec!["--duration", "soon"], "--duration"),
        (vec![], vec!["--duration", "1h", "--kwh=-3"], "--kwh"),
        (
            vec![("WATTPRINT_PROVIDER_TIMEOUT", "fast")],
            vec!["--duration", "1h"],
            "WATTPRINT_PROVIDER_TIMEOUT",
        ),
        (
            vec![("WATTPRINT_INTENSITY_PROVIDER", "bogus")],
            vec!["--duration", "1h"],
            "not a provider",
        ),
        (
            vec![
                ("WATTPRINT_UK_CI_URL", "ftp://x"),
                ("WATTPRINT_INTENSITY_PROVIDER", "uk"),
            ],
            vec!["--duration", "1h"],
            "must start with https://",
        ),
        (
            vec![("WATTPRINT_INTENSITY_PROVIDER", "watttime")],
            vec!["--duration", "1h"],
            "WATTPRINT_WATTTIME_PASSWORD",
        ),
    ] {
        let mut env = env;
        env.push(("WATTPRINT_ELECTRICITYMAPS_TOKEN", "t"));
        env.push(("WATTPRINT_ELECTRICITYMAPS_URL", "http://127.0.0.1:9"));
        let mut a = vec!["when", "--location", "FR"];
        a.extend(args);
        let o = wattprint(home.path(), &env, &a);
        assert_eq!(o.status.code(), Some(2), "{a:?}");
        assert!(stderr(&o).contains(needle), "{a:?}: {}", stderr(&o));
    }
}

#[test]
fn watttime_marginal_signal_is_labelled() {
    let now5 = now_unix().div_euclid(300) * 300;
    let s = Server::start(move |path| {
        if path == "/login" {
            return (200, r#"{"token":"tk"}"#.into());
        }
        let data: Vec<String> = (0..288)
            .map(|i| {
                let lbs = if (100..124).contains(&i) { 500 } else { 1500 };
                format!(
                    r#"{{"point_time":"{}","value":{lbs}}}"#,
                    iso::format(now5 + i * 300).replace('Z', "+00:00")
                )
            })
            .collect();
        (
            200,
            format!(
                r#"{{"data":[{}],"meta":{{"region":"CAISO_NORTH","signal_type":"co2_moer","units":"lbs_co2_per_mwh","data_point_period_seconds":300,"generated_at":"{}"}}}}"#,
                data.join(","),
                iso::format(now5)
            ),
        )
    });
    let home = tempfile::tempdir().unwrap();
    let o = wattprint(
        home.path(),
        &[
            ("WATTPRINT_WATTTIME_URL", s.url.as_str()),
            ("WATTPRINT_WATTTIME_USERNAME", "u"),
            ("WATTPRINT_WATTTIME_PASSWORD", "p"),
        ],
        &["when", "--location", "CAISO_NORTH", "--duration", "2h"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("watttime, marginal signal"), "{text}");
    assert!(text.contains("marginal signal: the saving"), "{text}");
    // 500 lbs/MWh = 226.8 g/kWh.
    assert!(text.contains("226.8 gCO2e/kWh"), "{text}");
    assert_eq!(s.paths()[0], "/login");
}

/// GB half-hour slots from an hour ago to two days ahead at `g`, for any range or forecast.
fn uk_flat_server(g: u32, status: u16) -> Server {
    let half = now_unix().div_euclid(1800) * 1800;
    Server::start(move |path| {
        if status != 200 {
            return (status, "{}".into());
        }
        if !path.starts_with("/intensity/") {
            return (404, "{}".into());
        }
        let periods: Vec<String> = (-2..96)
            .map(|i| {
                let a = half + i * 1800;
                format!(
                    r#"{{"from":"{}","to":"{}","intensity":{{"forecast":{g},"actual":{g},"index":"low"}}}}"#,
                    iso::format_minutes(a),
                    iso::format_minutes(a + 1800)
                )
            })
            .collect();
        (200, format!(r#"{{"data":[{}]}}"#, periods.join(",")))
    })
}

fn run_json(home: &std::path::Path, env: &[(&str, &str)], extra: &[&str]) -> (Output, Value) {
    let js = home.join("r.json");
    let mut args = vec![
        "run",
        "--quiet",
        "--interval",
        "50ms",
        "--json",
        js.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sleep", "0.3"]);
    let mut env = env.to_vec();
    env.push(("WATTPRINT_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1"));
    let o = wattprint(home, &env, &args);
    let v = serde_json::from_str(&std::fs::read_to_string(&js).unwrap_or_default())
        .unwrap_or(Value::Null);
    (o, v)
}

#[test]
fn run_is_valued_hour_by_hour_with_a_live_provider() {
    let s = uk_flat_server(120, 200);
    let home = tempfile::tempdir().unwrap();
    let (o, r) = run_json(
        home.path(),
        &[("WATTPRINT_UK_CI_URL", s.url.as_str())],
        &["--provider", "uk"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ci = &r["carbon_intensity"];
    // The series' real resolution: the GB API is half-hourly.
    assert_eq!(ci["resolution"], "30 min", "{r}");
    assert_eq!(ci["signal"], "average");
    assert!(
        (ci["g_per_kwh"].as_f64().unwrap() - 120.0).abs() < 1e-6,
        "{ci}"
    );
    assert!(ci["source"].as_str().unwrap().contains("uk"), "{ci}");
    // operational emissions = facility energy × 120 g/kWh
    let it = r["energy_kwh"]["total"].as_f64().unwrap();
    let pue = r["pue"].as_f64().unwrap();
    let op = r["emissions_kg"]["operational"].as_f64().unwrap();
    assert!(
        (op - it * pue * 0.120).abs() <= 1e-9 * op.max(1e-12),
        "{op} vs {}",
        it * pue * 0.12
    );
    assert!(s.paths().iter().any(|p| p.starts_with("/intensity/")));
}

#[test]
fn a_failing_provider_falls_back_to_the_static_factor_and_says_so() {
    let s = uk_flat_server(120, 500);
    let home = tempfile::tempdir().unwrap();
    let (o, r) = run_json(
        home.path(),
        &[("WATTPRINT_UK_CI_URL", s.url.as_str())],
        &["--provider", "uk", "--location", "GB"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(r["carbon_intensity"]["resolution"], "constant");
    let static_gb = r["carbon_intensity"]["g_per_kwh"].as_f64().unwrap();
    assert!(static_gb > 0.0 && (static_gb - 120.0).abs() > 1.0);
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("live intensity not used")),
        "{r}"
    );
}

#[test]
fn start_when_clean_starts_at_once_under_the_threshold_and_needs_a_provider() {
    let s = uk_flat_server(50, 200);
    let home = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let (o, r) = run_json(
        home.path(),
        &[("WATTPRINT_UK_CI_URL", s.url.as_str())],
        &[
            "--provider",
            "uk",
            "--start-when-clean",
            "--threshold",
            "100",
            "--within",
            "6h",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(t.elapsed().as_secs_f64() < 10.0);
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("started when clean")),
        "{r}"
    );
    // without a provider: exit 2, how to configure one, and the job never ran
    let marker = home.path().join("ran");
    let o = wattprint(
        home.path(),
        &[],
        &[
            "run",
            "--start-when-clean",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("provider"), "{}", stderr(&o));
    assert!(!marker.exists());
}

// ---------------------------------------------------------------------------------------------
// Issue 18: the record, summary, `show`, reports and `when` state the live intensity used and
// credit its provider.

fn assumption(r: &Value, name: &str) -> Option<f64> {
    r["assumptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .map(|a| a["value"].as_f64().unwrap())
}

/// Points 3, 4 and 7 through the binary: `run --provider uk` without `--location` (GB national
/// periods in the API reference's shape, see `uk_flat_server`).
#[test]
fn a_live_run_records_the_intensity_used_and_credits_the_provider() {
    let s = uk_flat_server(132, 200);
    let home = tempfile::tempdir().unwrap();
    let env = [("WATTPRINT_UK_CI_URL", s.url.as_str())];
    let (o, r) = run_json(home.path(), &env, &["--provider", "uk"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ci = &r["carbon_intensity"];
    assert_eq!(
        ci["g_per_kwh"].as_f64().unwrap(),
        132.0,
        "no floating noise: {ci}"
    );
    let live = &ci["live"];
    assert_eq!(live["provider"], "uk");
    assert_eq!(live["zone"], "GB");
    assert_eq!(live["resolution_s"], 1800);
    assert_eq!(live["time_weighted_g_per_kwh"].as_f64().unwrap(), 132.0);
    assert!(live["points"]["actual"].as_u64().unwrap() >= 1, "{live}");
    assert_eq!(live["points"]["forecast"], 0);
    assert_eq!(live["attribution"]["licence"], "CC BY 4.0");
    let retrieved = iso::parse(live["retrieved_at"].as_str().unwrap()).unwrap();
    assert!((retrieved - now_unix()).abs() < 120, "{live}");
    let fallback = live["static_fallback_g_per_kwh"].as_f64().unwrap();
    assert!(fallback > 0.0 && fallback != 132.0, "{live}");
    // The assumptions state the intensity used, and the static factor only as the fallback.
    assert_eq!(assumption(&r, "carbon intensity"), Some(132.0), "{r}");
    assert_eq!(
        assumption(&r, "carbon intensity fallback (static, not used)"),
        Some(fallback)
    );
    let warnings = r["warnings"].to_string();
    assert!(!warnings.contains("world average"), "{warnings}");
    // `show` and the summary say which provider, under which licence, retrieved when.
    let id = r["id"].as_str().unwrap();
    let o = wattprint(home.path(), &env, &["show", id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    for want in [
        "live intensity: uk GB, 30 min intervals",
        "CC BY 4.0",
        "retrieved ",
        "static fallback",
        "not used",
        "time-weighted",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    // The world average appears only as the unused fallback, never as a warning.
    assert!(
        !text
            .lines()
            .any(|l| l.contains("warning") && l.contains("world average")),
        "{text}"
    );
    // Reports credit the data; GB data is not restricted.
    let md = wattprint(home.path(), &env, &["report", id, "--format", "md"]);
    let md = stdout(&md);
    assert!(
        md.contains("Live intensity data") && md.contains("CC BY 4.0"),
        "{md}"
    );
    assert!(!md.contains("Restricted data"), "{md}");
}

/// Point 4: a report embedding Electricity Maps data (restricted redistribution) says so.
/// History body: `{zone, history:[{zone, carbonIntensity, datetime, updatedAt, createdAt,
/// emissionFactorType, isEstimated, estimationMethod}]}` (Electricity Maps v3 reference, as
/// read by the Carbon Aware SDK's `Model/*.cs`).
#[test]
fn a_report_embedding_electricity_maps_data_says_it_is_restricted() {
    let h = now_unix().div_euclid(3600) * 3600;
    let s = Server::start(move |path| {
        if !path.starts_with("/v3/carbon-intensity/history?zone=FR") {
            return (404, "{}".into());
        }
        let e: Vec<String> = (0..24)
            .map(|i| {
                format!(
                    r#"{{"zone":"FR","carbonIntensity":{},"datetime":"{}","updatedAt":"x","createdAt":"x","emissionFactorType":"lifecycle","isEstimated":true,"estimationMethod":"TIME_SLICER_AVERAGE"}}"#,
                    40 + i,
                    iso::format(h - (23 - i) * 3600).replace('Z', ".000Z")
                )
            })
            .collect();
        (
            200,
            format!(r#"{{"zone":"FR","history":[{}]}}"#, e.join(",")),
        )
    });
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("WATTPRINT_ELECTRICITYMAPS_URL", s.url.as_str()),
        ("WATTPRINT_ELECTRICITYMAPS_TOKEN", "t"),
    ];
    let (o, r) = run_json(home.path(), &env, &["--location", "FR"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let live = &r["carbon_intensity"]["live"];
    assert_eq!(live["provider"], "electricitymaps", "{r}");
    assert_eq!(live["attribution"]["restricted"], true);
    // Estimates are carried as estimates (point 2).
    assert!(live["points"]["estimated"].as_u64().unwrap() >= 1, "{live}");
    assert_eq!(live["points"]["actual"], 0);
    assert!(r["warnings"].to_string().contains("estimates"), "{r}");
    let id = r["id"].as_str().unwrap();
    for fmt in ["html", "md"] {
        let o = wattprint(home.path(), &env, &["report", id, "--format", fmt]);
        let text = stdout(&o);
        assert!(text.contains("Restricted data"), "{fmt}: {text}");
        assert!(text.contains("Electricity Maps"), "{fmt}: {text}");
    }
}

/// Point 4 in `when`: text and `--json` name the provider, its licence and the retrieval time.
#[test]
fn when_credits_the_provider_with_licence_and_retrieval_time() {
    let s = uk_flat_server(80, 200);
    let home = tempfile::tempdir().unwrap();
    let env = [("WATTPRINT_UK_CI_URL", s.url.as_str())];
    let o = wattprint(
        home.path(),
        &env,
        &["when", "--provider", "uk", "--duration", "1h"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("data: Carbon Intensity API"), "{text}");
    assert!(
        text.contains("CC BY 4.0") && text.contains("retrieved 20"),
        "{text}"
    );
    let o = wattprint(
        home.path(),
        &env,
        &["when", "--provider", "uk", "--duration", "1h", "--json"],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["attribution"]["licence"], "CC BY 4.0");
    assert_eq!(v["attribution"]["provider"], "uk");
    // Served from the cache: the retrieval time is the first call's.
    let t = iso::parse(v["retrieved_at"].as_str().unwrap()).unwrap();
    assert!(t <= now_unix() && now_unix() - t < 120, "{v}");
    assert_eq!(s.paths().len(), 1);
}

/// Point 5 through the binary: a WattTime run whose `/v3/historical` has not caught up is
/// valued with the forecast head (marked forecast); `show --revalue` later finds the
/// historical values and revalues it. Bodies: `{"data":[{"point_time","value"}],"meta":{…}}`
/// (WattTime API v3 docs, docs.watttime.org).
#[test]
fn show_revalue_replaces_forecast_values_once_watttime_publishes_them() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let published = Arc::new(AtomicBool::new(false));
    let p2 = published.clone();
    let body = |start: i64, n: i64, lbs: f64| {
        let data: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"point_time":"{}","value":{lbs}}}"#,
                    iso::format(start + i * 300).replace('Z', "+00:00")
                )
            })
            .collect();
        format!(
            r#"{{"data":[{}],"meta":{{"data_point_period_seconds":300,"region":"CAISO_NORTH","signal_type":"co2_moer","units":"lbs_co2_per_mwh","generated_at":"{}"}}}}"#,
            data.join(","),
            iso::format(start).replace('Z', "+00:00")
        )
    };
    let s = Server::start(move |path| {
        if path == "/login" {
            return (200, r#"{"token":"t"}"#.into());
        }
        let now5 = now_unix().div_euclid(300) * 300;
        if path.starts_with("/v3/forecast") {
            return (200, body(now5, 24, 2000.0));
        }
        if path.starts_with("/v3/historical") {
            let q = |k: &str| {
                path.split(&format!("{k}="))
                    .nth(1)
                    .and_then(|v| v.split('&').next())
                    .map(|v| v.replace("%3A", ":"))
                    .and_then(|v| iso::parse(&v))
                    .unwrap()
            };
            let (a, b) = (q("start").div_euclid(300) * 300, q("end"));
            let n = (b - a + 299) / 300;
            return if p2.load(Ordering::SeqCst) {
                (200, body(a, n, 1000.0))
            } else {
                // Published only up to 30 minutes before the range.
                (200, body(a - 3600, 6, 1000.0))
            };
        }
        (404, "{}".into())
    });
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("WATTPRINT_WATTTIME_URL", s.url.as_str()),
        ("WATTPRINT_WATTTIME_USERNAME", "u"),
        ("WATTPRINT_WATTTIME_PASSWORD", "p"),
    ];
    let (o, r) = run_json(home.path(), &env, &["--zone", "CAISO_NORTH"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let live = &r["carbon_intensity"]["live"];
    assert_eq!(live["provider"], "watttime", "{r}");
    assert_eq!(live["resolution_s"], 300);
    assert!(live["points"]["forecast"].as_u64().unwrap() >= 1, "{live}");
    assert_eq!(live["points"]["actual"], 0);
    assert_eq!(r["carbon_intensity"]["resolution"], "5 min");
    let before = r["carbon_intensity"]["g_per_kwh"].as_f64().unwrap();
    assert!((before - 907.185).abs() < 0.01, "2000 lbs/MWh: {before}");
    let id = r["id"].as_str().unwrap().to_string();
    // Published now: revalue.
    published.store(true, Ordering::SeqCst);
    let o = wattprint(home.path(), &env, &["show", "--revalue", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("revalued"), "{}", stderr(&o));
    let o = wattprint(home.path(), &env, &["show", "--json", &id]);
    let r2: Value = serde_json::from_slice(&o.stdout).unwrap();
    let live = &r2["carbon_intensity"]["live"];
    assert_eq!(live["points"]["forecast"], 0, "{live}");
    assert!(live["points"]["actual"].as_u64().unwrap() >= 1);
    let after = r2["carbon_intensity"]["g_per_kwh"].as_f64().unwrap();
    assert!((after - 453.592).abs() < 0.01, "1000 lbs/MWh: {after}");
    let op = r2["emissions_kg"]["operational"].as_f64().unwrap();
    let op0 = r["emissions_kg"]["operational"].as_f64().unwrap();
    assert!((op / op0 - after / before).abs() < 1e-3, "{op} vs {op0}");
    assert!(
        !r2["warnings"].to_string().contains("forecast values"),
        "{r2}"
    );
    // A run valued at a static factor has nothing to revalue.
    let (_, r3) = run_json(home.path(), &[], &["--location", "FR"]);
    let o = wattprint(
        home.path(),
        &[],
        &["show", "--revalue", r3["id"].as_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("nothing to revalue"), "{}", stderr(&o));
}
