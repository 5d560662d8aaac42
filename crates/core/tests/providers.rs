#![allow(clippy::unwrap_used)]
//! Intensity providers against real HTTP servers on loopback (127.0.0.1, port 0) serving
//! hand-written bodies in the providers' documented shapes; the on-disk cache; valuing a run
//! hour by hour; the fallback; signal mixing.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wattprint_core::accounting::{operational_emissions, Intensity};
use wattprint_core::providers::cache::{Cache, Lookup};
use wattprint_core::providers::window::{wait_plan, WaitQuery};
use wattprint_core::providers::{
    hourly_series, intensity_for_run, iso, now_unix, single_signal, CachedProvider,
    ElectricityMaps, EmissionFactorType, IntensityPoint, IntensityProvider, PointKind,
    ProviderError, SeriesError, Signal, UkCarbonIntensity, WattTime,
};
use wattprint_core::units::{GramsPerKwh, Joules};

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 server.

#[derive(Debug, Clone)]
struct Req {
    path: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

enum Reply {
    With(u16, Vec<(&'static str, String)>, String),
    /// Accept and never answer.
    Hang,
}

fn ok(body: impl Into<String>) -> Reply {
    Reply::With(200, vec![], body.into())
}

fn status(code: u16, body: &str) -> Reply {
    Reply::With(code, vec![], body.to_string())
}

struct Server {
    url: String,
    log: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    fn start(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let log2 = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (h, l) = (handler.clone(), log2.clone());
                std::thread::spawn(move || serve(stream, &*h, &l));
            }
        });
        Server { url, log }
    }

    fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }
}

