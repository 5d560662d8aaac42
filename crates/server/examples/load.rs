//! Load generator for `wattprint serve` (run by `scripts/load-server.sh`, not a test).
//!
//! N concurrent agents on loopback upload runs as `wattprint run --server` does: checkpoints
//! (status `running`, cumulative figures, each with the samples of its interval) then a final
//! record. Closed loop (each agent sends its next request when the previous one is answered)
//! or open loop (`--rate R`: R requests per second in all, latency measured from the intended
//! send time so that a slow server cannot hide its queueing). Bounded in time and in count.
//! Afterwards it checks that nothing was lost: the server's run count and energy total equal
//! what was sent, and every run holds all its samples. Prints one JSON object.
//!
//! ```text
//! cargo run --release -p wattprint-server --example load -- \
//!     --url http://127.0.0.1:8080 --token wpt_… --agents 32 --seconds 20
//! ```

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Opts {
    url: String,
    token: String,
    agents: usize,
    seconds: f64,
    checkpoints: usize,
    samples: usize,
    rate: Option<f64>,
    max_requests: u64,
    project: String,
    /// Samples with every checkpoint (an agent streaming them), or all with the final record
    /// (as `wattprint run --server` sends them).
    series_each: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        url: String::new(),
        token: std::env::var("WATTPRINT_TOKEN").unwrap_or_default(),
        agents: 32,
        seconds: 20.0,
        checkpoints: 10,
        samples: 10,
        rate: None,
        max_requests: 2_000_000,
        project: format!("load-{}", std::process::id()),
        series_each: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--url" => o.url = v,
            "--token" => o.token = v,
            "--agents" => o.agents = v.parse().expect("--agents N"),
            "--seconds" => o.seconds = v.parse().expect("--seconds S"),
            "--checkpoints" => o.checkpoints = v.parse().expect("--checkpoints N"),
            "--samples" => o.samples = v.parse().expect("--samples N"),
            "--rate" => o.rate = Some(v.parse().expect("--rate R")),
            "--max-requests" => o.max_requests = v.parse().expect("--max-requests N"),
            "--project" => o.project = v,
            "--series" => {
                o.series_each = match v.as_str() {
                    "each" => true,
                    "final" => false,
                    _ => panic!("--series each|final"),
                }
            }
            a => panic!("unknown argument {a}"),
        }
        i += 2;
    }
    assert!(!o.url.is_empty(), "--url http://HOST:PORT is required");
    assert!(
        !o.token.is_empty(),
        "--token or WATTPRINT_TOKEN is required"
    );
    o
}

/// A valid `wattprint.run/1` record with cumulative figures.
fn record(id: &str, project: &str, status: &str, duration_s: f64, kwh: f64) -> Value {
    let running = status == "running";
    json!({
        "schema": "wattprint.run/1", "id": id, "project": project, "tags": {"load": "1"},
        "command": ["python", "train.py"], "started_at": "2026-01-15T12:00:00Z",
        "ended_at": if running { Value::Null } else { json!("2026-01-15T13:00:00Z") },
        "duration_s": duration_s, "status": status,
        "exit_code": if running { Value::Null } else { json!(0) },
        "host": {"hostname": "load-node", "cpu_model": "Xeon", "logical_cpus": 8, "ram_gb": 32.0, "gpus": []},
        "scope": "machine", "interval_s": 1.0,
        "energy_kwh": {"cpu": kwh * 0.8, "gpu": 0.0, "ram": kwh * 0.2, "other": 0.0, "dynamic": kwh * 0.7,
                       "static": kwh * 0.3, "it": kwh, "infrastructure": kwh * 0.2, "facility": kwh * 1.2, "total": kwh},
        "devices": [{"id": "cpu:package-0", "kind": "cpu", "method": "rapl", "name": "package-0",
                     "energy_kwh": kwh * 0.8, "avg_power_w": 100.0, "machine_energy_kwh": kwh * 0.8},
                    {"id": "ram:dram-0", "kind": "ram", "method": "rapl-dram", "name": "dram",
                     "energy_kwh": kwh * 0.2, "avg_power_w": 25.0, "machine_energy_kwh": kwh * 0.2}],
        "methods": {"cpu": "rapl", "gpu": "none", "ram": "rapl-dram"}, "pue": 1.2,
        "carbon_intensity": {"g_per_kwh": 50.0, "source": "load"},
        "location": {"code": "FR", "name": "France", "known": true, "pue_source": "load"},
        "emissions_kg": {"dynamic": kwh * 0.035, "static": kwh * 0.015, "infrastructure": kwh * 0.01, "embodied": 0.0,
                         "operational": kwh * 0.06, "total": kwh * 0.06},
        "equivalents": {"car_km": 0.0, "tree_months": 0.0, "flights_paris_london": 0.0, "flights_paris_dublin": 0.0,
                        "flights_new_york_san_francisco": 0.0, "phone_charges": 0.0},
        "assumptions": [], "factors_version": "load", "warnings": [], "samples": 1, "skipped_ticks": 0,
        "wattprint_version": "0.1.0"
    })
}

