#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tiny boots through a private libvirtd (tests/lib/libvirtd.sh) from the
# domain template images/tiny.xml.in, its NIC on an isolated libvirt
# <network> (only a bridge, as the lab uses) that the checker's namespace
# joins: /health answers 200, the agent answers
# guest-ping and reports the address (domifaddr --source agent),
# `virsh screenshot` writes a picture, and an ACPI shutdown powers it off.
# Also checks that the libvirtd is private: its socket and state are in the
# test's directory and it defines nothing outside.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/images.sh"
source "$top_srcdir/tests/lib/netns.sh"
source "$top_srcdir/tests/lib/libvirtd.sh"
requires curl python3 virsh
qga=$top_srcdir/tests/lib/qga

images_tiny
t0=$(date +%s.%N)
libvirtd_start
echo "private libvirtd answering after $(echo "$(date +%s.%N) - $t0" | bc)s"
case "$LIBVIRT_DEFAULT_URI" in *"socket=$tmp/"*) ;; *) fail "URI not private: $LIBVIRT_DEFAULT_URI" ;; esac
[ "$(virsh -q list --all --name | grep -c .)" = 0 ] || fail "private libvirtd sees domains it did not define"
[ "$(virsh -q net-list --all --name | grep -c .)" = 0 ] || fail "private libvirtd sees networks it did not define"

netns_libvirt_network bb-lab-$$ 10.77.0.1/24
[ "$(virsh -q net-info bb-lab-$$ | awk '/^Bridge:/ { print $2 }')" = "$NETNS_BRIDGE" ] ||
    fail "the libvirt network's bridge is not $NETNS_BRIDGE"
tiny_copy tiny "$tmp/vm.img" ADDRESS=10.77.0.31 IDENTITY=libvirt-test-31
"$top_srcdir/images/domain-xml" NAME=bb-tiny-$$ DISK_PATH="$tmp/vm.img" \
    NET_TYPE=network NET_SOURCE=bb-lab-$$ MAC=52:54:00:b0:07:31 \
    SERIAL_LOG="$tmp/vm.serial" >"$tmp/vm.xml"
dom=bb-tiny-$$
virsh -q define "$tmp/vm.xml" >/dev/null
grep -q "<domain type='qemu'" "$LIBVIRTD_DIR/etc/qemu/$dom.xml" ||
    fail "definition not stored in the private /etc/libvirt"

t0=$(date +%s.%N)
virsh -q start "$dom" >/dev/null
if ! secs=$(netns_wait_http http://10.77.0.31/health 60); then
    cat "$tmp/vm.serial"; libvirtd_log | tail -n 20
    fail "no HTTP 200 from /health within 60 s"
fi
echo "boot to HTTP 200 (libvirt, TCG): ${secs}s"
"$qga" --domain "$dom" --timeout 30 ping >/dev/null || fail "guest-ping not answered"
echo "boot to guest-ping: $(echo "$(date +%s.%N) - $t0" | bc)s"
virsh -q domiflist "$dom" | grep -q "network *bb-lab-$$ *virtio *52:54:00:b0:07:31" ||
    fail "domain NIC not on the libvirt network"
pid=$(libvirtd_domain_pid "$dom")
[ "$(cat "/proc/$pid/comm")" = qemu-system-x86 ] || fail "domain PID $pid is not QEMU"
tr '\0' ' ' <"/proc/$pid/cmdline" >"$tmp/cmdline"
grep -Eq 'accel[= ]tcg' "$tmp/cmdline" || { cat "$tmp/cmdline"; fail "QEMU is not using TCG"; }

netns_http http://10.77.0.31/health >"$tmp/health"
grep -qx 'HTTP 200' "$tmp/health" || { cat "$tmp/health"; fail "/health is not 200"; }
grep -q '"identity":"libvirt-test-31"' "$tmp/health" || fail "/health does not carry the identity"

virsh -q domifaddr "$dom" --source agent >"$tmp/ifaddr"
grep -q '10.77.0.31/24' "$tmp/ifaddr" || { cat "$tmp/ifaddr"; fail "domifaddr --source agent"; }

virsh -q screenshot "$dom" --file "$tmp/screen.png" >/dev/null
[ "$(head -c 8 "$tmp/screen.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "virsh screenshot did not write a PNG"
[ "$(stat -c %s "$tmp/screen.png")" -gt 1000 ] || fail "screenshot is empty"

# ACPI power button (busybox acpid in the guest).
libvirtd_shutdown "$dom" 30
grep -q 'reboot: Power down' "$tmp/vm.serial" || fail "no clean power down in the console log"
echo ok
