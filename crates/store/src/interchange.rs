//! Files other tools read and write: CodeCarbon's `emissions.csv` (export and import), a plain
//! CSV of our own columns, and JSON Lines of run records. The column-by-column mapping, units
//! and PUE handling are in docs/store-and-interchange.md.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};
use wattprint_core::accounting::{Assumption, EmissionsKg, EnergyKwh, Equivalents};
use wattprint_core::record::{
    CarbonIntensity, GpuInfo, HostInfo, LocationRecord, Methods, RunRecord, RunStatus, SCHEMA,
};
use wattprint_core::units::{GramsCo2e, KilowattHours, JOULES_PER_KWH};

/// CodeCarbon 3.3.2's `emissions.csv` header, in its order.
pub const CODECARBON_COLUMNS: [&str; 38] = [
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "water_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "cpu_utilization_percent",
    "gpu_utilization_percent",
    "ram_utilization_percent",
    "ram_used_gb",
    "on_cloud",
    "pue",
    "wue",
];

/// Columns an imported CodeCarbon file must have.
pub const CODECARBON_REQUIRED: [&str; 4] =
    ["timestamp", "duration", "emissions", "energy_consumed"];

/// The method recorded for every component of an imported run.
pub const IMPORTED_METHOD: &str = "imported:codecarbon";

/// Tag holding CodeCarbon's `experiment_id` on import (and written back on export).
pub const EXPERIMENT_TAG: &str = "codecarbon.experiment_id";

/// Bytes per GiB (CodeCarbon's `ram_total_size`); our `ram_gb` is decimal GB.
const BYTES_PER_GIB: f64 = 1_073_741_824.0;

