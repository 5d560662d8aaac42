//! Past Slurm jobs (from [`crate::sacct`]) as estimates, and the waste in them.
//!
//! Each job goes through [`crate::estimate::estimate`], the accounting `wattprint estimate`
//! uses (hardware × time × place, Green Algorithms' formula):
//! - CPU: NCPUS cores × the power per core × the CPU usage factor TotalCPU / (NCPUS × Elapsed),
//!   i.e. TotalCPU core-seconds at the core's power; when TotalCPU is 0 or absent, CPUTime (100 %
//!   of the allocated cores, GA4HPC's fallback) and the job says so.
//! - Memory: the requested memory (ReqMem, per core × NCPUS, per node × nodes) at 0.3725 W/GB,
//!   as Green Algorithms counts memory available (GA4HPC counts ReqMem); MaxRSS only when ReqMem
//!   is absent, and the job says so.
//! - GPUs: AllocTRES `gres/gpu` × the power per GPU × an assumed usage factor (default 1, as
//!   GA4HPC assumes), stated in the assumptions.
//!
//! Waste: jobs that failed, were cancelled, timed out, ran out of memory or were ended by the
//! system (their whole energy); over-requested memory: (ReqMem − MaxRSS) × Elapsed at the memory
//! power (the Green Algorithms rule counts memory by what is requested, so this is the energy
//! the over-request cost); CPU efficiency TotalCPU / (NCPUS × Elapsed), with no energy figure
//! (the model counts CPU power by the time used, so idle reserved cores cost nothing in it).

use crate::accounting::Breakdown;
use crate::estimate::{self, EstimateInput, GA_MEMORY_W_PER_GB};
use crate::profiles::{self, Profile, ProfileResult};
use crate::sacct::{Job, MemoryPer, Outcome};
use crate::units::GramsPerKwh;
use std::collections::BTreeMap;
use std::time::Duration;

/// Factors applied to every job.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryFactors {
    /// Power per core, W, and its source; `None`: Green Algorithms "Any" 12 W.
    pub core_watts: Option<(f64, String)>,
    /// Power per GPU, W, and its source; `None`: Green Algorithms "Any" 200 W.
    pub gpu_watts: Option<(f64, String)>,
    /// GPU model name for the Green Algorithms profile's own TDP table.
    pub gpu_model: Option<String>,
    /// Assumed GPU usage factor, 0–1.
    pub gpu_usage: f64,
    pub pue: f64,
    pub pue_source: String,
    pub intensity: f64,
    pub intensity_source: String,
    /// Location code, for the Green Algorithms profile's own intensity.
    pub location: String,
    /// PUE the user gave (passed to the Green Algorithms profile); `None`: GA's own.
    pub user_pue: Option<f64>,
    /// Carbon intensity the user gave, g/kWh: GA4HPC takes the cluster's CI from its
    /// configuration, so it replaces the profile's own; `None`: GA's own for the location.
    pub user_intensity: Option<f64>,
}

/// One job's estimate.
#[derive(Debug, Clone)]
pub struct JobEstimate {
    pub job: Job,
    /// `None` when there is nothing to count (no elapsed time, nothing allocated): `not_counted` says why.
    pub breakdown: Option<Breakdown>,
    pub not_counted: Option<String>,
    /// The same job as Green Algorithms (GA4HPC's way) counts it.
    pub ga: Option<ProfileResult>,
    /// Memory counted, GB (decimal), and which figure it came from.
    pub memory_gb: f64,
    pub memory_rule: &'static str,
    /// Notes on this job's inputs (CPUTime fallback, MaxRSS for memory, nodes assumed).
    pub notes: Vec<String>,
}

const GB: f64 = 1e9;

