#!/usr/bin/env python3
"""Overhead of measuring: one fixed CPU-bound workload run bare, under `wattprint run` (default
interval and 10 ms), and under CodeCarbon's EmissionsTracker when it can be installed into a venv
under target/. Prints wall time, CPU seconds, peak RSS and what the tracker added, per mode
(median of --repeat runs). Then what a user feels at the ends of a run: the wall time of
`wattprint run -- true` against a bare `true`, and the time from the job's exit to wattprint's.

    cargo build --release -p wattprint
    python3 scripts/bench-overhead.py [--repeat 3] [--iterations 30000000] [--no-codecarbon]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = "s=0\nfor i in range({n}):\n    s += i * i\nprint(s % 7)\n"


def run(cmd, env=None):
    """Run cmd, return (wall s, cpu s of it and its children, peak rss MB, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    out = p.stdout.read().decode()
    err = p.stderr.read().decode()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{err}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0, out


def codecarbon_python(venv):
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        r = subprocess.run([py, "-m", "pip", "install", "-q", "codecarbon"], capture_output=True)
        if r.returncode != 0:
            print("CodeCarbon could not be installed; skipping it:\n" + r.stderr.decode()[-500:])
            return None
    r = subprocess.run([py, "-c", "import codecarbon; print(codecarbon.__version__)"], capture_output=True)
    if r.returncode != 0:
        return None
    return py, r.stdout.decode().strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=30_000_000)
    ap.add_argument("--no-codecarbon", action="store_true")
    ap.add_argument("--no-steady", action="store_true", help="skip the steady-state measurement")
    ap.add_argument("--latency-only", action="store_true",
                    help="only the start and end latency (what a user feels on a short job)")
    ap.add_argument("--latency-repeat", type=int, default=30)
    ap.add_argument("--wattprint", default=os.path.join(ROOT, "target", "release", "wattprint"))
    a = ap.parse_args()
    if not os.path.exists(a.wattprint):
        sys.exit(f"{a.wattprint} not found: run `cargo build --release -p wattprint` first")

    tmp = tempfile.mkdtemp(prefix="wattprint-bench-")
    if a.latency_only:
        latency(a.wattprint, dict(os.environ, WATTPRINT_HOME=os.path.join(tmp, "home")),
                a.latency_repeat)
        return
    work = os.path.join(tmp, "work.py")
    with open(work, "w") as f:
        f.write(WORKLOAD.format(n=a.iterations))
    env = dict(os.environ, WATTPRINT_HOME=os.path.join(tmp, "home"))

    modes = [("bare", lambda: run([sys.executable, work], env), None)]
    for label, interval in [("wattprint run (1s)", "1s"), ("wattprint run (10ms)", "10ms")]:
        def wp(interval=interval):
            js = os.path.join(tmp, "rec.json")
            r = run([a.wattprint, "run", "--quiet", "--interval", interval, "--json", js, "--",
                     sys.executable, work], env)
            with open(js) as f:
                rec = json.load(f)
            return r, rec["tracker"]
        modes.append((label, wp, "wattprint"))
    cc = None if a.no_codecarbon else codecarbon_python(os.path.join(ROOT, "target", "bench-venv"))
    if cc:
        py, ver = cc
        ccwork = os.path.join(tmp, "cc.py")
        with open(ccwork, "w") as f:
            f.write("from codecarbon import EmissionsTracker\n"
                    "t = EmissionsTracker(save_to_file=False, log_level='error')\n"
                    "t.start()\n" + WORKLOAD.format(n=a.iterations) + "t.stop()\n")
        barepy = lambda: run([py, work], env)
        modes.append((f"CodeCarbon {ver} (venv python bare)", barepy, None))
        modes.append((f"CodeCarbon {ver} EmissionsTracker", lambda: run([py, ccwork], env), "codecarbon"))

    results = {}
    for label, fn, kind in modes:
        rows = []
        for _ in range(a.repeat):
            out = fn()
            if kind == "wattprint":
                (wall, cpu, rss, _), tr = out
                rows.append((wall, cpu, rss, tr["cpu_s"], tr["max_rss_mb"], tr["startup_ms"]))
            else:
                wall, cpu, rss, _ = out
                rows.append((wall, cpu, rss, None, None, None))
        med = lambda i: statistics.median(r[i] for r in rows) if rows[0][i] is not None else None
        results[label] = dict(wall=med(0), cpu=med(1), rss=med(2), tcpu=med(3), trss=med(4), start=med(5))

    bare = results["bare"]
    print(f"workload: python loop of {a.iterations} iterations; median of {a.repeat} runs; {os.cpu_count()} CPUs")
    print(f"{'mode':<42} {'wall s':>7} {'CPU s':>7} {'peak RSS MB':>11} {'added CPU s':>11} {'added ms CPU/s':>14} {'tracker RSS MB':>14} {'start-up ms':>11}")
    for label, r in results.items():
        if r["tcpu"] is not None:
            added, trss = r["tcpu"], r["trss"]
        elif label.startswith("CodeCarbon") and "Tracker" in label:
            base = next(v for k, v in results.items() if k.startswith("CodeCarbon") and "bare" in k)
            added, trss = r["cpu"] - base["cpu"], r["rss"] - base["rss"]
        else:
            added, trss = None, None
        per_s = (added / bare["wall"] * 1000) if added is not None else None
        f = lambda v, fmt: (fmt.format(v) if v is not None else "-")
        print(f"{label:<42} {r['wall']:>7.2f} {r['cpu']:>7.2f} {r['rss']:>11.1f} {f(added, '{:>11.3f}'):>11} "
              f"{f(per_s, '{:>14.2f}'):>14} {f(trss, '{:>14.1f}'):>14} {f(r['start'], '{:>11.1f}'):>11}")
    if not a.no_steady:
        steady_state(a.wattprint, env, tmp, a.repeat)
    latency(a.wattprint, env, a.latency_repeat)


