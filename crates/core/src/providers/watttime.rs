//! WattTime API v3: marginal operating emissions rate (MOER, `signal_type=co2_moer`).
//!
//! * `GET /login` with HTTP Basic credentials → `{"token": …}`; the token is sent as
//!   `Authorization: Bearer` and lasts about 30 minutes (renewed here after 25, or on a 401).
//! * `GET /v3/forecast?region=R&signal_type=co2_moer&horizon_hours=H`
//! * `GET /v3/historical?region=R&start=ISO&end=ISO&signal_type=co2_moer` (subscribers; asked
//!   in chunks of at most 30 days)
//!
//! Both answer `{"data":[{"point_time","value"}], "meta":{"region","signal_type","units",
//! "data_point_period_seconds","generated_at",…}}`. `units` is `lbs_co2_per_mwh`; values are
//! converted with `g/kWh = lbs/MWh × 453.59237 / 1000 = × 0.45359237`.
//!
//! `latest` is the forecast point covering now (WattTime's current MOER is the head of its
//! forecast; `/v3/signal-index` is a 0–100 percentile, not an intensity, and is not used).
//!
//! A 401 or 403 on a data endpoint is answered by logging in again once: a 403 can be an
//! expired token as well as a plan that does not cover the endpoint. A 403 after a fresh
//! login is the plan: `NotSupported`; a 401 after it is the credentials: `Unauthorized`.
//!
//! `/v3/historical` lags real time: [`IntensityProvider::history`] fills a recent
//! not-yet-published tail from the head of `/v3/forecast`, marked `forecast` (a later
//! `wattprint show --revalue` replaces it with the historical values).

use super::http::{base64, check_status, encode, garbage, json, trim_base, AuthHint, Http};
use super::{iso, now_unix, IntensityPoint, IntensityProvider, PointKind, ProviderError, Signal};
use serde_json::Value;
use std::sync::Mutex;
use std::time::Duration;

const NAME: &str = "watttime";

/// Public base URL (paths `/login` and `/v3/...`).
pub const DEFAULT_URL: &str = "https://api.watttime.org";
/// Environment variable overriding the base URL.
pub const URL_ENV: &str = "WATTPRINT_WATTTIME_URL";
/// Environment variables holding the account's credentials.
pub const USERNAME_ENV: &str = "WATTPRINT_WATTTIME_USERNAME";
pub const PASSWORD_ENV: &str = "WATTPRINT_WATTTIME_PASSWORD";

/// Grams per kWh in one lb per MWh (453.59237 g/lb ÷ 1000 kWh/MWh).
pub const G_PER_KWH_PER_LBS_PER_MWH: f64 = 0.453_592_37;

/// Renew the token after this long (WattTime tokens last about 30 min).
const TOKEN_LIFE_S: i64 = 25 * 60;
/// Longest `/v3/historical` request.
const HISTORICAL_CHUNK_S: i64 = 30 * 86_400;

const SIGNAL_TYPE: &str = "co2_moer";

/// A history tail missing from `/v3/historical` is filled from the forecast when it starts
/// less than this long ago (the historical data lags real time by minutes to hours).
const RECENT_TAIL_S: i64 = 24 * 3600;

/// Forecast points covering `[from, to)`: those overlapping it, and before the forecast's first
/// point (which starts at the present five minutes) its head value, re-timed to start at
/// `from`. All keep the `forecast` kind.
pub fn fill_tail(forecast: &[IntensityPoint], from: i64, to: i64) -> Vec<IntensityPoint> {
    let Some(head) = forecast.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let gap_end = head.start.min(to);
    if from < gap_end {
        let mut p = head.clone();
        p.start = from;
        p.end = gap_end;
        p.kind = PointKind::Forecast;
        p.source = format!("{} (forecast head)", head.source);
        out.push(p);
    }
    out.extend(
        forecast
            .iter()
            .filter(|p| p.end > from && p.start < to)
            .cloned(),
    );
    out
}

/// WattTime v3 client (marginal signal).
#[derive(Debug)]
pub struct WattTime {
    http: Http,
    base: String,
    username: String,
    password: String,
    token: Mutex<Option<(String, i64)>>,
}

