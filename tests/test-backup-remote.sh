#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bootback backup of a domain that runs on another host (tests/lib/
# remote.sh: a private libvirtd in its own network namespace, reached
# over qemu+tls://, which cannot see this test's files): the backup job's
# NBD server listens on the remote's address with TLS, and bootback reads
# it from here with the client certificate of `bootback tls init`.
#   1. full backup through `host add` / --host: application-consistent
#      (the guest agent across hosts), over TLS, a checkpoint on the remote;
#   2. the guest writes 1 MiB of random data on vdb; incremental backup
#      reads about that;
#   3. killed mid-read: the job left on the remote refuses a plaintext
#      client and serves a TLS one; the next backup ends it, and is an
#      incremental from the last stored point; the network to the remote
#      cut mid-read: a clean error naming its address, no point, the
#      checkpoint kept, and the next backup an incremental of the last;
#   4. a port in use on the remote is skipped; a range with no free port
#      is an error saying so;
#   5. refusals, each leaving no job and no new checkpoint: certificates
#      of another CA (the error names TLS), a missing client certificate,
#      an unreachable libvirtd (named), a shut-off remote domain;
#      --insecure reads in plaintext, and says so;
#   6. the domain paused, a last point, then QEMU stopped: each disk of
#      that point restored equals the remote's image, byte for byte; no
#      scratch file is left (--scratch-dir there, or its /var/tmp).
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/backup.sh"
source "$top_srcdir/tests/lib/remote.sh"
requires virsh qemu-img python3 cmp nbdinfo

cp "$BOOTBACK" "$tmp/bootback" && BOOTBACK=$tmp/bootback
images_tiny
remote_host_start
export BOOTBACK_DOMAIN_TYPE=qemu
dom=brm-$$
pool=$REMOTE_DIR/pool
qemu-img convert -O qcow2 "$TINY_IMG" "$pool/vda.qcow2"
truncate -s 64M "$tmp/vdb.raw"
head -c 8M /dev/urandom | dd of="$tmp/vdb.raw" conv=notrunc status=none
qemu-img convert -O qcow2 "$tmp/vdb.raw" "$pool/vdb.qcow2"
"$top_srcdir/images/domain-xml" NAME="$dom" DISK_PATH="$pool/vda.qcow2" DISK_FORMAT=qcow2 \
    NET_TYPE=none SERIAL_LOG="$REMOTE_DIR/vm.serial" >"$tmp/vm.xml"
"$top_srcdir/tests/lib/add-disk" "$tmp/vm.xml" vdb "$pool/vdb.qcow2" qcow2
rvirsh () { virsh -c "$REMOTE_URI" -q "$@"; }
rqga () { LIBVIRT_DEFAULT_URI=$REMOTE_URI "$qga" --domain "$dom" "$@"; }
rvirsh define "$tmp/vm.xml" >/dev/null
rvirsh start "$dom" >/dev/null
rqga --timeout 120 ping >/dev/null || { cat "$REMOTE_DIR/vm.serial"; fail "no agent"; }
json_get () { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))[0]; print(eval("d"+sys.argv[2]))' "$@"; }
no_job () {
    if rvirsh backup-dumpxml "$dom" >/dev/null 2>&1; then fail "$1: a backup job is left on the remote"; fi
}
checkpoints () { rvirsh checkpoint-list "$dom" --name | grep -c . || true; }

bootback repo init "$tmp/repo" >/dev/null
bootback host add r1 "$REMOTE_URI" >/dev/null   # pkipath=$REMOTE_TLS: the client certificates

