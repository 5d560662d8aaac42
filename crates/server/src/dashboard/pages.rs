//! The pages: overview, team, project, user, run, lower-carbon regions, and the login form.
//! Server-side rendered HTML; every string from the database or the request is escaped
//! ([`esc`]) and every path segment percent-encoded ([`pct`]).

use super::charts::{self, HBar, Line, Segment, PALETTE};
use super::data::{self, is_waste, Agg, Derived, Lite};
use super::{
    assets, esc, fmt_dur, fmt_kg, fmt_kwh, internal, not_found, pct, DashState, Viewer, BASE,
};
use crate::store::{Budget, RunFilter, RunSummary, Scope};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use wattprint_core::record::RunRecord;

/// Runs per page in run tables.
pub const PAGE_SIZE: i64 = 50;
/// Months in a trend.
const TREND_MONTHS: i64 = 12;
/// Width of full-width and half-width charts (SVG units; CSS scales them to their box).
const FULL: f64 = 1100.0;
const HALF: f64 = 540.0;

fn this_month() -> String {
    crate::api::month_of(time::OffsetDateTime::now_utc())
}

fn team_href(team: &str) -> String {
    format!("{BASE}/teams/{}", pct(team))
}
fn project_href(team: &str, project: &str) -> String {
    format!("{BASE}/teams/{}/projects/{}", pct(team), pct(project))
}
fn run_href(team: &str, id: &str) -> String {
    format!("{BASE}/teams/{}/runs/{}", pct(team), pct(id))
}
fn user_href(user: &str) -> String {
    format!("{BASE}/users/{}", pct(user))
}
fn link(href: &str, text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(href), esc(text))
}

/// A whole HTML document: header with navigation and sign-out (when signed in), the body.
pub fn document(title: &str, viewer: Option<&Viewer>, active: &str, body: &str) -> Html<String> {
    let mut o = String::with_capacity(body.len() + assets::CSS.len() + 2048);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"same-origin\">\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>{} · wattprint</title>\n<style>{}</style>\n</head>\n<body>\n\
         <header class=\"top\"><a class=\"brand\" href=\"{BASE}/\">wattprint</a>",
        esc(title),
        assets::CSS
    );
    if let Some(v) = viewer {
        let t = &v.token;
        let nav: Vec<(String, String, &str)> = {
            let mut n = vec![(format!("{BASE}/"), "Overview".to_string(), "overview")];
            if let Some(team) = &t.team {
                n.push((team_href(team), format!("Team {team}"), "team"));
            }
            if let (Some(team), Some(p)) = (&t.team, &t.project) {
                n.push((project_href(team, p), format!("Project {p}"), "project"));
            }
            n.push((format!("{BASE}/models"), "Models".into(), "models"));
            n.push((
                format!("{BASE}/regions"),
                "Lower-carbon regions".into(),
                "regions",
            ));
            n
        };
        o.push_str("<nav>");
        for (href, text, key) in nav {
            let _ = write!(
                o,
                "<a href=\"{}\"{}>{}</a>",
                esc(&href),
                if key == active { " class=\"on\"" } else { "" },
                esc(&text)
            );
        }
        o.push_str("</nav>");
        let scope = match (&t.team, &t.project) {
            (Some(team), Some(p)) => format!("project {p} of team {team}"),
            (Some(team), None) => format!("team {team}"),
            _ => format!("organisation {}", t.org),
        };
        let _ = write!(
            o,
            "<span class=\"who\" id=\"who\">{} ({}…) · {} · {}</span>\
             <form method=\"post\" action=\"{BASE}/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Sign out</button></form>",
            esc(&t.name),
            esc(&t.prefix),
            esc(&scope),
            esc(t.role.as_str()),
            esc(&v.csrf)
        );
    }
    let _ = write!(
        o,
        "</header>\n<main>\n{body}\n</main>\n<footer>wattprint {} · energy is IT energy (before PUE) unless \
         marked facility; emissions are kg CO2e, operational and embodied. How each figure is \
         computed: docs/dashboard.md and docs/methodology.md.</footer>\n</body>\n</html>\n",
        esc(env!("CARGO_PKG_VERSION"))
    );
    Html(o)
}

/// The sign-in form.
pub fn login(nonce: &str, message: Option<&str>) -> Html<String> {
    let mut b = String::new();
    let _ = write!(
        b,
        "<form class=\"login\" id=\"login\" method=\"post\" action=\"{BASE}/login\">\
         <h1>Sign in</h1><p class=\"sub\">with a wattprint API token (<code>wpt_…</code>). It is \
         checked once and not stored in your browser: the session cookie holds only a random id.</p>"
    );
    if let Some(m) = message {
        let _ = write!(b, "<p class=\"err\" id=\"login-error\">{}</p>", esc(m));
    }
    let _ = write!(
        b,
        "<label for=\"token\">API token</label>\
         <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\" required>\
         <input type=\"hidden\" name=\"nonce\" value=\"{}\">\
         <button type=\"submit\">Sign in</button></form>",
        esc(nonce)
    );
    document("Sign in", None, "", &b)
}

// ---- pieces ----

