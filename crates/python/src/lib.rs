//! `wattprint._native`: the Rust session driven from Python.
//!
//! The Python package (`python/wattprint`) is the front end: it captures `os.environ`, names the
//! options, and renders messages as Python warnings. This module holds one
//! [`wattprint_session::session::Session`]: the sampler runs in a Rust thread, and every call
//! that waits on it (start, checkpoint, stop) releases the GIL so the Python threads keep
//! running meanwhile.

mod options;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wattprint_core::env::Env;
use wattprint_core::record::{Ending, RunStatus};
use wattprint_core::segments::SegmentKind;
use wattprint_session::messages::{Level, Messages};
use wattprint_session::monitor::{FlagStopper, Stopper};
use wattprint_session::options::OptionError;
use wattprint_session::session::{Prepared, SelfUsage, Session, SessionContext};

type Collected = Arc<Mutex<Vec<(String, String)>>>;

/// How a cap or budget stops Python code: a flag the code checks at its next step, and with
/// `signal`, the stop signal sent to this process as `wattprint run` sends it to its job.
struct PyStopper {
    flag: FlagStopper,
    signal_pid: Option<u32>,
}

impl Stopper for PyStopper {
    fn stop(&mut self, signal: i32) {
        self.flag.stop(signal);
        if let Some(pid) = self.signal_pid.and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) with a pid and a signal number has no memory effects.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }
    fn kill(&mut self) {
        // Python code is never killed by its own tracker: the flag stays raised.
        self.flag.kill();
    }
    fn ended(&self) -> bool {
        false
    }
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Info => "info",
        Level::Warning => "warning",
        Level::Loss => "loss",
        Level::Debug => "debug",
    }
}

fn runtime(e: anyhow::Error) -> PyErr {
    match e.downcast_ref::<OptionError>() {
        Some(oe) => options::value_error(oe),
        None => PyRuntimeError::new_err(format!("{e:#}")),
    }
}

/// One measured session (the `Tracker`'s engine).
#[pyclass(module = "wattprint._native")]
struct NativeSession {
    session: Mutex<Option<Session>>,
    stop_flag: Arc<AtomicBool>,
    messages: Collected,
    run_id: String,
}

impl NativeSession {
    fn with<T>(&self, f: impl FnOnce(&Session) -> T) -> PyResult<T> {
        let g = self
            .session
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the session is poisoned"))?;
        match g.as_ref() {
            Some(s) => Ok(f(s)),
            None => Err(PyRuntimeError::new_err("the tracker is stopped")),
        }
    }
}

#[pymethods]
impl NativeSession {
    /// Prepare and start a session in the environment `env` (a copy of `os.environ`), measuring
    /// process `pid`. `on_limit`: `"raise"` (a flag the code checks) or `"signal"` (also the
    /// stop signal to `pid`).
    #[new]
    #[pyo3(signature = (env, options, pid, on_limit="raise"))]
    fn new(
        py: Python<'_>,
        env: HashMap<String, String>,
        options: &Bound<'_, PyDict>,
        pid: u32,
        on_limit: &str,
    ) -> PyResult<NativeSession> {
        let opts = options::run_options(options)?;
        let signal_pid = match on_limit {
            "raise" => None,
            "signal" => Some(pid),
            other => {
                return Err(PyValueError::new_err(format!(
                    "on_limit= {other}: must be \"raise\" or \"signal\""
                )))
            }
        };
        let collected: Collected = Arc::new(Mutex::new(Vec::new()));
        let c = Arc::clone(&collected);
        let msgs = Messages::new(move |l, text| {
            if let Ok(mut v) = c.lock() {
                // bounded: a long run's repeated messages cannot grow without end
                if v.len() < 10_000 {
                    v.push((level_name(l).to_string(), text.to_string()));
                }
            }
        });
        let env = Env::from_pairs(env);
        let flag = Arc::new(AtomicBool::new(false));
        let stopper = PyStopper {
            flag: FlagStopper(Arc::clone(&flag)),
            signal_pid,
        };
        let session = py
            .allow_threads(move || -> anyhow::Result<Session> {
                let ctx = SessionContext::from_env(env, msgs);
                let mut s = Prepared::prepare(opts, ctx)?.start(Vec::new());
                s.attach(pid, Box::new(stopper));
                Ok(s)
            })
            .map_err(runtime)?;
        Ok(NativeSession {
            run_id: session.run_id().to_string(),
            session: Mutex::new(Some(session)),
            stop_flag: flag,
            messages: collected,
        })
    }

    #[getter]
    fn run_id(&self) -> String {
        self.run_id.clone()
    }

    /// Whether a cap or budget asked the work to stop.
    fn stop_requested(&self) -> bool {
        self.stop_flag.load(Ordering::SeqCst)
    }

