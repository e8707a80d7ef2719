# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A real single-host Ceph cluster for the tests (Debian 12: Ceph 16.2):
# one mon, one OSD (BlueStore on a sparse file), one RGW (beast), all on
# 127.0.0.1 with free ports, cephx on, no mgr, no systemd.  The daemons run
# in sessions of their own (setsid), so a test's time limit does not kill
# a cluster other tests share; their PIDs and start times are in
# DIR/pids and they are stopped by PID only.
#
# One cluster per run.  Tests call
#
#   source "$top_srcdir/tests/lib/ceph.sh"
#   ceph_shared            # skips (exit 77) when a Ceph package is
#                          # missing; fails with the first error line of
#                          # the daemon that could not start
#
# Under tests/run, the first test that calls ceph_shared starts the
# cluster in $BOOTBACK_CEPH_DIR (set by the runner, under a lock) and the
# runner stops it when the run ends (ceph_stop); later tests reuse it.  A
# test run any other way (bash tests/test-X.sh) gets a cluster of its own,
# stopped at its exit.  DIR is ${TMPDIR:-/var/tmp}/bootback-ceph.PID (the
# runner's or the test's PID), 0700: conf, keyrings, mon and OSD data,
# logs in DIR/log.  tests/run also stops what a killed run
# left behind (ceph_sweep: the owner's PID and start time no longer
# match).  Tests must not stop or reconfigure the shared cluster, and
# should use names of their own (image, bucket) so they do not collide.
#
# After ceph_shared the environment has:
#   CEPH_CONF              the cluster's ceph.conf (librados, rbd, rados,
#                          QEMU's rbd driver: conf=$CEPH_CONF)
#   CEPH_ID, CEPH_KEYRING  client.bootback and its keyring: caps "profile
#                          rbd" on pool CEPH_POOL only (the conf also
#                          names this keyring for client.bootback, so
#                          `rbd --id "$CEPH_ID"` needs nothing else)
#   CEPH_POOL              "rbd", initialised for RBD
#   CEPH_MON_HOST, CEPH_MON_PORT   the mon's msgr1 address, for libvirt's
#                          <source protocol='rbd'><host name= port=/>
#   CEPH_ADMIN_KEYRING     client.admin's keyring (setup only)
#   S3_ENDPOINT            http://127.0.0.1:PORT (path-style buckets)
#   S3_REGION              the region to sign with
#   S3_ACCESS_KEY, S3_SECRET_KEY   an RGW user's S3 keys
#   S3_CURL_CONFIG         a curl config (curl -K) holding the keys and
#                          --aws-sigv4, so no secret is on a command line
#
# S3 with curl 7.88: `curl -K "$S3_CURL_CONFIG" ...` signs SigV4 and sends
# x-amz-content-sha256: UNSIGNED-PAYLOAD (RGW refuses a request without
# it); a sub-resource needs its "=" (?versioning=, ?retention=&versionId=)
# or the signature does not match.  Buckets are path-style.
#
# libvirt (the fleet work) opens an image as <source protocol='rbd'
# name='POOL/IMAGE'><host name='$CEPH_MON_HOST' port='$CEPH_MON_PORT'/>
# with <auth username='$CEPH_ID'><secret type='ceph' uuid=.../></auth>:
# the secret's value is the "key =" of $CEPH_KEYRING, given with virsh
# secret-set-value --file (never on a command line), and libvirt hands it
# to QEMU as a secret object; the smoke test opens the image that way.
#
# Cost, measured on the 2-core test machine: see CONTRIBUTING.md (Test).

# Knobs (environment): the OSD's size, a sparse file of which BlueStore
# allocates what is written; memstore starts ~3 s sooner but keeps every
# byte in RAM.
: "${CEPH_OSD_BYTES:=8589934592}"
: "${CEPH_OBJECTSTORE:=bluestore}"
CEPH_POOL=rbd

