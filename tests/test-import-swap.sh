#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# import reads the very file it probed: an image path (here a symbolic
# link, as LVM's /dev/VG/LV are) that someone who can write its directory
# points elsewhere after the probe does not bring another file in.  The
# swap is made deterministic by wrappers of qemu-img and qemu-nbd first in
# PATH:
#   - a raw image swapped right after its qemu-img info (bootback then
#     reads raw files itself): before, bootback opened the new target by
#     name and a host file holding a secret went into the point;
#   - a qcow2 swapped right before qemu-nbd starts (after the probe just
#     before it): before, qemu-nbd opened by name a qcow2 whose backing
#     file is that host file.
# Now the image is opened once, before its probe, and QEMU is given that
# open file (/proc/self/fd/N); the point holds what was probed.
#   - a qcow2 rewritten in place right before qemu-nbd starts (a backing
#     file added by someone who can write the image itself): refused, as
#     qemu-nbd then holds another file open;
#   - the same with a backing file on the network (nbd://127.0.0.1:PORT,
#     a host file served on loopback) or on a unix socket
#     (nbd+unix:///?socket=PATH): refused, as qemu-nbd then holds a
#     connection other than its export's.
source "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-nbd cmp

bootback repo init "$tmp/repo" >/dev/null
export BOOTBACK_REPO=$tmp/repo

host_secret_images
head -c 1M /dev/urandom >"$tmp/good.raw"
qemu-img convert -f raw -O qcow2 "$tmp/good.raw" "$tmp/good.qcow2"

# wrappers: after the real qemu-img info of the image, or before the real
# qemu-nbd, point $tmp/img at $tmp/swap-to (if set up)
mkdir "$tmp/bin"
for p in qemu-img qemu-nbd; do
    real=$(command -v $p)
    if [ $p = qemu-img ]; then
        printf '#!/bin/sh\n"%s" "$@"; rc=$?\n' "$real"
        printf '[ "$1" = info ] && [ -e "%s" ] && ln -sfn "$(cat "%s")" "%s"\n' \
            "$tmp/swap-after-info" "$tmp/swap-after-info" "$tmp/img"
        printf 'exit $rc\n'
    else
        printf '#!/bin/sh\n[ -e "%s" ] && ln -sfn "$(cat "%s")" "%s"\n' \
            "$tmp/swap-before-nbd" "$tmp/swap-before-nbd" "$tmp/img"
        printf '[ -e "%s" ] && cat "$(cat "%s")" >"%s"\n' \
            "$tmp/rewrite-before-nbd" "$tmp/rewrite-before-nbd" "$tmp/img"
        printf 'exec "%s" "$@"\n' "$real"
    fi > "$tmp/bin/$p"
    chmod +x "$tmp/bin/$p"
done
export PATH="$tmp/bin:$PATH"

restore_cmp () {   # VM EXPECTED: the point's vda equals EXPECTED byte for byte
    rm -f "$tmp/out.raw"
    bootback restore "$1@latest" --to "$tmp/out.raw" >/dev/null || fail "restore $1"
    ! grep -q BOOTBACK-HOST-SECRET "$tmp/out.raw" || fail "$1: the host file is in the point"
    cmp "$tmp/out.raw" "$2" || fail "$1: the point differs from $2"
}

## raw, swapped after its probe
ln -sfn "$tmp/good.raw" "$tmp/img"
echo "$tmp/secret" > "$tmp/swap-after-info"
bootback import "$tmp/img" --vm r >/dev/null 2>"$tmp/err" || fail "raw: $(cat "$tmp/err")"
[ "$(readlink "$tmp/img")" = "$tmp/secret" ] || fail "the wrapper did not swap the link"
rm "$tmp/swap-after-info"
restore_cmp r "$tmp/good.raw"

