//! Typed physical units. Energy is the canonical quantity; power is derived.
//!
//! Every value that crosses a module boundary carries its unit in its type, so that a
//! power can never be added to an energy by mistake.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Div, Mul, Sub};
use std::time::Duration;

/// Joules per kilowatt-hour.
pub const JOULES_PER_KWH: f64 = 3.6e6;

macro_rules! unit {
    ($name:ident, $sym:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub f64);

        impl $name {
            pub const ZERO: $name = $name(0.0);
            pub fn value(self) -> f64 {
                self.0
            }
            pub fn is_finite(self) -> bool {
                self.0.is_finite()
            }
        }
        impl Add for $name {
            type Output = $name;
            fn add(self, o: $name) -> $name {
                $name(self.0 + o.0)
            }
        }
        impl AddAssign for $name {
            fn add_assign(&mut self, o: $name) {
                self.0 += o.0;
            }
        }
        impl Sub for $name {
            type Output = $name;
            fn sub(self, o: $name) -> $name {
                $name(self.0 - o.0)
            }
        }
        impl Mul<f64> for $name {
            type Output = $name;
            fn mul(self, k: f64) -> $name {
                $name(self.0 * k)
            }
        }
        impl std::iter::Sum for $name {
            /// Starts from +0: an empty sum is `0`, not the `-0.0` of `f64`'s own `Sum`
            /// (which then shows as `-0` in every output).
            fn sum<I: Iterator<Item = $name>>(iter: I) -> $name {
                $name(iter.fold(0.0, |acc, v| acc + v.0))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if let Some(p) = f.precision() {
                    write!(f, "{:.*} {}", p, self.0, $sym)
                } else {
                    write!(f, "{} {}", self.0, $sym)
                }
            }
        }
    };
}

unit!(Joules, "J", "Energy in joules.");
unit!(Watts, "W", "Power in watts.");
unit!(KilowattHours, "kWh", "Energy in kilowatt-hours.");
unit!(GramsCo2e, "gCO2e", "Mass of CO2-equivalent in grams.");
unit!(
    GramsPerKwh,
    "gCO2e/kWh",
    "Carbon intensity of electricity in grams CO2e per kWh."
);

impl Joules {
    pub fn from_microjoules(uj: u64) -> Joules {
        Joules(uj as f64 * 1e-6)
    }
    pub fn from_millijoules(mj: u64) -> Joules {
        Joules(mj as f64 * 1e-3)
    }
    pub fn kwh(self) -> KilowattHours {
        KilowattHours(self.0 / JOULES_PER_KWH)
    }
    /// Average power over `d`; zero for a zero-length interval.
    pub fn over(self, d: Duration) -> Watts {
        let s = d.as_secs_f64();
        if s > 0.0 {
            Watts(self.0 / s)
        } else {
            Watts::ZERO
        }
    }
}

impl KilowattHours {
    pub fn joules(self) -> Joules {
        Joules(self.0 * JOULES_PER_KWH)
    }
}

impl Watts {
    pub fn from_milliwatts(mw: u32) -> Watts {
        Watts(mw as f64 * 1e-3)
    }
    /// Energy of this constant power held for `d`.
    pub fn for_duration(self, d: Duration) -> Joules {
        Joules(self.0 * d.as_secs_f64())
    }
}

impl Mul<GramsPerKwh> for KilowattHours {
    type Output = GramsCo2e;
    fn mul(self, i: GramsPerKwh) -> GramsCo2e {
        GramsCo2e(self.0 * i.0)
    }
}

impl GramsCo2e {
    pub fn kg(self) -> f64 {
        self.0 / 1000.0
    }
}

impl Div<f64> for Joules {
    type Output = Joules;
    fn div(self, k: f64) -> Joules {
        Joules(self.0 / k)
    }
}

/// Error from parsing a duration string.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid duration `{input}`: {reason}; use a number with a unit, e.g. `100ms`, `1s`, `90m`, `72h`, `14.8d`, `6y`, or plain seconds")]
pub struct DurationParseError {
    pub input: String,
    pub reason: String,
}

