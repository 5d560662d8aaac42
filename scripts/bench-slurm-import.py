#!/usr/bin/env python3
"""Time and peak memory of `wattprint slurm import` on a synthetic sacct -P history.

    cargo build --release -p wattprint
    python3 scripts/bench-slurm-import.py [--jobs 250000] [--bin target/release/wattprint]

Writes JOBS jobs (each with .batch, .extern and .0 steps: 4 lines a job) to a temporary file,
then runs the import with --format csv and text to /dev/null and prints wall time and peak
RSS (from /usr/bin/time or resource.getrusage of the child)."""
import argparse, os, random, resource, subprocess, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("--jobs", type=int, default=250_000)
p.add_argument("--bin", default="target/release/wattprint")
a = p.parse_args()
random.seed(1)
states = ["COMPLETED"] * 6 + ["FAILED", "CANCELLED by 1000", "TIMEOUT", "OUT_OF_MEMORY"]
with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    f.write("JobID|JobIDRaw|User|Account|Partition|State|Start|End|Elapsed|NNodes|NCPUS|TotalCPU|CPUTime|ReqMem|MaxRSS|AllocTRES|WorkDir|Cluster|ConsumedEnergyRaw\n")
    for i in range(1, a.jobs + 1):
        u, st, c = f"u{i % 500}", random.choice(states), random.choice([1, 4, 16, 64])
        f.write(f"{i}|{i}|{u}|acc{i % 50}|p{i % 5}|{st}|2026-01-01T00:00:00|2026-01-01T01:00:00|01:00:00|1|{c}|00:30:00|{c:02d}:00:00|{c}Gn||cpu={c},mem={c}G,node=1,gres/gpu={i % 3}|/home/{u}|hpc|\n")
        f.write(f"{i}.batch|{i}.batch||||{st}|||01:00:00|1|{c}|00:30:00|{c:02d}:00:00||{c * 300}M|cpu={c}|||\n")
        f.write(f"{i}.extern|{i}.extern||||{st}|||01:00:00|1|{c}|00:00:00|{c:02d}:00:00||0|cpu={c}|||\n")
        f.write(f"{i}.0|{i}.0||||{st}|||00:50:00|1|{c}|00:29:00|{c:02d}:00:00||{c * 500}M|cpu={c}|||\n")
    path = f.name
size = os.path.getsize(path) / 1e6
try:
    for fmt in ["csv", "text", "json"]:
        t0 = time.monotonic()
        r = subprocess.run([a.bin, "slurm", "import", path, "--intensity", "300", "--pue", "1.2",
                            "--format", fmt, "--no-measured"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        dt = time.monotonic() - t0
        assert r.returncode == 0, r.stderr.decode()
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"{fmt:5} {a.jobs} jobs ({4 * a.jobs} lines, {size:.0f} MB): {dt:.1f} s, "
              f"{a.jobs / dt:,.0f} jobs/s, peak RSS so far {peak:.1f} MB")
finally:
    os.unlink(path)
