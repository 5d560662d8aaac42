#!/usr/bin/env bash
# Scale figures for `wattprint serve` (a script, not a test): generates an institution's year
# directly into the database (SQL, not HTTP, so it takes minutes), then measures with that
# history in place: ingest (the load generator, closed loop), `/totals` by month, team and host,
# budgets, a runs listing, the dashboard's overview, a team page and a run page (p50/p99), and
# the database's size per run and per node-year.
#
#   scripts/bench-server-scale.sh                       # PostgreSQL, then SQLite, defaults below
#   RUNS=200000 SAMPLES_PER_RUN=20 scripts/bench-server-scale.sh postgres
#
# The year: RUNS runs over the 365 days before now, TEAMS teams × PROJECTS projects, USERS users
# (each in one team, working in two of its projects), HOSTS nodes (each team its share); each run has SAMPLES_PER_RUN sample rows (4 GPUs; 1-hour, 1-minute or full
# resolution buckets by age, as the retention task leaves them). Rollups are kept by the
# database's triggers during the load, exactly as at ingest; the script checks them at the end.
#
# PostgreSQL: a throwaway cluster with durable commits (fsync, synchronous_commit on), started
# here (initdb/pg_ctl; as the postgres user when root), or $SCALE_PG_URL (a server on which it may
# create and drop a database). The sample rows are bulk-loaded: in the transaction that fills
# the (empty) table, it is truncated first (with the cluster's wal_level=minimal its rows then
# skip the WAL and are synced at commit) and its primary key is dropped and
# added back after the load (one sort instead of 100 million index insertions; it has no foreign
# key since migration 7); the table ends the same: logged, with its key.
#
#   SCALE_KEEP=1      keep the generated PostgreSQL database (and cluster) and print its URL
#   SCALE_DB_URL=…    measure that database (generated earlier, kept) instead of generating one
#   SCALE_BIN=…       the `wattprint` binary to measure (e.g. an older build, for a comparison)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-1000000}"
SAMPLES_PER_RUN="${SAMPLES_PER_RUN:-100}"
SQLITE_RUNS="${SQLITE_RUNS:-$RUNS}"
SQLITE_SAMPLES_PER_RUN="${SQLITE_SAMPLES_PER_RUN:-10}"
TEAMS="${TEAMS:-50}"
PROJECTS="${PROJECTS:-4}"
USERS="${USERS:-1000}"
HOSTS="${HOSTS:-5000}"
READS="${READS:-40}"
LOAD_SECONDS="${LOAD_SECONDS:-10}"
BACKENDS=("${@:-postgres sqlite}")
read -r -a BACKENDS <<<"${BACKENDS[*]}"

cargo build --release -q -p wattprint --bin wattprint
cargo build --release -q -p wattprint-server --example load
BIN="${SCALE_BIN:-$PWD/target/release/wattprint}"
LOAD="$PWD/target/release/examples/load"

WORK="$(mktemp -d /tmp/wattprint-scale.XXXXXX)"
PG_DIR=""
PG_BIN=""
AS=()
SERVER_PID=""
PG_DB=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    if [ -n "${SCALE_KEEP:-}" ] && [ -n "$PG_DB" ]; then
        echo "kept: ${PG_BASE%/*}/$PG_DB${PG_DIR:+ (cluster $PG_DIR, stop it with pg_ctl -D $PG_DIR/data stop)}" >&2
        rm -rf "$WORK"
        return
    fi
    if [ -n "$PG_DB" ] && [ -n "${PG_BASE:-}" ]; then
        psql "$PG_BASE" -qc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
    fi
    if [ -n "$PG_DIR" ]; then
        "${AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

pg_base() {
    if [ -n "${SCALE_PG_URL:-}" ]; then
        PG_BASE="$SCALE_PG_URL"
        return
    fi
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ]; then PG_BIN="$d"; fi
    done
    [ -n "$PG_BIN" ] || { echo "no PostgreSQL (apt-get install postgresql, or set SCALE_PG_URL)" >&2; exit 1; }
    PG_DIR="$(mktemp -d /tmp/wattprint-scale-pg.XXXXXX)"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$PG_DIR"
        AS=(runuser -u postgres --)
    fi
    "${AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U wattprint -E UTF8 --no-sync >/dev/null
    local port=$((20000 + RANDOM % 40000))
    "${AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
        -o "-h 127.0.0.1 -p $port -k $PG_DIR -c max_connections=100 -c shared_buffers=1GB -c max_wal_size=8GB -c wal_level=minimal -c max_wal_senders=0" \
        start >/dev/null
    PG_BASE="postgres://wattprint@127.0.0.1:$port/postgres"
}

