#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# gc and repo check hold the unique chunks in memory, not every reference
# (issue 13, item 11): on a repository of 2,000,000 references to 10,000
# chunks (bench/gc/gen-repo) their peak RSS stays within 16 MiB of the
# same command on a repository of one such point.  Before, gc held 32 bytes
# per reference and repo check 80, each plus a sort's copy: 130-250 MiB
# more.  And gc removes exactly the chunks no point uses, keeping every
# chunk any point uses.
source "$top_srcdir/tests/functions.sh"
[ -z "${BOOTBACK_VALGRIND:-}" ] || skip "peak RSS under valgrind measures valgrind"
[ -x /usr/bin/time ] || skip "/usr/bin/time is not installed"
gen=$top_srcdir/bench/gc/gen-repo

bootback repo init --chunk-size 64K "$tmp/one" >/dev/null
"$gen" "$tmp/one" 1 1 5000 5000
bootback --repo "$tmp/one" repo reindex >/dev/null
bootback repo init --chunk-size 64K "$tmp/big" >/dev/null
"$gen" "$tmp/big" 4 100 5000 10000 100     # 400 points, 100 unused chunks
bootback --repo "$tmp/big" repo reindex >/dev/null

# peak RSS in KiB of bootback --repo REPO ARGS...
rss () {
    local repo=$1; shift
    /usr/bin/time -f %M -o "$tmp/rss" "$BOOTBACK" --repo "$repo" "$@" >"$tmp/out" ||
        { cat "$tmp/out"; fail "bootback $* failed on $repo"; }
    cat "$tmp/rss"
}
for cmd in "gc --dry-run --json" "repo check"; do
    one=$(rss "$tmp/one" $cmd)
    big=$(rss "$tmp/big" $cmd)
    echo "$cmd: peak RSS $one KiB on one point, $big KiB on 400 points (2,000,000 references)"
    [ $(( big - one )) -lt 16384 ] ||
        fail "$cmd: 2,000,000 references to 10,000 chunks cost $(( (big - one) / 1024 )) MiB more than one point"
done
grep -q "400 points, 400 disks, 10000 chunks: no problems" "$tmp/out" || { cat "$tmp/out"; fail "repo check"; }

# gc keeps all 10,000 used chunks and removes the 100 unused ones
bootback --repo "$tmp/big" gc --json >"$tmp/j"; cat "$tmp/j"
grep -q '"referenced": 10000' "$tmp/j" || fail "gc did not find 10000 referenced chunks"
grep -q '"removed": 100,' "$tmp/j" || fail "gc did not remove the 100 unused chunks"
n=$(find "$tmp/big/chunks" -type f | wc -l)
[ "$n" -eq 10000 ] || fail "$n chunk files left, expected 10000"
bootback --repo "$tmp/big" repo check | grep -q "10000 chunks: no problems" ||
    fail "repo check after gc finds problems: gc removed a chunk in use"
echo "gc memory ok"
