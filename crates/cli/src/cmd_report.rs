//! `wattprint report`: a report on one run or a whole project, as a self-contained HTML page,
//! Markdown, a Hugging Face model-card block or JSON.

use crate::report::{self, model_card::CardOptions, Report, Subject};
use crate::store::Store;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One self-contained HTML file with plots (no external requests).
    Html,
    /// Markdown tables (the plots are only in the HTML report).
    Md,
    /// The Hugging Face model card `co2_eq_emissions` YAML block (grams).
    ModelCard,
    /// The run record(s) with breakdown, series and totals.
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run id or a unique prefix of it. Omit it to report on --project NAME (or --all).
    pub run: Option<String>,
    /// Report on every run of this project.
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
    /// Report on every run of every project.
    #[arg(long, conflicts_with = "project")]
    pub all: bool,
    /// With --format model-card: the whole footprint of this model (`wattprint run --model`),
    /// preparation, tuning and failed runs included.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["run", "project", "all", "since"])]
    pub model: Option<String>,
    /// Only runs started at or after WHEN: an RFC 3339 time (2025-01-31T12:00:00Z), a date
    /// (2025-01-31, UTC) or an age (7d, 12h, 30min).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    #[arg(long, value_enum, default_value = "html")]
    pub format: Format,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// model-card: `training_type` ("pre-training", "fine-tuning"); default: the runs'
    /// `training_type` tag when they all share one, else left out.
    #[arg(long, value_name = "TYPE")]
    pub training_type: Option<String>,
    /// With a RUN (md and json): add the run counted as another tool would count it
    /// (green-algorithms, mlco2, codecarbon, ccf); the HTML report shows every tool already.
    #[arg(long, value_name = "PROFILE", value_parser = crate::cmd_show::parse_profile)]
    pub factors: Option<wattprint_core::profiles::Profile>,
}

/// `--since` as an RFC 3339 UTC time comparable with stored start times.
pub fn parse_since(s: &str, now: OffsetDateTime) -> Result<String> {
    let t = s.trim();
    let bad = || {
        anyhow::anyhow!(
            "--since `{s}`: give an RFC 3339 time (2025-01-31T12:00:00Z), a date (2025-01-31, UTC) or an age (7d, 12h, 30min)"
        )
    };
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(d) = OffsetDateTime::parse(t, &Rfc3339) {
        return Ok(crate::clock::format_rfc3339(
            d.to_offset(time::UtcOffset::UTC),
        ));
    }
    let date_fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(t, &date_fmt) {
        return Ok(crate::clock::format_rfc3339(d.midnight().assume_utc()));
    }
    if t.starts_with(|c: char| c.is_ascii_digit()) {
        if let Ok(age) = wattprint_core::units::parse_duration(t) {
            let age = time::Duration::try_from(age).map_err(|_| bad())?;
            let at = now.checked_sub(age).ok_or_else(bad)?;
            return Ok(crate::clock::format_rfc3339(at));
        }
    }
    Err(bad())
}

