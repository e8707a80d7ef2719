#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tiny boots from its own disk under plain QEMU (TCG, SYSLINUX-loaded
# kernel) on a private bridge: /health answers 200 with the identity and the
# data checksum that the config and the image hold, the echo port echoes,
# and the guest agent answers guest-ping, guest-exec, guest-file-* and
# fsfreeze; guest-shutdown powers it off.  The copy's address and identity
# come from images/guest-config, so this also proves the offline rewrite
# reaches the booted guest.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/qemu.sh"
requires qemu-system-x86_64 curl python3 nc

images_tiny
netns_create 10.77.0.1/24
tiny_copy tiny "$tmp/g.img" ADDRESS=10.77.0.21 IDENTITY=qemu-test-21 HOSTNAME=t21
expected_sum=$(debugfs -R 'cat /srv/bootback/data.sha256' \
                   "$("$top_srcdir/images/guest-config" --file "$tmp/g.img")" 2>/dev/null | cut -d' ' -f1)

t0=$(date +%s.%N)
qemu_guest_start g "$tmp/g.img"
if ! secs=$(netns_wait_http http://10.77.0.21/health 60); then
    cat "$tmp/g.serial"
    fail "no HTTP 200 from /health within 60 s"
fi
echo "boot to HTTP 200 (plain QEMU, TCG): ${secs}s"
"$qga" --socket "$tmp/g.qga" --timeout 30 ping >/dev/null || fail "guest-ping not answered"
echo "boot to guest-ping: $(echo "$(date +%s.%N) - $t0" | bc)s"

# /health: identity from the rewritten config, checksum of the data file.
netns_http http://10.77.0.21/health >"$tmp/health"
cat "$tmp/health"
grep -qx 'HTTP 200' "$tmp/health" || fail "/health is not 200"
grep -q '"status":"ok"' "$tmp/health" || fail "/health status not ok"
grep -q '"identity":"qemu-test-21"' "$tmp/health" || fail "/health does not carry the identity"
grep -q '"hostname":"t21"' "$tmp/health" || fail "/health does not carry the hostname"
grep -q "\"sha256\":\"$expected_sum\"" "$tmp/health" || fail "/health checksum is not the data file's"
netns_http http://10.77.0.21/nonexistent | grep -qx 'HTTP 404' || fail "unknown path is not 404"

# The TCP service port.
[ "$(echo bootback-echo | netns_exec nc -w 3 -q 1 10.77.0.21 7)" = bootback-echo ] ||
    fail "echo port 7 does not echo"

# The agent: exec, file write/read, fsfreeze.
out=$("$qga" --socket "$tmp/g.qga" exec /bin/sh -c 'hostname; echo err >&2; exit 3' 2>/dev/null) && rc=0 || rc=$?
[ "$out" = t21 ] || fail "guest-exec output: $out"
[ $rc = 3 ] || fail "guest-exec exit code $rc, not 3"
echo "written through the agent" | "$qga" --socket "$tmp/g.qga" write /root/note
[ "$("$qga" --socket "$tmp/g.qga" cat /root/note)" = "written through the agent" ] ||
    fail "guest-file write/read"
"$qga" --socket "$tmp/g.qga" json '{"execute":"guest-fsfreeze-freeze"}' | grep -qx '[1-9]' ||
    fail "fsfreeze-freeze froze nothing"
"$qga" --socket "$tmp/g.qga" json '{"execute":"guest-fsfreeze-status"}' | grep -qx '"frozen"' ||
    fail "fsfreeze-status not frozen"
"$qga" --socket "$tmp/g.qga" json '{"execute":"guest-fsfreeze-thaw"}' | grep -qx '[1-9]' ||
    fail "fsfreeze-thaw thawed nothing"
"$qga" --socket "$tmp/g.qga" json '{"execute":"guest-fsfreeze-status"}' | grep -qx '"thawed"' ||
    fail "fsfreeze-status not thawed"
# A write after the thaw reaches the disk (synced in the guest).
"$qga" --socket "$tmp/g.qga" exec /bin/sh -c 'echo after-thaw > /root/after; sync' ||
    fail "write after thaw"

# Clean poweroff through the agent (provides /sbin/shutdown).
"$qga" --socket "$tmp/g.qga" shutdown
qemu_guest_wait_exit g 60 || { cat "$tmp/g.serial"; fail "guest-shutdown did not power off"; }
grep -q 'reboot: Power down' "$tmp/g.serial" || fail "no clean power down in the console log"
# The file written through the agent is on the disk after the poweroff.
[ "$(debugfs -R 'cat /root/after' "$("$top_srcdir/images/guest-config" --file "$tmp/g.img")" 2>/dev/null)" = after-thaw ] ||
    fail "guest write not on the disk after poweroff"
echo ok
