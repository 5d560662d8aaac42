//! Where a session's record goes: one [`RunSink`] trait, implemented by the local store, the
//! server upload (with its spool) and the `--json` file. The session calls every sink at the
//! start, at each checkpoint and at the end; a sink that fails is reported and the others go
//! on — a record is never lost silently.

use crate::messages::Messages;
use crate::upload::Uploader;
use std::path::PathBuf;
use wattprint_core::record::RunRecord;
use wattprint_core::sampler::Snapshot;
use wattprint_store::store::Store;

/// Why a sink could not keep the record.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

impl SinkError {
    fn from_any(e: impl std::fmt::Display) -> SinkError {
        SinkError(e.to_string())
    }
}

/// Something that keeps a run's record.
pub trait RunSink: Send {
    /// What it is, for messages: `the local store`, `the server …`, `the JSON file …`.
    fn name(&self) -> String;
    /// The run has started (before the work): keep a first record so a crash leaves one.
    fn begin(&mut self, _rec: &RunRecord) -> Result<(), SinkError> {
        Ok(())
    }
    /// A running record (never blocks on the network).
    fn checkpoint(&mut self, rec: &RunRecord) -> Result<(), SinkError>;
    /// The final record and its series. A sink may add warnings to `rec` (sinks after it keep
    /// them); it returns the messages it already showed the user, for the summary not to
    /// repeat them.
    fn finish(&mut self, rec: &mut RunRecord, snap: &Snapshot) -> Result<Vec<String>, SinkError>;
    /// The work never started: forget the run.
    fn discard(&mut self, _id: &str) {}
    /// Whether this is the local store (so a front end can say `wattprint show ID`).
    fn is_local_store(&self) -> bool {
        false
    }
}

/// The local SQLite store.
pub struct StoreSink {
    store: Store,
    path: String,
}

impl StoreSink {
    pub fn new(store: Store, path: impl Into<String>) -> StoreSink {
        StoreSink {
            store,
            path: path.into(),
        }
    }
}

impl RunSink for StoreSink {
    fn name(&self) -> String {
        format!("the local store ({})", self.path)
    }
    fn begin(&mut self, rec: &RunRecord) -> Result<(), SinkError> {
        self.checkpoint(rec)
    }
    fn checkpoint(&mut self, rec: &RunRecord) -> Result<(), SinkError> {
        self.store
            .save_checkpoint(rec)
            .map_err(|e| SinkError(format!("{e:#}")))
    }
    fn finish(&mut self, rec: &mut RunRecord, snap: &Snapshot) -> Result<Vec<String>, SinkError> {
        self.store
            .save_run(rec)
            .and_then(|_| self.store.save_series(&rec.id, snap))
            .map_err(|e| SinkError(format!("{e:#}")))?;
        Ok(Vec::new())
    }
    fn discard(&mut self, id: &str) {
        let _ = self.store.delete_run(id);
    }
    fn is_local_store(&self) -> bool {
        true
    }
}

/// The server, through the background uploader (what it cannot send is spooled).
pub struct UploadSink {
    uploader: Option<Uploader>,
    server: String,
}

impl UploadSink {
    pub fn new(uploader: Uploader, server: impl Into<String>) -> UploadSink {
        UploadSink {
            uploader: Some(uploader),
            server: server.into(),
        }
    }
}

impl RunSink for UploadSink {
    fn name(&self) -> String {
        format!("the server {}", self.server)
    }
    fn checkpoint(&mut self, rec: &RunRecord) -> Result<(), SinkError> {
        if let Some(u) = &self.uploader {
            u.handle().checkpoint(rec);
        }
        Ok(())
    }
    fn finish(&mut self, rec: &mut RunRecord, snap: &Snapshot) -> Result<Vec<String>, SinkError> {
        // Failures are the uploader's to report (once, with the spool's path); the record
        // carries them.
        Ok(self
            .uploader
            .take()
            .map(|u| u.finish(rec, snap))
            .unwrap_or_default())
    }
}

/// The final record as pretty JSON in a file (`wattprint run --json PATH`).
pub struct JsonFileSink {
    path: PathBuf,
}

impl JsonFileSink {
    pub fn new(path: impl Into<PathBuf>) -> JsonFileSink {
        JsonFileSink { path: path.into() }
    }
}

impl RunSink for JsonFileSink {
    fn name(&self) -> String {
        format!("the JSON file {}", self.path.display())
    }
    fn checkpoint(&mut self, _rec: &RunRecord) -> Result<(), SinkError> {
        Ok(())
    }
    fn finish(&mut self, rec: &mut RunRecord, _snap: &Snapshot) -> Result<Vec<String>, SinkError> {
        let text = serde_json::to_string_pretty(rec).map_err(SinkError::from_any)?;
        std::fs::write(&self.path, text + "\n")
            .map_err(|e| SinkError(format!("cannot write {}: {e}", self.path.display())))?;
        Ok(Vec::new())
    }
}

/// Sinks in order, each failure reported once per sink and phase.
pub(crate) struct Sinks {
    sinks: Vec<Box<dyn RunSink>>,
    checkpoint_failed: Vec<bool>,
    msgs: Messages,
}

impl Sinks {
    pub(crate) fn new(sinks: Vec<Box<dyn RunSink>>, msgs: Messages) -> Sinks {
        let n = sinks.len();
        Sinks {
            sinks,
            checkpoint_failed: vec![false; n],
            msgs,
        }
    }

    pub(crate) fn begin(&mut self, rec: &RunRecord) {
        for s in &mut self.sinks {
            if let Err(e) = s.begin(rec) {
                self.msgs
                    .warn(&format!("run not saved to {}: {e}", s.name()));
            }
        }
    }

    pub(crate) fn checkpoint(&mut self, rec: &RunRecord) {
        for (s, failed) in self.sinks.iter_mut().zip(self.checkpoint_failed.iter_mut()) {
            match s.checkpoint(rec) {
                Ok(()) => *failed = false,
                Err(e) if !*failed => {
                    *failed = true;
                    self.msgs
                        .warn(&format!("checkpoint not saved to {}: {e}", s.name()));
                }
                Err(_) => {}
            }
        }
    }

    pub(crate) fn discard(&mut self, id: &str) {
        for s in &mut self.sinks {
            s.discard(id);
        }
    }

    /// Every sink's final save. Returns the messages already shown and whether the local
    /// store kept the record. A sink that failed is reported as a loss (shown even when quiet).
    pub(crate) fn finish(&mut self, rec: &mut RunRecord, snap: &Snapshot) -> (Vec<String>, bool) {
        let mut shown = Vec::new();
        let mut saved_locally = false;
        for s in &mut self.sinks {
            match s.finish(rec, snap) {
                Ok(v) => {
                    shown.extend(v);
                    saved_locally |= s.is_local_store();
                }
                Err(e) => {
                    let msg = format!("run {} not saved to {}: {e}", rec.id, s.name());
                    self.msgs.loss(&msg);
                    shown.push(msg);
                }
            }
        }
        (shown, saved_locally)
    }
}