# A run record as `wattprint run` writes it (the same for every generated run but its id).
RECORD_HEAD='{"schema":"wattprint.run/1","id":"'
RECORD_TAIL="$(python3 - <<'EOF'
import json
rec = {"project": "p", "tags": {}, "command": ["python", "train.py"],
  "started_at": "2025-06-01T00:00:00Z", "ended_at": "2025-06-01T01:00:00Z", "duration_s": 3600.0,
  "status": "completed", "exit_code": 0,
  "host": {"hostname": "node-1", "cpu_model": "Xeon", "logical_cpus": 64, "ram_gb": 512.0,
           "gpus": [{"index": i, "name": "NVIDIA A100-SXM4-80GB", "uuid": f"GPU-{i}"} for i in range(4)]},
  "scope": "process", "interval_s": 1.0,
  "energy_kwh": {"cpu": 0.2, "gpu": 1.2, "ram": 0.1, "other": 0.0, "dynamic": 1.1, "static": 0.4,
                 "it": 1.5, "infrastructure": 0.3, "facility": 1.8, "total": 1.5},
  "devices": [{"id": f"gpu:{i}", "kind": "gpu", "method": "nvml-energy", "name": "NVIDIA A100-SXM4-80GB",
               "energy_kwh": 0.3, "avg_power_w": 300.0, "machine_energy_kwh": 0.3, "idle_power_w": 50.0}
              for i in range(4)],
  "methods": {"cpu": "rapl", "gpu": "nvml-energy", "ram": "model"}, "pue": 1.2,
  "carbon_intensity": {"g_per_kwh": 250.0, "source": "bench"},
  "location": {"code": "FR", "name": "France", "known": True, "pue_source": "bench"},
  "emissions_kg": {"dynamic": 0.33, "static": 0.12, "infrastructure": 0.0, "embodied": None,
                   "operational": 0.45, "total": 0.45},
  "equivalents": {"car_km": 2.0, "tree_months": 0.5, "flights_paris_london": 0.0, "flights_paris_dublin": 0.0,
                  "flights_new_york_san_francisco": 0.0, "phone_charges": 50.0},
  "assumptions": [], "factors_version": "bench", "warnings": [], "samples": 3600, "skipped_ticks": 0,
  "wattprint_version": "0.1.0"}
print(json.dumps(rec)[1:])
EOF
)"

now_unix="$(date +%s)"

