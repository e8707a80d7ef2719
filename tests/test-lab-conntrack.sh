#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A lab VM's traffic takes no place in the host's connection tracking
# table.  With br_netfilter (bridge-nf-call-iptables=1, loaded by Docker,
# Kubernetes, many firewalls), frames bridged between the lab's ports pass
# the host's iptables, and on a host that tracks connections (libvirt's
# NAT network, any -m conntrack rule) each new flow becomes an entry of
# the host's table (nf_conntrack_max for the whole host; an established
# TCP connection is kept 5 days).  Guests of a lab talking to each other
# could fill it, and the host would drop every new connection of its own.
# The lab's bridge is exempt (raw PREROUTING -i BRIDGE -j CT --notrack, for
# IPv4 and IPv6), and lab_net_check refuses a lab without it.
#  1. The host tracks connections (a -m conntrack rule of this test, for an
#     interface that does not exist); a sandbox VM pings the lab's gateway
#     from 200 processes (200 ICMP flows): none is in the host's table.
#  2. Without the exemption, lab check refuses: isolation: notrack.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"
qga=$top_srcdir/tests/lib/qga

lab_test_start
[ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)" = 1 ] ||
    skip "br_netfilter is not loaded with bridge-nf-call-iptables=1"
[ -r /proc/net/nf_conntrack ] || skip "no /proc/net/nf_conntrack"
ct="-i bbt$$x -m conntrack --ctstate INVALID -j DROP"
iptables -w -I INPUT $ct
cleanup_fn "iptables -w -D INPUT $ct 2>/dev/null; true"
lab_sandbox_one conntrack 10.79.143

# --- 1 ----------------------------------------------------------------------
"$qga" --domain "$dom" --timeout 300 exec /bin/sh -c '
    i=0 ok=0
    while [ $i -lt 200 ]; do ping -c 1 -W 2 10.79.143.1 >/dev/null 2>&1 & i=$((i + 1)); done
    for j in $(jobs -p); do wait $j && ok=$((ok + 1)); done
    echo pinged $i' >"$tmp/guest.out" 2>&1 || { cat "$tmp/guest.out"; fail "guest-exec failed"; }
grep -q "pinged 200" "$tmp/guest.out" || { cat "$tmp/guest.out"; fail "the guest did not ping"; }
n=$(grep -c "src=10.79.143.21 " /proc/net/nf_conntrack || true)
echo "the guest pinged the gateway from 200 processes; the host's table has $n of its flows"
[ "$n" -eq 0 ] || fail "the host's connection tracking table holds $n flows of the lab's guest"

# --- 2 ----------------------------------------------------------------------
iptables -w -t raw -D PREROUTING -i "$br" -j CT --notrack ||
    fail "no notrack rule for $br in the raw table"
rc=0; bootback lab check "$id" >"$tmp/check.out" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "isolation: notrack: " "$tmp/check.out" ||
    { cat "$tmp/check.out"; fail "a lab bridge whose traffic is tracked was not refused (exit $rc)"; }
echo "refused (exit $rc): $(grep -o 'isolation: notrack: .*' "$tmp/check.out" | cut -c1-100)"
bootback lab down "$id" >/dev/null
lab_assert_gone "$id"                   # (the raw rules too)
echo "ok"
