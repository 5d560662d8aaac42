//! Caps and carbon budgets for a run: a maximum duration, an energy budget (kWh) and an
//! emissions budget (kg CO2e), each warned about at 80 % and acted on (warn or stop) when
//! reached — or, with prediction, as soon as the lower bound of the predicted total exceeds it.

use crate::prediction::Prediction;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Fraction of a limit at which a warning is given.
pub const WARN_FRACTION: f64 = 0.8;
/// Minimum observed fraction of the job before a prediction may stop it.
pub const MIN_FRACTION_FOR_PREDICTED_STOP: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BudgetAction {
    Warn,
    #[default]
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    MaxDuration,
    BudgetKwh,
    BudgetKg,
}

impl LimitKind {
    pub fn describe(self) -> &'static str {
        match self {
            LimitKind::MaxDuration => "duration cap",
            LimitKind::BudgetKwh => "energy budget",
            LimitKind::BudgetKg => "carbon budget",
        }
    }
    pub fn unit(self) -> &'static str {
        match self {
            LimitKind::MaxDuration => "s",
            LimitKind::BudgetKwh => "kWh",
            LimitKind::BudgetKg => "kg CO2e",
        }
    }
}

/// The limits in force for a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_kwh: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_kg: Option<f64>,
    pub action: BudgetAction,
    /// Stop early when the prediction's lower bound already exceeds a budget.
    #[serde(default)]
    pub predict_stop: bool,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.max_duration_s.is_none() && self.budget_kwh.is_none() && self.budget_kg.is_none()
    }
    pub fn max_duration(&self) -> Option<Duration> {
        self.max_duration_s.map(Duration::from_secs_f64)
    }
}

/// What the run has spent so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spent {
    pub elapsed_s: f64,
    /// IT energy, kWh (the run record's `energy_kwh.total`).
    pub kwh: f64,
    /// Total emissions, kg CO2e (the run record's `emissions_kg.total`).
    pub kg: f64,
}

