//! Cloud regions of AWS, GCP and Azure with grid intensity and PUE.
//!
//! Grid intensity, in order of preference (see `docs/factors.md`):
//! 1. Cloud Carbon Footprint application constants (transcribed; US regions use EPA eGRID2020
//!    NERC-region factors, GCP the Google-published `grid` variant, not the CFE-adjusted one);
//! 2. ccf-coefficients `data/grid-emissions-factors-{aws,azure,gcp}.csv` for regions missing from
//!    (1) (t/kWh × 10^6; the two malformed Azure rows are repaired and flagged);
//! 3. codecarbon `cloud/impact.csv` (Google region-carbon page) for GCP regions missing from both.
//!
//! Values from the other datasets (ccf-coefficients, mlco2/impact, codecarbon) are kept as
//! [`AltIntensity`] for comparison. PUE: see [`super::pue`].

use super::table;
use super::Provenance;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::OnceLock;

const CSV: &str = include_str!("../../data/factors/cloud_regions.csv");

/// A cloud provider with shipped regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Aws,
    Gcp,
    Azure,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Aws, Provider::Gcp, Provider::Azure];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Gcp => "gcp",
            Provider::Azure => "azure",
        }
    }

    /// Parses `aws`, `gcp` or `azure` (case-insensitive).
    pub fn parse(s: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Normalises a region name as the provider spells it (`FranceCentral` → `francecentral`;
    /// Azure display names lose their spaces).
    pub fn normalise_region(self, region: &str) -> String {
        let r = region.trim().to_ascii_lowercase();
        match self {
            Provider::Azure => r.replace(' ', ""),
            _ => r,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Another dataset's intensity for the same region, shown for comparison (not used).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AltIntensity {
    pub source: &'static str,
    pub dataset: &'static str,
    pub g_per_kwh: f64,
    pub note: String,
}

/// One cloud region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CloudRegion {
    /// `aws:eu-west-3`, `gcp:europe-west1`, `azure:francecentral`.
    pub id: String,
    pub provider: Provider,
    /// Region name as the provider spells it.
    pub region: String,
    pub name: String,
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// Sub-national grid zone of [`super::intensity`] the region sits in, where known.
    pub zone: Option<String>,
    /// Area used by `regions --near`: `north-america`, `south-america`, `europe`,
    /// `asia-pacific`, `middle-east`, `africa`.
    pub area: String,
    /// Grid intensity, gCO2e/kWh.
    pub intensity_g_per_kwh: f64,
    pub intensity_provenance: Provenance,
    pub pue: f64,
    pub pue_provenance: Provenance,
    pub alternatives: Vec<AltIntensity>,
}

impl CloudRegion {
    /// Intensity × PUE: grams CO2e per kWh of IT (device) energy.
    pub fn effective_g_per_kwh(&self) -> f64 {
        self.intensity_g_per_kwh * self.pue
    }
}

#[derive(Deserialize)]
struct Raw {
    id: String,
    provider: Provider,
    region: String,
    name: String,
    country: String,
    zone: String,
    area: String,
    g_per_kwh: f64,
    source: String,
    dataset: String,
    year: Option<u16>,
    licence: String,
    kind: String,
    scope: String,
    note: String,
    pue: f64,
    pue_source: String,
    pue_dataset: String,
    pue_year: Option<u16>,
    pue_licence: String,
    pue_kind: String,
    pue_note: String,
    alt_ccfc_g_per_kwh: Option<f64>,
    alt_ccfc_note: String,
    alt_mlco2_g_per_kwh: Option<f64>,
    alt_codecarbon_g_per_kwh: Option<f64>,
}

fn load() -> Result<Vec<CloudRegion>, String> {
    const T: &str = "cloud_regions.csv";
    let raw: Vec<Raw> = table::parse(T, CSV)?;
    raw.into_iter()
        .map(|r| {
            let mut alternatives = Vec::new();
            if let Some(g) = r.alt_ccfc_g_per_kwh {
                alternatives.push(AltIntensity {
                    source: "A-CCFC",
                    dataset: "ccf-coefficients @ b0032d9: data/grid-emissions-factors-*.csv",
                    g_per_kwh: table::check_value(T, &r.id, g)?,
                    note: r.alt_ccfc_note.clone(),
                });
            }
            if let Some(g) = r.alt_mlco2_g_per_kwh {
                alternatives.push(AltIntensity {
                    source: "A-ML",
                    dataset: "mlco2/impact @ d0d3ee5: data/impact.csv",
                    g_per_kwh: table::check_value(T, &r.id, g)?,
                    note: "2016-2019 sources, some single-hour readings".into(),
                });
            }
            if let Some(g) = r.alt_codecarbon_g_per_kwh {
                alternatives.push(AltIntensity {
                    source: "A-CC",
                    dataset: "codecarbon 3.3.2: cloud/impact.csv",
                    g_per_kwh: table::check_value(T, &r.id, g)?,
                    note: "Google region-carbon page value".into(),
                });
            }
            let pue = table::check_value(T, &r.id, r.pue)?;
            if pue < 1.0 {
                return Err(format!("{T}: {}: PUE {pue} is below 1", r.id));
            }
            if r.id != format!("{}:{}", r.provider, r.region) {
                return Err(format!("{T}: id {} does not match provider:region", r.id));
            }
            Ok(CloudRegion {
                intensity_g_per_kwh: table::check_value(T, &r.id, r.g_per_kwh)?,
                intensity_provenance: table::provenance(
                    T, &r.source, &r.dataset, r.year, &r.licence, &r.kind, &r.scope, &r.note,
                )?,
                pue,
                pue_provenance: table::provenance(
                    T,
                    &r.pue_source,
                    &r.pue_dataset,
                    r.pue_year,
                    &r.pue_licence,
                    &r.pue_kind,
                    "facility",
                    &r.pue_note,
                )?,
                alternatives,
                zone: (!r.zone.is_empty()).then_some(r.zone),
                id: r.id,
                provider: r.provider,
                region: r.region,
                name: r.name,
                country: r.country,
                area: r.area,
            })
        })
        .collect()
}

/// All shipped cloud regions, sorted by id.
pub fn cloud_regions() -> &'static [CloudRegion] {
    static T: OnceLock<Vec<CloudRegion>> = OnceLock::new();
    T.get_or_init(|| load().expect("embedded cloud_regions.csv is valid (checked by tests)"))
}

/// Looks up `provider:region` (case-insensitive; Azure display names with spaces accepted).
pub fn cloud_region(id: &str) -> Option<&'static CloudRegion> {
    let (p, r) = id.split_once(':')?;
    let provider = Provider::parse(p)?;
    find_region(provider, r)
}

/// Looks up a region of one provider.
pub fn find_region(provider: Provider, region: &str) -> Option<&'static CloudRegion> {
    let r = provider.normalise_region(region);
    cloud_regions()
        .iter()
        .find(|c| c.provider == provider && c.region == r)
}

/// Regions of one provider.
pub fn provider_regions(provider: Provider) -> impl Iterator<Item = &'static CloudRegion> {
    cloud_regions()
        .iter()
        .filter(move |c| c.provider == provider)
}
