//! A model's footprint: every run linked to it (`lineage.model`), its final training, the
//! overhead ratio, per stage, per sweep, inference to date, and the base model it reuses.
//!
//! Rules (docs/pipeline.md):
//! - **Final training**: the latest (by start time) run marked `final`; else the latest
//!   *completed* run of stage `training`. None: the overhead ratio is unknown, never 0.
//! - **Development** is every run of the model except `inference` runs; the **overhead** is
//!   development minus the final training, and the **overhead ratio** is overhead ÷ final
//!   training (emissions; energy alongside).
//! - **Failed** runs (failed, killed, stopped by a cap or budget) are counted in their stage
//!   and in the total, and listed apart as well.
//! - **Sweeps**: the best trial is the one whose reported objective is best (min or max, as
//!   it says), among trials reporting the same objective name; without any, the best is
//!   unknown and so is what the non-selected trials cost. A trial "far from the best" has an
//!   objective more than [`FAR_FROM_BEST`] (relative) worse than the best's.
//! - **Inference** is kept apart from development, with emissions per unit of work where the
//!   runs report work units of one kind.
//! - A **base model** (`--base-model`) is reused: its development footprint (when its runs are
//!   in the same store) is shown as reused and not added to this model's total.

use crate::lineage::{Goal, Stage};
use crate::record::{RunRecord, RunStatus};
use serde::Serialize;
use std::collections::BTreeMap;

/// Relative gap to the best objective beyond which a trial is "far from the best" (our
/// threshold for plain reporting, not a published rule: see docs/pipeline.md).
pub const FAR_FROM_BEST: f64 = 0.10;

/// Energy and emissions of some runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cost {
    pub runs: u64,
    /// IT energy, kWh.
    pub energy_kwh: f64,
    /// Total emissions (operational + embodied where counted), kg CO2e.
    pub emissions_kg: f64,
}

impl Cost {
    fn add(&mut self, r: &RunRecord) {
        self.runs += 1;
        self.energy_kwh += r.energy_kwh.total.0;
        self.emissions_kg += r.emissions_kg.total;
    }
    fn minus(&self, o: &Cost) -> Cost {
        Cost {
            runs: self.runs.saturating_sub(o.runs),
            energy_kwh: self.energy_kwh - o.energy_kwh,
            emissions_kg: self.emissions_kg - o.emissions_kg,
        }
    }
}

/// One run as the footprint lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRef {
    pub id: String,
    pub started_at: String,
    pub status: String,
    pub stage: Option<String>,
    pub energy_kwh: f64,
    pub emissions_kg: f64,
}

impl RunRef {
    fn of(r: &RunRecord) -> RunRef {
        RunRef {
            id: r.id.clone(),
            started_at: r.started_at.clone(),
            status: r.status.as_str().to_string(),
            stage: stage_of(r).map(|s| s.as_str().to_string()),
            energy_kwh: r.energy_kwh.total.0,
            emissions_kg: r.emissions_kg.total,
        }
    }
}

/// A hyperparameter sweep of the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepCost {
    pub sweep: String,
    /// Distinct trials (runs without a trial id count as one trial each).
    pub trials: u64,
    pub cost: Cost,
    /// The best trial by its reported objective; `None`: unknown (no trial reported one).
    pub best: Option<BestTrial>,
    /// What the trials other than the best cost; `None` when the best is unknown.
    pub not_selected: Option<Cost>,
    /// Trials reporting the objective whose value is more than [`FAR_FROM_BEST`] worse than
    /// the best's, and their share of the trials reporting it.
    pub far_from_best: Option<FarFromBest>,
    /// The parameters the trials vary (tags with two values or more, present in every trial)
    /// and whether the trials cover their full grid; `None` with fewer than two.
    pub grid: Option<Grid>,
}

/// The grid a sweep's trials form over their tags.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grid {
    /// Parameter → number of distinct values.
    pub parameters: BTreeMap<String, u64>,
    /// Product of those numbers.
    pub combinations: u64,
    /// Distinct combinations the trials ran.
    pub covered: u64,
    /// Every combination was run: a full grid search.
    pub full: bool,
}

