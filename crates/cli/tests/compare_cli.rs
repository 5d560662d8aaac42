#![allow(clippy::unwrap_used)]
//! `wattprint compare` end to end: estimate flags and a stored run (real binary, real store).

mod common;
use common::{read_json, FakeHost};

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs()
}

#[test]
fn compare_on_estimate_flags_gives_every_tool_and_why() {
    let h = FakeHost::new();
    let out = h
        .cmd()
        .args([
            "compare",
            "--gpus",
            "8",
            "--gpu-watts",
            "400",
            "--duration",
            "72h",
            "--location",
            "aws:us-east-1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = v["profiles"].as_array().unwrap();
    let names: Vec<&str> = p.iter().map(|r| r["profile"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "wattprint",
            "green-algorithms",
            "mlco2",
            "codecarbon",
            "ccf"
        ]
    );
    // GA-2a: 85.15584 kg; ML CO2 Impact: 230.4 kWh × 367.8 g = 84.741 kg, no PUE.
    assert!(
        close(p[1]["operational_kg"].as_f64().unwrap(), 85.15584, 1e-9),
        "{}",
        p[1]
    );
    assert!(
        close(p[2]["operational_kg"].as_f64().unwrap(), 84.74112, 1e-9),
        "{}",
        p[2]
    );
    assert!(p[2]["why"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("no PUE")));
    // not counted is a reason, never a zero
    assert!(p[1]["embodied_kg"]["not_counted"].is_string());
    // CCF has no min/max watts for a GPU given only by its power
    assert!(p[4]["gpu_kwh"]["not_counted"].is_string(), "{}", p[4]);

    let md = h
        .cmd()
        .args([
            "compare",
            "--gpus",
            "1",
            "--gpu",
            "t4",
            "--duration",
            "10h",
            "--location",
            "CA-QC",
            "--markdown",
        ])
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.contains("| Green Algorithms v3.0 |"), "{md}");
    assert!(md.contains("direct vs life-cycle intensity"), "{md}");
    assert!(md.contains("only knows cloud regions"), "{md}");
}

#[test]
fn compare_a_stored_run_and_refuse_bad_input() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let out = h
        .cmd()
        .args(["run", "--quiet", "--location", "FR", "--json"])
        .arg(&json)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let r = read_json(&json);
    let id = r["id"].as_str().unwrap();
    let out = h
        .cmd()
        .args(["compare", &id[..8], "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["job"].as_str().unwrap().contains("at FR"), "{v}");
    let ga = &v["profiles"][1];
    assert_eq!(ga["intensity_g_per_kwh"], 51.28);
    // the run's own measured figures come along
    assert_eq!(v["measured"]["run"], r["id"]);
    assert_eq!(
        v["measured"]["operational_kg"],
        r["emissions_kg"]["operational"]
    );
    let text = h.cmd().args(["compare", &id[..8]]).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("why:"));
    for args in [
        vec!["compare"],
        vec!["compare", "--duration", "0h"],
        vec!["compare", "--duration", "1h", "--pue", "0.5"],
        vec!["compare", "--duration", "1h", "--utilization", "2"],
        vec!["compare", "no-such-run"],
        vec!["compare", "--duration", "1h", "--instance-type", "zz9"],
    ] {
        let out = h.cmd().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}

#[test]
fn show_factors_and_the_report_section() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let out = h
        .cmd()
        .args(["run", "--quiet", "--location", "aws:eu-west-3", "--json"])
        .arg(&json)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let id = read_json(&json)["id"].as_str().unwrap().to_string();
    let out = h
        .cmd()
        .args(["show", &id, "--factors", "green-algorithms"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("as Green Algorithms v3.0 would count it"),
        "{text}"
    );
    assert!(text.contains("embodied       not counted"), "{text}");
    let html = h.dir.path().join("r.html");
    let out = h
        .cmd()
        .args(["report", &id, "--format", "html", "-o"])
        .arg(&html)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("How other tools would count this"));
    assert!(page.contains("ML CO2 Impact") && page.contains("Cloud Carbon Footprint"));
}

#[test]
fn run_with_another_tools_factors_prints_its_count() {
    let h = FakeHost::new();
    let out = h
        .cmd()
        .args([
            "run",
            "--location",
            "gcp:us-central1",
            "--factors",
            "ccf",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("as Cloud Carbon Footprint would count it"),
        "{err}"
    );
    assert!(err.contains("1.110"), "CCF's us-central1 PUE: {err}");
    let out = h
        .cmd()
        .args(["run", "--factors", "nope", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn reports_say_not_counted_for_a_run_without_embodied() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let out = h
        .cmd()
        .args(["run", "--quiet", "--no-embodied", "--json"])
        .arg(&json)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let r = read_json(&json);
    assert!(r["emissions_kg"]["embodied"].is_null());
    assert_eq!(r["embodied_not_counted"], "--no-embodied was given");
    let id = r["id"].as_str().unwrap().to_string();
    let md = h
        .cmd()
        .args(["report", &id, "--format", "md"])
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    // Markdown escapes the parentheses
    assert!(
        md.contains(r"not counted \(--no-embodied was given\)"),
        "{md}"
    );
    let card = h
        .cmd()
        .args(["report", &id, "--format", "model-card"])
        .output()
        .unwrap();
    let card = String::from_utf8_lossy(&card.stdout);
    assert!(card.contains("operational; embodied not counted"), "{card}");
    let show = h.cmd().args(["show", &id]).output().unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.contains("embodied not counted (--no-embodied was given)")
            || show.contains("not counted (--no-embodied was given)"),
        "{show}"
    );
    assert!(!show.contains("embodied 0.000 mg"), "{show}");
}

#[test]
fn report_with_another_tools_factors() {
    let h = FakeHost::new();
    let json = h.dir.path().join("r.json");
    let out = h
        .cmd()
        .args(["run", "--quiet", "--location", "aws:us-east-1", "--json"])
        .arg(&json)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let id = read_json(&json)["id"].as_str().unwrap().to_string();
    let md = h
        .cmd()
        .args(["report", &id, "--format", "md", "--factors", "mlco2"])
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.contains("## As ML CO2 Impact would count it"), "{md}");
    let js = h
        .cmd()
        .args(["report", &id, "--format", "json", "--factors", "ga"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&js.stdout).unwrap();
    assert_eq!(v["profile"]["profile"], "green-algorithms");
    assert_eq!(v["profile"]["pue"], 1.2);
    let bad = h
        .cmd()
        .args(["report", "--all", "--format", "md", "--factors", "ccf"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
