//! Slurm accounting (`sacct -P`) read line by line: the jobs of a cluster's history.
//!
//! Field set: Green Algorithms for HPC's (JobID, Elapsed, NCPUS, TotalCPU, CPUTime, ReqMem,
//! MaxRSS, AllocTRES, State, Partition, Account, User, WorkDir) plus ConsumedEnergyRaw, and, when
//! present, JobIDRaw (the job key's id for array and heterogeneous jobs), NNodes (per-node
//! memory) and Start/End/Cluster (shown, not used in the arithmetic). Columns are found by the
//! header's names, in any order; JobID, Elapsed, NCPUS and State are required.
//!
//! Formats are Slurm's as `sacct(1)` and `slurm.conf(5)` describe them: durations
//! `[DD-[HH:]]MM:SS[.mmm]` (also `UNLIMITED`, `INVALID`), memory `500M`, `6760Mc` (per core),
//! `250Gn` (per node) with K/M/G/T/P binary suffixes, AllocTRES `cpu=4,mem=16G,gres/gpu=2`.
//! Every value is bounded to what a job can physically be; a line that breaks a bound or a
//! format is reported with its line number and skipped. Lines are read with a length cap, and a
//! job's steps are folded into it as they come (sacct prints a job's steps right after it), so
//! memory stays bounded however long the input.

use std::collections::BTreeMap;
use std::io::BufRead;

/// Longest duration accepted: 366 days, in seconds.
pub const MAX_DURATION_S: f64 = 366.0 * 86_400.0;
/// Most CPUs (or nodes, or tasks) a job can hold: 2^24, above the largest machines' core counts.
pub const MAX_CPUS: u64 = 1 << 24;
/// Most GPUs a job can hold.
pub const MAX_GPUS: u64 = 1 << 20;
/// Most memory a job can hold, bytes: 2^60 (1 EiB).
pub const MAX_MEMORY_BYTES: f64 = (1u64 << 60) as f64;
/// Most energy a job can have consumed, J: 1e16 J (2.8 GWh).
pub const MAX_ENERGY_J: f64 = 1e16;
/// Longest line read; longer lines are reported and skipped.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A duration field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SlurmDuration {
    Seconds(f64),
    Unlimited,
    Invalid,
}

impl SlurmDuration {
    pub fn seconds(self) -> Option<f64> {
        match self {
            SlurmDuration::Seconds(s) => Some(s),
            _ => None,
        }
    }
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `[DD-[HH:]]MM:SS[.mmm]` (also bare seconds), `UNLIMITED`, `INVALID`, bounded by
/// [`MAX_DURATION_S`].
pub fn parse_duration(s: &str) -> Result<SlurmDuration, String> {
    let t = s.trim();
    match t.to_ascii_uppercase().as_str() {
        "UNLIMITED" => return Ok(SlurmDuration::Unlimited),
        "INVALID" => return Ok(SlurmDuration::Invalid),
        _ => {}
    }
    let bad = || format!("`{t}` is not a Slurm duration ([DD-[HH:]]MM:SS[.mmm])");
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (digits(d).ok_or_else(bad)?, r),
        None => (0, t),
    };
    let (whole, frac) = match rest.split_once('.') {
        Some((w, f)) => {
            let f_n = digits(f).ok_or_else(bad)?;
            (w, f_n as f64 / 10f64.powi(f.len() as i32))
        }
        None => (rest, 0.0),
    };
    let parts: Vec<&str> = whole.split(':').collect();
    let nums: Vec<u64> = parts
        .iter()
        .map(|p| digits(p))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)?;
    let (h, m, sec) = match nums.as_slice() {
        [s] if t.contains('-') => (*s, 0, 0), // `D-HH`
        [s] => (0, 0, *s),
        [m, s] if t.contains('-') => (*m, *s, 0), // `D-HH:MM`
        [m, s] => (0, *m, *s),
        [h, m, s] => (*h, *m, *s),
        _ => return Err(bad()),
    };
    // Every field after the leading one is below 60 (hours after a day: below 24).
    let rest_ok = nums.iter().skip(1).all(|&x| x < 60) && !(t.contains('-') && h >= 24);
    if !rest_ok {
        return Err(bad());
    }
    let total = days as f64 * 86_400.0 + h as f64 * 3600.0 + m as f64 * 60.0 + sec as f64 + frac;
    if total > MAX_DURATION_S {
        return Err(format!("`{t}` is longer than 366 days"));
    }
    Ok(SlurmDuration::Seconds(total))
}

