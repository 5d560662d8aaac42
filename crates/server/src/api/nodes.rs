//! Node agents (`wattprint agent`): `POST /api/v1/nodes/{node}/energy` stores an agent's
//! cumulative energy per hour window and device, `GET /api/v1/nodes` gives totals per node.
//!
//! Idempotency: an agent sends cumulative figures for each (agent instance, window, device);
//! the server keeps the largest it has seen, so a retried, replayed or reordered report never
//! double counts, and a node's total is the sum over windows and agent instances (restarts).

use super::{check_ident, check_len, parse_time, query, typed, ApiError, JsonBody};
use crate::app::AppState;
use crate::auth::Auth;
use crate::store::Role;
use crate::store_agents::{NodeEnergy, NodeFilter, NodeTotal};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Most (window, device) entries in one report.
pub const MAX_ENTRIES: usize = 20_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFigures {
    pub device_id: String,
    pub kind: String,
    /// Energy the device drew in the window so far, joules (cumulative).
    pub joules: f64,
    /// Its operational emissions so far, grams CO2e (cumulative).
    #[serde(default)]
    pub emissions_g: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Start of the window, RFC 3339.
    pub start: String,
    pub devices: Vec<DeviceFigures>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyBody {
    /// The agent instance (a new id each time the agent starts: its counters start at zero).
    pub agent: String,
    pub windows: Vec<Window>,
}

/// `POST /api/v1/nodes/{node}/energy` (member): cumulative energy per window and device.
pub async fn post_energy(
    State(st): State<AppState>,
    auth: Auth,
    Path(node): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Member, "reporting node energy")?;
    let Some(team_id) = auth.team_id() else {
        return Err(ApiError::forbidden(
            "an organisation-wide token cannot report node energy; use a team token",
        ));
    };
    check_ident("node", &node, super::runs::MAX_NAME)?;
    let b: EnergyBody = typed(body, "node energy")?;
    check_ident("agent", &b.agent, super::runs::MAX_RUN_ID)?;
    check_len("windows", &b.windows, MAX_ENTRIES)?;
    let mut entries = Vec::new();
    let now = wattprint_core::validate::now_unix();
    for (i, w) in b.windows.iter().enumerate() {
        let t = parse_time("start", &w.start).map_err(|_| {
            ApiError::invalid(format!(
                "windows[{i}].start {:?} is not an RFC 3339 time",
                w.start
            ))
        })?;
        check_window_start(i, t.unix_timestamp(), now)?;
        let start = crate::format_rfc3339(t);
        for (j, d) in w.devices.iter().enumerate() {
            let p = format!("windows[{i}].devices[{j}]");
            check_ident(
                &format!("{p}.device_id"),
                &d.device_id,
                super::runs::MAX_NAME,
            )?;
            check_ident(&format!("{p}.kind"), &d.kind, 32)?;
            check_window_figures(&p, d.joules, d.emissions_g)?;
            entries.push(NodeEnergy {
                window_start: start.clone(),
                device_id: d.device_id.clone(),
                kind: d.kind.clone(),
                joules: d.joules,
                emissions_g: d.emissions_g,
            });
        }
    }
    check_len("windows[].devices", &entries, MAX_ENTRIES)?;
    let changed = st
        .store
        .upsert_node_energy(auth.token.org_id, team_id, &node, &b.agent, &entries)
        .await?;
    Ok(Json(json!({
        "node": node,
        "agent": b.agent,
        "entries": entries.len(),
        "changed": changed,
    })))
}

/// A window starts between 2000 and now (plus the clock-skew allowance), like a run.
fn check_window_start(i: usize, unix: i64, now: i64) -> Result<(), ApiError> {
    use wattprint_core::validate::{EARLIEST_UNIX, MAX_CLOCK_SKEW_S};
    if unix < EARLIEST_UNIX || unix > now.saturating_add(MAX_CLOCK_SKEW_S) {
        return Err(ApiError::invalid(format!(
            "windows[{i}].start is before 2000-01-01 or in the future (more than {} minutes of clock skew)",
            MAX_CLOCK_SKEW_S / 60
        )));
    }
    Ok(())
}

