#!/usr/bin/env python3
"""Tracker overhead with N concurrent `wattprint run`s sharing one host through the host
ledger (default 8 runs, default 1 s interval): the total CPU time of all the trackers per
second of job, steady state (slope between short and long `sleep` jobs, so the fixed start-up
and shutdown cost is excluded), with the ledger and with it switched off.

    cargo build --release -p wattprint
    python3 scripts/bench-ledger.py [--runs 8] [--short 2] [--long 12] [--repeat 3] [--bin PATH]

Each run's own CPU time comes from its record (`tracker.cpu_s`: RUSAGE_SELF of the tracker,
the job excluded). Runs use a throwaway WATTPRINT_HOME and WATTPRINT_RUNTIME_DIR.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def batch(binary, runs, seconds, ledger, interval):
    """Start `runs` trackers at once around `sleep seconds`; their summed tracker CPU s."""
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ)
        env["WATTPRINT_HOME"] = os.path.join(d, "home")
        env["WATTPRINT_RUNTIME_DIR"] = os.path.join(d, "run")
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--short", type=float, default=2.0)
    ap.add_argument("--long", type=float, default=12.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--interval", default=None, help="e.g. 100ms (default: the default, 1 s)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "wattprint"))
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"{a.bin} not found: cargo build --release -p wattprint (or pass --bin)")
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


if __name__ == "__main__":
    main()
