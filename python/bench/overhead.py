"""Overhead of measuring, side by side in one run: a bare Python job, the same job under
``wattprint.Tracker`` and under CodeCarbon's ``EmissionsTracker`` (when installed).

    python python/bench/overhead.py [--seconds 10] [--interval 1]

Each variant runs in a fresh interpreter: start-up (import + start), CPU time added while the
job idles (per second of job, sampler at the given interval), peak RSS added. A benchmark, not
a test: the figures go in the README.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, resource, sys, time
variant, seconds, interval, home = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
t0 = time.perf_counter()
stop = lambda: None
import_ms = 0.0
if variant == "wattprint":
    import wattprint
    import_ms = (time.perf_counter() - t0) * 1000
    t = wattprint.Tracker(project="bench", interval=interval, location="FR")
    t.start()
    stop = t.stop
elif variant == "codecarbon":
    import logging
    from codecarbon import OfflineEmissionsTracker
    import_ms = (time.perf_counter() - t0) * 1000
    t = OfflineEmissionsTracker(country_iso_code="FRA", measure_power_secs=interval, save_to_file=False,
                                log_level="error")
    t.start()
    stop = t.stop
startup_ms = (time.perf_counter() - t0) * 1000
c0 = cpu()
time.sleep(seconds)
c1 = cpu()
stop()
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"import_ms": import_ms, "startup_ms": startup_ms, "steady_cpu_s": c1 - c0, "peak_rss_mb": peak_kb / 1024}))
"""


def run(variant: str, seconds: float, interval: float, home: str) -> dict:
    env = dict(os.environ, WATTPRINT_HOME=home)
    p = subprocess.run([sys.executable, "-c", CHILD, variant, str(seconds), str(interval), home],
                       capture_output=True, text=True, env=env, timeout=seconds + 300)
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=1, help="runs per variant; the median of each figure")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        res = {}
        for v in ("bare", "wattprint", "codecarbon"):
            runs = [run(v, a.seconds, a.interval, home) for _ in range(max(1, a.repeat))]
            ok = [r for r in runs if "error" not in r]
            res[v] = {k: sorted(r[k] for r in ok)[len(ok) // 2] for k in ok[0]} if ok else runs[0]
    bare = res["bare"]
    print(f"job: {a.seconds:g} s idle, interval {a.interval:g} s, Python {sys.version.split()[0]}")
    print(f"{'variant':<12}{'import ms':>10}{'import+start ms':>16}{'added CPU ms/s':>16}{'peak RSS MB':>13}{'added RSS MB':>14}")
    for v, r in res.items():
        if "error" in r:
            print(f"{v:<12} not run: {r['error']}")
            continue
        added_cpu = (r["steady_cpu_s"] - bare["steady_cpu_s"]) / a.seconds * 1000
        added_rss = r["peak_rss_mb"] - bare["peak_rss_mb"]
        start = r["startup_ms"] - bare["startup_ms"]
        print(f"{v:<12}{r['import_ms']:>10.1f}{start:>16.1f}{added_cpu:>16.3f}{r['peak_rss_mb']:>13.1f}{added_rss:>14.1f}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
