//! The one accounting path shared by `run`, `estimate`, the server and reports.
//!
//! Everything here is a pure function of its inputs (no I/O, no clock). The caller supplies
//! energies (measured or modelled), a PUE, a carbon intensity (constant or an hourly series) and
//! optionally embodied-emissions components; [`account`] turns them into a [`Breakdown`].
//!
//! Definitions (see `docs/methodology.md` for sources):
//!
//! * IT energy `E_it = E_dynamic + E_static` (energy drawn by the devices, before PUE).
//! * Facility energy `E_fac = E_it × PUE`; infrastructure energy `E_infra = (PUE − 1) × E_it`.
//! * Dynamic emissions `E_dynamic × I`, static emissions `E_static × I`,
//!   infrastructure emissions `(PUE − 1) × E_it × I`, so
//!   operational `= E_it × PUE × I` (Green Algorithms, Lannelongue et al. 2021).
//! * With an hourly series, `I` is the energy-weighted effective intensity
//!   `Σ_i E_i × I_i / Σ_i E_i` — never mean energy × mean intensity.
//! * Embodied `Σ kg × count × duration / (lifetime × use_rate) × share` (SCI / Cloud Carbon
//!   Footprint with a Boavizta-style use rate).
//! * Total `= operational + embodied`.

use crate::units::{GramsCo2e, GramsPerKwh, Joules, KilowattHours, JOULES_PER_KWH};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Seconds per hour.
const SECONDS_PER_HOUR: f64 = 3600.0;

/// IT energy split into its dynamic and static (idle) parts, before PUE.
///
/// `dynamic` is the energy above the devices' idle draw; `static_` is the idle draw over the
/// period (or idle energy the user asked to include). IT energy is their sum.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct EnergyInput {
    pub dynamic: Joules,
    #[serde(rename = "static")]
    pub static_: Joules,
}

impl EnergyInput {
    /// IT energy: dynamic + static (before PUE).
    pub fn it(&self) -> Joules {
        self.dynamic + self.static_
    }
}

/// Errors from checking accounting inputs ([`AccountInput::validate`], [`Intensity::hourly`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("invalid carbon-intensity series: {0}")]
    Intensity(String),
    #[error("PUE must be a finite number of at least 1.0 (got {0}); PUE is facility energy divided by IT energy, use 1.0 outside a data centre")]
    Pue(f64),
    #[error("{what} must be a finite, non-negative energy (got {value} J)")]
    Energy { what: String, value: f64 },
    #[error("embodied component `{name}`: {reason}")]
    Embodied { name: String, reason: String },
    #[error("embodied {what} must be a fraction in (0, 1] (got {value})")]
    EmbodiedFraction { what: &'static str, value: f64 },
}

/// Carbon intensity of the electricity used.
///
/// Serialises as `{"constant": 308.0}` or `{"hourly": [[start, end, g_per_kwh], ...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intensity {
    /// One value for the whole period.
    Constant(GramsPerKwh),
    /// A series of `(start_unix_s, end_unix_s, intensity)` intervals, half-open `[start, end)`.
    /// Use [`Intensity::hourly`] to build a checked one. Computation tolerates an unchecked
    /// series: it is sorted, intervals with `end <= start` or a non-finite value are dropped,
    /// and where two intervals overlap the earlier one wins.
    Hourly(Vec<(i64, i64, GramsPerKwh)>),
}

impl Intensity {
    /// A checked hourly (or any-resolution) series: non-empty, every `start < end`, every value
    /// finite and non-negative, intervals not overlapping. The series is sorted by start.
    pub fn hourly(mut series: Vec<(i64, i64, GramsPerKwh)>) -> Result<Intensity, AccountError> {
        if series.is_empty() {
            return Err(AccountError::Intensity(
                "it has no intervals; give at least one (start, end, g/kWh) interval or a constant intensity".into(),
            ));
        }
        for &(s, e, i) in &series {
            if e <= s {
                return Err(AccountError::Intensity(format!(
                    "interval [{s}, {e}) ends before it starts; each interval needs start < end (unix seconds)"
                )));
            }
            if !i.0.is_finite() || i.0 < 0.0 {
                return Err(AccountError::Intensity(format!(
                    "interval [{s}, {e}) has intensity {} g/kWh; it must be finite and non-negative",
                    i.0
                )));
            }
        }
        series.sort_by_key(|&(s, _, _)| s);
        for w in series.windows(2) {
            if w[1].0 < w[0].1 {
                return Err(AccountError::Intensity(format!(
                    "intervals [{}, {}) and [{}, {}) overlap",
                    w[0].0, w[0].1, w[1].0, w[1].1
                )));
            }
        }
        Ok(Intensity::Hourly(series))
    }

