# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Guest images for tests (images/README.md).  Source after
# tests/functions.sh:
#
#   images_tiny          build (or reuse) tiny and its broken variants; sets
#                        TINY_IMG, TINY_NOINIT_IMG, TINY_NOWEB_IMG,
#                        TINY_CORRUPT_IMG (do not boot these: copy them)
#   images_debian        build (or reuse) the debian image; sets DEBIAN_IMG
#   tiny_copy VARIANT DST [KEY=VALUE...]
#                        sparse copy of a tiny image (tiny|noinit|noweb|
#                        corrupt|badboot|poweroff; nombr and badroot too,
#                        but with no KEY=VALUE: their root file system
#                        cannot be found) with guest.conf keys rewritten
#
# Skips the test (77) when the build tools are missing.

images_tiny () {
    local b=$top_srcdir/images/build
    local c
    for c in sfdisk mkfs.fat mcopy syslinux mke2fs debugfs busybox qemu-ga openssl apt-get dpkg-deb; do
        command -v "$c" >/dev/null 2>&1 || skip "$c is not installed (make deps)"
    done
    "$top_srcdir/images/build-tiny.sh" >"$tmp/images-build.log" 2>&1 ||
        { cat "$tmp/images-build.log"; fail "images/build-tiny.sh failed"; }
    TINY_IMG=$b/tiny.img
    TINY_NOINIT_IMG=$b/tiny-noinit.img
    TINY_NOWEB_IMG=$b/tiny-noweb.img
    TINY_CORRUPT_IMG=$b/tiny-corrupt.img
}

images_debian () {
    "$top_srcdir/images/build-debian.sh" >"$tmp/images-debian.log" 2>&1 || {
        local rc=$?
        tail -n 40 "$tmp/images-debian.log"
        [ $rc -eq 77 ] && skip "debian image cannot be built here"
        fail "images/build-debian.sh failed"
    }
    DEBIAN_IMG=$top_srcdir/images/build/debian.img
}

tiny_copy () {
    local variant=$1 dst=$2 src
    shift 2
    src=$top_srcdir/images/build/tiny-$variant.img      # what build-tiny.sh made
    [ "$variant" != tiny ] || src=$TINY_IMG
    [ -f "$src" ] || fail "tiny_copy: unknown variant $variant"
    cp --reflink=auto --sparse=always "$src" "$dst"
    if [ $# -gt 0 ]; then
        "$top_srcdir/images/guest-config" "$dst" "$@" >/dev/null
    fi
}

# tiny_eicar: $sig, a directory whose ClamAV signature names the EICAR
# test file, $tmp/eicar.com, and $tmp/clean.img (a copy of the tiny
# image) and $tmp/bad.img (the same with /eicar.com in its root file
# system).  Needs debugfs and images_tiny first.
tiny_eicar () {
    sig=$tmp/sig; mkdir -p "$sig"
    printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$tmp/eicar.com"
    echo "$(md5sum <"$tmp/eicar.com" | cut -d' ' -f1):68:Test.Eicar.HDB" >"$sig/test.hdb"
    tiny_copy tiny "$tmp/clean.img"
    cp --sparse=always "$tmp/clean.img" "$tmp/bad.img"
    debugfs -w -R "write $tmp/eicar.com /eicar.com" "$tmp/bad.img?offset=$((67584 * 512))" >/dev/null 2>&1
}
