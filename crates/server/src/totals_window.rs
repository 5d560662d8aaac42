//! How a time window of `/totals` is read: the whole months inside it from the rollups (which
//! keep months), and the partial months at its edges from `runs` through the index on
//! `started_unix` — each edge from its smaller side: the runs of the window's part of the month
//! are added, or the month's rollup is taken and the runs of the month outside the window are
//! subtracted. Both sides sum the same integer contributions (µWh, µg, ms; see
//! [`crate::db::rollup_schema`]), so the result equals, to the unit, the sums over the runs in
//! the window; a window costs at most half a month of runs at each edge, whatever the history.

/// A `[lo, hi)` range of `started_unix` whose runs count `sign` (1 or −1) times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunRange {
    pub lo: i64,
    pub hi: i64,
    pub sign: i64,
}

/// Months `[from, to)` (`YYYY-MM`, either end open when `None`) read from the rollups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Months {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The parts of a window: months from the rollups (`None`: none) and ranges of runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub months: Option<Months>,
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

/// The parts of the window `[since, until)` (either end open when `None`). A window that ends
/// before it starts has no parts.
pub fn plan(since: Option<i64>, until: Option<i64>) -> Window {
    let direct = |lo: Option<i64>, hi: Option<i64>| Window {
        months: None,
        runs: vec![RunRange {
            lo: lo.unwrap_or(i64::MIN),
            hi: hi.unwrap_or(i64::MAX),
            sign: 1,
        }],
    };
    if let (Some(s), Some(u)) = (since, until) {
        if s >= u {
            return Window {
                months: None,
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
            if s == start {
                Some(name)
            } else if s - start < next - s {
                runs.push(RunRange {
                    lo: start,
                    hi: s,
                    sign: -1,
                });
                Some(name)
            } else {
                runs.push(RunRange {
                    lo: s,
                    hi: next,
                    sign: 1,
                });
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
            if u == start {
                Some(name)
            } else if next - u < u - start {
                runs.push(RunRange {
                    lo: u,
                    hi: next,
                    sign: -1,
                });
                match month_name(next) {
                    Some(n) => Some(n),
                    None => return direct(since, until),
                }
            } else {
                runs.push(RunRange {
                    lo: start,
                    hi: u,
                    sign: 1,
                });
                Some(name)
            }
        }
        _ => None,
    };
    Window {
        months: Some(Months { from, to }),
        runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEB: i64 = 1_738_368_000; // 2025-02-01
    const MAR: i64 = 1_740_787_200; // 2025-03-01
    const APR: i64 = 1_743_465_600; // 2025-04-01
    const DAY: i64 = 86_400;

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
            plan(None, None),
            Window {
                months: months(None, None),
                runs: vec![]
            }
        );
        assert_eq!(
            plan(Some(FEB), Some(APR)),
            Window {
                months: months(Some("2025-02"), Some("2025-04")),
                runs: vec![]
            }
        );
    }

    #[test]
    fn edges_are_read_from_their_smaller_side() {
        // Since 2 February: the month's rollup minus its first day.
        let w = plan(Some(FEB + DAY), None);
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
        let w = plan(Some(MAR - 2 * DAY), Some(APR - DAY));
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
        let w = plan(None, Some(MAR + 2 * DAY));
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
            plan(Some(FEB + DAY), Some(FEB + 3 * DAY)),
            Window {
                months: None,
                runs: vec![RunRange {
                    lo: FEB + DAY,
                    hi: FEB + 3 * DAY,
                    sign: 1
                }]
            }
        );
        assert!(plan(Some(MAR), Some(FEB)).runs.is_empty());
        assert_eq!(plan(Some(MAR), Some(MAR)).months, None);
        // Beyond the calendar: every run of the window, read from `runs`.
        assert_eq!(
            plan(Some(i64::MIN), Some(FEB)).runs,
            vec![RunRange {
                lo: i64::MIN,
                hi: FEB,
                sign: 1
            }]
        );
    }
}
