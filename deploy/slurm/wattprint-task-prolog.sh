#!/bin/sh
# Slurm TaskProlog: runs as the user before each task; each `export` line it prints is set in
# the task's environment. It points `wattprint run` inside the job at the node's host ledger
# (when the site moved it) so that it shares the node with the Prolog's measurer, and says the
# job is measured.
[ -r "${WATTPRINT_SLURM_ENV:-/etc/wattprint/slurm.env}" ] && . "${WATTPRINT_SLURM_ENV:-/etc/wattprint/slurm.env}"
if [ -n "${WATTPRINT_RUNTIME_DIR:-}" ]; then
    echo "export WATTPRINT_RUNTIME_DIR=$WATTPRINT_RUNTIME_DIR"
fi
if [ -n "${WATTPRINT_SYSFS_ROOT:-}" ]; then
    echo "export WATTPRINT_SYSFS_ROOT=$WATTPRINT_SYSFS_ROOT"
fi
echo "export WATTPRINT_SLURM_MEASURED=prolog"
exit 0
