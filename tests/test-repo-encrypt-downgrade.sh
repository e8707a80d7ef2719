#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Encryption downgrades by someone who can write a repository but holds no
# key (review finding): a secret given for a repository that opens plain
# is refused, naming it, and nothing is written.  (i) bootback-repo.json
# rewritten as plain and keys/ moved away: a fresh host (no catalog row)
# with the passphrase refuses repo add and import; (ii) a plain repository
# put at a sync destination: repo sync --dst-passphrase-file refuses it,
# and an encrypted SRC's points go to a plain DST only with --dst-plain;
# (iv) the usual secret (BOOTBACK_PASSPHRASE*) applies to both ends of a
# sync: a forged plain SRC is not copied into the encrypted DST, and a DST
# turned plain gets nothing in clear, on a host that never saw them,
# unless --src-plain / --dst-plain say a plain end is meant; (iii) repo init --encrypt on an existing plain repository fails, the
# repository and the catalog as they were.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires python3

echo "downgrade pass" > "$tmp/pass"
make_image "$tmp/a.img" 1M "0:64K:7"
fingerprint () { find "$1" -type f | sort | xargs md5sum | md5sum; }
plain_json () {    # rewrite REPO's configuration as a plain repository's
    python3 - "$1/bootback-repo.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j.pop("encryption", None)
j["version"] = 1
json.dump(j, open(sys.argv[1], "w"))
PY
}

## (i) turned plain, keys/ moved: a fresh host with the passphrase refuses it
enc=$tmp/enc
BOOTBACK_PASSPHRASE_FILE=$tmp/pass bootback repo init --encrypt "$enc" > /dev/null
BOOTBACK_PASSPHRASE_FILE=$tmp/pass bootback --repo "$enc" import "$tmp/a.img" --vm a > /dev/null
plain_json "$enc"
mv "$enc/keys" "$tmp/keys.moved"
before=$(fingerprint "$enc")
export BOOTBACK_HOME=$tmp/fresh
BOOTBACK_PASSPHRASE_FILE=$tmp/pass expect_rc 1 bootback repo add "$enc"
grep -q "$enc is not encrypted .* but a passphrase or key file was given for it" "$tmp/err" ||
    fail "repo add of a downgraded repository with a passphrase: $(cat "$tmp/err")"
BOOTBACK_PASSPHRASE_FILE=$tmp/pass expect_rc 1 bootback --repo "$enc" import "$tmp/a.img" --vm a
grep -q "$enc is not encrypted" "$tmp/err" || fail "import into a downgraded repository: $(cat "$tmp/err")"
expect_rc 1 bootback --passphrase-file "$tmp/pass" --repo "$enc" import "$tmp/a.img" --vm a
grep -q "$enc is not encrypted" "$tmp/err" || fail "--passphrase-file: $(cat "$tmp/err")"
[ "$(fingerprint "$enc")" = "$before" ] || fail "a refused command wrote into $enc"
# without a secret it is what it says, a plain repository (nothing to hold)
bootback --repo "$enc" points a > /dev/null
mv "$tmp/keys.moved" "$enc/keys"

## (ii) a plain repository at the sync destination
export BOOTBACK_HOME=$tmp/home
src=$tmp/src
BOOTBACK_PASSPHRASE_FILE=$tmp/pass bootback repo init --encrypt "$src" > /dev/null
BOOTBACK_PASSPHRASE_FILE=$tmp/pass bootback --repo "$src" import "$tmp/a.img" --vm a > /dev/null
dst=$tmp/dst
bootback repo init "$dst" > /dev/null
before=$(fingerprint "$dst")
BOOTBACK_PASSPHRASE_FILE=$tmp/pass expect_rc 1 bootback repo sync \
    --dst-passphrase-file "$tmp/pass" "$src" "$dst"
grep -q "$dst opened plain .* though a passphrase or key file was given that applies to it (the sync's dst)" "$tmp/err" ||
    fail "sync into a plain DST with a DST passphrase: $(cat "$tmp/err")"
BOOTBACK_PASSPHRASE_FILE=$tmp/pass BOOTBACK_DST_PASSPHRASE_FILE=$tmp/pass \
    expect_rc 1 bootback repo sync "$src" "$dst"
grep -q "$dst opened plain" "$tmp/err" || fail "BOOTBACK_DST_PASSPHRASE_FILE: $(cat "$tmp/err")"
# SRC's secret is not DST's when DST is plain
BOOTBACK_PASSPHRASE_FILE=$tmp/pass expect_rc 1 bootback repo sync "$src" "$dst"
grep -q "$dst opened plain .* though a passphrase or key file was given that applies to it (the sync's dst): refusing it, points would be written to it in clear; .* give --dst-plain" "$tmp/err" ||
    fail "sync of an encrypted SRC into a plain DST: $(cat "$tmp/err")"
[ "$(fingerprint "$dst")" = "$before" ] || fail "a refused sync wrote into $dst"
BOOTBACK_PASSPHRASE_FILE=$tmp/pass expect_rc 1 bootback repo sync --dst-plain \
    --dst-passphrase-file "$tmp/pass" "$src" "$dst"
grep -q "exclude each other" "$tmp/err"
# asked for, it is done
BOOTBACK_PASSPHRASE_FILE=$tmp/pass bootback repo sync --dst-plain "$src" "$dst" 2>/dev/null |
    grep -q "copied 1 restore points" || fail "sync --dst-plain"
