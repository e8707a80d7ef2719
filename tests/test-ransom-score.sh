#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The ransomware score on imports of one image changed on the host between
# points (the score sees only the repository, so this is the same code a
# backup runs).  A 256 MiB raw disk: "files" (compressible text) in
# 0-48 MiB, a log from 48 MiB, free space (zeros) above 64 MiB.
#   1. 24 benign change sets, one per point, of four kinds chosen at
#      random with random sizes: log growth, a package-sized write of
#      compressible files into free space, database-like rewrites of
#      existing files in place, a copy of already-compressed (gzip) files
#      into free space.  None may be flagged; the false-positive count is
#      printed (README, "Ransomware early warning").
#   2. Encryption: 2 x 6 MiB of the files encrypted in place with
#      openssl enc (AES-256-CBC): flagged, the reason in words, in
#      points, point show and their --json; the --on-suspicious hook runs
#      without a shell with the point in its environment; a failing hook
#      is a warning and the import still succeeds.
#   3. point unflag clears the mark; unflag of an unflagged point fails
#      naming it.
source "$top_srcdir/tests/functions.sh"
requires openssl gzip seq python3

source "$top_srcdir/tests/lib/ransom.sh"
bootback repo init "$tmp/repo" >/dev/null
ransom_init "$tmp/disk.raw" 256M 48

# --- 1. benign change sets
kinds=(log package database copy)
flagged=0
for i in $(seq 1 24); do
    # every kind at least 4 times, the rest at random
    if [ "$i" -le 16 ]; then k=${kinds[$((i % 4))]}; else k=${kinds[$((RANDOM % 4))]}; fi
    ransom_change "$k"
    ransom_import
    if grep -q "is suspicious" "$tmp/imp.err"; then
        flagged=$((flagged + 1))
        echo "false positive: set $i ($k): $(cat "$tmp/imp.err")"
    fi
done
echo "benign change sets: 24, flagged: $flagged"
bootback points vm1 >"$tmp/points"
grep -q suspicious "$tmp/points" && { cat "$tmp/points"; fail "benign points flagged"; }
[ "$flagged" = 0 ] || fail "$flagged of 24 benign change sets flagged"
grep -q "warning" "$tmp/imp.err" && fail "import warned: $(cat "$tmp/imp.err")"
bootback points vm1 --json >"$tmp/points.json"
python3 - "$tmp/points.json" <<'PY'
import json, sys
pts = json.load(open(sys.argv[1]))
assert len(pts) == 25, len(pts)
for i, x in enumerate(pts[1:], 1):
    s = x["score"]
    assert s and s["stats"]["has_prev"] and s["stats"]["raw_bytes"] is not None, x
    # fewer than 4 earlier scored points: the floors only
    assert ("no usual range" in s["reason"]) == (i <= 4), (i, s)
print("benign scores:", [round(x["score"]["score"], 1) for x in pts[1:]])
PY

# --- 2. encryption in place (openssl, on the files' bytes)
ransom_encrypt 6
ransom_encrypt 6
cat >"$tmp/hook" <<HOOK
#!/bin/sh
{ echo "args: \$*"; echo "vm=\$BOOTBACK_VM"; echo "point=\$BOOTBACK_POINT"; echo "reason=\$BOOTBACK_REASON"; env | grep -E '^(BOOTBACK_NEW_PASSPHRASE|AWS_SECRET_ACCESS_KEY)='; } >"$tmp/hook.out"
HOOK
chmod +x "$tmp/hook"
# bootback's secrets stay in bootback: the hook gets none (a passphrase
# for the repository itself would be refused: this one is plain)
BOOTBACK_NEW_PASSPHRASE=hunter2 AWS_SECRET_ACCESS_KEY=s3cr3t ransom_import --on-suspicious "$tmp/hook one two"
! grep -q "hunter2\|s3cr3t" "$tmp/hook.out" || fail "the hook got bootback's secrets: $(cat "$tmp/hook.out")"
cat "$tmp/imp.err"
p=$(sed -n 's/^imported \(vm1@[^:]*\):.*/\1/p' "$tmp/imp.out")
grep -q "warning: $p is suspicious" "$tmp/imp.err" || fail "encryption not flagged"
grep -Eq "[0-9]+% of new data incompressible \(usual [0-9.]+%-[0-9.]+%\)" "$tmp/imp.err" ||
    fail "no incompressible share in the reason"
grep -q "of the previous point.s data replaced by incompressible data (usual" "$tmp/imp.err" || fail "no encrypted-rewrite share"
grep -qx "args: one two" "$tmp/hook.out" || fail "hook arguments: $(cat "$tmp/hook.out")"
grep -qx "vm=vm1" "$tmp/hook.out" || fail "hook BOOTBACK_VM"
grep -qx "point=$p" "$tmp/hook.out" || fail "hook BOOTBACK_POINT"
grep -q "^reason=.*incompressible" "$tmp/hook.out" || fail "hook BOOTBACK_REASON"

bootback points vm1 >"$tmp/points"
cat "$tmp/points"
grep -q "^$p .*suspicious\$" "$tmp/points" || fail "points does not mark $p"
[ "$(grep -c suspicious "$tmp/points")" = 1 ] || fail "more than one point marked"
bootback point show "$p" >"$tmp/show"
grep -q "^ransomware:  SUSPICIOUS, score" "$tmp/show" || { cat "$tmp/show"; fail "point show"; }
bootback points vm1 --json >"$tmp/points.json"
bootback point show "$p" --json >"$tmp/show.json"
python3 - "$tmp/points.json" "$tmp/show.json" "$p" <<'PY'
import json, sys
pts = json.load(open(sys.argv[1])); show = json.load(open(sys.argv[2])); p = sys.argv[3]
flagged = [x["point"] for x in pts if x["score"] and x["score"]["suspicious"]]
assert flagged == [p], flagged
assert pts[0]["score"]["reason"].startswith("first point"), pts[0]["score"]
s = show["score"]
assert s["suspicious"] and s["score"] >= 5 and "incompressible" in s["reason"], s
assert s["stats"]["raw_bytes"] > 0.9 * s["stats"]["new_bytes"], s
assert s["stats"]["raw_rewritten_bytes"] >= 6 << 20, s
PY