## qcow2, swapped right before qemu-nbd opens it
ln -sfn "$tmp/good.qcow2" "$tmp/img"
echo "$tmp/evil.qcow2" > "$tmp/swap-before-nbd"
rc=0
bootback import "$tmp/img" --vm q >/dev/null 2>"$tmp/err" || rc=$?
cat "$tmp/err"
[ "$(readlink "$tmp/img")" = "$tmp/evil.qcow2" ] || fail "the wrapper did not swap the link"
rm "$tmp/swap-before-nbd"
[ "$rc" -eq 0 ] || fail "qcow2: exit $rc"
restore_cmp q "$tmp/good.raw"

## qcow2 rewritten in place (the same file, someone who can write it)
## right before qemu-nbd opens it, after the probe just before: the
## header now names the host file as its backing file.  Pinning the file
## cannot help; qemu-nbd is seen to hold only the image open.  Before,
## qemu-nbd opened the backing file and it went into the point.
# rewritten VM EVIL ERROR: import a copy of good.qcow2 that the qemu-nbd
# wrapper rewrites in place with EVIL right before the real qemu-nbd; the
# import must be refused with ERROR, and had it gone through, the point
# must not hold the host secret
rewritten () {
    cp "$tmp/good.qcow2" "$tmp/victim-$1.qcow2"
    ln -sfn "$tmp/victim-$1.qcow2" "$tmp/img"
    echo "$2" > "$tmp/rewrite-before-nbd"
    rc=0
    bootback import "$tmp/img" --vm "$1" >/dev/null 2>"$tmp/err" || rc=$?
    cat "$tmp/err"
    rm "$tmp/rewrite-before-nbd"
    cmp -s "$tmp/victim-$1.qcow2" "$2" || fail "the wrapper did not rewrite the image"
    if [ "$rc" -eq 0 ]; then
        rm -f "$tmp/out.raw"
        bootback restore "$1@latest" --to "$tmp/out.raw" >/dev/null || fail "restore $1"
        ! grep -q BOOTBACK-HOST-SECRET "$tmp/out.raw" || fail "$1: the host secret is in the point"
        fail "$1: an image whose header changed under qemu-nbd was imported"
    fi
    grep -q "$3" "$tmp/err" || fail "$1: unexpected error: $(cat "$tmp/err")"
}
rewritten w "$tmp/evil.qcow2" "changed while importing"

## the same with a backing file on the network (nbd://, one of QEMU's
## protocol drivers): the host file served by an NBD server on loopback.
## Before, qemu-nbd connected to it and the point held its bytes.
requires nbdkit
port=$(( 20000 + $$ % 10000 ))
nbdkit -f -i 127.0.0.1 -p "$port" -P "$tmp/nbdkit.pid" file "$tmp/secret" &
nbdkit_pid=$!
cleanup_fn kill "$nbdkit_pid"
for _ in $(seq 100); do [ -s "$tmp/nbdkit.pid" ] && break; sleep 0.1; done
[ -s "$tmp/nbdkit.pid" ] || fail "nbdkit did not start on port $port"
qemu-img create -q -f qcow2 -F raw -u -b "nbd://127.0.0.1:$port" "$tmp/evilnet.qcow2" 1M
rewritten n "$tmp/evilnet.qcow2" "changed while importing: QEMU opened a connection"

## and on a unix socket (nbd+unix://): a host's NBD server, say another
## session's restore point.  The export's own sockets show its path in
## /proc/PID/net/unix; a connection to another server is bound to none.
nbdkit -f -U "$tmp/sec.sock" -P "$tmp/nbdkit-u.pid" file "$tmp/secret" &
cleanup_fn kill "$!"
for _ in $(seq 100); do [ -s "$tmp/nbdkit-u.pid" ] && break; sleep 0.1; done
[ -s "$tmp/nbdkit-u.pid" ] || fail "nbdkit did not start on $tmp/sec.sock"
qemu-img create -q -f qcow2 -F raw -u -b "nbd+unix:///?socket=$tmp/sec.sock" "$tmp/evilunix.qcow2" 1M
rewritten u "$tmp/evilunix.qcow2" "changed while importing: QEMU opened a connection"

echo ok
