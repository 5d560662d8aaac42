//! Checking a run record before it is stored, sent or imported: [`RunRecord::validate`].
//!
//! Three kinds of check, each failing with a [`ValidationError`] that names the JSON path of the
//! field and the reason:
//!
//! * **Form**: names and lengths, no control characters in one-line fields, RFC 3339 times.
//! * **Bounds**: every physical quantity within what a real job on one host can reach (the
//!   constants below; the table and the reasons are in docs/server.md, "Validation"). With these
//!   bounds and a bounded number of runs, sums over runs cannot overflow or turn non-finite.
//! * **Identities**: the record's derived figures agree with the figures they derive from, within
//!   [`REL_TOLERANCE`] (e.g. `it = dynamic + static`, `operational = facility × intensity`,
//!   per-kind device energies sum to the component's energy).
//!
//! Time checks compare with a clock: [`RunRecord::validate`] reads the system clock,
//! [`RunRecord::validate_at`] takes "now" as unix seconds (tests, and callers with their own clock).

use crate::record::{RunRecord, SCHEMA};
use crate::sensor::DeviceKind;
use crate::units::JOULES_PER_KWH;
use std::time::{SystemTime, UNIX_EPOCH};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Longest run id.
pub const MAX_RUN_ID: usize = 128;
/// Longest team, project, user, device or tag name.
pub const MAX_NAME: usize = 200;

/// Most power one host draws, W (and so any one device of it, on average or idle). The densest
/// current GPU racks draw about 130 kW for 18 compute trays, i.e. ~7 kW per host; 100 kW leaves
/// an order of magnitude of headroom and still bounds every energy.
pub const MAX_HOST_POWER_W: f64 = 100_000.0;
/// Longest run, s: 366 days. One record covers one job on one host; the longest training runs
/// reported take a few months, so a record spanning more than a year is a broken clock or a
/// forged figure.
pub const MAX_DURATION_S: f64 = 366.0 * 86_400.0;
/// Longest sampling interval, s (one day; wattprint samples every second by default).
pub const MAX_INTERVAL_S: f64 = 86_400.0;
/// Most IT energy of one run, kWh: [`MAX_HOST_POWER_W`] for [`MAX_DURATION_S`] is 878 400 kWh,
/// rounded up to 1 GWh.
pub const MAX_ENERGY_KWH: f64 = 1_000_000.0;
/// Largest PUE. Surveyed data centres average about 1.6 (Uptime Institute 2023); the worst
/// reported sites stay below 3.
pub const MAX_PUE: f64 = 3.0;
/// Largest carbon intensity, gCO2e/kWh. The most carbon-intensive grids (lignite, oil) are about
/// 1 000–1 200 g/kWh over their life cycle; marginal signals stay below 2 000.
pub const MAX_INTENSITY_G_PER_KWH: f64 = 2_000.0;
/// Most embodied (manufacturing) emissions charged to one run, kg: the whole manufacturing
/// footprint of a host is a few tonnes (a base server ~1.2 t, ~150 kg per GPU); 100 t is ten
/// times the largest host.
pub const MAX_EMBODIED_KG: f64 = 100_000.0;
/// Most emissions of one run, kg: the largest facility energy at the largest intensity, plus the
/// largest embodied share (6.1 × 10⁶ kg).
pub const MAX_EMISSIONS_KG: f64 =
    MAX_ENERGY_KWH * MAX_PUE * MAX_INTENSITY_G_PER_KWH / 1000.0 + MAX_EMBODIED_KG;
