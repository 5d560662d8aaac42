//! Live and forecast grid carbon intensity: one synchronous trait, three providers, a disk cache,
//! the best-window search behind `wattprint when`, and the static-factor fallback used to value
//! a run hour by hour.
//!
//! * [`IntensityProvider`]: `latest`, `history`, `forecast` for a zone, each answering
//!   [`IntensityPoint`]s in gCO2e/kWh, each point carrying its [`Signal`] (average or marginal)
//!   and whether it is an actual value or a forecast.
//! * Providers: [`electricity_maps::ElectricityMaps`] (v3, average, life-cycle by default),
//!   [`uk::UkCarbonIntensity`] (NESO Carbon Intensity API, average, direct, no key) and
//!   [`watttime::WattTime`] (v3, marginal MOER, lbs/MWh converted to g/kWh).
//! * [`cache::CachedProvider`]: JSON files under `$WATTPRINT_HOME/cache/intensity/`, one per
//!   provider + zone + query, with a time to live per kind of query.
//! * [`window`]: the pure best-window search and the start decision for `run --start-when-clean`.
//!
//! Signals are never mixed: every function here that combines points ([`hourly_series`],
//! [`single_signal`], [`window::best_window`]) refuses a mix of average and marginal points.
//!
//! Nothing here reaches a host on its own: a provider is built only from explicit
//! configuration (see `docs/live-intensity.md`), and every HTTP call has a timeout.

use crate::accounting::Intensity;
use crate::units::GramsPerKwh;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

pub mod attribution;
pub mod cache;
pub mod electricity_maps;
pub mod http;
pub mod iso;
pub mod revalue;
pub mod uk;
pub mod watttime;
pub mod window;

pub use attribution::{attribution, Attribution};
pub use cache::{Cache, CachedProvider};
pub use electricity_maps::{ElectricityMaps, EmissionFactorType};
pub use revalue::{revalue_record, revalue_run};
pub use uk::UkCarbonIntensity;
pub use watttime::WattTime;

/// Default timeout of one HTTP request to a provider.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What an intensity value means.
///
/// * `Average`: emissions of all the electricity generated (or consumed) in the zone divided by
///   that electricity; what accounting uses (GHG Protocol location-based).
/// * `Marginal`: emissions of the generator that responds to one more kWh of demand
///   (WattTime MOER); what load shifting optimises. The two are never combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Average,
    Marginal,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Average => "average",
            Signal::Marginal => "marginal",
        })
    }
}

/// What kind of value a point holds.
///
/// * `Actual`: published after the fact from measurements (GB national `actual`, WattTime
///   `/v3/historical`, Electricity Maps values with `isEstimated: false`);
/// * `Estimated`: published after the fact but estimated where measurements were missing
///   (Electricity Maps `isEstimated: true`, with an `estimationMethod`);
/// * `Forecast`: predicted ahead of time (and not yet replaced by a published value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    Actual,
    Estimated,
    Forecast,
}

impl PointKind {
    /// Preference when two points cover the same interval: actual, then estimated, then
    /// forecast.
    pub fn rank(self) -> u8 {
        match self {
            PointKind::Actual => 0,
            PointKind::Estimated => 1,
            PointKind::Forecast => 2,
        }
    }
}

impl fmt::Display for PointKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PointKind::Actual => "actual",
            PointKind::Estimated => "estimated",
            PointKind::Forecast => "forecast",
        })
    }
}

/// How many points of each kind a series holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCounts {
    pub actual: usize,
    pub estimated: usize,
    pub forecast: usize,
}

impl KindCounts {
    pub fn of(points: &[IntensityPoint]) -> KindCounts {
        let mut c = KindCounts::default();
        for p in points {
            match p.kind {
                PointKind::Actual => c.actual += 1,
                PointKind::Estimated => c.estimated += 1,
                PointKind::Forecast => c.forecast += 1,
            }
        }
        c
    }

    pub fn total(&self) -> usize {
        self.actual + self.estimated + self.forecast
    }
}