fn kpis(o: &mut String, a: &Agg) {
    let waste_share = if a.emissions_kg > 0.0 {
        a.wasted_kg / a.emissions_kg * 100.0
    } else {
        0.0
    };
    let idle_share = if a.gpu_kwh > 0.0 {
        format!("{:.0} % of GPU energy", a.idle_gpu_kwh / a.gpu_kwh * 100.0)
    } else {
        "no GPU energy".into()
    };
    let _ = write!(
        o,
        "<div class=\"kpis\">\
         <div class=\"kpi\"><div class=\"v\" id=\"total-runs\" data-runs=\"{runs}\">{runs}</div><div class=\"k\">runs · {dur}</div></div>\
         <div class=\"kpi\"><div class=\"v\" id=\"total-energy\" data-kwh=\"{e}\">{es}</div><div class=\"k\">IT energy · facility {fs}</div></div>\
         <div class=\"kpi\"><div class=\"v\" id=\"total-emissions\" data-kg=\"{kg}\">{kgs}</div><div class=\"k\">emissions</div></div>\
         <div class=\"kpi{wbad}\"><div class=\"v\" id=\"waste-emissions\" data-kg=\"{wkg}\">{wkgs}</div><div class=\"k\">wasted: {wr} failed, killed or stopped runs ({wsh:.0} %)</div></div>\
         <div class=\"kpi\"><div class=\"v\" id=\"idle-gpu-energy\" data-kwh=\"{ig}\">{igs}</div><div class=\"k\">idle GPU energy · {ish}</div></div>\
         </div>",
        runs = a.runs,
        dur = esc(&fmt_dur(a.duration_s)),
        e = a.energy_kwh,
        es = esc(&fmt_kwh(a.energy_kwh)),
        fs = esc(&fmt_kwh(a.facility_kwh)),
        kg = a.emissions_kg,
        kgs = esc(&fmt_kg(a.emissions_kg)),
        wbad = if a.wasted_runs > 0 { " bad" } else { "" },
        wkg = a.wasted_kg,
        wkgs = esc(&fmt_kg(a.wasted_kg)),
        wr = a.wasted_runs,
        wsh = waste_share,
        ig = a.idle_gpu_kwh,
        igs = esc(&fmt_kwh(a.idle_gpu_kwh)),
        ish = esc(&idle_share),
    );
}

fn trend(o: &mut String, runs: &[(Lite, Derived)], by: &str, series: impl Fn(&Lite) -> String) {
    let months = data::trend_months(runs, &this_month(), TREND_MONTHS);
    let by_kg = |x: &Lite| x.emissions_kg;
    let kg = data::monthly_series(runs, &months, &series, by_kg, by_kg, 8);
    let kwh = data::monthly_series(runs, &months, &series, |x| x.energy_kwh, by_kg, 8);
    let _ = write!(
        o,
        "<div class=\"grid2\"><section class=\"box\" id=\"trend-emissions\">{}</section>\
         <section class=\"box\" id=\"trend-energy\">{}</section></div>",
        charts::month_bars(
            &format!("Emissions per month, by {by}"),
            &months,
            &kg,
            "kg CO2e",
            HALF
        ),
        charts::month_bars(
            &format!("IT energy per month, by {by}"),
            &months,
            &kwh,
            "kWh",
            HALF
        ),
    );
}

/// A table of groups with their totals: (name, link, sums).
fn groups_table(
    o: &mut String,
    id: &str,
    title: &str,
    head: &str,
    rows: &[(String, Option<String>, Agg)],
) {
    let _ = write!(
        o,
        "<section class=\"box\" id=\"{id}\"><h2>{}</h2><table><thead><tr><th>{}</th><th class=\"n\">runs</th>\
         <th class=\"n\">IT energy</th><th class=\"n\">emissions</th><th class=\"n\">wasted</th>\
         <th class=\"n\">idle GPU energy</th></tr></thead><tbody>",
        esc(title),
        esc(head)
    );
    for (name, href, a) in rows {
        let n = match href {
            Some(h) => link(h, name),
            None => esc(name),
        };
        let _ = write!(
            o,
            "<tr><td>{n}</td><td class=\"n\">{}</td><td class=\"n\" data-kwh=\"{}\">{}</td>\
             <td class=\"n\" data-kg=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            a.runs,
            a.energy_kwh,
            esc(&fmt_kwh(a.energy_kwh)),
            a.emissions_kg,
            esc(&fmt_kg(a.emissions_kg)),
            esc(&format!("{} runs · {}", a.wasted_runs, fmt_kg(a.wasted_kg))),
            esc(&fmt_kwh(a.idle_gpu_kwh)),
        );
    }
    if rows.is_empty() {
        o.push_str("<tr><td colspan=\"6\" class=\"muted\">no runs</td></tr>");
    }
    o.push_str("</tbody></table></section>");
}

/// The top projects (from `runs`) and the top `users` (label, kg; largest first).
fn top_emitters(
    o: &mut String,
    runs: &[(Lite, Derived)],
    users: &[(String, f64)],
    multi_team: bool,
) {
    let projects = data::group_by(runs, |x| (x.team.clone(), x.project.clone()));
    let bars = |rows: Vec<(String, f64)>| -> Vec<HBar> {
        rows.into_iter()
            .take(8)
            .map(|(label, v)| HBar {
                text: fmt_kg(v),
                label,
                value: v,
                red: false,
            })
            .collect()
    };
    let p = bars(
        projects
            .iter()
            .map(|((t, p), a)| {
                let label = if multi_team {
                    format!("{t} / {p}")
                } else {
                    p.clone()
                };
                (label, a.emissions_kg)
            })
            .collect(),
    );
    let u = bars(users.to_vec());
    let _ = write!(
        o,
        "<div class=\"grid2\"><section class=\"box\" id=\"top-projects\">{}<p class=\"muted\">",
        charts::hbars("Top emitters: projects", &p, HALF)
    );
    let mut first = true;
    for ((t, p), _) in projects.iter().take(8) {
        if !first {
            o.push_str(" · ");
        }
        first = false;
        o.push_str(&link(
            &project_href(t, p),
            &if multi_team {
                format!("{t} / {p}")
            } else {
                p.clone()
            },
        ));
    }
    let _ = write!(
        o,
        "</p></section><section class=\"box\" id=\"top-users\">{}<p class=\"muted\">",
        charts::hbars("Top emitters: users", &u, HALF)
    );
    let mut first = true;
    for (name, _) in users.iter().take(8) {
        if name == "(no user)" {
            continue;
        }
        if !first {
            o.push_str(" · ");
        }
        first = false;
        o.push_str(&link(&user_href(name), name));
    }
    o.push_str("</p></section></div>");
}

