//! One measured step on one node: a wattprint session inside slurmstepd, from the step's
//! start (`slurm_spank_init_post_opt`) to its end (`slurm_spank_exit`).
//!
//! - The job key is the one `wattprint run` derives inside the step (`slurm:JOB.STEP`, and
//!   `slurm:JOB` for the batch step, whose environment has no `SLURM_STEP_ID`), through the same
//!   function ([`wattprint_core::job::from_env`]): a `wattprint run` in a measured step joins
//!   the host ledger as a rank of the plugin's job and is charged nothing again.
//! - The plugin joins as local rank 0 before any task starts, so it leads its job on the node.
//! - The measured process tree is slurmstepd's: its children are the step's tasks.
//! - The session sees the job's Slurm variables (allocated CPUs, GPUs, nodes), never the
//!   user's `WATTPRINT_*` settings: the site's options decide what is measured and where the
//!   records go.

use crate::ffi::SLURM_BATCH_SCRIPT;
use crate::plugin_config::PluginConfig;
use crate::slurm_log::{self, Tasks};
use crate::step_stopper::StepStopper;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use wattprint_core::env::Env;
use wattprint_core::record::{Ending, RunStatus};
use wattprint_core::sampler::Scope;
use wattprint_session::messages::Messages;
use wattprint_session::options::RunOptions;
use wattprint_session::session::{Finished, Prepared, SelfUsage, Session, SessionContext};

/// Most variables taken from the job's environment.
pub const MAX_ENV: usize = 4096;

/// What slurmstepd tells the plugin about the step.
#[derive(Debug, Clone)]
pub struct StepInfo {
    pub job_id: u32,
    /// Slurm's step id (`SLURM_BATCH_SCRIPT` for the batch step).
    pub step_id: u32,
    /// The job's environment.
    pub job_env: Vec<(String, String)>,
}

impl StepInfo {
    /// Whether this step is measured: the batch step and ordinary steps; not the extern
    /// step (it holds no work of the job's).
    pub fn measurable(&self) -> bool {
        // Ordinary step ids are far below Slurm's special ones (0xfffffff0 and up).
        self.step_id < 0xffff_fff0
            || self.step_id == SLURM_BATCH_SCRIPT
            || self.step_id == crate::ffi::SLURM_INTERACTIVE_STEP
    }

    pub fn is_batch(&self) -> bool {
        self.step_id == SLURM_BATCH_SCRIPT
    }

    /// `SLURM_STEP_ID` as the step's tasks see it (none in the batch script).
    pub fn step_env(&self) -> Option<String> {
        if self.is_batch() {
            None
        } else if self.step_id == crate::ffi::SLURM_INTERACTIVE_STEP {
            Some("interactive".to_string())
        } else {
            Some(self.step_id.to_string())
        }
    }

    /// The job key, exactly as `wattprint run` derives it inside this step.
    pub fn job_key(&self) -> Option<String> {
        let mut pairs = vec![("SLURM_JOB_ID".to_string(), self.job_id.to_string())];
        if let Some(s) = self.step_env() {
            pairs.push(("SLURM_STEP_ID".to_string(), s));
        }
        wattprint_core::job::from_env(&Env::from_pairs(pairs))
    }

    /// `JOB.STEP` (`JOB.batch`) for messages.
    pub fn name(&self) -> String {
        format!(
            "{}.{}",
            self.job_id,
            self.step_env().unwrap_or_else(|| "batch".to_string())
        )
    }
}

