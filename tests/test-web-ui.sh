#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback web's dashboard in Debian's headless Chromium (tests/browser/ui.js,
# puppeteer-core) against a server on 127.0.0.1 and a catalog made here:
# four imported points of two VMs, lab runs (passed and failed) with
# screenshots and reports under $BOOTBACK_HOME/reports, a lab VM whose
# name and source hold <script> and <img onerror>, a running session, a
# sandbox with a lease.  Checked: no page or data without login (/ is a
# redirect to /login, the rest 401), a wrong token refused, login sets an
# HttpOnly SameSite=Strict cookie, the dashboard shows the VMs, verdicts,
# a screenshot thumbnail, charts, points, the session, the sandbox's lease
# and a report link; guest text renders as text (no dialog, no element
# made); "Verify now" on the tiny image's point runs a real verify job to
# its end and the VM's row shows the new verdict; Stop sends the CSRF
# token and reaches the jobs API; a POST without it is 403; no CSP
# violation; a token of role read gets every action button disabled;
# logout ends the session; a revoked token ends its sessions;
# over HTTPS the cookie is Secure.  Then, with 10,000 more points, the
# page's load and page-flip times against the small catalog's (figures in
# tests/tmp/web-ui/figures.txt).  Screenshots: tests/tmp/web-ui/.  Stop
# reaches the real jobs API: the page shows the job's state from it.
source "$top_srcdir/tests/functions.sh"
requires curl
requires sqlite3
requires python3
requires openssl
requires node
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || skip "chromium is not installed"
[ -d "$top_srcdir/tests/browser/node_modules/puppeteer-core" ] ||
    skip "tests/browser/node_modules is missing (make deps)"

# The jobs the page starts talk to a private libvirtd (TCG): "Verify now"
# boots a real restore point of the tiny image; Stop meets a session the
# catalog made up, on a libvirt socket nobody serves (it stays running).
source "$top_srcdir/tests/lib/images.sh"
source "$top_srcdir/tests/lib/libvirtd.sh"
images_tiny
libvirtd_start
export BOOTBACK_DOMAIN_TYPE=qemu
shots="$top_srcdir/tests/tmp/web-ui"
rm -rf "$shots"
mkdir -p "$shots"
repo="$tmp/repo"
bootback repo init "$repo" >/dev/null
make_disk "$tmp/a.raw" 3000000
make_disk "$tmp/b.raw" 2000000
bootback import "$tmp/a.raw" --vm web --time 20261101T010000Z >/dev/null
bootback import "$tmp/b.raw" --vm web --time 20261102T010000Z >/dev/null
bootback import "$tmp/b.raw" --vm db --time 20261103T010000Z >/dev/null
bootback import "$tmp/a.raw" --vm db --time 20261104T010000Z >/dev/null
tiny_copy tiny "$tmp/tiny.img"
"$top_srcdir/images/domain-xml" NAME=tiny DISK_PATH="$tmp/tiny.img" NET_TYPE=bridge \
    NET_SOURCE=prodbr0 MAC=52:54:00:b0:07:99 > "$tmp/tiny.xml"
bootback import "$tmp/tiny.img" --vm tiny --domain-xml "$tmp/tiny.xml" \
    --time 20261105T010000Z >/dev/null

# Lab runs: web passed then failed, db passed, a lab VM named by a guest.
reports="$BOOTBACK_HOME/reports"
for r in r1 r2 r3; do
    mkdir -p "$reports/$r"
    echo "<!doctype html><title>lab report $r</title><p>lab report $r</p>" > "$reports/$r/report.html"
