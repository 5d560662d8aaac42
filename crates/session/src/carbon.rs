//! Where a run or estimate happens, and the carbon factors that follow from it: the location
//! (option, else `$WATTPRINT_LOCATION`, else the configuration files, else unknown; `detect`
//! asks the cloud metadata service, opt-in), its grid intensity and PUE, each with its source.

use crate::config::Config;
use crate::options::{CarbonOptions, OptionError};
use anyhow::Result;
use wattprint_core::cloud_metadata;
use wattprint_core::env::Env;
use wattprint_core::factors::{self, Provenance};
use wattprint_core::location::{self, ResolvedLocation};
use wattprint_core::record::{CarbonContext, LocationRecord};

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

impl CarbonOptions {
    /// The location in force, plus notes to show (e.g. why detection failed).
    pub fn location_with_notes(&self, env: &Env) -> Result<(ResolvedLocation, Vec<String>)> {
        let mut notes = Vec::new();
        let given = self
            .location
            .clone()
            .or_else(|| self.country.clone())
            .or_else(|| location::location_from_env(env));
        let given = match given {
            Some(g) => Some(g),
            None => {
                let c = Config::load(env)?;
                notes.extend(c.warnings.iter().cloned());
                c.location()
            }
        };
        let given = match given {
            Some(g) if g.trim().eq_ignore_ascii_case("detect") => {
                match cloud_metadata::detect(
                    env.get(cloud_metadata::URL_ENV),
                    std::time::Duration::from_millis(800),
                ) {
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
        let year = time_year();
        Ok((location::resolve(spec.as_ref(), year), notes))
    }

    /// The factors in force, with their sources and the warnings they need.
    pub fn resolve(&self, env: &Env) -> Result<CarbonContext> {
        let (loc, mut warnings) = self.location_with_notes(env)?;
        let (g, source, detail) = match self.intensity {
            Some(g) if g.is_finite() && g >= 0.0 => (
                g,
                "user (--intensity)".to_string(),
                "given by the user with --intensity".to_string(),
            ),
            Some(g) => {
                return Err(OptionError::new(
                    "intensity",
                    g,
                    "must be a non-negative number of gCO2e/kWh, e.g. 56",
                )
                .into())
            }
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
            Some(p) => {
                return Err(OptionError::new(
                    "pue",
                    p,
                    "a PUE is a ratio of at least 1.0, e.g. 1.2",
                )
                .into())
            }
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
            embodied_not_counted: None,
        })
    }
}

/// This year (UTC), for year-specific factors.
fn time_year() -> Option<u16> {
    u16::try_from(time::OffsetDateTime::now_utc().year()).ok()
}
