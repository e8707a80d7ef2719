#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A lab of broken disks fails each one with the reason, read from its
# console, instead of running out the boot timeout (issue 15, item 1):
#   nombr     "the disk has no boot sector" (SeaBIOS, on the serial console through
#             <bios useserial='yes'/>)
#   badboot   "missing operating system" (the MBR code)
#   badroot   the initramfs emergency shell
#   poweroff  the VM stopped while booting
#   hang      a boot sector that loops (jmp $): no console output and no
#             disk reads for its stall-timeout (10 s)
#   bluescreen  a Windows-like stop screen on the display alone, then
#             silence: read from the screen by OCR (the serial console has
#             nothing; without OCR this waited for its 1 m stall-timeout)
#   custom    a healthy tiny whose console shows a line the lab definition
#             names in boot_failures: (its own reason; the first line its
#             root system writes, well before its agent answers)
# The boot timeout is 10 minutes: a verdict that waited for it would not
# name these reasons.  Nothing of the lab is left.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start
for v in nombr badboot badroot poweroff bluescreen; do tiny_copy "$v" "$tmp/$v.img"; done
lab_image custom tiny 10.77.0.25
truncate -s 64M "$tmp/hang.img"
printf '\xeb\xfe' | dd of="$tmp/hang.img" conv=notrunc status=none
printf '\x55\xaa' | dd of="$tmp/hang.img" bs=1 seek=510 conv=notrunc status=none

cat >"$tmp/lab.yaml" <<EOF2
name: broken-disks
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
defaults: { boot-timeout: 10m }
boot_failures:
  - { text: "bootback: starting (tiny", reason: "this image must not boot here" }
verify:
  - { name: nombr, image: $tmp/nombr.img, checks: [heartbeat] }
  - { name: badboot, image: $tmp/badboot.img, checks: [heartbeat] }
  - { name: badroot, image: $tmp/badroot.img, checks: [heartbeat] }
  - { name: poweroff, image: $tmp/poweroff.img, checks: [heartbeat] }
  - { name: bluescreen, image: $tmp/bluescreen.img, checks: [heartbeat] }
  - { name: hang, image: $tmp/hang.img, stall-timeout: 10s, checks: [heartbeat] }
  - { name: custom, image: $tmp/custom.img, address: 10.77.0.25, checks: [heartbeat] }
EOF2
bootback lab validate "$tmp/lab.yaml"

rc=0
bootback lab run "$tmp/lab.yaml" --report-dir "$tmp/report" --parallel 3 >"$tmp/out" || rc=$?
cat "$tmp/out"
[ $rc -eq 2 ] || fail "lab run: expected exit 2 (the VMs failed), got $rc"

python3 - "$tmp/report/report.json" <<'EOP'
import json, sys
r = json.load(open(sys.argv[1]))
vms = {v["name"]: v for v in r["vms"]}
want = {
    "nombr": ["did not boot: the disk has no boot sector", "Boot failed: not a bootable disk"],
    "badboot": ["did not boot: the boot partition has no boot loader",
                "Missing operating system."],
    "badroot": ["did not boot: the root file system was not mounted (initramfs"],
    "poweroff": ["the VM stopped while booting"],
    "hang": ["did not boot: stalled: no console output and no disk reads for 1"],
    "bluescreen": ["did not boot: Windows stopped with a stop code (blue screen) (screen: ",
                   "CRITICAL_PROCESS_DIED"],
    "custom": ["did not boot: this image must not boot here",
               "bootback: starting (tiny"],
}
bad = []
for name, parts in want.items():
    v = vms[name]
    msg = v.get("message") or ""
    if v["status"] != "fail" or not all(p in msg for p in parts):
        bad.append("%s: %s %r" % (name, v["status"], msg))
    hb = [c for c in v["checks"] if c["kind"] == "heartbeat"][0]
    if hb["status"] != "fail":
        bad.append("%s: heartbeat %s" % (name, hb["status"]))
if bad:
    print("FAIL:", "\n".join(bad)); print(json.dumps(r, indent=1)); sys.exit(1)
for name in want:
    print("%s: %s" % (name, vms[name]["message"]))
EOP
[ -z "$(lab_ids)" ] || fail "a lab is left: $(lab_ids)"
echo ok
