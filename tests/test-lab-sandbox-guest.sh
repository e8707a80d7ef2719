#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Into, out of and back in time in a sandbox (`lab up` of two tiny VMs, one
# from an image, one from a restore point):
#  - lab exec: the command's output and exit status (also of a failing
#    one), the guest's control bytes escaped in --json and on a terminal,
#    --timeout, --max-output, an output too large for libvirt, a VM the
#    lab does not have;
#  - lab cp in and out, byte-equal (cmp) and 0600 on the host; a guest
#    path that does not exist is an error naming the VM and the path, and
#    leaves nothing on the host; a /proc file (no size) is copied; a
#    symbolic link at DST is replaced, not followed; --max-size stops a
#    copy and leaves nothing;
#  - lab console driven without a terminal: output the guest writes to
#    its serial port is shown, a line sent in reaches a shell there; on a
#    terminal (script(1)) Ctrl-] ends it; the restore point's file console
#    is followed read-only;
#  - lab checkpoint, a change, lab reset NAME brings the old content back
#    in both VMs; lab reset (no name) brings the restore point's and the
#    image's content back and removes the checkpoints;
#  - lab extend moves the expiry lab list --json shows;
#  - a reset to the point with an isolation property broken stops the VMs.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

# Two VMs: vm from an image, web1 from a restore point (an instant session).
export BOOTBACK_DOMAIN_TYPE=qemu
lab_test_start --repo nbdkit
lab_image vm tiny 10.77.0.31
lab_point_files web1 21
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/web1.xml" >/dev/null
cat >"$tmp/sbx.yaml" <<EOF2
name: sbx
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
verify:
  - name: vm
    image: $tmp/vm.img
    address: 10.77.0.31
    checks: [heartbeat]
  - name: web1
    point: latest
    address: 10.77.0.21
    checks: [heartbeat]
EOF2
bootback lab up "$tmp/sbx.yaml" --lease 1h --quiet >"$tmp/up.out" ||
    { cat "$tmp/up.out"; fail "lab up failed"; }
id=$(lab_ids)
cleanup_fn "bootback lab down $id >/dev/null 2>&1 || true"
ex () { bootback lab exec "$id" vm -- "$@"; }

# ---- exec ----------------------------------------------------------------
rc=0
ex /bin/sh -c 'echo hello; echo oops >&2; exit 3' >"$tmp/o" 2>"$tmp/e" || rc=$?
[ $rc -eq 3 ] || fail "exec: exit $rc, expected the command's 3"
[ "$(cat "$tmp/o")" = hello ] || fail "exec: stdout '$(cat "$tmp/o")'"
[ "$(cat "$tmp/e")" = oops ] || fail "exec: stderr '$(cat "$tmp/e")'"
rc=0; ex /bin/false || rc=$?
[ $rc -eq 1 ] || fail "exec /bin/false: exit $rc"
bootback lab exec "$id" vm --json -- /bin/sh -c 'printf "\033]0;owned\007hi\n"; exit 5' \
    >"$tmp/j" || [ $? -eq 5 ] || fail "exec --json: wrong exit status"
python3 - "$tmp/j" <<'EOP' || fail "exec --json: $(cat "$tmp/j")"
import json, sys
raw = open(sys.argv[1], "rb").read()
assert b"\x1b" not in raw and b"\x07" not in raw, "raw control bytes printed"
j = json.loads(raw)
assert j["exit_code"] == 5 and j["stdout"] == "\x1b]0;owned\x07hi\n", j
assert j["timed_out"] is False and j["stderr"] == "", j
EOP
# On a terminal the guest's control bytes are shown escaped.
cat >"$tmp/ttyexec" <<EOF2
exec "$BOOTBACK" lab exec $id vm -- /bin/sh -c 'printf "a\\033[2Jb\\n"'
EOF2
script -qec "bash $tmp/ttyexec" /dev/null >"$tmp/tty" ||
    { cat -v "$tmp/tty"; fail "exec on a terminal failed"; }
grep -q 'a\\x1b\[2Jb' "$tmp/tty" && ! grep -q $'\x1b' "$tmp/tty" ||
    { cat -v "$tmp/tty"; fail "exec on a terminal: control bytes not escaped"; }
[ "$(bootback lab exec "$id" vm --max-output 1K -- /bin/sh -c 'head -c 100000 /dev/zero' \
       2>"$tmp/e" | wc -c)" = 1024 ] && grep -q "output was cut" "$tmp/e" ||
    fail "exec --max-output: not cut to 1 KiB"
rc=0; bootback lab exec "$id" vm -- /bin/sh -c 'head -c 5000000 /dev/zero' >/dev/null \
    2>"$tmp/e" || rc=$?
[ $rc -eq 255 ] && grep -q "write more to a file and copy it out" "$tmp/e" ||
    { cat "$tmp/e"; fail "exec of 5 MB output: exit $rc"; }
