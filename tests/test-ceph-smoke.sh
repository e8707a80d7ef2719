#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The shared Ceph test cluster (tests/lib/ceph.sh) is real and usable for
# what the fleet (RBD) and object-storage (S3) work need:
#   - RBD: an image made with rbd, written and read back through QEMU's
#     rbd driver as the cephx user client.bootback, byte-equal, with the
#     conf and keyring files and the way libvirt does it (mon address,
#     key in a QEMU secret object, no conf); that user's caps stop at its
#     pool;
#   - S3 on RGW: a bucket, PUT and GET byte-equal with curl's SigV4; a
#     wrong secret is refused (403 SignatureDoesNotMatch);
#   - Object Lock: in a bucket created with locking, an object version
#     under COMPLIANCE retention cannot be deleted or have its retention
#     shortened with the owner's own keys (403 AccessDenied), a plain
#     DELETE only adds a delete marker, and the version still reads back.

source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/ceph.sh"
requires qemu-img curl openssl

t0=$SECONDS
ceph_shared
echo "cluster ready in $((SECONDS - t0))s ($BOOTBACK_CEPH_DIR)"
t0=$SECONDS
name=smoke-$$

## RBD through QEMU's rbd driver, as client.bootback
rbd --id "$CEPH_ID" create --size 16M "$CEPH_POOL/$name"
cleanup_fn rbd --id "$CEPH_ID" rm --no-progress "$CEPH_POOL/$name"
make_disk "$tmp/src.raw" $((16 << 20))
# conf and keyring are files; no key on the command line
rbd_uri="rbd:$CEPH_POOL/$name:id=$CEPH_ID:conf=$CEPH_CONF:keyring=$CEPH_KEYRING"
qemu-img convert -n -f raw -O raw "$tmp/src.raw" "$rbd_uri"
qemu-img convert -f raw -O raw "$rbd_uri" "$tmp/back.raw"
cmp "$tmp/src.raw" "$tmp/back.raw" || fail "RBD image $name differs from what QEMU wrote"
# the way libvirt opens it (<host>, <auth> with a secret): no conf file,
# the mon's msgr1 address, the key in a QEMU secret object read from a file
sed -n 's/^[[:space:]]*key = //p' "$CEPH_KEYRING" > "$tmp/key"
[ -s "$tmp/key" ] || fail "no key in $CEPH_KEYRING"
qemu-img convert --object "secret,id=sec0,file=$tmp/key,format=base64" -O raw \
    "json:{\"driver\": \"raw\", \"file\": {\"driver\": \"rbd\", \"pool\": \"$CEPH_POOL\",
      \"image\": \"$name\", \"user\": \"$CEPH_ID\", \"key-secret\": \"sec0\",
      \"auth-client-required\": [\"cephx\"], \"conf\": \"/dev/null\",
      \"server\": [{\"host\": \"$CEPH_MON_HOST\", \"port\": \"$CEPH_MON_PORT\"}]}}" \
    "$tmp/back2.raw"
cmp "$tmp/src.raw" "$tmp/back2.raw" || fail "RBD image $name read libvirt's way differs"
grep -q "size 16 MiB" <<< "$(rbd --id "$CEPH_ID" info "$CEPH_POOL/$name")" ||
    fail "rbd info $CEPH_POOL/$name: not 16 MiB"
# client.bootback's caps end at its pool: RGW's pools are out of reach
expect_rc 1 rados --id "$CEPH_ID" -p .rgw.root ls
grep -q "Operation not permitted" "$tmp/err" || fail "client.bootback could list .rgw.root"

