#![allow(clippy::unwrap_used)]
//! The host ledger's split of one interval (docs/methodology.md, "Sharing a machine"), and the
//! ledger itself with in-process participants reading a fake sensor driven explicitly.

use std::path::Path;
use std::time::Instant;
use wattprint_core::host::HostPaths;
use wattprint_core::host_ledger::{self, split_interval, HostLedger, JoinOptions, MachineUse, Use};
use wattprint_core::sampler::{Attributor, Scope};
use wattprint_core::sensor::{Device, DeviceKind, Method, Reading, Sensor, SensorError};
use wattprint_core::units::Joules;

fn dev(id: &str, kind: DeviceKind, idle: Option<f64>, gpu: Option<u32>) -> Device {
    Device {
        id: id.into(),
        kind,
        method: Method::Rapl,
        name: id.into(),
        gpu_index: gpu,
        uuid: None,
        idle_power_w: idle,
        factors: Vec::new(),
    }
}

fn u(scope: Scope, ticks: u64, rss_gb: u64, holds: Vec<bool>) -> Use {
    Use {
        scope: Some(scope),
        cpu_ticks: ticks,
        rss_bytes: rss_gb * 1_000_000_000,
        holds,
        cpus: None,
        ..Default::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

#[test]
fn the_worked_example_of_the_methodology() {
    let devices = [
        dev("cpu:package-0", DeviceKind::Cpu, Some(40.0), None),
        dev("ram:dram-0", DeviceKind::Ram, None, None),
    ];
    let uses = [
        u(Scope::Machine, 150, 4, vec![false, false]),
        u(Scope::Machine, 50, 2, vec![false, false]),
        u(Scope::Process, 100, 2, vec![false, false]),
    ];
    let (c, un) = split_interval(
        &devices,
        &[120.0, 10.0],
        1.0,
        &uses,
        &MachineUse {
            busy_ticks: 320,
            mem_used_bytes: 10_000_000_000,
        },
    );
    assert!(close(c[2][0], 37.5), "{c:?}");
    assert!(close(c[2][1], 2.0), "{c:?}");
    assert!(close(c[0][0], 55.0), "{c:?}");
    assert!(close(c[1][0], 27.5), "{c:?}");
    assert!(close(c[0][1], 8.0 * 4.0 / 6.0), "{c:?}");
    assert!(close(c[1][1], 8.0 * 2.0 / 6.0), "{c:?}");
    assert_eq!(un, vec![0.0, 0.0]);
    // Without A and B, C is charged the same and the rest is nobody's.
    let (c, un) = split_interval(
        &devices,
        &[120.0, 10.0],
        1.0,
        &uses[2..],
        &MachineUse {
            busy_ticks: 320,
            mem_used_bytes: 10_000_000_000,
        },
    );
    assert!(close(c[0][0], 37.5) && close(c[0][1], 2.0));
    assert!(close(un[0], 82.5) && close(un[1], 8.0), "{un:?}");
}

#[test]
fn charges_and_unattributed_always_add_up_to_the_machine() {
    let devices = [
        dev("cpu:package-0", DeviceKind::Cpu, Some(30.0), None),
        dev("ram:dram-0", DeviceKind::Ram, None, None),
        dev("gpu:0", DeviceKind::Gpu, Some(60.0), Some(0)),
        dev("gpu:1", DeviceKind::Gpu, None, Some(1)),
    ];
    // A small deterministic generator: many mixes of scopes, uses and energies.
    let mut x: u64 = 0x2545F4914F6CDD1D;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    for _ in 0..2000 {
        let n = 1 + next(6) as usize;
        let uses: Vec<Use> = (0..n)
            .map(|_| {
                u(
                    if next(2) == 0 {
                        Scope::Machine
                    } else {
                        Scope::Process
                    },
                    next(400),
                    next(8),
                    vec![false, false, next(3) == 0, next(2) == 0],
                )
            })
            .collect();
        let energy: Vec<f64> = (0..4).map(|_| next(100_000) as f64 / 100.0).collect();
        let dt = 0.05 + next(100) as f64 / 100.0;
        let machine = MachineUse {
            // sometimes less than the trees' sum (rounding of /proc): never over-charged
            busy_ticks: next(1500),
            mem_used_bytes: (1 + next(40)) * 1_000_000_000,
        };
        let (c, un) = split_interval(&devices, &energy, dt, &uses, &machine);
        let any_machine = uses.iter().any(|u| u.scope == Some(Scope::Machine));
        for d in 0..4 {
            let sum: f64 = c.iter().map(|row| row[d]).sum::<f64>() + un[d];
            assert!(close(sum, energy[d]), "device {d}: {sum} vs {}", energy[d]);
            assert!(c
                .iter()
                .all(|row| row[d] >= 0.0 && row[d] <= energy[d] * (1.0 + 1e-12)));
            if any_machine {
                assert_eq!(un[d], 0.0);
            }
        }
    }
}

#[test]
fn a_lone_machine_run_gets_everything_and_gpus_go_to_their_holders() {
    let devices = [
        dev("cpu:package-0", DeviceKind::Cpu, Some(30.0), None),
        dev("gpu:0", DeviceKind::Gpu, Some(50.0), Some(0)),
    ];
    let m = MachineUse {
        busy_ticks: 0,
        mem_used_bytes: 0,
    };
    let (c, _) = split_interval(
        &devices,
        &[100.0, 300.0],
        1.0,
        &[u(Scope::Machine, 0, 0, vec![false, false])],
        &m,
    );
    assert_eq!(c[0], vec![100.0, 300.0]);
    // Two machine-scope runs, only the first holds the GPU: it gets all of it, static too.
    let (c, _) = split_interval(
        &devices,
        &[100.0, 300.0],
        1.0,
        &[
            u(Scope::Machine, 10, 0, vec![false, true]),
            u(Scope::Machine, 10, 0, vec![false, false]),
        ],
        &m,
    );
    assert!(close(c[0][1], 300.0) && c[1][1] == 0.0, "{c:?}");
    assert!(close(c[0][0], 50.0) && close(c[1][0], 50.0), "{c:?}");
}

#[test]
fn static_cpu_energy_follows_the_scheduler_allocation_when_every_run_has_one() {
    let devices = [dev("cpu:package-0", DeviceKind::Cpu, Some(60.0), None)];
    let m = MachineUse {
        busy_ticks: 0,
        mem_used_bytes: 0,
    };
    let with = |a: Option<u32>, b: Option<u32>| {
        let mut x = u(Scope::Machine, 0, 0, vec![false]);
        x.cpus = a;
        let mut y = u(Scope::Machine, 0, 0, vec![false]);
        y.cpus = b;
        split_interval(&devices, &[100.0], 1.0, &[x, y], &m).0
    };
    // 60 J static: 16 vs 48 allocated CPUs -> 15 and 45; 40 J dynamic, nobody busy: evenly.
    let c = with(Some(16), Some(48));
    assert!(
        close(c[0][0], 15.0 + 20.0) && close(c[1][0], 45.0 + 20.0),
        "{c:?}"
    );
    // one run without an allocation: evenly
    let c = with(Some(16), None);
    assert!(close(c[0][0], 50.0) && close(c[1][0], 50.0), "{c:?}");
}

/// A fake sensor whose cumulative energy the test sets.
struct Fake {
    devices: Vec<Device>,
    joules: std::sync::Arc<std::sync::Mutex<Vec<f64>>>,
}

impl Sensor for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn devices(&self) -> &[Device] {
        &self.devices
    }
    fn read(&mut self, _: Instant) -> Result<Reading, SensorError> {
        let j = self.joules.lock().unwrap().clone();
        Ok(Reading {
            power: vec![None; j.len()],
            energy: j.into_iter().map(Joules).collect(),
        })
    }
}

type Counter = std::sync::Arc<std::sync::Mutex<Vec<f64>>>;

fn join(
    dir: &Path,
    id: &str,
    scope: Scope,
) -> (
    HostLedger,
    host_ledger::LedgerSensor,
    host_ledger::LedgerShares,
    Counter,
) {
    let joules: Counter = std::sync::Arc::new(std::sync::Mutex::new(vec![0.0]));
    let fake = Fake {
        devices: vec![dev("cpu:package-0", DeviceKind::Cpu, None, None)],
        joules: joules.clone(),
    };
    let (l, s, a) = HostLedger::join(
        dir,
        &HostPaths::new(dir.join("no-sys"), dir.join("no-proc")),
        JoinOptions {
            run_id: id.into(),
            job: None,
            local_rank: None,
            agent: false,
            cpus: None,
            scope,
            gpus: None,
            gpu_shares: Vec::new(),
            idle_follow: None,
        },
        vec![Box::new(fake)],
    )
    .map_err(|(e, _)| e)
    .unwrap();
    (l, s, a, joules)
}

/// One sampler step of a participant: read, then its share; returns (machine Δ, charged Δ).
fn step(
    s: &mut host_ledger::LedgerSensor,
    a: &mut host_ledger::LedgerShares,
    prev: &mut f64,
) -> (f64, f64) {
    let r = s.read(Instant::now()).unwrap();
    let sh = a.shares(s.devices(), &[None]);
    let m = r.energy[0].0 - *prev;
    *prev = r.energy[0].0;
    (m, m * sh[0])
}

#[test]
fn participants_in_one_process_share_the_counted_energy_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let (la, mut sa, mut aa, ca) = join(&dir, "run-a", Scope::Machine);
    let (lb, mut sb, mut ab, cb) = join(&dir, "run-b", Scope::Machine);
    let (mut pa, mut pb) = (0.0, 0.0);
    let (mut ta, mut tb) = (0.0, 0.0);
    // Baselines (the sampler's first read): A becomes the reader.
    step(&mut sa, &mut aa, &mut pa);
    step(&mut sb, &mut ab, &mut pb);
    assert!(la.sharing().reader && !lb.sharing().reader);
    // Ten intervals of 100 J; only the reader's counter matters, B's is never read.
    for k in 1..=10 {
        ca.lock().unwrap()[0] = 100.0 * k as f64;
        cb.lock().unwrap()[0] = 100.0 * k as f64;
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (_, a) = step(&mut sa, &mut aa, &mut pa);
        let (_, b) = step(&mut sb, &mut ab, &mut pb);
        ta += a;
        tb += b;
    }
    // Nobody used the CPU (no trees): evenly; the first interval had only... both present.
    assert!(close(ta + tb, 1000.0), "{ta} + {tb}");
    assert!(close(ta, tb), "{ta} vs {tb}");
    // A leaves at its next read (its last charged one); B takes over reading.
    la.leave_at_next_read();
    ca.lock().unwrap()[0] = 1100.0;
    let (_, a) = step(&mut sa, &mut aa, &mut pa);
    ta += a;
    let st = host_ledger::load_state(&dir).unwrap();
    assert!(st.reader.is_none());
    assert!(!st.accounts.contains_key("run-a"));
    let s = la.sharing();
    assert_eq!(s.mode, "shared");
    assert_eq!(s.company.len(), 1);
    assert_eq!(s.company[0].run, "run-b");
    // B reads now: it takes over, alone; the gap since A's last reading is estimated from
    // B's own counter and charged to B, the only one present.
    cb.lock().unwrap()[0] = 1100.0;
    std::thread::sleep(std::time::Duration::from_millis(2));
    let (_, b) = step(&mut sb, &mut ab, &mut pb);
    tb += b;
    let s = lb.sharing();
    assert!(s.reader);
    assert!(s.estimated_s > 0.0, "{s:?}");
    let st = host_ledger::load_state(&dir).unwrap();
    let (machine, unattributed) = st.totals();
    assert_eq!(unattributed, 0.0);
    assert!(machine >= 1100.0);
    assert!(close(ta + tb, machine), "{ta} + {tb} vs {machine}");
    lb.leave();
    assert!(!dir.join("p-run-a.json").exists() && !dir.join("p-run-b.json").exists());
}

