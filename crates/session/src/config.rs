//! Configuration files: the institution's (`/etc/wattprint/config.toml`, or
//! `$WATTPRINT_SYSTEM_CONFIG`) and the user's (`$WATTPRINT_CONFIG`, else
//! `$XDG_CONFIG_HOME/wattprint/config.toml`, else `~/.config/wattprint/config.toml`).
//!
//! Precedence for plain settings: command-line flag, then environment variable, then the user's
//! file, then the institution's. Limits are different: the institution's are ceilings a user
//! (file or flag) can only lower.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use wattprint_core::env::Env;
use wattprint_core::limits::{BudgetAction, Limits};
use wattprint_core::units::parse_duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// e.g. "72h"
    pub max_duration: Option<String>,
    pub budget_kwh: Option<f64>,
    pub budget_kg: Option<f64>,
    pub budget_action: Option<BudgetAction>,
    pub predict_stop: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where the machine is: `FR`, `US-CA`, `aws:eu-west-3`, ...
    pub location: Option<String>,
    pub project: Option<String>,
    /// Default sampling interval, e.g. "1s".
    pub interval: Option<String>,
    pub limits: Option<LimitsFile>,
    /// The wattprint server runs report to, e.g. `https://wattprint.example.org`
    /// (`wattprint run --server`, `wattprint agent`, `wattprint sync`; docs/agents.md).
    pub server: Option<String>,
    /// API token for the server (prefer `WATTPRINT_TOKEN`; a file holding it should be
    /// readable by its owner only).
    pub token: Option<String>,
}

/// Both files, as read.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub system: ConfigFile,
    pub system_path: Option<PathBuf>,
    pub user: ConfigFile,
    pub user_path: Option<PathBuf>,
    /// Files that could not be read (each said once per process): warnings to show.
    pub warnings: Vec<String>,
}

fn read(path: &Path, warnings: &mut Vec<String>) -> Result<Option<ConfigFile>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let c: ConfigFile = toml::from_str(&text).with_context(|| {
                format!(
                    "invalid configuration file {} (fix or remove it; see docs/caps-and-budgets.md)",
                    path.display()
                )
            })?;
            Ok(Some(c))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // Optional files: one that cannot be read (an unreadable $HOME, a path through a file,
        // a directory in its place) is a warning, never a reason not to run the job.
        Err(e) => {
            warnings.extend(skipped_once(path, &e));
            Ok(None)
        }
    }
}

/// A file skipped: said once per process (the files are read by several parts of a command),
/// as a warning for the front end to show. `None` when it was already said.
fn skipped_once(path: &Path, e: &std::io::Error) -> Option<String> {
    static WARNED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    if let Ok(mut w) = WARNED.lock() {
        if w.iter().any(|p| p == path) {
            return None;
        }
        w.push(path.to_path_buf());
    }
    Some(format!(
        "configuration file {} not read ({e}); going on without it",
        path.display()
    ))
}

pub fn system_path(env: &Env) -> PathBuf {
    env.path("WATTPRINT_SYSTEM_CONFIG")
        .unwrap_or_else(|| PathBuf::from("/etc/wattprint/config.toml"))
}

pub fn user_path(env: &Env) -> Option<PathBuf> {
    if let Some(p) = env.path("WATTPRINT_CONFIG") {
        return Some(p);
    }
    if let Some(x) = env.path("XDG_CONFIG_HOME") {
        return Some(x.join("wattprint/config.toml"));
    }
    env.path("HOME")
        .map(|h| h.join(".config/wattprint/config.toml"))
}

impl Config {
    pub fn load(env: &Env) -> Result<Config> {
        let sp = system_path(env);
        let mut c = Config::default();
        if let Some(f) = read(&sp, &mut c.warnings)? {
            c.system = f;
            c.system_path = Some(sp);
        }
        if let Some(up) = user_path(env) {
            if let Some(f) = read(&up, &mut c.warnings)? {
                c.user = f;
                c.user_path = Some(up);
            }
        }
        Ok(c)
    }

    pub fn location(&self) -> Option<String> {
        self.user
            .location
            .clone()
            .or_else(|| self.system.location.clone())
    }

    pub fn project(&self) -> Option<String> {
        self.user
            .project
            .clone()
            .or_else(|| self.system.project.clone())
    }

    pub fn interval(&self) -> Option<String> {
        self.user
            .interval
            .clone()
            .or_else(|| self.system.interval.clone())
    }

    /// The server URL from the files (the user's first).
    pub fn server(&self) -> Option<String> {
        self.user
            .server
            .clone()
            .or_else(|| self.system.server.clone())
            .filter(|s| !s.trim().is_empty())
    }

    /// The server token from the files (the user's first), with the file it came from.
    pub fn token(&self) -> Option<(String, Option<PathBuf>)> {
        match (&self.user.token, &self.system.token) {
            (Some(t), _) if !t.trim().is_empty() => {
                Some((t.trim().to_string(), self.user_path.clone()))
            }
            (_, Some(t)) if !t.trim().is_empty() => {
                Some((t.trim().to_string(), self.system_path.clone()))
            }
            _ => None,
        }
    }

    pub fn institution_limits(&self) -> Result<Limits> {
        limits_of(self.system.limits.as_ref(), self.system_path.as_deref())
    }

    pub fn user_limits(&self) -> Result<Limits> {
        limits_of(self.user.limits.as_ref(), self.user_path.as_deref())
    }
}

fn limits_of(f: Option<&LimitsFile>, path: Option<&Path>) -> Result<Limits> {
    let Some(f) = f else {
        return Ok(Limits::default());
    };
    let where_ = || {
        path.map(|p| p.display().to_string())
            .unwrap_or_else(|| "configuration".into())
    };
    let max_duration_s = match &f.max_duration {
        Some(d) => Some(
            parse_duration(d)
                .map_err(|e| anyhow::anyhow!("{}: limits.max_duration: {e}", where_()))?
                .as_secs_f64(),
        ),
        None => None,
    };
    for (name, v) in [("budget_kwh", f.budget_kwh), ("budget_kg", f.budget_kg)] {
        if let Some(x) = v {
            if !(x.is_finite() && x > 0.0) {
                anyhow::bail!(
                    "{}: limits.{name} = {x}: must be a positive number",
                    where_()
                );
            }
        }
    }
    Ok(Limits {
        max_duration_s,
        budget_kwh: f.budget_kwh,
        budget_kg: f.budget_kg,
        action: f.budget_action.unwrap_or_default(),
        predict_stop: f.predict_stop.unwrap_or(false),
    })
}
