#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Isolation of the lab network (docs/design.md, "Lab network"), fail
# closed:
#  1. breaking each isolation property (after the network is made, through
#     BOOTBACK_LAB_TEST_HOOK, or before: a host address in the lab subnet)
#     makes the lab refuse to start: exit 1, the property named, no VM
#     started, nothing left;
#  2. two labs with the same addresses (and MACs) run at once without
#     seeing each other: each namespace reaches its own VM;
#  3. a lab VM trying to reach the host, the other lab, or an address
#     outside gets nothing: counted from inside the guest (ping replies,
#     TCP connects, through the guest agent) and by listeners on the host
#     and in an "outside" namespace of this test (198.19.77.0/24, a
#     documentation range, reached only through a veth pair made here).
#     Lab a has a published port (lab up --publish): the host reaches its
#     VM through it, its VM reaches nothing through the relay's port.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"
qga=$top_srcdir/tests/lib/qga

lab_test_start curl
lab_image a tiny 10.77.0.21
lab_image b tiny 10.77.0.21

# ---- 1. each broken property: the lab refuses to start ---------------------
cat >"$tmp/refuse.yaml" <<EOF2
name: refuse
network: { subnet: 10.78.0.0/24, gateway: 10.78.0.1 }
verify:
  - name: a
    image: $tmp/a.img
    address: 10.78.0.21
    checks: [heartbeat]
EOF2
dummy=bbt$$d
cleanup_fn "ip link del $dummy 2>/dev/null; true"
refuse () {
    local prop=$1 hook=$2 undo=${3:-} rc=0 id
    rm -f "$tmp/hook-id"
    BOOTBACK_LAB_TEST_HOOK="echo \$BOOTBACK_LAB_ID > $tmp/hook-id; $hook" \
        bootback lab run "$tmp/refuse.yaml" --quiet >"$tmp/refuse.out" 2>"$tmp/refuse.err" || rc=$?
    [ $rc -eq 1 ] || { cat "$tmp/refuse.err"; fail "$prop broken: exit $rc, expected 1"; }
    grep -q "isolation: $prop" "$tmp/refuse.err" ||
        { cat "$tmp/refuse.err"; fail "$prop broken: not named"; }
    [ -z "$(virsh -q list --all --name)" ] || fail "$prop broken: a VM was started"
    id=$(cat "$tmp/hook-id" 2>/dev/null || true)
    [ -z "$undo" ] || BOOTBACK_LAB_ID=$id BOOTBACK_LAB_BRIDGE=bbl${id}br sh -c "$undo"
    [ -z "$id" ] || lab_assert_gone "$id"
    echo "refused ($prop): $(grep -o 'isolation: .*' "$tmp/refuse.err" | cut -c1-110)"
}
# The host holds an address in the lab subnet (on a veth left down: no traffic).
ip link add "$dummy" type veth peer name "${dummy}p"     # no dummy driver here
ip addr add 10.78.0.77/32 dev "$dummy"
refuse host-address ""
ip link del "$dummy"
refuse host-address 'ip addr add 10.78.0.99/32 dev $BOOTBACK_LAB_BRIDGE'
refuse bridge-address 'ip addr add 169.254.77.7/32 dev $BOOTBACK_LAB_BRIDGE'
refuse ipv6 'sysctl -q -w net.ipv6.conf.$BOOTBACK_LAB_BRIDGE.disable_ipv6=0'
refuse ipv6 'sysctl -q -w net.ipv6.conf.$BOOTBACK_LAB_VETH.disable_ipv6=0'
refuse arp 'sysctl -q -w net.ipv4.conf.$BOOTBACK_LAB_BRIDGE.arp_ignore=0'
refuse input-drop 'iptables -w -D INPUT -i $BOOTBACK_LAB_BRIDGE -j DROP'
refuse input-drop 'iptables -w -I INPUT -i $BOOTBACK_LAB_BRIDGE -j ACCEPT' \
    'iptables -w -D INPUT -i $BOOTBACK_LAB_BRIDGE -j ACCEPT'
# A wildcard covering the bridge (a rule naming no interface is refused
# too, lab/test-conf.c; it would also stop labs of tests running beside).
refuse input-drop "iptables -w -I INPUT -i \${BOOTBACK_LAB_BRIDGE%br}+ -j ACCEPT -m comment --comment bbt$$" \
    "iptables -w -D INPUT -i \${BOOTBACK_LAB_BRIDGE%br}+ -j ACCEPT -m comment --comment bbt$$"
refuse forward-drop 'iptables -w -D FORWARD -i $BOOTBACK_LAB_BRIDGE -j DROP'
refuse forward-drop 'iptables -w -D FORWARD -o $BOOTBACK_LAB_BRIDGE -j DROP'
refuse forward-drop 'sysctl -q -w net.ipv4.conf.$BOOTBACK_LAB_BRIDGE.forwarding=1'
refuse uplink "ip link add $dummy type veth peer name ${dummy}p && sysctl -q -w net.ipv6.conf.$dummy.disable_ipv6=1 && ip link set $dummy master \$BOOTBACK_LAB_BRIDGE" \
    "ip link del $dummy"
