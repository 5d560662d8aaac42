//! A measured session: from validated options to a finished run record.
//!
//! Its life, whatever the front end:
//!
//! 1. [`Prepared::prepare`] reads what the options leave open (configuration files, the
//!    server's policy, the live-intensity provider) and resolves the carbon factors and
//!    limits. Nothing is measured yet, so a front end may still wait (e.g. for a cleaner
//!    start).
//! 2. [`Prepared::start`] discovers the sensors, opens the sinks, starts the sampler, saves a
//!    first record and starts checkpointing.
//! 3. [`Session::attach`] names the work being measured (a process tree) and how to stop it;
//!    limits are watched from then on.
//! 4. [`Session::finish`] takes the final reading, values the run (at live intensity when a
//!    provider is configured) and hands the record to every sink.

use crate::config::Config;
use crate::messages::Messages;
use crate::monitor::{Looks, Monitor, MonitorConfig, MonitorState, Stopper};
use crate::options::{check_interval, OptionError, RunOptions, CHECKPOINT_RANGE};
use crate::paths::Paths;
use crate::provider_config::{self, Configured};
use crate::segments::{Live, SegmentTracker};
use crate::sink::{JsonFileSink, RunSink, Sinks, StoreSink, UploadSink};
use crate::upload::{ServerTarget, Uploader};
use crate::{measure, server_policy};
use anyhow::Result;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wattprint_core::env::Env;
use wattprint_core::host::HostPaths;
use wattprint_core::limits::{self, LimitKind, Limits};
use wattprint_core::providers;
use wattprint_core::record::{
    self, CarbonContext, Ending, RunMeta, RunRecord, RunStatus, TrackerUsage,
};
use wattprint_core::sampler::{Snapshot, SnapshotWatch};
use wattprint_core::units::parse_duration;
use wattprint_store::{clock, store::Store};

/// What a session needs from the place it runs in, captured by the front end.
#[derive(Clone)]
pub struct SessionContext {
    /// The environment the measured work runs in.
    pub env: Env,
    /// Data directory (store, spool, caches).
    pub paths: Paths,
    /// Roots of `/sys` and `/proc`.
    pub host: HostPaths,
    /// Where the session's messages go.
    pub msgs: Messages,
    /// The runtime directory of the host ledger (`None`: the ledger is off and the run is
    /// charged as if alone on the machine).
    pub runtime_dir: Option<PathBuf>,
}

impl SessionContext {
    /// Everything from `env`, messages to `msgs`.
    pub fn from_env(env: Env, msgs: Messages) -> SessionContext {
        SessionContext {
            paths: Paths::resolve(&env),
            host: HostPaths::from_env(&env),
            runtime_dir: wattprint_core::host_ledger::runtime_dir(&env),
            env,
            msgs,
        }
    }
}

/// A session resolved but not yet measuring.
pub struct Prepared {
    opts: RunOptions,
    ctx: SessionContext,
    interval: Duration,
    checkpoint_every: Duration,
    project: String,
    limits: Limits,
    limit_notes: Vec<String>,
    server: Option<ServerTarget>,
    provider: Option<Configured>,
    zone: Option<String>,
    carbon: CarbonContext,
    notes: Vec<String>,
    json: Option<PathBuf>,
}

/// The cadence of a run nobody watches live (no live line, no API reading it, no limits):
/// its limit watcher, its I/O reader and, as a host-ledger follower, its look at the ledger
/// wake at each checkpoint instead of every interval. `None`: every interval.
fn quiet_cadence(
    opts: &RunOptions,
    limits: &Limits,
    checkpoint_every: Duration,
) -> Option<Duration> {
    (!opts.live && limits.is_empty()).then_some(checkpoint_every)
}

