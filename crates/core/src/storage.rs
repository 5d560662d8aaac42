//! The storage footprint of data sets and checkpoints: `wattprint storage scan DIR…`.
//!
//! Duplicates are found by size, then a partial hash (the first [`PARTIAL_BYTES`]), then a
//! full SHA-256 of the candidates left — only files that share a size and a partial hash are
//! read whole. Memory is bounded by the number of distinct sizes plus the candidate files (two
//! walks: the first counts sizes, the second keeps only files whose size occurs more than
//! once), never by the whole tree. Hard links are one file (counted once, never a duplicate);
//! symbolic links are never followed (so the walk never leaves the trees given); an entry that
//! cannot be read is reported and the scan goes on.
//!
//! Energy: stored bytes × hours × Cloud Carbon Footprint's storage coefficients (HDD 0.65,
//! SSD 1.2 Wh per TB-hour; cloud-carbon-footprint @ b7a049c, Apache-2.0) × the replication
//! factor. Rules and sources: docs/pipeline.md.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Bytes read for the partial hash.
pub const PARTIAL_BYTES: usize = 64 * 1024;
/// HDD storage energy, Wh per TB-hour (CCF `HDDCOEFFICIENT`).
pub const HDD_WH_PER_TB_HOUR: f64 = 0.65;
/// SSD storage energy, Wh per TB-hour (CCF `SSDCOEFFICIENT`).
pub const SSD_WH_PER_TB_HOUR: f64 = 1.2;
/// Hours in a year (365.25 days).
pub const HOURS_PER_YEAR: f64 = 8766.0;
/// Unreadable entries listed by path (all are counted).
pub const MAX_LISTED_ERRORS: usize = 50;
/// Duplicate groups listed (all are counted).
pub const MAX_LISTED_GROUPS: usize = 20;
/// Paths listed per duplicate group.
pub const MAX_LISTED_COPIES: usize = 10;
/// Deepest directory nesting walked (deeper entries are reported, not walked).
pub const MAX_DEPTH: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Medium {
    Hdd,
    Ssd,
}

impl Medium {
    pub fn wh_per_tb_hour(self) -> f64 {
        match self {
            Medium::Hdd => HDD_WH_PER_TB_HOUR,
            Medium::Ssd => SSD_WH_PER_TB_HOUR,
        }
    }
}

/// A set of identical files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DuplicateGroup {
    pub size_bytes: u64,
    pub sha256: String,
    /// How many copies (distinct files, hard links counted once).
    pub copies: u64,
    /// Up to [`MAX_LISTED_COPIES`] of their paths.
    pub paths: Vec<String>,
    /// Bytes that de-duplication frees: size × (copies − 1).
    pub redundant_bytes: u64,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanResult {
    pub roots: Vec<String>,
    /// Regular files (hard-linked ones once).
    pub files: u64,
    pub bytes: u64,
    /// Extra names of files already counted (hard links).
    pub hard_links: u64,
    /// Symbolic links seen and not followed.
    pub symlinks: u64,
    /// Entries that could not be read (counted), and the first [`MAX_LISTED_ERRORS`].
    pub unreadable: u64,
    pub errors: Vec<String>,
    /// Files read for a partial hash, and whole.
    pub partial_hashed: u64,
    pub fully_hashed: u64,
    pub duplicate_groups: u64,
    pub redundant_bytes: u64,
    /// The largest groups by redundant bytes, at most [`MAX_LISTED_GROUPS`].
    pub groups: Vec<DuplicateGroup>,
}

/// The yearly footprint of the scanned bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageFootprint {
    pub medium: Medium,
    pub replication: u32,
    pub wh_per_tb_hour: f64,
    pub stored_tb: f64,
    pub kwh_per_year: f64,
    pub kg_per_year: f64,
    /// What removing the redundant copies would save each year.
    pub dedup_kwh_per_year: f64,
    pub dedup_kg_per_year: f64,
    /// gCO2e/kWh × PUE applied.
    pub g_per_kwh: f64,
    pub pue: f64,
    pub source: String,
}

