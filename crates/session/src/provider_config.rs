//! Which live-intensity provider to use, built from flags and the environment.
//!
//! Nothing is contacted unless configured:
//! * `--provider NAME` or `WATTPRINT_INTENSITY_PROVIDER=NAME` (`electricitymaps`, `uk`,
//!   `watttime`, or `none`) selects one explicitly;
//! * otherwise Electricity Maps is used when `WATTPRINT_ELECTRICITYMAPS_TOKEN` is set, else
//!   WattTime when `WATTPRINT_WATTTIME_USERNAME` and `_PASSWORD` are; the keyless UK API is
//!   used only when selected explicitly.
//!
//! Other settings: `WATTPRINT_ELECTRICITYMAPS_URL`, `WATTPRINT_UK_CI_URL`,
//! `WATTPRINT_WATTTIME_URL` (base URLs), `WATTPRINT_ELECTRICITYMAPS_FACTOR=lifecycle|direct`,
//! `WATTPRINT_PROVIDER_TIMEOUT` (default 10s), `WATTPRINT_INTENSITY_CACHE=off` (no disk cache;
//! the cache lives in `$WATTPRINT_HOME/cache/intensity/`), `WATTPRINT_DEBUG=1` (print cache
//! notes).

use anyhow::{bail, Result};
use std::sync::Arc;
use std::time::Duration;
use wattprint_core::env::Env;
use wattprint_core::providers::{
    electricity_maps, uk, watttime, Cache, CachedProvider, ElectricityMaps, EmissionFactorType,
    IntensityProvider, UkCarbonIntensity, WattTime, DEFAULT_TIMEOUT,
};
use wattprint_core::units::parse_duration;

/// Selects the provider (see the module doc).
pub const PROVIDER_ENV: &str = "WATTPRINT_INTENSITY_PROVIDER";
/// Timeout of one request, e.g. `10s`.
pub const TIMEOUT_ENV: &str = "WATTPRINT_PROVIDER_TIMEOUT";
/// `lifecycle` (default) or `direct` emission factors for Electricity Maps.
pub const EM_FACTOR_ENV: &str = "WATTPRINT_ELECTRICITYMAPS_FACTOR";
/// `off` disables the disk cache.
pub const CACHE_ENV: &str = "WATTPRINT_INTENSITY_CACHE";
/// Set (not `0`) to print debug notes (cache files ignored, cache writes failed).
pub const DEBUG_ENV: &str = "WATTPRINT_DEBUG";

/// The providers wattprint knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Electricity Maps v3 (average, life-cycle by default; needs a token).
    ElectricityMaps,
    /// GB Carbon Intensity API (average; no key; Great Britain only).
    Uk,
    /// WattTime v3 (marginal MOER; needs an account).
    WattTime,
}

impl ProviderKind {
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::ElectricityMaps => "electricitymaps",
            ProviderKind::Uk => "uk",
            ProviderKind::WattTime => "watttime",
        }
    }

    /// A name as users write it (aliases included); `Some(None)` for `none`/`off`/`static`.
    pub fn parse(s: &str) -> Option<Option<ProviderKind>> {
        match s.trim().to_ascii_lowercase().as_str() {
            "electricitymaps" | "electricity-maps" | "em" => {
                Some(Some(ProviderKind::ElectricityMaps))
            }
            "uk" | "gb" | "carbonintensity" => Some(Some(ProviderKind::Uk)),
            "watttime" => Some(Some(ProviderKind::WattTime)),
            "none" | "off" | "static" => Some(None),
            _ => None,
        }
    }

    /// The provider of a stable name (`uk`, `electricitymaps`, `watttime`, or an alias).
    pub fn from_name(s: &str) -> Option<ProviderKind> {
        ProviderKind::parse(s).flatten()
    }

    /// The zone used when none is given (`GB` for the UK API).
    pub fn default_zone(self) -> Option<&'static str> {
        match self {
            ProviderKind::Uk => Some("GB"),
            _ => None,
        }
    }

    /// Examples of zones, for messages.
    pub fn zone_examples(self) -> &'static str {
        match self {
            ProviderKind::ElectricityMaps => "an Electricity Maps zone such as FR, DE, US-CAL-CISO",
            ProviderKind::Uk => "GB, england, scotland, wales, regionid:13 or postcode:RG10",
            ProviderKind::WattTime => "a WattTime region such as CAISO_NORTH",
        }
    }
}

