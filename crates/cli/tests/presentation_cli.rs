#![allow(clippy::unwrap_used)]
//! What people read: one rounding policy (significant digits, units by magnitude, never `-0`),
//! a run whose tracker died shown as such, and import line numbers right whatever the line
//! endings.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::FakeHost;

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_run_whose_tracker_died_shows_as_unfinished_not_running() {
    let h = FakeHost::new();
    let pidfile = h.dir.path().join("job.pid");
    let mut wp = h
        .cmd()
        .args(["run", "--quiet", "--interval", "50ms", "--", "sh", "-c"])
        .arg(format!("echo $$ > {}; exec sleep 30", pidfile.display()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // the first checkpoint is saved before the job starts
    wait_for("the job", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))
    });
    let job: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let runs = h.ok(&["runs"]);
    assert!(runs.contains("running"), "{runs}");
    assert!(!runs.contains("tracker lost"), "{runs}");
    let line = runs.lines().nth(1).unwrap().to_string();
    let short = line.split_whitespace().next().unwrap().to_string();
    let show = h.ok(&["show", &short]);
    assert!(show.contains(&format!("run {short} running in")), "{show}");
    assert!(!show.contains("(running)"), "{show}");

    // the tracker dies without a word
    // SAFETY: signals to processes this test started.
    unsafe { libc::kill(wp.id() as i32, libc::SIGKILL) };
    wp.wait().unwrap();
    unsafe { libc::kill(job, libc::SIGKILL) };

    let runs = h.ok(&["runs"]);
    assert!(runs.contains("unfinished (tracker lost)"), "{runs}");
    let show = h.ok(&["show", &short]);
    assert!(
        show.contains(&format!("run {short} unfinished (tracker lost) in")),
        "{show}"
    );
    assert!(!show.contains("running ("), "{show}");
    let md = h.ok(&["report", &short, "--format", "md"]);
    assert!(md.contains("unfinished (tracker lost)"), "{md}");
    let html = h.ok(&["report", "--project", "default", "--format", "html"]);
    assert!(
        html.contains("unfinished (tracker lost)"),
        "report --project"
    );
    // the data keep the recorded status
    let v: serde_json::Value = serde_json::from_str(&h.ok(&["show", "--json", &short])).unwrap();
    assert_eq!(v["status"], "running");
}

/// Every number written as a negative zero (`-0`, `-0.0`, `-0.000`) in `text`.
fn negative_zeros(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || ",;()=|".contains(c))
        .filter(|t| t.starts_with('-') && t.parse::<f64>().is_ok_and(|x| x == 0.0))
        .map(str::to_string)
        .collect()
}

#[test]
fn no_negative_zero_and_significant_digits_in_what_people_and_csv_read() {
    let h = FakeHost::new();
    // no GPU: its energy is an empty sum, which is -0.0 in floating point
    h.ok(&[
        "run",
        "--quiet",
        "--intensity",
        "179.064206313",
        "--",
        "true",
    ]);
    let runs: serde_json::Value = serde_json::from_str(&h.ok(&["runs", "--json"])).unwrap();
    let id = runs[0]["id"].as_str().unwrap().to_string();
    let csv = h.ok(&["export", "--format", "csv"]);
    assert_eq!(negative_zeros(&csv), Vec::<String>::new(), "{csv}");
    for args in [
        vec!["runs", "--json"],
        vec!["export", "--format", "jsonl"],
        vec!["show", "--json", &id[..8]],
    ] {
        let text = h.ok(&args);
        assert!(!text.contains("-0.0"), "{args:?}: {text}");
    }
    let show = h.ok(&["show", &id[..8]]);
    for text in [&show, &h.ok(&["runs"]), &h.ok(&["projects"])] {
        assert_eq!(negative_zeros(text), Vec::<String>::new(), "{text}");
    }
    // the intensity as people read it: three significant digits, not the raw factor
    assert!(show.contains("179 gCO2e/kWh"), "{show}");
    assert!(!show.contains("179.064"), "{show}");
}

#[test]
fn import_line_numbers_are_the_files_with_crlf_line_endings() {
    let h = FakeHost::new();
    let head = "timestamp,project_name,run_id,duration,emissions,energy_consumed";
    let rows = [
        "2024-01-01T00:00:00,p,a1,10,0.001,0.002",
        "2024-01-01T00:00:00,p,a2,xx,0.001,0.002",
        "2024-01-01T00:00:00,p,a3,10,zz,0.002",
    ];
    for (name, eol) in [("lf.csv", "\n"), ("crlf.csv", "\r\n")] {
        let p = h.dir.path().join(name);
        let mut text = String::from(head) + eol;
        for r in rows {
            text.push_str(r);
            text.push_str(eol);
        }
        std::fs::write(&p, text).unwrap();
        let out = h
            .cmd()
            .args(["import", "codecarbon"])
            .arg(&p)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{name}:3: column `duration`")),
            "{err}"
        );
        assert!(
            err.contains(&format!("{name}:4: column `emissions`")),
            "{err}"
        );
    }
}

#[test]
fn a_project_reports_baseline_is_the_same_work_at_one_named_place() {
    let h = FakeHost::new();
    // two runs valued in France, one in Poland: the baseline is all the IT energy at FR's
    // intensity × PUE, not the sum of what each run emitted where it ran
    let driver = common::Driver::constant(&h, 50.0, 5.0);
    for loc in ["FR", "FR", "PL"] {
        h.ok(&[
            "run",
            "--quiet",
            "--location",
            loc,
            "--interval",
            "50ms",
            "--",
            "sleep",
            "0.2",
        ]);
    }
    drop(driver);
    let out = h.ok(&["report", "--project", "default", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let a = &v["alternatives"];
    let it = a["it_kwh"].as_f64().unwrap();
    let runs: serde_json::Value = serde_json::from_str(&h.ok(&["runs", "--json"])).unwrap();
    let fr = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["location"]["code"] == "FR")
        .unwrap();
    let g = fr["carbon_intensity"]["g_per_kwh"].as_f64().unwrap();
    let pue = fr["pue"].as_f64().unwrap();
    let want = it * g * pue / 1000.0;
    let got = a["actual_operational_kg"].as_f64().unwrap();
    assert!(it > 0.0, "{a}");
    assert!((got - want).abs() <= 1e-9 * want, "{got} vs {want}");
    let md = h.ok(&["report", "--project", "default", "--format", "md"]);
    assert!(md.contains("France"), "{md}");
}
