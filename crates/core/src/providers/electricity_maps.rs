//! Electricity Maps API v3: average carbon intensity, life-cycle (default) or direct.
//!
//! Endpoints (header `auth-token: <token>`), all
//! `?zone=ZONE&emissionFactorType=lifecycle|direct&shouldUseFallbackCallerLookup=false`:
//! * `GET /v3/carbon-intensity/latest` → `{zone, carbonIntensity, datetime, updatedAt,
//!   emissionFactorType, isEstimated, estimationMethod, temporalGranularity?}`;
//! * `GET /v3/carbon-intensity/history` (last 24 h) → `{zone, history: [entry…]}`;
//! * `GET /v3/carbon-intensity/past-range&start=ISO&end=ISO` → `{zone, data: [entry…]}`
//!   (requested in chunks of at most 10 days);
//! * `GET /v3/carbon-intensity/forecast&horizonHours=H` → `{zone, forecast: [{carbonIntensity,
//!   datetime}], updatedAt}` (H one of 6, 24, 48, 72: the horizon asked, rounded up).
//!
//! Values are gCO2eq/kWh. `datetime` is the start of the interval; the interval's length is
//! `temporalGranularity` when given, else the spacing of the points, else one hour. A value
//! with `isEstimated: true` is an [`PointKind::Estimated`] point.
//!
//! Electricity Maps answers for the caller's IP location when it does not recognise a zone
//! (unless `shouldUseFallbackCallerLookup=false`, always sent here); every answer whose `zone`
//! differs from the zone asked for is refused ([`ProviderError::ZoneMismatch`]).

use super::http::{check_status, encode, garbage, json, trim_base, AuthHint, Http};
use super::{iso, now_unix, IntensityPoint, IntensityProvider, PointKind, ProviderError, Signal};
use serde_json::Value;
use std::time::Duration;

const NAME: &str = "electricitymaps";

/// Public base URL (paths start with `/v3/`).
pub const DEFAULT_URL: &str = "https://api.electricitymap.org";
/// Environment variable overriding the base URL.
pub const URL_ENV: &str = "WATTPRINT_ELECTRICITYMAPS_URL";
/// Environment variable holding the API token.
pub const TOKEN_ENV: &str = "WATTPRINT_ELECTRICITYMAPS_TOKEN";

/// Longest `past-range` request (the API's hourly limit is about 10 days).
const PAST_RANGE_CHUNK_S: i64 = 10 * 86_400;
/// `history` returns the last 24 hours.
const HISTORY_SPAN_S: i64 = 24 * 3600;

/// Which emission factors Electricity Maps applies to the generation mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmissionFactorType {
    /// Life-cycle (construction, fuel supply chain and combustion): the API's default.
    Lifecycle,
    /// Direct (combustion only).
    Direct,
}

impl EmissionFactorType {
    pub fn as_str(self) -> &'static str {
        match self {
            EmissionFactorType::Lifecycle => "lifecycle",
            EmissionFactorType::Direct => "direct",
        }
    }

    pub fn parse(s: &str) -> Option<EmissionFactorType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lifecycle" | "life-cycle" | "lca" => Some(EmissionFactorType::Lifecycle),
            "direct" => Some(EmissionFactorType::Direct),
            _ => None,
        }
    }
}

/// Electricity Maps v3 client.
#[derive(Debug, Clone)]
pub struct ElectricityMaps {
    http: Http,
    base: String,
    token: String,
    factor: EmissionFactorType,
}

impl ElectricityMaps {
    /// `base_url` is the host root (`https://api.electricitymap.org`); a trailing `/v3` is
    /// accepted too.
    pub fn new(base_url: &str, token: &str, timeout: Duration) -> ElectricityMaps {
        let mut base = trim_base(base_url);
        if let Some(b) = base.strip_suffix("/v3") {
            base = b.to_string();
        }
        ElectricityMaps {
            http: Http::new(NAME, timeout),
            base,
            token: token.to_string(),
            factor: EmissionFactorType::Lifecycle,
        }
    }

    pub fn with_emission_factor_type(mut self, f: EmissionFactorType) -> ElectricityMaps {
        self.factor = f;
        self
    }

    pub fn emission_factor_type(&self) -> EmissionFactorType {
        self.factor
    }

