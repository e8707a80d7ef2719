#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A restore point's domain XML is written by whoever controls the guest:
# what its <bb:verify> asks for must not act on the host (issue 13).
#  - a <check>script ...</check> that would create a file on the host is
#    refused, never run: the marker file does not appear, the output names
#    the refused check and the VM, and the rest of the verification
#    (heartbeat, ping, tcp) still runs and passes;
#  - an <address> carrying YAML (a second lab VM booting a host file) is
#    refused with an error naming it, and nothing boots.
# One VM of the tiny image, one boot.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start --repo nbdkit
lab_point_files web1 21
marker=$tmp/marker-from-the-guest

# An old point whose <address> carries YAML: a second VM booting a host file.
evil='10.77.0.21\&#10;  - name: evil\&#10;    image: /etc/hostname\&#10;    boot-timeout: 1s\&#10;    address: 10.77.0.23'
sed "s|</name>|</name><metadata><bb:verify xmlns:bb=\"urn:bootback:verify:1\"><bb:address>$evil</bb:address></bb:verify></metadata>|" \
    "$tmp/web1.xml" >"$tmp/evil-address.xml"
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/evil-address.xml" \
    --time 20250101T000000Z >/dev/null
# The newest point asks for a host-side script next to guest-facing checks.
sed "s|</name>|</name><metadata><bb:verify xmlns:bb=\"urn:bootback:verify:1\"><bb:address>10.77.0.21</bb:address><bb:check>script /bin/sh -c \"touch $marker\"</bb:check><bb:check>tcp 7</bb:check></bb:verify></metadata>|" \
    "$tmp/web1.xml" >"$tmp/script.xml"
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/script.xml" >/dev/null

# The hostile address: refused before anything boots, the error names it.
rc=0
bootback verify web1@20250101T000000Z --report-dir "$tmp/r0" >"$tmp/out0" 2>"$tmp/err0" || rc=$?
cat "$tmp/err0" "$tmp/out0"
[ $rc -eq 1 ] || fail "verify of the point with a hostile <address>: exit $rc, expected 1"
grep -q "web1@20250101T000000Z" "$tmp/err0" || fail "the error does not name the restore point"
grep -qF "<address> of its <bb:verify>: address: '10.77.0.21\\n  - name: evil" "$tmp/err0" ||
    fail "the error does not name the hostile address"
grep -q "is not an IPv4 address" "$tmp/err0" || fail "the error does not say what is wrong"
grep -q "evil" "$tmp/out0" && fail "a lab VM 'evil' was made from the hostile address"
[ ! -e "$tmp/r0" ] || fail "a lab ran for the point with a hostile address"
[ -z "$(lab_ids)" ] || fail "labs left: $(lab_ids)"

# The script check: refused and named; the guest-facing checks still run.
rc=0
bootback verify web1 --report-dir "$tmp/r1" >"$tmp/out1" 2>"$tmp/err1" || rc=$?
cat "$tmp/err1" "$tmp/out1"
[ ! -e "$marker" ] && echo "no marker on the host: the script did not run" ||
    fail "the restore point's script check ran on the host (created $marker)"
[ $rc -eq 2 ] || fail "verify with a refused check: exit $rc, expected 2"
grep -qF "refused check 'script /bin/sh -c \"touch $marker\"'" "$tmp/err1" ||
    fail "stderr does not name the refused check and the VM"
grep -q "^bootback: web1@2[0-9T]*Z: refused check 'script " "$tmp/err1" ||
    fail "stderr does not name the VM of the refused check"
grep -qF "failed: script /bin/sh -c \"touch $marker\": refused: a script check runs on the host" "$tmp/out1" ||
    fail "the summary does not name the refused check"
python3 - "$tmp/r1/report.json" <<'EOP'
import json, sys
r = json.load(open(sys.argv[1]))
c = {x["name"]: x for x in r["vms"][0]["checks"]}
def fail(m):
    print("FAIL:", m); print(json.dumps(r, indent=1)); sys.exit(1)
for name in ("heartbeat", "ping", "tcp 7", "screenshot"):
    if c.get(name, {}).get("status") != "pass": fail("%s did not pass" % name)
refused = [x for x in c.values() if x["kind"] == "refused"]
if len(refused) != 1 or refused[0]["status"] != "fail" or \
   not refused[0]["name"].startswith("script /bin/sh"): fail("refused: %s" % refused)
if "host" not in refused[0]["message"]: fail("refusal message: %s" % refused[0]["message"])
print("report ok:", refused[0]["name"], "->", refused[0]["message"])
EOP
lab_report_check "$tmp/r1"
[ -z "$(lab_ids)" ] || fail "labs left: $(lab_ids)"
echo ok
