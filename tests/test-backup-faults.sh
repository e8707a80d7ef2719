#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bootback backup when things go wrong, on a running tiny VM (private
# libvirtd, TCG) with vda (tiny, qcow2), vdb (qcow2 data disk the guest
# writes with dd) and vdc (raw):
#   - raw disk: a full read every time, said in the output;
#   - killed (SIGKILL) while reading: no point appears, repo check is clean,
#     the next backup ends the stale job, is incremental from the last
#     committed point and restores exactly;
#   - checkpoint deleted behind bootback's back: the next backup is full
#     and says why;
#   - a failure while the guest is frozen, a SIGKILL while it is frozen
#     (the thaw guard), an injected repository EIO: the guest ends thawed,
#     no point, the checkpoint chain is intact and the next backup is right;
#   - killed between commit and checkpoint advance (step 5): the next
#     backup is incremental and removes the stale checkpoint;
#   - two repositories backing up one domain keep separate checkpoints;
#   - a broken checkpoint (its bitmap removed from the qcow2): full, said;
#   - --all by metadata marker or list file (a listed domain that does not
#     exist fails by name, the others are still backed up); a shut-off
#     domain is read directly.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/backup.sh"
requires virsh qemu-img python3 cmp

backup_test_start bbf
truncate -s 32M "$tmp/vdb.raw"
head -c 4M /dev/urandom | dd of="$tmp/vdb.raw" conv=notrunc status=none
qemu-img convert -O qcow2 "$tmp/vdb.raw" "$tmp/vdb.qcow2"
head -c 8M /dev/urandom >"$tmp/vdc.raw"
"$top_srcdir/tests/lib/add-disk" "$tmp/vm.xml" vdb "$tmp/vdb.qcow2" qcow2
"$top_srcdir/tests/lib/add-disk" "$tmp/vm.xml" vdc "$tmp/vdc.raw" raw
virsh -q define "$tmp/vm.xml" >/dev/null
virsh -q start "$dom" >/dev/null
"$qga" --domain "$dom" --timeout 120 ping >/dev/null || { cat "$tmp/vm.serial"; fail "no agent"; }

