#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Slow suite: the debian image (debootstrap'ed Debian 12 with systemd,
# nginx, PostgreSQL, sshd, qemu-guest-agent) boots from its own disk under
# plain QEMU and through a private libvirtd: /health answers 200 (data file
# and database checked by the app behind nginx), sshd greets on port 22,
# the agent answers guest-ping and guest-exec (a PostgreSQL query), fsfreeze
# freezes and thaws (running the PostgreSQL hook), a screenshot is taken,
# and ACPI shutdown powers it off.  The copies get their address from
# images/guest-config.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/qemu.sh"
source "$top_srcdir/tests/lib/libvirtd.sh"
requires qemu-system-x86_64 curl python3 nc debootstrap
boot_timeout=240

t0=$(date +%s)
images_debian
echo "debian image ready after $(( $(date +%s) - t0 )) s"
netns_create 10.77.0.1/24

check_guest () {   # check_guest ADDRESS IDENTITY QGA-TRANSPORT...
    local addr=$1 identity=$2; shift 2
    netns_http "http://$addr/health" >"$tmp/health"
    cat "$tmp/health"
    grep -qx 'HTTP 200' "$tmp/health" || fail "/health is not 200"
    grep -q "\"identity\":\"$identity\"" "$tmp/health" || fail "/health does not carry the identity"
    grep -q '"db_rows":1000' "$tmp/health" || fail "/health does not report the database"
    netns_exec nc -w 5 "$addr" 22 </dev/null | head -c 200 | grep -q '^SSH-2.0-' ||
        fail "no SSH greeting on port 22"
    [ "$("$qga" "$@" exec runuser -u postgres -- psql -X -tAd bootback -c 'SELECT count(*) FROM items')" = 1000 ] ||
        fail "guest-exec psql"
    "$qga" "$@" json '{"execute":"guest-fsfreeze-freeze"}' | grep -qx '[1-9][0-9]*' ||
        fail "fsfreeze-freeze froze nothing"
    "$qga" "$@" json '{"execute":"guest-fsfreeze-thaw"}' | grep -qx '[1-9][0-9]*' ||
        fail "fsfreeze-thaw thawed nothing"
}

# --- plain QEMU
image_copy "$DEBIAN_IMG" "$tmp/q.img"
"$top_srcdir/images/guest-config" "$tmp/q.img" ADDRESS=10.77.0.51 IDENTITY=debian-qemu >/dev/null
t0=$(date +%s.%N)
QEMU_MEMORY=1024 QEMU_MAC=52:54:00:b0:07:51 qemu_guest_start q "$tmp/q.img"
secs=$(netns_wait_http http://10.77.0.51/health $boot_timeout) || {
    tail -n 60 "$tmp/q.serial"; fail "plain QEMU: no /health 200 within $boot_timeout s"; }
echo "debian, plain QEMU: boot to HTTP 200 ${secs}s"
"$qga" --socket "$tmp/q.qga" --timeout 60 ping >/dev/null || fail "plain QEMU: no guest-ping"
echo "debian, plain QEMU: boot to guest-ping $(echo "$(date +%s.%N) - $t0" | bc)s"
check_guest 10.77.0.51 debian-qemu --socket "$tmp/q.qga"
grep -q 'postgresql checkpoint' "$tmp/q.serial" || fail "the fsfreeze hook did not run"
"$qga" --socket "$tmp/q.qga" shutdown
qemu_guest_wait_exit q 120 || fail "plain QEMU: guest-shutdown did not power off"
qemu_guest_stop q

# --- libvirt
libvirtd_start
image_copy "$DEBIAN_IMG" "$tmp/l.img"
"$top_srcdir/images/guest-config" "$tmp/l.img" ADDRESS=10.77.0.52 IDENTITY=debian-libvirt >/dev/null
dom=bb-debian-$$
"$top_srcdir/images/domain-xml" --template "$top_srcdir/images/debian.xml.in" \
    NAME="$dom" DISK_PATH="$tmp/l.img" NET_SOURCE="$NETNS_BRIDGE" \
    MAC=52:54:00:b0:07:52 SERIAL_LOG="$tmp/l.serial" >"$tmp/l.xml"
grep -q "<memory unit='MiB'>1024</memory>" "$tmp/l.xml" || fail "debian template memory"
virsh -q define "$tmp/l.xml" >/dev/null
t0=$(date +%s.%N)
virsh -q start "$dom" >/dev/null
secs=$(netns_wait_http http://10.77.0.52/health $boot_timeout) || {
    tail -n 60 "$tmp/l.serial"; fail "libvirt: no /health 200 within $boot_timeout s"; }
echo "debian, libvirt: boot to HTTP 200 ${secs}s"
"$qga" --domain "$dom" --timeout 60 ping >/dev/null || fail "libvirt: no guest-ping"
check_guest 10.77.0.52 debian-libvirt --domain "$dom"
virsh -q domifaddr "$dom" --source agent | grep -q '10.77.0.52/24' || fail "domifaddr --source agent"
virsh -q screenshot "$dom" --file "$tmp/screen.png" >/dev/null
[ "$(head -c 4 "$tmp/screen.png" | od -An -tx1 | tr -d ' \n')" = 89504e47 ] || fail "no screenshot"
libvirtd_shutdown "$dom" 120
echo ok
