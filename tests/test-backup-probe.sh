#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bootback backup of a shut-off domain (private libvirtd; the domain is
# never started) reads each disk in the format its domain XML gives, never
# the one QEMU would guess from what the guest wrote:
#   - vda, raw, begins with a qcow2 header whose backing file is a host
#     file holding a secret (a guest can write that on its own disk): the
#     point equals the raw disk byte for byte, no host byte in it;
#   - vdb, the same defined without <driver type> (libvirt writes raw into
#     the definition; bootback's parser assumes raw too, test-backup-xml);
#   - vdc, a qcow2 overlay whose header records its backing format: read
#     through its backing file as before;
#   - a qcow2 whose header names a backing file but not its format: the
#     backup is refused, naming the image and the backing file.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/libvirtd.sh"
requires virsh qemu-img qemu-nbd python3 cmp
# a private copy: a rebuild of the tree while the test runs cannot swap it
cp "$BOOTBACK" "$tmp/bootback" && BOOTBACK=$tmp/bootback
dom=bbp-$$

libvirtd_start

# the host file a guest must never get into a point
seq 50000 | sed 's/^/BOOTBACK-HOST-SECRET-/' >"$tmp/secret"
truncate -s 1M "$tmp/secret"
qemu-img create -q -f qcow2 -F raw -b "$tmp/secret" "$tmp/evil.qcow2"
evil_disk () {   # FILE SIZE: a raw disk that begins with evil.qcow2's header
    cp "$tmp/evil.qcow2" "$1"
    truncate -s "$2" "$1"
    head -c 1M /dev/urandom | dd of="$1" bs=1M seek=1 conv=notrunc status=none
}
evil_disk "$tmp/vda.raw" 4M
evil_disk "$tmp/vdb.img" 2M
[ "$(qemu-img info --output=json "$tmp/vda.raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])')" = qcow2 ] ||
    fail "the raw disk does not look like a qcow2 to QEMU's probe"
head -c 2M /dev/urandom >"$tmp/base.raw"
qemu-img create -q -f qcow2 -F raw -b "$tmp/base.raw" "$tmp/vdc.qcow2"

"$top_srcdir/images/domain-xml" NAME=$dom DISK_PATH="$tmp/vda.raw" DISK_FORMAT=raw \
    NET_TYPE=none >"$tmp/vm.xml"
"$top_srcdir/tests/lib/add-disk" "$tmp/vm.xml" vdb "$tmp/vdb.img"
"$top_srcdir/tests/lib/add-disk" "$tmp/vm.xml" vdc "$tmp/vdc.qcow2" qcow2
virsh -q define "$tmp/vm.xml" >/dev/null
echo "vdb as libvirt keeps it:"
virsh dumpxml --inactive "$dom" | grep -B1 -A3 "vdb.img"

bootback repo init "$tmp/repo" >/dev/null
bootback backup "$dom" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "backup of the shut-off domain"; }
cat "$tmp/out"
grep -q "is shut off: reading its disk images directly" "$tmp/out" || fail "shut-off note"
id=$(latest_id "$dom")
check () {   # DISK EXPECTED: the point's DISK equals EXPECTED byte for byte
    rm -f "$tmp/check.raw"
    bootback restore "$dom@$id" --disk "$1" --to "$tmp/check.raw" >/dev/null || fail "restore $1"
    if grep -q BOOTBACK-HOST-SECRET "$tmp/check.raw"; then
        fail "$1: the point holds the host file's bytes (the disk's format was guessed)"
    fi
    cmp "$tmp/check.raw" "$2" || fail "$1: the point differs from the disk $2"
}
check vda "$tmp/vda.raw"
check vdb "$tmp/vdb.img"
check vdc "$tmp/base.raw"
bootback point show "$dom@$id" --json | python3 -c '
import json, sys
d = {x["name"]: x["format"] for x in json.load(sys.stdin)["disks"]}
assert d == {"vda": "raw", "vdb": "raw", "vdc": "qcow2"}, d' || fail "formats of the point's disks"

# --- a qcow2 whose backing format is not recorded: QEMU would guess it
cp "$tmp/vdc.qcow2" "$tmp/nofmt.qcow2"
python3 - "$tmp/nofmt.qcow2" <<'PY'
import sys
# qcow2 header extension "backing file format" (magic 0xe2792aca): give it
# an unknown magic, which QEMU ignores, so the format is not recorded
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.index(bytes.fromhex("e2792aca"), 72, 4096)
b[i:i + 4] = bytes.fromhex("0badf00d")
open(p, "wb").write(b)
PY
qemu-img info --output=json "$tmp/nofmt.qcow2" | grep -q backing-filename-format &&
    fail "could not remove the backing format from the test image"
sed -e "s|$tmp/vdc.qcow2|$tmp/nofmt.qcow2|" -e "s|<name>$dom</name>|<name>$dom-n</name>|" \
    -e "/<uuid>/d" "$tmp/vm.xml" >"$tmp/vm-n.xml"
virsh -q define "$tmp/vm-n.xml" >/dev/null
expect_fail bootback backup "$dom-n" >"$tmp/out" 2>&1
cat "$tmp/out"
grep -qF "$dom-n: disk vdc: $tmp/nofmt.qcow2 has a backing file $tmp/base.raw but does not record its format; refusing to let QEMU guess it" "$tmp/out" ||
    fail "a backing file of unrecorded format was not refused by name"
[ "$(bootback points "$dom-n" --json)" = "[]" ] || fail "a refused backup left a point"
bootback repo check >/dev/null || fail "repo check"
echo ok
