//! What a CodeCarbon import keeps beyond the run record's own fields, and the time zone its
//! local timestamps are read in.
//!
//! CodeCarbon columns wattprint has no field for (water, WUE, OS, Python and CodeCarbon versions,
//! utilisation, RAM used, coordinates) and columns it does not know at all are kept in the record
//! under `imported.codecarbon` (column → text, as in the file), written back by the CodeCarbon
//! export, and the import says which columns it did not understand.

use std::collections::BTreeMap;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// CodeCarbon 3.3.2 columns with no run-record field: kept as text.
pub const KEPT: [&str; 11] = [
    "water_consumed",
    "wue",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_utilization_percent",
    "gpu_utilization_percent",
    "ram_utilization_percent",
    "ram_used_gb",
    "longitude",
    "latitude",
];

/// At most this many unknown columns are kept per row, each value at most [`MAX_VALUE`] bytes.
pub const MAX_UNKNOWN: usize = 64;
pub const MAX_VALUE: usize = 1000;

/// Header columns that are not CodeCarbon 3.3.2's (bounded to [`MAX_UNKNOWN`]).
pub fn unknown_columns<'a>(headers: impl Iterator<Item = &'a str>) -> Vec<String> {
    headers
        .map(|h| h.trim().trim_start_matches('\u{feff}'))
        .filter(|h| !h.is_empty() && !crate::interchange::CODECARBON_COLUMNS.contains(h))
        .take(MAX_UNKNOWN)
        .map(str::to_string)
        .collect()
}

/// The kept values of one row: the [`KEPT`] and unknown columns that are not empty.
pub fn kept(get: impl Fn(&str) -> String, unknown: &[String]) -> BTreeMap<String, String> {
    KEPT.iter()
        .map(|c| c.to_string())
        .chain(unknown.iter().cloned())
        .filter_map(|c| {
            let v = get(&c);
            let v = v.trim();
            if v.is_empty() || v.eq_ignore_ascii_case("nan") {
                return None;
            }
            let v: String = v.chars().take(MAX_VALUE).collect();
            Some((c, v))
        })
        .collect()
}

/// How to read a timestamp without offset (CodeCarbon writes local time).
pub enum ImportZone<'a> {
    /// A fixed offset (`--timezone +02:00`, `UTC`).
    Fixed(UtcOffset),
    /// The machine's zone, with daylight saving: the front end gives the offset in force at a
    /// local date and time (a library does not read the environment).
    Local {
        label: String,
        offset_at: Box<dyn Fn(PrimitiveDateTime) -> Option<UtcOffset> + 'a>,
    },
}

impl ImportZone<'_> {
    /// UTC.
    pub fn utc() -> ImportZone<'static> {
        ImportZone::Fixed(UtcOffset::UTC)
    }

    /// `local` (the time read in this zone) and how it was read, for the record's warning.
    pub fn resolve(&self, local: PrimitiveDateTime) -> Result<(OffsetDateTime, String), String> {
        let off = match self {
            ImportZone::Fixed(o) => *o,
            ImportZone::Local { offset_at, .. } => offset_at(local).ok_or_else(|| {
                format!(
                    "the machine's time zone gives no offset for {local}; give --timezone +HH:MM"
                )
            })?,
        };
        let label = match self {
            ImportZone::Fixed(o) if *o == UtcOffset::UTC => "UTC (--timezone)".to_string(),
            ImportZone::Fixed(_) => "the offset given with --timezone".to_string(),
            ImportZone::Local { label, .. } => format!("this machine's time zone ({label})"),
        };
        Ok((
            local.assume_offset(off).to_offset(UtcOffset::UTC),
            format!("{label}, UTC{}", fmt_offset(off)),
        ))
    }
}

/// `+02:00`.
pub fn fmt_offset(o: UtcOffset) -> String {
    let (h, m, _) = o.as_hms();
    format!(
        "{}{:02}:{:02}",
        if o.is_negative() { '-' } else { '+' },
        h.unsigned_abs(),
        m.unsigned_abs()
    )
}

/// `UTC`, `Z`, `+02:00`, `-0530`, `+2`: a fixed offset; anything else is an error naming what
/// is accepted (IANA names such as Europe/Paris are not: give the offset, or `local`).
pub fn parse_offset(s: &str) -> Result<UtcOffset, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") || t == "+00:00" {
        return Ok(UtcOffset::UTC);
    }
    let bad = || {
        format!(
            "`{t}` is not an offset: give +HH:MM or -HH:MM (e.g. +02:00), UTC, or local (IANA names such as Europe/Paris are not read)"
        )
    };
    let (sign, rest) = match t.chars().next() {
        Some('+') => (1i8, &t[1..]),
        Some('-') => (-1i8, &t[1..]),
        _ => return Err(bad()),
    };
    let all_digits = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_digit());
    // H, HH, HHMM or HH:MM
    let (hs, ms) = match rest.split_once(':') {
        Some((a, b)) if a.len() <= 2 && b.len() == 2 => (a, b),
        Some(_) => return Err(bad()),
        None if rest.len() <= 2 => (rest, "00"),
        None if rest.len() == 4 => rest.split_at(2),
        None => return Err(bad()),
    };
    if !all_digits(hs) || !all_digits(ms) {
        return Err(bad());
    }
    let h: i8 = hs.parse().map_err(|_| bad())?;
    let m: i8 = ms.parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    UtcOffset::from_hms(sign * h, sign * m, 0).map_err(|_| bad())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("UTC").unwrap(), UtcOffset::UTC);
        assert_eq!(fmt_offset(parse_offset("+02:00").unwrap()), "+02:00");
        assert_eq!(fmt_offset(parse_offset("-0530").unwrap()), "-05:30");
        assert_eq!(fmt_offset(parse_offset("+2").unwrap()), "+02:00");
        for bad in ["Europe/Paris", "+25:00", "02:00", "+", "+1:2:3", ""] {
            assert!(parse_offset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kept_values_are_bounded() {
        let long = "x".repeat(5000);
        let k = kept(
            |c| match c {
                "os" => "Linux".into(),
                "wue" => "nan".into(),
                "mystery" => long.clone(),
                _ => String::new(),
            },
            &["mystery".to_string()],
        );
        assert_eq!(k.get("os").unwrap(), "Linux");
        assert!(!k.contains_key("wue"));
        assert_eq!(k.get("mystery").unwrap().len(), MAX_VALUE);
    }
}