#[test]
fn ledger_directory_per_host_and_switch() {
    let env = wattprint_core::env::Env::from_pairs([("WATTPRINT_HOST_LEDGER", "off")]);
    assert_eq!(host_ledger::runtime_dir(&env), None);
    let env = wattprint_core::env::Env::from_pairs([("WATTPRINT_RUNTIME_DIR", "/x/run")]);
    let rt = host_ledger::runtime_dir(&env).unwrap();
    assert_eq!(rt, Path::new("/x/run"));
    assert_eq!(
        host_ledger::ledger_dir(&rt, &HostPaths::default()),
        Path::new("/x/run/host")
    );
    let a = host_ledger::ledger_dir(&rt, &HostPaths::new("/a/sys", "/a/proc"));
    let b = host_ledger::ledger_dir(&rt, &HostPaths::new("/b/sys", "/a/proc"));
    assert_ne!(a, b);
    // the counters make the host: another procfs root is the same ledger
    let c = host_ledger::ledger_dir(&rt, &HostPaths::new("/a/sys", "/proc"));
    assert_eq!(a, c);
    assert!(a.starts_with("/x/run"));
}

/// A ledger in `dir` whose only run read twice and left; its state file.
fn a_run_that_left(dir: &Path) -> std::path::PathBuf {
    let (l, mut s, mut a, c) = join(dir, "old-run", Scope::Machine);
    let mut p = 0.0;
    step(&mut s, &mut a, &mut p);
    c.lock().unwrap()[0] = 10.0;
    step(&mut s, &mut a, &mut p);
    l.leave_at_next_read();
    step(&mut s, &mut a, &mut p);
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("state-"))
        .unwrap()
        .path()
}

