#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Recovery objectives and the summaries built on them (issue 15, item 4):
#   - bootback verify --rto 1s fails (exit 2) a point of the tiny image
#     with the check "rto" giving the measured time to application ready
#     (the one in the report's timings) and the target; --rpo 1d fails a
#     point 3 days and 4 hours old, naming it and its age;
#   - with --rto 10m and --rpo 1d on a fresh point, the same verify
#     passes, both checks passed with their values;
#   - bootback report --since 1d --json lists the VM with its 2
#     verifications, pass rate 50 %, RTO median, newest verified point;
#     --html writes a page with it;
#   - bootback history prints a regression of the time to application
#     ready against the median of the runs before (earlier, faster runs
#     put into the catalog), exits 2 with --fail-on-regression, and has
#     it as an object in --json;
#   - a lab VM that never boots fails its rto (from defaults:) with the
#     reason, and has no rpo check (an image);
#   - lab validate refuses rpo: on an image VM, at its line.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start --repo sqlite3
lab_point_files web1 21
old=$(date -u -d '-76 hours' +%Y%m%dT%H%M%SZ)
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/web1.xml" --time "$old" >/dev/null
[ "$(latest_id web1)" = "$old" ] || fail "the point is not $old"
# A point dated in 2099 (by whoever can write the repository) is not the
# newest for the RPO: it would make every RPO look met.
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/web1.xml" \
    --time 20991231T000000Z >/dev/null

# Over both targets: exit 2, each check failed with the measured value.
rc=0
bootback verify "web1@$old" --address 10.77.0.21 --check "tcp 7" --rto 1s --rpo 1d \
    --report-dir "$tmp/r1" >"$tmp/out" 2>"$tmp/err" || rc=$?
cat "$tmp/out" "$tmp/err"
[ $rc -eq 2 ] || fail "verify --rto 1s: exit $rc, expected 2"
lab_report_check "$tmp/r1"
python3 - "$tmp/r1/report.json" "$old" <<'EOP'
import json, re, sys
r = json.load(open(sys.argv[1])); old = sys.argv[2]
v = r["vms"][0]
checks = {c["name"]: c for c in v["checks"]}
rto, rpo = checks["rto"], checks["rpo"]
ready = v["timings"]["app_ready"]
assert v["status"] == "fail" and ready and ready > 1, v
assert rto["status"] == "fail" and rto["kind"] == "rto", rto
m = re.fullmatch(r"application ready after (?:(\d+)m)?([\d.]+)s, over the RTO of 1s",
                 rto["message"])
assert m, rto["message"]
took = int(m.group(1) or 0) * 60 + float(m.group(2))
assert abs(took - ready) <= (1 if m.group(1) else 0.051), (took, ready)   # as measured
assert rpo["status"] == "fail", rpo
assert rpo["message"] == "newest point %s is 3d4h old, over the RPO of 1d" % old, rpo["message"]
# every other check passed: the targets alone failed it
assert all(c["status"] == "pass" for c in v["checks"] if c["name"] not in ("rto", "rpo")), v
print("rto:", rto["message"]); print("rpo:", rpo["message"])
EOP
grep -q 'type="rto"' "$tmp/r1/junit.xml" || fail "junit.xml has no failure of type rto"
grep -q "failed: rto: application ready after" "$tmp/out" || fail "the summary does not name the rto check"

# A fresh point within both targets: exit 0.
rm -rf "$tmp/repo/points/web1/20991231T000000Z"
# removed by hand, not by prune: writers refuse until it is accepted
expect_rc 1 bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/web1.xml"
grep -q "web1@20991231T000000Z" "$tmp/err" || fail "the point removed by hand is not named: $(cat "$tmp/err")"
bootback repo check --accept-rollback >/dev/null || fail "repo check --accept-rollback"
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/web1.xml" >/dev/null
new=$(latest_id web1)
bootback verify web1 --address 10.77.0.21 --check "tcp 7" --rto 10m --rpo 1d \
    --report-dir "$tmp/r2" >"$tmp/out" || { cat "$tmp/out"; fail "verify --rto 10m --rpo 1d"; }
python3 - "$tmp/r2/report.json" "$new" <<'EOP'
import json, re, sys
v = json.load(open(sys.argv[1]))["vms"][0]; new = sys.argv[2]
checks = {c["name"]: c for c in v["checks"]}
assert v["status"] == "pass", v
assert re.fullmatch(r"application ready after [\dms.]+, within the RTO of 10m",
                    checks["rto"]["message"]), checks["rto"]
assert re.fullmatch(r"newest point %s is [\dms.]+ old, within the RPO of 1d" % new,
                    checks["rpo"]["message"]), checks["rpo"]
EOP
ready2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vms"][0]["timings"]["app_ready"])' \
             "$tmp/r2/report.json")

