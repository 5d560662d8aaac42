//! The ledger's state files: how the reader writes its state and how every participant reads
//! the newest one.
//!
//! `state-<uid>.json` holds one [`LedgerState`] as JSON. Its writer (the reader, always under
//! the ledger's lock) rewrites it **in place** — one `pwrite` at offset 0, padded with spaces
//! to the file's length so that no old byte is left after the JSON — instead of writing a new
//! file and renaming it over the old one each interval (five system calls and a directory
//! change each time). A participant that reads it without the lock may catch a write half
//! done: the text ends with a checksum of itself (`"sum"`, FNV-1a of every byte before it), and
//! a text whose checksum does not match is not taken (the reader takes it again under the
//! lock). Files written by a rename (earlier versions) have no checksum and are never half
//! written; they are read as before.
//!
//! Every read is bounded ([`MAX_STATE_BYTES`]), every state checked ([`LedgerState::consistent`])
//! and owned by the user it is named after.

use super::{LedgerState, MAX_DEPARTED, MAX_PARTICIPANTS, MAX_STATE_BYTES, STATE_VERSION};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The checksum's suffix: `,"sum":"` + 16 hexadecimal digits + `"}`.
const SUM_KEY: &[u8] = b",\"sum\":\"";
const SUM_LEN: usize = SUM_KEY.len() + 16 + 2;
/// Bytes of a state's beginning that tell its versions apart: `{"version":…,"epoch":"…",
/// "seq":…,` fits (the epoch is 24 characters, the sequence at most 20 digits).
const PREFIX_LEN: usize = 96;
/// A file much longer than its state is cut back to the state (it is padded up to its length
/// otherwise, so no old byte is left after the JSON).
const SHRINK_SLACK: u64 = 64 * 1024;

/// FNV-1a, 64 bits: a stable checksum (the same in every wattprint version).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `json` (one object) with its checksum as its last member.
pub(super) fn seal(json: String) -> Vec<u8> {
    let mut b = json.into_bytes();
    if b.last() == Some(&b'}') {
        b.pop();
        let sum = fnv1a(&b);
        b.extend_from_slice(SUM_KEY);
        b.extend_from_slice(format!("{sum:016x}\"}}").as_bytes());
    }
    b
}

/// The state's text without trailing padding, if whole: its checksum matches, or it has none
/// (written by a rename, never half).
fn unseal(text: &[u8]) -> Option<&[u8]> {
    let end = text.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
    let t = &text[..end];
    if t.len() < SUM_LEN || !t[t.len() - SUM_LEN..].starts_with(SUM_KEY) {
        return (!t.windows(SUM_KEY.len()).any(|w| w == SUM_KEY)).then_some(t);
    }
    let body = &t[..t.len() - SUM_LEN];
    let hex = std::str::from_utf8(&t[t.len() - 18..t.len() - 2]).ok()?;
    let sum = u64::from_str_radix(hex, 16).ok()?;
    (fnv1a(body) == sum && t.ends_with(b"\"}")).then_some(t)
}

/// Whether a text ends with a checksum (whether it matches or not).
fn sealed(text: &[u8]) -> bool {
    let end = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let t = &text[..end];
    t.len() >= SUM_LEN && t[t.len() - SUM_LEN..].starts_with(SUM_KEY)
}

fn prefix(text: &[u8]) -> &[u8] {
    &text[..text.len().min(PREFIX_LEN)]
}

pub(super) fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// What tells a file's versions apart without reading it: a new version is a new inode (a
/// rename) or a new modification time or size (a write in place) — unless two writes fall
/// within the timestamp's granularity (see `dir_watch::racy_margin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId {
    ino: u64,
    mtime_ns: i128,
    len: u64,
}

impl FileId {
    pub(super) fn of(m: &std::fs::Metadata) -> FileId {
        FileId {
            ino: m.ino(),
            mtime_ns: mtime_ns(m),
            len: m.len(),
        }
    }

