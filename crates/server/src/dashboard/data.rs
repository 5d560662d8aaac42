//! What the pages show, read through the store with the token's scope from the rollups
//! ([`crate::db::rollup_schema`]): one row per (team, project, user, status, month) group, with
//! the sums of the runs' summary columns and of the figures derived from their records at
//! ingest (idle GPU energy, static energy, operational and embodied emissions). A page costs
//! the same at 10 million runs as at a thousand.
//! The overview reads those groups without the user dimension, grouped in SQL, and its top
//! users by their own query ([`overview`]).

use super::DashState;
use crate::store::RunFilter;
use anyhow::Result;
use std::collections::{BTreeMap, HashMap};

/// Statuses counted as waste: the run's energy bought no result.
pub const WASTE_STATUSES: &[&str] = &["failed", "killed", "stopped_by_budget", "stopped_by_cap"];

pub fn is_waste(status: &str) -> bool {
    WASTE_STATUSES.contains(&status)
}

/// Figures derived from the records of a group of runs (summed).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Derived {
    /// Energy charged to the runs' GPUs, kWh.
    pub gpu_kwh: f64,
    /// Idle (static) energy of their GPUs, kWh (see [`crate::derived::derive`]).
    pub idle_gpu_kwh: f64,
    /// Its emissions, kg CO2e.
    pub idle_gpu_kg: f64,
    /// Static energy of all devices, kWh.
    pub static_kwh: f64,
    pub operational_kg: f64,
    /// Embodied emissions of the runs that counted them.
    pub embodied_kg: f64,
    /// Runs that did not count embodied emissions.
    pub embodied_not_counted: i64,
    /// GPUs with no idle power, neither in the record nor in the GPU table.
    pub gpus_without_idle: i64,
    /// Runs whose record could not be read (counted, and left out of these figures).
    pub unreadable: i64,
}

/// One group of visible runs (same team, project, user, status and month) and its sums.
#[derive(Debug, Clone)]
pub struct Lite {
    pub team: String,
    pub project: String,
    pub user: Option<String>,
    pub status: String,
    pub month: String,
    /// How many runs the group holds.
    pub runs: i64,
    pub duration_s: f64,
    pub energy_kwh: f64,
    pub facility_kwh: f64,
    pub emissions_kg: f64,
}

/// The groups of runs matching `f` (whose scope is the token's), with their derived figures.
pub async fn scan(st: &DashState, f: &RunFilter) -> Result<Vec<(Lite, Derived)>> {
    let groups = st.app.store.dashboard_groups(f).await?;
    Ok(groups.into_iter().map(group).collect())
}

/// How many users the overview's top emitters show.
pub const TOP_USERS: usize = 8;

/// What the overview reads: the groups without the user dimension (for every figure but the
/// top users) and the [`TOP_USERS`] users with the largest emissions, both at once.
pub struct Overview {
    /// Groups per (team, project, status, month); `user` is `None`.
    pub groups: Vec<(Lite, Derived)>,
    /// The top users (`(no user)` for runs without one) and their emissions, kg, largest first.
    pub top_users: Vec<(String, f64)>,
}

/// The overview of the runs matching `f`: the same figures [`scan`] gives, read grouped in
/// SQL (a few thousand rows, not one per user as well).
pub async fn overview(st: &DashState, f: &RunFilter) -> Result<Overview> {
    let store = &st.app.store;
    let (groups, users) = tokio::try_join!(
        store.dashboard_groups_without_users(f),
        store.top_users(f, TOP_USERS as i64)
    )?;
    Ok(Overview {
        groups: groups.into_iter().map(group).collect(),
        top_users: ranked_users(
            users.into_iter().map(|(u, kg)| (user_label(u), kg)),
            TOP_USERS,
        ),
    })
}

/// The label of a user key: `(no user)` for runs without one.
pub fn user_label(u: Option<String>) -> String {
    u.unwrap_or_else(|| "(no user)".to_string())
}

/// The `n` users of `runs` with the largest emissions (what [`Overview::top_users`] reads).
pub fn top_users_of(runs: &[(Lite, Derived)], n: usize) -> Vec<(String, f64)> {
    ranked_users(
        runs.iter()
            .map(|(x, _)| (user_label(x.user.clone()), x.emissions_kg)),
        n,
    )
}

