# SPDX-License-Identifier: LGPL-2.1-or-later
# LVM fixtures without device-mapper or a mount (tests/test-scan-lvm.sh,
# bench/scan): lvm2 writes the PV/VG/LV metadata on a loop device with
# activation off, dd puts a file system where an LV's extents are.
#   lvm_on DEV CMD ARGS...   run lvm2's CMD on DEV only, without
#                            device-mapper, writing nothing to /etc/lvm
#                            (output to $tmp/lvm.log)
#   lv_offset DEV VG LV      the byte offset in DEV of LV's first extent
#   lvm_loops_cleanup        detach the loop devices in lvm_loops
export LVM_SUPPRESS_FD_WARNINGS=1
lvm_loops=()

lvm_on () {
    local dev=$1 cmd=$2
    shift 2
    "$cmd" --devices "$dev" --driverloaded n \
        --config 'backup { backup = 0 archive = 0 }' "$@" >>"$tmp/lvm.log" 2>&1
}

lv_offset () {
    local dev=$1 vgname=$2 lv=$3 pe ext extent
    local o=(--devices "$dev" --driverloaded n --noheadings)
    pe=$(pvs "${o[@]}" --units b --nosuffix -o pe_start "$dev" 2>/dev/null | tr -d ' ')
    ext=$(vgs "${o[@]}" --units b --nosuffix -o vg_extent_size "$vgname" 2>/dev/null | tr -d ' ')
    extent=$(lvs "${o[@]}" -o seg_pe_ranges "$vgname/$lv" 2>/dev/null |
             sed 's/.*:\([0-9]*\)-.*/\1/')
    echo $((pe + extent * ext))
}

lvm_loops_cleanup () {
    local d
    for d in "${lvm_loops[@]}"; do losetup -d "$d" 2>/dev/null || true; done
    lvm_loops=()
}
