#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Labs of restore points, booted through instant recovery (transient
# sessions, throwaway overlays, production MAC and address, every NIC moved
# from the production bridge to the lab bridge):
#  - `lab run` with two application groups boots them in order (the web
#    group starts once the db group has booted and waited its delay), checks
#    pass, sessions end with their overlays discarded;
#  - `verify --all --latest` verifies the newest point of every VM, each in
#    a lab of its own, using $BOOTBACK_HOME/verify/VM.yaml when it exists,
#    else what the VM's domain XML says in its <metadata>;
#  - `history` shows the runs of a VM with its timings and trend;
#  - the lab run keeps each point's boot trace (catalog and repository).
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start --repo nbdkit
lab_point_files web1 21
lab_point_files db1 22
# db1's definition says how to verify it (<metadata>, kept in its points).
sed -i 's|</name>|</name><metadata><bb:verify xmlns:bb="urn:bootback:verify:1"><bb:address>10.77.0.22</bb:address><bb:check>tcp 7</bb:check></bb:verify></metadata>|' \
    "$tmp/db1.xml"
for vm in web1 db1; do
    bootback import "$tmp/$vm.img" --vm "$vm" --domain-xml "$tmp/$vm.xml" >/dev/null
done

cat >"$tmp/app.yaml" <<EOF2
name: app
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
defaults: { boot-timeout: 120s, retries: 3 }
groups:
  - name: db
    vms:
      - name: db1
        point: latest
        address: 10.77.0.22
        delay: 2s
        checks: [heartbeat, "tcp 7"]
  - name: web
    vms:
      - name: web1
        address: 10.77.0.21
        checks:
          - heartbeat
          - ping
          - http http://{address}/health contains '"identity":"web1"'
          - screenshot
EOF2
rc=0
bootback lab run "$tmp/app.yaml" --report-dir "$tmp/r1" >"$tmp/out1" 2>"$tmp/err1" || rc=$?
cat "$tmp/err1" "$tmp/out1"
[ $rc -eq 0 ] || fail "lab run of restore points: exit $rc"
# Boot order: web1 starts after db1 booted and its delay passed.
booted=$(grep -n 'db1: booted' "$tmp/err1" | cut -d: -f1)
started=$(grep -n 'web1: started' "$tmp/err1" | cut -d: -f1)
[ -n "$booted" ] && [ -n "$started" ] && [ "$started" -gt "$booted" ] ||
    fail "web1 started before db1 booted"
grep -q 'db1@2' "$tmp/r1/report.json" || fail "the report does not name the restore point"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"])' "$tmp/r1/report.json")
bootback sessions --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert len(s) == 2, s
for x in s:
    assert x["state"] == "stopped", x
    assert x["transient"], x
' || fail "the lab's instant sessions are not stopped"
lab_assert_gone "$id"
[ -z "$(find "$BOOTBACK_HOME" -name '*.qcow2')" ] || fail "an overlay is left"
[ -z "$(find "$BOOTBACK_HOME" -type s)" ] || fail "a socket is left"
# Each point's boot trace up to app-ready was kept, for the next boot.
[ "$(sqlite3 "$BOOTBACK_HOME/catalog.db" "SELECT count(*) FROM boot_traces WHERE chunks > 0")" = 2 ] ||
    fail "the lab run kept no boot trace of web1 and db1"
ls "$tmp"/repo/points/{web1,db1}/*/vda.trace >/dev/null || fail "no boot trace beside the points"

# verify --all --latest: web1 with its own definition (http), db1 quick.
mkdir -p "$BOOTBACK_HOME/verify"
cat >"$BOOTBACK_HOME/verify/web1.yaml" <<EOF2
name: verify-web1
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
verify:
  - name: web1
    address: 10.77.0.21
    checks: [heartbeat, "http http://{address}/health expect 200"]
EOF2
rc=0
bootback verify --all --latest >"$tmp/out2" 2>"$tmp/err2" || rc=$?
cat "$tmp/out2"
[ $rc -eq 0 ] || { cat "$tmp/err2"; fail "verify --all --latest: exit $rc"; }
grep -q "lab verify-web1: passed" "$tmp/out2" || fail "web1 not verified with its definition"
grep -q "lab verify-db1: passed (1 VM, 4 checks" "$tmp/out2" ||
    fail "db1 not verified with the checks of its <metadata> (heartbeat, ping, tcp 7, screenshot)"
grep -A3 "lab verify-web1" "$tmp/out2" | grep -q "report:" || true
[ -z "$(lab_ids)" ] || fail "labs left: $(lab_ids)"

bootback history web1 | tee "$tmp/hist"
[ "$(grep -c '^20' "$tmp/hist")" = 2 ] || fail "history of web1 should show 2 runs"
grep -q '^trend: time to app-ready' "$tmp/hist" || fail "no trend line"
echo ok