# The generating SQL for one database ($1 = postgres | sqlite, $2 = runs, $3 = samples per run).
gen_sql() {
    local d="$1" n="$2" spr="$3"
    local series small_t small_p
    if [ "$d" = postgres ]; then
        series="generate_series(CAST(1 AS BIGINT), $n) AS g(n)"
        small_t="generate_series(0, $TEAMS - 1) AS t(n)"
        small_p="generate_series(0, $PROJECTS - 1) AS p(n)"
        ts() { echo "to_char(to_timestamp($1) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"; }
        month() { echo "to_char(to_timestamp($1) AT TIME ZONE 'UTC', 'YYYY-MM')"; }
    else
        series="(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < $n) SELECT n FROM c) AS g"
        small_t="(WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n < $TEAMS - 1) SELECT n FROM c) AS t"
        small_p="(WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n < $PROJECTS - 1) SELECT n FROM c) AS p"
        ts() { echo "strftime('%Y-%m-%dT%H:%M:%SZ', $1, 'unixepoch')"; }
        month() { echo "strftime('%Y-%m', $1, 'unixepoch')"; }
    fi
    # Each team: USERS/TEAMS users, each in two of its projects, on HOSTS/TEAMS nodes (a team's
    # k-th run on node 31·k mod HOSTS/TEAMS of its own: every node of the team, in turn).
    local upt=$(( USERS / TEAMS > 0 ? USERS / TEAMS : 1 )) hpt=$(( HOSTS / TEAMS > 0 ? HOSTS / TEAMS : 1 ))
    local start="($now_unix - 31536000 + (g.n * 31536000 / $n))"
    local dur="(600 + (g.n * 7919) % 14400)"
    local kwh="($dur / 3600.0 * (0.3 + (g.n % 13) * 0.1))"
    cat <<EOF
BEGIN;
INSERT INTO teams (org_id, name, created_at)
  SELECT 1, 'team-' || t.n, 'x' FROM $small_t ORDER BY t.n;
INSERT INTO projects (org_id, team_id, name, created_at)
  SELECT 1, tm.id, 'project-' || p.n, 'x' FROM teams tm, $small_p
  WHERE tm.name LIKE 'team-%' ORDER BY tm.id, p.n;
INSERT INTO runs (org_id, team_id, project_id, run_id, user_name, status, status_rank, started_at,
    started_unix, ended_at, month, duration_s, energy_kwh, facility_kwh, emissions_kg, hostname, record,
    checkpoints, received_at, updated_at, gpu_kwh, idle_gpu_kwh, idle_gpu_kg, static_kwh, operational_kg,
    embodied_kg, embodied_nc, gpus_without_idle, derived, samples_res)
  SELECT 1, tm.id, pr.id, 'r' || g.n, 'user-' || ((g.n % $TEAMS) * $upt + (g.n / $TEAMS) % $upt),
    CASE g.n % 20 WHEN 0 THEN 'failed' WHEN 1 THEN 'killed' ELSE 'completed' END, 1,
    $(ts "$start"), $start, $(ts "$start + $dur"), $(month "$start"), $dur,
    $kwh, $kwh * 1.2, $kwh * 1.2 * 0.25, 'node-' || ((g.n % $TEAMS) * $hpt + ((g.n / $TEAMS) * 31) % $hpt),
    '$RECORD_HEAD' || 'r' || g.n || '",$RECORD_TAIL', 1, $(ts "$start"), $(ts "$start"),
    $kwh * 0.8, $kwh * 0.1, $kwh * 0.1 * 1.2 * 0.25, $kwh * 0.25, $kwh * 1.2 * 0.25, 0.0, 1, 0, 1,
    CASE WHEN $start < $now_unix - 365 * 86400 THEN 3600
         WHEN $start < $now_unix - 30 * 86400 THEN 60 ELSE 0 END
  FROM $series
  JOIN teams tm ON tm.name = 'team-' || (g.n % $TEAMS)
  JOIN projects pr ON pr.team_id = tm.id
    AND pr.name = 'project-' || (((g.n / $TEAMS) % $upt + (g.n / 1000) % 2) % $PROJECTS);
COMMIT;
EOF
    if [ "$spr" -gt 0 ]; then
        local ks="(WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n < $spr - 1) SELECT n FROM c) AS k"
        # 4 GPUs; buckets of the run's resolution (60 s for full-resolution runs here: the
        # figures are about row counts). Sample k of a run is device k % 4's (k / 4)-th.
        if [ "$d" = postgres ]; then
            # PostgreSQL keeps samples in sets (one row per run and device here, the arrays
            # built once per device); the table is filled empty, its key added after.
            cat <<EOF
BEGIN;
SET maintenance_work_mem = '1GB';
TRUNCATE sample_sets;
ALTER TABLE sample_sets DROP CONSTRAINT sample_sets_pkey;
INSERT INTO sample_sets (run_pk, device_id, t0_first, t0_last, n, t0, t1, energy_j)
  WITH a AS (
    SELECT d.n AS dev, c.cnt,
      ARRAY(SELECT i * 60.0 FROM generate_series(0, c.cnt - 1) i) AS t0,
      ARRAY(SELECT i * 60.0 + 60.0 FROM generate_series(0, c.cnt - 1) i) AS t1,
      ARRAY(SELECT 1000.0 + i * 4 + d.n FROM generate_series(0, c.cnt - 1) i) AS e
    FROM generate_series(0, 3) AS d(n), LATERAL (SELECT ($spr - d.n + 3) / 4 AS cnt) c
    WHERE c.cnt > 0)
  SELECT r.pk, 'gpu:' || a.dev, 0.0, (a.cnt - 1) * 60.0, a.cnt, a.t0, a.t1, a.e
  FROM runs r, a WHERE r.run_id LIKE 'r%';
ALTER TABLE sample_sets ADD CONSTRAINT sample_sets_pkey PRIMARY KEY (run_pk, device_id, t0_last);
COMMIT;
EOF
        else
            cat <<EOF
BEGIN;
INSERT INTO samples (run_pk, device_id, t0, t1, energy_j)
  SELECT r.pk, 'gpu:' || (k.n % 4), (k.n / 4) * 60.0, (k.n / 4) * 60.0 + 60.0, 1000.0 + k.n
  FROM runs r, $ks WHERE r.run_id LIKE 'r%';
COMMIT;
EOF
        fi
    fi
}

