#![allow(clippy::unwrap_used)]
//! Agents end to end with the real binary: `wattprint serve` on a loopback port (SQLite and
//! PostgreSQL), `wattprint admin token create`, `wattprint run --server` and `wattprint agent` on a
//! fake machine whose RAPL counters are driven at a known power, the spool and `wattprint sync`,
//! the server stopped and restarted under running agents (the fault test), the Prometheus
//! endpoint scraped over HTTP, and server policies applied to runs.

mod common;

use common::{read_json, Driver, FakeHost};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn sigterm(c: &Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
}

/// `wattprint serve` as a child process.
struct Server {
    child: Option<Child>,
    addr: String,
}

impl Server {
    fn start(h: &FakeHost, db: &str, listen: &str) -> Server {
        let mut child = h
            .cmd()
            .args([
                "serve",
                "--listen",
                listen,
                "--database",
                db,
                "--rate-limit",
                "0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"));
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/api/v1")
            .to_string();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Server {
            child: Some(child),
            addr,
        }
    }
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// SIGTERM, wait for a clean exit.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            sigterm(&c);
            let st = c.wait().unwrap();
            assert!(st.success(), "server exit: {st:?}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A team and a token of `role` on the database directly.
fn token(h: &FakeHost, db: &str, team: &str, role: &str) -> String {
    let _ = h
        .cmd()
        .args(["admin", "team", "create", team, "--database", db])
        .output()
        .unwrap();
    let out = h
        .cmd()
        .args([
            "admin",
            "token",
            "create",
            "--team",
            team,
            "--role",
            role,
            "--database",
            db,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// One request to the API; (status, JSON body).
fn api(server: &str, method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = format!("{server}/api/v1{path}");
    let auth = format!("Bearer {token}");
    let r = match (method, body) {
        ("GET", _) => agent.get(&url).header("Authorization", &auth).call(),
        (m, b) => {
            let text = b.map(Value::to_string).unwrap_or_default();
            let req = if m == "PUT" {
                agent.put(&url)
            } else {
                agent.post(&url)
            };
            req.header("Authorization", &auth)
                .content_type("application/json")
                .send(text.as_bytes())
        }
    };
    let mut r = r.unwrap();
    let code = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sqlite(h: &FakeHost) -> String {
    format!("sqlite://{}", h.dir.path().join("server.db").display())
}

fn postgres() -> String {
    let base = wattprint_server::testing::pg_base_url();
    wattprint_server::admin::block_on(wattprint_server::testing::fresh_pg_database(&base))
        .unwrap()
        .unwrap()
}

/// `wattprint run --server URL ARGS` with the token in the environment.
fn run_cmd(h: &FakeHost, server: &str, tok: &str, args: &[&str]) -> Command {
    let mut c = h.cmd();
    c.env("WATTPRINT_TOKEN", tok)
        .env_remove("WATTPRINT_SERVER")
        .env("WATTPRINT_CONFIG", h.dir.path().join("no-user-config.toml"))
        .env(
            "WATTPRINT_SYSTEM_CONFIG",
            h.dir.path().join("no-system-config.toml"),
        )
        .args([
            "run",
            "--server",
            server,
            "--intensity",
            "100",
            "--pue",
            "1.0",
        ])
        .args(args);
    c
}

fn close_j(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-3
}

// ---------------------------------------------------------------------------------------------

fn run_uploads_what_it_measured(db: &str, h: &FakeHost) {
    let _drv = Driver::constant(h, 20.0, 5.0);
    let mut server = Server::start(h, db, "127.0.0.1:0");
    let tok = token(h, db, "physics", "member");
    let json = h.dir.path().join("r.json");
    let out = run_cmd(h, &server.url(), &tok, &["--interval", "50ms", "--json"])
        .arg(&json)
        .args(["--", "sleep", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("not uploaded"), "{stderr}");
    let local = read_json(&json);
    let id = local["id"].as_str().unwrap();
    // The server has exactly the record the run wrote, and its series.
    let (c, got) = api(&server.url(), "GET", &format!("/runs/{id}"), &tok, None);
    assert_eq!(c, 200, "{got}");
    assert_eq!(got["record"], local);
    assert_eq!(got["status"], "completed");
    let (_, s) = api(
        &server.url(),
        "GET",
        &format!("/runs/{id}/samples"),
        &tok,
        None,
    );
    let samples = s["samples"].as_array().unwrap();
    assert!(samples.len() >= 10, "{}", samples.len());
    let sum_j: f64 = samples
        .iter()
        .map(|x| x["energy_j"].as_f64().unwrap())
        .sum();
    let rec_j = local["energy_kwh"]["total"].as_f64().unwrap() * 3.6e6;
    assert!(
        (sum_j - rec_j).abs() < 1e-6 * rec_j.max(1.0),
        "{sum_j} vs {rec_j}"
    );
    // ~25 W for ~1 s.
    assert!((15.0..60.0).contains(&rec_j), "{rec_j} J");
    let (_, t) = api(&server.url(), "GET", "/totals", &tok, None);
    assert_eq!(t["total"]["runs"], 1);
    // Totals come from the rollups, kept in µWh (docs/server.md, "Rollups").
    let (a, b) = (
        t["total"]["energy_kwh"].as_f64().unwrap(),
        local["energy_kwh"]["total"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 0.5e-9, "{a} vs {b}");
    assert!(
        h.home().join("policy.json").exists(),
        "the policy is cached"
    );
    assert!(
        !h.home().join("spool").exists()
            || std::fs::read_dir(h.home().join("spool")).unwrap().count() == 0
    );
    server.stop();
}

#[test]
fn run_uploads_what_it_measured_sqlite() {
    let h = FakeHost::new();
    run_uploads_what_it_measured(&sqlite(&h), &h);
}

#[test]
fn run_uploads_what_it_measured_postgres() {
    let h = FakeHost::new();
    run_uploads_what_it_measured(&postgres(), &h);
}

#[test]
fn a_server_down_spools_and_sync_lands_it_exactly_once() {
    let h = FakeHost::new();
    let _drv = Driver::constant(&h, 10.0, 2.0);
    let db = sqlite(&h);
    let tok = token(&h, &db, "physics", "member");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let json = h.dir.path().join("r.json");
    let t = Instant::now();
    let out = run_cmd(&h, &dead, &tok, &["--interval", "50ms", "--json"])
        .arg(&json)
        .args(["--", "sh", "-c", "sleep 0.5; exit 3"])
        .output()
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert_eq!(
        out.status.code(),
        Some(3),
        "the job's own exit code: {out:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("not uploaded to").count(),
        1,
        "one warning about the upload: {stderr}"
    );
    assert!(stderr.contains("could not fetch the policy"), "{stderr}");
    let local = read_json(&json);
    let id = local["id"].as_str().unwrap().to_string();
    assert!(local["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("wattprint sync")));
    let spool = h.home().join("spool").join(format!("{id}.json"));
    let entry = read_json(&spool);
    assert_eq!(entry["body"]["status"], "failed");
    assert_eq!(entry["body"]["id"], id.as_str());
    assert!(entry["body"]["series"].as_array().unwrap().len() >= 5);
    // The local store has it too.
    h.ok(&["show", &id[..8]]);

    let mut server = Server::start(&h, &db, "127.0.0.1:0");
    // A wrong token: kept, marked, exit 1.
    let out = h
        .cmd()
        .env("WATTPRINT_TOKEN", "wpt_0000")
        .args(["sync", "--server", &server.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("NEEDS ATTENTION") && stdout.contains("401"),
        "{stdout}"
    );
    assert_eq!(
        read_json(&spool)["attention"]
            .as_str()
            .map(|s| s.contains("401")),
        Some(true)
    );
    // The right token: sent, removed.
    let out = h
        .cmd()
        .env("WATTPRINT_TOKEN", &tok)
        .args(["sync", "--server", &server.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("sent run {id} (created)")),
        "{stdout}"
    );
    assert!(!spool.exists());
    let out = h
        .cmd()
        .env("WATTPRINT_TOKEN", &tok)
        .args(["sync", "--server", &server.url()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to send"));
    // Exactly once, with what was measured; a replay of the same body changes nothing.
    let (_, got) = api(&server.url(), "GET", &format!("/runs/{id}"), &tok, None);
    assert_eq!(got["record"], local);
    assert_eq!(got["status"], "failed");
    let (_, s) = api(
        &server.url(),
        "GET",
        &format!("/runs/{id}/samples"),
        &tok,
        None,
    );
    assert_eq!(
        s["samples"].as_array().unwrap().len(),
        entry["body"]["series"].as_array().unwrap().len()
    );
    let (c, v) = api(&server.url(), "POST", "/runs", &tok, Some(&entry["body"]));
    assert_eq!((c, v["outcome"].as_str()), (200, Some("duplicate")));
    let (_, t) = api(&server.url(), "GET", "/totals", &tok, None);
    assert_eq!(t["total"]["runs"], 1);
    // Totals come from the rollups, kept in µWh (docs/server.md, "Rollups").
    let (a, b) = (
        t["total"]["energy_kwh"].as_f64().unwrap(),
        local["energy_kwh"]["total"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 0.5e-9, "{a} vs {b}");
    // Usage errors: no server configured.
    let out = h
        .cmd()
        .env_remove("WATTPRINT_SERVER")
        .env("WATTPRINT_CONFIG", h.dir.path().join("none.toml"))
        .env("WATTPRINT_SYSTEM_CONFIG", h.dir.path().join("none.toml"))
        .args(["sync"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--server URL"));
    // A server but no token: refused before the job starts, exit 2.
    let out = h
        .cmd()
        .env_remove("WATTPRINT_TOKEN")
        .env("WATTPRINT_CONFIG", h.dir.path().join("none.toml"))
        .env("WATTPRINT_SYSTEM_CONFIG", h.dir.path().join("none.toml"))
        .args(["run", "--server", &server.url(), "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WATTPRINT_TOKEN"));
    server.stop();
}

/// A running agent, killed if a test fails before stopping it.
struct Agent(Option<Child>);

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Spawn `wattprint agent`; returns it and its metrics URL.
fn start_agent(
    h: &FakeHost,
    home: &Path,
    extra: &[&str],
    tok: Option<&str>,
) -> (Agent, String, std::sync::mpsc::Receiver<String>) {
    spawn_agent(agent_cmd(h, home, extra, tok))
}

/// The `wattprint agent` command [`start_agent`] spawns (a test may add to its environment).
fn agent_cmd(h: &FakeHost, home: &Path, extra: &[&str], tok: Option<&str>) -> Command {
    let mut c = h.cmd();
    c.env("WATTPRINT_HOME", home)
        .env_remove("WATTPRINT_SERVER")
        .env("WATTPRINT_CONFIG", h.dir.path().join("none.toml"))
        .env("WATTPRINT_SYSTEM_CONFIG", h.dir.path().join("none.toml"))
        .args([
            "agent",
            "--metrics",
            "127.0.0.1:0",
            "--intensity",
            "100",
            "--pue",
            "1.0",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match tok {
        Some(t) => c.env("WATTPRINT_TOKEN", t),
        None => c.env_remove("WATTPRINT_TOKEN"),
    };
    c
}

/// Spawn an agent command; returns it, its metrics URL and its stdout lines after the first.
fn spawn_agent(mut c: Command) -> (Agent, String, std::sync::mpsc::Receiver<String>) {
    let mut child = c.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let agent = Agent(Some(child));
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("[agent] {l}");
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let m = first
        .split_whitespace()
        .map(|w| w.trim_end_matches(';'))
        .find(|w| w.starts_with("http://") && w.ends_with("/metrics"))
        .unwrap_or_else(|| panic!("no metrics URL in {first:?}"))
        .to_string();
    (agent, m, rx)
}

/// SIGTERM the agent; its final counters.
fn stop_agent(mut agent: Agent, rx: &std::sync::mpsc::Receiver<String>) -> Value {
    let mut child = agent.0.take().unwrap();
    sigterm(&child);
    let st = child.wait().unwrap();
    assert!(st.success(), "agent exit: {st:?}");
    let mut fin = None;
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
        if let Some(j) = l.strip_prefix("wattprint agent: stopped; final ") {
            fin = Some(serde_json::from_str(j).unwrap());
        }
    }
    fin.expect("the agent prints its final counters")
}

/// Scrape as Prometheus does (asking for OpenMetrics first).
fn scrape(url: &str) -> (String, String) {
    scrape_with(url, Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"))
}

fn scrape_with(url: &str, accept: Option<&str>) -> (String, String) {
    let mut req = ureq::get(url);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let mut r = req.call().unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    (ct, r.body_mut().read_to_string().unwrap())
}

/// `name{labels} value` lines of a metric.
fn samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn status(metrics_url: &str) -> Value {
    let url = metrics_url.replace("/metrics", "/status");
    serde_json::from_str(
        &ureq::get(&url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn prometheus_endpoint_serves_bounded_monotonic_counters() {
    let h = FakeHost::new();
    let _drv = Driver::constant(&h, 40.0, 8.0);
    let home = h.dir.path().join("agent-home");
    let (child, url, rx) = start_agent(&h, &home, &["--interval", "100ms"], None);
    std::thread::sleep(Duration::from_millis(500));
    let (ct, a) = scrape(&url);
    assert_eq!(
        ct,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    std::thread::sleep(Duration::from_millis(700));
    let (_, b) = scrape(&url);
    assert!(b.trim_end().ends_with("# EOF"), "{b}");
    for name in [
        "wattprint_energy_joules_total",
        "wattprint_power_watts",
        "wattprint_emissions_grams_total",
        "wattprint_build_info",
    ] {
        assert!(!samples(&b, name).is_empty(), "{name} missing:\n{b}");
    }
    assert!(b.contains("# TYPE wattprint_energy_joules counter"), "{b}");
    assert!(b.contains(&format!(
        "wattprint_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    // One series per device of the machine (package and DRAM), labels device and kind only.
    let ea = samples(&a, "wattprint_energy_joules_total");
    let eb = samples(&b, "wattprint_energy_joules_total");
    assert_eq!(eb.len(), 2, "{eb:?}");
    for line in b.lines().filter(|l| !l.starts_with('#') && l.contains('{')) {
        let labels = &line[line.find('{').unwrap() + 1..line.find('}').unwrap()];
        let keys: Vec<&str> = labels
            .split(',')
            .map(|kv| kv.split('=').next().unwrap())
            .collect();
        assert!(
            keys == ["device", "kind"] || keys == ["version"],
            "unexpected labels in {line}"
        );
    }
    // Counters only go up, and by about what the driver put in (48 W for 0.7 s).
    for ((ka, va), (kb, vb)) in ea.iter().zip(eb.iter()) {
        assert_eq!(ka, kb);
        assert!(vb > va, "{ka}: {va} -> {vb}");
    }
    let rise: f64 = eb.iter().map(|x| x.1).sum::<f64>() - ea.iter().map(|x| x.1).sum::<f64>();
    assert!((10.0..120.0).contains(&rise), "{rise} J in 0.7 s at 48 W");
    let ga = samples(&a, "wattprint_emissions_grams_total");
    let gb = samples(&b, "wattprint_emissions_grams_total");
    assert!(gb.iter().zip(ga.iter()).all(|(x, y)| x.1 >= y.1));
    let pw: f64 = samples(&b, "wattprint_power_watts")
        .iter()
        .map(|x| x.1)
        .sum();
    // The latest interval's power (noisy on a loaded machine: the driver is a thread too).
    assert!(pw > 0.0 && pw < 500.0, "{pw} W");
    let st = status(&url);
    assert_eq!(st["devices"].as_array().unwrap().len(), 2);
    assert!(st["report"]["server"].is_null());
    // A Prometheus-text client (or none that says) gets the classic text format.
    for accept in [Some("text/plain;version=0.0.4"), None] {
        let (ct, t) = scrape_with(&url, accept);
        assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8", "{accept:?}");
        assert!(!t.contains("# EOF"), "{t}");
        assert!(
            t.contains("# TYPE wattprint_energy_joules_total counter"),
            "{t}"
        );
        assert!(t.contains("# TYPE wattprint_build_info gauge"), "{t}");
        assert_eq!(samples(&t, "wattprint_energy_joules_total").len(), 2, "{t}");
    }
    // Unknown paths are 404; SIGTERM stops it cleanly with its final counters.
    let r = ureq::get(&url.replace("/metrics", "/nope")).call();
    assert!(matches!(r, Err(ureq::Error::StatusCode(404))), "{r:?}");
    let fin = stop_agent(child, &rx);
    let total = fin["total_joules"].as_f64().unwrap();
    assert!(total >= eb.iter().map(|x| x.1).sum::<f64>());
}

/// The fault test: an agent and two runs keep measuring while the server is stopped and
/// restarted; afterwards the server's totals equal what they measured, to the joule.
fn agents_survive_a_server_restart(db: &str, h: &FakeHost) {
    let _drv = Driver::constant(h, 30.0, 6.0);
    let mut server = Server::start(h, db, "127.0.0.1:0");
    let url = server.url();
    let tok = token(h, db, "physics", "member");
    let agent_home = h.dir.path().join("agent-home");
    let (agent, metrics, rx) = start_agent(
        h,
        &agent_home,
        &[
            "--server",
            &url,
            "--interval",
            "100ms",
            "--report-every",
            "300ms",
            "--node",
            "node-a",
        ],
        Some(&tok),
    );
    let a_json = h.dir.path().join("a.json");
    let b_json = h.dir.path().join("b.json");
    // A outlives the outage; B ends during it.
    let run_a = run_cmd(h, &url, &tok, &["--quiet", "--interval", "100ms", "--json"])
        .arg(&a_json)
        .args(["--", "sleep", "6"])
        .spawn()
        .unwrap();
    let run_b = run_cmd(h, &url, &tok, &["--quiet", "--interval", "100ms", "--json"])
        .arg(&b_json)
        .args(["--", "sleep", "2.5"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let before = status(&metrics);
    assert!(
        before["report"]["reports_ok"].as_u64().unwrap() >= 1,
        "{before}"
    );
    server.stop();
    let down_at = Instant::now();
    // B finishes while the server is down: spooled, and the job is not held up.
    let out_b = run_b.wait_with_output().unwrap();
    assert!(out_b.status.success(), "{out_b:?}");
    let b_id = read_json(&b_json)["id"].as_str().unwrap().to_string();
    let b_spool = h.home().join("spool").join(format!("{b_id}.json"));
    assert_eq!(read_json(&b_spool)["body"]["status"], "completed");
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(down_at.elapsed()));
    // The agent keeps measuring and spools.
    let during = status(&metrics);
    assert!(
        during["report"]["failures"].as_u64().unwrap() >= 1,
        "{during}"
    );
    assert!(during["pending_windows"].as_u64().unwrap() >= 1, "{during}");
    assert!(during["total_joules"].as_f64().unwrap() > before["total_joules"].as_f64().unwrap());
    let agent_spool = during["report"]["spool_file"].as_str().unwrap().to_string();
    assert!(Path::new(&agent_spool).exists(), "{agent_spool}");
    // Back on the same address and database.
    let mut server = Server::start(h, db, &server.addr);
    let t = Instant::now();
    loop {
        let s = status(&metrics);
        if s["pending_windows"] == 0 && s["report"]["last_error"].is_null() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the agent did not catch up: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !Path::new(&agent_spool).exists(),
        "the agent's spool is cleared once sent"
    );
    let out_a = run_a.wait_with_output().unwrap();
    assert!(out_a.status.success(), "{out_a:?}");
    // B's spool goes up with sync.
    let out = h
        .cmd()
        .env("WATTPRINT_TOKEN", &tok)
        .args(["sync", "--server", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 sent, 0 kept"),
        "{out:?}"
    );
    let fin = stop_agent(agent, &rx);
    assert_eq!(fin["pending_windows"], 0, "{fin}");

    // Node: the server's totals per device equal the agent's final counters, to the joule.
    let (_, nodes) = api(&url, "GET", "/nodes?node=node-a", &tok, None);
    let n = &nodes["nodes"][0];
    assert_eq!(n["agents"], 1);
    let mut measured = 0.0;
    for d in fin["devices"].as_array().unwrap() {
        let id = d["device_id"].as_str().unwrap();
        let server_d = n["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["device_id"] == id)
            .unwrap_or_else(|| panic!("{id} not on the server: {n}"));
        let (a, b) = (
            d["joules"].as_f64().unwrap(),
            server_d["joules"].as_f64().unwrap(),
        );
        assert!(close_j(a, b), "{id}: agent {a} J, server {b} J");
        let (a, b) = (
            d["emissions_g"].as_f64().unwrap(),
            server_d["emissions_g"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "{id}: agent {a} g, server {b} g");
        measured += d["joules"].as_f64().unwrap();
    }
    assert!(close_j(measured, n["joules"].as_f64().unwrap()));
    // ~36 W for the agent's life (≥ 5 s).
    assert!(measured > 150.0, "{measured} J");
    // Runs: the server holds both records exactly as measured, each once.
    let mut local_kwh = 0.0;
    for p in [&a_json, &b_json] {
        let local = read_json(p);
        let id = local["id"].as_str().unwrap();
        let (c, got) = api(&url, "GET", &format!("/runs/{id}"), &tok, None);
        assert_eq!(c, 200);
        assert_eq!(got["record"], local);
        local_kwh += local["energy_kwh"]["total"].as_f64().unwrap();
    }
    let (_, t) = api(&url, "GET", "/totals", &tok, None);
    assert_eq!(t["total"]["runs"], 2);
    let server_kwh = t["total"]["energy_kwh"].as_f64().unwrap();
    // Totals come from the rollups, kept in µWh: half a µWh per run.
    assert!(
        (server_kwh - local_kwh).abs() <= 2.0 * 0.5e-9,
        "{server_kwh} vs {local_kwh} kWh"
    );
    server.stop();
}

#[test]
fn agents_survive_a_server_restart_sqlite() {
    let h = FakeHost::new();
    agents_survive_a_server_restart(&sqlite(&h), &h);
}

#[test]
fn agents_survive_a_server_restart_postgres() {
    let h = FakeHost::new();
    agents_survive_a_server_restart(&postgres(), &h);
}

#[test]
fn server_policy_caps_runs_and_users_cannot_raise_it() {
    let h = FakeHost::new();
    let _drv = Driver::constant(&h, 20.0, 5.0);
    let db = sqlite(&h);
    let mut server = Server::start(&h, &db, "127.0.0.1:0");
    let admin = token(&h, &db, "physics", "admin");
    let member = token(&h, &db, "physics", "member");
    let (c, v) = api(
        &server.url(),
        "PUT",
        "/policy",
        &admin,
        Some(&json!({"max_duration": "1s"})),
    );
    assert_eq!(c, 200, "{v}");
    // A tiny monthly team budget, exhausted by the first run.
    let (c, _) = api(
        &server.url(),
        "POST",
        "/budgets",
        &admin,
        Some(&json!({"kg_per_month": 1e-9})),
    );
    assert_eq!(c, 201);
    let url = server.url();
    let job = |extra: &[&str], name: &str| -> (Value, f64, String) {
        let json = h.dir.path().join(name);
        let t = Instant::now();
        let out = run_cmd(
            &h,
            &url,
            &member,
            &["--interval", "50ms", "--grace", "2s", "--json"],
        )
        .arg(&json)
        .args(extra)
        .args(["--", "sleep", "10"])
        .output()
        .unwrap();
        (
            read_json(&json),
            t.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (r, wall, _) = job(&[], "a.json");
    assert_eq!(r["status"], "stopped_by_cap", "{r}");
    assert_eq!(r["limits"]["max_duration_s"], 1.0);
    assert!(wall < 6.0, "{wall}");
    // The user's flag cannot raise it; it says so.
    let (r, wall, err) = job(&["--max-duration", "5s"], "b.json");
    assert_eq!(r["status"], "stopped_by_cap");
    assert_eq!(r["limits"]["max_duration_s"], 1.0);
    assert!(wall < 6.0, "{wall}");
    assert!(err.contains("institution's limit"), "{err}");
    // The first run used the team's budget: a warning, the run still goes (and is capped).
    assert!(
        err.contains("monthly carbon budget of team physics is exhausted"),
        "{err}"
    );
    assert!(r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("exhausted")));
    // The server goes away: the cached policy still applies, and the run says so.
    server.stop();
    let (r, _, err) = job(&[], "c.json");
    assert_eq!(r["status"], "stopped_by_cap");
    assert!(err.contains("applying the policy cached at"), "{err}");
    // A user can lower it.
    let mut server = Server::start(&h, &db, &server.addr);
    let json = h.dir.path().join("d.json");
    let out = run_cmd(
        &h,
        &server.url(),
        &member,
        &["--quiet", "--max-duration", "300ms", "--json"],
    )
    .arg(&json)
    .args(["--", "sleep", "10"])
    .output()
    .unwrap();
    assert!(out.status.code().is_some());
    assert_eq!(read_json(&json)["limits"]["max_duration_s"], 0.3);
    server.stop();
}

#[test]
fn an_agent_stopped_during_an_outage_leaves_its_figures_to_the_next_one() {
    let h = FakeHost::new();
    let _drv = Driver::constant(&h, 25.0, 5.0);
    let db = sqlite(&h);
    let mut server = Server::start(&h, &db, "127.0.0.1:0");
    let url = server.url();
    let tok = token(&h, &db, "physics", "member");
    let home = h.dir.path().join("agent-home");
    let args = [
        "--server",
        url.as_str(),
        "--interval",
        "100ms",
        "--report-every",
        "200ms",
        "--node",
        "n1",
    ];
    let (agent, _, rx) = start_agent(&h, &home, &args, Some(&tok));
    std::thread::sleep(Duration::from_millis(800));
    server.stop();
    std::thread::sleep(Duration::from_millis(600));
    // Stopped while the server is down: its last figures go to the spool, exit 0.
    let first = stop_agent(agent, &rx);
    assert!(first["pending_windows"].as_u64().unwrap() >= 1, "{first}");
    let spooled: Vec<_> = std::fs::read_dir(home.join("spool"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(spooled.len(), 1, "{spooled:?}");
    assert!(spooled[0].starts_with("node-n1-"), "{spooled:?}");
    // The server comes back; the next agent instance sends the old figures, then its own.
    let mut server = Server::start(&h, &db, &server.addr);
    let (agent, metrics, rx) = start_agent(&h, &home, &args, Some(&tok));
    let t = Instant::now();
    while std::fs::read_dir(home.join("spool")).unwrap().count() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the old spool was not sent"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    while status(&metrics)["report"]["reports_ok"].as_u64().unwrap() < 1 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no report from the new agent"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = stop_agent(agent, &rx);
    let (_, nodes) = api(&url, "GET", "/nodes?node=n1", &tok, None);
    let n = &nodes["nodes"][0];
    assert_eq!(n["agents"], 2, "{n}");
    let want = first["total_joules"].as_f64().unwrap() + second["total_joules"].as_f64().unwrap();
    assert!(
        close_j(n["joules"].as_f64().unwrap(), want),
        "{n} vs {want}"
    );
    server.stop();
}

#[test]
fn the_agent_reports_unattributed_energy_beside_the_devices_sqlite() {
    // Energy no run was charged (here: the idle node before the run, and what a process-scope
    // `sleep` does not use) reaches the server beside the devices, never added to them.
    let h = FakeHost::new();
    let _drv = Driver::constant(&h, 30.0, 6.0);
    let db = sqlite(&h);
    let mut server = Server::start(&h, &db, "127.0.0.1:0");
    let url = server.url();
    let tok = token(&h, &db, "physics", "member");
    let (agent, metrics, rx) = start_agent(
        &h,
        &h.dir.path().join("agent-home"),
        &[
            "--server",
            &url,
            "--interval",
            "100ms",
            "--report-every",
            "200ms",
            "--node",
            "node-u",
        ],
        Some(&tok),
    );
    // The agent has measured the idle node before any run joins.
    let t = Instant::now();
    while status(&metrics)["total_joules"].as_f64().unwrap_or(0.0) <= 0.0 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the agent measured nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let json = h.dir.path().join("p.json");
    let out = run_cmd(
        &h,
        &url,
        &tok,
        &[
            "--quiet",
            "--scope",
            "process",
            "--interval",
            "100ms",
            "--json",
        ],
    )
    .arg(&json)
    .args(["--", "sleep", "0.5"])
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let fin = stop_agent(agent, &rx);
    assert_eq!(fin["pending_windows"], 0, "{fin}");
    let (_, nodes) = api(&url, "GET", "/nodes?node=node-u", &tok, None);
    let n = &nodes["nodes"][0];
    let node_j = n["joules"].as_f64().unwrap();
    let devices: Vec<&Value> = n["devices"].as_array().unwrap().iter().collect();
    assert!(
        devices.iter().all(|d| d["kind"] != "unattributed"),
        "unattributed is not a device: {n}"
    );
    let sum: f64 = devices.iter().map(|d| d["joules"].as_f64().unwrap()).sum();
    assert!(close_j(sum, node_j), "node {node_j} J vs devices {sum} J");
    let unattributed = n["unattributed_joules"]
        .as_f64()
        .unwrap_or_else(|| panic!("{n}"));
    let run_j = read_json(&json)["energy_kwh"]["total"].as_f64().unwrap() * 3.6e6;
    assert!(unattributed > 0.0, "{n}");
    // The run's charge and the unattributed rest are parts of the node's energy: never more.
    assert!(
        run_j + unattributed <= node_j * 1.02,
        "run {run_j} J + unattributed {unattributed} J > node {node_j} J"
    );
    // The grand total is the devices' energy too.
    let total_j = nodes["total"]["joules"].as_f64().unwrap();
    assert!(close_j(total_j, node_j), "{total_j} vs {node_j}");
    server.stop();
}

#[test]
fn the_agent_reads_amd_gpus_through_its_amdsmi_library_flag() {
    // The C fake of amdsmi (crates/core/tests/fake_amd), loaded through `--amdsmi-library` as
    // `run` and `doctor` load it: the agent lists the GPU and counts its energy counter's moves.
    let h = FakeHost::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fake_amd/fake_amdsmi.c");
    let lib = h.dir.path().join("libamd_smi.so");
    let o = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&lib)
        .arg(&src)
        .output()
        .expect("a C compiler (cc) is needed to build the fake amdsmi");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let state = h.dir.path().join("amd-state");
    let base = "count=1\nname0=AMD Instinct MI250X\n";
    std::fs::write(&state, format!("{base}energy0=1000000\n")).unwrap();
    let lib_s = lib.to_str().unwrap();
    let mut c = agent_cmd(
        &h,
        &h.dir.path().join("agent-home"),
        &["--interval", "100ms", "--amdsmi-library", lib_s],
        None,
    );
    c.env("FAKE_AMDSMI_STATE", &state);
    let (agent, metrics, rx) = spawn_agent(c);
    let gpu = |v: &Value| -> Option<Value> {
        v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == "gpu:0")
            .cloned()
    };
    // The devices show once the meter has taken its first sample.
    let t = Instant::now();
    let g = loop {
        if let Some(g) = gpu(&status(&metrics)) {
            break g;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the agent never listed the fake's GPU: {}",
            status(&metrics)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(g["name"], "AMD Instinct MI250X");
    assert_eq!(g["method"], "amdsmi-energy");
    // Move the counter once the sampler has its baseline (the sensor's two opening reads, then
    // the sampler's first): 300,000 units of 15.259 µJ.
    let reads = state.with_extension("reads");
    let t = Instant::now();
    while std::fs::read_to_string(&reads)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0)
        < 3
    {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the agent never read the GPU"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let tmp = h.dir.path().join("amd-state.tmp");
    std::fs::write(&tmp, format!("{base}energy0=1300000\n")).unwrap();
    std::fs::rename(&tmp, &state).unwrap();
    let want = 300_000.0 * f64::from(15.259f32) * 1e-6;
    let t = Instant::now();
    loop {
        let j = gpu(&status(&metrics)).unwrap()["joules"].as_f64().unwrap();
        if j > 0.0 {
            assert!((j - want).abs() < 1e-3, "{j} J, want {want} J");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the GPU's energy never counted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let fin = stop_agent(agent, &rx);
    let g = fin["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == "gpu:0")
        .cloned()
        .unwrap();
    assert!((g["joules"].as_f64().unwrap() - want).abs() < 1e-3, "{fin}");
}
