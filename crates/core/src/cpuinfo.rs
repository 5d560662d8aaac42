//! What CPU this is, from `<proc>/cpuinfo`: model names, sockets, logical CPUs and whether we
//! run under a hypervisor.
//!
//! x86 gives a `model name` per logical CPU, a `physical id` per socket and a `flags` line
//! (with `hypervisor` inside a VM). arm64 gives no model name: it gives `CPU implementer` and
//! `CPU part` codes, which are mapped to a name for the common server and board cores, else
//! reported as the raw codes. POWER gives `cpu`.

use crate::host::HostPaths;
use crate::sensor::SensorError;
use std::path::Path;

/// CPU facts from `/proc/cpuinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuInfo {
    /// Distinct model names in order of first appearance (one on nearly every machine).
    /// `"unknown"` when the file names no model.
    pub models: Vec<String>,
    /// Distinct `physical id` values (packages); at least 1.
    pub sockets: usize,
    /// Number of `processor` entries.
    pub logical_cpus: usize,
    /// The `hypervisor` CPU flag is set: we run in a virtual machine.
    pub hypervisor: bool,
}

impl CpuInfo {
    /// The first model name (what the TDP table is searched for).
    pub fn primary_model(&self) -> &str {
        self.models.first().map(String::as_str).unwrap_or("unknown")
    }
}

/// Name of an arm64 core from its `CPU implementer` / `CPU part` codes (from the Linux kernel's
/// `arch/arm64/include/asm/cputype.h`).
fn arm_core_name(implementer: u32, part: u32) -> Option<&'static str> {
    Some(match (implementer, part) {
        (0x41, 0xd03) => "ARM Cortex-A53",
        (0x41, 0xd04) => "ARM Cortex-A35",
        (0x41, 0xd05) => "ARM Cortex-A55",
        (0x41, 0xd07) => "ARM Cortex-A57",
        (0x41, 0xd08) => "ARM Cortex-A72",
        (0x41, 0xd09) => "ARM Cortex-A73",
        (0x41, 0xd0a) => "ARM Cortex-A75",
        (0x41, 0xd0b) => "ARM Cortex-A76",
        (0x41, 0xd0c) => "ARM Neoverse-N1",
        (0x41, 0xd0d) => "ARM Cortex-A77",
        (0x41, 0xd40) => "ARM Neoverse-V1",
        (0x41, 0xd41) => "ARM Cortex-A78",
        (0x41, 0xd49) => "ARM Neoverse-N2",
        (0x41, 0xd4f) => "ARM Neoverse-V2",
        (0x41, 0xd8e) => "ARM Neoverse-N3",
        (0x41, 0xd84) => "ARM Neoverse-V3",
        (0x4e, 0x004) => "NVIDIA Carmel",
        (0xc0, 0xac3) => "Ampere-1",
        (0xc0, 0xac4) => "Ampere-1a",
        _ => return None,
    })
}

fn parse_code(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parse a `/proc/cpuinfo` text. `path` only names the file in errors.
pub fn parse_cpuinfo(text: &str, path: &Path) -> Result<CpuInfo, SensorError> {
    let mut models: Vec<String> = Vec::new();
    let mut arm_models: Vec<String> = Vec::new();
    let mut ppc_cpu: Option<String> = None;
    let mut physical_ids: Vec<String> = Vec::new();
    let mut logical = 0usize;
    let mut hypervisor = false;

    fn push(list: &mut Vec<String>, m: String) {
        if !m.is_empty() && !list.contains(&m) {
            list.push(m);
        }
    }

    // Blocks are separated by blank lines: one per logical CPU (plus, on arm64, a trailer).
    for block in text.split("\n\n") {
        let (mut implementer, mut part) = (None, None);
        for line in block.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            match k {
                // x86, arm64, POWER: a decimal index per logical CPU.
                "processor" if v.parse::<u64>().is_ok() => logical += 1,
                "model name" => push(
                    &mut models,
                    v.split_whitespace().collect::<Vec<_>>().join(" "),
                ),
                "cpu" if ppc_cpu.is_none() && !v.is_empty() => ppc_cpu = Some(v.to_string()),
                "physical id" => push(&mut physical_ids, v.to_string()),
                "flags" | "Features" => {
                    hypervisor |= v.split_whitespace().any(|f| f == "hypervisor");
                }
                "CPU implementer" => implementer = Some(v.to_string()),
                "CPU part" => part = Some(v.to_string()),
                _ => {}
            }
        }
        if let (Some(i), Some(p)) = (implementer, part) {
            let name = match (parse_code(&i), parse_code(&p)) {
                (Some(ic), Some(pc)) => arm_core_name(ic, pc).map(str::to_string),
                _ => None,
            };
            push(
                &mut arm_models,
                name.unwrap_or_else(|| format!("CPU implementer {i} part {p}")),
            );
        }
    }
    if models.is_empty() {
        models = arm_models;
    }
    if models.is_empty() {
        if let Some(c) = ppc_cpu {
            models.push(c);
        }
    }
    if logical == 0 {
        return Err(SensorError::Invalid {
            path: path.to_path_buf(),
            value: text
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect(),
            reason: "no `processor : N` entries; this does not look like /proc/cpuinfo".into(),
        });
    }
    if models.is_empty() {
        models.push("unknown".into());
    }
    Ok(CpuInfo {
        models,
        sockets: physical_ids.len().max(1),
        logical_cpus: logical,
        hypervisor,
    })
}

/// Read and parse `<proc>/cpuinfo`.
pub fn read_cpuinfo(paths: &HostPaths) -> Result<CpuInfo, SensorError> {
    let path = paths.proc_file("cpuinfo");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        SensorError::io(
            &path,
            e,
            "wattprint reads /proc/cpuinfo to find the CPU model; make sure procfs is mounted \
             and readable (or set WATTPRINT_PROCFS_ROOT)",
        )
    })?;
    parse_cpuinfo(&text, &path)
}
