//! What a front end asks of a session, validated before anything starts.
//!
//! Validation is pure: it reads no file and no environment. An error names the option's
//! field and the value given; each front end renders it in its own words (`--budget-kwh` on
//! the command line, `budget_kwh=` in Python) with [`OptionError::render`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use wattprint_core::limits::BudgetAction;
use wattprint_core::sampler::{Scope, MIN_INTERVAL};

use crate::provider_config::ProviderKind;

/// An option with a value it cannot take.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{} {}: {}", self.flag(), self.value, self.reason)]
pub struct OptionError {
    /// The field, in snake case (`budget_kwh`).
    pub field: &'static str,
    /// The value given, as text.
    pub value: String,
    /// Why it cannot be used, and what would do.
    pub reason: String,
}

impl OptionError {
    pub fn new(field: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        OptionError {
            field,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// The command-line spelling of the field: `--budget-kwh`.
    pub fn flag(&self) -> String {
        format!("--{}", self.field.replace('_', "-"))
    }

    /// The message with the field spelled as `name` (a flag, a keyword argument, ...).
    pub fn render(&self, name: &str) -> String {
        format!("{name} {}: {}", self.value, self.reason)
    }
}

/// Where the run happens and the factors that follow (see [`crate::carbon`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CarbonOptions {
    /// ISO country, zone, cloud region, or `detect` (opt-in metadata lookup).
    pub location: Option<String>,
    /// ISO country code (same as a location).
    pub country: Option<String>,
    /// gCO2e/kWh overriding the location's.
    pub intensity: Option<f64>,
    /// Facility PUE overriding the location's.
    pub pue: Option<f64>,
}

/// Caps and budgets the user asks for (the institution's are combined with them at start).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitOptions {
    pub max_duration: Option<Duration>,
    pub budget_kwh: Option<f64>,
    pub budget_kg: Option<f64>,
    pub budget_action: Option<BudgetAction>,
    pub predict_stop: bool,
    /// For predictions, when the job reports no progress.
    pub expected_duration: Option<Duration>,
    /// Signal asking the job to stop; SIGKILL follows after `grace`.
    pub stop_signal: i32,
    pub grace: Duration,
}

impl Default for LimitOptions {
    fn default() -> Self {
        LimitOptions {
            max_duration: None,
            budget_kwh: None,
            budget_kg: None,
            budget_action: None,
            predict_stop: false,
            expected_duration: None,
            stop_signal: libc::SIGTERM,
            grace: Duration::from_secs(60),
        }
    }
}

/// Everything a measured run needs to know before it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// `None`: `$WATTPRINT_PROJECT`, else the configuration file's, else `default`.
    pub project: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub scope: Scope,
    /// `None`: the configuration file's, else 1 s.
    pub interval: Option<Duration>,
    pub carbon: CarbonOptions,
    /// CPU TDP per package for the CPU model (W).
    pub cpu_tdp_w: Option<f64>,
    /// libnvidia-ml path (`None`: `$WATTPRINT_NVML_LIBRARY`, else the system's).
    pub nvml_library: Option<PathBuf>,
    /// libamd_smi path (`None`: `$WATTPRINT_AMDSMI_LIBRARY`, else the system's).
    pub amdsmi_library: Option<PathBuf>,
    pub limits: LimitOptions,
    /// Share (0, 1] of the machine's embodied emissions.
    pub embodied_share: Option<f64>,
    /// Cloud instance type (`m5.large`, `aws:m5.large`, `Standard_NC24`): embodied emissions of
    /// its host platform × its vCPU share (Cloud Carbon Footprint), instead of the server seen
    /// from inside the guest.
    pub instance_type: Option<String>,
    pub no_embodied: bool,
    /// Live intensity provider (`None`: as configured by the environment).
    pub provider: Option<ProviderKind>,
    pub zone: Option<String>,
    /// Server URL (`None`: `$WATTPRINT_SERVER`, else the configuration file's).
    pub server: Option<String>,
    /// What is measured, for the record (the job's command line, or a description).
    pub command: Vec<String>,
    /// How often the running record is saved (≤ 10 s so a crash loses at most that).
    pub checkpoint_every: Option<Duration>,
    /// Someone reads the run's figures while it goes (a live line; an API such as Python's):
    /// they are then refreshed every interval. Without it and without limits, the limit
    /// watcher and the I/O reader look at the checkpoint cadence, and a run that shares the
    /// host while another participant reads the host ledger takes its share at that cadence
    /// too (its energy is the same; its series is coarser).
    pub live: bool,
    /// The job this run is part of (`None`: derived from the launcher's environment, see
    /// [`wattprint_core::job`]).
    pub job: Option<String>,
    /// Nodes the job runs on (`None`: from the launcher's environment).
    pub job_nodes: Option<u32>,
    /// The model, stage, sweep, trial and base model the run declares (what is unset is
    /// detected from the launcher's environment at start, see [`wattprint_core::lineage`]).
    pub lineage: wattprint_core::lineage::Lineage,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            project: None,
            tags: BTreeMap::new(),
            scope: Scope::Machine,
            interval: None,
            carbon: CarbonOptions::default(),
            cpu_tdp_w: None,
            nvml_library: None,
            amdsmi_library: None,
            limits: LimitOptions::default(),
            embodied_share: None,
            instance_type: None,
            no_embodied: false,
            provider: None,
            zone: None,
            server: None,
            command: Vec::new(),
            checkpoint_every: None,
            live: true,
            job: None,
            job_nodes: None,
            lineage: Default::default(),
        }
    }
}

