//! `wattprint estimate`: energy and emissions of a job from hardware × time × place, the way
//! the Green Algorithms and ML CO2 Impact calculators do, with every factor's source shown.

use crate::carbon_args::CarbonArgs;
use crate::summary::{fmt_energy_kwh, fmt_mass_kg};
use anyhow::{bail, Result};
use serde_json::json;
use wattprint_core::accounting::Breakdown;
use wattprint_core::cpu_table::{self, CpuMatch};
use wattprint_core::estimate::{self, EstimateInput};
use wattprint_core::factors::gpu::{gpu_lookup, GpuMatch};
use wattprint_core::profiles::Profile;
use wattprint_core::units::{parse_duration, GramsPerKwh};

#[derive(clap::Args)]
#[command(allow_negative_numbers = true)]
pub struct Args {
    /// GPU model, e.g. `a100 sxm`, `h100 sxm`, `t4` (see `wattprint factors gpu`).
    #[arg(long, value_name = "MODEL", conflicts_with = "gpu_watts")]
    pub gpu: Option<String>,
    /// Power per GPU in watts, instead of a model.
    #[arg(long, value_name = "W")]
    pub gpu_watts: Option<f64>,
    /// Number of GPUs (default 1 when a GPU is given).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count)]
    pub gpus: Option<u32>,
    /// CPU model, e.g. `Xeon Platinum 8375C` (see `wattprint factors cpu QUERY`).
    #[arg(long, value_name = "MODEL", conflicts_with = "cpu_watts")]
    pub cpu: Option<String>,
    /// Power per CPU socket in watts, instead of a model.
    #[arg(long, value_name = "W")]
    pub cpu_watts: Option<f64>,
    /// Number of CPU sockets (default 1 when a CPU is given); also counted in embodied emissions.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count)]
    pub cpus: Option<u32>,
    /// Number of CPU cores (Green Algorithms style), with --core-watts.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count)]
    pub cores: Option<u32>,
    /// Power per core in watts (default: Green Algorithms "Any", 12 W).
    #[arg(long, value_name = "W")]
    pub core_watts: Option<f64>,
    /// Memory in GB (0.3725 W/GB, Green Algorithms); with --embodied, the server's DRAM.
    #[arg(long, value_name = "GB")]
    pub memory: Option<f64>,
    /// Any other constant draw of the whole system, W.
    #[arg(long, value_name = "W")]
    pub watts: Option<f64>,
    /// Processor utilisation 0–1 (default 1): the usage factor of both CPU and GPUs.
    #[arg(long, value_name = "U", default_value_t = 1.0)]
    pub utilization: f64,
    /// CPU usage factor 0–1 (Green Algorithms), overriding --utilization for the CPU.
    #[arg(long, value_name = "U")]
    pub cpu_usage: Option<f64>,
    /// GPU usage factor 0–1 (Green Algorithms), overriding --utilization for the GPUs.
    #[arg(long, value_name = "U")]
    pub gpu_usage: Option<f64>,
    /// Duration of one run: `72h`, `14.8d`, `90m`, or seconds.
    #[arg(long, value_name = "DURATION")]
    pub duration: String,
    /// Number of runs (e.g. a grid search).
    #[arg(long, value_name = "N", default_value_t = 1, allow_negative_numbers = true, value_parser = parse_count)]
    pub runs: u32,
    /// Idle energy of the facility to include, kWh (before PUE).
    #[arg(long, value_name = "E")]
    pub static_kwh: Option<f64>,
    #[command(flatten)]
    pub carbon: CarbonArgs,
    /// Include embodied emissions (defaults from the shipped data).
    #[arg(long)]
    pub embodied: bool,
    /// SSD drives in the server, for embodied emissions (Cloud Carbon Footprint counts drives:
    /// 100 kgCO2e each).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count)]
    pub ssds: Option<u32>,
    /// Hard-disk drives in the server, for embodied emissions (50 kgCO2e each).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count)]
    pub hdds: Option<u32>,
    /// Cloud instance type (`m5.large`, `p4d.24xlarge`, `Standard_NC24`, `a2-highgpu-8g`): its
    /// embodied emissions are the host platform's times the instance's vCPU share (Cloud Carbon
    /// Footprint). Implies --embodied. `aws:`/`azure:`/`gcp:` prefix to pick a provider.
    #[arg(long, value_name = "TYPE")]
    pub instance_type: Option<String>,
    /// Servers whose embodied emissions are allocated (default 1).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_count)]
    pub servers: Option<u32>,
    /// Embodied emissions per server (excluding GPUs), kgCO2e, instead of counting its parts.
    #[arg(long, value_name = "KG")]
    pub embodied_kg_per_server: Option<f64>,
    /// Embodied emissions per GPU, kgCO2e.
    #[arg(long, value_name = "KG")]
    pub embodied_kg_per_gpu: Option<f64>,
    /// Hardware lifetime, e.g. `6y`, `4y`, `35040h`.
    #[arg(long, value_name = "DURATION")]
    pub lifetime: Option<String>,
    /// Fraction of its lifetime the hardware is in use (0–1].
    #[arg(long, value_name = "R")]
    pub use_rate: Option<f64>,
    /// Count with another tool's datasets and conventions: wattprint (default),
    /// green-algorithms, mlco2, codecarbon, ccf (see `wattprint compare` for all of them).
    #[arg(long, value_name = "PROFILE", value_parser = parse_profile)]
    pub factors: Option<Profile>,
    /// Machine-readable output: the run record's energy_kwh/emissions_kg plus assumptions.
    #[arg(long)]
    pub json: bool,
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::parse(s).ok_or_else(|| {
        format!(
            "`{s}` is not a profile; one of {}",
            Profile::ALL.map(|p| p.as_str()).join(", ")
        )
    })
}

