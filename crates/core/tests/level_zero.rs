//! Intel GPUs through Level Zero Sysman, against a C fake of `libze_loader.so.1` built from
//! `tests/fake_level_zero/` and loaded through the real path.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use wattprint_core::discovery::{discover, DiscoverOptions};
use wattprint_core::env::Env;
use wattprint_core::host::HostPaths;
use wattprint_core::sensor::{Method, Sensor, SensorError};
use wattprint_core::sensors::level_zero::LevelZeroSensor;

fn fake(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_level_zero/fake_ze_loader.c");
    let out = dir.join("libze_loader.so.1");
    let o = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("a C compiler (cc) is needed to build the fake Level Zero loader");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn write(path: &Path, lines: &[(&str, String)]) {
    let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// Every scenario in one test: the fake's state file is named by a process-wide variable.
#[test]
fn level_zero_card_and_tile_domains_resets_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let lib = fake(dir.path());
    let state = dir.path().join("state");
    std::env::set_var("FAKE_ZE_STATE", &state);
    // Device 0: a Max 1550 with a card domain (and two tiles, not read); device 1: tiles only,
    // 300 W max limit each; device 2: its counter fails.
    let base = |e00: u64, e10: u64, e11: u64| -> Vec<(&'static str, String)> {
        vec![
            ("count", "3".into()),
            ("e00", e00.to_string()),
            ("e01", "999999999".into()),
            ("e02", "999999999".into()),
            ("card1", "0".into()),
            ("name1", "Intel(R) Data Center GPU Max 1100".into()),
            ("maxmw1", "300000".into()),
            ("e10", e10.to_string()),
            ("e11", e11.to_string()),
            ("fail2", "0x78000003".into()),
        ]
    };
    write(&state, &base(5_000_000, 1_000_000, 2_000_000));
    let mut s = LevelZeroSensor::open(Some(&lib), 0).expect("fake Level Zero opens");
    assert_eq!(s.name(), "level-zero");
    let d = s.devices().to_vec();
    assert_eq!(d.len(), 3);
    assert_eq!(d[0].name, "Intel(R) Data Center GPU Max 1550");
    assert_eq!(d[0].method, Method::LevelZeroEnergy);
    assert_eq!(
        d[0].uuid.as_deref(),
        Some("000102030405060708090a0b0c0d0e0f")
    );
    assert!(s.notes()[0].contains("card-level"), "{:?}", s.notes());
    assert!(s.notes()[0].contains("1500 W"), "{:?}", s.notes());
    assert_eq!(d[1].method, Method::LevelZeroEnergy);
    assert!(s.notes()[1].contains("sum of 2 tile"), "{:?}", s.notes());
    assert!(
        s.notes()[1].contains("1200 W"),
        "2 × (300 + 300) W: {:?}",
        s.notes()
    );
    assert_eq!(d[2].method, Method::None);
    let w = s.take_warnings();
    assert!(
        w.len() == 1 && w[0].contains("gpu:2") && w[0].contains("UNSUPPORTED_FEATURE"),
        "{w:?}"
    );

    let t0 = Instant::now();
    let sec = Duration::from_secs(1);
    s.read(t0).unwrap();
    // +250 J on the card domain; the tiles (not read for device 0) move wildly: ignored.
    write(
        &state,
        &base(255_000_000, 1_000_000 + 100_000_000, 2_000_000 + 50_000_000),
    );
    let r = s.read(t0 + sec).unwrap();
    assert!((r.energy[0].0 - 250.0).abs() < 1e-9, "{}", r.energy[0].0);
    assert!((r.energy[1].0 - 150.0).abs() < 1e-9, "{}", r.energy[1].0);
    assert_eq!(r.energy[2].0, 0.0);
    // A decrease (driver reload): a reset, counted from zero, said once.
    write(&state, &base(10_000_000, 101_000_000, 52_000_000));
    let r = s.read(t0 + 2 * sec).unwrap();
    assert!((r.energy[0].0 - 260.0).abs() < 1e-9, "{}", r.energy[0].0);
    let w = s.take_warnings();
    assert!(
        w.len() == 1 && w[0].contains("gpu:0") && w[0].contains("went back"),
        "{w:?}"
    );
    drop(s);

    // Indices continue after other vendors' GPUs.
    let s = LevelZeroSensor::open(Some(&lib), 2).unwrap();
    assert_eq!(s.devices()[0].id, "gpu:2");
    drop(s);

    // No device; initialisation refused; not a loader.
    write(&state, &[("count", "0".into())]);
    let e = LevelZeroSensor::open(Some(&lib), 0).unwrap_err();
    assert!(matches!(e, SensorError::Unsupported(_)) && e.to_string().contains("no Intel GPU"));
    write(&state, &[("init_status", "0x70010000".into())]);
    let e = LevelZeroSensor::open(Some(&lib), 0).unwrap_err();
    assert!(e.to_string().contains("INSUFFICIENT_PERMISSIONS"), "{e}");
    let e = LevelZeroSensor::open(Some(&dir.path().join("none.so")), 0).unwrap_err();
    assert!(
        e.to_string().contains("WATTPRINT_LEVEL_ZERO_LIBRARY"),
        "{e}"
    );

    // Discovery: from the variable; without it and without i915/xe, not loaded.
    write(&state, &base(5_000_000, 1_000_000, 2_000_000));
    std::fs::create_dir_all(dir.path().join("sys")).unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    let host = HostPaths::new(dir.path().join("sys"), dir.path().join("proc"));
    let env = Env::from_pairs([
        (
            "WATTPRINT_LEVEL_ZERO_LIBRARY",
            lib.to_string_lossy().into_owned(),
        ),
        ("WATTPRINT_NVML_LIBRARY", "/nonexistent/x.so".into()),
    ]);
    let d = discover(&host, &DiscoverOptions::resolve(&env, None, None));
    let src = d.sources.iter().find(|s| s.source == "level-zero").unwrap();
    assert!(src.found && src.detail.contains("3 GPU(s)"), "{src:?}");
    let gpu = d
        .components
        .iter()
        .find(|c| c.component == wattprint_core::sensor::DeviceKind::Gpu)
        .unwrap();
    assert_eq!(gpu.method, Method::LevelZeroEnergy);
    assert!(
        gpu.detail
            .contains("gpu:1 Intel(R) Data Center GPU Max 1100"),
        "{}",
        gpu.detail
    );
    assert_eq!(d.gpus.len(), 3);
    assert_eq!(d.visible_gpus, None);
    // ZE_AFFINITY_MASK gives the job devices (a tile names its device): process scope charges them
    let env = Env::from_pairs([
        (
            "WATTPRINT_LEVEL_ZERO_LIBRARY",
            lib.to_string_lossy().into_owned(),
        ),
        ("WATTPRINT_NVML_LIBRARY", "/nonexistent/x.so".into()),
        ("ZE_AFFINITY_MASK", "2,1.1,9".into()),
    ]);
    let d = discover(&host, &DiscoverOptions::resolve(&env, None, None));
    assert_eq!(d.visible_gpus, Some(vec![2, 1]));
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("ZE_AFFINITY_MASK=2,1.1,9: 9")),
        "{:?}",
        d.warnings
    );
    let env = Env::from_pairs([("WATTPRINT_NVML_LIBRARY", "/nonexistent/x.so")]);
    let d = discover(&host, &DiscoverOptions::resolve(&env, None, None));
    let src = d.sources.iter().find(|s| s.source == "level-zero").unwrap();
    assert!(
        !src.found && src.detail.contains("no Intel GPU driver"),
        "{src:?}"
    );
    // With the xe module present the default loader is tried (absent here: said, not fatal).
    std::fs::create_dir_all(dir.path().join("sys/module/xe")).unwrap();
    let d = discover(&host, &DiscoverOptions::resolve(&env, None, None));
    let src = d.sources.iter().find(|s| s.source == "level-zero").unwrap();
    assert!(
        !src.found && src.detail.contains("libze_loader.so.1"),
        "{src:?}"
    );
    std::env::remove_var("FAKE_ZE_STATE");
}
