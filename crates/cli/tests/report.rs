#![allow(clippy::unwrap_used)]
//! `wattprint report` end to end: the real binary on the real SQLite store, runs recorded by a
//! real `wattprint run` on a fake powercap tree, and runs built with the library's accounting.

mod report_support;

use report_support::{save, FakeHost, Spec, FORBIDDEN};
use serde_json::Value;
use std::collections::BTreeMap;
use wattprint::summary::{fmt_energy_kwh, fmt_mass_kg};
use wattprint_core::record::RunStatus;
use wattprint_core::sensor::{DeviceKind, Method};
use yaml_rust2::YamlLoader;

/// Every `<` in Markdown is backslash-escaped, so no HTML tag reaches a renderer.
fn assert_no_raw_tags(md: &str) {
    let b = md.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'<' {
            assert!(
                i > 0 && b[i - 1] == b'\\',
                "raw `<` at byte {i}: {}",
                &md[i.saturating_sub(40)..(i + 40).min(md.len())]
            );
        }
    }
}

fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    for f in FORBIDDEN {
        assert!(!lower.contains(f), "the HTML report contains `{f}`");
    }
    assert!(lower.starts_with("<!doctype html>"));
    assert!(lower.contains("@media print"));
}

/// The `co2_eq_emissions` mapping of a model-card block.
fn card(yaml: &str) -> yaml_rust2::Yaml {
    let docs = YamlLoader::load_from_str(yaml).unwrap();
    assert_eq!(docs.len(), 1, "{yaml}");
    let c = docs[0]["co2_eq_emissions"].clone();
    assert!(!c.is_badvalue(), "no co2_eq_emissions in {yaml}");
    c
}

fn yaml_f64(y: &yaml_rust2::Yaml) -> f64 {
    y.as_f64()
        .or_else(|| y.as_i64().map(|i| i as f64))
        .unwrap_or_else(|| panic!("not a number: {y:?}"))
}