/// `estimate --factors PROFILE`: the job as that tool counts it.
fn print_profile(a: &Args, input: &EstimateInput, location: &str) -> Result<i32> {
    use wattprint_core::profiles::{evaluate, render, Job};
    let mut j = Job::new(input.duration.as_secs_f64() / 3600.0, location);
    j.runs = input.runs;
    j.gpus = input.gpus;
    j.gpu_model = a.gpu.clone();
    j.gpu_watts = a.gpu_watts;
    j.cores = input.cores;
    j.core_watts = input.core_watts;
    j.sockets = input.cpus;
    j.socket_watts = input.cpu_watts;
    j.memory_gb = input.memory_gb;
    j.cpu_usage = input.cpu_usage.unwrap_or(input.utilization);
    j.gpu_usage = input.gpu_usage.unwrap_or(input.utilization);
    j.pue = a.carbon.pue;
    j.embodied = input.embodied.clone();
    let Some(p) = a.factors else { return Ok(0) };
    let base = evaluate(Profile::Wattprint, &j).map_err(|e| anyhow::anyhow!("{e}"))?;
    let r = evaluate(p, &j).map_err(|e| anyhow::anyhow!("{e}"))?;
    if a.json {
        let mut v = serde_json::to_value(&r)?;
        v["schema"] = json!("wattprint.estimate-profile/1");
        v["why"] = json!(wattprint_core::profiles::why(&base, &r));
        crate::stdout_ln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    if let Err(why) = &r.applicable {
        bail!("{} cannot count this job: {why}", r.tool);
    }
    let cells = render::row(&base, &r);
    crate::stdout_ln!("Estimate as {} counts it: {}", r.tool, render::describe(&j));
    crate::stdout_ln!(
        "  energy   IT {} kWh × PUE {} = {} kWh",
        cells[1],
        cells[3],
        cells[2]
    );
    crate::stdout_ln!(
        "  emissions {} CO2e at {} g/kWh; embodied {}",
        cells[5],
        cells[4],
        cells[6]
    );
    crate::stdout_ln!("factors:");
    for x in &r.factors {
        crate::stdout_ln!(
            "  {} = {} {} — {}",
            x.name,
            render::sig(x.value),
            x.unit,
            x.source
        );
    }
    crate::stdout_ln!("why it differs from wattprint: {}", cells[7]);
    Ok(0)
}

/// A count: a whole number ≥ 0.
fn parse_count(s: &str) -> Result<u32, String> {
    s.trim()
        .parse::<u32>()
        .map_err(|_| format!("`{s}` is not a count: give a whole number ≥ 0, e.g. 8"))
}

fn list<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    items.iter().map(f).collect::<Vec<_>>().join("\n  ")
}