/// How a memory figure is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryPer {
    Job,
    Core,
    Node,
}

/// A memory figure as Slurm writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Memory {
    pub bytes: f64,
    pub per: MemoryPer,
    /// The figure as GA4HPC reads it, GB: the number × K 1e-6, M 1e-3, G 1, T 1e3, P 1e6
    /// (decimal steps on Slurm's binary units).
    pub ga_gb: f64,
}

/// `500M`, `6760Mc`, `250Gn`, `16G`, `0`; K/M/G/T/P are binary (Slurm's). A bare number is in
/// `default_unit` (`b'M'` for ReqMem, Slurm's memory unit; `b'K'` for MaxRSS, as GA4HPC's
/// default and older Slurm print it).
pub fn parse_memory(s: &str, default_unit: u8) -> Result<Memory, String> {
    let t = s.trim();
    let bad = || format!("`{t}` is not a Slurm memory size (e.g. 500M, 6760Mc, 250Gn)");
    let mut b = t.as_bytes();
    let mut per = MemoryPer::Job;
    match b.last() {
        Some(b'c') => {
            per = MemoryPer::Core;
            b = &b[..b.len() - 1];
        }
        Some(b'n') => {
            per = MemoryPer::Node;
            b = &b[..b.len() - 1];
        }
        _ => {}
    }
    let (num, unit) = match b.last() {
        Some(u) if u.is_ascii_alphabetic() => (&b[..b.len() - 1], u.to_ascii_uppercase()),
        _ => (b, default_unit),
    };
    let num = std::str::from_utf8(num).map_err(|_| bad())?;
    if num.is_empty() || num.len() > 24 || !num.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let (mult, ga) = match unit {
        b'B' => (1.0, 1e-9),
        b'K' => (1024.0, 1e-6),
        b'M' => (1024.0f64.powi(2), 1e-3),
        b'G' => (1024.0f64.powi(3), 1.0),
        b'T' => (1024.0f64.powi(4), 1e3),
        b'P' => (1024.0f64.powi(5), 1e6),
        _ => return Err(bad()),
    };
    let bytes = v * mult;
    if !bytes.is_finite() || bytes > MAX_MEMORY_BYTES {
        return Err(format!("`{t}` is more memory than a job can hold"));
    }
    Ok(Memory {
        bytes,
        per,
        ga_gb: v * ga,
    })
}

/// AllocTRES: `cpu=4,mem=16G,node=1,billing=4,gres/gpu=2,gres/gpu:a100=2`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tres {
    pub cpus: Option<u64>,
    pub memory_bytes: Option<f64>,
    pub nodes: Option<u64>,
    /// `gres/gpu`, else the sum of the typed `gres/gpu:TYPE` counts.
    pub gpus: Option<u64>,
    /// GPU types named (`gres/gpu:a100`).
    pub gpu_types: Vec<String>,
}

fn count(s: &str, max: u64, what: &str) -> Result<u64, String> {
    let n = digits(s.trim()).ok_or_else(|| format!("{what} `{s}` is not a count"))?;
    if n > max {
        return Err(format!("{what} {n} is more than a job can hold ({max})"));
    }
    Ok(n)
}

