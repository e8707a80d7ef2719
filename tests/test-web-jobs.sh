#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback web: actions as jobs (POST /api/v1/jobs, GET /api/v1/jobs[/ID])
# against a server on 127.0.0.1, with the tiny image under TCG.
#   - refused before anything starts: no token 401, wrong content type
#     415, a body over 64 KiB 413 (by Content-Length and chunked), bad
#     JSON, unknown action, unknown argument, wrong type, a session or VM
#     name with '/' or '..' 400 naming the argument; POST elsewhere 405;
#     none of them makes a job;
#   - a lab-up definition in the request with a script check or an image
#     VM (a host program, a host file) or invalid is 400;
#   - prune, gc and backup (of a shut-off domain) jobs end done with the
#     CLI's result (a point removed,
#     the catalog agrees); a second backup after 8 MiB of the disk was
#     overwritten with random bytes is suspicious and runs the server's
#     BOOTBACK_ON_SUSPICIOUS hook with its point (the first did not); a
#     second job while its hook holds it is 429 (--max-jobs 1); a stop of
#     no session and a lab-down of no lab end failed naming it;
#   - instant: the job ends done with the session, which /api/v1/sessions
#     lists running; a stop job ends it
#     (the session is no longer running, its domain gone);
#   - migrate: a second session's job ends done with the bytes copied,
#     its progress at its total; the session is migrated, the VM runs;
#   - lab-up of HOME/lab-definitions/sb.yaml brings a sandbox up (listed
#     alive), lab-down takes it down (nothing left);
#   - verify: the job passes, the report's status in its result, its
#     phases moving; a verify of a VM without points fails naming it;
#   - a job whose process is killed fails ("killed by signal 9"); jobs
#     survive a restart, and one a kill -9 of the server left running is
#     failed "server stopped" by the next server.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"
source "$top_srcdir/tests/lib/instant.sh"
requires curl qemu-io
lab_test_start --repo sqlite3 nbdkit virsh
[ "$(id -u)" -eq 0 ] || skip "needs root (libvirtd, lab network)"
cleanup_fn instant_cleanup
export BOOTBACK_DOMAIN_TYPE=qemu

lab_point_files web1 21
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/web1.xml" \
    --time 20261101T000000Z >/dev/null
make_disk "$tmp/d.raw" 1000000
bootback import "$tmp/d.raw" --vm db --time 20261101T000000Z >/dev/null
make_disk "$tmp/d.raw" 1000000
bootback import "$tmp/d.raw" --vm db --time 20261102T000000Z >/dev/null
token=$(bootback web token add ci)

start_web () {
    local log=$1; shift
    "$BOOTBACK" web --listen 127.0.0.1:0 "$@" 2>"$log" &
    web_pid=$!
    cleanup_fn "kill $web_pid 2>/dev/null || true"
    wait_log "$log" "listening on" "$web_pid" || true
    port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$log")
    [ -n "$port" ] || fail "bootback web did not start: $(cat "$log")"
    url="http://127.0.0.1:$port"
}
cleanup_fn 'tail -n 40 "$tmp"/web*.log'
mkdir "$tmp/prod"
# the server's alert hook for suspicious points, as bootback backup's:
# it says it ran, then holds its job until $tmp/release (at most 40 s of
# its 60), a job that surely runs while a second is asked for
cat >"$tmp/alert-hook" <<EOF
#!/bin/sh
env | grep ^BOOTBACK_ >"$tmp/alerted.new" && mv "$tmp/alerted.new" "$tmp/alerted"
i=0
while [ ! -e "$tmp/release" ] && [ \$i -lt 400 ]; do sleep 0.1; i=\$((i + 1)); done
EOF
chmod +x "$tmp/alert-hook"
BOOTBACK_ON_SUSPICIOUS="$tmp/alert-hook" start_web "$tmp/web.log" --max-jobs 1 --migrate-dir "$tmp/prod"