/// Python's `repr(float)`: the shortest text that reads back to the same number, positional for
/// exponents in [-4, 16), else `1.5e-05` style. CodeCarbon's CSV writes floats this way.
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        // Also for -0.0 (an empty sum in Rust): no energy or emission is negative.
        return "0.0".into();
    }
    let sci = format!("{x:e}");
    let (mant, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    if (-4..16).contains(&exp) {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

/// ISO 3166-1 alpha-3 → alpha-2 for every country of the shipped intensity table (the same
/// table as `scripts/build-factors.py`).
#[rustfmt::skip]
const ISO3_TO_ISO2: &[(&str, &str)] = &[
    ("ABW", "AW"), ("AFG", "AF"), ("AGO", "AO"), ("ALB", "AL"), ("ARE", "AE"), ("ARG", "AR"),
    ("ARM", "AM"), ("ASM", "AS"), ("ATG", "AG"), ("AUS", "AU"), ("AUT", "AT"), ("AZE", "AZ"),
    ("BDI", "BI"), ("BEL", "BE"), ("BEN", "BJ"), ("BFA", "BF"), ("BGD", "BD"), ("BGR", "BG"),
    ("BHR", "BH"), ("BHS", "BS"), ("BIH", "BA"), ("BLR", "BY"), ("BLZ", "BZ"), ("BMU", "BM"),
    ("BOL", "BO"), ("BRA", "BR"), ("BRB", "BB"), ("BRN", "BN"), ("BTN", "BT"), ("BWA", "BW"),
    ("CAF", "CF"), ("CAN", "CA"), ("CHE", "CH"), ("CHL", "CL"), ("CHN", "CN"), ("CIV", "CI"),
    ("CMR", "CM"), ("COD", "CD"), ("COG", "CG"), ("COK", "CK"), ("COL", "CO"), ("COM", "KM"),
    ("CPV", "CV"), ("CRI", "CR"), ("CUB", "CU"), ("CYM", "KY"), ("CYP", "CY"), ("CZE", "CZ"),
    ("DEU", "DE"), ("DJI", "DJ"), ("DMA", "DM"), ("DNK", "DK"), ("DOM", "DO"), ("DZA", "DZ"),
    ("ECU", "EC"), ("EGY", "EG"), ("ERI", "ER"), ("ESH", "EH"), ("ESP", "ES"), ("EST", "EE"),
    ("ETH", "ET"), ("FIN", "FI"), ("FJI", "FJ"), ("FLK", "FK"), ("FRA", "FR"), ("FRO", "FO"),
    ("GAB", "GA"), ("GBR", "GB"), ("GEO", "GE"), ("GHA", "GH"), ("GIB", "GI"), ("GIN", "GN"),
    ("GLP", "GP"), ("GMB", "GM"), ("GNB", "GW"), ("GNQ", "GQ"), ("GRC", "GR"), ("GRD", "GD"),
    ("GRL", "GL"), ("GTM", "GT"), ("GUF", "GF"), ("GUM", "GU"), ("GUY", "GY"), ("HKG", "HK"),
    ("HND", "HN"), ("HRV", "HR"), ("HTI", "HT"), ("HUN", "HU"), ("IDN", "ID"), ("IND", "IN"),
    ("IRL", "IE"), ("IRN", "IR"), ("IRQ", "IQ"), ("ISL", "IS"), ("ISR", "IL"), ("ITA", "IT"),
    ("JAM", "JM"), ("JOR", "JO"), ("JPN", "JP"), ("KAZ", "KZ"), ("KEN", "KE"), ("KGZ", "KG"),
    ("KHM", "KH"), ("KIR", "KI"), ("KNA", "KN"), ("KOR", "KR"), ("KWT", "KW"), ("LAO", "LA"),
    ("LBN", "LB"), ("LBR", "LR"), ("LBY", "LY"), ("LCA", "LC"), ("LKA", "LK"), ("LSO", "LS"),
    ("LTU", "LT"), ("LUX", "LU"), ("LVA", "LV"), ("MAC", "MO"), ("MAR", "MA"), ("MDA", "MD"),
    ("MDG", "MG"), ("MDV", "MV"), ("MEX", "MX"), ("MKD", "MK"), ("MLI", "ML"), ("MLT", "MT"),
    ("MMR", "MM"), ("MNE", "ME"), ("MNG", "MN"), ("MOZ", "MZ"), ("MRT", "MR"), ("MSR", "MS"),
    ("MTQ", "MQ"), ("MUS", "MU"), ("MWI", "MW"), ("MYS", "MY"), ("NAM", "NA"), ("NCL", "NC"),
    ("NER", "NE"), ("NGA", "NG"), ("NIC", "NI"), ("NLD", "NL"), ("NOR", "NO"), ("NPL", "NP"),
    ("NRU", "NR"), ("NZL", "NZ"), ("OMN", "OM"), ("PAK", "PK"), ("PAN", "PA"), ("PER", "PE"),
    ("PHL", "PH"), ("PNG", "PG"), ("POL", "PL"), ("PRI", "PR"), ("PRK", "KP"), ("PRT", "PT"),
    ("PRY", "PY"), ("PSE", "PS"), ("PYF", "PF"), ("QAT", "QA"), ("REU", "RE"), ("ROU", "RO"),
    ("RUS", "RU"), ("RWA", "RW"), ("SAU", "SA"), ("SDN", "SD"), ("SEN", "SN"), ("SGP", "SG"),
    ("SHN", "SH"), ("SLB", "SB"), ("SLE", "SL"), ("SLV", "SV"), ("SOM", "SO"), ("SPM", "PM"),
    ("SRB", "RS"), ("SSD", "SS"), ("STP", "ST"), ("SUR", "SR"), ("SVK", "SK"), ("SVN", "SI"),
    ("SWE", "SE"), ("SWZ", "SZ"), ("SYC", "SC"), ("SYR", "SY"), ("TCA", "TC"), ("TCD", "TD"),
    ("TGO", "TG"), ("THA", "TH"), ("TJK", "TJ"), ("TKM", "TM"), ("TLS", "TL"), ("TON", "TO"),
    ("TTO", "TT"), ("TUN", "TN"), ("TUR", "TR"), ("TWN", "TW"), ("TZA", "TZ"), ("UGA", "UG"),
    ("UKR", "UA"), ("URY", "UY"), ("USA", "US"), ("UZB", "UZ"), ("VCT", "VC"), ("VEN", "VE"),
    ("VGB", "VG"), ("VIR", "VI"), ("VNM", "VN"), ("VUT", "VU"), ("WSM", "WS"), ("YEM", "YE"),
    ("ZAF", "ZA"), ("ZMB", "ZM"), ("ZWE", "ZW"),
];

fn iso2_to_iso3(iso2: &str) -> Option<&'static str> {
    ISO3_TO_ISO2
        .iter()
        .find(|(_, two)| two.eq_ignore_ascii_case(iso2))
        .map(|(three, _)| *three)
}

/// ISO 3166-1 alpha-3 → alpha-2 (`FRA` → `FR`), for the countries of the intensity table.
pub fn iso3_to_iso2(iso3: &str) -> Option<&'static str> {
    ISO3_TO_ISO2
        .iter()
        .find(|(three, _)| three.eq_ignore_ascii_case(iso3))
        .map(|(_, two)| *two)
}

/// Name of an intensity-table code (`FR` → `France`), CodeCarbon's spelling preferred.
fn code_name(code: &str) -> Option<String> {
    let rows = wattprint_core::factors::intensity_rows(code);
    rows.iter()
        .find(|r| r.provenance.source == "A-CC")
        .or(rows.first())
        .map(|r| r.name.clone())
}

/// CodeCarbon's `region` for one of our zones: lower-case state/province name for the US and
/// Canada (as CodeCarbon spells them: `california`, `quebec`), else the zone suffix (`SE3`).
fn zone_region(zone: &str) -> String {
    let (country, suffix) = zone.split_once('-').unwrap_or(("", zone));
    if country == "US" || country == "CA" {
        if let Some(n) = code_name(zone) {
            return n.split(',').next().unwrap_or(&n).trim().to_lowercase();
        }
    }
    suffix.to_string()
}

