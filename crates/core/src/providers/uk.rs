//! The GB Carbon Intensity API (NESO, `api.carbonintensity.org.uk`): average intensity of the
//! GB grid, half-hourly, national or regional. No key; CC BY 4.0.
//!
//! Zones: `GB` (also `UK`, `national`) for the national series; `regionid:N` (1–17 DNO
//! areas and nations, 18 = GB regional model), `england`, `scotland`, `wales` (regions 15–17),
//! or `postcode:RG10` (an outward postcode).
//!
//! Endpoints:
//! * national: `GET /intensity` (current half hour), `GET /intensity/{from}/fw48h` (forecast),
//!   `GET /intensity/{from}/{to}` (range) → `{"data":[{"from","to","intensity":{"forecast",
//!   "actual","index"}}]}`;
//! * regional: `GET /regional/regionid/{N}` or `/regional/postcode/{P}` (current),
//!   `GET /regional/intensity/{from}/fw48h/regionid/{N}` (forecast),
//!   `GET /regional/intensity/{from}/{to}/regionid/{N}` (range) →
//!   `{"data":[{"regionid","dnoregion","shortname","data":[{"from","to","intensity":{"forecast",
//!   "index"},"generationmix":[…]}]}]}`; the windowed endpoints answer `data` as one object
//!   instead of an array, and both are accepted.
//!
//! A national period's value is `actual` when published, else `forecast` (marked as a forecast
//! point). Regional data has forecasts only and never gets `actual` values
//! ([`IntensityProvider::publishes_actuals`] is false for regional zones).

use super::http::{check_status, encode, garbage, json, trim_base, AuthHint, Http};
use super::{iso, now_unix, IntensityPoint, IntensityProvider, PointKind, ProviderError, Signal};
use serde_json::Value;
use std::time::Duration;

const NAME: &str = "uk";

/// Public base URL.
pub const DEFAULT_URL: &str = "https://api.carbonintensity.org.uk";
/// Environment variable overriding the base URL.
pub const URL_ENV: &str = "WATTPRINT_UK_CI_URL";

/// Longest range asked in one request.
const RANGE_CHUNK_S: i64 = 7 * 86_400;

/// Which part of GB a zone names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UkArea {
    National,
    Region(u8),
    Postcode(String),
}

const ZONE_HINT: &str = "use GB (national), regionid:N (1-18), england, scotland, wales, or postcode:OUTWARD (e.g. postcode:RG10)";

/// Parses a zone for this API (see the module doc).
pub fn parse_area(zone: &str) -> Result<UkArea, ProviderError> {
    let z = zone.trim().to_ascii_lowercase();
    let unknown = || ProviderError::UnknownZone {
        provider: NAME,
        zone: zone.to_string(),
        hint: ZONE_HINT.into(),
    };
    match z.as_str() {
        "" | "gb" | "uk" | "national" => return Ok(UkArea::National),
        "england" => return Ok(UkArea::Region(15)),
        "scotland" => return Ok(UkArea::Region(16)),
        "wales" => return Ok(UkArea::Region(17)),
        _ => {}
    }
    if let Some(n) = z
        .strip_prefix("regionid:")
        .or_else(|| z.strip_prefix("region:"))
    {
        return match n.parse::<u8>() {
            Ok(n) if (1..=18).contains(&n) => Ok(UkArea::Region(n)),
            _ => Err(unknown()),
        };
    }
    if let Some(p) = z.strip_prefix("postcode:") {
        let p = p.trim().to_ascii_uppercase();
        let ok = (2..=4).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_alphanumeric())
            && p.as_bytes()[0].is_ascii_alphabetic();
        return if ok {
            Ok(UkArea::Postcode(p))
        } else {
            Err(unknown())
        };
    }
    Err(unknown())
}

/// GB Carbon Intensity API client.
#[derive(Debug, Clone)]
pub struct UkCarbonIntensity {
    http: Http,
    base: String,
}

impl UkCarbonIntensity {
    pub fn new(base_url: &str, timeout: Duration) -> UkCarbonIntensity {
        UkCarbonIntensity {
            http: Http::new(NAME, timeout),
            base: trim_base(base_url),
        }
    }