_ceph_free_port () {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Field 22 of /proc/PID/stat, the start time in clock ticks since boot:
# with the PID it names one process, not a later one that reused the PID.
# Nothing for a zombie (dead, not yet reaped).
_ceph_starttime () {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    set -- $stat
    [ "$1" != Z ] || return 1
    echo "${20}"
}

# _ceph_alive PID STARTTIME: that very process is still running.
_ceph_alive () {
    [ "$(_ceph_starttime "$1")" = "$2" ]
}

# _ceph_daemon DIR NAME CMD...: run CMD in a session of its own, output
# to DIR/log/NAME.out, and record its PID and start time in DIR/pids.
# setsid does not fork here (a background job of a script is not a
# process-group leader), so $! is the daemon itself.
_ceph_daemon () {
    local dir=$1 name=$2 pid
    shift 2
    # without ceph_shared's lock: a daemon holding it would block the
    # next test for good
    if [ -n "${_ceph_lock_fd:-}" ]; then
        setsid "$@" </dev/null >"$dir/log/$name.out" 2>&1 {_ceph_lock_fd}>&- &
    else
        setsid "$@" </dev/null >"$dir/log/$name.out" 2>&1 &
    fi
    pid=$!
    echo "$name $pid $(_ceph_starttime "$pid")" >> "$dir/pids"
}

# The cluster's own tools, as client.admin, with a time limit.
_ceph_admin () {
    timeout 60 "$@" --conf "$_ceph_dir/ceph.conf" --name client.admin \
        --keyring "$_ceph_dir/admin.keyring"
}

# The mon's addresses: msgr2 on MONPORT (a "v2 v1" pair of ports), msgr1
# for clients given a bare host:port (libvirt's <host name= port=>; Ceph
# takes a port other than 3300 for msgr1).
_ceph_mon_addrs () {
    set -- $1
    echo "[v2:127.0.0.1:$1,v1:127.0.0.1:$2]"
}

_ceph_conf () {
    local dir=$1 monport=$2 rgwport=$3
    cat > "$dir/ceph.conf" <<EOF
[global]
fsid = $(cat /proc/sys/kernel/random/uuid)
mon host = $(_ceph_mon_addrs "$monport")
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $dir/run
log file = $dir/log/\$name.log
mon data avail warn = 1
auth allow insecure global id reclaim = false
mon data = $dir/mon/\$id
osd data = $dir/osd/\$id
osd objectstore = $CEPH_OBJECTSTORE
memstore device bytes = $CEPH_OSD_BYTES
bluestore block create = true
bluestore block size = $CEPH_OSD_BYTES
osd memory target = 939524096
bluestore cache autotune = false
bluestore cache size = 134217728
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
# commit map changes at once, not every second: halves the start time
paxos propose interval = 0.05
paxos min wait = 0.01

[mon]
keyring = $dir/mon.keyring

[osd]
keyring = $dir/osd/\$id/keyring

[client]
log file =

[client.admin]
keyring = $dir/admin.keyring

[client.bootback]
keyring = $dir/bootback.keyring

[client.rgw.a]
log file = $dir/log/\$name.log
keyring = $dir/rgw.keyring
rgw frontends = beast endpoint=127.0.0.1:$rgwport
rgw data = $dir/rgw
EOF
}

# _ceph_wait_log WHAT SECONDS CMD...: retry CMD (quiet) until it succeeds.
_ceph_wait () {
    local what=$1 secs=$2 i
    shift 2
    for (( i = 0; i < secs * 5; i++ )); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "ceph: $what not ready after ${secs}s (logs in $_ceph_dir/log)" >&2
    return 1
}

_ceph_start_mon () {
    local dir=$1
    ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. \
        --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$dir/admin.keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/admin.keyring" >/dev/null
    monmaptool --create --fsid "$(sed -n 's/^fsid = //p' "$dir/ceph.conf")" \
        --addv a "$(_ceph_mon_addrs "$2")" "$dir/monmap" >/dev/null
    ceph-mon --conf "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" \
        --keyring "$dir/mon.keyring" >/dev/null
    _ceph_daemon "$dir" mon.a ceph-mon --conf "$dir/ceph.conf" -f -i a
}

_ceph_start_osd () {
    local dir=$1 uuid key id
    uuid=$(cat /proc/sys/kernel/random/uuid)
    key=$(ceph-authtool --gen-print-key)
    printf '{"cephx_secret": "%s"}\n' "$key" > "$dir/osd-secret.json"
    id=$(_ceph_admin ceph osd new "$uuid" -i "$dir/osd-secret.json")
    rm -f "$dir/osd-secret.json"
    mkdir -p "$dir/osd/$id"
    printf '[osd.%s]\n\tkey = %s\n' "$id" "$key" > "$dir/osd/$id/keyring"
    ceph-osd --conf "$dir/ceph.conf" -i "$id" --mkfs --osd-uuid "$uuid" \
        >"$dir/log/osd.$id.mkfs" 2>&1
    _ceph_daemon "$dir" "osd.$id" ceph-osd --conf "$dir/ceph.conf" -f -i "$id"
}

_ceph_start_rgw () {
    local dir=$1 port=$2
    _ceph_admin ceph auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' \
        -o "$dir/rgw.keyring"
    mkdir -p "$dir/rgw"
    _ceph_daemon "$dir" rgw.a radosgw --conf "$dir/ceph.conf" -f -n client.rgw.a
}

# The pool for RBD, client.bootback limited to it, and the S3 user.
_ceph_clients () {
    local dir=$1
    _ceph_admin ceph osd pool create "$CEPH_POOL" 8 8 >/dev/null 2>&1
    _ceph_admin rbd pool init "$CEPH_POOL"
    _ceph_admin ceph auth get-or-create client.bootback \
        mon 'profile rbd' osd "profile rbd pool=$CEPH_POOL" -o "$dir/bootback.keyring"
    _ceph_admin radosgw-admin user create --uid=bootback --display-name=bootback \
        > "$dir/s3-user.json"
}

# ceph_start DIR: a new cluster in DIR (created, 0700, files 0600), its
# environment in DIR/env (sourced here too).  Relies on set -e, outside any condition:
# ceph_shared runs it as ( set -e; ceph_start DIR ).
ceph_start () {
    local dir=$1 monport rgwport t0=$SECONDS
    _ceph_dir=$dir
    umask 077       # keyrings and keys 0600, directories 0700
    mkdir "$dir"
    echo "${BOOTBACK_CEPH_OWNER:-$$ $(_ceph_starttime $$)}" > "$dir/owner"
    mkdir -p "$dir/run" "$dir/log" "$dir/mon" "$dir/osd"
    : > "$dir/pids"
    monport="$(_ceph_free_port) $(_ceph_free_port)"
    rgwport=$(_ceph_free_port)
    _ceph_conf "$dir" "$monport" "$rgwport"
    _ceph_start_mon "$dir" "$monport"
    _ceph_wait "mon" 30 _ceph_admin ceph mon stat
    _ceph_start_osd "$dir"
    _ceph_wait "osd" 60 _ceph_osd_up
    _ceph_start_rgw "$dir" "$rgwport"
    _ceph_clients "$dir"
    _ceph_wait "rgw" 60 curl -sf -o /dev/null "http://127.0.0.1:$rgwport/"
    _ceph_env "$dir" "$rgwport" "${monport#* }" > "$dir/env"
    source "$dir/env"
    echo "ceph: cluster up in $((SECONDS - t0))s in $dir"
}

_ceph_osd_up () {
    grep -q '1 up' <<< "$(_ceph_admin ceph osd stat)"
}

# The environment tests get (see the header), from DIR's files.
_ceph_env () {
    local dir=$1 port=$2 mon1port=$3 ak sk
    read -r ak sk < <(python3 -c 'import json, sys
k = json.load(open(sys.argv[1]))["keys"][0]; print(k["access_key"], k["secret_key"])' \
        "$dir/s3-user.json")
    # curl 7.88 signs SigV4 but sends no x-amz-content-sha256, which RGW
    # wants; sub-resources need their "=" (?versioning=) to sign right.
    printf 'user = "%s:%s"\naws-sigv4 = "aws:amz:%s:s3"\n' "$ak" "$sk" "$S3_REGION" \
        > "$dir/s3.curl"
    printf 'header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"\n' >> "$dir/s3.curl"
    cat <<EOT
export CEPH_CONF=$dir/ceph.conf CEPH_ID=bootback CEPH_KEYRING=$dir/bootback.keyring
export CEPH_POOL=$CEPH_POOL CEPH_ADMIN_KEYRING=$dir/admin.keyring
export CEPH_MON_HOST=127.0.0.1 CEPH_MON_PORT=$mon1port
export S3_ENDPOINT=http://127.0.0.1:$port S3_REGION=$S3_REGION
export S3_ACCESS_KEY=$ak S3_SECRET_KEY=$sk S3_CURL_CONFIG=$dir/s3.curl
EOT
}
S3_REGION=us-east-1

# ceph_stop DIR: stop DIR's daemons and remove DIR.
ceph_stop () {
    _ceph_kill_all "$1"
    rm -rf "$1" "$1.lock"
}

# Kill the processes recorded in DIR/pids (PID and start time: nothing
# else) and wait until they are gone.  SIGKILL: the cluster is thrown
# away, and a clean OSD shutdown costs seconds.
_ceph_kill_all () {
    local dir=$1 name pid st i
    [ -f "$dir/pids" ] || return 0
    while read -r name pid st; do
        if _ceph_alive "$pid" "$st"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done < "$dir/pids"
    while read -r name pid st; do
        for (( i = 0; i < 100; i++ )); do
            _ceph_alive "$pid" "$st" || continue 2
            sleep 0.05
        done
        echo "ceph: $name (PID $pid) still there after SIGKILL" >&2
    done < "$dir/pids"
}

# ceph_sweep: stop the clusters of runs and tests that died without
# stopping theirs (their owner, PID and start time, is gone).
ceph_sweep () {
    local dir pid st
    for dir in "${TMPDIR:-/var/tmp}"/bootback-ceph.*; do
        [ -d "$dir" ] || continue
        if [ -f "$dir/owner" ]; then
            read -r pid st < "$dir/owner"
            _ceph_alive "$pid" "$st" && continue
        elif [ -z "$(find "$dir" -maxdepth 0 -mmin +10)" ]; then
            continue    # being created
        fi
        echo "ceph: stopping a cluster left behind: $dir" >&2
        ceph_stop "$dir"
    done
}

# ceph_shared: the run's cluster (started by the first test that asks),
# or, outside tests/run, one of this test's own.  Skips when the Ceph
# packages are missing; fails naming the daemon and its last log lines
# when the cluster cannot start (and so do the run's later tests, at once).
ceph_shared () {
    local dir
    _ceph_requires
    if [ -z "${BOOTBACK_CEPH_DIR:-}" ]; then
        export BOOTBACK_CEPH_DIR="${TMPDIR:-/var/tmp}/bootback-ceph.$$"
        export BOOTBACK_CEPH_OWNER="$$ $(_ceph_starttime $$)"
        cleanup_fn ceph_stop "$BOOTBACK_CEPH_DIR"
    fi
    dir=$BOOTBACK_CEPH_DIR
    exec {_ceph_lock_fd}>"$dir.lock"
    flock -w 600 "$_ceph_lock_fd" || fail "ceph: timed out waiting for $dir.lock"
    [ ! -f "$dir/failed" ] || fail "$(cat "$dir/failed")"
    if ! _ceph_running "$dir"; then
        _ceph_kill_all "$dir"
        rm -rf "$dir"
        _ceph_start_or_fail "$dir"
    fi
    source "$dir/env"
    exec {_ceph_lock_fd}>&-
    _ceph_lock_fd=
}

# ceph_private: a cluster of this test's own, stopped at its exit, for a
# test that changes what every client of a cluster sees (its full ratio:
# the shared cluster's other tests would stall).  The same environment as
# ceph_shared; about 6-10 s to start.
ceph_private () {
    local dir=${TMPDIR:-/var/tmp}/bootback-ceph.$$-own
    _ceph_requires
    cleanup_fn ceph_stop "$dir"
    BOOTBACK_CEPH_OWNER="$$ $(_ceph_starttime $$)" _ceph_start_or_fail "$dir"
    source "$dir/env"
}

# Skip (exit 77) unless every Ceph program the clusters need is installed.
_ceph_requires () {
    local c
    for c in ceph-mon ceph-osd radosgw radosgw-admin rbd ceph-authtool monmaptool; do
        command -v "$c" >/dev/null 2>&1 || skip "$c is not installed (make deps)"
    done
}

# Start a cluster in DIR, or fail with the first error line of the daemon
# that could not start (and its last log lines on stderr).
_ceph_start_or_fail () {
    local dir=$1 c
    # set -e holds inside ceph_start only outside a condition
    set +e
    ( set -e; ceph_start "$dir" )
    c=$?
    set -e
    if [ "$c" -ne 0 ]; then
        tail -n 5 "$dir"/log/*.mkfs "$dir"/log/*.out >&2 2>/dev/null || true
        _ceph_failed "$dir"
        fail "$(cat "$dir/failed")"
    fi
}

# DIR holds a started cluster whose daemons all still run.
_ceph_running () {
    local dir=$1 name pid st
    [ -f "$dir/env" ] || return 1
    while read -r name pid st; do
        _ceph_alive "$pid" "$st" || return 1
    done < "$dir/pids"
}

# Record why the cluster did not start: the last error line of each
# daemon (or mkfs) that is not running.  The daemons still alive are
# stopped.
_ceph_failed () {
    local dir=$1 name pid st f msg="ceph: the test cluster did not start"
    mkdir -p "$dir"
    touch "$dir/pids"
    for f in "$dir"/log/*.mkfs; do
        [ -f "$f" ] && msg+="; $(basename "$f"): $(_ceph_last_error "$f")"
    done
    while read -r name pid st; do
        _ceph_alive "$pid" "$st" && continue
        msg+="; $name exited: $(_ceph_last_error "$dir/log/$name.out" "$dir/log/$name.log")"
    done < "$dir/pids"
    echo "$msg (logs: $dir/log)" > "$dir/failed.tmp"
    _ceph_kill_all "$dir"
    mv "$dir/failed.tmp" "$dir/failed"
}

# The line of a daemon's logs that says why it stopped: the first
# FAILED/ERROR line (an assertion, a refusal), else the last error.
_ceph_last_error () {
    local lines
    lines=$(cat "$@" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | grep -a . || true)
    { grep -a -m 1 -E 'FAILED|ERROR' <<< "$lines" ||
          grep -a -E ' -1 |error|failed' <<< "$lines" | tail -n 1 ||
          tail -n 1 <<< "$lines"; } | cut -c1-300
}
