//! Running the job: spawn with inherited stdio, forward signals, wait without reaping (so the
//! last sample still sees the job's CPU time), then reap and map the exit status.

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};
use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
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
    c.spawn().map_err(|e| {
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
        let mut signals = SignalsInfo::<WithOrigin>::new(FORWARDED)?;
        let handle = signals.handle();
        let received = Arc::new(AtomicI32::new(0));
        let rec2 = Arc::clone(&received);
        let pid = child_pid as libc::pid_t;
        let thread = std::thread::Builder::new()
            .name("wattprint-signals".into())
            .spawn(move || {
                for origin in signals.forever() {
                    rec2.store(origin.signal, Ordering::SeqCst);
                    let from_tty = origin.process.is_none();
                    if !from_tty {
                        // SAFETY: kill(2) with a pid we spawned and a valid signal number.
                        unsafe {
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

/// Block until the child has exited, leaving it a zombie (not reaped), so that its
/// `/proc/<pid>/stat` CPU times can still be read once more.
pub fn wait_exited_no_reap(pid: u32) {
    loop {
        // SAFETY: siginfo_t is plain data; waitid writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
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