/// lbs/MWh → g/kWh.
pub fn lbs_per_mwh_to_g_per_kwh(lbs_per_mwh: f64) -> f64 {
    lbs_per_mwh * G_PER_KWH_PER_LBS_PER_MWH
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

impl WattTime {
    pub fn new(base_url: &str, username: &str, password: &str, timeout: Duration) -> WattTime {
        WattTime {
            http: Http::new(NAME, timeout),
            base: trim_base(base_url),
            username: username.to_string(),
            password: password.to_string(),
            token: Mutex::new(None),
        }
    }

    fn auth_hint() -> String {
        format!("check {USERNAME_ENV} and {PASSWORD_ENV} (your WattTime account)")
    }

    fn login(&self) -> Result<String, ProviderError> {
        let basic = base64(format!("{}:{}", self.username, self.password).as_bytes());
        let resp = self.http.get(
            &format!("{}/login", self.base),
            &[("Authorization", &format!("Basic {basic}"))],
        )?;
        let body = check_status(NAME, resp, &AuthHint(&Self::auth_hint()), None)?;
        let v = json(NAME, &body)?;
        match v.get("token") {
            Some(Value::String(t)) if !t.is_empty() => Ok(t.clone()),
            Some(other) => Err(garbage(
                NAME,
                format!("login `token` is {}, expected a string", type_name(other)),
                &body,
            )),
            None => Err(garbage(NAME, "login answer has no `token`", &body)),
        }
    }

    fn token(&self, renew: bool) -> Result<String, ProviderError> {
        let now = now_unix();
        let mut guard = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if !renew {
            if let Some((t, at)) = guard.as_ref() {
                if now - at < TOKEN_LIFE_S {
                    return Ok(t.clone());
                }
            }
        }
        let t = self.login()?;
        *guard = Some((t.clone(), now));
        Ok(t)
    }

    /// GET a data endpoint with the bearer token, logging in again once on a 401 or 403.
    fn get(&self, path_and_query: &str, zone: &str, what: &str) -> Result<Value, ProviderError> {
        let url = format!("{}{path_and_query}", self.base);
        let mut resp = None;
        for renew in [false, true] {
            let token = self.token(renew)?;
            let r = self
                .http
                .get(&url, &[("Authorization", &format!("Bearer {token}"))])?;
            let retry = !matches!(r.status, 401 | 403);
            resp = Some(r);
            if retry {
                break;
            }
        }
        let Some(resp) = resp else {
            return Err(garbage(NAME, "no response", ""));
        };
        if resp.status == 403 {
            return Err(ProviderError::NotSupported {
                provider: NAME,
                what: format!(
                    "your WattTime plan does not give access to {what} for region {zone} (refused again after a fresh login, so not an expired token; free accounts get full data for CAISO_NORTH only); server said: {}",
                    super::excerpt(&resp.body, 120)
                ),
            });
        }
        if resp.status == 401 {
            return Err(ProviderError::Unauthorized {
                provider: NAME,
                status: 401,
                hint: format!(
                    "{} (a fresh token was refused too; server said: {})",
                    Self::auth_hint(),
                    super::excerpt(&resp.body, 120)
                ),
            });
        }
        let body = match check_status(NAME, resp, &AuthHint(&Self::auth_hint()), Some(zone)) {
            Err(ProviderError::BadRequest { excerpt, .. })
                if excerpt.to_ascii_lowercase().contains("region") =>
            {
                return Err(ProviderError::UnknownZone {
                    provider: NAME,
                    zone: zone.to_string(),
                    hint: format!("the provider said: {excerpt}; WattTime regions look like CAISO_NORTH, PJM_DC, ERCOT_EASTTX"),
                })
            }
            other => other?,
        };
        json(NAME, &body)
    }

    fn region(zone: &str) -> Result<&str, ProviderError> {
        let z = zone.trim();
        if z.is_empty() {
            return Err(ProviderError::UnknownZone {
                provider: NAME,
                zone: String::new(),
                hint: "give a WattTime region such as CAISO_NORTH".into(),
            });
        }
        Ok(z)
    }
}

/// Points of a `{data, meta}` body, sorted by start.
pub fn parse_moer(
    v: &Value,
    zone: &str,
    kind: PointKind,
) -> Result<Vec<IntensityPoint>, ProviderError> {
    let body = v.to_string();
    let meta = match v.get("meta") {
        None | Some(Value::Null) => None,
        Some(m @ Value::Object(_)) => Some(m),
        Some(other) => {
            return Err(garbage(
                NAME,
                format!("`meta` is {}, expected an object", type_name(other)),
                &body,
            ))
        }
    };
    let meta_str = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
    let (factor, unit_note) = match meta_str("units") {
        Some("lbs_co2_per_mwh") => (G_PER_KWH_PER_LBS_PER_MWH, ""),
        Some("g_co2_per_kwh") | Some("kg_co2_per_mwh") => (1.0, ""),
        Some(u) => {
            return Err(garbage(
                NAME,
                format!("unknown `meta.units` {u:?} (expected lbs_co2_per_mwh)"),
                &body,
            ))
        }
        None => (
            G_PER_KWH_PER_LBS_PER_MWH,
            " (units not given; assumed lbs_co2_per_mwh)",
        ),
    };
    if let Some(st) = meta_str("signal_type") {
        if st != SIGNAL_TYPE {
            return Err(garbage(
                NAME,
                format!("`meta.signal_type` is {st:?}, expected {SIGNAL_TYPE}"),
                &body,
            ));
        }
    }
    let period = match meta.and_then(|m| m.get("data_point_period_seconds")) {
        None | Some(Value::Null) => 300,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(p) if (1..=86_400).contains(&p) => p,
            _ => {
                return Err(garbage(
                    NAME,
                    "`meta.data_point_period_seconds` is not an integer between 1 and 86400",
                    &body,
                ))
            }
        },
        Some(other) => {
            return Err(garbage(
                NAME,
                format!(
                    "`meta.data_point_period_seconds` is {}, expected a number",
                    type_name(other)
                ),
                &body,
            ))
        }
    };
    let arr = match v.get("data") {
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(garbage(
                NAME,
                format!("`data` is {}, expected an array", type_name(other)),
                &body,
            ))
        }
        None => return Err(garbage(NAME, "no `data` array", &body)),
    };
    let source = format!("watttime {zone} {SIGNAL_TYPE}{unit_note}");
    let mut out = Vec::with_capacity(arr.len());
    for e in arr {
        let t = match e.get("point_time") {
            Some(Value::String(s)) => iso::parse(s).ok_or_else(|| {
                garbage(
                    NAME,
                    format!("`point_time` {s:?} is not an ISO 8601 time"),
                    &body,
                )
            })?,
            Some(other) => {
                return Err(garbage(
                    NAME,
                    format!("`point_time` is {}, expected a string", type_name(other)),
                    &body,
                ))
            }
            None => return Err(garbage(NAME, "a data point has no `point_time`", &body)),
        };
        let value = match e.get("value") {
            None | Some(Value::Null) => continue,
            Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
            Some(other) => {
                return Err(garbage(
                    NAME,
                    format!("`value` is {}, expected a number", type_name(other)),
                    &body,
                ))
            }
        };
        if !value.is_finite() || value < 0.0 {
            return Err(garbage(
                NAME,
                format!("`value` {value} is not a non-negative number"),
                &body,
            ));
        }
        out.push(IntensityPoint {
            start: t,
            end: t + period,
            g_per_kwh: value * factor,
            signal: Signal::Marginal,
            kind,
            source: source.clone(),
            estimation_method: None,
        });
    }
    Ok(super::sorted_unique(out))
}

