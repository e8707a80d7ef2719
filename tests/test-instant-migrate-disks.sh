#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Migration of a session with two disks, whose pre-copies run at once
# (recovery/instant/migrate.c): to a file system too small for them it
# fails cleanly (the error says the target is full, no qemu-img of it is
# left running, nothing is left on the target, the VM serves on from the
# backup); to a good target both disks move, the data disk's image holds
# exactly the point's data, and the VM serves from the new images.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires curl

instant_migrate_targets

instant_setup
tiny_copy tiny "$tmp/tiny.img"
head -c $((256 << 20)) /dev/urandom > "$tmp/data.img"
"$top_srcdir/images/domain-xml" NAME=tiny DISK_PATH="$tmp/tiny.img" \
    NET_SOURCE="$NETNS_BRIDGE" > "$tmp/tiny.xml"
bootback import "$tmp/tiny.img" "$tmp/data.img" --vm tiny --disk vda --disk vdb \
    --domain-xml "$tmp/tiny.xml" >/dev/null
rm "$tmp/tiny.img"

bootback instant tiny --agent-timeout 0 >/dev/null
url=http://10.77.0.10/health
netns_wait_http "$url" 120 >/dev/null || fail "no HTTP from the restored VM"
grep -q "overlays/tiny.vdb.qcow2" <<< "$(virsh domblklist tiny)" || fail "no vdb in the VM"

state () {
    bootback sessions --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])'
}

# 1. Too small for either disk: both copies start, the first to fail
# stops the other.
expect_fail bootback migrate 1 --to "$tmp/small" 2>"$tmp/err"
cat "$tmp/err"
grep -q "no space left" "$tmp/err" || fail "the error does not say the target is full"
if pgrep -f "qemu-img convert .*$tmp/small/" >/dev/null; then
    fail "a pre-copy is still running: $(pgrep -af "qemu-img convert .*$tmp/small/")"
fi
[ -z "$(ls -A "$tmp/small")" ] || fail "the failed migration left files: $(ls "$tmp/small")"
[ "$(state)" = running ] || fail "state after a failed migration: $(state)"
grep -q "No current block job" <<< "$(virsh blockjob tiny vdb 2>&1)" || fail "block job left"
grep -q "^HTTP 200" <<< "$(netns_http "$url")" || fail "VM not serving after the failed migration"

# 2. A good target: both disks move.
bootback migrate 1 --to "$tmp/prod" > "$tmp/migrate.out"
cat "$tmp/migrate.out"
[ "$(state)" = migrated ] || fail "state after the migration: $(state)"
blk=$(virsh domblklist tiny)
grep -q "$tmp/prod/tiny-vda.qcow2" <<< "$blk" || fail "vda not on the target: $blk"
grep -q "$tmp/prod/tiny-vdb.qcow2" <<< "$blk" || fail "vdb not on the target: $blk"
# (the guest never writes its data disk: the image is the point's data)
qemu-img compare -U -f qcow2 -F raw "$tmp/prod/tiny-vdb.qcow2" "$tmp/data.img" ||
    fail "the data disk's image differs from the point"
grep -q "^HTTP 200" <<< "$(netns_http "$url")" || fail "VM not serving after the migration"
echo "migration of two disks ok"
