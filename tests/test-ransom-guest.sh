#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The ransomware score on backups of a running tiny VM (private libvirtd,
# TCG).  The tiny guest has no openssl (busybox only), so "encryption" is
# what it looks like to the repository: random bytes written over
# existing files in place (dd from /dev/urandom, conv=notrunc).
#   1. the guest writes 16 MiB of text files; full backup;
#   2. log growth (256 KiB of text appended); incremental: not flagged;
#   3. the files overwritten with random bytes; incremental with
#      --on-suspicious: flagged with the reason, the hook sees the point;
#      `points` and `backup --json` say so.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/backup.sh"
requires virsh qemu-img python3

backup_test_start rsg
virsh -q define "$tmp/vm.xml" >/dev/null
virsh -q start "$dom" >/dev/null
"$qga" --domain "$dom" --timeout 120 ping >/dev/null || { cat "$tmp/vm.serial"; fail "no agent"; }
# (writing 16 MiB of text under TCG on a loaded host can take over 30 s)
guest () { "$qga" --domain "$dom" --timeout 180 exec /bin/sh -c "$1" || fail "guest: $1"; }

bootback repo init "$tmp/repo" >/dev/null
guest 'mkdir -p /root/docs && for i in 1 2 3 4 5 6 7 8; do
         awk -v i=$i "BEGIN { for (n = 1; n <= 36000; n++)
           printf \"document %d line %d: quarterly figures, revenue and notes\\n\", i, n }" >/root/docs/f$i || exit 1
       done; sync'
kib=$(guest 'du -sk /root/docs' | cut -f1)
echo "/root/docs: $kib KiB"
[ "$kib" -ge 16000 ] || fail "the guest wrote only $kib KiB of files"
bootback backup "$dom" >"$tmp/b1.out" 2>"$tmp/b1.err" || { cat "$tmp/b1.err"; fail "full backup"; }

guest 'awk "BEGIN { for (n = 1; n <= 7000; n++) printf \"%d app: INFO request served in 12 ms\\n\", n }" >>/root/app.log && sync'
bootback backup "$dom" >"$tmp/b2.out" 2>"$tmp/b2.err" || { cat "$tmp/b2.err"; fail "backup 2"; }
cat "$tmp/b2.err"
grep -q "suspicious" "$tmp/b2.err" && fail "log growth flagged: $(cat "$tmp/b2.err")"

guest 'for f in /root/docs/f*; do
         dd if=/dev/urandom of=$f bs=4096 count=$(( $(wc -c <$f) / 4096 + 1 )) conv=notrunc 2>/dev/null || exit 1
       done && sync'
cat >"$tmp/hook" <<HOOK
#!/bin/sh
echo "\$BOOTBACK_POINT|\$BOOTBACK_REASON" >"$tmp/hook.out"
HOOK
chmod +x "$tmp/hook"
bootback backup "$dom" --json --on-suspicious "$tmp/hook" >"$tmp/b3.json" 2>"$tmp/b3.err" ||
    { cat "$tmp/b3.err"; fail "backup 3"; }
cat "$tmp/b3.err"
p3=$dom@$(latest_id "$dom")
grep -q "warning: $p3 is suspicious (score [0-9.]*): [0-9.]*% of the previous point's data replaced by incompressible data; [0-9]*% of new data incompressible" "$tmp/b3.err" ||
    fail "encryption in the guest not flagged"
grep -q "^$p3|.*of the previous point's data rewritten" "$tmp/hook.out" || fail "hook: $(cat "$tmp/hook.out" 2>&1)"
python3 - "$tmp/b3.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))[0]
assert b["kind"] == "incremental" and b["score"]["suspicious"], b
print("score", b["score"]["score"], b["score"]["stats"])
PY
bootback points "$dom" >"$tmp/points"
cat "$tmp/points"
[ "$(grep -c suspicious "$tmp/points")" = 1 ] || fail "points: one suspicious point expected"
grep -q "^$p3 .*suspicious\$" "$tmp/points" || fail "points does not mark $p3"

# A verification of the flagged point says so: whatever its verdict (this
# VM has no NIC, so it fails at start, which is enough here), the report
# (table, report.json, report.html) marks the point suspicious with the
# reason, so that a verdict is never read as "it is clean".
# (bootback is a private copy in $tmp: it is told where the plugin is)
rc=0
BOOTBACK_NBDKIT_PLUGIN=$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so \
    bootback verify "$p3" --report-dir "$tmp/rep" >"$tmp/v.out" 2>&1 || rc=$?
cat "$tmp/v.out"
[ "$rc" = 2 ] || fail "verify $p3: exit $rc, expected 2 (no network interface)"
grep -q "^      suspicious point: .*of the previous point's data rewritten" "$tmp/v.out" ||
    fail "verify: no suspicious line"
python3 - "$tmp/rep/report.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))["vms"][0]
assert "incompressible" in v["suspicious"], v
PY
grep -q "Suspicious restore point (ransomware score at backup time): " "$tmp/rep/report.html" ||
    fail "report.html: no suspicious mark"
