//! A model's footprint from the local store: the rules and figures are
//! [`wattprint_core::model_footprint`]'s (docs/pipeline.md); this reads the model's runs.

use crate::store::{RunFilter, Store};
use anyhow::Result;
use wattprint_core::record::RunRecord;

pub use wattprint_core::model_footprint::*;

/// The runs of `model` in the store, oldest first.
pub fn model_runs(store: &Store, model: &str) -> Result<Vec<RunRecord>> {
    let mut runs = store.list_runs(&RunFilter {
        lineage: crate::store::LineageFilter {
            model: Some(model.to_string()),
            ..Default::default()
        },
        ..Default::default()
    })?;
    runs.reverse();
    Ok(runs)
}

/// The footprint of `model` from the store (its base model's runs read too).
pub fn model_footprint(store: &Store, model: &str) -> Result<ModelFootprint> {
    let runs = model_runs(store, model)?;
    if runs.is_empty() {
        anyhow::bail!(
            "no run of model `{model}` in {}; tag runs with `wattprint run --model {model} --stage …`",
            store.path().display()
        );
    }
    let mut fp = footprint(model, &runs);
    if let Some(b) = &mut fp.base_model {
        let base_runs = model_runs(store, &b.name)?;
        if !base_runs.is_empty() && b.name != model {
            b.reused = Some(footprint(&b.name, &base_runs).development);
        }
    }
    Ok(fp)
}
