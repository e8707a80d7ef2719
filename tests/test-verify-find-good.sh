#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bootback verify VM --find-good (issue 15, item 3): five points of web1,
# the three oldest healthy and the two newest with no boot sector (as
# after a bad night).  The search verifies the newest (failed), then
# bisects: the 2nd (passed), the 3rd (passed), the 4th (failed), and names
# the 3rd as the newest good point, never booting the oldest.  A second
# search takes every verdict from the catalog and boots only its answer
# again (the repository may have changed since); --rto turns a cached pass
# slower than it into a failure.  A VM whose points all fail exits 2;
# wrong usage exits 1.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start --repo nbdkit
lab_point_files web1 21
tiny_copy nombr "$tmp/bad.img"
t() { echo "2026120${1}T000000Z"; }
for i in 1 2 3; do
    bootback import "$tmp/web1.img" --vm web1 --time "$(t $i)" --domain-xml "$tmp/web1.xml" >/dev/null
done
for i in 4 5; do
    bootback import "$tmp/bad.img" --vm web1 --time "$(t $i)" --domain-xml "$tmp/web1.xml" >/dev/null
done

sources () {
    bootback history web1 --json | python3 -c '
import json, sys
for h in json.load(sys.stdin): print(h["source"])'
}

rc=0
bootback verify web1 --find-good --address 10.77.0.21 --report-dir "$tmp/r" \
    >"$tmp/out" 2>"$tmp/err" || rc=$?
cat "$tmp/out"
[ $rc -eq 0 ] || { cat "$tmp/err"; fail "find-good: exit $rc, expected 0"; }
grep -q "^newest good point: web1@$(t 3) (2 newer points: web1@$(t 4), the oldest of them tried, failed)" "$tmp/out" ||
    fail "find-good did not name web1@$(t 3) as the newest good point"
# the order tried: newest, then bisection
[ "$(awk '$2 == "passed" || $2 == "failed" { print $1 ":" $2 }' "$tmp/out" | tr '\n' ' ')" = \
  "$(t 5):failed $(t 2):passed $(t 3):passed $(t 4):failed " ] ||
    fail "find-good did not try newest, then bisect"
grep -q "$(t 5) *failed *did not boot: the disk has no boot sector" "$tmp/out" ||
    fail "the failed point's reason is not shown"
grep -q "4 of 5 points tried" "$tmp/out" || fail "the count of points tried is missing"
for i in 2 3 4 5; do
    [ -f "$tmp/r/$(t $i)/report.json" ] || fail "no report for web1@$(t $i) in --report-dir/POINT"
done
[ "$(sources | sort | tr '\n' ' ')" = "web1@$(t 2) web1@$(t 3) web1@$(t 4) web1@$(t 5) " ] ||
    fail "the runs recorded are not the four points tried: $(sources | tr '\n' ' ')"

# Again: the verdicts come from the catalog; only the answer boots again.
bootback verify web1 --find-good --json >"$tmp/again.json" 2>"$tmp/again.err" ||
    { cat "$tmp/again.err"; fail "second find-good failed"; }
python3 - "$tmp/again.json" "$(t 3)" <<'EOP'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["newest_good"] == sys.argv[2], r
assert r["points"] == 5, r
assert [t["cached"] for t in r["tried"]] == [True] * 4 + [False], r["tried"]
assert r["tried"][-1]["point"] == sys.argv[2] and r["tried"][-1]["verdict"] == "passed", r
assert all(t["run"] and t["report_dir"] for t in r["tried"]), r["tried"]
EOP
[ "$(sources | wc -l)" -eq 5 ] || fail "the second search did not boot exactly its answer again"
[ "$(sources | tail -n 1)" = "web1@$(t 3)" ] || fail "the second search booted another point"

# An RTO no run met: every cached pass fails it, and the search says so.
rc=0
bootback verify web1 --find-good --rto 1s --json >"$tmp/rto.json" 2>"$tmp/rto.err" || rc=$?
[ $rc -eq 2 ] || { cat "$tmp/rto.err"; fail "find-good --rto 1s: exit $rc, expected 2"; }
python3 - "$tmp/rto.json" <<'EOP'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["newest_good"] is None, r
assert any("over the RTO of 1 s" in t["reason"] for t in r["tried"] if t["cached"]), r["tried"]
EOP

# Every point bad: exit 2, naming the oldest.
for i in 1 2; do
    bootback import "$tmp/bad.img" --vm db1 --time "$(t $i)" >/dev/null
done
rc=0
bootback verify db1 --find-good >"$tmp/none" 2>&1 || rc=$?
cat "$tmp/none"
[ $rc -eq 2 ] || fail "find-good with no good point: exit $rc, expected 2"
grep -q "^no good point: db1@$(t 1), the oldest of 2, failed" "$tmp/none" ||
    fail "no good point was not said"

expect_rc 1 bootback verify "web1@$(t 2)" --find-good
expect_rc 1 bootback verify web1 --recheck
expect_rc 1 bootback verify --all --latest --find-good
echo "OK"