fn waste(o: &mut String, runs: &[(Lite, Derived)], a: &Agg) {
    let by_status = data::group_by(runs, |x| x.status.clone());
    let _ = write!(
        o,
        "<section class=\"box\" id=\"waste\"><h2>Waste</h2><table><thead><tr><th>runs by status</th>\
         <th class=\"n\">runs</th><th class=\"n\">IT energy</th><th class=\"n\">emissions</th></tr></thead><tbody>"
    );
    for (s, g) in &by_status {
        let _ = write!(
            o,
            "<tr{}><td><span class=\"badge {c}\">{c}</span></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            if is_waste(s) { " class=\"wasted\"" } else { "" },
            g.runs,
            esc(&fmt_kwh(g.energy_kwh)),
            esc(&fmt_kg(g.emissions_kg)),
            c = esc(s),
        );
    }
    if by_status.is_empty() {
        o.push_str("<tr><td colspan=\"4\" class=\"muted\">no runs</td></tr>");
    }
    let idle_share = if a.gpu_kwh > 0.0 {
        format!(
            " ({:.0} % of the {} the GPUs drew)",
            a.idle_gpu_kwh / a.gpu_kwh * 100.0,
            fmt_kwh(a.gpu_kwh)
        )
    } else {
        String::new()
    };
    let _ = write!(
        o,
        "</tbody></table><p>Failed, killed and stopped runs used <b>{}</b> and emitted <b>{}</b>. \
         Idle GPU energy: <b>{}</b>{}, emitting {}: what the GPUs held by these runs drew at idle, \
         paid whether or not they computed. Static (idle) energy of all devices: {}.</p>",
        esc(&fmt_kwh(a.wasted_kwh)),
        esc(&fmt_kg(a.wasted_kg)),
        esc(&fmt_kwh(a.idle_gpu_kwh)),
        esc(&idle_share),
        esc(&fmt_kg(a.idle_gpu_kg)),
        esc(&fmt_kwh(a.static_kwh)),
    );
    if a.gpus_without_idle > 0 {
        let _ = write!(
            o,
            "<p class=\"note\">{} GPU entries of the runs' records have no idle power, and their model has none \
             in the GPU table: their idle energy is not counted.</p>",
            a.gpus_without_idle
        );
    }
    if a.unreadable > 0 {
        let _ = write!(
            o,
            "<p class=\"note\">{} stored record(s) could not be read; they count in the totals but not in \
             the idle and static figures (see the server's log).</p>",
            a.unreadable
        );
    }
    o.push_str("</section>");
}

fn budgets(o: &mut String, list: &[Budget], month: &str) {
    let _ = write!(
        o,
        "<section class=\"box\" id=\"budgets\"><h2>Budgets, {}</h2>",
        esc(month)
    );
    if list.is_empty() {
        o.push_str("<p class=\"muted\">No budget set. An admin token sets one with <code>POST /api/v1/budgets</code>.</p></section>");
        return;
    }
    o.push_str(
        "<table><thead><tr><th>budget</th><th>applies to</th><th class=\"n\">per month</th>\
                <th class=\"n\">used</th><th class=\"n\">left</th><th></th></tr></thead><tbody>",
    );
    for b in list {
        let to = match &b.project {
            Some(p) => format!(
                "project {} of team {}",
                link(&project_href(&b.team, p), p),
                link(&team_href(&b.team), &b.team)
            ),
            None => format!("team {}", link(&team_href(&b.team), &b.team)),
        };
        let _ = write!(
            o,
            "<tr{}><td>{}</td><td>{to}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\" data-kg=\"{}\">{}</td><td>{}</td></tr>",
            if b.left_kg < 0.0 { " class=\"wasted\"" } else { "" },
            esc(&b.name),
            esc(&fmt_kg(b.kg_per_month)),
            esc(&fmt_kg(b.used_kg)),
            b.left_kg,
            esc(&fmt_kg(b.left_kg)),
            charts::meter(b.used_kg, b.kg_per_month),
        );
    }
    o.push_str("</tbody></table></section>");
}