/// The estimate of one job.
pub fn estimate_job(job: &Job, f: &HistoryFactors) -> JobEstimate {
    let mut notes = Vec::new();
    let (memory_bytes, memory_rule) = match (job.req_mem_bytes, job.max_rss_bytes) {
        (Some(r), _) => (r, "requested (ReqMem)"),
        (None, Some(m)) => {
            notes.push("ReqMem absent: memory counted from MaxRSS".to_string());
            (m, "used (MaxRSS; ReqMem absent)")
        }
        (None, None) => (0.0, "not counted (no ReqMem nor MaxRSS)"),
    };
    if job.cpu_from_cputime && job.ncpus > 0 {
        notes.push(
            "TotalCPU is 0 or absent: CPU time from CPUTime (all allocated cores busy)".to_string(),
        );
    }
    if job.nodes_assumed && job.req_mem_per == Some(MemoryPer::Node) {
        notes.push("per-node ReqMem with no NNodes nor AllocTRES node: 1 node assumed".into());
    }
    let memory_gb = memory_bytes / GB;
    let mut out = JobEstimate {
        job: job.clone(),
        breakdown: None,
        not_counted: None,
        ga: None,
        memory_gb,
        memory_rule,
        notes,
    };
    if job.elapsed_s <= 0.0 {
        out.not_counted = Some("no elapsed time".into());
        return out;
    }
    let duration = Duration::from_secs_f64(job.elapsed_s);
    let cores = u32::try_from(job.ncpus).unwrap_or(u32::MAX);
    let gpus = u32::try_from(job.gpus).unwrap_or(u32::MAX);
    let held = job.elapsed_s * job.ncpus as f64;
    let cpu_usage = if held > 0.0 {
        (job.cpu_used_s / held).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut input = EstimateInput::new(duration, f.pue, GramsPerKwh(f.intensity));
    input.sources.pue = Some(f.pue_source.clone());
    input.sources.intensity = Some(f.intensity_source.clone());
    input.cores = cores;
    if cores > 0 {
        if let Some((w, src)) = &f.core_watts {
            input.core_watts = Some(*w);
            input.sources.core_watts = Some(src.clone());
        }
        input.cpu_usage = Some(cpu_usage);
    }
    input.gpus = gpus;
    if gpus > 0 {
        if let Some((w, src)) = &f.gpu_watts {
            input.gpu_watts = Some(*w);
            input.sources.gpu_watts = Some(src.clone());
        }
        input.gpu_usage = Some(f.gpu_usage);
    }
    input.memory_gb = memory_gb;
    match estimate::estimate(&input) {
        Ok(b) => out.breakdown = Some(b),
        Err(e) => {
            out.not_counted = Some(e.to_string());
            return out;
        }
    }
    // GA4HPC's way: the Green Algorithms profile, ReqMem read as GA4HPC reads it (M / 1000, G × 1).
    let mut j = profiles::Job::new(job.elapsed_s / 3600.0, &f.location);
    j.cores = cores;
    j.core_watts = f.core_watts.as_ref().map(|x| x.0);
    j.cpu_usage = cpu_usage;
    j.gpus = gpus;
    j.gpu_watts = f.gpu_watts.as_ref().map(|x| x.0);
    j.gpu_model = f.gpu_model.clone();
    j.gpu_usage = f.gpu_usage;
    j.memory_gb = job.req_mem_ga_gb.unwrap_or(memory_bytes / GB);
    j.pue = f.user_pue;
    out.ga = profiles::evaluate(Profile::GreenAlgorithms, &j)
        .ok()
        .map(|mut g| {
            if let Some(ci) = f.user_intensity {
                g.intensity_g_per_kwh = ci;
                g.intensity_source = "given by the user (GA4HPC: the cluster's CI)".into();
                g.operational_kg = g.facility_kwh * ci / 1000.0;
                g.total_kg = g.operational_kg + g.embodied_kg.as_ref().copied().unwrap_or(0.0);
            }
            g
        });
    out
}

/// Energy and emissions a job is charged with in the totals: measured when a wattprint record
/// exists, else the estimate.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Charged {
    /// Facility energy (IT × PUE), kWh.
    pub kwh: f64,
    pub kg: f64,
}

/// Jobs of one outcome: how many, how many had nothing counted, and the energy of the others.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct OutcomeTally {
    pub jobs: u64,
    pub not_counted: u64,
    pub energy_kwh: f64,
}

/// Totals of a group of jobs (all, or one user, account or partition).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Tally {
    pub jobs: u64,
    /// Jobs with nothing counted (no elapsed time, …).
    pub jobs_not_counted: u64,
    pub jobs_measured: u64,
    pub energy_kwh: f64,
    pub emissions_kg: f64,
    /// Failed, cancelled, timed-out, out-of-memory and system-ended jobs (with those not counted).
    pub wasted_jobs: u64,
    pub wasted_kwh: f64,
    pub wasted_kg: f64,
    /// Per outcome.
    pub by_outcome: BTreeMap<String, OutcomeTally>,
    /// Wasted jobs with nothing counted (no elapsed time).
    pub wasted_not_counted: u64,
    /// Core-seconds held (NCPUS × Elapsed) and used (TotalCPU), jobs with a real TotalCPU only.
    pub cpu_held_s: f64,
    pub cpu_used_s: f64,
    /// Jobs left out of the CPU efficiency (TotalCPU 0 or absent).
    pub cpu_unknown_jobs: u64,
    /// GB-hours requested and used (largest MaxRSS), jobs with both figures only.
    pub mem_requested_gbh: f64,
    pub mem_used_gbh: f64,
    /// Facility energy the memory over-request cost, kWh (memory power × PUE).
    pub mem_overrequest_kwh: f64,
    pub mem_unknown_jobs: u64,
}

