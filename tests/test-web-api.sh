#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback web: the REST API and /metrics against a server on 127.0.0.1
# (a catalog made here: points imported from small images, a lab run with
# hostile text put into the catalog).  Tokens: none, wrong and revoked are
# 401, a valid one 200; JSON answers (counts, paging, a point's details,
# 400 naming the bad parameter, 404, 405); values from guests leave as
# escaped JSON with nosniff; /metrics is valid exposition text with
# escaped labels; the security headers; the token never in the log, a
# client's path logged as one printable line; HTTPS
# with a certificate made here; plain HTTP refused off loopback.
source "$top_srcdir/tests/functions.sh"
requires curl
requires openssl
requires sqlite3
requires python3

repo="$tmp/repo"
bootback repo init "$repo" >/dev/null
make_disk "$tmp/a.raw" 3000000
make_disk "$tmp/b.raw" 2000000
bootback import "$tmp/a.raw" --vm web --time 20261101T010000Z >/dev/null
bootback import "$tmp/b.raw" --vm web --time 20261102T010000Z >/dev/null
# as hostile as name_is_valid allows
evil='x_.-..-_Z9'
bootback import "$tmp/b.raw" --vm "$evil" --time 20261103T010000Z >/dev/null

# A failed lab run of web's first point whose texts came from the guest
# (lab_vms.message, the source a lab VM reported), and a passed one.
sqlite3 "$BOOTBACK_HOME/catalog.db" <<'SQL'
INSERT INTO lab_runs (id, run, lab, kind, started, seconds, status, message)
  VALUES (1, 'r1', 'nightly', 'verify', 1793600000, 20, 'passed', ''),
         (2, 'r2', 'nightly', 'verify', 1793700000, 30, 'failed',
          '<script>alert(1)</script>');
