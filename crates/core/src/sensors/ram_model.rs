//! RAM power modelled from memory in use: the fallback when no RAPL DRAM counter is readable.
//!
//! ```text
//! P = 0.3725 W/GB × GB in use,   GB in use = (MemTotal − MemAvailable) / 2^30
//! ```
//!
//! 0.3725 W/GB is Green Algorithms' `memoryPower` (data v3.0 `referenceValues.csv`, CC BY 4.0;
//! Lannelongue et al., Adv. Sci. 2021, doi:10.1002/advs.202100707), which cites ACM
//! doi:10.1145/3076113.3076117 and a Tom's Hardware Haswell-E review. Those figures are per
//! memory module divided by its nominal size, and module sizes are binary ("16 GB" = 16 GiB),
//! so wattprint divides bytes by 2^30. Green Algorithms applies the factor to memory
//! *allocated* to a job; wattprint applies it to the memory in use on the whole machine
//! (`MemTotal − MemAvailable` of `/proc/meminfo`), re-read at every read.
//!
//! Energy is the trapezoid integral ([`crate::counter::PowerIntegrator`]) of the power sampled
//! at each read.

use crate::counter::PowerIntegrator;
use crate::host::HostPaths;
use crate::procfs::{self, MemInfo};
use crate::sensor::{Device, DeviceKind, Method, Reading, Sensor, SensorError};
use crate::units::Watts;
use std::time::Instant;

/// Green Algorithms `memoryPower`, W per GB (GiB, see the module documentation).
pub const WATTS_PER_GB: f64 = 0.3725;
/// Bytes in the "GB" of [`WATTS_PER_GB`]: 2^30.
pub const BYTES_PER_GB: f64 = 1_073_741_824.0;

/// Modelled power of `bytes` of memory in use.
pub fn ram_power(bytes: u64) -> Watts {
    Watts(WATTS_PER_GB * bytes as f64 / BYTES_PER_GB)
}

/// The RAM model as a [`Sensor`]: one device `ram:model`.
#[derive(Debug)]
pub struct RamModelSensor {
    paths: HostPaths,
    devices: Vec<Device>,
    integrator: PowerIntegrator,
    last: MemInfo,
}

impl RamModelSensor {
    /// Check that `/proc/meminfo` is readable and has `MemTotal` and `MemAvailable`.
    pub fn open(paths: &HostPaths) -> Result<Self, SensorError> {
        let last = procfs::read_meminfo(paths)?;
        Ok(RamModelSensor {
            paths: paths.clone(),
            devices: vec![Device {
                id: "ram:model".into(),
                kind: DeviceKind::Ram,
                method: Method::Model,
                name: format!("RAM (estimated, {WATTS_PER_GB} W/GB in use)"),
                gpu_index: None,
                uuid: None,
                idle_power_w: None,
                factors: vec![crate::accounting::Assumption::new(
                    "ram power per GB in use",
                    WATTS_PER_GB,
                    "W/GiB",
                    "Green Algorithms data v3.0 referenceValues.csv memoryPower (CC BY 4.0), applied to MemTotal − MemAvailable",
                )],
            }],
            integrator: PowerIntegrator::new(),
            last,
        })
    }

    /// Memory in use at the latest read (at open before the first read), bytes.
    pub fn memory_in_use(&self) -> u64 {
        self.last.used_bytes()
    }

    /// Installed memory (`MemTotal`), bytes.
    pub fn memory_total(&self) -> u64 {
        self.last.total_bytes
    }
}

impl Sensor for RamModelSensor {
    fn name(&self) -> &'static str {
        "ram-model"
    }

    fn devices(&self) -> &[Device] {
        &self.devices
    }

    fn read(&mut self, now: Instant) -> Result<Reading, SensorError> {
        let mem = procfs::read_meminfo(&self.paths)?;
        self.last = mem;
        let p = ram_power(mem.used_bytes());
        let e = self.integrator.update(p, now);
        Ok(Reading {
            energy: vec![e],
            power: vec![Some(p)],
        })
    }
}
