//! How a time window of `/totals` is read, so that it costs the same whatever the history:
//!
//! - the whole months inside it from the monthly rollups;
//! - the whole days of its edge months from the per-day rollups ([`crate::db::rollup_days`]),
//!   each edge month from its smaller side: the days of the window's part of the month are
//!   added, or the month's rollup is taken and the days outside the window are subtracted (at
//!   most half a month of days per edge);
//! - the partial day at each end from `runs` through the index on `started_unix`, again from its
//!   smaller side (at most half a day of runs per end).
//!
//! Windows grouped or filtered by user or host (the per-day rollups keep neither) read the
//! partial months at their edges from `runs`, from their smaller side ([`plan`] with `by_day`
//! false). Every part sums the same integer contributions (µWh, µg, ms; see
//! [`crate::db::rollup_schema`]), so the result equals, to the unit, the sums over the runs in
//! the window.

/// Seconds per day.
const DAY: i64 = 86_400;

/// A `[lo, hi)` range whose contents count `sign` (1 or −1) times: of `started_unix` (a
/// [`RunRange`]: its runs) or of UTC days (a [`DayRange`]: their per-day rollups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedRange {
    pub lo: i64,
    pub hi: i64,
    pub sign: i64,
}

/// Seconds of `started_unix`, `[lo, hi)`, whose runs count `sign` times.
pub type RunRange = SignedRange;
/// UTC days (`started_unix` / 86 400, rounded down), `[lo, hi)`, whose per-day rollups count
/// `sign` times.
pub type DayRange = SignedRange;

/// Months `[from, to)` (`YYYY-MM`, either end open when `None`) read from the rollups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Months {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The parts of a window: months from the rollups (`None`: none), ranges of days from the
/// per-day rollups and ranges of runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub months: Option<Months>,
    pub days: Vec<DayRange>,
    pub runs: Vec<RunRange>,
}

/// The UTC month holding `unix`: its first second, the next month's first second, `YYYY-MM`.
/// `None` outside the years the calendar handles.
fn month_of(unix: i64) -> Option<(i64, i64, String)> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    let start = time::Date::from_calendar_date(t.year(), t.month(), 1).ok()?;
    let (ny, nm) = match t.month() {
        time::Month::December => (t.year().checked_add(1)?, time::Month::January),
        m => (t.year(), m.next()),
    };
    let next = time::Date::from_calendar_date(ny, nm, 1).ok()?;
    let unix_of = |d: time::Date| d.midnight().assume_utc().unix_timestamp();
    Some((
        unix_of(start),
        unix_of(next),
        format!("{:04}-{:02}", t.year(), u8::from(t.month())),
    ))
}

/// `YYYY-MM` of the month starting at `unix`.
fn month_name(unix: i64) -> Option<String> {
    month_of(unix).map(|m| m.2)
}

/// Every run of `[lo, hi)` (either end open when `None`), read from `runs`.
fn direct(lo: Option<i64>, hi: Option<i64>) -> Window {
    Window {
        months: None,
        days: vec![],
        runs: vec![RunRange {
            lo: lo.unwrap_or(i64::MIN),
            hi: hi.unwrap_or(i64::MAX),
            sign: 1,
        }],
    }
}

/// The parts of the window `[since, until)` (either end open when `None`): with `by_day`, whole
/// days of the edge months from the per-day rollups and the partial days from `runs`; without,
/// the partial months from `runs`. A window that ends before it starts has no parts.
pub fn plan(since: Option<i64>, until: Option<i64>, by_day: bool) -> Window {
    if !by_day {
        return plan_months(since, until);
    }
    if let (Some(s), Some(u)) = (since, until) {
        if s >= u {
            return Window {
                months: None,
                days: vec![],
                runs: vec![],
            };
        }
        if s.div_euclid(DAY) == u.div_euclid(DAY) {
            // Both ends in one day: its runs in the window.
            return direct(since, until);
        }
    }
    // Beyond the calendar: every run of the window, read from `runs`.
    if [since, until]
        .iter()
        .flatten()
        .any(|t| month_of(*t).is_none())
    {
        return direct(since, until);
    }
    let mut runs = Vec::new();
    // The partial day at each end, from its smaller side.
    let lo_day = since.map(|s| {
        let d = s.div_euclid(DAY);
        let start = d * DAY;
        if edge((s, start + DAY), (start, s), &mut runs) {
            d
        } else {
            d + 1
        }
    });
    let hi_day = until.map(|u| {
        let d = u.div_euclid(DAY);
        let start = d * DAY;
        if edge((start, u), (u, start + DAY), &mut runs) {
            d + 1
        } else {
            d
        }
    });
    match plan_days(lo_day, hi_day) {
        Some((months, days)) => Window { months, days, runs },
        None => direct(since, until),
    }
}