def latency(wattprint, env, repeat):
    """What a user feels on a short job: the wall time of `wattprint run --quiet -- true` (and
    with the summary, to a file) against a bare `true`, and the end latency: from the moment the
    job exits (it prints CLOCK_MONOTONIC as its last act) to the moment wattprint has exited (as
    seen by its parent, here). The same end latency for the bare job is subtracted (Python's own
    teardown after the print)."""
    def wall(cmd):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        return (time.perf_counter() - t0) * 1000

    def tail(cmd):
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out, _ = p.communicate()
        t_exit = time.monotonic()
        return (t_exit - float(out.decode().split()[-1])) * 1000

    job_end = [sys.executable, "-c", "import time; print(time.monotonic(), flush=True)"]
    rows = {
        "bare `true`": statistics.median(wall(["true"]) for _ in range(repeat)),
        "`wattprint run --quiet -- true`": statistics.median(
            wall([wattprint, "run", "--quiet", "--", "true"]) for _ in range(repeat)),
        "`wattprint run -- true` (summary)": statistics.median(
            wall([wattprint, "run", "--", "true"]) for _ in range(repeat)),
    }
    bare_tail = statistics.median(tail(job_end) for _ in range(repeat))
    wp_tail = statistics.median(
        tail([wattprint, "run", "--quiet", "--"] + job_end) for _ in range(repeat))
    print()
    print(f"latency a user feels (median of {repeat}):")
    for k, v in rows.items():
        print(f"  {k:<36} {v:7.1f} ms wall")
    print(f"  added at the end (job exit -> wattprint exit): {wp_tail - bare_tail:6.1f} ms "
          f"({wp_tail:.1f} ms, of which {bare_tail:.1f} ms the job's own teardown)")


def steady_state(wattprint, env, tmp, repeat):
    """Tracker CPU per second of job, without the fixed start-up and shutdown cost: the slope of
    wattprint's own CPU time between a 2 s and a 12 s `sleep` job."""
    print()
    print("steady state (tracker CPU per second of job, from `sleep 2` vs `sleep 12`):")
    for interval in ["1s", "100ms", "10ms"]:
        cpu = {}
        for secs in (2, 12):
            vals = []
            for _ in range(repeat):
                js = os.path.join(tmp, "steady.json")
                run([wattprint, "run", "--quiet", "--interval", interval, "--json", js, "--",
                     "sleep", str(secs)], env)
                with open(js) as f:
                    vals.append(json.load(f)["tracker"]["cpu_s"])
            cpu[secs] = statistics.median(vals)
        slope = (cpu[12] - cpu[2]) / 10.0
        print(f"  --interval {interval:<6} {slope * 1000:8.3f} ms CPU per s of job "
              f"({slope * 100:.3f} % of one core); fixed cost {max(cpu[2] - 2 * slope, 0) * 1000:.1f} ms CPU")


if __name__ == "__main__":
    main()
