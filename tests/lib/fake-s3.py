# SPDX-License-Identifier: LGPL-2.1-or-later
"""A hostile S3 server for the tests: serves the directory ROOT as buckets
(ROOT/BUCKET/KEY, path-style, no signature checks), and lies as MODE says:

  honest   plain answers (objects, ListObjectsV2 with delimiter, PUT with
           If-None-Match, copy, DELETE, ?object-lock= not configured)
  dots     listings of .../points/VM/ also name "../../../../../victim"
           (a key outside the directory listed, in another bucket) and ".."
  loop     every listing is truncated, the same token again and again
  msg      every request: 403 with a message of several lines
  nolock   Object Lock enabled, but PUT ?retention= is answered 200 and
           not kept
  swap     while the file LOG.swap exists, a GET of the first chunk of a
           repository (by name) answers the second one's file: intact by
           its own CRCs, another content (then honest, at the same
           endpoint)
  trickle  a GET of a chunk sends its headers, then a byte every 0.2 s
           (until the client goes)

Each request is one line in LOG: METHOD PATH (as sent).
Usage: fake-s3.py ROOT MODE PORTFILE LOG"""
import email.utils, glob, http.server, os, shutil, sys, threading, time, urllib.parse
from xml.sax.saxutils import escape

root, mode, portfile, logf = sys.argv[1:5]
lock = threading.Lock()

def log(line):
    with lock, open(logf, "a") as f:
        f.write(line + "\n")

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass

    def reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, s3code, msg="an error"):
        self.reply(code, ("<Error><Code>%s</Code><Message>%s</Message></Error>"
                          % (s3code, escape(msg))).encode())

    def split(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        parts = urllib.parse.unquote(u.path).lstrip("/").split("/", 1)
        return parts[0], (parts[1] if len(parts) > 1 else ""), q

    def listing(self, bucket, q):
        prefix = q.get("prefix", [""])[0]
        if mode == "loop":
            body = ("<ListBucketResult><IsTruncated>true</IsTruncated>"
                    "<NextContinuationToken>again</NextContinuationToken>"
                    "</ListBucketResult>")
            return self.reply(200, body.encode())
        objs, dirs = [], set()
        base = os.path.join(root, bucket)
        for dp, dn, fn in os.walk(base):
            for n in fn:
                key = os.path.relpath(os.path.join(dp, n), base)
                if not key.startswith(prefix):
                    continue
                rest = key[len(prefix):]
                if "/" in rest:
                    dirs.add(prefix + rest.split("/")[0] + "/")
                else:
                    objs.append(key)
        if mode == "dots" and prefix.endswith("/points/web/"):
            dirs.add(prefix + "../../../../../victim/")
            dirs.add(prefix + "../")
        if mode == "dots" and "/../" in prefix:
            objs.append(prefix + "data")
        body = "<ListBucketResult><IsTruncated>false</IsTruncated>"
        for k in sorted(objs):
            body += "<Contents><Key>%s</Key></Contents>" % escape(k)
        for d in sorted(dirs):
            body += "<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % escape(d)
        self.reply(200, (body + "</ListBucketResult>").encode())

    def handle_any(self):
        log("%s %s" % (self.command, self.path))
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        if mode == "msg":
            return self.error(403, "AccessDenied",
                              "denied\nbootback: repo verify: no problems")
        bucket, key, q = self.split()
        path = os.path.join(root, bucket, key)
        if not key:
            if "object-lock" in q:
                if mode == "nolock":
                    return self.reply(200, b"<ObjectLockConfiguration><ObjectLockEnabled>"
                                      b"Enabled</ObjectLockEnabled></ObjectLockConfiguration>")
                return self.error(404, "ObjectLockConfigurationNotFoundError")
            if self.command == "GET":
                return self.listing(bucket, q)
            return self.error(404, "NoSuchKey")
        if (mode == "swap" and self.command == "GET" and "/chunks/" in "/" + key
                and os.path.exists(logf + ".swap")):
            chunks = sorted(glob.glob(os.path.join(
                path.rsplit("/chunks/", 1)[0], "chunks", "*", "*")))
            if len(chunks) > 1 and path == chunks[0]:
                path = chunks[1]
        if self.command in ("GET", "HEAD"):
            if key.endswith("/") or not os.path.isfile(path):
                return self.error(404, "NoSuchKey")
            data = open(path, "rb").read()
            if mode == "trickle" and self.command == "GET" and "/chunks/" in "/" + key:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    for b in data:
                        self.wfile.write(bytes([b]))
                        self.wfile.flush()
                        time.sleep(0.2)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True
                return
            hdrs = [("Last-Modified", email.utils.formatdate(
                os.path.getmtime(path), usegmt=True))]
            rng = self.headers.get("Range")
            if rng and self.command == "GET":
                a, b = rng.split("=")[1].split("-")
                a, b = int(a), min(int(b), len(data) - 1)
                hdrs.append(("Content-Range", "bytes %d-%d/%d" % (a, b, len(data))))
                return self.reply(206, data[a:b + 1], hdrs)
            if self.command == "HEAD":
                self.send_response(200)
                for k, v in hdrs:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                return
            return self.reply(200, data, hdrs)
        if self.command == "PUT":
            if "retention" in q:
                return self.reply(200)        # nolock: not kept
            if key.endswith("/"):
                os.makedirs(path, exist_ok=True)
                return self.reply(200)
            if self.headers.get("If-None-Match") == "*" and os.path.exists(path):
                return self.error(412, "PreconditionFailed")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            src = self.headers.get("x-amz-copy-source")
            if src:
                src = os.path.join(root, urllib.parse.unquote(src).lstrip("/"))
                if not os.path.isfile(src):
                    return self.error(404, "NoSuchKey")
                if src != path:
                    shutil.copyfile(src, path)
                os.utime(path)
                return self.reply(200, b"<CopyObjectResult></CopyObjectResult>")
            open(path, "wb").write(body)
            return self.reply(200)
        if self.command == "DELETE":
            if os.path.isfile(path):
                os.unlink(path)
            return self.reply(204)
        self.error(400, "InvalidRequest")
    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(portfile + ".tmp", "w").write(str(s.server_address[1]))
os.rename(portfile + ".tmp", portfile)
s.serve_forever()
