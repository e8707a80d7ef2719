#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# catalog_points_sync, on every command that opens the repository, reads
# the manifest of each point directory the catalog does not list.  A
# directory without a manifest (an unfinished import, or thousands planted
# under points/VM/ by anyone who can write the share) used to be read
# again by every command: 3000 planted directories, 3000 more repository
# operations per command (on S3 a request each).  Now a directory seen
# without a manifest is remembered and read again only after
# UNFINISHED_RECHECK seconds, and a sync makes at most UNFINISHED_READS
# reads that find no manifest, earliest due first
# (recovery/catalog/catalog.c).  A point whose manifest comes late (written
# by another host into a shared repository) still appears once its
# directory is due again, and planted directories, however named, cannot
# keep a point out for good.
source "$top_srcdir/tests/functions.sh"
requires sqlite3 python3

repo=$tmp/repo
db=$BOOTBACK_HOME/catalog.db
bootback repo init "$repo" >/dev/null
make_disk "$tmp/a.raw" $(( 2 * 1024 * 1024 ))
bootback import "$tmp/a.raw" --vm web --time 20261101T010000Z >/dev/null

# ops NAME: the repository operations of 'bootback points --json'
ops () {
    BOOTBACK_FAULT=count bootback points --json >"$tmp/$1.json" 2>"$tmp/$1.err" ||
        { cat "$tmp/$1.err"; fail "points $1"; }
    n=$(sed -n 's/^bootback-fault: \([0-9]*\) ops.*/\1/p' "$tmp/$1.err" | tail -1)
    [ -n "$n" ] || { cat "$tmp/$1.err"; fail "no operation count"; }
    echo "$n"
}
# has ID: whether the listing NAME has web@ID
has () {
    python3 - "$tmp/$1.json" "$2" <<'PY'
import json, sys
sys.exit(0 if any(p["point"] == "web@" + sys.argv[2] for p in json.load(open(sys.argv[1]))) else 1)
PY
}
base=$(ops base)

python3 - "$repo/points/web" <<'PY'
import os, sys, datetime
t = datetime.datetime(2001, 1, 1)
for i in range(3000):
    os.mkdir(os.path.join(sys.argv[1], (t + datetime.timedelta(hours=i)).strftime("%Y%m%dT%H%M%SZ")))
PY
ops first >/dev/null
second=$(ops second)
echo "repository operations of 'points': $base without planted directories," \
     "$second on the second command with 3000 planted"
[ "$second" -le $((base + 100)) ] ||
    fail "3000 manifest-less point directories cost $((second - base)) operations on the second command"
# no command reads them all, however many run
for i in 1 2 3; do
    n=$(ops more$i)
    [ "$n" -le $((base + 100)) ] || fail "command $i after: $((n - base)) operations"
done

# the first command read the newest first and recorded the rest as due
# (each read one due 600 s later); a directory removed is forgotten by
# the next command
count () { sqlite3 "$db" "SELECT count(*) FROM unfinished_dirs $1"; }
[ "$(count "")" = 3000 ] || fail "$(count "") of 3000 directories recorded"
newest=$(ls "$repo/points/web" | grep ^2001 | tail -1)
[ "$(count "WHERE point = '$newest' AND due > strftime('%s','now')")" = 1 ] ||
    fail "the newest directory was not read first"
rm -r "$repo/points/web/$newest"
ops gone >/dev/null
[ "$(count "WHERE point = '$newest'")" = 0 ] || fail "a directory gone is still remembered"
# the rest go (the late point below waits behind none of them)
rm -r "$repo/points/web"/2001*
ops cleared >/dev/null
[ "$(count "")" = 0 ] || fail "$(count "") directories gone are still remembered"

# A late manifest: a directory seen without one, then completed (the
# files of a real point of another repository copied in, the manifest
# last, as a writer does), shows up once its directory is due again; the
# time it was read is moved back here instead of waiting.
late=20300101T000000Z
bootback repo init "$tmp/other" >/dev/null
bootback --repo "$tmp/other" import "$tmp/a.raw" --vm web --time $late >/dev/null
export BOOTBACK_REPO=$repo     # init made the other one the default
mkdir "$repo/points/web/$late"
ops late1 >/dev/null
[ "$(sqlite3 "$db" "SELECT count(*) FROM unfinished_dirs WHERE vm = 'web' AND point = '$late'")" = 1 ] ||
    fail "the directory without a manifest was not remembered"
cp -rn "$tmp/other/chunks/." "$repo/chunks/"
(cd "$tmp/other/points/web/$late" && cp $(ls | grep -v manifest.json) "$repo/points/web/$late/" &&
     cp manifest.json "$repo/points/web/$late/")
ops late2 >/dev/null
! has late2 $late || fail "read again before it was due (the rule changed? fix this test)"
sqlite3 "$db" "UPDATE unfinished_dirs SET due = due - 600"
ops late3 >/dev/null
has late3 $late || fail "the late point did not show up once its directory was due"
[ "$(sqlite3 "$db" "SELECT count(*) FROM unfinished_dirs WHERE point = '$late'")" = 0 ] ||
    fail "the completed point is still remembered as unfinished"
bootback restore "web@$late" --to "$tmp/late.raw" >/dev/null
cmp "$tmp/a.raw" "$tmp/late.raw"

# repo sync records no point: a directory it completes that a sync saw
# unfinished (a killed repo sync's) is read by the next command at once
synced=20300102T000000Z
mkdir "$repo/points/web/$synced"
ops synced1 >/dev/null
[ "$(sqlite3 "$db" "SELECT count(*) FROM unfinished_dirs WHERE point = '$synced'")" = 1 ]
bootback --repo "$tmp/other" import "$tmp/a.raw" --vm web --time $synced >/dev/null
bootback repo sync "$tmp/other" "$repo" >/dev/null
ops synced2 >/dev/null
has synced2 $synced || fail "a point repo sync wrote into a directory seen unfinished did not show up"

# repo reindex reads every directory and forgets what syncs saw
bootback repo reindex | grep -q "3 restore points"
[ "$(count "")" = 0 ] || fail "repo reindex kept what syncs saw"

# Directories planted with ids newer than a real point's, and commands
# rarer than the recheck (every record aged past due before each): an
# import killed after its manifest, before its row (BOOTBACK_CRASH_STEP=3,
# what a sync exists for), is still listed by the second command (the
# first reads the 8 planted due before it and 24 more; newest-first order
# alone read the 32 newest planted ones every time, for good).
python3 - "$repo/points" <<'PY'
import os, sys
os.mkdir(os.path.join(sys.argv[1], "zz"))
for i in range(40):
    os.mkdir(os.path.join(sys.argv[1], "zz", "2099%02d%02dT000000Z" % (1 + i // 28, 1 + i % 28)))
PY
ops starve0 >/dev/null
killed=20261201T000000Z
expect_fail env BOOTBACK_CRASH_STEP=3 bootback import "$tmp/a.raw" --vm web --time $killed
[ -f "$repo/points/web/$killed/manifest.json" ] || fail "the killed import left no manifest"
for round in 1 2 3; do
    sqlite3 "$db" "UPDATE unfinished_dirs SET due = due - 601"
    ops starve$round >/dev/null
    ! has starve$round $killed || break
done
has starve$round $killed || fail "40 planted newer directories kept web@$killed out of the catalog"
[ "$round" -le 2 ] || fail "web@$killed was listed only by command $round"
bootback restore "web@$killed" --to "$tmp/killed.raw" >/dev/null
cmp "$tmp/a.raw" "$tmp/killed.raw"
