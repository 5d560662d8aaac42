//! `wattprint slurm import [FILE|-]`: past Slurm jobs from `sacct -P` output as estimates.
//! The reading is `wattprint_core::sacct`, the accounting `wattprint_core::slurm_history`
//! (the same `estimate` as `wattprint estimate`); this file is flags, the measured-record
//! lookup and the output. Rows are written as jobs are read (bounded memory).

use crate::carbon_args::CarbonArgs;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::BufRead;
use std::process::{Command, Stdio};
use wattprint_core::cpu_table::{self, CpuMatch};
use wattprint_core::factors::gpu::{gpu_lookup, GpuMatch};
use wattprint_core::format::{energy_kwh, mass_kg, percent, sig};
use wattprint_core::sacct::{Item, Malformed, Outcome, Reader, SACCT_FORMAT};
use wattprint_core::slurm_history::{
    estimate_job, Charged, HistoryFactors, JobEstimate, Tally, Waste,
};
use wattprint_store::store::Store;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Csv,
}

#[derive(clap::Args)]
pub struct Args {
    /// `sacct -P` output to read (`-` or nothing: standard input). Needs a header line with
    /// at least JobID, Elapsed, NCPUS and State.
    #[arg(value_name = "FILE")]
    pub file: Option<String>,
    /// Run `sacct -P --format …` here instead of reading a file.
    #[arg(long, conflicts_with = "file")]
    pub run_sacct: bool,
    /// With --run-sacct: `sacct --starttime` (e.g. 2026-01-01; sacct's default is today 00:00).
    #[arg(long, value_name = "TIME", requires = "run_sacct")]
    pub starttime: Option<String>,
    /// With --run-sacct: `sacct --endtime`.
    #[arg(long, value_name = "TIME", requires = "run_sacct")]
    pub endtime: Option<String>,
    /// With --run-sacct: every user's jobs (`sacct --allusers`; Slurm may need an operator).
    #[arg(long, requires = "run_sacct")]
    pub allusers: bool,
    /// With --run-sacct: the sacct program (default `sacct` on PATH).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "sacct",
        requires = "run_sacct"
    )]
    pub sacct: String,
    /// CPU model: power per core is its TDP / its cores (see `wattprint factors cpu QUERY`).
    #[arg(long, value_name = "MODEL", conflicts_with = "core_watts")]
    pub cpu: Option<String>,
    /// Power per core, W (default: Green Algorithms "Any", 12 W).
    #[arg(long, value_name = "W")]
    pub core_watts: Option<f64>,
    /// GPU model (see `wattprint factors gpu`).
    #[arg(long, value_name = "MODEL", conflicts_with = "gpu_watts")]
    pub gpu: Option<String>,
    /// Power per GPU, W (default: Green Algorithms "Any", 200 W).
    #[arg(long, value_name = "W")]
    pub gpu_watts: Option<f64>,
    /// Assumed GPU usage factor 0–1 (sacct has no GPU utilisation; GA4HPC assumes 1).
    #[arg(long, value_name = "U", default_value_t = 1.0)]
    pub gpu_usage: f64,
    #[command(flatten)]
    pub carbon: CarbonArgs,
    /// Only jobs of this user.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Only jobs of this account.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Only jobs in this partition.
    #[arg(long, value_name = "NAME")]
    pub partition: Option<String>,
    /// Only jobs that ended this way: completed, failed, cancelled, timeout, out_of_memory,
    /// ended_by_system, unfinished.
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,
    /// Output: a text table with the waste section, JSON (jobs, totals, waste), or CSV (jobs).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Do not look for measured wattprint records of the jobs in the local store.
    #[arg(long)]
    pub no_measured: bool,
    /// Keep the estimates (finished jobs not measured) in the local store as runs marked
    /// estimated (methods `estimated:slurm-sacct`, tags basis=estimate, slurm_job, slurm_user,
    /// slurm_account, slurm_partition, slurm_state); a job already stored is left as it is.
    /// Needs Start times with a zone (--run-sacct asks sacct for them).
    #[arg(long)]
    pub store: bool,
    /// With --store: the project the estimates go to.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "slurm-history",
        requires = "store"
    )]
    pub project: String,
}

/// Measured records of the store's Slurm jobs, by job key: facility kWh, kg, runs.
type MeasuredKeys = std::collections::BTreeMap<String, (f64, f64, u64)>;

