//! `wattprint agent`: a node daemon. It measures the whole machine continuously with the same
//! sensors as `wattprint run` (machine scope), keeps per-device counters and an hourly ledger,
//! attributes the energy to the wattprint runs and commands on the node ([`procs`]), serves
//! Prometheus metrics ([`metrics`]) and reports the ledger to the server, spooling it while
//! the server cannot be reached. See docs/agents.md.

pub mod ledger;
pub mod metrics;
pub mod procs;
pub mod run_metrics;

use crate::uploader::{self, Client, SendError, SpoolEntry, SPOOL_SCHEMA};
use ledger::Ledger;
use serde_json::{json, Value};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wattprint_core::sampler::{Sampler, Snapshot};
use wattprint_core::sensor::DeviceKind;

/// One device of the node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceState {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub method: String,
    /// Energy since the agent started, joules.
    pub joules: f64,
    /// Operational emissions since the agent started, grams CO2e.
    pub grams: f64,
    /// Power over the latest interval, watts.
    pub power_w: f64,
}

/// How the reports to the server go.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReportState {
    pub server: Option<String>,
    pub reports_ok: u64,
    pub failures: u64,
    pub last_ok_at: Option<String>,
    pub last_error: Option<String>,
    /// Set when the server refused a report (4xx): someone must fix the token or the agent.
    pub needs_attention: bool,
    pub spool_file: Option<String>,
}

/// Everything the agent knows, shared by its threads.
#[derive(Debug)]
pub struct AgentState {
    pub node: String,
    pub agent_id: String,
    pub started_at: String,
    pub interval_s: f64,
    pub g_per_kwh: f64,
    pub pue: f64,
    pub location: String,
    pub devices: Vec<DeviceState>,
    pub ledger: Ledger,
    pub runs_active: usize,
    pub top: Vec<procs::Group>,
    pub report: ReportState,
    pub warnings: Vec<String>,
    pub samples: u64,
    /// The host ledger the agent reads the counters for (runs on the node take their shares
    /// from it): per-run and unattributed energy for the metrics.
    pub host_ledger: Option<wattprint_core::host_ledger::HostLedger>,
}

pub type SharedState = Arc<Mutex<AgentState>>;

