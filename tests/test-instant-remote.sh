#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Remote instant recovery: the tiny guest's restore point, on this backup
# server, boots on a second hypervisor host (tests/lib/remote.sh: its own
# libvirtd in its own network namespace, which cannot see this test's
# files), reading the point over NBD with TLS from the session's nbdkit;
# its writes go to a volume of the host's pool "default".
#   - without certificates the start is refused, naming the file and
#     --insecure, with a server certificate that does not name the
#     address, and with a pool the host does not have, naming it; the remote domain's disk is a volume of the pool with a
#     TLS NBD backing on this server;
#   - the guest agent answers and the guest's data checks out; the export
#     is byte for byte the point's for the host's QEMU certificate from the
#     host's address; a plaintext client and one with another CA's
#     certificate are refused, and so is a certificate of the same CA
#     (another host's, the server's) from another address (review: one
#     host's QEMU certificate read another host's sessions);
#   - kill -9 of the session's bootback nbdkit while the guest re-reads its
#     data: no I/O error, every read right;
#   - kill -9 of the supervisor: sessions re-attaches, the TLS front is
#     adopted;
#   - sessions shows the host; migrate moves the disk to a volume of the
#     pool, the overlay volume and every nbdkit go, and the guest still
#     reads its data with nothing served from here;
#   - a second session with --insecure (plaintext, still the host's address
#     only) and stop --discard: no domain and no volume left.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
source "$top_srcdir/tests/lib/remote.sh"
instant_requires nbdinfo nbdcopy cmp
instant_setup
remote_host_start
instant_import_tiny
tiny_copy tiny "$tmp/want.img"
bootback host add r1 "$REMOTE_URI" >/dev/null
rv () { virsh -c "$REMOTE_TCP_URI" -q "$@"; }
rqga () { LIBVIRT_DEFAULT_URI=$REMOTE_TCP_URI "$qga" "$@"; }
json_get () { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2:]: d = d[int(k)] if k.isdigit() else d[k]
print(d)' "$@"; }

# No certificates in HOME/tls: refused, naming the file and --insecure.
expect_fail bootback instant tiny --host r1 --name tiny-r --network none 2>"$tmp/err"
grep -q "$BOOTBACK_HOME/tls/ca-cert.pem.*--insecure" "$tmp/err" ||
    { cat "$tmp/err"; fail "missing certificates not named"; }
[ -z "$(rv list --all --name)" ] || fail "a refused start left a domain"
bootback tls init --dir "$tmp/tls-nohost" --hosts localhost >/dev/null
expect_fail bootback instant tiny --host r1 --name tiny-r --network none \
    --tls-dir "$tmp/tls-nohost" 2>"$tmp/err"
grep -q "server-cert.pem does not name $REMOTE_SERVER_ADDR" "$tmp/err" ||
    { cat "$tmp/err"; fail "a server certificate without the address not named"; }
expect_fail bootback instant tiny --host r1 --name tiny-r --network none \
    --tls-dir "$REMOTE_TLS" --pool nosuch 2>"$tmp/err"
grep -q "pool nosuch: no such storage pool" "$tmp/err" ||
    { cat "$tmp/err"; fail "a missing pool not named"; }

t0=$(date +%s.%N)
bootback instant tiny --host r1 --name tiny-r --network none --tls-dir "$REMOTE_TLS" \
    --agent-timeout 300 --json > "$tmp/s.json" || fail "remote instant failed"
t1=$(date +%s.%N)
cat "$tmp/s.json"
dir=$(json_get "$tmp/s.json" dir)
port=$(json_get "$tmp/s.json" disks 0 port)
overlay=$(json_get "$tmp/s.json" disks 0 overlay)
[ "$(json_get "$tmp/s.json" listen)" = "$REMOTE_SERVER_ADDR" ] ||
    fail "nbdkit does not listen on the address of the route to the host"
[ "$(json_get "$tmp/s.json" seconds_to_heartbeat)" != None ] || fail "no agent heartbeat"
echo "remote instant: command to heartbeat $(echo "$t1 - $t0" | bc) s"
[[ $overlay == "$REMOTE_DIR/pool/tiny-r.vda.qcow2" ]] || fail "overlay $overlay not in the pool"
grep -q "tiny-r.vda.qcow2" <<< "$(rv vol-list default)" || fail "overlay is not a volume of the pool"
rv dumpxml tiny-r > "$tmp/live.xml"
grep -q "protocol='nbd' tls='yes'" "$tmp/live.xml" || fail "backing is not TLS NBD"
grep -q "<host name='$REMOTE_SERVER_ADDR' port='$port'/>" "$tmp/live.xml" ||
    fail "backing is not this server's nbdkit"
! grep -q tiny-r <<< "$(virsh -q list --all --name)" || fail "the domain runs on this host"

# The guest: agent and its data.
sum='want=$(cut -d" " -f1 /srv/bootback/data.sha256); echo 3 > /proc/sys/vm/drop_caches
     got=$(sha256sum /srv/bootback/data.bin | cut -d" " -f1); [ "$got" = "$want" ] && echo ok'
