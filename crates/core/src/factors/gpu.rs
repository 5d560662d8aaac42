//! Accelerator power table: TDP, idle (minimum) and maximum watts, measured average where
//! published, memory.
//!
//! TDPs come from mlco2/impact `gpus.csv` and Green Algorithms `TDP_gpu.csv` (repairs: the
//! 8-field A10G row; the swapped V100 PCIe/SXM2 TDPs), gaps filled from NVIDIA datasheets
//! (A100 SXM4 40GB 400 W, H100 PCIe 350 W; H100 SXM 700 W is in mlco2). Idle/max watts are Cloud
//! Carbon Footprint's per-GPU min/max constants (Teads-derived), attached to every variant of
//! the GPU family CCF names.
//!
//! [`gpu_lookup`] matches case-insensitively on words: `"a100"` is ambiguous (SXM4, PCIe 40GB,
//! PCIe 80GB), `"a100 sxm"` and NVML names such as `"NVIDIA A100-SXM4-80GB"` are found.

use super::table;
use super::Provenance;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

const CSV: &str = include_str!("../../data/factors/gpus.csv");

/// Kind of accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceleratorKind {
    Gpu,
    Tpu,
    /// The generic "unknown GPU" row.
    Fallback,
}

/// Power data for one accelerator model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuSpec {
    pub name: String,
    /// Other spellings, including NVML names (`A100-SXM4-80GB`, `H100 80GB HBM3`).
    pub aliases: Vec<String>,
    pub kind: AcceleratorKind,
    /// Thermal design power (board power), W.
    pub tdp_w: f64,
    /// Idle / minimum power, W (CCF min watts), where known.
    pub idle_w: Option<f64>,
    /// Maximum power, W (CCF max watts), where known.
    pub max_w: Option<f64>,
    /// Measured average power, W, where published (TPU rows of mlco2; not a TDP).
    pub avg_w: Option<f64>,
    /// Memory sizes (GB) covered by this row; empty where unknown.
    pub memory_gb: Vec<u32>,
    /// Provenance of `tdp_w`.
    pub provenance: Provenance,
    /// Provenance of `idle_w` / `max_w`.
    pub idle_provenance: Option<Provenance>,
    /// Provenance of `avg_w`.
    pub avg_provenance: Option<Provenance>,
}

/// Result of [`gpu_lookup`]. (`Found` holds the spec by value, as the API was specified; the
/// enum is short-lived, so its size does not matter.)
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum GpuMatch {
    Found(GpuSpec),
    /// Several models match; ask for a more specific name.
    Ambiguous(Vec<GpuSpec>),
    Unknown,
}

#[derive(Deserialize)]
struct Raw {
    name: String,
    aliases: String,
    kind: AcceleratorKind,
    tdp_w: f64,
    idle_w: Option<f64>,
    max_w: Option<f64>,
    avg_w: Option<f64>,
    memory_gb: String,
    source: String,
    dataset: String,
    year: Option<u16>,
    licence: String,
    power_kind: String,
    idle_source: String,
    idle_dataset: String,
    avg_source: String,
    avg_dataset: String,
    note: String,
}

fn split_list(s: &str) -> Vec<&str> {
    s.split('|')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect()
}

fn load() -> Result<Vec<GpuSpec>, String> {
    const T: &str = "gpus.csv";
    let raw: Vec<Raw> = table::parse(T, CSV)?;
    raw.into_iter()
        .map(|r| {
            let memory_gb = split_list(&r.memory_gb)
                .into_iter()
                .map(|m| {
                    m.parse::<u32>()
                        .map_err(|e| format!("{T}: {}: memory '{m}': {e}", r.name))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let idle_provenance = if r.idle_source.is_empty() {
                None
            } else {
                Some(table::provenance(
                    T,
                    &r.idle_source,
                    &r.idle_dataset,
                    None,
                    "Apache-2.0",
                    "min-watts",
                    "device",
                    "",
                )?)
            };
            let avg_provenance = if r.avg_source.is_empty() {
                None
            } else {
                Some(table::provenance(
                    T,
                    &r.avg_source,
                    &r.avg_dataset,
                    None,
                    "MIT",
                    "measured-average",
                    "device",
                    "",
                )?)
            };
            let opt = |v: Option<f64>| v.map(|x| table::check_value(T, &r.name, x)).transpose();
            Ok(GpuSpec {
                aliases: split_list(&r.aliases)
                    .into_iter()
                    .map(String::from)
                    .collect(),
                kind: r.kind,
                tdp_w: table::check_value(T, &r.name, r.tdp_w)?,
                idle_w: opt(r.idle_w)?,
                max_w: opt(r.max_w)?,
                avg_w: opt(r.avg_w)?,
                memory_gb,
                provenance: table::provenance(
                    T,
                    &r.source,
                    &r.dataset,
                    r.year,
                    &r.licence,
                    &r.power_kind,
                    "device",
                    &r.note,
                )?,
                idle_provenance,
                avg_provenance,
                name: r.name,
            })
        })
        .collect()
}

fn all() -> &'static [GpuSpec] {
    static T: OnceLock<Vec<GpuSpec>> = OnceLock::new();
    T.get_or_init(|| load().expect("embedded gpus.csv is valid (checked by tests)"))
}

/// All accelerator models (without the fallback row).
pub fn gpu_table() -> Vec<&'static GpuSpec> {
    all()
        .iter()
        .filter(|g| g.kind != AcceleratorKind::Fallback)
        .collect()
}

