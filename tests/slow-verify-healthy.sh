#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A healthy restore point passes verification every time (issue 15: fail
# fast must not mean fail falsely): BOOTBACK_VERIFY_RUNS (default 20)
# verifications in a row of one tiny point with heartbeat, ping and HTTP
# checks.  Prints the pass rate and, per run, the time to app-ready; any
# failed run fails the test with its reason (goal: 100%).  make check-slow.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

runs=${BOOTBACK_VERIFY_RUNS:-20}
lab_test_start --repo nbdkit
lab_point_files web1 21
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/web1.xml" >/dev/null

passed=0 failed=0
for i in $(seq "$runs"); do
    rc=0
    bootback verify web1 --address 10.77.0.21 --http 'http://{address}/health' \
        --json --quiet >"$tmp/r$i.json" 2>"$tmp/r$i.err" || rc=$?
    line=$(python3 - "$tmp/r$i.json" <<'EOP' 2>/dev/null || echo "no report"
import json, sys
r = json.load(open(sys.argv[1]))
v = r["vms"][0]
why = "; ".join(c["name"] + ": " + c["message"] for c in v["checks"] if c["status"] == "fail")
print(r["status"], v["timings"]["app_ready"], r.get("message") or why)
EOP
)
    echo "run $i: exit $rc: $line"
    if [ $rc -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); cat "$tmp/r$i.err"; fi
done
echo "pass rate: $passed of $runs ($((100 * passed / runs))%)"
[ $failed -eq 0 ] || fail "$failed of $runs verifications of a healthy point failed"