start_server() { # $1 = database URL
    "$BIN" serve --listen 127.0.0.1:0 --database "$1" --rate-limit 0 --max-expensive 0 \
        --no-downsample >"$WORK/serve.log" 2>&1 &
    SERVER_PID=$!
    URL=""
    for _ in $(seq 1 600); do
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

RESULTS="$WORK/results.txt"
: >"$RESULTS"
for backend in "${BACKENDS[@]}"; do
    case "$backend" in
        postgres)
            if [ -n "${SCALE_DB_URL:-}" ]; then
                DB="$SCALE_DB_URL"
            else
                [ -n "${PG_BASE:-}" ] || pg_base
                PG_DB="wp_scale_$$_$RANDOM"
                psql "$PG_BASE" -qc "CREATE DATABASE $PG_DB" >/dev/null
                DB="${PG_BASE%/*}/$PG_DB"
            fi
            n="$RUNS"; spr="$SAMPLES_PER_RUN"
            run_sql() { psql "$DB" -q -v ON_ERROR_STOP=1 >/dev/null; }
            ;;
        sqlite)
            DB="sqlite://$WORK/scale.db"
            n="$SQLITE_RUNS"; spr="$SQLITE_SAMPLES_PER_RUN"
            run_sql() { sqlite3 -bail "$WORK/scale.db" >/dev/null; }
            ;;
        *) echo "unknown backend $backend (postgres or sqlite)" >&2; exit 2 ;;
    esac
    export WATTPRINT_HOME="$WORK/home"
    mkdir -p "$WATTPRINT_HOME"
    t0=$(date +%s)
    if [ "$backend" = postgres ] && [ -n "${SCALE_DB_URL:-}" ]; then
        echo "== $backend: measuring $DB as it is" >&2
    else
        "$BIN" admin team create load --database "$DB" >/dev/null   # creates and migrates the schema
        echo "== $backend: generating $n runs, $((n * spr)) sample rows" >&2
        gen_sql "$backend" "$n" "$spr" | run_sql
    fi
    t1=$(date +%s)
    echo "== $backend: generated in $((t1 - t0)) s" >&2
    if [ "$backend" = postgres ]; then
        psql "$DB" -qc "VACUUM ANALYZE" >/dev/null
        echo "== $backend: vacuumed and analysed in $(($(date +%s) - t1)) s" >&2
        size="$(psql "$DB" -Atc "SELECT pg_database_size(current_database())")"
        samples_size="$(psql "$DB" -Atc "SELECT pg_total_relation_size('sample_sets')")"
    else
        sqlite3 "$WORK/scale.db" "ANALYZE" >/dev/null
        size="$(stat -c %s "$WORK/scale.db")"
        samples_size=""
    fi
    ORG_TOKEN="$("$BIN" admin token create --org-wide --role viewer --name scale-org --database "$DB" 2>/dev/null)"
    TEAM_TOKEN="$("$BIN" admin token create --team team-7 --role admin --name scale-team --database "$DB" 2>/dev/null)"
    LOAD_TOKEN="$("$BIN" admin token create --team load --role member --name load --database "$DB" 2>/dev/null)"
    start_server "$DB"
    if [ "$backend" = postgres ]; then
        # The load's rollup changes wait in the journal; measure once the server has folded
        # them (20 000 rows per statement, every second), as in steady operation.
        for _ in $(seq 1 600); do
            left="$(psql "$DB" -Atc "SELECT count(*) FROM rollup_deltas")"
            [ "$left" -lt 1000 ] && break
            sleep 1
        done
        # What autovacuum does to the journal after the bulk load's million folded rows.
        psql "$DB" -qc "VACUUM ANALYZE rollup_deltas" >/dev/null
        echo "== $backend: journal folded ($left rows left) and vacuumed" >&2
    fi
    # Budgets for every team (read by /budgets and the pages).
    for t in $(seq 0 $((TEAMS - 1))); do
        tok="$("$BIN" admin token create --team "team-$t" --role admin --name b --database "$DB" 2>/dev/null)"
        curl -s -o /dev/null -X POST -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
            -d '{"name": "monthly", "kg_per_month": 5000}' "$URL/api/v1/budgets"
    done
    echo "== $backend: reads" >&2
    python3 - "$URL" "$ORG_TOKEN" "$TEAM_TOKEN" "$READS" "$backend" >>"$RESULTS" <<'EOF'
import http.client, re, sys, time, urllib.parse
url, org, team, n, backend = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
host = urllib.parse.urlparse(url).netloc
def conn():
    return http.client.HTTPConnection(host, timeout=120)
def session(tok):
    c = conn()
    c.request("GET", "/dashboard/login"); r = c.getresponse(); body = r.read().decode()
    ck = r.getheader("Set-Cookie").split(";")[0]
    nonce = re.search(r'name="nonce" value="([^"]+)"', body).group(1)
    c.request("POST", "/dashboard/login", urllib.parse.urlencode({"token": tok, "nonce": nonce}),
              {"Content-Type": "application/x-www-form-urlencoded", "Cookie": ck, "Origin": url})
    r = c.getresponse(); r.read()
    return r.getheader("Set-Cookie").split(";")[0]