    fn get(&self, path: &str, zone: &str) -> Result<Value, ProviderError> {
        let url = format!("{}{path}", self.base);
        let resp = self.http.get(&url, &[])?;
        let body = check_status(
            NAME,
            resp,
            &AuthHint(
                "the Carbon Intensity API needs no key; check WATTPRINT_UK_CI_URL points at it",
            ),
            Some(zone),
        )?;
        let v = json(NAME, &body)?;
        if v.get("error").is_some() && v.get("data").is_none() {
            // The API reports some errors as 200 + {"error":{"code","message"}}.
            return Err(garbage(NAME, "the API answered an error object", &body));
        }
        Ok(v)
    }

    /// The window-path suffix for an area (`""`, `/regionid/N`, `/postcode/P`).
    fn suffix(area: &UkArea) -> String {
        match area {
            UkArea::National => String::new(),
            UkArea::Region(n) => format!("/regionid/{n}"),
            UkArea::Postcode(p) => format!("/postcode/{}", encode(p)),
        }
    }

    fn windowed(&self, zone: &str, area: &UkArea, tail: &str) -> Result<Value, ProviderError> {
        let path = match area {
            UkArea::National => format!("/intensity/{tail}"),
            _ => format!("/regional/intensity/{tail}{}", Self::suffix(area)),
        };
        self.get(&path, zone)
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

/// `data` as a list of items (an array, or one object).
fn items<'a>(v: &'a Value, body: &str) -> Result<Vec<&'a Value>, ProviderError> {
    match v.get("data") {
        Some(Value::Array(a)) => Ok(a.iter().collect()),
        Some(o @ Value::Object(_)) => Ok(vec![o]),
        Some(other) => Err(garbage(
            NAME,
            format!(
                "`data` is {}, expected an array or an object",
                type_name(other)
            ),
            body,
        )),
        None => Err(garbage(NAME, "no `data` field", body)),
    }
}

/// Parses national or regional bodies into points, sorted by start.
fn parse_points(v: &Value, area: &UkArea) -> Result<Vec<IntensityPoint>, ProviderError> {
    let body = v.to_string();
    let mut periods: Vec<(&Value, String)> = Vec::new();
    let base_source = match area {
        UkArea::National => "uk national".to_string(),
        UkArea::Region(n) => format!("uk regionid {n}"),
        UkArea::Postcode(p) => format!("uk postcode {p}"),
    };
    for item in items(v, &body)? {
        if item.get("intensity").is_some() {
            periods.push((item, base_source.clone()));
        } else if item.get("data").is_some() {
            // A region wrapping its periods.
            let mut source = base_source.clone();
            if let Some(name) = item.get("shortname").and_then(Value::as_str) {
                source = format!("{source} ({name})");
            }
            for p in items(item, &body)? {
                periods.push((p, source.clone()));
            }
        } else {
            return Err(garbage(
                NAME,
                "an item has neither `intensity` nor `data`",
                &body,
            ));
        }
    }
    let mut out = Vec::with_capacity(periods.len());
    for (p, source) in periods {
        let time = |key: &str| -> Result<i64, ProviderError> {
            match p.get(key) {
                Some(Value::String(s)) => iso::parse(s).ok_or_else(|| {
                    garbage(
                        NAME,
                        format!("`{key}` {s:?} is not an ISO 8601 time"),
                        &body,
                    )
                }),
                Some(other) => Err(garbage(
                    NAME,
                    format!("`{key}` is {}, expected a string", type_name(other)),
                    &body,
                )),
                None => Err(garbage(NAME, format!("a period has no `{key}`"), &body)),
            }
        };
        let (start, end) = (time("from")?, time("to")?);
        let intensity = match p.get("intensity") {
            Some(o @ Value::Object(_)) => o,
            Some(other) => {
                return Err(garbage(
                    NAME,
                    format!("`intensity` is {}, expected an object", type_name(other)),
                    &body,
                ))
            }
            None => return Err(garbage(NAME, "a period has no `intensity`", &body)),
        };
        let number = |key: &str| -> Result<Option<f64>, ProviderError> {
            match intensity.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => match n.as_f64() {
                    Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
                    _ => Err(garbage(
                        NAME,
                        format!("`intensity.{key}` is not a non-negative number"),
                        &body,
                    )),
                },
                Some(other) => Err(garbage(
                    NAME,
                    format!(
                        "`intensity.{key}` is {}, expected a number",
                        type_name(other)
                    ),
                    &body,
                )),
            }
        };
        let (value, kind) = match (number("actual")?, number("forecast")?) {
            (Some(a), _) => (a, PointKind::Actual),
            (None, Some(f)) => (f, PointKind::Forecast),
            (None, None) => continue,
        };
        if end <= start {
            return Err(garbage(
                NAME,
                format!("a period ends ({end}) before it starts ({start})"),
                &body,
            ));
        }
        out.push(IntensityPoint {
            start,
            end,
            g_per_kwh: value,
            signal: Signal::Average,
            kind,
            source,
            estimation_method: None,
        });
    }
    Ok(super::sorted_unique(out))
}

