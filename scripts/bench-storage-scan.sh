#!/usr/bin/env bash
# Benchmark `wattprint storage scan` on a generated tree: N files (default 1 000 000) in 1000
# directories, sizes 1 B to ~4 kB, every 10th file a copy of the one before it, plus hard links
# and symlinks. Prints the wall time and the peak resident memory (GNU time) of the scan.
# Usage: scripts/bench-storage-scan.sh [N]   (BENCH_DIR=... to keep the tree somewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
export CARGO_INCREMENTAL=0
BIN=${WATTPRINT_BIN:-target/release/wattprint}
if [ ! -x "$BIN" ]; then
    cargo build --release --quiet -p wattprint
fi
DIR=${BENCH_DIR:-$(mktemp -d)}
if [ ! -f "$DIR/.generated-$N" ]; then
    echo "== generating $N files under $DIR"
    python3 - "$DIR" "$N" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
per = max(1, n // 1000)
prev = b""
for i in range(n):
    d = os.path.join(root, f"u{i // per:04d}")
    if i % per == 0:
        os.makedirs(d, exist_ok=True)
    body = prev if i % 10 == 9 else (f"{i}:".encode() * (1 + i % 400))
    with open(os.path.join(d, f"f{i}.bin"), "wb") as f:
        f.write(body)
    prev = body
    if i % 1000 == 1:
        os.link(os.path.join(d, f"f{i}.bin"), os.path.join(d, f"h{i}.bin"))
    if i % 1000 == 2:
        os.symlink("/", os.path.join(d, f"s{i}"))
open(os.path.join(root, f".generated-{n}"), "w").close()
PY
fi
echo "== scanning"
/usr/bin/time -v "$BIN" storage scan --intensity 100 "$DIR" 2> "$DIR.time" | head -4
grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$DIR.time"
