//! Discovery and sampling, as every front end sets them up: the sensors this machine offers
//! (with a warning for each one missing), the host's description, and a running sampler that
//! charges the configured scope. Used by [`crate::session`] and by the node agent.

use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;
use wattprint_core::cpuinfo::CpuInfo;
use wattprint_core::discovery::{self, DiscoverOptions};
use wattprint_core::env::Env;
use wattprint_core::factors::instances::InstanceEmbodied;
use wattprint_core::host::HostPaths;
use wattprint_core::record::{self, HostInfo, RunEmbodied};
use wattprint_core::sampler::{Sampler, SamplerConfig, Scope};

/// A running measurement of this machine.
pub struct Measured {
    pub sampler: Sampler,
    /// The measured work's root process (0 until attached): process scope charges its tree.
    pub job_pid: Arc<AtomicU32>,
    pub host: HostInfo,
    pub cpu_info: Option<CpuInfo>,
    /// Sensors missing or unreadable, models used: to show once.
    pub warnings: Vec<String>,
    /// Every device measured, in reading order.
    pub device_ids: Vec<String>,
}

/// Discovery options from the front end's values and the job's environment.
pub fn discover_options(
    env: &Env,
    cpu_tdp_w: Option<f64>,
    nvml_library: Option<PathBuf>,
) -> DiscoverOptions {
    DiscoverOptions::resolve(env, cpu_tdp_w, nvml_library)
}

/// Discover the sensors and start sampling them every `interval`, charging `scope`.
pub fn start(
    host: &HostPaths,
    opts: &DiscoverOptions,
    scope: Scope,
    interval: Duration,
) -> Measured {
    let disc = discovery::discover(host, opts);
    let info = discovery::host_info(host, &disc);
    let job_pid = Arc::new(AtomicU32::new(0));
    let attributor = discovery::attributor(scope, host, Arc::clone(&job_pid), &disc);
    let device_ids = disc
        .sensors
        .iter()
        .flat_map(|s| s.devices().iter().map(|d| d.id.clone()).collect::<Vec<_>>())
        .collect();
    let warnings = disc.warnings.clone();
    let cpu_info = disc.cpu_info.clone();
    let sampler = Sampler::start(disc.sensors, attributor, SamplerConfig { interval });
    Measured {
        sampler,
        job_pid,
        host: info,
        cpu_info,
        warnings,
        device_ids,
    }
}

/// The machine's embodied emissions to count, or why they are not counted: `(embodied, warning,
/// reason)`. The warning is shown once; the reason goes into the record
/// (`embodied_not_counted`).
///
/// With a known cloud `instance` type the host platform's components and the instance's vCPU
/// share are used (Cloud Carbon Footprint's method), in place of the server seen from inside the
/// guest; an explicit `share` still wins.
pub fn embodied(
    m: &Measured,
    no_embodied: bool,
    share: Option<f64>,
    instance: Option<&InstanceEmbodied>,
) -> (Option<RunEmbodied>, Option<String>, Option<String>) {
    if no_embodied {
        return (None, None, Some("--no-embodied was given".to_string()));
    }
    if let Some(i) = instance {
        let life = wattprint_core::factors::embodied::embodied().lifetime_hours;
        return (
            Some(RunEmbodied {
                components: i.components(life),
                share: Some(share.unwrap_or_else(|| i.share())),
            }),
            None,
            None,
        );
    }
    if m.cpu_info.as_ref().is_some_and(|c| c.hypervisor) && share.is_none() {
        return (
            None,
            Some(
                "embodied emissions not counted: this is a virtual machine and its share of the host's hardware is unknown; pass --instance-type TYPE (a known cloud type) or --embodied-share F (e.g. vCPUs / host threads) to include them"
                    .to_string(),
            ),
            Some("virtual machine without --instance-type or --embodied-share".to_string()),
        );
    }
    (
        Some(RunEmbodied {
            components: record::host_embodied(
                &m.host,
                m.cpu_info.as_ref().map(|c| c.sockets as u32).unwrap_or(1),
            ),
            share,
        }),
        None,
        None,
    )
}
