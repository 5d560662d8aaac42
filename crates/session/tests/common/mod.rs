//! What the session tests share: a fake powercap/procfs host whose counters a test sets, the
//! options of a measured run, its end, and a bounded wait.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wattprint_core::env::Env;
use wattprint_core::record::{Ending, RunRecord, RunStatus};
use wattprint_session::messages::Messages;
use wattprint_session::options::{CarbonOptions, RunOptions};
use wattprint_session::session::{SelfUsage, SessionContext};
use wattprint_store::store::Store;

/// One RAPL package and its DRAM, 4 CPUs, 16 GB; a home directory for the store.
pub struct FakeHost {
    pub dir: tempfile::TempDir,
}

impl FakeHost {
    pub fn new() -> FakeHost {
        let h = FakeHost {
            dir: tempfile::tempdir().unwrap(),
        };
        for (zone, name) in [("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "dram")] {
            let z = h.sys().join("class/powercap").join(zone);
            std::fs::create_dir_all(&z).unwrap();
            std::fs::write(z.join("name"), format!("{name}\n")).unwrap();
            std::fs::write(z.join("energy_uj"), "1000000\n").unwrap();
            std::fs::write(z.join("max_energy_range_uj"), "262143328850\n").unwrap();
        }
        let p = h.dir.path().join("proc");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("stat"),
            "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 25 0 25 250 0 0 0 0 0 0\n",
        )
        .unwrap();
        std::fs::write(
            p.join("meminfo"),
            "MemTotal:       16000000 kB\nMemFree:         8000000 kB\nMemAvailable:    8000000 kB\n",
        )
        .unwrap();
        std::fs::write(
            p.join("cpuinfo"),
            "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\nphysical id\t: 0\n\n",
        )
        .unwrap();
        h
    }
    pub fn sys(&self) -> PathBuf {
        self.dir.path().join("sys")
    }
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    /// Set a zone's cumulative counter, in joules (atomically, as the kernel's file reads).
    pub fn set_j(&self, zone: &str, joules: f64) {
        let f = self
            .sys()
            .join("class/powercap")
            .join(zone)
            .join("energy_uj");
        let tmp = f.with_extension("tmp");
        std::fs::write(&tmp, format!("{}\n", (joules * 1e6).round() as u64)).unwrap();
        std::fs::rename(tmp, f).unwrap();
    }
    pub fn env(&self) -> Env {
        Env::from_pairs([
            ("WATTPRINT_SYSFS_ROOT", self.sys().display().to_string()),
            (
                "WATTPRINT_PROCFS_ROOT",
                self.dir.path().join("proc").display().to_string(),
            ),
            ("WATTPRINT_HOME", self.home().display().to_string()),
            (
                "WATTPRINT_RUNTIME_DIR",
                self.dir.path().join("run").display().to_string(),
            ),
            (
                "WATTPRINT_NVML_LIBRARY",
                self.dir.path().join("none.so").display().to_string(),
            ),
            (
                "WATTPRINT_SYSTEM_CONFIG",
                self.dir.path().join("none.toml").display().to_string(),
            ),
        ])
    }
    pub fn ctx(&self, msgs: Messages) -> SessionContext {
        SessionContext::from_env(self.env(), msgs)
    }
}

pub fn options() -> RunOptions {
    RunOptions {
        project: Some("tests".into()),
        interval: Some(Duration::from_millis(100)),
        carbon: CarbonOptions {
            location: Some("FR".into()),
            intensity: Some(100.0),
            pue: Some(1.0),
            ..Default::default()
        },
        no_embodied: true,
        command: vec!["in-process".into()],
        ..Default::default()
    }
}

pub fn finish(s: wattprint_session::session::Session) -> wattprint_session::session::Finished {
    s.finish(
        Ending {
            ended_at: Some("2026-12-04T00:00:00Z".into()),
            exit_code: Some(0),
            signal: None,
        },
        RunStatus::Completed,
        Vec::new(),
        SelfUsage::SamplerThread { startup_ms: 0.0 },
    )
}

pub fn stored(home: &Path, id: &str) -> RunRecord {
    Store::open(&home.join("wattprint.db"))
        .unwrap()
        .get_run(id)
        .unwrap()
        .unwrap()
}

/// Poll `f` until it holds (the deadline is a failure bound, not a timing assumption).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