    /// Check a value built directly from the enum (same rules as [`Intensity::hourly`]; a
    /// constant must be finite and non-negative).
    pub fn validate(&self) -> Result<(), AccountError> {
        match self {
            Intensity::Constant(i) if !i.0.is_finite() || i.0 < 0.0 => {
                Err(AccountError::Intensity(format!(
                    "constant intensity {} g/kWh must be finite and non-negative",
                    i.0
                )))
            }
            Intensity::Constant(_) => Ok(()),
            Intensity::Hourly(series) => Intensity::hourly(series.clone()).map(|_| ()),
        }
    }

    /// Time-weighted mean of the intensity; `None` for an empty series.
    pub fn time_weighted_mean(&self) -> Option<GramsPerKwh> {
        match self {
            Intensity::Constant(i) => Some(*i),
            Intensity::Hourly(series) => {
                let series = normalized(series);
                let (mut num, mut den) = (0.0, 0.0);
                for &(s, e, i) in &series {
                    let len = span(s, e);
                    num += len * i.0;
                    den += len;
                }
                (den > 0.0).then(|| GramsPerKwh(num / den))
            }
        }
    }
}

/// Length of `[s, e)` in seconds as f64 (no overflow).
fn span(s: i64, e: i64) -> f64 {
    (e as f64) - (s as f64)
}

/// Sorted, non-overlapping, well-formed copy of a series (see [`Intensity::Hourly`]).
fn normalized(series: &[(i64, i64, GramsPerKwh)]) -> Vec<(i64, i64, GramsPerKwh)> {
    let mut v: Vec<_> = series
        .iter()
        .copied()
        .filter(|&(s, e, i)| e > s && i.0.is_finite())
        .collect();
    v.sort_by_key(|&(s, _, _)| s);
    let mut out: Vec<(i64, i64, GramsPerKwh)> = Vec::with_capacity(v.len());
    for (mut s, e, i) in v {
        if let Some(&(_, prev_end, _)) = out.last() {
            s = s.max(prev_end);
        }
        if e > s {
            out.push((s, e, i));
        }
    }
    out
}

/// Intensity of the series interval nearest in time to `[s, e]` (earliest wins a tie).
fn nearest(series: &[(i64, i64, GramsPerKwh)], s: i64, e: i64) -> Option<GramsPerKwh> {
    series
        .iter()
        .map(|&(a, b, i)| {
            let d = if b <= s {
                span(b, s)
            } else if a >= e {
                span(e, a)
            } else {
                0.0
            };
            (d, i)
        })
        .fold(
            None,
            |best: Option<(f64, GramsPerKwh)>, (d, i)| match best {
                Some((bd, _)) if bd <= d => best,
                _ => Some((d, i)),
            },
        )
        .map(|(_, i)| i)
}

/// Detailed result of [`operational_detail`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Operational {
    /// IT energy: the sum of the per-interval energies given.
    pub it_energy: Joules,
    /// Operational emissions, PUE included: `Σ_i E_i × I_i × PUE`.
    pub emissions: GramsCo2e,
    /// Energy-weighted intensity `Σ E_i × I_i / Σ E_i`; the time-weighted mean of the series
    /// when no energy was given; `None` for an empty series with no energy.
    pub effective_intensity: Option<GramsPerKwh>,
    /// Energy that fell outside every interval of an hourly series. It was charged at the
    /// intensity of the nearest interval (at zero when the series is empty); callers should
    /// report it, [`account`] does so in `Breakdown::warnings`.
    pub uncovered: Joules,
}

