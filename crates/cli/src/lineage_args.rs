//! `wattprint run`'s lineage flags: the model a run produces, its stage, sweep and trial, the
//! model it fine-tunes (see `wattprint_core::lineage` and docs/pipeline.md).

use anyhow::Result;
use wattprint_core::lineage::{parse_objective, Lineage, Stage};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct LineageArgs {
    /// The model this run belongs to (`wattprint model NAME` totals it).
    #[arg(long, alias = "produces", value_name = "NAME")]
    pub model: Option<String>,
    /// What the run is in the model's life.
    #[arg(long, value_enum)]
    pub stage: Option<StageArg>,
    /// The hyperparameter sweep the run is a trial of (default: $WANDB_SWEEP_ID).
    #[arg(long, value_name = "ID")]
    pub sweep: Option<String>,
    /// The trial's number or id within the sweep (default: $WANDB_RUN_ID in a W&B sweep).
    #[arg(long, value_name = "N")]
    pub trial: Option<String>,
    /// The model this run fine-tunes: its footprint is shown as reused, not re-spent.
    #[arg(long, value_name = "NAME")]
    pub base_model: Option<String>,
    /// This is the model's final training run (default: its latest successful training run).
    #[arg(long = "final")]
    pub is_final: bool,
    /// A figure of merit the run reached, to rank a sweep's trials: NAME=VALUE[:min|max]
    /// (default min, a loss), e.g. `val_loss=0.31`.
    #[arg(long, value_name = "NAME=VALUE")]
    pub objective: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StageArg {
    Preparation,
    Tuning,
    Training,
    Evaluation,
    Inference,
    Debug,
}

impl StageArg {
    pub fn stage(self) -> Stage {
        match self {
            StageArg::Preparation => Stage::Preparation,
            StageArg::Tuning => Stage::Tuning,
            StageArg::Training => Stage::Training,
            StageArg::Evaluation => Stage::Evaluation,
            StageArg::Inference => Stage::Inference,
            StageArg::Debug => Stage::Debug,
        }
    }
}

impl LineageArgs {
    /// The lineage the flags declare (checked by `RunOptions::validate`).
    pub fn lineage(&self) -> Result<Lineage> {
        Ok(Lineage {
            model: self.model.clone(),
            stage: self.stage.map(StageArg::stage),
            sweep: self.sweep.clone(),
            trial: self.trial.clone(),
            base_model: self.base_model.clone(),
            is_final: self.is_final,
            objective: self
                .objective
                .as_deref()
                .map(parse_objective)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--objective {e}"))?,
            sources: Default::default(),
        })
    }
}
