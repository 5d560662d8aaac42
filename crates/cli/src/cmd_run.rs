//! `wattprint run [OPTIONS] -- CMD ARGS...`: run a job exactly as it would run without us and
//! measure the energy it used.

use crate::config::Config;
use crate::monitor::{self, Monitor, MonitorConfig, MonitorState};
use crate::provider_config::{self, ProviderKind};
use crate::{child, clock, live::LiveLine, store, store::Store, summary};
use anyhow::Result;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wattprint_core::discovery::{self, DiscoverOptions};
use wattprint_core::host::HostPaths;
use wattprint_core::limits::{self, BudgetAction, LimitKind};
use wattprint_core::providers::{self, window, window::WaitQuery};
use wattprint_core::record::{self, CarbonContext, Ending, RunMeta, RunStatus};
use wattprint_core::sampler::{Sampler, SamplerConfig, Scope, MIN_INTERVAL};
use wattprint_core::units::parse_duration;

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
    /// Do not count embodied (manufacturing) emissions.
    #[arg(long, conflicts_with = "embodied_share")]
    pub no_embodied: bool,
    /// Live intensity provider to value the run hour by hour (default: as configured by
    /// environment; see `wattprint when --help`). Without one, the static factor is used.
    #[arg(long, value_enum)]
    pub provider: Option<ProviderKind>,
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
    /// Report to this wattprint server (default: $WATTPRINT_SERVER, else the config file's
    /// `server`); the token comes from $WATTPRINT_TOKEN or the config file, never a flag.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
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

fn parse_tags(tags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for t in tags {
        match t.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.insert(k.trim().to_string(), v.to_string());
            }
            _ => anyhow::bail!("invalid --tag `{t}`: expected KEY=VALUE, e.g. --tag lr=3e-4"),
        }
    }
    Ok(out)
}

pub fn parse_interval(s: &str) -> Result<Duration> {
    let d =
        wattprint_core::units::parse_duration(s).map_err(|e| anyhow::anyhow!("--interval: {e}"))?;
    if d < MIN_INTERVAL {
        anyhow::bail!(
            "--interval {s} is below the minimum of 10ms; use e.g. --interval 10ms or more"
        );
    }
    Ok(d)
}

