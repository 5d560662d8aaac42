//! The side-by-side table of [`super::evaluate_all`]: text for the terminal, Markdown for papers
//! and for docs/methodology.md (a test checks the doc's table is this code's output), JSON via
//! serde. Numbers use significant digits ([`crate::units::round_sig`]), never `-0`; a part a
//! tool does not count is written as such, never as a zero.

use super::{why, Job, Part, ProfileResult};

/// Significant digits of the table's figures.
pub const DIGITS: u32 = 4;

/// `x` to [`DIGITS`] significant digits, without exponent and without `-0`.
pub fn sig(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let r = crate::units::round_sig(x, DIGITS);
    if r == 0.0 {
        return "0".into();
    }
    let mag = r.abs().log10().floor() as i32;
    let decimals = (DIGITS as i32 - 1 - mag).max(0) as usize;
    format!("{r:.decimals$}")
}

/// Mass with a unit suited to its size (kg, g, mg), to [`DIGITS`] significant digits.
pub fn mass(kg: f64) -> String {
    let a = kg.abs();
    if a == 0.0 {
        "0 kg".into()
    } else if a < 1e-3 {
        format!("{} mg", sig(kg * 1e6))
    } else if a < 1.0 {
        format!("{} g", sig(kg * 1e3))
    } else {
        format!("{} kg", sig(kg))
    }
}

fn part(p: &Part) -> String {
    match p {
        Ok(kg) => mass(*kg),
        Err(_) => "not counted".into(),
    }
}

/// One row of the table: cells in the order of [`HEADER`].
pub fn row(base: &ProfileResult, r: &ProfileResult) -> Vec<String> {
    if let Err(why) = &r.applicable {
        return vec![
            r.tool.to_string(),
            "–".into(),
            "–".into(),
            "–".into(),
            "–".into(),
            "–".into(),
            "not counted".into(),
            why.clone(),
        ];
    }
    let reasons = why(base, r);
    vec![
        r.tool.to_string(),
        sig(r.it_kwh),
        sig(r.facility_kwh),
        sig(r.pue),
        format!("{} ({})", sig(r.intensity_g_per_kwh), r.intensity_basis),
        mass(r.operational_kg),
        part(&r.embodied_kg),
        if r.profile == base.profile {
            "reference".into()
        } else if reasons.is_empty() {
            "same factors".into()
        } else {
            reasons.join("; ")
        },
    ]
}

/// Column titles.
pub const HEADER: [&str; 8] = [
    "tool",
    "IT kWh",
    "facility kWh",
    "PUE",
    "g/kWh (basis)",
    "operational",
    "embodied",
    "why it differs from wattprint",
];

/// The Markdown table (first result is the reference, wattprint's).
pub fn markdown(results: &[ProfileResult]) -> String {
    let Some(base) = results.first() else {
        return String::new();
    };
    let esc = |s: &str| s.replace('|', "\\|");
    let mut o = format!(
        "| {} |\n|{}\n",
        HEADER.join(" | "),
        "---|".repeat(HEADER.len())
    );
    for r in results {
        let cells: Vec<String> = row(base, r).iter().map(|c| esc(c)).collect();
        o.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    o
}

/// The text table: fixed columns for the figures, the reasons on their own line.
pub fn text(results: &[ProfileResult]) -> String {
    let Some(base) = results.first() else {
        return String::new();
    };
    let mut o = format!(
        "{:<24} {:>10} {:>12} {:>6} {:>22} {:>14} {:>14}\n",
        HEADER[0], HEADER[1], HEADER[2], HEADER[3], HEADER[4], HEADER[5], HEADER[6]
    );
    for r in results {
        let c = row(base, r);
        o.push_str(&format!(
            "{:<24} {:>10} {:>12} {:>6} {:>22} {:>14} {:>14}\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        ));
        o.push_str(&format!("    why: {}\n", c[7]));
    }
    o
}

/// The job in one line, for headings.
pub fn describe(job: &Job) -> String {
    let mut parts = Vec::new();
    if job.gpus > 0 {
        let what = match (&job.gpu_model, job.gpu_watts) {
            (_, Some(w)) => format!("GPU at {} W", sig(w)),
            (Some(m), None) => m.clone(),
            (None, None) => "GPU".into(),
        };
        parts.push(format!("{} × {what}", job.gpus));
    }
    if job.cores > 0 {
        parts.push(format!(
            "{} cores{}",
            job.cores,
            job.core_watts
                .map(|w| format!(" at {} W", sig(w)))
                .unwrap_or_default()
        ));
    } else if job.sockets > 0 {
        parts.push(format!(
            "{} CPU socket(s){}",
            job.sockets,
            job.socket_watts
                .map(|w| format!(" at {} W", sig(w)))
                .unwrap_or_default()
        ));
    }
    if job.memory_gb > 0.0 {
        parts.push(format!("{} GB", sig(job.memory_gb)));
    }
    format!(
        "{} for {} h × {} run(s) at {}",
        if parts.is_empty() {
            "no hardware".to_string()
        } else {
            parts.join(" + ")
        },
        sig(job.hours),
        job.runs,
        job.location
    )
}

/// The worked example of docs/methodology.md: 8 × A100 SXM4 with 48 cores and 1 152 GB for
/// 72 h in AWS us-east-1, embodied emissions of a p4d.24xlarge.
pub fn worked_example() -> Job {
    let mut j = Job::new(72.0, "aws:us-east-1");
    j.gpus = 8;
    j.gpu_model = Some("A100 SXM4".into());
    j.cores = 48;
    j.memory_gb = 1152.0;
    j.embodied = crate::factors::instances::find_instance(Some("aws"), "p4d.24xlarge").map(|i| {
        crate::estimate::EmbodiedSpec::instance(
            i,
            crate::factors::embodied::embodied().lifetime_hours,
            1.0,
        )
    });
    j
}
