//! `wattprint serve`: the central server (JSON API under /api/v1) on SQLite or PostgreSQL.
//! The server itself is the `wattprint-server` crate; this module only parses flags.

use anyhow::{bail, Context, Result};
use std::time::Duration;
use wattprint_server::limits::Limits;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  wattprint serve\n  \
wattprint serve --listen 127.0.0.1:8080 --database sqlite:///var/lib/wattprint/server.db\n  \
wattprint serve --database postgres://wattprint@%2Frun%2Fpostgresql/wattprint\n\n\
Bootstrap: wattprint admin team create physics && wattprint admin token create --team physics --role admin\n\
See docs/server.md.")]
pub struct Args {
    /// Address to listen on, HOST:PORT (port 0 picks a free one). The server speaks plain HTTP:
    /// keep it on loopback or behind a TLS reverse proxy.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub listen: String,
    /// sqlite://PATH (embedded, created on first start) or postgres://USER@HOST:PORT/DBNAME.
    /// Default: $WATTPRINT_DATABASE, else sqlite://$WATTPRINT_HOME/server.db.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Largest request body: bytes, or with a unit (KiB, MiB).
    #[arg(long, default_value = "2MiB", value_name = "SIZE")]
    pub max_body: String,
    /// Longest a request may take, body upload included (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub request_timeout: String,
    /// Sustained requests per second allowed per token (0 turns the rate limit off).
    #[arg(long, default_value_t = 100.0, value_name = "N")]
    pub rate_limit: f64,
    /// Requests a token may make in a burst above the sustained rate.
    #[arg(long, default_value_t = 200.0, value_name = "N")]
    pub burst: f64,
    /// A request's headers must arrive within this time of the connection opening or of the
    /// previous answer (this also closes idle keep-alive connections).
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub header_timeout: String,
    /// Close a connection on which nothing moves for this long (at least --request-timeout).
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub idle_timeout: String,
    /// Most connections open at once; more wait until one closes. Keep it well under the
    /// process's descriptor limit (`ulimit -n`).
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_connections: usize,
    /// Most expensive requests (listings, samples, totals, dashboard pages) one token may have
    /// in flight at once; more get 429 (0 turns the cap off).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub max_expensive: usize,
    /// Days after a run ended that its samples are kept as uploaded; then 1-minute buckets
    /// (energy summed). An organisation may override it (`wattprint admin org retention`).
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub keep_full_days: i64,
    /// Days after a run ended that its samples are kept in 1-minute buckets; then 1-hour
    /// buckets, kept forever. Run records and totals are always kept.
    #[arg(long, default_value_t = 365, value_name = "DAYS")]
    pub keep_minute_days: i64,
    /// Do not downsample samples in this server process (another replica may).
    #[arg(long)]
    pub no_downsample: bool,
    /// PostgreSQL: connections that commit uploads in groups (uploads arriving while others
    /// commit are written together, one commit for all); 0 commits each upload on its own.
    #[arg(long, default_value_t = wattprint_server::group_commit::WRITERS, value_name = "N")]
    pub upload_writers: usize,
    /// Milliseconds a token, once looked up, is accepted without reading it again. A token
    /// revoked through this server stops at once; revoked elsewhere (another replica,
    /// `wattprint admin token revoke`), within this time. 0: read on every request.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub token_cache_ms: u64,
}

/// The retention settings from the flags.
pub fn retention(a: &Args) -> Result<wattprint_server::retention::Retention> {
    let r = wattprint_server::retention::Retention {
        full_days: a.keep_full_days,
        minute_days: a.keep_minute_days,
        enabled: !a.no_downsample,
        ..Default::default()
    };
    r.check().context("--keep-full-days / --keep-minute-days")?;
    Ok(r)
}

/// The database to use: the flag, else `$WATTPRINT_DATABASE`, else SQLite in the home directory.
pub fn database_url(flag: Option<String>) -> Result<String> {
    if let Some(d) = flag {
        return Ok(d);
    }
    if let Some(d) = std::env::var_os("WATTPRINT_DATABASE").filter(|v| !v.is_empty()) {
        return d
            .into_string()
            .map_err(|_| anyhow::anyhow!("WATTPRINT_DATABASE is not valid UTF-8"));
    }
    let home = crate::store::home_dir(crate::env())?;
    Ok(format!("sqlite://{}", home.join("server.db").display()))
}

/// `2MiB`, `512KiB`, `1MB`, `4096`.
pub fn parse_size(s: &str) -> Result<usize> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a size: use e.g. 2MiB, 512KiB or 1048576"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        u => bail!("{s:?}: unknown size unit {u:?}; use B, KiB, MiB, GiB, kB, MB or GB"),
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < 1.0 || bytes > usize::MAX as f64 {
        bail!("{s:?} is not a usable size");
    }
    Ok(bytes as usize)
}

