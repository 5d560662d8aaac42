//! `wattprint when`: the cleanest time to start a job of a given length, from a carbon-intensity
//! forecast. The search is `wattprint_core::providers::window::best_window`; this module
//! fetches the forecast and formats the answer.

use crate::provider_config::{self, ProviderKind};
use crate::summary::fmt_mass_kg;
use anyhow::{bail, Result};
use std::time::Duration;
use wattprint_core::location::location_from_env;
use wattprint_core::providers::window::{best_window, fmt_hm, WindowQuery};
use wattprint_core::providers::{attribution, iso, now_unix, KindCounts, Signal};
use wattprint_core::units::{parse_duration, round_sig, RECORD_DIGITS};

/// `writeln!` into the output buffer (writing to a `String` cannot fail).
macro_rules! outln {
    ($o:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  wattprint when --location FR --duration 6h\n  \
wattprint when --provider uk --location scotland --duration 3h --within 24h --kwh 40\n  \
wattprint when --location CAISO_NORTH --duration 90m --provider watttime --json\n\n\
Providers are configured by environment: WATTPRINT_ELECTRICITYMAPS_TOKEN, \
WATTPRINT_WATTTIME_USERNAME/PASSWORD, or --provider uk (no key). See docs/live-intensity.md."
)]
pub struct Args {
    /// Grid zone in the provider's terms: Electricity Maps zone (FR, US-CAL-CISO), UK area (GB,
    /// scotland, regionid:13, postcode:RG10) or WattTime region (CAISO_NORTH). Default:
    /// $WATTPRINT_LOCATION (GB for --provider uk).
    #[arg(long, value_name = "ZONE")]
    pub location: Option<String>,
    /// How long the job runs: `6h`, `90m`, `2d`.
    #[arg(long, value_name = "DURATION")]
    pub duration: String,
    /// The job must finish within this time from now (and within the forecast).
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub within: String,
    /// Energy of the job in kWh: adds the expected emissions and the saving in kgCO2e.
    #[arg(long, value_name = "KWH")]
    pub kwh: Option<f64>,
    /// Forecast provider (default: $WATTPRINT_INTENSITY_PROVIDER, else the one whose
    /// credentials are set).
    #[arg(long, value_enum)]
    pub provider: Option<crate::carbon_args::ProviderArg>,
    /// Do not read or write the on-disk cache.
    #[arg(long)]
    pub no_cache: bool,
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
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(code),
    }
}

fn secs(flag: &str, v: &str) -> Result<i64> {
    let d: Duration = parse_duration(v).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    let s = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    if s <= 0 {
        bail!("{flag} {v}: must be at least one second, e.g. {flag} 6h");
    }
    Ok(s)
}

/// `2024-05-01 18:00 UTC`.
fn when(t: i64) -> String {
    let s = iso::format(t);
    format!("{} {} UTC", &s[..10], &s[11..16])
}

