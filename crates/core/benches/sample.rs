//! Cost of one sample: each sensor's read on a fake sysfs/procfs tree, and the process-scope
//! attribution on the real /proc. `cargo bench -p wattprint-core --bench sample`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Instant;
use wattprint_core::attribution::ProcessTree;
use wattprint_core::host::HostPaths;
use wattprint_core::sampler::Attributor;
use wattprint_core::sensor::{Device, DeviceKind, Method, Sensor};
use wattprint_core::sensors::{
    cpu_model::CpuModelSensor, ram_model::RamModelSensor, rapl::RaplSensor,
};

fn write(p: &std::path::Path, s: &str) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(p, s).expect("write");
}

fn fake_host(dir: &std::path::Path) -> HostPaths {
    let sys = dir.join("sys");
    let proc = dir.join("proc");
    for (zone, name) in [
        ("intel-rapl:0", "package-0"),
        ("intel-rapl:0:0", "dram"),
        ("intel-rapl:1", "package-1"),
    ] {
        let z = sys.join("class/powercap").join(zone);
        write(&z.join("name"), &format!("{name}\n"));
        write(&z.join("energy_uj"), "123456789\n");
        write(&z.join("max_energy_range_uj"), "262143328850\n");
    }
    write(&proc.join("stat"), "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 50 0 50 500 0 0 0 0 0 0\ncpu1 50 0 50 500 0 0 0 0 0 0\n");
    write(
        &proc.join("meminfo"),
        "MemTotal:       16000000 kB\nMemFree:         8000000 kB\nMemAvailable:    8000000 kB\n",
    );
    write(&proc.join("cpuinfo"), "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\nphysical id\t: 0\n\n");
    HostPaths::new(sys, proc)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = fake_host(dir.path());
    let mut rapl = RaplSensor::open(&paths).expect("rapl");
    c.bench_function("rapl read (2 packages + dram)", |b| {
        b.iter(|| rapl.read(Instant::now()).expect("read"))
    });
    let mut cpu = CpuModelSensor::open(&paths, None).expect("cpu model");
    c.bench_function("cpu model read (procfs stat)", |b| {
        b.iter(|| cpu.read(Instant::now()).expect("read"))
    });
    let mut ram = RamModelSensor::open(&paths).expect("ram model");
    c.bench_function("ram model read (meminfo)", |b| {
        b.iter(|| ram.read(Instant::now()).expect("read"))
    });
    // Process scope on the real /proc, for this process's tree.
    let real = HostPaths::default();
    let pid = Arc::new(AtomicU32::new(std::process::id()));
    let mut attr = ProcessTree::new(real, pid, None);
    let devices = vec![Device {
        id: "cpu:x".into(),
        kind: DeviceKind::Cpu,
        method: Method::TdpModel,
        name: "x".into(),
        gpu_index: None,
        uuid: None,
        idle_power_w: None,
        factors: Vec::new(),
    }];
    c.bench_function("process-tree attribution (real /proc scan)", |b| {
        b.iter(|| attr.shares(&devices, &[None]))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
