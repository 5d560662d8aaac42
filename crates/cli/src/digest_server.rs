//! `wattprint digest --team T`: the team's run records of a period from the server (the runs
//! listing, paged with its cursor, then each record), for the same digest as the local store's.

use anyhow::Result;
use wattprint_core::record::RunRecord;
use wattprint_session::upload::{Client, SendError, ServerTarget};

/// Most runs a server digest reads.
pub const MAX_SERVER_RUNS: usize = 20_000;

fn enc(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

fn err(e: SendError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// The records of team `team`'s runs started in [`since`, `until`) (RFC 3339), and a note when
/// some could not be read or the cap was reached.
pub fn team_records(
    target: ServerTarget,
    team: &str,
    since: &str,
    until: Option<&str>,
) -> Result<(Vec<RunRecord>, Vec<String>)> {
    let client = Client::with_timeouts(
        target,
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(30),
    );
    let mut ids: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut notes = Vec::new();
    loop {
        let mut path = format!("/runs?team={}&since={}&limit=1000", enc(team), enc(since));
        if let Some(u) = until {
            path.push_str(&format!("&until={}", enc(u)));
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", enc(c)));
        }
        let page = client.request("GET", &path, None).map_err(err)?;
        let runs = page["runs"].as_array().cloned().unwrap_or_default();
        for r in &runs {
            if let Some(id) = r["run_id"].as_str() {
                ids.push(id.to_string());
            }
        }
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if ids.len() >= MAX_SERVER_RUNS {
            ids.truncate(MAX_SERVER_RUNS);
            notes.push(format!(
                "only the first {MAX_SERVER_RUNS} runs were read; narrow the period"
            ));
            break;
        }
        if cursor.is_none() || runs.is_empty() {
            break;
        }
    }
    let mut recs = Vec::with_capacity(ids.len());
    let mut unreadable = 0;
    for id in ids {
        let v = client
            .request("GET", &format!("/runs/{}", enc(&id)), None)
            .map_err(err)?;
        match serde_json::from_value::<RunRecord>(v["record"].clone()) {
            Ok(r) => recs.push(r),
            Err(_) => unreadable += 1,
        }
    }
    if unreadable > 0 {
        notes.push(format!(
            "{unreadable} run record(s) from the server could not be read and are not counted"
        ));
    }
    Ok((recs, notes))
}
