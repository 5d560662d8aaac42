//! The agent's ledger: energy and emissions per UTC hour window and device, cumulative within
//! the window, with what the server has confirmed. A report sends, for every window with
//! unconfirmed figures, the current cumulative values: the server keeps the largest it has
//! seen per (node, agent instance, window, device), so a retry or a replay never double counts.

use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Device id and kind of the node's unattributed energy (host ledger): part of what the
/// devices drew that no run was charged, so never added to the node's total.
pub const UNATTRIBUTED: &str = "unattributed";

/// Length of a window, seconds.
pub const WINDOW_S: i64 = 3600;

/// Start (unix seconds) of the window holding `unix`.
pub fn window_of(unix: f64) -> i64 {
    (unix.floor() as i64).div_euclid(WINDOW_S) * WINDOW_S
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => {
            let f =
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
            t.format(&f).unwrap_or_else(|_| unix.to_string())
        }
        Err(_) => unix.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub kind: String,
    pub joules: f64,
    pub grams: f64,
    /// What the server confirmed.
    pub sent_joules: f64,
    pub sent_grams: f64,
}

impl Cell {
    fn pending(&self) -> bool {
        self.joules > self.sent_joules || self.grams > self.sent_grams
    }
}

/// One figure of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub window: i64,
    pub device_id: String,
    pub kind: String,
    pub joules: f64,
    pub grams: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Ledger {
    windows: BTreeMap<i64, BTreeMap<String, Cell>>,
}

impl Ledger {
    pub fn add(&mut self, window: i64, device_id: &str, kind: &str, joules: f64, grams: f64) {
        // Zero-energy intervals still open the window, so a device that drew nothing is
        // reported with 0 J rather than missing.
        if !(joules.is_finite() && grams.is_finite()) {
            return;
        }
        let c = self
            .windows
            .entry(window)
            .or_default()
            .entry(device_id.to_string())
            .or_insert_with(|| Cell {
                kind: kind.to_string(),
                joules: 0.0,
                grams: 0.0,
                sent_joules: -1.0,
                sent_grams: -1.0,
            });
        c.joules += joules.max(0.0);
        c.grams += grams.max(0.0);
    }

    /// Figures not yet confirmed by the server.
    pub fn pending(&self) -> Vec<Entry> {
        let mut v = Vec::new();
        for (w, cells) in &self.windows {
            for (d, c) in cells {
                if c.pending() {
                    v.push(Entry {
                        window: *w,
                        device_id: d.clone(),
                        kind: c.kind.clone(),
                        joules: c.joules,
                        grams: c.grams,
                    });
                }
            }
        }
        v
    }

    /// Windows with unconfirmed figures.
    pub fn pending_windows(&self) -> usize {
        self.windows
            .values()
            .filter(|cells| cells.values().any(Cell::pending))
            .count()
    }

    /// The server confirmed `sent`.
    pub fn confirm(&mut self, sent: &[Entry]) {
        for e in sent {
            if let Some(c) = self
                .windows
                .get_mut(&e.window)
                .and_then(|w| w.get_mut(&e.device_id))
            {
                c.sent_joules = c.sent_joules.max(e.joules);
                c.sent_grams = c.sent_grams.max(e.grams);
            }
        }
    }

    /// Forget windows before `current` whose figures are all confirmed.
    pub fn prune(&mut self, current: i64) {
        self.windows
            .retain(|w, cells| *w >= current || cells.values().any(Cell::pending));
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

/// The body of `POST /nodes/{node}/energy`.
pub fn body(agent: &str, entries: &[Entry]) -> Value {
    let mut by_window: BTreeMap<i64, Vec<Value>> = BTreeMap::new();
    for e in entries {
        by_window.entry(e.window).or_default().push(json!({
            "device_id": e.device_id,
            "kind": e.kind,
            "joules": e.joules,
            "emissions_g": e.grams,
        }));
    }
    json!({
        "agent": agent,
        "windows": by_window
            .into_iter()
            .map(|(w, devices)| json!({"start": rfc3339(w), "devices": devices}))
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_utc_hours() {
        assert_eq!(window_of(1_741_608_000.0 + 3599.9), 1_741_608_000);
        assert_eq!(window_of(1_741_608_000.0 + 3600.0), 1_741_611_600);
        assert_eq!(rfc3339(1_741_608_000), "2025-03-10T12:00:00Z");
    }

    #[test]
    fn pending_until_confirmed_then_pruned() {
        let mut l = Ledger::default();
        l.add(0, "cpu:0", "cpu", 10.0, 1.0);
        l.add(0, "ram:0", "ram", 0.0, 0.0);
        l.add(3600, "cpu:0", "cpu", 5.0, 0.5);
        let p = l.pending();
        assert_eq!(p.len(), 3, "a zero-energy device is reported too");
        l.confirm(&p);
        assert!(l.pending().is_empty());
        // More energy in the current window after the report: pending again, with the new total.
        l.add(3600, "cpu:0", "cpu", 2.0, 0.2);
        let p = l.pending();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].window, p[0].joules), (3600, 7.0));
        l.prune(3600);
        assert_eq!(l.len(), 1, "the confirmed past window is gone");
        // A failed report keeps everything.
        l.add(7200, "cpu:0", "cpu", 1.0, 0.1);
        l.prune(7200);
        assert_eq!(l.pending_windows(), 2);
        let b = body("a", &l.pending());
        assert_eq!(b["windows"].as_array().unwrap().len(), 2);
        assert_eq!(b["windows"][0]["start"], "1970-01-01T01:00:00Z");
        // NaN never enters.
        l.add(7200, "cpu:0", "cpu", f64::NAN, 0.0);
        assert_eq!(l.pending().iter().map(|e| e.joules).sum::<f64>(), 8.0);
    }
}