fn regions_section(o: &mut String, a: &Agg, n: usize, what: &str) {
    let _ = write!(
        o,
        "<section class=\"box\" id=\"regions\"><h2>Lower-carbon regions</h2>"
    );
    if a.energy_kwh <= 0.0 {
        o.push_str("<p class=\"muted\">No energy recorded yet.</p></section>");
        return;
    }
    if !(a.energy_kwh.is_finite() && a.operational_kg.is_finite()) {
        // Only rows stored before the server checked magnitudes can sum past a double.
        o.push_str("<p class=\"muted\">These totals are beyond what real jobs reach: some runs were stored before the server checked records (docs/server.md, Validation); an admin should delete them.</p></section>");
        return;
    }
    let actual = a.operational_kg;
    let eff = actual / a.energy_kwh * 1000.0;
    let _ = write!(
        o,
        "<p>{} used <b>{}</b> of IT energy and emitted <b>{}</b> operationally (an effective {:.0} g CO2e per kWh \
         of IT energy, PUE included). The same energy in the cloud regions with the lowest grid intensity × PUE:</p>\
         <table><thead><tr><th>region</th><th class=\"n\">g CO2e/kWh × PUE</th><th class=\"n\">would have emitted</th>\
         <th class=\"n\">saving</th></tr></thead><tbody>",
        esc(what),
        esc(&fmt_kwh(a.energy_kwh)),
        esc(&fmt_kg(actual)),
        eff
    );
    for r in data::lower_carbon(a.energy_kwh, actual, n) {
        let pc = r
            .saved_percent
            .map(|p| format!(" ({p:.0} %)"))
            .unwrap_or_default();
        let _ = write!(
            o,
            "<tr><td><code>{}</code> {}</td><td class=\"n\">{:.0}</td><td class=\"n\">{}</td><td class=\"n\">{}{}</td></tr>",
            esc(&r.id),
            esc(&r.name),
            r.effective_g_per_kwh,
            esc(&fmt_kg(r.would_kg)),
            esc(&fmt_kg(r.saved_kg)),
            esc(&pc),
        );
    }
    let _ = write!(
        o,
        "</tbody></table><p class=\"muted\">Operational emissions only: embodied emissions ({}) do not depend on where \
         the energy is drawn. Factors: <code>wattprint regions</code> (grid intensity and PUE per region, with sources).</p></section>",
        esc(&a.embodied_text(fmt_kg))
    );
}

fn when(s: &str) -> String {
    if s.len() >= 16 && s.as_bytes()[10] == b'T' {
        format!("{} {}", &s[..10], &s[11..16])
    } else {
        s.to_string()
    }
}

fn runs_table(o: &mut String, id: &str, title: &str, runs: &[RunSummary], show_team: bool) {
    let _ = write!(
        o,
        "<section class=\"box\" id=\"{id}\"><h2>{}</h2><table class=\"runs\"><thead><tr><th>run</th>{}<th>project</th>\
         <th>user</th><th>status</th><th>started (UTC)</th><th class=\"n\">duration</th><th class=\"n\">IT energy</th>\
         <th class=\"n\">emissions</th></tr></thead><tbody>",
        esc(title),
        if show_team { "<th>team</th>" } else { "" }
    );
    for r in runs {
        let team_cell = if show_team {
            format!("<td>{}</td>", link(&team_href(&r.team), &r.team))
        } else {
            String::new()
        };
        let user = match &r.user {
            Some(u) => link(&user_href(u), u),
            None => "<span class=\"muted\">–</span>".into(),
        };
        let _ = write!(
            o,
            "<tr{}><td>{}</td>{team_cell}<td>{}</td><td>{user}</td><td><span class=\"badge {s}\">{s}</span></td>\
             <td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            if is_waste(&r.status) { " class=\"wasted\"" } else { "" },
            link(&run_href(&r.team, &r.run_id), &r.run_id),
            link(&project_href(&r.team, &r.project), &r.project),
            esc(&when(&r.started_at)),
            esc(&fmt_dur(r.duration_s)),
            esc(&fmt_kwh(r.energy_kwh)),
            esc(&fmt_kg(r.emissions_kg)),
            s = esc(&r.status),
        );
    }
    if runs.is_empty() {
        o.push_str("<tr><td colspan=\"9\" class=\"muted\">no runs</td></tr>");
    }
    o.push_str("</tbody></table>");
}

fn pager(o: &mut String, base: &str, page: i64, more: bool) {
    o.push_str("<div class=\"pager\">");
    if page > 1 {
        let _ = write!(o, "<a href=\"{}?page={}\">← newer</a>", esc(base), page - 1);
    }
    if more {
        let _ = write!(o, "<a href=\"{}?page={}\">older →</a>", esc(base), page + 1);
    }
    o.push_str("</div></section>");
}

fn empty_note(o: &mut String, a: &Agg) {
    if a.runs == 0 {
        o.push_str(
            "<p class=\"note\">No runs visible to this token yet. Runs arrive with <code>wattprint run --server URL</code> \
             or <code>POST /api/v1/runs</code>.</p>",
        );
    }
}

// ---- access ----

/// The team's id when the viewer may see it (else `None`: answered 404 like a missing team).
async fn visible_team(st: &DashState, v: &Viewer, team: &str) -> anyhow::Result<Option<i64>> {
    let Some(tid) = st.app.store.team_id(v.token.org_id, team).await? else {
        return Ok(None);
    };
    Ok(match v.token.team_id {
        Some(own) if own != tid => None,
        _ => Some(tid),
    })
}

/// The viewer's scope narrowed to one of its teams (never wider than the token's).
fn narrowed(v: &Viewer, team_id: i64) -> Scope {
    let s = v.scope();
    Scope {
        org_id: s.org_id,
        team_id: Some(team_id),
        project_id: s.project_id,
    }
}

#[derive(serde::Deserialize, Default)]
pub struct PageQuery {
    page: Option<i64>,
    team: Option<String>,
}

fn page_of(q: &Result<Query<PageQuery>, QueryRejection>) -> i64 {
    q.as_ref()
        .ok()
        .and_then(|q| q.page)
        .unwrap_or(1)
        .clamp(1, 1_000_000)
}

