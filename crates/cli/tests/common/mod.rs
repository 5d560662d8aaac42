//! Shared helpers for the CLI tests: a fake host (sysfs/procfs trees) and a driver that
//! advances its RAPL counters at a known power.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wattprint"))
}

/// A fake machine: one RAPL package + DRAM, 4 CPUs, 16 GB; its own store.
pub struct FakeHost {
    pub dir: tempfile::TempDir,
}

impl FakeHost {
    pub fn new() -> FakeHost {
        // tmpfs when there is one: a rename on a disk file system can wait behind other
        // tests' fsyncs, and the fake counters must not lag for reasons real ones never do.
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir())
        } else {
            tempfile::tempdir()
        }
        .unwrap();
        let h = FakeHost { dir };
        let pc = h.sys().join("class/powercap");
        for (zone, name, max) in [
            ("intel-rapl:0", "package-0", "262143328850"),
            ("intel-rapl:0:0", "dram", "65712999613"),
        ] {
            let z = pc.join(zone);
            std::fs::create_dir_all(&z).unwrap();
            std::fs::write(z.join("name"), format!("{name}\n")).unwrap();
            std::fs::write(z.join("energy_uj"), "1000000\n").unwrap();
            std::fs::write(z.join("max_energy_range_uj"), format!("{max}\n")).unwrap();
        }
        std::fs::create_dir_all(h.proc()).unwrap();
        std::fs::write(
            h.proc().join("stat"),
            "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 25 0 25 250 0 0 0 0 0 0\ncpu1 25 0 25 250 0 0 0 0 0 0\ncpu2 25 0 25 250 0 0 0 0 0 0\ncpu3 25 0 25 250 0 0 0 0 0 0\n",
        )
        .unwrap();
        std::fs::write(
            h.proc().join("meminfo"),
            "MemTotal:       16000000 kB\nMemFree:         8000000 kB\nMemAvailable:    8000000 kB\n",
        )
        .unwrap();
        std::fs::write(
            h.proc().join("cpuinfo"),
            "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\nphysical id\t: 0\n\n",
        )
        .unwrap();
        std::fs::create_dir_all(h.home()).unwrap();
        h
    }
    pub fn sys(&self) -> PathBuf {
        self.dir.path().join("sys")
    }
    pub fn proc(&self) -> PathBuf {
        self.dir.path().join("proc")
    }
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    /// The runtime directory (host ledger) of this fake host.
    pub fn runtime(&self) -> PathBuf {
        self.dir.path().join("run")
    }
    pub fn db(&self) -> PathBuf {
        self.home().join("wattprint.db")
    }
    pub fn energy_file(&self, zone: &str) -> PathBuf {
        self.sys()
            .join("class/powercap")
            .join(zone)
            .join("energy_uj")
    }
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("WATTPRINT_SYSFS_ROOT", self.sys())
            .env("WATTPRINT_PROCFS_ROOT", self.proc())
            .env("WATTPRINT_HOME", self.home())
            // this fake host's own runtime directory: its host ledger is no other test's
            .env("WATTPRINT_RUNTIME_DIR", self.runtime())
            .env(
                "WATTPRINT_NVML_LIBRARY",
                self.dir.path().join("no-libnvidia-ml.so"),
            )
            .env_remove("WATTPRINT_LOCATION")
            .env_remove("WATTPRINT_PROJECT")
            .env_remove("CUDA_VISIBLE_DEVICES")
            .env_remove("WATTPRINT_AMDSMI_LIBRARY")
            .env_remove("WATTPRINT_ROCM_SMI_LIBRARY")
            .env_remove("WATTPRINT_LEVEL_ZERO_LIBRARY")
            .env_remove("ROCR_VISIBLE_DEVICES")
            .env_remove("HIP_VISIBLE_DEVICES")
            .env_remove("ZE_AFFINITY_MASK");
        c
    }
    /// `wattprint ARGS`, asserting success; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "wattprint {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Drives the fake package and DRAM counters at `power(t)` watts until dropped.
pub struct Driver {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Longest time between two counter writes so far, in microseconds: how stale the fake
    /// counters could have been when the tracker read them.
    max_gap_us: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Driver {
    /// `pkg(t)` and `dram(t)`: power in watts at `t` seconds; energy is their integral.
    pub fn start(
        h: &FakeHost,
        pkg: impl Fn(f64) -> f64 + Send + 'static,
        dram: impl Fn(f64) -> f64 + Send + 'static,
    ) -> Driver {
        let pkg_file = h.energy_file("intel-rapl:0");
        let dram_file = h.energy_file("intel-rapl:0:0");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let max_gap_us = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let gap2 = max_gap_us.clone();
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            let (mut e_pkg, mut e_dram, mut last) = (1e6, 1e6, 0.0);
            while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
                let s = t0.elapsed().as_secs_f64();
                let dt = s - last;
                gap2.fetch_max((dt * 1e6) as u64, std::sync::atomic::Ordering::SeqCst);
                e_pkg += pkg(s) * 1e6 * dt;
                e_dram += dram(s) * 1e6 * dt;
                last = s;
                let write = |p: &Path, uj: f64| {
                    let tmp = p.with_extension("tmp");
                    std::fs::write(&tmp, format!("{}\n", uj as u64)).unwrap();
                    std::fs::rename(&tmp, p).unwrap();
                };
                write(&pkg_file, e_pkg);
                write(&dram_file, e_dram);
                std::thread::sleep(Duration::from_millis(2));
            }
            let tail = t0.elapsed().as_secs_f64() - last;
            gap2.fetch_max((tail * 1e6) as u64, std::sync::atomic::Ordering::SeqCst);
        });
        Driver {
            stop,
            max_gap_us,
            thread: Some(thread),
        }
    }

    /// Stops the driver; the longest gap between its writes (including the final one, so a
    /// driver starved at the end of a run shows it).
    pub fn finish(mut self) -> Duration {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        Duration::from_micros(self.max_gap_us.load(std::sync::atomic::Ordering::SeqCst))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Driver {
    /// Constant package and DRAM power.
    pub fn constant(h: &FakeHost, pkg_w: f64, dram_w: f64) -> Driver {
        Driver::start(h, move |_| pkg_w, move |_| dram_w)
    }
}

pub fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}
