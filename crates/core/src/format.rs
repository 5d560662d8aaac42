//! The one way figures are written for people (summary, `show`, `runs`, `projects`, reports,
//! `estimate`, limit messages): every figure is rounded to [`SIG_DIGITS`] significant digits,
//! with its unit chosen by magnitude, and never written as `-0`.
//!
//! - significant digits, not fixed decimals: `179 gCO2e/kWh`, `0.0123 kWh` → `12.3 Wh`; whole
//!   numbers of more digits keep them all (`12346 kWh`, not `1.23e4`);
//! - energy: J below 1 Wh, Wh below 1 kWh, kWh above (`842 J`, `3.51 Wh`, `12.3 kWh`);
//! - mass of CO2e: mg below 1 g, g below 1 kg, kg above (`0.412 mg`, `18.5 g`, `3.20 kg`);
//! - power: W below 1 kW, kW above;
//! - a value that rounds to zero, is `-0`, or is below a millionth of its unit, is `0`; one that
//!   is not finite is `n/a`.
//!
//! Machine-readable outputs (JSON, CSV) keep full precision; they only go through [`no_neg_zero`].

/// Significant digits of every figure written for people.
pub const SIG_DIGITS: u32 = 3;

/// Magnitudes below this (in the unit shown) are written `0`.
pub const TINY: f64 = 1e-6;

/// `x` without a negative zero (`-0.0` → `0.0`); any other value unchanged.
pub fn no_neg_zero(x: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x
    }
}

/// `x` rounded to `digits` significant digits (at least 1), in plain decimal notation.
pub fn sig_digits(x: f64, digits: u32) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let digits = digits.max(1) as i32;
    // below a millionth of the unit shown, a figure is noise (and its text would be long)
    if x.abs() < TINY {
        return "0".into();
    }
    let mag = x.abs().log10().floor() as i32;
    // decimals after the point so that `digits` significant digits show (none for big numbers)
    let mut decimals = (digits - 1 - mag).max(0);
    let mut s = format!("{:.*}", decimals as usize, x);
    // rounding may carry into a new digit (9.995 → 10.00): one decimal fewer then
    let shown_mag = s
        .trim_start_matches('-')
        .parse::<f64>()
        .map(|v| {
            if v > 0.0 {
                v.log10().floor() as i32
            } else {
                mag
            }
        })
        .unwrap_or(mag);
    if shown_mag > mag && decimals > 0 {
        decimals -= 1;
        s = format!("{:.*}", decimals as usize, x);
    }
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        return "0".into();
    }
    s
}

/// `x` to [`SIG_DIGITS`] significant digits.
pub fn sig(x: f64) -> String {
    sig_digits(x, SIG_DIGITS)
}

/// Energy given in kWh, in J, Wh or kWh by magnitude.
pub fn energy_kwh(kwh: f64) -> String {
    let wh = kwh * 1000.0;
    if !kwh.is_finite() {
        "n/a".into()
    } else if wh.abs() < 1.0 {
        format!("{} J", sig(wh * 3600.0))
    } else if kwh.abs() < 1.0 {
        format!("{} Wh", sig(wh))
    } else {
        format!("{} kWh", sig(kwh))
    }
}

/// Mass of CO2e given in kg, in mg, g or kg by magnitude (the caller appends `CO2e`).
pub fn mass_kg(kg: f64) -> String {
    if !kg.is_finite() {
        "n/a".into()
    } else if kg.abs() < 0.001 {
        format!("{} mg", sig(kg * 1e6))
    } else if kg.abs() < 1.0 {
        format!("{} g", sig(kg * 1000.0))
    } else {
        format!("{} kg", sig(kg))
    }
}

/// Power in W or kW by magnitude.
pub fn power_w(w: f64) -> String {
    if w.is_finite() && w.abs() >= 1000.0 {
        format!("{} kW", sig(w / 1000.0))
    } else {
        format!("{} W", sig(w))
    }
}

/// Carbon intensity, gCO2e/kWh.
pub fn intensity(g_per_kwh: f64) -> String {
    format!("{} gCO2e/kWh", sig(g_per_kwh))
}