/// Operational emissions of per-interval IT energy: `PUE × Σ_i E_i × I(t_i)`.
///
/// `energy_by_interval` holds `(start_unix_s, end_unix_s, IT energy)`. With a constant intensity
/// this is `Σ E_i × I × PUE`. With an hourly series each energy interval is spread uniformly over
/// its span and every part is charged at the intensity of the series interval it falls in; the sum
/// of products is taken, **not** mean energy × mean intensity (the two differ whenever energy and
/// intensity vary together). An energy interval with `end <= start` is treated as an instant at
/// `start`. See [`operational_detail`] for energy outside the series.
pub fn operational_emissions(
    energy_by_interval: &[(i64, i64, Joules)],
    intensity: &Intensity,
    pue: f64,
) -> GramsCo2e {
    operational_detail(energy_by_interval, intensity, pue).emissions
}

/// [`operational_emissions`] together with the IT energy, effective intensity and any energy
/// not covered by the series.
pub fn operational_detail(
    energy_by_interval: &[(i64, i64, Joules)],
    intensity: &Intensity,
    pue: f64,
) -> Operational {
    let it_energy: Joules = energy_by_interval.iter().map(|e| e.2).sum();
    let (grams_it, uncovered) = match intensity {
        Intensity::Constant(i) => (it_energy.kwh() * *i, Joules::ZERO),
        Intensity::Hourly(raw) => {
            let series = normalized(raw);
            let mut grams = GramsCo2e::ZERO;
            let mut uncovered = Joules::ZERO;
            for &(s, e, j) in energy_by_interval {
                let mut rest = j;
                if e <= s {
                    if let Some(&(_, _, i)) = series.iter().find(|&&(a, b, _)| a <= s && s < b) {
                        grams += j.kwh() * i;
                        rest = Joules::ZERO;
                    }
                } else {
                    let len = span(s, e);
                    let mut covered = 0.0;
                    for &(a, b, i) in &series {
                        let o = span(a.max(s), b.min(e));
                        if o > 0.0 {
                            grams += (j * (o / len)).kwh() * i;
                            covered += o;
                        }
                    }
                    rest = j * ((len - covered) / len).max(0.0);
                }
                // Tolerate floating-point dust from the proportional split.
                if rest.0.abs() > 1e-9 * j.0.abs().max(1.0) {
                    uncovered += rest;
                    if let Some(i) = nearest(&series, s, e.max(s)) {
                        grams += rest.kwh() * i;
                    }
                }
            }
            (grams, uncovered)
        }
    };
    let effective_intensity = if it_energy.0 > 0.0 {
        Some(GramsPerKwh(grams_it.0 / it_energy.kwh().0))
    } else {
        intensity.time_weighted_mean()
    };
    Operational {
        it_energy,
        emissions: grams_it * pue,
        effective_intensity,
        uncovered,
    }
}

/// One embodied-emissions component (a server chassis, a GPU card, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbodiedComponent {
    pub name: String,
    /// Manufacturing (cradle-to-gate or LCA) emissions of one unit, kgCO2e.
    pub kg_co2e: f64,
    /// How many units (fractional shares allowed).
    pub count: f64,
    /// Expected service life of the unit, hours.
    pub lifetime_hours: f64,
    /// Where `kg_co2e` and `lifetime_hours` come from.
    pub source: String,
}

/// The one amortisation rule, used by runs, estimates, [`crate::factors::EmbodiedCoefficients`]
/// and the docs: the fraction of a component's manufacturing emissions a use of `hours` carries is
/// `hours / (lifetime_h × use_rate)`, **linear and not capped**. A use longer than the lifetime
/// carries more than one unit's emissions, because the hardware is replaced (CCF and SCI are
/// linear with no cap; Boavizta caps at 1, which would make a 5-year job on 4-year hardware free
/// after year 4). Preconditions as for [`embodied`].
pub fn amortisation_fraction(hours: f64, lifetime_hours: f64, use_rate: f64) -> f64 {
    hours.max(0.0) / (lifetime_hours * use_rate)
}

