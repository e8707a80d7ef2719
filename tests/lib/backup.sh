# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What the tests of `bootback backup` on a running VM share.  Source after
# tests/functions.sh; it sources images.sh and libvirtd.sh and sets $qga.
#
#   backup_test_start PREFIX
#       a private copy of bootback (a rebuild of the tree while the test
#       runs cannot swap it), dom=PREFIX-PID, the tiny image, a private
#       libvirtd, BOOTBACK_SCRATCH_DIR=$tmp, and $tmp/vm.xml: domain $dom
#       on $tmp/vda.qcow2 (tiny as qcow2), no NIC, its console in
#       $tmp/vm.serial (more disks: tests/lib/add-disk)

source "$top_srcdir/tests/lib/images.sh"
source "$top_srcdir/tests/lib/libvirtd.sh"
qga=$top_srcdir/tests/lib/qga

backup_test_start () {
    cp "$BOOTBACK" "$tmp/bootback" && BOOTBACK=$tmp/bootback
    dom=$1-$$
    images_tiny
    libvirtd_start
    export BOOTBACK_SCRATCH_DIR=$tmp
    qemu-img convert -O qcow2 "$TINY_IMG" "$tmp/vda.qcow2"
    "$top_srcdir/images/domain-xml" NAME="$dom" DISK_PATH="$tmp/vda.qcow2" DISK_FORMAT=qcow2 \
        NET_TYPE=none SERIAL_LOG="$tmp/vm.serial" >"$tmp/vm.xml"
}
