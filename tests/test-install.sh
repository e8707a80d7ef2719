#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make install honours PREFIX and DESTDIR: the program, its man page and
# the nbdkit plugin land where they should, and the installed program runs.
# The installed program and plugin ignore the test hooks (BOOTBACK_FAULT,
# BOOTBACK_CRASH_STEP, ...: recovery/util/hooks.c), which the build tree's
# honour.
source "$top_srcdir/tests/functions.sh"

make -s -C "$top_srcdir" install DESTDIR="$tmp/root" PREFIX=/opt/bb >/dev/null
inst=$tmp/root/opt/bb/bin/bootback
[ -x "$inst" ] || fail "bootback not installed"
[ -f "$tmp/root/opt/bb/share/man/man1/bootback.1" ] || fail "man page not installed"
"$inst" --version | grep -q "^bootback "
"$inst" --version | grep -q "testing" && fail "the installed bootback is a build for testing"
"$BOOTBACK" --version | grep -q "testing" || fail "the build tree's bootback does not honour the test hooks"

# A repository with one point, made by the build tree's program.
make_disk "$tmp/d.raw" $((3 * 1024 * 1024))
bootback repo init "$tmp/repo" >/dev/null
bootback import "$tmp/d.raw" --vm v >/dev/null

# The hooks act on the build tree's program...
expect_fail env BOOTBACK_FAULT=eio@1 "$BOOTBACK" points v >"$tmp/out" 2>&1
grep -q "injected fault" "$tmp/out" || { cat "$tmp/out"; fail "BOOTBACK_FAULT ignored by the build tree's bootback"; }
# ...and not on the installed one.
BOOTBACK_FAULT=eio@1 BOOTBACK_CRASH_STEP=1 "$inst" points v >"$tmp/out" 2>&1 ||
    { cat "$tmp/out"; fail "the installed bootback honoured BOOTBACK_FAULT"; }
grep -q "^v" "$tmp/out" || { cat "$tmp/out"; fail "the installed bootback did not list the point"; }
BOOTBACK_CRASH_STEP=1 "$inst" import "$tmp/d.raw" --vm v >"$tmp/out" 2>&1 ||
    { cat "$tmp/out"; fail "the installed bootback honoured BOOTBACK_CRASH_STEP"; }
expect_fail env BOOTBACK_CRASH_STEP=1 "$BOOTBACK" import "$tmp/d.raw" --vm v >/dev/null 2>&1

if [ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ]; then
    plugindir=$(pkg-config --variable=plugindir nbdkit)
    iplugin=$tmp/root$plugindir/nbdkit-bootback-plugin.so
    [ -f "$iplugin" ] || fail "plugin not installed in $plugindir"
    requires nbdkit nbdinfo
    expect_fail env BOOTBACK_FAULT=eio@1 nbdkit -U - "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" \
        repo="$tmp/repo" point=v@latest --run 'nbdinfo --size "$uri"' >/dev/null 2>&1
    size=$(BOOTBACK_FAULT=eio@1 nbdkit -U - "$iplugin" repo="$tmp/repo" point=v@latest \
               --run 'nbdinfo --size "$uri"') || fail "the installed plugin honoured BOOTBACK_FAULT"
    [ "$size" = $((3 * 1024 * 1024)) ] || fail "installed plugin: size $size"
fi
echo "install ok"
