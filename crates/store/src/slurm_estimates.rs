//! Past Slurm jobs' estimates as stored runs (`wattprint slurm import --store`): marked as
//! estimates everywhere a reader looks (methods `estimated:slurm-sacct`, tag `basis=estimate`),
//! never given the job key a measured record carries (the Slurm job is in the `slurm_job` tag),
//! so they are never taken for measurements, nor counted in a job's measured total.

use std::collections::BTreeMap;
use wattprint_core::accounting::Breakdown;
use wattprint_core::record::{
    CarbonContext, CarbonIntensity, HostInfo, Methods, RunRecord, RunStatus, SCHEMA,
};
use wattprint_core::sacct::Outcome;
use wattprint_core::slurm_history::JobEstimate;

/// The method every component of a stored Slurm estimate names.
pub const ESTIMATED_METHOD: &str = "estimated:slurm-sacct";

/// sacct's time with its offset (`SLURM_TIME_FORMAT=%FT%T%z`: `2026-01-05T10:00:00+0100`, or
/// RFC 3339) as RFC 3339; `None` without an offset (sacct's default prints local time with no
/// zone, which cannot be placed on the time line).
pub fn sacct_time(s: &str) -> Option<String> {
    let t = s.trim();
    if crate::store::rfc3339_unix(t).is_some() {
        return Some(t.to_string());
    }
    // `+hhmm` → `+hh:mm`
    let n = t.len();
    if n > 5 && matches!(t.as_bytes()[n - 5], b'+' | b'-') && t.is_char_boundary(n - 2) {
        let fixed = format!("{}:{}", &t[..n - 2], &t[n - 2..]);
        return crate::store::rfc3339_unix(&fixed)
            .is_some()
            .then_some(fixed);
    }
    None
}

fn ident(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v
    }
}

/// The stored run of one job's estimate; `Err` says why it cannot be stored.
pub fn estimate_record(
    e: &JobEstimate,
    b: &Breakdown,
    project: &str,
    carbon: &CarbonContext,
) -> Result<RunRecord, String> {
    let j = &e.job;
    let started_at = sacct_time(&j.start).ok_or_else(|| {
        format!(
            "job {}: Start `{}` has no time zone; run sacct with SLURM_TIME_FORMAT=%FT%T%z (--run-sacct does)",
            j.job, j.start
        )
    })?;
    let ended_at = sacct_time(&j.end);
    let status = match j.outcome {
        Outcome::Completed => RunStatus::Completed,
        Outcome::Cancelled | Outcome::Timeout | Outcome::Ended => RunStatus::Killed,
        Outcome::Unfinished => return Err(format!("job {}: not finished", j.job)),
        _ => RunStatus::Failed,
    };
    let cluster = ident(if j.cluster.is_empty() {
        "cluster"
    } else {
        &j.cluster
    });
    let mut tags = BTreeMap::new();
    tags.insert("basis".to_string(), "estimate".to_string());
    tags.insert("slurm_job".to_string(), j.job.clone());
    tags.insert("slurm_state".to_string(), j.state.clone());
    for (k, v) in [
        ("slurm_user", &j.user),
        ("slurm_account", &j.account),
        ("slurm_partition", &j.partition),
        ("slurm_cluster", &j.cluster),
    ] {
        if !v.is_empty() {
            tags.insert(k.to_string(), v.clone());
        }
    }
    let mut warnings = e.notes.clone();
    warnings.extend(b.warnings.iter().cloned());
    let rec = RunRecord {
        schema: SCHEMA.to_string(),
        id: format!("slurm-{cluster}-{}", ident(&j.job)),
        project: project.to_string(),
        tags,
        command: Vec::new(),
        started_at,
        ended_at,
        duration_s: j.elapsed_s,
        status,
        exit_code: None,
        signal: None,
        host: HostInfo {
            hostname: "unknown".into(),
            cpu_model: "unknown".into(),
            logical_cpus: j.ncpus as usize,
            ram_gb: e.memory_gb,
            gpus: Vec::new(),
        },
        scope: "job".into(),
        interval_s: 0.0,
        energy_kwh: b.energy_kwh,
        devices: Vec::new(),
        methods: Methods {
            cpu: ESTIMATED_METHOD.into(),
            gpu: ESTIMATED_METHOD.into(),
            ram: ESTIMATED_METHOD.into(),
        },
        pue: b.pue,
        carbon_intensity: CarbonIntensity {
            g_per_kwh: b.intensity_g_per_kwh,
            source: carbon.intensity_source.clone(),
            signal: Some("average".into()),
            resolution: Some("constant".into()),
            live: None,
        },
        location: carbon.location.clone(),
        emissions_kg: b.emissions_kg,
        equivalents: b.equivalents,
        assumptions: b.assumptions.clone(),
        factors_version: carbon.factors_version.clone(),
        warnings,
        samples: 0,
        skipped_ticks: 0,
        wattprint_version: env!("CARGO_PKG_VERSION").to_string(),
        embodied_not_counted: Some(
            "estimated from Slurm accounting: embodied emissions not counted".into(),
        ),
        imported: None,
        tracker: None,
        segments: None,
        job: None,
        sharing: None,
        job_nodes: None,
        job_nodelist: None,
        limits: None,
        limit_events: Vec::new(),
        stopped: None,
        prediction: None,
        lineage: None,
        discarded: None,
        io: None,
    };
    rec.validate().map_err(|e| format!("job {}: {e}", j.job))?;
    Ok(rec)
}
