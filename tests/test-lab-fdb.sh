#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A lab VM cannot grow the host kernel's bridge forwarding table.  A Linux
# bridge learns the source MAC address of every frame a port receives and
# keeps it for ageing_time (300 s); the kernel sets no limit (Debian 12's
# 6.1 has no fdb_max_learned; later kernels default to none), so a guest
# sending from ever new addresses makes the host allocate an entry per
# frame: at a million frames a second, gigabytes of kernel memory.  The
# lab's ports learn nothing (frames to a VM are flooded to the lab's few
# ports), and lab_net_check refuses a port that learns.
#  1. A sandbox VM sends from 300 MAC addresses (its own changed before
#     each ping); the lab's bridge has learned none of them.
#  2. The VM still answers over the lab network (flooding delivers).
#  3. A port made to learn again is refused by lab check: isolation:
#     learning, named.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"
qga=$top_srcdir/tests/lib/qga

lab_test_start curl
lab_sandbox_one fdb 10.77.0
tap=$(virsh -q domiflist "$dom" | awk '{print $1; exit}')
[ -e "/sys/class/net/$br/brif/$tap" ] || fail "no tap $tap on $br"
learned () { bridge fdb show br "$br" brport "$tap" | grep -vc permanent || true; }

# --- 1 ----------------------------------------------------------------------
"$qga" --domain "$dom" --timeout 300 exec /bin/sh -c '
    mac=$(cat /sys/class/net/eth0/address) i=0
    while [ $i -lt 300 ]; do
        ip link set eth0 address "02:bb:00:00:$(printf "%02x:%02x" $((i / 256)) $((i % 256)))"
        ping -c 1 -W 1 10.77.0.1 >/dev/null 2>&1 &
        i=$((i + 1))
    done
    sleep 2
    ip link set eth0 address "$mac"
    echo sent $i' >"$tmp/guest.out" 2>&1 || { cat "$tmp/guest.out"; fail "guest-exec failed"; }
grep -q "sent 300" "$tmp/guest.out" || { cat "$tmp/guest.out"; fail "the guest did not send"; }
n=$(learned)
echo "the guest sent from 300 MAC addresses; the bridge learned $n on its port"
[ "$n" -le 2 ] || fail "the lab bridge learned $n MAC addresses from one guest"

# --- 2 ----------------------------------------------------------------------
ok=
for (( i = 0; i < 20; i++ )); do
    bootback lab shell "$id" -- curl -s --noproxy '*' --max-time 5 http://10.77.0.21/health \
        >"$tmp/health" 2>/dev/null && grep -q '"status":"ok"' "$tmp/health" && { ok=1; break; }
    sleep 1
done
[ -n "$ok" ] || fail "the VM does not answer over the lab network"
echo "the VM answers over the lab network"

# --- 3 ----------------------------------------------------------------------
echo 1 >"/sys/class/net/$br/brif/$tap/learning"
rc=0; bootback lab check "$id" >"$tmp/check.out" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "isolation: learning: .*$tap" "$tmp/check.out" ||
    { cat "$tmp/check.out"; fail "a port that learns was not refused (exit $rc)"; }
echo "refused (exit $rc): $(grep -o 'isolation: learning: .*' "$tmp/check.out" | cut -c1-100)"
bootback lab down "$id" >/dev/null
lab_assert_gone "$id"
echo "ok"