/// How often the running record is saved: the option, else `WATTPRINT_CHECKPOINT_EVERY`,
/// else every 10 s (at most 10 s, so a crash never loses more than that).
fn checkpoint_every(opts: &RunOptions, env: &Env) -> Result<Duration> {
    if let Some(d) = opts.checkpoint_every {
        return Ok(d);
    }
    match env.get("WATTPRINT_CHECKPOINT_EVERY") {
        Some(v) => {
            let d = parse_duration(v)
                .map_err(|e| anyhow::anyhow!("WATTPRINT_CHECKPOINT_EVERY: {e}"))?;
            if d < CHECKPOINT_RANGE.0 || d > CHECKPOINT_RANGE.1 {
                anyhow::bail!("WATTPRINT_CHECKPOINT_EVERY={v}: must be between 100ms and 10s");
            }
            Ok(d)
        }
        None => Ok(CHECKPOINT_RANGE.1),
    }
}

impl Prepared {
    /// Validate `opts` and resolve everything they leave to files, the environment and the
    /// server. Errors are the user's to fix (an [`OptionError`] for a bad option).
    pub fn prepare(opts: RunOptions, ctx: SessionContext) -> Result<Prepared> {
        opts.validate()?;
        let env = &ctx.env;
        let config = Config::load(env)?;
        let interval = match (opts.interval, config.interval()) {
            (Some(i), _) => i,
            (None, Some(s)) => {
                let d = parse_duration(&s).map_err(|e| {
                    OptionError::new("interval", &s, format!("(configuration file) {e}"))
                })?;
                check_interval(d, &s)?
            }
            (None, None) => wattprint_core::sampler::DEFAULT_INTERVAL,
        };
        let checkpoint_every = checkpoint_every(&opts, env)?.max(interval);
        let mut user_limits = config.user_limits()?;
        let l = &opts.limits;
        if let Some(d) = l.max_duration {
            user_limits.max_duration_s = Some(d.as_secs_f64());
        }
        if l.budget_kwh.is_some() {
            user_limits.budget_kwh = l.budget_kwh;
        }
        if l.budget_kg.is_some() {
            user_limits.budget_kg = l.budget_kg;
        }
        if let Some(a) = l.budget_action {
            user_limits.action = a;
        }
        user_limits.predict_stop |= l.predict_stop;
        // The server's policy joins the institution's limits (cached when unreachable).
        let server = ServerTarget::resolve(opts.server.as_deref(), &config, env, &ctx.msgs)?;
        let (policy, policy_notes) = server
            .as_ref()
            .map(|s| server_policy::fetch(s, ctx.paths.policy_cache()))
            .unwrap_or_default();
        let institution = server_policy::stricter(&config.institution_limits()?, &policy);
        let (limits, mut limit_notes) = limits::combine(&institution, &user_limits);
        limit_notes.extend(policy_notes);
        limit_notes.extend(config.warnings.iter().cloned());
        let provider = provider_config::configured(opts.provider, false, env)?;
        let carbon = opts.carbon.resolve(env)?;
        let project = opts
            .project
            .clone()
            .or_else(|| env.get("WATTPRINT_PROJECT").map(str::to_string))
            .or_else(|| config.project())
            .unwrap_or_else(|| "default".to_string());
        let zone = opts.zone.clone().or_else(|| {
            (carbon.location.known && !carbon.location.code.contains(':'))
                .then(|| carbon.location.code.clone())
                .or_else(|| {
                    provider
                        .as_ref()
                        .and_then(|p| p.kind.default_zone().map(str::to_string))
                })
        });
        let mut carbon = carbon;
        if let (Some(p), Some(z)) = (provider.as_ref(), zone.as_deref()) {
            providers::revalue::live_location_note(&mut carbon, p.kind.name(), z);
        }
        Ok(Prepared {
            opts,
            ctx,
            interval,
            checkpoint_every,
            project,
            limits,
            limit_notes,
            server,
            provider,
            zone,
            carbon,
            notes: Vec::new(),
            json: None,
        })
    }

    /// The live-intensity provider in force, if any.
    pub fn provider(&self) -> Option<&Configured> {
        self.provider.as_ref()
    }

