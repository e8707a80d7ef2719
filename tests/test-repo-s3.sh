#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A repository on S3 (s3://BUCKET/PREFIX, io-s3.c) on the shared Ceph RGW
# (tests/lib/ceph.sh): init makes the bucket; the tiny image imported,
# restored and served by the nbdkit plugin byte for byte; an index big
# enough for a multipart upload; verify, check, reindex; prune and gc with
# a concurrent import (GC waits for it, nothing it uses goes); kill -9 in
# the middle of imports leaves no point and nothing gc cannot clean; wrong
# keys (403) and a missing bucket (404) named; 503s from a proxy retried.
# Immutability: repo init --lock and point lock put COMPLIANCE retention on
# the objects: deleting them with the repository's own keys fails, prune
# keeps the point and says until when; a bucket repo init makes has Object
# Lock (versioned) only with --lock or --object-lock, else it is plain and
# point lock there fails naming the bucket; --lock and --object-lock on a
# bucket without Object Lock are refused, --object-lock on local disk too;
# on local disk a lock is advisory and prune honours it.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/ceph.sh"
source "$top_srcdir/tests/lib/images.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires curl python3 qemu-img nbdcopy
images_tiny
ceph_shared

export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export BOOTBACK_S3_ENDPOINT=$S3_ENDPOINT BOOTBACK_S3_REGION=$S3_REGION
b=bb-s3-$$
url=s3://$b/site/repo
s3 () { curl -sS -K "$S3_CURL_CONFIG" -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@"; }
# the keys of objects under PREFIX (URL-encoded query) of bucket B
s3_keys () {
    s3 "$S3_ENDPOINT/$1?list-type=2&prefix=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$2")" >/dev/null
    grep -o '<Key>[^<]*</Key>' "$tmp/body" | sed 's/<[^>]*>//g' || true
}

## init: the bucket is made, plain (no Object Lock, not versioned: every
## object PUT costs the server less); a second init finds the repository
bootback repo init "$url" | tee "$tmp/init"
grep -q "^created repository $url" "$tmp/init" || fail "init: $(cat "$tmp/init")"
s3 "$S3_ENDPOINT/$b?object-lock=" > /dev/null || true
! grep -q '<ObjectLockEnabled>Enabled<' "$tmp/body" || fail "$b was made with Object Lock"
[ "$(s3 "$S3_ENDPOINT/$b?versioning=")" = 200 ] || fail "GET ?versioning: $(cat "$tmp/body")"
! grep -q '<Status>' "$tmp/body" || fail "$b was made versioned: $(cat "$tmp/body")"
s3_keys "$b" site/repo/ > "$tmp/keys"
grep -qx site/repo/bootback-repo.json "$tmp/keys" || fail "no bootback-repo.json in $b"
bootback repo init "$url" | grep -q "^existing repository $url" || fail "second init"

## import the tiny image, restore, serve it byte for byte
cp --sparse=always "$TINY_IMG" "$tmp/tiny.img"
bootback import "$tmp/tiny.img" --vm tiny
bootback restore tiny --to "$tmp/back.raw"
cmp "$tmp/tiny.img" "$tmp/back.raw" || fail "restore from S3 differs from the image"
bb_nbdkit -U - "$plugin" repo="$url" point=tiny@latest \
    --run "nbdcopy \"\$uri\" $tmp/served.raw"
cmp "$tmp/tiny.img" "$tmp/served.raw" || fail "nbdkit serving from S3 differs"
bb_nbdkit -U - "$plugin" repo="$url" point=tiny cache=0 readahead=0 \
    --run "qemu-img compare -f raw -F raw $tmp/tiny.img \"\$uri\""
# a qcow2 (qemu-nbd reads it, which may hold no file or socket but its
# own: bootback's S3 connections must not reach it)
qemu-img convert -f raw -O qcow2 "$tmp/tiny.img" "$tmp/tiny.qcow2"
bootback repo init "s3://$b/q" >/dev/null
bootback --repo "s3://$b/q" import "$tmp/tiny.qcow2" --vm tinyq || fail "import of a qcow2 into S3"
bootback --repo "s3://$b/q" restore tinyq --to "$tmp/backq.raw"
cmp "$tmp/tiny.img" "$tmp/backq.raw" || fail "the qcow2's point differs from the image"
# a point's objects: chunks, the index and the manifest, no temp
s3_keys "$b" site/repo/ > "$tmp/keys"
grep -q '^site/repo/points/tiny/[0-9TZ]*/manifest.json$' "$tmp/keys" || fail "no manifest"
grep -q '^site/repo/points/tiny/[0-9TZ]*/vda.fidx$' "$tmp/keys" || fail "no index"
! grep -q 'tmp-' "$tmp/keys" || fail "a temp object was left: $(grep tmp- "$tmp/keys")"

