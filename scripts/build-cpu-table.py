#!/usr/bin/env python3
"""Build crates/core/data/cpu_tdp.csv (CPU model -> TDP per package) for wattprint.

Inputs (unmodified upstream files, see /work/shared/data/README.md):
  * CodeCarbon 3.3.2 `codecarbon/data/hardware/cpu_power.csv` (MIT): columns Name,TDP.
  * Green Algorithms data v3.0 `TDP_cpu.csv` (CC BY 4.0): TWO header rows (row 1 = unit notes),
    columns model,TDP,n_cores,TDP_per_core,...

Output columns: model,tdp_w,cores,source
  * `model`: the source's name, trimmed and with runs of spaces collapsed. Green Algorithms names
    that lack a vendor ("Xeon E5-2650 v2", "Ryzen 5 3600") get one ("Intel ", "AMD ") so that
    they read like CodeCarbon's and like /proc/cpuinfo.
  * `tdp_w`: W per package. `cores`: physical cores where Green Algorithms gives them, else empty.
  * `source`: `codecarbon-3.3.2`, `green-algorithms-v3.0`, or both joined with `+` when both
    sources list the same name (case- and space-insensitive) with the same TDP (one row is kept).
    When they disagree on the TDP both rows are kept: wattprint then reports the name as
    ambiguous rather than picking one.

Rows dropped (printed on stderr when the script runs): TDP not a number (4 CodeCarbon rows such
as `27.29.5`), TDP of 0 W, the generic "ARMv8 Processor rev 0 (v8l)" row (an architecture, not a
model), Green Algorithms' "Any" fallback row (no TDP).

Also writes `cpu_threads.csv` next to the output (model,threads_per_package,source): logical CPUs
per package of the CPUs cloud hosts use, from Cloud Carbon Coefficients
`ccf/ccf-coefficients/data/aws-instances-cpus.csv` (Apache-2.0; columns CPU Name, Platform Total
Number of vCPU, Platform Number of CPU Socket(s), Total Number of vCPU per socket). The CPU TDP
model uses it to charge a virtual machine its share of the package. Names get a vendor prefix as
above ("Xeon Platinum 8375C" -> "Intel Xeon Platinum 8375C").

Usage: scripts/build-cpu-table.py [--data /work/shared/data] [--out crates/core/data/cpu_tdp.csv]
"""

import argparse
import csv
import io
import os
import sys

CC_SOURCE = "codecarbon-3.3.2"
GA_SOURCE = "green-algorithms-v3.0"

INTEL_PREFIXES = ("Core ", "Xeon ", "Pentium", "Celeron", "Atom ")
AMD_PREFIXES = ("Ryzen", "Athlon", "EPYC", "FX-", "A4-", "A6-", "A8-", "A9-", "A10-", "A12-", "Phenom", "Opteron")
# Names that are not CPU models; a match on them would be meaningless.
GENERIC_NAMES = {"armv8 processor rev 0 (v8l)"}


def clean(name: str) -> str:
    return " ".join(name.replace('"', "").split())


def key(name: str) -> str:
    return clean(name).lower()


def fmt_w(x: float) -> str:
    return ("%.3f" % x).rstrip("0").rstrip(".")


def read_codecarbon(path, dropped):
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        header = next(r)
        if [h.strip() for h in header[:2]] != ["Name", "TDP"]:
            sys.exit(f"{path}: unexpected header {header}")
        for row in r:
            if len(row) < 2 or not row[0].strip():
                dropped.append((CC_SOURCE, row, "short row"))
                continue
            name, tdp = clean(row[0]), row[1].strip()
            if key(name) in GENERIC_NAMES:
                dropped.append((CC_SOURCE, row, "generic architecture name, not a model"))
                continue
            try:
                w = float(tdp)
            except ValueError:
                dropped.append((CC_SOURCE, row, "TDP is not a number"))
                continue
            if not (w > 0):
                dropped.append((CC_SOURCE, row, "TDP is not positive"))
                continue
            out.append({"model": name, "tdp_w": w, "cores": None, "source": CC_SOURCE})
    return out


