//! `wattprint digest`: a one-page Markdown or HTML summary of a period from the local store
//! (what was emitted, top models and their overhead, waste, a cleaner region, three actions);
//! the command writes the file, mailing it is the site's (a cron job).

use crate::store::{RunFilter, Store};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The calendar month, YYYY-MM (UTC).
    #[arg(long, value_name = "YYYY-MM", conflicts_with = "since")]
    pub month: Option<String>,
    /// Runs started since WHEN (RFC 3339, a date, or 7d/12h); default: the last 30 days.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only this project's runs.
    #[arg(long, conflicts_with = "team")]
    pub project: Option<String>,
    /// A team's digest from the server (its runs' records; the token from $WATTPRINT_TOKEN
    /// or the configuration file) instead of the local store.
    #[arg(long, value_name = "TEAM")]
    pub team: Option<String>,
    /// With --team: the server (default: $WATTPRINT_SERVER, else the configuration file's).
    #[arg(long, value_name = "URL", requires = "team")]
    pub server: Option<String>,
    #[arg(long, value_enum, default_value = "md")]
    pub format: Format,
    /// Write to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Html,
}

/// `YYYY-MM` → its first instant and the next month's (RFC 3339).
fn month_bounds(m: &str) -> Result<(String, String)> {
    let bad = || anyhow::anyhow!("--month `{m}`: give a month as YYYY-MM, e.g. 2025-06");
    let (y, mo) = m.trim().split_once('-').ok_or_else(bad)?;
    let y: i32 = y.parse().map_err(|_| bad())?;
    let mo: u32 = mo.parse().map_err(|_| bad())?;
    if !(2000..=9999).contains(&y) || !(1..=12).contains(&mo) {
        return Err(bad());
    }
    let (ny, nm) = if mo == 12 { (y + 1, 1) } else { (y, mo + 1) };
    Ok((
        format!("{y:04}-{mo:02}-01T00:00:00Z"),
        format!("{ny:04}-{nm:02}-01T00:00:00Z"),
    ))
}

pub fn run(a: Args) -> Result<i32> {
    let (since, until, period) = match (&a.month, &a.since) {
        (Some(m), _) => {
            let (s, u) = month_bounds(m)?;
            (s, Some(u), format!("month {}", m.trim()))
        }
        (None, Some(s)) => (s.clone(), None, format!("since {s}")),
        (None, None) => ("30d".to_string(), None, "the last 30 days".to_string()),
    };
    if let Some(team) = &a.team {
        return server_digest(&a, team, &since, until.as_deref(), &period);
    }
    let store = Store::open_default_for_reading(crate::env())?;
    let mut runs = store.list_runs(&RunFilter {
        project: a.project.clone(),
        since: Some(since),
        ..Default::default()
    })?;
    if let Some(u) = until.as_deref().and_then(crate::store::rfc3339_unix) {
        runs.retain(|r| crate::store::rfc3339_unix(&r.started_at).is_some_and(|t| t < u));
    }
    let period = match &a.project {
        Some(p) => format!("project {p}, {period}"),
        None => period,
    };
    if runs.is_empty() {
        anyhow::bail!("no runs in {period} in {}", store.path().display());
    }
    let d = wattprint_store::digest::digest(Some(&store), &period, runs)?;
    emit(&a, &d)
}

/// `--team T`: the team's runs from the server.
fn server_digest(
    a: &Args,
    team: &str,
    since: &str,
    until: Option<&str>,
    period: &str,
) -> Result<i32> {
    let config = crate::config::Config::load(crate::env())?;
    for w in &config.warnings {
        eprintln!("wattprint: warning: {w}");
    }
    let msgs = crate::stderr_messages(false);
    let Some(target) = wattprint_session::upload::ServerTarget::resolve(
        a.server.as_deref(),
        &config,
        crate::env(),
        &msgs,
    )?
    else {
        anyhow::bail!(
            "--team reads the server's runs: give --server URL (or set WATTPRINT_SERVER) and WATTPRINT_TOKEN"
        );
    };
    // The server takes RFC 3339 times; a relative `--since 7d` is turned into one here.
    let since = crate::store::parse_since(since, time::OffsetDateTime::now_utc())?
        .format(&time::format_description::well_known::Rfc3339)?;
    let (runs, notes) = crate::digest_server::team_records(target, team, &since, until)?;
    for n in &notes {
        eprintln!("wattprint: warning: {n}");
    }
    let period = format!("team {team}, {period}");
    if runs.is_empty() {
        anyhow::bail!("no runs of {period} on the server");
    }
    let d = wattprint_store::digest::digest(None, &period, runs)?;
    emit(a, &d)
}

/// The digest in the format asked for, to the file or standard output.
fn emit(a: &Args, d: &wattprint_store::digest::Digest) -> Result<i32> {
    let text = match a.format {
        Format::Md => wattprint_store::digest::markdown(d),
        Format::Html => wattprint_store::digest::html(d),
    };
    match &a.output {
        Some(p) => {
            let tmp = p.with_extension("tmp");
            std::fs::write(&tmp, &text)
                .and_then(|_| std::fs::rename(&tmp, p))
                .map_err(|e| anyhow::anyhow!("writing the digest to {}: {e}", p.display()))?;
            eprintln!("wattprint: digest written to {}", p.display());
        }
        None => crate::stdout_print!("{text}"),
    }
    Ok(0)
}
