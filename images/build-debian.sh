#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds the "debian" guest image: a real Debian 12 (bookworm) system made
# with debootstrap — systemd, qemu-guest-agent (with a PostgreSQL fsfreeze
# hook), nginx, PostgreSQL 15 holding a small "bootback" database, sshd —
# on a raw disk laid out like tiny's (MBR, FAT boot partition with SYSLINUX
# and the Debian cloud kernel + initramfs from the image itself, ext4 root
# labelled bbroot).  Reads the same /etc/bootback/guest.conf as tiny, so
# images/guest-config works on it (see images/README.md).
#
#   images/build-debian.sh [--size 3G] [--out FILE] [--force]
#
# Output: images/build/debian.img (+ .stamp, the SHA-256 of this script,
# images/lib/disk.sh, images/debian/** and the size: rebuilt only when
# that changes).  Downloaded packages are kept in
# images/build/debootstrap-cache/.  The mirror is the host's own Debian
# archive from its apt sources (BOOTBACK_DEBIAN_MIRROR overrides it).
#
# Needs root (debootstrap, chroot).  debootstrap mounts /proc and /sys in
# the target while it runs; the PostgreSQL set-up runs in a private mount
# and network namespace.  Nothing is installed on the host.
# Exit status: 0 built or up to date, 1 error, 77 the Debian archive cannot
# be reached (callers skip).

set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib/disk.sh"
build=${BOOTBACK_IMAGES_DIR:-$here/build}
size=3G
out=
force=
while [ $# -gt 0 ]; do
    case "$1" in
        --size)  size=$2; shift 2 ;;
        --out)   out=$2; shift 2 ;;
        --force) force=1; shift ;;
        *) echo "build-debian: unknown argument: $1" >&2; exit 1 ;;
    esac
done
case "$size" in
    *[Gg]) size_mib=$(( ${size%[Gg]} * 1024 )) ;;
    *[Mm]) size_mib=${size%[Mm]} ;;
    *) echo "build-debian: bad size: $size" >&2; exit 1 ;;
esac
img=${out:-$build/debian.img}
[ "$(id -u)" -eq 0 ] || { echo "build-debian: needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-debian: debootstrap is not installed" >&2; exit 1; }

mkdir -p "$build"
exec 9>"$build/.lock-debian"
flock 9

recipe=$( { cat "${BASH_SOURCE[0]}" "$here/lib/disk.sh"
            (cd "$here" && find debian -type f | LC_ALL=C sort | while read -r f; do
                 printf '%s %s\n' "$f" "$(stat -c %a "$f")"; cat "$f"; done)
            echo "size=$size_mib"; } | sha256sum | cut -d' ' -f1)
if [ -z "$force" ] && [ -f "$img" ] && [ "$(cat "$img.stamp" 2>/dev/null)" = "$recipe" ]; then
    echo "build-debian: $img is up to date"
    exit 0
fi

