#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A restore point whose saved definition asks for host-side backends (as
# anyone who controlled the VM's definition could): a VNC console on a TCP
# port (the backup drops its password), a host directory shared with the
# guest, a char device channel listening on a TCP port.  `bootback
# instant` boots it without them: the live domain has no <filesystem>,
# its graphics are VNC on a unix socket, the channel is a unix socket, and
# its QEMU listens on no TCP port; the output names each removal and
# replacement (stderr, and "notes" in --json).  With --allow-passthrough
# the administrator gets the original console back.  (The listeners are on
# 127.0.0.1 here so that the old code's behaviour stays on loopback; the
# rewrite treats every TCP listen address alike.)
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires ss
instant_setup

vnc=$((20000 + RANDOM % 10000))
chan=$((vnc + 1))
mkdir -p "$tmp/hostdir"
echo "host secret" >"$tmp/hostdir/secret"
tiny_copy tiny "$tmp/tiny.img"
"$top_srcdir/images/domain-xml" NAME=tiny DISK_PATH="$tmp/tiny.img" \
    NET_SOURCE="$NETNS_BRIDGE" >"$tmp/tiny.xml"
"$top_srcdir/tests/lib/passthrough-xml" "$tmp/tiny.xml" "$tmp/hostdir" "$vnc" "$chan"
bootback import "$tmp/tiny.img" --vm tiny --domain-xml "$tmp/tiny.xml" >/dev/null
rm "$tmp/tiny.img"

# TCP listeners of a domain's QEMU ("" if none).
listeners () {
    local pid
    pid=$(libvirtd_domain_pid "$1")
    ss -ltnpH | grep "pid=$pid," || true
}

bootback instant tiny --agent-timeout 0 --json >"$tmp/out.json" 2>"$tmp/err" ||
    { cat "$tmp/err"; fail "instant of the point failed"; }
cat "$tmp/err"
virsh dumpxml tiny >"$tmp/live.xml"
if grep -q "<filesystem" "$tmp/live.xml"; then
    fail "the host directory is passed to the guest: $(grep -A3 '<filesystem' "$tmp/live.xml")"
fi
if grep -q "$tmp/hostdir" "$tmp/live.xml"; then fail "the live XML names the host directory"; fi
grep -q "<listen type='socket'" "$tmp/live.xml" || fail "graphics are not on a unix socket"
if grep -qE "port='($vnc|$chan)'|service='$chan'|127\.0\.0\.1" "$tmp/live.xml"; then
    fail "a TCP listener in the live XML: $(grep -E "$vnc|$chan|127\.0\.0\.1" "$tmp/live.xml")"
fi
l=$(listeners tiny)
[ -z "$l" ] || fail "QEMU listens on TCP: $l"
grep -q "removed <filesystem type='mount' accessmode='passthrough'> (source dir='$tmp/hostdir'): a host directory" \
    "$tmp/err" || fail "the removal of the filesystem is not named"
grep -q "replaced <graphics type='vnc' port='$vnc' autoport='no' listen='127.0.0.1'> by VNC on a unix socket" \
    "$tmp/err" || fail "the replacement of the graphics is not named"
grep -q "replaced <channel type='tcp'> (source mode='bind' host='127.0.0.1' service='$chan') by a unix socket" \
    "$tmp/err" || fail "the replacement of the tcp channel is not named"
python3 - "$tmp/out.json" "$tmp/hostdir" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
notes = s["notes"]
assert any(n.startswith("removed <filesystem") and sys.argv[2] in n for n in notes), notes
assert any(n.startswith("replaced <graphics type='vnc'") for n in notes), notes
assert any(n.startswith("replaced <channel type='tcp'>") for n in notes), notes
EOF
bootback instant stop tiny --discard >/dev/null

# The administrator who trusts the point keeps its console.
bootback instant tiny --agent-timeout 0 --allow-passthrough 2>"$tmp/err" >/dev/null ||
    { cat "$tmp/err"; fail "instant --allow-passthrough failed"; }
if grep -q "removed <filesystem\|replaced <graphics" "$tmp/err"; then
    fail "--allow-passthrough still removed: $(cat "$tmp/err")"
fi
virsh dumpxml tiny >"$tmp/live.xml"
grep -q "<filesystem" "$tmp/live.xml" || fail "--allow-passthrough lost the filesystem"
grep -q "<graphics type='vnc' port='[0-9]*' autoport='yes' listen='127.0.0.1'" "$tmp/live.xml" ||
    fail "--allow-passthrough lost the VNC console on 127.0.0.1"
listeners tiny | grep -q "127.0.0.1:$chan" || fail "--allow-passthrough: no channel on port $chan"
bootback instant stop tiny --discard >/dev/null
echo "ok"
