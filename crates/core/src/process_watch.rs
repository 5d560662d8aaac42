//! Whether a process seen once is still the same process, cheaply: a pidfd (Linux ≥ 5.3)
//! opened once and verified against the process's start time, then one `poll` per look
//! instead of reading and parsing `/proc/<pid>/stat` each time. A pid reused by another
//! process cannot fool it: the pidfd refers to the process it was opened on.
//!
//! Where pidfds are unavailable (old kernels, seccomp), every look reads the start time.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Start time of `pid` (field 22 of the real `/proc/<pid>/stat`, clock ticks after boot), if
/// it is alive.
pub fn process_start(pid: u32) -> Option<u64> {
    crate::procfs::read_pid_stat(&crate::host::HostPaths::default(), pid)
        .ok()
        .map(|s| s.start_ticks)
}

/// Whether `pid` is alive and started at `start_ticks` (the identity of a process).
pub fn alive(pid: u32, start_ticks: u64) -> bool {
    pid != 0 && process_start(pid) == Some(start_ticks)
}

/// One process watched for its end.
#[derive(Debug)]
pub struct ProcessWatch {
    pid: u32,
    start_ticks: u64,
    /// `None`: no pidfd (unsupported); each look reads `/proc`.
    fd: Option<OwnedFd>,
    gone: bool,
}

impl ProcessWatch {
    /// Watch the process `pid` that started at `start_ticks`; `None` if it is not (or no
    /// longer) that process.
    pub fn open(pid: u32, start_ticks: u64) -> Option<ProcessWatch> {
        if pid == 0 || pid > i32::MAX as u32 {
            return None;
        }
        // SAFETY: pidfd_open(pid, 0) takes no pointers; a non-negative result is a new fd we
        // own.
        let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        let fd = (r >= 0).then(|| unsafe { OwnedFd::from_raw_fd(r as i32) });
        // Verified after opening: the fd then refers to the process with this start time.
        if !alive(pid, start_ticks) {
            return None;
        }
        Some(ProcessWatch {
            pid,
            start_ticks,
            fd,
            gone: false,
        })
    }

    /// Whether this watch is of `pid` started at `start_ticks`.
    pub fn is(&self, pid: u32, start_ticks: u64) -> bool {
        self.pid == pid && self.start_ticks == start_ticks
    }

    /// The pidfd, readable once the process has ended (for [`crate::wake::Wake::sleep`]);
    /// `None` without pidfds or once the process is known to be gone.
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.fd
            .as_ref()
            .filter(|_| !self.gone)
            .map(|f| f.as_raw_fd())
    }

    /// [`ProcessWatch::alive`] of several processes, their pidfds looked at in one `poll`.
    pub fn alive_all(watches: &mut [&mut ProcessWatch]) -> Vec<bool> {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(watches.len());
        let mut at: Vec<Option<usize>> = Vec::with_capacity(watches.len());
        for w in watches.iter() {
            match (&w.fd, w.gone) {
                (Some(fd), false) => {
                    at.push(Some(fds.len()));
                    fds.push(libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                }
                _ => at.push(None),
            }
        }
        // SAFETY: `fds` is a live array of `fds.len()` pollfd structures; zero timeout.
        let r = if fds.is_empty() {
            0
        } else {
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) }
        };
        watches
            .iter_mut()
            .zip(at)
            .map(|(w, i)| match i {
                _ if w.gone => false,
                Some(i) if r >= 0 => {
                    let alive = fds[i].revents == 0;
                    w.gone = !alive;
                    alive
                }
                // No pidfd, or poll failed: one look each.
                _ => w.alive(),
            })
            .collect()
    }

    /// Whether the process is still alive (once gone, always gone).
    pub fn alive(&mut self) -> bool {
        if self.gone {
            return false;
        }
        let alive = match &self.fd {
            Some(fd) => {
                let mut p = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, zero timeout. A pidfd is readable once the
                // process has exited.
                let r = unsafe { libc::poll(&mut p, 1, 0) };
                match r {
                    0 => true,
                    1.. => false,
                    _ => alive(self.pid, self.start_ticks),
                }
            }
            None => alive(self.pid, self.start_ticks),
        };
        self.gone = !alive;
        alive
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_live_process_then_its_end() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = process_start(pid).unwrap();
        // Another start time is another process.
        assert!(ProcessWatch::open(pid, start + 1).is_none());
        let mut w = ProcessWatch::open(pid, start).unwrap();
        assert!(w.is(pid, start));
        assert!(w.alive());
        assert!(w.alive());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!w.alive());
        assert!(!w.alive(), "once gone, always gone");
        assert!(ProcessWatch::open(pid, start).is_none());
    }

    #[test]
    fn several_processes_looked_at_in_one_poll() {
        let mut a = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut b = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut wa = ProcessWatch::open(a.id(), process_start(a.id()).unwrap()).unwrap();
        let mut wb = ProcessWatch::open(b.id(), process_start(b.id()).unwrap()).unwrap();
        assert_eq!(
            ProcessWatch::alive_all(&mut [&mut wa, &mut wb]),
            vec![true, true]
        );
        b.kill().unwrap();
        b.wait().unwrap();
        assert_eq!(
            ProcessWatch::alive_all(&mut [&mut wa, &mut wb]),
            vec![true, false]
        );
        assert!(!wb.alive(), "once gone, always gone");
        assert_eq!(ProcessWatch::alive_all(&mut []), Vec::<bool>::new());
        a.kill().unwrap();
        a.wait().unwrap();
        assert_eq!(ProcessWatch::alive_all(&mut [&mut wa]), vec![false]);
    }

    #[test]
    fn pid_zero_and_impossible_pids_are_not_watched() {
        assert!(ProcessWatch::open(0, 1).is_none());
        assert!(ProcessWatch::open(u32::MAX, 1).is_none());
        assert!(!alive(0, 0));
    }
}