/// Embodied emissions allocated to a job:
/// `Σ kg × count × duration_h / (lifetime_h × use_rate) × share`, in grams
/// ([`amortisation_fraction`]).
///
/// This is the Green Software Foundation SCI allocation used by Cloud Carbon Footprint
/// (`scope3 × usage_hours / lifespan × share`, lifespan 35 040 h, CCF 2024), with Boavizta's
/// use-time ratio: hardware in use only a fraction `use_rate` of its life carries its manufacturing
/// emissions over fewer hours, so each hour of use bears more (`use_rate = 1` gives CCF exactly).
/// `share` is the job's share of the hardware (e.g. vCPUs of the instance / vCPUs of the host).
/// The ratio is not capped at 1 ([`amortisation_fraction`]).
/// Preconditions (checked by [`AccountInput::validate`], not here): finite non-negative kg and
/// count, lifetime > 0, use_rate and share in (0, 1].
pub fn embodied(
    components: &[EmbodiedComponent],
    duration: Duration,
    use_rate: f64,
    share: f64,
) -> GramsCo2e {
    let hours = duration.as_secs_f64() / SECONDS_PER_HOUR;
    components
        .iter()
        .map(|c| {
            GramsCo2e(
                c.kg_co2e
                    * 1000.0
                    * c.count
                    * amortisation_fraction(hours, c.lifetime_hours, use_rate)
                    * share,
            )
        })
        .sum()
}

/// Check embodied components and the use rate / share.
pub fn validate_embodied(
    components: &[EmbodiedComponent],
    use_rate: f64,
    share: f64,
) -> Result<(), AccountError> {
    for c in components {
        let bad = |reason: String| AccountError::Embodied {
            name: c.name.clone(),
            reason,
        };
        if !c.kg_co2e.is_finite() || c.kg_co2e < 0.0 {
            return Err(bad(format!(
                "kgCO2e must be finite and non-negative (got {})",
                c.kg_co2e
            )));
        }
        if !c.count.is_finite() || c.count < 0.0 {
            return Err(bad(format!(
                "count must be finite and non-negative (got {})",
                c.count
            )));
        }
        if !c.lifetime_hours.is_finite() || c.lifetime_hours <= 0.0 {
            return Err(bad(format!(
                "lifetime must be a positive number of hours (got {}); e.g. 4 years = 35040 h",
                c.lifetime_hours
            )));
        }
    }
    if !(use_rate.is_finite() && use_rate > 0.0 && use_rate <= 1.0) {
        return Err(AccountError::EmbodiedFraction {
            what: "use rate",
            value: use_rate,
        });
    }
    if !(share.is_finite() && share > 0.0 && share <= 1.0) {
        return Err(AccountError::EmbodiedFraction {
            what: "share",
            value: share,
        });
    }
    Ok(())
}

/// A factor used in a result, with its value, unit and source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assumption {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub source: String,
}

impl Assumption {
    pub fn new(
        name: impl Into<String>,
        value: f64,
        unit: impl Into<String>,
        source: impl Into<String>,
    ) -> Assumption {
        Assumption {
            name: name.into(),
            value,
            unit: unit.into(),
            source: source.into(),
        }
    }
}

/// Embodied part of an [`AccountInput`].
#[derive(Debug, Clone, PartialEq)]
pub struct EmbodiedInput {
    pub components: Vec<EmbodiedComponent>,
    /// Fraction of the hardware's life it is in use, (0, 1]; 1.0 unless known (CLI `--use-rate`).
    pub use_rate: f64,
    /// The job's share of the hardware, (0, 1]; 1.0 for whole machines.
    pub share: f64,
}