    /// The grid zone for the provider: the option, else the location, else the provider's.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_deref()
    }

    /// The combined limits (institution's and user's).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A note for the record (e.g. how the start time was chosen).
    pub fn add_note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Also write the final record as JSON to `path`.
    pub fn json_file(&mut self, path: impl Into<PathBuf>) {
        self.json = Some(path.into());
    }

    /// Start measuring. `extra_sinks` come after the local store, the server and the JSON
    /// file.
    pub fn start(self, extra_sinks: Vec<Box<dyn RunSink>>) -> Session {
        let Prepared {
            opts,
            ctx,
            interval,
            checkpoint_every,
            project,
            limits,
            limit_notes,
            server,
            provider,
            zone,
            mut carbon,
            notes,
            json,
        } = self;
        let msgs = ctx.msgs.clone();
        let id = uuid::Uuid::new_v4().to_string();
        let job = opts
            .job
            .clone()
            .or_else(|| wattprint_core::job::from_env(&ctx.env));
        let m = measure::start_shared(
            &ctx.host,
            &measure::discover_options(&ctx.env, opts.cpu_tdp_w, opts.nvml_library.clone())
                .with_amdsmi_library(opts.amdsmi_library.clone()),
            opts.scope,
            interval,
            ctx.runtime_dir.clone().map(|runtime_dir| measure::Share {
                runtime_dir,
                run_id: id.clone(),
                job: job.clone(),
                local_rank: wattprint_core::job::local_rank(&ctx.env),
                agent: false,
                cpus: ctx
                    .env
                    .get("SLURM_CPUS_ON_NODE")
                    .and_then(|v| v.trim().parse().ok()),
                idle_follow: quiet_cadence(&opts, &limits, checkpoint_every),
            }),
        );
        let mut shown: Vec<String> = Vec::new();
        for w in m
            .warnings
            .iter()
            .chain(carbon.warnings.iter())
            .chain(limit_notes.iter())
        {
            msgs.warn(w);
            shown.push(w.clone());
        }
        // Checked by `RunOptions::validate` before a session is prepared.
        let instance = opts.instance().ok().flatten();
        let (embodied, embodied_note, not_counted) =
            measure::embodied(&m, opts.no_embodied, opts.embodied_share, instance);
        carbon.embodied = embodied;
        carbon.embodied_not_counted = not_counted;

        let mut sinks: Vec<Box<dyn RunSink>> = Vec::new();
        let mut tracker_lock = None;
        // The server first: it may add warnings the store and the file then keep.
        if let Some(s) = &server {
            let up = Uploader::for_run(s, &id, &ctx.paths, msgs.clone());
            sinks.push(Box::new(UploadSink::new(up, s.url.clone())));
        }
        match ctx
            .paths
            .store_db()
            .map_err(anyhow::Error::msg)
            .and_then(|p| Store::open(&p).map(|s| (s, p)))
        {
            Ok((st, p)) => {
                // Held while the run is measured: readers tell a live run from one whose
                // tracker died.
                tracker_lock = p
                    .parent()
                    .and_then(|dir| wattprint_store::liveness::TrackerLock::acquire(dir, &id));
                sinks.push(Box::new(StoreSink::new(st, p.display().to_string())))
            }
            // Said even when quiet: without the store the record may be lost.
            Err(e) => msgs.loss(&format!(
                "local store unavailable ({e:#}); the run will not be saved there{}",
                if json.is_some() {
                    " (the --json file is still written)"
                } else {
                    ""
                }
            )),
        }
        if let Some(p) = &json {
            sinks.push(Box::new(JsonFileSink::new(p.clone())));
        }
        sinks.extend(extra_sinks);
        let mut sinks = Sinks::new(sinks, msgs.clone());

        let mut m = m;
        if let Some(h) = ctx
            .env
            .get("WATTPRINT_HOSTNAME")
            .and_then(wattprint_core::job::check_key)
        {
            // A node's name as the job's other nodes know it (and simulated nodes in tests).
            m.host.hostname = h;
        }
        let meta = RunMeta {
            id,
            project,
            tags: opts.tags.clone(),
            command: opts.command.clone(),
            started_at: clock::now_rfc3339(),
            host: m.host.clone(),
            scope: opts.scope,
            interval_s: interval.as_secs_f64(),
            start_unix: unix_now(),
        };
        let mut warnings: Vec<String> = m.warnings.clone();
        warnings.extend(embodied_note);
        warnings.extend(limit_notes.iter().cloned());
        warnings.extend(notes);
        let record_limits = (!limits.is_empty()).then(|| limits.clone());
        let progress_file = ctx
            .paths
            .progress_dir()
            .join(format!("{}.progress", meta.id));
        let mon_state = Arc::new(Mutex::new(MonitorState::default()));
        let first = m.sampler.snapshot();
        let origin = Instant::now()
            .checked_sub(first.elapsed)
            .unwrap_or_else(Instant::now);
        let segments = Arc::new(Mutex::new(SegmentTracker::new(
            origin,
            interval,
            carbon.pue * carbon.intensity_g_per_kwh / 1000.0,
        )));
        let base = RecordBase {
            meta,
            carbon,
            warnings,
            limits: record_limits,
            monitor: Arc::clone(&mon_state),
            segments,
            job_nodes: job.as_ref().and(
                opts.job_nodes
                    .or_else(|| wattprint_core::job::expected_nodes(&ctx.env)),
            ),
            job_nodelist: job
                .as_ref()
                .and_then(|_| wattprint_core::job::nodelist(&ctx.env)),
            job,
            ledger: m.ledger.clone(),
            lineage: opts.lineage.clone().with_env(&ctx.env).non_empty(),
            checkpoints: Arc::new(Mutex::new(Vec::new())),
        };
        // First record right away, so even a crash in the first seconds leaves one.
        sinks.begin(&base.record(&first));
        let sinks = Arc::new(Mutex::new(sinks));
        let checkpointer = Checkpointer::start(
            Arc::new(base.clone()),
            m.sampler.watch(),
            Arc::clone(&sinks),
            checkpoint_every,
        );
        let quiet = quiet_cadence(&opts, &limits, checkpoint_every);
        Session {
            ctx,
            opts,
            interval,
            limits,
            base,
            provider,
            zone,
            measured: m,
            sinks,
            checkpointer: Some(checkpointer),
            monitor: None,
            mon_state,
            progress_file,
            shown,
            io: None,
            quiet_cadence: quiet,
            _tracker_lock: tracker_lock,
        }
    }
}

