//! The Hugging Face model card `co2_eq_emissions` block (YAML, for the README's front matter).
//!
//! Keys as documented by Hugging Face (`hub-docs`, model-cards-co2): `emissions` (a number, in
//! **grams** of CO2e), `source`, `training_type` ("pre-training" or "fine-tuning"),
//! `geographical_location`, `hardware_used`. Strings are written double-quoted with JSON
//! escapes, which YAML reads the same way.

use super::{hardware_summary, location_text, methods_of, Report, Subject};
use anyhow::Result;
use std::fmt::Write;
use wattprint_core::record::RunRecord;

/// Options of the model-card format.
#[derive(Debug, Clone, Default)]
pub struct CardOptions {
    /// `--training-type`; else the runs' `training_type` tag when they agree.
    pub training_type: Option<String>,
}

/// Grams as written in the card: 2 decimals from 1 g up, 6 below (a short test run is mg).
pub fn fmt_grams(g: f64) -> String {
    if g.abs() >= 1.0 {
        format!("{g:.2}")
    } else {
        let s = format!("{g:.6}");
        if s == "-0.000000" {
            "0.000000".into()
        } else {
            s
        }
    }
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn distinct(v: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in v {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The YAML block.
pub fn render(r: &Report, opts: &CardOptions) -> Result<String> {
    let runs: Vec<&RunRecord> = match &r.subject {
        Subject::Run(run) => vec![&run.record],
        Subject::Project(p) => p.runs.iter().collect(),
    };
    let what = match &r.subject {
        Subject::Run(run) => format!(
            "run {} of project {} ({})",
            run.record.id,
            run.record.project,
            run.record.status.as_str()
        ),
        Subject::Project(p) => format!(
            "{} runs of {} ({} failed or killed, counted: their emissions are part of the work)",
            p.totals.runs,
            p.project
                .as_deref()
                .map(|n| format!("project {n}"))
                .unwrap_or_else(|| "all projects".into()),
            p.totals.wasted_runs
        ),
    };
    card(&runs, r.version, &what, &[], opts)
}

/// The YAML block for `runs`, described as `what`, with `notes` as further comment lines.
pub fn card(
    runs: &[&RunRecord],
    version: &str,
    what: &str,
    notes: &[String],
    opts: &CardOptions,
) -> Result<String> {
    let kg: f64 = runs.iter().map(|x| x.emissions_kg.total).sum();
    let grams = kg * 1000.0;
    // Methods per component over all runs: `cpu rapl, ram rapl-dram`.
    let methods = distinct(runs.iter().flat_map(|x| {
        methods_of(x)
            .split(", ")
            .map(str::to_string)
            .collect::<Vec<_>>()
    }));
    let source = format!("wattprint {}, {}", version, methods.join(", "));
    let location = distinct(
        runs.iter()
            .map(|x| location_text(&x.location.code, &x.location.name, x.location.known)),
    )
    .join("; ");
    let hardware = hardware_summary(runs.iter().copied());
    let training_type = match &opts.training_type {
        Some(t) => {
            let t = t.trim();
            if t.is_empty() {
                anyhow::bail!(
                    "--training-type is empty; give e.g. --training-type pre-training or --training-type fine-tuning"
                );
            }
            Some(t.to_string())
        }
        None => {
            let tags = distinct(
                runs.iter()
                    .map(|x| x.tags.get("training_type").cloned().unwrap_or_default()),
            );
            match tags.as_slice() {
                [one] if !one.trim().is_empty() => Some(one.trim().to_string()),
                _ => None,
            }
        }
    };
    let mut o = String::new();
    // Comments are single lines: strip line breaks from user text.
    let what: String = what
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let _ = writeln!(
        o,
        "# Hugging Face model card metadata by wattprint {}: paste into the README's YAML front matter.",
        version
    );
    // "not counted" is said, never folded in as a zero
    let not_counted = runs
        .iter()
        .filter(|x| !x.emissions_kg.embodied_counted)
        .count();
    let parts = if not_counted == 0 {
        "operational + embodied".to_string()
    } else if not_counted == runs.len() {
        "operational; embodied not counted".to_string()
    } else {
        format!(
            "operational + embodied; embodied not counted for {not_counted} of {} runs",
            runs.len()
        )
    };
    let _ = writeln!(o, "# {what}; emissions in grams CO2e ({parts}).");
    for n in notes {
        let line: String = n
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let _ = writeln!(o, "# {line}");
    }
    let _ = writeln!(o, "co2_eq_emissions:");
    let _ = writeln!(o, "  emissions: {}", fmt_grams(grams));
    let _ = writeln!(o, "  source: {}", q(&source));
    match training_type {
        Some(t) => {
            let _ = writeln!(o, "  training_type: {}", q(&t));
        }
        None => {
            let _ = writeln!(
                o,
                "  # training_type: \"pre-training\" or \"fine-tuning\": set it with --training-type or the run tag training_type"
            );
        }
    }
    let _ = writeln!(o, "  geographical_location: {}", q(&location));
    let _ = writeln!(o, "  hardware_used: {}", q(&hardware));
    Ok(o)
}

/// The block for a model's whole footprint (`report --model NAME --format model-card`): every
/// development run (final training, preparation, tuning, evaluation, debug, failed runs;
/// inference is not training and is left out), with the share of preparation, the final
/// training and the overhead ratio stated. `runs` are the model's runs.
pub fn render_model(
    fp: &crate::model_footprint::ModelFootprint,
    runs: &[RunRecord],
    version: &str,
    opts: &CardOptions,
) -> Result<String> {
    use wattprint_core::format::{percent, sig};
    use wattprint_core::lineage::Stage;
    let dev: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| r.lineage.as_ref().and_then(|l| l.stage) != Some(Stage::Inference))
        .collect();
    if dev.is_empty() {
        anyhow::bail!(
            "model `{}` has only inference runs: there is no training footprint to state",
            fp.model
        );
    }
    let what = format!(
        "the whole footprint of model {}: {} runs, final training and every preparation, tuning, evaluation, debug and failed run ({} failed or killed; inference left out)",
        fp.model,
        dev.len(),
        fp.failed.runs
    );
    let mut notes = Vec::new();
    notes.push(match fp.preparation_share {
        Some(s) => format!("preparation: {} of these emissions", percent(s)),
        None => "preparation share: unknown (no emissions)".to_string(),
    });
    notes.push(match (&fp.final_training, fp.overhead_ratio) {
        (Some(f), Some(x)) => format!(
            "final training {} g ({}); everything else is {}x the final training",
            fmt_grams(f.emissions_kg * 1000.0),
            fp.final_rule,
            sig(x)
        ),
        _ => format!("final training: {}; overhead ratio unknown", fp.final_rule),
    });
    if let Some(b) = &fp.base_model {
        notes.push(match &b.reused {
            Some(c) => format!(
                "base model {} reused, not counted here: its development emitted {} g",
                b.name,
                fmt_grams(c.emissions_kg * 1000.0)
            ),
            None => format!(
                "base model {} reused, not counted here (its footprint is not in this store)",
                b.name
            ),
        });
    }
    let mut opts = opts.clone();
    if opts.training_type.is_none() && fp.base_model.is_some() {
        opts.training_type = Some("fine-tuning".into());
    }
    card(&dev, version, &what, &notes, &opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grams_format() {
        assert_eq!(fmt_grams(85155.84), "85155.84");
        assert_eq!(fmt_grams(0.0123456789), "0.012346");
        assert_eq!(fmt_grams(0.0), "0.000000");
    }

    #[test]
    fn quoting_is_yaml_double_quoted() {
        assert_eq!(q("a \"b\" \\ c"), r#""a \"b\" \\ c""#);
        assert_eq!(q("x\ny"), r#""x\ny""#);
    }
}