impl Spent {
    fn of(&self, k: LimitKind) -> f64 {
        match k {
            LimitKind::MaxDuration => self.elapsed_s,
            LimitKind::BudgetKwh => self.kwh,
            LimitKind::BudgetKg => self.kg,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventLevel {
    /// 80 % of the limit spent.
    Warning,
    /// The limit is reached.
    Reached,
    /// The prediction's lower bound exceeds the limit.
    Predicted,
}

/// A limit that was approached or hit, and what had been spent then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitEvent {
    pub kind: LimitKind,
    pub level: EventLevel,
    pub limit: f64,
    pub spent: f64,
    pub at_s: f64,
    /// Energy and emissions spent when the event happened.
    pub spent_kwh: f64,
    pub spent_kg: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_low: Option<f64>,
    pub message: String,
}

/// Watches a run's spending against its limits.
#[derive(Debug, Clone)]
pub struct LimitTracker {
    pub limits: Limits,
    warned: Vec<LimitKind>,
    fired: Vec<LimitKind>,
}

fn fmt_value(k: LimitKind, v: f64) -> String {
    match k {
        LimitKind::MaxDuration => format!("{} s", crate::format::sig(v)),
        LimitKind::BudgetKwh => crate::format::energy_kwh(v),
        LimitKind::BudgetKg => format!("{} CO2e", crate::format::mass_kg(v)),
    }
}

impl LimitTracker {
    pub fn new(limits: Limits) -> Self {
        LimitTracker {
            limits,
            warned: Vec::new(),
            fired: Vec::new(),
        }
    }

    fn each(&self) -> Vec<(LimitKind, f64)> {
        let mut v = Vec::new();
        if let Some(x) = self.limits.max_duration_s {
            v.push((LimitKind::MaxDuration, x));
        }
        if let Some(x) = self.limits.budget_kwh {
            v.push((LimitKind::BudgetKwh, x));
        }
        if let Some(x) = self.limits.budget_kg {
            v.push((LimitKind::BudgetKg, x));
        }
        v
    }

    /// Seconds from `elapsed_s` until the duration cap next has something to say (its warning,
    /// then the cap itself), so a watcher can wake exactly then instead of polling; `None`
    /// when there is no duration cap or it has fired.
    pub fn next_duration_event_in(&self, elapsed_s: f64) -> Option<f64> {
        let limit = self.limits.max_duration_s?;
        if self.fired.contains(&LimitKind::MaxDuration) {
            return None;
        }
        let at = if self.warned.contains(&LimitKind::MaxDuration) {
            limit
        } else {
            WARN_FRACTION * limit
        };
        Some((at - elapsed_s).max(0.0))
    }

    /// New events since the last call. Each limit warns once and fires once.
    pub fn check(&mut self, spent: &Spent, prediction: Option<&Prediction>) -> Vec<LimitEvent> {
        let mut out = Vec::new();
        for (kind, limit) in self.each() {
            let s = spent.of(kind);
            let ev = |level: EventLevel, predicted_low: Option<f64>, message: String| LimitEvent {
                kind,
                level,
                limit,
                spent: s,
                at_s: spent.elapsed_s,
                spent_kwh: spent.kwh,
                spent_kg: spent.kg,
                predicted_low,
                message,
            };
            if self.fired.contains(&kind) {
                continue;
            }
            if s >= limit {
                self.fired.push(kind);
                out.push(ev(
                    EventLevel::Reached,
                    None,
                    format!(
                        "{} reached: {} spent of {}",
                        kind.describe(),
                        fmt_value(kind, s),
                        fmt_value(kind, limit)
                    ),
                ));
                continue;
            }
            if self.limits.predict_stop && kind != LimitKind::MaxDuration {
                if let Some(p) = prediction {
                    let low = match kind {
                        LimitKind::BudgetKwh => p.final_kwh.p10,
                        _ => p.final_kg.p10,
                    };
                    if p.fraction_done >= MIN_FRACTION_FOR_PREDICTED_STOP && low > limit {
                        self.fired.push(kind);
                        out.push(ev(
                            EventLevel::Predicted,
                            Some(low),
                            format!(
                                "{} will be exceeded: predicted total at least {} (P10) against {}, with {} of the job done",
                                kind.describe(),
                                fmt_value(kind, low),
                                fmt_value(kind, limit),
                                crate::format::percent(p.fraction_done)
                            ),
                        ));
                        continue;
                    }
                }
            }
            if s >= WARN_FRACTION * limit && !self.warned.contains(&kind) {
                self.warned.push(kind);
                out.push(ev(
                    EventLevel::Warning,
                    None,
                    format!(
                        "{} of the {} spent ({} of {})",
                        crate::format::percent(s / limit),
                        kind.describe(),
                        fmt_value(kind, s),
                        fmt_value(kind, limit)
                    ),
                ));
            }
        }
        out
    }
}

/// Combine an institution's limits with a user's: the user may only lower them. Returns the
/// limits in force and a message for each user value that was refused.
pub fn combine(institution: &Limits, user: &Limits) -> (Limits, Vec<String>) {
    let mut notes = Vec::new();
    let mut pick = |name: &str, inst: Option<f64>, usr: Option<f64>| match (inst, usr) {
        (Some(i), Some(u)) if u > i => {
            notes.push(format!(
                "{name} {u} is above the institution's limit {i}; the institution's limit applies (a user can only lower it)"
            ));
            Some(i)
        }
        (_, Some(u)) => Some(u),
        (i, None) => i,
    };
    let max_duration_s = pick(
        "max duration (s)",
        institution.max_duration_s,
        user.max_duration_s,
    );
    let budget_kwh = pick(
        "energy budget (kWh)",
        institution.budget_kwh,
        user.budget_kwh,
    );
    let budget_kg = pick("carbon budget (kg)", institution.budget_kg, user.budget_kg);
    let action = if institution.action == BudgetAction::Stop && !institution.is_empty() {
        if user.action == BudgetAction::Warn {
            notes.push(
                "budget action `warn` refused: the institution's limits stop jobs".to_string(),
            );
        }
        BudgetAction::Stop
    } else {
        user.action
    };
    (
        Limits {
            max_duration_s,
            budget_kwh,
            budget_kg,
            action,
            predict_stop: institution.predict_stop || user.predict_stop,
        },
        notes,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::prediction::Band;

    fn spent(t: f64, kwh: f64, kg: f64) -> Spent {
        Spent {
            elapsed_s: t,
            kwh,
            kg,
        }
    }

    #[test]
    fn warns_at_80_percent_then_fires_once() {
        let mut t = LimitTracker::new(Limits {
            budget_kwh: Some(1.0),
            max_duration_s: Some(100.0),
            ..Default::default()
        });
        assert!(t.check(&spent(10.0, 0.5, 0.0), None).is_empty());
        let e = t.check(&spent(20.0, 0.85, 0.0), None);
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].kind, e[0].level),
            (LimitKind::BudgetKwh, EventLevel::Warning)
        );
        assert!(t.check(&spent(21.0, 0.9, 0.0), None).is_empty());
        let e = t.check(&spent(30.0, 1.01, 0.0), None);
        assert_eq!(e[0].level, EventLevel::Reached);
        assert!(
            e[0].message.contains("energy budget reached"),
            "{}",
            e[0].message
        );
        assert!(t.check(&spent(31.0, 2.0, 0.0), None).is_empty());
        let e = t.check(&spent(100.0, 2.0, 0.0), None);
        assert_eq!(
            (e[0].kind, e[0].level),
            (LimitKind::MaxDuration, EventLevel::Reached)
        );
    }

