#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fault sweep: EIO and ENOSPC injected at the k-th repository I/O for every
# k of one small import.  Each run fails with a clear error (or succeeds if
# the fault hit harmless cleanup), repo check stays clean, nothing partial
# is visible, and a later import succeeds.
source "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-nbd

repo=$tmp/repo
bootback repo init --chunk-size 64K "$repo"
make_disk "$tmp/a.raw" $(( 512 * 1024 + 3 ))
bootback import "$tmp/a.raw" --vm base        # some chunks exist already
make_disk "$tmp/b.raw" $(( 512 * 1024 + 3 ))

cp -a "$repo" "$tmp/base"
# count the operations of one import from exactly the starting state
n=$(BOOTBACK_FAULT=count bootback import "$tmp/b.raw" --vm fcount 2>&1 >/dev/null | sed -n 's/bootback-fault: \([0-9]*\) ops.*/\1/p')
[ -n "$n" ] && [ "$n" -gt 10 ] || fail "could not count I/O ops ($n)"
echo "one import does $n repository I/O operations"
# a fresh catalog that knows the repository, made once (under valgrind
# every bootback run costs seconds, and this sweep makes hundreds)
rm -rf "$repo"; cp -a "$tmp/base" "$repo"
BOOTBACK_HOME=$tmp/h0 bootback repo add "$repo" >/dev/null
failures=0
for kind in eio enospc; do
    survived=()        # the k whose fault the import survived
    score_from=        # the first k that left the ransomware score out
    for k in $(seq 1 "$n"); do
        # the same starting state for every k: a copy of the repository
        # and a copy of the fresh catalog
        rm -rf "$repo" "$tmp/h"; cp -a "$tmp/base" "$repo"; cp -a "$tmp/h0" "$tmp/h"
        export BOOTBACK_HOME=$tmp/h
        set +e
        BOOTBACK_FAULT="$kind@$k" bootback import "$tmp/b.raw" --vm "f$kind" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        set -e
        if [ $rc -ne 0 ]; then
            failures=$((failures + 1))
            # the message says what failed, with the path, not a generic error
            grep -q "injected fault at operation $k" "$tmp/err" ||
                { cat "$tmp/err"; fail "$kind@$k: error does not say what failed"; }
            case $kind in
                eio) grep -q "Input/output error" "$tmp/err" || fail "$kind@$k: no EIO text" ;;
                enospc) grep -q "No space left on device" "$tmp/err" || fail "$kind@$k: no ENOSPC text" ;;
            esac
            [ -z "$(ls "$repo/points/f$kind" 2>/dev/null)" ] || { ls -R "$repo/points"; fail "$kind@$k: failed import left a point directory"; }
        else
            survived+=("$k")
            # the point is committed: a fault in the writer's cleanup is
            # harmless, one in the ransomware score leaves it out, saying so
            if grep -q "warning: no ransomware score" "$tmp/err"; then
                score_from=${score_from:-$k}
            elif [ -s "$tmp/err" ]; then
                cat "$tmp/err"; fail "$kind@$k: the import succeeded with an unexplained message"
            fi
            # a fault in harmless cleanup: the point must be whole
            bootback restore "f$kind" --to "$tmp/r.raw" >/dev/null
            cmp "$tmp/r.raw" "$tmp/b.raw"; rm "$tmp/r.raw"
        fi
        bootback repo check >/dev/null 2>"$tmp/cerr" || { cat "$tmp/err" "$tmp/cerr"; fail "$kind@$k: repo check not clean"; }
    done
    # before the score's reads, at most 4 faults may pass unnoticed: the
    # writer's 3 cleanup operations after the manifest, and one optional
    # lookup before the writer starts
    early=0
    for k in "${survived[@]}"; do
        [ -n "$score_from" ] && [ "$k" -ge "$score_from" ] || early=$((early + 1))
    done
    [ "$early" -le 4 ] || fail "$kind: $early faults before the score's reads did not fail the import (${survived[*]})"
done
echo "$failures injected faults made the import fail cleanly"
[ "$failures" -gt "$n" ] || fail "only $failures of $((2 * n)) faults made the import fail"
bootback repo verify
# short writes are handled (every write returns at most half)
BOOTBACK_FAULT=short bootback import "$tmp/b.raw" --vm shortw
bootback restore shortw --to "$tmp/s.raw" && cmp "$tmp/s.raw" "$tmp/b.raw"
bootback import "$tmp/b.raw" --vm after
bootback repo verify
echo "fault sweep ok"
