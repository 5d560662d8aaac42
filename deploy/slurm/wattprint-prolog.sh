#!/bin/sh
# Slurm Prolog: measure the job on this node with `wattprint run`, for sites that do not load
# the SPANK plugin (docs/slurm.md, "Without the plugin"). slurm.conf:
#
#     Prolog=/usr/lib/wattprint/wattprint-prolog.sh
#     Epilog=/usr/lib/wattprint/wattprint-epilog.sh
#     TaskProlog=/usr/lib/wattprint/wattprint-task-prolog.sh
#     PrologFlags=Alloc          # run the Prolog when the job starts, not at its first step
#
# It starts, detached, one machine-scope `wattprint run` per job and node keyed `slurm:JOB` (the
# key `wattprint run` derives in the batch script) that waits for the Epilog's stop file. Site
# settings (WATTPRINT_HOME, WATTPRINT_SERVER, WATTPRINT_LOCATION, ...) come from
# /etc/wattprint/slurm.env ($WATTPRINT_SLURM_ENV). It never fails the job: it always exits 0.
[ -r "${WATTPRINT_SLURM_ENV:-/etc/wattprint/slurm.env}" ] && . "${WATTPRINT_SLURM_ENV:-/etc/wattprint/slurm.env}"
: "${WATTPRINT_BIN:=/usr/bin/wattprint}"
: "${WATTPRINT_SLURM_STATE:=/run/wattprint-slurm}"
: "${WATTPRINT_HOME:=/var/lib/wattprint}"
export WATTPRINT_HOME
case "${SLURM_JOB_ID:-}" in '' | *[!0-9]*) exit 0 ;; esac
mkdir -p "$WATTPRINT_SLURM_STATE" 2>/dev/null && chmod 700 "$WATTPRINT_SLURM_STATE" 2>/dev/null || exit 0
base="$WATTPRINT_SLURM_STATE/$SLURM_JOB_ID"
rm -f "$base.stop"
# The measurer waits for the stop file; it ends by itself if the state directory goes away.
setsid "$WATTPRINT_BIN" run --quiet --project "${WATTPRINT_PROJECT:-slurm}" \
    --job "slurm:$SLURM_JOB_ID" --tag "slurm_job=$SLURM_JOB_ID" --tag slurm_step=prolog -- \
    sh -c 'while [ ! -e "$1" ] && [ -d "$2" ]; do sleep 1; done' wattprint-slurm-wait "$base.stop" "$WATTPRINT_SLURM_STATE" \
    </dev/null >"$base.log" 2>&1 &
echo $! >"$base.pid"
exit 0