#[test]
fn a_stale_ledger_is_taken_over_without_counting_the_idle_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let f = a_run_that_left(&dir);
    // The state says it was last published an hour ago.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    let t = v["t_unix"].as_f64().unwrap() - 3600.0;
    v["t_unix"] = serde_json::json!(t);
    // Rewritten whole (as by a rename): without the checksum of the text it no longer is.
    v.as_object_mut().unwrap().remove("sum");
    let epoch = v["epoch"].as_str().unwrap().to_string();
    std::fs::write(&f, v.to_string()).unwrap();
    let covered_before = v["covered_s"].as_f64().unwrap();
    let (l, mut s, mut a, c) = join(&dir, "new-run", Scope::Machine);
    let mut p = 0.0;
    step(&mut s, &mut a, &mut p);
    std::thread::sleep(std::time::Duration::from_millis(5));
    c.lock().unwrap()[0] = 7.0;
    let (m, charged) = step(&mut s, &mut a, &mut p);
    assert!(close(m, 7.0) && close(charged, 7.0), "{m} {charged}");
    let sh = l.sharing();
    assert!(sh.alone_s < 60.0, "{sh:?}");
    let st = host_ledger::load_state(&dir).unwrap();
    assert_eq!(
        st.epoch, epoch,
        "the stale ledger was taken over, not started afresh"
    );
    assert!(st.covered_s - covered_before < 60.0, "{}", st.covered_s);
    l.leave();
}

