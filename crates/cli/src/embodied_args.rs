//! Embodied-emissions flags of `estimate` → an [`EmbodiedSpec`]: a cloud instance type (its host
//! platform × vCPU share, Cloud Carbon Footprint's method), a per-server figure given by the user,
//! or a server counted from its parts (sockets, memory, GPUs, drives) with the shipped
//! coefficients.

use anyhow::{anyhow, bail, Result};
use wattprint_core::estimate::EmbodiedSpec;
use wattprint_core::factors::embodied::{embodied, ServerSpec};
use wattprint_core::factors::instances::{find_instance, InstanceEmbodied};
use wattprint_core::units::parse_duration;

/// The flags, already parsed.
pub struct EmbodiedArgs {
    pub instance_type: Option<String>,
    pub servers: Option<u32>,
    pub kg_per_server: Option<f64>,
    pub kg_per_gpu: Option<f64>,
    pub lifetime: Option<String>,
    pub use_rate: Option<f64>,
    pub sockets: u32,
    pub memory_gb: f64,
    pub gpus: u32,
    pub ssds: u32,
    pub hdds: u32,
}

/// `aws:m5.large` → (Some("aws"), "m5.large"); `m5.large` → (None, "m5.large").
pub fn split_provider(s: &str) -> (Option<&str>, &str) {
    match s.split_once(':') {
        Some((p, t))
            if ["aws", "azure", "gcp"].contains(&p.trim().to_ascii_lowercase().as_str()) =>
        {
            (Some(p), t)
        }
        _ => (None, s),
    }
}

/// The instance type's entry, or an error naming the flag.
pub fn instance(flag: &str, s: &str) -> Result<&'static InstanceEmbodied> {
    let (p, t) = split_provider(s);
    find_instance(p, t).ok_or_else(|| {
        anyhow!(
            "{flag} `{s}` is not in the shipped Cloud Carbon Coefficients instance table (AWS, Azure, GCP); give the server's parts (--cpus, --memory, --gpus, --ssds, --hdds) or --embodied-kg-per-server instead"
        )
    })
}

impl EmbodiedArgs {
    /// The spec and a one-line description of what is counted.
    pub fn spec(&self) -> Result<(EmbodiedSpec, String)> {
        let mut c = embodied();
        if let Some(l) = &self.lifetime {
            let d = parse_duration(l).map_err(|e| anyhow!("--lifetime: {e}"))?;
            if d.is_zero() {
                bail!("--lifetime {l}: must be above zero, e.g. 4y");
            }
            c.lifetime_hours = d.as_secs_f64() / 3600.0;
        }
        let use_rate = self.use_rate.unwrap_or(1.0);
        if !(use_rate > 0.0 && use_rate <= 1.0) {
            bail!("--use-rate {use_rate}: must be in (0, 1], e.g. 0.85");
        }
        if !self.memory_gb.is_finite() || self.memory_gb < 0.0 || self.memory_gb > 1e9 {
            bail!("--memory {}: must be between 0 and 1e9 GB", self.memory_gb);
        }
        if let Some(t) = &self.instance_type {
            if self.kg_per_server.is_some() || self.kg_per_gpu.is_some() || self.servers.is_some() {
                bail!("--instance-type counts its host platform; leave out --servers and --embodied-kg-per-server/-gpu");
            }
            let i = instance("--instance-type", t)?;
            let spec = EmbodiedSpec::instance(i, c.lifetime_hours, use_rate);
            let note = format!(
                "embodied: {} {}: host platform {} kgCO2e × {} / {} vCPU, over {} h (Cloud Carbon Footprint)",
                i.provider, i.instance_type, i.total_kg, i.instance_vcpu, i.platform_vcpu, c.lifetime_hours
            );
            return Ok((spec, note));
        }
        let servers = self.servers.unwrap_or(1);
        if let Some(kg) = self.kg_per_server {
            let src = format!(
                "per-server kg given by the user; GPU {} kgCO2e each ({}); lifetime {} h ({})",
                self.kg_per_gpu.unwrap_or(c.per_gpu_kg),
                if self.kg_per_gpu.is_some() {
                    "given by the user"
                } else {
                    "wattprint factors embodied: gpu"
                },
                c.lifetime_hours,
                if self.lifetime.is_some() {
                    "given by the user"
                } else {
                    "wattprint factors embodied: lifetime_hours"
                },
            );
            let spec = EmbodiedSpec::explicit(
                servers,
                kg,
                self.gpus,
                self.kg_per_gpu.unwrap_or(c.per_gpu_kg),
                std::time::Duration::from_secs_f64(c.lifetime_hours * 3600.0),
                use_rate,
                &src,
            );
            return Ok((
                spec,
                format!("embodied: {servers} server(s) of {kg} kgCO2e given by the user"),
            ));
        }
        if let Some(g) = self.kg_per_gpu {
            c.per_gpu_kg = g;
        }
        let server = ServerSpec {
            sockets: self.sockets,
            dram_gb: self.memory_gb,
            gpus: self.gpus,
            ssds: self.ssds,
            hdds: self.hdds,
        };
        let spec = EmbodiedSpec::server(servers, &server, &c, use_rate);
        let note = format!(
            "embodied: {servers} server(s) of {} socket(s), {} GB, {} GPU(s), {} SSD(s), {} HDD(s) = {:.2} kgCO2e each, over {} h (Cloud Carbon Footprint coefficients)",
            server.sockets.max(1),
            server.dram_gb,
            server.gpus,
            server.ssds,
            server.hdds,
            spec.total_kg() / f64::from(servers.max(1)),
            c.lifetime_hours
        );
        Ok((spec, note))
    }
}