frozen_status () {
    "$qga" --domain "$dom" json '{"execute":"guest-fsfreeze-status"}' | tr -d '" \n'
}
npoints () { bootback points "$dom" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
checkpoints () { virsh -q checkpoint-list "$dom" --name | grep . | sort | tr '\n' ' '; }
kind_of () { bootback point show "$dom@$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["kind"])'; }
# write N MiB of fresh random data at MiB offset OFF of vdb, in the guest and in the expectation
cp "$tmp/vdb.raw" "$tmp/vdb.expected"
guest_write () {
    head -c "$(( $2 * 1048576 ))" /dev/urandom >"$tmp/blob"
    "$qga" --domain "$dom" write /run/blob <"$tmp/blob"
    "$qga" --domain "$dom" exec /bin/sh -c "dd if=/run/blob of=/dev/vdb bs=1M seek=$1 oflag=direct 2>/dev/null && sync" ||
        fail "guest write"
    dd if="$tmp/blob" of="$tmp/vdb.expected" bs=1M seek="$1" conv=notrunc status=none
}
check_vdb () {   # point id: its vdb must equal the expectation
    rm -f "$tmp/check.raw"
    bootback restore "$dom@$1" --disk vdb --to "$tmp/check.raw" >/dev/null
    cmp "$tmp/check.raw" "$tmp/vdb.expected" || fail "vdb of $1 differs from what the guest wrote"
}
backup () {   # backup ARGS...: output in $tmp/out, fails the test on error
    bootback backup "$dom" "$@" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "backup $*"; }
    cat "$tmp/out"
}

bootback repo init "$tmp/repo" >/dev/null

# --- full, with a raw disk
backup
grep -q "vdc: full read of 8.0 MiB (raw disk: no persistent dirty bitmap" "$tmp/out" ||
    fail "no note on the raw disk"
p1=$(latest_id "$dom")
cp1=$(checkpoints)

# --- killed while reading
guest_write 8 1
expect_fail env BOOTBACK_BACKUP_TEST=kill-reading bootback backup "$dom" >"$tmp/out" 2>&1
[ "$(npoints)" = 1 ] || fail "a killed backup left a point"
bootback repo check >"$tmp/check" || { cat "$tmp/check"; fail "repo check after a killed backup"; }
[ "$(frozen_status)" = thawed ] || fail "guest left frozen by a killed backup"
virsh -q backup-dumpxml "$dom" >/dev/null 2>&1 || fail "expected the killed backup's job to be left running"
backup
grep -q "ended the backup job left by an interrupted bootback" "$tmp/out" || fail "stale job not reported"
grep -q "vdb: incremental since ${cp1% }" "$tmp/out" || fail "not incremental from the committed point's checkpoint"
grep -q "vdc: full read" "$tmp/out" || fail "raw disk not read in full"
p2=$(latest_id "$dom")
[ "$(kind_of "$p2")" = incremental ]
check_vdb "$p2"
[ "$(checkpoints | wc -w)" = 1 ] || fail "stale checkpoints left: $(checkpoints)"
bootback repo check >/dev/null

# --- checkpoint deleted behind bootback's back
virsh -q checkpoint-delete "$dom" "$(checkpoints | tr -d ' ')" >/dev/null
guest_write 12 1
backup
grep -q "vdb: full read of 32.0 MiB (checkpoint .* is missing in libvirt)" "$tmp/out" ||
    fail "a missing checkpoint did not make a full read, said"
p3=$(latest_id "$dom")
[ "$(kind_of "$p3")" = full ] || fail "point after a deleted checkpoint is not full"
check_vdb "$p3"
cp3=$(checkpoints)

# --- failures while frozen: the guest must end thawed, nothing else changes
guest_write 16 1
expect_fail env BOOTBACK_BACKUP_TEST=fail-frozen bootback backup "$dom" >"$tmp/out" 2>&1
grep -q "injected failure" "$tmp/out" || { cat "$tmp/out"; fail "fail-frozen did not fail"; }
[ "$(frozen_status)" = thawed ] || fail "guest left frozen after a failure"
[ "$(checkpoints)" = "$cp3" ] || fail "checkpoints changed by a failed backup: $(checkpoints)"
expect_fail env BOOTBACK_BACKUP_TEST=kill-frozen bootback backup "$dom" >"$tmp/out" 2>&1
for (( i = 0; i < 100; i++ )); do
    [ "$(frozen_status)" = thawed ] && break
    sleep 0.1
done
[ "$(frozen_status)" = thawed ] || fail "guest left frozen after bootback was killed while it was frozen"
for (( i = 0; i < 50; i++ )); do grep -q "thaw guard: thawed" "$tmp/out" && break; sleep 0.1; done
grep -q "thaw guard: thawed" "$tmp/out" || { cat "$tmp/out"; fail "the thaw guard did not thaw"; }
[ "$(npoints)" = 3 ] || fail "failed backups left points"

# --- an injected repository EIO: no point, the checkpoint stays usable.
# (Not any operation: an unreadable chunk of the last point under a partly
# changed chunk only makes the backup read that chunk whole, below.)
BOOTBACK_FAULT=count bootback backup "$dom" >"$tmp/out" 2>"$tmp/count" || { cat "$tmp/out" "$tmp/count"; fail "counting run"; }
grep -q "bootback-fault: [0-9]* ops, [1-9]" "$tmp/count" || { cat "$tmp/count"; fail "no fsync counted"; }
p4=$(latest_id "$dom")
check_vdb "$p4"
cp4=$(checkpoints)
guest_write 20 1
expect_fail env BOOTBACK_FAULT=fsync-eio@1 bootback backup "$dom" >"$tmp/out" 2>&1
grep -q "injected fault" "$tmp/out" || { cat "$tmp/out"; fail "fsync-eio@1 did not fail the backup"; }
[ "$(npoints)" = 4 ] || fail "a failed backup left a point"
[ "$(checkpoints)" = "$cp4" ] || fail "checkpoints changed by a failed backup: $(checkpoints) (was $cp4)"
[ "$(frozen_status)" = thawed ] || fail "guest left frozen"
bootback repo check >/dev/null || fail "repo check after EIO"

# --- a damaged chunk of the last point under a partly changed chunk: the
# --- backup reads that chunk whole from the disk and says so; the damage
# --- is not carried into the new point
chunk2=$(python3 - "$tmp/repo" "$dom" "$(latest_id "$dom")" <<'PY'
import sys
repo, dom, pid = sys.argv[1:4]
f = open("%s/points/%s/%s/vdb.fidx" % (repo, dom, pid), "rb").read()
d = f[64 + 2 * 32:64 + 3 * 32].hex()       # chunk 2: MiB 2-3, random data
print("%s/chunks/%s/%s" % (repo, d[:4], d))
PY
)
[ -f "$chunk2" ] || fail "chunk 2 of vdb not found: $chunk2"
cp "$chunk2" "$tmp/chunk2.good"
damage_byte "$chunk2" $(( $(stat -c %s "$chunk2") / 2 ))
head -c 65536 /dev/urandom >"$tmp/blob"
"$qga" --domain "$dom" write /run/blob <"$tmp/blob"
"$qga" --domain "$dom" exec /bin/sh -c "dd if=/run/blob of=/dev/vdb bs=64k seek=35 oflag=direct 2>/dev/null && sync" ||
    fail "guest write"
dd if="$tmp/blob" of="$tmp/vdb.expected" bs=64k seek=35 conv=notrunc status=none
backup --json
python3 - "$tmp/out" <<'PY' || { cat "$tmp/out"; fail "the damaged chunk was not read whole again"; }
import json, re, sys
text = open(sys.argv[1]).read()            # notes, then the JSON
j = json.loads(text[re.search(r"^\[", text, re.M).start():])
d = [x for x in j[0]["disks"] if x["name"] == "vdb"][0]
assert d["reread_chunks"] == 1 and d["patched_chunks"] == 0, d
PY
grep -q "vdb: 1 chunk of the last point could not be used (chunk [0-9a-f]\{64\}: .*CRC mismatch.*): read again from the disk" "$tmp/out" ||
    fail "the damaged chunk was not reported"
check_vdb "$(latest_id "$dom")"
cp "$tmp/chunk2.good" "$chunk2"                # the repo verify at the end

# --- killed between commit and checkpoint advance (step 5)
expect_fail env BOOTBACK_CRASH_STEP=5 bootback backup "$dom" >"$tmp/out" 2>&1
[ "$(npoints)" = 6 ] || fail "the point committed before step 5 is missing"
p5=$(latest_id "$dom")
check_vdb "$p5"
[ "$(checkpoints | wc -w)" = 2 ] || fail "expected the old and the new checkpoint: $(checkpoints)"
guest_write 24 1
backup
grep -q "vdb: incremental since bootback-.*-$p5" "$tmp/out" || fail "not incremental from the step-5-crashed point"
p6=$(latest_id "$dom")
check_vdb "$p6"
[ "$(checkpoints | wc -w)" = 1 ] || fail "stale checkpoints left: $(checkpoints)"

# --- --all: only marked domains
bootback backup --all >"$tmp/out" || { cat "$tmp/out"; fail "--all with nothing marked"; }
grep -q "no domain is marked" "$tmp/out" || fail "--all: no message when nothing is marked"
virsh -q metadata "$dom" --uri https://bootback.dev/xmlns/backup/1 --key bootback --set '<backup/>' --live --config >/dev/null
bootback backup --all >"$tmp/out" || { cat "$tmp/out"; fail "--all"; }
grep -q "backed up $dom@" "$tmp/out" || { cat "$tmp/out"; fail "--all did not back up the marked domain"; }
check_vdb "$(latest_id "$dom")"
# a list file: the marked domain once, and a listed one that does not exist
printf '# nightly\n%s   # web\n\n  no-such-vm\n' "$dom" >"$BOOTBACK_HOME/backup-domains"
bootback backup --all >"$tmp/out" 2>&1 && { cat "$tmp/out"; fail "--all with a missing listed domain succeeded"; }
grep -q "no-such-vm" "$tmp/out" || { cat "$tmp/out"; fail "--all: the missing domain is not named"; }
grep -q "1 of 2 domains backed up" "$tmp/out" || { cat "$tmp/out"; fail "--all: the list file was not read once per name"; }
[ "$(grep -c "backed up $dom@" "$tmp/out")" = 1 ] || { cat "$tmp/out"; fail "--all: $dom not backed up exactly once"; }
check_vdb "$(latest_id "$dom")"
printf 'two names\n' >"$tmp/bad.list"
bootback backup --all --list "$tmp/bad.list" >"$tmp/out" 2>&1 && fail "--list with a bad line succeeded"
grep -q "bad.list:1: not a domain name" "$tmp/out" || { cat "$tmp/out"; fail "--list: bad line not named"; }
bootback backup --all --list "$tmp/none.list" >"$tmp/out" 2>&1 && fail "--list with a missing file succeeded"
grep -q "none.list" "$tmp/out" || { cat "$tmp/out"; fail "--list: missing file not named"; }
rm -f "$BOOTBACK_HOME/backup-domains"

# --- a second repository backs up the same domain: each keeps its own
# --- checkpoint, neither uses nor removes the other's
bootback repo init "$tmp/repo2" >/dev/null          # now the default
backup
grep -q "vdb: full read of 32.0 MiB" "$tmp/out" || fail "first point of a new repository is not full"
[ "$(checkpoints | wc -w)" = 2 ] || fail "expected one checkpoint per repository: $(checkpoints)"
bootback repo add --default "$tmp/repo" >/dev/null
guest_write 28 1
backup
uuid8=$(bootback repo list --json | python3 -c '
import json, sys
print([r for r in json.load(sys.stdin) if r["location"].endswith("/repo")][0]["uuid"][:8])')
grep -q "vdb: incremental since bootback-$uuid8-" "$tmp/out" ||
    fail "the second repository's checkpoint was used or broke the chain"
[ "$(checkpoints | wc -w)" = 2 ] || fail "a repository removed another's checkpoint: $(checkpoints)"
check_vdb "$(latest_id "$dom")"

# --- a broken checkpoint: libvirt knows it, the disk's bitmap is gone
cp=$(virsh -q checkpoint-list "$dom" --name | grep "^bootback-${uuid8}-")
virsh -q destroy "$dom" >/dev/null
qemu-img bitmap --remove "$tmp/vdb.qcow2" "$cp"
virsh -q start "$dom" >/dev/null
"$qga" --domain "$dom" --timeout 120 ping >/dev/null || fail "no agent after restart"
guest_write 4 1
backup
grep -q "vdb: full read of 32.0 MiB (libvirt refused the incremental backup" "$tmp/out" ||
    fail "a broken checkpoint did not make a full read, said"
grep -q "removed broken checkpoint $cp" "$tmp/out" || fail "the broken checkpoint was not removed"
grep -q "warning" "$tmp/out" && fail "warnings after a broken checkpoint"
[ "$(virsh -q checkpoint-list "$dom" --name | grep -c "^bootback-${uuid8}-")" = 1 ] ||
    fail "checkpoints after a broken one: $(checkpoints)"
[ "$(kind_of "$(latest_id "$dom")")" = full ] || fail "point after a broken checkpoint is not full"
check_vdb "$(latest_id "$dom")"

# --- shut off: disks read directly
"$qga" --domain "$dom" exec /bin/sh -c sync >/dev/null
virsh -q destroy "$dom" >/dev/null
backup
grep -q "is shut off: reading its disk images directly" "$tmp/out" || fail "shut-off note"
grep -q ": full, crash-consistent" "$tmp/out" || fail "shut-off point kind"
check_vdb "$(latest_id "$dom")"
bootback repo verify >/dev/null || fail "repo verify"
echo ok