# post BODY [CURL-ARGS...]: the status; the answer in $tmp/body
post () {
    local body=$1; shift
    curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $token" \
        -H "Content-Type: ${ctype:-application/json}" "$@" --data-binary "$body" "$url/api/v1/jobs"
}
get () {
    curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $token" "$url$1"
}
json () {
    python3 -c 'import json,sys; j = json.load(open(sys.argv[1])); assert eval(sys.argv[2]), (sys.argv[2], j)' \
        "$tmp/body" "$1" || fail "$1"
}
expect_post () {
    local want=$1 body=$2; shift 2
    local got; got=$(post "$body" "$@")
    [ "$got" = "$want" ] || fail "POST $body: status $got, want $want: $(cat "$tmp/body")"
}
jobs_total () {
    get /api/v1/jobs >/dev/null
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"])' "$tmp/body"
}
# wait_job ID SECONDS: poll until it ended; its phases, in order, in $tmp/phases
wait_job () {
    local id=$1 i state
    : >"$tmp/phases"
    for (( i = 0; i < $2 * slow * 10; i++ )); do
        get "/api/v1/jobs/$id" >/dev/null
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["progress"]["phase"])' \
            "$tmp/body" >>"$tmp/phases"
        state=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"])' "$tmp/body")
        [ "$state" = done ] || [ "$state" = failed ] && return 0
        sleep 0.1
    done
    fail "job $id did not end in $2 s: $(cat "$tmp/body")"
}
new_job () {
    expect_post 202 "$1"
    python3 -c 'import json,sys; j = json.load(open(sys.argv[1])); assert j["href"] == "/api/v1/jobs/%d" % j["id"]; print(j["id"])' "$tmp/body"
}

# --- refused before anything starts -------------------------------------
got=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
      --data-binary '{"action":"gc"}' "$url/api/v1/jobs")
[ "$got" = 401 ] || fail "POST without a token: $got"
ctype=text/plain expect_post 415 '{"action":"gc"}'
ctype='application/jsonx' expect_post 415 '{"action":"gc"}'
json '"application/json" in j["error"]'
head -c 70000 /dev/zero | tr '\0' ' ' >"$tmp/big"
expect_post 413 "@$tmp/big"
json '"too large" in j["error"]'
expect_post 413 "@$tmp/big" -H 'Transfer-Encoding: chunked'
expect_post 400 '{"action":'
json 'j["error"].startswith("request body: not JSON")'
expect_post 400 '[1]'
expect_post 400 '{"action":"reboot"}'
json 'j["error"].startswith("unknown action \x27reboot\x27")'
expect_post 400 '{"action":"gc","force":true}'
json '"unknown argument \x27force\x27" in j["error"]'
expect_post 400 '{"action":"gc","dry_run":"yes"}'
json '"\x27dry_run\x27 is not true or false" in j["error"]'
expect_post 400 '{"action":"stop","session":"../etc"}'
json '"\x27session\x27 is not a session id or name" in j["error"]'
expect_post 400 '{"action":"stop","session":"a/b"}'
expect_post 400 '{"action":"verify","vm":"web1..x"}'
json '"\x27vm\x27" in j["error"]'
expect_post 400 '{"action":"migrate","session":"1","to":"relative/dir"}'
expect_post 400 '{"action":"migrate","session":"1","to":"/srv/../etc"}'
# only the administrator's --migrate-dir, never a file or another directory
expect_post 400 "{\"action\":\"migrate\",\"session\":\"1\",\"to\":\"$tmp/prod/x.raw\"}"
json '"--migrate-dir" in j["error"]'
expect_post 400 "{\"action\":\"migrate\",\"session\":\"1\",\"to\":\"$BOOTBACK_HOME/lab-definitions\"}"
json '"--migrate-dir" in j["error"]'
expect_post 400 '{"action":"instant"}'
json '"\x27vm\x27 is missing" in j["error"]'
expect_post 400 '{"action":"lab-up","name":"x","definition":"y"}'
expect_post 400 '{"action":"gc","action":"prune"}'
# a definition sent in a request may not run a host program or boot a host file
def='name: x\nnetwork: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }\nverify:\n  - name: web1\n    point: latest\n    checks:\n      - heartbeat\n      - script /bin/true\n'
expect_post 400 "{\"action\":\"lab-up\",\"definition\":\"$def\"}"
json '"runs a host program" in j["error"]'
def='name: x\nnetwork: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }\nverify:\n  - name: w\n    image: /etc/shadow\n'
expect_post 400 "{\"action\":\"lab-up\",\"definition\":\"$def\"}"
json '"host file" in j["error"]'
def='name: x\nnetwork: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }\nverify:\n  - name: web1\n    checks:\n      - heartbeat\n      - scan rules /etc/shadow\n'
expect_post 400 "{\"action\":\"lab-up\",\"definition\":\"$def\"}"
json '"reads host files" in j["error"]'
expect_post 400 '{"action":"lab-up","definition":"nonsense: ["}'
json '"not a valid lab definition" in j["error"]'
got=$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $token" \
      -H 'Content-Type: application/json' --data-binary '{}' "$url/api/v1/points")
