#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The broken tiny variants fail to boot the way real broken disks do, and
# each says so on its console (what a verification must recognise):
#   nombr     no boot sector: the firmware finds nothing to boot
#             ("not a bootable disk", "No bootable device.");
#   badboot   the boot partition's boot sector is gone: the MBR code says
#             "Missing operating system.";
#   badroot   the root file system is unmountable: the initramfs gives up
#             and drops to its "(initramfs)" shell, as Debian's does;
#   poweroff  the guest powers itself off during boot: QEMU exits.
# None of them reaches the root system's rc scripts (poweroff: only up to
# its own).  The four boot at once, plain QEMU, TCG.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/qemu.sh"
requires qemu-system-x86_64 python3
timeout_s=$(( 90 * slow ))

images_tiny
for v in nombr badboot badroot poweroff; do
    tiny_copy "$v" "$tmp/$v.img"
    # graphics=off: the firmware writes to the serial port too (libvirt's
    # <bios useserial='yes'/> does the same), not only to the screen
    qemu_guest_start "$v" "$tmp/$v.img" -no-reboot -machine graphics=off
done

# The console with terminal escapes taken out (SeaBIOS draws its screen).
console () {
    python3 -c 'import re, sys
s = open(sys.argv[1], "rb").read().decode("latin1")
print(re.sub(r"\x1b(\[[0-9;?]*[A-Za-z]|c)", "", s).replace("\r", ""))' "$tmp/$1.serial"
}
# wait_console VARIANT TEXT: until the console holds TEXT (fixed string).
wait_console () {
    local v=$1 text=$2 i
    for (( i = 0; i < timeout_s * 2; i++ )); do
        grep -qF -- "$text" <<< "$(console "$v")" && return 0
        sleep 0.5
    done
    console "$v"; fail "$v: no \"$text\" on the console within $timeout_s s"
}

wait_console nombr "No bootable device."
wait_console nombr "Boot failed: not a bootable disk"
wait_console badboot "Missing operating system."
wait_console badroot "ALERT!  LABEL=bbroot does not exist.  Dropping to a shell!"
wait_console badroot "(initramfs) "
wait_console poweroff "bootback: powering off during boot"
qemu_guest_wait_exit poweroff "$timeout_s" || fail "poweroff: QEMU still runs"
grep -q "reboot: Power down" <<< "$(console poweroff)" || fail "poweroff: no power down"

for v in nombr badboot badroot; do
    qemu_guest_running "$v" || fail "$v: QEMU exited (expected a guest stuck at boot)"
done
for v in nombr badboot; do
    ! grep -q "Linux version\|SYSLINUX" <<< "$(console "$v")" || fail "$v: a boot loader ran"
done
for v in nombr badboot badroot poweroff; do
    if grep -q "bootback: starting" <<< "$(console "$v")" && [ "$v" != poweroff ]; then
        fail "$v: reached the root system's rc scripts"
    fi
done
grep -q "bootback: web" <<< "$(console poweroff)" && fail "poweroff: went on booting after S15"
echo ok