done
python3 - "$reports" <<'PY'
import struct, sys, zlib
def png(path, w, h, rgb):
    raw = b"".join(b"\0" + bytes(rgb) * w for _ in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
png(sys.argv[1] + "/r1/web.png", 320, 200, (40, 90, 160))
png(sys.argv[1] + "/r2/web.png", 320, 200, (160, 40, 40))
png(sys.argv[1] + "/r3/db.png", 320, 200, (40, 140, 70))
PY
now=$(date +%s)
sqlite3 "$BOOTBACK_HOME/catalog.db" <<SQL
INSERT INTO lab_runs (id, run, lab, kind, started, seconds, status, report_dir, message)
  VALUES (1, 'r1', 'nightly', 'verify', $((now - 3 * 86400)), 20, 'passed', '$reports/r1', ''),
         (2, 'r2', 'nightly', 'verify', $((now - 2 * 86400)), 30, 'failed', '$reports/r2', ''),
         (3, 'r3', 'nightly', 'verify', $((now - 1 * 86400)), 25, 'passed', '$reports/r3', ''),
         (4, 'r4', 'nightly', 'verify', $((now - 3600)), 25, 'passed', '$reports/r3', '');
INSERT INTO lab_vms (run_id, vm, source, status, t_boot, t_heartbeat, t_app_ready, message)
  VALUES (1, 'web', 'web@20261101T010000Z', 'pass', 2.5, 4, 7.25, ''),
         (2, 'web', 'web@20261102T010000Z', 'fail', 3.5, 5, NULL, '<img src=x onerror=alert(3)>'),
         (3, 'db', 'db@20261103T010000Z', 'pass', 3, 6, 9.5, ''),
         (4, '<script>alert(1)</script><img src=x onerror=alert(2)>',
          '<script>alert(1)</script><img src=x onerror=alert(2)>@20261101T010000Z', 'pass', 1, 2, 3, '');
INSERT INTO sessions (name, vm, point, repo, uri, state, created, updated)
  VALUES ('rescue', 'web', '20261102T010000Z', '$repo',
          'qemu:///system?socket=$tmp/no-libvirtd.sock', 'running', $now, $now);
SQL
mkdir -p "$BOOTBACK_HOME/labs/5a7e0b1"
cat > "$BOOTBACK_HOME/labs/5a7e0b1/state.json" <<JSON
{"lab": "dev", "kind": "sandbox", "status": "up", "created": $now,
 "expires": $((now + 7200)), "owner": "alice", "vms": ["web"]}
JSON

token=$(bootback web token add ui 2>/dev/null)
"$BOOTBACK" web --listen 127.0.0.1:0 2>"$tmp/web.log" &
web_pid=$!
cleanup_fn "kill $web_pid 2>/dev/null || true"
wait_log "$tmp/web.log" "listening on" "$web_pid" || true
port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/web.log")
[ -n "$port" ] || fail "bootback web did not start: $(cat "$tmp/web.log")"
url="http://127.0.0.1:$port"

# Without a browser: no page without login, files only where the catalog says
code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$url/")
[ "$code" = "303 $url/login" ] || fail "GET / without a session: $code"
for p in /ui/overview "/ui/shot?vm=web&run=r1" /session; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$url$p")
    [ "$code" = 401 ] || fail "GET $p without a session: $code"
done
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/login")
[ "$code" = 200 ] || fail "the login page: $code"
auth=(-H "Authorization: Bearer $token")
for p in "vm=web&run=r3" "vm=../../etc&run=r1" "vm=web&run=../r1" "vm=db&run=r1"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$url/ui/shot?$p")
    case $code in 400|404) ;; *) fail "/ui/shot?$p: $code" ;; esac
done
code=$(curl -s -o "$tmp/shot.png" -w '%{http_code} %{content_type}' "${auth[@]}" "$url/ui/shot?vm=web&run=r1")
[ "$code" = "200 image/png" ] || fail "the screenshot of web in r1: $code"
cmp -s "$tmp/shot.png" "$reports/r1/web.png" || fail "the screenshot served is not the file"
# a run whose report directory is outside the state directory: refused
mkdir -p "$tmp/outside"
cp "$reports/r1/web.png" "$tmp/outside/web.png"
sqlite3 "$BOOTBACK_HOME/catalog.db" "UPDATE lab_runs SET report_dir = '$tmp/outside' WHERE run = 'r1'"
code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$url/ui/shot?vm=web&run=r1")
[ "$code" = 404 ] || fail "a screenshot outside the state directory: $code"
ln -s "$tmp/outside/web.png" "$reports/r2/db.png"
sqlite3 "$BOOTBACK_HOME/catalog.db" "UPDATE lab_runs SET report_dir = '$reports/r1' WHERE run = 'r1';
  INSERT INTO lab_vms (run_id, vm, source, status) VALUES (2, 'db', 'db@20261103T010000Z', 'fail')"
