//! `wattprint agent`: the node daemon (measure the machine, serve Prometheus metrics, report to
//! the server). The work is in [`crate::agent`]; this module parses flags and runs the threads.

use crate::agent::{self, AgentState, Meter, Reporter};
use crate::config::Config;
use crate::uploader::{Client, ServerTarget};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wattprint_core::discovery;
use wattprint_core::host::HostPaths;
use wattprint_core::sampler::Scope;

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  wattprint agent --metrics 127.0.0.1:9464\n  \
WATTPRINT_TOKEN=wpt_… wattprint agent --server https://wattprint.example.org --location FR\n\n\
The token comes from $WATTPRINT_TOKEN or the configuration file's `token`. SIGTERM or SIGINT:\n\
the agent sends its last figures (or spools them) and exits 0. See docs/agents.md."
)]
pub struct Args {
    /// Server to report to (default: $WATTPRINT_SERVER, else the configuration file's
    /// `server`). Without one the agent only serves metrics.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Address of the Prometheus endpoint, HOST:PORT (port 0 picks one; `off` for none).
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "HOST:PORT")]
    pub metrics: String,
    /// Sampling interval (minimum 10ms).
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub interval: String,
    /// How often the figures are sent to the server (minimum 100ms).
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub report_every: String,
    /// The node's name on the server (default: the hostname).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    #[command(flatten)]
    pub carbon: crate::carbon_args::CarbonArgs,
    /// CPU TDP in watts per package for the CPU power model, when it is used.
    #[arg(long, value_name = "W")]
    pub cpu_tdp: Option<f64>,
    /// Path of libnvidia-ml.so (default: $WATTPRINT_NVML_LIBRARY, else the system's).
    #[arg(long, value_name = "PATH")]
    pub nvml_library: Option<PathBuf>,
    /// Path of libamd_smi.so (default: $WATTPRINT_AMDSMI_LIBRARY, else the system's where the
    /// amdgpu driver is loaded).
    #[arg(long, value_name = "PATH")]
    pub amdsmi_library: Option<PathBuf>,
    /// Do not attribute energy to runs and processes (no scan of /proc).
    #[arg(long)]
    pub no_attribution: bool,
    /// Most groups (runs, commands) kept by the attribution and shown on /status.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
    /// Only warnings and errors on stderr; no progress lines.
    #[arg(long, short)]
    pub quiet: bool,
}