/// The zone code of a CodeCarbon `region` within a country, if the intensity table has it.
fn region_zone(iso2: &str, region: &str) -> Option<String> {
    let r = region.trim();
    if r.is_empty() {
        return None;
    }
    let direct = format!("{iso2}-{}", r.to_ascii_uppercase());
    if !wattprint_core::factors::intensity_rows(&direct).is_empty() {
        return Some(direct);
    }
    let prefix = format!("{iso2}-");
    wattprint_core::factors::intensity_codes()
        .into_iter()
        .filter(|c| c.starts_with(&prefix))
        .find(|c| {
            code_name(c).is_some_and(|n| {
                n.split(',')
                    .next()
                    .unwrap_or(&n)
                    .trim()
                    .eq_ignore_ascii_case(r)
            })
        })
        .map(str::to_string)
}

/// Location columns of CodeCarbon for one of our location codes.
struct CcLocation {
    country_name: String,
    country_iso_code: String,
    region: String,
    cloud_provider: String,
    cloud_region: String,
    on_cloud: bool,
}

fn cc_location(loc: &LocationRecord) -> CcLocation {
    let mut out = CcLocation {
        country_name: String::new(),
        country_iso_code: String::new(),
        region: String::new(),
        cloud_provider: String::new(),
        cloud_region: String::new(),
        on_cloud: false,
    };
    let code = loc.code.trim();
    let (iso2, zone) = if let Some((provider, region)) = code.split_once(':') {
        out.on_cloud = true;
        out.cloud_provider = provider.to_string();
        out.cloud_region = region.to_string();
        match wattprint_core::factors::cloud_region(code) {
            Some(r) => (r.country.clone(), r.zone.clone()),
            None => (String::new(), None),
        }
    } else if code.eq_ignore_ascii_case("WORLD") || code.eq_ignore_ascii_case("unknown") {
        (String::new(), None)
    } else if let Some((c, _)) = code.split_once('-') {
        (c.to_string(), Some(code.to_string()))
    } else {
        (code.to_string(), None)
    };
    if !iso2.is_empty() {
        match iso2_to_iso3(&iso2) {
            Some(three) => out.country_iso_code = three.to_string(),
            // An imported ISO3 code we have no table entry for is kept as it was.
            None if iso2.len() == 3 => out.country_iso_code = iso2.clone(),
            None => {}
        }
        out.country_name = code_name(&iso2).unwrap_or_else(|| {
            if !out.on_cloud {
                loc.name
                    .split(',')
                    .next_back()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            } else {
                String::new()
            }
        });
    }
    if let Some(z) = zone {
        out.region = zone_region(&z);
    }
    out
}

fn timestamp_utc(rec: &RunRecord) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let end = rec
        .ended_at
        .as_deref()
        .and_then(|e| OffsetDateTime::parse(e, &Rfc3339).ok())
        .or_else(|| {
            OffsetDateTime::parse(&rec.started_at, &Rfc3339)
                .ok()
                .and_then(|s| s.checked_add(time::Duration::seconds_f64(rec.duration_s.max(0.0))))
        });
    match end {
        Some(t) => t
            .to_offset(time::UtcOffset::UTC)
            .format(&fmt)
            .unwrap_or_default(),
        None => String::new(),
    }
}

