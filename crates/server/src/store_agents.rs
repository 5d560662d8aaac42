//! Domain operations for node agents and policies, on top of [`Db`](crate::db::Db): the
//! organisation's and teams' run policies, and the cumulative energy node agents report.
//! Written once; every statement runs unchanged on SQLite and PostgreSQL.

use crate::db::{Cell, Stmt, Val};
use crate::store::{Scope, Store};
use anyhow::Result;
use serde::{Deserialize, Serialize};

/// `team_id` of an organisation's default policy.
pub const ORG_DEFAULT: i64 = 0;

/// Limits a policy puts on every run of a team (all optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Wall-clock cap of a run, seconds.
    pub max_duration_s: Option<f64>,
    /// IT energy budget of a run, kWh.
    pub budget_kwh_per_run: Option<f64>,
    /// Emissions budget of a run, kg CO2e.
    pub budget_kg_per_run: Option<f64>,
    /// `stop` or `warn`: what a reached budget does (the duration cap always stops).
    pub budget_action: Option<String>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.max_duration_s.is_none()
            && self.budget_kwh_per_run.is_none()
            && self.budget_kg_per_run.is_none()
            && self.budget_action.is_none()
    }

    /// The stricter of two policies, field by field: the lower limit; `stop` over `warn`.
    pub fn stricter(&self, other: &Policy) -> Policy {
        let min = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, None) => x,
            (None, y) => y,
        };
        let action = match (
            self.budget_action.as_deref(),
            other.budget_action.as_deref(),
        ) {
            (Some("stop"), _) | (_, Some("stop")) => Some("stop".to_string()),
            (Some(a), _) | (None, Some(a)) => Some(a.to_string()),
            (None, None) => None,
        };
        Policy {
            max_duration_s: min(self.max_duration_s, other.max_duration_s),
            budget_kwh_per_run: min(self.budget_kwh_per_run, other.budget_kwh_per_run),
            budget_kg_per_run: min(self.budget_kg_per_run, other.budget_kg_per_run),
            budget_action: action,
        }
    }
}

/// One device's cumulative figures in one window, as an agent reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEnergy {
    /// Start of the window, RFC 3339 UTC (normalised to millisecond precision).
    pub window_start: String,
    pub device_id: String,
    pub kind: String,
    pub joules: f64,
    pub emissions_g: f64,
}

/// Totals of one device of one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeDeviceTotal {
    pub device_id: String,
    pub kind: String,
    pub joules: f64,
    pub emissions_g: f64,
}

/// Totals of one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeTotal {
    pub team: String,
    pub node: String,
    pub joules: f64,
    pub kwh: f64,
    pub emissions_kg: f64,
    /// Distinct agent instances (restarts) that reported.
    pub agents: i64,
    pub first_window: String,
    pub last_window: String,
    pub last_update: String,
    pub devices: Vec<NodeDeviceTotal>,
    /// Part of the devices' energy no run on the node was charged (host ledger: idle time and
    /// process-scope runs' rest), joules; included in `joules`, never added to it. Absent
    /// when the node's agent reported none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unattributed_joules: Option<f64>,
}

/// Kind (and device id) under which agents report a node's unattributed energy.
pub const UNATTRIBUTED: &str = "unattributed";

/// Filters of `GET /nodes`.
#[derive(Debug, Clone, Default)]
pub struct NodeFilter {
    pub team: Option<String>,
    pub node: Option<String>,
    /// Windows starting at or after (normalised RFC 3339 text).
    pub since: Option<String>,
    /// Windows starting before.
    pub until: Option<String>,
    /// Only nodes after this (team, node), in that order (a page's cursor).
    pub after: Option<(String, String)>,
    /// At most this many nodes (0: no limit).
    pub limit: usize,
    /// Only nodes up to this (team, node) included (set by [`Store::node_totals_page`]).
    pub upto: Option<(String, String)>,
}

/// ` AND …` conditions of a node query (aliases `n` for node_energy, `t` for teams).
fn node_filter_sql(scope: &Scope, f: &NodeFilter, params: &mut Vec<Val>) -> String {
    params.push(scope.org_id.into());
    let mut filter = String::from(" AND n.org_id = ?");
    if let Some(t) = scope.team_id {
        filter.push_str(" AND n.team_id = ?");
        params.push(t.into());
    }
    if let Some(t) = &f.team {
        filter.push_str(" AND t.name = ?");
        params.push(t.into());
    }
    if let Some(n) = &f.node {
        filter.push_str(" AND n.node = ?");
        params.push(n.into());
    }
    if let Some(s) = &f.since {
        filter.push_str(" AND n.window_start >= ?");
        params.push(s.into());
    }
    if let Some(u) = &f.until {
        filter.push_str(" AND n.window_start < ?");
        params.push(u.into());
    }
    if let Some((team, node)) = &f.after {
        filter.push_str(" AND (t.name > ? OR (t.name = ? AND n.node > ?))");
        params.extend([team.into(), team.into(), node.into()]);
    }
    if let Some((team, node)) = &f.upto {
        filter.push_str(" AND (t.name < ? OR (t.name = ? AND n.node <= ?))");
        params.extend([team.into(), team.into(), node.into()]);
    }
    filter
}

