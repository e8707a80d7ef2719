#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Nothing bootback keeps is readable by other local users, whatever the
# umask: under umask 000, a repository, its chunks, indexes, manifests and
# domain XML, the catalog, restored images (raw and qcow2) are 0700/0600,
# and the user nobody gets "Permission denied" reading each of them or
# serving the repository with nbdkit.  bootback repo init on an existing
# directory (an empty one, or a repository made 0755/0644 by an older
# bootback, which every command warns about) tightens it, says so, and
# the points stay readable.  A
# catalog made 0644 is tightened when it is next opened.
source "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-nbd runuser nbdkit nbdinfo python3
[ "$(id -u)" -eq 0 ] || skip "needs root (runs readers as the user nobody)"
id nobody >/dev/null 2>&1 || skip "no user nobody"

# nobody may traverse everything down to bootback's own directories, so
# that each denial below comes from the modes bootback set.
chmod 0755 "$tmp"
plugin=$tmp/nbdkit-bootback-plugin.so
install -m 0755 "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" "$plugin"
export BOOTBACK_HOME=$tmp/bbhome
umask 000

# denied FILE...: nobody cannot read any of them, and is told why
denied () {
    local f
    for f in "$@"; do
        [ -e "$f" ] || fail "$f does not exist"
        if runuser -u nobody -- cat "$f" >/dev/null 2>"$tmp/err"; then
            fail "nobody could read $f ($(stat -c %A "$f"))"
        fi
        grep -q "Permission denied" "$tmp/err" ||
            fail "reading $f as nobody: expected Permission denied, got: $(cat "$tmp/err")"
    done
}
# private PATH...: nothing in these trees has group or other permissions
private () {
    local bad
    bad=$(find "$@" -perm /077 -printf '%m %p\n')
    [ -z "$bad" ] || fail "readable by others:"$'\n'"$bad"
}

repo=$tmp/repo
bootback repo init --chunk-size 64K "$repo"
make_disk "$tmp/a.raw" $(( 1024 * 1024 + 12345 ))
chmod 0644 "$tmp/a.raw"
echo '<domain type="kvm"><name>web</name></domain>' >"$tmp/web.xml"
bootback import "$tmp/a.raw" --vm web --domain-xml "$tmp/web.xml"
bootback points | grep -q "web@" || fail "points does not list web"
mkdir -m 0755 "$tmp/out"
bootback restore web --to "$tmp/out/web.raw"
bootback restore web --to "$tmp/out/web.qcow2" --format qcow2
cmp "$tmp/a.raw" "$tmp/out/web.raw"

private "$repo" "$BOOTBACK_HOME" "$tmp/out/web.raw" "$tmp/out/web.qcow2"
id=$(latest_id web)
chunk=$(find "$repo/chunks" -type f | head -n1)
denied "$chunk" "$repo/points/web/$id/vda.fidx" \
       "$repo/points/web/$id/manifest.json" "$repo/points/web/$id/domain.xml" \
       "$repo/bootback-repo.json" "$BOOTBACK_HOME/catalog.db" \
       "$tmp/out/web.raw" "$tmp/out/web.qcow2"
if runuser -u nobody -- ls "$repo" >/dev/null 2>"$tmp/err"; then
    fail "nobody could list $repo"
fi
# the plugin as nobody: the repository cannot be opened
if runuser -u nobody -- nbdkit -U - "$plugin" repo="$repo" point=web@latest \
       disk=vda --run 'nbdinfo "$uri"' >"$tmp/out.nbd" 2>&1; then
    fail "nobody could serve $repo with nbdkit: $(cat "$tmp/out.nbd")"
fi
grep -q "Permission denied" "$tmp/out.nbd" ||
    fail "nbdkit as nobody: expected Permission denied, got: $(cat "$tmp/out.nbd")"
# ... which root (the owner) can
nbdkit -U - "$plugin" repo="$repo" point=web@latest disk=vda \
    --run 'nbdinfo --size "$uri"' | grep -qx $(( 1024 * 1024 + 12345 ))

# An empty directory made 0755 by someone else: init tightens it, says so.
mkdir -m 0755 "$tmp/empty"
bootback repo init "$tmp/empty" >"$tmp/init.out"
cat "$tmp/init.out"
grep -q "^created repository $tmp/empty" "$tmp/init.out" || fail "init did not create"
grep -q "tightened permissions of $tmp/empty (was 0755, now 0700)" "$tmp/init.out" ||
    fail "init did not say it tightened $tmp/empty"
private "$tmp/empty"

# A repository as an older bootback left it: directories 0755, files
# 0644.  init tightens everything in place; the point is still there.
old=$tmp/old
cp -a "$repo" "$old"
find "$old" -type d -exec chmod 0755 {} +
find "$old" -type f -exec chmod 0644 {} +
echo outside >"$tmp/victim" && chmod 0644 "$tmp/victim"
mkdir -m 0755 "$tmp/victims" && cp -p "$tmp/victim" "$tmp/victims/"
ln -s "$tmp/victim" "$old/points/link"     # neither is followed
ln -s "$tmp/victims" "$old/chunks/linkdir"
nd=$(find "$old" -type d | wc -l) nf=$(find "$old" -type f | wc -l)
# every command on it warns until then
bootback --repo "$old" points >/dev/null 2>"$tmp/err"
grep -q "warning: $old is open to other users (mode 0755): run 'bootback repo init $old'" \
    "$tmp/err" || fail "no warning about a repository open to others: $(cat "$tmp/err")"
bootback repo init "$old" >"$tmp/init.out"
cat "$tmp/init.out"
grep -q "^existing repository $old" "$tmp/init.out" || fail "init did not find the repository"
grep -q "tightened permissions of $old (was 0755, now 0700): $nd directories and $nf files" \
    "$tmp/init.out" || fail "init did not say what it tightened"
[ "$(stat -c %a "$tmp/victim") $(stat -c %a "$tmp/victims") $(stat -c %a "$tmp/victims/victim")" \
  = "644 755 644" ] || fail "init followed a symbolic link out of the repository"
rm "$old/points/link" "$old/chunks/linkdir"
private "$old"
denied "$old/points/web/$id/manifest.json" "$(find "$old/chunks" -type f | head -n1)"
bootback --repo "$old" restore web --to "$tmp/out/old.raw" 2>"$tmp/err"
! grep -q "open to other users" "$tmp/err" || fail "warned after init"
cmp "$tmp/a.raw" "$tmp/out/old.raw"
# a second init has nothing left to tighten
bootback repo init "$old" >"$tmp/init.out"
! grep -q tightened "$tmp/init.out" || fail "second init tightened again"
# a directory with other files in it is still refused
mkdir "$tmp/full" && touch "$tmp/full/x"
expect_fail bootback repo init "$tmp/full" 2>"$tmp/err"
grep -q "directory is not empty" "$tmp/err"

# A catalog an older bootback made 0644 is tightened when next opened.
chmod 0644 "$BOOTBACK_HOME/catalog.db"
bootback points >/dev/null
[ "$(stat -c %a "$BOOTBACK_HOME/catalog.db")" = 600 ] || fail "catalog.db was not tightened"
echo "permissions ok"
