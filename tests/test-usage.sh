#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Usage strings and the man page do not drift: for every command (and
# every lab subcommand), the options `bootback CMD --help` shows are the
# options bootback.pod documents in that command's sections (the =head2
# lines and their text), and the other way round.  A section that says
# "options of lab run" documents lab run's options as well.  The same for
# the plugin's parameters (config_help vs nbdkit-bootback-plugin.pod).
source "$top_srcdir/tests/functions.sh"
requires perl

pod="$top_srcdir/recovery/cli/bootback.pod"

# The options (--word) in stdin, one a line, sorted, without --help.
options () { grep -o -- '--[a-z][a-z0-9-]*' | grep -vx -- '--help' | sort -u || true; }

# The text of the man page's sections for command KEY ("repo", "instant",
# "lab run", ...): every =head2 that starts with "bootback KEY" followed by
# a blank or the end, up to the next =head.  Verbatim lines (examples) count
# only when they are a "bootback KEY" command line: an example may show
# another program's options (virsh, a check script).
pod_text () {
    KEY="$1" perl -ne '
        BEGIN { $k = quotemeta $ENV{KEY}; }
        if (/^=head/) {
            $on = /^=head2 bootback $k(\s|$)/ ? 1 : 0;
            $run = 1 if $on && /options of lab run/;
        }
        next if !$on || (/^\s/ && !/^\s+bootback $k(\s|$)/);
        print;
        END { print "SEE-LAB-RUN\n" if $run; }' "$pod"
}

man_options () {
    local text; text=$(pod_text "$@")
    if grep -q SEE-LAB-RUN <<< "$text"; then text+=$'\n'$(pod_text "lab run"); fi
    options <<< "$text"
}

bad=0
check () {
    local key="$1"
    # shellcheck disable=SC2086
    bootback $key --help > "$tmp/help" || fail "$key --help failed"
    options < "$tmp/help" > "$tmp/help.opts"
    man_options "$key" > "$tmp/man.opts"
    [ -s "$tmp/man.opts" ] || grep -q "^=head2 bootback $key" "$pod" ||
        { echo "FAIL: man page has no section for $key" >&2; bad=1; return; }
    local only_help only_man
    only_help=$(comm -23 "$tmp/help.opts" "$tmp/man.opts" | tr '\n' ' ')
    only_man=$(comm -13 "$tmp/help.opts" "$tmp/man.opts" | tr '\n' ' ')
    if [ -n "$only_help" ]; then
        echo "FAIL: bootback $key --help shows ${only_help}but bootback.pod does not document it" >&2
        bad=1
    fi
    if [ -n "$only_man" ]; then
        echo "FAIL: bootback.pod documents ${only_man}for $key but bootback $key --help does not show it" >&2
        bad=1
    fi
}

for cmd in repo import backup points point restore serve umount prune gc \
           sessions migrate verify history report web; do
    check "$cmd"
done
check mount
check "report verify"
check instant           # its --help shows instant stop's usage too
check "instant stop"
for sub in validate run up list down shell reap check exec cp console checkpoint \
           checkpoints reset extend; do
    check "lab $sub"
done
# The plugin: the parameters `nbdkit bootback --help` lists (config_help)
# are the =item B<KEY=> of the man page's PARAMETERS.
plugin="$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so"
if command -v nbdkit >/dev/null && [ -f "$plugin" ]; then
    nbdkit "$plugin" --help 2>&1 | sed -n '/^Serve the disks/,$p' |
        grep -o '^[a-z]*=' | sort -u > "$tmp/help.keys"
    perl -ne 'print "$1\n" if /^=item \[?B<([a-z]+=)>/' \
        "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.pod" | sort -u > "$tmp/man.keys"
    [ -s "$tmp/help.keys" ] || fail "nbdkit bootback --help lists no parameter"
    if ! diff -u "$tmp/help.keys" "$tmp/man.keys" >&2; then
        echo "FAIL: nbdkit bootback --help and nbdkit-bootback-plugin.pod list different parameters (above)" >&2
        bad=1
    fi
fi
[ $bad -eq 0 ] || exit 1
echo "usage ok"
