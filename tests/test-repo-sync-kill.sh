#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# repo sync killed (SIGKILL) at 40 random I/O operations (BOOTBACK_FAULT
# crash@K, K from 1 to the count of a whole sync), into plain and
# encrypted destinations in turn: after each kill the destination passes
# repo check and every point it shows verifies; a rerun completes, and
# both points restore byte for byte.
source "$top_srcdir/tests/functions.sh"
requires python3 cmp

bootback repo init --chunk-size 64K "$tmp/src" > /dev/null
make_disk "$tmp/a.raw" $(( 6 * 1024 * 1024 + 333 ))
head -c $(( 2 * 1024 * 1024 )) /dev/urandom |
    dd of="$tmp/a.raw" bs=1M seek=2 conv=notrunc status=none
bootback import "$tmp/a.raw" --vm web > /dev/null
cp "$tmp/a.raw" "$tmp/b.raw"
head -c 300000 /dev/urandom | dd of="$tmp/b.raw" bs=64k seek=10 conv=notrunc status=none
bootback import "$tmp/b.raw" --vm web > /dev/null
ids=($(bootback points web --json | python3 -c 'import json,sys; print(" ".join(p["id"] for p in json.load(sys.stdin)))'))
echo "kill pass" > "$tmp/pass"
dst=

fresh () {    # N: a new destination (a new path: the catalog knows the
              # old ones), encrypted when N is odd
    rm -rf "$dst"
    dst=$tmp/dst-$1
    if (( $1 % 2 )); then
        bootback --passphrase-file "$tmp/pass" repo init --encrypt --chunk-size 64K "$dst"
    else
        bootback repo init --chunk-size 64K "$dst"
    fi > /dev/null
}
sync () {    # DST's passphrase only if it is encrypted (a plain DST given
              # one is refused)
    local dp=()
    ! grep -q '"encryption"' "$dst/bootback-repo.json" || dp=(--dst-passphrase-file "$tmp/pass")
    env -u BOOTBACK_PASSPHRASE_FILE "$BOOTBACK" repo sync "${dp[@]}" "$tmp/src" "$dst" "$@"
}
fresh 0
BOOTBACK_FAULT=count sync > /dev/null 2> "$tmp/count"
ops=$(awk '/^bootback-fault:/ {print $2; exit}' "$tmp/count")
[ "$ops" -gt 100 ] || fail "a whole sync counted $ops operations"

killed=0
for (( n = 1; n <= 40; n++ )); do
    fresh $n
    at=$(( (RANDOM * 32768 + RANDOM) % ops + 1 ))
    rc=0
    BOOTBACK_FAULT=crash@$at sync > /dev/null 2>&1 || rc=$?
    [ $rc -eq 137 ] && killed=$((killed + 1))
    [ $rc -eq 0 ] || [ $rc -eq 137 ] || fail "crash@$at: sync exited $rc"
    # the secret for an encrypted destination only (a plain one given
    # one is refused)
    if (( n % 2 )); then export BOOTBACK_PASSPHRASE_FILE=$tmp/pass; fi
    bootback --repo "$dst" repo check > "$tmp/out" 2>&1 ||
        { cat "$tmp/out"; fail "crash@$at: the destination fails repo check"; }
    bootback --repo "$dst" repo verify > "$tmp/out" 2>&1 ||
        { cat "$tmp/out"; fail "crash@$at: a visible point does not verify"; }
    sync > /dev/null 2>&1 || fail "crash@$at: the rerun failed"
    bootback --repo "$dst" restore "web@${ids[0]}" --to "$tmp/r0.raw" > /dev/null
    bootback --repo "$dst" restore "web@${ids[1]}" --to "$tmp/r1.raw" > /dev/null
    cmp "$tmp/a.raw" "$tmp/r0.raw" && cmp "$tmp/b.raw" "$tmp/r1.raw" ||
        fail "crash@$at: the rerun's copy differs"
    rm -f "$tmp/r0.raw" "$tmp/r1.raw"
    unset BOOTBACK_PASSPHRASE_FILE
done
[ $killed -ge 30 ] || fail "only $killed of 40 syncs were killed"
echo "40 killed syncs ($killed at an operation), each completed by a rerun"
