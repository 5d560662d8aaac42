//! The tools' own small tables, transcribed from the shared reference data (values unchanged).
//!
//! * Green Algorithms data v3.0 (`TDP_gpu.csv`, `defaults_PUE.csv`,
//!   `cloudProviders_datacenters.csv`, `referenceValues.csv`, `TDP_cpu.csv` "Any" row), commit
//!   30df2fe. "Green Algorithms data v3.0, Green Algorithms project (L. Lannelongue et al.),
//!   https://github.com/GreenAlgorithms/green-algorithms-tool, licensed under CC BY 4.0
//!   (https://creativecommons.org/licenses/by/4.0/)." Changes: only the columns used are kept.
//! * ML CO2 Impact `data/gpus.csv` (gpu and tpu rows; `tdp_watts`), mlco2/impact @ d0d3ee5.
//!   "Contains data from Machine Learning's CO2 Impact (https://github.com/mlco2/impact) by
//!   A. Lacoste, A. Luccioni, V. Schmidt. MIT License." The V100 rows are kept as the file has
//!   them (PCIe 300 W, SXM2-16GB 250 W), which wattprint's own table repairs.
//! * CodeCarbon 3.3.2 constants (`DEFAULT_POWER_PER_CORE` = 4 W per thread), MIT.
//! * Cloud Carbon Footprint constants (`*FootprintEstimationConstants.ts` @ b7a049c, Apache-2.0):
//!   average min/max W per vCPU per provider, memory 0.000392 kWh/GB-h.

/// GA "Any" CPU: 12 W per core (`TDP_cpu.csv`).
pub const GA_ANY_CORE_W: f64 = 12.0;
/// GA "Any" GPU: 200 W (`TDP_gpu.csv`).
pub const GA_ANY_GPU_W: f64 = 200.0;
/// GA `memoryPower`, W per GB of memory requested.
pub const GA_MEMORY_W_PER_GB: f64 = 0.3725;
pub const GA_SOURCE_CPU_ANY: &str =
    "Green Algorithms data v3.0 TDP_cpu.csv 'Any' row (12 W per core)";
pub const GA_SOURCE_GPU_ANY: &str = "Green Algorithms data v3.0 TDP_gpu.csv 'Any' row (200 W)";
pub const GA_SOURCE_MEMORY: &str = "Green Algorithms data v3.0 referenceValues.csv memoryPower";
/// CodeCarbon unknown CPU: 4 W per logical CPU.
pub const CC_DEFAULT_W_PER_THREAD: f64 = 4.0;
/// CCF memory: 0.000392 kWh per GB-hour.
pub const CCF_MEMORY_W_PER_GB: f64 = 0.392;

/// Green Algorithms `TDP_gpu.csv`: model, TDP W.
pub const GA_GPU: &[(&str, f64)] = &[
    ("AMD RX480", 150.0),
    ("NVIDIA A100 40GB PCIe", 250.0),
    ("NVIDIA A100 80GB PCIe", 300.0),
    ("NVIDIA GTX 1080", 180.0),
    ("NVIDIA GTX 1080 Ti", 250.0),
    ("NVIDIA GTX TITAN X", 250.0),
    ("NVIDIA Jetson AGX Xavier", 30.0),
    ("NVIDIA RTX 2080", 215.0),
    ("NVIDIA RTX 2080 Ti", 250.0),
    ("NVIDIA Tesla K80", 300.0),
    ("NVIDIA Tesla P100", 250.0),
    ("NVIDIA Tesla P100 PCIe", 250.0),
    ("NVIDIA Tesla P4", 75.0),
    ("NVIDIA Tesla T4", 70.0),
    ("NVIDIA Tesla V100", 300.0),
    ("NVIDIA Tesla V100S", 250.0),
    ("NVIDIA Titan V", 250.0),
    ("NVIDIA TITAN X Pascal", 250.0),
    ("TPU v2", 280.0),
    ("TPU v3", 220.0),
    ("TPU v4", 170.0),
];