/// Shortest and longest checkpoint cadence.
pub const CHECKPOINT_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(10));

fn positive(field: &'static str, v: Option<f64>, reason: &str) -> Result<(), OptionError> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => Err(OptionError::new(field, x, reason)),
        _ => Ok(()),
    }
}

/// `key=value` pairs into tags (`key` not blank).
pub fn parse_tags<S: AsRef<str>>(tags: &[S]) -> Result<BTreeMap<String, String>, OptionError> {
    let mut out = BTreeMap::new();
    for t in tags {
        let t = t.as_ref();
        match t.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.insert(k.trim().to_string(), v.to_string());
            }
            _ => {
                return Err(OptionError::new(
                    "tag",
                    format!("`{t}`"),
                    "expected KEY=VALUE, e.g. lr=3e-4",
                ))
            }
        }
    }
    Ok(out)
}

/// Longest sampling interval: a run is checkpointed at least every 10 s whatever the interval,
/// and a longer one would only coarsen the series (and, unbounded, overflow the schedule).
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// An interval between the sampler's minimum (10 ms) and [`MAX_INTERVAL`] (1 h).
pub fn check_interval(d: Duration, given: &str) -> Result<Duration, OptionError> {
    if d < MIN_INTERVAL {
        return Err(OptionError::new(
            "interval",
            given,
            "is below the minimum of 10ms; use e.g. 10ms or more",
        ));
    }
    if d > MAX_INTERVAL {
        return Err(OptionError::new(
            "interval",
            given,
            "is above the maximum of 1h; use e.g. 1s (the default) to 1h",
        ));
    }
    Ok(d)
}

impl RunOptions {
    /// The cloud instance type's embodied entry, `None` without one; an error for a type the
    /// shipped table does not know (give `embodied_share` for those).
    pub fn instance(
        &self,
    ) -> Result<Option<&'static wattprint_core::factors::instances::InstanceEmbodied>, OptionError>
    {
        let Some(t) = &self.instance_type else {
            return Ok(None);
        };
        let (p, name) = match t.split_once(':') {
            Some((p, n)) if ["aws", "azure", "gcp"].contains(&p.to_ascii_lowercase().as_str()) => {
                (Some(p), n)
            }
            _ => (None, t.as_str()),
        };
        wattprint_core::factors::instances::find_instance(p, name)
            .map(Some)
            .ok_or_else(|| {
                OptionError::new(
                    "instance_type",
                    t.chars().take(80).collect::<String>(),
                    "is not in the shipped Cloud Carbon Coefficients instance table (AWS, Azure, GCP); give the embodied share instead (e.g. vCPUs / host threads)",
                )
            })
    }

