#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The debian image's application health endpoint, behind nginx.

GET /health -> 200 and JSON when the data file matches its recorded
checksum and PostgreSQL answers with the expected row count of
bootback.items; 503 and JSON naming what failed otherwise.
Listens on 127.0.0.1:8080 (nginx proxies /health to it).
"""
import hashlib
import http.server
import json
import socket
import subprocess

DATA = "/srv/bootback/data.bin"
SUMS = "/srv/bootback/data.sha256"
DB_EXPECTED = "/srv/bootback/db.rows"


def conf(key, default=""):
    value = default
    try:
        with open("/etc/bootback/guest.conf") as f:
            for line in f:
                line = line.strip()
                if line.startswith(key + "="):
                    value = line[len(key) + 1:].strip("\"'")
    except OSError:
        pass
    return value


def check():
    r = {"identity": conf("IDENTITY", "debian"), "hostname": socket.gethostname(),
         "data": DATA}
    errors = []
    try:
        with open(SUMS) as f:
            r["expected"] = f.read().split()[0]
        h = hashlib.sha256()
        with open(DATA, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        r["sha256"] = h.hexdigest()
        if r["sha256"] != r["expected"]:
            errors.append("data file %s is corrupt" % DATA)
    except OSError as e:
        errors.append("data file %s: %s" % (DATA, e.strerror))
    try:
        with open(DB_EXPECTED) as f:
            expected_rows = int(f.read())
        p = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-t",
                            "-A", "-d", "bootback", "-c", "SELECT count(*) FROM items"],
                           capture_output=True, text=True, timeout=10)
        if p.returncode != 0:
            errors.append("database: " + p.stderr.strip())
        else:
            r["db_rows"] = int(p.stdout.strip())
            if r["db_rows"] != expected_rows:
                errors.append("database: %d rows, expected %d" % (r["db_rows"], expected_rows))
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        errors.append("database: %s" % e)
    r["status"] = "ok" if not errors else "failed"
    if errors:
        r["error"] = "; ".join(errors)
    return r


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] != "/health":
            self.send_error(404)
            return
        r = check()
        body = (json.dumps(r, separators=(",", ":")) + "\n").encode()
        self.send_response(200 if r["status"] == "ok" else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", 8080), Handler).serve_forever()
