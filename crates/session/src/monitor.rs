//! Watching a running job against its caps and budgets, predicting its final totals, and
//! stopping it cleanly: the stop signal, a grace period to checkpoint, then SIGKILL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wattprint_core::limits::{
    BudgetAction, EventLevel, LimitEvent, LimitKind, LimitTracker, Limits, Spent,
};
use wattprint_core::prediction::{self, Basis, Prediction};
use wattprint_core::record::StopInfo;
use wattprint_core::sampler::SnapshotWatch;

use crate::messages::Messages;

/// Settings of the monitor.
pub struct MonitorConfig {
    pub limits: Limits,
    /// How often limits are checked at most (the sampling interval: budgets only change when a
    /// sample arrives); the duration cap and the grace period wake the watcher at their own
    /// deadlines, whatever the tick.
    pub tick: Duration,
    /// kg CO2e per kWh of IT energy (PUE × intensity), to turn energy into emissions live.
    pub kg_per_kwh: f64,
    pub progress_file: Option<PathBuf>,
    pub expected_duration: Option<Duration>,
    pub stop_signal: i32,
    pub grace: Duration,
    /// The energy of the whole job on this node, joules, when the run is one rank of a job
    /// (the host ledger charges the job's leader): budgets watch the larger of it and the
    /// run's own energy.
    pub job_energy_j: Option<JobEnergy>,
}

/// Reads the energy of the job a run belongs to (see [`MonitorConfig::job_energy_j`]).
pub type JobEnergy = Box<dyn Fn() -> Option<f64> + Send>;

/// What the monitor saw and did, shared with the run command.
#[derive(Debug, Default, Clone)]
pub struct MonitorState {
    pub events: Vec<LimitEvent>,
    pub stopped: Option<StopInfo>,
    pub prediction: Option<Prediction>,
    pub warnings: Vec<String>,
}

pub struct Monitor {
    pub state: Arc<Mutex<MonitorState>>,
    /// Dropping (or sending on) it wakes the thread at once: no tick is waited out at the end.
    done: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// A watcher that looks when asked ([`Monitor::looker`]).
    driven: Option<Arc<Mutex<Watcher>>>,
}

/// How a session stops what it measures when a cap or budget says so: the CLI signals its
/// child, the Slurm plugin signals the step and then cancels the job, Python raises at the
/// next step.
pub trait Stopper: Send {
    /// Ask the work to stop (it gets the grace period to checkpoint and exit).
    fn stop(&mut self, signal: i32);
    /// The grace period is over and the work is still there: end it.
    fn kill(&mut self);
    /// Whether the work has ended (then no kill is needed).
    fn ended(&self) -> bool;
}

/// A child process of ours: the stop signal, then SIGKILL; ended once it can be reaped.
pub struct ChildStopper(pub u32);

impl Stopper for ChildStopper {
    fn stop(&mut self, signal: i32) {
        // SAFETY: kill(2) on the job's pid with a valid signal number.
        unsafe {
            libc::kill(self.0 as libc::pid_t, signal);
        }
    }

    fn kill(&mut self) {
        self.stop(libc::SIGKILL);
    }

    fn ended(&self) -> bool {
        // SAFETY: siginfo_t is plain data; waitid with WNOHANG|WNOWAIT only inspects the child.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                self.0 as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // With WNOHANG, si_pid stays 0 while the child runs.
        r != 0 || unsafe { info.si_pid() } != 0
    }
}

/// A flag the work polls (Python raises at its next step); `ended` once it has been raised.
#[derive(Clone, Default)]
pub struct FlagStopper(pub Arc<AtomicBool>);

impl Stopper for FlagStopper {
    fn stop(&mut self, _signal: i32) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn kill(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn ended(&self) -> bool {
        false
    }
}

/// When the watcher looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looks {
    /// From a thread of its own: at once, every tick (sooner for the duration cap and the grace
    /// period), and the moment the work is done.
    OwnThread,
    /// When its owner calls [`Monitor::looker`]'s function (at each checkpoint), and once more
    /// at [`Monitor::finish`]: for work without limits that nobody watches live.
    WhenAsked,
}

