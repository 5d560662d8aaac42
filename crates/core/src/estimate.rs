//! After-the-fact estimate from hardware counts, power figures and a duration (pure).
//!
//! Follows Green Algorithms (Lannelongue, Grealey, Inouye, Adv. Sci. 2021,
//! doi:10.1002/advs.202100707; app v3.0 `aggregate_input_values`):
//!
//! `E_it = t × (n_cores × P_core × u + n_gpu × P_gpu × u + mem_GB × P_mem) × runs`
//!
//! to which this tool adds `n_sockets × P_socket × u` (a per-socket CPU figure, as an alternative
//! to per-core), `other_watts` (drawn for the whole time, also × runs) and `static_kwh`. PUE and
//! carbon intensity are applied by [`crate::accounting::account`], the path shared with measured
//! runs, so `C = E_it × PUE × CI` exactly as in Green Algorithms.

use crate::accounting::{
    account, AccountInput, Assumption, Breakdown, EmbodiedComponent, EmbodiedInput, Intensity,
};
use crate::factors::embodied::{EmbodiedCoefficients, ServerSpec};
use crate::factors::instances::InstanceEmbodied;
use crate::units::{GramsPerKwh, Joules, KilowattHours, Watts};
use std::time::Duration;

/// Green Algorithms memory power, W per GB of memory available
/// (`referenceValues.csv` `memoryPower`, data v3.0, CC BY 4.0).
pub const GA_MEMORY_W_PER_GB: f64 = 0.3725;
/// Source line for [`GA_MEMORY_W_PER_GB`].
pub const GA_MEMORY_SOURCE: &str = "Green Algorithms data v3.0 referenceValues.csv memoryPower (CC BY 4.0), from doi:10.1145/3076113.3076117 and Tom's Hardware";
/// Green Algorithms "Any" CPU row: 12 W per core (`TDP_cpu.csv`, data v3.0, CC BY 4.0).
pub const GA_ANY_CORE_W: f64 = 12.0;
/// Green Algorithms "Any" GPU row: 200 W per GPU (`TDP_gpu.csv`, data v3.0, CC BY 4.0).
pub const GA_ANY_GPU_W: f64 = 200.0;
/// Cloud Carbon Footprint / Teads embodied emissions per extra GPU, kgCO2e
/// (ccf-coefficients `constants.py`, Apache-2.0); BLOOM (Luccioni et al. 2023) also uses 150 kg.
pub const CCF_KG_PER_GPU: f64 = 150.0;
/// Embodied emissions of a GPU server excluding its GPUs, kgCO2e: BLOOM (Luccioni, Viguier,
/// Ligozat 2023, JMLR 24(253)) as used by Boavizta e-footprint's `GPUServer` default.
pub const BLOOM_KG_PER_SERVER: f64 = 2500.0;
/// Server lifespan used by Cloud Carbon Footprint for embodied emissions: 35 040 h (4 years).
pub const CCF_LIFETIME_HOURS: f64 = 35_040.0;

/// Embodied-emissions inputs for an estimate: the components of one server (or cloud host
/// platform), how many such servers, the job's share of each, and the use rate. Build it with
/// [`EmbodiedSpec::explicit`], [`EmbodiedSpec::server`] or [`EmbodiedSpec::instance`].
#[derive(Debug, Clone, PartialEq)]
pub struct EmbodiedSpec {
    pub servers: u32,
    /// The components of one server, each with its lifetime and source.
    pub components: Vec<EmbodiedComponent>,
    /// The job's share of each server, (0, 1]: 1 for whole servers, instance vCPU / platform
    /// vCPU for a cloud instance (Cloud Carbon Footprint).
    pub share: f64,
    /// Fraction of its life the hardware is in use, (0, 1] (CLI `--use-rate`, default 1).
    pub use_rate: f64,
}

impl EmbodiedSpec {
    /// A server of `kg_per_server` (everything but its GPUs) plus `gpus × kg_per_gpu`, all over
    /// `lifetime`.
    pub fn explicit(
        servers: u32,
        kg_per_server: f64,
        gpus: u32,
        kg_per_gpu: f64,
        lifetime: Duration,
        use_rate: f64,
        source: &str,
    ) -> EmbodiedSpec {
        let lifetime_hours = lifetime.as_secs_f64() / 3600.0;
        let mut components = vec![EmbodiedComponent {
            name: "server".into(),
            kg_co2e: kg_per_server,
            count: 1.0,
            lifetime_hours,
            source: source.to_string(),
        }];
        if gpus > 0 {
            components.push(EmbodiedComponent {
                name: "gpu".into(),
                kg_co2e: kg_per_gpu,
                count: f64::from(gpus),
                lifetime_hours,
                source: source.to_string(),
            });
        }
        EmbodiedSpec {
            servers,
            components,
            share: 1.0,
            use_rate,
        }
    }

