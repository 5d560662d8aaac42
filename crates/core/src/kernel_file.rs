//! Reading the small text files of `/proc` and `/sys` cheaply: one `open`, reads into a
//! buffer sized for them until end of file, one `close` — no `statx` for a size hint (these
//! files report size 0 or 4096 whatever they hold) and no growth by doubling from 32 bytes.
//! A read that returns less than asked for is the end of the file (true of regular files, of
//! sysfs attributes and of procfs' sequence files, which fill the buffer while they have
//! more), so a small file costs one read, not two. A sampler reads a few of them every
//! interval, so the syscalls are most of its cost.

use std::io::Read;
use std::path::Path;

/// Bytes read per call; most `/proc/<pid>/*` and sysfs files fit in one read.
const CHUNK: usize = 4096;
/// Larger files are refused: nothing read this way is legitimately this large.
const MAX: usize = 16 * 1024 * 1024;

/// The whole of a small kernel text file.
pub fn read_small(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    loop {
        if buf.capacity() - buf.len() < CHUNK {
            buf.reserve(buf.capacity().max(CHUNK));
        }
        let len = buf.len();
        let spare = buf.capacity() - len;
        buf.resize(len + spare, 0);
        let n = match f.read(&mut buf[len..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                buf.truncate(len);
                continue;
            }
            Err(e) => {
                buf.truncate(len);
                return Err(e);
            }
        };
        buf.truncate(len + n);
        if n < spare {
            break;
        }
        if buf.len() > MAX {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is larger than {MAX} bytes", path.display()),
            ));
        }
    }
    String::from_utf8(buf)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_what_std_reads() {
        for p in [
            "/proc/self/stat",
            "/proc/meminfo",
            "/proc/stat",
            "/proc/self/status",
        ] {
            let a = read_small(Path::new(p)).unwrap();
            assert!(!a.is_empty(), "{p}");
            // Values change between reads; the first field does not.
            let b = std::fs::read_to_string(p).unwrap();
            assert_eq!(
                a.split_whitespace().next(),
                b.split_whitespace().next(),
                "{p}"
            );
        }
    }

    #[test]
    fn files_of_every_size_around_the_chunk() {
        let d = tempfile::tempdir().unwrap();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let p = d.path().join(format!("f{len}"));
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            std::fs::write(&p, &text).unwrap();
            assert_eq!(read_small(&p).unwrap(), text, "{len}");
        }
        assert!(read_small(&d.path().join("missing")).is_err());
        std::fs::write(d.path().join("bin"), [0xff, 0xfe]).unwrap();
        assert!(read_small(&d.path().join("bin")).is_err());
    }
}

/// A file of procfs or sysfs kept open and read again from its start (`pread` at offset 0):
/// the kernel regenerates such a file on every read, so the path need not be looked up and the
/// file opened and closed every interval — most of the cost of reading it. Any other file (a
/// fake tree in tests, which may be replaced by a rename) is read by its path each time.
#[derive(Debug)]
pub struct KeptFile {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
}

/// procfs and sysfs, by their `statfs` magic numbers.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;

impl KeptFile {
    /// Open `path`; kept open only on procfs or sysfs.
    pub fn open(path: &Path) -> std::io::Result<KeptFile> {
        let f = std::fs::File::open(path)?;
        let kernel = {
            use std::os::fd::AsRawFd;
            // SAFETY: fstatfs fills the statfs structure it is given for an open descriptor.
            let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
            let r = unsafe { libc::fstatfs(f.as_raw_fd(), &mut sfs) };
            r == 0 && matches!(sfs.f_type as i64, PROC_SUPER_MAGIC | SYSFS_MAGIC)
        };
        Ok(KeptFile {
            path: path.to_path_buf(),
            file: kernel.then_some(f),
        })
    }

    /// The whole file now. A process's file whose process has been reaped fails (`ESRCH`),
    /// even if its pid was reused since.
    pub fn read(&mut self) -> std::io::Result<String> {
        let Some(f) = &self.file else {
            return read_small(&self.path);
        };
        use std::os::unix::fs::FileExt;
        let mut buf: Vec<u8> = vec![0; CHUNK];
        let mut len = 0;
        loop {
            let n = match f.read_at(&mut buf[len..], len as u64) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let asked = buf.len() - len;
            len += n;
            if n < asked {
                break;
            }
            if len > MAX {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is larger than {MAX} bytes", self.path.display()),
                ));
            }
            buf.resize(buf.len() * 2, 0);
        }
        buf.truncate(len);
        String::from_utf8(buf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
    }

    /// Whether the file is kept open (a procfs or sysfs file).
    pub fn is_kept(&self) -> bool {
        self.file.is_some()
    }
}

#[cfg(test)]
mod kept_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_kept_sysfs_file_reads_fresh() {
        // The loopback interface's transmitted bytes (sysfs, like RAPL's energy_uj): kept open,
        // read again from its start after a datagram to ourselves on loopback.
        let path = Path::new("/sys/class/net/lo/statistics/tx_bytes");
        let mut k = KeptFile::open(path).unwrap();
        assert!(k.is_kept());
        let before: u64 = k.read().unwrap().trim().parse().unwrap();
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(&[0u8; 1000], rx.local_addr().unwrap()).unwrap();
        let after: u64 = k.read().unwrap().trim().parse().unwrap();
        assert!(after >= before + 1000, "{before} → {after}");
    }

    #[test]
    fn a_kept_proc_file_reads_fresh_and_fails_once_its_process_is_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut k = KeptFile::open(Path::new(&format!("/proc/{}/stat", child.id()))).unwrap();
        assert!(k.is_kept());
        let a = k.read().unwrap();
        assert!(a.starts_with(&format!("{} (sleep)", child.id())), "{a}");
        let mut stat = KeptFile::open(Path::new("/proc/stat")).unwrap();
        assert!(stat.read().unwrap().starts_with("cpu "));
        assert!(
            stat.read().unwrap().starts_with("cpu "),
            "read again from the start"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            k.read().is_err(),
            "reaped: no figures from a stale descriptor"
        );
    }

    #[test]
    fn other_files_are_read_by_path_each_time() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("stat");
        std::fs::write(&p, "one").unwrap();
        let mut k = KeptFile::open(&p).unwrap();
        assert!(!k.is_kept());
        // replaced by a rename, as fake trees may be: the new content is read
        let tmp = d.path().join("tmp");
        std::fs::write(&tmp, "two").unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        assert_eq!(k.read().unwrap(), "two");
    }
}