## an index bigger than the multipart threshold (5 MiB): 16 GiB at 64K
bootback repo init --chunk-size 64K "s3://$b/big" >/dev/null
truncate -s 16G "$tmp/big.raw"
head -c 300000 /dev/urandom | dd of="$tmp/big.raw" bs=64k seek=77 conv=notrunc status=none
BOOTBACK_S3_MULTIPART=$((5 << 20)) bootback --repo "s3://$b/big" import "$tmp/big.raw" --vm big
s3 -I "$S3_ENDPOINT/$b/big/points/big/$(BOOTBACK_REPO=s3://$b/big latest_id big)/vda.fidx" >/dev/null
grep -qi '^etag: "[0-9a-f]*-2"' "$tmp/headers" || fail "the 8 MiB index was not a 2-part upload: $(cat "$tmp/headers")"
bootback --repo "s3://$b/big" repo verify | grep -q "no problems" || fail "verify of big"
bootback repo add --default "$url" >/dev/null

## verify, check, reindex
bootback repo verify | tee "$tmp/v"
grep -q "verified $url: 1 points, 1 disks, .*: no problems" "$tmp/v" || fail "verify: $(cat "$tmp/v")"
bootback repo check | grep -q "no problems" || fail "check"
rm -f "$BOOTBACK_HOME"/catalog.db*
bootback repo add "$url" >/dev/null
bootback repo reindex
[ "$(bootback points --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] ||
    fail "reindex from S3 did not find the point"

## prune + gc with a concurrent import: gc waits for the writer
make_disk "$tmp/a.raw" $(( 40 << 20 ))
head -c $(( 24 << 20 )) /dev/urandom | dd of="$tmp/a.raw" bs=1M seek=8 conv=notrunc status=none
bootback import "$tmp/a.raw" --vm a
bootback import "$tmp/back.raw" --vm tiny
bootback prune a --keep-last 1 >/dev/null
head -c $(( 24 << 20 )) /dev/urandom | dd of="$tmp/a.raw" bs=1M seek=8 conv=notrunc status=none
bootback import "$tmp/a.raw" --vm a > "$tmp/imp.log" 2>&1 &
imp=$!
for _ in $(seq 100); do
    grep -q 'locks/writers/' <<< "$(s3_keys "$b" site/repo/locks/writers/)" && break
    sleep 0.1
done
bootback prune tiny --keep-last 1 | grep -q "removed 1 restore points" || fail "prune tiny"
bootback gc --json > "$tmp/gc.json" || fail "gc with a concurrent import"
wait $imp || { cat "$tmp/imp.log"; fail "the import beside gc failed"; }
cat "$tmp/gc.json"
bootback repo verify | grep -q "3 points, 3 disks, .*: no problems" ||
    fail "after gc with a concurrent writer: $(bootback repo verify 2>&1)"
sleep 3   # past gc's 2 s margin
bootback prune a --keep-last 1 | grep -q "removed 1 restore points" || fail "prune a"
bootback gc --json > "$tmp/gc.json"
python3 - "$tmp/gc.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["removed"] > 0, j
assert j["chunks"] - j["removed"] == j["referenced"], j
PY
bootback repo verify | grep -q "no problems" || fail "verify after gc"

## kill -9 in the middle of imports: no point, and gc cleans all of it
head -c $(( 3 << 20 )) /dev/urandom > "$tmp/k.raw"
for k in 7 12 18 25; do
    rc=0
    BOOTBACK_FAULT=crash@$k bootback import "$tmp/k.raw" --vm killed >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 137 ] || fail "import with crash@$k: exit $rc, expected 137 (SIGKILL)"
done
bootback points killed --json | grep -q '"id"' && fail "a killed import left a point"
bootback repo check | grep -q "no problems" || fail "check after killed imports"
sleep 3
bootback gc > "$tmp/gc.txt"; cat "$tmp/gc.txt"
s3_keys "$b" site/repo/ > "$tmp/keys"
grep -q '^site/repo/points/killed/[0-9TZ]*/' "$tmp/keys" &&
    fail "gc left a killed import's point: $(grep killed "$tmp/keys")"
grep -q '^site/repo/locks/writers/.' "$tmp/keys" && fail "gc left a dead writer's registration"
nref=$(bootback gc --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["chunks"] - j["referenced"])')
[ "$nref" = 0 ] || fail "$nref unreferenced chunks left after gc"

