#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback scan reads LVM (libvslvm, in the sandboxed child): a disk
# whose partition 1 (type LVM) is a physical volume with an ext4 logical
# volume holding EICAR, and a clean one with nothing on it, and a second
# disk that is a physical volume as a whole with a YARA marker: each
# logical volume is scanned like a partition and the match names its
# VG/LV (exit 2); the empty one is "not scanned" with the reason, never
# clean; a thin pool and a raid1 LV are "not scanned" with the reason;
# --since reads a
# logical volume in full and says so.  The fixture is
# made without mounting anything: mkfs.ext4 -d builds the file system,
# lvm2 (on a loop device, activation off: no device-mapper) writes the
# PV/VG/LV metadata, dd puts the file system where the LV's extents are.
source "$top_srcdir/tests/functions.sh"
requires nbdkit mkfs.ext4 sfdisk losetup pvcreate vgcreate lvcreate pvs vgs lvs \
    vgcfgbackup vgcfgrestore md5sum python3
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"
getent passwd nobody >/dev/null || skip "no user nobody"
[ "$(id -u)" = 0 ] || skip "needs root (loop devices)"

source "$top_srcdir/tests/lib/lvm.sh"
cleanup_fn lvm_loops_cleanup
vg=bbscan$$; vgw=bbscanw$$

sig=$tmp/sig; mkdir -p "$sig"
printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$tmp/eicar.com"
echo "$(md5sum <"$tmp/eicar.com" | cut -d' ' -f1):68:Test.Eicar.HDB" >"$sig/test.hdb"
echo 'rule lvm_marker { strings: $a = "BOOTBACK-LVM-MARKER" condition: $a }' >"$sig/test.yar"

# disk 1: DOS label, partition 1 of type 8e (LVM) = PV; LVs root (ext4
# with EICAR) and empty (no file system)
mkdir -p "$tmp/root/srv"; cp "$tmp/eicar.com" "$tmp/root/srv/eicar.com"
echo "clean text" >"$tmp/root/srv/readme.txt"
mkfs.ext4 -q -F -d "$tmp/root" "$tmp/root.ext4" 16M
truncate -s 48M "$tmp/d1.img"
echo 'start=2048, type=8e' | sfdisk -q "$tmp/d1.img"
p1=$(losetup -f --show --offset $((2048 * 512)) "$tmp/d1.img"); lvm_loops+=("$p1")
lvm_on "$p1" pvcreate -ff -y "$p1"
lvm_on "$p1" vgcreate "$vg" "$p1"
lvm_on "$p1" lvcreate -an -Zn -y -L 16M -n root "$vg"
lvm_on "$p1" lvcreate -an -Zn -y -L 4M -n empty "$vg"
off=$(lv_offset "$p1" "$vg" root)
lvm_loops_cleanup
dd if="$tmp/root.ext4" of="$tmp/d1.img" bs=64K seek=$(( (2048 * 512 + off) / 65536 )) \
    conv=notrunc status=none

# disk 2: a PV as a whole (no partition table); LV data (ext4, marker)
mkdir -p "$tmp/data"; echo "BOOTBACK-LVM-MARKER" >"$tmp/data/marker.txt"
mkfs.ext4 -q -F -d "$tmp/data" "$tmp/data.ext4" 8M
truncate -s 32M "$tmp/d2.img"
w=$(losetup -f --show "$tmp/d2.img"); lvm_loops+=("$w")
lvm_on "$w" pvcreate -ff -y "$w"
lvm_on "$w" vgcreate "$vgw" "$w"
lvm_on "$w" lvcreate -an -Zn -y -L 8M -n data "$vgw"
off2=$(lv_offset "$w" "$vgw" data)
lvm_loops_cleanup
dd if="$tmp/data.ext4" of="$tmp/d2.img" bs=64K seek=$((off2 / 65536)) conv=notrunc status=none

bootback repo init --chunk-size 64K "$tmp/repo" >/dev/null
bootback import "$tmp/d1.img" --vm lvm1 >/dev/null
bootback import "$tmp/d2.img" --vm lvm2 >/dev/null
rc=0; bootback scan lvm1 --signatures "$sig" >"$tmp/out1" 2>&1 || rc=$?
cat "$tmp/out1"
[ $rc = 2 ] || fail "an LV with EICAR: exit $rc, expected 2"
grep -q "^FOUND: disk vda partition 1 volume $vg/root: /srv/eicar.com: Test.Eicar.HDB" "$tmp/out1" ||
    fail "the match does not name the logical volume $vg/root"
