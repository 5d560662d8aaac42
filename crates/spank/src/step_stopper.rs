//! How a cap or budget stops a Slurm step: the stop signal to each task (its process group
//! when it leads one), the grace period for the job to checkpoint, then `scancel` of the step
//! (of the job, for the batch step), as `wattprint run` does with its child.

use crate::slurm_log::Tasks;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wattprint_session::monitor::Stopper;

/// Longest wait for `scancel`.
const SCANCEL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct StepStopper {
    pub tasks: Tasks,
    pub job_id: u32,
    /// `None` for the batch step (the whole job is cancelled).
    pub step_id: Option<u32>,
    /// What was done, for slurmd's log.
    pub log: Box<dyn Fn(&str) + Send>,
}

impl StepStopper {
    /// `scancel`'s target: `JOB.STEP`, or `JOB` for the batch step.
    pub fn target(&self) -> String {
        match self.step_id {
            Some(s) => format!("{}.{s}", self.job_id),
            None => self.job_id.to_string(),
        }
    }

    fn signal(&self, sig: i32) {
        for pid in self.tasks.alive() {
            let pid = pid as libc::pid_t;
            // SAFETY: getpgid/kill on a task of this step with a valid signal number.
            unsafe {
                if libc::getpgid(pid) == pid {
                    libc::kill(-pid, sig);
                } else {
                    libc::kill(pid, sig);
                }
            }
        }
    }
}

impl Stopper for StepStopper {
    fn stop(&mut self, signal: i32) {
        (self.log)(&format!(
            "stopping step {}: signal {signal} to its tasks",
            self.target()
        ));
        self.signal(signal);
    }

    fn kill(&mut self) {
        let target = self.target();
        let scancel = ["/usr/bin/scancel", "/usr/local/bin/scancel"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("scancel");
        (self.log)(&format!("grace period over: {scancel} {target}"));
        let done = Command::new(scancel)
            .arg(&target)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(|mut c| {
                let t = Instant::now();
                loop {
                    match c.try_wait() {
                        Ok(Some(st)) => return st.success(),
                        Ok(None) if t.elapsed() < SCANCEL_TIMEOUT => {
                            std::thread::sleep(Duration::from_millis(50))
                        }
                        _ => {
                            let _ = c.kill();
                            let _ = c.wait();
                            return false;
                        }
                    }
                }
            })
            .unwrap_or(false);
        if !done {
            (self.log)(&format!(
                "scancel {target} failed: killing the step's tasks (SIGKILL)"
            ));
            self.signal(libc::SIGKILL);
        }
    }

    fn ended(&self) -> bool {
        self.tasks.alive().is_empty()
    }
}
