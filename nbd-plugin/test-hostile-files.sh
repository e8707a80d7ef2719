#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A repository on a share others can write may hold files that are not
# regular files where chunks and indexes belong.  A FIFO planted as a
# chunk, an index or a manifest must not hang the server or the command
# that opens it (an open of a FIFO for reading waits for a writer): the
# read fails at once with an error naming the file, and every other read
# is served.  Read-ahead's hint (will_need) opens chunk files too.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires timeout mkfifo
need_py

cd "$tmp"
cs=65536
make_image a.img 1M "0:1M"            # 16 chunks of random data
bb_repo_init repo 64K
point=$(bb_import repo vm 20260101T000000Z vda=a.img)
pdir=repo/points/vm/20260101T000000Z
idx=$pdir/vda.fidx

chunk_file () {   # chunk_file N: the path of chunk N of vda
    local hex
    hex=$(od -An -tx1 -v -j $((64 + 32 * $1)) -N 32 "$idx" | tr -d ' \n')
    echo "repo/chunks/${hex:0:4}/$hex"
}

# 1. chunk 5 a FIFO: with the cache and read-ahead (sequential reads queue
# it) and without.
f=$(chunk_file 5)
rm "$f" && mkfifo -m 0600 "$f"
for opts in "" "cache=0"; do
    : >"$tmp/nbdkit.log"
    bb_nbdkit_start "$plugin" repo=repo point=vm $opts
    rc=0
    timeout 60 "$PY" "$top_srcdir/nbd-plugin/read-chunks.py" "$uri" a.img $cs \
        300000:40000 >bad.out || rc=$?
    [ $rc -ne 124 ] || fail "[$opts] a FIFO in place of a chunk hangs the server"
    diff -u <(printf 'bad 327680 65536 EIO\nbad 300000 40000 EIO\n') bad.out ||
        fail "[$opts] wrong set of failed reads with a FIFO chunk"
    grep -q "$point disk vda bytes 327680-393215: .*$(basename "$f"): not a regular file" "$tmp/nbdkit.log" ||
        { cat "$tmp/nbdkit.log"; fail "[$opts] no log line naming the FIFO chunk"; }
    bb_nbdkit_stop
done
rm "$f"

# 2. the index and the manifest FIFOs: a restore of the point fails, no
# hang, nothing written.
for victim in "$idx" "$pdir/manifest.json"; do
    cp "$victim" saved
    rm "$victim" && mkfifo -m 0600 "$victim"
    rc=0
    out=$(timeout 60 bootback --repo repo restore vm@20260101T000000Z --to out.img 2>&1) ||
        rc=$?
    [ $rc -ne 124 ] || fail "a FIFO as $(basename "$victim") hangs bootback restore"
    [ $rc -ne 0 ] || fail "bootback restore succeeded with a FIFO as $(basename "$victim")"
    [ ! -e out.img ] || fail "bootback restore left out.img behind"
    grep -q "$(basename "$victim")" <<<"$out" || fail "the error does not name $(basename "$victim"): $out"
    rm "$victim" && cp saved "$victim"
done
