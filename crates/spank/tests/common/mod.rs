//! The real one-node Slurm of scripts/slurm-up.sh, as the tests use it: its directory, the
//! fake powercap host the plugin measures (driven explicitly: energy is added, never paced by
//! time), the host ledger's published state, the site store, and jobs that wait for a file.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(90);

/// One test at a time: they share the cluster, its fake counters and its ledger.
static SERIAL: Mutex<()> = Mutex::new(());

pub struct Cluster {
    pub dir: PathBuf,
    pub tmp: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

/// The workspace's target directory (the plugin and the `wattprint` binary are built there).
pub fn target_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) if Path::new(&t).is_absolute() => PathBuf::from(t),
        Some(t) => root.join(t),
        None => root.join("target"),
    }
}

/// The plugin the test cluster loads (`plugstack.conf` names `<target>/debug/`). `cargo test`
/// builds the cdylib in `debug/deps/` and, unlike `cargo build`, does not copy it up: the
/// build under test is put there (atomically) whenever it is newer than what is there.
pub fn plugin_path() -> PathBuf {
    let up = target_dir().join("debug/libwattprint_spank.so");
    let built = target_dir().join("debug/deps/libwattprint_spank.so");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let Some(b) = modified(&built) {
        if modified(&up).is_none_or(|u| u < b) {
            let tmp = up.with_extension(format!(
                "so.{}.{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::copy(&built, &tmp).unwrap();
            std::fs::rename(&tmp, &up).unwrap();
        }
    }
    up
}

pub fn wattprint_bin() -> PathBuf {
    let p = target_dir().join("debug/wattprint");
    assert!(
        p.exists(),
        "{} not built: `cargo test --workspace` builds it (alone: `cargo build -p wattprint` first)",
        p.display()
    );
    p
}

impl Cluster {
    /// The running cluster; a test fails (never skips) without one.
    pub fn get() -> Cluster {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let dir = std::env::var_os("WATTPRINT_SLURM_DIR").map(PathBuf::from);
        let ok = std::env::var("WATTPRINT_TEST_SLURM").as_deref() == Ok("1");
        let dir = match dir {
            Some(d) if ok && d.join("etc/slurm.conf").exists() => d,
            _ => panic!(
                "no Slurm cluster for the SPANK plugin's tests: `source scripts/slurm-up.sh` first (scripts/test.sh and CI do), or see why it could not start in its output"
            ),
        };
        let plugstack = std::fs::read_to_string(dir.join("etc/plugstack.conf")).unwrap();
        assert!(
            plugstack.contains(&plugin_path().display().to_string()),
            "the cluster loads another plugin than this build's {}: {plugstack}",
            plugin_path().display()
        );
        assert!(plugin_path().exists());
        let tmp = tempfile::Builder::new()
            .prefix("wattprint-spank-test.")
            .tempdir_in("/tmp")
            .unwrap();
        let c = Cluster {
            dir,
            tmp,
            _serial: serial,
        };
        // No participant of an earlier test is left on the node.
        c.wait_state("an empty host ledger", |s| {
            s["accounts"].as_object().is_none_or(|a| a.is_empty())
        });
        c
    }

    pub fn t(&self) -> &Path {
        self.tmp.path()
    }

    pub fn site(&self) -> PathBuf {
        self.dir.join("site")
    }

    /// A Slurm client command with this cluster's configuration.
    pub fn slurm(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("SLURM_CONF", self.dir.join("etc/slurm.conf"))
            .current_dir(self.t());
        c
    }

    /// `sbatch --parsable` of `script` (its output in `out`): the job id.
    pub fn sbatch(&self, script: &str, out: &Path) -> u32 {
        let file = self.t().join(format!(
            "job-{}.sh",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::write(&file, format!("#!/bin/sh\n{script}\n")).unwrap();
        let o = self
            .slurm("sbatch")
            .args(["--parsable", "-o"])
            .arg(out)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "sbatch: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .split(';')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn powercap(&self, zone: &str) -> PathBuf {
        self.dir
            .join("fakehost/sys/class/powercap")
            .join(zone)
            .join("energy_uj")
    }

    /// Add `joules` to the fake host's package counter (DRAM unchanged), at most 200 J
    /// between two of the ledger's readings (the fake 10 kW package makes that plausible at
    /// any reading interval over 10 ms): each step waits for the reader to have read it.
    pub fn add_energy(&self, joules: f64) {
        let p = self.powercap("intel-rapl:0");
        let mut left = joules;
        while left > 0.0 {
            let step = left.min(200.0);
            let seq = self.state().and_then(|s| s["seq"].as_u64()).unwrap_or(0);
            let now: f64 = std::fs::read_to_string(&p).unwrap().trim().parse().unwrap();
            let tmp = p.with_extension("tmp");
            std::fs::write(&tmp, format!("{}\n", (now + step * 1e6).round() as u64)).unwrap();
            std::fs::rename(&tmp, &p).unwrap();
            self.wait_state("a reading of the added energy", |s| {
                s["seq"].as_u64().unwrap_or(0) > seq + 1
            });
            left -= step;
        }
    }

    /// The ledger's newest published state.
    pub fn state(&self) -> Option<serde_json::Value> {
        let mut best: Option<serde_json::Value> = None;
        for host in std::fs::read_dir(self.dir.join("run/wattprint"))
            .ok()?
            .flatten()
        {
            for f in std::fs::read_dir(host.path()).ok()?.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if !(name.starts_with("state-") && name.ends_with(".json")) {
                    continue;
                }
                let Ok(v) = serde_json::from_str::<serde_json::Value>(
                    &std::fs::read_to_string(f.path()).unwrap_or_default(),
                ) else {
                    continue;
                };
                if best
                    .as_ref()
                    .is_none_or(|b| v["seq"].as_u64() > b["seq"].as_u64())
                {
                    best = Some(v);
                }
            }
        }
        best
    }

    /// Poll the ledger's state until `ok` (no state yet counts as empty).
    pub fn wait_state(
        &self,
        what: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let t = Instant::now();
        loop {
            let s = self
                .state()
                .unwrap_or_else(|| serde_json::json!({"accounts": {}}));
            if ok(&s) {
                return s;
            }
            assert!(
                t.elapsed() < DEADLINE,
                "waited too long for {what}; ledger: {s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until the ledger has charged accounts with these job keys (published, so energy
    /// added from now on is counted), and the reader has read once more after that.
    pub fn wait_jobs(&self, keys: &[&str]) -> serde_json::Value {
        let s = self.wait_state(&format!("{keys:?} in the host ledger"), |s| {
            keys.iter().all(|k| {
                s["accounts"]
                    .as_object()
                    .is_some_and(|a| a.values().any(|acc| acc["job"] == *k))
            })
        });
        let seq = s["seq"].as_u64().unwrap_or(0);
        self.wait_state("one more reading", |s| s["seq"].as_u64().unwrap_or(0) > seq)
    }

    /// What the ledger charged a departed run in all, joules.
    pub fn departed_joules(&self, run: &str) -> f64 {
        let s = self.wait_state(&format!("run {run} departed"), |s| {
            s["departed"]
                .as_array()
                .is_some_and(|d| d.iter().any(|x| x["run"] == run))
        });
        s["departed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["run"] == run)
            .unwrap()["joules"]
            .as_f64()
            .unwrap()
    }

    /// `wattprint ARGS` on the site store.
    pub fn wattprint(&self, home: &Path, args: &[&str]) -> serde_json::Value {
        let o = Command::new(wattprint_bin())
            .env("WATTPRINT_HOME", home)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "wattprint {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// The site store's final records of job `job`, once there are `n` of them.
    pub fn records(&self, job: u32, n: usize) -> Vec<serde_json::Value> {
        let t = Instant::now();
        loop {
            let v = self.wattprint(
                &self.site(),
                &["runs", "--json", "--tag", &format!("slurm_job={job}")],
            );
            let recs: Vec<serde_json::Value> = v.as_array().cloned().unwrap_or_default();
            let done = recs.iter().filter(|r| r["status"] != "running").count();
            if recs.len() >= n && done == recs.len() {
                return recs;
            }
            assert!(
                t.elapsed() < DEADLINE,
                "waited too long for {n} final records of job {job}: {recs:?}; slurmd log: {}",
                self.slurmd_log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until `n` steps of `job` other than the batch step have their final record: the
    /// batch script may then end. (A batch step that ends while a step's plugin still takes its
    /// final reading hands the ledger's reading over, and the ledger estimates those
    /// milliseconds at the step's mean power, which the tests' bursts of energy make inexact.)
    pub fn wait_steps_final(&self, job: u32, n: usize) {
        let t = Instant::now();
        loop {
            let v = self.wattprint(
                &self.site(),
                &["runs", "--json", "--tag", &format!("slurm_job={job}")],
            );
            let done = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|r| r["tags"]["slurm_step"] != "batch" && r["status"] != "running")
                        .count()
                })
                .unwrap_or(0);
            if done >= n {
                return;
            }
            assert!(
                t.elapsed() < DEADLINE,
                "waited too long for {n} final step records of job {job}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn slurmd_log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("log/slurmd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Wait until the job has left the queue.
    pub fn wait_job_done(&self, job: u32) {
        let t = Instant::now();
        loop {
            let o = self
                .slurm("squeue")
                .args(["-h", "-j", &job.to_string(), "-o", "%T"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&o.stdout).trim().is_empty() {
                return;
            }
            assert!(t.elapsed() < DEADLINE, "job {job} still queued");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A shell loop that waits for `file` (and ends when the test's directory is gone).
pub fn wait_for(file: &Path) -> String {
    let d = file.parent().unwrap().display();
    format!(
        "while [ ! -e '{}' ] && [ -d '{d}' ]; do sleep 0.05; done",
        file.display()
    )
}

pub fn joules(r: &serde_json::Value) -> f64 {
    r["energy_kwh"]["total"].as_f64().unwrap() * 3.6e6
}

pub fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
        "{what}: {got} J, expected {want} J"
    );
}

/// The site policy file (`config=` in plugstack.conf), written for one test and removed after.
pub struct Policy(std::path::PathBuf);

impl Policy {
    /// Written readable by root only (it may hold a server token).
    pub fn write(c: &Cluster, text: &str) -> Policy {
        use std::os::unix::fs::OpenOptionsExt;
        let p = c.dir.join("etc/wattprint-policy.toml");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&p)
            .unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        Policy(p)
    }
}

impl Drop for Policy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
