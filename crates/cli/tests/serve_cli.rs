#![allow(clippy::unwrap_used)]
//! `wattprint admin` + `wattprint serve` end to end with the real binary: bootstrap a team and a
//! token on the database, start the server on a loopback port, upload a record that
//! `wattprint run` really produced, read totals back, revoke the token, stop the server.
//! On SQLite and on PostgreSQL (WATTPRINT_TEST_POSTGRES_URL, as for the server's tests).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wattprint"))
}

fn wattprint(home: &Path) -> Command {
    let mut c = Command::new(bin());
    c.env("WATTPRINT_HOME", home)
        .env_remove("WATTPRINT_DATABASE")
        .env_remove("WATTPRINT_LOCATION");
    c
}

/// A record made by `wattprint run` on a fake machine (one RAPL package, 2 CPUs).
fn real_record(dir: &Path) -> serde_json::Value {
    let sys = dir.join("sys");
    let proc_ = dir.join("proc");
    let z = sys.join("class/powercap/intel-rapl:0");
    std::fs::create_dir_all(&z).unwrap();
    std::fs::write(z.join("name"), "package-0\n").unwrap();
    std::fs::write(z.join("energy_uj"), "1000000\n").unwrap();
    std::fs::write(z.join("max_energy_range_uj"), "262143328850\n").unwrap();
    std::fs::create_dir_all(&proc_).unwrap();
    std::fs::write(
        proc_.join("stat"),
        "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 50 0 50 500 0 0 0 0 0 0\ncpu1 50 0 50 500 0 0 0 0 0 0\n",
    )
    .unwrap();
    std::fs::write(
        proc_.join("meminfo"),
        "MemTotal:       8000000 kB\nMemFree:         4000000 kB\nMemAvailable:    4000000 kB\n",
    )
    .unwrap();
    std::fs::write(
        proc_.join("cpuinfo"),
        "processor\t: 0\nmodel name\t: Test CPU\nphysical id\t: 0\n\n",
    )
    .unwrap();
    let json = dir.join("run.json");
    let out = wattprint(&dir.join("home"))
        .env("WATTPRINT_SYSFS_ROOT", &sys)
        .env("WATTPRINT_PROCFS_ROOT", &proc_)
        .env("WATTPRINT_NVML_LIBRARY", dir.join("no-nvml.so"))
        .args(["run", "--quiet", "--project", "e2e-proj", "--json"])
        .arg(&json)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

/// One HTTP/1.1 request over a fresh connection; (status, JSON body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status: u16 = resp[9..12].parse().unwrap();
    let (head, rest) = resp.split_once("\r\n\r\n").unwrap();
    // The server answers with a Content-Length (not chunked) for these small bodies.
    assert!(
        head.to_ascii_lowercase().contains("content-length"),
        "{head}"
    );
    let v = if rest.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(rest).unwrap()
    };
    (status, v)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn admin(home: &Path, db: &str, args: &[&str]) -> std::process::Output {
    wattprint(home)
        .arg("admin")
        .args(args)
        .args(["--database", db])
        .output()
        .unwrap()
}