    /// A server counted the way Cloud Carbon Footprint counts one (base, extra sockets, DRAM
    /// above 16 GB, GPUs, drives) with `coefficients` (the shipped ones, possibly with a
    /// lifetime or per-GPU figure given by the user).
    pub fn server(
        servers: u32,
        spec: &ServerSpec,
        coefficients: &EmbodiedCoefficients,
        use_rate: f64,
    ) -> EmbodiedSpec {
        EmbodiedSpec {
            servers,
            components: coefficients.components(spec),
            share: 1.0,
            use_rate,
        }
    }

    /// A cloud instance: its host platform's components and its vCPU share of the platform
    /// (Cloud Carbon Footprint's method), over `lifetime_hours`.
    pub fn instance(
        instance: &InstanceEmbodied,
        lifetime_hours: f64,
        use_rate: f64,
    ) -> EmbodiedSpec {
        EmbodiedSpec {
            servers: 1,
            components: instance.components(lifetime_hours),
            share: instance.share(),
            use_rate,
        }
    }

    /// Embodied emissions of the whole hardware (all servers, before time and share), kgCO2e.
    pub fn total_kg(&self) -> f64 {
        f64::from(self.servers)
            * self
                .components
                .iter()
                .map(|c| c.kg_co2e * c.count)
                .sum::<f64>()
    }
}

/// Sources of caller-supplied factors, copied into the assumptions. `None` means
/// "given by the user".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EstimateSources {
    pub gpu_watts: Option<String>,
    pub cpu_watts: Option<String>,
    pub core_watts: Option<String>,
    pub pue: Option<String>,
    pub intensity: Option<String>,
}

/// Inputs of [`estimate`]. Build with [`EstimateInput::new`] and set what applies.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimateInput {
    pub gpus: u32,
    /// Power per GPU, W (TDP in Green Algorithms). `None` with `gpus > 0`: GA "Any" 200 W,
    /// recorded as an assumption.
    pub gpu_watts: Option<f64>,
    /// CPU sockets.
    pub cpus: u32,
    /// Power per socket, W. Required when `cpus > 0`.
    pub cpu_watts: Option<f64>,
    /// CPU cores (Green Algorithms counts cores).
    pub cores: u32,
    /// Power per core, W. `None` with `cores > 0`: GA "Any" 12 W, recorded as an assumption.
    pub core_watts: Option<f64>,
    /// Memory available, GB.
    pub memory_gb: f64,
    /// Memory power, W/GB (default [`GA_MEMORY_W_PER_GB`]).
    pub memory_w_per_gb: f64,
    /// Any other constant draw (disks, NICs, ...), W.
    pub other_watts: f64,
    /// Green Algorithms usage factor u in [0, 1], applied to processor (CPU and GPU) power only.
    pub utilization: f64,
    /// CPU usage factor, overriding `utilization` for the CPU (Green Algorithms has one per
    /// processor kind).
    pub cpu_usage: Option<f64>,
    /// GPU usage factor, overriding `utilization` for the GPUs.
    pub gpu_usage: Option<f64>,
    /// Duration of one run.
    pub duration: Duration,
    /// Number of runs (GA "multiplicative factor"/PSF), ≥ 1.
    pub runs: u32,
    pub pue: f64,
    pub intensity: GramsPerKwh,
    /// Extra idle (static) IT energy to include, kWh, before PUE (PUE is applied to it like all
    /// IT energy); counted once, not per run.
    pub static_kwh: f64,
    pub embodied: Option<EmbodiedSpec>,
    /// Fraction of the modelled device energy that is idle draw, when known; `None`: all of it
    /// is counted as dynamic.
    pub idle_fraction: Option<f64>,
    pub sources: EstimateSources,
}