[ "$got" = 405 ] || fail "POST /api/v1/points: $got"
[ "$(jobs_total)" = 0 ] || fail "a refused request made a job"

# --- roles: a token does what its role allows, no more ---------------------
# (before roles, every token could prune and gc: a metrics scraper's too)
reader=$(bootback web token add scraper --role read 2>/dev/null)
oper=$(bootback web token add oncall --role operate 2>/dev/null)
expect_fail bootback web token add x --role root 2>"$tmp/err"
grep -q "'root' is not a role (one of read, operate, admin)" "$tmp/err" || fail "bad role: $(cat "$tmp/err")"
bootback web token list | grep -q '^scraper  *read  ' || fail "token list: $(bootback web token list)"
bootback web token list --json | python3 -c '
import json, sys
roles = {t["name"]: t["role"] for t in json.load(sys.stdin)}
assert roles == {"ci": "admin", "oncall": "operate", "scraper": "read"}, roles' ||
    fail "token list --json roles"
[ "$(token=$reader get /api/v1/points)" = 200 ] || fail "a read token cannot GET"
for body in '{"action":"gc"}' '{"action":"stop","session":"nosuch"}'; do
    token=$reader expect_post 403 "$body"
    json '"needs a token of role" in j["error"] and "this one\x27s is read" in j["error"]'
done
token=$oper expect_post 403 '{"action":"gc","dry_run":true}'
json 'j["error"] == "action gc needs a token of role admin; this one\x27s is operate"'
token=$oper expect_post 403 '{"action":"prune","vm":"db","keep_last":1}'
# a stop that discards the guest's writes deletes data: admin's
token=$oper expect_post 403 '{"action":"stop","session":"nosuch","discard":true}'
json 'j["error"] == "action stop with these arguments needs a token of role admin; this one\x27s is operate"'
# a browser session has its token's role
curl -s -o /dev/null -D "$tmp/hdr" -X POST -H "Authorization: Bearer $reader" "$url/login"
cookie=$(sed -n 's/^Set-Cookie: \(bootback_session=[0-9a-f]*\);.*/\1/pi' "$tmp/hdr")
curl -s -o "$tmp/body" -H "Cookie: $cookie" "$url/session"
json 'j["user"] == "scraper" and j["role"] == "read"'
csrf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf"])' "$tmp/body")
got=$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Cookie: $cookie" -H "X-CSRF-Token: $csrf" \
      -H 'Content-Type: application/json' --data-binary '{"action":"gc"}' "$url/api/v1/jobs")
[ "$got" = 403 ] || fail "a read token's session started gc: $got"
[ "$(jobs_total)" = 0 ] || fail "a refused role made a job"
id=$(token=$oper new_job '{"action":"stop","session":"nosuch"}')
wait_job "$id" 30
json 'j["state"] == "failed" and j["action"] == "stop"'

# --- prune and gc; a failing stop ------------------------------------------
id=$(new_job '{"action":"prune","vm":"db","keep_last":1}')
wait_job "$id" 30
json 'j["state"] == "done" and j["action"] == "prune" and j["args"] == {"vm": "db", "keep_last": 1}'
json 'j["result"]["removed"] == 1 and j["result"]["kept"] == 1 and j["error"] is None'
json '[p["action"] for p in j["result"]["points"]] == ["keep", "remove"]'
json 'j["started"].endswith("Z") and j["ended"] >= j["started"]'
[ "$(bootback points db --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] ||
    fail "prune job: db has not 1 point left"
# gc keeps unreferenced chunks younger than its margin: these are old
find "$tmp/repo/chunks" -type f -exec touch -d '1 hour ago' {} +
id=$(new_job '{"action":"gc"}')
wait_job "$id" 30
json 'j["state"] == "done" and j["result"]["removed"] >= 1 and j["progress"]["done"] == j["progress"]["total"]'
bootback repo check >/dev/null || fail "repo check after the gc job"
# a backup of a shut-off domain (its qcow2 read in full)
qemu-img convert -O qcow2 "$TINY_IMG" "$tmp/bk.qcow2"
"$top_srcdir/images/domain-xml" NAME=bk DISK_PATH="$tmp/bk.qcow2" DISK_FORMAT=qcow2 \
    NET_TYPE=none >"$tmp/bk.xml"
virsh -q define "$tmp/bk.xml" >/dev/null
id=$(new_job '{"action":"backup","vm":"bk"}')
wait_job "$id" 300
json 'j["state"] == "done" and j["result"]["vm"] == "bk" and j["result"]["kind"] == "full", j["error"]'
json 'j["result"]["bytes_read"] > 0 and j["progress"]["total"] > 0 and j["result"]["score"] is not None'
bootback points bk --json | python3 -c '
import json, sys
p = json.load(sys.stdin)
assert [x["id"] for x in p] == [sys.argv[1]], p' "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["id"])' "$tmp/body")" ||
    fail "the backup job's point is not listed"
