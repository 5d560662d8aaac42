//! On-disk cache of provider answers: one JSON file per provider + zone + query under a
//! directory (the CLI uses `$WATTPRINT_HOME/cache/intensity/`), written atomically (temporary
//! file + rename). Times to live: latest 5 min, forecast 30 min, history 30 days (5 min when
//! the range reaches into the last two hours, whose values are still being revised).
//!
//! A cache file that cannot be read or parsed is ignored (a note is kept, see
//! [`Cache::take_notes`]) and replaced by the next answer; a cache that cannot be written is
//! noted too. Neither is ever fatal. Errors are not cached, except a `429` with `Retry-After`:
//! a back-off entry per provider makes every invocation inside the window answer
//! `RateLimited` without calling the provider again.

use super::{now_unix, IntensityPoint, IntensityProvider, ProviderError, Signal};
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Time to live of a `latest` answer.
pub const LATEST_TTL_S: i64 = 5 * 60;
/// Time to live of a `forecast` answer.
pub const FORECAST_TTL_S: i64 = 30 * 60;
/// Time to live of a `history` answer for a range that ended more than two hours ago.
pub const HISTORY_TTL_S: i64 = 30 * 86_400;
/// Time to live of a `history` answer for a range reaching into the last two hours.
pub const RECENT_HISTORY_TTL_S: i64 = 5 * 60;

const FORMAT: &str = "wattprint.intensity-cache/1";

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    format: String,
    provider: String,
    zone: String,
    query: String,
    fetched_at: i64,
    points: Vec<IntensityPoint>,
    /// For a back-off entry: no request to this provider before this time (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_until: Option<i64>,
}

/// The zone and query of a provider's back-off entry (a 429 applies to the whole account).
const BACKOFF_ZONE: &str = "_all";
const BACKOFF_QUERY: &str = "backoff";
/// Longest back-off honoured (a `Retry-After` beyond this is cut to it).
pub const MAX_BACKOFF_S: i64 = 24 * 3600;

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Hit(Vec<IntensityPoint>),
    Miss,
    Expired,
    /// The file exists but is unusable (why); it will be replaced.
    Corrupt(String),
}

/// A directory of cached answers.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    notes: Mutex<Vec<String>>,
}

/// FNV-1a 64-bit (stable across runs and platforms, unlike `DefaultHasher`).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn sanitize(s: &str) -> String {
    s.chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache {
            dir: dir.into(),
            notes: Mutex::new(Vec::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `provider` + `zone` + `query`.
    pub fn path(&self, provider: &str, zone: &str, query: &str) -> PathBuf {
        self.dir.join(format!(
            "{}-{}-{:016x}.json",
            sanitize(provider),
            sanitize(zone),
            fnv1a(&[provider, zone, query])
        ))
    }

    fn note(&self, n: String) {
        self.notes.lock().unwrap_or_else(|p| p.into_inner()).push(n);
    }

    /// Notes gathered since the last call (corrupt files ignored, failed writes), for a debug
    /// log.
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Looks `provider` + `zone` + `query` up at time `now`, with a time to live of `ttl_s`.
    pub fn get(&self, provider: &str, zone: &str, query: &str, ttl_s: i64, now: i64) -> Lookup {
        match self.get_entry(provider, zone, query, ttl_s, now) {
            Ok(e) => Lookup::Hit(e.points),
            Err(l) => l,
        }
    }

    /// When `provider` may be asked again, if a `Retry-After` it sent is still running at
    /// `now` (see [`Cache::put_backoff`]).
    pub fn backoff_until(&self, provider: &str, now: i64) -> Option<i64> {
        let e = self
            .get_entry(provider, BACKOFF_ZONE, BACKOFF_QUERY, MAX_BACKOFF_S, now)
            .ok()?;
        e.retry_until.filter(|u| *u > now)
    }

    /// Remembers, across invocations, that `provider` asked not to be called for
    /// `retry_after_s` seconds from `now` (at most [`MAX_BACKOFF_S`]).
    pub fn put_backoff(&self, provider: &str, retry_after_s: u64, now: i64) -> Result<(), String> {
        let s = i64::try_from(retry_after_s)
            .unwrap_or(i64::MAX)
            .min(MAX_BACKOFF_S);
        self.write(
            provider,
            BACKOFF_ZONE,
            BACKOFF_QUERY,
            &[],
            now,
            Some(now + s),
        )
    }

    fn get_entry(
        &self,
        provider: &str,
        zone: &str,
        query: &str,
        ttl_s: i64,
        now: i64,
    ) -> Result<Entry, Lookup> {
        let path = self.path(provider, zone, query);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Lookup::Miss),
            Err(e) => {
                let why = format!("cannot read {}: {e}", path.display());
                self.note(format!("intensity cache: {why}; ignored"));
                return Err(Lookup::Corrupt(why));
            }
        };
        let entry: Entry = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                let why = format!("{} is not a valid cache file: {e}", path.display());
                self.note(format!("intensity cache: {why}; ignored and replaced"));
                return Err(Lookup::Corrupt(why));
            }
        };
        if entry.format != FORMAT
            || entry.provider != provider
            || entry.zone != zone
            || entry.query != query
        {
            let why = format!(
                "{} holds another entry ({} {} {} {})",
                path.display(),
                entry.format,
                entry.provider,
                entry.zone,
                entry.query
            );
            self.note(format!("intensity cache: {why}; ignored and replaced"));
            return Err(Lookup::Corrupt(why));
        }
        // A fetch time in the future (clock changed) is treated as expired.
        if now - entry.fetched_at >= ttl_s || entry.fetched_at > now + 60 {
            return Err(Lookup::Expired);
        }
        Ok(entry)
    }

    /// Stores an answer fetched at `now` (atomically: temporary file, then rename). A failure
    /// is noted and returned, never fatal to the caller.
    pub fn put(
        &self,
        provider: &str,
        zone: &str,
        query: &str,
        points: &[IntensityPoint],
        now: i64,
    ) -> Result<(), String> {
        self.write(provider, zone, query, points, now, None)
    }

    fn write(
        &self,
        provider: &str,
        zone: &str,
        query: &str,
        points: &[IntensityPoint],
        now: i64,
        retry_until: Option<i64>,
    ) -> Result<(), String> {
        let path = self.path(provider, zone, query);
        let entry = Entry {
            format: FORMAT.into(),
            provider: provider.into(),
            zone: zone.into(),
            query: query.into(),
            fetched_at: now,
            points: points.to_vec(),
            retry_until,
        };
        let result = (|| -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let json = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let tmp = self.dir.join(format!(
                ".{}.{}.{nanos}.tmp",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
                std::process::id()
            ));
            let written = (|| {
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&json)?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written
        })();
        result.map_err(|e| {
            let why = format!("cannot write {}: {e}", path.display());
            self.note(format!(
                "intensity cache: {why}; continuing without caching"
            ));
            why
        })
    }
}