pub fn parse_tres(s: &str) -> Result<Tres, String> {
    let mut t = Tres::default();
    let mut typed: u64 = 0;
    for item in s.trim().split(',').filter(|x| !x.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("AllocTRES item `{item}` is not key=value"))?;
        match k {
            "cpu" => t.cpus = Some(count(v, MAX_CPUS, "AllocTRES cpu")?),
            "node" => t.nodes = Some(count(v, MAX_CPUS, "AllocTRES node")?),
            "mem" => t.memory_bytes = Some(parse_memory(v, b'M')?.bytes),
            "gres/gpu" => t.gpus = Some(count(v, MAX_GPUS, "AllocTRES gres/gpu")?),
            k if k.starts_with("gres/gpu:") => {
                typed = typed.saturating_add(count(v, MAX_GPUS, "AllocTRES gres/gpu:TYPE")?);
                if typed > MAX_GPUS {
                    return Err("AllocTRES: more GPUs than a job can hold".into());
                }
                if t.gpu_types.len() < 16 {
                    t.gpu_types
                        .push(k["gres/gpu:".len()..].chars().take(64).collect());
                }
            }
            _ => {} // billing, energy, licenses, other gres: not used
        }
    }
    if t.gpus.is_none() && typed > 0 {
        t.gpus = Some(typed);
    }
    Ok(t)
}

/// A step of a job.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Batch,
    Extern,
    Interactive,
    Numbered(u32),
    Other(String),
}

/// `123`, `123.batch`, `123.0`, `123_4`, `123_[1-9]`, `123+0.extern`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobId {
    /// The job as sacct names it, without the step: `123`, `123_4`, `123_[1-9]`, `123+0`.
    pub job: String,
    /// The numeric job id before any `_` or `+`.
    pub base: u64,
    /// Array task (`123_4` → 4); `None` also for a pending array range `123_[1-9]`.
    pub array_task: Option<u64>,
    /// A pending array range, `123_[1-9]`.
    pub array_range: bool,
    /// Heterogeneous job component (`123+0` → 0).
    pub het_component: Option<u32>,
    pub step: Option<Step>,
}

pub fn parse_job_id(s: &str) -> Result<JobId, String> {
    let t = s.trim();
    let bad = || format!("`{t}` is not a Slurm job id (123, 123.batch, 123_4, 123+0)");
    if t.is_empty() || t.len() > 128 {
        return Err(bad());
    }
    // A step follows the last `.` outside brackets.
    let (job, step) = match t.find('[') {
        Some(_) => match t.rfind(']') {
            Some(close) => match t[close..].find('.') {
                Some(dot) => (&t[..close + dot], Some(&t[close + dot + 1..])),
                None => (t, None),
            },
            None => return Err(bad()),
        },
        None => match t.split_once('.') {
            Some((j, s)) => (j, Some(s)),
            None => (t, None),
        },
    };
    let step = match step {
        None => None,
        Some("batch") => Some(Step::Batch),
        Some("extern") => Some(Step::Extern),
        Some("interactive") => Some(Step::Interactive),
        Some(s) if digits(s).is_some_and(|n| n <= u32::MAX as u64) => {
            Some(Step::Numbered(s.parse().map_err(|_| bad())?))
        }
        Some(s)
            if !s.is_empty()
                && s.len() <= 32
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Some(Step::Other(s.to_string()))
        }
        Some(_) => return Err(bad()),
    };
    let mut id = JobId {
        job: job.to_string(),
        base: 0,
        array_task: None,
        array_range: false,
        het_component: None,
        step,
    };
    let base = if let Some((b, a)) = job.split_once('_') {
        if let Some(inner) = a.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            let ok = !inner.is_empty()
                && inner
                    .chars()
                    .all(|c| c.is_ascii_digit() || ",-%:".contains(c));
            if !ok {
                return Err(bad());
            }
            id.array_range = true;
        } else {
            id.array_task = Some(digits(a).ok_or_else(bad)?);
        }
        b
    } else if let Some((b, h)) = job.split_once('+') {
        let n = digits(h)
            .filter(|n| *n <= u32::MAX as u64)
            .ok_or_else(bad)?;
        id.het_component = Some(n as u32);
        b
    } else {
        job
    };
    id.base = digits(base).ok_or_else(bad)?;
    Ok(id)
}

/// How a job ended, grouped as waste counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    Failed,
    Cancelled,
    Timeout,
    OutOfMemory,
    /// NODE_FAIL, BOOT_FAIL, PREEMPTED, DEADLINE: ended by the system.
    Ended,
    /// PENDING, RUNNING, REQUEUED, SUSPENDED, …: not finished, not counted.
    Unfinished,
}