impl Monitor {
    /// Start watching the work `stopper` can stop; `state` is shared with whoever wants to
    /// read it live.
    pub fn start(
        looks: Looks,
        cfg: MonitorConfig,
        watch: SnapshotWatch,
        stopper: Box<dyn Stopper>,
        started: Instant,
        state: Arc<Mutex<MonitorState>>,
        msgs: Messages,
    ) -> Monitor {
        let w = Watcher {
            tracker: LimitTracker::new(cfg.limits.clone()),
            cfg,
            watch,
            stopper,
            started,
            state: Arc::clone(&state),
            msgs,
            energy_hist: vec![(0.0, 0.0)],
            progress_hist: Vec::new(),
            last_samples: 0,
            last_progress_read: Instant::now() - Duration::from_secs(10),
            progress_warned: false,
            stop_at: None,
        };
        if looks == Looks::WhenAsked {
            return Monitor {
                state,
                done: None,
                thread: None,
                driven: Some(Arc::new(Mutex::new(w))),
            };
        }
        let (done, done_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("wattprint-monitor".into())
            .spawn(move || run(w, done_rx))
            .ok();
        Monitor {
            state,
            done: Some(done),
            thread,
            driven: None,
        }
    }

    /// For a watcher that looks when asked ([`Looks::WhenAsked`]): one look each time the
    /// function is called.
    pub fn looker(&self) -> Option<Box<dyn FnMut() + Send>> {
        let w = Arc::clone(self.driven.as_ref()?);
        Some(Box::new(move || {
            if let Ok(mut w) = w.lock() {
                w.look(false);
            }
        }))
    }

    pub fn finish(mut self) -> MonitorState {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(w) = self.driven.take() {
            match w.lock() {
                Ok(mut w) => w.look(true),
                Err(p) => p.into_inner().look(true),
            };
        }
        match self.state.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

/// The watcher's memory between looks.
struct Watcher {
    cfg: MonitorConfig,
    watch: SnapshotWatch,
    stopper: Box<dyn Stopper>,
    started: Instant,
    state: Arc<Mutex<MonitorState>>,
    msgs: Messages,
    tracker: LimitTracker,
    energy_hist: Vec<(f64, f64)>,
    progress_hist: Vec<(f64, f64)>,
    last_samples: u64,
    last_progress_read: Instant,
    progress_warned: bool,
    stop_at: Option<(Instant, LimitKind)>,
}

/// What a look leaves the watcher to do.
enum Next {
    /// Look again after this long (or at once when the work is done).
    Wait(Duration),
    /// The last look is done.
    Done,
    /// The work was killed after its grace period: nothing more to do but wait for the end.
    Idle,
}

impl Watcher {
    /// One look: the energy so far, the progress file, the prediction and (unless it is the
    /// last look, the work being over) the limits.
    fn look(&mut self, last_look: bool) -> Next {
        let cfg = &self.cfg;
        let now = Instant::now();
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let snap = self.watch.get();
        let job_kwh = cfg
            .job_energy_j
            .as_ref()
            .and_then(|f| f())
            .filter(|j| j.is_finite())
            .map_or(0.0, |j| j / 3.6e6);
        let kwh = snap.total_energy().kwh().0.max(job_kwh);
        if snap.samples != self.last_samples {
            self.last_samples = snap.samples;
            self.energy_hist.push((snap.elapsed.as_secs_f64(), kwh));
            // keep the history bounded: thin the older half when it grows
            if self.energy_hist.len() > 4096 {
                let keep: Vec<(f64, f64)> = self
                    .energy_hist
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 2 == 0)
                    .map(|(_, x)| *x)
                    .collect();
                self.energy_hist = keep;
            }
        }
        if let Some(pf) = &cfg.progress_file {
            if last_look
                || now.duration_since(self.last_progress_read)
                    >= cfg.tick.min(Duration::from_millis(500))
            {
                self.last_progress_read = now;
                match std::fs::read_to_string(pf) {
                    Ok(t) if prediction::has_progress(&t) => match prediction::parse_progress(&t) {
                        Ok(p) => {
                            if self.progress_hist.last().is_none_or(|(_, q)| *q != p) {
                                self.progress_hist.push((elapsed, p));
                            }
                        }
                        Err(e) => {
                            if !self.progress_warned {
                                self.progress_warned = true;
                                let w = format!("progress file {}: {e}", pf.display());
                                self.msgs.warn(&w);
                                if let Ok(mut s) = self.state.lock() {
                                    s.warnings.push(w);
                                }
                            }
                        }
                    },
                    _ => {}
                }
            }
        }
        let basis = match cfg.expected_duration {
            Some(d) => Some(Basis::ExpectedDuration(d.as_secs_f64())),
            None if !self.progress_hist.is_empty() => Some(Basis::Progress),
            None => None,
        };
        let pred = basis.and_then(|b| {
            prediction::predict(&self.energy_hist, &self.progress_hist, b, cfg.kg_per_kwh)
        });
        if last_look {
            // The work is over: the prediction from everything seen (a quiet run looks only
            // at each checkpoint), no limit is checked any more.
            if let (Some(p), Ok(mut s)) = (pred, self.state.lock()) {
                s.prediction = Some(p);
            }
            return Next::Done;
        }
        let spent = Spent {
            elapsed_s: elapsed,
            kwh,
            kg: kwh * cfg.kg_per_kwh,
        };
        let events = self.tracker.check(&spent, pred.as_ref());
        if let Ok(mut s) = self.state.lock() {
            if pred.is_some() {
                s.prediction = pred.clone();
            }
            for ev in &events {
                s.events.push(ev.clone());
            }
        }
        for ev in events {
            match ev.level {
                EventLevel::Warning => self.msgs.warn(&ev.message),
                EventLevel::Reached | EventLevel::Predicted => {
                    // The duration cap always stops; budgets stop unless the action is warn.
                    let stop = ev.kind == LimitKind::MaxDuration
                        || cfg.limits.action == BudgetAction::Stop;
                    if stop && self.stop_at.is_none() {
                        self.msgs.info(&format!(
                            "{}; stopping the job (signal {}, grace {:.0} s)",
                            ev.message,
                            cfg.stop_signal,
                            cfg.grace.as_secs_f64()
                        ));
                        self.stopper.stop(cfg.stop_signal);
                        self.stop_at = Some((now, ev.kind));
                        if let Ok(mut s) = self.state.lock() {
                            s.stopped = Some(StopInfo {
                                limit: ev.kind,
                                at_s: elapsed,
                                signal: cfg.stop_signal,
                                grace_s: cfg.grace.as_secs_f64(),
                                killed_after_grace: false,
                            });
                        }
                    } else if !stop {
                        self.msgs.warn(&format!(
                            "{} (budget action is warn: the job goes on)",
                            ev.message
                        ));
                    }
                }
            }
        }
        // Sleep until the next sample is due, or earlier when the duration cap or the grace
        // period ends first.
        let mut wait = cfg.tick;
        if let Some(s) = self
            .tracker
            .next_duration_event_in(now.duration_since(self.started).as_secs_f64())
        {
            wait = wait.min(Duration::try_from_secs_f64(s).unwrap_or(wait));
        }
        if let Some((t, _)) = self.stop_at {
            let left = cfg.grace.saturating_sub(now.duration_since(t));
            if !left.is_zero() {
                wait = wait.min(left);
            }
        }
        if let Some((t, _)) = self.stop_at {
            if now.duration_since(t) >= cfg.grace && !self.stopper.ended() {
                self.msgs
                    .info("the job outlived its grace period; sending SIGKILL");
                self.stopper.kill();
                if let Ok(mut s) = self.state.lock() {
                    if let Some(st) = s.stopped.as_mut() {
                        st.killed_after_grace = true;
                    }
                }
                return Next::Idle;
            }
        }
        Next::Wait(wait)
    }
}

/// The watcher's thread: a look at once, then one per tick (or sooner, see [`Watcher::look`]),
/// and a last one the moment the run command is done.
fn run(mut w: Watcher, done: mpsc::Receiver<()>) {
    // Sleeps one tick between checks, but wakes the moment the run command is done.
    let finished = |d: Duration| !matches!(done.recv_timeout(d), Err(RecvTimeoutError::Timeout));
    let mut wait = Duration::ZERO;
    loop {
        let last_look = finished(wait);
        match w.look(last_look) {
            Next::Wait(d) => wait = d,
            Next::Done => return,
            Next::Idle => {
                // nothing more to do: wait for the run command to finish us
                while !finished(Duration::from_secs(3600)) {}
                return;
            }
        }
    }
}

/// Parse a signal given as a name (`TERM`, `SIGTERM`, `INT`, ...) or a number.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    let t = s.trim().to_ascii_uppercase();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let name = t.strip_prefix("SIG").unwrap_or(&t);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        _ => {
            return Err(format!(
                "`{s}` is not a signal: use TERM, INT, HUP, QUIT, USR1, USR2, KILL or a number"
            ))
        }
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use wattprint_core::sampler::{Sampler, SamplerConfig, WholeMachine};