# a failing hook: a warning, the point stored
ransom_encrypt 10
printf '#!/bin/sh\necho cannot page anyone\nexit 3\n' >"$tmp/badhook"; chmod +x "$tmp/badhook"
BOOTBACK_ON_SUSPICIOUS="$tmp/badhook" ransom_import
grep -q "is suspicious" "$tmp/imp.err" || fail "second encryption not flagged"
grep -q "warning: suspicious-point hook $tmp/badhook exited with status 3: cannot page anyone" \
    "$tmp/imp.err" || { cat "$tmp/imp.err"; fail "hook failure not reported"; }
p2=$(sed -n 's/^imported \(vm1@[^:]*\):.*/\1/p' "$tmp/imp.out")

# the summary report names them: 2 flagged points, the newest with its reason
bootback report --since 3650d --json >"$tmp/report.json"
bootback report --since 3650d --html "$tmp/report.html" >"$tmp/report.txt"
cat "$tmp/report.txt"
python3 - "$tmp/report.json" "${p2#vm1@}" <<'PY'
import json, sys
vm = [v for v in json.load(open(sys.argv[1]))["vms"] if v["vm"] == "vm1"][0]
assert vm["suspicious_points"] == 2, vm
n = vm["newest_suspicious_point"]
assert n["id"] == sys.argv[2] and "incompressible" in n["reason"], n
PY
grep -q "^  2 suspicious points, newest ${p2#vm1@}: .*incompressible" "$tmp/report.txt" ||
    fail "report: no suspicious line"
grep -q "<td class=\"fail\">2, newest ${p2#vm1@}<br>" "$tmp/report.html" || fail "report.html: no suspicious cell"

# --- 3. unflag
bootback point unflag "$p" | grep -q "is no longer marked suspicious"
bootback point show "$p" | grep -q "^ransomware:  suspicious, unflagged" || fail "unflag not shown"
bootback points vm1 >"$tmp/points"
grep -q "^$p .*suspicious" "$tmp/points" && fail "unflagged point still marked"
bootback report --since 3650d --json >"$tmp/report.json"
python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))["vms"][0]; assert v["suspicious_points"] == 1, v' \
    "$tmp/report.json" || fail "report still counts the unflagged point"
expect_rc 1 bootback point unflag vm1@20261201T000100Z
grep -q "vm1@20261201T000100Z is not marked suspicious" "$tmp/err" || fail "unflag error: $(cat "$tmp/err")"

# --- 4. a catalog rebuilt from the repository: the scores are computed
# again from the indexes and the changed chunks' headers (the writer's
# counts are not in the manifests); the same points are flagged
rm -f "$BOOTBACK_HOME"/catalog.db*
bootback repo add "$tmp/repo" >/dev/null
bootback repo reindex >"$tmp/reindex.out" 2>"$tmp/reindex.err"
cat "$tmp/reindex.out" "$tmp/reindex.err"
grep -q "ransomware scores computed for 27 points without one: 2 suspicious" "$tmp/reindex.out" ||
    fail "reindex scores"
grep -q "warning: $p is suspicious" "$tmp/reindex.err" || fail "reindex did not flag $p"
bootback points vm1 --json >"$tmp/points.json"
python3 - "$tmp/points.json" <<'PY'
import json, sys
pts = json.load(open(sys.argv[1]))
assert all(x["score"]["stats"]["raw_bytes"] is not None for x in pts[1:]), pts
assert [x["score"]["suspicious"] for x in pts[1:]].count(True) == 2, pts
PY
bootback repo reindex | grep -q "ransomware scores computed" && fail "reindex scored points twice"

# --- 5. a hook that hangs (and leaves a child holding its output): killed
# with everything it started after its time (60 s; 2 s here), a warning,
# the point stored
ransom_encrypt 10
cat >"$tmp/hanghook" <<HOOK
#!/bin/sh
sleep 1000 &
echo \$! >"$tmp/hang.child"
echo \$\$ >"$tmp/hang.pid"
sleep 1000
HOOK
chmod +x "$tmp/hanghook"
BOOTBACK_TEST_HOOK_TIMEOUT=2 BOOTBACK_ON_SUSPICIOUS="$tmp/hanghook" ransom_import
grep -q "is suspicious" "$tmp/imp.err" || fail "third encryption not flagged"
grep -q "warning: suspicious-point hook: $tmp/hanghook: did not finish within 2 s: killed" \
    "$tmp/imp.err" || { cat "$tmp/imp.err"; fail "hung hook not reported"; }
for f in hang.pid hang.child; do     # gone, or a zombie waiting for init
    st=$(awk '{ print $3 }' "/proc/$(cat "$tmp/$f")/stat" 2>/dev/null || true)
    [ -z "$st" ] || [ "$st" = Z ] || fail "the hook's process $(cat "$tmp/$f") ($f) still runs ($st)"
done
grep -q "^imported vm1@" "$tmp/imp.out" || fail "the point behind a hung hook was not stored"
true
