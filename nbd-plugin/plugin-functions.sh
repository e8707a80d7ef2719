# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Helpers for the plugin's shell tests, sourced after tests/functions.sh:
#
#   source "$top_srcdir/tests/functions.sh"
#   source "$top_srcdir/nbd-plugin/plugin-functions.sh"
#
# Gives: $plugin (the .so), $PY (a python3 that has libnbd's "nbd" module),
# bb_nbdkit (nbdkit, under valgrind for make check-valgrind),
# bb_nbdkit_start/bb_nbdkit_stop (a background server on a socket in a 0700
# directory), bb_repo_init, bb_import (repositories through the bootback
# CLI, or helper-repo until it is built), make_image (test images).

plugin="$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so"
helper="$top_srcdir/nbd-plugin/helper-repo"
requires nbdkit nbdinfo nbdcopy
[ -f "$plugin" ] || skip "$plugin is not built"
[ -x "$helper" ] || skip "$helper is not built"

# The python with libnbd's module (a python3 earlier in PATH may lack it).
PY=/usr/bin/python3
"$PY" -c 'import nbd' 2>/dev/null || PY=
need_py () { [ -n "$PY" ] || skip "python3-libnbd is not installed"; }

# nbdkit, possibly under valgrind (make check-valgrind sets
# BOOTBACK_VALGRIND).  Exit status 99 means valgrind found errors or
# definite leaks.  Use it in captive mode (--run): the status is then the
# --run command's, or 99.
NBDKIT=(nbdkit)
if [ -n "${BOOTBACK_VALGRIND:-}" ]; then
    NBDKIT=(valgrind -q --error-exitcode=99 --leak-check=full
            --errors-for-leak-kinds=definite --trace-children=no
            --child-silent-after-fork=yes
            --suppressions="$top_srcdir/nbd-plugin/nbdkit.supp" nbdkit)
fi
bb_nbdkit () { "${NBDKIT[@]}" "$@"; }

# $slow, the slowdown factor for timeouts, comes from tests/functions.sh.

# bb_nbdkit_start ARGS...: start nbdkit in the background on
# $tmp/sock.d/sock (a 0700 directory), wait until it answers, set $sock,
# $uri and $nbdkit_pid, and stop it at exit.  Logs to $tmp/nbdkit.log.
bb_nbdkit_start () {
    local i
    sockdir="$tmp/sock.d"
    mkdir -p -m 0700 "$sockdir"
    sock="$sockdir/sock"
    uri="nbd+unix:///?socket=$sock"
    rm -f "$sock"
    # Not through a function: $! must be nbdkit (or valgrind) itself.
    "${NBDKIT[@]}" -f -U "$sock" --log=stderr "$@" >>"$tmp/nbdkit.log" 2>&1 &
    nbdkit_pid=$!
    cleanup_fn bb_nbdkit_stop
    for (( i = 0; i < 300 * slow; i++ )); do
        [ -S "$sock" ] && return 0
        kill -0 "$nbdkit_pid" 2>/dev/null || { cat "$tmp/nbdkit.log"; fail "nbdkit exited"; }
        sleep 0.1
    done
    fail "nbdkit did not start"
}

# Stop the server started by bb_nbdkit_start; under valgrind, fail if
# valgrind reported errors.
bb_nbdkit_stop () {
    local rc=0
    [ -n "${nbdkit_pid:-}" ] || return 0
    kill -TERM "$nbdkit_pid" 2>/dev/null
    wait "$nbdkit_pid" || rc=$?
    nbdkit_pid=
    if [ "$rc" -eq 99 ]; then
        cat "$tmp/nbdkit.log"
        fail "valgrind found errors in nbdkit"
    fi
    return 0
}

# Repositories are made with the bootback CLI (repo init, import) when it
# is built, else with helper-repo (the library's writer API), which makes
# the same repositories.  The CLI runs without valgrind even for
# make check-valgrind: these tests check the plugin.
bb_have_cli () { [ -x "$BOOTBACK" ] && "$BOOTBACK" import --help >/dev/null 2>&1; }

# bb_repo_init DIR CHUNK_SIZE
bb_repo_init () {
    if bb_have_cli; then
        "$BOOTBACK" repo init --chunk-size "$2" "$1" >/dev/null
    else
        "$helper" init "$1" "$2"
    fi
}

# bb_import DIR VM TIME DISK=IMAGE...  (TIME: 20260101T000000Z or now);
# prints VM@TIME.
bb_import () {
    local repo=$1 vm=$2 when=$3 d out
    shift 3
    if bb_have_cli; then
        local args=()
        for d in "$@"; do args+=("${d#*=}"); done
        for d in "$@"; do args+=(--disk "${d%%=*}"); done
        [ "$when" = now ] || args+=(--time "$when")
        out=$("$BOOTBACK" --repo "$repo" import "${args[@]}" --vm "$vm") ||
            fail "bootback import failed"
        sed -n 's/^imported \([^:]*\):.*/\1/p' <<<"$out"
    else
        "$helper" import "$repo" "$vm" "$when" "$@"
    fi
}

# make_image FILE SIZE SPEC: a raw image of SIZE bytes, all zero but for
# the extents in SPEC, "OFFSET:LENGTH[:BYTE]" separated by spaces (random
# data, or the byte BYTE repeated).  Sizes take K and M suffixes.
make_image () {
    local f=$1 size=$2 spec=$3 e off len byte
    rm -f "$f"
    truncate -s "$(numfmt --from=iec "$size")" "$f"
    for e in $spec; do
        IFS=: read -r off len byte <<<"$e"
        off=$(numfmt --from=iec "$off"); len=$(numfmt --from=iec "$len")
        if [ -n "$byte" ]; then
            head -c "$len" /dev/zero | tr '\0' "\\$(printf '%03o' "$byte")"
        else
            head -c "$len" /dev/urandom
        fi | dd of="$f" bs=64K seek="$off" oflag=seek_bytes conv=notrunc \
                status=none iflag=fullblock
    done
}
