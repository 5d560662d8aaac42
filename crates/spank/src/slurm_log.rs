//! The session's messages, forwarded to Slurm: every one to slurmd's log (`slurm_info`,
//! `slurm_error` for losses, `slurm_debug`), and, once the step's tasks run, warnings and
//! stop decisions also to the job's own output (the standard error of the step's first task
//! still alive, through `/proc/PID/fd/2`), so the user sees a cap's warning where they read
//! their job's output.

use crate::ffi::{self, LogLevel};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wattprint_session::messages::{Level, Messages};

/// The step's tasks, as slurmstepd starts them (shared with the stopper).
#[derive(Clone, Default)]
pub struct Tasks(Arc<Mutex<Vec<u32>>>);

/// Most tasks remembered per step and node.
const MAX_TASKS: usize = 4096;

impl Tasks {
    pub fn add(&self, pid: u32) {
        if let Ok(mut t) = self.0.lock() {
            if t.len() < MAX_TASKS && !t.contains(&pid) {
                t.push(pid);
            }
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        self.0.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The tasks still running (not gone, not zombies).
    pub fn alive(&self) -> Vec<u32> {
        self.pids().into_iter().filter(|p| alive(*p)).collect()
    }
}

/// Whether `pid` runs (a zombie has ended).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Write `line` to the standard error of the first live task (never blocks: a full pipe
/// drops the line, which is in slurmd's log anyway).
pub fn to_job_output(tasks: &Tasks, line: &str) -> bool {
    for pid in tasks.alive() {
        let f = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(format!("/proc/{pid}/fd/2"));
        if let Ok(mut f) = f {
            return f
                .write_all(format!("wattprint: {line}\n").as_bytes())
                .is_ok();
        }
    }
    false
}

/// Messages for a step: Slurm's log, and the job's output once `to_job` is set.
pub fn messages(tasks: Tasks, to_job: Arc<AtomicBool>) -> Messages {
    Messages::new(move |level, text| {
        let api = ffi::api();
        match level {
            Level::Loss => api.log(LogLevel::Error, text),
            Level::Debug => api.log(LogLevel::Debug, text),
            Level::Info | Level::Warning => api.log(LogLevel::Info, text),
        }
        if level != Level::Debug && to_job.load(Ordering::SeqCst) {
            to_job_output(&tasks, text);
        }
    })
}