/// Emissions summed per label, largest first, ties by label (as [`group_by`] orders), `n` of them.
fn ranked_users(rows: impl IntoIterator<Item = (String, f64)>, n: usize) -> Vec<(String, f64)> {
    let mut by: BTreeMap<String, f64> = BTreeMap::new();
    for (u, kg) in rows {
        *by.entry(u).or_default() += kg;
    }
    let mut v: Vec<(String, f64)> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v.truncate(n);
    v
}

fn group(g: crate::store_rollups::DashGroup) -> (Lite, Derived) {
    let s = g.sums;
    (
        Lite {
            team: g.team,
            project: g.project,
            user: g.user,
            status: g.status,
            month: g.month,
            runs: s.runs,
            duration_s: s.duration_s,
            energy_kwh: s.energy_kwh,
            facility_kwh: s.facility_kwh,
            emissions_kg: s.emissions_kg,
        },
        Derived {
            gpu_kwh: s.gpu_kwh,
            idle_gpu_kwh: s.idle_gpu_kwh,
            idle_gpu_kg: s.idle_gpu_kg,
            static_kwh: s.static_kwh,
            operational_kg: s.operational_kg,
            embodied_kg: s.embodied_kg,
            embodied_not_counted: s.embodied_not_counted,
            gpus_without_idle: s.gpus_without_idle,
            unreadable: s.unreadable,
        },
    )
}

/// Sums over a set of runs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Agg {
    pub runs: i64,
    pub duration_s: f64,
    pub energy_kwh: f64,
    pub facility_kwh: f64,
    pub emissions_kg: f64,
    pub wasted_runs: i64,
    pub wasted_kwh: f64,
    pub wasted_kg: f64,
    pub gpu_kwh: f64,
    pub idle_gpu_kwh: f64,
    pub idle_gpu_kg: f64,
    pub static_kwh: f64,
    pub operational_kg: f64,
    pub embodied_kg: f64,
    /// Runs whose embodied emissions were not counted (their 0 is not a figure).
    pub embodied_not_counted: i64,
    pub gpus_without_idle: i64,
    pub unreadable: i64,
}

impl Agg {
    /// The embodied emissions as people should read them: `not counted` when no run counted
    /// them, and how many runs are missing when only some did (never a zero for "not counted").
    pub fn embodied_text(&self, fmt: impl Fn(f64) -> String) -> String {
        let n = self.embodied_not_counted;
        if n > 0 && n >= self.runs {
            "not counted".to_string()
        } else if n > 0 {
            format!("{} ({n} run(s) not counted)", fmt(self.embodied_kg))
        } else {
            fmt(self.embodied_kg)
        }
    }

    pub fn add(&mut self, x: &Lite, d: &Derived) {
        self.runs += x.runs;
        self.duration_s += x.duration_s;
        self.energy_kwh += x.energy_kwh;
        self.facility_kwh += x.facility_kwh;
        self.emissions_kg += x.emissions_kg;
        if is_waste(&x.status) {
            self.wasted_runs += x.runs;
            self.wasted_kwh += x.energy_kwh;
            self.wasted_kg += x.emissions_kg;
        }
        self.gpu_kwh += d.gpu_kwh;
        self.idle_gpu_kwh += d.idle_gpu_kwh;
        self.idle_gpu_kg += d.idle_gpu_kg;
        self.static_kwh += d.static_kwh;
        self.operational_kg += d.operational_kg;
        self.embodied_kg += d.embodied_kg;
        self.embodied_not_counted += d.embodied_not_counted;
        self.gpus_without_idle += d.gpus_without_idle;
        self.unreadable += d.unreadable;
    }

    pub fn of<'a>(runs: impl IntoIterator<Item = &'a (Lite, Derived)>) -> Agg {
        let mut a = Agg::default();
        for (x, d) in runs {
            a.add(x, d);
        }
        a
    }
}

/// Sums grouped by a key, largest emissions first.
pub fn group_by<K: Ord + Clone>(
    runs: &[(Lite, Derived)],
    key: impl Fn(&Lite) -> K,
) -> Vec<(K, Agg)> {
    let mut m: BTreeMap<K, Agg> = BTreeMap::new();
    for (x, d) in runs {
        m.entry(key(x)).or_default().add(x, d);
    }
    let mut v: Vec<(K, Agg)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.emissions_kg.total_cmp(&a.1.emissions_kg));
    v
}

/// `YYYY-MM` → months since year 0.
fn month_index(m: &str) -> Option<i64> {
    let (y, mo) = m.split_once('-')?;
    Some(y.parse::<i64>().ok()? * 12 + mo.parse::<i64>().ok()? - 1)
}

