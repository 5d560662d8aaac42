//! Ranking cloud regions by effective intensity (grid intensity × PUE) and the savings of a move.
//!
//! * effective intensity `e = I × PUE` (gCO2e per kWh of IT energy);
//! * emissions of `E` kWh of IT energy: `E × e / 1000` kgCO2e;
//! * saving of moving from `a` to `b`: `(e_a − e_b) / e_a × 100` percent, and
//!   `E × (e_a − e_b) / 1000` kgCO2e.
//!
//! "Near" means the same area ([`AREAS`]), derived from the region's country: `north-america`
//! (US, CA), `south-america` (BR, CL), `europe`, `asia-pacific` (incl. AU, like AWS' `ap-`
//! prefix), `middle-east`, `africa`.

use super::cloud::{cloud_regions, CloudRegion, Provider};
use crate::location::{parse_location, resolve, LocationError, LocationSpec};
use serde::Serialize;

/// Areas used by `--near`.
pub const AREAS: &[&str] = &[
    "north-america",
    "south-america",
    "europe",
    "asia-pacific",
    "middle-east",
    "africa",
];

/// One region in a ranking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionRank {
    pub id: String,
    pub provider: Provider,
    pub name: String,
    pub country: String,
    pub area: String,
    /// Grid intensity, gCO2e/kWh.
    pub intensity: f64,
    pub pue: f64,
    /// `intensity × pue`, gCO2e per kWh of IT energy.
    pub effective_g_per_kwh: f64,
    pub intensity_source: &'static str,
    pub pue_source: &'static str,
    /// Basis of the intensity: `direct` (combustion), `life-cycle`, or `unstated`.
    pub basis: &'static str,
}

impl From<&CloudRegion> for RegionRank {
    fn from(c: &CloudRegion) -> Self {
        RegionRank {
            id: c.id.clone(),
            provider: c.provider,
            name: c.name.clone(),
            country: c.country.clone(),
            area: c.area.clone(),
            intensity: c.intensity_g_per_kwh,
            pue: c.pue,
            effective_g_per_kwh: c.effective_g_per_kwh(),
            intensity_source: c.intensity_provenance.source,
            pue_source: c.pue_provenance.source,
            basis: c.intensity_provenance.scope,
        }
    }
}

/// Parses `aws|gcp|azure|all` (case-insensitive); `all` → `None`.
pub fn parse_provider_filter(provider: Option<&str>) -> Result<Option<Provider>, LocationError> {
    match provider.map(str::trim) {
        None => Ok(None),
        Some(p) if p.eq_ignore_ascii_case("all") => Ok(None),
        Some(p) => Provider::parse(p)
            .map(Some)
            .ok_or_else(|| LocationError::UnknownProvider {
                provider: p.to_string(),
            }),
    }
}

/// All regions of `provider` (`aws`, `gcp`, `azure`, `all` or `None` for all), sorted by
/// effective intensity ascending (ties by id).
pub fn rank_regions(provider: Option<&str>) -> Result<Vec<RegionRank>, LocationError> {
    let p = parse_provider_filter(provider)?;
    let mut v: Vec<RegionRank> = cloud_regions()
        .iter()
        .filter(|c| p.is_none_or(|p| c.provider == p))
        .map(RegionRank::from)
        .collect();
    sort_ranks(&mut v);
    Ok(v)
}

