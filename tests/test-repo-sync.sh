#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback repo sync (issue 18 item 5): points copied plain -> encrypted
# and back are served byte for byte by the nbdkit plugin; a rerun copies
# nothing; a sync killed (SIGKILL at an I/O operation, and kill -9 from
# outside) leaves the destination consistent, and a rerun completes and
# copies only the chunks that were missing; --verify reads back; --json
# sums up; progress goes to stderr; points go between repositories of
# other chunk sizes, both ways, byte for byte.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires python3 cmp qemu-img qemu-nbd

jget () { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
nfiles () { find "$1/chunks" -type f ! -name '*.tmp-*' | wc -l; }
serve_cmp () {    # REPO POINT IMAGE
    rm -f "$tmp/out.raw"
    bb_nbdkit -U - "$plugin" repo="$1" point="$2" cache=0 readahead=0 \
        --run "nbdcopy \"\$uri\" $tmp/out.raw"
    cmp "$3" "$tmp/out.raw" || fail "$1 serves $2 wrong"
}

plain=$tmp/plain
bootback repo init --chunk-size 64K "$plain" > /dev/null
head -c $(( 96 << 20 )) /dev/urandom > "$tmp/a.raw"
truncate -s $(( 100 << 20 )) "$tmp/a.raw"
bootback import "$tmp/a.raw" --vm web > /dev/null
cp "$tmp/a.raw" "$tmp/b.raw"
head -c $(( 1 << 20 )) /dev/urandom | dd of="$tmp/b.raw" bs=1M seek=3 conv=notrunc status=none
bootback import "$tmp/b.raw" --vm web > /dev/null
total=$(nfiles "$plain")

# plain -> encrypted, with --verify and --json; progress on stderr
echo "sync pass" > "$tmp/pass"
export BOOTBACK_PASSPHRASE_FILE=$tmp/pass
enc=$tmp/enc
bootback repo init --encrypt --chunk-size 64K "$enc" > /dev/null
unset BOOTBACK_PASSPHRASE_FILE
bootback repo sync --verify --json --dst-passphrase-file "$tmp/pass" \
    "$plain" "$enc" > "$tmp/j" 2> "$tmp/progress"
cat "$tmp/progress"
[ "$(jget "$tmp/j" points_copied)" -eq 2 ]
[ "$(jget "$tmp/j" chunks_copied)" -eq "$total" ]
[ "$(jget "$tmp/j" chunks_verified)" -gt 0 ]
grep -q "^sync: web@.*: copied" "$tmp/progress"
[ "$(nfiles "$enc")" -eq "$total" ]
export BOOTBACK_PASSPHRASE_FILE=$tmp/pass
ids=($(bootback --repo "$enc" points web --json | python3 -c 'import json,sys; print(" ".join(p["id"] for p in json.load(sys.stdin)))'))
serve_cmp "$enc" "web@${ids[0]}" "$tmp/a.raw"
serve_cmp "$enc" "web@${ids[1]}" "$tmp/b.raw"
bootback --repo "$enc" repo verify > /dev/null
# a rerun has nothing to do
expect_rc 1 bootback repo sync --json "$plain" "$enc"   # the secret forbids a plain SRC
grep -q "$plain opened plain .* give --src-plain" "$tmp/err"
bootback repo sync --json --src-plain "$plain" "$enc" > "$tmp/j" 2>/dev/null
[ "$(jget "$tmp/j" points_present)" -eq 2 ] && [ "$(jget "$tmp/j" chunks_copied)" -eq 0 ]

# and back: encrypted -> plain (the source's passphrase, none for DST)
back=$tmp/back
bootback repo init --chunk-size 64K "$back" > /dev/null
bootback repo sync --dst-plain "$enc" "$back" "web@${ids[1]}" > "$tmp/out" 2>/dev/null
grep -q "copied 1 restore points" "$tmp/out"
# a plain repository is read without a secret (one given is refused)
(unset BOOTBACK_PASSPHRASE_FILE; serve_cmp "$back" "web@${ids[1]}" "$tmp/b.raw")
grep -q '"version": 1,' "$back/bootback-repo.json"

# killed mid-sync, then a rerun copies only the rest
killed_rerun () {    # DST [--dst-plain]: rerun after a kill, check and serve
    local have
    expect_fail [ -e "$1/points/web/${ids[0]}/manifest.json" ]
    have=$(nfiles "$1")
    [ "$have" -gt 0 ] && [ "$have" -lt "$total" ] ||
        fail "kill came too early or too late ($have of $total chunks)"
    bootback repo sync --json --src-plain $2 "$plain" "$1" > "$tmp/j" 2>/dev/null
    [ "$(jget "$tmp/j" chunks_copied)" -eq $(( total - have )) ] ||
        fail "rerun copied $(jget "$tmp/j" chunks_copied) chunks, $(( total - have )) were missing"
    [ "$(jget "$tmp/j" points_copied)" -eq 2 ]
    (
        grep -q '"encryption"' "$1/bootback-repo.json" || unset BOOTBACK_PASSPHRASE_FILE
        bootback --repo "$1" repo check > /dev/null
        serve_cmp "$1" "web@${ids[0]}" "$tmp/a.raw"
        serve_cmp "$1" "web@${ids[1]}" "$tmp/b.raw"
    )
}
for at in 400 2500; do
    d=$tmp/crash-$at
    bootback repo init --encrypt --chunk-size 64K "$d" > /dev/null
    BOOTBACK_FAULT=crash@$at expect_rc 137 "$BOOTBACK" repo sync --src-plain "$plain" "$d"
    killed_rerun "$d" ""
done
d=$tmp/kill9
bootback repo init --chunk-size 64K "$d" > /dev/null
"$BOOTBACK" repo sync --src-plain --dst-plain "$plain" "$d" 2>/dev/null &
pid=$!
for (( i = 0; i < 300 * slow; i++ )); do
    [ "$(nfiles "$d")" -ge 100 ] && break
    sleep 0.01
done
kill -9 "$pid"
wait "$pid" || true
killed_rerun "$d" --dst-plain

# another chunk size: 64K -> 1M and back to 64K, byte for byte, with a
# disk that is not a whole number of 1M chunks (its last 64K chunk holds
# data, zeros before it); each repository stores only the chunks its
# chunk size makes of the points, no zero chunk, and the way back gives
# the very chunks of the first repository
chunk_names () { (cd "$1/chunks" && find . -type f ! -name '*.tmp-*' | sort); }
unset BOOTBACK_PASSPHRASE_FILE
head -c $(( 5 << 20 )) /dev/urandom > "$tmp/c.raw"
truncate -s $(( (7 << 20) + (3 << 16) )) "$tmp/c.raw"
printf tail | dd of="$tmp/c.raw" bs=1 seek=$(( (7 << 20) + (2 << 16) + 5 )) conv=notrunc status=none
bootback --repo "$plain" import "$tmp/c.raw" --vm odd > /dev/null
odd=odd@$(bootback --repo "$plain" points odd --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
big=$tmp/big
bootback repo init --chunk-size 1M "$big" > /dev/null
bootback repo sync --verify --json --src-plain --dst-plain "$plain" "$big" > "$tmp/j" 2>/dev/null
[ "$(jget "$tmp/j" points_copied)" -eq 3 ] || fail "64K -> 1M: $(cat "$tmp/j")"
# a: 96 chunks of data, b: 1 more, odd: 5 and its last
[ "$(nfiles "$big")" -eq 103 ] || fail "64K -> 1M stored $(nfiles "$big") chunks, not 103"
serve_cmp "$big" "web@${ids[0]}" "$tmp/a.raw"
serve_cmp "$big" "web@${ids[1]}" "$tmp/b.raw"
serve_cmp "$big" "$odd" "$tmp/c.raw"
bootback --repo "$big" repo verify > /dev/null
bootback repo sync --json --src-plain --dst-plain "$plain" "$big" > "$tmp/j" 2>/dev/null
[ "$(jget "$tmp/j" points_present)" -eq 3 ] && [ "$(jget "$tmp/j" chunks_copied)" -eq 0 ] ||
    fail "64K -> 1M again: $(cat "$tmp/j")"
small=$tmp/small
bootback repo init --chunk-size 64K "$small" > /dev/null
bootback repo sync --verify --src-plain --dst-plain "$big" "$small" > /dev/null 2>&1
serve_cmp "$small" "$odd" "$tmp/c.raw"
serve_cmp "$small" "web@${ids[1]}" "$tmp/b.raw"
[ "$(chunk_names "$small")" = "$(chunk_names "$plain")" ] ||
    fail "1M -> 64K: not the chunks of the 64K repository it came from"
echo "repo sync ok"
