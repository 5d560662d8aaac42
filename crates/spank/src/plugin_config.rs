//! The plugin's options, as plugstack.conf gives them (`KEY=VALUE` words after the plugin's
//! path), and the per-job `--wattprint=off|on`.
//!
//! ```text
//! required /usr/lib/wattprint/libwattprint_spank.so store=/var/lib/wattprint location=FR
//! ```
//!
//! A word that is not understood is said in slurmd's log and ignored: a plugin option never
//! fails a job.

use std::path::PathBuf;
use std::time::Duration;
use wattprint_core::units::parse_duration;

/// Longest token file read.
const MAX_TOKEN_BYTES: u64 = 4096;

/// What plugstack.conf says.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The node's site store (`store=`): a directory holding `wattprint.db` and the spool.
    pub store: Option<PathBuf>,
    /// The wattprint server records are sent to (`server=`).
    pub server: Option<String>,
    /// A file holding the server's API token (`token_file=`), readable by root only.
    pub token_file: Option<PathBuf>,
    /// Where the cluster is (`location=`: `FR`, `US-CA`, …).
    pub location: Option<String>,
    /// The site's policy file (`config=`, default `/etc/wattprint/config.toml`): its
    /// `[limits]` apply to every step.
    pub config: Option<PathBuf>,
    /// Root of `/sys` (`sysfs_root=`; tests point it at a fake powercap host).
    pub sysfs_root: Option<PathBuf>,
    /// The host ledger's directory (`runtime_dir=`).
    pub runtime_dir: Option<PathBuf>,
    /// Whether a job may say `--wattprint=off` (`allow_opt_out=yes|no`, default no).
    pub allow_opt_out: bool,
    /// Whether steps are measured when the job says nothing (`default=on|off`, default on).
    pub default_on: bool,
    /// Sampling interval (`interval=`, default the session's 1 s).
    pub interval: Option<Duration>,
    /// Caps and budgets of every step (`max_duration=`, `budget_kwh=`, `budget_kg=`), with
    /// the site policy's; `grace=` between the stop signal and `scancel` (default 60 s).
    pub max_duration: Option<Duration>,
    pub budget_kwh: Option<f64>,
    pub budget_kg: Option<f64>,
    pub grace: Option<Duration>,
    /// The project records are filed under (`project=`, default `slurm`).
    pub project: String,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            store: None,
            server: None,
            token_file: None,
            location: None,
            config: None,
            sysfs_root: None,
            runtime_dir: None,
            allow_opt_out: false,
            default_on: true,
            interval: None,
            max_duration: None,
            budget_kwh: None,
            budget_kg: None,
            grace: None,
            project: "slurm".to_string(),
        }
    }
}

fn yes_no(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" | "1" => Some(true),
        "no" | "off" | "false" | "0" => Some(false),
        _ => None,
    }
}

fn abs_path(v: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(v);
    if p.is_absolute() {
        Ok(p)
    } else {
        Err("must be an absolute path".to_string())
    }
}

fn positive(v: &str) -> Result<f64, String> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .ok_or_else(|| "must be a positive number".to_string())
}

fn duration(v: &str) -> Result<Duration, String> {
    parse_duration(v).map_err(|e| e.to_string())
}