    fn get(&self, endpoint: &str, zone: &str, extra: &str) -> Result<Value, ProviderError> {
        let zone = zone.trim();
        if zone.is_empty() {
            return Err(ProviderError::UnknownZone {
                provider: NAME,
                zone: String::new(),
                hint: "give an Electricity Maps zone key such as FR, DE, US-CAL-CISO or GB".into(),
            });
        }
        let url = format!(
            "{}/v3/carbon-intensity/{endpoint}?zone={}&emissionFactorType={}&shouldUseFallbackCallerLookup=false{extra}",
            self.base,
            encode(zone),
            self.factor.as_str()
        );
        let resp = self.http.get(&url, &[("auth-token", &self.token)])?;
        let hint = if endpoint == "forecast" {
            format!(
                "the token may be wrong ({TOKEN_ENV}), or your Electricity Maps plan may not include forecasts (or zone {zone}): check the plan's endpoints"
            )
        } else {
            format!(
                "check {TOKEN_ENV} (your Electricity Maps API token) and that your plan covers zone {zone}"
            )
        };
        let body = match check_status(NAME, resp, &AuthHint(&hint), Some(zone)) {
            // Electricity Maps answers 400 for a zone key it does not know.
            Err(ProviderError::BadRequest { excerpt, .. })
                if excerpt.to_ascii_lowercase().contains("zone") =>
            {
                return Err(ProviderError::UnknownZone {
                    provider: NAME,
                    zone: zone.to_string(),
                    hint: format!("the provider said: {excerpt}; zone keys look like FR, DE, US-CAL-CISO (see the Electricity Maps zones list)"),
                })
            }
            other => other?,
        };
        let v = json(NAME, &body)?;
        if !v.is_object() {
            return Err(garbage(NAME, "expected a JSON object", &body));
        }
        match v.get("zone") {
            Some(Value::String(z)) if !z.trim().eq_ignore_ascii_case(zone) => {
                Err(ProviderError::ZoneMismatch {
                    provider: NAME,
                    asked: zone.to_string(),
                    answered: super::excerpt(z, 40),
                })
            }
            _ => Ok(v),
        }
    }

    fn source(&self, zone: &str, v: &Value) -> String {
        let factor = v
            .get("emissionFactorType")
            .and_then(Value::as_str)
            .unwrap_or(self.factor.as_str());
        format!("electricitymaps {zone} {factor}")
    }

    /// Points of an entry array under `key`.
    fn points(
        &self,
        zone: &str,
        v: &Value,
        key: &str,
        kind: PointKind,
    ) -> Result<Vec<IntensityPoint>, ProviderError> {
        let body = v.to_string();
        let arr = match v.get(key) {
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(garbage(
                    NAME,
                    format!("`{key}` is {}, expected an array", type_name(other)),
                    &body,
                ))
            }
            None => return Err(garbage(NAME, format!("no `{key}` array"), &body)),
        };
        let mut entries = Vec::with_capacity(arr.len());
        for e in arr {
            if let Some(x) = entry(e, &body)? {
                entries.push(x);
            }
        }
        entries.sort_by_key(|e| e.0);
        entries.dedup_by_key(|e| e.0);
        let default = granularity(v).unwrap_or_else(|| spacing(&entries));
        let source = self.source(zone, v);
        Ok(entries
            .into_iter()
            .map(|(start, g, gran, estimated)| {
                let (kind, estimation_method) = kind_of(kind, estimated);
                IntensityPoint {
                    start,
                    end: start + gran.unwrap_or(default),
                    g_per_kwh: g,
                    signal: Signal::Average,
                    kind,
                    source: source.clone(),
                    estimation_method,
                }
            })
            .collect())
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Seconds of a `temporalGranularity` value.
fn granularity_s(s: &str) -> Option<i64> {
    match s {
        "5_minutes" => Some(300),
        "15_minutes" => Some(900),
        "30_minutes" => Some(1800),
        "hourly" => Some(3600),
        "daily" => Some(86_400),
        _ => None,
    }
}

fn granularity(v: &Value) -> Option<i64> {
    v.get("temporalGranularity")
        .and_then(Value::as_str)
        .and_then(granularity_s)
}

/// The most common spacing between consecutive starts; one hour when unknown.
fn spacing(entries: &[Entry]) -> i64 {
    let mut diffs: Vec<i64> = entries
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .filter(|d| *d > 0)
        .collect();
    if diffs.is_empty() {
        return 3600;
    }
    diffs.sort_unstable();
    diffs[diffs.len() / 2]
}

/// One entry: start, g/kWh, its own granularity, and, for an estimate, its method (`""` when
/// not given).
type Entry = (i64, f64, Option<i64>, Option<String>);

/// One entry; `None` when `carbonIntensity` is null (no value for that interval).
fn entry(e: &Value, body: &str) -> Result<Option<Entry>, ProviderError> {
    if !e.is_object() {
        return Err(garbage(
            NAME,
            format!("an entry is {}, expected an object", type_name(e)),
            body,
        ));
    }
    let dt = match e.get("datetime") {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(garbage(
                NAME,
                format!("`datetime` is {}, expected a string", type_name(other)),
                body,
            ))
        }
        None => return Err(garbage(NAME, "an entry has no `datetime`", body)),
    };
    let start = iso::parse(dt).ok_or_else(|| {
        garbage(
            NAME,
            format!("`datetime` {dt:?} is not an ISO 8601 time"),
            body,
        )
    })?;
    let g = match e.get("carbonIntensity") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(other) => {
            return Err(garbage(
                NAME,
                format!(
                    "`carbonIntensity` is {}, expected a number",
                    type_name(other)
                ),
                body,
            ))
        }
    };
    if !g.is_finite() || g < 0.0 {
        return Err(garbage(
            NAME,
            format!("`carbonIntensity` {g} is not a non-negative number"),
            body,
        ));
    }
    let estimated = match e.get("isEstimated") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(
            e.get("estimationMethod")
                .and_then(Value::as_str)
                .map(|m| super::excerpt(m, 60))
                .unwrap_or_default(),
        ),
        Some(other) => {
            return Err(garbage(
                NAME,
                format!("`isEstimated` is {}, expected a boolean", type_name(other)),
                body,
            ))
        }
    };
    Ok(Some((start, g, granularity(e), estimated)))
}