[ "$(rqga --timeout 60 --domain tiny-r exec /bin/sh -c "$sum")" = ok ] ||
    fail "the guest's data does not check out"

# The export: the point, byte for byte, for the host (its address) with
# its QEMU's client certificate; refused in plaintext and with another
# CA's certificate.
remote_exec nbdcopy "nbds://$REMOTE_SERVER_ADDR:$port?tls-certificates=$REMOTE_DIR/tls" \
    "$tmp/got.img"
cmp "$tmp/want.img" "$tmp/got.img" || fail "the export differs from the point"
rm -f "$tmp/got.img"
# The front's cipher: AES-128-GCM (its own GnuTLS configuration), not the
# AES-256-GCM the client asks for first.
remote_exec env LIBNBD_DEBUG=1 nbdinfo --size \
    "nbds://$REMOTE_SERVER_ADDR:$port?tls-certificates=$REMOTE_DIR/tls" 2>"$tmp/dbg" >/dev/null
grep -o "using TLS: cipher [^ ]*" "$tmp/dbg" | tee "$tmp/cipher"
grep -q "cipher AES-128-GCM" "$tmp/cipher" || fail "the front's TLS cipher is not AES-128-GCM"
front_log=$dir/nbdkit-vda-front.log
# (nbdkit answers NBD_REP_ERR_TLS_REQD, which libnbd words as ENOTSUP)
expect_fail remote_exec nbdinfo "nbd://$REMOTE_SERVER_ADDR:$port" 2>"$tmp/err"
grep -q "server replied with error to opt_go" "$tmp/err" ||
    { cat "$tmp/err"; fail "plaintext: not refused by nbdkit"; }
# Another host of the same CA (here: this server's address, with the QEMU
# client certificate of a host hvA, and with this server's own): the CA
# signs every host's certificates, so the front serves only the target
# host's address.
bootback tls host hvA 127.0.0.2 --dir "$REMOTE_TLS" --out "$tmp/hostA" >/dev/null
for c in "$tmp/hostA" "$REMOTE_TLS"; do
    rc=0
    timeout 5 nbdcopy "nbds://$REMOTE_SERVER_ADDR:$port?tls-certificates=$c" - \
        2>"$tmp/err" > "$tmp/got.img" || rc=$?
    [ $rc -ne 0 ] && [ ! -s "$tmp/got.img" ] ||
        fail "a CA-signed certificate ($c) from another address read the export"
done
# A client that trusts the server (the CA's certificate) but holds a
# client certificate of another CA, or none: nbdkit refuses it.
bootback tls init --dir "$tmp/other-ca" --hosts "$REMOTE_SERVER_ADDR" >/dev/null
for c in other none; do
    mkdir -m 0700 "$tmp/client-$c"
    cp "$REMOTE_TLS/ca-cert.pem" "$tmp/client-$c/"
    [ $c = none ] || cp "$tmp/other-ca/client-cert.pem" "$tmp/other-ca/client-key.pem" \
                        "$tmp/client-$c/"
    n0=$(wc -l < "$front_log")
    expect_fail remote_exec nbdinfo \
        "nbds://$REMOTE_SERVER_ADDR:$port?tls-certificates=$tmp/client-$c" 2>"$tmp/err"
    cat "$tmp/err"
    tail -n +"$((n0 + 1))" "$front_log" | tee "$tmp/flog"
    grep -qiE "certificate|verif" "$tmp/flog" ||
        fail "client certificate $c: not refused by nbdkit's peer verification"
done
grep -q "tls-verify-peer" <<< "$(tr '\0' ' ' < "/proc/$(cat "$dir/vda.front.pid")/cmdline")" ||
    fail "the front does not verify its clients"

# kill -9 the bootback nbdkit while the guest re-reads its data.
rqga --domain tiny-r exec /bin/sh -c \
    "(n=0; while [ \$n -lt 30 ]; do $sum >> /root/loop.log || echo BAD >> /root/loop.log
      n=\$((n + 1)); sleep 0.3; done; echo done >> /root/loop.log) </dev/null >/dev/null 2>&1 &"
sleep 2
b1=$(cat "$dir/vda.backend.pid")
kill -9 "$b1"
for (( i = 0; i < 100; i++ )); do
    b2=$(cat "$dir/vda.backend.pid" 2>/dev/null || echo "$b1")
    [ "$b2" != "$b1" ] && kill -0 "$b2" 2>/dev/null && break
    sleep 0.1
done
[ "$b2" != "$b1" ] || fail "the supervisor did not restart the killed nbdkit"
for (( i = 0; i < 200; i++ )); do
    grep -q done <<< "$(rqga --domain tiny-r cat /root/loop.log 2>/dev/null)" && break
    sleep 0.3
