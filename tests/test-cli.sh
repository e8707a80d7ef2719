#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Every command answers --help (exit 0, a usage line) and refuses wrong
# usage (exit 1, usage on stderr); the man page exists and documents every
# command; listings have --json that parses.
source "$top_srcdir/tests/functions.sh"

grep -q "^usage: bootback" <<< "$(bootback --help)"
grep -q "^bootback " <<< "$(bootback --version)"
for cmd in "repo" "import" "backup" "points" "point" "restore" "serve" "mount" "umount" "prune" "gc" "instant" "sessions" "migrate" "lab" "verify" "history" "web"; do
    bootback $cmd --help > "$tmp/out" || fail "$cmd --help failed"
    grep -q "^usage: bootback $cmd" "$tmp/out" || fail "$cmd --help has no usage line"
    grep -q "^=head2 bootback $cmd" "$top_srcdir/recovery/cli/bootback.pod" || fail "man page lacks $cmd"
done
for sub in exec cp console checkpoint checkpoints reset extend; do
    bootback lab $sub --help > "$tmp/out" || fail "lab $sub --help failed"
    grep -q "^usage: bootback lab $sub" "$tmp/out" || fail "lab $sub --help has no usage line"
    grep -q "^=head2 bootback lab $sub" "$top_srcdir/recovery/cli/bootback.pod" || fail "man page lacks lab $sub"
    expect_fail bootback lab $sub 2>"$tmp/err"; grep -q "usage:" "$tmp/err"
done
for sub in init add list verify check reindex; do
    grep -q "bootback repo $sub" "$top_srcdir/recovery/cli/bootback.pod" || fail "man page lacks repo $sub"
done
expect_fail bootback import 2>"$tmp/err"; grep -q "usage:" "$tmp/err"
expect_fail bootback restore x 2>"$tmp/err"; grep -q "usage:" "$tmp/err"
expect_fail bootback prune 2>"$tmp/err"; grep -q "needs at least one --keep" "$tmp/err"
expect_fail bootback points --bogus 2>"$tmp/err"
grep -q "bootback" <<< "$(man -l "$top_srcdir/recovery/cli/bootback.1" 2>/dev/null)" ||
    [ -s "$top_srcdir/recovery/cli/bootback.1" ] || fail "man page not built"
bootback repo init "$tmp/repo" >/dev/null
grep -q "^=head2 bootback instant stop" "$top_srcdir/recovery/cli/bootback.pod" || fail "man page lacks instant stop"
grep -q "^usage: bootback instant stop" <<< "$(bootback instant stop --help)"
expect_fail bootback instant 2>"$tmp/err"; grep -q "usage:" "$tmp/err"
expect_fail bootback migrate 2>"$tmp/err"; grep -q "usage:" "$tmp/err"
# no --to is a remote session's migrate into its host's pool: checked later
expect_fail bootback migrate 1 2>"$tmp/err"; grep -q "no session 1" "$tmp/err"
! grep -q supervise <<< "$(bootback --help)" || fail "supervise is internal"
for l in "points" "sessions" "repo list" "repo check" "repo verify" "gc --dry-run" "lab list" "history web1"; do
    bootback $l --json | python3 -c 'import json,sys; json.load(sys.stdin)' || fail "$l --json"
done
echo "cli ok"
