#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds the "tiny" guest disk images from Debian packages: a raw disk with
# an MBR, a small FAT boot partition holding SYSLINUX, the Debian kernel and
# an initramfs, and an ext4 root partition with busybox, qemu-guest-agent
# and the bootback guest services (see images/README.md).  The disk alone
# boots: no -kernel from the host.
#
#   images/build-tiny.sh                      tiny + the negative variants
#   images/build-tiny.sh --variant noweb      one variant (tiny|noinit|noweb|corrupt|
#                                             nombr|badboot|badroot|poweroff|
#                                             bluescreen)
#   images/build-tiny.sh --size 16G           tiny of 16 GiB (mostly sparse),
#                                             written to images/build/tiny-16G.img
#   images/build-tiny.sh --out FILE ...       another output path (one variant)
#   images/build-tiny.sh --force ...          rebuild even if the stamp matches
#
# Cache: every output FILE has FILE.stamp holding the SHA-256 of the recipe
# (this script, images/lib/disk.sh, images/tiny/**, the kernel flavour,
# the variant and the size).  When the stamp
# matches, the image is not rebuilt (a cached run takes well under a
# second).  The kernel package is downloaded once with `apt-get download`
# into images/build/kernel/ and unpacked there with dpkg-deb: nothing is
# installed on the host.  Builds hold a lock on images/build/.lock, so
# concurrent callers wait for each other.
#
# Needs no mount and no loop device: the FAT partition is written with
# mkfs.fat --offset / mtools and `syslinux --offset`, the ext4 partition with
# `mke2fs -E offset=N -d DIR`.
#
# Environment:
#   BOOTBACK_KERNEL_FLAVOUR  Debian kernel flavour (default cloud-amd64;
#                            "amd64" for the generic one)
#   BOOTBACK_IMAGES_DIR      output folder (default images/build)

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib/disk.sh"
build=${BOOTBACK_IMAGES_DIR:-$here/build}
flavour=${BOOTBACK_KERNEL_FLAVOUR:-cloud-amd64}

variants=()
size=
out=
force=

usage () {
    sed -n '/^#   images/,/^#$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --variant) variants+=("$2"); shift 2 ;;
        --size)    size=$2; shift 2 ;;
        --out)     out=$2; shift 2 ;;
        --force)   force=1; shift ;;
        -h|--help) usage ;;
        *) echo "build-tiny: unknown argument: $1" >&2; usage ;;
    esac
done
all_variants=(tiny noinit noweb corrupt nombr badboot badroot poweroff bluescreen)
[ ${#variants[@]} -gt 0 ] || {
    if [ -n "$size" ] || [ -n "$out" ]; then variants=(tiny)
    else variants=("${all_variants[@]}"); fi
}
for v in "${variants[@]}"; do
    [[ " ${all_variants[*]} " == *" $v "* ]] ||
        { echo "build-tiny: unknown variant: $v" >&2; exit 1; }
done
if [ -n "$out" ] && [ ${#variants[@]} -ne 1 ]; then
    echo "build-tiny: --out needs exactly one variant" >&2; exit 1
fi

# Size in MiB (accepts 256M, 16G, or a plain number of MiB).
size=${size:-256M}
case "$size" in
    *[Gg]) size_mib=$(( ${size%[Gg]} * 1024 )) ;;
    *[Mm]) size_mib=${size%[Mm]} ;;
    *[!0-9]*|'') echo "build-tiny: bad size: $size" >&2; exit 1 ;;
    *) size_mib=$size ;;
esac
boot_mib=32                            # FAT partition: kernel + initramfs
[ "$size_mib" -ge $((boot_mib + 48)) ] || {
    echo "build-tiny: size must be at least $((boot_mib + 48))M" >&2; exit 1; }

mkdir -p "$build"
exec 9>"$build/.lock"
flock 9

# The recipe hash: every file the image depends on.
recipe_hash () {
    { cat "${BASH_SOURCE[0]}" "$here/lib/disk.sh"
      (cd "$here" && find tiny -type f | LC_ALL=C sort | while read -r f; do
           printf '%s %s\n' "$f" "$(stat -c %a "$f")"; cat "$f"; done)
      echo "flavour=$flavour"
    } | sha256sum | cut -d' ' -f1
}
recipe=$(recipe_hash)

output_of () {
    local v=$1 name=tiny
    [ "$v" = tiny ] || name=tiny-$v
    [ "$size" = 256M ] || name=$name-$size
    if [ -n "$out" ]; then echo "$out"; else echo "$build/$name.img"; fi
}
stamp_of () { echo "$recipe variant=$1 size=${size_mib}M"; }