#[test]
fn a_real_run_reported_in_every_format() {
    let h = FakeHost::new();
    // 60 W rising to 100 W on the package, 5 W on DRAM.
    let driver = report_support::Driver::start(&h, |t| 60.0 + 40.0 * (t / 1.5).min(1.0), |_| 5.0);
    let json_path = h.dir.path().join("run.json");
    let out = h
        .cmd()
        .args([
            "run",
            "--quiet",
            "--interval",
            "50ms",
            "--project",
            "vision<&>",
            "--tag",
            "note=<script>alert(1)</script>",
            "--tag",
            "training_type=fine-tuning",
            "--location",
            "FR",
            "--json",
        ])
        .arg(&json_path)
        .args(["--", "sleep", "1.5"])
        .output()
        .unwrap();
    drop(driver);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let id = rec["id"].as_str().unwrap();
    let total_kg = rec["emissions_kg"]["total"].as_f64().unwrap();
    let it_kwh = rec["energy_kwh"]["it"].as_f64().unwrap();
    assert!(total_kg > 0.0 && it_kwh > 0.0);

    // --- HTML, written with --output
    let html_path = h.dir.path().join("report.html");
    let out = h
        .cmd()
        .args(["report", &id[..8], "--format", "html", "--output"])
        .arg(&html_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "the report goes to the file only");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert_self_contained(&html);
    // user strings escaped
    assert!(html.contains("note=&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("vision&lt;&amp;&gt;"));
    // the figures of the record
    assert!(
        html.contains(&fmt_mass_kg(total_kg)),
        "total emissions shown"
    );
    assert!(html.contains(&fmt_energy_kwh(it_kwh)), "IT energy shown");
    assert!(html.contains(rec["factors_version"].as_str().unwrap()));
    assert!(html.contains(&wattprint::report::svg::esc(
        rec["carbon_intensity"]["source"].as_str().unwrap()
    )));
    for a in rec["assumptions"].as_array().unwrap() {
        assert!(html.contains(&wattprint::report::svg::esc(a["name"].as_str().unwrap())));
    }
    // three charts; one power line per device
    assert_eq!(
        html.matches("<svg").count(),
        3,
        "power, breakdown, cumulative"
    );
    let power_svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
    assert_eq!(power_svg.matches("<path").count(), 2, "cpu and ram lines");
    assert!(power_svg.contains("cpu:package-0 (rapl)"));
    assert!(power_svg.contains("ram:dram-0 (rapl-dram)"));
    for part in ["dynamic", "static (idle)", "infrastructure", "embodied"] {
        assert!(html.contains(part), "breakdown part {part}");
    }
    assert!(html.contains("Cumulative emissions"));
    // alternatives: the three best regions overall, from the shipped ranking
    let best = wattprint_core::factors::ranking::rank_regions(None).unwrap();
    for r in best.iter().take(3) {
        assert!(html.contains(&r.id), "alternative {}", r.id);
    }
    let expect_best = it_kwh * best[0].effective_g_per_kwh / 1000.0;
    assert!(html.contains(&format!(
        "would have emitted <strong>{}</strong>",
        fmt_mass_kg(expect_best)
    )));
    // the best regions of the run's own area (FR → europe) are named too
    assert!(html.contains("area (europe)"));
    assert!(html.contains("Equivalents"));

    // --- Markdown, to stdout
    let md = h.ok(&["report", id, "--format", "md"]);
    assert!(md.starts_with("# wattprint report: Run "));
    assert!(md.contains(&fmt_mass_kg(total_kg)));
    assert!(md.contains("| dynamic (above idle) |"));
    assert!(
        md.contains("note=\\<script\\>alert\\(1\\)\\</script\\>"),
        "{md}"
    );
    assert_no_raw_tags(&md);
    assert!(md.contains("| cpu:package-0 | cpu |"));
    assert!(md.contains("Lower-carbon alternatives"));
    assert!(md.contains("HTML report"), "says where the plots are");

    // --- JSON: the record unchanged, series that add up to it
    let j: Value = serde_json::from_str(&h.ok(&["report", id, "--format", "json"])).unwrap();
    assert_eq!(j["schema"], "wattprint.report/1");
    assert_eq!(j["kind"], "run");
    assert_eq!(j["run"], rec, "the stored record, unchanged");
    assert_eq!(j["breakdown"]["emissions_kg"], rec["emissions_kg"]);
    let series = j["series"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    let series_j: f64 = series.iter().map(|s| s["energy_j"].as_f64().unwrap()).sum();
    assert!(
        (series_j - it_kwh * 3.6e6).abs() < 0.01 * it_kwh * 3.6e6,
        "series {series_j} J vs record {} J",
        it_kwh * 3.6e6
    );
    // the power rises from ~60 W to ~100 W: the plot has something to show
    let cpu = series
        .iter()
        .find(|s| s["device_id"] == "cpu:package-0")
        .unwrap();
    let pw: Vec<f64> = cpu["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["power_w"].as_f64().unwrap())
        .collect();
    assert!(pw.len() > 10);
    // compare medians of the first and last thirds (robust to a starved driver thread on a
    // loaded machine, which shows as a dip)
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let third = pw.len() / 3;
    let (early, late) = (median(&pw[..third]), median(&pw[pw.len() - third..]));
    assert!(
        early < 80.0 && late > early + 10.0,
        "{early} → {late}: {pw:?}"
    );
    let cum = j["cumulative_emissions_kg"].as_array().unwrap();
    let last = cum.last().unwrap()["kg"].as_f64().unwrap();
    assert!(
        (last - total_kg).abs() < 0.02 * total_kg,
        "cumulative ends at the total"
    );

    // --- model card: grams, from the tag training_type, overridable
    let yaml = h.ok(&["report", id, "--format", "model-card"]);
    let c = card(&yaml);
    let g = yaml_f64(&c["emissions"]);
    assert!(
        (g - total_kg * 1000.0).abs() <= 5e-6 + 1e-9 * g,
        "emissions {g} g vs {total_kg} kg"
    );
    assert_eq!(c["training_type"].as_str(), Some("fine-tuning"));
    let src = c["source"].as_str().unwrap();
    assert!(
        src.starts_with(&format!("wattprint {}", env!("CARGO_PKG_VERSION"))),
        "{src}"
    );
    assert!(
        src.contains("cpu rapl") && src.contains("ram rapl-dram"),
        "{src}"
    );
    assert!(c["geographical_location"].as_str().unwrap().contains("FR"));
    assert!(c["hardware_used"]
        .as_str()
        .unwrap()
        .contains("Intel(R) Xeon(R) Platinum 8375C"));
    let yaml = h.ok(&[
        "report",
        id,
        "--format",
        "model-card",
        "--training-type",
        "pre-training",
    ]);
    assert_eq!(card(&yaml)["training_type"].as_str(), Some("pre-training"));
}

#[test]
fn model_card_matches_the_hf_conversion_vector() {
    // methodology.md §5.7: 85 155.84 g, 8 × A100 SXM4 in AWS us-east-1, pre-training.
    let h = FakeHost::new();
    let mut s = Spec::new(
        "5e7a0000-0000-4000-8000-000000000057",
        "llm",
        RunStatus::Completed,
        "2026-03-01T00:00:00Z",
    );
    s.location = "aws:us-east-1";
    s.gpus = vec!["NVIDIA A100 SXM4"; 8];
    s.duration_s = 72.0 * 3600.0;
    s.devices = vec![("gpu:0", DeviceKind::Gpu, Method::NvmlEnergy, 1000.0, None)];
    let recs = save(&h.db(), &[s]);
    let kg = recs[0].emissions_kg.total;
    let yaml = h.ok(&[
        "report",
        "5e7a",
        "--format",
        "model-card",
        "--training-type",
        "pre-training",
    ]);
    let c = card(&yaml);
    let keys: Vec<&str> = c
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "emissions",
            "source",
            "training_type",
            "geographical_location",
            "hardware_used"
        ]
    );
    let g = yaml_f64(&c["emissions"]);
    assert!((g - kg * 1000.0).abs() <= 0.005, "{g} g vs {kg} kg");
    assert!(yaml.contains(&format!("emissions: {:.2}\n", kg * 1000.0)));
    assert_eq!(c["training_type"].as_str(), Some("pre-training"));
    assert!(c["geographical_location"]
        .as_str()
        .unwrap()
        .contains("aws:us-east-1"));
    assert!(c["hardware_used"]
        .as_str()
        .unwrap()
        .starts_with("8 x NVIDIA A100 SXM4, AMD EPYC 7763"));
    assert!(c["source"].as_str().unwrap().contains("gpu nvml-energy"));
    // The §5.7 figure itself goes through the same grams formatting.
    assert_eq!(
        wattprint::report::model_card::fmt_grams(85.15584 * 1000.0),
        "85155.84"
    );
}

fn project_fixture(h: &FakeHost) -> Vec<wattprint_core::record::RunRecord> {
    let mut specs = Vec::new();
    let statuses = [
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Completed,
        RunStatus::Killed,
        RunStatus::Completed,
    ];
    for (i, st) in statuses.iter().enumerate() {
        let mut s = Spec::new(
            &format!("a{i}000000-0000-4000-8000-00000000000{i}"),
            "sweep<script>x</script>",
            *st,
            &format!("2026-05-0{}T10:00:00Z", i + 1),
        );
        s.duration_s = 600.0 * (i + 1) as f64;
        s.command = vec![
            "python".into(),
            "train.py".into(),
            format!("--lr=<b>{i}</b>"),
        ];
        let mut tags = BTreeMap::new();
        tags.insert("lr".to_string(), format!("1e-{i}"));
        s.tags = tags;
        specs.push(s);
    }
    // an old run (before --since) and another project's run
    let mut old = Spec::new(
        "b0000000-0000-4000-8000-000000000000",
        "sweep<script>x</script>",
        RunStatus::Failed,
        "2025-01-01T00:00:00Z",
    );
    old.duration_s = 60.0;
    specs.push(old);
    specs.push(Spec::new(
        "c0000000-0000-4000-8000-000000000000",
        "other",
        RunStatus::Completed,
        "2026-05-02T00:00:00Z",
    ));
    save(&h.db(), &specs)
}

#[test]
fn project_report_totals_waste_and_escapes() {
    let h = FakeHost::new();
    let recs = project_fixture(&h);
    let p = "sweep<script>x</script>";
    let mine: Vec<_> = recs
        .iter()
        .filter(|r| r.project == p && r.started_at.as_str() >= "2026-01-01")
        .collect();
    assert_eq!(mine.len(), 5);
    let total: f64 = mine.iter().map(|r| r.emissions_kg.total).sum();
    let wasted: f64 = mine
        .iter()
        .filter(|r| matches!(r.status, RunStatus::Failed | RunStatus::Killed))
        .map(|r| r.emissions_kg.total)
        .sum();
    let it: f64 = mine.iter().map(|r| r.energy_kwh.it.0).sum();

    let j: Value = serde_json::from_str(&h.ok(&[
        "report",
        "--project",
        p,
        "--since",
        "2026-01-01",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(j["kind"], "project");
    let t = &j["totals"];
    assert_eq!(t["runs"], 5);
    assert_eq!(t["completed"], 3);
    assert_eq!(t["failed"], 1);
    assert_eq!(t["killed"], 1);
    assert_eq!(t["wasted_runs"], 2);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-12);
    assert!(close(t["emissions_kg"]["total"].as_f64().unwrap(), total));
    assert!(close(t["wasted_emissions_kg"].as_f64().unwrap(), wasted));
    assert!(close(t["wasted_share"].as_f64().unwrap(), wasted / total));
    assert!(close(t["energy_kwh"]["it"].as_f64().unwrap(), it));
    // runs 2 (1200 s) and 4 (2400 s) failed/killed out of 600+…+3000 s at equal power
    assert!(close(t["wasted_share"].as_f64().unwrap(), 3600.0 / 9000.0));
    assert_eq!(j["runs"].as_array().unwrap().len(), 5);
    let cum = j["cumulative_emissions_kg"].as_array().unwrap();
    assert!(close(cum.last().unwrap()["kg"].as_f64().unwrap(), total));
    assert!(close(
        cum.last().unwrap()["wasted_kg"].as_f64().unwrap(),
        wasted
    ));

    // Without --since the old failed run counts too.
    let j_all: Value =
        serde_json::from_str(&h.ok(&["report", "--project", p, "--format", "json"])).unwrap();
    assert_eq!(j_all["totals"]["runs"], 6);
    assert_eq!(j_all["totals"]["wasted_runs"], 3);
    // --all: every project
    let j_every: Value =
        serde_json::from_str(&h.ok(&["report", "--all", "--format", "json"])).unwrap();
    assert_eq!(j_every["totals"]["runs"], 7);

    let html = h.ok(&["report", "--project", p, "--since", "2026-01-01"]);
    assert_self_contained(&html);
    assert!(html.contains("Project sweep&lt;script&gt;x&lt;/script&gt;"));
    assert!(html.contains("--lr=&lt;b&gt;1&lt;/b&gt;"));
    assert_eq!(html.matches("<tr class=\"wasted\">").count(), 2);
    for r in &mine {
        assert!(html.contains(&r.id[..8]), "row for {}", r.id);
    }
    assert!(!html.contains("b0000000"), "--since filtered the old run");
    assert!(!html.contains("c0000000"), "other project left out");
    assert!(html.contains(&fmt_mass_kg(total)));
    assert!(html.contains(&fmt_mass_kg(wasted)));
    assert!(html.contains("40.0 %"), "wasted share");
    assert!(html.contains("of which wasted"));

    let md = h.ok(&[
        "report",
        "--project",
        p,
        "--since",
        "2026-01-01",
        "--format",
        "md",
    ]);
    assert_no_raw_tags(&md);
    assert!(md.contains("sweep\\<script\\>x\\</script\\>"));
    assert_eq!(md.matches(" (wasted) |").count(), 2);
    assert!(md.contains(&format!(
        "| **total** | | | 2h30m | {} | {} |",
        fmt_energy_kwh(it),
        fmt_mass_kg(total)
    )));

    let yaml = h.ok(&[
        "report",
        "--project",
        p,
        "--since",
        "2026-01-01",
        "--format",
        "model-card",
    ]);
    let c = card(&yaml);
    assert!((yaml_f64(&c["emissions"]) - total * 1000.0).abs() <= 0.005);
    assert!(
        c["training_type"].is_badvalue(),
        "no tag, no flag: left out"
    );
    assert!(
        yaml.contains("# training_type:"),
        "and the comment says how to set it"
    );
}

#[test]
fn bad_input_is_refused_with_exit_2_and_nothing_is_lost() {
    let h = FakeHost::new();
    let recs = project_fixture(&h);
    let id = recs[0].id.clone();
    let out_file = h.dir.path().join("nope.html");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["report".into(), "ffff".into()], "no run matches"),
        (vec!["report".into(), "a".into()], "give more characters"),
        (vec!["report".into()], "--project"),
        (
            vec![
                "report".into(),
                id.clone(),
                "--project".into(),
                "other".into(),
            ],
            "not both",
        ),
        (
            vec!["report".into(), id.clone(), "--since".into(), "1d".into()],
            "--since",
        ),
        (
            vec!["report".into(), "--project".into(), "nosuch".into()],
            "no runs in project `nosuch`",
        ),
        (
            vec![
                "report".into(),
                "--project".into(),
                "other".into(),
                "--since".into(),
                "soon".into(),
            ],
            "--since `soon`",
        ),
        (
            vec!["report".into(), id.clone(), "--format".into(), "pdf".into()],
            "pdf",
        ),
        (
            vec![
                "report".into(),
                id.clone(),
                "--training-type".into(),
                "x".into(),
            ],
            "model-card",
        ),
        (
            vec![
                "report".into(),
                id.clone(),
                "--format".into(),
                "model-card".into(),
                "--training-type".into(),
                " ".into(),
            ],
            "--training-type",
        ),
        (
            vec![
                "report".into(),
                id.clone(),
                "--output".into(),
                h.dir.path().join("missing/r.html").display().to_string(),
            ],
            "does not exist",
        ),
        (
            vec![
                "report".into(),
                id.clone(),
                "--output".into(),
                h.dir.path().display().to_string(),
            ],
            "is a directory",
        ),
    ];
    for (args, needle) in cases {
        let out = h.cmd().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(!out_file.exists());
    // the store is intact
    let st = wattprint::store::Store::open(&h.db()).unwrap();
    assert_eq!(
        st.list_runs(&wattprint::store::RunFilter::default())
            .unwrap()
            .len(),
        recs.len()
    );
}

#[test]
fn a_running_run_without_series_still_reports() {
    let h = FakeHost::new();
    let s = Spec::new(
        "d0000000-0000-4000-8000-000000000000",
        "p",
        RunStatus::Running,
        "2026-05-01T00:00:00Z",
    );
    // record only: a checkpoint of a run still going
    let (rec, _) = report_support::synth(&s);
    wattprint::store::Store::open(&h.db())
        .unwrap()
        .save_run(&rec)
        .unwrap();
    let html = h.ok(&["report", "d000"]);
    assert_self_contained(&html);
    assert!(html.contains("no power series is stored yet"));
    assert!(html.contains("no data"), "the power chart says so");
    let md = h.ok(&["report", "d000", "--format", "md"]);
    assert!(md.contains("Note: the run is still running"));
}