    /// Messages since the last call: `(level, text)`.
    fn take_messages(&self) -> Vec<(String, String)> {
        self.messages
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    /// `(elapsed_s, energy_kwh, emissions_kg, power_w)` now.
    fn live(&self) -> PyResult<(f64, f64, f64, f64)> {
        self.with(|s| {
            let l = s.live();
            (l.elapsed_s, l.energy_kwh, l.emissions_kg, l.power_w)
        })
    }

    /// The limit watcher's state as JSON: events so far, the prediction, the stop.
    fn limits_json(&self) -> PyResult<String> {
        self.with(|s| {
            let st = s.monitor_state();
            let st = st.lock().map(|g| g.clone()).unwrap_or_default();
            serde_json::json!({
                "events": st.events,
                "prediction": st.prediction,
                "stopped": st.stopped,
            })
            .to_string()
        })
    }

    /// Save a running record to the store (and server) now.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        py.allow_threads(|| self.with(|s| s.checkpoint()))
    }

    /// Open a window (`kind` "window") or a stage (`kind` "stage").
    fn begin_window(&self, name: &str, kind: &str) -> PyResult<()> {
        let kind = match kind {
            "stage" => SegmentKind::Stage,
            _ => SegmentKind::Window,
        };
        self.with(|s| {
            let snap = s.watch().get();
            let seg = s.segments();
            let mut g = seg.lock().map_err(|_| "poisoned".to_string())?;
            g.begin(name, kind, &snap)
        })?
        .map_err(PyValueError::new_err)
    }

    /// Close the window `name`; its measurement as JSON.
    fn end_window(&self, name: &str) -> PyResult<String> {
        let seg = self
            .with(|s| {
                let snap = s.watch().get();
                let seg = s.segments();
                let mut g = seg.lock().map_err(|_| "poisoned".to_string())?;
                g.end(name, &snap)
            })?
            .map_err(PyValueError::new_err)?;
        serde_json::to_string(&seg).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// `n` units of work (tokens, samples, ...) done.
    fn add_work(&self, n: f64, unit: &str) -> PyResult<()> {
        self.with(|s| {
            let seg = s.segments();
            let mut g = seg.lock().map_err(|_| "poisoned".to_string())?;
            g.add_work(n, unit)
        })?
        .map_err(PyValueError::new_err)
    }

    /// The work saved a checkpoint now (a failure later discards only what follows).
    fn checkpoint_saved(&self) -> PyResult<()> {
        self.with(|s| s.checkpoint_saved())
    }

    /// Progress `done` of `total`, for the prediction.
    fn progress(&self, done: f64, total: f64) -> PyResult<()> {
        self.with(|s| s.report_progress(done, total))?
            .map_err(|e| options::value_error(&e))
    }

    /// Stop measuring and save the run; the final record as JSON. The GIL is released while
    /// the sampler thread is joined and the sinks write.
    #[pyo3(signature = (failed=false, startup_ms=0.0))]
    fn stop(&self, py: Python<'_>, failed: bool, startup_ms: f64) -> PyResult<(String, bool)> {
        let s = self
            .session
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the session is poisoned"))?
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("the tracker is already stopped"))?;
        let done = py.allow_threads(move || {
            s.finish(
                Ending {
                    ended_at: Some(wattprint_store::clock::now_rfc3339()),
                    exit_code: None,
                    signal: None,
                },
                if failed {
                    RunStatus::Failed
                } else {
                    RunStatus::Completed
                },
                Vec::new(),
                SelfUsage::SamplerThread {
                    startup_ms: if startup_ms.is_finite() && startup_ms >= 0.0 {
                        startup_ms
                    } else {
                        0.0
                    },
                },
            )
        });
        let json = serde_json::to_string(&done.record)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        Ok((json, done.saved_locally))
    }
}

/// The option names a `Tracker` may pass.
#[pyfunction]
fn option_names() -> Vec<&'static str> {
    options::KNOWN.to_vec()
}

/// A run record (JSON) as CodeCarbon's `emissions.csv`: the header line, then its row.
#[pyfunction]
fn codecarbon_csv(record_json: &str) -> PyResult<String> {
    let rec: wattprint_core::record::RunRecord = serde_json::from_str(record_json)
        .map_err(|e| PyValueError::new_err(format!("not a run record: {e}")))?;
    let mut out = Vec::new();
    wattprint_store::interchange::write_codecarbon(&mut out, &[rec]).map_err(runtime)?;
    String::from_utf8(out).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// CodeCarbon's ISO 3166-1 alpha-3 country code as the alpha-2 wattprint takes (`FRA` → `FR`).
#[pyfunction]
fn iso3_to_iso2(code: &str) -> Option<&'static str> {
    wattprint_store::interchange::iso3_to_iso2(code)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeSession>()?;
    m.add_function(wrap_pyfunction!(option_names, m)?)?;
    m.add_function(wrap_pyfunction!(codecarbon_csv, m)?)?;
    m.add_function(wrap_pyfunction!(iso3_to_iso2, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