/// The UTC month holding day `d`: its first day, the next month's first day, `YYYY-MM`.
fn month_of_day(d: i64) -> Option<(i64, i64, String)> {
    let (start, next, name) = month_of(d.checked_mul(DAY)?)?;
    Some((start / DAY, next / DAY, name))
}

/// The days `[lo, hi)` (either end open when `None`) as months from the rollups and ranges of
/// days, each edge month from its smaller side; `None` beyond the calendar.
#[allow(clippy::type_complexity)]
fn plan_days(lo: Option<i64>, hi: Option<i64>) -> Option<(Option<Months>, Vec<DayRange>)> {
    let range = |lo: i64, hi: i64, sign: i64| DayRange { lo, hi, sign };
    let mut days = Vec::new();
    if let (Some(l), Some(h)) = (lo, hi) {
        if l >= h {
            return Some((None, days));
        }
        let (start, next, name) = month_of_day(l)?;
        if h <= next {
            // Within one month: its days, or the month less the days outside.
            let (len, month_len) = (h - l, next - start);
            if len * 2 <= month_len && len < month_len {
                return Some((None, vec![range(l, h, 1)]));
            }
            if l > start {
                days.push(range(start, l, -1));
            }
            if h < next {
                days.push(range(h, next, -1));
            }
            let to = month_of_day(next)?.2;
            return Some((
                Some(Months {
                    from: Some(name),
                    to: Some(to),
                }),
                days,
            ));
        }
    }
    // Each edge month from its smaller side: the whole month from the rollups less the days
    // outside the window, or only the days inside it.
    let from = match lo {
        None => None,
        Some(l) => {
            let (start, next, name) = month_of_day(l)?;
            if edge((l, next), (start, l), &mut days) {
                Some(name)
            } else {
                Some(month_of_day(next)?.2)
            }
        }
    };
    let to = match hi {
        None => None,
        Some(h) => {
            let (start, next, name) = month_of_day(h)?;
            if edge((start, h), (h, next), &mut days) {
                Some(month_of_day(next)?.2)
            } else {
                Some(name)
            }
        }
    };
    Some((Some(Months { from, to }), days))
}

/// A window's edge cuts a month or day: `[inside.0, inside.1)` is in the window, `outside`
/// not. Read from its smaller side: when the inside is larger, the whole (from the coarser
/// source) less the outside (`true`); else the inside alone (`false`). The range read finely is
/// pushed to `parts` unless it is empty.
fn edge(inside: (i64, i64), outside: (i64, i64), parts: &mut Vec<SignedRange>) -> bool {
    let whole = inside.1 - inside.0 > outside.1 - outside.0;
    let (part, sign) = if whole { (outside, -1) } else { (inside, 1) };
    if part.0 < part.1 {
        parts.push(SignedRange {
            lo: part.0,
            hi: part.1,
            sign,
        });
    }
    whole
}