/// The grid of `rs` over the tags every run has, varying in two or more of them.
pub fn grid_of(rs: &[&RunRecord]) -> Option<Grid> {
    let first = rs.first()?;
    let mut parameters: BTreeMap<String, u64> = BTreeMap::new();
    for k in first.tags.keys() {
        if !rs.iter().all(|r| r.tags.contains_key(k)) {
            continue;
        }
        let mut vals: Vec<&String> = rs.iter().filter_map(|r| r.tags.get(k)).collect();
        vals.sort();
        vals.dedup();
        if vals.len() >= 2 {
            parameters.insert(k.clone(), vals.len() as u64);
        }
    }
    if parameters.len() < 2 {
        return None;
    }
    let combinations = parameters
        .values()
        .try_fold(1u64, |a, n| a.checked_mul(*n))
        .unwrap_or(u64::MAX);
    let mut combos: Vec<Vec<&String>> = rs
        .iter()
        .map(|r| parameters.keys().filter_map(|k| r.tags.get(k)).collect())
        .collect();
    combos.sort();
    combos.dedup();
    let covered = combos.len() as u64;
    Some(Grid {
        parameters,
        combinations,
        covered,
        full: covered == combinations,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BestTrial {
    pub trial: String,
    pub run_id: String,
    pub objective: String,
    pub value: f64,
    pub goal: Goal,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FarFromBest {
    pub trials: u64,
    pub of_reporting: u64,
    pub share: f64,
    pub cost: Cost,
}

/// Inference to date.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InferenceCost {
    pub cost: Cost,
    /// Units of work the inference runs reported (`None` when none did, or in several kinds).
    pub units: Option<f64>,
    pub unit: Option<String>,
    /// Emissions per unit, g CO2e (of the runs that reported units).
    pub g_per_unit: Option<f64>,
}

/// The reused base model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaseModel {
    pub name: String,
    /// Its development footprint in this store; `None` when none of its runs is here.
    pub reused: Option<Cost>,
}

/// Compute discarded at failures, over runs that did not finish.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiscardedSum {
    /// Runs whose discarded compute is known (they signalled checkpoints).
    pub known_runs: u64,
    pub energy_kwh: f64,
    pub emissions_kg: f64,
    /// Unfinished runs without checkpoint signals: their discarded compute is unknown.
    pub unknown_runs: u64,
}

impl DiscardedSum {
    /// Add what `r` discarded.
    pub fn add(&mut self, r: &RunRecord) {
        if let Some(d) = &r.discarded {
            match (d.energy_kwh, d.emissions_kg) {
                (Some(e), Some(k)) => {
                    self.known_runs += 1;
                    self.energy_kwh += e;
                    self.emissions_kg += k;
                }
                _ => self.unknown_runs += 1,
            }
        }
    }
}

/// A model's whole footprint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelFootprint {
    pub model: String,
    /// Every run of the model, inference included.
    pub total: Cost,
    /// Every run but inference.
    pub development: Cost,
    pub final_training: Option<RunRef>,
    /// `marked final`, `latest completed training run`, or why there is none.
    pub final_rule: String,
    /// Development minus the final training; `None` without a final training.
    pub overhead: Option<Cost>,
    /// Overhead ÷ final training, by emissions; `None` without a final training (or when it
    /// emitted nothing).
    pub overhead_ratio: Option<f64>,
    /// The same by IT energy.
    pub overhead_ratio_energy: Option<f64>,
    /// Share of development emissions spent in `preparation` runs.
    pub preparation_share: Option<f64>,
    /// Per stage (`unstaged` for runs without one), in [`Stage::ALL`] order.
    pub stages: BTreeMap<String, Cost>,
    /// Failed, killed and stopped runs (already in their stage).
    pub failed: Cost,
    pub failed_runs: Vec<RunRef>,
    /// What those runs discarded since their last checkpoint.
    pub discarded: DiscardedSum,
    pub sweeps: Vec<SweepCost>,
    pub inference: InferenceCost,
    pub base_model: Option<BaseModel>,
    /// Runs still running (their energy so far is counted).
    pub running: u64,
    /// Runs whose embodied emissions were not counted (their total is operational only).
    pub embodied_not_counted: u64,
}