/// Rows per multi-row insert (9 parameters each).
const NODE_CHUNK: usize = 500;

impl Store {
    // ---- policies ----

    /// The policy stored for the organisation's default (`team_id` [`ORG_DEFAULT`]) or a team.
    pub async fn policy(&self, org_id: i64, team_id: i64) -> Result<Option<(Policy, String)>> {
        let rows = self
            .db
            .query(
                "SELECT max_duration_s, budget_kwh_per_run, budget_kg_per_run, budget_action, updated_at \
                 FROM policies WHERE org_id = ? AND team_id = ?",
                vec![org_id.into(), team_id.into()],
            )
            .await?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let opt_f = |i: usize| -> Result<Option<f64>> {
            match r.0.get(i) {
                Some(Cell::Null) => Ok(None),
                _ => r.f64(i).map(Some),
            }
        };
        Ok(Some((
            Policy {
                max_duration_s: opt_f(0)?,
                budget_kwh_per_run: opt_f(1)?,
                budget_kg_per_run: opt_f(2)?,
                budget_action: r.opt_text(3)?,
            },
            r.text(4)?,
        )))
    }

    /// Replace (or, when empty, delete) the policy of the organisation or of a team.
    pub async fn set_policy(&self, org_id: i64, team_id: i64, p: &Policy) -> Result<()> {
        let stmt = if p.is_empty() {
            Stmt::new(
                "DELETE FROM policies WHERE org_id = ? AND team_id = ?",
                vec![org_id.into(), team_id.into()],
            )
        } else {
            Stmt::new(
                "INSERT INTO policies (org_id, team_id, max_duration_s, budget_kwh_per_run, \
                   budget_kg_per_run, budget_action, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (org_id, team_id) DO UPDATE SET \
                   max_duration_s = excluded.max_duration_s, \
                   budget_kwh_per_run = excluded.budget_kwh_per_run, \
                   budget_kg_per_run = excluded.budget_kg_per_run, \
                   budget_action = excluded.budget_action, updated_at = excluded.updated_at",
                vec![
                    org_id.into(),
                    team_id.into(),
                    p.max_duration_s.into(),
                    p.budget_kwh_per_run.into(),
                    p.budget_kg_per_run.into(),
                    p.budget_action.clone().into(),
                    crate::now_rfc3339().into(),
                ],
            )
        };
        self.db.transaction(vec![stmt]).await?;
        Ok(())
    }

    // ---- node energy ----

    /// Store an agent's cumulative figures; a stored value is only ever raised (a retry or an
    /// older report changes nothing). Returns how many rows were created or raised.
    pub async fn upsert_node_energy(
        &self,
        org_id: i64,
        team_id: i64,
        node: &str,
        agent: &str,
        entries: &[NodeEnergy],
    ) -> Result<usize> {
        // One row per key: the largest figures win (both databases refuse to touch a row twice
        // in one statement).
        let mut uniq: std::collections::BTreeMap<(String, String), NodeEnergy> = Default::default();
        for e in entries {
            let k = (e.window_start.clone(), e.device_id.clone());
            match uniq.get_mut(&k) {
                Some(x) => {
                    x.joules = x.joules.max(e.joules);
                    x.emissions_g = x.emissions_g.max(e.emissions_g);
                }
                None => {
                    uniq.insert(k, e.clone());
                }
            }
        }
        let all: Vec<NodeEnergy> = uniq.into_values().collect();
        let now = crate::now_rfc3339();
        let stmts: Vec<Stmt> = all
            .chunks(NODE_CHUNK)
            .map(|chunk| {
                let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let mut params = Vec::with_capacity(chunk.len() * 11);
                for e in chunk {
                    params.push(org_id.into());
                    params.push(team_id.into());
                    params.push(node.into());
                    params.push(agent.into());
                    params.push(e.window_start.clone().into());
                    params.push(e.window_start.get(..7).unwrap_or("").into());
                    params.push(e.device_id.clone().into());
                    params.push(e.kind.clone().into());
                    params.push(e.joules.into());
                    params.push(e.emissions_g.into());
                    params.push(now.clone().into());
                }
                Stmt::new(
                    format!(
                        "INSERT INTO node_energy (org_id, team_id, node, agent, window_start, month, \
                           device_id, kind, joules, emissions_g, updated_at) VALUES {values} \
                         ON CONFLICT (team_id, node, agent, window_start, device_id) DO UPDATE SET \
                           joules = excluded.joules, emissions_g = excluded.emissions_g, \
                           kind = excluded.kind, updated_at = excluded.updated_at \
                         WHERE excluded.joules >= node_energy.joules \
                           AND excluded.emissions_g >= node_energy.emissions_g \
                           AND (excluded.joules > node_energy.joules \
                                OR excluded.emissions_g > node_energy.emissions_g) \
                         RETURNING 1"
                    ),
                    params,
                )
            })
            .collect();
        if stmts.is_empty() {
            return Ok(0);
        }
        let res = self.db.transaction(stmts).await?;
        Ok(res.iter().map(|r| r.rows.len()).sum())
    }