grep -q "^scanned: disk vda partition 1 volume $vg/root (ext4): 2 files" "$tmp/out1" ||
    fail "the LV's file system is not said scanned"
grep -q "^not scanned: disk vda partition 1 volume $vg/empty " "$tmp/out1" ||
    fail "the LV without a file system is not said not scanned"
rc=0; bootback scan lvm2 --signatures "$sig" --json >"$tmp/j2" 2>"$tmp/e2" || rc=$?
[ $rc = 2 ] || { cat "$tmp/e2" "$tmp/j2"; fail "a whole-disk PV: exit $rc, expected 2"; }
python3 - "$tmp/j2" "$vgw/data" <<'PY' || fail "a whole-disk PV: the match in --json"
import json, sys
m = json.load(open(sys.argv[1]))["matches"]
assert [(x["path"], x["rule"], x["partition"], x["volume"]) for x in m] == \
    [("/marker.txt", "lvm_marker", 0, sys.argv[2])], m
PY

# --since on a logical volume reads it in full (its chunks are not mapped
# through LVM), and says so: the unchanged marker file is still matched
first=$(ls "$tmp/repo/points/lvm2")
bootback import "$tmp/d2.img" --vm lvm2 >/dev/null
mkdir -p "$tmp/nosig"
echo 'rule never { strings: $a = "NEVER-MATCHES-0123" condition: $a }' >"$tmp/nosig/n.yar"
bootback scan "lvm2@$first" --signatures "$tmp/nosig" >/dev/null ||
    fail "lvm2@$first is not clean with a rule that matches nothing"
rc=0; bootback scan lvm2 --since "$first" --signatures "$sig" >"$tmp/out4" 2>&1 || rc=$?
cat "$tmp/out4"
[ $rc = 2 ] || fail "--since on a logical volume: exit $rc, expected 2 (read in full)"
grep -q "note: --since: a logical volume is read in full" "$tmp/out4" ||
    fail "--since on a logical volume does not say it read it in full"

# a thin pool with a thin volume, and a raid1 LV (their metadata written
# by vgcfgrestore: no device-mapper here to make them): not scanned, with
# the reason, never clean
layout () {   # NAME LAYOUT LV... : a disk whose VG has LVs made into LAYOUT
    local name=$1 kind=$2 dev lv
    shift 2
    truncate -s 48M "$tmp/$name.img"
    dev=$(losetup -f --show "$tmp/$name.img"); lvm_loops+=("$dev")
    lvm_on "$dev" pvcreate -ff -y "$dev"
    lvm_on "$dev" vgcreate "$vg" "$dev"
    for lv in "$@"; do lvm_on "$dev" lvcreate -an -Zn -y -L 4M -n "$lv" "$vg"; done
    lvm_on "$dev" vgcfgbackup -f "$tmp/$name.txt" "$vg"
    python3 "$top_srcdir/tests/lib/lvm-layout.py" "$kind" "$tmp/$name.txt" >"$tmp/$name-new.txt" ||
        fail "could not write the $kind metadata"
    lvm_on "$dev" vgcfgrestore --force -f "$tmp/$name-new.txt" "$vg" ||
        { cat "$tmp/lvm.log"; fail "vgcfgrestore of the $kind layout"; }
    lvm_loops_cleanup
    bootback import "$tmp/$name.img" --vm "$name" >/dev/null
}
layout lvm3 thin pool pmeta
layout lvm4 raid1 m0 i0 m1 i1
for t in lvm3 lvm4; do
    rc=0; bootback scan "$t" --signatures "$sig" >"$tmp/out3" 2>&1 || rc=$?
    cat "$tmp/out3"
    [ $rc = 1 ] || fail "$t: exit $rc, expected 1 (never clean)"
    grep -q "^not scanned: disk vda partition 0 volume $vg/#0 (lvm2): .*libvslvm cannot map it (a thin pool or thin volume, RAID" "$tmp/out3" ||
        fail "$t: the thin pool or the RAID LV is not named not scanned with the reason"
done