macro_rules! tryp {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return internal(e.into()),
        }
    };
}

// ---- handlers ----

/// `/dashboard/`: everything the token may see.
pub async fn overview(State(st): State<DashState>, v: Viewer) -> Response {
    let f = RunFilter::new(v.scope());
    let data::Overview {
        groups: runs,
        top_users,
    } = tryp!(data::overview(&st, &f).await);
    let a = Agg::of(&runs);
    let month = this_month();
    let budget_list = tryp!(st.app.store.list_budgets(&v.scope(), &month).await);
    let t = &v.token;
    let multi_team = t.team_id.is_none();
    let (title, sub) = match (&t.team, &t.project) {
        (Some(team), Some(p)) => (
            format!("Project {p}"),
            format!("team {team}, organisation {}", t.org),
        ),
        (Some(team), None) => (format!("Team {team}"), format!("organisation {}", t.org)),
        _ => (format!("Organisation {}", t.org), "all teams".to_string()),
    };
    let mut o = String::new();
    let _ = write!(
        o,
        "<h1>{}</h1><p class=\"sub\">Overview: {} · this month is {}</p>",
        esc(&title),
        esc(&sub),
        esc(&month)
    );
    empty_note(&mut o, &a);
    kpis(&mut o, &a);
    if multi_team {
        trend(&mut o, &runs, "team", |x| x.team.clone());
        let teams: Vec<_> = data::group_by(&runs, |x| x.team.clone())
            .into_iter()
            .map(|(t, a)| (t.clone(), Some(team_href(&t)), a))
            .collect();
        groups_table(&mut o, "teams", "Teams", "team", &teams);
    } else {
        trend(&mut o, &runs, "project", |x| x.project.clone());
    }
    top_emitters(&mut o, &runs, &top_users, multi_team);
    budgets(&mut o, &budget_list, &month);
    waste(&mut o, &runs, &a);
    regions_section(&mut o, &a, 5, "These runs");
    document(&title, Some(&v), "overview", &o).into_response()
}

/// `/dashboard/teams/{team}`.
pub async fn team(State(st): State<DashState>, v: Viewer, Path(team): Path<String>) -> Response {
    let Some(tid) = tryp!(visible_team(&st, &v, &team).await) else {
        return not_found();
    };
    let mut f = RunFilter::new(narrowed(&v, tid));
    f.team = Some(team.clone());
    let runs = tryp!(data::scan(&st, &f).await);
    let a = Agg::of(&runs);
    let month = this_month();
    let budget_list: Vec<Budget> = tryp!(st.app.store.list_budgets(&v.scope(), &month).await)
        .into_iter()
        .filter(|b| b.team == team)
        .collect();
    let recent = tryp!(st.app.store.list_runs(&f, 15, 0).await);
    let mut o = String::new();
    let _ = write!(
        o,
        "<h1 id=\"page-title\">Team {}</h1><p class=\"sub\">organisation {} · this month is {}</p>",
        esc(&team),
        esc(&v.token.org),
        esc(&month)
    );
    empty_note(&mut o, &a);
    kpis(&mut o, &a);
    trend(&mut o, &runs, "project", |x| x.project.clone());
    let top_users = data::top_users_of(&runs, data::TOP_USERS);
    top_emitters(&mut o, &runs, &top_users, false);
    let projects: Vec<_> = data::group_by(&runs, |x| x.project.clone())
        .into_iter()
        .map(|(p, a)| (p.clone(), Some(project_href(&team, &p)), a))
        .collect();
    let users: Vec<_> = data::group_by(&runs, |x| x.user.clone())
        .into_iter()
        .map(|(u, a)| match u {
            Some(u) => (u.clone(), Some(user_href(&u)), a),
            None => ("(no user)".to_string(), None, a),
        })
        .collect();
    groups_table(&mut o, "projects", "Projects", "project", &projects);
    groups_table(&mut o, "users", "Users", "user", &users);
    budgets(&mut o, &budget_list, &month);
    waste(&mut o, &runs, &a);
    runs_table(&mut o, "recent", "Latest runs", &recent, false);
    o.push_str("</section>");
    regions_section(&mut o, &a, 5, &format!("Team {team}"));
    document(&format!("Team {team}"), Some(&v), "team", &o).into_response()
}