/// Everything [`account`] needs.
///
/// The component energies (`cpu`, `gpu`, `ram`, `other`) are IT energies and should sum to
/// `dynamic + static_`; IT energy is taken to be `dynamic + static_` and a mismatch is reported in
/// `Breakdown::warnings`. Use [`AccountInput::set_components`] to fill both consistently.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountInput {
    pub cpu: Joules,
    pub gpu: Joules,
    pub ram: Joules,
    pub other: Joules,
    pub dynamic: Joules,
    pub static_: Joules,
    /// Power usage effectiveness (facility / IT energy), ≥ 1.
    pub pue: f64,
    pub intensity: Intensity,
    /// IT energy per time interval `(start_unix_s, end_unix_s, J)`, used with an hourly
    /// intensity to weight it (the total should equal IT energy). Ignored for a constant one.
    pub energy_by_interval: Vec<(i64, i64, Joules)>,
    pub embodied: Option<EmbodiedInput>,
    /// Wall-clock duration the hardware was held (for embodied allocation).
    pub duration: Duration,
    /// Factors the caller used (PUE source, intensity source, power models...), carried through.
    pub assumptions: Vec<Assumption>,
}

impl AccountInput {
    /// Zero energies, no embodied part, no assumptions.
    pub fn new(pue: f64, intensity: Intensity, duration: Duration) -> AccountInput {
        AccountInput {
            cpu: Joules::ZERO,
            gpu: Joules::ZERO,
            ram: Joules::ZERO,
            other: Joules::ZERO,
            dynamic: Joules::ZERO,
            static_: Joules::ZERO,
            pue,
            intensity,
            energy_by_interval: Vec::new(),
            embodied: None,
            duration,
            assumptions: Vec::new(),
        }
    }

    /// Set per-component IT energies and the static part among them;
    /// dynamic = cpu + gpu + ram + other − static.
    pub fn set_components(
        &mut self,
        cpu: Joules,
        gpu: Joules,
        ram: Joules,
        other: Joules,
        static_: Joules,
    ) {
        self.cpu = cpu;
        self.gpu = gpu;
        self.ram = ram;
        self.other = other;
        self.static_ = static_;
        self.dynamic = cpu + gpu + ram + other - static_;
    }

    /// Reject inputs that would make the breakdown meaningless: non-finite or negative energies,
    /// PUE < 1, a malformed intensity, invalid embodied components.
    pub fn validate(&self) -> Result<(), AccountError> {
        let energies = [
            ("CPU energy", self.cpu),
            ("GPU energy", self.gpu),
            ("RAM energy", self.ram),
            ("other energy", self.other),
            ("dynamic energy", self.dynamic),
            ("static energy", self.static_),
        ];
        for (what, j) in energies {
            if !j.0.is_finite() || j.0 < 0.0 {
                return Err(AccountError::Energy {
                    what: what.into(),
                    value: j.0,
                });
            }
        }
        for &(s, e, j) in &self.energy_by_interval {
            if !j.0.is_finite() || j.0 < 0.0 {
                return Err(AccountError::Energy {
                    what: format!("energy of interval [{s}, {e})"),
                    value: j.0,
                });
            }
        }
        if !self.pue.is_finite() || self.pue < 1.0 {
            return Err(AccountError::Pue(self.pue));
        }
        self.intensity.validate()?;
        if let Some(e) = &self.embodied {
            validate_embodied(&e.components, e.use_rate, e.share)?;
        }
        Ok(())
    }
}

/// Energy part of a [`Breakdown`], kWh.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct EnergyKwh {
    pub cpu: KilowattHours,
    pub gpu: KilowattHours,
    pub ram: KilowattHours,
    pub other: KilowattHours,
    /// Energy above idle.
    pub dynamic: KilowattHours,
    /// Idle energy.
    #[serde(rename = "static")]
    pub static_: KilowattHours,
    /// IT energy = dynamic + static (before PUE).
    pub it: KilowattHours,
    /// Data-centre overhead (PUE − 1) × IT.
    pub infrastructure: KilowattHours,
    /// Facility energy = IT × PUE.
    pub facility: KilowattHours,
    /// The run record's `total`: IT energy (before PUE), equal to `it`.
    pub total: KilowattHours,
}

