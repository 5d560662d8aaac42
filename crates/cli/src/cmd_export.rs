//! `wattprint export --format codecarbon|csv|jsonl`: stored runs as files other tools read.

use crate::cmd_runs::FilterArgs;
use crate::interchange;
use crate::store::Store;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// CodeCarbon's emissions.csv (38 columns, energies with PUE included).
    Codecarbon,
    /// One row per run, wattprint's own columns.
    Csv,
    /// One wattprint.run/1 JSON record per line.
    Jsonl,
}

#[derive(clap::Args)]
pub struct Args {
    /// File format.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Write to FILE instead of standard output (replaced whole, never left half-written).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn write_all<W: Write>(
    w: W,
    format: ExportFormat,
    recs: &[wattprint_core::record::RunRecord],
) -> Result<()> {
    match format {
        ExportFormat::Codecarbon => interchange::write_codecarbon(w, recs),
        ExportFormat::Csv => interchange::write_csv(w, recs),
        ExportFormat::Jsonl => interchange::write_jsonl(w, recs),
    }
}

pub fn run(a: Args) -> Result<i32> {
    let f = a.filter.to_filter()?;
    let store = Store::open_default_for_reading(crate::env())?;
    let mut recs = store.list_runs(&f)?;
    // Oldest first, as CodeCarbon appends its rows.
    recs.reverse();
    match &a.output {
        None => {
            let out = std::io::stdout();
            write_all(out.lock(), a.format, &recs)?;
        }
        Some(path) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let mut tmp = tempfile::NamedTempFile::new_in(&dir).with_context(|| {
                format!(
                    "cannot write in {}: check the --output directory",
                    dir.display()
                )
            })?;
            write_all(std::io::BufWriter::new(tmp.as_file_mut()), a.format, &recs)?;
            tmp.persist(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wattprint: exported {} run(s) to {}",
                recs.len(),
                path.display()
            );
        }
    }
    Ok(0)
}
