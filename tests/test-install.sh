#!/usr/bin/env bash
# make install honours PREFIX and DESTDIR: the program, its man page and
# the nbdkit plugin land where they should, and the installed program runs.
source "$top_srcdir/tests/functions.sh"

make -s -C "$top_srcdir" install DESTDIR="$tmp/root" PREFIX=/opt/bb >/dev/null
[ -x "$tmp/root/opt/bb/bin/bootback" ] || fail "bootback not installed"
[ -f "$tmp/root/opt/bb/share/man/man1/bootback.1" ] || fail "man page not installed"
"$tmp/root/opt/bb/bin/bootback" --version | grep -q "^bootback "
if [ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ]; then
    plugindir=$(pkg-config --variable=plugindir nbdkit)
    [ -f "$tmp/root$plugindir/nbdkit-bootback-plugin.so" ] || fail "plugin not installed in $plugindir"
fi
echo "install ok"