impl Outcome {
    /// From sacct's State (`CANCELLED by 1000` counts as CANCELLED).
    pub fn from_state(s: &str) -> Outcome {
        let w = s
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match w.trim_end_matches('+') {
            "COMPLETED" | "CD" => Outcome::Completed,
            "FAILED" | "F" => Outcome::Failed,
            "CANCELLED" | "CA" => Outcome::Cancelled,
            "TIMEOUT" | "TO" => Outcome::Timeout,
            "OUT_OF_MEMORY" | "OOM" => Outcome::OutOfMemory,
            "NODE_FAIL" | "NF" | "BOOT_FAIL" | "BF" | "PREEMPTED" | "PR" | "DEADLINE" | "DL" => {
                Outcome::Ended
            }
            _ => Outcome::Unfinished,
        }
    }

    /// Work that did not finish: everything but Completed (and Unfinished, not counted).
    pub fn is_waste(self) -> bool {
        !matches!(self, Outcome::Completed | Outcome::Unfinished)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Timeout => "timeout",
            Outcome::OutOfMemory => "out_of_memory",
            Outcome::Ended => "ended_by_system",
            Outcome::Unfinished => "unfinished",
        }
    }
}

/// One line of sacct output, parsed (values the line left empty are `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub id: JobId,
    pub raw_id: Option<String>,
    pub elapsed_s: Option<f64>,
    pub ncpus: Option<u64>,
    pub nnodes: Option<u64>,
    pub total_cpu_s: Option<f64>,
    pub cpu_time_s: Option<f64>,
    pub req_mem: Option<Memory>,
    pub max_rss_bytes: Option<f64>,
    pub tres: Tres,
    pub state: String,
    pub partition: String,
    pub account: String,
    pub user: String,
    pub work_dir: String,
    pub cluster: String,
    pub start: String,
    pub end: String,
    pub consumed_energy_j: Option<f64>,
}

/// Column positions from the header line.
#[derive(Debug, Clone)]
pub struct Header {
    cols: BTreeMap<String, usize>,
    width: usize,
}

const REQUIRED: [&str; 4] = ["jobid", "elapsed", "ncpus", "state"];

impl Header {
    pub fn parse(line: &str) -> Result<Header, String> {
        let names: Vec<String> = line
            .trim_end_matches(['\r', '\n'])
            .split('|')
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        let mut cols = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            cols.entry(n.clone()).or_insert(i);
        }
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|r| !cols.contains_key(*r))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the header line lacks {}; run sacct with -P and --format including JobID,Elapsed,NCPUS,State (wattprint slurm import --run-sacct does)",
                missing.join(", ")
            ));
        }
        Ok(Header {
            cols,
            width: names.len(),
        })
    }

    /// Whether the header has this column (lowercase name).
    pub fn has(&self, name: &str) -> bool {
        self.cols.contains_key(name)
    }

    pub fn parse_line(&self, line: &str) -> Result<Line, String> {
        let fields: Vec<&str> = line.trim_end_matches(['\r', '\n']).split('|').collect();
        if fields.len() != self.width {
            return Err(format!(
                "{} fields where the header has {}",
                fields.len(),
                self.width
            ));
        }
        let get = |n: &str| -> &str { self.cols.get(n).map_or("", |&i| fields[i].trim()) };
        let opt = |n: &str| -> Option<&str> { Some(get(n)).filter(|s| !s.is_empty()) };
        let dur = |n: &str| -> Result<Option<f64>, String> {
            match opt(n) {
                None => Ok(None),
                Some(s) => parse_duration(s)
                    .map(|d| d.seconds())
                    .map_err(|e| format!("{n}: {e}")),
            }
        };
        let text = |n: &str| -> String { get(n).chars().take(256).collect() };
        let ncpus = opt("ncpus")
            .map(|s| count(s, MAX_CPUS, "NCPUS"))
            .transpose()?;
        let nnodes = opt("nnodes")
            .map(|s| count(s, MAX_CPUS, "NNodes"))
            .transpose()?;
        let consumed_energy_j = match opt("consumedenergyraw") {
            None => None,
            Some(s) => {
                let v: f64 = digits(s).map(|n| n as f64).ok_or_else(|| {
                    format!("ConsumedEnergyRaw `{s}` is not a whole number of joules")
                })?;
                if v > MAX_ENERGY_J {
                    return Err(format!(
                        "ConsumedEnergyRaw {s} J is more than a job can use"
                    ));
                }
                Some(v)
            }
        };
        Ok(Line {
            id: parse_job_id(get("jobid"))?,
            raw_id: opt("jobidraw").map(|s| s.chars().take(64).collect()),
            elapsed_s: dur("elapsed")?,
            ncpus,
            nnodes,
            total_cpu_s: dur("totalcpu")?,
            cpu_time_s: dur("cputime")?,
            req_mem: opt("reqmem")
                .map(|s| parse_memory(s, b'M'))
                .transpose()
                .map_err(|e| format!("ReqMem: {e}"))?,
            max_rss_bytes: opt("maxrss")
                .map(|s| parse_memory(s, b'K').map(|m| m.bytes))
                .transpose()
                .map_err(|e| format!("MaxRSS: {e}"))?,
            tres: match opt("alloctres") {
                Some(s) => parse_tres(s)?,
                None => Tres::default(),
            },
            state: text("state"),
            partition: text("partition"),
            account: text("account"),
            user: text("user"),
            work_dir: text("workdir"),
            cluster: text("cluster"),
            start: text("start"),
            end: text("end"),
            consumed_energy_j,
        })
    }
}