impl Tally {
    /// Wasted share of the energy; `None` when nothing was counted.
    pub fn wasted_share(&self) -> Option<f64> {
        (self.energy_kwh > 0.0).then(|| self.wasted_kwh / self.energy_kwh)
    }
    /// CPU efficiency; `None` with no job that has a TotalCPU.
    pub fn cpu_efficiency(&self) -> Option<f64> {
        (self.cpu_held_s > 0.0).then(|| (self.cpu_used_s / self.cpu_held_s).min(1.0))
    }
    /// Memory efficiency; `None` with no job that has both ReqMem and MaxRSS.
    pub fn memory_efficiency(&self) -> Option<f64> {
        (self.mem_requested_gbh > 0.0)
            .then(|| (self.mem_used_gbh / self.mem_requested_gbh).min(1.0))
    }

    fn add(&mut self, e: &JobEstimate, charged: Option<Charged>, measured: bool, pue: f64) {
        let j = &e.job;
        self.jobs += 1;
        let o = self
            .by_outcome
            .entry(j.outcome.as_str().into())
            .or_default();
        o.jobs += 1;
        if j.outcome.is_waste() {
            self.wasted_jobs += 1;
        }
        let Some(c) = charged else {
            o.not_counted += 1;
            self.jobs_not_counted += 1;
            if j.outcome.is_waste() {
                self.wasted_not_counted += 1;
            }
            return;
        };
        o.energy_kwh += c.kwh;
        if measured {
            self.jobs_measured += 1;
        }
        self.energy_kwh += c.kwh;
        self.emissions_kg += c.kg;
        if j.outcome.is_waste() {
            self.wasted_kwh += c.kwh;
            self.wasted_kg += c.kg;
        }
        if j.cpu_from_cputime || j.ncpus == 0 {
            self.cpu_unknown_jobs += 1;
        } else {
            self.cpu_held_s += j.elapsed_s * j.ncpus as f64;
            self.cpu_used_s += j.cpu_used_s;
        }
        match (j.req_mem_bytes, j.max_rss_bytes) {
            (Some(r), Some(u)) if r > 0.0 => {
                let h = j.elapsed_s / 3600.0;
                let used = u.min(r);
                self.mem_requested_gbh += r / GB * h;
                self.mem_used_gbh += used / GB * h;
                self.mem_overrequest_kwh += (r - used) / GB * h * GA_MEMORY_W_PER_GB * pue / 1000.0;
            }
            _ => self.mem_unknown_jobs += 1,
        }
    }
}

/// Most distinct users, accounts or partitions tallied apart; the rest go to `(others)`.
pub const MAX_GROUPS: usize = 10_000;

/// The waste report: totals, and per user, account and partition.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct Waste {
    pub total: Tally,
    pub by_user: BTreeMap<String, Tally>,
    pub by_account: BTreeMap<String, Tally>,
    pub by_partition: BTreeMap<String, Tally>,
    /// Jobs not finished (pending, running, requeued, suspended): not counted.
    pub unfinished_jobs: u64,
}

fn group<'a>(m: &'a mut BTreeMap<String, Tally>, k: &str) -> &'a mut Tally {
    let k = if k.is_empty() { "(none)" } else { k };
    if !m.contains_key(k) && m.len() >= MAX_GROUPS {
        return m.entry("(others)".into()).or_default();
    }
    m.entry(k.to_string()).or_default()
}

impl Waste {
    /// Count one job: `charged` is what it is charged with (`None`: not counted).
    pub fn add(&mut self, e: &JobEstimate, charged: Option<Charged>, measured: bool, pue: f64) {
        if e.job.outcome == Outcome::Unfinished {
            self.unfinished_jobs += 1;
            return;
        }
        self.total.add(e, charged, measured, pue);
        group(&mut self.by_user, &e.job.user).add(e, charged, measured, pue);
        group(&mut self.by_account, &e.job.account).add(e, charged, measured, pue);
        group(&mut self.by_partition, &e.job.partition).add(e, charged, measured, pue);
    }
}
