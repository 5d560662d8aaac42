#!/usr/bin/env bash
# Stops the cluster scripts/slurm-up.sh started (slurmd, slurmctld, slurmdbd, MariaDB, munged,
# by their pid files under $WATTPRINT_SLURM_DIR) and removes that directory.
# --keep-logs: keep $WATTPRINT_SLURM_DIR/log (slurm-up.sh keeps them when the cluster fails).
D="${WATTPRINT_SLURM_DIR:-}"
if [ -z "$D" ] || [ ! -d "$D" ]; then
    echo "slurm-down.sh: no cluster (WATTPRINT_SLURM_DIR is not a directory)" >&2
    exit 0
fi
case "$D" in /tmp/wattprint-slurm.*) ;; *) echo "slurm-down.sh: $D is not a slurm-up.sh directory" >&2; exit 1 ;; esac
stop() { # pid file
    local pid
    [ -f "$1" ] || return 0
    pid="$(cat "$1" 2>/dev/null)"
    case "$pid" in '' | *[!0-9]*) return 0 ;; esac
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}
stop "$D/run/slurmd.pid"
stop "$D/run/slurmctld.pid"
stop "$D/run/slurmdbd.pid"
stop "$D/mysql.pid"
stop "$D/munge/munged.pid"
if [ "${1:-}" = --keep-logs ]; then
    find "$D" -mindepth 1 -maxdepth 1 ! -name log -exec rm -rf {} +
else
    rm -rf "$D"
fi
