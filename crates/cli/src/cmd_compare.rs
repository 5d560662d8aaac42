//! `wattprint compare`: one job counted the way each well-known tool counts it (wattprint, Green
//! Algorithms, ML CO2 Impact, CodeCarbon, Cloud Carbon Footprint), with the reasons the figures
//! differ. Offline; on estimate flags or on a stored run. The counting is
//! [`wattprint_core::profiles`]; this file only turns flags or a record into a
//! [`Job`] and prints.

use crate::embodied_args::instance;
use anyhow::{anyhow, bail, Result};
use wattprint_core::factors::embodied::embodied;
use wattprint_core::profiles::{evaluate_all, render, Job, Profile, ProfileResult};
use wattprint_core::record::RunRecord;
use wattprint_core::units::parse_duration;

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  wattprint compare --gpus 8 --gpu \"A100 SXM4\" --cores 48 --memory 1152 \\\n      --duration 72h --location aws:us-east-1 --instance-type p4d.24xlarge\n  wattprint compare 3f2a --markdown"
)]
pub struct Args {
    /// A stored run (id or unique prefix): its hardware, duration and location.
    pub run: Option<String>,
    /// Duration of one run (`72h`, `90m`), without RUN.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Number of runs.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub runs: u32,
    /// Number of GPUs.
    #[arg(long, value_name = "N")]
    pub gpus: Option<u32>,
    /// GPU model (each tool looks it up in its own table).
    #[arg(long, value_name = "MODEL")]
    pub gpu: Option<String>,
    /// Power per GPU, W (every tool then uses it).
    #[arg(long, value_name = "W")]
    pub gpu_watts: Option<f64>,
    /// CPU cores (vCPUs for CCF).
    #[arg(long, value_name = "N")]
    pub cores: Option<u32>,
    /// Power per core, W (default: each tool's own).
    #[arg(long, value_name = "W")]
    pub core_watts: Option<f64>,
    /// CPU sockets, with --cpu-watts (TDP per socket).
    #[arg(long, value_name = "N")]
    pub cpus: Option<u32>,
    #[arg(long, value_name = "W")]
    pub cpu_watts: Option<f64>,
    /// Memory, GB.
    #[arg(long, value_name = "GB")]
    pub memory: Option<f64>,
    /// Usage factor of CPU and GPUs, 0–1 (default 1).
    #[arg(long, value_name = "U", default_value_t = 1.0)]
    pub utilization: f64,
    #[arg(long, value_name = "U")]
    pub cpu_usage: Option<f64>,
    #[arg(long, value_name = "U")]
    pub gpu_usage: Option<f64>,
    /// Where: `FR`, `CA-QC`, `aws:us-east-1` (default: the run's location, or world).
    #[arg(long, value_name = "LOCATION")]
    pub location: Option<String>,
    /// PUE for the tools that take one (wattprint, Green Algorithms, CodeCarbon).
    #[arg(long, value_name = "X")]
    pub pue: Option<f64>,
    /// Count embodied emissions (wattprint and CCF) for a cloud instance type.
    #[arg(long, value_name = "TYPE")]
    pub instance_type: Option<String>,
    /// JSON: every profile's figures, parts counted or not (with why), and factors.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// A Markdown table, for papers.
    #[arg(long)]
    pub markdown: bool,
}

fn bounded(name: &str, v: Option<f64>, max: f64) -> Result<()> {
    if let Some(x) = v {
        if !(x.is_finite() && x >= 0.0 && x <= max) {
            bail!("{name} {x}: must be a number between 0 and {max}");
        }
    }
    Ok(())
}

/// The job a stored run describes ([`wattprint_core::profiles::job_from_record`]).
pub fn job_from_record(r: &RunRecord) -> Job {
    wattprint_core::profiles::job_from_record(r)
}