/// The parts of the window `[since, until)` from the monthly rollups and `runs` only: the
/// partial month at each edge from `runs`, from its smaller side.
fn plan_months(since: Option<i64>, until: Option<i64>) -> Window {
    if let (Some(s), Some(u)) = (since, until) {
        if s >= u {
            return Window {
                months: None,
                days: vec![],
                runs: vec![],
            };
        }
    }
    let ms = match since.map(month_of) {
        Some(None) => return direct(since, until),
        m => m.flatten(),
    };
    let mu = match until.map(month_of) {
        Some(None) => return direct(since, until),
        m => m.flatten(),
    };
    if let (Some(a), Some(b)) = (&ms, &mu) {
        if a.0 == b.0 {
            // Both ends in one month: its runs in the window.
            return direct(since, until);
        }
    }
    let mut runs = Vec::new();
    let from = match (since, ms) {
        (Some(s), Some((start, next, name))) => {
            if edge((s, next), (start, s), &mut runs) {
                Some(name)
            } else {
                match month_name(next) {
                    Some(n) => Some(n),
                    None => return direct(since, until),
                }
            }
        }
        _ => None,
    };
    let to = match (until, mu) {
        (Some(u), Some((start, next, name))) => {
            if edge((start, u), (u, next), &mut runs) {
                match month_name(next) {
                    Some(n) => Some(n),
                    None => return direct(since, until),
                }
            } else {
                Some(name)
            }
        }
        _ => None,
    };
    Window {
        months: Some(Months { from, to }),
        days: vec![],
        runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEB: i64 = 1_738_368_000; // 2025-02-01
    const MAR: i64 = 1_740_787_200; // 2025-03-01
    const APR: i64 = 1_743_465_600; // 2025-04-01

    fn months(from: Option<&str>, to: Option<&str>) -> Option<Months> {
        Some(Months {
            from: from.map(str::to_string),
            to: to.map(str::to_string),
        })
    }

    #[test]
    fn month_bounds() {
        assert_eq!(month_of(FEB + 5), Some((FEB, MAR, "2025-02".to_string())));
        assert_eq!(month_of(MAR - 1).map(|m| m.0), Some(FEB));
        assert_eq!(
            month_of(1_735_689_599).map(|m| (m.1, m.2)),
            Some((1_735_689_600, "2024-12".to_string())),
            "December ends at the new year"
        );
    }

    #[test]
    fn aligned_and_open_windows_read_only_rollups() {
        assert_eq!(
            plan_months(None, None),
            Window {
                months: months(None, None),
                days: vec![],
                runs: vec![]
            }
        );
        assert_eq!(
            plan_months(Some(FEB), Some(APR)),
            Window {
                months: months(Some("2025-02"), Some("2025-04")),
                days: vec![],
                runs: vec![]
            }
        );
    }

    #[test]
    fn edges_are_read_from_their_smaller_side() {
        // Since 2 February: the month's rollup minus its first day.
        let w = plan_months(Some(FEB + DAY), None);
        assert_eq!(w.months, months(Some("2025-02"), None));
        assert_eq!(
            w.runs,
            vec![RunRange {
                lo: FEB,
                hi: FEB + DAY,
                sign: -1
            }]
        );
        // Since 27 February: its last days, then March on.
        let w = plan_months(Some(MAR - 2 * DAY), Some(APR - DAY));
        assert_eq!(w.months, months(Some("2025-03"), Some("2025-04")));
        assert_eq!(
            w.runs,
            vec![
                RunRange {
                    lo: MAR - 2 * DAY,
                    hi: MAR,
                    sign: 1
                },
                RunRange {
                    lo: APR - DAY,
                    hi: APR,
                    sign: -1
                }
            ]
        );
        // Until 3 March: February whole, and March's first two days.
        let w = plan_months(None, Some(MAR + 2 * DAY));
        assert_eq!(w.months, months(None, Some("2025-03")));
        assert_eq!(
            w.runs,
            vec![RunRange {
                lo: MAR,
                hi: MAR + 2 * DAY,
                sign: 1
            }]
        );
    }

    #[test]
    fn one_month_and_empty_windows() {
        assert_eq!(
            plan_months(Some(FEB + DAY), Some(FEB + 3 * DAY)),
            Window {
                months: None,
                days: vec![],
                runs: vec![RunRange {
                    lo: FEB + DAY,
                    hi: FEB + 3 * DAY,
                    sign: 1
                }]
            }
        );
        assert!(plan_months(Some(MAR), Some(FEB)).runs.is_empty());
        assert_eq!(plan_months(Some(MAR), Some(MAR)).months, None);
        // Beyond the calendar: every run of the window, read from `runs`.
        assert_eq!(
            plan_months(Some(i64::MIN), Some(FEB)).runs,
            vec![RunRange {
                lo: i64::MIN,
                hi: FEB,
                sign: 1
            }]
        );
    }

    /// How many times the plan counts a run started at `t`: its month, day and run parts.
    fn coverage(w: &Window, t: i64) -> i64 {
        let mut n = 0;
        if let Some(m) = &w.months {
            let name = month_of(t).expect("a start in the calendar").2;
            if m.from.as_ref().is_none_or(|f| &name >= f) && m.to.as_ref().is_none_or(|e| &name < e)
            {
                n += 1;
            }
        }
        let d = t.div_euclid(DAY);
        for r in &w.days {
            if r.lo <= d && d < r.hi {
                n += r.sign;
            }
        }
        for r in &w.runs {
            if r.lo <= t && t < r.hi {
                n += r.sign;
            }
        }
        n
    }

    /// Ends worth cutting at: month and day boundaries, a second either side, mid-day,
    /// near either side of a month's middle, and none.
    fn ends() -> Vec<Option<i64>> {
        let mut v = vec![None];
        for base in [
            FEB,
            MAR,
            APR,
            FEB + 13 * DAY,
            FEB + 14 * DAY,
            FEB + 15 * DAY,
            MAR + 16 * DAY,
        ] {
            for off in [
                0,
                1,
                -1,
                DAY / 2,
                DAY / 2 + 1,
                DAY / 3,
                2 * DAY / 3,
                DAY - 1,
            ] {
                v.push(Some(base + off));
            }
        }
        v
    }

    #[test]
    fn by_day_counts_every_run_of_the_window_once_and_no_other() {
        // Starts every 7 919 s over January to April, and at the ends themselves.
        let mut starts: Vec<i64> = (0..1200).map(|i| FEB - 31 * DAY + i * 7_919).collect();
        starts.extend(ends().into_iter().flatten().flat_map(|e| [e - 1, e, e + 1]));
        for since in ends() {
            for until in ends() {
                let w = plan(since, until, true);
                for &t in &starts {
                    let inside = since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u);
                    assert_eq!(
                        coverage(&w, t),
                        i64::from(inside),
                        "{since:?}..{until:?} at {t}: {w:?}"
                    );
                }
                // The cost is bounded: at most half a day of runs per end, and at most half a
                // month (16 days) of days per edge.
                assert!(w.runs.len() <= 2, "{w:?}");
                let same_day = matches!((since, until), (Some(s), Some(u)) if s.div_euclid(DAY) == u.div_euclid(DAY));
                if !same_day {
                    assert!(w.runs.iter().all(|r| r.hi - r.lo <= DAY / 2), "{w:?}");
                }
                let days: i64 = w.days.iter().map(|r| r.hi - r.lo).sum();
                assert!(days <= 32, "{since:?}..{until:?}: {w:?}");
            }
        }
    }

    #[test]
    fn by_day_edges_on_boundaries() {
        // Month-aligned: only the monthly rollups.
        assert_eq!(
            plan(Some(FEB), Some(APR), true),
            Window {
                months: months(Some("2025-02"), Some("2025-04")),
                days: vec![],
                runs: vec![]
            }
        );
        // Day-aligned ends: days only, no runs. Since 3 February: February less its first
        // two days; until 27 March: March's last five days subtracted from the month.
        let w = plan(Some(FEB + 2 * DAY), Some(MAR + 26 * DAY), true);
        assert!(w.runs.is_empty(), "{w:?}");
        assert_eq!(w.months, months(Some("2025-02"), Some("2025-04")));
        let (feb, mar, apr) = (FEB / DAY, MAR / DAY, APR / DAY);
        assert_eq!(
            w.days,
            vec![
                DayRange {
                    lo: feb,
                    hi: feb + 2,
                    sign: -1
                },
                DayRange {
                    lo: mar + 26,
                    hi: apr,
                    sign: -1
                },
            ]
        );
        // One day: that day's rollup, no runs.
        assert_eq!(
            plan(Some(MAR + 4 * DAY), Some(MAR + 5 * DAY), true),
            Window {
                months: None,
                days: vec![DayRange {
                    lo: mar + 4,
                    hi: mar + 5,
                    sign: 1
                }],
                runs: vec![]
            }
        );
        // Mid-day ends: the partial days from their smaller sides.
        let w = plan(
            Some(MAR + 4 * DAY + 3_600),
            Some(MAR + 9 * DAY + 7_200),
            true,
        );
        assert_eq!(w.months, None);
        assert_eq!(
            w.days,
            vec![DayRange {
                lo: mar + 4,
                hi: mar + 9,
                sign: 1
            }]
        );
        assert_eq!(
            w.runs,
            vec![
                RunRange {
                    lo: MAR + 4 * DAY,
                    hi: MAR + 4 * DAY + 3_600,
                    sign: -1
                },
                RunRange {
                    lo: MAR + 9 * DAY,
                    hi: MAR + 9 * DAY + 7_200,
                    sign: 1
                },
            ]
        );
    }

    #[test]
    fn by_day_empty_one_day_and_open_windows() {
        let none = Window {
            months: None,
            days: vec![],
            runs: vec![],
        };
        assert_eq!(plan(Some(MAR), Some(MAR), true), none);
        assert_eq!(plan(Some(MAR), Some(FEB), true), none);
        // Within one day: its runs.
        assert_eq!(
            plan(Some(MAR + 10), Some(MAR + 20), true).runs,
            vec![RunRange {
                lo: MAR + 10,
                hi: MAR + 20,
                sign: 1
            }]
        );
        // Open ends: every month up to (or from) the edge month.
        let w = plan(None, Some(MAR + 3 * DAY), true);
        assert_eq!(w.months, months(None, Some("2025-03")));
        let w = plan(Some(MAR + 3 * DAY), None, true);
        assert_eq!(w.months, months(Some("2025-03"), None));
        assert_eq!(plan(None, None, true).months, months(None, None));
        // Beyond the calendar: the runs.
        assert_eq!(
            plan(Some(i64::MIN), Some(FEB), true).runs,
            vec![RunRange {
                lo: i64::MIN,
                hi: FEB,
                sign: 1
            }]
        );
    }
}
