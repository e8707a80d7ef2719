#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A Ceph pool that fills up while an instant-recovery session migrates to
# it (`migrate --to rbd:POOL/PREFIX`).  Ceph holds every write to a full
# pool, so without a check qemu-img waits for its operation timeout and
# QEMU's mirror without end.  On a cluster of this test's own
# (ceph_private): "full" here is the OSD's full ratio, which every client
# of a cluster sees.
#   1. full during the pre-copy (the session's bootback nbdkit held with
#      SIGSTOP until the pool is full, so qemu-img's writes come after):
#      migrate fails naming the pool as full, long before qemu-img's 60 s
#      operation timeout; the session is running on the backup, the guest
#      answers its agent, its disk is still the overlay;
#   2. full during the block copy of what the guest wrote (24 MiB at
#      1 MiB/s): the same, with the pool still full: the copy is left to
#      Ceph (aborting it would stop the VM until the pool has room), and
#      a migrate meanwhile is refused at once, naming the pool, to RBD or
#      to a file (which would end the held copy);
#   3. room again: the next migrate ends that copy and moves the VM to
#      RBD, with the guest's files.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/ceph.sh"
requires qemu-img rbd ceph

ceph_private
source "$top_srcdir/tests/lib/instant.sh"
instant_requires
instant_setup
name=bbfull-$$
cephopts=(--ceph-conf "$CEPH_CONF" --ceph-id "$CEPH_ID" --ceph-keyring "$CEPH_KEYRING")
admin () { ceph --conf "$CEPH_CONF" --name client.admin --keyring "$CEPH_ADMIN_KEYRING" "$@"; }
rbd_images () { rbd --id "$CEPH_ID" ls "$CEPH_POOL"; }
pool_flags () { admin osd dump | sed -n "s/^pool [0-9]* '$CEPH_POOL' .* flags \([^ ]*\) .*/\1/p"; }
# full 1|0: the OSD's ratios so that it is (is not) full, then wait
# until the OSD map says so
full () {
    if [ "$1" = 1 ]; then r=(0.0005 0.0006 0.001); else r=(0.85 0.90 0.95); fi
    admin osd set-nearfull-ratio "${r[0]}" >/dev/null
    admin osd set-backfillfull-ratio "${r[1]}" >/dev/null
    admin osd set-full-ratio "${r[2]}" >/dev/null
    for (( i = 0; i < 600; i++ )); do
        if grep -qw full <<< "$(pool_flags | tr , ' ')"; then [ "$1" = 1 ] && return 0
        else [ "$1" = 0 ] && return 0; fi
        sleep 0.1
    done
    fail "pool $CEPH_POOL: full=$1 not reached (flags $(pool_flags))"
}
state () { bootback sessions --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])'; }
on_backup () {     # on_backup WHAT: the VM still runs from the backup
    [ "$(state)" = running ] || fail "$1: session state $(state)"
    grep -q "overlays/tiny.vda.qcow2" <<< "$(virsh domblklist tiny)" ||
        fail "$1: the disk left the overlay"
    "$qga" --domain tiny --timeout 60 ping >/dev/null || fail "$1: the guest does not answer"
}
# migrate_full WHAT READY ENV...: a migrate that the test fills the pool under,
# once its copy runs (READY: a command that says it does); its
# stderr in $tmp/err, the seconds it took after the pool became full
migrate_full () {
    local what=$1 ready=$2 rc=0 t0
    env "${@:3}" "$BOOTBACK" migrate tiny --to "rbd:$CEPH_POOL/$name-" "${cephopts[@]}" \
        > "$tmp/out" 2> "$tmp/err" &
    mpid=$!
    for (( i = 0; i < 600; i++ )); do
        $ready && break
        kill -0 "$mpid" 2>/dev/null || { cat "$tmp/err"; fail "$what: migrate ended early"; }
        sleep 0.1
    done
    $ready || fail "$what: the copy did not start"
    full 1
    t0=$(date +%s.%N)
    wait "$mpid" || rc=$?
    took=$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" \
        "$t0" "$(date +%s.%N)")
    cat "$tmp/err"
    echo "$what: migrate exited $rc, $took s after the pool was full"
    [ "$rc" -ne 0 ] || fail "$what: migrate succeeded onto a full pool"
    grep -q "ceph pool $CEPH_POOL is full" "$tmp/err" || fail "$what: the error does not say the pool is full"
}
precopy_runs () { pgrep -f -- "^qemu-img convert -p -n .*rbd:$CEPH_POOL/$name-tiny-vda" >/dev/null; }
copy_runs () { grep -q "Block Copy" <<< "$(virsh blockjob tiny vda 2>&1)"; }