/// A node name: 1–200 characters, no control characters.
fn check_node(n: &str) -> Result<()> {
    if n.trim().is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) {
        bail!(
            "--node {n:?}: use 1 to 200 characters without control characters, e.g. --node gpu-07"
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}

/// The flags' values checked: the sampling interval and the reporting period.
fn check_args(a: &Args) -> Result<(Duration, Duration)> {
    let interval = crate::cmd_run::parse_interval(&a.interval)?;
    let report_every = wattprint_core::units::parse_duration(&a.report_every)
        .map_err(|e| anyhow::anyhow!("--report-every: {e}"))?;
    if report_every < Duration::from_millis(100) {
        bail!(
            "--report-every {} is below the minimum of 100ms",
            a.report_every
        );
    }
    if a.top == 0 || a.top > 1000 {
        bail!("--top {}: use 1 to 1000", a.top);
    }
    if let Some(w) = a.cpu_tdp {
        if !(w.is_finite() && w > 0.0) {
            bail!("--cpu-tdp {w}: must be a positive number of watts");
        }
    }
    Ok((interval, report_every))
}

pub fn run(a: Args) -> Result<i32> {
    let (interval, report_every) = check_args(&a)?;
    let msgs = crate::stderr_messages(a.quiet);
    let config = Config::load(crate::env())?;
    for w in &config.warnings {
        eprintln!("wattprint: warning: {w}");
    }
    let target: Option<ServerTarget> =
        ServerTarget::resolve(a.server.as_deref(), &config, crate::env(), &msgs)?;
    let carbon = a.carbon.resolve()?;
    let node = a.node.clone().unwrap_or_else(discovery::hostname);
    check_node(&node)?;
    let metrics_addr = match a.metrics.as_str() {
        "off" | "none" | "" => None,
        s => Some(s.to_string()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let listener = match &metrics_addr {
        Some(addr) => Some(
            rt.block_on(tokio::net::TcpListener::bind(addr))
                .with_context(|| format!("cannot listen on {addr} for --metrics: is it in use? pick another HOST:PORT"))?,
        ),
        None => None,
    };

    let paths = HostPaths::from_env(crate::env());
    // The same discovery and sampler as a run's session, charging the whole machine; the
    // agent reads the counters for the host ledger, so runs on the node take their shares
    // from it instead of reading them again.
    let measured = wattprint_session::measure::start_shared(
        &paths,
        &wattprint_session::measure::discover_options(
            crate::env(),
            a.cpu_tdp,
            a.nvml_library.clone(),
        )
        .with_amdsmi_library(a.amdsmi_library.clone()),
        Scope::Machine,
        interval,
        wattprint_core::host_ledger::runtime_dir(crate::env()).map(|runtime_dir| {
            wattprint_session::measure::Share {
                runtime_dir,
                run_id: format!("agent-{}", std::process::id()),
                job: None,
                local_rank: None,
                agent: true,
                cpus: None,
                // The agent reads the ledger for every run: never idle.
                idle_follow: None,
            }
        }),
    );
    for w in measured.warnings.iter().chain(carbon.warnings.iter()) {
        eprintln!("wattprint agent: warning: {w}");
    }
    let state = Arc::new(Mutex::new(AgentState::new(
        &node,
        interval,
        carbon.intensity_g_per_kwh,
        carbon.pue,
        &carbon.location.code,
    )));
    let device_ids = measured.device_ids.clone();
    let disc_warnings = measured.warnings.clone();
    let host_ledger = measured.ledger.clone();
    let sampler = measured.sampler;
    {
        let mut st = match state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        st.report.server = target.as_ref().map(|t| t.url.clone());
        st.host_ledger = measured.ledger.clone();
        st.warnings.extend(disc_warnings);
    }
    let line = banner(
        &node,
        &state,
        &device_ids,
        &carbon,
        listener.as_ref().map(|l| l.local_addr()).transpose()?,
        target.as_ref().map(|t| (t.url.as_str(), report_every)),
    );
    crate::stdout_ln!("{line}");
    let _ = std::io::stdout().flush();

    let attribution = (!a.no_attribution)
        .then(|| agent::procs::ProcAttribution::new(paths.clone(), a.top.max(8) * 2));
    let meter = Meter::new(Arc::clone(&state), attribution, a.top);
    let (meter_stop, meter_rx) = std::sync::mpsc::channel::<()>();
    let meter_thread = std::thread::Builder::new()
        .name("wattprint-agent-meter".into())
        .spawn(move || meter.run(sampler, interval, meter_rx))
        .context("starting the measuring thread")?;
    let (rep_stop, rep_rx) = std::sync::mpsc::channel::<()>();
    let reporter_thread = match &target {
        Some(t) => {
            let reporter = Reporter {
                state: Arc::clone(&state),
                client: Client::new(t.clone()),
                spool_dir: wattprint_session::paths::Paths::resolve(crate::env())
                    .spool()
                    .ok(),
                quiet: a.quiet,
            };
            Some(
                std::thread::Builder::new()
                    .name("wattprint-agent-report".into())
                    .spawn(move || reporter.run(report_every, rep_rx))
                    .context("starting the reporting thread")?,
            )
        }
        None => None,
    };

    let router = agent::metrics::router(Arc::clone(&state));
    rt.block_on(async move {
        match listener {
            Some(l) => {
                if let Err(e) = axum::serve(l, router)
                    .with_graceful_shutdown(shutdown_signal())
                    .await
                {
                    eprintln!("wattprint agent: warning: metrics endpoint stopped: {e}");
                    shutdown_signal().await;
                }
            }
            None => shutdown_signal().await,
        }
    });
    // Stop measuring (the tail is accounted for), then send the final figures.
    let _ = meter_stop.send(());
    let _ = meter_thread.join();
    if let Some(l) = &host_ledger {
        // Hand the reading over to the runs still on the node.
        l.leave();
    }
    let _ = rep_stop.send(());
    if let Some(t) = reporter_thread {
        let _ = t.join();
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    let fin = match state.lock() {
        Ok(g) => g.final_json(),
        Err(p) => p.into_inner().final_json(),
    };
    crate::stdout_ln!("wattprint agent: stopped; final {fin}");
    let _ = std::io::stdout().flush();
    Ok(0)
}

/// The agent's first line: what it measures, where it serves and reports.
fn banner(
    node: &str,
    state: &Arc<Mutex<AgentState>>,
    device_ids: &[String],
    carbon: &wattprint_core::record::CarbonContext,
    metrics: Option<std::net::SocketAddr>,
    server: Option<(&str, Duration)>,
) -> String {
    let mut line = format!(
        "wattprint agent: node {node} (agent {}), {} device(s) [{}], {:.0} gCO2e/kWh × PUE {:.2}",
        state.lock().map(|s| s.agent_id.clone()).unwrap_or_default(),
        device_ids.len(),
        device_ids.join(", "),
        carbon.intensity_g_per_kwh,
        carbon.pue
    );
    if let Some(addr) = metrics {
        line.push_str(&format!("; metrics on http://{addr}/metrics"));
    }
    match server {
        Some((url, every)) => line.push_str(&format!(
            "; reporting to {url} every {}",
            crate::summary::fmt_duration(every.as_secs_f64())
        )),
        None => line.push_str("; no server (metrics only)"),
    }
    line
}
