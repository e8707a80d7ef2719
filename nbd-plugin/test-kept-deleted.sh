#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Chunk files the library keeps open (4K reads) whose names are gone (gc
# removed them, or a repair renamed a new copy over them) are closed
# within SWEEP_SECS (10 s) by the next read that opens a file: their disk
# space comes back while the plugin runs, not when it exits.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "python3-nbd is not installed"
# preads OFFSET...: a 4 KiB read at each offset (libnbd, Debian's python)
preads () {
    /usr/bin/python3 -c 'import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1])
for off in sys.argv[2:]: h.pread(4096, int(off))' "$uri" "$@"
}
[ -z "${BOOTBACK_VALGRIND:-}" ] || skip "valgrind keeps descriptors of its own"

cd "$tmp"
make_image a.img 4M "0:1M 2M:64K 3M:4K"
bb_repo_init repo 1M
bb_import repo vm 20260101T000000Z vda=a.img >/dev/null
deleted () { ls -l "/proc/$nbdkit_pid/fd" | grep -c "/chunks/.*(deleted)" || true; }

bb_nbdkit_start "$plugin" repo=repo point=vm
# 4K reads in the chunks at 0 and 2M: their files are kept open
preads 0 65536 2097152
n=$(ls -l "/proc/$nbdkit_pid/fd" | grep -c "/chunks/") || true
[ "$n" -ge 2 ] || fail "premise: $n chunk files kept open"
# every chunk file replaced by a copy (the old names gone, as gc or a
# repair leaves them)
for f in repo/chunks/*/*; do cp "$f" "$f.new"; mv "$f.new" "$f"; done
[ "$(deleted)" -ge 2 ] || fail "premise: no kept file is deleted"
sleep 11
preads 3145728                  # a miss: opens the chunk at 3M
left=$(deleted)
[ "$left" = 0 ] || fail "$left removed chunk files still held open after the sweep"
nbdcopy "$uri" out.img
cmp a.img out.img || fail "reads after the sweep"
bb_nbdkit_stop