impl fmt::Display for KindCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} actual, {} estimated, {} forecast",
            self.actual, self.estimated, self.forecast
        )
    }
}

/// One intensity value over the half-open interval `[start, end)` (unix seconds, UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntensityPoint {
    pub start: i64,
    pub end: i64,
    /// gCO2e per kWh (WattTime's lbs/MWh already converted).
    pub g_per_kwh: f64,
    pub signal: Signal,
    pub kind: PointKind,
    /// Provider, zone and variant, e.g. `electricitymaps FR lifecycle`.
    pub source: String,
    /// How an `estimated` value was estimated, when the provider says (Electricity Maps
    /// `estimationMethod`, e.g. `TIME_SLICER_AVERAGE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimation_method: Option<String>,
}

/// Why a provider could not answer. Every message says what to check or do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// HTTP 401/403 on a credentialed call.
    #[error("{provider}: unauthorized (HTTP {status}): {hint}")]
    Unauthorized {
        provider: &'static str,
        status: u16,
        hint: String,
    },
    /// HTTP 429.
    #[error("{provider}: rate limited (HTTP 429){}; wait before asking again (cached answers are reused meanwhile)",
        match .retry_after_s { Some(s) => format!(", retry after {s} s"), None => String::new() })]
    RateLimited {
        provider: &'static str,
        retry_after_s: Option<u64>,
    },
    /// HTTP 5xx.
    #[error("{provider}: server error (HTTP {status}): {excerpt}; the service is failing, try again later")]
    Server {
        provider: &'static str,
        status: u16,
        excerpt: String,
    },
    /// Other HTTP 4xx (a request the provider refused).
    #[error("{provider}: request refused (HTTP {status}): {excerpt}")]
    BadRequest {
        provider: &'static str,
        status: u16,
        excerpt: String,
    },
    /// No complete answer within the configured timeout.
    #[error("{provider}: no answer within {ms} ms; check the network or raise WATTPRINT_PROVIDER_TIMEOUT (e.g. 30s)")]
    Timeout { provider: &'static str, ms: u64 },
    /// Connection refused, DNS failure, TLS failure, connection reset...
    #[error("{provider}: network error reaching {url}: {detail}")]
    Network {
        provider: &'static str,
        url: String,
        detail: String,
    },
    /// A body that is not what the provider documents.
    #[error("{provider}: unexpected response: {what} (body starts: {excerpt:?})")]
    Garbage {
        provider: &'static str,
        what: String,
        excerpt: String,
    },
    /// The provider (or the account's plan) does not offer this.
    #[error("{provider}: not supported: {what}")]
    NotSupported {
        provider: &'static str,
        what: String,
    },
    /// The answer is for another zone than the one asked for (Electricity Maps substitutes
    /// the caller's location for a zone it does not recognise).
    #[error("{provider}: asked for zone `{asked}` but the answer is for zone `{answered}`; refused (a mistyped or unsupported zone key? zone keys look like FR, DE, US-CAL-CISO)")]
    ZoneMismatch {
        provider: &'static str,
        asked: String,
        answered: String,
    },
    /// The provider does not know the zone.
    #[error("{provider}: unknown zone `{zone}`: {hint}")]
    UnknownZone {
        provider: &'static str,
        zone: String,
        hint: String,
    },
}

/// A source of grid carbon intensity. Synchronous: implementations block on their HTTP calls,
/// each bounded by a timeout.
pub trait IntensityProvider: Send + Sync {
    /// Short stable name (`electricitymaps`, `uk`, `watttime`), also used in cache keys.
    fn name(&self) -> &'static str;
    /// The signal every point of this provider carries.
    fn signal(&self) -> Signal;
    /// The most recent value for `zone`.
    fn latest(&self, zone: &str) -> Result<IntensityPoint, ProviderError>;
    /// Values over `[from, to)` (unix seconds), sorted by start; points overlapping the range
    /// are kept whole.
    fn history(&self, zone: &str, from: i64, to: i64)
        -> Result<Vec<IntensityPoint>, ProviderError>;
    /// Forecast values from now on, up to `horizon` ahead where the provider has them, sorted
    /// by start. The point covering the present instant is included.
    fn forecast(&self, zone: &str, horizon: Duration)
        -> Result<Vec<IntensityPoint>, ProviderError>;
    /// Whether the provider ever publishes actual (after the fact) values for `zone`: false
    /// for the GB regional series, which are forecasts only.
    fn publishes_actuals(&self, _zone: &str) -> bool {
        true
    }
    /// When the last answer served was retrieved from the provider (unix seconds); `None`
    /// when it was just now (no cache in between).
    fn retrieved_at(&self) -> Option<i64> {
        None
    }
}