#[test]
fn a_half_written_state_is_not_taken_and_is_said() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    let f = a_run_that_left(&dir);
    let whole = host_ledger::load_state(&dir).unwrap();
    // Its writer ended in the middle of a write: one digit of the body differs from what the
    // checksum covered (the text is still valid JSON).
    let mut text = std::fs::read(&f).unwrap();
    let i = (text.len() / 2..text.len())
        .find(|&i| text[i].is_ascii_digit())
        .unwrap();
    text[i] = if text[i] == b'9' { b'8' } else { b'9' };
    std::fs::write(&f, &text).unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&text).is_ok());
    assert_eq!(host_ledger::load_state(&dir), None);
    // The next participant does not take it, says so once, and starts a whole state.
    let (l, mut s, mut a, _c) = join(&dir, "new-run", Scope::Machine);
    let mut p = 0.0;
    step(&mut s, &mut a, &mut p);
    step(&mut s, &mut a, &mut p);
    let w = s.take_warnings();
    let said: Vec<_> = w.iter().filter(|w| w.contains("half-written")).collect();
    assert_eq!(said.len(), 1, "{w:?}");
    let st = host_ledger::load_state(&dir).unwrap();
    assert_ne!(st.epoch, whole.epoch);
    assert_eq!(st.reader.unwrap().run_id, "new-run");
    l.leave();
}

#[test]
fn a_shared_gpu_is_split_by_utilisation_and_a_mig_card_by_slices() {
    let devices = vec![dev("gpu:0", DeviceKind::Gpu, Some(50.0), Some(0))];
    let machine = MachineUse {
        busy_ticks: 0,
        mem_used_bytes: 1,
    };
    // 150 J over 1 s, 50 W idle: 50 J static (even between the two holders), 100 J dynamic by
    // SM utilisation (60 % vs 20 %).
    let mut a = u(Scope::Machine, 0, 0, vec![true]);
    a.gpu_util = vec![Some(60.0)];
    let mut b = u(Scope::Machine, 0, 0, vec![true]);
    b.gpu_util = vec![Some(20.0)];
    let (c, un) = split_interval(&devices, &[150.0], 1.0, &[a.clone(), b.clone()], &machine);
    assert!(close(c[0][0], 25.0 + 75.0), "{c:?}");
    assert!(close(c[1][0], 25.0 + 25.0), "{c:?}");
    assert_eq!(un[0], 0.0);
    // without samples: evenly, as before
    let (c, _) = split_interval(
        &devices,
        &[150.0],
        1.0,
        &[
            u(Scope::Machine, 0, 0, vec![true]),
            u(Scope::Machine, 0, 0, vec![true]),
        ],
        &machine,
    );
    assert!(close(c[0][0], 75.0) && close(c[1][0], 75.0), "{c:?}");
    // process scope: its share of the use; the rest is unattributed
    a.scope = Some(Scope::Process);
    b.scope = Some(Scope::Process);
    let (c, un) = split_interval(&devices, &[100.0], 1.0, &[a, b], &machine);
    assert!(close(c[0][0], 75.0) && close(c[1][0], 25.0), "{c:?}");
    assert!(un[0].abs() < 1e-9);
    // MIG: a process-scope run with 2 of 7 slices is charged 2/7 of the card
    let mut m = u(Scope::Process, 0, 0, vec![true]);
    m.gpu_share = vec![Some(2.0 / 7.0)];
    let (c, un) = split_interval(&devices, &[70.0], 1.0, &[m], &machine);
    assert!(close(c[0][0], 20.0) && close(un[0], 50.0), "{c:?} {un:?}");
}

