//! `wattprint doctor`: what this machine offers, what each component will use, and why.

use crate::carbon_args::CarbonArgs;
use anyhow::Result;
use serde_json::json;
use std::path::PathBuf;
use wattprint_core::discovery;
use wattprint_core::host::HostPaths;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub carbon: CarbonArgs,
    /// CPU TDP in watts per package (socket) for the CPU power model.
    #[arg(long, value_name = "W")]
    pub cpu_tdp: Option<f64>,
    /// Path of libnvidia-ml.so (default: $WATTPRINT_NVML_LIBRARY, else the system's).
    #[arg(long, value_name = "PATH")]
    pub nvml_library: Option<PathBuf>,
    /// Path of libamd_smi.so (default: $WATTPRINT_AMDSMI_LIBRARY, else the system's where the
    /// amdgpu driver is loaded).
    #[arg(long, value_name = "PATH")]
    pub amdsmi_library: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let paths = HostPaths::from_env(crate::env());
    let d = discovery::discover(
        &paths,
        &wattprint_session::measure::discover_options(
            crate::env(),
            a.cpu_tdp,
            a.nvml_library.clone(),
        )
        .with_amdsmi_library(a.amdsmi_library.clone()),
    );
    let carbon = a.carbon.resolve()?;
    let host = discovery::host_info(&paths, &d);
    let store = crate::store::home_dir(crate::env())
        .map(|h| h.join("wattprint.db").display().to_string())
        .unwrap_or_else(|e| format!("unavailable: {e}"));
    if a.json {
        let v = json!({
            "sysfs_root": paths.sys,
            "procfs_root": paths.proc,
            "host": host,
            "sources": d.sources.iter().map(|s| json!({"source": s.source, "found": s.found, "detail": s.detail})).collect::<Vec<_>>(),
            "components": d.components.iter().map(|c| json!({"component": c.component, "method": c.method, "detail": c.detail})).collect::<Vec<_>>(),
            "location": carbon.location,
            "carbon_intensity": {"g_per_kwh": carbon.intensity_g_per_kwh, "source": carbon.intensity_source},
            "pue": carbon.pue,
            "factors_version": carbon.factors_version,
            "store": store,
            "warnings": d.warnings.iter().chain(carbon.warnings.iter()).collect::<Vec<_>>(),
        });
        crate::stdout_ln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    crate::stdout_ln!("wattprint doctor — what this machine offers");
    crate::stdout_ln!(
        "  host: {} · {} · {} logical CPUs · {:.1} GB RAM · {} GPU(s)",
        host.hostname,
        host.cpu_model,
        host.logical_cpus,
        host.ram_gb,
        host.gpus.len()
    );
    crate::stdout_ln!(
        "  roots: sysfs {} · procfs {}",
        paths.sys.display(),
        paths.proc.display()
    );
    crate::stdout_ln!("sensors:");
    for s in &d.sources {
        crate::stdout_ln!(
            "  {:<10} {:<9} {}",
            s.source,
            if s.found { "found" } else { "not used" },
            s.detail
        );
    }
    crate::stdout_ln!("components:");
    for c in &d.components {
        crate::stdout_ln!(
            "  {:<4} {:<12} {}",
            c.component.as_str(),
            c.method.as_str(),
            c.detail
        );
    }
    crate::stdout_ln!("carbon:");
    if carbon.location.known {
        crate::stdout_ln!(
            "  location {} ({})",
            carbon.location.code,
            carbon.location.name
        );
    } else {
        crate::stdout_ln!(
            "  location unknown — valued at the world average (see the warning below)"
        );
    }
    crate::stdout_ln!(
        "  intensity {} gCO2e/kWh — {}",
        carbon.intensity_g_per_kwh,
        carbon.intensity_source
    );
    crate::stdout_ln!("  PUE {} — {}", carbon.pue, carbon.location.pue_source);
    crate::stdout_ln!("  factors {}", carbon.factors_version);
    crate::stdout_ln!("store: {store}");
    for w in d.warnings.iter().chain(carbon.warnings.iter()) {
        crate::stdout_ln!("warning: {w}");
    }
    Ok(0)
}
