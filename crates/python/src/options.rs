//! Python keyword arguments → the session's [`RunOptions`], with errors in Python's words
//! (`budget_kwh=-1: a budget must be a positive number`).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use wattprint_core::limits::BudgetAction;
use wattprint_core::sampler::Scope;
use wattprint_core::units::parse_duration;
use wattprint_session::monitor::parse_signal;
use wattprint_session::options::{parse_tags, OptionError, RunOptions};
use wattprint_session::provider_config::ProviderKind;

/// The options a `Tracker` passes down (the Python layer names them; anything else is a bug
/// there, refused here).
pub const KNOWN: &[&str] = &[
    "project",
    "tags",
    "scope",
    "interval",
    "location",
    "country",
    "intensity",
    "pue",
    "cpu_tdp",
    "nvml_library",
    "amdsmi_library",
    "max_duration",
    "budget_kwh",
    "budget_kg",
    "budget_action",
    "predict_stop",
    "expected_duration",
    "stop_signal",
    "grace",
    "embodied_share",
    "no_embodied",
    "provider",
    "zone",
    "server",
    "command",
    "checkpoint_every",
    "model",
    "produces",
    "stage",
    "sweep",
    "trial",
    "base_model",
    "final",
    "objective",
    "detected",
];

/// An option error as Python's `ValueError`, naming the keyword argument.
pub fn value_error(e: &OptionError) -> PyErr {
    PyValueError::new_err(e.render(&format!("{}=", e.field)))
}

fn bad(field: &'static str, v: impl ToString, reason: &str) -> PyErr {
    value_error(&OptionError::new(field, v, reason))
}

/// A duration: seconds as a number, or text such as `90s`, `72h`.
fn duration(field: &'static str, v: &Bound<'_, PyAny>) -> PyResult<Duration> {
    if let Ok(s) = v.downcast::<PyString>() {
        let s: String = s.extract()?;
        return parse_duration(&s).map_err(|e| bad(field, &s, &e.to_string()));
    }
    let x: f64 = v.extract().map_err(|_| {
        PyTypeError::new_err(format!("{field}= takes seconds or text like \"90s\""))
    })?;
    Duration::try_from_secs_f64(x)
        .map_err(|_| bad(field, x, "must be a non-negative number of seconds"))
}

fn opt<'py, T: FromPyObject<'py>>(d: &Bound<'py, PyDict>, k: &str) -> PyResult<Option<T>> {
    match d.get_item(k)? {
        Some(v) if !v.is_none() => v
            .extract()
            .map(Some)
            .map_err(|e| PyTypeError::new_err(format!("{k}=: {e}"))),
        _ => Ok(None),
    }
}

fn opt_duration(d: &Bound<'_, PyDict>, k: &'static str) -> PyResult<Option<Duration>> {
    match d.get_item(k)? {
        Some(v) if !v.is_none() => duration(k, &v).map(Some),
        _ => Ok(None),
    }
}

