#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A verification that fails because of the lab or the host, not of the
# restore point, exits 1 ("could not verify") with the reason, never 2
# ("the point is bad") (issue 15, item 2), so a nightly job or
# `verify --find-good` never condemns a good backup for the host's fault:
#   isolation refused  the lab network breaks an isolation property
#   libvirt unreachable
#   out of memory      QEMU cannot allocate the memory the lab gave the VM
#                      (--memory 4T): libvirt fails to start the domain
#   no overlay space   the overlays' file system has less free space than
#                      required
#   memory budget      the VM's memory is more than the lab may use
# and the same healthy point, verified normally, passes (exit 0), while a
# point that cannot boot anywhere still exits 2.  A point whose own
# definition asks for 4 TiB cannot pass itself off as the host's fault:
# the lab lowers its memory to what it reserved (1 GiB) and verifies it.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start --repo nbdkit
lab_point_files web1 21
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/web1.xml" >/dev/null
tiny_copy nombr "$tmp/bad.img"
# big: web1's disk, its definition asking for 4 TiB of memory
"$top_srcdir/images/domain-xml" NAME=big DISK_PATH="$tmp/web1.img" NET_TYPE=bridge \
    NET_SOURCE=prodbr0 MAC=52:54:00:b0:07:22 MEMORY_MIB=4194304 >"$tmp/big.xml"
bootback import "$tmp/web1.img" --vm big --domain-xml "$tmp/big.xml" >/dev/null
bootback import "$tmp/bad.img" --vm db1 >/dev/null

# could_not CASE WORDS... -- CMD: exit 1, "could not verify" or "could not
# run", the words in what it printed, no VM left.
could_not () {
    local what=$1 words=$2 rc=0
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    cat "$tmp/out" "$tmp/err" | tail -n 8
    [ $rc -eq 1 ] || fail "$what: exit $rc, expected 1 (could not verify)"
    grep -q -i -- "$words" "$tmp/out" "$tmp/err" || fail "$what: the reason ('$words') is not given"
    grep -q -i "could not" "$tmp/out" "$tmp/err" || fail "$what: does not say it could not verify"
    [ -z "$(virsh -q list --all --name)" ] || fail "$what: a VM was left"
    echo "ok: $what"
}

could_not "isolation refused" "isolation: bridge-address" \
    env BOOTBACK_LAB_TEST_HOOK='ip addr add 169.254.77.7/32 dev $BOOTBACK_LAB_BRIDGE' \
    bootback verify web1 --address 10.77.0.21
could_not "libvirt unreachable" "libvirt" \
    bootback verify web1 --address 10.77.0.21 --connect "qemu+unix:///system?socket=$tmp/none"
could_not "out of memory (libvirt error)" "memory" \
    bootback verify big --address 10.77.0.21 --memory 4T --memory-budget 8T
could_not "no space for overlays" "free" \
    env BOOTBACK_OVERLAY_MIN_FREE=1000000T bootback verify web1 --address 10.77.0.21
could_not "memory budget" "budget" \
    bootback verify web1 --address 10.77.0.21 --memory-budget 64M --wait 1s

# The point's own fault stays exit 2; the healthy point passes; the point
# asking for 4 TiB gets the lab's 1 GiB and passes.
expect_rc 2 bootback verify db1
bootback verify big --address 10.77.0.21 >"$tmp/big.out" 2>&1 ||
    { cat "$tmp/big.out"; fail "the point asking for 4 TiB was not verified in 1 GiB"; }
grep -q "<memory> lowered to 1024 MiB" "$tmp/big.out" || fail "the lowered memory is not noted"
expect_rc 0 bootback verify web1 --address 10.77.0.21
echo "OK"
