#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Encryption at rest (issue 18 item 4): the tiny image imported into an
# encrypted repository is served byte for byte by the nbdkit plugin (with
# and without its cache) and restored; no file of the repository holds a
# string of the image that a plain repository shows; a second import
# adds no chunk (dedup); a wrong passphrase is one clear line, in the CLI
# and in nbdkit; a changed byte of a chunk, a manifest and an index is
# caught naming it; keys are added, changed and removed without a chunk
# rewritten; a plain repository stays format version 1; the repository's
# bootback-repo.json rewritten as plain (keys/ removed) or as another
# repository is refused by what the catalog remembers; a process holding
# the key dumps no core, not even through a core_pattern pipe (it is not
# dumpable: the plugin's nbdkit, and bootback from its start when its
# environment names a secret); a hostile key slot cannot make the opener
# spend gigabytes or try slots without end.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
source "$top_srcdir/tests/lib/images.sh"
requires python3 cmp
images_tiny
needle="BusyBox v1.35.0"
grep -q -a -F "$needle" "$TINY_IMG" || fail "the tiny image lacks '$needle'"

stat_json () { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }

repo=$tmp/enc
# no secret: nothing is made, and a rerun with one works
expect_rc 1 bootback repo init --encrypt "$repo"
grep -q "an encrypted repository needs a passphrase" "$tmp/err"
[ -z "$(ls -A "$repo")" ] || fail "repo init without a secret left files: $(ls -A "$repo")"
export BOOTBACK_PASSPHRASE="correct horse battery staple"
bootback repo init --encrypt "$repo" > "$tmp/out"
grep -q "created encrypted repository" "$tmp/out"
grep -q '"encryption": "aes-256-gcm"' "$repo/bootback-repo.json"
[ "$(stat -c %a "$repo"/keys/*.json)" = 600 ] || fail "key slot is not 0600"
bootback import "$TINY_IMG" --vm tiny --json > "$tmp/j1"
[ "$(stat_json "$tmp/j1" '["stats"]["new_chunks"]')" -gt 0 ]

# served byte for byte, through the cache and straight from the files
for opts in "" "cache=0 readahead=0"; do
    rm -f "$tmp/out.raw"
    bb_nbdkit -U - "$plugin" repo="$repo" point=tiny $opts \
        --run "nbdcopy \"\$uri\" $tmp/out.raw"
    cmp "$TINY_IMG" "$tmp/out.raw" || fail "served image differs ($opts)"
done
bootback restore tiny --to "$tmp/restored.raw"
cmp "$TINY_IMG" "$tmp/restored.raw"
rm -f "$tmp/out.raw" "$tmp/restored.raw"

# no plaintext in the repository's files; a plain one (uncompressed) shows it
if grep -r -l -a -F "$needle" "$repo" > "$tmp/hits"; then
    cat "$tmp/hits"; fail "plaintext '$needle' found in the encrypted repository"
fi
bootback repo init --compression none "$tmp/plain" > /dev/null
# a plain repository is used without a secret (one given is refused)
(unset BOOTBACK_PASSPHRASE; bootback --repo "$tmp/plain" import "$TINY_IMG" --vm tiny > /dev/null)
grep -r -q -a -F "$needle" "$tmp/plain" ||
    fail "the plain repository does not show '$needle' either: the check above proves nothing"
grep -q '"version": 1,' "$tmp/plain/bootback-repo.json"
! grep -q encryption "$tmp/plain/bootback-repo.json"
[ ! -e "$tmp/plain/keys" ]
bootback repo add --default "$repo" > /dev/null

# dedup: the same image again adds no chunk
nchunks=$(find "$repo/chunks" -type f | wc -l)
bootback import "$TINY_IMG" --vm tiny --json > "$tmp/j2"
[ "$(stat_json "$tmp/j2" '["stats"]["new_chunks"]')" -eq 0 ] || fail "second import stored chunks"
[ "$(find "$repo/chunks" -type f | wc -l)" -eq "$nchunks" ]

# a wrong passphrase: one line naming the repository, in the CLI and nbdkit
BOOTBACK_PASSPHRASE=wrong expect_rc 1 bootback points
[ "$(cat "$tmp/err")" = "bootback: wrong passphrase for repository $repo" ] ||
    fail "unexpected error: $(cat "$tmp/err")"
env -u BOOTBACK_PASSPHRASE "$BOOTBACK" points 2> "$tmp/err" && fail "opened without a passphrase"
grep -q "repository $repo is encrypted: give its passphrase" "$tmp/err"
if BOOTBACK_PASSPHRASE=wrong bb_nbdkit -U - "$plugin" repo="$repo" point=tiny \
       --run 'nbdinfo "$uri"' > /dev/null 2> "$tmp/err"; then
    fail "nbdkit served with a wrong passphrase"
fi
grep -q "wrong passphrase for repository $repo" "$tmp/err"
# a process holding the key writes no core file (the shell allows them)
( ulimit -c unlimited
  bb_nbdkit -U - "$plugin" repo="$repo" point=tiny \
      --run "grep '^Max core file size' /proc/\$PPID/limits > $tmp/limits; nbdinfo \"\$uri\" > /dev/null" )