fn serve(
    stream: TcpStream,
    handler: &(dyn Fn(&Req) -> Reply + Send + Sync),
    log: &Mutex<Vec<Req>>,
) {
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
    let req = Req { path, headers };
    log.lock().unwrap().push(req.clone());
    let mut stream = stream;
    match handler(&req) {
        Reply::Hang => std::thread::sleep(Duration::from_secs(5)),
        Reply::With(code, extra, body) => {
            let mut head = format!(
                "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in extra {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    }
}

const T: Duration = Duration::from_secs(5);

/// Start of the current hour.
fn hour() -> i64 {
    now_unix().div_euclid(3600) * 3600
}

fn em(url: &str) -> ElectricityMaps {
    ElectricityMaps::new(url, "tok-123", T)
}

// ---------------------------------------------------------------------------------------------
// Electricity Maps

fn em_entry(t: i64, g: f64) -> String {
    format!(
        r#"{{"zone":"FR","carbonIntensity":{g},"datetime":"{}","updatedAt":"{}","createdAt":"{}","emissionFactorType":"lifecycle","isEstimated":false,"estimationMethod":null}}"#,
        iso_ms(t),
        iso_ms(t + 3000),
        iso_ms(t + 100)
    )
}

/// Electricity Maps writes milliseconds: `2024-05-01T12:00:00.000Z`.
fn iso_ms(t: i64) -> String {
    iso::format(t).replace('Z', ".000Z")
}

#[test]
fn electricity_maps_latest_parses_and_sends_the_token() {
    let s = Server::start(|_| {
        ok(
            r#"{"zone":"FR","carbonIntensity":56,"datetime":"2024-05-01T12:00:00.000Z","updatedAt":"2024-05-01T12:41:00.000Z","createdAt":"2024-04-28T12:45:00.000Z","emissionFactorType":"lifecycle","isEstimated":true,"estimationMethod":"TIME_SLICER_AVERAGE","temporalGranularity":"hourly"}"#,
        )
    });
    let p = em(&s.url).latest("FR").unwrap();
    assert_eq!(p.start, 1_714_564_800);
    assert_eq!(p.end, p.start + 3600);
    assert_eq!(p.g_per_kwh, 56.0);
    // `isEstimated: true`: an estimate, not a measurement, and how it was estimated.
    assert_eq!((p.signal, p.kind), (Signal::Average, PointKind::Estimated));
    assert_eq!(p.estimation_method.as_deref(), Some("TIME_SLICER_AVERAGE"));
    assert!(
        p.source.contains("electricitymaps FR lifecycle"),
        "{}",
        p.source
    );
    let r = &s.requests()[0];
    assert_eq!(
        r.path,
        "/v3/carbon-intensity/latest?zone=FR&emissionFactorType=lifecycle&shouldUseFallbackCallerLookup=false"
    );
    assert_eq!(r.header("auth-token"), Some("tok-123"));
}

#[test]
fn electricity_maps_direct_factor_and_v3_suffix_in_base() {
    let s = Server::start(|_| {
        ok(
            r#"{"zone":"DE","carbonIntensity":301.5,"datetime":"2024-05-01T12:00:00Z","emissionFactorType":"direct","temporalGranularity":"15_minutes"}"#,
        )
    });
    let c = ElectricityMaps::new(&format!("{}/v3/", s.url), "k", T)
        .with_emission_factor_type(EmissionFactorType::Direct);
    let p = c.latest("DE").unwrap();
    assert_eq!(p.end - p.start, 900);
    assert!(p.source.contains("direct"));
    assert_eq!(
        s.requests()[0].path,
        "/v3/carbon-intensity/latest?zone=DE&emissionFactorType=direct&shouldUseFallbackCallerLookup=false"
    );
}

#[test]
fn electricity_maps_history_recent_uses_history_and_old_uses_past_range() {
    let h = hour();
    let s = Server::start(move |r| {
        if r.path.starts_with("/v3/carbon-intensity/history") {
            let entries: Vec<String> = (0..24)
                .map(|i| {
                    let g = if i == 20 {
                        "null".to_string()
                    } else {
                        format!("{}", 100 + i)
                    };
                    em_entry(h - (23 - i) * 3600, 0.0).replace(
                        r#""carbonIntensity":0"#,
                        &format!(r#""carbonIntensity":{g}"#),
                    )
                })
                .collect();
            ok(format!(
                r#"{{"zone":"FR","history":[{}]}}"#,
                entries.join(",")
            ))
        } else if r.path.starts_with("/v3/carbon-intensity/past-range") {
            // Echo hourly points over the requested range.
            let q = r.path.split('?').nth(1).unwrap();
            let get = |k: &str| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .map(|v| v.replace("%3A", ":"))
                    .unwrap()
            };
            let (a, b) = (
                iso::parse(&get("start")).unwrap(),
                iso::parse(&get("end")).unwrap(),
            );
            let entries: Vec<String> = (0..)
                .map(|i| a + i * 3600)
                .take_while(|t| *t < b)
                .map(|t| em_entry(t, 42.0))
                .collect();
            ok(format!(r#"{{"zone":"FR","data":[{}]}}"#, entries.join(",")))
        } else {
            status(404, "{}")
        }
    });
    let c = em(&s.url);
    // The last 6 hours: from /history, filtered; the null hour is skipped.
    let pts = c.history("FR", h - 6 * 3600, h).unwrap();
    assert_eq!(s.count("/v3/carbon-intensity/history"), 1);
    assert_eq!(pts.first().unwrap().start, h - 6 * 3600);
    assert_eq!(pts.len(), 5, "6 hours minus the null one: {pts:?}");
    assert!(pts.iter().all(|p| p.end - p.start == 3600));
    // 15 days ago for 12 days: two past-range chunks (10 + 2 days).
    let from = h - 15 * 86_400;
    let pts = c.history("FR", from, from + 12 * 86_400).unwrap();
    assert_eq!(s.count("/v3/carbon-intensity/past-range"), 2);
    assert_eq!(pts.len(), 12 * 24);
    assert!(pts.windows(2).all(|w| w[1].start == w[0].end));
}

#[test]
fn electricity_maps_forecast_is_cut_at_the_horizon() {
    let h = hour();
    let s = Server::start(move |_| {
        let f: Vec<String> = (0..72)
            .map(|i| {
                format!(
                    r#"{{"carbonIntensity":{},"datetime":"{}"}}"#,
                    50 + i,
                    iso_ms(h + i * 3600)
                )
            })
            .collect();
        ok(format!(
            r#"{{"zone":"FR","forecast":[{}],"updatedAt":"{}"}}"#,
            f.join(","),
            iso_ms(h)
        ))
    });
    let pts = em(&s.url)
        .forecast("FR", Duration::from_secs(24 * 3600))
        .unwrap();
    assert!((24..=25).contains(&pts.len()), "{}", pts.len());
    assert!(pts.iter().all(|p| p.kind == PointKind::Forecast));
    assert_eq!(pts[0].start, h);
    assert_eq!(pts[0].g_per_kwh, 50.0);
    // Spacing inferred as one hour (no temporalGranularity in forecasts).
    assert_eq!(pts[0].end, h + 3600);
}

#[test]
fn electricity_maps_http_errors_map_to_variants() {
    let s = Server::start(|r| {
        let zone = r
            .path
            .split("zone=")
            .nth(1)
            .unwrap_or("")
            .split('&')
            .next()
            .unwrap_or("");
        match zone {
            "AUTH" => status(401, r#"{"status":"error","message":"Invalid auth-token"}"#),
            "FORBID" => status(403, r#"{"message":"not in plan"}"#),
            "RATE" => Reply::With(429, vec![("Retry-After", "30".into())], "{}".into()),
            "RATE2" => status(429, "{}"),
            "BOOM" => status(503, "<html>upstream unavailable</html>"),
            "NOPE" => status(404, r#"{"message":"Zone 'NOPE' does not exist."}"#),
            "BAD" => status(
                400,
                r#"{"status":"error","message":"Invalid zone key: BAD"}"#,
            ),
            "WEIRD" => status(418, "teapot"),
            _ => ok("{}"),
        }
    });
    let c = em(&s.url);
    match c.latest("AUTH").unwrap_err() {
        e @ ProviderError::Unauthorized { status: 401, .. } => {
            assert!(
                e.to_string().contains("WATTPRINT_ELECTRICITYMAPS_TOKEN"),
                "{e}"
            )
        }
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        c.latest("FORBID"),
        Err(ProviderError::Unauthorized { status: 403, .. })
    ));
    assert_eq!(
        c.latest("RATE").unwrap_err(),
        ProviderError::RateLimited {
            provider: "electricitymaps",
            retry_after_s: Some(30)
        }
    );
    assert!(matches!(
        c.latest("RATE2"),
        Err(ProviderError::RateLimited {
            retry_after_s: None,
            ..
        })
    ));
    assert!(matches!(
        c.forecast("BOOM", Duration::from_secs(3600)),
        Err(ProviderError::Server { status: 503, .. })
    ));
    assert!(matches!(
        c.latest("NOPE"),
        Err(ProviderError::UnknownZone { .. })
    ));
    assert!(matches!(
        c.latest("BAD"),
        Err(ProviderError::UnknownZone { .. })
    ));
    assert!(matches!(
        c.latest("WEIRD"),
        Err(ProviderError::BadRequest { status: 418, .. })
    ));
    assert!(matches!(
        c.latest("  "),
        Err(ProviderError::UnknownZone { .. })
    ));
}

#[test]
fn a_server_that_never_answers_times_out() {
    let s = Server::start(|_| Reply::Hang);
    let t0 = Instant::now();
    let e = ElectricityMaps::new(&s.url, "k", Duration::from_millis(300))
        .latest("FR")
        .unwrap_err();
    let took = t0.elapsed();
    assert!(matches!(e, ProviderError::Timeout { ms: 300, .. }), "{e:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(e.to_string().contains("WATTPRINT_PROVIDER_TIMEOUT"));
    // The same for the UK API and WattTime (at login).
    let e = UkCarbonIntensity::new(&s.url, Duration::from_millis(300))
        .forecast("GB", Duration::from_secs(3600))
        .unwrap_err();
    assert!(matches!(e, ProviderError::Timeout { .. }), "{e:?}");
    let e = WattTime::new(&s.url, "u", "p", Duration::from_millis(300))
        .forecast("CAISO_NORTH", Duration::from_secs(3600))
        .unwrap_err();
    assert!(matches!(e, ProviderError::Timeout { .. }), "{e:?}");
}

#[test]
fn connection_refused_is_a_network_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = em(&format!("http://127.0.0.1:{port}"))
        .latest("FR")
        .unwrap_err();
    assert!(matches!(e, ProviderError::Network { .. }), "{e:?}");
    assert!(!e.to_string().contains("zone=FR"), "query redacted: {e}");
}

/// Bodies that are not what Electricity Maps documents: each is `Garbage`, none panics.
#[test]
fn electricity_maps_garbage_bodies_are_garbage_errors() {
    let bodies: Vec<(&str, &str)> = vec![
        (
            "html",
            "<!DOCTYPE html><html><body>Captive portal</body></html>",
        ),
        ("empty", ""),
        ("truncated", r#"{"zone":"FR","carbonIntensity":5"#),
        ("array", "[1,2,3]"),
        (
            "string ci",
            r#"{"carbonIntensity":"56","datetime":"2024-05-01T12:00:00Z"}"#,
        ),
        (
            "null ci",
            r#"{"carbonIntensity":null,"datetime":"2024-05-01T12:00:00Z"}"#,
        ),
        (
            "negative",
            r#"{"carbonIntensity":-3,"datetime":"2024-05-01T12:00:00Z"}"#,
        ),
        (
            "bad date",
            r#"{"carbonIntensity":5,"datetime":"yesterday"}"#,
        ),
        (
            "number date",
            r#"{"carbonIntensity":5,"datetime":1714564800}"#,
        ),
        ("no date", r#"{"carbonIntensity":5}"#),
        ("binary", "\u{0}\u{1}\u{2}\u{fffd}"),
    ];
    let bodies: Vec<(String, String)> = bodies
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let shared = Arc::new(bodies.clone());
    let s = Server::start(move |r| {
        let i: usize = r
            .path
            .split("zone=Z")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        ok(shared[i].1.clone())
    });
    let c = em(&s.url);
    for (i, (name, _)) in bodies.iter().enumerate() {
        let e = c.latest(&format!("Z{i}")).unwrap_err();
        assert!(matches!(e, ProviderError::Garbage { .. }), "{name}: {e:?}");
        assert!(!e.to_string().is_empty());
    }
    // Wrong shapes for the list endpoints.
    let s = Server::start(|r| {
        if r.path.contains("forecast") {
            ok(r#"{"zone":"FR","forecast":{"carbonIntensity":3}}"#)
        } else {
            ok(
                r#"{"zone":"FR","history":[{"carbonIntensity":true,"datetime":"2024-05-01T12:00:00Z"}]}"#,
            )
        }
    });
    let c = em(&s.url);
    let e = c.forecast("FR", Duration::from_secs(3600)).unwrap_err();
    assert!(e.to_string().contains("`forecast` is an object"), "{e}");
    let e = c.history("FR", now_unix() - 3600, now_unix()).unwrap_err();
    assert!(e.to_string().contains("a boolean"), "{e}");
    // The excerpt of an HTML body is in the message.
    let s = Server::start(|_| ok("<html><title>Login</title></html>"));
    let e = em(&s.url).latest("FR").unwrap_err().to_string();
    assert!(e.contains("not JSON") && e.contains("<html>"), "{e}");
}

/// Pseudo-random bodies and JSON with every field of every type: never a panic.
#[test]
fn no_body_makes_any_provider_panic() {
    let mut bodies: Vec<String> = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in 0..40 {
        let s: String = (0..n * 7)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                {
                    let alphabet = b"{}[]\":,0123456789.-eE ntrufalsdatcbIy";
                    char::from(alphabet[(x % alphabet.len() as u64) as usize])
                }
            })
            .collect();
        bodies.push(s);
    }
    let values = [
        "null",
        "true",
        "1e400",
        "-1",
        "\"x\"",
        "[]",
        "{}",
        "[{}]",
        "1.5",
        "\"2024-05-01T12:00Z\"",
    ];
    for v in values {
        for tmpl in [
            r#"{"carbonIntensity":V,"datetime":V}"#,
            r#"{"history":V,"forecast":V,"data":V}"#,
            r#"{"history":[V],"forecast":[V],"data":[V]}"#,
            r#"{"data":[{"from":V,"to":V,"intensity":V}]}"#,
            r#"{"data":[{"from":"2024-05-01T12:00Z","to":"2024-05-01T12:30Z","intensity":{"forecast":V,"actual":V}}]}"#,
            r#"{"data":{"regionid":V,"data":[{"from":"2024-05-01T12:00Z","to":"2024-05-01T12:30Z","intensity":{"forecast":V}}]}}"#,
            r#"{"data":[{"point_time":V,"value":V}],"meta":V}"#,
            r#"{"data":[{"point_time":"2024-05-01T12:00:00+00:00","value":V}],"meta":{"units":V,"data_point_period_seconds":V,"signal_type":V}}"#,
            r#"{"token":V}"#,
        ] {
            bodies.push(tmpl.replace('V', v));
        }
    }
    let bodies = Arc::new(bodies);
    let n = bodies.len();
    let idx = Arc::new(Mutex::new(0usize));
    let (b2, i2) = (bodies.clone(), idx.clone());
    let s = Server::start(move |r| {
        if r.path == "/login" {
            return ok(r#"{"token":"t"}"#);
        }
        ok(b2[*i2.lock().unwrap()].clone())
    });
    let providers: Vec<Box<dyn IntensityProvider>> = vec![
        Box::new(em(&s.url)),
        Box::new(UkCarbonIntensity::new(&s.url, T)),
        Box::new(WattTime::new(&s.url, "u", "p", T)),
    ];
    let mut errors = 0;
    for i in 0..n {
        *idx.lock().unwrap() = i;
        for p in &providers {
            let zone = if p.name() == "uk" { "GB" } else { "FR" };
            errors += usize::from(p.latest(zone).is_err());
            errors += usize::from(p.forecast(zone, Duration::from_secs(3600)).is_err());
            errors += usize::from(p.history(zone, now_unix() - 3600, now_unix()).is_err());
        }
    }
    assert!(
        errors > n,
        "most of these bodies must be rejected ({errors} errors)"
    );
}

// ---------------------------------------------------------------------------------------------
// GB Carbon Intensity API

#[test]
fn uk_national_latest_prefers_actual_then_forecast() {
    let s = Server::start(|r| match r.path.as_str() {
        "/intensity" => ok(
            r#"{"data":[{"from":"2018-01-20T12:00Z","to":"2018-01-20T12:30Z","intensity":{"forecast":266,"actual":263,"index":"moderate"}}]}"#,
        ),
        _ => status(404, "{}"),
    });
    let c = UkCarbonIntensity::new(&s.url, T);
    let p = c.latest("GB").unwrap();
    assert_eq!((p.start, p.end), (1_516_449_600, 1_516_451_400));
    assert_eq!((p.g_per_kwh, p.kind), (263.0, PointKind::Actual));
    assert_eq!(p.signal, Signal::Average);
    assert_eq!(s.requests()[0].header("accept"), Some("application/json"));
    let s = Server::start(|_| {
        ok(
            r#"{"data":[{"from":"2018-01-20T12:00Z","to":"2018-01-20T12:30Z","intensity":{"forecast":266,"actual":null,"index":"moderate"}}]}"#,
        )
    });
    let p = UkCarbonIntensity::new(&s.url, T).latest("uk").unwrap();
    assert_eq!((p.g_per_kwh, p.kind), (266.0, PointKind::Forecast));
}

#[test]
fn uk_regional_latest_and_postcode() {
    let s = Server::start(|r| match r.path.as_str() {
        "/regional/regionid/13" => ok(
            r#"{"data":[{"regionid":13,"dnoregion":"UKPN London","shortname":"London","data":[{"from":"2018-05-15T11:30Z","to":"2018-05-15T12:00Z","intensity":{"forecast":181,"index":"moderate"},"generationmix":[{"fuel":"gas","perc":43.6},{"fuel":"wind","perc":12.1}]}]}]}"#,
        ),
        "/regional/postcode/RG10" => ok(
            r#"{"data":[{"regionid":12,"dnoregion":"SSE South","shortname":"South England","postcode":"RG10","data":[{"from":"2018-05-15T11:30Z","to":"2018-05-15T12:00Z","intensity":{"forecast":154,"index":"low"},"generationmix":[]}]}]}"#,
        ),
        _ => status(404, "{}"),
    });
    let c = UkCarbonIntensity::new(&s.url, T);
    let p = c.latest("regionid:13").unwrap();
    assert_eq!((p.g_per_kwh, p.kind), (181.0, PointKind::Forecast));
    assert!(p.source.contains("London"), "{}", p.source);
    let p = c.latest("postcode:rg10").unwrap();
    assert_eq!(p.g_per_kwh, 154.0);
    assert!(matches!(
        c.latest("regionid:99"),
        Err(ProviderError::UnknownZone { .. })
    ));
    assert!(matches!(
        c.latest("FR"),
        Err(ProviderError::UnknownZone { .. })
    ));
    assert_eq!(s.requests().len(), 2, "an unknown zone contacts nobody");
}

fn uk_periods(from: i64, n: i64, f: impl Fn(i64) -> String) -> String {
    (0..n)
        .map(|i| {
            let a = from + i * 1800;
            format!(
                r#"{{"from":"{}","to":"{}","intensity":{}}}"#,
                iso::format_minutes(a),
                iso::format_minutes(a + 1800),
                f(i)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn uk_forecast_national_and_regional_shapes() {
    let half = now_unix().div_euclid(1800) * 1800;
    let s = Server::start(move |r| {
        if r.path.starts_with("/intensity/") && r.path.ends_with("/fw48h") {
            ok(format!(
                r#"{{"data":[{}]}}"#,
                uk_periods(half, 96, |i| format!(
                    r#"{{"forecast":{},"actual":null,"index":"low"}}"#,
                    100 + i
                ))
            ))
        } else if r.path.starts_with("/regional/intensity/") && r.path.contains("/fw48h/regionid/")
        {
            // The windowed regional endpoint answers `data` as one object.
            ok(format!(
                r#"{{"data":{{"regionid":16,"dnoregion":"Scotland","shortname":"Scotland","data":[{}]}}}}"#,
                uk_periods(half, 96, |_| r#"{"forecast":25,"index":"very low"}"#
                    .to_string())
            ))
        } else {
            status(404, "{}")
        }
    });
    let c = UkCarbonIntensity::new(&s.url, T);
    let pts = c.forecast("GB", Duration::from_secs(12 * 3600)).unwrap();
    // Points covering [now, now + 12 h): 24 half hours, 25 when now is past the half hour.
    assert!((24..=25).contains(&pts.len()), "{} half hours", pts.len());
    assert_eq!(pts[0].start, half);
    assert_eq!(pts[0].g_per_kwh, 100.0);
    let path = &s.requests()[0].path;
    // `/intensity/YYYY-MM-DDTHH:MMZ/fw48h`
    let from = path
        .trim_start_matches("/intensity/")
        .trim_end_matches("/fw48h");
    assert_eq!(from.len(), 17, "{path}");
    assert!((iso::parse(from).unwrap() - now_unix()).abs() < 120);
    let pts = c
        .forecast("scotland", Duration::from_secs(48 * 3600))
        .unwrap();
    assert_eq!(pts.len(), 96);
    assert!(pts
        .iter()
        .all(|p| p.g_per_kwh == 25.0 && p.source.contains("Scotland")));
    assert!(s.requests()[1].path.ends_with("/fw48h/regionid/16"));
}

#[test]
fn uk_history_national_range() {
    let s = Server::start(|r| {
        let rest = r.path.strip_prefix("/intensity/").unwrap();
        let (a, _b) = rest.split_once('/').unwrap();
        let a = iso::parse(a).unwrap();
        ok(format!(
            r#"{{"data":[{}]}}"#,
            uk_periods(a.div_euclid(1800) * 1800, 4, |i| format!(
                r#"{{"forecast":{},"actual":{},"index":"low"}}"#,
                200 + i,
                if i < 3 {
                    format!("{}", 190 + i)
                } else {
                    "null".into()
                }
            ))
        ))
    });
    let from = 1_700_000_000i64.div_euclid(1800) * 1800;
    let pts = UkCarbonIntensity::new(&s.url, T)
        .history("GB", from, from + 7200)
        .unwrap();
    assert_eq!(pts.len(), 4);
    assert_eq!(pts[0].g_per_kwh, 190.0);
    assert_eq!(pts[3].kind, PointKind::Forecast);
    assert_eq!(pts[3].g_per_kwh, 203.0);
}

#[test]
fn uk_errors_and_garbage() {
    let s = Server::start(|r| match r.path.as_str() {
        "/intensity" => status(
            500,
            r#"{"error":{"code":"500 Internal Server Error","message":"oops"}}"#,
        ),
        "/regional/regionid/1" => ok(r#"{"data":"nothing"}"#),
        "/regional/regionid/2" => ok(
            r#"{"data":[{"from":"2018-01-20T12:00Z","to":"2018-01-20T12:30Z","intensity":{"forecast":"high"}}]}"#,
        ),
        "/regional/regionid/3" => ok(
            r#"{"data":[{"from":"2018-01-20T12:30Z","to":"2018-01-20T12:00Z","intensity":{"forecast":3}}]}"#,
        ),
        "/regional/regionid/4" => ok(
            r#"{"error":{"code":"400 Bad Request","message":"Please enter a valid region ID."}}"#,
        ),
        "/regional/regionid/5" => ok(r#"{"data":[{"regionid":5}]}"#),
        _ => status(404, "{}"),
    });
    let c = UkCarbonIntensity::new(&s.url, T);
    assert!(matches!(
        c.latest("GB"),
        Err(ProviderError::Server { status: 500, .. })
    ));
    for r in 1..=5 {
        let e = c.latest(&format!("regionid:{r}")).unwrap_err();
        assert!(
            matches!(e, ProviderError::Garbage { .. }),
            "region {r}: {e:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// WattTime

fn wt_forecast(start: i64, n: i64, lbs: f64) -> String {
    let data: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"point_time":"{}","value":{}}}"#,
                iso::format(start + i * 300).replace('Z', "+00:00"),
                lbs + i as f64
            )
        })
        .collect();
    format!(
        r#"{{"data":[{}],"meta":{{"data_point_period_seconds":300,"region":"CAISO_NORTH","warnings":[],"signal_type":"co2_moer","model":{{"date":"2023-03-01","type":"binned_regression"}},"units":"lbs_co2_per_mwh","generated_at_period_seconds":300,"generated_at":"{}"}}}}"#,
        data.join(","),
        iso::format(start).replace('Z', "+00:00")
    )
}

#[test]
fn watttime_logs_in_converts_lbs_per_mwh_and_reuses_the_token() {
    let now5 = now_unix().div_euclid(300) * 300;
    let s = Server::start(move |r| {
        if r.path == "/login" {
            ok(r#"{"token":"tok-abc"}"#)
        } else if r.path.starts_with("/v3/forecast") {
            if r.header("authorization") != Some("Bearer tok-abc") {
                return status(401, "{}");
            }
            ok(wt_forecast(now5, 288, 1000.0))
        } else {
            status(404, "{}")
        }
    });
    let c = WattTime::new(&s.url, "alice", "s3cret", T);
    assert_eq!(c.signal(), Signal::Marginal);
    let pts = c
        .forecast("CAISO_NORTH", Duration::from_secs(6 * 3600))
        .unwrap();
    // Points covering [now, now + 6 h): 72 or 73 five-minute points.
    assert!((72..=73).contains(&pts.len()), "{}", pts.len());
    assert!(
        (pts[0].g_per_kwh - 453.59237).abs() < 1e-9,
        "{}",
        pts[0].g_per_kwh
    );
    assert!((pts[1].g_per_kwh - 1001.0 * 0.45359237).abs() < 1e-9);
    assert!(pts
        .iter()
        .all(|p| p.signal == Signal::Marginal && p.end - p.start == 300));
    let login = &s.requests()[0];
    assert_eq!(login.path, "/login");
    // base64("alice:s3cret")
    assert_eq!(
        login.header("authorization"),
        Some("Basic YWxpY2U6czNjcmV0")
    );
    assert_eq!(
        s.requests()[1].path,
        "/v3/forecast?region=CAISO_NORTH&signal_type=co2_moer&horizon_hours=6"
    );
    let latest = c.latest("CAISO_NORTH").unwrap();
    assert_eq!(latest.start, now5);
    assert_eq!(s.count("/login"), 1, "the token is reused");
}

#[test]
fn watttime_renews_an_expired_token_once_then_reports_unauthorized() {
    let logins = Arc::new(Mutex::new(0));
    let l2 = logins.clone();
    let s = Server::start(move |r| {
        if r.path == "/login" {
            let mut n = l2.lock().unwrap();
            *n += 1;
            ok(format!(r#"{{"token":"t{n}"}}"#))
        } else if r.header("authorization") == Some("Bearer t2") {
            ok(wt_forecast(now_unix().div_euclid(300) * 300, 12, 800.0))
        } else {
            status(401, r#"{"error":"token expired"}"#)
        }
    });
    let c = WattTime::new(&s.url, "u", "p", T);
    assert_eq!(
        c.forecast("CAISO_NORTH", Duration::from_secs(3600))
            .unwrap()
            .len(),
        12
    );
    assert_eq!(*logins.lock().unwrap(), 2);
    // Always 401: one renewal, then Unauthorized.
    let s = Server::start(|r| {
        if r.path == "/login" {
            ok(r#"{"token":"x"}"#)
        } else {
            status(401, "{}")
        }
    });
    let e = WattTime::new(&s.url, "u", "p", T)
        .forecast("CAISO_NORTH", Duration::from_secs(3600))
        .unwrap_err();
    assert!(matches!(e, ProviderError::Unauthorized { .. }), "{e:?}");
    assert_eq!(s.count("/login"), 2);
}

#[test]
fn watttime_bad_login_historical_without_plan_and_units() {
    let s = Server::start(|r| match r.path.as_str() {
        "/login" if r.header("authorization") == Some(&format!("Basic {}", "Z29vZDpwdw==")) => {
            ok(r#"{"token":"t"}"#)
        }
        "/login" => status(403, r#"{"error":"bad credentials"}"#),
        p if p.starts_with("/v3/historical") => status(
            403,
            r#"{"error":"Your subscription does not include historical data"}"#,
        ),
        p if p.contains("region=ODD") => ok(
            r#"{"data":[{"point_time":"2024-05-01T12:00:00+00:00","value":3}],"meta":{"units":"percentile","signal_type":"co2_moer"}}"#,
        ),
        p if p.contains("region=NOUNITS") => {
            ok(r#"{"data":[{"point_time":"2024-05-01T12:00:00+00:00","value":100}]}"#)
        }
        p if p.contains("region=ZZ") => status(400, r#"{"error":"Invalid region: ZZ"}"#),
        _ => status(500, "{}"),
    });
    let e = WattTime::new(&s.url, "bad", "pw", T)
        .latest("CAISO_NORTH")
        .unwrap_err();
    assert!(
        matches!(e, ProviderError::Unauthorized { status: 403, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("WATTPRINT_WATTTIME_USERNAME"), "{e}");
    let c = WattTime::new(&s.url, "good", "pw", T);
    let e = c
        .history("CAISO_NORTH", 1_700_000_000, 1_700_003_600)
        .unwrap_err();
    assert!(matches!(e, ProviderError::NotSupported { .. }), "{e:?}");
    assert!(e.to_string().contains("CAISO_NORTH"));
    let e = c.forecast("ODD", Duration::from_secs(3600)).unwrap_err();
    assert!(e.to_string().contains("percentile"), "{e}");
    // Units missing: assumed lbs/MWh, and the source says so.
    let p = wattprint_core::providers::watttime::parse_moer(
        &serde_json::from_str(
            r#"{"data":[{"point_time":"2024-05-01T12:00:00+00:00","value":100}]}"#,
        )
        .unwrap(),
        "X",
        PointKind::Actual,
    )
    .unwrap();
    assert!((p[0].g_per_kwh - 45.359237).abs() < 1e-9);
    assert!(p[0].source.contains("assumed lbs_co2_per_mwh"));
    assert!(matches!(
        c.forecast("ZZ", Duration::from_secs(3600)),
        Err(ProviderError::UnknownZone { .. })
    ));
    assert!(matches!(
        c.forecast("OTHER", Duration::from_secs(3600)),
        Err(ProviderError::Server { status: 500, .. })
    ));
}

#[test]
fn lbs_per_mwh_conversion() {
    use wattprint_core::providers::watttime::{
        lbs_per_mwh_to_g_per_kwh, G_PER_KWH_PER_LBS_PER_MWH,
    };
    assert_eq!(G_PER_KWH_PER_LBS_PER_MWH, 453.59237 / 1000.0);
    assert!((lbs_per_mwh_to_g_per_kwh(2204.62262) - 1000.0).abs() < 1e-4);
    assert_eq!(lbs_per_mwh_to_g_per_kwh(0.0), 0.0);
}

// ---------------------------------------------------------------------------------------------
// Cache

fn pt(start: i64, g: f64) -> IntensityPoint {
    IntensityPoint {
        start,
        end: start + 3600,
        g_per_kwh: g,
        signal: Signal::Average,
        kind: PointKind::Actual,
        source: "test".into(),
        estimation_method: None,
    }
}

#[test]
fn cache_hit_miss_expiry_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cache::new(dir.path().join("cache/intensity"));
    assert_eq!(c.get("em", "FR", "latest", 300, 1000), Lookup::Miss);
    c.put("em", "FR", "latest", &[pt(0, 5.0)], 1000).unwrap();
    assert_eq!(
        c.get("em", "FR", "latest", 300, 1299),
        Lookup::Hit(vec![pt(0, 5.0)])
    );
    assert_eq!(c.get("em", "FR", "latest", 300, 1300), Lookup::Expired);
    assert_eq!(c.get("em", "DE", "latest", 300, 1000), Lookup::Miss);
    assert_eq!(c.get("em", "FR", "forecast:24h", 300, 1000), Lookup::Miss);
    // A fetch time in the future is not trusted.
    assert_eq!(c.get("em", "FR", "latest", 300, 800), Lookup::Expired);
    // No temporary files left behind.
    let names: Vec<String> = std::fs::read_dir(c.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("em-FR-") && names[0].ends_with(".json"));
    // Corrupt: ignored with a note, then replaced.
    let path = c.path("em", "FR", "latest");
    std::fs::write(&path, "{not json").unwrap();
    assert!(matches!(
        c.get("em", "FR", "latest", 300, 1000),
        Lookup::Corrupt(_)
    ));
    let notes = c.take_notes();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("ignored and replaced"), "{notes:?}");
    c.put("em", "FR", "latest", &[pt(0, 7.0)], 1000).unwrap();
    assert_eq!(
        c.get("em", "FR", "latest", 300, 1000),
        Lookup::Hit(vec![pt(0, 7.0)])
    );
    // Valid JSON of the wrong entry (a collision or a hand edit) is not used.
    let other = c.path("em", "DE", "latest");
    c.put("em", "DE", "latest", &[pt(0, 1.0)], 1000).unwrap();
    std::fs::copy(&other, &path).unwrap();
    assert!(matches!(
        c.get("em", "FR", "latest", 300, 1000),
        Lookup::Corrupt(_)
    ));
    // An unwritable cache directory is a note, not a failure.
    let blocked = Cache::new(dir.path().join("file-not-dir"));
    std::fs::write(dir.path().join("file-not-dir"), "x").unwrap();
    assert!(blocked
        .put("em", "FR", "latest", &[pt(0, 1.0)], 1000)
        .is_err());
    assert_eq!(blocked.take_notes().len(), 1);
}

#[test]
fn cached_provider_serves_repeats_from_disk_and_survives_corruption() {
    let s = Server::start(|_| {
        ok(r#"{"zone":"FR","carbonIntensity":56,"datetime":"2024-05-01T12:00:00.000Z"}"#)
    });
    let dir = tempfile::tempdir().unwrap();
    let cached = CachedProvider::new(em(&s.url), Cache::new(dir.path()));
    assert_eq!(cached.latest("FR").unwrap().g_per_kwh, 56.0);
    assert_eq!(cached.latest("FR").unwrap().g_per_kwh, 56.0);
    assert_eq!(s.requests().len(), 1, "second answer from the cache");
    // A second process (a new cache object on the same directory) hits too.
    let again = CachedProvider::new(em(&s.url), Cache::new(dir.path()));
    again.latest("FR").unwrap();
    assert_eq!(s.requests().len(), 1);
    // Corrupt the file: the provider is asked again and the file is rewritten.
    let path = again.cache().path("electricitymaps", "FR", "latest");
    std::fs::write(&path, b"\x00\xffgarbage").unwrap();
    assert_eq!(again.latest("FR").unwrap().g_per_kwh, 56.0);
    assert_eq!(s.requests().len(), 2);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["points"][0]["g_per_kwh"], 56.0);
    assert_eq!(again.cache().take_notes().len(), 1);
    // Errors are not cached.
    let failing = Server::start(|_| status(500, "{}"));
    let c = CachedProvider::new(em(&failing.url), Cache::new(dir.path().join("f")));
    assert!(c.latest("FR").is_err());
    assert!(c.latest("FR").is_err());
    assert_eq!(failing.requests().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Valuing a run hour by hour; fallback; signals

#[test]
fn hourly_series_values_each_hour_at_its_intensity() {
    let pts = vec![pt(0, 100.0), pt(3600, 300.0)];
    let series = hourly_series(&pts).unwrap();
    assert_eq!(
        series,
        Intensity::Hourly(vec![
            (0, 3600, GramsPerKwh(100.0)),
            (3600, 7200, GramsPerKwh(300.0))
        ])
    );
    // 1 kWh in the first hour, 3 kWh in the second: 100 + 900 g (not 4 kWh × mean 200 = 800).
    let kwh = |k: f64| Joules(k * 3.6e6);
    let g = operational_emissions(&[(0, 3600, kwh(1.0)), (3600, 7200, kwh(3.0))], &series, 1.0);
    assert!((g.0 - 1000.0).abs() < 1e-6, "{}", g.0);
    // Actual wins over a forecast for the same interval; input order does not matter.
    let mut f = pt(0, 999.0);
    f.kind = PointKind::Forecast;
    let s2 = hourly_series(&[pt(3600, 300.0), f, pt(0, 100.0)]).unwrap();
    assert_eq!(s2, series);
    assert_eq!(hourly_series(&[]), Err(SeriesError::Empty));
}

#[test]
fn marginal_and_average_are_never_mixed() {
    let mut m = pt(3600, 400.0);
    m.signal = Signal::Marginal;
    m.source = "watttime CAISO_NORTH co2_moer".into();
    let e = hourly_series(&[pt(0, 100.0), m.clone()]).unwrap_err();
    assert!(matches!(e, SeriesError::MixedSignals { .. }));
    assert!(e.to_string().contains("never mixed"), "{e}");
    assert!(single_signal(&[pt(0, 1.0), m.clone()]).is_err());
    assert_eq!(single_signal(&[m.clone()]).unwrap(), Signal::Marginal);
}

#[test]
fn intensity_for_run_uses_the_provider_or_falls_back_and_says_so() {
    let h = hour();
    let s = Server::start(move |r| {
        if r.path.contains("zone=FAIL") {
            return status(502, "bad gateway");
        }
        if r.path.contains("zone=EMPTY") {
            return ok(r#"{"zone":"EMPTY","history":[]}"#);
        }
        let e: Vec<String> = (0..24)
            .map(|i| em_entry(h - (23 - i) * 3600, 50.0 + i as f64))
            .collect();
        ok(format!(r#"{{"zone":"FR","history":[{}]}}"#, e.join(",")))
    });
    let c = em(&s.url);
    let fallback = (56.0, "A-EM FR 2023".to_string());
    // No provider: static, no fallback reason.
    let r = intensity_for_run(None, "FR", h - 7200, h - 3600, fallback.clone());
    assert_eq!(r.intensity, Intensity::Constant(GramsPerKwh(56.0)));
    assert_eq!(
        (r.signal, r.fallback_reason.clone()),
        (Signal::Average, None)
    );
    // Provider: hourly series over the run.
    let r = intensity_for_run(
        Some(&c),
        "FR",
        h - 3 * 3600 + 600,
        h - 3600,
        fallback.clone(),
    );
    match &r.intensity {
        Intensity::Hourly(s) => {
            assert_eq!(s.len(), 2);
            assert_eq!(s[0], (h - 3 * 3600, h - 2 * 3600, GramsPerKwh(70.0)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.fallback_reason, None);
    assert!(r.source.contains("electricitymaps FR"), "{}", r.source);
    // Failure: static, and the reason names the error and the fallback.
    let r = intensity_for_run(Some(&c), "FAIL", h - 7200, h, fallback.clone());
    assert_eq!(r.intensity, Intensity::Constant(GramsPerKwh(56.0)));
    let why = r.fallback_reason.unwrap();
    assert!(
        why.contains("HTTP 502") && why.contains("static factor") && why.contains("56"),
        "{why}"
    );
    assert_eq!(r.source, "A-EM FR 2023");
    // Nothing for the period: static, said.
    let r = intensity_for_run(Some(&c), "EMPTY", h - 7200, h, fallback);
    assert!(r.fallback_reason.unwrap().contains("no intensity data"));
}

#[test]
fn wait_plan_against_a_loopback_forecast() {
    let half = now_unix().div_euclid(1800) * 1800;
    let s = Server::start(move |_| {
        ok(format!(
            r#"{{"data":[{}]}}"#,
            uk_periods(half, 96, |i| format!(
                r#"{{"forecast":{},"actual":null,"index":"low"}}"#,
                if (10..14).contains(&i) { 40 } else { 200 }
            ))
        ))
    });
    let c = UkCarbonIntensity::new(&s.url, T);
    let now = now_unix();
    let d = wait_plan(
        &c,
        "GB",
        &WaitQuery {
            now,
            within_s: 12 * 3600,
            threshold_g_per_kwh: Some(100.0),
            duration_s: None,
        },
    )
    .unwrap();
    assert_eq!(d.start_at, half + 10 * 1800);
    assert_eq!(d.expected_g_per_kwh, 40.0);
    assert_eq!(d.now_g_per_kwh, 200.0);
    assert_eq!(d.threshold_met, Some(true));
    assert!(d.reason.contains("threshold"), "{}", d.reason);
    // A 2 h job without threshold: the four clean half hours.
    let d = wait_plan(
        &c,
        "GB",
        &WaitQuery {
            now,
            within_s: 12 * 3600,
            threshold_g_per_kwh: None,
            duration_s: Some(7200),
        },
    )
    .unwrap();
    assert_eq!(d.start_at, half + 10 * 1800);
    assert!((d.expected_g_per_kwh - 40.0).abs() < 1e-9);
}

// ---------------------------------------------------------------------------------------------
// Issue 18: live intensity faithful to each provider.

use wattprint_core::providers::revalue::live_location_note;
use wattprint_core::providers::{revalue_run, KindCounts};
use wattprint_core::record::{CarbonContext, LocationRecord};

/// The `zone` query parameter of a request path.
fn zone_of(path: &str) -> String {
    path.split("zone=")
        .nth(1)
        .unwrap_or("")
        .split('&')
        .next()
        .unwrap_or("")
        .to_string()
}

/// Point 1. Electricity Maps answers for the caller's IP location when it does not recognise
/// a zone, unless `shouldUseFallbackCallerLookup=false` (Electricity Maps API v3 reference,
/// query parameters of the carbon-intensity endpoints). Bodies: the documented shapes
/// (`{zone, carbonIntensity, datetime, …}`, `{zone, history:[…]}`, `{zone, data:[…]}`,
/// `{zone, forecast:[…], updatedAt}`; API reference examples, as read by the Carbon Aware SDK's
/// `Model/*.cs`), always echoing zone FR: the caller-location fallback.
#[test]
fn electricity_maps_refuses_an_answer_for_another_zone_on_every_endpoint() {
    let h = hour();
    let s = Server::start(move |r| {
        let p = r.path.as_str();
        if p.starts_with("/v3/carbon-intensity/latest") {
            ok(em_entry(h, 56.0))
        } else if p.starts_with("/v3/carbon-intensity/history") {
            ok(format!(
                r#"{{"zone":"FR","history":[{}]}}"#,
                em_entry(h - 3600, 50.0)
            ))
        } else if p.starts_with("/v3/carbon-intensity/past-range") {
            ok(format!(
                r#"{{"zone":"FR","data":[{}]}}"#,
                em_entry(h - 40 * 86_400, 50.0)
            ))
        } else {
            ok(format!(
                r#"{{"zone":"FR","forecast":[{{"carbonIntensity":60,"datetime":"{}"}}],"updatedAt":"{}"}}"#,
                iso_ms(h),
                iso_ms(h)
            ))
        }
    });
    let c = em(&s.url);
    let mismatch = |r: Result<Vec<IntensityPoint>, ProviderError>, what: &str| match r {
        Err(e @ ProviderError::ZoneMismatch { .. }) => {
            let m = e.to_string();
            assert!(m.contains("`FRX`") && m.contains("`FR`"), "{what}: {m}");
        }
        other => panic!("{what}: {other:?}"),
    };
    mismatch(c.latest("FRX").map(|p| vec![p]), "latest");
    mismatch(c.history("FRX", h - 7200, h), "history");
    mismatch(
        c.history("FRX", h - 41 * 86_400, h - 39 * 86_400),
        "past-range",
    );
    mismatch(c.forecast("FRX", Duration::from_secs(3600)), "forecast");
    // The same zone in another case is the same zone.
    assert_eq!(c.latest("fr").unwrap().g_per_kwh, 56.0);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 5);
    assert!(
        reqs.iter()
            .all(|r| r.path.contains("&shouldUseFallbackCallerLookup=false")),
        "{reqs:?}"
    );
    // A run is not valued with another zone's data: the static factor, and why.
    let r = intensity_for_run(Some(&c), "FRX", h - 3600, h, (56.0, "static".into()));
    assert_eq!(r.intensity, Intensity::Constant(GramsPerKwh(56.0)));
    assert!(r
        .fallback_reason
        .unwrap()
        .contains("answer is for zone `FR`"));
}

/// Point 2. `isEstimated`/`estimationMethod` as in the Electricity Maps v3 reference's
/// history example (fields per the Carbon Aware SDK's `Model/*.cs`).
#[test]
fn electricity_maps_estimates_are_a_third_kind_through_points_and_notes() {
    let h = hour();
    let s = Server::start(move |_| {
        let e: Vec<String> = (0..4)
            .map(|i| {
                let t = h - (4 - i) * 3600;
                if i >= 2 {
                    em_entry(t, 80.0).replace(
                        r#""isEstimated":false,"estimationMethod":null"#,
                        r#""isEstimated":true,"estimationMethod":"TIME_SLICER_AVERAGE""#,
                    )
                } else {
                    em_entry(t, 40.0)
                }
            })
            .collect();
        ok(format!(r#"{{"zone":"FR","history":[{}]}}"#, e.join(",")))
    });
    let c = em(&s.url);
    let pts = c.history("FR", h - 4 * 3600, h).unwrap();
    let kinds: Vec<PointKind> = pts.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [
            PointKind::Actual,
            PointKind::Actual,
            PointKind::Estimated,
            PointKind::Estimated
        ]
    );
    assert_eq!(PointKind::Estimated.to_string(), "estimated");
    assert_eq!(
        pts[2].estimation_method.as_deref(),
        Some("TIME_SLICER_AVERAGE")
    );
    assert_eq!(pts[0].estimation_method, None);
    let r = intensity_for_run(Some(&c), "FR", h - 4 * 3600, h, (1.0, "static".into()));
    assert_eq!(
        r.counts,
        KindCounts {
            actual: 2,
            estimated: 2,
            forecast: 0
        }
    );
    assert!(
        r.source.contains("2 actual, 2 estimated, 0 forecast"),
        "{}",
        r.source
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("2 of 4 intervals are estimates")),
        "{:?}",
        r.notes
    );
    // For the same interval a measurement beats an estimate, an estimate beats a forecast.
    let mut est = pt(0, 2.0);
    est.kind = PointKind::Estimated;
    let mut fc = pt(0, 3.0);
    fc.kind = PointKind::Forecast;
    assert_eq!(
        hourly_series(&[fc.clone(), est.clone()]).unwrap(),
        Intensity::Hourly(vec![(0, 3600, GramsPerKwh(2.0))])
    );
    assert_eq!(
        hourly_series(&[est, fc, pt(0, 1.0)]).unwrap(),
        Intensity::Hourly(vec![(0, 3600, GramsPerKwh(1.0))])
    );
}

fn static_world_carbon() -> CarbonContext {
    CarbonContext {
        intensity_g_per_kwh: 475.0,
        intensity_source: "default: world average, GA".into(),
        intensity_detail: "GA WORLD".into(),
        pue: 1.0,
        pue_detail: "none".into(),
        location: LocationRecord {
            code: "unknown".into(),
            name: "unknown".into(),
            known: false,
            pue_source: "none".into(),
        },
        factors_version: "test".into(),
        warnings: vec![
            "location unknown: valued at the world average intensity; pass --location".into(),
        ],
        series: None,
        signal: None,
        live: None,
        embodied: None,
        embodied_not_counted: None,
    }
}

/// GB national periods (the `/intensity/{from}/{to}` shape of the API reference,
/// carbonintensity.org.uk: `{"data":[{"from","to","intensity":{"forecast","actual","index"}}]}`)
/// from `first` for `n` half hours, actual `g(i)`.
fn uk_server(first: i64, n: i64, g: impl Fn(i64) -> f64 + Send + Sync + 'static) -> Server {
    Server::start(move |r| {
        if !r.path.starts_with("/intensity/") {
            return status(404, "{}");
        }
        ok(format!(
            r#"{{"data":[{}]}}"#,
            uk_periods(first, n, |i| format!(
                r#"{{"forecast":{},"actual":{},"index":"low"}}"#,
                g(i) + 5.0,
                g(i)
            ))
        ))
    })
}

/// Point 3 (and 7: resolution, no floating noise). A run valued at live intensity records the
/// intensity used (time-weighted over the run), the kinds, the real resolution, and the static
/// factor only as the fallback; an unknown location is not said to be the world average.
#[test]
fn revalue_run_records_the_live_intensity_used_not_the_static_factor() {
    let from = 1_700_000_000i64.div_euclid(1800) * 1800;
    // 130.1 then 133.9: a float mean of 131.99999999999997 or so.
    let s = uk_server(from - 1800, 6, |i| if i % 2 == 0 { 130.1 } else { 133.9 });
    let c = UkCarbonIntensity::new(&s.url, T);
    let mut carbon = static_world_carbon();
    live_location_note(&mut carbon, "uk", "GB");
    assert!(
        carbon.warnings[0].contains("valued at live intensity from uk for zone GB"),
        "{:?}",
        carbon.warnings
    );
    let notes = revalue_run(&c, "GB", from, from + 7200, &mut carbon);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(carbon.intensity_g_per_kwh, 132.0);
    let live = carbon.live.clone().unwrap();
    assert_eq!(live.time_weighted_g_per_kwh, 132.0);
    assert_eq!(live.static_fallback_g_per_kwh, 475.0);
    assert_eq!(live.resolution_s, 1800);
    assert_eq!(live.points.actual, 4);
    assert_eq!(live.provider, "uk");
    assert!(
        carbon.intensity_detail.contains("time-weighted"),
        "{}",
        carbon.intensity_detail
    );
    assert!(carbon.series.is_some());
    assert!(
        !carbon.warnings.iter().any(|w| w.contains("world average")),
        "{:?}",
        carbon.warnings
    );
    // The provider failing: the static factor, and the world average is said again.
    let down = Server::start(|_| status(503, "{}"));
    let mut carbon = static_world_carbon();
    live_location_note(&mut carbon, "uk", "GB");
    let notes = revalue_run(
        &UkCarbonIntensity::new(&down.url, T),
        "GB",
        from,
        from + 7200,
        &mut carbon,
    );
    assert!(notes[0].contains("live intensity not used"), "{notes:?}");
    assert_eq!(carbon.intensity_g_per_kwh, 475.0);
    assert!(carbon.live.is_none() && carbon.series.is_none());
    assert!(
        carbon.warnings[0].contains("world average"),
        "{:?}",
        carbon.warnings
    );
}

/// Point 4. Attribution of each provider, and the retrieval time of cached data.
#[test]
fn attribution_names_provider_licence_and_retrieval_time() {
    use wattprint_core::providers::attribution;
    let uk = attribution("uk").unwrap();
    assert_eq!(uk.licence, "CC BY 4.0");
    assert!(!uk.restricted && uk.restriction_notice().is_none());
    let em_a = attribution("electricitymaps").unwrap();
    assert!(em_a.restricted);
    assert!(em_a
        .restriction_notice()
        .unwrap()
        .contains("restrict redistribution"));
    assert!(attribution("watttime").unwrap().line().contains("co2_moer"));
    assert!(attribution("nobody").is_none());
    // Served from the cache: the retrieval time is the original fetch, not now.
    let s = Server::start(|r| {
        ok(format!(
            r#"{{"zone":"{}","carbonIntensity":56,"datetime":"2024-05-01T12:00:00.000Z"}}"#,
            zone_of(&r.path)
        ))
    });
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let fetched = now_unix() - 100;
    cache
        .put("electricitymaps", "FR", "latest", &[pt(0, 56.0)], fetched)
        .unwrap();
    let c = CachedProvider::new(em(&s.url), cache);
    assert_eq!(c.retrieved_at(), None);
    c.latest("FR").unwrap();
    assert_eq!(c.retrieved_at(), Some(fetched));
    assert_eq!(s.requests().len(), 0);
    // Fetched now (not cached): the retrieval time is now.
    c.latest("DE").unwrap();
    assert_eq!(s.requests().len(), 1);
    let t = c.retrieved_at().unwrap();
    assert!((t - now_unix()).abs() < 60, "{t}");
}

/// WattTime `/v3/historical` and `/v3/forecast` answer `{"data":[{"point_time","value"}],
/// "meta":{…}}` (WattTime API v3 docs, docs.watttime.org; `wt_forecast` above).
fn wt_body(start: i64, n: i64, lbs: f64) -> String {
    wt_forecast(start, n, lbs)
}

/// Point 5. The not-yet-published tail of `/v3/historical` is filled from the head of
/// `/v3/forecast`, marked forecast.
#[test]
fn watttime_fills_the_unpublished_tail_from_the_forecast_head() {
    let now5 = now_unix().div_euclid(300) * 300;
    let published_to = now5 - 1800;
    let s = Server::start(move |r| {
        if r.path == "/login" {
            ok(r#"{"token":"t"}"#)
        } else if r.path.starts_with("/v3/historical") {
            // published up to 30 min ago
            ok(wt_body(now5 - 3600, 6, 1000.0))
        } else if r.path.starts_with("/v3/forecast") {
            ok(wt_body(now5, 12, 2000.0))
        } else {
            status(404, "{}")
        }
    });
    let c = WattTime::new(&s.url, "u", "p", T);
    let pts = c.history("CAISO_NORTH", now5 - 3600, now5 + 120).unwrap();
    let hist: Vec<&IntensityPoint> = pts.iter().filter(|p| p.kind == PointKind::Actual).collect();
    let fc: Vec<&IntensityPoint> = pts
        .iter()
        .filter(|p| p.kind == PointKind::Forecast)
        .collect();
    assert_eq!(hist.len(), 6);
    assert_eq!(hist.last().unwrap().end, published_to);
    // [published_to, head start) at the head value, then the head point itself, contiguous to
    // the end of the range. (Should a 5-minute boundary pass during the test, the head is the
    // next point and the first part reaches the range's end on its own.)
    assert!((1..=2).contains(&fc.len()), "{fc:?}");
    assert_eq!(fc[0].start, published_to);
    assert!(fc.windows(2).all(|w| w[1].start == w[0].end), "{fc:?}");
    assert!(fc.last().unwrap().end >= now5 + 120, "{fc:?}");
    assert!((fc[0].g_per_kwh - 2000.0 * 0.45359237).abs() < 1e-9);
    assert!(fc[0].source.contains("forecast head"));
    let r = intensity_for_run(
        Some(&c),
        "CAISO_NORTH",
        now5 - 3600,
        now5 + 120,
        (1.0, "s".into()),
    );
    assert_eq!(r.fallback_reason, None);
    assert_eq!(r.counts.actual, 6);
    assert!((1..=2).contains(&r.counts.forecast), "{:?}", r.counts);
    assert_eq!(r.resolution_s, Some(300));
    assert!(
        r.notes.iter().any(|n| n.contains("--revalue")),
        "{:?}",
        r.notes
    );
    // An old run's gap is not filled with today's forecast.
    let old = c
        .history("CAISO_NORTH", 1_700_000_000, 1_700_003_600)
        .unwrap();
    assert!(old.iter().all(|p| p.kind == PointKind::Actual));
}

/// Point 6. WattTime: a 403 from an expired token is cured by one fresh login; a 403 after it
/// is the plan. Electricity Maps: a 403 on /forecast names the plan. Retry-After is honoured
/// across invocations through the cache.
#[test]
fn errors_are_told_apart_and_retry_after_is_remembered() {
    let logins = Arc::new(Mutex::new(0));
    let l2 = logins.clone();
    let s = Server::start(move |r| {
        if r.path == "/login" {
            let mut n = l2.lock().unwrap();
            *n += 1;
            ok(format!(r#"{{"token":"t{n}"}}"#))
        } else if r.header("authorization") == Some("Bearer t1") {
            // WattTime answers 403 to an expired token too.
            status(403, r#"{"error":"Forbidden"}"#)
        } else {
            ok(wt_forecast(now_unix().div_euclid(300) * 300, 12, 800.0))
        }
    });
    let pts = WattTime::new(&s.url, "u", "p", T)
        .forecast("CAISO_NORTH", Duration::from_secs(3600))
        .unwrap();
    assert_eq!(pts.len(), 12);
    assert_eq!(*logins.lock().unwrap(), 2);
    // Always 403: the plan, said so after one renewal.
    let s = Server::start(|r| {
        if r.path == "/login" {
            ok(r#"{"token":"x"}"#)
        } else {
            status(403, r#"{"error":"Forbidden"}"#)
        }
    });
    let e = WattTime::new(&s.url, "u", "p", T)
        .forecast("PJM_DC", Duration::from_secs(3600))
        .unwrap_err();
    assert!(matches!(e, ProviderError::NotSupported { .. }), "{e:?}");
    assert!(e.to_string().contains("not an expired token"), "{e}");
    assert_eq!(s.count("/login"), 2);
    // Electricity Maps: 403 on /forecast can be the plan.
    let s = Server::start(|_| status(403, r#"{"message":"Forbidden"}"#));
    let e = em(&s.url)
        .forecast("FR", Duration::from_secs(3600))
        .unwrap_err();
    assert!(matches!(e, ProviderError::Unauthorized { status: 403, .. }));
    assert!(
        e.to_string().contains("plan may not include forecasts"),
        "{e}"
    );
    let e = em(&s.url).latest("FR").unwrap_err();
    assert!(!e.to_string().contains("forecasts"), "{e}");
    // 429 with Retry-After: a second invocation (another cache object on the same directory)
    // inside the window does not call the API.
    let s = Server::start(|_| Reply::With(429, vec![("Retry-After", "600".into())], "{}".into()));
    let dir = tempfile::tempdir().unwrap();
    let first = CachedProvider::new(em(&s.url), Cache::new(dir.path()));
    assert!(matches!(
        first.latest("FR"),
        Err(ProviderError::RateLimited {
            retry_after_s: Some(600),
            ..
        })
    ));
    let second = CachedProvider::new(em(&s.url), Cache::new(dir.path()));
    match second.forecast("DE", Duration::from_secs(3600)) {
        Err(ProviderError::RateLimited {
            retry_after_s: Some(s),
            ..
        }) => assert!((590..=600).contains(&s), "{s}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.requests().len(), 1, "the back-off is honoured");
    // Past the window the provider is asked again.
    let c = Cache::new(dir.path());
    assert!(c.backoff_until("electricitymaps", now_unix()).is_some());
    assert!(c
        .backoff_until("electricitymaps", now_unix() + 601)
        .is_none());
}

/// Point 7. `horizonHours` reaches Electricity Maps' forecast; regional GB series are forecasts
/// only and the notes do not promise actual values (regional shape: API reference,
/// `/regional/intensity/{from}/{to}/regionid/{id}`).
#[test]
fn horizon_hours_and_regional_gb_promises_no_actuals() {
    let h = hour();
    let s = Server::start(move |_| {
        let f: Vec<String> = (0..72)
            .map(|i| {
                format!(
                    r#"{{"carbonIntensity":{},"datetime":"{}"}}"#,
                    50 + i,
                    iso_ms(h + i * 3600)
                )
            })
            .collect();
        ok(format!(
            r#"{{"zone":"FR","forecast":[{}],"updatedAt":"{}"}}"#,
            f.join(","),
            iso_ms(h)
        ))
    });
    let pts = em(&s.url)
        .forecast("FR", Duration::from_secs(30 * 3600))
        .unwrap();
    assert!((30..=31).contains(&pts.len()), "{}", pts.len());
    assert!(
        s.requests()[0].path.ends_with("&horizonHours=48"),
        "{:?}",
        s.requests()[0].path
    );
    use wattprint_core::providers::electricity_maps::horizon_hours;
    assert_eq!(horizon_hours(Duration::from_secs(3600)), 6);
    assert_eq!(horizon_hours(Duration::from_secs(24 * 3600)), 24);
    assert_eq!(horizon_hours(Duration::from_secs(100 * 3600)), 72);
    // Regional: forecast-only, said as such.
    let from = 1_700_000_000i64.div_euclid(1800) * 1800;
    let s = Server::start(move |_| {
        ok(format!(
            r#"{{"data":{{"regionid":16,"dnoregion":"Scotland","shortname":"Scotland","data":[{}]}}}}"#,
            uk_periods(from, 4, |_| r#"{"forecast":25,"index":"very low"}"#
                .to_string())
        ))
    });
    let c = UkCarbonIntensity::new(&s.url, T);
    assert!(!c.publishes_actuals("scotland") && c.publishes_actuals("GB"));
    let r = intensity_for_run(Some(&c), "scotland", from, from + 7200, (1.0, "s".into()));
    assert_eq!(r.counts.forecast, 4);
    assert_eq!(r.resolution_s, Some(1800));
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("publishes only forecasts")),
        "{:?}",
        r.notes
    );
    assert!(
        !r.notes.iter().any(|n| n.contains("--revalue")),
        "{:?}",
        r.notes
    );
}