/// A built provider and how it was chosen.
pub struct Configured {
    pub kind: ProviderKind,
    /// e.g. `--provider`, `WATTPRINT_INTENSITY_PROVIDER`, `WATTPRINT_ELECTRICITYMAPS_TOKEN is set`.
    pub selected_by: String,
    pub provider: Box<dyn IntensityProvider>,
    /// The disk cache, when enabled (its notes are for a debug log).
    pub cache: Option<Arc<Cache>>,
    /// `WATTPRINT_DEBUG` was set (not `0`).
    pub debug: bool,
}

impl Configured {
    /// The cache's notes since the last call, when `WATTPRINT_DEBUG` was set (else none): the
    /// front end shows them as debug lines.
    pub fn take_debug_notes(&self) -> Vec<String> {
        let Some(c) = &self.cache else {
            return Vec::new();
        };
        let notes = c.take_notes();
        if self.debug {
            notes
        } else {
            Vec::new()
        }
    }
}

/// A non-blank variable of `env`, trimmed.
fn var(env: &Env, name: &str) -> Option<String> {
    env.get(name).map(|v| v.trim().to_string())
}

/// The provider in force: the flag, else `WATTPRINT_INTENSITY_PROVIDER`, else the one whose
/// credentials are set. `None` when nothing is configured (or `none` was asked for).
pub fn choose(flag: Option<ProviderKind>, env: &Env) -> Result<Option<(ProviderKind, String)>> {
    if let Some(k) = flag {
        return Ok(Some((k, "--provider".into())));
    }
    if let Some(v) = var(env, PROVIDER_ENV) {
        return match ProviderKind::parse(&v) {
            Some(Some(k)) => Ok(Some((k, PROVIDER_ENV.into()))),
            Some(None) => Ok(None),
            None => bail!(
                "{PROVIDER_ENV}={v:?} is not a provider; use electricitymaps, uk, watttime or none"
            ),
        };
    }
    if var(env, electricity_maps::TOKEN_ENV).is_some() {
        return Ok(Some((
            ProviderKind::ElectricityMaps,
            format!("{} is set", electricity_maps::TOKEN_ENV),
        )));
    }
    if var(env, watttime::USERNAME_ENV).is_some() && var(env, watttime::PASSWORD_ENV).is_some() {
        return Ok(Some((
            ProviderKind::WattTime,
            format!("{} is set", watttime::USERNAME_ENV),
        )));
    }
    Ok(None)
}

/// The request timeout from `WATTPRINT_PROVIDER_TIMEOUT` (default 10 s).
pub fn timeout(env: &Env) -> Result<Duration> {
    match var(env, TIMEOUT_ENV) {
        None => Ok(DEFAULT_TIMEOUT),
        Some(v) => match parse_duration(&v) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => bail!("{TIMEOUT_ENV}={v}: the timeout must be more than zero, e.g. 10s"),
            Err(e) => bail!("{TIMEOUT_ENV}: {e}"),
        },
    }
}

