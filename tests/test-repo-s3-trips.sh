#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The round trips of an import to S3 and of the plugin's open of a point
# (io-s3.c 15., 19.; repo.c repo_point_resolve_read), by the requests
# BOOTBACK_S3_TRACE names, and that what they save holds no less:
#   - an import lists points/ once (at open, for the catalog check) and
#     does not GET its own new index back (its score reads the copy
#     it PUT); with BOOTBACK_S3_CACHE the index it wrote is in the cache;
#     the score of a second one reads the point before it without a HEAD
#     of its manifest first;
#   - a damaged index in the cache, put there by the import, is not
#     believed: fetched again, the read is right;
#   - the plugin's open of point=VM@latest lists points/VM/ once, reads
#     the manifest without a HEAD of it first;
#   - reads of parts of a chunk not in the read cache fetch it once;
#   - a newest point directory without a manifest (a writer at work) is
#     passed over by VM@latest, a named one is "no restore point"; a
#     newest point with a damaged manifest is an error, not passed over.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/ceph.sh"
source "$top_srcdir/tests/lib/images.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires curl nbdcopy
images_tiny
ceph_shared

export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export BOOTBACK_S3_ENDPOINT=$S3_ENDPOINT BOOTBACK_S3_REGION=$S3_REGION
b=bb-s3-trips-$$
url=s3://$b/r
s3 () { curl -sS -K "$S3_CURL_CONFIG" -o "$tmp/body" -w '%{http_code}' "$@"; }
cp --sparse=always "$TINY_IMG" "$tmp/a.raw"
bootback repo init "$url" >/dev/null
export BOOTBACK_REPO=$url
count () { grep -c "$1" "$2" || true; }

## the import: points/ listed once, its own index not read back
mkdir -m 0700 "$tmp/cache"
BOOTBACK_S3_TRACE=1 BOOTBACK_S3_CACHE=$tmp/cache bootback import "$tmp/a.raw" --vm a \
    2> "$tmp/imp" >/dev/null || fail "import: $(cat "$tmp/imp")"
id=$(latest_id a)
[ "$(count "^s3: .* GET ?delimiter=%2F&list-type=2&prefix=r%2Fpoints%2F " "$tmp/imp")" = 1 ] ||
    fail "the import listed points/ not once: $(grep 'prefix=r%2Fpoints%2F ' "$tmp/imp")"
[ "$(count "^s3: .* PUT r/points/a/$id/vda.fidx " "$tmp/imp")" = 1 ] || fail "no PUT of the index"
[ "$(count "^s3: .* GET r/points/a/$id/vda.fidx " "$tmp/imp")" = 0 ] ||
    fail "the import read its own index back"
bootback point show "a@$id" | grep -q "^ransomware: *not suspicious" ||
    fail "no score of the import: $(bootback point show "a@$id")"
[ "$(find "$tmp/cache" -type f -name 'i*' | wc -l)" = 1 ] ||
    fail "the index the import wrote is not in the read cache"

## a second import's score reads the point before it without a HEAD of
## its manifest first
BOOTBACK_S3_TRACE=1 BOOTBACK_S3_CACHE=$tmp/cache bootback import "$tmp/a.raw" --vm a \
    2> "$tmp/imp2" >/dev/null ||
    fail "second import: $(cat "$tmp/imp2")"
[ "$(count "HEAD r/points/a/$id/manifest.json " "$tmp/imp2")" = 0 ] ||
    fail "the score stat'ed the previous point's manifest before reading it"
[ "$(count "GET r/points/a/$id/manifest.json " "$tmp/imp2")" = 1 ] ||
    fail "the score did not read the previous point's manifest once"
bootback point show a | grep -q "^score notes: .*first point" &&
    fail "the second point was scored without the first: $(bootback point show a)"
id=$(latest_id a)

