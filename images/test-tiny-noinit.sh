#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tiny-noinit never reaches userspace: the kernel starts (its panic is in
# the console log) but /sbin/init cannot run, so neither HTTP nor the guest
# agent ever answers.  A healthy tiny answers in ~5 s; we wait 20 s.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/qemu.sh"
requires qemu-system-x86_64 curl python3
timeout_s=20

images_tiny
netns_create 10.77.0.1/24
tiny_copy noinit "$tmp/g.img" ADDRESS=10.77.0.41
qemu_guest_start g "$tmp/g.img"
t0=$(date +%s)

# Neither HTTP nor the agent, for the whole timeout.
if netns_wait_http http://10.77.0.41/health "$timeout_s" >/dev/null; then
    fail "tiny-noinit answered HTTP"
fi
left=$(( timeout_s - ($(date +%s) - t0) ))
[ $left -gt 2 ] || left=2
if "$qga" --socket "$tmp/g.qga" --timeout "$left" ping >/dev/null 2>&1; then
    fail "tiny-noinit's agent answered"
fi
# It failed the intended way: the kernel ran and init could not.
cat "$tmp/g.serial"
grep -q 'Kernel panic' "$tmp/g.serial" || fail "no kernel panic in the console log"
grep -q 'bootback: starting' "$tmp/g.serial" && fail "tiny-noinit reached the root system's rcS"
qemu_guest_running g || fail "QEMU exited (expected a hung, panicked guest)"
echo ok