fn stage_of(r: &RunRecord) -> Option<Stage> {
    r.lineage.as_ref().and_then(|l| l.stage)
}

fn failed(s: RunStatus) -> bool {
    matches!(
        s,
        RunStatus::Failed
            | RunStatus::Killed
            | RunStatus::StoppedByBudget
            | RunStatus::StoppedByCap
    )
}

fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0 && part.is_finite()).then(|| part / whole)
}

/// The footprint of `model` from its runs (any order). The base model's `reused` is left
/// `None` (its runs are not among these).
pub fn footprint(model: &str, runs: &[RunRecord]) -> ModelFootprint {
    let mut runs: Vec<&RunRecord> = runs.iter().collect();
    runs.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
    let mut total = Cost::default();
    let mut development = Cost::default();
    let mut stages: BTreeMap<String, Cost> = BTreeMap::new();
    let mut failed_cost = Cost::default();
    let mut failed_runs = Vec::new();
    let mut inference = Cost::default();
    let mut inf_units: Option<(f64, String, f64)> = None; // units, unit, kg of those runs
    let mut mixed_units = false;
    let mut running = 0;
    let mut discarded = DiscardedSum::default();
    let mut embodied_not_counted = 0;
    for r in &runs {
        total.add(r);
        let stage = stage_of(r);
        stages
            .entry(stage.map_or("unstaged", Stage::as_str).to_string())
            .or_default()
            .add(r);
        if stage == Some(Stage::Inference) {
            inference.add(r);
            if let Some(w) = r.segments.as_ref().and_then(|s| s.work.as_ref()) {
                match &mut inf_units {
                    None => inf_units = Some((w.units, w.unit.clone(), r.emissions_kg.total)),
                    Some((n, u, kg)) if *u == w.unit => {
                        *n += w.units;
                        *kg += r.emissions_kg.total;
                    }
                    Some(_) => mixed_units = true,
                }
            }
        } else {
            development.add(r);
        }
        discarded.add(r);
        if failed(r.status) {
            failed_cost.add(r);
            failed_runs.push(RunRef::of(r));
        }
        if r.status == RunStatus::Running {
            running += 1;
        }
        if !r.emissions_kg.embodied_counted {
            embodied_not_counted += 1;
        }
    }
    let is_final = |r: &&&RunRecord| r.lineage.as_ref().is_some_and(|l| l.is_final);
    let (final_run, final_rule) = match runs.iter().rev().find(is_final) {
        Some(r) => (Some(*r), "marked final (--final)".to_string()),
        None => match runs
            .iter()
            .rev()
            .find(|r| stage_of(r) == Some(Stage::Training) && r.status == RunStatus::Completed)
        {
            Some(r) => (Some(*r), "the latest completed training run".to_string()),
            None => (
                None,
                "none: no run is marked final and no training run completed".to_string(),
            ),
        },
    };
    let (overhead, overhead_ratio, overhead_ratio_energy) = match final_run {
        Some(f) if stage_of(f) != Some(Stage::Inference) => {
            let mut fc = Cost::default();
            fc.add(f);
            let o = development.minus(&fc);
            (
                Some(o.clone()),
                ratio(o.emissions_kg, fc.emissions_kg),
                ratio(o.energy_kwh, fc.energy_kwh),
            )
        }
        _ => (None, None, None),
    };
    // Unknown when no run of the model says its stage.
    let any_stage = stages.keys().any(|k| k != "unstaged");
    let preparation_share = any_stage
        .then(|| {
            ratio(
                stages
                    .get(Stage::Preparation.as_str())
                    .map_or(0.0, |c| c.emissions_kg),
                development.emissions_kg,
            )
        })
        .flatten();
    let sweeps = sweeps_of(&runs);
    let (units, unit, g_per_unit) = match inf_units {
        Some((n, u, kg)) if !mixed_units => (Some(n), Some(u), (n > 0.0).then(|| kg * 1000.0 / n)),
        _ => (None, None, None),
    };
    let base_model = runs
        .iter()
        .rev()
        .find_map(|r| r.lineage.as_ref().and_then(|l| l.base_model.clone()))
        .map(|name| BaseModel { name, reused: None });
    ModelFootprint {
        model: model.to_string(),
        total,
        development,
        final_training: final_run.map(RunRef::of),
        final_rule,
        overhead,
        overhead_ratio,
        overhead_ratio_energy,
        preparation_share,
        stages,
        failed: failed_cost,
        failed_runs,
        discarded,
        sweeps,
        inference: InferenceCost {
            cost: inference,
            units,
            unit,
            g_per_unit,
        },
        base_model,
        running,
        embodied_not_counted,
    }
}

