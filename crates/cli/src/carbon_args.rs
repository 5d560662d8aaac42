//! Where a run or estimate happens, and the carbon factors that follow from it.

use anyhow::Result;
use wattprint_core::cloud_metadata;
use wattprint_core::factors::{self, Provenance};
use wattprint_core::location::{self, ResolvedLocation};
use wattprint_core::record::{CarbonContext, LocationRecord};

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

/// One line: key, dataset, year, licence, kind, scope.
pub fn describe(p: &Provenance) -> String {
    p.to_string()
}

/// The line plus the dataset's notes (upstream source, caveats).
pub fn describe_full(p: &Provenance) -> String {
    if p.note.is_empty() {
        p.to_string()
    } else {
        format!("{p}; {}", p.note)
    }
}

impl CarbonArgs {
    /// The location in force: flag, else `WATTPRINT_LOCATION`, else the config files, else
    /// unknown. `detect` (opt-in) asks the cloud metadata service.
    pub fn location(&self) -> Result<ResolvedLocation> {
        Ok(self.location_with_notes()?.0)
    }

    /// [`CarbonArgs::location`] plus notes to show (e.g. why detection failed).
    pub fn location_with_notes(&self) -> Result<(ResolvedLocation, Vec<String>)> {
        let mut notes = Vec::new();
        let given = self
            .location
            .clone()
            .or_else(|| self.country.clone())
            .or_else(location::location_from_env);
        let given = match given {
            Some(g) => Some(g),
            None => crate::config::Config::load()?.location(),
        };
        let given = match given {
            Some(g) if g.trim().eq_ignore_ascii_case("detect") => {
                match cloud_metadata::detect(None, std::time::Duration::from_millis(800)) {
                    Ok(code) => {
                        notes.push(format!(
                            "location {code} detected from the cloud metadata service"
                        ));
                        Some(code)
                    }
                    Err(why) => {
                        notes.push(format!("location detection failed: {why}"));
                        None
                    }
                }
            }
            other => other,
        };
        let spec = match given.as_deref() {
            Some(s) => Some(location::parse_location(s).map_err(|e| anyhow::anyhow!("{e}"))?),
            None => None,
        };
        // Value the run at its own year's factors where the data has them.
        let year = time::OffsetDateTime::now_utc().year();
        Ok((
            location::resolve(spec.as_ref(), u16::try_from(year).ok()),
            notes,
        ))
    }

    pub fn resolve(&self) -> Result<CarbonContext> {
        let (loc, mut warnings) = self.location_with_notes()?;
        let (g, source, detail) = match self.intensity {
            Some(g) if g.is_finite() && g >= 0.0 => (
                g,
                "user (--intensity)".to_string(),
                "given by the user with --intensity".to_string(),
            ),
            Some(g) => anyhow::bail!(
                "--intensity {g}: must be a non-negative number of gCO2e/kWh, e.g. --intensity 56"
            ),
            None => {
                let mut s = describe(&loc.intensity_provenance);
                if !loc.known {
                    s = format!("default: world average, {s}");
                }
                (
                    loc.intensity_g_per_kwh,
                    s,
                    describe_full(&loc.intensity_provenance),
                )
            }
        };
        let (pue, pue_source, pue_detail) = match self.pue {
            Some(p) if p.is_finite() && p >= 1.0 => (
                p,
                "user (--pue)".to_string(),
                "given by the user with --pue".to_string(),
            ),
            Some(p) => anyhow::bail!("--pue {p}: a PUE is a ratio of at least 1.0, e.g. --pue 1.2"),
            None => (
                loc.pue,
                describe(&loc.pue_provenance),
                describe_full(&loc.pue_provenance),
            ),
        };
        if !loc.known && self.intensity.is_none() {
            warnings.push(
                "location unknown: valued at the world average intensity; pass --location (e.g. FR, US-CA, aws:eu-west-3) or set WATTPRINT_LOCATION"
                    .to_string(),
            );
        }
        Ok(CarbonContext {
            intensity_g_per_kwh: g,
            intensity_source: source,
            intensity_detail: detail,
            pue_detail,
            pue,
            location: LocationRecord {
                code: loc.code.clone(),
                name: loc.name.clone(),
                known: loc.known,
                pue_source,
            },
            factors_version: factors::FACTORS_VERSION.to_string(),
            warnings,
            series: None,
            signal: None,
            live: None,
            embodied: None,
        })
    }
}
