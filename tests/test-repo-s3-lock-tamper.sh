#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A lock taken off by rewriting bootback-repo.json (review finding: the
# file is not authenticated; without "lock_days" every later point would
# be written unlocked, and the old ones deleted once their locks end).
# The host remembers the lock (catalog): an import into a repository whose
# file says less, or nothing, is refused naming the file and both values,
# reads still work, a raise is recorded, repo init accepts a lowering.  On
# S3, repo init --lock also gives the bucket a default COMPLIANCE
# retention: after the file is rewritten with the repository's own keys,
# a host without the catalog's memory still writes locked objects (the
# bucket's default, and the open takes the longer of file and bucket),
# which those keys cannot delete; gc and imports go on under the default
# (the bookkeeping has a short retention of its own, and is deleted); a
# different default already on the bucket is refused, naming it.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/ceph.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires curl python3 openssl

make_image "$tmp/a.img" 1M "0:64K:7"
make_image "$tmp/b.img" 1M "0:64K:9"
set_lock () {    # FILE DAYS: "lock_days" DAYS in FILE (0: none)
    python3 - "$1" "$2" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j.pop("lock_days", None)
if int(sys.argv[2]):
    j["lock_days"] = int(sys.argv[2])
json.dump(j, open(sys.argv[1], "w"), indent=2)
PY
}

## local: the catalog remembers the lock
loc=$tmp/local
bootback repo init --lock 3 "$loc" > /dev/null
bootback import "$tmp/a.img" --vm a > /dev/null
set_lock "$loc/bootback-repo.json" 0
expect_rc 1 bootback import "$tmp/b.img" --vm a
grep -q "$loc/bootback-repo.json has no \"lock_days\", but this host recorded a lock of 3 days" "$tmp/err" ||
    fail "import into a repository whose lock was taken off: $(cat "$tmp/err")"