impl<T: IntensityProvider + ?Sized> IntensityProvider for Box<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn signal(&self) -> Signal {
        (**self).signal()
    }
    fn latest(&self, zone: &str) -> Result<IntensityPoint, ProviderError> {
        (**self).latest(zone)
    }
    fn history(
        &self,
        zone: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<IntensityPoint>, ProviderError> {
        (**self).history(zone, from, to)
    }
    fn forecast(
        &self,
        zone: &str,
        horizon: Duration,
    ) -> Result<Vec<IntensityPoint>, ProviderError> {
        (**self).forecast(zone, horizon)
    }
    fn publishes_actuals(&self, zone: &str) -> bool {
        (**self).publishes_actuals(zone)
    }
    fn retrieved_at(&self) -> Option<i64> {
        (**self).retrieved_at()
    }
}

/// Why points could not be combined.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeriesError {
    #[error("no intensity points to combine")]
    Empty,
    #[error("refusing to combine {first} and {other} intensity points ({first_source} vs {other_source}): average and marginal signals measure different things and are never mixed")]
    MixedSignals {
        first: Signal,
        other: Signal,
        first_source: String,
        other_source: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The one signal all `points` share; an error on an empty slice or a mix.
pub fn single_signal(points: &[IntensityPoint]) -> Result<Signal, SeriesError> {
    let first = points.first().ok_or(SeriesError::Empty)?;
    match points.iter().find(|p| p.signal != first.signal) {
        None => Ok(first.signal),
        Some(o) => Err(SeriesError::MixedSignals {
            first: first.signal,
            other: o.signal,
            first_source: first.source.clone(),
            other_source: o.source.clone(),
        }),
    }
}

/// Sorted, non-overlapping, well-formed copy of `points` (all of one signal):
///
/// * points with `end <= start` or a non-finite or negative value are dropped;
/// * where two points start together, the actual value wins over the estimate, and the
///   estimate over the forecast;
/// * otherwise, where points overlap, the earlier-starting one wins and the later one is
///   trimmed to start where the earlier ends (and dropped if nothing is left).
pub fn normalize(points: &[IntensityPoint]) -> Result<Vec<IntensityPoint>, SeriesError> {
    single_signal(points)?;
    let mut v: Vec<IntensityPoint> = points
        .iter()
        .filter(|p| p.end > p.start && p.g_per_kwh.is_finite() && p.g_per_kwh >= 0.0)
        .cloned()
        .collect();
    // Actual, then estimated, then forecast for the same start, so that the better kind wins
    // the overlap rule below.
    v.sort_by_key(|p| (p.start, p.kind.rank()));
    let mut out: Vec<IntensityPoint> = Vec::with_capacity(v.len());
    for mut p in v {
        if let Some(prev) = out.last() {
            p.start = p.start.max(prev.end);
        }
        if p.end > p.start {
            out.push(p);
        }
    }
    Ok(out)
}

/// The points as an [`Intensity::Hourly`] series for [`crate::accounting::operational_emissions`]
/// (any resolution: hourly, half-hourly, 5-minute). Refuses a mix of signals; overlaps are
/// resolved as in [`normalize`].
pub fn hourly_series(points: &[IntensityPoint]) -> Result<Intensity, SeriesError> {
    let norm = normalize(points)?;
    if norm.is_empty() {
        return Err(SeriesError::Invalid(
            "every intensity point was empty or invalid (end <= start, negative or non-finite value)"
                .into(),
        ));
    }
    Intensity::hourly(
        norm.iter()
            .map(|p| (p.start, p.end, GramsPerKwh(p.g_per_kwh)))
            .collect(),
    )
    .map_err(|e| SeriesError::Invalid(e.to_string()))
}

/// The intensity used to value one run, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIntensity {
    pub intensity: Intensity,
    pub signal: Signal,
    /// e.g. `electricitymaps FR lifecycle: 3 points (2 actual, 1 estimated, 0 forecast)` or the
    /// static source.
    pub source: String,
    /// Set when a provider was configured but could not be used: why, and that the static
    /// factor was used instead.
    pub fallback_reason: Option<String>,
    /// Caveats that do not change the source (partial coverage, estimates or forecast values
    /// used...).
    pub notes: Vec<String>,
    /// Points of each kind in the series (all zero for the static factor).
    pub counts: KindCounts,
    /// The series' typical interval length in seconds (the median): 1800 for the GB API,
    /// 300 for WattTime; `None` for the static factor.
    pub resolution_s: Option<i64>,
    /// Mean of the series over the run's span, weighted by time (`None` for the static factor).
    pub time_weighted_g_per_kwh: Option<f64>,
}

