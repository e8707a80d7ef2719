#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A lab leaves nothing behind (no domain, overlay, socket, bridge, veth,
# namespace, iptables rule, run directory):
#  - when a VM never boots (its boot sector loops, silently);
#  - when the run is interrupted by SIGINT while a VM boots, or by SIGTERM
#    while a check runs (exit 1, report status "interrupted");
#  - when the run is killed (SIGKILL): `lab list` shows it orphaned and
#    `lab reap` removes it;
#  - when a sandbox's lease has ended: `lab reap` removes it, and not
#    before;
# and lab runs together stay within the memory budget.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"
# Runs sent signals are started as "$BOOTBACK" itself (the bootback shell
# function would put a subshell between the signal and the program).

lab_test_start
lab_image good tiny 10.77.0.21
# A disk that never boots and says nothing: its boot sector is a loop
# (jmp $), so the boot wait can only end with the boot timeout.
truncate -s 64M "$tmp/blank.img"
printf '\xeb\xfe' | dd of="$tmp/blank.img" conv=notrunc status=none
printf '\x55\xaa' | dd of="$tmp/blank.img" bs=1 seek=510 conv=notrunc status=none

lab_yaml () {   # NAME IMAGE BOOT-TIMEOUT CHECKS
    cat >"$tmp/$1.yaml" <<EOF2
name: $1
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
verify:
  - name: vm
    image: $2
    address: 10.77.0.21
    boot-timeout: $3
    checks: $4
EOF2
}
report_field () { python3 -c 'import json,sys; print(eval(sys.argv[2]))' "$@"; }
wait_domain () {   # wait until a lab domain runs
    local i
    for (( i = 0; i < 300; i++ )); do
        grep -q '^bbl-' <<< "$(virsh -q list --name)" && return 0
        sleep 0.1
    done
    fail "no lab domain started"
}

# 1. A VM that never boots.
lab_yaml never "$tmp/blank.img" 8s "[heartbeat, ping, screenshot]"
rc=0
bootback lab run "$tmp/never.yaml" --report-dir "$tmp/r1" >"$tmp/out1" 2>&1 || rc=$?
[ $rc -eq 2 ] || { cat "$tmp/out1"; fail "never: exit $rc, expected 2"; }
grep -q "did not boot: no answer from the guest agent within the boot timeout of 8 s" \
    "$tmp/r1/report.json" || fail "never: no boot timeout in the report"
lab_assert_gone "$(report_field "$tmp/r1/report.json" 'json.load(open(sys.argv[1]))["run"]')"
echo "never boots: failed after the boot timeout, nothing left"

# 2. SIGINT while the VM boots.
lab_yaml int "$tmp/blank.img" 120s "[heartbeat]"
"$BOOTBACK" lab run "$tmp/int.yaml" --report-dir "$tmp/r2" >"$tmp/out2" 2>&1 &
pid=$!
wait_domain
id=$(lab_ids)
kill -INT $pid
rc=0; wait $pid || rc=$?
[ $rc -eq 1 ] || { cat "$tmp/out2"; fail "SIGINT: exit $rc, expected 1"; }
[ "$(report_field "$tmp/r2/report.json" 'json.load(open(sys.argv[1]))["status"]')" = interrupted ] ||
    fail "SIGINT: report status is not interrupted"
lab_assert_gone "$id"
echo "SIGINT while booting: exit 1, report says interrupted, nothing left"

# 3. SIGTERM while a check runs (a guest command that takes 60 s).
lab_yaml term "$tmp/good.img" 120s "[heartbeat, { guest-exec: 'sleep 60', timeout: 90s }]"
"$BOOTBACK" lab run "$tmp/term.yaml" --report-dir "$tmp/r3" >"$tmp/out3" 2>&1 &
pid=$!
for (( i = 0; i < 1200; i++ )); do
    grep -q "PASS heartbeat" "$tmp/out3" && break
    kill -0 $pid 2>/dev/null || { cat "$tmp/out3"; fail "the run ended early"; }
    sleep 0.1
