//! Running the job: spawn with inherited stdio, forward signals, wait without reaping (so the
//! last sample still sees the job's CPU time), then reap and map the exit status.
//!
//! **Signals reach the job once.** The job runs in its own process group, as a shell runs a job:
//! - a signal sent to wattprint (to its pid, or to the process group wattprint was started in,
//!   as `kill -INT -PGID`, `timeout` or a batch system do) reaches wattprint only, and wattprint
//!   forwards it once, to the job's group;
//! - on a terminal, wattprint hands the terminal to the job's group (`tcsetpgrp`) before the job
//!   starts, so Ctrl-C / Ctrl-\ reach the job's group once, straight from the terminal, and never
//!   wattprint; the job reads the terminal as it would without us. Ctrl-Z stops the job, then
//!   wattprint (so the shell sees the job stop); `fg` continues both. The terminal is taken back
//!   when the job ends.
//!
//! Before, the job shared wattprint's group, so a signal sent to the group reached the job
//! directly and again through wattprint: a trainer that force-quits on the second Ctrl-C saw two.

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};
use std::ffi::OsString;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Signals forwarded to the job.
pub const FORWARDED: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];

/// Why the job could not be started, with the exit code a shell would use.
#[derive(Debug)]
pub struct SpawnError {
    pub message: String,
    pub exit_code: i32,
}

/// Spawn `cmd` with inherited stdin/stdout/stderr and extra environment variables.
pub fn spawn(cmd: &[OsString], env: &[(String, String)]) -> Result<Child, SpawnError> {
    let Some((prog, args)) = cmd.split_first() else {
        return Err(SpawnError {
            message: "no command given: use `wattprint run [OPTIONS] -- CMD ARGS...`".into(),
            exit_code: 2,
        });
    };
    let mut c = Command::new(prog);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    // Catch the forwarded signals before the job exists: one sent to wattprint as soon as the
    // job has started (before Forwarder::start) would otherwise kill wattprint, not reach the
    // job. What arrives meanwhile is queued and forwarded once the forwarder runs.
    if let Ok(mut pre) = PRE_REGISTERED.lock() {
        if pre.is_none() {
            *pre = SignalsInfo::<WithOrigin>::new(FORWARDED).ok();
        }
    }
    let tty = foreground_tty();
    // While the job holds the terminal, wattprint is a background process that still writes
    // (status line, messages) and takes the terminal back: SIGTTOU must not stop it.
    let old_ttou = tty.map(|_| ignore_sigttou());
    let restore_ttou = old_ttou;
    // SAFETY: only async-signal-safe calls (setpgid, tcsetpgrp, getpid, sigaction) between fork
    // and exec.
    unsafe {
        c.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(fd) = tty {
                // Foreground before exec: the job may read the terminal at once.
                libc::tcsetpgrp(fd, libc::getpid());
            }
            if let Some(old) = restore_ttou {
                libc::sigaction(libc::SIGTTOU, &old, std::ptr::null_mut());
            }
            Ok(())
        });
    }
    let spawned = c.spawn();
    if let Ok(child) = &spawned {
        let pgid = child.id() as libc::pid_t;
        // Also from this side, so the group exists whoever runs first (EACCES after exec: done).
        // SAFETY: setpgid on our own child.
        unsafe { libc::setpgid(pgid, pgid) };
        if let Ok(mut h) = HANDOFF.lock() {
            *h = Some(Handoff {
                tty,
                job_pgid: pgid,
                old_ttou,
            });
        }
    } else if let Some(old) = old_ttou {
        // SAFETY: restoring the disposition saved above.
        unsafe { libc::sigaction(libc::SIGTTOU, &old, std::ptr::null_mut()) };
    }
    spawned.map_err(|e| {
        let name = prog.to_string_lossy();
        match e.kind() {
            io::ErrorKind::NotFound => SpawnError {
                message: format!(
                    "cannot run `{name}`: command not found (check the name, or your PATH)"
                ),
                exit_code: 127,
            },
            io::ErrorKind::PermissionDenied => SpawnError {
                message: format!(
                    "cannot run `{name}`: permission denied (is it executable? try `chmod +x {name}`)"
                ),
                exit_code: 126,
            },
            _ => SpawnError {
                message: format!("cannot run `{name}`: {e}"),
                exit_code: 126,
            },
        }
    })
}

/// Forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to wattprint by another process to the job.
///
/// Signals the terminal generates (Ctrl-C, Ctrl-\) already reach the job, which shares our
/// foreground process group; those are not forwarded again, or the job would get them twice.
pub struct Forwarder {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
    /// Last signal received by wattprint (0 = none).
    pub received: Arc<AtomicI32>,
}

impl Forwarder {
    pub fn start(child_pid: u32) -> io::Result<Forwarder> {
        let pre = PRE_REGISTERED.lock().ok().and_then(|mut p| p.take());
        let mut signals = match pre {
            Some(s) => s,
            None => SignalsInfo::<WithOrigin>::new(FORWARDED)?,
        };
        let handle = signals.handle();
        let received = Arc::new(AtomicI32::new(0));
        let rec2 = Arc::clone(&received);
        let pid = child_pid as libc::pid_t;
        let thread = std::thread::Builder::new()
            .name("wattprint-signals".into())
            .spawn(move || {
                for origin in signals.forever() {
                    rec2.store(origin.signal, Ordering::SeqCst);
                    // The job's group never got this one (it is not in ours, and holds the
                    // terminal when there is one): pass it on, once, to the whole job.
                    // SAFETY: kill(2) on the group of a child we spawned, a valid signal.
                    unsafe {
                        if libc::kill(-pid, origin.signal) != 0 {
                            libc::kill(pid, origin.signal);
                        }
                    }
                }
            })?;
        Ok(Forwarder {
            handle,
            thread: Some(thread),
            received,
        })
    }

