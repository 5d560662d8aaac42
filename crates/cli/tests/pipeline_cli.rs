#![allow(clippy::unwrap_used)]
//! The whole pipeline (issue 14): lineage flags through the store, filters, export and import;
//! a model's footprint; discarded compute; I/O; storage scans; the digest.

mod common;
use common::{read_json, FakeHost};

fn run(h: &FakeHost, flags: &[&str], script: &str) -> serde_json::Value {
    let json = h.dir.path().join("r.json");
    let out = h
        .cmd()
        .args(["run", "--quiet", "--no-embodied", "--json"])
        .arg(&json)
        .args(flags)
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap();
    assert!(out.status.code().is_some(), "{out:?}");
    read_json(&json)
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn lineage_flags_are_recorded_filtered_exported_and_imported() {
    let h = FakeHost::new();
    let a = run(
        &h,
        &[
            "--produces",
            "llama-ft",
            "--stage",
            "tuning",
            "--sweep",
            "s1",
            "--trial",
            "4",
            "--base-model",
            "llama-7b",
            "--objective",
            "acc=0.8:max",
        ],
        "true",
    );
    let l = &a["lineage"];
    assert_eq!(l["model"], "llama-ft");
    assert_eq!(l["stage"], "tuning");
    assert_eq!(
        (l["sweep"].as_str(), l["trial"].as_str()),
        (Some("s1"), Some("4"))
    );
    assert_eq!(l["base_model"], "llama-7b");
    assert_eq!(l["objective"]["goal"], "max");
    assert!(
        l.get("sources").is_none(),
        "nothing came from the environment"
    );
    // W&B sweep agents' variables, with their source; the flags would win
    let out = h
        .cmd()
        .env("WANDB_SWEEP_ID", "wb1")
        .env("WANDB_RUN_ID", "run9")
        .args(["run", "--quiet", "--json"])
        .arg(h.dir.path().join("b.json"))
        .args(["--model", "llama-ft", "--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let b = read_json(&h.dir.path().join("b.json"));
    assert_eq!(b["lineage"]["sweep"], "wb1");
    assert_eq!(b["lineage"]["trial"], "run9");
    assert_eq!(b["lineage"]["stage"], "tuning");
    assert_eq!(b["lineage"]["sources"]["sweep"], "env:WANDB_SWEEP_ID");
    let c = run(&h, &[], "true");
    assert!(
        c.get("lineage").is_none(),
        "no lineage: no field (old readers unchanged)"
    );

    let list = |args: &[&str]| -> Vec<String> {
        let mut v = vec!["runs", "--json"];
        v.extend_from_slice(args);
        ids(&serde_json::from_str(&h.ok(&v)).unwrap())
    };
    let mut both = list(&["--model", "llama-ft"]);
    both.sort();
    let mut want = vec![
        a["id"].as_str().unwrap().to_string(),
        b["id"].as_str().unwrap().to_string(),
    ];
    want.sort();
    assert_eq!(both, want);
    assert_eq!(list(&["--sweep", "s1"]), vec![a["id"].as_str().unwrap()]);
    assert_eq!(list(&["--stage", "training"]), Vec::<String>::new());
    assert_eq!(list(&["--model", "llama-ft", "--stage", "tuning"]).len(), 2);

    // a bad name is refused before the job starts
    let out = h
        .cmd()
        .args(["run", "--model", "a\nb", "--", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--model"));

    // the JSONL export carries the records whole, lineage included
    let file = h.dir.path().join("runs.jsonl");
    h.ok(&[
        "export",
        "--format",
        "jsonl",
        "--sweep",
        "s1",
        "-o",
        file.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["lineage"], a["lineage"]);
}

/// A stored run made from `template` (a real record): id, start, status, energy, emissions
/// and lineage replaced; work units for inference runs.
fn seeded(
    template: &serde_json::Value,
    id: &str,
    minute: u32,
    status: &str,
    kwh: f64,
    kg: f64,
    lineage: serde_json::Value,
) -> wattprint_core::record::RunRecord {
    let mut v = template.clone();
    v["id"] = id.into();
    v["started_at"] = format!("2025-06-01T10:{minute:02}:00Z").into();
    v["status"] = status.into();
    v["energy_kwh"]["total"] = kwh.into();
    v["energy_kwh"]["it"] = kwh.into();
    v["emissions_kg"]["total"] = kg.into();
    v["emissions_kg"]["operational"] = kg.into();
    v["lineage"] = lineage;
    if v["lineage"]["stage"] == "inference" {
        v["segments"] = serde_json::json!({"windows": [], "work": {"units": 1000.0, "unit": "tokens", "j_per_unit": null, "g_per_unit": null}});
    }
    serde_json::from_value(v).unwrap()
}

#[test]
fn a_models_footprint_is_exact_over_a_seeded_store() {
    use serde_json::json;
    let h = FakeHost::new();
    let template = run(&h, &[], "true");
    h.ok(&["rm", template["id"].as_str().unwrap()]);
    let m = |stage: &str| json!({"model": "m", "stage": stage});
    let trial = |t: &str, obj: Option<f64>| {
        let mut l = json!({"model": "m", "stage": "tuning", "sweep": "s", "trial": t});
        if let Some(v) = obj {
            l["objective"] = json!({"name": "loss", "value": v, "goal": "min"});
        }
        l
    };
    let mut runs = vec![
        seeded(
            &template,
            "prep",
            1,
            "completed",
            1.0,
            0.5,
            m("preparation"),
        ),
        seeded(&template, "dbg", 2, "failed", 0.5, 0.25, m("debug")),
        seeded(
            &template,
            "t1",
            3,
            "completed",
            2.0,
            1.0,
            trial("1", Some(0.5)),
        ),
        seeded(
            &template,
            "t2",
            4,
            "completed",
            2.0,
            1.0,
            trial("2", Some(0.3)),
        ),
        seeded(&template, "t3", 5, "killed", 1.0, 0.5, trial("3", None)),
        seeded(&template, "tr1", 6, "completed", 4.0, 2.0, m("training")),
        seeded(&template, "trf", 7, "failed", 2.0, 1.0, m("training")),
        seeded(
            &template,
            "tr2",
            8,
            "completed",
            8.0,
            4.0,
            json!({"model": "m", "stage": "training", "base_model": "base"}),
        ),
        seeded(&template, "inf1", 9, "completed", 0.5, 0.25, m("inference")),
        seeded(
            &template,
            "inf2",
            10,
            "completed",
            0.5,
            0.25,
            m("inference"),
        ),
        seeded(
            &template,
            "b1",
            0,
            "completed",
            6.0,
            3.0,
            json!({"model": "base", "stage": "training"}),
        ),
        seeded(
            &template,
            "other",
            11,
            "completed",
            9.0,
            9.0,
            json!({"model": "n"}),
        ),
    ];
    let discarded = |e: Option<f64>| wattprint_core::waste::Discarded {
        checkpoints: e.map_or(0, |_| 2),
        last_checkpoint_s: e.map(|_| 30.0),
        energy_kwh: e,
        emissions_kg: e.map(|x| x / 2.0),
        advice: String::new(),
    };
    for (i, (lr, bs)) in [(2, ("1", "8")), (3, ("2", "8")), (4, ("1", "16"))] {
        runs[i].tags.insert("lr".into(), lr.into());
        runs[i].tags.insert("bs".into(), bs.into());
    }
    runs[6].discarded = Some(discarded(Some(1.5)));
    runs[1].discarded = Some(discarded(None));
    {
        let mut st = wattprint::store::Store::open(&h.db()).unwrap();
        for r in &runs {
            st.save_run(r).unwrap();
        }
    }
    let fp: serde_json::Value =
        serde_json::from_str(&h.ok(&["model", "m", "--format", "json"])).unwrap();
    assert_eq!(fp["total"]["runs"], 10);
    assert_eq!(fp["total"]["emissions_kg"], 10.75);
    assert_eq!(fp["development"]["emissions_kg"], 10.25);
    assert_eq!(fp["development"]["energy_kwh"], 20.5);
    assert_eq!(fp["final_training"]["id"], "tr2");
    assert_eq!(fp["final_rule"], "the latest completed training run");
    assert_eq!(fp["overhead"]["emissions_kg"], 6.25);
    assert_eq!(fp["overhead_ratio"], 6.25 / 4.0);
    assert_eq!(fp["overhead_ratio_energy"], 12.5 / 8.0);
    assert_eq!(fp["preparation_share"], 0.5 / 10.25);
    assert_eq!(fp["stages"]["training"]["emissions_kg"], 7.0);
    assert_eq!(fp["stages"]["tuning"]["runs"], 3);
    assert_eq!(fp["failed"]["emissions_kg"], 1.75);
    assert_eq!(fp["failed"]["runs"], 3);
    assert_eq!(fp["discarded"]["energy_kwh"], 1.5);
    assert_eq!(fp["discarded"]["emissions_kg"], 0.75);
    assert_eq!(fp["discarded"]["known_runs"], 1);
    assert_eq!(fp["discarded"]["unknown_runs"], 1);
    let s = &fp["sweeps"][0];
    assert_eq!(
        (s["sweep"].as_str(), s["trials"].as_u64()),
        (Some("s"), Some(3))
    );
    assert_eq!(s["cost"]["emissions_kg"], 2.5);
    assert_eq!(s["best"]["trial"], "2");
    assert_eq!(s["not_selected"]["emissions_kg"], 1.5);
    assert_eq!(s["far_from_best"]["trials"], 1);
    assert_eq!(s["far_from_best"]["share"], 0.5);
    assert_eq!(s["grid"]["parameters"], json!({"bs": 2, "lr": 2}));
    assert_eq!(
        (s["grid"]["covered"].as_u64(), s["grid"]["full"].as_bool()),
        (Some(3), Some(false))
    );
    assert_eq!(fp["inference"]["cost"]["emissions_kg"], 0.5);
    assert_eq!(fp["inference"]["units"], 2000.0);
    assert_eq!(fp["inference"]["g_per_unit"], 0.25);
    assert_eq!(fp["base_model"]["name"], "base");
    assert_eq!(fp["base_model"]["reused"]["emissions_kg"], 3.0);

    let text = h.ok(&["model", "m"]);
    for want in [
        "final training:        4.00 kg CO2e, 8.00 kWh (run tr2",
        "= 1.56× the final training",
        "best trial: 2 (loss = 0.300, lower is better); the other trials cost 1.50 kg CO2e",
        "0.250 g CO2e per unit of work (tokens)",
        "discarded compute unknown for 1 run(s)",
        "a partial grid over bs (2) × lr (2) = 4 combinations (3 run)",
        "Base model base reused, not re-spent: its development was 3.00 kg CO2e",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    let card = h.ok(&["report", "--model", "m", "--format", "model-card"]);
    assert!(card.contains("  emissions: 10250.00\n"), "{card}");
    assert!(
        card.contains("# preparation: 4.88 % of these emissions"),
        "{card}"
    );
    assert!(card.contains("training_type: \"fine-tuning\""), "{card}");
    assert!(
        card.contains("base model base reused, not counted here"),
        "{card}"
    );

    // the month's digest: emitted, top models, waste, a cleaner region, three actions
    let md = h.ok(&["digest", "--month", "2025-06"]);
    for want in [
        "# wattprint digest: month 2025-06",
        "**Emitted:** 22.8 kg CO2e, 36.5 kWh over 12 run(s).",
        "| base | 3.00 kg | 3.00 kg | 0× | 0 % |",
        "| n | 9.00 kg | none | unknown | unknown |",
        "| m | 10.8 kg | 4.00 kg | 1.56× | 4.88 % |",
        "- Failed, killed or stopped runs: 3 (1.75 kg CO2e)",
        "- Discarded since the last checkpoint: 750 g CO2e in 1 run(s); unknown for 1 run(s) without checkpoint signals",
        "1. Run the same work in ",
        "would have emitted ",
        "2. Stop sweep trials early when they fall far behind the best (e.g. a pruning scheduler) — would have saved about 1.00 kg CO2e",
        "3. Checkpoint more often (every 30 min): failed runs discarded the work since their last checkpoint — would have saved about 750 g CO2e",
    ] {
        assert!(md.contains(want), "missing `{want}` in:\n{md}");
    }
    let page = h.dir.path().join("digest.html");
    h.ok(&[
        "digest",
        "--month",
        "2025-06",
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("<h2>Three actions</h2>"));
    assert!(!h
        .cmd()
        .args(["digest", "--month", "2025-07"])
        .output()
        .unwrap()
        .status
        .success());

    // a run marked final wins over the latest completed training run
    runs[5].lineage.as_mut().unwrap().is_final = true;
    wattprint::store::Store::open(&h.db())
        .unwrap()
        .save_run(&runs[5])
        .unwrap();
    let fp: serde_json::Value =
        serde_json::from_str(&h.ok(&["model", "m", "--format", "json"])).unwrap();
    assert_eq!(fp["final_training"]["id"], "tr1");
    assert_eq!(fp["overhead_ratio"], 8.25 / 2.0);
    // a sweep without objectives: the best trial is unknown, never a guess
    let out = h.cmd().args(["model", "nobody"]).output().unwrap();
    assert!(!out.status.success());
    let fp: serde_json::Value =
        serde_json::from_str(&h.ok(&["model", "n", "--format", "json"])).unwrap();
    assert!(fp["final_training"].is_null() && fp["overhead_ratio"].is_null());
    assert!(h
        .ok(&["model", "n"])
        .contains("overhead ratio:        unknown"));
}

#[test]
fn discarded_compute_with_and_without_checkpoint_signals() {
    let h = FakeHost::new();
    let _power = common::Driver::constant(&h, 50.0, 5.0);
    // a checkpoint dated before the run started: everything since is discarded
    let r = run(
        &h,
        &["--interval", "50ms"],
        r#"sleep 0.3; echo 0.5 > "$WATTPRINT_PROGRESS_FILE"; echo "checkpoint 1000000000" >> "$WATTPRINT_PROGRESS_FILE"; sleep 0.3; exit 3"#,
    );
    assert_eq!(r["status"], "failed");
    let d = &r["discarded"];
    assert_eq!(d["checkpoints"], 1);
    assert_eq!(d["last_checkpoint_s"], 0.0);
    let total = r["energy_kwh"]["total"].as_f64().unwrap();
    let e = d["energy_kwh"].as_f64().unwrap();
    assert!(
        total > 0.0 && (e - total).abs() <= 1e-5 * total,
        "{d} vs {total}"
    );
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| !w.as_str().unwrap().contains("progress file")),
        "{}",
        r["warnings"]
    );
    // a checkpoint in the middle: only what follows it
    let r = run(
        &h,
        &["--interval", "50ms"],
        r#"sleep 0.4; echo "checkpoint $(date +%s.%N)" >> "$WATTPRINT_PROGRESS_FILE"; sleep 0.4; kill -TERM $$"#,
    );
    assert_eq!(r["status"], "killed");
    let total = r["energy_kwh"]["total"].as_f64().unwrap();
    let e = r["discarded"]["energy_kwh"].as_f64().unwrap();
    assert!(e > 0.0 && e < total, "{} of {total}", r["discarded"]);
    let at = r["discarded"]["last_checkpoint_s"].as_f64().unwrap();
    assert!(at > 0.0 && at < r["duration_s"].as_f64().unwrap());
    // no signal: unknown, never 0
    let r = run(&h, &[], "exit 1");
    assert!(r["discarded"]["energy_kwh"].is_null(), "{}", r["discarded"]);
    assert!(r["discarded"]["advice"]
        .as_str()
        .unwrap()
        .starts_with("unknown"));
    // a completed run discarded nothing: no field
    assert!(run(&h, &[], "true").get("discarded").is_none());
    // shown in `show`
    let id = r["id"].as_str().unwrap();
    let shown = h.ok(&["show", id]);
    assert!(
        shown.contains("Discarded since the last checkpoint: unknown"),
        "{shown}"
    );
}

#[test]
fn io_of_a_real_job_that_writes_and_reads_a_known_number_of_bytes() {
    let h = FakeHost::new();
    // The real /proc (the fake host's procfs has no processes): dd is the job's own process.
    let out_file = h.dir.path().join("data.bin");
    let json = h.dir.path().join("io.json");
    let out = h
        .cmd()
        .env("WATTPRINT_PROCFS_ROOT", "/proc")
        .args(["run", "--quiet", "--no-embodied", "--json"])
        .arg(&json)
        .args(["--", "dd", "if=/dev/zero", "bs=65536", "count=64"])
        .arg(format!("of={}", out_file.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r = read_json(&json);
    let io = &r["io"];
    let n = 64 * 65536;
    let wchar = io["wchar"].as_u64().unwrap();
    let rchar = io["rchar"].as_u64().unwrap();
    // dd writes the data and its summary on stderr (tens of bytes); reads the data (and
    // perhaps a few small files at start-up)
    assert!((n..n + 1024).contains(&wchar), "{io}");
    assert!((n..n + 65536).contains(&rchar), "{io}");
    assert!(io["processes"].as_u64().unwrap() >= 1);
    assert!(io["storage_energy"]
        .as_str()
        .unwrap()
        .starts_with("not counted"));
    if let Some(net) = io.get("network") {
        assert_eq!(net["scope"], "host");
        let gb =
            (net["rx_bytes"].as_u64().unwrap() + net["tx_bytes"].as_u64().unwrap()) as f64 / 1e9;
        assert!((net["energy_kwh"].as_f64().unwrap() - gb * 0.001).abs() <= 1e-6 * gb.max(1e-9));
    }
    let shown = h.ok(&["show", r["id"].as_str().unwrap()]);
    assert!(shown.contains("I/O of the job's processes"), "{shown}");
    assert!(
        shown.contains("written through read/write calls"),
        "{shown}"
    );
}

/// A directory nested so deep under `base` that its path exceeds PATH_MAX: unreadable by
/// path even for root (made with mkdirat/openat, which take no long path).
fn too_deep(base: &std::path::Path) {
    use std::ffi::CString;
    let name = CString::new("d".repeat(250)).unwrap();
    let mut fd = unsafe {
        libc::open(
            CString::new(base.to_str().unwrap()).unwrap().as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY,
        )
    };
    assert!(fd >= 0);
    for _ in 0..20 {
        assert_eq!(unsafe { libc::mkdirat(fd, name.as_ptr(), 0o755) }, 0);
        let next = unsafe { libc::openat(fd, name.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY) };
        assert!(next >= 0);
        unsafe { libc::close(fd) };
        fd = next;
    }
    unsafe { libc::close(fd) };
}

#[test]
fn storage_scan_finds_duplicates_not_hard_links_never_follows_symlinks() {
    let h = FakeHost::new();
    let root = h.dir.path().join("data");
    let outside = h.dir.path().join("outside");
    for d in ["a", "b", "c"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::create_dir_all(&outside).unwrap();
    let a: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("a/data.bin"), &a).unwrap();
    std::fs::write(root.join("b/copy.bin"), &a).unwrap();
    std::fs::hard_link(root.join("a/data.bin"), root.join("b/hard.bin")).unwrap();
    let mut diff = a.clone();
    *diff.last_mut().unwrap() ^= 1; // same size and first 64 KiB: read whole, not a copy
    std::fs::write(root.join("c/near.bin"), &diff).unwrap();
    std::fs::write(root.join("c/s1.txt"), "hello").unwrap();
    std::fs::write(root.join("c/s2.txt"), "hello").unwrap();
    std::fs::write(outside.join("x.bin"), &a).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
    std::os::unix::fs::symlink(root.join("a/data.bin"), root.join("c/link.bin")).unwrap();
    too_deep(&root.join("c"));

    let out = h
        .cmd()
        .args([
            "storage",
            "scan",
            "--json",
            "--replication",
            "3",
            "--intensity",
            "100",
            "--pue",
            "1",
        ])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["scan"];
    assert_eq!(s["files"], 5, "{s}");
    assert_eq!(s["bytes"], 3 * 100_000 + 10);
    assert_eq!(s["hard_links"], 1);
    assert_eq!(s["symlinks"], 2);
    assert!(s["unreadable"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["duplicate_groups"], 2);
    assert_eq!(s["redundant_bytes"], 100_000 + 5);
    assert_eq!(
        s["fully_hashed"], 3,
        "only the three 100 kB files are read whole"
    );
    let g = &s["groups"][0];
    assert_eq!(
        (g["copies"].as_u64(), g["size_bytes"].as_u64()),
        (Some(2), Some(100_000))
    );
    let paths: Vec<&str> = g["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        paths
            .iter()
            .all(|p| !p.contains("outside") && !p.contains("hard.bin")),
        "{paths:?}"
    );
    let f = &v["footprint"];
    let per_byte = 0.65 / 1000.0 * 8766.0 / 1e12 * 3.0;
    let want = 300_010.0 * per_byte;
    assert!((f["kwh_per_year"].as_f64().unwrap() - want).abs() <= 1e-12 * want);
    let dedup = 100_005.0 * per_byte;
    assert!((f["dedup_kg_per_year"].as_f64().unwrap() - dedup * 0.1).abs() <= 1e-12 * dedup);
    // text: the facts, the unreadable entry named, not fatal
    let text = h.ok(&[
        "storage",
        "scan",
        "--intensity",
        "100",
        "--medium",
        "ssd",
        root.to_str().unwrap(),
    ]);
    assert!(text.contains("Duplicates: 2 group(s)"), "{text}");
    assert!(text.contains("Unreadable entries:"), "{text}");
    assert!(text.contains("on SSD × 1 replica(s)"), "{text}");
}

/// `wattprint serve` as a child process on a loopback port; its base URL.
struct Serve(std::process::Child, String);

impl Serve {
    fn start(h: &FakeHost, db: &str) -> Serve {
        use std::io::BufRead;
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
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .trim_end_matches("/api/v1")
            .to_string();
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Serve(child, url)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_teams_digest_from_the_server() {
    let h = FakeHost::new();
    let db = format!("sqlite://{}", h.dir.path().join("server.db").display());
    h.ok(&["admin", "team", "create", "physics", "--database", &db]);
    let tok = h
        .ok(&[
            "admin",
            "token",
            "create",
            "--team",
            "physics",
            "--role",
            "member",
            "--database",
            &db,
        ])
        .trim()
        .to_string();
    let server = Serve::start(&h, &db);
    for (stage, script) in [
        ("preparation", "true"),
        ("training", "true"),
        ("training", "exit 2"),
    ] {
        let out = h
            .cmd()
            .env("WATTPRINT_TOKEN", &tok)
            .args([
                "run",
                "--quiet",
                "--no-embodied",
                "--server",
                &server.1,
                "--model",
                "m",
                "--stage",
                stage,
                "--",
                "sh",
                "-c",
                script,
            ])
            .output()
            .unwrap();
        assert!(out.status.code().is_some(), "{out:?}");
    }
    let month = time::OffsetDateTime::now_utc();
    let month = format!("{:04}-{:02}", month.year(), u8::from(month.month()));
    let out = h
        .cmd()
        .env("WATTPRINT_TOKEN", &tok)
        .args([
            "digest", "--team", "physics", "--server", &server.1, "--month", &month,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(
        md.contains(&format!("# wattprint digest: team physics, month {month}")),
        "{md}"
    );
    assert!(md.contains("over 3 run(s)."), "{md}");
    assert!(md.contains("| m | "), "{md}");
    assert!(md.contains("- Failed, killed or stopped runs: 1 "), "{md}");
    assert!(
        md.contains("not computed (the power series stay on the server)"),
        "{md}"
    );
    // another team's name: nothing of ours
    let out = h
        .cmd()
        .env("WATTPRINT_TOKEN", &tok)
        .args([
            "digest", "--team", "biology", "--server", &server.1, "--month", &month,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
