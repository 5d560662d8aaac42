//! `wattprint regions`: cloud regions ranked by grid intensity × PUE, with the saving of a move.
//!
//! Ranking, area filtering and saving arithmetic live in `wattprint_core::factors::ranking`;
//! this module only formats the report.

use anyhow::Result;
use wattprint_core::factors::{regions_report, RegionsQuery, AREAS, FACTORS_VERSION};

/// `writeln!` into the output buffer (writing to a `String` cannot fail).
macro_rules! outln {
    ($o:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  wattprint regions --provider aws --near aws:eu-west-3\n  \
wattprint regions --provider all --from aws:us-east-1 --kwh 276 --top 5\n  \
wattprint regions --provider gcp --from PL"
)]
pub struct Args {
    /// aws, gcp, azure or all.
    #[arg(long, default_value = "all")]
    pub provider: String,
    /// Only regions in the same area as this cloud region (which is also the savings
    /// reference unless --from is given), or an area name.
    #[arg(long, value_name = "REGION|AREA")]
    pub near: Option<String>,
    /// Compute savings against this location: a cloud region, a country or a zone
    /// (intensity x PUE; default PUE for a country or zone).
    #[arg(long, value_name = "LOCATION")]
    pub from: Option<String>,
    /// Show the N best regions only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub top: Option<u64>,
    /// IT energy of the job in kWh (before PUE): adds emissions and savings in kgCO2e.
    #[arg(long, value_name = "KWH")]
    pub kwh: Option<f64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<i32> {
    let mut o = String::new();
    let code = run_into(&mut o, args)?;
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(o.as_bytes()).and_then(|()| out.flush()) {
        // A closed pipe (`| head`) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(code),
    }
}

fn run_into(o: &mut String, args: Args) -> Result<i32> {
    let report = regions_report(&RegionsQuery {
        provider: Some(args.provider.clone()),
        near: args.near.clone(),
        from: args.from.clone(),
        top: args.top.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        kwh: args.kwh,
    })?;
    if args.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            factors_version: &'static str,
            #[serde(flatten)]
            report: &'a wattprint_core::factors::RegionsReport,
        }
        outln!(
            o,
            "{}",
            serde_json::to_string_pretty(&Out {
                factors_version: FACTORS_VERSION,
                report: &report,
            })?
        );
        return Ok(0);
    }
    outln!(
        o,
        "Cloud regions ranked by grid intensity x PUE ({FACTORS_VERSION})"
    );
    let mut ctx = vec![format!("provider: {}", report.provider)];
    if let Some(a) = &report.near_area {
        ctx.push(format!("area: {a}"));
    }
    if let Some(r) = &report.reference {
        let others: Vec<String> = r
            .by_basis
            .iter()
            .filter(|(b, _)| *b != r.basis)
            .map(|(b, g)| format!("{b} {g}"))
            .collect();
        ctx.push(format!(
            "reference: {} {} = {:.1} gCO2e/kWh ({} {} x PUE {}{})",
            r.code,
            r.name,
            r.effective_g_per_kwh,
            r.basis,
            r.intensity,
            r.pue,
            if others.is_empty() {
                String::new()
            } else {
                format!(
                    "; also {}, each region compared on its own basis",
                    others.join(", ")
                )
            }
        ));
    }
    if let Some(e) = report.kwh {
        ctx.push(format!("energy: {e} kWh IT (before PUE)"));
    }
    outln!(o, "{}", ctx.join("; "));
    if report.rows.is_empty() {
        outln!(o, "no regions match (areas: {})", AREAS.join(", "));
        return Ok(0);
    }
    let has_ref = report.reference.is_some();
    let has_kwh = report.kwh.is_some();
    let mut head = format!(
        "{:>3}  {:<30} {:>9} {:<10} {:>6} {:>9}",
        "#", "region", "gCO2e/kWh", "basis", "PUE", "effective"
    );
    if has_ref {
        head.push_str(&format!(" {:>8}", "saving"));
    }
    if has_kwh {
        head.push_str(&format!(" {:>10}", "kgCO2e"));
        if has_ref {
            head.push_str(&format!(" {:>10}", "saved kg"));
        }
    }
    head.push_str("  name");
    outln!(o, "{head}");
    for (i, row) in report.rows.iter().enumerate() {
        let r = &row.rank;
        let mut line = format!(
            "{:>3}  {:<30} {:>9.2} {:<10} {:>6} {:>9.2}",
            i + 1,
            r.id,
            r.intensity,
            r.basis,
            r.pue,
            r.effective_g_per_kwh
        );
        if has_ref {
            let pct = if row.bases_differ {
                "bases≠".to_string()
            } else {
                row.saving
                    .and_then(|s| s.percent)
                    .map_or_else(|| "-".to_string(), |p| format!("{p:.1}%"))
            };
            line.push_str(&format!(" {pct:>8}"));
        }
        if has_kwh {
            line.push_str(&format!(" {:>10.3}", row.emissions_kg.unwrap_or_default()));
            if has_ref {
                let kg = row
                    .saving
                    .and_then(|s| s.kg)
                    .map_or_else(|| "-".to_string(), |k| format!("{k:.3}"));
                line.push_str(&format!(" {kg:>10}"));
            }
        }
        line.push_str(&format!("  {}", r.name));
        outln!(o, "{line}");
    }
    if report.reference.is_some() && report.rows.iter().any(|r| r.rank.basis == "unstated") {
        outln!(
            o,
            "unstated basis: the dataset does not say whether its figure is direct or life-cycle; compared with the reference's main figure"
        );
    }
    if report.rows.iter().any(|r| r.bases_differ) {
        outln!(
            o,
            "bases≠: the reference has no intensity on this region's basis (direct vs life-cycle); no saving is claimed"
        );
    }
    outln!(
        o,
        "Intensity sources per region and other datasets' values: wattprint factors cloud REGION"
    );
    Ok(0)
}
