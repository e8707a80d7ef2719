#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The plugin raises its soft open-file limit towards 32768 within the hard
# limit (room for the chunk files the library keeps open: an eighth of
# it), never above the hard limit and never lowering it; reads are the
# same either way.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"

cd "$tmp"
make_image a.img 4M "0:1M 2M:64K 3M:4K"
bb_repo_init repo 1M
bb_import repo vm 20260101T000000Z vda=a.img >/dev/null

# soft_of PID: the soft open-file limit of process PID (valgrind keeps
# descriptors of its own and answers getrlimit/setrlimit itself: the
# limits are not checked under it).
soft_of () {
    if [ -n "${BOOTBACK_VALGRIND:-}" ]; then echo "$2"; return; fi
    awk '/^Max open files/ {print $4}' "/proc/$1/limits"
}

hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -gt 1024 ] ||
    skip "the hard open-file limit is $hard"
want=32768
[ "$hard" = unlimited ] || [ "$hard" -ge "$want" ] || want=$hard

ulimit -Sn 1024
bb_nbdkit_start "$plugin" repo=repo point=vm
nbdcopy "$uri" out.img
cmp a.img out.img || fail "reads with the soft limit raised"
got=$(soft_of "$nbdkit_pid" "$want")
[ "$got" = "$want" ] || fail "soft open-file limit $got, expected $want"
bb_nbdkit_stop

# A hard limit of 1024: the soft one stays, reads still work.
ulimit -Hn 1024
bb_nbdkit_start "$plugin" repo=repo point=vm
nbdcopy "$uri" out.img
cmp a.img out.img || fail "reads with the hard limit at 1024"
got=$(soft_of "$nbdkit_pid" 1024)
[ "$got" = 1024 ] || fail "soft open-file limit $got with a hard one of 1024"