/// `kind`, or `Estimated` for an after-the-fact value marked as an estimate, and its method.
fn kind_of(kind: PointKind, estimated: Option<String>) -> (PointKind, Option<String>) {
    match estimated {
        Some(m) if kind == PointKind::Actual => {
            (PointKind::Estimated, Some(m).filter(|m| !m.is_empty()))
        }
        _ => (kind, None),
    }
}

/// The `horizonHours` to ask for: the horizon rounded up to one the API offers (6, 24, 48 or
/// 72 hours), 72 at most.
pub fn horizon_hours(horizon: Duration) -> u64 {
    let h = horizon.as_secs().div_ceil(3600);
    [6, 24, 48, 72].into_iter().find(|&x| x >= h).unwrap_or(72)
}

impl IntensityProvider for ElectricityMaps {
    fn name(&self) -> &'static str {
        NAME
    }

    fn signal(&self) -> Signal {
        Signal::Average
    }

    fn latest(&self, zone: &str) -> Result<IntensityPoint, ProviderError> {
        let v = self.get("latest", zone, "")?;
        let body = v.to_string();
        let (start, g, gran, estimated) = entry(&v, &body)?.ok_or_else(|| {
            garbage(
                NAME,
                format!("`carbonIntensity` is missing or null: no current value for {zone}"),
                &body,
            )
        })?;
        let (kind, estimation_method) = kind_of(PointKind::Actual, estimated);
        Ok(IntensityPoint {
            start,
            end: start + gran.unwrap_or(3600),
            g_per_kwh: g,
            signal: Signal::Average,
            kind,
            source: self.source(zone.trim(), &v),
            estimation_method,
        })
    }

    fn history(
        &self,
        zone: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<IntensityPoint>, ProviderError> {
        if to <= from {
            return Ok(Vec::new());
        }
        let zone = zone.trim();
        if from >= now_unix() - HISTORY_SPAN_S + 300 {
            let v = self.get("history", zone, "")?;
            let mut points = self.points(zone, &v, "history", PointKind::Actual)?;
            points.retain(|p| p.end > from && p.start < to);
            return Ok(points);
        }
        super::chunked_history(from, to, PAST_RANGE_CHUNK_S, |a, b| {
            let extra = format!(
                "&start={}&end={}",
                encode(&iso::format(a)),
                encode(&iso::format(b))
            );
            let v = self.get("past-range", zone, &extra)?;
            self.points(zone, &v, "data", PointKind::Actual)
        })
    }

    fn forecast(
        &self,
        zone: &str,
        horizon: Duration,
    ) -> Result<Vec<IntensityPoint>, ProviderError> {
        let zone = zone.trim();
        let v = self.get(
            "forecast",
            zone,
            &format!("&horizonHours={}", horizon_hours(horizon)),
        )?;
        let mut points = self.points(zone, &v, "forecast", PointKind::Forecast)?;
        let now = now_unix();
        let until = now.saturating_add(i64::try_from(horizon.as_secs()).unwrap_or(i64::MAX));
        points.retain(|p| p.end > now && p.start < until);
        Ok(points)
    }
}