todo=()
for v in "${variants[@]}"; do
    img=$(output_of "$v")
    if [ -z "$force" ] && [ -f "$img" ] && [ -f "$img.stamp" ] &&
       [ "$(cat "$img.stamp")" = "$(stamp_of "$v")" ]; then
        echo "build-tiny: $img is up to date"
    else
        todo+=("$v")
    fi
done
[ ${#todo[@]} -gt 0 ] || exit 0

t_start=$(date +%s.%N)
work=$(mktemp -d "$build/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---------------------------------------------------------------- kernel
# The versioned package that the flavour's meta-package depends on.
kernel_package () {
    apt-cache depends "linux-image-$flavour" 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1
}
kpkg=$(kernel_package)
if [ -z "$kpkg" ] && [ "$(id -u)" -eq 0 ] && ! ls -1 "$build/kernel" 2>/dev/null | grep -q .; then
    # A new machine whose package lists were never fetched.
    apt-get update -q >/dev/null 2>&1 || true
    kpkg=$(kernel_package)
fi
if [ -z "$kpkg" ]; then
    # No package lists: use a kernel already in the cache, if any.
    kpkg=$(ls -1 "$build/kernel" 2>/dev/null | grep -- "-$flavour\$" | sort -V | tail -n1 || true)
fi
[ -n "$kpkg" ] || { echo "build-tiny: cannot find linux-image-$flavour (apt-get update?)" >&2; exit 1; }
kver=${kpkg#linux-image-}
kdir=$build/kernel/$kpkg
# The modules the guest needs (with their dependencies; built-in ones are
# skipped).  Changing this list re-extracts the kernel from the cached .deb.
want="virtio_pci virtio_blk virtio_net virtio_console virtio_rng ext4 crc32c_generic button evdev"
if [ ! -f "$kdir/done" ] || [ "$(cat "$kdir/want" 2>/dev/null)" != "$want" ]; then
    rm -rf "$kdir"; mkdir -p "$kdir" "$build/kernel/debs"
    deb=$(ls "$build/kernel/debs/${kpkg}_"*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$deb" ]; then
        echo "build-tiny: downloading $kpkg"
        (cd "$build/kernel/debs" && apt-get download "$kpkg" >/dev/null 2>"$work/apt.err") || {
            cat "$work/apt.err" >&2; exit 1; }
        deb=$(ls "$build/kernel/debs/${kpkg}_"*.deb | head -n1)
    fi
    dpkg-deb -x "$deb" "$work/k"
    cp "$work/k/boot/vmlinuz-$kver" "$kdir/vmlinuz"
    cp "$work/k/boot/config-$kver" "$kdir/config"
    mdir=$work/k/lib/modules/$kver
    busybox depmod -b "$work/k" "$kver"
    need=
    add_mod () {   # add_mod NAME: a module and, first, what it depends on
        local name=$1 line path deps d
        line=$(grep -E "(^|/)${name//_/[_-]}\.ko(\.[a-z]+)?:" "$mdir/modules.dep" || true)
        [ -n "$line" ] || return 0             # built in (or absent)
        path=${line%%:*}; deps=${line#*:}
        case " $need " in *" $path "*) return 0 ;; esac
        for d in $deps; do add_mod "$(basename "${d%%.ko*}")"; done
        need="$need $path"
    }
    for m in $want; do add_mod "$m"; done
    mkdir -p "$kdir/modules"
    : >"$kdir/modules.load"
    for p in $need; do
        cp "$mdir/$p" "$kdir/modules/"
        basename "$p" >>"$kdir/modules.load"
    done
    rm -rf "$work/k"
    echo "$want" >"$kdir/want"
    touch "$kdir/done"
fi

# ---------------------------------------------------------------- initramfs
# busybox, the modules (insmod in dependency order) and /init.
ird=$work/initramfs
mkdir -p "$ird"/{bin,dev,proc,sys,newroot,lib/modules}
cp /bin/busybox "$ird/bin/busybox"
ln -s busybox "$ird/bin/sh"
cp "$kdir"/modules/* "$ird/lib/modules/"
cp "$kdir/modules.load" "$ird/lib/modules/"
cp "$here/tiny/initramfs-init" "$ird/init"
chmod 755 "$ird/init"
(cd "$ird" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null) |
    gzip -1 >"$work/initrd.img"

# ---------------------------------------------------------------- root fs
stage_root () {   # stage_root VARIANT DIR
    local v=$1 r=$2 a lib
    mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/lib/bootback,etc,proc,sys,dev,run,tmp,root,var/log,srv/bootback}
    chmod 1777 "$r/tmp"
    ln -s ../run "$r/var/run"
    cp /bin/busybox "$r/bin/busybox"
    /bin/busybox --list-full | while read -r a; do
        [ -e "$r/$a" ] || [ -L "$r/$a" ] || ln -s /bin/busybox "$r/$a"
    done
    # qemu-guest-agent from the host's Debian package, with its libraries.
    cp /usr/sbin/qemu-ga "$r/usr/sbin/qemu-ga"
    for lib in $(ldd /usr/sbin/qemu-ga | grep -o '/[^ ]*'); do
        mkdir -p "$r$(dirname "$lib")"
        cp -L "$lib" "$r$lib"
    done
    # The bootback guest services and configuration.
    cp -a "$here/tiny/rootfs/." "$r/"
    # Data file: 4 MiB of deterministic pseudo-random bytes, and its checksum.
    head -c 4194304 /dev/zero |
        openssl enc -aes-128-ctr -nosalt -K 626f6f746261636b2d74696e792d3031 \
            -iv 00000000000000000000000000000000 >"$r/srv/bootback/data.bin"
    (cd "$r/srv/bootback" && sha256sum data.bin >data.sha256)
    sed -i "s/^IDENTITY=.*/IDENTITY=$(basename "$(output_of "$v")" .img)/" \
        "$r/etc/bootback/guest.conf"
    echo "$v" >"$r/etc/bootback/variant"
    case "$v" in
        noinit)   # init is not a program: the kernel panics after switch_root
            rm -f "$r/sbin/init"
            printf 'this is not an executable\n' >"$r/sbin/init"
            chmod 755 "$r/sbin/init" ;;
        noweb)    # the web service's start script is missing
            rm -f "$r/etc/rc/S50web" ;;
        corrupt)  # data changed after its checksum was recorded
            printf 'CORRUPT!' | dd of="$r/srv/bootback/data.bin" bs=1 seek=1048576 \
                conv=notrunc status=none ;;
        poweroff) # the guest powers itself off during boot, before its agent
            printf '#!/bin/sh\necho "bootback: powering off during boot"\npoweroff -f\n' \
                >"$r/etc/rc/S15poweroff"
            chmod 755 "$r/etc/rc/S15poweroff" ;;
        bluescreen) # a Windows-like stop screen on the display alone (not the
                  # serial console), then nothing: what only the screen tells
            cat >"$r/etc/rc/S05bluescreen" <<'EOS'