/// The measured records of a job (by its keys): facility kWh, kg and the keys found.
fn measured(known: &MeasuredKeys, keys: &[String]) -> Option<(Charged, Vec<String>)> {
    let mut c = Charged::default();
    let mut found = Vec::new();
    for k in keys {
        if let Some((kwh, kg, _)) = known.get(k) {
            c.kwh += kwh;
            c.kg += kg;
            found.push(k.clone());
        }
    }
    (!found.is_empty()).then_some((c, found))
}

fn factors(
    a: &Args,
) -> Result<(
    HistoryFactors,
    Vec<String>,
    wattprint_core::record::CarbonContext,
)> {
    for (n, v) in [("--core-watts", a.core_watts), ("--gpu-watts", a.gpu_watts)] {
        if let Some(x) = v {
            if !x.is_finite() || x <= 0.0 || x > 10_000.0 {
                bail!("{n} {x}: must be a power above 0 and at most 10000 W");
            }
        }
    }
    if !(0.0..=1.0).contains(&a.gpu_usage) {
        bail!(
            "--gpu-usage {}: must be between 0 and 1 (for 80 % give 0.8)",
            a.gpu_usage
        );
    }
    let carbon = a.carbon.resolve()?;
    let core_watts = match (&a.cpu, a.core_watts) {
        (_, Some(w)) => Some((w, "given by the user (--core-watts)".to_string())),
        (Some(m), None) => match cpu_table::lookup(m) {
            CpuMatch::Found {
                model,
                tdp_w,
                cores: Some(c),
                source,
            } if c > 0 => Some((
                tdp_w / f64::from(c),
                format!("{model}: TDP {tdp_w} W / {c} cores ({source})"),
            )),
            CpuMatch::Found { model, .. } => bail!(
                "--cpu `{m}`: the table has no core count for {model}; give --core-watts W (its TDP divided by its cores)"
            ),
            _ => bail!(
                "--cpu `{m}` does not name one model in the CPU table; search with `wattprint factors cpu QUERY`, or give --core-watts W"
            ),
        },
        (None, None) => None,
    };
    let gpu_watts = match (&a.gpu, a.gpu_watts) {
        (_, Some(w)) => Some((w, "given by the user (--gpu-watts)".to_string())),
        (Some(m), None) => match gpu_lookup(m) {
            GpuMatch::Found(g) => Some((
                g.tdp_w,
                format!("{}: {}", g.name, crate::carbon_args::describe_full(&g.provenance)),
            )),
            _ => bail!(
                "--gpu `{m}` does not name one model in the GPU table; see `wattprint factors gpu`, or give --gpu-watts W"
            ),
        },
        (None, None) => None,
    };
    Ok((
        HistoryFactors {
            core_watts,
            gpu_watts,
            gpu_model: a.gpu.clone(),
            gpu_usage: a.gpu_usage,
            pue: carbon.pue,
            pue_source: carbon.pue_detail.clone(),
            intensity: carbon.intensity_g_per_kwh,
            intensity_source: carbon.intensity_detail.clone(),
            location: carbon.location.code.clone(),
            user_pue: a.carbon.pue,
            user_intensity: a.carbon.intensity,
        },
        carbon.warnings.clone(),
        carbon,
    ))
}

fn wanted(a: &Args, e: &JobEstimate) -> bool {
    let j = &e.job;
    a.user.as_ref().is_none_or(|u| *u == j.user)
        && a.account.as_ref().is_none_or(|x| *x == j.account)
        && a.partition.as_ref().is_none_or(|x| *x == j.partition)
        && a.state
            .as_ref()
            .is_none_or(|x| x.eq_ignore_ascii_case(j.outcome.as_str()))
}

/// What a job row says.
struct Row {
    e: JobEstimate,
    charged: Option<Charged>,
    measured_keys: Option<Vec<String>>,
}

fn opt_kwh(x: Option<f64>) -> String {
    x.map_or("not counted".into(), energy_kwh)
}

fn opt_kg(x: Option<f64>) -> String {
    x.map_or("not counted".into(), mass_kg)
}

fn slurm_kwh(e: &JobEstimate) -> Option<f64> {
    // 0 J is what Slurm prints with no energy plugin: not a measurement.
    e.job
        .consumed_energy_j
        .filter(|j| *j > 0.0)
        .map(|j| j / 3.6e6)
}

fn hms(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 86_400 {
        format!(
            "{}-{:02}:{:02}:{:02}",
            s / 86_400,
            s % 86_400 / 3600,
            s % 3600 / 60,
            s % 60
        )
    } else {
        format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
    }
}