/// Emissions part of a [`Breakdown`], kilograms CO2e.
///
/// In JSON, `embodied` is `null` when embodied emissions were not counted
/// (`embodied_counted == false`): "not counted" is never written as a zero.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "EmissionsWire", into = "EmissionsWire")]
pub struct EmissionsKg {
    /// dynamic kWh × intensity.
    pub dynamic: f64,
    /// static kWh × intensity.
    #[serde(rename = "static")]
    pub static_: f64,
    /// (PUE − 1) × IT kWh × intensity.
    pub infrastructure: f64,
    /// Manufacturing emissions allocated to the job.
    pub embodied: f64,
    /// dynamic + static + infrastructure = IT × PUE × intensity.
    pub operational: f64,
    /// operational + embodied.
    pub total: f64,
    /// Whether `embodied` was counted; when false, `embodied` is 0 and means "not counted".
    pub embodied_counted: bool,
}

impl EmissionsKg {
    /// The embodied emissions, `None` when they were not counted.
    pub fn embodied_kg(&self) -> Option<f64> {
        self.embodied_counted.then_some(self.embodied)
    }
}

/// [`EmissionsKg`] as written: `embodied: null` when not counted.
#[derive(Serialize, Deserialize)]
struct EmissionsWire {
    dynamic: f64,
    #[serde(rename = "static")]
    static_: f64,
    infrastructure: f64,
    embodied: Option<f64>,
    operational: f64,
    total: f64,
}

impl From<EmissionsWire> for EmissionsKg {
    fn from(w: EmissionsWire) -> Self {
        EmissionsKg {
            dynamic: w.dynamic,
            static_: w.static_,
            infrastructure: w.infrastructure,
            embodied: w.embodied.unwrap_or(0.0),
            operational: w.operational,
            total: w.total,
            embodied_counted: w.embodied.is_some(),
        }
    }
}

impl From<EmissionsKg> for EmissionsWire {
    fn from(m: EmissionsKg) -> Self {
        EmissionsWire {
            dynamic: m.dynamic,
            static_: m.static_,
            infrastructure: m.infrastructure,
            embodied: m.embodied_kg(),
            operational: m.operational,
            total: m.total,
        }
    }
}

/// Green Algorithms `passengerCar_EU_perkm`: 175 gCO2/km (EU average passenger car;
/// GA data v3.0 `referenceValues.csv`, CC BY 4.0, citing Atmos. Environ. 2019 and UK
/// government GHG conversion factors 2019).
pub const CAR_G_PER_KM: f64 = 175.0;
/// Green Algorithms `treeYear`: 11 000 gCO2 sequestered per tree per year (GA data v3.0
/// `referenceValues.csv`, CC BY 4.0, citing Environ. Pollut. 2002); one tree-month = 11 000/12 g,
/// as the GA app computes it (`blueprints/metrics/utils.py`).
pub const TREE_G_PER_YEAR: f64 = 11_000.0;
/// Green Algorithms `flight_PAR-LON`: 50 000 gCO2e per passenger, Paris–London (GA data v3.0,
/// from the carbonfootprint.com calculator).
pub const FLIGHT_PARIS_LONDON_G: f64 = 50_000.0;
/// Green Algorithms `flight_PAR-DUB`: 110 000 gCO2e per passenger, Paris–Dublin (GA data v3.0,
/// carbonfootprint.com); the flight the GA app prints for small footprints.
pub const FLIGHT_PARIS_DUBLIN_G: f64 = 110_000.0;
/// Green Algorithms `flight_NY-SF`: 570 000 gCO2e per passenger, New York–San Francisco (GA data
/// v3.0, carbonfootprint.com).
pub const FLIGHT_NEW_YORK_SAN_FRANCISCO_G: f64 = 570_000.0;
/// US EPA Greenhouse Gas Equivalencies Calculator, "Calculations and References":
/// 8.22 × 10⁻⁶ t CO2 per smartphone charged (= 8.22 g), the value the page gave around 2020; EPA
/// revises it with its electricity factors, so treat it as indicative.
pub const PHONE_CHARGE_G: f64 = 8.22;