    /// An identity no file has: the next look reads the file.
    fn unknown() -> FileId {
        FileId {
            ino: 0,
            mtime_ns: i128::MIN,
            len: u64::MAX,
        }
    }
}

/// A state file as last read or written.
struct Seen {
    id: FileId,
    /// Whether `id` can be trusted: the file was not modified just before the look.
    settled: bool,
    prefix: Vec<u8>,
    state: LedgerState,
}

/// State files as last read or written, by path: a file unchanged since is not read again,
/// and one read again whose beginning is unchanged (same version, epoch and sequence) is not
/// parsed again.
#[derive(Default)]
pub(super) struct StateCache(HashMap<PathBuf, Seen>, Vec<PathBuf>);

impl StateCache {
    /// Keep `state`, just written to `path` as `text`.
    pub(super) fn wrote(&mut self, path: &Path, text: &[u8], state: LedgerState) {
        self.0.insert(
            path.to_path_buf(),
            Seen {
                id: FileId::unknown(),
                settled: false,
                prefix: prefix(text).to_vec(),
                state,
            },
        );
    }

    /// The state last seen in `path`, whatever the file holds now.
    pub(super) fn get(&self, path: &Path) -> Option<&LedgerState> {
        self.0.get(path).map(|s| &s.state)
    }

    fn take(&mut self, path: &Path) -> Option<LedgerState> {
        self.0.remove(path).map(|s| s.state)
    }

    /// The files found half-written (a checksum that does not match) since the last call.
    /// Read without the lock, a file may be caught while it is written; under the lock, one
    /// is half-written for good: its writer ended while writing it.
    pub(super) fn take_torn(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.1)
    }
}

/// The uid a state file's name says it belongs to.
fn named_uid(path: &Path) -> Option<u32> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("state-"))
        .and_then(|n| n.strip_suffix(".json"))
        .and_then(|n| n.parse::<u32>().ok())
}

/// One user's state file, if it is valid: named after its owner, within bounds, consistent,
/// whole, and not an agent's unless root or this user wrote it. Kept in `cache`.
pub(super) fn read_state_file<'c>(
    path: &Path,
    cache: &'c mut StateCache,
) -> Option<&'c LedgerState> {
    let uid = named_uid(path)?;
    // A state file counts only when its owner is the user it is named after.
    let meta = std::fs::symlink_metadata(path).ok()?;
    if meta.uid() != uid || !meta.is_file() {
        cache.0.remove(path);
        return None;
    }
    let id = FileId::of(&meta);
    let unchanged = cache.0.get(path).is_some_and(|s| s.settled && s.id == id);
    if !unchanged {
        let looked = now_ns();
        // A file modified this recently may be modified again within its timestamp's
        // granularity without its modification time changing: not trusted as unchanged.
        let settled = looked - id.mtime_ns > super::dir_watch::racy_margin(&[id.mtime_ns]);
        let text = read_bounded(path, MAX_STATE_BYTES).ok();
        let Some(text) = text else {
            cache.0.remove(path);
            return None;
        };
        let Some(t) = unseal(&text) else {
            if sealed(&text) && !cache.1.iter().any(|p| p == path) {
                cache.1.push(path.to_path_buf());
            }
            cache.0.remove(path);
            return None;
        };
        let fresh = match cache.0.get_mut(path).filter(|s| s.prefix == prefix(t)) {
            Some(s) => {
                // The same version, epoch and sequence: the same state.
                s.id = id;
                s.settled = settled;
                None
            }
            None => Some((prefix(t).to_vec(), parse_state(t, uid))),
        };
        if let Some((prefix, parsed)) = fresh {
            let Some(state) = parsed else {
                cache.0.remove(path);
                return None;
            };
            cache.0.insert(
                path.to_path_buf(),
                Seen {
                    id,
                    settled,
                    prefix,
                    state,
                },
            );
        }
    }
    cache.get(path)
}