fn job_from_args(a: &Args) -> Result<(Job, Option<RunRecord>)> {
    bounded("--gpu-watts", a.gpu_watts, 1e5)?;
    bounded("--core-watts", a.core_watts, 1e4)?;
    bounded("--cpu-watts", a.cpu_watts, 1e5)?;
    bounded("--memory", a.memory, 1e7)?;
    bounded("--utilization", Some(a.utilization), 1.0)?;
    bounded("--cpu-usage", a.cpu_usage, 1.0)?;
    bounded("--gpu-usage", a.gpu_usage, 1.0)?;
    if let Some(p) = a.pue {
        if !(p.is_finite() && (1.0..=10.0).contains(&p)) {
            bail!("--pue {p}: must be between 1 and 10");
        }
    }
    if a.runs == 0 {
        bail!("--runs 0: give at least 1");
    }
    let mut record = None;
    let mut j = match (&a.run, &a.duration) {
        (Some(id), None) => {
            let store = crate::store::Store::open_default(crate::env())?;
            let r = store.find_run(id)?;
            let j = job_from_record(&r);
            record = Some(r);
            j
        }
        (None, Some(d)) => {
            let d = parse_duration(d).map_err(|e| anyhow!("--duration: {e}"))?;
            if d.is_zero() {
                bail!("--duration is zero; give how long one run lasted, e.g. 72h");
            }
            Job::new(d.as_secs_f64() / 3600.0, "WORLD")
        }
        (Some(_), Some(_)) => bail!("give a RUN or --duration, not both"),
        (None, None) => bail!("give a stored RUN, or the job as flags (--duration and hardware)"),
    };
    j.runs = a.runs;
    if let Some(n) = a.gpus {
        j.gpus = n;
    }
    if a.gpu.is_some() || a.gpu_watts.is_some() {
        j.gpus = j.gpus.max(1);
        j.gpu_model = a.gpu.clone().or(j.gpu_model.take());
        j.gpu_watts = a.gpu_watts;
    }
    if let Some(n) = a.cores {
        j.cores = n;
    }
    j.core_watts = a.core_watts;
    if let Some(n) = a.cpus {
        j.sockets = n;
        j.socket_watts = a.cpu_watts;
    }
    if let Some(m) = a.memory {
        j.memory_gb = m;
    }
    j.cpu_usage = a.cpu_usage.unwrap_or(a.utilization);
    j.gpu_usage = a.gpu_usage.unwrap_or(a.utilization);
    if let Some(l) = &a.location {
        j.location = l.trim().to_string();
    }
    if j.location.len() > 100 {
        bail!("--location is too long");
    }
    j.pue = a.pue;
    if let Some(t) = &a.instance_type {
        let i = instance("--instance-type", t)?;
        j.embodied = Some(wattprint_core::estimate::EmbodiedSpec::instance(
            i,
            embodied().lifetime_hours,
            1.0,
        ));
    }
    Ok((j, record))
}

/// The results for a job, or a clear error.
pub fn compare(job: &Job) -> Result<Vec<ProfileResult>> {
    evaluate_all(job).map_err(|e| anyhow!("{e}"))
}

pub fn run(a: Args) -> Result<i32> {
    let (job, record) = job_from_args(&a)?;
    let results = compare(&job)?;
    // A stored run: what it measured, next to the models (never a zero for "not counted").
    let measured = record.as_ref().map(|r| {
        let embodied = wattprint_store::embodied_text::of_record(r);
        serde_json::json!({
            "run": r.id,
            "it_kwh": r.energy_kwh.it.0,
            "facility_kwh": r.energy_kwh.facility.0,
            "operational_kg": r.emissions_kg.operational,
            "embodied_kg": embodied.as_ref().ok(),
            "embodied_not_counted": embodied.as_ref().err(),
            "methods": r.methods,
        })
    });
    if a.json {
        let base = &results[0];
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["why"] = serde_json::json!(wattprint_core::profiles::why(base, r));
                v
            })
            .collect();
        let out = serde_json::json!({
            "schema": "wattprint.compare/1",
            "job": render::describe(&job),
            "measured": measured,
            "profiles": rows,
        });
        crate::stdout_ln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    if a.markdown {
        crate::stdout_ln!("**{}**\n", render::describe(&job));
        crate::stdout_print!("{}", render::markdown(&results));
        return Ok(0);
    }
    crate::stdout_ln!("{}", render::describe(&job));
    if let Some(r) = &record {
        crate::stdout_ln!(
            "measured by the run: IT {} kWh, facility {} kWh, operational {}, embodied {} (the profiles below model the same hardware as busy)",
            render::sig(r.energy_kwh.it.0),
            render::sig(r.energy_kwh.facility.0),
            render::mass(r.emissions_kg.operational),
            wattprint_store::embodied_text::fmt_embodied(&wattprint_store::embodied_text::of_record(r)),
        );
    }
    crate::stdout_ln!("");
    crate::stdout_print!("{}", render::text(&results));
    crate::stdout_ln!(
        "\nProfiles: {}. Details and sources: --json, docs/methodology.md §6.1.",
        Profile::ALL.map(|p| p.as_str()).join(", ")
    );
    Ok(0)
}
