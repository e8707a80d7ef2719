#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# docs/openapi.yaml and the server agree:
#   - every route of the dispatch (web/api.c's web_api_get, web/server.c's
#     /metrics and POST /api/v1/jobs) is in the file, and every path and
#     method of the file is one of the dispatch's;
#   - every action of web/actions.c's table is in the file's Action, with
#     the same arguments and required ones, and no other;
#   - against a running server, every path and method of the file answers
#     (with its example values) with one of the statuses the file lists
#     for it, never an undocumented one.
source "$top_srcdir/tests/functions.sh"
requires curl python3
python3 -c 'import yaml' 2>/dev/null || skip "needs python3-yaml"

spec="$top_srcdir/docs/openapi.yaml"
bootback repo init "$tmp/repo" >/dev/null
make_disk "$tmp/a.raw" 1000000
bootback import "$tmp/a.raw" --vm web --time 20261101T010000Z >/dev/null
token=$(bootback web token add ci)

# --- the code's routes and actions against the file -----------------------
python3 - "$spec" "$top_srcdir/web" <<'EOF' || fail "docs/openapi.yaml and the code disagree"
import re, sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
web = sys.argv[2]
api = open(web + "/api.c").read()
server = open(web + "/server.c").read()
actions = open(web + "/actions.c").read()

dispatch = api[api.index("web_api_get (struct catalog *cat,"):]
code = set()
for name in re.findall(r'strcmp \(p, "([a-z]+)"\) == 0', dispatch):
    code.add(("get", "/api/v1/" + name))
for name in re.findall(r'strncmp \(p, "([a-z]+)/", \d+\) == 0', dispatch):
    code.add(("get", "/api/v1/" + name + "/*"))
for path in re.findall(r'strcmp \(url, "(/metrics)"\) == 0', server):
    code.add(("get", path))
if '"/api/v1/jobs") != 0' in server:
    code.add(("post", "/api/v1/jobs"))

documented = set()
for path, ops in spec["paths"].items():
    generic = re.sub(r"/\{[^}]+\}.*$", "/*", path)
    for method in ops:
        documented.add((method, generic))
bad = False
for r in sorted(code - documented):
    print("route of the server not in openapi.yaml:", r); bad = True
for r in sorted(documented - code):
    print("route of openapi.yaml the server does not have:", r); bad = True

table = actions[actions.index("static const struct action actions[] = {"):]
table = table[:table.index("\n};")]
coded = {}
for name, args in re.findall(r'\{ \{ "([a-z-]+)", WEB_ROLE_[A-Z]+, do_[a-z_]+ \},\s*\{(.*?)\} \}', table, re.S):
    coded[name] = {k: kind == "REQ" for kind, k in re.findall(r'(REQ|OPT) \("([a-z_]+)"', args)}
doc = {}
for o in spec["components"]["schemas"]["Action"]["oneOf"]:
    props = dict(o["properties"]); props.pop("action")
    req = set(o.get("required", [])) - {"action"}
    doc[o["title"]] = {k: k in req for k in props}
    assert o["properties"]["action"]["enum"] == [o["title"]], o["title"]
if coded != doc:
    print("actions in the code:", coded); print("actions in openapi.yaml:", doc); bad = True
if not coded or len(code) < 10:
    print("the code's tables were not found:", code, coded); bad = True
job_enum = spec["components"]["schemas"]["Job"]["properties"]["action"]["enum"]
if sorted(job_enum) != sorted(coded):
    print("Job.action's enum:", job_enum); bad = True
sys.exit(1 if bad else 0)
EOF

# --- each documented route answers as documented --------------------------
"$BOOTBACK" web --listen 127.0.0.1:0 2>"$tmp/web.log" &
web_pid=$!
cleanup_fn "kill $web_pid 2>/dev/null || true"
wait_log "$tmp/web.log" "listening on" "$web_pid" || true
port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$tmp/web.log")
[ -n "$port" ] || fail "bootback web did not start: $(cat "$tmp/web.log")"
curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data-binary '{"action":"gc","dry_run":true}' "http://127.0.0.1:$port/api/v1/jobs" >/dev/null

python3 - "$spec" "http://127.0.0.1:$port" "$token" <<'EOF' || fail "a route answers otherwise than documented"
import re, sys, yaml, urllib.request, urllib.error
spec, base, token = yaml.safe_load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
examples = {"vm": "web", "time": "20261101T010000Z", "id": "1"}
bodies = {"post": b'{"action":"gc","dry_run":true}'}
queries = {"/api/v1/history": "?vm=web"}
bad = False
for path, ops in spec["paths"].items():
    url = re.sub(r"\{([^}]+)\}", lambda m: examples[m.group(1)], path)
    for method, op in ops.items():
        req = urllib.request.Request(base + url + queries.get(path, ""),
                                     data=bodies.get(method), method=method.upper())
        req.add_header("Authorization", "Bearer " + token)
        req.add_header("Content-Type", "application/json")
        try:
            status = urllib.request.urlopen(req).status
        except urllib.error.HTTPError as e:
            status = e.code
        ok = {int(s) for s in op["responses"]}
        print(method.upper(), url, status)
        if status not in ok or status >= 300:
            print("  not a documented success:", sorted(ok)); bad = True
sys.exit(1 if bad else 0)
EOF
echo PASS