INSERT INTO lab_vms (run_id, vm, source, status, t_boot, t_heartbeat, t_app_ready, message)
  VALUES (1, 'web', 'web@20261101T010000Z', 'pass', 2.5, 4, 7.25, ''),
         (2, 'web', 'web@20261102T010000Z', 'fail', 3.5, 5, NULL,
          '<script>alert("x")</script>'),
         (2, 'lab1', 'ev"il\' || char(10) || '<b>@20261101T010000Z', 'pass', 1, 2, 3, '');
SQL

token=$(bootback web token add ci)
[[ $token =~ ^bbt_[0-9a-f]{64}$ ]] || fail "token add printed '$token'"
old=$(bootback web token add old)
expect_fail bootback web token add ci 2>"$tmp/err"
grep -q "token ci exists" "$tmp/err" || fail "a second token ci: $(cat "$tmp/err")"
if grep -q "${token#bbt_}" "$BOOTBACK_HOME/catalog.db"; then fail "the token is in the catalog"; fi

# The server, on a port the kernel picks (its log says which).
start_web () {
    local log=$1; shift
    "$BOOTBACK" web "$@" 2>"$log" &
    web_pid=$!
    cleanup_fn "kill $web_pid 2>/dev/null || true"
    wait_log "$log" "listening on" "$web_pid" || true
    port=$(sed -n 's/.*listening on https*:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$log")
    [ -n "$port" ] || fail "bootback web did not start: $(cat "$log")"
}
start_web "$tmp/web.log" --listen 127.0.0.1:0
url="http://127.0.0.1:$port"

# get PATH [TOKEN]: body in $tmp/body, headers in $tmp/hdr, prints the status
get () {
    local auth=()
    [ -z "${2:-}" ] || auth=(-H "Authorization: Bearer $2")
    curl -s -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' "${auth[@]}" "$url$1"
}
# json EXPR: assert a Python expression over the body (as j)
json () {
    python3 -c 'import json,sys; j = json.load(open(sys.argv[1])); assert eval(sys.argv[2]), (sys.argv[2], j)' \
        "$tmp/body" "$1" || fail "$1"
}
expect_status () {
    local want=$1; shift
    local got; got=$(get "$@")
    [ "$got" = "$want" ] || fail "GET $1: status $got, want $want: $(cat "$tmp/body")"
}

# Authentication
expect_status 401 /api/v1/points
json 'j["error"].startswith("a valid API token")'
grep -qi '^WWW-Authenticate: Bearer' "$tmp/hdr" || fail "401 without WWW-Authenticate"
expect_status 401 /api/v1/points "bbt_$(printf '0%.0s' $(seq 64))"
expect_status 401 /metrics "${token%?}x"
expect_status 401 /api/v1/points "$token$token"
expect_status 200 /api/v1/repositories "$old"
bootback web token revoke old
expect_status 401 /api/v1/repositories "$old"
expect_fail bootback web token revoke old 2>"$tmp/err"
grep -q "no token named old" "$tmp/err" || fail "revoke twice: $(cat "$tmp/err")"

# Security headers on every answer (a 401 above, a 200 and a 404 here)
for path in /api/v1/points /api/v1/nothing /metrics; do
    get "$path" "$token" >/dev/null
    for h in "Content-Security-Policy: default-src 'none'" "X-Content-Type-Options: nosniff" \
             "Referrer-Policy: no-referrer" "Cache-Control: no-store" "X-Frame-Options: DENY"; do
        grep -qi "^$h" "$tmp/hdr" || fail "$path: no '$h' header"
    done
done

# Reads
expect_status 200 /api/v1/repositories "$token"
json 'len(j["repositories"]) == 1 and j["repositories"][0]["points"] == 3'
expect_status 200 /api/v1/points "$token"
json 'j["total"] == 3 and len(j["points"]) == 3 and j["next"] is None'
expect_status 200 "/api/v1/points?vm=web&limit=1" "$token"
json 'j["total"] == 2 and len(j["points"]) == 1 and j["next"] == "1" and j["points"][0]["id"] == "20261101T010000Z"'
expect_status 200 "/api/v1/points?vm=web&limit=1&cursor=1" "$token"
json 'len(j["points"]) == 1 and j["next"] is None and j["points"][0]["id"] == "20261102T010000Z"'
expect_status 200 "/api/v1/points?limit=999999" "$token"
json 'j["limit"] == 1000'
expect_status 200 /api/v1/points/web/20261101T010000Z "$token"
json 'j["vm"] == "web" and j["kind"] == "full" and j["consistency"] == "crash" and j["protected"] is False and j["size"] == 3000000 and j["disks"][0]["size"] == 3000000'
expect_status 200 "/api/v1/points/$evil/20261103T010000Z" "$token"
json "j['vm'] == '$evil'"
expect_status 200 /api/v1/sessions "$token"
json 'j["sessions"] == []'
expect_status 200 /api/v1/labs "$token"
json 'j["labs"] == []'
expect_status 200 "/api/v1/report?since=3650d" "$token"
json 'sorted(v["vm"] for v in j["vms"]) == sorted(["web", "'"$evil"'", "ev\"il\\\n<b>"])'

# Text from guests: valid JSON, the <script> kept as data, never HTML
expect_status 200 "/api/v1/history?vm=web" "$token"
json 'len(j["runs"]) == 2 and j["runs"][1]["message"] == "<script>alert(\"x\")</script>"'
grep -qi '^Content-Type: application/json' "$tmp/hdr" || fail "history is not application/json"
grep -qi '^X-Content-Type-Options: nosniff' "$tmp/hdr" || fail "history without nosniff"
if grep -q '<script>alert("x")' "$tmp/body"; then fail "a raw quote inside a JSON string"; fi

# Errors: 400 naming the parameter, 404, 405, 413
expect_status 400 "/api/v1/points?limit=abc" "$token"
json '"limit" in j["error"]'
expect_status 400 "/api/v1/points?vm=a%3Cb" "$token"
json '"vm" in j["error"]'
expect_status 400 "/api/v1/points?cursor=-1" "$token"
json '"cursor" in j["error"]'
expect_status 400 /api/v1/history "$token"
json '"vm" in j["error"]'
expect_status 400 "/api/v1/report?since=soon" "$token"
json '"since" in j["error"]'
expect_status 400 /api/v1/points/web/yesterday "$token"
json '"time" in j["error"]'
expect_status 404 /api/v1/points/web/20200101T000000Z "$token"
json 'j["error"] == "no point web@20200101T000000Z"'
expect_status 404 /api/v1/nothing "$token"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -X DELETE -H "Authorization: Bearer $token" "$url/api/v1/points")
[ "$code" = 405 ] || fail "DELETE: $code"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -X GET --data-binary 'x=1' -H "Authorization: Bearer $token" "$url/api/v1/points")
[ "$code" = 413 ] || fail "GET with a body: $code"