/// `n` samples per device for the 10 s after `t0`.
fn series(t0: f64, n: usize) -> Vec<Value> {
    let dt = 10.0 / n as f64;
    let mut v = Vec::with_capacity(2 * n);
    for dev in ["cpu:package-0", "ram:dram-0"] {
        for i in 0..n {
            let a = t0 + i as f64 * dt;
            v.push(json!({"device_id": dev, "t0": a, "t1": a + dt, "energy_j": 12.5 * dt}));
        }
    }
    v
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    errors: Vec<String>,
    /// run id → final energy (kWh), for runs whose final record was accepted.
    finals: Vec<(String, f64)>,
    samples_sent: u64,
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = Arc::new(opts());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(o.agents * 2)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let stats = Arc::new(Mutex::new(Stats::default()));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.seconds);
    let mut tasks = Vec::new();
    for a in 0..o.agents {
        let (o, http, stats, sent, stop) = (
            Arc::clone(&o),
            http.clone(),
            Arc::clone(&stats),
            Arc::clone(&sent),
            Arc::clone(&stop),
        );
        tasks.push(tokio::spawn(async move {
            // Open loop: this agent's share of the rate, its first slot staggered.
            let period = o.rate.map(|r| Duration::from_secs_f64(o.agents as f64 / r));
            let mut next = start
                + period
                    .map(|p| p.mul_f64(a as f64 / o.agents as f64))
                    .unwrap_or_default();
            let mut r = 0usize;
            'runs: loop {
                let id = format!("{}-a{a}-r{r}", o.project);
                r += 1;
                for c in 1..=o.checkpoints + 1 {
                    if Instant::now() >= deadline
                        || stop.load(Ordering::Relaxed)
                        || sent.fetch_add(1, Ordering::Relaxed) >= o.max_requests
                    {
                        break 'runs;
                    }
                    let fin = c == o.checkpoints + 1;
                    let kwh = c as f64 * 0.001;
                    let mut body = record(
                        &id,
                        &o.project,
                        if fin { "completed" } else { "running" },
                        c as f64 * 10.0,
                        kwh,
                    );
                    if o.series_each {
                        body["series"] = Value::Array(series((c - 1) as f64 * 10.0, o.samples));
                    } else if fin {
                        let all: Vec<Value> = (0..c)
                            .flat_map(|k| series(k as f64 * 10.0, o.samples))
                            .collect();
                        body["series"] = Value::Array(all);
                    }
                    let intended = match period {
                        Some(p) => {
                            let now = Instant::now();
                            if next > now {
                                tokio::time::sleep(next - now).await;
                            }
                            let t = next;
                            next += p;
                            t
                        }
                        None => Instant::now(),
                    };
                    let res = http
                        .post(format!("{}/api/v1/runs", o.url))
                        .bearer_auth(&o.token)
                        .json(&body)
                        .send()
                        .await;
                    let failure = match res {
                        Ok(resp) if resp.status().is_success() => {
                            // Read the answer, so the connection is reused.
                            resp.bytes().await.err().map(|e| e.to_string())
                        }
                        Ok(resp) => {
                            let code = resp.status();
                            Some(format!("{code}: {}", resp.text().await.unwrap_or_default()))
                        }
                        Err(e) => Some(e.to_string()),
                    };
                    let lat = intended.elapsed();
                    let mut st = stats.lock().expect("stats");
                    st.latencies_us.push(lat.as_micros() as u64);
                    match failure {
                        None => {
                            if o.series_each {
                                st.samples_sent += 2 * o.samples as u64;
                            } else if fin {
                                st.samples_sent += (2 * o.samples * c) as u64;
                            }
                            if fin {
                                st.finals.push((id.clone(), kwh));
                            }
                        }
                        Some(e) => {
                            st.errors.push(e);
                            stop.store(true, Ordering::Relaxed);
                            break 'runs;
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("agent task");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut st = std::mem::take(&mut *stats.lock().expect("stats"));
    st.latencies_us.sort_unstable();
    let requests = st.latencies_us.len() as f64;

    // Nothing lost: the server's count and energy equal what was accepted, every run's samples.
    let totals: Value = http
        .get(format!("{}/api/v1/totals?project={}", o.url, o.project))
        .bearer_auth(&o.token)
        .send()
        .await
        .expect("totals")
        .json()
        .await
        .expect("totals JSON");
    // Runs cut by the deadline stay `running` with their last checkpoint: count finals only.
    let completed: Value = http
        .get(format!(
            "{}/api/v1/totals?project={}&status=completed",
            o.url, o.project
        ))
        .bearer_auth(&o.token)
        .send()
        .await
        .expect("totals")
        .json()
        .await
        .expect("totals JSON");
    let want_kwh: f64 = st.finals.iter().map(|f| f.1).sum();
    let got_kwh = completed["total"]["energy_kwh"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let got_runs = completed["total"]["runs"].as_u64().unwrap_or(0);
    let mut samples_missing = 0u64;
    let want_samples = (2 * o.samples * (o.checkpoints + 1)) as u64;
    for (id, _) in &st.finals {
        let v: Value = http
            .get(format!("{}/api/v1/runs/{id}/samples", o.url))
            .bearer_auth(&o.token)
            .send()
            .await
            .expect("samples")
            .json()
            .await
            .expect("samples JSON");
        let n = v["samples"].as_array().map(Vec::len).unwrap_or(0) as u64;
        samples_missing += want_samples.saturating_sub(n);
    }
    let lost = got_runs != st.finals.len() as u64
        || (got_kwh - want_kwh).abs() > 1e-9 * want_kwh.max(1.0)
        || samples_missing > 0;
    let out = json!({
        "agents": o.agents,
        "mode": format!("{}, samples {}",
            match o.rate { Some(r) => format!("open loop {r}/s"), None => "closed loop".into() },
            if o.series_each { "with each checkpoint" } else { "with the final record" }),
        "seconds": elapsed,
        "requests": requests,
        "requests_per_s": requests / elapsed,
        "runs_completed": st.finals.len(),
        "runs_per_s": st.finals.len() as f64 / elapsed,
        "samples_per_s": st.samples_sent as f64 / elapsed,
        "latency_ms": {"p50": pct(&st.latencies_us, 50.0), "p90": pct(&st.latencies_us, 90.0),
                        "p99": pct(&st.latencies_us, 99.0), "max": pct(&st.latencies_us, 100.0)},
        "errors": st.errors.len(),
        "first_error": st.errors.first(),
        "server_runs_all": totals["total"]["runs"],
        "server_runs_completed": got_runs,
        "energy_kwh_sent": want_kwh,
        "energy_kwh_server": got_kwh,
        "samples_missing": samples_missing,
        "nothing_lost": !lost,
    });
    println!("{out}");
    if lost || !st.errors.is_empty() {
        std::process::exit(1);
    }
}