rc=0; bootback lab exec "$id" nosuchvm -- /bin/true 2>"$tmp/e" || rc=$?
[ $rc -eq 255 ] && grep -q "lab $id has no VM nosuchvm" "$tmp/e" ||
    { cat "$tmp/e"; fail "exec in a VM the lab lacks: exit $rc"; }
rc=0; bootback lab exec "$id" vm --timeout 1s -- /bin/sleep 30 2>"$tmp/e" || rc=$?
[ $rc -eq 124 ] && grep -q "still runs after 1 s" "$tmp/e" ||
    { cat "$tmp/e"; fail "exec --timeout: exit $rc, expected 124"; }
echo "exec: output, exit status 3, 1, 5 (--json, escaped), escaped on a terminal, 124 (timeout), 255 (no such VM)"

# ---- cp ------------------------------------------------------------------
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$tmp/rand"
BOOTBACK_PROGRESS=1 bootback lab cp "$id" "$tmp/rand" vm:/rand.bin 2>"$tmp/progress" |
    tee "$tmp/cpin"
grep -aq "rand .*%" "$tmp/progress" || fail "cp: no progress line"
bootback lab cp "$id" vm:/rand.bin "$tmp/back" | tee "$tmp/cpout"
cmp "$tmp/rand" "$tmp/back" || fail "cp: the file that came back differs"
[ "$(stat -c %a "$tmp/back")" = 600 ] || fail "cp: host copy is not 0600"
[ "$(ex /bin/sh -c 'wc -c < /rand.bin' | tr -d ' ')" = $((3 * 1024 * 1024 + 12345)) ] ||
    fail "cp in: wrong size in the guest"
rc=0; bootback lab cp "$id" vm:/nope/missing.txt "$tmp/missing" 2>"$tmp/e" || rc=$?
[ $rc -eq 1 ] && grep -q "VM vm: cannot open /nope/missing.txt in the guest" "$tmp/e" ||
    { cat "$tmp/e"; fail "cp of a missing guest path: exit $rc"; }
[ ! -e "$tmp/missing" ] && ! ls -a "$tmp" | grep -q 'bootback-.*\.tmp' ||
    fail "cp of a missing guest path left a file"
# A file that cannot seek (/proc): copied all the same.
bootback lab cp "$id" vm:/proc/cpuinfo "$tmp/cpuinfo" >/dev/null
grep -q '^processor' "$tmp/cpuinfo" || fail "cp of /proc/cpuinfo: $(head -c 200 "$tmp/cpuinfo")"
# DST a symbolic link: replaced, its target untouched; --max-size: nothing written.
echo victim >"$tmp/victim"
ln -s "$tmp/victim" "$tmp/link"
bootback lab cp "$id" vm:/etc/passwd "$tmp/link" >/dev/null
[ "$(cat "$tmp/victim")" = victim ] && [ ! -L "$tmp/link" ] && [ -f "$tmp/link" ] ||
    fail "cp: followed a symbolic link at DST"
rc=0; bootback lab cp "$id" vm:/rand.bin "$tmp/capped" --max-size 1M 2>"$tmp/e" || rc=$?
[ $rc -eq 1 ] && grep -q "larger than --max-size" "$tmp/e" && [ ! -e "$tmp/capped" ] ||
    { cat "$tmp/e"; fail "cp --max-size: exit $rc"; }
echo "cp: in $(grep -o '[0-9.]* MiB/s' "$tmp/cpin"), out $(grep -o '[0-9.]* MiB/s' "$tmp/cpout"), byte-equal, 0600; missing path named"

# ---- console -------------------------------------------------------------
# A shell on the guest's serial port (the tiny image has none there).
ex /bin/sh -c 'setsid /bin/sh -c "exec /bin/sh </dev/ttyS0 >/dev/ttyS0 2>&1" \
    </dev/null >/dev/null 2>&1 &'
# Waited for, not slept on (lab console may take seconds to attach on a
# loaded host, and the shell to open the port): what the guest writes is
# written again until the console shows it, then the line is sent again
# until its answer shows; then stdin ends.
{
    for (( i = 0; i < 120 * slow; i++ )); do
        ex /bin/sh -c 'echo written-by-exec > /dev/ttyS0' </dev/null >/dev/null 2>&1 || true
        sleep 0.5
        grep -q written-by-exec "$tmp/console" 2>/dev/null && break
    done
    for (( i = 0; i < 60 * slow; i++ )); do
        echo 'echo from-console-$((6*7))'
        sleep 1
        grep -q from-console-42 "$tmp/console" 2>/dev/null && break
    done
} | bootback lab console "$id" vm --wait 2s >"$tmp/console" 2>"$tmp/console.err" &
cpid=$!
wait $cpid || { cat "$tmp/console.err"; fail "lab console failed"; }
grep -q written-by-exec "$tmp/console" || { cat "$tmp/console"; fail "console: no output"; }
grep -q from-console-42 "$tmp/console" || { cat "$tmp/console"; fail "console: input lost"; }
# On a terminal: attached until Ctrl-] (as virsh console).
cat >"$tmp/con.sh" <<EOF2
exec "$BOOTBACK" lab console $id vm
EOF2
rc=0
{
    wait_log "$tmp/con.out" "escape character is" || true
    for (( i = 0; i < 120 * slow; i++ )); do
        ex /bin/sh -c 'echo tty-marker > /dev/ttyS0' </dev/null >/dev/null 2>&1 || true
        sleep 0.5
        grep -q tty-marker "$tmp/con.out" 2>/dev/null && break
    done
    printf '\035'; sleep 1
} | timeout $(( 150 * slow )) script -qec "bash $tmp/con.sh" /dev/null >"$tmp/con.out" || rc=$?
[ $rc -eq 0 ] && grep -q "escape character is ^]" "$tmp/con.out" && grep -q tty-marker "$tmp/con.out" ||
    { cat -v "$tmp/con.out"; fail "console on a terminal: exit $rc"; }