/// A fake GPU sensor: one card, with the processes on it and their SM utilisation.
struct FakeGpu {
    devices: Vec<Device>,
    joules: Counter,
    util: Vec<(u32, f64)>,
}

impl Sensor for FakeGpu {
    fn name(&self) -> &'static str {
        "fake-gpu"
    }
    fn devices(&self) -> &[Device] {
        &self.devices
    }
    fn read(&mut self, _: Instant) -> Result<Reading, SensorError> {
        let j = self.joules.lock().unwrap().clone();
        Ok(Reading {
            power: vec![None; j.len()],
            energy: j.into_iter().map(Joules).collect(),
        })
    }
    fn device_pids(&mut self) -> Option<Vec<Vec<u32>>> {
        Some(vec![self.util.iter().map(|(p, _)| *p).collect()])
    }
    fn device_process_util(&mut self) -> Option<Vec<Vec<(u32, f64)>>> {
        Some(vec![self.util.clone()])
    }
}

#[test]
fn two_runs_on_one_card_split_its_dynamic_energy_by_their_processes_utilisation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    // Two real processes stand for the two runs' work (process trees come from /proc).
    let mut kids: Vec<std::process::Child> = (0..2)
        .map(|_| {
            std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap()
        })
        .collect();
    let pids: Vec<u32> = kids.iter().map(|k| k.id()).collect();
    let util = vec![(pids[0], 75.0), (pids[1], 25.0)];
    let host = HostPaths::new("/sys", "/proc");
    let mut joined = Vec::new();
    for (k, id) in ["gpu-a", "gpu-b"].iter().enumerate() {
        let joules: Counter = std::sync::Arc::new(std::sync::Mutex::new(vec![0.0]));
        let fake = FakeGpu {
            // no idle figure: all of the card's energy is dynamic here
            devices: vec![dev("gpu:0", DeviceKind::Gpu, None, Some(0))],
            joules: joules.clone(),
            util: util.clone(),
        };
        let (l, s, a) = HostLedger::join(
            &dir,
            &host,
            JoinOptions {
                run_id: (*id).into(),
                job: None,
                local_rank: None,
                agent: false,
                cpus: None,
                scope: Scope::Machine,
                gpus: None,
                gpu_shares: Vec::new(),
                idle_follow: None,
            },
            vec![Box::new(fake)],
        )
        .map_err(|(e, _)| e)
        .unwrap();
        l.set_root(pids[k]);
        joined.push((l, s, a, joules));
    }
    let (mut pa, mut pb) = (0.0, 0.0);
    let (mut ta, mut tb) = (0.0, 0.0);
    {
        let [(_, sa, aa, _), (_, sb, ab, _)] = &mut joined[..] else {
            unreachable!()
        };
        step(sa, aa, &mut pa);
        step(sb, ab, &mut pb);
    }
    for k in 1..=4 {
        for j in &joined {
            j.3.lock().unwrap()[0] = 100.0 * k as f64;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        let [(_, sa, aa, _), (_, sb, ab, _)] = &mut joined[..] else {
            unreachable!()
        };
        ta += step(sa, aa, &mut pa).1;
        tb += step(sb, ab, &mut pb).1;
    }
    for k in &mut kids {
        let _ = k.kill();
        let _ = k.wait();
    }
    assert!(close(ta + tb, 400.0), "{ta} + {tb}");
    assert!(
        close(ta, 300.0) && close(tb, 100.0),
        "75 % / 25 %: {ta} / {tb}"
    );
    for (l, ..) in joined {
        l.leave();
    }
}
