#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A qcow2 overlay whose backing file is the export (what instant recovery
# boots from): qemu-io reads the backup through it, writes land in the
# overlay only, and the export is unchanged.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires qemu-img qemu-io numfmt

cd "$tmp"
make_image a.img $((8 * 1048576 + 4096)) "0:1M:17 2M:1M:34 5M:64K:51 8M:4096:68"
bb_repo_init repo 1M
bb_import repo vm 20260101T000000Z vda=a.img >/dev/null
bb_nbdkit_start "$plugin" repo=repo point=vm

qemu-img create -q -f qcow2 -F raw -b "$uri" overlay.qcow2
qemu-img info overlay.qcow2 | grep -q "virtual size: .*($(stat -c %s a.img) bytes)" ||
    fail "overlay size"

# Reads through the overlay see the backup.
qemu-io -f qcow2 overlay.qcow2 \
    -c 'read -P 17 0 1M' -c 'read -P 0 1M 1M' -c 'read -P 34 2M 1M' \
    -c 'read -P 51 5M 64K' -c 'read -P 68 8M 4096' -c 'read -P 0 6M 2M' \
    >io.out || fail "qemu-io reads"
! grep -q -i 'fail\|error\|mismatch' io.out || { cat io.out; fail "qemu-io reads"; }

# Writes, then reads of written and unwritten parts.
qemu-io -f qcow2 overlay.qcow2 \
    -c 'write -P 99 512K 64K' -c 'write -z 2M 4K' -c 'write -P 7 8M 100' \
    -c 'read -P 99 512K 64K' -c 'read -P 17 0 512K' -c 'read -P 17 576K 448K' \
    -c 'read -P 0 2M 4K' -c 'read -P 34 2052K 1020K' -c 'read -P 7 8M 100' \
    -c 'read -P 68 8388708 3996' \
    >io.out || fail "qemu-io writes"
! grep -q -i 'fail\|error\|mismatch' io.out || { cat io.out; fail "qemu-io writes"; }

# The same as a raw image with the same writes.
cp a.img expected.img
qemu-io -f raw expected.img -c 'write -P 99 512K 64K' -c 'write -z 2M 4K' \
    -c 'write -P 7 8M 100' >/dev/null
qemu-img compare -q overlay.qcow2 expected.img || fail "overlay content"

# The overlay holds only the written clusters (64K each); the export is
# untouched.
alloc=$(qemu-img map --output=json overlay.qcow2 |
        "${PY:-python3}" -c 'import json,sys; print(sum(e["length"] for e in json.load(sys.stdin) if e["depth"] == 0 and e["data"]))')
[ "$alloc" -le $((3 * 65536)) ] || fail "overlay holds $alloc bytes of data"
nbdcopy "$uri" out.img
cmp out.img a.img || fail "the export changed"
echo "test-overlay: ok"
