#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback scan on the tiny image (FAT boot + ext4 root) with files the
# test plants without a kernel mount (debugfs -w): EICAR by a custom .hdb
# (md5:size:name), a custom .ndb and a YARA rule are reported with path,
# rule, disk and partition (exit 2); the clean image exits 0; a guest's
# absolute symlinks to a host file and to /etc/passwd are never followed
# (rules matching the host files report nothing); a hard link is scanned
# once; a directory loop and a too-deep tree are capped and noted; the
# child runs as nobody with no_new_privs; a dirty journal is read
# without replay and said; a garbage disk and a corrupt rule file exit 1
# with one line naming them; the result is in the catalog (point show,
# points --json); instant --require-clean refuses what is not clean; a
# scan over its wall-clock limit is killed and never clean, keeps what it
# found before, and leaves no scratch directory in /tmp.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/images.sh"
requires nbdkit debugfs md5sum python3
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"
getent passwd nobody >/dev/null || skip "no user nobody"
images_tiny

bootback repo init --chunk-size 64K "$tmp/repo" >/dev/null
tiny_copy tiny "$tmp/clean.img"
root="$tmp/clean.img?offset=$((67584 * 512))"
[ "$(sfdisk -d "$tmp/clean.img" | grep -c 'start= *67584')" = 1 ] ||
    fail "the tiny image's root partition moved: fix the offset here"

# Signatures and rules of the test (no internet, no freshclam).
sig=$tmp/sig; mkdir -p "$sig"
printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$tmp/eicar.com"
echo "$(md5sum <"$tmp/eicar.com" | cut -d' ' -f1):68:Test.Eicar.HDB" >"$sig/test.hdb"
ndb_hex=$(printf 'BOOTBACK-NDB-MARKER' | od -An -tx1 | tr -d ' \n')
echo "Test.Marker.NDB:0:*:$ndb_hex" >"$sig/test.ndb"
echo "HOST-ONLY-SECRET-$$" >"$tmp/host-secret"
passwd_line=$(head -n 1 /etc/passwd)
cat >"$sig/test.yar" <<EOF
rule yara_marker { strings: \$a = "BOOTBACK-YARA-MARKER" condition: \$a }
rule hard_linked { strings: \$a = "BOOTBACK-HARDLINK-MARKER" condition: \$a }
rule too_deep { strings: \$a = "BOOTBACK-DEEP-MARKER" condition: \$a }
rule host_secret { strings: \$a = "HOST-ONLY-SECRET-$$" condition: \$a }
rule host_passwd { strings: \$a = "$passwd_line" condition: \$a }
EOF
grep -qxF "$passwd_line" <<< "$(debugfs -R "cat /etc/passwd" "$root" 2>/dev/null)" &&
    skip "the guest's /etc/passwd has the host's first line"

# The clean point: 0.
bootback import "$tmp/clean.img" --vm clean >/dev/null
rc=0; bootback scan clean --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 0 ] || fail "a clean point exits $rc"
grep -q '^scanned: disk vda partition 1 (fat' "$tmp/out" || fail "FAT not scanned"
grep -q '^scanned: disk vda partition 2 (ext4)' "$tmp/out" || fail "ext4 not scanned"
grep -q ': clean (' "$tmp/out" || fail "no clean verdict"

# The infected point.
cp --sparse=always "$tmp/clean.img" "$tmp/bad.img"
bad="$tmp/bad.img?offset=$((67584 * 512))"
printf 'header BOOTBACK-NDB-MARKER trailer\n' >"$tmp/ndb.txt"
echo "BOOTBACK-YARA-MARKER" >"$tmp/yara.txt"
echo "BOOTBACK-HARDLINK-MARKER" >"$tmp/hl.txt"
echo "BOOTBACK-DEEP-MARKER" >"$tmp/deep.txt"
{
    echo "mkdir /srv"
    echo "cd /srv"
    echo "write $tmp/eicar.com eicar.com"
    echo "write $tmp/ndb.txt ndb.txt"
    echo "write $tmp/yara.txt yara.txt"
    echo "write $tmp/hl.txt hl-a"
    echo "ln hl-a hl-b"
    echo "sif hl-a links_count 2"
    echo "symlink secret-link $tmp/host-secret"
    echo "symlink passwd-link /etc/passwd"
    echo "mkdir loop"
    echo "mkdir loop/sub"
    echo "ln /srv/loop /srv/loop/sub/back"
    d=/srv
    for i in $(seq 1 70); do d=$d/d; echo "mkdir $d"; done
    echo "write $tmp/deep.txt $d/deep.txt"
} >"$tmp/cmds"
debugfs -w -f "$tmp/cmds" "$bad" >/dev/null 2>&1
grep -q "Links: 2" <<< "$(debugfs -R "stat /srv/hl-b" "$bad" 2>/dev/null)" || fail "no hard link planted"
bootback import "$tmp/bad.img" --vm bad >/dev/null
rc=0; bootback scan bad --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 2 ] || fail "an infected point exits $rc"
for want in '/srv/eicar.com: Test.Eicar.HDB.UNOFFICIAL (clamav)' \
            '/srv/ndb.txt: Test.Marker.NDB.UNOFFICIAL (clamav)' \
            '/srv/yara.txt: yara_marker (yara)'; do
    grep -qxF "FOUND: disk vda partition 2: $want" "$tmp/out" ||
        fail "not reported with disk and partition: $want"