## S3: bucket, PUT, GET with SigV4
s3 () { curl -sS -K "$S3_CURL_CONFIG" -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@"; }
header () { sed -n "s/^$1: *//Ip" "$tmp/headers" | tr -d '\r'; }
[ "$(s3 -X PUT "$S3_ENDPOINT/$name")" = 200 ] || fail "PUT bucket $name: $(cat "$tmp/body")"
head -c 300000 /dev/urandom > "$tmp/obj"
[ "$(s3 -X PUT --data-binary @"$tmp/obj" "$S3_ENDPOINT/$name/a/obj")" = 200 ] ||
    fail "PUT $name/a/obj: $(cat "$tmp/body")"
[ "$(s3 "$S3_ENDPOINT/$name/a/obj")" = 200 ] || fail "GET $name/a/obj"
cmp "$tmp/obj" "$tmp/body" || fail "GET $name/a/obj differs from what was PUT"

## a wrong secret is refused
bad=$tmp/bad.curl
sed "s/^user = .*/user = \"$S3_ACCESS_KEY:not-the-secret\"/" "$S3_CURL_CONFIG" > "$bad"
code=$(curl -sS -K "$bad" -o "$tmp/body" -w '%{http_code}' "$S3_ENDPOINT/$name/a/obj")
[ "$code" = 403 ] || fail "GET with a wrong secret: HTTP $code, expected 403"
grep -q SignatureDoesNotMatch "$tmp/body" || fail "wrong secret: $(cat "$tmp/body")"

## Object Lock, COMPLIANCE mode
lb=$name-lock
[ "$(s3 -X PUT -H 'x-amz-bucket-object-lock-enabled: true' "$S3_ENDPOINT/$lb")" = 200 ] ||
    fail "PUT bucket $lb with object lock: $(cat "$tmp/body")"
s3 "$S3_ENDPOINT/$lb?object-lock=" >/dev/null
grep -q '<ObjectLockEnabled>Enabled<' "$tmp/body" || fail "$lb: object lock not enabled"
until=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
[ "$(s3 -X PUT -H 'x-amz-object-lock-mode: COMPLIANCE' \
        -H "x-amz-object-lock-retain-until-date: $until" \
        --data-binary @"$tmp/obj" "$S3_ENDPOINT/$lb/point")" = 200 ] ||
    fail "PUT $lb/point with retention: $(cat "$tmp/body")"
vid=$(header x-amz-version-id)
[ -n "$vid" ] || fail "PUT $lb/point: no x-amz-version-id"
s3 "$S3_ENDPOINT/$lb/point?retention=&versionId=$vid" >/dev/null
grep -q '<Mode>COMPLIANCE</Mode>' "$tmp/body" || fail "$lb/point: retention not kept"

code=$(s3 -X DELETE "$S3_ENDPOINT/$lb/point?versionId=$vid")
echo "DELETE of the locked version: HTTP $code $(cat "$tmp/body")"
[ "$code" = 403 ] || fail "DELETE of locked $lb/point version $vid: HTTP $code, expected 403"
grep -q '<Code>AccessDenied</Code>' "$tmp/body" || fail "locked DELETE: $(cat "$tmp/body")"
code=$(s3 -X DELETE -H 'x-amz-bypass-governance-retention: true' \
          "$S3_ENDPOINT/$lb/point?versionId=$vid")
[ "$code" = 403 ] || fail "DELETE with governance bypass of a COMPLIANCE lock: HTTP $code"

soon=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
body="<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>$soon</RetainUntilDate></Retention>"
code=$(s3 -X PUT -H "Content-MD5: $(printf %s "$body" | openssl md5 -binary | base64)" \
          --data-binary "$body" "$S3_ENDPOINT/$lb/point?retention=&versionId=$vid")
[ "$code" = 403 ] || fail "shortening the COMPLIANCE retention of $lb/point: HTTP $code"

# a DELETE without a version only hides the object behind a marker
[ "$(s3 -X DELETE "$S3_ENDPOINT/$lb/point")" = 204 ] || fail "DELETE $lb/point"
[ "$(header x-amz-delete-marker)" = true ] || fail "DELETE $lb/point: no delete marker"
[ "$(s3 "$S3_ENDPOINT/$lb/point?versionId=$vid")" = 200 ] ||
    fail "locked version $vid of $lb/point gone after DELETE"
cmp "$tmp/obj" "$tmp/body" || fail "locked version $vid of $lb/point changed"

echo "smoke checks took $((SECONDS - t0))s"
