//! Whether the ledger's directory changed since the reader's last look, from its metadata
//! alone (one `statx`), so that the reader lists it and looks at each participant's file only
//! when something was added, replaced or removed.
//!
//! Every change to a directory's entries (a participant joining, updating its file by a
//! rename, leaving; a state file created or replaced) sets the directory's modification and
//! change times; state files are rewritten in place, which changes neither. Two changes within
//! the timestamps' granularity (a clock tick) may leave them equal, so the metadata is trusted
//! only once it is older than [`RACY_NS`] at the look that recorded it ([`RACY_COARSE_NS`] on a
//! file system with whole-second timestamps), and the directory is listed anyway every
//! [`FULL_LOOK_EVERY`] looks.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Metadata younger than this (ns) at a look is not trusted at the next one.
const RACY_NS: i128 = 100_000_000;
/// The same, on a file system whose timestamps are whole seconds (FAT's are 2 s).
const RACY_COARSE_NS: i128 = 3_000_000_000;

/// How old timestamps must be to be trusted: a file system that keeps only whole seconds
/// (both times without nanoseconds) needs seconds, one that keeps nanoseconds a clock tick.
pub(super) fn racy_margin(times_ns: &[i128]) -> i128 {
    if times_ns.iter().all(|t| t % 1_000_000_000 == 0) {
        RACY_COARSE_NS
    } else {
        RACY_NS
    }
}
/// Looks between two listings at most, whatever the metadata says.
pub(super) const FULL_LOOK_EVERY: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirId {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

#[derive(Default)]
pub(super) struct DirWatch {
    /// The directory's metadata at the last listing, if it could be trusted.
    seen: Option<DirId>,
    /// Looks since that listing.
    looks: u32,
}

impl DirWatch {
    /// Whether `dir` is unchanged since the last look that returned `false` (then the
    /// caller's listing of it still holds). `false` means: list it again (and this look is
    /// recorded as that listing).
    pub(super) fn unchanged(&mut self, dir: &Path) -> bool {
        let Ok(m) = std::fs::metadata(dir) else {
            self.seen = None;
            return false;
        };
        let id = DirId {
            ino: m.ino(),
            size: m.size(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            ctime_ns: m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
        };
        if self.seen == Some(id) && self.looks + 1 < FULL_LOOK_EVERY {
            self.looks += 1;
            return true;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        let settled = now - id.mtime_ns.max(id.ctime_ns) > racy_margin(&[id.mtime_ns, id.ctime_ns]);
        self.seen = settled.then_some(id);
        self.looks = 0;
        false
    }

    /// Forget the directory: the next look lists it.
    #[cfg(test)]
    fn forget(&mut self) {
        self.seen = None;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Wait (bounded) until the directory's times are old enough to be trusted, then list it.
    fn settle(w: &mut DirWatch, dir: &Path) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            w.forget();
            w.unchanged(dir);
            if w.unchanged(dir) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "times never settled");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn whole_second_timestamps_need_seconds_to_settle() {
        assert_eq!(racy_margin(&[5_000_000_000, 7_000_000_000]), RACY_COARSE_NS);
        assert_eq!(racy_margin(&[5_000_000_001, 7_000_000_000]), RACY_NS);
        assert_eq!(racy_margin(&[-3_000_000_000]), RACY_COARSE_NS);
    }

    #[test]
    fn a_settled_directory_is_unchanged_until_an_entry_changes_and_listed_every_tenth_look() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), b"1").unwrap();
        let mut w = DirWatch::default();
        // Just modified: its times are not trusted yet.
        assert!(!w.unchanged(d.path()));
        assert!(!w.unchanged(d.path()));
        // Once they are old enough, they are.
        settle(&mut w, d.path());
        for _ in 2..FULL_LOOK_EVERY {
            assert!(w.unchanged(d.path()));
        }
        assert!(
            !w.unchanged(d.path()),
            "listed again after FULL_LOOK_EVERY looks"
        );
        assert!(w.unchanged(d.path()));
        // A new entry, a rename over an entry, a removal: each is seen.
        std::fs::write(d.path().join("b"), b"2").unwrap();
        assert!(!w.unchanged(d.path()));
        std::fs::write(d.path().join(".tmp"), b"3").unwrap();
        std::fs::rename(d.path().join(".tmp"), d.path().join("a")).unwrap();
        assert!(!w.unchanged(d.path()));
        std::fs::remove_file(d.path().join("b")).unwrap();
        assert!(!w.unchanged(d.path()));
        // Rewriting a file in place does not change its directory.
        settle(&mut w, d.path());
        std::fs::write(d.path().join("a"), b"rewritten").unwrap();
        assert!(w.unchanged(d.path()));
        // A directory that is gone is never unchanged.
        let gone = d.path().join("gone");
        assert!(!w.unchanged(&gone));
        assert!(!w.unchanged(&gone));
    }
}
