//! The `wattprint` command line, as a library so that tests can reach its parts.

use clap::{Parser, Subcommand};

pub mod agent;
pub mod carbon_args;
pub mod child;
pub mod cmd_admin;
pub mod cmd_agent;
pub mod cmd_compare;
pub mod cmd_digest;
pub mod cmd_doctor;
pub mod cmd_estimate;
pub mod cmd_export;
pub mod cmd_factors;
pub mod cmd_import;
pub mod cmd_import_job;
pub mod cmd_model;
pub mod cmd_projects;
pub mod cmd_regions;
pub mod cmd_report;
pub mod cmd_rm;
pub mod cmd_run;
pub mod cmd_runs;
pub mod cmd_serve;
pub mod cmd_show;
pub mod cmd_slurm;
pub mod cmd_slurm_import;
pub mod cmd_storage;
pub mod cmd_sync;
pub mod cmd_when;
pub mod digest_server;
pub mod embodied_args;
pub mod job_view;
pub mod lineage_args;
pub mod live;
pub mod slurm_store;

// The store, interchange, reports and summaries live in wattprint-store; the session, its
// configuration and uploads in wattprint-session. Re-exported under their old paths.
pub use wattprint_session::{config, provider_config, server_policy, upload as uploader};
pub use wattprint_store::{clock, interchange, liveness, report, segments_text, store, summary};

/// The environment this process was started with, captured once (libraries never read it).
pub fn env() -> &'static wattprint_core::env::Env {
    static ENV: std::sync::LazyLock<wattprint_core::env::Env> =
        std::sync::LazyLock::new(wattprint_core::env::Env::process);
    &ENV
}

/// Messages of the session libraries, on stderr: `wattprint: warning: …`; with `quiet`, only
/// losses (a record that could not be kept).
pub fn stderr_messages(quiet: bool) -> wattprint_session::messages::Messages {
    use wattprint_session::messages::{Level, Messages};
    Messages::new(|level, text| {
        let line = match level {
            Level::Info => format!("wattprint: {text}"),
            Level::Warning | Level::Loss => format!("wattprint: warning: {text}"),
            Level::Debug => format!("wattprint: debug: {text}"),
        };
        let mut e = std::io::stderr().lock();
        let _ = std::io::Write::write_all(&mut e, format!("{line}\n").as_bytes());
    })
    .quiet(quiet)
}

#[derive(Parser)]
#[command(
    name = "wattprint",
    version,
    about = "Measure, estimate and cut the carbon emissions of machine-learning work"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job and measure the energy and emissions it caused.
    Run(Box<cmd_run::Args>),
    /// What this machine offers: sensors found, methods used, location in force.
    Doctor(cmd_doctor::Args),
    /// Show a stored run.
    Show(cmd_show::Args),
    /// List stored runs, newest first (filter by project, tag, status, time).
    Runs(cmd_runs::Args),
    /// Per-project totals: runs, energy, emissions, waste (failed/killed runs), idle share.
    Projects(cmd_projects::Args),
    /// Remove stored runs (an id prefix is enough).
    Rm(cmd_rm::Args),
    /// Export stored runs: CodeCarbon emissions.csv, plain CSV or JSON Lines.
    Export(cmd_export::Args),
    /// Import runs from another tool's file (CodeCarbon emissions.csv).
    Import(cmd_import::Args),
    /// Combine the run records (`--json` files) gathered from a job's nodes into the job's
    /// total, each node once, without a server.
    ImportJob(cmd_import_job::Args),
    /// Estimate energy and emissions from hardware × time × place.
    Estimate(cmd_estimate::Args),
    /// Slurm: the cluster's history from sacct (`wattprint slurm import`).
    Slurm(cmd_slurm::Args),
    /// List and search the shipped factors, with their sources.
    Factors(cmd_factors::Args),
    /// The same job as Green Algorithms, ML CO2 Impact, CodeCarbon and Cloud Carbon Footprint
    /// would count it, and why they differ (offline; a stored run or estimate flags).
    Compare(cmd_compare::Args),
    /// Rank cloud regions by carbon intensity × PUE.
    Regions(cmd_regions::Args),
    /// The cleanest time to start a job, from a carbon-intensity forecast.
    When(cmd_when::Args),
    /// Report on a run or a project: HTML with plots, Markdown, model card or JSON.
    Report(cmd_report::Args),
    /// A model's whole footprint: final training, preparation, tuning, failed runs, overhead
    /// ratio, sweeps, inference (runs given `--model NAME`).
    Model(cmd_model::Args),
    /// The storage footprint of data: stored bytes, duplicate files, yearly energy and
    /// emissions (`storage scan DIR…`).
    Storage(cmd_storage::Args),
    /// A one-page Markdown/HTML summary of a period: emitted, top models and their overhead,
    /// waste, a cleaner region, three actions with their saving.
    Digest(cmd_digest::Args),
    /// Run the central server: JSON API for runs, totals and budgets (SQLite or PostgreSQL).
    Serve(cmd_serve::Args),
    /// Manage the server's organisations, teams, users and API tokens (on its database).
    Admin(cmd_admin::Args),
    /// Send what `wattprint run --server` and `wattprint agent` spooled while the server was down.
    Sync(cmd_sync::Args),
    /// Node daemon: measure the whole machine, export Prometheus metrics, report to the server.
    Agent(cmd_agent::Args),
}

