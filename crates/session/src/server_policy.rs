//! The server's run policy for `wattprint run --server`: fetched at start (short timeout),
//! cached in `$WATTPRINT_HOME/policy.json`, the cache used when the server cannot be reached,
//! and applied as institution limits (a user can only lower them). A team whose monthly
//! budget is exhausted gets a warning; the run goes on. See docs/agents.md.

use crate::upload::{Client, SendError, ServerTarget};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use wattprint_core::limits::{BudgetAction, Limits};

/// Schema of the cache file.
pub const CACHE_SCHEMA: &str = "wattprint.policy-cache/1";

/// The limits a policy answer (`GET /policy`) sets. A policy that names no budget action and
/// no budget leaves the action to the user (the duration cap always stops anyway).
pub fn limits_of(answer: &Value) -> Limits {
    let p = &answer["policy"];
    let f = |k: &str| p[k].as_f64().filter(|x| x.is_finite() && *x > 0.0);
    let budget_kwh = f("budget_kwh_per_run");
    let budget_kg = f("budget_kg_per_run");
    let action = match p["budget_action"].as_str() {
        Some("warn") => BudgetAction::Warn,
        Some(_) => BudgetAction::Stop,
        None if budget_kwh.is_some() || budget_kg.is_some() => BudgetAction::Stop,
        None => BudgetAction::Warn,
    };
    Limits {
        max_duration_s: f("max_duration_s"),
        budget_kwh,
        budget_kg,
        action,
        predict_stop: false,
    }
}

/// The stricter of two institution-level limits (configuration file and server policy): the
/// lower value of each; `stop` when either source that sets limits says so.
pub fn stricter(a: &Limits, b: &Limits) -> Limits {
    let min = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    };
    let stops = |l: &Limits| !l.is_empty() && l.action == BudgetAction::Stop;
    Limits {
        max_duration_s: min(a.max_duration_s, b.max_duration_s),
        budget_kwh: min(a.budget_kwh, b.budget_kwh),
        budget_kg: min(a.budget_kg, b.budget_kg),
        action: if stops(a) || stops(b) {
            BudgetAction::Stop
        } else if a.is_empty() {
            b.action
        } else {
            a.action
        },
        predict_stop: a.predict_stop || b.predict_stop,
    }
}

/// Warnings for exhausted budgets in a policy answer.
pub fn budget_notes(answer: &Value) -> Vec<String> {
    let mut v = Vec::new();
    for b in answer["budgets"].as_array().into_iter().flatten() {
        if b["exhausted"].as_bool() == Some(true) {
            let whose = match b["project"].as_str() {
                Some(p) => format!("project {p} of team {}", b["team"].as_str().unwrap_or("?")),
                None => format!("team {}", b["team"].as_str().unwrap_or("?")),
            };
            // A project token is not told the team's use (other projects' runs).
            let used = match b["used_kg"].as_f64() {
                Some(u) => format!("{} of ", wattprint_core::format::mass_kg(u)),
                None => String::new(),
            };
            v.push(format!(
                "the monthly carbon budget of {whose} is exhausted: {used}{} CO2e used in {}; the run goes on (a team budget warns, it does not stop runs)",
                wattprint_core::format::mass_kg(b["kg_per_month"].as_f64().unwrap_or(0.0)),
                b["month"].as_str().unwrap_or("this month"),
            ));
        }
    }
    v
}

/// Fetch the policy (3 s at most), cache it (in `cache`, e.g. [`crate::paths::Paths::policy_cache`]), and give the limits it sets with notes for the
/// run's warnings. When the server cannot be reached or refuses, the cached policy from the
/// same server applies, and a note says so.
pub fn fetch(target: &ServerTarget, cache: Option<PathBuf>) -> (Limits, Vec<String>) {
    let client = Client::with_timeouts(
        target.clone(),
        Duration::from_millis(1500),
        Duration::from_secs(3),
    );
    fetch_with(&client, cache)
}