/// The environment the session sees: the job's Slurm and GPU variables (not the user's
/// `WATTPRINT_*`, nor anything else of theirs), then the site's options.
pub fn session_env(cfg: &PluginConfig, info: &StepInfo) -> Env {
    let mut vars: BTreeMap<String, String> = info
        .job_env
        .iter()
        .filter(|(k, _)| {
            (k.starts_with("SLURM_") && k != "SLURM_LOCALID")
                || k == "CUDA_VISIBLE_DEVICES"
                || k == "GPU_DEVICE_ORDINAL"
        })
        .take(MAX_ENV)
        .cloned()
        .collect();
    vars.insert("SLURM_JOB_ID".into(), info.job_id.to_string());
    // Rank 0 on the node, joined before any task: the plugin leads its job here.
    vars.insert("SLURM_LOCALID".into(), "0".into());
    match info.step_env() {
        Some(s) => vars.insert("SLURM_STEP_ID".into(), s),
        None => vars.remove("SLURM_STEP_ID"),
    };
    // The GPUs Slurm gave the step, when the job's environment does not name them yet.
    if !vars.contains_key("CUDA_VISIBLE_DEVICES") {
        if let Some(g) = vars
            .get("SLURM_STEP_GPUS")
            .or_else(|| vars.get("SLURM_JOB_GPUS"))
            .cloned()
        {
            vars.insert("CUDA_VISIBLE_DEVICES".into(), g);
        }
    }
    let mut env = Env::from_pairs(vars);
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            env.set(k, v);
        }
    };
    set(
        "WATTPRINT_HOME",
        cfg.store.as_ref().map(|p| p.display().to_string()),
    );
    set(
        "WATTPRINT_SYSFS_ROOT",
        cfg.sysfs_root.as_ref().map(|p| p.display().to_string()),
    );
    set(
        "WATTPRINT_RUNTIME_DIR",
        cfg.runtime_dir.as_ref().map(|p| p.display().to_string()),
    );
    set(
        "WATTPRINT_SYSTEM_CONFIG",
        cfg.config.as_ref().map(|p| p.display().to_string()),
    );
    set("WATTPRINT_SERVER", cfg.server.clone());
    env
}

/// The options of a step's session.
pub fn run_options(cfg: &PluginConfig, info: &StepInfo, job_name: Option<&str>) -> RunOptions {
    let mut o = RunOptions {
        project: Some(cfg.project.clone()),
        scope: Scope::Machine,
        interval: cfg.interval,
        server: cfg.server.clone(),
        job: info.job_key(),
        // Nobody watches a step's figures live (limits, when set, keep the interval).
        live: false,
        ..RunOptions::default()
    };
    o.carbon.location = cfg.location.clone();
    o.limits.max_duration = cfg.max_duration;
    o.limits.budget_kwh = cfg.budget_kwh;
    o.limits.budget_kg = cfg.budget_kg;
    if let Some(g) = cfg.grace {
        o.limits.grace = g;
    }
    o.tags.insert("slurm_job".into(), info.job_id.to_string());
    o.tags.insert(
        "slurm_step".into(),
        info.step_env().unwrap_or_else(|| "batch".to_string()),
    );
    o.command = vec![format!(
        "slurm step {}{}",
        info.name(),
        job_name.map(|n| format!(" ({n})")).unwrap_or_default()
    )];
    o
}

/// A step being measured.
pub struct MeasuredStep {
    pub info: StepInfo,
    session: Session,
    pub tasks: Tasks,
    to_job: Arc<AtomicBool>,
    startup_ms: f64,
    /// The worst task ending seen (wait status).
    worst: Option<i32>,
}

impl MeasuredStep {
    /// Start measuring the step (before its tasks start). `log` writes to slurmd's log.
    pub fn start(
        cfg: &PluginConfig,
        info: StepInfo,
        notes: Vec<String>,
        log: impl Fn(&str) + Send + Sync + 'static,
    ) -> anyhow::Result<MeasuredStep> {
        let t0 = Instant::now();
        let tasks = Tasks::default();
        let to_job = Arc::new(AtomicBool::new(false));
        let msgs: Messages = slurm_log::messages(tasks.clone(), Arc::clone(&to_job));
        let mut cfg = cfg.clone();
        let token = match cfg.token() {
            Some(Ok(t)) => Some(t),
            // Measured all the same, and kept in the site store only.
            Some(Err(e)) => {
                msgs.warn(&format!(
                    "token_file: {e}; records are not sent to {}",
                    cfg.server.as_deref().unwrap_or("the server")
                ));
                cfg.server = None;
                None
            }
            None => None,
        };
        let cfg = &cfg;
        let mut env = session_env(cfg, &info);
        if let Some(t) = token {
            env.set("WATTPRINT_TOKEN", t);
        }
        let job_name = info
            .job_env
            .iter()
            .find(|(k, _)| k == "SLURM_JOB_NAME")
            .map(|(_, v)| v.clone());
        let opts = run_options(cfg, &info, job_name.as_deref());
        let mut ctx = SessionContext::from_env(env, msgs.clone());
        ctx.msgs = msgs;
        let mut prepared = Prepared::prepare(opts, ctx)?;
        for n in notes {
            prepared.add_note(n);
        }
        let mut session = prepared.start(Vec::new());
        let log: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(log);
        let l2 = Arc::clone(&log);
        session.attach(
            std::process::id(),
            Box::new(StepStopper {
                tasks: tasks.clone(),
                job_id: info.job_id,
                step_id: (!info.is_batch()).then_some(info.step_id),
                log: Box::new(move |s| l2(s)),
            }),
        );
        log(&format!(
            "measuring step {} as run {} (job key {})",
            info.name(),
            session.run_id(),
            info.job_key().unwrap_or_default()
        ));
        Ok(MeasuredStep {
            info,
            session,
            tasks,
            to_job,
            startup_ms: t0.elapsed().as_secs_f64() * 1000.0,
            worst: None,
        })
    }