/// Largest everyday equivalent (phone charges of [`MAX_EMISSIONS_KG`] are 7.4 × 10⁸).
pub const MAX_EQUIVALENT: f64 = 1e9;
/// Most memory of one host, GB (the largest single-image systems have 32–48 TB).
pub const MAX_RAM_GB: f64 = 100_000.0;
/// Most logical CPUs of one host (the largest single-image systems have a few thousand).
pub const MAX_LOGICAL_CPUS: usize = 65_536;
/// Largest count (`samples`, `skipped_ticks`): exact in a JSON number and an SQL integer.
pub const MAX_COUNT: u64 = 1_000_000_000_000;
/// Largest value of the other figures that are bounded (assumptions, the tracker's usage): far
/// from overflowing when a report adds or multiplies a few of them.
pub const MAX_OTHER: f64 = 1e12;
/// Earliest start: 2000-01-01T00:00:00Z. Earlier times are clocks that were never set (a board
/// without a real-time clock starts at 1970).
pub const EARLIEST_UNIX: i64 = 946_684_800;
/// How far in the future a time may be, s: 15 minutes of clock skew between the host that
/// measured and the one that checks (Kerberos tolerates 5; hosts without NTP drift further).
pub const MAX_CLOCK_SKEW_S: i64 = 900;
/// Relative tolerance of the record's identities: |a − b| ≤ 10⁻⁶ × the largest magnitude
/// involved (+ 10⁻¹² absolute). Float sums of 1 024 devices err by ~10⁻¹³; a contradiction is
/// orders of magnitude larger.
pub const REL_TOLERANCE: f64 = 1e-6;
/// Absolute part of the tolerance (in the identity's unit: kWh or kg).
pub const ABS_TOLERANCE: f64 = 1e-12;

// The bounds agree with each other (checked when compiling): the largest run fits the energy
// bound, and the largest emissions in the smallest equivalent fit the equivalents' bound.
const _: () = assert!(MAX_HOST_POWER_W * MAX_DURATION_S / JOULES_PER_KWH <= MAX_ENERGY_KWH);
const _: () =
    assert!(MAX_EMISSIONS_KG * 1000.0 / crate::accounting::PHONE_CHARGE_G <= MAX_EQUIVALENT);

/// A field that is malformed, out of bounds, or contradicts another: `path` is its JSON path
/// (`energy_kwh.total`, `devices[2].energy_kwh`), `reason` says why and what is allowed. Displays
/// as "`path` `reason`".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} {reason}")]
pub struct ValidationError {
    pub path: String,
    pub reason: String,
}

fn err<T>(path: impl Into<String>, reason: impl Into<String>) -> Result<T, ValidationError> {
    Err(ValidationError {
        path: path.into(),
        reason: reason.into(),
    })
}

/// Now, unix seconds, from the system clock (0 if the clock is before 1970).
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A non-empty one-line name.
pub fn check_ident(path: &str, s: &str, max: usize) -> Result<(), ValidationError> {
    if s.trim().is_empty() {
        return err(path, "must not be empty");
    }
    check_line(path, s, max)
}

/// One line of text: at most `max` characters, no control characters, and none of the
/// invisible characters that can make a name look like another ([`spoofing_char`]).
pub fn check_line(path: &str, s: &str, max: usize) -> Result<(), ValidationError> {
    check_text(path, s, max)?;
    if s.chars().any(char::is_control) {
        return err(path, "must not contain control characters (newline, tab…)");
    }
    if let Some(c) = s.chars().find(|&c| spoofing_char(c)) {
        return err(
            path,
            format!(
                "must not contain the invisible character U+{:04X} (bidirectional override or zero-width characters can make one name display as another)",
                u32::from(c)
            ),
        );
    }
    Ok(())
}

/// Bidirectional controls (embeddings, overrides, isolates, marks) and zero-width or invisible
/// characters: in a name they let it display as another name, or as reordered text.
pub fn spoofing_char(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
    )
}

/// Free text: at most `max` characters.
pub fn check_text(path: &str, s: &str, max: usize) -> Result<(), ValidationError> {
    let n = s.chars().count();
    if n > max {
        return err(path, format!("is {n} characters long; the limit is {max}"));
    }
    Ok(())
}

/// A list of at most `max` items.
pub fn check_len<T>(path: &str, v: &[T], max: usize) -> Result<(), ValidationError> {
    if v.len() > max {
        return err(path, format!("has {} items; the limit is {max}", v.len()));
    }
    Ok(())
}

/// A finite number.
pub fn check_finite(path: &str, x: f64) -> Result<(), ValidationError> {
    if x.is_finite() {
        Ok(())
    } else {
        err(path, "must be a finite number")
    }
}

