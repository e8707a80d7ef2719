#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Slow suite (make check-slow): a lab of the debian image (systemd, nginx,
# PostgreSQL, sshd, qemu-guest-agent), imported as a restore point and
# booted through instant recovery in the isolated lab: the application
# checks see nginx answer /health with the database behind it (1000 rows),
# sshd greet, PostgreSQL answer a query run by the guest agent; the report
# has the console screenshot; nothing is left.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/images.sh"
source "$top_srcdir/tests/lib/libvirtd.sh"
source "$top_srcdir/lab/lab-test-lib.sh"
requires python3 qemu-img iptables ip nbdkit debootstrap

images_debian
libvirtd_start
cp --sparse=always "$DEBIAN_IMG" "$tmp/app1.img"
"$top_srcdir/images/guest-config" "$tmp/app1.img" ADDRESS=10.77.0.61 IDENTITY=app1 >/dev/null
"$top_srcdir/images/domain-xml" --template "$top_srcdir/images/debian.xml.in" \
    NAME=app1 DISK_PATH="$tmp/app1.img" NET_SOURCE=prod0 MAC=52:54:00:b0:07:61 >"$tmp/app1.xml"
bootback repo init "$tmp/repo" >/dev/null
t0=$(date +%s)
bootback import "$tmp/app1.img" --vm app1 --domain-xml "$tmp/app1.xml"
echo "import of the debian image: $(( $(date +%s) - t0 )) s"
rm -f "$tmp/app1.img"        # the lab boots the restore point, not this file

cat >"$tmp/app.yaml" <<EOF2
name: debian-app
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
defaults: { boot-timeout: 300s, timeout: 10s, retries: 30, interval: 2s }
verify:
  - name: app1
    address: 10.77.0.61
    memory: 1G
    checks:
      - heartbeat
      - ping
      - tcp 22
      - tcp 80
      - http http://{address}/health expect 200 contains '"db_rows":1000'
      - guest-exec runuser -u postgres -- psql -X -tAd bootback -c 'SELECT count(*) FROM items' | grep -qx 1000
      - guest-exec systemctl is-active nginx postgresql
      - screenshot
EOF2
rc=0
bootback lab run "$tmp/app.yaml" --report-dir "$tmp/report" >"$tmp/out" || rc=$?
cat "$tmp/out"
[ $rc -eq 0 ] || fail "the debian lab did not pass (exit $rc)"
lab_report_check "$tmp/report"
python3 - "$tmp/report/report.json" <<'EOP'
import json, sys
r = json.load(open(sys.argv[1])); v = r["vms"][0]
assert v["status"] == "pass" and len(v["checks"]) == 8, v
assert [c for c in v["checks"] if c["kind"] == "screenshot"][0]["screenshot"] == "app1.png"
t = v["timings"]
print("debian through instant recovery: start %.1f s, boot %.1f s, heartbeat %.1f s, app ready %.1f s"
      % (t["start"], t["boot"], t["heartbeat"], t["app_ready"]))
EOP
lab_assert_gone "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"])' "$tmp/report/report.json")"
echo ok