    #[test]
    fn predicted_stop_needs_5_percent_and_a_low_bound_above() {
        let mut t = LimitTracker::new(Limits {
            budget_kg: Some(1.0),
            predict_stop: true,
            ..Default::default()
        });
        let pred = |frac: f64, low: f64| Prediction {
            at_s: 10.0,
            fraction_done: frac,
            final_kwh: Band {
                p10: 0.0,
                p50: 0.0,
                p90: 0.0,
            },
            final_kg: Band {
                p10: low,
                p50: low * 1.1,
                p90: low * 1.2,
            },
            final_duration_s: Band {
                p10: 0.0,
                p50: 0.0,
                p90: 0.0,
            },
            basis: "progress".into(),
        };
        assert!(t
            .check(&spent(1.0, 0.0, 0.01), Some(&pred(0.01, 5.0)))
            .is_empty());
        assert!(t
            .check(&spent(2.0, 0.0, 0.02), Some(&pred(0.1, 0.9)))
            .is_empty());
        let e = t.check(&spent(3.0, 0.0, 0.03), Some(&pred(0.1, 1.5)));
        assert_eq!(e[0].level, EventLevel::Predicted);
        assert_eq!(e[0].predicted_low, Some(1.5));
    }

    #[test]
    fn users_can_only_lower_institution_limits() {
        let inst = Limits {
            max_duration_s: Some(72.0 * 3600.0),
            budget_kg: Some(10.0),
            action: BudgetAction::Stop,
            ..Default::default()
        };
        let user = Limits {
            max_duration_s: Some(100.0 * 3600.0),
            budget_kg: Some(5.0),
            budget_kwh: Some(3.0),
            action: BudgetAction::Warn,
            predict_stop: false,
        };
        let (l, notes) = combine(&inst, &user);
        assert_eq!(l.max_duration_s, Some(72.0 * 3600.0));
        assert_eq!(l.budget_kg, Some(5.0));
        assert_eq!(l.budget_kwh, Some(3.0));
        assert_eq!(l.action, BudgetAction::Stop);
        assert_eq!(notes.len(), 2, "{notes:?}");
        let (l, notes) = combine(&Limits::default(), &user);
        assert_eq!(l.action, BudgetAction::Warn);
        assert!(notes.is_empty());
    }
}