refuse namespace 'ip -n $BOOTBACK_LAB_NETNS route add default via 10.78.0.254'
refuse namespace 'ip netns exec $BOOTBACK_LAB_NETNS sysctl -q -w net.ipv4.ip_forward=1'
refuse namespace 'ip -n $BOOTBACK_LAB_NETNS link add extra0 type veth peer name extra1'
refuse namespace 'ip -n $BOOTBACK_LAB_NETNS addr del 10.78.0.1/24 dev eth0'
grep -q "bbt$$" <<< "$(iptables -w -S)" && fail "a test rule is left"

# ---- 2. two labs, same addresses, at once -------------------------------------
for l in a b; do
    cat >"$tmp/lab-$l.yaml" <<EOF2
name: same-$l
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
defaults: { boot-timeout: 120s, retries: 5, interval: 2s }
verify:
  - name: vm
    image: $tmp/$l.img
    address: 10.77.0.21
    mac: 52:54:00:b0:07:21
    checks:
      - heartbeat
      - http http://{address}/health contains '"identity":"$l"'
EOF2
done
pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Rules for other interfaces above the lab's own (another lab's, another
# tool's) touch none of its packets: lab a still starts with them there.
foreign="-i bbt$$x -m comment --comment bbt$$ -j ACCEPT"
cleanup_fn "iptables -w -D INPUT $foreign 2>/dev/null; iptables -w -D FORWARD -i bbt$$x -o bbt$$y -m comment --comment bbt$$ -j ACCEPT 2>/dev/null; true"
BOOTBACK_LAB_TEST_HOOK="iptables -w -I INPUT $foreign && iptables -w -I FORWARD -i bbt$$x -o bbt$$y -m comment --comment bbt$$ -j ACCEPT" \
bootback lab up "$tmp/lab-a.yaml" --lease 20m --parallel 1 --json \
    --publish "127.0.0.1:$pport=vm:80" >"$tmp/up-a.json" &
pid_a=$!
bootback lab up "$tmp/lab-b.yaml" --lease 20m --parallel 1 --json >"$tmp/up-b.json" &
pid_b=$!
rc=0; wait $pid_a || rc=$?
[ $rc -eq 0 ] || fail "lab a did not come up and pass (exit $rc)"
wait $pid_b || rc=$?
[ $rc -eq 0 ] || fail "lab b did not come up and pass (exit $rc)"
get () { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
id_a=$(get "$tmp/up-a.json" 'r["run"]')
id_b=$(get "$tmp/up-b.json" 'r["run"]')
dom_a=$(get "$tmp/up-a.json" 'r["vms"][0]["domain"]')
dom_b=$(get "$tmp/up-b.json" 'r["vms"][0]["domain"]')
cleanup_fn "bootback lab down $id_a $id_b >/dev/null 2>&1"
bootback lab list
# Each namespace sees its own VM behind the same address.
for l in a b; do
    id=$(eval echo \$id_$l)
    bootback lab shell "$id" -- curl -s --noproxy '*' --max-time 5 http://10.77.0.21/health \
        >"$tmp/health-$l"
    grep -q "\"identity\":\"$l\"" "$tmp/health-$l" || { cat "$tmp/health-$l"; fail "lab $l sees another VM"; }
done
echo "two labs with the same address and MAC: each sees its own VM"
grep -q -- "-A INPUT -i bbt$$x" <<< "$(iptables -w -S INPUT)" ||
    fail "the test's foreign INPUT rule is not there"
iptables -w -D INPUT $foreign
iptables -w -D FORWARD -i bbt$$x -o bbt$$y -m comment --comment bbt$$ -j ACCEPT
curl -s --noproxy '*' --max-time 5 "http://127.0.0.1:$pport/health" | grep -q '"identity":"a"' ||
    fail "the host does not reach lab a's VM through its published port"
# The namespace re-asks ARP every 100 ms (a guest's first answer is seen
# at once, not up to a second late).
[ "$(bootback lab shell "$id_a" -- cat /proc/sys/net/ipv4/neigh/eth0/retrans_time_ms)" = 100 ] ||
    fail "ARP retransmit time in the lab namespace is not 100 ms"

# ---- 3. from inside lab a: nothing but its own network answers ----------------
# The "outside": a namespace of this test behind a veth pair on the host,
# listeners on the host side and inside; both count connections.
out_ns=bbt-outside-$$
cleanup_fn "ip netns del $out_ns 2>/dev/null; ip link del bbt$$h 2>/dev/null; true"
ip netns add "$out_ns"
ip link add "bbt$$h" type veth peer name "bbt$$o" netns "$out_ns"
ip addr add 198.19.77.1/24 dev "bbt$$h"
ip link set "bbt$$h" up
ip -n "$out_ns" addr add 198.19.77.2/24 dev "bbt$$o"
ip -n "$out_ns" link set "bbt$$o" up
ip -n "$out_ns" link set lo up
cat >"$tmp/listen.py" <<'EOP'
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7777)); s.listen(16); s.settimeout(0.5)
n = 0; end = time.time() + float(sys.argv[3])
open(sys.argv[2], "w").write("0\n")
while time.time() < end:
    try:
        c, _ = s.accept(); c.close(); n += 1
        open(sys.argv[2], "w").write("%d\n" % n)
    except socket.timeout:
        pass
