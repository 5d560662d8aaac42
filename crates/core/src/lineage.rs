//! What a run belongs to and what it is in a model's life: the model it produces (`--model`,
//! alias `--produces`), its stage (`--stage`), the hyperparameter sweep and trial it is part of
//! (`--sweep`, `--trial`, or the launcher's environment: W&B's `WANDB_SWEEP_ID`; Ray Tune sets
//! no trial variable, so the Python package asks Ray's own context), the model it fine-tunes (`--base-model`), whether it is the model's final
//! training (`--final`), and an objective it reports (to tell a sweep's best trial).
//!
//! A run's stage is one word for the whole run; the stages *inside* a run (Python's
//! `t.stage("training")`, [`crate::segments`]) split that run's energy and never move the run
//! to another stage. Rules: docs/pipeline.md.

use crate::validate::{check_ident, check_line, ValidationError, MAX_NAME};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a run is in a model's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Data preparation, tokenisation, feature extraction.
    Preparation,
    /// Hyperparameter search (a sweep's trials).
    Tuning,
    /// Training (the final one, or a re-training).
    Training,
    /// Evaluation, benchmarking.
    Evaluation,
    /// Serving or batch inference with the model.
    Inference,
    /// Debugging, smoke tests.
    Debug,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Preparation,
        Stage::Tuning,
        Stage::Training,
        Stage::Evaluation,
        Stage::Inference,
        Stage::Debug,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Preparation => "preparation",
            Stage::Tuning => "tuning",
            Stage::Training => "training",
            Stage::Evaluation => "evaluation",
            Stage::Inference => "inference",
            Stage::Debug => "debug",
        }
    }

    /// The stage named `s` (case-insensitive).
    pub fn parse(s: &str) -> Option<Stage> {
        let s = s.trim().to_ascii_lowercase();
        Stage::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Whether a smaller or a larger objective is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    Min,
    Max,
}

/// A figure of merit the run reported (e.g. validation loss), to rank a sweep's trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    pub name: String,
    pub value: f64,
    pub goal: Goal,
}

/// A run's place in a model's life. Every field is optional; a record without any has no
/// `lineage` at all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<String>,
    /// The trial within the sweep: a number (`--trial 7`) or a launcher's trial id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<String>,
    /// The model this run fine-tunes: its footprint is reused, not re-spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model: Option<String>,
    /// Marked as the model's final training (else the latest successful training run is).
    #[serde(default, rename = "final", skip_serializing_if = "is_false")]
    pub is_final: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<Objective>,
    /// Where each field came from when not from a flag or keyword argument: field →
    /// `env:WANDB_SWEEP_ID`, `env:TUNE_TRIAL_ID`, ...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Longest model, sweep or trial name.
pub const MAX_LINEAGE_NAME: usize = MAX_NAME;

impl Lineage {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Lineage::default()
    }

    /// `None` when nothing is set.
    pub fn non_empty(self) -> Option<Lineage> {
        (!self.is_empty()).then_some(self)
    }

    /// Fill what the flags left unset from the launcher's environment, each noted in
    /// `sources`: `WANDB_SWEEP_ID` (W&B sweep agents set it for every run of a sweep; the
    /// trial is `WANDB_RUN_ID`), Ray Tune's `TUNE_TRIAL_ID` and `TUNE_EXPERIMENT_NAME` (or
    /// `TUNE_ORIG_WORKING_DIR`'s last component when the name is not set). A run in a sweep
    /// without a stage is a `tuning` run.
    pub fn with_env(mut self, env: &crate::env::Env) -> Lineage {
        let mut set = |field: &str, slot: &mut Option<String>, var: &str| {
            if slot.is_none() {
                if let Some(v) = env.get(var).map(str::trim) {
                    if check_ident(field, v, MAX_LINEAGE_NAME).is_ok() {
                        *slot = Some(v.to_string());
                        self.sources.insert(field.to_string(), format!("env:{var}"));
                    }
                }
            }
        };
        if env.get("WANDB_SWEEP_ID").is_some() {
            set("sweep", &mut self.sweep, "WANDB_SWEEP_ID");
            set("trial", &mut self.trial, "WANDB_RUN_ID");
        }
        if env.get("TUNE_TRIAL_ID").is_some() {
            set("sweep", &mut self.sweep, "TUNE_EXPERIMENT_NAME");
            set("trial", &mut self.trial, "TUNE_TRIAL_ID");
        }
        if self.sweep.is_some() && self.stage.is_none() {
            self.stage = Some(Stage::Tuning);
            if !self.sources.is_empty() {
                self.sources
                    .insert("stage".into(), "implied by the sweep".into());
            }
        }
        self
    }

    /// Set `field` (`sweep` or `trial`) to `value` found by a launcher's context (`source`
    /// says where), unless it is already set or the value is not a valid name.
    pub fn detected(&mut self, field: &str, value: &str, source: &str) {
        let slot = match field {
            "sweep" => &mut self.sweep,
            "trial" => &mut self.trial,
            _ => return,
        };
        if slot.is_none() && check_ident(field, value, MAX_LINEAGE_NAME).is_ok() {
            *slot = Some(value.to_string());
            self.sources.insert(field.to_string(), source.to_string());
        }
    }

    /// Form and bounds (names are single lines of at most 200 characters).
    pub fn check(&self) -> Result<(), ValidationError> {
        for (field, v) in [
            ("lineage.model", &self.model),
            ("lineage.sweep", &self.sweep),
            ("lineage.trial", &self.trial),
            ("lineage.base_model", &self.base_model),
        ] {
            if let Some(v) = v {
                check_ident(field, v, MAX_LINEAGE_NAME)?;
            }
        }
        if let Some(o) = &self.objective {
            check_ident("lineage.objective.name", &o.name, MAX_LINEAGE_NAME)?;
            if !o.value.is_finite() {
                return Err(ValidationError {
                    path: "lineage.objective.value".into(),
                    reason: "must be a finite number".into(),
                });
            }
        }
        if self.sources.len() > 16 {
            return Err(ValidationError {
                path: "lineage.sources".into(),
                reason: format!("has {} items; the limit is 16", self.sources.len()),
            });
        }
        for (k, v) in &self.sources {
            check_ident("lineage.sources", k, 64)?;
            check_line("lineage.sources", v, MAX_LINEAGE_NAME)?;
        }
        if self.base_model.is_some() && self.base_model == self.model {
            return Err(ValidationError {
                path: "lineage.base_model".into(),
                reason: "is the model itself; a model cannot fine-tune itself".into(),
            });
        }
        Ok(())
    }
}