/// `/dashboard/teams/{team}/projects/{project}`: its runs, newest first, paged.
pub async fn project(
    State(st): State<DashState>,
    v: Viewer,
    Path((team, project)): Path<(String, String)>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let Some(tid) = tryp!(visible_team(&st, &v, &team).await) else {
        return not_found();
    };
    let Some(pid) = tryp!(st.app.store.project_id(tid, &project).await) else {
        return not_found();
    };
    if v.token.project_id.is_some_and(|own| own != pid) {
        return not_found();
    }
    let mut f = RunFilter::new(narrowed(&v, tid));
    f.team = Some(team.clone());
    f.project = Some(project.clone());
    let runs = tryp!(data::scan(&st, &f).await);
    let a = Agg::of(&runs);
    let page = page_of(&q);
    let mut list = tryp!(
        st.app
            .store
            .list_runs(&f, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
            .await
    );
    let more = list.len() as i64 > PAGE_SIZE;
    list.truncate(PAGE_SIZE as usize);
    let month = this_month();
    let budget_list: Vec<Budget> = tryp!(st.app.store.list_budgets(&v.scope(), &month).await)
        .into_iter()
        .filter(|b| b.team == team && b.project.as_ref().is_none_or(|p| *p == project))
        .collect();
    let mut o = String::new();
    let _ = write!(
        o,
        "<h1 id=\"page-title\">Project {}</h1><p class=\"sub\">team {}</p>",
        esc(&project),
        link(&team_href(&team), &team)
    );
    empty_note(&mut o, &a);
    kpis(&mut o, &a);
    trend(&mut o, &runs, "user", |x| {
        x.user.clone().unwrap_or_else(|| "(no user)".into())
    });
    budgets(&mut o, &budget_list, &month);
    waste(&mut o, &runs, &a);
    runs_table(&mut o, "runs", &format!("Runs (page {page})"), &list, false);
    pager(&mut o, &project_href(&team, &project), page, more);
    regions_section(&mut o, &a, 5, &format!("Project {project}"));
    document(&format!("Project {project}"), Some(&v), "project", &o).into_response()
}

/// `/dashboard/users/{user}`: the user's runs that the token may see (404 when none).
pub async fn user(
    State(st): State<DashState>,
    v: Viewer,
    Path(user): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let mut f = RunFilter::new(v.scope());
    f.user = Some(user.clone());
    let runs = tryp!(data::scan(&st, &f).await);
    if runs.is_empty() {
        return not_found();
    }
    let a = Agg::of(&runs);
    let page = page_of(&q);
    let mut list = tryp!(
        st.app
            .store
            .list_runs(&f, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
            .await
    );
    let more = list.len() as i64 > PAGE_SIZE;
    list.truncate(PAGE_SIZE as usize);
    let multi_team = v.token.team_id.is_none();
    let mut o = String::new();
    let _ = write!(
        o,
        "<h1 id=\"page-title\">User {}</h1><p class=\"sub\">runs visible to this token</p>",
        esc(&user)
    );
    kpis(&mut o, &a);
    trend(&mut o, &runs, "project", |x| x.project.clone());
    let projects: Vec<_> = data::group_by(&runs, |x| (x.team.clone(), x.project.clone()))
        .into_iter()
        .map(|((t, p), a)| (format!("{t} / {p}"), Some(project_href(&t, &p)), a))
        .collect();
    groups_table(&mut o, "projects", "Projects", "team / project", &projects);
    runs_table(
        &mut o,
        "runs",
        &format!("Runs (page {page})"),
        &list,
        multi_team,
    );
    pager(&mut o, &user_href(&user), page, more);
    document(&format!("User {user}"), Some(&v), "user", &o).into_response()
}

/// Power per device from samples (W against seconds since start), at most `max` points each
/// (energy-preserving: each point is a bucket's energy over its duration).
fn power_lines(samples: &[crate::store::Sample], max: usize) -> Vec<Line> {
    let mut by: BTreeMap<&str, Vec<&crate::store::Sample>> = BTreeMap::new();
    for s in samples {
        by.entry(s.device_id.as_str()).or_default().push(s);
    }
    by.into_iter()
        .map(|(dev, ss)| {
            let per = ss.len().div_ceil(max.max(1)).max(1);
            let points = ss
                .chunks(per)
                .filter_map(|c| {
                    let e: f64 = c.iter().map(|s| s.energy_j).sum();
                    let dt: f64 = c.iter().map(|s| (s.t1 - s.t0).max(0.0)).sum();
                    let mid = (c[0].t0 + c[c.len() - 1].t1) / 2.0;
                    (dt > 0.0).then(|| (mid, e / dt))
                })
                .collect();
            Line {
                name: dev.to_string(),
                points,
            }
        })
        .collect()
}

/// Cumulative energy of all devices (kWh against seconds since start).
fn cumulative_line(samples: &[crate::store::Sample], max: usize) -> Line {
    let mut ends: Vec<(f64, f64)> = samples.iter().map(|s| (s.t1, s.energy_j)).collect();
    ends.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut acc = 0.0;
    let mut pts: Vec<(f64, f64)> = Vec::with_capacity(ends.len() + 1);
    pts.push((0.0, 0.0));
    for (t, e) in ends {
        acc += e;
        match pts.last_mut() {
            Some(last) if last.0 == t => last.1 = acc / 3.6e6,
            _ => pts.push((t, acc / 3.6e6)),
        }
    }
    let step = pts.len().div_ceil(max.max(1)).max(1);
    let n = pts.len();
    let points = pts
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i == n - 1)
        .map(|(_, p)| p)
        .collect();
    Line {
        name: "all devices".into(),
        points,
    }
}

/// Most samples a run page reads for its charts (longer runs are merged into fewer, longer
/// samples: [`crate::store::Store::samples_for_chart`]).
const CHART_SAMPLES: usize = 20_000;

/// `/dashboard/teams/{team}/runs/{id}`: one run.
pub async fn run(
    State(st): State<DashState>,
    v: Viewer,
    Path((team, id)): Path<(String, String)>,
) -> Response {
    let Some(tid) = tryp!(visible_team(&st, &v, &team).await) else {
        return not_found();
    };
    let scope = narrowed(&v, tid);
    let Some((r, record)) = tryp!(st.app.store.get_run(&scope, &id).await) else {
        return not_found();
    };
    let samples = tryp!(
        st.app
            .store
            .samples_for_chart(&scope, &id, CHART_SAMPLES)
            .await
    )
    .unwrap_or_default();
    let rec: Option<RunRecord> = serde_json::from_str(&record).ok();
    let mut o = String::new();
    let user = match &r.user {
        Some(u) => format!(" · user {}", link(&user_href(u), u)),
        None => String::new(),
    };
    let _ = write!(
        o,
        "<h1 id=\"page-title\">Run <code>{}</code></h1><p class=\"sub\">project {} · team {}{user} · host <code>{}</code> · \
         <span class=\"badge {s}\">{s}</span> · started {} UTC{} · {} · {} upload(s)</p>",
        esc(&r.run_id),
        link(&project_href(&r.team, &r.project), &r.project),
        link(&team_href(&r.team), &r.team),
        esc(&r.hostname),
        esc(&when(&r.started_at)),
        r.ended_at
            .as_ref()
            .map(|e| format!(", ended {} UTC", esc(&when(e))))
            .unwrap_or_default(),
        esc(&fmt_dur(r.duration_s)),
        r.checkpoints,
        s = esc(&r.status),
    );
    let Some(rec) = rec else {
        o.push_str("<p class=\"err\">The stored record of this run cannot be read by this version of wattprint; \
                     its totals are above. The record is available from <code>GET /api/v1/runs/{id}</code>.</p>");
        return document(&format!("Run {}", r.run_id), Some(&v), "", &o).into_response();
    };
    let e = &rec.energy_kwh;
    let m = &rec.emissions_kg;
    let _ = write!(
        o,
        "<div class=\"kpis\">\
         <div class=\"kpi\"><div class=\"v\" id=\"run-energy\" data-kwh=\"{}\">{}</div><div class=\"k\">IT energy · facility {}</div></div>\
         <div class=\"kpi\"><div class=\"v\" id=\"run-emissions\" data-kg=\"{}\">{}</div><div class=\"k\">emissions · embodied {}</div></div>\
         <div class=\"kpi\"><div class=\"v\">{:.0} g/kWh</div><div class=\"k\">carbon intensity · {}</div></div>\
         <div class=\"kpi\"><div class=\"v\">{:.2}</div><div class=\"k\">PUE</div></div></div>",
        r.energy_kwh,
        esc(&fmt_kwh(r.energy_kwh)),
        esc(&fmt_kwh(r.facility_kwh)),
        r.emissions_kg,
        esc(&fmt_kg(r.emissions_kg)),
        esc(&embodied_text(m)),
        rec.carbon_intensity.g_per_kwh,
        esc(&rec.location.name),
        rec.pue,
    );
    if !rec.command.is_empty() || !rec.tags.is_empty() {
        o.push_str("<section class=\"box\" id=\"what\"><h2>Job</h2>");
        if !rec.command.is_empty() {
            let _ = write!(
                o,
                "<p>Command: <code>{}</code></p>",
                esc(&rec.command.join(" "))
            );
        }
        if !rec.tags.is_empty() {
            o.push_str("<p>Tags: ");
            for (k, val) in &rec.tags {
                let _ = write!(o, "<code>{}={}</code> ", esc(k), esc(val));
            }
            o.push_str("</p>");
        }
        o.push_str("</section>");
    }
    let power = power_lines(&samples, 600);
    let cumulative = cumulative_line(&samples, 600);
    let _ = write!(
        o,
        "<div class=\"grid2\"><section class=\"box\" id=\"power\">{}</section><section class=\"box\" id=\"cumulative\">{}</section></div>",
        charts::line_chart("Power per device (stored samples)", &power, "W", HALF),
        charts::line_chart(
            "Cumulative energy charged to the run",
            if samples.is_empty() { &[] } else { std::slice::from_ref(&cumulative) },
            "kWh",
            HALF
        ),
    );
    let seg = |label: &str, value: f64, color: &'static str, text: String| Segment {
        label: label.into(),
        value,
        color,
        text,
    };
    let rows = vec![
        (
            "energy".to_string(),
            vec![
                seg("dynamic", e.dynamic.0, PALETTE[0], fmt_kwh(e.dynamic.0)),
                seg(
                    "static (idle)",
                    e.static_.0,
                    PALETTE[4],
                    fmt_kwh(e.static_.0),
                ),
                seg(
                    "infrastructure",
                    e.infrastructure.0,
                    PALETTE[7],
                    fmt_kwh(e.infrastructure.0),
                ),
            ],
        ),
        (
            "emissions".to_string(),
            vec![
                seg("dynamic", m.dynamic, PALETTE[0], fmt_kg(m.dynamic)),
                seg("static (idle)", m.static_, PALETTE[4], fmt_kg(m.static_)),
                seg(
                    "infrastructure",
                    m.infrastructure,
                    PALETTE[7],
                    fmt_kg(m.infrastructure),
                ),
                seg("embodied", m.embodied, PALETTE[5], embodied_text(m)),
            ],
        ),
    ];
    let _ = write!(
        o,
        "<section class=\"box\" id=\"breakdown\">{}<table><thead><tr><th></th><th class=\"n\">dynamic</th>\
         <th class=\"n\">static (idle)</th><th class=\"n\">infrastructure</th><th class=\"n\">embodied</th><th class=\"n\">total</th></tr></thead><tbody>\
         <tr><td>energy</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">–</td><td class=\"n\">{} (facility)</td></tr>\
         <tr><td>emissions</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\
         </tbody></table><p class=\"muted\">By component: CPU {}, GPU {}, RAM {}, other {}.</p></section>",
        charts::stacked_bars("Breakdown", &rows, FULL),
        esc(&fmt_kwh(e.dynamic.0)),
        esc(&fmt_kwh(e.static_.0)),
        esc(&fmt_kwh(e.infrastructure.0)),
        esc(&fmt_kwh(e.facility.0)),
        esc(&fmt_kg(m.dynamic)),
        esc(&fmt_kg(m.static_)),
        esc(&fmt_kg(m.infrastructure)),
        esc(&embodied_text(m)),
        esc(&fmt_kg(m.total)),
        esc(&fmt_kwh(e.cpu.0)),
        esc(&fmt_kwh(e.gpu.0)),
        esc(&fmt_kwh(e.ram.0)),
        esc(&fmt_kwh(e.other.0)),
    );
    o.push_str(
        "<section class=\"box\" id=\"devices\"><h2>Devices and methods</h2><table><thead><tr><th>device</th><th>kind</th>\
         <th>method</th><th>name</th><th class=\"n\">energy</th><th class=\"n\">average power</th><th class=\"n\">idle power</th></tr></thead><tbody>",
    );
    for d in &rec.devices {
        let _ = write!(
            o,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1} W</td><td class=\"n\">{}</td></tr>",
            esc(&d.id),
            esc(d.kind.as_str()),
            esc(d.method.as_str()),
            esc(&d.name),
            esc(&fmt_kwh(d.energy_kwh)),
            d.avg_power_w,
            d.idle_power_w
                .map(|w| format!("{w:.1} W"))
                .unwrap_or_else(|| "–".into()),
        );
    }
    let _ = write!(
        o,
        "</tbody></table><p>Methods: CPU <code>{}</code>, GPU <code>{}</code>, RAM <code>{}</code> · scope <code>{}</code> · \
         sampled every {} s ({} reads, {} skipped).</p></section>",
        esc(&rec.methods.cpu),
        esc(&rec.methods.gpu),
        esc(&rec.methods.ram),
        esc(&rec.scope),
        rec.interval_s,
        rec.samples,
        rec.skipped_ticks,
    );
    let _ = write!(
        o,
        "<section class=\"box\" id=\"assumptions\"><h2>Assumptions</h2><p>Carbon intensity {:.1} g CO2e/kWh from {}{}; \
         location <code>{}</code> ({}){}; factors version <code>{}</code>; measured by wattprint {}.</p>\
         <table><thead><tr><th>factor</th><th class=\"n\">value</th><th>unit</th><th>source</th></tr></thead><tbody>",
        rec.carbon_intensity.g_per_kwh,
        esc(&rec.carbon_intensity.source),
        rec.carbon_intensity
            .resolution
            .as_ref()
            .map(|x| format!(" ({})", esc(x)))
            .unwrap_or_default(),
        esc(&rec.location.code),
        esc(&rec.location.name),
        if rec.location.known { "" } else { ", not known to the factor tables" },
        esc(&rec.factors_version),
        esc(&rec.wattprint_version),
    );
    for a in &rec.assumptions {
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.name),
            esc(&format!("{}", a.value)),
            esc(&a.unit),
            esc(&a.source)
        );
    }
    o.push_str("</tbody></table>");
    if !rec.warnings.is_empty() {
        o.push_str("<div class=\"note\"><b>Warnings</b><ul>");
        for w in &rec.warnings {
            let _ = write!(o, "<li>{}</li>", esc(w));
        }
        o.push_str("</ul></div>");
    }
    o.push_str("</section>");
    let a = Agg {
        runs: 1,
        energy_kwh: r.energy_kwh,
        operational_kg: m.operational,
        embodied_kg: m.embodied,
        embodied_not_counted: i64::from(!m.embodied_counted),
        ..Agg::default()
    };
    regions_section(&mut o, &a, 5, "This run");
    document(&format!("Run {}", r.run_id), Some(&v), "", &o).into_response()
}