/// Builds the provider `kind` from the environment, with the disk cache unless `no_cache` (or
/// `WATTPRINT_INTENSITY_CACHE=off`).
pub fn build(
    kind: ProviderKind,
    selected_by: String,
    no_cache: bool,
    env: &Env,
) -> Result<Configured> {
    let timeout = timeout(env)?;
    let debug = var(env, DEBUG_ENV).is_some_and(|v| v != "0");
    let url = |name: &str, default: &str| -> Result<String> {
        match var(env, name) {
            None => Ok(default.to_string()),
            Some(v) if v.starts_with("http://") || v.starts_with("https://") => Ok(v),
            Some(v) => bail!(
                "{name}={v:?}: a base URL must start with https:// (or http://), e.g. {default}"
            ),
        }
    };
    let provider: Box<dyn IntensityProvider> = match kind {
        ProviderKind::ElectricityMaps => {
            let Some(token) = var(env, electricity_maps::TOKEN_ENV) else {
                bail!(
                    "the electricitymaps provider needs an API token: set {} (get one at the Electricity Maps API portal)",
                    electricity_maps::TOKEN_ENV
                );
            };
            let factor = match var(env, EM_FACTOR_ENV) {
                None => EmissionFactorType::Lifecycle,
                Some(v) => EmissionFactorType::parse(&v).ok_or_else(|| {
                    anyhow::anyhow!("{EM_FACTOR_ENV}={v:?}: use lifecycle or direct")
                })?,
            };
            Box::new(
                ElectricityMaps::new(
                    &url(electricity_maps::URL_ENV, electricity_maps::DEFAULT_URL)?,
                    &token,
                    timeout,
                )
                .with_emission_factor_type(factor),
            )
        }
        ProviderKind::Uk => Box::new(UkCarbonIntensity::new(
            &url(uk::URL_ENV, uk::DEFAULT_URL)?,
            timeout,
        )),
        ProviderKind::WattTime => {
            let (Some(user), Some(pass)) = (
                var(env, watttime::USERNAME_ENV),
                var(env, watttime::PASSWORD_ENV),
            ) else {
                bail!(
                    "the watttime provider needs an account: set {} and {}",
                    watttime::USERNAME_ENV,
                    watttime::PASSWORD_ENV
                );
            };
            Box::new(WattTime::new(
                &url(watttime::URL_ENV, watttime::DEFAULT_URL)?,
                &user,
                &pass,
                timeout,
            ))
        }
    };
    let cache_off = no_cache
        || var(env, CACHE_ENV).is_some_and(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "off" | "0" | "no" | "false"
            )
        });
    if cache_off {
        return Ok(Configured {
            kind,
            selected_by,
            provider,
            cache: None,
            debug,
        });
    }
    let dir = wattprint_store::store::home_dir(env)?
        .join("cache")
        .join("intensity");
    let cache = Arc::new(Cache::new(dir));
    Ok(Configured {
        kind,
        selected_by,
        provider: Box::new(CachedProvider::new(provider, cache.clone())),
        cache: Some(cache),
        debug,
    })
}

/// The configured provider, if any (see [`choose`] and [`build`]).
pub fn configured(
    flag: Option<ProviderKind>,
    no_cache: bool,
    env: &Env,
) -> Result<Option<Configured>> {
    match choose(flag, env)? {
        None => Ok(None),
        Some((kind, by)) => build(kind, by, no_cache, env).map(Some),
    }
}

/// What to tell a user who asked for live or forecast intensity with no provider configured.
pub fn not_configured_help() -> String {
    [
        "no carbon-intensity forecast provider is configured, and wattprint contacts no service unless told to."
            .to_string(),
        "Configure one of:".to_string(),
        format!(
            "  Electricity Maps (average, worldwide; needs a token):    export {}=<token>",
            electricity_maps::TOKEN_ENV
        ),
        format!(
            "  WattTime (marginal MOER; needs an account):              export {}=<user> {}=<password>",
            watttime::USERNAME_ENV,
            watttime::PASSWORD_ENV
        ),
        format!(
            "  GB Carbon Intensity API (average, Great Britain; no key): --provider uk (or export {PROVIDER_ENV}=uk)"
        ),
        "Then, e.g.: wattprint when --location FR --duration 6h".to_string(),
        "See docs/live-intensity.md for every setting.".to_string(),
    ]
    .join("\n")
}
