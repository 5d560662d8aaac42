//! Sleeping until a deadline, a stop, or the end of a watched process — in one `poll`, so a
//! thread that has nothing to do between two reads costs one wake-up, not one per interval.
//!
//! The sampler of a host-ledger follower waits this way: the ledger's reader counts for it,
//! so it looks at the ledger only when a checkpoint is due, when it is stopped, or at once
//! when the reader's process ends (its pidfd becomes readable) so that it can take the
//! reading over without a gap.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// An eventfd another thread signals to end a [`Wake::sleep`] at once.
#[derive(Debug)]
pub struct Wake {
    fd: OwnedFd,
}

/// Why [`Wake::sleep`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// The timeout passed.
    Timeout,
    /// [`Wake::signal`] was called (and stays signalled: later sleeps return at once).
    Signalled,
    /// One of the watched descriptors is readable (a pidfd: its process has ended).
    Watched,
}

impl Wake {
    /// A new, unsignalled wake; `None` if the kernel refuses an eventfd (descriptor limit).
    pub fn new() -> Option<Wake> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new fd we own.
        let r = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        (r >= 0).then(|| Wake {
            // SAFETY: `r` is a fresh descriptor owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(r) },
        })
    }

    /// End the current and every later sleep at once.
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd. A full counter (EAGAIN) is
        // still signalled.
        unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
    }

    /// Sleep up to `timeout`, or until signalled, or until one of `watch` is readable. The
    /// descriptors must stay open for the call. Interrupted sleeps resume with the time left.
    pub fn sleep(&self, timeout: Duration, watch: &[RawFd]) -> Woken {
        let mut fds: Vec<libc::pollfd> = std::iter::once(self.fd.as_raw_fd())
            .chain(watch.iter().copied().filter(|&fd| fd >= 0))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let deadline = std::time::Instant::now().checked_add(timeout);
        loop {
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(std::time::Instant::now())
            });
            // Rounded up to whole milliseconds (a sleep never ends early); capped to what
            // poll takes (about 24 days: the caller loops).
            let ms = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int;
            // SAFETY: `fds` is a live array of `fds.len()` pollfd structures.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            if r < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                // poll failing otherwise (EINVAL, ENOMEM): a short plain sleep, then a
                // timeout — never a spin, and never a long sleep deaf to the stop signal.
                std::thread::sleep(left.min(Duration::from_millis(100)));
                return Woken::Timeout;
            }
            if r == 0 {
                if left.is_zero() || ms < i32::MAX {
                    return Woken::Timeout;
                }
                continue;
            }
            if fds[0].revents != 0 {
                return Woken::Signalled;
            }
            return Woken::Watched;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::process_watch::{process_start, ProcessWatch};
    use std::time::Instant;

    #[test]
    fn a_sleep_lasts_its_timeout_when_nothing_happens() {
        let w = Wake::new().unwrap();
        let t = Instant::now();
        assert_eq!(w.sleep(Duration::from_millis(30), &[]), Woken::Timeout);
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert_eq!(w.sleep(Duration::ZERO, &[]), Woken::Timeout);
    }

    #[test]
    fn a_signal_ends_the_sleep_and_every_later_one() {
        let w = std::sync::Arc::new(Wake::new().unwrap());
        let w2 = std::sync::Arc::clone(&w);
        let t = std::thread::spawn(move || w2.sleep(Duration::from_secs(3600), &[]));
        std::thread::sleep(Duration::from_millis(20));
        w.signal();
        assert_eq!(t.join().unwrap(), Woken::Signalled);
        assert_eq!(w.sleep(Duration::from_secs(3600), &[]), Woken::Signalled);
    }

    #[test]
    fn the_end_of_a_watched_process_ends_the_sleep() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let watch = ProcessWatch::open(pid, process_start(pid).unwrap()).unwrap();
        let fd = watch.raw_fd().unwrap();
        let w = Wake::new().unwrap();
        assert_eq!(w.sleep(Duration::from_millis(10), &[fd]), Woken::Timeout);
        child.kill().unwrap();
        child.wait().unwrap();
        let t = Instant::now();
        assert_eq!(w.sleep(Duration::from_secs(3600), &[fd]), Woken::Watched);
        assert!(t.elapsed() < Duration::from_secs(60));
        // A negative descriptor is ignored, not an error.
        assert_eq!(w.sleep(Duration::from_millis(1), &[-1]), Woken::Timeout);
    }
}