# web1's saved definition writes its serial port to a file: followed read-only.
bootback lab exec "$id" web1 -- /bin/sh -c 'echo web1-marker > /dev/ttyS0'
bootback lab console "$id" web1 --wait 1s </dev/null >"$tmp/console1" 2>"$tmp/console1.err" ||
    { cat "$tmp/console1.err"; fail "lab console of web1 failed"; }
grep -q "following its log read-only" "$tmp/console1.err" && grep -q web1-marker "$tmp/console1" ||
    { cat "$tmp/console1.err" "$tmp/console1"; fail "console of web1: its log not shown"; }
echo "console: output shown, a line typed reached the guest's shell, Ctrl-] ends it on a terminal; a file console followed"

# ---- checkpoint, reset (both VMs) ----------------------------------------
both () { ex "$@" && bootback lab exec "$id" web1 -- "$@"; }
both /bin/sh -c 'echo one > /state.txt; sync'
bootback lab checkpoint "$id" c1 | tee "$tmp/cp1"
both /bin/sh -c 'echo two > /state.txt; sync'
bootback lab checkpoints "$id" --json | python3 -c '
import json, sys; assert [c["name"] for c in json.load(sys.stdin)] == ["c1"]' ||
    fail "lab checkpoints does not list c1"
bootback lab reset "$id" c1 | tee "$tmp/r1"
[ "$(both /bin/cat /state.txt)" = "one
one" ] || fail "reset c1: /state.txt is not back to one in both VMs"
# (the VMs boot again, under TCG: the default 2 min for their agents was
# not always enough on a loaded host)
bootback lab reset "$id" --timeout "$(( 600 * slow ))s" | tee "$tmp/r0"
for v in vm web1; do
    rc=0; bootback lab exec "$id" $v -- /bin/cat /state.txt >/dev/null 2>&1 || rc=$?
    [ $rc -eq 1 ] || fail "reset to the point: /state.txt still in $v (exit $rc)"
done
rc=0; ex /bin/cat /rand.bin >/dev/null 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "reset to the point: /rand.bin still there"
[ "$(bootback lab checkpoints "$id" --json)" = "[]" ] || fail "reset: checkpoints left"
bootback lab checkpoint "$id" c1 >/dev/null || fail "checkpoint c1 again after the reset failed"
echo "checkpoint $(grep -o 'in [0-9.]* s' "$tmp/cp1"), reset to it $(grep -o 'in [0-9.]* s' "$tmp/r1"), to the point $(grep -o 'in [0-9.]* s' "$tmp/r0")"

# ---- extend --------------------------------------------------------------
exp () { bootback lab list --json | python3 -c '
import json, sys; print([l for l in json.load(sys.stdin) if l["id"] == sys.argv[1]][0]["expires"])' "$id"; }
before=$(exp)
bootback lab extend "$id" --lease 3h
after=$(exp)
now=$(date +%s)
[ $((after - now - 10800)) -le 5 ] && [ $((after - now - 10800)) -ge -60 ] && [ "$after" -gt "$before" ] ||
    fail "extend: expires $before -> $after (now $now)"
bootback lab reap >/dev/null
[ "$(lab_ids)" = "$id" ] || fail "lab reap removed the extended sandbox"
echo "extend: expiry moved by $((after - before)) s"

# Fail closed: a reset to the point with an isolation property broken
# stops the VMs; lab down still removes everything.
sysctl -q -w "net.ipv4.conf.bbl${id}br.arp_ignore=0"
rc=0; bootback lab reset "$id" 2>"$tmp/e" || rc=$?
[ $rc -eq 1 ] && grep -q "its VMs were stopped.*isolation: arp" "$tmp/e" ||
    { cat "$tmp/e"; fail "reset with arp_ignore broken: exit $rc"; }
! grep -q "^bbl-$id-" <<< "$(virsh -q list --name)" || fail "reset with arp_ignore broken: VMs run"
echo "reset with an isolation property broken: refused, VMs stopped"
bootback lab down "$id" >/dev/null
lab_assert_gone "$id"
echo ok
