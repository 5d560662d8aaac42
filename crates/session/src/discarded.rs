//! Compute a run discarded when it ended unfinished: the checkpoint signals (the progress
//! file's `checkpoint` lines and `Session::checkpoint_saved`), valued from the run's series
//! (see [`wattprint_core::waste`]).

use std::path::Path;
use wattprint_core::record::{RunRecord, RunStatus};
use wattprint_core::sampler::{SeriesPoint, Snapshot};
use wattprint_core::waste::{self, Discarded};

/// Checkpoint times (Unix seconds) written to the progress file, and a warning for lines
/// that could not be used.
pub fn file_checkpoints(progress_file: &Path) -> (Option<String>, Vec<f64>) {
    let Ok(text) = std::fs::read_to_string(progress_file) else {
        return (None, Vec::new());
    };
    let mtime = std::fs::metadata(progress_file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64());
    let (times, bad) = waste::checkpoint_lines(&text, mtime);
    let note = (bad > 0).then(|| {
        format!(
            "progress file: {bad} checkpoint line(s) without a usable time were ignored (write \
             `checkpoint <unix seconds>`, or a bare `checkpoint` as the file's last line)"
        )
    });
    (note, times)
}

/// What the run discarded, for a run that did not finish (failed, killed, stopped); `None`
/// for a completed or running one.
pub fn discarded(
    rec: &RunRecord,
    snap: &Snapshot,
    start_unix: f64,
    checkpoints_unix: &[f64],
) -> Option<Discarded> {
    if matches!(rec.status, RunStatus::Completed | RunStatus::Running) {
        return None;
    }
    let rel: Vec<f64> = checkpoints_unix.iter().map(|t| t - start_unix).collect();
    let series: Vec<&[SeriesPoint]> = snap.devices.iter().map(|d| d.series.as_slice()).collect();
    Some(waste::discarded(
        &rel,
        &series,
        rec.duration_s,
        rec.energy_kwh.total.0,
        rec.emissions_kg.operational,
    ))
}
