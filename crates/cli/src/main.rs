//! The `wattprint` command line.

use clap::{Parser, Subcommand};

mod cmd_estimate;
mod cmd_factors;
mod cmd_regions;

#[derive(Parser)]
#[command(name = "wattprint", version, about = "Measure, estimate and cut the carbon emissions of machine-learning work")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Estimate energy and emissions from hardware × time × place.
    Estimate(cmd_estimate::Args),
    /// List and search the shipped factors, with their sources.
    Factors(cmd_factors::Args),
    /// Rank cloud regions by carbon intensity × PUE.
    Regions(cmd_regions::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
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
