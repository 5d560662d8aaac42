#!/usr/bin/env bash
# Load figures for `wattprint serve` (a script, not a test): N concurrent agents on loopback upload
# checkpoints (each with its interval's samples) and final records, against SQLite and against
# PostgreSQL, closed loop (as fast as answered) and open loop (a fixed rate); afterwards the load
# generator checks that nothing was lost (run count, energy total and every run's samples).
#
#   scripts/load-server.sh                 # both databases, defaults below
#   AGENTS=64 SECONDS_=30 RATE=2000 scripts/load-server.sh sqlite
#   PG_URL_SUFFIX='?options=-c%20synchronous_commit%3Doff' scripts/load-server.sh postgres
#   SERVE_ARGS='--upload-writers 0' MODES=closed scripts/load-server.sh postgres
#
# BIN: the `wattprint` binary to serve with (default: this tree's release build; for A/B runs of
# two builds). PG_STATS=1 (cluster started here): pg_stat_statements per mode (calls, plans,
# execution and planning ms, WAL bytes per call of the busiest statements) to stderr.
# PG_OPTS: more server settings for that cluster (e.g. '-c log_checkpoints=on'), and
# KEEP_PG_LOG=FILE copies its log there at the end. PG_ANALYZE=1 analyses the database one
# second into each mode (builds before the server analysed young tables itself). SERVE_ARGS: more flags for `wattprint serve`;
# MODES: a subset of "closed open run"; PG_SQL:
# SQL run on the PostgreSQL database once the server has migrated it (to try a schema change,
# e.g. PG_SQL='ALTER TABLE runs SET (fillfactor = 70)'). CPU per
# request (server, PostgreSQL when the script started the cluster, load generator) is measured
# from /proc over the run less its first and last second.
# PostgreSQL: $WATTPRINT_TEST_POSTGRES_URL (a server on which it may create a database), else a
# throwaway cluster started here like .ci/run does (initdb/pg_ctl; as the postgres user when root).
# The server runs with --rate-limit 0: the per-token limit (100/s by default) would otherwise be
# what is measured. Results: one JSON line per run of the load generator, then a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."

AGENTS="${AGENTS:-32}"
SECONDS_="${SECONDS_:-20}"
RATE="${RATE:-2000}"
CHECKPOINTS="${CHECKPOINTS:-10}"
SAMPLES="${SAMPLES:-10}"
SERVE_ARGS="${SERVE_ARGS:-}"
MODES="${MODES:-closed open run}"
BACKENDS=("${@:-sqlite postgres}")
read -r -a BACKENDS <<<"${BACKENDS[*]}"

cargo build --release -q -p wattprint --bin wattprint
cargo build --release -q -p wattprint-server --example load
BIN="${BIN:-$PWD/target/release/wattprint}"
LOAD="$PWD/target/release/examples/load"

WORK="$(mktemp -d /tmp/wattprint-load.XXXXXX)"
PG_DIR=""
SERVER_PID=""
PG_BIN=""
AS=()
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    if [ -n "$PG_DIR" ]; then
        [ -n "${KEEP_PG_LOG:-}" ] && cp "$PG_DIR/log" "$KEEP_PG_LOG" 2>/dev/null
        "${AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PG_STATS_OPTS=""
if [ "${PG_STATS:-}" = 1 ]; then
    PG_STATS_OPTS="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all -c pg_stat_statements.track_planning=on"