/// GPU power per device from a model name, with its source.
fn gpu_power(model: &str) -> Result<(String, f64, String)> {
    match gpu_lookup(model) {
        GpuMatch::Found(g) => Ok((
            g.name.clone(),
            g.tdp_w,
            // with the row's notes: a repaired upstream value says so (e.g. V100 PCIe)
            crate::carbon_args::describe_full(&g.provenance),
        )),
        GpuMatch::Ambiguous(c) => bail!(
            "--gpu `{model}` matches several models; which one?\n  {}\ngive one of these names (e.g. --gpu \"{}\"), or --gpu-watts W",
            list(&c, |g| format!("{} ({} W)", g.name, g.tdp_w)),
            c.first().map(|g| g.name.as_str()).unwrap_or("")
        ),
        GpuMatch::Unknown => bail!(
            "--gpu `{model}` is not in the GPU table; see `wattprint factors gpu` for the known models, or give --gpu-watts W"
        ),
    }
}

/// CPU power per socket from a model name, with its source.
fn cpu_power(model: &str) -> Result<(String, f64, String)> {
    match cpu_table::lookup(model) {
        CpuMatch::Found {
            model: m,
            tdp_w,
            source,
            ..
        } => Ok((m, tdp_w, source.to_string())),
        CpuMatch::Ambiguous { candidates } => bail!(
            "--cpu `{model}` matches several models with different TDPs; which one?\n  {}\ngive the full name, or --cpu-watts W",
            list(&candidates, |(m, w)| format!("{m} ({w} W)"))
        ),
        CpuMatch::Unknown => {
            let near = cpu_table::search(model);
            if near.is_empty() {
                bail!("--cpu `{model}` is not in the CPU table (a model number such as `8375C` is needed); give --cpu-watts W, or search with `wattprint factors cpu QUERY`")
            }
            bail!(
                "--cpu `{model}` does not name one model; candidates:\n  {}\ngive the full name, or --cpu-watts W",
                list(&near.iter().take(12).collect::<Vec<_>>(), |(m, w, _)| format!("{m} ({w} W)"))
            )
        }
    }
}

fn positive(name: &str, v: Option<f64>) -> Result<()> {
    if let Some(x) = v {
        if !x.is_finite() || x < 0.0 {
            bail!("{name} {x}: must be a non-negative number");
        }
    }
    Ok(())
}

