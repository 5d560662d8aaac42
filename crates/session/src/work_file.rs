//! The work file: how a job run by `wattprint run` states the work it did (its units for J
//! and gCO2e per unit), as Python's `Tracker.add_work` does in-process.
//!
//! The job finds the path in `WATTPRINT_WORK_FILE` and writes its running total, one line
//! `N UNIT` (e.g. `1200000 tokens`); only the last non-empty line counts (jobs may append).
//! The file is read once, when the run finishes, and at most its last 64 KiB.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Most bytes read from the end of the file.
const TAIL: u64 = 64 * 1024;

/// Parse `N UNIT` (the last non-empty line of `text`).
pub fn parse(text: &str) -> Result<(f64, String), String> {
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| "the work file is empty".to_string())?;
    let bad = || format!("`{line}` is not `N UNIT` (e.g. `1200000 tokens`)");
    let (n, unit) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
    let n: f64 = n.trim().parse().map_err(|_| bad())?;
    let unit = unit.trim();
    if !(n.is_finite() && n >= 0.0) || unit.is_empty() || unit.chars().count() > 64 {
        return Err(bad());
    }
    Ok((n, unit.to_string()))
}

/// The work stated in the file at `path`: `None` when there is no file.
pub fn read(path: &Path) -> Option<Result<(f64, String), String>> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = Vec::new();
    let r = f
        .seek(SeekFrom::Start(len.saturating_sub(TAIL)))
        .and_then(|_| f.take(TAIL).read_to_end(&mut buf));
    Some(match r {
        Ok(_) => parse(&String::from_utf8_lossy(&buf))
            .map_err(|e| format!("work file {}: {e}", path.display())),
        Err(e) => Err(format!("work file {}: {e}", path.display())),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_counts_and_bad_lines_are_explained() {
        assert_eq!(
            parse("10 tokens\n1200000 tokens\n\n").unwrap(),
            (1_200_000.0, "tokens".to_string())
        );
        assert_eq!(parse("3.5e3  images").unwrap().0, 3500.0);
        for bad in ["", "12", "tokens 12", "-1 tokens", "inf tokens", "NaN x"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_file_is_none_and_a_huge_one_is_read_from_its_end() {
        let d = tempfile::tempdir().unwrap();
        assert!(read(&d.path().join("none")).is_none());
        let p = d.path().join("w");
        let mut text = "1 samples\n".repeat(20_000);
        text.push_str("42 samples\n");
        std::fs::write(&p, text).unwrap();
        assert_eq!(read(&p).unwrap().unwrap(), (42.0, "samples".to_string()));
    }
}