org_cookie, team_cookie = session(org), session(team)
checks = [
    ("/totals by month (org)", "/api/v1/totals?group_by=month", {"Authorization": "Bearer " + org}),
    ("/totals by team (org)", "/api/v1/totals?group_by=team", {"Authorization": "Bearer " + org}),
    ("/totals by host (org)", "/api/v1/totals?group_by=host&limit=10000", {"Authorization": "Bearer " + org}),
    ("/totals by project, one month (org)", "/api/v1/totals?group_by=project&since=" + time.strftime("%Y-%m-01", time.gmtime()), {"Authorization": "Bearer " + org}),
    ("/totals by team, mid-month window (org)", "/api/v1/totals?group_by=team&since=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 47.3 * 86400)) + "&until=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 9.6 * 86400)), {"Authorization": "Bearer " + org}),
    ("/budgets (org, 50 budgets)", "/api/v1/budgets", {"Authorization": "Bearer " + org}),
    ("/runs, newest 100 (org)", "/api/v1/runs?limit=100", {"Authorization": "Bearer " + org}),
    ("dashboard overview (org)", "/dashboard/", {"Cookie": org_cookie}),
    ("dashboard team page", "/dashboard/teams/team-7", {"Cookie": team_cookie}),
    ("dashboard run page", "/dashboard/teams/team-7/runs/r1007", {"Cookie": team_cookie}),
]
c = conn()
for name, path, h in checks:
    lat = []
    for i in range(n + 2):
        t = time.perf_counter()
        c.request("GET", path, headers=h); r = c.getresponse(); r.read()
        if r.status != 200:
            sys.exit(f"{path}: HTTP {r.status}")
        if i >= 2:  # two warm-up requests
            lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print(f"| {backend} | {name} | {p(0.5):.1f} | {p(0.99):.1f} |")
EOF
    echo "== $backend: ingest with that history ($LOAD_SECONDS s, closed loop)" >&2
    load="$("$LOAD" --url "$URL" --token "$LOAD_TOKEN" --agents 32 --seconds "$LOAD_SECONDS" \
        --checkpoints 10 --samples 10 --project "scale-$backend-$$-$RANDOM")"
    python3 - "$backend" "$load" >>"$RESULTS" <<'EOF'
import json, sys
r = json.loads(sys.argv[2])
print(f"| {sys.argv[1]} | ingest, 32 agents closed loop: {r['requests_per_s']:.0f} req/s, nothing lost: {r['nothing_lost']} "
      f"| {r['latency_ms']['p50']:.1f} | {r['latency_ms']['p99']:.1f} |")
EOF
    stop_server
    "$BIN" admin rollups check --database "$DB" >&2
    count_sql="SELECT (SELECT count(*) FROM runs WHERE run_id LIKE 'r%'), (SELECT count(*) FROM samples), (SELECT count(*) FROM rollups), (SELECT count(*) FROM rollup_hosts)"
    # PostgreSQL: samples are counted from their sets (the view would unnest them all).
    [ "$backend" = postgres ] && count_sql="${count_sql/(SELECT count(\*) FROM samples)/(SELECT COALESCE(sum(n), 0) FROM sample_sets)}"
    if [ "$backend" = postgres ]; then
        rows="$(psql "$DB" -Atc "$count_sql")"
    else
        rows="$(sqlite3 "$WORK/scale.db" "$count_sql")"
    fi
    read -r runs samples rollups rollup_hosts <<<"$(echo "$rows" | tr '|' ' ')"
    {
        echo "| $backend | generated: $runs runs, $samples samples, $rollups rollup rows, $rollup_hosts host rollup rows in $((t1 - t0)) s | | |"
        echo "| $backend | database size: $((size / 1048576)) MiB; $((size / runs)) B per run; $((size / HOSTS / 1024)) KiB per node-year ($HOSTS nodes)${samples_size:+; samples $((samples_size / 1048576)) MiB, $((samples_size / (samples > 0 ? samples : 1))) B per sample} | | |"
    } >>"$RESULTS"
    if [ "$backend" = postgres ] && [ -n "$PG_DB" ] && [ -z "${SCALE_KEEP:-}" ]; then
        psql "$PG_BASE" -qc "DROP DATABASE $PG_DB" >/dev/null
        PG_DB=""
    fi
done

echo
echo "| database | what | p50 ms | p99 ms |"
echo "|---|---|---|---|"
cat "$RESULTS"
echo "($(nproc) cores, $(uname -m); server, database and client on the same machine)"
