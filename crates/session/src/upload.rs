//! Uploads to a wattprint server (`wattprint run --server`, `wattprint agent`, `wattprint sync`):
//! where the server is and which token to use ([`ServerTarget`]), a blocking HTTP client
//! ([`Client`], ureq with short timeouts), the spool directory that keeps what could not be sent
//! (`$WATTPRINT_HOME/spool/`), and the background [`Uploader`] of one run.
//!
//! The uploader never slows or fails the job: checkpoints are handed to a background thread
//! through a queue that holds only the latest one (an older checkpoint of the run is dropped
//! when a newer one arrives: records are cumulative), the thread gives up quickly (2 s to
//! connect, 5 s in all), and whatever it could not send is written to the spool, atomically.
//! The server's ingestion is idempotent, so `wattprint sync` can replay the spool without ever
//! counting a run twice. See docs/agents.md.

use crate::config::Config;
use crate::messages::{Level, Messages};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use wattprint_core::env::Env;
use wattprint_core::record::RunRecord;
use wattprint_core::sampler::Snapshot;

/// Schema of a spool file.
pub const SPOOL_SCHEMA: &str = "wattprint.spool/1";
/// Time to open a connection to the server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time for a whole exchange with the server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed upload, checkpoints go straight to the spool for this long.
pub const BACKOFF: Duration = Duration::from_secs(30);
/// Samples per request (well under the server's default 2 MiB body limit).
pub const SERIES_CHUNK: usize = 10_000;

/// The server and the token to use.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerTarget {
    /// Base URL of the API, ending in `/api/v1` (no trailing slash).
    pub api: String,
    /// The URL as the user gave it (for messages).
    pub url: String,
    pub token: String,
}

impl ServerTarget {
    /// `flag`, else `$WATTPRINT_SERVER`, else the configuration files' `server`; the token from
    /// `$WATTPRINT_TOKEN`, else the files' `token` (never a flag: it would show in `ps`).
    /// `Ok(None)` when no server is configured.
    pub fn resolve(
        flag: Option<&str>,
        config: &Config,
        env: &Env,
        msgs: &Messages,
    ) -> Result<Option<ServerTarget>> {
        let url = flag
            .map(str::to_string)
            .or_else(|| env.get("WATTPRINT_SERVER").map(str::to_string))
            .or_else(|| config.server());
        let Some(url) = url else {
            return Ok(None);
        };
        let token = match env.get("WATTPRINT_TOKEN") {
            Some(t) => t.trim().to_string(),
            None => match config.token() {
                Some((t, path)) => {
                    if let Some(p) = path {
                        warn_if_readable_by_others(&p, msgs);
                    }
                    t
                }
                None => bail!(
                    "the server {url} needs an API token: set WATTPRINT_TOKEN (or `token = \"wpt_…\"` in your configuration file); an administrator creates one with `wattprint admin token create --team TEAM`"
                ),
            },
        };
        Ok(Some(ServerTarget::new(&url, &token)?))
    }

    /// Check and normalise a URL: `http(s)://HOST[:PORT][/PREFIX]`, `/api/v1` added if missing.
    pub fn new(url: &str, token: &str) -> Result<ServerTarget> {
        let u = url.trim().trim_end_matches('/');
        let rest = u
            .strip_prefix("http://")
            .or_else(|| u.strip_prefix("https://"));
        match rest {
            Some(r) if !r.is_empty() && !r.starts_with('/') => {}
            _ => bail!(
                "server URL {url:?} is not usable: use http://HOST:PORT or https://HOST, e.g. --server http://127.0.0.1:8080"
            ),
        }
        if token.chars().any(|c| c.is_control() || c == ' ') || token.is_empty() {
            bail!("the server token contains spaces or control characters; check WATTPRINT_TOKEN");
        }
        let api = if u.ends_with("/api/v1") {
            u.to_string()
        } else {
            format!("{u}/api/v1")
        };
        Ok(ServerTarget {
            api,
            url: u.to_string(),
            token: token.to_string(),
        })
    }
}

fn warn_if_readable_by_others(path: &Path, msgs: &Messages) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            msgs.warn(&format!(
                "{} holds a server token and is readable by others; `chmod 600` it or use WATTPRINT_TOKEN",
                path.display()
            ));
        }
    }
}

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// Worth retrying later: unreachable, timed out, 5xx, 408, 429.
    Transient(String),
    /// Refused for a reason a retry will not fix (bad token, rejected body): needs attention.
    Rejected { status: u16, detail: String },
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Transient(s) => write!(f, "{s}"),
            SendError::Rejected { status, detail } => {
                let hint = match status {
                    401 => " (check WATTPRINT_TOKEN: unknown or revoked token)",
                    403 => " (the token may not do this: its role or project)",
                    _ => "",
                };
                write!(f, "refused with HTTP {status}: {detail}{hint}")
            }
        }
    }
}

/// A blocking client of the server's API.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    pub target: ServerTarget,
    connect: Duration,
    total: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({})", self.target.api)
    }
}

/// Percent-encode one path segment.
pub fn encode_segment(s: &str) -> String {
    wattprint_core::providers::http::encode(s)
}

impl Client {
    pub fn new(target: ServerTarget) -> Client {
        Client::with_timeouts(target, CONNECT_TIMEOUT, REQUEST_TIMEOUT)
    }