    #[test]
    fn finish_returns_at_once_not_after_a_tick() {
        // A tick far longer than the test: finishing must not wait it out (it used to sleep a
        // whole tick, adding up to 200 ms to every run).
        let sampler = Sampler::start(Vec::new(), Box::new(WholeMachine), SamplerConfig::default());
        let mut job = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let m = Monitor::start(
            Looks::OwnThread,
            MonitorConfig {
                limits: Limits::default(),
                tick: Duration::from_secs(60),
                kg_per_kwh: 0.4,
                progress_file: None,
                expected_duration: None,
                stop_signal: libc::SIGTERM,
                grace: Duration::from_secs(1),
                job_energy_j: None,
            },
            sampler.watch(),
            Box::new(ChildStopper(job.id())),
            Instant::now(),
            Arc::new(Mutex::new(MonitorState::default())),
            Messages::discard(),
        );
        let t0 = Instant::now();
        let state = m.finish();
        let took = t0.elapsed();
        job.kill().unwrap();
        job.wait().unwrap();
        sampler.stop();
        assert!(took < Duration::from_secs(30), "finish took {took:?}");
        assert!(state.stopped.is_none() && state.events.is_empty());
    }
    #[test]
    fn the_duration_cap_and_the_grace_wake_the_watcher_whatever_the_tick() {
        // The watcher sleeps a sampling interval between looks (60 s here); the duration cap
        // and the end of the grace period must still be acted on at their own time.
        let sampler = Sampler::start(Vec::new(), Box::new(WholeMachine), SamplerConfig::default());
        let mut job = std::process::Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 60"])
            .spawn()
            .unwrap();
        let m = Monitor::start(
            Looks::OwnThread,
            MonitorConfig {
                limits: Limits {
                    max_duration_s: Some(0.2),
                    ..Limits::default()
                },
                tick: Duration::from_secs(60),
                kg_per_kwh: 0.4,
                progress_file: None,
                expected_duration: None,
                stop_signal: libc::SIGTERM,
                grace: Duration::from_millis(200),
                job_energy_j: None,
            },
            sampler.watch(),
            Box::new(ChildStopper(job.id())),
            Instant::now(),
            Arc::new(Mutex::new(MonitorState::default())),
            Messages::discard(),
        );
        // The job ignores SIGTERM: it ends only by the SIGKILL sent after the grace period.
        let status = job.wait().unwrap();
        let state = m.finish();
        sampler.stop();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        let stopped = state.stopped.unwrap();
        assert_eq!(stopped.limit, LimitKind::MaxDuration);
        assert!(stopped.killed_after_grace);
        assert!(stopped.at_s >= 0.2, "stopped at {} s", stopped.at_s);
        assert!(
            state.events.iter().any(|e| e.level == EventLevel::Warning),
            "the 80 % warning came first: {:?}",
            state.events
        );
    }
}