instant_import_tiny
bootback instant tiny --agent-timeout 120 > "$tmp/instant.out" || { cat "$tmp/instant.out"; fail "instant"; }
dir=$BOOTBACK_HOME/sessions/1

## 1. full during the pre-copy
backend=$(cat "$dir/vda.backend.pid")
kill -STOP "$backend"
cleanup_fn "kill -CONT $backend 2>/dev/null || true"
migrate_full "pre-copy" precopy_runs
kill -CONT "$backend"
python3 -c "import sys; sys.exit(float(sys.argv[1]) >= 45)" "$took" ||
    fail "pre-copy: the failure waited for qemu-img's operation timeout"
grep -q "copy of the backup of vda to rbd:$CEPH_POOL/$name-tiny-vda stopped" "$tmp/err" ||
    fail "pre-copy: the error does not name the disk and image"
on_backup "pre-copy"
grep -q "the image is left in the full pool" <<< "$(bootback sessions --json)" ||
    fail "pre-copy: the session's message does not say the image is left"
full 0
echo "images after the pre-copy failure: $(rbd_images | tr '\n' ' ')"

## 2. full during the block copy
"$qga" --domain tiny exec /bin/sh -c "echo before-$$ > /root/before.txt;
    dd if=/dev/urandom of=/root/big bs=1M count=24 conv=fsync 2>/dev/null; sync"
migrate_full "block copy" copy_runs BOOTBACK_MIGRATE_BANDWIDTH=1024K
grep -q "block copy to rbd:$CEPH_POOL/$name- stopped" "$tmp/err" ||
    fail "block copy: the error does not say the copy stopped"
on_backup "block copy"
grep -q "left to Ceph" <<< "$(bootback sessions --json)" ||
    fail "block copy: the session's message does not say the copy is left"
expect_rc 1 bootback migrate tiny --to "rbd:$CEPH_POOL/$name-" "${cephopts[@]}"
grep -q "ceph pool $CEPH_POOL is full" "$tmp/err" || fail "a migrate onto the held copy: wrong error"
on_backup "a migrate onto the held copy"
# nor to a file: that would end the held copy, and ending it while Ceph
# holds its writes stops the VM
mkdir -m 0700 "$tmp/files"
expect_rc 1 bootback migrate tiny --to "$tmp/files" "${cephopts[@]}"
grep -q "vda is still being copied by an earlier migrate whose writes Ceph holds: ceph pool $CEPH_POOL is full" \
    "$tmp/err" || fail "a migrate to a file over the held copy: wrong error"
on_backup "a migrate to a file over the held copy"
full 0

## 3. room again: the next migrate
bootback migrate tiny --to "rbd:$CEPH_POOL/$name-" "${cephopts[@]}" > "$tmp/migrate.out" ||
    fail "migrate with room in the pool"
[ "$(state)" = migrated ] || fail "state after the migration: $(state)"
grep -q "$CEPH_POOL/$name-tiny-vda" <<< "$(virsh domblklist tiny)" || fail "live disk not on RBD"
[ "$("$qga" --domain tiny --timeout 60 exec /bin/sh -c \
    'echo 3 > /proc/sys/vm/drop_caches; cat /root/before.txt')" = "before-$$" ] ||
    fail "the guest's file is not on RBD"
echo "images at the end: $(rbd_images | tr '\n' ' ')"