EOP
python3 "$tmp/listen.py" 198.19.77.1 "$tmp/count-host" 900 & lp1=$!
ip netns exec "$out_ns" python3 "$tmp/listen.py" 198.19.77.2 "$tmp/count-out" 900 & lp2=$!
cleanup_fn "kill $lp1 $lp2 2>/dev/null; true"
# Positive control: the listeners do count (host -> outside namespace),
# once both listen (each writes its count file then: at load a python
# start can take longer than the 10 s this once waited in all)
for (( i = 0; i < 300 * slow; i++ )); do
    [ -s "$tmp/count-out" ] && [ -s "$tmp/count-host" ] && break
    sleep 0.1
done
[ -s "$tmp/count-out" ] && [ -s "$tmp/count-host" ] || fail "the listeners did not start"
for (( i = 0; i < 20; i++ )); do
    curl -s --max-time 3 --noproxy '*' http://198.19.77.2:7777/ >/dev/null 2>&1 || true
    [ "$(cat "$tmp/count-out" 2>/dev/null)" -ge 1 ] && break
    sleep 0.2
done
[ "$(cat "$tmp/count-out")" -ge 1 ] || fail "the outside listener does not count"
echo 0 >"$tmp/count-out"
# Lab b's VM gets a second address only it has; lab b reaches it.
"$qga" --domain "$dom_b" --timeout 30 exec /bin/sh -c 'ip addr add 10.77.0.31/24 dev eth0' ||
    fail "guest-exec in lab b"
ip netns exec "bootback-lab-$id_b" curl -s --noproxy '*' --max-time 5 -o /dev/null \
    http://10.77.0.31/health || fail "lab b does not reach its VM's second address"
in_a () { "$qga" --domain "$dom_a" --timeout 60 exec /bin/sh -c "$1" 2>&1 || true; }
# From lab a's VM: its own lab's gateway answers (control), nothing else.
in_a 'ping -c 2 -W 2 10.77.0.1' | grep -q '2 packets received' ||
    fail "lab a's VM cannot reach its own gateway (the control)"
replies=0 connects=0
for target in 10.77.0.31 198.19.77.1 198.19.77.2 203.0.113.9; do
    r=$(in_a "ping -c 2 -W 1 $target" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
    replies=$((replies + ${r:-0}))
    in_a "echo x | nc -w 1 $target 7777 && echo CONNECTED; echo x | nc -w 1 $target 7 && echo CONNECTED" \
        >"$tmp/nc.out"
    c=$(grep -c CONNECTED "$tmp/nc.out" || true)
    connects=$((connects + c))
    echo "lab a -> $target: ${r:-0} ping replies, $c connections"
done
# Nor through the published port's relay: nothing listens in the lab
# namespace (the gateway), the host's port is the host's.
in_a "echo x | nc -w 1 10.77.0.1 $pport && echo CONNECTED; echo x | nc -w 1 198.19.77.1 $pport && echo CONNECTED" \
    >"$tmp/nc.out"
c=$(grep -c CONNECTED "$tmp/nc.out" || true)
connects=$((connects + c))
echo "lab a -> the relay's port $pport (gateway, host): $c connections"
# The ARP pitfall: the host must not answer for its own address on the lab
# bridge when the guest looks for it on-link.
in_a 'ip route add 198.19.77.0/24 dev eth0' >/dev/null
r=$(in_a 'ping -c 3 -W 1 198.19.77.1' | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
replies=$((replies + ${r:-0}))
in_a 'echo x | nc -w 2 198.19.77.1 7777 && echo CONNECTED' | grep -q CONNECTED && connects=$((connects + 1))
neigh=$(in_a 'ip neigh show 198.19.77.1')
echo "lab a -> 198.19.77.1 on-link: ${r:-0} replies; neighbour entry: ${neigh:-none}"
case "$neigh" in *lladdr*REACHABLE*|*lladdr*STALE*|*lladdr*DELAY*) fail "the host answered ARP on the lab bridge: $neigh" ;; esac
echo "host listener: $(cat "$tmp/count-host") connections; outside listener: $(cat "$tmp/count-out") connections"
[ "$replies" -eq 0 ] || fail "lab a's VM got $replies ping replies from outside its lab"
[ "$connects" -eq 0 ] || fail "lab a's VM made $connects connections outside its lab"
[ "$(cat "$tmp/count-host")" = 0 ] || fail "the host listener was reached from the lab"
[ "$(cat "$tmp/count-out")" = 0 ] || fail "the outside listener was reached from the lab"
# Lab b still sees only its own VM; lab a never saw lab b's second address.
ip netns exec "bootback-lab-$id_a" curl -s --noproxy '*' --max-time 3 -o /dev/null \
    http://10.77.0.31/health && fail "lab a reaches lab b's VM"

bootback lab down "$id_a" "$id_b"
lab_assert_gone "$id_a" "$id_b"
echo ok
