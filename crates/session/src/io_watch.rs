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
    /// interval, 1 s to 5 s), from a thread of its own; with `None`, only when asked
    /// ([`IoWatch::sampler`]: each checkpoint, when nobody watches the run live).
    pub fn start(paths: HostPaths, root: u32, every: Option<Duration>) -> IoWatch {
        let tracker = Arc::new(Mutex::new(IoTracker::default()));
        let net_start = read_net_dev(&paths);
        let (stop, rx) = mpsc::channel::<()>();
        let (t2, p2) = (Arc::clone(&tracker), paths.clone());
        let thread = every.and_then(|every| {
            std::thread::Builder::new()
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
                .ok()
        });
        if thread.is_none() {
            // The first look at once, as the thread's would be.
            if let Ok(mut t) = tracker.lock() {
                t.sample(&paths, root);
            }
        }
        IoWatch {
            paths,
            root,
            tracker,
            net_start,
            stop,
            thread,
        }
    }

    /// A function that reads the tree each time it is called (for a watcher without a
    /// thread).
    pub fn sampler(&self) -> Box<dyn FnMut() + Send> {
        let (t, paths, root) = (Arc::clone(&self.tracker), self.paths.clone(), self.root);
        Box::new(move || {
            if let Ok(mut t) = t.lock() {
                t.sample(&paths, root);
            }
        })
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
