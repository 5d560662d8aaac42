//! `wattprint model NAME`: a model's whole footprint from the local store (rules in
//! `wattprint_store::model_footprint` and docs/pipeline.md).

use crate::store::Store;
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model (`wattprint run --model NAME`).
    pub name: String,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(a: Args) -> Result<i32> {
    let store = Store::open_default_for_reading(crate::env())?;
    let fp = wattprint_store::model_footprint::model_footprint(&store, &a.name)?;
    match a.format {
        Format::Text => crate::stdout_print!("{}", wattprint_store::model_text::model_text(&fp)),
        Format::Json => crate::stdout_ln!("{}", serde_json::to_string_pretty(&fp)?),
    }
    Ok(0)
}