/// `N x NAME` per GPU model, CodeCarbon's form, models joined with `, `.
fn gpu_model(gpus: &[GpuInfo]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for g in gpus {
        match counts.iter_mut().find(|(n, _)| *n == g.name) {
            Some((_, c)) => *c += 1,
            None => counts.push((&g.name, 1)),
        }
    }
    counts
        .iter()
        .map(|(n, c)| format!("{c} x {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A reader that notes the byte offset of every `\n` it passes on (8 bytes a line of input).
struct NewlineIndex<R> {
    inner: R,
    pos: u64,
    newlines: std::rc::Rc<std::cell::RefCell<Vec<u64>>>,
}

impl<R: Read> Read for NewlineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut nl = self.newlines.borrow_mut();
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                nl.push(self.pos + i as u64);
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A reader that turns every `\r\n` into `\n` (a `\r` alone stays), also across reads.
struct CrlfToLf<R> {
    inner: R,
    buf: Vec<u8>,
    /// A `\r` ending the previous chunk, not yet passed on (its follower decides).
    held_cr: bool,
    eof: bool,
}

impl<R: Read> CrlfToLf<R> {
    fn new(inner: R) -> Self {
        CrlfToLf {
            inner,
            buf: vec![0; 64 * 1024],
            held_cr: false,
            eof: false,
        }
    }
}

impl<R: Read> Read for CrlfToLf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        // Loops only while a chunk produced nothing to return (a lone held `\r`); every turn
        // either reads more input or reaches its end.
        loop {
            if self.eof || out.is_empty() {
                if self.held_cr && !out.is_empty() {
                    self.held_cr = false;
                    out[0] = b'\r';
                    return Ok(1);
                }
                return Ok(0);
            }
            // leave room for a held `\r` written in front
            let want = out.len().min(self.buf.len()).max(2) - 1;
            let n = self.inner.read(&mut self.buf[..want])?;
            if n == 0 {
                self.eof = true;
                continue;
            }
            let mut k = 0;
            let mut held = std::mem::take(&mut self.held_cr);
            for i in 0..n {
                let b = self.buf[i];
                if held {
                    held = false;
                    if b != b'\n' {
                        out[k] = b'\r';
                        k += 1;
                    }
                }
                if b == b'\r' {
                    held = true;
                } else {
                    out[k] = b;
                    k += 1;
                }
            }
            self.held_cr = held;
            if k > 0 {
                return Ok(k);
            }
        }
    }
}

/// One CodeCarbon row (in [`CODECARBON_COLUMNS`] order) for a run.
pub fn codecarbon_row(rec: &RunRecord) -> Vec<String> {
    let pue = rec.pue;
    let dur = rec.duration_s;
    let e = &rec.energy_kwh;
    let emissions = rec.emissions_kg.operational;
    let power = |kwh: f64| {
        if dur > 0.0 {
            py_float(kwh * pue * JOULES_PER_KWH / dur)
        } else {
            String::new()
        }
    };
    let loc = cc_location(&rec.location);
    let opt_num = |x: f64| if x > 0.0 { py_float(x) } else { String::new() };
    let mut row = vec![
        timestamp_utc(rec),
        rec.project.clone(),
        rec.id.clone(),
        rec.tags.get(EXPERIMENT_TAG).cloned().unwrap_or_default(),
        py_float(dur),
        py_float(emissions),
        if dur > 0.0 {
            py_float(emissions / dur)
        } else {
            String::new()
        },
        power(e.cpu.0),
        power(e.gpu.0),
        power(e.ram.0),
        py_float(e.cpu.0 * pue),
        py_float(e.gpu.0 * pue),
        py_float(e.ram.0 * pue),
        py_float(e.facility.0),
        String::new(), // water_consumed: not assessed
        loc.country_name,
        loc.country_iso_code,
        loc.region,
        loc.cloud_provider,
        loc.cloud_region,
        String::new(), // os
        String::new(), // python_version
        String::new(), // codecarbon_version
        if rec.host.logical_cpus > 0 {
            rec.host.logical_cpus.to_string()
        } else {
            String::new()
        },
        if rec.host.cpu_model == "unknown" {
            String::new()
        } else {
            rec.host.cpu_model.clone()
        },
        rec.host.gpus.len().to_string(),
        gpu_model(&rec.host.gpus),
        String::new(), // longitude
        String::new(), // latitude
        opt_num(rec.host.ram_gb * 1e9 / BYTES_PER_GIB),
        rec.scope.clone(),
        String::new(), // cpu_utilization_percent
        String::new(), // gpu_utilization_percent
        String::new(), // ram_utilization_percent
        String::new(), // ram_used_gb
        if loc.on_cloud { "Y" } else { "N" }.to_string(),
        py_float(pue),
        String::new(), // wue
    ];
    // What an import from CodeCarbon kept goes back into the columns wattprint leaves empty.
    if let Some(kept) = rec.imported.as_ref().map(|i| &i.codecarbon) {
        for (cell, col) in row.iter_mut().zip(CODECARBON_COLUMNS) {
            if cell.is_empty() {
                if let Some(v) = kept.get(col) {
                    cell.clone_from(v);
                }
            }
        }
    }
    row
}

/// Write runs as CodeCarbon's `emissions.csv` (header, then one row per run in the given order).
pub fn write_codecarbon<W: Write>(w: W, recs: &[RunRecord]) -> Result<()> {
    let mut wr = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(w);
    wr.write_record(CODECARBON_COLUMNS)?;
    for r in recs {
        wr.write_record(codecarbon_row(r))?;
    }
    wr.flush()?;
    Ok(())
}

/// Our plain CSV columns (one row per run); documented in docs/store-and-interchange.md.
pub const CSV_COLUMNS: [&str; 40] = [
    "id",
    "project",
    "status",
    "exit_code",
    "signal",
    "started_at",
    "ended_at",
    "duration_s",
    "scope",
    "hostname",
    "tags",
    "command",
    "method_cpu",
    "method_gpu",
    "method_ram",
    "energy_cpu_kwh",
    "energy_gpu_kwh",
    "energy_ram_kwh",
    "energy_other_kwh",
    "energy_dynamic_kwh",
    "energy_static_kwh",
    "energy_it_kwh",
    "energy_infrastructure_kwh",
    "energy_facility_kwh",
    "pue",
    "intensity_g_per_kwh",
    "intensity_source",
    "location",
    "location_known",
    "emissions_dynamic_kg",
    "emissions_static_kg",
    "emissions_infrastructure_kg",
    "emissions_embodied_kg",
    "emissions_operational_kg",
    "emissions_total_kg",
    "samples",
    "warnings",
    "factors_version",
    "wattprint_version",
    "schema",
];

fn csv_row(r: &RunRecord) -> Vec<String> {
    let f = |x: f64| format!("{}", wattprint_core::format::no_neg_zero(x));
    let e = &r.energy_kwh;
    let m = &r.emissions_kg;
    vec![
        r.id.clone(),
        r.project.clone(),
        r.status.as_str().to_string(),
        r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
        r.signal.map(|c| c.to_string()).unwrap_or_default(),
        r.started_at.clone(),
        r.ended_at.clone().unwrap_or_default(),
        f(r.duration_s),
        r.scope.clone(),
        r.host.hostname.clone(),
        serde_json::to_string(&r.tags).unwrap_or_default(),
        serde_json::to_string(&r.command).unwrap_or_default(),
        r.methods.cpu.clone(),
        r.methods.gpu.clone(),
        r.methods.ram.clone(),
        f(e.cpu.0),
        f(e.gpu.0),
        f(e.ram.0),
        f(e.other.0),
        f(e.dynamic.0),
        f(e.static_.0),
        f(e.it.0),
        f(e.infrastructure.0),
        f(e.facility.0),
        f(r.pue),
        f(r.carbon_intensity.g_per_kwh),
        r.carbon_intensity.source.clone(),
        r.location.code.clone(),
        r.location.known.to_string(),
        f(m.dynamic),
        f(m.static_),
        f(m.infrastructure),
        // Empty when not counted: never a zero for something not counted.
        m.embodied_kg().map(f).unwrap_or_default(),
        f(m.operational),
        f(m.total),
        r.samples.to_string(),
        r.warnings.join(" | "),
        r.factors_version.clone(),
        r.wattprint_version.clone(),
        r.schema.clone(),
    ]
}

/// Write runs as our plain CSV.
pub fn write_csv<W: Write>(w: W, recs: &[RunRecord]) -> Result<()> {
    let mut wr = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(w);
    wr.write_record(CSV_COLUMNS)?;
    for r in recs {
        wr.write_record(csv_row(r))?;
    }
    wr.flush()?;
    Ok(())
}

/// Write runs as JSON Lines: one `wattprint.run/1` record per line.
pub fn write_jsonl<W: Write>(mut w: W, recs: &[RunRecord]) -> Result<()> {
    for r in recs {
        serde_json::to_writer(&mut w, r)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

/// A row of an imported file that became a run record.
#[derive(Debug, Clone)]
pub struct ImportedRow {
    /// 1-based line of the file where the row starts (the header is line 1).
    pub line: u64,
    pub record: RunRecord,
}

/// A row that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

/// The outcome of reading a CodeCarbon file.
#[derive(Debug, Clone, Default)]
pub struct ParsedImport {
    pub rows: Vec<ImportedRow>,
    pub errors: Vec<RowError>,
    /// Things the user should know that are not errors (repeated run ids...).
    pub notes: Vec<String>,
}

/// Column lookup for one file.
struct Columns {
    index: BTreeMap<String, usize>,
}

impl Columns {
    fn get<'a>(&self, rec: &'a csv::StringRecord, name: &str) -> &'a str {
        self.index
            .get(name)
            .and_then(|&i| rec.get(i))
            .map(str::trim)
            .unwrap_or("")
    }
}

fn is_missing(s: &str) -> bool {
    s.is_empty() || s.eq_ignore_ascii_case("nan") || s.eq_ignore_ascii_case("none")
}

fn num(cols: &Columns, rec: &csv::StringRecord, name: &str) -> Result<Option<f64>, String> {
    let s = cols.get(rec, name);
    if is_missing(s) {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(format!("column `{name}`: `{s}` is not a number")),
    }
}

fn non_negative(
    cols: &Columns,
    rec: &csv::StringRecord,
    name: &str,
    unit: &str,
) -> Result<Option<f64>, String> {
    match num(cols, rec, name)? {
        Some(v) if v < 0.0 => Err(format!(
            "column `{name}`: {v} {unit} is negative; it must be zero or more"
        )),
        other => Ok(other),
    }
}

fn required(
    cols: &Columns,
    rec: &csv::StringRecord,
    name: &str,
    unit: &str,
) -> Result<f64, String> {
    non_negative(cols, rec, name, unit)?
        .ok_or_else(|| format!("column `{name}` is empty; it is required ({unit})"))
}

/// Parse CodeCarbon's timestamp: RFC 3339, or a date and time without offset (what CodeCarbon
/// writes, in local time), read in `zone`. Returns the time, whether an offset was given, and
/// how a local time was read.
fn parse_timestamp(
    s: &str,
    zone: &crate::codecarbon_extra::ImportZone,
) -> Result<(OffsetDateTime, bool, String), String> {
    let t = s.trim();
    if let Ok(dt) = OffsetDateTime::parse(t, &Rfc3339) {
        return Ok((dt, true, String::new()));
    }
    let normal = t.replacen(' ', "T", 1);
    let with_frac = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"
    );
    let plain = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    if let Ok(dt) = PrimitiveDateTime::parse(&normal, &plain)
        .or_else(|_| PrimitiveDateTime::parse(&normal, &with_frac))
    {
        let (at, how) = zone.resolve(dt)?;
        return Ok((at, false, how));
    }
    Err(format!(
        "column `timestamp`: `{t}` is not a date and time (expected e.g. 2024-05-01T12:30:00 or 2024-05-01T12:30:00Z)"
    ))
}

