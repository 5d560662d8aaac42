#![allow(clippy::unwrap_used)]
//! Records of measured steps go to the site store and to the institution's server when the
//! site policy names one (`server`, `token` in the policy file): a real `wattprint serve` on
//! loopback (SQLite), a real job, the job's figures read back from the server's API.

mod common;
use common::{close, joules, wait_for, Cluster, Policy};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(addr: &str, path: &str, token: &str) -> (u16, serde_json::Value) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status: u16 = resp[9..12].parse().unwrap();
    let (_, body) = resp.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(body).unwrap_or_default())
}

#[test]
fn a_steps_record_reaches_the_server_as_one_job() {
    let c = Cluster::get();
    let t = c.t().to_path_buf();
    let home = t.join("server-home");
    let db = format!("sqlite://{}", t.join("server.db").display());
    let admin = |args: &[&str]| {
        let o = Command::new(common::wattprint_bin())
            .env("WATTPRINT_HOME", &home)
            .arg("admin")
            .args(args)
            .args(["--database", &db])
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    admin(&["team", "create", "hpc"]);
    let token = admin(&["token", "create", "--team", "hpc", "--name", "slurm"])
        .trim()
        .to_string();
    let mut child = Command::new(common::wattprint_bin())
        .env("WATTPRINT_HOME", &home)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _server = Server(child);
    let first = lines.next().unwrap().unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .trim_end_matches("/api/v1")
        .to_string();
    let addr = url.trim_start_matches("http://").to_string();
    let _policy = Policy::write(&c, &format!("server = \"{url}\"\ntoken = \"{token}\"\n"));

    let go = t.join("go");
    let job = c.sbatch(
        &format!("srun -n 1 sh -c \"{}\"", wait_for(&go)),
        &t.join("out.txt"),
    );
    let key = format!("slurm:{job}.0");
    c.wait_jobs(&[&key]);
    c.add_energy(400.0);
    std::fs::write(&go, "").unwrap();
    let recs = c.records(job, 2);
    let step = recs.iter().find(|r| r["job"] == key.as_str()).unwrap();
    // The final record was sent before it was stored: the server has it now.
    let (code, v) = get(&addr, &format!("/api/v1/jobs/{key}"), &token);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["job"], key.as_str());
    assert_eq!(v["expected_nodes"], 1, "{v}");
    assert_eq!(v["reported_nodes"], 1, "{v}");
    assert_eq!(v["complete"], true, "{v}");
    let node = &v["nodes"][0];
    assert_eq!(node["node"], step["host"]["hostname"]);
    assert_eq!(node["run_ids"][0], step["id"]);
    close(
        node["energy_kwh"].as_f64().unwrap() * 3.6e6,
        joules(step),
        "server vs site store",
    );
}