fi
pg_stats() { # $1 = database URL, $2 = reset|show
    [ "${PG_STATS:-}" = 1 ] && [ -n "$PG_DIR" ] || return 0
    if [ "$2" = reset ]; then
        psql "$1" -qAtc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()" >/dev/null
    else
        psql "$1" -qAt -F ' | ' -c "SELECT calls, plans, round(mean_exec_time::numeric, 3), \
            round((total_plan_time / greatest(calls, 1))::numeric, 3), \
            round(wal_bytes / greatest(calls, 1)), left(regexp_replace(query, '\s+', ' ', 'g'), 90) \
            FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 10" >&2
        echo "tables: name | inserted | updated | of which HOT | size MB (with indexes) | autovacuums" >&2
        psql "$1" -qAt -F ' | ' -c "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, \
            round(pg_total_relation_size(relid) / 1048576.0, 1), autovacuum_count + autoanalyze_count \
            FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd > 0 ORDER BY n_tup_ins + n_tup_upd DESC LIMIT 6" >&2
    fi
}

pg_base() { # sets PG_BASE (not in a subshell: cleanup must see PG_DIR)
    if [ -n "${WATTPRINT_TEST_POSTGRES_URL:-}" ]; then
        PG_BASE="$WATTPRINT_TEST_POSTGRES_URL"
        return
    fi
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ]; then PG_BIN="$d"; fi
    done
    [ -n "$PG_BIN" ] || { echo "no PostgreSQL (apt-get install postgresql, or set WATTPRINT_TEST_POSTGRES_URL)" >&2; exit 1; }
    PG_DIR="$(mktemp -d /tmp/wattprint-load-pg.XXXXXX)"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$PG_DIR"
        AS=(runuser -u postgres --)
    fi
    "${AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U wattprint -E UTF8 --no-sync >/dev/null
    local port=$((20000 + RANDOM % 40000))
    # Durable commits (fsync on, synchronous_commit on): what an institution would run.
    "${AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
        -o "-h 127.0.0.1 -p $port -k $PG_DIR -c max_connections=100 $PG_STATS_OPTS ${PG_OPTS:-}" start >/dev/null
    PG_BASE="postgres://wattprint@127.0.0.1:$port/postgres"
}

start_server() { # $1 = database URL
    local home="$WORK/home"
    mkdir -p "$home"
    export WATTPRINT_HOME="$home"
    "$BIN" admin team create load --database "$1" >/dev/null
    TOKEN="$("$BIN" admin token create --team load --role member --name load --database "$1" 2>/dev/null)"
    # shellcheck disable=SC2086 # SERVE_ARGS is a list of flags
    "$BIN" serve --listen 127.0.0.1:0 --database "$1" --rate-limit 0 $SERVE_ARGS >"$WORK/serve.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        URL="$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/serve.log" | head -1 || true)"
        [ -n "$URL" ] && break
        sleep 0.1
    done
    [ -n "$URL" ] || { cat "$WORK/serve.log" >&2; exit 1; }
}

stop_server() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
}

