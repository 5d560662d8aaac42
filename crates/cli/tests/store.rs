#![allow(clippy::unwrap_used)]
//! The local store: round trip, migration from schema v1, concurrent writers (real processes),
//! energy-exact downsampled series, and the browsing commands (`runs`, `show`, `projects`, `rm`)
//! run as the real binary against a temporary WATTPRINT_HOME.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use wattprint::store::{RunFilter, Store, SCHEMA_VERSION};
use wattprint_core::record::{
    build_record, CarbonContext, Ending, HostInfo, LocationRecord, RunMeta, RunRecord, RunStatus,
};
use wattprint_core::sampler::{
    push_point, DeviceTotal, Scope, SeriesPoint, Snapshot, MAX_SERIES_POINTS,
};
use wattprint_core::sensor::{Device, DeviceKind, Method};
use wattprint_core::units::{Joules, Watts, JOULES_PER_KWH};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wattprint"))
}

/// Intensity 100 g/kWh, PUE 1.5: 1 kWh of IT energy emits 0.15 kg.
fn carbon() -> CarbonContext {
    CarbonContext {
        intensity_g_per_kwh: 100.0,
        intensity_source: "test intensity".into(),
        intensity_detail: "test intensity (detail)".into(),
        pue: 1.5,
        pue_detail: "test PUE".into(),
        location: LocationRecord {
            code: "FR".into(),
            name: "France".into(),
            known: true,
            pue_source: "test PUE".into(),
        },
        factors_version: "test".into(),
        warnings: vec![],
        series: None,
        signal: None,
        live: None,
        embodied: None,
        embodied_not_counted: None,
    }
}

fn device(id: &str, kind: DeviceKind, idle: Option<f64>) -> Device {
    Device {
        id: id.into(),
        kind,
        method: match kind {
            DeviceKind::Cpu => Method::Rapl,
            DeviceKind::Ram => Method::RaplDram,
            DeviceKind::Gpu => Method::NvmlEnergy,
        },
        name: id.into(),
        gpu_index: None,
        uuid: None,
        idle_power_w: idle,
        factors: Vec::new(),
    }
}

/// A snapshot of `secs` seconds: a CPU that used `cpu_kwh` with idle power `idle_w`, and a RAM
/// device at a tenth of it; one series point per 10 s.
fn snapshot(secs: f64, cpu_kwh: f64, idle_w: Option<f64>) -> Snapshot {
    let mk = |d: Device, kwh: f64| {
        let j = kwh * JOULES_PER_KWH;
        let n = (secs / 10.0).ceil().max(1.0) as usize;
        let mut series = Vec::new();
        for i in 0..n {
            push_point(
                &mut series,
                SeriesPoint {
                    t0: i as f64 * secs / n as f64,
                    t1: (i + 1) as f64 * secs / n as f64,
                    energy_j: j / n as f64,
                },
            );
        }
        DeviceTotal {
            device: d,
            energy: Joules(j),
            machine_energy: Joules(j),
            last_power: Watts(j / secs),
            series,
        }
    };
    Snapshot {
        elapsed: Duration::from_secs_f64(secs),
        devices: vec![
            mk(device("cpu:package-0", DeviceKind::Cpu, idle_w), cpu_kwh),
            mk(device("ram:dram-0", DeviceKind::Ram, None), cpu_kwh / 10.0),
        ],
        warnings: vec![],
        samples: 10,
        skipped_ticks: 0,
    }
}

struct Seed<'a> {
    id: &'a str,
    project: &'a str,
    status: RunStatus,
    started_at: &'a str,
    secs: f64,
    cpu_kwh: f64,
    idle_w: Option<f64>,
    tags: &'a [(&'a str, &'a str)],
}

fn record(s: &Seed) -> (RunRecord, Snapshot) {
    let snap = snapshot(s.secs, s.cpu_kwh, s.idle_w);
    let meta = RunMeta {
        id: s.id.into(),
        project: s.project.into(),
        tags: s
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        command: vec!["python".into(), "train.py".into()],
        started_at: s.started_at.into(),
        host: HostInfo {
            hostname: "node-7".into(),
            cpu_model: "Test CPU".into(),
            logical_cpus: 8,
            ram_gb: 32.0,
            gpus: vec![],
        },
        scope: Scope::Machine,
        interval_s: 1.0,
        start_unix: 0.0,
    };
    let (code, signal) = match s.status {
        RunStatus::Completed => (Some(0), None),
        RunStatus::Failed => (Some(1), None),
        RunStatus::Killed | RunStatus::StoppedByBudget | RunStatus::StoppedByCap => {
            (Some(143), Some(15))
        }
        RunStatus::Running => (None, None),
    };
    let ending = Ending {
        ended_at: code.map(|_| "2099-01-01T00:00:00Z".to_string()),
        exit_code: code,
        signal,
    };
    let rec = build_record(&meta, &carbon(), &snap, s.status, &ending, &[]);
    (rec, snap)
}

