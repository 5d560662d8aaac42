//! The `wattprint` command line.

use clap::{Parser, Subcommand};

mod carbon_args;
mod child;
mod clock;
mod cmd_doctor;
mod cmd_estimate;
mod cmd_factors;
mod cmd_regions;
mod cmd_run;
mod cmd_show;
mod live;
mod store;
mod summary;

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
    /// Estimate energy and emissions from hardware × time × place.
    Estimate(cmd_estimate::Args),
    /// List and search the shipped factors, with their sources.
    Factors(cmd_factors::Args),
    /// Rank cloud regions by carbon intensity × PUE.
    Regions(cmd_regions::Args),
}

/// When the process started, for the start-up figure in the run record.
pub static START: std::sync::LazyLock<std::time::Instant> =
    std::sync::LazyLock::new(std::time::Instant::now);

fn main() {
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
        Command::Estimate(a) => cmd_estimate::run(a),
        Command::Factors(a) => cmd_factors::run(a),
        Command::Regions(a) => cmd_regions::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("wattprint: error: {e:#}");
            std::process::exit(2);
        }
    }
}
