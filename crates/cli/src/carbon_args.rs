//! Where a run or estimate happens, and the carbon factors that follow from it: the flags.
//! The resolution is the session library's ([`wattprint_session::carbon`]).

use anyhow::Result;
use wattprint_core::location::ResolvedLocation;
use wattprint_core::record::CarbonContext;
use wattprint_session::options::CarbonOptions;

pub use wattprint_session::carbon::{describe, describe_full};

#[derive(clap::Args, Clone, Debug, Default)]
pub struct CarbonArgs {
    /// Where the energy is used: ISO country (`FR`), zone (`US-CA`, `CA-QC`) or cloud region
    /// (`aws:eu-west-3`, `gcp:europe-west1`, `azure:francecentral`), or `detect` to ask the cloud
    /// metadata service at 169.254.169.254 (opt-in). Default: $WATTPRINT_LOCATION, then config.
    #[arg(long, value_name = "LOCATION")]
    pub location: Option<String>,
    /// ISO country code (same as `--location CC`).
    #[arg(long, value_name = "CC", conflicts_with = "location")]
    pub country: Option<String>,
    /// Carbon intensity in gCO2e/kWh, overriding the location's.
    #[arg(long, value_name = "G_PER_KWH")]
    pub intensity: Option<f64>,
    /// Power usage effectiveness of the facility (≥ 1), overriding the location's.
    #[arg(long, value_name = "X")]
    pub pue: Option<f64>,
}

impl CarbonArgs {
    /// The options these flags give.
    pub fn options(&self) -> CarbonOptions {
        CarbonOptions {
            location: self.location.clone(),
            country: self.country.clone(),
            intensity: self.intensity,
            pue: self.pue,
        }
    }

    /// The location in force: flag, else `WATTPRINT_LOCATION`, else the config files, else
    /// unknown. `detect` (opt-in) asks the cloud metadata service.
    pub fn location(&self) -> Result<ResolvedLocation> {
        Ok(self.location_with_notes()?.0)
    }

    /// [`CarbonArgs::location`] plus notes to show (e.g. why detection failed).
    pub fn location_with_notes(&self) -> Result<(ResolvedLocation, Vec<String>)> {
        self.options().location_with_notes(crate::env())
    }

    pub fn resolve(&self) -> Result<CarbonContext> {
        self.options().resolve(crate::env())
    }
}

/// `--provider`: a live-intensity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderArg {
    /// Electricity Maps v3 (average, life-cycle by default; needs a token).
    #[value(name = "electricitymaps", alias = "electricity-maps", alias = "em")]
    ElectricityMaps,
    /// GB Carbon Intensity API (average; no key; Great Britain only).
    #[value(name = "uk", alias = "gb", alias = "carbonintensity")]
    Uk,
    /// WattTime v3 (marginal MOER; needs an account).
    #[value(name = "watttime")]
    WattTime,
}

impl From<ProviderArg> for wattprint_session::provider_config::ProviderKind {
    fn from(p: ProviderArg) -> Self {
        use wattprint_session::provider_config::ProviderKind as K;
        match p {
            ProviderArg::ElectricityMaps => K::ElectricityMaps,
            ProviderArg::Uk => K::Uk,
            ProviderArg::WattTime => K::WattTime,
        }
    }
}