/// ML CO2 Impact `gpus.csv` gpu/tpu rows: name, `tdp_watts` W.
pub const MLCO2_GPU: &[(&str, f64)] = &[
    ("H100 SXM", 700.0),
    ("H100 NVL", 400.0),
    ("A100 PCIe 40/80GB", 250.0),
    ("A100 SXM4 80 GB", 400.0),
    ("A10G", 150.0),
    ("AGX Xavier", 30.0),
    ("AMD RX480", 150.0),
    ("GIGABYTE GTX 1660 OC", 120.0),
    ("GTX 1080 Ti", 250.0),
    ("GTX 1080", 180.0),
    ("GTX 750", 250.0),
    ("GTX TITAN X", 250.0),
    ("Quadro K6000", 225.0),
    ("Quadro P6000", 250.0),
    ("RTX 2080 Ti", 250.0),
    ("RTX 2080", 215.0),
    ("RTX 8000", 260.0),
    ("T4", 70.0),
    ("Tesla K40c", 245.0),
    ("Tesla K80", 300.0),
    ("Tesla M40 24GB", 250.0),
    ("Tesla P100", 250.0),
    ("Tesla P40", 250.0),
    ("Tesla V100-PCIE-16GB", 300.0),
    ("Tesla V100-SXM2-16GB", 250.0),
    ("Tesla V100-SXM2-32GB", 300.0),
    ("Titan RTX", 280.0),
    ("Titan V", 250.0),
    ("TITAN X Pascal", 250.0),
    ("Titan Xp", 250.0),
    ("TPUv2 Chip", 221.0),
    ("TPUv3 Chip", 283.0),
    ("RTX 3080", 320.0),
    ("RTX 3080 TI", 350.0),
    ("RTX 3090", 350.0),
    ("RTX 4090", 450.0),
    ("RTX A5000", 230.0),
    ("RTX A6000", 300.0),
    ("L4", 72.0),
    ("L40S", 350.0),
];

/// Green Algorithms `cloudProviders_datacenters.csv`: provider, region, CI location, PUE (NaN
/// where the file gives none).
pub const GA_DATACENTRES: &[(&str, &str, &str, f64)] = &[
    ("gcp", "us-west1", "US-OR", 1.11),
    ("gcp", "us-west2", "US-CA", f64::NAN),
    ("gcp", "us-west3", "US-UT", f64::NAN),
    ("gcp", "us-west4", "US-NV", f64::NAN),
    ("gcp", "us-central1", "US-IA", 1.11),
    ("gcp", "us-east1", "US-SC", 1.11),
    ("gcp", "us-east4", "US-VA", f64::NAN),
    ("gcp", "northamerica-northeast1", "CA-QC", f64::NAN),
    ("gcp", "southamerica-east1", "BR", f64::NAN),
    ("gcp", "europe-west1", "BE", 1.08),
    ("gcp", "europe-west2", "GB", f64::NAN),
    ("gcp", "europe-west3", "DE", f64::NAN),
    ("gcp", "europe-west4", "NL", f64::NAN),
    ("gcp", "europe-west6", "CH", f64::NAN),
    ("gcp", "europe-north1", "FI", 1.09),
    ("gcp", "asia-south1", "IN", f64::NAN),
    ("gcp", "asia-southeast1", "SG", 1.15),
    ("gcp", "asia-southeast2", "ID", f64::NAN),
    ("gcp", "asia-east2", "CN-HK", f64::NAN),
    ("gcp", "asia-east1", "TW", 1.13),
    ("gcp", "asia-northeast1", "JP", f64::NAN),
    ("gcp", "asia-northeast2", "JP", f64::NAN),
    ("gcp", "asia-northeast3", "KR", f64::NAN),
    ("gcp", "australia-southeast1", "AU-NSW", f64::NAN),
    ("azure", "South Africa North", "ZA", f64::NAN),
    ("azure", "South Africa West", "ZA", f64::NAN),
    ("azure", "East Asia", "CN-HK", f64::NAN),
    ("azure", "Southeast Asia", "SG", f64::NAN),
    ("azure", "Australia Central", "AU-ACT", f64::NAN),
    ("azure", "Australia Central 2", "AU-ACT", f64::NAN),
    ("azure", "Australia East", "AU-NSW", f64::NAN),
    ("azure", "Australia Southeast", "AU-VIC", f64::NAN),
    ("azure", "Brazil South", "BR", f64::NAN),
    ("azure", "Canada Central", "CA-ON", f64::NAN),
    ("azure", "Canada East", "CA-QC", f64::NAN),
    ("azure", "China East", "CN", f64::NAN),
    ("azure", "China East 2", "CN", f64::NAN),
    ("azure", "China North", "CN", f64::NAN),
    ("azure", "China North 2", "CN", f64::NAN),
    ("azure", "North Europe", "IE", f64::NAN),
    ("azure", "West Europe", "NL", f64::NAN),
    ("azure", "France Central", "FR", f64::NAN),
    ("azure", "France South", "FR", f64::NAN),
    ("azure", "Germany Central (Sovereign)", "DE", f64::NAN),
    ("azure", "Germany North (Public)", "DE", f64::NAN),
    ("azure", "Germany Northeastt (Sovereign)", "DE", f64::NAN),
    ("azure", "Germany West Central (Public)", "DE", f64::NAN),
    ("azure", "Central India", "IN", f64::NAN),
    ("azure", "South India", "IN", f64::NAN),
    ("azure", "West India", "IN", f64::NAN),
    ("azure", "Israel Central", "IL", f64::NAN),
    ("azure", "Italy North", "IT", f64::NAN),
    ("azure", "Japan East", "JP", f64::NAN),
    ("azure", "Japan West", "JP", f64::NAN),
    ("azure", "Korea Central", "KR", f64::NAN),
    ("azure", "Korea South", "KR", f64::NAN),
    ("azure", "Mexico Central", "MX", f64::NAN),
    ("azure", "New Zealand North", "NZ", f64::NAN),
    ("azure", "Norway East", "NO", f64::NAN),
    ("azure", "Norway West", "NO", f64::NAN),
    ("azure", "Poland Central", "PL", f64::NAN),
    ("azure", "Qatar Central", "", f64::NAN),
    ("azure", "Spain Central", "ES", f64::NAN),
    ("azure", "Switzerland North", "CH", f64::NAN),
    ("azure", "Switzerland West", "CH", f64::NAN),
    ("azure", "UAE Central", "AE", f64::NAN),
    ("azure", "UAE North", "AE", f64::NAN),
    ("azure", "UK South", "GB", f64::NAN),
    ("azure", "UK West", "GB", f64::NAN),
    ("azure", "Central US", "US-IA", f64::NAN),
    ("azure", "East US", "US-VA", f64::NAN),
    ("azure", "East US 2", "US-VA", f64::NAN),
    ("azure", "North Central US", "US-IL", f64::NAN),
    ("azure", "South Central US", "US-TX", f64::NAN),
    ("azure", "West Central US", "US-WY", f64::NAN),
    ("azure", "West US", "US-CA", f64::NAN),
    ("azure", "West US 2", "US-WA", f64::NAN),
    ("azure", "West US 3", "US-AZ", f64::NAN),
];

