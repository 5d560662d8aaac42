#!/usr/bin/env bash
# A real one-node Slurm cluster on loopback, for the Slurm tests (crates/spank/tests). Source it:
#
#     source scripts/slurm-up.sh      # ... cargo test -p wattprint-spank ...; bash scripts/slurm-down.sh
#
# As root, without systemd: installs Debian's slurm-wlm, slurmdbd, libslurm-dev, munge and
# mariadb-server when missing, then starts munged, MariaDB (its own data directory, loopback
# only), slurmdbd, slurmctld and slurmd. NodeName is `hostname -s`; proctrack/linuxproc and
# task/none (no cgroups); accounting through slurmdbd, so `sacct` works. Everything lives under
# one directory ($WATTPRINT_SLURM_DIR) that scripts/slurm-down.sh stops and removes.
#
# plugstack.conf loads the wattprint SPANK plugin from the cargo target directory (optional:
# the tests build it; slurmstepd loads it afresh at each step) with a fake powercap host
# ($WATTPRINT_SLURM_DIR/fakehost/sys) the tests drive, a site store and a runtime directory.
#
# Exports: WATTPRINT_TEST_SLURM=1, WATTPRINT_SLURM_DIR, SLURM_CONF. When the cluster cannot
# start, it says why and exports nothing: the Slurm tests then fail (they do not skip).

# The work runs in a child bash (`slurm-up.sh --start DIR`), so that `set -e` holds there
# whatever the sourcing shell does (bash ignores it in a subshell that is a condition or in an
# `||` list) and a failure never ends the sourcing shell.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    if [ "${1:-}" != --start ] || [ -z "${2:-}" ]; then
        echo "source this script (its exports are for the calling shell): source scripts/slurm-up.sh" >&2
        exit 2
    fi
    set -euo pipefail
    D="$2"
    REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    t0=$SECONDS
    if [ "$(id -u)" != 0 ]; then
        echo "slurm-up.sh must run as root (slurmd and slurmstepd run as root)" >&2
        exit 1
    fi
    need=()
    for b in /usr/sbin/slurmctld:slurm-wlm /usr/sbin/slurmd:slurmd /usr/sbin/slurmdbd:slurmdbd \
        /usr/include/slurm/spank.h:libslurm-dev /usr/sbin/munged:munge /usr/sbin/mariadbd:mariadb-server \
        /usr/bin/sacct:slurm-client; do
        [ -e "${b%%:*}" ] || need+=("${b#*:}")
    done
    if [ "${#need[@]}" -gt 0 ]; then
        echo "installing ${need[*]} (Debian packages)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        # No daemon is started by the packages' scripts: this script starts its own.
        apt-get install -y -qq slurm-wlm slurmdbd libslurm-dev munge mariadb-server >/dev/null
    fi
    mkdir -p "$D"/{etc,munge,mysql,log,ctld,spool,run,site,fakehost}
    chmod 755 "$D"
    # Below the kernel's range of ephemeral ports (the local ports of outgoing connections,
    # which nothing answers on but which a daemon cannot bind), when there is room.
    eph=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "$eph" -gt 21000 ] 2>/dev/null || eph=60000
    free_port() {
        local p
        for _ in $(seq 1 50); do
            p=$((20000 + RANDOM % (eph - 20000)))
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
                echo "$p"
                return 0
            fi
        done
        return 1
    }
    wait_for() { # what, seconds, command...
        local what="$1" secs="$2"
        shift 2
        local end=$((SECONDS + secs))
        until "$@" >/dev/null 2>&1; do
            if [ "$SECONDS" -ge "$end" ]; then
                echo "timed out waiting for $what" >&2
                return 1
            fi
            sleep 0.2
        done
    }
    HOST="$(hostname -s)"

    # munge: own key and socket.
    dd if=/dev/urandom of="$D/etc/munge.key" bs=1024 count=1 status=none
    chmod 400 "$D/etc/munge.key"
    chmod 755 "$D/munge"  # jobs of other users reach munged too
    /usr/sbin/munged --force --key-file="$D/etc/munge.key" --socket="$D/munge/munge.socket" \
        --pid-file="$D/munge/munged.pid" --log-file="$D/log/munged.log" --seed-file="$D/munge/seed"
    wait_for munged 15 munge --socket="$D/munge/munge.socket" -n

    # MariaDB: own data directory, loopback TCP only (slurmdbd speaks TCP).
    /usr/bin/mariadb-install-db --user=root --datadir="$D/mysql" --auth-root-authentication-method=socket \
        --skip-test-db >"$D/log/mariadb-install.log" 2>&1 || { cat "$D/log/mariadb-install.log" >&2; exit 1; }
    # A free port may be taken between the look and the bind: another port then, three tries.
    for try in 1 2 3; do
        DBPORT=$(free_port)
        : >"$D/log/mariadb.log"
        /usr/sbin/mariadbd --no-defaults --user=root --datadir="$D/mysql" --socket="$D/mysql.sock" \
            --pid-file="$D/mysql.pid" --bind-address=127.0.0.1 --port="$DBPORT" --skip-name-resolve \
            --innodb-buffer-pool-size=32M --innodb-log-file-size=8M --innodb-flush-log-at-trx-commit=0 \
            --log-error="$D/log/mariadb.log" >>"$D/log/mariadb.log" 2>&1 &
        db_pid=$!
        # Until it answers, it ends (a port taken), or 40 s pass (then wait_for below says so).
        end=$((SECONDS + 40))
        until mariadb --no-defaults --socket="$D/mysql.sock" -uroot -e 'select 1' >/dev/null 2>&1; do
            kill -0 "$db_pid" 2>/dev/null || break
            [ "$SECONDS" -lt "$end" ] || break
            sleep 0.2
        done
        if kill -0 "$db_pid" 2>/dev/null; then
            break
        fi
        grep -q "Address already in use" "$D/log/mariadb.log" && [ "$try" -lt 3 ] || {
            echo "MariaDB did not start" >&2
            exit 1
        }
    done
    wait_for MariaDB 40 mariadb --no-defaults --socket="$D/mysql.sock" -uroot -e 'select 1'
    mariadb --no-defaults --socket="$D/mysql.sock" -uroot -e \
        "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"

    DBDPORT=$(free_port)
    CTLDPORT=$(free_port)
    SLURMDPORT=$(free_port)
    cat >"$D/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBDPORT
