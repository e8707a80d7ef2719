#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A lab of the four tiny images (booted two at a time from throwaway
# overlays, on the isolated lab network): the healthy one passes every
# check kind (heartbeat, ping, tcp, http with expect and contains, a
# script run inside the lab namespace, guest-exec, screenshot); each
# negative variant fails with the right check named (noinit: heartbeat,
# found at once through the kernel panic on its console; noweb: http;
# corrupt: http, 503 naming the corrupt file).  Exit status 2.  The
# reports are valid and 0700/0600 (JSON parses, JUnit validates against
# verify/junit.xsd, the HTML renders in headless Chromium and shows every
# VM), the run and its timings are in the catalog (bootback history), and
# nothing of the lab is left.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start xmllint curl
lab_image good tiny 10.77.0.21
lab_image noinit noinit 10.77.0.22
lab_image noweb noweb 10.77.0.23
lab_image corrupt corrupt 10.77.0.24

# A script check: must run inside the lab namespace, with the VM's address.
cat >"$tmp/check-web.sh" <<'EOS'
#!/bin/sh
[ "$(ip netns identify $$)" = "$BOOTBACK_LAB_NETNS" ] || { echo "not in the lab namespace"; exit 3; }
body=$(curl -s --noproxy '*' --max-time 3 "http://$BOOTBACK_VM_ADDRESS/") || { echo "no answer"; exit 4; }
echo "$BOOTBACK_VM at $BOOTBACK_VM_ADDRESS says: $body"
EOS
chmod +x "$tmp/check-web.sh"

cat >"$tmp/lab.yaml" <<EOF2
name: tiny-four
network:
  subnet: 10.77.0.0/24
  gateway: 10.77.0.1
defaults:
  boot-timeout: 90s
  timeout: 5s
  retries: 3
  interval: 2s
verify:
  - name: good
    image: $tmp/good.img
    address: 10.77.0.21
    checks:
      - heartbeat
      - ping
      - tcp 7
      - http http://{address}/health expect 200 contains '"status":"ok"'
      - script $tmp/check-web.sh
      - guest-exec test -s /srv/bootback/data.bin
      - screenshot
  - name: noinit
    image: $tmp/noinit.img
    address: 10.77.0.22
    checks: [heartbeat, ping, "tcp 7", screenshot]
  - name: noweb
    image: $tmp/noweb.img
    address: 10.77.0.23
    checks:
      - heartbeat
      - tcp 7
      - { http: "http://{address}/health", retries: 1 }
  - name: corrupt
    image: $tmp/corrupt.img
    address: 10.77.0.24
    checks:
      - heartbeat
      - http http://{address}/health expect 200 contains ok
EOF2
bootback lab validate "$tmp/lab.yaml"

t0=$(date +%s.%N)
rc=0
bootback lab run "$tmp/lab.yaml" --report-dir "$tmp/report" --parallel 2 >"$tmp/out" || rc=$?
echo "lab run: exit $rc in $(echo "$(date +%s.%N) - $t0" | bc) s"
cat "$tmp/out"
[ $rc -eq 2 ] || fail "lab run: expected exit 2 (some checks failed), got $rc"

# Each VM's verdict and the failed checks by name.
python3 - "$tmp/report/report.json" <<'EOP'
import json, sys
r = json.load(open(sys.argv[1]))
vms = {v["name"]: v for v in r["vms"]}
def checks(vm, status):
    return [c["kind"] for c in vms[vm]["checks"] if c["status"] == status]
def fail(msg):
    print("FAIL:", msg); print(json.dumps(r, indent=1)); sys.exit(1)
if r["status"] != "failed": fail("run status %s" % r["status"])
g = vms["good"]
if g["status"] != "pass" or checks("good", "fail") or checks("good", "skip"):
    fail("good did not pass every check")
want = {"heartbeat", "ping", "tcp", "http", "script", "guest-exec", "screenshot"}
if set(checks("good", "pass")) != want: fail("good: checks passed %s" % checks("good", "pass"))
t = g["timings"]
if not (t["boot"] and t["heartbeat"] and t["app_ready"]) or not t["boot"] <= t["heartbeat"] <= t["app_ready"]:
    fail("good: timings %s" % t)
