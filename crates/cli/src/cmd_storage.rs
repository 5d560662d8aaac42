//! `wattprint storage scan DIR…`: stored bytes, duplicate files, and their yearly energy and
//! emissions (rules in `wattprint_core::storage` and docs/pipeline.md).

use anyhow::Result;
use std::fmt::Write;
use std::path::PathBuf;
use wattprint_core::format::{energy_kwh, mass_kg, sig};
use wattprint_core::storage::{self, Medium, ScanResult, StorageFootprint};
use wattprint_store::pipeline_text::bytes;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Find stored bytes and duplicate files under DIRs (symlinks never followed; hard links
    /// counted once) and their yearly energy and emissions.
    Scan(ScanArgs),
}

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Directories to scan (e.g. every user's data directory).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// What the data is stored on.
    #[arg(long, value_enum, default_value = "hdd")]
    pub medium: MediumArg,
    /// Copies the storage system keeps of each byte (e.g. 3 for triple replication).
    #[arg(long, default_value = "1", value_name = "N")]
    pub replication: u32,
    #[command(flatten)]
    pub carbon: crate::carbon_args::CarbonArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MediumArg {
    Hdd,
    Ssd,
}

pub fn run(a: Args) -> Result<i32> {
    match a.cmd {
        Cmd::Scan(s) => scan(s),
    }
}

fn scan(a: ScanArgs) -> Result<i32> {
    if a.replication == 0 || a.replication > 100 {
        anyhow::bail!(
            "--replication {}: give the number of copies, 1 to 100",
            a.replication
        );
    }
    for d in &a.dirs {
        if !d.is_dir() {
            anyhow::bail!("{}: not a directory", d.display());
        }
    }
    let carbon = a.carbon.resolve()?;
    for w in &carbon.warnings {
        eprintln!("wattprint: warning: {w}");
    }
    let medium = match a.medium {
        MediumArg::Hdd => Medium::Hdd,
        MediumArg::Ssd => Medium::Ssd,
    };
    let res = storage::scan(&a.dirs);
    let fp = storage::footprint(
        &res,
        medium,
        a.replication,
        carbon.intensity_g_per_kwh,
        carbon.pue,
    );
    if a.json {
        let v = serde_json::json!({ "scan": res, "footprint": fp, "intensity_source": carbon.intensity_source });
        crate::stdout_ln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        crate::stdout_print!("{}", scan_text(&res, &fp, &carbon.intensity_source));
    }
    Ok(0)
}

/// The scan as text.
pub fn scan_text(r: &ScanResult, f: &StorageFootprint, intensity_source: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Scanned {}: {} files, {} stored ({} hard link(s) counted once, {} symlink(s) not followed)",
        r.roots.join(", "),
        r.files,
        bytes(r.bytes),
        r.hard_links,
        r.symlinks
    );
    let _ = writeln!(
        o,
        "Duplicates: {} group(s), {} redundant ({} files read in part, {} whole)",
        r.duplicate_groups,
        bytes(r.redundant_bytes),
        r.partial_hashed,
        r.fully_hashed
    );
    for g in &r.groups {
        let _ = writeln!(
            o,
            "  {} × {} (sha256 {}…): {} redundant",
            g.copies,
            bytes(g.size_bytes),
            &g.sha256[..12],
            bytes(g.redundant_bytes)
        );
        for p in &g.paths {
            let _ = writeln!(o, "    {p}");
        }
        if g.copies as usize > g.paths.len() {
            let _ = writeln!(o, "    … and {} more", g.copies as usize - g.paths.len());
        }
    }
    let _ = writeln!(
        o,
        "Yearly footprint on {} × {} replica(s): {}/year, {} CO2e/year",
        match f.medium {
            Medium::Hdd => "HDD",
            Medium::Ssd => "SSD",
        },
        f.replication,
        energy_kwh(f.kwh_per_year),
        mass_kg(f.kg_per_year)
    );
    let _ = writeln!(
        o,
        "De-duplication would save {}/year, {} CO2e/year",
        energy_kwh(f.dedup_kwh_per_year),
        mass_kg(f.dedup_kg_per_year)
    );
    let _ = writeln!(
        o,
        "  {} Wh per TB-hour; {} gCO2e/kWh × PUE {} ({intensity_source}); {}",
        sig(f.wh_per_tb_hour),
        sig(f.g_per_kwh),
        sig(f.pue),
        f.source
    );
    if r.unreadable > 0 {
        let _ = writeln!(o, "Unreadable entries: {} (not counted)", r.unreadable);
        for e in &r.errors {
            let _ = writeln!(o, "  {e}");
        }
        if r.unreadable as usize > r.errors.len() {
            let _ = writeln!(o, "  … and {} more", r.unreadable as usize - r.errors.len());
        }
    }
    o
}