done
! grep -q 'host_secret\|host_passwd' "$tmp/out" ||
    fail "a guest symlink was followed to a host file"
[ "$(grep -c 'hard_linked' "$tmp/out")" = 1 ] || fail "the hard link was not scanned exactly once"
! grep -q too_deep "$tmp/out" || fail "the depth cap did not hold"
grep -q 'note: /srv/d/d/.*: deeper than the depth limit, not walked' "$tmp/out" ||
    fail "the depth cap is not noted"
grep -q 'note: /srv/loop/sub/back: a directory reached twice (a loop), walked once' "$tmp/out" ||
    fail "the loop is not noted"

bootback scan bad --signatures "$sig" --json >"$tmp/json" || [ $? = 2 ] || fail "json scan"
python3 - "$tmp/json" <<'EOF' || fail "the JSON report is wrong"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["verdict"] == "found", r["verdict"]
m = {(x["path"], x["rule"]) for x in r["matches"]}
assert ("/srv/eicar.com", "Test.Eicar.HDB.UNOFFICIAL") in m, m
assert all(x["disk"] == "vda" and x["partition"] == 2 for x in r["matches"])
sb = r["disks"][0]["sandbox"]
assert sb["uid"] != 0 and sb["euid"] != 0 and sb["no_new_privs"] == 1, sb
# no terminal to push keystrokes into, no network but its own loopback
assert sb["session_leader"] == 1 and sb["tty"] == 0 and sb["interfaces"] == 1, sb
p = [x for x in r["disks"][0]["partitions"] if x["partition"] == 2][0]
assert p["links_scanned_once"] == 1 and p["loops"] == 1 and p["depth_capped"] >= 1, p
EOF

# In the catalog: point show, points --json.
grep -q '^malware: *found, 4 matches' <<< "$(bootback point show bad)" ||
    fail "point show: $(bootback point show bad | grep malware)"
bootback points --json | python3 -c '
import json, sys
v = {p["vm"]: (p["scan"] or {}).get("verdict") for p in json.load(sys.stdin)}
assert v == {"clean": "clean", "bad": "found"}, v' || fail "points --json has no scan"

# A dirty journal is read as it is, and the report says so.
cp --sparse=always "$tmp/clean.img" "$tmp/dirty.img"
debugfs -w -R "feature needs_recovery" "$tmp/dirty.img?offset=$((67584 * 512))" >/dev/null 2>&1
bootback import "$tmp/dirty.img" --vm dirty >/dev/null
rc=0; bootback scan dirty --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
grep -q 'note: dirty journal: read as it is on disk, not replayed' "$tmp/out" ||
    fail "the dirty journal is not reported"
[ $rc = 0 ] || fail "a clean point with a dirty journal exits $rc"

# A garbage disk: 1, one line naming it.
head -c 4M /dev/urandom >"$tmp/garbage.img"
bootback import "$tmp/garbage.img" --vm garbage >/dev/null
rc=0; bootback scan garbage --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 1 ] || fail "a garbage disk exits $rc"
grep -q '^not scanned: disk vda partition 0 (unknown): .' "$tmp/out" ||
    fail "no reason for the garbage disk"

# The infected disk with its partition table emptied (the file systems
# are still there; a loader at a fixed sector could boot them): 1, never
# clean, and it says so.
cp --sparse=always "$tmp/bad.img" "$tmp/nopart.img"
sfdisk -q --delete "$tmp/nopart.img" >/dev/null 2>&1
[ -z "$(sfdisk -q -d "$tmp/nopart.img" 2>/dev/null | grep start=)" ] || fail "sfdisk --delete left partitions"
bootback import "$tmp/nopart.img" --vm nopart >/dev/null
rc=0; bootback scan nopart --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 1 ] || fail "a disk without partitions exits $rc"
grep -q '^not scanned: disk vda: no file system found on it' "$tmp/out" ||
    fail "the empty partition table is not said"

