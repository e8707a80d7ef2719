# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Shared helpers for the shell tests, sourced at the top of each test:
#
#   source "$top_srcdir/tests/functions.sh"
#
# Gives: set -e -u -o pipefail; a private temp dir $tmp (removed on exit);
# a private $BOOTBACK_HOME; cleanup_fn CMD... (run at exit, last first);
# requires CMD... (skip, exit 77, when missing); skip MSG; fail MSG;
# wait_stopped PID, wait_dead PID, wait_log FILE REGEX [PID] (a state
# another process reaches, waited for rather than slept on);
# expect_fail CMD... (passes when CMD fails, fails the test when it passes);
# expect_rc N CMD... (CMD must exit with N; its stderr in $tmp/err);
# $slow, the factor for every wait and time limit in a test (20 under
# make check-valgrind, see tests/lib/slow.sh).

set -e -u -o pipefail
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export top_srcdir
: "${BOOTBACK:=$top_srcdir/recovery/cli/bootback}"
export PATH="$top_srcdir/recovery/cli:$PATH"

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/bootback-test.XXXXXX")
export BOOTBACK_HOME="$tmp/home"
unset BOOTBACK_REPO
source "$top_srcdir/tests/lib/slow.sh"
mkdir -p "$BOOTBACK_HOME"

_cleanup_fns=()
cleanup_fn () { _cleanup_fns+=("$*"); }
_run_cleanup () {
    local rc=$? i
    set +e
    for (( i=${#_cleanup_fns[@]}-1; i>=0; i-- )); do eval "${_cleanup_fns[$i]}"; done
    if [ -z "${KEEP_TMP:-}" ]; then rm -rf "$tmp"; else echo "kept $tmp"; fi
    exit $rc
}
trap _run_cleanup EXIT
trap 'exit 130' INT TERM

skip () { echo "SKIP: $*"; exit 77; }
fail () { echo "FAIL: $*" >&2; exit 1; }
requires () {
    local c
    for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"; done
}
# wait_stopped PID: wait (up to 30 s) until PID has stopped itself
# (SIGSTOP: BOOTBACK_FAULT=stop@K); 1 if it has not.
wait_stopped () {
    local _
    for _ in $(seq 600); do
        [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = T ] && return 0
        sleep 0.05
    done
    return 1
}

# wait_dead PID: wait (up to 30 s) until PID is gone or a zombie (what
# bootback takes for dead: util/pid.c), e.g. after kill -9, whose effect
# a loaded host may delay; 1 if it is neither.
wait_dead () {
    local _ st
    for _ in $(seq $(( 600 * slow ))); do
        st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
        [ -n "$st" ] && [ "$st" != Z ] || return 0
        sleep 0.05
    done
    return 1
}

# wait_log FILE REGEX [PID]: wait (up to 30 s) until FILE has a line
# matching REGEX, e.g. a server saying it listens; 1 if it has not, or
# PID (the one that writes it) has ended without.
wait_log () {
    local _
    for _ in $(seq $(( 300 * slow ))); do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        [ -z "${3:-}" ] || kill -0 "$3" 2>/dev/null || break
        sleep 0.1
    done
    grep -qE -- "$2" "$1" 2>/dev/null
}

expect_fail () {
    if "$@"; then fail "expected to fail: $*"; fi
}
# expect_rc N CMD...: run CMD, its output in $tmp/out and its errors in
# $tmp/err (also shown, for the log); fail unless it exits with status N.
expect_rc () {
    local want=$1 rc=0
    shift
    "$@" > "$tmp/out" 2> "$tmp/err" || rc=$?
    cat "$tmp/err"
    [ "$rc" -eq "$want" ] || fail "$*: exit $rc, expected $want"
}

# bootback, possibly under valgrind (make check-valgrind).  valgrind's own
# lines (its reports, and notes such as "unhandled syscall" for pidfd_open,
# which bootback then does without) go to a log of their own, not into the
# stdout and stderr that tests compare; on a valgrind error (exit 99) the
# log is copied to stderr.  BOOTBACK_VG_ARGS: valgrind's options (tests/lib
# may add suppressions).
BOOTBACK_VG_ARGS=(-q --error-exitcode=99 --leak-check=full
                  --errors-for-leak-kinds=definite --trace-children=no)
bootback () {
    if [ -z "${BOOTBACK_VALGRIND:-}" ]; then
        "$BOOTBACK" "$@"
        return
    fi
    local rc=0 vlog
    vlog=$(mktemp "$tmp/valgrind.XXXXXX")
    valgrind "${BOOTBACK_VG_ARGS[@]}" --log-file="$vlog" "$BOOTBACK" "$@" || rc=$?
    if [ $rc -eq 99 ]; then
        { echo "valgrind found errors in: bootback $*"; cat "$vlog"; } >&2
    fi
    return $rc
}

# make_disk FILE SIZE_BYTES: a raw disk with random data in a few places,
# holes and explicit zeros elsewhere (sizes need not be chunk multiples).
make_disk () {
    local f=$1 size=$2 off
    rm -f "$f"
    truncate -s "$size" "$f"
    for off in 0 $((size / 3)) $((size / 2 + 4097)); do
        [ "$off" -lt "$size" ] || continue
        head -c $(( size - off < 300000 ? size - off : 300000 )) /dev/urandom |
            dd of="$f" bs=64k seek="$off" oflag=seek_bytes conv=notrunc status=none
    done
    # explicit zeros (allocated, but zero) in the middle
    if [ "$size" -gt 2000000 ]; then
        head -c 200000 /dev/zero |
            dd of="$f" bs=64k seek=$((size / 4)) oflag=seek_bytes conv=notrunc status=none
    fi
}

# The id of the newest point of VM (from the CLI's JSON).
latest_id () {
    bootback points "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])'
}

# host_secret_images: $tmp/secret, a host file a guest must never get into
# a point (1 MiB of numbered lines), and $tmp/evil.qcow2, a qcow2 whose
# backing file it is
host_secret_images () {
    seq 50000 | sed 's/^/BOOTBACK-HOST-SECRET-/' >"$tmp/secret"
    truncate -s 1M "$tmp/secret"
    qemu-img create -q -f qcow2 -F raw -b "$tmp/secret" "$tmp/evil.qcow2"
}

# damage_byte FILE OFFSET: invert the byte at OFFSET of FILE (writing a
# fixed byte instead is no damage where that byte was there already: 1
# run in 256 on random data)
damage_byte () {
    python3 - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    b = f.read(1)[0]
    f.seek(int(sys.argv[2]))
    f.write(bytes([b ^ 0xFF]))
PY
}