/// What every record of the run shares: built once, completed from a snapshot.
#[derive(Clone)]
struct RecordBase {
    meta: RunMeta,
    carbon: CarbonContext,
    warnings: Vec<String>,
    limits: Option<Limits>,
    monitor: Arc<Mutex<MonitorState>>,
    segments: Arc<Mutex<SegmentTracker>>,
    job: Option<String>,
    job_nodes: Option<u32>,
    job_nodelist: Option<Vec<String>>,
    ledger: Option<wattprint_core::host_ledger::HostLedger>,
    lineage: Option<wattprint_core::lineage::Lineage>,
    /// Unix times of the checkpoints the work said it saved (`checkpoint_saved`).
    checkpoints: Arc<Mutex<Vec<f64>>>,
}

impl RecordBase {
    /// A running record at `snap`.
    fn record(&self, snap: &Snapshot) -> RunRecord {
        let mut rec = record::build_record(
            &self.meta,
            &self.carbon,
            snap,
            RunStatus::Running,
            &Ending::default(),
            &self.warnings,
        );
        rec.limits = self.limits.clone();
        self.sharing(&mut rec);
        if let Ok(m) = self.monitor.lock() {
            rec.limit_events = m.events.clone();
            rec.prediction = m.prediction.clone();
        }
        if let Ok(s) = self.segments.lock() {
            rec.segments = s.view(&rec, None);
        }
        rec
    }
}

