#![allow(clippy::unwrap_used)]
//! cpuinfo parsing, TDP table lookup, and the CPU/RAM model sensors on fake /proc trees.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};
use wattprint_core::cpu_table::{self, CpuMatch};
use wattprint_core::cpuinfo::{self, parse_cpuinfo};
use wattprint_core::host::HostPaths;
use wattprint_core::sensor::{DeviceKind, Method, Sensor, SensorError};
use wattprint_core::sensors::cpu_model::{CpuModelSensor, TdpSource, IDLE_FRACTION};
use wattprint_core::sensors::ram_model::RamModelSensor;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// x86 `/proc/cpuinfo` with `sockets × per_socket` logical CPUs.
fn x86_cpuinfo(model: &str, sockets: usize, per_socket: usize, hypervisor: bool) -> String {
    let flags = if hypervisor {
        "fpu vme de pse tsc msr pae mce cx8 apic sep hypervisor lahf_lm"
    } else {
        "fpu vme de pse tsc msr pae mce cx8 apic sep lahf_lm"
    };
    let mut s = String::new();
    let mut n = 0;
    for sock in 0..sockets {
        for core in 0..per_socket {
            s += &format!(
                "processor\t: {n}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 106\nmodel name\t: {model}\nstepping\t: 6\ncpu MHz\t\t: 2900.000\ncache size\t: 55296 KB\nphysical id\t: {sock}\nsiblings\t: {per_socket}\ncore id\t\t: {core}\ncpu cores\t: {per_socket}\nflags\t\t: {flags}\nvmx flags\t: vnmi\nbogomips\t: 5800.00\n\n"
            );
            n += 1;
        }
    }
    s
}

fn stat_text(busy_user: u64, idle: u64, ncpu: usize) -> String {
    // user nice system idle iowait irq softirq steal guest guest_nice
    let mut s = format!("cpu  {busy_user} 0 0 {idle} 0 0 0 0 0 0\n");
    for i in 0..ncpu {
        s += &format!("cpu{i} 0 0 0 0 0 0 0 0 0 0\n");
    }
    s + "intr 1\nctxt 2\n"
}

fn fake(cpuinfo: &str, ncpu: usize) -> (tempfile::TempDir, HostPaths) {
    let dir = tempfile::tempdir().unwrap();
    let paths = HostPaths::new(dir.path().join("sys"), dir.path().join("proc"));
    write(&paths.proc, "cpuinfo", cpuinfo);
    write(&paths.proc, "stat", &stat_text(1000, 9000, ncpu));
    (dir, paths)
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-12)
}

// ---------- cpuinfo ----------

#[test]
fn cpuinfo_two_sockets_bare_metal() {
    let text = x86_cpuinfo("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", 2, 4, false);
    let i = parse_cpuinfo(&text, Path::new("/proc/cpuinfo")).unwrap();
    assert_eq!(
        i.models,
        vec!["Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz".to_string()]
    );
    assert_eq!(i.sockets, 2);
    assert_eq!(i.logical_cpus, 8);
    assert!(!i.hypervisor);
}

#[test]
fn cpuinfo_vm_without_physical_id() {
    let text = x86_cpuinfo("AMD EPYC Processor", 1, 3, true)
        .lines()
        .filter(|l| !l.starts_with("physical id"))
        .collect::<Vec<_>>()
        .join("\n");
    let i = parse_cpuinfo(&text, Path::new("/proc/cpuinfo")).unwrap();
    assert_eq!(i.sockets, 1, "no physical id: at least one socket");
    assert_eq!(i.logical_cpus, 3);
    assert!(i.hypervisor);
}