/// A provider whose answers are cached on disk (see the module doc for the times to live).
pub struct CachedProvider<P> {
    inner: P,
    cache: Arc<Cache>,
    /// When the last answer served was fetched from the provider.
    last_fetched: Mutex<Option<i64>>,
}

impl<P: IntensityProvider> CachedProvider<P> {
    /// `cache` may be shared (an `Arc<Cache>`) so that the caller can read its notes.
    pub fn new(inner: P, cache: impl Into<Arc<Cache>>) -> CachedProvider<P> {
        CachedProvider {
            inner,
            cache: cache.into(),
            last_fetched: Mutex::new(None),
        }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    fn set_fetched(&self, t: i64) {
        *self.last_fetched.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
    }

    fn cached(
        &self,
        zone: &str,
        query: &str,
        ttl_s: i64,
        fetch: impl FnOnce() -> Result<Vec<IntensityPoint>, ProviderError>,
    ) -> Result<Vec<IntensityPoint>, ProviderError> {
        let now = now_unix();
        let name = self.inner.name();
        if let Ok(e) = self.cache.get_entry(name, zone, query, ttl_s, now) {
            self.set_fetched(e.fetched_at);
            return Ok(e.points);
        }
        // A 429 seen by this or an earlier invocation: do not call again inside the window.
        if let Some(until) = self.cache.backoff_until(name, now) {
            return Err(ProviderError::RateLimited {
                provider: self.inner.name(),
                retry_after_s: Some(u64::try_from(until - now).unwrap_or(0)),
            });
        }
        let points = match fetch() {
            Ok(p) => p,
            Err(e) => {
                if let ProviderError::RateLimited {
                    retry_after_s: Some(s),
                    ..
                } = &e
                {
                    let _ = self.cache.put_backoff(name, *s, now);
                }
                return Err(e);
            }
        };
        let _ = self.cache.put(name, zone, query, &points, now);
        self.set_fetched(now);
        Ok(points)
    }
}

impl<P: IntensityProvider> IntensityProvider for CachedProvider<P> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn signal(&self) -> Signal {
        self.inner.signal()
    }

    fn publishes_actuals(&self, zone: &str) -> bool {
        self.inner.publishes_actuals(zone)
    }

    fn retrieved_at(&self) -> Option<i64> {
        *self.last_fetched.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn latest(&self, zone: &str) -> Result<IntensityPoint, ProviderError> {
        let mut v = self.cached(zone, "latest", LATEST_TTL_S, || {
            self.inner.latest(zone).map(|p| vec![p])
        })?;
        match v.pop() {
            Some(p) => Ok(p),
            // An empty cached answer cannot come from `latest`; ask the provider.
            None => self.inner.latest(zone),
        }
    }

    fn history(
        &self,
        zone: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<IntensityPoint>, ProviderError> {
        let ttl = if to > now_unix() - 2 * 3600 {
            RECENT_HISTORY_TTL_S
        } else {
            HISTORY_TTL_S
        };
        self.cached(zone, &format!("history:{from}:{to}"), ttl, || {
            self.inner.history(zone, from, to)
        })
    }

    fn forecast(
        &self,
        zone: &str,
        horizon: Duration,
    ) -> Result<Vec<IntensityPoint>, ProviderError> {
        let hours = horizon.as_secs().div_ceil(3600);
        let mut points =
            self.cached(zone, &format!("forecast:{hours}h"), FORECAST_TTL_S, || {
                self.inner.forecast(zone, Duration::from_secs(hours * 3600))
            })?;
        // A cached forecast may have points that are now in the past.
        let now = now_unix();
        let until = now.saturating_add(i64::try_from(horizon.as_secs()).unwrap_or(i64::MAX));
        points.retain(|p| p.end > now && p.start < until);
        Ok(points)
    }
}