fn month_name(i: i64) -> String {
    format!("{:04}-{:02}", i.div_euclid(12), i.rem_euclid(12) + 1)
}

/// The months a trend shows: up to `n`, ending with the later of `now` and the last month
/// with a run (with the last month with a run when none falls in the `n` months to `now`),
/// starting no earlier than the first month with a run. Months after next month are ignored:
/// the server refuses runs dated in the future (beyond 15 minutes of clock skew, which can reach
/// into next month), so only a row stored before that check can be there, and one run dated 9999
/// must not stretch every trend to 9999 and hide the real data.
pub fn trend_months(runs: &[(Lite, Derived)], now: &str, n: i64) -> Vec<String> {
    let latest = month_index(now).map_or(i64::MAX, |m| m + 1);
    let idx: Vec<i64> = runs
        .iter()
        .filter_map(|r| month_index(&r.0.month))
        .filter(|&m| m <= latest)
        .collect();
    let (Some(&first), Some(&last)) = (idx.iter().min(), idx.iter().max()) else {
        return Vec::new();
    };
    let mut end = last.max(month_index(now).unwrap_or(last));
    if last < end - n + 1 {
        // No run in the last `n` months: show the last months that had runs instead.
        end = last;
    }
    let start = first.max(end - n + 1);
    (start..=end).map(month_name).collect()
}

/// Per-series monthly values (`value` of each run), series ordered by their total `rank` (the
/// same order, and the same series, for every `value` ranked alike: charts side by side share
/// colours), at most `max_series` of them (past that, the last one sums the rest as "N others").
pub fn monthly_series(
    runs: &[(Lite, Derived)],
    months: &[String],
    series: impl Fn(&Lite) -> String,
    value: impl Fn(&Lite) -> f64,
    rank: impl Fn(&Lite) -> f64,
    max_series: usize,
) -> Vec<(String, Vec<f64>)> {
    let pos: HashMap<&str, usize> = months
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let mut by: BTreeMap<String, (f64, Vec<f64>)> = BTreeMap::new();
    for (x, _) in runs {
        let Some(&i) = pos.get(x.month.as_str()) else {
            continue;
        };
        let e = by
            .entry(series(x))
            .or_insert_with(|| (0.0, vec![0.0; months.len()]));
        e.0 += rank(x);
        e.1[i] += value(x);
    }
    let mut v: Vec<(String, (f64, Vec<f64>))> = by.into_iter().collect();
    // Largest first; ties by name (the map's order, kept by the stable sort).
    v.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    let mut v: Vec<(String, Vec<f64>)> = v.into_iter().map(|(k, (_, vals))| (k, vals)).collect();
    if v.len() > max_series {
        let rest = v.split_off(max_series.max(1) - 1);
        let mut others = vec![0.0; months.len()];
        for (_, vals) in &rest {
            for (o, x) in others.iter_mut().zip(vals) {
                *o += x;
            }
        }
        v.push((format!("{} others", rest.len()), others));
    }
    v
}

/// One row of a lower-carbon comparison.
#[derive(Debug, Clone)]
pub struct RegionRow {
    pub id: String,
    pub name: String,
    /// Grid intensity × PUE, g CO2e per kWh of IT energy.
    pub effective_g_per_kwh: f64,
    /// What the same IT energy would have emitted there (operational), kg.
    pub would_kg: f64,
    /// Operational emissions avoided, kg, and as a percentage.
    pub saved_kg: f64,
    pub saved_percent: Option<f64>,
}