/// `NAME=VALUE` or `NAME=VALUE:min|max` (default `min`: a loss) into an objective.
pub fn parse_objective(s: &str) -> Result<Objective, String> {
    let bad = || format!("`{s}`: expected NAME=VALUE[:min|max], e.g. val_loss=0.31:min");
    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
    let (value, goal) = match rest.rsplit_once(':') {
        Some((v, "min")) => (v, Goal::Min),
        Some((v, "max")) => (v, Goal::Max),
        Some(_) => return Err(bad()),
        None => (rest, Goal::Min),
    };
    let value: f64 = value.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || name.trim().is_empty() {
        return Err(bad());
    }
    Ok(Objective {
        name: name.trim().to_string(),
        value,
        goal,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::env::Env;

    #[test]
    fn env_fills_only_what_flags_left_unset_and_says_so() {
        let env = Env::from_pairs([("WANDB_SWEEP_ID", "sw1"), ("WANDB_RUN_ID", "r7")]);
        let l = Lineage::default().with_env(&env);
        assert_eq!(l.sweep.as_deref(), Some("sw1"));
        assert_eq!(l.trial.as_deref(), Some("r7"));
        assert_eq!(l.stage, Some(Stage::Tuning));
        assert_eq!(l.sources["sweep"], "env:WANDB_SWEEP_ID");
        let flags = Lineage {
            sweep: Some("mine".into()),
            stage: Some(Stage::Debug),
            ..Default::default()
        };
        let l = flags.with_env(&env);
        assert_eq!(l.sweep.as_deref(), Some("mine"));
        assert_eq!(l.stage, Some(Stage::Debug));
        assert!(!l.sources.contains_key("sweep"));
        let mut l = Lineage::default();
        l.detected("trial", "abc_00003", "ray.train.get_context");
        assert_eq!(l.trial.as_deref(), Some("abc_00003"));
        l.detected("trial", "other", "x");
        assert_eq!(l.trial.as_deref(), Some("abc_00003"));
        assert!(Lineage::default().with_env(&Env::default()).is_empty());
    }

    #[test]
    fn objectives_and_checks() {
        let o = parse_objective("acc=0.91:max").unwrap();
        assert_eq!((o.value, o.goal), (0.91, Goal::Max));
        assert_eq!(parse_objective("loss=2").unwrap().goal, Goal::Min);
        for bad in ["loss", "=1", "loss=x", "loss=1:up", "loss=inf"] {
            assert!(parse_objective(bad).is_err(), "{bad}");
        }
        let l = Lineage {
            model: Some("m".into()),
            base_model: Some("m".into()),
            ..Default::default()
        };
        assert_eq!(l.check().unwrap_err().path, "lineage.base_model");
        let l = Lineage {
            model: Some("a\nb".into()),
            ..Default::default()
        };
        assert!(l.check().is_err());
        let json = serde_json::to_string(&Lineage {
            model: Some("m".into()),
            is_final: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(json, r#"{"model":"m","final":true}"#);
    }
}
