//! Factor datasets shipped in the binary: grid carbon intensity (world, country, sub-national zone,
//! cloud region), PUE, accelerator power and embodied emissions.
//!
//! The tables are normalised CSV files under `crates/core/data/factors/`, generated once by
//! `scripts/build-factors.py` from the shared reference datasets (codecarbon 3.3.2, Green
//! Algorithms data v3.0, mlco2/impact, ccf-coefficients, Cloud Carbon Footprint). They are embedded
//! with `include_str!` and parsed once on first use. Every value carries a [`Provenance`]: which
//! source, file, data year and licence it came from, and whether it is an average or marginal,
//! direct or life-cycle figure. See `docs/factors.md` for each dataset, default and caveat.

use serde::Serialize;
use std::fmt;

pub mod cloud;
pub mod embodied;
pub mod gpu;
pub mod instances;
pub mod intensity;
pub mod pue;
pub mod ranking;
pub mod sources;
mod table;

pub use cloud::{
    cloud_region, cloud_regions, find_region, provider_regions, AltIntensity, CloudRegion, Provider,
};
pub use embodied::{
    embodied, embodied_factor, embodied_table, EmbodiedCoefficients, EmbodiedFactor, ServerSpec,
};
pub use gpu::{gpu_fallback, gpu_lookup, gpu_table, AcceleratorKind, GpuMatch, GpuSpec};
pub use instances::{find_instance, instance_table, InstanceEmbodied};
pub use intensity::{
    intensity_codes, intensity_rows, intensity_table, pick_intensity, world_average, IntensityPick,
    IntensityRow, Level, WORLD_AVERAGE_G_PER_KWH,
};
pub use pue::{default_pue, pue_table, PueRole, PueRow, DEFAULT_PUE};
pub use ranking::{
    parse_provider_filter, rank_regions, regions_report, saving, RankedRegion, Reference,
    RegionRank, RegionsQuery, RegionsReport, Saving, AREAS,
};
pub use sources::{source_info, sources, SourceInfo};

/// Version of the shipped factor set. Recorded in every result so that a number can be traced
/// back to the exact tables that produced it. Bump it whenever a table under `data/factors/`
/// changes.
pub const FACTORS_VERSION: &str = "wattprint-factors-2026.12.1";

/// Where a factor comes from.
///
/// `source` is a key of [`sources()`] (`A-CC` codecarbon, `A-GA` Green Algorithms, `A-ML`
/// mlco2/impact, `A-CCFC` ccf-coefficients, `A-CCF` Cloud Carbon Footprint, `WP-DS` vendor
/// datasheet values entered by wattprint, `user` for a value given by the user). `kind` and
/// `scope` use a small vocabulary per table:
///
/// * grid intensity: kind `average` | `marginal`; scope `direct` (combustion / generation),
///   `life-cycle`, or `unstated` where the source does not say;
/// * PUE: kind `fleet-average` | `trailing-12-month` | `industry-average`; scope `facility`;
/// * accelerator power: kind `tdp` | `min-watts` | `measured-average`; scope `device`;
/// * embodied: kind `lca` | `lifetime`; scope `manufacturing`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    /// Source key, e.g. `A-GA`.
    pub source: &'static str,
    /// Dataset and file inside the source, e.g. `Green Algorithms data v3.0: CI_aggregated.csv`.
    pub dataset: String,
    /// Data year, where the source states it.
    pub year: Option<u16>,
    /// SPDX-like licence of the source (`MIT`, `CC-BY-4.0`, `Apache-2.0`, `n/a`).
    pub licence: &'static str,
    pub kind: &'static str,
    pub scope: &'static str,
    /// Free-text note: upstream citation, repairs applied, year choice, caveats.
    pub note: String,
}

impl Provenance {
    /// Provenance for a value supplied by the user (a flag or config entry), e.g. `--pue 1.3`.
    pub fn user(what: &str) -> Provenance {
        Provenance {
            source: "user",
            dataset: what.to_string(),
            year: None,
            licence: "n/a",
            kind: "user",
            scope: "user",
            note: String::new(),
        }
    }

    /// Returns a copy with `extra` appended to the note.
    pub fn with_note(mut self, extra: &str) -> Provenance {
        if extra.is_empty() {
            return self;
        }
        if self.note.is_empty() {
            self.note = extra.to_string();
        } else {
            self.note = format!("{}; {}", self.note, extra);
        }
        self
    }
}

impl fmt::Display for Provenance {
    /// One line: `A-GA Green Algorithms data v3.0: CI_aggregated.csv (2020, CC-BY-4.0, average, direct)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (", self.source, self.dataset)?;
        match self.year {
            Some(y) => write!(f, "{y}")?,
            None => write!(f, "year n/s")?,
        }
        write!(f, ", {}, {}, {})", self.licence, self.kind, self.scope)
    }
}