impl IntensityProvider for WattTime {
    fn name(&self) -> &'static str {
        NAME
    }

    fn signal(&self) -> Signal {
        Signal::Marginal
    }

    fn latest(&self, zone: &str) -> Result<IntensityPoint, ProviderError> {
        let points = self.forecast(zone, Duration::from_secs(3600))?;
        let now = now_unix();
        points
            .iter()
            .find(|p| p.start <= now && now < p.end)
            .or(points.first())
            .cloned()
            .ok_or_else(|| ProviderError::Garbage {
                provider: NAME,
                what: format!("the forecast for {zone} has no data point"),
                excerpt: String::new(),
            })
    }

    fn history(
        &self,
        zone: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<IntensityPoint>, ProviderError> {
        let region = Self::region(zone)?;
        let mut points = super::chunked_history(from, to, HISTORICAL_CHUNK_S, |a, b| {
            let path = format!(
                "/v3/historical?region={}&start={}&end={}&signal_type={SIGNAL_TYPE}",
                encode(region),
                encode(&iso::format(a)),
                encode(&iso::format(b))
            );
            let v = self.get(&path, region, "/v3/historical")?;
            parse_moer(&v, region, PointKind::Actual)
        })?;
        let tail_from = points.last().map_or(from, |p| p.end.max(from));
        if tail_from < to && tail_from >= now_unix() - RECENT_TAIL_S {
            // Not published yet: the head of the forecast stands in (marked forecast). A
            // forecast that cannot be had leaves the tail uncovered, as before.
            if let Ok(f) = self.forecast(region, Duration::from_secs(3600)) {
                points.extend(fill_tail(&f, tail_from, to));
            }
        }
        Ok(points)
    }

    fn forecast(
        &self,
        zone: &str,
        horizon: Duration,
    ) -> Result<Vec<IntensityPoint>, ProviderError> {
        let region = Self::region(zone)?;
        let hours = horizon.as_secs().div_ceil(3600).clamp(1, 72);
        let path = format!(
            "/v3/forecast?region={}&signal_type={SIGNAL_TYPE}&horizon_hours={hours}",
            encode(region)
        );
        let v = self.get(&path, region, "/v3/forecast")?;
        let mut points = parse_moer(&v, region, PointKind::Forecast)?;
        let now = now_unix();
        let until = now.saturating_add(i64::try_from(horizon.as_secs()).unwrap_or(i64::MAX));
        points.retain(|p| p.end > now && p.start < until);
        Ok(points)
    }
}
