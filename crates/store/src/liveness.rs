//! Is the tracker of a run still alive? A run is saved with status `running` at each checkpoint;
//! when its tracker dies (killed, crashed, machine rebooted) that status stays. To tell the two
//! apart, the measuring session holds an advisory lock (`flock`) on `<store dir>/running/<id>.lock`
//! for as long as it measures the run: the kernel releases it when the process ends, however it
//! ends. A reader that can take the lock knows the tracker is gone.
//!
//! A `running` run without a lock file (recorded by an older wattprint, or imported) counts as
//! lost once its last checkpoint is older than [`STALE_AFTER_S`] (checkpoints are at most 10 s
//! apart).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use wattprint_core::record::{RunRecord, RunStatus};

/// Without a lock file, a `running` record whose last checkpoint is older than this is lost.
pub const STALE_AFTER_S: f64 = 60.0;

/// What people read for a run whose tracker died before its final save.
pub const LOST: &str = "unfinished (tracker lost)";

/// `<store dir>/running/<id>.lock`, for a run id that can name a file.
fn lock_path(dir: &Path, id: &str) -> Option<PathBuf> {
    // ids are UUIDs; anything else never names a file here
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    Some(dir.join("running").join(format!("{id}.lock")))
}

/// Held by `wattprint run` while it measures run `id`; released (and the file removed) on drop,
/// or by the kernel if the process dies.
pub struct TrackerLock {
    file: File,
    path: PathBuf,
}

impl TrackerLock {
    /// Take the lock of run `id` (None when the store directory cannot hold it: the run is then
    /// judged by the age of its last checkpoint).
    pub fn acquire(dir: &Path, id: &str) -> Option<TrackerLock> {
        let path = lock_path(dir, id)?;
        std::fs::create_dir_all(path.parent()?).ok()?;
        let file = File::create(&path).ok()?;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return None;
        }
        Some(TrackerLock { file, path })
    }
}

impl Drop for TrackerLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        // SAFETY: unlocking our own descriptor (closing it would do the same).
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Whether the tracker of `id` still holds its lock: Some(true) alive, Some(false) dead,
/// None when there is no lock file to ask.
pub fn tracker_alive(dir: &Path, id: &str) -> Option<bool> {
    let file = File::open(lock_path(dir, id)?).ok()?;
    // SAFETY: flock on a descriptor we own; a shared lock taken is released at once.
    let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
    if free {
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
    }
    Some(!free)
}

/// Whether `r` is a `running` record whose tracker is gone (`dir`: the store's directory).
pub fn is_lost(dir: &Path, r: &RunRecord) -> bool {
    is_lost_parts(dir, &r.id, r.status.as_str(), &r.started_at, r.duration_s)
}

/// [`is_lost`] from the fields a listing row has.
pub fn is_lost_parts(
    dir: &Path,
    id: &str,
    status: &str,
    started_at: &str,
    duration_s: f64,
) -> bool {
    if status != RunStatus::Running.as_str() {
        return false;
    }
    match tracker_alive(dir, id) {
        Some(alive) => !alive,
        None => {
            let last = crate::store::rfc3339_unix(started_at).map(|s| s + duration_s.max(0.0));
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            last.is_some_and(|t| now - t > STALE_AFTER_S)
        }
    }
}

/// The status of `r` as people read it, `lost` when its tracker died (see [`status_label`]).
pub fn status_text(r: &RunRecord, lost: bool) -> String {
    if lost && r.status == RunStatus::Running {
        LOST.to_string()
    } else {
        r.status.as_str().to_string()
    }
}

/// The status as people read it: `unfinished (tracker lost)` for a run whose tracker died.
pub fn status_label(
    dir: &Path,
    id: &str,
    status: &str,
    started_at: &str,
    duration_s: f64,
) -> String {
    if is_lost_parts(dir, id, status, started_at, duration_s) {
        LOST.to_string()
    } else {
        status.to_string()
    }
}
