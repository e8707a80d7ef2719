# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Plain QEMU guests for tests (no libvirt): TCG, a virtio disk, a virtio NIC
# on the test's private bridge (tests/lib/netns.sh), the guest agent on a
# unix socket, the serial console in a file, QMP on a unix socket.  Source
# after tests/functions.sh; it sources tests/lib/images.sh and
# tests/lib/netns.sh (a NIC needs netns_create) and sets $qga, the guest
# agent client (tests/lib/qga):
#
#   qemu_guest_start NAME DISK [QEMU-ARGS...]
#       start a guest from DISK (raw unless QEMU_DISK_FORMAT is set; the
#       disk is used read-write: pass a copy).  With netns_create done, the
#       NIC is on $NETNS_BRIDGE (MAC from QEMU_MAC, default 52:54:00:b0:07:01);
#       without, no NIC.  Files: $tmp/NAME.serial (console), $tmp/NAME.qga
#       (agent socket: tests/lib/qga --socket), $tmp/NAME.qmp, $tmp/NAME.pid.
#       QEMU_MEMORY (MiB, default 256).  Killed by PID at exit.
#   qemu_guest_stop NAME      kill it (by PID) and wait until it is gone
#   qemu_guest_running NAME   true while its QEMU runs
#   qemu_guest_wait_exit NAME TIMEOUT   wait for QEMU to exit by itself
#   image_copy SRC DST        sparse copy of a raw image (reflink if possible)

source "$top_srcdir/tests/lib/images.sh"
source "$top_srcdir/tests/lib/netns.sh"
qga=$top_srcdir/tests/lib/qga

qemu_guest_start () {
    local name=$1 disk=$2 netargs=()
    shift 2
    command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
    if [ -n "${NETNS_BRIDGE:-}" ]; then
        netns_tap
        netargs=(-netdev "tap,id=net0,ifname=$NETNS_TAP,script=no,downscript=no"
                 -device "virtio-net-pci,netdev=net0,romfile=,mac=${QEMU_MAC:-52:54:00:b0:07:01}")
    fi
    rm -f "$tmp/$name.serial" "$tmp/$name.qga" "$tmp/$name.qmp" "$tmp/$name.pid"
    qemu-system-x86_64 -name "$name" -accel tcg -m "${QEMU_MEMORY:-256}" -smp 1 \
        -nodefaults -display none -vga std \
        -drive "file=$disk,format=${QEMU_DISK_FORMAT:-raw},if=virtio" \
        -serial "file:$tmp/$name.serial" \
        -device virtio-serial-pci \
        -chardev "socket,id=qga0,path=$tmp/$name.qga,server=on,wait=off" \
        -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0 \
        -qmp "unix:$tmp/$name.qmp,server=on,wait=off" \
        "${netargs[@]}" \
        -pidfile "$tmp/$name.pid" -daemonize "$@"
    cleanup_fn qemu_guest_stop "$name"
}

qemu_guest_running () {
    local pid
    pid=$(cat "$tmp/$1.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

qemu_guest_stop () {
    local pid i
    pid=$(cat "$tmp/$1.pid" 2>/dev/null) || return 0
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    for (( i = 0; i < 50; i++ )); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null
    return 0
}

qemu_guest_wait_exit () {
    local name=$1 timeout=$2 i
    for (( i = 0; i < timeout * 5; i++ )); do
        qemu_guest_running "$name" || return 0
        sleep 0.2
    done
    return 1
}

image_copy () {
    cp --reflink=auto --sparse=always "$1" "$2"
}
