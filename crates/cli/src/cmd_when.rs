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
    let source = points.first().map(|p| p.source.clone()).unwrap_or_default();
    let credit = attribution(cfg.kind.name());
    let retrieved_at = iso::format(cfg.provider.retrieved_at().unwrap_or(now));
    let answer = Answer {
        zone: &zone,
        provider: cfg.kind.name(),
        selected_by: &cfg.selected_by,
        plan: &plan,
        points: &points,
        counts: &counts,
        source: &source,
        credit: credit.as_ref(),
        retrieved_at: &retrieved_at,
        now,
        duration_s,
        within_s,
        kwh: args.kwh,
    };
    if args.json {
        outln!(o, "{}", serde_json::to_string_pretty(&answer.json())?);
    } else {
        answer.text(o);
    }
    Ok(0)
}

/// What `when` found, to print as text or JSON.
struct Answer<'a> {
    zone: &'a str,
    provider: &'static str,
    selected_by: &'a str,
    plan: &'a wattprint_core::providers::window::WindowPlan,
    points: &'a [wattprint_core::providers::IntensityPoint],
    counts: &'a KindCounts,
    source: &'a str,
    credit: Option<&'a wattprint_core::providers::attribution::Attribution>,
    retrieved_at: &'a str,
    now: i64,
    duration_s: i64,
    within_s: i64,
    kwh: Option<f64>,
}

impl Answer<'_> {
    /// Emissions of the job's energy at `g_per_kwh`, when `--kwh` was given.
    fn kg(&self, g_per_kwh: f64) -> Option<f64> {
        self.kwh.map(|e| e * g_per_kwh / 1000.0)
    }

    /// `--json`: values rounded to the record's significant digits (no floating noise).
    fn json(&self) -> serde_json::Value {
        let r = |x: f64| round_sig(x, RECORD_DIGITS);
        let kg = |g_per_kwh: f64| self.kg(g_per_kwh).map(r);
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
        serde_json::json!({
            "zone": self.zone,
            "provider": self.provider,
            "selected_by": self.selected_by,
            "signal": self.plan.signal,
            "source": self.source,
            "now": self.now,
            "duration_s": self.duration_s,
            "within_s": self.within_s,
            "first_start": self.plan.first_start,
            "horizon_end": self.plan.horizon_end,
            "horizon_end_utc": iso::format(self.plan.horizon_end),
            "best": w(&self.plan.best),
            "start_now": w(&self.plan.start_now),
            "wait_s": self.plan.best.start - self.now,
            "saving_percent": r(self.plan.saving_percent),
            "kwh": self.kwh,
            "saving_kg": self.kwh.map(|e| r(e * (self.plan.start_now.g_per_kwh - self.plan.best.g_per_kwh) / 1000.0)),
            "points": self.points.len(),
            "forecast_points": self.counts.forecast,
            "point_kinds": self.counts,
            "candidates": self.plan.candidates,
            "attribution": self.credit,
            "retrieved_at": self.retrieved_at,
        })
    }

    /// The table for people.
    fn text(&self, o: &mut String) {
        outln!(
            o,
            "Best start for a {} job in {} within {} ({}, {} signal; forecast to {})",
            fmt_hm(self.duration_s),
            self.zone,
            fmt_hm(self.within_s),
            self.provider,
            self.plan.signal,
            when(self.plan.horizon_end)
        );
        let wait = self.plan.best.start - self.now;
        let best_when = if wait <= 0 {
            "now".to_string()
        } else {
            format!("in {}", fmt_hm(wait))
        };
        let e = |g: f64| match self.kg(g) {
            Some(k) => format!("  → {}", fmt_mass_kg(k)),
            None => String::new(),
        };
        outln!(
            o,
            "  best       {}  {best_when:<22} {:7.1} gCO2e/kWh{}",
            when(self.plan.best.start),
            self.plan.best.g_per_kwh,
            e(self.plan.best.g_per_kwh)
        );
        let now_label = if self.plan.first_start > self.now {
            format!(
                "forecast starts in {}",
                fmt_hm(self.plan.first_start - self.now)
            )
        } else {
            "now".to_string()
        };
        outln!(
            o,
            "  start self.now  {}  {now_label:<22} {:7.1} gCO2e/kWh{}",
            when(self.plan.start_now.start),
            self.plan.start_now.g_per_kwh,
            e(self.plan.start_now.g_per_kwh)
        );
        if self.plan.best.start == self.plan.start_now.start {
            outln!(
                o,
                "  starting self.now is already the cleanest choice in this horizon"
            );
        } else {
            let saved = self
                .kwh
                .map(|e| e * (self.plan.start_now.g_per_kwh - self.plan.best.g_per_kwh) / 1000.0);
            outln!(
                o,
                "  saving     {:.1} %{}",
                self.plan.saving_percent,
                saved
                    .map(|k| format!(
                        " ({} CO2e on {} kWh)",
                        fmt_mass_kg(k),
                        self.kwh.unwrap_or(0.0)
                    ))
                    .unwrap_or_default()
            );
        }
        if self.plan.signal == Signal::Marginal {
            outln!(
                o,
                "  marginal signal: the saving is in emissions caused at the margin (WattTime MOER), not in average grid intensity"
            );
        }
        outln!(
            o,
            "  source: {}, {} points ({})",
            self.source,
            self.points.len(),
            self.counts
        );
        if let Some(a) = &self.credit {
            outln!(o, "  data: {}; retrieved {}", a.line(), self.retrieved_at);
        }
    }
}
