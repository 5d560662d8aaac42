#!/usr/bin/env bash
# Benchmark (not a test): `wattprint report --project P` over a project of 10 000 runs.
# Target: under a second for the HTML report. Prints the time of each format (best of N).
#
#   scripts/bench-report.sh [RUNS] [REPEAT]      # defaults: 10000 runs, best of 5
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10000}
REPEAT=${2:-5}

cargo build --release --quiet -p wattprint --bin wattprint --example seed_runs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export WATTPRINT_HOME="$tmp/home"
target/release/examples/seed_runs --db "$WATTPRINT_HOME/wattprint.db" --project bench --runs "$RUNS"

now() { date +%s.%N; }
echo "store: $(du -h "$WATTPRINT_HOME/wattprint.db" | cut -f1) for $RUNS runs (samples included)"
printf '%-12s %10s %10s %12s\n' format best_s median_s output
for fmt in html md json model-card; do
  times=()
  for _ in $(seq "$REPEAT"); do
    t0=$(now)
    target/release/wattprint report --project bench --format "$fmt" --output "$tmp/out.$fmt"
    t1=$(now)
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')")
  done 2>/dev/null
  sorted=$(printf '%s\n' "${times[@]}" | sort -g)
  best=$(echo "$sorted" | head -1)
  median=$(echo "$sorted" | sed -n "$(( (REPEAT + 1) / 2 ))p")
  size=$(du -h "$tmp/out.$fmt" | cut -f1)
  printf '%-12s %10.3f %10.3f %12s\n' "$fmt" "$best" "$median" "$size"
  if [ "$fmt" = html ]; then html_median=$median; fi
done
if awk -v m="$html_median" 'BEGIN { exit !(m < 1.0) }'; then
  echo "html report over $RUNS runs: median ${html_median}s < 1 s target: OK"
else
  echo "html report over $RUNS runs: median ${html_median}s >= 1 s target: TOO SLOW"
  exit 1
fi
