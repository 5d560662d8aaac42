#!/usr/bin/env bash
# Sourced by scripts/test.sh and .ci/run: what the tests need besides cargo.
# - Debian's headless Chromium (the HTML report and dashboard tests drive it), installed if missing;
# - Debian's librocm-smi64-1 (the AMD sensor is tested against the real library), likewise;
# - a throwaway PostgreSQL cluster on a free loopback port for the server's tests
#   (WATTPRINT_TEST_POSTGRES_URL; stopped and deleted when the calling shell exits),
#   unless WATTPRINT_TEST_POSTGRES_URL is already set.

echo "== headless Chromium (the HTML report test loads reports in it)"
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null || true
echo "== Debian's ROCm SMI library (the AMD sensor's test loads the real librocm_smi64.so.1)"
if [ ! -e /usr/lib/librocm_smi64.so.1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq librocm-smi64-1 >/dev/null
fi
ls -l /usr/lib/librocm_smi64.so.1 || true
if [ -n "${WATTPRINT_TEST_POSTGRES_URL:-}" ]; then
  echo "== PostgreSQL: using WATTPRINT_TEST_POSTGRES_URL"
else
echo "== PostgreSQL (throwaway cluster for the server tests)"
find_pg_bin() {
    local d found=""
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then found="$d"; fi
    done
    echo "$found"
}
PG_BIN="$(find_pg_bin)"
if [ -z "$PG_BIN" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL (Debian package postgresql)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    PG_BIN="$(find_pg_bin)"
fi
if [ -z "$PG_BIN" ]; then
    echo "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin;" >&2
    echo "install them (Debian: apt-get install postgresql) — the server tests need a real PostgreSQL" >&2
    exit 1
fi
"$PG_BIN/postgres" --version
PG_DIR="$(mktemp -d /tmp/wattprint-ci-pg.XXXXXX)"
AS=()
if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root: the cluster belongs to an unprivileged system user.
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    chown postgres "$PG_DIR"
    AS=(runuser -u postgres --)
fi
stop_pg() {
    "${AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
trap stop_pg EXIT
"${AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U wattprint -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
PG_PORT=""
for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    # A port something already answers on is taken.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    if "${AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $port -k $PG_DIR -F -c max_connections=300" start >/dev/null; then
        PG_PORT="$port"
        break
    fi
done
if [ -z "$PG_PORT" ]; then
    echo "could not start PostgreSQL:" >&2
    cat "$PG_DIR/server.log" >&2 || true
    exit 1
fi
export WATTPRINT_TEST_POSTGRES_URL="postgres://wattprint@127.0.0.1:$PG_PORT/postgres"
echo "PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DIR)"

fi

# A real one-node Slurm for the SPANK plugin's tests (crates/spank/tests): they fail, not
# skip, when it could not start. Stopped and removed when the calling shell exits.
source "$(dirname "${BASH_SOURCE[0]}")/slurm-up.sh"
_wp_test_env_exit() {
    if [ -n "${WATTPRINT_SLURM_DIR:-}" ]; then
        bash "$(dirname "${BASH_SOURCE[0]}")/slurm-down.sh"
    fi
    if declare -F stop_pg >/dev/null; then stop_pg; fi
}
trap _wp_test_env_exit EXIT