impl PluginConfig {
    /// The options from plugstack.conf's words; every word not understood is a message for
    /// slurmd's log (and is ignored).
    pub fn parse<S: AsRef<str>>(args: &[S]) -> (PluginConfig, Vec<String>) {
        let mut c = PluginConfig::default();
        let mut problems = Vec::new();
        for a in args.iter().map(AsRef::as_ref) {
            let Some((k, v)) = a.split_once('=') else {
                problems.push(format!(
                    "plugstack.conf option `{a}` is not KEY=VALUE; ignored"
                ));
                continue;
            };
            let r: Result<(), String> = match k {
                "store" => abs_path(v).map(|p| c.store = Some(p)),
                "server" => {
                    c.server = Some(v.to_string());
                    Ok(())
                }
                "token_file" => abs_path(v).map(|p| c.token_file = Some(p)),
                "location" => {
                    c.location = Some(v.to_string());
                    Ok(())
                }
                "config" => abs_path(v).map(|p| c.config = Some(p)),
                "sysfs_root" => abs_path(v).map(|p| c.sysfs_root = Some(p)),
                "runtime_dir" => abs_path(v).map(|p| c.runtime_dir = Some(p)),
                "allow_opt_out" => yes_no(v)
                    .map(|b| c.allow_opt_out = b)
                    .ok_or_else(|| "must be yes or no".to_string()),
                "default" => yes_no(v)
                    .map(|b| c.default_on = b)
                    .ok_or_else(|| "must be on or off".to_string()),
                "interval" => duration(v).map(|d| c.interval = Some(d)),
                "max_duration" => duration(v).map(|d| c.max_duration = Some(d)),
                "grace" => duration(v).map(|d| c.grace = Some(d)),
                "budget_kwh" => positive(v).map(|x| c.budget_kwh = Some(x)),
                "budget_kg" => positive(v).map(|x| c.budget_kg = Some(x)),
                "project" => wattprint_core::job::check_key(v)
                    .map(|p| c.project = p)
                    .ok_or_else(|| "must be 1 to 128 letters, digits or -_.:@+=".to_string()),
                _ => Err("unknown option".to_string()),
            };
            if let Err(why) = r {
                problems.push(format!("plugstack.conf option `{a}`: {why}; ignored"));
            }
        }
        (c, problems)
    }

    /// The server's token from `token_file`, or why it cannot be used.
    pub fn token(&self) -> Option<Result<String, String>> {
        let p = self.token_file.as_ref()?;
        Some(read_token(p))
    }

    /// Whether a step is measured, given the job's `--wattprint` (if any); the note says why
    /// a job's choice was not followed.
    pub fn measured(&self, job_says: Option<bool>) -> (bool, Option<String>) {
        match job_says {
            Some(false) if !self.allow_opt_out => (
                true,
                Some(
                    "--wattprint=off ignored: this cluster measures every job (allow_opt_out=no)"
                        .to_string(),
                ),
            ),
            Some(on) => (on, None),
            None => (self.default_on, None),
        }
    }
}

/// `--wattprint`'s value.
pub fn parse_switch(v: &str) -> Option<bool> {
    match v.trim() {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

fn read_token(p: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let mut s = String::new();
    f.take(MAX_TOKEN_BYTES)
        .read_to_string(&mut s)
        .map_err(|e| format!("{}: {e}", p.display()))?;
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("{}: empty", p.display()));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plugstack_words_become_options_and_bad_words_are_said() {
        let (c, problems) = PluginConfig::parse(&[
            "store=/var/lib/wattprint",
            "location=FR",
            "allow_opt_out=yes",
            "budget_kwh=2.5",
            "max_duration=72h",
            "interval=50ms",
            "sysfs_root=relative/sys",
            "budget_kg=-1",
            "colour=blue",
            "plain",
        ]);
        assert_eq!(c.store, Some(PathBuf::from("/var/lib/wattprint")));
        assert_eq!(c.location.as_deref(), Some("FR"));
        assert!(c.allow_opt_out);
        assert_eq!(c.budget_kwh, Some(2.5));
        assert_eq!(c.max_duration, Some(Duration::from_secs(72 * 3600)));
        assert_eq!(c.interval, Some(Duration::from_millis(50)));
        assert_eq!(c.sysfs_root, None);
        assert_eq!(c.budget_kg, None);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(
            problems[0].contains("sysfs_root=relative/sys") && problems[0].contains("absolute")
        );
        assert!(problems[1].contains("positive"));
        assert!(problems[2].contains("unknown option"));
        assert!(problems[3].contains("KEY=VALUE"));
    }

    #[test]
    fn opting_out_needs_the_site_to_allow_it() {
        let strict = PluginConfig::default();
        let (on, note) = strict.measured(Some(false));
        assert!(on);
        assert!(note.unwrap().contains("allow_opt_out=no"));
        assert_eq!(strict.measured(None), (true, None));
        let lax = PluginConfig::parse(&["allow_opt_out=yes", "default=off"]).0;
        assert_eq!(lax.measured(Some(false)), (false, None));
        assert_eq!(lax.measured(None), (false, None));
        assert_eq!(lax.measured(Some(true)), (true, None));
        assert_eq!(parse_switch("off"), Some(false));
        assert_eq!(parse_switch("maybe"), None);
    }
}