fn sort_ranks(v: &mut [RegionRank]) {
    v.sort_by(|a, b| {
        a.effective_g_per_kwh
            .total_cmp(&b.effective_g_per_kwh)
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// Saving of moving IT energy from an effective intensity `from` to `to` (both gCO2e/kWh).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Saving {
    /// `(from − to) / from × 100`; `None` when `from` is 0. Negative means worse.
    pub percent: Option<f64>,
    /// `from − to`, gCO2e per kWh.
    pub g_per_kwh: f64,
    /// `kwh × (from − to) / 1000`, kgCO2e, when an energy was given.
    pub kg: Option<f64>,
}

/// Computes the saving of a move (see the module doc for the formulas).
pub fn saving(from_effective: f64, to_effective: f64, kwh: Option<f64>) -> Saving {
    let d = from_effective - to_effective;
    Saving {
        percent: (from_effective > 0.0).then(|| d / from_effective * 100.0),
        g_per_kwh: d,
        kg: kwh.map(|e| e * d / 1000.0),
    }
}

/// Inputs of [`regions_report`] (the `wattprint regions` flags).
#[derive(Debug, Clone, Default)]
pub struct RegionsQuery {
    /// `aws`, `gcp`, `azure`, `all` (or `None` = all).
    pub provider: Option<String>,
    /// Keep regions in the same area as this cloud region, or this area name.
    pub near: Option<String>,
    /// Reference location for savings: a cloud region, country or zone (its intensity × PUE).
    pub from: Option<String>,
    /// Keep the first N rows.
    pub top: Option<usize>,
    /// IT energy, kWh, for emissions and savings in kg.
    pub kwh: Option<f64>,
}

/// The location savings are computed against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reference {
    pub code: String,
    pub name: String,
    pub intensity: f64,
    pub pue: f64,
    pub effective_g_per_kwh: f64,
    /// Basis of `intensity`.
    pub basis: &'static str,
    /// The reference's intensity on each basis its datasets give (latest data year per basis),
    /// so that each region is compared with a figure of its own basis.
    pub by_basis: Vec<(&'static str, f64)>,
}

impl Reference {
    /// The effective intensity (× PUE) to compare a region of `basis` with: the reference's
    /// figure of the same basis; for an `unstated` basis on either side, the reference's main
    /// figure; `None` when the reference has no figure of that basis (direct and life-cycle are
    /// never compared).
    pub fn effective_for(&self, basis: &str) -> Option<f64> {
        if basis == "unstated" || self.basis == "unstated" && self.by_basis.len() == 1 {
            return Some(self.effective_g_per_kwh);
        }
        self.by_basis
            .iter()
            .find(|(b, _)| *b == basis)
            .map(|(_, g)| g * self.pue)
    }
}

/// The reference's intensity per basis: for a cloud region its own (one basis); for a country
/// or zone, the latest row of each basis in the intensity table.
fn bases_of(code: &str, main: (&'static str, f64)) -> Vec<(&'static str, f64)> {
    let mut v = vec![main];
    for r in super::intensity::intensity_rows(code).into_iter().rev() {
        let b = r.provenance.scope;
        if !v.iter().any(|(x, _)| *x == b) {
            v.push((b, r.g_per_kwh));
        }
    }
    v
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedRegion {
    #[serde(flatten)]
    pub rank: RegionRank,
    /// `kwh × effective / 1000`, when `kwh` was given.
    pub emissions_kg: Option<f64>,
    /// Against the reference's figure of the same basis, when there is one.
    pub saving: Option<Saving>,
    /// True when the reference has no intensity of this region's basis: no saving is computed
    /// (a life-cycle figure is never compared with a direct one).
    pub bases_differ: bool,
}

/// A ranking with its filters, reference and per-row savings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionsReport {
    pub provider: String,
    pub near_area: Option<String>,
    pub reference: Option<Reference>,
    pub kwh: Option<f64>,
    pub rows: Vec<RankedRegion>,
}

fn cloud_of(s: &str, flag: &str) -> Result<&'static CloudRegion, LocationError> {
    match parse_location(s)? {
        LocationSpec::Cloud { provider, region } => super::cloud::find_region(provider, &region)
            .ok_or_else(|| LocationError::UnknownRegion {
                provider,
                region,
                suggestions: super::cloud::provider_regions(provider)
                    .map(|c| c.id.clone())
                    .collect(),
                close: false,
            }),
        other => Err(LocationError::NotCloud {
            flag: flag.to_string(),
            input: other.code(),
        }),
    }
}

/// Builds the `wattprint regions` report: rank, filter by area, compute emissions and savings.
///
/// `near` accepts a cloud region (`aws:eu-west-3`, or a bare region name unique to one provider)
/// or an area name; when `from` is absent, a `near` region is also the savings reference.
/// `from` accepts any location (cloud region, country, zone): its effective intensity is
/// intensity × PUE as resolved by [`crate::location::resolve`] (latest data year; default PUE
/// for a country or zone).
pub fn regions_report(q: &RegionsQuery) -> Result<RegionsReport, LocationError> {
    let provider = parse_provider_filter(q.provider.as_deref())?;
    if let Some(e) = q.kwh {
        if !e.is_finite() || e < 0.0 {
            return Err(LocationError::BadNumber {
                flag: "--kwh".into(),
                value: e.to_string(),
                reason: "energy must be a finite number of kWh, 0 or more".into(),
            });
        }
    }
    let mut reference = None;
    let near_area = match q.near.as_deref() {
        None => None,
        Some(n) => {
            let n = n.trim();
            if let Some(a) = AREAS.iter().find(|a| a.eq_ignore_ascii_case(n)) {
                Some(a.to_string())
            } else {
                let c = cloud_of(n, "--near").map_err(|e| match e {
                    LocationError::NotCloud { flag, input } => LocationError::NotCloud {
                        flag: format!("{flag} (or an area: {})", AREAS.join(", ")),
                        input,
                    },
                    other => other,
                })?;
                reference = Some(Reference {
                    code: c.id.clone(),
                    name: c.name.clone(),
                    intensity: c.intensity_g_per_kwh,
                    pue: c.pue,
                    effective_g_per_kwh: c.effective_g_per_kwh(),
                    basis: c.intensity_provenance.scope,
                    by_basis: vec![(c.intensity_provenance.scope, c.intensity_g_per_kwh)],
                });
                Some(c.area.clone())
            }
        }
    };
    if let Some(f) = q.from.as_deref() {
        let spec = parse_location(f)?;
        let r = resolve(Some(&spec), None);
        let basis = r.intensity_provenance.scope;
        let by_basis = if r.cloud_region.is_some() {
            vec![(basis, r.intensity_g_per_kwh)]
        } else {
            bases_of(&r.code, (basis, r.intensity_g_per_kwh))
        };
        reference = Some(Reference {
            effective_g_per_kwh: r.intensity_g_per_kwh * r.pue,
            code: r.code,
            name: r.name,
            intensity: r.intensity_g_per_kwh,
            pue: r.pue,
            basis,
            by_basis,
        });
    }
    let mut ranks: Vec<RegionRank> = cloud_regions()
        .iter()
        .filter(|c| provider.is_none_or(|p| c.provider == p))
        .filter(|c| near_area.as_deref().is_none_or(|a| c.area == a))
        .map(RegionRank::from)
        .collect();
    sort_ranks(&mut ranks);
    if let Some(n) = q.top {
        ranks.truncate(n);
    }
    let rows = ranks
        .into_iter()
        .map(|rank| {
            let from = reference.as_ref().map(|r| r.effective_for(rank.basis));
            RankedRegion {
                emissions_kg: q.kwh.map(|e| e * rank.effective_g_per_kwh / 1000.0),
                saving: from
                    .flatten()
                    .map(|f| saving(f, rank.effective_g_per_kwh, q.kwh)),
                bases_differ: from.is_some_and(|f| f.is_none()),
                rank,
            }
        })
        .collect();
    Ok(RegionsReport {
        provider: provider.map_or("all".to_string(), |p| p.to_string()),
        near_area,
        reference,
        kwh: q.kwh,
        rows,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn saving_arithmetic() {
        let s = saving(400.0, 100.0, Some(1000.0));
        assert!((s.percent.unwrap() - 75.0).abs() < 1e-12);
        assert!((s.g_per_kwh - 300.0).abs() < 1e-12);
        assert!((s.kg.unwrap() - 300.0).abs() < 1e-12);
        let worse = saving(100.0, 150.0, None);
        assert!((worse.percent.unwrap() + 50.0).abs() < 1e-12);
        assert_eq!(worse.kg, None);
        assert_eq!(saving(0.0, 10.0, None).percent, None);
    }

    #[test]
    fn provider_filter() {
        assert_eq!(parse_provider_filter(Some("ALL")).unwrap(), None);
        assert_eq!(
            parse_provider_filter(Some("Gcp")).unwrap(),
            Some(Provider::Gcp)
        );
        let e = parse_provider_filter(Some("ibm")).unwrap_err().to_string();
        assert!(e.contains("aws") && e.contains("gcp") && e.contains("azure") && e.contains("ibm"));
    }
}
