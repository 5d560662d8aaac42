//! `wattprint slurm import --store`: estimates into the local store, in batches, each job once.

use anyhow::Result;
use wattprint_core::accounting::Breakdown;
use wattprint_core::record::{CarbonContext, RunRecord};
use wattprint_core::slurm_history::JobEstimate;
use wattprint_store::slurm_estimates::estimate_record;
use wattprint_store::store::Store;

/// Records written per transaction.
const BATCH: usize = 500;

pub struct Keeper {
    store: Store,
    project: String,
    batch: Vec<RunRecord>,
    stored: u64,
    already: u64,
    refused: u64,
    first_refusal: Option<String>,
}

impl Keeper {
    pub fn open(project: &str) -> Result<Keeper> {
        Ok(Keeper {
            store: Store::open_default(crate::env())?,
            project: project.to_string(),
            batch: Vec::new(),
            stored: 0,
            already: 0,
            refused: 0,
            first_refusal: None,
        })
    }

    pub fn add(&mut self, e: &JobEstimate, b: &Breakdown, carbon: &CarbonContext) -> Result<()> {
        match estimate_record(e, b, &self.project, carbon) {
            Ok(r) => self.batch.push(r),
            Err(why) => {
                self.refused += 1;
                self.first_refusal.get_or_insert(why);
            }
        }
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        for inserted in self.store.insert_new_runs(&self.batch)? {
            if inserted {
                self.stored += 1;
            } else {
                self.already += 1;
            }
        }
        self.batch.clear();
        Ok(())
    }

    /// Write what is left; what was stored, in words.
    pub fn finish(mut self) -> Result<String> {
        self.flush()?;
        let mut s = format!(
            "stored {} estimate(s) in project {} ({} already there, left as they were)",
            self.stored, self.project, self.already
        );
        if self.refused > 0 {
            s.push_str(&format!(
                "; {} not stored: {}",
                self.refused,
                self.first_refusal.unwrap_or_default()
            ));
        }
        Ok(s)
    }
}