/// Green Algorithms' generic row for an unlisted GPU (200 W). Use it only with a warning that
/// the model is unknown.
pub fn gpu_fallback() -> GpuSpec {
    all()
        .iter()
        .find(|g| g.kind == AcceleratorKind::Fallback)
        .cloned()
        .expect("embedded gpus.csv has a fallback row (checked by tests)")
}

/// Words that carry no model information.
const NOISE: &[&str] = &["nvidia", "tesla", "geforce", "amd", "google", "gpu", "chip"];

/// Lower-cased alphanumeric words; a number followed by `gb` becomes one word (`40 gb` → `40gb`);
/// noise words (vendor and family names) are dropped.
fn tokens(s: &str) -> Vec<String> {
    let raw: Vec<String> = s
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    let mut out: Vec<String> = Vec::new();
    for t in raw {
        if t == "gb" {
            if let Some(last) = out.last_mut() {
                if last.chars().all(|c| c.is_ascii_digit()) {
                    last.push_str("gb");
                    continue;
                }
            }
        }
        if !NOISE.contains(&t.as_str()) {
            out.push(t);
        }
    }
    out
}

/// Memory-size and memory-type words, ignored in the last matching tier.
fn is_memory_word(t: &str) -> bool {
    (t.ends_with("gb") && t[..t.len() - 2].chars().all(|c| c.is_ascii_digit()))
        || t.starts_with("hbm")
        || t.starts_with("gddr")
}

/// How well a query matches one spelling: `Some((tier, exact_set))`, lower tier is better.
fn match_tier(q: &[String], name: &[String]) -> Option<(u8, bool)> {
    if q.is_empty() {
        return None;
    }
    if q.iter().all(|t| name.contains(t)) {
        let exact = name.iter().all(|t| q.contains(t));
        return Some((0, exact));
    }
    if q.iter()
        .all(|t| name.iter().any(|n| n.starts_with(t.as_str())))
    {
        return Some((1, false));
    }
    let reduced: Vec<&String> = q.iter().filter(|t| !is_memory_word(t)).collect();
    if !reduced.is_empty() && reduced.len() < q.len() && reduced.iter().all(|t| name.contains(t)) {
        return Some((2, false));
    }
    None
}

/// Finds an accelerator by name, case-insensitively.
///
/// Matching is on words (vendor words like "NVIDIA"/"Tesla" are ignored), against the model
/// name and its aliases, in tiers: (0) every query word is a word of the name; (1) every query
/// word is a prefix of a word of the name (`sxm` → `sxm4`); (2) as (0) after dropping memory words
/// (`32gb`, `hbm3`). The best tier wins; within tier 0 a name made of exactly the query's words
/// wins over longer names (`rtx 3080` → RTX 3080, not RTX 3080 Ti). One candidate → `Found`,
/// several → `Ambiguous`, none → `Unknown`.
pub fn gpu_lookup(q: &str) -> GpuMatch {
    let qt = tokens(q);
    let mut best: Option<u8> = None;
    let mut cands: Vec<(&'static GpuSpec, bool)> = Vec::new();
    for g in gpu_table() {
        let m = std::iter::once(g.name.as_str())
            .chain(g.aliases.iter().map(String::as_str))
            .filter_map(|s| match_tier(&qt, &tokens(s)))
            .min_by_key(|(tier, exact)| (*tier, !*exact));
        let Some((tier, exact)) = m else { continue };
        match best {
            Some(b) if tier > b => continue,
            Some(b) if tier < b => cands.clear(),
            _ => {}
        }
        best = Some(tier);
        cands.push((g, exact));
    }
    let exact: Vec<_> = cands.iter().filter(|(_, e)| *e).collect();
    if exact.len() == 1 {
        return GpuMatch::Found(exact[0].0.clone());
    }
    match cands.len() {
        0 => GpuMatch::Unknown,
        1 => GpuMatch::Found(cands[0].0.clone()),
        _ => GpuMatch::Ambiguous(cands.into_iter().map(|(g, _)| g.clone()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_joins_memory_and_drops_vendor() {
        assert_eq!(tokens("NVIDIA A100 40 GB"), vec!["a100", "40gb"]);
        assert_eq!(tokens("Tesla V100-SXM2-16GB"), vec!["v100", "sxm2", "16gb"]);
        assert!(is_memory_word("80gb") && is_memory_word("hbm3") && !is_memory_word("sxm4"));
    }
}
