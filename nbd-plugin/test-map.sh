#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# nbdinfo --map against golden maps: zero chunks, and in a repository of
# chunks larger than 1M the frames of zeros of the other chunks (their
# frame tables, read from the local repository), are holes that read as
# zeros (type 3), everything else is data (type 0), in frame-size steps
# (64K frames of 4M chunks); the last, partial chunk ends at the disk
# size.  Chunks of at most 1M, and any without a cache (cache=0), map in
# chunk-size steps.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires numfmt

cd "$tmp"
make_image a.img 5000000 "0:300K 1M:64K:7 3000000:1M 4990000:10000"
make_image b.img 5000000 "0:100K 3M:5"
make_image z.img $((2 * 1048576 + 1)) ""

# a.img in 64K steps: its 64K chunks, or the 64K frames of its 4M chunks
a64k="0 327680 0
327680 720896 3
1048576 65536 0
1114112 1835008 3
2949120 1114112 0
4063232 917504 3
4980736 19264 0"

CACHE=
check_map () {
    local cs=$1 img=$2 expected=$3
    rm -rf repo
    bb_repo_init repo "$cs"
    bb_import repo vm 20260101T000000Z vda="$img" >/dev/null
    bb_nbdkit -U - "$plugin" repo=repo point=vm $CACHE \
        --run 'nbdinfo --map "$uri"' >map.out || fail "nbdinfo --map failed"
    # Columns: offset, length, type, description.
    awk '{print $1, $2, $3}' map.out >map.actual
    if ! diff -u <(echo "$expected") map.actual; then
        fail "$cs $img: map differs from the golden one"
    fi
    # --totals: the data share.
    bb_nbdkit -U - "$plugin" repo=repo point=vm \
        --run 'nbdinfo --map --totals "$uri"' >totals.out || fail "totals"
    cat totals.out
}

# frames: in a repository of chunks larger than the preferred block (1M),
# the tables are read from the local files (64K frames of 4M chunks)
check_map 4M a.img "$a64k"
check_map 4M b.img "0 131072 0
131072 3014656 3
3145728 65536 0
3211264 1788736 3"
check_map 4M z.img "0 2097153 3"

# chunks of at most 1M: a chunk is a block, read whole anyway: no table
# is read for an extent (a cold copy does not wait for one per chunk),
# and the map is in chunk-size steps as without a cache
check_map 64K a.img "$a64k"
check_map 1M a.img "0 5000000 0"
check_map 1M z.img "0 2097153 3"

# chunks
CACHE=cache=0
check_map 64K a.img "$a64k"

check_map 1M a.img "0 5000000 0"
check_map 1M b.img "0 1048576 0
1048576 2097152 3
3145728 1048576 0
4194304 805696 3"
check_map 1M z.img "0 2097153 3"
echo "test-map: ok"
