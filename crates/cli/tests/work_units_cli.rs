#![allow(clippy::unwrap_used)]
//! Units of work from the command line: `--work-units N --unit U`, or the job's own total in
//! $WATTPRINT_WORK_FILE; per-unit figures in the record, null (not infinity) for 0 units.

mod common;
use common::{read_json, FakeHost};

fn run(h: &FakeHost, flags: &[&str], script: &str) -> serde_json::Value {
    let json = h.dir.path().join("r.json");
    let out = h
        .cmd()
        .args(["run", "--quiet", "--json"])
        .arg(&json)
        .args(flags)
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    read_json(&json)
}

#[test]
fn work_units_from_the_flags() {
    let h = FakeHost::new();
    let r = run(&h, &["--work-units", "1000", "--unit", "tokens"], "true");
    let w = &r["segments"]["work"];
    assert_eq!(w["units"], 1000.0);
    assert_eq!(w["unit"], "tokens");
    let kwh = r["energy_kwh"]["total"].as_f64().unwrap();
    let j = w["j_per_unit"].as_f64().unwrap();
    assert!(
        (j - kwh * 3.6e6 / 1000.0).abs() <= 1e-5 * j.abs().max(1e-12),
        "{w}"
    );
    // zero units: no per-unit figure
    let r = run(&h, &["--work-units", "0", "--unit", "tokens"], "true");
    assert!(r["segments"]["work"]["j_per_unit"].is_null());
}

#[test]
fn the_job_states_its_work_in_the_work_file() {
    let h = FakeHost::new();
    let r = run(
        &h,
        &[],
        r#"echo "10 images" > "$WATTPRINT_WORK_FILE"; echo "250 images" >> "$WATTPRINT_WORK_FILE""#,
    );
    assert_eq!(r["segments"]["work"]["units"], 250.0);
    assert_eq!(r["segments"]["work"]["unit"], "images");
    // a line that is not `N UNIT` is a warning, not a failure
    let r = run(&h, &[], r#"echo "lots" > "$WATTPRINT_WORK_FILE""#);
    assert!(r["segments"].is_null());
    assert!(r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("work file")));
}

#[test]
fn bad_work_units_start_nothing() {
    let h = FakeHost::new();
    let out = h
        .cmd()
        .args(["run", "--work-units", "-5", "--unit", "x", "--", "true"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--work-units"));
    let out = h
        .cmd()
        .args(["run", "--work-units", "5", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--work-units needs --unit");
}

#[test]
fn show_lists_the_work_of_a_run() {
    let h = FakeHost::new();
    let r = run(&h, &["--work-units", "64", "--unit", "images"], "true");
    let out = h
        .cmd()
        .args(["show", r["id"].as_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\nwork\n"), "{text}");
    assert!(text.contains("whole run      64 images"), "{text}");
}

#[test]
fn run_reports_show_the_work_of_a_run() {
    let h = FakeHost::new();
    let r = run(&h, &["--work-units", "64", "--unit", "images"], "true");
    let id = r["id"].as_str().unwrap();
    let md = h.ok(&["report", id, "--format", "md"]);
    assert!(md.contains("## Stages, windows and work"), "{md}");
    assert!(md.contains("whole run      64 images"), "{md}");
    let html_path = h.dir.path().join("r.html");
    h.ok(&["report", id, "--output", html_path.to_str().unwrap()]);
    let html = std::fs::read_to_string(html_path).unwrap();
    assert!(html.contains("<section id=\"segments\">"), "{html}");
    assert!(html.contains("64 images"), "{html}");
    // a run that reported nothing has no such section
    let r = run(&h, &[], "true");
    let md = h.ok(&["report", r["id"].as_str().unwrap(), "--format", "md"]);
    assert!(!md.contains("Stages, windows and work"), "{md}");
}
