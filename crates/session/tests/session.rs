//! A session's whole life in-process, on a fake powercap/procfs host whose counters the test
//! sets: options to record, checkpoints and their cadence, limits with a pluggable stop, sinks
//! (one that fails), and a store that cannot be opened.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wattprint_core::record::{RunRecord, RunStatus};
use wattprint_core::sampler::Snapshot;
use wattprint_session::messages::{Level, Messages};
use wattprint_session::monitor::FlagStopper;
use wattprint_session::session::Prepared;
use wattprint_session::sink::{RunSink, SinkError};
use wattprint_store::store::{RunFilter, Store};

mod common;
use common::{eventually, finish, options, stored, FakeHost};

#[test]
fn a_whole_run_from_options_to_the_stored_record() {
    let h = FakeHost::new();
    let (msgs, seen) = Messages::collect();
    let s = Prepared::prepare(options(), h.ctx(msgs))
        .unwrap()
        .start(Vec::new());
    let id = s.run_id().to_string();
    // the first record exists before the work starts
    assert_eq!(stored(&h.home(), &id).status, RunStatus::Running);
    // 50 J on the package and 10 J on its DRAM, in steps a 100 ms read finds plausible
    // (≤ 50 W), each one read before the next; then an explicit checkpoint sees them
    for step in 1..=10 {
        h.set_j("intel-rapl:0", 1.0 + 5.0 * step as f64);
        h.set_j("intel-rapl:0:0", 1.0 + step as f64);
        eventually("the sampler reads the new counters", || {
            (s.watch().get().total_energy().0 - 6.0 * step as f64).abs() < 1e-6
        });
    }
    s.checkpoint();
    let running = stored(&h.home(), &id);
    assert_eq!(running.status, RunStatus::Running);
    assert!((running.energy_kwh.total.0 * 3.6e6 - 60.0).abs() < 1e-6);
    let done = finish(s);
    assert!(done.saved_locally);
    let rec = stored(&h.home(), &id);
    assert_eq!(rec.status, RunStatus::Completed);
    assert_eq!(rec.project, "tests");
    assert!((rec.energy_kwh.total.0 * 3.6e6 - 60.0).abs() < 1e-6);
    // 60 J at 100 g/kWh, PUE 1: 60 / 3.6e6 × 100 g
    assert!((rec.emissions_kg.total * 1e3 - 60.0 / 3.6e6 * 100.0).abs() < 1e-12);
    assert_eq!(rec.id, done.record.id);
    assert!(rec.tracker.unwrap().cpu_s >= 0.0);
    assert!(!seen.lock().unwrap().iter().any(|(l, _)| *l == Level::Loss));
    let all = Store::open(&h.home().join("wattprint.db"))
        .unwrap()
        .list_runs(&RunFilter::default())
        .unwrap();
    assert_eq!(all.len(), 1);
}

/// Counts what it is given; fails its final save when asked to.
struct Counting {
    checkpoints: Arc<AtomicU32>,
    fail_finish: bool,
}

impl RunSink for Counting {
    fn name(&self) -> String {
        "the counting sink".into()
    }
    fn checkpoint(&mut self, _rec: &RunRecord) -> Result<(), SinkError> {
        self.checkpoints.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn finish(&mut self, _rec: &mut RunRecord, _s: &Snapshot) -> Result<Vec<String>, SinkError> {
        if self.fail_finish {
            Err(SinkError("disk full".into()))
        } else {
            Ok(Vec::new())
        }
    }
}

#[test]
fn the_session_owns_the_checkpoint_cadence() {
    let h = FakeHost::new();
    let n = Arc::new(AtomicU32::new(0));
    let mut o = options();
    o.checkpoint_every = Some(Duration::from_millis(100));
    let s = Prepared::prepare(o, h.ctx(Messages::discard()))
        .unwrap()
        .start(vec![Box::new(Counting {
            checkpoints: Arc::clone(&n),
            fail_finish: false,
        })]);
    eventually("three checkpoints", || n.load(Ordering::SeqCst) >= 3);
    let done = finish(s);
    assert!(done.saved_locally);
}

#[test]
fn a_failing_sink_is_reported_even_when_quiet_and_the_others_keep_the_record() {
    let h = FakeHost::new();
    let (msgs, seen) = Messages::collect();
    let s = Prepared::prepare(options(), h.ctx(msgs.quiet(true)))
        .unwrap()
        .start(vec![Box::new(Counting {
            checkpoints: Arc::new(AtomicU32::new(0)),
            fail_finish: true,
        })]);
    let id = s.run_id().to_string();
    let done = finish(s);
    assert!(done.saved_locally, "the store still has it");
    assert_eq!(stored(&h.home(), &id).status, RunStatus::Completed);
    let seen = seen.lock().unwrap();
    let loss: Vec<_> = seen.iter().filter(|(l, _)| *l == Level::Loss).collect();
    assert_eq!(loss.len(), 1, "{seen:?}");
    assert!(loss[0].1.contains("the counting sink") && loss[0].1.contains("disk full"));
    assert!(done.shown.iter().any(|m| m.contains("disk full")));
}

#[test]
fn an_unusable_store_is_said_and_the_json_file_still_has_the_record() {
    let h = FakeHost::new();
    // WATTPRINT_HOME is a file: no store can be opened under it
    std::fs::write(h.home(), "not a directory").unwrap();
    let (msgs, seen) = Messages::collect();
    let mut p = Prepared::prepare(options(), h.ctx(msgs)).unwrap();
    let json = h.dir.path().join("run.json");
    p.json_file(&json);
    let s = p.start(Vec::new());
    let done = finish(s);
    assert!(!done.saved_locally);
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|(l, m)| *l == Level::Loss && m.contains("local store unavailable")));
    let rec: RunRecord = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert_eq!(rec.id, done.record.id);
}