# CPU time of a process in clock ticks: its own and that of its reaped children.
proc_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# PostgreSQL's CPU (postmaster, reaped and live backends) when this script runs the cluster.
pg_ticks() {
    [ -n "$PG_DIR" ] || { echo 0; return; }
    local p t
    p="$(head -1 "$PG_DIR/data/postmaster.pid")"
    t="$(proc_ticks "$p")"
    for c in $(ps --ppid "$p" -o pid=); do t=$((t + $(proc_ticks "$c"))); done
    echo "$t"
}
TCK="$(getconf CLK_TCK)"

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
for backend in "${BACKENDS[@]}"; do
    case "$backend" in
        sqlite) DB="sqlite://$WORK/load.db" ;;
        postgres)
            [ -n "${PG_BASE:-}" ] || pg_base
            name="wp_load_$$_$RANDOM"
            psql "$PG_BASE" -qc "CREATE DATABASE $name" >/dev/null
            # PG_URL_SUFFIX, e.g. '?options=-c%20synchronous_commit%3Doff', to try settings.
            DB="${PG_BASE%/*}/$name${PG_URL_SUFFIX:-}"
            ;;
        *) echo "unknown backend $backend (sqlite or postgres)" >&2; exit 2 ;;
    esac
    start_server "$DB"
    if [ "$backend" = postgres ] && [ -n "${PG_SQL:-}" ]; then
        psql "${DB%%\?*}" -qc "$PG_SQL" >/dev/null
    fi
    # closed: as fast as answered; open: $RATE requests/s in all; run: as `wattprint run --server`
    # sends (checkpoints without samples, the series with the final record), closed loop.
    for mode in $MODES; do
        args=(--url "$URL" --token "$TOKEN" --agents "$AGENTS" --seconds "$SECONDS_"
              --checkpoints "$CHECKPOINTS" --samples "$SAMPLES" --project "load-$backend-$mode")
        [ "$mode" = open ] && args+=(--rate "$RATE")
        [ "$mode" = run ] && args+=(--series final)
        echo "== $backend, $mode loop" >&2
        [ "$backend" = postgres ] && pg_stats "${DB%%\?*}" reset
        "$LOAD" "${args[@]}" >"$WORK/line" &
        load_pid=$!
        sleep 1
        # PG_ANALYZE=1: analyse the database after the first second (what the server itself
        # does for young tables since then; for A/B runs with builds from before).
        if [ "$backend" = postgres ] && [ "${PG_ANALYZE:-}" = 1 ]; then
            psql "${DB%%\?*}" -qc "ANALYZE" >/dev/null
        fi
        s0="$(proc_ticks "$SERVER_PID")"; p0="$(pg_ticks)"; l0="$(proc_ticks "$load_pid")"; t0="$(date +%s.%N)"
        sleep "$(python3 -c "print(max(float('$SECONDS_') - 2, 1))")"
        s1="$(proc_ticks "$SERVER_PID")"; p1="$(pg_ticks)"; l1="$(proc_ticks "$load_pid")"; t1="$(date +%s.%N)"
        load_avg="$(cut -d' ' -f1 /proc/loadavg)"
        wait "$load_pid" || echo "load run failed" >&2
        if [ "$backend" = postgres ]; then
            echo "pg_stat_statements: calls | plans | exec ms | plan ms per call | WAL bytes per call | statement" >&2
            pg_stats "${DB%%\?*}" show
        fi
        line="$(cat "$WORK/line")"
        echo "$line"
        cpu="$(python3 -c "
import json, sys
r = json.loads(sys.argv[1]); n = r['requests_per_s'] * ($t1 - $t0)
per = lambda a, b: round((b - a) / $TCK * 1000 / n, 3) if n and b > a else None
print(json.dumps({'server': per($s0, $s1), 'postgres': per($p0, $p1), 'load': per($l0, $l1)}))
" "$line")"
        echo "CPU ms per request: $cpu; load average $load_avg" >&2
        echo "{\"backend\": \"$backend\", \"serve_args\": \"$SERVE_ARGS\", \"load_avg\": $load_avg, \"cpu_ms_per_request\": $cpu, \"result\": $line}" >>"$RESULTS"
    done
    stop_server
done

echo
echo "| database | serve flags | mode | agents | req/s (checkpoints+finals) | runs/s | samples/s | p50 ms | p99 ms | CPU ms/req server / PostgreSQL / load | load average | nothing lost |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
python3 - "$RESULTS" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line); r = d["result"]
    c = d["cpu_ms_per_request"]
    cpu = " / ".join("-" if c[k] is None else f"{c[k]:.2f}" for k in ("server", "postgres", "load"))
    print(f"| {d['backend']} | {d['serve_args'] or '-'} | {r['mode']} | {r['agents']} | {r['requests_per_s']:.0f} | {r['runs_per_s']:.0f} "
          f"| {r['samples_per_s']:.0f} | {r['latency_ms']['p50']:.1f} | {r['latency_ms']['p99']:.1f} | {cpu} | {d['load_avg']} "
          f"| {'yes' if r['nothing_lost'] else 'NO'} ({r['server_runs_completed']} runs, {r['samples_missing']} samples missing) |")
EOF
echo "($(nproc) cores, $(uname -m); server and load generator on the same machine)"