/// Everyday equivalents of an emission, each = grams / constant.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Equivalents {
    /// Kilometres driven by an average EU passenger car ([`CAR_G_PER_KM`]).
    pub car_km: f64,
    /// Months one tree needs to sequester it ([`TREE_G_PER_YEAR`] / 12).
    pub tree_months: f64,
    /// Paris–London passenger flights ([`FLIGHT_PARIS_LONDON_G`]).
    pub flights_paris_london: f64,
    /// Paris–Dublin passenger flights ([`FLIGHT_PARIS_DUBLIN_G`]).
    pub flights_paris_dublin: f64,
    /// New York–San Francisco passenger flights ([`FLIGHT_NEW_YORK_SAN_FRANCISCO_G`]).
    pub flights_new_york_san_francisco: f64,
    /// Smartphone charges ([`PHONE_CHARGE_G`]).
    pub phone_charges: f64,
}

impl Equivalents {
    /// Equivalents of `g` grams CO2e.
    pub fn of(g: GramsCo2e) -> Equivalents {
        Equivalents {
            car_km: g.0 / CAR_G_PER_KM,
            tree_months: g.0 / (TREE_G_PER_YEAR / 12.0),
            flights_paris_london: g.0 / FLIGHT_PARIS_LONDON_G,
            flights_paris_dublin: g.0 / FLIGHT_PARIS_DUBLIN_G,
            flights_new_york_san_francisco: g.0 / FLIGHT_NEW_YORK_SAN_FRANCISCO_G,
            phone_charges: g.0 / PHONE_CHARGE_G,
        }
    }
}

/// The full accounting result. Serialises with exactly these field names; `warnings` is omitted
/// when empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    pub energy_kwh: EnergyKwh,
    pub emissions_kg: EmissionsKg,
    pub pue: f64,
    /// Effective average intensity applied to IT energy (energy-weighted for a series).
    pub intensity_g_per_kwh: f64,
    /// Equivalents of `emissions_kg.total` (operational + embodied).
    pub equivalents: Equivalents,
    pub assumptions: Vec<Assumption>,
    /// Problems found in the inputs (energy outside the intensity series, components not
    /// summing to IT energy, invalid values...). Never silently dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Relative mismatch check used for warnings.
fn differs(a: f64, b: f64) -> bool {
    (a - b).abs() > 1e-6 * a.abs().max(b.abs()).max(1.0)
}