    pub fn run_id(&self) -> &str {
        self.session.run_id()
    }

    /// Variables the step's tasks get (before they start): where the host ledger is, so a
    /// `wattprint run` inside the step meets the plugin's entry.
    pub fn task_env(&self, cfg: &PluginConfig) -> Vec<(String, String)> {
        let mut v = vec![(
            "WATTPRINT_SLURM_RUN_ID".to_string(),
            self.run_id().to_string(),
        )];
        if let Some(p) = &cfg.runtime_dir {
            v.push(("WATTPRINT_RUNTIME_DIR".into(), p.display().to_string()));
        }
        if let Some(p) = &cfg.sysfs_root {
            v.push(("WATTPRINT_SYSFS_ROOT".into(), p.display().to_string()));
        }
        v
    }

    /// A task started: its pid (for the stopper and the job's output).
    pub fn task_started(&self, pid: u32) {
        self.tasks.add(pid);
        self.to_job.store(true, Ordering::SeqCst);
    }

    /// A task ended with wait status `status`.
    pub fn task_ended(&mut self, status: i32) {
        let rank = |s: i32| {
            if libc::WIFSIGNALED(s) {
                2
            } else if libc::WIFEXITED(s) && libc::WEXITSTATUS(s) != 0 {
                1
            } else {
                0
            }
        };
        if self.worst.is_none_or(|w| rank(status) > rank(w)) {
            self.worst = Some(status);
        }
    }