done
rqga --domain tiny-r cat /root/loop.log > "$tmp/loop.log"
grep -q done "$tmp/loop.log" || fail "the guest's read loop did not finish"
[ "$(grep -c '^ok$' "$tmp/loop.log")" -eq 30 ] || fail "guest reads failed: $(cat "$tmp/loop.log")"
rqga --domain tiny-r exec /bin/dmesg > "$tmp/dmesg"
! grep -iE "I/O error|blk_update_request|Buffer I/O|EXT4-fs (error|warning)" "$tmp/dmesg" ||
    fail "the guest saw I/O errors"
echo "nbdkit $b1 killed, $b2 serves; the guest read on"

# kill -9 the supervisor: sessions re-attaches one, which adopts the
# nbdkits still serving (the TLS front keeps QEMU's connection).
s1=$(cat "$dir/supervisor.pid")
front=$(cat "$dir/vda.front.pid")
kill -9 "$s1"
wait_dead "$s1" || fail "the supervisor $s1 outlived kill -9"
bootback sessions 2>"$tmp/err" >/dev/null
grep -q "re-attached 1 session" "$tmp/err" || { cat "$tmp/err"; fail "no re-attach"; }
[ "$(cat "$dir/vda.front.pid")" = "$front" ] || fail "the new supervisor did not adopt the TLS front"
grep -q "adopted nbdkit $front" "$dir/supervisor.log" || fail "front not adopted"
[ "$(rqga --timeout 60 --domain tiny-r exec /bin/sh -c "$sum")" = ok ] ||
    fail "the guest does not read its data after the re-attach"

bootback sessions | tee "$tmp/list"
grep -q "tiny-r .* running .*VM running on $REMOTE_URI, supervised" "$tmp/list" ||
    fail "sessions does not show the host"

# migrate to a pool the host does not have: refused, the VM runs on.
expect_fail bootback migrate tiny-r --pool nosuch 2>"$tmp/err"
grep -q "pool nosuch" "$tmp/err" || { cat "$tmp/err"; fail "migrate: missing pool not named"; }
# --to (a path of this host) is refused for a session on another host,
# not ignored for its pool.
expect_fail bootback migrate tiny-r --to "$tmp/here.qcow2" 2>"$tmp/err"
grep -q "runs on another host" "$tmp/err" || { cat "$tmp/err"; fail "migrate --to: remote not refused"; }
[ ! -e "$tmp/here.qcow2" ] || fail "migrate --to wrote here"
grep -q '"state": "running"' <<< "$(bootback sessions --json)" || fail "not running after"
# migrate: to a volume of the host's pool; nothing served from here after.
bootback migrate tiny-r | tee "$tmp/migrate"
grep -q "disk vda: $REMOTE_DIR/pool/tiny-r-vda.qcow2" "$tmp/migrate" || fail "migrate target"
rv vol-list default > "$tmp/vols"
grep -qF "tiny-r-vda.qcow2" "$tmp/vols" || fail "the migrated disk is not a volume"
! grep -qF "tiny-r.vda.qcow2" "$tmp/vols" || fail "the overlay volume stayed"
! pgrep -f -- "^nbdkit .*$BOOTBACK_HOME/sessions/" || fail "nbdkit still serves"
! grep -q "protocol='nbd'" <<< "$(rv dumpxml tiny-r --inactive)" ||
    fail "the definition still reads the backup"
[ "$(rqga --timeout 60 --domain tiny-r exec /bin/sh -c "$sum")" = ok ] ||
    fail "the guest does not read its data after migrate"
grep -q '"state": "migrated"' <<< "$(bootback sessions --json)"
rv destroy tiny-r >/dev/null

# --insecure: plaintext; stop --discard leaves nothing on the host.
bootback instant tiny --host r1 --name tiny-d --network none --insecure \
    --agent-timeout 0 --json > "$tmp/d.json"
port=$(json_get "$tmp/d.json" disks 0 port)
grep -q "tls='no'" <<< "$(rv dumpxml tiny-d)" || fail "--insecure: backing not plaintext"
remote_exec nbdinfo --size "nbd://$REMOTE_SERVER_ADDR:$port" >/dev/null ||
    fail "--insecure: plaintext refused"
expect_fail timeout 5 nbdinfo --size "nbd://$REMOTE_SERVER_ADDR:$port" 2>/dev/null
# stop --host: a name that is not a host is refused, naming it; the
# session's host by its name
expect_rc 1 bootback instant stop tiny-d --discard --host nosuch
grep -q -- "--host nosuch: no such host" "$tmp/err" || fail "stop --host nosuch: not named"
grep -q "tiny-d" <<< "$(rv list --all --name)" || fail "a refused stop --host removed the domain"
bootback instant stop tiny-d --discard --host r1
! grep -q "tiny-d" <<< "$(rv vol-list default)" || fail "stop --discard left a volume"
! grep -q "tiny-d" <<< "$(rv list --all --name)" || fail "stop --discard left the domain"
! pgrep -f -- "^nbdkit .*$BOOTBACK_HOME/sessions/" || fail "processes left"
echo "remote instant ok"
