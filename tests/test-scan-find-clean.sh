#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback scan --find-clean VM: of five points (three clean, then two
# with EICAR), the newest clean one is found by bisection, newest first,
# checking four points and saying which; a VM whose points are all
# infected exits 2; a point marked suspicious by its ransomware score is
# passed over and refused by instant --require-clean; a point whose disks
# were swapped after its scan is refused, also once the catalog has taken
# the swapped point in again.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/images.sh"
requires nbdkit debugfs md5sum python3
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"
getent passwd nobody >/dev/null || skip "no user nobody"
images_tiny

bootback repo init --chunk-size 64K "$tmp/repo" >/dev/null
tiny_eicar
for img in clean clean clean bad bad; do
    bootback import "$tmp/$img.img" --vm hist >/dev/null
done
ids=( $(ls "$tmp/repo/points/hist") )
[ ${#ids[@]} = 5 ] || fail "expected 5 points, got ${#ids[@]}"

rc=0; bootback scan --find-clean hist --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 0 ] || fail "--find-clean exits $rc"
grep -qxF "newest clean point: hist@${ids[2]}" "$tmp/out" || fail "wrong point"
[ "$(grep '^checked ' "$tmp/out" | cut -d' ' -f2 | tr -d : | tr '\n' ' ')" = \
  "hist@${ids[4]} hist@${ids[1]} hist@${ids[2]} hist@${ids[3]} " ] ||
    fail "not a bisection, newest first: $(grep '^checked ' "$tmp/out")"

bootback scan --find-clean hist --signatures "$sig" --json >"$tmp/json" || fail "json"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["clean"] == sys.argv[2], r
assert [c["scan"] for c in r["checked"]] == ["found", "clean", "clean", "found"], r' \
    "$tmp/json" "${ids[2]}" || fail "the JSON is wrong"

for i in 1 2; do bootback import "$tmp/bad.img" --vm allbad >/dev/null; done
rc=0; bootback scan --find-clean allbad --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 2 ] && grep -q '^no clean point of allbad among its 2 points' "$tmp/out" ||
    fail "all infected: exit $rc"

# A verdict belongs to the point the catalog recorded: someone who can
# write the repository puts an infected point's manifest and index under
# hist@${ids[2]}, found clean; instant --require-clean refuses it.
p=$tmp/repo/points/hist
cp -a "$p/${ids[2]}" "$tmp/saved-point"
python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); m["id"] = sys.argv[2]; print(json.dumps(m))' \
    "$p/${ids[4]}/manifest.json" "${ids[2]}" >"$tmp/swapped.json"
cp "$p/${ids[4]}"/*.fidx "$p/${ids[2]}/" && cp "$tmp/swapped.json" "$p/${ids[2]}/manifest.json"
out=$(bootback instant "hist@${ids[2]}" --require-clean 2>&1 || true)
grep -q "refusing hist@${ids[2]}: its disks in .* are not the ones the catalog recorded" <<< "$out" ||
    fail "instant --require-clean took a point whose disks were swapped after its scan: $out"
rm -r "${p:?}/${ids[2]}" && mv "$tmp/saved-point" "$p/${ids[2]}"
# Nor once the catalog takes the swapped point in: the point's directory
# moved away with a pruned/ marker (its row goes, as a pruned point's),
# then back with the infected manifest and index (the catalog adds it as
# found): the clean verdict was for other disks, so it is not scanned.
mv "$p/${ids[2]}" "$tmp/away-point"
mkdir -p "$tmp/repo/pruned/hist" && : >"$tmp/repo/pruned/hist/${ids[2]}"
bootback points hist >/dev/null 2>&1
mkdir "$p/${ids[2]}" && cp "$p/${ids[4]}"/*.fidx "$p/${ids[2]}/" &&
    cp "$tmp/swapped.json" "$p/${ids[2]}/manifest.json"
rm "$tmp/repo/pruned/hist/${ids[2]}"
bootback points hist >/dev/null 2>&1
out=$(bootback instant "hist@${ids[2]}" --require-clean \
      --connect "qemu+unix:///system?socket=$tmp/no-libvirt.sock" 2>&1 || true)
grep -q "refusing hist@${ids[2]}: " <<< "$out" ||
    fail "instant --require-clean took a swapped point the catalog took in again: $out"
rm -r "${p:?}/${ids[2]}" && mv "$tmp/away-point" "$p/${ids[2]}"

# A point the ransomware score marks suspicious (two binaries replaced by
# random bytes) is not clean, though its scan is: --find-clean passes
# over it and instant --require-clean refuses it.
root="$tmp/clean.img?offset=$((67584 * 512))"
bootback import "$tmp/clean.img" --vm sus >/dev/null
head -c 1982256 /dev/urandom >"$tmp/rnd1"
head -c 1008896 /dev/urandom >"$tmp/rnd2"
printf 'rm /bin/busybox\nwrite %s /bin/busybox\nrm /usr/sbin/qemu-ga\nwrite %s /usr/sbin/qemu-ga\n' \
    "$tmp/rnd1" "$tmp/rnd2" >"$tmp/cmds"
debugfs -w -f "$tmp/cmds" "$root" >/dev/null 2>&1
bootback import "$tmp/clean.img" --vm sus >/dev/null 2>"$tmp/imp.err"
grep -q "is suspicious" "$tmp/imp.err" || skip "the score did not flag the changed point: $(cat "$tmp/imp.err")"
sus=( $(ls "$tmp/repo/points/sus") )
rc=0; bootback scan --find-clean sus --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 0 ] || fail "--find-clean sus exits $rc"
grep -qxF "checked sus@${sus[1]}: clean, suspicious" "$tmp/out" || fail "the suspicious mark is not said"
grep -qxF "newest clean point: sus@${sus[0]}" "$tmp/out" || fail "a suspicious point was taken as clean"
grep -q "refusing sus@${sus[1]}: it is marked suspicious" \
     <<< "$(bootback instant "sus@${sus[1]}" --require-clean 2>&1 || true)" ||
    fail "instant --require-clean took a suspicious point"