/// The footprint of `r`'s bytes on `medium`, replicated `replication` times, at `g_per_kwh`
/// and `pue`.
pub fn footprint(
    r: &ScanResult,
    medium: Medium,
    replication: u32,
    g_per_kwh: f64,
    pue: f64,
) -> StorageFootprint {
    let per_byte_year_kwh =
        medium.wh_per_tb_hour() / 1000.0 * HOURS_PER_YEAR / 1e12 * replication as f64;
    let kwh = r.bytes as f64 * per_byte_year_kwh;
    let dedup = r.redundant_bytes as f64 * per_byte_year_kwh;
    let kg = |k: f64| k * pue * g_per_kwh / 1000.0;
    StorageFootprint {
        medium,
        replication,
        wh_per_tb_hour: medium.wh_per_tb_hour(),
        stored_tb: r.bytes as f64 / 1e12,
        kwh_per_year: kwh,
        kg_per_year: kg(kwh),
        dedup_kwh_per_year: dedup,
        dedup_kg_per_year: kg(dedup),
        g_per_kwh,
        pue,
        source: "Cloud Carbon Footprint storage coefficients (HDD 0.65, SSD 1.2 Wh per \
                 TB-hour; cloud-carbon-footprint @ b7a049c, Apache-2.0) × replication × 8766 h"
            .into(),
    }
}

struct Walker {
    res: ScanResult,
    /// (device, inode) of files with more than one link, to count each once.
    linked: HashSet<(u64, u64)>,
}

impl Walker {
    fn error(&mut self, p: &Path, e: impl std::fmt::Display) {
        self.res.unreadable += 1;
        if self.res.errors.len() < MAX_LISTED_ERRORS {
            self.res.errors.push(format!("{}: {e}", p.display()));
        }
    }

    /// Walk `root` (iteratively; symlinks never followed), calling `file` once per distinct
    /// regular file with its path and size.
    fn walk(&mut self, root: &Path, file: &mut dyn FnMut(&Path, u64)) {
        let mut stack: Vec<(PathBuf, usize)> = vec![(root.to_path_buf(), 0)];
        while let Some((dir, depth)) = stack.pop() {
            let md = match std::fs::symlink_metadata(&dir) {
                Ok(m) => m,
                Err(e) => {
                    self.error(&dir, e);
                    continue;
                }
            };
            if md.file_type().is_symlink() {
                self.res.symlinks += 1;
                continue;
            }
            if md.is_file() {
                self.one_file(&dir, &md, file);
                continue;
            }
            if !md.is_dir() {
                continue; // sockets, fifos, devices: not stored data
            }
            if depth >= MAX_DEPTH {
                self.error(&dir, "nested too deep; not walked");
                continue;
            }
            let rd = match std::fs::read_dir(&dir) {
                Ok(r) => r,
                Err(e) => {
                    self.error(&dir, e);
                    continue;
                }
            };
            for entry in rd {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        self.error(&dir, e);
                        continue;
                    }
                };
                let p = entry.path();
                match entry.file_type() {
                    Ok(t) if t.is_symlink() => self.res.symlinks += 1,
                    Ok(t) if t.is_dir() => stack.push((p, depth + 1)),
                    Ok(t) if t.is_file() => match entry.metadata() {
                        Ok(m) => self.one_file(&p, &m, file),
                        Err(e) => self.error(&p, e),
                    },
                    Ok(_) => {}
                    Err(e) => self.error(&p, e),
                }
            }
        }
    }

    fn one_file(&mut self, p: &Path, m: &std::fs::Metadata, file: &mut dyn FnMut(&Path, u64)) {
        if m.nlink() > 1 && !self.linked.insert((m.dev(), m.ino())) {
            self.res.hard_links += 1;
            return;
        }
        self.res.files += 1;
        self.res.bytes = self.res.bytes.saturating_add(m.len());
        file(p, m.len());
    }
}

