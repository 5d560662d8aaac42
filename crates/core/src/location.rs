//! Where a job ran: parsing a location string and resolving it to a grid intensity and a PUE.
//!
//! Accepted forms (case-insensitive):
//! * `WORLD`: the world average;
//! * an ISO 3166-1 alpha-2 country: `FR`, `us` (`UK` is accepted for `GB`);
//! * a sub-national zone: `US-CA`, `CA-QC`, `AU-NSW`, `SE-SE3`, `NO-NO4`, `CN-GD`
//!   (`CA-MT`, Green Algorithms' code for Manitoba, is accepted for `CA-MB`);
//! * a cloud region `provider:region`: `aws:us-east-1`, `gcp:europe-west1`,
//!   `azure:francecentral` (Azure display names such as `azure:France Central` too); a bare
//!   region name is accepted when exactly one provider has it.
//!
//! [`resolve`] gives the intensity (for a country or zone: the latest data year ≤ the run year,
//! see [`crate::factors::pick_intensity`]) and the PUE (cloud region: CCF; otherwise the 1.56
//! default). No location → world average 475 gCO2e/kWh, flagged `known = false`.

use crate::factors::cloud::{self, find_region, provider_regions, CloudRegion, Provider};
use crate::factors::intensity::{self, Level};
use crate::factors::pue::default_pue;
use crate::factors::Provenance;
use crate::units::GramsPerKwh;
use serde::Serialize;
use std::fmt;

/// Environment variable holding the default location.
pub const LOCATION_ENV: &str = "WATTPRINT_LOCATION";

/// A parsed location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LocationSpec {
    World,
    /// ISO 3166-1 alpha-2, upper case.
    Country {
        code: String,
    },
    /// Sub-national zone code, upper case (`US-CA`).
    Zone {
        code: String,
    },
    /// Cloud region, region normalised as the provider spells it.
    Cloud {
        provider: Provider,
        region: String,
    },
}

impl LocationSpec {
    /// Canonical code: `WORLD`, `FR`, `US-CA`, `aws:eu-west-3`.
    pub fn code(&self) -> String {
        match self {
            LocationSpec::World => "WORLD".into(),
            LocationSpec::Country { code } | LocationSpec::Zone { code } => code.clone(),
            LocationSpec::Cloud { provider, region } => format!("{provider}:{region}"),
        }
    }
}

impl fmt::Display for LocationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}

const FORMS: &str = "an ISO country code (FR), a sub-national zone (US-CA, CA-QC, AU-NSW, \
SE-SE3, CN-GD), a cloud region (aws:us-east-1, gcp:europe-west1, azure:francecentral) or WORLD";

fn join_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Why a location (or a `regions` flag) was rejected. Each message says what is valid and how to
/// list every choice.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LocationError {
    #[error("empty location: expected {FORMS}")]
    Empty,
    #[error(
        "unknown cloud provider '{provider}': valid providers are aws, gcp, azure (or all for \
         `wattprint regions`)"
    )]
    UnknownProvider { provider: String },
    #[error(
        "unknown {provider} region '{region}'; {}: {}; list them with their intensity using `wattprint regions --provider {provider}`",
        if *close { "closest" } else { "valid regions" },
        join_or_none(suggestions)
    )]
    UnknownRegion {
        provider: Provider,
        region: String,
        suggestions: Vec<String>,
        /// Whether `suggestions` are near matches (else: every valid region).
        close: bool,
    },
    #[error(
        "unknown location '{input}': expected {FORMS}; closest: {}; list them all with \
         `wattprint factors intensity` and `wattprint regions --provider all`",
        join_or_none(suggestions)
    )]
    Unknown {
        input: String,
        suggestions: Vec<String>,
    },
    #[error(
        "'{input}' is a region name of several providers: use one of {}",
        candidates.join(", ")
    )]
    AmbiguousRegion {
        input: String,
        candidates: Vec<String>,
    },
    #[error("{flag} expects a cloud region such as aws:eu-west-3, not '{input}'")]
    NotCloud { flag: String, input: String },
    #[error("invalid {flag} value '{value}': {reason}")]
    BadNumber {
        flag: String,
        value: String,
        reason: String,
    },
}