impl EstimateInput {
    /// Green Algorithms defaults: no hardware, 0.3725 W/GB, u = 1, one run, no static energy,
    /// no embodied part, no idle fraction.
    pub fn new(duration: Duration, pue: f64, intensity: GramsPerKwh) -> EstimateInput {
        EstimateInput {
            gpus: 0,
            gpu_watts: None,
            cpus: 0,
            cpu_watts: None,
            cores: 0,
            core_watts: None,
            memory_gb: 0.0,
            memory_w_per_gb: GA_MEMORY_W_PER_GB,
            other_watts: 0.0,
            utilization: 1.0,
            cpu_usage: None,
            gpu_usage: None,
            duration,
            runs: 1,
            pue,
            intensity,
            static_kwh: 0.0,
            embodied: None,
            idle_fraction: None,
            sources: EstimateSources::default(),
        }
    }
}

/// Why an estimate's inputs were rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EstimateError {
    #[error("utilization must be a fraction between 0 and 1 (got {0}); for 80 % give 0.8")]
    Utilization(f64),
    #[error("{what} must be a finite number (got {value})")]
    NotFinite { what: &'static str, value: f64 },
    #[error("{what} must not be negative (got {value})")]
    Negative { what: &'static str, value: f64 },
    #[error("duration is zero; give how long one run lasted, e.g. 72h or 90m")]
    ZeroDuration,
    #[error("runs must be at least 1 (got 0)")]
    ZeroRuns,
    #[error("PUE must be at least 1.0 (got {0}); PUE is facility energy divided by IT energy, use 1.0 for a machine outside a data centre")]
    PueBelowOne(f64),
    #[error("{what} must be a fraction between 0 and 1 (got {value})")]
    Fraction { what: &'static str, value: f64 },
    #[error("{what} was given but {count} is 0; set {count} or leave out {what}")]
    PowerWithoutCount {
        what: &'static str,
        count: &'static str,
    },
    #[error("{count} is {n} but no {what} was given; give the power per socket (e.g. its TDP in W), or give cores instead")]
    MissingPower {
        what: &'static str,
        count: &'static str,
        n: u32,
    },
    #[error("both CPU sockets and CPU cores were given; give one of them, or the CPU would be counted twice")]
    CpuTwice,
    #[error("duration × runs is too long to represent; check the duration and the number of runs")]
    TooLong,
    #[error("embodied lifetime is zero; give the hardware's service life, e.g. 4y")]
    ZeroLifetime,
    #[error("nothing to estimate: give GPUs, CPU cores or sockets, memory, other watts, static energy or embodied hardware")]
    Nothing,
}

fn check_value(what: &'static str, v: f64) -> Result<(), EstimateError> {
    if !v.is_finite() {
        return Err(EstimateError::NotFinite { what, value: v });
    }
    if v < 0.0 {
        return Err(EstimateError::Negative { what, value: v });
    }
    Ok(())
}

fn check_fraction(what: &'static str, v: f64) -> Result<(), EstimateError> {
    if !v.is_finite() {
        return Err(EstimateError::NotFinite { what, value: v });
    }
    if !(0.0..=1.0).contains(&v) {
        return Err(EstimateError::Fraction { what, value: v });
    }
    Ok(())
}

/// Check every input; the first problem found is returned.
pub fn validate(input: &EstimateInput) -> Result<(), EstimateError> {
    if input.utilization.is_nan() {
        return Err(EstimateError::NotFinite {
            what: "utilization",
            value: input.utilization,
        });
    }
    if !(0.0..=1.0).contains(&input.utilization) {
        return Err(EstimateError::Utilization(input.utilization));
    }
    for (what, v) in [
        ("CPU usage factor (cpu_usage)", input.cpu_usage),
        ("GPU usage factor (gpu_usage)", input.gpu_usage),
    ] {
        if let Some(v) = v {
            check_fraction(what, v)?;
        }
    }
    if input.duration.is_zero() {
        return Err(EstimateError::ZeroDuration);
    }
    if input.runs == 0 {
        return Err(EstimateError::ZeroRuns);
    }
    let powers = [
        (
            "GPU power (gpu_watts)",
            input.gpu_watts,
            input.gpus,
            "the GPU count (gpus)",
        ),
        (
            "CPU power per socket (cpu_watts)",
            input.cpu_watts,
            input.cpus,
            "the CPU socket count (cpus)",
        ),
        (
            "CPU power per core (core_watts)",
            input.core_watts,
            input.cores,
            "the CPU core count (cores)",
        ),
    ];
    for (what, w, n, count) in powers {
        if let Some(w) = w {
            check_value(what, w)?;
            if n == 0 {
                return Err(EstimateError::PowerWithoutCount { what, count });
            }
        }
    }
    if input.cpus > 0 && input.cpu_watts.is_none() {
        return Err(EstimateError::MissingPower {
            what: "CPU power per socket (cpu_watts)",
            count: "the CPU socket count (cpus)",
            n: input.cpus,
        });
    }
    if input.cpus > 0 && input.cores > 0 {
        return Err(EstimateError::CpuTwice);
    }
    check_value("memory (memory_gb)", input.memory_gb)?;
    check_value(
        "memory power per GB (memory_w_per_gb)",
        input.memory_w_per_gb,
    )?;
    check_value("other power (other_watts)", input.other_watts)?;
    check_value("static energy (static_kwh)", input.static_kwh)?;
    check_value("carbon intensity", input.intensity.0)?;
    if !input.pue.is_finite() {
        return Err(EstimateError::NotFinite {
            what: "PUE",
            value: input.pue,
        });
    }
    if input.pue < 1.0 {
        return Err(EstimateError::PueBelowOne(input.pue));
    }
    if let Some(f) = input.idle_fraction {
        check_fraction("idle fraction (idle_fraction)", f)?;
    }
    if let Some(e) = &input.embodied {
        for c in &e.components {
            check_value("embodied kgCO2e of a component", c.kg_co2e)?;
            check_value("embodied component count", c.count)?;
            if c.lifetime_hours.is_nan() {
                return Err(EstimateError::NotFinite {
                    what: "embodied lifetime",
                    value: c.lifetime_hours,
                });
            }
            if c.lifetime_hours <= 0.0 {
                return Err(EstimateError::ZeroLifetime);
            }
        }
        check_fraction("embodied share", e.share)?;
        if e.share == 0.0 {
            return Err(EstimateError::Fraction {
                what: "embodied share (must be above 0)",
                value: 0.0,
            });
        }
        check_fraction("use rate", e.use_rate)?;
        if e.use_rate == 0.0 {
            return Err(EstimateError::Fraction {
                what: "use rate (must be above 0)",
                value: 0.0,
            });
        }
    }
    let has_power = input.gpus > 0
        || input.cpus > 0
        || input.cores > 0
        || input.memory_gb > 0.0
        || input.other_watts > 0.0
        || input.static_kwh > 0.0;
    let has_embodied = input
        .embodied
        .as_ref()
        .is_some_and(|e| e.servers > 0 && !e.components.is_empty());
    if !has_power && !has_embodied {
        return Err(EstimateError::Nothing);
    }
    Ok(())
}

fn given(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "given by the user".to_string())
}

/// Estimate energy and emissions (Green Algorithms formula, see module docs) and account them
/// through [`crate::accounting::account`]. Every factor used is listed in
/// `Breakdown::assumptions` with its source.
///
/// Static/dynamic split: `static_kwh` counts as static (and as "other" energy); with
/// `idle_fraction = Some(f)` a fraction `f` of the modelled device energy is static as well;
/// otherwise all modelled energy is dynamic (idle draw is unknown for a TDP model).
pub fn estimate(input: &EstimateInput) -> Result<Breakdown, EstimateError> {
    validate(input)?;
    let u_cpu = input.cpu_usage.unwrap_or(input.utilization);
    let u_gpu = input.gpu_usage.unwrap_or(input.utilization);
    let runs = f64::from(input.runs);
    let held = Duration::try_from_secs_f64(input.duration.as_secs_f64() * runs)
        .map_err(|_| EstimateError::TooLong)?;
    let energy = |w: Watts| w.for_duration(input.duration) * runs;
    let mut assumptions = Vec::new();
    let mut push = |name: &str, value: f64, unit: &str, source: String| {
        assumptions.push(Assumption::new(name, value, unit, source));
    };

    push(
        "duration_per_run",
        input.duration.as_secs_f64() / 3600.0,
        "h",
        "given by the user".into(),
    );
    push(
        "runs",
        runs,
        "count",
        "given by the user (Green Algorithms multiplicative factor)".into(),
    );

    let mut gpu = Joules::ZERO;
    if input.gpus > 0 {
        let (w, src) = match input.gpu_watts {
            Some(w) => (w, given(&input.sources.gpu_watts)),
            None => (
                GA_ANY_GPU_W,
                "default: Green Algorithms data v3.0 TDP_gpu.csv 'Any' row (CC BY 4.0); give the GPU model or its power for a better figure".into(),
            ),
        };
        push(
            "gpus",
            f64::from(input.gpus),
            "count",
            "given by the user".into(),
        );
        push("gpu_power", w, "W per GPU", src);
        gpu = energy(Watts(f64::from(input.gpus) * w * u_gpu));
    }
    let mut cpu = Joules::ZERO;
    if let (true, Some(w)) = (input.cpus > 0, input.cpu_watts) {
        push(
            "cpu_sockets",
            f64::from(input.cpus),
            "count",
            "given by the user".into(),
        );
        push(
            "cpu_power",
            w,
            "W per socket",
            given(&input.sources.cpu_watts),
        );
        cpu = energy(Watts(f64::from(input.cpus) * w * u_cpu));
    }
    if input.cores > 0 {
        let (w, src) = match input.core_watts {
            Some(w) => (w, given(&input.sources.core_watts)),
            None => (
                GA_ANY_CORE_W,
                "default: Green Algorithms data v3.0 TDP_cpu.csv 'Any' row (CC BY 4.0); give the CPU model or its power per core for a better figure".into(),
            ),
        };
        push(
            "cpu_cores",
            f64::from(input.cores),
            "count",
            "given by the user".into(),
        );
        push("cpu_power_per_core", w, "W per core", src);
        cpu = energy(Watts(f64::from(input.cores) * w * u_cpu));
    }
    let usage_source = |given: Option<f64>, kind: &str| {
        match given {
        Some(_) => format!("Green Algorithms usage factor for the {kind} (given by the user)"),
        None => format!(
            "Green Algorithms usage factor for the {kind}: the common utilisation (given by the user, default 1)"
        ),
    }
    };
    if input.cpus > 0 || input.cores > 0 {
        push(
            "cpu_usage_factor",
            u_cpu,
            "fraction",
            usage_source(input.cpu_usage, "CPU"),
        );
    }
    if input.gpus > 0 {
        push(
            "gpu_usage_factor",
            u_gpu,
            "fraction",
            usage_source(input.gpu_usage, "GPUs"),
        );
    }
    let mut ram = Joules::ZERO;
    if input.memory_gb > 0.0 {
        let src = if input.memory_w_per_gb == GA_MEMORY_W_PER_GB {
            GA_MEMORY_SOURCE.to_string()
        } else {
            "given by the user".to_string()
        };
        push(
            "memory",
            input.memory_gb,
            "GB",
            "given by the user (memory available)".into(),
        );
        push("memory_power", input.memory_w_per_gb, "W/GB", src);
        ram = energy(Watts(input.memory_gb * input.memory_w_per_gb));
    }
    let mut other = Joules::ZERO;
    if input.other_watts > 0.0 {
        push(
            "other_power",
            input.other_watts,
            "W",
            "given by the user".into(),
        );
        other = energy(Watts(input.other_watts));
    }
    let modelled = cpu + gpu + ram + other;
    let mut static_ = Joules::ZERO;
    if let Some(f) = input.idle_fraction {
        push("idle_fraction", f, "fraction", "given by the user".into());
        static_ = modelled * f;
    }
    if input.static_kwh > 0.0 {
        push(
            "static_energy",
            input.static_kwh,
            "kWh",
            "given by the user (idle IT energy, before PUE)".into(),
        );
        let extra = KilowattHours(input.static_kwh).joules();
        static_ += extra;
        other += extra;
    }
    push("pue", input.pue, "ratio", given(&input.sources.pue));
    push(
        "carbon_intensity",
        input.intensity.0,
        "gCO2e/kWh",
        given(&input.sources.intensity),
    );

    let mut ai = AccountInput::new(input.pue, Intensity::Constant(input.intensity), held);
    ai.set_components(cpu, gpu, ram, other, static_);
    ai.embodied = input.embodied.as_ref().map(|e| EmbodiedInput {
        components: e
            .components
            .iter()
            .map(|c| EmbodiedComponent {
                count: c.count * f64::from(e.servers),
                ..c.clone()
            })
            .collect(),
        use_rate: e.use_rate,
        share: e.share,
    });
    ai.assumptions = assumptions;
    Ok(account(&ai))
}