done
id=$(lab_ids)
sleep 1
t0=$(date +%s.%N)
kill -TERM $pid
rc=0; wait $pid || rc=$?
echo "SIGTERM: the run ended $(echo "$(date +%s.%N) - $t0" | bc) s after the signal"
[ $rc -eq 1 ] || { cat "$tmp/out3"; fail "SIGTERM: exit $rc, expected 1"; }
[ "$(report_field "$tmp/r3/report.json" 'json.load(open(sys.argv[1]))["status"]')" = interrupted ] ||
    fail "SIGTERM: report status is not interrupted"
lab_assert_gone "$id"
echo "SIGTERM while checking: exit 1, nothing left"

# 4. SIGKILL: nothing can clean up in the process; lab reap does.
"$BOOTBACK" lab run "$tmp/int.yaml" --quiet >/dev/null 2>&1 &
pid=$!
wait_domain
id=$(lab_ids)
kill -KILL $pid
wait $pid 2>/dev/null || true
grep -q "^bbl-$id-" <<< "$(virsh -q list --name)" || fail "SIGKILL: expected the domain to be left"
bootback lab list | tee "$tmp/list4"
grep -q "$id .* orphaned" "$tmp/list4" || fail "lab list does not show the run orphaned"
bootback lab reap | tee "$tmp/reap4"
grep -q "reaped lab $id" "$tmp/reap4" || fail "lab reap did not reap $id"
lab_assert_gone "$id"
echo "SIGKILL: lab reap removed everything"

# 5. A sandbox is kept until its lease ends, then reaped.
rc=0
bootback lab up "$tmp/never.yaml" --lease 1h --quiet >"$tmp/out5" || rc=$?
[ $rc -eq 2 ] || { cat "$tmp/out5"; fail "sandbox: exit $rc, expected 2 (the VM does not boot)"; }
id=$(lab_ids)
grep -q "sandbox $id is up until" "$tmp/out5" || fail "lab up does not say how long it stays"
grep -q "ip netns exec bootback-lab-$id" "$tmp/out5" || fail "lab up does not say how to reach the lab"
# The memory budget: the sandbox holds 256 MiB of a 400 MiB budget; a second
# lab of 256 MiB waits for it (here at most 2 s, then gives up), one of
# 512 MiB is refused at once.
rc=0
bootback lab run "$tmp/never.yaml" --memory-budget 400M --wait 2s --quiet >/dev/null \
    2>"$tmp/err5" || rc=$?
[ $rc -eq 1 ] && grep -q "memory budget is taken: 256 of 400 MiB used" "$tmp/err5" ||
    { cat "$tmp/err5"; fail "the memory budget did not hold a second lab back"; }
sed 's/^    boot-timeout:/    memory: 512M\n    boot-timeout:/' "$tmp/never.yaml" >"$tmp/big.yaml"
rc=0
bootback lab run "$tmp/big.yaml" --memory-budget 400M --quiet >/dev/null 2>"$tmp/err5" || rc=$?
[ $rc -eq 1 ] && grep -q "more than the whole budget" "$tmp/err5" ||
    { cat "$tmp/err5"; fail "a lab larger than the budget was not refused"; }
echo "memory budget: a second lab waits for its share, a too large one is refused"
bootback lab reap >"$tmp/reap5"
grep -q "^bbl-$id-" <<< "$(virsh -q list --name)" || fail "lab reap removed a sandbox whose lease runs"
python3 - "$BOOTBACK_HOME/labs/$id/state.json" <<'EOP'
import json, sys, time
s = json.load(open(sys.argv[1])); s["expires"] = int(time.time()) - 1
json.dump(s, open(sys.argv[1], "w"))
EOP
bootback lab list | grep -q "$id .* expired" || fail "lab list does not show the lease ended"
bootback lab reap | grep -q "reaped lab $id (never): lease ended" || fail "lab reap: expired sandbox"
lab_assert_gone "$id"
echo "sandbox: kept while leased, reaped when the lease ended"
[ -z "$(lab_ids)" ] || fail "labs left: $(lab_ids)"
echo ok