    /// Check every value that does not depend on the machine or the files.
    pub fn validate(&self) -> Result<(), OptionError> {
        if let Some(i) = self.interval {
            check_interval(i, &format!("{i:?}"))?;
        }
        positive(
            "budget_kwh",
            self.limits.budget_kwh,
            "a budget must be a positive number",
        )?;
        positive(
            "budget_kg",
            self.limits.budget_kg,
            "a budget must be a positive number",
        )?;
        if self.limits.max_duration.is_some_and(|d| d.is_zero()) {
            return Err(OptionError::new(
                "max_duration",
                "0",
                "must be longer than zero, e.g. 72h",
            ));
        }
        if let Some(f) = self.embodied_share {
            if !(f.is_finite() && f > 0.0 && f <= 1.0) {
                return Err(OptionError::new(
                    "embodied_share",
                    f,
                    "must be a fraction in (0, 1], e.g. 0.125 for 8 of 64 threads",
                ));
            }
        }
        self.instance()?;
        if self.instance_type.is_some() && self.no_embodied {
            return Err(OptionError::new(
                "instance_type",
                self.instance_type.clone().unwrap_or_default(),
                "cannot be combined with no_embodied",
            ));
        }
        if let Some(j) = &self.job {
            if wattprint_core::job::check_key(j).is_none() {
                return Err(OptionError::new(
                    "job",
                    j,
                    "a job key is 1 to 128 letters, digits and - _ . : @ + =",
                ));
            }
        }
        if let Err(e) = self.lineage.check() {
            let l = &self.lineage;
            let (field, value) = match e.path.as_str() {
                "lineage.model" => ("model", l.model.clone()),
                "lineage.sweep" => ("sweep", l.sweep.clone()),
                "lineage.trial" => ("trial", l.trial.clone()),
                "lineage.base_model" => ("base_model", l.base_model.clone()),
                _ => ("objective", l.objective.as_ref().map(|o| o.name.clone())),
            };
            let value: String = value.unwrap_or_default().chars().take(80).collect();
            return Err(OptionError::new(field, format!("{value:?}"), e.reason));
        }
        if let Some(n) = self.job_nodes {
            if n == 0 || n as usize > wattprint_core::job::MAX_NODES {
                return Err(OptionError::new(
                    "nodes",
                    n,
                    "the job's node count must be between 1 and 4096",
                ));
            }
        }
        if self.embodied_share.is_some() && self.no_embodied {
            return Err(OptionError::new(
                "embodied_share",
                self.embodied_share.unwrap_or_default(),
                "cannot be combined with no_embodied",
            ));
        }
        positive(
            "cpu_tdp",
            self.cpu_tdp_w,
            "must be a positive number of watts",
        )?;
        if let Some(g) = self.carbon.intensity {
            if !(g.is_finite() && g >= 0.0) {
                return Err(OptionError::new(
                    "intensity",
                    g,
                    "must be a non-negative number of gCO2e/kWh, e.g. 56",
                ));
            }
        }
        if let Some(p) = self.carbon.pue {
            if !(p.is_finite() && p >= 1.0) {
                return Err(OptionError::new(
                    "pue",
                    p,
                    "a PUE is a ratio of at least 1.0, e.g. 1.2",
                ));
            }
        }
        if let Some(c) = self.checkpoint_every {
            if c < CHECKPOINT_RANGE.0 || c > CHECKPOINT_RANGE.1 {
                return Err(OptionError::new(
                    "checkpoint_every",
                    format!("{c:?}"),
                    "must be between 100ms and 10s",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field_and_value_in_each_front_ends_words() {
        let mut o = RunOptions::default();
        o.limits.budget_kwh = Some(-1.0);
        let e = o.validate().unwrap_err();
        assert_eq!(e.field, "budget_kwh");
        assert_eq!(e.value, "-1");
        assert_eq!(
            e.to_string(),
            "--budget-kwh -1: a budget must be a positive number"
        );
        assert_eq!(
            e.render("budget_kwh="),
            "budget_kwh= -1: a budget must be a positive number"
        );
        let o = RunOptions {
            embodied_share: Some(1.5),
            ..Default::default()
        };
        assert_eq!(o.validate().unwrap_err().field, "embodied_share");
        let mut o = RunOptions::default();
        o.carbon.pue = Some(0.9);
        assert_eq!(o.validate().unwrap_err().field, "pue");
        let o = RunOptions {
            interval: Some(Duration::from_millis(5)),
            ..Default::default()
        };
        assert_eq!(o.validate().unwrap_err().field, "interval");
        // a huge interval would overflow the sampler's schedule
        let o = RunOptions {
            interval: Some(Duration::from_secs(u64::MAX)),
            ..Default::default()
        };
        assert_eq!(o.validate().unwrap_err().field, "interval");
        let mut o = RunOptions::default();
        o.limits.max_duration = Some(Duration::ZERO);
        assert_eq!(o.validate().unwrap_err().field, "max_duration");
        assert!(RunOptions::default().validate().is_ok());
    }

    #[test]
    fn tags_need_a_key() {
        assert_eq!(parse_tags(&["a=1", "b="]).unwrap().len(), 2);
        assert_eq!(parse_tags(&["=1"]).unwrap_err().field, "tag");
        assert_eq!(parse_tags(&["x"]).unwrap_err().field, "tag");
    }
}