## errors: wrong keys, a missing bucket, both named
expect_rc 1 env AWS_SECRET_ACCESS_KEY=not-the-secret "$BOOTBACK" --repo "$url" points
grep -q "s3://$b/.*HTTP 403 SignatureDoesNotMatch" "$tmp/err" || fail "wrong keys: $(cat "$tmp/err")"
grep -q "not-the-secret\|$S3_SECRET_KEY" "$tmp/err" && fail "a secret in the error"
expect_rc 1 bootback --repo "s3://$b-missing/x" points
grep -q "s3://$b-missing/: HTTP 404 NoSuchBucket" "$tmp/err" || fail "missing bucket: $(cat "$tmp/err")"
expect_rc 1 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY HOME="$tmp" \
    "$BOOTBACK" --repo "$url" points
grep -q "no S3 credentials" "$tmp/err" || fail "no keys: $(cat "$tmp/err")"
# a credentials file (profile) works in place of the environment
mkdir -p -m 0700 "$tmp/aws"
printf '[ops]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "$S3_ACCESS_KEY" "$S3_SECRET_KEY" > "$tmp/aws/credentials"
chmod 0600 "$tmp/aws/credentials"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=ops \
    AWS_SHARED_CREDENTIALS_FILE="$tmp/aws/credentials" "$BOOTBACK" --repo "$url" points |
    grep -q '^a@' || fail "points with a credentials file"

## 503 from a proxy the first N times: retried; always 503: a clear error
cat > "$tmp/proxy.py" <<'PY'
import http.client, http.server, sys, threading
upstream, fails, portfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
host, port = upstream.split("//")[1].split(":")
count = {"503": 0}
lock = threading.Lock()
def say(line):   # whole lines, whatever the threads
    with lock:
        sys.stdout.write(line + "\n"); sys.stdout.flush()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        with lock:
            fail = count["503"] < fails
            if fail: count["503"] += 1
        if fail:
            msg = b"<Error><Code>SlowDown</Code><Message>busy</Message></Error>"
            self.send_response(503); self.send_header("Content-Length", str(len(msg)))
            self.end_headers(); self.wfile.write(msg)
            say("FAILED-503"); return
        say("REQ %s %s" % (self.command, self.path))
        c = http.client.HTTPConnection(host, int(port))
        c.request(self.command, self.path, body, dict(self.headers))
        r = c.getresponse(); data = r.read()
        self.send_response(r.status)
        head = self.command == "HEAD"
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection") and \
               (head or k.lower() != "content-length"):
                self.send_header(k, v)
        if not head:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(data)
    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(portfile, "w").write(str(s.server_address[1]))
s.serve_forever()
PY
proxy () {
    rm -f "$tmp/pport"
    python3 "$tmp/proxy.py" "$S3_ENDPOINT" "$1" "$tmp/pport" > "$tmp/proxy.log" 2>&1 &
    proxy_pid=$!
    cleanup_fn "kill $proxy_pid 2>/dev/null || true"
    for _ in $(seq 50); do [ -s "$tmp/pport" ] && break; sleep 0.1; done
    pep=http://127.0.0.1:$(cat "$tmp/pport")
}
proxy 3
bootback --s3-endpoint "$pep" --repo "$url" repo check | grep -q "no problems" ||
    fail "check through a proxy failing 3 times"
[ "$(grep -c '^FAILED-503$' "$tmp/proxy.log")" = 3 ] || fail "the proxy did not answer 503 3 times"
kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
proxy 1000
expect_rc 1 bootback --s3-endpoint "$pep" --repo "$url" points
grep -q "s3://$b/.*HTTP 503 SlowDown" "$tmp/err" || fail "503 for ever: $(cat "$tmp/err")"
[ "$(grep -c '^FAILED-503$' "$tmp/proxy.log")" -ge 6 ] || fail "fewer than 6 tries before giving up"
kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true

