//! `wattprint import-job PATH…`: a job's total from the run records gathered from its nodes
//! (`wattprint run --json` files, or directories of them), each node counted once, and whether
//! every node reported: what `GET /api/v1/jobs/{key}` answers, without a server.

use anyhow::{Context, Result};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Most files read.
const MAX_FILES: usize = 100_000;
/// Largest record file read.
const MAX_BYTES: u64 = 64 * 1024 * 1024;

#[derive(clap::Args)]
pub struct Args {
    /// The job (default: the one job the records name; an error when they name several).
    #[arg(long, value_name = "KEY")]
    pub job: Option<String>,
    /// Print the totals as JSON.
    #[arg(long)]
    pub json: bool,
    /// Record files, or directories whose `*.json` files are records (not recursive).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut here: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "json") && f.is_file())
                .take(MAX_FILES + 1)
                .collect();
            here.sort();
            out.extend(here);
        } else {
            out.push(p.clone());
        }
        if out.len() > MAX_FILES {
            anyhow::bail!("more than {MAX_FILES} files: gather one job's records only");
        }
    }
    Ok(out)
}

fn read(p: &Path) -> Result<Value> {
    let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut s = String::new();
    f.take(MAX_BYTES + 1).read_to_string(&mut s)?;
    if s.len() as u64 > MAX_BYTES {
        anyhow::bail!("{}: larger than {MAX_BYTES} bytes", p.display());
    }
    serde_json::from_str(&s).with_context(|| format!("{}: not a JSON run record", p.display()))
}

pub fn run(a: Args) -> Result<i32> {
    let mut records = Vec::new();
    for f in files(&a.paths)? {
        let v = read(&f)?;
        if v["schema"] != "wattprint.run/1" {
            anyhow::bail!("{}: not a wattprint run record", f.display());
        }
        records.push(v);
    }
    let key = match &a.job {
        Some(k) => wattprint_core::job::check_key(k).ok_or_else(|| {
            anyhow::anyhow!("--job {k}: 1 to 128 letters, digits and - _ . : @ + =")
        })?,
        None => {
            let mut keys: Vec<&str> = records.iter().filter_map(|r| r["job"].as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            match keys.as_slice() {
                [k] => k.to_string(),
                [] => {
                    anyhow::bail!("no record names a job (run with --job KEY, or under a launcher)")
                }
                many => anyhow::bail!(
                    "the records name {} jobs ({}); pick one with --job KEY",
                    many.len(),
                    many.join(", ")
                ),
            }
        }
    };
    let s = wattprint_core::job::summarize(&key, &records);
    if a.json {
        crate::stdout_ln!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(0);
    }
    let total = &s["total"];
    crate::stdout_ln!(
        "job {key}: {} of {} node(s) reported{}; {} energy, {} CO2e (each node once)",
        s["reported_nodes"],
        s["expected_nodes"]
            .as_u64()
            .map(|n| n.to_string())
            .unwrap_or_else(|| "?".into()),
        if s["complete"] == true {
            ", complete"
        } else {
            ", incomplete"
        },
        crate::summary::fmt_energy_kwh(total["energy_kwh"].as_f64().unwrap_or(0.0)),
        crate::summary::fmt_mass_kg(total["emissions_kg"].as_f64().unwrap_or(0.0)),
    );
    for n in s["nodes"].as_array().into_iter().flatten() {
        crate::stdout_ln!(
            "  {}: {} run(s), {}",
            n["node"].as_str().unwrap_or("?"),
            n["runs"],
            crate::summary::fmt_energy_kwh(n["energy_kwh"].as_f64().unwrap_or(0.0)),
        );
    }
    if let Some(m) = s["missing_nodes"].as_array().filter(|m| !m.is_empty()) {
        let names: Vec<&str> = m.iter().filter_map(|x| x.as_str()).collect();
        crate::stdout_ln!("  missing: {}", names.join(", "));
    }
    Ok(0)
}