fn seed(store: &mut Store, s: &Seed) -> RunRecord {
    let (rec, snap) = record(s);
    store.save_run(&rec).unwrap();
    store.save_series(&rec.id, &snap).unwrap();
    rec
}

fn now_minus(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(secs);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn db(&self) -> PathBuf {
        self.home().join("wattprint.db")
    }
    fn store(&self) -> Store {
        Store::open(&self.db()).unwrap()
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("WATTPRINT_HOME", self.home())
            .env_remove("WATTPRINT_LOCATION")
            .env_remove("WATTPRINT_PROJECT");
        c
    }
    fn wp(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-12)
}

const ID_A: &str = "aaaa1111-0000-4000-8000-000000000001";
const ID_B: &str = "aaaa2222-0000-4000-8000-000000000002";
const ID_C: &str = "cccc3333-0000-4000-8000-000000000003";
const ID_D: &str = "dddd4444-0000-4000-8000-000000000004";

// ---------------------------------------------------------------------------------------------
// Round trip

#[test]
fn round_trip_keeps_record_and_series() {
    let h = Home::new();
    let mut st = h.store();
    assert_eq!(st.schema_version().unwrap(), SCHEMA_VERSION);
    let (rec, snap) = record(&Seed {
        id: ID_A,
        project: "p",
        status: RunStatus::Failed,
        started_at: "2025-03-01T10:00:00.25Z",
        secs: 1000.0,
        cpu_kwh: 1.0,
        idle_w: Some(360.0),
        tags: &[("lr", "3e-4"), ("model", "resnet")],
    });
    st.save_run(&rec).unwrap();
    st.save_series(&rec.id, &snap).unwrap();
    // A checkpoint then the final save: the upsert replaces, never duplicates.
    st.save_run(&rec).unwrap();
    assert_eq!(st.count_runs().unwrap(), 1);
    assert_eq!(st.get_run(ID_A).unwrap().unwrap(), rec);
    assert_eq!(st.find_run("aaaa1").unwrap(), rec);
    let series = st.series(ID_A).unwrap();
    assert_eq!(series.len(), 2);
    for (dev, pts) in &series {
        let d = snap.devices.iter().find(|d| &d.device.id == dev).unwrap();
        assert_eq!(pts, &d.series);
    }
    let rows = st.list_rows(&RunFilter::default()).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.status, "failed");
    assert_eq!(r.exit_code, Some(1));
    assert!(close(r.duration_s, 1000.0));
    assert!(close(r.energy_kwh, 1.1), "{}", r.energy_kwh);
    assert!(close(r.facility_kwh, 1.65));
    assert!(close(r.static_kwh, 0.1), "{}", r.static_kwh);
    assert!(close(r.emissions_kg, 1.1 * 1.5 * 0.1));
    assert_eq!(r.hostname, "node-7");
    assert_eq!(r.scope, "machine");
    assert_eq!(r.methods.cpu, "rapl");
    assert_eq!(r.tags.get("model").map(String::as_str), Some("resnet"));
    // The file is in WAL mode.
    let conn = rusqlite::Connection::open(h.db()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

// ---------------------------------------------------------------------------------------------
// Migration

/// The exact DDL of schema version 1 (wattprint before schema 2), copied from its `migrate()`.
const V1_DDL: &str = "CREATE TABLE IF NOT EXISTS runs (
                    id TEXT PRIMARY KEY,
                    project TEXT NOT NULL,
                    status TEXT NOT NULL,
                    started_at TEXT NOT NULL,
                    ended_at TEXT,
                    energy_kwh REAL NOT NULL,
                    emissions_kg REAL NOT NULL,
                    record TEXT NOT NULL,
                    updated_at TEXT NOT NULL
                );
                CREATE INDEX IF NOT EXISTS runs_project ON runs(project, started_at);
                CREATE TABLE IF NOT EXISTS samples (
                    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                    device_id TEXT NOT NULL,
                    t0 REAL NOT NULL,
                    t1 REAL NOT NULL,
                    energy_j REAL NOT NULL,
                    PRIMARY KEY (run_id, device_id, t0)
                );
                PRAGMA user_version = 1;";

