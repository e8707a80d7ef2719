#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A short run of each libFuzzer target (make fuzz runs them for long):
# fuzz-decode (chunk, index and manifest decoders, seeded with real chunk
# files, indexes and manifests, compressed and raw) and fuzz-plugin (the plugin's pread,
# extents and cache with random offsets and lengths) and fuzz-trace (the
# boot-trace parser, seeded with a trace the plugin wrote).  FUZZ_SHORT sets the
# seconds per target (default 5).  tests/fuzz-regress/decode/ and trace/
# (inputs that once found a bug) are replayed first.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires numfmt xxd
[ -z "${BOOTBACK_VALGRIND:-}" ] || skip "fuzzers use ASan, not valgrind"
decode="$top_srcdir/nbd-plugin/fuzz-decode"
plug="$top_srcdir/nbd-plugin/fuzz-plugin"
trace="$top_srcdir/nbd-plugin/fuzz-trace"
[ -x "$decode" ] && [ -x "$plug" ] && [ -x "$trace" ] ||
    skip "fuzz targets not built (clang with libFuzzer missing)"
secs=${FUZZ_SHORT:-5}

cd "$tmp"
# Seeds: chunk files (selector 0, digest, file) and indexes (selector 1).
make_image a.img 1M "0:200K 300K:64K:65 600K:100K"
bb_repo_init repo 64K
bb_import repo vm 20260101T000000Z vda=a.img >/dev/null
# and chunks of four frames, for the reads of part of a chunk
bb_repo_init repo4 256K
bb_import repo4 vm 20260101T000000Z vda=a.img >/dev/null
# and chunks of 64 KiB frames (a repository of the previous bootback)
tar xzf "$top_srcdir/nbd-plugin/old-repo-64k.tar.gz" --one-top-level=old
mkdir corpus-decode corpus-plugin
n=0
for f in repo/chunks/*/* repo4/chunks/*/* old/repo/chunks/*/*; do
    # the selector of the chunk header's frame size (fuzz-decode.c's shifts[])
    case $((16#$(xxd -s 4 -l 1 -p "$f"))) in
        16) sel='\2' ;; 14) sel='\6' ;; 12) sel='\12' ;; 13) sel='\16' ;; 15) sel='\22' ;;
        *) fail "$f: unexpected frame size in its header" ;;
    esac
    { printf "$sel"; basename "$f" | xxd -r -p; cat "$f"; } >corpus-decode/chunk-$n
    n=$((n + 1))
done
# Every seed chunk decodes: else the fuzzer explores only the rejections.
FUZZ_EXPECT_DECODE=1 "$decode" corpus-decode/chunk-* >seeds.log 2>&1 ||
    { tail -20 seeds.log; fail "fuzz-decode: a seed chunk does not decode"; }
{ printf '\1'; cat repo/points/vm/*/vda.fidx; } >corpus-decode/fidx
{ printf '\3'; cat repo/points/vm/*/manifest.json; } >corpus-decode/manifest
[ "$n" -gt 3 ] || fail "no seed chunks"
# a trace the plugin wrote (chunk count 16, little-endian)
mkdir corpus-trace
bb_nbdkit -r -U - "$plugin" repo=repo point=vm trace=t.trace --run 'nbdcopy "$uri" /dev/null'
{ printf '\20\0'; cat t.trace; } >corpus-trace/trace

# Inputs that once found a bug (tests/fuzz-regress/decode) first.
for f in "$top_srcdir"/tests/fuzz-regress/decode/*; do
    "$decode" "$f" >regress.log 2>&1 ||
        { tail -20 regress.log; fail "fuzz-decode: the regression input $f fails"; }
done
for f in "$top_srcdir"/tests/fuzz-regress/trace/*; do
    "$trace" "$f" >regress.log 2>&1 ||
        { tail -20 regress.log; fail "fuzz-trace: the regression input $f fails"; }
done
for t in "$decode corpus-decode" "$plug corpus-plugin" "$trace corpus-trace"; do
    read -r bin corpus <<<"$t"
    "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 "$corpus" >fuzz.log 2>&1 ||
        { tail -40 fuzz.log; fail "$(basename "$bin") found a problem"; }
    grep -E '^stat::number_of_executed_units' fuzz.log
done
echo "test-fuzz: ok"
