#!/usr/bin/env python3
"""Tracker overhead with N concurrent `wattprint run`s sharing one host through the host
ledger (default 8 runs, default 1 s interval): the total CPU time of all the trackers per
second of job, steady state (slope between short and long `sleep` jobs, so the fixed start-up
and shutdown cost is excluded), with the ledger and with it switched off.

    cargo build --release -p wattprint
    python3 scripts/bench-ledger.py [--runs 8] [--short 2] [--long 12] [--repeat 3] [--bin PATH]

Each run's own CPU time comes from its record (`tracker.cpu_s`: RUSAGE_SELF of the tracker,
the job excluded). Runs use a throwaway WATTPRINT_HOME and WATTPRINT_RUNTIME_DIR (the latter
on /dev/shm, a tmpfs like the default runtime directory). The runs are quiet (no terminal,
no limits), as batch jobs are.

`--threads` also prints where the time goes: each tracker thread's CPU time (schedstat) over
a steady window of one batch of long runs.

`--against OTHER_BIN` compares two builds on this machine, whose speed drifts: steady windows
of both, in turn (`--repeat` rounds), each build's total per round and the medians.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None


def batch(binary, runs, seconds, ledger, interval):
    """Start `runs` trackers at once around `sleep seconds`; their summed tracker CPU s."""
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory(dir=SHM) as r:
        env = dict(os.environ)
        env["WATTPRINT_HOME"] = os.path.join(d, "home")
        # On tmpfs, as the default runtime directory (/dev/shm/wattprint) is.
        env["WATTPRINT_RUNTIME_DIR"] = os.path.join(r, "run")
        env["WATTPRINT_HOST_LEDGER"] = "on" if ledger else "off"
        for k in ("WATTPRINT_SERVER", "WATTPRINT_TOKEN"):
            env.pop(k, None)
        procs = []
        for i in range(runs):
            out = os.path.join(d, f"r{i}.json")
            cmd = [binary, "run", "--quiet", "--no-embodied", "--json", out]
            if interval:
                cmd += ["--interval", interval]
            cmd += ["--", "sleep", str(seconds)]
            procs.append((subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE), out))
        total = 0.0
        shared = 0
        for p, out in procs:
            _, err = p.communicate()
            if p.returncode != 0:
                sys.exit(f"wattprint run failed: {err.decode()}")
            with open(out) as f:
                r = json.load(f)
            total += r["tracker"]["cpu_s"]
            shared += 1 if (r.get("sharing") or {}).get("mode") == "shared" else 0
        return total, shared


def threads(binary, runs, interval, seconds=40, warmup=6, window=30, show=True):
    """Per-thread CPU time of `runs` trackers over a steady window (schedstat, ns); printed
    (`show`) and returned: the total, ms per second of job."""
    import collections
    import time

    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory(dir=SHM) as r:
        env = dict(os.environ)
        env["WATTPRINT_HOME"] = os.path.join(d, "home")
        env["WATTPRINT_RUNTIME_DIR"] = os.path.join(r, "run")
        env.pop("WATTPRINT_SERVER", None)
        procs = []
        for i in range(runs):
            cmd = [binary, "run", "--quiet", "--no-embodied"]
            if interval:
                cmd += ["--interval", interval]
            cmd += ["--", "sleep", str(seconds)]
            procs.append(subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL))

        def snap():
            out = {}
            for i, p in enumerate(procs):
                try:
                    tids = os.listdir(f"/proc/{p.pid}/task")
                except OSError:
                    continue
                for tid in tids:
                    try:
                        with open(f"/proc/{p.pid}/task/{tid}/comm") as f:
                            name = f.read().strip()
                        with open(f"/proc/{p.pid}/task/{tid}/schedstat") as f:
                            fields = f.read().split()
                    except OSError:
                        continue
                    out[(i, tid)] = (name, int(fields[0]), int(fields[2]))
            return out

        time.sleep(warmup)
        a, t0 = snap(), time.time()
        time.sleep(window)
        b, t1 = snap(), time.time()
        for p in procs:
            p.wait()
    dt = t1 - t0
    per = collections.defaultdict(lambda: [0.0, 0.0])
    per_run = collections.defaultdict(float)
    for k, (name, ns, wakes) in b.items():
        if k in a:
            per[name][0] += (ns - a[k][1]) / 1e6 / dt
            per[name][1] += (wakes - a[k][2]) / dt
            per_run[k[0]] += (ns - a[k][1]) / 1e6 / dt
    total = sum(per_run.values())
    if not show:
        return total
    print(f"\nWhere the time goes ({runs} runs, {window} s window, schedstat):")
    print("| thread | CPU per second of job, all runs | wake-ups per second, all runs |")
    print("|---|---:|---:|")
    for name, (ms, w) in sorted(per.items(), key=lambda x: -x[1][0]):
        if ms > 0 or w > 0:
            print(f"| {name} | {ms:.3f} ms | {w:.1f} |")
    print(f"| all | {total:.3f} ms | |")
    print("per run (ms/s): " + ", ".join(f"{per_run[i]:.3f}" for i in range(runs)))
    return total


def against(a):
    """Steady windows of two builds in turn: their totals per round and medians."""
    builds = [a.bin, a.against]
    totals = {b: [] for b in builds}
    print(f"{a.runs} concurrent runs, interval {a.interval or 'default (1 s)'}, steady 30 s windows")
    print("| round | " + " | ".join(builds) + " |")
    print("|---|" + "---:|" * len(builds))
    for r in range(a.repeat):
        row = []
        for b in builds:
            t = threads(b, a.runs, a.interval, show=False)
            totals[b].append(t)
            row.append(f"{t:.3f} ms")
        print(f"| {r + 1} | " + " | ".join(row) + " |", flush=True)
    print("| median | " + " | ".join(f"{statistics.median(totals[b]):.3f} ms" for b in builds) + " |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--short", type=float, default=2.0)
    ap.add_argument("--long", type=float, default=12.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--interval", default=None, help="e.g. 100ms (default: the default, 1 s)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "wattprint"))
    ap.add_argument("--threads", action="store_true", help="also: CPU per tracker thread")
    ap.add_argument("--against", default=None, help="another build to compare, in turn")
    a = ap.parse_args()
    for b in (a.bin, a.against):
        if b and not os.path.exists(b):
            sys.exit(f"{b} not found: cargo build --release -p wattprint (or pass --bin)")
    if a.against:
        against(a)
        return
    print(f"{a.runs} concurrent runs, interval {a.interval or 'default (1 s)'}, {a.bin}")
    print("| ledger | tracker CPU per second of job, all runs | per run | runs that saw company |")
    print("|---|---:|---:|---:|")
    for ledger in (True, False):
        slopes = []
        seen = 0
        for _ in range(a.repeat):
            short, _ = batch(a.bin, a.runs, a.short, ledger, a.interval)
            long, shared = batch(a.bin, a.runs, a.long, ledger, a.interval)
            slopes.append((long - short) / (a.long - a.short))
            seen = max(seen, shared)
        lo, hi = min(slopes), max(slopes)
        med = statistics.median(slopes)
        print(
            f"| {'on' if ledger else 'off'} | {med * 1e3:.2f} ms (range {lo * 1e3:.2f}–{hi * 1e3:.2f}) "
            f"| {med * 1e3 / a.runs:.3f} ms | {seen} of {a.runs} |"
        )
    if a.threads:
        threads(a.bin, a.runs, a.interval)


if __name__ == "__main__":
    main()