#[test]
fn cpuinfo_arm64() {
    let block = |n: usize, part: &str| {
        format!("processor\t: {n}\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU revision\t: 1\nCPU part\t: {part}\n\n")
    };
    let text = block(0, "0xd0c") + &block(1, "0xd0c");
    let i = parse_cpuinfo(&text, Path::new("/proc/cpuinfo")).unwrap();
    assert_eq!(i.models, vec!["ARM Neoverse-N1".to_string()]);
    assert_eq!((i.logical_cpus, i.sockets, i.hypervisor), (2, 1, false));
    let text = block(0, "0xfff");
    let i = parse_cpuinfo(&text, Path::new("/proc/cpuinfo")).unwrap();
    assert_eq!(
        i.models,
        vec!["CPU implementer 0x41 part 0xfff".to_string()]
    );
    // nothing that names a model at all
    let i = parse_cpuinfo("processor : 0\nBogoMIPS : 1\n", Path::new("/p")).unwrap();
    assert_eq!(i.models, vec!["unknown".to_string()]);
}

#[test]
fn cpuinfo_garbage_is_invalid() {
    let e = parse_cpuinfo("hello world\n", Path::new("/proc/cpuinfo")).unwrap_err();
    assert!(matches!(e, SensorError::Invalid { .. }), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let paths = HostPaths::new(dir.path(), dir.path());
    assert!(matches!(
        cpuinfo::read_cpuinfo(&paths),
        Err(SensorError::Missing { .. })
    ));
}

// ---------- TDP table ----------

fn found(name: &str) -> (String, f64, Option<u32>, &'static str) {
    match cpu_table::lookup(name) {
        CpuMatch::Found {
            model,
            tdp_w,
            cores,
            source,
        } => (model, tdp_w, cores, source),
        other => panic!("{name}: expected Found, got {other:?}"),
    }
}

#[test]
fn lookup_real_cpuinfo_names() {
    // AWS m6i / c6i
    let (m, w, _, s) = found("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz");
    assert_eq!(
        (m.as_str(), w, s),
        ("Intel Xeon Platinum 8375C", 300.0, "codecarbon-3.3.2")
    );
    // AWS m5
    assert_eq!(
        found("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz").1,
        210.0
    );
    // AWS m4 / p3 host CPU
    assert_eq!(found("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz").1, 145.0);
    // AWS c6a
    assert_eq!(found("AMD EPYC 7R13 Processor").1, 225.0);
    // GCP n2d (Rome)
    assert_eq!(found("AMD EPYC 7B12 64-Core Processor").1, 240.0);
    // Milan, both sources agree and Green Algorithms gives the core count
    let (m, w, c, s) = found("AMD EPYC 7763 64-Core Processor");
    assert_eq!((m.as_str(), w, c), ("AMD EPYC 7763", 280.0, Some(64)));
    assert!(
        s.contains("codecarbon") && s.contains("green-algorithms"),
        "{s}"
    );
    // laptop, via the model-number token ("11th" and "Gen" are not in the table name)
    assert_eq!(
        found("11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz").1,
        28.0
    );
    // Sandy Bridge Xeons print a stray "0"; must not match the v2/v3 parts
    let (m, w, _, _) = found("Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz");
    assert_eq!((m.as_str(), w), ("Intel Xeon E5-2670", 115.0));
    assert_eq!(found("Intel(R) Xeon(R) CPU E5-2670 v2 @ 2.50GHz").1, 115.0);
    assert_eq!(found("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz").1, 150.0);
}

#[test]
fn lookup_vague_and_unknown_names() {
    for vague in [
        "AMD EPYC",
        "AMD EPYC Processor",
        "AMD EPYC Processor (with IBPB)",
        "Intel Xeon Processor",
        "Intel Xeon Processor (Cascadelake)",
        "Intel(R) Xeon(R) CPU @ 2.20GHz",
        "Intel(R) Xeon(R) CPU @ 2.00GHz",
        "Common KVM processor",
        "QEMU Virtual CPU version 2.5+",
        "",
        "unknown",
    ] {
        assert_eq!(cpu_table::lookup(vague), CpuMatch::Unknown, "{vague:?}");
    }
    // GCP's Milan part is not in the table, and must not fall back to 7B12 or 7R13
    assert_eq!(
        cpu_table::lookup("AMD EPYC 7B13 64-Core Processor"),
        CpuMatch::Unknown
    );
    // Graviton / Neoverse are not in the table
    assert_eq!(cpu_table::lookup("ARM Neoverse-N1"), CpuMatch::Unknown);
}

#[test]
fn lookup_ambiguous_lists_candidates() {
    // CodeCarbon says 105 W, Green Algorithms 125 W
    match cpu_table::lookup("AMD Ryzen 9 3900X 12-Core Processor") {
        CpuMatch::Ambiguous { candidates } => {
            let w: Vec<f64> = candidates.iter().map(|c| c.1).collect();
            assert!(w.contains(&105.0) && w.contains(&125.0), "{candidates:?}");
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    // two variants of the Q6600 with different TDPs
    assert!(matches!(
        cpu_table::lookup("Intel(R) Core(TM)2 Quad CPU    Q6600  @ 2.40GHz"),
        CpuMatch::Ambiguous { .. }
    ));
}

#[test]
fn search_is_case_insensitive_substring() {
    let r = cpu_table::search("epyc 77");
    assert!(
        r.iter()
            .any(|(m, w, _)| m == "AMD EPYC 7763" && *w == 280.0),
        "{r:?}"
    );
    assert!(r
        .iter()
        .all(|(m, _, _)| m.to_lowercase().contains("epyc 77")));
    assert!(cpu_table::search("Xeon(R) Gold 6248")
        .iter()
        .any(|(m, _, _)| m == "Intel Xeon Gold 6248"));
    assert!(cpu_table::search("no such cpu zzz").is_empty());
}

// ---------- CPU model sensor ----------

#[test]
fn cpu_model_energy_follows_load() {
    let (_d, paths) = fake(
        &x86_cpuinfo("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", 2, 4, false),
        8,
    );
    let mut s = CpuModelSensor::open(&paths, None).unwrap();
    assert_eq!(
        s.tdp_source(),
        &TdpSource::Table {
            model: "Intel Xeon Platinum 8375C".into(),
            source: "codecarbon-3.3.2"
        }
    );
    let pmax = 600.0; // 300 W × 2 sockets
    assert!(close(s.max_power().0, pmax, 1e-12));
    assert!(close(s.idle_power().0, 0.74 / 3.5 * pmax, 1e-12));
    assert!(close(IDLE_FRACTION, 0.2114, 1e-3));
    let pmin = s.idle_power().0;
    let dev = &s.devices()[0];
    assert_eq!(
        (dev.id.as_str(), dev.kind, dev.method),
        ("cpu:model", DeviceKind::Cpu, Method::TdpModel)
    );
    assert_eq!(dev.name, "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz");
    assert!(close(dev.idle_power_w.unwrap(), pmin, 1e-12));
    assert_eq!(s.name(), "cpu-model");
    assert!(s.take_warnings().is_empty());

    let t0 = Instant::now();
    let r = s.read(t0).unwrap();
    assert_eq!(r.energy[0].0, 0.0);

    // 10 s at load 0.75: Δbusy 3000, Δidle 1000
    write(&paths.proc, "stat", &stat_text(4000, 10000, 8));
    let r = s.read(t0 + Duration::from_secs(10)).unwrap();
    let p1 = pmin + 0.75 * (pmax - pmin);
    assert!(close(r.power[0].unwrap().0, p1, 1e-9));
    assert!(
        close(r.energy[0].0, p1 * 10.0, 0.01),
        "{} vs {}",
        r.energy[0].0,
        p1 * 10.0
    );
    assert!(close(s.last_load().unwrap(), 0.75, 1e-12));

    // 5 s at load 0.1: Δbusy 100, Δidle 900
    write(&paths.proc, "stat", &stat_text(4100, 10900, 8));
    let r = s.read(t0 + Duration::from_secs(15)).unwrap();
    let p2 = pmin + 0.1 * (pmax - pmin);
    assert!(close(r.energy[0].0, p1 * 10.0 + p2 * 5.0, 0.01));

    // 2 s without any tick: the previous load holds
    let r = s.read(t0 + Duration::from_secs(17)).unwrap();
    assert!(close(r.energy[0].0, p1 * 10.0 + p2 * 7.0, 0.01));

    // idle interval: exactly Pmin
    write(&paths.proc, "stat", &stat_text(4100, 20900, 8));
    let r = s.read(t0 + Duration::from_secs(27)).unwrap();
    assert!(close(
        r.energy[0].0,
        p1 * 10.0 + p2 * 7.0 + pmin * 10.0,
        0.01
    ));
}

#[test]
fn cpu_model_unknown_cpu_defaults_per_thread_loudly() {
    let (_d, paths) = fake(&x86_cpuinfo("AMD EPYC Processor", 1, 8, true), 8);
    let mut s = CpuModelSensor::open(&paths, None).unwrap();
    assert_eq!(
        s.tdp_source(),
        &TdpSource::DefaultPerThread {
            threads: 8,
            watts_per_thread: 3.5
        }
    );
    assert!(close(s.max_power().0, 28.0, 1e-12));
    let w = s.take_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("AMD EPYC Processor") && w[0].contains("--cpu-tdp"),
        "{w:?}"
    );
    assert!(s.take_warnings().is_empty(), "warnings are given once");
}

#[test]
fn cpu_model_ambiguous_cpu_lists_candidates() {
    let (_d, paths) = fake(
        &x86_cpuinfo("AMD Ryzen 9 3900X 12-Core Processor", 1, 24, false),
        24,
    );
    let mut s = CpuModelSensor::open(&paths, None).unwrap();
    assert!(matches!(
        s.tdp_source(),
        TdpSource::DefaultPerThread { threads: 24, .. }
    ));
    assert!(close(s.max_power().0, 24.0 * 3.5, 1e-12));
    let w = s.take_warnings().join("\n");
    assert!(
        w.contains("105") && w.contains("125") && w.contains("--cpu-tdp"),
        "{w}"
    );
}

#[test]
fn cpu_model_user_tdp_and_vm_warning() {
    let (_d, paths) = fake(
        &x86_cpuinfo("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", 1, 2, true),
        2,
    );
    let mut s = CpuModelSensor::open(&paths, Some(40.0)).unwrap();
    assert_eq!(s.tdp_source(), &TdpSource::User);
    assert!(close(s.max_power().0, 40.0, 1e-12));
    assert!(close(s.idle_power().0, 40.0 * IDLE_FRACTION, 1e-12));
    let w = s.take_warnings().join("\n");
    assert!(w.contains("virtual machine"), "{w}");

    for bad in [0.0, -5.0, f64::NAN, f64::INFINITY] {
        let e = CpuModelSensor::open(&paths, Some(bad)).unwrap_err();
        assert!(e.to_string().contains("--cpu-tdp"), "{e}");
    }
}

#[test]
fn cpu_model_missing_stat_fails_clearly() {
    let (_d, paths) = fake(
        &x86_cpuinfo("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 1, 2, false),
        2,
    );
    fs::remove_file(paths.proc.join("stat")).unwrap();
    let e = CpuModelSensor::open(&paths, None).unwrap_err();
    assert!(e.to_string().contains("stat"), "{e}");
}

// ---------- RAM model sensor ----------

#[test]
fn ram_model_trapezoid_over_memory_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let paths = HostPaths::new(dir.path().join("sys"), dir.path().join("proc"));
    let gib_kb = 1024 * 1024; // kB per GiB
    let mem = |total_gib: u64, avail_gib: u64| {
        format!(
            "MemTotal:       {} kB\nMemFree:        1 kB\nMemAvailable:   {} kB\n",
            total_gib * gib_kb,
            avail_gib * gib_kb
        )
    };
    write(&paths.proc, "meminfo", &mem(16, 8));
    let mut s = RamModelSensor::open(&paths).unwrap();
    assert_eq!(s.memory_in_use(), 8 << 30);
    assert_eq!(s.memory_total(), 16 << 30);
    let d = &s.devices()[0];
    assert_eq!(
        (d.id.as_str(), d.kind, d.method),
        ("ram:model", DeviceKind::Ram, Method::Model)
    );
    assert!(d.name.contains("0.3725"));
    assert_eq!(s.name(), "ram-model");

    let t0 = Instant::now();
    let r = s.read(t0).unwrap();
    assert_eq!(r.energy[0].0, 0.0);
    assert!(close(r.power[0].unwrap().0, 8.0 * 0.3725, 1e-12));

    write(&paths.proc, "meminfo", &mem(16, 4));
    let r = s.read(t0 + Duration::from_secs(10)).unwrap();
    assert!(close(r.power[0].unwrap().0, 12.0 * 0.3725, 1e-12));
    let e1 = 0.5 * (8.0 + 12.0) * 0.3725 * 10.0;
    assert!(close(r.energy[0].0, e1, 0.01), "{} vs {e1}", r.energy[0].0);

    let r = s.read(t0 + Duration::from_secs(30)).unwrap();
    assert!(close(r.energy[0].0, e1 + 12.0 * 0.3725 * 20.0, 0.01));

    fs::remove_file(paths.proc.join("meminfo")).unwrap();
    assert!(s.read(t0 + Duration::from_secs(31)).is_err());
}

#[test]
fn cpu_model_charges_a_vm_its_share_of_the_package() {
    // 4 vCPUs of a Xeon Platinum 8375C (300 W, 64 logical CPUs per package in CCF's AWS list)
    let (_d, paths) = fake(
        &x86_cpuinfo("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", 1, 4, true),
        4,
    );
    let mut s = CpuModelSensor::open(&paths, None).unwrap();
    assert!(matches!(s.tdp_source(), TdpSource::Table { .. }));
    let v = *s.vm_share().unwrap();
    assert_eq!((v.vm_threads, v.package.threads()), (4, 64));
    assert!(close(s.max_power().0, 300.0 * 4.0 / 64.0, 1e-12));
    assert!(close(s.idle_power().0, IDLE_FRACTION * 18.75, 1e-12));
    let w = s.take_warnings().join("\n");
    assert!(
        w.contains("4 of its 64 logical CPUs") && w.contains("18.8 W"),
        "{w}"
    );

    // 8 vCPUs of an EPYC 7763 (280 W, 64 cores in the table: 128 threads assumed)
    let (_d, paths) = fake(
        &x86_cpuinfo("AMD EPYC 7763 64-Core Processor", 1, 8, true),
        8,
    );
    let s = CpuModelSensor::open(&paths, None).unwrap();
    let v = *s.vm_share().unwrap();
    assert_eq!(
        v.package,
        wattprint_core::cpu_table::PackageThreads::TwiceCores { cores: 64 }
    );
    assert!(close(s.max_power().0, 280.0 * 8.0 / 128.0, 1e-12));

    // A table CPU whose package size is unknown: the per-thread default, never the whole package
    let (_d, paths) = fake(
        &x86_cpuinfo("Intel(R) Xeon(R) Platinum 8480+", 1, 2, true),
        2,
    );
    let mut s = CpuModelSensor::open(&paths, None).unwrap();
    assert_eq!(
        s.tdp_source(),
        &TdpSource::DefaultPerThread {
            threads: 2,
            watts_per_thread: 3.5
        }
    );
    assert!(s.vm_share().is_none());
    assert!(close(s.max_power().0, 7.0, 1e-12));
    let w = s.take_warnings().join("\n");
    assert!(w.contains("virtual machine") && w.contains("8480+"), "{w}");

    // Bare metal: the whole package per socket, as before
    let (_d, paths) = fake(
        &x86_cpuinfo("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", 1, 4, false),
        4,
    );
    let s = CpuModelSensor::open(&paths, None).unwrap();
    assert!(s.vm_share().is_none());
    assert!(close(s.max_power().0, 300.0, 1e-12));
}
