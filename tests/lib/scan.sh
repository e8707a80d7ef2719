# SPDX-License-Identifier: LGPL-2.1-or-later
# For the scan tests, sourced after tests/functions.sh: skips without the
# plugin or the user nobody (the scanning child's), makes a repository
# with 64 KiB chunks in $tmp/repo, and gives
#   scan_rule NAME STRING   a YARA rule NAME matching STRING, in $sig
#   scan_found OUT RC RULE  a scan's output and exit: found, /eicar.com as
#                           Test.Eicar.HDB and /marker.txt by RULE on vda
#   scan_sandbox_is VM KEY VALUE  scan VM --json: vda's sandbox line's
#                           KEY is VALUE
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"
getent passwd nobody >/dev/null || skip "no user nobody"

bootback repo init --chunk-size 64K "$tmp/repo" >/dev/null
sig=$tmp/sig
mkdir -p "$sig"
echo "clean text" >"$tmp/clean.txt"

scan_rule () {
    echo "rule $1 { strings: \$a = \"$2\" condition: \$a }" >"$sig/$1.yar"
}

scan_found () {
    [ "$2" = 2 ] || fail "the scan exits $2, not 2 (found)"
    grep -q '^FOUND: disk vda partition 0: /eicar.com: Test.Eicar.HDB' "$1" ||
        fail "EICAR not reported"
    grep -q "^FOUND: disk vda partition 0: /marker.txt: $3 (yara)" "$1" ||
        fail "the YARA match not reported"
}

scan_sandbox_is () {
    local rc=0
    bootback scan "$1" --signatures "$sig" --json >"$tmp/j" 2>&1 || rc=$?
    [ $rc = 2 ] || { cat "$tmp/j"; fail "the scan --json exits $rc"; }
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["disks"][0]
assert str(d["sandbox"][sys.argv[2]]) == sys.argv[3], d["sandbox"]' "$tmp/j" "$2" "$3" ||
        fail "the sandbox line's $2 is not $3"
}