/// A stable id for a row without `run_id`: FNV-1a over its identifying fields.
fn derived_id(fields: &[&str]) -> String {
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for f in fields {
        for b in f.bytes().chain(std::iter::once(0x1f)) {
            h ^= b as u128;
            h = h.wrapping_mul(0x0000000001000000000000000000013B);
        }
    }
    let hex = format!("{h:032x}");
    format!(
        "cc-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The location of an imported row.
fn import_location(cols: &Columns, rec: &csv::StringRecord, src: &str) -> LocationRecord {
    let country_name = cols.get(rec, "country_name");
    let iso3 = cols.get(rec, "country_iso_code");
    let region = cols.get(rec, "region");
    let provider = cols.get(rec, "cloud_provider");
    let cloud_region = cols.get(rec, "cloud_region");
    let pue_source = format!("imported from CodeCarbon ({src})");
    if !provider.is_empty() && !cloud_region.is_empty() {
        let found = wattprint_core::factors::Provider::parse(provider)
            .and_then(|p| wattprint_core::factors::find_region(p, cloud_region));
        return match found {
            Some(r) => LocationRecord {
                code: r.id.clone(),
                name: r.name.clone(),
                known: true,
                pue_source,
            },
            None => LocationRecord {
                code: format!("{}:{}", provider.to_lowercase(), cloud_region),
                name: format!("{provider} {cloud_region}"),
                known: true,
                pue_source,
            },
        };
    }
    let mut name = country_name.to_string();
    if !region.is_empty() {
        name = if name.is_empty() {
            region.to_string()
        } else {
            format!("{region}, {name}")
        };
    }
    if is_missing(iso3) {
        return LocationRecord {
            code: "unknown".into(),
            name: if name.is_empty() {
                "unknown".into()
            } else {
                name
            },
            known: false,
            pue_source,
        };
    }
    let code = match iso3_to_iso2(iso3) {
        Some(two) => region_zone(two, region).unwrap_or_else(|| two.to_string()),
        None => iso3.to_ascii_uppercase(),
    };
    LocationRecord {
        code,
        name: if name.is_empty() {
            iso3.to_string()
        } else {
            name
        },
        known: true,
        pue_source,
    }
}

/// An imported record as the server would take it ([`RunRecord::validate`]: physical bounds,
/// possible times, consistent figures), or why not, for the row's error.
fn checked_import(r: RunRecord) -> Result<RunRecord, String> {
    r.validate().map_err(|e| format!("refused: {e}"))?;
    Ok(r)
}

/// Build a run record from one CodeCarbon row.
fn import_row(
    cols: &Columns,
    rec: &csv::StringRecord,
    line: u64,
    source: &str,
    project: Option<&str>,
    zone: &crate::codecarbon_extra::ImportZone,
    unknown: &[String],
) -> Result<RunRecord, String> {
    let src = format!("{source}, line {line}");
    let ts = cols.get(rec, "timestamp");
    if ts.is_empty() {
        return Err("column `timestamp` is empty; it is required".into());
    }
    let (end, had_offset, read_in) = parse_timestamp(ts, zone)?;
    let duration = required(cols, rec, "duration", "seconds")?;
    let emissions = required(cols, rec, "emissions", "kg CO2e")?;
    let consumed = required(cols, rec, "energy_consumed", "kWh")?;
    let pue = num(cols, rec, "pue")?.unwrap_or(1.0);
    if pue < 1.0 {
        return Err(format!(
            "column `pue`: {pue} is below 1; PUE is facility energy / IT energy, at least 1.0"
        ));
    }
    let cpu_f = non_negative(cols, rec, "cpu_energy", "kWh")?.unwrap_or(0.0);
    let gpu_f = non_negative(cols, rec, "gpu_energy", "kWh")?.unwrap_or(0.0);
    let ram_f = non_negative(cols, rec, "ram_energy", "kWh")?.unwrap_or(0.0);
    let cpu_count = non_negative(cols, rec, "cpu_count", "CPUs")?;
    let gpu_count = non_negative(cols, rec, "gpu_count", "GPUs")?;
    let ram_gib = non_negative(cols, rec, "ram_total_size", "GiB")?;
    if duration > wattprint_core::validate::MAX_DURATION_S {
        return Err(format!(
            "column `duration`: {duration} s is longer than the longest run (366 days; see docs/server.md, Validation)"
        ));
    }
    let start = end
        .checked_sub(time::Duration::seconds_f64(duration))
        .ok_or_else(|| "column `duration`: reaches before year 1".to_string())?;
    let fmt = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();

    let run_id = cols.get(rec, "run_id");
    let id = if run_id.is_empty() {
        derived_id(&[
            ts,
            cols.get(rec, "project_name"),
            cols.get(rec, "duration"),
            cols.get(rec, "emissions"),
            cols.get(rec, "energy_consumed"),
        ])
    } else {
        run_id.to_string()
    };
    let project = match project {
        Some(p) => p.to_string(),
        None => {
            let p = cols.get(rec, "project_name");
            if p.is_empty() {
                "default".to_string()
            } else {
                p.to_string()
            }
        }
    };
    let mut warnings = vec![
        format!("imported from CodeCarbon file {src}"),
        "CodeCarbon does not split idle (static) from dynamic energy: all energy is counted as dynamic".to_string(),
    ];
    if !had_offset {
        warnings.push(format!(
            "the CodeCarbon timestamp has no time zone (CodeCarbon writes local time); it was read in {read_in}"
        ));
    }
    let parts_f = cpu_f + gpu_f + ram_f;
    let (cpu_f, gpu_f, ram_f) = if parts_f > consumed * (1.0 + 1e-9) + 1e-15 {
        warnings.push(format!(
            "cpu_energy + gpu_energy + ram_energy ({parts_f} kWh) exceed energy_consumed ({consumed} kWh); energy_consumed is used as the total and the three are scaled down to it"
        ));
        let k = consumed / parts_f;
        (cpu_f * k, gpu_f * k, ram_f * k)
    } else {
        (cpu_f, gpu_f, ram_f)
    };
    let intensity = if consumed > 0.0 {
        emissions * 1000.0 / consumed
    } else {
        if emissions > 0.0 {
            // A record cannot carry them: operational emissions are energy × intensity.
            return Err(format!(
                "column `emissions`: {emissions} kg CO2e without energy (energy_consumed is 0): the intensity cannot be derived and the record would contradict itself"
            ));
        }
        0.0
    };

    // CodeCarbon's energies include PUE; ours are IT energy before PUE.
    let it = consumed / pue;
    let (cpu, gpu, ram) = (cpu_f / pue, gpu_f / pue, ram_f / pue);
    let other = (it - cpu - gpu - ram).max(0.0);
    let other = if other > 1e-12 * it.max(1e-300) {
        other
    } else {
        0.0
    };
    let kwh = KilowattHours;
    let energy_kwh = EnergyKwh {
        cpu: kwh(cpu),
        gpu: kwh(gpu),
        ram: kwh(ram),
        other: kwh(other),
        dynamic: kwh(it),
        static_: kwh(0.0),
        it: kwh(it),
        infrastructure: kwh(it * (pue - 1.0)),
        facility: kwh(consumed),
        total: kwh(it),
    };
    let it_kg = emissions / pue;
    let emissions_kg = EmissionsKg {
        dynamic: it_kg,
        static_: 0.0,
        infrastructure: emissions - it_kg,
        embodied: 0.0,
        operational: emissions,
        total: emissions,
        embodied_counted: false,
    };

    let mut tags = BTreeMap::new();
    let experiment = cols.get(rec, "experiment_id");
    if !experiment.is_empty() {
        tags.insert(EXPERIMENT_TAG.to_string(), experiment.to_string());
    }
    let model = cols.get(rec, "gpu_model");
    let gpu_name = model
        .split_once(" x ")
        .map(|(_, n)| n)
        .unwrap_or(model)
        .trim();
    let gpus = (0..gpu_count.unwrap_or(0.0).round() as u32)
        .map(|i| GpuInfo {
            index: i,
            name: if gpu_name.is_empty() {
                "unknown".into()
            } else {
                gpu_name.to_string()
            },
            uuid: String::new(),
        })
        .collect();
    let cpu_model = cols.get(rec, "cpu_model");
    let scope = cols.get(rec, "tracking_mode");
    let location = import_location(cols, rec, &src);
    let intensity_source =
        format!("implied by the imported CodeCarbon row: emissions / energy_consumed ({src})");
    Ok(RunRecord {
        schema: SCHEMA.to_string(),
        id,
        project,
        tags,
        command: Vec::new(),
        started_at: fmt(start),
        ended_at: Some(fmt(end)),
        duration_s: duration,
        status: RunStatus::Completed,
        exit_code: None,
        signal: None,
        host: HostInfo {
            hostname: "unknown".into(),
            cpu_model: if cpu_model.is_empty() {
                "unknown".into()
            } else {
                cpu_model.to_string()
            },
            logical_cpus: cpu_count.unwrap_or(0.0).round() as usize,
            ram_gb: ram_gib.unwrap_or(0.0) * BYTES_PER_GIB / 1e9,
            gpus,
        },
        scope: if scope.is_empty() {
            "machine".into()
        } else {
            scope.to_string()
        },
        interval_s: 0.0,
        energy_kwh,
        devices: Vec::new(),
        methods: Methods {
            cpu: IMPORTED_METHOD.into(),
            gpu: IMPORTED_METHOD.into(),
            ram: IMPORTED_METHOD.into(),
        },
        pue,
        carbon_intensity: CarbonIntensity {
            g_per_kwh: intensity,
            source: intensity_source.clone(),
            signal: Some("average".into()),
            resolution: Some("constant".into()),
            live: None,
        },
        location,
        emissions_kg,
        equivalents: Equivalents::of(GramsCo2e(emissions * 1000.0)),
        assumptions: vec![
            Assumption::new("carbon intensity", intensity, "gCO2e/kWh", intensity_source),
            Assumption::new(
                "PUE",
                pue,
                "ratio",
                format!("the CodeCarbon row's pue column ({src})"),
            ),
        ],
        factors_version: "imported (CodeCarbon's own factors)".into(),
        warnings,
        samples: 0,
        skipped_ticks: 0,
        wattprint_version: env!("CARGO_PKG_VERSION").to_string(),
        embodied_not_counted: Some(
            "imported from CodeCarbon, which does not count embodied emissions".to_string(),
        ),
        imported: {
            let k = crate::codecarbon_extra::kept(|c| cols.get(rec, c).to_string(), unknown);
            (!k.is_empty()).then_some(wattprint_core::record::Imported { codecarbon: k })
        },
        tracker: None,
        segments: None,
        job: None,
        sharing: None,
        job_nodes: None,
        job_nodelist: None,
        lineage: None,
        discarded: None,
        io: None,
        limits: None,
        limit_events: Vec::new(),
        stopped: None,
        prediction: None,
    })
}

/// Read a CodeCarbon `emissions.csv`. Columns are matched by header name (any order, extra
/// columns ignored); [`CODECARBON_REQUIRED`] must be present. A file-level problem (unreadable,
/// missing columns) is an `Err`; a bad row goes to `errors` with its line and the other rows are
/// still read. When a `run_id` appears on several rows (CodeCarbon appends a row at every
/// `flush()`), the last one is kept. `source` names the file in records and messages;
/// `project` replaces every row's `project_name`.
pub fn parse_codecarbon<R: Read>(
    input: R,
    source: &str,
    project: Option<&str>,
    zone: &crate::codecarbon_extra::ImportZone,
) -> Result<ParsedImport> {
    let newlines = std::rc::Rc::new(std::cell::RefCell::new(Vec::<u64>::new()));
    // The reader counts lines wrongly on CRLF files (each row's number came out one short):
    // it reads them with `\r\n` turned into `\n`, so its line numbers are the file's.
    let mut rd = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(NewlineIndex {
            inner: CrlfToLf::new(input),
            pos: 0,
            newlines: std::rc::Rc::clone(&newlines),
        });
    // The reader places a row that follows blank lines at the first blank line: the row's line
    // is the one after the run of newlines that starts where the reader says it starts.
    let line_at = |p: &csv::Position| -> u64 {
        let nl = newlines.borrow();
        let mut i = nl.partition_point(|&o| o < p.byte());
        let mut line = 1 + i as u64;
        let mut b = p.byte();
        while nl.get(i) == Some(&b) {
            line += 1;
            b += 1;
            i += 1;
        }
        line
    };
    let headers = rd
        .headers()
        .with_context(|| format!("{source}: cannot read the CSV header"))?
        .clone();
    let index: BTreeMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().trim_start_matches('\u{feff}').to_string(), i))
        .collect();
    let missing: Vec<&str> = CODECARBON_REQUIRED
        .iter()
        .copied()
        .filter(|c| !index.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "{source}: not a CodeCarbon emissions.csv: the header lacks {} (it needs at least {})",
            missing.join(", "),
            CODECARBON_REQUIRED.join(", ")
        );
    }
    let unknown = crate::codecarbon_extra::unknown_columns(headers.iter());
    let cols = Columns { index };
    let width = headers.len();
    let mut out = ParsedImport::default();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    let mut rec = csv::StringRecord::new();
    loop {
        let line_hint = rd.position().line();
        match rd.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(line_at).unwrap_or(line_hint);
                out.errors.push(RowError {
                    line,
                    message: format!("not valid CSV: {e}"),
                });
                // An I/O or UTF-8 error may not advance; stop rather than loop.
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    break;
                }
                continue;
            }
        }
        let line = rec.position().map(line_at).unwrap_or(line_hint);
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if rec.len() != width {
            out.errors.push(RowError {
                line,
                message: format!("has {} fields where the header has {width}", rec.len()),
            });
            continue;
        }
        match import_row(&cols, &rec, line, source, project, zone, &unknown)
            .and_then(checked_import)
        {
            Ok(r) => {
                if let Some(&i) = by_id.get(&r.id) {
                    out.notes.push(format!(
                        "run_id {} appears on line {} and again on line {line}; the later row is kept (CodeCarbon appends a row at every flush)",
                        r.id, out.rows[i].line
                    ));
                    out.rows[i] = ImportedRow { line, record: r };
                } else {
                    by_id.insert(r.id.clone(), out.rows.len());
                    out.rows.push(ImportedRow { line, record: r });
                }
            }
            Err(message) => out.errors.push(RowError { line, message }),
        }
    }
    if !unknown.is_empty() {
        out.notes.push(format!(
            "column(s) not understood (not in CodeCarbon 3.3.2's emissions.csv): {}; their values are kept under imported.codecarbon",
            unknown.join(", ")
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr() {
        assert_eq!(py_float(0.0), "0.0");
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(20.0), "20.0");
        assert_eq!(py_float(17.367462284999988), "17.367462284999988");
        assert_eq!(py_float(5.863516507272113e-06), "5.863516507272113e-06");
        assert_eq!(py_float(0.00010463278265622357), "0.00010463278265622357");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(1.5e-5), "1.5e-05");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(py_float(123456789012345.6), "123456789012345.6");
    }

    #[test]
    fn country_codes_both_ways() {
        assert_eq!(iso2_to_iso3("FR"), Some("FRA"));
        assert_eq!(iso3_to_iso2("USA"), Some("US"));
        assert_eq!(iso3_to_iso2("XXX"), None);
        assert_eq!(zone_region("US-CA"), "california");
        assert_eq!(region_zone("US", "california").as_deref(), Some("US-CA"));
        assert_eq!(region_zone("CA", "quebec").as_deref(), Some("CA-QC"));
        assert_eq!(region_zone("FR", ""), None);
    }
}