bootback --repo "$dst" points a | grep -q . || fail "sync --dst-plain copied nothing"
# --dst-plain gives DST no secret: an encrypted DST is not opened
BOOTBACK_PASSPHRASE_FILE=$tmp/pass bootback repo init --encrypt "$tmp/e2" > /dev/null
BOOTBACK_PASSPHRASE_FILE=$tmp/pass expect_rc 1 bootback repo sync --dst-plain "$src" "$tmp/e2"

## (iv) the usual secret applies to both ends: neither may open plain
fake () {    # DIR VM TEXT: a plain repository made by someone with no key
    make_image "$tmp/fake.img" 1M "0:64K:9"
    printf '%s' "$3" | dd of="$tmp/fake.img" conv=notrunc status=none
    BOOTBACK_HOME=$tmp/attacker bootback repo init "$1" > /dev/null
    BOOTBACK_HOME=$tmp/attacker bootback --repo "$1" import "$tmp/fake.img" --vm "$2" > /dev/null
}
# (a) SRC replaced by a plain repository holding a forged point
export BOOTBACK_HOME=$tmp/home4
s4=$tmp/s4 d4=$tmp/d4
BOOTBACK_PASSPHRASE_FILE=$tmp/pass bootback repo init --encrypt "$s4" > /dev/null
BOOTBACK_PASSPHRASE_FILE=$tmp/pass bootback --repo "$s4" import "$tmp/a.img" --vm web1 > /dev/null
BOOTBACK_PASSPHRASE_FILE=$tmp/pass bootback repo init --encrypt "$d4" > /dev/null
rm -rf "$s4"
fake "$s4" web1 FORGED-BY-ATTACKER
export BOOTBACK_HOME=$tmp/drhost     # a host whose catalog never saw SRC
before=$(fingerprint "$d4")
BOOTBACK_PASSPHRASE_FILE=$tmp/pass expect_rc 1 bootback repo sync "$s4" "$d4"
grep -q "$s4 opened plain .* though a passphrase or key file was given that applies to it (the sync's src): refusing it, its points would be copied as genuine; .* give --src-plain" "$tmp/err" ||
    fail "sync from a forged plain SRC with the usual secret: $(cat "$tmp/err")"
expect_rc 1 bootback --passphrase-file "$tmp/pass" repo sync "$s4" "$d4"
grep -q "$s4 opened plain" "$tmp/err" || fail "--passphrase-file, plain SRC: $(cat "$tmp/err")"
[ "$(fingerprint "$d4")" = "$before" ] || fail "a refused sync wrote into $d4"
# a SRC meant to be plain: --src-plain, DST still gets the usual secret
BOOTBACK_PASSPHRASE_FILE=$tmp/pass bootback repo sync --src-plain "$s4" "$d4" 2>/dev/null |
    grep -q "copied 1 restore points" || fail "sync --src-plain"
grep -q '"encryption"' "$d4/bootback-repo.json" || fail "--src-plain made DST plain"
# --src-plain gives SRC no secret: an encrypted SRC is not opened
BOOTBACK_PASSPHRASE_FILE=$tmp/pass expect_rc 1 bootback repo sync --src-plain "$d4" "$tmp/e2"
# (b) DST turned plain (configuration rewritten, keys/ moved away)
export BOOTBACK_HOME=$tmp/home5
s5=$tmp/s5 d5=$tmp/d5
bootback repo init "$s5" > /dev/null
printf 'PLAINTEXT-PAYROLL-DATA' | dd of="$tmp/a.img" conv=notrunc status=none
bootback --repo "$s5" import "$tmp/a.img" --vm db1 > /dev/null
BOOTBACK_PASSPHRASE_FILE=$tmp/pass bootback repo init --encrypt "$d5" > /dev/null
plain_json "$d5"
mv "$d5/keys" "$tmp/keys5.moved"
before=$(fingerprint "$d5")
export BOOTBACK_HOME=$tmp/home6      # a host whose catalog never saw DST
BOOTBACK_PASSPHRASE_FILE=$tmp/pass expect_rc 1 bootback repo sync --src-plain "$s5" "$d5"
grep -q "$d5 opened plain .* (the sync's dst): refusing it, points would be written to it in clear" "$tmp/err" ||
    fail "sync into a DST turned plain with the usual secret: $(cat "$tmp/err")"
[ "$(fingerprint "$d5")" = "$before" ] || fail "a refused sync wrote into $d5"
! grep -rqa PLAINTEXT-PAYROLL-DATA "$d5" || fail "plaintext in $d5"
# both ends plain on purpose
BOOTBACK_PASSPHRASE_FILE=$tmp/pass bootback repo sync --src-plain --dst-plain "$s5" "$d5" 2>/dev/null |
    grep -q "copied 1 restore points" || fail "sync --src-plain --dst-plain"

## (iii) repo init --encrypt on an existing plain repository
export BOOTBACK_HOME=$tmp/home3
pl=$tmp/plain
BOOTBACK_HOME=$tmp/other bootback repo init "$pl" > /dev/null
before=$(fingerprint "$pl")
BOOTBACK_PASSPHRASE_FILE=$tmp/pass expect_rc 1 bootback repo init --encrypt "$pl"
grep -q "$pl is an existing repository, and it is not encrypted" "$tmp/err" ||
    fail "repo init --encrypt on a plain repository: $(cat "$tmp/err")"
[ "$(fingerprint "$pl")" = "$before" ] || fail "repo init --encrypt changed $pl"
! bootback repo list | grep -q "$pl" || fail "repo init --encrypt registered $pl"
echo "encrypt downgrade ok"
