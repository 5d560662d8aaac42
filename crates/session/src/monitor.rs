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

impl Monitor {
    /// Start watching the work `stopper` can stop; `state` is shared with whoever wants to
    /// read it live.
    pub fn start(
        cfg: MonitorConfig,
        watch: SnapshotWatch,
        stopper: Box<dyn Stopper>,
        started: Instant,
        state: Arc<Mutex<MonitorState>>,
        msgs: Messages,
    ) -> Monitor {
        let (done, done_rx) = mpsc::channel();
        let st = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("wattprint-monitor".into())
            .spawn(move || run(cfg, watch, stopper, started, st, done_rx, msgs))
            .ok();
        Monitor {
            state,
            done: Some(done),
            thread,
        }
    }

    pub fn finish(mut self) -> MonitorState {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        match self.state.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

fn run(
    cfg: MonitorConfig,
    watch: SnapshotWatch,
    mut stopper: Box<dyn Stopper>,
    started: Instant,
    state: Arc<Mutex<MonitorState>>,
    done: mpsc::Receiver<()>,
    msgs: Messages,
) {
    let mut tracker = LimitTracker::new(cfg.limits.clone());
    let mut energy_hist: Vec<(f64, f64)> = vec![(0.0, 0.0)];
    let mut progress_hist: Vec<(f64, f64)> = Vec::new();
    let mut last_samples = 0;
    let mut last_progress_read = Instant::now() - Duration::from_secs(10);
    let mut progress_warned = false;
    let mut stop_at: Option<(Instant, LimitKind)> = None;
    // Sleeps one tick between checks, but wakes the moment the run command is done.
    let finished = |d: Duration| !matches!(done.recv_timeout(d), Err(RecvTimeoutError::Timeout));
    // The first look is at once: it sets the first wait (a tick, or sooner for a cap).
    let mut wait = Duration::ZERO;
    loop {
        let last_look = finished(wait);
        let now = Instant::now();
        let elapsed = now.duration_since(started).as_secs_f64();
        let snap = watch.get();
        let job_kwh = cfg
            .job_energy_j
            .as_ref()
            .and_then(|f| f())
            .filter(|j| j.is_finite())
            .map_or(0.0, |j| j / 3.6e6);
        let kwh = snap.total_energy().kwh().0.max(job_kwh);
        if snap.samples != last_samples {
            last_samples = snap.samples;
            energy_hist.push((snap.elapsed.as_secs_f64(), kwh));
            // keep the history bounded: thin the older half when it grows
            if energy_hist.len() > 4096 {
                let keep: Vec<(f64, f64)> = energy_hist
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 2 == 0)
                    .map(|(_, x)| *x)
                    .collect();
                energy_hist = keep;
            }
        }
        if let Some(pf) = &cfg.progress_file {
            if last_look
                || now.duration_since(last_progress_read)
                    >= cfg.tick.min(Duration::from_millis(500))
            {
                last_progress_read = now;
                match std::fs::read_to_string(pf) {
                    Ok(t) if prediction::has_progress(&t) => match prediction::parse_progress(&t) {
                        Ok(p) => {
                            if progress_hist.last().is_none_or(|(_, q)| *q != p) {
                                progress_hist.push((elapsed, p));
                            }
                        }
                        Err(e) => {
                            if !progress_warned {
                                progress_warned = true;
                                let w = format!("progress file {}: {e}", pf.display());
                                msgs.warn(&w);
                                if let Ok(mut s) = state.lock() {
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
            None if !progress_hist.is_empty() => Some(Basis::Progress),
            None => None,
        };
        let pred = basis
            .and_then(|b| prediction::predict(&energy_hist, &progress_hist, b, cfg.kg_per_kwh));
        if last_look {
            // The work is over: the prediction from everything seen (a quiet run looks only
            // at each checkpoint), no limit is checked any more.
            if let (Some(p), Ok(mut s)) = (pred, state.lock()) {
                s.prediction = Some(p);
            }
            return;
        }
        let spent = Spent {
            elapsed_s: elapsed,
            kwh,
            kg: kwh * cfg.kg_per_kwh,
        };
        let events = tracker.check(&spent, pred.as_ref());
        if let Ok(mut s) = state.lock() {
            if pred.is_some() {
                s.prediction = pred.clone();
            }
            for ev in &events {
                s.events.push(ev.clone());
            }
        }
        for ev in events {
            match ev.level {
                EventLevel::Warning => msgs.warn(&ev.message),
                EventLevel::Reached | EventLevel::Predicted => {
                    // The duration cap always stops; budgets stop unless the action is warn.
                    let stop = ev.kind == LimitKind::MaxDuration
                        || cfg.limits.action == BudgetAction::Stop;
                    if stop && stop_at.is_none() {
                        msgs.info(&format!(
                            "{}; stopping the job (signal {}, grace {:.0} s)",
                            ev.message,
                            cfg.stop_signal,
                            cfg.grace.as_secs_f64()
                        ));
                        stopper.stop(cfg.stop_signal);
                        stop_at = Some((now, ev.kind));
                        if let Ok(mut s) = state.lock() {
                            s.stopped = Some(StopInfo {
                                limit: ev.kind,
                                at_s: elapsed,
                                signal: cfg.stop_signal,
                                grace_s: cfg.grace.as_secs_f64(),
                                killed_after_grace: false,
                            });
                        }
                    } else if !stop {
                        msgs.warn(&format!(
                            "{} (budget action is warn: the job goes on)",
                            ev.message
                        ));
                    }
                }
            }
        }
        // Sleep until the next sample is due, or earlier when the duration cap or the grace
        // period ends first.
        wait = cfg.tick;
        if let Some(s) = tracker.next_duration_event_in(now.duration_since(started).as_secs_f64()) {
            wait = wait.min(Duration::try_from_secs_f64(s).unwrap_or(wait));
        }
        if let Some((t, _)) = stop_at {
            let left = cfg.grace.saturating_sub(now.duration_since(t));
            if !left.is_zero() {
                wait = wait.min(left);
            }
        }
        if let Some((t, _)) = stop_at {
            if now.duration_since(t) >= cfg.grace && !stopper.ended() {
                msgs.info("the job outlived its grace period; sending SIGKILL");
                stopper.kill();
                if let Ok(mut s) = state.lock() {
                    if let Some(st) = s.stopped.as_mut() {
                        st.killed_after_grace = true;
                    }
                }
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