# The report: 2 verifications in the last day, one passed.
bootback report --since 1d --json --html "$tmp/report.html" >"$tmp/report.json"
python3 - "$tmp/report.json" "$new" "$ready2" <<'EOP'
import json, sys
j = json.load(open(sys.argv[1])); new = sys.argv[2]; ready = float(sys.argv[3])
vms = {v["vm"]: v for v in j["vms"]}
w = vms["web1"]
assert w["verifications"] == 2 and w["passed"] == 1 and w["pass_rate"] == 0.5, w
assert w["points"] == 2 and w["points_in_window"] == 1, w
assert abs(w["rto_median"] - ready) < 1e-6 and abs(w["rto_p95"] - ready) < 1e-6, w
assert w["newest_verified_point"]["id"] == new and w["newest_point"]["id"] == new, w
print("report:", w)
EOP
grep -q "<td>web1</td><td>1</td><td>2</td><td>2</td><td class=\"fail\">50%</td>" \
    "$tmp/report.html" || fail "report.html does not have web1's row"
bootback report --since 1d web1 >"$tmp/out"
grep -Eq "^web1 +1/2 +2 +50% " "$tmp/out" || { cat "$tmp/out"; fail "report: the table"; }
expect_rc 1 bootback report verify
expect_rc 1 bootback report --since soon
grep -q "invalid duration 'soon'" "$tmp/err" || fail "report --since soon: the error"

# History: three earlier runs were application ready in 0.5 s; the newest
# is a regression against their median.
db=$BOOTBACK_HOME/catalog.db
for k in 1 2 3; do
    sqlite3 "$db" "INSERT INTO lab_runs (run, lab, kind, started, status)
                   VALUES ('old$k', 'verify-web1', 'verify', strftime('%s','now') - 90000 - $k, 'passed');
                   INSERT INTO lab_vms (run_id, vm, source, status, t_app_ready)
                   VALUES (last_insert_rowid(), 'web1', 'web1@$old', 'pass', 0.5);"
done
bootback history web1 >"$tmp/out"
cat "$tmp/out"
grep -Eq "^regression: time to app-ready [0-9.]+ s in the last run .*, 0\.5 s median of the 4 runs before: \+[0-9]+%, over the threshold of 50%$" \
    "$tmp/out" || fail "history: no regression line with both numbers"
expect_rc 2 bootback history web1 --fail-on-regression
bootback history web1 --json >"$tmp/hist.json"
python3 - "$tmp/hist.json" "$ready2" <<'EOP'
import json, sys
h = json.load(open(sys.argv[1])); ready = float(sys.argv[2])
r = h[-1]["regression"]
assert r["regression"] is True and r["median"] == 0.5 and r["previous_runs"] == 4, r
assert abs(r["t_app_ready"] - ready) < 1e-6 and r["threshold_percent"] == 50, r
assert all(x.get("regression") is None for x in h[:-1]), h
EOP
bootback history web1 --threshold 100000% --fail-on-regression >"$tmp/out" ||
    fail "history --threshold 100000%: a regression"
grep -q "^regression:" "$tmp/out" && fail "history --threshold 100000%: prints a regression"

# A VM that never gets application ready fails its rto with the reason
# (rto: from defaults:, in a lab run).
tiny_copy nombr "$tmp/nombr.img"
cat >"$tmp/never.yaml" <<EOF2
name: never
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
defaults: { rto: 10m, rpo: 1d }
verify:
  - { name: nombr, image: $tmp/nombr.img, checks: [heartbeat] }
EOF2
rc=0
bootback lab run "$tmp/never.yaml" --report-dir "$tmp/r3" >"$tmp/out" || rc=$?
cat "$tmp/out"
[ $rc -eq 2 ] || fail "lab run of a disk with no boot sector: exit $rc, expected 2"
python3 - "$tmp/r3/report.json" <<'EOP'
import json, sys
v = json.load(open(sys.argv[1]))["vms"][0]
checks = {c["name"]: c for c in v["checks"]}
m = checks["rto"]["message"]
assert checks["rto"]["status"] == "fail", checks["rto"]
assert m.startswith("never application ready (did not boot: the disk has no boot sector"), m
assert m.endswith("), RTO 10m"), m
assert "rpo" not in checks, checks          # an image has no restore points
EOP

# rpo: on an image VM is an error at its line.
cat >"$tmp/lab.yaml" <<EOF2
name: objectives
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
defaults: { rto: 5m, rpo: 1d }
verify:
  - name: img
    image: $tmp/web1.img
    rpo: 2d
EOF2
expect_rc 2 bootback lab validate "$tmp/lab.yaml"
grep -q "lab.yaml:7: VM img: rpo: applies to restore points" "$tmp/err" ||
    fail "lab validate: rpo: on an image VM not refused at its line"
[ -z "$(lab_ids)" ] || fail "a lab is left: $(lab_ids)"
echo ok
