//! `wattprint show RUN`: one stored run (an id prefix is enough).

use crate::store::Store;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Run id or a unique prefix of it.
    pub run: String,
    /// Print the full JSON record.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let store = Store::open_default()?;
    let rec = store.find_run(&a.run)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rec)?);
    } else {
        print!("{}", crate::summary::summary_text(&rec, &[]));
    }
    Ok(0)
}