big=$(head -c 70000 /dev/zero | tr '\0' a)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" -H "Authorization: Bearer $token" "$url/api/v1/points")
[ "$code" = 431 ] || fail "70 kB of headers: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url/api/v1/points?vm=$big")
[ "$code" = 414 ] || fail "a 70 kB URL: $code"
code=$(curl -s -I -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url/api/v1/points")
[ "$code" = 200 ] || fail "HEAD: $code"
# A path under the memory limit but over WEB_URL_MAX, or a method of 20
# kB, from anyone: no log line of their size (every request of anyone
# wrote up to 64 kB into the log)
long=$(head -c 30000 /dev/zero | tr '\0' b)
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/$long")
[ "$code" = 414 ] || fail "a 30 kB path: $code"
curl -s -o /dev/null -X "$(head -c 20000 /dev/zero | tr '\0' M)" "$url/x" || true
awk 'length > 4096 { bad = 1 } END { exit bad }' "$tmp/web.log" ||
    fail "a client made a log line of $(awk '{ print length }' "$tmp/web.log" | sort -n | tail -1) bytes"

# /metrics: every line a comment or NAME{LABELS} VALUE, labels unescaped
# back to what the catalog holds
expect_status 200 /metrics "$token"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$tmp/hdr" || fail "metrics content type"
python3 - "$tmp/body" <<'PY' || fail "/metrics does not parse (above)"
import re, sys
lbl = r'[a-zA-Z_][a-zA-Z0-9_]*="((?:\\[\\"n]|[^"\\\n])*)"'
line = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(' + lbl + r')(,' + lbl + r')*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$')
samples = {}
for l in open(sys.argv[1]).read().split("\n")[:-1]:
    if l.startswith("# HELP ") or l.startswith("# TYPE "):
        continue
    m = line.match(l)
    assert m, "bad line: %r" % l
    labels = dict((k, v.replace('\\n', '\n').replace('\\"', '"').replace('\\\\', '\\'))
                  for k, v in re.findall(r'([a-zA-Z_]+)="((?:\\.|[^"\\])*)"', m.group(2) or ""))
    samples[(m.group(1), tuple(sorted(labels.items())))] = float(m.group(m.lastindex))
def get(name, **lab):
    return samples[(name, tuple(sorted(lab.items())))]
assert get("bootback_last_backup_timestamp_seconds", vm="web") == 1793581200
assert get("bootback_last_verification_success", vm="web") == 0
assert get("bootback_last_verification_timestamp_seconds", vm="web") == 1793700000
assert get("bootback_last_verification_success", vm='ev"il\\\n<b>') == 1
assert get("bootback_rto_seconds", vm="web", phase="boot") == 3.5
assert ("bootback_rto_seconds", (("phase", "app_ready"), ("vm", "web"))) not in samples
assert get("bootback_lab_runs_total", status="passed") == 1
assert get("bootback_lab_runs_total", status="failed") == 1
assert get("bootback_repository_dedup_ratio", repo=sys.argv[1].rsplit("/", 1)[0] + "/repo") > 0
PY

# A client's method and path are logged as one printable line (the path
# is %XX-decoded and logged before authentication): no forged line of
# the log, no terminal escape in it.
[ "$(get '/x%0abootback%20web:%20POST%20/api/v1/jobs%20202%20token=admin%1b%5b2J')" = 401 ] ||
    fail "an unauthenticated request with a newline in its path was not refused"
if grep -q "^bootback web: POST /api/v1/jobs 202 token=admin" "$tmp/web.log"; then
    fail "a client wrote a line of its own into the log: $(cat -A "$tmp/web.log")"
fi
if grep -q $'\e' "$tmp/web.log"; then fail "a client's escape sequence is in the log"; fi
grep -qxF "bootback web: GET /x bootback web: POST /api/v1/jobs 202 token=admin?[2J 401" \
     "$tmp/web.log" || fail "the request is not logged as one line: $(cat -A "$tmp/web.log")"

# The token is never logged; the requests are
if grep -q "${token#bbt_}\|${old#bbt_}" "$tmp/web.log"; then fail "a token is in the log"; fi
grep -q "GET /metrics 200 token=ci" "$tmp/web.log" || fail "the log lacks the requests: $(cat "$tmp/web.log")"
kill "$web_pid"
wait "$web_pid" || fail "bootback web did not stop cleanly on SIGTERM"
bootback web token list --json | python3 -c '
import json, sys
t = json.load(sys.stdin)
assert [x["name"] for x in t] == ["ci"] and t[0]["last_used"], t
assert "bbt_" not in json.dumps(t)'

# HTTPS with a certificate made here
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
start_web "$tmp/tls.log" --listen 127.0.0.1:0 --cert "$tmp/cert.pem" --key "$tmp/key.pem"
grep -q "listening on https://" "$tmp/tls.log" || fail "TLS: $(cat "$tmp/tls.log")"
code=$(curl -s -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' --cacert "$tmp/cert.pem" \
       -H "Authorization: Bearer $token" "https://127.0.0.1:$port/api/v1/points")
[ "$code" = 200 ] || fail "HTTPS: $code"
json 'j["total"] == 3'
grep -qi '^Strict-Transport-Security:' "$tmp/hdr" || fail "HTTPS without HSTS"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$tmp/cert.pem" "https://127.0.0.1:$port/metrics")
[ "$code" = 401 ] || fail "HTTPS without a token: $code"
kill "$web_pid"
wait "$web_pid" || true

# Plain HTTP off loopback is refused; --cert needs --key
expect_fail bootback web --listen 0.0.0.0:0 2>"$tmp/err"
grep -q "plain HTTP only on a loopback address" "$tmp/err" || fail "0.0.0.0: $(cat "$tmp/err")"
expect_fail bootback web --listen 127.0.0.1:0 --cert "$tmp/cert.pem" 2>"$tmp/err"
grep -q -- "--cert and --key go together" "$tmp/err" || fail "--cert alone: $(cat "$tmp/err")"
expect_fail bootback web --listen localhost 2>"$tmp/err"
grep -q -- "--listen localhost" "$tmp/err" || fail "bad --listen: $(cat "$tmp/err")"
echo "web api ok"
