#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback web: the REST API and /metrics against a server on 127.0.0.1
# (a catalog made here: points imported from small images, a lab run with
# hostile text put into the catalog).  Tokens: none, wrong and revoked are
# 401, a valid one 200; JSON answers (counts, paging, a point's details,
# 400 naming the bad parameter, 404, 405); values from guests leave as
# escaped JSON with nosniff; /metrics is valid exposition text with
# escaped labels; the security headers; the token never in the log, a
# client's path logged as one printable line; a Host that is not the
# console's (DNS rebinding) is 421 and a POST from another Origin 403, with
# a valid session cookie and CSRF token; --server-name adds names; HTTPS
# with a certificate made here (its Origin is https://); plain HTTP
# refused off loopback.
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

# Host and Origin (DNS rebinding; a page of a sandbox published on this
# host, which gets the console's cookie: browsers scope cookies by host,
# not port).  A session opened with a token, then the same requests with
# another Host or Origin: refused before authentication or the CSRF check.
curl -s -o /dev/null -D "$tmp/hdr" -X POST -H "Authorization: Bearer $token" "$url/login"
cookie=$(sed -n 's/^Set-Cookie: \(bootback_session=[0-9a-f]*\);.*/\1/pi' "$tmp/hdr")
[ -n "$cookie" ] || fail "login: no session cookie"
curl -s -o "$tmp/body" -H "Cookie: $cookie" "$url/session"
csrf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf"])' "$tmp/body")
# hreq STATUS DESCRIPTION CURL-ARGS...: the status of a request to $url
hreq () {
    local want=$1 what=$2; shift 2
    local got; got=$(curl -s -o "$tmp/body" -w '%{http_code}' "$@")
    [ "$got" = "$want" ] || fail "$what: status $got, want $want: $(head -c 300 "$tmp/body")"
}
hreq 421 "a rebound name with the session cookie" \
    -H "Host: attacker.example:$port" -H "Cookie: $cookie" "$url/session"
grep -q "attacker.example:$port" "$tmp/body" || fail "the 421 does not name the Host: $(cat "$tmp/body")"
hreq 421 "a rebound name with a bearer token" \
    -H "Host: attacker.example:$port" -H "Authorization: Bearer $token" "$url/api/v1/points"
hreq 421 "a rebound name, POST with the cookie and CSRF token" \
    -H "Host: attacker.example:$port" -H "Cookie: $cookie" -H "X-CSRF-Token: $csrf" \
    -H "Content-Type: application/json" -d '{"action":"nosuch"}' "$url/api/v1/jobs"
hreq 421 "the login page under a rebound name" -H "Host: attacker.example:$port" "$url/login"
hreq 421 "another port" -H "Host: 127.0.0.1:$((port == 65535 ? 1 : port + 1))" \
    -H "Cookie: $cookie" "$url/session"
hreq 421 "another loopback address" -H "Host: 127.0.0.2:$port" -H "Cookie: $cookie" "$url/session"
hreq 421 "no Host (HTTP/1.0)" --http1.0 -H "Host:" -H "Cookie: $cookie" "$url/session"
hreq 200 "Host 127.0.0.1:PORT" -H "Cookie: $cookie" "$url/session"
hreq 200 "Host localhost:PORT (loopback)" -H "Host: LocalHost:$port" -H "Cookie: $cookie" "$url/session"
hreq 200 "HTTP/1.0 with its Host" --http1.0 -H "Cookie: $cookie" "$url/session"
# Origin: a POST from another origin with a valid cookie and CSRF token
jobs=(-H "Cookie: $cookie" -H "X-CSRF-Token: $csrf" -H "Content-Type: application/json"
      -d '{"action":"nosuch"}' "$url/api/v1/jobs")
