#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Encryption on S3 (issue 18 items 1 and 4 together), on the shared Ceph
# RGW (tests/lib/ceph.sh): repo init s3://... --encrypt; the tiny image
# imported, restored and served by the nbdkit plugin byte for byte (also
# through the local read cache); no object holds a string of the image;
# a second import adds no chunk (dedup); a local encrypted repository
# synced to the S3 one, with different passphrases, served byte for byte
# from S3 and verified; a wrong passphrase is one line naming the
# repository, in the CLI and in nbdkit.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/ceph.sh"
source "$top_srcdir/tests/lib/images.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires curl python3 cmp nbdcopy
images_tiny
ceph_shared
needle="BusyBox v1.35.0"
grep -q -a -F "$needle" "$TINY_IMG" || fail "the tiny image lacks '$needle'"

export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export BOOTBACK_S3_ENDPOINT=$S3_ENDPOINT BOOTBACK_S3_REGION=$S3_REGION
b=bb-s3enc-$$
url=s3://$b/enc
jget () { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }
serve_cmp () {    # REPO POINT IMAGE [ENV...]
    local repo=$1 point=$2 img=$3
    shift 3
    rm -f "$tmp/out.raw"
    ( [ $# -eq 0 ] || export "$@"
      bb_nbdkit -U - "$plugin" repo="$repo" point="$point" \
          --run "nbdcopy \"\$uri\" $tmp/out.raw" )
    cmp "$img" "$tmp/out.raw" || fail "$repo serves $point wrong ($*)"
}

## init an encrypted repository on S3
echo "s3 secret one" > "$tmp/pass-s3"
echo "local secret two" > "$tmp/pass-local"
expect_rc 1 env -u BOOTBACK_PASSPHRASE -u BOOTBACK_PASSPHRASE_FILE \
    "$BOOTBACK" repo init --encrypt "$url"
grep -q "an encrypted repository needs a passphrase" "$tmp/err" || fail "init without a secret: $(cat "$tmp/err")"
export BOOTBACK_PASSPHRASE_FILE=$tmp/pass-s3
bootback repo init --encrypt "$url" > "$tmp/out"
grep -q "created encrypted repository $url" "$tmp/out" || fail "init: $(cat "$tmp/out")"
curl -sS -K "$S3_CURL_CONFIG" -o "$tmp/conf.json" "$S3_ENDPOINT/$b/enc/bootback-repo.json"
grep -q '"encryption": "aes-256-gcm"' "$tmp/conf.json" || fail "not encrypted: $(cat "$tmp/conf.json")"

## import, restore, serve byte for byte (with the read cache too)
bootback --repo "$url" import "$TINY_IMG" --vm tiny --json > "$tmp/j1"
[ "$(jget "$tmp/j1" '["stats"]["new_chunks"]')" -gt 0 ] || fail "no chunk stored"
bootback --repo "$url" restore tiny --to "$tmp/restored.raw"
cmp "$TINY_IMG" "$tmp/restored.raw" || fail "restore from encrypted S3 differs"
serve_cmp "$url" tiny@latest "$TINY_IMG"
serve_cmp "$url" tiny@latest "$TINY_IMG" BOOTBACK_S3_CACHE="$tmp/cache"
serve_cmp "$url" tiny@latest "$TINY_IMG" BOOTBACK_S3_CACHE="$tmp/cache"
[ "$(find "$tmp/cache" -type f | wc -l)" -gt 0 ] || fail "the read cache stayed empty"
# the cache holds the sealed chunks, not the image
if grep -r -l -a -F "$needle" "$tmp/cache" > "$tmp/hits"; then
    fail "plaintext '$needle' in the read cache: $(cat "$tmp/hits")"
fi

## no object holds plaintext; dedup within the repository
mkdir -p "$tmp/objects"
curl -sS -K "$S3_CURL_CONFIG" -o "$tmp/list.xml" "$S3_ENDPOINT/$b?list-type=2&prefix=enc%2F"
grep -o '<Key>[^<]*</Key>' "$tmp/list.xml" | sed 's/<[^>]*>//g' > "$tmp/keys"
[ "$(wc -l < "$tmp/keys")" -gt 5 ] || fail "too few objects: $(cat "$tmp/keys")"
n=0
while read -r key; do
    n=$((n + 1))
    curl -sS -K "$S3_CURL_CONFIG" -o "$tmp/objects/$n" "$S3_ENDPOINT/$b/$key"
done < "$tmp/keys"
if grep -l -a -F "$needle" "$tmp/objects"/* > "$tmp/hits"; then
    fail "plaintext '$needle' in an object of $url"
fi
bootback --repo "$url" import "$TINY_IMG" --vm tiny --json > "$tmp/j2"
[ "$(jget "$tmp/j2" '["stats"]["new_chunks"]')" -eq 0 ] ||
    fail "the same image again stored $(jget "$tmp/j2" '["stats"]["new_chunks"]') chunks"

## sync local (encrypted, another passphrase) -> S3 (encrypted)
local=$tmp/local
BOOTBACK_PASSPHRASE_FILE=$tmp/pass-local bootback repo init --encrypt "$local" > /dev/null
cp --sparse=always "$TINY_IMG" "$tmp/other.raw"
head -c $(( 3 << 20 )) /dev/urandom | dd of="$tmp/other.raw" bs=1M seek=2 conv=notrunc status=none
BOOTBACK_PASSPHRASE_FILE=$tmp/pass-local bootback --repo "$local" import "$tmp/other.raw" --vm other > /dev/null
BOOTBACK_PASSPHRASE_FILE=$tmp/pass-local bootback repo sync --verify --json \
    --dst-passphrase-file "$tmp/pass-s3" "$local" "$url" > "$tmp/j3" 2> "$tmp/progress" ||
    { cat "$tmp/progress"; fail "sync of local encrypted -> S3 encrypted"; }
[ "$(jget "$tmp/j3" '["points_copied"]')" -eq 1 ] || fail "sync: $(cat "$tmp/j3")"
[ "$(jget "$tmp/j3" '["chunks_copied"]')" -gt 0 ] || fail "sync copied no chunk: $(cat "$tmp/j3")"
serve_cmp "$url" other@latest "$tmp/other.raw"
bootback --repo "$url" repo verify > "$tmp/v" || fail "verify after sync: $(cat "$tmp/v")"
grep -q "2 points\|3 points" "$tmp/v" || fail "verify: $(cat "$tmp/v")"
# a rerun copies nothing
BOOTBACK_PASSPHRASE_FILE=$tmp/pass-local bootback repo sync --json \
    --dst-passphrase-file "$tmp/pass-s3" "$local" "$url" > "$tmp/j4" 2> /dev/null
[ "$(jget "$tmp/j4" '["chunks_copied"]')" -eq 0 ] || fail "a rerun copied chunks: $(cat "$tmp/j4")"

## a wrong passphrase: one clear line naming the repository
BOOTBACK_PASSPHRASE_FILE=$tmp/pass-local expect_rc 1 bootback --repo "$url" points
[ "$(cat "$tmp/err")" = "bootback: wrong passphrase for repository $url" ] ||
    fail "wrong passphrase: $(cat "$tmp/err")"
echo wrong > "$tmp/pass-wrong"
if BOOTBACK_PASSPHRASE_FILE=$tmp/pass-wrong bb_nbdkit -U - "$plugin" repo="$url" point=tiny \
       --run "nbdcopy \"\$uri\" null:" 2> "$tmp/err"; then
    fail "nbdkit served with a wrong passphrase"
fi
grep -q "wrong passphrase for repository $url" "$tmp/err" || fail "nbdkit, wrong passphrase: $(cat "$tmp/err")"
BOOTBACK_PASSPHRASE_FILE=$tmp/pass-local expect_rc 1 bootback repo sync \
    --dst-passphrase-file "$tmp/pass-wrong" "$local" "$url"
grep -q "wrong passphrase for repository $url" "$tmp/err" || fail "sync, wrong DST passphrase: $(cat "$tmp/err")"