fn lock(s: &SharedState) -> std::sync::MutexGuard<'_, AgentState> {
    match s.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl AgentState {
    pub fn new(
        node: &str,
        interval: Duration,
        g_per_kwh: f64,
        pue: f64,
        location: &str,
    ) -> AgentState {
        AgentState {
            node: node.to_string(),
            agent_id: uuid::Uuid::new_v4().to_string(),
            started_at: crate::clock::now_rfc3339(),
            interval_s: interval.as_secs_f64(),
            g_per_kwh,
            pue,
            location: location.to_string(),
            devices: Vec::new(),
            ledger: Ledger::default(),
            runs_active: 0,
            top: Vec::new(),
            report: ReportState::default(),
            warnings: Vec::new(),
            samples: 0,
            host_ledger: None,
        }
    }

    /// Grams CO2e of `joules` of IT energy.
    pub fn grams(&self, joules: f64) -> f64 {
        joules / 3.6e6 * self.g_per_kwh * self.pue
    }

    /// The `/status` document.
    pub fn status_json(&self) -> Value {
        json!({
            "node": self.node,
            "agent": self.agent_id,
            "started_at": self.started_at,
            "interval_s": self.interval_s,
            "location": self.location,
            "carbon_intensity_g_per_kwh": self.g_per_kwh,
            "pue": self.pue,
            "samples": self.samples,
            "devices": self.devices,
            "total_joules": self.devices.iter().map(|d| d.joules).sum::<f64>(),
            "total_grams": self.devices.iter().map(|d| d.grams).sum::<f64>(),
            "runs_active": self.runs_active,
            "top": self.top,
            "report": self.report,
            "pending_windows": self.ledger.pending_windows(),
            "warnings": self.warnings,
        })
    }

    /// Final counters, printed when the agent stops.
    pub fn final_json(&self) -> Value {
        json!({
            "node": self.node,
            "agent": self.agent_id,
            "devices": self.devices.iter().map(|d| json!({
                "device_id": d.id, "kind": d.kind, "joules": d.joules, "emissions_g": d.grams,
            })).collect::<Vec<_>>(),
            "total_joules": self.devices.iter().map(|d| d.joules).sum::<f64>(),
            "pending_windows": self.ledger.pending_windows(),
            "report": self.report,
        })
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The measuring side: turns the sampler's cumulative machine energy into per-interval deltas,
/// counters, ledger entries and attributions.
pub struct Meter {
    state: SharedState,
    prev: Vec<f64>,
    /// The host ledger's unattributed energy at the previous apply, joules.
    prev_unattributed: f64,
    attribution: Option<procs::ProcAttribution>,
    top_n: usize,
}

impl Meter {
    pub fn new(
        state: SharedState,
        attribution: Option<procs::ProcAttribution>,
        top_n: usize,
    ) -> Meter {
        Meter {
            state,
            prev: Vec::new(),
            prev_unattributed: 0.0,
            attribution,
            top_n,
        }
    }

    /// Account for everything the sampler measured up to `snap`.
    pub fn apply(&mut self, snap: &Snapshot, attribute: bool) {
        let window = ledger::window_of(unix_now());
        if self.prev.len() != snap.devices.len() {
            self.prev = vec![0.0; snap.devices.len()];
        }
        let mut st = lock(&self.state);
        if st.devices.len() != snap.devices.len() {
            st.devices = snap
                .devices
                .iter()
                .map(|d| DeviceState {
                    id: d.device.id.clone(),
                    kind: d.device.kind.as_str().to_string(),
                    name: d.device.name.clone(),
                    method: d.device.method.as_str().to_string(),
                    joules: 0.0,
                    grams: 0.0,
                    power_w: 0.0,
                })
                .collect();
        }
        let (mut cpu_j, mut ram_j, mut other_j) = (0.0, 0.0, 0.0);
        for (i, d) in snap.devices.iter().enumerate() {
            let cum = d.machine_energy.0;
            let delta = (cum - self.prev[i]).max(0.0);
            self.prev[i] = cum.max(self.prev[i]);
            let g = st.grams(delta);
            match d.device.kind {
                DeviceKind::Cpu => cpu_j += delta,
                DeviceKind::Ram => ram_j += delta,
                DeviceKind::Gpu => other_j += delta,
            }
            st.ledger
                .add(window, &d.device.id, d.device.kind.as_str(), delta, g);
            let ds = &mut st.devices[i];
            ds.joules += delta;
            ds.grams += g;
            ds.power_w = d.last_power.0;
        }
        // The energy of this interval no run on the node was charged (process-scope runs and
        // idle time under the host ledger), reported beside the devices: the server keeps it
        // out of the node's total, which the devices already make.
        if let Some(l) = st.host_ledger.clone() {
            let (_, unattributed) = l.runs();
            let delta = (unattributed - self.prev_unattributed).max(0.0);
            self.prev_unattributed = self.prev_unattributed.max(unattributed);
            let g = st.grams(delta);
            st.ledger
                .add(window, ledger::UNATTRIBUTED, ledger::UNATTRIBUTED, delta, g);
        }
        st.samples = snap.samples;
        for w in &snap.warnings {
            if !st.warnings.contains(w) {
                st.warnings.push(w.clone());
            }
        }
        drop(st);
        if let (true, Some(a)) = (attribute, self.attribution.as_mut()) {
            a.update(cpu_j, ram_j, other_j);
            let top = a.top(self.top_n);
            let runs = a.runs_active;
            let warnings = std::mem::take(&mut a.warnings);
            let mut st = lock(&self.state);
            st.top = top;
            st.runs_active = runs;
            for w in warnings {
                if !st.warnings.contains(&w) {
                    st.warnings.push(w);
                }
            }
        }
    }

    /// Sample every `interval` until `stop` says so, then stop the sampler and account for the
    /// tail.
    pub fn run(mut self, sampler: Sampler, interval: Duration, stop: Receiver<()>) {
        loop {
            match stop.recv_timeout(interval) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            let snap = sampler.snapshot();
            self.apply(&snap, true);
        }
        let last = sampler.stop();
        self.apply(&last, false);
    }
}

/// The reporting side: sends the ledger's unconfirmed figures, spools them when that fails,
/// and sends older agents' spool files of this node once the server answers.
pub struct Reporter {
    pub state: SharedState,
    pub client: Client,
    pub spool_dir: Option<PathBuf>,
    pub quiet: bool,
}

impl Reporter {
    fn spool_name(&self, node: &str, agent: &str) -> String {
        uploader::spool_name("node-", &format!("{node}-{agent}"))
    }

    /// One report. Returns whether the server confirmed everything pending.
    pub fn report_once(&self, with_backlog: bool) -> bool {
        let (node, agent, entries) = {
            let st = lock(&self.state);
            (st.node.clone(), st.agent_id.clone(), st.ledger.pending())
        };
        let name = self.spool_name(&node, &agent);
        if entries.is_empty() {
            if with_backlog {
                self.send_old_spool(&node, &name);
            }
            return true;
        }
        let body = ledger::body(&agent, &entries);
        let result = self.client.post_node_energy(&node, &body);
        let mut st = lock(&self.state);
        match result {
            Ok(_) => {
                let was_failing = st.report.last_error.is_some();
                st.ledger.confirm(&entries);
                st.ledger.prune(ledger::window_of(unix_now()));
                st.report.reports_ok += 1;
                st.report.last_ok_at = Some(crate::clock::now_rfc3339());
                st.report.last_error = None;
                st.report.needs_attention = false;
                if let Some(dir) = &self.spool_dir {
                    if st.ledger.pending_windows() == 0 {
                        let _ = std::fs::remove_file(dir.join(&name));
                        st.report.spool_file = None;
                    }
                }
                drop(st);
                if was_failing && !self.quiet {
                    // A log line: a closed stdout must not stop the agent.
                    let _ = writeln!(
                        std::io::stdout().lock(),
                        "wattprint agent: {} answers again; sent the backlog ({} windows)",
                        self.client.target.url,
                        body["windows"].as_array().map(Vec::len).unwrap_or(0)
                    );
                }
                if with_backlog {
                    self.send_old_spool(&node, &name);
                }
                true
            }
            Err(e) => {
                let first = st.report.last_error.is_none();
                st.report.failures += 1;
                st.report.last_error = Some(e.to_string());
                let rejected = matches!(e, SendError::Rejected { .. });
                st.report.needs_attention = rejected;
                if let Some(dir) = &self.spool_dir {
                    let entry = SpoolEntry {
                        schema: SPOOL_SCHEMA.into(),
                        kind: "node".into(),
                        key: node.clone(),
                        server: self.client.target.url.clone(),
                        spooled_at: crate::clock::now_rfc3339(),
                        reason: e.to_string(),
                        attention: rejected.then(|| e.to_string()),
                        body,
                    };
                    match uploader::write_spool(dir, &name, &entry) {
                        Ok(p) => st.report.spool_file = Some(p.display().to_string()),
                        Err(we) => {
                            if first {
                                eprintln!("wattprint agent: warning: cannot write the spool: {we:#} (the figures stay in memory)");
                            }
                        }
                    }
                }
                if first && (!self.quiet || rejected) {
                    eprintln!(
                        "wattprint agent: warning: report to {} failed: {e}; measuring goes on, figures are kept{} and sent when it answers",
                        self.client.target.url,
                        st.report
                            .spool_file
                            .as_ref()
                            .map(|p| format!(" (spooled in {p})"))
                            .unwrap_or_default()
                    );
                }
                false
            }
        }
    }

    /// Spool files of this node left by earlier agent instances (or by a crash).
    fn send_old_spool(&self, node: &str, own: &str) {
        let Some(dir) = &self.spool_dir else {
            return;
        };
        let prefix = uploader::spool_name("node-", &format!("{node}-"));
        let prefix = prefix.trim_end_matches(".json");
        for f in uploader::list_spool(dir) {
            let Some(n) = f.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if n == own || !n.starts_with(prefix) {
                continue;
            }
            match uploader::sync_file(&self.client, &f) {
                uploader::SyncResult::Sent { .. } if !self.quiet => {
                    let _ = writeln!(
                        std::io::stdout().lock(),
                        "wattprint agent: sent spooled report {n}"
                    );
                }
                uploader::SyncResult::Kept { error, .. } => {
                    if !self.quiet {
                        eprintln!("wattprint agent: warning: spooled report {n} kept: {error}");
                    }
                    return;
                }
                _ => {}
            }
        }
    }

    /// Report every `every` until `stop`, then once more (the final figures).
    pub fn run(self, every: Duration, stop: Receiver<()>) {
        // Earlier instances' backlog first.
        self.report_once(true);
        loop {
            match stop.recv_timeout(every) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.report_once(true);
        }
        // The final figures (the measuring thread has stopped by now).
        self.report_once(false);
    }
}