grep -Eq "^Max core file size +0 +0 " "$tmp/limits" ||
    fail "the plugin holding the key may dump core: $(cat "$tmp/limits")"
# ... nor through a core_pattern pipe, which ignores that limit: it is
# not dumpable (PR_SET_DUMPABLE 0), so its /proc/PID files are root's and
# another process of its own user cannot read them.  Seen from a server
# run as nobody (as root, /proc would be root's either way).
if command -v setpriv >/dev/null; then
    nb=$(mktemp -d /var/tmp/bootback-nb.XXXXXX)
    cleanup_fn rm -rf "$nb"
    chmod 755 "$nb"
    cp -a "$repo" "$nb/repo"
    chown -R nobody:nogroup "$nb/repo"
    mkdir -m 700 "$nb/run" && chown nobody:nogroup "$nb/run"
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
        nbdkit -U - "$plugin" repo="$nb/repo" point=tiny \
        --run "nbdinfo \"\$uri\" > /dev/null; stat -c %U /proc/\$PPID/environ > $nb/run/owner
               cat /proc/\$PPID/environ > /dev/null 2>&1 && echo readable > $nb/run/environ || true"
    [ "$(cat "$nb/run/owner")" = root ] ||
        fail "the plugin holding the key is dumpable (a core_pattern pipe gets its core)"
    [ ! -e "$nb/run/environ" ] || fail "another process of its user reads the plugin's environ"
    # bootback itself, from its start when its environment names a secret:
    # here it waits on a FIFO for its passphrase, having read nothing yet
    mkdir -m 700 "$nb/home" && chown nobody:nogroup "$nb/home"
    mkfifo -m 600 "$nb/run/pass" && chown nobody:nogroup "$nb/run/pass"
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
        env -u BOOTBACK_PASSPHRASE BOOTBACK_HOME="$nb/home" BOOTBACK_PASSPHRASE_FILE="$nb/run/pass" \
        "$BOOTBACK" --repo "$nb/repo" points > "$nb/run/points" 2>&1 &
    bpid=$!
    for (( i = 0; i < 100; i++ )); do
        [ -e "$nb/home/catalog.db" ] && break          # started, catalog opened
        sleep 0.1
    done
    owner=$(stat -c %U "/proc/$bpid/environ")
    timeout 60 sh -c 'echo "$1" > "$2"' sh "$BOOTBACK_PASSPHRASE" "$nb/run/pass" ||
        { kill "$bpid" 2>/dev/null || true; fail "bootback did not read its passphrase file"; }
    wait "$bpid" || fail "bootback points as nobody: $(cat "$nb/run/points")"
    [ "$owner" = root ] || fail "bootback with a secret in its environment is dumpable"
fi
# a hostile repository's key slots: scrypt asked for 16 GiB, and 65 slots
cp -a "$repo" "$tmp/hostile"
slot=$(ls "$tmp/hostile/keys")
python3 - "$tmp/hostile/keys/$slot" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); j["log2n"] = 22; j["r"] = 32
json.dump(j, open(sys.argv[1], "w"))
PY
expect_rc 1 bootback --repo "$tmp/hostile" points
grep -q "keys/$slot: the key slot asks for 16384 MiB of memory" "$tmp/err" ||
    fail "a costly key slot: $(cat "$tmp/err")"
cp "$repo/keys/$slot" "$tmp/hostile/keys/$slot"
for i in $(seq 10 74); do cp "$repo/keys/$slot" "$tmp/hostile/keys/00000000000000$i.json"; done
expect_rc 1 bootback --repo "$tmp/hostile" points
grep -q "66 key slots under keys/ (at most 64)" "$tmp/err" || fail "66 key slots: $(cat "$tmp/err")"
# 41 slots of bootback's own cost, none opening: no more than 1 GiB of
# key derivation is spent before the open gives up
rm -f "$tmp"/hostile/keys/00000000000000[5-7]*.json
BOOTBACK_PASSPHRASE=wrong expect_rc 1 bootback --repo "$tmp/hostile" points
grep -q "the key slots tried ask for more than 1024 MiB of key derivation in all" "$tmp/err" ||
    fail "41 key slots: $(cat "$tmp/err")"
rm -rf "$tmp/hostile"