fn run_into(o: &mut String, args: Args) -> Result<i32> {
    let duration_s = secs("--duration", &args.duration)?;
    let within_s = secs("--within", &args.within)?;
    if let Some(k) = args.kwh {
        if !k.is_finite() || k < 0.0 {
            bail!("--kwh {k}: must be a non-negative energy in kWh, e.g. --kwh 12.5");
        }
    }
    if duration_s > within_s {
        bail!(
            "--duration {} is longer than --within {}: the job must fit in the window searched; give a longer --within (forecasts reach 24-72 h ahead)",
            args.duration,
            args.within
        );
    }
    let Some(cfg) =
        provider_config::configured(args.provider.map(Into::into), args.no_cache, crate::env())?
    else {
        eprintln!("wattprint: {}", provider_config::not_configured_help());
        return Ok(2);
    };
    let zone = match args
        .location
        .clone()
        .or_else(|| location_from_env(crate::env()))
        .or_else(|| cfg.kind.default_zone().map(str::to_string))
    {
        Some(z) => z,
        None => bail!(
            "--location is required: give {} (or set WATTPRINT_LOCATION)",
            cfg.kind.zone_examples()
        ),
    };
    if cfg.kind != ProviderKind::Uk && zone.contains(':') {
        bail!(
            "`{zone}` looks like a cloud region; {} forecasts are per grid zone: give {}",
            cfg.kind.name(),
            cfg.kind.zone_examples()
        );
    }
    let now = now_unix();
    let forecast = cfg.provider.forecast(
        &zone,
        Duration::from_secs(u64::try_from(within_s).unwrap_or(0)),
    );
    for n in cfg.take_debug_notes() {
        eprintln!("wattprint: debug: {n}");
    }
    let points = forecast?;
    let plan = best_window(
        &points,
        &WindowQuery {
            now,
            duration_s,
            latest_start: None,
            latest_end: Some(now.saturating_add(within_s)),
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let counts = KindCounts::of(&points);
    let n_forecast = counts.forecast;
    let source = points.first().map(|p| p.source.clone()).unwrap_or_default();
    let credit = attribution(cfg.kind.name());
    let retrieved_at = iso::format(cfg.provider.retrieved_at().unwrap_or(now));
    let kg = |g_per_kwh: f64| args.kwh.map(|e| e * g_per_kwh / 1000.0);
    if args.json {
        // Values rounded to the record's significant digits: no floating noise.
        let r = |x: f64| round_sig(x, RECORD_DIGITS);
        let kg = |g_per_kwh: f64| kg(g_per_kwh).map(r);
        let w = |w: &wattprint_core::providers::window::Window| {
            serde_json::json!({
                "start": w.start,
                "end": w.end,
                "start_utc": iso::format(w.start),
                "end_utc": iso::format(w.end),
                "g_per_kwh": r(w.g_per_kwh),
                "emissions_kg": kg(w.g_per_kwh),
            })
        };
        let v = serde_json::json!({
            "zone": zone,
            "provider": cfg.kind.name(),
            "selected_by": cfg.selected_by,
            "signal": plan.signal,
            "source": source,
            "now": now,
            "duration_s": duration_s,
            "within_s": within_s,
            "first_start": plan.first_start,
            "horizon_end": plan.horizon_end,
            "horizon_end_utc": iso::format(plan.horizon_end),
            "best": w(&plan.best),
            "start_now": w(&plan.start_now),
            "wait_s": plan.best.start - now,
            "saving_percent": r(plan.saving_percent),
            "kwh": args.kwh,
            "saving_kg": args.kwh.map(|e| r(e * (plan.start_now.g_per_kwh - plan.best.g_per_kwh) / 1000.0)),
            "points": points.len(),
            "forecast_points": n_forecast,
            "point_kinds": counts,
            "candidates": plan.candidates,
            "attribution": credit,
            "retrieved_at": retrieved_at,
        });
        outln!(o, "{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    outln!(
        o,
        "Best start for a {} job in {zone} within {} ({}, {} signal; forecast to {})",
        fmt_hm(duration_s),
        fmt_hm(within_s),
        cfg.kind.name(),
        plan.signal,
        when(plan.horizon_end)
    );
    let wait = plan.best.start - now;
    let best_when = if wait <= 0 {
        "now".to_string()
    } else {
        format!("in {}", fmt_hm(wait))
    };
    let e = |g: f64| match kg(g) {
        Some(k) => format!("  → {}", fmt_mass_kg(k)),
        None => String::new(),
    };
    outln!(
        o,
        "  best       {}  {best_when:<22} {:7.1} gCO2e/kWh{}",
        when(plan.best.start),
        plan.best.g_per_kwh,
        e(plan.best.g_per_kwh)
    );
    let now_label = if plan.first_start > now {
        format!("forecast starts in {}", fmt_hm(plan.first_start - now))
    } else {
        "now".to_string()
    };
    outln!(
        o,
        "  start now  {}  {now_label:<22} {:7.1} gCO2e/kWh{}",
        when(plan.start_now.start),
        plan.start_now.g_per_kwh,
        e(plan.start_now.g_per_kwh)
    );
    if plan.best.start == plan.start_now.start {
        outln!(
            o,
            "  starting now is already the cleanest choice in this horizon"
        );
    } else {
        let saved = args
            .kwh
            .map(|e| e * (plan.start_now.g_per_kwh - plan.best.g_per_kwh) / 1000.0);
        outln!(
            o,
            "  saving     {:.1} %{}",
            plan.saving_percent,
            saved
                .map(|k| format!(
                    " ({} CO2e on {} kWh)",
                    fmt_mass_kg(k),
                    args.kwh.unwrap_or(0.0)
                ))
                .unwrap_or_default()
        );
    }
    if plan.signal == Signal::Marginal {
        outln!(
            o,
            "  marginal signal: the saving is in emissions caused at the margin (WattTime MOER), not in average grid intensity"
        );
    }
    outln!(o, "  source: {source}, {} points ({counts})", points.len());
    if let Some(a) = &credit {
        outln!(o, "  data: {}; retrieved {retrieved_at}", a.line());
    }
    Ok(0)
}
