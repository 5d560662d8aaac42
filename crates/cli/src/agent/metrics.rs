//! The agent's HTTP endpoint: `/metrics` (Prometheus, OpenMetrics text), `/status` (JSON: the
//! node's devices, the top consumers, the state of the reports) and `/` (a short index).
//!
//! Metric labels are bounded: `device` and `kind` (one series per device of the node), and
//! for the runs present on the node `run`, `job` and `scope` (see `run_metrics.rs`: finished
//! runs drop out); never process ids or command names (those are on `/status`).

use super::{AgentState, SharedState};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// The content type of `/metrics`.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug)]
struct AgentCollector(SharedState);

fn lock(s: &SharedState) -> std::sync::MutexGuard<'_, AgentState> {
    match s.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Collector for AgentCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let st = lock(&self.0);
        let per_device = |enc: &mut DescriptorEncoder,
                          name: &str,
                          help: &str,
                          ty: MetricType,
                          f: &dyn Fn(&super::DeviceState) -> f64|
         -> Result<(), std::fmt::Error> {
            let mut m = enc.encode_descriptor(name, help, None, ty)?;
            for d in &st.devices {
                let labels = [("device", d.id.as_str()), ("kind", d.kind.as_str())];
                let fam = m.encode_family(&labels)?;
                match ty {
                    MetricType::Counter => ConstCounter::new(f(d)).encode(fam)?,
                    _ => ConstGauge::new(f(d)).encode(fam)?,
                }
            }
            Ok(())
        };
        per_device(
            &mut enc,
            "wattprint_energy_joules",
            "Energy the device drew since the agent started, joules (measured or modelled: see wattprint doctor)",
            MetricType::Counter,
            &|d| d.joules,
        )?;
        per_device(
            &mut enc,
            "wattprint_power_watts",
            "Average power of the device over the latest sampling interval, watts",
            MetricType::Gauge,
            &|d| d.power_w,
        )?;
        per_device(
            &mut enc,
            "wattprint_emissions_grams",
            "Operational emissions of the device's energy since the agent started (energy x PUE x carbon intensity), grams CO2e",
            MetricType::Counter,
            &|d| d.grams,
        )?;
        let gauge = |enc: &mut DescriptorEncoder,
                     name: &str,
                     help: &str,
                     v: f64|
         -> Result<(), std::fmt::Error> {
            let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(v).encode(m)
        };
        gauge(
            &mut enc,
            "wattprint_carbon_intensity_grams_per_kwh",
            "Carbon intensity the agent values energy at, gCO2e/kWh",
            st.g_per_kwh,
        )?;
        gauge(
            &mut enc,
            "wattprint_pue",
            "Power usage effectiveness applied",
            st.pue,
        )?;
        gauge(
            &mut enc,
            "wattprint_runs_active",
            "wattprint runs with live processes on the node",
            st.runs_active as f64,
        )?;
        gauge(
            &mut enc,
            "wattprint_agent_pending_windows",
            "Hour windows whose figures the server has not confirmed yet",
            st.ledger.pending_windows() as f64,
        )?;
        super::run_metrics::encode(&mut enc, st.host_ledger.as_ref())?;
        let m = enc.encode_descriptor(
            "wattprint_agent_report_failures",
            "Reports to the server that failed (they are retried; nothing is lost)",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(st.report.failures).encode(m)?;
        let m = enc.encode_descriptor(
            "wattprint_agent_reports",
            "Reports the server confirmed",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(st.report.reports_ok).encode(m)?;
        Ok(())
    }
}

/// The registry of an agent: build info and the snapshot collector.
pub fn registry(state: SharedState) -> Registry {
    let mut r = Registry::default();
    r.register(
        "wattprint_build",
        "wattprint version",
        Info::new(vec![(
            "version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]),
    );
    r.register_collector(Box::new(AgentCollector(state)));
    r
}

/// Encode the registry in the OpenMetrics text format.
pub fn encode(r: &Registry) -> Result<String, std::fmt::Error> {
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, r)?;
    Ok(s)
}

/// The router of the agent's endpoint.
pub fn router(state: SharedState) -> axum::Router {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
    let reg = Arc::new(registry(Arc::clone(&state)));
    let st2 = Arc::clone(&state);
    axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let reg = Arc::clone(&reg);
                async move {
                    match encode(&reg) {
                        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
                        Err(_) => {
                            (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response()
                        }
                    }
                }
            }),
        )
        .route(
            "/status",
            get(move || {
                let st = Arc::clone(&st2);
                async move { axum::Json(lock(&st).status_json()) }
            }),
        )
        .route(
            "/",
            get(|| async {
                "wattprint agent: /metrics (Prometheus, OpenMetrics text), /status (JSON)\n"
            }),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: try /metrics or /status\n",
            )
        })
}
