#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Frame sizes.  A repository made before smaller frames
# (old-repo-64k.tar.gz: "hash": "sha256-tree", 64 KiB frames, 256 KiB
# chunks, made by the bootback of 254412b from frames-image.py's image)
# reads byte for byte, whole and in part, with and without the cache,
# and passes repo verify.  A new repository with 1 MiB chunks has 16 KiB
# frames ("sha256-tree-16k", recorded in each chunk's header), reads the
# same; repo verify passes, and once a frame is damaged fails (exit 2)
# naming the chunk, while reads of the chunk's other frames still work.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
need_py
bb_have_cli || skip "bootback is not built"

cd "$tmp"
"$PY" "$top_srcdir/nbd-plugin/frames-image.py" a.img
tar -xzf "$top_srcdir/nbd-plugin/old-repo-64k.tar.gz"
mv repo old
grep -q '"hash": "sha256-tree"' old/bootback-repo.json || fail "fixture: not sha256-tree"
# 4K reads: in the random data, the zeros, across chunks and frames, the end
spans="300000:4096 700000:4096 262142:4 65530:12 1044480:4096 0:1048576"

# read_all REPO CS NAME: every chunk and span reads as the image does
read_all () {
    local opts
    for opts in "" "cache=0" "cache=1M readahead=0"; do
        bb_nbdkit_start "$plugin" repo="$1" point=$3 $opts
        "$PY" "$top_srcdir/nbd-plugin/read-chunks.py" "$uri" a.img "$2" $spans >bad.out ||
            fail "[$1 $opts] wrong data"
        [ ! -s bad.out ] || { cat bad.out; fail "[$1 $opts] failed reads"; }
        nbdcopy "$uri" out.img && cmp out.img a.img || fail "[$1 $opts] copy differs"
        bb_nbdkit_stop
    done
}

read_all old 262144 old
"$BOOTBACK" --repo old repo verify >verify.out || { cat verify.out; fail "old: repo verify"; }

"$BOOTBACK" repo init new >/dev/null
grep -q '"hash": "sha256-tree-16k"' new/bootback-repo.json ||
    { cat new/bootback-repo.json; fail "new repository: not 16 KiB frames"; }
bb_import new new 20260101T000000Z vda=a.img >/dev/null
read_all new 1048576 new
"$BOOTBACK" --repo new repo verify >verify.out || { cat verify.out; fail "new: repo verify"; }
# the chunk's header says 2^14
hex=$(od -An -tx1 -v -j 64 -N 32 new/points/new/20260101T000000Z/vda.fidx | tr -d ' \n')
f=new/chunks/${hex:0:4}/$hex
[ "$(od -An -tu1 -j 4 -N 1 "$f" | tr -d ' ')" = 14 ] || fail "chunk header: frame shift"

# a bit flipped in the last frame's stored bytes
o=$(( $(stat -c %s "$f") - 10 ))
b=$(od -An -tu1 -j $o -N 1 "$f" | tr -d ' ')
printf "\\$(printf '%03o' $((b ^ 4)))" | dd of="$f" bs=1 seek=$o conv=notrunc status=none
rc=0
"$BOOTBACK" --repo new repo verify >verify.out 2>&1 || rc=$?
[ $rc = 2 ] || { cat verify.out; fail "damaged frame: repo verify exit $rc, not 2"; }
grep -q "$hex" verify.out || { cat verify.out; fail "repo verify does not name chunk $hex"; }
bb_nbdkit_start "$plugin" repo=new point=new
"$PY" "$top_srcdir/nbd-plugin/read-chunks.py" "$uri" a.img 1048576 0:4096 1044480:4096 >bad.out ||
    fail "damaged frame: wrong data"
diff -u <(printf 'bad 0 1048576 EIO\nbad 1044480 4096 EIO\n') bad.out ||
    fail "damaged frame: wrong set of failed reads"
bb_nbdkit_stop
echo "PASS: old 64 KiB frames and new 16 KiB frames read and verify"