/// Build the report the arguments ask for.
pub fn build(store: &Store, a: &Args) -> Result<Report> {
    if a.training_type.is_some() && a.format != Format::ModelCard {
        anyhow::bail!("--training-type only applies to --format model-card");
    }
    let subject = match (&a.run, &a.project, a.all) {
        (Some(_), Some(_), _) | (Some(_), _, true) => anyhow::bail!(
            "give either a RUN or --project NAME / --all, not both (a run report covers one run)"
        ),
        (Some(_), None, false) if a.since.is_some() => {
            anyhow::bail!("--since selects runs of a project: use it with --project NAME or --all, not with a RUN")
        }
        (Some(run), None, false) => Subject::Run(Box::new(report::run_report(store, run)?)),
        (None, None, false) => anyhow::bail!(
            "nothing to report on: give a RUN id (see `wattprint runs`), --project NAME or --all"
        ),
        (None, project, _) => {
            if let Some(p) = project {
                if p.trim().is_empty() {
                    anyhow::bail!(
                        "--project is empty: give the project's name (see `wattprint projects`)"
                    );
                }
            }
            let since = a
                .since
                .as_deref()
                .map(|s| parse_since(s, OffsetDateTime::now_utc()))
                .transpose()?;
            Subject::Project(Box::new(report::project_report(
                store,
                project.as_deref(),
                since.as_deref(),
            )?))
        }
    };
    Ok(Report {
        subject,
        generated_at: crate::clock::now_rfc3339(),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Render a report in a format.
pub fn render(r: &Report, format: Format, card: &CardOptions) -> Result<String> {
    match format {
        Format::Html => Ok(report::html::render(r)),
        Format::Md => Ok(report::markdown::render(r)),
        Format::ModelCard => report::model_card::render(r, card),
        Format::Json => report::json::render(r),
    }
}

/// Write `text` to `path` whole or not at all (a temporary file renamed into place).
fn write_file(path: &Path, text: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "--output {}: the directory {} does not exist; create it first",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        anyhow::bail!(
            "--output {}: is a directory; give a file name, e.g. {}",
            path.display(),
            path.join("report.html").display()
        );
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let res = (|| -> Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.with_context(|| format!("writing the report to {}", path.display()))
}

/// `--factors P`: the run as that tool counts it, added to a Markdown or JSON run report.
fn with_profile(
    rep: &Report,
    format: Format,
    p: wattprint_core::profiles::Profile,
    mut text: String,
) -> Result<String> {
    use wattprint_store::report::other_tools;
    let report::Subject::Run(run) = &rep.subject else {
        anyhow::bail!("--factors applies to a run report: give a RUN");
    };
    match format {
        Format::Md => {
            text.push('\n');
            text.push_str(&other_tools::profile_markdown(&run.record, p));
        }
        Format::Json => {
            let mut v: serde_json::Value = serde_json::from_str(&text)?;
            v["profile"] = other_tools::profile_json(&run.record, p).unwrap_or_default();
            text = serde_json::to_string_pretty(&v)? + "\n";
        }
        Format::Html => {} // the HTML run report has every tool's count
        Format::ModelCard => anyhow::bail!("--factors does not apply to --format model-card"),
    }
    Ok(text)
}

pub fn run(a: Args) -> Result<i32> {
    let store = Store::open_default_for_reading(crate::env())?;
    if let Some(m) = &a.model {
        if a.format != Format::ModelCard {
            anyhow::bail!(
                "--model reports use --format model-card (see also `wattprint model {m}`)"
            );
        }
        let fp = wattprint_store::model_footprint::model_footprint(&store, m)?;
        let runs = wattprint_store::model_footprint::model_runs(&store, m)?;
        let card = CardOptions {
            training_type: a.training_type.clone(),
        };
        let text = report::model_card::render_model(&fp, &runs, env!("CARGO_PKG_VERSION"), &card)?;
        return emit(&a, &text);
    }
    let rep = build(&store, &a)?;
    let mut text = render(
        &rep,
        a.format,
        &CardOptions {
            training_type: a.training_type.clone(),
        },
    )?;
    if let Some(p) = a.factors {
        text = with_profile(&rep, a.format, p, text)?;
    }
    emit(&a, &text)
}

/// The report to --output or standard output.
fn emit(a: &Args, text: &str) -> Result<i32> {
    match &a.output {
        Some(p) => {
            write_file(p, text)?;
            eprintln!("wattprint: report written to {}", p.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e).context("writing the report to standard output");
                }
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(
            parse_since("2025-01-31", now).unwrap(),
            "2025-01-31T00:00:00Z"
        );
        assert_eq!(
            parse_since("2025-01-31T14:00:00+02:00", now).unwrap(),
            "2025-01-31T12:00:00Z"
        );
        assert_eq!(parse_since("1d", now).unwrap(), "2023-11-13T22:13:20Z");
        for bad in ["", "yesterday", "2025-13-01", "-3d", "7 parsecs"] {
            let e = parse_since(bad, now).unwrap_err().to_string();
            assert!(
                e.contains("--since") && e.contains("RFC 3339"),
                "{bad}: {e}"
            );
        }
    }
}