/// A number for a message: plain, or in exponent form when huge or tiny (`1e308`, not 309 digits).
fn show(x: f64) -> String {
    if x != 0.0 && !(1e-4..1e15).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A finite number in `0..=max` (`why` names the bound: "a run's IT energy").
pub fn check_range(path: &str, x: f64, max: f64, why: &str) -> Result<(), ValidationError> {
    check_finite(path, x)?;
    if x < 0.0 {
        return err(path, format!("is {}; it must not be negative", show(x)));
    }
    if x > max {
        return err(
            path,
            format!(
                "is {}; the limit is {} ({why}; see docs/server.md, Validation)",
                show(x),
                show(max)
            ),
        );
    }
    Ok(())
}

/// An RFC 3339 time between [`EARLIEST_UNIX`] and `now + MAX_CLOCK_SKEW_S`, without a leap
/// second (no clock wattprint reads shows `:60`). Returns unix seconds (fraction kept).
pub fn check_time(path: &str, s: &str, now: i64) -> Result<f64, ValidationError> {
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| ValidationError {
        path: path.into(),
        reason: format!("{s:?} is not an RFC 3339 time (2025-03-01T12:00:00Z)"),
    })?;
    // `time` reads 23:59:60 as 23:59:59.999999999; the text tells them apart.
    if s.get(17..19) == Some("60") {
        return err(
            path,
            format!("{s:?} is a leap second; system clocks never show one (they repeat :59)"),
        );
    }
    let unix = t.unix_timestamp();
    if unix < EARLIEST_UNIX {
        return err(
            path,
            format!("{s:?} is before 2000-01-01: a clock that was never set"),
        );
    }
    if unix > now.saturating_add(MAX_CLOCK_SKEW_S) {
        return err(
            path,
            format!(
                "{s:?} is in the future (more than {} minutes of clock skew)",
                MAX_CLOCK_SKEW_S / 60
            ),
        );
    }
    Ok(unix as f64 + f64::from(t.nanosecond()) / 1e9)
}

/// `a` and `b` agree within the tolerance, relative to `scale` (the largest magnitude involved).
fn agree(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= REL_TOLERANCE * scale.abs().max(a.abs()).max(b.abs()) + ABS_TOLERANCE
}

/// An identity `path = expected` (where `expected` is computed as `formula`).
fn identity(
    path: &str,
    value: f64,
    expected: f64,
    scale: f64,
    formula: &str,
) -> Result<(), ValidationError> {
    if agree(value, expected, scale) {
        Ok(())
    } else {
        err(
            path,
            format!(
                "is {} but {formula} is {}; the record contradicts itself (identity checked within a relative {REL_TOLERANCE:e})",
                show(value),
                show(expected)
            ),
        )
    }
}

