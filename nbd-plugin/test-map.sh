#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# nbdinfo --map against golden maps: zero chunks are holes that read as
# zeros (type 3), everything else is data (type 0), in chunk-size steps;
# the last, partial chunk ends at the disk size.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires numfmt

cd "$tmp"
make_image a.img 5000000 "0:300K 1M:64K:7 3000000:1M 4990000:10000"
make_image b.img 5000000 "0:100K 3M:5"
make_image z.img $((2 * 1048576 + 1)) ""

check_map () {
    local cs=$1 img=$2 expected=$3
    rm -rf repo
    bb_repo_init repo "$cs"
    bb_import repo vm 20260101T000000Z vda="$img" >/dev/null
    bb_nbdkit -U - "$plugin" repo=repo point=vm \
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

check_map 64K a.img "0 327680 0
327680 720896 3
1048576 65536 0
1114112 1835008 3
2949120 1114112 0
4063232 917504 3
4980736 19264 0"

check_map 1M a.img "0 5000000 0"
check_map 1M b.img "0 1048576 0
1048576 2097152 3
3145728 1048576 0
4194304 805696 3"

check_map 64K z.img "0 2097153 3"
check_map 1M z.img "0 2097153 3"
echo "test-map: ok"
