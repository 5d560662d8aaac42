//! A quiet run — nobody watches it live, no cap or budget, as every batch job — has its limit
//! watcher and I/O reader look at each checkpoint from the checkpoint thread, with no thread of
//! their own to wake; a run watched live has both threads. Alone in its test binary: it counts
//! this process's threads by name.
#![allow(clippy::unwrap_used)]

use std::time::Duration;
use wattprint_session::messages::Messages;
use wattprint_session::monitor::FlagStopper;
use wattprint_session::session::Prepared;

mod common;
use common::{eventually, finish, options, stored, FakeHost};

/// The names of this process's threads.
fn threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

/// The monitor and I/O threads of this process, once every thread has taken its name (a
/// thread just spawned still bears its parent's, this test's, until it names itself).
fn watchers() -> (usize, usize) {
    let me: String = std::thread::current()
        .name()
        .unwrap_or_default()
        .chars()
        .take(15)
        .collect();
    let mut t = threads();
    eventually("every thread named", || {
        t = threads();
        t.iter().filter(|n| **n == me).count() == 1
    });
    (
        t.iter()
            .filter(|n| n.starts_with("wattprint-monit"))
            .count(),
        t.iter().filter(|n| n.starts_with("wattprint-io")).count(),
    )
}

#[test]
fn a_quiet_runs_watchers_look_at_its_checkpoints_without_threads_of_their_own() {
    let h = FakeHost::new();
    for live in [true, false] {
        let mut o = options();
        o.live = live;
        o.checkpoint_every = Some(Duration::from_millis(100));
        let mut s = Prepared::prepare(o, h.ctx(Messages::discard()))
            .unwrap()
            .start(Vec::new());
        s.attach(std::process::id(), Box::new(FlagStopper::default()));
        let expected = if live { (1, 1) } else { (0, 0) };
        assert_eq!(watchers(), expected, "live {live}: {:?}", threads());
        // The watcher looks either way: the progress reported reaches the checkpointed record
        // as a prediction (for the quiet run, from the checkpoint thread alone).
        let id = s.run_id().to_string();
        let home = h.home();
        let mut done = 0.0;
        eventually("a checkpoint with a prediction", || {
            done = (done + 1.0f64).min(99.0);
            s.report_progress(done, 100.0).unwrap();
            s.checkpoint();
            stored(&home, &id).prediction.is_some()
        });
        let rec = finish(s).record;
        assert_eq!(watchers(), (0, 0), "{:?}", threads());
        assert!(rec.prediction.is_some(), "live {live}: {rec:?}");
        assert!(rec.io.is_some(), "live {live}");
    }
}