/// Levenshtein distance (ASCII-lowercased inputs expected).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Up to `max` candidates closest to `input`: prefix matches first, then by edit distance
/// (at most max(2, len/3)).
fn closest(input: &str, candidates: &[String], max: usize) -> Vec<String> {
    let q = input.to_ascii_lowercase();
    let limit = (q.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, usize, &String)> = candidates
        .iter()
        .filter_map(|c| {
            let cl = c.to_ascii_lowercase();
            // Compare against the part after "provider:" too, so "eu-west-9" finds aws:eu-west-1.
            let tail = cl.split_once(':').map_or(cl.as_str(), |(_, t)| t);
            let q_tail = q.split_once(':').map_or(q.as_str(), |(_, t)| t);
            let prefix = cl.starts_with(&q) || tail.starts_with(q_tail) || q.starts_with(&cl);
            let d = edit_distance(&q, &cl).min(edit_distance(q_tail, tail));
            (prefix || d <= limit).then_some((usize::from(!prefix), d, c))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(max)
        .map(|(_, _, c)| c.clone())
        .collect()
}

/// Parses a location string (see the module doc for the accepted forms).
pub fn parse_location(s: &str) -> Result<LocationSpec, LocationError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(LocationError::Empty);
    }
    if let Some((p, r)) = s.split_once(':') {
        let provider = Provider::parse(p).ok_or_else(|| LocationError::UnknownProvider {
            provider: p.trim().to_string(),
        })?;
        if let Some(c) = find_region(provider, r) {
            return Ok(LocationSpec::Cloud {
                provider,
                region: c.region.clone(),
            });
        }
        let region = provider.normalise_region(r);
        let all: Vec<String> = provider_regions(provider).map(|c| c.id.clone()).collect();
        let near = closest(&format!("{provider}:{region}"), &all, 6);
        let close = !near.is_empty();
        return Err(LocationError::UnknownRegion {
            suggestions: if close { near } else { all },
            provider,
            region,
            close,
        });
    }
    let up = s.to_ascii_uppercase();
    if up == "WORLD" {
        return Ok(LocationSpec::World);
    }
    let code = match up.as_str() {
        "UK" => "GB".to_string(),
        "CA-MT" => "CA-MB".to_string(),
        _ => up,
    };
    if let Some(row) = intensity::intensity_rows(&code).first() {
        return Ok(match row.level {
            Level::World => LocationSpec::World,
            Level::Country => LocationSpec::Country { code },
            Level::Zone => LocationSpec::Zone { code },
        });
    }
    // A bare cloud region name, unique to one provider.
    let hits: Vec<&CloudRegion> = Provider::ALL
        .into_iter()
        .filter_map(|p| find_region(p, s))
        .collect();
    match hits.as_slice() {
        [one] => {
            return Ok(LocationSpec::Cloud {
                provider: one.provider,
                region: one.region.clone(),
            })
        }
        [] => {}
        many => {
            return Err(LocationError::AmbiguousRegion {
                input: s.to_string(),
                candidates: many.iter().map(|c| c.id.clone()).collect(),
            })
        }
    }
    let mut all: Vec<String> = intensity::intensity_codes()
        .into_iter()
        .map(String::from)
        .collect();
    all.extend(cloud::cloud_regions().iter().map(|c| c.id.clone()));
    Err(LocationError::Unknown {
        input: s.to_string(),
        suggestions: closest(s, &all, 6),
    })
}

/// A location resolved to the factors used for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedLocation {
    /// `FR`, `US-CA`, `aws:eu-west-3`, `WORLD`, or `unknown`.
    pub code: String,
    pub name: String,
    /// False when no location was given (world average used).
    pub known: bool,
    /// Grid intensity, gCO2e/kWh.
    pub intensity_g_per_kwh: f64,
    pub intensity_provenance: Provenance,
    pub pue: f64,
    pub pue_provenance: Provenance,
    pub cloud_region: Option<CloudRegion>,
}

impl ResolvedLocation {
    pub fn intensity(&self) -> GramsPerKwh {
        GramsPerKwh(self.intensity_g_per_kwh)
    }

