#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A short run of the libFuzzer targets of what a restore point or a lab
# file holds (make fuzz runs them for long): lab/fuzz-lab (lab YAML, a
# point's <bb:verify> and the quick definition built from it, the lab's
# check of the rewritten XML) and recovery/instant/fuzz-domain-xml (the
# instant rewrite and its allow-list, instant_xml_check, the backup
# side's disk parser).  First every regression seed of
# tests/fuzz-regress/NAME/ (inputs that once found a bug) is replayed,
# then each target fuzzes for FUZZ_SHORT seconds (default 5) from seeds
# made here: the lab files of the tests, the man page and conf.c, the saved
# domain XML of recovery/instant/golden/.
source "$top_srcdir/tests/functions.sh"
[ -z "${BOOTBACK_VALGRIND:-}" ] || skip "fuzzers use ASan, not valgrind"
lab="$top_srcdir/lab/fuzz-lab"
dxml="$top_srcdir/recovery/instant/fuzz-domain-xml"
[ -x "$lab" ] && [ -x "$dxml" ] || skip "fuzz targets not built (clang with libFuzzer missing)"
secs=${FUZZ_SHORT:-5}
regress="$top_srcdir/tests/fuzz-regress"

cd "$tmp"
mkdir corpus-lab corpus-dxml
n=0
# Lab YAML (selector 0): the here-documents of the lab tests, the lab
# definitions of the man page, conf.c's example.
yaml () { { printf '\0'; cat; } >"corpus-lab/yaml-$n"; n=$((n + 1)); }
awk -v out="$tmp/heredoc" '
    /cat >.*\.yaml.* <</ { on = 1; k++; next }
    on && /^EOF[0-9]*$/ { on = 0; close (out "-" k); next }
    on { print > (out "-" k) }' \
    "$top_srcdir"/tests/test-lab-*.sh "$top_srcdir"/lab/test-lab-*.sh
awk -v out="$tmp/pod" '
    /^ +name: / && !on { on = 1; k++ }
    on && !/^ / && !/^$/ { on = 0; close (out "-" k) }
    on { sub (/^ /, ""); print > (out "-" k) }' "$top_srcdir/recovery/cli/bootback.pod"
for f in heredoc-* pod-*; do
    [ -f "$f" ] && grep -q '^ *\(verify\|groups\|network\):' "$f" || continue
    yaml <"$f"
done
sed -n '/^ \*   name: nightly/,/^ \*\//p' "$top_srcdir/lab/conf.c" |
    sed '$d; s/^ \*   //' | yaml
[ "$n" -ge 4 ] || fail "only $n lab files as seeds"

# Domain XML (selectors 1, 3, 7: with and without --address and a disk;
# 0x48: qemu, console log, one disk).
for f in "$top_srcdir"/recovery/instant/golden/*.in; do
    b=$(basename "$f" .in)
    sed '1,/^---$/d' "$f" >body
    for s in '\1' '\7'; do
        { printf "$s"; cat body; } >"corpus-lab/xml-$b-${s#\\}"
    done
    { printf '\110\0'; cat body; } >"corpus-dxml/$b"
done
cat >hints.xml <<'EOF'
<domain type='kvm'><name>web1</name><memory unit='MiB'>256</memory>
<metadata><bb:verify xmlns:bb="urn:bootback:verify:1">
<bb:address>10.77.0.10</bb:address><bb:subnet>10.77.0.0/24</bb:subnet>
<bb:gateway>10.77.0.1</bb:gateway><bb:check>http http://{address}/ expect 200</bb:check>
<bb:check>tcp 22</bb:check><bb:check>guest-exec test -s /srv</bb:check>
<bb:check>script /bin/sh -c id</bb:check></bb:verify></metadata>
<devices><interface type='network'><source network='default'/></interface></devices>
</domain>
EOF
{ printf '\1'; cat hints.xml; } >corpus-lab/xml-hints
{ printf '\3'; cat hints.xml; } >corpus-lab/xml-hints-3

# Regression seeds: each must run clean.
for t in "$lab lab" "$dxml domain-xml"; do
    read -r bin name <<<"$t"
    [ -d "$regress/$name" ] || continue
    "$bin" -timeout=20 "$regress/$name"/* >regress.log 2>&1 ||
        { tail -40 regress.log; fail "$(basename "$bin"): a regression seed of tests/fuzz-regress/$name fails"; }
done

# A finding is kept as tests/tmp/fuzz-found-NAME-*: fix it, then add it
# to tests/fuzz-regress/.
mkdir -p "$top_srcdir/tests/tmp"
for t in "$lab corpus-lab" "$dxml corpus-dxml"; do
    read -r bin corpus <<<"$t"
    "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
        -artifact_prefix="$top_srcdir/tests/tmp/fuzz-found-$(basename "$bin")-" \
        -print_final_stats=1 "$corpus" >fuzz.log 2>&1 ||
        { grep -v '^#[0-9]' fuzz.log | head -80; fail "$(basename "$bin") found a problem"; }
    grep -E '^stat::number_of_executed_units' fuzz.log
done
echo "test-fuzz (lab, domain XML): ok"
