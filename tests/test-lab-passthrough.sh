#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A lab of a restore point whose saved definition asks for host-side
# backends (a VNC console on a TCP port, a host directory, a channel
# listening on a TCP port): the lab VM (a sandbox, `lab up`, so that its
# live domain can be read) runs without them, its QEMU listens on no TCP
# port, and the progress lines and report.json name each removal and
# replacement.  (Listeners on 127.0.0.1 so that the old code's behaviour
# stays on loopback; the rewrite treats every TCP listen address alike.)
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start --repo nbdkit ss
vnc=$((20000 + RANDOM % 10000))
chan=$((vnc + 1))
mkdir -p "$tmp/hostdir"
lab_point_files evil 31
"$top_srcdir/tests/lib/passthrough-xml" "$tmp/evil.xml" "$tmp/hostdir" "$vnc" "$chan"
bootback import "$tmp/evil.img" --vm evil --domain-xml "$tmp/evil.xml" >/dev/null

cat >"$tmp/lab.yaml" <<EOF2
name: evil
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
verify:
  - name: evil
    point: latest
    address: 10.77.0.31
    boot-timeout: 120s
    checks: [heartbeat]
EOF2
rc=0
bootback lab up "$tmp/lab.yaml" --lease 10m --report-dir "$tmp/r" >"$tmp/out" 2>"$tmp/err" ||
    rc=$?
cat "$tmp/err" "$tmp/out"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"])' "$tmp/r/report.json")
cleanup_fn "bootback lab down $id >/dev/null 2>&1"
[ $rc -eq 0 ] || fail "lab up: exit $rc"
dom="bbl-$id-evil"
virsh dumpxml "$dom" >"$tmp/live.xml"
if grep -q "<filesystem" "$tmp/live.xml"; then fail "the lab VM has the host directory"; fi
grep -q "<listen type='socket'" "$tmp/live.xml" || fail "the lab VM's graphics are not on a unix socket"
l=$(ss -ltnpH | grep "pid=$(libvirtd_domain_pid "$dom")," || true)
[ -z "$l" ] || fail "the lab VM's QEMU listens on TCP: $l"
grep -q "evil: removed <filesystem type='mount' accessmode='passthrough'> (source dir='$tmp/hostdir')" \
    "$tmp/err" || fail "the progress lines do not name the removed filesystem"
grep -q "evil: replaced <graphics type='vnc' port='$vnc'" "$tmp/err" ||
    fail "the progress lines do not name the replaced graphics"
python3 - "$tmp/r/report.json" "$tmp/hostdir" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
notes = r["vms"][0]["notes"]
assert any(n.startswith("removed <filesystem") and sys.argv[2] in n for n in notes), notes
assert any(n.startswith("replaced <graphics type='vnc'") for n in notes), notes
assert any(n.startswith("replaced <channel type='tcp'>") for n in notes), notes
EOF
bootback lab down "$id" >/dev/null
lab_assert_gone "$id"
echo ok