/// Turn energies, PUE, intensity and embodied components into a [`Breakdown`].
///
/// Never fails: problems go to `Breakdown::warnings` (call [`AccountInput::validate`] first, or
/// use [`account_checked`], to reject them instead). Invalid embodied inputs give 0 embodied
/// emissions and a warning.
pub fn account(input: &AccountInput) -> Breakdown {
    let mut warnings = Vec::new();
    if let Err(e) = input.validate() {
        warnings.push(e.to_string());
    }
    let it = input.dynamic + input.static_;
    let components = input.cpu + input.gpu + input.ram + input.other;
    if differs(components.0, it.0) {
        warnings.push(format!(
            "CPU+GPU+RAM+other energy ({:.6} kWh) differs from dynamic+static ({:.6} kWh); IT energy taken as dynamic+static",
            components.kwh().0,
            it.kwh().0
        ));
    }
    let pue = input.pue;

    let intensity = match &input.intensity {
        Intensity::Constant(i) => *i,
        Intensity::Hourly(_) => {
            let detail = operational_detail(&input.energy_by_interval, &input.intensity, 1.0);
            if detail.it_energy.0 > 0.0 {
                if differs(detail.it_energy.0, it.0) {
                    warnings.push(format!(
                        "per-interval energy ({:.6} kWh) differs from IT energy ({:.6} kWh); intervals used only to weight the intensity",
                        detail.it_energy.kwh().0,
                        it.kwh().0
                    ));
                }
                if detail.uncovered.0 > 0.0 {
                    warnings.push(format!(
                        "{:.6} kWh fell outside the carbon-intensity series and was charged at the nearest interval's intensity",
                        detail.uncovered.kwh().0
                    ));
                }
            } else if it.0 > 0.0 {
                warnings.push(
                    "no per-interval energy was given with an hourly intensity series; its time-weighted mean was used".into(),
                );
            }
            match detail.effective_intensity {
                Some(i) => i,
                None => {
                    warnings.push(
                        "the carbon-intensity series is empty; intensity taken as 0 g/kWh".into(),
                    );
                    GramsPerKwh::ZERO
                }
            }
        }
    };

    let kwh = |j: Joules| KilowattHours(j.0 / JOULES_PER_KWH);
    let it_kwh = kwh(it);
    let dynamic_g = kwh(input.dynamic) * intensity;
    let static_g = kwh(input.static_) * intensity;
    let infra_g = it_kwh * intensity * (pue - 1.0);
    let operational_g = dynamic_g + static_g + infra_g;

    let mut assumptions = input.assumptions.clone();
    let embodied_counted = input
        .embodied
        .as_ref()
        .is_some_and(|e| validate_embodied(&e.components, e.use_rate, e.share).is_ok());
    let embodied_g = match &input.embodied {
        None => GramsCo2e::ZERO,
        Some(e) => match validate_embodied(&e.components, e.use_rate, e.share) {
            Err(err) => {
                warnings.push(format!("{err}; embodied emissions not counted"));
                GramsCo2e::ZERO
            }
            Ok(()) => {
                for c in &e.components {
                    assumptions.push(Assumption::new(
                        format!("embodied.{}", c.name),
                        c.kg_co2e * c.count,
                        "kgCO2e",
                        format!("{} × {} ({})", c.count, c.kg_co2e, c.source),
                    ));
                    assumptions.push(Assumption::new(
                        format!("embodied.{}.lifetime", c.name),
                        c.lifetime_hours,
                        "h",
                        c.source.clone(),
                    ));
                }
                assumptions.push(Assumption::new(
                    "embodied.use_rate",
                    e.use_rate,
                    "fraction",
                    "share of the hardware's life in use (Boavizta use-time ratio); 1.0 unless given",
                ));
                assumptions.push(Assumption::new(
                    "embodied.share",
                    e.share,
                    "fraction",
                    "job's share of the hardware",
                ));
                embodied(&e.components, input.duration, e.use_rate, e.share)
            }
        },
    };
    let total_g = operational_g + embodied_g;

    Breakdown {
        energy_kwh: EnergyKwh {
            cpu: kwh(input.cpu),
            gpu: kwh(input.gpu),
            ram: kwh(input.ram),
            other: kwh(input.other),
            dynamic: kwh(input.dynamic),
            static_: kwh(input.static_),
            it: it_kwh,
            infrastructure: it_kwh * (pue - 1.0),
            facility: it_kwh * pue,
            total: it_kwh,
        },
        emissions_kg: EmissionsKg {
            dynamic: dynamic_g.kg(),
            static_: static_g.kg(),
            infrastructure: infra_g.kg(),
            embodied: embodied_g.kg(),
            operational: operational_g.kg(),
            total: total_g.kg(),
            embodied_counted,
        },
        pue,
        intensity_g_per_kwh: intensity.0,
        equivalents: Equivalents::of(total_g),
        assumptions,
        warnings,
    }
}

/// [`AccountInput::validate`] then [`account`].
pub fn account_checked(input: &AccountInput) -> Result<Breakdown, AccountError> {
    input.validate()?;
    Ok(account(input))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nearest_prefers_closest_then_earliest() {
        let s = vec![(0, 10, GramsPerKwh(1.0)), (20, 30, GramsPerKwh(2.0))];
        assert_eq!(nearest(&s, 12, 13), Some(GramsPerKwh(1.0)));
        assert_eq!(nearest(&s, 17, 18), Some(GramsPerKwh(2.0)));
        assert_eq!(nearest(&s, 15, 15), Some(GramsPerKwh(1.0)));
        assert_eq!(nearest(&[], 0, 1), None);
    }

    #[test]
    fn normalized_sorts_and_clips_overlaps() {
        let s = vec![
            (10, 20, GramsPerKwh(2.0)),
            (0, 15, GramsPerKwh(1.0)),
            (5, 5, GramsPerKwh(9.0)),
        ];
        assert_eq!(
            normalized(&s),
            vec![(0, 15, GramsPerKwh(1.0)), (15, 20, GramsPerKwh(2.0))]
        );
    }
}
