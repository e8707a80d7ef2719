#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback scan of a point in an encrypted repository: the process that
# parses the guest's file systems (hostile input) holds none of the
# secrets bootback was given.  The scanning process stops itself once
# its rules are loaded and it has dropped (BOOTBACK_STOP_STEP=10); the
# test, as root, reads its environment (/proc/PID/environ) and every
# readable region of its memory (/proc/PID/maps, /proc/PID/mem): neither
# the passphrase (given in BOOTBACK_PASSPHRASE, then in a file named by
# BOOTBACK_PASSPHRASE_FILE) nor an S3 secret key nor a
# "BOOTBACK_PASSPHRASE=" is there.  Continued, the scan reports its match.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/images.sh"
requires nbdkit debugfs md5sum python3
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"
[ "$(id -u)" = 0 ] || skip "reading another user's memory needs root"
getent passwd nobody >/dev/null || skip "no user nobody"
images_tiny

pass="scan-secret-pass-$$-Quokka"
s3key="scan-secret-s3-$$-Wombat"
export BOOTBACK_PASSPHRASE=$pass
bootback repo init --encrypt --chunk-size 64K "$tmp/repo" >/dev/null
export BOOTBACK_REPO=$tmp/repo

sig=$tmp/sig; mkdir -p "$sig"
printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$tmp/eicar.com"
echo "$(md5sum <"$tmp/eicar.com" | cut -d' ' -f1):68:Test.Eicar.HDB" >"$sig/test.hdb"
echo 'rule yara_marker { strings: $a = "BOOTBACK-YARA-MARKER" condition: $a }' >"$sig/test.yar"
echo "BOOTBACK-YARA-MARKER" >"$tmp/yara.txt"
tiny_copy tiny "$tmp/bad.img"
debugfs -w -R "write $tmp/eicar.com /eicar.com" "$tmp/bad.img?offset=$((67584 * 512))" \
    >/dev/null 2>&1
debugfs -w -R "write $tmp/yara.txt /yara.txt" "$tmp/bad.img?offset=$((67584 * 512))" \
    >/dev/null 2>&1
bootback import "$tmp/bad.img" --vm enc >/dev/null
rm "$tmp/bad.img"

# The stopped child of PID that holds the secrets: search it.  Prints
# what it found, one line each; exit 0 if nothing.
cat >"$tmp/search.py" <<'EOF'
import os, re, sys
parent = sys.argv[1]
needles = [n.encode() for n in sys.argv[2:]]
kids = [p for p in os.listdir("/proc") if p.isdigit()]
def stat(p):
    try:
        s = open(f"/proc/{p}/stat").read()
    except OSError:
        return None
    f = s[s.rindex(")") + 2:].split()
    return f[0], f[1]                  # state, ppid
pid = [p for p in kids if stat(p) and stat(p)[1] == parent and stat(p)[0] == "T"]
if len(pid) != 1:
    print(f"no single stopped child of {parent}: {pid}")
    sys.exit(2)
pid = pid[0]
bad = 0
env = open(f"/proc/{pid}/environ", "rb").read()
for n in needles + [b"BOOTBACK_PASSPHRASE", b"AWS_SECRET_ACCESS_KEY"]:
    if n in env:
        print(f"environ has {n.decode()}")
        bad = 1
found = set()
regions = total = 0
with open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in open(f"/proc/{pid}/maps"):
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
        lo, hi, perm = int(m[1], 16), int(m[2], 16), m[3]
        if perm[0] != "r":
            continue
        off, tail = lo, b""
        while off < hi:
            n = min(hi - off, 16 << 20)
            try:
                mem.seek(off)
                buf = tail + mem.read(n)
            except OSError:
                break
            for x in needles + [b"BOOTBACK_PASSPHRASE="]:
                if x in buf and x not in found:
                    found.add(x)
                    print(f"memory has {x.decode()} ({line.strip()})")
            tail = buf[-64:]
            off += n
            total += len(buf) - len(tail)
        regions += 1
cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
print(f"searched {pid} ({cmd}): environ, {regions} regions, {total} bytes")
if regions < 10 or total < (1 << 20):
    print("too little read")
    bad = 1
sys.exit(1 if bad or found else 0)
EOF

# scan_stopped NAME ENV...: scan enc with the environment ENV, stopped
# at step 10 and searched; then on, its match reported.
scan_stopped () {
    local name=$1 pid rc=0 found=0 i
    shift
    env "$@" BOOTBACK_STOP_STEP=10 AWS_SECRET_ACCESS_KEY="$s3key" \
        "$BOOTBACK" scan enc --signatures "$sig" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    for i in $(seq 600); do
        python3 "$tmp/search.py" "$pid" "$pass" "$s3key" >"$tmp/$name.search" && { found=1; break; }
        [ $? = 1 ] && { found=2; break; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$tmp/$name.search"
    # on, whatever was found
    for i in $(ps -o pid= --ppid "$pid"); do kill -CONT "$i" 2>/dev/null || :; done
    wait "$pid" || rc=$?
    cat "$tmp/$name.out" "$tmp/$name.err"
    [ $found != 0 ] || fail "$name: the scanning process did not stop at step 10"
    [ $found = 1 ] || fail "$name: the scanning process holds a secret (above)"
    [ $rc = 2 ] || fail "$name: the scan exits $rc, not 2 (found)"
    grep -q '^FOUND: disk vda partition 2: /eicar.com: Test.Eicar.HDB' "$tmp/$name.out" ||
        fail "$name: EICAR not reported"
    grep -q '^FOUND: disk vda partition 2: /yara.txt: yara_marker (yara)' "$tmp/$name.out" ||
        fail "$name: the YARA match not reported"
}

scan_stopped env BOOTBACK_PASSPHRASE="$pass"
echo "$pass" >"$tmp/pass"
scan_stopped file -u BOOTBACK_PASSPHRASE BOOTBACK_PASSPHRASE_FILE="$tmp/pass"
echo "the scanning process holds no secret ok"