code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$url/ui/shot?vm=db&run=r2")
[ "$code" = 404 ] || fail "a screenshot that is a symbolic link: $code"
sqlite3 "$BOOTBACK_HOME/catalog.db" "DELETE FROM lab_vms WHERE run_id = 2 AND vm = 'db'"
# the overview: VMs with their last point and verdict, usage over time
curl -s -o "$tmp/overview.json" "${auth[@]}" "$url/ui/overview"
python3 - "$tmp/overview.json" <<'PY' || fail "/ui/overview (above)"
import json, sys
o = json.load(open(sys.argv[1]))
vms = {v["vm"]: v for v in o["vms"]}
assert vms["web"]["points"] == 2 and vms["web"]["last_point"]["id"] == "20261102T010000Z", vms["web"]
w = vms["web"]["verification"]
assert w["status"] == "fail" and w["run"] == "r2" and w["screenshot"] and w["report"], w
assert w["message"] == "<img src=x onerror=alert(3)>", w
d = vms["db"]["verification"]
assert d["status"] == "pass" and d["run"] == "r3" and d["report"] and d["screenshot"], d
evil = vms["<script>alert(1)</script><img src=x onerror=alert(2)>"]
assert evil["points"] == 0 and evil["verification"]["run"] is None, evil
u = o["usage"]
assert len(u) == 5 and [s[0] for s in u] == sorted(s[0] for s in u), u
assert u[3][1] == 3000000 + 2000000 + 2000000 + 3000000, u
assert u[-1][3] == u[-1][1] / u[-1][2], u
PY

# login: only a bearer token, no body; logout without the CSRF header is 403
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/login")
[ "$code" = 401 ] || fail "POST /login without a token: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "${auth[@]}" --data-binary x=1 "$url/login")
[ "$code" = 413 ] || fail "POST /login with a body: $code"
curl -s -o /dev/null -D "$tmp/hdr" -X POST "${auth[@]}" "$url/login"
grep -qi '^Set-Cookie: bootback_session=[0-9a-f]\{64\}; Path=/; Max-Age=[0-9]*; HttpOnly; SameSite=Strict' "$tmp/hdr" ||
    fail "the session cookie: $(grep -i set-cookie "$tmp/hdr")"
cookie=$(sed -n 's/^Set-Cookie: \(bootback_session=[0-9a-f]*\);.*/\1/pi' "$tmp/hdr")
curl -s -o "$tmp/body" -D "$tmp/hdr" -H "Cookie: $cookie" "$url/"
grep -qi "^Content-Security-Policy: default-src 'none'; script-src 'self';" "$tmp/hdr" || fail "the page's CSP"
if grep -qi "unsafe-inline\|unsafe-eval" "$tmp/hdr"; then fail "the page's CSP allows inline code"; fi
if grep -q "<script>[^<]" "$tmp/body"; then fail "inline script in the page"; fi
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Cookie: $cookie" "$url/logout")
[ "$code" = 403 ] || fail "logout without X-CSRF-Token: $code"

# The browser
node "$top_srcdir/tests/browser/ui.js" check "$url" "$token" "$shots" > "$tmp/check.json" ||
    fail "the browser check failed (above)"
cat "$tmp/check.json"
python3 -c '
import json, sys
stop = json.load(open(sys.argv[1]))["stop"]
assert stop.startswith("stop "), "the Stop button did not start a job: " + stop' "$tmp/check.json" ||
    fail "Stop (above)"
grep -q "POST /api/v1/jobs 202" "$tmp/web.log" || fail "no job started by the page"
python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))["verify"]
assert v["job"].startswith("verify done"), "Verify now: the job did not pass: %s" % v
assert v["verdict"].startswith("passed"), "Verify now: the overview does not show it: %s" % v' \
    "$tmp/check.json" || fail "Verify now (above)"
if grep -q "$token\|${cookie#*=}" "$tmp/web.log"; then fail "a secret is in the log"; fi
grep -q "POST /api/v1/jobs 403" "$tmp/web.log" || fail "no refused POST in the log"
# a token of role read: the same dashboard, no button that starts a job
reader=$(bootback web token add watcher --role read 2>/dev/null)
node "$top_srcdir/tests/browser/ui.js" read "$url" "$reader" "$shots" > "$tmp/read.json" ||
    fail "the browser check of a read token failed (above)"