[ ! -e "$tmp/alerted" ] || fail "the first point of bk alerted"
# 8 MiB of the disk's data overwritten with random bytes, as ransomware
# encrypting in place does: the next backup job's point is suspicious,
# and the server's hook runs for it
head -c $((8 << 20)) /dev/urandom >"$tmp/rand"
qemu-io -f qcow2 -c "write -s $tmp/rand 2M 8M" "$tmp/bk.qcow2" >/dev/null
id=$(new_job '{"action":"backup","vm":"bk"}')
# While its hook holds it, the job runs: a second job is 429 (--max-jobs
# 1).  (This was asked beside an instant job with no agent wait, which a
# loaded host could finish before the next request came.)
for (( i = 0; i < 3000 * slow; i++ )); do
    [ -e "$tmp/alerted" ] && break
    sleep 0.1
done
[ -e "$tmp/alerted" ] || fail "the suspicious point's hook did not run"
expect_post 429 '{"action":"gc"}'
json '"--max-jobs" in j["error"]'
touch "$tmp/release"
wait_job "$id" 300
json 'j["state"] == "done" and j["result"]["score"]["suspicious"], j["result"]'
bk2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["id"])' "$tmp/body")
grep -qx "BOOTBACK_POINT=bk@$bk2" "$tmp/alerted" && grep -qx "BOOTBACK_VM=bk" "$tmp/alerted" ||
    fail "the suspicious point's hook did not run: $(cat "$tmp/alerted" 2>&1)"
id=$(new_job '{"action":"stop","session":"nosuch"}')
wait_job "$id" 30
json 'j["state"] == "failed" and "nosuch" in j["error"] and "\n" not in j["error"]'
id=$(new_job '{"action":"lab-down","lab":"abcdef"}')
wait_job "$id" 30
json 'j["state"] == "failed" and j["error"].startswith("no lab abcdef")'

# --- instant, sessions, stop ----------------------------------------------------
id=$(new_job '{"action":"instant","vm":"web1","network":"none","agent_timeout":0}')
wait_job "$id" 300
json 'j["state"] == "done", j["error"]'
json 'j["result"]["state"] == "running" and j["result"]["vm"] == "web1"'
sid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["id"])' "$tmp/body")
sname=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["name"])' "$tmp/body")
json 'j["progress"] == {"done": 1, "total": 1, "phase": "done"}'
[ "$(virsh domstate "$sname")" = running ] || fail "the session's VM does not run"
get /api/v1/sessions >/dev/null
json "[s['state'] for s in j['sessions'] if s['id'] == $sid] == ['running']"
id=$(new_job "{\"action\":\"stop\",\"session\":\"$sid\",\"discard\":true}")
wait_job "$id" 120
json 'j["state"] == "done" and j["result"]["discarded"] is True'
get /api/v1/sessions >/dev/null
json "[s['state'] for s in j['sessions'] if s['id'] == $sid and s['state'] == 'running'] == []"
if virsh domstate "$sname" >/dev/null 2>&1; then fail "the session's domain is left"; fi

# --- migrate: a second session moved to "production" storage ------------------
id=$(new_job '{"action":"instant","vm":"web1","name":"m1","network":"none","agent_timeout":0}')
wait_job "$id" 300
json 'j["state"] == "done", j["error"]'
sid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["id"])' "$tmp/body")
cleanup_fn "virsh -q destroy m1 >/dev/null 2>&1; virsh -q undefine m1 >/dev/null 2>&1"
id=$(new_job "{\"action\":\"migrate\",\"session\":\"$sid\",\"to\":\"$tmp/prod\"}")
wait_job "$id" 600
json 'j["state"] == "done" and j["result"]["bytes"] > 0, j["error"]'
json 'j["progress"]["total"] > 0 and j["progress"]["done"] == j["progress"]["total"]'
get /api/v1/sessions >/dev/null
json "[s['state'] for s in j['sessions'] if s['id'] == $sid] == ['migrated']"
[ "$(virsh domstate m1)" = running ] || fail "the migrated VM does not run"
ls "$tmp/prod"/m1-* >/dev/null || fail "no image in $tmp/prod: $(ls "$tmp/prod")"