/// A job with its steps folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// sacct's JobID of the allocation line: `123`, `123_4`, `123+0`.
    pub job: String,
    /// JobIDRaw when given (the id Slurm puts in `SLURM_JOB_ID`).
    pub raw_id: Option<String>,
    pub line: usize,
    pub outcome: Outcome,
    pub state: String,
    pub user: String,
    pub account: String,
    pub partition: String,
    pub work_dir: String,
    pub cluster: String,
    pub start: String,
    pub end: String,
    pub elapsed_s: f64,
    pub ncpus: u64,
    pub nodes: u64,
    /// `nodes` came from neither NNodes nor AllocTRES: assumed 1.
    pub nodes_assumed: bool,
    pub gpus: u64,
    pub gpu_types: Vec<String>,
    /// CPU time used, s: TotalCPU, else CPUTime when TotalCPU is 0 or absent.
    pub cpu_used_s: f64,
    /// CPU time used came from CPUTime (100 % of the allocated cores), not TotalCPU.
    pub cpu_from_cputime: bool,
    /// CPUTime (NCPUS × Elapsed), s.
    pub cpu_time_s: Option<f64>,
    /// Requested memory for the whole job, bytes (per-core × NCPUS, per-node × nodes).
    pub req_mem_bytes: Option<f64>,
    pub req_mem_per: Option<MemoryPer>,
    /// Requested memory as GA4HPC reads it, GB (see [`Memory::ga_gb`]).
    pub req_mem_ga_gb: Option<f64>,
    /// The largest MaxRSS of any step, bytes.
    pub max_rss_bytes: Option<f64>,
    /// Slurm's own energy figure (ConsumedEnergyRaw), J, the largest over the job's lines.
    pub consumed_energy_j: Option<f64>,
    /// Numbered steps seen (`123.0` → 0), for the job keys of measured records.
    pub steps: Vec<u32>,
    pub has_batch: bool,
}

impl Job {
    fn from_line(l: &Line, line_no: usize) -> Job {
        Job {
            job: l.id.job.clone(),
            raw_id: l.raw_id.clone(),
            line: line_no,
            outcome: Outcome::from_state(&l.state),
            state: l.state.clone(),
            user: l.user.clone(),
            account: l.account.clone(),
            partition: l.partition.clone(),
            work_dir: l.work_dir.clone(),
            cluster: l.cluster.clone(),
            start: l.start.clone(),
            end: l.end.clone(),
            elapsed_s: l.elapsed_s.unwrap_or(0.0),
            ncpus: l.ncpus.or(l.tres.cpus).unwrap_or(0),
            nodes: 1,
            nodes_assumed: false,
            gpus: l.tres.gpus.unwrap_or(0),
            gpu_types: l.tres.gpu_types.clone(),
            cpu_used_s: 0.0,
            cpu_from_cputime: false,
            cpu_time_s: l.cpu_time_s,
            req_mem_bytes: None,
            req_mem_per: None,
            req_mem_ga_gb: None,
            max_rss_bytes: l.max_rss_bytes,
            consumed_energy_j: l.consumed_energy_j,
            steps: Vec::new(),
            has_batch: false,
        }
    }

