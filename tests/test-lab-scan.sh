#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The lab's scan check on restore points of the tiny image: a clean point
# passes; a point with EICAR (a custom .hdb) under a hostile name
# (<script>, quotes) fails with the signature, the path, the disk and the
# partition named (lab run exit 2), and every report says so with the
# name escaped (report.json keeps it as data, report.html and junit.xml
# hold no raw markup; JUnit validates against verify/junit.xsd); a point
# whose rules do not load is "could not verify", never a pass.  verify
# --check scan reuses the catalog's verdict and --force passes the
# infected point, saying so (exit 0); a scan that cannot complete makes
# verify exit 1.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start --repo nbdkit debugfs md5sum xmllint
getent passwd nobody >/dev/null || skip "no user nobody"
lab_point_files clean1 21
lab_point_files evil1 22
lab_point_files norules 23

sig=$tmp/sig; mkdir -p "$sig"
printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$tmp/eicar.com"
echo "$(md5sum <"$tmp/eicar.com" | cut -d' ' -f1):68:Test.Eicar.HDB" >"$sig/test.hdb"
echo 'rule broken { condition: ' >"$tmp/corrupt.yar"
# the name a hostile guest gives its file (no kernel mount: debugfs, which
# cannot write a '"'; the unit test verify/test-report has one); the scan
# shows its backslash as \x5c
name="<script>alert('x&y')<\\script>.com"
shown="<script>alert('x&y')<\\x5cscript>.com"
root="$tmp/evil1.img?offset=$((67584 * 512))"
printf 'mkdir /srv/x\ncd /srv/x\nwrite %s "%s"\n' "$tmp/eicar.com" "$name" |
    debugfs -w -f - "$root" >/dev/null 2>&1
debugfs -R "ls -l /srv/x" "$root" 2>/dev/null | grep -qF "<script>" ||
    fail "the fixture file was not planted"
for vm in clean1 evil1 norules; do
    bootback import "$tmp/$vm.img" --vm "$vm" --domain-xml "$tmp/$vm.xml" >/dev/null
done

cat >"$tmp/lab.yaml" <<EOF2
name: scanlab
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
defaults: { boot-timeout: 120s, retries: 2 }
verify:
  - name: clean1
    address: 10.77.0.21
    checks: [ping, "scan signatures $sig"]
  - name: evil1
    address: 10.77.0.22
    checks: [ping, { scan: , signatures: "$sig" }]
  - name: norules
    address: 10.77.0.23
    checks: [ping, "scan rules $tmp/corrupt.yar signatures $sig"]
EOF2
bootback lab validate "$tmp/lab.yaml" >/dev/null
rc=0
bootback lab run "$tmp/lab.yaml" --report-dir "$tmp/r1" >"$tmp/out1" 2>"$tmp/err1" || rc=$?
cat "$tmp/err1" "$tmp/out1"
[ $rc -eq 2 ] || fail "lab run with an infected point: exit $rc, expected 2"
grep -qF "failed: scan: infected: Test.Eicar.HDB.UNOFFICIAL (clamav) in /srv/x/$shown (disk vda partition 2)" \
    "$tmp/out1" || fail "the scan check's failure does not name the signature and the file"
lab_report_check "$tmp/r1"
python3 - "$tmp/r1/report.json" "/srv/x/$shown" <<'PY' || fail "report.json: scan results"
import json, sys
r = json.load(open(sys.argv[1]))
vms = {v["name"]: v for v in r["vms"]}
def scan_check(vm):
    return [c for c in vms[vm]["checks"] if c["kind"] == "scan"][0]
assert scan_check("clean1")["status"] == "pass", scan_check("clean1")
assert vms["clean1"]["scan"]["verdict"] == "clean", vms["clean1"]["scan"]
assert vms["clean1"]["status"] == "pass"
s = vms["evil1"]["scan"]
assert s["verdict"] == "found" and s["from"] == "scan", s
m = s["matches"][0]
assert (m["path"], m["rule"], m["disk"], m["partition"]) == \
    (sys.argv[2], "Test.Eicar.HDB.UNOFFICIAL", "vda", 2), m
assert scan_check("evil1")["status"] == "fail"
n = scan_check("norules")
assert n["status"] == "skip" and "could not verify" in n["message"], n
assert "corrupt.yar" in n["message"] and "syntax error" in n["message"], n
assert vms["norules"]["status"] == "fail"
PY
html=$tmp/r1/report.html
grep -qF "<script>" "$html" && fail "report.html holds the guest's raw <script>"
grep -qF "/srv/x/&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;\\x5cscript&gt;.com" "$html" ||
    fail "report.html does not show the infected file, escaped"
grep -qF "Malware scan of evil1@" "$html" || fail "report.html: no scan line for evil1"
grep -qF "<script>" "$tmp/r1/junit.xml" && fail "junit.xml holds the guest's raw <script>"
[ "$(xmllint --xpath 'string(//testsuite[@name="evil1"]/properties/property[@name="scan"]/@value)' \
      "$tmp/r1/junit.xml")" = found ] || fail "junit.xml: no scan verdict of evil1"
grep -qF "found: Test.Eicar.HDB.UNOFFICIAL (clamav) in /srv/x/<script>" <<< "$(xmllint --xpath \
    'string(//testsuite[@name="evil1"]/testcase[@name="scan"]/system-out)' "$tmp/r1/junit.xml")" ||
    fail "junit.xml: the scan check's output does not list the match"

# verify --check scan: the catalog's verdict (from the lab run), --force.
rc=0
bootback verify evil1 --address 10.77.0.22 --check "scan signatures $sig" --force \
    --report-dir "$tmp/r2" >"$tmp/out2" 2>"$tmp/err2" || rc=$?
cat "$tmp/err2" "$tmp/out2"
[ $rc -eq 0 ] || fail "verify --check scan --force of the infected point: exit $rc"
python3 - "$tmp/r2/report.json" <<'PY' || fail "verify --force: the check does not say it was forced"
import json, sys
v = json.load(open(sys.argv[1]))["vms"][0]
c = [c for c in v["checks"] if c["kind"] == "scan"][0]
assert c["status"] == "pass" and c["message"].startswith("--force: passed anyway, infected: Test.Eicar.HDB"), c
assert v["scan"]["from"] == "catalog", v["scan"]
PY

# a scan that cannot complete: could not verify (1), never a pass
rc=0
bootback verify norules --address 10.77.0.23 --check "scan rules $tmp/corrupt.yar" \
    --force --report-dir "$tmp/r3" >"$tmp/out3" 2>"$tmp/err3" || rc=$?
cat "$tmp/err3" "$tmp/out3"
[ $rc -eq 1 ] || fail "verify with a scan that cannot complete: exit $rc, expected 1"
grep -q "could not verify norules: scan: " "$tmp/out3" ||
    fail "the report does not say the scan could not verify norules"
for id in $(lab_ids); do lab_assert_gone "$id"; done