fn cpu_eff(e: &JobEstimate) -> Option<f64> {
    let j = &e.job;
    let held = j.elapsed_s * j.ncpus as f64;
    (!j.cpu_from_cputime && held > 0.0).then(|| (j.cpu_used_s / held).min(1.0))
}

fn row_json(r: &Row) -> serde_json::Value {
    let e = &r.e;
    let j = &e.job;
    let est = e.breakdown.as_ref();
    json!({
        "job": j.job,
        "job_id_raw": j.raw_id,
        "line": j.line,
        "user": j.user, "account": j.account, "partition": j.partition,
        "cluster": j.cluster, "work_dir": j.work_dir, "start": j.start, "end": j.end,
        "state": j.state, "outcome": j.outcome.as_str(), "wasted": j.outcome.is_waste(),
        "elapsed_s": j.elapsed_s, "ncpus": j.ncpus, "nodes": j.nodes, "gpus": j.gpus,
        "cpu_used_s": j.cpu_used_s, "cpu_from_cputime": j.cpu_from_cputime,
        "cpu_efficiency": cpu_eff(e),
        "req_mem_gb": j.req_mem_bytes.map(|b| b / 1e9),
        "max_rss_gb": j.max_rss_bytes.map(|b| b / 1e9),
        "memory_counted_gb": e.memory_gb, "memory_rule": e.memory_rule,
        "basis": if r.measured_keys.is_some() { "measured" } else if r.charged.is_some() { "estimate" } else { "not counted" },
        "energy_kwh": r.charged.map(|c| c.kwh),
        "emissions_kg": r.charged.map(|c| c.kg),
        "measured_job_keys": r.measured_keys,
        "estimate": est.map(|b| json!({
            "label": "estimate (sacct × Green Algorithms formula), not a measurement",
            "energy_kwh": b.energy_kwh, "emissions_kg": b.emissions_kg.operational,
            "assumptions": b.assumptions,
        })),
        "not_counted": e.not_counted,
        "ga4hpc": e.ga.as_ref().map(|g| json!({
            "label": "as Green Algorithms for HPC counts it (green-algorithms profile)",
            "energy_kwh": g.facility_kwh, "emissions_kg": g.operational_kg,
            "pue": g.pue, "intensity_g_per_kwh": g.intensity_g_per_kwh,
        })),
        "slurm_consumed_energy_kwh": slurm_kwh(e),
        "slurm_consumed_energy_label": "Slurm's own node-level figure (ConsumedEnergyRaw), not wattprint's",
        "notes": e.notes,
    })
}

const CSV_HEADER: &str = "job,job_id_raw,user,account,partition,state,outcome,elapsed_s,ncpus,nodes,gpus,cpu_efficiency,cpu_from_cputime,req_mem_gb,max_rss_gb,basis,energy_kwh,emissions_kg,estimate_kwh,ga4hpc_kwh,ga4hpc_kg,slurm_consumed_energy_kwh";

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(x: Option<f64>) -> String {
    x.map(sig).unwrap_or_default()
}

fn row_csv(r: &Row) -> String {
    let e = &r.e;
    let j = &e.job;
    let basis = if r.measured_keys.is_some() {
        "measured"
    } else if r.charged.is_some() {
        "estimate"
    } else {
        "not counted"
    };
    [
        csv_cell(&j.job),
        csv_cell(j.raw_id.as_deref().unwrap_or("")),
        csv_cell(&j.user),
        csv_cell(&j.account),
        csv_cell(&j.partition),
        csv_cell(&j.state),
        j.outcome.as_str().into(),
        sig(j.elapsed_s),
        j.ncpus.to_string(),
        j.nodes.to_string(),
        j.gpus.to_string(),
        num(cpu_eff(e)),
        j.cpu_from_cputime.to_string(),
        num(j.req_mem_bytes.map(|b| b / 1e9)),
        num(j.max_rss_bytes.map(|b| b / 1e9)),
        basis.into(),
        num(r.charged.map(|c| c.kwh)),
        num(r.charged.map(|c| c.kg)),
        num(e.breakdown.as_ref().map(|b| b.energy_kwh.facility.0)),
        num(e.ga.as_ref().map(|g| g.facility_kwh)),
        num(e.ga.as_ref().map(|g| g.operational_kg)),
        num(slurm_kwh(e)),
    ]
    .join(",")
}

