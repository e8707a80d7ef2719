#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The scanning child (as root, dropped to nobody) runs under a system call
# filter (seccomp): a parser taken over by the guest's bytes can neither
# signal nor trace another process of its user, make a user namespace
# (where it would hold every capability) nor open a socket other than a
# unix one.  BOOTBACK_SCAN_PROBE makes the child, once its sandbox line
# is written, try each such call (kill=PID, kill0=PID: signal 0,
# ptrace=PID, userns, socket=FAMILY) and end with "scan probe reached
# ITEM" on the first that works.  The target is a sleep the test runs as
# nobody.  Before the filter, the child traced it, made a user namespace
# and inet, inet6 and netlink sockets, could signal every process of
# nobody (kill (-1, 0)), killed the sleep, and made calls in the 32-bit
# x86 ABI (int 0x80), which now kill it (SIGSYS).  It still kills itself
# (crash_step's hook).  A path item after them (/., the
# child's own root) shows each item before it was tried; the point's
# malware is still found (libtsk on ext4, ClamAV, YARA), the sandbox line
# says "seccomp":2, and a child left without the filter
# (BOOTBACK_SCAN_NO_SECCOMP, a test hook) is refused, naming it.
source "$top_srcdir/tests/functions.sh"
requires nbdkit mkfs.ext4 setpriv md5sum python3
[ "$(id -u)" = 0 ] || skip "needs root (the sandbox drops from root)"
group=$(id -gn nobody)

source "$top_srcdir/tests/lib/scan.sh"
mkdir "$tmp/root"
printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$tmp/root/eicar.com"
echo "$(md5sum <"$tmp/root/eicar.com" | cut -d' ' -f1):68:Test.Eicar.HDB" >"$sig/test.hdb"
scan_rule syscalls_marker BOOTBACK-SANDBOX-SYSCALLS-MARKER
echo BOOTBACK-SANDBOX-SYSCALLS-MARKER >"$tmp/root/marker.txt"
cp "$tmp/clean.txt" "$tmp/root/"
truncate -s 64M "$tmp/x.img"
mkfs.ext4 -q -d "$tmp/root" "$tmp/x.img"
bootback import "$tmp/x.img" --vm sc >/dev/null
rm -f "$tmp/x.img"

# another process of the child's user: what kill(-1, SIGKILL) would hit
setpriv --reuid=nobody --regid="$group" --clear-groups sleep 300 &
victim=$!
cleanup_fn kill "$victim"
for i in $(seq 100); do
    [ "$(stat -c %U "/proc/$victim" 2>/dev/null)" = nobody ] &&
        [ "$(readlink "/proc/$victim/exe")" = "$(readlink -f "$(command -v sleep)")" ] && break
    sleep 0.05
done
[ "$(stat -c %U "/proc/$victim")" = nobody ] || fail "the sleep does not run as nobody"

# each item alone (so that all reached are named), with /. after it:
# reaching /. shows the hook ran and tried the item first; then all
# together
reached=()
items="ptrace=$victim userns socket=inet socket=inet6 socket=netlink kill0=-1 kill0=0
       kill0=$victim kill=$victim"
for p in $items; do
    rc=0; BOOTBACK_SCAN_PROBE=$p:/. bootback scan sc --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
    if grep -qxF "not scanned: disk vda: scan probe reached $p" "$tmp/out"; then
        reached+=("$p")
    elif ! grep -qxF 'not scanned: disk vda: scan probe reached /.' "$tmp/out"; then
        cat "$tmp/out"
        fail "the probe of $p did not run (exit $rc)"
    fi
done
[ ${#reached[@]} = 0 ] || fail "the scanning child reached ${reached[*]}"
kill -0 "$victim" 2>/dev/null || fail "the scanning child killed nobody's sleep"
rc=0; BOOTBACK_SCAN_PROBE=$(echo $items | tr ' ' :):/. bootback scan sc --signatures "$sig" \
    >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 1 ] && grep -qxF 'not scanned: disk vda: scan probe reached /.' "$tmp/out" ||
    fail "the probe did not reach /. after the system calls (exit $rc)"
kill -0 "$victim" 2>/dev/null || fail "nobody's sleep was killed"

# the scan still works under the filter: libtsk, ClamAV and YARA
rc=0; bootback scan sc --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
scan_found "$tmp/out" $rc syscalls_marker
scan_sandbox_is sc seccomp 2

# a call in the 32-bit x86 ABI (int 0x80) kills the child: the filter's
# numbers are x86-64's
if [ "$(uname -m)" = x86_64 ]; then
    rc=0; BOOTBACK_SCAN_PROBE=i386:/. bootback scan sc --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
    cat "$tmp/out"
    [ $rc = 1 ] && grep -qxF 'not scanned: disk vda: the scanning process died of signal 31' "$tmp/out" ||
        fail "a call in the 32-bit x86 ABI did not kill the child (exit $rc)"
fi

# the child may still signal itself (crash_step, a test hook, kills it
# with kill (getpid (), SIGKILL) after the drop)
rc=0; BOOTBACK_CRASH_STEP=10 bootback scan sc --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 1 ] && grep -qxF 'not scanned: disk vda: the scanning process died of signal 9' "$tmp/out" ||
    fail "the child could not kill itself (exit $rc)"

# a child left without the filter is refused (test hook), its point
# never clean
rc=0; BOOTBACK_SCAN_NO_SECCOMP=1 bootback scan sc --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 1 ] || fail "a scan without the filter exits $rc"
grep -qxF 'not scanned: disk vda: the scan sandbox could not filter its system calls (seccomp): the kernel needs seccomp filters' \
    "$tmp/out" || fail "a child without the filter was not refused"
kill -0 "$victim" 2>/dev/null || fail "nobody's sleep was killed"
echo "the scanning child signalled, traced and made nothing ok"
