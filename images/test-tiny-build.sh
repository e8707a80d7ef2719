#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The tiny images are built, cached, and have the expected layout: an MBR
# with a bootable FAT partition (SYSLINUX, kernel, initramfs) and an ext4
# root holding the guest services; each negative variant differs from tiny
# in exactly the intended way; a cached build is fast; images/guest-config
# rewrites guest.conf offline and leaves a clean filesystem; --size builds
# a large, mostly sparse disk.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/images.sh"
requires e2fsck mdir

images_tiny
gc=$top_srcdir/images/guest-config

# A second build must be a cache hit, and quick.
t0=$(date +%s.%N)
"$top_srcdir/images/build-tiny.sh" >"$tmp/rebuild.log"
secs=$(echo "$(date +%s.%N) - $t0" | bc)
grep -q 'tiny.img is up to date' "$tmp/rebuild.log" || { cat "$tmp/rebuild.log"; fail "cached build rebuilt"; }
[ "$(echo "$secs < 3" | bc)" = 1 ] || fail "cached build took ${secs}s"
echo "cached build: ${secs}s"

fsof () { "$gc" --file "$1"; }
rootcat () { debugfs -R "cat $2" "$(fsof "$1")" 2>/dev/null; }

for img in "$TINY_IMG" "$TINY_NOINIT_IMG" "$TINY_NOWEB_IMG" "$TINY_CORRUPT_IMG"; do
    [ "$(stat -c %s "$img")" = 268435456 ] || fail "$img: not 256 MiB"
    [ "$(du -k "$img" | cut -f1)" -lt 81920 ] || fail "$img: not sparse"
    # MBR: signature, partition 1 bootable FAT16 (0x0e), partition 2 Linux.
    [ "$(od -An -tx1 -j510 -N2 "$img" | tr -d ' \n')" = 55aa ] || fail "$img: no MBR signature"
    [ "$(od -An -tx1 -j446 -N1 "$img" | tr -d ' \n')" = 80 ] || fail "$img: partition 1 not bootable"
    [ "$(od -An -tx1 -j450 -N1 "$img" | tr -d ' \n')" = 0e ] || fail "$img: partition 1 not FAT16"
    [ "$(od -An -tx1 -j466 -N1 "$img" | tr -d ' \n')" = 83 ] || fail "$img: partition 2 not Linux"
    # SYSLINUX MBR code is there (not an empty boot sector).
    [ "$(od -An -tx1 -N440 "$img" | tr -d ' \n0' | wc -c)" -gt 100 ] || fail "$img: no MBR boot code"
    MTOOLS_SKIP_CHECK=1 mdir -a -b -i "$img@@1048576" :: >"$tmp/fat.txt"
    for f in LDLINUX.SYS LDLINUX.C32 SYSLINUX.CFG VMLINUZ INITRD.IMG; do
        grep -qi "/$f\$" "$tmp/fat.txt" || { cat "$tmp/fat.txt"; fail "$img: no $f on the boot partition"; }
    done
    e2fsck -fn "$(fsof "$img")" >"$tmp/fsck.txt" 2>&1 || { cat "$tmp/fsck.txt"; fail "$img: ext4 not clean"; }
    for f in /etc/bootback/guest.conf /usr/sbin/qemu-ga /sbin/shutdown /usr/lib/bootback/http \
             /srv/bootback/data.bin /srv/bootback/data.sha256 /etc/inittab; do
        debugfs -R "stat $f" "$(fsof "$img")" >/dev/null 2>&1 &&
            debugfs -R "stat $f" "$(fsof "$img")" 2>/dev/null | grep -q 'Type: regular' ||
            fail "$img: no $f in the root filesystem"
    done
done

