#!/bin/sh
# Slurm Epilog: end the measurer wattprint-prolog.sh started for this job on this node (its
# record is then final in the site store) and wait for it, at most 60 s. Always exits 0.
[ -r "${WATTPRINT_SLURM_ENV:-/etc/wattprint/slurm.env}" ] && . "${WATTPRINT_SLURM_ENV:-/etc/wattprint/slurm.env}"
: "${WATTPRINT_SLURM_STATE:=/run/wattprint-slurm}"
case "${SLURM_JOB_ID:-}" in '' | *[!0-9]*) exit 0 ;; esac
base="$WATTPRINT_SLURM_STATE/$SLURM_JOB_ID"
[ -f "$base.pid" ] || exit 0
: >"$base.stop"
pid="$(cat "$base.pid" 2>/dev/null)"
case "$pid" in '' | *[!0-9]*) pid="" ;; esac
i=0
while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$i" -lt 600 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    echo "wattprint-epilog: the measurer of job $SLURM_JOB_ID did not end; sent SIGTERM" >>"$base.log"
else
    rm -f "$base.log"
fi
rm -f "$base.stop" "$base.pid"
exit 0