/// A v1 database as wattprint 0.1 wrote it, with `recs` and their series.
#[test]
fn checkpoints_rewrite_what_a_running_record_changes_and_fall_back_for_the_rest() {
    let h = Home::new();
    let mut st = h.store();
    let seed = |status, secs, kwh, project| Seed {
        id: ID_A,
        project,
        status,
        started_at: "2025-03-01T10:00:00.25Z",
        secs,
        cpu_kwh: kwh,
        idle_w: Some(360.0),
        tags: &[("lr", "3e-4")],
    };
    // A checkpoint of a run not stored yet stores it.
    let (first, _) = record(&seed(RunStatus::Running, 10.0, 0.01, "p"));
    st.save_checkpoint(&first).unwrap();
    assert_eq!(st.get_run(ID_A).unwrap().unwrap(), first);
    // A later checkpoint: the record and the listed figures follow.
    let (later, _) = record(&seed(RunStatus::Running, 100.0, 0.5, "p"));
    st.save_checkpoint(&later).unwrap();
    assert_eq!(st.get_run(ID_A).unwrap().unwrap(), later);
    let rows = st.list_rows(&RunFilter::default()).unwrap();
    assert_eq!(rows.len(), 1);
    assert!(close(rows[0].duration_s, 100.0));
    assert!(
        close(rows[0].energy_kwh, later.energy_kwh.total.0),
        "{}",
        rows[0].energy_kwh
    );
    assert_eq!(rows[0].status, "running");
    // The listing columns a checkpoint writes (from the record) are those a full save writes
    // (from its JSON).
    let full = Home::new();
    full.store().save_run(&later).unwrap();
    let columns = |db: &Path| -> Vec<String> {
        let c = rusqlite::Connection::open(db).unwrap();
        c.query_row(
            "SELECT started_unix, duration_s, exit_code, tags, static_kwh, facility_kwh, scope,
               hostname, methods, model FROM runs WHERE id = ?1",
            [ID_A],
            |r| {
                (0..10)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect()
            },
        )
        .unwrap()
    };
    let (checkpointed, saved) = (columns(&h.db()), columns(&full.db()));
    assert_eq!(checkpointed, saved);
    assert!(
        saved[3].contains("lr") && saved[8].contains('{'),
        "{saved:?}"
    );
    // An indexed column changed (the final status, another project): saved in full.
    let (done, _) = record(&seed(RunStatus::Completed, 120.0, 0.6, "p"));
    st.save_checkpoint(&done).unwrap();
    let rows = st.list_rows(&RunFilter::default()).unwrap();
    assert_eq!((rows.len(), rows[0].status.as_str()), (1, "completed"));
    assert_eq!(st.get_run(ID_A).unwrap().unwrap(), done);
    let (moved, _) = record(&seed(RunStatus::Completed, 120.0, 0.6, "q"));
    st.save_checkpoint(&moved).unwrap();
    let only_q = RunFilter {
        project: Some("q".into()),
        ..RunFilter::default()
    };
    assert_eq!(st.list_rows(&only_q).unwrap().len(), 1);
    assert_eq!(st.count_runs().unwrap(), 1);
}

fn write_v1(db: &Path, recs: &[(RunRecord, Snapshot)]) {
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch(V1_DDL).unwrap();
    for (r, snap) in recs {
        conn.execute(
            "INSERT INTO runs (id, project, status, started_at, ended_at, energy_kwh, emissions_kg, record, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                r.id,
                r.project,
                r.status.as_str(),
                r.started_at,
                r.ended_at,
                r.energy_kwh.total.0,
                r.emissions_kg.total,
                serde_json::to_string(r).unwrap(),
                "2025-01-01T00:00:00Z"
            ],
        )
        .unwrap();
        for d in &snap.devices {
            for p in &d.series {
                conn.execute(
                    "INSERT INTO samples (run_id, device_id, t0, t1, energy_j) VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![r.id, d.device.id, p.t0, p.t1, p.energy_j],
                )
                .unwrap();
            }
        }
    }
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 1);
}