    /// Intensity × PUE: gCO2e per kWh of IT energy.
    pub fn effective_g_per_kwh(&self) -> f64 {
        self.intensity_g_per_kwh * self.pue
    }
}

fn world(code: &str, name: &str, known: bool, note: &str) -> ResolvedLocation {
    let w = intensity::world_average();
    let (pue, pue_prov) = default_pue();
    ResolvedLocation {
        code: code.into(),
        name: name.into(),
        known,
        intensity_g_per_kwh: w.g_per_kwh,
        intensity_provenance: w.provenance.clone().with_note(note),
        pue,
        pue_provenance: pue_prov.with_note("default PUE: not a cloud region"),
        cloud_region: None,
    }
}

/// Resolves a location for a run in `year` (data year choice: see
/// [`crate::factors::pick_intensity`]).
///
/// * `None` → world average 475 gCO2e/kWh, `known = false`, code `unknown`, default PUE;
/// * country / zone → the picked intensity row, default PUE 1.56 (Green Algorithms);
/// * cloud region → the region's intensity and PUE (the run year is not applied: cloud factors
///   are single-year);
/// * a spec whose code is not in the tables (built by hand) → world average, `known = false`,
///   with a note naming the code.
pub fn resolve(spec: Option<&LocationSpec>, year: Option<u16>) -> ResolvedLocation {
    match spec {
        None => world(
            "unknown",
            "location unknown (world average)",
            false,
            "location unknown: world average used; set --location or WATTPRINT_LOCATION",
        ),
        Some(LocationSpec::World) => world("WORLD", "World average", true, ""),
        Some(LocationSpec::Country { code }) | Some(LocationSpec::Zone { code }) => {
            match intensity::pick_intensity(code, year) {
                Some(p) => {
                    let (pue, pue_prov) = default_pue();
                    ResolvedLocation {
                        code: p.row.code.clone(),
                        name: p.row.name.clone(),
                        known: true,
                        intensity_g_per_kwh: p.row.g_per_kwh,
                        intensity_provenance: p.provenance(),
                        pue,
                        pue_provenance: pue_prov.with_note(
                            "default PUE: a country or zone is not a data centre; pass the facility's PUE if known",
                        ),
                        cloud_region: None,
                    }
                }
                None => world(
                    "unknown",
                    "location unknown (world average)",
                    false,
                    &format!("no intensity for '{code}': world average used"),
                ),
            }
        }
        Some(LocationSpec::Cloud { provider, region }) => match find_region(*provider, region) {
            Some(c) => {
                let year_note = match (year, c.intensity_provenance.year) {
                    (Some(y), Some(dy)) if y != dy => {
                        format!("cloud factor is single-year ({dy}); run year {y} not applied")
                    }
                    (Some(y), None) => {
                        format!("cloud factor is single-year; run year {y} not applied")
                    }
                    _ => String::new(),
                };
                ResolvedLocation {
                    code: c.id.clone(),
                    name: c.name.clone(),
                    known: true,
                    intensity_g_per_kwh: c.intensity_g_per_kwh,
                    intensity_provenance: c.intensity_provenance.clone().with_note(&year_note),
                    pue: c.pue,
                    pue_provenance: c.pue_provenance.clone(),
                    cloud_region: Some(c.clone()),
                }
            }
            None => world(
                "unknown",
                "location unknown (world average)",
                false,
                &format!("no factors for cloud region '{provider}:{region}': world average used"),
            ),
        },
    }
}

/// The location given in `WATTPRINT_LOCATION`, if set and not blank. (Config-file support is
/// separate work.)
pub fn location_from_env(env: &crate::env::Env) -> Option<String> {
    env.get(LOCATION_ENV).map(|v| v.trim().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("fr", "fr"), 0);
    }

    #[test]
    fn closest_prefers_prefix() {
        let c: Vec<String> = [
            "aws:eu-west-1",
            "aws:eu-west-2",
            "aws:us-east-1",
            "gcp:us-east1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let got = closest("aws:eu-west", &c, 6);
        assert_eq!(
            got[..2],
            ["aws:eu-west-1".to_string(), "aws:eu-west-2".to_string()]
        );
        assert!(!got.contains(&"gcp:us-east1".to_string()));
    }
}