    /// The step ended: the final record to the site store (and the server).
    pub fn finish(self) -> Finished {
        self.to_job.store(false, Ordering::SeqCst);
        let mut warnings = Vec::new();
        if self.tasks.pids().is_empty() {
            warnings.push("the step started no task (see slurmd's log)".to_string());
        }
        let (code, signal, status) = match self.worst {
            Some(s) if libc::WIFSIGNALED(s) => (None, Some(libc::WTERMSIG(s)), RunStatus::Killed),
            Some(s) if libc::WIFEXITED(s) && libc::WEXITSTATUS(s) != 0 => {
                (Some(libc::WEXITSTATUS(s)), None, RunStatus::Failed)
            }
            Some(_) => (Some(0), None, RunStatus::Completed),
            None if warnings.is_empty() => (None, None, RunStatus::Completed),
            None => (None, None, RunStatus::Failed),
        };
        self.session.finish(
            Ending {
                ended_at: Some(wattprint_store::clock::now_rfc3339()),
                exit_code: code,
                signal,
            },
            status,
            warnings,
            SelfUsage::SamplerThread {
                startup_ms: self.startup_ms,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ffi::SLURM_EXTERN_CONT;

    fn info(step: u32) -> StepInfo {
        StepInfo {
            job_id: 42,
            step_id: step,
            job_env: vec![
                ("SLURM_CPUS_ON_NODE".into(), "4".into()),
                ("SLURM_STEP_GPUS".into(), "1,3".into()),
                ("SLURM_LOCALID".into(), "3".into()),
                ("WATTPRINT_SYSFS_ROOT".into(), "/home/user/fake".into()),
                ("WATTPRINT_HOST_LEDGER".into(), "off".into()),
                ("LOCAL_RANK".into(), "2".into()),
                ("HOME".into(), "/home/user".into()),
            ],
        }
    }

    #[test]
    fn the_plugin_and_wattprint_run_derive_the_same_key() {
        // What `wattprint run` sees in an srun step and in the batch script.
        let in_step = Env::from_pairs([("SLURM_JOB_ID", "42"), ("SLURM_STEP_ID", "3")]);
        let in_batch = Env::from_pairs([("SLURM_JOB_ID", "42")]);
        assert_eq!(info(3).job_key(), wattprint_core::job::from_env(&in_step));
        assert_eq!(info(3).job_key().as_deref(), Some("slurm:42.3"));
        assert_eq!(
            info(SLURM_BATCH_SCRIPT).job_key(),
            wattprint_core::job::from_env(&in_batch)
        );
        assert!(info(SLURM_BATCH_SCRIPT).measurable());
        assert!(info(0).measurable());
        assert!(!info(SLURM_EXTERN_CONT).measurable());
        assert_eq!(info(SLURM_BATCH_SCRIPT).name(), "42.batch");
    }

    #[test]
    fn the_session_sees_slurm_variables_and_the_site_options_only() {
        let cfg = PluginConfig::parse(&["store=/var/lib/wattprint", "sysfs_root=/srv/fake/sys"]).0;
        let env = session_env(&cfg, &info(0));
        assert_eq!(env.get("SLURM_CPUS_ON_NODE"), Some("4"));
        assert_eq!(env.get("SLURM_STEP_ID"), Some("0"));
        assert_eq!(env.get("CUDA_VISIBLE_DEVICES"), Some("1,3"));
        assert_eq!(env.get("WATTPRINT_SYSFS_ROOT"), Some("/srv/fake/sys"));
        assert_eq!(env.get("WATTPRINT_HOME"), Some("/var/lib/wattprint"));
        // The user's settings do not reach the plugin's session.
        assert_eq!(env.get("WATTPRINT_HOST_LEDGER"), None);
        assert_eq!(env.get("HOME"), None);
        // The plugin leads its job on the node: rank 0, whatever the user's variables say.
        assert_eq!(wattprint_core::job::local_rank(&env), Some(0));
        let batch = session_env(&cfg, &info(SLURM_BATCH_SCRIPT));
        assert_eq!(batch.get("SLURM_STEP_ID"), None);
        let o = run_options(&cfg, &info(0), Some("train"));
        assert_eq!(o.job.as_deref(), Some("slurm:42.0"));
        assert_eq!(o.tags["slurm_step"], "0");
        assert_eq!(o.command, vec!["slurm step 42.0 (train)".to_string()]);
    }

    #[test]
    fn a_step_with_an_unreadable_token_file_is_measured_and_kept_locally() {
        let t = tempfile::tempdir().unwrap();
        let z = t.path().join("sys/class/powercap/intel-rapl:0");
        std::fs::create_dir_all(&z).unwrap();
        std::fs::write(z.join("name"), "package-0\n").unwrap();
        std::fs::write(z.join("energy_uj"), "1000000\n").unwrap();
        std::fs::write(z.join("max_energy_range_uj"), "262143328850\n").unwrap();
        let word = |k: &str, v: &std::path::Path| format!("{k}={}", v.display());
        let cfg = PluginConfig::parse(&[
            word("store", &t.path().join("site")),
            word("sysfs_root", &t.path().join("sys")),
            word("runtime_dir", &t.path().join("run")),
            word("config", &t.path().join("no-policy.toml")),
            word("token_file", &t.path().join("missing-token")),
            "server=http://127.0.0.1:9".to_string(),
            "interval=50ms".to_string(),
        ])
        .0;
        let info = StepInfo {
            job_id: 7,
            step_id: 0,
            job_env: vec![("SLURM_JOB_NAME".into(), "train".into())],
        };
        let step = MeasuredStep::start(&cfg, info, Vec::new(), |_| {}).unwrap();
        let env = step.task_env(&cfg);
        assert!(env.contains(&(
            "WATTPRINT_RUNTIME_DIR".to_string(),
            t.path().join("run").display().to_string()
        )));
        let done = step.finish();
        assert!(done.saved_locally);
        let r = &done.record;
        assert_eq!(r.job.as_deref(), Some("slurm:7.0"));
        // No task was started: the step failed, and says why.
        assert_eq!(r.status, RunStatus::Failed);
        assert!(
            r.warnings.iter().any(|w| w.contains("started no task")),
            "{:?}",
            r.warnings
        );
        assert!(
            r.warnings.iter().all(|w| !w.contains("spool")),
            "nothing was sent, nothing spooled: {:?}",
            r.warnings
        );
        assert!(!t.path().join("site/spool").exists());
    }
}