pub fn run(a: Args) -> Result<i32> {
    let duration = parse_duration(&a.duration).map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
    for (n, v) in [
        ("--gpu-watts", a.gpu_watts),
        ("--cpu-watts", a.cpu_watts),
        ("--core-watts", a.core_watts),
        ("--memory", a.memory),
        ("--watts", a.watts),
        ("--static-kwh", a.static_kwh),
        ("--embodied-kg-per-server", a.embodied_kg_per_server),
        ("--embodied-kg-per-gpu", a.embodied_kg_per_gpu),
    ] {
        positive(n, v)?;
    }
    if !(0.0..=1.0).contains(&a.utilization) {
        bail!(
            "--utilization {}: must be between 0 and 1 (for 80 % give 0.8)",
            a.utilization
        );
    }
    let carbon = a.carbon.resolve()?;
    let Built {
        input,
        hardware,
        warnings_pre,
        embodied_note,
    } = build_input(&a, &carbon, duration)?;
    let b: Breakdown = estimate::estimate(&input).map_err(|e| anyhow::anyhow!("{e}"))?;
    if a.factors.is_some_and(|p| p != Profile::Wattprint) {
        return print_profile(&a, &input, &carbon.location.code);
    }
    let mut warnings = carbon.warnings.clone();
    warnings.extend(warnings_pre);
    warnings.extend(b.warnings.iter().cloned());
    let embodied_counted = input.embodied.is_some();
    if a.json {
        let mut emissions = serde_json::to_value(b.emissions_kg)?;
        if !embodied_counted {
            emissions["embodied"] = serde_json::Value::Null;
        }
        let v = json!({
            "schema": "wattprint.estimate/1",
            "energy_kwh": b.energy_kwh,
            "emissions_kg": emissions,
            "embodied": {
                "counted": embodied_counted,
                "note": embodied_note,
            },
            "equivalents": b.equivalents,
            "assumptions": b.assumptions,
            "pue": b.pue,
            "carbon_intensity": {"g_per_kwh": carbon.intensity_g_per_kwh, "source": carbon.intensity_source},
            "location": carbon.location,
            "duration_s": duration.as_secs_f64(),
            "runs": a.runs,
            "factors_version": carbon.factors_version,
            "warnings": warnings,
        });
        crate::stdout_ln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    print_text(
        &a,
        &b,
        &carbon,
        &hardware,
        (embodied_counted, &embodied_note),
        &warnings,
    )?;
    Ok(0)
}

/// What the flags describe: the estimate's input and how to say it.
struct Built {
    input: EstimateInput,
    /// The hardware, in words.
    hardware: Vec<String>,
    warnings_pre: Vec<String>,
    /// What was counted as embodied, or why it was not.
    embodied_note: Option<String>,
}

/// The estimate's input from the flags: hardware, usage, embodied server parts.
fn build_input(
    a: &Args,
    carbon: &wattprint_core::record::CarbonContext,
    duration: std::time::Duration,
) -> Result<Built> {
    let mut warnings_pre: Vec<String> = Vec::new();
    let mut input = EstimateInput::new(
        duration,
        carbon.pue,
        GramsPerKwh(carbon.intensity_g_per_kwh),
    );
    input.sources.pue = Some(carbon.pue_detail.clone());
    input.sources.intensity = Some(carbon.intensity_detail.clone());
    let mut hardware = Vec::new();

    if let Some(m) = &a.gpu {
        let (name, w, src) = gpu_power(m)?;
        input.gpu_watts = Some(w);
        input.sources.gpu_watts = Some(format!("{name}: {src}"));
        hardware.push(format!("{} × {name} ({w} W)", a.gpus.unwrap_or(1)));
        input.gpus = a.gpus.unwrap_or(1);
    } else if let Some(w) = a.gpu_watts {
        input.gpu_watts = Some(w);
        input.gpus = a.gpus.unwrap_or(1);
        hardware.push(format!("{} × GPU at {w} W", input.gpus));
    } else if let Some(n) = a.gpus {
        input.gpus = n;
        hardware.push(format!("{n} × GPU (power not given)"));
    }
    if let Some(m) = &a.cpu {
        let (name, w, src) = cpu_power(m)?;
        input.cpu_watts = Some(w);
        input.sources.cpu_watts = Some(format!("{name}: {src}"));
        input.cpus = a.cpus.unwrap_or(1);
        hardware.push(format!("{} × {name} ({w} W)", input.cpus));
    } else if let Some(w) = a.cpu_watts {
        input.cpu_watts = Some(w);
        input.cpus = a.cpus.unwrap_or(1);
        hardware.push(format!("{} × CPU at {w} W", input.cpus));
    } else if let Some(n) = a.cpus {
        input.cpus = n;
    }
    if let Some(n) = a.cores {
        input.cores = n;
        input.core_watts = a.core_watts;
        hardware.push(format!(
            "{n} cores{}",
            a.core_watts
                .map(|w| format!(" at {w} W"))
                .unwrap_or_default()
        ));
    } else if a.core_watts.is_some() {
        bail!("--core-watts needs --cores N");
    }
    if let Some(gb) = a.memory {
        input.memory_gb = gb;
        hardware.push(format!("{gb} GB memory"));
    }
    if let Some(w) = a.watts {
        input.other_watts = w;
        hardware.push(format!("{w} W other"));
    }
    input.utilization = a.utilization;
    input.cpu_usage = a.cpu_usage;
    input.gpu_usage = a.gpu_usage;
    input.runs = a.runs;
    input.static_kwh = a.static_kwh.unwrap_or(0.0);

    let wants_embodied = a.embodied
        || a.servers.is_some()
        || a.embodied_kg_per_server.is_some()
        || a.embodied_kg_per_gpu.is_some()
        || a.lifetime.is_some()
        || a.use_rate.is_some()
        || a.ssds.is_some()
        || a.hdds.is_some()
        || a.instance_type.is_some();
    let embodied_note: Option<String>;
    if wants_embodied {
        let spec = crate::embodied_args::EmbodiedArgs {
            instance_type: a.instance_type.clone(),
            servers: a.servers,
            kg_per_server: a.embodied_kg_per_server,
            kg_per_gpu: a.embodied_kg_per_gpu,
            lifetime: a.lifetime.clone(),
            use_rate: a.use_rate,
            sockets: a.cpus.unwrap_or(1),
            memory_gb: a.memory.unwrap_or(0.0),
            gpus: a
                .gpus
                .unwrap_or(if a.gpu.is_some() || a.gpu_watts.is_some() {
                    1
                } else {
                    0
                }),
            ssds: a.ssds.unwrap_or(0),
            hdds: a.hdds.unwrap_or(0),
        }
        .spec()?;
        embodied_note = Some(spec.1);
        input.embodied = Some(spec.0);
    } else {
        embodied_note = Some(
            "embodied: not counted (estimates count them with --embodied or --instance-type)"
                .to_string(),
        );
    }
    if input.embodied.is_some() && input.cpus > 0 && input.cpu_watts.is_none() {
        // Sockets given only for the server's embodied emissions: no CPU power to count.
        warnings_pre.push(format!(
            "CPU energy not counted: {} socket(s) given without --cpu or --cpu-watts (used for embodied emissions only)",
            input.cpus
        ));
        input.cpus = 0;
    }

    Ok(Built {
        input,
        hardware,
        warnings_pre,
        embodied_note,
    })
}

/// The estimate for people.
fn print_text(
    a: &Args,
    b: &Breakdown,
    carbon: &wattprint_core::record::CarbonContext,
    hardware: &[String],
    embodied: (bool, &Option<String>),
    warnings: &[String],
) -> Result<()> {
    let (embodied_counted, embodied_note) = embodied;
    crate::stdout_ln!(
        "Estimate: {} for {} × {} run(s)",
        if hardware.is_empty() {
            "no hardware".to_string()
        } else {
            hardware.join(" + ")
        },
        a.duration,
        a.runs
    );
    let e = &b.energy_kwh;
    crate::stdout_ln!(
        "  energy   IT {} (gpu {}, cpu {}, ram {}, other {}) + infrastructure {} = {}",
        fmt_energy_kwh(e.it.0),
        fmt_energy_kwh(e.gpu.0),
        fmt_energy_kwh(e.cpu.0),
        fmt_energy_kwh(e.ram.0),
        fmt_energy_kwh(e.other.0),
        fmt_energy_kwh(e.infrastructure.0),
        fmt_energy_kwh(e.facility.0)
    );
    let m = &b.emissions_kg;
    let embodied_text = if embodied_counted {
        format!("+ embodied {}", fmt_mass_kg(m.embodied))
    } else {
        "; embodied: not counted (estimates count them with --embodied or --instance-type)"
            .to_string()
    };
    crate::stdout_ln!(
        "  emissions {} CO2e = operational {} (dynamic {}, static {}, infrastructure {}) {embodied_text}",
        fmt_mass_kg(m.total),
        fmt_mass_kg(m.operational),
        fmt_mass_kg(m.dynamic),
        fmt_mass_kg(m.static_),
        fmt_mass_kg(m.infrastructure),
    );
    if let (true, Some(n)) = (embodied_counted, &embodied_note) {
        crate::stdout_ln!("  {n}");
    }
    let q = &b.equivalents;
    crate::stdout_ln!(
        "  ≈ {} km by car · {} tree-months · {} Paris–London flights · {} phone charges",
        wattprint_core::format::sig(q.car_km),
        wattprint_core::format::sig(q.tree_months),
        wattprint_core::format::sig(q.flights_paris_london),
        wattprint_core::format::sig(q.phone_charges)
    );
    crate::stdout_ln!(
        "  at {} ({}): {}, PUE {}",
        carbon.location.code,
        carbon.location.name,
        wattprint_core::format::intensity(carbon.intensity_g_per_kwh),
        wattprint_core::format::sig(carbon.pue)
    );
    crate::stdout_ln!("assumptions:");
    for x in &b.assumptions {
        crate::stdout_ln!(
            "  {} = {} {} — {}",
            x.name,
            wattprint_core::format::sig(x.value),
            x.unit,
            x.source
        );
    }
    for w in warnings {
        crate::stdout_ln!("warning: {w}");
    }
    Ok(())
}
