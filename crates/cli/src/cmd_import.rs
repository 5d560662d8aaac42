//! `wattprint import codecarbon FILE`: bring CodeCarbon's emissions.csv rows into the store, one
//! run per row. Re-importing skips run ids already stored; a malformed row is reported with its
//! line and the others are imported (exit 1), or with `--strict` nothing is (exit 2).

use crate::interchange;
use crate::store::Store;
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// CodeCarbon's emissions.csv.
    Codecarbon,
}

#[derive(clap::Args)]
pub struct Args {
    /// Format of FILE.
    #[arg(value_enum)]
    pub format: ImportFormat,
    /// The file to import.
    pub file: PathBuf,
    /// Put every imported run in this project (default: the row's project_name).
    #[arg(long)]
    pub project: Option<String>,
    /// Import nothing if any row is malformed (exit code 2).
    #[arg(long)]
    pub strict: bool,
}

pub fn run(a: Args) -> Result<i32> {
    if let Some(p) = &a.project {
        if p.trim().is_empty() {
            anyhow::bail!("--project is empty: give a project name");
        }
    }
    let file = std::fs::File::open(&a.file)
        .with_context(|| format!("cannot open {}", a.file.display()))?;
    let source = std::fs::canonicalize(&a.file)
        .unwrap_or_else(|_| a.file.clone())
        .display()
        .to_string();
    let shown = a.file.display().to_string();
    let parsed = match a.format {
        ImportFormat::Codecarbon => interchange::parse_codecarbon(
            std::io::BufReader::new(file),
            &source,
            a.project.as_deref(),
        )?,
    };
    for e in &parsed.errors {
        eprintln!("wattprint: {shown}:{}: {}", e.line, e.message);
    }
    for n in &parsed.notes {
        eprintln!("wattprint: note: {n}");
    }
    if a.strict && !parsed.errors.is_empty() {
        eprintln!(
            "wattprint: error: {} malformed row(s) in {shown}; nothing was imported (--strict)",
            parsed.errors.len()
        );
        return Ok(2);
    }
    let recs: Vec<_> = parsed.rows.iter().map(|r| r.record.clone()).collect();
    let mut store = Store::open_default(crate::env())?;
    let inserted = store.insert_new_runs(&recs)?;
    let new = inserted.iter().filter(|b| **b).count();
    let skipped = inserted.len() - new;
    let mut msg = format!("imported {new} run(s) from {shown}");
    if skipped > 0 {
        msg.push_str(&format!("; {skipped} already in the store (skipped)"));
    }
    if !parsed.errors.is_empty() {
        msg.push_str(&format!(
            "; {} malformed row(s) left out (see above)",
            parsed.errors.len()
        ));
    }
    crate::stdout_ln!("{msg}");
    Ok(if parsed.errors.is_empty() { 0 } else { 1 })
}