pub fn limits(a: &Args) -> Result<Limits> {
    let max_body_bytes = parse_size(&a.max_body).context("--max-body")?;
    let request_timeout = wattprint_core::units::parse_duration(&a.request_timeout)
        .map_err(|e| anyhow::anyhow!("--request-timeout: {e}"))?;
    if request_timeout < Duration::from_millis(10) {
        bail!("--request-timeout {} is too short", a.request_timeout);
    }
    if !a.rate_limit.is_finite() || a.rate_limit < 0.0 {
        bail!("--rate-limit must be a number >= 0 (0 turns it off)");
    }
    if !a.burst.is_finite() || a.burst < 1.0 {
        bail!("--burst must be at least 1");
    }
    let duration = |flag: &str, v: &str| {
        wattprint_core::units::parse_duration(v).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    let header_read_timeout = duration("--header-timeout", &a.header_timeout)?;
    if header_read_timeout < Duration::from_millis(10) {
        bail!("--header-timeout {} is too short", a.header_timeout);
    }
    let idle_timeout = duration("--idle-timeout", &a.idle_timeout)?;
    if idle_timeout < request_timeout {
        bail!(
            "--idle-timeout {} is shorter than --request-timeout {}: a slow request would lose its connection",
            a.idle_timeout,
            a.request_timeout
        );
    }
    if a.max_connections == 0 || a.max_connections > wattprint_server::conn::MAX_CONNECTIONS {
        bail!(
            "--max-connections must be 1 to {}",
            wattprint_server::conn::MAX_CONNECTIONS
        );
    }
    Ok(Limits {
        max_body_bytes,
        request_timeout,
        rate_per_s: a.rate_limit,
        burst: a.burst,
        header_read_timeout,
        idle_timeout,
        max_connections: a.max_connections,
        max_expensive_per_token: a.max_expensive,
    })
}

/// Descriptors kept for everything but client connections: the database's connections and
/// files, the listener, standard streams.
pub const RESERVED_FDS: u64 = 64;

/// The connection limit the process can honour with `nofile` descriptors (the soft
/// `RLIMIT_NOFILE`), and a warning when `requested` had to be lowered: past the descriptor limit
/// `accept` fails and the server (`/health` included) stops answering.
pub fn fit_connections(requested: usize, nofile: Option<u64>) -> (usize, Option<String>) {
    let Some(n) = nofile else {
        return (requested, None);
    };
    let room = usize::try_from(n.saturating_sub(RESERVED_FDS))
        .unwrap_or(usize::MAX)
        .max(8);
    if requested <= room {
        return (requested, None);
    }
    (
        room,
        Some(format!(
            "wattprint serve: --max-connections {requested} lowered to {room}: this process may open only {n} descriptors (ulimit -n), {RESERVED_FDS} of them kept for the database and files; raise `ulimit -n` for more"
        )),
    )
}

/// The soft limit on open descriptors.
fn nofile_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (rc == 0 && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
}

/// Longest `--token-cache-ms`.
const MAX_TOKEN_CACHE_MS: u64 = 60_000;

pub fn run(a: Args) -> Result<i32> {
    let mut limits = limits(&a)?;
    let (max, warning) = fit_connections(limits.max_connections, nofile_limit());
    if let Some(w) = warning {
        eprintln!("{w}");
    }
    limits.max_connections = max;
    let database = database_url(a.database.clone())?;
    let loopback = a.listen.starts_with("127.")
        || a.listen.starts_with("localhost:")
        || a.listen.starts_with("[::1]:");
    if !loopback {
        eprintln!(
            "wattprint serve: warning: listening on {} in plain HTTP; tokens travel in clear unless a TLS reverse proxy is in front",
            a.listen
        );
    }
    let retention = retention(&a)?;
    if a.token_cache_ms > MAX_TOKEN_CACHE_MS {
        bail!(
            "--token-cache-ms {} is too long: at most {MAX_TOKEN_CACHE_MS} (a token revoked elsewhere is accepted this long)",
            a.token_cache_ms
        );
    }
    wattprint_server::app::run_blocking(wattprint_server::Config {
        listen: a.listen,
        database,
        limits,
        retention,
        upload_writers: a.upload_writers,
        token_cache: Duration::from_millis(a.token_cache_ms),
    })?;
    Ok(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("2MiB").unwrap(), 2 * 1024 * 1024);
        assert_eq!(parse_size("512 KiB").unwrap(), 512 * 1024);
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("2XB").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn connections_fit_the_descriptor_limit() {
        assert_eq!(fit_connections(512, None), (512, None));
        assert_eq!(fit_connections(512, Some(65_536)), (512, None));
        let (n, w) = fit_connections(512, Some(256));
        assert_eq!(n, 256 - RESERVED_FDS as usize);
        assert!(w.unwrap().contains("ulimit -n"));
        // Never below a handful, whatever the limit.
        assert_eq!(fit_connections(512, Some(10)).0, 8);
    }
}