impl RunRecord {
    /// [`RunRecord::validate_at`] with the system clock.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_at(now_unix())
    }

    /// Check the whole record: form, bounds, times (against `now`, unix seconds) and identities.
    pub fn validate_at(&self, now: i64) -> Result<(), ValidationError> {
        self.check_form()?;
        self.check_times(now)?;
        self.check_bounds()?;
        if let Some(s) = &self.segments {
            s.check()?;
        }
        if let Some(l) = &self.lineage {
            l.check()?;
        }
        if let Some(d) = &self.discarded {
            d.check()?;
        }
        if let Some(io) = &self.io {
            io.check()?;
        }
        self.check_identities()
    }

    fn check_form(&self) -> Result<(), ValidationError> {
        let r = self;
        if r.schema != SCHEMA {
            return err(
                "schema",
                format!("is {:?}; wattprint accepts {SCHEMA:?}", r.schema),
            );
        }
        check_ident("id", &r.id, MAX_RUN_ID)?;
        check_ident("project", &r.project, MAX_NAME)?;
        if r.tags.len() > 256 {
            return err(
                "tags",
                format!("has {} entries; the limit is 256", r.tags.len()),
            );
        }
        for (k, v) in &r.tags {
            check_ident("tags key", k, MAX_NAME)?;
            check_text(&format!("tags.{k}"), v, 4096)?;
        }
        check_len("command", &r.command, 4096)?;
        for (i, a) in r.command.iter().enumerate() {
            check_text(&format!("command[{i}]"), a, 65_536)?;
        }
        check_line("host.hostname", &r.host.hostname, 255)?;
        check_line("host.cpu_model", &r.host.cpu_model, 1024)?;
        check_len("host.gpus", &r.host.gpus, 256)?;
        for (i, g) in r.host.gpus.iter().enumerate() {
            check_line(&format!("host.gpus[{i}].name"), &g.name, 1024)?;
            check_line(&format!("host.gpus[{i}].uuid"), &g.uuid, 256)?;
        }
        check_line("scope", &r.scope, 64)?;
        check_len("devices", &r.devices, 1024)?;
        for (i, d) in r.devices.iter().enumerate() {
            check_ident(&format!("devices[{i}].id"), &d.id, MAX_NAME)?;
            check_line(&format!("devices[{i}].name"), &d.name, 1024)?;
            if let Some(u) = &d.uuid {
                check_line(&format!("devices[{i}].uuid"), u, 256)?;
            }
        }
        check_line("methods.cpu", &r.methods.cpu, 256)?;
        check_line("methods.gpu", &r.methods.gpu, 256)?;
        check_line("methods.ram", &r.methods.ram, 256)?;
        check_text("carbon_intensity.source", &r.carbon_intensity.source, 8192)?;
        if let Some(s) = &r.carbon_intensity.signal {
            check_line("carbon_intensity.signal", s, 64)?;
        }
        if let Some(s) = &r.carbon_intensity.resolution {
            check_line("carbon_intensity.resolution", s, 64)?;
        }
        check_line("location.code", &r.location.code, 256)?;
        check_line("location.name", &r.location.name, 1024)?;
        check_text("location.pue_source", &r.location.pue_source, 8192)?;
        check_len("assumptions", &r.assumptions, 1024)?;
        for (i, a) in r.assumptions.iter().enumerate() {
            check_line(&format!("assumptions[{i}].name"), &a.name, 1024)?;
            check_line(&format!("assumptions[{i}].unit"), &a.unit, 64)?;
            check_text(&format!("assumptions[{i}].source"), &a.source, 16_384)?;
        }
        check_line("factors_version", &r.factors_version, 64)?;
        check_len("warnings", &r.warnings, 1024)?;
        for (i, w) in r.warnings.iter().enumerate() {
            check_text(&format!("warnings[{i}]"), w, 8192)?;
        }
        check_line("wattprint_version", &r.wattprint_version, 64)?;
        check_len("limit_events", &r.limit_events, 1024)?;
        for (i, e) in r.limit_events.iter().enumerate() {
            check_text(&format!("limit_events[{i}].message"), &e.message, 8192)?;
        }
        if let Some(p) = &r.prediction {
            check_line("prediction.basis", &p.basis, 64)?;
        }
        Ok(())
    }

    fn check_times(&self, now: i64) -> Result<(), ValidationError> {
        let start = check_time("started_at", &self.started_at, now)?;
        check_range(
            "duration_s",
            self.duration_s,
            MAX_DURATION_S,
            "366 days, the longest run",
        )?;
        if let Some(e) = &self.ended_at {
            let end = check_time("ended_at", e, now)?;
            if end < start {
                return err(
                    "ended_at",
                    format!("{e:?} is before started_at {:?}", self.started_at),
                );
            }
        }
        // The measured duration cannot reach past now either (same skew allowance).
        if start + self.duration_s > (now.saturating_add(MAX_CLOCK_SKEW_S)) as f64 {
            return err(
                "duration_s",
                format!(
                    "is {} s, which from started_at {:?} ends in the future (more than {} minutes of clock skew)",
                    self.duration_s,
                    self.started_at,
                    MAX_CLOCK_SKEW_S / 60
                ),
            );
        }
        Ok(())
    }

    fn check_bounds(&self) -> Result<(), ValidationError> {
        let r = self;
        check_range(
            "interval_s",
            r.interval_s,
            MAX_INTERVAL_S,
            "one day, the longest sampling interval",
        )?;
        if r.host.logical_cpus > MAX_LOGICAL_CPUS {
            return err(
                "host.logical_cpus",
                format!(
                    "is {}; the limit is {MAX_LOGICAL_CPUS} (see docs/server.md, Validation)",
                    r.host.logical_cpus
                ),
            );
        }
        check_range(
            "host.ram_gb",
            r.host.ram_gb,
            MAX_RAM_GB,
            "100 TB, beyond the largest host",
        )?;
        let it_why = "a run's IT energy: 100 kW for 366 days, rounded up";
        let fac_max = MAX_ENERGY_KWH * MAX_PUE;
        let fac_why = "the largest IT energy × the largest PUE";
        let e = &r.energy_kwh;
        for (n, x, max, why) in [
            ("cpu", e.cpu.0, MAX_ENERGY_KWH, it_why),
            ("gpu", e.gpu.0, MAX_ENERGY_KWH, it_why),
            ("ram", e.ram.0, MAX_ENERGY_KWH, it_why),
            ("other", e.other.0, MAX_ENERGY_KWH, it_why),
            ("dynamic", e.dynamic.0, MAX_ENERGY_KWH, it_why),
            ("static", e.static_.0, MAX_ENERGY_KWH, it_why),
            ("it", e.it.0, MAX_ENERGY_KWH, it_why),
            ("infrastructure", e.infrastructure.0, fac_max, fac_why),
            ("facility", e.facility.0, fac_max, fac_why),
            ("total", e.total.0, MAX_ENERGY_KWH, it_why),
        ] {
            check_range(&format!("energy_kwh.{n}"), x, max, why)?;
        }
        let p_why = "100 kW, more than any one host draws";
        for (i, d) in r.devices.iter().enumerate() {
            check_range(
                &format!("devices[{i}].energy_kwh"),
                d.energy_kwh,
                MAX_ENERGY_KWH,
                it_why,
            )?;
            check_range(
                &format!("devices[{i}].avg_power_w"),
                d.avg_power_w,
                MAX_HOST_POWER_W,
                p_why,
            )?;
            check_range(
                &format!("devices[{i}].machine_energy_kwh"),
                d.machine_energy_kwh,
                MAX_ENERGY_KWH,
                it_why,
            )?;
            if let Some(p) = d.idle_power_w {
                check_range(
                    &format!("devices[{i}].idle_power_w"),
                    p,
                    MAX_HOST_POWER_W,
                    p_why,
                )?;
            }
        }
        check_finite("pue", r.pue)?;
        if r.pue < 1.0 {
            return err(
                "pue",
                format!(
                    "is {}; a PUE is facility energy / IT energy, so at least 1",
                    r.pue
                ),
            );
        }
        check_range(
            "pue",
            r.pue,
            MAX_PUE,
            "the worst surveyed data centres stay below 3",
        )?;
        check_range(
            "carbon_intensity.g_per_kwh",
            r.carbon_intensity.g_per_kwh,
            MAX_INTENSITY_G_PER_KWH,
            "more than the most carbon-intensive grid",
        )?;
        let m = &r.emissions_kg;
        let kg_why = "the largest facility energy at the largest intensity, plus embodied";
        for (n, x, max, why) in [
            ("dynamic", m.dynamic, MAX_EMISSIONS_KG, kg_why),
            ("static", m.static_, MAX_EMISSIONS_KG, kg_why),
            ("infrastructure", m.infrastructure, MAX_EMISSIONS_KG, kg_why),
            (
                "embodied",
                m.embodied,
                MAX_EMBODIED_KG,
                "100 t, ten times the manufacturing footprint of the largest host",
            ),
            ("operational", m.operational, MAX_EMISSIONS_KG, kg_why),
            ("total", m.total, MAX_EMISSIONS_KG, kg_why),
        ] {
            check_range(&format!("emissions_kg.{n}"), x, max, why)?;
        }
        let q = &r.equivalents;
        for (n, x) in [
            ("car_km", q.car_km),
            ("tree_months", q.tree_months),
            ("flights_paris_london", q.flights_paris_london),
            ("flights_paris_dublin", q.flights_paris_dublin),
            (
                "flights_new_york_san_francisco",
                q.flights_new_york_san_francisco,
            ),
            ("phone_charges", q.phone_charges),
        ] {
            check_range(
                &format!("equivalents.{n}"),
                x,
                MAX_EQUIVALENT,
                "the largest emissions in the smallest unit",
            )?;
        }
        for (i, a) in r.assumptions.iter().enumerate() {
            check_finite(&format!("assumptions[{i}].value"), a.value)?;
            if a.value.abs() > MAX_OTHER {
                return err(
                    format!("assumptions[{i}].value"),
                    format!("is {}; the limit is ±{MAX_OTHER:e}", show(a.value)),
                );
            }
        }
        for (n, x) in [("samples", r.samples), ("skipped_ticks", r.skipped_ticks)] {
            if x > MAX_COUNT {
                return err(n, format!("is {x}; the limit is {MAX_COUNT}"));
            }
        }
        if let Some(s) = r.signal {
            if !(1..=128).contains(&s) {
                return err("signal", format!("is {s}; a signal number is 1 to 128"));
            }
        }
        let tracker = |p: &str, x: f64| check_range(p, x, MAX_OTHER, "any other figure");
        if let Some(t) = &r.tracker {
            tracker("tracker.cpu_s", t.cpu_s)?;
            if let Some(m) = t.max_rss_mb {
                tracker("tracker.max_rss_mb", m)?;
            }
            tracker("tracker.startup_ms", t.startup_ms)?;
        }
        // Limits the user set and predictions made early in a run can be any size; they are
        // neither summed nor charted across runs, so finite and non-negative is enough (a
        // record is not lost to the server for an extravagant prediction).
        let other = |p: &str, x: f64| check_range(p, x, f64::MAX, "a finite number");
        if let Some(l) = &r.limits {
            for (n, x) in [
                ("max_duration_s", l.max_duration_s),
                ("budget_kwh", l.budget_kwh),
                ("budget_kg", l.budget_kg),
            ] {
                if let Some(x) = x {
                    other(&format!("limits.{n}"), x)?;
                }
            }
        }
        for (i, e) in r.limit_events.iter().enumerate() {
            for (n, x) in [
                ("limit", e.limit),
                ("spent", e.spent),
                ("at_s", e.at_s),
                ("spent_kwh", e.spent_kwh),
                ("spent_kg", e.spent_kg),
            ] {
                other(&format!("limit_events[{i}].{n}"), x)?;
            }
            if let Some(x) = e.predicted_low {
                other(&format!("limit_events[{i}].predicted_low"), x)?;
            }
        }
        if let Some(s) = &r.stopped {
            other("stopped.at_s", s.at_s)?;
            other("stopped.grace_s", s.grace_s)?;
        }
        if let Some(p) = &r.prediction {
            other("prediction.at_s", p.at_s)?;
            other("prediction.fraction_done", p.fraction_done)?;
            for (n, b) in [
                ("final_kwh", &p.final_kwh),
                ("final_kg", &p.final_kg),
                ("final_duration_s", &p.final_duration_s),
            ] {
                other(&format!("prediction.{n}.p10"), b.p10)?;
                other(&format!("prediction.{n}.p50"), b.p50)?;
                other(&format!("prediction.{n}.p90"), b.p90)?;
            }
        }
        Ok(())
    }

    fn check_identities(&self) -> Result<(), ValidationError> {
        let e = &self.energy_kwh;
        let (cpu, gpu, ram, other) = (e.cpu.0, e.gpu.0, e.ram.0, e.other.0);
        let (dynamic, static_, it) = (e.dynamic.0, e.static_.0, e.it.0);
        identity(
            "energy_kwh.it",
            it,
            dynamic + static_,
            it,
            "energy_kwh.dynamic + energy_kwh.static",
        )?;
        identity("energy_kwh.total", e.total.0, it, it, "energy_kwh.it")?;
        identity(
            "energy_kwh.it",
            it,
            cpu + gpu + ram + other,
            it,
            "energy_kwh.cpu + gpu + ram + other",
        )?;
        identity(
            "energy_kwh.facility",
            e.facility.0,
            it * self.pue,
            e.facility.0,
            "energy_kwh.it × pue",
        )?;
        identity(
            "energy_kwh.infrastructure",
            e.infrastructure.0,
            e.facility.0 - it,
            e.facility.0,
            "energy_kwh.facility − energy_kwh.it",
        )?;
        if !self.devices.is_empty() {
            for (kind, name, component) in [
                (DeviceKind::Cpu, "cpu", cpu),
                (DeviceKind::Gpu, "gpu", gpu),
                (DeviceKind::Ram, "ram", ram),
            ] {
                let mut of_kind = self.devices.iter().filter(|d| d.kind == kind).peekable();
                if of_kind.peek().is_none() {
                    // A component without device records (modelled, imported) is not checked.
                    continue;
                }
                let sum: f64 = of_kind.map(|d| d.energy_kwh).sum::<f64>() + 0.0;
                identity(
                    &format!("energy_kwh.{name}"),
                    component,
                    sum,
                    it,
                    &format!("the sum of the {name} devices' energy_kwh"),
                )?;
            }
            for (i, d) in self.devices.iter().enumerate() {
                if d.machine_energy_kwh + REL_TOLERANCE * d.energy_kwh + ABS_TOLERANCE
                    < d.energy_kwh
                {
                    return err(
                        format!("devices[{i}].energy_kwh"),
                        format!(
                            "is {} but the whole device drew {} (machine_energy_kwh); the job's share cannot exceed it",
                            d.energy_kwh, d.machine_energy_kwh
                        ),
                    );
                }
            }
        }
        let m = &self.emissions_kg;
        let i_kg = self.carbon_intensity.g_per_kwh / 1000.0;
        let op = m.operational;
        identity(
            "emissions_kg.dynamic",
            m.dynamic,
            dynamic * i_kg,
            op,
            "energy_kwh.dynamic × carbon_intensity",
        )?;
        identity(
            "emissions_kg.static",
            m.static_,
            static_ * i_kg,
            op,
            "energy_kwh.static × carbon_intensity",
        )?;
        identity(
            "emissions_kg.infrastructure",
            m.infrastructure,
            e.infrastructure.0 * i_kg,
            op,
            "energy_kwh.infrastructure × carbon_intensity",
        )?;
        identity(
            "emissions_kg.operational",
            op,
            e.facility.0 * i_kg,
            op,
            "energy_kwh.facility × carbon_intensity",
        )?;
        identity(
            "emissions_kg.operational",
            op,
            m.dynamic + m.static_ + m.infrastructure,
            op,
            "emissions_kg.dynamic + static + infrastructure",
        )?;
        identity(
            "emissions_kg.total",
            m.total,
            op + m.embodied,
            m.total,
            "emissions_kg.operational + embodied",
        )?;
        Ok(())
    }
}

/// Check one stored sample of a run's series (`t0`, `t1` seconds since the run's start, `energy_j`
/// joules): finite, non-negative, `t1 >= t0`, within the longest run and the largest energy.
pub fn check_sample(path: &str, t0: f64, t1: f64, energy_j: f64) -> Result<(), ValidationError> {
    let t_why = "366 days, the longest run";
    check_range(&format!("{path}.t0"), t0, MAX_DURATION_S, t_why)?;
    check_range(&format!("{path}.t1"), t1, MAX_DURATION_S, t_why)?;
    check_range(
        &format!("{path}.energy_j"),
        energy_j,
        MAX_ENERGY_KWH * JOULES_PER_KWH,
        "a run's IT energy, in joules",
    )?;
    if t1 < t0 {
        return err(path, format!("has t1 ({t1}) before t0 ({t0})"));
    }
    Ok(())
}