fn hash_file(p: &Path, limit: Option<usize>) -> std::io::Result<[u8; 32]> {
    let f = std::fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut r: Box<dyn Read> = match limit {
        Some(n) => Box::new(f.take(n as u64)),
        None => Box::new(f),
    };
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Roots that are not inside another root (a tree given twice is walked once).
fn distinct_roots(roots: &[PathBuf]) -> Vec<PathBuf> {
    let canon: Vec<PathBuf> = roots
        .iter()
        .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
        .collect();
    let mut out: Vec<PathBuf> = Vec::new();
    for (i, c) in canon.iter().enumerate() {
        let inside = canon
            .iter()
            .enumerate()
            .any(|(j, o)| j != i && c.starts_with(o) && (c != o || j < i));
        if !inside {
            out.push(roots[i].clone());
        }
    }
    out
}

/// Scan `roots` for stored bytes and duplicate files.
pub fn scan(roots: &[PathBuf]) -> ScanResult {
    let roots = distinct_roots(roots);
    let empty = || ScanResult {
        roots: roots.iter().map(|r| r.display().to_string()).collect(),
        files: 0,
        bytes: 0,
        hard_links: 0,
        symlinks: 0,
        unreadable: 0,
        errors: Vec::new(),
        partial_hashed: 0,
        fully_hashed: 0,
        duplicate_groups: 0,
        redundant_bytes: 0,
        groups: Vec::new(),
    };
    // Walk 1: how many files of each size.
    let mut sizes: HashMap<u64, u32> = HashMap::new();
    let mut w = Walker {
        res: empty(),
        linked: HashSet::new(),
    };
    for r in &roots {
        w.walk(r, &mut |_, len| {
            if len > 0 {
                let c = sizes.entry(len).or_insert(0);
                *c = c.saturating_add(1);
            }
        });
    }
    let first = w.res;
    sizes.retain(|_, c| *c > 1);
    // Walk 2: keep only the files whose size occurs more than once.
    let mut cands: Vec<(u64, PathBuf)> = Vec::new();
    let mut w2 = Walker {
        res: empty(),
        linked: HashSet::new(),
    };
    for r in &roots {
        w2.walk(r, &mut |p, len| {
            if sizes.contains_key(&len) {
                cands.push((len, p.to_path_buf()));
            }
        });
    }
    drop(sizes);
    let mut res = first;
    cands.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut groups: Vec<DuplicateGroup> = Vec::new();
    let mut i = 0;
    while i < cands.len() {
        let size = cands[i].0;
        let mut j = i;
        while j < cands.len() && cands[j].0 == size {
            j += 1;
        }
        // Partial hash, then full hash of those sharing one.
        let mut by_partial: HashMap<[u8; 32], Vec<&Path>> = HashMap::new();
        for (_, p) in &cands[i..j] {
            res.partial_hashed += 1;
            match hash_file(p, Some(PARTIAL_BYTES)) {
                Ok(h) => by_partial.entry(h).or_default().push(p),
                Err(e) => {
                    res.unreadable += 1;
                    if res.errors.len() < MAX_LISTED_ERRORS {
                        res.errors.push(format!("{}: {e}", p.display()));
                    }
                }
            }
        }
        for (ph, ps) in by_partial.into_iter().filter(|(_, v)| v.len() > 1) {
            let mut by_full: HashMap<[u8; 32], Vec<&Path>> = HashMap::new();
            if size as usize <= PARTIAL_BYTES {
                // The partial read was the whole file.
                by_full.insert(ph, ps);
            } else {
                for p in ps {
                    res.fully_hashed += 1;
                    match hash_file(p, None) {
                        Ok(h) => by_full.entry(h).or_default().push(p),
                        Err(e) => {
                            res.unreadable += 1;
                            if res.errors.len() < MAX_LISTED_ERRORS {
                                res.errors.push(format!("{}: {e}", p.display()));
                            }
                        }
                    }
                }
            }
            for (h, mut ps) in by_full.into_iter().filter(|(_, v)| v.len() > 1) {
                ps.sort();
                let copies = ps.len() as u64;
                let redundant = size.saturating_mul(copies - 1);
                res.duplicate_groups += 1;
                res.redundant_bytes = res.redundant_bytes.saturating_add(redundant);
                groups.push(DuplicateGroup {
                    size_bytes: size,
                    sha256: hex(&h),
                    copies,
                    paths: ps
                        .iter()
                        .take(MAX_LISTED_COPIES)
                        .map(|p| p.display().to_string())
                        .collect(),
                    redundant_bytes: redundant,
                });
                // Keep the listing bounded: only the largest groups.
                if groups.len() > 4 * MAX_LISTED_GROUPS {
                    groups.sort_by_key(|g| std::cmp::Reverse(g.redundant_bytes));
                    groups.truncate(MAX_LISTED_GROUPS);
                }
            }
        }
        i = j;
    }
    groups.sort_by(|a, b| {
        b.redundant_bytes
            .cmp(&a.redundant_bytes)
            .then_with(|| a.paths.cmp(&b.paths))
    });
    groups.truncate(MAX_LISTED_GROUPS);
    res.groups = groups;
    res
}