#!/bin/sh
printf '\033[2J\033[H\n\n\n   :(\n\n   Your PC ran into a problem and needs to restart.\n\n   Stop code: CRITICAL_PROCESS_DIED\n' >/dev/tty1
exec sleep 2147483647
EOS
            chmod 755 "$r/etc/rc/S05bluescreen" ;;
    esac
}

# Damage done to the assembled disk (the variants no boot loader, kernel or
# file system survives): the first sector of the disk or of a partition,
# zeroed as a wiper or a bad disk would leave it.
damage_disk () {   # damage_disk VARIANT IMAGE
    local v=$1 img=$2 start
    case "$v" in
        nombr)    # no boot code and no partition table: the firmware finds
                  # nothing to boot
            dd if=/dev/zero of="$img" bs=512 count=1 conv=notrunc status=none ;;
        badboot)  # the boot partition's boot sector (SYSLINUX's) is gone
            start=$(sfdisk -q -d "$img" | sed -n 's/.*1 : start= *\([0-9]*\).*/\1/p')
            dd if=/dev/zero of="$img" bs=512 seek="$start" count=1 conv=notrunc status=none ;;
        badroot)  # the root file system's superblock is gone: unmountable,
                  # its label unknown; the initramfs drops to its shell
            start=$(sfdisk -q -d "$img" | sed -n 's/.*2 : start= *\([0-9]*\).*/\1/p')
            dd if=/dev/zero of="$img" bs=512 seek=$((start + 2)) count=2 conv=notrunc status=none ;;
    esac
}

# ---------------------------------------------------------------- disk
make_disk () {   # make_disk VARIANT OUTPUT
    local v=$1 img=$2 tmpimg r
    tmpimg=$img.tmp.$$
    r=$work/root-$v
    stage_root "$v" "$r"
    disk_assemble "$tmpimg" "$size_mib" "$boot_mib" "$kdir/vmlinuz" "$work/initrd.img" \
        "$here/tiny/syslinux.cfg" "$r" || { rm -f "$tmpimg"; exit 1; }
    damage_disk "$v" "$tmpimg"
    mv -f "$tmpimg" "$img"
    stamp_of "$v" >"$img.stamp"
    echo "build-tiny: built $img ($v, ${size_mib} MiB, $(du -k "$img" | cut -f1) KiB used, $kpkg)"
}

for v in "${todo[@]}"; do
    make_disk "$v" "$(output_of "$v")"
done
printf 'build-tiny: done in %.1f s\n' "$(echo "$(date +%s.%N) - $t_start" | bc)"