fn end_to_end(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let rec = real_record(dir.path());
    assert_eq!(rec["schema"], "wattprint.run/1");

    let out = admin(&home, db, &["team", "create", "physics"]);
    assert!(out.status.success(), "{out:?}");
    let out = admin(
        &home,
        db,
        &["token", "create", "--team", "physics", "--name", "e2e"],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.trim().to_string();
    assert_eq!(stdout.lines().count(), 1, "only the token on stdout");
    assert!(token.starts_with("wpt_") && token.len() == 68, "{token}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not shown again"));
    // Listing never shows the secret again, only its prefix.
    let out = admin(&home, db, &["token", "list"]);
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(!list.contains(&token));
    assert!(list.contains(&token[..12]), "{list}");
    // Mistakes are errors with a way out, exit 2.
    let out = admin(&home, db, &["token", "create", "--team", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin team create nobody"));
    let out = admin(
        &home,
        db,
        &["token", "create", "--team", "physics", "--role", "god"],
    );
    assert_eq!(out.status.code(), Some(2));

    let mut child = wattprint(&home)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", db])
        .args(["--token-cache-ms", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let server = Server(child);
    let first = lines.next().unwrap().unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"));
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/api/v1")
        .to_string();

    let (c, h) = http(&addr, "GET", "/api/v1/health", None, None);
    assert_eq!(c, 200);
    assert_eq!(h["status"], "ok");
    assert_eq!(http(&addr, "GET", "/api/v1/runs", None, None).0, 401);
    let (c, v) = http(&addr, "POST", "/api/v1/runs", Some(&token), Some(&rec));
    assert_eq!(c, 201, "{v}");
    let (c, v) = http(&addr, "POST", "/api/v1/runs", Some(&token), Some(&rec));
    assert_eq!((c, v["outcome"].as_str()), (200, Some("duplicate")));
    let (c, t) = http(
        &addr,
        "GET",
        "/api/v1/totals?group_by=project",
        Some(&token),
        None,
    );
    assert_eq!(c, 200);
    assert_eq!(t["groups"][0]["key"], "e2e-proj");
    assert_eq!(t["total"]["runs"], 1);
    // The operator's check of the rollups against the runs, on the live database.
    let out = admin(&home, db, &["rollups", "check"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rollups: exact"),
        "{out:?}"
    );
    // Per-organisation retention: set, and refused when impossible or for no organisation.
    let out = admin(
        &home,
        db,
        &[
            "org",
            "retention",
            "--full-days",
            "7",
            "--minute-days",
            "30",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    for bad in [
        vec![
            "org",
            "retention",
            "--full-days",
            "30",
            "--minute-days",
            "7",
        ],
        vec![
            "org",
            "retention",
            "--full-days",
            "-1",
            "--minute-days",
            "7",
        ],
        vec![
            "org",
            "retention",
            "--full-days",
            "1",
            "--minute-days",
            "99999999",
        ],
        vec![
            "org",
            "retention",
            "--org",
            "nope",
            "--full-days",
            "1",
            "--minute-days",
            "2",
        ],
    ] {
        let out = admin(&home, db, &bad);
        assert!(!out.status.success(), "{bad:?} accepted: {out:?}");
        assert!(!out.stderr.is_empty(), "{bad:?}: no reason given");
    }
    // Totals come from the rollups, kept in µWh and µg (docs/server.md, "Rollups").
    let near = |a: &serde_json::Value, b: &serde_json::Value| {
        (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= 0.5e-9
    };
    assert!(
        near(&t["total"]["energy_kwh"], &rec["energy_kwh"]["total"]),
        "{t}"
    );
    assert!(
        near(&t["total"]["emissions_kg"], &rec["emissions_kg"]["total"]),
        "{t}"
    );
    let id = rec["id"].as_str().unwrap();
    let (c, got) = http(
        &addr,
        "GET",
        &format!("/api/v1/runs/{id}"),
        Some(&token),
        None,
    );
    assert_eq!(c, 200);
    assert_eq!(got["record"], rec);

    // A bad run is deleted on the database, audited; totals follow at once.
    let out = admin(
        &home,
        db,
        &["run", "rm", id, "--team", "physics", "--reason", "e2e test"],
    );
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("deleted run") && said.contains("wattprint admin"),
        "{said}"
    );
    let (_, t) = http(&addr, "GET", "/api/v1/totals", Some(&token), None);
    assert_eq!(t["total"]["runs"], 0, "{t}");
    let out = admin(&home, db, &["run", "deletions", "--json"]);
    let trail: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(trail[0]["run_id"], id);
    assert_eq!(trail[0]["reason"], "e2e test");
    assert_eq!(trail[0]["energy_kwh"], rec["energy_kwh"]["total"]);
    let out = admin(&home, db, &["run", "rm", id, "--team", "physics"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run"));

    // Revoked on the database while the server runs (not through it): refused once the
    // server's token cache time (300 ms here) has passed — polled, with a generous deadline.
    let out = admin(&home, db, &["token", "revoke", "1"]);
    assert!(out.status.success(), "{out:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let v = loop {
        let (c, v) = http(&addr, "GET", "/api/v1/runs", Some(&token), None);
        if c == 401 {
            break v;
        }
        assert_eq!(c, 200, "{v}");
        assert!(
            std::time::Instant::now() < deadline,
            "a token revoked on the database still worked after 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(v["detail"].as_str().unwrap().contains("revoked"));

    // SIGTERM stops it cleanly.
    let pid = server.0.id() as i32;
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let mut server = server;
    let status = server.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[test]
fn admin_and_serve_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("db/server.db").display());
    end_to_end(&db);
}

#[test]
fn admin_and_serve_on_postgres() {
    let base = wattprint_server::testing::pg_base_url();
    let db = wattprint_server::admin::block_on(wattprint_server::testing::fresh_pg_database(&base))
        .unwrap()
        .unwrap();
    end_to_end(&db);
}

#[test]
fn serve_refuses_bad_flags_and_databases() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    for (args, needle) in [
        (
            vec!["--database", "mysql://x/y"],
            "unsupported database URL",
        ),
        (vec!["--max-body", "lots"], "--max-body"),
        (vec!["--request-timeout", "soon"], "--request-timeout"),
        (vec!["--rate-limit=-3"], "--rate-limit"),
        (vec!["--idle-timeout", "1s"], "--idle-timeout"),
        (vec!["--header-timeout", "never"], "--header-timeout"),
        (vec!["--max-connections", "0"], "--max-connections"),
        (vec!["--token-cache-ms", "60001"], "--token-cache-ms"),
        (vec!["--listen", "not-an-address"], "cannot listen"),
    ] {
        let mut cmd = wattprint(&home);
        cmd.arg("serve").args(&args);
        if !args.contains(&"--database") {
            cmd.args([
                "--database",
                &format!("sqlite://{}", dir.path().join("s.db").display()),
            ]);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