/// Parse a human duration: `100ms`, `1.5s`, `90m`, `72h`, `14.8d`, `1w`, `6y`
/// (365.25 days), or a bare number of seconds. Negative, NaN and infinite values are errors.
pub fn parse_duration(input: &str) -> Result<Duration, DurationParseError> {
    let err = |reason: &str| DurationParseError {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| err(&format!("`{num}` is not a number")))?;
    let factor = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "week" | "weeks" => 604_800.0,
        "y" | "yr" | "year" | "years" => 365.25 * 86_400.0,
        other => return Err(err(&format!("unknown unit `{other}`"))),
    };
    let secs = value * factor;
    if !secs.is_finite() {
        return Err(err("it is not finite"));
    }
    if secs < 0.0 {
        return Err(err("it is negative"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| err("it is out of range"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_sum_is_zero_not_negative_zero() {
        let e: Joules = std::iter::empty().sum();
        assert!(e.0 == 0.0 && e.0.is_sign_positive(), "{e:?}");
        let w: Watts = [Watts(-0.0)].into_iter().sum();
        assert!(w.0.is_sign_positive());
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(
            parse_duration("72h").unwrap(),
            Duration::from_secs(72 * 3600)
        );
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        let d = parse_duration("14.8d").unwrap().as_secs_f64();
        assert!((d - 14.8 * 86400.0).abs() < 1e-6);
        for bad in ["3x", "", "-1s", "abc", "NaNs", "1e400s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.to_string().contains("invalid duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn unit_arithmetic() {
        let e = Joules(3.6e6);
        assert_eq!(e.kwh(), KilowattHours(1.0));
        assert_eq!(KilowattHours(2.0) * GramsPerKwh(475.0), GramsCo2e(950.0));
        assert_eq!(
            Watts(10.0).for_duration(Duration::from_secs(3)),
            Joules(30.0)
        );
        assert_eq!(Joules(30.0).over(Duration::from_secs(3)), Watts(10.0));
        assert_eq!(Joules(1.0).over(Duration::ZERO), Watts(0.0));
        assert_eq!(format!("{:.1}", Watts(2.25)), "2.2 W");
    }
}

/// `x` rounded to `digits` significant digits (the project's one rounding policy for recorded
/// values), without `-0`: `131.99999999999997` → `132`, `0.000123456789` → `0.000123457` (6).
/// Non-finite values are returned unchanged.
pub fn round_sig(x: f64, digits: u32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return if x == 0.0 { 0.0 } else { x };
    }
    let digits = digits.clamp(1, 17) as i32;
    let mag = x.abs().log10().floor() as i32;
    let p = digits - 1 - mag;
    // Round through the decimal text: exact to the digit, no binary scaling error.
    let s = if p >= 0 {
        format!("{:.*}", p.min(40) as usize, x)
    } else {
        let f = 10f64.powi(-p);
        format!("{}", (x / f).round() * f)
    };
    let r: f64 = s.parse().unwrap_or(x);
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// Significant digits kept for intensities and emissions written to a record.
pub const RECORD_DIGITS: u32 = 6;

#[cfg(test)]
mod round_sig_tests {
    use super::round_sig;

    #[test]
    fn rounds_to_significant_digits_without_negative_zero() {
        assert_eq!(round_sig(131.999_999_999_999_97, 6), 132.0);
        assert_eq!(round_sig(0.000_123_456_789, 6), 0.000_123_457);
        assert_eq!(round_sig(123_456_789.0, 3), 123_000_000.0);
        assert_eq!(round_sig(-0.000_000_1, 1), -0.000_000_1);
        let z = round_sig(-0.0, 6);
        assert!(z == 0.0 && z.is_sign_positive());
        assert!(round_sig(f64::NAN, 6).is_nan());
        assert_eq!(round_sig(453.592_37, 6), 453.592);
    }
}