const TEXT_HEADER: [&str; 14] = [
    "JOB",
    "USER",
    "ACCOUNT",
    "PARTITION",
    "STATE",
    "ELAPSED",
    "CPUS",
    "CPU EFF",
    "GPUS",
    "ENERGY",
    "CO2e",
    "GA4HPC ENERGY",
    "GA4HPC CO2e",
    "SLURM ENERGY",
];

fn row_text(r: &Row) -> String {
    let e = &r.e;
    let j = &e.job;
    let mut energy = opt_kwh(r.charged.map(|c| c.kwh));
    if r.measured_keys.is_some() {
        energy.push_str(" (measured)");
    }
    let cells = [
        j.job.clone(),
        j.user.clone(),
        j.account.clone(),
        j.partition.clone(),
        j.state.split_whitespace().next().unwrap_or("").to_string(),
        hms(j.elapsed_s),
        j.ncpus.to_string(),
        cpu_eff(e).map_or("n/a".into(), percent),
        j.gpus.to_string(),
        energy,
        opt_kg(r.charged.map(|c| c.kg)),
        opt_kwh(e.ga.as_ref().map(|g| g.facility_kwh)),
        opt_kg(e.ga.as_ref().map(|g| g.operational_kg)),
        slurm_kwh(e).map_or("not recorded".into(), energy_kwh),
    ];
    cells.join("  ")
}

fn tally_line(name: &str, t: &Tally) -> String {
    if t.jobs == t.jobs_not_counted {
        return format!("  {name}: {} jobs, not counted (no elapsed time)", t.jobs);
    }
    let not_counted = |n: u64| {
        if n > 0 {
            format!(" ({n} not counted: no elapsed time)")
        } else {
            String::new()
        }
    };
    let wasted = if t.wasted_jobs > 0 && t.wasted_jobs == t.wasted_not_counted {
        "not counted".to_string()
    } else {
        format!(
            "{} ({})",
            energy_kwh(t.wasted_kwh),
            t.wasted_share()
                .map_or("no energy counted".into(), |s| format!(
                    "{} of the energy",
                    percent(s)
                ))
        )
    };
    format!(
        "  {name}: {} jobs{}, {} ({} CO2e); wasted {} jobs{}, {wasted}; CPU efficiency {}; memory used/requested {}, over-request {}",
        t.jobs,
        not_counted(t.jobs_not_counted),
        energy_kwh(t.energy_kwh),
        mass_kg(t.emissions_kg),
        t.wasted_jobs,
        not_counted(t.wasted_not_counted),
        t.cpu_efficiency().map_or("unknown (no TotalCPU)".into(), percent),
        t.memory_efficiency().map_or("unknown (no ReqMem and MaxRSS)".into(), percent),
        if t.mem_requested_gbh > 0.0 { energy_kwh(t.mem_overrequest_kwh) } else { "not counted".into() },
    )
}

fn print_waste(w: &Waste) -> Result<()> {
    let t = &w.total;
    crate::stdout_ln!("waste (failed, cancelled, timed-out, out-of-memory and system-ended jobs; over-requested memory and cores):");
    crate::stdout_ln!("{}", tally_line("all", t));
    for (o, x) in &t.by_outcome {
        let e = if x.jobs == x.not_counted {
            "not counted (no elapsed time)".to_string()
        } else if x.not_counted > 0 {
            format!(
                "{} ({} not counted: no elapsed time)",
                energy_kwh(x.energy_kwh),
                x.not_counted
            )
        } else {
            energy_kwh(x.energy_kwh)
        };
        crate::stdout_ln!("    {o}: {} jobs, {e}", x.jobs);
    }
    if t.cpu_unknown_jobs > 0 {
        crate::stdout_ln!(
            "    CPU efficiency leaves out {} job(s) with TotalCPU 0 or absent",
            t.cpu_unknown_jobs
        );
    }
    if t.mem_unknown_jobs > 0 {
        crate::stdout_ln!(
            "    memory efficiency leaves out {} job(s) without both ReqMem and MaxRSS",
            t.mem_unknown_jobs
        );
    }
    for (title, m) in [
        ("per user", &w.by_user),
        ("per account", &w.by_account),
        ("per partition", &w.by_partition),
    ] {
        crate::stdout_ln!("{title}:");
        for (k, t) in m {
            crate::stdout_ln!("{}", tally_line(k, t));
        }
    }
    if w.unfinished_jobs > 0 {
        crate::stdout_ln!(
            "not counted: {} unfinished job(s) (pending, running, requeued, suspended)",
            w.unfinished_jobs
        );
    }
    Ok(())
}

