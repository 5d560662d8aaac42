#![allow(clippy::unwrap_used)]
//! One job across machines: simulated nodes (each its own fake sysfs tree, runtime directory
//! and `WATTPRINT_HOSTNAME`) upload their parts of one Slurm job to a real `wattprint serve` on
//! loopback (SQLite and PostgreSQL); `GET /api/v1/jobs/{key}` sums each node once, says whether
//! the job is complete and which node is missing. `wattprint import-job` does the same from
//! the nodes' `--json` files without a server.

mod common;
use common::{read_json, Driver, FakeHost};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// `wattprint serve` as a child process.
struct Server {
    child: Option<Child>,
    url: String,
}

impl Server {
    fn start(h: &FakeHost, db: &str) -> Server {
        let mut child = h
            .cmd()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
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
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .trim_end_matches("/api/v1")
            .to_string();
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Server {
            child: Some(child),
            url,
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

fn token(h: &FakeHost, db: &str) -> String {
    let _ = h
        .cmd()
        .args(["admin", "team", "create", "ml", "--database", db])
        .output()
        .unwrap();
    let out = h
        .cmd()
        .args([
            "admin",
            "token",
            "create",
            "--team",
            "ml",
            "--role",
            "member",
            "--database",
            db,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn api(server: &str, method: &str, path: &str, token: &str, body: Option<&str>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = format!("{server}/api/v1{path}");
    let auth = format!("Bearer {token}");
    let r = match body {
        None => agent.get(&url).header("Authorization", &auth).call(),
        Some(b) => {
            assert_eq!(method, "POST");
            agent
                .post(&url)
                .header("Authorization", &auth)
                .content_type("application/json")
                .send(b.as_bytes())
        }
    };
    let mut r = r.unwrap();
    let code = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The value of cookie `name` set by a response.
fn set_cookie(r: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// Sign in to the dashboard with `token` and fetch `path`: (status, body).
fn dashboard(server: &str, token: &str, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let r = agent
        .get(&format!("{server}/dashboard/login"))
        .call()
        .unwrap();
    let nonce = set_cookie(&r, "wattprint_login");
    let form = format!("token={token}&nonce={nonce}");
    let r = agent
        .post(&format!("{server}/dashboard/login"))
        .header("cookie", &format!("wattprint_login={nonce}"))
        .content_type("application/x-www-form-urlencoded")
        .send(form.as_bytes())
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let sid = set_cookie(&r, "wattprint_session");
    let mut r = agent
        .get(&format!("{server}{path}"))
        .header("cookie", &format!("wattprint_session={sid}"))
        .call()
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

const NODES: [&str; 3] = ["node01", "node02", "node03"];

/// Run one rank of the job on a simulated node; its `--json` record.
fn rank(
    node: &FakeHost,
    name: &str,
    local_rank: u32,
    server: Option<(&str, &str)>,
    json: &Path,
) -> Child {
    let mut c = node.cmd();
    c.env("WATTPRINT_HOSTNAME", name)
        .env("SLURM_JOB_ID", "900")
        .env("SLURM_STEP_ID", "0")
        .env("SLURM_JOB_NUM_NODES", "3")
        .env("SLURM_JOB_NODELIST", "node[01-03]")
        .env("SLURM_LOCALID", "0")
        .env("LOCAL_RANK", local_rank.to_string())
        .env_remove("TORCHELASTIC_RUN_ID")
        .env_remove("WATTPRINT_SERVER")
        .env("WATTPRINT_CONFIG", node.dir.path().join("none.toml"))
        .env("WATTPRINT_SYSTEM_CONFIG", node.dir.path().join("none.toml"))
        .args([
            "run",
            "--quiet",
            "--interval",
            "50ms",
            "--intensity",
            "100",
            "--pue",
            "1.0",
        ]);
    if let Some((url, tok)) = server {
        c.env("WATTPRINT_TOKEN", tok).args(["--server", url]);
    }
    c.arg("--json")
        .arg(json)
        .args(["--", "sleep", "0.6"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_ok(c: Child) {
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Node `i` runs `ranks` ranks of the job at once; their record files.
fn node_runs(
    node: &FakeHost,
    i: usize,
    ranks: u32,
    server: Option<(&str, &str)>,
    out: &Path,
) -> Vec<PathBuf> {
    let files: Vec<PathBuf> = (0..ranks)
        .map(|r| out.join(format!("{}-rank{r}.json", NODES[i])))
        .collect();
    let kids: Vec<Child> = (0..ranks)
        .map(|r| rank(node, NODES[i], r, server, &files[r as usize]))
        .collect();
    for k in kids {
        wait_ok(k);
    }
    files
}

/// Seconds the host ledger of `node` counted (some run present).
fn covered_s(node: &FakeHost) -> f64 {
    let host = std::fs::read_dir(node.runtime())
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    std::fs::read_dir(host)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("state-"))
        .map(|e| {
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
            v["covered_s"].as_f64().unwrap()
        })
        .fold(0.0, f64::max)
}

fn kwh(files: &[PathBuf]) -> f64 {
    files
        .iter()
        .map(|f| read_json(f)["energy_kwh"]["total"].as_f64().unwrap())
        .sum()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * b.abs().max(1e-12)
}

fn one_job_across_nodes(db: &str, srv_host: &FakeHost) {
    let server = Server::start(srv_host, db);
    let tok = token(srv_host, db);
    let out = srv_host.dir.path().join("records");
    std::fs::create_dir_all(&out).unwrap();
    let nodes: Vec<FakeHost> = (0..3).map(|_| FakeHost::new()).collect();
    let _drivers: Vec<Driver> = nodes
        .iter()
        .zip([100.0, 50.0, 20.0])
        .map(|(n, w)| Driver::constant(n, w, 0.0))
        .collect();
    let target = Some((server.url.as_str(), tok.as_str()));
    // node01: two ranks (rank 0 leads), node02: one rank; node03 has not reported yet.
    let f1 = node_runs(&nodes[0], 0, 2, target, &out);
    let f2 = node_runs(&nodes[1], 1, 1, target, &out);
    // node02 reports twice: its record uploaded again is the same run.
    let again = std::fs::read_to_string(&f2[0]).unwrap();
    let (code, v) = api(&server.url, "POST", "/runs", &tok, Some(&again));
    assert!(code == 200 || code == 201, "{code} {v}");
    let (code, j) = api(&server.url, "GET", "/jobs/slurm:900.0", &tok, None);
    assert_eq!(code, 200, "{j}");
    assert_eq!(j["reported_nodes"], 2, "{j}");
    assert_eq!(j["expected_nodes"], 3, "{j}");
    assert_eq!(j["complete"], false, "{j}");
    assert_eq!(j["missing_nodes"], serde_json::json!(["node03"]), "{j}");
    assert_eq!(j["missing_count"], 1, "{j}");
    let per: Vec<(&str, f64, u64)> = j["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap(),
                n["energy_kwh"].as_f64().unwrap(),
                n["runs"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(per.len(), 2);
    assert_eq!((per[0].0, per[0].2), ("node01", 2));
    assert_eq!(
        (per[1].0, per[1].2),
        ("node02", 1),
        "reported twice, counted once"
    );
    assert!(close(per[0].1, kwh(&f1)), "{} vs {}", per[0].1, kwh(&f1));
    assert!(close(per[1].1, kwh(&f2)), "{} vs {}", per[1].1, kwh(&f2));
    assert!(close(
        j["total"]["energy_kwh"].as_f64().unwrap(),
        kwh(&f1) + kwh(&f2)
    ));
    // node01's two ranks: once, not twice (100 W over the time its ledger covered).
    let covered = covered_s(&nodes[0]);
    let j1 = kwh(&f1) * 3.6e6;
    assert!(
        (j1 - 100.0 * covered).abs() <= 0.02 * 100.0 * covered,
        "{j1} J for {covered} s at 100 W"
    );
    // The dashboard's job page says the same.
    let (code, page) = dashboard(&server.url, &tok, "/dashboard/jobs/slurm:900.0");
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Job slurm:900.0"), "{page}");
    assert!(page.contains("incomplete: 2 of 3 nodes reported"), "{page}");
    assert!(page.contains("Not reported: node03"), "{page}");
    assert!(page.contains("<td>node01</td><td>2</td>"), "{page}");
    // node03 reports: the job is complete.
    let f3 = node_runs(&nodes[2], 2, 1, target, &out);
    let (_, j) = api(&server.url, "GET", "/jobs/slurm:900.0", &tok, None);
    assert_eq!(j["reported_nodes"], 3, "{j}");
    assert_eq!(j["complete"], true, "{j}");
    assert_eq!(j["missing_nodes"], serde_json::json!([]), "{j}");
    let all = kwh(&f1) + kwh(&f2) + kwh(&f3);
    assert!(close(j["total"]["energy_kwh"].as_f64().unwrap(), all));
    // An unknown job is 404, a malformed key 400 (the API's error shape).
    let (code, _) = api(&server.url, "GET", "/jobs/nope", &tok, None);
    assert_eq!(code, 404);
    let (code, e) = api(&server.url, "GET", "/jobs/a%20b", &tok, None);
    assert_eq!(code, 400, "{e}");
    // Without a server: the same totals from the gathered files.
    let o = srv_host
        .cmd()
        .args(["import-job", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let local: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(local["job"], "slurm:900.0");
    assert_eq!(local["reported_nodes"], 3);
    assert_eq!(local["complete"], true);
    assert!(close(local["total"]["energy_kwh"].as_f64().unwrap(), all));
}

#[test]
fn one_job_across_nodes_sqlite() {
    let h = FakeHost::new();
    let db = format!("sqlite://{}", h.dir.path().join("server.db").display());
    one_job_across_nodes(&db, &h);
}

#[test]
fn one_job_across_nodes_postgres() {
    let h = FakeHost::new();
    let base = wattprint_server::testing::pg_base_url();
    let db = wattprint_server::admin::block_on(wattprint_server::testing::fresh_pg_database(&base))
        .unwrap()
        .unwrap();
    one_job_across_nodes(&db, &h);
}