    pub fn with_timeouts(target: ServerTarget, connect: Duration, total: Duration) -> Client {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(total))
            .timeout_connect(Some(connect))
            .http_status_as_error(false)
            .user_agent(concat!("wattprint/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent: ureq::Agent::new_with_config(config),
            target,
            connect,
            total,
        }
    }

    /// The same client with timeouts of at most 1 s to connect and 2 s in all (for a last try
    /// at a server that just failed).
    pub fn quick(&self) -> Client {
        Client::with_timeouts(
            self.target.clone(),
            self.connect.min(Duration::from_secs(1)),
            self.total.min(Duration::from_secs(2)),
        )
    }

    /// One request; 2xx gives the JSON body (or null).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SendError> {
        let url = format!("{}{path}", self.target.api);
        let auth = format!("Bearer {}", self.target.token);
        let result = match (method, body) {
            ("GET", _) => self
                .agent
                .get(&url)
                .header("Authorization", &auth)
                .header("Accept", "application/json")
                .call(),
            (m, b) => {
                let bytes = b.map(|v| v.to_string()).unwrap_or_default();
                let req = match m {
                    "PUT" => self.agent.put(&url),
                    _ => self.agent.post(&url),
                };
                req.header("Authorization", &auth)
                    .header("Accept", "application/json")
                    .content_type("application/json")
                    .send(bytes.as_bytes())
            }
        };
        let mut resp = result.map_err(|e| {
            SendError::Transient(match e {
                ureq::Error::Timeout(_) => format!("no answer from {} in time", self.target.url),
                other => format!("cannot reach {} ({other})", self.target.url),
            })
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(16 * 1024 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match status {
            200..=299 => Ok(v),
            408 | 429 | 500..=599 => Err(SendError::Transient(format!(
                "{} answered HTTP {status}{}",
                self.target.url,
                v["detail"]
                    .as_str()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ))),
            _ => Err(SendError::Rejected {
                status,
                detail: v["detail"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| text.chars().take(300).collect()),
            }),
        }
    }

    /// Upload a run body (a record, optionally with `series`); a long series goes in chunks
    /// (the record with the first, the rest to `/runs/{id}/samples`). Returns the outcome of
    /// the record (`created`, `updated`, `duplicate`, `stale`).
    pub fn post_run(&self, body: &Value) -> Result<String, SendError> {
        let mut body = body.clone();
        let rest: Vec<Value> = match body.get_mut("series").and_then(Value::as_array_mut) {
            Some(s) if s.len() > SERIES_CHUNK => s.split_off(SERIES_CHUNK),
            _ => Vec::new(),
        };
        let v = self.request("POST", "/runs", Some(&body))?;
        let id = body["id"].as_str().unwrap_or_default();
        for chunk in rest.chunks(SERIES_CHUNK) {
            self.request(
                "POST",
                &format!("/runs/{}/samples", encode_segment(id)),
                Some(&json!({ "samples": chunk })),
            )?;
        }
        Ok(v["outcome"].as_str().unwrap_or("sent").to_string())
    }

    /// Report a node's cumulative energy (`wattprint agent`).
    pub fn post_node_energy(&self, node: &str, body: &Value) -> Result<Value, SendError> {
        self.request(
            "POST",
            &format!("/nodes/{}/energy", encode_segment(node)),
            Some(body),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The spool.

/// One spooled upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpoolEntry {
    pub schema: String,
    /// `run` (a run record with its series) or `node` (an agent's report).
    pub kind: String,
    /// The run id, or the node's name.
    pub key: String,
    /// The server it was meant for.
    pub server: String,
    pub spooled_at: String,
    /// Why the last attempt failed.
    pub reason: String,
    /// Set when the server refused it (4xx): a retry alone will not help.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<String>,
    /// The request body.
    pub body: Value,
}

/// A file name from a run id or node name (anything but `[A-Za-z0-9._-]` becomes `_`).
pub fn spool_name(prefix: &str, key: &str) -> String {
    let safe: String = key
        .chars()
        .take(150)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{safe}.json")
}

/// Write `entry` to `dir/name` atomically (temporary file, fsync, rename), readable by its
/// owner only.
pub fn write_spool(dir: &Path, name: &str, entry: &SpoolEntry) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the spool directory {}", dir.display()))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let text = serde_json::to_vec(entry)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(&text)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(path)
}

/// The spool files (`*.json`) in `dir`, sorted by name; none when it does not exist.
pub fn list_spool(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    v.sort();
    v
}

/// What happened to one spool file in [`sync_file`].
#[derive(Debug, Clone, PartialEq)]
pub enum SyncResult {
    /// Sent and removed; the server's outcome.
    Sent {
        kind: String,
        key: String,
        outcome: String,
    },
    /// Kept for a later try.
    Kept {
        kind: String,
        key: String,
        error: SendError,
    },
    /// Not a spool file this version understands (left alone).
    Unreadable(String),
    /// Gone meanwhile (another sync took it).
    Gone,
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Put back files claimed by a sync that died (`.NAME.sending-PID` whose PID is gone).
pub fn recover_claims(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((orig, pid)) = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".sending-"))
        else {
            continue;
        };
        if pid.parse::<i32>().is_ok_and(pid_alive) {
            continue;
        }
        let back = dir.join(orig);
        if back.exists() {
            let _ = std::fs::remove_file(e.path());
        } else {
            let _ = std::fs::rename(e.path(), back);
        }
    }
}

/// The check [`RunRecord::validate`] of a spooled run body (the record, with `series` and `user`
/// beside it) before it is sent: a record the server would refuse is kept, needing attention,
/// and not sent. A body that is not a record at all is left to the server to judge.
fn check_spooled_run(body: &Value) -> Result<(), SendError> {
    let mut v = body.clone();
    if let Value::Object(m) = &mut v {
        m.remove("series");
        m.remove("user");
    }
    let Ok(rec) = serde_json::from_value::<RunRecord>(v) else {
        return Ok(());
    };
    rec.validate().map_err(|e| SendError::Rejected {
        status: 422,
        detail: format!(
            "checked before sending, not sent: the record fails the server's checks ({e}; see docs/server.md, Validation)"
        ),
    })
}

/// Send one spool file: claim it (rename, so a writer replacing it meanwhile is not lost),
/// send, then delete it once the server confirmed, or put it back (a newer file written
/// meanwhile supersedes it: records and agent reports are cumulative).
pub fn sync_file(client: &Client, path: &Path) -> SyncResult {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return SyncResult::Unreadable(path.display().to_string());
    };
    let claimed = path.with_file_name(format!(".{name}.sending-{}", std::process::id()));
    if std::fs::rename(path, &claimed).is_err() {
        return SyncResult::Gone;
    }
    let put_back = |entry: Option<&SpoolEntry>| {
        if path.exists() {
            let _ = std::fs::remove_file(&claimed);
            return;
        }
        if let (Some(e), Some(dir)) = (entry, path.parent()) {
            if write_spool(dir, name, e).is_ok() {
                let _ = std::fs::remove_file(&claimed);
                return;
            }
        }
        let _ = std::fs::rename(&claimed, path);
    };
    let entry: SpoolEntry = match std::fs::read(&claimed)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(e) => e,
        Err(e) => {
            put_back(None);
            return SyncResult::Unreadable(format!("{}: {e}", path.display()));
        }
    };
    if entry.schema != SPOOL_SCHEMA {
        put_back(None);
        return SyncResult::Unreadable(format!(
            "{}: schema {:?}, expected {SPOOL_SCHEMA:?}",
            path.display(),
            entry.schema
        ));
    }
    let res = match entry.kind.as_str() {
        "run" => check_spooled_run(&entry.body).and_then(|()| client.post_run(&entry.body)),
        "node" => client
            .post_node_energy(&entry.key, &entry.body)
            .map(|v| format!("{} entries, {} changed", v["entries"], v["changed"])),
        k => {
            put_back(None);
            return SyncResult::Unreadable(format!("{}: unknown kind {k:?}", path.display()));
        }
    };
    match res {
        Ok(outcome) => {
            let _ = std::fs::remove_file(&claimed);
            SyncResult::Sent {
                kind: entry.kind,
                key: entry.key,
                outcome,
            }
        }
        Err(error) => {
            let mut e = entry.clone();
            e.reason = error.to_string();
            e.attention = match &error {
                SendError::Rejected { .. } => Some(error.to_string()),
                SendError::Transient(_) => None,
            };
            put_back(Some(&e));
            SyncResult::Kept {
                kind: entry.kind,
                key: entry.key,
                error,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The uploader of one run.

/// How far along a record is: (ended, duration, energy). Larger is newer.
fn progress(body: &Value) -> (u8, f64, f64) {
    (
        u8::from(body["status"].as_str().is_some_and(|s| s != "running")),
        body["duration_s"].as_f64().unwrap_or(0.0),
        body["energy_kwh"]["total"].as_f64().unwrap_or(0.0),
    )
}

fn at_least(a: (u8, f64, f64), b: (u8, f64, f64)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 >= b.1 && a.2 >= b.2)
}

/// The series of a snapshot as the server takes it: `[{device_id, t0, t1, energy_j}…]`.
pub fn series_of(snap: &Snapshot) -> Vec<Value> {
    let mut v = Vec::new();
    for d in &snap.devices {
        for p in &d.series {
            v.push(
                json!({"device_id": d.device.id, "t0": p.t0, "t1": p.t1, "energy_j": p.energy_j}),
            );
        }
    }
    v
}

#[derive(Default)]
struct State {
    /// The latest checkpoint not yet sent (the queue: one slot, newer replaces older).
    pending: Option<Value>,
    /// Checkpoints replaced in the queue before they could be sent.
    dropped: u64,
    busy: bool,
    closed: bool,
    backoff_until: Option<Instant>,
    /// The first transient failure.
    failure: Option<String>,
    /// A 4xx answer.
    rejected: Option<SendError>,
    /// What was printed on stderr.
    printed: Vec<String>,
    /// Progress of what the spool file holds.
    spooled: Option<(u8, f64, f64)>,
    /// A checkpoint failed [`RunRecord::validate`] and stderr said so (once per run).
    invalid_said: bool,
    spool_path: Option<PathBuf>,
    sent: u64,
}

struct Shared {
    client: Client,
    run_id: String,
    spool_dir: Option<PathBuf>,
    msgs: Messages,
    state: Mutex<State>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Write `body` to the spool unless it already holds something further along.
    fn spool(&self, st: &mut State, body: &Value, reason: &str, attention: Option<String>) {
        let p = progress(body);
        if st.spooled.is_some_and(|s| !at_least(p, s)) {
            return;
        }
        let Some(dir) = &self.spool_dir else {
            return;
        };
        let entry = SpoolEntry {
            schema: SPOOL_SCHEMA.into(),
            kind: "run".into(),
            key: self.run_id.clone(),
            server: self.client.target.url.clone(),
            spooled_at: wattprint_store::clock::now_rfc3339(),
            reason: reason.to_string(),
            attention,
            body: body.clone(),
        };
        match write_spool(dir, &spool_name("", &self.run_id), &entry) {
            Ok(path) => {
                st.spooled = Some(p);
                st.spool_path = Some(path);
            }
            Err(e) => {
                let msg = format!("cannot write the spool ({e:#}); this upload is lost to the server (the local store still has the run)");
                if !st.printed.contains(&msg) {
                    self.msgs.loss(&msg);
                    st.printed.push(msg);
                }
            }
        }
    }

    fn spool_where(&self) -> String {
        self.spool_dir
            .as_ref()
            .map(|d| d.join(spool_name("", &self.run_id)).display().to_string())
            .unwrap_or_else(|| "the spool".into())
    }

    /// A record the server would refuse ([`RunRecord::validate`]): neither sent nor spooled, and
    /// said on stderr once per run, even with --quiet (someone must look at it). Returns the
    /// message.
    fn refuse_invalid(
        &self,
        st: &mut State,
        e: &wattprint_core::validate::ValidationError,
    ) -> String {
        let msg = invalid_message(&self.client.target.url, e);
        if !st.printed.contains(&msg) {
            self.msgs.loss(&msg);
            st.printed.push(msg.clone());
        }
        msg
    }

    /// The one warning of the run on stderr (4xx even with --quiet: it needs attention).
    fn warn_once(&self, st: &mut State, e: &SendError) {
        let rejected = matches!(e, SendError::Rejected { .. });
        let level = if rejected {
            Level::Loss
        } else {
            Level::Warning
        };
        if !st.printed.is_empty() || !self.msgs.shows(level) {
            return;
        }
        let msg =
            format!(
            "upload to {} failed: {e}; the run is kept in {} and `wattprint sync` will send it{}",
            self.client.target.url,
            self.spool_where(),
            if rejected { " once the problem is fixed" } else { " later" }
        );
        self.msgs.say(level, &msg);
        st.printed.push(msg);
    }

    /// The result of sending `body`.
    fn settle(&self, st: &mut State, body: &Value, r: Result<String, SendError>) {
        match r {
            Ok(_) => {
                st.sent += 1;
                st.backoff_until = None;
                if st.spooled.is_some_and(|s| at_least(progress(body), s)) {
                    if let Some(p) = st.spool_path.take() {
                        let _ = std::fs::remove_file(p);
                    }
                    st.spooled = None;
                }
            }
            Err(e) => {
                let attention = match &e {
                    SendError::Rejected { .. } => {
                        st.rejected.get_or_insert(e.clone());
                        Some(e.to_string())
                    }
                    SendError::Transient(s) => {
                        st.failure.get_or_insert(s.clone());
                        st.backoff_until = Some(Instant::now() + BACKOFF);
                        None
                    }
                };
                self.spool(st, body, &e.to_string(), attention);
                self.warn_once(st, &e);
            }
        }
    }
}

/// Why a record is not uploaded when it fails [`RunRecord::validate`].
pub fn invalid_message(url: &str, e: &wattprint_core::validate::ValidationError) -> String {
    format!(
        "not uploaded to {url}: the record fails the server's checks ({e}); it was neither sent nor spooled, and the local store keeps it (see docs/server.md, Validation)"
    )
}

/// Sends one run's checkpoints and final record from a background thread.
pub struct Uploader {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A cheap handle for the sampler's checkpoint callback.
#[derive(Clone)]
pub struct UploadHandle(Arc<Shared>);

impl UploadHandle {
    /// Queue a checkpoint (never blocks on the network).
    pub fn checkpoint(&self, rec: &RunRecord) {
        if let Err(e) = rec.validate() {
            let mut st = self.0.lock();
            if !st.invalid_said {
                st.invalid_said = true;
                self.0.refuse_invalid(&mut st, &e);
            }
            return;
        }
        let Ok(body) = serde_json::to_value(rec) else {
            return;
        };
        let mut st = self.0.lock();
        if st.closed {
            return;
        }
        if st.pending.replace(body).is_some() {
            st.dropped += 1;
        }
        self.0.cv.notify_all();
    }
}

impl Uploader {
    /// Start the background thread for run `run_id`. `spool_dir` None: nothing can be spooled
    /// (no home directory).
    pub fn start(
        client: Client,
        run_id: &str,
        spool_dir: Option<PathBuf>,
        msgs: Messages,
    ) -> Uploader {
        let shared = Arc::new(Shared {
            client,
            run_id: run_id.to_string(),
            spool_dir,
            msgs,
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("wattprint-upload".into())
            .spawn(move || worker(&s))
            .ok();
        Uploader { shared, thread }
    }

    /// A run's default: the target's client, the home directory's spool.
    pub fn for_run(
        target: &ServerTarget,
        run_id: &str,
        paths: &crate::paths::Paths,
        msgs: Messages,
    ) -> Uploader {
        Uploader::start(
            Client::new(target.clone()),
            run_id,
            paths.spool().ok(),
            msgs,
        )
    }

    pub fn handle(&self) -> UploadHandle {
        UploadHandle(Arc::clone(&self.shared))
    }

    /// Send the final record with its series (queued checkpoints are superseded). Warnings go
    /// into `rec` (so the local store, the spool and the server all keep them); returns the
    /// warnings already shown on stderr, for the summary not to repeat them. Waits at most a
    /// few seconds; whatever is not confirmed by then is in the spool.
    pub fn finish(mut self, rec: &mut RunRecord, snapshot: &Snapshot) -> Vec<String> {
        let sh = Arc::clone(&self.shared);
        let mut st = sh.lock();
        st.closed = true;
        st.pending = None;
        sh.cv.notify_all();
        // A checkpoint upload still in flight is not waited for: the final record supersedes it
        // on the server and in the spool. After a recent failure the last try is a quick one.
        let quick = st.busy || st.backoff_until.is_some_and(|t| Instant::now() < t);
        if let Some(f) = &st.failure {
            rec.warnings.push(format!(
                "uploads to {} failed during the run ({f}); checkpoints were kept in the spool",
                sh.client.target.url
            ));
        }
        let series = series_of(snapshot);
        let body = |rec: &RunRecord| -> Value {
            let mut v = serde_json::to_value(rec).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("series".into(), Value::Array(series.clone()));
            }
            v
        };
        if let Err(e) = rec.validate() {
            // Never sent nor spooled: the server would refuse it, and a retry cannot fix it.
            // (A checkpoint already in the spool was valid: it stays.)
            let msg = sh.refuse_invalid(&mut st, &e);
            rec.warnings.push(msg);
            let shown = st.printed.clone();
            let busy = st.busy;
            drop(st);
            if !busy {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
            return shown;
        }
        drop(st);
        let result = if quick {
            sh.client.quick().post_run(&body(rec))
        } else {
            sh.client.post_run(&body(rec))
        };
        let mut st = sh.lock();
        match result {
            Ok(_) => {
                sh.settle(&mut st, &body(rec), Ok(String::new()));
            }
            Err(e) => {
                let rejected = matches!(e, SendError::Rejected { .. });
                rec.warnings.push(format!(
                    "not uploaded to {}: {e}; kept in {}: {}",
                    sh.client.target.url,
                    sh.spool_where(),
                    if rejected {
                        "fix the problem, then run `wattprint sync`"
                    } else {
                        "`wattprint sync` sends it when the server is back"
                    }
                ));
                // The final record in the spool carries the warning too.
                let b = body(rec);
                st.spooled = None;
                sh.spool(&mut st, &b, &e.to_string(), rejected.then(|| e.to_string()));
                if rejected && st.printed.is_empty() {
                    // Shown even with --quiet: it needs someone's attention.
                    let msg = rec.warnings.last().cloned().unwrap_or_default();
                    sh.msgs.loss(&msg);
                    st.printed.push(msg);
                }
            }
        }
        let shown = if st.printed.is_empty() {
            Vec::new()
        } else {
            // One warning per run: the ones added above are covered by the one printed.
            let mut v = st.printed.clone();
            v.extend(
                rec.warnings
                    .iter()
                    .filter(|w| w.contains(&sh.client.target.url))
                    .cloned(),
            );
            v
        };
        let busy = st.busy;
        drop(st);
        if !busy {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
        shown
    }

    /// Checkpoints sent, and replaced in the queue before being sent (for tests).
    pub fn counts(&self) -> (u64, u64) {
        let st = self.shared.lock();
        (st.sent, st.dropped)
    }
}

fn worker(sh: &Shared) {
    loop {
        let mut st = sh.lock();
        while st.pending.is_none() && !st.closed {
            st = match sh.cv.wait(st) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
        let Some(body) = st.pending.take() else {
            return; // closed
        };
        // Refused before, or backing off after a failure: straight to the spool.
        if let Some(e) = st.rejected.clone() {
            sh.spool(&mut st, &body, &e.to_string(), Some(e.to_string()));
            continue;
        }
        if st.backoff_until.is_some_and(|t| Instant::now() < t) {
            let reason = st.failure.clone().unwrap_or_default();
            sh.spool(&mut st, &body, &reason, None);
            continue;
        }
        st.busy = true;
        drop(st);
        let r = sh.client.post_run(&body);
        let mut st = sh.lock();
        st.busy = false;
        sh.settle(&mut st, &body, r);
        sh.cv.notify_all();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use wattprint_core::record::{self, Ending, HostInfo, RunMeta, RunStatus};
    use wattprint_core::sampler::{DeviceTotal, Scope, SeriesPoint};
    use wattprint_core::sensor::{Device, DeviceKind, Method};
    use wattprint_core::units::{Joules, Watts};

    /// What the stub does with a request.
    #[derive(Clone, Copy)]
    enum Answer {
        Status(u16),
        /// Answer after a delay.
        Slow(u16, u64),
        /// Never answer (hold the connection).
        Hang,
    }

    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        auth: String,
        body: Value,
    }

    /// A loopback HTTP stub: answers each request with the next programmed answer (the last
    /// one repeats) and records what it got.
    struct Stub {
        url: String,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Stub {
        fn start(answers: Vec<Answer>) -> Stub {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", l.local_addr().unwrap());
            let seen = Arc::new(Mutex::new(Vec::new()));
            let seen2 = Arc::clone(&seen);
            std::thread::spawn(move || {
                let mut i = 0;
                for conn in l.incoming() {
                    let Ok(mut s) = conn else { continue };
                    let a = answers[i.min(answers.len() - 1)];
                    i += 1;
                    let seen = Arc::clone(&seen2);
                    std::thread::spawn(move || {
                        let mut r = BufReader::new(s.try_clone().unwrap());
                        let mut line = String::new();
                        r.read_line(&mut line).unwrap();
                        let mut parts = line.split_whitespace();
                        let method = parts.next().unwrap_or("").to_string();
                        let path = parts.next().unwrap_or("").to_string();
                        let (mut len, mut auth) = (0usize, String::new());
                        loop {
                            let mut h = String::new();
                            r.read_line(&mut h).unwrap();
                            let h = h.trim_end().to_string();
                            if h.is_empty() {
                                break;
                            }
                            let (k, v) = h.split_once(':').unwrap();
                            match k.to_ascii_lowercase().as_str() {
                                "content-length" => len = v.trim().parse().unwrap(),
                                "authorization" => auth = v.trim().to_string(),
                                _ => {}
                            }
                        }
                        let mut body = vec![0u8; len];
                        r.read_exact(&mut body).unwrap();
                        seen.lock().unwrap().push(Seen {
                            method,
                            path,
                            auth,
                            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        });
                        let status = match a {
                            Answer::Status(c) => c,
                            Answer::Slow(c, ms) => {
                                std::thread::sleep(Duration::from_millis(ms));
                                c
                            }
                            Answer::Hang => {
                                std::thread::sleep(Duration::from_secs(30));
                                return;
                            }
                        };
                        let b = if status < 300 {
                            r#"{"outcome":"created"}"#.to_string()
                        } else {
                            format!(r#"{{"error":"x","detail":"stub says {status}"}}"#)
                        };
                        let _ = write!(
                            s,
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                            b.len()
                        );
                    });
                }
            });
            Stub { url, seen }
        }
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    fn snapshot(secs: f64, joules: f64) -> Snapshot {
        Snapshot {
            elapsed: Duration::from_secs_f64(secs),
            devices: vec![DeviceTotal {
                device: Device {
                    id: "cpu:package-0".into(),
                    kind: DeviceKind::Cpu,
                    method: Method::Rapl,
                    name: "package-0".into(),
                    gpu_index: None,
                    uuid: None,
                    idle_power_w: None,
                    factors: Vec::new(),
                },
                energy: Joules(joules),
                machine_energy: Joules(joules),
                last_power: Watts(joules / secs),
                series: (0..secs as usize)
                    .map(|i| SeriesPoint {
                        t0: i as f64,
                        t1: i as f64 + 1.0,
                        energy_j: joules / secs,
                    })
                    .collect(),
            }],
            warnings: vec![],
            samples: secs as u64,
            skipped_ticks: 0,
        }
    }

    fn rec(secs: f64, joules: f64, status: RunStatus) -> RunRecord {
        let meta = RunMeta {
            id: "run-1".into(),
            project: "p".into(),
            tags: Default::default(),
            command: vec!["true".into()],
            started_at: "2025-03-10T12:00:00Z".into(),
            host: HostInfo {
                hostname: "h".into(),
                cpu_model: "c".into(),
                logical_cpus: 1,
                ram_gb: 1.0,
                gpus: vec![],
            },
            scope: Scope::Machine,
            interval_s: 1.0,
            start_unix: 0.0,
        };
        let carbon = crate::options::CarbonOptions {
            intensity: Some(100.0),
            pue: Some(1.0),
            country: Some("FR".into()),
            ..Default::default()
        }
        .resolve(&wattprint_core::env::Env::default())
        .unwrap();
        record::build_record(
            &meta,
            &carbon,
            &snapshot(secs, joules),
            status,
            &Ending::default(),
            &[],
        )
    }

    fn uploader(url: &str, dir: &Path, timeout_ms: u64) -> Uploader {
        let t = ServerTarget::new(url, "wpt_test").unwrap();
        let c = Client::with_timeouts(
            t,
            Duration::from_millis(timeout_ms),
            Duration::from_millis(timeout_ms),
        );
        Uploader::start(
            c,
            "run-1",
            Some(dir.to_path_buf()),
            crate::messages::Messages::discard(),
        )
    }

    fn spooled(dir: &Path) -> Option<SpoolEntry> {
        let p = dir.join("run-1.json");
        std::fs::read(p)
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    fn wait_for(mut f: impl FnMut() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(10), "timed out");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn targets_are_checked_and_normalised() {
        let t = ServerTarget::new("http://h:8080/", "wpt_x").unwrap();
        assert_eq!(t.api, "http://h:8080/api/v1");
        let t = ServerTarget::new("https://h/wp/api/v1", "wpt_x").unwrap();
        assert_eq!(t.api, "https://h/wp/api/v1");
        assert!(ServerTarget::new("h:8080", "wpt_x").is_err());
        assert!(ServerTarget::new("http://", "wpt_x").is_err());
        assert!(ServerTarget::new("http://h", "wpt x").is_err());
        assert_eq!(spool_name("node-", "a/b c"), "node-a_b_c.json");
    }

    #[test]
    fn checkpoints_and_the_final_record_are_sent() {
        let stub = Stub::start(vec![Answer::Status(201), Answer::Status(200)]);
        let dir = tempfile::tempdir().unwrap();
        let up = uploader(&stub.url, dir.path(), 2000);
        up.handle()
            .checkpoint(&rec(10.0, 100.0, RunStatus::Running));
        wait_for(|| stub.seen().len() == 1);
        let mut fin = rec(12.0, 120.0, RunStatus::Completed);
        let shown = up.finish(&mut fin, &snapshot(12.0, 120.0));
        assert!(shown.is_empty());
        let seen = stub.seen();
        assert_eq!(seen.len(), 2);
        assert!(seen
            .iter()
            .all(|s| s.method == "POST" && s.path == "/api/v1/runs"));
        assert_eq!(seen[0].auth, "Bearer wpt_test");
        assert_eq!(seen[0].body["status"], "running");
        assert!(
            seen[0].body.get("series").is_none(),
            "checkpoints carry no series"
        );
        assert_eq!(seen[1].body["status"], "completed");
        assert_eq!(seen[1].body["series"].as_array().unwrap().len(), 12);
        assert!(fin.warnings.is_empty(), "{:?}", fin.warnings);
        assert!(spooled(dir.path()).is_none());
    }

    #[test]
    fn only_the_latest_checkpoint_waits_in_the_queue() {
        // The first upload takes 600 ms; three checkpoints arrive meanwhile.
        let stub = Stub::start(vec![Answer::Slow(201, 600), Answer::Status(200)]);
        let dir = tempfile::tempdir().unwrap();
        let up = uploader(&stub.url, dir.path(), 3000);
        let h = up.handle();
        let t = Instant::now();
        h.checkpoint(&rec(10.0, 100.0, RunStatus::Running));
        wait_for(|| stub.seen().len() == 1);
        for i in 2..5 {
            h.checkpoint(&rec(10.0 * i as f64, 100.0 * i as f64, RunStatus::Running));
        }
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "checkpoint() never blocks"
        );
        wait_for(|| stub.seen().len() == 2);
        let (sent, dropped) = up.counts();
        assert_eq!(dropped, 2);
        assert_eq!(stub.seen()[1].body["duration_s"], 40.0, "the latest one");
        let mut fin = rec(45.0, 450.0, RunStatus::Completed);
        up.finish(&mut fin, &snapshot(45.0, 450.0));
        assert!(sent >= 1);
        assert_eq!(stub.seen().len(), 3);
    }

    #[test]
    fn an_unreachable_server_leaves_the_run_in_the_spool() {
        // A loopback port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        let up = uploader(&url, dir.path(), 500);
        up.handle()
            .checkpoint(&rec(10.0, 100.0, RunStatus::Running));
        wait_for(|| spooled(dir.path()).is_some());
        let e = spooled(dir.path()).unwrap();
        assert_eq!((e.kind.as_str(), e.key.as_str()), ("run", "run-1"));
        assert_eq!(e.body["status"], "running");
        assert!(e.attention.is_none());
        assert_eq!(e.server, url);
        // The file is private.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("run-1.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        // The final record replaces the checkpoint, with its series and the warning.
        let mut fin = rec(20.0, 200.0, RunStatus::Completed);
        let t = Instant::now();
        up.finish(&mut fin, &snapshot(20.0, 200.0));
        assert!(t.elapsed() < Duration::from_secs(3));
        let e = spooled(dir.path()).unwrap();
        assert_eq!(e.body["status"], "completed");
        assert_eq!(e.body["series"].as_array().unwrap().len(), 20);
        assert!(
            fin.warnings
                .iter()
                .any(|w| w.contains("not uploaded") && w.contains("wattprint sync")),
            "{:?}",
            fin.warnings
        );
        assert_eq!(
            e.body["warnings"],
            serde_json::to_value(&fin.warnings).unwrap()
        );
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn server_errors_spool_and_refusals_need_attention() {
        for (code, attention) in [
            (503u16, false),
            (500, false),
            (429, false),
            (401, true),
            (422, true),
        ] {
            let stub = Stub::start(vec![Answer::Status(code)]);
            let dir = tempfile::tempdir().unwrap();
            let up = uploader(&stub.url, dir.path(), 2000);
            let mut fin = rec(20.0, 200.0, RunStatus::Failed);
            up.finish(&mut fin, &snapshot(20.0, 200.0));
            let e = spooled(dir.path()).unwrap_or_else(|| panic!("{code}: nothing spooled"));
            assert_eq!(e.attention.is_some(), attention, "{code}: {e:?}");
            assert!(e.reason.contains(&code.to_string()), "{code}: {}", e.reason);
            let w = fin.warnings.last().unwrap();
            if attention {
                assert!(w.contains("fix the problem"), "{w}");
                assert!(w.contains(&format!("stub says {code}")), "{w}");
            } else {
                assert!(w.contains("when the server is back"), "{w}");
            }
        }
    }

    #[test]
    fn a_server_that_never_answers_does_not_hold_the_run() {
        let stub = Stub::start(vec![Answer::Hang]);
        let dir = tempfile::tempdir().unwrap();
        let up = uploader(&stub.url, dir.path(), 400);
        up.handle()
            .checkpoint(&rec(10.0, 100.0, RunStatus::Running));
        wait_for(|| !stub.seen().is_empty());
        let mut fin = rec(20.0, 200.0, RunStatus::Completed);
        let t = Instant::now();
        up.finish(&mut fin, &snapshot(20.0, 200.0));
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert_eq!(spooled(dir.path()).unwrap().body["status"], "completed");
    }

    #[test]
    fn sync_sends_then_deletes_and_keeps_what_fails() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |key: &str, duration: f64| SpoolEntry {
            schema: SPOOL_SCHEMA.into(),
            kind: "run".into(),
            key: key.into(),
            server: "http://x".into(),
            spooled_at: "t".into(),
            reason: "down".into(),
            attention: None,
            body: json!({"id": key, "status": "completed", "duration_s": duration}),
        };
        let p = write_spool(dir.path(), "a.json", &entry("a", 1.0)).unwrap();
        let ok = Stub::start(vec![Answer::Status(201)]);
        let c = Client::new(ServerTarget::new(&ok.url, "wpt_t").unwrap());
        assert!(
            matches!(sync_file(&c, &p), SyncResult::Sent { ref outcome, .. } if outcome == "created")
        );
        assert!(!p.exists());
        // A refusal keeps the file and marks it.
        let p = write_spool(dir.path(), "b.json", &entry("b", 1.0)).unwrap();
        let no = Stub::start(vec![Answer::Status(403)]);
        let c = Client::new(ServerTarget::new(&no.url, "wpt_t").unwrap());
        assert!(matches!(
            sync_file(&c, &p),
            SyncResult::Kept {
                error: SendError::Rejected { status: 403, .. },
                ..
            }
        ));
        let kept: SpoolEntry = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert!(kept.attention.unwrap().contains("403"));
        // A server error keeps it as it was (not marked).
        let p = write_spool(dir.path(), "c.json", &entry("c", 1.0)).unwrap();
        let down = Stub::start(vec![Answer::Status(502)]);
        let c = Client::new(ServerTarget::new(&down.url, "wpt_t").unwrap());
        assert!(matches!(
            sync_file(&c, &p),
            SyncResult::Kept {
                error: SendError::Transient(_),
                ..
            }
        ));
        assert!(p.exists());
        // A newer file written while the old one was being sent is not lost.
        let slow = Stub::start(vec![Answer::Slow(503, 300)]);
        let c = Client::new(ServerTarget::new(&slow.url, "wpt_t").unwrap());
        let d = dir.path().to_path_buf();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            write_spool(&d, "c.json", &entry("c", 2.0)).unwrap();
        });
        assert!(matches!(sync_file(&c, &p), SyncResult::Kept { .. }));
        writer.join().unwrap();
        let now: SpoolEntry = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(now.body["duration_s"], 2.0, "the newer file stays");
        // Claims left by a dead sync are put back.
        std::fs::rename(&p, dir.path().join(".c.json.sending-999999999")).unwrap();
        recover_claims(dir.path());
        assert!(p.exists());
        let names: Vec<_> = list_spool(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["b.json", "c.json"]);
    }

    #[test]
    fn a_record_the_server_would_refuse_is_neither_sent_nor_spooled() {
        let stub = Stub::start(vec![Answer::Status(201), Answer::Status(201)]);
        let dir = tempfile::tempdir().unwrap();
        let up = uploader(&stub.url, dir.path(), 2000);
        // Valid records as `wattprint run` builds them pass.
        assert_eq!(rec(10.0, 100.0, RunStatus::Running).validate(), Ok(()));
        for i in 0..3 {
            let mut cp = rec(10.0 + f64::from(i), 100.0, RunStatus::Running);
            cp.emissions_kg.total = 1e308 / f64::from(i + 1);
            up.handle().checkpoint(&cp);
        }
        let mut fin = rec(12.0, 120.0, RunStatus::Completed);
        fin.started_at = "9999-01-01T00:00:00Z".into();
        let shown = up.finish(&mut fin, &snapshot(12.0, 120.0));
        assert!(stub.seen().is_empty(), "sent: {:?}", stub.seen().len());
        assert!(spooled(dir.path()).is_none(), "spooled");
        // Said loudly (the uploader runs with --quiet here) and kept in the local record.
        assert_eq!(
            shown
                .iter()
                .filter(|m| m.contains("emissions_kg.total"))
                .count(),
            1,
            "once for the checkpoints: {shown:?}"
        );
        assert!(
            fin.warnings
                .iter()
                .any(|w| w.contains("started_at") && w.contains("neither sent nor spooled")),
            "{:?}",
            fin.warnings
        );
    }

    #[test]
    fn sync_does_not_send_a_spooled_record_the_server_would_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = rec(10.0, 100.0, RunStatus::Completed);
        bad.energy_kwh.total = wattprint_core::units::KilowattHours(1e308);
        let entry = SpoolEntry {
            schema: SPOOL_SCHEMA.into(),
            kind: "run".into(),
            key: "run-1".into(),
            server: "http://x".into(),
            spooled_at: "t".into(),
            reason: "down".into(),
            attention: None,
            body: serde_json::to_value(&bad).unwrap(),
        };
        let p = write_spool(dir.path(), "run-1.json", &entry).unwrap();
        let stub = Stub::start(vec![Answer::Status(201)]);
        let c = Client::new(ServerTarget::new(&stub.url, "wpt_t").unwrap());
        let r = sync_file(&c, &p);
        assert!(
            matches!(&r, SyncResult::Kept { error: SendError::Rejected { detail, .. }, .. } if detail.contains("energy_kwh.total")),
            "{r:?}"
        );
        assert!(stub.seen().is_empty());
        let kept: SpoolEntry = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert!(kept.attention.unwrap().contains("not sent"));
    }
}