# --- verify ----------------------------------------------------------------------
id=$(new_job '{"action":"verify","vm":"web1","point":"20261101T000000Z"}')
wait_job "$id" 600
json 'j["state"] == "done" and j["result"]["status"] == "passed", j.get("error")'
json 'j["progress"]["done"] == 1 and j["progress"]["total"] == 1'
[ "$(sort -u "$tmp/phases" | wc -l)" -ge 3 ] || fail "verify: the progress did not move: $(cat "$tmp/phases")"
bootback history web1 --json | python3 -c '
import json, sys
assert any(r["status"] in ("pass", "passed") for r in json.load(sys.stdin))' || fail "the verify job is not in the history"
id=$(new_job '{"action":"verify","vm":"nobody"}')
wait_job "$id" 60
json 'j["state"] == "failed" and "nobody" in j["error"]'

# (instant jobs that wait for the guest agent's heartbeat: tens of seconds)
# --- lab-up and lab-down: a sandbox of the administrator's definition ---------
mkdir -p "$BOOTBACK_HOME/lab-definitions"
cat >"$BOOTBACK_HOME/lab-definitions/sb.yaml" <<EOF
name: sb
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
verify:
  - name: web1
    point: 20261101T000000Z
    address: 10.77.0.21
    checks: [heartbeat, scan]
EOF
# the scan check runs in a job as in bootback lab run (HOME/scan/'s
# signatures: one that matches nothing in the guest)
mkdir -p "$BOOTBACK_HOME/scan"
echo "$(printf 'no such file here %s' "$$" | md5sum | cut -d' ' -f1):21:Test.Nothing" \
    > "$BOOTBACK_HOME/scan/none.hdb"
id=$(new_job '{"action":"lab-up","name":"sb","lease":"20m"}')
wait_job "$id" 600
json 'j["state"] == "done" and j["result"]["status"] == "passed", j["error"]'
json '[c["status"] for v in j["result"]["vms"] for c in v["checks"] if c["kind"] == "scan"] == ["pass"], j["result"]'
lab=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["run"])' "$tmp/body")
cleanup_fn "bootback lab down $lab >/dev/null 2>&1"
get /api/v1/labs >/dev/null
json "[(l['kind'], l['alive']) for l in j['labs'] if l['id'] == '$lab'] == [('sandbox', True)]"
id=$(new_job "{\"action\":\"lab-down\",\"lab\":\"$lab\"}")
wait_job "$id" 300
json 'j["state"] == "done" and j["result"]["lab"] == "'"$lab"'"'
get /api/v1/labs >/dev/null
json "[l for l in j['labs'] if l['id'] == '$lab'] == []"
lab_assert_gone "$lab"

# --- a killed job, a restart, a killed server --------------------------------------
id=$(new_job '{"action":"instant","vm":"web1","name":"k1","network":"none","agent_timeout":120}')
sleep 2
child=$(pgrep -P "$web_pid" | head -n 1 || true)
[ -n "$child" ] || fail "no process of job $id"
kill -9 "$child"
wait_job "$id" 30
json 'j["state"] == "failed" and j["error"] == "job process killed by signal 9"'
total=$(jobs_total)
kill "$web_pid"; wait "$web_pid" || true
start_web "$tmp/web2.log" --max-jobs 1
[ "$(jobs_total)" = "$total" ] || fail "the jobs did not survive a restart"
id=$(new_job '{"action":"instant","vm":"web1","name":"k2","network":"none","agent_timeout":120}')
sleep 2
kill -9 "$web_pid"; wait "$web_pid" || true
start_web "$tmp/web3.log"
get "/api/v1/jobs/$id" >/dev/null
json 'j["state"] == "failed" and j["error"] == "server stopped"'
grep -q "jobs left by a server that stopped are failed" "$tmp/web3.log" || fail "no word of the failed jobs: $(cat "$tmp/web3.log")"
if grep -q "$token" "$tmp"/web*.log; then fail "the token is in the log"; fi
echo PASS