grep -q "Put \"lock_days\": 3 back into it" "$tmp/err" || fail "no remedy: $(cat "$tmp/err")"
[ "$(bootback points a --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] ||
    fail "a point was written"
bootback restore a --to "$tmp/a.raw"            # reads still work
set_lock "$loc/bootback-repo.json" 2
expect_rc 1 bootback import "$tmp/b.img" --vm a
grep -q "has \"lock_days\": 2, but this host recorded a lock of 3 days" "$tmp/err" ||
    fail "a lowered lock: $(cat "$tmp/err")"
# a raise is accepted and recorded
set_lock "$loc/bootback-repo.json" 5
bootback import "$tmp/b.img" --vm a > /dev/null
set_lock "$loc/bootback-repo.json" 3
expect_rc 1 bootback import "$tmp/b.img" --vm a
grep -q "recorded a lock of 5 days" "$tmp/err" || fail "the raise was not recorded: $(cat "$tmp/err")"
# a lowering meant: repo init accepts it
bootback repo init "$loc" > /dev/null
bootback import "$tmp/b.img" --vm a > /dev/null

## S3: the bucket's default retention
ceph_shared
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export BOOTBACK_S3_ENDPOINT=$S3_ENDPOINT BOOTBACK_S3_REGION=$S3_REGION
s3 () { curl -sS -K "$S3_CURL_CONFIG" -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@"; }
b=bb-lockt-$$
url=s3://$b/repo
bootback repo init --lock 1 "$url" > /dev/null
[ "$(s3 "$S3_ENDPOINT/$b?object-lock=")" = 200 ] || fail "GET ?object-lock"
grep -q '<DefaultRetention><Mode>COMPLIANCE</Mode><Days>1</Days></DefaultRetention>' "$tmp/body" ||
    fail "no default retention on $b: $(cat "$tmp/body")"
bootback --repo "$url" import "$tmp/a.img" --vm a > /dev/null
# the file rewritten without "lock_days", with the repository's own keys
[ "$(s3 "$S3_ENDPOINT/$b/repo/bootback-repo.json")" = 200 ] || fail "GET bootback-repo.json"
cp "$tmp/body" "$tmp/conf.json"
set_lock "$tmp/conf.json" 0
[ "$(s3 -X PUT --data-binary @"$tmp/conf.json" "$S3_ENDPOINT/$b/repo/bootback-repo.json")" = 200 ] ||
    fail "PUT bootback-repo.json"
expect_rc 1 bootback --repo "$url" import "$tmp/b.img" --vm a
grep -q "$url/bootback-repo.json has no \"lock_days\", but this host recorded a lock of 1 days" "$tmp/err" ||
    fail "import into the S3 repository whose lock was taken off: $(cat "$tmp/err")"
# a host without that memory: what it writes is locked all the same
BOOTBACK_HOME=$tmp/fresh bootback --repo "$url" import "$tmp/b.img" --vm b > /dev/null
id=$(BOOTBACK_HOME=$tmp/fresh BOOTBACK_REPO=$url latest_id b)
man=repo/points/b/$id/manifest.json
[ "$(s3 -I "$S3_ENDPOINT/$b/$man")" = 200 ] || fail "HEAD $man"
grep -qi '^x-amz-object-lock-mode: COMPLIANCE' "$tmp/headers" || fail "$man is not locked"
vid=$(sed -n 's/^x-amz-version-id: *//Ip' "$tmp/headers" | tr -d '\r')
[ "$(s3 -X DELETE "$S3_ENDPOINT/$b/$man?versionId=$vid")" = 403 ] ||
    fail "the new manifest's version could be deleted"
# even a client that sends no retention (the server's default alone)
[ "$(s3 -X PUT --data-binary x "$S3_ENDPOINT/$b/repo/chunks/plain-put")" = 200 ] || fail "PUT"
[ "$(s3 -I "$S3_ENDPOINT/$b/repo/chunks/plain-put")" = 200 ] || fail "HEAD plain-put"
grep -qi '^x-amz-object-lock-retain-until-date: ' "$tmp/headers" ||
    fail "an object sent without retention has none: $(cat "$tmp/headers")"
vid=$(sed -n 's/^x-amz-version-id: *//Ip' "$tmp/headers" | tr -d '\r')
[ "$(s3 -X DELETE "$S3_ENDPOINT/$b/repo/chunks/plain-put?versionId=$vid")" = 403 ] ||
    fail "an object under the default retention could be deleted"
# the bookkeeping (writer registrations, locks/gc) is written with a
# short GOVERNANCE retention of its own, not the default's: gc and later
# imports go on, twice, and delete all of it (io-s3.c 13.)
for i in 1 2; do
    BOOTBACK_HOME=$tmp/fresh bootback --repo "$url" gc > /dev/null || fail "gc $i under the default retention"
    BOOTBACK_HOME=$tmp/fresh bootback --repo "$url" import "$tmp/a.img" --vm c > /dev/null ||
        fail "import $i under the default retention"
done
[ "$(s3 "$S3_ENDPOINT/$b?prefix=repo%2Flocks%2F&versions=")" = 200 ] || fail "list versions"
! grep -q '<DeleteMarker>' "$tmp/body" || fail "a lock could not be deleted (a delete marker): $(cat "$tmp/body")"
! grep -o '<Key>[^<]*</Key>' "$tmp/body" | grep -v '<Key>repo/locks/clock</Key>' ||
    fail "versions left under locks/: $(cat "$tmp/body")"
BOOTBACK_HOME=$tmp/fresh bootback --repo "$url" repo check > /dev/null || fail "repo check"
[ "$(BOOTBACK_HOME=$tmp/fresh bootback --repo "$url" points c --json |
     python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ] || fail "not 2 points of c"
# a bucket without the default (a repository made before bootback set
# it): repo init --lock on the repository gives it
cfg='<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>'
md5=$(printf %s "$cfg" | openssl dgst -md5 -binary | base64)
[ "$(s3 -X PUT -H "Content-MD5: $md5" --data-binary "$cfg" "$S3_ENDPOINT/$b?object-lock=")" = 200 ] ||
    fail "PUT ?object-lock without a rule: $(cat "$tmp/body")"
s3 "$S3_ENDPOINT/$b?object-lock=" > /dev/null
! grep -q '<DefaultRetention>' "$tmp/body" || fail "the default was not taken off"
BOOTBACK_HOME=$tmp/fresh bootback repo init --lock 1 "$url" | grep -q "^existing repository" ||
    fail "repo init --lock on the existing repository"
s3 "$S3_ENDPOINT/$b?object-lock=" > /dev/null
grep -q '<DefaultRetention><Mode>COMPLIANCE</Mode><Days>1</Days></DefaultRetention>' "$tmp/body" ||
    fail "repo init --lock did not give the bucket its default again: $(cat "$tmp/body")"
# a repository in a bucket with another default: refused, named
expect_rc 1 bootback repo init --lock 2 "s3://$b/other"
grep -q "s3://$b: the bucket has a default retention of 1 days already" "$tmp/err" ||
    fail "another default: $(cat "$tmp/err")"
echo "lock tamper ok"