impl RecordBase {
    /// The job key and how the run shared the machine so far.
    fn sharing(&self, rec: &mut RunRecord) {
        rec.job = self.job.clone();
        rec.job_nodes = self.job_nodes;
        rec.job_nodelist = self.job_nodelist.clone();
        rec.sharing = self.ledger.as_ref().map(|l| l.sharing());
        rec.lineage = self.lineage.clone();
    }
}

/// The checkpoint thread: a running record to every sink at the session's cadence, or at
/// once when asked.
struct Checkpointer {
    tx: mpsc::Sender<Ask>,
    thread: JoinHandle<()>,
    /// Called before each checkpoint: the watchers of a quiet run (see `Session::attach`).
    before: Hooks,
}

/// Functions the checkpoint thread calls before each checkpoint.
type Hooks = Arc<Mutex<Vec<Box<dyn FnMut() + Send>>>>;

enum Ask {
    Now(mpsc::Sender<()>),
    Stop,
}

impl Checkpointer {
    fn start(
        base: Arc<RecordBase>,
        watch: SnapshotWatch,
        sinks: Arc<Mutex<Sinks>>,
        every: Duration,
    ) -> Checkpointer {
        let (tx, rx) = mpsc::channel::<Ask>();
        let before: Hooks = Arc::default();
        let hooks = Arc::clone(&before);
        let thread = std::thread::Builder::new()
            .name("wattprint-checkpoint".into())
            .spawn(move || {
                let save = || {
                    if let Ok(mut hooks) = hooks.lock() {
                        hooks.iter_mut().for_each(|f| f());
                    }
                    let rec = base.record(&watch.get());
                    if let Ok(mut s) = sinks.lock() {
                        s.checkpoint(&rec);
                    }
                };
                let mut due = Instant::now() + every;
                loop {
                    match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                        Ok(Ask::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        Ok(Ask::Now(done)) => {
                            save();
                            let _ = done.send(());
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            save();
                            due = Instant::now() + every;
                        }
                    }
                }
            })
            .expect("spawning the checkpoint thread");
        Checkpointer { tx, thread, before }
    }