/// The session's options from the keyword arguments in `d`.
pub fn run_options(d: &Bound<'_, PyDict>) -> PyResult<RunOptions> {
    for k in d.keys() {
        let k: String = k.extract()?;
        if !KNOWN.contains(&k.as_str()) {
            return Err(PyTypeError::new_err(format!("unknown option {k}=")));
        }
    }
    let mut o = RunOptions {
        project: opt(d, "project")?,
        ..Default::default()
    };
    if let Some(tags) = opt::<BTreeMap<String, String>>(d, "tags")? {
        let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        o.tags = parse_tags(&pairs).map_err(|e| value_error(&e))?;
    }
    if let Some(s) = opt::<String>(d, "scope")? {
        o.scope = match s.as_str() {
            "machine" => Scope::Machine,
            "process" => Scope::Process,
            _ => return Err(bad("scope", s, "must be \"machine\" or \"process\"")),
        };
    }
    o.interval = opt_duration(d, "interval")?;
    o.carbon.location = opt(d, "location")?;
    o.carbon.country = opt(d, "country")?;
    o.carbon.intensity = opt(d, "intensity")?;
    o.carbon.pue = opt(d, "pue")?;
    o.cpu_tdp_w = opt(d, "cpu_tdp")?;
    o.nvml_library = opt::<PathBuf>(d, "nvml_library")?;
    o.amdsmi_library = opt::<PathBuf>(d, "amdsmi_library")?;
    o.limits.max_duration = opt_duration(d, "max_duration")?;
    o.limits.budget_kwh = opt(d, "budget_kwh")?;
    o.limits.budget_kg = opt(d, "budget_kg")?;
    if let Some(a) = opt::<String>(d, "budget_action")? {
        o.limits.budget_action = Some(match a.as_str() {
            "warn" => BudgetAction::Warn,
            "stop" => BudgetAction::Stop,
            _ => return Err(bad("budget_action", a, "must be \"warn\" or \"stop\"")),
        });
    }
    o.limits.predict_stop = opt(d, "predict_stop")?.unwrap_or(false);
    o.limits.expected_duration = opt_duration(d, "expected_duration")?;
    if let Some(s) = opt::<String>(d, "stop_signal")? {
        o.limits.stop_signal = parse_signal(&s).map_err(|e| bad("stop_signal", &s, &e))?;
    }
    if let Some(g) = opt_duration(d, "grace")? {
        o.limits.grace = g;
    }
    o.embodied_share = opt(d, "embodied_share")?;
    o.no_embodied = opt(d, "no_embodied")?.unwrap_or(false);
    if let Some(p) = opt::<String>(d, "provider")? {
        o.provider = ProviderKind::parse(&p).ok_or_else(|| {
            bad(
                "provider",
                &p,
                "must be electricitymaps, uk, watttime or none",
            )
        })?;
    }
    o.zone = opt(d, "zone")?;
    o.server = opt(d, "server")?;
    o.command = opt(d, "command")?.unwrap_or_default();
    o.checkpoint_every = opt_duration(d, "checkpoint_every")?;
    o.lineage = lineage(d)?;
    o.validate().map_err(|e| value_error(&e))?;
    Ok(o)
}

/// `model=` (or `produces=`), `stage=`, `sweep=`, `trial=`, `base_model=`, `final=`,
/// `objective=` ("val_loss=0.31:min"), and `detected=` ({field: (value, source)}: what the
/// Python side found in a launcher's context, e.g. Ray Tune's trial id).
fn lineage(d: &Bound<'_, PyDict>) -> PyResult<wattprint_core::lineage::Lineage> {
    use wattprint_core::lineage::{parse_objective, Lineage, Stage};
    let model: Option<String> = opt(d, "model")?;
    let produces: Option<String> = opt(d, "produces")?;
    if model.is_some() && produces.is_some() && model != produces {
        return Err(bad(
            "produces",
            produces.unwrap_or_default(),
            "is another name for model=; give one of them",
        ));
    }
    let stage = match opt::<String>(d, "stage")? {
        Some(s) => Some(Stage::parse(&s).ok_or_else(|| {
            bad(
                "stage",
                &s,
                "must be preparation, tuning, training, evaluation, inference or debug",
            )
        })?),
        None => None,
    };
    // A trial may be given as a number.
    let trial = match d.get_item("trial")? {
        Some(v) if !v.is_none() => Some(match v.extract::<i64>() {
            Ok(n) => n.to_string(),
            Err(_) => v
                .extract::<String>()
                .map_err(|_| PyTypeError::new_err("trial=: takes a number or a trial id"))?,
        }),
        _ => None,
    };
    let mut l = Lineage {
        model: model.or(produces),
        stage,
        sweep: opt(d, "sweep")?,
        trial,
        base_model: opt(d, "base_model")?,
        is_final: opt(d, "final")?.unwrap_or(false),
        objective: opt::<String>(d, "objective")?
            .map(|o| parse_objective(&o).map_err(|e| bad("objective", &o, &e)))
            .transpose()?,
        sources: Default::default(),
    };
    if let Some(found) = opt::<BTreeMap<String, (String, String)>>(d, "detected")? {
        for (field, (value, source)) in found {
            l.detected(&field, &value, &source);
        }
        if l.sweep.is_some() && l.stage.is_none() {
            l.stage = Some(Stage::Tuning);
        }
    }
    Ok(l)
}
