//! The agent's HTTP endpoint: `/metrics` (Prometheus: OpenMetrics text to a client that asks
//! for it in `Accept`, as Prometheus does; the classic text format 0.0.4 otherwise), `/status`
//! (JSON: the node's devices, the top consumers, the state of the reports) and `/` (a short
//! index).
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

/// The content type of `/metrics` in OpenMetrics.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of `/metrics` in the classic Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header prefers OpenMetrics to the classic text format: it names
/// `application/openmetrics-text` with a quality at least that of `text/plain` (or of the
/// wildcards). No header: the classic format, which every Prometheus-text client reads.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let (mut om, mut text) = (0.0f64, 0.0f64);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f64>().ok())
            .filter(|q| q.is_finite())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        match media.as_str() {
            "application/openmetrics-text" => om = om.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    om > 0.0 && om >= text
}

/// The classic Prometheus text format (0.0.4) from OpenMetrics text: no `# EOF` or `# UNIT`,
/// counter families named after their `_total` samples, info families as gauges named after
/// their `_info` samples.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    // Family name -> (type, name in the classic format).
    let mut renamed: std::collections::HashMap<&str, (&str, String)> = Default::default();
    for l in openmetrics.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            if let Some((name, ty)) = rest.split_once(' ') {
                let classic = match ty {
                    "counter" => (ty, format!("{name}_total")),
                    "info" => ("gauge", format!("{name}_info")),
                    _ => (ty, name.to_string()),
                };
                renamed.insert(name, classic);
            }
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for l in openmetrics.lines() {
        if l == "# EOF" || l.starts_with("# UNIT ") {
            continue;
        }
        let meta = l
            .strip_prefix("# HELP ")
            .map(|r| ("HELP", r))
            .or_else(|| l.strip_prefix("# TYPE ").map(|r| ("TYPE", r)));
        match meta {
            Some((kind, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                match renamed.get(name) {
                    Some((ty, classic)) if kind == "TYPE" => {
                        out.push_str(&format!("# TYPE {classic} {ty}\n"))
                    }
                    Some((_, classic)) => out.push_str(&format!("# HELP {classic} {tail}\n")),
                    None => {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
            }
            None => {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

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
            get(move |headers: axum::http::HeaderMap| {
                let reg = Arc::clone(&reg);
                async move {
                    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
                    match encode(&reg) {
                        Ok(text) if wants_openmetrics(accept) => {
                            ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response()
                        }
                        Ok(text) => (
                            [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
                            to_prometheus_text(&text),
                        )
                            .into_response(),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_the_format() {
        // What Prometheus sends: OpenMetrics first.
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("text/plain;version=0.0.4")));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some(
            "text/plain;q=1,application/openmetrics-text;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
    }

    #[test]
    fn classic_text_renames_counters_and_info() {
        let om = "# HELP wattprint_build wattprint version\n# TYPE wattprint_build info\nwattprint_build_info{version=\"1\"} 1\n\
# HELP wattprint_energy_joules Energy\n# TYPE wattprint_energy_joules counter\n# UNIT wattprint_energy_joules joules\n\
wattprint_energy_joules_total{device=\"cpu\",kind=\"cpu\"} 12.5\n\
# HELP wattprint_pue PUE\n# TYPE wattprint_pue gauge\nwattprint_pue 1.2\n# EOF\n";
        let t = to_prometheus_text(om);
        assert!(t.contains("# TYPE wattprint_build_info gauge\n"), "{t}");
        assert!(
            t.contains("# HELP wattprint_build_info wattprint version\n"),
            "{t}"
        );
        assert!(
            t.contains("# TYPE wattprint_energy_joules_total counter\n"),
            "{t}"
        );
        assert!(
            t.contains("# HELP wattprint_energy_joules_total Energy\n"),
            "{t}"
        );
        assert!(t.contains("wattprint_energy_joules_total{device=\"cpu\",kind=\"cpu\"} 12.5\n"));
        assert!(
            t.contains("# TYPE wattprint_pue gauge\nwattprint_pue 1.2\n"),
            "{t}"
        );
        assert!(!t.contains("# EOF") && !t.contains("# UNIT"), "{t}");
        // Every sample line's metric name has a TYPE line of that exact name.
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(
                t.contains(&format!("# TYPE {name} ")),
                "{name} untyped in {t}"
            );
        }
    }
}
