#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Evidence that cannot be edited afterwards (issue 15, item 5).  A real
# `bootback verify` (one VM boot) writes its three reports signed with the
# appliance key, made on first use (0600 in a 0700 directory), and records
# the run in the catalog's hash chain, its hash in report.json:
#   - `bootback report verify` says each report has a good signature
#     (exit 0), also with the public key copied elsewhere (--key), and
#     --json says the same;
#   - one byte of report.json changed: exit 2, naming the file, "changed";
#   - checked with another key: exit 2, "signed by another key";
#   - no signature file: exit 1 (cannot check);
#   - `bootback history --check` is intact (exit 0, 1 run), and after a
#     row of the run is edited with sqlite3 it is broken (exit 2), naming
#     the run.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start --repo nbdkit sqlite3 openssl
lab_point_files web1 21
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/web1.xml" >/dev/null

r=$tmp/r
bootback verify web1 --address 10.77.0.21 --check tcp\ 7 --report-dir "$r" \
    >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/out" "$tmp/err"; fail "verify web1"; }
cat "$tmp/out" "$tmp/err"
grep -qi "not signed" "$tmp/err" && fail "the reports were not signed"

keys=$BOOTBACK_HOME/keys
[ "$(stat -c %a "$keys")" = 700 ] || fail "$keys is not 0700"
[ "$(stat -c %a "$keys/report-ed25519.pem")" = 600 ] || fail "the key is not 0600"
fpr=$(openssl pkey -pubin -in "$keys/report-ed25519.pub.pem" -outform DER |
      tail -c 32 | sha256sum | cut -d' ' -f1)

for f in report.json report.html junit.xml; do
    [ -f "$r/$f.sig" ] || fail "$f has no signature file"
    out=$(bootback report verify "$r/$f") || fail "report verify $f: exit $?"
    [ "$out" = "$r/$f: good signature, key SHA256:$fpr" ] ||
        fail "report verify $f said: $out"
done

# an auditor's copies elsewhere, the public key given
mkdir "$tmp/audit"
cp "$keys/report-ed25519.pub.pem" "$r/report.json" "$r/report.json.sig" "$tmp/audit/"
bootback report verify --key "$tmp/audit/report-ed25519.pub.pem" "$tmp/audit/report.json" ||
    fail "report verify --key on a copy"
bootback report verify --json "$r/report.json" "$r/junit.xml" >"$tmp/j"
python3 - "$tmp/j" "SHA256:$fpr" <<'EOP' || fail "report verify --json"
import json, sys
j = json.load(open(sys.argv[1]))
assert [x["verdict"] for x in j] == ["good", "good"], j
assert all(x["signed_by"] == sys.argv[2] for x in j), j
EOP

# the run's chain hash is in the signed report.json and in the catalog
python3 - "$r/report.json" "$BOOTBACK_HOME/catalog.db" <<'EOP' || fail "chain hash"
import json, sqlite3, sys
ev = json.load(open(sys.argv[1]))["evidence"]
assert ev["signed"] is True, ev
db = sqlite3.connect(sys.argv[2])
(h,) = db.execute("SELECT hash FROM lab_runs WHERE id = ?", (ev["chain"]["catalog_id"],)).fetchone()
assert h == ev["chain"]["hash"] and len(h) == 64, (h, ev)
EOP
run=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["run"])' "$r/report.json")
expect_rc 0 bootback history --check
grep -q "chain intact, 1 run checked" "$tmp/out" || { cat "$tmp/out"; fail "history --check"; }

# one byte of report.json changed
cp "$r/report.json" "$tmp/report.json.orig"
sed -i '0,/"passed"/s//"failed"/' "$r/report.json"
cmp -s "$r/report.json" "$tmp/report.json.orig" && fail "the test did not change report.json"
expect_rc 2 bootback report verify "$r/report.json" "$r/report.html"
grep -q "$r/report.json: BAD signature: the file was changed" "$tmp/err" ||
    fail "a changed report.json is not named"
grep -q "$r/report.html" "$tmp/err" && fail "the unchanged report.html was blamed"
cp "$tmp/report.json.orig" "$r/report.json"

# another key
openssl genpkey -algorithm ed25519 -out "$tmp/other.pem" 2>/dev/null
openssl pkey -in "$tmp/other.pem" -pubout -out "$tmp/other.pub.pem"
expect_rc 2 bootback report verify --key "$tmp/other.pub.pem" "$r/report.json"
grep -q "$r/report.json: signed by another key, SHA256:$fpr" "$tmp/err" ||
    fail "another key: not said which"

# no signature: cannot check
rm "$r/junit.xml.sig"
expect_rc 1 bootback report verify "$r/junit.xml"
grep -q "cannot check: $r/junit.xml: not signed (no $r/junit.xml.sig)" "$tmp/err" || fail "no .sig: not said"

# a row of the run edited in the catalog
sqlite3 "$BOOTBACK_HOME/catalog.db" "UPDATE lab_vms SET status = 'pass', t_app_ready = 1.5"
expect_rc 2 bootback history --check
grep -q "chain BROKEN at run #[0-9]* $run (lab [^,]*, started [0-9T:Z-]*): edited" "$tmp/err" ||
    fail "history --check does not name the edited run"
echo ok
