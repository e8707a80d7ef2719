#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Many connections reading random ranges in parallel, each with 16
# requests in flight, from several restore points that share chunks,
# checked byte for byte against the source images: with a cache much
# smaller than the data (constant eviction, many waiters on the same
# chunk), with the default cache, and without a cache.  nbdcopy with
# multi-conn runs at the same time.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires numfmt
need_py

cd "$tmp"
make_image a.img 12M "0:5M 6M:64K:9 7000000:4M 11M:300000"
cp a.img b.img                    # shares all chunks but those of 1M-2M
head -c 1M /dev/urandom | dd of=b.img bs=1M seek=1 conv=notrunc status=none
make_image c.img $((5 * 1048576 + 12345)) "0:5M 5M:12345"
bb_repo_init repo 64K
bb_import repo web 20260101T000000Z vda=a.img >/dev/null
bb_import repo web 20260102T000000Z vda=b.img vdb=c.img >/dev/null

threads=8 reqs=200
[ -z "${BOOTBACK_VALGRIND:-}" ] || { threads=4 reqs=40; }
exports="web@20260101T000000Z/vda=a.img web@20260102T000000Z/vda=b.img
         web@20260102T000000Z/vdb=c.img"

for opts in "cache=256K" "" "cache=0"; do
    : >"$tmp/nbdkit.log"
    bb_nbdkit_start "$plugin" repo=repo $opts
    nbdcopy --connections=4 "nbd+unix:///web@20260101T000000Z/vda?socket=$sock" out.img &
    copy=$!
    "$PY" "$top_srcdir/nbd-plugin/concurrent-reads.py" "$sock" $threads $reqs 42 $exports ||
        { tail -20 "$tmp/nbdkit.log"; fail "[$opts] concurrent reads"; }
    wait $copy || fail "[$opts] nbdcopy"
    cmp out.img a.img || fail "[$opts] nbdcopy result"
    ! grep -q 'error' "$tmp/nbdkit.log" || { cat "$tmp/nbdkit.log"; fail "[$opts] errors logged"; }
    bb_nbdkit_stop
done
echo "test-concurrent: ok"