## a damaged index in the cache is fetched again, the read is right
serve () {   # serve LOG: the point through the plugin, byte for byte
    BOOTBACK_S3_TRACE=1 BOOTBACK_S3_CACHE=$tmp/cache bb_nbdkit -U - "$plugin" \
        repo="$url" point=a@latest --run "nbdcopy \"\$uri\" $tmp/served.raw" 2> "$1"
    cmp "$tmp/a.raw" "$tmp/served.raw" || fail "served differs: $(cat "$1")"
}
serve "$tmp/s1"
[ "$(count "GET r/points/a/$id/vda.fidx " "$tmp/s1")" = 0 ] ||
    fail "the plugin fetched the index the import had cached"
f=$(find "$tmp/cache" -type f -name "i$(printf 'points/a/%s/vda.fidx' "$id" | sha256sum | cut -c1-64)")
[ -f "$f" ] || fail "no cached index of a@$id"
printf 'XXXX' | dd of="$f" bs=1 seek=40 conv=notrunc status=none
serve "$tmp/s2"
[ "$(count "GET r/points/a/$id/vda.fidx " "$tmp/s2")" = 1 ] ||
    fail "the damaged cached index was not fetched again (once)"

## reads of parts of chunks not in the read cache (1 MiB, a quarter of
## a chunk, in order) fetch each chunk's object once (cache.c 8.: it is
## sent whole anyway), read right
BOOTBACK_S3_TRACE=1 bb_nbdkit -U - "$plugin" repo="$url" point=a@latest readahead=0 \
    --run "$PY $top_srcdir/nbd-plugin/read-chunks.py \"\$uri\" $tmp/a.raw 1048576 > $tmp/bad.out" \
    2> "$tmp/s4" || fail "read: $(cat "$tmp/bad.out" "$tmp/s4")"
[ ! -s "$tmp/bad.out" ] || fail "reads of parts of chunks failed: $(cat "$tmp/bad.out")"
grep -o "GET r/chunks/[^ ]*" "$tmp/s4" | sort > "$tmp/gets"
[ -s "$tmp/gets" ] && [ "$(sort -u "$tmp/gets" | wc -l)" = "$(wc -l < "$tmp/gets")" ] ||
    fail "reads of parts fetched chunks more than once: $(uniq -c "$tmp/gets" | sort -rn | head -3)"

serve "$tmp/s6"

## the plugin's open: points/a/ listed once, the manifest not HEAD'ed
[ "$(count "prefix=r%2Fpoints%2Fa%2F " "$tmp/s1")" = 1 ] ||
    fail "the plugin listed points/a/ not once: $(cat "$tmp/s1")"
[ "$(count "HEAD r/points/a/$id/manifest.json " "$tmp/s1")" = 0 ] ||
    fail "the plugin stat'ed the manifest before reading it"
[ "$(count "GET r/points/a/$id/manifest.json " "$tmp/s1")" = 1 ] ||
    fail "the plugin did not read the manifest once"

## a newer point directory without a manifest is passed over by
## VM@latest; named, it is no point
new=29991231T000000Z
[ "$(s3 -X PUT --data-binary '' "$S3_ENDPOINT/$b/r/points/a/$new/")" = 200 ] ||
    fail "PUT of an uncommitted point directory: $(cat "$tmp/body")"
bootback point show a | grep -q "^point: *a@$id" || fail "latest is not a@$id"
expect_rc 1 bootback point show "a@$new"
grep -q "no restore point a@$new" "$tmp/err" || fail "a@$new: $(cat "$tmp/err")"
serve "$tmp/s3"
## a newest point whose manifest is damaged is an error, not passed over
[ "$(s3 -X PUT --data-binary 'not json' "$S3_ENDPOINT/$b/r/points/a/$new/manifest.json")" = 200 ] ||
    fail "PUT of a damaged manifest: $(cat "$tmp/body")"
expect_rc 1 bootback point show a
grep -q "points/a/$new/manifest.json" "$tmp/err" || fail "damaged manifest: $(cat "$tmp/err")"
expect_rc 1 bb_nbdkit -U - "$plugin" repo="$url" point=a@latest --run true