# verify, check, gc work; damage is named
bootback repo verify > /dev/null
bootback repo check > /dev/null
bootback gc > /dev/null
flip () { python3 -c "
import sys
f = open(sys.argv[1], 'r+b'); f.seek(int(sys.argv[2]), 2 if int(sys.argv[2]) < 0 else 0)
b = f.read(1); f.seek(-1, 1); f.write(bytes([b[0] ^ 0x40])); f.close()" "$1" "$2"; }
chunk=$(find "$repo/chunks" -type f | sort | sed -n 1p)
flip "$chunk" -30
expect_rc 2 bootback repo verify
grep -q "$(basename "$chunk")" "$tmp/out" "$tmp/err" || fail "verify does not name the chunk"
grep -q "authentication failed" "$tmp/out" "$tmp/err"
flip "$chunk" -30
id=$(latest_id tiny)
for f in manifest.json vda.fidx; do
    flip "$repo/points/tiny/$id/$f" 20
    expect_rc 2 bootback repo check
    grep -q "points/tiny/$id/$f: authentication failed" "$tmp/out" "$tmp/err" ||
        fail "check does not name $f"
    flip "$repo/points/tiny/$id/$f" 20
done
bootback repo check > /dev/null

# keys: add, change, remove; no chunk is rewritten
sums=$(find "$repo/chunks" -type f -exec md5sum {} + | sort)
BOOTBACK_NEW_PASSPHRASE=second bootback repo key add > /dev/null
bootback repo key list --json > "$tmp/keys"
[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$tmp/keys")" -eq 2 ]
echo third > "$tmp/pass3"
BOOTBACK_PASSPHRASE=second bootback repo key change --new-passphrase-file "$tmp/pass3" > "$tmp/out"
grep -q "removed key" "$tmp/out"
bootback --passphrase-file "$tmp/pass3" points tiny > /dev/null
BOOTBACK_PASSPHRASE=second expect_rc 1 bootback points
grep -q "wrong passphrase" "$tmp/err"
head -c 64 /dev/urandom > "$tmp/key"
chmod 600 "$tmp/key"
bootback repo key add --new-key-file "$tmp/key" > /dev/null
old=$(bootback repo key list --json | python3 -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if k["current"]][0])')
bootback --key-file "$tmp/key" repo key remove "$old" > /dev/null
expect_rc 1 bootback points
grep -q "wrong passphrase for repository $repo" "$tmp/err"
n=$(bootback --key-file "$tmp/key" repo key list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" -eq 2 ] || fail "expected 2 keys left, got $n"
[ "$(find "$repo/chunks" -type f -exec md5sum {} + | sort)" = "$sums" ] ||
    fail "a key change rewrote chunks"
unset BOOTBACK_PASSPHRASE
export BOOTBACK_KEY_FILE=$tmp/key
bb_nbdkit -U - "$plugin" repo="$repo" point=tiny \
    --run "nbdcopy \"\$uri\" $tmp/out.raw"
cmp "$TINY_IMG" "$tmp/out.raw"
# A downgrade by someone who can write the repository but holds no key:
# bootback-repo.json rewritten as a plain repository and keys/ removed
# (review finding: the next backups would be written in clear).  The
# catalog remembers the location was encrypted: every use is refused,
# naming it, and nothing is written.
cp -a "$repo/bootback-repo.json" "$tmp/enc.json"
python3 - "$repo/bootback-repo.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("encryption", "kdf", "keys", "hmac"):
    j.pop(k, None)
j["version"] = 1
json.dump(j, open(sys.argv[1], "w"))
PY
mv "$repo/keys" "$tmp/keys.saved"
before=$(find "$repo" -type f | sort | md5sum)
# with the secret: it opens plain, refused (test-repo-encrypt-downgrade)
expect_rc 1 bootback points
grep -q "$repo is not encrypted .* but a passphrase or key file was given" "$tmp/err" ||
    fail "downgraded repository opened with the secret: $(cat "$tmp/err")"
# without it, the catalog's memory refuses it
nosecret () { (unset BOOTBACK_PASSPHRASE BOOTBACK_KEY_FILE; "$@"); }
nosecret expect_rc 1 bootback points
grep -q "$repo: the catalog knows this repository as encrypted and it now opens without encryption" "$tmp/err" ||
    fail "downgraded repository not refused: $(cat "$tmp/err")"
make_image "$tmp/new.img" 1M "0:64K:7"
nosecret expect_rc 1 bootback import "$tmp/new.img" --vm tiny
grep -q "opens without encryption" "$tmp/err" || fail "import into the downgraded repository: $(cat "$tmp/err")"
[ "$(find "$repo" -type f | sort | md5sum)" = "$before" ] ||
    fail "the refused import wrote into the repository"
# another repository (a new uuid) put in its place is refused too
python3 - "$repo/bootback-repo.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); j["uuid"] = "00000000-0000-4000-8000-000000000000"
json.dump(j, open(sys.argv[1], "w"))
PY
nosecret expect_rc 1 bootback points
grep -q "the catalog knows this repository as uuid .* and it now says 00000000-0000-4000-8000-000000000000" "$tmp/err" ||
    fail "a replaced repository not refused: $(cat "$tmp/err")"
# a uuid with a terminal escape in it (it is printed) is not a uuid
python3 - "$repo/bootback-repo.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); j["uuid"] = "\x1b[2J" + "0" * 32
json.dump(j, open(sys.argv[1], "w"))
PY
expect_rc 1 bootback points
grep -q "bootback-repo.json: invalid uuid" "$tmp/err" || fail "an escape in the uuid: $(cat -v "$tmp/err")"
# put back, it is used again
cp -a "$tmp/enc.json" "$repo/bootback-repo.json"
mv "$tmp/keys.saved" "$repo/keys"
bootback points tiny > /dev/null
echo "encrypted repository ok"
