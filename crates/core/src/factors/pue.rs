//! Power usage effectiveness (PUE): facility energy / IT energy.
//!
//! Choices (see `docs/factors.md`):
//! * cloud regions use Cloud Carbon Footprint's values: the per-region trailing-twelve-month PUE
//!   where CCF has one (GCP), else CCF's provider fleet average (AWS 1.135, GCP 1.1, Azure 1.185);
//! * anything else (on-premise, a country or zone, unknown) uses [`DEFAULT_PUE`] = 1.56, Green
//!   Algorithms' `Unknown` default (Uptime Institute Global Data Center Survey 2024).
//!
//! Green Algorithms' provider defaults and CCF's on-premise 1.58 are kept as `alternative` rows
//! for comparison; they are not used.

use super::table;
use super::Provenance;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

const CSV: &str = include_str!("../../data/factors/pue.csv");

/// Default PUE for an unknown or on-premise data centre (Green Algorithms v3.0 `Unknown`,
/// Uptime Institute 2024 survey average).
pub const DEFAULT_PUE: f64 = 1.56;

/// What a PUE row is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PueRole {
    /// The default for unknown / on-premise.
    Default,
    /// A provider fleet average (used for regions without their own value).
    Provider,
    /// A per-region value (used).
    Region,
    /// Another dataset's value, shown for comparison, not used.
    Alternative,
}

#[derive(Debug, Clone, Serialize)]
pub struct PueRow {
    pub role: PueRole,
    /// `unknown`, `aws`, `gcp`, `azure`, `on-premise`, ...
    pub provider: String,
    /// Region id within the provider, or `*` for all.
    pub region: String,
    pub pue: f64,
    pub provenance: Provenance,
}

#[derive(Deserialize)]
struct Raw {
    role: PueRole,
    provider: String,
    region: String,
    pue: f64,
    source: String,
    dataset: String,
    year: Option<u16>,
    licence: String,
    kind: String,
    scope: String,
    note: String,
}

fn load() -> Result<Vec<PueRow>, String> {
    let raw: Vec<Raw> = table::parse("pue.csv", CSV)?;
    raw.into_iter()
        .map(|r| {
            let key = format!("{}/{}", r.provider, r.region);
            let pue = table::check_value("pue.csv", &key, r.pue)?;
            if pue < 1.0 {
                return Err(format!("pue.csv: {key}: PUE {pue} is below 1"));
            }
            Ok(PueRow {
                role: r.role,
                pue,
                provenance: table::provenance(
                    "pue.csv", &r.source, &r.dataset, r.year, &r.licence, &r.kind, &r.scope,
                    &r.note,
                )?,
                provider: r.provider,
                region: r.region,
            })
        })
        .collect()
}

/// All PUE rows (used and alternative).
pub fn pue_table() -> &'static [PueRow] {
    static T: OnceLock<Vec<PueRow>> = OnceLock::new();
    T.get_or_init(|| load().expect("embedded pue.csv is valid (checked by tests)"))
}

/// The default PUE for unknown / on-premise data centres, with its provenance.
pub fn default_pue() -> (f64, Provenance) {
    match pue_table().iter().find(|r| r.role == PueRole::Default) {
        Some(r) => (r.pue, r.provenance.clone()),
        // pue.csv always has a default row (tested); keep the documented constant otherwise.
        None => (
            DEFAULT_PUE,
            Provenance {
                source: "A-GA",
                dataset: "Green Algorithms data v3.0: defaults_PUE.csv".into(),
                year: Some(2024),
                licence: "CC-BY-4.0",
                kind: "industry-average",
                scope: "facility",
                note: String::new(),
            },
        ),
    }
}
