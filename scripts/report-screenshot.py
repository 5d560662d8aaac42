#!/usr/bin/env python3
"""Make docs/img/report.png: a real `wattprint run` of about 25 s on a fake machine (powercap
tree for one CPU package and its DRAM, the test suite's fake NVML library for one GPU) driven
at a varying power like a small training job (warm-up, epochs with evaluation dips), then
`wattprint report RUN --format html`, photographed by headless Chromium.

    cargo build --release -p wattprint
    python3 scripts/report-screenshot.py [--seconds 25] [--out docs/img/report.png] [--keep DIR]

Needs cc (for the fake NVML) and /usr/bin/chromium (apt-get install chromium).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "wattprint")
CHROMIUM = "/usr/bin/chromium"


def power(t):
    """(cpu W, dram W, gpu W) at t seconds: warm-up, then epochs of 6 s with an eval dip."""
    if t < 3.0:
        return 35 + 10 * t, 4.0, 60 + 40 * t
    e = (t - 3.0) % 6.0
    if e > 5.0:  # evaluation: GPU idles, CPU busy loading data
        return 95.0, 7.0, 120.0
    wobble = 8 * math.sin(t * 2.3)
    return 70 + wobble, 5.5, 290 + 25 * math.sin(t * 1.1) + wobble


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=25.0)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "img", "report.png"))
    ap.add_argument("--width", type=int, default=860)
    ap.add_argument("--height", type=int, default=1500)
    ap.add_argument("--keep", help="copy the HTML report here too")
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release -p wattprint")
    if not os.path.exists(CHROMIUM):
        sys.exit("install Chromium first: apt-get install chromium")
    d = tempfile.mkdtemp(prefix="wattprint-shot-")
    try:
        lib = os.path.join(d, "libfake_nvml.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-o", lib,
                        os.path.join(ROOT, "crates/core/tests/fake_nvml/fake_nvml.c")], check=True)
        sysfs, procfs, home = (os.path.join(d, x) for x in ("sys", "proc", "home"))
        zones = {"intel-rapl:0": ("package-0", "262143328850"),
                 "intel-rapl:0:0": ("dram", "65712999613")}
        for z, (name, rng) in zones.items():
            zd = os.path.join(sysfs, "class/powercap", z)
            os.makedirs(zd)
            write_atomic(os.path.join(zd, "name"), name + "\n")
            write_atomic(os.path.join(zd, "energy_uj"), "1000000\n")
            write_atomic(os.path.join(zd, "max_energy_range_uj"), rng + "\n")
        os.makedirs(procfs)
        cpus = "".join(f"cpu{i} 25 0 25 250 0 0 0 0 0 0\n" for i in range(16))
        write_atomic(os.path.join(procfs, "stat"), "cpu  400 0 400 4000 0 0 0 0 0 0\n" + cpus)
        write_atomic(os.path.join(procfs, "meminfo"),
                     "MemTotal:       65000000 kB\nMemFree:        30000000 kB\nMemAvailable:   30000000 kB\n")
        write_atomic(os.path.join(procfs, "cpuinfo"), "".join(
            f"processor\t: {i}\nmodel name\t: AMD EPYC 7763 64-Core Processor\nphysical id\t: 0\n\n"
            for i in range(16)))
        state = os.path.join(d, "nvml.state")
        write_atomic(state, "count=1\nenergy0_mj=0\npower0_mw=0\n")

        stop = threading.Event()

        def drive():
            t0 = time.monotonic()
            last = 0.0
            e = [1e6, 1e6, 0.0]  # uJ, uJ, mJ
            while not stop.is_set():
                t = time.monotonic() - t0
                c, r, g = power(t)
                dt = t - last
                last = t
                e[0] += c * 1e6 * dt
                e[1] += r * 1e6 * dt
                e[2] += g * 1e3 * dt
                write_atomic(os.path.join(sysfs, "class/powercap/intel-rapl:0/energy_uj"), f"{int(e[0])}\n")
                write_atomic(os.path.join(sysfs, "class/powercap/intel-rapl:0:0/energy_uj"), f"{int(e[1])}\n")
                write_atomic(state, f"count=1\nenergy0_mj={int(e[2])}\npower0_mw={int(g * 1000)}\n")
                time.sleep(0.01)

        th = threading.Thread(target=drive)
        th.start()
        env = dict(os.environ, WATTPRINT_SYSFS_ROOT=sysfs, WATTPRINT_PROCFS_ROOT=procfs,
                   WATTPRINT_HOME=home, WATTPRINT_NVML_LIBRARY=lib, FAKE_NVML_STATE=state)
        env.pop("WATTPRINT_LOCATION", None)
        try:
            subprocess.run([BIN, "run", "--quiet", "--interval", "250ms", "--project", "resnet-finetune",
                            "--tag", "model=resnet50", "--tag", "training_type=fine-tuning",
                            "--location", "aws:us-east-1", "--", "sleep", str(a.seconds)],
                           env=env, check=True)
        finally:
            stop.set()
            th.join()
        html = os.path.join(d, "report.html")
        runs = subprocess.run([BIN, "report", "--all", "--format", "json"], env=env, check=True,
                              capture_output=True, text=True).stdout
        run_id = json.loads(runs)["runs"][0]["id"]
        subprocess.run([BIN, "report", run_id, "--output", html], env=env, check=True)
        if a.keep:
            shutil.copy(html, a.keep)
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        prof = os.path.join(d, "profile")
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--host-resolver-rules=MAP * ~NOTFOUND", "--hide-scrollbars",
                        f"--user-data-dir={prof}", f"--window-size={a.width},{a.height}",
                        f"--screenshot={os.path.abspath(a.out)}", "file://" + html],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"{a.out}: {os.path.getsize(a.out)} bytes (run {run_id[:8]})")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