/// The `n` cloud regions with the lowest effective intensity, each with what `it_kwh` of IT
/// energy would have emitted there, against `operational_kg` actually emitted
/// (`wattprint_core::factors::ranking`: emissions = kWh × intensity × PUE / 1000).
pub fn lower_carbon(it_kwh: f64, operational_kg: f64, n: usize) -> Vec<RegionRow> {
    use wattprint_core::factors::ranking::{rank_regions, saving};
    let Ok(ranks) = rank_regions(None) else {
        return Vec::new();
    };
    let actual_eff = if it_kwh > 0.0 {
        // (Divided first: finite for any finite figures, even rows stored before validation.)
        operational_kg / it_kwh * 1000.0
    } else {
        0.0
    };
    ranks
        .into_iter()
        .take(n)
        .map(|r| {
            let s = saving(actual_eff, r.effective_g_per_kwh, Some(it_kwh));
            RegionRow {
                would_kg: it_kwh * r.effective_g_per_kwh / 1000.0,
                saved_kg: s.kg.unwrap_or(0.0),
                saved_percent: s.percent.filter(|p| p.is_finite()),
                effective_g_per_kwh: r.effective_g_per_kwh,
                id: r.id,
                name: r.name,
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lite(month: &str, team: &str, kg: f64) -> (Lite, Derived) {
        (
            Lite {
                team: team.into(),
                project: "p".into(),
                user: None,
                status: "completed".into(),
                month: month.into(),
                duration_s: 1.0,
                energy_kwh: kg * 4.0,
                facility_kwh: kg * 5.0,
                emissions_kg: kg,
                runs: 1,
            },
            Derived::default(),
        )
    }

    #[test]
    fn months_span_data_and_now() {
        let runs = vec![lite("2024-11", "a", 1.0), lite("2025-02", "b", 2.0)];
        assert_eq!(
            trend_months(&runs, "2025-03", 12),
            vec!["2024-11", "2024-12", "2025-01", "2025-02", "2025-03"]
        );
        assert_eq!(
            trend_months(&runs, "2025-03", 2),
            vec!["2025-02", "2025-03"]
        );
        assert!(trend_months(&[], "2025-03", 12).is_empty());
        // A run dated in the far future (stored before the server checked times) is left out;
        // next month (clock skew at a month's end) is not.
        let mut future = runs.clone();
        future.push(lite("9999-01", "c", 1.0));
        assert_eq!(
            trend_months(&future, "2025-03", 12),
            trend_months(&runs, "2025-03", 12)
        );
        future.push(lite("2025-04", "c", 1.0));
        assert_eq!(
            trend_months(&future, "2025-03", 3),
            vec!["2025-02", "2025-03", "2025-04"]
        );
        // Old data: the months that had runs, not an empty year.
        assert_eq!(
            trend_months(&runs, "2027-01", 3),
            vec!["2024-12", "2025-01", "2025-02"]
        );
        let s = monthly_series(
            &runs,
            &trend_months(&runs, "2025-02", 12),
            |x| x.team.clone(),
            |x| x.emissions_kg,
            |x| x.emissions_kg,
            8,
        );
        // Ranked by emissions, energy comes in the same order (a's energy is larger here).
        let mut runs2 = runs.clone();
        runs2[0].0.energy_kwh = 100.0;
        let e = monthly_series(
            &runs2,
            &trend_months(&runs2, "2025-02", 12),
            |x| x.team.clone(),
            |x| x.energy_kwh,
            |x| x.emissions_kg,
            8,
        );
        assert_eq!(e[0].0, "b");
        assert_eq!(e[1], ("a".to_string(), vec![100.0, 0.0, 0.0, 0.0]));
        assert_eq!(s[0], ("b".to_string(), vec![0.0, 0.0, 0.0, 2.0]));
        assert_eq!(s[1], ("a".to_string(), vec![1.0, 0.0, 0.0, 0.0]));
        let both = ["2024-11".to_string(), "2025-02".to_string()];
        let kg = |x: &Lite| x.emissions_kg;
        let s = monthly_series(&runs, &both, |x| x.team.clone(), kg, kg, 1);
        assert_eq!(s, vec![("2 others".to_string(), vec![1.0, 2.0])]);
    }

    #[test]
    fn waste_and_groups() {
        let mut runs = vec![lite("2025-01", "a", 1.0), lite("2025-01", "b", 3.0)];
        runs[0].0.status = "failed".into();
        let a = Agg::of(&runs);
        assert_eq!((a.runs, a.wasted_runs), (2, 1));
        assert_eq!((a.emissions_kg, a.wasted_kg, a.wasted_kwh), (4.0, 1.0, 4.0));
        let g = group_by(&runs, |x| x.team.clone());
        assert_eq!(g[0].0, "b");
    }

    #[test]
    fn lower_carbon_regions_are_cheaper_and_consistent() {
        let rows = lower_carbon(100.0, 40.0, 3);
        assert_eq!(rows.len(), 3);
        for w in rows.windows(2) {
            assert!(w[0].effective_g_per_kwh <= w[1].effective_g_per_kwh);
        }
        for r in &rows {
            assert!((r.would_kg - 100.0 * r.effective_g_per_kwh / 1000.0).abs() < 1e-9);
            assert!((r.saved_kg - (40.0 - r.would_kg)).abs() < 1e-9, "{r:?}");
        }
    }
}
