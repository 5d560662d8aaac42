//! One measured session for every wattprint front end (the CLI's `run` and `agent`, Python,
//! the Slurm plugin): validated [`options::RunOptions`], a [`session::Session`] that discovers
//! the sensors, samples, watches limits, checkpoints into its [`sink::RunSink`]s and finishes
//! into a run record. Synchronous: no async runtime, no command-line parsing, no printing
//! (messages go to the front end's [`messages::Messages`]), no reads of the process
//! environment (front ends pass a captured [`wattprint_core::env::Env`]).

pub mod carbon;
pub mod config;
pub mod discarded;
pub mod io_watch;
pub mod measure;
pub mod messages;
pub mod monitor;
pub mod options;
pub mod paths;
pub mod provider_config;
pub mod segments;
pub mod server_policy;
pub mod session;
pub mod sink;
pub mod upload;
pub mod work_file;