t_start=$(date +%s)
work=$(mktemp -d "$build/debian-work.XXXXXX")
root=$work/root
unmount_all () {
    local m
    for m in $(awk -v r="$root" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
}
trap 'unmount_all; rm -rf "$work"' EXIT

# The mirror: the host's Debian archive (not the security one).
mirror=${BOOTBACK_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
             awk '/^URIs:/ { u = $2 } /^Suites:/ && / bookworm( |$)/ { print u; exit }')
fi
if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
fi
[ -n "$mirror" ] || { echo "build-debian: no bookworm mirror in the apt sources" >&2; exit 1; }

# ---------------------------------------------------------------- debootstrap
include=$(grep -v '^#' "$here/debian/packages" | grep . | paste -sd, -)
mkdir -p "$build/debootstrap-cache"
echo "build-debian: debootstrap bookworm ($include)"
if ! debootstrap --variant=minbase --cache-dir="$build/debootstrap-cache" \
        --include="$include" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    if grep -qE 'Failed getting release file|Could not resolve|Couldn.t download|Connection (failed|refused|timed out)' \
            "$work/debootstrap.log"; then
        echo "build-debian: the Debian archive cannot be reached" >&2
        exit 77
    fi
    exit 1
fi
unmount_all

# ---------------------------------------------------------------- configure
in_root () { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
cp -a "$here/debian/rootfs/." "$root/"
# (kept outside rootfs/ in the recipe: the repository ignores "*.d" names)
install -m 755 "$here/debian/fsfreeze-hook-postgresql" "$root/etc/qemu/fsfreeze-hook.d/postgresql"
# The host's apt sources, so the guest can install more (the lab never lets
# it reach them; this is for the demo and for people).
mkdir -p "$root/etc/apt/sources.list.d"
cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
echo debian >"$root/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
echo 'LABEL=bbroot / ext4 errors=remount-ro 0 1' >"$root/etc/fstab"
in_root passwd -d root >/dev/null
# The data file, identical to tiny's.
mkdir -p "$root/srv/bootback"
head -c 4194304 /dev/zero |
    openssl enc -aes-128-ctr -nosalt -K 626f6f746261636b2d74696e792d3031 \
        -iv 00000000000000000000000000000000 >"$root/srv/bootback/data.bin"
(cd "$root/srv/bootback" && sha256sum data.bin >data.sha256)
# Services.
rm -f "$root/etc/nginx/sites-enabled/default"
ln -sf ../sites-available/bootback "$root/etc/nginx/sites-enabled/bootback"
echo '<html><body><h1>bootback debian guest</h1></body></html>' >"$root/var/www/html/index.html"
in_root systemctl enable bootback-network.service bootback-health.service \
    bootback-ready.service ssh.service nginx.service postgresql.service >/dev/null 2>&1
# Nothing periodic that would write to the disk behind a test's back.
in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
    fstrim.timer man-db.timer systemd-networkd-wait-online.service >/dev/null 2>&1 || true

# The database: PostgreSQL started in the target (a private mount and
# network namespace: unix socket only), database "bootback" with 1000 rows.
rows=1000
unshare -m -n --propagation private -- /bin/sh -e -c '
    root=$1 rows=$2
    mount -t proc proc "$root/proc"
    mount -t tmpfs tmpfs "$root/dev/shm"
    mount -t tmpfs tmpfs "$root/run"
    mkdir -p "$root/run/postgresql"
    chroot "$root" chown postgres:postgres /run/postgresql
    chroot "$root" runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -s -w \
        -D /var/lib/postgresql/15/main -o "-c config_file=/etc/postgresql/15/main/postgresql.conf -c listen_addresses=" \
        start
    chroot "$root" runuser -u postgres -- psql -X -q -c "CREATE DATABASE bootback"
    chroot "$root" runuser -u postgres -- psql -X -q -d bootback -c \
        "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, payload bytea NOT NULL);
         INSERT INTO items SELECT i, '\''item-'\'' || i, sha256(int4send(i)) FROM generate_series(1, $rows) AS i;"
    chroot "$root" runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -s -w \
        -D /var/lib/postgresql/15/main -m fast stop
' sh "$root" "$rows" >"$work/db.log" 2>&1 || { cat "$work/db.log" >&2; exit 1; }
echo "$rows" >"$root/srv/bootback/db.rows"

# First boot like any restored VM: a fresh machine-id, no caches.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/*

# ---------------------------------------------------------------- disk
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -n1)
tmpimg=$img.tmp.$$
disk_assemble "$tmpimg" "$size_mib" 96 "$kernel" "$initrd" "$here/debian/syslinux.cfg" \
    "$root" 131072 32 || { rm -f "$tmpimg"; exit 1; }
mv -f "$tmpimg" "$img"
echo "$recipe" >"$img.stamp"
echo "build-debian: built $img (${size_mib} MiB, $(du -k "$img" | cut -f1) KiB used," \
     "$(basename "$kernel"), $(( $(date +%s) - t_start )) s)"
