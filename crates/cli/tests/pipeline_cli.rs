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
