//! Grid carbon intensity (gCO2e/kWh) for the world, countries (ISO 3166-1 alpha-2) and
//! sub-national zones (`US-CA`, `CA-QC`, `AU-NSW`, `SE-SE3`, `CN-GD`, ...).
//!
//! A code can have several rows, one per data year and source: a recent one (codecarbon's
//! OWID-derived `global_energy_mix.json`, 2022/2023; eGRID2023 for US states; the 2023 Canadian
//! generation mix; 2025 Nordic zones; 2023 Chinese provinces) and an older one (Green Algorithms
//! `CI_aggregated.csv`, mostly 2019–2020 data). [`pick_intensity`] values a run at its own year:
//! the latest row whose year is ≤ the run's year, else the earliest row (and says so).
//!
//! The world average default is 475 gCO2e/kWh (IEA Global Energy & CO2 Status Report 2019, as
//! used by both Green Algorithms and codecarbon).

use super::table;
use super::Provenance;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

const CSV: &str = include_str!("../../data/factors/intensity.csv");

/// World average grid intensity, gCO2e/kWh (IEA 2019; Green Algorithms `WORLD`, codecarbon
/// `world_average`). Used when the location is unknown.
pub const WORLD_AVERAGE_G_PER_KWH: f64 = 475.0;

/// Geographic level of an intensity row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    World,
    Country,
    Zone,
}

/// One intensity value for one code and data year.
#[derive(Debug, Clone, Serialize)]
pub struct IntensityRow {
    /// `WORLD`, ISO 3166-1 alpha-2 country (`FR`) or zone (`US-CA`).
    pub code: String,
    pub name: String,
    pub level: Level,
    /// ISO alpha-2 country of the row (empty for the world).
    pub country: String,
    /// Data year (as in the provenance), where stated.
    pub year: Option<u16>,
    /// gCO2e/kWh (gCO2/kWh for the CO2-only Chinese provincial rows; the note says so).
    pub g_per_kwh: f64,
    pub provenance: Provenance,
}

#[derive(Deserialize)]
struct Raw {
    code: String,
    name: String,
    level: Level,
    country: String,
    g_per_kwh: f64,
    source: String,
    dataset: String,
    year: Option<u16>,
    licence: String,
    kind: String,
    scope: String,
    note: String,
}

fn load() -> Result<Vec<IntensityRow>, String> {
    let raw: Vec<Raw> = table::parse("intensity.csv", CSV)?;
    raw.into_iter()
        .map(|r| {
            Ok(IntensityRow {
                g_per_kwh: table::check_value("intensity.csv", &r.code, r.g_per_kwh)?,
                provenance: table::provenance(
                    "intensity.csv",
                    &r.source,
                    &r.dataset,
                    r.year,
                    &r.licence,
                    &r.kind,
                    &r.scope,
                    &r.note,
                )?,
                code: r.code,
                name: r.name,
                level: r.level,
                country: r.country,
                year: r.year,
            })
        })
        .collect()
}

/// All intensity rows (world, countries, zones; several years per code).
pub fn intensity_table() -> &'static [IntensityRow] {
    static T: OnceLock<Vec<IntensityRow>> = OnceLock::new();
    T.get_or_init(|| load().expect("embedded intensity.csv is valid (checked by tests)"))
}

/// Preference between two rows of the same code and data year: codecarbon (full-year
/// OWID/eGRID/official figures) over Green Algorithms (whose same-year rows are partial-year
/// Electricity Maps readings, e.g. IL "April 2022"). Lower is preferred.
fn source_rank(source: &str) -> u8 {
    match source {
        "A-CC" => 0,
        "A-GA" => 1,
        _ => 2,
    }
}

/// Rows for one code (case-insensitive), oldest first; within one year the preferred source
/// first.
pub fn intensity_rows(code: &str) -> Vec<&'static IntensityRow> {
    let mut v: Vec<_> = intensity_table()
        .iter()
        .filter(|r| r.code.eq_ignore_ascii_case(code))
        .collect();
    v.sort_by_key(|r| (r.year.unwrap_or(0), source_rank(r.provenance.source)));
    v
}

/// Distinct codes, sorted.
pub fn intensity_codes() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = intensity_table().iter().map(|r| r.code.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The world-average row (475 gCO2e/kWh).
pub fn world_average() -> &'static IntensityRow {
    intensity_table()
        .iter()
        .find(|r| r.level == Level::World)
        .expect("embedded intensity.csv has a WORLD row (checked by tests)")
}

/// The row chosen for a run, and why.
#[derive(Debug, Clone, Serialize)]
pub struct IntensityPick {
    pub row: &'static IntensityRow,
    /// Explains the year choice, e.g. "latest data year ≤ 2021 (2020)".
    pub note: String,
}

impl IntensityPick {
    /// The row's provenance with the year-choice note appended.
    pub fn provenance(&self) -> Provenance {
        self.row.provenance.clone().with_note(&self.note)
    }
}

/// Chooses the intensity row for `code` and a run in `year`.
///
/// Rule: among rows with a stated data year, the latest one whose year is ≤ `year`; if every row
/// is newer than `year`, the earliest row; with no run year, the latest row. Rows without a data
/// year are used only when no dated row exists. Two rows of the same year (only `IL` 2022):
/// codecarbon is preferred. Returns `None` for an unknown code.
pub fn pick_intensity(code: &str, year: Option<u16>) -> Option<IntensityPick> {
    let rows = intensity_rows(code);
    let years: Vec<u16> = rows.iter().filter_map(|r| r.year).collect();
    let (Some(&first), Some(&latest)) = (years.first(), years.last()) else {
        let row = rows.first().copied()?;
        return Some(IntensityPick {
            row,
            note: "data year not stated by the source".into(),
        });
    };
    // `years` is ascending.
    let (target, note) = match year {
        None => (
            latest,
            format!("run year not given: latest data year ({latest})"),
        ),
        Some(y) => match years.iter().rev().find(|&&ry| ry <= y) {
            Some(&ry) if ry == y => (ry, format!("data year {y} matches the run year")),
            Some(&ry) => (ry, format!("latest data year <= run year {y}: {ry}")),
            None => (
                first,
                format!("no data for {y} or earlier; using the earliest available year ({first})"),
            ),
        },
    };
    // Rows of one year are ordered by source preference: take the first.
    let row = rows.iter().copied().find(|r| r.year == Some(target))?;
    let others = rows.iter().filter(|r| r.year == Some(target)).count() - 1;
    let note = if others > 0 {
        format!("{note}; preferred over {others} other row(s) of the same year")
    } else {
        note
    };
    Some(IntensityPick { row, note })
}