/// `/dashboard/regions[?team=T]`: the lower-carbon comparison for everything visible (or a team).
pub async fn regions(
    State(st): State<DashState>,
    v: Viewer,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let team = q.ok().and_then(|q| q.0.team);
    let mut f = RunFilter::new(v.scope());
    let what = match &team {
        Some(t) => {
            let Some(tid) = tryp!(visible_team(&st, &v, t).await) else {
                return not_found();
            };
            f = RunFilter::new(narrowed(&v, tid));
            f.team = Some(t.clone());
            format!("Team {t}")
        }
        None => "The runs visible to this token".to_string(),
    };
    let runs = tryp!(data::scan(&st, &f).await);
    let a = Agg::of(&runs);
    let mut o = String::new();
    let _ = write!(
        o,
        "<h1 id=\"page-title\">Lower-carbon regions</h1><p class=\"sub\">{}: where the same IT energy would have emitted less</p>",
        esc(&what)
    );
    regions_section(&mut o, &a, 15, &what);
    let teams = data::group_by(&runs, |x| x.team.clone());
    if team.is_none() && teams.len() > 1 {
        o.push_str("<p>Per team: ");
        for (t, _) in &teams {
            let _ = write!(
                o,
                "<a href=\"{BASE}/regions?team={}\">{}</a> ",
                esc(&pct(t)),
                esc(t)
            );
        }
        o.push_str("</p>");
    }
    document("Lower-carbon regions", Some(&v), "regions", &o).into_response()
}

/// A run's embodied emissions, or `not counted` (never a zero for what was not counted).
fn embodied_text(m: &wattprint_core::accounting::EmissionsKg) -> String {
    m.embodied_kg()
        .map(fmt_kg)
        .unwrap_or_else(|| "not counted".to_string())
}