    /// Node totals visible in `scope` (node energy belongs to a team: a project token sees its
    /// team's nodes), per node and device, by team then node; at most `f.limit` nodes after
    /// `f.after`, and whether more follow.
    pub async fn node_totals_page(
        &self,
        scope: &Scope,
        f: &NodeFilter,
    ) -> Result<(Vec<NodeTotal>, bool)> {
        let mut f = f.clone();
        let mut more = false;
        if f.limit > 0 {
            // The page's last node bounds the grouped query.
            let mut params: Vec<Val> = Vec::new();
            let filter = node_filter_sql(scope, &f, &mut params);
            params.push(
                i64::try_from(f.limit.saturating_add(1))
                    .unwrap_or(i64::MAX)
                    .into(),
            );
            let keys = self
                .db
                .query(
                    &format!(
                        "SELECT DISTINCT t.name, n.node FROM node_energy n JOIN teams t ON t.id = n.team_id \
                         WHERE 1 = 1{filter} ORDER BY t.name, n.node LIMIT ?"
                    ),
                    params,
                )
                .await?;
            if keys.len() > f.limit {
                more = true;
                let last = &keys[f.limit - 1];
                f.upto = Some((last.text(0)?, last.text(1)?));
            }
        }
        Ok((self.node_totals(scope, &f).await?, more))
    }

    /// Joules and grams over every node matching `f` (all pages).
    pub async fn node_grand_total(&self, scope: &Scope, f: &NodeFilter) -> Result<(f64, f64)> {
        let all = NodeFilter {
            after: None,
            upto: None,
            limit: 0,
            ..f.clone()
        };
        let mut params: Vec<Val> = Vec::new();
        let filter = node_filter_sql(scope, &all, &mut params);
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT COALESCE(SUM(n.joules), 0.0), COALESCE(SUM(n.emissions_g), 0.0) \
                     FROM node_energy n JOIN teams t ON t.id = n.team_id \
                     WHERE n.kind <> '{UNATTRIBUTED}'{filter}"
                ),
                params,
            )
            .await?;
        match rows.first() {
            Some(r) => Ok((r.f64(0)?, r.f64(1)?)),
            None => Ok((0.0, 0.0)),
        }
    }

    /// Node totals visible in `scope` (node energy belongs to a team: a project token sees its
    /// team's nodes), per node and device.
    pub async fn node_totals(&self, scope: &Scope, f: &NodeFilter) -> Result<Vec<NodeTotal>> {
        let mut params: Vec<Val> = Vec::new();
        let filter = node_filter_sql(scope, f, &mut params);
        let rows = self
            .db
            .query(
                &format!(
                    "SELECT t.name, n.node, n.device_id, MAX(n.kind), COALESCE(SUM(n.joules), 0.0), \
                       COALESCE(SUM(n.emissions_g), 0.0), COUNT(DISTINCT n.agent), \
                       MIN(n.window_start), MAX(n.window_start), MAX(n.updated_at) \
                     FROM node_energy n JOIN teams t ON t.id = n.team_id WHERE 1 = 1{filter} \
                     GROUP BY t.name, n.node, n.device_id ORDER BY t.name, n.node, n.device_id"
                ),
                params,
            )
            .await?;
        let mut out: Vec<NodeTotal> = Vec::new();
        for r in &rows {
            let team = r.text(0)?;
            let node = r.text(1)?;
            let dev = NodeDeviceTotal {
                device_id: r.text(2)?,
                kind: r.text(3)?,
                joules: r.f64(4)?,
                emissions_g: r.f64(5)?,
            };
            let agents = r.i64(6)?;
            let (first, last, upd) = (r.text(7)?, r.text(8)?, r.text(9)?);
            let same = out
                .last()
                .is_some_and(|n: &NodeTotal| n.team == team && n.node == node);
            if !same {
                out.push(NodeTotal {
                    team,
                    node,
                    joules: 0.0,
                    kwh: 0.0,
                    emissions_kg: 0.0,
                    agents: 0,
                    first_window: first.clone(),
                    last_window: last.clone(),
                    last_update: upd.clone(),
                    devices: Vec::new(),
                    unattributed_joules: None,
                });
            }
            if let Some(n) = out.last_mut() {
                if dev.kind == UNATTRIBUTED {
                    // Already in the devices' energy: shown beside it, never added.
                    *n.unattributed_joules.get_or_insert(0.0) += dev.joules;
                    continue;
                }
                n.joules += dev.joules;
                n.kwh = n.joules / 3.6e6;
                n.emissions_kg += dev.emissions_g / 1000.0;
                n.agents = n.agents.max(agents);
                if first < n.first_window {
                    n.first_window = first;
                }
                if last > n.last_window {
                    n.last_window = last;
                }
                if upd > n.last_update {
                    n.last_update = upd;
                }
                n.devices.push(dev);
            }
        }
        Ok(out)
    }
}
