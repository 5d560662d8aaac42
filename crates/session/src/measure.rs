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
use wattprint_core::host_ledger::{self, HostLedger, JoinOptions};
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
    /// The host ledger this measurement shares the machine through, when it joined one.
    pub ledger: Option<HostLedger>,
}

/// How a run joins the host ledger (see [`wattprint_core::host_ledger`]).
#[derive(Debug, Clone)]
pub struct Share {
    /// The runtime directory (`$WATTPRINT_RUNTIME_DIR` or its default).
    pub runtime_dir: PathBuf,
    pub run_id: String,
    pub job: Option<String>,
    /// Rank on the node per the launcher (the lowest leads the job on the node).
    pub local_rank: Option<u32>,
    /// Join as the node agent: read the counters for every run, be charged nothing.
    pub agent: bool,
    /// CPUs the scheduler allocated to the run on this node (static CPU energy is split by
    /// them when every run has them).
    pub cpus: Option<u32>,
    /// See [`JoinOptions::idle_follow`].
    pub idle_follow: Option<Duration>,
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
    start_shared(host, opts, scope, interval, None)
}

/// [`start`], sharing the machine with the other runs of the host through its ledger when
/// `share` is given (alone on the host, a run is charged exactly as without it). A ledger that
/// cannot be joined is a warning, and the run is then charged as if it were alone.
pub fn start_shared(
    host: &HostPaths,
    opts: &DiscoverOptions,
    scope: Scope,
    interval: Duration,
    share: Option<Share>,
) -> Measured {
    let mut disc = discovery::discover(host, opts);
    let info = discovery::host_info(host, &disc);
    let job_pid = Arc::new(AtomicU32::new(0));
    let device_ids = disc
        .sensors
        .iter()
        .flat_map(|s| s.devices().iter().map(|d| d.id.clone()).collect::<Vec<_>>())
        .collect();
    let mut warnings = disc.warnings.clone();
    let cpu_info = disc.cpu_info.clone();
    let config = SamplerConfig { interval };
    if let Some(share) = share {
        let dir = host_ledger::ledger_dir(&share.runtime_dir, host);
        let sensors = std::mem::take(&mut disc.sensors);
        match HostLedger::join(
            &dir,
            host,
            JoinOptions {
                run_id: share.run_id,
                job: share.job,
                local_rank: share.local_rank,
                agent: share.agent,
                cpus: share.cpus,
                scope,
                gpus: disc.visible_gpus.clone(),
                gpu_shares: disc.gpu_shares.clone(),
                idle_follow: share.idle_follow,
            },
            sensors,
        ) {
            Ok((ledger, sensor, shares)) => {
                let sampler = Sampler::start(vec![Box::new(sensor)], Box::new(shares), config);
                return Measured {
                    sampler,
                    job_pid,
                    host: info,
                    cpu_info,
                    warnings,
                    device_ids,
                    ledger: Some(ledger),
                };
            }
            Err((why, sensors)) => {
                warnings.push(format!(
                    "host ledger unavailable ({why}): this run is charged as if it were alone on the machine"
                ));
                disc.sensors = sensors;
            }
        }
    }
    let attributor = discovery::attributor(scope, host, Arc::clone(&job_pid), &disc);
    let sampler = Sampler::start(disc.sensors, attributor, config);
    Measured {
        sampler,
        job_pid,
        host: info,
        cpu_info,
        warnings,
        device_ids,
        ledger: None,
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