# Each variant's identity and its one difference.
for v in tiny noinit noweb corrupt; do
    case $v in tiny) img=$TINY_IMG ;; noinit) img=$TINY_NOINIT_IMG ;;
               noweb) img=$TINY_NOWEB_IMG ;; corrupt) img=$TINY_CORRUPT_IMG ;; esac
    [ "$(rootcat "$img" /etc/bootback/variant)" = "$v" ] || fail "$img: variant is not $v"
    id=$("$gc" "$img" | sed -n 's/^IDENTITY=//p')
    case $v in tiny) [ "$id" = tiny ] ;; *) [ "$id" = "tiny-$v" ] ;; esac ||
        fail "$img: IDENTITY=$id"
    rootcat "$img" /srv/bootback/data.bin >"$tmp/data.bin"
    want=$(rootcat "$img" /srv/bootback/data.sha256 | cut -d' ' -f1)
    have=$(sha256sum "$tmp/data.bin" | cut -d' ' -f1)
    if [ $v = corrupt ]; then
        [ "$want" != "$have" ] || fail "corrupt: data file matches its checksum"
    else
        [ "$want" = "$have" ] || fail "$v: data file does not match its checksum"
    fi
    rootcat "$img" /sbin/init >"$tmp/init"
    if [ $v = noinit ]; then
        ! head -c4 "$tmp/init" | grep -q ELF || fail "noinit: /sbin/init is a program"
    else
        debugfs -R "stat /sbin/init" "$(fsof "$img")" 2>/dev/null | grep -q 'Type: symlink' ||
            fail "$v: /sbin/init is not the busybox link"
    fi
    if debugfs -R "stat /etc/rc/S50web" "$(fsof "$img")" 2>/dev/null | grep -q Type; then
        [ $v != noweb ] || fail "noweb: has the web start script"
    else
        [ $v = noweb ] || fail "$v: no web start script"
    fi
done

# guest-config: offline rewrite on a copy, original untouched, fs clean.
cp --sparse=always "$TINY_IMG" "$tmp/c.img"
"$gc" "$tmp/c.img" ADDRESS=10.77.0.42 IDENTITY='copy 42' EXTRA=1 >/dev/null
"$gc" "$tmp/c.img" >"$tmp/conf"
grep -qx 'ADDRESS=10.77.0.42' "$tmp/conf" || fail "guest-config: ADDRESS not set"
grep -qx 'IDENTITY=copy 42' "$tmp/conf" || fail "guest-config: IDENTITY not set"
grep -qx 'EXTRA=1' "$tmp/conf" || fail "guest-config: new key not appended"
grep -qx 'GATEWAY=10.77.0.1' "$tmp/conf" || fail "guest-config: other keys lost"
[ "$(grep -c '^ADDRESS=' "$tmp/conf")" = 1 ] || fail "guest-config: duplicate ADDRESS"
"$gc" "$TINY_IMG" | grep -qx 'ADDRESS=10.77.0.10' || fail "guest-config changed the original"
e2fsck -fn "$(fsof "$tmp/c.img")" >"$tmp/fsck.txt" 2>&1 || { cat "$tmp/fsck.txt"; fail "ext4 not clean after guest-config"; }
expect_fail "$gc" "$tmp/c.img" 'bad key=1' 2>/dev/null
expect_fail "$gc" "$tmp/nonexistent.img" 2>/dev/null
qemu-img convert -O qcow2 "$TINY_IMG" "$tmp/c.qcow2"
expect_fail "$gc" "$tmp/c.qcow2" ADDRESS=1.2.3.4 2>/dev/null

# A large disk: 16 GiB virtual, mostly sparse, root filesystem spans it.
t0=$(date +%s.%N)
"$top_srcdir/images/build-tiny.sh" --size 16G --out "$tmp/big.img" >/dev/null
echo "16 GiB build: $(echo "$(date +%s.%N) - $t0" | bc)s"
[ "$(stat -c %s "$tmp/big.img")" = 17179869184 ] || fail "big: not 16 GiB"
used=$(du -k "$tmp/big.img" | cut -f1)
echo "16 GiB image uses $used KiB"
[ "$used" -lt 204800 ] || fail "big: $used KiB allocated, not sparse"
blocks=$(dumpe2fs -h "$(fsof "$tmp/big.img")" 2>/dev/null | sed -n 's/^Block count: *//p')
[ "$blocks" -gt $((15 * 1024 * 256)) ] || fail "big: root filesystem has only $blocks blocks"
e2fsck -fn "$(fsof "$tmp/big.img")" >/dev/null 2>&1 || fail "big: ext4 not clean"
echo "ok"
