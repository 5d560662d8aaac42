//! Minimal ISO 8601 / RFC 3339 and IMF-fixdate (HTTP date) handling for provider timestamps,
//! without a date library: `2018-01-20T12:00Z` (UK API, no seconds),
//! `2024-05-01T12:00:00.000Z` (Electricity Maps), `2024-05-01T12:00:00+00:00` (WattTime),
//! `Wed, 21 Oct 2015 07:28:00 GMT` (Retry-After).

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DD[T ]HH:MM[:SS[.fff…]](Z|±HH:MM|±HHMM|±HH)` into unix seconds (fractions
/// are truncated). A date without a time means midnight UTC. `None` when malformed.
pub fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_ascii() || s.len() < 10 {
        return None;
    }
    let (date, rest) = s.split_at(10);
    let mut dp = date.split('-');
    let (y, m, d) = (num(dp.next()?)?, num(dp.next()?)?, num(dp.next()?)?);
    if dp.next().is_some() || date.as_bytes()[4] != b'-' || !(1..=12).contains(&m) {
        return None;
    }
    if !(1..=days_in_month(y, m)).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    if rest.is_empty() {
        return Some(days * 86_400);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    // Split the offset off the end.
    let (clock, offset_s) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, off) = rest.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let off = off[1..].replace(':', "");
        let (oh, om) = match off.len() {
            2 => (num(&off)?, 0),
            4 => (num(&off[..2])?, num(&off[2..])?),
            _ => return None,
        };
        if oh > 23 || om > 59 {
            return None;
        }
        (c, sign * (oh * 3600 + om * 60))
    } else {
        // No offset: taken as UTC (the providers all speak UTC).
        (rest, 0)
    };
    let mut cp = clock.split(':');
    let h = num(cp.next()?)?;
    let mi = num(cp.next()?)?;
    let sec = match cp.next() {
        None => 0,
        Some(sv) => {
            let whole = sv.split('.').next()?;
            if let Some(frac) = sv.split('.').nth(1) {
                num(frac)?;
            }
            num(whole)?
        }
    };
    if cp.next().is_some() || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset_s)
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        (s % 3600) / 60,
        s % 60
    )
}

/// `YYYY-MM-DDTHH:MMZ` (the UK Carbon Intensity API's path format; seconds dropped).
pub fn format_minutes(t: i64) -> String {
    let full = format(t);
    format!("{}Z", &full[..16])
}

/// Parses an IMF-fixdate (`Wed, 21 Oct 2015 07:28:00 GMT`) into unix seconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?;
    let d = num(it.next()?)?;
    let m = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let y = num(it.next()?)?;
    let clock = it.next()?;
    if it.next()? != "GMT" {
        return None;
    }
    parse(&format!("{y:04}-{m:02}-{d:02}T{clock}Z"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_provider_formats() {
        assert_eq!(parse("1970-01-01T00:00Z"), Some(0));
        assert_eq!(parse("2018-01-20T12:00Z"), Some(1_516_449_600));
        assert_eq!(parse("2018-01-20T12:00:00.000Z"), Some(1_516_449_600));
        assert_eq!(parse("2018-01-20T12:00:00+00:00"), Some(1_516_449_600));
        assert_eq!(parse("2018-01-20T13:00:00+01:00"), Some(1_516_449_600));
        assert_eq!(parse("2018-01-20T07:00:00-0500"), Some(1_516_449_600));
        assert_eq!(parse("2018-01-20"), Some(1_516_406_400));
        assert_eq!(parse("2024-02-29T00:00Z"), Some(1_709_164_800));
        for bad in [
            "",
            "2018-13-01T00:00Z",
            "2023-02-29T00:00Z",
            "2018-01-20T25:00Z",
            "2018-01-20X12:00Z",
            "yesterday",
            "2018-01-20T12:00:00+5",
            "2018-01-2aT12:00Z",
            "２０１８-01-20",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for t in [0, 1_516_449_600, 1_709_164_800 + 3599, 4_102_444_800] {
            assert_eq!(parse(&format(t)), Some(t));
        }
        assert_eq!(format(1_516_449_600), "2018-01-20T12:00:00Z");
        assert_eq!(format_minutes(1_516_449_659), "2018-01-20T12:00Z");
    }

    #[test]
    fn parses_http_dates() {
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
        assert_eq!(parse_http_date("Wed, 21 Oct 2015 07:28:00 CET"), None);
        assert_eq!(parse_http_date("120"), None);
    }
}