/// Per sweep: trials, cost, best trial by objective, what the others cost.
pub fn sweeps_of(runs: &[&RunRecord]) -> Vec<SweepCost> {
    let mut by: BTreeMap<String, Vec<&RunRecord>> = BTreeMap::new();
    for r in runs {
        if let Some(s) = r.lineage.as_ref().and_then(|l| l.sweep.clone()) {
            by.entry(s).or_default().push(r);
        }
    }
    by.into_iter()
        .map(|(sweep, rs)| {
            let mut cost = Cost::default();
            let mut trials: Vec<String> = Vec::new();
            for r in &rs {
                cost.add(r);
                let t = r
                    .lineage
                    .as_ref()
                    .and_then(|l| l.trial.clone())
                    .unwrap_or_else(|| format!("run {}", r.id));
                if !trials.contains(&t) {
                    trials.push(t);
                }
            }
            // The objective most trials report (name and goal), then the best among them.
            let mut names: BTreeMap<(String, bool), u64> = BTreeMap::new();
            for r in &rs {
                if let Some(o) = r.lineage.as_ref().and_then(|l| l.objective.as_ref()) {
                    *names
                        .entry((o.name.clone(), o.goal == Goal::Max))
                        .or_default() += 1;
                }
            }
            let key = names
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(k, _)| k.clone());
            let mut best = None;
            let mut not_selected = None;
            let mut far = None;
            if let Some((name, max)) = key {
                let reporting: Vec<(&RunRecord, f64)> = rs
                    .iter()
                    .filter_map(|r| {
                        let o = r.lineage.as_ref()?.objective.as_ref()?;
                        (o.name == name && (o.goal == Goal::Max) == max).then_some((*r, o.value))
                    })
                    .collect();
                let better = |a: f64, b: f64| if max { a > b } else { a < b };
                let mut b = reporting[0];
                for x in &reporting[1..] {
                    if better(x.1, b.1) {
                        b = *x;
                    }
                }
                let (br, bv) = b;
                let mut bc = Cost::default();
                bc.add(br);
                not_selected = Some(cost.minus(&bc));
                let gap = |v: f64| {
                    let d = if max { bv - v } else { v - bv };
                    if bv.abs() > 0.0 {
                        d / bv.abs()
                    } else {
                        d
                    }
                };
                let mut fc = Cost::default();
                let mut n = 0;
                for (r, v) in &reporting {
                    if gap(*v) > FAR_FROM_BEST {
                        n += 1;
                        fc.add(r);
                    }
                }
                far = Some(FarFromBest {
                    trials: n,
                    of_reporting: reporting.len() as u64,
                    share: n as f64 / reporting.len() as f64,
                    cost: fc,
                });
                best = Some(BestTrial {
                    trial: br
                        .lineage
                        .as_ref()
                        .and_then(|l| l.trial.clone())
                        .unwrap_or_else(|| format!("run {}", br.id)),
                    run_id: br.id.clone(),
                    objective: name,
                    value: bv,
                    goal: if max { Goal::Max } else { Goal::Min },
                });
            }
            SweepCost {
                grid: grid_of(&rs),
                sweep,
                trials: trials.len() as u64,
                cost,
                best,
                not_selected,
                far_from_best: far,
            }
        })
        .collect()
}
