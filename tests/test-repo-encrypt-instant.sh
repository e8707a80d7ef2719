#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Instant recovery from an encrypted repository (issue 18 item 4): the
# passphrase given as --passphrase-file reaches the session's nbdkit and
# supervisor (by the file's name in the environment, not on a command
# line), the domain runs and its disk reads the point's bytes; without the
# passphrase, instant fails with the one-line error and starts nothing.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires
instant_setup

echo "instant pass" > "$tmp/pass"
chmod 600 "$tmp/pass"
bootback --passphrase-file "$tmp/pass" repo init --encrypt "$tmp/enc" > /dev/null
BOOTBACK_PASSPHRASE_FILE=$tmp/pass instant_import_tiny

expect_rc 1 bootback instant tiny --agent-timeout 0
grep -q "repository $tmp/enc is encrypted: give its passphrase" "$tmp/err"
expect_fail virsh domstate tiny 2>/dev/null

bootback --passphrase-file "$tmp/pass" instant tiny --agent-timeout 0 --json \
    > "$tmp/out.json" 2> "$tmp/err" || { cat "$tmp/err"; fail "instant failed"; }
[ "$(virsh domstate tiny)" = running ] || fail "the domain does not run"
if grep -q -- "instant pass" <<< "$(pgrep -a nbdkit)"; then fail "the passphrase is on a command line"; fi
# Only what opens the repository sees where the passphrase is: not the
# session's front nbdkit (the retry filter; a TCP listener for a remote
# host), whose environment is the supervisor's without the secrets.
fronts=$(pgrep -f -- "--filter=retry" || true)
[ -n "$fronts" ] || fail "no front nbdkit found"
for p in $fronts; do
    if grep -qa "BOOTBACK_PASSPHRASE_FILE=" "/proc/$p/environ"; then
        fail "the front nbdkit $p has the passphrase file in its environment"
    fi
done
# the session's disk is the point's: its first MiB through the overlay
disk=$(awk '$2 == "disk" && !n++ {print $4}' <<< "$(virsh domblklist tiny --details)")
head -c 1048576 "$TINY_IMG" > "$tmp/want"
qemu-img dd -U -f qcow2 -O raw if="$disk" of="$tmp/got" bs=1048576 count=1
cmp "$tmp/want" "$tmp/got" || fail "the session's disk differs from the point"
bootback --passphrase-file "$tmp/pass" instant stop tiny --discard > /dev/null
expect_fail virsh domstate tiny 2>/dev/null
echo "instant from an encrypted repository ok"