## the local read cache: filled on a cold read, then no chunk is fetched;
## a damaged cached chunk is caught and fetched again
proxy 0
serve () {
    BOOTBACK_S3_ENDPOINT=$pep BOOTBACK_S3_CACHE=$tmp/s3cache bb_nbdkit -U - "$plugin" \
        repo="$url" point=a@latest --run "nbdcopy \"\$uri\" $tmp/cached.raw"
    cmp "$tmp/a.raw" "$tmp/cached.raw" || fail "served through the cache differs"
}
chunk_gets () { grep -c "^REQ GET /$b/site/repo/chunks/" "$tmp/proxy.log" || true; }
serve
n1=$(chunk_gets)
[ "$n1" -gt 0 ] || fail "a cold read fetched no chunk"
[ "$(stat -c %a "$tmp/s3cache")" = 700 ] || fail "the cache directory is not 0700"
nd=$(grep "^REQ GET /$b/site/repo/chunks/" "$tmp/proxy.log" | sort -u | wc -l)
nf=$(find "$tmp/s3cache" -type f ! -name 'i*' | wc -l)
[ "$nf" = "$nd" ] || fail "the cache has $nf chunks, $nd different ones were read"
# the point's index is cached too (i + the SHA-256 of its key)
[ "$(find "$tmp/s3cache" -type f -name 'i*' | wc -l)" = 1 ] || fail "the index is not cached"
index_gets () { grep -c "^REQ GET /$b/site/repo/points/a/.*/vda.fidx" "$tmp/proxy.log" || true; }
i1=$(index_gets)
serve
[ "$(chunk_gets)" = "$n1" ] || fail "a warm read fetched $(( $(chunk_gets) - n1 )) chunks"
[ "$(index_gets)" = "$i1" ] || fail "a warm read fetched the index again"
f=$(find "$tmp/s3cache" -type f ! -name 'i*' | head -n 1)
printf 'XXXX' | dd of="$f" bs=1 seek=100 conv=notrunc status=none
serve
[ "$(chunk_gets)" = $(( n1 + 1 )) ] || fail "the damaged cached chunk was not fetched again (once)"
# a damaged cached index is not believed: fetched again, the read is right
f=$(find "$tmp/s3cache" -type f -name 'i*')
printf 'XXXX' | dd of="$f" bs=1 seek=80 conv=notrunc status=none
serve
[ "$(index_gets)" = $(( i1 + 1 )) ] || fail "the damaged cached index was not fetched again (once)"
kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true

## immutability: repo init --lock 1 (Object Lock COMPLIANCE)
lb=$b-lock
lurl=s3://$lb/repo
bootback repo init --lock 1 "$lurl" >/dev/null
s3 "$S3_ENDPOINT/$lb?object-lock=" >/dev/null
grep -q '<ObjectLockEnabled>Enabled<' "$tmp/body" || fail "$lb made without Object Lock"
bootback --repo "$lurl" import "$tmp/k.raw" --vm l
id1=$(BOOTBACK_REPO=$lurl latest_id l)
man=repo/points/l/$id1/manifest.json
s3 -I "$S3_ENDPOINT/$lb/$man" >/dev/null
grep -qi '^x-amz-object-lock-mode: COMPLIANCE' "$tmp/headers" || fail "$man has no COMPLIANCE lock"
vid=$(sed -n 's/^x-amz-version-id: *//Ip' "$tmp/headers" | tr -d '\r')
# the repository's own keys cannot delete the locked version
code=$(s3 -X DELETE "$S3_ENDPOINT/$lb/$man?versionId=$vid")
[ "$code" = 403 ] || fail "DELETE of the locked manifest version: HTTP $code"
grep -q '<Code>AccessDenied</Code>' "$tmp/body" || fail "locked DELETE: $(cat "$tmp/body")"
chunk=$(s3_keys "$lb" repo/chunks/ | grep -m1 '^repo/chunks/..../')
s3 -I "$S3_ENDPOINT/$lb/$chunk" >/dev/null
cvid=$(sed -n 's/^x-amz-version-id: *//Ip' "$tmp/headers" | tr -d '\r')
[ "$(s3 -X DELETE "$S3_ENDPOINT/$lb/$chunk?versionId=$cvid")" = 403 ] ||
    fail "a locked chunk version could be deleted"
# prune keeps it and says until when; a direct removal is refused too
sleep 1
bootback --repo "$lurl" import "$tmp/k.raw" --vm l >/dev/null
until=$(date -u -d '+1 day' +%Y-%m-%d)
bootback --repo "$lurl" prune l --keep-last 1 | tee "$tmp/prune"
grep -q "^keep    l@$id1 (locked until $until [0-9:]* UTC)" "$tmp/prune" ||
    fail "prune did not keep the locked point: $(cat "$tmp/prune")"
bootback --repo "$lurl" repo verify | grep -q "2 points" || fail "a locked point went"

