//! `wattprint slurm …`: Slurm subcommands.

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: SlurmCommand,
}

#[derive(clap::Subcommand)]
pub enum SlurmCommand {
    /// The cluster's history from `sacct -P`: past jobs as estimates (measured records win),
    /// Green Algorithms for HPC's figures beside them, and the waste (failed jobs,
    /// over-requested memory and cores) per user, account and partition.
    Import(crate::cmd_slurm_import::Args),
}

pub fn run(a: Args) -> Result<i32> {
    match a.command {
        SlurmCommand::Import(a) => crate::cmd_slurm_import::run(a),
    }
}
