#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bad input gets a clear error naming what is wrong, and leaves nothing
# behind: 0-byte disk, unreadable image, missing file, bad names, no repo.
source "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-nbd

# no repository yet
expect_fail bootback points 2>"$tmp/err"
grep -q "no repository: create one with 'bootback repo init PATH'" "$tmp/err"
expect_fail bootback --repo "$tmp/nope" points 2>"$tmp/err"
grep -q "$tmp/nope" "$tmp/err"

repo=$tmp/repo
bootback repo init "$repo"
mkdir "$tmp/notempty"; touch "$tmp/notempty/x"
expect_fail bootback repo init "$tmp/notempty" 2>"$tmp/err"
grep -q "not empty" "$tmp/err"
expect_fail bootback repo init --chunk-size 3M "$tmp/r3" 2>"$tmp/err"
grep -q "power of two" "$tmp/err"
expect_fail bootback repo init --zstd-level 0 "$tmp/rz" 2>"$tmp/err"
grep -q "zstd-level must be -7..-1 (fast) or 1..19" "$tmp/err"
[ ! -e "$tmp/rz" ] || fail "a refused repo init left $tmp/rz behind"

# 0-byte disk
: > "$tmp/empty.raw"
expect_fail bootback import "$tmp/empty.raw" --vm e 2>"$tmp/err"
grep -q "0 bytes" "$tmp/err"
# an image that cannot be read: qemu-img's reason is passed on
echo "not an image" > "$tmp/bad.qcow2"
printf 'QFI\xfb\0\0\0\x03garbage' > "$tmp/bad.qcow2"
expect_fail bootback import "$tmp/bad.qcow2" --vm b 2>"$tmp/err"
cat "$tmp/err"
grep -q "bad.qcow2" "$tmp/err"
grep -qi "cannot read image" "$tmp/err"
expect_fail bootback import "$tmp/missing.raw" --vm m 2>"$tmp/err"
grep -q "missing.raw" "$tmp/err"
# bad names
truncate -s 1M "$tmp/ok.raw"
expect_fail bootback import "$tmp/ok.raw" --vm "a/b" 2>"$tmp/err"
grep -q "not a valid VM name" "$tmp/err"
expect_fail bootback import "$tmp/ok.raw" --vm ok --disk "../x" 2>"$tmp/err"
grep -q "not a valid disk name" "$tmp/err"
# disk names are at most 64 characters: two longer names that share their
# first 64 would have shared one index
long=$(printf 'd%.0s' $(seq 64))
expect_fail bootback import "$tmp/ok.raw" "$tmp/ok.raw" --vm ok --disk "${long}1" --disk "${long}2" 2>"$tmp/err"
grep -q "'${long}1' is not a valid disk name (\[A-Za-z0-9._-\], at most 64)" "$tmp/err" || { cat "$tmp/err"; fail "a 65-character disk name was not refused by name"; }
expect_fail bootback import "$tmp/ok.raw" --vm ok --domain-xml "$tmp/ok.raw" 2>"$tmp/err"
grep -q "not a libvirt domain XML" "$tmp/err"

# nothing is visible, nothing half-written
[ -z "$(ls "$repo/points")" ] || { ls -R "$repo/points"; fail "points left behind"; }
bootback repo check
[ "$(bootback points --json)" = "[]" ]
[ -z "$(ls /tmp | grep bootback-nbd)" ] || true

# unknown points and disks
bootback import "$tmp/ok.raw" --vm ok
expect_fail bootback restore nosuch@latest --to "$tmp/o" 2>"$tmp/err"
grep -q "no restore points of VM 'nosuch'" "$tmp/err"
expect_fail bootback restore ok@20200101T000000Z --to "$tmp/o" 2>"$tmp/err"
grep -q "no restore point ok@20200101T000000Z" "$tmp/err"
expect_fail bootback restore ok --disk vdz --to "$tmp/o" 2>"$tmp/err"
grep -q "has no disk 'vdz' (it has: vda)" "$tmp/err"
expect_fail bootback restore ok@yesterday --to "$tmp/o" 2>"$tmp/err"
grep -q "invalid time 'yesterday'" "$tmp/err"
[ ! -e "$tmp/o" ] && [ ! -e "$tmp/o.part" ]
# a file that appears at the target while the restore runs is not
# overwritten: the restore is stopped once its .part file exists, the
# target is made, and the restore then goes on
head -c $((48 * 1024 * 1024)) /dev/urandom >"$tmp/big.raw"
bootback import "$tmp/big.raw" --vm big >/dev/null
bootback restore big --to "$tmp/r" 2>"$tmp/err" & rpid=$!
while [ ! -e "$tmp/r.part" ] && kill -0 $rpid 2>/dev/null; do :; done
kill -STOP $rpid 2>/dev/null || fail "the restore ended before it could be stopped"
echo "made while restoring" >"$tmp/r"
kill -CONT $rpid
if wait $rpid; then fail "restore replaced a file made while it ran"; fi
[ "$(cat "$tmp/r")" = "made while restoring" ] || fail "restore overwrote $tmp/r"
grep -q "exists already" "$tmp/err" || { cat "$tmp/err"; fail "no error naming the target"; }
[ ! -e "$tmp/r.part" ] || fail "restore left $tmp/r.part"
expect_fail bootback frobnicate 2>"$tmp/err"
grep -q "unknown command 'frobnicate'" "$tmp/err"
echo "bad input ok"
