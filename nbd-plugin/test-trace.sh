#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# trace= and prefetch= (nbd-plugin/trace.c): trace= records each chunk's
# first read once, in order, after the format's header; a restarted server
# appends without a second header.  prefetch= loads a trace's chunks
# before the client reads them (the statistics line says so) and the data
# read is the same; a hostile prefetch file (index past the disk, bad
# header) is a warning, the reads unchanged.  Both need point=.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires numfmt nbdcopy

cd "$tmp"
make_image a.img 1M "0:64K 256K:64K 512K:128K"
bb_repo_init repo 64K
bb_import repo web 20260101T000000Z vda=a.img >/dev/null

# read OFFSET...: one 4K read at each offset, in order, through a server
# with ARGS (the rest), into out.img.
copy () { bb_nbdkit -r -U - "$plugin" repo=repo point=web "$@" --run 'nbdcopy "$uri" out.img' 2>err.log; }

copy trace=t.trace
cmp a.img out.img || fail "trace=: data differs"
[ "$(sed -n 1,2p t.trace | tr '\n' ' ')" = "bootback-trace 1 chunk-size 65536 " ] ||
    { cat t.trace; fail "no header"; }
chunks=$(tail -n +3 t.trace | cut -d' ' -f1 | sort -n | tr '\n' ' ')
n=$(tail -n +3 t.trace | wc -l)
[ "$(tail -n +3 t.trace | cut -d' ' -f1 | sort -u | wc -l)" = "$n" ] ||
    fail "a chunk traced twice: $chunks"
for c in 0 4 8 9; do
    [[ " $chunks" == *" $c "* ]] || fail "chunk $c (data, read) not traced: $chunks"
done
copy trace=t.trace
[ "$(grep -c bootback-trace t.trace)" = 1 ] || fail "a restart wrote a second header"
[ "$(tail -n +3 t.trace | wc -l)" = $((2 * n)) ] || fail "a restart did not append its reads"

# prefetch: the list in reverse order; every chunk loaded, the data the same
printf 'bootback-trace 1\nchunk-size 65536\n9 0\n8 1\n4 2\n0 3\n' > p.trace
bb_nbdkit -r -U - "$plugin" repo=repo point=web prefetch=p.trace \
    --run 'sleep 1; nbdcopy "$uri" out.img' 2>err.log
cat err.log
cmp a.img out.img || fail "prefetch=: data differs"
grep -q "prefetch: done: 4 of 4 traced chunks loaded" err.log || fail "nothing prefetched"
grep -q "the guest read 4 traced chunks, 4 of them prefetched" err.log || fail "no prefetched reads"

# hostile lists: a warning naming the file and the line, the data the same
for bad in 'bootback-trace 1\nchunk-size 65536\n16 0\n' 'bootback-trace 9\n' \
           'bootback-trace 1\nchunk-size 65536\n1 2 3\n'; do
    printf "$bad" > bad.trace
    copy prefetch=bad.trace
    cmp a.img out.img || fail "a bad prefetch file changed the data"
    grep -q "warning: prefetch=$tmp/bad.trace ignored: $tmp/bad.trace: " err.log ||
        { cat err.log; fail "no warning for $bad"; }
done
grep -q "line 3: chunk 16 is past the disk's 16" <<< "$(printf 'bootback-trace 1\nchunk-size 65536\n16 0\n' > bad.trace; copy prefetch=bad.trace; cat err.log)" ||
    fail "the index past the disk is not named"

# needs point=
rc=0
bb_nbdkit -r -U - "$plugin" repo=repo trace=x.trace --run 'exit 0' 2>err.log || rc=$?
[ "$rc" = 1 ] && grep -q "trace= and prefetch= need point=" err.log || { cat err.log; fail "trace= without point= accepted"; }
echo ok