pub fn fetch_with(client: &Client, cache: Option<PathBuf>) -> (Limits, Vec<String>) {
    let server = client.target.url.clone();
    match client.request("GET", "/policy", None) {
        Ok(answer) => {
            if let Some(path) = &cache {
                let doc = json!({
                    "schema": CACHE_SCHEMA,
                    "server": server,
                    "fetched_at": wattprint_store::clock::now_rfc3339(),
                    "answer": answer,
                });
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
                if std::fs::write(&tmp, doc.to_string()).is_ok() {
                    let _ = std::fs::rename(&tmp, path);
                }
            }
            (limits_of(&answer), budget_notes(&answer))
        }
        Err(e) => {
            let why = match &e {
                SendError::Transient(s) => s.clone(),
                r @ SendError::Rejected { .. } => r.to_string(),
            };
            let cached = cache
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .filter(|d| d["schema"] == CACHE_SCHEMA && d["server"] == server.as_str());
            match cached {
                Some(d) => {
                    let mut notes = vec![format!(
                        "could not fetch the policy from {server} ({why}); applying the policy cached at {}",
                        d["fetched_at"].as_str().unwrap_or("?")
                    )];
                    notes.extend(budget_notes(&d["answer"]));
                    (limits_of(&d["answer"]), notes)
                }
                None => (
                    Limits::default(),
                    vec![format!(
                        "could not fetch the policy from {server} ({why}) and none is cached; only local limits apply"
                    )],
                ),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn policy_answers_become_limits() {
        let l = limits_of(
            &json!({"policy": {"max_duration_s": 3600.0, "budget_kg_per_run": null, "budget_action": null}}),
        );
        assert_eq!(l.max_duration_s, Some(3600.0));
        assert_eq!(l.action, BudgetAction::Warn, "no budget: the user decides");
        let l = limits_of(&json!({"policy": {"budget_kg_per_run": 2.0}}));
        assert_eq!((l.budget_kg, l.action), (Some(2.0), BudgetAction::Stop));
        let l = limits_of(&json!({"policy": {"budget_kg_per_run": 2.0, "budget_action": "warn"}}));
        assert_eq!(l.action, BudgetAction::Warn);
        // Garbage is ignored, not applied.
        let l = limits_of(&json!({"policy": {"max_duration_s": -5.0, "budget_kwh_per_run": "x"}}));
        assert!(l.is_empty());
    }

    #[test]
    fn the_stricter_limit_wins() {
        let file = Limits {
            max_duration_s: Some(7200.0),
            budget_kg: Some(10.0),
            action: BudgetAction::Warn,
            ..Limits::default()
        };
        let server = Limits {
            max_duration_s: Some(3600.0),
            budget_kg: Some(50.0),
            budget_kwh: Some(3.0),
            action: BudgetAction::Stop,
            predict_stop: false,
        };
        let s = stricter(&file, &server);
        assert_eq!(s.max_duration_s, Some(3600.0));
        assert_eq!(s.budget_kg, Some(10.0));
        assert_eq!(s.budget_kwh, Some(3.0));
        assert_eq!(s.action, BudgetAction::Stop);
        assert_eq!(stricter(&Limits::default(), &server), server);
        let only_cap = Limits {
            max_duration_s: Some(1.0),
            action: BudgetAction::Warn,
            ..Limits::default()
        };
        assert_eq!(
            stricter(&Limits::default(), &only_cap).action,
            BudgetAction::Warn
        );
    }

    #[test]
    fn exhausted_budgets_give_a_note() {
        let notes = budget_notes(&json!({"budgets": [
            {"team": "physics", "project": null, "month": "2025-03", "kg_per_month": 10.0, "used_kg": 12.5, "exhausted": true},
            {"team": "physics", "project": "p", "month": "2025-03", "kg_per_month": 10.0, "used_kg": 1.0, "exhausted": false}
        ]}));
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].contains("team physics") && notes[0].contains("12.5 kg of 10.0 kg"),
            "{}",
            notes[0]
        );
    }
}