/// One device's figures of one hour window: at most the largest host power for an hour, and
/// that energy's facility emissions at the largest PUE and intensity (docs/server.md, Validation).
fn check_window_figures(p: &str, joules: f64, emissions_g: f64) -> Result<(), ApiError> {
    use wattprint_core::validate::{
        check_range, MAX_HOST_POWER_W, MAX_INTENSITY_G_PER_KWH, MAX_PUE,
    };
    let max_j = MAX_HOST_POWER_W * 3600.0;
    let max_g = max_j / wattprint_core::units::JOULES_PER_KWH * MAX_PUE * MAX_INTENSITY_G_PER_KWH;
    let to_api = |e: wattprint_core::validate::ValidationError| ApiError::invalid(e.to_string());
    check_range(&format!("{p}.joules"), joules, max_j, "100 kW for one hour").map_err(to_api)?;
    check_range(
        &format!("{p}.emissions_g"),
        emissions_g,
        max_g,
        "that energy at the largest PUE and intensity",
    )
    .map_err(to_api)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodesQuery {
    pub team: Option<String>,
    pub node: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// Most nodes per page of `GET /nodes`.
pub const MAX_NODES_PAGE: usize = 1000;

/// Nodes cursor: `n<team, hex>.<node, hex>`.
fn node_cursor(team: &str, node: &str) -> String {
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    format!("n{}.{}", hex(team), hex(node))
}

fn parse_node_cursor(c: &str) -> Option<(String, String)> {
    let unhex = |s: &str| -> Option<String> {
        if !s.len().is_multiple_of(2) || s.len() > 4096 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect();
        String::from_utf8(bytes?).ok()
    };
    let (a, b) = c.strip_prefix('n')?.split_once('.')?;
    Some((unhex(a)?, unhex(b)?))
}

/// The sum over every matching node (all pages).
#[derive(Serialize)]
pub struct NodesTotal {
    pub joules: f64,
    pub kwh: f64,
    pub emissions_kg: f64,
}

/// `GET /api/v1/nodes` answer.
#[derive(Serialize)]
pub struct NodeList {
    pub nodes: Vec<NodeTotal>,
    /// Over every matching node, whichever page this is.
    pub total: NodesTotal,
    /// Pass it as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/nodes`: energy and emissions per node and device, from the agents' reports, by
/// team then node, a page of nodes at a time (`limit`, default 100, `cursor`).
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    q: Result<Query<NodesQuery>, QueryRejection>,
) -> Result<Json<NodeList>, ApiError> {
    let q = query(q)?;
    let time = |name: &str, v: &Option<String>| -> Result<Option<String>, ApiError> {
        v.as_deref()
            .map(|s| parse_time(name, s).map(crate::format_rfc3339))
            .transpose()
    };
    let limit = super::runs::page_limit(q.limit, 100, MAX_NODES_PAGE)?;
    let after = super::runs::page_cursor(q.cursor.as_deref(), parse_node_cursor)?;
    let f = NodeFilter {
        team: q.team.clone(),
        node: q.node.clone(),
        since: time("since", &q.since)?,
        until: time("until", &q.until)?,
        after,
        limit,
        upto: None,
    };
    let _slot = st.expensive.enter(auth.token.id)?;
    let (nodes, more) = st.store.node_totals_page(&auth.scope(), &f).await?;
    let (joules, grams) = st.store.node_grand_total(&auth.scope(), &f).await?;
    let kg = grams / 1000.0;
    let next_cursor = if more {
        nodes.last().map(|n| node_cursor(&n.team, &n.node))
    } else {
        None
    };
    Ok(Json(NodeList {
        nodes,
        total: NodesTotal {
            joules,
            kwh: joules / 3.6e6,
            emissions_kg: kg,
        },
        next_cursor,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn node_cursors_round_trip() {
        for (t, n) in [("physics", "gpu-01"), ("é t", "a.b.c"), ("", "x")] {
            assert_eq!(
                parse_node_cursor(&node_cursor(t, n)),
                Some((t.to_string(), n.to_string()))
            );
        }
        assert_eq!(parse_node_cursor("nzz.00"), None);
        assert_eq!(parse_node_cursor("r1.2"), None);
    }
}