## 1. full
expect_rc 1 bootback backup "$dom"              # the default libvirt does not have it
mkdir "$REMOTE_DIR/scratch"
bootback backup "$dom" --host r1 --scratch-dir "$REMOTE_DIR/scratch" >"$tmp/b1.out" || { cat "$tmp/b1.out"; remote_log | tail -20; fail "full backup"; }
cat "$tmp/b1.out"
grep -q "full, application-consistent" "$tmp/b1.out" || fail "remote full backup not application-consistent"
grep -q "reading the disks over NBD with TLS from $REMOTE_ADDR:[0-9]*$" "$tmp/b1.out" || fail "no TLS note"
[ "$(checkpoints)" = 1 ] || fail "expected one checkpoint on the remote"
no_job "after the full backup"
[ -z "$(ls "$REMOTE_DIR/scratch")" ] || fail "scratch files left on the remote: $(ls "$REMOTE_DIR/scratch")"

## 2. incremental
head -c 1M /dev/urandom >"$tmp/blob"
rqga write /run/blob <"$tmp/blob"
rqga exec /bin/sh -c 'dd if=/run/blob of=/dev/vdb bs=64k seek=256 oflag=direct 2>/dev/null && sync' ||
    fail "guest write"
bootback backup "$dom" --host r1 --json >"$tmp/b2.json" 2>"$tmp/b2.err" ||
    { cat "$tmp/b2.err"; fail "incremental"; }
cat "$tmp/b2.err"
[ "$(json_get "$tmp/b2.json" '["kind"]')" = incremental ] || fail "second remote backup is not incremental"
read_b=$(json_get "$tmp/b2.json" '["bytes_read"]')
total=$(json_get "$tmp/b2.json" '["size"]')
echo "incremental read $read_b of $total bytes"
[ "$read_b" -ge 1048576 ] && [ "$read_b" -lt $(( total / 10 )) ] ||
    fail "incremental read $read_b bytes of $total: expected about the 1 MiB written"
cp "$tmp/vdb.raw" "$tmp/vdb.expected"
dd if="$tmp/blob" of="$tmp/vdb.expected" bs=64k seek=256 conv=notrunc status=none
bootback restore "$dom@latest" --disk vdb --to "$tmp/p2-vdb.raw" >/dev/null
cmp "$tmp/p2-vdb.raw" "$tmp/vdb.expected" || fail "the incremental point's vdb differs from what the guest wrote"
[ "$(checkpoints)" = 1 ] || fail "the old checkpoint was not removed on the remote"

