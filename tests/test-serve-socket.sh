#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback serve --socket PATH changes nothing but PATH: the directory of
# PATH (here sticky and world-writable, like /tmp) keeps its mode, an
# existing file that is not a socket is refused and left as it is, a socket
# a server listens on is refused, a stale socket of ours is replaced; the
# socket is not writable (connectable) by others and the pid file is in
# bootback's own directory.
source "$top_srcdir/tests/functions.sh"
requires nbdkit nbdcopy mke2fs
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"

bootback repo init --chunk-size 64K "$tmp/repo" >/dev/null
head -c 1M /dev/urandom > "$tmp/disk.img"
bootback import "$tmp/disk.img" --vm vm >/dev/null

mkdir "$tmp/sticky"
chmod 1777 "$tmp/sticky"
sock=$tmp/sticky/x.sock

# A regular file at PATH: refused, left alone, the directory unchanged.
echo "precious" > "$sock"
expect_fail bootback serve vm --socket "$sock" --background 2>"$tmp/err"
cat "$tmp/err"
grep -q -- "--socket $sock: exists and is not a socket" "$tmp/err" ||
    fail "no error naming the existing file"
[ "$(cat "$sock")" = precious ] || fail "the existing file was changed"
[ "$(stat -c %a "$tmp/sticky")" = 1777 ] || fail "directory mode changed"
rm "$sock"

# A fresh PATH: served, the sticky directory keeps its mode.
bootback serve vm --socket "$sock" --background > "$tmp/out"
cat "$tmp/out"
pidf=$(sed -n 's/.*(pid file \(.*\))$/\1/p' "$tmp/out")
cleanup_fn 'kill $(cat "'"$pidf"'") 2>/dev/null; rm -rf "'"$(dirname "$pidf")"'"'
[ "$(stat -c %a "$tmp/sticky")" = 1777 ] ||
    fail "serve changed the mode of $tmp/sticky to $(stat -c %a "$tmp/sticky")"
[ "$(dirname "$pidf")" != "$tmp/sticky" ] || fail "pid file written next to PATH"
[ "$(stat -c %a "$(dirname "$pidf")")" = 700 ] || fail "pid file directory not 0700"
[ $(( 0$(stat -c %a "$sock") & 022 )) = 0 ] ||
    fail "socket mode $(stat -c %a "$sock"): others may connect"
grep -q "^NBD URI: nbd+unix:///?socket=$sock\$" "$tmp/out"
nbdcopy "nbd+unix:///?socket=$sock" "$tmp/served.img"
cmp "$tmp/served.img" "$tmp/disk.img"

# A live socket: refused.
expect_fail bootback serve vm --socket "$sock" --background 2>"$tmp/err"
grep -q "a server is listening on it" "$tmp/err" || fail "live socket not refused"
nbdcopy "nbd+unix:///?socket=$sock" "$tmp/served2.img"    # still served
kill "$(cat "$pidf")"
for (( i = 0; i < 50; i++ )); do kill -0 "$(cat "$pidf")" 2>/dev/null || break; sleep 0.1; done

# A stale socket of ours (nbdkit 1.32 leaves it behind): replaced.
[ -S "$sock" ] || python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$sock"
bootback serve vm --socket "$sock" --background > "$tmp/out"
pidf=$(sed -n 's/.*(pid file \(.*\))$/\1/p' "$tmp/out")
cleanup_fn 'kill $(cat "'"$pidf"'") 2>/dev/null; rm -rf "'"$(dirname "$pidf")"'"'
nbdcopy "nbd+unix:///?socket=$sock" "$tmp/served3.img"
cmp "$tmp/served3.img" "$tmp/disk.img"
kill "$(cat "$pidf")"
[ "$(stat -c %a "$tmp/sticky")" = 1777 ] || fail "directory mode changed"
echo "serve --socket ok"
