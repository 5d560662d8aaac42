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
