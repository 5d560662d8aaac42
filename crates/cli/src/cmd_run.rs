//! `wattprint run [OPTIONS] -- CMD ARGS...`: run a job exactly as it would run without us and
//! measure the energy it used. A thin front end over [`wattprint_session`]: flags become
//! [`RunOptions`]; this file spawns the job, forwards signals, waits (for a cleaner start, then
//! for the job) and draws the live line.

use crate::carbon_args::ProviderArg;
use crate::{child, live::LiveLine, summary};
use anyhow::Result;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;
use wattprint_core::limits::BudgetAction;
use wattprint_core::providers::window::{self, WaitQuery};
use wattprint_core::record::{Ending, RunStatus};
use wattprint_core::sampler::Scope;
use wattprint_core::units::parse_duration;
use wattprint_session::monitor::{self, ChildStopper};
use wattprint_session::options::{self, LimitOptions, OptionError, RunOptions};
use wattprint_session::provider_config;
use wattprint_session::session::{unix_now, Finished, Prepared, SelfUsage, SessionContext};

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct Args {
    /// Project the run belongs to (default: $WATTPRINT_PROJECT, else "default").
    #[arg(long)]
    pub project: Option<String>,
    /// Tag the run, `key=value`; repeatable.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// `machine`: everything the box's devices drew; `process`: the job's share.
    #[arg(long, value_enum, default_value = "machine")]
    pub scope: ScopeArg,
    /// Sampling interval, e.g. `1s`, `100ms` (minimum 10ms; default 1s or the config file's).
    #[arg(long)]
    pub interval: Option<String>,
    /// Also write the run record as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// No summary at the end.
    #[arg(long, short)]
    pub quiet: bool,
    /// No live status line, even on a terminal.
    #[arg(long)]
    pub no_live: bool,
    #[command(flatten)]
    pub carbon: crate::carbon_args::CarbonArgs,
    /// CPU TDP in watts per package (socket) for the CPU power model, when it is used.
    #[arg(long, value_name = "W")]
    pub cpu_tdp: Option<f64>,
    /// Stop the job after this long, e.g. `72h` (a cap: always stops).
    #[arg(long, value_name = "DURATION")]
    pub max_duration: Option<String>,
    /// Energy budget of the run (IT energy, kWh).
    #[arg(long, value_name = "E")]
    pub budget_kwh: Option<f64>,
    /// Carbon budget of the run (total emissions, kg CO2e).
    #[arg(long, value_name = "M")]
    pub budget_kg: Option<f64>,
    /// What a reached budget does: stop the job (default) or only warn.
    #[arg(long, value_enum)]
    pub budget_action: Option<ActionArg>,
    /// Signal sent to stop the job (then SIGKILL after the grace period).
    #[arg(long, default_value = "TERM", value_name = "SIGNAL")]
    pub stop_signal: String,
    /// Time the job is given to checkpoint and exit after the stop signal.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub grace: String,
    /// Stop as soon as the prediction's lower bound (P10) exceeds a budget (after 5 % of the job).
    #[arg(long)]
    pub predict_stop: bool,
    /// Expected duration of the job, for predictions (else the progress file is used).
    #[arg(long, value_name = "DURATION")]
    pub expected_duration: Option<String>,
    /// The run's share (0–1] of the machine's manufacturing emissions; needed on virtual
    /// machines (e.g. VM vCPUs / host threads). Default: the whole machine in machine scope,
    /// the job's share of the measured energy in process scope.
    #[arg(long, value_name = "F")]
    pub embodied_share: Option<f64>,
    /// Cloud instance type (`m5.large`, `aws:m5.large`, `Standard_NC24`, `a2-highgpu-8g`):
    /// embodied emissions of its host platform × the instance's vCPU share (Cloud Carbon
    /// Footprint); for types not in `wattprint factors instances`, use --embodied-share.
    #[arg(long, value_name = "TYPE")]
    pub instance_type: Option<String>,
    /// After the run, also count its hardware, duration and place as another tool would:
    /// green-algorithms, mlco2, codecarbon, ccf (`wattprint compare RUN` shows them all).
    #[arg(long, value_name = "PROFILE", value_parser = crate::cmd_show::parse_profile)]
    pub factors: Option<wattprint_core::profiles::Profile>,
    /// Do not count embodied (manufacturing) emissions.
    #[arg(long, conflicts_with_all = ["embodied_share", "instance_type"])]
    pub no_embodied: bool,
    /// Live intensity provider to value the run hour by hour (default: as configured by
    /// environment; see `wattprint when --help`). Without one, the static factor is used.
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// Grid zone for the provider (default: the location, e.g. `FR`, `GB`).
    #[arg(long, value_name = "ZONE")]
    pub zone: Option<String>,
    /// Wait for the cleanest start in the forecast (or for --threshold), then start.
    #[arg(long)]
    pub start_when_clean: bool,
    /// With --start-when-clean: wait at most this long.
    #[arg(long, value_name = "DURATION", default_value = "12h")]
    pub within: String,
    /// With --start-when-clean: start as soon as the intensity is at or below G gCO2e/kWh.
    #[arg(long, value_name = "G")]
    pub threshold: Option<f64>,
    /// Path of libnvidia-ml.so (default: $WATTPRINT_NVML_LIBRARY, else the system's).
    #[arg(long, value_name = "PATH")]
    pub nvml_library: Option<PathBuf>,
    /// Path of libamd_smi.so (default: $WATTPRINT_AMDSMI_LIBRARY, else the system's where the
    /// amdgpu driver is loaded).
    #[arg(long, value_name = "PATH")]
    pub amdsmi_library: Option<PathBuf>,
    /// Report to this wattprint server (default: $WATTPRINT_SERVER, else the config file's
    /// `server`); the token comes from $WATTPRINT_TOKEN or the config file, never a flag.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Units of work the job did, for J and gCO2e per unit (e.g. `--work-units 1.2e6 --unit
    /// tokens`). A job may state its own total instead: `N UNIT` written to
    /// $WATTPRINT_WORK_FILE (that file, when written, is the more specific and wins).
    #[arg(long, value_name = "N", requires = "unit")]
    pub work_units: Option<f64>,
    /// What a unit of work is: `tokens`, `samples`, `images`...
    #[arg(long, value_name = "UNIT", requires = "work_units")]
    pub unit: Option<String>,
    /// The job this run is part of: runs with the same key on one host form one job (default:
    /// from the launcher's environment: TORCHELASTIC_RUN_ID, SLURM_JOB_ID + step, Open MPI's
    /// or PMIx's job id).
    #[arg(long, value_name = "KEY")]
    pub job: Option<String>,
    /// The number of nodes the job runs on, so the server can tell when every node reported
    /// (default: SLURM_JOB_NUM_NODES, else GROUP_WORLD_SIZE).
    #[arg(long, value_name = "N")]
    pub nodes: Option<u32>,
    #[command(flatten)]
    pub lineage: crate::lineage_args::LineageArgs,
    /// The command to run, after `--` (or as the first word that is not an option: every word
    /// after it is the job's). An unknown option before it is a usage error, never the command.
    #[arg(trailing_var_arg = true, required = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ActionArg {
    Warn,
    Stop,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ScopeArg {
    Machine,
    Process,
}

/// An interval flag (`1s`, `100ms`; at least 10ms).
pub fn parse_interval(s: &str) -> Result<Duration> {
    let d =
        wattprint_core::units::parse_duration(s).map_err(|e| anyhow::anyhow!("--interval: {e}"))?;
    options::check_interval(d, s).map_err(cli_error)
}

/// An option error in the command line's words (`--budget-kwh -1: …`).
fn cli_error(e: OptionError) -> anyhow::Error {
    anyhow::anyhow!(e.render(&e.flag()))
}

fn duration(flag: &str, v: Option<&str>) -> Result<Option<Duration>> {
    v.map(|s| parse_duration(s).map_err(|e| anyhow::anyhow!("{flag}: {e}")))
        .transpose()
}

impl Args {
    /// The session's options from the flags (values checked by [`RunOptions::validate`]).
    fn options(&self) -> Result<RunOptions> {
        Ok(RunOptions {
            project: self.project.clone(),
            tags: options::parse_tags(&self.tags).map_err(|e| {
                anyhow::anyhow!(
                    "invalid --tag {}: {}, e.g. --tag lr=3e-4",
                    e.value,
                    e.reason
                )
            })?,
            scope: match self.scope {
                ScopeArg::Machine => Scope::Machine,
                ScopeArg::Process => Scope::Process,
            },
            interval: self.interval.as_deref().map(parse_interval).transpose()?,
            carbon: self.carbon.options(),
            cpu_tdp_w: self.cpu_tdp,
            nvml_library: self.nvml_library.clone(),
            amdsmi_library: self.amdsmi_library.clone(),
            limits: LimitOptions {
                max_duration: duration("--max-duration", self.max_duration.as_deref())?,
                budget_kwh: self.budget_kwh,
                budget_kg: self.budget_kg,
                budget_action: self.budget_action.map(|a| match a {
                    ActionArg::Warn => BudgetAction::Warn,
                    ActionArg::Stop => BudgetAction::Stop,
                }),
                predict_stop: self.predict_stop,
                expected_duration: duration(
                    "--expected-duration",
                    self.expected_duration.as_deref(),
                )?,
                stop_signal: monitor::parse_signal(&self.stop_signal)
                    .map_err(|e| anyhow::anyhow!("--stop-signal: {e}"))?,
                grace: parse_duration(&self.grace).map_err(|e| anyhow::anyhow!("--grace: {e}"))?,
            },
            embodied_share: self.embodied_share,
            instance_type: self.instance_type.clone(),
            no_embodied: self.no_embodied,
            provider: self.provider.map(Into::into),
            zone: self.zone.clone(),
            server: self.server.clone(),
            command: self
                .cmd
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect(),
            checkpoint_every: None,
            // The live line is the only live reader of a run's figures here.
            live: !self.no_live
                && !self.quiet
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            job: self.job.clone(),
            job_nodes: self.nodes,
            lineage: self.lineage.lineage()?,
        })
    }
}

pub fn run(a: Args) -> Result<i32> {
    // Everything is validated before the job starts.
    let opts = a.options()?;
    opts.validate().map_err(cli_error)?;
    if let Some(g) = a.threshold {
        if !(g.is_finite() && g >= 0.0) {
            anyhow::bail!("--threshold {g}: must be a non-negative intensity in gCO2e/kWh");
        }
    }
    let within = parse_duration(&a.within).map_err(|e| anyhow::anyhow!("--within: {e}"))?;
    if (a.threshold.is_some() || a.within != "12h") && !a.start_when_clean {
        anyhow::bail!("--within and --threshold only apply with --start-when-clean");
    }
    if let Some(n) = a.work_units {
        if !(n.is_finite() && n >= 0.0) {
            anyhow::bail!("--work-units {n}: must be a non-negative number of units");
        }
    }
    let msgs = crate::stderr_messages(a.quiet);
    let ctx = SessionContext::from_env(crate::env().clone(), msgs.clone());
    let mut prepared =
        Prepared::prepare(opts.clone(), ctx).map_err(|e| match e.downcast::<OptionError>() {
            Ok(oe) => cli_error(oe),
            Err(e) => e,
        })?;
    if a.start_when_clean {
        let note = wait_when_clean(&prepared, &a, within, opts.limits.expected_duration)?;
        prepared.add_note(note);
    }
    if let Some(p) = &a.json {
        prepared.json_file(p.clone());
    }
    let mut session = prepared.start(Vec::new());

    let mut child = match child::spawn(&a.cmd, &session.child_env()) {
        Ok(c) => c,
        Err(e) => {
            session.discard();
            return Err(crate::ExitError {
                code: u8::try_from(e.exit_code).unwrap_or(1),
                message: e.message,
            }
            .into());
        }
    };
    let startup_ms = crate::START.elapsed().as_secs_f64() * 1000.0;
    let pid = child.id();
    session.attach(pid, Box::new(ChildStopper(pid)));
    let forwarder = child::Forwarder::start(pid).ok();
    // Live status line (terminal only), drawn at once, then redrawn once a second.
    let live = {
        let watch = session.watch();
        let carbon = session.carbon().clone();
        let mon = session.monitor_state();
        crate::live::LiveThread::start(LiveLine::new(!a.no_live && !a.quiet), move || {
            let pred = mon.lock().ok().and_then(|m| m.prediction.clone());
            summary::live_text(&watch.get(), &carbon, pred.as_ref())
        })
    };

    child::wait_exited_no_reap(pid);
    session.job_exited();
    // Stop the live line first: the summary must not be drawn over.
    if let Some(l) = live {
        l.finish();
    }
    let status = child.wait();
    let received = forwarder
        .map(|f| {
            let r = f.received.load(Ordering::SeqCst);
            f.stop();
            r
        })
        .unwrap_or(0);
    let mut warnings = Vec::new();
    let (code, signal, run_status) = match status {
        Ok(st) => {
            let (code, sig) = child::exit_code(st);
            let rs = if sig.is_some() {
                RunStatus::Killed
            } else if code == 0 {
                RunStatus::Completed
            } else {
                RunStatus::Failed
            };
            (code, sig, rs)
        }
        Err(e) => {
            warnings.push(format!("could not read the job's exit status: {e}"));
            (1, None, RunStatus::Failed)
        }
    };
    if received != 0 {
        warnings.push(format!(
            "wattprint received signal {received} during the run and passed it to the job"
        ));
    }
    if let (Some(n), Some(unit)) = (a.work_units, a.unit.as_deref()) {
        if let Ok(mut seg) = session.segments().lock() {
            if let Err(e) = seg.set_total_work(n, unit) {
                warnings.push(format!("--work-units {n} --unit {unit}: {e}"));
            }
        }
    }
    let ending = Ending {
        ended_at: Some(crate::clock::now_rfc3339()),
        exit_code: Some(code),
        signal,
    };
    let done = session.finish(
        ending,
        run_status,
        warnings,
        SelfUsage::Process { startup_ms },
    );
    if !a.quiet {
        eprint!("{}", summary_of(&done));
    }
    if let Some(p) = a.factors {
        match crate::cmd_show::profile_text(&done.record, p) {
            Ok(t) => eprint!("{t}"),
            Err(e) => eprintln!("wattprint: --factors {}: {e:#}", p.as_str()),
        }
    }
    Ok(code)
}

/// The end-of-run summary; a run the local store did not keep offers no `show` command.
fn summary_of(done: &Finished) -> String {
    let text = summary::summary_text(&done.record, &done.shown);
    if done.saved_locally {
        return text;
    }
    text.lines()
        .filter(|l| !l.trim_start().starts_with("details: wattprint show"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `--start-when-clean`: wait for the cleanest start in the forecast (or for `--threshold`);
/// the note says what was chosen.
fn wait_when_clean(
    prepared: &Prepared,
    a: &Args,
    within: Duration,
    expected: Option<Duration>,
) -> Result<String> {
    let Some(p) = prepared.provider() else {
        anyhow::bail!(
            "--start-when-clean needs a forecast provider. {}",
            provider_config::not_configured_help()
        );
    };
    let Some(z) = prepared.zone() else {
        anyhow::bail!(
            "--start-when-clean needs a grid zone: pass --zone ({}) or --location",
            p.kind.zone_examples()
        );
    };
    let decision = window::wait_plan(
        p.provider.as_ref(),
        z,
        &WaitQuery {
            now: unix_now() as i64,
            within_s: within.as_secs() as i64,
            threshold_g_per_kwh: a.threshold,
            duration_s: expected.map(|d| d.as_secs() as i64),
        },
    )
    .map_err(|e| anyhow::anyhow!("--start-when-clean: {e}"))?;
    for n in p.take_debug_notes() {
        eprintln!("wattprint: debug: {n}");
    }
    wait_until(decision.start_at, &decision.reason, a.quiet);
    Ok(format!(
        "started when clean: {} (expected {:.0} gCO2e/kWh vs {:.0} at the first possible start)",
        decision.reason, decision.expected_g_per_kwh, decision.now_g_per_kwh
    ))
}

/// Wait until unix time `t`, with a visible countdown (a line redrawn on a terminal, else one
/// line per minute).
fn wait_until(t: i64, reason: &str, quiet: bool) {
    use std::io::{IsTerminal, Write};
    let tty = std::io::stderr().is_terminal();
    let mut last_line = f64::NEG_INFINITY;
    if !quiet {
        eprintln!("wattprint: {reason}");
    }
    loop {
        let left = t as f64 - wattprint_session::session::unix_now();
        if left <= 0.0 {
            break;
        }
        if !quiet {
            let h = (left / 3600.0).floor();
            let m = ((left % 3600.0) / 60.0).floor();
            let s = (left % 60.0).floor();
            let text = format!("wattprint: starting in {h:02}:{m:02}:{s:02} (waiting for cleaner power; Ctrl-C to give up)");
            if tty {
                let mut e = std::io::stderr().lock();
                let _ = write!(e, "\r\x1b[2K{text}");
                let _ = e.flush();
            } else if last_line - left >= 60.0 || last_line.is_infinite() {
                eprintln!("{text}");
                last_line = left;
            }
        }
        std::thread::sleep(Duration::from_secs_f64(left.clamp(0.0, 1.0)));
    }
    if tty && !quiet {
        eprint!("\r\x1b[2K");
    }
}
