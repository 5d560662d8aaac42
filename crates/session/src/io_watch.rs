//! The run's I/O, watched from a thread of its own: the job's process tree read every
//! interval or checkpoint (`wattprint_core::io`), the host's network counters at attach and
//! at the end.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use wattprint_core::host::HostPaths;
use wattprint_core::io::{io_record, read_net_dev, IoRecord, IoTracker};

pub struct IoWatch {
    paths: HostPaths,
    root: u32,
    tracker: Arc<Mutex<IoTracker>>,
    net_start: Option<(u64, u64)>,
    stop: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl IoWatch {
    /// Start reading `root`'s tree `every` so often (the session's choice: each sampling
    /// interval, 1 s to 5 s, or each checkpoint when nobody watches the run live).
    pub fn start(paths: HostPaths, root: u32, every: Duration) -> IoWatch {
        let tracker = Arc::new(Mutex::new(IoTracker::default()));
        let net_start = read_net_dev(&paths);
        let (stop, rx) = mpsc::channel::<()>();
        let (t2, p2) = (Arc::clone(&tracker), paths.clone());
        let thread = std::thread::Builder::new()
            .name("wattprint-io".into())
            .spawn(move || loop {
                if let Ok(mut t) = t2.lock() {
                    t.sample(&p2, root);
                }
                match rx.recv_timeout(every) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    _ => return,
                }
            })
            .ok();
        IoWatch {
            paths,
            root,
            tracker,
            net_start,
            stop,
            thread,
        }
    }

    /// Read the tree now (the job has exited but is not reaped yet: its last figures).
    pub fn sample_now(&self) {
        if let Ok(mut t) = self.tracker.lock() {
            t.sample(&self.paths, self.root);
        }
    }

    /// Stop watching; the run's I/O valued at `pue` and `g_per_kwh`.
    pub fn finish(mut self, pue: f64, g_per_kwh: f64) -> IoRecord {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.sample_now();
        let net_end = read_net_dev(&self.paths);
        match self.tracker.lock() {
            Ok(t) => io_record(&t, self.net_start, net_end, pue, g_per_kwh),
            Err(p) => io_record(&p.into_inner(), self.net_start, net_end, pue, g_per_kwh),
        }
    }
}