pub fn run(a: Args) -> Result<i32> {
    // Validate everything before starting the job.
    let config = Config::load()?;
    let interval = parse_interval(
        a.interval
            .as_deref()
            .or(config.interval().as_deref())
            .unwrap_or("1s"),
    )?;
    let opt_duration = |flag: &str, v: &Option<String>| -> Result<Option<Duration>> {
        v.as_deref()
            .map(|s| parse_duration(s).map_err(|e| anyhow::anyhow!("{flag}: {e}")))
            .transpose()
    };
    let max_duration = opt_duration("--max-duration", &a.max_duration)?;
    let expected_duration = opt_duration("--expected-duration", &a.expected_duration)?;
    let grace = parse_duration(&a.grace).map_err(|e| anyhow::anyhow!("--grace: {e}"))?;
    let stop_signal =
        monitor::parse_signal(&a.stop_signal).map_err(|e| anyhow::anyhow!("--stop-signal: {e}"))?;
    for (flag, v) in [("--budget-kwh", a.budget_kwh), ("--budget-kg", a.budget_kg)] {
        if let Some(x) = v {
            if !(x.is_finite() && x > 0.0) {
                anyhow::bail!("{flag} {x}: a budget must be a positive number");
            }
        }
    }
    if max_duration.is_some_and(|d| d.is_zero()) {
        anyhow::bail!("--max-duration must be longer than zero, e.g. --max-duration 72h");
    }
    let mut user_limits = config.user_limits()?;
    if let Some(d) = max_duration {
        user_limits.max_duration_s = Some(d.as_secs_f64());
    }
    if a.budget_kwh.is_some() {
        user_limits.budget_kwh = a.budget_kwh;
    }
    if a.budget_kg.is_some() {
        user_limits.budget_kg = a.budget_kg;
    }
    if let Some(act) = a.budget_action {
        user_limits.action = match act {
            ActionArg::Warn => BudgetAction::Warn,
            ActionArg::Stop => BudgetAction::Stop,
        };
    }
    user_limits.predict_stop |= a.predict_stop;
    // [server] The server's policy joins the institution's limits (cached when unreachable).
    let server = crate::uploader::ServerTarget::resolve(a.server.as_deref(), &config)?;
    let (policy, policy_notes) = server
        .as_ref()
        .map(crate::server_policy::fetch)
        .unwrap_or_default();
    let institution = crate::server_policy::stricter(&config.institution_limits()?, &policy);
    let (limits, mut limit_notes) = limits::combine(&institution, &user_limits);
    limit_notes.extend(policy_notes);
    let within = parse_duration(&a.within).map_err(|e| anyhow::anyhow!("--within: {e}"))?;
    if let Some(g) = a.threshold {
        if !(g.is_finite() && g >= 0.0) {
            anyhow::bail!("--threshold {g}: must be a non-negative intensity in gCO2e/kWh");
        }
    }
    if (a.threshold.is_some() || a.within != "12h") && !a.start_when_clean {
        anyhow::bail!("--within and --threshold only apply with --start-when-clean");
    }
    let provider = provider_config::configured(a.provider, false)?;
    let tags = parse_tags(&a.tags)?;
    if let Some(f) = a.embodied_share {
        if !(f.is_finite() && f > 0.0 && f <= 1.0) {
            anyhow::bail!("--embodied-share {f}: must be a fraction in (0, 1], e.g. 0.125 for 8 of 64 threads");
        }
    }
    if let Some(w) = a.cpu_tdp {
        if !(w.is_finite() && w > 0.0) {
            anyhow::bail!("--cpu-tdp {w}: must be a positive number of watts");
        }
    }
    let mut carbon: CarbonContext = a.carbon.resolve()?;
    let scope = match a.scope {
        ScopeArg::Machine => Scope::Machine,
        ScopeArg::Process => Scope::Process,
    };
    let project = a
        .project
        .clone()
        .or_else(|| {
            std::env::var("WATTPRINT_PROJECT")
                .ok()
                .filter(|p| !p.is_empty())
        })
        .unwrap_or_else(|| "default".to_string());
    let paths = HostPaths::from_env();
    let say = |msg: &str| {
        if !a.quiet {
            eprintln!("wattprint: {msg}");
        }
    };
    let zone = a.zone.clone().or_else(|| {
        (carbon.location.known && !carbon.location.code.contains(':'))
            .then(|| carbon.location.code.clone())
            .or_else(|| {
                provider
                    .as_ref()
                    .and_then(|p| p.kind.default_zone().map(str::to_string))
            })
    });
    let mut start_note: Option<String> = None;
    if a.start_when_clean {
        let Some(p) = provider.as_ref() else {
            anyhow::bail!(
                "--start-when-clean needs a forecast provider. {}",
                provider_config::not_configured_help()
            );
        };
        let Some(z) = zone.as_deref() else {
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
                duration_s: expected_duration.map(|d| d.as_secs() as i64),
            },
        )
        .map_err(|e| anyhow::anyhow!("--start-when-clean: {e}"))?;
        p.flush_debug_notes();
        wait_until(decision.start_at, &decision.reason, a.quiet);
        start_note = Some(format!(
            "started when clean: {} (expected {:.0} gCO2e/kWh vs {:.0} at the first possible start)",
            decision.reason, decision.expected_g_per_kwh, decision.now_g_per_kwh
        ));
    }

    let disc = discovery::discover(
        &paths,
        &DiscoverOptions {
            cpu_tdp_w: a.cpu_tdp,
            nvml_library: a.nvml_library.clone(),
        },
    );
    let mut shown: Vec<String> = Vec::new();
    for w in disc
        .warnings
        .iter()
        .chain(carbon.warnings.iter())
        .chain(limit_notes.iter())
    {
        say(&format!("warning: {w}"));
        shown.push(w.clone());
    }
    let host = discovery::host_info(&paths, &disc);
    let cpu_info = disc.cpu_info.as_ref();
    let mut embodied_note: Option<String> = None;
    carbon.embodied = if a.no_embodied {
        None
    } else if cpu_info.as_ref().is_some_and(|c| c.hypervisor) && a.embodied_share.is_none() {
        embodied_note = Some(
            "embodied emissions not counted: this is a virtual machine and its share of the host's hardware is unknown; pass --embodied-share F (e.g. vCPUs / host threads) to include them"
                .to_string(),
        );
        None
    } else {
        Some(record::RunEmbodied {
            components: record::host_embodied(
                &host,
                cpu_info.as_ref().map(|c| c.sockets as u32).unwrap_or(1),
            ),
            share: a.embodied_share,
        })
    };
    let job_pid = Arc::new(AtomicU32::new(0));
    let attributor = discovery::attributor(scope, &paths, Arc::clone(&job_pid), &disc);

    let mut store = match Store::open_default() {
        Ok(s) => Some(s),
        Err(e) => {
            say(&format!(
                "warning: local store unavailable ({e:#}); the run will not be saved there{}",
                if a.json.is_some() {
                    " (the --json file is still written)"
                } else {
                    ""
                }
            ));
            None
        }
    };

    let meta = RunMeta {
        id: uuid::Uuid::new_v4().to_string(),
        project,
        tags,
        command: a
            .cmd
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect(),
        started_at: clock::now_rfc3339(),
        host,
        scope,
        interval_s: interval.as_secs_f64(),
        start_unix: unix_now(),
    };
    // Held while the run is measured: readers tell a live run from one whose tracker died.
    let _tracker_lock = crate::liveness::TrackerLock::acquire(&meta.id);
    let mut extra_warnings: Vec<String> = disc.warnings.clone();
    extra_warnings.extend(embodied_note);
    extra_warnings.extend(limit_notes.iter().cloned());
    extra_warnings.extend(start_note);
    let mon_state = Arc::new(Mutex::new(MonitorState::default()));
    // [server] Uploads from a background thread; whatever it cannot send goes to the spool.
    let uploader = server
        .as_ref()
        .map(|s| crate::uploader::Uploader::for_run(s, &meta.id, a.quiet));
    let ckpt_up = uploader.as_ref().map(|u| u.handle());
    let record_limits = (!limits.is_empty()).then(|| limits.clone());
    // The job reports its progress (a fraction, or done/total) into this file.
    let progress_file = store::home_dir()
        .ok()
        .map(|h| h.join("progress"))
        .and_then(|d| std::fs::create_dir_all(&d).ok().map(|_| d))
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("{}.progress", meta.id));

    // Checkpoints save the record (status running) from the sampler thread.
    let store_cell: Arc<Mutex<Option<Store>>> = Arc::new(Mutex::new(store.take()));
    let ckpt_store = Arc::clone(&store_cell);
    let ckpt_meta = meta.clone();
    let ckpt_carbon = carbon.clone();
    let ckpt_warn = extra_warnings.clone();
    let ckpt_mon = Arc::clone(&mon_state);
    let ckpt_limits = record_limits.clone();
    let checkpoint: wattprint_core::sampler::CheckpointFn = Box::new(move |snap| {
        let mut rec = record::build_record(
            &ckpt_meta,
            &ckpt_carbon,
            snap,
            RunStatus::Running,
            &Ending::default(),
            &ckpt_warn,
        );
        rec.limits = ckpt_limits.clone();
        if let Ok(m) = ckpt_mon.lock() {
            rec.limit_events = m.events.clone();
            rec.prediction = m.prediction.clone();
        }
        if let Ok(mut guard) = ckpt_store.lock() {
            if let Some(st) = guard.as_mut() {
                if let Err(e) = st.save_run(&rec) {
                    eprintln!("wattprint: warning: checkpoint not saved: {e:#}");
                }
            }
        }
        if let Some(u) = &ckpt_up {
            u.checkpoint(&rec); // [server]
        }
    });
    let sampler = Sampler::start(
        disc.sensors,
        attributor,
        SamplerConfig {
            interval,
            checkpoint_every: checkpoint_every()?.max(interval),
        },
        Some(checkpoint),
    );
    // First checkpoint right away, so even a crash in the first seconds leaves a record.
    if let Ok(mut guard) = store_cell.lock() {
        if let Some(st) = guard.as_mut() {
            let rec = record::build_record(
                &meta,
                &carbon,
                &sampler.snapshot(),
                RunStatus::Running,
                &Ending::default(),
                &extra_warnings,
            );
            if let Err(e) = st.save_run(&rec) {
                say(&format!("warning: run not saved to the local store: {e:#}"));
            }
        }
    }

    let env = vec![
        ("WATTPRINT_RUN_ID".to_string(), meta.id.clone()),
        (
            "WATTPRINT_PROGRESS_FILE".to_string(),
            progress_file.display().to_string(),
        ),
    ];
    let mut child = match child::spawn(&a.cmd, &env) {
        Ok(c) => c,
        Err(e) => {
            let _ = sampler.stop();
            if let Ok(mut guard) = store_cell.lock() {
                if let Some(st) = guard.as_mut() {
                    let _ = st.delete_run(&meta.id);
                }
            }
            eprintln!("wattprint: error: {}", e.message);
            return Ok(e.exit_code);
        }
    };
    let startup_ms = crate::START.elapsed().as_secs_f64() * 1000.0;
    let pid = child.id();
    job_pid.store(pid, Ordering::SeqCst);
    let forwarder = child::Forwarder::start(pid).ok();
    let monitor = Monitor::start(
        MonitorConfig {
            limits: limits.clone(),
            tick: (interval / 5).clamp(Duration::from_millis(10), Duration::from_millis(200)),
            kg_per_kwh: carbon.pue * carbon.intensity_g_per_kwh / 1000.0,
            progress_file: Some(progress_file.clone()),
            expected_duration,
            stop_signal,
            grace,
            quiet: a.quiet,
        },
        sampler.watch(),
        pid,
        std::time::Instant::now(),
        Arc::clone(&mon_state),
    );

    // Live status line (terminal only), drawn at once, then redrawn once a second.
    let live_thread = {
        let watch = sampler.watch();
        let live_carbon = carbon.clone();
        let live_mon = Arc::clone(&mon_state);
        crate::live::LiveThread::start(LiveLine::new(!a.no_live && !a.quiet), move || {
            let pred = live_mon.lock().ok().and_then(|m| m.prediction.clone());
            summary::live_text(&watch.get(), &live_carbon, pred.as_ref())
        })
    };

    child::wait_exited_no_reap(pid);
    let mon = monitor.finish();
    let snapshot = sampler.stop();
    let _ = std::fs::remove_file(&progress_file);
    if let Some(t) = live_thread {
        t.finish();
    }
    let status = child.wait();
    let received = forwarder
        .map(|f| {
            let r = f.received.load(Ordering::SeqCst);
            f.stop();
            r
        })
        .unwrap_or(0);
    let (code, signal, mut run_status) = match status {
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
            extra_warnings.push(format!("could not read the job's exit status: {e}"));
            (1, None, RunStatus::Failed)
        }
    };
    if let Some(st) = &mon.stopped {
        run_status = match st.limit {
            LimitKind::MaxDuration => RunStatus::StoppedByCap,
            _ => RunStatus::StoppedByBudget,
        };
    }
    extra_warnings.extend(mon.warnings.iter().cloned());
    if received != 0 {
        extra_warnings.push(format!(
            "wattprint received signal {received} during the run and passed it to the job"
        ));
    }
    let ending = Ending {
        ended_at: Some(clock::now_rfc3339()),
        exit_code: Some(code),
        signal,
    };
    if let (Some(p), Some(z)) = (provider.as_ref(), zone.as_deref()) {
        let end = meta.start_unix + snapshot.elapsed.as_secs_f64();
        let ri = providers::intensity_for_run(
            Some(p.provider.as_ref()),
            z,
            meta.start_unix.floor() as i64,
            end.ceil() as i64,
            (carbon.intensity_g_per_kwh, carbon.intensity_source.clone()),
        );
        p.flush_debug_notes();
        match ri.fallback_reason {
            Some(why) => extra_warnings.push(format!(
                "live intensity not used ({why}); valued at the static factor"
            )),
            None => {
                carbon.intensity_source = ri.source.clone();
                carbon.intensity_detail = ri.source.clone();
                carbon.signal = Some(
                    match ri.signal {
                        providers::Signal::Average => "average",
                        providers::Signal::Marginal => "marginal",
                    }
                    .to_string(),
                );
                match &ri.intensity {
                    wattprint_core::accounting::Intensity::Hourly(_) => {
                        carbon.series = Some(ri.intensity.clone())
                    }
                    wattprint_core::accounting::Intensity::Constant(g) => {
                        carbon.intensity_g_per_kwh = g.0
                    }
                }
            }
        }
        extra_warnings.extend(ri.notes);
    }
    let mut rec = record::build_record(
        &meta,
        &carbon,
        &snapshot,
        run_status,
        &ending,
        &extra_warnings,
    );
    rec.tracker = Some(self_usage(startup_ms));
    rec.limits = record_limits;
    rec.limit_events = mon.events;
    rec.stopped = mon.stopped;
    rec.prediction = mon.prediction;
    if let Some(u) = uploader {
        shown.extend(u.finish(&mut rec, &snapshot)); // [server] final record + series
    }
    if let Ok(mut guard) = store_cell.lock() {
        if let Some(st) = guard.as_mut() {
            if let Err(e) = st
                .save_run(&rec)
                .and_then(|_| st.save_series(&rec.id, &snapshot))
            {
                eprintln!("wattprint: warning: run not saved to the local store: {e:#}");
            }
        }
    }
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&rec)?;
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!(
                "wattprint: warning: cannot write {}: {e} (the run is in the local store)",
                path.display()
            );
        }
    }
    if !a.quiet {
        eprint!("{}", summary::summary_text(&rec, &shown));
    }
    Ok(code)
}