/// Green Algorithms `defaults_PUE.csv`.
pub fn ga_default_pue(provider: &str) -> f64 {
    match provider {
        "gcp" => 1.12,
        "aws" => 1.2,
        "azure" => 1.12,
        _ => 1.56,
    }
}

/// GA's row for a cloud region: (CI location, PUE).
pub fn ga_datacentre(provider: &str, region: &str) -> Option<(&'static str, f64)> {
    GA_DATACENTRES
        .iter()
        .find(|(p, r, _, _)| *p == provider && r.eq_ignore_ascii_case(region))
        .map(|(_, _, l, p)| (*l, *p))
}

/// CCF's min/max W per vCPU for an unknown microarchitecture (AWS average 0.74/3.5, GCP median
/// 0.68/4.11, Azure average 0.74/3.54, as in the code).
pub fn ccf_vcpu_watts(provider: &str) -> (f64, f64) {
    match provider {
        "gcp" => (0.68, 4.11),
        "azure" => (0.74, 3.54),
        _ => (0.74, 3.5),
    }
}

fn norm(s: &str) -> String {
    s.to_ascii_lowercase()
        .replace("nvidia", "")
        .replace("tesla", "")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A row of `table` for `model`: the row whose every word is in the query, longest such row
/// (so `v100 pcie 16gb` finds `Tesla V100-PCIE-16GB`, `a100 sxm` finds `A100 SXM4 80 GB` only
/// when every word matches). Queries longer than 200 characters match nothing.
pub fn lookup(table: &[(&'static str, f64)], model: &str) -> Option<(&'static str, f64)> {
    if model.len() > 200 {
        return None;
    }
    let q = norm(&model.replace('-', " "));
    let qw: Vec<&str> = q.split_whitespace().collect();
    let mut best: Option<(&'static str, f64, usize)> = None;
    for (name, w) in table {
        let n = norm(&name.replace('-', " "));
        let nw: Vec<&str> = n.split_whitespace().collect();
        let all_in_query = nw.iter().all(|t| qw.contains(t));
        let query_in_row = qw.iter().all(|t| nw.contains(t));
        if (all_in_query || query_in_row) && best.is_none_or(|b| nw.len() > b.2) {
            best = Some((name, *w, nw.len()));
        }
    }
    best.map(|(n, w, _)| (n, w))
}