fn v1_fixture() -> Vec<(RunRecord, Snapshot)> {
    vec![
        record(&Seed {
            id: ID_A,
            project: "vision",
            status: RunStatus::Completed,
            started_at: "2025-01-10T08:00:00Z",
            secs: 600.0,
            cpu_kwh: 0.5,
            idle_w: Some(100.0),
            tags: &[("lr", "0.1")],
        }),
        record(&Seed {
            id: ID_B,
            project: "vision",
            status: RunStatus::Killed,
            started_at: "2025-01-11T08:00:00.5Z",
            secs: 120.0,
            cpu_kwh: 0.2,
            idle_w: None,
            tags: &[],
        }),
        record(&Seed {
            id: ID_C,
            project: "nlp",
            status: RunStatus::Failed,
            started_at: "2025-01-12T08:00:00Z",
            secs: 30.0,
            cpu_kwh: 0.01,
            idle_w: Some(50.0),
            tags: &[("lr", "0.2")],
        }),
    ]
}

#[test]
fn migration_from_v1_keeps_every_run_and_sample_and_fills_new_columns() {
    let h = Home::new();
    let fixture = v1_fixture();
    write_v1(&h.db(), &fixture);

    let st = h.store();
    assert_eq!(st.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(
        h.home().join("wattprint.db.v1.bak").exists(),
        "a copy is kept before upgrading"
    );
    assert_eq!(st.count_runs().unwrap(), 3);
    for (r, snap) in &fixture {
        assert_eq!(&st.get_run(&r.id).unwrap().unwrap(), r, "record {}", r.id);
        let series = st.series(&r.id).unwrap();
        let stored: usize = series.iter().map(|(_, p)| p.len()).sum();
        let expected: usize = snap.devices.iter().map(|d| d.series.len()).sum();
        assert_eq!(stored, expected, "samples of {}", r.id);
        for (dev, pts) in &series {
            let d = snap.devices.iter().find(|d| &d.device.id == dev).unwrap();
            assert_eq!(pts, &d.series);
        }
    }
    let rows = st.list_rows(&RunFilter::default()).unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec![ID_C, ID_B, ID_A], "newest first, by start time");
    for row in &rows {
        let (r, _) = fixture.iter().find(|(r, _)| r.id == row.id).unwrap();
        assert!(close(row.duration_s, r.duration_s));
        assert_eq!(row.exit_code, r.exit_code.map(i64::from));
        assert_eq!(row.tags, r.tags);
        assert!(close(row.static_kwh, r.energy_kwh.static_.0));
        assert!(close(row.facility_kwh, r.energy_kwh.facility.0));
        assert_eq!(row.scope, "machine");
        assert_eq!(row.hostname, "node-7");
        assert_eq!(row.methods, r.methods);
    }
    assert!(rows.iter().any(|r| r.static_kwh > 0.0));
    // The new columns serve the filters.
    let f = RunFilter {
        tags: vec![("lr".into(), "0.2".into())],
        ..Default::default()
    };
    assert_eq!(st.list_rows(&f).unwrap()[0].id, ID_C);
    let f = RunFilter {
        since: Some("2025-01-11".into()),
        ..Default::default()
    };
    assert_eq!(st.list_rows(&f).unwrap().len(), 2);
    drop(st);
    // Opening again does nothing more.
    let st = h.store();
    assert_eq!(st.count_runs().unwrap(), 3);
}