    /// The job keys a wattprint record of this job carries (`crates/core/src/job.rs`):
    /// `slurm:ID` (the batch step has no SLURM_STEP_ID) and `slurm:ID.N` per numbered step.
    /// `None` for array and heterogeneous jobs without JobIDRaw (their SLURM_JOB_ID is not
    /// in the JobID column).
    pub fn keys(&self) -> Option<Vec<String>> {
        let id = match &self.raw_id {
            Some(r) => r.clone(),
            None if self.job.bytes().all(|b| b.is_ascii_digit()) => self.job.clone(),
            None => return None,
        };
        let mut k = vec![format!("slurm:{id}")];
        k.extend(self.steps.iter().map(|s| format!("slurm:{id}.{s}")));
        Some(k)
    }
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    pub line: usize,
    pub reason: String,
}

/// What the reader yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Job(Box<Job>),
    Malformed(Malformed),
}

/// Reads sacct -P output and yields one [`Job`] per job, steps folded in, plus the lines
/// that could not be read. Stream: at most one job is held at a time.
pub struct Reader<R: BufRead> {
    input: R,
    header: Option<Header>,
    line_no: usize,
    current: Option<(Job, Option<Memory>, Option<u64>, u64)>,
    pending: std::collections::VecDeque<Item>,
    done: bool,
    buf: Vec<u8>,
}

impl<R: BufRead> Reader<R> {
    pub fn new(input: R) -> Reader<R> {
        Reader {
            input,
            header: None,
            line_no: 0,
            current: None,
            pending: Default::default(),
            done: false,
            buf: Vec::new(),
        }
    }

    /// The header, once read.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// The next line (without its end), capped at [`MAX_LINE_BYTES`]; `Ok(None)` at the end.
    fn next_line(&mut self) -> std::io::Result<Option<Result<String, String>>> {
        self.buf.clear();
        let mut too_long = false;
        loop {
            let avail = self.input.fill_buf()?;
            if avail.is_empty() {
                if self.buf.is_empty() && !too_long {
                    return Ok(None);
                }
                break;
            }
            let (take, found) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            let room = MAX_LINE_BYTES.saturating_sub(self.buf.len());
            if take > room {
                too_long = true;
            }
            self.buf.extend_from_slice(&avail[..take.min(room)]);
            self.input.consume(take);
            if found {
                break;
            }
        }
        self.line_no += 1;
        if too_long {
            return Ok(Some(Err(format!(
                "line longer than {MAX_LINE_BYTES} bytes"
            ))));
        }
        Ok(Some(match std::str::from_utf8(&self.buf) {
            Ok(s) => Ok(s.trim_end_matches(['\n', '\r']).to_string()),
            Err(_) => Err("not UTF-8 text".to_string()),
        }))
    }

    fn finish_current(&mut self) {
        if let Some((mut job, req, tres_nodes, alloc_cpus)) = self.current.take() {
            let nodes = match tres_nodes {
                Some(n) if n > 0 => n,
                _ => {
                    job.nodes_assumed = true;
                    1
                }
            };
            job.nodes = nodes;
            if job.ncpus == 0 {
                job.ncpus = alloc_cpus;
            }
            if let Some(m) = req {
                let mult = match m.per {
                    MemoryPer::Job => 1.0,
                    MemoryPer::Core => job.ncpus as f64,
                    MemoryPer::Node => nodes as f64,
                };
                job.req_mem_bytes = Some((m.bytes * mult).min(MAX_MEMORY_BYTES));
                job.req_mem_per = Some(m.per);
                job.req_mem_ga_gb = Some(m.ga_gb * mult);
            }
            if job.cpu_used_s <= 0.0 {
                if let Some(c) = job.cpu_time_s {
                    job.cpu_used_s = c;
                    job.cpu_from_cputime = true;
                } else {
                    job.cpu_used_s = job.elapsed_s * job.ncpus as f64;
                    job.cpu_from_cputime = true;
                }
            }
            // TotalCPU cannot exceed the cores held for the time.
            let held = job.elapsed_s * job.ncpus as f64;
            if held > 0.0 {
                job.cpu_used_s = job.cpu_used_s.min(held);
            }
            self.pending.push_back(Item::Job(Box::new(job)));
        }
    }