/// The newest state among the state files of a directory listing (highest `seq`), with its
/// file. `own` is this participant's state file when it is known to hold what this
/// participant wrote last (it is then not looked at). The newest is taken out of `cache`:
/// the caller puts it back once updated.
pub(super) fn newest_state(
    listing: &[(String, PathBuf)],
    cache: &mut StateCache,
    own: Option<&Path>,
) -> Option<(LedgerState, PathBuf)> {
    let mut best: Option<(u64, PathBuf)> = None;
    for (name, path) in listing {
        if !name.starts_with("state-") {
            continue;
        }
        let seq = if own == Some(path.as_path()) {
            cache.get(path).map(|st| st.seq)
        } else {
            read_state_file(path, cache).map(|st| st.seq)
        };
        let Some(seq) = seq else {
            continue;
        };
        if best.as_ref().is_none_or(|b| seq > b.0) {
            best = Some((seq, path.clone()));
        }
    }
    let (_, path) = best?;
    let st = cache.take(&path)?;
    Some((st, path))
}

/// Parse and check one state text from a file owned by `uid`.
fn parse_state(text: &[u8], uid: u32) -> Option<LedgerState> {
    let st = serde_json::from_slice::<LedgerState>(text).ok()?;
    if st.version != STATE_VERSION || !st.consistent() {
        return None;
    }
    // Only root (or this user) may publish as the node agent: runs defer to an agent for
    // good.
    // SAFETY: geteuid has no preconditions.
    if st.reader.as_ref().is_some_and(|r| r.agent) && uid != 0 && uid != unsafe { libc::geteuid() }
    {
        return None;
    }
    Some(st)
}

impl LedgerState {
    /// Every per-device vector has one value per device, every value finite.
    pub(super) fn consistent(&self) -> bool {
        let n = self.devices.len();
        let ok = |v: &[f64]| v.len() == n && v.iter().all(|x| x.is_finite() && *x >= 0.0);
        n <= 1024
            && ok(&self.machine_j)
            && ok(&self.unattributed_j)
            && self.accounts.len() <= MAX_PARTICIPANTS
            && self.accounts.values().all(|a| ok(&a.charged_j))
            && self.departed.len() <= MAX_DEPARTED
            && self
                .departed
                .iter()
                .all(|d| d.joules.is_finite() && d.joules >= 0.0)
    }
}

/// Read a file of at most `max` bytes (a longer one is an error), not through a symbolic link.
pub(super) fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut s = Vec::new();
    f.take(max + 1).read_to_end(&mut s)?;
    if s.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "file too large",
        ));
    }
    Ok(s)
}

/// This user's state file as its writer keeps it: open, its length, and the beginning of
/// what was written last. Used only under the ledger's lock.
pub(super) struct StateWriter {
    path: PathBuf,
    file: Option<std::fs::File>,
    /// The file's length, when known (it is padded up to it).
    len: Option<u64>,
    /// The beginning of the text written last.
    written: Vec<u8>,
}