def read_green_algorithms(path, dropped):
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        text = f.read()
    lines = text.splitlines()
    # Row 1 holds unit notes; row 2 the column names.
    r = csv.DictReader(io.StringIO("\n".join(lines[1:])))
    for row in r:
        name = clean(row["model"] or "")
        tdp = (row["TDP"] or "").strip()
        if not name or not tdp:
            dropped.append((GA_SOURCE, row, "no TDP (fallback row)"))
            continue
        try:
            w = float(tdp)
        except ValueError:
            dropped.append((GA_SOURCE, row, "TDP is not a number"))
            continue
        if not (w > 0):
            dropped.append((GA_SOURCE, row, "TDP is not positive"))
            continue
        if name.startswith(INTEL_PREFIXES):
            name = "Intel " + name
        elif name.startswith(AMD_PREFIXES):
            name = "AMD " + name
        cores = (row["n_cores"] or "").strip()
        out.append(
            {
                "model": name,
                "tdp_w": w,
                "cores": int(float(cores)) if cores else None,
                "source": GA_SOURCE,
            }
        )
    return out


def merge(cc, ga):
    rows = []
    seen = {}  # (key, tdp) -> row
    for row in cc + ga:
        k = (key(row["model"]), fmt_w(row["tdp_w"]))
        prev = seen.get(k)
        if prev is None:
            seen[k] = row
            rows.append(row)
            continue
        # Same name, same TDP: keep one row, remember both sources and the cores if known.
        if row["source"] not in prev["source"].split("+"):
            prev["source"] = prev["source"] + "+" + row["source"]
        if prev["cores"] is None:
            prev["cores"] = row["cores"]
    rows.sort(key=lambda r: (key(r["model"]), r["tdp_w"]))
    return rows


CCFC_SOURCE = "ccf-coefficients-b0032d9"


def read_ccf_threads(path):
    """(model with vendor, vCPUs per socket) from CCF's aws-instances-cpus.csv."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        header = next(r)
        if [h.strip() for h in header] != [
            "CPU Name",
            "Platform Total Number of vCPU",
            "Platform Number of CPU Socket(s)",
            "Total Number of vCPU per socket",
        ]:
            sys.exit(f"{path}: unexpected header {header}")
        for row in r:
            if len(row) < 4 or not row[0].strip():
                continue
            name = clean(row[0])
            total, sockets, per_socket = int(row[1]), int(row[2]), int(row[3])
            if total != sockets * per_socket:
                sys.exit(f"{path}: {name}: {total} vCPUs != {sockets} sockets x {per_socket}")
            if name.startswith(INTEL_PREFIXES):
                name = "Intel " + name
            elif name.startswith(AMD_PREFIXES):
                name = "AMD " + name
            out.append((name, per_socket))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "core", "data", "cpu_tdp.csv"),
    )
    a = ap.parse_args()
    dropped = []
    cc = read_codecarbon(os.path.join(a.data, "codecarbon/hardware/cpu_power.csv"), dropped)
    ga = read_green_algorithms(os.path.join(a.data, "green-algorithms/TDP_cpu.csv"), dropped)
    rows = merge(cc, ga)
    with open(a.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["model", "tdp_w", "cores", "source"])
        for r in rows:
            w.writerow([r["model"], fmt_w(r["tdp_w"]), "" if r["cores"] is None else r["cores"], r["source"]])
    threads = read_ccf_threads(os.path.join(a.data, "ccf/ccf-coefficients/data/aws-instances-cpus.csv"))
    with open(os.path.join(os.path.dirname(a.out), "cpu_threads.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["model", "threads_per_package", "source"])
        for model, n in threads:
            w.writerow([model, n, CCFC_SOURCE])
    for src, row, why in dropped:
        print(f"dropped ({src}): {row}: {why}", file=sys.stderr)
    print(
        f"{len(cc)} codecarbon rows, {len(ga)} green-algorithms rows -> {len(rows)} rows in {os.path.normpath(a.out)}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