/// `30 min`, `5 min`, `1 h`, `90 s`: an interval length for records and messages.
pub fn fmt_resolution(s: i64) -> String {
    if s > 0 && s % 3600 == 0 {
        format!("{} h", s / 3600)
    } else if s > 0 && s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// Median length of the points' intervals (`None` when there are none).
pub fn median_resolution(points: &[IntensityPoint]) -> Option<i64> {
    let mut lens: Vec<i64> = points
        .iter()
        .map(|p| p.end - p.start)
        .filter(|l| *l > 0)
        .collect();
    lens.sort_unstable();
    lens.get(lens.len() / 2).copied()
}

/// Time-weighted mean of `series` over `[from, to)`: every instant of the span counts once,
/// at the intensity of the interval holding it, or of the nearest interval where the series
/// does not reach (as accounting charges energy there). `None` for an empty series or span.
pub fn time_weighted_mean(series: &Intensity, from: i64, to: i64) -> Option<f64> {
    let s = match series {
        Intensity::Constant(g) => return Some(g.0),
        Intensity::Hourly(s) => s,
    };
    if s.is_empty() || to <= from {
        return None;
    }
    let (first, last) = (s[0], s[s.len() - 1]);
    let mut num = 0.0;
    // Before the series: its first value; after it: its last value.
    num += (first.0.min(to) - from).max(0) as f64 * first.2 .0;
    num += (to - last.1.max(from)).max(0) as f64 * last.2 .0;
    for w in s.windows(2) {
        // A gap between two intervals: each half at its nearer neighbour.
        let (a, b) = (w[0].1, w[1].0);
        if b > a {
            let mid = a + (b - a) / 2;
            num += (mid.min(to) - a.max(from)).max(0) as f64 * w[0].2 .0;
            num += (b.min(to) - mid.max(from)).max(0) as f64 * w[1].2 .0;
        }
    }
    for &(a, b, g) in s {
        num += (b.min(to) - a.max(from)).max(0) as f64 * g.0;
    }
    Some(num / (to - from) as f64)
}

/// The intensity to value a run over `[start, end)` (unix seconds).
///
/// With a provider, its history for the run's span becomes a time series (each interval of
/// the run valued at that interval's intensity). Without one, or when the provider fails or
/// returns nothing usable, the static factor `static_fallback = (g_per_kwh, source)` is used
/// (an average signal) and `fallback_reason` says why. Signals are never mixed: the run is
/// valued wholly by the provider or wholly by the static factor.
pub fn intensity_for_run(
    provider: Option<&dyn IntensityProvider>,
    zone: &str,
    start: i64,
    end: i64,
    static_fallback: (f64, String),
) -> RunIntensity {
    let (g, static_source) = static_fallback;
    let fallback = |reason: Option<String>| RunIntensity {
        intensity: Intensity::Constant(GramsPerKwh(g)),
        signal: Signal::Average,
        source: static_source.clone(),
        fallback_reason: reason,
        notes: Vec::new(),
        counts: KindCounts::default(),
        resolution_s: None,
        time_weighted_g_per_kwh: None,
    };
    let Some(p) = provider else {
        return fallback(None);
    };
    let (from, to) = (start.min(end), start.max(end).max(start.min(end) + 1));
    let points = match p.history(zone, from, to) {
        Ok(points) => points,
        Err(e) => {
            return fallback(Some(format!(
                "{e}; valued at the static factor instead ({g} gCO2e/kWh, {static_source})"
            )))
        }
    };
    let used: Vec<IntensityPoint> = points
        .into_iter()
        .filter(|q| q.end > from && q.start < to)
        .collect();
    if used.is_empty() {
        return fallback(Some(format!(
            "{}: no intensity data for {zone} over the run; valued at the static factor instead ({g} gCO2e/kWh, {static_source})",
            p.name()
        )));
    }
    let intensity = match hourly_series(&used) {
        Ok(i) => i,
        Err(e) => {
            return fallback(Some(format!(
                "{}: {e}; valued at the static factor instead ({g} gCO2e/kWh, {static_source})",
                p.name()
            )))
        }
    };
    let used = normalize(&used).unwrap_or(used);
    let signal = used[0].signal;
    let counts = KindCounts::of(&used);
    let n = used.len();
    let mut notes = Vec::new();
    if counts.estimated > 0 {
        let mut methods: Vec<&str> = used
            .iter()
            .filter_map(|q| q.estimation_method.as_deref())
            .collect();
        methods.sort_unstable();
        methods.dedup();
        let how = if methods.is_empty() {
            String::new()
        } else {
            format!("; estimation method {}", methods.join(", "))
        };
        notes.push(format!(
            "{} of {n} intervals are estimates published by the provider (not measurements{how})",
            counts.estimated
        ));
    }
    if counts.forecast > 0 {
        notes.push(if p.publishes_actuals(zone) {
            format!(
                "{} of {n} intervals are forecast values (no published value yet; `wattprint show --revalue` replaces them once published)",
                counts.forecast
            )
        } else {
            format!(
                "{} of {n} intervals are forecast values: the provider publishes only forecasts for {zone}",
                counts.forecast
            )
        });
    }
    let covered: i64 = match &intensity {
        Intensity::Hourly(s) => s
            .iter()
            .map(|&(a, b, _)| (b.min(to) - a.max(from)).max(0))
            .sum(),
        Intensity::Constant(_) => to - from,
    };
    if covered < to - from {
        notes.push(format!(
            "the provider's data covers {covered} s of the run's {} s; the rest is valued at the nearest interval",
            to - from
        ));
    }
    if signal == Signal::Marginal {
        notes.push(
            "marginal signal (emissions of the responding generator), not an average: not comparable with average-intensity totals"
                .into(),
        );
    }
    let first_source = used[0].source.clone();
    let time_weighted = time_weighted_mean(&intensity, from, to);
    RunIntensity {
        intensity,
        signal,
        source: format!("{first_source}: {n} points ({counts})"),
        fallback_reason: None,
        notes,
        counts,
        resolution_s: median_resolution(&used),
        time_weighted_g_per_kwh: time_weighted,
    }
}

/// Points ordered by start, one per start (the first fetched wins).
pub fn sorted_unique(mut points: Vec<IntensityPoint>) -> Vec<IntensityPoint> {
    points.sort_by_key(|p| p.start);
    points.dedup_by_key(|p| p.start);
    points
}

/// History over `[from, to)` fetched in windows of at most `chunk_s` seconds (the APIs limit the
/// range of one request): `fetch(a, b)` gives the points of `[a, b)`; the result is ordered,
/// one point per start, and only points overlapping `[from, to)`.
pub fn chunked_history(
    from: i64,
    to: i64,
    chunk_s: i64,
    mut fetch: impl FnMut(i64, i64) -> Result<Vec<IntensityPoint>, ProviderError>,
) -> Result<Vec<IntensityPoint>, ProviderError> {
    let mut points = Vec::new();
    let mut a = from;
    while a < to {
        let b = (a + chunk_s.max(1)).min(to);
        points.extend(fetch(a, b)?);
        a = b;
    }
    let mut points = sorted_unique(points);
    points.retain(|p| p.end > from && p.start < to);
    Ok(points)
}

/// Now, in unix seconds.
pub fn now_unix() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The first `max` characters of `body`, control characters replaced, for error messages.
pub fn excerpt(body: &str, max: usize) -> String {
    let s: String = body
        .trim()
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if body.trim().chars().count() > max {
        format!("{s}…")
    } else {
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn point(start: i64, g: f64) -> IntensityPoint {
        IntensityPoint {
            start,
            end: start + 3600,
            g_per_kwh: g,
            signal: Signal::Average,
            kind: PointKind::Actual,
            source: "test".into(),
            estimation_method: None,
        }
    }

    #[test]
    fn time_weighted_mean_over_the_run_extends_to_the_nearest_interval() {
        let g = |x: f64| GramsPerKwh(x);
        let s = Intensity::Hourly(vec![(0, 1800, g(100.0)), (1800, 3600, g(200.0))]);
        assert_eq!(time_weighted_mean(&s, 0, 3600), Some(150.0));
        // A quarter inside the second half hour only.
        assert_eq!(time_weighted_mean(&s, 1800, 2700), Some(200.0));
        // Beyond the series: the last value; before it: the first.
        assert_eq!(time_weighted_mean(&s, 3600, 7200), Some(200.0));
        assert_eq!(time_weighted_mean(&s, -1800, 1800), Some(100.0));
        // A gap: each half at its nearer neighbour.
        let gap = Intensity::Hourly(vec![(0, 1000, g(10.0)), (2000, 3000, g(30.0))]);
        assert_eq!(time_weighted_mean(&gap, 0, 3000), Some(20.0));
        assert_eq!(time_weighted_mean(&gap, 5, 5), None);
        assert_eq!(
            time_weighted_mean(&Intensity::Constant(g(7.0)), 0, 1),
            Some(7.0)
        );
        assert_eq!(fmt_resolution(1800), "30 min");
        assert_eq!(fmt_resolution(300), "5 min");
        assert_eq!(fmt_resolution(3600), "1 h");
        assert_eq!(fmt_resolution(90), "90 s");
        let pts: Vec<IntensityPoint> = [0, 300, 600].iter().map(|&t| point(t, 1.0)).collect();
        assert_eq!(median_resolution(&pts), Some(3600));
        assert_eq!(median_resolution(&[]), None);
    }

    #[test]
    fn chunked_history_covers_the_range_once_in_order() {
        let mut asked = Vec::new();
        // Each window answers the hours it touches, overlapping its neighbours by one hour.
        let got = chunked_history(3600, 10 * 3600 + 1800, 4 * 3600, |a, b| {
            asked.push((a, b));
            Ok((a / 3600 - 1..=b / 3600)
                .rev()
                .map(|h| point(h * 3600, h as f64))
                .collect())
        })
        .unwrap();
        assert_eq!(
            asked,
            vec![
                (3600, 5 * 3600),
                (5 * 3600, 9 * 3600),
                (9 * 3600, 10 * 3600 + 1800)
            ]
        );
        let starts: Vec<i64> = got.iter().map(|p| p.start / 3600).collect();
        // hour 0 ends at the range start (left out); hour 10 overlaps its end (kept)
        assert_eq!(starts, (1..=10).collect::<Vec<_>>());
        // an error in any window is the answer
        let e = chunked_history(0, 10, 3, |a, _| {
            if a >= 6 {
                Err(ProviderError::Garbage {
                    provider: "test",
                    what: "bad".into(),
                    excerpt: String::new(),
                })
            } else {
                Ok(Vec::new())
            }
        });
        assert!(e.is_err());
        assert!(chunked_history(5, 5, 3, |_, _| unreachable!())
            .unwrap()
            .is_empty());
    }
}