impl IntensityProvider for UkCarbonIntensity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn signal(&self) -> Signal {
        Signal::Average
    }

    /// Only the national series gets `actual` values; regional series are forecasts only.
    fn publishes_actuals(&self, zone: &str) -> bool {
        matches!(parse_area(zone), Ok(UkArea::National))
    }

    fn latest(&self, zone: &str) -> Result<IntensityPoint, ProviderError> {
        let area = parse_area(zone)?;
        let path = match &area {
            UkArea::National => "/intensity".to_string(),
            UkArea::Region(n) => format!("/regional/regionid/{n}"),
            UkArea::Postcode(p) => format!("/regional/postcode/{}", encode(p)),
        };
        let v = self.get(&path, zone)?;
        let points = parse_points(&v, &area)?;
        let now = now_unix();
        // The period containing now, else the last one.
        points
            .iter()
            .find(|p| p.start <= now && now < p.end)
            .or(points.last())
            .cloned()
            .ok_or_else(|| garbage(NAME, "no period with a value", &v.to_string()))
    }

    fn history(
        &self,
        zone: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<IntensityPoint>, ProviderError> {
        let area = parse_area(zone)?;
        if to <= from {
            return Ok(Vec::new());
        }
        super::chunked_history(from, to, RANGE_CHUNK_S, |a, b| {
            // Minute resolution in the path: round the end up so the last period is included.
            let tail = format!("{}/{}", iso::format_minutes(a), iso::format_minutes(b + 59));
            let v = self.windowed(zone, &area, &tail)?;
            parse_points(&v, &area)
        })
    }

    fn forecast(
        &self,
        zone: &str,
        horizon: Duration,
    ) -> Result<Vec<IntensityPoint>, ProviderError> {
        let area = parse_area(zone)?;
        let now = now_unix();
        let tail = format!("{}/fw48h", iso::format_minutes(now));
        let v = self.windowed(zone, &area, &tail)?;
        let mut points = parse_points(&v, &area)?;
        let until = now.saturating_add(i64::try_from(horizon.as_secs()).unwrap_or(i64::MAX));
        points.retain(|p| p.end > now && p.start < until);
        Ok(points)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn zones() {
        assert_eq!(parse_area("GB").unwrap(), UkArea::National);
        assert_eq!(parse_area("uk").unwrap(), UkArea::National);
        assert_eq!(parse_area("regionid:13").unwrap(), UkArea::Region(13));
        assert_eq!(parse_area("Scotland").unwrap(), UkArea::Region(16));
        assert_eq!(
            parse_area("postcode:rg10").unwrap(),
            UkArea::Postcode("RG10".into())
        );
        for bad in [
            "regionid:0",
            "regionid:19",
            "postcode:../x",
            "FR",
            "postcode:1AB",
        ] {
            assert!(
                matches!(parse_area(bad), Err(ProviderError::UnknownZone { .. })),
                "{bad}"
            );
        }
    }
}