    fn now(&self) {
        let (done_tx, done_rx) = mpsc::channel();
        if self.tx.send(Ask::Now(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    fn stop(self) {
        let _ = self.tx.send(Ask::Stop);
        let _ = self.thread.join();
    }
}

/// How the tracker's own cost is measured.
#[derive(Debug, Clone, Copy)]
pub enum SelfUsage {
    /// wattprint is its own process (the CLI): the process's CPU time and peak memory, and
    /// the time from the process's start to the job's spawn.
    Process { startup_ms: f64 },
    /// wattprint runs inside someone else's process (Python, slurmstepd): the CPU time of the
    /// sampler thread; memory is not ours to tell apart.
    SamplerThread { startup_ms: f64 },
}

/// A measuring session.
pub struct Session {
    ctx: SessionContext,
    opts: RunOptions,
    interval: Duration,
    limits: Limits,
    base: RecordBase,
    provider: Option<Configured>,
    zone: Option<String>,
    measured: measure::Measured,
    sinks: Arc<Mutex<Sinks>>,
    checkpointer: Option<Checkpointer>,
    monitor: Option<Monitor>,
    mon_state: Arc<Mutex<MonitorState>>,
    progress_file: PathBuf,
    shown: Vec<String>,
    /// The job's I/O, once a job is attached.
    io: Option<crate::io_watch::IoWatch>,
    /// See [`quiet_cadence`].
    quiet_cadence: Option<Duration>,
    /// Released when the session ends (after the final save), however it ends.
    _tracker_lock: Option<wattprint_store::liveness::TrackerLock>,
}

/// A finished session.
pub struct Finished {
    pub record: RunRecord,
    /// The final state, with the power series.
    pub snapshot: Snapshot,
    /// Messages the user has already seen (the summary does not repeat them).
    pub shown: Vec<String>,
    /// Whether the local store kept the record (`wattprint show ID` works).
    pub saved_locally: bool,
}

impl Session {
    pub fn run_id(&self) -> &str {
        &self.base.meta.id
    }

    /// The file the work may write its progress to (a fraction, or `done/total`).
    pub fn progress_file(&self) -> &std::path::Path {
        &self.progress_file
    }

    /// The file the work may state its units of work in (`N UNIT`, see [`crate::work_file`]).
    pub fn work_file(&self) -> std::path::PathBuf {
        self.progress_file.with_extension("work")
    }

    /// Variables to give the measured work: its run id and progress file.
    pub fn child_env(&self) -> Vec<(String, String)> {
        vec![
            ("WATTPRINT_RUN_ID".to_string(), self.base.meta.id.clone()),
            (
                "WATTPRINT_PROGRESS_FILE".to_string(),
                self.progress_file.display().to_string(),
            ),
            (
                "WATTPRINT_WORK_FILE".to_string(),
                self.work_file().display().to_string(),
            ),
        ]
    }

    /// Live totals (no series).
    pub fn watch(&self) -> SnapshotWatch {
        self.measured.sampler.watch()
    }

    /// The carbon factors in force.
    pub fn carbon(&self) -> &CarbonContext {
        &self.base.carbon
    }

    /// What the limit watcher has seen (events, prediction, stop), live.
    pub fn monitor_state(&self) -> Arc<Mutex<MonitorState>> {
        Arc::clone(&self.mon_state)
    }

    /// Measure the process tree of `pid` (process scope charges it) and watch the limits,
    /// stopping the work through `stopper`.
    pub fn attach(&mut self, pid: u32, stopper: Box<dyn Stopper>) {
        self.measured.job_pid.store(pid, Ordering::SeqCst);
        if let Some(l) = &self.measured.ledger {
            l.set_root(pid);
        }
        // When nobody watches the run live and it has no limits, its I/O reader and limit
        // watcher look at each checkpoint, from the checkpoint thread (no thread of their own
        // to wake); otherwise each has its thread, looking every interval (the I/O reader
        // 1 s to 5 s).
        let quiet = self.quiet_cadence.is_some();
        if self.io.is_none() {
            let every = (!quiet).then(|| {
                self.interval
                    .clamp(Duration::from_secs(1), Duration::from_secs(5))
            });
            let io = crate::io_watch::IoWatch::start(self.ctx.host.clone(), pid, every);
            if quiet {
                self.before_checkpoint(io.sampler());
            }
            self.io = Some(io);
        }
        if self.monitor.is_some() {
            return;
        }
        let c = &self.base.carbon;
        let monitor = Monitor::start(
            if quiet {
                Looks::WhenAsked
            } else {
                Looks::OwnThread
            },
            MonitorConfig {
                limits: self.limits.clone(),
                tick: self.quiet_cadence.unwrap_or_else(|| {
                    self.interval
                        .clamp(Duration::from_millis(10), Duration::from_secs(1))
                }),
                kg_per_kwh: c.pue * c.intensity_g_per_kwh / 1000.0,
                progress_file: Some(self.progress_file.clone()),
                expected_duration: self.opts.limits.expected_duration,
                stop_signal: self.opts.limits.stop_signal,
                grace: self.opts.limits.grace,
                job_energy_j: self
                    .measured
                    .ledger
                    .clone()
                    .map(|l| Box::new(move || l.job_energy_j()) as crate::monitor::JobEnergy),
            },
            self.measured.sampler.watch(),
            stopper,
            Instant::now(),
            Arc::clone(&self.mon_state),
            self.ctx.msgs.clone(),
        );
        if let Some(look) = monitor.looker() {
            self.before_checkpoint(look);
        }
        self.monitor = Some(monitor);
    }

    /// Have the checkpoint thread call `f` before each checkpoint.
    fn before_checkpoint(&self, f: Box<dyn FnMut() + Send>) {
        if let Some(c) = &self.checkpointer {
            if let Ok(mut hooks) = c.before.lock() {
                hooks.push(f);
            }
        }
    }

    /// The windows, stages and work units the measured code reports (see
    /// [`crate::segments`]); they are in every checkpoint and in the final record.
    pub fn segments(&self) -> Arc<Mutex<SegmentTracker>> {
        Arc::clone(&self.base.segments)
    }

    /// Energy and emissions so far, cheaply (no series is copied).
    pub fn live(&self) -> Live {
        let snap = self.measured.sampler.watch().get();
        match self.base.segments.lock() {
            Ok(s) => s.live(&snap),
            Err(p) => p.into_inner().live(&snap),
        }
    }

    /// The work's progress, `done` of `total` (feeds the P10–P90 prediction the limit
    /// watcher makes): written to the progress file as `done/total`.
    pub fn report_progress(&self, done: f64, total: f64) -> Result<(), OptionError> {
        if !(total.is_finite() && total > 0.0) {
            return Err(OptionError::new(
                "total",
                total,
                "must be a positive number",
            ));
        }
        if !(done.is_finite() && (0.0..=total).contains(&done)) {
            return Err(OptionError::new(
                "done",
                done,
                "must be between 0 and total",
            ));
        }
        let tmp = self.progress_file.with_extension("progress.tmp");
        std::fs::write(&tmp, format!("{done}/{total}\n"))
            .and_then(|_| std::fs::rename(&tmp, &self.progress_file))
            .map_err(|e| {
                OptionError::new(
                    "progress",
                    self.progress_file.display(),
                    format!("cannot write the progress file: {e}"),
                )
            })
    }

    /// The work saved a checkpoint now: a failure later discards only what follows (see
    /// [`wattprint_core::waste`]).
    pub fn checkpoint_saved(&self) {
        if let Ok(mut c) = self.base.checkpoints.lock() {
            if (c.len() as u64) < wattprint_core::waste::MAX_CHECKPOINTS {
                c.push(unix_now());
            } else if let Some(last) = c.last_mut() {
                *last = unix_now();
            }
        }
    }

    /// The job has exited and is not reaped yet: read its I/O counters one last time.
    pub fn job_exited(&self) {
        if let Some(io) = &self.io {
            io.sample_now();
        }
    }

    /// Save a running record to every sink now (and wait for it).
    pub fn checkpoint(&self) {
        if let Some(c) = &self.checkpointer {
            c.now();
        }
    }

    /// The work never started: stop measuring and forget the run.
    pub fn discard(mut self) {
        if let Some(c) = self.checkpointer.take() {
            c.stop();
        }
        let _ = self.measured.sampler.stop();
        if let Some(l) = &self.measured.ledger {
            l.leave();
        }
        if let Ok(mut s) = self.sinks.lock() {
            s.discard(&self.base.meta.id);
        }
    }

    /// Final reading, valuation and record, handed to every sink. `status` is how the work
    /// ended by itself; a stop by a cap or budget overrides it. `warnings` are the front
    /// end's own (e.g. a signal it passed on).
    pub fn finish(
        mut self,
        ending: Ending,
        mut status: RunStatus,
        warnings: Vec<String>,
        usage: SelfUsage,
    ) -> Finished {
        let mon = match self.monitor.take() {
            Some(m) => m.finish(),
            None => self.mon_state.lock().map(|s| s.clone()).unwrap_or_default(),
        };
        if let Some(c) = self.checkpointer.take() {
            c.stop();
        }
        let thread_cpu = self.measured.sampler.thread_cpu();
        if let Some(l) = &self.measured.ledger {
            // The sampler's final read is the last one charged to this run.
            l.leave_at_next_read();
        }
        let snapshot = self.measured.sampler.stop();
        if let Some(l) = &self.measured.ledger {
            l.leave();
        }
        let (checkpoint_note, from_file) = crate::discarded::file_checkpoints(&self.progress_file);
        let _ = std::fs::remove_file(&self.progress_file);
        let work_file = self.progress_file.with_extension("work");
        let work_note = match crate::work_file::read(&work_file) {
            Some(Ok((n, unit))) => match self.base.segments.lock() {
                Ok(mut s) => s.set_total_work(n, &unit).err(),
                Err(_) => None,
            },
            Some(Err(e)) => Some(e),
            None => None,
        };
        let _ = std::fs::remove_file(&work_file);
        if let Some(st) = &mon.stopped {
            status = match st.limit {
                LimitKind::MaxDuration => RunStatus::StoppedByCap,
                _ => RunStatus::StoppedByBudget,
            };
        }
        let mut base = self.base.clone();
        base.warnings.extend(warnings);
        base.warnings.extend(mon.warnings.iter().cloned());
        base.warnings.extend(work_note);
        base.warnings.extend(checkpoint_note);
        if let (Some(p), Some(z)) = (self.provider.as_ref(), self.zone.as_deref()) {
            let end = base.meta.start_unix + snapshot.elapsed.as_secs_f64();
            let notes = providers::revalue_run(
                p.provider.as_ref(),
                z,
                base.meta.start_unix.floor() as i64,
                end.ceil() as i64,
                &mut base.carbon,
            );
            for n in p.take_debug_notes() {
                self.ctx.msgs.say(crate::messages::Level::Debug, &n);
            }
            base.warnings.extend(notes);
        }
        let mut rec = record::build_record(
            &base.meta,
            &base.carbon,
            &snapshot,
            status,
            &ending,
            &base.warnings,
        );
        rec.tracker = Some(match usage {
            SelfUsage::Process { startup_ms } => process_usage(startup_ms),
            SelfUsage::SamplerThread { startup_ms } => TrackerUsage {
                cpu_s: thread_cpu.as_secs_f64(),
                max_rss_mb: None,
                startup_ms,
            },
        });
        rec.limits = base.limits.clone();
        base.sharing(&mut rec);
        rec.limit_events = mon.events;
        rec.stopped = mon.stopped;
        rec.prediction = mon.prediction;
        if let Ok(s) = base.segments.lock() {
            rec.segments = s.view(&rec, Some(&snapshot));
        }
        let mut checkpoints = base
            .checkpoints
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        checkpoints.extend(from_file);
        if let Some(io) = self.io.take() {
            rec.io = Some(io.finish(base.carbon.pue, rec.carbon_intensity.g_per_kwh));
        }
        rec.discarded =
            crate::discarded::discarded(&rec, &snapshot, base.meta.start_unix, &checkpoints);
        let (shown, saved_locally) = match self.sinks.lock() {
            Ok(mut s) => s.finish(&mut rec, &snapshot),
            Err(p) => p.into_inner().finish(&mut rec, &snapshot),
        };
        let mut all_shown = std::mem::take(&mut self.shown);
        all_shown.extend(shown);
        Finished {
            record: rec,
            snapshot,
            shown: all_shown,
            saved_locally,
        }
    }
}

/// wattprint's own CPU time and peak RSS (RUSAGE_SELF: the job is not included).
fn process_usage(startup_ms: f64) -> TrackerUsage {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0;
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    TrackerUsage {
        cpu_s: if ok {
            tv(ru.ru_utime) + tv(ru.ru_stime)
        } else {
            f64::NAN
        },
        // VmHWM is this program's own peak; ru_maxrss also counts the image that exec'd us
        // (Linux keeps the pre-exec high-water mark), which would charge us our parent's size.
        max_rss_mb: own_peak_rss_kb()
            .map(|kb| kb as f64 / 1024.0)
            .or(ok.then_some(ru.ru_maxrss as f64 / 1024.0)),
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

/// Unix time now, seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
