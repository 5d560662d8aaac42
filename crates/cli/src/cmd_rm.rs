//! `wattprint rm RUN...`: remove stored runs (an id prefix is enough) and their samples.

use crate::store::Store;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Run ids or unique prefixes of them.
    #[arg(required = true, num_args = 1.., value_name = "RUN")]
    pub runs: Vec<String>,
}

pub fn run(a: Args) -> Result<i32> {
    let mut store = Store::open_default(crate::env())?;
    // Resolve every argument first: one bad or ambiguous prefix removes nothing.
    let mut ids: Vec<String> = Vec::new();
    let mut errors = Vec::new();
    for p in &a.runs {
        match store.resolve_id(p) {
            Ok(id) => {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("wattprint: error: {e}");
        }
        eprintln!("wattprint: nothing was removed");
        return Ok(2);
    }
    let mut lines = Vec::new();
    for id in &ids {
        if let Some(r) = store.get_run(id)? {
            lines.push(format!(
                "removed {} · project {} · {} · started {}{}",
                r.id,
                r.project,
                r.status.as_str(),
                r.started_at,
                if r.status == wattprint_core::record::RunStatus::Running {
                    " (was marked running: if its tracker is alive, its next checkpoint saves it again)"
                } else {
                    ""
                }
            ));
        }
    }
    store.delete_runs(&ids)?;
    for l in lines {
        crate::stdout_ln!("{l}");
    }
    Ok(0)
}
