#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# reread-timeout (issue 15, item 1: the badroot case).  A restore point
# whose root file system cannot be found (tiny-badroot: its superblock is
# zeroed) boots to an initramfs that polls for LABEL=bbroot, silently,
# re-reading the same superblocks, for 10 s or more before it gives up
# and drops to its shell.  `bootback verify` fails it as soon as the guest
# has done nothing but re-read chunks it read before, with no console
# output, for reread-timeout (5 s): the verdict names that rule and the
# seconds, not the shell the initramfs would have opened later.  With
# reread-timeout: 0 in a lab definition the same point fails on its
# console line, as before; a healthy point booted beside it passes with
# the rule on (the rule does not fire on healthy boots).
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start --repo nbdkit
tiny_copy badroot "$tmp/badroot.img"
"$top_srcdir/images/domain-xml" NAME=badroot DISK_PATH="$tmp/badroot.img" NET_TYPE=bridge \
    NET_SOURCE=prodbr0 MAC=52:54:00:b0:07:22 >"$tmp/badroot.xml"
bootback import "$tmp/badroot.img" --vm badroot --domain-xml "$tmp/badroot.xml" >/dev/null
lab_point_files web1 21
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/web1.xml" >/dev/null

rc=0
bootback verify badroot --check heartbeat --boot-timeout 10m --report-dir "$tmp/r1" \
    >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc -eq 2 ] || fail "verify of badroot: exit $rc, expected 2"
secs=$(sed -n 's/.*stalled in a wait: for \([0-9]*\) s it read only what it had read before.*(reread-timeout).*/\1/p' \
    "$tmp/out" | sed -n 1p)
[ -n "$secs" ] || fail "the verdict does not name reread-timeout"
[ "$secs" -ge 5 ] && [ "$secs" -le 8 ] || fail "re-read for $secs s, expected 5 to 8"
grep -q "initramfs emergency shell" "$tmp/out" &&
    fail "the verdict waited for the initramfs to give up"

cat >"$tmp/lab.yaml" <<EOF2
name: reread
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
verify:
  - { name: badroot, point: latest, reread-timeout: 0, checks: [heartbeat] }
  - { name: web1, point: latest, address: 10.77.0.21, checks: [heartbeat, "tcp 7"] }
EOF2
rc=0
bootback lab run "$tmp/lab.yaml" --parallel 2 --report-dir "$tmp/r2" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc -eq 2 ] || fail "lab run: exit $rc, expected 2 (badroot fails)"
python3 - "$tmp/r2/report.json" <<'EOP'
import json, sys
vms = {v["name"]: v for v in json.load(open(sys.argv[1]))["vms"]}
b, w = vms["badroot"], vms["web1"]
assert b["status"] == "fail", b
assert "initramfs emergency shell" in b["message"] and "reread-timeout" not in b["message"], b["message"]
assert w["status"] == "pass", w
print("badroot:", b["message"]); print("web1:", w["status"])
EOP
[ -z "$(lab_ids)" ] || fail "a lab is left: $(lab_ids)"
echo ok