#[test]
fn migration_keeps_a_row_whose_record_does_not_parse() {
    let h = Home::new();
    write_v1(&h.db(), &[]);
    {
        let conn = rusqlite::Connection::open(h.db()).unwrap();
        conn.execute(
            "INSERT INTO runs VALUES ('bad-1', 'p', 'completed', '2025-02-01T00:00:00Z', NULL, 0.5, 0.1, '{not json', 'x')",
            [],
        )
        .unwrap();
    }
    let st = h.store();
    assert_eq!(st.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(st.count_runs().unwrap(), 1);
    drop(st);
    let conn = rusqlite::Connection::open(h.db()).unwrap();
    let (rec, unix): (String, f64) = conn
        .query_row(
            "SELECT record, started_unix FROM runs WHERE id = 'bad-1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(rec, "{not json", "the stored text is untouched");
    assert!(
        close(unix, 1738368000.0),
        "start time from the column: {unix}"
    );
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let h = Home::new();
    std::fs::create_dir_all(h.home()).unwrap();
    {
        let conn = rusqlite::Connection::open(h.db()).unwrap();
        conn.execute_batch("CREATE TABLE x (a); PRAGMA user_version = 99;")
            .unwrap();
    }
    let err = Store::open(&h.db()).err().unwrap().to_string();
    assert!(err.contains("newer"), "{err}");
    let o = h.wp(&["runs"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("upgrade wattprint"), "{}", stderr(&o));
    let conn = rusqlite::Connection::open(h.db()).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99);
}

// ---------------------------------------------------------------------------------------------
// Concurrency

/// A fake machine for `wattprint run` (see tests/run_cli.rs): one RAPL package + DRAM.
fn fake_host(root: &Path) -> (PathBuf, PathBuf) {
    let sys = root.join("sys");
    let proc = root.join("proc");
    let pc = sys.join("class/powercap");
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
    std::fs::create_dir_all(&proc).unwrap();
    std::fs::write(
        proc.join("stat"),
        "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 25 0 25 250 0 0 0 0 0 0\n",
    )
    .unwrap();
    std::fs::write(
        proc.join("meminfo"),
        "MemTotal:       16000000 kB\nMemFree:         8000000 kB\nMemAvailable:    8000000 kB\n",
    )
    .unwrap();
    std::fs::write(
        proc.join("cpuinfo"),
        "processor\t: 0\nmodel name\t: Test CPU\nphysical id\t: 0\n\n",
    )
    .unwrap();
    (sys, proc)
}

#[test]
fn concurrent_wattprint_runs_all_land_in_one_store() {
    let h = Home::new();
    let (sys, proc) = fake_host(h.dir.path());
    const N: usize = 6;
    let children: Vec<_> = (0..N)
        .map(|i| {
            h.cmd()
                .env("WATTPRINT_SYSFS_ROOT", &sys)
                .env("WATTPRINT_PROCFS_ROOT", &proc)
                .env("WATTPRINT_RUNTIME_DIR", h.dir.path().join("run"))
                .env("WATTPRINT_NVML_LIBRARY", h.dir.path().join("no-nvml.so"))
                .args([
                    "run",
                    "--quiet",
                    "--interval",
                    "20ms",
                    "--project",
                    "race",
                    "--tag",
                    &format!("i={i}"),
                    "--",
                    "sh",
                    "-c",
                    "sleep 0.3",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            !stderr(&o).contains("not saved"),
            "a write was lost: {}",
            stderr(&o)
        );
    }
    let st = h.store();
    let recs = st
        .list_runs(&RunFilter {
            project: Some("race".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(recs.len(), N);
    let mut seen: Vec<String> = recs.iter().map(|r| r.tags["i"].clone()).collect();
    seen.sort();
    assert_eq!(
        seen,
        (0..N).map(|i| i.to_string()).collect::<Vec<_>>(),
        "one record per process"
    );
    for r in &recs {
        assert_eq!(r.status, RunStatus::Completed);
        assert_eq!(r.exit_code, Some(0));
        assert_eq!(r.schema, "wattprint.run/1");
        assert!(r.duration_s >= 0.25, "{}", r.duration_s);
        assert!(!st.series(&r.id).unwrap().is_empty(), "series of {}", r.id);
    }
}

#[test]
fn concurrent_first_opens_of_a_v1_store_migrate_once() {
    let h = Home::new();
    let fixture = v1_fixture();
    write_v1(&h.db(), &fixture);
    let children: Vec<_> = (0..4)
        .map(|_| {
            h.cmd()
                .args(["runs", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        let out = ok(&o);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 3);
    }
    let st = h.store();
    assert_eq!(st.schema_version().unwrap(), SCHEMA_VERSION);
    for (r, _) in &fixture {
        assert_eq!(&st.get_run(&r.id).unwrap().unwrap(), r);
    }
}

#[test]
fn threads_with_their_own_connections_write_without_loss() {
    let h = Home::new();
    drop(h.store());
    let db = h.db();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut st = Store::open(&db).unwrap();
                for i in 0..25 {
                    let id = format!("t{t}-{i:03}-0000-4000-8000-000000000000");
                    let (rec, snap) = record(&Seed {
                        id: &id,
                        project: "threads",
                        status: RunStatus::Completed,
                        started_at: "2025-05-01T00:00:00Z",
                        secs: 60.0,
                        cpu_kwh: 0.001,
                        idle_w: None,
                        tags: &[],
                    });
                    st.save_run(&rec).unwrap();
                    st.save_series(&rec.id, &snap).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let st = h.store();
    assert_eq!(st.count_runs().unwrap(), 100);
    let rows = st.list_rows(&RunFilter::default()).unwrap();
    for r in rows {
        assert_eq!(st.series(&r.id).unwrap().len(), 2);
    }
}

// ---------------------------------------------------------------------------------------------
// Downsampling

#[test]
fn a_long_downsampled_series_keeps_the_energy_total_exact() {
    // Energies that are exact in binary, so that any lost or double-counted point shows.
    let n = 3 * MAX_SERIES_POINTS + 123;
    let mut series = Vec::new();
    let mut total = 0.0;
    for i in 0..n {
        let e = (i % 13) as f64 + 0.25;
        total += e;
        push_point(
            &mut series,
            SeriesPoint {
                t0: i as f64 * 0.5,
                t1: (i + 1) as f64 * 0.5,
                energy_j: e,
            },
        );
    }
    assert!(series.len() <= MAX_SERIES_POINTS, "{}", series.len());
    assert!(series.len() > MAX_SERIES_POINTS / 4);
    let snap = Snapshot {
        elapsed: Duration::from_secs_f64(n as f64 * 0.5),
        devices: vec![DeviceTotal {
            device: device("gpu:0", DeviceKind::Gpu, None),
            energy: Joules(total),
            machine_energy: Joules(total),
            last_power: Watts(0.0),
            series: series.clone(),
        }],
        warnings: vec![],
        samples: n as u64,
        skipped_ticks: 0,
    };
    let h = Home::new();
    let mut st = h.store();
    let (rec, _) = record(&Seed {
        id: "long",
        project: "p",
        status: RunStatus::Completed,
        started_at: "2025-03-01T00:00:00Z",
        secs: n as f64 * 0.5,
        cpu_kwh: 0.001,
        idle_w: None,
        tags: &[],
    });
    st.save_run(&rec).unwrap();
    st.save_series("long", &snap).unwrap();
    let back = st.series("long").unwrap();
    assert_eq!(back.len(), 1);
    let pts = &back[0].1;
    assert_eq!(pts, &series);
    let sum: f64 = pts.iter().map(|p| p.energy_j).sum();
    assert_eq!(sum, total, "energy total preserved exactly");
    assert_eq!(pts[0].t0, 0.0);
    assert_eq!(pts.last().unwrap().t1, n as f64 * 0.5);
    for w in pts.windows(2) {
        assert_eq!(w[0].t1, w[1].t0, "contiguous, no gap or overlap");
    }
}

// ---------------------------------------------------------------------------------------------
// Browsing commands

/// Four runs of project `train` and one of `eval`:
/// A completed 1.0 kWh (idle 0.1), B failed 2.0 kWh, C killed 0.5 kWh (idle 0.05),
/// D completed 0.25 kWh started 30 days ago; E (eval) completed. CPU energy plus RAM at a tenth.
fn seed_projects(h: &Home) -> Vec<RunRecord> {
    let mut st = h.store();
    let recent = now_minus(3600);
    let old = now_minus(30 * 86400);
    vec![
        seed(
            &mut st,
            &Seed {
                id: ID_A,
                project: "train",
                status: RunStatus::Completed,
                started_at: &recent,
                secs: 1000.0,
                cpu_kwh: 1.0,
                idle_w: Some(360.0),
                tags: &[("lr", "0.1"), ("model", "resnet")],
            },
        ),
        seed(
            &mut st,
            &Seed {
                id: ID_B,
                project: "train",
                status: RunStatus::Failed,
                started_at: &recent,
                secs: 1000.0,
                cpu_kwh: 2.0,
                idle_w: None,
                tags: &[("lr", "0.2"), ("model", "resnet")],
            },
        ),
        seed(
            &mut st,
            &Seed {
                id: ID_C,
                project: "train",
                status: RunStatus::Killed,
                started_at: &recent,
                secs: 500.0,
                cpu_kwh: 0.5,
                idle_w: Some(360.0),
                tags: &[("lr", "0.1"), ("model", "vit")],
            },
        ),
        seed(
            &mut st,
            &Seed {
                id: ID_D,
                project: "train",
                status: RunStatus::Completed,
                started_at: &old,
                secs: 100.0,
                cpu_kwh: 0.25,
                idle_w: None,
                tags: &[],
            },
        ),
        seed(
            &mut st,
            &Seed {
                id: "eeee5555-0000-4000-8000-000000000005",
                project: "eval",
                status: RunStatus::Completed,
                started_at: &recent,
                secs: 10.0,
                cpu_kwh: 0.01,
                idle_w: None,
                tags: &[],
            },
        ),
    ]
}

#[test]
fn project_totals_count_failed_and_killed_runs_as_waste() {
    let h = Home::new();
    seed_projects(&h);
    let out = ok(&h.wp(&["projects", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    let t = arr.iter().find(|p| p["project"] == "train").unwrap();
    let f = |p: &str| t.pointer(p).unwrap().as_f64().unwrap();
    // IT energy: CPU + RAM (a tenth) = 1.1 + 2.2 + 0.55 + 0.275.
    assert_eq!(t["runs"], 4);
    assert!(close(f("/energy_kwh"), 4.125), "{}", f("/energy_kwh"));
    assert!(close(f("/facility_kwh"), 4.125 * 1.5));
    // 100 g/kWh × PUE 1.5 = 0.15 kg per IT kWh.
    assert!(close(f("/emissions_kg"), 4.125 * 0.15));
    // Waste: B (failed, 2.2 kWh) + C (killed, 0.55 kWh).
    assert_eq!(t["wasted"]["runs"], 2);
    assert!(
        close(f("/wasted/energy_kwh"), 2.75),
        "{}",
        f("/wasted/energy_kwh")
    );
    assert!(close(f("/wasted/emissions_kg"), 2.75 * 0.15));
    assert!(close(f("/wasted/emissions_share"), 2.75 / 4.125));
    // Idle: A 360 W × 1000 s = 0.1 kWh, C 360 W × 500 s = 0.05 kWh.
    assert!(close(f("/static_kwh"), 0.15), "{}", f("/static_kwh"));
    assert!(close(f("/idle_share"), 0.15 / 4.125));
    assert_eq!(t["running"], 0);

    // --since leaves out the 30-day-old run D.
    let out = ok(&h.wp(&["projects", "--json", "--since", "7d", "--project", "train"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["runs"], 3);
    assert!(close(v[0]["energy_kwh"].as_f64().unwrap(), 3.85));

    // The table says the same.
    let out = ok(&h.wp(&["projects"]));
    let line = out.lines().find(|l| l.starts_with("train")).unwrap();
    assert!(line.contains("4.12 kWh"), "{line}");
    assert!(line.contains("2.75 kWh"), "{line}");
    assert!(line.contains("66.7 %"), "{line}");
    assert!(line.contains("3.64 %"), "{line}");
    assert!(out.contains("WASTE: failed and killed runs"), "{out}");
}

#[test]
fn runs_lists_and_filters() {
    let h = Home::new();
    seed_projects(&h);
    let ids = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["runs", "--json"];
        a.extend_from_slice(args);
        let out = ok(&h.wp(&a));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap()[..8].to_string())
            .collect()
    };
    assert_eq!(ids(&[]).len(), 5);
    assert_eq!(ids(&["--project", "eval"]), vec!["eeee5555"]);
    let mut t = ids(&["--tag", "lr=0.1"]);
    t.sort();
    assert_eq!(t, vec!["aaaa1111", "cccc3333"]);
    assert_eq!(
        ids(&["--tag", "lr=0.1", "--tag", "model=vit"]),
        vec!["cccc3333"]
    );
    assert_eq!(ids(&["--status", "failed"]), vec!["aaaa2222"]);
    assert_eq!(ids(&["--status", "killed"]), vec!["cccc3333"]);
    assert_eq!(ids(&["--project", "train", "--since", "7d"]).len(), 3);
    let d = ids(&["--project", "train", "--since", "2000-01-01"]);
    assert_eq!(d.len(), 4);
    assert_eq!(d.last().unwrap(), "dddd4444", "newest first");
    assert_eq!(ids(&["--limit", "2"]).len(), 2);

    let table = ok(&h.wp(&["runs", "--project", "train"]));
    let header = table.lines().next().unwrap();
    for col in [
        "ID",
        "STARTED",
        "DURATION",
        "STATUS",
        "PROJECT",
        "ENERGY",
        "EMISSIONS",
        "METHODS",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let b = table.lines().find(|l| l.starts_with("aaaa2222")).unwrap();
    assert!(b.contains("failed"), "{b}");
    assert!(b.contains("2.20 kWh"), "{b}");
    assert!(b.contains("330 g"), "{b}");
    assert!(b.contains("cpu=rapl gpu=none ram=rapl-dram"), "{b}");
    assert!(table.contains("4 run(s)"), "{table}");

    // Bad filters: exit 2 with the fix, nothing printed on stdout.
    for (args, want) in [
        (vec!["runs", "--since", "last tuesday"], "--since"),
        (vec!["runs", "--tag", "novalue"], "KEY=VALUE"),
        (vec!["runs", "--status", "exploded"], "possible values"),
    ] {
        let o = h.wp(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn show_prints_the_full_record() {
    let h = Home::new();
    seed_projects(&h);
    let out = ok(&h.wp(&["show", "cccc"]));
    for want in [
        "run cccc3333 killed (signal 15)",
        ID_C,
        "project        train",
        "tags           lr=0.1 model=vit",
        "command        python train.py",
        "energy breakdown",
        "static (idle) 50.0 Wh",
        "emissions breakdown",
        "infrastructure",
        "equivalents",
        "car            0.471 km (EU average car)",
        "assumptions",
        "carbon intensity = 100 gCO2e/kWh",
        "source: test intensity (detail)",
        "idle power of cpu:package-0 = 360 W",
        "power series",
        "cpu:package-0",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(&h.wp(&["show", "--json", "cccc3"]))).unwrap();
    assert_eq!(json["id"], ID_C);
    assert_eq!(json["status"], "killed");
    let o = h.wp(&["show", "zzzz"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no run matches `zzzz`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn rm_removes_by_prefix_and_refuses_ambiguity() {
    let h = Home::new();
    seed_projects(&h);
    // `aaaa` matches A and B: error listing both, nothing removed (not even the valid `cccc`).
    let o = h.wp(&["rm", "cccc", "aaaa"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("matches 2 runs"), "{e}");
    assert!(e.contains(ID_A) && e.contains(ID_B), "{e}");
    assert!(e.contains("nothing was removed"), "{e}");
    assert_eq!(h.store().count_runs().unwrap(), 5);

    let out = ok(&h.wp(&["rm", "aaaa2", "cccc"]));
    assert!(out.contains(&format!("removed {ID_B}")), "{out}");
    assert!(out.contains(&format!("removed {ID_C}")), "{out}");
    let st = h.store();
    assert_eq!(st.count_runs().unwrap(), 3);
    assert!(st.get_run(ID_B).unwrap().is_none());
    assert!(st.series(ID_B).unwrap().is_empty(), "samples removed too");
    assert!(!st.series(ID_A).unwrap().is_empty(), "others untouched");
    // Now `aaaa` is unique.
    let out = ok(&h.wp(&["rm", "aaaa"]));
    assert!(out.contains(ID_A), "{out}");
    let o = h.wp(&["rm"]);
    assert_eq!(o.status.code(), Some(2));
}

/// `runs --status` takes every status the docs list, the stopped ones included.
#[test]
fn runs_status_filter_takes_every_documented_status() {
    let h = Home::new();
    let recent = now_minus(600);
    let mut st = h.store();
    for (id, status) in [
        (ID_A, RunStatus::Completed),
        (ID_B, RunStatus::StoppedByCap),
        (ID_C, RunStatus::StoppedByBudget),
    ] {
        seed(
            &mut st,
            &Seed {
                id,
                project: "train",
                status,
                started_at: &recent,
                secs: 10.0,
                cpu_kwh: 0.1,
                idle_w: None,
                tags: &[],
            },
        );
    }
    drop(st);
    for (status, want) in [
        ("stopped_by_cap", ID_B),
        ("stopped-by-cap", ID_B),
        ("stopped_by_budget", ID_C),
        ("completed", ID_A),
    ] {
        let out = ok(&h.wp(&["runs", "--json", "--status", status]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let ids: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![want], "--status {status}");
    }
    let table = ok(&h.wp(&["runs", "--status", "stopped_by_cap"]));
    assert!(table.contains("stopped_by_cap"), "{table}");
}

#[test]
fn migration_to_v3_fills_the_model_of_stored_records() {
    let h = Home::new();
    let mut fixture = v1_fixture();
    fixture[1].0.lineage = Some(wattprint_core::lineage::Lineage {
        model: Some("resnet".into()),
        ..Default::default()
    });
    write_v1(&h.db(), &fixture);
    let st = h.store();
    assert_eq!(st.schema_version().unwrap(), SCHEMA_VERSION);
    let f = RunFilter {
        lineage: wattprint::store::LineageFilter {
            model: Some("resnet".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let got = st.list_runs(&f).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, fixture[1].0.id);
}