shot = [c for c in g["checks"] if c["kind"] == "screenshot"][0]
if shot.get("screenshot") != "good.png": fail("no screenshot file")
script = [c for c in g["checks"] if c["kind"] == "script"][0]
if "good at 10.77.0.21 says:" not in script.get("output", ""): fail("script output %r" % script.get("output"))
if checks("noinit", "fail") != ["heartbeat"]: fail("noinit: failed %s" % checks("noinit", "fail"))
if "Kernel panic" not in vms["noinit"]["message"]: fail("noinit: %s" % vms["noinit"]["message"])
if checks("noinit", "pass") != ["screenshot"]: fail("noinit: screenshot not taken")
if set(checks("noinit", "skip")) != {"ping", "tcp"}: fail("noinit: skipped %s" % checks("noinit", "skip"))
if checks("noweb", "fail") != ["http"] or set(checks("noweb", "pass")) != {"heartbeat", "tcp"}:
    fail("noweb: failed %s" % checks("noweb", "fail"))
if checks("corrupt", "fail") != ["http"]: fail("corrupt: failed %s" % checks("corrupt", "fail"))
msg = [c for c in vms["corrupt"]["checks"] if c["kind"] == "http"][0]["message"]
if "HTTP 503" not in msg or "/srv/bootback/data.bin" not in msg: fail("corrupt: %s" % msg)
for v in ("noinit", "noweb", "corrupt"):
    if vms[v]["status"] != "fail": fail(v + " did not fail")
print("verdicts ok; good: boot %.1f s, heartbeat %.1f s, app ready %.1f s" %
      (t["boot"], t["heartbeat"], t["app_ready"]))
EOP
grep -q "failed: heartbeat" "$tmp/out" || fail "the summary does not name the failed heartbeat"

# Reports.
lab_report_check "$tmp/report"
[ "$(head -c 8 "$tmp/report/good.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "good.png is not a PNG"
# the report and its screenshots are the owner's alone (0700, 0600)
bad=$(find "$tmp/report" -perm /077 -printf '%m %p\n')
[ -z "$bad" ] || fail "report files readable by others:"$'\n'"$bad"
lab_chromium "$tmp/report/report.html" "$tmp/page.png" >"$tmp/dom.html"
for vm in good noinit noweb corrupt; do
    grep -q ">$vm<" "$tmp/dom.html" || fail "the rendered page does not show $vm"
done
grep -q 'id="status">failed<' "$tmp/dom.html" || fail "the rendered page does not say failed"
python3 - "$tmp/page.png" <<'EOP'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w = 8, b"", 0
while pos < len(data):
    n, t = struct.unpack(">I4s", data[pos:pos + 8])
    if t == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", data[pos + 8:pos + 18])
    if t == b"IDAT":
        idat += data[pos + 8:pos + 8 + n]
    pos += 12 + n
raw = zlib.decompress(idat)
bpp = 4 if ctype == 6 else 3
stride = w * bpp + 1
# Unfilter the first rows (the red header of a failed run) and count colours.
prev = bytearray(w * bpp); colours = set(); reds = 0
for y in range(min(h, 400)):
    f = raw[y * stride]; line = bytearray(raw[y * stride + 1:(y + 1) * stride])
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, w, 7):
        px = tuple(line[x * bpp:x * bpp + 3]); colours.add(px)
        if y < 60 and px[0] > 150 and px[1] < 80 and px[2] < 80: reds += 1
    prev = line
assert len(colours) > 20, "the page looks blank (%d colours)" % len(colours)
assert reds > 50, "no red header for a failed run"
print("rendered page: %dx%d, %d colours, red header" % (w, h, len(colours)))
EOP

# The catalog has the run, its VMs' timings and failed checks.
bootback history good --json >"$tmp/hist.json"
python3 - "$tmp/hist.json" <<'EOP'
import json, sys
h = json.load(open(sys.argv[1]))
assert len(h) == 1 and h[0]["status"] == "pass" and h[0]["t_app_ready"] > 0, h
EOP
bootback history corrupt | tee "$tmp/hist.txt"
grep -q "http http://{address}/health" "$tmp/hist.txt" || fail "history does not name the failed check"
sqlite3 "$BOOTBACK_HOME/catalog.db" "SELECT count(*) FROM check_results" | grep -qx 16 ||
    fail "check_results should have 16 rows"

id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"])' "$tmp/report/report.json")
lab_assert_gone "$id"
[ -z "$(lab_ids)" ] || fail "lab list is not empty"
echo ok