    fn take_line(&mut self, l: Line) {
        let same = self
            .current
            .as_ref()
            .is_some_and(|(j, ..)| j.job == l.id.job);
        if l.id.step.is_none() || !same {
            if l.id.step.is_some() {
                // A step without its job line: a job of its own, reported.
                self.pending.push_back(Item::Malformed(Malformed {
                    line: self.line_no,
                    reason: format!("step {} comes without its job's line", l.id.job),
                }));
                return;
            }
            self.finish_current();
            let mut job = Job::from_line(&l, self.line_no);
            if let Some(t) = l.total_cpu_s {
                job.cpu_used_s = t;
            }
            let nodes = l.nnodes.or(l.tres.nodes);
            let cpus = l.tres.cpus.unwrap_or(0);
            self.current = Some((job, l.req_mem, nodes, cpus));
            return;
        }
        let Some((job, req, nodes, _)) = self.current.as_mut() else {
            return;
        };
        match &l.id.step {
            Some(Step::Numbered(n)) if job.steps.len() < 4096 && !job.steps.contains(n) => {
                job.steps.push(*n);
            }
            Some(Step::Batch) => job.has_batch = true,
            _ => {}
        }
        if let Some(r) = l.max_rss_bytes {
            job.max_rss_bytes = Some(job.max_rss_bytes.map_or(r, |m| m.max(r)));
        }
        if req.is_none() {
            *req = l.req_mem;
        }
        if nodes.is_none() {
            *nodes = l.nnodes.or(l.tres.nodes);
        }
        if job.gpus == 0 {
            job.gpus = l.tres.gpus.unwrap_or(0);
        }
        if let Some(e) = l.consumed_energy_j {
            job.consumed_energy_j = Some(job.consumed_energy_j.map_or(e, |m| m.max(e)));
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = std::io::Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(i) = self.pending.pop_front() {
                return Some(Ok(i));
            }
            if self.done {
                return None;
            }
            let line = match self.next_line() {
                Err(e) => return Some(Err(e)),
                Ok(None) => {
                    self.done = true;
                    if self.header.is_none() && self.line_no == 0 {
                        self.pending.push_back(Item::Malformed(Malformed {
                            line: 0,
                            reason: "no input: expected sacct -P output with a header line".into(),
                        }));
                    }
                    self.finish_current();
                    continue;
                }
                Ok(Some(l)) => l,
            };
            let line = match line {
                Ok(l) => l,
                Err(reason) => {
                    self.pending.push_back(Item::Malformed(Malformed {
                        line: self.line_no,
                        reason,
                    }));
                    continue;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let Some(h) = &self.header else {
                match Header::parse(&line) {
                    Ok(h) => self.header = Some(h),
                    Err(reason) => {
                        // Without a header nothing can be read: say so once and stop.
                        self.pending.push_back(Item::Malformed(Malformed {
                            line: self.line_no,
                            reason,
                        }));
                        self.done = true;
                    }
                }
                continue;
            };
            match h.parse_line(&line) {
                Ok(l) => self.take_line(l),
                Err(reason) => self.pending.push_back(Item::Malformed(Malformed {
                    line: self.line_no,
                    reason,
                })),
            }
        }
    }
}

/// The `--format` fields `wattprint slurm import --run-sacct` asks for.
pub const SACCT_FORMAT: &str = "JobID,JobIDRaw,User,Account,Partition,State,Start,End,Elapsed,NNodes,NCPUS,TotalCPU,CPUTime,ReqMem,MaxRSS,AllocTRES,WorkDir,Cluster,ConsumedEnergyRaw";
