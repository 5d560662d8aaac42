//! `wattprint runs`: the stored runs, newest first, filtered by project, tags, status and time.

use crate::store::{RunFilter, RunRow, Store};
use crate::summary::{fmt_duration, fmt_energy_kwh, fmt_mass_kg};
use anyhow::Result;
use std::fmt::Write;
use wattprint_core::record::Methods;

/// Filters shared by `runs`, `projects` and `export`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only runs of this project.
    #[arg(long)]
    pub project: Option<String>,
    /// Only runs with this tag, `key=value`; repeatable (all must match).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Only runs with this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// Only runs started since WHEN: an RFC 3339 time (2025-03-01T12:00:00Z), a date
    /// (2025-03-01, UTC) or a duration back from now (7d, 12h, 30m).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only runs of this model (`wattprint run --model`).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Only runs of this stage (`wattprint run --stage`).
    #[arg(long, value_enum)]
    pub stage: Option<crate::lineage_args::StageArg>,
    /// Only runs of this sweep (`wattprint run --sweep`, or W&B's sweep id).
    #[arg(long, value_name = "ID")]
    pub sweep: Option<String>,
}

/// Every status a record can have (docs/store-and-interchange.md), named as records write them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusArg {
    Running,
    Completed,
    Failed,
    Killed,
    #[value(name = "stopped_by_budget", alias = "stopped-by-budget")]
    StoppedByBudget,
    #[value(name = "stopped_by_cap", alias = "stopped-by-cap")]
    StoppedByCap,
}

impl StatusArg {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusArg::Running => "running",
            StatusArg::Completed => "completed",
            StatusArg::Failed => "failed",
            StatusArg::Killed => "killed",
            StatusArg::StoppedByBudget => "stopped_by_budget",
            StatusArg::StoppedByCap => "stopped_by_cap",
        }
    }
}

impl FilterArgs {
    /// The store filter, every value checked (a bad `--tag` or `--since` is an error).
    pub fn to_filter(&self) -> Result<RunFilter> {
        let mut tags = Vec::new();
        for t in &self.tags {
            match t.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    tags.push((k.trim().to_string(), v.to_string()))
                }
                _ => anyhow::bail!("invalid --tag `{t}`: expected KEY=VALUE, e.g. --tag lr=3e-4"),
            }
        }
        if let Some(s) = &self.since {
            crate::store::parse_since(s, time::OffsetDateTime::now_utc())?;
        }
        Ok(RunFilter {
            project: self.project.clone(),
            tags,
            status: self.status.map(|s| s.as_str().to_string()),
            since: self.since.clone(),
            limit: None,
            job: None,
            lineage: crate::store::LineageFilter {
                model: self.model.clone(),
                stage: self.stage.map(|s| s.stage().as_str().to_string()),
                sweep: self.sweep.clone(),
            },
        })
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// At most N runs (the newest).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print the matching run records as a JSON array.
    #[arg(long)]
    pub json: bool,
    /// Only the runs of this job, and the job's total per node and over nodes (each node's
    /// energy once: its ranks' energy is in their leader's record). With --json: an object
    /// with the totals and the records.
    #[arg(long, value_name = "KEY")]
    pub job: Option<String>,
}

pub fn run(a: Args) -> Result<i32> {
    let mut f = a.filter.to_filter()?;
    f.limit = a.limit;
    f.job = a.job.clone();
    let store = Store::open_default_for_reading(crate::env())?;
    if let Some(job) = &a.job {
        return crate::job_view::print_job(&store, &f, job, a.json);
    }
    if a.json {
        let recs = store.list_runs(&f)?;
        crate::stdout_ln!("{}", serde_json::to_string_pretty(&recs)?);
        return Ok(0);
    }
    let rows = store.list_rows(&f)?;
    if rows.is_empty() {
        let total = store.count_runs()?;
        if total == 0 {
            eprintln!(
                "wattprint: no runs in {} yet; measure one with `wattprint run -- CMD`",
                store.path().display()
            );
        } else {
            eprintln!("wattprint: no run matches ({total} stored); loosen the filters");
        }
        return Ok(0);
    }
    crate::stdout_print!("{}", table(&rows, store.dir()));
    Ok(0)
}

/// `2025-03-01 12:00` (UTC) from an RFC 3339 time; the text as is when it does not parse.
pub fn short_time(rfc3339: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::OffsetDateTime::parse(rfc3339, &Rfc3339)
        .ok()
        .and_then(|t| t.to_offset(time::UtcOffset::UTC).format(&fmt).ok())
        .unwrap_or_else(|| rfc3339.to_string())
}

/// Methods in a few characters: the one method when all components share it.
pub fn short_methods(m: &Methods) -> String {
    if m.cpu == m.gpu && m.gpu == m.ram {
        return m.cpu.clone();
    }
    format!("cpu={} gpu={} ram={}", m.cpu, m.gpu, m.ram)
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The runs table, with a totals line.
/// The listing; `dir`: the store's directory (to tell runs whose tracker died).
pub fn table(rows: &[RunRow], dir: &std::path::Path) -> String {
    let pw = rows
        .iter()
        .map(|r| r.project.chars().count())
        .max()
        .unwrap_or(7)
        .clamp(7, 24);
    let labels: Vec<String> = rows
        .iter()
        .map(|r| crate::liveness::status_label(dir, &r.id, &r.status, &r.started_at, r.duration_s))
        .collect();
    let sw = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(9)
        .max(9);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<8}  {:<16}  {:>8}  {:<sw$}  {:<pw$}  {:>11}  {:>10}  METHODS",
        "ID", "STARTED (UTC)", "DURATION", "STATUS", "PROJECT", "ENERGY", "EMISSIONS"
    );
    let (mut kwh, mut kg) = (0.0, 0.0);
    for (r, label) in rows.iter().zip(&labels) {
        kwh += r.energy_kwh;
        kg += r.emissions_kg;
        let _ = writeln!(
            o,
            "{:<8}  {:<16}  {:>8}  {:<sw$}  {:<pw$}  {:>11}  {:>10}  {}",
            r.id.get(..8).unwrap_or(&r.id),
            short_time(&r.started_at),
            fmt_duration(r.duration_s),
            label,
            clip(&r.project, pw),
            fmt_energy_kwh(r.energy_kwh),
            fmt_mass_kg(r.emissions_kg),
            short_methods(&r.methods)
        );
    }
    let _ = writeln!(
        o,
        "{} run(s) · IT energy {} · emissions {} CO2e",
        rows.len(),
        fmt_energy_kwh(kwh),
        fmt_mass_kg(kg)
    );
    o
}