/// A fraction as a percentage (`0.1234` → `12.3 %`).
pub fn percent(fraction: f64) -> String {
    format!("{} %", sig(fraction * 100.0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn significant_digits() {
        assert_eq!(sig(179.064206313), "179");
        assert_eq!(sig(0.5), "0.500");
        assert_eq!(sig(12.34), "12.3");
        assert_eq!(sig(9.996), "10.0");
        assert_eq!(sig(99.96), "100");
        assert_eq!(sig(0.0009996), "0.00100");
        assert_eq!(sig(12345.6), "12346");
        assert_eq!(sig(-2.5e-3), "-0.00250");
        assert_eq!(sig(f64::NAN), "n/a");
        assert_eq!(sig(f64::INFINITY), "n/a");
        assert_eq!(sig(1e300).len(), 301);
        assert_eq!(sig(-1e-20), "0");
        assert_eq!(sig(1.5e-6), "0.00000150");
    }

    #[test]
    fn never_negative_zero() {
        for x in [-0.0, 0.0, -1e-300, -f64::MIN_POSITIVE] {
            let s = sig(x);
            assert!(
                !s.starts_with('-') || s.trim_start_matches('-') != "0",
                "{x}: {s}"
            );
        }
        assert_eq!(sig(-0.0), "0");
        assert_eq!(energy_kwh(-0.0), "0 J");
        assert_eq!(mass_kg(-0.0), "0 mg");
        assert_eq!(no_neg_zero(-0.0).to_string(), "0");
        assert_eq!(no_neg_zero(-1.5), -1.5);
    }

    #[test]
    fn units_by_magnitude() {
        assert_eq!(energy_kwh(12.0 / 3.6e6), "12.0 J");
        assert_eq!(energy_kwh(0.0005), "1800 J");
        assert_eq!(energy_kwh(0.0123), "12.3 Wh");
        assert_eq!(energy_kwh(0.5), "500 Wh");
        assert_eq!(energy_kwh(2.0), "2.00 kWh");
        assert_eq!(energy_kwh(9.43), "9.43 kWh");
        assert_eq!(mass_kg(4.12e-7), "0.412 mg");
        assert_eq!(mass_kg(0.0185), "18.5 g");
        assert_eq!(mass_kg(3.2), "3.20 kg");
        assert_eq!(power_w(7.44), "7.44 W");
        assert_eq!(power_w(1234.0), "1.23 kW");
        assert_eq!(intensity(179.064206313), "179 gCO2e/kWh");
        assert_eq!(percent(0.1234), "12.3 %");
    }

    /// Properties over a wide sweep of values (every decade from 1e-300 to 1e300, many
    /// mantissas, both signs, the float edge cases): never `-0`, at most [`SIG_DIGITS`]
    /// significant digits below the units digit, reads back within rounding, bounded length.
    #[test]
    fn properties_over_a_sweep_of_values() {
        let mut xs = vec![
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for e in -300..=300 {
            for _ in 0..8 {
                // xorshift: a fixed, reproducible spread of mantissas in [1, 10)
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let m = 1.0 + 9.0 * (seed >> 11) as f64 / (1u64 << 53) as f64;
                let x = m * 10f64.powi(e);
                xs.push(x);
                xs.push(-x);
                xs.push(9.995 * 10f64.powi(e));
            }
        }
        for x in xs {
            let s = sig(x);
            if !x.is_finite() {
                assert_eq!(s, "n/a");
                continue;
            }
            assert!(
                s != "-0"
                    && !(s.starts_with("-0") && s.trim_start_matches(['-', '0', '.']).is_empty()),
                "{x}: {s}"
            );
            assert!(s.len() <= 320, "{x}: {} chars", s.len());
            let back: f64 = s
                .parse()
                .unwrap_or_else(|_| panic!("{x}: {s} does not parse"));
            if x.abs() < TINY {
                assert_eq!(back, 0.0, "{x}: {s}");
            } else {
                // rounded to 3 significant digits: within half a unit of the third digit
                assert!((back - x).abs() <= 0.005 * x.abs() + 1e-12, "{x}: {s}");
                let digits = s.trim_start_matches('-').replace('.', "");
                let significant = digits.trim_start_matches('0');
                let int_digits = s.trim_start_matches('-').split('.').next().unwrap().len();
                assert!(
                    significant.len() <= (SIG_DIGITS as usize).max(int_digits),
                    "{x}: {s}"
                );
            }
            for t in [energy_kwh(x), mass_kg(x), power_w(x)] {
                assert!(!t.starts_with("-0 "), "{x}: {t}");
            }
        }
    }
}