impl StateWriter {
    pub(super) fn new(path: PathBuf) -> StateWriter {
        StateWriter {
            path,
            file: None,
            len: None,
            written: Vec::new(),
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Forget the open file: the directory changed, the file may have been replaced.
    pub(super) fn forget(&mut self) {
        self.file = None;
        self.len = None;
        self.written.clear();
    }

    /// Whether the file still holds what this writer wrote last (one read of its beginning).
    pub(super) fn still_ours(&mut self) -> bool {
        let Some(f) = &self.file else {
            return false;
        };
        if self.written.is_empty() {
            return false;
        }
        let mut buf = [0u8; PREFIX_LEN];
        let k = self.written.len();
        let same =
            matches!(f.read_at(&mut buf, 0), Ok(n) if n >= k && buf[..k] == self.written[..]);
        if !same {
            // Someone else wrote it (an agent running as this user): its length is not ours.
            self.len = None;
            self.written.clear();
        }
        same
    }

    /// Write `text` (a [`seal`]ed state) in place. Returns an error, and writes nothing, when
    /// the file is not this user's own regular file.
    pub(super) fn write(&mut self, text: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&self.path)?;
            let m = f.metadata()?;
            // SAFETY: geteuid has no preconditions.
            if !m.is_file() || m.uid() != unsafe { libc::geteuid() } {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{} is not this user's file", self.path.display()),
                ));
            }
            self.len = Some(m.len());
            self.file = Some(f);
        }
        let Some(f) = &self.file else {
            return Err(std::io::Error::other("state file not open"));
        };
        let len = match self.len {
            Some(l) => l,
            None => f.metadata()?.len(),
        };
        let need = text.len() as u64;
        let result = if len > need && len - need > SHRINK_SLACK.max(need) {
            f.write_all_at(text, 0).and_then(|_| f.set_len(need))
        } else if len > need {
            let mut padded = Vec::with_capacity(len as usize);
            padded.extend_from_slice(text);
            padded.resize(len as usize, b' ');
            f.write_all_at(&padded, 0)
        } else {
            f.write_all_at(text, 0)
        };
        match result {
            Ok(()) => {
                self.len = Some(if len > need && len - need > SHRINK_SLACK.max(need) {
                    need
                } else {
                    len.max(need)
                });
                self.written = prefix(text).to_vec();
                Ok(())
            }
            Err(e) => {
                self.forget();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_text_is_whole_and_any_change_to_it_is_seen() {
        let t = seal(r#"{"a":1,"b":[1.5,2]}"#.to_string());
        assert_eq!(unseal(&t), Some(&t[..]));
        let mut padded = t.clone();
        padded.extend_from_slice(b"    ");
        assert_eq!(unseal(&padded), Some(&t[..]));
        // Every single-byte change (a half-done write mixes two texts) is refused.
        for i in 0..t.len() - SUM_LEN {
            let mut bad = t.clone();
            bad[i] = if bad[i] == b'9' { b'8' } else { b'9' };
            assert_eq!(unseal(&bad), None, "byte {i}");
        }
        // A text without a checksum (written by a rename) is taken whole.
        assert!(unseal(br#"{"a":1}"#).is_some());
        // One that names a checksum anywhere but at its end is not.
        assert_eq!(unseal(br#"{"a":1,"sum":"0000000000000000","b":2}"#), None);
        assert_eq!(unseal(b"   "), None);
        assert_eq!(unseal(b""), None);
    }

    #[test]
    fn written_in_place_the_file_holds_the_last_text_and_no_old_byte_after_it() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state-0.json");
        let mut w = StateWriter::new(path.clone());
        let long = seal(format!(r#"{{"version":1,"x":"{}"}}"#, "y".repeat(500)));
        let short = seal(r#"{"version":1,"x":"z"}"#.to_string());
        w.write(&long).unwrap();
        assert!(w.still_ours());
        w.write(&short).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), long.len(), "padded, not truncated");
        assert_eq!(unseal(&on_disk), Some(&short[..]));
        assert!(w.still_ours());
        // Another writer (same user) rewrote it: no longer ours, and our next text is padded
        // to the length the file has now.
        let other = seal(format!(r#"{{"version":1,"x":"{}"}}"#, "w".repeat(900)));
        std::fs::write(&path, &other).unwrap();
        assert!(!w.still_ours());
        w.write(&short).unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), other.len());
        assert_eq!(unseal(&on_disk), Some(&short[..]));
        // A file far longer than its state is cut back.
        let huge = seal(format!(r#"{{"version":1,"x":"{}"}}"#, "h".repeat(200_000)));
        std::fs::write(&path, &huge).unwrap();
        w.forget();
        w.write(&short).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), short);
    }

    #[test]
    fn a_state_file_that_is_not_this_users_own_is_not_written() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("elsewhere");
        std::fs::write(&target, b"keep").unwrap();
        let path = d.path().join("state-0.json");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let mut w = StateWriter::new(path);
        assert!(w.write(&seal("{}".into())).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }
}