#[test]
fn a_cap_stops_the_work_through_the_pluggable_stopper() {
    let h = FakeHost::new();
    let mut o = options();
    o.limits.max_duration = Some(Duration::from_millis(150));
    o.limits.grace = Duration::from_secs(30);
    let mut s = Prepared::prepare(o, h.ctx(Messages::discard()))
        .unwrap()
        .start(Vec::new());
    let flag = Arc::new(AtomicBool::new(false));
    s.attach(std::process::id(), Box::new(FlagStopper(Arc::clone(&flag))));
    eventually("the stop flag is raised", || flag.load(Ordering::SeqCst));
    let done = finish(s);
    assert_eq!(done.record.status, RunStatus::StoppedByCap);
    let st = done.record.stopped.unwrap();
    assert!(st.at_s >= 0.15, "{}", st.at_s);
    assert!(!st.killed_after_grace);
}

#[test]
fn option_errors_stop_before_anything_starts() {
    let h = FakeHost::new();
    let mut o = options();
    o.limits.budget_kg = Some(f64::NAN);
    let e = Prepared::prepare(o, h.ctx(Messages::discard()))
        .err()
        .unwrap();
    let oe = e
        .downcast_ref::<wattprint_session::options::OptionError>()
        .unwrap();
    assert_eq!(oe.field, "budget_kg");
    assert!(!h.home().join("wattprint.db").exists());
}

/// Two more sampler reads: the latest power is that of an interval without change.
fn settle(s: &wattprint_session::session::Session) {
    let n = s.watch().get().samples;
    eventually("two more reads", || s.watch().get().samples >= n + 2);
}

#[test]
fn windows_stages_and_work_units_are_priced_and_kept_with_the_run() {
    use wattprint_core::segments::SegmentKind;
    let h = FakeHost::new();
    let s = Prepared::prepare(options(), h.ctx(Messages::discard()))
        .unwrap()
        .start(Vec::new());
    let id = s.run_id().to_string();
    let seg = s.segments();
    // 6 J (5 J package, 1 J DRAM) in one read, then quiet
    let step = |k: f64| {
        h.set_j("intel-rapl:0", 1.0 + 5.0 * k);
        h.set_j("intel-rapl:0:0", 1.0 + k);
        eventually("the sampler reads the step", || {
            (s.watch().get().total_energy().0 - 6.0 * k).abs() < 1e-6
        });
        settle(&s);
    };
    settle(&s);
    let snap = || s.watch().get();
    seg.lock()
        .unwrap()
        .begin("outer", SegmentKind::Window, &snap())
        .unwrap();
    step(1.0);
    seg.lock()
        .unwrap()
        .begin("training", SegmentKind::Stage, &snap())
        .unwrap();
    // a name already open is refused; an unknown one cannot end
    assert!(seg
        .lock()
        .unwrap()
        .begin("outer", SegmentKind::Window, &snap())
        .is_err());
    assert!(seg.lock().unwrap().end("nope", &snap()).is_err());
    step(2.0);
    seg.lock().unwrap().add_work(100.0, "tokens").unwrap();
    assert!(seg.lock().unwrap().add_work(1.0, "images").is_err());
    assert!(seg.lock().unwrap().add_work(f64::NAN, "tokens").is_err());
    let training = seg.lock().unwrap().end("training", &snap()).unwrap();
    assert!(
        (training.energy_kwh * 3.6e6 - 6.0).abs() < 1e-4,
        "{training:?}"
    );
    let w = training.work.clone().unwrap();
    assert_eq!((w.units, w.j_per_unit), (100.0, Some(0.06)));
    let outer = seg.lock().unwrap().end("outer", &snap()).unwrap();
    assert!((outer.energy_kwh * 3.6e6 - 12.0).abs() < 1e-4, "{outer:?}");
    // live reads agree with the sampler
    assert!((s.live().energy_kwh * 3.6e6 - 12.0).abs() < 1e-6);
    // a window without work, still open at the end
    seg.lock()
        .unwrap()
        .begin("steady", SegmentKind::Window, &snap())
        .unwrap();
    s.report_progress(1.0, 4.0).unwrap();
    assert!(s.report_progress(5.0, 4.0).is_err());
    let done = finish(s);
    let rec = stored(&h.home(), &id);
    assert_eq!(rec.segments, done.record.segments);
    let segs = rec.segments.unwrap();
    segs.check().unwrap();
    let names: Vec<_> = segs.windows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["training", "outer", "steady"]);
    assert!(segs.windows[2].open_at_end);
    assert_eq!(segs.windows[2].work.as_ref().unwrap().j_per_unit, None);
    assert_eq!(segs.energy_by_stage().len(), 1);
    // the whole run: 12 J for 100 tokens
    assert_eq!(segs.work.unwrap().j_per_unit, Some(0.12));
}