## 3. killed mid-read: the job left there is TLS only, and ended by the next run
p2=$(latest_id "$dom")
expect_fail env BOOTBACK_BACKUP_TEST=kill-reading "$BOOTBACK" backup "$dom" --host r1 >/dev/null 2>&1
rvirsh backup-dumpxml "$dom" >"$tmp/job.xml" || fail "no job left by the killed backup"
port=$(python3 -c 'import sys, xml.etree.ElementTree as E
s = E.parse(sys.argv[1]).getroot().find("server")
assert s.get("transport") == "tcp" and s.get("tls") == "yes", s.attrib
print(s.get("port"))' "$tmp/job.xml") || fail "the job is not TCP with TLS: $(cat "$tmp/job.xml")"
if nbdinfo --list "nbd://$REMOTE_ADDR:$port" >"$tmp/plain.out" 2>&1; then
    fail "the remote's NBD server served a plaintext client"
fi
nbdinfo --list "nbds://$REMOTE_ADDR:$port?tls-certificates=$REMOTE_TLS" >"$tmp/tls.out" 2>&1 ||
    { cat "$tmp/tls.out"; fail "a TLS client with the certificates cannot list the exports"; }
grep -q "export=\"bootback-backup-[0-9]*-.*-vda\"" "$tmp/tls.out" || fail "exports: $(cat "$tmp/tls.out")"
bootback backup "$dom" --host r1 --json >"$tmp/b3.json" 2>"$tmp/b3.err" ||
    { cat "$tmp/b3.err"; fail "backup after a killed one"; }
cat "$tmp/b3.err"
grep -q "ended the backup job left by an interrupted bootback" "$tmp/b3.err" || fail "stale job not ended"
[ "$(json_get "$tmp/b3.json" '["kind"]') $(json_get "$tmp/b3.json" '["parent"]')" = "incremental $p2" ] ||
    fail "the point after the killed backup is not an incremental of $p2"
[ "$(checkpoints)" = 1 ] || fail "checkpoints left after the killed backup: $(checkpoints)"

## 3b. the remote unreachable mid-read: a clean error, no point, the
## checkpoint not advanced, and the next backup an incremental of the last
p3=$(latest_id "$dom")
cp3=$(rvirsh checkpoint-list "$dom" --name | tr -d ' \n')
BOOTBACK_BACKUP_TEST=stall-reading "$BOOTBACK" backup "$dom" --host r1 --no-quiesce \
    >"$tmp/cut.out" 2>"$tmp/cut.err" &
cut_pid=$!
for (( i = 0; i < 600; i++ )); do
    grep -q "test: stalling" "$tmp/cut.out" && break
    sleep 0.1
done
remote_link down
t0=$(date +%s)
if wait "$cut_pid"; then remote_link up; fail "the backup succeeded with the remote unreachable"; fi
remote_link up
cat "$tmp/cut.out" "$tmp/cut.err"
echo "failed $(( $(date +%s) - t0 )) s after the remote became unreachable"
grep -q "NBD export at $REMOTE_ADDR:[0-9]*" "$tmp/cut.err" || fail "the error does not name the remote's NBD export"
[ "$(latest_id "$dom")" = "$p3" ] || fail "a point was stored by the cut backup"
for (( i = 0; i < 100; i++ )); do rvirsh version >/dev/null 2>&1 && break; sleep 0.2; done
cps=$(rvirsh checkpoint-list "$dom" --name)
grep -q "$cp3" <<< "$cps" || fail "the last point's checkpoint $cp3 is gone: $cps"
bootback backup "$dom" --host r1 --json >"$tmp/b3b.json" 2>"$tmp/b3b.err" ||
    { cat "$tmp/b3b.err"; fail "backup after the cut"; }
cat "$tmp/b3b.err"
[ "$(json_get "$tmp/b3b.json" '["kind"]') $(json_get "$tmp/b3b.json" '["parent"]')" = "incremental $p3" ] ||
    fail "the backup after the cut is not an incremental of $p3"
[ "$(checkpoints)" = 1 ] || fail "checkpoints after the cut: $(checkpoints)"

## 4. ports: one in use is skipped, none free is an error
busy=$(( 20000 + $$ % 20000 ))
# the port is held once the listener says so (a fixed sleep was too short
# on a loaded machine: the backup then took the port itself)
remote_exec python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()
open(sys.argv[3], "w").close(); time.sleep(600)' "$REMOTE_ADDR" "$busy" "$tmp/busy.ready" &
busy_pid=$!
cleanup_fn kill "$busy_pid"
for _ in $(seq 300); do
    [ -e "$tmp/busy.ready" ] && break
    kill -0 "$busy_pid" 2>/dev/null || fail "could not hold port $busy on the remote host"
    sleep 0.1
done
[ -e "$tmp/busy.ready" ] || fail "the listener on port $busy did not start in 30 s"
expect_rc 1 bootback backup "$dom" --host r1 --nbd-ports "$busy-$busy"
grep -q "no free port .*tried 1 of $busy-$busy" "$tmp/err" || fail "no free port: wrong error"
no_job "no free port"
BOOTBACK_NBD_PORTS=$busy-$(( busy + 1 )) bootback backup "$dom" --host r1 >"$tmp/b4.out" ||
    { cat "$tmp/b4.out"; fail "backup with a port in use"; }
grep -q "from $REMOTE_ADDR:$(( busy + 1 ))$" "$tmp/b4.out" || fail "the port in use was not skipped: $(cat "$tmp/b4.out")"

## 5. refusals
ncp=$(checkpoints)
bootback tls init --dir "$tmp/other" --hosts localhost >/dev/null
expect_rc 1 bootback backup "$dom" --host r1 --tls-dir "$tmp/other"
grep -q "over TLS" "$tmp/err" || fail "another CA: the error does not name TLS"
no_job "another CA"
[ "$(checkpoints)" = "$ncp" ] || fail "a refused backup left a checkpoint"
mkdir -m 0700 "$tmp/nocert"
cp "$REMOTE_TLS/ca-cert.pem" "$tmp/nocert/"
expect_rc 1 bootback backup "$dom" --host r1 --tls-dir "$tmp/nocert"
grep -q "TLS: $tmp/nocert/client-cert.pem: No such file" "$tmp/err" || fail "missing client certificate: wrong error"
no_job "missing client certificate"
dead="qemu+tcp://$REMOTE_ADDR:1/system"
expect_rc 1 bootback backup "$dom" --connect "$dead"
grep -q "cannot connect to libvirt ($dead)" "$tmp/err" || fail "unreachable libvirtd not named"
bootback backup "$dom" --connect "$REMOTE_TCP_URI" --tls-dir "$REMOTE_TLS" --insecure >"$tmp/b5.out" ||
    { cat "$tmp/b5.out"; fail "--insecure"; }
grep -q "over NBD in plaintext (--insecure) from $REMOTE_ADDR:" "$tmp/b5.out" || fail "no plaintext note"
[ "$(checkpoints)" = "$ncp" ] || fail "checkpoints: $(checkpoints), expected $ncp"
rvirsh define /dev/stdin >/dev/null <<EOF
$(sed -e "s|<name>$dom</name>|<name>$dom-off</name>|" -e '/<uuid>/d' "$tmp/vm.xml")
EOF
expect_rc 1 bootback backup "$dom-off" --host r1
grep -q "$dom-off on $REMOTE_ADDR is shut off" "$tmp/err" || fail "shut-off remote domain: wrong error"

## 6. paused, a last point, QEMU stopped: the point is the remote's images
rvirsh suspend "$dom" >/dev/null
# Its scratch files go to the host's /var/tmp, where anyone may plant a
# file or link at a name they can guess (the point id is the time): libvirt
# then refused the backup ("store ... exists").  The names are not
# guessable: links planted at every id of the next two minutes block
# nothing, and the file they point at stays as it was.
echo "a file of the remote host" >"$tmp/victim"
now=$(date -u +%s)
planted=()
for (( t = now; t < now + 120; t++ )); do
    id=$(date -u -d "@$t" +%Y%m%dT%H%M%SZ)
    planted+=("/var/tmp/bootback-$id-vda.scratch.qcow2" "/var/tmp/bootback-$id-vdb.scratch.qcow2")
done
unplant () { rm -f "${planted[@]}"; }
cleanup_fn unplant
for f in "${planted[@]}"; do ln -sfn "$tmp/victim" "$f"; done
bootback backup "$dom" --host r1 --json >"$tmp/b6.json" 2>"$tmp/b6.err" || { cat "$tmp/b6.err"; fail "paused"; }
unplant
[ "$(cat "$tmp/victim")" = "a file of the remote host" ] ||
    fail "the backup wrote its scratch file through a link planted in /var/tmp"
p6=$(latest_id "$dom")
rvirsh destroy "$dom" --graceful >/dev/null
for d in vda vdb; do
    bootback restore "$dom@$p6" --disk $d --to "$tmp/p6-$d.raw" >/dev/null
    qemu-img convert -O raw "$pool/$d.qcow2" "$tmp/remote-$d.raw"
    cmp "$tmp/p6-$d.raw" "$tmp/remote-$d.raw" || fail "$d of the last point differs from the remote's image"
done
[ "$(ls "$pool" | sort | tr '\n' ' ')" = "vda.qcow2 vdb.qcow2 " ] ||
    fail "files left in the remote's pool: $(ls "$pool")"
if grep -q "^bootback-$p6-" <<< "$(ls /var/tmp)"; then fail "scratch files left in /var/tmp"; fi
bootback repo verify >/dev/null || fail "repo verify"
echo ok
