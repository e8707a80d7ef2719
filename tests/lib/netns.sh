# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A private, isolated network for a test: a bridge with no uplink and no
# host address, and a network namespace joined to it by a veth pair, holding
# the gateway address.  Guests (plain QEMU taps, or libvirt
# <interface type='bridge'>) plug into the bridge; checks run inside the
# namespace with netns_exec, so no probe ever goes through the host's
# routing table.  Source after tests/functions.sh:
#
#   source "$top_srcdir/tests/lib/netns.sh"
#   netns_create [GATEWAY/PREFIX [BRIDGE]]
#                                   default 10.77.0.1/24 (the tiny image's
#                                   default gateway); sets NETNS, NETNS_BRIDGE,
#                                   NETNS_GATEWAY, NETNS_PREFIX; removed at exit.
#                                   With BRIDGE, joins that existing bridge
#                                   (e.g. one a libvirt <network> made; see
#                                   netns_libvirt_network) instead of making
#                                   one, and leaves it in place at exit
#   netns_libvirt_network NAME      define and start, in the current libvirt,
#                                   an isolated <network> NAME holding only a
#                                   bridge (no <ip>, no <forward>), then
#                                   netns_create on its bridge; domains use
#                                   NET_TYPE=network NET_SOURCE=NAME.  Takes
#                                   GATEWAY/PREFIX as a second argument
#   netns_tap                       a new tap on the bridge for plain QEMU;
#                                   its name in NETNS_TAP (removed at exit;
#                                   call it directly, not in $(...), which
#                                   would lose the count and reuse a name)
#   netns_exec CMD...               run CMD inside the namespace
#   netns_http URL [CURL-ARGS...]   curl from the namespace: prints the body,
#                                   then a last line "HTTP <code>"
#   netns_wait_http URL TIMEOUT     wait until URL answers 200; prints the
#                                   seconds waited; returns 1 on timeout
#
# Isolation (docs/design.md, "Lab network"): the
# bridge and every port on it get disable_ipv6, the bridge arp_ignore=8,
# and an iptables INPUT drop for anything arriving on the bridge; the host
# never has an address in the subnet (netns_create refuses a gateway
# address that the host owns).
#
# Needs root, iproute2, iptables, curl.  Names are short (IFNAMSIZ = 16):
# bridge bbNNNNNbr, veth bbNNNNNh/bbNNNNNn, taps bbNNNNNtK, namespace
# bootback-NNNNN, where NNNNN is the test's PID (or $NETNS_TAG).

_netns_taps=0
_netns_own_bridge=1

netns_create () {
    local cidr=${1:-10.77.0.1/24} tag
    tag=${NETNS_TAG:-bb$$}
    NETNS=bootback-$tag
    NETNS_BRIDGE=${2:-${tag}br}
    _netns_tap_prefix=${tag}t
    _netns_own_bridge=1
    [ -z "${2:-}" ] || _netns_own_bridge=0
    NETNS_GATEWAY=${cidr%/*}
    NETNS_PREFIX=${cidr#*/}
    NETNS_VETH=${tag}h
    export NETNS NETNS_BRIDGE NETNS_GATEWAY NETNS_PREFIX
    [ "$(id -u)" -eq 0 ] || skip "netns_create needs root"
    command -v ip >/dev/null || skip "iproute2 is not installed"
    command -v iptables >/dev/null || skip "iptables is not installed"
    # The host must not own or route this subnet (other than by default).
    if grep -q " inet $NETNS_GATEWAY/" <<< "$(ip -4 -o addr show)"; then
        fail "netns_create: the host owns $NETNS_GATEWAY; pick another lab subnet"
    fi
    if [ $_netns_own_bridge = 0 ]; then
        ip link show "$NETNS_BRIDGE" >/dev/null 2>&1 || fail "netns_create: no bridge $NETNS_BRIDGE"
        grep -q inet <<< "$(ip -4 -o addr show dev "$NETNS_BRIDGE")" &&
            fail "netns_create: bridge $NETNS_BRIDGE has a host address"
    fi
    cleanup_fn netns_destroy
    ip netns add "$NETNS"
    [ $_netns_own_bridge = 0 ] || ip link add "$NETNS_BRIDGE" type bridge
    _netns_isolate_port "$NETNS_BRIDGE"
    sysctl -q -w "net.ipv4.conf.$NETNS_BRIDGE.arp_ignore=8"
    iptables -w -I INPUT -i "$NETNS_BRIDGE" -j DROP
    ip link add "$NETNS_VETH" type veth peer name "${tag}n"
    _netns_isolate_port "$NETNS_VETH"
    ip link set "$NETNS_VETH" master "$NETNS_BRIDGE" up
    ip link set "${tag}n" netns "$NETNS"
    ip -n "$NETNS" link set lo up
    ip -n "$NETNS" link set "${tag}n" name eth0
    ip -n "$NETNS" addr add "$cidr" dev eth0
    ip -n "$NETNS" link set eth0 up
    ip link set "$NETNS_BRIDGE" up
}

_netns_isolate_port () {
    sysctl -q -w "net.ipv6.conf.$1.disable_ipv6=1" 2>/dev/null || true
}

netns_tap () {
    local tap=$_netns_tap_prefix$_netns_taps
    _netns_taps=$((_netns_taps + 1))
    ip tuntap add dev "$tap" mode tap
    _netns_isolate_port "$tap"
    ip link set "$tap" master "$NETNS_BRIDGE" up
    NETNS_TAP=$tap
}

netns_libvirt_network () {
    local name=$1 cidr=${2:-10.77.0.1/24} br
    br=${NETNS_TAG:-bb$$}lv
    printf "<network>\n  <name>%s</name>\n  <bridge name='%s' stp='off' delay='0'/>\n</network>\n" \
        "$name" "$br" >"$tmp/network-$name.xml"
    virsh -q net-define "$tmp/network-$name.xml" >/dev/null
    virsh -q net-start "$name" >/dev/null
    netns_create "$cidr" "$br"
}

netns_exec () { ip netns exec "$NETNS" "$@"; }

netns_http () {
    local url=$1; shift
    netns_exec curl -s -S --noproxy '*' --max-time 5 -w '\nHTTP %{http_code}\n' "$@" "$url"
}

netns_wait_http () {
    local url=$1 timeout=$2 t0 code
    t0=$(date +%s.%N)
    while :; do
        code=$(netns_exec curl -s --noproxy '*' --max-time 2 -o /dev/null \
                   -w '%{http_code}' "$url" 2>/dev/null) || true
        if [ "$code" = 200 ]; then
            printf '%.1f\n' "$(echo "$(date +%s.%N) - $t0" | bc)"
            return 0
        fi
        if [ "$(echo "$(date +%s.%N) - $t0 > $timeout" | bc)" = 1 ]; then
            return 1
        fi
        sleep 0.2
    done
}

netns_destroy () {
    local i
    [ -n "${NETNS:-}" ] || return 0
    for (( i = 0; i < _netns_taps; i++ )); do
        ip link del "$_netns_tap_prefix$i" 2>/dev/null
    done
    ip link del "$NETNS_VETH" 2>/dev/null
    [ $_netns_own_bridge = 0 ] || ip link del "$NETNS_BRIDGE" 2>/dev/null
    while iptables -w -D INPUT -i "$NETNS_BRIDGE" -j DROP 2>/dev/null; do :; done
    ip netns del "$NETNS" 2>/dev/null
    NETNS=
    return 0
}