    pub fn stop(mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What [`spawn`] arranged for the terminal, undone by [`wait_exited_no_reap`].
struct Handoff {
    /// The terminal handed to the job's group (wattprint was its foreground group).
    tty: Option<libc::c_int>,
    job_pgid: libc::pid_t,
    /// SIGTTOU's disposition before we ignored it.
    old_ttou: Option<libc::sigaction>,
}

// SAFETY: plain data (a sigaction struct holds a handler address, not a borrowed pointer).
unsafe impl Send for Handoff {}

/// The forwarded signals, caught by [`spawn`] before the job starts, taken by
/// [`Forwarder::start`].
static PRE_REGISTERED: Mutex<Option<SignalsInfo<WithOrigin>>> = Mutex::new(None);

/// One job runs at a time per process.
static HANDOFF: Mutex<Option<Handoff>> = Mutex::new(None);

/// The controlling terminal on stdin, stdout or stderr, when wattprint is its foreground group.
fn foreground_tty() -> Option<libc::c_int> {
    [libc::STDIN_FILENO, libc::STDOUT_FILENO, libc::STDERR_FILENO]
        .into_iter()
        // SAFETY: isatty/tcgetpgrp/getpgrp only inspect.
        .find(|&fd| unsafe { libc::isatty(fd) == 1 && libc::tcgetpgrp(fd) == libc::getpgrp() })
}

fn ignore_sigttou() -> libc::sigaction {
    // SAFETY: sigaction with a zeroed struct set to SIG_IGN; the old one is written to `old`.
    unsafe {
        let mut ign: libc::sigaction = std::mem::zeroed();
        ign.sa_sigaction = libc::SIG_IGN;
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGTTOU, &ign, &mut old);
        old
    }
}

/// Give the terminal back to wattprint's group (SIGTTOU is ignored meanwhile), if the job's
/// group still holds it (after a `bg`, the shell holds it and keeps it).
fn take_terminal_back(fd: libc::c_int, job_pgid: libc::pid_t) {
    // SAFETY: tcgetpgrp/tcsetpgrp on our controlling terminal, to our own group.
    unsafe {
        if libc::tcgetpgrp(fd) == job_pgid {
            libc::tcsetpgrp(fd, libc::getpgrp());
        }
    }
}

/// Block until the child has exited, leaving it a zombie (not reaped), so that its
/// `/proc/<pid>/stat` CPU times can still be read once more. Returns as soon as the job exits
/// (no polling). Takes the terminal back from the job's group then.
///
/// When the job holds the terminal and is stopped from it (Ctrl-Z: SIGTSTP, or SIGTTIN/SIGTTOU),
/// wattprint takes the terminal back and stops too, so that the shell sees the job stop; once
/// continued (`fg`), it hands the terminal back (if it is in the foreground) and continues the
/// job. A job stopped otherwise (SIGSTOP from a debugger or a scheduler) is just waited for.
pub fn wait_exited_no_reap(pid: u32) {
    let handoff = HANDOFF.lock().ok().and_then(|mut h| h.take());
    let tty = handoff.as_ref().and_then(|h| h.tty);
    loop {
        // SAFETY: siginfo_t is plain data; waitid writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = if tty.is_some() {
            libc::WEXITED | libc::WSTOPPED | libc::WNOWAIT
        } else {
            libc::WEXITED | libc::WNOWAIT
        };
        let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
        if r != 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if info.si_code != libc::CLD_STOPPED {
            break;
        }
        // Consume the stop report (WNOWAIT left it pending).
        // SAFETY: as above; WNOHANG, stopped children only.
        let mut consumed: libc::siginfo_t = unsafe { std::mem::zeroed() };
        unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut consumed,
                libc::WSTOPPED | libc::WNOHANG,
            );
        }
        let by = unsafe { info.si_status() };
        if let (Some(fd), Some(h)) = (tty, handoff.as_ref()) {
            if [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU].contains(&by) {
                take_terminal_back(fd, h.job_pgid);
                // SAFETY: stop ourselves; returns once continued. Then hand the terminal back
                // when we are in the foreground again (`fg`, not `bg`) and continue the job.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGSTOP);
                    if libc::tcgetpgrp(fd) == libc::getpgrp() {
                        libc::tcsetpgrp(fd, h.job_pgid);
                    }
                    libc::kill(-h.job_pgid, libc::SIGCONT);
                }
            }
        }
    }
    if let Some(h) = handoff {
        if let Some(fd) = h.tty {
            take_terminal_back(fd, h.job_pgid);
        }
        if let Some(old) = h.old_ttou {
            // SAFETY: restoring the disposition saved in spawn.
            unsafe { libc::sigaction(libc::SIGTTOU, &old, std::ptr::null_mut()) };
        }
    }
}

/// Exit code (128 + N when killed by signal N) and the signal, if any.
pub fn exit_code(status: std::process::ExitStatus) -> (i32, Option<i32>) {
    match (status.code(), status.signal()) {
        (Some(c), _) => (c, None),
        (None, Some(s)) => (128 + s, Some(s)),
        (None, None) => (1, None),
    }
}
