# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What the instant-recovery tests share: a private libvirtd, a network
# namespace on a bridge, TCG domains, a fresh repository, and a clean-up
# that stops every session supervisor and nbdkit this test left behind.
#
#   source "$top_srcdir/tests/lib/instant.sh"
#   instant_requires [CMD...]        # root, qemu-img, nbdkit, virsh, python3
#                                    # and CMD... (else skip); the tiny image
#   instant_migrate_targets          # $tmp/small (a 16 MiB file system)
#                                    # and $tmp/prod: before instant_setup
#   instant_setup                    # libvirtd, netns, repository
#   instant_import_tiny [NET [MAC]]  # the tiny image as restore point "tiny"
#
# Source after functions.sh; it sources libvirtd.sh, netns.sh and
# images.sh, and sets $qga (the guest agent client, tests/lib/qga).

source "$top_srcdir/tests/lib/libvirtd.sh"
source "$top_srcdir/tests/lib/netns.sh"
source "$top_srcdir/tests/lib/images.sh"
qga=$top_srcdir/tests/lib/qga

instant_requires () {
    requires qemu-img nbdkit virsh python3 "$@"
    [ "$(id -u)" -eq 0 ] || skip "needs root (libvirtd, tmpfs, network namespace)"
    images_tiny
}

instant_cleanup () {
    local p
    for p in $(pgrep -f -- "--home $BOOTBACK_HOME supervise" || true); do kill "$p"; done
    sleep 1
    for p in $(pgrep -f -- "^nbdkit .*$BOOTBACK_HOME/(sessions|pools)/" || true); do kill -9 "$p"; done
}

# Targets for migrations: $tmp/small, a 16 MiB file system a migration
# fails to fit in, and $tmp/prod.  Call it before instant_setup: the
# private libvirtd's mount namespace copies the host's mounts at start.
instant_migrate_targets () {
    mkdir -p "$tmp/small" "$tmp/prod"
    mount -t tmpfs -o size=16M,mode=0755 tmpfs "$tmp/small"
    cleanup_fn "umount -l '$tmp/small'"
}

instant_setup () {
    libvirtd_start
    cleanup_fn instant_cleanup
    netns_create
    export BOOTBACK_DOMAIN_TYPE=qemu
    bootback repo init "$tmp/repo" >/dev/null
}

# Import the tiny image with a domain definition whose NIC is on NET (the
# namespace's bridge by default); the image file itself is removed, so
# the backup is all there is.
instant_import_tiny () {
    local net=${1:-$NETNS_BRIDGE} mac=${2:-}
    tiny_copy tiny "$tmp/tiny.img"
    "$top_srcdir/images/domain-xml" NAME=tiny DISK_PATH="$tmp/tiny.img" \
        NET_SOURCE="$net" ${mac:+MAC=$mac} > "$tmp/tiny.xml"
    bootback import "$tmp/tiny.img" --vm tiny --domain-xml "$tmp/tiny.xml" >/dev/null
    rm "$tmp/tiny.img"
}
