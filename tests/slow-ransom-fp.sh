#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The ransomware score's false-positive rate and smallest detected
# encryption, measured (README, "Ransomware early warning"): 4 VMs, each a
# 1 GiB raw image changed on the host and imported once per change set
# (tests/lib/ransom.sh), with sizes scaled per VM (x1..x4).
#   1. RANSOM_SETS (default 40) benign sets per VM, each 1 to 3 changes
#      of the four kinds (log growth, a package-sized compressible write,
#      database-like rewrites in place, a copy of gzip'd files; new
#      files go to the free space, which is reused from its start when
#      full, as a file system reuses freed blocks);
#   2. then encryption in place of 16, 8, 4, 2 and 1 MiB of the files
#      (openssl enc), one point each, largest first (a flagged point is
#      left out of the history; a missed one joins it and would widen
#      the usual range for the next).
# Prints the rates; fails if more than 1 benign set in 40 is flagged while
# new files go to never-used free space (after it is reused, a copy of
# compressed files over deleted files' blocks is what encryption in place
# looks like: that rate is printed only), or if 16 MiB of encryption is
# missed.
source "$top_srcdir/tests/functions.sh"
requires openssl gzip seq python3
source "$top_srcdir/tests/lib/ransom.sh"

# a private copy of bootback: a rebuild of the tree while this long test
# runs cannot swap it
cp "$BOOTBACK" "$tmp/bootback" && BOOTBACK=$tmp/bootback
sets=${RANSOM_SETS:-40}
kinds=(log package database copy)
bootback repo init "$tmp/repo" >/dev/null
total=(0 0) fp=(0 0) missed16=0     # [0]: free space never reused, [1]: reused
: >"$tmp/report"
for scale in ${RANSOM_SCALES:-1 2 3 4}; do
    ransom_vm=vm$scale ransom_n=0
    ransom_init "$tmp/vm$scale.raw" 1G 96
    for i in $(seq 1 "$sets"); do
        desc=
        for j in $(seq 0 $((RANDOM % 3))); do
            k=${kinds[$((RANDOM % 4))]}
            ransom_change "$k" "$scale"
            desc+="$k "
        done
        ransom_import
        u=$ransom_reused
        total[u]=$((total[u] + 1))
        if grep -q "is suspicious" "$tmp/imp.err"; then
            fp[u]=$((fp[u] + 1))
            echo "false positive: vm$scale set $i ($desc; free space reused: $u): $(cat "$tmp/imp.err")" |
                tee -a "$tmp/report"
        fi
    done
    for mib in 16 8 4 2 1; do   # largest first: a missed one joins the history
        ransom_encrypt "$mib"
        ransom_import
        if grep -q "is suspicious" "$tmp/imp.err"; then r=flagged; else r=missed; fi
        [ "$r" = missed ] && [ "$mib" = 16 ] && missed16=$((missed16 + 1))
        echo "vm$scale (x$scale): $mib MiB encrypted: $r" | tee -a "$tmp/report"
        bootback point show "$ransom_vm@latest" | sed -n 's/^score notes: /  /p'

    done
    bootback points "$ransom_vm" --json >"$tmp/p.json"
    python3 - "$tmp/p.json" "$sets" <<'PY'
import json, sys
pts = json.load(open(sys.argv[1])); n = int(sys.argv[2])
b = [x["score"]["score"] for x in pts[1:n + 1]]
print("benign scores: max %.1f, median %.1f" % (max(b), sorted(b)[len(b) // 2]))
PY
done
all=$((total[0] + total[1])) allfp=$((fp[0] + fp[1]))
echo "benign change sets: $all, flagged: $allfp ($(echo "scale=1; 100 * $allfp / $all" | bc)%)"
echo "  new files into never-used (or trimmed) free space: ${total[0]} sets, ${fp[0]} flagged"
echo "  after the free space was reused: ${total[1]} sets, ${fp[1]} flagged"
# A copy of compressed files over a deleted file's blocks is, block by
# block, what encryption in place is: measured and reported, not asserted.
[ $((fp[0] * 40)) -le "${total[0]}" ] ||
    fail "false-positive rate above 1 in 40 without reused space: ${fp[0]} of ${total[0]}"
[ "$missed16" = 0 ] || fail "16 MiB of encryption missed on $missed16 VMs"
