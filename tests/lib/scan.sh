# SPDX-License-Identifier: LGPL-2.1-or-later
# For the scan tests, sourced after tests/functions.sh: skips without the
# plugin or the user nobody (the scanning child's), makes a repository
# with 64 KiB chunks in $tmp/repo, and gives
#   scan_rule NAME STRING   a YARA rule NAME matching STRING, in $sig
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"
getent passwd nobody >/dev/null || skip "no user nobody"

bootback repo init --chunk-size 64K "$tmp/repo" >/dev/null
sig=$tmp/sig
mkdir -p "$sig"
echo "clean text" >"$tmp/clean.txt"

scan_rule () {
    echo "rule $1 { strings: \$a = \"$2\" condition: \$a }" >"$sig/$1.yar"
}