SlurmUser=root
PidFile=$D/run/slurmdbd.pid
LogFile=$D/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DBPORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$D/etc/slurmdbd.conf"
    TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
    case "$TARGET" in /*) ;; *) TARGET="$REPO/$TARGET" ;; esac
    # The fake powercap host the plugin measures (tests drive its counters).
    for z in "intel-rapl:0 package-0 262143328850" "intel-rapl:0:0 dram 65712999613"; do
        set -- $z
        mkdir -p "$D/fakehost/sys/class/powercap/$1"
        echo "$2" >"$D/fakehost/sys/class/powercap/$1/name"
        echo 1000000 >"$D/fakehost/sys/class/powercap/$1/energy_uj"
        echo "$3" >"$D/fakehost/sys/class/powercap/$1/max_energy_range_uj"
    done
    # A 10 kW package: the tests add energy in steps of at most 200 J between two readings
    # (RAPL readings above twice this bound are rejected as implausible).
    echo 10000000000 >"$D/fakehost/sys/class/powercap/intel-rapl:0/constraint_0_max_power_uw"
    cat >"$D/etc/plugstack.conf" <<EOF
optional $TARGET/debug/libwattprint_spank.so store=$D/site sysfs_root=$D/fakehost/sys runtime_dir=$D/run/wattprint config=$D/etc/wattprint-policy.toml interval=50ms allow_opt_out=yes budget_kwh=0.001 grace=3s
EOF
    cat >"$D/etc/slurm.conf" <<EOF
ClusterName=wattprint
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLDPORT
SlurmdPort=$SLURMDPORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket
StateSaveLocation=$D/ctld
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBDPORT
# The munge socket for slurmdbd connections (AuthInfo's is not used for them).
AccountingStoragePass=$D/munge/munge.socket
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
PlugStackConfig=$D/etc/plugstack.conf
ReturnToService=2
KillWait=5
MinJobAge=600
InactiveLimit=0
SchedulerParameters=defer_batch=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=8 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF="$D/etc/slurm.conf"
    /usr/sbin/slurmdbd
    wait_for slurmdbd 40 sacctmgr -i list cluster
    sacctmgr -i add cluster wattprint >/dev/null
    /usr/sbin/slurmctld -i
    wait_for slurmctld 30 scontrol ping
    mkdir -p "$D/spool/$HOST"
    /usr/sbin/slurmd -N "$HOST"
    wait_for "the node $HOST to be idle" 40 sh -c "sinfo -h -n '$HOST' -o %t | grep -qx idle"
    echo "Slurm up in $((SECONDS - t0)) s: $(sinfo -h -o '%P %D %t %C') (SLURM_CONF=$SLURM_CONF)"
    exit 0
fi

_wp_slurm_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_wp_slurm_dir="$(mktemp -d /tmp/wattprint-slurm.XXXXXX)"
echo "== Slurm (one-node cluster on loopback in $_wp_slurm_dir)"
_wp_rc=0
bash "$_wp_slurm_repo/scripts/slurm-up.sh" --start "$_wp_slurm_dir" || _wp_rc=$?
if [ "$_wp_rc" = 0 ]; then
    export WATTPRINT_TEST_SLURM=1
    export WATTPRINT_SLURM_DIR="$_wp_slurm_dir"
    export SLURM_CONF="$_wp_slurm_dir/etc/slurm.conf"
else
    echo "the Slurm cluster could not start (logs in $_wp_slurm_dir/log); the Slurm tests will fail" >&2
    for _wp_f in "$_wp_slurm_dir"/log/*.log; do
        if [ -f "$_wp_f" ]; then
            echo "--- $_wp_f" >&2
            tail -n 15 "$_wp_f" >&2
        fi
    done
    WATTPRINT_SLURM_DIR="$_wp_slurm_dir" bash "$_wp_slurm_repo/scripts/slurm-down.sh" --keep-logs || true
    unset WATTPRINT_TEST_SLURM
fi
unset _wp_slurm_dir _wp_slurm_repo _wp_f _wp_rc