# A corrupt rule file: 1, naming the file and line.
printf 'rule broken {\n  strings: $a = "x"\n  condition: $b\n}\n' >"$tmp/broken.yar"
rc=0; bootback scan clean --rules "$tmp/broken.yar" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 1 ] || fail "a corrupt rule file exits $rc"
grep -qE "^bootback: YARA rules $tmp/broken.yar:[0-9]+: undefined string" "$tmp/out" || fail "the rule file's error does not name it"
grep -q '^malware: *clean' <<< "$(bootback point show clean)" ||
    fail "a scan that could not load its rules replaced the clean record"

# The gate: instant --require-clean refuses an infected, incomplete or
# never scanned point before anything is started.
for p in bad garbage; do
    rc=0; bootback instant "$p" --require-clean >"$tmp/out" 2>&1 || rc=$?
    cat "$tmp/out"
    [ $rc = 1 ] || fail "instant --require-clean $p exits $rc"
done
grep -q "^bootback: --require-clean: refusing garbage@.*: its last scan is incomplete" "$tmp/out" ||
    fail "no reason for the incomplete point"
grep -q "refusing bad@.*: its last scan is found (4 matches) (--force" \
     <<< "$(bootback instant bad --require-clean 2>&1 || true)" ||
    fail "no reason for the infected point"
bootback import "$tmp/clean.img" --vm never >/dev/null
grep -q "refusing never@.*: it was never scanned" \
     <<< "$(bootback instant never --require-clean 2>&1 || true)" ||
    fail "a never scanned point passed the gate"

# The wall-clock limit: a scan that does not finish in time is killed and
# the point is not called clean.
rc=0; bootback scan dirty --signatures "$sig" --timeout 0 >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 1 ] || fail "a timed-out scan exits $rc"
grep -qx "not scanned: disk vda: the scan did not finish within 0 s (killed)" "$tmp/out" ||
    fail "the timeout is not said"
grep -q '^malware: *incomplete' <<< "$(bootback point show dirty)" || fail "the timeout is not recorded"

# A scan killed at its deadline leaves nothing in /tmp: libclamav's
# scratch directory (the members of archives it unpacked: guest bytes)
# is made by the parent for the child's user and removed once the child
# has ended, however it ended.  Before, the child made it and removed it
# only on a clean exit: a crafted disk can always make the scan run out
# of time, and every such scan left a directory.  A YARA rule that loops
# over every byte of a 4 MiB file keeps the child busy past --timeout
# (for a minute: libyara's own limit per file); the directory is looked
# for while the scan runs.  What the child matched before it was killed
# (a file written before the 4 MiB one, on a small disk with nothing else
# to read first) is found all the same: before, a disk that ran the scan
# out of time turned its detected malware into "incomplete", the match
# gone.
truncate -s 16M "$tmp/slow.img"
mke2fs -q -F -t ext4 "$tmp/slow.img"
head -c 4M /dev/zero >"$tmp/zeros"
printf 'write %s /ndb.txt\nwrite %s /zeros\n' "$tmp/ndb.txt" "$tmp/zeros" >"$tmp/slowcmds"
debugfs -w -f "$tmp/slowcmds" "$tmp/slow.img" >/dev/null 2>&1
bootback import "$tmp/slow.img" --vm slow >/dev/null
slowsig=$tmp/slowsig; mkdir -p "$slowsig"
cp "$sig/test.ndb" "$slowsig/"          # libclamav loaded: it gets a scratch directory
cat >"$slowsig/slow.yar" <<'EOF'
rule slow { condition: filesize == 4194304 and
  for all i in (0..filesize - 1) : (for all j in (0..1000) : (uint8(i) == 0)) }
EOF
scratch_dirs () { find /tmp -maxdepth 1 -name 'bootback-scan.*' -user nobody 2>/dev/null | sort; }
before=$(scratch_dirs)
bootback scan slow --signatures "$slowsig" --timeout 20 >"$tmp/out" 2>&1 &
spid=$!
seen=
while [ -z "$seen" ] && kill -0 $spid 2>/dev/null; do
    seen=$(comm -13 <(echo "$before") <(scratch_dirs))
    sleep 0.1
done
rc=0; wait $spid || rc=$?
cat "$tmp/out"
[ $rc = 2 ] || fail "a scan killed at its deadline after a match exits $rc"
grep -qxF "FOUND: disk vda partition 0: /ndb.txt: Test.Marker.NDB.UNOFFICIAL (clamav)" "$tmp/out" ||
    fail "the match before the deadline is lost"
grep -q "^not scanned: disk vda: " "$tmp/out" || fail "the killed scan is not said"
grep -q '^malware: *found, 1 match' <<< "$(bootback point show slow)" ||
    fail "point show: $(bootback point show slow | grep malware)"
[ -n "$seen" ] || fail "no scratch directory of the scanning user was seen while it ran"
for d in $seen; do
    [ ! -e "$d" ] || fail "the killed scan left its scratch directory $d: $(ls -la "$d")"
done
