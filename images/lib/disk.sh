# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Disk assembly shared by the image recipes (sourced).  Writes a raw disk
# with an MBR and SYSLINUX's boot code, partition 1 a bootable FAT16 holding
# SYSLINUX, the kernel, the initramfs and syslinux.cfg, partition 2 an ext4
# (label bbroot) made from a staged directory.  No mount, no loop device:
# mkfs.fat --offset, mtools, syslinux --offset and mke2fs -E offset=N -d.
#
#   disk_assemble IMG SIZE_MIB BOOT_MIB KERNEL INITRD SYSLINUX_CFG ROOTDIR \
#                 [INODES [JOURNAL_MIB]]
#
# IMG is written in place (the caller renames a temporary file).  A small
# INODES count (default 8192) and journal (default 8 MiB) keep large disks
# sparse; the filesystem metadata is written now rather than lazily by the
# guest after boot.  Returns non-zero on any failure.

disk_assemble () {
    local img=$1 size_mib=$2 boot_mib=$3 kernel=$4 initrd=$5 cfg=$6 root=$7
    local inodes=${8:-8192} journal=${9:-8}
    local boot_start=2048 boot_sectors root_start root_sectors log
    boot_sectors=$((boot_mib * 2048))
    root_start=$((boot_start + boot_sectors))
    root_sectors=$((size_mib * 2048 - root_start))
    [ $root_sectors -gt $((48 * 2048)) ] || { echo "disk_assemble: disk too small" >&2; return 1; }
    rm -f "$img"
    truncate -s "${size_mib}M" "$img"
    sfdisk -q "$img" <<PARTS || return 1
label: dos
label-id: 0xb007bac0
start=$boot_start, size=$boot_sectors, type=e, bootable
start=$root_start, size=$root_sectors, type=83
PARTS
    dd if=/usr/lib/syslinux/mbr/mbr.bin of="$img" bs=440 count=1 conv=notrunc status=none || return 1
    # (mkfs.fat warns that the file is larger than the filesystem: intended.)
    log=$(mkfs.fat -F 16 -n BBBOOT --offset "$boot_start" "$img" $((boot_mib * 1024)) 2>&1) ||
        { echo "$log" >&2; return 1; }
    local fat="$img@@$((boot_start * 512))"
    MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$kernel" ::/vmlinuz || return 1
    MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$initrd" ::/initrd.img || return 1
    MTOOLS_SKIP_CHECK=1 mcopy -i "$fat" "$cfg" ::/syslinux.cfg || return 1
    syslinux --offset $((boot_start * 512)) --install "$img" || return 1
    mke2fs -q -F -t ext4 -L bbroot -N "$inodes" -J size=$journal -m 0 \
        -E offset=$((root_start * 512)),lazy_itable_init=0,lazy_journal_init=0 \
        -d "$root" "$img" $((root_sectors / 2))k || return 1
}