## point lock on a repository without --lock: in a bucket made with
## --object-lock (no default retention) it locks; in the plain one of
## repo init alone it fails, naming the bucket and what would make one
ob=$b-ol
bootback repo init --object-lock "s3://$ob/r" >/dev/null
s3 "$S3_ENDPOINT/$ob?object-lock=" >/dev/null
grep -q '<ObjectLockEnabled>Enabled<' "$tmp/body" || fail "$ob made without Object Lock"
! grep -q '<DefaultRetention>' "$tmp/body" || fail "--object-lock gave $ob a default retention"
bootback --repo "s3://$ob/r" import "$tmp/k.raw" --vm a >/dev/null
bootback --repo "s3://$ob/r" point lock "a@latest" --days 1 | tee "$tmp/lock"
grep -q "is locked until .* (S3 Object Lock, COMPLIANCE" "$tmp/lock" || fail "point lock: $(cat "$tmp/lock")"
aid=$(BOOTBACK_REPO=s3://$ob/r latest_id a)
s3 -I "$S3_ENDPOINT/$ob/r/points/a/$aid/vda.fidx" >/dev/null
grep -qi '^x-amz-object-lock-mode: COMPLIANCE' "$tmp/headers" || fail "point lock: index not locked"
expect_rc 1 bootback --repo "$url" point lock "a@latest" --days 1
grep -q "s3://$b/site/repo/.*: the bucket has no Object Lock (create it with 'bootback repo init --object-lock" "$tmp/err" ||
    fail "point lock in the plain bucket: $(cat "$tmp/err")"
expect_rc 1 bootback repo init --object-lock "$tmp/ol-local"
grep -q "Object Lock is for repositories on S3" "$tmp/err" || fail "--object-lock on local disk: $(cat "$tmp/err")"
[ ! -e "$tmp/ol-local" ] || fail "--object-lock on local disk made $tmp/ol-local"
nb=$b-nolock
[ "$(s3 -X PUT "$S3_ENDPOINT/$nb")" = 200 ] || fail "PUT bucket $nb"
expect_rc 1 bootback repo init --lock 1 "s3://$nb/r"
grep -q "s3://$nb: the bucket has no Object Lock configuration" "$tmp/err" || fail "--lock without Object Lock"
expect_rc 1 bootback repo init --object-lock "s3://$nb/r"
grep -q "s3://$nb: the bucket has no Object Lock configuration: --object-lock needs" "$tmp/err" ||
    fail "--object-lock without Object Lock: $(cat "$tmp/err")"
bootback repo init "s3://$nb/r" >/dev/null
bootback --repo "s3://$nb/r" import "$tmp/k.raw" --vm n >/dev/null
expect_rc 1 bootback --repo "s3://$nb/r" point lock n --days 1
grep -q "the bucket has no Object Lock" "$tmp/err" || fail "point lock without Object Lock: $(cat "$tmp/err")"

## on local disk a lock is advisory, and prune honours it
bootback repo init --lock 1 "$tmp/local" >/dev/null
bootback --repo "$tmp/local" import "$tmp/k.raw" --vm l >/dev/null
lid=$(BOOTBACK_REPO=$tmp/local latest_id l)
sleep 1
bootback --repo "$tmp/local" import "$tmp/k.raw" --vm l >/dev/null
bootback --repo "$tmp/local" prune l --keep-last 1 | tee "$tmp/prune"
grep -q "^keep    l@$lid (locked until $until" "$tmp/prune" || fail "local lock not honoured"

## a chunk object changed on the server is caught on read, and named
bootback repo init "s3://$b/corrupt" >/dev/null
bootback --repo "s3://$b/corrupt" import "$tmp/k.raw" --vm c >/dev/null
chunk=$(s3_keys "$b" corrupt/chunks/ | grep -m1 '^corrupt/chunks/..../')
s3 "$S3_ENDPOINT/$b/$chunk" >/dev/null
cp "$tmp/body" "$tmp/chunk"
printf 'XXXX' | dd of="$tmp/chunk" bs=1 seek=5000 conv=notrunc status=none
[ "$(s3 -X PUT --data-binary @"$tmp/chunk" "$S3_ENDPOINT/$b/$chunk")" = 200 ] || fail "PUT $chunk"
expect_rc 2 bootback --repo "s3://$b/corrupt" repo verify
grep -q "${chunk##*/}" "$tmp/out" "$tmp/err" || fail "verify did not name the changed chunk ${chunk##*/}"
expect_rc 1 bootback --repo "s3://$b/corrupt" restore c --to "$tmp/c.raw"
grep -q "${chunk##*/}" "$tmp/err" || fail "restore did not name the changed chunk: $(cat "$tmp/err")"