/// The outcomes `--state` takes.
const STATES: [&str; 7] = [
    "completed",
    "failed",
    "cancelled",
    "timeout",
    "out_of_memory",
    "ended_by_system",
    "unfinished",
];

pub fn run(a: Args) -> Result<i32> {
    if let Some(s) = &a.state {
        if !STATES.iter().any(|x| x.eq_ignore_ascii_case(s)) {
            bail!("--state `{s}`: one of {}", STATES.join(", "));
        }
    }
    let (f, warnings, carbon) = factors(&a)?;
    let mut keep = if a.store {
        Some(crate::slurm_store::Keeper::open(&a.project)?)
    } else {
        None
    };
    let store = if a.no_measured {
        None
    } else {
        let env = crate::env();
        let path = wattprint_store::store::home_dir(env)?.join("wattprint.db");
        if path.exists() {
            Some(Store::open_default_for_reading(env)?.job_totals_with_prefix("slurm:")?)
        } else {
            None
        }
    };
    let mut child = None;
    let input: Box<dyn BufRead> = if a.run_sacct {
        let mut c = Command::new(&a.sacct);
        c.args(["-P", "--format", SACCT_FORMAT]);
        // Start/End with their zone, so that stored estimates are placed in time.
        c.env("SLURM_TIME_FORMAT", "%FT%T%z");
        if let Some(s) = &a.starttime {
            c.args(["--starttime", s]);
        }
        if let Some(s) = &a.endtime {
            c.args(["--endtime", s]);
        }
        if a.allusers {
            c.arg("--allusers");
        }
        let mut ch = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot run `{}` (is Slurm's sacct installed and on PATH?)",
                    a.sacct
                )
            })?;
        let out = ch.stdout.take().context("sacct's output")?;
        // Drained beside the output (a full stderr pipe would stop sacct): its first 64 KiB kept.
        let err_reader = ch.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                use std::io::Read;
                let mut kept = Vec::new();
                let _ = e.by_ref().take(64 * 1024).read_to_end(&mut kept);
                let _ = std::io::copy(&mut e, &mut std::io::sink());
                String::from_utf8_lossy(&kept).into_owned()
            })
        });
        child = Some((ch, err_reader));
        Box::new(std::io::BufReader::new(out))
    } else {
        match a.file.as_deref() {
            None | Some("-") => Box::new(std::io::BufReader::new(std::io::stdin())),
            Some(p) => Box::new(std::io::BufReader::new(
                std::fs::File::open(p).with_context(|| format!("cannot open {p}"))?,
            )),
        }
    };

    let mut waste = Waste::default();
    let mut malformed: Vec<Malformed> = Vec::new();
    let mut malformed_count = 0u64;
    let mut measured_jobs = Vec::new();
    let mut fallbacks = 0u64;
    let mut first = true;
    // GA4HPC's way over the finished jobs it counts: kWh, kg, jobs.
    let mut ga_total = (0.0f64, 0.0f64, 0u64);
    match a.format {
        Format::Text => crate::stdout_ln!("{}", TEXT_HEADER.join("  ")),
        Format::Csv => crate::stdout_ln!("{CSV_HEADER}"),
        Format::Json => {
            crate::stdout_print!("{{\"schema\":\"wattprint.slurm-import/1\",\"jobs\":[")
        }
    }
    let mut reader = Reader::new(input);
    for item in reader.by_ref() {
        let job = match item.context("reading sacct output")? {
            Item::Malformed(m) => {
                malformed_count += 1;
                if malformed.len() < 50 {
                    malformed.push(m);
                }
                continue;
            }
            Item::Job(j) => j,
        };
        let e = estimate_job(&job, &f);
        if !wanted(&a, &e) {
            continue;
        }
        if job.cpu_from_cputime && job.ncpus > 0 && job.outcome != Outcome::Unfinished {
            fallbacks += 1;
        }
        let found = match (&store, job.keys()) {
            (Some(s), Some(keys)) => measured(s, &keys),
            _ => None,
        };
        let (charged, measured_keys) = match found {
            Some((c, keys)) => {
                if measured_jobs.len() < 1000 {
                    measured_jobs.push((
                        job.job.clone(),
                        keys.clone(),
                        e.breakdown.as_ref().map(|b| b.energy_kwh.facility.0),
                    ));
                }
                (Some(c), Some(keys))
            }
            None => (
                e.breakdown.as_ref().map(|b| Charged {
                    kwh: b.energy_kwh.facility.0,
                    kg: b.emissions_kg.operational,
                }),
                None,
            ),
        };
        waste.add(&e, charged, measured_keys.is_some(), f.pue);
        if let (Some(k), None, Some(b)) = (keep.as_mut(), &measured_keys, &e.breakdown) {
            if e.job.outcome != Outcome::Unfinished {
                k.add(&e, b, &carbon)?;
            }
        }
        if let (Some(g), false) = (&e.ga, job.outcome == Outcome::Unfinished) {
            ga_total.0 += g.facility_kwh;
            ga_total.1 += g.operational_kg;
            ga_total.2 += 1;
        }
        let r = Row {
            e,
            charged,
            measured_keys,
        };
        match a.format {
            Format::Text => crate::stdout_ln!("{}", row_text(&r)),
            Format::Csv => crate::stdout_ln!("{}", row_csv(&r)),
            Format::Json => {
                crate::stdout_print!(
                    "{}{}",
                    if first { "" } else { "," },
                    serde_json::to_string(&row_json(&r))?
                );
            }
        }
        first = false;
    }
    if let Some((mut ch, err_reader)) = child {
        let st = ch.wait()?;
        let err = err_reader.and_then(|t| t.join().ok()).unwrap_or_default();
        if !st.success() {
            bail!("`{} -P --format …` failed ({st}): {}", a.sacct, err.trim());
        }
    }
    if let Some(k) = keep.take() {
        eprintln!("wattprint: {}", k.finish()?);
    }
    if reader.header().is_none() {
        let why = malformed
            .first()
            .map(|m| format!("line {}: {}", m.line, m.reason))
            .unwrap_or_default();
        bail!("no sacct -P output read ({why})");
    }
    let mut notes = vec![
        "energies are estimates (sacct × the Green Algorithms formula, see docs/slurm.md), not measurements, unless marked measured".to_string(),
        format!(
            "memory counted: requested (ReqMem), MaxRSS only when ReqMem is absent; GPUs: AllocTRES gres/gpu at an assumed usage factor of {}",
            sig(f.gpu_usage)
        ),
        "SLURM ENERGY is Slurm's own node-level figure (ConsumedEnergyRaw), shown beside the estimate, never added to it".to_string(),
    ];
    if fallbacks > 0 {
        notes.push(format!("{fallbacks} job(s) had TotalCPU 0 or absent: their CPU time is CPUTime (all allocated cores busy), as GA4HPC does"));
    }
    for (job, keys, est) in &measured_jobs {
        notes.push(format!(
            "job {job}: measured wattprint record(s) {} win over the estimate ({})",
            keys.join(", "),
            opt_kwh(*est)
        ));
    }
    notes.extend(warnings.iter().map(|w| format!("warning: {w}")));
    let bad: Vec<String> = malformed
        .iter()
        .map(|m| format!("line {}: {}", m.line, m.reason))
        .collect();
    match a.format {
        Format::Json => {
            crate::stdout_ln!(
                "],\"ga4hpc_total\":{{\"jobs\":{},\"energy_kwh\":{},\"emissions_kg\":{}}},\"waste\":{},\"malformed_lines\":{},\"malformed\":{},\"notes\":{},\"pue\":{},\"carbon_intensity_g_per_kwh\":{},\"location\":{}}}",
                ga_total.2,
                ga_total.0,
                ga_total.1,
                serde_json::to_string(&waste)?,
                malformed_count,
                serde_json::to_string(&bad)?,
                serde_json::to_string(&notes)?,
                f.pue,
                f.intensity,
                serde_json::to_string(&f.location)?
            );
        }
        Format::Csv => {}
        Format::Text => {
            crate::stdout_ln!(
                "at {}: {}, PUE {}",
                f.location,
                wattprint_core::format::intensity(f.intensity),
                sig(f.pue)
            );
            crate::stdout_ln!(
                "GA4HPC's way (green-algorithms profile): {} jobs, {} ({} CO2e); ours: {} ({} CO2e)",
                ga_total.2,
                energy_kwh(ga_total.0),
                mass_kg(ga_total.1),
                energy_kwh(waste.total.energy_kwh),
                mass_kg(waste.total.emissions_kg)
            );
            print_waste(&waste)?;
            for n in &notes {
                crate::stdout_ln!("note: {n}");
            }
        }
    }
    for b in &bad {
        eprintln!("wattprint: sacct {b} (skipped)");
    }
    if malformed_count > bad.len() as u64 {
        eprintln!(
            "wattprint: … and {} more malformed line(s)",
            malformed_count - bad.len() as u64
        );
    }
    Ok(0)
}
