//! The datasets wattprint ships, with the attribution each licence requires.
//!
//! The attribution lines are those given in the shared reference data README (table "Sources,
//! versions, licenses, required attribution"). The upstream licence texts are kept next to the
//! tables in `crates/core/data/factors/licenses/`.

use serde::Serialize;

/// One shipped dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    /// Key used in [`super::Provenance::source`].
    pub key: &'static str,
    pub name: &'static str,
    pub url: &'static str,
    /// Upstream version (package version or commit).
    pub version: &'static str,
    pub licence: &'static str,
    /// Attribution line to reproduce wherever the data is shown or redistributed.
    pub attribution: &'static str,
}

const SOURCES: &[SourceInfo] = &[
    SourceInfo {
        key: "A-CC",
        name: "CodeCarbon package data",
        url: "https://github.com/mlco2/codecarbon",
        version: "codecarbon 3.3.2 (PyPI wheel, files under codecarbon/data/)",
        licence: "MIT",
        attribution: "Contains data from CodeCarbon 3.3.2 (https://github.com/mlco2/codecarbon). Copyright (c) 2019 Mila, BCG Gamma, CometML, Haverford College; Copyright (c) 2023 Code Carbon NGO. MIT License.",
    },
    SourceInfo {
        key: "A-GA",
        name: "Green Algorithms data",
        url: "https://github.com/GreenAlgorithms/green-algorithms-tool",
        version: "data/v3.0 @ 30df2feead1c7f5db87a3d86ca1239470a0cd415 (2025-02-05)",
        licence: "CC-BY-4.0",
        attribution: "Green Algorithms data v3.0, Green Algorithms project (L. Lannelongue et al.), https://github.com/GreenAlgorithms/green-algorithms-tool, licensed under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); unmodified. Cite: Lannelongue, L., Grealey, J., Inouye, M., Green Algorithms: Quantifying the Carbon Footprint of Computation, Adv. Sci. 2021, 2100707, https://doi.org/10.1002/advs.202100707",
    },
    SourceInfo {
        key: "A-ML",
        name: "Machine Learning's CO2 Impact (mlco2/impact) data",
        url: "https://github.com/mlco2/impact",
        version: "data/ @ d0d3ee5a71ea222ac344a94900642ed2ce649af4 (2026-03-09)",
        licence: "MIT",
        attribution: "Contains data from Machine Learning's CO2 Impact (https://github.com/mlco2/impact) by A. Lacoste, A. Luccioni, V. Schmidt. MIT License, Copyright (c) 2013-2019 Blackrock Digital LLC (as stated in the repository's LICENSE). Paper: Lacoste et al., Quantifying the Carbon Emissions of Machine Learning, arXiv:1910.09700.",
    },
    SourceInfo {
        key: "A-CCFC",
        name: "Cloud Carbon Coefficients (ccf-coefficients)",
        url: "https://github.com/cloud-carbon-footprint/ccf-coefficients",
        version: "b0032d928c787cf76cecd7d1d611c5b46f366e29 (2026-04-24)",
        licence: "Apache-2.0",
        attribution: "Contains data from Cloud Carbon Coefficients (https://github.com/cloud-carbon-footprint/ccf-coefficients), part of Cloud Carbon Footprint, Thoughtworks, Inc. and contributors. Licensed under the Apache License 2.0.",
    },
    SourceInfo {
        key: "A-CCF",
        name: "Cloud Carbon Footprint constants (transcribed)",
        url: "https://github.com/cloud-carbon-footprint/cloud-carbon-footprint",
        version: "b7a049c7d25c0022919ab9010199dd9e77aa4577 (2024-03-25)",
        licence: "Apache-2.0",
        attribution: "Cloud Carbon Footprint, (c) 2021 Thoughtworks, Inc. (https://github.com/cloud-carbon-footprint/cloud-carbon-footprint). Licensed under the Apache License 2.0. Values transcribed from the project's TypeScript constants into CSV; the format was changed, the numbers were not.",
    },
    SourceInfo {
        key: "WP-DS",
        name: "Vendor datasheet values entered by wattprint",
        url: "https://www.nvidia.com/en-us/data-center/h100/",
        version: "NVIDIA H100 Tensor Core GPU datasheet; NVIDIA A100 Tensor Core GPU datasheet; AMD Instinct MI100, MI210, MI250, MI250X, MI300X datasheets; Intel Data Center GPU Max 1550 specification",
        licence: "n/a",
        attribution: "Power figures read from NVIDIA, AMD and Intel product datasheets (facts, no licence); transcribed by wattprint where the shared datasets have a gap.",
    },
];

/// All shipped datasets with their attribution lines.
pub fn sources() -> Vec<SourceInfo> {
    SOURCES.to_vec()
}

/// The dataset with the given key (`A-GA`, ...), if any.
pub fn source_info(key: &str) -> Option<SourceInfo> {
    SOURCES.iter().find(|s| s.key == key).cloned()
}
