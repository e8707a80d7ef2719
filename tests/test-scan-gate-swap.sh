#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The scan gate holds until nbdkit opens the point: instant --require-clean
# approves a point found clean, and someone who can write the repository
# puts an infected point's manifest and index under it after the gate and
# after instant read the point, before its nbdkit opens it (the start
# stops itself there: BOOTBACK_STOP_STEP=7).  The backend nbdkit refuses
# the disk (the index it opened is not the one approved), the start fails
# naming the disk, and no domain runs.  Without the swap the same command
# boots (the pin refuses nothing it should serve).  The same through a
# mass recovery's pool: the swapped point's VM does not start.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires debugfs md5sum
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"
getent passwd nobody >/dev/null || skip "no user nobody"
instant_setup

tiny_eicar
bootback import "$tmp/clean.img" --vm gate >/dev/null
bootback import "$tmp/bad.img" --vm gate >/dev/null
rm "$tmp/clean.img" "$tmp/bad.img"
ids=( $(ls "$tmp/repo/points/gate") )
[ ${#ids[@]} = 2 ] || fail "expected 2 points, got ${#ids[@]}"
good=${ids[0]} bad=${ids[1]}
bootback scan "gate@$good" --signatures "$sig" >/dev/null || fail "the clean point is not clean"
expect_rc 2 bootback scan "gate@$bad" --signatures "$sig"

args=(--network none --memory 256 --agent-timeout 0)
domains () { virsh -c "$LIBVIRT_DEFAULT_URI" -q list --all --name; }

# The infected point's manifest (its id made the clean one's) and index.
p=$tmp/repo/points/gate
python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); m["id"] = sys.argv[2]; print(json.dumps(m))' \
    "$p/$bad/manifest.json" "$good" >"$tmp/swapped.json"

# The start stops itself once it read the point, the swap, then on.
rc=0
BOOTBACK_STOP_STEP=7 "$BOOTBACK" instant "gate@$good" --require-clean --name gate-s \
    "${args[@]}" >"$tmp/s.out" 2>"$tmp/s.err" &
pid=$!
wait_stopped "$pid" || fail "the start did not stop at step 7: $(cat "$tmp/s.err")"
[ -z "$(ls "$BOOTBACK_HOME/sessions"/*/*.sock 2>/dev/null)" ] || fail "step 7 is after the nbdkits"
cp -a "$p/$good" "$tmp/saved-point"
cp "$p/$bad"/*.fidx "$p/$good/" && cp "$tmp/swapped.json" "$p/$good/manifest.json"
kill -CONT "$pid"
wait "$pid" || rc=$?
cat "$tmp/s.err"
[ $rc = 1 ] || fail "a point swapped after the gate was booted (exit $rc)"
grep -q "disk gate@$good/vda in .*: its index is not the one approved for it" "$tmp/s.err" ||
    fail "the refusal does not name the disk"
! grep -qx gate-s <<< "$(domains)" || fail "a domain was left from disks never scanned"

# The clean point back: the same start boots it.
rm -r "${p:?}/$good" && mv "$tmp/saved-point" "$p/$good"
bootback instant "gate@$good" --require-clean --name gate-ok "${args[@]}" >/dev/null ||
    fail "the clean point does not boot"
grep -qx gate-ok <<< "$(domains)" || fail "no domain for the clean point"
bootback instant stop gate-ok --discard

# Mass recovery (the pool's shared nbdkit, export VM@TIME/DISK#HEX): the
# same swap after the gate; that point's VM does not start, the other's
# does.
tiny_copy tiny "$tmp/other.img"
bootback import "$tmp/other.img" --vm other >/dev/null
bootback scan other --signatures "$sig" >/dev/null || fail "other is not clean"
cp -a "$p/$good" "$tmp/saved-point"
rc=0
BOOTBACK_STOP_STEP=7 "$BOOTBACK" instant "gate@$good" other --require-clean "${args[@]}" \
    >"$tmp/m.out" 2>"$tmp/m.err" &
pid=$!
wait_stopped "$pid" || fail "the mass start did not stop at step 7: $(cat "$tmp/m.err")"
cp "$p/$bad"/*.fidx "$p/$good/" && cp "$tmp/swapped.json" "$p/$good/manifest.json"
kill -CONT "$pid"
wait_stopped "$pid" || fail "the second start did not stop at step 7: $(cat "$tmp/m.err")"
kill -CONT "$pid"
wait "$pid" || rc=$?
cat "$tmp/m.err" "$tmp/m.out"
[ $rc = 1 ] || fail "mass recovery of a point swapped after the gate: exit $rc"
grep -q "^bootback: gate@$good: not started: " "$tmp/m.err" || fail "the swapped point's VM started"
! virsh -c "$LIBVIRT_DEFAULT_URI" -q list --name | grep -qx gate ||
    fail "a domain runs from disks never scanned"
virsh -c "$LIBVIRT_DEFAULT_URI" -q list --name | grep -qx other || fail "the other VM did not start"
bootback instant stop other --discard
rm -r "${p:?}/$good" && mv "$tmp/saved-point" "$p/$good"
echo "the scan gate holds until nbdkit opens the point: ok"