/// When the process started, for the start-up figure in the run record.
pub static START: std::sync::LazyLock<std::time::Instant> =
    std::sync::LazyLock::new(std::time::Instant::now);

/// An error that ends the command with a given exit status (e.g. 127: the job's command was
/// not found), printed as `wattprint: error: …`.
#[derive(Debug)]
pub struct ExitError {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for ExitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitError {}

/// Whether `e` comes from writing into a closed pipe (`wattprint runs | head -1`).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `println!` for command output: the locked stdout, and an error (a closed pipe) returned to
/// the caller with `?`, so it ends the command quietly instead of panicking.
#[macro_export]
macro_rules! stdout_ln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*)?
    }};
}

/// `print!` for command output (see [`stdout_ln!`]).
#[macro_export]
macro_rules! stdout_print {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($t)*)?
    }};
}

/// Parse the command line, run the command; its exit status.
pub fn cli_main() -> std::process::ExitCode {
    use std::process::ExitCode;
    std::sync::LazyLock::force(&START);
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let result = match cli.command {
        Command::Run(a) => cmd_run::run(*a),
        Command::Doctor(a) => cmd_doctor::run(a),
        Command::Show(a) => cmd_show::run(a),
        Command::Runs(a) => cmd_runs::run(a),
        Command::Projects(a) => cmd_projects::run(a),
        Command::Rm(a) => cmd_rm::run(a),
        Command::Export(a) => cmd_export::run(a),
        Command::Import(a) => cmd_import::run(a),
        Command::ImportJob(a) => cmd_import_job::run(a),
        Command::Estimate(a) => cmd_estimate::run(a),
        Command::Slurm(a) => cmd_slurm::run(a),
        Command::Factors(a) => cmd_factors::run(a),
        Command::Compare(a) => cmd_compare::run(a),
        Command::Regions(a) => cmd_regions::run(a),
        Command::When(a) => cmd_when::run(a),
        Command::Report(a) => cmd_report::run(a),
        Command::Model(a) => cmd_model::run(a),
        Command::Storage(a) => cmd_storage::run(a),
        Command::Digest(a) => cmd_digest::run(a),
        Command::Serve(a) => cmd_serve::run(a),
        Command::Admin(a) => cmd_admin::run(a),
        Command::Sync(a) => cmd_sync::run(a),
        Command::Agent(a) => cmd_agent::run(a),
    };
    match result {
        // Exit statuses are 8 bits, as the shell sees them.
        Ok(code) => ExitCode::from((code & 0xff) as u8),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.downcast_ref::<ExitError>().map_or(2, |x| x.code);
            let mut err = std::io::stderr().lock();
            let _ = std::io::Write::write_fmt(&mut err, format_args!("wattprint: error: {e:#}\n"));
            ExitCode::from(code)
        }
    }
}
