//! The `wattprint` command line, as a library so that tests can reach its parts.

use clap::{Parser, Subcommand};

pub mod agent;
pub mod carbon_args;
pub mod child;
pub mod clock;
pub mod cmd_admin;
pub mod cmd_agent;
pub mod cmd_doctor;
pub mod cmd_estimate;
pub mod cmd_export;
pub mod cmd_factors;
pub mod cmd_import;
pub mod cmd_projects;
pub mod cmd_regions;
pub mod cmd_report;
pub mod cmd_rm;
pub mod cmd_run;
pub mod cmd_runs;
pub mod cmd_serve;
pub mod cmd_show;
pub mod cmd_sync;
pub mod cmd_when;
pub mod config;
pub mod interchange;
pub mod live;
pub mod liveness;
pub mod monitor;
pub mod provider_config;
pub mod report;
pub mod server_policy;
pub mod store;
pub mod summary;
pub mod uploader;

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
    Run(cmd_run::Args),
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
    /// Estimate energy and emissions from hardware × time × place.
    Estimate(cmd_estimate::Args),
    /// List and search the shipped factors, with their sources.
    Factors(cmd_factors::Args),
    /// Rank cloud regions by carbon intensity × PUE.
    Regions(cmd_regions::Args),
    /// The cleanest time to start a job, from a carbon-intensity forecast.
    When(cmd_when::Args),
    /// Report on a run or a project: HTML with plots, Markdown, model card or JSON.
    Report(cmd_report::Args),
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

/// Parse the command line, run the command and exit with its code.
pub fn cli_main() -> ! {
    std::sync::LazyLock::force(&START);
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            e.exit();
        }
    };
    let result = match cli.command {
        Command::Run(a) => cmd_run::run(a),
        Command::Doctor(a) => cmd_doctor::run(a),
        Command::Show(a) => cmd_show::run(a),
        Command::Runs(a) => cmd_runs::run(a),
        Command::Projects(a) => cmd_projects::run(a),
        Command::Rm(a) => cmd_rm::run(a),
        Command::Export(a) => cmd_export::run(a),
        Command::Import(a) => cmd_import::run(a),
        Command::Estimate(a) => cmd_estimate::run(a),
        Command::Factors(a) => cmd_factors::run(a),
        Command::Regions(a) => cmd_regions::run(a),
        Command::When(a) => cmd_when::run(a),
        Command::Report(a) => cmd_report::run(a),
        Command::Serve(a) => cmd_serve::run(a),
        Command::Admin(a) => cmd_admin::run(a),
        Command::Sync(a) => cmd_sync::run(a),
        Command::Agent(a) => cmd_agent::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("wattprint: error: {e:#}");
            std::process::exit(2);
        }
    }
}