hreq 403 "a POST from another origin" -H "Origin: http://attacker.example" "${jobs[@]}"
grep -q "Origin" "$tmp/body" || fail "the 403 does not name the Origin: $(cat "$tmp/body")"
hreq 403 "a POST from the same name on another port" -H "Origin: http://127.0.0.1:1" "${jobs[@]}"
hreq 403 "a POST from https (not this scheme)" -H "Origin: https://127.0.0.1:$port" "${jobs[@]}"
hreq 403 "a POST from an opaque origin" -H "Origin: null" "${jobs[@]}"
hreq 403 "logout from another origin" -H "Origin: http://attacker.example" \
    -H "Cookie: $cookie" -H "X-CSRF-Token: $csrf" -X POST "$url/logout"
hreq 400 "a POST from this origin (the action is checked next)" \
    -H "Origin: http://127.0.0.1:$port" "${jobs[@]}"
hreq 400 "a POST without Origin (curl, scripts)" "${jobs[@]}"
hreq 200 "a GET with another Origin (reads are not refused by it)" \
    -H "Origin: http://attacker.example" -H "Cookie: $cookie" "$url/session"
grep -q "GET /session 421" "$tmp/web.log" || fail "the 421s are not logged"
# The login form without its script posts the token in a body (never a
# URL: GET /login?token=...), which is refused unread: not logged.
curl -s -o "$tmp/body" "$url/login"
grep -q '<form id="login" method="post" action="/login">' "$tmp/body" ||
    fail "the login form does not POST: $(grep '<form' "$tmp/body")"
hreq 401 "the login form posted without its script" -H "Origin: http://127.0.0.1:$port" \
    --data-urlencode "token=$token" "$url/login"
if grep -q "attacker.example" "$tmp/web.log"; then fail "a client's Host is in the log"; fi

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

# --server-name: the names the console answers to besides its address
start_web "$tmp/names.log" --listen 127.0.0.1:0 --server-name console.example \
    --server-name Bootback.Lab.Example
url="http://127.0.0.1:$port"
hreq 200 "--server-name console.example" -H "Host: console.example:$port" \
    -H "Authorization: Bearer $token" "$url/api/v1/points"
hreq 200 "--server-name, another case" -H "Host: bootback.lab.example:$port" \
    -H "Authorization: Bearer $token" "$url/api/v1/points"
hreq 200 "the address still" -H "Authorization: Bearer $token" "$url/api/v1/points"
hreq 421 "a name not given" -H "Host: attacker.example:$port" \
    -H "Authorization: Bearer $token" "$url/api/v1/points"
hreq 421 "a name given, another port" -H "Host: console.example:1" \
    -H "Authorization: Bearer $token" "$url/api/v1/points"
hreq 421 "a name given, no port" -H "Host: console.example" \
    -H "Authorization: Bearer $token" "$url/api/v1/points"
hreq 400 "a POST from the named origin" -H "Host: console.example:$port" \
    -H "Origin: http://console.example:$port" -H "Authorization: Bearer $token" \
    -H "Content-Type: application/json" -d '{"action":"nosuch"}' "$url/api/v1/jobs"
kill "$web_pid"
wait "$web_pid" || true
for bad in "a b" "console.example:8443" "" "-x" "a..b" "[::1"; do
    expect_fail bootback web --listen 127.0.0.1:0 --server-name "$bad" 2>"$tmp/err"
    grep -q -- "--server-name" "$tmp/err" || fail "--server-name '$bad': $(cat "$tmp/err")"
done

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
tls_post=(--cacert "$tmp/cert.pem" -H "Authorization: Bearer $token"
          -H "Content-Type: application/json" -d '{"action":"nosuch"}'
          "https://127.0.0.1:$port/api/v1/jobs")
hreq 400 "HTTPS: a POST from its own origin" -H "Origin: https://127.0.0.1:$port" "${tls_post[@]}"
hreq 403 "HTTPS: a POST from the http:// origin" -H "Origin: http://127.0.0.1:$port" "${tls_post[@]}"
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