cat "$tmp/read.json"

# A revoked token ends its sessions
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$url/ui/overview")
[ "$code" = 200 ] || fail "the curl session: $code"
bootback web token revoke ui
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$url/ui/overview")
[ "$code" = 401 ] || fail "a session of a revoked token: $code"
token=$(bootback web token add ui2 2>/dev/null)

# Fast with 10,000 points: load and page flips against the small catalog's
node "$top_srcdir/tests/browser/ui.js" perf "$url" "$token" "$shots" > "$tmp/small.json" ||
    fail "the browser timing (small) failed (above)"
sqlite3 "$BOOTBACK_HOME/catalog.db" <<'SQL'
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
INSERT INTO points (repo_id, vm, point, time, kind, consistency, source, chunk_size,
                    has_domain_xml, stored_bytes)
SELECT 1, 'vm' || (i % 50), strftime('%Y%m%dT%H%M%SZ', 1700000000 + i * 600, 'unixepoch'),
       1700000000 + i * 600, 'full', 'crash', 'import', 1048576, 0, 1000000 + i * 100 FROM n;
INSERT INTO disks (point_id, seq, name, size, index_sha256, format, zero_chunks)
SELECT id, 0, 'vda', 4294967296, '00', 'raw', 0 FROM points WHERE vm LIKE 'vm%';
SQL
node "$top_srcdir/tests/browser/ui.js" perf "$url" "$token" "$shots" > "$tmp/big.json" ||
    fail "the browser timing (10,000 points) failed (above)"
python3 - "$tmp/small.json" "$tmp/big.json" "$shots/figures.txt" <<'PY' || fail "too slow (above)"
import json, sys
s, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert b["range"].endswith("of 10005"), b
lines = ["dashboard in headless Chromium, 1366x768: 5 points vs 10,005 points",
         "%-22s %10s %10s %7s" % ("", "5 points", "10,005", "ratio")]
for k in ("load_median_ms", "load_max_ms", "flip_median_ms", "flip_p95_ms", "last_page_ms"):
    ratio = "%.2f" % (b[k] / s[k]) if s[k] else "-"   # 4 points: no last page
    lines.append("%-22s %10d %10d %7s" % (k, s[k], b[k], ratio))
open(sys.argv[3], "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
# The page stays fast: a page flip is one small request, whatever the total;
# the load fetches no more points than one page.
assert b["flip_median_ms"] <= 300, "page flip median %d ms > 300" % b["flip_median_ms"]
assert b["load_median_ms"] <= 3000, "load median %d ms > 3000" % b["load_median_ms"]
assert b["flip_median_ms"] <= 3 * max(s["flip_median_ms"], 50), "page flips 3x slower with 10,000 points"
PY
kill "$web_pid"
wait "$web_pid" || fail "bootback web did not stop cleanly"

# Over HTTPS the cookie is also Secure
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
"$BOOTBACK" web --listen 127.0.0.1:0 --cert "$tmp/cert.pem" --key "$tmp/key.pem" 2>"$tmp/tls.log" &
web_pid=$!
cleanup_fn "kill $web_pid 2>/dev/null || true"
wait_log "$tmp/tls.log" "listening on" "$web_pid" || true
port=$(sed -n 's/.*listening on https:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/tls.log")
[ -n "$port" ] || fail "bootback web (HTTPS) did not start: $(cat "$tmp/tls.log")"
curl -s -o /dev/null -D "$tmp/hdr" --cacert "$tmp/cert.pem" -X POST \
     -H "Authorization: Bearer $token" "https://127.0.0.1:$port/login"
grep -qi '^Set-Cookie: bootback_session=.*; HttpOnly; SameSite=Strict; Secure' "$tmp/hdr" ||
    fail "the cookie over HTTPS: $(grep -i set-cookie "$tmp/hdr")"
kill "$web_pid"
wait "$web_pid" || fail "bootback web (HTTPS) did not stop cleanly"
echo "web ui ok"