/// wattprint's own CPU time and peak RSS (RUSAGE_SELF: the job is not included).
fn self_usage(startup_ms: f64) -> record::TrackerUsage {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0;
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    record::TrackerUsage {
        cpu_s: if ok {
            tv(ru.ru_utime) + tv(ru.ru_stime)
        } else {
            f64::NAN
        },
        // VmHWM is this program's own peak; ru_maxrss also counts the image that exec'd us
        // (Linux keeps the pre-exec high-water mark), which would charge us our parent's size.
        max_rss_mb: own_peak_rss_kb()
            .map(|kb| kb as f64 / 1024.0)
            .unwrap_or(if ok {
                ru.ru_maxrss as f64 / 1024.0
            } else {
                f64::NAN
            }),
        startup_ms,
    }
}

/// Peak resident set of this process (`VmHWM` of the real `/proc/self/status`), kB.
fn own_peak_rss_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
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
        let left = t as f64 - unix_now();
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

/// How often the running record is saved: every 10 s, or `WATTPRINT_CHECKPOINT_EVERY` (e.g.
/// `2s`; at most 10 s, so a crash never loses more than that).
fn checkpoint_every() -> Result<Duration> {
    match std::env::var("WATTPRINT_CHECKPOINT_EVERY") {
        Ok(v) if !v.trim().is_empty() => {
            let d = parse_duration(&v)
                .map_err(|e| anyhow::anyhow!("WATTPRINT_CHECKPOINT_EVERY: {e}"))?;
            if d < Duration::from_millis(100) || d > Duration::from_secs(10) {
                anyhow::bail!("WATTPRINT_CHECKPOINT_EVERY={v}: must be between 100ms and 10s");
            }
            Ok(d)
        }
        _ => Ok(Duration::from_secs(10)),
    }
}
