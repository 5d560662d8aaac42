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
    /// Time zone of timestamps written without one (CodeCarbon writes local time): `local`
    /// (this machine's zone, the default), `UTC`, or an offset such as `+02:00`.
    #[arg(long, value_name = "ZONE", default_value = "local")]
    pub timezone: String,
}

/// The offset in force at a local date and time in this machine's zone (`TZ`, else
/// /etc/localtime), with daylight saving, from the C library.
fn local_offset_at(t: time::PrimitiveDateTime) -> Option<time::UtcOffset> {
    // Treat the local time as UTC to get a nearby instant, then ask localtime_r for the offset
    // in force there; one correction step covers the DST edge.
    let guess = t.assume_utc().unix_timestamp();
    let offset_at = |secs: i64| -> Option<i32> {
        // time_t is 32 bits on some targets: the conversion is not useless there.
        #[allow(clippy::useless_conversion)]
        let tt: libc::time_t = secs.try_into().ok()?;
        // SAFETY: localtime_r only writes into `tm`, which we own.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::localtime_r(&tt, &mut tm) };
        if r.is_null() {
            return None;
        }
        i32::try_from(tm.tm_gmtoff).ok()
    };
    let first = offset_at(guess)?;
    let second = offset_at(guess - i64::from(first))?;
    time::UtcOffset::from_whole_seconds(second).ok()
}

fn import_zone(spec: &str) -> Result<interchange_zone::ImportZone<'static>> {
    if spec.trim().eq_ignore_ascii_case("local") {
        let now = time::OffsetDateTime::now_utc();
        let off = local_offset_at(time::PrimitiveDateTime::new(now.date(), now.time()))
            .map(wattprint_store::codecarbon_extra::fmt_offset)
            .unwrap_or_else(|| "offset unknown".into());
        return Ok(interchange_zone::ImportZone::Local {
            label: format!("local, now UTC{off}; give --timezone to choose"),
            offset_at: Box::new(local_offset_at),
        });
    }
    wattprint_store::codecarbon_extra::parse_offset(spec)
        .map(interchange_zone::ImportZone::Fixed)
        .map_err(|e| anyhow::anyhow!("--timezone: {e}"))
}

use wattprint_store::codecarbon_extra as interchange_zone;

pub fn run(a: Args) -> Result<i32> {
    if let Some(p) = &a.project {
        if p.trim().is_empty() {
            anyhow::bail!("--project is empty: give a project name");
        }
    }
    let zone = import_zone(&a.timezone)?;
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
            &zone,
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
